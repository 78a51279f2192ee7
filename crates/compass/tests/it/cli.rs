//! End-to-end tests of the `compass` binary: `demo`, `simulate`, `investigate`, and the
//! errors and exit codes a user sees on bad input.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::Path;

fn compass() -> Command {
    let mut c = Command::cargo_bin("compass").expect("binary built");
    c.env("NO_COLOR", "1").env_remove("COMPASS_BUDGET");
    c
}

fn simulate(dir: &Path, scenario: &str, seed: u64) {
    compass()
        .args([
            "simulate",
            "--scenario",
            scenario,
            "--seed",
            &seed.to_string(),
            "--out",
        ])
        .arg(dir)
        .assert()
        .success()
        .stdout(predicate::str::contains("wrote bundle"));
}

#[test]
fn simulate_list_names_every_scenario() {
    let out = compass().args(["simulate", "--list"]).assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for s in [
        "cpu-saturation",
        "memory-leak",
        "network-latency",
        "error-injection",
        "db-pool-exhaustion",
        "bad-deploy",
    ] {
        assert!(text.contains(s), "{s} missing from:\n{text}");
    }
}

#[test]
fn simulate_writes_a_bundle_and_investigate_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    simulate(&dir, "error-injection", 2);
    for f in [
        "manifest.json",
        "metrics.om",
        "logs.jsonl",
        "traces.jsonl",
        "events.jsonl",
        "incident.json",
        "truth.json",
    ] {
        assert!(dir.join(f).is_file(), "{f} not written");
    }
    let html = tmp.path().join("r.html");
    compass()
        .args(["investigate", "--bundle"])
        .arg(&dir)
        .arg("--html")
        .arg(&html)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("#1").or(predicate::str::contains("1.")))
        .stdout(predicate::str::contains("application"));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") || page.starts_with("<!doctype html>"));
}

#[test]
fn investigate_json_is_one_object_with_the_documented_shape() {
    let tmp = tempfile::tempdir().unwrap();
    simulate(tmp.path(), "cpu-saturation", 1);
    let out = compass()
        .args(["investigate", "--format", "json", "--bundle"])
        .arg(tmp.path())
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    for key in ["incident", "hypotheses", "agents", "cost", "elapsed_ms"] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let top = &v["hypotheses"][0];
    for key in [
        "rank",
        "statement",
        "root_cause",
        "confidence",
        "status",
        "evidence",
        "disproof",
    ] {
        assert!(top.get(key).is_some(), "hypothesis lacks {key}");
    }
    for key in ["service", "component", "fault_kind"] {
        assert!(
            top["root_cause"].get(key).is_some(),
            "root_cause lacks {key}"
        );
    }
    assert_eq!(
        v["agents"].as_array().unwrap().len(),
        compass_engine::agents::all().len()
    );
}

#[test]
fn investigate_markdown_is_a_post_mortem_draft() {
    let tmp = tempfile::tempdir().unwrap();
    simulate(tmp.path(), "memory-leak", 1);
    compass()
        .args(["investigate", "--format", "markdown", "--bundle"])
        .arg(tmp.path())
        .assert()
        .success()
        .stdout(predicate::str::starts_with("# "))
        .stdout(predicate::str::contains("Timeline"));
}

#[test]
fn demo_prints_the_report_and_writes_html() {
    let tmp = tempfile::tempdir().unwrap();
    let out = compass()
        .args(["demo", "--out"])
        .arg(tmp.path())
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("HTML report:"), "{text}");
    assert!(
        text.contains("COMPASS ranked #1"),
        "the demo's own fault is found first:\n{text}"
    );
    assert!(tmp.path().join("report.html").is_file());
}

