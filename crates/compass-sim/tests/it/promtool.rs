//! The real `promtool` accepts `metrics.om`: it backfills the file into TSDB blocks, which
//! fails on malformed OpenMetrics, out-of-order samples or a missing `# EOF`.

use crate::common::{run, small};
use compass_sim::SimConfig;
use std::process::Command;

fn promtool() -> String {
    let bin = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_string());
    match Command::new(&bin).arg("--version").output() {
        Ok(out) if out.status.success() => bin,
        _ => panic!("promtool not found: install it with `apt-get install prometheus`"),
    }
}

fn backfill(cfg: &SimConfig) {
    let bin = promtool();
    let bundle = run(cfg);
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(bin)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(bundle.path("metrics.om"))
        .arg(data.path())
        .output()
        .expect("promtool runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "promtool rejected metrics.om for {}:\n{stdout}\n{stderr}",
        cfg.scenario
    );
    assert!(
        !stderr.to_lowercase().contains("error"),
        "promtool complained:\n{stderr}"
    );
    let blocks = std::fs::read_dir(data.path()).unwrap().count();
    assert!(blocks >= 1, "promtool wrote blocks");
}

#[test]
fn promtool_accepts_metrics_of_a_memory_leak_with_oom_restarts() {
    // An OOM kill resets a pod's CPU counter; promtool must still accept the file.
    backfill(&SimConfig {
        duration_s: 3600,
        ..small("memory-leak", 3)
    });
}

#[test]
fn promtool_accepts_metrics_with_pod_replacement_and_pools() {
    backfill(&small("bad-deploy", 4));
    backfill(&small("db-pool-exhaustion", 5));
}

#[test]
fn promtool_accepts_fractional_second_timestamps() {
    // A start that is not on a whole second gives timestamps with decimals.
    backfill(&SimConfig {
        start_ms: SimConfig::default().start_ms + 250,
        ..small("network-latency", 6)
    });
}
