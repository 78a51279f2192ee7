//! Fast variable masking for the log miner: byte-level checks, no regex.
//!
//! A token is a *variable* when it holds a digit and is a number, a number with a short
//! unit (`12ms`, `3.5s`, `64KB`, `99%`), an IP / time / date (digits and `.-+:_`), a hex
//! id or UUID (hex digits and dashes, at least 8 bytes), or `0x`-prefixed hex. Tokens
//! that are not variables as a whole are split at `= : , / ( ) [ ] { } " ' ;` and each
//! variable segment is replaced (`user=42` → `user=<*>`, `/cart/4821` → `/cart/<*>`).

use super::WILDCARD;

/// Whether `tok` as a whole is an obvious variable (see the module docs).
pub fn is_variable(tok: &str) -> bool {
    let b = tok.as_bytes();
    let mut digits = 0usize;
    let mut numeric_punct = true;
    let mut hex_dash = true;
    for &c in b {
        if c.is_ascii_digit() {
            digits += 1;
        } else {
            if !matches!(c, b'.' | b'-' | b'+' | b':' | b'_') {
                numeric_punct = false;
            }
            if !(c.is_ascii_hexdigit() || c == b'-') {
                hex_dash = false;
            }
        }
    }
    if digits == 0 {
        return false;
    }
    if numeric_punct || (hex_dash && b.len() >= 8) {
        return true;
    }
    if b.len() > 2 && b[0] == b'0' && (b[1] | 0x20) == b'x' {
        return b[2..].iter().all(u8::is_ascii_hexdigit);
    }
    // A number followed by a short unit.
    if b[0].is_ascii_digit() {
        let num_end = b
            .iter()
            .position(|c| !(c.is_ascii_digit() || *c == b'.'))
            .unwrap_or(b.len());
        let unit = &b[num_end..];
        return unit.len() <= 3 && unit.iter().all(|c| c.is_ascii_alphabetic() || *c == b'%');
    }
    false
}

#[inline]
fn is_delimiter(c: u8) -> bool {
    matches!(
        c,
        b'=' | b':' | b',' | b'/' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b'\'' | b';'
    )
}

/// Mask the variables in one whitespace-free token.
///
/// Returns `None` when nothing changed, `Some(true)` when the whole token is a
/// variable, and `Some(false)` when `buf` holds the partly masked token.
pub fn mask_token(tok: &str, buf: &mut String) -> Option<bool> {
    let b = tok.as_bytes();
    if !b.iter().any(u8::is_ascii_digit) {
        return None;
    }
    if is_variable(tok) {
        return Some(true);
    }
    buf.clear();
    let mut changed = false;
    let mut seg_start = 0;
    for i in 0..=b.len() {
        if i < b.len() && !is_delimiter(b[i]) {
            continue;
        }
        // Delimiters are ASCII, so these are char boundaries.
        let seg = &tok[seg_start..i];
        if !seg.is_empty() && is_variable(seg) {
            buf.push_str(WILDCARD);
            changed = true;
        } else {
            buf.push_str(seg);
        }
        if i < b.len() {
            buf.push(b[i] as char);
        }
        seg_start = i + 1;
    }
    if !changed {
        None
    } else if buf == WILDCARD {
        Some(true)
    } else {
        Some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_table() {
        let yes = [
            "42",
            "-3",
            "3.14",
            "10.0.0.1",
            "10.0.0.1:8080",
            "09:41:00",
            "2026-11-22",
            "12ms",
            "3.5s",
            "64KB",
            "99%",
            "0x1F",
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "123e4567-e89b-12d3-a456-426614174000",
            "a1b2c3d4",
        ];
        let no = [
            "",
            "GET",
            "error",
            "deadbeef",
            "v2",
            "HTTP/1.1",
            "user42x",
            "12abcd",
            "web-7f9c4-x2k9q",
        ];
        for t in yes {
            assert!(is_variable(t), "{t} should be a variable");
        }
        for t in no {
            assert!(!is_variable(t), "{t} should not be a variable");
        }
    }

    #[test]
    fn masking_table() {
        let cases = [
            ("GET", None),
            ("4821", Some("<*>")),
            ("/cart/4821", Some("/cart/<*>")),
            ("user=42", Some("user=<*>")),
            ("(12ms),", Some("(<*>),")),
            ("id=0xff,n=3", Some("id=<*>,n=<*>")),
            ("HTTP/1.1", Some("HTTP/<*>")),
            ("v2", None),
            ("héllo=5", Some("héllo=<*>")),
        ];
        let mut buf = String::new();
        for (tok, want) in cases {
            let got = match mask_token(tok, &mut buf) {
                None => None,
                Some(true) => Some(WILDCARD.to_string()),
                Some(false) => Some(buf.clone()),
            };
            assert_eq!(got.as_deref(), want, "{tok}");
        }
    }
}
