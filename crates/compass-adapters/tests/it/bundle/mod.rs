//! Behaviour of the bundle source against the fixture bundles in
//! `testdata/bundles/` (and generated bundles in temp dirs): opening and its errors,
//! log and span paging, metric query evaluation (data-driven cases in
//! `testdata/cases/metrics/`), the call graph and change events.

mod big;
mod changes;
mod logs;
mod metrics;
mod open;
mod traces;

use compass_adapters::BundleSource;
use compass_core::{EpochMs, TimeRange};
use compass_engine::DataSources;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A fixture bundle directory.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/bundles")
        .join(name)
}

/// The data sources of a fixture bundle.
pub fn sources(name: &str) -> DataSources {
    let bundle = BundleSource::open(&fixture(name)).expect("fixture opens");
    Arc::new(bundle).data_sources()
}

/// Epoch ms of an RFC 3339 time.
pub fn ms(text: &str) -> EpochMs {
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("test time")
        .timestamp_millis()
}

/// Epoch ms of `09:MM:SS.mmm` on the fixtures' day.
pub fn at(clock: &str) -> EpochMs {
    ms(&format!("2026-11-22T09:{clock}Z"))
}

/// The range between two `at` times.
pub fn between(from: &str, to: &str) -> TimeRange {
    TimeRange::new(at(from), at(to))
}

/// The whole fixture hour.
pub fn whole_hour() -> TimeRange {
    TimeRange::new(ms("2026-11-22T09:00:00Z"), ms("2026-11-22T10:00:00Z"))
}
