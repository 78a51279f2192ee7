//! Error keywords in log messages: which words mark a line as reporting a failure.
//! Matching is ASCII case-insensitive substring search over a fixed, general list.

use crate::data::LogLevel;

/// Words that mark a failure whatever the level.
const STRONG: &[&str] = &[
    "exception",
    "traceback",
    "panic",
    "fatal",
    "stack trace",
    "out of memory",
];

/// Words that mark a failure in a WARN line or above.
const WEAK: &[&str] = &[
    "error",
    "timeout",
    "timed out",
    "refused",
    "failed",
    "failure",
    "unavailable",
    "unreachable",
    "denied",
    "reset by peer",
    "broken pipe",
    "deadline exceeded",
    "could not",
    "cannot",
    "unable to",
    "abort",
    "crash",
    "exhausted",
    "rejected",
];

fn contains_ci(haystack: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    n.len() <= haystack.len() && haystack.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// The first error keyword in `message` (strong ones first), if any.
pub fn error_keyword(message: &str) -> Option<&'static str> {
    let h = message.as_bytes();
    STRONG
        .iter()
        .chain(WEAK)
        .copied()
        .find(|k| contains_ci(h, k))
}

/// Whether a line reports a failure: level ERROR/FATAL, a strong keyword at any level,
/// or any keyword at WARN.
pub fn is_error_line(level: LogLevel, message: &str) -> bool {
    if level.is_error() {
        return true;
    }
    let h = message.as_bytes();
    STRONG.iter().any(|k| contains_ci(h, k))
        || (level >= LogLevel::Warn && WEAK.iter().any(|k| contains_ci(h, k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_table() {
        let cases = [
            (
                "java.lang.NullPointerException at Foo.bar",
                LogLevel::Info,
                Some("exception"),
                true,
            ),
            (
                "Connection REFUSED by 10.0.0.1",
                LogLevel::Warn,
                Some("refused"),
                true,
            ),
            (
                "connection refused, retrying",
                LogLevel::Info,
                Some("refused"),
                false,
            ),
            (
                "request timed out after 5s",
                LogLevel::Error,
                Some("timed out"),
                true,
            ),
            ("GET /cart 200 12ms", LogLevel::Info, None, false),
            ("GET /cart 500 12ms", LogLevel::Error, None, true),
            ("", LogLevel::Debug, None, false),
            (
                "thread panicked: index out of bounds",
                LogLevel::Info,
                Some("panic"),
                true,
            ),
        ];
        for (msg, level, kw, err) in cases {
            assert_eq!(error_keyword(msg), kw, "{msg}");
            assert_eq!(is_error_line(level, msg), err, "{msg}");
        }
    }
}
