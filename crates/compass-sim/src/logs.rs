//! `logs.jsonl`: every second, each service writes lines in proportion to its traffic
//! (the baseline totals about `log_rate` lines per second), from its templates; requests
//! fail, slow down and log exceptions as the state says. On top come the noise sources
//! (chatty bursts, batch runs), the fault's own lines (GC pressure, pool statistics),
//! lifecycle lines (deploys, OOM kills; see `lifecycle`), and lines for the sampled
//! traces, which share their trace ids.
//!
//! Each second has its own random stream and is sorted before it is written; lines that
//! belong to a later second wait in a small ordered buffer.

use crate::bundle::{Output, TimeFormatter, push_json_str};
use crate::lifecycle;
use crate::noise::{self, Stream};
use crate::plan::{Effect, Plan};
use crate::state::State;
use crate::templates::{self, Ctx, Level, domain, faults, infra};
use crate::topology::{Role, Topology};
use crate::traces::{Kind, SpanRec, TraceGen, push_hex_u128};
use crate::{Progress, SimError};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Share of a service's everyday lines that are request access lines.
const ACCESS_SHARE: f64 = 0.45;
/// Share of the remaining lines drawn from the common templates.
const COMMON_SHARE: f64 = 0.12;

pub(crate) struct LogGen<'a> {
    pub seed: u64,
    pub log_rate: f64,
    pub topo: &'a Topology,
    pub plan: &'a Plan,
    pub state: &'a State,
    pub traces: &'a TraceGen<'a>,
    /// Incoming `METHOD /route` strings per service.
    routes: Vec<Vec<String>>,
    /// Baseline lines per second, `[service * points + k]`.
    rate: Vec<f64>,
    /// `,"service":"..","pod":".."` per pod.
    pod_json: Vec<Vec<u8>>,
    /// Per service: requests slower than this log a slow-request warning.
    slow_ms: Vec<f64>,
}

/// One second's lines: the bytes and a sortable index.
struct Sink {
    arena: Vec<u8>,
    recs: Vec<(i64, u64, usize, usize)>,
    seq: u64,
    fmt: TimeFormatter,
}

