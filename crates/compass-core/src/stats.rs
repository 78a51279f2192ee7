//! Robust statistics over plain slices: median, MAD, quantiles, robust z-scores of an
//! incident window against a baseline, mean-shift change points, Theil–Sen trends, and
//! [`score_window`], which says how abnormal the incident part of a series is.
//!
//! Every function ignores non-finite values and returns `None` (or a partial result)
//! when too little data is left, never panics. Nothing here allocates more than a
//! sorted copy of its input.

use crate::model::{EpochMs, TimeRange};
use serde::{Deserialize, Serialize};

/// Scale factor that makes the MAD a consistent estimator of a normal σ.
pub const MAD_TO_SIGMA: f64 = 1.4826;

/// The finite values of `xs`, sorted ascending.
pub fn sorted_finite(xs: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Quantile `q` in [0, 1] of already sorted finite data (linear interpolation).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() || !q.is_finite() {
        return None;
    }
    let q = q.clamp(0.0, 1.0);
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// Quantile `q` in [0, 1] of the finite values of `xs`.
pub fn quantile(xs: &[f64], q: f64) -> Option<f64> {
    quantile_sorted(&sorted_finite(xs), q)
}

pub fn median(xs: &[f64]) -> Option<f64> {
    quantile(xs, 0.5)
}

pub fn mean(xs: &[f64]) -> Option<f64> {
    let (sum, n) = xs
        .iter()
        .filter(|x| x.is_finite())
        .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Median absolute deviation from the median (unscaled).
pub fn mad(xs: &[f64]) -> Option<f64> {
    let m = median(xs)?;
    let dev: Vec<f64> = xs
        .iter()
        .filter(|x| x.is_finite())
        .map(|x| (x - m).abs())
        .collect();
    median(&dev)
}

/// Interquartile range (q75 - q25).
pub fn iqr(xs: &[f64]) -> Option<f64> {
    let s = sorted_finite(xs);
    Some(quantile_sorted(&s, 0.75)? - quantile_sorted(&s, 0.25)?)
}

/// Location and spread of a baseline, robust to outliers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RobustBaseline {
    pub median: f64,
    /// σ estimate: 1.4826·MAD, else IQR/1.349, floored by [`ScaleFloor`].
    pub scale: f64,
    pub n: usize,
}

/// Lower bound on the baseline scale so that flat baselines do not make every wiggle
/// infinitely significant: `max(relative·|median|, absolute)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScaleFloor {
    pub relative: f64,
    pub absolute: f64,
}

impl Default for ScaleFloor {
    fn default() -> Self {
        Self {
            relative: 0.05,
            absolute: 1e-9,
        }
    }
}

impl RobustBaseline {
    pub fn of(xs: &[f64], floor: ScaleFloor) -> Option<Self> {
        let s = sorted_finite(xs);
        let median = quantile_sorted(&s, 0.5)?;
        let dev = sorted_finite(&s.iter().map(|x| (x - median).abs()).collect::<Vec<_>>());
        let mad = quantile_sorted(&dev, 0.5).unwrap_or(0.0) * MAD_TO_SIGMA;
        let iqr_sigma = (quantile_sorted(&s, 0.75)? - quantile_sorted(&s, 0.25)?) / 1.349;
        let raw = if mad > 0.0 { mad } else { iqr_sigma };
        let scale = raw.max(floor.relative * median.abs()).max(floor.absolute);
        Some(Self {
            median,
            scale,
            n: s.len(),
        })
    }
    /// Robust z of one value.
    pub fn z(&self, x: f64) -> f64 {
        (x - self.median) / self.scale
    }
}

/// Robust z of the incident median against the baseline median/scale.
pub fn robust_z(baseline: &[f64], incident: &[f64], floor: ScaleFloor) -> Option<f64> {
    let b = RobustBaseline::of(baseline, floor)?;
    Some(b.z(median(incident)?))
}

/// The best single mean-shift split of a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChangePoint {
    /// First index of the second segment.
    pub index: usize,
    /// Welch-like t statistic of the difference of the segment means (≥ 0).
    pub score: f64,
    pub before_mean: f64,
    pub after_mean: f64,
}

