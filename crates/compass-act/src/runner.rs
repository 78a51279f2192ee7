//! Carrying out a planned command: approval gate, backup, change, post-change
//! validation within a deadline, automatic rollback when it fails — every step in the
//! audit log before the next one starts.
//!
//! Services are driven through a control program called as `<program> <verb> <service>`
//! with the verbs `drain`, `stop`, `force`, `start` and `status` (`status` exits 0 and
//! prints `running` once the service is up) — a thin wrapper over `iris` or
//! `systemctl` in production, a simulated instance in tests.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::action::{Action, CheckSpec, Command, Invalid, Policy, RestartMode, Risk};
use crate::audit::{AuditLog, Entry};
use crate::executor::{ExecError, Executor, Outcome, command_line};
use crate::iris::cpf::{CpfError, CpfFile, restart_needed};

/// A check that must pass after the change: the program exits 0 within `within`,
/// tried every `every`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub program: String,
    pub args: Vec<String>,
    pub within: Duration,
    pub every: Duration,
}

impl From<&CheckSpec> for Check {
    fn from(c: &CheckSpec) -> Self {
        Check {
            program: c.program.clone(),
            args: c.args.clone(),
            within: Duration::from_secs(c.within_s),
            every: Duration::from_secs(c.every_s),
        }
    }
}

