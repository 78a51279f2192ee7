//! How one step's state is built: each service's own work and own failures (with the
//! fault and the noise applied), then, callees first, what its callers see through the
//! network (delay, deadlines, retries) and what they make of it (latency and errors
//! propagating upstream), once with the fault and once without it.

use crate::noise::{self, jitter};
use crate::plan::{Effect, Plan};
use crate::pods::{self, PodMemory};
use crate::state::POOL_TIMEOUT_MS;
use crate::topology::{Role, Topology};

/// Own work and own failures per service and step, `[service * points + k]`.
#[derive(Debug)]
pub(crate) struct Own {
    /// Mean own work, ms, with the fault.
    pub ms: Vec<f64>,
    /// Mean own work, ms, without the fault.
    pub ms0: Vec<f64>,
    pub err: Vec<f64>,
    pub err0: Vec<f64>,
    /// Whole-request slowdown (throttled CPU, GC, a slow version), applied once the
    /// callees' latency is known.
    pub slow: Vec<f64>,
    pub cpu_mult: Vec<f64>,
    /// Extra delay on calls into the faulty service, per step, ms.
    pub delay_ms: Vec<f64>,
    /// How hard requests push against an exhausted DB pool, per step (0 or none).
    pub pool_press: Vec<f64>,
    /// Share of requests timing out for a connection at full pressure.
    pub pool_timeout_frac: f64,
}

pub(crate) fn own_work(seed: u64, topo: &Topology, plan: &Plan, memory: &PodMemory) -> Own {
    let points = plan.clock.points;
    let n = topo.services.len() * points;
    let mut own = Own {
        ms: vec![0.0; n],
        ms0: vec![0.0; n],
        err: vec![0.0; n],
        err0: vec![0.0; n],
        slow: vec![1.0; n],
        cpu_mult: vec![1.0; n],
        delay_ms: vec![0.0; points],
        pool_press: vec![0.0; points],
        pool_timeout_frac: match plan.fault.effect {
            Effect::Pool { timeout_frac, .. } => timeout_frac,
            _ => 0.0,
        },
    };
    let fault = &plan.fault;
    let pg = topo.index_of("postgres").expect("postgres exists");
    for k in 0..points {
        let t = plan.clock.time(k);
        let a = fault.activity(t);
        let load = crate::state::season(t) - 1.0;
        let batch = plan.noise.batch_active(t);
        match fault.effect {
            Effect::Delay { ms } => {
                own.delay_ms[k] = ms * a * (1.0 + 0.1 * jitter(&[seed, 0xDE1A, k as u64]))
            }
            Effect::Pool { .. } => own.pool_press[k] = pods::pool_pressure(a),
            _ => {}
        }
        for (s, svc) in topo.services.iter().enumerate() {
            let i = s * points + k;
            let sk = [seed, 0x0E, s as u64, k as u64];
            let mut base = svc.own_ms
                * (1.0 + 0.08 * load)
                * (1.0 + 0.05 * jitter(&sk))
                * plan.noise.blip(s, k);
            if s == pg && batch {
                base *= 1.15;
                own.cpu_mult[i] = 1.4;
            }
            if svc.role == Role::Batch && batch {
                base = 3000.0 * (1.0 + 0.2 * jitter(&sk));
            }
            let base_err = svc.base_err * (1.0 + 0.4 * jitter(&[seed, 0xE0, s as u64, k as u64]));
            let (mut ms, mut err) = (base, base_err);
            if s == fault.service {
                match fault.effect {
                    Effect::Cpu { latency_mult, .. } => {
                        own.slow[i] = 1.0 + (latency_mult - 1.0) * a
                    }
                    Effect::Leak { .. } => {
                        own.slow[i] = memory.gc[i];
                        own.cpu_mult[i] = memory.gc[i].sqrt();
                        err += memory.down[i];
                    }
                    Effect::Delay { .. } => {}
                    Effect::Errors { frac, .. } => err += frac * a,
                    Effect::Pool {
                        wait_ms,
                        timeout_frac,
                        ..
                    } => {
                        let press = own.pool_press[k];
                        let q = timeout_frac * press;
                        ms += press * wait_ms * (1.0 - q) + q * POOL_TIMEOUT_MS;
                        err += q;
                    }
                    Effect::Deploy {
                        err_frac,
                        latency_mult,
                        ..
                    } => {
                        own.slow[i] = 1.0 + (latency_mult - 1.0) * a;
                        err += err_frac * a;
                    }
                }
            }
            own.ms0[i] = base;
            own.ms[i] = ms;
            own.err0[i] = base_err;
            own.err[i] = err.min(1.0);
        }
    }
    own
}

