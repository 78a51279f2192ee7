//! The `[act]` section: what remediation may touch and how (design §10). Nothing here
//! runs anything by itself; it is the policy and the places `compass act` and the
//! `/api/v1/actions` endpoints use. Whether commands may skip a human approval comes
//! from `[limits]` (`auto_remediation = true` and `require_human_approval = false`),
//! then only for the `(incident type, severity)` pairs listed in `auto_approve`.
//!
//! ```toml
//! [act]
//! state_dir = "/var/lib/compass/act"        # default: the data directory's act/
//! control = "/usr/local/bin/iris-control"   # <control> drain|stop|force|start|status <service>
//! config_files = ["/iris/mgr/iris.cpf"]
//! step_timeout = "60s"
//! startup_deadline = "5m"
//! auto_approve = [{ incident_type = "*", severity = "info" }]
//!
//! [[act.allow]]
//! program = "/usr/local/bin/iris-journal-switch"
//! risk = "medium"
//!
//! [act.services]                             # which service reads each config file
//! "/iris/mgr/iris.cpf" = "IRIS"
//!
//! [act.iris]
//! messages_log = "/iris/mgr/messages.log"
//! cpf = "/iris/mgr/iris.cpf"
//! service = "IRIS"
//! utc_offset = "+01:00"
//! journal_command = ["/usr/local/bin/iris-journal-switch", "--alternate"]
//!
//! [act.drill]
//! endpoint = "http://drills.example:8080/events"
//! ```

