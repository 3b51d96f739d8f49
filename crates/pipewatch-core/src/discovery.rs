//! Discovery of consumer groups: every group whose name `[discovery]` matches and whose
//! committed offsets cover a watched stream's topic is watched as a consumer of those
//! streams, named by its group id, with the discovery's `max_lag` and `max_stall`. A
//! `[[consumer]]` (or a Kafka Connect sink) with the same group is that consumer, once.
//!
//! The source lists the cluster's groups every `every` and reads each matching group's
//! committed topics ([`GroupListing`]); the monitor decides what is watched
//! ([`Monitor::groups_listed`]) and tells the source which groups to read from now on
//! ([`Monitor::take_group_changes`]). At most `max_groups` are watched: the ones found
//! first are kept, the rest are counted and named (the overflow). A watched group whose
//! offsets disappear (deleted, expired) is `group_unknown` for `forget_after`, then
//! forgotten: its series go, the status says when.

use serde::Serialize;

use crate::consumer::{ConsumerState, Origin};
use crate::monitor::Monitor;
use crate::spec::ConsumerSpec;
use crate::time::Millis;

/// `[discovery]`'s settings for the groups it finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverySpec {
    /// Groups watched at most; the rest are the overflow.
    pub max_groups: usize,
    /// How long a group whose offsets disappeared stays `group_unknown`.
    pub forget_after_ms: Millis,
    pub max_lag_ms: Millis,
    pub max_stall_ms: Millis,
}

/// What one listing of the cluster's groups found: each group that matches the
/// discovery's names, with the topics it has committed offsets on (any topic; the monitor
/// keeps the watched ones), or why the groups could not be listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub groups: Result<Vec<(String, Vec<String>)>, String>,
}

/// A group the source reads from now on: a consumer's index (as the monitor holds them)
/// and the topics of its streams; no topics: read no more (forgotten).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChange {
    pub consumer: usize,
    pub group: String,
    pub streams: Vec<usize>,
}

/// The overflow is named up to this many groups (and counted in full).
pub const OVERFLOW_NAMED: usize = 50;
/// The forgotten groups the status names, the latest.
pub const FORGOTTEN_NAMED: usize = 50;

/// The discovery as the status shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DiscoverySnapshot {
    /// When the groups were last listed successfully.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listed_at_ms: Option<Millis>,
    /// Why the last listing failed, while it fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Discovered groups watched now (counted at each snapshot).
    pub watched: usize,
    pub max_groups: usize,
    /// Groups that match and read a watched stream but are not watched: beyond
    /// `max_groups`.
    pub overflow: usize,
    /// The first of them, by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overflow_groups: Vec<String>,
    /// Groups forgotten (their offsets gone for `forget_after`), the latest last.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forgotten: Vec<ForgottenGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForgottenGroup {
    pub group: String,
    pub at_ms: Millis,
}

/// The discovery's state in the monitor.
#[derive(Debug, Clone)]
pub(crate) struct Discovery {
    pub(crate) spec: DiscoverySpec,
    pub(crate) snapshot: DiscoverySnapshot,
    pub(crate) changes: Vec<GroupChange>,
}

impl Monitor {
    /// Discovers consumer groups with these settings from now on.
    pub fn set_discovery(&mut self, spec: DiscoverySpec) {
        let snapshot = DiscoverySnapshot { max_groups: spec.max_groups, ..DiscoverySnapshot::default() };
        self.discovery = Some(Discovery { spec, snapshot, changes: Vec::new() });
    }