/// What a caller sees of each call edge at each step, `[edge * points + k]`.
#[derive(Debug, Clone)]
pub(crate) struct EdgeState {
    /// Mean client-side time of one attempt, ms (network, delay and deadline included).
    pub ms: Vec<f64>,
    /// Probability that one attempt hits the client deadline.
    pub timeout: Vec<f64>,
    /// Probability that a call fails after its retries.
    pub fail: Vec<f64>,
    /// Mean attempts per call.
    pub attempts: Vec<f64>,
}

/// Server-side latency and errors per service and step, with and without the fault.
#[derive(Debug)]
pub(crate) struct Propagated {
    pub lat: Vec<f64>,
    pub lat0: Vec<f64>,
    pub err: Vec<f64>,
    pub edges: EdgeState,
}

/// A latency distribution: two log-normal parts `(weight, mean ms, log-space sigma)`.
pub(crate) type Dist = [(f64, f64, f64); 2];

/// The latency distribution of a service at one step. Requests whose call tree touches
/// the fault (probability `reach`) carry the whole excess over the fault-free latency
/// `lat0`; for the faulty service itself with an exhausted DB pool, a `stall` share of
/// requests waits out the 30 s pool timeout instead.
pub(crate) fn dist(reach: f64, lat: f64, lat0: f64, sigma: f64, stall: f64) -> Dist {
    if stall > 0.0 {
        let stalled = POOL_TIMEOUT_MS + lat0;
        let ok = ((lat - stall * stalled) / (1.0 - stall)).max(lat0);
        return [(1.0 - stall, ok, sigma.max(0.8)), (stall, stalled, 0.05)];
    }
    if reach <= 0.0 || (lat - lat0).abs() < 1e-9 {
        return [(1.0, lat, sigma), (0.0, lat, sigma)];
    }
    [
        (1.0 - reach, lat0, sigma),
        (reach, (lat0 + (lat - lat0) / reach).max(0.5 * lat0), sigma),
    ]
}

/// `(P(X > t), E[min(X, t)])` for a latency distribution.
fn capped(dist: &Dist, t: f64) -> (f64, f64) {
    if t <= 0.0 {
        return (1.0, 0.0);
    }
    dist.iter().filter(|p| p.0 > 0.0 && p.1 > 0.0).fold(
        (0.0, 0.0),
        |(over, e), &(w, mean, sigma)| {
            let mu = mean.ln() - sigma * sigma / 2.0;
            let z = (t.ln() - mu) / sigma;
            let p = 1.0 - phi(z);
            (over + w * p, e + w * (mean * phi(z - sigma) + t * p))
        },
    )
}

fn phi(z: f64) -> f64 {
    0.5 * (1.0 + noise::erf(z / std::f64::consts::SQRT_2))
}

