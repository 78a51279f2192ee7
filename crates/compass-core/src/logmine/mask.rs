//! Fast variable masking for the log miner: byte-level checks, no regex.
//!
//! A whitespace-free token is cut into *segments* at structural delimiters
//! (`= : , ; ( ) [ ] { } " ' | @ < >`), which stay in the template text. A segment is a
//! variable when it is path-like (`/a/b`, `C:\x`) or when it holds a digit; a segment
//! with dots is judged part by part, so `core.2275` becomes `core.<*>` while
//! `10.0.0.1` becomes one `<*>`. So `user=42` → `user=<*>`, `10.0.0.1:8080` →
//! `<*>:<*>`, `/cart/4821` → `<*>`, `(12ms),` → `(<*>),`.

use super::WILDCARD;

/// Whether `b` separates the segments of a token (and is kept in template text).
#[inline]
pub(crate) fn is_delimiter(c: u8) -> bool {
    matches!(
        c,
        b'=' | b':'
            | b','
            | b';'
            | b'('
            | b')'
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'"'
            | b'\''
            | b'|'
            | b'@'
            | b'<'
            | b'>'
    )
}

#[inline]
fn is_path(seg: &[u8]) -> bool {
    seg.len() > 1 && (seg[0] == b'/' || seg.contains(&b'\\'))
}

/// Whether `tok` as a whole is an obvious variable: masking turns all of it into one
/// `<*>` (`42`, `3.5s`, `10.0.0.1`, `0x1F`, `blk_-42`, `/var/log`, `Fri`; not `GET`,
/// `jk2_init`, `user=42` or `10.0.0.1:8080`).
pub fn is_variable(tok: &str) -> bool {
    mask_token(tok, &mut String::new()) == Some(true)
}

/// Whether one dot-free part of a segment is a variable: it holds a digit and starts
/// with one (`42`, `12ms`, `3f9a`), or a digit follows a separator (`blk_-42`,
/// `node-7`), or it has a long digit run (`job20160402`) or is long hex
/// (`deadbeef01`). Identifiers such as `jk2_init`, `IPv6` or `e820` stay constant.
fn is_variable_part(p: &[u8]) -> bool {
    let Some(first) = p.first() else {
        return false;
    };
    if first.is_ascii_digit() {
        return true;
    }
    let mut run = 0usize;
    let mut longest = 0usize;
    let mut digits = 0usize;
    let mut prev = 0u8;
    let mut hex = true;
    for &c in p {
        if c.is_ascii_digit() {
            if matches!(prev, b'_' | b'-' | b'+' | b'#' | b'/' | b'\\') {
                return true;
            }
            run += 1;
            digits += 1;
            longest = longest.max(run);
        } else {
            run = 0;
            hex &= c.is_ascii_hexdigit();
        }
        prev = c;
    }
    digits > 0 && (longest >= 4 || (hex && p.len() >= 8))
}

/// Whether `b` is an English month or weekday abbreviation (`Jan`, `Fri`), a part of
/// a timestamp.
fn is_date_word(b: &[u8]) -> bool {
    b.len() == 3
        && b[0].is_ascii_uppercase()
        && matches!(
            b,
            b"Jan"
                | b"Feb"
                | b"Mar"
                | b"Apr"
                | b"May"
                | b"Jun"
                | b"Jul"
                | b"Aug"
                | b"Sep"
                | b"Oct"
                | b"Nov"
                | b"Dec"
                | b"Mon"
                | b"Tue"
                | b"Wed"
                | b"Thu"
                | b"Fri"
                | b"Sat"
                | b"Sun"
        )
}

/// Append segment `seg` to `buf`, masked; returns whether anything was masked.
fn mask_segment(seg: &str, buf: &mut String) -> bool {
    let b = seg.as_bytes();
    if is_path(b) {
        buf.push_str(WILDCARD);
        return true;
    }
    if !b.iter().any(u8::is_ascii_digit) {
        buf.push_str(seg);
        return false;
    }
    // Judge dot-separated parts; runs of masked parts collapse into one `<*>`.
    let mut masked_any = false;
    let mut last_wild = false;
    for (i, part) in seg.split('.').enumerate() {
        let wild = is_variable_part(part.as_bytes());
        if wild && last_wild {
            continue;
        }
        if i > 0 {
            buf.push('.');
        }
        if wild {
            buf.push_str(WILDCARD);
            masked_any = true;
        } else {
            buf.push_str(part);
        }
        last_wild = wild;
    }
    masked_any
}

/// Mask the variables in one whitespace-free token.
///
/// Returns `None` when nothing changed, `Some(true)` when the whole token is a
/// variable, and `Some(false)` when `buf` holds the partly masked token.
pub fn mask_token(tok: &str, buf: &mut String) -> Option<bool> {
    let b = tok.as_bytes();
    if is_date_word(b) {
        return Some(true);
    }
    if !b
        .iter()
        .any(|c| c.is_ascii_digit() || *c == b'/' || *c == b'\\')
    {
        return None;
    }
    buf.clear();
    let mut changed = false;
    let mut seg_start = 0;
    for i in 0..=b.len() {
        if i < b.len() && !is_delimiter(b[i]) {
            continue;
        }
        // Delimiters are ASCII, so these are char boundaries.
        changed |= mask_segment(&tok[seg_start..i], buf);
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

/// Whether `token` fits `pattern`, where each `<*>` in the pattern stands for one or
/// more bytes.
pub(crate) fn fits(pattern: &str, token: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), token.as_bytes());
    let w = WILDCARD.as_bytes();
    // Iterative glob matching with backtracking to the last wildcard.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if p[pi..].starts_with(w) {
            // The wildcard takes at least one byte.
            pi += w.len();
            ti += 1;
            star = Some((pi, ti));
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pi == p.len()
}

