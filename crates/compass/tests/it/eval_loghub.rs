//! `compass eval loghub` end to end on a tiny Loghub-shaped folder the test writes.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::Path;

const LOG: &str = "\
[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties
[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6
[Sun Dec 04 04:51:08 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers3.properties
[Sun Dec 04 04:51:09 2005] [error] mod_jk child workerEnv in error state 7
";

const TRUTH: &str = "\
LineId,Time,Level,Content,EventId,EventTemplate
1,x,notice,c,E2,workerEnv.init() ok <*>
2,x,error,c,E3,mod_jk child workerEnv in error state <*>
3,x,notice,c,E2,workerEnv.init() ok <*>
4,x,error,c,E3,mod_jk child workerEnv in error state <*>
";

fn write_sample(root: &Path, with_truth: bool) {
    let dir = root.join("Apache");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Apache_2k.log"), LOG).unwrap();
    if with_truth {
        std::fs::write(dir.join("Apache_2k.log_structured.csv"), TRUTH).unwrap();
    }
}

#[test]
fn parses_writes_and_scores_a_sample() {
    let tmp = tempfile::tempdir().unwrap();
    write_sample(&tmp.path().join("loghub"), true);
    let out = tmp.path().join("out");
    Command::cargo_bin("compass")
        .unwrap()
        .args(["eval", "loghub", "--data"])
        .arg(tmp.path().join("loghub"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("Apache"))
        .stdout(predicate::str::contains("1.000"))
        .stdout(predicate::str::contains("mean (1)"));
    let written = std::fs::read_to_string(out.join("Apache_2k.log_structured.csv")).unwrap();
    let mut lines = written.lines();
    assert_eq!(lines.next(), Some("LineId,EventId,EventTemplate"));
    assert_eq!(lines.count(), 4);
    assert!(written.contains("workerEnv.init() ok <*>"), "{written}");
}

#[test]
fn raw_logs_only_are_parsed_and_not_scored() {
    let tmp = tempfile::tempdir().unwrap();
    write_sample(&tmp.path().join("loghub"), false);
    let out = tmp.path().join("out");
    Command::cargo_bin("compass")
        .unwrap()
        .args(["eval", "loghub", "--data"])
        .arg(tmp.path().join("loghub"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("not scored"));
    assert!(out.join("Apache_2k.log_structured.csv").is_file());
}

#[test]
fn unknown_system_without_format_says_to_pass_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("loghub").join("Custom");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Custom_2k.log"), "2024-01-01 INFO hello 1\n").unwrap();
    let cmd = || {
        let mut c = Command::cargo_bin("compass").unwrap();
        c.args(["eval", "loghub", "--data"])
            .arg(tmp.path().join("loghub"))
            .arg("--out")
            .arg(tmp.path().join("out"));
        c
    };
    cmd()
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--format"));
    cmd()
        .args(["--format", "<Date> <Level> <Content>"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Custom"));
}

#[test]
fn bench_logs_makes_its_input_and_reports_throughput() {
    let tmp = tempfile::tempdir().unwrap();
    write_sample(&tmp.path().join("loghub"), false);
    let input = tmp.path().join("in.txt");
    Command::cargo_bin("compass")
        .unwrap()
        .args(["bench", "logs", "--lines", "10", "--input"])
        .arg(&input)
        .arg("--make-from")
        .arg(tmp.path().join("loghub"))
        .assert()
        .success()
        .stdout(predicate::str::contains("lines=10 "))
        .stdout(predicate::str::contains("lines_per_s="))
        .stdout(predicate::str::contains("templates=2"));
    assert_eq!(std::fs::read_to_string(&input).unwrap().lines().count(), 10);
}

#[test]
fn bench_logs_on_a_missing_file_names_it() {
    Command::cargo_bin("compass")
        .unwrap()
        .args(["bench", "logs", "--input", "/nonexistent/x.txt"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("/nonexistent/x.txt"));
}
