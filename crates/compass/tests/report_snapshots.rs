//! Snapshot tests of the terminal, JSON and Markdown renderings of one realistic
//! investigation (see `report_fixture.rs`). Review changes with `cargo insta review` or
//! re-record with `INSTA_UPDATE=always cargo test -p compass --test report_snapshots`.

mod report_fixture;

use compass::report::{self, RenderOptions};

fn plain(width: usize, top: usize) -> RenderOptions {
    RenderOptions {
        color: false,
        width,
        top,
    }
}

/// The text with ANSI escape sequences (`ESC [ ... letter`) removed.
fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(ch);
        }
    }
    out
}

#[test]
fn terminal_default_width() {
    let inv = report_fixture::investigation();
    insta::assert_snapshot!(report::terminal(&inv, &plain(100, 5)));
}

#[test]
fn terminal_narrow_top_two() {
    let inv = report_fixture::investigation();
    insta::assert_snapshot!(report::terminal(&inv, &plain(72, 2)));
}

#[test]
fn terminal_lines_fit_the_width() {
    let inv = report_fixture::investigation();
    for width in [60, 80, 100, 140] {
        let text = report::terminal(&inv, &plain(width, 5));
        for line in text.lines() {
            let columns = unicode_width::UnicodeWidthStr::width(line);
            assert!(columns <= width, "{columns} > {width}: {line}");
        }
    }
}

#[test]
fn terminal_color_only_adds_escapes() {
    let inv = report_fixture::investigation();
    let colored = report::terminal(
        &inv,
        &RenderOptions {
            color: true,
            ..plain(100, 5)
        },
    );
    let uncolored = report::terminal(&inv, &plain(100, 5));
    assert!(colored.contains("\u{1b}["));
    assert!(!uncolored.contains('\u{1b}'));
    assert_eq!(strip_ansi(&colored), uncolored);
}

#[test]
fn json_snapshot() {
    let inv = report_fixture::investigation();
    // Sorted maps keep the snapshot stable even if another crate turns on serde_json's
    // `preserve_order` feature.
    insta::with_settings!({ sort_maps => true }, {
        insta::assert_json_snapshot!(report::json(&inv));
    });
}

#[test]
fn markdown_snapshot() {
    let inv = report_fixture::investigation();
    insta::assert_snapshot!(report::markdown(&inv));
}

#[test]
fn renderings_are_deterministic() {
    let inv = report_fixture::investigation();
    let opts = RenderOptions::default();
    assert_eq!(report::terminal(&inv, &opts), report::terminal(&inv, &opts));
    assert_eq!(report::markdown(&inv), report::markdown(&inv));
    assert_eq!(report::html(&inv), report::html(&inv));
    assert_eq!(
        report::json(&inv).to_string(),
        report::json(&inv).to_string()
    );
}
