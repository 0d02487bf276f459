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
//! - `outbox`: one row per notification to deliver (see `notify`),
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
//! Schema v6 indexes suppressions by fingerprint (an incident's page).
//!
//! Schema v7 adds `service_days`: each service's up, down, unknown and
//! planned time per finished UTC day (`day` is its midnight in ms), written
//! once by the engine's hourly housekeeping while the day is still inside
//! the availability horizon, and kept [`SERVICE_DAYS_KEPT`] days, so the
//! status page's history outlives the availability changes (30 days).
//!
//! Writes that belong together (an incident transition, the problem it opens,
//! the change it fails) go through [`Store::write`], one transaction.

mod hosts;
mod incidents;
mod outbox;
mod planned;
mod schema;

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

pub use self::hosts::{AvailabilityRow, SERVICE_DAYS_KEPT};
pub use self::incidents::{FeedEntry, IncidentCount, IncidentFilter, IncidentOrder};
pub use self::planned::Suppression;
pub use self::schema::MIGRATIONS;

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
    /// What this transaction recorded so far, taken (domain events for
    /// routing, before the commit, and for metrics, after it).
    pub fn take_recorded(&self) -> Vec<Recorded> {
        self.recorded.take()
    }
}

#[cfg(test)]
mod tests;
