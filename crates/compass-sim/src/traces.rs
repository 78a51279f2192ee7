//! Sampled traces: requests walked through the call graph from the frontend (plus the
//! notification consumer and the report batch), with timings and errors drawn from the
//! state. A call is a client span in the caller whose child is a server span in the
//! callee; network delay sits between the two. Failed calls are retried where the edge
//! retries, and failures propagate up as error status.
//!
//! Each second's traces come from their own seeded stream, so the log pass can regenerate
//! them to write log lines that share trace ids. Writing keeps only the spans that may
//! still be overtaken in start order (one trace's duration) in memory.

use crate::Progress;
use crate::SimError;
use crate::bundle::{Output, TimeFormatter, push_json_str, push_num};
use crate::noise::{self, Stream};
use crate::plan::Plan;
use crate::state::State;
use crate::topology::Topology;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Server,
    Client,
    Internal,
}

/// One generated span.
#[derive(Debug, Clone)]
pub(crate) struct SpanRec<'a> {
    pub trace: u128,
    pub id: u64,
    pub parent: Option<u64>,
    pub service: usize,
    pub kind: Kind,
    pub op: &'a str,
    /// Start, epoch ms (fractional).
    pub start: f64,
    pub duration: f64,
    pub error: bool,
    /// The failure started here (not in a callee).
    pub own_error: bool,
    /// Client spans: the callee. Failed server spans: the callee whose failure propagated.
    pub peer: Option<usize>,
    /// Client spans: the attempt hit the deadline. Server spans: the propagated failure
    /// was a deadline.
    pub timed_out: bool,
    /// Pre-order position within the second's traces (parents before children).
    pub order: u32,
}

/// Upper bound on spans per trace (keeps pathological graphs bounded).
const MAX_SPANS: usize = 2000;

#[derive(Debug)]
pub(crate) struct TraceGen<'a> {
    pub seed: u64,
    pub trace_rate: f64,
    pub topo: &'a Topology,
    pub plan: &'a Plan,
    pub state: &'a State,
}

impl<'a> TraceGen<'a> {
    /// All spans of the traces whose root starts in second `t` of the window (unsorted).
    pub(crate) fn second(&self, t: u64, out: &mut Vec<SpanRec<'a>>) {
        let mut rng = noise::rng(self.seed, Stream::Traces, t);
        let ms = self.plan.clock.start_ms + t as i64 * 1000;
        let k = self.plan.clock.step(ms);
        let fe = self.topo.edge_service;
        let (notif, batch) = (self.topo.feed.1, self.plan.noise.batch_service);
        let fe_rps = self.state.rps[self.state.at(fe, k)].max(1e-9);
        let roots = [
            (fe, self.trace_rate),
            (
                notif,
                self.trace_rate * self.state.rps[self.state.at(notif, k)] / fe_rps,
            ),
            (
                batch,
                if self.plan.noise.batch_active(ms) {
                    self.trace_rate * 0.1
                } else {
                    0.0
                },
            ),
        ];
        let mut order = 0;
        for (service, rate) in roots {
            for _ in 0..noise::round_random(&mut rng, rate) {
                let start = ms as f64 + rng.random::<f64>() * 1000.0;
                let trace: u128 = rng.random();
                let mut walk = Walk {
                    sim: self,
                    rng: &mut rng,
                    trace,
                    out,
                    budget: MAX_SPANS,
                    order,
                };
                walk.root(service, start);
                order = walk.order;
            }
        }
    }
}

struct Walk<'g, 'a, 'o> {
    sim: &'g TraceGen<'a>,
    rng: &'g mut ChaCha8Rng,
    trace: u128,
    out: &'o mut Vec<SpanRec<'a>>,
    budget: usize,
    order: u32,
}

impl<'a> Walk<'_, 'a, '_> {
    fn root(&mut self, service: usize, start: f64) {
        let topo = self.sim.topo;
        if service == topo.edge_service {
            let total: f64 = topo.endpoints.iter().map(|e| e.weight).sum();
            let mut x = self.rng.random::<f64>() * total;
            let ep = topo.endpoints.iter().find(|e| {
                x -= e.weight;
                x < 0.0
            });
            let ep = ep.unwrap_or(&topo.endpoints[0]);
            let calls: Vec<(usize, usize)> = ep
                .calls
                .iter()
                .flat_map(|&(e, mean, op)| std::iter::repeat_n((e, op), self.count(mean)))
                .collect();
            self.server(service, ep.route, Kind::Server, start, None, Some(calls));
        } else if service == self.sim.plan.noise.batch_service {
            self.server(
                service,
                "run report daily_sales (chunk)",
                Kind::Internal,
                start,
                None,
                None,
            );
        } else {
            self.server(
                service,
                "order-events process",
                Kind::Server,
                start,
                None,
                None,
            );
        }
    }

