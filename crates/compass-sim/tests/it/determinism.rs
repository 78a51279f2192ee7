//! The same configuration gives byte-identical bundles; another seed gives another
//! bundle; the log rate touches only the logs; bad input is rejected with a useful
//! message; progress is reported per phase; large systems get generated services.

use crate::common::{read, run, small};
use compass_sim::{ErrorKind, SimConfig, SimError, scenarios, simulate};
use std::collections::BTreeSet;

const FILES: [&str; 7] = [
    "manifest.json",
    "metrics.om",
    "logs.jsonl",
    "traces.jsonl",
    "events.jsonl",
    "incident.json",
    "truth.json",
];

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    for scenario in ["memory-leak", "bad-deploy"] {
        let a = run(&small(scenario, 5));
        let b = run(&small(scenario, 5));
        for file in FILES {
            assert!(
                read(&a.path(file)) == read(&b.path(file)),
                "{scenario}: {file} differs between identical runs"
            );
        }
        let c = run(&small(scenario, 6));
        for file in ["metrics.om", "logs.jsonl", "traces.jsonl"] {
            assert!(
                read(&a.path(file)) != read(&c.path(file)),
                "{scenario}: {file} is the same for another seed"
            );
        }
    }
}

#[test]
fn log_rate_changes_only_the_logs() {
    let a = run(&small("cpu-saturation", 9));
    let b = run(&SimConfig {
        log_rate: 45.0,
        ..small("cpu-saturation", 9)
    });
    for file in [
        "metrics.om",
        "traces.jsonl",
        "events.jsonl",
        "truth.json",
        "incident.json",
    ] {
        assert!(
            read(&a.path(file)) == read(&b.path(file)),
            "{file} changed with the log rate"
        );
    }
    assert!(b.summary.log_lines > 2 * a.summary.log_lines);
}

#[test]
fn unknown_scenario_lists_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let err = simulate(&small("disk-full", 1), dir.path(), &mut |_| {}).unwrap_err();
    assert!(matches!(err, SimError::UnknownScenario { .. }));
    assert_eq!(err.kind(), ErrorKind::BadInput);
    let msg = err.to_string();
    for info in scenarios() {
        assert!(msg.contains(info.name), "{msg:?} names {}", info.name);
    }
}

#[test]
fn bad_sizes_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        SimConfig {
            services: 11,
            ..small("cpu-saturation", 1)
        },
        SimConfig {
            services: 0,
            ..small("cpu-saturation", 1)
        },
        SimConfig {
            duration_s: 60,
            ..small("cpu-saturation", 1)
        },
        SimConfig {
            log_rate: -1.0,
            ..small("cpu-saturation", 1)
        },
        SimConfig {
            log_rate: f64::NAN,
            ..small("cpu-saturation", 1)
        },
        SimConfig {
            trace_rate: f64::INFINITY,
            ..small("cpu-saturation", 1)
        },
    ];
    for cfg in cases {
        let err = simulate(&cfg, dir.path(), &mut |_| {}).unwrap_err();
        assert!(
            matches!(err, SimError::InvalidSize { .. }),
            "{cfg:?} -> {err}"
        );
        assert_eq!(err.kind(), ErrorKind::BadInput);
    }
    let err = simulate(
        &SimConfig {
            services: 5,
            ..small("cpu-saturation", 1)
        },
        dir.path(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("at least 12") || err.to_string().contains("between 12"),
        "{err}"
    );
}

#[test]
fn io_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let err = simulate(
        &small("cpu-saturation", 1),
        &blocker.join("bundle"),
        &mut |_| {},
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

#[test]
fn progress_covers_every_phase() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen: Vec<(String, u64, u64)> = Vec::new();
    simulate(&small("network-latency", 2), dir.path(), &mut |p| {
        seen.push((p.phase.to_string(), p.done, p.total))
    })
    .unwrap();
    for phase in ["metrics", "logs", "traces"] {
        let last = seen
            .iter()
            .rev()
            .find(|p| p.0 == phase)
            .unwrap_or_else(|| panic!("no {phase} progress"));
        assert_eq!(last.1, last.2, "{phase} finishes at its total");
        let dones: Vec<u64> = seen.iter().filter(|p| p.0 == phase).map(|p| p.1).collect();
        assert!(
            dones.windows(2).all(|w| w[0] <= w[1]),
            "{phase} progress never goes back"
        );
    }
}

#[test]
fn many_services_are_generated_and_wired() {
    let cfg = SimConfig {
        services: 200,
        log_rate: 5.0,
        trace_rate: 0.2,
        ..small("error-injection", 4)
    };
    let b = run(&cfg);
    let names: BTreeSet<&str> = b.summary.services.iter().map(String::as_str).collect();
    assert_eq!(
        names.len(),
        204,
        "200 application services plus postgres, redis, kafka, report-batch"
    );
    assert!(
        names.iter().any(|n| n.starts_with("svc-")),
        "generated names"
    );
    let metrics = std::fs::read_to_string(b.path("metrics.om")).unwrap();
    let with_metrics: BTreeSet<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("kube_pod_container_resource_limits{"))
        .filter_map(|l| l.split("service=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(with_metrics, names, "every service has pods and metrics");
    // Every generated service is called by someone.
    let called: BTreeSet<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("http_client_request_duration_seconds_count{"))
        .filter_map(|l| l.split("peer_service=\"").nth(1)?.split('"').next())
        .collect();
    for name in names
        .iter()
        .filter(|n| !["frontend", "notification", "report-batch"].contains(n))
    {
        assert!(called.contains(name), "{name} has a caller");
    }
}

#[test]
fn zero_rates_give_empty_logs_and_traces() {
    let b = run(&SimConfig {
        log_rate: 0.0,
        trace_rate: 0.0,
        ..small("error-injection", 3)
    });
    assert_eq!(b.summary.log_lines, 0);
    assert_eq!(b.summary.spans, 0);
    assert!(read(&b.path("logs.jsonl")).is_empty() && read(&b.path("traces.jsonl")).is_empty());
    assert!(
        b.summary.metric_samples > 0,
        "metrics do not depend on the log or trace rate"
    );
}
