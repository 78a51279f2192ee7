//! Timestamps of log lines. [`parse_timestamp`] tries one table of text formats, in
//! order, at the start of a text; [`epoch_to_ms`] reads epoch numbers (JSON fields);
//! [`line_timestamp`] finds the timestamp of a plain-text line (at its start, in a
//! logfmt `time=`/`ts=` field, or in an Apache/nginx `[10/Oct/2000:13:55:36 -0700]`).
//!
//! Times without an offset are UTC. Syslog times (`Jan  5 10:00:00`) carry no year: it
//! is the year that puts the time nearest a reference instant (the caller passes one
//! taken from the query range), so a December line read for a January window gets the
//! previous year.

use chrono::format::{Parsed, StrftimeItems, parse_and_remainder};
use chrono::{Datelike, TimeZone, Utc};
use compass_core::EpochMs;

/// How a format tells the time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Zone {
    /// The text carries an offset (`Z`, `+02:00`, `-0700`).
    Offset,
    /// No offset: UTC.
    Utc,
    /// No offset and no year (syslog): UTC, year nearest the reference instant.
    UtcNoYear,
}

/// The text formats (chrono `strftime` syntax), tried in order. A format with an offset
/// comes before the same one without, so a trailing `Z` or `+02:00` is read, not left
/// over; `%.f` is an optional fraction of any length; `%#z` is `Z`, `+hh`, `+hhmm` or
/// `+hh:mm`.
const FORMATS: &[(&str, Zone)] = &[
    // RFC 3339 / ISO 8601 with `T`.
    ("%Y-%m-%dT%H:%M:%S%.f%#z", Zone::Offset),
    ("%Y-%m-%dT%H:%M:%S%.f", Zone::Utc),
    // ISO 8601 with a space (Go's default format puts a space before the offset).
    ("%Y-%m-%d %H:%M:%S%.f%#z", Zone::Offset),
    // log4j and Python logging write a comma before the milliseconds.
    ("%Y-%m-%d %H:%M:%S,%3f", Zone::Utc),
    ("%Y-%m-%d %H:%M:%S%.f", Zone::Utc),
    // nginx error log, Go's `log` package.
    ("%Y/%m/%d %H:%M:%S%.f", Zone::Utc),
    // Apache/nginx common and combined log format.
    ("[%d/%b/%Y:%H:%M:%S %z]", Zone::Offset),
    // BSD syslog (RFC 3164).
    ("%b %e %H:%M:%S", Zone::UtcNoYear),
];

/// A timestamp read from the start of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub ms: EpochMs,
    /// Bytes of the text the timestamp took.
    pub len: usize,
    /// The format had no year (it was chosen from the reference instant).
    pub yearless: bool,
}

/// The timestamp at the very start of `text`, trying [`FORMATS`] in order; `year_ref`
/// (epoch ms) picks the year of formats without one.
pub fn parse_timestamp(text: &str, year_ref: EpochMs) -> Option<Timestamp> {
    let first = *text.as_bytes().first()?;
    FORMATS.iter().find_map(|&(format, zone)| {
        if !could_start(format, first) {
            return None;
        }
        let mut parsed = Parsed::new();
        let rest = parse_and_remainder(&mut parsed, text, StrftimeItems::new(format)).ok()?;
        let ms = match zone {
            Zone::Offset => parsed.to_datetime().ok()?.timestamp_millis(),
            Zone::Utc => parsed
                .to_naive_datetime_with_offset(0)
                .ok()?
                .and_utc()
                .timestamp_millis(),
            Zone::UtcNoYear => nearest_year(&parsed, year_ref)?,
        };
        Some(Timestamp {
            ms,
            len: text.len() - rest.len(),
            yearless: zone == Zone::UtcNoYear,
        })
    })
}

/// Whether a text starting with `first` can match `format` (saves trying formats that
/// cannot: a digit for `%Y`, a letter for `%b`, the literal byte otherwise).
fn could_start(format: &str, first: u8) -> bool {
    match format.as_bytes() {
        [b'%', b'Y' | b'd', ..] => first.is_ascii_digit(),
        [b'%', b'b', ..] => first.is_ascii_alphabetic(),
        [literal, ..] => *literal == first,
        [] => false,
    }
}

