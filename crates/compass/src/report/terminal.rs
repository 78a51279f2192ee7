//! The terminal rendering: an incident header, the ranked hypotheses with their strongest
//! evidence (and the exact query or file lines behind it), disproof results, next checks
//! for the leading hypothesis, and an aligned agent table.
//!
//! Every line fits in [`RenderOptions::width`] columns (at least 60): prose is wrapped,
//! locators are truncated with `…`, and the agent table moves errors below itself when the
//! error column would be too narrow. ANSI colours are added only when [`RenderOptions::color`] is set, and
//! only after the plain text has been laid out, so colour never changes the layout.

use super::{
    RenderOptions, STRONGEST_EVIDENCE, label, llm_text, locator_text, percent, root_cause_text,
    strongest, unit, utc, utc_span, utc_time,
};
use anstyle::{AnsiColor, Style};
use comfy_table::{
    Attribute, Cell, CellAlignment, Color, ColumnConstraint, ContentArrangement, Table, presets,
};
use compass_core::model::{
    AgentRun, AgentStatus, DisproofOutcome, Evidence, FollowUpOutcome, Hypothesis,
    HypothesisStatus, Investigation, InvestigationStatus, LlmReport, Severity, Stance,
};
use textwrap::WordSplitter;
use unicode_width::UnicodeWidthStr;

/// Narrower terminals are laid out as if they had this many columns.
const MIN_WIDTH: usize = 60;
/// Cells in a confidence bar.
const BAR_CELLS: usize = 10;
/// Indent of a hypothesis body (under `#1 `).
const BODY: usize = 5;
/// Indent of an evidence item's second line (after marker and quality column).
const EVIDENCE_TEXT: usize = BODY + 2 + 2 + 15;

const GREEN: Style = AnsiColor::Green.on_default();
const YELLOW: Style = AnsiColor::Yellow.on_default();
const RED: Style = AnsiColor::Red.on_default();
const CYAN: Style = AnsiColor::Cyan.on_default();
const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

/// Renders the investigation for a terminal `opts.width` columns wide.
pub fn terminal(inv: &Investigation, opts: &RenderOptions) -> String {
    let mut out = Out {
        lines: Vec::new(),
        width: opts.width.max(MIN_WIDTH),
        color: opts.color,
    };
    header(&mut out, inv);
    out.blank();
    hypotheses(&mut out, inv, opts.top);
    out.blank();
    if let Some(report) = &inv.llm {
        llm(&mut out, report);
        out.blank();
    }
    agents(&mut out, inv);
    let mut text = out.lines.join("\n");
    text.push('\n');
    text
}

/// Accumulates output lines; knows the width and whether to colour.
struct Out {
    lines: Vec<String>,
    width: usize,
    color: bool,
}

impl Out {
    fn paint(&self, style: Style, text: &str) -> String {
        if self.color && !text.is_empty() {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }

    fn push(&mut self, line: String) {
        self.lines.push(line);
    }

    fn blank(&mut self) {
        self.lines.push(String::new());
    }

    /// A section rule: `── TITLE ─────…` across the width.
    fn rule(&mut self, title: &str) {
        let title = truncate(title, self.width.saturating_sub(4));
        let used = 4 + title.width();
        let line = format!("── {title} {}", "─".repeat(self.width.saturating_sub(used)));
        self.lines.push(self.paint(BOLD, &line));
    }

    /// `text` word-wrapped to the width, first line after `first` (already `indent` wide),
    /// later lines indented by `indent` spaces; each line painted with `style`.
    fn wrapped(&mut self, first: &str, indent: usize, text: &str, style: Style) {
        let text = &clean(text);
        let available = self.width.saturating_sub(indent).max(20);
        let options = textwrap::Options::new(available).word_splitter(WordSplitter::NoHyphenation);
        for (i, line) in textwrap::wrap(text, options).iter().enumerate() {
            let lead = if i == 0 {
                first.to_string()
            } else {
                " ".repeat(indent)
            };
            let painted = self.paint(style, line);
            self.lines.push(format!("{lead}{painted}"));
        }
    }
}

/// `text` with control characters made harmless: whitespace becomes a space, anything else
/// (an ESC from a log line, say) becomes `�`, so model text cannot drive the terminal.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            c if !c.is_control() => c,
            '\n' | '\r' | '\t' => ' ',
            _ => '\u{fffd}',
        })
        .collect()
}

