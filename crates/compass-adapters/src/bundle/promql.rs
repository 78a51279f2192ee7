//! Evaluation of a `MetricQuery` over the in-memory series store, meaning exactly what
//! its `to_promql()` rendering means in Prometheus 3: instant selectors look back five
//! minutes, range windows are left-open `(t - w, t]`, `rate` extrapolates like
//! Prometheus's `extrapolatedRate` (counter resets handled), `histogram_quantile`
//! interpolates linearly inside buckets, and aggregation keeps only the `by` labels.
//! Steps with no data are omitted rather than NaN.

use super::metrics::{MetricStore, StoredSeries};
use compass_core::{Aggregation, EpochMs, MatcherSet, MetricFunc, MetricQuery, Series, TimeRange};
use std::collections::BTreeMap;

/// Prometheus's default lookback delta.
pub(crate) const LOOKBACK_MS: i64 = 5 * 60 * 1000;
/// Prometheus's limit on points per series in a range query.
pub(crate) const MAX_STEPS: i64 = 11_000;

/// Why a query cannot be evaluated.
pub(crate) fn check(query: &MetricQuery, range: TimeRange, step_ms: i64) -> Result<(), String> {
    if step_ms <= 0 {
        return Err(format!("step must be positive, got {step_ms} ms"));
    }
    if range.duration_ms() / step_ms >= MAX_STEPS {
        return Err(format!(
            "more than {MAX_STEPS} points per series; use a larger step than {step_ms} ms"
        ));
    }
    MatcherSet::new(&query.matchers)?;
    match query.func {
        MetricFunc::Rate { window_s: 0 } | MetricFunc::HistogramQuantile { window_s: 0, .. } => {
            Err("rate window must be at least 1 s".to_string())
        }
        MetricFunc::HistogramQuantile { q, .. } if !(0.0..=1.0).contains(&q) => {
            Err(format!("quantile must be within [0, 1], got {q}"))
        }
        _ => Ok(()),
    }
}

/// The series `query` gives over `range` at `step_ms` (call [`check`] first).
pub(crate) fn evaluate(
    store: &MetricStore,
    query: &MetricQuery,
    range: TimeRange,
    step_ms: i64,
) -> Vec<Series> {
    let steps: Vec<EpochMs> = (range.start..range.end).step_by(step_ms as usize).collect();
    let sample_name = match query.func {
        MetricFunc::HistogramQuantile { .. } => format!("{}_bucket", query.metric),
        _ => query.metric.clone(),
    };
    // `check` has compiled the matchers once already; an invalid regex cannot get here.
    let Ok(matchers) = MatcherSet::new(&query.matchers) else {
        return Vec::new();
    };
    let selected = store
        .named(&sample_name)
        .filter(|s| matchers.matches_named(&s.name, &s.labels));
    match query.func {
        MetricFunc::Gauge => aggregate(
            query,
            &steps,
            selected.map(|s| (s, at_steps(&steps, |t| gauge_at(s, t)))),
        ),
        MetricFunc::Rate { window_s } => {
            let window = i64::from(window_s) * 1000;
            aggregate(
                query,
                &steps,
                selected.map(|s| (s, at_steps(&steps, |t| rate_at(s, t, window)))),
            )
        }
        MetricFunc::HistogramQuantile { q, window_s } => {
            let window = i64::from(window_s) * 1000;
            histogram_quantile(query, q, &steps, selected, window)
        }
    }
}

fn at_steps(steps: &[EpochMs], value: impl Fn(EpochMs) -> Option<f64>) -> Vec<Option<f64>> {
    steps.iter().map(|&t| value(t)).collect()
}

/// The labels of `series` kept by `by`.
fn group_labels(series: &StoredSeries, by: &[String]) -> BTreeMap<String, String> {
    by.iter()
        .filter_map(|name| series.labels.get(name).map(|v| (name.clone(), v.clone())))
        .collect()
}

/// Value at `t`: the last sample in `(t - 5m, t]`.
fn gauge_at(series: &StoredSeries, t: EpochMs) -> Option<f64> {
    let after = series.times.partition_point(|&s| s <= t);
    let last = after.checked_sub(1)?;
    (series.times[last] > t - LOOKBACK_MS).then(|| series.values[last])
}

