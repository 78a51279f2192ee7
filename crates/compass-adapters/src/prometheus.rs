//! Prometheus (and anything serving its HTTP API: Thanos, Mimir, VictoriaMetrics) behind
//! the metrics port.
//!
//! Each `MetricQuery` is rendered to PromQL (`to_promql`, with the configured scope
//! matchers added to every selector) and sent to `/api/v1/query_range`; the exact text
//! is what the agents record as evidence. Results are bounded: a query returning more
//! than `max_series` series is refused with a message that says so (Prometheus itself
//! caps points per series at 11,000, and the agents pick the step from the window).
//! `series` and `labels` serve `compass config check`, which verifies that each mapped
//! metric exists and carries the service label.

use crate::http::HttpClient;
use async_trait::async_trait;
use compass_core::{Matcher, MetricQuery, Series, TimeRange};
use compass_engine::ports::{MetricsSource, SourceError, SourceResult};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Settings of one Prometheus source.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusConfig {
    /// Queries returning more series than this are refused (a series explosion).
    pub max_series: usize,
    /// Matchers added to every selector (e.g. `namespace="shop"`).
    pub scope: Vec<Matcher>,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        Self {
            max_series: 10_000,
            scope: Vec::new(),
        }
    }
}

/// A Prometheus HTTP API endpoint.
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    http: HttpClient,
    config: PrometheusConfig,
}

#[derive(Debug, Deserialize)]
struct ApiResponse<T> {
    status: String,
    #[serde(default = "Option::default")]
    data: Option<T>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MatrixData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<MatrixSeries>,
}

