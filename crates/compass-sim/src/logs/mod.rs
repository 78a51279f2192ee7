//! `logs.jsonl`: every second, each service writes lines in proportion to its traffic
//! (the baseline totals about `log_rate` lines per second), from its templates; requests
//! fail, slow down and log exceptions as the state says. On top come the noise sources
//! (chatty bursts, batch runs), the fault's own lines (GC pressure, pool statistics),
//! lifecycle lines (deploys, OOM kills; see `lifecycle`), and lines for the sampled
//! traces, which share their trace ids.
//!
//! Each second has its own random stream and is sorted before it is written; lines that
//! belong to a later second wait in a small ordered buffer.

mod requests;
mod sink;

use crate::bundle::{Output, push_json_str};
use crate::lifecycle;
use crate::noise::{self, Stream};
use crate::plan::Plan;
use crate::state::State;
use crate::templates::{self, Ctx, infra};
use crate::topology::Topology;
use crate::traces::TraceGen;
use crate::{Progress, SimError};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sink::Sink;
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

    fn ctx<'r>(&'r self, rng: &'r mut ChaCha8Rng, s: usize) -> Ctx<'r, 'r> {
        Ctx {
            rng,
            topo: self.topo,
            s,
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
        f: impl FnOnce(&mut Ctx<'_, '_>, &mut String),
    ) -> String {
        let mut msg = String::with_capacity(128);
        let mut c = self.ctx(rng, s);
        f(&mut c, &mut msg);
        msg
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
    if sim.log_rate <= 0.0 {
        // No logs asked for: none at all, not even the noise and lifecycle lines.
        progress(Progress {
            phase: "logs",
            done: seconds,
            total: seconds,
        });
        return Ok(0);
    }
    let mut sink = Sink::default();
    let mut pending: BTreeMap<(i64, u64), Vec<u8>> = BTreeMap::new();
    for line in lifecycle::scheduled(sim) {
        let (seq, bytes) = sink.line(
            line.ts,
            &sim.pod_json[line.pod],
            line.level,
            None,
            &line.message,
        );
        pending.insert((line.ts, seq), bytes);
    }
    let mut spans = Vec::new();
    let mut written = 0u64;
    let n_svc = sim.topo.services.len();
    for t in 0..seconds {
        let ms = clock.start_ms + t as i64 * 1000;
        let k = clock.step(ms);
        let mut rng = noise::rng(sim.seed, Stream::Logs, t);
        sink.clear();
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
                let msg = sim.render(&mut rng, s, tpl.render);
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
