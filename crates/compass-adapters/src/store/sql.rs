//! `SqlStore`: the [`Store`] port (and the LLM [`CostLedger`]) on SQLite or
//! PostgreSQL through sqlx's `Any` driver — one set of SQL (`$n` placeholders, BIGINT,
//! DOUBLE PRECISION and TEXT only) and one migration for both. The few statements that
//! differ (row locking for the job queue) are chosen by backend in `jobs.rs`.
//!
//! SQLite (the single-node default) runs in WAL mode with `synchronous=NORMAL` on one
//! connection, so writes are serialised in-process and never meet `SQLITE_BUSY`.
//! PostgreSQL (several replicas) relies on constraints rather than locks for intake:
//! a partial unique index allows one open incident per group, and alert rows are
//! unique per incident, so concurrent deliveries of one alert on two replicas can
//! neither open two incidents nor count the alert twice.

use async_trait::async_trait;
use compass_core::{EpochMs, Incident, TimeRange};
use compass_engine::llm::{CallOutcome, CostLedger, LedgerEntry, LedgerError};
use compass_engine::store::*;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row, SqlSafeStr};
use std::time::Duration;

/// The schema, applied at connect (sqlx records applied versions in `_sqlx_migrations`;
/// on PostgreSQL an advisory lock makes replicas starting together apply it once).
const MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "serve", include_str!("../../migrations/0001_serve.sql"))];

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::BadInput(format!(
                "database URL `{}`: use sqlite://PATH (one node) or postgres://USER@HOST/DB (several replicas)",
                redact_url(url)
            )))
        }
    }
}

/// The URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}://{}:***{}", &url[..s], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The SQL store.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pub(super) pool: AnyPool,
    pub(super) backend: Backend,
    url: String,
}

pub(super) fn db_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound("row".into()),
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict(d.message().to_string())
        }
        other => StoreError::Internal(other.to_string()),
    }
}

/// One column of a row, with the store's error.
pub(super) fn col<'r, T>(r: &'r AnyRow, name: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    r.try_get(name).map_err(db_err)
}

pub(super) fn json_err(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::Internal(format!("stored {what} is unreadable: {e}"))
}

/// A new time-ordered id with a prefix (`inc_…`, `inv_…`).
pub(super) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

impl SqlStore {
    /// Connect (creating a SQLite file when missing) and apply the schema.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let (url, options) = match backend {
            Backend::Sqlite => {
                let url = if url.contains("mode=") || url.contains(":memory:") {
                    url.to_string()
                } else if url.contains('?') {
                    format!("{url}&mode=rwc")
                } else {
                    format!("{url}?mode=rwc")
                };
                let options = AnyPoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            for pragma in [
                                "PRAGMA journal_mode = WAL",
                                "PRAGMA synchronous = NORMAL",
                                "PRAGMA busy_timeout = 5000",
                            ] {
                                sqlx::query(pragma).execute(&mut *conn).await?;
                            }
                            Ok(())
                        })
                    });
                (url, options)
            }
            Backend::Postgres => (
                url.to_string(),
                AnyPoolOptions::new().max_connections(max_connections.max(2)),
            ),
        };
        let pool = options
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot connect to {}: {e}", redact_url(&url)))
            })?;
        let migrator = Migrator::with_migrations(
            MIGRATIONS
                .iter()
                .map(|(v, name, sql)| {
                    Migration::new(
                        *v,
                        (*name).into(),
                        MigrationType::Simple,
                        sql.into_sql_str(),
                        false,
                    )
                })
                .collect(),
        );
        migrator
            .run(&pool)
            .await
            .map_err(|e| StoreError::Internal(format!("cannot apply the schema: {e}")))?;
        Ok(Self { pool, backend, url })
    }

    /// The URL it connected to (with any password; use [`redact_url`] to show it).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend_kind(&self) -> Backend {
        self.backend
    }
}

