//! What `check-config --connect` asks the cluster: whether each topic exists and whether
//! each watched group's committed offsets can be read, with the daemon's own clients.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;

use crate::client::{client_config, SourceConfig};
use crate::groups::group_offsets;
use crate::poller::{topic_partitions, TopicMeta};

/// What `check-config --connect` found of one watched group: partitions of its topics
/// with a committed offset, of how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCheck {
    pub committed: usize,
    pub partitions: usize,
}

/// Reads a group's committed offsets for every partition of `topics` once, as the
/// daemon does (OffsetFetch only: the group is never joined).
pub fn check_group(
    config: &SourceConfig,
    group: &str,
    topics: &[String],
    timeout: Duration,
) -> Result<GroupCheck, String> {
    let client: BaseConsumer = client_config(config, false).create().map_err(|e| e.to_string())?;
    let mut partitions = Vec::new();
    for topic in topics {
        if let TopicMeta::Partitions(ps) = topic_partitions(&client, topic, timeout).map_err(|e| e.to_string())? {
            partitions.extend(ps.into_iter().map(|p| (topic.as_str(), p)));
        }
    }
    let found = group_offsets(client.client(), group, partitions, timeout).map_err(|e| e.message)?;
    Ok(GroupCheck { committed: found.iter().filter(|(_, _, o)| o.is_some()).count(), partitions: found.len() })
}

/// What `check-config --connect` found of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicCheck {
    Exists {
        partitions: usize,
    },
    Missing,
    /// The authorizer does not let pipewatch describe it.
    Denied,
}

/// Connects with the source's settings and asks the cluster whether each topic exists
/// (metadata only: nothing is read, no group is joined).
pub fn check_topics(
    config: &SourceConfig,
    topics: &[String],
    timeout: Duration,
) -> Result<Vec<(String, TopicCheck)>, KafkaError> {
    let client: BaseConsumer = client_config(config, false).create()?;
    // A first metadata request tells an unreachable cluster from a missing topic.
    client.fetch_metadata(None, timeout)?;
    topics
        .iter()
        .map(|topic| {
            let check = match topic_partitions(&client, topic, timeout)? {
                TopicMeta::Partitions(p) => TopicCheck::Exists { partitions: p.len() },
                TopicMeta::Missing => TopicCheck::Missing,
                TopicMeta::Denied => TopicCheck::Denied,
            };
            Ok((topic.clone(), check))
        })
        .collect()
}

/// The cluster's topics, sorted, internal ones (`__` first) left out: what a
/// `topic_pattern` is matched against.
pub fn cluster_topics(config: &SourceConfig, timeout: Duration) -> Result<Vec<String>, KafkaError> {
    let client: BaseConsumer = client_config(config, false).create()?;
    let md = client.fetch_metadata(None, timeout)?;
    let mut names: Vec<String> = md
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && !t.name().starts_with("__"))
        .map(|t| t.name().to_string())
        .collect();
    names.sort();
    Ok(names)
}
