//! `compass eval nezha`: a full investigation of every case of the Nezha data set, one
//! JSON line per case, then the scores.
//!
//! Each case becomes an incident that starts at its `inject_time` and names no
//! service; its sources show only data up to [`AFTER`] past that time. The ranking is
//! the investigation's hypotheses (best first), then any other service an agent
//! observed something about, each service once. Labels are read only by [`score`],
//! after every ranking is written, and a case whose labels are blank or unreadable is
//! simply left unscored.

use anyhow::{Context, Result};
use compass_adapters::nezha::{self, NezhaDay, NezhaLabel};
use compass_core::{Incident, IncidentOrigin, Investigation, Severity};
use compass_engine::llm::LlmAnalyst;
use compass_engine::{Coordinator, CoordinatorConfig};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much data past the injection an investigation may see.
pub const AFTER: Duration = Duration::from_secs(4 * 60);
/// How much data before the injection is the baseline.
pub const BASELINE: Duration = Duration::from_secs(30 * 60);

/// One ranked service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    pub service: String,
    pub fault_type: String,
    pub confidence: f64,
}

/// One output line (exactly the documented JSON shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseLine {
    pub system: String,
    pub day: String,
    pub inject_time: String,
    pub ranking: Vec<Ranked>,
    pub elapsed_ms: u64,
    /// What the LLM steps cost, when a model was configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmCase>,
}

/// One case's LLM use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmCase {
    pub calls: usize,
    pub ok_calls: usize,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub usd: f64,
    pub added_hypotheses: usize,
    pub fallbacks: usize,
}

impl LlmCase {
    fn of(inv: &Investigation) -> Option<Self> {
        inv.llm.as_ref().map(|r| {
            let cost = r.cost();
            LlmCase {
                calls: r.calls.len(),
                ok_calls: r.calls.iter().filter(|c| c.outcome == "ok").count(),
                prompt_tokens: cost.prompt_tokens,
                completion_tokens: cost.completion_tokens,
                usd: cost.usd,
                added_hypotheses: r.added_hypotheses.len(),
                fallbacks: r.fallbacks.len(),
            }
        })
    }
}

/// The investigation settings of the evaluation.
pub fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        baseline: BASELINE,
        lead: Duration::ZERO,
        after: AFTER,
        min_step: Duration::from_secs(15),
        catalog: NezhaDay::catalog(),
        ..CoordinatorConfig::default()
    }
}

/// Services in the order the investigation ranks them: hypotheses first, then the
/// other services observations were about (strongest first).
pub fn ranking(inv: &Investigation) -> Vec<Ranked> {
    let mut out: Vec<Ranked> = Vec::new();
    for h in &inv.hypotheses {
        if out.iter().all(|r| r.service != h.root_cause.service) {
            out.push(Ranked {
                service: h.root_cause.service.clone(),
                fault_type: h.root_cause.fault_kind.as_str().to_string(),
                confidence: h.confidence.value,
            });
        }
    }
    let mut rest: BTreeMap<&str, f64> = BTreeMap::new();
    for o in &inv.observations {
        let c = rest.entry(o.subject.service.as_str()).or_insert(0.0);
        *c = c.max(o.confidence);
    }
    let mut rest: Vec<(&str, f64)> = rest
        .into_iter()
        .filter(|(s, _)| out.iter().all(|r| r.service != *s))
        .collect();
    rest.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    // Below every hypothesis: an observation alone is weaker evidence.
    let floor = out.last().map_or(1.0, |r| r.confidence);
    out.extend(rest.into_iter().map(|(s, c)| Ranked {
        service: s.to_string(),
        fault_type: compass_core::FaultKind::Unknown.as_str().to_string(),
        confidence: (c * 0.5).min(floor),
    }));
    out
}

