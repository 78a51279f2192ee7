//! The time-sorted index of a log-file source: every file is read once, line by line
//! (a line is never held longer than 1 MiB; the rest of a longer one is skipped), and
//! each record keeps 32 bytes here (time, file, byte offset, line number, service,
//! level, number of continuation lines), not its text. A page is read back by seeking
//! to its records' offsets. So memory is about 32 bytes per record (a 1 GB file of
//! 150-byte lines: about 200 MB), never the files themselves.

use super::line::{Line, LineRules};
use compass_core::{EpochMs, LineOrigin, LogLevel, LogRecord, TimeRange};
use compass_engine::{SourceError, SourceResult};
use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Longest line kept; the rest of a longer line is skipped.
const MAX_LINE_BYTES: usize = 1 << 20;
/// Longest message (first line plus continuation lines) returned.
const MAX_MESSAGE_BYTES: usize = 64 << 10;
/// Most continuation lines attached to one record.
const MAX_CONTINUATION_LINES: u16 = 500;
/// Malformed lines remembered per index (more are only counted).
const STORED_PROBLEMS: usize = 1000;
/// Malformed lines listed per page (more are counted in one note).
const LISTED_PROBLEMS: usize = 20;

/// One record of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    pub ts: EpochMs,
    pub offset: u64,
    /// 1-based line number of the record's first line.
    pub line: u32,
    pub file: u32,
    pub service: u32,
    pub continuation: u16,
    pub level: LogLevel,
}

// The memory figure in the module docs depends on this.
const _: () = assert!(std::mem::size_of::<Entry>() == 32);

/// A malformed line; `ts` is the time of the record before it in its file (or after
/// it, at the top of a file), `None` when its file has no record at all.
#[derive(Debug, Clone, PartialEq)]
struct Problem {
    ts: Option<EpochMs>,
    text: String,
}

/// The records of all files, sorted by (time, file, offset).
#[derive(Debug)]
pub(super) struct Index {
    source_name: String,
    /// Matched files, sorted by path.
    pub files: Vec<PathBuf>,
    services: Vec<String>,
    service_ids: HashMap<String, u32>,
    pub entries: Vec<Entry>,
    problems: Vec<Problem>,
    unlisted_problems: u64,
    /// A yearless (syslog) timestamp was read, so `year_ref` mattered.
    pub yearless: bool,
    pub year_ref: EpochMs,
}

impl Index {
    /// Read every file; `fixed_service` names the service of every record, else the
    /// configured JSON field does, else the file's name up to its first `.`.
    pub fn build(
        source_name: &str,
        files: Vec<PathBuf>,
        rules: &LineRules<'_>,
        fixed_service: Option<&str>,
    ) -> SourceResult<Self> {
        let mut index = Index {
            source_name: source_name.to_string(),
            files: Vec::new(),
            services: Vec::new(),
            service_ids: HashMap::new(),
            entries: Vec::new(),
            problems: Vec::new(),
            unlisted_problems: 0,
            yearless: false,
            year_ref: rules.year_ref,
        };
        for (file_id, path) in files.iter().enumerate() {
            let file_id = u32::try_from(file_id).map_err(|_| SourceError::BadData {
                source_name: source_name.to_string(),
                detail: "more than 4 billion files match; narrow the path patterns".to_string(),
            })?;
            let service = fixed_service
                .map(str::to_string)
                .unwrap_or_else(|| file_service(path));
            let service = index.intern(&service);
            index
                .scan(file_id, path, rules, fixed_service.is_none(), service)
                .map_err(|e| read_error(source_name, path, &e))?;
        }
        index.files = files;
        if !index.entries.is_sorted_by_key(sort_key) {
            index.entries.sort_unstable_by_key(sort_key);
        }
        Ok(index)
    }

