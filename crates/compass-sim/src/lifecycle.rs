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

pub(crate) fn scheduled(sim: &LogGen<'_>) -> Vec<Scheduled> {
    let (topo, plan, state) = (sim.topo, sim.plan, sim.state);
    let mut rng = noise::rng(sim.seed, Stream::Logs, u64::MAX);
    let mut out = Vec::new();
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
    for ev in &plan.events {
        let s = ev.service;
        let name = &topo.services[s].name;
        for &p in &plan.pods_of[s] {
            let pod = &plan.pods[p];
            match ev.kind {
                ChangeKind::Deploy if pod.from_ms == ev.ts => {
                    let at = ev.ts + rng.random_range(1000..8000);
                    let mut m = String::new();
                    faults::starting(name, &version_at(s, ev.ts), &pod.name, &mut m);
                    out.push(Scheduled {
                        ts: at,
                        pod: p,
                        level: Level::Info,
                        message: m,
                    });
                    let mut c = Ctx {
                        rng: &mut rng,
                        topo,
                        s,
                        routes: &[],
                    };
                    let mut m = String::new();
                    faults::started(&mut c, name, &mut m);
                    let at = at + rng.random_range(4000..15_000);
                    out.push(Scheduled {
                        ts: at,
                        pod: p,
                        level: Level::Info,
                        message: m,
                    });
                }
                ChangeKind::Deploy if pod.until_ms == ev.ts => {
                    let mut m = String::new();
                    faults::shutting_down(&mut m);
                    let at = ev.ts + rng.random_range(0..3000);
                    out.push(Scheduled {
                        ts: at,
                        pod: p,
                        level: Level::Info,
                        message: m,
                    });
                }
                ChangeKind::ConfigChange if pod.live_at(ev.ts) => {
                    let mut m = String::new();
                    faults::config_reloaded(&ev.description, &mut m);
                    let at = ev.ts + rng.random_range(1000..4000);
                    out.push(Scheduled {
                        ts: at,
                        pod: p,
                        level: Level::Info,
                        message: m,
                    });
                }
                _ => {}
            }
        }
    }
    for oom in &state.memory.ooms {
        let p = oom.pod;
        let s = plan.pods[p].service;
        let name = &topo.services[s].name;
        let mut c = Ctx {
            rng: &mut rng,
            topo,
            s,
            routes: &[],
        };
        let mut m = String::new();
        faults::out_of_memory(&mut c, &mut m);
        let at = oom.at_ms - rng.random_range(50..900);
        out.push(Scheduled {
            ts: at,
            pod: p,
            level: Level::Fatal,
            message: m,
        });
        let back = oom.at_ms + rng.random_range(5000..10_000);
        let mut m = String::new();
        faults::restarted_after_oom(state.memory.restarts_at(p, oom.at_ms), &mut m);
        out.push(Scheduled {
            ts: back,
            pod: p,
            level: Level::Warn,
            message: m,
        });
        let mut m = String::new();
        faults::starting(name, &version_at(s, oom.at_ms), &plan.pods[p].name, &mut m);
        out.push(Scheduled {
            ts: back + 100,
            pod: p,
            level: Level::Info,
            message: m,
        });
        let mut c = Ctx {
            rng: &mut rng,
            topo,
            s,
            routes: &[],
        };
        let mut m = String::new();
        faults::started(&mut c, name, &mut m);
        let at = back + rng.random_range(3000..12_000);
        out.push(Scheduled {
            ts: at,
            pod: p,
            level: Level::Info,
            message: m,
        });
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
        let mut m = String::new();
        w!(&mut m, "report daily_sales started (window {})", &day[..10]);
        out.push(Scheduled {
            ts: from + rng.random_range(0..500),
            pod: p,
            level: Level::Info,
            message: m,
        });
        let mut m = String::new();
        let rows = rng.random_range(2_000_000..9_000_000);
        w!(
            &mut m,
            "report daily_sales finished: {rows} rows in {}s",
            (to - from) / 1000
        );
        out.push(Scheduled {
            ts: to - rng.random_range(0..500),
            pod: p,
            level: Level::Info,
            message: m,
        });
    }
    let (start, end) = (plan.clock.start_ms, plan.clock.end_ms());
    out.retain(|l| l.ts >= start && l.ts < end);
    out.sort_by_key(|l| l.ts);
    out
}
