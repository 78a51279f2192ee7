//! Table-driven tests of the robust statistics, including degenerate inputs.

use super::*;

const NAN: f64 = f64::NAN;

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-9 || (a.is_infinite() && a == b),
        (None, None) => true,
        _ => false,
    }
}

#[test]
fn location_and_spread_table() {
    // (input, median, mad, iqr)
    type Case<'a> = (&'a [f64], Option<f64>, Option<f64>, Option<f64>);
    let cases: &[Case] = &[
        (&[], None, None, None),
        (&[NAN, NAN], None, None, None),
        (&[5.0], Some(5.0), Some(0.0), Some(0.0)),
        (&[3.0, 3.0, 3.0, 3.0], Some(3.0), Some(0.0), Some(0.0)),
        (
            &[1.0, 2.0, 3.0, 4.0, 100.0],
            Some(3.0),
            Some(1.0),
            Some(2.0),
        ),
        (
            &[1.0, NAN, 2.0, f64::INFINITY, 3.0],
            Some(2.0),
            Some(1.0),
            Some(1.0),
        ),
        (&[4.0, 1.0, 3.0, 2.0], Some(2.5), Some(1.0), Some(1.5)),
    ];
    for (xs, med, m, i) in cases {
        assert!(close(median(xs), *med), "median {xs:?}: {:?}", median(xs));
        assert!(close(mad(xs), *m), "mad {xs:?}: {:?}", mad(xs));
        assert!(close(iqr(xs), *i), "iqr {xs:?}: {:?}", iqr(xs));
    }
    assert!(close(quantile(&[0.0, 10.0], 0.25), Some(2.5)));
    assert!(close(quantile(&[0.0, 10.0], 7.0), Some(10.0)));
    assert!(close(quantile(&[1.0], NAN), None));
    assert!(close(mean(&[1.0, NAN, 3.0]), Some(2.0)));
    assert!(close(mean(&[]), None));
}

#[test]
fn robust_z_floors_flat_baselines() {
    let floor = ScaleFloor::default();
    // Flat baseline at 100: scale floors at 5 (5%), so 110 is z = 2, not infinity.
    assert!(close(robust_z(&[100.0; 10], &[110.0; 5], floor), Some(2.0)));
    // Zero baseline uses the absolute floor: a real move from zero is huge.
    assert!(robust_z(&[0.0; 10], &[1.0; 5], floor).unwrap() > 1e6);
    // Noisy baseline: MAD-based.
    let base = [9.0, 10.0, 11.0, 10.0, 9.0, 11.0, 10.0];
    let z = robust_z(&base, &[20.0, 21.0, 19.0], floor).unwrap();
    assert!((z - 10.0 / 1.4826).abs() < 1e-6, "{z}");
    assert_eq!(robust_z(&[], &[1.0], floor), None);
    assert_eq!(robust_z(&[1.0], &[NAN], floor), None);
}

#[test]
fn change_point_table() {
    // (series, expected index or None)
    let step: Vec<f64> = (0..40).map(|i| if i < 25 { 1.0 } else { 5.0 }).collect();
    let noisy: Vec<f64> = (0..60)
        .map(|i| if i < 30 { 10.0 } else { 14.0 } + ((i * 7) % 5) as f64 * 0.3)
        .collect();
    let cases: Vec<(Vec<f64>, Option<usize>)> = vec![
        (vec![], None),
        (vec![1.0, 2.0], None),
        (step, Some(25)),
        (noisy, Some(30)),
    ];
    for (xs, want) in cases {
        let got = change_point(&xs, 3);
        assert_eq!(got.map(|c| c.index), want, "{xs:?}");
    }
    let cp = change_point(&[1.0, 1.0, 1.0, NAN, 1.0, 9.0, 9.0, 9.0, 9.0], 2).unwrap();
    assert_eq!(cp.index, 5);
    assert!(cp.score > 10.0 && cp.after_mean == 9.0 && cp.before_mean == 1.0);
    // A constant series has a split but no score.
    let flat = change_point(&[2.0; 20], 3).unwrap();
    assert!(flat.score < 1e-6, "{flat:?}");
}