#[derive(Debug, Deserialize)]
struct MatrixSeries {
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

#[derive(Debug, Deserialize)]
struct BuildInfo {
    version: String,
}

fn unix_seconds(ms: i64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

impl PrometheusSource {
    pub fn new(http: HttpClient, config: PrometheusConfig) -> Self {
        Self { http, config }
    }

    /// The PromQL sent for `query`: its rendering with the scope matchers added.
    pub fn promql(&self, query: &MetricQuery) -> String {
        let mut scoped = query.clone();
        scoped.matchers.extend(self.config.scope.iter().cloned());
        scoped.to_promql()
    }

    fn unwrap<T>(&self, what: &str, r: ApiResponse<T>) -> SourceResult<T> {
        if r.status != "success" {
            let detail = format!(
                "{what}: {} ({})",
                r.error.unwrap_or_else(|| "no error message".into()),
                r.error_type
                    .unwrap_or_else(|| format!("status {}", r.status))
            );
            return Err(SourceError::QueryRejected {
                source_name: self.name().to_string(),
                detail,
            });
        }
        r.data.ok_or_else(|| SourceError::BadData {
            source_name: self.name().to_string(),
            detail: format!("{what}: a success response without `data`"),
        })
    }

    /// Name the query in a rejection so the user sees which mapping produced it.
    fn with_query(&self, promql: &str, e: SourceError) -> SourceError {
        match e {
            SourceError::QueryRejected {
                source_name,
                detail,
            } if !detail.starts_with('`') => SourceError::QueryRejected {
                source_name,
                detail: format!("`{promql}`: {detail}"),
            },
            other => other,
        }
    }

    /// `GET /api/v1/status/buildinfo`: "Prometheus 2.42.0".
    pub async fn ping(&self) -> SourceResult<String> {
        let r: ApiResponse<BuildInfo> = self.http.get_json("api/v1/status/buildinfo", &[]).await?;
        let info = self.unwrap("buildinfo", r)?;
        Ok(format!("Prometheus API, version {}", info.version))
    }

    /// `GET /api/v1/series`: label sets of the series matching `selector` in `range`,
    /// at most `limit`, and how many the server returned (more than `limit` means "more").
    pub async fn series(
        &self,
        selector: &str,
        range: TimeRange,
        limit: usize,
    ) -> SourceResult<(Vec<BTreeMap<String, String>>, usize)> {
        let r: ApiResponse<Vec<BTreeMap<String, String>>> = self
            .http
            .post_form_json(
                "api/v1/series",
                &[
                    ("match[]", selector.to_string()),
                    ("start", unix_seconds(range.start)),
                    ("end", unix_seconds(range.end)),
                    // Honoured by Prometheus 2.49 and later; older servers answer in full
                    // (bounded by the client's body limit).
                    ("limit", (limit + 1).to_string()),
                ],
            )
            .await
            .map_err(|e| self.with_query(selector, e))?;
        let mut all = self.unwrap("series", r)?;
        let total = all.len();
        all.truncate(limit);
        Ok((all, total))
    }

    /// `GET /api/v1/labels`: label names present in `range`.
    pub async fn labels(&self, range: TimeRange) -> SourceResult<Vec<String>> {
        let r: ApiResponse<Vec<String>> = self
            .http
            .get_json(
                "api/v1/labels",
                &[
                    ("start", unix_seconds(range.start)),
                    ("end", unix_seconds(range.end)),
                ],
            )
            .await?;
        self.unwrap("labels", r)
    }
}

#[async_trait]
impl MetricsSource for PrometheusSource {
    fn name(&self) -> &str {
        self.http.name()
    }

    fn query_text(&self, query: &MetricQuery) -> String {
        self.promql(query)
    }

    async fn query_range(
        &self,
        query: &MetricQuery,
        range: TimeRange,
        step_ms: i64,
    ) -> SourceResult<Vec<Series>> {
        let promql = self.promql(query);
        if step_ms <= 0 {
            return Err(SourceError::QueryRejected {
                source_name: self.name().to_string(),
                detail: format!("`{promql}`: step must be positive, got {step_ms} ms"),
            });
        }
        let r: ApiResponse<MatrixData> = self
            .http
            .post_form_json(
                "api/v1/query_range",
                &[
                    ("query", promql.clone()),
                    ("start", unix_seconds(range.start)),
                    // Prometheus's end is inclusive; the port's range is half-open.
                    ("end", unix_seconds(range.end - 1)),
                    ("step", format!("{:.3}", step_ms as f64 / 1000.0)),
                ],
            )
            .await
            .map_err(|e| self.with_query(&promql, e))?;
        let data = self
            .unwrap(&format!("`{promql}`"), r)
            .map_err(|e| self.with_query(&promql, e))?;
        if data.result_type != "matrix" {
            return Err(SourceError::BadData {
                source_name: self.name().to_string(),
                detail: format!(
                    "`{promql}`: expected a matrix result, got `{}`",
                    data.result_type
                ),
            });
        }
        if data.result.len() > self.config.max_series {
            return Err(SourceError::QueryRejected {
                source_name: self.name().to_string(),
                detail: format!(
                    "`{promql}` returned {} series, more than the limit of {}: narrow the \
                     metric mapping or the source's scope, or raise max_series",
                    data.result.len(),
                    self.config.max_series
                ),
            });
        }
        let mut out = Vec::with_capacity(data.result.len());
        for s in data.result {
            let mut labels = s.metric;
            labels.remove("__name__");
            let mut points = Vec::with_capacity(s.values.len());
            for (t, v) in s.values {
                let value: f64 = v.parse().map_err(|_| SourceError::BadData {
                    source_name: self.name().to_string(),
                    detail: format!("`{promql}`: sample value `{v}` is not a number"),
                })?;
                // Steps without data are omitted, as the bundle source does.
                if value.is_finite() {
                    points.push(((t * 1000.0).round() as i64, value));
                }
            }
            out.push(Series { labels, points });
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    async fn label_values(&self, label: &str, range: TimeRange) -> SourceResult<Vec<String>> {
        let mut params = vec![
            ("start", unix_seconds(range.start)),
            ("end", unix_seconds(range.end)),
        ];
        if !self.config.scope.is_empty() {
            let m: Vec<String> = self.config.scope.iter().map(Matcher::to_promql).collect();
            params.push(("match[]", format!("{{{}}}", m.join(","))));
        }
        let path = format!("api/v1/label/{label}/values");
        let r: ApiResponse<Vec<String>> = self.http.get_json(&path, &params).await?;
        let mut values = self.unwrap(&format!("values of label `{label}`"), r)?;
        values.sort();
        Ok(values)
    }
}
