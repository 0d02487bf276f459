//! What agents can make the collector hold: a batch that would take its
//! host or the collector past a limit is refused whole, counted, and logged
//! once per host and limit.

use super::*;

impl Engine {
    /// Refuses a batch that would take its host or the collector past a
    /// limit. Counting new series is skipped when even all-new could not.
    pub(super) fn check_limits(
        &self,
        st: &State,
        host: Option<&HostState>,
        batch: &Batch,
        token: Option<u64>,
    ) -> Result<(), Limited> {
        if let Some(t) = token {
            self.check_hosts_per_token(st, host, &batch.agent.host, t)?;
        }
        self.check_series(st, host, batch)?;
        self.check_checks(host, batch)
    }

    /// A token may bring in at most `hosts_per_token` hosts.
    fn check_hosts_per_token(
        &self,
        st: &State,
        host: Option<&HostState>,
        name: &str,
        t: u64,
    ) -> Result<(), Limited> {
        let limits = &self.bounds.limits;
        let admitted = st.hosts_per_token.get(&t).copied().unwrap_or(0);
        if host.is_none_or(|h| h.token.is_none()) && admitted >= limits.hosts_per_token {
            return Err(Limited {
                limit: Limit::HostsPerToken,
                field: Some("agent.host"),
                message: format!(
                    "this agent token has brought in {admitted} hosts, the most limits.hosts_per_token allows; \
                     host {name} is refused until some are forgotten (silent past forget_hosts_after) \
                     or the collector's limit is raised"
                ),
            });
        }
        Ok(())
    }

    /// New series may not take the host past `series_per_host`, nor the
    /// collector past `series_total` unless the host is within its share.
    fn check_series(
        &self,
        st: &State,
        host: Option<&HostState>,
        batch: &Batch,
    ) -> Result<(), Limited> {
        let limits = &self.bounds.limits;
        let name = batch.agent.host.as_str();
        let in_memory = st.hosts.contains_key(name);
        let have = host.map_or(0, HostState::series_len);
        let n = batch.samples.len();
        if have + n > limits.series_per_host || st.series_total + n > limits.series_total {
            let new: HashSet<(&str, &Labels)> = batch
                .samples
                .iter()
                .filter(|s| !host.is_some_and(|h| h.has_series(&s.name, &s.labels)))
                .map(|s| (s.name.as_str(), &s.labels))
                .collect();
            if have + new.len() > limits.series_per_host {
                return Err(Limited {
                    limit: Limit::SeriesPerHost,
                    field: Some("samples"),
                    message: format!(
                        "host {name} would have {} live series, over limits.series_per_host ({}); \
                         send fewer distinct series (one not reported for forget_series_after is released) \
                         or raise the collector's limit",
                        have + new.len(),
                        limits.series_per_host
                    ),
                });
            }
            // Past the total, a known host may still add series up to its
            // fair share of it (the total over the hosts), so one host or
            // token filling the collector cannot stop the others from, say,
            // reporting a new filesystem; what the collector holds stays
            // under twice the total.
            let share = limits.series_total / st.hosts.len().max(1);
            let within_share = in_memory && have + new.len() <= share;
            if st.series_total + new.len() > limits.series_total && !within_share {
                return Err(Limited {
                    limit: Limit::SeriesTotal,
                    field: Some("samples"),
                    message: format!(
                        "the collector holds {} live series and {} more would pass limits.series_total ({}), \
                         and host {name} would hold more than its share of it ({share}); \
                         retry later (silent hosts are forgotten after forget_hosts_after) or raise the limit",
                        st.series_total,
                        new.len(),
                        limits.series_total
                    ),
                });
            }
        }
        Ok(())
    }

    /// New check names may not take the host past `checks_per_host`.
    fn check_checks(&self, host: Option<&HostState>, batch: &Batch) -> Result<(), Limited> {
        let limits = &self.bounds.limits;
        let name = batch.agent.host.as_str();
        let have = host.map_or(0, |h| h.check_up.len());
        if have + batch.checks.len() > limits.checks_per_host {
            let new: HashSet<&str> = batch
                .checks
                .iter()
                .filter(|c| !host.is_some_and(|h| h.check_up.contains_key(&c.name)))
                .map(|c| c.name.as_str())
                .collect();
            if have + new.len() > limits.checks_per_host {
                return Err(Limited {
                    limit: Limit::ChecksPerHost,
                    field: Some("checks"),
                    message: format!(
                        "host {name} would have reported {} distinct checks, over limits.checks_per_host ({}); \
                         use fewer check names or raise the collector's limit",
                        have + new.len(),
                        limits.checks_per_host
                    ),
                });
            }
        }
        Ok(())
    }

    /// Logs a push refused over a limit once per host and limit (a flood
    /// would otherwise write a line per push); every refusal is counted.
    pub(super) fn refused(&mut self, host: &str, l: &Limited) {
        if self.over_limit.get(host) == Some(&l.limit) {
            return;
        }
        if self.over_limit.len() < FAULTS_CAP {
            self.over_limit.insert(host.to_string(), l.limit);
        }
        tracing::warn!(
            host,
            limit = l.limit.as_str(),
            "push refused over a limit (logged once until the host's pushes fit again): {l}"
        );
    }

    /// Refuses a webhook call that would make more rules for Alertmanager's
    /// alert names, or more live incidents from them, than the limits allow.
    pub(super) fn check_external_limits(&self, alerts: &[ExternalAlert]) -> Result<(), Limited> {
        let limits = &self.bounds.limits;
        let mut new_names = HashSet::new();
        let mut new_live = HashSet::new();
        for a in alerts.iter().filter(|a| a.firing) {
            let Some((name, host, labels)) = external_identity(a) else {
                continue;
            };
            let rule = self.index.names.find(name, true);
            if rule.is_none() {
                new_names.insert(name);
            }
            let live = rule.is_some_and(|rule| {
                self.book.is_live(&AlertKey {
                    rule,
                    host: host.clone(),
                    labels: labels.clone(),
                })
            });
            if !live {
                new_live.insert((name, host, labels));
            }
        }
        let rules = self.index.names.external.len();
        if rules + new_names.len() > limits.external_rules {
            return Err(Limited {
                limit: Limit::ExternalRules,
                field: Some("alerts"),
                message: format!(
                    "{} alert names are known and {} new ones would pass limits.external_rules ({}); \
                     raise the collector's limit or send fewer distinct alertnames",
                    rules,
                    new_names.len(),
                    limits.external_rules
                ),
            });
        }
        let live = self.book.count_live(Origin::Alertmanager);
        if live + new_live.len() > limits.external_alerts {
            return Err(Limited {
                limit: Limit::ExternalAlerts,
                field: Some("alerts"),
                message: format!(
                    "{live} incidents from Alertmanager are live and {} more would pass limits.external_alerts ({}); \
                     retry later or raise the collector's limit",
                    new_live.len(),
                    limits.external_alerts
                ),
            });
        }
        Ok(())
    }
}