/// Best single split by least squares (the likelihood-ratio split for a mean shift
/// with common variance), with at least `min_segment` points on either side.
/// Non-finite values are skipped (indices refer to the original slice).
pub fn change_point(xs: &[f64], min_segment: usize) -> Option<ChangePoint> {
    let idx: Vec<usize> = (0..xs.len()).filter(|&i| xs[i].is_finite()).collect();
    let n = idx.len();
    let min_segment = min_segment.max(1);
    if n < 2 * min_segment {
        return None;
    }
    let vals: Vec<f64> = idx.iter().map(|&i| xs[i]).collect();
    let total: f64 = vals.iter().sum();
    let total_sq: f64 = vals.iter().map(|v| v * v).sum();
    let mut best: Option<(usize, f64)> = None;
    let mut left = 0.0;
    for (k, v) in vals.iter().enumerate().take(n - min_segment) {
        left += v;
        let n1 = k + 1;
        if n1 < min_segment {
            continue;
        }
        let n2 = n - n1;
        let right = total - left;
        // Reduction in the sum of squares obtained by splitting at n1.
        let gain = left * left / n1 as f64 + right * right / n2 as f64 - total * total / n as f64;
        if best.is_none_or(|(_, g)| gain > g) {
            best = Some((n1, gain));
        }
    }
    let (n1, gain) = best?;
    let n2 = n - n1;
    let before_mean = vals[..n1].iter().sum::<f64>() / n1 as f64;
    let after_mean = vals[n1..].iter().sum::<f64>() / n2 as f64;
    let sse = (total_sq - total * total / n as f64 - gain).max(0.0);
    let sigma = (sse / (n as f64 - 2.0).max(1.0)).sqrt();
    let se = sigma * (1.0 / n1 as f64 + 1.0 / n2 as f64).sqrt();
    let diff = (after_mean - before_mean).abs();
    let floor = 1e-9_f64.max(1e-3 * before_mean.abs().max(after_mean.abs()));
    let score = diff / se.max(floor);
    Some(ChangePoint {
        index: idx[n1],
        score,
        before_mean,
        after_mean,
    })
}

/// A linear trend fitted robustly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// Theil–Sen slope, value units per x unit.
    pub slope: f64,
    pub intercept: f64,
    /// Mann–Kendall z statistic (monotonic-trend significance; |z| > 1.96 ≈ p < 0.05).
    pub mk_z: f64,
    pub n: usize,
}

/// Theil–Sen slope and Mann–Kendall significance of `(x, y)` points. Series longer
/// than 400 points are thinned evenly to keep the pairwise work bounded.
pub fn trend(points: &[(f64, f64)]) -> Option<Trend> {
    let mut pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if pts.len() > 400 {
        let stride = pts.len().div_ceil(400);
        pts = pts.into_iter().step_by(stride).collect();
    }
    let n = pts.len();
    if n < 3 {
        return None;
    }
    let mut slopes = Vec::with_capacity(n * (n - 1) / 2);
    let mut s: i64 = 0;
    for i in 0..n {
        for j in i + 1..n {
            let dx = pts[j].0 - pts[i].0;
            let dy = pts[j].1 - pts[i].1;
            if dx != 0.0 {
                slopes.push(dy / dx);
            }
            s += match dy.partial_cmp(&0.0) {
                Some(std::cmp::Ordering::Greater) => 1,
                Some(std::cmp::Ordering::Less) => -1,
                _ => 0,
            };
        }
    }
    let slope = median(&slopes)?;
    let intercept = median(&pts.iter().map(|(x, y)| y - slope * x).collect::<Vec<_>>())?;
    let nf = n as f64;
    let var = nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0;
    let mk_z = match s {
        0 => 0.0,
        s if s > 0 => (s as f64 - 1.0) / var.sqrt(),
        s => (s as f64 + 1.0) / var.sqrt(),
    };
    Some(Trend {
        slope,
        intercept,
        mk_z,
        n,
    })
}

/// Which way a series moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
    Flat,
}

/// How abnormal the incident part of a series is, compared to its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowScore {
    pub direction: Direction,
    /// Robust z of the incident level (median after the onset) against the baseline.
    pub z: f64,
    pub baseline_median: f64,
    pub baseline_scale: f64,
    /// Median of the incident window from the onset on.
    pub incident_level: f64,
    /// `incident_level / baseline_median` (infinite when the baseline is zero).
    pub ratio: f64,
    /// First time the series left the baseline band for good, else the incident start.
    pub onset: EpochMs,
    /// Fraction of incident points beyond the band in `direction`.
    pub fraction_abnormal: f64,
    pub baseline_points: usize,
    pub incident_points: usize,
}

