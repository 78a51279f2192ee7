//! Building live sources from validated settings (one `match` per kind), and
//! `compass config check`: ping every source and verify the metric mappings against
//! what Prometheus actually holds.

use super::{Settings, SourceKind, SourceSettings};
use crate::http::HttpClient;
use crate::logfile::{LogFileConfig, LogFileFormat, LogFileSource};
use crate::loki::{LokiConfig, LokiSource};
use crate::prometheus::{PrometheusConfig, PrometheusSource};
use crate::trace::{JaegerConfig, JaegerSource, TempoConfig, TempoSource};
use compass_core::{Matcher, TimeRange};
use compass_engine::catalog::MetricCatalog;
use compass_engine::ports::{
    DataSources, LogSource, MetricsSource, SourceError, SourceResult, TraceSource,
};
use std::sync::Arc;

/// A built source of any kind.
#[derive(Debug, Clone)]
pub enum LiveSource {
    Prometheus(Arc<PrometheusSource>),
    Loki(Arc<LokiSource>),
    LogFiles(Arc<LogFileSource>),
    Tempo(Arc<TempoSource>),
    Jaeger(Arc<JaegerSource>),
}

impl LiveSource {
    /// Build the client for one source (no network traffic).
    pub fn build(s: &SourceSettings, catalog: &MetricCatalog) -> SourceResult<Self> {
        let http = || {
            let config = s.http.as_ref().ok_or_else(|| SourceError::BadData {
                source_name: s.name.clone(),
                detail: "an HTTP source without a url".into(),
            })?;
            HttpClient::new(&s.name, config)
        };
        Ok(match s.kind {
            SourceKind::Prometheus => LiveSource::Prometheus(Arc::new(PrometheusSource::new(
                http()?,
                PrometheusConfig {
                    max_series: s.max_series,
                    scope: s.scope.iter().map(|(l, v)| Matcher::eq(l, v)).collect(),
                },
            ))),
            SourceKind::LogFiles => LiveSource::LogFiles(Arc::new(LogFileSource::new(
                &s.name,
                LogFileConfig {
                    paths: s.paths.clone(),
                    service: s.service.clone(),
                    // JSON lines name their service with the configured service label
                    // unless the source says otherwise.
                    service_field: Some(
                        s.service_field
                            .clone()
                            .unwrap_or_else(|| catalog.service_label.clone()),
                    ),
                    format: match s.format.as_deref() {
                        Some("plain") => LogFileFormat::Plain,
                        Some("json") => LogFileFormat::JsonLines,
                        _ => LogFileFormat::Auto,
                    },
                    timestamp_field: s.timestamp_field.clone(),
                },
            )?)),
            SourceKind::Loki => LiveSource::Loki(Arc::new(LokiSource::new(
                &s.name,
                http()?,
                LokiConfig {
                    service_label: catalog.service_label.clone(),
                    level_label: s.level_label.clone(),
                    pod_label: catalog.pod_label.clone(),
                    ..LokiConfig::default()
                },
            ))),
            SourceKind::Tempo => LiveSource::Tempo(Arc::new(TempoSource::new(
                http()?,
                TempoConfig {
                    search_limit: s.max_traces,
                    max_traces: s.max_traces,
                    ..TempoConfig::default()
                },
            ))),
            SourceKind::Jaeger => LiveSource::Jaeger(Arc::new(JaegerSource::new(
                http()?,
                JaegerConfig {
                    search_limit: s.max_traces,
                    max_traces: s.max_traces,
                    ..JaegerConfig::default()
                },
            ))),
        })
    }

    pub fn name(&self) -> &str {
        match self {
            LiveSource::Prometheus(p) => p.name(),
            LiveSource::Loki(l) => l.name(),
            LiveSource::LogFiles(f) => f.name(),
            LiveSource::Tempo(t) => t.name(),
            LiveSource::Jaeger(j) => j.name(),
        }
    }

    /// One cheap call proving the backend answers: a short description of it.
    pub async fn ping(&self) -> SourceResult<String> {
        match self {
            LiveSource::Prometheus(p) => p.ping().await,
            LiveSource::Loki(l) => l.ping().await,
            LiveSource::LogFiles(f) => f.describe(),
            LiveSource::Tempo(t) => t.ping().await,
            LiveSource::Jaeger(j) => j.ping().await,
        }
    }

    /// Put this source on the port it serves.
    pub fn attach(&self, sources: &mut DataSources) {
        match self {
            LiveSource::Prometheus(p) => sources.metrics = Some(p.clone()),
            LiveSource::Loki(l) => sources.logs = Some(l.clone()),
            LiveSource::LogFiles(f) => sources.logs = Some(f.clone()),
            LiveSource::Tempo(t) => sources.traces = Some(t.clone()),
            LiveSource::Jaeger(j) => sources.traces = Some(j.clone()),
        }
    }
}

impl Settings {
    /// Build every configured source onto the port it serves (no network traffic).
    pub fn build_sources(&self) -> SourceResult<DataSources> {
        let mut data = DataSources::default();
        for s in &self.sources {
            LiveSource::build(s, &self.catalog)?.attach(&mut data);
        }
        Ok(data)
    }
}

