//! COMPASS data-source adapters: each backend turns its own storage format into the
//! telemetry values of `compass-core` behind the ports of `compass-engine`.
//!
//! Offline: the [`bundle`] directory (written by `compass simulate` or recorded by
//! [`record`]) and the [`nezha`] data set. Live, configured by [`config`] and all
//! talking through [`http`]: [`prometheus`], [`loki`], [`trace`] (Tempo, Jaeger) and
//! [`logfile`]. [`alertmanager`] turns webhook payloads into incidents.

pub mod alertmanager;
pub mod bundle;
pub mod config;
pub mod http;
pub mod llm;
pub mod logfile;
pub mod loghub;
pub mod loki;
pub mod nezha;
pub mod prometheus;
pub mod record;
pub mod store;
pub mod trace;

pub use bundle::{
    BundleChanges, BundleError, BundleErrorKind, BundleLogs, BundleMetrics, BundleSource,
    BundleTraces, Manifest, Truth, read_truth,
};