#[test]
fn trend_table() {
    let line: Vec<(f64, f64)> = (0..50).map(|i| (i as f64, 3.0 + 2.0 * i as f64)).collect();
    let t = trend(&line).unwrap();
    assert!((t.slope - 2.0).abs() < 1e-9 && (t.intercept - 3.0).abs() < 1e-9);
    assert!(t.mk_z > 5.0);
    // An outlier does not move Theil–Sen.
    let mut outlier = line.clone();
    outlier[10].1 = 1e6;
    assert!((trend(&outlier).unwrap().slope - 2.0).abs() < 1e-9);
    let flat: Vec<(f64, f64)> = (0..30).map(|i| (i as f64, 7.0)).collect();
    let f = trend(&flat).unwrap();
    assert_eq!((f.slope, f.mk_z), (0.0, 0.0));
    assert_eq!(trend(&[(0.0, 1.0), (1.0, NAN)]), None);
    let long: Vec<(f64, f64)> = (0..5000).map(|i| (i as f64, -(i as f64))).collect();
    let l = trend(&long).unwrap();
    assert!(l.n <= 400 && (l.slope + 1.0).abs() < 1e-9 && l.mk_z < -5.0);
}

fn series(values: &[f64], start: EpochMs, step: i64) -> Vec<(EpochMs, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (start + i as i64 * step, *v))
        .collect()
}

#[test]
fn score_window_finds_direction_level_and_onset() {
    // 20 baseline points ~10, incident: 5 normal points then a jump to ~40.
    let mut v: Vec<f64> = (0..20).map(|i| 10.0 + (i % 3) as f64 * 0.5).collect();
    v.extend([10.0, 10.5, 11.0, 10.0, 10.5]);
    v.extend([40.0, 41.0, 39.0, 40.0, 42.0, 40.0, 41.0, 40.0]);
    let pts = series(&v, 0, 1000);
    let w = score_window(
        &pts,
        TimeRange::new(0, 20_000),
        TimeRange::new(20_000, 40_000),
        &ScoreConfig::default(),
    )
    .unwrap();
    assert_eq!(w.direction, Direction::Up);
    assert_eq!(w.onset, 25_000);
    assert!(
        (w.incident_level - 40.0).abs() < 1.0 && w.ratio > 3.5 && w.z > 20.0,
        "{w:?}"
    );
    assert!((w.fraction_abnormal - 8.0 / 13.0).abs() < 1e-9);

    // Decrease.
    let mut d = vec![100.0; 10];
    d.extend([20.0; 10]);
    let w = score_window(
        &series(&d, 0, 1),
        TimeRange::new(0, 10),
        TimeRange::new(10, 20),
        &ScoreConfig::default(),
    )
    .unwrap();
    assert_eq!((w.direction, w.onset), (Direction::Down, 10));

    // Flat: no deviation, onset is the incident start.
    let f = series(&[5.0; 20], 0, 1);
    let w = score_window(
        &f,
        TimeRange::new(0, 10),
        TimeRange::new(10, 20),
        &ScoreConfig::default(),
    )
    .unwrap();
    assert_eq!((w.direction, w.onset, w.ratio), (Direction::Flat, 10, 1.0));

    // A single spike is not an onset.
    let mut s = vec![5.0; 20];
    s[12] = 50.0;
    let w = score_window(
        &series(&s, 0, 1),
        TimeRange::new(0, 10),
        TimeRange::new(10, 20),
        &ScoreConfig::default(),
    )
    .unwrap();
    assert_eq!(w.onset, 10);
    assert!(w.z.abs() < 1.0);
}

#[test]
fn score_window_partial_data() {
    let cfg = ScoreConfig::default();
    assert_eq!(
        score_window(&[], TimeRange::new(0, 10), TimeRange::new(10, 20), &cfg),
        None
    );
    let nan = series(&[NAN; 20], 0, 1);
    assert_eq!(
        score_window(&nan, TimeRange::new(0, 10), TimeRange::new(10, 20), &cfg),
        None
    );
    // Zero baseline, non-zero incident: infinite ratio, still a result.
    let mut z = vec![0.0; 10];
    z.extend([3.0; 10]);
    let w = score_window(
        &series(&z, 0, 1),
        TimeRange::new(0, 10),
        TimeRange::new(10, 20),
        &cfg,
    )
    .unwrap();
    assert!(w.ratio.is_infinite() && w.direction == Direction::Up);
}

#[test]
fn sample_around_is_bounded_and_centred() {
    let pts = series(&(0..100).map(|i| i as f64).collect::<Vec<_>>(), 0, 10);
    let s = sample_around(&pts, 500, 30);
    assert_eq!(s.len(), 30);
    assert_eq!(s[0].0, 350);
    assert_eq!(sample_around(&pts, 5000, 30).last().unwrap().0, 990);
    assert_eq!(sample_around(&pts[..5], 0, 30).len(), 5);
    assert!(close(Some(ratio(0.0, 0.0)), Some(1.0)));
}
