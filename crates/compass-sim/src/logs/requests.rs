//! The lines of requests (access line, exception, failed call, slow-request and
//! slow-upstream warnings), of the sampled traces, and of the fault's own ambient
//! signals (GC pressure, exhausted pool statistics).

use super::sink::Sink;
use super::{ACCESS_SHARE, COMMON_SHARE, LogGen};
use crate::noise::{self, Stream};
use crate::plan::Effect;
use crate::pods::GC_THRESHOLD;
use crate::state::POOL_TIMEOUT_MS;
use crate::templates::{self, Ctx, Level, domain, faults};
use crate::topology::Role;
use crate::traces::{Kind, SpanRec};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// A failed call as the caller logs it.
#[derive(Debug)]
struct FailedCall {
    callee: String,
    op: String,
    code: u16,
    ms: f64,
}

/// Why a request failed inside the service that logs it.
#[derive(Debug, Clone, Copy)]
enum Cause {
    Baseline,
    Injected(usize),
    Deploy(usize),
    PoolTimeout,
    /// The pod was being OOM-killed: it logs nothing, callers see 503.
    Down,
}

impl<'a> LogGen<'a> {
    /// One everyday line (or a request's few lines) of service `s`.
    pub(super) fn everyday(
        &self,
        rng: &mut ChaCha8Rng,
        sink: &mut Sink,
        s: usize,
        k: usize,
        ts: i64,
    ) {
        let svc = &self.topo.services[s];
        let pod = self.pod(rng, s, ts);
        if templates::has_access_log(svc.flavor) && rng.random::<f64>() < ACCESS_SHARE {
            self.request(rng, sink, s, k, ts, pod);
            return;
        }
        let table =
            if matches!(svc.role, Role::App | Role::Edge) && rng.random::<f64>() < COMMON_SHARE {
                domain::COMMON
            } else {
                templates::for_flavor(svc.flavor)
            };
        let tpl = templates::choose(rng, table);
        let trace = tpl.scoped.then(|| rng.random::<u128>());
        let msg = self.render(rng, s, tpl.render);
        sink.push(ts, &self.pod_json[pod], tpl.level, trace, &msg);
    }

    /// An access line plus whatever the request's fate adds (exception, failed call,
    /// deadline retry, slow-request or slow-upstream warning), all with one trace id.
    fn request(
        &self,
        rng: &mut ChaCha8Rng,
        sink: &mut Sink,
        s: usize,
        k: usize,
        ts: i64,
        pod: usize,
    ) {
        let i = self.state.at(s, k);
        let trace = Some(rng.random::<u128>());
        let pj = &self.pod_json[pod];
        let mut ms = self.request_latency(rng, s, k);
        let failed = rng.random::<f64>() < self.state.err[i];
        if failed {
            if rng.random::<f64>() * self.state.err[i] < self.state.own_err[i] {
                let cause = self.cause(rng, s, k);
                if let Cause::PoolTimeout = cause {
                    let sigma = self.topo.services[s].sigma;
                    ms = POOL_TIMEOUT_MS + noise::lognormal_mean(rng, self.state.lat0[i], sigma);
                }
                let Some(msg) = self.failure(rng, s, cause) else {
                    return;
                };
                sink.push(ts, pj, Level::Error, trace, &msg);
            } else if let Some(call) = self.failed_callee(rng, s, k) {
                let mut msg = String::new();
                faults::call_failed(&call.callee, &call.op, call.code, call.ms, &mut msg);
                sink.push(ts, pj, Level::Error, trace, &msg);
            }
        }
        self.retried_deadlines(rng, sink, s, k, ts, pj, trace);
        let (status, level) = if failed {
            (500, Level::Error)
        } else {
            (200, Level::Info)
        };
        let msg = self.render(rng, s, |c, m| templates::access(c, status, ms, m));
        sink.push(ts, pj, level, trace, &msg);
        if ms > self.slow_ms[s] && rng.random::<f64>() < 0.3 {
            let threshold = self.slow_ms[s];
            let msg = self.render(rng, s, |c, m| faults::slow_request(c, ms, threshold, m));
            sink.push(ts, pj, Level::Warn, trace, &msg);
        }
        let fault = &self.plan.fault;
        if self.state.delay_ms[k] > 0.0
            && let Some(&e) = self.topo.out[s]
                .iter()
                .find(|&&e| self.topo.edges[e].to == fault.service)
        {
            let edge = &self.topo.edges[e];
            if rng.random::<f64>() < 0.2 * edge.calls.min(1.0) {
                let call_ms = self.call_latency(rng, e, k);
                let mut msg = String::new();
                faults::slow_upstream(
                    &self.topo.services[edge.to].name,
                    &edge.ops[0].0,
                    call_ms,
                    &mut msg,
                );
                sink.push(ts, pj, Level::Warn, trace, &msg);
            }
        }
    }

