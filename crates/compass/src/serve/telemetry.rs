//! Self-observability of the service: the Prometheus recorder behind `/metrics`
//! (installed once per process; histograms get latency buckets), the queue gauge
//! read from the store at each scrape (the queue is shared by all replicas, so any
//! replica's scrape shows it), and the log format (`COMPASS_LOG_FORMAT=json`: one JSON object a
//! line with the span fields — investigation, incident, attempt — of the current span).

use super::ServeState;
use super::metrics as m;
use compass_engine::store::JobState;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Seconds: from a fast HTTP request to a long investigation.
const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The process's Prometheus recorder (`None` when another recorder was installed
/// first, e.g. by an embedding program).
pub fn install_recorder() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(h) => {
                    metrics::gauge!(m::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot install the Prometheus recorder; /metrics will be empty");
                    None
                }
            }
        })
        .clone()
}

/// Set the queue gauge from the store now.
pub(super) async fn refresh_queue_gauge(state: &ServeState) {
    match state.store.job_counts().await {
        Ok(counts) => {
            let queued = counts
                .iter()
                .find(|(j, _)| *j == JobState::Queued)
                .map_or(0, |c| c.1);
            metrics::gauge!(m::QUEUE_DEPTH).set(queued as f64);
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the queue depth"),
    }
}

/// Install the log subscriber: `COMPASS_LOG` is the filter (default `default`),
/// `COMPASS_LOG_FORMAT=json` switches to JSON lines.
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COMPASS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let json = std::env::var("COMPASS_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
}
