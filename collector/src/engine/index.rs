//! Which rules look at which samples: rules by metric, by check name (exact
//! or glob), heartbeat rules, and by name (constant-time lookups, so start
//! and reload stay linear); which rules apply to each host, cached until
//! its labels change.

use super::*;

/// Which rules apply to one host, cached until its labels change.
#[derive(Debug, Clone)]
pub(super) struct HostRules {
    pub(super) labels: Labels,
    pub(super) applies: Arc<[bool]>,
}

/// Which rules look at which samples, and the rules by name.
pub(super) struct RuleIndex {
    pub(super) by_metric: HashMap<String, Vec<usize>>,
    pub(super) check_exact: HashMap<String, Vec<usize>>,
    pub(super) check_globs: Vec<usize>,
    pub(super) absent_rules: Vec<usize>,
    pub(super) names: RuleNames,
}

/// Rules by name, the configured ones and those made for Alertmanager's
/// alert names apart (the two may share a name): lookups stay constant
/// time however many rules there are, so start and reload stay linear.
#[derive(Default)]
pub(super) struct RuleNames {
    pub(super) configured: HashMap<Arc<str>, usize>,
    pub(super) external: HashMap<Arc<str>, usize>,
}

impl RuleNames {
    pub(super) fn insert(&mut self, i: usize, r: &Rule) {
        let map = match r.kind {
            RuleKind::External => &mut self.external,
            _ => &mut self.configured,
        };
        map.insert(Arc::clone(&r.name), i);
    }

    pub(super) fn find(&self, name: &str, external: bool) -> Option<usize> {
        if external {
            self.external.get(name).copied()
        } else {
            self.configured.get(name).copied()
        }
    }
}

impl RuleIndex {
    pub(super) fn of(rules: &[Rule]) -> RuleIndex {
        let mut ix = RuleIndex {
            by_metric: HashMap::new(),
            check_exact: HashMap::new(),
            check_globs: Vec::new(),
            absent_rules: Vec::new(),
            names: RuleNames::default(),
        };
        for (i, r) in rules.iter().enumerate() {
            ix.names.insert(i, r);
            match &r.kind {
                RuleKind::Threshold(t) => ix.by_metric.entry(t.metric.clone()).or_default().push(i),
                RuleKind::Check(c) => match &c.exact {
                    Some(name) => ix.check_exact.entry(name.clone()).or_default().push(i),
                    None => ix.check_globs.push(i),
                },
                RuleKind::Absent { .. } => ix.absent_rules.push(i),
                RuleKind::External => {}
            }
        }
        ix
    }
}

/// Moves `map`'s entries to the keys `remap` gives them; returns the values
/// whose key has none (their rule was removed).
pub(super) fn rekey<V>(
    map: &mut HashMap<AlertKey, V>,
    remap: impl Fn(AlertKey) -> Option<AlertKey>,
) -> Vec<V> {
    let mut dropped = Vec::new();
    for (k, v) in std::mem::take(map) {
        match remap(k) {
            Some(k) => {
                map.insert(k, v);
            }
            None => dropped.push(v),
        }
    }
    dropped
}

impl Engine {
    /// Which rules apply to `host` (cached; recomputed when its labels change).
    pub(super) fn host_rules(&mut self, host: &str, labels: &Labels) -> Arc<[bool]> {
        if let Some(h) = self.host_rules.get(host) {
            if h.labels == *labels {
                return Arc::clone(&h.applies);
            }
        }
        let applies: Arc<[bool]> = self
            .rules
            .iter()
            .map(|r| r.selector.matches_host(host, labels))
            .collect();
        self.host_rules.insert(
            host.to_string(),
            HostRules {
                labels: labels.clone(),
                applies: Arc::clone(&applies),
            },
        );
        applies
    }
}
