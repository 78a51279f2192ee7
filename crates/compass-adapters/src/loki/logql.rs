//! The LogQL sent for a [`LogQuery`]: a stream selector on the service label, and for a
//! minimum level of `WARN` or above a level filter.
//!
//! The level filter is one rule that works on any Loki: with a configured level label,
//! a case-insensitive label matcher on the names of the wanted levels
//! (`level=~"(?i)(warn|warning|error|...)"`); without one, a case-insensitive line
//! filter on the level words (`|~ "(?i)(warn|err|fatal|...)"`, substrings, so it keeps
//! every line the adapter's own level rule can rate high enough; the adapter then drops
//! the lines it rates lower). A `| json` stage is not used: it would drop lines that
//! are not JSON. Below `WARN` the selector is sent alone and levels are filtered here,
//! since lines naming no level count as `INFO`.

use super::LokiConfig;
use crate::logfile::level_names_at_least;
use compass_core::{LogLevel, promql_string};
use compass_engine::LogQuery;

/// The LogQL for `query`.
pub(crate) fn logql(query: &LogQuery, config: &LokiConfig) -> String {
    let service = match &query.service {
        Some(name) => format!("{}={}", config.service_label, promql_string(name)),
        None => format!("{}=~\".+\"", config.service_label),
    };
    let Some(min) = query.min_level.filter(|&l| l >= LogLevel::Warn) else {
        return format!("{{{service}}}");
    };
    match &config.level_label {
        Some(label) => {
            let names: Vec<&str> = level_names_at_least(min).collect();
            let pattern = format!("(?i)({})", names.join("|"));
            format!("{{{service}, {label}=~{}}}", promql_string(&pattern))
        }
        None => {
            let pattern = format!("(?i)({})", line_words(min).join("|"));
            format!("{{{service}}} |~ {}", promql_string(&pattern))
        }
    }
}

/// Substrings of every line the adapter can rate at `min` or above: level words (`err`
/// covers `error`, `crit` covers `critical`) and pino/bunyan numeric JSON levels.
fn line_words(min: LogLevel) -> Vec<&'static str> {
    let mut words = Vec::new();
    if min <= LogLevel::Warn {
        words.push("warn");
        words.push(r#""level":\s*[456]0\b"#);
    }
    if min <= LogLevel::Error {
        words.extend(["err", "severe"]);
        if min == LogLevel::Error {
            words.push(r#""level":\s*[56]0\b"#);
        }
    }
    words.extend(["fatal", "crit", "panic", "emerg", "alert"]);
    if min == LogLevel::Fatal {
        words.push(r#""level":\s*60\b"#);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(level_label: Option<&str>) -> LokiConfig {
        LokiConfig {
            level_label: level_label.map(str::to_string),
            ..LokiConfig::default()
        }
    }

    fn query(service: Option<&str>, min_level: Option<LogLevel>) -> LogQuery {
        LogQuery {
            service: service.map(str::to_string),
            min_level,
        }
    }

    #[test]
    fn selector_only_below_warn() {
        let c = config(None);
        assert_eq!(logql(&query(None, None), &c), r#"{service=~".+"}"#);
        assert_eq!(
            logql(&query(Some("cart"), Some(LogLevel::Info)), &c),
            r#"{service="cart"}"#
        );
        assert_eq!(
            logql(&query(Some(r#"we"ird"#), None), &c),
            r#"{service="we\"ird"}"#
        );
    }

    #[test]
    fn level_label_matcher() {
        let q = logql(
            &query(Some("cart"), Some(LogLevel::Error)),
            &config(Some("level")),
        );
        assert_eq!(
            q,
            r#"{service="cart", level=~"(?i)(error|err|severe|fatal|critical|crit|panic|emerg|alert)"}"#
        );
    }

    #[test]
    fn line_filter_without_a_level_label() {
        let q = logql(&query(None, Some(LogLevel::Error)), &config(None));
        assert_eq!(
            q,
            r#"{service=~".+"} |~ "(?i)(err|severe|\"level\":\\s*[56]0\\b|fatal|crit|panic|emerg|alert)""#
        );
        let warn = logql(&query(None, Some(LogLevel::Warn)), &config(None));
        assert!(warn.contains("warn|"), "{warn}");
        assert!(warn.contains("[456]0"), "{warn}");
    }
}