    fn count(&mut self, mean: f64) -> usize {
        noise::round_random(self.rng, mean) as usize
    }

    fn span_id(&mut self) -> u64 {
        self.rng.random::<u64>() | 1
    }

    fn next_order(&mut self) -> u32 {
        self.order += 1;
        self.order
    }

    /// A server (or internal) span in `s` and everything below it; returns its end and
    /// whether it failed.
    fn server(
        &mut self,
        s: usize,
        op: &'a str,
        kind: Kind,
        start: f64,
        parent: Option<u64>,
        calls: Option<Vec<(usize, usize)>>,
    ) -> (f64, bool) {
        let (sim, state) = (self.sim, self.sim.state);
        let svc = &sim.topo.services[s];
        let k = sim.plan.clock.step(start as i64);
        let i = state.at(s, k);
        let id = self.span_id();
        let order = self.next_order();
        self.budget = self.budget.saturating_sub(1);
        let (own, mut own_error) = state.sample_own(self.rng, s, k, svc.sigma);
        if !own_error {
            own_error = self.rng.random::<f64>() < state.own_err[i] - state.pool_timeouts(s, k);
        }
        let calls = calls.unwrap_or_else(|| {
            sim.topo.out[s]
                .iter()
                .flat_map(|&e| {
                    let edge = &sim.topo.edges[e];
                    let n = noise::round_random(self.rng, edge.calls) as usize;
                    let op = self.rng.random_range(0..edge.ops.len());
                    std::iter::repeat_n((e, op), n)
                })
                .collect()
        });
        let pre = own * self.rng.random_range(0.1..0.4);
        let mut cursor = start + pre;
        let mut error = own_error;
        let (mut failed_peer, mut failed_by_timeout) = (None, false);
        for (e, op) in calls {
            if self.budget == 0 {
                break;
            }
            let edge = &sim.topo.edges[e];
            let (client_op, server_op) = (&edge.ops[op].0, &edge.ops[op].1);
            let attempts = 1 + usize::from(edge.retries);
            let (mut failed, mut timed_out) = (false, false);
            for _ in 0..attempts {
                let client_id = self.span_id();
                let client_order = self.next_order();
                let delay = if edge.to == sim.plan.fault.service {
                    state.delay_ms[k]
                } else {
                    0.0
                };
                let net_out = edge.net_ms * noise::lognormal_mean(self.rng, 1.0, 0.3) + delay / 2.0;
                let net_back =
                    edge.net_ms * noise::lognormal_mean(self.rng, 1.0, 0.3) + delay / 2.0;
                let (srv_end, srv_err) = self.server(
                    edge.to,
                    server_op,
                    Kind::Server,
                    cursor + net_out,
                    Some(client_id),
                    None,
                );
                // The client gives up at its deadline; the server carries on regardless.
                timed_out = srv_end + net_back - cursor > edge.timeout_ms;
                let end = if timed_out {
                    cursor + edge.timeout_ms
                } else {
                    srv_end + net_back
                };
                failed = srv_err || timed_out;
                self.push(SpanRec {
                    trace: self.trace,
                    id: client_id,
                    parent: Some(id),
                    service: s,
                    kind: Kind::Client,
                    op: client_op,
                    start: cursor,
                    duration: end - cursor,
                    error: failed,
                    own_error: false,
                    peer: Some(edge.to),
                    timed_out,
                    order: client_order,
                });
                cursor = end;
                if !failed || self.budget == 0 {
                    break;
                }
            }
            if failed && !error && self.rng.random::<f64>() < edge.propagate {
                error = true;
                failed_peer = Some(edge.to);
                failed_by_timeout = timed_out;
            }
        }
        let end = cursor + (own - pre);
        self.push(SpanRec {
            trace: self.trace,
            id,
            parent,
            service: s,
            kind,
            op,
            start,
            duration: end - start,
            error,
            own_error,
            peer: failed_peer,
            timed_out: failed_by_timeout,
            order,
        });
        (end, error)
    }

