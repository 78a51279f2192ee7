//! The Nezha fault-injection data set (ESEC/FSE 2023) behind the normal ports.
//!
//! Layout of one day (`<data>/rca_data/<day>/`):
//!
//! - `<day>-fault_list.json`: `{hour: [{inject_time, inject_pod, inject_type, ...}]}`.
//!   [`NezhaDay::open`] reads only `inject_time` (the cases); the labels are read by
//!   [`read_labels`], which only the scorer calls.
//! - `metric/<pod>_metric.csv`: one row a minute for the whole day, one numeric
//!   column per measurement. Each column becomes a gauge named after its header
//!   (`CpuUsageRate(%)` → `cpu_usage_rate_percent`) with `service` and `pod` labels.
//!   `dependency.csv` (when present) is the call graph.
//! - `log/HH_MM_log.csv` and `trace/HH_MM_trace.csv`: the minute that ends at HH:MM,
//!   for the minutes around each case; `<data>/construct_data/<day>/` holds more
//!   fault-free minutes in the same format.
//!
//! A case's sources ([`NezhaDay::sources`]) hide everything after a cutoff, so an
//! investigation sees only what existed a few minutes after the injection.

mod files;
mod ports;

use crate::bundle::metrics::MetricStore;
use compass_core::{CallGraph, EpochMs};
use compass_engine::{DataSources, GaugeSignal, MetricCatalog, Signal};
pub use files::{minute_key, service_of_pod};
pub use ports::NezhaSource;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// The two systems of the data set (told apart by layout: OnlineBoutique ships a
/// `dependency.csv` call graph, TrainTicket traces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NezhaSystem {
    TrainTicket,
    OnlineBoutique,
}

impl NezhaSystem {
    pub fn as_str(self) -> &'static str {
        match self {
            NezhaSystem::TrainTicket => "TrainTicket",
            NezhaSystem::OnlineBoutique => "OnlineBoutique",
        }
    }
}

/// One case to investigate: when the fault was injected. Nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NezhaCase {
    /// As written in the fault list (`YYYY-MM-DD HH:MM:SS`, UTC).
    pub inject_time: String,
    pub at: EpochMs,
}

/// The labels of one case, for scoring only. Blank or malformed labels are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NezhaLabel {
    pub inject_time: String,
    /// `inject_pod` without its last two `-` parts.
    pub service: Option<String>,
    pub fault_type: Option<String>,
}

#[derive(Debug, Error)]
pub enum NezhaError {
    #[error("{path}: {detail}")]
    Io { path: PathBuf, detail: String },
    #[error("{path}: {detail}")]
    Bad { path: PathBuf, detail: String },
}

impl NezhaError {
    fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        NezhaError::Io {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }
    }
    fn bad(path: &Path, detail: impl Into<String>) -> Self {
        NezhaError::Bad {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }
}

/// Which day folders `data/rca_data` holds (those with a fault list), sorted.
pub fn days(data: &Path) -> Result<Vec<String>, NezhaError> {
    let rca = data.join("rca_data");
    let entries = std::fs::read_dir(&rca).map_err(|e| {
        NezhaError::io(
            &rca,
            format!("{e} (expected the Nezha layout: rca_data/<day>/<day>-fault_list.json)"),
        )
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| NezhaError::io(&rca, e))?;
        let day = entry.file_name().to_string_lossy().into_owned();
        if entry
            .path()
            .join(format!("{day}-fault_list.json"))
            .is_file()
        {
            out.push(day);
        }
    }
    out.sort();
    Ok(out)
}

/// One day of the data set, loaded for investigation: the cases, every metric of
/// the day, and an index of the minute files of logs and traces.
#[derive(Debug)]
pub struct NezhaDay {
    pub day: String,
    pub system: NezhaSystem,
    pub cases: Vec<NezhaCase>,
    metrics: MetricStore,
    /// Minute end → file, for logs and traces (case minutes and fault-free minutes).
    log_files: BTreeMap<EpochMs, PathBuf>,
    trace_files: BTreeMap<EpochMs, PathBuf>,
    /// From `dependency.csv`, when the day has one.
    dependency: Option<CallGraph>,
    /// Rows or files skipped while loading, each named with file and line.
    pub problems: Vec<String>,
}

impl NezhaDay {
    /// Load `data/rca_data/<day>` (and `data/construct_data/<day>` when present).
    pub fn open(data: &Path, day: &str) -> Result<NezhaDay, NezhaError> {
        let dir = data.join("rca_data").join(day);
        if !dir.is_dir() {
            return Err(NezhaError::io(&dir, "no such day folder"));
        }
        let list = dir.join(format!("{day}-fault_list.json"));
        let cases = files::read_cases(&list)?;
        let mut problems = Vec::new();
        let metrics = files::read_metrics(&dir.join("metric"), &mut problems)?;
        let dependency_path = dir.join("metric").join("dependency.csv");
        let dependency = match dependency_path.is_file() {
            true => Some(files::read_dependency(&dependency_path)?),
            false => None,
        };
        let system = match dependency {
            Some(_) => NezhaSystem::OnlineBoutique,
            None => NezhaSystem::TrainTicket,
        };
        let construct = data.join("construct_data").join(day);
        let mut log_files = BTreeMap::new();
        let mut trace_files = BTreeMap::new();
        for base in [&dir, &construct] {
            files::index_minutes(&base.join("log"), day, "log", &mut log_files)?;
            files::index_minutes(&base.join("trace"), day, "trace", &mut trace_files)?;
        }
        Ok(NezhaDay {
            day: day.to_string(),
            system,
            cases,
            metrics,
            log_files,
            trace_files,
            dependency,
            problems,
        })
    }

    /// The data sources of one case: everything at or before `cutoff`.
    pub fn sources(self: &Arc<Self>, cutoff: EpochMs) -> DataSources {
        let source = Arc::new(NezhaSource::new(self.clone(), cutoff));
        DataSources {
            metrics: (!self.metrics.series.is_empty()).then(|| source.clone() as _),
            logs: (!self.log_files.is_empty()).then(|| source.clone() as _),
            traces: (!self.trace_files.is_empty() || self.dependency.is_some())
                .then(|| source.clone() as _),
            changes: None,
        }
    }

    /// How the agents should read this data set's metrics: ready-made per-pod gauges.
    pub fn catalog() -> MetricCatalog {
        let gauge = |metric: &str, signal| GaugeSignal {
            metric: metric.to_string(),
            signal,
        };
        MetricCatalog {
            gauges: vec![
                gauge("cpu_usage_rate_percent", Signal::CpuUtilisation),
                gauge("memory_usage_rate_percent", Signal::MemoryUtilisation),
                gauge("pod_server_latency_p95_seconds", Signal::ServerLatency),
                gauge("pod_client_latency_p95_seconds", Signal::ClientLatency),
                gauge("network_receive_bytes", Signal::NetworkReceive),
                gauge("network_transmit_bytes", Signal::NetworkTransmit),
                gauge("pod_workload_ops", Signal::Throughput),
            ],
            ..MetricCatalog::default()
        }
    }
}

/// The labels of every case of `day`, in fault-list order. Only the scorer calls
/// this, after the rankings exist.
pub fn read_labels(data: &Path, day: &str) -> Result<Vec<NezhaLabel>, NezhaError> {
    let list = data
        .join("rca_data")
        .join(day)
        .join(format!("{day}-fault_list.json"));
    files::read_labels(&list)
}

#[cfg(test)]
mod tests;
