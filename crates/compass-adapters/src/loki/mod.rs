//! Grafana Loki behind [`LogSource`], through its HTTP API v1 (as of Loki 3.x).
//!
//! `fetch_logs` renders the [`LogQuery`] to LogQL ([`logql`]: selector on the service
//! label, level filter by label or line filter) and calls `GET
//! /loki/api/v1/query_range` with `start`/`end` in nanoseconds (start inclusive, end
//! exclusive, as the port's range), `direction=forward` and a `limit` of at most
//! `page_limit`; each response becomes one time-ordered page ([`response`] says how
//! streams merge, how records get their level, and the paging rule at equal
//! timestamps). The cursor is the nanosecond the next request starts at.
//!
//! Errors: a query Loki refuses (HTTP 400, e.g. a LogQL parse error) is
//! `QueryRejected` naming the LogQL; a malformed or unexpected response is `BadData`;
//! transport, credential and server errors come from [`HttpClient`], which retries what
//! is worth retrying.

mod logql;
mod response;

use crate::http::HttpClient;
use async_trait::async_trait;
use compass_core::{LogRecord, TimeRange};
use compass_engine::{LogQuery, LogSource, Page, SourceError, SourceResult};
use response::QueryResponse;
use serde::Deserialize;

/// How a Loki source's labels map to services, pods and levels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LokiConfig {
    /// The label naming a record's service (default `service`).
    pub service_label: String,
    /// A label holding the level, when streams carry one (default none: levels come
    /// from `detected_level` or the line).
    pub level_label: Option<String>,
    /// The label naming the pod (default `pod`; `instance` when absent).
    pub pod_label: String,
    /// Most entries asked for per request (default 5000, Loki's default
    /// `max_entries_limit_per_query`).
    pub page_limit: usize,
}

impl Default for LokiConfig {
    fn default() -> Self {
        Self {
            service_label: "service".to_string(),
            level_label: None,
            pod_label: "pod".to_string(),
            page_limit: 5000,
        }
    }
}

/// A Loki HTTP API endpoint.
#[derive(Debug, Clone)]
pub struct LokiSource {
    name: String,
    http: HttpClient,
    config: LokiConfig,
}

#[derive(Debug, Deserialize)]
struct LabelValuesResponse {
    status: String,
    #[serde(default)]
    data: Vec<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BuildInfo {
    version: String,
}

const NS_PER_MS: i64 = 1_000_000;

fn ns(ms: i64) -> i64 {
    ms.saturating_mul(NS_PER_MS)
}

impl LokiSource {
    pub fn new(name: &str, http: HttpClient, config: LokiConfig) -> Self {
        Self {
            name: name.to_string(),
            http,
            config,
        }
    }

    /// The LogQL sent for `query`.
    pub fn logql(&self, query: &LogQuery) -> String {
        logql::logql(query, &self.config)
    }

    fn rejected(&self, detail: String) -> SourceError {
        SourceError::QueryRejected {
            source_name: self.name.clone(),
            detail,
        }
    }

    /// Name the LogQL in a rejection, so the user sees which query Loki refused.
    fn with_query(&self, logql: &str, e: SourceError) -> SourceError {
        match e {
            SourceError::QueryRejected { detail, .. } => {
                self.rejected(format!("Loki refused `{logql}`: {detail}"))
            }
            other => other,
        }
    }

    /// `GET /loki/api/v1/label/<label>/values` over `range`, sorted.
    pub async fn label_values(&self, label: &str, range: TimeRange) -> SourceResult<Vec<String>> {
        let valid = label.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(self.rejected(format!(
                "`{label}` is not a Loki label name (letters, digits and `_`, not starting with a digit)"
            )));
        }
        let r: LabelValuesResponse = self
            .http
            .get_json(
                &format!("loki/api/v1/label/{label}/values"),
                &[
                    ("start", ns(range.start).to_string()),
                    ("end", ns(range.end).to_string()),
                ],
            )
            .await?;
        if r.status != "success" {
            return Err(SourceError::BadData {
                source_name: self.name.clone(),
                detail: format!(
                    "values of label `{label}`: Loki answered status `{}`: {}",
                    r.status,
                    r.error.as_deref().unwrap_or("no error message")
                ),
            });
        }
        let mut values = r.data;
        values.sort();
        values.dedup();
        Ok(values)
    }

    /// `GET /loki/api/v1/status/buildinfo` and `GET /ready`, for `compass config
    /// check`: "Loki 3.1.0 ready". A gateway that only proxies the API (no `/ready`)
    /// gives "Loki 3.1.0 (readiness not exposed at this url)".
    pub async fn ping(&self) -> SourceResult<String> {
        let version = match self
            .http
            .get_json::<BuildInfo>("loki/api/v1/status/buildinfo", &[])
            .await
        {
            Ok(info) => Some(info.version),
            Err(SourceError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let loki = match &version {
            Some(v) => format!("Loki {v}"),
            None => "Loki".to_string(),
        };
        match self.http.get_text("ready").await {
            Ok(body) if body.trim() == "ready" => Ok(format!("{loki} ready")),
            Ok(body) => Err(SourceError::Unavailable {
                source_name: self.name.clone(),
                detail: format!("{loki} is not ready: {}", body.trim()),
            }),
            Err(SourceError::NotFound { .. }) if version.is_some() => {
                Ok(format!("{loki} (readiness not exposed at this url)"))
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl LogSource for LokiSource {
    fn name(&self) -> &str {
        &self.name
    }

    /// The LogQL actually sent (the service label is this source's own).
    fn query_text(&self, query: &LogQuery, _service_label: &str) -> String {
        self.logql(query)
    }

    async fn fetch_logs(
        &self,
        query: &LogQuery,
        range: TimeRange,
        cursor: Option<&str>,
        limit: usize,
    ) -> SourceResult<Page<LogRecord>> {
        if limit == 0 {
            return Err(self.rejected("page limit must be at least 1".to_string()));
        }
        let end = ns(range.end);
        let start = match cursor {
            None => ns(range.start),
            Some(c) => c
                .parse::<i64>()
                .ok()
                .filter(|&at| at >= ns(range.start) && at <= end)
                .ok_or_else(|| {
                    self.rejected(format!(
                        "cursor `{c}` was not issued by this source for this range; start again without one"
                    ))
                })?,
        };
        if start >= end {
            return Ok(Page {
                items: Vec::new(),
                next: None,
                problems: Vec::new(),
            });
        }
        let logql = self.logql(query);
        let asked = limit.min(self.config.page_limit.max(1));
        tracing::debug!(source = %self.name, %logql, start, end, asked, "loki query_range");
        let response: QueryResponse = self
            .http
            .get_json(
                "loki/api/v1/query_range",
                &[
                    ("query", logql.clone()),
                    ("start", start.to_string()),
                    ("end", end.to_string()),
                    ("limit", asked.to_string()),
                    ("direction", "forward".to_string()),
                ],
            )
            .await
            .map_err(|e| self.with_query(&logql, e))?;
        let page = response::read_page(
            &self.name,
            &logql,
            response,
            asked,
            query.min_level,
            &self.config,
        )?;
        Ok(Page {
            items: page.records,
            next: page
                .next_start
                .filter(|&at| at < end)
                .map(|at| at.to_string()),
            problems: page.problems,
        })
    }
}
