//! The `[serve]` and `[limits]` sections: how `compass serve` listens, where it keeps
//! its state, and the guard rails of the design (agents, cost and time per incident,
//! human approval, which incidents are investigated automatically).
//!
//! ```toml
//! [serve]
//! listen = "0.0.0.0:8080"
//! database_url_env = "COMPASS_DATABASE_URL"   # or database_url = "sqlite:///var/lib/compass/compass.db"
//! workers = 2
//! lease = "60s"
//! webhook_secret_env = "COMPASS_WEBHOOK_SECRET"
//!
//! [limits]
//! max_agents_per_incident = 8
//! max_cost_per_incident_usd = 0.25
//! max_investigation_time = "2m"
//! severities = ["critical", "warning"]
//! ```

use super::humantime_field;
use secrecy::SecretString;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServeSection {
    listen: Option<String>,
    database_url: Option<String>,
    database_url_env: Option<String>,
    workers: Option<usize>,
    lease: Option<String>,
    max_attempts: Option<u32>,
    max_body_bytes: Option<usize>,
    request_timeout: Option<String>,
    shutdown_grace: Option<String>,
    webhook_secret_env: Option<String>,
    storm_max_new_incidents: Option<u64>,
    storm_window: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LimitsSection {
    max_agents_per_incident: Option<usize>,
    max_cost_per_incident_usd: Option<f64>,
    max_investigation_time: Option<String>,
    require_human_approval: Option<bool>,
    auto_remediation: Option<bool>,
    severities: Option<Vec<String>>,
    incident_types: Option<Vec<String>>,
}

/// Validated `[serve]`.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub listen: String,
    /// `None`: the command line or `$COMPASS_DATABASE_URL` must say, else SQLite in the
    /// data directory.
    pub database_url: Option<SecretString>,
    /// Investigations run at once by this replica.
    pub workers: usize,
    /// How long a job stays leased without renewal (renewed every third of it).
    pub lease: Duration,
    /// Leases taken before a job whose workers keep dying is failed.
    pub max_attempts: u32,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// How long shutdown waits for running investigations.
    pub shutdown_grace: Duration,
    /// The webhook shared secret (bearer, `X-Compass-Secret`) and HMAC key.
    pub webhook_secret: Option<SecretString>,
    pub storm_max_new_incidents: u64,
    pub storm_window: Duration,
}

impl Default for ServeSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: None,
            workers: 2,
            lease: Duration::from_secs(60),
            max_attempts: 3,
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            webhook_secret: None,
            storm_max_new_incidents: 20,
            storm_window: Duration::from_secs(60),
        }
    }
}

/// Validated `[limits]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_agents_per_incident: usize,
    pub max_cost_per_incident_usd: f64,
    pub max_investigation_time: Duration,
    /// Remediation waits for a human approver (issue 7 enforces it on actions).
    pub require_human_approval: bool,
    pub auto_remediation: bool,
    /// Severities investigated automatically when an alert opens an incident.
    pub severities: Vec<String>,
    /// Alert names (`alertname` label) investigated automatically; empty: all.
    pub incident_types: Vec<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_agents_per_incident: 16,
            max_cost_per_incident_usd: 0.25,
            max_investigation_time: Duration::from_secs(120),
            require_human_approval: true,
            auto_remediation: false,
            severities: vec!["critical".into(), "warning".into(), "info".into()],
            incident_types: Vec::new(),
        }
    }
}

impl Limits {
    /// Whether an incident with this severity and alert name is investigated on arrival.
    pub fn auto_investigates(&self, severity: &str, alertname: Option<&str>) -> bool {
        self.severities.iter().any(|s| s == severity)
            && (self.incident_types.is_empty()
                || alertname.is_some_and(|a| self.incident_types.iter().any(|t| t == a)))
    }
}

fn secret_from_env(var: &str, field: &str) -> Result<Option<SecretString>, String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(Some(SecretString::from(v))),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => Err(format!("{field}: ${var}: {e}")),
    }
}

