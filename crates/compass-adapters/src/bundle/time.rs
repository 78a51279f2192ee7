//! Timestamps as bundles write them: RFC 3339 UTC with milliseconds in JSON files
//! (`2026-11-22T10:00:00.000Z`, parsed by a hand parser because log streaming parses
//! millions of them, with chrono as the fallback for every other RFC 3339 form) and
//! Unix seconds with up to three decimals in `metrics.om`.

use chrono::{DateTime, SecondsFormat, Utc};
use compass_core::EpochMs;
use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};
use std::fmt;

/// Milliseconds since the epoch of an RFC 3339 timestamp, `None` if it is not one.
pub(crate) fn parse_rfc3339_ms(text: &str) -> Option<EpochMs> {
    parse_fixed_ms(text.as_bytes()).or_else(|| {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.timestamp_millis())
    })
}

/// The fixed form `YYYY-MM-DDTHH:MM:SS.mmmZ`, and nothing else.
pub(crate) fn parse_fixed_ms(b: &[u8]) -> Option<EpochMs> {
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let digit = |i: usize| -> Option<i64> {
        let d = b[i].wrapping_sub(b'0');
        (d < 10).then_some(i64::from(d))
    };
    let two = |i: usize| Some(digit(i)? * 10 + digit(i + 1)?);
    let year = two(0)? * 100 + two(2)?;
    let month = two(5)?;
    let day = two(8)?;
    let hour = two(11)?;
    let minute = two(14)?;
    let second = two(17)?;
    let millis = digit(20)? * 100 + two(21)?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3_600 + minute * 60 + second) * 1_000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `2026-11-22T10:00:00.000Z` for an epoch-millisecond time.
pub(crate) fn format_rfc3339_ms(ms: EpochMs) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => ms.to_string(),
    }
}

/// Milliseconds of a `metrics.om` timestamp (Unix seconds, usually with up to three
/// decimals; other float forms are rounded to the millisecond).
pub(crate) fn parse_unix_seconds_ms(text: &str) -> Option<EpochMs> {
    let (int_part, frac_part) = text.split_once('.').unwrap_or((text, ""));
    let plain = !int_part.is_empty()
        && frac_part.len() <= 3
        && int_part
            .bytes()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || (i == 0 && c == b'-'))
        && frac_part.bytes().all(|c| c.is_ascii_digit());
    if plain && int_part != "-" {
        let seconds: i64 = int_part.parse().ok()?;
        let mut millis: i64 = 0;
        for (i, c) in frac_part.bytes().enumerate() {
            millis += i64::from(c - b'0') * [100, 10, 1][i];
        }
        let millis = if int_part.starts_with('-') {
            -millis
        } else {
            millis
        };
        return seconds.checked_mul(1_000)?.checked_add(millis);
    }
    let seconds: f64 = text.parse().ok()?;
    let ms = (seconds * 1_000.0).round();
    (ms.is_finite() && ms.abs() < 9.0e15).then_some(ms as EpochMs)
}

/// Serde: an RFC 3339 string (or, leniently, an integer of epoch milliseconds).
pub(crate) fn deserialize_rfc3339<'de, D: Deserializer<'de>>(d: D) -> Result<EpochMs, D::Error> {
    struct TimeVisitor;
    impl Visitor<'_> for TimeVisitor {
        type Value = EpochMs;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an RFC 3339 timestamp like \"2026-11-22T10:00:00.000Z\"")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<EpochMs, E> {
            parse_rfc3339_ms(text).ok_or_else(|| {
                E::custom(format!(
                    "bad timestamp {text:?}: expected RFC 3339 like 2026-11-22T10:00:00.000Z"
                ))
            })
        }
        fn visit_i64<E: de::Error>(self, ms: i64) -> Result<EpochMs, E> {
            Ok(ms)
        }
        fn visit_u64<E: de::Error>(self, ms: u64) -> Result<EpochMs, E> {
            EpochMs::try_from(ms).map_err(|_| E::custom(format!("timestamp {ms} out of range")))
        }
    }
    d.deserialize_any(TimeVisitor)
}

/// Serde: an RFC 3339 string with milliseconds.
pub(crate) fn serialize_rfc3339<S: Serializer>(ms: &EpochMs, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339_ms(*ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_form_agrees_with_chrono() {
        let mut t: i64 = -2_208_988_800_000; // 1900-01-01
        while t < 4_102_444_800_000 {
            // 2100-01-01
            let text = format_rfc3339_ms(t);
            assert_eq!(parse_fixed_ms(text.as_bytes()), Some(t), "{text}");
            t += 86_400_000 * 13 + 3_723_456;
        }
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T23:59:59.999Z"),
            Some(1_709_251_199_999)
        );
    }

    #[test]
    fn other_forms_fall_back_to_chrono() {
        let want = Some(1_795_338_000_000);
        assert_eq!(parse_rfc3339_ms("2026-11-22T09:00:00.000Z"), want);
        assert_eq!(parse_rfc3339_ms("2026-11-22T09:00:00Z"), want);
        assert_eq!(parse_rfc3339_ms("2026-11-22T10:00:00+01:00"), want);
        assert_eq!(parse_rfc3339_ms("2026-11-22T09:00:00.000000Z"), want);
        assert_eq!(parse_rfc3339_ms("2026-11-22t09:00:00.000z"), want);
    }

    #[test]
    fn rejects_impossible_dates() {
        for bad in [
            "2026-02-30T00:00:00.000Z",
            "2026-13-01T00:00:00.000Z",
            "2026-11-22T24:00:00.000Z",
            "2026-11-22 09:00:00.000",
            "yesterday",
            "",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn unix_seconds() {
        assert_eq!(parse_unix_seconds_ms("1795338000"), Some(1_795_338_000_000));
        assert_eq!(
            parse_unix_seconds_ms("1795338000.5"),
            Some(1_795_338_000_500)
        );
        assert_eq!(
            parse_unix_seconds_ms("1795338000.123"),
            Some(1_795_338_000_123)
        );
        assert_eq!(
            parse_unix_seconds_ms("1.795338000123e9"),
            Some(1_795_338_000_123)
        );
        assert_eq!(parse_unix_seconds_ms("-1.5"), Some(-1_500));
        assert_eq!(parse_unix_seconds_ms("x"), None);
        assert_eq!(parse_unix_seconds_ms(""), None);
        assert_eq!(parse_unix_seconds_ms("NaN"), None);
    }
}
