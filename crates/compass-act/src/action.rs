//! Typed remediation commands: what they change, how risky that is (and the rule that
//! said so), whether a human must approve, which resource they touch, and the queue
//! that orders them by priority and never runs two on one resource at once.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A remediation command as it arrives (CLI file, API body or queue message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// Caller-chosen id, unique per command (`[A-Za-z0-9._-]`, at most 64).
    pub id: String,
    /// The incident this remediates, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    #[serde(default)]
    pub priority: Priority,
    pub action: Action,
    /// Why: shown to the approver and kept in the audit log.
    #[serde(default)]
    pub reason: String,
    /// A check that must pass after the change (an allowlisted program exiting 0),
    /// else the change is rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<CheckSpec>,
}

/// A post-change check as a command carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Seconds the check may take to pass (default 60).
    #[serde(default = "default_within")]
    pub within_s: u64,
    /// Seconds between tries (default 2).
    #[serde(default = "default_every")]
    pub every_s: u64,
}

fn default_within() -> u64 {
    60
}

fn default_every() -> u64 {
    2
}

#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RestartMode {
    /// Drain connections, wait, stop, start.
    Graceful,
    /// Stop at once, then start.
    Forced,
}

/// What a command changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Set one key of a configuration file (`section` for INI-like files such as the CPF).
    EditConfig {
        file: String,
        section: String,
        key: String,
        value: String,
    },
    RestartService {
        service: String,
        mode: RestartMode,
    },
    ScaleWorkload {
        workload: String,
        from: u32,
        to: u32,
    },
    /// An allowlisted program with its arguments: never a shell string.
    RunCommand {
        program: String,
        args: Vec<String>,
    },
    /// Set a kernel parameter at run time (`sysctl -w`); the old value is read first
    /// and written back on rollback.
    SetKernelParam {
        param: String,
        value: String,
    },
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::EditConfig { .. } => "edit_config",
            Action::RestartService { .. } => "restart_service",
            Action::ScaleWorkload { .. } => "scale_workload",
            Action::RunCommand { .. } => "run_command",
            Action::SetKernelParam { .. } => "set_kernel_param",
        }
    }

    /// The resource the action touches: two commands on one resource never run at once.
    pub fn resource(&self) -> String {
        match self {
            Action::EditConfig { file, .. } => format!("file:{file}"),
            Action::RestartService { service, .. } => format!("service:{service}"),
            Action::ScaleWorkload { workload, .. } => format!("workload:{workload}"),
            Action::RunCommand { program, .. } => format!("program:{program}"),
            Action::SetKernelParam { param, .. } => format!("kernel:{param}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

impl fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        })
    }
}

/// A risk level and the rule that set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Risk {
    pub level: RiskLevel,
    pub rule: String,
}

/// An allowlisted program: its path and the risk of running it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowed {
    pub program: String,
    pub risk: RiskLevel,
}

/// What the Act configuration allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Programs `run_command` may run, by exact path or name.
    pub allowlist: Vec<Allowed>,
    /// Configuration files `edit_config` may change.
    pub config_files: Vec<String>,
    /// Whether commands may run without a human approval at all.
    pub auto_remediation: bool,
    /// (incident type, severity) pairs whose low- and medium-risk commands need no
    /// approval when `auto_remediation` is on; `*` matches any.
    pub auto_approve: Vec<(String, String)>,
    pub max_replicas: u32,
    /// Kernel parameters `set_kernel_param` may change.
    pub kernel_params: Vec<String>,
}

/// A command that cannot be accepted, with every reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("command {id}: {}", problems.join("; "))]
pub struct Invalid {
    pub id: String,
    pub problems: Vec<String>,
}

/// Parses a command from JSON: serde's error names the line, column and field.
pub fn parse_command(json: &str) -> Result<Command, String> {
    serde_json::from_str(json).map_err(|e| format!("command JSON: {e}"))
}