    fn scan(
        &mut self,
        file_id: u32,
        path: &Path,
        rules: &LineRules<'_>,
        service_from_field: bool,
        file_service: u32,
    ) -> io::Result<()> {
        let shown = path.display().to_string();
        let mut reader = LineReader::open(path)?;
        let mut open: Option<usize> = None;
        let mut last_ts: Option<EpochMs> = None;
        let mut undated_from = self.problems.len();
        let mut number: u64 = 0;
        while let Some((offset, bytes)) = reader.next_line()? {
            number += 1;
            let text = String::from_utf8_lossy(bytes);
            let line = match u32::try_from(number) {
                Ok(line) => line,
                Err(_) => {
                    self.problem(
                        last_ts,
                        format!(
                            "{shown}: more than 4 billion lines; the rest of the file is skipped"
                        ),
                    );
                    break;
                }
            };
            match rules.parse(&text) {
                Line::Record(record) => {
                    let service = match record.service {
                        Some(name) if service_from_field => self.intern(&name),
                        _ => file_service,
                    };
                    self.entries.push(Entry {
                        ts: record.ts.ms,
                        offset,
                        line,
                        file: file_id,
                        service,
                        continuation: 0,
                        level: record.level,
                    });
                    open = Some(self.entries.len() - 1);
                    self.yearless |= record.ts.yearless;
                    if last_ts.is_none() {
                        for p in &mut self.problems[undated_from..] {
                            p.ts = Some(record.ts.ms);
                        }
                        undated_from = self.problems.len();
                    }
                    last_ts = Some(record.ts.ms);
                }
                Line::Continuation => match open.map(|i| &mut self.entries[i]) {
                    Some(entry) => {
                        entry.continuation = (entry.continuation + 1).min(MAX_CONTINUATION_LINES);
                    }
                    None if text.trim().is_empty() => {}
                    None => self.problem(
                        last_ts,
                        format!(
                            "{shown}:{line}: no timestamp found and no record before it to continue"
                        ),
                    ),
                },
                Line::Malformed(why) => {
                    open = None;
                    self.problem(last_ts, format!("{shown}:{line}: {why}"));
                }
            }
        }
        Ok(())
    }

    fn problem(&mut self, ts: Option<EpochMs>, text: String) {
        if self.problems.len() < STORED_PROBLEMS {
            self.problems.push(Problem { ts, text });
        } else {
            self.unlisted_problems += 1;
        }
    }

    fn intern(&mut self, service: &str) -> u32 {
        if let Some(&id) = self.service_ids.get(service) {
            return id;
        }
        // Fewer services than records, and records are counted in u32 line numbers.
        let id = u32::try_from(self.services.len()).unwrap_or(u32::MAX);
        self.services.push(service.to_string());
        self.service_ids.insert(service.to_string(), id);
        id
    }

    pub fn service_id(&self, service: &str) -> Option<u32> {
        self.service_ids.get(service).copied()
    }

    /// The position of the first record at or after `(ts, path, offset)`.
    pub fn position(&self, ts: EpochMs, path: &Path, offset: u64) -> usize {
        self.entries.partition_point(|e| {
            (e.ts, self.files[e.file as usize].as_path(), e.offset) < (ts, path, offset)
        })
    }

    /// The malformed lines of `range` (and of files with no record at all), for the
    /// first page of a query.
    pub fn problems_in(&self, range: TimeRange) -> Vec<String> {
        let mut in_range = self
            .problems
            .iter()
            .filter(|p| p.ts.is_none_or(|ts| range.contains(ts)));
        let mut notes: Vec<String> = in_range
            .by_ref()
            .take(LISTED_PROBLEMS)
            .map(|p| p.text.clone())
            .collect();
        let more = in_range.count() as u64 + self.unlisted_problems;
        if more > 0 {
            notes.push(format!(
                "{}: {more} more malformed lines not listed",
                self.source_name
            ));
        }
        notes
    }