    fn push(&mut self, span: SpanRec<'a>) {
        self.out.push(span);
    }
}

/// Writes `traces.jsonl` in start order; returns the number of spans.
pub(crate) fn write(
    out: &mut Output,
    sim: &TraceGen<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<u64, SimError> {
    let seconds = sim.plan.clock.duration_s;
    // Keyed by (start in microseconds, second, pre-order position).
    let mut pending: BinaryHeap<Reverse<(i64, u64, u32, usize)>> = BinaryHeap::new();
    let mut store: Vec<Option<SpanRec<'_>>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut batch = Vec::new();
    let mut buf = Vec::with_capacity(1 << 16);
    let mut fmt = TimeFormatter::default();
    let mut written = 0u64;
    for t in 0..=seconds {
        if t < seconds {
            batch.clear();
            sim.second(t, &mut batch);
            for span in batch.drain(..) {
                let key = ((span.start * 1000.0).floor() as i64, t, span.order);
                let slot = match free.pop() {
                    Some(slot) => {
                        store[slot] = Some(span);
                        slot
                    }
                    None => {
                        store.push(Some(span));
                        store.len() - 1
                    }
                };
                pending.push(Reverse((key.0, key.1, key.2, slot)));
            }
        }
        let horizon = if t < seconds {
            (sim.plan.clock.start_ms + (t as i64 + 1) * 1000) * 1000
        } else {
            i64::MAX
        };
        while let Some(Reverse((start, _, _, slot))) = pending.peek().copied() {
            if start >= horizon {
                break;
            }
            pending.pop();
            let span = store[slot].take().expect("pending spans are stored");
            free.push(slot);
            write_span(&mut buf, &mut fmt, sim.topo, &span);
            written += 1;
        }
        if buf.len() >= 1 << 16 {
            out.write(&buf)?;
            buf.clear();
        }
        if t % 60 == 0 {
            progress(Progress {
                phase: "traces",
                done: t,
                total: seconds,
            });
        }
    }
    out.write(&buf)?;
    progress(Progress {
        phase: "traces",
        done: seconds,
        total: seconds,
    });
    Ok(written)
}

fn write_span(buf: &mut Vec<u8>, fmt: &mut TimeFormatter, topo: &Topology, span: &SpanRec<'_>) {
    buf.extend_from_slice(b"{\"trace_id\":\"");
    push_hex_u128(buf, span.trace);
    buf.extend_from_slice(b"\",\"span_id\":\"");
    push_hex_u64(buf, span.id);
    buf.extend_from_slice(b"\",\"parent_id\":");
    match span.parent {
        Some(p) => {
            buf.push(b'"');
            push_hex_u64(buf, p);
            buf.push(b'"');
        }
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b",\"service\":");
    push_json_str(buf, &topo.services[span.service].name);
    buf.extend_from_slice(b",\"operation\":");
    push_json_str(buf, span.op);
    buf.extend_from_slice(match span.kind {
        Kind::Server => b",\"kind\":\"server\",\"start\":",
        Kind::Client => b",\"kind\":\"client\",\"start\":",
        Kind::Internal => b",\"kind\":\"internal\",\"start\":",
    });
    fmt.push_quoted(buf, span.start.floor() as i64);
    buf.extend_from_slice(b",\"duration_ms\":");
    push_num(buf, span.duration.max(0.001));
    buf.extend_from_slice(if span.error {
        b",\"status\":\"error\""
    } else {
        b",\"status\":\"ok\""
    });
    if let (Kind::Client, Some(peer)) = (span.kind, span.peer) {
        buf.extend_from_slice(b",\"peer_service\":");
        push_json_str(buf, &topo.services[peer].name);
    }
    buf.extend_from_slice(b"}\n");
}

const HEX: &[u8; 16] = b"0123456789abcdef";

pub(crate) fn push_hex_u128(buf: &mut Vec<u8>, v: u128) {
    for i in (0..32).rev() {
        buf.push(HEX[((v >> (i * 4)) & 0xf) as usize]);
    }
}

pub(crate) fn push_hex_u64(buf: &mut Vec<u8>, v: u64) {
    for i in (0..16).rev() {
        buf.push(HEX[((v >> (i * 4)) & 0xf) as usize]);
    }
}