/// `text` (cleaned) cut to `max` display columns, ending in `…` when cut.
fn truncate(text: &str, max: usize) -> String {
    let text = clean(text);
    if text.width() <= max {
        return text;
    }
    let mut cut = String::new();
    let mut used = 0;
    for ch in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(ch).unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        used += w;
        cut.push(ch);
    }
    cut.push('…');
    cut
}

/// `█████░░░░░`.
fn bar(value: f64) -> String {
    let filled = (unit(value) * BAR_CELLS as f64).round() as usize;
    format!("{}{}", "█".repeat(filled), "░".repeat(BAR_CELLS - filled))
}

fn header(out: &mut Out, inv: &Investigation) {
    let incident = &inv.incident;
    out.rule(&format!("COMPASS · investigation {}", inv.id));
    let severity = label(&incident.severity).to_uppercase();
    let severity_style = match incident.severity {
        Severity::Critical => RED.bold(),
        Severity::Warning => YELLOW.bold(),
        Severity::Info => CYAN.bold(),
    };
    let title_room = out.width.saturating_sub(severity.len() + 3);
    let title = truncate(&incident.title, title_room);
    let line = format!(
        " {}  {}",
        out.paint(severity_style, &severity),
        out.paint(BOLD, &title)
    );
    out.push(line);
    let status_style = match inv.status {
        InvestigationStatus::Completed => GREEN,
        InvestigationStatus::Degraded => YELLOW,
        InvestigationStatus::BudgetExhausted | InvestigationStatus::DeadlineExceeded => RED,
    };
    let rows = [
        (
            "alert",
            format!(
                "{}  ({}, {})",
                utc(incident.start),
                incident.id,
                label(&incident.origin)
            ),
        ),
        ("affected", incident.affected_services.join(", ")),
        ("window", utc_span(inv.window)),
    ];
    for (name, value) in rows {
        let value = truncate(&value, out.width.saturating_sub(12));
        out.push(format!("  {name:<9} {value}"));
    }
    let status = out.paint(status_style, &label(&inv.status));
    out.push(format!(
        "  {:<9} {status} · elapsed {} ms",
        "status", inv.elapsed_ms
    ));
    let spend = format!(
        "{} ran · {} LLM tokens · ${:.4}",
        inv.agents.len(),
        inv.cost.total_tokens(),
        inv.cost.usd
    );
    out.push(format!("  {:<9} {spend}", "agents"));
}

fn hypotheses(out: &mut Out, inv: &Investigation, top: usize) {
    let shown = top.min(inv.hypotheses.len());
    out.rule(&format!(
        "HYPOTHESES · top {shown} of {}",
        inv.hypotheses.len()
    ));
    if inv.hypotheses.is_empty() {
        out.push("  no hypotheses: the agents found nothing that explains the alert".into());
        return;
    }
    for (i, hypothesis) in inv.hypotheses.iter().take(top).enumerate() {
        out.blank();
        hypothesis_block(out, i + 1, hypothesis);
    }
    let hidden = inv.hypotheses.len() - shown;
    if hidden > 0 {
        out.blank();
        out.push(out.paint(DIM, &format!("  … {hidden} more hypotheses not shown")));
    }
}

fn status_style(status: HypothesisStatus) -> Style {
    match status {
        HypothesisStatus::Validated | HypothesisStatus::Confirmed => GREEN,
        HypothesisStatus::Generated
        | HypothesisStatus::Validating
        | HypothesisStatus::RequiresHuman => YELLOW,
        HypothesisStatus::Disproven | HypothesisStatus::Rejected => RED,
    }
}

fn confidence_style(value: f64) -> Style {
    match unit(value) {
        v if v >= 0.7 => GREEN,
        v if v >= 0.4 => YELLOW,
        _ => DIM,
    }
}

