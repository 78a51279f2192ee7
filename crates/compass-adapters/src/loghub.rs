//! Loghub log samples: the header formats of the Loghub benchmark (which part of a line
//! is the message), the ground-truth structured CSV files, and writing COMPASS's own
//! parse in the same `LineId,EventId,EventTemplate` shape.
//!
//! A header format is the Loghub convention: `<Field>` placeholders between regular
//! expression fragments, runs of spaces matching any whitespace, `<Content>` the message.
//! Lines that do not match the header are skipped and do not get a `LineId`, as in the
//! benchmark (so line ids match the ground-truth files).

use regex::Regex;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The Loghub benchmark's header format of each system.
pub const LOGHUB_FORMATS: &[(&str, &str)] = &[
    (
        "Android",
        "<Date> <Time>  <Pid>  <Tid> <Level> <Component>: <Content>",
    ),
    ("Apache", r"\[<Time>\] \[<Level>\] <Content>"),
    (
        "BGL",
        "<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>",
    ),
    ("HDFS", "<Date> <Time> <Pid> <Level> <Component>: <Content>"),
    (
        "HPC",
        "<LogId> <Node> <Component> <State> <Time> <Flag> <Content>",
    ),
    (
        "Hadoop",
        r"<Date> <Time> <Level> \[<Process>\] <Component>: <Content>",
    ),
    ("HealthApp", r"<Time>\|<Component>\|<Pid>\|<Content>"),
    (
        "Linux",
        r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>",
    ),
    (
        "Mac",
        r"<Month>  <Date> <Time> <User> <Component>\[<PID>\]( \(<Address>\))?: <Content>",
    ),
    (
        "OpenSSH",
        r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>",
    ),
    (
        "OpenStack",
        r"<Logrecord> <Date> <Time> <Pid> <Level> <Component> \[<ADDR>\] <Content>",
    ),
    ("Proxifier", r"\[<Time>\] <Program> - <Content>"),
    ("Spark", "<Date> <Time> <Level> <Component>: <Content>"),
    (
        "Thunderbird",
        r"<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location> <Component>(\[<PID>\])?: <Content>",
    ),
    (
        "Windows",
        "<Date> <Time>, <Level>                  <Component>    <Content>",
    ),
    (
        "Zookeeper",
        r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>",
    ),
];

/// The built-in header format of a Loghub system, by name (case-sensitive).
pub fn format_for(system: &str) -> Option<&'static str> {
    LOGHUB_FORMATS
        .iter()
        .find(|(s, _)| *s == system)
        .map(|(_, f)| *f)
}

#[derive(Debug, Error)]
pub enum LoghubError {
    #[error("bad log format {format:?}: {reason}")]
    BadFormat { format: String, reason: String },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {detail}", path.display())]
    BadCsv { path: PathBuf, detail: String },
    #[error("cannot write {}: {detail}", path.display())]
    Write { path: PathBuf, detail: String },
}

/// A compiled header format.
#[derive(Debug, Clone)]
pub struct HeaderFormat {
    regex: Regex,
}

impl HeaderFormat {
    /// Compile a Loghub-style format; it must contain `<Content>`.
    pub fn parse(format: &str) -> Result<HeaderFormat, LoghubError> {
        let bad = |reason: String| LoghubError::BadFormat {
            format: format.to_string(),
            reason,
        };
        let placeholder = Regex::new(r"<([A-Za-z][A-Za-z0-9_]*)>").expect("valid regex");
        let spaces = Regex::new(" +").expect("valid regex");
        let mut pattern = String::from("^");
        let mut last = 0;
        let mut has_content = false;
        for m in placeholder.captures_iter(format) {
            let whole = m.get(0).expect("match");
            let name = &m[1];
            pattern.push_str(&spaces.replace_all(&format[last..whole.start()], r"\s+"));
            pattern.push_str(&format!("(?P<{name}>.*?)"));
            has_content |= name == "Content";
            last = whole.end();
        }
        pattern.push_str(&spaces.replace_all(&format[last..], r"\s+"));
        pattern.push('$');
        if !has_content {
            return Err(bad("it has no <Content> field".to_string()));
        }
        let regex = Regex::new(&pattern).map_err(|e| bad(e.to_string()))?;
        Ok(HeaderFormat { regex })
    }

    /// The message part of `line`, or `None` when the line does not match the header.
    pub fn content<'a>(&self, line: &'a str) -> Option<&'a str> {
        self.regex
            .captures(line)
            .and_then(|c| c.name("Content"))
            .map(|m| m.as_str())
    }
}

/// One line of a ground-truth (or predicted) structured file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructuredLine {
    pub line_id: u64,
    pub event_id: String,
    pub template: String,
}

