//! `[discovery]`: the consumer groups watched without being listed, and the topics read
//! as streams of their own without being configured, chosen by name.

use std::time::Duration;

use pipewatch_core::{DiscoverySpec, EventTimeSource, Extractor, StreamSpec, TopicDiscoverySpec, ValueFormat};
use regex::Regex;

use super::problems::Problems;
use super::raw::{default_group_excludes, default_topic_excludes, RawConfig, RawPatterns};

/// `[discovery]`, validated.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    pub every: Duration,
    /// How often each discovered group's committed offsets are read (spread over the ticks).
    pub poll: Duration,
    /// Per-partition series for discovered consumers (else per stream only: hundreds of
    /// groups on thousands of partitions would be millions of series).
    pub partition_series: bool,
    /// The groups discovered (`None`: topics only).
    pub groups: Option<Patterns>,
    pub spec: DiscoverySpec,
    /// The topics discovered, and the stream each becomes.
    pub topics: Option<(Patterns, TopicDiscoverySpec)>,
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

pub(super) fn discovery_config(raw: &RawConfig, skew: Duration, p: &mut Problems) -> Option<DiscoveryConfig> {
    let d = raw.discovery.as_ref()?;
    let every = p.positive_duration("discovery.every", &d.every);
    let poll = p.positive_duration("discovery.poll", &d.poll);
    let forget_after = p.positive_duration("discovery.forget_after", &d.forget_after);
    let max_lag = p.positive_duration("discovery.max_lag", &d.max_lag);
    let max_stall = p.positive_duration("discovery.max_stall", &d.max_stall);
    if d.max_groups == 0 {
        p.add("discovery.max_groups", "must be at least 1");
    }
    if d.groups.is_none() && d.topics.is_none() {
        p.add(
            "discovery.groups",
            "say which consumer groups (or topics) to discover: groups = { include = [\"^analytics-\"] } (include = [] for every group), topics = { include = [\"^shop\\\\.\"] }",
        );
        return None;
    }
    let groups = d.groups.as_ref().map(|g| patterns("discovery.groups", g, default_group_excludes, p));
    let topics = d.topics.as_ref().map(|t| {
        let names = patterns("discovery.topics", t, default_topic_excludes, p);
        let max_silence = p.positive_duration("discovery.max_silence", &d.max_silence);
        let max_record_delay = p.positive_duration("discovery.max_record_delay", &d.max_record_delay);
        if d.max_topics == 0 {
            p.add("discovery.max_topics", "must be at least 1");
        }
        let template = StreamSpec {
            name: String::new(),
            topics: Vec::new(),
            topic_pattern: None,
            value_format: ValueFormat::Json,
            message: None,
            extractor: Extractor::new(EventTimeSource::KafkaTimestamp, skew.as_millis() as i64),
            max_silence_ms: max_silence.as_millis() as i64,
            max_record_delay_ms: max_record_delay.as_millis() as i64,
            min_rate: None,
            max_rate: None,
            baseline: None,
            segments: Vec::new(),
            max_segment_values: 0,
        };
        (names, TopicDiscoverySpec { template, max_topics: d.max_topics })
    });
    Some(DiscoveryConfig {
        every,
        poll,
        partition_series: d.partition_series,
        groups,
        topics,
        spec: DiscoverySpec {
            max_groups: d.max_groups,
            forget_after_ms: forget_after.as_millis() as i64,
            max_lag_ms: max_lag.as_millis() as i64,
            max_stall_ms: max_stall.as_millis() as i64,
        },
    })
}

/// `raw` compiled; without an `exclude`, `default_exclude`'s.
fn patterns(key: &str, raw: &RawPatterns, default_exclude: fn() -> Vec<String>, p: &mut Problems) -> Patterns {
    let exclude = raw.exclude.clone().unwrap_or_else(default_exclude);
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
    Patterns { include: compile(&raw.include, "include"), exclude: compile(&exclude, "exclude") }
}
