//! What happens when: the time grid, the injected fault (which service, when, how hard),
//! the unrelated noise (report-batch runs, the chatty logger's bursts, latency blips, decoy
//! changes), and the pods each service runs over time (a deploy replaces them).
//!
//! The fault draws from the plan stream; the noise schedule draws from its own stream so
//! it is independent of the fault.

use crate::noise::{self, Stream};
use crate::topology::{Role, Topology};
use compass_core::{ChangeKind, FaultKind};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Seconds between metric samples and state steps.
pub(crate) const STEP_S: i64 = 15;
pub(crate) const STEP_MS: i64 = STEP_S * 1000;

/// The time grid: `points` state points at `start + k * STEP`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub start_ms: i64,
    pub duration_s: u64,
    /// Number of state points (`duration / 15 + 1`).
    pub points: usize,
}

impl Clock {
    pub(crate) fn new(start_ms: i64, duration_s: u64) -> Self {
        Self {
            start_ms,
            duration_s,
            points: (duration_s / STEP_S as u64) as usize + 1,
        }
    }
    pub(crate) fn end_ms(&self) -> i64 {
        self.start_ms + self.duration_s as i64 * 1000
    }
    pub(crate) fn time(&self, k: usize) -> i64 {
        self.start_ms + k as i64 * STEP_MS
    }
    /// The state point in force at `ms` (the last one at or before it).
    pub(crate) fn step(&self, ms: i64) -> usize {
        (((ms - self.start_ms).max(0) / STEP_MS) as usize).min(self.points - 1)
    }
}

/// The fault's mechanism and magnitudes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Effect {
    Cpu {
        latency_mult: f64,
        usage_frac: f64,
    },
    Leak {
        minutes_to_limit: f64,
        gc_gain: f64,
    },
    Delay {
        ms: f64,
    },
    Errors {
        frac: f64,
        template: usize,
    },
    Pool {
        ramp_s: f64,
        wait_ms: f64,
        timeout_frac: f64,
        pending_peak: f64,
    },
    Deploy {
        err_frac: f64,
        latency_mult: f64,
        template: usize,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub kind: FaultKind,
    pub service: usize,
    pub start_ms: i64,
    pub effect: Effect,
}

impl Fault {
    /// How far the fault has developed at `ms`, 0 before it starts, ramping to 1.
    pub(crate) fn activity(&self, ms: i64) -> f64 {
        if ms < self.start_ms {
            return 0.0;
        }
        let ramp_s = match self.effect {
            Effect::Cpu { .. } => 30.0,
            Effect::Pool { ramp_s, .. } => ramp_s,
            Effect::Deploy { .. } => 45.0,
            Effect::Leak { .. } | Effect::Delay { .. } | Effect::Errors { .. } => 0.0,
        };
        if ramp_s <= 0.0 {
            1.0
        } else {
            ((ms - self.start_ms) as f64 / 1000.0 / ramp_s).min(1.0)
        }
    }
}

/// A short latency bump on one service (`mult` on its own work).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Blip {
    pub service: usize,
    pub from_step: usize,
    pub to_step: usize,
    pub mult: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct NoisePlan {
    pub batch_service: usize,
    /// `[start, end)` of each report-batch run, ms.
    pub batch_runs: Vec<(i64, i64)>,
    pub chatty_service: usize,
    pub chatty_bursts: Vec<(i64, i64)>,
    pub blips: Vec<Blip>,
}

impl NoisePlan {
    pub(crate) fn batch_active(&self, ms: i64) -> bool {
        self.batch_runs.iter().any(|&(a, b)| ms >= a && ms < b)
    }
    pub(crate) fn chatty_active(&self, ms: i64) -> bool {
        self.chatty_bursts.iter().any(|&(a, b)| ms >= a && ms < b)
    }
    pub(crate) fn blip(&self, service: usize, k: usize) -> f64 {
        self.blips
            .iter()
            .filter(|b| b.service == service && k >= b.from_step && k < b.to_step)
            .map(|b| b.mult)
            .fold(1.0, f64::max)
    }
}

