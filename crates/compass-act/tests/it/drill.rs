//! End-to-end remediation drills against a simulated IRIS instance: a real executable
//! control script (written by the test) that keeps its state in files, reads the CPF at
//! start-up like IRIS does, and can be told to fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use compass_act::action::{Action, Command, Policy, Priority, RestartMode};
use compass_act::audit::AuditLog;
use compass_act::executor::{DryRunExecutor, LocalExecutor};
use compass_act::runner::{ActError, Approval, Check, RunResult, Runner, Settings};

pub(crate) const CPF: &str = "\
[ConfigFile]
Product=IRIS

; sized for the 16 GiB host
[config]
globals=0,0,512,0,0,0
gmheap=37568
routines=64

[Journal]
FreezeOnError=0
";

pub(crate) struct Instance {
    dir: tempfile::TempDir,
}

impl Instance {
    pub(crate) fn new() -> Instance {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("iris.cpf"), CPF).unwrap();
        std::fs::write(dir.path().join("state"), "running\n").unwrap();
        let script = format!(
            r#"#!/bin/sh
# simulated IRIS control: <verb> <instance>
D='{d}'
echo "$1 $2" >> "$D/calls"
case "$1" in
  drain) echo "draining connections of $2" ;;
  stop)
    [ -f "$D/hang_stop" ] && sleep 60
    echo down > "$D/state"; echo "$2 stopped" ;;
  force) echo down > "$D/state"; echo "$2 forced down" ;;
  start)
    if grep -q '^gmheap=9999999' "$D/iris.cpf"; then
      echo "ERROR #5001: not enough shared memory for gmheap" >&2; exit 1
    fi
    if [ -f "$D/never_up" ]; then echo starting > "$D/state"; else echo running > "$D/state"; fi
    echo "starting $2" ;;
  status) cat "$D/state"; grep -q running "$D/state" ;;
  *) echo "unknown verb $1" >&2; exit 2 ;;
esac
"#,
            d = dir.path().display()
        );
        // simulated sysctl for vm.nr_hugepages: the kernel grants at most `max_pages`
        let sysctl = format!(
            r#"#!/bin/sh
D='{d}'
[ -f "$D/nr_hugepages" ] || echo 0 > "$D/nr_hugepages"
case "$1" in
  -n) [ "$2" = vm.nr_hugepages ] || {{ echo "unknown key $2" >&2; exit 1; }}
      cat "$D/nr_hugepages" ;;
  -w) v="${{2#vm.nr_hugepages=}}"
      if [ -f "$D/max_pages" ] && [ "$v" -gt "$(cat "$D/max_pages")" ]; then v=$(cat "$D/max_pages"); fi
      echo "$v" > "$D/nr_hugepages"; echo "vm.nr_hugepages = $v" ;;
  *) exit 2 ;;
esac
"#,
            d = dir.path().display()
        );
        for (name, body) in [("iris", script), ("sysctl", sysctl)] {
            let p = dir.path().join(name);
            std::fs::write(&p, body).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        Instance { dir }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn cpf(&self) -> String {
        std::fs::read_to_string(self.path("iris.cpf")).unwrap()
    }

    pub(crate) fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub(crate) fn state(&self) -> String {
        std::fs::read_to_string(self.path("state"))
            .unwrap()
            .trim()
            .to_string()
    }

    pub(crate) fn settings(&self) -> Settings {
        let cpf = self.path("iris.cpf").display().to_string();
        Settings {
            policy: Policy {
                allowlist: vec![],
                config_files: vec![cpf.clone()],
                auto_remediation: false,
                auto_approve: vec![],
                max_replicas: 10,
                kernel_params: vec!["vm.nr_hugepages".into()],
            },
            backup_dir: self.path("backups"),
            control: Some(self.path("iris").display().to_string()),
            scaler: None,
            sysctl: Some(self.path("sysctl").display().to_string()),
            config_services: BTreeMap::from([(cpf, "IRIS".to_string())]),
            step_timeout: Duration::from_secs(10),
            drain_wait: Duration::from_millis(50),
            startup_deadline: Duration::from_secs(5),
        }
    }

    fn runner(&self, settings: Settings) -> (Runner, Arc<AuditLog>) {
        let audit = Arc::new(AuditLog::open(self.path("audit.jsonl")).unwrap());
        (
            Runner::new(Arc::new(LocalExecutor), audit.clone(), settings),
            audit,
        )
    }

    pub(crate) fn edit(&self, id: &str, section: &str, key: &str, value: &str) -> Command {
        Command {
            id: id.into(),
            incident: Some("inc-1".into()),
            priority: Priority::High,
            action: Action::EditConfig {
                file: self.path("iris.cpf").display().to_string(),
                section: section.into(),
                key: key.into(),
                value: value.into(),
            },
            reason: "journal freeze under load".into(),
            validate: None,
        }
    }
}

