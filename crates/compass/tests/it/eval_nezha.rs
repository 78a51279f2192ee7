//! `compass eval nezha` end to end on a tiny synthetic Nezha-shaped folder the test
//! writes: four OnlineBoutique-like services, 90 minutes of per-pod metrics, and two
//! injected CPU faults in different services.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

const DAY: &str = "2024-03-10";
const SERVICES: [&str; 4] = ["frontend", "cartservice", "adservice", "currencyservice"];
const CALLS: [(&str, &str); 3] = [
    ("frontend", "cartservice"),
    ("frontend", "adservice"),
    ("cartservice", "currencyservice"),
];
/// The two cases: (minute after 10:00 of the injection, injected service).
const CASES: [(u32, &str); 2] = [(35, "currencyservice"), (70, "adservice")];
/// How long an injected fault lasts, in minutes.
const FAULT_MINUTES: u32 = 10;

fn pod_of(service: &str) -> String {
    format!("{service}-5f6585d649-fnm{}t", service.len())
}

fn inject_time(minute: u32) -> String {
    format!("{DAY} {:02}:{:02}:00", 10 + minute / 60, minute % 60)
}

/// Mild deterministic noise in [-0.5, 0.5).
fn noise(minute: u32, salt: u32) -> f64 {
    f64::from((minute * 37 + salt * 11 + minute * minute * 7) % 17) / 17.0 - 0.5
}

/// The labelled fault list of the two cases.
fn labelled_fault_list() -> String {
    let entry = |(minute, service): (u32, &str)| {
        serde_json::json!({
            "inject_time": inject_time(minute),
            "inject_timestamp": "0",
            "inject_pod": pod_of(service),
            "inject_type": "cpu_contention",
        })
    };
    serde_json::json!({ "10": [entry(CASES[0])], "11": [entry(CASES[1])] }).to_string()
}

/// The same cases with blank or garbage labels.
fn unlabelled_fault_list() -> String {
    serde_json::json!({
        "10": [{"inject_time": inject_time(CASES[0].0), "inject_pod": "", "inject_type": "  "}],
        "11": [{"inject_time": inject_time(CASES[1].0), "inject_pod": 17, "inject_type": null}],
    })
    .to_string()
}

/// One row a minute from 10:00 to 11:29 for `service`; during a case's fault its CPU
/// use and server latency jump.
fn metric_csv(service: &str, salt: u32) -> String {
    let pod = pod_of(service);
    let mut text = String::from(
        "Time,TimeStamp,PodName,CpuUsage(m),CpuUsageRate(%),MemoryUsage(Mi),MemoryUsageRate(%),\
         NetworkReceiveBytes,NetworkTransmitBytes,PodClientLatencyP95(s),PodServerLatencyP95(s),\
         PodWorkload(Ops),PodSuccessRate(%)\n",
    );
    for minute in 0..90 {
        let faulty = CASES
            .iter()
            .any(|&(at, s)| s == service && (at..at + FAULT_MINUTES).contains(&minute));
        let n = noise(minute, salt);
        let (cpu_rate, server_latency) = match faulty {
            true => (97.0 + n, 2.5 + 0.05 * n),
            false => (20.0 + n, 0.05 + 0.002 * n),
        };
        let (h, m) = (10 + minute / 60, minute % 60);
        text.push_str(&format!(
            "{DAY} {h:02}:{m:02}:07.607158889 +0000 UTC m=+{minute}.113112869,{},{pod},{},{cpu_rate},\
             {},{},{},{},{},{server_latency},{},100\n",
            1_710_064_800 + minute * 60,
            cpu_rate * 3.0,
            200.0 + n,
            50.0 + n,
            30_000.0 + 300.0 * n,
            80_000.0 + 800.0 * n,
            0.09 + 0.002 * n,
            5.0 + 0.1 * n,
        ));
    }
    text
}

/// Write the synthetic data set under `root` with `fault_list` as the fault list.
fn write_data(root: &Path, fault_list: &str) {
    let day = root.join("rca_data").join(DAY);
    let metric = day.join("metric");
    std::fs::create_dir_all(&metric).unwrap();
    std::fs::write(day.join(format!("{DAY}-fault_list.json")), fault_list).unwrap();
    for (salt, service) in SERVICES.iter().enumerate() {
        let path = metric.join(format!("{}_metric.csv", pod_of(service)));
        std::fs::write(path, metric_csv(service, salt as u32)).unwrap();
    }
    let mut dependency = String::from("Source,Target,Weight\n");
    for (a, b) in CALLS {
        dependency.push_str(&format!("{a},{b},1\n"));
    }
    // A host row: not a call.
    dependency.push_str("adservice,10.1.2.3,1\n");
    std::fs::write(metric.join("dependency.csv"), dependency).unwrap();
}

