//! Pure detectors: each takes a series (or counts), the baseline and incident windows,
//! and returns a finding or `None` when nothing abnormal is there. Metric shifts
//! (latency, error rate, throughput), saturation against a limit, monotonic growth
//! toward a limit (leaks), per-template log rate shifts and new templates, and
//! error-keyword detection for log lines.
//!
//! Findings carry the numbers an agent needs for its one-line summary and a
//! detector confidence in [0, 1] that the effect is real (not that it is the cause).

mod keywords;

pub use keywords::{error_keyword, is_error_line};

use crate::data::AnalysisWindow;
use crate::model::{EpochMs, TimeRange};
use crate::stats::{self, Direction, ScaleFloor, ScoreConfig, WindowScore};
use serde::{Deserialize, Serialize};

/// Map a robust z (any sign) to a confidence that the shift is real: 0.5 at |z| = 4,
/// about 0.8 at 6 and 0.97 at 9 (capped at 0.99).
pub fn z_confidence(z: f64) -> f64 {
    if !z.is_finite() {
        return if z.is_nan() { 0.0 } else { 0.99 };
    }
    (1.0 / (1.0 + (-(z.abs() - 4.0) / 1.5).exp())).min(0.99)
}

/// Thresholds of [`metric_shift`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShiftConfig {
    pub score: ScoreConfig,
    /// Minimum |robust z| of the incident level.
    pub min_z: f64,
    /// Minimum relative change of the level (`0.3` = 30%) when the baseline is not 0.
    pub min_relative: f64,
    /// Minimum absolute change of the level, in the series' unit.
    pub min_absolute: f64,
    /// Minimum fraction of incident points outside the band.
    pub min_fraction: f64,
}

impl Default for ShiftConfig {
    fn default() -> Self {
        Self {
            score: ScoreConfig::default(),
            min_z: 4.0,
            min_relative: 0.3,
            min_absolute: 0.0,
            min_fraction: 0.2,
        }
    }
}

impl ShiftConfig {
    /// For event counts per bucket: Poisson-like noise, at least one event of scale.
    pub fn counts() -> Self {
        let floor = ScaleFloor {
            relative: 0.1,
            absolute: 1.0,
        };
        Self {
            score: ScoreConfig {
                floor,
                ..ScoreConfig::default()
            },
            min_absolute: 1.0,
            ..Self::default()
        }
    }
    /// With a minimum absolute change (e.g. 0.005 errors/s, 20 ms).
    pub fn with_min_absolute(mut self, min_absolute: f64) -> Self {
        self.min_absolute = min_absolute;
        self
    }
}

/// A significant level shift of a series in the incident window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Shift {
    pub score: WindowScore,
    pub confidence: f64,
}

impl Shift {
    pub fn direction(&self) -> Direction {
        self.score.direction
    }
    pub fn onset(&self) -> EpochMs {
        self.score.onset
    }
    /// Incident level minus baseline median.
    pub fn delta(&self) -> f64 {
        self.score.incident_level - self.score.baseline_median
    }
}

/// A level shift of `points` in `window.incident` against `window.baseline`.
pub fn metric_shift(
    points: &[(EpochMs, f64)],
    window: &AnalysisWindow,
    cfg: &ShiftConfig,
) -> Option<Shift> {
    let score = stats::score_window(points, window.baseline, window.incident, &cfg.score)?;
    let delta = score.incident_level - score.baseline_median;
    let relative_ok =
        score.baseline_median == 0.0 || (delta / score.baseline_median).abs() >= cfg.min_relative;
    let significant = score.direction != Direction::Flat
        && score.z.abs() >= cfg.min_z
        && delta.abs() >= cfg.min_absolute
        && relative_ok
        && score.fraction_abnormal >= cfg.min_fraction
        && (delta > 0.0) == (score.direction == Direction::Up);
    significant.then(|| {
        let persistence = (score.fraction_abnormal / 0.5).min(1.0);
        Shift {
            score,
            confidence: z_confidence(score.z) * (0.6 + 0.4 * persistence),
        }
    })
}

