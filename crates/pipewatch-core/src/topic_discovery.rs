//! Discovery of topics: every topic of the cluster whose name `[discovery] topics`
//! matches and that no configured stream reads becomes a stream of its own, named by the
//! topic, with the Kafka timestamp as its event time and the discovery's bounds — so
//! pipewatch covers a whole cluster the way exporters do (silence, gaps, rates, backlog,
//! freshness by produce time, the lag of the jobs that read it) while the configured
//! streams keep their payload event time.
//!
//! The source lists the cluster's topics every `kafka.metadata_refresh` and hands the
//! matching ones no configured stream reads to [`Monitor::topics_listed`], which adds a
//! stream for each new one while fewer than `max_topics` are (the first found are kept,
//! the rest are counted and named) and returns them, for the source to read.

use serde::Serialize;

use crate::monitor::Monitor;
use crate::spec::StreamSpec;
use crate::stream::StreamState;

/// `[discovery] topics`' settings: the stream every discovered topic becomes (its name
/// and topic set per topic), and how many at most.
#[derive(Debug, Clone)]
pub struct TopicDiscoverySpec {
    pub template: StreamSpec,
    pub max_topics: usize,
}

/// Discovered topics as the status shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TopicDiscoverySnapshot {
    /// Discovered topics read now, each a stream.
    pub watched: usize,
    pub max_topics: usize,
    /// Topics that match but are not read: beyond `max_topics`.
    pub overflow: usize,
    /// The first of them, by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overflow_topics: Vec<String>,
}

/// The topic discovery's state in the monitor.
#[derive(Debug, Clone)]
pub(crate) struct TopicDiscovery {
    pub(crate) spec: TopicDiscoverySpec,
    pub(crate) snapshot: TopicDiscoverySnapshot,
}

impl Monitor {
    /// Discovers topics with these settings from now on.
    pub fn set_topic_discovery(&mut self, spec: TopicDiscoverySpec) {
        let snapshot = TopicDiscoverySnapshot { max_topics: spec.max_topics, ..TopicDiscoverySnapshot::default() };
        self.topic_discovery = Some(TopicDiscovery { spec, snapshot });
    }

    /// A listing of the cluster's topics that match the discovery and that no configured
    /// stream reads: each new one becomes a stream named by the topic (while fewer than
    /// `max_topics` are), returned as `(stream, topic)` for the source to read.
    pub fn topics_listed(&mut self, mut topics: Vec<String>) -> Vec<(usize, String)> {
        let Some(d) = self.topic_discovery.as_mut() else { return Vec::new() };
        topics.sort();
        topics.dedup();
        let read: std::collections::HashSet<std::sync::Arc<str>> =
            self.streams.iter().flat_map(|s| s.topics.iter().map(|t| t.name.clone())).collect();
        let mut added = Vec::new();
        let mut overflow = Vec::new();
        for topic in topics.into_iter().filter(|t| !read.contains(t.as_str())) {
            if d.snapshot.watched >= d.spec.max_topics {
                overflow.push(topic);
                continue;
            }
            // a configured stream may have the topic's name (reading another topic)
            let taken = |n: &str| self.streams.iter().any(|s| s.spec.name == n);
            let name = if taken(&topic) { format!("{topic} (topic)") } else { topic.clone() };
            let spec = StreamSpec { name, topics: vec![topic.clone()], topic_pattern: None, ..d.spec.template.clone() };
            let mut state = StreamState::new(spec);
            state.discovered = true;
            self.streams.push(state);
            d.snapshot.watched += 1;
            added.push((self.streams.len() - 1, topic));
        }
        d.snapshot.overflow = overflow.len();
        overflow.truncate(crate::discovery::OVERFLOW_NAMED);
        d.snapshot.overflow_topics = overflow;
        added
    }

    pub(crate) fn topic_discovery_snapshot(&self) -> Option<TopicDiscoverySnapshot> {
        self.topic_discovery.as_ref().map(|d| d.snapshot.clone())
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnosis::Cause;
    use crate::extract::{EventTimeSource, Extractor};
    use crate::monitor::tests::{monitor, spec, SEC, T0};
    use crate::spec::StartPosition;

    use super::*;

    fn discovery(max_topics: usize) -> TopicDiscoverySpec {
        let template = StreamSpec {
            extractor: Extractor::new(EventTimeSource::KafkaTimestamp, 300 * SEC),
            max_silence_ms: 60 * SEC,
            ..spec("template")
        };
        TopicDiscoverySpec { template, max_topics }
    }

    #[test]
    fn a_matching_topic_nobody_reads_is_a_stream_of_its_own_up_to_max_topics() {
        let mut m = monitor(vec![spec("orders")], vec![]);
        m.set_topic_discovery(discovery(2));
        let listed = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        // orders-topic is the configured stream's; "orders" names a stream already
        let added = m.topics_listed(listed(&["payments", "orders-topic", "orders", "clicks"]));
        assert_eq!(added, [(1, "clicks".to_string()), (2, "orders".to_string())]);
        let s = m.tick(T0);
        let names: Vec<(&str, bool)> = s.streams.iter().map(|st| (st.name.as_str(), st.discovered)).collect();
        assert_eq!(names, [("orders", false), ("clicks", true), ("orders (topic)", true)]);
        assert_eq!(s.streams[1].topic, "clicks");
        let d = s.topic_discovery.unwrap();
        assert_eq!((d.watched, d.overflow, d.overflow_topics), (2, 1, vec!["payments".to_string()]));
        // listed again: nothing new, the overflow as it is now
        assert!(m.topics_listed(listed(&["clicks", "orders", "payments", "refunds"])).is_empty());
        assert_eq!(m.tick(T0).topic_discovery.unwrap().overflow, 2);
        // a discovered stream reads the Kafka timestamp and is judged like any other
        m.assign_partition(1, 0, 0, StartPosition::At(0), T0);
        m.record(1, 0, 0, Some(b"not json"), Some(T0 - 5 * SEC), T0);
        m.log_end(1, 0, 1, T0);
        let st = &m.tick(T0 + SEC).streams[1];
        assert_eq!((st.watermark_ms, st.cause), (Some(T0 - 5 * SEC), Cause::Ok));
        assert_eq!(m.tick(T0 + 62 * SEC).streams[1].cause, Cause::ProducerSilent, "max_silence of the discovery");
    }
}
