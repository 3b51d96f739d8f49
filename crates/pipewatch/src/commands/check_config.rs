//! `pipewatch check-config`: every problem of the config with its key, offline; with
//! `--connect`, also whether the cluster answers, every configured topic exists, every
//! watched group's committed offsets can be read and the schema registry answers.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use pipewatch_kafka::{check_group, check_topics, cluster_topics, GroupCheck, TopicCheck};

use super::{load, Outcome};

/// How long `check-config --connect` waits for the cluster.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `pipewatch check-config`: every problem of the config with its key; with `connect`,
/// also whether the cluster answers and every configured topic exists.
pub fn check_config(path: &Path, connect: bool) -> Outcome {
    let c = match load(path) {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    let mut out = format!(
        "{}: ok ({} streams, {} pairs, {} alerts)\n",
        path.display(),
        c.streams.len(),
        c.pairs.len(),
        c.alerts.len()
    );
    if !connect {
        return Outcome { ok: true, stdout: out, stderr: String::new() };
    }
    let bootstrap = &c.source.bootstrap_servers;
    let topics: Vec<String> = c.streams.iter().flat_map(|s| s.topics.iter().cloned()).collect();
    let found = match check_topics(&c.source, &topics, CONNECT_TIMEOUT) {
        Ok(found) => found,
        Err(e) => {
            return Outcome::failed(
                out,
                format!("error: kafka.bootstrap_servers: the cluster at {bootstrap} does not answer: {e}\n"),
            )
        }
    };
    let _ = writeln!(out, "kafka at {bootstrap}: reachable");
    let mut missing = Vec::new();
    let mut unreadable = Vec::new();
    let mut found = found.into_iter();
    for (i, stream) in c.streams.iter().enumerate() {
        let several = stream.topics.len() > 1;
        for (k, (topic, check)) in found.by_ref().take(stream.topics.len()).enumerate() {
            let key = if several { format!("stream[{i}].topics[{k}]") } else { format!("stream[{i}].topic") };
            match check {
                TopicCheck::Exists { partitions } => {
                    let _ = writeln!(out, "  stream {}: topic {topic:?} ({partitions} partitions)", stream.name);
                }
                TopicCheck::Missing => {
                    let _ = writeln!(out, "  stream {}: topic {topic:?} does not exist", stream.name);
                    missing.push(format!("{topic:?} (stream {})", stream.name));
                }
                TopicCheck::Denied => {
                    let _ = writeln!(out, "  stream {}: access denied: Describe on topic {topic:?}", stream.name);
                    unreadable.push(format!(
                        "{key}: access denied: Describe on topic {topic:?} (grant Read, which implies it)"
                    ));
                }
            }
        }
    }
    // The streams chosen by a pattern: which topics it matches now (none is an error).
    let cluster = match c.topic_patterns.is_empty() {
        true => None,
        false => cluster_topics(&c.source, CONNECT_TIMEOUT)
            .map_err(|e| {
                unreadable
                    .push(format!("kafka.bootstrap_servers: the topics could not be listed for topic_pattern: {e}"))
            })
            .ok(),
    };
    if let Some(cluster) = cluster {
        let mut taken: Vec<&str> = topics.iter().map(String::as_str).collect();
        for (i, pattern) in &c.topic_patterns {
            let stream = &c.streams[*i].name;
            let matched: Vec<&str> =
                cluster.iter().map(String::as_str).filter(|t| pattern.is_match(t) && !taken.contains(t)).collect();
            taken.extend(&matched);
            if matched.is_empty() {
                let _ = writeln!(out, "  stream {stream}: topic_pattern {:?} matches no topic", pattern.as_str());
                missing.push(format!("any topic matching {:?} (stream {stream})", pattern.as_str()));
            } else {
                let _ = writeln!(
                    out,
                    "  stream {stream}: topic_pattern {:?} matches {} topics: {}",
                    pattern.as_str(),
                    matched.len(),
                    matched.join(", ")
                );
            }
        }
    }
    // Each watched group's offsets: unreadable is an error (a missing right, say); no
    // offsets yet is only said (the job may not have started).
    for (i, consumer) in c.consumers.iter().enumerate() {
        let topics: Vec<String> = consumer.streams.iter().flat_map(|&s| c.streams[s].topics.iter().cloned()).collect();
        let group = &consumer.group;
        match check_group(&c.source, group, &topics, CONNECT_TIMEOUT) {
            Ok(GroupCheck { committed, partitions }) => {
                let note = if committed == 0 { ": none yet (group_unknown until it commits)" } else { "" };
                let _ = writeln!(
                    out,
                    "  consumer {} (group {group:?}): committed offsets for {committed} of {partitions} partitions{note}",
                    consumer.name
                );
            }
            Err(e) => {
                let _ = writeln!(out, "  consumer {} (group {group:?}): offsets cannot be read: {e}", consumer.name);
                unreadable.push(format!("consumer[{i}].group: the offsets of group {group:?} cannot be read: {e}"));
            }
        }
    }
    // The schema registry of the Avro streams: does it answer?
    if let Some(r) = &c.schema_registry {
        let client = crate::registry::RegistryClient::new(r.clone());
        let answered = block_on(client.check());
        match answered {
            Ok(subjects) => {
                let _ = writeln!(out, "schema registry at {}: reachable ({subjects} subjects)", r.url);
            }
            Err(e) => {
                let _ = writeln!(out, "schema registry at {}: does not answer: {e}", r.url);
                unreadable.push(format!("schema_registry.url: the registry at {} does not answer: {e}", r.url));
            }
        }
    }
    // The Kafka Connect clusters: does each REST API answer?
    for (i, k) in c.connect.iter().enumerate() {
        let client = crate::connect::ConnectClient::new(k.clone(), Vec::new());
        let answered = block_on(client.check());
        match answered {
            Ok(n) => {
                let _ = writeln!(out, "Kafka Connect {} at {}: reachable ({n} connectors)", k.name, k.url);
            }
            Err(e) => {
                let _ = writeln!(out, "Kafka Connect {} at {}: does not answer: {e}", k.name, k.url);
                unreadable
                    .push(format!("connect[{i}].url: Kafka Connect {} at {} does not answer: {e}", k.name, k.url));
            }
        }
    }
    let mut errors = Vec::new();
    if !missing.is_empty() {
        let n = missing.len();
        let s = if n == 1 { "" } else { "s" };
        errors.push(format!("error: {n} configured topic{s} missing: {}", missing.join(", ")));
    }
    errors.extend(unreadable.into_iter().map(|e| format!("error: {e}")));
    if errors.is_empty() {
        Outcome { ok: true, stdout: out, stderr: String::new() }
    } else {
        Outcome::failed(out, errors.join("\n") + "\n")
    }
}

/// An HTTP check on a runtime of its own (check-config runs without one).
fn block_on<T>(check: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(check))
}
