//! The alert that opens the incident: evaluated on the edge service from the same state
//! as the data, like a Prometheus rule would. It fires at the first evaluation at least
//! one minute after the fault began where the edge's p99 latency is 1.5x its pre-fault
//! level (latency faults) or its error rate clearly above normal (error faults), and at the
//! latest four minutes after the fault began.

use crate::noise::{hash, unit};
use crate::plan::{Plan, STEP_MS};
use crate::state::State;
use crate::topology::Topology;
use compass_core::FaultKind;

#[derive(Debug, Clone)]
pub(crate) struct Alert {
    pub ms: i64,
    pub title: String,
    pub alertname: &'static str,
    /// How far past its threshold the edge symptom gets within ten minutes of the fault
    /// (>= 1 means the rule's condition really holds).
    pub strength: f64,
}

pub(crate) fn evaluate(seed: u64, topo: &Topology, plan: &Plan, state: &State) -> Alert {
    let fe = topo.edge_service;
    let name = &topo.services[fe].name;
    let fault = &plan.fault;
    let before: Vec<usize> = (0..plan.clock.points)
        .filter(|&k| plan.clock.time(k) < fault.start_ms)
        .collect();
    let p99 = |k: usize| state.latency_quantile(fe, k, 0.99);
    let err = |k: usize| state.err[state.at(fe, k)];
    let base_p99 = median(before.iter().map(|&k| p99(k)).collect());
    let base_err = median(before.iter().map(|&k| err(k)).collect());
    let errors = matches!(fault.kind, FaultKind::ErrorInjection | FaultKind::BadDeploy);
    // The symptom relative to the rule's threshold (firing at >= 1).
    let symptom = |k: usize| {
        if errors {
            err(k) / (2.0 * base_err).max(base_err + 0.004)
        } else {
            (p99(k) / (1.5 * base_p99)).min(p99(k) / (base_p99 + 20.0))
        }
    };
    let firing = |k: usize| symptom(k) >= 1.0;
    let strength = (0..plan.clock.points)
        .filter(|&k| {
            let t = plan.clock.time(k);
            t >= fault.start_ms + 60_000 && t <= fault.start_ms + 600_000
        })
        .map(symptom)
        .fold(0.0, f64::max);
    let earliest = fault.start_ms + 60_000;
    let latest = fault.start_ms + 240_000;
    let offset = (unit(hash(&[seed, 0xA1E27])) * STEP_MS as f64) as i64 / 1000 * 1000;
    let step = (0..plan.clock.points).find(|&k| {
        let t = plan.clock.time(k);
        t >= earliest && t <= latest && firing(k)
    });
    let ms = step.map_or(latest, |k| (plan.clock.time(k) + offset).min(latest));
    let k = plan.clock.step(ms);
    if errors {
        let pct = err(k) * 100.0;
        let threshold = [50.0, 20.0, 10.0, 5.0, 2.0, 1.0, 0.5]
            .into_iter()
            .find(|&t| pct >= t)
            .unwrap_or(0.5);
        Alert {
            ms,
            title: format!("Error rate above {threshold}% on {name}"),
            alertname: "FrontendErrorRateHigh",
            strength,
        }
    } else {
        Alert {
            ms,
            title: format!("High latency on {name}"),
            alertname: "FrontendLatencyHigh",
            strength,
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
