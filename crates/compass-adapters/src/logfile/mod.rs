//! Log files on disk behind [`LogSource`]: plain text or JSON lines, found by glob
//! patterns. The first query reads every matched file once into a time-sorted index of
//! its records (see [`index`] for what that costs in memory) and later pages seek into
//! the files; lines appended after that are not seen until the source is built again.
//!
//! A line with a timestamp starts a record; one without continues the record before it
//! (a stack trace), and at the top of a file, or in `json_lines` format, it is a
//! malformed line, listed in the first page of a query with its file and line (see
//! [`line`] and [`timestamp`] for the formats understood). Syslog times carry no year:
//! it is the one nearest the query range's end (rounded to 30 days; a query in another
//! 30-day bucket reads the files again when they hold such times).
//!
//! Records come in (time, file path, byte offset) order; the cursor names the next
//! record by those three, so it stays valid if the index is rebuilt.

mod index;
mod line;
pub mod timestamp;

pub(crate) use line::{JsonParts, first_level_keyword, level_from_name, level_names_at_least};

use async_trait::async_trait;
use compass_core::{EpochMs, LogRecord, TimeRange};
use compass_engine::{LogQuery, LogSource, Page, SourceError, SourceResult};
use index::{Entry, Index, read_error};
use line::LineRules;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How the lines of the files are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFileFormat {
    /// Per line: a JSON object if it parses as one, else plain text.
    #[default]
    Auto,
    /// Plain text: a timestamp starts each record.
    Plain,
    /// One JSON object per line; any other line is malformed.
    JsonLines,
}

/// Which files to read and how.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogFileConfig {
    /// Glob patterns (`/var/log/app/*.log`), relative ones to the working directory.
    pub paths: Vec<String>,
    /// The service of every record of these files.
    pub service: Option<String>,
    /// A JSON field naming a record's service (when `service` is unset); records
    /// without it, and plain lines, get the file's name up to its first `.`.
    pub service_field: Option<String>,
    pub format: LogFileFormat,
    /// A JSON field holding the time, tried before `ts`, `time`, `timestamp`,
    /// `@timestamp`.
    pub timestamp_field: Option<String>,
}

/// Log files behind [`LogSource`].
#[derive(Debug, Clone)]
pub struct LogFileSource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    config: LogFileConfig,
    index: Mutex<Option<Arc<Index>>>,
}

/// Syslog years are chosen relative to the query range's end rounded to this.
const YEAR_BUCKET_MS: EpochMs = 30 * 86_400_000;

impl LogFileSource {
    /// Check the patterns (files are matched when read, so they may appear later).
    pub fn new(name: &str, config: LogFileConfig) -> SourceResult<Self> {
        let bad = |detail: String| SourceError::BadData {
            source_name: name.to_string(),
            detail,
        };
        if config.paths.is_empty() {
            return Err(bad(
                "no log file paths configured; set `paths` to glob patterns such as /var/log/app/*.log"
                    .to_string(),
            ));
        }
        for pattern in &config.paths {
            glob::Pattern::new(pattern).map_err(|e| {
                bad(format!(
                    "path pattern `{pattern}` is not a valid glob ({e})"
                ))
            })?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                name: name.to_string(),
                config,
                index: Mutex::new(None),
            }),
        })
    }

    /// What the patterns match now, for `compass config check`: "3 files, 1.2 MiB".
    pub fn describe(&self) -> SourceResult<String> {
        let files = self.inner.matched_files()?;
        let mut bytes = 0u64;
        for path in &files {
            let meta =
                std::fs::metadata(path).map_err(|e| read_error(&self.inner.name, path, &e))?;
            bytes += meta.len();
        }
        let plural = if files.len() == 1 { "" } else { "s" };
        Ok(format!(
            "{} file{plural}, {}",
            files.len(),
            human_size(bytes)
        ))
    }
}

impl Inner {
    /// Every file the patterns match, sorted; a pattern matching nothing is an error.
    fn matched_files(&self) -> SourceResult<Vec<PathBuf>> {
        let mut files = Vec::new();
        for pattern in &self.config.paths {
            let matches = glob::glob(pattern).map_err(|e| SourceError::BadData {
                source_name: self.name.clone(),
                detail: format!("path pattern `{pattern}` is not a valid glob ({e})"),
            })?;
            let before = files.len();
            for found in matches {
                let path = found.map_err(|e| read_error(&self.name, e.path(), e.error()))?;
                if path.is_file() {
                    files.push(path);
                }
            }
            if files.len() == before {
                return Err(SourceError::NotFound {
                    source_name: self.name.clone(),
                    detail: format!(
                        "no file matches `{pattern}`; check the path (relative patterns start at the working directory)"
                    ),
                });
            }
        }
        files.sort();
        files.dedup();
        Ok(files)
    }

