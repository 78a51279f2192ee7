//! The one per-service, per-step state every modality is derived from: request rate
//! (daily seasonality plus noise), own work, error fraction, end-to-end server latency,
//! CPU demand, and the pod-level memory, CPU and pool state.
//!
//! Latency and errors propagate from callees to callers: a caller's latency is its own
//! work plus its calls (attenuated by call fraction, with retries), its errors include the
//! failures it does not absorb. The server latency of a service is a two-part log-normal
//! mixture: the requests whose call tree touches the faulty service carry the whole
//! excess over a fault-free counterfactual, so a caller's tail moves even when only a
//! fraction of its requests are affected.

use crate::noise::{self, jitter};
use crate::plan::{Effect, Plan};
use crate::pods::{self, PodMemory, PodUsage, UsageInputs};
use crate::topology::{FRONTEND_RPS, Role, Topology};
use rand::Rng;

/// Timeout of a request waiting for a DB connection (HikariCP default), ms.
pub(crate) const POOL_TIMEOUT_MS: f64 = 30_000.0;

#[derive(Debug, Clone)]
pub(crate) struct State {
    pub points: usize,
    /// Requests per second, `[service * points + k]`.
    pub rps: Vec<f64>,
    /// Mean own work per request, ms (fault included).
    pub own_ms: Vec<f64>,
    /// Fraction of requests failing inside the service itself.
    pub own_err: Vec<f64>,
    /// Fraction of requests answered with a 5xx (own plus propagated).
    pub err: Vec<f64>,
    /// Mean server latency, ms.
    pub lat: Vec<f64>,
    /// Mean server latency had the fault not happened, ms.
    pub lat0: Vec<f64>,
    /// Per service: probability that a request's call tree touches the faulty service.
    pub fault_reach: Vec<f64>,
    /// Extra one-way-pair delay on calls into the faulty service, per step, ms.
    pub delay_ms: Vec<f64>,
    pub memory: PodMemory,
    pub usage: PodUsage,
}

impl State {
    pub(crate) fn compute(seed: u64, topo: &Topology, plan: &Plan) -> State {
        let points = plan.clock.points;
        let n = topo.services.len();
        let memory = pods::memory(seed, topo, plan);
        let fault = &plan.fault;
        let mut own0 = vec![0.0; n * points];
        let mut own_ms = vec![0.0; n * points];
        let mut own_err = vec![0.0; n * points];
        let mut cpu_mult = vec![1.0; n * points];
        // Slowdown of the whole request (queueing behind throttled CPU, GC pauses, a slow
        // new version), applied once the callees' latency is known.
        let mut slow = vec![1.0; n * points];
        let mut delay_ms = vec![0.0; points];
        let pg = topo.index_of("postgres").expect("postgres exists");
        for (k, delay) in delay_ms.iter_mut().enumerate() {
            let t = plan.clock.time(k);
            let a = fault.activity(t);
            let load = season(t) - 1.0;
            let batch = plan.noise.batch_active(t);
            if let Effect::Delay { ms } = fault.effect {
                *delay = ms * a * (1.0 + 0.1 * jitter(&[seed, 0xDE1A, k as u64]));
            }
            for (s, svc) in topo.services.iter().enumerate() {
                let i = s * points + k;
                let sk = [seed, 0x0E, s as u64, k as u64];
                let mut base = svc.own_ms * (1.0 + 0.08 * load) * (1.0 + 0.05 * jitter(&sk));
                base *= plan.noise.blip(s, k);
                if s == pg && batch {
                    base *= 1.15;
                    cpu_mult[i] = 1.4;
                }
                if svc.role == Role::Batch && batch {
                    base = 3000.0 * (1.0 + 0.2 * jitter(&sk));
                }
                let mut err =
                    svc.base_err * (1.0 + 0.4 * jitter(&[seed, 0xE0, s as u64, k as u64]));
                own0[i] = base;
                let mut own = base;
                if s == fault.service {
                    match fault.effect {
                        Effect::Cpu { latency_mult, .. } => {
                            slow[i] = 1.0 + (latency_mult - 1.0) * a
                        }
                        Effect::Leak { .. } => {
                            slow[i] = memory.gc[i];
                            cpu_mult[i] = memory.gc[i].sqrt();
                            err += memory.down[i];
                        }
                        Effect::Delay { .. } => {}
                        Effect::Errors { frac, .. } => err += frac * a,
                        Effect::Pool {
                            wait_ms,
                            timeout_frac,
                            ..
                        } => {
                            let press = pods::pool_pressure(a);
                            let q = timeout_frac * press;
                            own += press * wait_ms * (1.0 - q) + q * POOL_TIMEOUT_MS;
                            err += q;
                        }
                        Effect::Deploy {
                            err_frac,
                            latency_mult,
                            ..
                        } => {
                            slow[i] = 1.0 + (latency_mult - 1.0) * a;
                            err += err_frac * a;
                        }
                    }
                }
                own_ms[i] = own;
                own_err[i] = err.min(1.0);
            }
        }
        // Errors, callees first.
        let mut err: Vec<f64> = vec![0.0; n * points];
        for &s in topo.order.iter().rev() {
            for k in 0..points {
                let mut ok = 1.0 - own_err[s * points + k];
                for &e in &topo.out[s] {
                    let edge = &topo.edges[e];
                    let fail = err[edge.to * points + k].powi(1 + i32::from(edge.retries));
                    ok *= 1.0 - edge.calls.min(1.0) * fail * edge.propagate;
                }
                err[s * points + k] = 1.0 - ok;
            }
        }
        // Traffic, callers first.
        let mut rps = vec![0.0; n * points];
        for &s in &topo.order {
            let svc = &topo.services[s];
            for k in 0..points {
                let t = plan.clock.time(k);
                let i = s * points + k;
                if s == topo.edge_service {
                    rps[i] = FRONTEND_RPS * season(t) * (1.0 + traffic_noise(seed, k));
                } else if svc.role == Role::Batch {
                    rps[i] = if plan.noise.batch_active(t) {
                        4.0
                    } else {
                        0.05
                    };
                } else if s == topo.feed.1 {
                    rps[i] += rps[topo.feed.0 * points + k];
                }
                rps[i] *= 1.0 + 0.02 * jitter(&[seed, 0x7F, s as u64, k as u64]);
                for &e in &topo.out[s] {
                    let edge = &topo.edges[e];
                    let retry = f64::from(edge.retries) * err[edge.to * points + k];
                    rps[edge.to * points + k] += rps[i] * edge.calls * (1.0 + retry);
                }
            }
        }
        // Latency, callees first, with and without the fault.
        let mut lat = vec![0.0; n * points];
        let mut lat0 = vec![0.0; n * points];
        for &s in topo.order.iter().rev() {
            for (k, &delay) in delay_ms.iter().enumerate() {
                let i = s * points + k;
                let (mut l, mut l0) = (own_ms[i], own0[i]);
                for &e in &topo.out[s] {
                    let edge = &topo.edges[e];
                    let j = edge.to * points + k;
                    let extra = if edge.to == fault.service { delay } else { 0.0 };
                    let retry = 1.0 + f64::from(edge.retries) * err[j];
                    l += edge.calls * retry * (lat[j] + 2.0 * edge.net_ms + extra);
                    l0 += edge.calls * retry * (lat0[j] + 2.0 * edge.net_ms);
                }
                if slow[i] > 1.0 {
                    let extra = (slow[i] - 1.0) * l;
                    own_ms[i] += extra;
                    l += extra;
                }
                lat[i] = l;
                lat0[i] = l0;
            }
        }
        let fault_reach = fault_reach(topo, fault.service);
        let usage = pods::usage(
            seed,
            topo,
            plan,
            &UsageInputs {
                rps: &rps,
                cpu_mult: &cpu_mult,
                lat: &lat,
            },
        );
        State {
            points,
            rps,
            own_ms,
            own_err,
            err,
            lat,
            lat0,
            fault_reach,
            delay_ms,
            memory,
            usage,
        }
    }

