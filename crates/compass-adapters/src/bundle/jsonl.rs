//! Lazy, seekable reading of large JSON-lines files (`logs.jsonl`, `traces.jsonl`).
//!
//! Nothing is read until the first query. That query scans the file once to build a
//! sparse index: for every block of [`BLOCK_LINES`] lines, its byte offset, 1-based line
//! number and the first timestamp at or after it. A query then seeks to the last block
//! that starts before its range, streams lines from there in fixed-size chunks (never
//! the whole file), and stops at the first record past the range (files are sorted by
//! time). Pages end with an opaque cursor, `"<byte offset>:<line number>"` of the next
//! matching line. Malformed lines are skipped and reported with file and line.

use super::error::read_error;
use super::time::parse_fixed_ms;
use compass_core::{EpochMs, TimeRange};
use compass_engine::{Page, SourceError, SourceResult};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

/// Lines per index block.
pub(crate) const BLOCK_LINES: u64 = 4096;
/// Bytes read from the file at a time (small pages should not read much more than
/// they need; larger reads gain little).
const CHUNK_BYTES: usize = 128 << 10;
/// Problem messages listed per page; the rest are counted.
pub(crate) const MAX_PROBLEMS_PER_PAGE: usize = 20;

/// Where a line starts: byte offset and 1-based line number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub offset: u64,
    pub line: u64,
}

impl Position {
    pub const START: Position = Position { offset: 0, line: 1 };

    fn cursor(self) -> String {
        format!("{}:{}", self.offset, self.line)
    }
}

/// Call `visit` with every line from `from` on (without its `\n` or `\r\n`) and the
/// line's position, until it breaks. Returns where it broke, or `None` at the end of
/// the file. Reads the file in chunks of [`CHUNK_BYTES`] (more only for longer lines).
pub(crate) fn stream_lines(
    path: &Path,
    from: Position,
    mut visit: impl FnMut(&[u8], Position) -> ControlFlow<()>,
) -> io::Result<Option<Position>> {
    let mut file = File::open(path)?;
    if from.offset > 0 {
        file.seek(SeekFrom::Start(from.offset))?;
    }
    let mut buf = vec![0u8; CHUNK_BYTES];
    let (mut start, mut end) = (0usize, 0usize);
    let mut pos = from;
    loop {
        while let Some(newline) = memchr::memchr(b'\n', &buf[start..end]) {
            let line = &buf[start..start + newline];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if visit(line, pos).is_break() {
                return Ok(Some(pos));
            }
            start += newline + 1;
            pos = Position {
                offset: pos.offset + newline as u64 + 1,
                line: pos.line + 1,
            };
        }
        buf.copy_within(start..end, 0);
        end -= start;
        start = 0;
        if end == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let read = match file.read(&mut buf[end..]) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if read == 0 {
            if end > 0 {
                let line = &buf[..end];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if visit(line, pos).is_break() {
                    return Ok(Some(pos));
                }
            }
            return Ok(None);
        }
        end += read;
    }
}

/// The first timestamp of every block of lines.
#[derive(Debug)]
pub(crate) struct SparseIndex {
    /// Block starts with the first timestamp at or after them (`EpochMs::MAX` when no
    /// later line has one).
    blocks: Vec<(Position, EpochMs)>,
    /// Whether timestamps never decrease (otherwise queries read everything).
    sorted: bool,
    /// The first line found earlier than a line before it.
    first_disorder: Option<u64>,
    len: u64,
}

impl SparseIndex {
    /// Where to start reading for records at or after `start`.
    fn seek(&self, start: EpochMs) -> Position {
        if !self.sorted {
            return Position::START;
        }
        match self.blocks.partition_point(|&(_, ts)| ts < start) {
            0 => Position::START,
            i => self.blocks[i - 1].0,
        }
    }
}

/// One JSON-lines file of a bundle, with its index built on first use.
#[derive(Debug)]
pub(crate) struct JsonlFile {
    /// File name within the bundle, as problems cite it (`logs.jsonl`).
    pub name: &'static str,
    pub path: PathBuf,
    /// The port that reads it (`bundle:logs`), as errors cite it.
    pub source_name: &'static str,
    /// The timestamp of a line, used for the index.
    timestamp_of: fn(&[u8]) -> Option<EpochMs>,
    /// The JSON key of the timestamp, for the time-order check of the index scan.
    timestamp_key: &'static str,
    index: OnceLock<Result<SparseIndex, SourceError>>,
}