/// A change event (deploy, config change).
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub ts: i64,
    pub kind: ChangeKind,
    pub service: usize,
    pub description: String,
    pub version: Option<String>,
}

/// One pod: the generation (replica set) it belongs to and when it exists.
#[derive(Debug, Clone)]
pub(crate) struct Pod {
    pub service: usize,
    pub name: String,
    /// First instant the pod serves, ms.
    pub from_ms: i64,
    /// When it is replaced, ms (`i64::MAX` if never).
    pub until_ms: i64,
    /// Share of the service's traffic while its generation is live.
    pub weight: f64,
}

impl Pod {
    pub(crate) fn live_at(&self, ms: i64) -> bool {
        ms >= self.from_ms && ms < self.until_ms
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub clock: Clock,
    pub fault: Fault,
    pub noise: NoisePlan,
    pub events: Vec<Event>,
    pub pods: Vec<Pod>,
    /// Pod indices per service, in generation then slot order.
    pub pods_of: Vec<Vec<usize>>,
}

/// Application services the scenario may break, in a seed-shuffled order: reachable
/// from the edge often enough that the edge alert can see it, and for pool exhaustion,
/// holding a DB pool. The caller tries them in order until the edge shows the symptom.
pub(crate) fn candidates(seed: u64, topo: &Topology, kind: FaultKind) -> Vec<usize> {
    let mut eligible: Vec<usize> = topo
        .services
        .iter()
        .enumerate()
        .filter(|(_, s)| s.role == Role::App && s.reach >= 0.08)
        .filter(|(_, s)| kind != FaultKind::DbPoolExhaustion || s.pool_max.is_some())
        .map(|(i, _)| i)
        .collect();
    let mut rng = noise::rng(seed, Stream::Plan, 0x100 + scenario_index(kind));
    for i in (1..eligible.len()).rev() {
        eligible.swap(i, rng.random_range(0..=i));
    }
    eligible
}

fn scenario_index(kind: FaultKind) -> u64 {
    FaultKind::ALL.iter().position(|&k| k == kind).unwrap_or(0) as u64
}

impl Plan {
    /// The plan with the fault in `service`; start and magnitudes depend only on the seed
    /// and the scenario.
    pub(crate) fn new(
        seed: u64,
        topo: &Topology,
        kind: FaultKind,
        clock: Clock,
        service: usize,
    ) -> Plan {
        let mut rng = noise::rng(seed, Stream::Plan, scenario_index(kind));
        let dur_ms = clock.duration_s as i64 * 1000;
        let start_ms = clock.start_ms
            + (noise::uniform(&mut rng, 0.6, 0.85) * dur_ms as f64 / 1000.0) as i64 * 1000;
        let effect = draw_effect(kind, &mut rng);
        let fault = Fault {
            kind,
            service,
            start_ms,
            effect,
        };
        let noise_plan = draw_noise(seed, topo, &clock, service);
        let mut events = decoy_events(topo, &clock, &fault, &mut rng);
        if kind == FaultKind::BadDeploy {
            let (from, to) = bump(topo.services[service].version, &mut rng);
            events.push(Event {
                ts: start_ms,
                kind: ChangeKind::Deploy,
                service,
                description: format!("rollout {} {from} -> {to}", topo.services[service].name),
                version: Some(to),
            });
        }
        events.sort_by_key(|e| (e.ts, e.service));
        let (pods, pods_of) = layout_pods(seed, topo, &events);
        Plan {
            clock,
            fault,
            noise: noise_plan,
            events,
            pods,
            pods_of,
        }
    }
}

fn draw_effect(kind: FaultKind, rng: &mut ChaCha8Rng) -> Effect {
    match kind {
        FaultKind::CpuSaturation => Effect::Cpu {
            latency_mult: noise::uniform(rng, 3.0, 10.0),
            usage_frac: noise::uniform(rng, 0.9, 0.99),
        },
        FaultKind::MemoryLeak => Effect::Leak {
            minutes_to_limit: noise::uniform(rng, 3.5, 6.5),
            gc_gain: noise::uniform(rng, 6.0, 10.0),
        },
        FaultKind::NetworkLatency => Effect::Delay {
            ms: noise::uniform(rng, 80.0, 400.0),
        },
        FaultKind::ErrorInjection => Effect::Errors {
            frac: noise::uniform(rng, 0.2, 0.6),
            template: rng.random_range(0..64),
        },
        FaultKind::DbPoolExhaustion => Effect::Pool {
            ramp_s: noise::uniform(rng, 60.0, 150.0),
            wait_ms: noise::uniform(rng, 300.0, 1500.0),
            timeout_frac: noise::uniform(rng, 0.1, 0.3),
            pending_peak: noise::uniform(rng, 8.0, 60.0),
        },
        FaultKind::BadDeploy | FaultKind::Unknown => Effect::Deploy {
            err_frac: noise::uniform(rng, 0.15, 0.45),
            latency_mult: noise::uniform(rng, 1.5, 3.0),
            template: rng.random_range(0..64),
        },
    }
}

/// Report-batch runs, chatty-logger bursts and latency blips, from their own stream.
fn draw_noise(seed: u64, topo: &Topology, clock: &Clock, fault_service: usize) -> NoisePlan {
    let mut rng = noise::rng(seed, Stream::Batch, 0);
    let end = clock.end_ms();
    let batch_service = topo.index_of("report-batch").expect("report-batch exists");
    let period_ms = [900_000i64, 1_200_000, 1_800_000][rng.random_range(0..3)];
    let mut t = clock.start_ms - rng.random_range(0..period_ms);
    let mut batch_runs = Vec::new();
    while t < end {
        let len = rng.random_range(180_000..360_000);
        if t + len > clock.start_ms {
            batch_runs.push((t.max(clock.start_ms), t + len));
        }
        t += period_ms;
    }
    let chatty_candidates: Vec<usize> = [
        "catalog",
        "recommendation",
        "user",
        "cart",
        "currency",
        "shipping",
    ]
    .iter()
    .filter_map(|n| topo.index_of(n))
    .filter(|&i| i != fault_service)
    .collect();
    let chatty_service = chatty_candidates[rng.random_range(0..chatty_candidates.len())];
    let mut chatty_bursts = Vec::new();
    let mut t = clock.start_ms + rng.random_range(30_000..300_000);
    while t < end {
        chatty_bursts.push((t, t + rng.random_range(20_000..90_000)));
        t += rng.random_range(240_000..540_000);
    }
    let hours = clock.duration_s as f64 / 3600.0;
    let count = (hours * noise::uniform(&mut rng, 6.0, 12.0)).round() as usize;
    let candidates: Vec<usize> = (0..topo.services.len())
        .filter(|&i| topo.services[i].role != Role::Batch)
        .collect();
    let blips = (0..count)
        .map(|_| {
            let from_step = rng.random_range(0..clock.points);
            Blip {
                service: candidates[rng.random_range(0..candidates.len())],
                from_step,
                to_step: from_step + rng.random_range(1..3),
                mult: noise::uniform(&mut rng, 1.3, 2.0),
            }
        })
        .collect();
    NoisePlan {
        batch_service,
        batch_runs,
        chatty_service,
        chatty_bursts,
        blips,
    }
}

/// One unrelated deploy and one unrelated config change on healthy services, both more
/// than ten minutes before the fault.
fn decoy_events(topo: &Topology, clock: &Clock, fault: &Fault, rng: &mut ChaCha8Rng) -> Vec<Event> {
    let healthy: Vec<usize> = topo
        .services
        .iter()
        .enumerate()
        .filter(|(i, s)| *i != fault.service && s.role == Role::App && s.reach > 0.0)
        .map(|(i, _)| i)
        .collect();
    let deploy_svc = healthy[rng.random_range(0..healthy.len())];
    let config_svc = loop {
        let c = healthy[rng.random_range(0..healthy.len())];
        if c != deploy_svc {
            break c;
        }
    };
    let latest = fault.start_ms - 12 * 60_000;
    let pick = |rng: &mut ChaCha8Rng, earliest: i64| {
        let earliest = (clock.start_ms + earliest).min(latest);
        (earliest + rng.random_range(0..=(latest - earliest).max(0)) / 1000 * 1000).min(latest)
    };
    let (from, to) = bump(topo.services[deploy_svc].version, rng);
    let deploy = Event {
        ts: pick(rng, 120_000),
        kind: ChangeKind::Deploy,
        service: deploy_svc,
        description: format!("rollout {} {from} -> {to}", topo.services[deploy_svc].name),
        version: Some(to),
    };
    let name = &topo.services[config_svc].name;
    let description = match rng.random_range(0..4) {
        0 => format!("{name}: cache TTL 300s -> 600s"),
        1 => format!(
            "{name}: log level INFO -> DEBUG for package com.shop.{}",
            name.replace('-', ".")
        ),
        2 => format!("{name}: HTTP client max idle connections 50 -> 100"),
        _ => format!("{name}: feature flag new-{name}-ui enabled for 10% of users"),
    };
    let config = Event {
        ts: pick(rng, 60_000),
        kind: ChangeKind::ConfigChange,
        service: config_svc,
        description,
        version: None,
    };
    vec![deploy, config]
}

/// `(old, new)` version strings for a rollout.
fn bump(v: (u32, u32, u32), rng: &mut ChaCha8Rng) -> (String, String) {
    let old = format!("v{}.{}.{}", v.0, v.1, v.2);
    let new = if rng.random_bool(0.5) {
        format!("v{}.{}.{}", v.0, v.1, v.2 + 1)
    } else {
        format!("v{}.{}.0", v.0, v.1 + 1)
    };
    (old, new)
}

/// Pods per service: a replica set at the start and a new one after each deploy.
/// Infrastructure runs as stateful sets (`postgres-0`), which deploys never touch.
fn layout_pods(seed: u64, topo: &Topology, events: &[Event]) -> (Vec<Pod>, Vec<Vec<usize>>) {
    let mut rng = noise::rng(seed, Stream::Pods, 0);
    let mut pods = Vec::new();
    let mut pods_of = vec![Vec::new(); topo.services.len()];
    for (s, svc) in topo.services.iter().enumerate() {
        let mut bounds = vec![i64::MIN];
        bounds.extend(
            events
                .iter()
                .filter(|e| e.service == s && e.kind == ChangeKind::Deploy)
                .map(|e| e.ts),
        );
        let weights: Vec<f64> = (0..svc.replicas)
            .map(|_| noise::uniform(&mut rng, 0.9, 1.1))
            .collect();
        let total: f64 = weights.iter().sum();
        for (g, &from_ms) in bounds.iter().enumerate() {
            let until_ms = bounds.get(g + 1).copied().unwrap_or(i64::MAX);
            let len = if rng.random_bool(0.5) { 9 } else { 10 };
            let hash = noise::k8s_suffix(&mut rng, len);
            for (slot, w) in weights.iter().enumerate() {
                let name = if svc.role.is_infra() {
                    format!("{}-{slot}", svc.name)
                } else {
                    format!("{}-{hash}-{}", svc.name, noise::k8s_suffix(&mut rng, 5))
                };
                pods_of[s].push(pods.len());
                pods.push(Pod {
                    service: s,
                    name,
                    from_ms,
                    until_ms,
                    weight: w / total,
                });
            }
        }
    }
    (pods, pods_of)
}
