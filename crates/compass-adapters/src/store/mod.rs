//! What COMPASS keeps between runs.
//!
//! - [`SqlStore`] (`sql.rs`, `jobs.rs`): the service's store — incidents, alerts,
//!   investigation jobs with leases, progress, decisions, tokens, audit log and the LLM
//!   cost ledger — on SQLite or PostgreSQL.
//! - [`FileLedger`] (here): the command line's LLM cost ledger, one JSON object per
//!   model call appended to `<data dir>/llm-ledger.jsonl`, never rewritten. The daily
//!   budget reads it, so it holds across processes; `compass cost` reports from it.
//!
//! Durability: each entry is one `write` of one whole line to a file opened in append
//! mode, then `fsync`ed, so concurrent processes never interleave partial lines and a
//! crash loses at most the entry being written. A line that cannot be read (a torn
//! write after a crash, a hand edit) is skipped with a warning naming the file and line;
//! it never makes the rest unreadable.

mod jobs;
mod sql;

pub use sql::{Backend, SqlStore, redact_url};

use async_trait::async_trait;
use compass_core::TimeRange;
use compass_engine::llm::{CostLedger, LedgerEntry, LedgerError};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// A short stable hash of `text` (16 hex digits, 64-bit FNV-1a: the same on every
/// platform and release), for identities derived from content.
pub fn stable_hash(text: &str) -> String {
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{h:016x}")
}

/// The data directory: `$COMPASS_HOME`, else `$XDG_DATA_HOME/compass`, else
/// `~/.local/share/compass`, else `./.compass`.
pub fn data_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("COMPASS_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h);
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("compass");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/share/compass");
    }
    PathBuf::from(".compass")
}

/// An append-only JSON-lines cost ledger.
#[derive(Debug, Clone)]
pub struct FileLedger {
    path: PathBuf,
}

impl FileLedger {
    /// The ledger in the default data directory.
    pub fn default_path() -> PathBuf {
        data_dir().join("llm-ledger.jsonl")
    }

    /// A ledger at `path`; the file and its directory are created on the first entry.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> LedgerError {
        LedgerError(format!("{what} {}: {e}", self.path.display()))
    }

    fn append(&self, entry: &LedgerEntry) -> Result<(), LedgerError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| LedgerError(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut line =
            serde_json::to_string(entry).map_err(|e| self.err("cannot encode for", e))?;
        line.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| self.err("cannot open", e))?;
        f.write_all(line.as_bytes())
            .map_err(|e| self.err("cannot write", e))?;
        f.sync_data().map_err(|e| self.err("cannot sync", e))
    }

    /// Every readable entry, in file order, and one message per unreadable line.
    pub fn read_all(&self) -> Result<(Vec<LedgerEntry>, Vec<String>), LedgerError> {
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Vec::new(), Vec::new()));
            }
            Err(e) => return Err(self.err("cannot open", e)),
        };
        let mut entries = Vec::new();
        let mut problems = Vec::new();
        for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
            let line = line.map_err(|e| self.err("cannot read", e))?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<LedgerEntry>(&line) {
                Ok(e) => entries.push(e),
                Err(e) => problems.push(format!(
                    "{} line {}: skipped, not a ledger entry ({e})",
                    self.path.display(),
                    i + 1
                )),
            }
        }
        Ok((entries, problems))
    }
}

#[async_trait]
impl CostLedger for FileLedger {
    async fn record(&self, entry: &LedgerEntry) -> Result<(), LedgerError> {
        let this = self.clone();
        let entry = entry.clone();
        tokio::task::spawn_blocking(move || this.append(&entry))
            .await
            .map_err(|e| LedgerError(format!("ledger writer stopped: {e}")))?
    }

    async fn entries(&self, range: TimeRange) -> Result<Vec<LedgerEntry>, LedgerError> {
        let this = self.clone();
        let (mut entries, problems) = tokio::task::spawn_blocking(move || this.read_all())
            .await
            .map_err(|e| LedgerError(format!("ledger reader stopped: {e}")))??;
        for p in problems {
            tracing::warn!("{p}");
        }
        entries.retain(|e| range.contains(e.at));
        entries.sort_by_key(|e| e.at);
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use compass_engine::llm::CallOutcome;

    fn entry(at: i64, usd: f64) -> LedgerEntry {
        LedgerEntry {
            at,
            investigation_id: "inv-1".into(),
            agent: "summary".into(),
            provider: "openai".into(),
            model: "gpt-4o-mini".into(),
            prompt_tokens: 1200,
            completion_tokens: 80,
            usd,
            reported: true,
            outcome: CallOutcome::Ok,
        }
    }

    #[tokio::test]
    async fn entries_persist_filter_and_survive_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/ledger.jsonl");
        let l = FileLedger::new(&path);
        assert!(
            l.entries(TimeRange::new(0, i64::MAX))
                .await
                .unwrap()
                .is_empty()
        );
        l.record(&entry(2_000, 0.25)).await.unwrap();
        l.record(&entry(1_000, 0.5)).await.unwrap();
        // A crash mid-write leaves a torn line; later entries still count.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"at\": 3000, \"investig\n")
            .unwrap();
        l.record(&entry(4_000, 1.0)).await.unwrap();
        let reopened = FileLedger::new(&path);
        let all = reopened.entries(TimeRange::new(0, i64::MAX)).await.unwrap();
        assert_eq!(
            all.iter().map(|e| e.at).collect::<Vec<_>>(),
            [1_000, 2_000, 4_000]
        );
        assert_eq!(all[0], entry(1_000, 0.5));
        let (_, problems) = reopened.read_all().unwrap();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("line 3"), "{problems:?}");
        let spent = reopened
            .spent_usd(TimeRange::new(1_500, 5_000))
            .await
            .unwrap();
        assert!((spent - 1.25).abs() < 1e-12);
    }

    #[tokio::test]
    async fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let mut tasks = Vec::new();
        for w in 0..4 {
            let l = FileLedger::new(&path);
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    l.record(&entry(w * 1000 + i, 0.01)).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let (all, problems) = FileLedger::new(&path).read_all().unwrap();
        assert_eq!(all.len(), 100);
        assert!(problems.is_empty());
    }

    #[tokio::test]
    async fn an_unwritable_place_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "x").unwrap();
        let l = FileLedger::new(file.join("ledger.jsonl"));
        let e = l.record(&entry(1, 0.1)).await.unwrap_err();
        assert!(e.to_string().contains("plain-file"), "{e}");
    }
}