/// What a line parser says about one line.
pub(crate) type LineResult<T> = Result<(EpochMs, Option<T>), String>;

impl JsonlFile {
    pub fn new(
        dir: &Path,
        name: &'static str,
        source_name: &'static str,
        timestamp_of: fn(&[u8]) -> Option<EpochMs>,
        timestamp_key: &'static str,
    ) -> Self {
        Self {
            name,
            path: dir.join(name),
            source_name,
            timestamp_of,
            timestamp_key,
            index: OnceLock::new(),
        }
    }

    fn index(&self) -> SourceResult<&SparseIndex> {
        self.index
            .get_or_init(|| self.build_index())
            .as_ref()
            .map_err(Clone::clone)
    }

    fn build_index(&self) -> SourceResult<SparseIndex> {
        let started = Instant::now();
        let mut blocks: Vec<(Position, Option<EpochMs>)> = Vec::new();
        let mut lines = 0u64;
        let mut len = 0u64;
        let mut order = TimeOrder::new(self.timestamp_key);
        stream_lines(&self.path, Position::START, |line, pos| {
            order.check(line, pos.line);
            if (pos.line - 1) % BLOCK_LINES == 0 {
                blocks.push((pos, None));
            }
            if let Some(last) = blocks.last_mut()
                && last.1.is_none()
            {
                last.1 = (self.timestamp_of)(line);
            }
            lines = pos.line;
            len = pos.offset + line.len() as u64;
            ControlFlow::Continue(())
        })
        .map_err(|e| read_error(self.source_name, &self.path, &e))?;
        let len = std::fs::metadata(&self.path)
            .map(|m| m.len())
            .unwrap_or(len);
        // A block without a timestamp of its own takes the next one found after it.
        let mut next = EpochMs::MAX;
        let mut filled: Vec<(Position, EpochMs)> = blocks
            .into_iter()
            .rev()
            .map(|(pos, ts)| {
                next = ts.unwrap_or(next);
                (pos, next)
            })
            .collect();
        filled.reverse();
        let blocks_sorted = filled.windows(2).all(|w| w[0].1 <= w[1].1);
        let sorted = blocks_sorted && order.first_disorder.is_none();
        if !sorted {
            tracing::warn!(
                file = %self.path.display(),
                line = order.first_disorder,
                "not sorted by time; queries read the whole file"
            );
        }
        tracing::debug!(
            file = %self.path.display(),
            lines,
            blocks = filled.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "indexed"
        );
        Ok(SparseIndex {
            blocks: filled,
            sorted,
            first_disorder: order.first_disorder,
            len,
        })
    }

    fn parse_cursor(&self, cursor: &str, index: &SparseIndex) -> SourceResult<Position> {
        let rejected = || SourceError::QueryRejected {
            source_name: self.source_name.to_string(),
            detail: format!(
                "invalid cursor {cursor:?} for {} (pass the `next` of the previous page unchanged)",
                self.name
            ),
        };
        let (offset, line) = cursor.split_once(':').ok_or_else(rejected)?;
        let offset: u64 = offset.parse().map_err(|_| rejected())?;
        let line: u64 = line.parse().map_err(|_| rejected())?;
        if line == 0 || offset > index.len {
            return Err(rejected());
        }
        if offset > 0 {
            // A cursor points just after a newline.
            let mut file =
                File::open(&self.path).map_err(|e| read_error(self.source_name, &self.path, &e))?;
            let mut byte = [0u8];
            file.seek(SeekFrom::Start(offset - 1))
                .and_then(|_| file.read_exact(&mut byte))
                .map_err(|e| read_error(self.source_name, &self.path, &e))?;
            if byte[0] != b'\n' {
                return Err(rejected());
            }
        }
        Ok(Position { offset, line })
    }

