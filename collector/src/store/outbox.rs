//! The outbox: rows to deliver, attempts, what each receiver holds.

use super::*;

impl Store {
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
}

impl Tx<'_> {
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
}
