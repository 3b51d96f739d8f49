//! `[[stream]]` and `[[pair]]`: each stream's topic, event time, silence and delay bounds,
//! rate bounds, baseline and segments; the pairs of streams downstream jobs join, and
//! their join completeness.

use std::collections::HashSet;
use std::time::Duration;

use pipewatch_core::baseline::BaselineSpec;
use pipewatch_core::join::{JoinPartitions, JoinSpec, MAX_JOIN_SEGMENTS};
use pipewatch_core::segment::{SegmentSpec, SNAPSHOT_SEGMENT};
use pipewatch_core::{EventTimeSource, Extractor, JsonPointer, PairSpec, StreamSpec, TimeFormat, ValueFormat};
use regex::Regex;

use super::problems::Problems;
use super::raw::{RawBaseline, RawConfig, RawEventTime, RawJoin, RawStream};

/// The `[[stream]]`s, validated: unique names and topics; and the streams chosen by a
/// `topic_pattern`, each with its pattern. Stream and pair names share one namespace:
/// `names` holds the streams' for [`pair_specs`].
pub(super) fn stream_specs<'a>(
    raw: &'a RawConfig,
    skew: Duration,
    names: &mut HashSet<&'a str>,
    p: &mut Problems,
) -> (Vec<StreamSpec>, Vec<(usize, Regex)>) {
    // [discovery] topics alone watches the cluster's topics as streams of their own
    if raw.streams.is_empty() && raw.discovery.as_ref().is_none_or(|d| d.topics.is_none()) {
        p.add("stream", "no [[stream]] configured (nor [discovery] topics): nothing to watch");
    }
    let mut topics = HashSet::new();
    let (mut streams, mut patterns) = (Vec::new(), Vec::new());
    for (i, s) in raw.streams.iter().enumerate() {
        let key = |f: &str| format!("stream[{i}].{f}");
        if s.name.trim().is_empty() {
            p.add(key("name"), "must not be empty");
        } else if !names.insert(s.name.as_str()) {
            p.add(key("name"), format!("duplicate stream name {:?}", s.name));
        }
        let (listed, pattern) = stream_topics(i, s, p);
        for (k, topic) in listed.iter().enumerate() {
            let key = if s.topic.is_some() { key("topic") } else { format!("stream[{i}].topics[{k}]") };
            if topic.trim().is_empty() {
                p.add(key, "must not be empty");
            } else if !topics.insert(topic.clone()) {
                p.add(key, format!("topic {topic:?} is already watched by another stream"));
            }
        }
        let mut spec = stream_spec(i, s, skew, raw.schema_registry.is_some(), p);
        spec.topic_pattern = pattern.as_ref().map(|r| r.as_str().to_string());
        spec.topics = listed;
        if let Some(r) = pattern {
            patterns.push((i, r));
        }
        streams.push(spec);
    }
    (streams, patterns)
}

/// A stream's topics: `topic`, `topics` or `topic_pattern`, exactly one of them.
fn stream_topics(i: usize, s: &RawStream, p: &mut Problems) -> (Vec<String>, Option<Regex>) {
    let key = |f: &str| format!("stream[{i}].{f}");
    match (&s.topic, &s.topics, &s.topic_pattern) {
        (Some(topic), None, None) => (vec![topic.clone()], None),
        (None, Some(topics), None) => {
            if topics.is_empty() {
                p.add(key("topics"), "name at least one topic (or use topic_pattern)");
            }
            (topics.clone(), None)
        }
        (None, None, Some(pattern)) => match Regex::new(pattern) {
            Ok(r) => (Vec::new(), Some(r)),
            Err(e) => {
                p.add(key("topic_pattern"), format!("not a regular expression: {e}"));
                (Vec::new(), None)
            }
        },
        (None, None, None) => {
            p.add(key("topic"), "say what the stream reads: topic = \"orders\", topics = [\"orders-eu\", \"orders-us\"] or topic_pattern = \"^orders-\"");
            (Vec::new(), None)
        }
        _ => {
            p.add(key("topic"), "one of topic, topics and topic_pattern, not several");
            (Vec::new(), None)
        }
    }
}

