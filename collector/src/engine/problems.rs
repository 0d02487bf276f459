//! Recurrence → problems: the `count`-th incident of one fingerprint
//! `within` the window opens a problem (ITIL problem management).

use super::*;

impl Engine {
    /// The problem this occurrence belongs to (to save with it), if any: the
    /// open one of its fingerprint, or a new one once it recurred often enough.
    pub(super) fn problem_for(
        &self,
        fp: &str,
        now_ms: i64,
        incident: &Incident,
    ) -> Option<Problem> {
        if let Some(p) = self.problems.get(fp) {
            return (!p.incident_ids.contains(&incident.id) || incident.problem_id.is_none())
                .then(|| p.clone());
        }
        let (count, within) = self.policy.problem_after?;
        let since = now_ms.saturating_sub(duration_ms(within));
        let recent: Vec<i64> = self
            .recurrences
            .get(fp)
            .map(|q| {
                q.iter()
                    .filter(|(at, _)| *at >= since)
                    .map(|&(_, id)| id)
                    .collect()
            })
            .unwrap_or_default();
        if recent.len() + 1 < count as usize {
            return None;
        }
        let mut incident_ids: Vec<i64> = Vec::new();
        for id in recent {
            if !incident_ids.contains(&id) {
                incident_ids.push(id);
            }
        }
        Some(Problem {
            id: 0,
            fingerprint: fp.to_string(),
            rule: incident.rule.clone(),
            host: incident.host.clone(),
            state: ProblemState::Open,
            incident_ids,
            opened_at_ms: now_ms,
            resolved_at_ms: None,
            resolved_by: None,
            note: None,
        })
    }

    /// Counts an occurrence of `incident`'s fingerprint (for the problem
    /// window) and takes the problem it opened or grew, if any.
    pub(super) fn recurred(&mut self, incident: &Incident, problem: Option<Problem>, now_ms: i64) {
        let fp = &incident.fingerprint;
        if let Some((_, within)) = self.policy.problem_after {
            let q = self.recurrences.entry(fp.clone()).or_default();
            q.push_back((now_ms, incident.id));
            let since = now_ms.saturating_sub(duration_ms(within));
            while q.front().is_some_and(|&(at, _)| at < since) {
                q.pop_front();
            }
        }
        if let Some(p) = problem {
            self.book.link_problem(&p.incident_ids, p.id);
            if !self.problems.contains_key(fp) {
                tracing::warn!(id = p.id, fingerprint = %fp, incidents = p.incident_ids.len(), "problem opened: the incident keeps recurring");
                self.metrics.problems_open.inc();
            }
            self.problems.insert(fp.clone(), p);
        }
    }
}
