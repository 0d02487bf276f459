//! The SQLite store: the only module with SQL. It maps rows to domain types at
//! its edge.
//!
//! # On disk
//! One file, `<data_dir>/vedette.db`, in WAL mode with `synchronous=FULL`: a
//! committed transition survives a crash of the process or the machine.
//! `PRAGMA user_version` is the schema version; [`MIGRATIONS`] upgrade it in
//! order at start, each in its own transaction, so a crash mid-upgrade leaves
//! the previous version intact. A database newer than this binary is refused.
//!
//! Tables (schema v1):
//! - `incidents`: one row per incident; timestamps are integer milliseconds
//!   since the epoch; `labels` is a JSON object. A partial unique index allows
//!   at most one live (open/acknowledged) incident per `fingerprint`, so a
//!   restart can never duplicate one.
//! - `incident_events`: the timeline, appended in the same transaction as the
//!   incident row it belongs to.
//! - `hosts`: each host's labels, run identity (`boot_id`, `last_seq` for
//!   exactly-once application of batches) and when it was last seen.
//!
//! Schema v2 adds:
//! - `problems`: recurring incidents of one fingerprint; at most one open
//!   problem per fingerprint (partial unique index). Incidents link to it
//!   through `incidents.problem_id`.
//! - `changes`: planned changes (`scope` is JSON as written), their outcome
//!   once decided.
//! - `suppressions`: breaches that opened no incident because a window
//!   covered them, so planned work is never invisible.
//!
//! Schema v3 adds `availability` (each host's and check's up/down/unknown
//! changes) and `runs` (each collector run's start and last alive mark).
//!
//! Schema v4 adds:
//! - `outbox`: one row per notification to deliver (see [`crate::notify`]),
//!   written in the transaction of the transition it tells about; a unique
//!   `(receiver, key)` makes enqueueing one transition twice impossible.
//! - `notify_refs`: what a receiver made of a subject (ServiceNow `sys_id`).
//!
//! Schema v5 adds:
//! - `incidents.origin`: `rule` or `alertmanager`, where the incident came
//!   from (before, a `source: alertmanager` label said so, which a series
//!   could carry too; rows with that label are marked `alertmanager` by the
//!   migration).
//! - `hosts.retired_boots`: a JSON array of the 128-bit digests (hex) of the
//!   host's earlier `boot_id`s, newest last, at most [`RETIRED_BOOTS`](crate::state::RETIRED_BOOTS):
//!   batches of those boots are repeats.
//!
//! Writes that belong together (an incident transition, the problem it opens,
//! the change it fails) go through [`Store::write`], one transaction.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Row};

use std::cell::RefCell;

use crate::availability::Avail;
use crate::incidents::{
    observations, EventKind, Incident, IncidentEvent, IncidentState, Labels, Observation, Origin,
    Problem, ProblemState, Recorded,
};
use crate::outbox::{Attempt, DeliveryRow, Enqueue, Event, OutboxRow};
use crate::state::HostRecord;
use crate::windows::{Change, ChangeOutcome, Scope, ScopeSpec};

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
];

/// Store failures callers branch on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("incident {0} not found")]
    NotFound(i64),
    #[error("problem {0} not found")]
    ProblemNotFound(i64),
    #[error("database schema version {found} is newer than this collector understands ({known}); upgrade vedette-collector")]
    TooNew { found: i64, known: i64 },
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("store row is corrupt: {0}")]
    Corrupt(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreError {
    /// True when the store refused what was written (a constraint, a row
    /// that cannot be encoded or is gone): the failure is that subject's,
    /// and writing something else may well succeed. False for failures of
    /// the store as a whole (disk full, I/O error, busy, read-only), which
    /// every write would meet.
    pub fn is_refusal(&self) -> bool {
        use rusqlite::ErrorCode;
        match self {
            StoreError::NotFound(_) | StoreError::ProblemNotFound(_) | StoreError::Corrupt(_) => {
                true
            }
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                ErrorCode::ConstraintViolation | ErrorCode::TooBig | ErrorCode::TypeMismatch
            ),
            StoreError::Sqlite(
                rusqlite::Error::ToSqlConversionFailure(_)
                | rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::IntegralValueOutOfRange(..)
                | rusqlite::Error::InvalidColumnType(..),
            ) => true,
            StoreError::Sqlite(_) | StoreError::TooNew { .. } | StoreError::DataDir { .. } => false,
        }
    }

    /// True when the refusal is a uniqueness or other constraint.
    pub fn is_constraint(&self) -> bool {
        matches!(self, StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation)
    }
}