fn hypothesis_block(out: &mut Out, rank: usize, h: &Hypothesis) {
    let value = h.confidence.value;
    let status = format!("{:<15}", h.status.as_str());
    let cause_room = out.width.saturating_sub(BODY + BAR_CELLS + 7 + 15);
    let line = format!(
        "{:<BODY$}{} {:>4}  {}{}",
        format!(" #{rank}"),
        out.paint(confidence_style(value), &bar(value)),
        percent(value),
        out.paint(status_style(h.status), &status),
        out.paint(BOLD, &truncate(&root_cause_text(&h.root_cause), cause_room)),
    );
    out.push(line);
    let body = " ".repeat(BODY);
    out.wrapped(&body, BODY, &h.statement, Style::new());
    let why = format!("why {}: {}", percent(value), h.confidence.reasoning);
    out.wrapped(&body, BODY, &why, DIM);
    let meta = format!(
        "onset {} UTC · {} · proposed by {}",
        utc_time(h.onset),
        h.root_cause.fault_kind.describe(),
        h.proposed_by.join(", ")
    );
    out.wrapped(&body, BODY, &meta, DIM);

    if !h.supporting.is_empty() || !h.contradicting.is_empty() {
        out.push(format!("{body}evidence"));
        for evidence in strongest(&h.supporting, STRONGEST_EVIDENCE) {
            evidence_item(out, evidence);
        }
        for evidence in strongest(&h.contradicting, STRONGEST_EVIDENCE) {
            evidence_item(out, evidence);
        }
    }
    if !h.disproof.is_empty() {
        out.push(format!("{body}disproof"));
        for attempt in &h.disproof {
            let (mark, style) = match attempt.outcome {
                DisproofOutcome::Survived => ("✓", GREEN),
                DisproofOutcome::Disproven => ("✗", RED),
                DisproofOutcome::Inconclusive => ("?", YELLOW),
            };
            let head = format!("{} → {}", label(&attempt.strategy), label(&attempt.outcome));
            let first = format!(
                "{body}  {} {} ",
                out.paint(style, mark),
                out.paint(style, &format!("{head:<24}"))
            );
            out.wrapped(&first, BODY + 29, &attempt.observed, Style::new());
        }
    }
    if rank == 1 && !h.next_checks.is_empty() {
        out.push(format!("{body}next checks"));
        for check in &h.next_checks {
            let first = format!("{body}  → ");
            out.wrapped(&first, BODY + 4, check, CYAN);
        }
    }
}

fn evidence_item(out: &mut Out, evidence: &Evidence) {
    let (mark, style) = match evidence.stance {
        Stance::Supports => ("+", GREEN),
        Stance::Contradicts => ("−", RED),
    };
    let quality = format!("{:<15}", label(&evidence.quality));
    let first = format!(
        "{}  {} {}",
        " ".repeat(BODY),
        out.paint(style, mark),
        quality
    );
    out.wrapped(&first, EVIDENCE_TEXT, &evidence.summary, Style::new());
    let where_from = format!("{} · {}", evidence.source, locator_text(&evidence.locator));
    let where_from = truncate(&where_from, out.width.saturating_sub(EVIDENCE_TEXT));
    let line = format!(
        "{}{}",
        " ".repeat(EVIDENCE_TEXT),
        out.paint(DIM, &where_from)
    );
    out.push(line);
}

/// What the model added: its summary, hypotheses, follow-up queries, redactions and
/// the steps that fell back.
fn llm(out: &mut Out, report: &LlmReport) {
    out.rule(&format!("LLM · {}", llm_text::headline(report)));
    if let Some(summary) = &report.summary {
        out.wrapped("  ", 2, summary, Style::new());
    }
    if !report.added_hypotheses.is_empty() {
        let line = format!("added hypotheses: {}", report.added_hypotheses.join(", "));
        out.wrapped("  + ", 4, &line, CYAN);
    }
    for f in &report.follow_ups {
        let (mark, style) = match f.outcome {
            FollowUpOutcome::Ran => ("  ✓ ", GREEN),
            FollowUpOutcome::Rejected | FollowUpOutcome::Failed => ("  ✗ ", RED),
            FollowUpOutcome::Skipped => ("  · ", DIM),
        };
        let head = format!(
            "{} {}: {}",
            f.language,
            llm_text::follow_up_outcome(f),
            truncate(&f.query, out.width.saturating_sub(24))
        );
        let mark = out.paint(style, mark.trim_end());
        out.wrapped(&format!("{mark} "), 4, &head, Style::new());
        out.wrapped("    ", 4, &f.detail, DIM);
    }
    if let Some(r) = llm_text::redactions(report) {
        out.wrapped("  ✂ ", 4, &r, DIM);
    }
    for f in &report.fallbacks {
        out.wrapped("  ! ", 4, &format!("fell back: {f}"), YELLOW);
    }
}