/// `rate(series[window])` at `t`, as Prometheus computes it.
fn rate_at(series: &StoredSeries, t: EpochMs, window: i64) -> Option<f64> {
    let range_start = t - window;
    let lo = series.times.partition_point(|&s| s <= range_start);
    let hi = series.times.partition_point(|&s| s <= t);
    if hi < lo + 2 {
        return None;
    }
    let (times, values) = (&series.times[lo..hi], &series.values[lo..hi]);
    let (first_v, last_v) = (values[0], values[values.len() - 1]);
    let mut increase = last_v - first_v;
    for pair in values.windows(2) {
        if pair[1] < pair[0] {
            increase += pair[0];
        }
    }
    let seconds = |ms: i64| ms as f64 / 1000.0;
    let mut to_start = seconds(times[0] - range_start);
    let mut to_end = seconds(t - times[times.len() - 1]);
    let sampled = seconds(times[times.len() - 1] - times[0]);
    let average_gap = sampled / (times.len() - 1) as f64;
    let threshold = average_gap * 1.1;
    if to_start >= threshold {
        to_start = average_gap / 2.0;
    }
    if increase > 0.0 && first_v >= 0.0 {
        // A counter cannot go below zero: do not extrapolate past its zero point.
        let to_zero = sampled * (first_v / increase);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = average_gap / 2.0;
    }
    let extrapolated = sampled + to_start + to_end;
    Some(increase * (extrapolated / sampled) / seconds(window))
}

#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    sum: f64,
    max: f64,
    count: u32,
}

impl Acc {
    fn add(&mut self, v: f64) {
        self.max = if self.count == 0 || self.max.is_nan() {
            v
        } else {
            self.max.max(v)
        };
        self.sum += v;
        self.count += 1;
    }
    fn value(&self, aggregation: Aggregation) -> Option<f64> {
        (self.count > 0).then(|| match aggregation {
            Aggregation::Sum => self.sum,
            Aggregation::Max => self.max,
            Aggregation::Avg => self.sum / f64::from(self.count),
        })
    }
}

/// `<aggregation> by (<by>)` over per-series values at each step.
fn aggregate<'s>(
    query: &MetricQuery,
    steps: &[EpochMs],
    per_series: impl Iterator<Item = (&'s StoredSeries, Vec<Option<f64>>)>,
) -> Vec<Series> {
    let mut groups: BTreeMap<BTreeMap<String, String>, Vec<Acc>> = BTreeMap::new();
    for (series, values) in per_series {
        let accs = groups
            .entry(group_labels(series, &query.by))
            .or_insert_with(|| vec![Acc::default(); steps.len()]);
        for (acc, value) in accs.iter_mut().zip(values) {
            if let Some(v) = value {
                acc.add(v);
            }
        }
    }
    groups
        .into_iter()
        .filter_map(|(labels, accs)| {
            let points: Vec<(EpochMs, f64)> = steps
                .iter()
                .zip(&accs)
                .filter_map(|(&t, acc)| Some((t, acc.value(query.aggregation)?)))
                .collect();
            (!points.is_empty()).then_some(Series { labels, points })
        })
        .collect()
}

