//! Per-pod state at every step: working-set memory (with the leak, its GC pressure and
//! OOM kills), restarts, CPU usage and DB pool occupancy. Memory comes first because the
//! leak feeds the service-level latency and errors; CPU and pool come after the service
//! state because they follow traffic.

use crate::noise::{jitter, unit};
use crate::plan::{Effect, Plan, STEP_MS};
use crate::topology::{Lang, Role, Topology};

/// An OOM kill: which pod and when (ms).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OomKill {
    pub pod: usize,
    pub at_ms: i64,
}

/// Memory-side pod state plus its service-level consequences.
#[derive(Debug, Clone)]
pub(crate) struct PodMemory {
    /// Working-set bytes, `[pod * points + k]`.
    pub mem: Vec<f64>,
    /// Restarts before the window (most pods 0).
    pub initial_restarts: Vec<u32>,
    pub ooms: Vec<OomKill>,
    /// Per service and step: mean GC slowdown factor of its live pods (1 = none).
    pub gc: Vec<f64>,
    /// Per service and step: fraction of requests hitting a pod that is restarting.
    pub down: Vec<f64>,
}

impl PodMemory {
    pub(crate) fn restarts_at(&self, pod: usize, ms: i64) -> u32 {
        self.initial_restarts[pod]
            + self
                .ooms
                .iter()
                .filter(|o| o.pod == pod && o.at_ms <= ms)
                .count() as u32
    }
    /// The last OOM kill of `pod` at or before `ms`.
    pub(crate) fn last_oom(&self, pod: usize, ms: i64) -> Option<i64> {
        self.ooms
            .iter()
            .filter(|o| o.pod == pod && o.at_ms <= ms)
            .map(|o| o.at_ms)
            .max()
    }
}

/// Heap use (fraction of the limit) above which the garbage collector starts to hurt.
pub(crate) const GC_THRESHOLD: f64 = 0.55;

/// Working set of every pod, the leak and its OOM kills.
pub(crate) fn memory(seed: u64, topo: &Topology, plan: &Plan) -> PodMemory {
    let points = plan.clock.points;
    let n_svc = topo.services.len();
    let mut mem = vec![0.0; plan.pods.len() * points];
    let mut gc_sum = vec![0.0; n_svc * points];
    let mut weight_sum = vec![0.0; n_svc * points];
    let mut down = vec![0.0; n_svc * points];
    let mut ooms = Vec::new();
    let initial_restarts = (0..plan.pods.len())
        .map(|p| {
            let h = unit(crate::noise::hash(&[seed, 0xAE57, p as u64]));
            if h < 0.08 {
                1 + (h * 100.0) as u32 % 3
            } else {
                0
            }
        })
        .collect();
    let fault = &plan.fault;
    for (p, pod) in plan.pods.iter().enumerate() {
        let svc = &topo.services[pod.service];
        let limit = svc.mem_limit;
        let pid = p as u64;
        let base = limit * svc.mem_base_frac * (1.0 + 0.08 * jitter(&[seed, 0xBA5E, pid]));
        let saw_period_s = 180.0 + 300.0 * unit(crate::noise::hash(&[seed, 0x5A3, pid]));
        let leak = match fault.effect {
            Effect::Leak {
                minutes_to_limit,
                gc_gain,
            } if pod.service == fault.service => {
                let minutes = minutes_to_limit * (1.0 + 0.15 * jitter(&[seed, 0x1EA4, pid]));
                Some(((limit * 0.995 - base) / (minutes * 60.0), gc_gain))
            }
            _ => None,
        };
        let mut origin = fault.start_ms;
        let mut restarted_at: Option<i64> = None;
        for k in 0..points {
            let t = plan.clock.time(k);
            if !pod.live_at(t) {
                continue;
            }
            let fresh_since = restarted_at
                .unwrap_or(pod.from_ms)
                .max(plan.clock.start_ms - 86_400_000);
            let age_s = (t - fresh_since) as f64 / 1000.0;
            let warm = if restarted_at.is_some() || pod.from_ms > plan.clock.start_ms {
                0.55 + 0.45 * (age_s / 300.0).min(1.0)
            } else {
                1.0
            };
            let mut normal = base * warm * (1.0 + 0.01 * jitter(&[seed, 0x3E3, pid, k as u64]));
            if svc.lang == Lang::Java {
                let phase = ((t / 1000) as f64 / saw_period_s).fract();
                normal += base * 0.06 * phase;
            }
            if pod.service == plan.noise.batch_service && plan.noise.batch_active(t) {
                normal += limit * 0.15;
            }
            let mut value = normal;
            let mut gc = 1.0;
            if let Some((rate, gain)) = leak
                && t > origin
            {
                value = normal + rate * (t - origin) as f64 / 1000.0;
                if value >= limit {
                    // Crossed the limit since the previous point: OOM kill, restart.
                    let cross = origin + ((limit - normal) / rate * 1000.0) as i64;
                    let at_ms = cross.clamp(t - STEP_MS + 1, t);
                    ooms.push(OomKill { pod: p, at_ms });
                    let j = plan.clock.step(at_ms);
                    down[pod.service * points + j] += pod.weight * 0.6;
                    if j + 1 < points {
                        down[pod.service * points + j + 1] += pod.weight * 0.4;
                    }
                    restarted_at = Some(at_ms);
                    origin = at_ms + 30_000;
                    value = base * 0.55;
                }
                let u = value / limit;
                gc = 1.0 + gain * ((u - GC_THRESHOLD) / (1.0 - GC_THRESHOLD)).max(0.0).powi(2);
            }
            mem[p * points + k] = value.min(limit);
            gc_sum[pod.service * points + k] += gc * pod.weight;
            weight_sum[pod.service * points + k] += pod.weight;
        }
    }
    let gc = gc_sum
        .iter()
        .zip(&weight_sum)
        .map(|(g, w)| if *w > 0.0 { g / w } else { 1.0 })
        .collect();
    ooms.sort_by_key(|o| (o.at_ms, o.pod));
    PodMemory {
        mem,
        initial_restarts,
        ooms,
        gc,
        down,
    }
}