/// Investigate every case of `days` (all days when empty), writing one JSON line per
/// case to `out`; `progress` hears about each finished case. With `llm` (an analyst and
/// the per-case budget), every case also runs the LLM steps.
pub async fn run(
    data: &Path,
    days: &[String],
    out: &Path,
    reports: Option<&Path>,
    llm: Option<(Arc<LlmAnalyst>, f64)>,
    mut progress: impl FnMut(usize, usize, &CaseLine),
) -> Result<Vec<CaseLine>> {
    let days = match days.is_empty() {
        true => nezha::days(data)?,
        false => days.to_vec(),
    };
    anyhow::ensure!(
        !days.is_empty(),
        "no Nezha day in {} (expected rca_data/<day>/<day>-fault_list.json)",
        data.display()
    );
    let mut file = std::fs::File::create(out)
        .with_context(|| format!("cannot write the results to {}", out.display()))?;
    let mut loaded = Vec::new();
    for d in &days {
        let day = NezhaDay::open(data, d).with_context(|| format!("cannot read Nezha day {d}"))?;
        loaded.push(Arc::new(day));
    }
    if let Some(dir) = reports {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the report folder {}", dir.display()))?;
    }
    let total: usize = loaded.iter().map(|d| d.cases.len()).sum();
    let coordinator = match llm {
        Some((analyst, budget_usd)) => {
            let mut config = config();
            config.budget.max_usd = Some(budget_usd);
            Coordinator::new(compass_engine::agents::all(), config).with_llm(analyst)
        }
        None => Coordinator::new(compass_engine::agents::all(), config()),
    };
    let mut lines = Vec::new();
    for day in loaded {
        for (i, case) in day.cases.iter().enumerate() {
            let started = Instant::now();
            let incident = Incident {
                id: format!("nezha-{}-{}", day.day, i + 1),
                title: format!("fault injected at {} UTC", case.inject_time),
                severity: Severity::Warning,
                start: case.at,
                affected_services: Vec::new(),
                labels: BTreeMap::new(),
                origin: IncidentOrigin::Replay,
            };
            let sources = day.sources(case.at + AFTER.as_millis() as i64);
            let inv = coordinator.investigate(&incident, &sources, None).await;
            let line = CaseLine {
                system: day.system.as_str().to_string(),
                day: day.day.clone(),
                inject_time: case.inject_time.clone(),
                ranking: ranking(&inv),
                elapsed_ms: started.elapsed().as_millis() as u64,
                llm: LlmCase::of(&inv),
            };
            if let Some(dir) = reports {
                let path = dir.join(format!("{}-{:02}.md", day.day, i + 1));
                std::fs::write(&path, crate::report::markdown(&inv))
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            serde_json::to_writer(&mut file, &line)?;
            writeln!(file)?;
            lines.push(line);
            progress(lines.len(), total, lines.last().expect("just pushed"));
        }
    }
    file.flush()?;
    Ok(lines)
}

/// The COMPASS fault kind a Nezha fault type corresponds to (`None` if unknown).
pub fn kind_of_label(fault_type: &str) -> Option<&'static str> {
    match fault_type {
        "cpu_contention" | "cpu_consumed" => Some("cpu_saturation"),
        "network_delay" => Some("network_latency"),
        "exception" | "return" => Some("error_injection"),
        _ => None,
    }
}

/// Scores of a group of cases.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    pub cases: usize,
    /// Cases whose true service is at rank k or better, k = 1..=5.
    pub hits: [usize; 5],
    pub reciprocal_rank_sum: f64,
    /// Cases whose rank-1 fault type matches the label (of those with a known type).
    pub type_right: usize,
    pub typed: usize,
}

