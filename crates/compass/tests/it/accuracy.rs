//! For every fault kind, the true root-cause service is ranked first on several seeds
//! of the simulator. The investigation never sees truth.json; only this test reads it.

use compass::cli::{Format, RunSettings, run_bundle, simulate_quietly};
use compass_adapters::read_truth;
use compass_sim::SimConfig;
use std::time::Duration;

fn settings() -> RunSettings {
    RunSettings {
        format: Format::Json,
        top: 5,
        agent_timeout: Duration::from_secs(120),
        deadline: Duration::from_secs(300),
        budget_usd: None,
        llm: None,
        no_llm: false,
        color: false,
    }
}

async fn check(scenario: &str) {
    let mut failures = Vec::new();
    for seed in 1..=3 {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = SimConfig {
            scenario: scenario.to_string(),
            seed,
            ..Default::default()
        };
        simulate_quietly(&cfg, tmp.path(), false).unwrap();
        let inv = run_bundle(tmp.path(), &settings()).await.unwrap();
        let truth = read_truth(tmp.path()).unwrap();
        let ranking: Vec<String> = inv
            .hypotheses
            .iter()
            .map(|h| format!("{}:{}", h.root_cause.service, h.root_cause.fault_kind))
            .collect();
        if inv
            .hypotheses
            .first()
            .map(|h| h.root_cause.service.as_str())
            != Some(&truth.service)
        {
            failures.push(format!(
                "seed {seed}: truth {} ({}), got {ranking:?}",
                truth.service, truth.fault_kind
            ));
        }
    }
    assert!(failures.is_empty(), "{scenario}:\n{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn cpu_saturation_found_first() {
    check("cpu-saturation").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_leak_found_first() {
    check("memory-leak").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn network_latency_found_first() {
    check("network-latency").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn error_injection_found_first() {
    check("error-injection").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn db_pool_exhaustion_found_first() {
    check("db-pool-exhaustion").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_deploy_found_first() {
    check("bad-deploy").await;
}