/// Split `tok` into segments and the delimiters between them.
fn segments(tok: &str) -> impl Iterator<Item = (&str, Option<u8>)> {
    let b = tok.as_bytes();
    let mut start = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let end = (start..b.len()).find(|&i| is_delimiter(b[i]));
        let item = match end {
            Some(e) => (&tok[start..e], Some(b[e])),
            None => {
                done = true;
                (&tok[start..], None)
            }
        };
        start = end.map_or(b.len(), |e| e + 1);
        Some(item)
    })
}

/// The pattern covering template token `a` and message token `b` segment by segment,
/// written to `out`, when both have the same delimiters in the same order and share at
/// least one delimiter; `false` otherwise (the caller then uses a
/// plain wildcard).
pub(crate) fn generalise(a: &str, b: &str, out: &mut String) -> bool {
    if same_segments(a, b, out) {
        return true;
    }
    // Different shapes under a shared key: `rhost=a.b` and `rhost=<*>:1` → `rhost=<*>`.
    match key_len(a) {
        Some(k) if same_key(a, b) => {
            out.clear();
            out.push_str(&a[..k]);
            out.push_str(WILDCARD);
            true
        }
        _ => false,
    }
}

/// Length of the `key=` or `key:` prefix of `tok` (with the delimiter), when the key
/// is a word and a value follows.
fn key_len(tok: &str) -> Option<usize> {
    let b = tok.as_bytes();
    let k = b.iter().position(|&c| is_delimiter(c))?;
    (k > 0 && matches!(b[k], b'=' | b':') && b.len() > k + 1 && !b[..k].contains(&b'<'))
        .then_some(k + 1)
}

/// Whether `a` and `b` are values of the same field: both `key=…` (or `key:…`) with
/// the same key and some value.
fn same_key(a: &str, b: &str) -> bool {
    key_len(a).is_some_and(|k| b.len() > k && b.as_bytes()[..k] == a.as_bytes()[..k])
}

fn same_segments(a: &str, b: &str, out: &mut String) -> bool {
    out.clear();
    let (mut sa, mut sb) = (segments(a), segments(b));
    loop {
        match (sa.next(), sb.next()) {
            (None, None) => break,
            (Some((x, dx)), Some((y, dy))) if dx == dy => {
                if x == y && x != WILDCARD {
                    out.push_str(x);
                } else if x.is_empty() != y.is_empty() {
                    return false;
                } else if !x.is_empty() {
                    out.push_str(WILDCARD);
                }
                if let Some(d) = dx {
                    out.push(d as char);
                }
            }
            _ => return false,
        }
    }
    out != WILDCARD
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
            "2026-11-22",
            "12ms",
            "3.5s",
            "64KB",
            "0x1F",
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "123e4567-e89b-12d3-a456-426614174000",
            "blk_-7724713468912166542",
            "node-17",
            "job20160402",
            "deadbeef01",
            "/var/log/syslog",
            "/10.0.0.1",
            "Jun",
            "Fri",
        ];
        let no = [
            "",
            "GET",
            "error",
            "deadbeef",
            "v2",
            "IPv6",
            "jk2_init",
            "BIOS-e820",
            "user42x",
            "/",
            "June",
            "user=42",
            "10.0.0.1:8080",
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
            ("/cart/4821", Some("<*>")),
            ("user=42", Some("user=<*>")),
            ("(12ms),", Some("(<*>),")),
            ("id=0xff,n=3", Some("id=<*>,n=<*>")),
            ("10.0.0.1:8080", Some("<*>:<*>")),
            ("/10.0.0.1:8080", Some("<*>:<*>")),
            ("core.2275", Some("core.<*>")),
            ("1.2.3.4.", Some("<*>.")),
            ("(uid=0)", Some("(uid=<*>)")),
            ("'/udev/vcs2'", Some("'<*>'")),
            ("<memory:10240,", Some("<memory:<*>,")),
            ("jk2_init()", None),
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

    #[test]
    fn patterns_fit_tokens() {
        assert!(fits("user=<*>", "user=bob"));
        assert!(fits("<*>:<*>", "host:80"));
        assert!(fits("<*>:<*>", "a:b:c"));
        assert!(fits("(<*>)", "(x)"));
        assert!(
            !fits("(<*>)", "()"),
            "a wildcard stands for at least one byte"
        );
        assert!(!fits("user=<*>", "uid=0"));
        assert!(!fits("user=<*>", "user="));
        assert!(!fits("<*>:", "host:80"));
    }

    #[test]
    fn generalising_keeps_the_shared_structure() {
        let mut out = String::new();
        let mut gen_ = |a: &str, b: &str| generalise(a, b, &mut out).then(|| out.clone());
        assert_eq!(gen_("user=ann", "user=bob").as_deref(), Some("user=<*>"));
        assert_eq!(gen_("web-1:80", "db:80").as_deref(), Some("<*>:80"));
        assert_eq!(gen_("a:b", "c:d").as_deref(), Some("<*>:<*>"));
        assert_eq!(
            gen_("rhost=a.b", "rhost=<*>:1").as_deref(),
            Some("rhost=<*>")
        );
        assert_eq!(gen_("(x)", "()"), None);
        assert_eq!(gen_("alice", "bob"), None);
        assert_eq!(gen_("user=ann", "uid=<*>"), None);
    }
}
