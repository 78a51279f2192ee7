//! `compass.toml`: the one file that says where the telemetry lives and how to read it.
//!
//! Parsed strictly (`deny_unknown_fields`, a `version` field) into the raw types here,
//! then validated into [`Settings`], which is all the rest of COMPASS sees. Secrets
//! (tokens, passwords) come from the file, an environment variable (`*_env`) or a file
//! (`*_file`), and are held in `SecretString`, which never prints. Each error names the
//! file, the source and the field, and says what would be right.
//!
//! ```toml
//! version = 1
//! [services]
//! label = "service"
//! [metrics]
//! presets = ["opentelemetry"]
//! [sources.prom]
//! kind = "prometheus"
//! url = "http://prometheus:9090"
//! ```
//!
//! The full reference is docs/configuration.md.

mod act;
pub mod llm;
mod presets;
mod serve;
mod sources;

pub use act::{ActSettings, DrillSettings, IrisSettings, parse_offset};
pub use presets::PRESETS;
pub use serve::{Limits, ServeSettings};
pub use sources::{LiveSource, SourceCheck, check_sources};

use crate::http::{Auth, HttpConfig, RetryPolicy, TlsOptions};
use compass_engine::catalog::MetricCatalog;
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// The config format version this build reads.
pub const CONFIG_VERSION: u32 = 1;

/// A config file that cannot be used, with where and why.
#[derive(Debug, Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    version: u32,
    #[serde(default)]
    services: ServicesSection,
    #[serde(default)]
    metrics: MetricsSection,
    #[serde(default)]
    sources: BTreeMap<String, SourceSection>,
    llm: Option<llm::LlmSection>,
    #[serde(default)]
    serve: serve::ServeSection,
    #[serde(default)]
    limits: serve::LimitsSection,
    #[serde(default)]
    act: act::ActSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServicesSection {
    /// Label naming the service on metrics and logs.
    #[serde(default = "default_service_label")]
    label: String,
    #[serde(default = "default_pod_label")]
    pod_label: String,
    /// Alert labels that name the service, first present wins.
    #[serde(default)]
    alert_labels: Option<Vec<String>>,
}

fn default_service_label() -> String {
    "service".into()
}
fn default_pod_label() -> String {
    "pod".into()
}

impl Default for ServicesSection {
    fn default() -> Self {
        Self {
            label: default_service_label(),
            pod_label: default_pod_label(),
            alert_labels: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsSection {
    #[serde(default)]
    presets: Vec<String>,
    /// Field-by-field overrides of the catalog (any `MetricCatalog` field).
    #[serde(default)]
    mapping: Option<toml::Table>,
}

/// The kinds of source; one `match` in `sources.rs` builds each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Prometheus,
    Loki,
    Tempo,
    Jaeger,
    LogFiles,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Prometheus => "prometheus",
            SourceKind::Loki => "loki",
            SourceKind::Tempo => "tempo",
            SourceKind::Jaeger => "jaeger",
            SourceKind::LogFiles => "log_files",
        }
    }
    /// The port this kind serves.
    pub fn port(self) -> &'static str {
        match self {
            SourceKind::Prometheus => "metrics",
            SourceKind::Loki | SourceKind::LogFiles => "logs",
            SourceKind::Tempo | SourceKind::Jaeger => "traces",
        }
    }
}

/// One `[sources.NAME]` table. Fields that do not apply to its kind are rejected in
/// validation with a message naming the kinds they belong to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceSection {
    kind: SourceKind,
    // HTTP backends
    url: Option<String>,
    timeout: Option<String>,
    retries: Option<u32>,
    auth: Option<AuthSection>,
    tls: Option<TlsSection>,
    headers: Option<BTreeMap<String, String>>,
    // prometheus
    max_series: Option<usize>,
    scope: Option<BTreeMap<String, String>>,
    // loki
    level_label: Option<String>,
    // tempo / jaeger
    max_traces: Option<usize>,
    // log_files
    paths: Option<Vec<String>>,
    format: Option<String>,
    service: Option<String>,
    service_field: Option<String>,
    timestamp_field: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthSection {
    bearer_token: Option<String>,
    bearer_token_env: Option<String>,
    bearer_token_file: Option<PathBuf>,
    username: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    ca_file: Option<PathBuf>,
    #[serde(default)]
    insecure_skip_verify: bool,
}

