//! `compass investigate --config` against a real Prometheus: for every fault kind the
//! simulator knows, the scenario's metrics are backfilled into a real TSDB with
//! `promtool`, Prometheus serves them on a free loopback port, the logs are read from
//! the bundle's `logs.jsonl` as a log-file source, and the live run must rank the same
//! root cause (service and fault kind) first as the offline bundle run of the same
//! scenario. Live sources carry no deploy events, so for a bad deploy only the service
//! is compared.
//!
//! Needs `prometheus` and `promtool` (`apt-get install -y prometheus`; scripts/test.sh
//! installs them). A missing binary fails the test with that command.

use assert_cmd::Command;
use compass_testkit::Prometheus;
use serde_json::Value;
use std::path::Path;

fn compass() -> Command {
    let mut c = Command::cargo_bin("compass").expect("binary built");
    c.env("NO_COLOR", "1")
        .env_remove("COMPASS_BUDGET")
        .env_remove("COMPASS_CONFIG");
    c
}

fn json_of(cmd: &mut Command) -> Value {
    let out = cmd.output().expect("compass runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "compass failed ({:?}):\n{}\n{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

fn top(inv: &Value) -> (String, String) {
    let h = &inv["hypotheses"][0]["root_cause"];
    (
        h["service"].as_str().unwrap_or("none").to_string(),
        h["fault_kind"].as_str().unwrap_or("none").to_string(),
    )
}

fn simulate(dir: &Path, scenario: &str) {
    compass()
        .args(["simulate", "--scenario", scenario, "--seed", "7", "--out"])
        .arg(dir)
        .assert()
        .success();
}

/// A compass.toml reading metrics from `prom` and logs from the bundle's file.
fn write_config(dir: &Path, prom: &Prometheus, bundle: &Path) -> std::path::PathBuf {
    let path = dir.join("compass.toml");
    std::fs::write(
        &path,
        format!(
            "version = 1\n\
             [sources.prom]\nkind = \"prometheus\"\nurl = \"{}\"\ntimeout = \"10s\"\n\
             [sources.logs]\nkind = \"log_files\"\npaths = [\"{}\"]\nformat = \"json\"\n",
            prom.url,
            bundle.join("logs.jsonl").display()
        ),
    )
    .unwrap();
    path
}

fn live_args(config: &Path, incident: &Value) -> Vec<String> {
    let mut args = vec![
        "investigate".to_string(),
        "--config".into(),
        config.display().to_string(),
        "--at".into(),
        incident["start"].as_str().unwrap().to_string(),
        "--format".into(),
        "json".into(),
    ];
    for s in incident["affected_services"].as_array().unwrap() {
        args.push("--service".into());
        args.push(s.as_str().unwrap().to_string());
    }
    args
}

#[test]
fn live_prometheus_ranks_the_same_root_cause_first_as_the_bundle_for_every_fault_kind() {
    let mut mismatches = Vec::new();
    for scenario in compass_sim::scenarios() {
        let tmp = tempfile::tempdir().unwrap();
        let bundle = tmp.path().join("bundle");
        simulate(&bundle, scenario.name);
        let offline = json_of(
            compass()
                .args(["investigate", "--format", "json", "--bundle"])
                .arg(&bundle),
        );
        let prom = Prometheus::start_with_openmetrics(&bundle.join("metrics.om"))
            .unwrap_or_else(|e| panic!("{e}"));
        let config = write_config(tmp.path(), &prom, &bundle);
        let incident: Value =
            serde_json::from_str(&std::fs::read_to_string(bundle.join("incident.json")).unwrap())
                .unwrap();
        let live = json_of(compass().args(live_args(&config, &incident)));
        // Every metric observation cites the PromQL sent to the live Prometheus.
        let agents = live["agents"].as_array().unwrap();
        assert!(
            agents.iter().all(|a| a["status"] != "failed"),
            "{}: an agent failed against Prometheus: {agents:#?}",
            scenario.name
        );
        let (live_top, mut offline_top) = (top(&live), top(&offline));
        // Deploys come from the bundle's events.jsonl; live sources have no change
        // feed, so the live run can name the deployed service but not the deploy.
        if offline_top.1 == "bad_deploy" {
            offline_top.1 = live_top.1.clone();
        }
        if live_top != offline_top {
            mismatches.push(format!(
                "{}: live {live_top:?}, bundle {offline_top:?}",
                scenario.name
            ));
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

/// An Alertmanager webhook payload (version 4) for the bundle's incident.
fn alert_payload(incident: &Value) -> String {
    let service = incident["affected_services"][0].as_str().unwrap();
    serde_json::json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"HighLatency\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "compass",
        "groupLabels": {"alertname": "HighLatency"},
        "commonLabels": {"alertname": "HighLatency", "service": service, "severity": "critical"},
        "commonAnnotations": {"summary": format!("p95 latency high on {service}")},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "HighLatency", "service": service, "severity": "critical"},
            "annotations": {"summary": format!("p95 latency high on {service}")},
            "startsAt": incident["start"],
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "c0ffee0000000001"
        }]
    })
    .to_string()
}

#[test]
fn an_alert_investigated_live_and_recorded_replays_offline_to_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    simulate(&bundle, "db-pool-exhaustion");
    let prom = Prometheus::start_with_openmetrics(&bundle.join("metrics.om"))
        .unwrap_or_else(|e| panic!("{e}"));
    let config = write_config(tmp.path(), &prom, &bundle);
    let incident: Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("incident.json")).unwrap())
            .unwrap();
    let alert = tmp.path().join("alert.json");
    std::fs::write(&alert, alert_payload(&incident)).unwrap();
    let recording = tmp.path().join("recording");
    let live = json_of(
        compass()
            .args(["investigate", "--format", "json", "--config"])
            .arg(&config)
            .arg("--alert")
            .arg(&alert)
            .arg("--record")
            .arg(&recording),
    );
    assert_eq!(live["incident"]["origin"], "alertmanager");
    assert_eq!(live["incident"]["id"], "am-c0ffee0000000001");
    assert_eq!(live["incident"]["severity"], "critical");
    assert_eq!(live["incident"]["start"], incident["start"]);
    assert!(recording.join("responses.jsonl").is_file());
    // Prometheus is gone: the replay needs nothing but the recording.
    drop(prom);
    let replay = json_of(
        compass()
            .args(["investigate", "--format", "json", "--bundle"])
            .arg(&recording),
    );
    assert!(!live["hypotheses"].as_array().unwrap().is_empty());
    assert_eq!(replay["hypotheses"], live["hypotheses"]);
    assert_eq!(replay["incident"]["id"], live["incident"]["id"]);
    let statuses = |v: &Value| -> Vec<(Value, Value)> {
        v["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["agent"].clone(), a["status"].clone()))
            .collect()
    };
    assert_eq!(statuses(&replay), statuses(&live));
}

#[test]
fn config_check_pings_prometheus_and_checks_the_mappings() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    simulate(&bundle, "cpu-saturation");
    let prom = Prometheus::start_with_openmetrics(&bundle.join("metrics.om"))
        .unwrap_or_else(|e| panic!("{e}"));
    let config = write_config(tmp.path(), &prom, &bundle);
    // The simulated data is weeks old: look back far enough to see it.
    let out = compass()
        .args(["config", "check", "--window", "100000000", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Prometheus API, version 2."), "{text}");
    assert!(
        text.contains("requests_total: `http_server_requests_total`"),
        "{text}"
    );
    assert!(text.contains("service label `service`"), "{text}");
    assert!(text.contains("log_files"), "{text}");
    // A mapping to a metric Prometheus does not have is named, and the check fails.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "{}[metrics.mapping]\nmemory_working_set = \"container_memory_rss\"\n",
            std::fs::read_to_string(&config).unwrap()
        ),
    )
    .unwrap();
    let out = compass()
        .args(["config", "check", "--window", "100000000", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("no series named `container_memory_rss`"),
        "{text}"
    );
}