/// Counts of event times per bucket over `range` (bucket starts as timestamps).
pub fn bucket_counts(times: &[EpochMs], range: TimeRange, bucket_ms: i64) -> Vec<(EpochMs, f64)> {
    if range.is_empty() || bucket_ms <= 0 {
        return Vec::new();
    }
    let n = ((range.duration_ms() + bucket_ms - 1) / bucket_ms) as usize;
    let mut out: Vec<(EpochMs, f64)> = (0..n)
        .map(|i| (range.start + i as i64 * bucket_ms, 0.0))
        .collect();
    for &t in times {
        if range.contains(t) {
            out[((t - range.start) / bucket_ms) as usize].1 += 1.0;
        }
    }
    out
}

/// Thresholds of [`saturation`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SaturationConfig {
    /// Utilisation (value / limit) that counts as saturated.
    pub threshold: f64,
    /// Minimum fraction of incident points saturated to report anything.
    pub min_fraction: f64,
    /// A baseline saturated at least this often means the saturation is not new.
    pub baseline_fraction: f64,
    pub persist: usize,
}

impl Default for SaturationConfig {
    fn default() -> Self {
        Self {
            threshold: 0.85,
            min_fraction: 0.25,
            baseline_fraction: 0.1,
            persist: 3,
        }
    }
}

/// A resource running at or near its limit in the incident window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Saturation {
    /// Median utilisation (value / limit) in the baseline.
    pub baseline_utilisation: f64,
    /// Median utilisation from the onset on.
    pub incident_utilisation: f64,
    pub peak_utilisation: f64,
    pub baseline_saturated_fraction: f64,
    pub incident_saturated_fraction: f64,
    /// First persistent saturated point, else the incident start.
    pub onset: EpochMs,
    /// Saturated now but (almost) never in the baseline: a new condition.
    pub is_new: bool,
    pub confidence: f64,
}

/// Utilisation `usage / limit` per usage point, using the latest limit at or before
/// each point (or the first limit for points before it). Non-positive limits skip.
pub fn utilisation(usage: &[(EpochMs, f64)], limit: &[(EpochMs, f64)]) -> Vec<(EpochMs, f64)> {
    let limits: Vec<(EpochMs, f64)> = limit
        .iter()
        .copied()
        .filter(|(_, l)| l.is_finite() && *l > 0.0)
        .collect();
    if limits.is_empty() {
        return Vec::new();
    }
    usage
        .iter()
        .filter_map(|&(t, v)| {
            let i = limits.partition_point(|(lt, _)| *lt <= t);
            let l = limits[i.saturating_sub(1)].1;
            v.is_finite().then_some((t, v / l))
        })
        .collect()
}

