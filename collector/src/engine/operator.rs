//! What people do: acknowledge and resolve incidents, resolve problems,
//! record changes. Each is one transaction; the actor is recorded.

use super::*;

impl Engine {
    pub fn acknowledge(
        &mut self,
        id: i64,
        actor: &str,
        note: Option<String>,
        now_ms: i64,
    ) -> Result<Incident, ActionError> {
        let (key, next) = self.on_live(id, note, |i, n| i.acknowledge(actor, n, now_ms))?;
        self.book.update_live(&key, next.clone());
        Ok(next)
    }

    /// Resolves a live incident by hand. The alert stays firing, so the same
    /// breach does not open a new incident; its restore is recorded when it clears.
    pub fn resolve(
        &mut self,
        id: i64,
        actor: &str,
        note: Option<String>,
        now_ms: i64,
    ) -> Result<Incident, ActionError> {
        let (key, next) = self.on_live(id, note, |i, n| i.resolve(actor, n, now_ms))?;
        self.retire(&key, next.clone());
        Ok(next)
    }

    /// Adds `note` to incident `id`'s timeline, live or not; its state is
    /// unchanged and no receiver is told.
    pub fn note(
        &mut self,
        id: i64,
        actor: &str,
        note: &str,
        now_ms: i64,
    ) -> Result<Incident, ActionError> {
        if self.book.key_of(id).is_some() {
            let (key, next) = self.on_live(id, None, |i, _| i.note(actor, note, now_ms))?;
            self.book.update_live(&key, next.clone());
            return Ok(next);
        }
        let mut incident = self.store.incident(id)?;
        let n = incident.events.len();
        incident.note(actor, note, now_ms)?;
        self.commit(|tx| tx.save_incident(&mut incident, n))?;
        Ok(incident)
    }

    /// Makes `transition` (with `note`) on live incident `id` and commits it;
    /// returns its alert and the incident as it is now. An incident that is
    /// not live is not found, or refused for the state it is in.
    fn on_live(
        &mut self,
        id: i64,
        note: Option<String>,
        transition: impl Fn(&mut Incident, Option<String>) -> Result<(), InvalidTransition>,
    ) -> Result<(AlertKey, Incident), ActionError> {
        let Some(key) = self.book.key_of(id).cloned() else {
            return Err(self.not_live(id, |i| transition(i, None)));
        };
        let incident = self.book.live(&key).ok_or(ActionError::NotFound(id))?;
        let (mut next, n) = (incident.clone(), incident.events.len());
        transition(&mut next, note)?;
        self.commit(|tx| tx.save_incident(&mut next, n))?;
        Ok((key, next))
    }

    /// Resolves an open problem.
    pub fn resolve_problem(
        &mut self,
        id: i64,
        actor: &str,
        note: Option<String>,
        now_ms: i64,
    ) -> Result<Problem, ActionError> {
        let Some(fp) = self
            .problems
            .iter()
            .find(|(_, p)| p.id == id)
            .map(|(fp, _)| fp.clone())
        else {
            let p = self.store.problem(id)?;
            return Err(ActionError::ProblemConflict(format!(
                "problem {} is already {}",
                p.id,
                p.state.as_str()
            )));
        };
        let mut next = self.problems[&fp].clone();
        next.resolve(actor, note, now_ms)
            .map_err(ActionError::ProblemConflict)?;
        self.commit(|tx| tx.save_problem(&mut next))?;
        self.problems.remove(&fp);
        // The root cause is fixed: recurrence counts start over.
        self.recurrences.remove(&fp);
        self.metrics.problems_open.dec();
        tracing::info!(id, actor, "problem resolved");
        Ok(next)
    }

    /// Records a planned change.
    pub fn create_change(
        &mut self,
        new: NewChange,
        actor: &str,
        now_ms: i64,
    ) -> Result<Change, ActionError> {
        let scope = Scope::new(new.scope)
            .map_err(|(field, message)| ActionError::Invalid { field, message })?;
        let mut change = Change {
            id: 0,
            title: new.title,
            scope,
            start_ms: new.start_ms,
            end_ms: new.end_ms,
            verify_for: new.verify_for,
            outcome: None,
            outcome_note: None,
            created_by: actor.to_string(),
            created_at_ms: now_ms,
        };
        self.commit(|tx| tx.save_change(&mut change))?;
        tracing::info!(id = change.id, title = %change.title, actor, "change recorded");
        self.state
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .changes
            .push(PlannedSpan::from(&change));
        self.changes.push(change.clone());
        Ok(change)
    }

    /// The error for an action on an incident the engine does not hold live:
    /// not found, or the transition's refusal for the state it is in.
    pub(super) fn not_live(
        &self,
        id: i64,
        transition: impl FnOnce(&mut Incident) -> Result<(), InvalidTransition>,
    ) -> ActionError {
        let mut incident = match self.store.incident(id) {
            Ok(i) => i,
            Err(e) => return e.into(),
        };
        match transition(&mut incident) {
            Err(refused) => refused.into(),
            // Live in the store but not in the engine would be a bug.
            Ok(()) => {
                tracing::error!(id, "live incident missing from the engine's live set");
                ActionError::Store(StoreError::Corrupt(format!(
                    "incident {id} is live in the store but unknown to the engine"
                )))
            }
        }
    }
}
