//! `[[consumer]]`: the downstream jobs whose groups' committed offsets are watched.

use pipewatch_core::alert::DISCOVERED;
use pipewatch_core::spec::ConsumerSpec;

use super::problems::Problems;
use super::raw::RawConfig;

/// The `[[consumer]]`s, validated: unique names, a group that is not pipewatch's own,
/// known streams, each once.
pub(super) fn consumer_specs(raw: &RawConfig, p: &mut Problems) -> Vec<ConsumerSpec> {
    let known = || raw.streams.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
    let mut consumers = Vec::new();
    for (i, c) in raw.consumers.iter().enumerate() {
        let key = |f: &str| format!("consumer[{i}].{f}");
        if c.name.trim().is_empty() {
            p.add(key("name"), "must not be empty");
        } else if raw.consumers[..i].iter().any(|o| o.name == c.name) {
            p.add(key("name"), format!("duplicate consumer name {:?}", c.name));
        } else if c.name == DISCOVERED {
            p.add(
                key("name"),
                format!("{DISCOVERED:?} is the alert target of every discovered consumer: name the job"),
            );
        }
        if c.group.trim().is_empty() {
            p.add(key("group"), "must not be empty");
        } else if c.group == raw.kafka.group_id {
            p.add(
                key("group"),
                format!("{:?} is pipewatch's own group (kafka.group_id): name the job's group", c.group),
            );
        }
        if c.streams.is_empty() {
            p.add(key("streams"), "must name at least one stream");
        }
        let mut streams_read = Vec::new();
        for (j, name) in c.streams.iter().enumerate() {
            match raw.streams.iter().position(|s| s.name == *name) {
                Some(_) if c.streams[..j].contains(name) => {
                    p.add(format!("consumer[{i}].streams[{j}]"), format!("{name:?} is listed twice"))
                }
                Some(idx) => streams_read.push(idx),
                None => p.add(
                    format!("consumer[{i}].streams[{j}]"),
                    format!("no stream named {name:?} (known: {})", known()),
                ),
            }
        }
        let max_lag = p.positive_duration(&key("max_lag"), &c.max_lag);
        let max_stall = p.positive_duration(&key("max_stall"), &c.max_stall);
        consumers.push(ConsumerSpec {
            name: c.name.clone(),
            group: c.group.clone(),
            streams: streams_read,
            max_lag_ms: max_lag.as_millis() as i64,
            max_stall_ms: max_stall.as_millis() as i64,
        });
    }
    consumers
}
