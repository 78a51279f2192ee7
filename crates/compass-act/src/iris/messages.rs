//! IRIS `messages.log`: one line per event,
//! `MM/DD/YY-HH:MM:SS:mmm (pid) severity [component] message`, severity 0 (information)
//! to 3 (fatal). Lines that do not start with a timestamp continue the previous message.
//! The file is written in the instance's local time: the caller passes its UTC offset.

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use compass_core::data::{LineOrigin, LogLevel, LogRecord};
use compass_core::logmine::{MinerConfig, TemplateMiner};
use compass_core::model::EpochMs;
use serde::Serialize;

/// One event of `messages.log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IrisMessage {
    pub ts: EpochMs,
    pub pid: u32,
    /// 0 information, 1 warning, 2 severe, 3 fatal.
    pub severity: u8,
    /// The bracketed component (`Utility.Event`, `Generic.Event`), when the line has one.
    pub component: Option<String>,
    pub message: String,
    /// 1-based line number of the event's first line.
    pub line: u64,
}

/// A line that starts like an event but is not one, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LineError {
    pub line: u64,
    pub reason: String,
}

/// A parsed `messages.log`: the events in file order and the lines that were refused.
#[derive(Debug, Clone, Default)]
pub struct MessagesLog {
    pub messages: Vec<IrisMessage>,
    pub refused: Vec<LineError>,
}

/// The severity as a COMPASS log level.
pub fn level_of(severity: u8) -> LogLevel {
    match severity {
        0 => LogLevel::Info,
        1 => LogLevel::Warn,
        2 => LogLevel::Error,
        _ => LogLevel::Fatal,
    }
}

/// Parses a whole `messages.log`. `utc_offset` is the instance's offset from UTC.
pub fn parse(text: &str, utc_offset: FixedOffset) -> MessagesLog {
    let mut out = MessagesLog::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let raw = raw.trim_end_matches('\r');
        if raw.trim().is_empty() {
            continue;
        }
        if !starts_with_timestamp(raw) {
            match out.messages.last_mut() {
                Some(prev) => {
                    prev.message.push('\n');
                    prev.message.push_str(raw.trim_end());
                }
                None => out.refused.push(LineError {
                    line,
                    reason: "text before the first timestamped event".into(),
                }),
            }
            continue;
        }
        match parse_line(raw, line, utc_offset) {
            Ok(m) => out.messages.push(m),
            Err(e) => out.refused.push(e),
        }
    }
    out
}

fn starts_with_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 21
        && b[2] == b'/'
        && b[5] == b'/'
        && b[8] == b'-'
        && b[..2].iter().all(u8::is_ascii_digit)
}

/// Parses one event line (`line` is its 1-based number, for errors).
pub fn parse_line(s: &str, line: u64, utc_offset: FixedOffset) -> Result<IrisMessage, LineError> {
    let err = |reason: String| LineError { line, reason };
    let (stamp, rest) = s
        .split_at_checked(21)
        .ok_or_else(|| err("line too short".into()))?;
    let ts = parse_timestamp(stamp, utc_offset)
        .ok_or_else(|| err(format!("timestamp `{stamp}` is not MM/DD/YY-HH:MM:SS:mmm")))?;
    let rest = rest.trim_start();
    let rest = rest
        .strip_prefix('(')
        .ok_or_else(|| err("expected `(pid)` after the timestamp".into()))?;
    let (pid, rest) = rest
        .split_once(')')
        .ok_or_else(|| err("unclosed `(pid`".into()))?;
    let pid: u32 = pid
        .trim()
        .parse()
        .map_err(|_| err(format!("process id `{pid}` is not a number")))?;
    let rest = rest.trim_start();
    let (sev, rest) = rest.split_at_checked(1).unwrap_or(("", ""));
    let severity = match sev {
        "0" | "1" | "2" | "3" => sev.as_bytes()[0] - b'0',
        _ => return Err(err(format!("severity `{sev}` is not 0, 1, 2 or 3"))),
    };
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(err("severity must be one digit followed by a space".into()));
    }
    let rest = rest.trim_start();
    let (component, message) = match rest.strip_prefix('[') {
        Some(r) => {
            let (c, m) = r
                .split_once(']')
                .ok_or_else(|| err("unclosed `[component`".into()))?;
            (Some(c.to_string()), m.trim_start())
        }
        None => (None, rest),
    };
    Ok(IrisMessage {
        ts,
        pid,
        severity,
        component,
        message: message.trim_end().to_string(),
        line,
    })
}

fn parse_timestamp(s: &str, utc_offset: FixedOffset) -> Option<EpochMs> {
    // MM/DD/YY-HH:MM:SS:mmm
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if s.len() != 21 || &s[11..12] != ":" || &s[14..15] != ":" || &s[17..18] != ":" {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(2000 + num(6..8)? as i32, num(0..2)?, num(3..5)?)?;
    let time =
        NaiveTime::from_hms_milli_opt(num(9..11)?, num(12..14)?, num(15..17)?, num(18..21)?)?;
    let local = NaiveDateTime::new(date, time);
    let at = utc_offset.from_local_datetime(&local).single()?;
    Some(at.timestamp_millis())
}

impl IrisMessage {
    /// The event as a COMPASS log record of `instance` (service and pod), with its origin.
    pub fn to_log_record(&self, instance: &str, path: &str) -> LogRecord {
        let message = match &self.component {
            Some(c) => format!("[{c}] {}", self.message),
            None => self.message.clone(),
        };
        LogRecord {
            ts: self.ts,
            service: instance.to_string(),
            pod: instance.to_string(),
            level: level_of(self.severity),
            message,
            trace_id: None,
            origin: Some(LineOrigin {
                path: path.to_string(),
                line: self.line,
            }),
        }
    }
}

/// A message pattern present in a log: its template, how often it occurred, the worst
/// severity seen with it and the first line it appeared on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pattern {
    pub template: String,
    pub count: u64,
    pub max_severity: u8,
    pub first_line: u64,
}

