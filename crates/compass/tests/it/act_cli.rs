//! The IRIS drill end to end through the `compass` binary: a generated configuration
//! error lands in messages.log, `compass act propose --plan` diagnoses it and plans the
//! CPF change, an approver approves, the run restarts the simulated instance, whose
//! start-up refuses the new value, and the change is rolled back byte for byte.

use assert_cmd::Command;
use predicates::prelude::PredicateBooleanExt;
use serde_json::Value;
use std::path::Path;

const CPF: &str = "[ConfigFile]\nProduct=IRIS\n\n; sized for 16 GiB\n[config]\nglobals=0,0,512,0,0,0\ngmheap=37568\nroutines=64\n";

fn compass(home: &Path) -> Command {
    let mut c = Command::cargo_bin("compass").expect("binary built");
    c.env("NO_COLOR", "1")
        .env("COMPASS_HOME", home)
        .env_remove("COMPASS_CONFIG")
        .env_remove("COMPASS_ACTOR");
    c
}

fn instance(dir: &Path) -> std::path::PathBuf {
    std::fs::write(dir.join("iris.cpf"), CPF).unwrap();
    std::fs::write(dir.join("state"), "running\n").unwrap();
    // the simulated instance refuses to start with any gmheap but the original
    let ctl = dir.join("iris-control");
    std::fs::write(
        &ctl,
        format!(
            "#!/bin/sh\nD='{d}'\necho \"$1 $2\" >> \"$D/calls\"\ncase \"$1\" in\n  drain) ;;\n  stop|force) echo down > \"$D/state\" ;;\n  start) grep -q '^gmheap=37568$' \"$D/iris.cpf\" || {{ echo 'gmheap too large for the host' >&2; exit 1; }}; echo running > \"$D/state\" ;;\n  status) cat \"$D/state\"; grep -q running \"$D/state\" ;;\nesac\n",
            d = dir.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.join("compass.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[act]\nstate_dir = \"act\"\ncontrol = \"{d}/iris-control\"\ndrain_wait = \"10ms\"\nstartup_deadline = \"3s\"\n\
             [act.iris]\nmessages_log = \"messages.log\"\ncpf = \"iris.cpf\"\nservice = \"IRIS\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    config
}

fn json(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
}

#[test]
fn a_generated_error_is_diagnosed_approved_run_and_rolled_back_when_start_up_fails() {
    let dir = tempfile::tempdir().unwrap();
    let config = instance(dir.path());
    let home = dir.path().join("home");
    let cfg = config.to_str().unwrap();

    let out = compass(&home)
        .args([
            "act",
            "drill",
            "generate",
            "--category",
            "configuration",
            "--count",
            "6",
            "--seed",
            "3",
        ])
        .args(["--config", cfg, "--append"])
        .arg(dir.path().join("messages.log"))
        .assert()
        .success();
    let lines = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(lines.lines().count(), 6);
    assert!(
        lines.contains("gmheap"),
        "the seed writes a gmheap error:\n{lines}"
    );

    let out = compass(&home)
        .args([
            "act",
            "propose",
            "--plan",
            "--incident",
            "inc-9",
            "--json",
            "--config",
            cfg,
        ])
        .assert()
        .success();
    let v = json(&out.get_output().stdout);
    let planned: Vec<String> = v["planned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    let fix = v["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["command"]["action"]["key"] == "gmheap")
        .unwrap_or_else(|| panic!("no gmheap proposal in {v}"));
    assert_eq!(fix["route"]["agent"], "config");
    let id = fix["command"]["id"].as_str().unwrap().to_string();
    assert!(planned.contains(&id), "{planned:?}");
    assert!(
        fix["command"]["reason"]
            .as_str()
            .unwrap()
            .contains("messages.log line")
    );

    // no approval: refused, nothing changes
    compass(&home)
        .args(["act", "run", &id, "--by", "bob", "--config", cfg])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("needs an approval"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("iris.cpf")).unwrap(),
        CPF
    );

    compass(&home)
        .args(["act", "approve", &id, "--by", "alice", "--config", cfg])
        .assert()
        .success()
        .stdout(predicates::str::contains("approved by alice"));
    let out = compass(&home)
        .args(["act", "run", &id, "--by", "bob", "--config", cfg])
        .assert()
        .code(5);
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("rolled back"), "{text}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("iris.cpf")).unwrap(),
        CPF,
        "the CPF is restored byte for byte"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("state"))
            .unwrap()
            .trim(),
        "running",
        "and the instance restarted with it"
    );

    let out = compass(&home)
        .args(["act", "log", &id, "--json", "--config", cfg])
        .assert()
        .success();
    let steps: Vec<String> = json(&out.get_output().stdout)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["step"].as_str().unwrap(),
                e["actor"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "refused:bob",
        "approved:alice",
        "started:bob",
        "authorized:alice",
        "backup:compass",
        "rollback:compass",
        "done:compass",
    ] {
        assert!(
            steps.iter().any(|s| s == want),
            "{want} missing from {steps:?}"
        );
    }
    compass(&home)
        .args(["act", "list", "--config", cfg])
        .assert()
        .success()
        .stdout(predicates::str::contains("rolled_back"));
}

#[test]
fn malformed_commands_and_missing_inputs_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = instance(dir.path());
    let home = dir.path().join("home");
    let cfg = config.to_str().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        "{\"id\": \"a\",\n \"action\": {\"kind\": \"reboot_world\"}}",
    )
    .unwrap();
    compass(&home)
        .args(["act", "plan", "--config", cfg])
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("reboot_world").and(predicates::str::contains("line 2")));
    compass(&home)
        .args(["act", "approve", "nope", "--by", "alice", "--config", cfg])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no command `nope`"));
    compass(&home)
        .args(["act", "propose", "--config", cfg])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("messages.log"));
    compass(&home)
        .args([
            "act",
            "drill",
            "generate",
            "--category",
            "disk",
            "--config",
            cfg,
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("os_resources"));
    compass(&home)
        .args(["act", "drill", "generate", "--llm", "--config", cfg])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("needs an [llm] section"));
}
