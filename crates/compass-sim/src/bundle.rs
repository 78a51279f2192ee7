//! Writing the bundle's files: buffered file creation with errors that name the path,
//! JSON string escaping and RFC 3339 timestamps for the hand-written JSON lines, number
//! formatting for OpenMetrics, and the small JSON documents (manifest, incident, truth,
//! events) written through serde.

use crate::SimError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A buffered output file that remembers its path for error messages.
#[derive(Debug)]
pub(crate) struct Output {
    path: PathBuf,
    w: BufWriter<File>,
}

impl Output {
    pub(crate) fn create(dir: &Path, name: &str) -> Result<Output, SimError> {
        let path = dir.join(name);
        let file = File::create(&path).map_err(|source| SimError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Output {
            path,
            w: BufWriter::with_capacity(1 << 20, file),
        })
    }
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), SimError> {
        self.w.write_all(bytes).map_err(|source| SimError::Io {
            path: self.path.clone(),
            source,
        })
    }
    pub(crate) fn json<T: Serialize>(&mut self, value: &T, pretty: bool) -> Result<(), SimError> {
        let res = if pretty {
            serde_json::to_writer_pretty(&mut self.w, value)
        } else {
            serde_json::to_writer(&mut self.w, value)
        };
        res.map_err(|e| SimError::Io {
            path: self.path.clone(),
            source: e.into(),
        })?;
        self.write(b"\n")
    }
    pub(crate) fn finish(mut self) -> Result<(), SimError> {
        self.w.flush().map_err(|source| SimError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Appends `s` as a JSON string literal (with quotes).
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// RFC 3339 UTC with milliseconds (`2026-11-02T09:00:00.000Z`).
pub(crate) fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Formats timestamps fast by caching the `YYYY-MM-DDTHH:MM:SS.` prefix of the last second.
#[derive(Debug, Default)]
pub(crate) struct TimeFormatter {
    second: Option<i64>,
    prefix: Vec<u8>,
}

impl TimeFormatter {
    /// Appends the quoted timestamp for `ms`.
    pub(crate) fn push_quoted(&mut self, out: &mut Vec<u8>, ms: i64) {
        let second = ms.div_euclid(1000);
        if self.second != Some(second) {
            let full = rfc3339(second * 1000);
            self.prefix.clear();
            self.prefix
                .extend_from_slice(&full.as_bytes()[..full.len() - 4]);
            self.second = Some(second);
        }
        let milli = ms.rem_euclid(1000) as u32;
        out.push(b'"');
        out.extend_from_slice(&self.prefix);
        out.push(b'0' + (milli / 100) as u8);
        out.push(b'0' + (milli / 10 % 10) as u8);
        out.push(b'0' + (milli % 10) as u8);
        out.extend_from_slice(b"Z\"");
    }
}

/// Appends an unsigned integer in decimal.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends `v` with at most three decimals, trailing zeros trimmed (`0.25`, `12`, `3.142`).
pub(crate) fn push_num(out: &mut Vec<u8>, v: f64) {
    let milli = (v * 1000.0).round();
    if !milli.is_finite() {
        out.extend_from_slice(b"0");
        return;
    }
    let milli = milli as i64;
    if milli < 0 {
        out.push(b'-');
    }
    let m = milli.unsigned_abs();
    push_u64(out, m / 1000);
    let frac = m % 1000;
    if frac != 0 {
        out.push(b'.');
        let digits = [
            (frac / 100) as u8,
            (frac / 10 % 10) as u8,
            (frac % 10) as u8,
        ];
        let keep = if digits[2] != 0 {
            3
        } else if digits[1] != 0 {
            2
        } else {
            1
        };
        out.extend(digits[..keep].iter().map(|d| b'0' + d));
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Manifest<'a> {
    pub format: &'static str,
    pub generator: String,
    pub scenario: &'a str,
    pub seed: u64,
    pub start: String,
    pub end: String,
    pub services: &'a [String],
    pub step_seconds: i64,
}

#[derive(Debug, Serialize)]
pub(crate) struct IncidentFile<'a> {
    pub id: String,
    pub title: &'a str,
    pub severity: &'static str,
    pub start: String,
    pub affected_services: Vec<&'a str>,
    pub labels: BTreeMap<&'static str, String>,
    pub origin: &'static str,
}

#[derive(Debug, Serialize)]
pub(crate) struct Truth<'a> {
    pub service: &'a str,
    pub fault_kind: &'static str,
    pub start: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct EventLine<'a> {
    pub timestamp: String,
    pub kind: &'static str,
    pub service: &'a str,
    pub description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_json_strings() {
        let mut out = Vec::new();
        push_json_str(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(String::from_utf8(out).unwrap(), r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn formats_timestamps() {
        let mut f = TimeFormatter::default();
        let mut out = Vec::new();
        f.push_quoted(&mut out, 1_793_610_000_123);
        f.push_quoted(&mut out, 1_793_610_000_007);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"2026-11-02T09:00:00.123Z\"\"2026-11-02T09:00:00.007Z\""
        );
        assert_eq!(rfc3339(1_793_610_000_000), "2026-11-02T09:00:00.000Z");
    }

    #[test]
    fn formats_numbers() {
        let mut out = Vec::new();
        for v in [0.25, 12.0, 1.23456, 0.0, 1793610000.0, 0.1] {
            push_num(&mut out, v);
            out.push(b' ');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "0.25 12 1.235 0 1793610000 0.1 "
        );
    }
}