/// Learns the message patterns present in a log (the template miner over the messages,
/// component included), most frequent first.
pub fn learn_patterns(messages: &[IrisMessage]) -> Vec<Pattern> {
    let (mut out, _) = mine(messages);
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_line.cmp(&b.first_line)));
    out
}

/// The patterns indexed by id, and each message's pattern id.
pub fn mine(messages: &[IrisMessage]) -> (Vec<Pattern>, Vec<usize>) {
    let mut miner = TemplateMiner::new(MinerConfig::default());
    let mut seen: Vec<(u8, u64)> = Vec::new();
    let mut ids = Vec::with_capacity(messages.len());
    for m in messages {
        let text = match &m.component {
            Some(c) => format!("[{c}] {}", first_line(&m.message)),
            None => first_line(&m.message).to_string(),
        };
        let idx = miner.add(&text) as usize;
        ids.push(idx);
        if seen.len() <= idx {
            seen.resize(idx + 1, (0, u64::MAX));
        }
        let slot = &mut seen[idx];
        slot.0 = slot.0.max(m.severity);
        slot.1 = slot.1.min(m.line);
    }
    // template ids are dense and in creation order: the list is indexed by id
    let out = miner
        .templates()
        .map(|(id, template, count)| {
            let (max_severity, first_line) = seen.get(id as usize).copied().unwrap_or((0, 0));
            Pattern {
                template: template.to_string(),
                count,
                max_severity,
                first_line,
            }
        })
        .collect();
    (out, ids)
}

fn first_line(s: &str) -> &str {
    s.split('\n').next().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    const LOG: &str = "\
03/14/24-09:26:53:011 (8812) 0 [Generic.Event] Allocated 1139MB shared memory
03/14/24-09:26:53:402 (8812) 0 [Generic.Event] Journal file /iris/mgr/journal/20240314.001 opened
03/14/24-09:30:01:950 (9120) 2 [Utility.Event] Error: <FILEFULL> Journal file system is full
  continuation with detail
03/14/24-09:30:02:000 (9120) 1 [Utility.Event] Journal daemon: write failed on /iris/mgr/journal/20240314.001
03/14/24-09:30:05:500 (9133) 3 License limit exceeded
";

    #[test]
    fn parses_events_severities_components_and_continuations() {
        let log = parse(LOG, utc());
        assert!(log.refused.is_empty(), "{:?}", log.refused);
        assert_eq!(log.messages.len(), 5);
        let full = &log.messages[2];
        assert_eq!(full.pid, 9120);
        assert_eq!(full.severity, 2);
        assert_eq!(full.component.as_deref(), Some("Utility.Event"));
        assert!(full.message.ends_with("continuation with detail"));
        assert_eq!(full.line, 3);
        // 2024-03-14T09:30:01.950Z
        assert_eq!(full.ts, 1_710_408_601_950);
        assert_eq!(log.messages[4].component, None);
        assert_eq!(level_of(log.messages[4].severity), LogLevel::Fatal);
        let rec = full.to_log_record("iris-a", "/iris/mgr/messages.log");
        assert_eq!(rec.level, LogLevel::Error);
        assert_eq!(rec.origin.unwrap().line, 3);
        assert!(rec.message.starts_with("[Utility.Event] Error: <FILEFULL>"));
    }

    #[test]
    fn local_time_is_converted_with_the_offset() {
        let cet = FixedOffset::east_opt(3600).unwrap();
        let m = parse_line("03/14/24-10:30:01:950 (1) 0 x", 1, cet).unwrap();
        assert_eq!(m.ts, 1_710_408_601_950);
    }

    #[test]
    fn bad_lines_are_refused_with_the_reason() {
        let cases = [
            ("13/14/24-09:30:01:950 (1) 0 x", "timestamp"),
            ("03/14/24-09:30:01:950 1 0 x", "(pid)"),
            ("03/14/24-09:30:01:950 (abc) 0 x", "process id"),
            ("03/14/24-09:30:01:950 (1) 7 x", "severity `7`"),
            ("03/14/24-09:30:01:950 (1) 0 [Generic x", "unclosed"),
        ];
        for (line, want) in cases {
            let e = parse_line(line, 4, utc()).unwrap_err();
            assert_eq!(e.line, 4);
            assert!(e.reason.contains(want), "{line}: {}", e.reason);
        }
        let log = parse("orphan text\n03/14/24-09:30:01:950 (1) 9 x\n", utc());
        assert_eq!(log.refused.len(), 2);
        assert!(log.messages.is_empty());
    }

    #[test]
    fn learns_patterns_with_their_worst_severity() {
        let mut text = String::new();
        for i in 0..20 {
            text.push_str(&format!(
                "03/14/24-09:{:02}:00:000 ({}) 0 [Generic.Event] Journal file /j/2024.{:03} opened\n",
                i, 100 + i, i
            ));
        }
        text.push_str("03/14/24-09:59:00:000 (7) 2 [Utility.Event] Error: <FILEFULL> Journal file system is full\n");
        let log = parse(&text, utc());
        let pats = learn_patterns(&log.messages);
        assert_eq!(pats.len(), 2, "{pats:?}");
        assert_eq!(pats[0].count, 20);
        assert!(pats[0].template.contains("<*>"), "{}", pats[0].template);
        assert_eq!(pats[0].max_severity, 0);
        assert_eq!(pats[1].max_severity, 2);
        assert_eq!(pats[1].first_line, 21);
    }
}