impl Command {
    /// Checks the command against the policy; every problem is listed.
    pub fn validate(&self, policy: &Policy) -> Result<(), Invalid> {
        let mut p = Vec::new();
        if self.id.is_empty()
            || self.id.len() > 64
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            p.push("`id` must be 1-64 characters of A-Z a-z 0-9 . _ -".to_string());
        }
        let one_line = |name: &str, v: &str, p: &mut Vec<String>| {
            if v.trim().is_empty() {
                p.push(format!("`{name}` is empty"));
            } else if v.contains(['\n', '\r', '\0']) {
                p.push(format!("`{name}` must be one line"));
            }
        };
        match &self.action {
            Action::EditConfig {
                file,
                section,
                key,
                value,
            } => {
                one_line("file", file, &mut p);
                one_line("section", section, &mut p);
                one_line("key", key, &mut p);
                if value.contains(['\n', '\r', '\0']) {
                    p.push("`value` must be one line".into());
                }
                if !policy.config_files.iter().any(|f| f == file) {
                    p.push(format!(
                        "file `{file}` is not one of the configuration files COMPASS may edit ({})",
                        list(&policy.config_files)
                    ));
                }
            }
            Action::RestartService { service, .. } => one_line("service", service, &mut p),
            Action::ScaleWorkload { workload, from, to } => {
                one_line("workload", workload, &mut p);
                if from == to {
                    p.push(format!("`to` equals `from` ({to}): nothing to change"));
                }
                if *to > policy.max_replicas {
                    p.push(format!(
                        "`to` {to} is above the limit of {} replicas",
                        policy.max_replicas
                    ));
                }
            }
            Action::RunCommand { program, args } => {
                one_line("program", program, &mut p);
                if policy.allowed(program).is_none() {
                    p.push(format!(
                        "program `{program}` is not on the allowlist ({})",
                        list(
                            &policy
                                .allowlist
                                .iter()
                                .map(|a| a.program.clone())
                                .collect::<Vec<_>>()
                        )
                    ));
                }
                if args.iter().any(|a| a.contains('\0')) {
                    p.push("an argument contains a NUL byte".into());
                }
            }
            Action::SetKernelParam { param, value } => {
                if !policy.kernel_params.iter().any(|k| k == param) {
                    p.push(format!(
                        "kernel parameter `{param}` is not one COMPASS may change ({})",
                        list(&policy.kernel_params)
                    ));
                }
                if value.is_empty() || value.contains(char::is_whitespace) || value.contains('\0') {
                    p.push("`value` must be one word".into());
                }
            }
        }
        if let Some(c) = &self.validate {
            if policy.allowed(&c.program).is_none() {
                p.push(format!(
                    "validation program `{}` is not on the allowlist",
                    c.program
                ));
            }
            if c.within_s == 0 || c.every_s == 0 || c.every_s > c.within_s {
                p.push("validation needs 0 < every_s <= within_s".into());
            }
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(Invalid {
                id: self.id.clone(),
                problems: p,
            })
        }
    }

    /// The command's risk and the rule behind it. `restart_needed` says whether a config
    /// key takes effect only after a restart (the IRIS pack's CPF table for CPF files).
    pub fn risk(&self, policy: &Policy, restart_needed: impl Fn(&str, &str, &str) -> bool) -> Risk {
        let r = |level, rule: &str| Risk {
            level,
            rule: rule.to_string(),
        };
        match &self.action {
            Action::EditConfig {
                file, section, key, ..
            } => {
                if restart_needed(file, section, key) {
                    r(
                        RiskLevel::High,
                        "config key read only at start-up: the change needs a restart",
                    )
                } else {
                    r(
                        RiskLevel::Medium,
                        "config key applied on a running instance",
                    )
                }
            }
            Action::RestartService {
                mode: RestartMode::Forced,
                ..
            } => r(RiskLevel::High, "forced restart drops in-flight work"),
            Action::RestartService {
                mode: RestartMode::Graceful,
                ..
            } => r(
                RiskLevel::Medium,
                "graceful restart: service unavailable while it starts",
            ),
            Action::ScaleWorkload { to: 0, .. } => {
                r(RiskLevel::High, "scaling to zero stops the workload")
            }
            Action::ScaleWorkload { from, to, .. } if to < from => {
                r(RiskLevel::Medium, "scaling down removes capacity")
            }
            Action::ScaleWorkload { .. } => r(RiskLevel::Low, "scaling up adds capacity"),
            Action::RunCommand { program, .. } => match policy.allowed(program) {
                Some(a) => Risk {
                    level: a.risk,
                    rule: format!("allowlist entry for `{}` says {}", a.program, a.risk),
                },
                None => r(RiskLevel::High, "program not on the allowlist"),
            },
            Action::SetKernelParam { .. } => r(
                RiskLevel::Medium,
                "kernel parameter changed at run time; the old value is restored on rollback",
            ),
        }
    }
}

impl Policy {
    fn allowed(&self, program: &str) -> Option<&Allowed> {
        self.allowlist.iter().find(|a| a.program == program)
    }