/// The epoch ms of a yearless parse in the year (reference year or either neighbour)
/// that puts it nearest `year_ref`.
fn nearest_year(parsed: &Parsed, year_ref: EpochMs) -> Option<EpochMs> {
    let ref_year = Utc.timestamp_millis_opt(year_ref).single()?.year();
    (ref_year - 1..=ref_year + 1)
        .filter_map(|year| {
            let mut with_year = parsed.clone();
            with_year.set_year(i64::from(year)).ok()?;
            let ms = with_year
                .to_naive_datetime_with_offset(0)
                .ok()?
                .and_utc()
                .timestamp_millis();
            Some(ms)
        })
        .min_by_key(|ms| (ms - year_ref).abs())
}

/// Epoch seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude
/// (below 10^11 seconds, below 10^14 milliseconds, below 10^17 microseconds, else
/// nanoseconds: each boundary is the year 5138 in the smaller unit). Not positive or
/// not finite: `None`.
pub fn epoch_to_ms(value: f64) -> Option<EpochMs> {
    if !value.is_finite() || value <= 0.0 {
        return None;
    }
    let ms = if value < 1e11 {
        value * 1e3
    } else if value < 1e14 {
        value
    } else if value < 1e17 {
        value / 1e3
    } else {
        value / 1e6
    };
    // In range by the checks above (at most ~9.2e12 for i64 nanoseconds).
    Some(ms.floor() as EpochMs)
}

/// Where a plain-text line's timestamp was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTimestamp {
    pub ts: Timestamp,
    /// Bytes at the start of the line taken by the timestamp (and a bracket around
    /// it), `0` when the timestamp was elsewhere in the line.
    pub prefix_len: usize,
}

/// How far into a line to look for a bracketed common-log-format timestamp.
const CLF_SEARCH_BYTES: usize = 256;

/// The timestamp of a plain-text line: at its start (optionally in `[...]`), else a
/// logfmt `time=` or `ts=` field, else a `[dd/Mon/yyyy:HH:MM:SS ±zzzz]` in its first
/// 256 bytes. A line that starts with whitespace has none (it continues a record).
pub fn line_timestamp(line: &str, year_ref: EpochMs) -> Option<LineTimestamp> {
    if let Some(ts) = parse_timestamp(line, year_ref) {
        return Some(LineTimestamp {
            ts,
            prefix_len: ts.len,
        });
    }
    if let Some(inner) = line.strip_prefix('[')
        && let Some(ts) = parse_timestamp(inner, year_ref)
    {
        let closing = usize::from(inner[ts.len..].starts_with(']'));
        return Some(LineTimestamp {
            ts,
            prefix_len: 1 + ts.len + closing,
        });
    }
    if line.starts_with(char::is_whitespace) {
        return None;
    }
    if let Some(ts) = logfmt_timestamp(line, year_ref) {
        return Some(LineTimestamp { ts, prefix_len: 0 });
    }
    let head = &line.as_bytes()[..line.len().min(CLF_SEARCH_BYTES)];
    memchr::memchr_iter(b'[', head)
        .filter_map(|at| parse_timestamp(&line[at..], year_ref))
        .map(|ts| LineTimestamp { ts, prefix_len: 0 })
        .next()
}

