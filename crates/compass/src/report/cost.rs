//! `compass cost`: LLM spend from the cost ledger, by UTC day, by model, by step
//! (agent) and by investigation, as aligned tables ([`cost_report`]) or JSON
//! ([`cost_json`]). With a daily budget, each day shows its share of it with a bar,
//! amber from 80% and red from 100%.

use super::utc;
use anstyle::{AnsiColor, Style};
use comfy_table::{Attribute, Cell, CellAlignment, ContentArrangement, Table, presets};
use compass_engine::llm::{CallOutcome, LedgerEntry};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Options of the text report.
#[derive(Debug, Clone, PartialEq)]
pub struct CostOptions {
    pub color: bool,
    pub daily_budget_usd: Option<f64>,
    /// How many investigations to list (most expensive first).
    pub top_investigations: usize,
}

impl Default for CostOptions {
    fn default() -> Self {
        Self {
            color: false,
            daily_budget_usd: None,
            top_investigations: 10,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Tally {
    calls: u64,
    not_ok: u64,
    prompt: u64,
    completion: u64,
    usd: f64,
}

impl Tally {
    fn add(&mut self, e: &LedgerEntry) {
        self.calls += 1;
        if e.outcome != CallOutcome::Ok {
            self.not_ok += 1;
        }
        self.prompt += e.prompt_tokens;
        self.completion += e.completion_tokens;
        self.usd += e.usd;
    }
    fn json(&self) -> Value {
        json!({
            "calls": self.calls,
            "failed_or_invalid": self.not_ok,
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "usd": self.usd,
        })
    }
}

fn group(entries: &[LedgerEntry], key: impl Fn(&LedgerEntry) -> String) -> BTreeMap<String, Tally> {
    let mut m: BTreeMap<String, Tally> = BTreeMap::new();
    for e in entries {
        m.entry(key(e)).or_default().add(e);
    }
    m
}

fn day(e: &LedgerEntry) -> String {
    utc(e.at).chars().take(10).collect()
}

fn model(e: &LedgerEntry) -> String {
    format!("{}/{}", e.provider, e.model)
}

fn investigation(e: &LedgerEntry) -> String {
    if e.investigation_id.is_empty() {
        "(none)".into()
    } else {
        e.investigation_id.clone()
    }
}

/// `$0.0123` under a dollar, `$12.34` above.
pub fn money(usd: f64) -> String {
    if usd.abs() < 1.0 {
        format!("${usd:.4}")
    } else {
        format!("${usd:.2}")
    }
}

fn total(entries: &[LedgerEntry]) -> Tally {
    let mut t = Tally::default();
    for e in entries {
        t.add(e);
    }
    t
}

/// The spend report as aligned text.
pub fn cost_report(entries: &[LedgerEntry], opts: &CostOptions) -> String {
    let paint = |style: Style, text: &str| {
        if opts.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    };
    let bold = Style::new().bold();
    if entries.is_empty() {
        return "No LLM spend recorded: no model calls in this period.\n".into();
    }
    let t = total(entries);
    let first = entries.iter().map(|e| e.at).min().unwrap_or(0);
    let last = entries.iter().map(|e| e.at).max().unwrap_or(0);
    let mut out = String::new();
    out.push_str(&paint(bold, "LLM spend"));
    out.push_str(&format!(
        "  {} to {}\n{} calls ({} failed or invalid), {} prompt + {} completion tokens, {}\n\n",
        utc(first),
        utc(last),
        t.calls,
        t.not_ok,
        t.prompt,
        t.completion,
        paint(bold, &money(t.usd))
    ));

    let by_day = group(entries, day);
    let budget = opts.daily_budget_usd.filter(|b| *b > 0.0);
    let mut header = vec![
        "day (UTC)",
        "calls",
        "failed",
        "prompt tok",
        "completion tok",
        "cost",
    ];
    if budget.is_some() {
        header.push("of daily budget");
    }
    let mut table = new_table(&header);
    for (d, tally) in &by_day {
        let mut row = row(d, tally);
        if let Some(b) = budget {
            let share = tally.usd / b;
            let text = format!("{} {:>4.0}%", bar(share), share * 100.0);
            let color = if share >= 1.0 {
                comfy_table::Color::Red
            } else if share >= 0.8 {
                comfy_table::Color::Yellow
            } else {
                comfy_table::Color::Green
            };
            let mut cell = Cell::new(text);
            if opts.color {
                cell = cell.fg(color);
            }
            row.push(cell);
        }
        table.add_row(row);
    }
    push_table(&mut out, "By day", table, opts, &paint);

    for (title, first_col, grouped) in [
        ("By model", "provider/model", group(entries, model)),
        ("By step", "step", group(entries, |e| e.agent.clone())),
    ] {
        let mut table = new_table(&[
            first_col,
            "calls",
            "failed",
            "prompt tok",
            "completion tok",
            "cost",
        ]);
        let mut rows: Vec<(&String, &Tally)> = grouped.iter().collect();
        rows.sort_by(|a, b| b.1.usd.total_cmp(&a.1.usd).then(a.0.cmp(b.0)));
        for (k, tally) in rows {
            table.add_row(row(k, tally));
        }
        push_table(&mut out, title, table, opts, &paint);
    }

    let by_inv = group(entries, investigation);
    let mut rows: Vec<(&String, &Tally)> = by_inv.iter().collect();
    rows.sort_by(|a, b| b.1.usd.total_cmp(&a.1.usd).then(a.0.cmp(b.0)));
    let shown = rows.len().min(opts.top_investigations.max(1));
    let mut table = new_table(&[
        "investigation",
        "calls",
        "failed",
        "prompt tok",
        "completion tok",
        "cost",
    ]);
    for (k, tally) in rows.iter().take(shown) {
        table.add_row(row(k, tally));
    }
    let title = if rows.len() > shown {
        format!("Top {shown} of {} investigations", rows.len())
    } else {
        format!("Investigations ({})", rows.len())
    };
    push_table(&mut out, &title, table, opts, &paint);
    out
}

pub(crate) fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED.with_rounded_corners())
        .set_content_arrangement(ContentArrangement::Disabled)
        .force_no_tty()
        .set_header(
            header
                .iter()
                .map(|h| Cell::new(h).add_attribute(Attribute::Bold)),
        );
    table
}

fn row(key: &str, t: &Tally) -> Vec<Cell> {
    vec![
        Cell::new(key),
        Cell::new(t.calls).set_alignment(CellAlignment::Right),
        Cell::new(t.not_ok).set_alignment(CellAlignment::Right),
        Cell::new(t.prompt).set_alignment(CellAlignment::Right),
        Cell::new(t.completion).set_alignment(CellAlignment::Right),
        Cell::new(money(t.usd)).set_alignment(CellAlignment::Right),
    ]
}

fn push_table(
    out: &mut String,
    title: &str,
    mut table: Table,
    opts: &CostOptions,
    paint: &dyn Fn(Style, &str) -> String,
) {
    if opts.color {
        table.enforce_styling();
    }
    out.push_str(&paint(AnsiColor::Cyan.on_default().bold(), title));
    out.push('\n');
    out.push_str(&table.to_string());
    out.push_str("\n\n");
}

/// Ten cells filled by `share` (capped at full).
fn bar(share: f64) -> String {
    let filled = ((share.clamp(0.0, 1.0)) * 10.0).round() as usize;
    format!("{}{}", "█".repeat(filled), "░".repeat(10 - filled))
}

/// The same groupings as JSON.
pub fn cost_json(entries: &[LedgerEntry]) -> Value {
    let grouped = |g: BTreeMap<String, Tally>| -> Value {
        Value::Object(g.into_iter().map(|(k, t)| (k, t.json())).collect())
    };
    json!({
        "total": total(entries).json(),
        "by_day": grouped(group(entries, day)),
        "by_model": grouped(group(entries, model)),
        "by_step": grouped(group(entries, |e| e.agent.clone())),
        "by_investigation": grouped(group(entries, investigation)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn e(at: i64, inv: &str, step: &str, model: &str, usd: f64, ok: bool) -> LedgerEntry {
        LedgerEntry {
            at,
            investigation_id: inv.into(),
            agent: step.into(),
            provider: "openai".into(),
            model: model.into(),
            prompt_tokens: 1000,
            completion_tokens: 100,
            usd,
            reported: true,
            outcome: if ok {
                CallOutcome::Ok
            } else {
                CallOutcome::Invalid
            },
        }
    }

    fn ledger() -> Vec<LedgerEntry> {
        let d0 = 20_000 * DAY;
        vec![
            e(d0 + 1, "inv-a", "hypotheses", "gpt-4o-mini", 0.5, true),
            e(d0 + 2, "inv-a", "summary", "gpt-4o-mini", 0.4, false),
            e(d0 + DAY + 5, "inv-b", "hypotheses", "gpt-4o", 1.5, true),
        ]
    }

    #[test]
    fn groupings_and_totals() {
        let j = cost_json(&ledger());
        assert_eq!(j["total"]["calls"], 3);
        assert_eq!(j["total"]["failed_or_invalid"], 1);
        assert!((j["total"]["usd"].as_f64().unwrap() - 2.4).abs() < 1e-9);
        assert_eq!(j["by_day"].as_object().unwrap().len(), 2);
        assert_eq!(j["by_model"]["openai/gpt-4o-mini"]["calls"], 2);
        assert_eq!(j["by_step"]["hypotheses"]["calls"], 2);
        assert!((j["by_investigation"]["inv-a"]["usd"].as_f64().unwrap() - 0.9).abs() < 1e-9);
    }

    #[test]
    fn text_report_shows_tables_and_budget_share() {
        let text = cost_report(
            &ledger(),
            &CostOptions {
                daily_budget_usd: Some(1.0),
                ..CostOptions::default()
            },
        );
        for needle in [
            "By day",
            "By model",
            "By step",
            "Investigations (2)",
            "openai/gpt-4o",
            "$0.9000",
            "$1.50",
            "90%",
            "150%",
            "of daily budget",
        ] {
            assert!(text.contains(needle), "missing {needle}:\n{text}");
        }
        assert!(!text.contains('\u{1b}'), "no ANSI codes without colour");
        // The most expensive model comes first.
        assert!(text.find("openai/gpt-4o ").unwrap() < text.find("openai/gpt-4o-mini").unwrap());
        let colored = cost_report(
            &ledger(),
            &CostOptions {
                color: true,
                daily_budget_usd: Some(1.0),
                ..CostOptions::default()
            },
        );
        assert!(colored.contains('\u{1b}'));
    }

    #[test]
    fn empty_and_money() {
        assert!(cost_report(&[], &CostOptions::default()).contains("No LLM spend"));
        assert_eq!(money(0.01234), "$0.0123");
        assert_eq!(money(12.345), "$12.35");
        assert_eq!(bar(0.5), "█████░░░░░");
        assert_eq!(bar(3.0), "██████████");
    }
}
