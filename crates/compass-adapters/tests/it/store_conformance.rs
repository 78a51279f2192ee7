//! One conformance suite for every backend of the `Store` port (conventions 8): each
//! check runs against SQLite (a temp file) and against a real PostgreSQL started by
//! the test helper in a temp dir. A missing PostgreSQL fails the test and names the
//! install command.

use compass_adapters::store::SqlStore;
use compass_core::{Incident, IncidentOrigin, Severity};
use compass_engine::store::*;
use compass_engine::{Coordinator, CoordinatorConfig, DataSources};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

fn incident(title: &str, severity: Severity) -> Incident {
    Incident {
        id: String::new(),
        title: title.into(),
        severity,
        start: 1_000,
        affected_services: vec!["checkout".into()],
        labels: BTreeMap::from([("alertname".into(), title.into())]),
        origin: IncidentOrigin::Alertmanager,
    }
}

fn alert(fingerprint: &str, group: &str, firing: bool, at: i64) -> AlertIn {
    AlertIn {
        fingerprint: fingerprint.into(),
        group_key: group.into(),
        firing,
        incident: incident(group, Severity::Critical),
        received_at: at,
    }
}

const NO_STORM: StormPolicy = StormPolicy {
    max_new_incidents: 1_000,
    window_ms: 60_000,
};

async fn sqlite() -> (Arc<SqlStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("compass.db").display());
    (Arc::new(SqlStore::connect(&url, 4).await.unwrap()), dir)
}

/// One PostgreSQL server for the whole test binary; one fresh database per test.
fn postgres_url(db: &str) -> String {
    static PG: OnceLock<Result<compass_testkit::Postgres, String>> = OnceLock::new();
    let pg = PG.get_or_init(compass_testkit::Postgres::start);
    let pg = pg.as_ref().unwrap_or_else(|e| panic!("{e}"));
    pg.create_database(db).unwrap_or_else(|e| panic!("{e}"))
}

async fn postgres(db: &str) -> Arc<SqlStore> {
    Arc::new(SqlStore::connect(&postgres_url(db), 20).await.unwrap())
}

/// Runs `$check` once on SQLite and once on PostgreSQL.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    let (store, _dir) = super::sqlite().await;
                    super::$check(store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    let store = super::postgres(stringify!($check)).await;
                    super::$check(store).await;
                }
            )*
        }
    };
}

conformance!(
    alerts_dedup_group_and_resolve,
    a_storm_becomes_few_investigations,
    concurrent_deliveries_open_one_incident,
    leases_follow_priority_and_expire,
    only_the_holder_finishes_once,
    repeated_crashes_fail_the_job,
    cancel_queued_running_and_finished,
    progress_results_and_decisions,
    tokens_audit_and_ledger,
    reconnecting_keeps_everything,
);

