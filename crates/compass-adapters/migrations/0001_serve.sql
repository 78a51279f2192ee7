-- The service's tables. One schema for SQLite and PostgreSQL: only BIGINT, DOUBLE
-- PRECISION and TEXT columns, times as epoch milliseconds (UTC), JSON as TEXT.

CREATE TABLE incidents (
    id            TEXT PRIMARY KEY,
    group_key     TEXT NOT NULL,
    state         TEXT NOT NULL,
    incident_json TEXT NOT NULL,
    alert_count   BIGINT NOT NULL,
    firing_count  BIGINT NOT NULL,
    opened_at     BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    resolved_at   BIGINT
);
-- One open incident per group: concurrent intakes of the same group (on any replica)
-- cannot open two.
CREATE UNIQUE INDEX incidents_open_group ON incidents (group_key) WHERE state = 'open';
CREATE INDEX incidents_opened ON incidents (opened_at);

CREATE TABLE alerts (
    incident_id  TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    firing       BIGINT NOT NULL,
    first_seen   BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL,
    PRIMARY KEY (incident_id, fingerprint)
);
CREATE INDEX alerts_fingerprint ON alerts (fingerprint);

CREATE TABLE investigations (
    id               TEXT PRIMARY KEY,
    incident_id      TEXT NOT NULL,
    state            TEXT NOT NULL,
    priority         BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    attempts         BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_until      BIGINT,
    cancel_requested BIGINT NOT NULL,
    error            TEXT,
    top_hypothesis   TEXT,
    top_confidence   DOUBLE PRECISION,
    result_json      TEXT
);
CREATE INDEX investigations_queue ON investigations (state, priority, created_at);
CREATE INDEX investigations_incident ON investigations (incident_id);

CREATE TABLE progress (
    investigation_id TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    at               BIGINT NOT NULL,
    kind             TEXT NOT NULL,
    data_json        TEXT NOT NULL,
    PRIMARY KEY (investigation_id, seq)
);

CREATE TABLE decisions (
    investigation_id TEXT NOT NULL,
    hypothesis_id    TEXT NOT NULL,
    confirmed        BIGINT NOT NULL,
    note             TEXT NOT NULL,
    actor            TEXT NOT NULL,
    at               BIGINT NOT NULL,
    id               TEXT NOT NULL PRIMARY KEY
);
CREATE INDEX decisions_investigation ON decisions (investigation_id, at);

CREATE TABLE audit_log (
    id     TEXT PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_at ON audit_log (at);

CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL,
    sha256     TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE llm_ledger (
    id                TEXT PRIMARY KEY,
    at                BIGINT NOT NULL,
    investigation_id  TEXT NOT NULL,
    agent             TEXT NOT NULL,
    provider          TEXT NOT NULL,
    model             TEXT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    usd               DOUBLE PRECISION NOT NULL,
    reported          BIGINT NOT NULL,
    outcome           TEXT NOT NULL
);
CREATE INDEX llm_ledger_at ON llm_ledger (at);