/// The value of a logfmt `time=` or `ts=` field (quoted or not), parsed whole.
fn logfmt_timestamp(line: &str, year_ref: EpochMs) -> Option<Timestamp> {
    ["time=", "ts="].iter().find_map(|key| {
        let at = line
            .match_indices(key)
            .find(|&(at, _)| at == 0 || line.as_bytes()[at - 1] == b' ')?
            .0;
        let value = &line[at + key.len()..];
        let value = match value.strip_prefix('"') {
            Some(quoted) => &quoted[..quoted.find('"')?],
            None => &value[..value.find(' ').unwrap_or(value.len())],
        };
        parse_timestamp(value, year_ref).filter(|ts| value[ts.len..].trim().is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REF_2024: EpochMs = 1_718_000_000_000; // 2024-06-10

    fn ms(rfc3339: &str) -> EpochMs {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .expect("valid test time")
            .timestamp_millis()
    }

    fn at_start(text: &str) -> Option<(EpochMs, &str)> {
        parse_timestamp(text, REF_2024).map(|t| (t.ms, &text[t.len..]))
    }

    #[test]
    fn rfc3339_with_t_fraction_and_offset() {
        let want = ms("2024-03-01T10:00:00.123+02:00");
        assert_eq!(
            at_start("2024-03-01T10:00:00.123+02:00 x"),
            Some((want, " x"))
        );
        assert_eq!(
            at_start("2024-03-01T08:00:00.123Z x"),
            Some((want, " x")),
            "Z is UTC"
        );
        assert_eq!(at_start("2024-03-01T10:00:00.123+0200"), Some((want, "")));
        assert_eq!(
            at_start("2024-03-01T08:00:00.123456789Z"),
            Some((want, "")),
            "nanoseconds truncate to ms"
        );
    }

    #[test]
    fn iso_without_offset_is_utc() {
        let want = ms("2024-03-01T10:00:00Z");
        assert_eq!(at_start("2024-03-01T10:00:00 x"), Some((want, " x")));
        assert_eq!(at_start("2024-03-01 10:00:00 x"), Some((want, " x")));
        assert_eq!(
            at_start("2024-03-01 10:00:00.5 x"),
            Some((want + 500, " x"))
        );
    }

    #[test]
    fn iso_with_space_and_offset() {
        assert_eq!(
            at_start("2024-03-01 12:00:00+02:00 x"),
            Some((ms("2024-03-01T10:00:00Z"), " x"))
        );
        assert_eq!(
            at_start("2024-03-01 03:00:00.250 -0700 MST x"),
            Some((ms("2024-03-01T10:00:00.250Z"), " MST x")),
            "Go's default time format"
        );
    }

    #[test]
    fn comma_milliseconds() {
        assert_eq!(
            at_start("2024-03-01 10:00:00,042 INFO x"),
            Some((ms("2024-03-01T10:00:00.042Z"), " INFO x"))
        );
    }

    #[test]
    fn slashed_date() {
        assert_eq!(
            at_start("2024/03/01 10:00:00 [error] x"),
            Some((ms("2024-03-01T10:00:00Z"), " [error] x"))
        );
    }

    #[test]
    fn common_log_format() {
        assert_eq!(
            at_start("[10/Oct/2000:13:55:36 -0700] \"GET /\""),
            Some((ms("2000-10-10T20:55:36Z"), " \"GET /\""))
        );
    }

    #[test]
    fn syslog_takes_the_year_nearest_the_reference() {
        let t = parse_timestamp("Mar  1 10:00:00 host app: x", REF_2024).expect("syslog");
        assert_eq!(t.ms, ms("2024-03-01T10:00:00Z"));
        assert!(t.yearless);
        let jan_2025 = ms("2025-01-02T00:00:00Z");
        let t = parse_timestamp("Dec 31 23:59:00 host app: x", jan_2025).expect("syslog");
        assert_eq!(t.ms, ms("2024-12-31T23:59:00Z"), "previous year");
        let t = parse_timestamp("Jan 12 01:00:00 host", REF_2024).expect("two-digit day");
        assert_eq!(t.ms, ms("2024-01-12T01:00:00Z"));
    }

    #[test]
    fn not_a_timestamp() {
        for text in [
            "",
            "hello",
            "12345 foo",
            "2024-13-01T00:00:00Z",
            "   at x.y(Z.java:1)",
        ] {
            assert_eq!(parse_timestamp(text, REF_2024), None, "{text:?}");
        }
    }

    #[test]
    fn epochs_by_magnitude() {
        let want = 1_700_000_000_123;
        assert_eq!(epoch_to_ms(1_700_000_000.123), Some(want));
        assert_eq!(epoch_to_ms(1_700_000_000_123.0), Some(want));
        assert_eq!(epoch_to_ms(1_700_000_000_123_456.0), Some(want));
        assert_eq!(epoch_to_ms(1.700_000_000_123_456_7e18), Some(want));
        assert_eq!(epoch_to_ms(-1.0), None);
        assert_eq!(epoch_to_ms(f64::NAN), None);
    }

    #[test]
    fn line_timestamps() {
        let want = ms("2024-03-01T10:00:00Z");
        let found = |line: &str| line_timestamp(line, REF_2024).map(|t| (t.ts.ms, t.prefix_len));
        assert_eq!(found("2024-03-01T10:00:00Z INFO x"), Some((want, 20)));
        assert_eq!(
            found("[2024-03-01 10:00:00,000] INFO x"),
            Some((want, 25)),
            "bracketed"
        );
        assert_eq!(
            found("level=info time=\"2024-03-01T10:00:00Z\" msg=x"),
            Some((want, 0)),
            "logrus"
        );
        assert_eq!(
            found("ts=2024-03-01T10:00:00Z level=info msg=x"),
            Some((want, 0)),
            "go-kit"
        );
        assert_eq!(
            found("10.0.0.1 - - [01/Mar/2024:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1"),
            Some((want, 0)),
            "common log format"
        );
        assert_eq!(found("\tat com.example.Foo(Foo.java:10)"), None);
        assert_eq!(found("Caused by: java.io.IOException"), None);
        assert_eq!(found("runtime=3s ok"), None, "only whole `time=` keys");
    }
}
