//! Trace analysis shared by the tracing and network agents: per-service exclusive
//! (self) time, error origins versus propagated errors, and the client-to-server gap
//! of every call, bucketed over time so the detectors can score them.
//!
//! Self time of a span is its duration minus the union of its children's intervals.
//! Server and internal spans' self time is the service's own work; a client span's
//! self time is the gap between the caller's view and the callee's server span
//! (network and queueing). A server span in error is an error *origin* when no server
//! span below it (in another service) is in error, else it *propagates* an error.

use super::common::*;
use crate::agent::{AgentContext, AgentError};
use compass_core::{EpochMs, Span, SpanKind, SpanStatus, TimeRange};
use std::collections::{BTreeMap, HashMap};

/// Per-bucket sums of one quantity and the number of spans behind them.
#[derive(Debug, Clone, Default)]
pub struct Buckets {
    pub sum: BTreeMap<EpochMs, f64>,
    pub count: BTreeMap<EpochMs, f64>,
}

impl Buckets {
    fn add(&mut self, bucket: EpochMs, value: f64) {
        *self.sum.entry(bucket).or_default() += value;
        *self.count.entry(bucket).or_default() += 1.0;
    }
    /// Mean per bucket (buckets without spans omitted).
    pub fn mean(&self) -> Vec<(EpochMs, f64)> {
        self.sum
            .iter()
            .map(|(t, s)| (*t, s / self.count[t]))
            .collect()
    }
    /// Sum per bucket, with empty buckets of `grid` as zero.
    pub fn totals(&self, grid: &[EpochMs]) -> Vec<(EpochMs, f64)> {
        grid.iter()
            .map(|t| (*t, self.sum.get(t).copied().unwrap_or(0.0)))
            .collect()
    }
}

/// What one service's spans show.
#[derive(Debug, Clone, Default)]
pub struct ServiceSpans {
    /// Self time per server request, ms (sum over server and internal spans).
    pub self_ms: Buckets,
    /// Server span durations, ms.
    pub server_ms: Buckets,
    pub error_origins: Buckets,
    pub propagated_errors: Buckets,
    /// Indices of example spans in the incident window: slowest by self time, and
    /// error origins.
    pub slow_examples: Vec<(f64, usize)>,
    pub error_examples: Vec<usize>,
    /// Own time of each server request (its span's self time plus that of the
    /// service's internal spans below it), as (start, ms): baseline, incident.
    pub own_samples: [Vec<(EpochMs, f64)>; 2],
}

/// What the calls from one service to a peer show.
#[derive(Debug, Clone, Default)]
pub struct PairSpans {
    /// Client duration minus the callee's server span, ms.
    pub gap_ms: Buckets,
    pub examples: Vec<(f64, usize)>,
    /// Each call's gap as (start, ms): baseline, incident.
    pub gap_samples: [Vec<(EpochMs, f64)>; 2],
}

/// The analysis of every span in the window.
#[derive(Debug, Default)]
pub struct SpanAnalysis {
    pub spans: Vec<Span>,
    pub bucket_ms: i64,
    /// Bucket starts covering the whole window.
    pub grid: Vec<EpochMs>,
    pub services: BTreeMap<String, ServiceSpans>,
    /// (caller, callee) → gaps.
    pub pairs: BTreeMap<(String, String), PairSpans>,
    pub problems: Vec<String>,
}

/// Keep the `n` largest `(score, index)` entries.
fn keep_top(v: &mut Vec<(f64, usize)>, item: (f64, usize), n: usize) {
    v.push(item);
    v.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    v.truncate(n);
}