/// Read `LineId`, `EventId` and `EventTemplate` from a Loghub structured CSV.
pub fn read_structured(path: &Path) -> Result<Vec<StructuredLine>, LoghubError> {
    let bad = |detail: String| LoghubError::BadCsv {
        path: path.to_path_buf(),
        detail,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| bad(e.to_string()))?;
    let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            bad(format!(
                "no {name} column (columns: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            ))
        })
    };
    let (id_col, event_col, template_col) = (
        column("LineId")?,
        column("EventId")?,
        column("EventTemplate")?,
    );
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(e.to_string()))?;
        let field = |c: usize| record.get(c).unwrap_or("").to_string();
        let line_id = field(id_col).parse().map_err(|_| {
            bad(format!(
                "row {}: LineId {:?} is not a number",
                i + 2,
                field(id_col)
            ))
        })?;
        out.push(StructuredLine {
            line_id,
            event_id: field(event_col),
            template: field(template_col),
        });
    }
    Ok(out)
}

/// Write `LineId,EventId,EventTemplate` rows (CSV-quoted where needed).
pub fn write_structured(path: &Path, rows: &[StructuredLine]) -> Result<(), LoghubError> {
    let fail = |detail: String| LoghubError::Write {
        path: path.to_path_buf(),
        detail,
    };
    let mut writer = csv::Writer::from_path(path).map_err(|e| fail(e.to_string()))?;
    writer
        .write_record(["LineId", "EventId", "EventTemplate"])
        .map_err(|e| fail(e.to_string()))?;
    for r in rows {
        writer
            .write_record([r.line_id.to_string().as_str(), &r.event_id, &r.template])
            .map_err(|e| fail(e.to_string()))?;
    }
    writer.flush().map_err(|e| fail(e.to_string()))
}

/// The messages of a raw Loghub log file: `(line_id, content)` for every line that
/// matches the header, numbered from 1 in that order; plus how many lines did not match.
pub fn read_contents(
    path: &Path,
    format: &HeaderFormat,
) -> Result<(Vec<(u64, String)>, u64), LoghubError> {
    let bytes = std::fs::read(path).map_err(|source| LoghubError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let mut out = Vec::new();
    let mut unmatched = 0u64;
    for line in text.lines() {
        match format.content(line.trim_end_matches('\r')) {
            Some(content) => out.push((out.len() as u64 + 1, content.to_string())),
            None => unmatched += 1,
        }
    }
    Ok((out, unmatched))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_system_has_a_compilable_format() {
        assert_eq!(LOGHUB_FORMATS.len(), 16);
        for (system, format) in LOGHUB_FORMATS {
            HeaderFormat::parse(format).unwrap_or_else(|e| panic!("{system}: {e}"));
        }
    }

    #[test]
    fn content_is_what_follows_the_header() {
        let cases = [
            (
                "Apache",
                "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/x",
                "workerEnv.init() ok /etc/x",
            ),
            (
                "HDFS",
                "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating",
                "PacketResponder 1 for block blk_38865049064139660 terminating",
            ),
            (
                "Linux",
                "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname=",
                "authentication failure; logname=",
            ),
            (
                "Linux",
                "Jun 15 04:06:18 combo su(pam_unix): session opened for user cyrus",
                "session opened for user cyrus",
            ),
            (
                "Zookeeper",
                "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time out: 3200",
                "Notification time out: 3200",
            ),
            (
                "HealthApp",
                "20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579",
                "onStandStepChanged 3579",
            ),
        ];
        for (system, line, content) in cases {
            let f = HeaderFormat::parse(format_for(system).unwrap()).unwrap();
            assert_eq!(f.content(line), Some(content), "{system}: {line}");
        }
    }

    #[test]
    fn a_line_without_the_header_does_not_match() {
        let f = HeaderFormat::parse(format_for("Apache").unwrap()).unwrap();
        assert_eq!(f.content("no brackets here"), None);
    }

    #[test]
    fn a_format_without_content_is_refused() {
        let e = HeaderFormat::parse("<Date> <Time>").unwrap_err();
        assert!(e.to_string().contains("<Content>"), "{e}");
    }

    #[test]
    fn structured_files_round_trip_with_quoting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x_structured.csv");
        let rows = vec![
            StructuredLine {
                line_id: 1,
                event_id: "E1".into(),
                template: "open <*>, mode \"rw\"".into(),
            },
            StructuredLine {
                line_id: 2,
                event_id: "E2".into(),
                template: "close".into(),
            },
        ];
        write_structured(&path, &rows).unwrap();
        assert_eq!(read_structured(&path).unwrap(), rows);
    }

    #[test]
    fn structured_file_without_columns_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, "LineId,Content\n1,x\n").unwrap();
        let e = read_structured(&path).unwrap_err().to_string();
        assert!(e.contains("bad.csv") && e.contains("EventId"), "{e}");
    }

    #[test]
    fn unmatched_lines_get_no_line_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, "[t1] [notice] one\ngarbage\n[t2] [error] two\r\n").unwrap();
        let f = HeaderFormat::parse(format_for("Apache").unwrap()).unwrap();
        let (lines, unmatched) = read_contents(&path, &f).unwrap();
        assert_eq!(lines, vec![(1, "one".to_string()), (2, "two".to_string())]);
        assert_eq!(unmatched, 1);
    }
}