/// `histogram_quantile(q, sum by (le, <by>) (rate(<name>_bucket[window])))`.
fn histogram_quantile<'s>(
    query: &MetricQuery,
    q: f64,
    steps: &[EpochMs],
    buckets: impl Iterator<Item = &'s StoredSeries>,
    window: i64,
) -> Vec<Series> {
    // Per group: upper bound -> summed bucket rate at each step.
    type Buckets = Vec<(f64, Vec<Acc>)>;
    let mut groups: BTreeMap<BTreeMap<String, String>, Buckets> = BTreeMap::new();
    for series in buckets {
        let Some(upper) = series
            .labels
            .get("le")
            .and_then(|le| le.parse::<f64>().ok())
        else {
            continue;
        };
        let rates = at_steps(steps, |t| rate_at(series, t, window));
        let group = groups.entry(group_labels(series, &query.by)).or_default();
        let index = match group.iter().position(|(u, _)| *u == upper) {
            Some(i) => i,
            None => {
                group.push((upper, vec![Acc::default(); steps.len()]));
                group.len() - 1
            }
        };
        for (acc, rate) in group[index].1.iter_mut().zip(rates) {
            if let Some(r) = rate {
                acc.add(r);
            }
        }
    }
    groups
        .into_iter()
        .filter_map(|(labels, mut group)| {
            group.sort_by(|a, b| a.0.total_cmp(&b.0));
            let points: Vec<(EpochMs, f64)> = steps
                .iter()
                .enumerate()
                .filter_map(|(i, &t)| {
                    let counts: Vec<(f64, f64)> = group
                        .iter()
                        .filter(|(_, accs)| accs[i].count > 0)
                        .map(|(upper, accs)| (*upper, accs[i].sum))
                        .collect();
                    let value = bucket_quantile(q, &counts)?;
                    Some((t, value))
                })
                .collect();
            (!points.is_empty()).then_some(Series { labels, points })
        })
        .collect()
}

/// Prometheus's `bucketQuantile` over `(upper bound, cumulative count)` sorted by bound;
/// `None` where Prometheus would give NaN.
fn bucket_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let &(last_upper, _) = buckets.last()?;
    if last_upper != f64::INFINITY || buckets.len() < 2 {
        return None;
    }
    // Counts must not decrease with the bound (they can, slightly, when rates are
    // computed from scrapes at different times).
    let mut counts: Vec<f64> = Vec::with_capacity(buckets.len());
    for &(_, count) in buckets {
        let floor = counts.last().copied().unwrap_or(f64::NEG_INFINITY);
        counts.push(count.max(floor));
    }
    let observations = counts[counts.len() - 1];
    if observations <= 0.0 || observations.is_nan() {
        return None;
    }
    let mut rank = q * observations;
    let b = counts[..counts.len() - 1].partition_point(|&c| c < rank);
    if b == buckets.len() - 1 {
        return Some(buckets[buckets.len() - 2].0);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return Some(buckets[0].0);
    }
    let bucket_end = buckets[b].0;
    let mut count = counts[b];
    let mut bucket_start = 0.0;
    if b > 0 {
        bucket_start = buckets[b - 1].0;
        count -= counts[b - 1];
        rank -= counts[b - 1];
    }
    Some(bucket_start + (bucket_end - bucket_start) * (rank / count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_quantile_interpolates_like_prometheus() {
        let buckets = [(0.1, 1.0), (0.5, 3.0), (1.0, 3.6), (f64::INFINITY, 4.0)];
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-12;
        assert!(close(bucket_quantile(0.5, &buckets), 0.3));
        assert!(close(bucket_quantile(0.25, &buckets), 0.1));
        assert!(close(
            bucket_quantile(0.8, &buckets),
            0.5 + 0.5 * (0.2 / 0.6)
        ));
        // Above the last finite bucket: its upper bound.
        assert!(close(bucket_quantile(0.99, &buckets), 1.0));
        assert_eq!(
            bucket_quantile(0.5, &[(0.1, 0.0), (f64::INFINITY, 0.0)]),
            None
        );
        assert_eq!(bucket_quantile(0.5, &[(0.1, 1.0), (1.0, 2.0)]), None);
    }

    #[test]
    fn rate_matches_prometheus_extrapolation() {
        // Samples every 15 s starting at 0 (value 0), one per second; the counter
        // starts at zero, so extrapolation stops at the zero point.
        let series = StoredSeries {
            name: "c".into(),
            labels: BTreeMap::new(),
            times: (0..9).map(|i| i * 15_000).collect(),
            values: (0..9).map(|i| f64::from(i) * 15.0).collect(),
        };
        assert_eq!(rate_at(&series, 60_000, 60_000), Some(1.0));
        // At 15 s only two samples; the window starts 45 s before the data and the
        // zero point is at the first sample: 15 / 60.
        assert_eq!(rate_at(&series, 15_000, 60_000), Some(0.25));
        assert_eq!(rate_at(&series, 0, 60_000), None);
    }
}