/// Length of the union of `intervals` clipped to `[lo, hi]`.
fn union_len(mut intervals: Vec<(f64, f64)>, lo: f64, hi: f64) -> f64 {
    intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut cur: Option<(f64, f64)> = None;
    for (a, b) in intervals {
        let (a, b) = (a.max(lo), b.min(hi));
        if b <= a {
            continue;
        }
        cur = match cur {
            Some((ca, cb)) if a <= cb => Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    total + cur.map_or(0.0, |(a, b)| b - a)
}

/// Fetch every span of the analysis window (paged).
pub async fn fetch_spans(ctx: &AgentContext) -> Result<(Vec<Span>, Vec<String>), AgentError> {
    let traces = traces_source(ctx)?;
    let mut spans = Vec::new();
    let mut problems = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = traces
            .fetch_spans(ctx.window.whole(), None, cursor.as_deref(), PAGE_LIMIT)
            .await?;
        spans.extend(page.items);
        problems.extend(page.problems);
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    Ok((spans, problems))
}

/// Analyse `spans` over `window` in buckets of `bucket_ms`.
pub fn analyse(
    spans: Vec<Span>,
    window: TimeRange,
    bucket_ms: i64,
    incident: TimeRange,
) -> SpanAnalysis {
    let bucket_ms = bucket_ms.max(1);
    let bucket = |t: EpochMs| window.start + (t - window.start).div_euclid(bucket_ms) * bucket_ms;
    let grid: Vec<EpochMs> = (window.start..window.end)
        .step_by(bucket_ms as usize)
        .collect();
    let mut children: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        if let Some(p) = &s.parent_id {
            children
                .entry((s.trace_id.as_str(), p.as_str()))
                .or_default()
                .push(i);
        }
    }
    let kids = |i: usize| -> &[usize] {
        let s = &spans[i];
        children
            .get(&(s.trace_id.as_str(), s.span_id.as_str()))
            .map_or(&[], Vec::as_slice)
    };
    // Whether any server span below `i` in another service is in error.
    let error_below = |i: usize| -> bool {
        let mut stack: Vec<usize> = kids(i).to_vec();
        let mut seen = 0;
        while let Some(j) = stack.pop() {
            seen += 1;
            if seen > 10_000 {
                break;
            }
            let s = &spans[j];
            if s.status == SpanStatus::Error
                && s.kind == SpanKind::Server
                && s.service != spans[i].service
            {
                return true;
            }
            stack.extend_from_slice(kids(j));
        }
        false
    };
    let self_times: Vec<f64> = (0..spans.len())
        .map(|i| {
            let s = &spans[i];
            let start = s.start as f64;
            let end = start + s.duration_ms;
            let child_iv: Vec<(f64, f64)> = kids(i)
                .iter()
                .map(|&c| {
                    (
                        spans[c].start as f64,
                        spans[c].start as f64 + spans[c].duration_ms,
                    )
                })
                .collect();
            (s.duration_ms - union_len(child_iv, start, end)).max(0.0)
        })
        .collect();
    // A server span's own time: its self time plus that of the service's internal
    // spans below it (not its client spans: their self time is the wait on the peer).
    let own_time = |i: usize| -> f64 {
        let mut total = self_times[i];
        let mut stack: Vec<usize> = kids(i).to_vec();
        while let Some(j) = stack.pop() {
            let s = &spans[j];
            if s.service == spans[i].service && s.kind == SpanKind::Internal {
                total += self_times[j];
                stack.extend_from_slice(kids(j));
            }
        }
        total
    };
    let side = |t: EpochMs| -> Option<usize> {
        if incident.contains(t) {
            Some(1)
        } else {
            (t < incident.start).then_some(0)
        }
    };
    let mut services: BTreeMap<String, ServiceSpans> = BTreeMap::new();
    let mut pairs: BTreeMap<(String, String), PairSpans> = BTreeMap::new();
    for (i, s) in spans.iter().enumerate() {
        if !window.contains(s.start) || !s.duration_ms.is_finite() {
            continue;
        }
        let b = bucket(s.start);
        let self_ms = self_times[i];
        match (s.kind, &s.peer_service) {
            (SpanKind::Client, Some(peer)) => {
                let server = kids(i)
                    .iter()
                    .filter(|&&c| spans[c].kind == SpanKind::Server)
                    .map(|&c| spans[c].duration_ms)
                    .fold(f64::NAN, f64::max);
                if server.is_finite() {
                    let gap = (s.duration_ms - server).max(0.0);
                    let p = pairs.entry((s.service.clone(), peer.clone())).or_default();
                    p.gap_ms.add(b, gap);
                    if let Some(k) = side(s.start) {
                        p.gap_samples[k].push((s.start, gap));
                    }
                    if incident.contains(s.start) {
                        keep_top(&mut p.examples, (gap, i), SAMPLE_LINES);
                    }
                }
            }
            (SpanKind::Client, None) => {}
            (kind, _) => {
                let svc = services.entry(s.service.clone()).or_default();
                *svc.self_ms.sum.entry(b).or_default() += self_ms;
                if kind == SpanKind::Server {
                    *svc.self_ms.count.entry(b).or_default() += 1.0;
                    svc.server_ms.add(b, s.duration_ms);
                    if let Some(k) = side(s.start) {
                        svc.own_samples[k].push((s.start, own_time(i)));
                    }
                    if s.status == SpanStatus::Error {
                        if error_below(i) {
                            svc.propagated_errors.add(b, 1.0);
                        } else {
                            svc.error_origins.add(b, 1.0);
                            if incident.contains(s.start) && svc.error_examples.len() < SAMPLE_LINES
                            {
                                svc.error_examples.push(i);
                            }
                        }
                    }
                    if incident.contains(s.start) {
                        keep_top(&mut svc.slow_examples, (self_ms, i), SAMPLE_LINES);
                    }
                }
            }
        }
    }
    // Self time of internal spans in buckets without a server span has no request to
    // divide by: drop those buckets.
    for svc in services.values_mut() {
        let counts = svc.self_ms.count.clone();
        svc.self_ms.sum.retain(|t, _| counts.contains_key(t));
    }
    SpanAnalysis {
        spans,
        bucket_ms,
        grid,
        services,
        pairs,
        problems: Vec::new(),
    }
}

/// Fetch and analyse the spans of the context's window (buckets of at least a minute).
pub async fn analyse_window(ctx: &AgentContext) -> Result<SpanAnalysis, AgentError> {
    let (spans, problems) = fetch_spans(ctx).await?;
    let mut a = analyse(
        spans,
        ctx.window.whole(),
        ctx.step_ms.max(60_000),
        ctx.window.incident,
    );
    a.problems = problems;
    Ok(a)
}

/// A description of the trace search behind an observation.
pub fn search(ctx: &AgentContext, what: &str) -> String {
    let r = ctx.window.whole();
    format!(
        "spans from {} to {} UTC; {what}",
        hhmmss(r.start),
        hhmmss(r.end)
    )
}

#[cfg(test)]
mod tests {
    use super::union_len;

    #[test]
    fn union_of_intervals() {
        assert_eq!(
            union_len(vec![(0.0, 2.0), (1.0, 3.0), (5.0, 6.0)], 0.0, 10.0),
            4.0
        );
        assert_eq!(union_len(vec![(-5.0, 2.0), (8.0, 20.0)], 0.0, 10.0), 4.0);
        assert_eq!(union_len(vec![], 0.0, 10.0), 0.0);
    }
}