    /// Latency of one request of `s` that got an answer (not stalled on the DB pool), ms.
    fn request_latency(&self, rng: &mut ChaCha8Rng, s: usize, k: usize) -> f64 {
        if self.state.pool_timeouts(s, k) > 0.0 {
            let [(_, mean, sigma), _] = self.state.dist(s, k);
            return noise::lognormal_mean(rng, mean, sigma);
        }
        self.state.sample_latency(rng, s, k)
    }

    /// One attempt's client-side time on edge `e`, ms (capped by the deadline).
    fn call_latency(&self, rng: &mut ChaCha8Rng, e: usize, k: usize) -> f64 {
        let edge = &self.topo.edges[e];
        let delay = if edge.to == self.state.fault_service {
            self.state.delay_ms[k]
        } else {
            0.0
        };
        let server = self.request_latency(rng, edge.to, k);
        (server + 2.0 * edge.net_ms + delay).min(edge.timeout_ms)
    }

    /// Warnings for calls that hit their deadline and were retried.
    #[allow(clippy::too_many_arguments)]
    fn retried_deadlines(
        &self,
        rng: &mut ChaCha8Rng,
        sink: &mut Sink,
        s: usize,
        k: usize,
        ts: i64,
        pj: &[u8],
        trace: Option<u128>,
    ) {
        let points = self.plan.clock.points;
        for &e in &self.topo.out[s] {
            let edge = &self.topo.edges[e];
            let p = self.state.edges.timeout[e * points + k];
            if edge.retries > 0 && p > 1e-4 && rng.random::<f64>() < edge.calls.min(1.0) * p {
                let mut msg = String::new();
                faults::deadline_retry(
                    &self.topo.services[edge.to].name,
                    edge.timeout_ms,
                    &mut msg,
                );
                sink.push(ts, pj, Level::Warn, trace, &msg);
            }
        }
    }

    /// Whether an own failure of `s` is the fault's doing, and how.
    fn cause(&self, rng: &mut ChaCha8Rng, s: usize, k: usize) -> Cause {
        let fault = &self.plan.fault;
        if s != fault.service {
            return Cause::Baseline;
        }
        let own = self.state.own_err[self.state.at(s, k)];
        let fault_share = ((own - self.topo.services[s].base_err) / own).max(0.0);
        if rng.random::<f64>() >= fault_share {
            return Cause::Baseline;
        }
        match fault.effect {
            Effect::Errors { template, .. } => Cause::Injected(template),
            Effect::Deploy { template, .. } => Cause::Deploy(template),
            Effect::Pool { .. } => Cause::PoolTimeout,
            Effect::Leak { .. } => Cause::Down,
            Effect::Cpu { .. } | Effect::Delay { .. } => Cause::Baseline,
        }
    }

    fn failure(&self, rng: &mut ChaCha8Rng, s: usize, cause: Cause) -> Option<String> {
        Some(match cause {
            Cause::Baseline => self.render(rng, s, faults::baseline_error),
            Cause::Injected(t) => self.render(rng, s, |c, m| faults::injected_error(c, t, m)),
            Cause::Deploy(t) => self.render(rng, s, |c, m| faults::deploy_error(c, t, m)),
            Cause::PoolTimeout => self.render(rng, s, faults::pool_timeout),
            Cause::Down => return None,
        })
    }

    /// The call whose failure made a request of `s` fail: the callee is drawn by its share
    /// of the failures, then whether it was a deadline (504) or the callee's own error.
    fn failed_callee(&self, rng: &mut ChaCha8Rng, s: usize, k: usize) -> Option<FailedCall> {
        let points = self.plan.clock.points;
        let weights: Vec<(usize, f64)> = self.topo.out[s]
            .iter()
            .map(|&e| {
                let edge = &self.topo.edges[e];
                (
                    e,
                    edge.calls.min(1.0) * self.state.edges.fail[e * points + k] * edge.propagate,
                )
            })
            .collect();
        let total: f64 = weights.iter().map(|w| w.1).sum();
        if total <= 0.0 {
            return None;
        }
        let mut x = rng.random::<f64>() * total;
        let &(e, _) = weights.iter().find(|w| {
            x -= w.1;
            x < 0.0
        })?;
        let edge = &self.topo.edges[e];
        let p_to = self.state.edges.timeout[e * points + k];
        let p_fail = p_to + (1.0 - p_to) * self.state.err[self.state.at(edge.to, k)];
        let timed_out = rng.random::<f64>() * p_fail < p_to;
        Some(self.failed_call(rng, e, k, timed_out))
    }