use super::humantime_field;
use compass_act::action::{Allowed, Policy, RiskLevel};
use compass_act::runner::Settings as RunnerSettings;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ActSection {
    state_dir: Option<PathBuf>,
    backup_dir: Option<PathBuf>,
    control: Option<String>,
    scaler: Option<String>,
    sysctl: Option<String>,
    #[serde(default)]
    config_files: Vec<String>,
    kernel_params: Option<Vec<String>>,
    max_replicas: Option<u32>,
    step_timeout: Option<String>,
    drain_wait: Option<String>,
    startup_deadline: Option<String>,
    #[serde(default)]
    auto_approve: Vec<AutoApprove>,
    #[serde(default)]
    allow: Vec<AllowSection>,
    #[serde(default)]
    services: BTreeMap<String, String>,
    iris: Option<IrisSection>,
    drill: Option<DrillSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AutoApprove {
    incident_type: String,
    severity: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowSection {
    program: String,
    risk: RiskLevel,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IrisSection {
    messages_log: Option<PathBuf>,
    cpf: Option<PathBuf>,
    service: Option<String>,
    utc_offset: Option<String>,
    journal_command: Option<Vec<String>>,
    hugepage_kb: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrillSection {
    endpoint: Option<String>,
    outbox: Option<PathBuf>,
    timeout: Option<String>,
}

/// Validated `[act]`.
#[derive(Debug, Clone)]
pub struct ActSettings {
    pub state_dir: PathBuf,
    /// The runner's policy, programs and time limits.
    pub runner: RunnerSettings,
    pub iris: IrisSettings,
    pub drill: DrillSettings,
}

/// `[act.iris]`: the instance the IRIS pack diagnoses.
#[derive(Debug, Clone, PartialEq)]
pub struct IrisSettings {
    pub messages_log: Option<PathBuf>,
    pub cpf: Option<PathBuf>,
    pub service: String,
    /// The instance's offset from UTC (its `messages.log` is in local time).
    pub utc_offset: chrono::FixedOffset,
    pub journal_command: Option<(String, Vec<String>)>,
    /// `None`: read `/proc/meminfo`, else 2048.
    pub hugepage_kb: Option<u64>,
}

/// `[act.drill]`: where generated drill errors are sent.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillSettings {
    pub endpoint: Option<String>,
    pub outbox: PathBuf,
    /// Per delivery try (10 s).
    pub timeout: Duration,
}

impl ActSettings {
    /// The defaults with the state under `state_dir` (what an absent `[act]` means).
    pub fn with_state_dir(state_dir: PathBuf) -> Self {
        validate(ActSection::default(), false, Some(state_dir), None)
            .expect("the defaults are valid")
    }
}

/// Relative to the config file's directory, then made absolute: records and the
/// audit log name files the same way whatever directory a command ran from.
fn resolve(p: PathBuf, base: Option<&Path>) -> PathBuf {
    let p = match base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p,
    };
    std::path::absolute(&p).unwrap_or(p)
}

pub(super) fn validate(
    raw: ActSection,
    auto_remediation: bool,
    default_state_dir: Option<PathBuf>,
    base_dir: Option<&Path>,
) -> Result<ActSettings, String> {
    let state_dir = raw
        .state_dir
        .map(|p| resolve(p, base_dir))
        .or(default_state_dir)
        .unwrap_or_else(|| crate::store::data_dir().join("act"));
    let dur = |v: Option<String>, field: &str, default: Duration| -> Result<Duration, String> {
        let d = v
            .map(|s| humantime_field(&s, &format!("[act] {field}")))
            .transpose()?
            .unwrap_or(default);
        if d.is_zero() {
            return Err(format!("[act] {field}: must be more than 0"));
        }
        Ok(d)
    };
    for a in &raw.allow {
        if a.program.trim().is_empty() {
            return Err("[[act.allow]] program is empty".into());
        }
    }
    for a in &raw.auto_approve {
        if !["*", "critical", "warning", "info"].contains(&a.severity.as_str()) {
            return Err(format!(
                "[act] auto_approve: severity `{}` is not *, critical, warning or info",
                a.severity
            ));
        }
    }
    let mut config_files = raw.config_files;
    let iris = raw.iris.unwrap_or(IrisSection {
        messages_log: None,
        cpf: None,
        service: None,
        utc_offset: None,
        journal_command: None,
        hugepage_kb: None,
    });
    let cpf = iris.cpf.map(|p| resolve(p, base_dir));
    let service = iris.service.unwrap_or_else(|| "IRIS".into());
    let mut services = raw.services;
    if let Some(c) = &cpf {
        let c = c.display().to_string();
        if !config_files.contains(&c) {
            config_files.push(c.clone());
        }
        services.entry(c).or_insert_with(|| service.clone());
    }
    let utc_offset = match iris.utc_offset.as_deref() {
        None => chrono::FixedOffset::east_opt(0).expect("UTC"),
        Some(s) => parse_offset(s).ok_or_else(|| {
            format!("[act.iris] utc_offset = \"{s}\": write it as +01:00 or -05:30")
        })?,
    };
    let journal_command = match iris.journal_command {
        None => None,
        Some(v) if v.is_empty() || v[0].trim().is_empty() => {
            return Err(
                "[act.iris] journal_command: give the program first, then its arguments".into(),
            );
        }
        Some(mut v) => {
            let program = v.remove(0);
            Some((program, v))
        }
    };
    let mut allowlist: Vec<Allowed> = raw
        .allow
        .into_iter()
        .map(|a| Allowed {
            program: a.program,
            risk: a.risk,
        })
        .collect();
    if let Some((program, _)) = &journal_command
        && !allowlist.iter().any(|a| &a.program == program)
    {
        // the journal switch must be runnable: it is allowlisted at medium risk
        allowlist.push(Allowed {
            program: program.clone(),
            risk: RiskLevel::Medium,
        });
    }
    if iris.hugepage_kb == Some(0) {
        return Err("[act.iris] hugepage_kb: must be more than 0".into());
    }
    let drill = raw.drill.unwrap_or(DrillSection {
        endpoint: None,
        outbox: None,
        timeout: None,
    });
    if let Some(e) = &drill.endpoint
        && !(e.starts_with("http://") || e.starts_with("https://"))
    {
        return Err(format!(
            "[act.drill] endpoint = \"{e}\": use an http:// or https:// URL"
        ));
    }
    let runner = RunnerSettings {
        policy: Policy {
            allowlist,
            config_files,
            auto_remediation,
            auto_approve: raw
                .auto_approve
                .into_iter()
                .map(|a| (a.incident_type, a.severity))
                .collect(),
            max_replicas: raw.max_replicas.unwrap_or(20),
            kernel_params: raw
                .kernel_params
                .unwrap_or_else(|| vec!["vm.nr_hugepages".into()]),
        },
        backup_dir: raw
            .backup_dir
            .map(|p| resolve(p, base_dir))
            .unwrap_or_else(|| state_dir.join("backups")),
        control: raw.control,
        scaler: raw.scaler,
        sysctl: Some(raw.sysctl.unwrap_or_else(|| "sysctl".into())),
        config_services: services,
        step_timeout: dur(raw.step_timeout, "step_timeout", Duration::from_secs(60))?,
        drain_wait: dur(raw.drain_wait, "drain_wait", Duration::from_secs(10))?,
        startup_deadline: dur(
            raw.startup_deadline,
            "startup_deadline",
            Duration::from_secs(300),
        )?,
    };
    Ok(ActSettings {
        drill: DrillSettings {
            endpoint: drill.endpoint,
            outbox: drill
                .outbox
                .map(|p| resolve(p, base_dir))
                .unwrap_or_else(|| state_dir.join("outbox")),
            timeout: dur(drill.timeout, "drill timeout", Duration::from_secs(10))?,
        },
        state_dir,
        runner,
        iris: IrisSettings {
            messages_log: iris.messages_log.map(|p| resolve(p, base_dir)),
            cpf,
            service,
            utc_offset,
            journal_command,
            hugepage_kb: iris.hugepage_kb,
        },
    })
}

/// `+01:00`, `-05:30`, `Z`.
pub fn parse_offset(s: &str) -> Option<chrono::FixedOffset> {
    let s = s.trim();
    if s == "Z" || s == "UTC" {
        return chrono::FixedOffset::east_opt(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn act(text: &str, auto: bool) -> Result<ActSettings, String> {
        validate(
            toml::from_str(text).map_err(|e| e.to_string())?,
            auto,
            Some(PathBuf::from("/state")),
            Some(Path::new("/etc/compass")),
        )
    }

    #[test]
    fn defaults_are_safe() {
        let a = act("", true).unwrap();
        assert_eq!(a.state_dir, PathBuf::from("/state"));
        assert_eq!(a.runner.backup_dir, PathBuf::from("/state/backups"));
        assert!(a.runner.policy.allowlist.is_empty());
        assert!(a.runner.policy.config_files.is_empty());
        assert!(a.runner.policy.auto_approve.is_empty());
        assert_eq!(a.runner.policy.kernel_params, ["vm.nr_hugepages"]);
        assert_eq!(a.drill.timeout, Duration::from_secs(10));
        assert_eq!(a.drill.outbox, PathBuf::from("/state/outbox"));
    }

    #[test]
    fn the_iris_instance_brings_its_cpf_service_and_journal_switch() {
        let a = act(
            r#"
control = "bin/iris-control"
[act_unused]
"#,
            false,
        );
        assert!(a.unwrap_err().contains("unknown field"));
        let a = act(
            r#"
control = "/usr/local/bin/iris-control"
[iris]
cpf = "iris.cpf"
utc_offset = "+01:00"
journal_command = ["/usr/local/bin/jswitch", "--alternate"]
"#,
            false,
        )
        .unwrap();
        assert_eq!(a.runner.policy.config_files, ["/etc/compass/iris.cpf"]);
        assert_eq!(
            a.runner
                .config_services
                .get("/etc/compass/iris.cpf")
                .map(String::as_str),
            Some("IRIS")
        );
        assert_eq!(a.iris.utc_offset.local_minus_utc(), 3600);
        assert_eq!(
            a.runner.policy.allowlist[0].program,
            "/usr/local/bin/jswitch"
        );
        assert_eq!(
            a.iris.journal_command,
            Some(("/usr/local/bin/jswitch".into(), vec!["--alternate".into()]))
        );
    }

    #[test]
    fn bad_values_are_named() {
        for (text, want) in [
            ("step_timeout = \"soon\"", "step_timeout"),
            ("startup_deadline = \"0s\"", "more than 0"),
            ("[iris]\nutc_offset = \"CET\"", "utc_offset"),
            ("[iris]\njournal_command = []", "journal_command"),
            ("[drill]\nendpoint = \"ftp://x\"", "http://"),
            (
                "auto_approve = [{ incident_type = \"*\", severity = \"sometimes\" }]",
                "sometimes",
            ),
            ("[[allow]]\nprogram = \"x\"\nrisk = \"extreme\"", "extreme"),
        ] {
            let e = act(text, false).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
        assert_eq!(parse_offset("-05:30").unwrap().local_minus_utc(), -19800);
        assert!(parse_offset("+15:00").is_none());
    }
}
