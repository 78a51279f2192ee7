//! The bundle source: a bundle directory (format in `docs/bundle-format.md`) served
//! behind all four data ports, read lazily.
//!
//! [`BundleSource::open`] reads only `manifest.json` and `incident.json`. Everything
//! else is read on first use and never loaded whole when it can be big: `logs.jsonl`
//! and `traces.jsonl` get a sparse index and are streamed per query (module `jsonl`),
//! `metrics.om` is parsed into an in-memory series store (module `metrics`) that
//! module `promql` evaluates, and `events.jsonl` is small and parsed whole. A missing
//! optional file leaves its port out of [`BundleSource::data_sources`].
//!
//! A recorded bundle (`compass investigate --record`, see `crate::record`) holds
//! `responses.jsonl` instead of data files: its ports answer from the recorded
//! responses (module `replay`, line format in module `responses`), and `catalog.json`
//! names the metric catalog the recorded agents used ([`BundleSource::catalog`]).

mod error;
mod jsonl;
pub(crate) mod metrics;
pub(crate) mod ports;
pub(crate) mod promql;
mod records;
mod replay;
pub(crate) mod responses;
mod time;

pub(crate) use error::json_message;
pub use error::{BundleError, BundleErrorKind};
pub use ports::{BundleChanges, BundleLogs, BundleMetrics, BundleTraces};
pub use responses::{PortKind, Recording};

use compass_core::{EpochMs, FaultKind, Incident, IncidentOrigin, Severity, TimeRange};
use compass_engine::{DataSources, MetricCatalog, SourceError};
use jsonl::JsonlFile;
use metrics::MetricStore;
use replay::Replay;
use responses::RESPONSES;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The format this version reads.
pub const FORMAT: &str = "compass-bundle/1";

pub(crate) const MANIFEST: &str = "manifest.json";
pub(crate) const INCIDENT: &str = "incident.json";
pub(crate) const CATALOG: &str = "catalog.json";
const TRUTH: &str = "truth.json";
const METRICS: &str = "metrics.om";
const LOGS: &str = "logs.jsonl";
const TRACES: &str = "traces.jsonl";
const EVENTS: &str = "events.jsonl";

const METRICS_SOURCE: &str = "bundle:metrics";
const LOGS_SOURCE: &str = "bundle:logs";
const TRACES_SOURCE: &str = "bundle:traces";
const CHANGES_SOURCE: &str = "bundle:changes";

/// What a bundle is (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    #[serde(default)]
    pub generator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Start of the data, epoch ms (RFC 3339 in the file).
    #[serde(
        deserialize_with = "time::deserialize_rfc3339",
        serialize_with = "time::serialize_rfc3339"
    )]
    pub start: EpochMs,
    /// End of the data (exclusive), epoch ms.
    #[serde(
        deserialize_with = "time::deserialize_rfc3339",
        serialize_with = "time::serialize_rfc3339"
    )]
    pub end: EpochMs,
    #[serde(default)]
    pub services: Vec<String>,
    /// Metric sample interval.
    #[serde(default = "default_step_seconds")]
    pub step_seconds: u32,
    /// Present when the bundle is a recording of an investigation (`responses.jsonl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<Recording>,
}

fn default_step_seconds() -> u32 {
    15
}

impl Manifest {
    /// The time the bundle covers.
    pub fn range(&self) -> TimeRange {
        TimeRange::new(self.start, self.end)
    }
}

/// The injected root cause of a simulated bundle (`truth.json`); only scoring reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub service: String,
    pub fault_kind: FaultKind,
    #[serde(
        deserialize_with = "time::deserialize_rfc3339",
        serialize_with = "time::serialize_rfc3339"
    )]
    pub start: EpochMs,
}