    /// Whether a human must approve: always for high risk; otherwise unless
    /// auto-remediation is on and the incident's (type, severity) is listed.
    pub fn needs_approval(&self, risk: &Risk, incident_type: &str, severity: &str) -> bool {
        if risk.level == RiskLevel::High || !self.auto_remediation {
            return true;
        }
        let m = |pat: &str, v: &str| pat == "*" || pat.eq_ignore_ascii_case(v);
        !self
            .auto_approve
            .iter()
            .any(|(t, s)| m(t, incident_type) && m(s, severity))
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none configured".into()
    } else {
        items.join(", ")
    }
}

/// Why a command cannot start now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("command {id} conflicts with {holder} on {resource}")]
pub struct Conflict {
    pub id: String,
    pub resource: String,
    pub holder: String,
}

/// The command queue: highest priority first, then arrival order; a command whose
/// resource is busy waits (or, through `start_now`, is rejected with the conflict named).
#[derive(Debug, Default)]
pub struct Queue {
    queued: Vec<(Priority, u64, Command)>,
    running: BTreeMap<String, String>,
    seq: u64,
}

impl Queue {
    pub fn submit(&mut self, cmd: Command) -> Result<(), String> {
        if self.queued.iter().any(|(_, _, c)| c.id == cmd.id)
            || self.running.values().any(|id| *id == cmd.id)
        {
            return Err(format!("command {} is already queued or running", cmd.id));
        }
        self.seq += 1;
        self.queued.push((cmd.priority, self.seq, cmd));
        Ok(())
    }

    /// Takes the next command whose resource is free, marking the resource busy.
    pub fn start_next(&mut self) -> Option<Command> {
        let idx = self
            .queued
            .iter()
            .enumerate()
            .filter(|(_, (_, _, c))| !self.running.contains_key(&c.action.resource()))
            .max_by(|(_, a), (_, b)| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(i, _)| i)?;
        let (_, _, cmd) = self.queued.remove(idx);
        self.running.insert(cmd.action.resource(), cmd.id.clone());
        Some(cmd)
    }

    /// Starts a command at once (no queueing), or names the command holding its resource.
    pub fn start_now(&mut self, cmd: &Command) -> Result<(), Conflict> {
        let resource = cmd.action.resource();
        if let Some(holder) = self.running.get(&resource) {
            return Err(Conflict {
                id: cmd.id.clone(),
                resource,
                holder: holder.clone(),
            });
        }
        self.running.insert(resource, cmd.id.clone());
        Ok(())
    }

    /// Frees the resource of a finished command.
    pub fn finish(&mut self, id: &str) {
        self.running.retain(|_, holder| holder != id);
    }