#[test]
fn missing_bundle_is_a_clear_error_with_exit_code_1() {
    let tmp = tempfile::tempdir().unwrap();
    compass()
        .args(["investigate", "--bundle"])
        .arg(tmp.path().join("nope"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nope"));
}

#[test]
fn corrupt_incident_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    simulate(tmp.path(), "cpu-saturation", 1);
    std::fs::write(tmp.path().join("incident.json"), "{not json").unwrap();
    compass()
        .args(["investigate", "--bundle"])
        .arg(tmp.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("incident.json"));
}

#[test]
fn malformed_log_line_degrades_the_log_agent_with_exit_code_3() {
    let tmp = tempfile::tempdir().unwrap();
    simulate(tmp.path(), "error-injection", 1);
    let logs = tmp.path().join("logs.jsonl");
    let mut text = std::fs::read_to_string(&logs).unwrap();
    let insert_at = text.len() / 2;
    let line_start = text[..insert_at].rfind('\n').unwrap() + 1;
    text.insert_str(line_start, "{this is not json\n");
    let line_no = text[..line_start].matches('\n').count() + 1;
    std::fs::write(&logs, text).unwrap();
    let out = compass()
        .args(["investigate", "--format", "json", "--bundle"])
        .arg(tmp.path())
        .assert()
        .code(3);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let app = v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent"] == "application")
        .unwrap();
    assert_eq!(app["status"], "degraded");
    let err = app["error"].as_str().unwrap();
    assert!(err.contains(&format!("logs.jsonl line {line_no}")), "{err}");
    let infra = v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent"] == "infrastructure")
        .unwrap();
    assert_eq!(infra["status"], "succeeded");
}

#[test]
fn missing_traces_file_degrades_only_the_agents_that_need_it() {
    let tmp = tempfile::tempdir().unwrap();
    simulate(tmp.path(), "cpu-saturation", 1);
    std::fs::remove_file(tmp.path().join("traces.jsonl")).unwrap();
    let out = compass()
        .args(["investigate", "--format", "json", "--bundle"])
        .arg(tmp.path())
        .assert()
        .code(3)
        .stderr(predicate::str::contains("traces.jsonl"));
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let tracing = v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent"] == "tracing")
        .unwrap();
    assert_eq!(tracing["status"], "degraded");
    assert!(!v["hypotheses"].as_array().unwrap().is_empty());
}

#[test]
fn usage_errors_exit_with_2() {
    compass().args(["investigate"]).assert().code(2);
    compass()
        .args(["simulate", "--scenario", "cpu-saturation"])
        .assert()
        .code(2);
}

#[test]
fn unknown_scenario_lists_the_valid_ones() {
    let tmp = tempfile::tempdir().unwrap();
    compass()
        .args(["simulate", "--scenario", "meteor-strike", "--out"])
        .arg(tmp.path().join("x"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("meteor-strike")
                .and(predicate::str::contains("cpu-saturation")),
        );
}

#[test]
fn simulate_refuses_a_directory_that_holds_files() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "keep me").unwrap();
    compass()
        .args(["simulate", "--scenario", "cpu-saturation", "--out"])
        .arg(tmp.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not empty"));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("notes.txt")).unwrap(),
        "keep me"
    );
    assert!(!tmp.path().join("logs.jsonl").exists());
}

#[test]
fn absurd_durations_are_usage_errors_not_panics() {
    for (flag, value) in [
        ("--deadline", "1e300"),
        ("--agent-timeout", "0"),
        ("--deadline", "nan"),
    ] {
        compass()
            .args(["investigate", "--bundle", "/nonexistent", flag, value])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(flag));
    }
}

#[test]
fn a_wrong_config_is_a_usage_error_naming_source_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("compass.toml");
    std::fs::write(
        &config,
        "version = 1\n[sources.logs]\nkind = \"loki\"\nurl = \"http://127.0.0.1:9\"\nmax_series = 5\n",
    )
    .unwrap();
    compass()
        .args([
            "investigate",
            "--service",
            "cart",
            "--at",
            "2026-11-22T09:00:00Z",
            "--config",
        ])
        .arg(&config)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "[sources.logs] `max_series` does not apply to a loki source",
        ));
}

#[test]
fn config_check_names_a_dead_backend_and_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("compass.toml");
    let port = compass_testkit::free_port();
    std::fs::write(
        &config,
        format!(
            "version = 1\n[sources.prom]\nkind = \"prometheus\"\nurl = \"http://127.0.0.1:{port}\"\nretries = 0\n"
        ),
    )
    .unwrap();
    compass()
        .args(["config", "check", "--config"])
        .arg(&config)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAIL prom"))
        .stdout(predicate::str::contains(format!(
            "cannot connect to http://127.0.0.1:{port}/"
        )));
}

#[test]
fn a_live_investigation_against_a_dead_backend_completes_degraded() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("compass.toml");
    let port = compass_testkit::free_port();
    std::fs::write(
        &config,
        format!(
            "version = 1\n[sources.prom]\nkind = \"prometheus\"\nurl = \"http://127.0.0.1:{port}\"\nretries = 0\n"
        ),
    )
    .unwrap();
    let out = compass()
        .args([
            "investigate",
            "--service",
            "cart",
            "--at",
            "2026-11-22T09:00:00Z",
            "--format",
            "json",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "degraded exit code");
    let inv: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inv["status"], "degraded");
    let errors: Vec<&str> = inv["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["error"].as_str())
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("cannot connect")),
        "{errors:?}"
    );
}

#[test]
fn an_alert_payload_without_a_service_label_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("compass.toml");
    std::fs::write(
        &config,
        "version = 1\n[sources.prom]\nkind = \"prometheus\"\nurl = \"http://127.0.0.1:9\"\n",
    )
    .unwrap();
    let alert = tmp.path().join("alert.json");
    std::fs::write(
        &alert,
        r#"{"version":"4","status":"firing","receiver":"r","groupKey":"g","alerts":[{"status":"firing","labels":{"alertname":"X","team":"a"},"annotations":{},"startsAt":"2026-11-22T09:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"f"}]}"#,
    )
    .unwrap();
    compass()
        .args(["investigate", "--config"])
        .arg(&config)
        .arg("--alert")
        .arg(&alert)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("alert.json"))
        .stderr(predicate::str::contains("team"));
}