    /// One page of the records in `range`, in file order. `parse` turns a line into
    /// its timestamp and, if the record is in the range and wanted, the item.
    pub fn read_page<T>(
        &self,
        range: TimeRange,
        cursor: Option<&str>,
        limit: usize,
        mut parse: impl FnMut(&[u8], Position) -> LineResult<T>,
    ) -> SourceResult<Page<T>> {
        if limit == 0 {
            return Err(SourceError::QueryRejected {
                source_name: self.source_name.to_string(),
                detail: "page limit must be at least 1".to_string(),
            });
        }
        let index = self.index()?;
        let from = match cursor {
            Some(cursor) => self.parse_cursor(cursor, index)?,
            None if range.is_empty() => {
                return Ok(Page {
                    items: Vec::new(),
                    next: None,
                    problems: Vec::new(),
                });
            }
            None => index.seek(range.start),
        };
        let mut items = Vec::with_capacity(limit.min(16_384));
        let mut problems = Problems::new(self.name);
        // Malformed lines whose time is unknown count as in the range unless a record
        // before the range follows them (only matters before the range is reached).
        let mut reached_start = cursor.is_some();
        let mut undated: Vec<(u64, String)> = Vec::new();
        let mut undated_unlisted = 0u64;
        let mut next = None;
        let at_eof = stream_lines(&self.path, from, |line, pos| {
            if line.trim_ascii().is_empty() {
                return ControlFlow::Continue(());
            }
            match parse(line, pos) {
                Err(what) => match (self.timestamp_of)(line) {
                    Some(ts) if range.contains(ts) => problems.push(pos.line, &what),
                    Some(ts) if ts < range.start && !reached_start => {
                        undated.clear();
                        undated_unlisted = 0;
                    }
                    Some(_) => {}
                    None if reached_start => problems.push(pos.line, &what),
                    None if undated.len() < MAX_PROBLEMS_PER_PAGE => undated.push((pos.line, what)),
                    None => undated_unlisted += 1,
                },
                Ok((ts, _)) if ts < range.start && !reached_start => {
                    undated.clear();
                    undated_unlisted = 0;
                }
                Ok((ts, item)) => {
                    if !reached_start {
                        reached_start = true;
                        problems.take_undated(&mut undated, &mut undated_unlisted);
                    }
                    if ts >= range.end && index.sorted {
                        return ControlFlow::Break(());
                    }
                    if let Some(item) = item.filter(|_| range.contains(ts)) {
                        if items.len() == limit {
                            next = Some(pos);
                            return ControlFlow::Break(());
                        }
                        items.push(item);
                    }
                }
            }
            ControlFlow::Continue(())
        })
        .map_err(|e| read_error(self.source_name, &self.path, &e))?
        .is_none();
        if at_eof {
            problems.take_undated(&mut undated, &mut undated_unlisted);
        }
        let mut problems = problems.finish();
        if !index.sorted {
            let detail = match index.first_disorder {
                Some(line) => format!(" (line {line} is earlier than a line before it)"),
                None => String::new(),
            };
            problems.insert(
                0,
                format!(
                    "{} is not sorted by time{detail}; read all of it",
                    self.name
                ),
            );
        }
        Ok(Page {
            items,
            next: next.map(Position::cursor),
            problems,
        })
    }

    /// Visit every parseable record whose timestamp is in `range`; returns how many
    /// lines were malformed.
    pub fn for_each_in_range(
        &self,
        range: TimeRange,
        mut visit: impl FnMut(&[u8]) -> Result<EpochMs, String>,
    ) -> SourceResult<u64> {
        let index = self.index()?;
        if range.is_empty() {
            return Ok(0);
        }
        let mut malformed = 0;
        stream_lines(&self.path, index.seek(range.start), |line, _| {
            if line.trim_ascii().is_empty() {
                return ControlFlow::Continue(());
            }
            match visit(line) {
                Err(_) => malformed += 1,
                Ok(ts) if ts >= range.end && index.sorted => return ControlFlow::Break(()),
                Ok(_) => {}
            }
            ControlFlow::Continue(())
        })
        .map_err(|e| read_error(self.source_name, &self.path, &e))?;
        Ok(malformed)
    }
}

/// The time-order check of the index scan: finds each line's timestamp by its key
/// (fixed `"key":"YYYY-MM-DDTHH:MM:SS.mmmZ"` form only, other lines are not checked)
/// and remembers the first line earlier than the latest before it.
#[derive(Debug)]
struct TimeOrder {
    finder: memchr::memmem::Finder<'static>,
    latest: EpochMs,
    first_disorder: Option<u64>,
}

impl TimeOrder {
    fn new(key: &str) -> Self {
        let pattern = format!("\"{key}\":\"");
        let finder = memchr::memmem::Finder::new(pattern.as_bytes()).into_owned();
        Self {
            finder,
            latest: EpochMs::MIN,
            first_disorder: None,
        }
    }

