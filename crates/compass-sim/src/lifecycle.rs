//! Log lines tied to moments rather than traffic: pods starting and stopping around
//! deploys, configuration reloads, OOM kills and the restarts after them, and the start
//! and end of each report-batch run. Computed once, up front, from their own stream.

use crate::logs::LogGen;
use crate::noise::{self, Stream};
use crate::templates::{Ctx, Level, faults, w};
use compass_core::ChangeKind;
use rand::Rng;

/// A line due at a given time on a given pod.
#[derive(Debug, Clone)]
pub(crate) struct Scheduled {
    pub ts: i64,
    pub pod: usize,
    pub level: Level,
    pub message: String,
}

/// Collects scheduled lines.
#[derive(Debug, Default)]
struct Lines(Vec<Scheduled>);

impl Lines {
    fn add(&mut self, ts: i64, pod: usize, level: Level, render: impl FnOnce(&mut String)) {
        let mut message = String::new();
        render(&mut message);
        self.0.push(Scheduled {
            ts,
            pod,
            level,
            message,
        });
    }
}

pub(crate) fn scheduled(sim: &LogGen<'_>) -> Vec<Scheduled> {
    let (topo, plan, state) = (sim.topo, sim.plan, sim.state);
    let mut rng = noise::rng(sim.seed, Stream::Logs, u64::MAX);
    let mut out = Lines::default();
    let version_at = |s: usize, ms: i64| {
        plan.events
            .iter()
            .filter(|e| e.service == s && e.kind == ChangeKind::Deploy && e.ts <= ms)
            .filter_map(|e| e.version.clone())
            .next_back()
            .unwrap_or_else(|| {
                let v = topo.services[s].version;
                format!("v{}.{}.{}", v.0, v.1, v.2)
            })
    };
    // A process coming up: "Starting ..." then, a few seconds later, "Started ... in Ns".
    let boot =
        |out: &mut Lines, rng: &mut rand_chacha::ChaCha8Rng, at: i64, p: usize, version: &str| {
            let pod = &plan.pods[p];
            let name = &topo.services[pod.service].name;
            out.add(at, p, Level::Info, |m| {
                faults::starting(name, version, &pod.name, m)
            });
            let took = rng.random_range(3000..12_000);
            out.add(at + took, p, Level::Info, |m| {
                faults::started(name, took as f64 / 1000.0 + 0.4, m)
            });
        };
    for ev in &plan.events {
        let s = ev.service;
        for &p in &plan.pods_of[s] {
            let pod = &plan.pods[p];
            match ev.kind {
                ChangeKind::Deploy if pod.from_ms == ev.ts => {
                    let at = ev.ts + rng.random_range(1000..8000);
                    boot(&mut out, &mut rng, at, p, &version_at(s, ev.ts));
                }
                ChangeKind::Deploy if pod.until_ms == ev.ts => {
                    out.add(
                        ev.ts + rng.random_range(0..3000),
                        p,
                        Level::Info,
                        faults::shutting_down,
                    );
                }
                ChangeKind::ConfigChange if pod.live_at(ev.ts) => {
                    let at = ev.ts + rng.random_range(1000..4000);
                    out.add(at, p, Level::Info, |m| {
                        faults::config_reloaded(&ev.description, m)
                    });
                }
                _ => {}
            }
        }
    }
    for oom in &state.memory.ooms {
        let p = oom.pod;
        let s = plan.pods[p].service;
        let mut c = Ctx {
            rng: &mut rng,
            topo,
            s,
            routes: &[],
        };
        let mut last_words = String::new();
        faults::out_of_memory(&mut c, &mut last_words);
        out.add(
            oom.at_ms - rng.random_range(50..900),
            p,
            Level::Fatal,
            |m| m.push_str(&last_words),
        );
        let back = oom.at_ms + rng.random_range(5000..10_000);
        let restarts = state.memory.restarts_at(p, oom.at_ms);
        out.add(back, p, Level::Warn, |m| {
            faults::restarted_after_oom(restarts, m)
        });
        boot(&mut out, &mut rng, back + 100, p, &version_at(s, oom.at_ms));
    }
    let batch = plan.noise.batch_service;
    for &(from, to) in &plan.noise.batch_runs {
        let Some(p) = plan.pods_of[batch]
            .iter()
            .copied()
            .find(|&p| plan.pods[p].live_at(from))
        else {
            continue;
        };
        let day = crate::bundle::rfc3339(from - 86_400_000);
        out.add(from + rng.random_range(0..500), p, Level::Info, |m| {
            w!(m, "report daily_sales started (window {})", &day[..10])
        });
        let rows = rng.random_range(2_000_000..9_000_000);
        out.add(to - rng.random_range(0..500), p, Level::Info, |m| {
            w!(
                m,
                "report daily_sales finished: {rows} rows in {}s",
                (to - from) / 1000
            )
        });
    }
    let (start, end) = (plan.clock.start_ms, plan.clock.end_ms());
    let mut lines = out.0;
    lines.retain(|l| l.ts >= start && l.ts < end);
    lines.sort_by_key(|l| l.ts);
    lines
}
