//! The append-only audit log of the Act phase: one JSON line per step (planned,
//! approved, backup, change, validation, rollback, …), synced to disk before the next
//! step starts. A torn last line (a crash mid-write) is skipped when reading.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Epoch milliseconds (UTC).
    pub ts: i64,
    pub command: String,
    /// `planned`, `approved`, `backup`, `change`, `validation`, `rollback`, `done`, `failed`.
    pub step: String,
    /// Who: the approver, or `compass` for steps COMPASS took itself.
    pub actor: String,
    /// What ran or changed (a command line, a diff, a backup path).
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    pub ok: bool,
}

#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    lock: Mutex<()>,
}

impl AuditLog {
    /// The log at `path`; the file and its directory are created by the first append.
    pub fn open(path: impl Into<PathBuf>) -> std::io::Result<Self> {
        let path = path.into();
        Ok(AuditLog {
            path,
            lock: Mutex::new(()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry and syncs it.
    pub fn append(&self, entry: &Entry) -> std::io::Result<()> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(&line)?;
        f.sync_data()
    }

    /// Every entry, oldest first (optionally of one command); torn lines are skipped.
    pub fn read(&self, command: Option<&str>) -> std::io::Result<Vec<Entry>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
            .filter(|e| command.is_none_or(|c| e.command == c))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_survive_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path().join("act/audit.jsonl")).unwrap();
        let e = |c: &str, step: &str| Entry {
            ts: 1,
            command: c.into(),
            step: step.into(),
            actor: "alice".into(),
            detail: String::new(),
            exit_code: None,
            output: None,
            duration_ms: None,
            ok: true,
        };
        log.append(&e("a", "planned")).unwrap();
        // a crash mid-write leaves half a line (the next append starts a new one)
        std::fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .unwrap()
            .write_all(b"{\"ts\":2,\"comm\n")
            .unwrap();
        log.append(&e("b", "planned")).unwrap();
        log.append(&e("a", "done")).unwrap();
        assert_eq!(log.read(None).unwrap().len(), 3);
        let a: Vec<_> = log
            .read(Some("a"))
            .unwrap()
            .into_iter()
            .map(|e| e.step)
            .collect();
        assert_eq!(a, ["planned", "done"]);
    }
}