/// Saturation of a utilisation series (value / limit, see [`utilisation`]).
pub fn saturation(
    util: &[(EpochMs, f64)],
    window: &AnalysisWindow,
    cfg: &SaturationConfig,
) -> Option<Saturation> {
    let base = stats::values_in(util, window.baseline);
    let inc: Vec<(EpochMs, f64)> = util
        .iter()
        .copied()
        .filter(|(t, _)| window.incident.contains(*t))
        .collect();
    if base.is_empty() || inc.is_empty() {
        return None;
    }
    let frac = |vals: &mut dyn Iterator<Item = f64>, n: usize| {
        vals.filter(|v| *v >= cfg.threshold).count() as f64 / n.max(1) as f64
    };
    let base_frac = frac(&mut base.iter().copied(), base.len());
    let inc_frac = frac(&mut inc.iter().map(|p| p.1), inc.len());
    if inc_frac < cfg.min_fraction {
        return None;
    }
    let persist = cfg.persist.max(1);
    let onset_idx = (0..inc.len()).find(|&i| {
        let end = (i + persist).min(inc.len());
        inc[i..end].iter().all(|p| p.1 >= cfg.threshold)
    });
    let after: Vec<f64> = inc[onset_idx.unwrap_or(0)..].iter().map(|p| p.1).collect();
    let baseline_utilisation = stats::median(&base)?;
    let incident_utilisation = stats::median(&after)?;
    let peak = inc.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let is_new = base_frac < cfg.baseline_fraction && inc_frac - base_frac >= cfg.min_fraction;
    let confidence = if is_new {
        (0.5 + 0.5 * (inc_frac - base_frac)).min(0.95)
    } else {
        (0.3 * (inc_frac - base_frac)).clamp(0.02, 0.3)
    };
    Some(Saturation {
        baseline_utilisation,
        incident_utilisation,
        peak_utilisation: peak,
        baseline_saturated_fraction: base_frac,
        incident_saturated_fraction: inc_frac,
        onset: onset_idx.map_or(window.incident.start, |i| inc[i].0),
        is_new,
        confidence,
    })
}

/// Thresholds of [`monotonic_growth`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GrowthConfig {
    /// Minimum Mann–Kendall z over the incident window.
    pub min_mk_z: f64,
    /// Minimum growth at the fitted rate over the incident window, as a fraction of the
    /// limit (or of the baseline level when there is no limit).
    pub min_growth: f64,
    /// The incident slope must exceed the baseline slope by this factor.
    pub min_slope_ratio: f64,
}

impl Default for GrowthConfig {
    fn default() -> Self {
        Self {
            min_mk_z: 3.0,
            min_growth: 0.1,
            min_slope_ratio: 3.0,
        }
    }
}

/// Steady growth (a leak) in the incident window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Growth {
    /// Theil–Sen slope in the incident window, units per second.
    pub slope_per_s: f64,
    pub baseline_slope_per_s: f64,
    pub mk_z: f64,
    /// Growth at the fitted rate over the incident window, relative to the limit (or
    /// the baseline level).
    pub growth_fraction: f64,
    /// Level / limit at the start and end of the incident window (when a limit is known).
    pub start_fraction: Option<f64>,
    pub end_fraction: Option<f64>,
    /// Seconds until the limit at the current slope, from the last point.
    pub time_to_limit_s: Option<f64>,
    pub onset: EpochMs,
    pub confidence: f64,
}

/// Monotonic growth of `points` in the incident window, against the baseline's trend.
pub fn monotonic_growth(
    points: &[(EpochMs, f64)],
    limit: Option<f64>,
    window: &AnalysisWindow,
    cfg: &GrowthConfig,
) -> Option<Growth> {
    let as_xy = |r: TimeRange| -> Vec<(f64, f64)> {
        points
            .iter()
            .filter(|(t, v)| r.contains(*t) && v.is_finite())
            .map(|(t, v)| ((t - r.start) as f64 / 1000.0, *v))
            .collect()
    };
    let inc = as_xy(window.incident);
    let base = as_xy(window.baseline);
    let t_inc = stats::trend(&inc)?;
    let baseline_slope = stats::trend(&base).map_or(0.0, |t| t.slope);
    let limit = limit.filter(|l| l.is_finite() && *l > 0.0);
    let reference =
        limit.or_else(|| stats::median(&base.iter().map(|p| p.1).collect::<Vec<_>>()))?;
    if reference <= 0.0 {
        return None;
    }
    // Growth at this rate over the whole incident window (a leak cut short by a kill
    // still counts at its full rate).
    let span_s = window.incident.duration_ms() as f64 / 1000.0;
    let growth_fraction = t_inc.slope * span_s / reference;
    let grows = t_inc.slope > 0.0
        && t_inc.mk_z >= cfg.min_mk_z
        && growth_fraction >= cfg.min_growth
        && t_inc.slope >= cfg.min_slope_ratio * baseline_slope.max(0.0);
    if !grows {
        return None;
    }
    let first = inc.first()?;
    let last = inc.last()?;
    let score = stats::score_window(
        points,
        window.baseline,
        window.incident,
        &ScoreConfig::default(),
    );
    let onset = score
        .filter(|s| s.direction == Direction::Up)
        .map_or(window.incident.start, |s| s.onset);
    let level_end = t_inc.intercept + t_inc.slope * last.0;
    Some(Growth {
        slope_per_s: t_inc.slope,
        baseline_slope_per_s: baseline_slope,
        mk_z: t_inc.mk_z,
        growth_fraction,
        start_fraction: limit.map(|l| (t_inc.intercept + t_inc.slope * first.0) / l),
        end_fraction: limit.map(|l| level_end / l),
        time_to_limit_s: limit.map(|l| ((l - level_end) / t_inc.slope).max(0.0)),
        onset,
        confidence: (z_confidence(t_inc.mk_z + 1.0) * (growth_fraction / 0.3).min(1.0)).max(0.3),
    })
}

