//! Liveness: heartbeats (`absent_for`), availability timelines, stale
//! series swept on a host's own push, silent hosts forgotten and recalled,
//! host records and availability flushed every tick.

use super::*;

/// How often a host's series are looked at for staleness (on its own
/// pushes), and silent hosts for forgetting (on the tick).
pub(super) const SWEEP_EVERY_MS: i64 = 60_000;

/// A check status as a number: ok 0, warning 1, critical 2, unknown 3.
/// A check's availability: ok and warning are up (the service works),
/// critical is down, unknown says nothing.
pub(super) fn check_availability(s: Status) -> Avail {
    match s {
        Status::Ok | Status::Warning => Avail::Up,
        Status::Critical => Avail::Down,
        Status::Unknown => Avail::Unknown,
    }
}

/// Loads hosts, timelines and changes within the horizon into `state`,
/// records this run, and marks every subject that was not already unknown
/// as unknown from the last instant the previous run was alive: the
/// collector's own downtime is never counted as down. Returns the run's id
/// and the changes to persist.
pub(super) fn restore_availability(
    store: &mut Store,
    state: &RwLock<State>,
    now_ms: i64,
) -> Result<(i64, Vec<AvailabilityRow>), StoreError> {
    let since = now_ms - duration_ms(availability::HORIZON);
    store.prune_availability(since)?;
    let mut st = State::from_records(store.hosts()?);
    let mut points: HashMap<(String, String), Vec<(i64, Avail)>> = HashMap::new();
    for r in store.availability(since)? {
        points
            .entry((r.host, r.check))
            .or_default()
            .push((r.at_ms, r.state));
    }
    let (run, runs) = store.start_run(now_ms, since)?;
    let mut collector = Vec::new();
    for (i, &(started, alive)) in runs.iter().enumerate() {
        collector.push((started, Avail::Up));
        if i + 1 < runs.len() {
            collector.push((alive.max(started), Avail::Down));
        }
    }
    st.runs = Timeline::from_points(collector);
    let gap_from = runs
        .len()
        .checked_sub(2)
        .map(|i| runs[i].1.min(now_ms))
        .unwrap_or(now_ms);
    let mut unknown = Vec::new();
    for ((host, check), pts) in points {
        // Timelines of hosts the store no longer knows are dropped.
        let Some(h) = st.hosts.get_mut(&host) else {
            continue;
        };
        let h = Arc::make_mut(h);
        let mut tl = Timeline::from_points(pts);
        if let Some(at) = tl.set(Avail::Unknown, gap_from.max(tl.since().unwrap_or(gap_from))) {
            unknown.push(AvailabilityRow {
                host: host.clone(),
                check: check.clone(),
                at_ms: at,
                state: Avail::Unknown,
            });
        }
        h.set_timeline(check, tl);
    }
    st.changes = store
        .changes(false, usize::MAX >> 1)?
        .into_iter()
        .filter(|c| c.end_ms > since)
        .map(|c| PlannedSpan::from(&c))
        .collect();
    *state.write().unwrap_or_else(|p| p.into_inner()) = st;
    Ok((run, unknown))
}

pub(super) fn status_value(s: Status) -> f64 {
    match s {
        Status::Ok => 0.0,
        Status::Warning => 1.0,
        Status::Critical => 2.0,
        Status::Unknown => 3.0,
    }
}

impl Engine {
    /// Releases the host's series not reported for `forget_series_after`,
    /// at most once a minute and on the host's own push, so a series it
    /// stopped sending frees its slot. Their alerts go too, unless an
    /// incident is live for them.
    pub(super) fn sweep_host(&mut self, st: &mut State, host: &str, now_ms: i64) {
        let Some(h) = st.hosts.get_mut(host) else {
            return;
        };
        if now_ms.saturating_sub(h.swept_ms) < SWEEP_EVERY_MS {
            return;
        }
        let h = Arc::make_mut(h);
        h.swept_ms = now_ms;
        let stale_before = now_ms.saturating_sub(duration_ms(self.bounds.forget_series_after));
        let gone = h.sweep(stale_before);
        st.series_total = st.series_total.saturating_sub(gone.len());
        for (name, labels) in gone {
            for &r in self.index.by_metric.get(&name).into_iter().flatten() {
                let key = AlertKey {
                    rule: r,
                    host: host.to_string(),
                    labels: labels.clone(),
                };
                if !self.book.is_live(&key) {
                    self.alerts.remove(&key);
                }
            }
        }
    }