fn incident_record(r: &AnyRow) -> StoreResult<IncidentRecord> {
    let json: String = col(r, "incident_json")?;
    let state: String = col(r, "state")?;
    Ok(IncidentRecord {
        id: col(r, "id")?,
        group_key: col(r, "group_key")?,
        incident: serde_json::from_str(&json).map_err(|e| json_err("incident", e))?,
        state: IncidentState::parse(&state)
            .ok_or_else(|| StoreError::Internal(format!("unknown incident state `{state}`")))?,
        alert_count: col::<i64>(r, "alert_count")? as u64,
        firing_count: col::<i64>(r, "firing_count")?.max(0) as u64,
        opened_at: col(r, "opened_at")?,
        updated_at: col(r, "updated_at")?,
        resolved_at: col(r, "resolved_at")?,
    })
}

const INCIDENT_COLUMNS: &str = "id, group_key, state, incident_json, alert_count, firing_count, opened_at, updated_at, resolved_at";

fn token_record(r: &AnyRow) -> StoreResult<TokenRecord> {
    let role: String = col(r, "role")?;
    Ok(TokenRecord {
        id: col(r, "id")?,
        name: col(r, "name")?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Internal(format!("unknown role `{role}`")))?,
        created_at: col(r, "created_at")?,
        revoked_at: col(r, "revoked_at")?,
    })
}

