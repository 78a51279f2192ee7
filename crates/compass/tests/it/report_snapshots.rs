//! Snapshot tests of the terminal, JSON and Markdown renderings of one realistic
//! investigation (see `report_fixture.rs`). Review changes with `cargo insta review` or
//! re-record with `INSTA_UPDATE=always cargo test -p compass --test report_snapshots`.

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
    let inv = crate::report_fixture::investigation();
    insta::assert_snapshot!(report::terminal(&inv, &plain(100, 5)));
}

#[test]
fn terminal_narrow_top_two() {
    let inv = crate::report_fixture::investigation();
    insta::assert_snapshot!(report::terminal(&inv, &plain(72, 2)));
}

#[test]
fn terminal_lines_fit_the_width() {
    let inv = crate::report_fixture::investigation();
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
    let inv = crate::report_fixture::investigation();
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
    let inv = crate::report_fixture::investigation();
    // Sorted maps keep the snapshot stable even if another crate turns on serde_json's
    // `preserve_order` feature.
    insta::with_settings!({ sort_maps => true }, {
        insta::assert_json_snapshot!(report::json(&inv));
    });
}

#[test]
fn markdown_snapshot() {
    let inv = crate::report_fixture::investigation();
    insta::assert_snapshot!(report::markdown(&inv));
}

#[test]
fn renderings_are_deterministic() {
    let inv = crate::report_fixture::investigation();
    let opts = RenderOptions::default();
    assert_eq!(report::terminal(&inv, &opts), report::terminal(&inv, &opts));
    assert_eq!(report::markdown(&inv), report::markdown(&inv));
    assert_eq!(report::html(&inv), report::html(&inv));
    assert_eq!(
        report::json(&inv).to_string(),
        report::json(&inv).to_string()
    );
}

/// The fixture as the LLM steps leave it: a summary, an added hypothesis, follow-ups
/// (one ran, one rejected), redactions and a fallback.
fn with_llm() -> compass_core::Investigation {
    use compass_core::model::{FollowUp, FollowUpOutcome, LlmCall, LlmReport};
    let mut inv = crate::report_fixture::investigation();
    let call = |step: &str, outcome: &str, prompt, completion, usd| LlmCall {
        step: step.into(),
        outcome: outcome.into(),
        prompt_tokens: prompt,
        completion_tokens: completion,
        usd,
        duration_ms: 900,
        error: None,
    };
    inv.llm = Some(LlmReport {
        provider: "openai".into(),
        model: "gpt-4o-mini".into(),
        calls: vec![
            call("hypotheses", "ok", 2410, 212, 0.000489),
            call("follow_up", "ok", 2655, 96, 0.000456),
            call("summary", "invalid", 1890, 140, 0.000368),
        ],
        redactions: [("email".to_string(), 2), ("ip".to_string(), 3)].into(),
        summary: Some(
            "Checkout latency rose because the payments database connection pool saturated \
             at 09:31; the pool metric and the 'too many connections' log surge both start \
             a minute before the alert."
                .into(),
        ),
        follow_ups: vec![
            FollowUp {
                language: "promql".into(),
                query: "max by (service) (db_client_connections_usage{service=\"payments\",state=\"used\"})".into(),
                reason: "is the pool full".into(),
                outcome: FollowUpOutcome::Ran,
                detail: "1 series; peak 100 at +60s (baseline 34)".into(),
                observation_id: Some("llm-q1".into()),
            },
            FollowUp {
                language: "logql".into(),
                query: "{job=~\".*\"}".into(),
                reason: "everything".into(),
                outcome: FollowUpOutcome::Rejected,
                detail: "the selector matches every stream (unbounded)".into(),
                observation_id: None,
            },
        ],
        added_hypotheses: vec!["payments:resource_exhaustion:pool".into()],
        fallbacks: vec!["summary: the answer failed validation twice (summary: longer than 1200 characters)".into()],
    });
    inv
}

#[test]
fn terminal_with_llm_section() {
    insta::assert_snapshot!(report::terminal(&with_llm(), &plain(100, 2)));
    for width in [60, 100] {
        let text = report::terminal(&with_llm(), &plain(width, 2));
        for line in text.lines() {
            let columns = unicode_width::UnicodeWidthStr::width(line);
            assert!(columns <= width, "{columns} > {width}: {line}");
        }
    }
}

#[test]
fn every_rendering_says_what_the_model_did() {
    let inv = with_llm();
    let md = report::markdown(&inv);
    let html = report::html(&inv);
    let json = report::json(&inv);
    for text in [&md, &html] {
        assert!(text.contains("LLM analysis"), "{text}");
        assert!(text.contains("openai/gpt-4o-mini · 3 calls"), "{text}");
        assert!(text.contains("5 items redacted before anything left the machine: 2 email, 3 ip"));
        assert!(text.contains("payments:resource_exhaustion:pool"));
        assert!(text.contains("Fell back to the deterministic result: summary"));
    }
    assert!(md.contains("| promql `max by (service)"), "{md}");
    assert!(html.contains("<blockquote>Checkout latency rose"), "{html}");
    assert_eq!(json["llm"]["calls"][2]["outcome"], "invalid");
    assert_eq!(json["llm"]["follow_ups"][1]["outcome"], "rejected");
    // Without a model, no section at all.
    let plain_inv = crate::report_fixture::investigation();
    assert!(!report::markdown(&plain_inv).contains("LLM analysis"));
    assert!(!report::html(&plain_inv).contains("LLM analysis"));
}