/// One stream's bounds, baseline and segments (its name and topics set by the caller).
fn stream_spec(i: usize, s: &RawStream, skew: Duration, registry: bool, p: &mut Problems) -> StreamSpec {
    let key = |f: &str| format!("stream[{i}].{f}");
    let value_format = ValueFormat::from_name(&s.value_format).unwrap_or_else(|| {
        p.add(key("value_format"), format!("{:?} is not one of {}", s.value_format, ValueFormat::NAMES.join(", ")));
        ValueFormat::Json
    });
    if s.message.is_some() && value_format != ValueFormat::Protobuf {
        p.add(key("message"), "only for value_format = \"protobuf\" (the message of the .proto the records are)");
    }
    if value_format.uses_registry() && !registry {
        p.add(
            key("value_format"),
            format!("{:?} needs a [schema_registry] (its url) to fetch the writer schemas from", s.value_format),
        );
    }
    let source = event_time_source(&s.event_time, &key("event_time"), p);
    let timezone = timezone(&s.event_time, &source, &key("event_time.timezone"), p);
    let max_silence = p.positive_duration(&key("max_silence"), &s.max_silence);
    let max_record_delay = p.positive_duration(&key("max_record_delay"), &s.max_record_delay);
    for (f, v) in [("min_rate", s.min_rate), ("max_rate", s.max_rate)] {
        if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
            p.add(key(f), "must be a number of records per second, 0 or more");
        }
    }
    if let (Some(min), Some(max)) = (s.min_rate, s.max_rate) {
        if min > max {
            p.add(key("min_rate"), format!("{min} is above max_rate {max}"));
        }
    }
    let baseline = s.baseline.as_ref().map(|b| baseline_spec(i, b, p));
    let segments = segment_specs(i, s, p);
    StreamSpec {
        segments,
        max_segment_values: s.max_segment_values,
        baseline,
        name: s.name.clone(),
        topics: Vec::new(),
        topic_pattern: None,
        value_format,
        message: s.message.clone(),
        extractor: Extractor::new(source, skew.as_millis() as i64).with_timezone(timezone),
        max_silence_ms: max_silence.as_millis() as i64,
        max_record_delay_ms: max_record_delay.as_millis() as i64,
        min_rate: s.min_rate,
        max_rate: s.max_rate,
    }
}

/// `stream[i].baseline`: how much history, and how wide the band.
fn baseline_spec(i: usize, b: &RawBaseline, p: &mut Problems) -> BaselineSpec {
    let key = |f: &str| format!("stream[{i}].baseline.{f}");
    let history = p.positive_duration(&key("history"), &b.history);
    if history > Duration::from_secs(90 * 86_400) {
        p.add(key("history"), "at most 90d (the history is read from the broker at start)");
    } else if !history.is_zero() && history < Duration::from_secs(86_400) {
        p.add(key("history"), "at least 1d (a day of hours is the shortest slot period)");
    }
    if !(b.sensitivity.is_finite() && b.sensitivity > 0.0) {
        p.add(key("sensitivity"), "must be a number greater than 0 (robust standard deviations)");
    }
    if !(b.tolerance.is_finite() && (0.0..=1.0).contains(&b.tolerance)) {
        p.add(key("tolerance"), "must be a share of the expected rate, 0 to 1");
    }
    if !(b.floor.is_finite() && b.floor > 0.0) {
        p.add(key("floor"), "must be a number of records per second greater than 0");
    }
    BaselineSpec {
        history_ms: history.as_millis() as i64,
        sensitivity: b.sensitivity,
        tolerance: b.tolerance,
        floor: b.floor,
    }
}

/// `stream[i].segments`: short unique names, JSON pointers, a bounded count.
fn segment_specs(i: usize, s: &RawStream, p: &mut Problems) -> Vec<SegmentSpec> {
    let mut segments = Vec::new();
    for (j, g) in s.segments.iter().enumerate() {
        let key = |f: &str| format!("stream[{i}].segments[{j}].{f}");
        let valid = !g.name.is_empty() && g.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            p.add(key("name"), "must be a short name of letters, digits, _ or - (the segment label)");
        } else if s.segments[..j].iter().any(|o| o.name == g.name) {
            p.add(key("name"), format!("duplicate segment name {:?}", g.name));
        }
        match JsonPointer::parse(&g.field) {
            Ok(pointer) => segments.push(SegmentSpec { name: g.name.clone(), pointer }),
            Err(e) => p.add(key("field"), e.0),
        }
    }
    let key = |f: &str| format!("stream[{i}].{f}");
    if !(1..=1000).contains(&s.max_segment_values) {
        p.add(key("max_segment_values"), "must be 1 to 1000 (each value is a series)");
    }
    if s.segments.len() > 8 {
        p.add(key("segments"), "at most 8 segments per stream (each costs a field lookup per record)");
    }
    // read in the same pass as the segments, kept out of what they show
    if let Some(field) = &s.snapshot_field {
        match JsonPointer::parse(field) {
            Ok(pointer) => segments.push(SegmentSpec { name: SNAPSHOT_SEGMENT.into(), pointer }),
            Err(e) => p.add(key("snapshot_field"), e.0),
        }
    }
    segments
}