/// Thresholds of [`template_shifts`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TemplateShiftConfig {
    /// Minimum incident count of a template to report it.
    pub min_count: u64,
    /// Minimum incident/baseline rate ratio.
    pub min_ratio: f64,
    /// Minimum Poisson-like score `(observed - expected) / sqrt(expected + 1)`.
    pub min_score: f64,
}

impl Default for TemplateShiftConfig {
    fn default() -> Self {
        Self {
            min_count: 5,
            min_ratio: 3.0,
            min_score: 4.0,
        }
    }
}

/// Counts of one log template (or any event class) in the two windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCounts<K> {
    pub key: K,
    pub baseline: u64,
    pub incident: u64,
}

/// A template whose rate rose, or that is new in the incident window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateShift<K> {
    pub key: K,
    pub baseline: u64,
    pub incident: u64,
    /// Events per minute in each window.
    pub baseline_rate: f64,
    pub incident_rate: f64,
    /// Rate ratio (infinite for new templates).
    pub ratio: f64,
    pub score: f64,
    /// Absent from the baseline.
    pub is_new: bool,
    pub confidence: f64,
}

/// Rate shift of one count pair (see [`template_shifts`]); `None` when not significant.
pub fn rate_shift<K: Copy>(
    c: &WindowCounts<K>,
    window: &AnalysisWindow,
    cfg: &TemplateShiftConfig,
) -> Option<RateShift<K>> {
    let b_min = window.baseline.duration_ms() as f64 / 60_000.0;
    let i_min = window.incident.duration_ms() as f64 / 60_000.0;
    if b_min <= 0.0 || i_min <= 0.0 || c.incident < cfg.min_count {
        return None;
    }
    let expected = c.baseline as f64 * i_min / b_min;
    let score = (c.incident as f64 - expected) / (expected + 1.0).sqrt();
    let ratio = stats::ratio(c.incident as f64 / i_min, c.baseline as f64 / b_min);
    if score < cfg.min_score || ratio < cfg.min_ratio {
        return None;
    }
    Some(RateShift {
        key: c.key,
        baseline: c.baseline,
        incident: c.incident,
        baseline_rate: c.baseline as f64 / b_min,
        incident_rate: c.incident as f64 / i_min,
        ratio,
        score,
        is_new: c.baseline == 0,
        confidence: z_confidence(score),
    })
}

/// Templates whose rate rose significantly, new ones included, highest score first
/// (ties by key order, so the result is deterministic).
pub fn template_shifts<K: Copy + Ord>(
    counts: &[WindowCounts<K>],
    window: &AnalysisWindow,
    cfg: &TemplateShiftConfig,
) -> Vec<RateShift<K>> {
    let mut out: Vec<RateShift<K>> = counts
        .iter()
        .filter_map(|c| rate_shift(c, window, cfg))
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.key.cmp(&b.key)));
    out
}