    /// A listing of the cluster's groups: each matching group that has committed offsets
    /// on a watched stream's topic and is not watched yet is watched (while fewer than
    /// `max_groups` are); a discovered group that reads more streams now reads them too.
    pub fn groups_listed(&mut self, listing: GroupListing, now: Millis) {
        let Some(d) = self.discovery.as_mut() else { return };
        let groups = match listing.groups {
            Ok(g) => g,
            Err(e) => {
                d.snapshot.error = Some(e);
                return;
            }
        };
        (d.snapshot.error, d.snapshot.listed_at_ms) = (None, Some(now));
        let mut found: Vec<(String, Vec<usize>)> = groups
            .into_iter()
            .filter_map(|(group, topics)| {
                let streams: Vec<usize> = self
                    .streams
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.topics.iter().any(|t| topics.iter().any(|g| *g == *t.name)))
                    .map(|(i, _)| i)
                    .collect();
                (!streams.is_empty()).then_some((group, streams))
            })
            .collect();
        found.sort();
        let spec = d.spec.clone();
        let (mut overflow, mut changes) = (Vec::new(), Vec::new());
        for (group, streams) in found {
            let watching = self.consumers.iter().position(|c| c.spec.group == group);
            match watching {
                Some(i) if self.consumers[i].origin != Origin::Discovery => {} // listed, or a sink
                Some(i) if self.consumers[i].forgotten_at.is_none() => {
                    let c = &mut self.consumers[i];
                    let more: Vec<usize> = streams.into_iter().filter(|s| !c.spec.streams.contains(s)).collect();
                    if !more.is_empty() {
                        c.spec.streams.extend(more);
                        c.spec.streams.sort_unstable();
                        changes.push(GroupChange { consumer: i, group, streams: c.spec.streams.clone() });
                    }
                }
                _ if self.discovered_watched() >= spec.max_groups => overflow.push(group),
                found => {
                    // new, or forgotten and back: the same consumer (and name) again
                    let name = match found {
                        Some(i) => self.consumers[i].spec.name.clone(),
                        None if self.consumers.iter().any(|c| c.spec.name == group) => format!("group:{group}"),
                        None => group.clone(),
                    };
                    let consumer = ConsumerSpec {
                        name,
                        group,
                        streams,
                        max_lag_ms: spec.max_lag_ms,
                        max_stall_ms: spec.max_stall_ms,
                    };
                    let state = ConsumerState::new(consumer, Origin::Discovery, now);
                    let i = found.unwrap_or(self.consumers.len());
                    changes.push(GroupChange {
                        consumer: i,
                        group: state.spec.group.clone(),
                        streams: state.spec.streams.clone(),
                    });
                    match found {
                        Some(i) => self.consumers[i] = state,
                        None => self.consumers.push(state),
                    }
                }
            }
        }
        for change in &changes {
            self.index_streams(&change.streams);
        }
        if let Some(d) = self.discovery.as_mut() {
            d.changes.extend(changes);
            d.snapshot.overflow = overflow.len();
            overflow.truncate(OVERFLOW_NAMED);
            d.snapshot.overflow_groups = overflow;
        }
    }

    /// The groups the source reads from now on, or no more, since last asked.
    pub fn take_group_changes(&mut self) -> Vec<GroupChange> {
        self.discovery.as_mut().map(|d| std::mem::take(&mut d.changes)).unwrap_or_default()
    }

    /// At a tick: a discovered group whose offsets have been gone for `forget_after` is
    /// forgotten (its slot stays, so that the consumers' indexes do).
    pub(crate) fn forget_gone_groups(&mut self, now: Millis) {
        let Some(d) = self.discovery.as_mut() else { return };
        let after = d.spec.forget_after_ms;
        for (i, c) in self.consumers.iter_mut().enumerate() {
            let gone = c.unknown_since.is_some_and(|since| now - since >= after);
            if c.origin != Origin::Discovery || c.forgotten_at.is_some() || !gone {
                continue;
            }
            c.forgotten_at = Some(now);
            c.committed.clear();
            c.resolved.clear();
            d.changes.push(GroupChange { consumer: i, group: c.spec.group.clone(), streams: Vec::new() });
            d.snapshot.forgotten.push(ForgottenGroup { group: c.spec.group.clone(), at_ms: now });
            if d.snapshot.forgotten.len() > FORGOTTEN_NAMED {
                d.snapshot.forgotten.remove(0);
            }
        }
    }

    pub(crate) fn discovery_snapshot(&self) -> Option<DiscoverySnapshot> {
        let d = self.discovery.as_ref()?;
        Some(DiscoverySnapshot { watched: self.discovered_watched(), ..d.snapshot.clone() })
    }

    fn discovered_watched(&self) -> usize {
        self.consumers.iter().filter(|c| c.origin == Origin::Discovery && c.forgotten_at.is_none()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::ConsumerCause;
    use crate::monitor::tests::{committed, monitor, spec, SEC, T0};
    use crate::spec::StartPosition;

    const DISCOVERY: DiscoverySpec =
        DiscoverySpec { max_groups: 2, forget_after_ms: 3600 * SEC, max_lag_ms: 60 * SEC, max_stall_ms: 120 * SEC };

    fn listing(groups: &[(&str, &[&str])]) -> GroupListing {
        GroupListing {
            groups: Ok(groups
                .iter()
                .map(|(g, topics)| (g.to_string(), topics.iter().map(|t| t.to_string()).collect()))
                .collect()),
        }
    }

    /// orders and behaviour, one partition each, assigned and caught up at offset 10.
    fn two_streams() -> Monitor {
        let mut m = monitor(vec![spec("orders"), spec("behaviour")], vec![]);
        m.set_discovery(DISCOVERY);
        for s in 0..2 {
            m.assign_partition(s, 0, 0, StartPosition::At(10), T0);
            m.log_end(s, 0, 10, T0);
            m.position(s, 0, 10);
        }
        m
    }

    /// A `[[consumer]]` of orders.
    fn listed_on_orders(name: &str, group: &str) -> ConsumerSpec {
        ConsumerSpec { name: name.into(), group: group.into(), streams: vec![0], max_lag_ms: SEC, max_stall_ms: SEC }
    }

    #[test]
    fn a_group_reading_a_watched_topic_is_a_consumer_of_exactly_those_streams() {
        let mut m = two_streams();
        m.groups_listed(
            listing(&[
                ("analytics", &["behaviour-topic", "other"]),
                ("ads", &["elsewhere"]),
                ("bi", &["orders-topic", "behaviour-topic"]),
            ]),
            T0,
        );
        let changes = m.take_group_changes();
        assert_eq!(
            changes,
            vec![
                GroupChange { consumer: 0, group: "analytics".into(), streams: vec![1] },
                GroupChange { consumer: 1, group: "bi".into(), streams: vec![0, 1] },
            ],
            "a group on no watched topic is not a consumer"
        );
        m.committed_offsets(0, &[committed(1, 0, Some(10))], T0);
        let s = m.tick(T0);
        let c = &s.consumers[0];
        assert_eq!(
            (c.name.as_str(), c.group.as_str(), c.discovered, c.cause),
            ("analytics", "analytics", true, ConsumerCause::Ok)
        );
        assert_eq!(c.streams.iter().map(|s| s.stream.as_str()).collect::<Vec<_>>(), ["behaviour"]);
        let d = s.discovery.unwrap();
        assert_eq!((d.watched, d.overflow, d.listed_at_ms), (2, 0, Some(T0)));
        // listed again: nothing new
        m.groups_listed(listing(&[("analytics", &["behaviour-topic"]), ("bi", &["orders-topic"])]), T0 + 60 * SEC);
        assert!(m.take_group_changes().is_empty());
        // the group reads orders too now
        m.groups_listed(listing(&[("analytics", &["behaviour-topic", "orders-topic"])]), T0 + 120 * SEC);
        assert_eq!(
            m.take_group_changes(),
            vec![GroupChange { consumer: 0, group: "analytics".into(), streams: vec![0, 1] }]
        );
    }

    #[test]
    fn a_listed_consumer_is_not_discovered_again_and_names_do_not_clash() {
        let mut m = two_streams();
        m.watch_consumer(listed_on_orders("jobs", "jobs"), T0);
        m.watch_consumer(listed_on_orders("etl", "etl-v2"), T0);
        m.groups_listed(listing(&[("jobs", &["orders-topic", "behaviour-topic"]), ("etl", &["orders-topic"])]), T0);
        assert_eq!(
            m.take_group_changes(),
            vec![GroupChange { consumer: 2, group: "etl".into(), streams: vec![0] }],
            "the listed group jobs stays as configured"
        );
        let s = m.tick(T0);
        assert_eq!(s.consumers[0].streams.len(), 1, "a [[consumer]] keeps its streams");
        assert_eq!((s.consumers[2].name.as_str(), s.consumers[2].group.as_str()), ("group:etl", "etl"));
        assert!(!s.consumers[0].discovered);
    }

    #[test]
    fn beyond_max_groups_the_first_found_are_kept_and_the_rest_counted() {
        let mut m = two_streams();
        m.groups_listed(listing(&[("b", &["orders-topic"]), ("a", &["orders-topic"])]), T0);
        assert_eq!(m.take_group_changes().len(), 2);
        m.groups_listed(
            listing(&[
                ("c", &["orders-topic"]),
                ("a", &["orders-topic"]),
                ("b", &["orders-topic"]),
                ("d", &["orders-topic"]),
            ]),
            T0 + 60 * SEC,
        );
        assert!(m.take_group_changes().is_empty(), "max_groups = 2");
        let d = m.tick(T0 + 60 * SEC).discovery.unwrap();
        assert_eq!((d.watched, d.overflow, d.overflow_groups), (2, 2, vec!["c".to_string(), "d".to_string()]));
        let names: Vec<String> = m.tick(T0).consumers.iter().map(|c| c.name.clone()).collect();
        assert_eq!(names, ["a", "b"], "the oldest kept");
    }

    #[test]
    fn a_group_whose_offsets_disappear_is_group_unknown_then_forgotten_and_may_come_back() {
        let mut m = two_streams();
        m.groups_listed(listing(&[("a", &["orders-topic"]), ("b", &["orders-topic"])]), T0);
        m.take_group_changes();
        m.committed_offsets(0, &[committed(0, 0, Some(10))], T0);
        m.committed_offsets(1, &[committed(0, 0, Some(10))], T0);
        assert_eq!(m.tick(T0).consumers[0].cause, ConsumerCause::Ok);
        // the group is deleted: no committed offsets from now on
        let gone = T0 + 10 * SEC;
        m.committed_offsets(0, &[committed(0, 0, None)], gone);
        m.committed_offsets(0, &[committed(0, 0, None)], gone + 3599 * SEC);
        let s = m.tick(gone + 3599 * SEC);
        assert_eq!((s.consumers.len(), s.consumers[0].cause), (2, ConsumerCause::GroupUnknown));
        let s = m.tick(gone + 3600 * SEC);
        assert_eq!(s.consumers.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["b"], "forgotten: no series");
        let d = s.discovery.unwrap();
        assert_eq!(d.forgotten, vec![ForgottenGroup { group: "a".into(), at_ms: gone + 3600 * SEC }]);
        assert_eq!(d.watched, 1);
        assert_eq!(m.take_group_changes(), vec![GroupChange { consumer: 0, group: "a".into(), streams: vec![] }]);
        // a late answer for the forgotten group changes nothing
        m.committed_offsets(0, &[committed(0, 0, Some(10))], gone + 3601 * SEC);
        assert_eq!(m.tick(gone + 3601 * SEC).consumers.len(), 1);
        // the slot is free: a new group takes it, the forgotten one comes back when it commits again
        m.groups_listed(listing(&[("a", &["behaviour-topic"]), ("b", &["orders-topic"])]), gone + 3700 * SEC);
        assert_eq!(m.take_group_changes(), vec![GroupChange { consumer: 0, group: "a".into(), streams: vec![1] }]);
        m.committed_offsets(0, &[committed(1, 0, Some(10))], gone + 3701 * SEC);
        let s = m.tick(gone + 3701 * SEC);
        assert_eq!((s.consumers[0].name.as_str(), s.consumers[0].cause), ("a", ConsumerCause::Ok));
    }

    #[test]
    fn a_discovered_group_that_stopped_committing_stays_stopped_while_records_wait() {
        let mut m = two_streams();
        m.groups_listed(listing(&[("a", &["orders-topic"])]), T0);
        m.committed_offsets(0, &[committed(0, 0, Some(10))], T0);
        m.log_end(0, 0, 50, T0 + SEC);
        let late = T0 + 86_400 * SEC;
        m.committed_offsets(0, &[committed(0, 0, Some(10))], late);
        let s = m.tick(late);
        assert_eq!(s.consumers[0].cause, ConsumerCause::ConsumerStopped, "not forgotten: its offsets are there");
    }

    #[test]
    fn a_discovered_group_at_the_log_end_of_every_partition_is_caught_up_until_a_record_is_written() {
        let mut m = two_streams();
        m.watch_consumer(listed_on_orders("jobs", "jobs"), T0);
        m.groups_listed(listing(&[("a", &["orders-topic", "behaviour-topic"]), ("b", &["orders-topic"])]), T0);
        m.take_group_changes();
        assert!(m.caught_up_groups().is_empty(), "not read yet");
        m.committed_offsets(0, &[committed(0, 0, Some(10))], T0);
        m.committed_offsets(1, &[committed(0, 0, Some(10)), committed(1, 0, Some(10))], T0);
        m.committed_offsets(2, &[committed(0, 0, Some(9))], T0);
        m.tick(T0);
        assert_eq!(m.caught_up_groups(), vec![1], "the listed one is never skipped; b is one record behind");
        // a record on behaviour: a is behind on one of its streams
        m.log_end(1, 0, 11, T0 + SEC);
        m.tick(T0 + SEC);
        assert!(m.caught_up_groups().is_empty());
        m.committed_offsets(1, &[committed(0, 0, Some(10)), committed(1, 0, Some(11))], T0 + 2 * SEC);
        m.committed_offsets(2, &[committed(0, 0, Some(10))], T0 + 2 * SEC);
        m.tick(T0 + 2 * SEC);
        assert_eq!(m.caught_up_groups(), vec![1, 2]);
        // the offsets gone: not caught up (group_unknown), and forgotten ones never are
        m.committed_offsets(2, &[committed(0, 0, None)], T0 + 3 * SEC);
        m.tick(T0 + 3 * SEC);
        assert_eq!(m.caught_up_groups(), vec![1]);
    }

    #[test]
    fn a_failed_listing_is_reported_and_changes_nothing() {
        let mut m = two_streams();
        m.groups_listed(listing(&[("a", &["orders-topic"])]), T0);
        m.groups_listed(GroupListing { groups: Err("ListGroups: timed out".into()) }, T0 + 60 * SEC);
        let d = m.tick(T0 + 60 * SEC).discovery.unwrap();
        assert_eq!((d.error.as_deref(), d.watched, d.listed_at_ms), (Some("ListGroups: timed out"), 1, Some(T0)));
    }
}
