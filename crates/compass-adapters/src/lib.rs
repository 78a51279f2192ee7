//! COMPASS data-source adapters: each backend turns its own storage format into the
//! telemetry values of `compass-core` behind the ports of `compass-engine`.
//!
//! Today there is one backend, the offline [`bundle`] directory written by
//! `compass simulate`; Prometheus, Loki and Tempo adapters will sit beside it.

pub mod alertmanager;
pub mod bundle;
pub mod config;
pub mod http;
pub mod logfile;
pub mod loghub;
pub mod loki;
pub mod nezha;
pub mod prometheus;
pub mod record;
pub mod trace;

pub use bundle::{
    BundleChanges, BundleError, BundleErrorKind, BundleLogs, BundleMetrics, BundleSource,
    BundleTraces, Manifest, Truth, read_truth,
};