impl Sink {
    fn line(
        &mut self,
        ts: i64,
        pod_json: &[u8],
        level: Level,
        trace: Option<u128>,
        msg: &str,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + msg.len() + pod_json.len());
        out.extend_from_slice(b"{\"timestamp\":");
        self.fmt.push_quoted(&mut out, ts);
        out.extend_from_slice(pod_json);
        out.extend_from_slice(b",\"level\":\"");
        out.extend_from_slice(level.as_str().as_bytes());
        out.extend_from_slice(b"\",\"message\":");
        push_json_str(&mut out, msg);
        if let Some(trace) = trace {
            out.extend_from_slice(b",\"trace_id\":\"");
            push_hex_u128(&mut out, trace);
            out.push(b'"');
        }
        out.extend_from_slice(b"}\n");
        out
    }
    fn push(&mut self, ts: i64, pod_json: &[u8], level: Level, trace: Option<u128>, msg: &str) {
        let start = self.arena.len();
        self.arena.extend_from_slice(b"{\"timestamp\":");
        self.fmt.push_quoted(&mut self.arena, ts);
        self.arena.extend_from_slice(pod_json);
        self.arena.extend_from_slice(b",\"level\":\"");
        self.arena.extend_from_slice(level.as_str().as_bytes());
        self.arena.extend_from_slice(b"\",\"message\":");
        push_json_str(&mut self.arena, msg);
        if let Some(trace) = trace {
            self.arena.extend_from_slice(b",\"trace_id\":\"");
            push_hex_u128(&mut self.arena, trace);
            self.arena.push(b'"');
        }
        self.arena.extend_from_slice(b"}\n");
        self.recs.push((ts, self.seq, start, self.arena.len()));
        self.seq += 1;
    }
    fn push_raw(&mut self, ts: i64, seq: u64, bytes: &[u8]) {
        let start = self.arena.len();
        self.arena.extend_from_slice(bytes);
        self.recs.push((ts, seq, start, self.arena.len()));
    }
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
    pub(crate) fn new(seed: u64, log_rate: f64, traces: &'a TraceGen<'a>) -> Self {
        let (topo, plan, state) = (traces.topo, traces.plan, traces.state);
        let points = plan.clock.points;
        let routes = (0..topo.services.len())
            .map(|s| routes_of(topo, s))
            .collect();
        let mean_rps: Vec<f64> = (0..topo.services.len())
            .map(|s| state.rps[s * points..(s + 1) * points].iter().sum::<f64>() / points as f64)
            .collect();
        let norm: f64 = topo
            .services
            .iter()
            .zip(&mean_rps)
            .map(|(svc, r)| svc.log_weight * r)
            .sum::<f64>()
            .max(1e-9);
        let mut rate = vec![0.0; topo.services.len() * points];
        for (s, svc) in topo.services.iter().enumerate() {
            for k in 0..points {
                rate[s * points + k] = log_rate * svc.log_weight * state.rps[s * points + k] / norm;
            }
        }
        let pod_json = plan
            .pods
            .iter()
            .map(|p| {
                let mut v = b",\"service\":".to_vec();
                push_json_str(&mut v, &topo.services[p.service].name);
                v.extend_from_slice(b",\"pod\":");
                push_json_str(&mut v, &p.name);
                v
            })
            .collect();
        let slow_ms = (0..topo.services.len())
            .map(|s| {
                let typical = 3.0 * state.lat0[s * points];
                [
                    25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0, 10_000.0,
                ]
                .into_iter()
                .find(|&t| t >= typical)
                .unwrap_or(30_000.0)
            })
            .collect();
        LogGen {
            seed,
            log_rate,
            topo,
            plan,
            state,
            traces,
            routes,
            rate,
            pod_json,
            slow_ms,
        }
    }

    fn ctx<'r>(&'r self, rng: &'r mut ChaCha8Rng, s: usize, k: usize) -> Ctx<'r, 'r> {
        Ctx {
            rng,
            topo: self.topo,
            state: self.state,
            s,
            k,
            routes: &self.routes[s],
        }
    }

    /// A live pod of `s` at `ms`, weighted by traffic share.
    fn pod(&self, rng: &mut ChaCha8Rng, s: usize, ms: i64) -> usize {
        let pods = &self.plan.pods_of[s];
        let mut x: f64 = rng.random();
        let mut last = pods[0];
        for &p in pods {
            if self.plan.pods[p].live_at(ms) {
                last = p;
                if x < self.plan.pods[p].weight {
                    return p;
                }
                x -= self.plan.pods[p].weight;
            }
        }
        last
    }

    fn render(
        &self,
        rng: &mut ChaCha8Rng,
        s: usize,
        k: usize,
        f: impl FnOnce(&mut Ctx<'_, '_>, &mut String),
    ) -> String {
        let mut msg = String::with_capacity(128);
        let mut c = self.ctx(rng, s, k);
        f(&mut c, &mut msg);
        msg
    }

    /// One everyday line (or a request's few lines) of service `s`.
    fn everyday(&self, rng: &mut ChaCha8Rng, sink: &mut Sink, s: usize, k: usize, ts: i64) {
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
        let msg = self.render(rng, s, k, tpl.render);
        sink.push(ts, &self.pod_json[pod], tpl.level, trace, &msg);
    }

    /// An access line plus whatever the request's fate adds (exception, failed call,
    /// slow-request or slow-upstream warning), all with one trace id.
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
        let mut ms = self
            .state
            .sample_latency(rng, s, k, self.topo.services[s].sigma);
        let mut status = 200;
        if rng.random::<f64>() < self.state.err[i] {
            status = 500;
            if rng.random::<f64>() * self.state.err[i] < self.state.own_err[i] {
                let cause = self.cause(rng, s, k);
                if let Cause::PoolTimeout = cause {
                    ms += 30_000.0;
                }
                let Some(msg) = self.failure(rng, s, k, cause) else {
                    return;
                };
                sink.push(ts, pj, Level::Error, trace, &msg);
            } else if let Some((callee, op, code)) = self.failed_callee(rng, s, k) {
                let msg = self.render(rng, s, k, |c, m| {
                    faults::call_failed(c, &callee, &op, code, m)
                });
                sink.push(ts, pj, Level::Error, trace, &msg);
            }
        }
        let level = if status >= 500 {
            Level::Error
        } else {
            Level::Info
        };
        let msg = self.render(rng, s, k, |c, m| templates::access(c, status, ms, m));
        sink.push(ts, pj, level, trace, &msg);
        if ms > self.slow_ms[s] && rng.random::<f64>() < 0.3 {
            let threshold = self.slow_ms[s];
            let msg = self.render(rng, s, k, |c, m| faults::slow_request(c, ms, threshold, m));
            sink.push(ts, pj, Level::Warn, trace, &msg);
        }
        let fault = &self.plan.fault;
        if let Effect::Delay { .. } = fault.effect
            && self.state.delay_ms[k] > 0.0
            && let Some(&e) = self.topo.out[s]
                .iter()
                .find(|&&e| self.topo.edges[e].to == fault.service)
        {
            let edge = &self.topo.edges[e];
            let callee = &self.topo.services[fault.service].name;
            let op = &edge.ops[0].0;
            let x: f64 = rng.random();
            if x < 0.2 * edge.calls.min(1.0) {
                let sigma = self.topo.services[fault.service].sigma;
                let call_ms = self.state.sample_latency(rng, fault.service, k, sigma)
                    + self.state.delay_ms[k];
                let mut msg = String::new();
                faults::slow_upstream(callee, op, call_ms, &mut msg);
                sink.push(ts, pj, Level::Warn, trace, &msg);
            } else if x < 0.23 * edge.calls.min(1.0) {
                let mut msg = String::new();
                faults::deadline_retry(callee, 250, &mut msg);
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

    fn failure(&self, rng: &mut ChaCha8Rng, s: usize, k: usize, cause: Cause) -> Option<String> {
        Some(match cause {
            Cause::Baseline => self.render(rng, s, k, faults::baseline_error),
            Cause::Injected(t) => self.render(rng, s, k, |c, m| faults::injected_error(c, t, m)),
            Cause::Deploy(t) => self.render(rng, s, k, |c, m| faults::deploy_error(c, t, m)),
            Cause::PoolTimeout => self.render(rng, s, k, faults::pool_timeout),
            Cause::Down => return None,
        })
    }

    /// The callee whose failure made a request of `s` fail, its client op and status.
    fn failed_callee(
        &self,
        rng: &mut ChaCha8Rng,
        s: usize,
        k: usize,
    ) -> Option<(String, String, u16)> {
        let weights: Vec<(usize, f64)> = self.topo.out[s]
            .iter()
            .map(|&e| {
                let edge = &self.topo.edges[e];
                let err = self.state.err[self.state.at(edge.to, k)];
                (
                    e,
                    edge.calls.min(1.0) * err.powi(1 + i32::from(edge.retries)) * edge.propagate,
                )
            })
            .collect();
        let total: f64 = weights.iter().map(|w| w.1).sum();
        if total <= 0.0 {
            return None;
        }
        let mut x = rng.random::<f64>() * total;
        let e = weights.iter().find(|w| {
            x -= w.1;
            x < 0.0
        })?;
        let edge = &self.topo.edges[e.0];
        Some((
            self.topo.services[edge.to].name.clone(),
            edge.ops[0].0.clone(),
            self.status_of(edge.to, k),
        ))
    }

    /// What a caller sees when `callee` fails.
    fn status_of(&self, callee: usize, k: usize) -> u16 {
        let fault = &self.plan.fault;
        let down = self.state.memory.down[self.state.at(callee, k)];
        if callee == fault.service && down > 0.0 {
            503
        } else {
            500
        }
    }

    /// Lines for the sampled traces of second `t` (frontend access lines, exceptions and
    /// failed calls), keyed by time; they may belong to later seconds.
    fn trace_lines(
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
                if let Some(msg) = self.failure(&mut rng, s, k, cause) {
                    lines.push((Level::Error, msg));
                }
            } else if let (true, Some(peer)) = (span.error, span.peer) {
                let op = self.topo.out[s]
                    .iter()
                    .map(|&e| &self.topo.edges[e])
                    .find(|e| e.to == peer)
                    .map_or_else(String::new, |e| e.ops[0].0.clone());
                let code = self.status_of(peer, k);
                let callee = self.topo.services[peer].name.clone();
                lines.push((
                    Level::Error,
                    self.render(&mut rng, s, k, |c, m| {
                        faults::call_failed(c, &callee, &op, code, m)
                    }),
                ));
            }
            if span.parent.is_none() && s == self.topo.edge_service {
                let status = if span.error { 500 } else { 200 };
                let routes = [span.op.to_string()];
                let mut c = Ctx {
                    rng: &mut rng,
                    topo: self.topo,
                    state: self.state,
                    s,
                    k,
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
                let bytes = sink.line(ts, &self.pod_json[pod], level, Some(span.trace), &msg);
                pending.insert((ts, sink.seq), bytes);
                sink.seq += 1;
            }
        }
    }

    /// Per-second lines of the fault itself: GC pressure and exhausted-pool statistics.
    fn fault_ambient(&self, rng: &mut ChaCha8Rng, sink: &mut Sink, ms: i64, k: usize) {
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
                    let pressure = ((used / limit - 0.6) / 0.4).clamp(0.0, 1.0);
                    if pressure > 0.0 && rng.random::<f64>() < 0.05 + 0.45 * pressure {
                        let msg = self.render(rng, s, k, |c, m| {
                            faults::gc_overhead(c, used, limit, pressure, m)
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

/// The `METHOD /route` strings a service serves.
fn routes_of(topo: &Topology, s: usize) -> Vec<String> {
    if s == topo.edge_service {
        return topo.endpoints.iter().map(|e| e.route.to_string()).collect();
    }
    let mut routes: Vec<String> = topo.inc[s]
        .iter()
        .flat_map(|&e| topo.edges[e].ops.iter().map(|op| op.1.clone()))
        .filter(|r| {
            ["GET ", "POST ", "PUT ", "DELETE "]
                .iter()
                .any(|m| r.starts_with(m))
        })
        .collect();
    routes.sort();
    routes.dedup();
    if routes.is_empty() {
        routes.push(format!("POST /v1/{}", topo.services[s].domain));
    }
    routes
}

/// Writes `logs.jsonl`; returns the number of lines.
pub(crate) fn write(
    out: &mut Output,
    sim: &LogGen<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<u64, SimError> {
    let clock = sim.plan.clock;
    let seconds = clock.duration_s;
    let mut sink = Sink {
        arena: Vec::with_capacity(1 << 20),
        recs: Vec::new(),
        seq: 0,
        fmt: TimeFormatter::default(),
    };
    let mut pending: BTreeMap<(i64, u64), Vec<u8>> = BTreeMap::new();
    for line in lifecycle::scheduled(sim) {
        let bytes = sink.line(
            line.ts,
            &sim.pod_json[line.pod],
            line.level,
            None,
            &line.message,
        );
        pending.insert((line.ts, sink.seq), bytes);
        sink.seq += 1;
    }
    let mut spans = Vec::new();
    let mut written = 0u64;
    let n_svc = sim.topo.services.len();
    for t in 0..seconds {
        let ms = clock.start_ms + t as i64 * 1000;
        let k = clock.step(ms);
        let mut rng = noise::rng(sim.seed, Stream::Logs, t);
        sink.arena.clear();
        sink.recs.clear();
        for s in 0..n_svc {
            let n = noise::round_random(&mut rng, sim.rate[s * clock.points + k]);
            for _ in 0..n {
                let ts = ms + rng.random_range(0..1000);
                sim.everyday(&mut rng, &mut sink, s, k, ts);
            }
        }
        let extra = [
            (
                sim.plan.noise.chatty_active(ms),
                sim.plan.noise.chatty_service,
                infra::CHATTY,
                (0.5 * sim.log_rate).max(5.0),
            ),
            (
                sim.plan.noise.batch_active(ms),
                sim.plan.noise.batch_service,
                infra::BATCH_RUN,
                (0.02 * sim.log_rate).max(1.0),
            ),
        ];
        for (active, s, table, rate) in extra {
            if !active {
                continue;
            }
            for _ in 0..noise::round_random(&mut rng, rate) {
                let ts = ms + rng.random_range(0..1000);
                let pod = sim.pod(&mut rng, s, ts);
                let tpl = templates::choose(&mut rng, table);
                let msg = sim.render(&mut rng, s, k, tpl.render);
                sink.push(ts, &sim.pod_json[pod], tpl.level, None, &msg);
            }
        }
        sim.fault_ambient(&mut rng, &mut sink, ms, k);
        sim.trace_lines(t, &mut spans, &mut pending, &mut sink);
        let horizon = ms + 1000;
        while let Some(entry) = pending.first_entry() {
            if entry.key().0 >= horizon {
                break;
            }
            let ((ts, seq), bytes) = entry.remove_entry();
            sink.push_raw(ts, seq, &bytes);
        }
        sink.recs.sort_unstable_by_key(|r| (r.0, r.1));
        let mut chunk = Vec::with_capacity(sink.arena.len());
        for &(_, _, a, b) in &sink.recs {
            chunk.extend_from_slice(&sink.arena[a..b]);
        }
        out.write(&chunk)?;
        written += sink.recs.len() as u64;
        if t % 30 == 0 {
            progress(Progress {
                phase: "logs",
                done: t,
                total: seconds,
            });
        }
    }
    progress(Progress {
        phase: "logs",
        done: seconds,
        total: seconds,
    });
    Ok(written)
}
