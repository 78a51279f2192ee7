//! The investigation workers of one replica: each leases a job from the store, runs
//! the coordinator over the configured data sources, renews the lease every third of
//! its length, writes progress events as the agents finish, and stores the result.
//!
//! A cancel request or a lost lease (this replica stalled and another took the job
//! over) drops the running investigation; only the lease holder can finish a job, so
//! a job is finished exactly once however many replicas die on the way. Shutdown stops
//! leasing at once and lets running investigations finish within the grace period;
//! what is still running after it is left to expire and be taken over.

use super::ServeState;
use super::metrics as m;
use compass_core::{Investigation, InvestigationStatus};
use compass_engine::store::{Finish, JobState, Lease, LeaseCheck};
use compass_engine::{Coordinator, ProgressEvent, ProgressFn};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Run `workers` leasing loops until `shutdown` turns true.
pub(super) async fn run_workers(state: ServeState, shutdown: watch::Receiver<bool>) {
    let mut tasks = Vec::new();
    for n in 0..state.serve.workers {
        let state = state.clone();
        let shutdown = shutdown.clone();
        let owner = format!("{}/{n}", state.replica);
        tasks.push(tokio::spawn(async move {
            worker_loop(state, owner, shutdown).await
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn worker_loop(state: ServeState, owner: String, mut shutdown: watch::Receiver<bool>) {
    let lease_ms = state.serve.lease.as_millis() as i64;
    let mut idle = Duration::from_millis(100);
    while !*shutdown.borrow() {
        match state
            .store
            .lease(&owner, now_ms(), lease_ms, state.serve.max_attempts)
            .await
        {
            Ok(Some(lease)) => {
                idle = Duration::from_millis(100);
                if lease.attempt > 1 {
                    metrics::counter!(m::LEASE_TAKEOVERS).increment(1);
                    tracing::warn!(investigation = %lease.investigation_id, attempt = lease.attempt, "took over a job whose lease expired");
                }
                metrics::gauge!(m::LEASES_ACTIVE).increment(1.0);
                run_job(&state, lease).await;
                metrics::gauge!(m::LEASES_ACTIVE).decrement(1.0);
            }
            Ok(None) => {
                // Nothing queued: poll again soon, backing off to 1 s.
                tokio::select! {
                    _ = tokio::time::sleep(idle) => {}
                    _ = state.queue_notify.notified() => {}
                    _ = shutdown.changed() => {}
                }
                idle = (idle * 2).min(Duration::from_secs(1));
            }
            Err(e) => {
                tracing::error!(worker = %owner, error = %e, "cannot lease a job; retrying in 2 s");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

fn job_state(status: InvestigationStatus) -> JobState {
    match status {
        InvestigationStatus::Completed => JobState::Completed,
        InvestigationStatus::Degraded => JobState::Degraded,
        InvestigationStatus::BudgetExhausted => JobState::BudgetExhausted,
        InvestigationStatus::DeadlineExceeded => JobState::DeadlineExceeded,
    }
}

/// How a run ended before it was stored.
enum Ended {
    Done(Box<Investigation>),
    Cancelled,
    LeaseLost,
}

/// One investigation is one trace: this span is its root, the agents, data-source
/// calls and LLM calls its children; the stored result carries the trace's id.
#[tracing::instrument(name = "investigation", parent = None, skip_all, fields(investigation = %lease.investigation_id, incident = %lease.incident.id, attempt = lease.attempt, trace_id = tracing::field::Empty))]
async fn run_job(state: &ServeState, lease: Lease) {
    let id = lease.investigation_id.clone();
    let started = Instant::now();
    let exported_trace = super::telemetry::current_trace_id();
    if let Some(t) = &exported_trace {
        tracing::Span::current().record("trace_id", t.as_str());
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, serde_json::Value)>();
    let progress: ProgressFn = Arc::new(move |e| {
        let _ = tx.send(progress_event(&e));
    });
    let _ = state
        .store
        .append_progress(
            &id,
            "started",
            &serde_json::json!({ "owner": lease.owner, "attempt": lease.attempt }),
            now_ms(),
        )
        .await;
    let coordinator: Arc<Coordinator> = state.investigator.coordinator.clone();
    let sources = state.investigator.sources.clone();
    let incident = lease.incident.clone();
    let mut run = Box::pin(async move {
        coordinator
            .investigate(&incident, &sources, Some(progress))
            .await
    });
    let renew_every = state.serve.lease / 3;
    let mut renew =
        tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
    let ended = loop {
        tokio::select! {
            inv = &mut run => break Ended::Done(Box::new(inv)),
            Some((kind, data)) = rx.recv() => {
                if let Err(e) = state.store.append_progress(&id, &kind, &data, now_ms()).await {
                    tracing::warn!(error = %e, "cannot store a progress event");
                }
            }
            _ = renew.tick() => {
                let until = now_ms() + state.serve.lease.as_millis() as i64;
                match state.store.renew(&id, &lease.owner, until).await {
                    Ok(LeaseCheck::Held { cancel_requested: true }) => break Ended::Cancelled,
                    Ok(LeaseCheck::Held { .. }) => {}
                    Ok(LeaseCheck::Lost) => break Ended::LeaseLost,
                    Err(e) => tracing::warn!(error = %e, "cannot renew the lease; will retry"),
                }
            }
        }
    };
    // Events sent just before the end.
    while let Ok((kind, data)) = rx.try_recv() {
        let _ = state
            .store
            .append_progress(&id, &kind, &data, now_ms())
            .await;
    }
    let (finish_state, result, error) = match ended {
        Ended::Done(mut inv) => {
            inv.id = id.clone();
            match exported_trace {
                Some(t) => inv.trace_id = t,
                None => {
                    tracing::Span::current().record("trace_id", inv.trace_id.as_str());
                }
            }
            record_agent_metrics(&inv);
            (job_state(inv.status), Some(inv), None)
        }
        Ended::Cancelled => (
            JobState::Cancelled,
            None,
            Some("cancelled while running".to_string()),
        ),
        Ended::LeaseLost => {
            metrics::counter!(m::LEASES_LOST).increment(1);
            tracing::warn!(
                "lost the lease (this replica stalled); another replica owns the job now"
            );
            return;
        }
    };
    let finish = Finish {
        state: finish_state,
        result: result.as_deref(),
        error,
    };
    match state
        .store
        .finish(&id, &lease.owner, finish, now_ms())
        .await
    {
        Ok(true) => {
            let status = finish_state.as_str();
            metrics::counter!(m::INVESTIGATIONS, "status" => status).increment(1);
            metrics::histogram!(m::INVESTIGATION_SECONDS, "status" => status)
                .record(started.elapsed().as_secs_f64());
            tracing::info!(
                status,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "investigation finished"
            );
        }
        Ok(false) => {
            metrics::counter!(m::LEASES_LOST).increment(1);
            tracing::warn!("lease lost before the result was stored; discarded");
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot store the result; the lease will expire and the job run again")
        }
    }
}

fn record_agent_metrics(inv: &Investigation) {
    for run in &inv.agents {
        let agent = run.agent.clone();
        metrics::counter!(m::AGENT_RUNS, "agent" => agent.clone(), "status" => run.status.as_str())
            .increment(1);
        metrics::histogram!(m::AGENT_SECONDS, "agent" => agent)
            .record(run.duration_ms as f64 / 1000.0);
    }
}

/// A coordinator progress event as a stored (kind, data) pair.
fn progress_event(e: &ProgressEvent) -> (String, serde_json::Value) {
    match e {
        ProgressEvent::Started { agents } => {
            ("agents".into(), serde_json::json!({ "agents": agents }))
        }
        ProgressEvent::AgentFinished(run) => (
            "agent_finished".into(),
            serde_json::json!({
                "agent": run.agent,
                "status": run.status.as_str(),
                "duration_ms": run.duration_ms,
                "observations": run.observations,
                "hypotheses": run.hypotheses,
                "usd": run.cost.usd,
                "error": run.error,
            }),
        ),
        ProgressEvent::Orienting => ("orienting".into(), serde_json::json!({})),
        ProgressEvent::Consulting { provider, model } => (
            "consulting".into(),
            serde_json::json!({ "provider": provider, "model": model }),
        ),
    }
}
