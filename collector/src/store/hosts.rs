//! Hosts' records, availability timelines, services' finished days and the
//! collector's own runs.

use super::*;
use crate::availability::Tally;
use crate::kpi::ServiceDay;

/// How long a service's finished days are kept (the status page shows 90).
pub const SERVICE_DAYS_KEPT: i64 = 400;

/// One availability change: `check` is empty for the host's heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct AvailabilityRow {
    pub host: String,
    pub check: String,
    pub at_ms: i64,
    pub state: Avail,
}

impl Store {
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

    pub(super) fn availability_where(
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

    /// Stores finished days not stored yet (a day is written once: what was
    /// recorded while its changes were all known is not overwritten by a
    /// later, partial view), and forgets days older than
    /// [`SERVICE_DAYS_KEPT`] before `now_ms`. Returns the rows written.
    pub fn record_service_days(
        &mut self,
        days: &[ServiceDay],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        self.write(|tx| {
            let mut stmt = tx.tx.prepare_cached(
                "INSERT OR IGNORE INTO service_days
                 (service, day, up_ms, down_ms, unknown_ms, planned_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut written = 0;
            for d in days {
                let t = &d.tally;
                written += stmt.execute(params![
                    d.service,
                    d.day,
                    t.up_ms,
                    t.down_ms,
                    t.unknown_ms,
                    t.planned_ms
                ])?;
            }
            tx.tx.execute(
                "DELETE FROM service_days WHERE day < ?1",
                params![now_ms - SERVICE_DAYS_KEPT * 86_400_000],
            )?;
            Ok(written)
        })
    }

    /// The stored days of `services` from `from_day` (ms) on.
    pub fn service_days(
        &self,
        services: &[String],
        from_day: i64,
    ) -> Result<Vec<ServiceDay>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT service, day, up_ms, down_ms, unknown_ms, planned_ms FROM service_days
             WHERE day >= ?1 ORDER BY service, day",
        )?;
        let rows = stmt.query_map(params![from_day], |r| {
            Ok(ServiceDay {
                service: r.get(0)?,
                day: r.get(1)?,
                tally: Tally {
                    up_ms: r.get(2)?,
                    down_ms: r.get(3)?,
                    unknown_ms: r.get(4)?,
                    planned_ms: r.get(5)?,
                },
            })
        })?;
        let mut out = Vec::new();
        for row in rows {
            let d = row?;
            if services.contains(&d.service) {
                out.push(d);
            }
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

    pub(super) fn hosts_where<P: rusqlite::Params>(
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
}