/// The `[[pair]]`s, validated: names unique among streams and pairs, two known streams
/// that differ.
pub(super) fn pair_specs<'a>(raw: &'a RawConfig, names: &mut HashSet<&'a str>, p: &mut Problems) -> Vec<PairSpec> {
    let known = || raw.streams.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
    let mut pairs = Vec::new();
    for (i, pr) in raw.pairs.iter().enumerate() {
        let key = |f: &str| format!("pair[{i}].{f}");
        if pr.name.trim().is_empty() {
            p.add(key("name"), "must not be empty");
        } else if !names.insert(pr.name.as_str()) {
            p.add(key("name"), format!("duplicate name {:?} (stream and pair names share one namespace)", pr.name));
        }
        let mut find = |f: &str, name: &str| {
            let idx = raw.streams.iter().position(|s| s.name == name);
            if idx.is_none() {
                p.add(key(f), format!("no stream named {name:?} (known: {})", known()));
            }
            idx
        };
        let leader = find("leader", &pr.leader);
        let follower = find("follower", &pr.follower);
        if pr.leader == pr.follower {
            p.add(key("follower"), "must differ from the leader");
        }
        if let (Some(leader), Some(follower)) = (leader, follower) {
            let join = pr.join.as_ref().and_then(|j| join_spec(raw, i, j, leader, follower, p));
            pairs.push(PairSpec { name: pr.name.clone(), leader, follower, join });
        }
    }
    // each join key is one more field looked up per record, in the pass of the segments
    for (s, st) in raw.streams.iter().enumerate() {
        let sides = raw.pairs.iter().filter(|pr| pr.join.is_some() && (pr.leader == st.name || pr.follower == st.name));
        if sides.count() > MAX_JOINS_PER_STREAM {
            p.add(format!("stream[{s}]"), format!("a side of at most {MAX_JOINS_PER_STREAM} joins"));
        }
    }
    pairs
}

/// Joins a stream may be a side of.
const MAX_JOINS_PER_STREAM: usize = pipewatch_core::join::MAX_JOIN_KEYS;

/// `pair[i].join`: the keys' pointers, the window and grace, the leader's segments by
/// name, sample, caps, where the follower's keys come from (`"all"`: a follower named
/// by its topics) and when the pair is `join_incomplete`.
fn join_spec(
    raw: &RawConfig,
    i: usize,
    j: &RawJoin,
    leader: usize,
    follower: usize,
    p: &mut Problems,
) -> Option<JoinSpec> {
    let key = |f: &str| format!("pair[{i}].join.{f}");
    let before = p.0.len();
    let mut pointer = |f: &str, text: &str| match JsonPointer::parse(text) {
        Ok(ptr) => Some(ptr),
        Err(e) => {
            p.add(key(f), e.0);
            None
        }
    };
    let (leader_key, follower_key) = (pointer("leader_key", &j.leader_key), pointer("follower_key", &j.follower_key));
    let before_ms = p.duration(key("before"), &j.before).as_millis() as i64;
    let after_ms = p.duration(key("after"), &j.after).as_millis() as i64;
    let grace_ms = p.duration(key("grace"), &j.grace).as_millis() as i64;
    let window_ms = p.positive_duration(&key("window"), &j.window).as_millis() as i64;
    let ls = &raw.streams[leader];
    let mut segments = Vec::new();
    for (k, name) in j.segments.iter().enumerate() {
        match ls.segments.iter().position(|g| &g.name == name) {
            Some(at) => segments.push((at, name.clone())),
            None => {
                let known: Vec<&str> = ls.segments.iter().map(|g| g.name.as_str()).collect();
                p.add(
                    format!("pair[{i}].join.segments[{k}]"),
                    format!(
                        "{name:?} is not a segment of the leader {:?} (its segments: {})",
                        ls.name,
                        known.join(", ")
                    ),
                );
            }
        }
    }
    if j.segments.len() > MAX_JOIN_SEGMENTS {
        p.add(key("segments"), format!("at most {MAX_JOIN_SEGMENTS} segments label a join"));
    }
    if j.sample == 0 {
        p.add(key("sample"), "must be at least 1 (1: every key)");
    }
    if !(0.0..=1.0).contains(&j.incomplete_below) {
        p.add(key("incomplete_below"), format!("{} is not a fraction between 0 and 1", j.incomplete_below));
    }
    if j.max_keys == 0 || j.max_pending == 0 {
        p.add(key(if j.max_keys == 0 { "max_keys" } else { "max_pending" }), "must be at least 1");
    }
    let partitions = JoinPartitions::parse(&j.partitions);
    match partitions {
        None => p.add(
            key("partitions"),
            format!("{:?} is not one of {}", j.partitions, JoinPartitions::NAMES.join(", ")),
        ),
        Some(JoinPartitions::All) if raw.streams[follower].topic_pattern.is_some() => p.add(
            key("partitions"),
            format!(
                "\"all\" reads the follower's topics by name; {:?} chooses them by topic_pattern (name them, or use \"co_partitioned\")",
                raw.streams[follower].name
            ),
        ),
        Some(_) => {}
    }
    if p.since(before) {
        return None;
    }
    Some(JoinSpec {
        leader_key: leader_key?,
        follower_key: follower_key?,
        before_ms,
        after_ms,
        grace_ms,
        segments,
        sample: j.sample,
        max_keys: j.max_keys,
        max_pending: j.max_pending,
        window_ms,
        partitions: partitions?,
        incomplete_below: j.incomplete_below,
        min_judged: j.min_judged,
    })
}