/// A breach that a window suppressed.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppression {
    pub id: i64,
    pub at_ms: i64,
    pub fingerprint: String,
    pub rule: String,
    pub host: String,
    pub labels: Labels,
    pub summary: String,
    /// `change` or `maintenance`.
    pub window_kind: &'static str,
    /// The change's title or the maintenance window's name.
    pub window_name: String,
    pub change_id: Option<i64>,
}

/// Incident counts by rule and priority, to restore counters at start.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentCount {
    pub rule: String,
    pub priority: u8,
    /// `None`: every incident (opened); `Some`: resolved that way.
    pub resolution: Option<String>,
    pub count: u64,
}

/// One availability change: `check` is empty for the host's heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct AvailabilityRow {
    pub host: String,
    pub check: String,
    pub at_ms: i64,
    pub state: Avail,
}

/// One SQLite connection. The engine owns the writer; the API has its own
/// reader (WAL lets it read while the writer commits).
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        Store::init(conn)
    }

    /// An in-memory store, for tests.
    pub fn in_memory() -> Result<Store, StoreError> {
        Store::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Store, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let known = MIGRATIONS.len() as i64;
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > known {
            return Err(StoreError::TooNew { found, known });
        }
        for (v, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", v as i64 + 1)?;
            tx.commit()?;
        }
        Ok(Store { conn })
    }

    /// The schema version in the file.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Runs `f` in one transaction: everything it writes commits together or
    /// not at all. What the transaction [recorded](Tx::take_recorded) and `f`
    /// did not take is dropped.
    pub fn write<T>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = Tx {
            tx: self.conn.transaction()?,
            recorded: RefCell::default(),
        };
        let out = f(&tx)?;
        tx.tx.commit()?;
        Ok(out)
    }

    /// Every KPI measurement the stored incidents make, to rebuild the
    /// histograms at start.
    pub fn kpi_observations(&self) -> Result<Vec<Observation>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT i.id, i.priority, i.started_at, e.at, e.kind
             FROM incident_events e JOIN incidents i ON i.id = e.incident_id
             ORDER BY e.incident_id, e.id",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        let mut current: Option<(i64, u8, i64)> = None;
        let mut events = Vec::new();
        let mut flush = |inc: Option<(i64, u8, i64)>, events: &mut Vec<(i64, EventKind)>| {
            if let Some((_, priority, started)) = inc {
                out.extend(observations(started, priority, events.drain(..), 0));
            }
        };
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            if current.map(|c| c.0) != Some(id) {
                flush(current, &mut events);
                current = Some((id, r.get(1)?, r.get(2)?));
            }
            let kind: String = r.get(4)?;
            events.push((r.get(3)?, kind.parse().map_err(StoreError::Corrupt)?));
        }
        flush(current, &mut events);
        Ok(out)
    }

    /// Availability changes a window starting at `since_ms` or later can see:
    /// every change from then on, and the one before it per subject (the
    /// state at `since_ms`). Oldest first per subject.
    pub fn availability(&self, since_ms: i64) -> Result<Vec<AvailabilityRow>, StoreError> {
        self.availability_where("", params![since_ms])
    }

    /// [`Store::availability`] of one host (its heartbeat and its checks).
    pub fn availability_of(
        &self,
        host: &str,
        since_ms: i64,
    ) -> Result<Vec<AvailabilityRow>, StoreError> {
        self.availability_where("a.host = ?2 AND", params![since_ms, host])
    }

    fn availability_where(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<AvailabilityRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT host, check_name, at, state FROM availability a
             WHERE {filter} (at >= ?1 OR at = (SELECT MAX(at) FROM availability b
                 WHERE b.host = a.host AND b.check_name = a.check_name AND b.at < ?1))
             ORDER BY host, check_name, at, rowid"
        ))?;
        let rows = stmt.query_map(args, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (host, check, at_ms, state) = row?;
            let state = Avail::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("availability state '{state}'")))?;
            out.push(AvailabilityRow {
                host,
                check,
                at_ms,
                state,
            });
        }
        Ok(out)
    }

    /// Deletes availability changes no window starting at `before_ms` or
    /// later can see.
    pub fn prune_availability(&mut self, before_ms: i64) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "DELETE FROM availability WHERE at < (SELECT MAX(at) FROM availability b
                 WHERE b.host = availability.host AND b.check_name = availability.check_name
                   AND b.at <= ?1)",
            [before_ms],
        )?)
    }

    /// Records the start of this collector run and returns its id with the
    /// runs (`started`, `last alive`) since `since_ms`, oldest first, this one
    /// included.
    pub fn start_run(
        &mut self,
        now_ms: i64,
        since_ms: i64,
    ) -> Result<(i64, Vec<(i64, i64)>), StoreError> {
        self.write(|tx| {
            tx.tx.execute(
                "INSERT INTO runs (started_at, alive_at) VALUES (?1, ?1)",
                [now_ms],
            )?;
            let id = tx.tx.last_insert_rowid();
            tx.tx
                .execute("DELETE FROM runs WHERE alive_at < ?1", [since_ms])?;
            let mut stmt = tx
                .tx
                .prepare("SELECT started_at, alive_at FROM runs ORDER BY id")?;
            let runs = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok((id, runs))
        })
    }

    /// One incident with its timeline.
    pub fn incident(&self, id: i64) -> Result<Incident, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("{SELECT_INCIDENT} WHERE id = ?1"))?;
        let mut incident = stmt
            .query_row([id], incident_from_row)
            .optional()?
            .ok_or(StoreError::NotFound(id))??;
        incident.events = self.events(id)?;
        Ok(incident)
    }

    /// Incidents newest first, optionally in one state, at most `limit`.
    pub fn incidents(
        &self,
        state: Option<IncidentState>,
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{SELECT_INCIDENT} WHERE (?1 IS NULL OR state = ?1) ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(
            params![state.map(|s| s.as_str()), limit as i64],
            incident_from_row,
        )?;
        let mut out = Vec::new();
        for row in rows {
            let mut incident = row??;
            incident.events = self.events(incident.id)?;
            out.push(incident);
        }
        Ok(out)
    }

    /// The live incident with `fingerprint`, if the store holds one.
    pub fn live_by_fingerprint(&self, fingerprint: &str) -> Result<Option<Incident>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{SELECT_INCIDENT} WHERE fingerprint = ?1 AND state IN ('open', 'acknowledged')"
        ))?;
        let Some(incident) = stmt
            .query_row([fingerprint], incident_from_row)
            .optional()?
        else {
            return Ok(None);
        };
        let mut incident = incident?;
        incident.events = self.events(incident.id)?;
        Ok(Some(incident))
    }

    /// Every live (open or acknowledged) incident, oldest first.
    pub fn live_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let mut out = self.incidents(Some(IncidentState::Open), usize::MAX >> 1)?;
        out.extend(self.incidents(Some(IncidentState::Acknowledged), usize::MAX >> 1)?);
        out.sort_by_key(|i| i.id);
        Ok(out)
    }

    /// Resolved (not yet closed) incidents, oldest first.
    pub fn resolved_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let mut out = self.incidents(Some(IncidentState::Resolved), usize::MAX >> 1)?;
        out.reverse();
        Ok(out)
    }

    /// `(fingerprint, at, incident id)` of every detection and reopening since
    /// `since_ms`, oldest first: what problem detection counts. Occurrences
    /// of a fingerprint up to the resolution of its latest resolved problem
    /// are left out: once a problem is resolved the count starts over.
    pub fn occurrences_since(&self, since_ms: i64) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT i.fingerprint, e.at, i.id FROM incident_events e
               JOIN incidents i ON i.id = e.incident_id
              WHERE e.kind IN ('opened', 'reopened') AND e.at >= ?1
                AND e.at > COALESCE((SELECT MAX(p.resolved_at) FROM problems p
                                      WHERE p.fingerprint = i.fingerprint
                                        AND p.state = 'resolved'), 0)
              ORDER BY e.at, e.id",
        )?;
        let rows = stmt.query_map([since_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One problem with its incidents.
    pub fn problem(&self, id: i64) -> Result<Problem, StoreError> {
        self.problems_where("WHERE id = ?1", params![id], 1)?
            .pop()
            .ok_or(StoreError::ProblemNotFound(id))
    }

    /// Problems newest first, optionally in one state.
    pub fn problems(
        &self,
        state: Option<ProblemState>,
        limit: usize,
    ) -> Result<Vec<Problem>, StoreError> {
        self.problems_where(
            "WHERE (?1 IS NULL OR state = ?1)",
            params![state.map(ProblemState::as_str)],
            limit,
        )
    }

    fn problems_where(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
        limit: usize,
    ) -> Result<Vec<Problem>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id, fingerprint, rule, host, state, opened_at, resolved_at, resolved_by, note
               FROM problems {filter} ORDER BY id DESC LIMIT {limit}"
        ))?;
        let rows = stmt.query_map(args, |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<String>>(8)?,
            ))
        })?;
        let mut out = Vec::new();
        let mut ids = self
            .conn
            .prepare_cached("SELECT id FROM incidents WHERE problem_id = ?1 ORDER BY id")?;
        for row in rows {
            let (
                id,
                fingerprint,
                rule,
                host,
                state,
                opened_at_ms,
                resolved_at_ms,
                resolved_by,
                note,
            ) = row?;
            let incident_ids = ids
                .query_map([id], |r| r.get(0))?
                .collect::<Result<Vec<i64>, _>>()?;
            out.push(Problem {
                id,
                fingerprint,
                rule,
                host,
                state: state.parse().map_err(StoreError::Corrupt)?,
                incident_ids,
                opened_at_ms,
                resolved_at_ms,
                resolved_by,
                note,
            });
        }
        Ok(out)
    }

    /// Changes newest first; `undecided` only those without an outcome.
    pub fn changes(&self, undecided: bool, limit: usize) -> Result<Vec<Change>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id, title, scope, start_at, end_at, verify_for, outcome, outcome_note,
                    created_by, created_at
               FROM changes WHERE (?1 = 0 OR outcome IS NULL) ORDER BY id DESC LIMIT {limit}"
        ))?;
        let rows = stmt.query_map([undecided], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, i64>(9)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                id,
                title,
                scope,
                start_ms,
                end_ms,
                verify_ms,
                outcome,
                outcome_note,
                created_by,
                created_at_ms,
            ) = row?;
            let spec: ScopeSpec = serde_json::from_str(&scope)
                .map_err(|e| StoreError::Corrupt(format!("change {id} scope: {e}")))?;
            let scope = Scope::new(spec)
                .map_err(|(f, e)| StoreError::Corrupt(format!("change {id} {f}: {e}")))?;
            out.push(Change {
                id,
                title,
                scope,
                start_ms,
                end_ms,
                verify_for: std::time::Duration::from_millis(verify_ms.max(0) as u64),
                outcome: outcome
                    .map(|o| o.parse())
                    .transpose()
                    .map_err(StoreError::Corrupt)?,
                outcome_note,
                created_by,
                created_at_ms,
            });
        }
        Ok(out)
    }

    /// Counts of decided changes by outcome, to restore `vedette_changes_total`.
    pub fn change_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT outcome, COUNT(*) FROM changes WHERE outcome IS NOT NULL GROUP BY outcome",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Suppressed breaches, newest first.
    pub fn suppressions(&self, limit: usize) -> Result<Vec<Suppression>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at, fingerprint, rule, host, labels, summary, window_kind, window_name,
                    change_id
               FROM suppressions ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, Option<i64>>(9)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, at_ms, fingerprint, rule, host, labels, summary, kind, window_name, change_id) =
                row?;
            out.push(Suppression {
                id,
                at_ms,
                fingerprint,
                rule,
                host,
                labels: serde_json::from_str(&labels)
                    .map_err(|e| StoreError::Corrupt(format!("suppression {id} labels: {e}")))?,
                summary,
                window_kind: if kind == "change" {
                    "change"
                } else {
                    "maintenance"
                },
                window_name,
                change_id,
            });
        }
        Ok(out)
    }

    fn events(&self, id: i64) -> Result<Vec<IncidentEvent>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, kind, actor, note FROM incident_events WHERE incident_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (at_ms, kind, actor, note) = row?;
            out.push(IncidentEvent {
                at_ms,
                kind: kind.parse().map_err(StoreError::Corrupt)?,
                actor,
                note,
            });
        }
        Ok(out)
    }

    /// Counts for restoring `vedette_incidents_*_total` at start.
    pub fn incident_counts(&self) -> Result<Vec<IncidentCount>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT rule, priority, NULL, COUNT(*) FROM incidents GROUP BY rule, priority
             UNION ALL
             SELECT rule, priority, resolution, COUNT(*) FROM incidents
               WHERE resolution IS NOT NULL GROUP BY rule, priority, resolution",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(IncidentCount {
                rule: r.get(0)?,
                priority: r.get(1)?,
                resolution: r.get(2)?,
                count: r.get::<_, i64>(3)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Upserts host records in one transaction.
    pub fn save_hosts<'a>(
        &mut self,
        hosts: impl IntoIterator<Item = &'a HostRecord>,
    ) -> Result<(), StoreError> {
        self.write(|tx| tx.save_hosts(hosts))
    }

    /// Every known host.
    pub fn hosts(&self) -> Result<Vec<HostRecord>, StoreError> {
        self.hosts_where("", [])
    }

    /// One host's record, if the store knows it.
    pub fn host(&self, host: &str) -> Result<Option<HostRecord>, StoreError> {
        Ok(self.hosts_where("WHERE host = ?1", [host])?.pop())
    }

    fn hosts_where<P: rusqlite::Params>(
        &self,
        filter: &str,
        args: P,
    ) -> Result<Vec<HostRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT host, labels, boot_id, last_seq, last_seen, interval_ms, retired_boots
               FROM hosts {filter} ORDER BY host"
        ))?;
        let rows = stmt.query_map(args, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (host, labels, boot_id, last_seq, last_seen_ms, interval_ms, retired) = row?;
            let retired: Vec<String> = serde_json::from_str(&retired)
                .map_err(|e| StoreError::Corrupt(format!("host {host} retired_boots: {e}")))?;
            let retired_boots = retired
                .iter()
                .map(|d| u128::from_str_radix(d, 16))
                .collect::<Result<_, _>>()
                .map_err(|e| StoreError::Corrupt(format!("host {host} retired_boots: {e}")))?;
            let last_seq = u64::try_from(last_seq)
                .map_err(|_| StoreError::Corrupt(format!("host {host} last_seq {last_seq}")))?;
            out.push(HostRecord {
                labels: serde_json::from_str(&labels)
                    .map_err(|e| StoreError::Corrupt(format!("host {host} labels: {e}")))?,
                host,
                boot_id,
                last_seq,
                last_seen_ms,
                interval_ms,
                retired_boots,
            });
        }
        Ok(out)
    }

    /// Deletes the records of hosts last seen before `before_ms`, and their
    /// availability changes (called with a cutoff past both the availability
    /// horizon and `forget_hosts_after`: nothing can show them any more).
    pub fn prune_hosts(&mut self, before_ms: i64) -> Result<usize, StoreError> {
        self.write(|tx| {
            tx.tx.execute(
                "DELETE FROM availability WHERE host IN
                   (SELECT host FROM hosts WHERE last_seen < ?1)",
                [before_ms],
            )?;
            Ok(tx
                .tx
                .execute("DELETE FROM hosts WHERE last_seen < ?1", [before_ms])?)
        })
    }

    /// Every known host's labels.
    pub fn host_labels(&self) -> Result<Vec<(String, Labels)>, StoreError> {
        Ok(self
            .hosts()?
            .into_iter()
            .map(|h| (h.host, h.labels))
            .collect())
    }

    /// The oldest pending row of each of `receiver`'s subjects (only it may
    /// go: rows of one subject are delivered in order), soonest due first.
    pub fn outbox_heads(&self, receiver: &str, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.id, o.subject, o.event, o.key, o.payload, o.created_at, o.attempts,
                    o.next_at, r.external_id
               FROM outbox o
               LEFT JOIN notify_refs r ON r.receiver = o.receiver AND r.subject = o.subject
              WHERE o.receiver = ?1 AND o.state = 'pending'
                AND o.id = (SELECT MIN(p.id) FROM outbox p WHERE p.receiver = o.receiver
                              AND p.subject = o.subject AND p.state = 'pending')
              ORDER BY o.next_at, o.id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![receiver, limit as i64], |r| {
            Ok((
                OutboxRow {
                    id: r.get(0)?,
                    subject: r.get(1)?,
                    event: Event::Opened,
                    key: r.get(3)?,
                    payload: r.get(4)?,
                    created_at_ms: r.get(5)?,
                    attempts: r.get::<_, i64>(6)?.max(0) as u32,
                    next_at_ms: r.get(7)?,
                    external_id: r.get(8)?,
                },
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut row, event) = row?;
            row.event = Event::parse(&event)
                .ok_or_else(|| StoreError::Corrupt(format!("outbox event '{event}'")))?;
            out.push(row);
        }
        Ok(out)
    }

    /// Records an attempt at row `id`: done (delivered, rejected or expired)
    /// or to be retried at `next_at_ms`.
    pub fn record_attempt(
        &mut self,
        id: i64,
        now_ms: i64,
        outcome: &Attempt,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let (state, error, next_at) = match outcome {
                Attempt::Delivered { .. } => ("delivered", None, None),
                Attempt::Retry { error, next_at_ms } => ("pending", Some(error), Some(*next_at_ms)),
                Attempt::Rejected(e) => ("rejected", Some(e), None),
                Attempt::Expired(e) => ("expired", Some(e), None),
            };
            tx.tx
                .prepare_cached(
                    "UPDATE outbox SET state = ?2, attempts = attempts + 1,
                       last_error = COALESCE(?3, last_error), next_at = COALESCE(?4, next_at),
                       done_at = CASE WHEN ?2 = 'pending' THEN NULL ELSE ?5 END
                     WHERE id = ?1",
                )?
                .execute(params![id, state, error, next_at, now_ms])?;
            if let Attempt::Delivered {
                external_id: Some(ext),
            } = outcome
            {
                tx.tx
                    .prepare_cached(
                        "INSERT INTO notify_refs (receiver, subject, external_id)
                         SELECT receiver, subject, ?2 FROM outbox WHERE id = ?1
                         ON CONFLICT (receiver, subject) DO UPDATE SET external_id = excluded.external_id",
                    )?
                    .execute(params![id, ext])?;
            }
            Ok(())
        })
    }

    /// The payloads of `receiver`'s incidents whose latest delivered event
    /// fired and that nothing resolved since: what Alertmanager must keep hearing.
    pub fn firing(&self, receiver: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.subject, o.payload FROM outbox o
              WHERE o.receiver = ?1 AND o.state = 'delivered' AND o.event IN ('opened', 'reopened')
                AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.receiver = o.receiver
                      AND p.subject = o.subject AND p.id > o.id
                      AND (p.event IN ('resolved', 'closed') OR p.state = 'delivered'))
              ORDER BY o.id",
        )?;
        let rows = stmt.query_map([receiver], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every delivery of one subject (`incident:<id>`), oldest first.
    pub fn deliveries(&self, subject: &str) -> Result<Vec<DeliveryRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT receiver, event, state, attempts, created_at, next_at, last_error, done_at
               FROM outbox WHERE subject = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([subject], |r| {
            Ok(DeliveryRow {
                receiver: r.get(0)?,
                event: r.get(1)?,
                state: r.get(2)?,
                attempts: r.get::<_, i64>(3)?.max(0) as u32,
                created_at_ms: r.get(4)?,
                next_at_ms: r.get(5)?,
                last_error: r.get(6)?,
                done_at_ms: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Per receiver: pending rows and the creation time of the oldest.
    pub fn outbox_pending(&self) -> Result<Vec<(String, u64, i64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT receiver, COUNT(*), MIN(created_at) FROM outbox
              WHERE state = 'pending' GROUP BY receiver",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64, r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Per receiver and outcome, the attempts made so far (to restore
    /// `vedette_notifications_total`): every attempt that did not end its
    /// row was `retried`.
    pub fn notification_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT receiver, state, COUNT(*) FROM outbox WHERE state != 'pending'
               GROUP BY receiver, state
             UNION ALL
             SELECT receiver, 'retried',
                    SUM(attempts) - SUM(CASE WHEN state = 'pending' THEN 0 ELSE 1 END)
               FROM outbox GROUP BY receiver",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)?.max(0) as u64))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A trivial query, for `/readyz`.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.conn.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }
}

/// One write transaction (see [`Store::write`]), with the KPI measurements
/// its incident transitions make (handed on once it commits) and the outbox
/// rows they enqueue.
pub struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
    /// What this transaction did that others act on once it commits.
    recorded: RefCell<Vec<Recorded>>,
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Tx<'_> {
    /// Upserts host records.
    pub fn save_hosts<'a>(
        &self,
        hosts: impl IntoIterator<Item = &'a HostRecord>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO hosts (host, labels, boot_id, last_seq, last_seen, interval_ms,
               retired_boots)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (host) DO UPDATE SET labels = excluded.labels,
               boot_id = excluded.boot_id, last_seq = excluded.last_seq,
               last_seen = excluded.last_seen, interval_ms = excluded.interval_ms,
               retired_boots = excluded.retired_boots",
        )?;
        for h in hosts {
            // The protocol keeps seq within i64 (MAX_SEQ): stored exactly.
            let last_seq = i64::try_from(h.last_seq).map_err(|_| {
                StoreError::Corrupt(format!("host {} last_seq {} over i64", h.host, h.last_seq))
            })?;
            let retired: Vec<String> = h
                .retired_boots
                .iter()
                .map(|d| format!("{d:032x}"))
                .collect();
            stmt.execute(params![
                h.host,
                json(&h.labels)?,
                h.boot_id,
                last_seq,
                h.last_seen_ms,
                h.interval_ms,
                json(&retired)?
            ])?;
        }
        Ok(())
    }

    /// Appends availability changes.
    pub fn insert_availability<'a>(
        &self,
        rows: impl IntoIterator<Item = &'a AvailabilityRow>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO availability (host, check_name, at, state) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for r in rows {
            stmt.execute(params![r.host, r.check, r.at_ms, r.state.as_str()])?;
        }
        Ok(())
    }

    /// Marks collector run `run` alive at `now_ms`: after a crash, the time
    /// from the last mark to the next start is the collector's downtime.
    pub fn mark_alive(&self, run: i64, now_ms: i64) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("UPDATE runs SET alive_at = ?2 WHERE id = ?1")?
            .execute(params![run, now_ms])?;
        Ok(())
    }

    /// Inserts (id 0) or updates an incident and appends `events[persisted_events..]`.
    /// Sets `incident.id` on insert.
    pub fn save_incident(
        &self,
        incident: &mut Incident,
        persisted_events: usize,
    ) -> Result<(), StoreError> {
        let tx = &self.tx;
        let labels = json(&incident.labels)?;
        let i = &*incident;
        let values = params![
            i.fingerprint,
            i.rule,
            i.host,
            labels,
            i.state.as_str(),
            i.priority,
            i.impact,
            i.urgency,
            i.summary,
            i.description,
            i.value,
            i.threshold,
            i.started_at_ms,
            i.detected_at_ms,
            i.acknowledged_at_ms,
            i.restored_at_ms,
            i.resolved_at_ms,
            i.closed_at_ms,
            i.resolution.map(|r| r.as_str()),
            i.occurrences,
            i.problem_id,
            i.flapping,
            i.origin.as_str(),
        ];
        if incident.id == 0 {
            tx.prepare_cached(
                "INSERT INTO incidents (fingerprint, rule, host, labels, state, priority, impact,
                   urgency, summary, description, value, threshold, started_at, detected_at,
                   acknowledged_at, restored_at, resolved_at, closed_at, resolution, occurrences,
                   problem_id, flapping, origin)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                   ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
            )?
            .execute(values)?;
            incident.id = tx.last_insert_rowid();
        } else {
            let n = tx
                .prepare_cached(
                    "UPDATE incidents SET fingerprint = ?1, rule = ?2, host = ?3, labels = ?4,
                   state = ?5, priority = ?6, impact = ?7, urgency = ?8, summary = ?9,
                   description = ?10, value = ?11, threshold = ?12, started_at = ?13,
                   detected_at = ?14, acknowledged_at = ?15, restored_at = ?16,
                   resolved_at = ?17, closed_at = ?18, resolution = ?19, occurrences = ?20,
                   problem_id = ?21, flapping = ?22, origin = ?23
                 WHERE id = ?24",
                )?
                .execute(rusqlite::params_from_iter(
                    values
                        .iter()
                        .copied()
                        .chain(std::iter::once(&incident.id as &dyn rusqlite::ToSql)),
                ))?;
            if n == 0 {
                return Err(StoreError::NotFound(incident.id));
            }
        }
        let mut ins = tx.prepare_cached(
            "INSERT INTO incident_events (incident_id, at, kind, actor, note)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for e in incident.events.iter().skip(persisted_events) {
            ins.execute(params![
                incident.id,
                e.at_ms,
                e.kind.as_str(),
                e.actor,
                e.note
            ])?;
        }
        self.recorded.borrow_mut().push(Recorded::Incident {
            incident: incident.clone(),
            from: persisted_events,
        });
        Ok(())
    }

    /// What this transaction recorded so far, taken (domain events for
    /// routing, before the commit, and for metrics, after it).
    pub fn take_recorded(&self) -> Vec<Recorded> {
        self.recorded.take()
    }

    /// The priority of incident `id`, if it exists.
    pub fn incident_priority(&self, id: i64) -> Result<Option<u8>, StoreError> {
        Ok(self
            .tx
            .prepare_cached("SELECT priority FROM incidents WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?)
    }

    /// Writes outbox rows (a row already there for its receiver and key is
    /// kept); returns how many were new.
    pub fn enqueue(&self, rows: &[Enqueue], now_ms: i64) -> Result<usize, StoreError> {
        let mut added = 0;
        let mut stmt = self.tx.prepare_cached(
            "INSERT OR IGNORE INTO outbox (receiver, subject, event, key, payload, created_at, next_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        )?;
        for r in rows {
            let n = stmt.execute(params![
                r.receiver,
                r.subject,
                r.event.as_str(),
                r.key,
                r.payload,
                now_ms
            ])?;
            added += n;
        }
        Ok(added)
    }

    /// Inserts (id 0) or updates a problem, and points its incidents at it.
    pub fn save_problem(&self, p: &mut Problem) -> Result<(), StoreError> {
        let tx = &self.tx;
        if p.id == 0 {
            tx.prepare_cached(
                "INSERT INTO problems (fingerprint, rule, host, state, opened_at, resolved_at,
                   resolved_by, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                p.fingerprint,
                p.rule,
                p.host,
                p.state.as_str(),
                p.opened_at_ms,
                p.resolved_at_ms,
                p.resolved_by,
                p.note
            ])?;
            p.id = tx.last_insert_rowid();
            self.recorded
                .borrow_mut()
                .push(Recorded::ProblemOpened(p.clone()));
        } else {
            let n = tx
                .prepare_cached(
                    "UPDATE problems SET state = ?2, resolved_at = ?3, resolved_by = ?4, note = ?5
                     WHERE id = ?1",
                )?
                .execute(params![
                    p.id,
                    p.state.as_str(),
                    p.resolved_at_ms,
                    p.resolved_by,
                    p.note
                ])?;
            if n == 0 {
                return Err(StoreError::ProblemNotFound(p.id));
            }
        }
        let mut link = tx.prepare_cached("UPDATE incidents SET problem_id = ?1 WHERE id = ?2")?;
        for id in &p.incident_ids {
            link.execute(params![p.id, id])?;
        }
        Ok(())
    }

    /// Inserts a change (id 0) or records its outcome.
    pub fn save_change(&self, c: &mut Change) -> Result<(), StoreError> {
        let tx = &self.tx;
        if c.id == 0 {
            tx.prepare_cached(
                "INSERT INTO changes (title, scope, start_at, end_at, verify_for, outcome,
                   outcome_note, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                c.title,
                json(&c.scope.spec)?,
                c.start_ms,
                c.end_ms,
                vedette_protocol::clock::duration_ms(c.verify_for),
                c.outcome.map(ChangeOutcome::as_str),
                c.outcome_note,
                c.created_by,
                c.created_at_ms
            ])?;
            c.id = tx.last_insert_rowid();
        } else {
            tx.prepare_cached("UPDATE changes SET outcome = ?2, outcome_note = ?3 WHERE id = ?1")?
                .execute(params![
                    c.id,
                    c.outcome.map(ChangeOutcome::as_str),
                    c.outcome_note
                ])?;
        }
        Ok(())
    }

    /// Records a suppressed breach.
    pub fn insert_suppression(&self, s: &mut Suppression) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO suppressions (at, fingerprint, rule, host, labels, summary,
                   window_kind, window_name, change_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                s.at_ms,
                s.fingerprint,
                s.rule,
                s.host,
                json(&s.labels)?,
                s.summary,
                s.window_kind,
                s.window_name,
                s.change_id
            ])?;
        s.id = self.tx.last_insert_rowid();
        Ok(())
    }
}

