//! Shared by the service tests: one small simulated bundle per test binary.

use std::path::PathBuf;
use std::sync::OnceLock;

/// A 30-minute db-pool-exhaustion bundle (light logs), simulated once.
pub fn bundle() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep().join("bundle");
        let cfg = compass_sim::SimConfig {
            scenario: "db-pool-exhaustion".into(),
            seed: 3,
            duration_s: 1800,
            log_rate: 10.0,
            ..Default::default()
        };
        compass::cli::simulate_quietly(&cfg, &dir, false).unwrap();
        dir
    })
    .clone()
}