    fn failed_call(&self, rng: &mut ChaCha8Rng, e: usize, k: usize, timed_out: bool) -> FailedCall {
        let edge = &self.topo.edges[e];
        let (code, ms) = if timed_out {
            (504, edge.timeout_ms)
        } else {
            (self.status_of(edge.to, k), self.call_latency(rng, e, k))
        };
        FailedCall {
            callee: self.topo.services[edge.to].name.clone(),
            op: edge.ops[0].0.clone(),
            code,
            ms,
        }
    }

    /// What a caller sees when `callee` answers with an error.
    fn status_of(&self, callee: usize, k: usize) -> u16 {
        let down = self.state.memory.down[self.state.at(callee, k)];
        if callee == self.state.fault_service && down > 0.0 {
            503
        } else {
            500
        }
    }

    /// Lines for the sampled traces of second `t` (frontend access lines, exceptions and
    /// failed calls), keyed by time; they may belong to later seconds.
    pub(super) fn trace_lines(
        &self,
        t: u64,
        spans: &mut Vec<SpanRec<'a>>,
        pending: &mut BTreeMap<(i64, u64), Vec<u8>>,
        sink: &mut Sink,
    ) {
        spans.clear();
        self.traces.second(t, spans);
        let mut rng = noise::rng(self.seed, Stream::Logs, t | 1 << 40);
        let end_ms = self.plan.clock.end_ms();
        for span in spans.iter().filter(|sp| sp.kind == Kind::Server) {
            let ts = (span.start + span.duration).floor() as i64;
            if ts >= end_ms {
                continue;
            }
            let s = span.service;
            let k = self.plan.clock.step(ts);
            let pod = self.pod(&mut rng, s, ts);
            let mut lines: Vec<(Level, String)> = Vec::new();
            if span.own_error {
                let cause = self.cause(&mut rng, s, k);
                if let Some(msg) = self.failure(&mut rng, s, cause) {
                    lines.push((Level::Error, msg));
                }
            } else if let (true, Some(peer)) = (span.error, span.peer)
                && let Some(&e) = self.topo.out[s]
                    .iter()
                    .find(|&&e| self.topo.edges[e].to == peer)
            {
                let call = self.failed_call(&mut rng, e, k, span.timed_out);
                let mut msg = String::new();
                faults::call_failed(&call.callee, &call.op, call.code, call.ms, &mut msg);
                lines.push((Level::Error, msg));
            }
            if span.parent.is_none() && s == self.topo.edge_service {
                let status = if span.error { 500 } else { 200 };
                let routes = [span.op.to_string()];
                let mut c = Ctx {
                    rng: &mut rng,
                    topo: self.topo,
                    s,
                    routes: &routes,
                };
                let mut msg = String::new();
                templates::access(&mut c, status, span.duration, &mut msg);
                lines.push((
                    if span.error {
                        Level::Error
                    } else {
                        Level::Info
                    },
                    msg,
                ));
            }
            for (level, msg) in lines {
                let (seq, bytes) =
                    sink.line(ts, &self.pod_json[pod], level, Some(span.trace), &msg);
                pending.insert((ts, seq), bytes);
            }
        }
    }

    /// Per-second lines of the fault itself: GC pressure and exhausted-pool statistics.
    pub(super) fn fault_ambient(&self, rng: &mut ChaCha8Rng, sink: &mut Sink, ms: i64, k: usize) {
        let fault = &self.plan.fault;
        let s = fault.service;
        let points = self.plan.clock.points;
        for &p in &self.plan.pods_of[s] {
            if !self.plan.pods[p].live_at(ms) {
                continue;
            }
            let ts = ms + rng.random_range(0..1000);
            match fault.effect {
                Effect::Leak { .. } if ms >= fault.start_ms => {
                    let limit = self.topo.services[s].mem_limit;
                    let used = self.state.memory.mem[p * points + k];
                    let pressure =
                        ((used / limit - GC_THRESHOLD) / (1.0 - GC_THRESHOLD)).clamp(0.0, 1.0);
                    if pressure > 0.0 && rng.random::<f64>() < 0.05 + 0.45 * pressure {
                        // Pauses long enough to explain the requests' slowdown.
                        let i = self.state.at(s, k);
                        let pause = 10.0 + 2.0 * (self.state.lat[i] - self.state.lat0[i]).max(0.0);
                        let msg = self.render(rng, s, |c, m| {
                            faults::gc_overhead(c, used, limit, pressure, pause, m)
                        });
                        sink.push(ts, &self.pod_json[p], Level::Warn, None, &msg);
                    }
                }
                Effect::Pool { .. } => {
                    let pending = self.state.usage.pool_pending[p * points + k];
                    if pending > 0.0 && rng.random::<f64>() < 0.2 {
                        let max = self.topo.services[s].pool_max.unwrap_or(10);
                        let mut msg = String::new();
                        faults::pool_exhausted(max, pending as u32, &mut msg);
                        sink.push(ts, &self.pod_json[p], Level::Warn, None, &msg);
                    }
                }
                _ => {}
            }
        }
    }
}
