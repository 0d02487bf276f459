//! The schema, as the migrations that build it (see the module documentation
//! of [`crate::store`] for what each version adds).

/// Schema migrations; index `i` upgrades version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE incidents (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint     TEXT    NOT NULL,
    rule            TEXT    NOT NULL,
    host            TEXT    NOT NULL,
    labels          TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved', 'closed')),
    priority        INTEGER NOT NULL,
    impact          INTEGER NOT NULL,
    urgency         INTEGER NOT NULL,
    summary         TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    value           REAL,
    threshold       REAL,
    started_at      INTEGER NOT NULL,
    detected_at     INTEGER NOT NULL,
    acknowledged_at INTEGER,
    restored_at     INTEGER,
    resolved_at     INTEGER,
    closed_at       INTEGER,
    resolution      TEXT CHECK (resolution IN ('auto', 'manual')),
    occurrences     INTEGER NOT NULL,
    problem_id      INTEGER,
    flapping        INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX incidents_one_live ON incidents (fingerprint)
    WHERE state IN ('open', 'acknowledged');
CREATE INDEX incidents_by_state ON incidents (state, id);
CREATE TABLE incident_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    at          INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    note        TEXT
);
CREATE INDEX incident_events_by_incident ON incident_events (incident_id, id);
CREATE TABLE hosts (
    host        TEXT PRIMARY KEY,
    labels      TEXT    NOT NULL,
    boot_id     TEXT    NOT NULL,
    last_seq    INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    interval_ms INTEGER NOT NULL
);
"#,
    r#"
CREATE INDEX incidents_by_fingerprint ON incidents (fingerprint, id);
CREATE TABLE problems (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    host        TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('open', 'resolved')),
    opened_at   INTEGER NOT NULL,
    resolved_at INTEGER,
    resolved_by TEXT,
    note        TEXT
);
CREATE UNIQUE INDEX problems_one_open ON problems (fingerprint) WHERE state = 'open';
CREATE INDEX incidents_by_problem ON incidents (problem_id) WHERE problem_id IS NOT NULL;
CREATE TABLE changes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    title        TEXT    NOT NULL,
    scope        TEXT    NOT NULL,
    start_at     INTEGER NOT NULL,
    end_at       INTEGER NOT NULL,
    verify_for   INTEGER NOT NULL,
    outcome      TEXT CHECK (outcome IN ('successful', 'failed')),
    outcome_note TEXT,
    created_by   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX changes_undecided ON changes (id) WHERE outcome IS NULL;
CREATE TABLE suppressions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    fingerprint TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    host        TEXT    NOT NULL,
    labels      TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    window_kind TEXT    NOT NULL CHECK (window_kind IN ('change', 'maintenance')),
    window_name TEXT    NOT NULL,
    change_id   INTEGER REFERENCES changes (id)
);
CREATE INDEX suppressions_by_time ON suppressions (at);
"#,
    r#"
CREATE TABLE availability (
    host       TEXT    NOT NULL,
    check_name TEXT    NOT NULL, -- '' is the host's heartbeat
    at         INTEGER NOT NULL,
    state      TEXT    NOT NULL CHECK (state IN ('up', 'down', 'unknown'))
);
CREATE INDEX availability_by_subject ON availability (host, check_name, at);
CREATE TABLE runs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at INTEGER NOT NULL,
    alive_at   INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver   TEXT    NOT NULL,
    subject    TEXT    NOT NULL, -- incident:<id> or problem:<id>
    event      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    state      TEXT    NOT NULL DEFAULT 'pending'
                       CHECK (state IN ('pending', 'delivered', 'rejected', 'expired')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    INTEGER NOT NULL,
    last_error TEXT,
    done_at    INTEGER
);
CREATE UNIQUE INDEX outbox_once ON outbox (receiver, key);
CREATE INDEX outbox_pending ON outbox (receiver, subject, id) WHERE state = 'pending';
CREATE INDEX outbox_by_subject ON outbox (subject, id);
CREATE TABLE notify_refs (
    receiver    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    external_id TEXT NOT NULL,
    PRIMARY KEY (receiver, subject)
);
"#,
    r#"
ALTER TABLE incidents ADD COLUMN origin TEXT NOT NULL DEFAULT 'rule'
    CHECK (origin IN ('rule', 'alertmanager'));
UPDATE incidents SET origin = 'alertmanager'
    WHERE json_valid(labels) AND json_extract(labels, '$.source') = 'alertmanager';
ALTER TABLE hosts ADD COLUMN retired_boots TEXT NOT NULL DEFAULT '[]';
"#,
    // v6: the console shows an incident's suppressed breaches.
    r#"
CREATE INDEX suppressions_by_fingerprint ON suppressions (fingerprint, id);
"#,
    // v7: each service's availability per finished UTC day, kept past the
    // availability changes' horizon (the status page shows 90 days).
    r#"
CREATE TABLE service_days (
    service    TEXT    NOT NULL,
    day        INTEGER NOT NULL,
    up_ms      INTEGER NOT NULL,
    down_ms    INTEGER NOT NULL,
    unknown_ms INTEGER NOT NULL,
    planned_ms INTEGER NOT NULL,
    PRIMARY KEY (service, day)
) WITHOUT ROWID;
"#,
];
