//! Small hand-written SVG charts for the HTML report: a line chart of one evidence series
//! with axes and vertical time markers, and a horizontal incident timeline.
//!
//! Charts are plain strings styled by the report's CSS classes (`.grid`, `.series`,
//! `.m-alert`, ...), use no element ids (several charts share one document) and escape every
//! label. Coordinates are rounded to one decimal so output is compact and deterministic.

use super::html::escape;
use super::{Event, EventKind, utc_time};
use chrono::DateTime;
use compass_core::model::EpochMs;
use std::fmt::Write;

const CHART_W: f64 = 460.0;
const CHART_H: f64 = 150.0;
const LEFT: f64 = 46.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 22.0;

/// A vertical line at `time`, labelled, drawn with CSS class `class`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Marker<'a> {
    pub time: EpochMs,
    pub label: &'a str,
    pub class: &'a str,
}

/// Linear map from `[d0, d1]` to `[r0, r1]`.
fn scale(v: f64, (d0, d1): (f64, f64), (r0, r1): (f64, f64)) -> f64 {
    if d1 == d0 {
        (r0 + r1) / 2.0
    } else {
        r0 + (v - d0) / (d1 - d0) * (r1 - r0)
    }
}

/// A compact axis number: `1.2k`, `50`, `0.35`.
fn compact(v: f64) -> String {
    let abs = v.abs();
    let (scaled, suffix) = match abs {
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e4 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let digits = if scaled.abs() >= 100.0 || scaled.fract() == 0.0 {
        0
    } else if scaled.abs() >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{scaled:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{suffix}")
}

/// The smallest "round" number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten)
/// at or above `v`; 0 for non-positive `v`.
fn nice_ceil(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 0.0;
    }
    let power = 10f64.powf(v.log10().floor());
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&candidate| candidate >= v * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// The y range shown: round numbers with a little headroom, from 0 unless values go negative.
fn y_domain(min: f64, max: f64) -> (f64, f64) {
    let low = if min >= 0.0 {
        0.0
    } else {
        -nice_ceil(-min * 1.05)
    };
    let high = if max <= 0.0 {
        0.0
    } else {
        nice_ceil(max * 1.05)
    };
    if high > low {
        (low, high)
    } else {
        (low, low + 1.0)
    }
}

/// The time range shown: the series, widened to take in markers that lie just outside it
/// (within half the series' span); a single point gets a minute around it.
fn x_domain(first: EpochMs, last: EpochMs, markers: &[Marker<'_>]) -> (f64, f64) {
    let (mut start, mut end) = if first == last {
        (first as f64 - 30_000.0, last as f64 + 30_000.0)
    } else {
        (first as f64, last as f64)
    };
    let reach = (end - start) * 0.5;
    for marker in markers {
        let t = marker.time as f64;
        if t < start && start - t <= reach {
            start = t;
        } else if t > end && t - end <= reach {
            end = t;
        }
    }
    (start, end)
}

/// Approximate width of a chart label in SVG units (11px monospace).
fn label_width(text: &str) -> f64 {
    text.chars().count() as f64 * 6.7
}

/// A line chart of `points` with axes, min/max labels, start/end times and `markers`.
pub(super) fn line_chart(points: &[(EpochMs, f64)], markers: &[Marker<'_>], title: &str) -> String {
    let mut series: Vec<(EpochMs, f64)> =
        points.iter().copied().filter(|p| p.1.is_finite()).collect();
    series.sort_by_key(|p| p.0);
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {CHART_W} {CHART_H}\" role=\"img\" aria-label=\"{t}\"><title>{t}</title>",
        t = escape(title)
    );
    let (Some(first), Some(last)) = (series.first(), series.last()) else {
        let _ = write!(
            svg,
            "<text class=\"lbl\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no data points</text></svg>",
            CHART_W / 2.0,
            CHART_H / 2.0
        );
        return svg;
    };
    let x_domain = x_domain(first.0, last.0, markers);
    let min = series.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let max = series.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let y_dom = y_domain(min, max);
    let x_range = (LEFT, CHART_W - RIGHT);
    let y_range = (CHART_H - BOTTOM, TOP);
    let x = |t: EpochMs| scale(t as f64, x_domain, x_range);
    let y = |v: f64| scale(v, y_dom, y_range);

    // Horizontal grid with value labels at bottom, middle and top.
    for v in [y_dom.0, (y_dom.0 + y_dom.1) / 2.0, y_dom.1] {
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{py:.1}\" y2=\"{py:.1}\"/>\
             <text class=\"lbl\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            CHART_W - RIGHT,
            LEFT - 5.0,
            y(v) + 3.5,
            compact(v),
            py = y(v)
        );
    }
    // Time labels at both ends of the x axis.
    let bottom = CHART_H - BOTTOM;
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{bottom}\" y2=\"{bottom}\"/>\
         <text class=\"lbl\" x=\"{LEFT}\" y=\"{:.1}\">{}</text>\
         <text class=\"lbl\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} UTC</text>",
        CHART_W - RIGHT,
        CHART_H - 6.0,
        utc_time(x_domain.0 as EpochMs),
        CHART_W - RIGHT,
        CHART_H - 6.0,
        utc_time(x_domain.1 as EpochMs)
    );
    let coords: Vec<String> = series
        .iter()
        .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
        .collect();
    let _ = write!(
        svg,
        "<path class=\"area\" d=\"M{:.1},{bottom} L{} L{:.1},{bottom} Z\"/><polyline class=\"series\" points=\"{}\"/>",
        x(first.0),
        coords.join(" L"),
        x(last.0),
        coords.join(" ")
    );
    if series.len() == 1 {
        let _ = write!(
            svg,
            "<circle class=\"dot\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\"/>",
            x(first.0),
            y(first.1)
        );
    }
    let mut visible: Vec<&Marker<'_>> = markers
        .iter()
        .filter(|m| (m.time as f64) >= x_domain.0 && (m.time as f64) <= x_domain.1)
        .collect();
    visible.sort_by_key(|m| m.time);
    for (i, marker) in visible.iter().enumerate() {
        let mx = x(marker.time);
        let text = format!("{} {}", marker.label, utc_time(marker.time));
        let width = label_width(&text);
        let crowded_by_next = visible
            .get(i + 1)
            .is_some_and(|next| x(next.time) - mx < width + 8.0);
        let room_left = mx - 4.0 - width >= 0.0;
        let anchor = if (mx + 4.0 + width > CHART_W) || (crowded_by_next && room_left) {
            "end"
        } else {
            "start"
        };
        let dx = if anchor == "end" { -4.0 } else { 4.0 };
        let _ = write!(
            svg,
            "<line class=\"{c}\" x1=\"{mx:.1}\" x2=\"{mx:.1}\" y1=\"{TOP}\" y2=\"{bottom}\"/>\
             <text class=\"lbl {c}\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            mx + dx,
            TOP - 6.0,
            escape(&text),
            c = escape(marker.class)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A tick step (ms) that gives at most about eight ticks over `span_ms`.
fn tick_step(span_ms: i64) -> i64 {
    const STEPS: [i64; 14] = [
        1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400,
    ];
    STEPS
        .iter()
        .map(|s| s * 1000)
        .find(|step| span_ms / step <= 8)
        .unwrap_or(86_400_000 * ((span_ms / 86_400_000 / 8) + 1))
}

/// A horizontal timeline around the events and the alert: a time axis, a line at the alert,
/// and one numbered dot per event, stacked in lanes where they would overlap. Numbers are
/// 1-based positions in `events`, matching the list printed next to it.
pub(super) fn timeline(events: &[Event], alert: EpochMs) -> String {
    const W: f64 = 1000.0;
    const PAD: f64 = 24.0;
    const LANE: f64 = 24.0;
    let first = events
        .iter()
        .map(|e| e.time)
        .chain([alert])
        .min()
        .unwrap_or(alert);
    let last = events
        .iter()
        .map(|e| e.time)
        .chain([alert])
        .max()
        .unwrap_or(alert);
    let pad = ((last - first) / 12).max(30_000);
    let (start, end) = (first - pad, last + pad);
    let domain = (start as f64, end as f64);
    let x = |t: EpochMs| scale(t as f64, domain, (PAD, W - PAD));

    // Greedy lanes: a dot goes in the first lane whose last dot is far enough to its left.
    let mut lane_ends: Vec<f64> = Vec::new();
    let mut lanes = Vec::with_capacity(events.len());
    for event in events {
        let ex = x(event.time);
        let lane = lane_ends
            .iter()
            .position(|&end| ex - end >= 22.0)
            .unwrap_or(lane_ends.len());
        if lane == lane_ends.len() {
            lane_ends.push(ex);
        } else {
            lane_ends[lane] = ex;
        }
        lanes.push(lane);
    }
    let axis_y = 16.0 + LANE * lane_ends.len().max(1) as f64;
    let height = axis_y + 30.0;
    let mut svg = format!(
        "<svg class=\"timeline\" viewBox=\"0 0 {W} {height}\" role=\"img\" aria-label=\"incident timeline\">"
    );
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{PAD}\" x2=\"{:.1}\" y1=\"{axis_y}\" y2=\"{axis_y}\"/>",
        W - PAD
    );
    let step = tick_step(end - start);
    let mut tick = start.div_euclid(step) * step;
    while tick <= end {
        if tick >= start {
            let tx = x(tick);
            let format = if step < 60_000 { "%H:%M:%S" } else { "%H:%M" };
            let text = DateTime::from_timestamp_millis(tick)
                .map(|t| t.format(format).to_string())
                .unwrap_or_default();
            let _ = write!(
                svg,
                "<line class=\"grid\" x1=\"{tx:.1}\" x2=\"{tx:.1}\" y1=\"8\" y2=\"{:.1}\"/><text class=\"lbl\" x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{text}</text>",
                axis_y + 4.0,
                axis_y + 18.0
            );
        }
        tick += step;
    }
    let ax = x(alert);
    let _ = write!(
        svg,
        "<line class=\"m-alert\" x1=\"{ax:.1}\" x2=\"{ax:.1}\" y1=\"4\" y2=\"{axis_y}\"/>"
    );
    for (i, (event, lane)) in events.iter().zip(&lanes).enumerate() {
        let class = match event.kind {
            EventKind::Alert => "dot-alert",
            EventKind::Entry => "dot-entry",
            EventKind::Onset(_) => "dot-onset",
        };
        let cy = axis_y - 14.0 - LANE * *lane as f64;
        let _ = write!(
            svg,
            "<g class=\"{class}\"><title>{} {}</title><circle cx=\"{:.1}\" cy=\"{cy:.1}\" r=\"10\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text></g>",
            utc_time(event.time),
            escape(&event.label),
            x(event.time),
            x(event.time),
            cy + 3.5,
            i + 1
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_numbers() {
        assert_eq!(compact(50.0), "50");
        assert_eq!(compact(0.35), "0.35");
        assert_eq!(compact(12_500.0), "12.5k");
        assert_eq!(compact(2.5e6), "2.5M");
    }

    #[test]
    fn empty_series_still_draws_one_svg() {
        let svg = line_chart(&[(0, f64::NAN)], &[], "x");
        assert!(svg.starts_with("<svg") && svg.contains("no data"));
    }

    #[test]
    fn markers_outside_the_series_are_left_out() {
        let marker = Marker {
            time: 10_000_000,
            label: "alert",
            class: "m-alert",
        };
        let svg = line_chart(&[(0, 1.0), (60_000, 2.0)], &[marker], "x");
        assert!(!svg.contains("m-alert"));
    }

    #[test]
    fn markers_just_outside_widen_the_chart() {
        let marker = Marker {
            time: 80_000,
            label: "alert",
            class: "m-alert",
        };
        assert_eq!(x_domain(0, 60_000, &[marker]), (0.0, 80_000.0));
    }

    #[test]
    fn y_axis_uses_round_numbers() {
        assert_eq!(y_domain(14.0, 50.0), (0.0, 60.0));
        assert_eq!(y_domain(0.2, 2.9), (0.0, 4.0));
        assert_eq!(y_domain(0.0, 0.0), (0.0, 1.0));
        assert_eq!(y_domain(-3.0, 5.0), (-4.0, 6.0));
    }
}