async fn alerts_dedup_group_and_resolve(s: Arc<SqlStore>) {
    let opened = s
        .intake_alert(&alert("fp1", "g1", true, 10), NO_STORM)
        .await
        .unwrap();
    let IntakeOutcome::Opened {
        incident_id,
        investigation_id,
    } = opened.clone()
    else {
        panic!("first alert should open an incident: {opened:?}");
    };
    assert_eq!(
        s.intake_alert(&alert("fp1", "g1", true, 11), NO_STORM)
            .await
            .unwrap(),
        IntakeOutcome::Deduplicated {
            incident_id: incident_id.clone()
        }
    );
    assert_eq!(
        s.intake_alert(&alert("fp2", "g1", true, 12), NO_STORM)
            .await
            .unwrap(),
        IntakeOutcome::Joined {
            incident_id: incident_id.clone()
        }
    );
    let rec = s.incident(&incident_id).await.unwrap();
    assert_eq!(
        (rec.alert_count, rec.firing_count, rec.state),
        (2, 2, IncidentState::Open)
    );
    assert_eq!(
        rec.incident.id, incident_id,
        "the stored incident carries its id"
    );
    assert_eq!(
        s.intake_alert(&alert("fp1", "g1", false, 13), NO_STORM)
            .await
            .unwrap(),
        IntakeOutcome::Resolved {
            incident_id: incident_id.clone(),
            closed: false
        }
    );
    // A repeated resolve changes nothing.
    assert_eq!(
        s.intake_alert(&alert("fp1", "g1", false, 14), NO_STORM)
            .await
            .unwrap(),
        IntakeOutcome::Resolved {
            incident_id: incident_id.clone(),
            closed: false
        }
    );
    assert_eq!(
        s.intake_alert(&alert("fp2", "g1", false, 15), NO_STORM)
            .await
            .unwrap(),
        IntakeOutcome::Resolved {
            incident_id: incident_id.clone(),
            closed: true
        }
    );
    let rec = s.incident(&incident_id).await.unwrap();
    assert_eq!(
        (rec.state, rec.resolved_at, rec.firing_count),
        (IncidentState::Resolved, Some(15), 0)
    );
    assert_eq!(
        s.intake_alert(&alert("fp9", "g9", false, 16), NO_STORM)
            .await
            .unwrap(),
        IntakeOutcome::Ignored
    );
    // The alert firing again after its incident closed opens a new incident.
    let again = s
        .intake_alert(&alert("fp1", "g1", true, 20), NO_STORM)
        .await
        .unwrap();
    assert!(
        matches!(&again, IntakeOutcome::Opened { incident_id: i, .. } if *i != incident_id),
        "{again:?}"
    );
    let invs = s.investigations(Some(&incident_id), 10).await.unwrap();
    assert_eq!(invs.len(), 1);
    assert_eq!(
        (invs[0].id.as_str(), invs[0].state),
        (investigation_id.as_str(), JobState::Queued)
    );
    assert_eq!(invs[0].priority, 2, "critical incidents go first");
    let open = s.incidents(Some(IncidentState::Open), 10).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(s.incidents(None, 10).await.unwrap().len(), 2);
    assert_eq!(s.incidents(None, 1).await.unwrap().len(), 1, "limit holds");
}