pub(super) fn validate_serve(raw: ServeSection) -> Result<ServeSettings, String> {
    let d = ServeSettings::default();
    if raw.database_url.is_some() && raw.database_url_env.is_some() {
        return Err("[serve] set `database_url` or `database_url_env`, not both".into());
    }
    let database_url = match (raw.database_url, raw.database_url_env) {
        (Some(url), _) => Some(SecretString::from(url)),
        (None, Some(var)) => secret_from_env(&var, "[serve] database_url_env")?,
        (None, None) => None,
    };
    let webhook_secret = match raw.webhook_secret_env {
        Some(var) => {
            let s = secret_from_env(&var, "[serve] webhook_secret_env")?;
            if s.is_none() {
                return Err(format!(
                    "[serve] webhook_secret_env: ${var} is not set; export it or remove the field"
                ));
            }
            s
        }
        None => None,
    };
    let dur = |v: Option<String>, field: &str, default: Duration| -> Result<Duration, String> {
        v.map(|s| humantime_field(&s, &format!("[serve] {field}")))
            .transpose()
            .map(|d| d.unwrap_or(default))
    };
    let workers = raw.workers.unwrap_or(d.workers);
    if workers == 0 || workers > 64 {
        return Err(format!("[serve] workers = {workers}: use 1 to 64"));
    }
    let lease = dur(raw.lease, "lease", d.lease)?;
    if lease < Duration::from_secs(3) {
        return Err("[serve] lease: at least 3s (it is renewed every third of it)".into());
    }
    let max_body_bytes = raw.max_body_bytes.unwrap_or(d.max_body_bytes);
    if max_body_bytes < 1024 {
        return Err("[serve] max_body_bytes: at least 1024".into());
    }
    Ok(ServeSettings {
        listen: raw.listen.unwrap_or(d.listen),
        database_url,
        workers,
        lease,
        max_attempts: raw.max_attempts.unwrap_or(d.max_attempts).max(1),
        max_body_bytes,
        request_timeout: dur(raw.request_timeout, "request_timeout", d.request_timeout)?,
        shutdown_grace: dur(raw.shutdown_grace, "shutdown_grace", d.shutdown_grace)?,
        webhook_secret,
        storm_max_new_incidents: raw
            .storm_max_new_incidents
            .unwrap_or(d.storm_max_new_incidents)
            .max(1),
        storm_window: dur(raw.storm_window, "storm_window", d.storm_window)?,
    })
}

pub(super) fn validate_limits(raw: LimitsSection) -> Result<Limits, String> {
    let d = Limits::default();
    let max_cost = raw
        .max_cost_per_incident_usd
        .unwrap_or(d.max_cost_per_incident_usd);
    if !(max_cost.is_finite() && max_cost >= 0.0) {
        return Err(format!(
            "[limits] max_cost_per_incident_usd = {max_cost}: use a number ≥ 0"
        ));
    }
    let max_agents = raw
        .max_agents_per_incident
        .unwrap_or(d.max_agents_per_incident);
    if max_agents == 0 {
        return Err("[limits] max_agents_per_incident: at least 1".into());
    }
    let severities = raw.severities.unwrap_or(d.severities);
    for s in &severities {
        if !["critical", "warning", "info"].contains(&s.as_str()) {
            return Err(format!(
                "[limits] severities: `{s}` is not a severity (use critical, warning, info)"
            ));
        }
    }
    let auto_remediation = raw.auto_remediation.unwrap_or(d.auto_remediation);
    let require_human_approval = raw
        .require_human_approval
        .unwrap_or(d.require_human_approval);
    Ok(Limits {
        max_agents_per_incident: max_agents,
        max_cost_per_incident_usd: max_cost,
        max_investigation_time: raw
            .max_investigation_time
            .map(|s| humantime_field(&s, "[limits] max_investigation_time"))
            .transpose()?
            .unwrap_or(d.max_investigation_time),
        require_human_approval,
        auto_remediation,
        severities,
        incident_types: raw.incident_types.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(text: &str) -> Result<ServeSettings, String> {
        validate_serve(toml::from_str(text).map_err(|e| e.to_string())?)
    }
    fn limits(text: &str) -> Result<Limits, String> {
        validate_limits(toml::from_str(text).map_err(|e| e.to_string())?)
    }

    #[test]
    fn defaults_and_overrides() {
        let s = serve("").unwrap();
        assert_eq!(
            (s.workers, s.lease, s.max_body_bytes),
            (2, Duration::from_secs(60), 1 << 20)
        );
        let s = serve("workers = 4\nlease = \"10s\"\nlisten = \"0.0.0.0:9000\"").unwrap();
        assert_eq!(
            (s.workers, s.lease.as_secs(), s.listen.as_str()),
            (4, 10, "0.0.0.0:9000")
        );
        let l = limits("max_investigation_time = \"30s\"\nseverities = [\"critical\"]\nincident_types = [\"HighLatency\"]").unwrap();
        assert_eq!(l.max_investigation_time, Duration::from_secs(30));
        assert!(l.auto_investigates("critical", Some("HighLatency")));
        assert!(!l.auto_investigates("warning", Some("HighLatency")));
        assert!(!l.auto_investigates("critical", Some("DiskFull")));
        assert!(Limits::default().auto_investigates("info", None));
    }

    #[test]
    fn mistakes_are_named() {
        for (text, needle) in [
            ("workers = 0", "workers = 0"),
            ("lease = \"1s\"", "at least 3s"),
            ("lease = \"soon\"", "[serve] lease"),
            ("database_url = \"x\"\ndatabase_url_env = \"Y\"", "not both"),
            (
                "webhook_secret_env = \"COMPASS_TEST_UNSET_SECRET_VAR\"",
                "is not set",
            ),
            ("colour = 1", "unknown field"),
        ] {
            let e = serve(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
        for (text, needle) in [
            ("severities = [\"urgent\"]", "`urgent` is not a severity"),
            ("max_cost_per_incident_usd = -1.0", "≥ 0"),
            ("max_agents_per_incident = 0", "at least 1"),
        ] {
            let e = limits(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