    fn rules(&self, year_ref: EpochMs) -> LineRules<'_> {
        LineRules {
            format: self.config.format,
            timestamp_field: self.config.timestamp_field.as_deref(),
            service_field: self.config.service_field.as_deref(),
            year_ref,
        }
    }

    /// The index, built on first use; built again only when it holds yearless times
    /// and `range` is in another year bucket.
    fn index_for(&self, range: TimeRange) -> SourceResult<Arc<Index>> {
        let bucket = range.end.div_euclid(YEAR_BUCKET_MS);
        let year_ref = bucket * YEAR_BUCKET_MS + YEAR_BUCKET_MS / 2;
        let mut cached = self
            .index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(index) = cached.as_ref()
            && (!index.yearless || index.year_ref == year_ref)
        {
            return Ok(Arc::clone(index));
        }
        let files = self.matched_files()?;
        let rules = self.rules(year_ref);
        let index = Arc::new(Index::build(
            &self.name,
            files,
            &rules,
            self.config.service.as_deref(),
        )?);
        tracing::debug!(source = %self.name, records = index.entries.len(), "indexed log files");
        *cached = Some(Arc::clone(&index));
        Ok(index)
    }

    fn page(
        &self,
        query: &LogQuery,
        range: TimeRange,
        cursor: Option<&str>,
        limit: usize,
    ) -> SourceResult<Page<LogRecord>> {
        if limit == 0 {
            return Err(SourceError::QueryRejected {
                source_name: self.name.clone(),
                detail: "page limit must be at least 1".to_string(),
            });
        }
        if range.is_empty() {
            return Ok(empty_page(Vec::new()));
        }
        let index = self.index_for(range)?;
        let start = match cursor {
            Some(cursor) => {
                let (ts, offset, path) = parse_cursor(cursor).ok_or_else(|| SourceError::QueryRejected {
                    source_name: self.name.clone(),
                    detail: format!("cursor `{cursor}` was not issued by this source; start again without one"),
                })?;
                index.position(ts, path, offset)
            }
            None => index.entries.partition_point(|e| e.ts < range.start),
        };
        let mut problems = match cursor {
            None => index.problems_in(range),
            Some(_) => Vec::new(),
        };
        let service = match query.service.as_deref() {
            Some(name) => match index.service_id(name) {
                Some(id) => Some(id),
                None => return Ok(empty_page(problems)),
            },
            None => None,
        };
        let wanted = |e: &&Entry| {
            service.is_none_or(|id| e.service == id)
                && query.min_level.is_none_or(|min| e.level >= min)
        };
        let mut in_range = index.entries[start..]
            .iter()
            .take_while(|e| e.ts < range.end)
            .filter(wanted);
        let picked: Vec<Entry> = in_range.by_ref().take(limit).copied().collect();
        let next = in_range.next().map(|e| {
            let path = &index.files[e.file as usize];
            format!("{}:{}:{}", e.ts, e.offset, path.display())
        });
        let items = index.read(&picked, &self.rules(index.year_ref), &mut problems)?;
        Ok(Page {
            items,
            next,
            problems,
        })
    }
}

fn empty_page(problems: Vec<String>) -> Page<LogRecord> {
    Page {
        items: Vec::new(),
        next: None,
        problems,
    }
}

/// `ts:offset:path` (the path last: it may hold `:`).
fn parse_cursor(cursor: &str) -> Option<(EpochMs, u64, &Path)> {
    let mut parts = cursor.splitn(3, ':');
    let ts = parts.next()?.parse().ok()?;
    let offset = parts.next()?.parse().ok()?;
    let path = parts.next().filter(|p| !p.is_empty())?;
    Some((ts, offset, Path::new(path)))
}

fn human_size(bytes: u64) -> String {
    const UNITS: &[&str] = &["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut size = bytes as f64 / 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit + 1 < UNITS.len() {
        size /= 1024.0;
        unit += 1;
    }
    format!("{size:.1} {}", UNITS[unit])
}

#[async_trait]
impl LogSource for LogFileSource {
    fn name(&self) -> &str {
        &self.inner.name
    }

    async fn fetch_logs(
        &self,
        query: &LogQuery,
        range: TimeRange,
        cursor: Option<&str>,
        limit: usize,
    ) -> SourceResult<Page<LogRecord>> {
        let (inner, query) = (Arc::clone(&self.inner), query.clone());
        let cursor = cursor.map(str::to_string);
        tokio::task::spawn_blocking(move || inner.page(&query, range, cursor.as_deref(), limit))
            .await
            .unwrap_or_else(|e| {
                Err(SourceError::Unavailable {
                    source_name: self.inner.name.clone(),
                    detail: format!("reading the log files failed: {e}"),
                })
            })
    }
}
