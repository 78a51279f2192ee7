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
use crate::propagate::{self, Dist, EdgeState};
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
    pub fault_service: usize,
    /// Log-space latency spread per service.
    pub sigma: Vec<f64>,
    /// Extra delay on calls into the faulty service, per step, ms.
    pub delay_ms: Vec<f64>,
    /// What callers see of each call edge.
    pub edges: EdgeState,
    /// DB pool pressure of the faulty service per step (pool exhaustion only).
    pub pool_press: Vec<f64>,
    pub pool_wait_ms: f64,
    pub pool_timeout_frac: f64,
    pub memory: PodMemory,
    pub usage: PodUsage,
}

impl State {
    pub(crate) fn compute(seed: u64, topo: &Topology, plan: &Plan) -> State {
        let points = plan.clock.points;
        let memory = pods::memory(seed, topo, plan);
        let mut own = propagate::own_work(seed, topo, plan, &memory);
        let fault_reach = propagate::fault_reach(topo, plan.fault.service);
        let prop = propagate::backward(topo, points, plan.fault.service, &fault_reach, &mut own);
        let rps = traffic(seed, topo, plan, &prop.edges);
        let usage = pods::usage(
            seed,
            topo,
            plan,
            &UsageInputs {
                rps: &rps,
                cpu_mult: &own.cpu_mult,
                lat: &prop.lat,
            },
        );
        let (pool_wait_ms, pool_timeout_frac) = match plan.fault.effect {
            Effect::Pool {
                wait_ms,
                timeout_frac,
                ..
            } => (wait_ms, timeout_frac),
            _ => (0.0, 0.0),
        };
        State {
            points,
            rps,
            own_ms: own.ms,
            own_err: own.err,
            err: prop.err,
            lat: prop.lat,
            lat0: prop.lat0,
            fault_service: plan.fault.service,
            sigma: topo.services.iter().map(|s| s.sigma).collect(),
            fault_reach,
            delay_ms: own.delay_ms,
            edges: prop.edges,
            pool_press: own.pool_press,
            pool_wait_ms,
            pool_timeout_frac,
            memory,
            usage,
        }
    }

    pub(crate) fn at(&self, service: usize, k: usize) -> usize {
        service * self.points + k
    }

    /// The latency distribution of `service` at step `k`.
    pub(crate) fn dist(&self, service: usize, k: usize) -> Dist {
        let i = self.at(service, k);
        let stall = self.pool_timeouts(service, k);
        propagate::dist(
            self.fault_reach[service],
            self.lat[i],
            self.lat0[i],
            self.sigma[service],
            stall,
        )
    }

    /// Share of requests of `service` at step `k` that time out waiting for a DB connection.
    pub(crate) fn pool_timeouts(&self, service: usize, k: usize) -> f64 {
        if service == self.fault_service {
            self.pool_timeout_frac * self.pool_press[k]
        } else {
            0.0
        }
    }

    /// One request's own work in `service` (ms) and whether it timed out waiting for a
    /// DB connection.
    pub(crate) fn sample_own<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        service: usize,
        k: usize,
        sigma: f64,
    ) -> (f64, bool) {
        let mean = self.own_ms[self.at(service, k)];
        let q = self.pool_timeouts(service, k);
        let press = if service == self.fault_service {
            self.pool_press[k]
        } else {
            0.0
        };
        if press <= 0.0 {
            return (noise::lognormal_mean(rng, mean, sigma), false);
        }
        let base = (mean - press * self.pool_wait_ms * (1.0 - q) - q * POOL_TIMEOUT_MS).max(0.1);
        let work = noise::lognormal_mean(rng, base, sigma);
        if rng.random::<f64>() < q {
            return (POOL_TIMEOUT_MS + work, true);
        }
        (
            work - (1.0 - rng.random::<f64>()).ln() * press * self.pool_wait_ms,
            false,
        )
    }

    /// `P(latency <= x_ms)` for `service` at step `k`.
    pub(crate) fn latency_cdf(&self, service: usize, k: usize, x_ms: f64) -> f64 {
        self.dist(service, k)
            .iter()
            .map(|&(w, mean, sigma)| w * noise::lognormal_cdf(x_ms, mean, sigma))
            .sum()
    }

    /// The `q` quantile of the latency of `service` at step `k`, ms.
    pub(crate) fn latency_quantile(&self, service: usize, k: usize, q: f64) -> f64 {
        let (mut lo, mut hi) = (1e-3_f64.ln(), 1e7_f64.ln());
        for _ in 0..60 {
            let mid = (lo + hi) / 2.0;
            if self.latency_cdf(service, k, mid.exp()) < q {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        ((lo + hi) / 2.0).exp()
    }

    /// One request's latency drawn from the distribution, ms.
    pub(crate) fn sample_latency<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        service: usize,
        k: usize,
    ) -> f64 {
        let [(w, a, sa), (_, b, sb)] = self.dist(service, k);
        let (mean, sigma) = if rng.random::<f64>() < w {
            (a, sa)
        } else {
            (b, sb)
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

/// Requests per second, callers first: the edge follows the daily curve, callees get
/// their callers' calls (retries included), the consumer follows the publisher.
fn traffic(seed: u64, topo: &Topology, plan: &Plan, edges: &EdgeState) -> Vec<f64> {
    let points = plan.clock.points;
    let mut rps = vec![0.0; topo.services.len() * points];
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
                rps[edge.to * points + k] += rps[i] * edge.calls * edges.attempts[e * points + k];
            }
        }
    }
    rps
}