/// Who approved, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub command: Command,
    pub risk: Risk,
    pub needs_approval: bool,
    /// The exact change: a diff for a config edit, command lines otherwise.
    pub preview: String,
    /// The service restarted after a config edit whose key is read only at start-up.
    pub restart: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RunResult {
    Succeeded,
    /// Validation failed and the change was undone.
    RolledBack {
        reason: String,
    },
    /// The change failed and could not be undone (a restart cannot be), or the
    /// rollback itself failed: a human must look.
    Failed {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("command {0} needs an approval before it runs")]
    NotApproved(String),
    #[error("command {id}: {reason}")]
    Unsupported { id: String, reason: String },
    #[error(transparent)]
    Cpf(#[from] CpfError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("audit log {path}: {source}")]
    Audit {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where things are and how long steps may take.
#[derive(Debug, Clone)]
pub struct Settings {
    pub policy: Policy,
    pub backup_dir: PathBuf,
    /// Service control program (`<program> <verb> <service>`).
    pub control: Option<String>,
    /// Scaler program (`<program> <workload> <replicas>`).
    pub scaler: Option<String>,
    /// Kernel parameter program, called as `<program> -n <param>` (read) and
    /// `<program> -w <param>=<value>` (write): `sysctl`.
    pub sysctl: Option<String>,
    /// Which service reads each configuration file (restarted when a key needs it).
    pub config_services: BTreeMap<String, String>,
    pub step_timeout: Duration,
    /// How long a graceful restart waits after draining, before stopping.
    pub drain_wait: Duration,
    /// How long a started service may take to report `running`.
    pub startup_deadline: Duration,
}

#[derive(Debug, Clone)]
pub struct Runner {
    exec: Arc<dyn Executor>,
    audit: Arc<AuditLog>,
    s: Settings,
}

/// The control verbs that take a service down, before `start` and the `status` watch.
fn stop_verbs(mode: RestartMode) -> &'static [&'static str] {
    match mode {
        RestartMode::Graceful => &["drain", "stop"],
        RestartMode::Forced => &["force"],
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Runner {
    pub fn new(exec: Arc<dyn Executor>, audit: Arc<AuditLog>, settings: Settings) -> Self {
        Runner {
            exec,
            audit,
            s: settings,
        }
    }

    fn needs_restart(&self, file: &str, section: &str, key: &str) -> bool {
        // CPF files have the table; other files are assumed to be read at start-up
        if file.ends_with(".cpf") {
            restart_needed(section, key).needed()
        } else {
            true
        }
    }

    fn log(
        &self,
        cmd: &str,
        step: &str,
        actor: &str,
        detail: String,
        out: Option<&Outcome>,
        ok: bool,
    ) -> Result<Entry, ActError> {
        let e = Entry {
            ts: now_ms(),
            command: cmd.to_string(),
            step: step.to_string(),
            actor: actor.to_string(),
            detail,
            exit_code: out.and_then(|o| o.exit_code),
            output: out.map(|o| {
                let mut s = o.stdout.clone();
                if !o.stderr.is_empty() {
                    s.push_str(&o.stderr);
                }
                if o.timed_out {
                    s.push_str("[timed out]");
                }
                s
            }),
            duration_ms: out.map(|o| o.duration_ms),
            ok,
        };
        self.audit.append(&e).map_err(|source| ActError::Audit {
            path: self.audit.path().display().to_string(),
            source,
        })?;
        Ok(e)
    }

    /// Validates the command and shows exactly what it would do; nothing changes.
    pub fn plan(
        &self,
        command: Command,
        incident_type: &str,
        severity: &str,
    ) -> Result<Plan, ActError> {
        command.validate(&self.s.policy)?;
        let risk = command.risk(&self.s.policy, |f, s, k| self.needs_restart(f, s, k));
        let needs_approval = self.s.policy.needs_approval(&risk, incident_type, severity);
        let mut restart = None;
        let preview = match &command.action {
            Action::EditConfig {
                file,
                section,
                key,
                value,
            } => {
                let edit = [(section.clone(), key.clone(), value.clone())];
                let (_, _, diff) = CpfFile::new(file).plan(&edit)?;
                if self.needs_restart(file, section, key) {
                    restart = self.s.config_services.get(file).cloned();
                }
                match &restart {
                    Some(svc) => format!("{diff}then a graceful restart of {svc}\n"),
                    None => diff,
                }
            }
            Action::RestartService { service, mode } => {
                let ctl = self.control(&command.id)?;
                stop_verbs(*mode)
                    .iter()
                    .chain(&["start", "status"])
                    .map(|v| command_line(&ctl, &[v.to_string(), service.clone()]))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            Action::ScaleWorkload { workload, to, .. } => {
                let sc = self.scaler(&command.id)?;
                command_line(&sc, &[workload.clone(), to.to_string()])
            }
            Action::RunCommand { program, args } => command_line(program, args),
            Action::SetKernelParam { param, value } => {
                let sc = self.sysctl(&command.id)?;
                format!(
                    "{}   (the current value, kept for rollback)\n{}",
                    command_line(&sc, &["-n".into(), param.clone()]),
                    command_line(&sc, &["-w".into(), format!("{param}={value}")])
                )
            }
        };
        self.log(
            &command.id,
            "planned",
            "compass",
            format!(
                "{} ({} risk: {}){}",
                command.action.kind(),
                risk.level,
                risk.rule,
                if needs_approval {
                    "; needs approval"
                } else {
                    ""
                }
            ),
            None,
            true,
        )?;
        Ok(Plan {
            command,
            risk,
            needs_approval,
            preview,
            restart,
        })
    }

    /// A configured program, or the error naming what is missing.
    fn program(id: &str, program: &Option<String>, what: &str) -> Result<String, ActError> {
        program.clone().ok_or_else(|| ActError::Unsupported {
            id: id.to_string(),
            reason: format!("no {what} program is configured"),
        })
    }

    fn control(&self, id: &str) -> Result<String, ActError> {
        Self::program(id, &self.s.control, "service control")
    }

    fn scaler(&self, id: &str) -> Result<String, ActError> {
        Self::program(id, &self.s.scaler, "scaler")
    }

    fn sysctl(&self, id: &str) -> Result<String, ActError> {
        Self::program(id, &self.s.sysctl, "sysctl")
    }

    async fn exec_step(
        &self,
        id: &str,
        step: &str,
        program: &str,
        args: &[String],
    ) -> Result<Outcome, ActError> {
        let out = self.exec.run(program, args, self.s.step_timeout).await?;
        self.log(
            id,
            step,
            "compass",
            out.command_line.clone(),
            Some(&out),
            out.success(),
        )?;
        Ok(out)
    }

    /// Restarts `svc` and watches it start; `Err(reason)` when a step fails or the
    /// service does not report running within the start-up deadline.
    async fn restart(
        &self,
        id: &str,
        svc: &str,
        mode: RestartMode,
    ) -> Result<Result<(), String>, ActError> {
        let ctl = self.control(id)?;
        let a = |v: &str| [v.to_string(), svc.to_string()];
        for (i, verb) in stop_verbs(mode).iter().enumerate() {
            let out = self.exec_step(id, "change", &ctl, &a(verb)).await?;
            if !out.success() {
                return Ok(Err(format!("`{}` failed", out.command_line)));
            }
            if i == 0 && mode == RestartMode::Graceful {
                tokio::time::sleep(self.s.drain_wait).await;
            }
        }
        let out = self.exec_step(id, "change", &ctl, &a("start")).await?;
        if !out.success() {
            return Ok(Err(format!("`{}` failed", out.command_line)));
        }
        let deadline = Instant::now() + self.s.startup_deadline;
        loop {
            let out = self
                .exec
                .run(&ctl, &a("status"), self.s.step_timeout)
                .await?;
            let dry = self.exec.dry_run();
            if dry || (out.success() && out.stdout.contains("running")) {
                self.log(
                    id,
                    "validation",
                    "compass",
                    if dry {
                        format!("dry run: {} (taken as running)", out.command_line)
                    } else {
                        format!("{svc} reports running")
                    },
                    Some(&out),
                    true,
                )?;
                return Ok(Ok(()));
            }
            if Instant::now() >= deadline {
                self.log(
                    id,
                    "validation",
                    "compass",
                    format!(
                        "{svc} did not report running within {:?}",
                        self.s.startup_deadline
                    ),
                    Some(&out),
                    false,
                )?;
                return Ok(Err(format!(
                    "{svc} did not report running within {:?}",
                    self.s.startup_deadline
                )));
            }
            tokio::time::sleep(Duration::from_millis(200).min(self.s.startup_deadline)).await;
        }
    }

    async fn validate(
        &self,
        id: &str,
        check: Option<&Check>,
    ) -> Result<Result<(), String>, ActError> {
        let Some(c) = check else {
            return Ok(Ok(()));
        };
        let deadline = Instant::now() + c.within;
        loop {
            let out = self
                .exec
                .run(&c.program, &c.args, self.s.step_timeout.min(c.within))
                .await?;
            if out.success() || self.exec.dry_run() {
                self.log(
                    id,
                    "validation",
                    "compass",
                    out.command_line.clone(),
                    Some(&out),
                    true,
                )?;
                return Ok(Ok(()));
            }
            if Instant::now() + c.every >= deadline {
                self.log(
                    id,
                    "validation",
                    "compass",
                    format!("{} did not pass within {:?}", out.command_line, c.within),
                    Some(&out),
                    false,
                )?;
                return Ok(Err(format!(
                    "validation `{}` did not pass within {:?}",
                    out.command_line, c.within
                )));
            }
            tokio::time::sleep(c.every).await;
        }
    }

    /// Runs a plan: refused without an approval when it needs one; otherwise backup,
    /// change, validation, and rollback when validation fails.
    pub async fn run(
        &self,
        plan: &Plan,
        approval: Option<&Approval>,
        check: Option<&Check>,
    ) -> Result<RunResult, ActError> {
        let id = plan.command.id.as_str();
        match approval {
            Some(a) => {
                self.log(
                    id,
                    "authorized",
                    &a.by,
                    format!("{} risk", plan.risk.level),
                    None,
                    true,
                )?;
            }
            None if plan.needs_approval => {
                self.log(id, "refused", "compass", "no approval".into(), None, false)?;
                return Err(ActError::NotApproved(id.to_string()));
            }
            None => {
                self.log(
                    id,
                    "authorized",
                    "compass",
                    "auto-remediation policy".into(),
                    None,
                    true,
                )?;
            }
        }
        let result = match &plan.command.action {
            Action::EditConfig {
                file,
                section,
                key,
                value,
            } => {
                self.run_edit(id, plan, file, (section, key, value), check)
                    .await?
            }
            Action::RestartService { service, mode } => {
                match self.restart(id, service, *mode).await? {
                    Ok(()) => match self.validate(id, check).await? {
                        Ok(()) => RunResult::Succeeded,
                        Err(reason) => RunResult::Failed {
                            reason: format!("{reason}; a restart cannot be rolled back"),
                        },
                    },
                    Err(reason) => RunResult::Failed { reason },
                }
            }
            Action::ScaleWorkload { workload, from, to } => {
                let sc = self.scaler(id)?;
                let out = self
                    .exec_step(id, "change", &sc, &[workload.clone(), to.to_string()])
                    .await?;
                let failed = if out.success() {
                    self.validate(id, check).await?.err()
                } else {
                    Some(format!("`{}` failed", out.command_line))
                };
                match failed {
                    None => RunResult::Succeeded,
                    Some(reason) => {
                        let back = self
                            .exec_step(id, "rollback", &sc, &[workload.clone(), from.to_string()])
                            .await?;
                        if back.success() {
                            RunResult::RolledBack { reason }
                        } else {
                            RunResult::Failed {
                                reason: format!("{reason}; scaling back to {from} failed too"),
                            }
                        }
                    }
                }
            }
            Action::RunCommand { program, args } => {
                let out = self.exec_step(id, "change", program, args).await?;
                if !out.success() {
                    RunResult::Failed {
                        reason: format!(
                            "`{}` exited with {:?}{}",
                            out.command_line,
                            out.exit_code,
                            if out.timed_out { " (timed out)" } else { "" }
                        ),
                    }
                } else {
                    match self.validate(id, check).await? {
                        Ok(()) => RunResult::Succeeded,
                        Err(reason) => RunResult::Failed {
                            reason: format!("{reason}; a command has no automatic rollback"),
                        },
                    }
                }
            }
            Action::SetKernelParam { param, value } => {
                self.run_kernel(id, param, value, check).await?
            }
        };
        let (step, ok, detail) = match &result {
            RunResult::Succeeded => ("done", true, "succeeded".to_string()),
            RunResult::RolledBack { reason } => ("done", false, format!("rolled back: {reason}")),
            RunResult::Failed { reason } => ("failed", false, reason.clone()),
        };
        self.log(id, step, "compass", detail, None, ok)?;
        Ok(result)
    }

    async fn run_edit(
        &self,
        id: &str,
        plan: &Plan,
        file: &str,
        (section, key, value): (&str, &str, &str),
        check: Option<&Check>,
    ) -> Result<RunResult, ActError> {
        let cpf = CpfFile::new(file);
        if self.exec.dry_run() {
            let detail = format!(
                "dry run: would back up {file} to {} and set [{section}] {key}={value}",
                self.s.backup_dir.display()
            );
            self.log(id, "change", "compass", detail, None, true)?;
            if let Some(svc) = &plan.restart
                && let Err(reason) = self.restart(id, svc, RestartMode::Graceful).await?
            {
                return Ok(RunResult::Failed { reason });
            }
            self.validate(id, check).await?.ok();
            return Ok(RunResult::Succeeded);
        }
        let stamp = format!("{}-{id}", now_ms());
        let backup = cpf.backup(&self.s.backup_dir, &stamp)?;
        self.log(
            id,
            "backup",
            "compass",
            backup.display().to_string(),
            None,
            true,
        )?;
        let edit = [(section.to_string(), key.to_string(), value.to_string())];
        cpf.change(&edit)?;
        self.log(
            id,
            "change",
            "compass",
            format!("[{section}] {key}={value} in {file}"),
            None,
            true,
        )?;
        let mut failure = None;
        if let Some(svc) = &plan.restart
            && let Err(reason) = self.restart(id, svc, RestartMode::Graceful).await?
        {
            failure = Some(reason);
        }
        if failure.is_none() {
            failure = self.validate(id, check).await?.err();
        }
        let Some(reason) = failure else {
            return Ok(RunResult::Succeeded);
        };
        cpf.restore(&backup)?;
        self.log(
            id,
            "rollback",
            "compass",
            format!("restored {file} from {}", backup.display()),
            None,
            true,
        )?;
        if let Some(svc) = &plan.restart
            && let Err(again) = self.restart(id, svc, RestartMode::Graceful).await?
        {
            return Ok(RunResult::Failed {
                reason: format!("{reason}; the configuration was restored but {again}"),
            });
        }
        Ok(RunResult::RolledBack { reason })
    }

    /// Reads the current value (the backup), writes the new one, reads it back, runs
    /// the check; writes the old value back when any of that fails.
    async fn run_kernel(
        &self,
        id: &str,
        param: &str,
        value: &str,
        check: Option<&Check>,
    ) -> Result<RunResult, ActError> {
        let sc = self.sysctl(id)?;
        let read = [String::from("-n"), param.to_string()];
        let before = self.exec_step(id, "backup", &sc, &read).await?;
        if !before.success() {
            return Ok(RunResult::Failed {
                reason: format!("cannot read {param}: `{}` failed", before.command_line),
            });
        }
        let old = before.stdout.trim().to_string();
        let write = |v: &str| [String::from("-w"), format!("{param}={v}")];
        let out = self.exec_step(id, "change", &sc, &write(value)).await?;
        let mut failure = (!out.success()).then(|| format!("`{}` failed", out.command_line));
        if failure.is_none() {
            let now = self.exec.run(&sc, &read, self.s.step_timeout).await?;
            let got = now.stdout.trim();
            let ok = self.exec.dry_run() || (now.success() && got == value);
            self.log(
                id,
                "validation",
                "compass",
                format!("{param} reads `{got}`, wanted `{value}`"),
                Some(&now),
                ok,
            )?;
            if !ok {
                failure = Some(format!(
                    "{param} reads `{got}` after the change, not `{value}`"
                ));
            }
        }
        if failure.is_none() {
            failure = self.validate(id, check).await?.err();
        }
        let Some(reason) = failure else {
            return Ok(RunResult::Succeeded);
        };
        let back = self.exec_step(id, "rollback", &sc, &write(&old)).await?;
        Ok(if back.success() {
            RunResult::RolledBack { reason }
        } else {
            RunResult::Failed {
                reason: format!("{reason}; writing back {param}={old} failed too"),
            }
        })
    }

    /// Undoes a command that ran (or was interrupted) at a human's request: the CPF
    /// backup restored (and the restart repeated when the key needs one), the kernel
    /// parameter's old value written back, the workload scaled back. A restart or a
    /// plain command cannot be undone and is refused.
    pub async fn rollback(&self, plan: &Plan, by: &str) -> Result<RunResult, ActError> {
        let id = plan.command.id.as_str();
        let unsupported = |reason: String| ActError::Unsupported {
            id: id.to_string(),
            reason,
        };
        let entries = self
            .audit
            .read(Some(id))
            .map_err(|source| ActError::Audit {
                path: self.audit.path().display().to_string(),
                source,
            })?;
        let backup = entries.iter().rev().find(|e| e.step == "backup" && e.ok);
        let no_backup = || {
            unsupported(
                "no backup is recorded for it: the change never started, so there is                  nothing to undo"
                    .into(),
            )
        };
        match &plan.command.action {
            Action::RestartService { .. } | Action::RunCommand { .. } => {
                return Err(unsupported(format!(
                    "a {} cannot be rolled back",
                    plan.command.action.kind()
                )));
            }
            Action::EditConfig { .. } | Action::SetKernelParam { .. } if backup.is_none() => {
                return Err(no_backup());
            }
            _ => {}
        }
        self.log(id, "rollback", by, "requested".into(), None, true)?;
        let why = format!("rolled back at the request of {by}");
        let result = match &plan.command.action {
            Action::EditConfig { file, .. } => {
                let path = PathBuf::from(&backup.ok_or_else(no_backup)?.detail);
                CpfFile::new(file).restore(&path)?;
                self.log(
                    id,
                    "rollback",
                    "compass",
                    format!("restored {file} from {}", path.display()),
                    None,
                    true,
                )?;
                match &plan.restart {
                    Some(svc) => match self.restart(id, svc, RestartMode::Graceful).await? {
                        Ok(()) => RunResult::RolledBack { reason: why },
                        Err(again) => RunResult::Failed {
                            reason: format!("the configuration was restored but {again}"),
                        },
                    },
                    None => RunResult::RolledBack { reason: why },
                }
            }
            Action::SetKernelParam { param, .. } => {
                let old = backup
                    .and_then(|b| b.output.clone())
                    .map(|o| o.trim().to_string())
                    .filter(|o| !o.is_empty())
                    .ok_or_else(|| {
                        unsupported(format!("the old value of {param} was not recorded"))
                    })?;
                let sc = self.sysctl(id)?;
                let out = self
                    .exec_step(
                        id,
                        "rollback",
                        &sc,
                        &["-w".into(), format!("{param}={old}")],
                    )
                    .await?;
                if out.success() {
                    RunResult::RolledBack { reason: why }
                } else {
                    RunResult::Failed {
                        reason: format!("writing back {param}={old} failed"),
                    }
                }
            }
            Action::ScaleWorkload { workload, from, .. } => {
                let sc = self.scaler(id)?;
                let out = self
                    .exec_step(id, "rollback", &sc, &[workload.clone(), from.to_string()])
                    .await?;
                if out.success() {
                    RunResult::RolledBack { reason: why }
                } else {
                    RunResult::Failed {
                        reason: format!("scaling {workload} back to {from} failed"),
                    }
                }
            }
            Action::RestartService { .. } | Action::RunCommand { .. } => {
                unreachable!("refused above")
            }
        };
        let (step, ok, detail) = match &result {
            RunResult::Failed { reason } => ("failed", false, reason.clone()),
            RunResult::RolledBack { reason } => ("done", true, reason.clone()),
            RunResult::Succeeded => ("done", true, String::new()),
        };
        self.log(id, step, "compass", detail, None, ok)?;
        Ok(result)
    }
}
