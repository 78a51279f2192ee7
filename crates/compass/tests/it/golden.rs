//! Golden test: the terminal report of one simulated scenario, byte for byte (timings
//! zeroed). A change in analysis or rendering shows up here as a reviewed snapshot diff.

use compass::cli::{Format, RunSettings, run_bundle, simulate_quietly};
use compass::report::{RenderOptions, terminal};
use compass_sim::SimConfig;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn db_pool_exhaustion_seed_7_report() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SimConfig {
        scenario: "db-pool-exhaustion".into(),
        seed: 7,
        ..Default::default()
    };
    simulate_quietly(&cfg, tmp.path(), false).unwrap();
    let settings = RunSettings {
        format: Format::Text,
        top: 3,
        agent_timeout: Duration::from_secs(120),
        deadline: Duration::from_secs(300),
        budget_usd: None,
        llm: None,
        no_llm: false,
        color: false,
    };
    let mut inv = run_bundle(tmp.path(), &settings).await.unwrap();
    inv.elapsed_ms = 0;
    for run in &mut inv.agents {
        run.duration_ms = 0;
    }
    let text = terminal(
        &inv,
        &RenderOptions {
            color: false,
            width: 120,
            top: 3,
        },
    )
    .replace(&tmp.path().display().to_string(), "<bundle>");
    insta::assert_snapshot!(text);
}
