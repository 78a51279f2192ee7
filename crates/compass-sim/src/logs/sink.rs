//! One second's log lines: encoded JSON in an arena plus a sortable index, so a second
//! can be sorted by timestamp and written in one go.

use crate::bundle::{TimeFormatter, push_json_str};
use crate::templates::Level;
use crate::traces::push_hex_u128;

#[derive(Debug, Default)]
pub(super) struct Sink {
    pub arena: Vec<u8>,
    /// `(timestamp, sequence, start, end)` per line.
    pub recs: Vec<(i64, u64, usize, usize)>,
    pub seq: u64,
    fmt: TimeFormatter,
}

impl Sink {
    /// Appends one encoded line to `out`.
    fn encode(
        &mut self,
        out: &mut Vec<u8>,
        ts: i64,
        pod_json: &[u8],
        level: Level,
        trace: Option<u128>,
        msg: &str,
    ) {
        out.extend_from_slice(b"{\"timestamp\":");
        self.fmt.push_quoted(out, ts);
        out.extend_from_slice(pod_json);
        out.extend_from_slice(b",\"level\":\"");
        out.extend_from_slice(level.as_str().as_bytes());
        out.extend_from_slice(b"\",\"message\":");
        push_json_str(out, msg);
        if let Some(trace) = trace {
            out.extend_from_slice(b",\"trace_id\":\"");
            push_hex_u128(out, trace);
            out.push(b'"');
        }
        out.extend_from_slice(b"}\n");
    }

    /// An encoded line for later (it belongs to a future second) and its sequence number.
    pub fn line(
        &mut self,
        ts: i64,
        pod_json: &[u8],
        level: Level,
        trace: Option<u128>,
        msg: &str,
    ) -> (u64, Vec<u8>) {
        let mut out = Vec::with_capacity(96 + msg.len() + pod_json.len());
        self.encode(&mut out, ts, pod_json, level, trace, msg);
        self.seq += 1;
        (self.seq - 1, out)
    }

    /// Adds a line to this second.
    pub fn push(&mut self, ts: i64, pod_json: &[u8], level: Level, trace: Option<u128>, msg: &str) {
        let start = self.arena.len();
        let mut arena = std::mem::take(&mut self.arena);
        self.encode(&mut arena, ts, pod_json, level, trace, msg);
        self.arena = arena;
        self.recs.push((ts, self.seq, start, self.arena.len()));
        self.seq += 1;
    }

    /// Adds a line encoded earlier.
    pub fn push_raw(&mut self, ts: i64, seq: u64, bytes: &[u8]) {
        let start = self.arena.len();
        self.arena.extend_from_slice(bytes);
        self.recs.push((ts, seq, start, self.arena.len()));
    }

    pub fn clear(&mut self) {
        self.arena.clear();
        self.recs.clear();
    }
}
