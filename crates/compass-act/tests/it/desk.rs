//! The desk behind `compass act` and the API: records through their lifecycle, the
//! approval gate, resource locks across callers, interrupted runs, manual rollback and
//! the priority queue, against the simulated IRIS instance.

use std::sync::Arc;

use compass_act::action::{Priority, RestartMode};
use compass_act::executor::LocalExecutor;
use compass_act::runner::{ActError, RunResult};
use compass_act::service::{Desk, DeskError, Status};

use crate::drill::{CPF, Instance, restart_iris};

fn desk(iris: &Instance) -> Desk {
    Desk::open(iris.path("act"), iris.settings(), Arc::new(LocalExecutor)).unwrap()
}

fn steps(d: &Desk, id: &str) -> Vec<(String, String)> {
    d.log(Some(id))
        .unwrap()
        .into_iter()
        .map(|e| (e.step, e.actor))
        .collect()
}

#[tokio::test]
async fn plan_approve_run_and_roll_back_a_cpf_edit() {
    let iris = Instance::new();
    let d = desk(&iris);
    let r = d
        .plan(
            iris.edit("e1", "config", "gmheap", "75136"),
            "memory",
            "critical",
        )
        .await
        .unwrap();
    assert_eq!(r.status, Status::Planned);
    assert!(r.plan.needs_approval);

    let e = d.run("e1", "bob").await.unwrap_err();
    assert!(matches!(e, DeskError::Act(ActError::NotApproved(_))), "{e}");
    assert_eq!(iris.cpf(), CPF, "refused: nothing changed");

    let e = d
        .plan(
            iris.edit("e1", "config", "gmheap", "1"),
            "memory",
            "critical",
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already exists (planned)"), "{e}");

    d.approve("e1", "alice").await.unwrap();
    let e = d.approve("e1", "carol").await.unwrap_err();
    assert!(e.to_string().contains("is approved"), "{e}");

    let r = d.run("e1", "bob").await.unwrap();
    assert_eq!(r.status, Status::Succeeded, "{:?}", r.result);
    assert_eq!(r.approved_by.as_deref(), Some("alice"));
    assert!(iris.cpf().contains("gmheap=75136"));

    // reopened from disk (a new process) the record is the same
    let again = desk(&iris).get("e1").unwrap();
    assert_eq!(again, r);

    let r = d.rollback("e1", "alice").await.unwrap();
    assert_eq!(r.status, Status::RolledBack);
    assert_eq!(iris.cpf(), CPF, "the backup is restored byte for byte");
    assert_eq!(
        iris.state(),
        "running",
        "restarted with the old configuration"
    );
    let s = steps(&d, "e1");
    let names: Vec<&str> = s.iter().map(|(st, _)| st.as_str()).collect();
    assert_eq!(
        names[..5],
        ["planned", "refused", "approved", "started", "authorized"]
    );
    assert!(s.contains(&("refused".into(), "bob".into())));
    assert!(s.contains(&("approved".into(), "alice".into())));
    assert!(s.contains(&("started".into(), "bob".into())));
    assert!(s.contains(&("rollback".into(), "alice".into())));
    assert_eq!(names.last(), Some(&"done"));

    let e = d.rollback("e1", "alice").await.unwrap_err();
    assert!(e.to_string().contains("rolled_back"), "{e}");
    assert!(matches!(d.get("nope").unwrap_err(), DeskError::NotFound(_)));
    assert!(matches!(
        d.get("../commands/e1").unwrap_err(),
        DeskError::NotFound(_)
    ));
}

#[tokio::test]
async fn a_busy_resource_is_refused_with_the_holder_named() {
    let iris = Instance::new();
    let d = desk(&iris);
    d.plan(restart_iris("r1", RestartMode::Graceful), "t", "info")
        .await
        .unwrap();
    d.approve("r1", "alice").await.unwrap();
    // another process holds the service
    std::fs::create_dir_all(iris.path("act/locks")).unwrap();
    std::fs::write(iris.path("act/locks/service_IRIS.lock"), "r0").unwrap();
    let e = d.run("r1", "bob").await.unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("conflicts with r0 on service:IRIS"), "{msg}");
    assert_eq!(d.get("r1").unwrap().status, Status::Approved);
    assert!(iris.calls().is_empty());
    std::fs::remove_file(iris.path("act/locks/service_IRIS.lock")).unwrap();
    assert_eq!(d.run("r1", "bob").await.unwrap().status, Status::Succeeded);
    let e = d.rollback("r1", "alice").await.unwrap_err();
    assert!(e.to_string().contains("cannot be rolled back"), "{e}");
}

