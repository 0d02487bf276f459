//! Incidents, their timelines and problems: rows ↔ domain types.

use super::*;

/// Incident counts by rule and priority, to restore counters at start.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentCount {
    pub rule: String,
    pub priority: u8,
    /// `None`: every incident (opened); `Some`: resolved that way.
    pub resolution: Option<String>,
    pub count: u64,
}

pub(super) const SELECT_INCIDENT: &str =
    "SELECT id, fingerprint, rule, host, labels, state, priority,
    impact, urgency, summary, description, value, threshold, started_at, detected_at,
    acknowledged_at, restored_at, resolved_at, closed_at, resolution, occurrences, problem_id,
    flapping, origin FROM incidents";

pub(super) fn incident_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Incident, StoreError>> {
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

impl Store {
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

    /// One page of incidents matching `f`, in `f.order`, with how many match
    /// in all (the console's list). Filters are SQL parameters, never text
    /// spliced into the query.
    pub fn incident_page(&self, f: &IncidentFilter) -> Result<(Vec<Incident>, u64), StoreError> {
        const WHERE: &str = "WHERE (?1 IS NULL OR state = ?1)
              AND (?2 IS NULL OR priority <= ?2)
              AND (?3 IS NULL OR rule = ?3)
              AND (?4 IS NULL OR host GLOB ?4)
              AND (?5 IS NULL OR instr(lower(summary), lower(?5)) > 0 OR instr(lower(host), lower(?5)) > 0)
              AND (?6 IS NULL OR detected_at >= ?6)
              AND (?7 IS NULL OR detected_at < ?7)
              AND (?8 = 0 OR state IN ('open', 'acknowledged'))";
        let order = match f.order {
            IncidentOrder::Newest => "id DESC",
            IncidentOrder::Oldest => "id ASC",
            IncidentOrder::Priority => "priority ASC, id DESC",
            IncidentOrder::Host => "host ASC, id DESC",
        };
        let (state, priority) = (f.state.map(|s| s.as_str()), f.max_priority.map(i64::from));
        let (limit, offset) = (
            f.limit.min(i64::MAX as u64) as i64,
            f.offset.min(i64::MAX as u64) as i64,
        );
        let filter: [&dyn rusqlite::ToSql; 8] = [
            &state,
            &priority,
            &f.rule,
            &f.host_glob,
            &f.text,
            &f.from_ms,
            &f.to_ms,
            &f.live_only,
        ];
        let total: i64 = self
            .conn
            .prepare_cached(&format!("SELECT count(*) FROM incidents {WHERE}"))?
            .query_row(&filter[..], |r| r.get(0))?;
        // The page's ids first (the sort holds two integers a row, not the
        // rows' text), then those rows.
        let mut paged = filter.to_vec();
        paged.extend([&limit as &dyn rusqlite::ToSql, &offset]);
        let ids: Vec<i64> = self
            .conn
            .prepare_cached(&format!(
                "SELECT id FROM incidents {WHERE} ORDER BY {order} LIMIT ?9 OFFSET ?10"
            ))?
            .query_map(&paged[..], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let list = serde_json::to_string(&ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut stmt = self.conn.prepare_cached(&format!(
            "{SELECT_INCIDENT} WHERE id IN (SELECT value FROM json_each(?1))"
        ))?;
        let mut by_id = std::collections::HashMap::new();
        for row in stmt.query_map([list], incident_from_row)? {
            let incident = row??;
            by_id.insert(incident.id, incident);
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(mut incident) = by_id.remove(&id) {
                incident.events = self.events(incident.id)?;
                out.push(incident);
            }
        }
        Ok((out, total.max(0) as u64))
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

    pub(super) fn problems_where(
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

    pub(super) fn events(&self, id: i64) -> Result<Vec<IncidentEvent>, StoreError> {
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

    /// `(id, host, detected_at_ms)` of the live incidents, oldest first (no
    /// timelines): of every host, or of `hosts` only.
    pub fn live_ids(
        &self,
        hosts: Option<&[String]>,
    ) -> Result<Vec<(i64, String, i64)>, StoreError> {
        let map = |r: &Row<'_>| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        };
        let rows = match hosts {
            None => self
                .conn
                .prepare_cached(
                    "SELECT id, host, detected_at FROM incidents
                      WHERE state IN ('open', 'acknowledged') ORDER BY id",
                )?
                .query_map([], map)?
                .collect::<Result<_, _>>()?,
            Some(hosts) => {
                let list =
                    serde_json::to_string(hosts).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                self.conn
                    .prepare_cached(
                        "SELECT id, host, detected_at FROM incidents
                          WHERE state IN ('open', 'acknowledged')
                            AND host IN (SELECT value FROM json_each(?1)) ORDER BY id",
                    )?
                    .query_map([list], map)?
                    .collect::<Result<_, _>>()?
            }
        };
        Ok(rows)
    }

    /// Live incidents by state and priority: `(state, priority, count)`.
    pub fn live_counts(&self) -> Result<Vec<(IncidentState, u8, u64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT state, priority, COUNT(*) FROM incidents
              WHERE state IN ('open', 'acknowledged') GROUP BY state, priority",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (state, priority, n) = row?;
            out.push((
                state.parse().map_err(StoreError::Corrupt)?,
                u8::try_from(priority).unwrap_or(u8::MAX),
                n.max(0) as u64,
            ));
        }
        Ok(out)
    }

    /// The latest `limit` timeline entries of all incidents, newest first,
    /// with their incident's id, host, rule and priority.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.at, e.kind, e.actor, e.note, i.id, i.host, i.rule, i.priority
               FROM incident_events e JOIN incidents i ON i.id = e.incident_id
              ORDER BY e.id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit.min(i64::MAX as usize) as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, i64>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (at_ms, kind, actor, note, id, host, rule, priority) = row?;
            let event = IncidentEvent {
                at_ms,
                kind: kind.parse().map_err(StoreError::Corrupt)?,
                actor,
                note,
            };
            out.push(FeedEntry {
                incident_id: id,
                host,
                rule,
                priority: u8::try_from(priority).unwrap_or(u8::MAX),
                event,
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
}

impl Tx<'_> {
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

    /// The priority of incident `id`, if it exists.
    pub fn incident_priority(&self, id: i64) -> Result<Option<u8>, StoreError> {
        Ok(self
            .tx
            .prepare_cached("SELECT priority FROM incidents WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?)
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
}

/// Which incidents [`Store::incident_page`] returns.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub state: Option<IncidentState>,
    /// This priority or more urgent (1 = P1 only).
    pub max_priority: Option<u8>,
    pub rule: Option<String>,
    /// A glob on the host name (`web-*`).
    pub host_glob: Option<String>,
    /// Case-insensitive text in the summary or host.
    pub text: Option<String>,
    /// Detected at or after (ms).
    pub from_ms: Option<i64>,
    /// Detected before (ms).
    pub to_ms: Option<i64>,
    /// Open or acknowledged only.
    pub live_only: bool,
    pub order: IncidentOrder,
    pub limit: u64,
    pub offset: u64,
}

/// How [`Store::incident_page`] sorts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IncidentOrder {
    #[default]
    Newest,
    Oldest,
    Priority,
    Host,
}

/// One timeline entry with what its incident is about (the console's feed).
#[derive(Debug, Clone)]
pub struct FeedEntry {
    pub incident_id: i64,
    pub host: String,
    pub rule: String,
    pub priority: u8,
    pub event: IncidentEvent,
}
