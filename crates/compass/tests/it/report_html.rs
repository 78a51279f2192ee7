//! Structural tests of the HTML report: one self-contained document, every model string
//! escaped, one chart per point sample, and a timeline. (The look is checked by eye from a
//! headless-browser screenshot; see the report module docs.)

use compass::report;
use compass_core::model::{Investigation, Sample};

fn point_samples(inv: &Investigation) -> usize {
    inv.hypotheses
        .iter()
        .take(report::DEFAULT_TOP)
        .flat_map(|h| h.supporting.iter().chain(&h.contradicting))
        .filter(|e| matches!(e.sample, Sample::Points { .. }))
        .count()
}

#[test]
fn is_one_complete_document() {
    let page = report::html(&crate::report_fixture::investigation());
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.matches("<html").count(), 1);
    assert!(page.trim_end().ends_with("</html>"));
    assert_eq!(page.matches("<style>").count(), 1);
}

#[test]
fn is_self_contained() {
    let page = report::html(&crate::report_fixture::investigation());
    for needle in ["src=", "href=", "<script", "<link", "@import", "url("] {
        assert!(!page.contains(needle), "found {needle:?}");
    }
    assert!(!page.contains("http://") && !page.contains("https://"));
}

#[test]
fn log_lines_are_escaped() {
    let page = report::html(&crate::report_fixture::investigation());
    assert!(page.contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"));
    assert!(page.contains("on-call acknowledged &lt;page&gt;"));
    assert!(!page.contains("<page>"));
}

#[test]
fn one_chart_per_point_sample_plus_the_timeline() {
    let inv = crate::report_fixture::investigation();
    let page = report::html(&inv);
    let charts = point_samples(&inv);
    assert_eq!(charts, 4);
    assert_eq!(page.matches("<svg class=\"chart\"").count(), charts);
    assert_eq!(page.matches("<svg class=\"timeline\"").count(), 1);
    assert_eq!(page.matches("<svg").count(), charts + 1);
}

#[test]
fn charts_mark_the_alert_and_the_onset() {
    let page = report::html(&crate::report_fixture::investigation());
    let first_chart = page.split("<svg class=\"chart\"").nth(1).unwrap();
    let first_chart = &first_chart[..first_chart.find("</svg>").unwrap()];
    assert!(first_chart.contains("line class=\"m-alert\""));
    assert!(first_chart.contains("line class=\"m-onset\""));
    assert!(
        first_chart.contains("09:32:00"),
        "alert marker labelled with its UTC time"
    );
}

#[test]
fn shows_hypotheses_queries_and_agents() {
    let inv = crate::report_fixture::investigation();
    let page = report::html(&inv);
    assert_eq!(
        page.matches("<article class=\"card hyp").count(),
        inv.hypotheses.len()
    );
    assert_eq!(page.matches("class=\"card hyp ruled-out\"").count(), 1);
    assert!(page.contains("hikaricp_connections_active{service=&quot;payments&quot;"));
    assert!(page.contains("logs/payments.log:1203-1288"));
    for run in &inv.agents {
        assert!(page.contains(&format!("<td class=\"mono\">{}</td>", run.agent)));
    }
    assert!(page.contains("timed_out") && page.contains("degraded"));
}

#[test]
fn empty_investigation_renders_everywhere() {
    let mut inv = crate::report_fixture::investigation();
    inv.hypotheses.clear();
    inv.agents.clear();
    inv.timeline.clear();
    let page = report::html(&inv);
    assert!(page.contains("No hypothesis survived"));
    assert_eq!(page.matches("<svg").count(), 1);
    assert!(report::markdown(&inv).contains("undetermined"));
    assert!(report::terminal(&inv, &report::RenderOptions::default()).contains("no hypotheses"));
    assert_eq!(report::json(&inv)["hypotheses"], serde_json::json!([]));
}

#[test]
fn log_samples_mark_their_template_and_variables() {
    let page = report::html(&crate::report_fixture::investigation());
    assert!(page.contains("<span class=\"muted\">template</span>"));
    // The first sample line matches the template: its numbers are the variables.
    assert!(
        page.contains("<span class=\"tpl\">HikariPool-1 - Connection is not available, request timed out after <span class=\"var\">5000</span>ms (total=<span class=\"var\">50</span>,"),
        "the template's text with its variables"
    );
    assert!(page.contains("waiting=<span class=\"var\">187</span>)</span>"));
    // A line of another shape in the same sample stays plain (and escaped).
    assert!(page.contains("rejected body=&quot;&lt;script&gt;"));
}

#[test]
fn a_trace_path_is_drawn_as_a_waterfall() {
    let page = report::html(&crate::report_fixture::investigation());
    let wf = page
        .split("<div class=\"wf\">")
        .nth(1)
        .expect("a waterfall");
    let wf = &wf[..wf.find("</div>\n").unwrap() + 6];
    let rows = page.matches("<div class=\"wf-row").count();
    assert_eq!(rows, 4, "one row per span of the path");
    assert_eq!(page.matches("wf-row is-blamed").count(), 1);
    assert!(
        page.contains("class=\"wf-bar blamed err\""),
        "the blamed span failed"
    );
    // The root spans the whole axis; the last child starts near the end.
    assert!(page.contains("left:0.00%;width:100.00%"), "{wf}");
    assert!(page.contains("left:97.89%"), "{wf}");
}
