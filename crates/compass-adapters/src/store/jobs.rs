//! The investigation queue of [`SqlStore`]: jobs, leases, progress events, results.
//!
//! Leasing is one `UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING`: on PostgreSQL the
//! inner select takes `FOR UPDATE SKIP LOCKED`, so replicas leasing at the same moment
//! get different jobs without waiting on each other; on SQLite the statement is atomic
//! on its own (one writer). Only the lease holder can renew or finish a job (both match
//! on `lease_owner` and `state = 'running'`), so a replica that lost its lease — it
//! stalled, the lease expired, another replica took over — writes nothing, and every
//! job is finished exactly once.

use super::sql::{Backend, SqlStore, col, db_err, json_err, new_id};
use compass_core::{EpochMs, Investigation};
use compass_engine::store::*;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

const COLUMNS: &str = "id, incident_id, state, priority, created_at, started_at, finished_at, attempts, lease_owner, \
                       lease_until, cancel_requested, error, top_hypothesis, top_confidence";

const LEASE_SQLITE: &str = "UPDATE investigations
    SET state = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1,
        started_at = COALESCE(started_at, $3)
    WHERE id = (SELECT id FROM investigations
                WHERE (state = 'queued' OR (state = 'running' AND lease_until < $3)) AND attempts < $4
                ORDER BY priority DESC, created_at, id LIMIT 1)
    RETURNING id, incident_id, attempts";

const LEASE_POSTGRES: &str = "UPDATE investigations
    SET state = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1,
        started_at = COALESCE(started_at, $3)
    WHERE id = (SELECT id FROM investigations
                WHERE (state = 'queued' OR (state = 'running' AND lease_until < $3)) AND attempts < $4
                ORDER BY priority DESC, created_at, id LIMIT 1
                FOR UPDATE SKIP LOCKED)
    RETURNING id, incident_id, attempts";

fn record(r: &AnyRow) -> StoreResult<InvestigationRecord> {
    let state: String = col(r, "state")?;
    Ok(InvestigationRecord {
        id: col(r, "id")?,
        incident_id: col(r, "incident_id")?,
        state: JobState::parse(&state)
            .ok_or_else(|| StoreError::Internal(format!("unknown job state `{state}`")))?,
        priority: col(r, "priority")?,
        created_at: col(r, "created_at")?,
        started_at: col(r, "started_at")?,
        finished_at: col(r, "finished_at")?,
        attempts: col::<i64>(r, "attempts")? as u32,
        lease_owner: col(r, "lease_owner")?,
        lease_until: col(r, "lease_until")?,
        cancel_requested: col::<i64>(r, "cancel_requested")? != 0,
        error: col(r, "error")?,
        top_hypothesis: col(r, "top_hypothesis")?,
        top_confidence: col(r, "top_confidence")?,
    })
}

/// Queue a job for `incident_id`; returns its id.
pub(super) async fn insert_job(
    conn: &mut AnyConnection,
    incident_id: &str,
    priority: i64,
    at: EpochMs,
) -> StoreResult<String> {
    let id = new_id("inv");
    sqlx::query(
        "INSERT INTO investigations (id, incident_id, state, priority, created_at, attempts, cancel_requested)
         VALUES ($1, $2, 'queued', $3, $4, 0, 0)",
    )
    .bind(&id)
    .bind(incident_id)
    .bind(priority)
    .bind(at)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(id)
}

pub(super) async fn lease(
    s: &SqlStore,
    owner: &str,
    now: EpochMs,
    lease_ms: i64,
    max_attempts: u32,
) -> StoreResult<Option<Lease>> {
    // Jobs whose holders died `max_attempts` times fail rather than loop forever.
    sqlx::query(
        "UPDATE investigations SET state = 'failed', finished_at = $1, lease_owner = NULL, lease_until = NULL,
             error = 'its worker stopped renewing the lease ' || CAST(attempts AS TEXT) || ' times (crashed or stalled)'
         WHERE state = 'running' AND lease_until < $1 AND attempts >= $2",
    )
    .bind(now)
    .bind(i64::from(max_attempts))
    .execute(&s.pool)
    .await
    .map_err(db_err)?;
    let sql = match s.backend {
        Backend::Sqlite => LEASE_SQLITE,
        Backend::Postgres => LEASE_POSTGRES,
    };
    let until = now + lease_ms;
    let Some(row) = sqlx::query(sql)
        .bind(owner)
        .bind(until)
        .bind(now)
        .bind(i64::from(max_attempts))
        .fetch_optional(&s.pool)
        .await
        .map_err(db_err)?
    else {
        return Ok(None);
    };
    let investigation_id: String = col(&row, "id")?;
    let incident_id: String = col(&row, "incident_id")?;
    let attempt = col::<i64>(&row, "attempts")? as u32;
    let incident = s.incident(&incident_id).await?.incident;
    Ok(Some(Lease {
        investigation_id,
        incident,
        owner: owner.to_string(),
        attempt,
        until,
    }))
}

pub(super) async fn renew(
    s: &SqlStore,
    id: &str,
    owner: &str,
    until: EpochMs,
) -> StoreResult<LeaseCheck> {
    let row = sqlx::query(
        "UPDATE investigations SET lease_until = $3 WHERE id = $1 AND lease_owner = $2 AND state = 'running'
         RETURNING cancel_requested",
    )
    .bind(id)
    .bind(owner)
    .bind(until)
    .fetch_optional(&s.pool)
    .await
    .map_err(db_err)?;
    Ok(match row {
        Some(r) => LeaseCheck::Held {
            cancel_requested: col::<i64>(&r, "cancel_requested")? != 0,
        },
        None => LeaseCheck::Lost,
    })
}