impl Scores {
    fn add(&mut self, rank: Option<usize>, type_right: Option<bool>) {
        self.cases += 1;
        if let Some(r) = rank {
            for k in r..=5 {
                self.hits[k - 1] += 1;
            }
            self.reciprocal_rank_sum += 1.0 / r as f64;
        }
        if let Some(right) = type_right {
            self.typed += 1;
            self.type_right += usize::from(right);
        }
    }
    pub fn ac(&self, k: usize) -> f64 {
        ratio(self.hits[k - 1], self.cases)
    }
    /// The mean of AC@1..AC@5.
    pub fn avg5(&self) -> f64 {
        (1..=5).map(|k| self.ac(k)).sum::<f64>() / 5.0
    }
    pub fn mrr(&self) -> f64 {
        if self.cases == 0 {
            0.0
        } else {
            self.reciprocal_rank_sum / self.cases as f64
        }
    }
    pub fn type_accuracy(&self) -> f64 {
        ratio(self.type_right, self.typed)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Scores by system, by system and fault type, and overall.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub by_system: BTreeMap<String, Scores>,
    pub by_type: BTreeMap<(String, String), Scores>,
    pub overall: Scores,
    /// Cases left unscored (no usable label).
    pub unscored: usize,
}

/// Score the rankings against the labels (matched by day and inject time).
pub fn score(lines: &[CaseLine], labels: &HashMap<(String, String), NezhaLabel>) -> Report {
    let mut report = Report::default();
    for line in lines {
        let label = labels.get(&(line.day.clone(), line.inject_time.clone()));
        let Some((service, label)) = label.and_then(|l| Some((l.service.as_deref()?, l))) else {
            report.unscored += 1;
            continue;
        };
        let rank = line
            .ranking
            .iter()
            .position(|r| r.service == service)
            .map(|i| i + 1);
        let expected = label.fault_type.as_deref().and_then(kind_of_label);
        let type_right = expected.map(|k| line.ranking.first().is_some_and(|r| r.fault_type == k));
        let fault = label.fault_type.clone().unwrap_or_else(|| "?".into());
        report.overall.add(rank, type_right);
        report
            .by_system
            .entry(line.system.clone())
            .or_default()
            .add(rank, type_right);
        report
            .by_type
            .entry((line.system.clone(), fault))
            .or_default()
            .add(rank, type_right);
    }
    report
}

/// Read the labels of `days` (after the rankings exist). A day whose fault list
/// cannot be read for labels contributes none.
pub fn labels(data: &Path, lines: &[CaseLine]) -> HashMap<(String, String), NezhaLabel> {
    let mut days: Vec<&str> = lines.iter().map(|l| l.day.as_str()).collect();
    days.dedup();
    let mut out = HashMap::new();
    for day in days {
        for label in nezha::read_labels(data, day).unwrap_or_default() {
            out.insert((day.to_string(), label.inject_time.clone()), label);
        }
    }
    out
}

/// The `q` quantile (nearest rank) of `values`.
pub fn quantile(values: &[u64], q: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let idx = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[idx]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(day: &str, t: &str, services: &[(&str, &str)]) -> CaseLine {
        CaseLine {
            system: "TrainTicket".into(),
            day: day.into(),
            inject_time: t.into(),
            ranking: services
                .iter()
                .map(|(s, f)| Ranked {
                    service: s.to_string(),
                    fault_type: f.to_string(),
                    confidence: 0.5,
                })
                .collect(),
            elapsed_ms: 1,
            llm: None,
        }
    }

    fn label(
        day: &str,
        t: &str,
        service: Option<&str>,
        fault: Option<&str>,
    ) -> ((String, String), NezhaLabel) {
        (
            (day.into(), t.into()),
            NezhaLabel {
                inject_time: t.into(),
                service: service.map(str::to_string),
                fault_type: fault.map(str::to_string),
            },
        )
    }

    #[test]
    fn scores_match_hand_computed_values() {
        // Case 1: truth at rank 1, type right. Case 2: truth at rank 3, type wrong.
        // Case 3: truth absent. Case 4: no label (unscored).
        let lines = vec![
            line("d", "1", &[("a", "cpu_saturation"), ("b", "unknown")]),
            line(
                "d",
                "2",
                &[("x", "network_latency"), ("y", "unknown"), ("b", "unknown")],
            ),
            line("d", "3", &[("x", "error_injection")]),
            line("d", "4", &[("x", "error_injection")]),
        ];
        let labels: HashMap<_, _> = [
            label("d", "1", Some("a"), Some("cpu_contention")),
            label("d", "2", Some("b"), Some("exception")),
            label("d", "3", Some("c"), Some("return")),
            label("d", "4", None, Some("return")),
        ]
        .into_iter()
        .collect();
        let r = score(&lines, &labels);
        let s = &r.overall;
        assert_eq!(s.cases, 3);
        assert_eq!(r.unscored, 1);
        assert!((s.ac(1) - 1.0 / 3.0).abs() < 1e-9);
        assert!((s.ac(2) - 1.0 / 3.0).abs() < 1e-9);
        assert!((s.ac(3) - 2.0 / 3.0).abs() < 1e-9);
        assert!((s.ac(5) - 2.0 / 3.0).abs() < 1e-9);
        // Avg@5 = (1/3 + 1/3 + 2/3 + 2/3 + 2/3) / 5 = 8/15.
        assert!((s.avg5() - 8.0 / 15.0).abs() < 1e-9);
        // MRR = (1 + 1/3 + 0) / 3 = 4/9.
        assert!((s.mrr() - 4.0 / 9.0).abs() < 1e-9);
        // Types: case 1 right (cpu), case 2 wrong, case 3 right (return → error_injection).
        assert_eq!((s.type_right, s.typed), (2, 3));
        let exception = &r.by_type[&("TrainTicket".to_string(), "exception".to_string())];
        assert_eq!(
            (exception.cases, exception.hits[0], exception.hits[2]),
            (1, 0, 1)
        );
    }

    #[test]
    fn garbage_fault_types_are_scored_for_the_service_only() {
        let lines = vec![line("d", "1", &[("a", "cpu_saturation")])];
        let labels: HashMap<_, _> = [label("d", "1", Some("a"), Some("??"))]
            .into_iter()
            .collect();
        let r = score(&lines, &labels);
        assert_eq!(r.overall.hits[0], 1);
        assert_eq!(r.overall.typed, 0);
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        assert_eq!(quantile(&[5, 1, 3, 2, 4], 0.5), 3);
        assert_eq!(quantile(&[5, 1, 3, 2, 4], 0.95), 5);
        assert_eq!(quantile(&[], 0.5), 0);
    }
}