/// Validated settings: what the rest of COMPASS sees.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the settings came from (for messages).
    pub origin: String,
    pub catalog: MetricCatalog,
    /// Alert labels that name the service, first present wins.
    pub alert_service_labels: Vec<String>,
    pub sources: Vec<SourceSettings>,
    /// The `[llm]` section; `None`: no model.
    pub llm: Option<llm::LlmSettings>,
    /// `[serve]`: how `compass serve` listens and keeps state.
    pub serve: ServeSettings,
    /// `[limits]`: guard rails per incident.
    pub limits: Limits,
    /// `[act]`: what remediation may touch and how.
    pub act: ActSettings,
}

/// One validated source.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    pub name: String,
    pub kind: SourceKind,
    pub http: Option<HttpConfig>,
    pub max_series: usize,
    pub scope: Vec<(String, String)>,
    pub level_label: Option<String>,
    pub max_traces: usize,
    pub paths: Vec<String>,
    pub format: Option<String>,
    pub service: Option<String>,
    pub service_field: Option<String>,
    pub timestamp_field: Option<String>,
}

impl SourceSettings {
    /// The longest one call can take (every attempt timing out, plus backoff).
    pub fn worst_case_call(&self) -> Duration {
        self.http
            .as_ref()
            .map(|h| h.retry.worst_case(h.timeout))
            .unwrap_or(Duration::from_secs(10))
    }
}

impl Settings {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.display().to_string(),
            message: format!("cannot read the config file: {e}"),
        })?;
        Self::parse(&text, &path.display().to_string(), path.parent())
    }

    /// Validate config text; relative paths (CA files, log globs, secret files) are
    /// resolved against `base_dir`.
    pub fn parse(text: &str, origin: &str, base_dir: Option<&Path>) -> Result<Self, ConfigError> {
        let err = |message: String| ConfigError {
            path: origin.to_string(),
            message,
        };
        let raw: ConfigFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        if raw.version != CONFIG_VERSION {
            return Err(err(format!(
                "version = {} is not supported; this build reads version = {CONFIG_VERSION}",
                raw.version
            )));
        }
        for (what, label) in [
            ("[services] label", &raw.services.label),
            ("[services] pod_label", &raw.services.pod_label),
        ] {
            check_label_name(label).map_err(|m| err(format!("{what}: {m}")))?;
        }
        let mut catalog = MetricCatalog::default();
        for p in &raw.metrics.presets {
            presets::apply(p, &mut catalog).map_err(|m| err(format!("[metrics] presets: {m}")))?;
        }
        catalog.service_label = raw.services.label.clone();
        catalog.pod_label = raw.services.pod_label.clone();
        if let Some(mapping) = raw.metrics.mapping {
            catalog =
                overlay(&catalog, mapping).map_err(|m| err(format!("[metrics.mapping] {m}")))?;
        }
        let alert_service_labels = raw.services.alert_labels.unwrap_or_else(|| {
            let mut v = vec![raw.services.label.clone()];
            for l in ["service", "job", "app"] {
                if !v.iter().any(|x| x == l) {
                    v.push(l.to_string());
                }
            }
            v
        });
        let mut sources = Vec::new();
        let mut ports: BTreeMap<&str, String> = BTreeMap::new();
        for (name, section) in raw.sources {
            let port = section.kind.port();
            if let Some(other) = ports.get(port) {
                return Err(err(format!(
                    "sources `{other}` and `{name}` both serve {port}; one source per kind of data \
                     (metrics, logs, traces) is supported: remove one"
                )));
            }
            ports.insert(port, name.clone());
            let s = validate_source(&name, section, base_dir)
                .map_err(|m| err(format!("[sources.{name}] {m}")))?;
            sources.push(s);
        }
        let llm = raw
            .llm
            .map(|l| llm::validate(l, &catalog.service_label, base_dir))
            .transpose()
            .map_err(|m| err(format!("[llm] {m}")))?;
        let serve = serve::validate_serve(raw.serve).map_err(err)?;
        let limits = serve::validate_limits(raw.limits).map_err(err)?;
        let act = act::validate(
            raw.act,
            limits.auto_remediation && !limits.require_human_approval,
            None,
            base_dir,
        )
        .map_err(err)?;
        Ok(Self {
            origin: origin.to_string(),
            catalog,
            alert_service_labels,
            sources,
            llm,
            serve,
            limits,
            act,
        })
    }

    /// The longest one call to any source can take; the circuit breakers' call timeout.
    pub fn worst_case_call(&self) -> Duration {
        self.sources
            .iter()
            .map(SourceSettings::worst_case_call)
            .max()
            .unwrap_or(Duration::from_secs(10))
    }
}

