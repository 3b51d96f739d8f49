//! Which stream reads which topic, as the consumer thread knows it: the configured
//! topics from the start, and those a stream's `topic_pattern` matched as the poller
//! finds them (a leaf: it imports no other module of the crate).

use std::collections::HashMap;
use std::ffi::{CStr, CString};

use pipewatch_core::Monitor;

/// Every watched topic: its stream and its index among the stream's topics (the
/// monitor's numbering, [`Monitor::topics`]), and its name as a C string for
/// librdkafka's cache lookups.
pub(crate) struct TopicTable {
    by_name: HashMap<String, (usize, usize)>,
    /// By stream, then by topic index.
    c_names: Vec<Vec<CString>>,
}

impl TopicTable {
    /// The topics the monitor's streams read now (the configured ones).
    pub(crate) fn new(monitor: &Monitor) -> Self {
        let mut table = Self { by_name: HashMap::new(), c_names: Vec::new() };
        for stream in 0..monitor.streams().count() {
            table.c_names.push(Vec::new());
            for name in monitor.topics(stream) {
                table.insert(stream, name);
            }
        }
        table
    }

    fn insert(&mut self, stream: usize, name: &str) {
        let index = self.c_names[stream].len();
        // a topic name with a NUL byte has no partitions to read anyway
        self.c_names[stream].push(CString::new(name).unwrap_or_default());
        self.by_name.insert(name.to_string(), (stream, index));
    }

    /// The stream that reads `topic`, and the topic's index among its topics.
    #[inline]
    pub(crate) fn get(&self, topic: &str) -> Option<(usize, usize)> {
        self.by_name.get(topic).copied()
    }

    /// A topic `stream` reads from now on (its pattern matched it), into the monitor too:
    /// false when some stream reads it already.
    pub(crate) fn add(&mut self, monitor: &mut Monitor, stream: usize, topic: &str) -> bool {
        if self.by_name.contains_key(topic) || stream >= self.c_names.len() {
            return false;
        }
        monitor.add_topic(stream, topic);
        self.insert(stream, topic);
        true
    }

    /// A stream the monitor added for a discovered topic (the next index), reading it.
    pub(crate) fn add_stream(&mut self, stream: usize, topic: &str) {
        if self.by_name.contains_key(topic) {
            return;
        }
        while self.c_names.len() <= stream {
            self.c_names.push(Vec::new());
        }
        self.insert(stream, topic);
    }

    pub(crate) fn c_name(&self, stream: usize, topic: usize) -> Option<&CStr> {
        self.c_names.get(stream)?.get(topic).map(CString::as_c_str)
    }

    /// Every watched topic, sorted (what the consumer subscribes to).
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.by_name.keys().cloned().collect();
        names.sort();
        names
    }

    /// The topics of these streams, sorted.
    pub(crate) fn of_streams(&self, streams: &[usize]) -> Vec<String> {
        let mut names: Vec<String> =
            self.by_name.iter().filter(|(_, (s, _))| streams.contains(s)).map(|(n, _)| n.clone()).collect();
        names.sort();
        names
    }

    /// Every watched topic with its stream and index.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, usize, usize)> + '_ {
        self.by_name.iter().map(|(n, &(s, t))| (n.as_str(), s, t))
    }
}