/// `incident.json` as written: like [`Incident`] but with an RFC 3339 `start`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct IncidentFile {
    id: String,
    title: String,
    severity: Severity,
    #[serde(
        deserialize_with = "time::deserialize_rfc3339",
        serialize_with = "time::serialize_rfc3339"
    )]
    start: EpochMs,
    affected_services: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default = "replayed")]
    origin: IncidentOrigin,
}

fn replayed() -> IncidentOrigin {
    IncidentOrigin::Replay
}

impl From<&Incident> for IncidentFile {
    fn from(incident: &Incident) -> Self {
        IncidentFile {
            id: incident.id.clone(),
            title: incident.title.clone(),
            severity: incident.severity,
            start: incident.start,
            affected_services: incident.affected_services.clone(),
            labels: incident.labels.clone(),
            origin: incident.origin,
        }
    }
}

/// A bundle directory behind the data ports. Cheap to share as `Arc<BundleSource>`;
/// its lazily built indices are built once, by whichever query needs them first.
pub struct BundleSource {
    dir: PathBuf,
    manifest: Manifest,
    incident: Incident,
    metrics: Option<MetricsFile>,
    logs: Option<JsonlFile>,
    traces: Option<JsonlFile>,
    events: Option<EventsFile>,
    /// `catalog.json`, when present.
    catalog: Option<MetricCatalog>,
    /// The recorded answers of a recorded bundle.
    replay: Option<Arc<Replay>>,
}

impl fmt::Debug for BundleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleSource")
            .field("dir", &self.dir)
            .field("manifest", &self.manifest)
            .field("missing_files", &self.missing_files())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct MetricsFile {
    path: PathBuf,
    store: OnceLock<Result<MetricStore, SourceError>>,
}

#[derive(Debug)]
struct EventsFile {
    path: PathBuf,
    events: OnceLock<Result<Vec<compass_core::ChangeEvent>, SourceError>>,
}