    pub fn len(&self) -> usize {
        self.queued.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            allowlist: vec![
                Allowed {
                    program: "/usr/bin/iris".into(),
                    risk: RiskLevel::Medium,
                },
                Allowed {
                    program: "/usr/bin/sysctl".into(),
                    risk: RiskLevel::High,
                },
            ],
            config_files: vec!["/iris/iris.cpf".into()],
            auto_remediation: true,
            auto_approve: vec![
                ("latency".into(), "warning".into()),
                ("*".into(), "info".into()),
            ],
            max_replicas: 20,
            kernel_params: vec!["vm.nr_hugepages".into()],
        }
    }

    fn cmd(id: &str, priority: Priority, action: Action) -> Command {
        Command {
            id: id.into(),
            incident: None,
            priority,
            action,
            reason: String::new(),
            validate: None,
        }
    }

    fn restart(svc: &str) -> Action {
        Action::RestartService {
            service: svc.into(),
            mode: RestartMode::Graceful,
        }
    }

    #[test]
    fn parses_json_and_names_unknown_fields_and_actions() {
        let ok = parse_command(
            r#"{"id":"c1","priority":"high","action":{"kind":"edit_config","file":"/iris/iris.cpf","section":"config","key":"gmheap","value":"75136"}}"#,
        )
        .unwrap();
        assert_eq!(ok.priority, Priority::High);
        assert_eq!(ok.action.resource(), "file:/iris/iris.cpf");
        let e = parse_command(r#"{"id":"c1","action":{"kind":"reboot_planet"}}"#).unwrap_err();
        assert!(e.contains("unknown variant `reboot_planet`"), "{e}");
        let e = parse_command(r#"{"id":"c1","colour":1,"action":{"kind":"restart_service","service":"a","mode":"forced"}}"#)
            .unwrap_err();
        assert!(e.contains("unknown field `colour`"), "{e}");
        let e = parse_command(
            r#"{"id":"c1","action":{"kind":"run_command","program":"/bin/sh","args":"-c rm"}}"#,
        )
        .unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
        let e = parse_command("{\"id\":").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn validation_lists_every_problem() {
        let p = policy();
        let c = cmd(
            "bad id!",
            Priority::Normal,
            Action::RunCommand {
                program: "/bin/sh".into(),
                args: vec!["-c".into()],
            },
        );
        let e = c.validate(&p).unwrap_err();
        assert_eq!(e.problems.len(), 2, "{e}");
        assert!(
            e.to_string()
                .contains("not on the allowlist (/usr/bin/iris, /usr/bin/sysctl)"),
            "{e}"
        );
        let c = cmd(
            "c2",
            Priority::Normal,
            Action::EditConfig {
                file: "/etc/passwd".into(),
                section: "config".into(),
                key: "k".into(),
                value: "a\nb".into(),
            },
        );
        let e = c.validate(&p).unwrap_err().to_string();
        assert!(e.contains("one line") && e.contains("/etc/passwd"), "{e}");
        let c = cmd(
            "c3",
            Priority::Normal,
            Action::ScaleWorkload {
                workload: "api".into(),
                from: 2,
                to: 50,
            },
        );
        assert!(
            c.validate(&p)
                .unwrap_err()
                .to_string()
                .contains("limit of 20")
        );
        assert!(
            cmd("c4", Priority::Low, restart("iris"))
                .validate(&p)
                .is_ok()
        );
    }

    #[test]
    fn risk_rules_and_approval() {
        let p = policy();
        let edit = |key: &str| {
            cmd(
                "e",
                Priority::Normal,
                Action::EditConfig {
                    file: "/iris/iris.cpf".into(),
                    section: "config".into(),
                    key: key.into(),
                    value: "1".into(),
                },
            )
        };
        let needs = |_: &str, _: &str, k: &str| k == "gmheap";
        let high = edit("gmheap").risk(&p, needs);
        assert_eq!(high.level, RiskLevel::High);
        assert!(high.rule.contains("restart"));
        assert_eq!(edit("console").risk(&p, needs).level, RiskLevel::Medium);
        let scale = |from, to| {
            cmd(
                "s",
                Priority::Normal,
                Action::ScaleWorkload {
                    workload: "w".into(),
                    from,
                    to,
                },
            )
            .risk(&p, needs)
            .level
        };
        assert_eq!(
            (scale(2, 4), scale(4, 2), scale(2, 0)),
            (RiskLevel::Low, RiskLevel::Medium, RiskLevel::High)
        );
        let forced = cmd(
            "f",
            Priority::Normal,
            Action::RestartService {
                service: "iris".into(),
                mode: RestartMode::Forced,
            },
        );
        assert_eq!(forced.risk(&p, needs).level, RiskLevel::High);
        let run = cmd(
            "r",
            Priority::Normal,
            Action::RunCommand {
                program: "/usr/bin/sysctl".into(),
                args: vec![],
            },
        );
        assert!(run.risk(&p, needs).rule.contains("allowlist entry"));

        // high risk always needs an approver, even where auto-approval applies
        let medium = edit("console").risk(&p, needs);
        assert!(!p.needs_approval(&medium, "latency", "warning"));
        assert!(!p.needs_approval(&medium, "anything", "info"));
        assert!(p.needs_approval(&medium, "latency", "critical"));
        assert!(p.needs_approval(&high, "latency", "warning"));
        let manual = Policy {
            auto_remediation: false,
            ..p.clone()
        };
        assert!(manual.needs_approval(&medium, "latency", "warning"));
    }

    #[test]
    fn queue_orders_by_priority_then_arrival_and_never_shares_a_resource() {
        let mut q = Queue::default();
        q.submit(cmd("a", Priority::Normal, restart("x"))).unwrap();
        q.submit(cmd("b", Priority::High, restart("x"))).unwrap();
        q.submit(cmd("c", Priority::High, restart("y"))).unwrap();
        q.submit(cmd("d", Priority::Low, restart("z"))).unwrap();
        assert!(
            q.submit(cmd("d", Priority::Low, restart("z"))).is_err(),
            "duplicate id"
        );
        assert_eq!(q.start_next().unwrap().id, "b");
        // `a` waits for x; `c` is next by priority, then `d`
        assert_eq!(q.start_next().unwrap().id, "c");
        assert_eq!(q.start_next().unwrap().id, "d");
        assert!(q.start_next().is_none(), "a waits while b holds service:x");
        let e = q
            .start_now(&cmd("e", Priority::Critical, restart("x")))
            .unwrap_err();
        assert_eq!((e.holder.as_str(), e.resource.as_str()), ("b", "service:x"));
        q.finish("b");
        assert_eq!(q.start_next().unwrap().id, "a");
        assert!(q.is_empty());
    }
}