const SELECT_INCIDENT: &str = "SELECT id, fingerprint, rule, host, labels, state, priority,
    impact, urgency, summary, description, value, threshold, started_at, detected_at,
    acknowledged_at, restored_at, resolved_at, closed_at, resolution, occurrences, problem_id,
    flapping, origin FROM incidents";

fn incident_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Incident, StoreError>> {
    let labels: String = r.get(4)?;
    let state: String = r.get(5)?;
    let resolution: Option<String> = r.get(19)?;
    let origin: String = r.get(23)?;
    let id: i64 = r.get(0)?;
    let parsed = (|| {
        let labels: Labels = serde_json::from_str(&labels)
            .map_err(|e| StoreError::Corrupt(format!("incident {id} labels: {e}")))?;
        let state: IncidentState = state.parse().map_err(StoreError::Corrupt)?;
        let resolution = resolution
            .map(|s| s.parse())
            .transpose()
            .map_err(StoreError::Corrupt)?;
        let origin: Origin = origin.parse().map_err(StoreError::Corrupt)?;
        Ok::<_, StoreError>((labels, state, resolution, origin))
    })();
    let (labels, state, resolution, origin) = match parsed {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(Incident {
        id,
        fingerprint: r.get(1)?,
        origin,
        rule: r.get(2)?,
        host: r.get(3)?,
        labels,
        state,
        priority: r.get(6)?,
        impact: r.get(7)?,
        urgency: r.get(8)?,
        summary: r.get(9)?,
        description: r.get(10)?,
        value: r.get(11)?,
        threshold: r.get(12)?,
        started_at_ms: r.get(13)?,
        detected_at_ms: r.get(14)?,
        acknowledged_at_ms: r.get(15)?,
        restored_at_ms: r.get(16)?,
        resolved_at_ms: r.get(17)?,
        closed_at_ms: r.get(18)?,
        resolution,
        occurrences: r.get(20)?,
        problem_id: r.get(21)?,
        flapping: r.get(22)?,
        events: Vec::new(),
    }))
}

#[cfg(test)]
mod tests;