/// Latency and errors, callees first. Updates `own.ms` with the whole-request slowdown.
pub(crate) fn backward(
    topo: &Topology,
    points: usize,
    fault_service: usize,
    reach: &[f64],
    own: &mut Own,
) -> Propagated {
    let n = topo.services.len() * points;
    let m = topo.edges.len() * points;
    let (mut lat, mut lat0, mut err, mut err0) =
        (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let mut edges = EdgeState {
        ms: vec![0.0; m],
        timeout: vec![0.0; m],
        fail: vec![0.0; m],
        attempts: vec![1.0; m],
    };
    for &s in topo.order.iter().rev() {
        for k in 0..points {
            let i = s * points + k;
            let (mut l, mut l0) = (own.ms[i], own.ms0[i]);
            let (mut ok, mut ok0) = (1.0 - own.err[i], 1.0 - own.err0[i]);
            for &e in &topo.out[s] {
                let edge = &topo.edges[e];
                let (d, j) = (edge.to, edge.to * points + k);
                let sigma = topo.services[d].sigma;
                let stall = if d == fault_service {
                    own.pool_timeout_frac * own.pool_press[k]
                } else {
                    0.0
                };
                // Stalled requests fail only after 30 s: the caller's deadline comes first.
                let answered_err = if stall > 0.0 {
                    ((err[j] - stall) / (1.0 - stall)).max(0.0)
                } else {
                    err[j]
                };
                let net = 2.0 * edge.net_ms
                    + if d == fault_service {
                        own.delay_ms[k]
                    } else {
                        0.0
                    };
                let attempt = |dist: Dist, callee_err: f64, net: f64| {
                    let (p_to, e_min) = capped(&dist, edge.timeout_ms - net);
                    let per_ms = if edge.timeout_ms > net {
                        e_min + net
                    } else {
                        edge.timeout_ms
                    };
                    let p_fail = p_to + (1.0 - p_to) * callee_err;
                    let attempts = 1.0 + f64::from(edge.retries) * p_fail;
                    (
                        per_ms,
                        p_to,
                        p_fail.powi(1 + i32::from(edge.retries)),
                        attempts,
                    )
                };
                let (per_ms, p_to, fail, attempts) = attempt(
                    dist(reach[d], lat[j], lat0[j], sigma, stall),
                    answered_err,
                    net,
                );
                l += edge.calls * attempts * per_ms;
                ok *= 1.0 - edge.calls.min(1.0) * fail * edge.propagate;
                let (per_ms0, _, fail0, attempts0) = attempt(
                    dist(0.0, lat0[j], lat0[j], sigma, 0.0),
                    err0[j],
                    2.0 * edge.net_ms,
                );
                l0 += edge.calls * attempts0 * per_ms0;
                ok0 *= 1.0 - edge.calls.min(1.0) * fail0 * edge.propagate;
                let x = e * points + k;
                edges.ms[x] = per_ms;
                edges.timeout[x] = p_to;
                edges.fail[x] = fail;
                edges.attempts[x] = attempts;
            }
            if own.slow[i] > 1.0 {
                let extra = (own.slow[i] - 1.0) * l;
                own.ms[i] += extra;
                l += extra;
            }
            lat[i] = l;
            lat0[i] = l0;
            err[i] = 1.0 - ok;
            err0[i] = 1.0 - ok0;
        }
    }
    Propagated {
        lat,
        lat0,
        err,
        edges,
    }
}

/// Probability that a request to each service touches `target` somewhere in its call tree.
pub(crate) fn fault_reach(topo: &Topology, target: usize) -> Vec<f64> {
    let mut f = vec![0.0; topo.services.len()];
    for &s in topo.order.iter().rev() {
        if s == target {
            f[s] = 1.0;
            continue;
        }
        let mut miss = 1.0;
        for &e in &topo.out[s] {
            let edge = &topo.edges[e];
            miss *= 1.0 - edge.calls.min(1.0) * f[edge.to];
        }
        f[s] = 1.0 - miss;
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capping_a_fast_distribution_changes_nothing() {
        let (over, mean) = capped(&dist(0.0, 10.0, 10.0, 0.5, 0.0), 1000.0);
        assert!(over < 1e-9);
        assert!((mean - 10.0).abs() < 1e-3);
    }

    #[test]
    fn stalled_requests_always_time_out() {
        // 20 % wait out the pool timeout; the rest are fast.
        let d = dist(
            1.0,
            0.8 * 20.0 + 0.2 * (POOL_TIMEOUT_MS + 20.0),
            20.0,
            0.45,
            0.2,
        );
        let (over, _) = capped(&d, 3000.0);
        assert!((over - 0.2).abs() < 0.01, "{over}");
    }

    #[test]
    fn capping_a_slow_distribution_times_out() {
        let (over, mean) = capped(&dist(0.0, 10_000.0, 10_000.0, 0.5, 0.0), 3000.0);
        assert!(over > 0.95);
        assert!(mean < 3000.0 && mean > 2800.0);
    }
}