/// Insert an incident row with the given id and its first queued investigation.
async fn insert_open_incident(
    tx: &mut sqlx::AnyConnection,
    id: &str,
    group_key: &str,
    incident: &Incident,
    alerts: i64,
    at: EpochMs,
) -> StoreResult<Option<String>> {
    let mut incident = incident.clone();
    incident.id = id.to_string();
    let json = serde_json::to_string(&incident).map_err(|e| json_err("incident", e))?;
    let inserted = sqlx::query(
        "INSERT INTO incidents (id, group_key, state, incident_json, alert_count, firing_count, opened_at, updated_at)
         VALUES ($1, $2, 'open', $3, $4, $4, $5, $5)
         ON CONFLICT (group_key) WHERE state = 'open' DO NOTHING",
    )
    .bind(id)
    .bind(group_key)
    .bind(json)
    .bind(alerts)
    .bind(at)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?
    .rows_affected();
    if inserted == 0 {
        return Ok(None);
    }
    let inv = super::jobs::insert_job(
        tx,
        id,
        compass_engine::store::priority_of(incident.severity),
        at,
    )
    .await?;
    Ok(Some(inv))
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn intake_alert(
        &self,
        alert: &AlertIn,
        storm: StormPolicy,
    ) -> StoreResult<IntakeOutcome> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let at = alert.received_at;
        let known = sqlx::query(
            "SELECT a.incident_id, a.firing FROM alerts a JOIN incidents i ON i.id = a.incident_id
             WHERE a.fingerprint = $1 AND i.state = 'open' LIMIT 1",
        )
        .bind(&alert.fingerprint)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let known = match known {
            Some(r) => Some((
                col::<String>(&r, "incident_id")?,
                col::<i64>(&r, "firing")? != 0,
            )),
            None => None,
        };
        let outcome = if !alert.firing {
            match known {
                None => IntakeOutcome::Ignored,
                Some((incident_id, was_firing)) => {
                    if was_firing {
                        sqlx::query("UPDATE alerts SET firing = 0, last_seen = $3 WHERE incident_id = $1 AND fingerprint = $2")
                            .bind(&incident_id)
                            .bind(&alert.fingerprint)
                            .bind(at)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        sqlx::query("UPDATE incidents SET firing_count = firing_count - 1, updated_at = $2 WHERE id = $1")
                            .bind(&incident_id)
                            .bind(at)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                    }
                    let closed = sqlx::query(
                        "UPDATE incidents SET state = 'resolved', resolved_at = $2, updated_at = $2
                         WHERE id = $1 AND state = 'open' AND firing_count <= 0",
                    )
                    .bind(&incident_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected()
                        == 1;
                    IntakeOutcome::Resolved {
                        incident_id,
                        closed,
                    }
                }
            }
        } else if let Some((incident_id, was_firing)) = known {
            sqlx::query("UPDATE alerts SET firing = 1, last_seen = $3 WHERE incident_id = $1 AND fingerprint = $2")
                .bind(&incident_id)
                .bind(&alert.fingerprint)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if !was_firing {
                sqlx::query("UPDATE incidents SET firing_count = firing_count + 1, updated_at = $2 WHERE id = $1")
                    .bind(&incident_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            IntakeOutcome::Deduplicated { incident_id }
        } else {
            self.fold_new_alert(&mut tx, alert, storm).await?
        };
        tx.commit().await.map_err(db_err)?;
        Ok(outcome)
    }

    async fn create_incident(
        &self,
        incident: &Incident,
        at: EpochMs,
    ) -> StoreResult<(IncidentRecord, String)> {
        let id = new_id("inc");
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let inv = insert_open_incident(&mut tx, &id, &format!("api:{id}"), incident, 0, at)
            .await?
            .ok_or_else(|| StoreError::Conflict(format!("incident {id} exists")))?;
        tx.commit().await.map_err(db_err)?;
        Ok((self.incident(&id).await?, inv))
    }

    async fn incident(&self, id: &str) -> StoreResult<IncidentRecord> {
        let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .ok_or_else(|| StoreError::NotFound(format!("incident {id}")))?;
        incident_record(&row)
    }

    async fn incidents(
        &self,
        state: Option<IncidentState>,
        limit: u32,
    ) -> StoreResult<Vec<IncidentRecord>> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE ($1 = '' OR state = $1) ORDER BY opened_at DESC, id DESC LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state.map(|s| s.as_str()).unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(incident_record).collect()
    }

    async fn enqueue(&self, incident_id: &str, priority: i64, at: EpochMs) -> StoreResult<String> {
        self.incident(incident_id).await?;
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        super::jobs::insert_job(&mut conn, incident_id, priority, at).await
    }

    async fn lease(
        &self,
        owner: &str,
        now: EpochMs,
        lease_ms: i64,
        max_attempts: u32,
    ) -> StoreResult<Option<Lease>> {
        super::jobs::lease(self, owner, now, lease_ms, max_attempts).await
    }

    async fn renew(&self, id: &str, owner: &str, until: EpochMs) -> StoreResult<LeaseCheck> {
        super::jobs::renew(self, id, owner, until).await
    }

    async fn finish(
        &self,
        id: &str,
        owner: &str,
        finish: Finish<'_>,
        at: EpochMs,
    ) -> StoreResult<bool> {
        super::jobs::finish(self, id, owner, finish, at).await
    }

    async fn cancel(&self, id: &str, at: EpochMs) -> StoreResult<InvestigationRecord> {
        super::jobs::cancel(self, id, at).await
    }

    async fn investigation(&self, id: &str) -> StoreResult<InvestigationRecord> {
        super::jobs::get(self, id).await
    }

    async fn result(&self, id: &str) -> StoreResult<Option<compass_core::Investigation>> {
        super::jobs::result(self, id).await
    }

    async fn investigations(
        &self,
        incident_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<InvestigationRecord>> {
        super::jobs::list(self, incident_id, limit).await
    }

    async fn job_counts(&self) -> StoreResult<Vec<(JobState, u64)>> {
        super::jobs::counts(self).await
    }

    async fn append_progress(
        &self,
        id: &str,
        kind: &str,
        data: &serde_json::Value,
        at: EpochMs,
    ) -> StoreResult<u64> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        super::jobs::append_progress(&mut conn, id, kind, data, at).await
    }

    async fn progress(&self, id: &str, after: u64) -> StoreResult<Vec<ProgressRecord>> {
        super::jobs::progress(self, id, after).await
    }

    async fn record_decision(&self, d: &DecisionRecord) -> StoreResult<()> {
        self.investigation(&d.investigation_id).await?;
        sqlx::query(
            "INSERT INTO decisions (investigation_id, hypothesis_id, confirmed, note, actor, at, id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&d.investigation_id)
        .bind(&d.hypothesis_id)
        .bind(i64::from(d.confirmed))
        .bind(&d.note)
        .bind(&d.actor)
        .bind(d.at)
        .bind(new_id("dec"))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn decisions(&self, investigation_id: &str) -> StoreResult<Vec<DecisionRecord>> {
        let rows = sqlx::query(
            "SELECT investigation_id, hypothesis_id, confirmed, note, actor, at FROM decisions
             WHERE investigation_id = $1 ORDER BY at, id",
        )
        .bind(investigation_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(DecisionRecord {
                    investigation_id: col(r, "investigation_id")?,
                    hypothesis_id: col(r, "hypothesis_id")?,
                    confirmed: col::<i64>(r, "confirmed")? != 0,
                    note: col(r, "note")?,
                    actor: col(r, "actor")?,
                    at: col(r, "at")?,
                })
            })
            .collect()
    }

    async fn audit(&self, a: &AuditRecord) -> StoreResult<()> {
        sqlx::query("INSERT INTO audit_log (id, at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(new_id("aud"))
            .bind(a.at)
            .bind(&a.actor)
            .bind(&a.action)
            .bind(&a.target)
            .bind(&a.detail)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn audit_log(&self, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query("SELECT at, actor, action, target, detail FROM audit_log ORDER BY at DESC, id DESC LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    at: col(r, "at")?,
                    actor: col(r, "actor")?,
                    action: col(r, "action")?,
                    target: col(r, "target")?,
                    detail: col(r, "detail")?,
                })
            })
            .collect()
    }

    async fn create_token(
        &self,
        name: &str,
        role: Role,
        sha256_hex: &str,
        at: EpochMs,
    ) -> StoreResult<TokenRecord> {
        if name.trim().is_empty() {
            return Err(StoreError::BadInput("a token needs a name".into()));
        }
        let id = new_id("tok");
        sqlx::query("INSERT INTO api_tokens (id, name, role, sha256, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(name)
            .bind(role.as_str())
            .bind(sha256_hex)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(|e| match db_err(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("a token named `{name}` exists; revoke it or pick another name")),
                other => other,
            })?;
        Ok(TokenRecord {
            id,
            name: name.to_string(),
            role,
            created_at: at,
            revoked_at: None,
        })
    }

    async fn token_by_hash(&self, sha256_hex: &str) -> StoreResult<Option<TokenRecord>> {
        let row = sqlx::query("SELECT id, name, role, created_at, revoked_at FROM api_tokens WHERE sha256 = $1 AND revoked_at IS NULL")
            .bind(sha256_hex)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(token_record).transpose()
    }

    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let rows = sqlx::query(
            "SELECT id, name, role, created_at, revoked_at FROM api_tokens ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(token_record).collect()
    }

    async fn revoke_token(&self, id_or_name: &str, at: EpochMs) -> StoreResult<TokenRecord> {
        let n = sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE (id = $1 OR name = $1) AND revoked_at IS NULL")
            .bind(id_or_name)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(db_err)?
            .rows_affected();
        let row = sqlx::query("SELECT id, name, role, created_at, revoked_at FROM api_tokens WHERE id = $1 OR name = $1")
            .bind(id_or_name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .ok_or_else(|| StoreError::NotFound(format!("token `{id_or_name}`")))?;
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "token `{id_or_name}` is already revoked"
            )));
        }
        token_record(&row)
    }
}