pub(crate) fn restart_iris(id: &str, mode: RestartMode) -> Command {
    Command {
        id: id.into(),
        incident: None,
        priority: Priority::Normal,
        action: Action::RestartService {
            service: "IRIS".into(),
            mode,
        },
        reason: String::new(),
        validate: None,
    }
}

fn approver() -> Approval {
    Approval { by: "alice".into() }
}

fn steps(audit: &AuditLog, id: &str) -> Vec<String> {
    audit
        .read(Some(id))
        .unwrap()
        .into_iter()
        .map(|e| e.step)
        .collect()
}

#[tokio::test]
async fn approved_cpf_edit_is_backed_up_applied_restarted_and_validated() {
    let iris = Instance::new();
    let (runner, audit) = iris.runner(iris.settings());
    let plan = runner
        .plan(
            iris.edit("c1", "config", "gmheap", "75136"),
            "memory",
            "critical",
        )
        .unwrap();
    assert!(plan.needs_approval);
    assert_eq!(plan.risk.level.to_string(), "high", "{}", plan.risk.rule);
    assert!(
        plan.preview.contains("-gmheap=37568\n+gmheap=75136"),
        "{}",
        plan.preview
    );
    assert!(
        plan.preview.contains("graceful restart of IRIS"),
        "{}",
        plan.preview
    );
    assert_eq!(iris.cpf(), CPF, "planning changes nothing");
    assert!(iris.calls().is_empty());

    let result = runner.run(&plan, Some(&approver()), None).await.unwrap();
    assert_eq!(result, RunResult::Succeeded);
    assert_eq!(iris.cpf(), CPF.replace("gmheap=37568", "gmheap=75136"));
    assert_eq!(
        iris.calls(),
        ["drain IRIS", "stop IRIS", "start IRIS", "status IRIS"]
    );
    assert_eq!(iris.state(), "running");
    assert_eq!(
        steps(&audit, "c1"),
        [
            "planned",
            "authorized",
            "backup",
            "change",
            "change",
            "change",
            "change",
            "validation",
            "done"
        ]
    );
    let entries = audit.read(Some("c1")).unwrap();
    assert_eq!(entries[1].actor, "alice");
    let backup = PathBuf::from(&entries[2].detail);
    assert_eq!(
        std::fs::read_to_string(backup).unwrap(),
        CPF,
        "the backup is the file before"
    );
}

#[tokio::test]
async fn a_change_that_stops_the_instance_from_starting_is_rolled_back() {
    let iris = Instance::new();
    let (runner, audit) = iris.runner(iris.settings());
    let plan = runner
        .plan(
            iris.edit("c2", "config", "gmheap", "99999999"),
            "memory",
            "critical",
        )
        .unwrap();
    let result = runner.run(&plan, Some(&approver()), None).await.unwrap();
    let RunResult::RolledBack { reason } = result else {
        panic!("{result:?}")
    };
    assert!(reason.contains("start IRIS"), "{reason}");
    assert_eq!(iris.cpf(), CPF, "restored byte for byte");
    assert_eq!(
        iris.state(),
        "running",
        "restarted on the restored configuration"
    );
    let s = steps(&audit, "c2");
    assert!(s.contains(&"rollback".to_string()), "{s:?}");
    let start = audit
        .read(Some("c2"))
        .unwrap()
        .into_iter()
        .find(|e| e.detail.ends_with("start IRIS") && !e.ok)
        .unwrap();
    assert_eq!(start.exit_code, Some(1));
    assert!(start.output.unwrap().contains("not enough shared memory"));
}

