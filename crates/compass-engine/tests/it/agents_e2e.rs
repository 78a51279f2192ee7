//! End to end on simulated bundles (ignored by default; it simulates 30 incidents):
//! every scenario for seeds 1..=5 is simulated, opened with the bundle reader and
//! investigated by all agents; prints which service each agent blames and the final
//! ranking, and checks that the injected service comes first. Truth is read only here,
//! for scoring.
//!
//! `cargo test --release -p compass-engine --test agents_e2e -- --ignored --nocapture`

use compass_adapters::{BundleSource, read_truth};
use compass_engine::agents;
use compass_engine::{Coordinator, CoordinatorConfig};
use compass_sim::{SimConfig, scenarios, simulate};
use std::path::PathBuf;
use std::sync::Arc;

/// A freshly simulated bundle (never a cached one: the simulator may have changed).
fn bundle(scenario: &str, seed: u64) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("compass-e2e/{scenario}-{seed}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("clear the previous bundle");
    }
    let cfg = SimConfig {
        scenario: scenario.to_string(),
        seed,
        ..SimConfig::default()
    };
    simulate(&cfg, &dir, &mut |_| {}).expect("simulate");
    dir
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "simulates 30 incidents; run in release"]
async fn agents_find_the_injected_service() {
    let seeds: Vec<u64> = std::env::var("E2E_SEEDS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| (1..=5).collect());
    let only = std::env::var("E2E_SCENARIO").ok();
    let mut misses = Vec::new();
    let mut kind_right = 0usize;
    let mut total = 0;
    for info in scenarios()
        .iter()
        .filter(|s| only.as_deref().is_none_or(|o| o == s.name))
    {
        for &seed in &seeds {
            let dir = bundle(info.name, seed);
            let truth = read_truth(&dir).expect("truth");
            let source = Arc::new(BundleSource::open(&dir).expect("open bundle"));
            let sources = source.data_sources();
            let coordinator = Coordinator::new(agents::all(), CoordinatorConfig::default());
            let inv = coordinator
                .investigate(source.incident(), &sources, None)
                .await;
            total += 1;
            println!(
                "== {} seed {seed}: truth {} ({})",
                info.name, truth.service, truth.fault_kind
            );
            for run in &inv.agents {
                let mine: Vec<String> = inv
                    .hypotheses
                    .iter()
                    .filter(|h| h.proposed_by.iter().any(|a| a == &run.agent))
                    .take(3)
                    .map(|h| format!("{}:{}", h.root_cause.service, h.root_cause.fault_kind))
                    .collect();
                println!(
                    "   {:<15} {:<9} obs {:>3} {}{}",
                    run.agent,
                    run.status.as_str(),
                    run.observations,
                    mine.join(", "),
                    run.error
                        .as_ref()
                        .map(|e| format!("  [{e}]"))
                        .unwrap_or_default()
                );
            }
            for h in inv
                .hypotheses
                .iter()
                .enumerate()
                .filter(|(i, h)| *i < 4 || h.root_cause.service == truth.service)
                .map(|(_, h)| h)
            {
                println!(
                    "   -> {:.3} {:<12} {:<22} {:<14} {}",
                    h.confidence.value,
                    h.root_cause.service,
                    h.root_cause.fault_kind.as_str(),
                    h.status.as_str(),
                    h.confidence.reasoning.chars().take(150).collect::<String>()
                );
                for d in h
                    .disproof
                    .iter()
                    .filter(|d| d.outcome != compass_core::DisproofOutcome::Survived)
                {
                    println!("        {:?} {:?}: {}", d.strategy, d.outcome, d.observed);
                }
            }
            if std::env::var("E2E_VERBOSE").is_ok() {
                let onset = inv
                    .hypotheses
                    .iter()
                    .filter(|h| h.root_cause.service == truth.service)
                    .map(|h| h.onset)
                    .min()
                    .unwrap_or(i64::MAX);
                for h in inv
                    .hypotheses
                    .iter()
                    .filter(|h| h.root_cause.service == truth.service)
                {
                    println!(
                        "      hyp {} onset {} obs {:?}",
                        h.id, h.onset, h.observation_ids
                    );
                }
                for o in inv
                    .observations
                    .iter()
                    .filter(|o| o.span.start < onset + 600_000)
                {
                    println!(
                        "      obs {} {} {:?} {} {:?} {}",
                        o.span.start,
                        o.id,
                        o.kind,
                        o.subject.service,
                        o.subject.component,
                        o.evidence.summary.chars().take(120).collect::<String>()
                    );
                }
            }
            let top = inv
                .hypotheses
                .first()
                .map(|h| h.root_cause.service.clone())
                .unwrap_or_default();
            if inv.hypotheses.first().map(|h| h.root_cause.fault_kind) == Some(truth.fault_kind)
                && top == truth.service
            {
                kind_right += 1;
            }
            if top != truth.service {
                misses.push(format!(
                    "{} seed {seed}: top {top}, truth {}",
                    info.name, truth.service
                ));
            }
        }
    }
    println!(
        "\n{} of {total} right first (service); {kind_right} of {total} with the right fault kind",
        total - misses.len()
    );
    assert!(misses.is_empty(), "{}", misses.join("\n"));
}