    /// Read the records of `picked` back from their files; records whose line no longer
    /// reads as indexed (the file was rewritten) are skipped with a note.
    pub fn read(
        &self,
        picked: &[Entry],
        rules: &LineRules<'_>,
        problems: &mut Vec<String>,
    ) -> SourceResult<Vec<LogRecord>> {
        let mut readers: HashMap<u32, LineReader> = HashMap::new();
        let mut records = Vec::with_capacity(picked.len());
        for entry in picked {
            let path = &self.files[entry.file as usize];
            let fail = |e: io::Error| read_error(&self.source_name, path, &e);
            let reader = match readers.entry(entry.file) {
                MapEntry::Occupied(o) => o.into_mut(),
                MapEntry::Vacant(v) => v.insert(LineReader::open(path).map_err(fail)?),
            };
            reader.seek_to(entry.offset).map_err(fail)?;
            let first = match reader.next_line().map_err(fail)? {
                Some((_, bytes)) => String::from_utf8_lossy(bytes).into_owned(),
                None => String::new(),
            };
            let record = match rules.parse(&first) {
                Line::Record(r) if r.ts.ms == entry.ts => r,
                _ => {
                    problems.push(format!(
                        "{}:{}: the line changed since the file was read (rewritten or rotated?); skipped",
                        path.display(),
                        entry.line
                    ));
                    continue;
                }
            };
            let mut message = record.message.into_owned();
            for _ in 0..entry.continuation {
                let Some((_, bytes)) = reader.next_line().map_err(fail)? else {
                    break;
                };
                if message.len() < MAX_MESSAGE_BYTES {
                    message.push('\n');
                    message.push_str(&String::from_utf8_lossy(bytes));
                }
            }
            truncate_at_char(&mut message, MAX_MESSAGE_BYTES);
            message.truncate(message.trim_end().len());
            records.push(LogRecord {
                ts: entry.ts,
                service: self.services[entry.service as usize].clone(),
                pod: record.pod.unwrap_or_default(),
                level: entry.level,
                message,
                trace_id: record.trace_id,
                origin: Some(LineOrigin {
                    path: path.display().to_string(),
                    line: u64::from(entry.line),
                }),
            });
        }
        Ok(records)
    }
}

fn sort_key(e: &Entry) -> (EpochMs, u32, u64) {
    (e.ts, e.file, e.offset)
}

/// A file's service when nothing else names it: its name up to the first `.`
/// (`checkout.log.1` → `checkout`).
fn file_service(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.split('.').next() {
        Some(stem) if !stem.is_empty() => stem.to_string(),
        _ => name,
    }
}

fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// An I/O error on a file, naming it and what to do.
pub(super) fn read_error(source_name: &str, path: &Path, e: &io::Error) -> SourceError {
    let source_name = source_name.to_string();
    let shown = path.display();
    match e.kind() {
        io::ErrorKind::NotFound => SourceError::NotFound {
            source_name,
            detail: format!("{shown} no longer exists ({e}); was it rotated away?"),
        },
        io::ErrorKind::PermissionDenied => SourceError::Unavailable {
            source_name,
            detail: format!("cannot read {shown}: permission denied; check the file's permissions"),
        },
        _ => SourceError::Unavailable {
            source_name,
            detail: format!("cannot read {shown}: {e}"),
        },
    }
}

/// Reads lines (without `\n` or `\r\n`) of at most [`MAX_LINE_BYTES`], knowing the
/// byte offset of each.
#[derive(Debug)]
struct LineReader {
    inner: BufReader<File>,
    offset: u64,
    buf: Vec<u8>,
}

impl LineReader {
    fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            inner: BufReader::with_capacity(256 << 10, File::open(path)?),
            offset: 0,
            buf: Vec::new(),
        })
    }

    fn seek_to(&mut self, offset: u64) -> io::Result<()> {
        if offset != self.offset {
            let delta = i64::try_from(offset).unwrap_or(i64::MAX)
                - i64::try_from(self.offset).unwrap_or(i64::MAX);
            self.inner.seek_relative(delta)?;
            self.offset = offset;
        }
        Ok(())
    }

    /// The next line and the offset it starts at; `None` at the end of the file.
    fn next_line(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        let start = self.offset;
        self.buf.clear();
        let mut read_any = false;
        loop {
            let available = self.inner.fill_buf()?;
            if available.is_empty() {
                break;
            }
            read_any = true;
            let (line_end, used) = match memchr::memchr(b'\n', available) {
                Some(i) => (i, i + 1),
                None => (available.len(), available.len()),
            };
            let room = MAX_LINE_BYTES.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&available[..line_end.min(room)]);
            let done = used > line_end;
            self.inner.consume(used);
            self.offset += used as u64;
            if done {
                break;
            }
        }
        if !read_any {
            return Ok(None);
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some((start, &self.buf)))
    }
}