impl BundleSource {
    /// Open a bundle: reads `manifest.json` and `incident.json` and notes which
    /// optional files exist. Nothing else is read until a query needs it.
    pub fn open(dir: &Path) -> Result<BundleSource, BundleError> {
        if !dir.is_dir() {
            let what = match dir.exists() {
                true => "is not a directory",
                false => "directory does not exist",
            };
            return Err(BundleError::NoBundle {
                dir: dir.to_path_buf(),
                what: what.to_string(),
            });
        }
        let hint = "is this a COMPASS bundle? create one with `compass simulate`";
        let manifest: Manifest = read_json(dir, MANIFEST, hint)?;
        if manifest.format != FORMAT {
            return Err(BundleError::BadContent {
                dir: dir.to_path_buf(),
                file: MANIFEST,
                detail: format!(
                    "unsupported format {:?} (this COMPASS reads {FORMAT:?}; upgrade COMPASS or re-create the bundle)",
                    manifest.format
                ),
            });
        }
        if manifest.end <= manifest.start {
            return Err(BundleError::BadContent {
                dir: dir.to_path_buf(),
                file: MANIFEST,
                detail: format!(
                    "end {} is not after start {} (fix the times or re-create the bundle)",
                    time::format_rfc3339_ms(manifest.end),
                    time::format_rfc3339_ms(manifest.start)
                ),
            });
        }
        let incident: IncidentFile = read_json(dir, INCIDENT, hint)?;
        let incident = Incident {
            id: incident.id,
            title: incident.title,
            severity: incident.severity,
            start: incident.start,
            affected_services: incident.affected_services,
            labels: incident.labels,
            origin: incident.origin,
        };
        let present = |name: &str| dir.join(name).exists();
        let catalog = match present(CATALOG) {
            true => Some(read_json(dir, CATALOG, "it is optional")?),
            false => None,
        };
        let replay = match (present(RESPONSES), &manifest.recording) {
            (false, _) => None,
            (true, Some(recording)) => Some(Arc::new(Replay::load(dir, recording)?)),
            (true, None) => {
                return Err(BundleError::BadContent {
                    dir: dir.to_path_buf(),
                    file: MANIFEST,
                    detail: format!(
                        "{RESPONSES} is present but the manifest has no \"recording\" section (record the investigation again)"
                    ),
                });
            }
        };
        Ok(BundleSource {
            dir: dir.to_path_buf(),
            manifest,
            incident,
            metrics: present(METRICS).then(|| MetricsFile {
                path: dir.join(METRICS),
                store: OnceLock::new(),
            }),
            logs: present(LOGS).then(|| {
                JsonlFile::new(dir, LOGS, LOGS_SOURCE, records::log_timestamp, "timestamp")
            }),
            traces: present(TRACES).then(|| {
                JsonlFile::new(dir, TRACES, TRACES_SOURCE, records::span_timestamp, "start")
            }),
            events: present(EVENTS).then(|| EventsFile {
                path: dir.join(EVENTS),
                events: OnceLock::new(),
            }),
            catalog,
            replay,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn incident(&self) -> &Incident {
        &self.incident
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The metric catalog of `catalog.json` (a recording's: replay must use it so the
    /// agents ask the recorded questions), `None` when the bundle has none.
    pub fn catalog(&self) -> Option<MetricCatalog> {
        self.catalog.clone()
    }

    /// Whether this is a recorded bundle, answered from `responses.jsonl`.
    pub fn is_recording(&self) -> bool {
        self.replay.is_some()
    }

    /// Lines of a recording's `responses.jsonl` that were skipped, each as
    /// `responses.jsonl line N: what`; empty for other bundles.
    pub fn problems(&self) -> &[String] {
        self.replay.as_ref().map_or(&[], |replay| replay.problems())
    }

    /// One port per optional file that exists; a missing file leaves its port `None`.
    /// A recorded bundle offers the recorded ports, answering from the recording.
    pub fn data_sources(self: &Arc<Self>) -> DataSources {
        if let Some(replay) = &self.replay {
            return replay.data_sources();
        }
        DataSources {
            metrics: self
                .metrics
                .is_some()
                .then(|| Arc::new(BundleMetrics::new(self)) as _),
            logs: self
                .logs
                .is_some()
                .then(|| Arc::new(BundleLogs::new(self)) as _),
            traces: self
                .traces
                .is_some()
                .then(|| Arc::new(BundleTraces::new(self)) as _),
            changes: self
                .events
                .is_some()
                .then(|| Arc::new(BundleChanges::new(self)) as _),
        }
    }

    /// Names of the optional data files this bundle lacks, in format-doc order; for
    /// a recorded bundle, the ports it has no recording of (`recorded logs`, ...).
    pub fn missing_files(&self) -> Vec<String> {
        if let Some(replay) = &self.replay {
            return replay.unrecorded_ports();
        }
        [
            (METRICS, self.metrics.is_some()),
            (LOGS, self.logs.is_some()),
            (TRACES, self.traces.is_some()),
            (EVENTS, self.events.is_some()),
        ]
        .into_iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| name.to_string())
        .collect()
    }
}

/// The injected root cause of a simulated bundle. Only for scoring and tests: an
/// investigation never reads it.
pub fn read_truth(dir: &Path) -> Result<Truth, BundleError> {
    read_json(
        dir,
        TRUTH,
        "only simulated bundles have one; scoring needs it",
    )
}

fn read_json<T: for<'de> Deserialize<'de>>(
    dir: &Path,
    file: &'static str,
    missing_hint: &'static str,
) -> Result<T, BundleError> {
    let text = match std::fs::read(dir.join(file)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BundleError::MissingFile {
                dir: dir.to_path_buf(),
                file,
                hint: missing_hint,
            });
        }
        Err(cause) => {
            return Err(BundleError::Io {
                dir: dir.to_path_buf(),
                file,
                cause,
            });
        }
    };
    serde_json::from_slice(&text).map_err(|e| BundleError::json(dir, file, &e))
}
