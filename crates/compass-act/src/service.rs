//! The remediation desk behind `compass act` and the `/api/v1/actions` endpoints: each
//! command's lifecycle (planned → approved → running → succeeded, rolled back or
//! failed) kept as one JSON file per command in the state directory (temp file, then
//! rename), the audit log beside it, and a lock file per resource so that two commands
//! touching one resource never run at once, from this process or another.
//!
//! ```text
//! <state_dir>/commands/<id>.json   the record
//! <state_dir>/locks/<resource>.lock  the command running on a resource
//! <state_dir>/audit.jsonl           every step
//! <state_dir>/backups/              CPF backups (unless configured elsewhere)
//! ```

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::action::{Command, Conflict, Queue};
use crate::audit::{AuditLog, Entry};
use crate::executor::{DryRunExecutor, Executor};
use crate::runner::{ActError, Approval, Check, Plan, RunResult, Runner, Settings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Planned,
    Approved,
    /// Started and not finished: still running, or interrupted by a crash (the audit
    /// log says how far it got; `rollback` undoes it).
    Running,
    Succeeded,
    RolledBack,
    Failed,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Planned => "planned",
            Status::Approved => "approved",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::RolledBack => "rolled_back",
            Status::Failed => "failed",
        })
    }
}

/// One command and where it is in its lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub plan: Plan,
    pub incident_type: String,
    pub severity: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<RunResult>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl Record {
    pub fn id(&self) -> &str {
        &self.plan.command.id
    }

    /// Whether `run` would start it now (approved, or needing no approval).
    pub fn ready(&self) -> bool {
        self.status == Status::Approved
            || (self.status == Status::Planned && !self.plan.needs_approval)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error(transparent)]
    Act(#[from] ActError),
    #[error("no command `{0}` is planned (see `compass act list`)")]
    NotFound(String),
    #[error("command {id} already exists ({status}); give the new command another id")]
    Exists { id: String, status: Status },
    #[error("command {id} is {status}: it can be {action} only when {want}")]
    WrongState {
        id: String,
        status: Status,
        action: &'static str,
        want: &'static str,
    },
    #[error("{conflict}; it waits until {holder} finishes (lock file {lock})", holder = conflict.holder)]
    Busy { conflict: Conflict, lock: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a command record: {reason}")]
    Corrupt { path: String, reason: String },
}

fn io(path: &Path, source: std::io::Error) -> DeskError {
    DeskError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A run that passed its checks and holds its resource's lock.
#[derive(Debug)]
pub struct Started {
    pub record: Record,
    lock: PathBuf,
}

/// The desk: records, locks, the audit log and the runner that carries commands out.
#[derive(Debug, Clone)]
pub struct Desk {
    dir: PathBuf,
    audit: Arc<AuditLog>,
    exec: Arc<dyn Executor>,
    settings: Settings,
    /// Serialises read-modify-write of records within this process.
    guard: Arc<tokio::sync::Mutex<()>>,
}

impl Desk {
    /// The desk over a state directory; nothing is created until the first command is
    /// planned (so an unused desk leaves no trace).
    pub fn open(
        dir: impl Into<PathBuf>,
        settings: Settings,
        exec: Arc<dyn Executor>,
    ) -> Result<Desk, DeskError> {
        let dir = dir.into();
        let audit_path = dir.join("audit.jsonl");
        let audit = Arc::new(AuditLog::open(&audit_path).map_err(|e| io(&audit_path, e))?);
        Ok(Desk {
            dir,
            audit,
            exec,
            settings,
            guard: Arc::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn runner(&self) -> Runner {
        Runner::new(self.exec.clone(), self.audit.clone(), self.settings.clone())
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.dir.join("commands").join(format!("{id}.json"))
    }

    fn save(&self, r: &Record) -> Result<(), DeskError> {
        let path = self.record_path(r.id());
        let d = self.dir.join("commands");
        std::fs::create_dir_all(&d).map_err(|e| io(&d, e))?;
        let tmp = path.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(r).expect("a record serializes");
        let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
        f.write_all(&body).map_err(|e| io(&tmp, e))?;
        f.sync_all().map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))
    }

    fn load(&self, path: &Path) -> Result<Record, DeskError> {
        let text = std::fs::read(path).map_err(|e| io(path, e))?;
        serde_json::from_slice(&text).map_err(|e| DeskError::Corrupt {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// One command's record.
    pub fn get(&self, id: &str) -> Result<Record, DeskError> {
        // ids are validated at planning; anything else cannot name a record
        let safe = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && !id.starts_with('.');
        let path = self.record_path(id);
        if !safe || !path.exists() {
            return Err(DeskError::NotFound(id.to_string()));
        }
        self.load(&path)
    }

    /// Every record, oldest first.
    pub fn list(&self) -> Result<Vec<Record>, DeskError> {
        let d = self.dir.join("commands");
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io(&d, e)),
        };
        for e in entries {
            let p = e.map_err(|e| io(&d, e))?.path();
            if p.extension().is_some_and(|x| x == "json") {
                out.push(self.load(&p)?);
            }
        }
        out.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.id().cmp(b.id())));
        Ok(out)
    }

    /// Audit entries, of one command or all.
    pub fn log(&self, id: Option<&str>) -> Result<Vec<Entry>, DeskError> {
        self.audit.read(id).map_err(|e| io(self.audit.path(), e))
    }

    /// Validates and plans a command and keeps it for approval; nothing changes.
    pub async fn plan(
        &self,
        command: Command,
        incident_type: &str,
        severity: &str,
    ) -> Result<Record, DeskError> {
        if !["critical", "warning", "info"].contains(&severity) {
            return Err(DeskError::Act(ActError::Invalid(crate::action::Invalid {
                id: command.id,
                problems: vec![format!(
                    "severity `{severity}`: use critical, warning or info"
                )],
            })));
        }
        let _g = self.guard.lock().await;
        if let Ok(existing) = self.get(&command.id) {
            return Err(DeskError::Exists {
                id: command.id,
                status: existing.status,
            });
        }
        let plan = self.runner().plan(command, incident_type, severity)?;
        let now = now_ms();
        let r = Record {
            plan,
            incident_type: incident_type.to_string(),
            severity: severity.to_string(),
            status: Status::Planned,
            approved_by: None,
            result: None,
            created_ms: now,
            updated_ms: now,
        };
        self.save(&r)?;
        Ok(r)
    }

    /// Records a human's approval of a planned command.
    pub async fn approve(&self, id: &str, by: &str) -> Result<Record, DeskError> {
        let _g = self.guard.lock().await;
        let mut r = self.get(id)?;
        if r.status != Status::Planned {
            return Err(DeskError::WrongState {
                id: id.to_string(),
                status: r.status,
                action: "approved",
                want: "it is planned",
            });
        }
        self.note(
            id,
            "approved",
            by,
            format!("{} risk: {}", r.plan.risk.level, r.plan.risk.rule),
        )?;
        r.status = Status::Approved;
        r.approved_by = Some(by.to_string());
        r.updated_ms = now_ms();
        self.save(&r)?;
        Ok(r)
    }

    /// An audit entry for a human's step.
    fn note(&self, id: &str, step: &str, actor: &str, detail: String) -> Result<(), DeskError> {
        let e = Entry {
            ts: now_ms(),
            command: id.to_string(),
            step: step.to_string(),
            actor: actor.to_string(),
            detail,
            exit_code: None,
            output: None,
            duration_ms: None,
            ok: true,
        };
        self.audit.append(&e).map_err(|e| io(self.audit.path(), e))
    }

    fn lock_path(&self, resource: &str) -> PathBuf {
        let name: String = resource
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join("locks").join(format!("{name}.lock"))
    }

    /// Takes the resource's lock file, or names the command holding it.
    fn lock(&self, cmd: &Command) -> Result<PathBuf, DeskError> {
        let resource = cmd.action.resource();
        let path = self.lock_path(&resource);
        let d = self.dir.join("locks");
        std::fs::create_dir_all(&d).map_err(|e| io(&d, e))?;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(cmd.id.as_bytes()).map_err(|e| io(&path, e))?;
                Ok(path)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                Err(DeskError::Busy {
                    conflict: Conflict {
                        id: cmd.id.clone(),
                        resource,
                        holder: holder.trim().to_string(),
                    },
                    lock: path.display().to_string(),
                })
            }
            Err(e) => Err(io(&path, e)),
        }
    }

    /// Runs an approved command (or one that needs no approval): backup, change,
    /// validation, rollback on failure. The record ends succeeded, rolled back or
    /// failed; an error of the runner itself (the audit log cannot be written, a
    /// program cannot start) leaves it failed with that error.
    pub async fn run(&self, id: &str, actor: &str) -> Result<Record, DeskError> {
        let started = self.start(id, actor).await?;
        self.complete(started).await
    }

    /// The first half of [`Desk::run`]: the checks (approval, state, the resource's
    /// lock) and the record marked running. The API answers after this and completes
    /// in the background.
    pub async fn start(&self, id: &str, actor: &str) -> Result<Started, DeskError> {
        let _g = self.guard.lock().await;
        let mut r = self.get(id)?;
        if !r.ready() {
            self.note(
                id,
                "refused",
                actor,
                format!("run requested while {}", r.status),
            )?;
            return Err(match r.status {
                Status::Planned => DeskError::Act(ActError::NotApproved(id.to_string())),
                status => DeskError::WrongState {
                    id: id.to_string(),
                    status,
                    action: "run",
                    want: "it is approved (or needs no approval)",
                },
            });
        }
        let lock = self.lock(&r.plan.command)?;
        let marked = self
            .note(id, "started", actor, "run requested".into())
            .and_then(|()| {
                r.status = Status::Running;
                r.updated_ms = now_ms();
                self.save(&r)
            });
        if let Err(e) = marked {
            let _ = std::fs::remove_file(&lock);
            return Err(e);
        }
        Ok(Started { record: r, lock })
    }

    /// The second half of [`Desk::run`]: carries the command out and records the end.
    pub async fn complete(&self, started: Started) -> Result<Record, DeskError> {
        let Started {
            record: mut r,
            lock,
        } = started;
        let approval = r.approved_by.clone().map(|by| Approval { by });
        let check = r.plan.command.validate.as_ref().map(Check::from);
        let outcome = self
            .runner()
            .run(&r.plan, approval.as_ref(), check.as_ref())
            .await;
        let _ = std::fs::remove_file(&lock);
        let _g = self.guard.lock().await;
        let (status, result, err) = match outcome {
            Ok(res) => (status_of(&res), Some(res), None),
            Err(e) => (
                Status::Failed,
                Some(RunResult::Failed {
                    reason: e.to_string(),
                }),
                Some(e),
            ),
        };
        r.status = status;
        r.result = result;
        r.updated_ms = now_ms();
        self.save(&r)?;
        match err {
            Some(e) => Err(e.into()),
            None => Ok(r),
        }
    }

    /// Runs a command through the dry-run executor: the audit log gets the steps and
    /// the command lines, nothing runs and no file changes; the record is unchanged.
    pub async fn dry_run(&self, id: &str) -> Result<(RunResult, Vec<String>), DeskError> {
        let r = self.get(id)?;
        let dry = Arc::new(DryRunExecutor::default());
        // the rehearsal's own steps go to a scratch log, not the audit log: nothing ran
        let scratch_path = self.dir.join("dry-run.jsonl");
        match std::fs::remove_file(&scratch_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&scratch_path, e)),
        }
        let scratch = Arc::new(AuditLog::open(&scratch_path).map_err(|e| io(&scratch_path, e))?);
        let runner = Runner::new(dry.clone(), scratch, self.settings.clone());
        let approval = Approval {
            by: r.approved_by.clone().unwrap_or_else(|| "dry-run".into()),
        };
        let check = r.plan.command.validate.as_ref().map(Check::from);
        let res = runner.run(&r.plan, Some(&approval), check.as_ref()).await?;
        let ran = dry.ran();
        self.note(
            id,
            "dry_run",
            &approval.by,
            format!(
                "{} step(s) shown, nothing ran: {}",
                ran.len(),
                ran.join("; ")
            ),
        )?;
        Ok((res, ran))
    }

    /// Undoes a command that ran, failed or was interrupted, at `by`'s request.
    pub async fn rollback(&self, id: &str, by: &str) -> Result<Record, DeskError> {
        let mut r = self.get(id)?;
        if !matches!(
            r.status,
            Status::Succeeded | Status::Running | Status::Failed
        ) {
            return Err(DeskError::WrongState {
                id: id.to_string(),
                status: r.status,
                action: "rolled back",
                want: "it succeeded, failed or was interrupted",
            });
        }
        let lock = self.lock(&r.plan.command);
        // an interrupted run left its lock behind: the rollback takes it over
        let lock = match lock {
            Ok(p) => p,
            Err(DeskError::Busy { conflict, .. }) if conflict.holder == id => {
                self.lock_path(&conflict.resource)
            }
            Err(e) => return Err(e),
        };
        let res = self.runner().rollback(&r.plan, by).await;
        let _ = std::fs::remove_file(&lock);
        let res = res?;
        let _g = self.guard.lock().await;
        r.status = status_of(&res);
        r.result = Some(res);
        r.updated_ms = now_ms();
        self.save(&r)?;
        Ok(r)
    }

    /// Runs every ready command, highest priority first; commands on different
    /// resources run at once, commands on one resource one after the other.
    pub async fn run_ready(&self, actor: &str) -> Result<Vec<Record>, DeskError> {
        let mut queue = Queue::default();
        for r in self.list()?.into_iter().filter(Record::ready) {
            queue.submit(r.plan.command).expect("record ids are unique");
        }
        let mut running = tokio::task::JoinSet::new();
        let mut done = Vec::new();
        loop {
            while let Some(cmd) = queue.start_next() {
                let desk = self.clone();
                let actor = actor.to_string();
                running.spawn(async move {
                    let res = desk.run(&cmd.id, &actor).await;
                    (cmd.id, res)
                });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (id, res) = joined.expect("a run task does not panic");
            queue.finish(&id);
            // a runner error leaves the record failed with it: report the record
            done.push(match res {
                Err(DeskError::Act(_)) => self.get(&id)?,
                other => other?,
            });
        }
        Ok(done)
    }
}

fn status_of(r: &RunResult) -> Status {
    match r {
        RunResult::Succeeded => Status::Succeeded,
        RunResult::RolledBack { .. } => Status::RolledBack,
        RunResult::Failed { .. } => Status::Failed,
    }
}
