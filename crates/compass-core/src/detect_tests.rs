//! Table-driven tests of the detectors on small synthetic series: an obvious fault, a
//! decoy that must not fire, and degenerate inputs that give `None`, not a panic.

use super::*;

const STEP: i64 = 15_000;

type Points = Vec<(EpochMs, f64)>;

/// Baseline [0, 40 steps), incident [40, 80 steps).
fn window() -> AnalysisWindow {
    AnalysisWindow {
        baseline: TimeRange::new(0, 40 * STEP),
        incident: TimeRange::new(40 * STEP, 80 * STEP),
    }
}

/// A series over 80 steps from `f(step index)`, with a small deterministic wiggle.
fn series(f: impl Fn(usize) -> f64) -> Vec<(EpochMs, f64)> {
    (0..80)
        .map(|i| {
            (
                i as i64 * STEP,
                f(i) * (1.0 + 0.02 * ((i * 7 % 5) as f64 - 2.0)),
            )
        })
        .collect()
}

#[test]
fn metric_shift_table() {
    // (name, series, expected direction, expected onset step)
    type Case = (&'static str, Points, Option<(Direction, i64)>);
    let cases: Vec<Case> = vec![
        (
            "latency x5 from step 50",
            series(|i| if i >= 50 { 0.5 } else { 0.1 }),
            Some((Direction::Up, 50)),
        ),
        (
            "throughput drop from step 45",
            series(|i| if i >= 45 { 20.0 } else { 100.0 }),
            Some((Direction::Down, 45)),
        ),
        ("flat", series(|_| 3.0), None),
        (
            "small drift below 30%",
            series(|i| if i >= 50 { 1.15 } else { 1.0 }),
            None,
        ),
        (
            "single spike",
            series(|i| if i == 60 { 50.0 } else { 1.0 }),
            None,
        ),
        ("empty", Vec::new(), None),
        ("nan", series(|_| f64::NAN), None),
    ];
    for (name, s, want) in cases {
        let got = metric_shift(&s, &window(), &ShiftConfig::default());
        assert_eq!(
            got.map(|g| (g.direction(), g.onset() / STEP)),
            want,
            "{name}: {got:?}"
        );
        if let Some(g) = got {
            assert!(g.confidence > 0.5 && g.confidence <= 1.0, "{name}: {g:?}");
        }
    }
    // A minimum absolute change filters tiny moves off a zero baseline.
    let tiny = series(|i| if i >= 50 { 0.001 } else { 0.0 });
    assert!(metric_shift(&tiny, &window(), &ShiftConfig::default()).is_some());
    assert!(
        metric_shift(
            &tiny,
            &window(),
            &ShiftConfig::default().with_min_absolute(0.01)
        )
        .is_none()
    );
}

#[test]
fn counts_shift_uses_poisson_floor() {
    // 0-1 errors per bucket in the baseline, 1-2 in the incident: not a surge.
    let noise: Vec<(EpochMs, f64)> = (0..80)
        .map(|i| {
            (
                i as i64 * STEP,
                ((i * 3 % 7) % 2 + usize::from(i >= 40)) as f64,
            )
        })
        .collect();
    assert!(metric_shift(&noise, &window(), &ShiftConfig::counts()).is_none());
    let surge: Vec<(EpochMs, f64)> = (0..80)
        .map(|i| (i as i64 * STEP, if i >= 44 { 30.0 } else { (i % 2) as f64 }))
        .collect();
    let s = metric_shift(&surge, &window(), &ShiftConfig::counts()).unwrap();
    assert_eq!(s.onset(), 44 * STEP);
}

#[test]
fn bucket_counts_table() {
    let r = TimeRange::new(0, 100);
    assert_eq!(
        bucket_counts(&[0, 5, 10, 99, 100, -1], r, 50),
        vec![(0, 3.0), (50, 1.0)]
    );
    assert!(bucket_counts(&[1], TimeRange::new(5, 5), 10).is_empty());
    assert!(bucket_counts(&[1], r, 0).is_empty());
}

#[test]
fn saturation_table() {
    let limit = vec![(0, 2.0)];
    // (name, usage in cores, expect Some(is_new) or None)
    let cases: Vec<(&str, Points, Option<bool>)> = vec![
        (
            "cpu fault from step 48",
            series(|i| if i >= 48 { 1.96 } else { 0.7 }),
            Some(true),
        ),
        (
            "batch job saturating every 8 steps in both windows",
            series(|i| if i % 8 < 3 { 1.95 } else { 0.6 }),
            Some(false),
        ),
        ("healthy", series(|_| 0.8), None),
        ("no data", Vec::new(), None),
    ];
    for (name, usage, want) in cases {
        let util = utilisation(&usage, &limit);
        let got = saturation(&util, &window(), &SaturationConfig::default());
        assert_eq!(got.map(|s| s.is_new), want, "{name}: {got:?}");
        if let Some(s) = got {
            if s.is_new {
                assert_eq!(s.onset, 48 * STEP);
                assert!(
                    s.confidence > 0.7
                        && s.incident_utilisation > 0.9
                        && s.baseline_utilisation < 0.4
                );
            } else {
                assert!(s.confidence <= 0.3, "{s:?}");
            }
        }
    }
    assert!(utilisation(&[(0, 1.0)], &[(0, 0.0)]).is_empty());
    // The latest limit applies.
    assert_eq!(
        utilisation(&[(0, 1.0), (10, 1.0)], &[(0, 2.0), (5, 4.0)]),
        vec![(0, 0.5), (10, 0.25)]
    );
}

#[test]
fn monotonic_growth_table() {
    let gib = 1024.0 * 1024.0 * 1024.0;
    // (name, series, limit, expect growth)
    let cases: Vec<(&str, Points, Option<f64>, bool)> = vec![
        (
            "leak from step 40 toward a 1 GiB limit",
            series(|i| {
                if i < 40 {
                    0.3 * gib
                } else {
                    (0.3 + 0.015 * (i - 40) as f64) * gib
                }
            }),
            Some(gib),
            true,
        ),
        ("flat memory", series(|_| 0.4 * gib), Some(gib), false),
        (
            "slow steady growth in both windows (cache warm-up)",
            series(|i| (0.3 + 0.002 * i as f64) * gib),
            Some(gib),
            false,
        ),
        (
            "growth without a limit, relative to baseline",
            series(|i| {
                if i < 40 {
                    100.0
                } else {
                    100.0 + 5.0 * (i - 40) as f64
                }
            }),
            None,
            true,
        ),
        (
            "too few points",
            vec![(40 * STEP, 1.0), (41 * STEP, 2.0)],
            Some(10.0),
            false,
        ),
    ];
    for (name, s, limit, want) in cases {
        let got = monotonic_growth(&s, limit, &window(), &GrowthConfig::default());
        assert_eq!(got.is_some(), want, "{name}: {got:?}");
        if let (Some(g), Some(_)) = (got, limit) {
            assert!(
                g.end_fraction.unwrap() > 0.8 && g.time_to_limit_s.unwrap() < 600.0,
                "{g:?}"
            );
            assert!(g.onset >= 40 * STEP && g.onset <= 48 * STEP, "{g:?}");
        }
    }
}

#[test]
fn template_shifts_table() {
    let w = window(); // 10 min baseline, 10 min incident
    let c = |key: u32, baseline: u64, incident: u64| WindowCounts {
        key,
        baseline,
        incident,
    };
    let counts = vec![
        c(0, 100, 110), // steady
        c(1, 0, 40),    // new
        c(2, 10, 200),  // spike
        c(3, 0, 2),     // new but too rare
        c(4, 50, 5),    // drop (not reported)
        c(5, 1, 6),     // rare in baseline, ratio 6 but weak score
    ];
    let got = template_shifts(&counts, &w, &TemplateShiftConfig::default());
    let keys: Vec<(u32, bool)> = got.iter().map(|s| (s.key, s.is_new)).collect();
    assert_eq!(keys, vec![(2, false), (1, true)]);
    assert!(got[1].ratio.is_infinite() && got[0].ratio > 15.0);
    let empty = AnalysisWindow {
        baseline: TimeRange::new(0, 0),
        incident: w.incident,
    };
    assert!(template_shifts(&counts, &empty, &TemplateShiftConfig::default()).is_empty());
}

#[test]
fn z_confidence_is_monotone_and_bounded() {
    let zs = [0.0, 2.0, 4.0, 6.0, 9.0, 100.0];
    let cs: Vec<f64> = zs.iter().map(|z| z_confidence(*z)).collect();
    assert!(cs.windows(2).all(|w| w[0] <= w[1]), "{cs:?}");
    assert!((z_confidence(4.0) - 0.5).abs() < 1e-9 && z_confidence(-6.0) == z_confidence(6.0));
    assert_eq!(z_confidence(f64::NAN), 0.0);
    assert!(z_confidence(f64::INFINITY) <= 0.99);
}

#[test]
fn mann_whitney_z_is_zero_for_identical_samples_and_large_for_separated_ones() {
    let a = [1.0, 2.0, 3.0, 4.0];
    assert!(mann_whitney_z(&a, &a).unwrap().abs() < 1e-12);
    // Every b above every a: U = n1*n2 = 16, mean 8, sd = sqrt(4*4*9/12) = sqrt(12).
    let b = [10.0, 11.0, 12.0, 13.0];
    let z = mann_whitney_z(&a, &b).unwrap();
    assert!((z - 8.0 / 12f64.sqrt()).abs() < 1e-9, "{z}");
    assert!(mann_whitney_z(&b, &a).unwrap() < 0.0);
    assert_eq!(mann_whitney_z(&[], &b), None);
}

#[test]
fn sample_shift_finds_a_clear_rise_and_its_onset() {
    let base: Vec<(EpochMs, f64)> = (0..30).map(|i| (i, 10.0 + (i % 5) as f64)).collect();
    // The first 10 incident samples are normal, then they jump ten-fold.
    let inc: Vec<(EpochMs, f64)> = (100..140)
        .map(|i| {
            (
                i,
                if i < 110 {
                    11.0
                } else {
                    120.0 + (i % 3) as f64
                },
            )
        })
        .collect();
    let s = sample_shift(&base, &inc, &SampleShiftConfig::default()).unwrap();
    assert_eq!(s.onset, 110);
    assert!(s.ratio() > 5.0 && s.z > 4.0 && s.confidence > 0.5);
    // No rise: nothing. Too few samples: nothing.
    let flat: Vec<(EpochMs, f64)> = (100..140).map(|i| (i, 10.0 + (i % 5) as f64)).collect();
    assert_eq!(
        sample_shift(&base, &flat, &SampleShiftConfig::default()),
        None
    );
    assert_eq!(
        sample_shift(&base[..3], &inc, &SampleShiftConfig::default()),
        None
    );
}
