//! The files in `deploy/` stay usable: the alert rules pass `promtool check rules` and
//! their unit tests, every `compass_…` metric the rules and the dashboard use is one
//! the service exports, the Kubernetes manifests are complete and listed, and the
//! systemd unit runs `compass serve`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "promtool not found ({e}): `{}`",
                compass_testkit::PROMETHEUS_INSTALL
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// Every identifier starting with `compass_`, without histogram suffixes.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(off) = text[i..].find("compass_") {
        let start = i + off;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if boundary {
            let mut name = &text[start..end];
            for suffix in ["_bucket", "_sum", "_count"] {
                name = name.strip_suffix(suffix).unwrap_or(name);
            }
            names.push(name.to_string());
        }
        i = end.max(start + 1);
    }
    names
}

#[test]
fn alert_rules_pass_promtool_and_their_tests() {
    let dir = deploy().join("prometheus");
    assert!(promtool(&["check", "rules", "compass-rules.yml"], &dir).contains("SUCCESS"));
    assert!(promtool(&["test", "rules", "compass-rules.test.yml"], &dir).contains("SUCCESS"));
}

#[test]
fn rules_and_dashboard_only_use_exported_metrics() {
    let rules = std::fs::read_to_string(deploy().join("prometheus/compass-rules.yml")).unwrap();
    let dashboard =
        std::fs::read_to_string(deploy().join("grafana/compass-dashboard.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert_eq!(doc["schemaVersion"], 39);
    let panels = doc["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let mut used = metric_names(&rules);
    for p in panels {
        for t in p["targets"].as_array().unwrap() {
            used.extend(metric_names(t["expr"].as_str().unwrap()));
        }
    }
    assert!(used.len() > 20);
    for name in &used {
        assert!(
            compass::serve::metrics::ALL.contains(&name.as_str()),
            "{name} is not exported (see serve/metrics.rs)"
        );
    }
}

#[test]
fn kubernetes_manifests_are_complete_and_listed() {
    let dir = deploy().join("kubernetes");
    let kustomization = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".yaml") && f != "kustomization.yaml")
        .collect();
    files.sort();
    assert!(files.len() >= 5);
    for f in &files {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(
            text.contains("apiVersion:") && text.contains("kind:"),
            "{f} is a manifest"
        );
        assert!(
            kustomization.contains(&format!("- {f}")),
            "kustomization.yaml lists {f}"
        );
    }
    let deployment = std::fs::read_to_string(dir.join("deployment.yaml")).unwrap();
    for needle in [
        "/healthz",
        "/readyz",
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "\"serve\"",
    ] {
        assert!(deployment.contains(needle), "deployment.yaml has {needle}");
    }
    // The shipped config is one `compass serve` accepts.
    let configmap = std::fs::read_to_string(dir.join("configmap.yaml")).unwrap();
    let toml: String = configmap
        .split("compass.toml: |\n")
        .nth(1)
        .unwrap()
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let toml = toml.replace("webhook_secret_env = \"COMPASS_WEBHOOK_SECRET\"\n", "");
    compass_adapters::config::Settings::parse(&toml, "configmap.yaml", None).unwrap();
}

#[test]
fn the_systemd_unit_runs_compass_serve() {
    let unit = std::fs::read_to_string(deploy().join("systemd/compass.service")).unwrap();
    for section in ["[Unit]", "[Service]", "[Install]"] {
        assert!(unit.contains(section), "{section}");
    }
    assert!(
        unit.lines()
            .any(|l| l.starts_with("ExecStart=") && l.contains("compass serve"))
    );
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(deploy().join("systemd/compass.service"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("Unknown key") && !err.contains("Invalid"),
            "{err}"
        );
    }
}
