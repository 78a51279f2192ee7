//! Behaviour of every scenario: all files written and consistent with the summary, the
//! root cause visibly broken in its own signals, the damage visible in a caller, the
//! fault-specific signatures (pool saturation, pod replacement, network delay only on
//! the client side), and the noise that is always there.

use crate::common::{Bundle, run, small};
use compass_sim::scenarios;
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

/// `(baseline window, incident window)` in Unix seconds: the 10 minutes before the fault
/// and the 5 minutes from one minute after it.
fn windows(b: &Bundle) -> ((f64, f64), (f64, f64)) {
    let f = b.fault_s();
    ((f - 600.0, f - 15.0), (f + 60.0, f + 360.0))
}

#[test]
fn every_scenario_writes_a_consistent_bundle() {
    for info in scenarios() {
        let b = run(&small(info.name, 11));
        for file in FILES {
            let len = std::fs::metadata(b.path(file))
                .map(|m| m.len())
                .unwrap_or(0);
            assert!(len > 0, "{}: {file} missing or empty", info.name);
        }
        let s = &b.summary;
        assert_eq!(s.fault_kind, info.fault_kind);
        let truth = b.json("truth.json");
        assert_eq!(truth["service"], s.root_cause_service.as_str());
        assert_eq!(truth["fault_kind"], info.fault_kind.as_str());
        assert_eq!(truth["start"], rfc3339(s.fault_start_ms));
        let incident = b.json("incident.json");
        assert_eq!(incident["start"], rfc3339(s.alert_ms));
        assert_eq!(incident["affected_services"][0], "frontend");
        assert_eq!(incident["origin"], "simulator");
        assert!(
            (60_000..=240_000).contains(&(s.alert_ms - s.fault_start_ms)),
            "{}: alert 1-4 min after fault",
            info.name
        );
        let manifest = b.json("manifest.json");
        assert_eq!(manifest["format"], "compass-bundle/1");
        assert_eq!(manifest["scenario"], info.name);
        assert_eq!(manifest["step_seconds"], 15);
        let listed: Vec<&str> = manifest["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            listed,
            s.services.iter().map(String::as_str).collect::<Vec<_>>()
        );
        assert!(listed.contains(&"report-batch") && listed.contains(&"postgres"));
        assert_eq!(b.lines("logs.jsonl").len() as u64, s.log_lines);
        assert_eq!(b.lines("traces.jsonl").len() as u64, s.spans);
        assert!(
            std::fs::read_to_string(b.path("metrics.om"))
                .unwrap()
                .ends_with("# EOF\n")
        );
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[test]
fn root_cause_is_anomalous_and_a_caller_suffers_too() {
    for info in scenarios() {
        for seed in [3, 4] {
            let b = run(&small(info.name, seed));
            let m = b.metrics();
            let root = b.summary.root_cause_service.as_str();
            let (base, inc) = windows(&b);
            let ctx = format!("{} seed {seed} root {root}", info.name);
            let lat = |s: &str, w: (f64, f64)| m.server_latency(s, w.0, w.1);
            let err = |s: &str, w: (f64, f64)| m.error_ratio(s, w.0, w.1);
            // The root cause's own signal.
            match info.name {
                "cpu-saturation" => {
                    assert!(lat(root, inc) > 2.5 * lat(root, base), "{ctx}: latency x3+");
                    assert!(
                        m.cpu_cores(root, inc.0, inc.1) > 1.5 * m.cpu_cores(root, base.0, base.1),
                        "{ctx}: cpu up"
                    );
                }
                "memory-leak" => {
                    let f = [("service", root)];
                    let before = m.max("container_memory_working_set_bytes", &f, base.0, base.1);
                    let during = m.max(
                        "container_memory_working_set_bytes",
                        &f,
                        inc.0,
                        inc.0 + 600.0,
                    );
                    assert!(during > 1.3 * before, "{ctx}: working set grows");
                }
                "network-latency" => {
                    let caller = &m.callers(root)[0];
                    assert!(
                        m.client_latency(caller, root, inc.0, inc.1)
                            > m.client_latency(caller, root, base.0, base.1) + 0.06
                    );
                }
                "error-injection" | "bad-deploy" => {
                    assert!(
                        err(root, inc) > 0.1 && err(root, inc) > 10.0 * err(root, base),
                        "{ctx}: 5xx up"
                    );
                }
                "db-pool-exhaustion" => {
                    let f = [("service", root)];
                    assert!(
                        m.max("db_client_connections_pending_requests", &f, inc.0, inc.1) > 0.0,
                        "{ctx}: pending"
                    );
                    let used = m.max(
                        "db_client_connections_usage",
                        &[("service", root), ("state", "used")],
                        inc.0,
                        inc.1,
                    );
                    assert_eq!(
                        used,
                        m.max("db_client_connections_max", &f, inc.0, inc.1),
                        "{ctx}: pool full"
                    );
                    assert!(lat(root, inc) > 5.0 * lat(root, base), "{ctx}: latency");
                }
                other => panic!("untested scenario {other}"),
            }
            // At least one caller is visibly affected too.
            let callers = m.callers(root);
            assert!(!callers.is_empty(), "{ctx}: root has callers");
            let hurt = callers
                .iter()
                .filter(|c| {
                    lat(c, inc) > 1.2 * lat(c, base) || err(c, inc) > 2.0 * err(c, base) + 0.005
                })
                .count();
            assert!(
                hurt >= 1,
                "{ctx}: a caller shows elevated latency or errors"
            );
        }
    }
}

#[test]
fn network_latency_leaves_server_side_normal() {
    for seed in [1, 2, 5] {
        let b = run(&small("network-latency", seed));
        let m = b.metrics();
        let root = b.summary.root_cause_service.as_str();
        let (base, inc) = windows(&b);
        let server = (
            m.server_latency(root, base.0, base.1),
            m.server_latency(root, inc.0, inc.1),
        );
        assert!(
            server.1 < 1.15 * server.0,
            "seed {seed}: server latency of {root} stays normal: {server:?}"
        );
        let cpu = (
            m.cpu_cores(root, base.0, base.1),
            m.cpu_cores(root, inc.0, inc.1),
        );
        assert!(
            cpu.1 < 1.3 * cpu.0,
            "seed {seed}: cpu of {root} stays normal: {cpu:?}"
        );
        for caller in m.callers(root) {
            let client = (
                m.client_latency(&caller, root, base.0, base.1),
                m.client_latency(&caller, root, inc.0, inc.1),
            );
            assert!(
                client.1 > client.0 + 0.06,
                "seed {seed}: {caller} -> {root} client latency rises: {client:?}"
            );
        }
        // The delay sits between client and server spans.
        let spans = b.lines("traces.jsonl");
        let fault = b.summary.fault_start_ms;
        let after: Vec<_> = spans
            .iter()
            .filter(|s| s["kind"] == "client" && s["peer_service"] == root)
            .filter(|s| millis(&s["start"]) > fault + 30_000)
            .collect();
        assert!(!after.is_empty(), "seed {seed}: client spans into {root}");
        for client in after.iter().take(20) {
            let server = spans
                .iter()
                .find(|s| s["parent_id"] == client["span_id"])
                .expect("client span has a server child");
            let gap =
                client["duration_ms"].as_f64().unwrap() - server["duration_ms"].as_f64().unwrap();
            assert!(
                gap > 40.0,
                "seed {seed}: network delay between client and server span: {gap}"
            );
        }
    }
}

fn millis(v: &serde_json::Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

#[test]
fn bad_deploy_replaces_the_pods() {
    for seed in [1, 2] {
        let b = run(&small("bad-deploy", seed));
        let root = b.summary.root_cause_service.clone();
        let fault = b.summary.fault_start_ms;
        let events = b.lines("events.jsonl");
        let deploy = events
            .iter()
            .find(|e| e["service"] == root.as_str() && e["kind"] == "deploy")
            .expect("deploy event on the root cause");
        assert_eq!(millis(&deploy["timestamp"]), fault);
        let (mut before, mut after) = (BTreeSet::new(), BTreeSet::new());
        // Old pods may still say goodbye (SIGTERM) just after the rollout starts.
        let lines = b.lines("logs.jsonl");
        let ours = lines.iter().filter(|l| l["service"] == root.as_str());
        for line in ours.filter(|l| !l["message"].as_str().unwrap().contains("SIGTERM")) {
            let pod = line["pod"].as_str().unwrap().to_string();
            if millis(&line["timestamp"]) < fault {
                before.insert(pod)
            } else {
                after.insert(pod)
            };
        }
        assert!(!before.is_empty() && !after.is_empty());
        assert!(
            before.is_disjoint(&after),
            "seed {seed}: new pods after the deploy: {before:?} vs {after:?}"
        );
        let replica_set = |pod: &str| pod.rsplit_once('-').unwrap().0.to_string();
        let sets: BTreeSet<String> = after.iter().map(|p| replica_set(p)).collect();
        assert_eq!(sets.len(), 1, "one new replica set");
        assert!(before.iter().all(|p| !sets.contains(&replica_set(p))));
        // The new version throws errors nobody saw before.
        let errors_after = b
            .lines("logs.jsonl")
            .iter()
            .filter(|l| {
                l["service"] == root.as_str()
                    && l["level"] == "ERROR"
                    && millis(&l["timestamp"]) > fault
            })
            .count();
        assert!(errors_after > 10, "seed {seed}: errors after the deploy");
    }
}

#[test]
fn noise_is_always_present() {
    for info in scenarios() {
        let b = run(&small(info.name, 21));
        let m = b.metrics();
        assert!(
            m.peak_cpu_utilisation("report-batch") > 0.8,
            "{}: report-batch spikes near its CPU limit",
            info.name
        );
        let root = &b.summary.root_cause_service;
        let decoys: Vec<_> = b
            .lines("events.jsonl")
            .into_iter()
            .filter(|e| e["service"] != root.as_str())
            .filter(|e| millis(&e["timestamp"]) <= b.summary.fault_start_ms - 600_000)
            .collect();
        assert!(
            !decoys.is_empty(),
            "{}: an unrelated change well before the fault",
            info.name
        );
        let logs = b.lines("logs.jsonl");
        let benign_warns: BTreeSet<&str> = logs
            .iter()
            .filter(|l| l["level"] == "WARN" && millis(&l["timestamp"]) < b.summary.fault_start_ms)
            .map(|l| l["service"].as_str().unwrap())
            .collect();
        assert!(
            benign_warns.len() >= 5,
            "{}: benign warnings across services: {benign_warns:?}",
            info.name
        );
        assert!(logs.iter().any(|l| l["service"] == "report-batch"
            && l["message"].as_str().unwrap().contains("processed chunk")));
    }
}

#[test]
fn scenario_signatures_in_logs() {
    let expect = [
        ("memory-leak", "GC overhead"),
        (
            "db-pool-exhaustion",
            "Connection is not available, request timed out after 30000ms",
        ),
        ("error-injection", "call to "),
        ("cpu-saturation", "Slow request:"),
        ("network-latency", "slow:"),
    ];
    for (scenario, needle) in expect {
        let b = run(&small(scenario, 8));
        let after = b.summary.fault_start_ms;
        let logs = b.lines("logs.jsonl");
        let hits = logs
            .iter()
            .filter(|l| l["message"].as_str().unwrap().contains(needle))
            .map(|l| millis(&l["timestamp"]))
            .collect::<Vec<_>>();
        assert!(
            hits.iter().filter(|&&t| t >= after).count() >= 3,
            "{scenario}: {needle:?} after the fault"
        );
    }
}