#[cfg(test)]
#[path = "detect_tests.rs"]
mod tests;

/// Thresholds of [`sample_shift`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleShiftConfig {
    /// Minimum samples on each side.
    pub min_samples: usize,
    /// Minimum Mann-Whitney z (incident ranked above the baseline).
    pub min_z: f64,
    /// Minimum ratio of the medians.
    pub min_ratio: f64,
    /// Minimum absolute rise of the median, in the samples' unit.
    pub min_absolute: f64,
}

impl Default for SampleShiftConfig {
    fn default() -> Self {
        Self {
            min_samples: 8,
            min_z: 4.0,
            min_ratio: 1.5,
            min_absolute: 0.0,
        }
    }
}

/// A rise of individual samples (e.g. span durations) between two windows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleShift {
    pub baseline_median: f64,
    pub incident_median: f64,
    /// Mann-Whitney z of the incident samples over the baseline ones.
    pub z: f64,
    /// First incident sample from which most samples exceed the baseline's 90th
    /// percentile (the medians and z are of the samples from there on).
    pub onset: EpochMs,
    pub confidence: f64,
}

impl SampleShift {
    pub fn ratio(&self) -> f64 {
        self.incident_median / self.baseline_median.max(f64::MIN_POSITIVE)
    }
}

/// Mann-Whitney z of `b` over `a` (positive when `b` tends to be larger), with
/// average ranks for ties.
pub fn mann_whitney_z(a: &[f64], b: &[f64]) -> Option<f64> {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut all: Vec<(f64, bool)> = a.iter().map(|v| (*v, false)).collect();
    all.extend(b.iter().map(|v| (*v, true)));
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut rank_sum_b = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_b += rank * all[i..=j].iter().filter(|x| x.1).count() as f64;
        i = j + 1;
    }
    let u = rank_sum_b - n2 * (n2 + 1.0) / 2.0;
    let sd = (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt();
    (sd > 0.0).then(|| (u - n1 * n2 / 2.0) / sd)
}

/// Whether the samples of `incident` (time, value) are clearly larger than those of
/// `baseline`: for sources with many events but a short baseline, where per-bucket
/// series have too few points for [`metric_shift`].
pub fn sample_shift(
    baseline: &[(EpochMs, f64)],
    incident: &[(EpochMs, f64)],
    cfg: &SampleShiftConfig,
) -> Option<SampleShift> {
    if baseline.len() < cfg.min_samples || incident.len() < cfg.min_samples {
        return None;
    }
    let base: Vec<f64> = baseline.iter().map(|p| p.1).collect();
    let high = stats::quantile(&base, 0.9)?;
    // A fault may take hold a while into the window: judge the samples from the
    // first point where most of the next ones are above the baseline's bulk.
    let mut sorted = incident.to_vec();
    sorted.sort_by_key(|p| p.0);
    let from = (0..sorted.len())
        .find(|&i| {
            let next = &sorted[i..(i + 5).min(sorted.len())];
            sorted[i].1 > high && next.iter().filter(|p| p.1 > high).count() * 2 > next.len()
        })
        .unwrap_or(0);
    let after = &sorted[from..];
    if after.len() < cfg.min_samples {
        return None;
    }
    let inc: Vec<f64> = after.iter().map(|p| p.1).collect();
    let (bm, im) = (stats::median(&base)?, stats::median(&inc)?);
    let z = mann_whitney_z(&base, &inc)?;
    let ratio_ok = if bm > 0.0 {
        im / bm >= cfg.min_ratio
    } else {
        im > 0.0
    };
    if z < cfg.min_z || !ratio_ok || im - bm < cfg.min_absolute {
        return None;
    }
    let onset = sorted[from].0;
    Some(SampleShift {
        baseline_median: bm,
        incident_median: im,
        z,
        onset,
        confidence: z_confidence(z),
    })
}