    fn check(&mut self, line: &[u8], number: u64) {
        if self.first_disorder.is_some() {
            return;
        }
        let Some(at) = self.finder.find(line) else {
            return;
        };
        let start = at + self.finder.needle().len();
        let Some(ts) = line.get(start..start + 24).and_then(parse_fixed_ms) else {
            return;
        };
        if ts < self.latest {
            self.first_disorder = Some(number);
        } else {
            self.latest = ts;
        }
    }
}

/// Problem messages of one page: the first few in full, the rest counted.
#[derive(Debug)]
struct Problems {
    file: &'static str,
    /// (line, message), sorted by line when finished.
    listed: Vec<(u64, String)>,
    unlisted: u64,
}

impl Problems {
    fn new(file: &'static str) -> Self {
        Self {
            file,
            listed: Vec::new(),
            unlisted: 0,
        }
    }

    fn push(&mut self, line: u64, what: &str) {
        if self.listed.len() < MAX_PROBLEMS_PER_PAGE {
            self.listed
                .push((line, format!("{} line {line}: {what}", self.file)));
        } else {
            self.unlisted += 1;
        }
    }

    /// Report held-back lines of unknown time after all.
    fn take_undated(&mut self, undated: &mut Vec<(u64, String)>, unlisted: &mut u64) {
        for (line, what) in undated.drain(..) {
            self.push(line, &what);
        }
        self.unlisted += std::mem::take(unlisted);
    }

    fn finish(mut self) -> Vec<String> {
        self.listed.sort_by_key(|(line, _)| *line);
        let mut messages: Vec<String> = self.listed.into_iter().map(|(_, m)| m).collect();
        if self.unlisted > 0 {
            messages.push(format!(
                "{}: {} more malformed lines on this page not listed",
                self.file, self.unlisted
            ));
        }
        messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `lines` lines where line `n` has timestamp `n / 4` (so runs of
    /// equal timestamps cross block boundaries) and line 4097 is garbage.
    fn numbered_file(lines: u64) -> (tempfile::TempDir, JsonlFile) {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (1..=lines)
            .map(|n| match n {
                4097 => "garbage\n".to_string(),
                _ => format!("{{\"t\":{}}}\n", n / 4),
            })
            .collect();
        std::fs::write(dir.path().join("x.jsonl"), text).unwrap();
        let ts = |line: &[u8]| -> Option<EpochMs> {
            let value: serde_json::Value = serde_json::from_slice(line).ok()?;
            value["t"].as_i64()
        };
        let file = JsonlFile::new(dir.path(), "x.jsonl", "test", ts, "t");
        (dir, file)
    }

    #[test]
    fn index_seeks_to_the_block_before_the_range() {
        let (_dir, file) = numbered_file(10_000);
        let index = file.index().unwrap();
        assert_eq!(index.blocks.len(), 3);
        assert!(index.sorted);
        // Block 1 starts with the garbage line 4097; its key is line 4098's time.
        let block1 = index.blocks[1];
        assert_eq!(block1.0.line, 4097);
        assert_eq!(block1.1, 4098 / 4);
        // Line 4096 (block 0) has the same time as block 1's key: start in block 0.
        assert_eq!(index.seek(1024), Position::START);
        assert_eq!(index.seek(1025), block1.0);
        assert_eq!(index.seek(EpochMs::MAX), index.blocks[2].0);
        // The block offsets are the real line starts.
        let mut seen = Vec::new();
        stream_lines(&file.path, block1.0, |line, pos| {
            seen.push((line.to_vec(), pos.line));
            ControlFlow::Break(())
        })
        .unwrap();
        assert_eq!(seen, [(b"garbage".to_vec(), 4097)]);
    }

    #[test]
    fn lines_longer_than_a_chunk_are_whole() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(CHUNK_BYTES * 2 + 17);
        std::fs::write(dir.path().join("x"), format!("a\r\n{long}\nb")).unwrap();
        let mut seen = Vec::new();
        stream_lines(&dir.path().join("x"), Position::START, |line, pos| {
            seen.push((line.len(), pos));
            ControlFlow::Continue(())
        })
        .unwrap();
        let second = Position { offset: 3, line: 2 };
        let third = Position {
            offset: 3 + long.len() as u64 + 1,
            line: 3,
        };
        assert_eq!(
            seen,
            [(1, Position::START), (long.len(), second), (1, third)]
        );
    }
}
