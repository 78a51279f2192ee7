//! What the web UI adds to the HTML report: a top bar back to the incident list, a
//! decision bar on every hypothesis card (the standing verdict, a note, Confirm and
//! Reject), and one small script that posts the decision to the API and updates the
//! bar in place. The static report (`html()`) has none of it and no script at all.

use super::html::escape;
use std::collections::BTreeMap;
use std::fmt::Write;

/// What the web UI adds to the report page.
#[derive(Debug, Clone, Default)]
pub struct Interactive {
    /// The API path the decision buttons POST to, e.g. `/api/v1/investigations/inv_123/decisions`.
    pub decisions_url: String,
    /// Standing verdicts: hypothesis id → (confirmed, who, note).
    pub verdicts: BTreeMap<String, (bool, String, String)>,
    /// Link back to the incident list, e.g. `/`.
    pub back_url: String,
}

const STYLE: &str = ".uibar{display:flex;justify-content:space-between;align-items:center;margin-bottom:14px}\
.uibar a{color:var(--accent);text-decoration:none}\
.decide{display:flex;gap:8px;align-items:center;margin:10px 0 4px;padding:8px 10px;background:var(--card2);border:1px solid var(--border);border-radius:8px}\
.decide input{flex:1;background:var(--bg);color:var(--text);border:1px solid var(--border);border-radius:6px;padding:5px 8px}\
.decide button{border:0;border-radius:6px;padding:5px 12px;font-weight:600;cursor:pointer}\
.decide button.confirm{background:var(--green);color:#0d1117}.decide button.reject{background:var(--red);color:#0d1117}\
.decide button:disabled{opacity:.5;cursor:wait}.decide .verdict{font-size:12.5px;min-width:160px}\
.decide[data-verdict=confirmed]{border-color:var(--green)}.decide[data-verdict=rejected]{border-color:var(--red)}";

pub(super) fn top_bar(page: &mut String, ui: &Interactive) {
    let _ = writeln!(
        page,
        "<style>{STYLE}</style><div class=\"uibar\"><a href=\"{}\">← Incidents</a>\
         <span class=\"muted\">confirm or reject each hypothesis: COMPASS learns from it</span></div>",
        escape(&ui.back_url)
    );
}

pub(super) fn decision_bar(page: &mut String, ui: &Interactive, hypothesis: &str) {
    let (verdict_attr, verdict_text) = match ui.verdicts.get(hypothesis) {
        Some((true, by, note)) => (
            "confirmed",
            format!(
                "<span class=\"ok\">confirmed by {}{}</span>",
                escape(by),
                note_text(note)
            ),
        ),
        Some((false, by, note)) => (
            "rejected",
            format!(
                "<span class=\"bad\">rejected by {}{}</span>",
                escape(by),
                note_text(note)
            ),
        ),
        None => (
            "",
            "<span class=\"muted\">no decision yet</span>".to_string(),
        ),
    };
    let id = escape(hypothesis);
    let _ = writeln!(
        page,
        "<div class=\"decide\" data-verdict=\"{verdict_attr}\"><span class=\"verdict\">{verdict_text}</span>\
         <input type=\"text\" placeholder=\"note (optional)\" maxlength=\"4000\">\
         <button class=\"confirm\" data-hypothesis=\"{id}\">Confirm</button>\
         <button class=\"reject\" data-hypothesis=\"{id}\">Reject</button></div>"
    );
}

fn note_text(note: &str) -> String {
    if note.is_empty() {
        String::new()
    } else {
        format!(": {}", escape(note))
    }
}

pub(super) fn script(page: &mut String, ui: &Interactive) {
    let url = serde_json::to_string(&ui.decisions_url).unwrap_or_else(|_| "\"\"".into());
    let _ = write!(
        page,
        "<script>\nconst DECISIONS = {url};\n{}</script>\n",
        include_str!("decide.js")
    );
}
