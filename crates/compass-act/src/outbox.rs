//! A durable retry queue for messages COMPASS sends to an external HTTP endpoint (the
//! drill generator's events). Each message is a file in the outbox directory, written
//! to a temp file, synced and renamed before `enqueue` returns, and deleted only after
//! the endpoint answered 2xx: a dead endpoint, a crash or a restart loses nothing.
//! Delivery is oldest first and stops at the first failure (the order is kept and a
//! down endpoint is not hammered); each try has its own timeout.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use reqwest::Client;
use serde::{Deserialize, Serialize};

/// One queued message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    pub payload: serde_json::Value,
    /// Tries made so far.
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("outbox file {path} is not a queued message: {reason}")]
    Corrupt { path: String, reason: String },
}

/// What one delivery round did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Delivery {
    pub sent: usize,
    pub remaining: usize,
    /// Why the round stopped early (the first failed try).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    seq: AtomicU64,
}

impl Outbox {
    /// Opens (creating) the outbox directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, OutboxError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        Ok(Outbox {
            dir,
            seq: AtomicU64::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues a message durably; returns its id (which also orders delivery).
    pub fn enqueue(&self, payload: serde_json::Value) -> Result<String, OutboxError> {
        let id = format!(
            "{:016}-{:06}-{}",
            chrono::Utc::now().timestamp_micros(),
            self.seq.fetch_add(1, Ordering::Relaxed),
            std::process::id()
        );
        let p = Pending {
            id: id.clone(),
            payload,
            attempts: 0,
            last_error: None,
        };
        self.write(&p)?;
        Ok(id)
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn write(&self, p: &Pending) -> Result<(), OutboxError> {
        use std::io::Write;
        let path = self.path_of(&p.id);
        let tmp = self.dir.join(format!(".{}.tmp", p.id));
        let body = serde_json::to_vec(p).expect("a pending message serializes");
        let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
        f.write_all(&body).map_err(|e| io(&tmp, e))?;
        f.sync_all().map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        Ok(())
    }

    /// The queued messages, oldest first. A file that is not a message is an error
    /// naming it (it is never deleted).
    pub fn pending(&self) -> Result<Vec<Pending>, OutboxError> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(|e| io(&self.dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|path| {
                let text = std::fs::read(&path).map_err(|e| io(&path, e))?;
                serde_json::from_slice(&text).map_err(|e| OutboxError::Corrupt {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// One delivery round: POSTs each queued message's payload as JSON to `url`, oldest
    /// first, each try bounded by `timeout`; stops at the first failure, which is
    /// recorded on the message.
    pub async fn deliver(
        &self,
        client: &reqwest::Client,
        url: &str,
        timeout: Duration,
    ) -> Result<Delivery, OutboxError> {
        let pending = self.pending()?;
        let mut d = Delivery {
            remaining: pending.len(),
            ..Delivery::default()
        };
        for mut p in pending {
            let outcome = client
                .post(url)
                .timeout(timeout)
                .json(&p.payload)
                .send()
                .await;
            let error = match outcome {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("{url} answered {}", r.status())),
                Err(e) if e.is_timeout() => {
                    Some(format!("{url} did not answer within {timeout:?}"))
                }
                Err(e) => Some(format!("{url}: {}", error_chain(&e))),
            };
            match error {
                None => {
                    let path = self.path_of(&p.id);
                    std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
                    d.sent += 1;
                    d.remaining -= 1;
                }
                Some(e) => {
                    p.attempts += 1;
                    p.last_error = Some(e.clone());
                    self.write(&p)?;
                    d.error = Some(e);
                    break;
                }
            }
        }
        Ok(d)
    }

    /// Delivers until the outbox is empty or `give_up_after` has passed, waiting
    /// 1 s, 2 s, 4 s … (at most 30 s) between failed rounds; `progress` hears each round.
    pub async fn drain(
        &self,
        client: &reqwest::Client,
        url: &str,
        timeout: Duration,
        give_up_after: Duration,
        mut progress: impl FnMut(&Delivery),
    ) -> Result<Delivery, OutboxError> {
        let deadline = tokio::time::Instant::now() + give_up_after;
        let mut wait = Duration::from_secs(1);
        let mut total = Delivery::default();
        loop {
            let d = self.deliver(client, url, timeout).await?;
            progress(&d);
            total.sent += d.sent;
            total.remaining = d.remaining;
            total.error = d.error.clone();
            if d.remaining == 0 || tokio::time::Instant::now() + wait > deadline {
                return Ok(total);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }
}

fn io(path: &Path, source: std::io::Error) -> OutboxError {
    OutboxError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_survive_reopening_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        for i in 0..3 {
            ob.enqueue(json!({"n": i})).unwrap();
        }
        drop(ob);
        let ob = Outbox::open(dir.path()).unwrap();
        let p = ob.pending().unwrap();
        assert_eq!(
            p.iter().map(|p| p.payload["n"].clone()).collect::<Vec<_>>(),
            [json!(0), json!(1), json!(2)]
        );
    }

    #[test]
    fn a_corrupt_file_is_named_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("0-bad.json"), "{torn").unwrap();
        let e = ob.pending().unwrap_err().to_string();
        assert!(e.contains("0-bad.json"), "{e}");
        assert!(dir.path().join("0-bad.json").exists());
    }
}