fn compass() -> Command {
    Command::cargo_bin("compass").unwrap()
}

fn read_lines(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every line has exactly the documented shape; returns the ranked services per line.
fn check_shape(lines: &[Value]) -> Vec<Vec<(String, String)>> {
    let mut rankings = Vec::new();
    for line in lines {
        let keys: BTreeSet<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["system", "day", "inject_time", "ranking", "elapsed_ms"]),
            "{line}"
        );
        assert_eq!(line["system"], "OnlineBoutique");
        assert_eq!(line["day"], DAY);
        assert!(line["elapsed_ms"].is_u64(), "{line}");
        let ranking = line["ranking"].as_array().unwrap();
        assert!(!ranking.is_empty(), "{line}");
        let mut services = BTreeSet::new();
        let mut ranked = Vec::new();
        for r in ranking {
            let keys: BTreeSet<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                BTreeSet::from(["service", "fault_type", "confidence"]),
                "{r}"
            );
            let confidence = r["confidence"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&confidence), "{r}");
            let service = r["service"].as_str().unwrap().to_string();
            assert!(
                services.insert(service.clone()),
                "{service} twice in {line}"
            );
            ranked.push((service, r["fault_type"].as_str().unwrap().to_string()));
        }
        rankings.push(ranked);
    }
    rankings
}

#[test]
fn ranks_the_injected_service_first_and_scores_the_cases() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("nezha");
    write_data(&data, &labelled_fault_list());
    let out = tmp.path().join("out.jsonl");
    compass()
        .args(["eval", "nezha", "--data"])
        .arg(&data)
        .args(["--day", DAY, "--out"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("2 cases investigated"))
        .stdout(predicate::str::contains("AC@1"))
        .stdout(predicate::str::contains("MRR"))
        .stdout(predicate::str::contains("1.000"))
        .stdout(predicate::str::contains("cpu_contention"))
        .stdout(predicate::str::contains("OnlineBoutique"))
        .stdout(predicate::str::is_match(r"time per case: median \d+ ms, p95 \d+ ms").unwrap())
        .stdout(predicate::str::contains("not scored").not());
    let lines = read_lines(&out);
    assert_eq!(lines.len(), 2);
    let rankings = check_shape(&lines);
    for ((line, ranked), (minute, service)) in lines.iter().zip(&rankings).zip(CASES) {
        assert_eq!(line["inject_time"], inject_time(minute));
        assert_eq!(
            ranked[0],
            (service.to_string(), "cpu_saturation".to_string()),
            "{line}"
        );
    }
}

#[test]
fn blank_or_garbage_labels_are_written_and_not_scored() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("nezha");
    write_data(&data, &unlabelled_fault_list());
    let out = tmp.path().join("out.jsonl");
    compass()
        .args(["eval", "nezha", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "2 case(s) without a usable label: written, not scored",
        ))
        .stdout(predicate::str::contains("AC@1").not());
    let lines = read_lines(&out);
    assert_eq!(lines.len(), 2);
    check_shape(&lines);
}

#[test]
fn a_missing_data_folder_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("no-such-nezha");
    compass()
        .args(["eval", "nezha", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(tmp.path().join("out.jsonl"))
        .assert()
        .failure()
        .stderr(predicate::str::contains(data.display().to_string()));
}

#[test]
fn reports_are_written_one_per_case() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("nezha");
    write_data(&data, &labelled_fault_list());
    let reports = tmp.path().join("reports");
    compass()
        .args(["eval", "nezha", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(tmp.path().join("out.jsonl"))
        .arg("--reports")
        .arg(&reports)
        .assert()
        .success();
    let mut names: Vec<String> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec![format!("{DAY}-01.md"), format!("{DAY}-02.md")]);
    for (name, (_, service)) in names.iter().zip(CASES) {
        let text = std::fs::read_to_string(reports.join(name)).unwrap();
        assert!(text.starts_with('#'), "{name} is not Markdown: {text}");
        assert!(text.contains(service), "{name} does not name {service}");
    }
}