#[tokio::test]
async fn a_validation_that_never_passes_rolls_the_edit_back() {
    let iris = Instance::new();
    let (runner, audit) = iris.runner(iris.settings());
    // FreezeOnError is applied on a running instance: no restart, medium risk
    let plan = runner
        .plan(
            iris.edit("c3", "Journal", "FreezeOnError", "1"),
            "journal",
            "warning",
        )
        .unwrap();
    assert_eq!(plan.restart, None);
    assert_eq!(plan.risk.level.to_string(), "medium");
    let check = Check {
        program: "sh".into(),
        args: vec!["-c".into(), "echo journal still frozen; exit 1".into()],
        within: Duration::from_millis(600),
        every: Duration::from_millis(100),
    };
    let result = runner
        .run(&plan, Some(&approver()), Some(&check))
        .await
        .unwrap();
    assert!(
        matches!(&result, RunResult::RolledBack { reason } if reason.contains("did not pass within")),
        "{result:?}"
    );
    assert_eq!(iris.cpf(), CPF);
    assert!(iris.calls().is_empty(), "no restart for a dynamic key");
    let v = audit.read(Some("c3")).unwrap();
    let failed = v.iter().find(|e| e.step == "validation").unwrap();
    assert!(
        !failed.ok
            && failed
                .output
                .as_deref()
                .unwrap()
                .contains("journal still frozen")
    );
    assert_eq!(
        v.last().unwrap().detail,
        "rolled back: validation `sh -c 'echo journal still frozen; exit 1'` did not pass within 600ms"
    );
}

#[tokio::test]
async fn a_restart_that_never_comes_up_fails_within_its_deadline() {
    let iris = Instance::new();
    std::fs::write(iris.path("never_up"), "").unwrap();
    let mut settings = iris.settings();
    settings.startup_deadline = Duration::from_millis(700);
    let (runner, audit) = iris.runner(settings);
    let cmd = restart_iris("r1", RestartMode::Forced);
    let plan = runner.plan(cmd, "availability", "critical").unwrap();
    assert_eq!(plan.preview.lines().count(), 3, "{}", plan.preview);
    let result = runner.run(&plan, Some(&approver()), None).await.unwrap();
    assert!(
        matches!(&result, RunResult::Failed { reason } if reason.contains("did not report running within 700ms")),
        "{result:?}"
    );
    assert_eq!(
        iris.calls()[..2],
        ["force IRIS".to_string(), "start IRIS".to_string()]
    );
    assert_eq!(steps(&audit, "r1").last().unwrap(), "failed");
}

#[tokio::test]
async fn a_hanging_step_is_killed_and_recorded() {
    let iris = Instance::new();
    std::fs::write(iris.path("hang_stop"), "").unwrap();
    let mut settings = iris.settings();
    settings.step_timeout = Duration::from_millis(400);
    let (runner, audit) = iris.runner(settings);
    let cmd = restart_iris("r2", RestartMode::Graceful);
    let plan = runner.plan(cmd, "availability", "critical").unwrap();
    let result = runner.run(&plan, Some(&approver()), None).await.unwrap();
    assert!(
        matches!(&result, RunResult::Failed { reason } if reason.contains("stop IRIS")),
        "{result:?}"
    );
    let stop = audit
        .read(Some("r2"))
        .unwrap()
        .into_iter()
        .find(|e| e.detail.ends_with("stop IRIS"))
        .unwrap();
    assert!(!stop.ok && stop.exit_code.is_none());
    assert!(stop.output.unwrap().contains("[timed out]"));
    assert_eq!(iris.state(), "running", "the stop never happened");
}

#[tokio::test]
async fn nothing_runs_without_the_approval_it_needs() {
    let iris = Instance::new();
    let (runner, audit) = iris.runner(iris.settings());
    let plan = runner
        .plan(
            iris.edit("c4", "config", "gmheap", "75136"),
            "memory",
            "critical",
        )
        .unwrap();
    let err = runner.run(&plan, None, None).await.unwrap_err();
    assert!(matches!(err, ActError::NotApproved(_)), "{err}");
    assert_eq!(iris.cpf(), CPF);
    assert!(iris.calls().is_empty());
    assert_eq!(steps(&audit, "c4"), ["planned", "refused"]);
    assert!(!Path::new(&iris.path("backups")).exists());
}