async fn a_storm_becomes_few_investigations(s: Arc<SqlStore>) {
    let storm = StormPolicy {
        max_new_incidents: 3,
        window_ms: 60_000,
    };
    let mut opened = 0;
    for i in 0..200 {
        let out = s
            .intake_alert(
                &alert(
                    &format!("fp{i}"),
                    &format!("group{}", i % 40),
                    true,
                    1_000 + i,
                ),
                storm,
            )
            .await
            .unwrap();
        match out {
            IntakeOutcome::Opened { .. } => opened += 1,
            IntakeOutcome::Joined { .. } | IntakeOutcome::Deduplicated { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(opened, 3);
    let counts = s.job_counts().await.unwrap();
    assert_eq!(
        counts
            .iter()
            .find(|(j, _)| *j == JobState::Queued)
            .unwrap()
            .1,
        3
    );
    let total: u64 = s
        .incidents(None, 100)
        .await
        .unwrap()
        .iter()
        .map(|i| i.alert_count)
        .sum();
    assert_eq!(total, 200, "every alert is kept in some incident");
    // After the window, a new group opens its own incident again.
    let later = s
        .intake_alert(&alert("late", "late-group", true, 1_000 + 61_000), storm)
        .await
        .unwrap();
    assert!(matches!(later, IntakeOutcome::Opened { .. }), "{later:?}");
}

async fn concurrent_deliveries_open_one_incident(s: Arc<SqlStore>) {
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = s.clone();
        // Two fingerprints of one group, each delivered 20 times at once.
        tasks.push(tokio::spawn(async move {
            s.intake_alert(
                &alert(&format!("fp{}", i % 2), "same", true, 100 + i),
                NO_STORM,
            )
            .await
            .unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let opened = outcomes
        .iter()
        .filter(|o| matches!(o, IntakeOutcome::Opened { .. }))
        .count();
    let joined = outcomes
        .iter()
        .filter(|o| matches!(o, IntakeOutcome::Joined { .. }))
        .count();
    assert_eq!((opened, joined), (1, 1), "{outcomes:?}");
    let incidents = s.incidents(None, 10).await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(
        (incidents[0].alert_count, incidents[0].firing_count),
        (2, 2)
    );
    assert_eq!(s.investigations(None, 10).await.unwrap().len(), 1);
}

async fn leases_follow_priority_and_expire(s: Arc<SqlStore>) {
    let (warn, _) = s
        .create_incident(&incident("slow", Severity::Warning), 1)
        .await
        .unwrap();
    let (crit, _) = s
        .create_incident(&incident("down", Severity::Critical), 2)
        .await
        .unwrap();
    let first = s.lease("a", 100, 1_000, 3).await.unwrap().unwrap();
    assert_eq!(first.incident.id, crit.id, "critical first");
    assert_eq!((first.attempt, first.until), (1, 1_100));
    let second = s.lease("b", 100, 1_000, 3).await.unwrap().unwrap();
    assert_eq!(second.incident.id, warn.id);
    assert!(
        s.lease("c", 100, 1_000, 3).await.unwrap().is_none(),
        "nothing left"
    );
    assert_eq!(
        s.renew(&first.investigation_id, "a", 2_000).await.unwrap(),
        LeaseCheck::Held {
            cancel_requested: false
        }
    );
    assert_eq!(
        s.renew(&first.investigation_id, "b", 2_000).await.unwrap(),
        LeaseCheck::Lost,
        "not b's"
    );
    // b stops renewing; at 1_200 its lease (until 1_100) has expired and c takes over.
    let taken = s.lease("c", 1_200, 1_000, 3).await.unwrap().unwrap();
    assert_eq!(
        (taken.investigation_id.as_str(), taken.attempt),
        (second.investigation_id.as_str(), 2)
    );
    assert_eq!(
        s.renew(&second.investigation_id, "b", 3_000).await.unwrap(),
        LeaseCheck::Lost
    );
    let rec = s.investigation(&second.investigation_id).await.unwrap();
    assert_eq!(
        (rec.state, rec.lease_owner.as_deref(), rec.attempts),
        (JobState::Running, Some("c"), 2)
    );
}

async fn only_the_holder_finishes_once(s: Arc<SqlStore>) {
    let (_, inv) = s
        .create_incident(&incident("x", Severity::Critical), 1)
        .await
        .unwrap();
    let l = s.lease("a", 10, 100, 3).await.unwrap().unwrap();
    assert_eq!(l.investigation_id, inv);
    let done = Finish {
        state: JobState::Completed,
        result: None,
        error: None,
    };
    assert!(
        !s.finish(&inv, "b", done.clone(), 20).await.unwrap(),
        "a stranger cannot finish it"
    );
    let taken = s.lease("b", 500, 100, 3).await.unwrap().unwrap();
    assert!(
        !s.finish(&inv, "a", done.clone(), 510).await.unwrap(),
        "the old holder lost it"
    );
    assert!(
        s.finish(&taken.investigation_id, "b", done.clone(), 520)
            .await
            .unwrap()
    );
    assert!(
        !s.finish(&inv, "b", done.clone(), 530).await.unwrap(),
        "finished once"
    );
    let rec = s.investigation(&inv).await.unwrap();
    assert_eq!(
        (rec.state, rec.finished_at, rec.lease_owner),
        (JobState::Completed, Some(520), None)
    );
    let finished = s
        .progress(&inv, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.kind == "finished")
        .count();
    assert_eq!(finished, 1);
    assert!(
        s.lease("c", 10_000, 100, 3).await.unwrap().is_none(),
        "a finished job is never leased"
    );
    let bad = s
        .finish(
            &inv,
            "b",
            Finish {
                state: JobState::Running,
                result: None,
                error: None,
            },
            1,
        )
        .await;
    assert_eq!(bad.unwrap_err().kind(), StoreErrorKind::BadInput);
}

async fn repeated_crashes_fail_the_job(s: Arc<SqlStore>) {
    let (_, inv) = s
        .create_incident(&incident("x", Severity::Critical), 1)
        .await
        .unwrap();
    for (i, owner) in ["a", "b"].iter().enumerate() {
        let l = s
            .lease(owner, 1_000 * i as i64, 100, 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(l.attempt as usize, i + 1);
    }
    assert!(s.lease("c", 5_000, 100, 2).await.unwrap().is_none());
    let rec = s.investigation(&inv).await.unwrap();
    assert_eq!(rec.state, JobState::Failed);
    assert!(rec.error.unwrap().contains("2 times"));
}

async fn cancel_queued_running_and_finished(s: Arc<SqlStore>) {
    let (_, queued) = s
        .create_incident(&incident("q", Severity::Warning), 1)
        .await
        .unwrap();
    let (_, running) = s
        .create_incident(&incident("r", Severity::Critical), 2)
        .await
        .unwrap();
    let l = s.lease("a", 10, 1_000, 3).await.unwrap().unwrap();
    assert_eq!(l.investigation_id, running);
    let rec = s.cancel(&queued, 20).await.unwrap();
    assert_eq!(rec.state, JobState::Cancelled);
    assert_eq!(
        s.progress(&queued, 0).await.unwrap().last().unwrap().kind,
        "finished"
    );
    let rec = s.cancel(&running, 30).await.unwrap();
    assert_eq!((rec.state, rec.cancel_requested), (JobState::Running, true));
    assert_eq!(
        s.renew(&running, "a", 2_000).await.unwrap(),
        LeaseCheck::Held {
            cancel_requested: true
        }
    );
    let f = Finish {
        state: JobState::Cancelled,
        result: None,
        error: Some("cancelled by alice".into()),
    };
    assert!(s.finish(&running, "a", f, 40).await.unwrap());
    let (_, other) = s
        .create_incident(&incident("o", Severity::Critical), 3)
        .await
        .unwrap();
    s.lease("a", 50, 1_000, 3).await.unwrap().unwrap();
    assert!(
        s.finish(
            &other,
            "a",
            Finish {
                state: JobState::Completed,
                result: None,
                error: None
            },
            60
        )
        .await
        .unwrap()
    );
    assert_eq!(
        s.cancel(&other, 70).await.unwrap_err().kind(),
        StoreErrorKind::Conflict
    );
    assert_eq!(
        s.cancel("inv_nope", 70).await.unwrap_err().kind(),
        StoreErrorKind::NotFound
    );
}

async fn progress_results_and_decisions(s: Arc<SqlStore>) {
    let (rec, inv) = s
        .create_incident(&incident("x", Severity::Critical), 1)
        .await
        .unwrap();
    assert!(s.result(&inv).await.unwrap().is_none());
    let l = s.lease("a", 10, 1_000, 3).await.unwrap().unwrap();
    for (i, kind) in ["started", "agent_finished", "orienting"]
        .iter()
        .enumerate()
    {
        let seq = s
            .append_progress(&inv, kind, &serde_json::json!({ "i": i }), 20 + i as i64)
            .await
            .unwrap();
        assert_eq!(seq, i as u64 + 1);
    }
    let after_first = s.progress(&inv, 1).await.unwrap();
    assert_eq!(
        after_first
            .iter()
            .map(|p| p.kind.as_str())
            .collect::<Vec<_>>(),
        ["agent_finished", "orienting"]
    );
    assert_eq!(after_first[0].data, serde_json::json!({ "i": 1 }));
    let result = Coordinator::new(Vec::new(), CoordinatorConfig::default())
        .investigate(&l.incident, &DataSources::default(), None)
        .await;
    assert!(
        s.finish(
            &inv,
            "a",
            Finish {
                state: JobState::Completed,
                result: Some(&result),
                error: None
            },
            50
        )
        .await
        .unwrap()
    );
    assert_eq!(s.result(&inv).await.unwrap().unwrap(), result);
    assert_eq!(result.incident.id, rec.id);
    for (i, confirmed) in [true, false].into_iter().enumerate() {
        s.record_decision(&DecisionRecord {
            investigation_id: inv.clone(),
            hypothesis_id: "h1".into(),
            confirmed,
            note: format!("note {i}"),
            actor: "alice".into(),
            at: 100 + i as i64,
        })
        .await
        .unwrap();
    }
    let ds = s.decisions(&inv).await.unwrap();
    assert_eq!(
        ds.iter().map(|d| d.confirmed).collect::<Vec<_>>(),
        [true, false]
    );
    let missing = s
        .record_decision(&DecisionRecord {
            investigation_id: "inv_nope".into(),
            hypothesis_id: "h1".into(),
            confirmed: true,
            note: String::new(),
            actor: "alice".into(),
            at: 1,
        })
        .await;
    assert_eq!(missing.unwrap_err().kind(), StoreErrorKind::NotFound);
}

async fn tokens_audit_and_ledger(s: Arc<SqlStore>) {
    use compass_core::TimeRange;
    use compass_engine::llm::{CallOutcome, CostLedger, LedgerEntry};
    let t = s
        .create_token("alice", Role::Approver, "ab12", 5)
        .await
        .unwrap();
    assert_eq!(s.token_by_hash("ab12").await.unwrap().unwrap(), t);
    assert!(s.token_by_hash("ffff").await.unwrap().is_none());
    assert_eq!(
        s.create_token("alice", Role::Viewer, "cd34", 6)
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::Conflict
    );
    assert_eq!(
        s.create_token(" ", Role::Viewer, "ef56", 6)
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::BadInput
    );
    let revoked = s.revoke_token("alice", 7).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(7));
    assert!(
        s.token_by_hash("ab12").await.unwrap().is_none(),
        "revoked tokens do not authenticate"
    );
    assert_eq!(
        s.revoke_token("alice", 8).await.unwrap_err().kind(),
        StoreErrorKind::Conflict
    );
    assert_eq!(
        s.revoke_token("bob", 8).await.unwrap_err().kind(),
        StoreErrorKind::NotFound
    );
    assert_eq!(s.tokens().await.unwrap().len(), 1);
    for i in 0..3 {
        s.audit(&AuditRecord {
            at: 10 + i,
            actor: "alice".into(),
            action: "decision.record".into(),
            target: format!("inv_{i}"),
            detail: "{}".into(),
        })
        .await
        .unwrap();
    }
    let log = s.audit_log(2).await.unwrap();
    assert_eq!(
        log.iter().map(|a| a.at).collect::<Vec<_>>(),
        [12, 11],
        "newest first"
    );
    let entry = |at, usd| LedgerEntry {
        at,
        investigation_id: "inv_1".into(),
        agent: "summary".into(),
        provider: "openai".into(),
        model: "gpt-4o-mini".into(),
        prompt_tokens: 1_000,
        completion_tokens: 50,
        usd,
        reported: true,
        outcome: CallOutcome::Ok,
    };
    s.record(&entry(2_000, 0.25)).await.unwrap();
    s.record(&entry(1_000, 0.5)).await.unwrap();
    let all = s.entries(TimeRange::new(0, 10_000)).await.unwrap();
    assert_eq!(all, vec![entry(1_000, 0.5), entry(2_000, 0.25)]);
    assert!((s.spent_usd(TimeRange::new(1_500, 10_000)).await.unwrap() - 0.25).abs() < 1e-12);
}

async fn reconnecting_keeps_everything(s: Arc<SqlStore>) {
    let (rec, inv) = s
        .create_incident(&incident("x", Severity::Critical), 1)
        .await
        .unwrap();
    assert_eq!(s.ping().await, Ok(()));
    // A restart or a second replica connects and applies the schema again: a no-op
    // that keeps every row.
    let again = SqlStore::connect(s.url(), 4).await.unwrap();
    assert_eq!(again.incident(&rec.id).await.unwrap(), rec);
    assert_eq!(
        again.investigation(&inv).await.unwrap().state,
        JobState::Queued
    );
    assert_eq!(again.backend(), s.backend());
}