/// Settings for [`score_window`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreConfig {
    pub floor: ScaleFloor,
    /// Band half-width in robust σ that counts as abnormal.
    pub band_z: f64,
    /// Points that must stay out of the band (within the next `persist + 2`) to call
    /// an onset.
    pub persist: usize,
    /// Minimum baseline / incident points for a score.
    pub min_points: usize,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        Self {
            floor: ScaleFloor::default(),
            band_z: 3.0,
            persist: 3,
            min_points: 3,
        }
    }
}

/// Score the part of `points` inside `incident` against the part inside `baseline`.
/// Returns `None` when either side has fewer than `min_points` finite values.
pub fn score_window(
    points: &[(EpochMs, f64)],
    baseline: TimeRange,
    incident: TimeRange,
    cfg: &ScoreConfig,
) -> Option<WindowScore> {
    let base: Vec<f64> = points
        .iter()
        .filter(|(t, v)| baseline.contains(*t) && v.is_finite())
        .map(|p| p.1)
        .collect();
    let inc: Vec<(EpochMs, f64)> = points
        .iter()
        .copied()
        .filter(|(t, v)| incident.contains(*t) && v.is_finite())
        .collect();
    if base.len() < cfg.min_points || inc.len() < cfg.min_points {
        return None;
    }
    let b = RobustBaseline::of(&base, cfg.floor)?;
    let inc_vals: Vec<f64> = inc.iter().map(|p| p.1).collect();
    let whole_z = b.z(median(&inc_vals)?);
    let up_frac = inc_vals.iter().filter(|v| b.z(**v) > cfg.band_z).count() as f64;
    let down_frac = inc_vals.iter().filter(|v| b.z(**v) < -cfg.band_z).count() as f64;
    let direction = if up_frac == 0.0 && down_frac == 0.0 {
        Direction::Flat
    } else if up_frac > down_frac || (up_frac == down_frac && whole_z >= 0.0) {
        Direction::Up
    } else {
        Direction::Down
    };
    let out = |v: f64| match direction {
        Direction::Up => b.z(v) > cfg.band_z,
        Direction::Down => b.z(v) < -cfg.band_z,
        Direction::Flat => false,
    };
    let onset_idx = first_persistent(&inc_vals, cfg.persist, out);
    let after: Vec<f64> = inc_vals[onset_idx.unwrap_or(0)..].to_vec();
    let level = median(&after)?;
    let fraction_abnormal = inc_vals.iter().filter(|v| out(**v)).count() as f64 / inc.len() as f64;
    Some(WindowScore {
        direction,
        z: b.z(level),
        baseline_median: b.median,
        baseline_scale: b.scale,
        incident_level: level,
        ratio: ratio(level, b.median),
        onset: onset_idx.map_or(incident.start, |i| inc[i].0),
        fraction_abnormal,
        baseline_points: base.len(),
        incident_points: inc.len(),
    })
}

/// `value / base`, with `0 / 0 = 1` and `x / 0 = ±∞`.
pub fn ratio(value: f64, base: f64) -> f64 {
    if base != 0.0 {
        value / base
    } else if value == 0.0 {
        1.0
    } else {
        f64::INFINITY * value.signum()
    }
}

/// First index from which at least `persist` of the next `persist + 2` values are out
/// of the band (so one stray point neither starts nor breaks an episode).
fn first_persistent(vals: &[f64], persist: usize, out: impl Fn(f64) -> bool) -> Option<usize> {
    let persist = persist.max(1);
    (0..vals.len()).find(|&i| {
        if !out(vals[i]) {
            return false;
        }
        let end = (i + persist + 2).min(vals.len());
        let hits = vals[i..end].iter().filter(|v| out(**v)).count();
        hits >= persist.min(end - i)
    })
}

/// Values of `points` inside `range`.
pub fn values_in(points: &[(EpochMs, f64)], range: TimeRange) -> Vec<f64> {
    points
        .iter()
        .filter(|(t, _)| range.contains(*t))
        .map(|p| p.1)
        .collect()
}

/// Up to `max` points centred on `at` (for evidence samples).
pub fn sample_around(points: &[(EpochMs, f64)], at: EpochMs, max: usize) -> Vec<(EpochMs, f64)> {
    if points.len() <= max {
        return points.to_vec();
    }
    let centre = points.partition_point(|(t, _)| *t < at);
    let start = centre.saturating_sub(max / 2).min(points.len() - max);
    points[start..start + max].to_vec()
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