    pub(crate) fn at(&self, service: usize, k: usize) -> usize {
        service * self.points + k
    }

    /// The latency mixture of `service` at step `k`: `(weight of the affected part,
    /// mean of the unaffected part, mean of the affected part)`, ms.
    pub(crate) fn mixture(&self, service: usize, k: usize) -> (f64, f64, f64) {
        let i = self.at(service, k);
        let f = self.fault_reach[service];
        let (l, l0) = (self.lat[i], self.lat0[i]);
        if f <= 0.0 || (l - l0).abs() < 1e-9 {
            return (0.0, l, l);
        }
        let affected = (l0 + (l - l0) / f).max(0.5 * l0);
        (f, l0, affected)
    }

    /// `P(latency <= x_ms)` for `service` at step `k`.
    pub(crate) fn latency_cdf(&self, service: usize, k: usize, sigma: f64, x_ms: f64) -> f64 {
        let (f, a, b) = self.mixture(service, k);
        (1.0 - f) * noise::lognormal_cdf(x_ms, a, sigma) + f * noise::lognormal_cdf(x_ms, b, sigma)
    }

    /// The `q` quantile of the latency of `service` at step `k`, ms.
    pub(crate) fn latency_quantile(&self, service: usize, k: usize, sigma: f64, q: f64) -> f64 {
        let (mut lo, mut hi) = (1e-3_f64.ln(), 1e7_f64.ln());
        for _ in 0..60 {
            let mid = (lo + hi) / 2.0;
            if self.latency_cdf(service, k, sigma, mid.exp()) < q {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        ((lo + hi) / 2.0).exp()
    }

    /// One request's latency drawn from the mixture, ms.
    pub(crate) fn sample_latency<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        service: usize,
        k: usize,
        sigma: f64,
    ) -> f64 {
        let (f, a, b) = self.mixture(service, k);
        let mean = if f > 0.0 && rng.random::<f64>() < f {
            b
        } else {
            a
        };
        noise::lognormal_mean(rng, mean, sigma)
    }
}

/// Daily traffic curve: 1 on average, peaking mid-afternoon UTC.
pub(crate) fn season(ms: i64) -> f64 {
    let hour = (ms.rem_euclid(86_400_000)) as f64 / 3_600_000.0;
    1.0 + 0.3 * (std::f64::consts::TAU * (hour - 10.0) / 24.0).sin()
}

/// Slow wander (interpolated every 2 minutes) plus step-to-step noise, about +-4 %.
fn traffic_noise(seed: u64, k: usize) -> f64 {
    let slow = |c: usize| jitter(&[seed, 0x51_0E, c as u64]);
    let (c, frac) = (k / 8, (k % 8) as f64 / 8.0);
    0.03 * (slow(c) * (1.0 - frac) + slow(c + 1) * frac) + 0.015 * jitter(&[seed, 0xFA57, k as u64])
}

/// Probability that a request to each service touches `target` somewhere in its call tree.
fn fault_reach(topo: &Topology, target: usize) -> Vec<f64> {
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
