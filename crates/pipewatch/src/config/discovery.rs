//! `[discovery]`: the consumer groups watched without being listed, chosen by name.

use std::time::Duration;

use pipewatch_core::DiscoverySpec;
use regex::Regex;

use super::problems::Problems;
use super::raw::{RawConfig, RawPatterns};

/// `[discovery]`, validated.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    pub every: Duration,
    /// How often each discovered group's committed offsets are read (spread over the ticks).
    pub poll: Duration,
    /// Per-partition series for discovered consumers (else per stream only: hundreds of
    /// groups on thousands of partitions would be millions of series).
    pub partition_series: bool,
    pub groups: Patterns,
    pub spec: DiscoverySpec,
}

/// Names matched by regular expressions: any of `include` (every name when there is
/// none) and none of `exclude`.
#[derive(Debug, Clone)]
pub struct Patterns {
    pub include: Vec<Regex>,
    pub exclude: Vec<Regex>,
}

impl Patterns {
    pub fn matches(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|r| r.is_match(name)))
            && !self.exclude.iter().any(|r| r.is_match(name))
    }
}

pub(super) fn discovery_config(raw: &RawConfig, p: &mut Problems) -> Option<DiscoveryConfig> {
    let d = raw.discovery.as_ref()?;
    let every = p.positive_duration("discovery.every", &d.every);
    let poll = p.positive_duration("discovery.poll", &d.poll);
    let forget_after = p.positive_duration("discovery.forget_after", &d.forget_after);
    let max_lag = p.positive_duration("discovery.max_lag", &d.max_lag);
    let max_stall = p.positive_duration("discovery.max_stall", &d.max_stall);
    if d.max_groups == 0 {
        p.add("discovery.max_groups", "must be at least 1");
    }
    let Some(groups) = &d.groups else {
        p.add(
            "discovery.groups",
            "say which consumer groups to discover: groups = { include = [\"^analytics-\"] } (include = [] for every group)",
        );
        return None;
    };
    let groups = patterns("discovery.groups", groups, p);
    Some(DiscoveryConfig {
        every,
        poll,
        partition_series: d.partition_series,
        groups,
        spec: DiscoverySpec {
            max_groups: d.max_groups,
            forget_after_ms: forget_after.as_millis() as i64,
            max_lag_ms: max_lag.as_millis() as i64,
            max_stall_ms: max_stall.as_millis() as i64,
        },
    })
}

fn patterns(key: &str, raw: &RawPatterns, p: &mut Problems) -> Patterns {
    let mut compile = |list: &[String], which: &str| -> Vec<Regex> {
        list.iter()
            .enumerate()
            .filter_map(|(i, r)| {
                Regex::new(r)
                    .map_err(|e| {
                        p.add(format!("{key}.{which}[{i}]"), format!("{r:?} is not a regular expression: {e}"))
                    })
                    .ok()
            })
            .collect()
    };
    Patterns { include: compile(&raw.include, "include"), exclude: compile(&raw.exclude, "exclude") }
}