impl SqlStore {
    /// A firing alert no open incident has seen: join its group's open incident, or
    /// the newest one during a storm, or open a new incident with an investigation.
    async fn fold_new_alert(
        &self,
        tx: &mut sqlx::AnyConnection,
        alert: &AlertIn,
        storm: StormPolicy,
    ) -> StoreResult<IntakeOutcome> {
        let at = alert.received_at;
        let mut target = self.open_incident_of_group(tx, &alert.group_key).await?;
        if target.is_none() {
            let recent: i64 = sqlx::query("SELECT COUNT(*) AS n FROM incidents WHERE opened_at >= $1 AND group_key NOT LIKE 'api:%'")
                .bind(at - storm.window_ms)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?
                .try_get("n")
                .map_err(db_err)?;
            if recent as u64 >= storm.max_new_incidents {
                target = sqlx::query(
                    "SELECT id FROM incidents WHERE state = 'open' AND group_key NOT LIKE 'api:%' ORDER BY opened_at DESC, id DESC LIMIT 1",
                )
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?
                .map(|r| r.try_get::<String, _>("id"))
                .transpose()
                .map_err(db_err)?;
            }
        }
        if target.is_none() {
            let id = new_id("inc");
            if let Some(inv) =
                insert_open_incident(tx, &id, &alert.group_key, &alert.incident, 1, at).await?
            {
                insert_alert(tx, &id, &alert.fingerprint, at).await?;
                return Ok(IntakeOutcome::Opened {
                    incident_id: id,
                    investigation_id: inv,
                });
            }
            // Another replica opened the group's incident a moment ago.
            target = self.open_incident_of_group(tx, &alert.group_key).await?;
        }
        let incident_id = target.ok_or_else(|| {
            StoreError::Internal(format!(
                "no open incident for group `{}` after a conflict",
                alert.group_key
            ))
        })?;
        if insert_alert(tx, &incident_id, &alert.fingerprint, at).await? {
            sqlx::query(
                "UPDATE incidents SET alert_count = alert_count + 1, firing_count = firing_count + 1, updated_at = $2 WHERE id = $1",
            )
            .bind(&incident_id)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            Ok(IntakeOutcome::Joined { incident_id })
        } else {
            Ok(IntakeOutcome::Deduplicated { incident_id })
        }
    }