/// Apply `[metrics.mapping]` over `catalog`, rejecting unknown field names.
fn overlay(catalog: &MetricCatalog, mapping: toml::Table) -> Result<MetricCatalog, String> {
    for key in ["service_label", "pod_label"] {
        if mapping.contains_key(key) {
            return Err(format!("`{key}` is set in [services], not here"));
        }
    }
    let mut merged = toml::Table::try_from(catalog).map_err(|e| e.to_string())?;
    for (k, v) in mapping {
        merged.insert(k, v);
    }
    merged
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())
}

/// Prometheus label names: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn check_label_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a valid label name (letters, digits and _; not starting with a digit)"
        ))
    }
}

fn validate_source(
    name: &str,
    s: SourceSection,
    base_dir: Option<&Path>,
) -> Result<SourceSettings, String> {
    let kind = s.kind;
    let resolve = |p: &Path| match base_dir {
        Some(b) if p.is_relative() => b.join(p),
        _ => p.to_path_buf(),
    };
    // Fields that belong to other kinds.
    let misplaced: Vec<(&str, bool, &str)> = vec![
        ("max_series", s.max_series.is_some(), "prometheus"),
        ("scope", s.scope.is_some(), "prometheus"),
        ("level_label", s.level_label.is_some(), "loki"),
        ("max_traces", s.max_traces.is_some(), "tempo, jaeger"),
        ("paths", s.paths.is_some(), "log_files"),
        ("format", s.format.is_some(), "log_files"),
        ("service", s.service.is_some(), "log_files"),
        ("service_field", s.service_field.is_some(), "log_files"),
        ("timestamp_field", s.timestamp_field.is_some(), "log_files"),
    ];
    for (field, set, kinds) in misplaced {
        if set && !kinds.split(", ").any(|k| k == kind.as_str()) {
            return Err(format!(
                "`{field}` does not apply to a {} source (it is for: {kinds})",
                kind.as_str()
            ));
        }
    }
    let is_http = kind != SourceKind::LogFiles;
    let http = if is_http {
        let url = s
            .url
            .clone()
            .ok_or_else(|| format!("a {} source needs `url`", kind.as_str()))?;
        let mut http = HttpConfig::new(url);
        if let Some(t) = &s.timeout {
            http.timeout = humantime::parse_duration(t)
                .map_err(|e| format!("timeout = \"{t}\": {e} (write e.g. \"10s\" or \"500ms\")"))?;
            if http.timeout.is_zero() {
                return Err("timeout must be more than zero".into());
            }
        }
        if let Some(r) = s.retries {
            if r > 10 {
                return Err(format!("retries = {r} is too many (at most 10)"));
            }
            http.retry = RetryPolicy {
                max_retries: r,
                ..RetryPolicy::default()
            };
        }
        if let Some(a) = s.auth {
            http.auth = auth(a, &resolve)?;
        }
        if let Some(t) = s.tls {
            http.tls = TlsOptions {
                ca_file: t.ca_file.as_deref().map(resolve),
                insecure_skip_verify: t.insecure_skip_verify,
            };
        }
        http.headers = s.headers.unwrap_or_default().into_iter().collect();
        // Catch a malformed URL now rather than at the first query.
        crate::http::HttpClient::new(name, &http).map_err(|e| match e {
            compass_engine::ports::SourceError::BadData { detail, .. } => detail,
            other => other.to_string(),
        })?;
        Some(http)
    } else {
        for (field, set) in [
            ("url", s.url.is_some()),
            ("timeout", s.timeout.is_some()),
            ("retries", s.retries.is_some()),
            ("auth", s.auth.is_some()),
            ("tls", s.tls.is_some()),
            ("headers", s.headers.is_some()),
        ] {
            if set {
                return Err(format!("`{field}` does not apply to a log_files source"));
            }
        }
        None
    };
    let mut scope = Vec::new();
    for (label, value) in s.scope.unwrap_or_default() {
        check_label_name(&label).map_err(|m| format!("scope: {m}"))?;
        scope.push((label, value));
    }
    if let Some(l) = &s.level_label {
        check_label_name(l).map_err(|m| format!("level_label: {m}"))?;
    }
    let paths = s.paths.unwrap_or_default();
    if kind == SourceKind::LogFiles && paths.is_empty() {
        return Err(
            "a log_files source needs `paths` (globs such as \"/var/log/app/*.log\")".into(),
        );
    }
    let paths = paths
        .iter()
        .map(|p| resolve(Path::new(p)).display().to_string())
        .collect();
    if let Some(f) = &s.format
        && !["auto", "plain", "json"].contains(&f.as_str())
    {
        return Err(format!(
            "format = \"{f}\": use \"auto\", \"plain\" or \"json\""
        ));
    }
    if s.max_series == Some(0) || s.max_traces == Some(0) {
        return Err("max_series and max_traces must be at least 1".into());
    }
    Ok(SourceSettings {
        name: name.to_string(),
        kind,
        http,
        max_series: s.max_series.unwrap_or(10_000),
        scope,
        level_label: s.level_label,
        max_traces: s.max_traces.unwrap_or(200),
        paths,
        format: s.format,
        service: s.service,
        service_field: s.service_field,
        timestamp_field: s.timestamp_field,
    })
}

