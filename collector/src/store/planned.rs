//! Changes and the breaches planned windows suppressed.

use super::*;
use crate::windows::WindowKind;

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
    pub window_kind: WindowKind,
    /// The change's title or the maintenance window's name.
    pub window_name: String,
    pub change_id: Option<i64>,
}

impl Store {
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
        self.suppressions_of(None, limit)
    }

    /// Suppressed breaches of the alert with `fingerprint` (or of all),
    /// newest first: the changes and windows that covered it.
    pub fn suppressions_of(
        &self,
        fingerprint: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Suppression>, StoreError> {
        // Two statements, so the one for an alert uses its index.
        let mut stmt = self.conn.prepare_cached(match fingerprint {
            Some(_) => {
                "SELECT id, at, fingerprint, rule, host, labels, summary, window_kind, window_name,
                        change_id
                   FROM suppressions WHERE fingerprint = ?1 ORDER BY id DESC LIMIT ?2"
            }
            None => {
                "SELECT id, at, fingerprint, rule, host, labels, summary, window_kind, window_name,
                        change_id
                   FROM suppressions WHERE ?1 IS NULL ORDER BY id DESC LIMIT ?2"
            }
        })?;
        let rows = stmt.query_map(
            params![fingerprint, limit.min(i64::MAX as usize) as i64],
            |r| {
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
            },
        )?;
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
                window_kind: WindowKind::parse(&kind).ok_or_else(|| {
                    StoreError::Corrupt(format!("suppression {id} window_kind '{kind}'"))
                })?,
                window_name,
                change_id,
            });
        }
        Ok(out)
    }
}

impl Tx<'_> {
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
                s.window_kind.as_str(),
                s.window_name,
                s.change_id
            ])?;
        s.id = self.tx.last_insert_rowid();
        Ok(())
    }
}