#[tokio::test]
async fn an_interrupted_run_is_rolled_back_from_its_backup() {
    let iris = Instance::new();
    let d = desk(&iris);
    d.plan(
        iris.edit("c1", "config", "gmheap", "75136"),
        "m",
        "critical",
    )
    .await
    .unwrap();
    d.approve("c1", "alice").await.unwrap();
    d.run("c1", "bob").await.unwrap();
    // simulate a crash after the change: the record says running, the lock is left
    let path = iris.path("act/commands/c1.json");
    let mut rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    rec["status"] = "running".into();
    rec.as_object_mut().unwrap().remove("result");
    let text = serde_json::to_string(&rec).unwrap();
    std::fs::write(&path, text).unwrap();
    let lock = iris.path(&format!(
        "act/locks/file_{}.lock",
        iris.path("iris.cpf").display().to_string().replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-',
            "_"
        )
    ));
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, "c1").unwrap();
    assert_eq!(d.get("c1").unwrap().status, Status::Running);
    let e = d.run("c1", "bob").await.unwrap_err();
    assert!(e.to_string().contains("is running"), "{e}");
    let r = d.rollback("c1", "alice").await.unwrap();
    assert_eq!(r.status, Status::RolledBack, "{:?}", r.result);
    assert_eq!(iris.cpf(), CPF);
    assert!(!lock.exists());
}

#[tokio::test]
async fn dry_run_changes_nothing_and_ready_commands_run_by_priority() {
    let iris = Instance::new();
    let d = desk(&iris);
    d.plan(
        iris.edit("c1", "config", "gmheap", "75136"),
        "m",
        "critical",
    )
    .await
    .unwrap();
    let (res, ran) = d.dry_run("c1").await.unwrap();
    assert_eq!(res, RunResult::Succeeded);
    assert_eq!(iris.cpf(), CPF, "dry run leaves the file alone");
    assert!(iris.calls().is_empty(), "and runs nothing");
    assert!(ran.iter().any(|l| l.ends_with("start IRIS")), "{ran:?}");
    assert_eq!(d.get("c1").unwrap().status, Status::Planned);
    let steps: Vec<String> = d
        .log(Some("c1"))
        .unwrap()
        .into_iter()
        .map(|e| e.step)
        .collect();
    assert_eq!(
        steps,
        ["planned", "dry_run"],
        "the audit log says nothing ran"
    );

    // three restarts of one service: one at a time, critical first
    for (id, p) in [
        ("low", Priority::Low),
        ("crit", Priority::Critical),
        ("norm", Priority::Normal),
    ] {
        let mut c = restart_iris(id, RestartMode::Forced);
        c.priority = p;
        d.plan(c, "t", "info").await.unwrap();
        d.approve(id, "alice").await.unwrap();
    }
    let done = d.run_ready("bob").await.unwrap();
    let order: Vec<&str> = done.iter().map(|r| r.id()).collect();
    assert_eq!(order, ["crit", "norm", "low"]);
    assert!(done.iter().all(|r| r.status == Status::Succeeded));
    assert_eq!(
        iris.calls().len(),
        9,
        "three forced restarts: force, start, status each"
    );
    assert_eq!(
        d.get("c1").unwrap().status,
        Status::Planned,
        "not approved: not run"
    );
}