pub(super) async fn finish(
    s: &SqlStore,
    id: &str,
    owner: &str,
    f: Finish<'_>,
    at: EpochMs,
) -> StoreResult<bool> {
    if !f.state.is_final() {
        return Err(StoreError::BadInput(format!(
            "cannot finish a job as `{}`",
            f.state.as_str()
        )));
    }
    let result_json = f
        .result
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| json_err("result", e))?;
    let top = f.result.and_then(|r| r.hypotheses.first());
    let mut tx = s.pool.begin().await.map_err(db_err)?;
    let n = sqlx::query(
        "UPDATE investigations SET state = $3, finished_at = $4, lease_owner = NULL, lease_until = NULL,
             error = $5, top_hypothesis = $6, top_confidence = $7, result_json = $8
         WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(owner)
    .bind(f.state.as_str())
    .bind(at)
    .bind(f.error.clone())
    .bind(top.map(|h| h.id.clone()))
    .bind(top.map(|h| h.confidence.value))
    .bind(result_json)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?
    .rows_affected();
    if n == 0 {
        return Ok(false);
    }
    let data = serde_json::json!({ "state": f.state.as_str(), "error": f.error });
    append_progress(&mut tx, id, "finished", &data, at).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(true)
}

pub(super) async fn cancel(
    s: &SqlStore,
    id: &str,
    at: EpochMs,
) -> StoreResult<InvestigationRecord> {
    let mut tx = s.pool.begin().await.map_err(db_err)?;
    let queued = sqlx::query(
        "UPDATE investigations SET state = 'cancelled', finished_at = $2, error = 'cancelled before it started'
         WHERE id = $1 AND state = 'queued'",
    )
    .bind(id)
    .bind(at)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?
    .rows_affected();
    if queued == 1 {
        let data =
            serde_json::json!({ "state": "cancelled", "error": "cancelled before it started" });
        append_progress(&mut tx, id, "finished", &data, at).await?;
    } else {
        sqlx::query(
            "UPDATE investigations SET cancel_requested = 1 WHERE id = $1 AND state = 'running'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)?;
    let rec = get(s, id).await?;
    if rec.state.is_final() && rec.state != JobState::Cancelled {
        return Err(StoreError::Conflict(format!(
            "investigation {id} already finished ({})",
            rec.state.as_str()
        )));
    }
    Ok(rec)
}

pub(super) async fn get(s: &SqlStore, id: &str) -> StoreResult<InvestigationRecord> {
    let sql = format!("SELECT {COLUMNS} FROM investigations WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&s.pool)
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::NotFound(format!("investigation {id}")))?;
    record(&row)
}

pub(super) async fn result(s: &SqlStore, id: &str) -> StoreResult<Option<Investigation>> {
    let row = sqlx::query("SELECT result_json FROM investigations WHERE id = $1")
        .bind(id)
        .fetch_optional(&s.pool)
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::NotFound(format!("investigation {id}")))?;
    let json: Option<String> = col(&row, "result_json")?;
    json.map(|j| serde_json::from_str(&j).map_err(|e| json_err("result", e)))
        .transpose()
}

pub(super) async fn list(
    s: &SqlStore,
    incident_id: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<InvestigationRecord>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM investigations WHERE ($1 = '' OR incident_id = $1) ORDER BY created_at DESC, id DESC LIMIT $2"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(incident_id.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&s.pool)
        .await
        .map_err(db_err)?;
    rows.iter().map(record).collect()
}

pub(super) async fn counts(s: &SqlStore) -> StoreResult<Vec<(JobState, u64)>> {
    let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM investigations GROUP BY state")
        .fetch_all(&s.pool)
        .await
        .map_err(db_err)?;
    let mut out: Vec<(JobState, u64)> = JobState::ALL.iter().map(|j| (*j, 0)).collect();
    for r in &rows {
        let state: String = col(r, "state")?;
        let n: i64 = col(r, "n")?;
        if let Some(slot) = out.iter_mut().find(|(j, _)| j.as_str() == state) {
            slot.1 = n as u64;
        }
    }
    Ok(out)
}

pub(super) async fn append_progress(
    conn: &mut AnyConnection,
    id: &str,
    kind: &str,
    data: &serde_json::Value,
    at: EpochMs,
) -> StoreResult<u64> {
    let row = sqlx::query(
        "INSERT INTO progress (investigation_id, seq, at, kind, data_json)
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4 FROM progress WHERE investigation_id = $1
         RETURNING seq",
    )
    .bind(id)
    .bind(at)
    .bind(kind)
    .bind(data.to_string())
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(col::<i64>(&row, "seq")? as u64)
}

pub(super) async fn progress(
    s: &SqlStore,
    id: &str,
    after: u64,
) -> StoreResult<Vec<ProgressRecord>> {
    let rows = sqlx::query(
        "SELECT seq, at, kind, data_json FROM progress WHERE investigation_id = $1 AND seq > $2 ORDER BY seq LIMIT 500",
    )
    .bind(id)
    .bind(after as i64)
    .fetch_all(&s.pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            let data: String = col(r, "data_json")?;
            Ok(ProgressRecord {
                seq: col::<i64>(r, "seq")? as u64,
                at: col(r, "at")?,
                kind: col(r, "kind")?,
                data: serde_json::from_str(&data).map_err(|e| json_err("progress", e))?,
            })
        })
        .collect()
}