/// CPU cores and DB pool occupancy per pod and step.
#[derive(Debug, Clone)]
pub(crate) struct PodUsage {
    pub cpu: Vec<f64>,
    pub pool_used: Vec<f64>,
    pub pool_pending: Vec<f64>,
}

/// Inputs from the service-level state that pod usage follows.
#[derive(Debug)]
pub(crate) struct UsageInputs<'a> {
    pub rps: &'a [f64],
    pub cpu_mult: &'a [f64],
    /// Mean latency of each service, ms (for pool hold times).
    pub lat: &'a [f64],
}

pub(crate) fn usage(seed: u64, topo: &Topology, plan: &Plan, inputs: &UsageInputs<'_>) -> PodUsage {
    let points = plan.clock.points;
    let n = plan.pods.len() * points;
    let (mut cpu, mut pool_used, mut pool_pending) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let fault = &plan.fault;
    for (p, pod) in plan.pods.iter().enumerate() {
        let s = pod.service;
        let svc = &topo.services[s];
        let pid = p as u64;
        for k in 0..points {
            let t = plan.clock.time(k);
            if !pod.live_at(t) {
                continue;
            }
            let i = s * points + k;
            let j = jitter(&[seed, 0xC9, pid, k as u64]);
            let rps_pod = inputs.rps[i] * pod.weight;
            let mut cores = if svc.role == Role::Batch {
                if plan.noise.batch_active(t) {
                    svc.cpu_limit * (0.91 + 0.06 * j)
                } else {
                    0.02 + 0.01 * j.abs()
                }
            } else {
                (svc.idle_cores + rps_pod * svc.cpu_ms / 1000.0 * inputs.cpu_mult[i])
                    * (1.0 + 0.05 * j)
            };
            if let Effect::Cpu { usage_frac, .. } = fault.effect
                && s == fault.service
            {
                let a = fault.activity(t);
                let pinned = svc.cpu_limit * (usage_frac + 0.02 * j).min(0.995);
                cores = cores * (1.0 - a) + pinned * a;
            }
            cpu[p * points + k] = cores.clamp(0.001, svc.cpu_limit * 0.995);
            let Some(max) = svc.pool_max.map(f64::from) else {
                continue;
            };
            let pg = topo.index_of("postgres").expect("postgres exists");
            let db_calls: f64 = topo.out[s]
                .iter()
                .filter(|&&e| topo.edges[e].to == pg)
                .map(|&e| topo.edges[e].calls)
                .sum();
            let hold_s = (db_calls * inputs.lat[pg * points + k] + 2.0) / 1000.0;
            let base_used = rps_pod * hold_s * (1.0 + 0.25 * j)
                + 1.0
                + 1.5 * unit(crate::noise::hash(&[seed, pid, k as u64]));
            let (mut used, mut pending) = (base_used.round().clamp(0.0, max), 0.0);
            if let Effect::Pool { pending_peak, .. } = fault.effect
                && s == fault.service
            {
                let fill = pool_fill(fault.activity(t));
                used = (base_used + (max - base_used) * fill)
                    .round()
                    .clamp(0.0, max);
                pending = (pending_peak * pool_pressure(fault.activity(t)) * (1.0 + 0.2 * j))
                    .round()
                    .max(0.0);
            }
            pool_used[p * points + k] = used;
            pool_pending[p * points + k] = pending;
        }
    }
    PodUsage {
        cpu,
        pool_used,
        pool_pending,
    }
}

/// How full the pool is (beyond its normal use) as the connection leak develops.
pub(crate) fn pool_fill(activity: f64) -> f64 {
    (activity / 0.6).min(1.0)
}

/// How hard requests are pushing against a full pool (0 until the pool is full).
pub(crate) fn pool_pressure(activity: f64) -> f64 {
    ((activity - 0.6) / 0.4).clamp(0.0, 1.0)
}