fn auth(a: AuthSection, resolve: &dyn Fn(&Path) -> PathBuf) -> Result<Auth, String> {
    let secret = |inline: Option<String>,
                  env: Option<String>,
                  file: Option<PathBuf>,
                  what: &str|
     -> Result<Option<SecretString>, String> {
        match (inline, env, file) {
            (None, None, None) => Ok(None),
            (Some(v), None, None) => Ok(Some(SecretString::from(v))),
            (None, Some(var), None) => std::env::var(&var)
                .map(|v| Some(SecretString::from(v.trim().to_string())))
                .map_err(|_| format!("auth: {what}_env names `{var}`, which is not set")),
            (None, None, Some(path)) => {
                let path = resolve(&path);
                std::fs::read_to_string(&path)
                    .map(|v| Some(SecretString::from(v.trim().to_string())))
                    .map_err(|e| format!("auth: cannot read {what}_file {}: {e}", path.display()))
            }
            _ => Err(format!(
                "auth: set only one of {what}, {what}_env and {what}_file"
            )),
        }
    };
    let token = secret(
        a.bearer_token,
        a.bearer_token_env,
        a.bearer_token_file,
        "bearer_token",
    )?;
    let password = secret(a.password, a.password_env, a.password_file, "password")?;
    match (token, a.username, password) {
        (Some(t), None, None) => Ok(Auth::Bearer(t)),
        (None, Some(username), Some(password)) => Ok(Auth::Basic { username, password }),
        (None, None, None) => Ok(Auth::None),
        (Some(_), _, _) => {
            Err("auth: use either a bearer token or username + password, not both".into())
        }
        (None, Some(_), None) => Err("auth: username is set without a password".into()),
        (None, None, Some(_)) => Err("auth: a password is set without a username".into()),
    }
}

#[cfg(test)]
mod tests;

/// A duration such as `"30s"` or `"2m"`, or an error naming `field`.
/// A duration such as `30s` or `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{e}; write a duration such as \"30s\" or \"2m\""))
}

pub(crate) fn humantime_field(text: &str, field: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| {
        format!("{field} = \"{text}\": {e}; write a duration such as \"30s\" or \"2m\"")
    })
}