/// What `compass config check` found for one source.
#[derive(Debug, Clone)]
pub struct SourceCheck {
    pub name: String,
    pub kind: SourceKind,
    /// `Ok(description)` when the backend answered, else why not.
    pub reachable: Result<String, String>,
    /// Findings about the mappings: (ok, message).
    pub findings: Vec<(bool, String)>,
}

impl SourceCheck {
    pub fn passed(&self) -> bool {
        self.reachable.is_ok() && self.findings.iter().all(|(ok, _)| *ok)
    }
}

/// Ping every source; for Prometheus also check that each mapped metric has series in
/// `range` carrying the service label.
pub async fn check_sources(settings: &Settings, range: TimeRange) -> Vec<SourceCheck> {
    let mut out = Vec::new();
    for s in &settings.sources {
        let mut check = SourceCheck {
            name: s.name.clone(),
            kind: s.kind,
            reachable: Err(String::new()),
            findings: Vec::new(),
        };
        let source = match LiveSource::build(s, &settings.catalog) {
            Ok(src) => src,
            Err(e) => {
                check.reachable = Err(e.to_string());
                out.push(check);
                continue;
            }
        };
        check.reachable = source.ping().await.map_err(|e| e.to_string());
        if check.reachable.is_ok() {
            check.findings = match &source {
                LiveSource::Prometheus(p) => check_mappings(p, &settings.catalog, range).await,
                LiveSource::Loki(l) => {
                    vec![check_service_label(
                        l.label_values(&settings.catalog.service_label, range).await,
                        &settings.catalog.service_label,
                        "log streams",
                    )]
                }
                _ => Vec::new(),
            };
        }
        out.push(check);
    }
    out
}

/// The sample names each mapping is read through, with the mapping's field name.
fn mapped_samples(c: &MetricCatalog) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("requests_total", c.requests_total.clone()),
        ("server_duration", format!("{}_bucket", c.server_duration)),
        ("client_duration", format!("{}_count", c.client_duration)),
        ("cpu_seconds_total", c.cpu_seconds_total.clone()),
        ("memory_working_set", c.memory_working_set.clone()),
        ("resource_limits", c.resource_limits.clone()),
        ("restarts_total", c.restarts_total.clone()),
        ("db_connections_usage", c.db_connections_usage.clone()),
        ("db_connections_max", c.db_connections_max.clone()),
        ("db_connections_pending", c.db_connections_pending.clone()),
    ];
    for g in &c.gauges {
        v.push(("gauges", g.metric.clone()));
    }
    v.retain(|(_, m)| !m.is_empty() && m != "_bucket" && m != "_count");
    v
}

/// Whether `label` names any service in the window.
fn check_service_label(
    values: SourceResult<Vec<String>>,
    label: &str,
    what: &str,
) -> (bool, String) {
    match values {
        Ok(v) if v.is_empty() => (
            false,
            format!(
                "no {what} carry the service label `{label}` in the window: set [services] label"
            ),
        ),
        Ok(v) => (
            true,
            format!(
                "service label `{label}`: {} services ({}{})",
                v.len(),
                v.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                if v.len() > 5 { ", …" } else { "" }
            ),
        ),
        Err(e) => (false, format!("cannot list services: {e}")),
    }
}

async fn check_mappings(
    p: &PrometheusSource,
    catalog: &MetricCatalog,
    range: TimeRange,
) -> Vec<(bool, String)> {
    let mut findings = Vec::new();
    findings.push(check_service_label(
        p.label_values(&catalog.service_label, range).await,
        &catalog.service_label,
        "series",
    ));
    for (field, sample) in mapped_samples(catalog) {
        let selector = format!("{{__name__={}}}", compass_core::promql_string(&sample));
        match p.series(&selector, range, 50).await {
            Ok((_, 0)) => {
                findings.push((
                    false,
                    format!(
                        "{field}: no series named `{sample}` in the window \
                         (agents that need it find nothing; map it in [metrics.mapping])"
                    ),
                ));
            }
            Ok((series, total)) => {
                let total = if total > series.len() {
                    format!("more than {}", series.len())
                } else {
                    total.to_string()
                };
                let with_label = series
                    .iter()
                    .filter(|s| s.contains_key(&catalog.service_label))
                    .count();
                if with_label == 0 {
                    let mut labels: Vec<&str> = series
                        .iter()
                        .flat_map(|s| s.keys().map(String::as_str))
                        .filter(|l| *l != "__name__")
                        .collect();
                    labels.sort();
                    labels.dedup();
                    findings.push((
                        false,
                        format!(
                            "{field}: `{sample}` has {total} series but none carries `{}` \
                             (its labels: {}); add the label by relabeling or choose another \
                             [services] label",
                            catalog.service_label,
                            labels.join(", ")
                        ),
                    ));
                } else {
                    findings.push((true, format!("{field}: `{sample}`, {total} series")));
                }
            }
            Err(e) => findings.push((false, format!("{field}: `{sample}`: {e}"))),
        }
    }
    findings
}
