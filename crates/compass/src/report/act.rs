//! `compass act` output: a plan with its risk and exact change (the diff coloured),
//! the command list, the audit log and the IRIS proposals, as aligned text.

use super::cost::new_table;
use super::utc;
use anstyle::{AnsiColor, Style};
use comfy_table::{Cell, CellAlignment, Color};
use compass_act::action::RiskLevel;
use compass_act::audit::Entry;
use compass_act::iris::diagnose::Proposal;
use compass_act::router::RoutedBy;
use compass_act::runner::RunResult;
use compass_act::service::{Record, Status};

struct Painter(bool);

impl Painter {
    fn p(&self, style: Style, text: &str) -> String {
        if self.0 {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }
}

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

fn risk_style(r: RiskLevel) -> Style {
    match r {
        RiskLevel::Low => AnsiColor::Green.on_default(),
        RiskLevel::Medium => AnsiColor::Yellow.on_default(),
        RiskLevel::High => AnsiColor::Red.on_default().bold(),
    }
}

fn status_color(s: Status) -> Color {
    match s {
        Status::Succeeded => Color::Green,
        Status::RolledBack | Status::Running => Color::Yellow,
        Status::Failed => Color::Red,
        Status::Planned | Status::Approved => Color::Cyan,
    }
}

/// One command: what it does, its risk and rule, the approval it needs, the exact
/// change, and (once run) how it ended.
pub fn record(r: &Record, color: bool) -> String {
    let pt = Painter(color);
    let c = &r.plan.command;
    let risk = &r.plan.risk;
    let mut out = format!(
        "{}  {}  {}  {} risk  {}\n",
        pt.p(BOLD, &c.id),
        c.action.kind(),
        c.action.resource(),
        pt.p(
            risk_style(risk.level),
            &risk.level.to_string().to_uppercase()
        ),
        pt.p(DIM, &format!("({})", risk.rule)),
    );
    if let Some(i) = &c.incident {
        out.push_str(&format!(
            "  incident  {i} ({} {})\n",
            r.incident_type, r.severity
        ));
    }
    if !c.reason.is_empty() {
        out.push_str(&format!("  reason    {}\n", c.reason));
    }
    let approval = match (&r.approved_by, r.plan.needs_approval) {
        (Some(by), _) => format!("approved by {by}"),
        (None, true) => format!("needed: compass act approve {} --by NAME", c.id),
        (None, false) => "not needed (auto-remediation policy)".into(),
    };
    out.push_str(&format!("  approval  {approval}\n"));
    if let Some(v) = &c.validate {
        out.push_str(&format!(
            "  validate  {} within {} s\n",
            compass_act::executor::command_line(&v.program, &v.args),
            v.within_s
        ));
    }
    out.push_str(&format!("  status    {}\n", r.status));
    if let Some(res) = &r.result {
        let text = match res {
            RunResult::Succeeded => pt.p(AnsiColor::Green.on_default(), "succeeded"),
            RunResult::RolledBack { reason } => format!(
                "{}: {reason}",
                pt.p(AnsiColor::Yellow.on_default(), "rolled back")
            ),
            RunResult::Failed { reason } => {
                format!(
                    "{}: {reason}",
                    pt.p(AnsiColor::Red.on_default().bold(), "FAILED")
                )
            }
        };
        out.push_str(&format!("  result    {text}\n"));
    }
    out.push_str("  change\n");
    for line in r.plan.preview.lines() {
        let style = if line.starts_with("+++") || line.starts_with("---") {
            BOLD
        } else if line.starts_with('+') {
            AnsiColor::Green.on_default()
        } else if line.starts_with('-') {
            AnsiColor::Red.on_default()
        } else if line.starts_with("@@") {
            AnsiColor::Cyan.on_default()
        } else {
            Style::new()
        };
        out.push_str(&format!("    {}\n", pt.p(style, line)));
    }
    out
}

/// The command list.
pub fn list(records: &[Record], color: bool) -> String {
    if records.is_empty() {
        return "No remediation commands: plan one with `compass act plan FILE`.\n".into();
    }
    let mut t = new_table(&[
        "id",
        "action",
        "resource",
        "risk",
        "status",
        "approved by",
        "updated",
    ]);
    for r in records {
        let c = &r.plan.command;
        let mut status = Cell::new(r.status);
        let mut risk = Cell::new(r.plan.risk.level);
        if color {
            status = status.fg(status_color(r.status));
            risk = risk.fg(match r.plan.risk.level {
                RiskLevel::Low => Color::Green,
                RiskLevel::Medium => Color::Yellow,
                RiskLevel::High => Color::Red,
            });
        }
        t.add_row(vec![
            Cell::new(&c.id),
            Cell::new(c.action.kind()),
            Cell::new(c.action.resource()),
            risk,
            status,
            Cell::new(
                r.approved_by
                    .as_deref()
                    .unwrap_or(if r.plan.needs_approval {
                        "(needed)"
                    } else {
                        "(not needed)"
                    }),
            ),
            Cell::new(utc(r.updated_ms)),
        ]);
    }
    format!("{t}\n")
}

fn clip(s: &str, n: usize) -> String {
    let one = s.replace('\n', " ⏎ ");
    if one.chars().count() <= n {
        one
    } else {
        format!("{}…", one.chars().take(n - 1).collect::<String>())
    }
}

/// The audit log: every step, who, whether it went well, the exit code and duration.
pub fn log(entries: &[Entry], color: bool) -> String {
    if entries.is_empty() {
        return "The audit log is empty.\n".into();
    }
    let mut t = new_table(&[
        "time (UTC)",
        "command",
        "step",
        "actor",
        "ok",
        "exit",
        "ms",
        "detail",
    ]);
    for e in entries {
        let mut ok = Cell::new(if e.ok { "✓" } else { "✗" });
        if color {
            ok = ok.fg(if e.ok { Color::Green } else { Color::Red });
        }
        let mut detail = e.detail.clone();
        if let Some(o) = e.output.as_deref().filter(|o| !o.trim().is_empty()) {
            detail.push_str(" → ");
            detail.push_str(o.trim());
        }
        t.add_row(vec![
            Cell::new(utc(e.ts).trim_end_matches(" UTC")),
            Cell::new(&e.command),
            Cell::new(&e.step),
            Cell::new(&e.actor),
            ok,
            Cell::new(e.exit_code.map(|c| c.to_string()).unwrap_or_default())
                .set_alignment(CellAlignment::Right),
            Cell::new(e.duration_ms.map(|c| c.to_string()).unwrap_or_default())
                .set_alignment(CellAlignment::Right),
            Cell::new(clip(&detail, 90)),
        ]);
    }
    format!("{t}\n")
}

/// The IRIS diagnosis: each finding with its evidence, its route and the proposal.
pub fn proposals(ps: &[Proposal], color: bool) -> String {
    let pt = Painter(color);
    if ps.is_empty() {
        return "No errors (severity 1 and up) in the window: nothing to remediate.\n".into();
    }
    let mut out = String::new();
    for (i, p) in ps.iter().enumerate() {
        let f = &p.finding;
        let sev = match f.severity {
            3 => pt.p(AnsiColor::Red.on_default().bold(), "FATAL"),
            2 => pt.p(AnsiColor::Red.on_default(), "SEVERE"),
            _ => pt.p(AnsiColor::Yellow.on_default(), "WARNING"),
        };
        let novelty = if f.before == 0 {
            "new".to_string()
        } else {
            format!("also {} times before the window", f.before)
        };
        out.push_str(&format!(
            "{} {sev}  {}\n",
            pt.p(BOLD, &format!("{}.", i + 1)),
            f.template
        ));
        let lines: Vec<String> = f.lines.iter().map(u64::to_string).collect();
        let when = if f.first_ts == f.last_ts {
            format!("at {}", utc(f.first_ts))
        } else {
            format!("{} → {}", utc(f.first_ts), utc(f.last_ts))
        };
        out.push_str(&format!(
            "   {}× in the window ({novelty}) {when}; line{} {}\n",
            f.count,
            if lines.len() == 1 { "" } else { "s" },
            lines.join(", ")
        ));
        let by = match &p.route.by {
            RoutedBy::Rule { rule } => format!("rule `{rule}`"),
            RoutedBy::Default => "no rule matched".into(),
            RoutedBy::Model { model } => format!("suggested by {model}"),
        };
        out.push_str(&format!(
            "   agent  {} ({by})",
            pt.p(BOLD, p.route.agent.as_str())
        ));
        if let Some(why) = &p.route.fallback {
            out.push_str(&format!(
                " {}",
                pt.p(DIM, &format!("[model not used: {why}]"))
            ));
        }
        out.push('\n');
        match &p.command {
            Some(c) => out.push_str(&format!(
                "   {}  {}: {}\n",
                pt.p(AnsiColor::Green.on_default(), "proposes"),
                c.id,
                p.advice
            )),
            None => out.push_str(&format!(
                "   {}  {}\n",
                pt.p(AnsiColor::Yellow.on_default(), "human"),
                p.advice
            )),
        }
    }
    out
}
