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

/// The OTLP trace pipeline, when one was configured (flushed by [`shutdown_tracing`]).
static TRACER_PROVIDER: OnceLock<opentelemetry_sdk::trace::SdkTracerProvider> = OnceLock::new();

/// Spans exported over OTLP: COMPASS's own, at info, whatever `COMPASS_LOG` says
/// (the one-shot commands log only errors but still trace when asked to).
const OTLP_FILTER: &str = "warn,compass=info,compass_engine=info,compass_adapters=info";

/// Whether the standard OpenTelemetry variables ask for trace export.
fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|e| !e.trim().is_empty()))
        && !std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|e| e.eq_ignore_ascii_case("none"))
}

/// The OpenTelemetry layer: spans batched and sent as OTLP/HTTP protobuf to the
/// endpoint in `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (or `OTEL_EXPORTER_OTLP_ENDPOINT`
/// + `/v1/traces`), service name `OTEL_SERVICE_NAME` (default `compass`).
fn otlp_layer<S>() -> Option<impl tracing_subscriber::Layer<S>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    if !otlp_configured() {
        return None;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "warning: OTLP trace export is configured but cannot start: {e}; no traces will be sent"
            );
            return None;
        }
    };
    let service = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "compass".into());
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("compass");
    let _ = TRACER_PROVIDER.set(provider);
    Some(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// Flush and stop the OTLP exporter (call once, outside the async runtime, at exit).
pub fn shutdown_tracing() {
    if let Some(provider) = TRACER_PROVIDER.get()
        && let Err(e) = provider.shutdown()
    {
        eprintln!("warning: could not flush the last traces: {e}");
    }
}

/// The OpenTelemetry trace id of the current span (32 hex digits), when traces are
/// exported; `None` otherwise.
pub fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    TRACER_PROVIDER.get()?;
    let context = tracing::Span::current().context();
    let span = context.span();
    let ids = span.span_context();
    ids.is_valid().then(|| ids.trace_id().to_string())
}

/// Install the subscriber: logs to stderr (`COMPASS_LOG` is the filter, default
/// `default`; `COMPASS_LOG_FORMAT=json` for JSON lines with the current span's
/// fields: investigation, incident, attempt, trace id), and spans over OTLP when the
/// standard `OTEL_EXPORTER_OTLP_*` variables are set.
pub fn init_logging(default: &str) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("COMPASS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let json = std::env::var("COMPASS_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = if json {
        fmt.json()
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(filter)
            .boxed()
    } else {
        fmt.with_filter(filter).boxed()
    };
    let traces =
        otlp_layer().map(|l| l.with_filter(tracing_subscriber::EnvFilter::new(OTLP_FILTER)));
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .init();
}