    /// Forgets hosts silent past `forget_hosts_after`, once a minute: their
    /// series, checks, availability and rule caches leave memory, their
    /// record leaves the store, and their slots (series, hosts per token)
    /// are free again. A live incident of theirs (host_down) stays live and
    /// resolves if the host comes back.
    pub(super) fn forget_hosts(&mut self, now_ms: i64) {
        if now_ms.saturating_sub(self.forgot_at_ms) < SWEEP_EVERY_MS {
            return;
        }
        self.forgot_at_ms = now_ms;
        let silent_ms = duration_ms(self.bounds.forget_hosts_after);
        let state = Arc::clone(&self.state);
        let mut guard = state.write().unwrap_or_else(|p| p.into_inner());
        let st = &mut *guard;
        let gone: Vec<String> = st
            .hosts
            .iter()
            .filter(|(_, h)| now_ms.saturating_sub(h.last_seen_ms) >= silent_ms)
            .map(|(n, _)| n.clone())
            .collect();
        if gone.is_empty() {
            return;
        }
        for name in &gone {
            let Some(h) = st.hosts.remove(name) else {
                continue;
            };
            st.series_total = st.series_total.saturating_sub(h.series_len());
            if let Some(t) = h.token {
                if let Some(n) = st.hosts_per_token.get_mut(&t) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        st.hosts_per_token.remove(&t);
                    }
                }
            }
            self.host_rules.remove(name);
        }
        drop(guard);
        let names: HashSet<&str> = gone.iter().map(String::as_str).collect();
        self.alerts
            .retain(|k, _| !names.contains(k.host.as_str()) || self.book.is_live(k));
        self.suppressed
            .retain(|k, _| !names.contains(k.host.as_str()));
        tracing::info!(
            hosts = gone.len(),
            "forgot hosts silent past forget_hosts_after"
        );
    }

    /// A host that is not in memory (new, or forgotten) as the store
    /// remembers it: its run identity (so exactly-once holds across
    /// forgetting) and its availability within the horizon (so an outage
    /// longer than `forget_hosts_after` still counts when it comes back).
    pub(super) fn recall(&self, host: &str, now_ms: i64) -> Option<HostState> {
        let recalled = self.store.host(host).and_then(|record| {
            let Some(record) = record else {
                return Ok(None);
            };
            let since = now_ms.saturating_sub(duration_ms(availability::HORIZON));
            let rows = self.store.availability_of(host, since)?;
            Ok(Some((record, rows)))
        });
        let (record, rows) = match recalled {
            Ok(found) => found?,
            Err(e) => {
                tracing::warn!(host, error = %e, "reading a returning host's record failed; it starts afresh");
                return None;
            }
        };
        let mut h = HostState::from_record(record);
        let mut points: HashMap<String, Vec<(i64, Avail)>> = HashMap::new();
        for r in rows {
            points.entry(r.check).or_default().push((r.at_ms, r.state));
        }
        for (check, pts) in points {
            h.set_timeline(check, Timeline::from_points(pts));
        }
        Some(h)
    }

    /// Hosts silent past the heartbeat limit go down, from the first push
    /// they missed (a late push within the limit is no outage); what their
    /// checks do then is unknown. A host restored from the store gets the
    /// limit counted from the collector's start, like `absent_for`.
    pub(super) fn heartbeats(&mut self, now_ms: i64) {
        let state = Arc::clone(&self.state);
        let mut st = state.write().unwrap_or_else(|p| p.into_inner());
        for (name, h) in st.hosts.iter_mut() {
            if h.up.current() == Avail::Down {
                continue;
            }
            let limit = self
                .heartbeat
                .map_or(3 * h.interval_ms.max(1000), duration_ms);
            if now_ms.saturating_sub(h.last_seen_ms.max(self.grace_from_ms)) < limit {
                continue;
            }
            let at = h
                .last_seen_ms
                .saturating_add(h.interval_ms.max(1000))
                .max(self.grace_from_ms)
                .min(now_ms);
            // Copied only now, if a snapshot holds it: most hosts are skipped above.
            let h = Arc::make_mut(h);
            if let Some(at) = h.up.set(Avail::Down, at) {
                self.availability.push(AvailabilityRow {
                    host: name.clone(),
                    check: String::new(),
                    at_ms: at,
                    state: Avail::Down,
                });
            }
            for (check, tl) in h.check_up.iter_mut() {
                if let Some(at) = tl.set(Avail::Unknown, at) {
                    self.availability.push(AvailabilityRow {
                        host: name.clone(),
                        check: check.clone(),
                        at_ms: at,
                        state: Avail::Unknown,
                    });
                }
            }
        }
        // Changes no window can see any more are dropped hourly.
        let horizon = duration_ms(availability::HORIZON);
        if now_ms - self.pruned_at_ms >= 3_600_000 {
            self.pruned_at_ms = now_ms;
            // First, services' finished days outlive the changes they come from.
            let days = crate::kpi::service_days(&self.metrics.reporting(), &st, now_ms);
            if let Err(e) = self.store.record_service_days(&days, now_ms) {
                self.metrics
                    .engine_errors
                    .with_label_values(&[Stage::Prune.as_str()])
                    .inc();
                tracing::warn!(error = %e, "recording services' finished days failed; retried in an hour");
            }
            for h in st.hosts.values_mut() {
                let h = Arc::make_mut(h);
                h.up.prune(now_ms - horizon);
                h.check_up
                    .values_mut()
                    .for_each(|t| t.prune(now_ms - horizon));
            }
            st.runs.prune(now_ms - horizon);
            st.changes.retain(|c| c.end_ms > now_ms - horizon);
            // Records of hosts forgotten and silent past the horizon: no
            // window shows them, and an attacker's made-up hosts go too.
            let forgotten_ms = horizon.max(duration_ms(self.bounds.forget_hosts_after));
            if let Err(e) = self.store.prune_hosts(now_ms.saturating_sub(forgotten_ms)) {
                self.metrics
                    .engine_errors
                    .with_label_values(&[Stage::Prune.as_str()])
                    .inc();
                tracing::warn!(error = %e, "pruning long-forgotten hosts failed; retried in an hour");
            }
            // The store too, or a collector that never restarts keeps every
            // change it ever saw on disk.
            if let Err(e) = self.store.prune_availability(now_ms - horizon) {
                self.metrics
                    .engine_errors
                    .with_label_values(&[Stage::Prune.as_str()])
                    .inc();
                tracing::warn!(error = %e, "pruning old availability changes failed; retried in an hour");
            }
        }
    }

    /// Persists hosts changed since the last flush and availability changes,
    /// and marks this run alive, in one transaction. If the store refuses
    /// it, each part is written on its own so that one bad row costs only
    /// itself: the alive mark, every other host and every other availability
    /// change still land. What fails stays pending for the next flush.
    pub fn flush_hosts(&mut self, now_ms: i64) -> Result<(), StoreError> {
        let state = Arc::clone(&self.state);
        let mut st = state.write().unwrap_or_else(|p| p.into_inner());
        let dirty: Vec<_> = st
            .hosts
            .iter()
            .filter(|(_, h)| h.dirty)
            .map(|(n, h)| h.record(n))
            .collect();
        let (run, now) = (self.run, now_ms);
        let rows = std::mem::take(&mut self.availability);
        let written = self.commit(|tx| {
            tx.save_hosts(&dirty)?;
            tx.insert_availability(&rows)?;
            tx.mark_alive(run, now)
        });
        let e = match written {
            Ok(()) => {
                for h in st.hosts.values_mut().filter(|h| h.dirty) {
                    Arc::make_mut(h).dirty = false;
                }
                drop(st);
                if !self.faults.is_empty() {
                    self.succeeded(Subject::Run);
                    self.succeeded(Subject::Availability);
                    for r in &dirty {
                        self.succeeded(Subject::Host(r.host.clone()));
                    }
                }
                return Ok(());
            }
            Err(e) => e,
        };
        if !e.is_refusal() {
            // The store is out (disk full, I/O): nothing would land one by one.
            drop(st);
            self.availability = rows;
            self.failed(Stage::Flush, Subject::Run, &e);
            return Err(e);
        }
        // One row spoiled the transaction: write each on its own.
        let mut first = None;
        let alive = self.commit(|tx| tx.mark_alive(run, now));
        for r in &dirty {
            match self.commit(|tx| tx.save_hosts(std::iter::once(r))) {
                Ok(()) => {
                    if let Some(h) = st.hosts.get_mut(&r.host) {
                        Arc::make_mut(h).dirty = false;
                    }
                }
                Err(e) => {
                    first.get_or_insert((Subject::Host(r.host.clone()), e));
                }
            }
        }
        drop(st);
        let mut kept = Vec::new();
        for r in rows {
            if let Err(e) = self.commit(|tx| tx.insert_availability(std::iter::once(&r))) {
                if !e.is_refusal() {
                    kept.push(r);
                }
                // A row the store refuses would be refused again: dropped
                // (counted and logged), so it cannot hold the others back.
                first.get_or_insert((Subject::Availability, e));
            }
        }
        self.availability = kept;
        if let Err(e) = alive {
            self.failed(Stage::Flush, Subject::Run, &e);
            return Err(e);
        }
        self.succeeded(Subject::Run);
        match first {
            Some((subject, e)) => {
                self.failed(Stage::Flush, subject, &e);
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// Hosts silent past their heartbeat rules' `absent_for` (counted from
    /// no earlier than the collector's start).
    pub(super) fn silences_due(&mut self, st: &State, now_ms: i64, fired: &mut Vec<Fired>) {
        for (name, h) in &st.hosts {
            let (labels, last_seen_ms, interval_ms) = (&h.labels, h.last_seen_ms, h.interval_ms);
            // Every batch refreshes the host's cached rule set; a host
            // restored from the store but not heard from yet has none.
            let cached = self
                .host_rules
                .get(name)
                .filter(|c| c.labels == *labels)
                .map(|c| Arc::clone(&c.applies));
            for &r in &self.index.absent_rules {
                let RuleKind::Absent { after } = self.rules[r].kind else {
                    continue;
                };
                let applies = match &cached {
                    Some(a) => a[r],
                    None => self.rules[r].selector.matches_host(name, labels),
                };
                if !applies {
                    continue;
                }
                let key = AlertKey {
                    rule: r,
                    host: name.clone(),
                    labels: Labels::new(),
                };
                let before = self.alerts.get(&key).copied();
                let alert = self.alerts.entry(key.clone()).or_default();
                let last_seen = last_seen_ms.max(self.grace_from_ms);
                let verdict =
                    rules::absent(after, &mut alert.state, last_seen, interval_ms, now_ms);
                if alert.state == AlertState::Inactive {
                    self.alerts.remove(&key);
                }
                if verdict != Verdict::Nothing {
                    let silent = (now_ms.saturating_sub(last_seen_ms) / 1000).max(0) as u64;
                    fired.push(Fired {
                        detail: Detail {
                            host_labels: labels.clone(),
                            description: format!(
                                "{name} has sent nothing for {}",
                                humantime::format_duration(Duration::from_secs(silent))
                            ),
                            ..Detail::default()
                        },
                        key,
                        before,
                        outcome: Outcome {
                            verdict,
                            flapping: None,
                        },
                        percent: 0.0,
                    });
                }
            }
        }
    }
}