fn agents(out: &mut Out, inv: &Investigation) {
    out.rule(&format!("AGENTS · {}", inv.agents.len()));
    if inv.agents.is_empty() {
        out.push("  no agents ran".into());
        return;
    }
    let mut table = agent_table(inv, out.width);
    // Lay out the short columns at their natural width; the error column gets the rest,
    // or, when too little is left, the errors are listed under the table instead.
    let pinned_width = {
        set_layout(&mut table, true, false);
        widest(&table)
    };
    let errors_inline = pinned_width + ERROR_COLUMN_MIN <= out.width;
    set_layout(&mut table, pinned_width <= out.width, errors_inline);
    if out.color {
        table.enforce_styling();
    }
    out.lines.extend(table.lines());
    if !errors_inline {
        for run in inv.agents.iter().filter(|run| run.error.is_some()) {
            let error = run.error.as_deref().unwrap_or_default();
            out.wrapped("  • ", 4, &format!("{}: {error}", run.agent), RED);
        }
    }
}

/// Narrowest useful error column (content plus padding and border).
const ERROR_COLUMN_MIN: usize = 24;
const ERROR_COLUMN: usize = 7;

/// Pins every column but the error column to its content width (or lets all of them wrap),
/// and shows or hides the error column.
fn set_layout(table: &mut Table, pinned: bool, show_errors: bool) {
    for column in table.column_iter_mut() {
        if column.index == ERROR_COLUMN {
            if show_errors {
                column.remove_constraint();
            } else {
                column.set_constraint(ColumnConstraint::Hidden);
            }
        } else if pinned {
            column.set_constraint(ColumnConstraint::ContentWidth);
        } else {
            column.remove_constraint();
        }
    }
}

/// The widest rendered line of `table` (rendered without colour).
fn widest(table: &Table) -> usize {
    table.lines().map(|line| line.width()).max().unwrap_or(0)
}

/// The agent table (plain, unstyled) with a total row. The total's duration is the
/// investigation's wall-clock time, not the sum: agents run in parallel.
fn agent_table(inv: &Investigation, width: usize) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED.with_rounded_corners())
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(u16::try_from(width).unwrap_or(u16::MAX))
        .force_no_tty()
        .set_header(
            [
                "agent", "status", "duration", "obs", "hyp", "tokens", "cost", "error",
            ]
            .map(|h| Cell::new(h).add_attribute(Attribute::Bold)),
        );
    for run in &inv.agents {
        table.add_row(agent_row(run));
    }
    let total_tokens: u64 = inv.agents.iter().map(|a| a.cost.total_tokens()).sum();
    let total_usd: f64 = inv.agents.iter().map(|a| a.cost.usd).sum();
    table.add_row(vec![
        Cell::new("total").add_attribute(Attribute::Bold),
        Cell::new(""),
        Cell::new(format!("{} ms", inv.elapsed_ms)),
        Cell::new(inv.agents.iter().map(|a| a.observations).sum::<usize>()),
        Cell::new(inv.agents.iter().map(|a| a.hypotheses).sum::<usize>()),
        Cell::new(total_tokens),
        Cell::new(format!("${total_usd:.4}")),
        Cell::new(""),
    ]);
    for index in 2..=6 {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

fn agent_row(run: &AgentRun) -> Vec<Cell> {
    let status_color = match run.status {
        AgentStatus::Succeeded => Color::Green,
        AgentStatus::Degraded | AgentStatus::Cancelled => Color::Yellow,
        AgentStatus::Failed | AgentStatus::TimedOut => Color::Red,
    };
    let error = clean(run.error.as_deref().unwrap_or(""));
    vec![
        Cell::new(clean(&run.agent)),
        Cell::new(run.status.as_str()).fg(status_color),
        Cell::new(format!("{} ms", run.duration_ms)),
        Cell::new(run.observations),
        Cell::new(run.hypotheses),
        Cell::new(run.cost.total_tokens()),
        Cell::new(format!("${:.4}", run.cost.usd)),
        Cell::new(error).fg(Color::Red),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_display_width() {
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("日本語テキスト", 5), "日本…");
    }

    #[test]
    fn control_characters_cannot_reach_the_terminal() {
        assert_eq!(truncate("a\u{1b}[2Jb\nc", 20), "a\u{fffd}[2Jb c");
    }

    #[test]
    fn bar_fills_by_confidence() {
        assert_eq!(bar(0.82), "████████░░");
        assert_eq!(bar(f64::NAN), "░░░░░░░░░░");
        assert_eq!(bar(2.0), "██████████");
    }
}