/// `event_time.timezone`: an IANA name, for RFC 3339-like strings only (epoch values and
/// Kafka timestamps are UTC already).
fn timezone(e: &RawEventTime, source: &EventTimeSource, key: &str, p: &mut Problems) -> Option<chrono_tz::Tz> {
    let name = e.timezone.as_deref()?;
    let zone = match name.parse::<chrono_tz::Tz>() {
        Ok(zone) => Some(zone),
        Err(_) => {
            p.add(
                key,
                format!("{name:?} is not an IANA time zone (e.g. \"Asia/Shanghai\", \"Europe/Berlin\", \"UTC\")"),
            );
            None
        }
    };
    match (source, e.format.as_deref()) {
        (EventTimeSource::Field { .. }, Some("rfc3339")) => zone,
        (EventTimeSource::KafkaTimestamp, _) if e.source.is_some() => {
            p.add(key, "goes with field and format = \"rfc3339\": a Kafka timestamp is UTC already");
            None
        }
        _ if e.format.as_deref().is_some_and(|f| f.starts_with("epoch_")) => {
            p.add(key, "goes with format = \"rfc3339\": epoch values are UTC already");
            None
        }
        // the field or format has a problem of its own
        _ => None,
    }
}

fn event_time_source(e: &RawEventTime, key: &str, p: &mut Problems) -> EventTimeSource {
    let fallback = EventTimeSource::KafkaTimestamp;
    match (&e.source, &e.field) {
        (Some(source), None) => {
            if source != "kafka_timestamp" {
                p.add(
                    format!("{key}.source"),
                    format!("{source:?} is not a source; the only one is \"kafka_timestamp\""),
                );
            }
            if e.format.is_some() {
                p.add(format!("{key}.format"), "goes with field, not with source = \"kafka_timestamp\"");
            }
            fallback
        }
        (None, Some(field)) => {
            let pointer =
                JsonPointer::parse(field).map_err(|err| p.add(format!("{key}.field"), format!("{field:?}: {}", err.0)));
            let format = match &e.format {
                None => {
                    p.add(format!("{key}.format"), format!("missing: one of {}", TimeFormat::NAMES.join(", ")));
                    None
                }
                Some(f) => {
                    let parsed = TimeFormat::from_name(f);
                    if parsed.is_none() {
                        p.add(format!("{key}.format"), format!("{f:?} is not one of {}", TimeFormat::NAMES.join(", ")));
                    }
                    parsed
                }
            };
            match (pointer, format) {
                (Ok(pointer), Some(format)) => EventTimeSource::Field { pointer, format },
                _ => fallback,
            }
        }
        (Some(_), Some(_)) => {
            p.add(key, "set either field (with format) or source = \"kafka_timestamp\", not both");
            fallback
        }
        (None, None) => {
            p.add(key, "set field = \"/json/pointer\" with format, or source = \"kafka_timestamp\"");
            fallback
        }
    }
}