#[tokio::test]
async fn invalid_commands_and_broken_cpf_files_are_refused_at_planning() {
    let iris = Instance::new();
    let (runner, _) = iris.runner(iris.settings());
    let mut other = iris.edit("c5", "config", "gmheap", "1");
    other.action = Action::EditConfig {
        file: "/etc/passwd".into(),
        section: "x".into(),
        key: "root".into(),
        value: "0".into(),
    };
    let e = runner.plan(other, "t", "s").unwrap_err().to_string();
    assert!(e.contains("not one of the configuration files"), "{e}");
    std::fs::write(iris.path("iris.cpf"), "[config]\ngmheap 1\n").unwrap();
    let e = runner
        .plan(iris.edit("c6", "config", "gmheap", "2"), "t", "s")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2"), "{e}");
}

#[tokio::test]
async fn dry_run_shows_the_command_lines_and_runs_nothing() {
    let iris = Instance::new();
    let audit = Arc::new(AuditLog::open(iris.path("audit.jsonl")).unwrap());
    let dry = Arc::new(DryRunExecutor::scripted([]));
    let mut settings = iris.settings();
    settings.drain_wait = Duration::ZERO;
    // the dry-run status answers "" (not running): the watch ends at the deadline
    settings.startup_deadline = Duration::from_millis(300);
    let runner = Runner::new(dry.clone(), audit, settings);
    let plan = runner
        .plan(restart_iris("d1", RestartMode::Graceful), "t", "s")
        .unwrap();
    runner.run(&plan, Some(&approver()), None).await.unwrap();
    let ran = dry.ran();
    let ctl = iris.path("iris").display().to_string();
    assert_eq!(
        ran[..3],
        [
            format!("{ctl} drain IRIS"),
            format!("{ctl} stop IRIS"),
            format!("{ctl} start IRIS")
        ]
    );
    assert!(iris.calls().is_empty(), "the real script never ran");
}

fn huge_pages_command(iris: &Instance, id: &str) -> Command {
    let cpf = compass_act::iris::cpf::CpfFile::new(iris.path("iris.cpf"))
        .read()
        .unwrap();
    let need = compass_act::iris::os::huge_pages(&cpf, &[], 2048).unwrap();
    compass_act::iris::os::command(id, Some("inc-hp".into()), &need)
}

#[tokio::test]
async fn huge_pages_are_sized_from_the_cpf_set_and_read_back() {
    let iris = Instance::new();
    let (runner, audit) = iris.runner(iris.settings());
    let cmd = huge_pages_command(&iris, "hp1");
    // 512*1.075 + 64*1.02 + 37568/1024 + 64 + 32 = 748.06 -> 749 MB -> 375 pages + 1
    assert!(cmd.reason.contains("749 MB"), "{}", cmd.reason);
    let plan = runner.plan(cmd, "os_resources", "critical").unwrap();
    assert_eq!(plan.risk.level.to_string(), "medium");
    assert!(
        plan.preview.contains("-w vm.nr_hugepages=376"),
        "{}",
        plan.preview
    );
    let r = runner.run(&plan, Some(&approver()), None).await.unwrap();
    assert_eq!(r, RunResult::Succeeded);
    let got = std::fs::read_to_string(iris.path("nr_hugepages")).unwrap();
    assert_eq!(got.trim(), "376");
    assert_eq!(
        steps(&audit, "hp1"),
        [
            "planned",
            "authorized",
            "backup",
            "change",
            "validation",
            "done"
        ]
    );
}

#[tokio::test]
async fn huge_pages_the_kernel_cannot_grant_are_rolled_back() {
    let iris = Instance::new();
    std::fs::write(iris.path("nr_hugepages"), "128\n").unwrap();
    std::fs::write(iris.path("max_pages"), "200\n").unwrap();
    let (runner, audit) = iris.runner(iris.settings());
    let plan = runner
        .plan(huge_pages_command(&iris, "hp2"), "os_resources", "critical")
        .unwrap();
    let r = runner.run(&plan, Some(&approver()), None).await.unwrap();
    match r {
        RunResult::RolledBack { reason } => {
            assert!(reason.contains("reads `200`"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let got = std::fs::read_to_string(iris.path("nr_hugepages")).unwrap();
    assert_eq!(got.trim(), "128", "the old value is written back");
    assert_eq!(
        steps(&audit, "hp2"),
        [
            "planned",
            "authorized",
            "backup",
            "change",
            "validation",
            "rollback",
            "done"
        ]
    );
}
