//! Which metric names and labels the agents query. The defaults follow what people run
//! (OpenTelemetry HTTP metrics, cAdvisor / kube-state-metrics, OTel DB client metrics)
//! and are what `compass-sim` writes; `compass.toml` presets and mappings override them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricCatalog {
    /// Label that names the service.
    pub service_label: String,
    /// Label that names the pod / instance.
    pub pod_label: String,
    /// Counter of served requests with a status-class label (`code`).
    pub requests_total: String,
    pub status_label: String,
    /// Values of `status_label` that are server errors: a regex, fully anchored
    /// (`5xx` for a status-class label, `5..` for numeric codes).
    pub error_status: String,
    /// Histogram (family name) of server-side request duration, seconds.
    pub server_duration: String,
    /// Summary (family name; `_sum`/`_count` samples) of client-side call duration,
    /// seconds, with `peer_label` naming the callee.
    pub client_duration: String,
    pub peer_label: String,
    /// Counter of CPU seconds used.
    pub cpu_seconds_total: String,
    /// Gauge of working-set memory, bytes.
    pub memory_working_set: String,
    /// Gauge of resource limits with a `resource` label (`cpu` in cores, `memory` in bytes).
    pub resource_limits: String,
    pub resource_label: String,
    /// Counter of container restarts.
    pub restarts_total: String,
    /// Gauge of DB client pool connections with a `state` label (`used`, `idle`).
    pub db_connections_usage: String,
    pub db_state_label: String,
    /// Value of `db_state_label` for connections in use (empty: no state label, the
    /// gauge counts used connections itself).
    pub db_used_state: String,
    /// Gauge of the DB client pool's maximum size.
    pub db_connections_max: String,
    /// Gauge of requests waiting for a pooled connection (empty: not mapped).
    pub db_connections_pending: String,
    /// Ready-made per-service gauges (recording rules, pre-aggregated exporters) and
    /// what each measures. Empty by default; the signals agent reads them.
    #[serde(default)]
    pub gauges: Vec<GaugeSignal>,
}

/// What a ready-made gauge measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// CPU used, as a share of the limit (any unit; only its change is read).
    CpuUtilisation,
    /// Memory used, as a share of the limit.
    MemoryUtilisation,
    /// Latency of the requests the service serves.
    ServerLatency,
    /// Latency of the calls the service makes.
    ClientLatency,
    NetworkReceive,
    NetworkTransmit,
    /// Requests served per unit of time.
    Throughput,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::CpuUtilisation => "cpu utilisation",
            Signal::MemoryUtilisation => "memory utilisation",
            Signal::ServerLatency => "server latency",
            Signal::ClientLatency => "client latency",
            Signal::NetworkReceive => "network receive",
            Signal::NetworkTransmit => "network transmit",
            Signal::Throughput => "throughput",
        }
    }
}

/// One ready-made gauge: its metric name (labelled by service) and what it measures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GaugeSignal {
    pub metric: String,
    pub signal: Signal,
}

impl Default for MetricCatalog {
    fn default() -> Self {
        Self {
            service_label: "service".into(),
            pod_label: "pod".into(),
            requests_total: "http_server_requests_total".into(),
            status_label: "code".into(),
            error_status: "5xx".into(),
            server_duration: "http_server_request_duration_seconds".into(),
            client_duration: "http_client_request_duration_seconds".into(),
            peer_label: "peer_service".into(),
            cpu_seconds_total: "container_cpu_usage_seconds_total".into(),
            memory_working_set: "container_memory_working_set_bytes".into(),
            resource_limits: "kube_pod_container_resource_limits".into(),
            resource_label: "resource".into(),
            restarts_total: "kube_pod_container_status_restarts_total".into(),
            db_connections_usage: "db_client_connections_usage".into(),
            db_state_label: "state".into(),
            db_used_state: "used".into(),
            db_connections_max: "db_client_connections_max".into(),
            db_connections_pending: "db_client_connections_pending_requests".into(),
            gauges: Vec::new(),
        }
    }
}