    async fn open_incident_of_group(
        &self,
        tx: &mut sqlx::AnyConnection,
        group_key: &str,
    ) -> StoreResult<Option<String>> {
        sqlx::query("SELECT id FROM incidents WHERE group_key = $1 AND state = 'open'")
            .bind(group_key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .map(|r| r.try_get::<String, _>("id"))
            .transpose()
            .map_err(db_err)
    }
}

/// `true` when the alert row is new.
async fn insert_alert(
    tx: &mut sqlx::AnyConnection,
    incident_id: &str,
    fingerprint: &str,
    at: EpochMs,
) -> StoreResult<bool> {
    Ok(sqlx::query(
        "INSERT INTO alerts (incident_id, fingerprint, firing, first_seen, last_seen) VALUES ($1, $2, 1, $3, $3)
         ON CONFLICT (incident_id, fingerprint) DO NOTHING",
    )
    .bind(incident_id)
    .bind(fingerprint)
    .bind(at)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?
    .rows_affected()
        == 1)
}

#[async_trait]
impl CostLedger for SqlStore {
    async fn record(&self, e: &LedgerEntry) -> Result<(), LedgerError> {
        sqlx::query(
            "INSERT INTO llm_ledger (id, at, investigation_id, agent, provider, model, prompt_tokens, completion_tokens, usd, reported, outcome)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(new_id("llm"))
        .bind(e.at)
        .bind(&e.investigation_id)
        .bind(&e.agent)
        .bind(&e.provider)
        .bind(&e.model)
        .bind(e.prompt_tokens as i64)
        .bind(e.completion_tokens as i64)
        .bind(e.usd)
        .bind(i64::from(e.reported))
        .bind(e.outcome.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| LedgerError(db_err(e).to_string()))?;
        Ok(())
    }

    async fn entries(&self, range: TimeRange) -> Result<Vec<LedgerEntry>, LedgerError> {
        let rows = sqlx::query(
            "SELECT at, investigation_id, agent, provider, model, prompt_tokens, completion_tokens, usd, reported, outcome
             FROM llm_ledger WHERE at >= $1 AND at < $2 ORDER BY at, id",
        )
        .bind(range.start)
        .bind(range.end)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| LedgerError(db_err(e).to_string()))?;
        let get = |e: StoreError| LedgerError(e.to_string());
        rows.iter()
            .map(|r| {
                let outcome: String = col(r, "outcome").map_err(get)?;
                Ok(LedgerEntry {
                    at: col(r, "at").map_err(get)?,
                    investigation_id: col(r, "investigation_id").map_err(get)?,
                    agent: col(r, "agent").map_err(get)?,
                    provider: col(r, "provider").map_err(get)?,
                    model: col(r, "model").map_err(get)?,
                    prompt_tokens: col::<i64>(r, "prompt_tokens").map_err(get)? as u64,
                    completion_tokens: col::<i64>(r, "completion_tokens").map_err(get)? as u64,
                    usd: col(r, "usd").map_err(get)?,
                    reported: col::<i64>(r, "reported").map_err(get)? != 0,
                    outcome: match outcome.as_str() {
                        "ok" => CallOutcome::Ok,
                        "invalid" => CallOutcome::Invalid,
                        _ => CallOutcome::Failed,
                    },
                })
            })
            .collect()
    }
}
