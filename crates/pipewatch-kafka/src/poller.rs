//! The log-end poller thread: each tick the monitored topics' metadata (missing topics,
//! a denied Describe, an unreachable cluster), the log ends the consumer cannot tell yet,
//! every watched group's committed offsets (OffsetFetch: a group is never joined), and the
//! records fetched for committed offsets older than the offset index.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use pipewatch_core::{FetchRequest, GroupListing};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use tracing::{debug, info, warn};

use crate::client::now_ms;
use crate::groups::{self, CommittedOffsets, GroupQuery};
use pipewatch_core::spec::ConsumerError;

use crate::messages::{
    CaughtUp, FetchOutcome, GroupDiscovery, LogEndPoll, LogEnds, TopicListing, TopicsListed, WatchedGroup,
};
use crate::metrics::{ErrorKind, SourceMetrics};

/// Records fetched per tick at most, so that a burst of far-behind groups cannot delay
/// the log-end poll.
pub(crate) const FETCHES_PER_TICK: usize = 4;

/// Past this many watched topics the poller asks the metadata of all topics in one
/// request each tick rather than one request per topic.
const ONE_METADATA_REQUEST_ABOVE: usize = 16;

/// The poller thread's clients: metadata, log ends the consumer cannot tell, the
/// watched groups' offsets, record fetches.
pub(crate) struct Poller {
    pub(crate) client: BaseConsumer,
    /// Every watched topic: the configured ones, and those the patterns found.
    pub(crate) topics: Vec<String>,
    /// The streams chosen by `topic_pattern` and `[discovery] topics`: the topics are
    /// listed every `every`.
    pub(crate) listing: Option<TopicListing>,
    /// The discovered topics the monitor made streams of: polled from now on.
    pub(crate) discovered: Receiver<String>,
    pub(crate) groups: Vec<WatchedGroup>,
    /// Reads single records by offset (no group); present when consumers are watched.
    pub(crate) fetcher: Option<BaseConsumer>,
    /// Records the monitor wants fetched.
    pub(crate) requests: Receiver<Vec<FetchRequest>>,
    /// Assigned partitions whose log end the consumer has not learnt from a fetch yet.
    pub(crate) uncached: Receiver<Vec<(String, i32)>>,
    /// Groups watched from now on (Kafka Connect sinks and discovered groups found
    /// while running) or no more, at the monitor's indexes: after the configured ones.
    pub(crate) added: Receiver<WatchedGroup>,
    /// `[discovery]`: how groups are listed, and pipewatch's own group (never a consumer).
    pub(crate) discovery: Option<(GroupDiscovery, String)>,
    pub(crate) caught_up: CaughtUp,
}

/// Polls every partition's log end of the monitored topics once per tick: metadata for
/// the partition list, then one ListOffsets (latest) per leader broker.
pub(crate) fn poll_log_ends(
    poller: Poller,
    tick: Duration,
    metrics: SourceMetrics,
    shutdown: Arc<AtomicBool>,
    tx: Sender<LogEndPoll>,
) {
    let Poller {
        client,
        mut topics,
        listing: patterns,
        discovered,
        mut groups,
        fetcher,
        requests,
        uncached,
        added,
        discovery,
        caught_up,
    } = poller;
    let mut listed_at: Option<std::time::Instant> = None;
    let mut group_topics = GroupTopics::default();
    // the groups added or changed since the last read
    let mut fresh = std::collections::HashSet::new();
    let mut topics_listed_at: Option<std::time::Instant> = None;
    // per pattern stream, the topics it reads
    let mut matched: Vec<Vec<String>> = patterns.iter().flat_map(|p| p.patterns.iter().map(|_| Vec::new())).collect();
    let mut wanted: Vec<FetchRequest> = Vec::new();
    let mut uncached_now: Vec<(String, i32)> = Vec::new();
    let timeout = tick.max(Duration::from_secs(2)) * 3;
    let mut failures = 0u32;
    let mut ever_up = false;
    let mut missing: Vec<String> = Vec::new();
    // a discovered group's offsets are read at one tick in `spread`, the groups in turn
    let spread = discovery.as_ref().map_or(1, |(d, _)| (d.poll.as_millis() / tick.as_millis().max(1)).max(1) as usize);
    let mut ticks = 0usize;
    while !shutdown.load(Ordering::Relaxed) {
        ticks = ticks.wrapping_add(1);
        let started = std::time::Instant::now();
        // only the consumer's latest word counts
        while let Ok(latest) = uncached.try_recv() {
            uncached_now = latest;
        }
        for topic in discovered.try_iter() {
            if !topics.contains(&topic) {
                topics.push(topic);
            }
        }
        let due = |at: Option<std::time::Instant>, every: Duration| at.is_none_or(|t| t.elapsed() >= every);
        let found_topics = match &patterns {
            Some(p) if due(topics_listed_at, p.every) => {
                match list_topics(&client, p, &mut topics, &mut matched, timeout) {
                    Ok(found) => {
                        topics_listed_at = Some(started);
                        Some(found)
                    }
                    Err(e) => {
                        // the poll below tells whether the cluster answers; tried again next tick
                        metrics.error(ErrorKind::Metadata);
                        debug!(error = %e, "failed to list the cluster's topics for the topic patterns");
                        None
                    }
                }
            }
            _ => None,
        };
        let result = poll_once(&client, &topics, &uncached_now, timeout);
        let at = now_ms();
        let mut error = None;
        let log_ends = match result {
            Ok(ends) => {
                if failures > 0 || !ever_up {
                    info!("kafka reachable: {} partitions in the monitored topics", ends.partitions.len());
                }
                if ends.missing != missing {
                    for topic in ends.missing.iter().filter(|t| !missing.contains(t)) {
                        warn!(%topic, "topic does not exist: its stream is topic_missing until it does");
                    }
                    for topic in missing.iter().filter(|t| !ends.missing.contains(t)) {
                        info!(%topic, "topic exists now");
                    }
                    missing = ends.missing.clone();
                }
                failures = 0;
                ever_up = true;
                Some(ends)
            }
            Err((kind, e)) => {
                metrics.error(kind);
                failures += 1;
                if failures == 1 || failures.is_power_of_two() {
                    warn!(error = %e, failures, "failed to poll log ends");
                }
                error = Some(e.to_string());
                // One failure after a good poll may be a blip; two in a row (or none ever
                // good) is a cluster that does not answer.
                if failures >= 2 || !ever_up {
                    None
                } else {
                    continue;
                }
            }
        };
        for g in added.try_iter() {
            fresh.insert(g.consumer);
            match groups.get_mut(g.consumer) {
                Some(slot) => *slot = g,
                None => groups.push(g),
            }
        }
        let listed = match (&discovery, &log_ends) {
            (Some((d, own)), Some(_)) if due(listed_at, d.every) => {
                listed_at = Some(started);
                Some(list_groups(&client, d, own, &mut group_topics, timeout, &metrics))
            }
            _ => None,
        };
        let committed = match &log_ends {
            Some(ends) => {
                let caught_up = caught_up.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                let read = |g: &WatchedGroup| listed.as_ref().and_then(|l| l.read.get(&g.group));
                // a discovered group just found (or whose streams changed) at once, the
                // others in turn unless caught up (while listed: a group gone from the
                // list is read, and so found gone); none the listing read now; a
                // forgotten one (no topics) no more
                let due = |i: usize, g: &WatchedGroup| {
                    let quiet = caught_up.contains(&g.consumer) && group_topics.listed(&g.group);
                    let in_turn = fresh.contains(&g.consumer) || (i % spread == ticks % spread && !quiet);
                    !g.topics.is_empty() && (!g.discovered || (in_turn && read(g).is_none()))
                };
                let mut committed = committed_offsets(&client, &groups, due, ends, timeout, &metrics);
                fresh.clear();
                for (g, c) in groups.iter().zip(committed.iter_mut()) {
                    if let Some(found) = read(g).filter(|_| g.discovered && !g.topics.is_empty()) {
                        *c = Some(Ok(of_topics(found, g, ends)));
                    }
                }
                committed
            }
            None => Vec::new(),
        };
        // Only the newest request per partition of a consumer matters: the group has
        // moved past the others.
        while let Ok(more) = requests.try_recv() {
            for r in more {
                wanted.retain(|w| (w.consumer, w.stream, w.partition) != (r.consumer, r.stream, r.partition));
                wanted.push(r);
            }
        }
        let mut fetched = Vec::new();
        if let (Some(fetcher), Some(_)) = (&fetcher, &log_ends) {
            let n = wanted.len().min(FETCHES_PER_TICK);
            for request in wanted.drain(..n) {
                let outcome = fetch_records(fetcher, &request, timeout);
                metrics.fetched(&outcome);
                fetched.push((request, outcome));
            }
        }
        let groups_listed = listed.map(|l| l.listing);
        let poll = LogEndPoll { at, log_ends, error, committed, fetched, groups: groups_listed, topics: found_topics };
        if tx.send(poll).is_err() {
            return;
        }
        let elapsed = started.elapsed();
        let mut left = tick.saturating_sub(elapsed);
        while !left.is_zero() && !shutdown.load(Ordering::Relaxed) {
            let step = left.min(Duration::from_millis(100));
            std::thread::sleep(step);
            left -= step;
        }
    }
}

/// One tick of the poller: the monitored topics' partitions (metadata, one request per
/// topic: a cluster that does not answer is down), and the log ends of `wanted` (one
/// ListOffsets per leader broker; usually none are wanted, see `cached_log_ends`).
pub(crate) fn poll_once(
    client: &BaseConsumer,
    topics: &[String],
    wanted: &[(String, i32)],
    timeout: Duration,
) -> Result<LogEnds, (ErrorKind, KafkaError)> {
    let mut query = TopicPartitionList::new();
    let mut ends = LogEnds::default();
    // many topics (discovered ones, a pattern's): one request for all, and one per topic
    // only for those it leaves out (missing, or denied: the answer does not say which)
    let all = match topics.len() > ONE_METADATA_REQUEST_ABOVE {
        true => Some(client.fetch_metadata(None, timeout).map_err(|e| (ErrorKind::Metadata, e))?),
        false => None,
    };
    let listed: std::collections::HashMap<&str, &rdkafka::metadata::MetadataTopic> =
        all.iter().flat_map(|md| md.topics().iter().map(|t| (t.name(), t))).collect();
    for topic in topics {
        let meta = match listed.get(topic.as_str()) {
            Some(t) => topic_meta(t),
            None => topic_partitions(client, topic, timeout).map_err(|e| (ErrorKind::Metadata, e))?,
        };
        match meta {
            TopicMeta::Denied => ends.denied.push(topic.clone()),
            TopicMeta::Missing => ends.missing.push(topic.clone()),
            TopicMeta::Partitions(partitions) => {
                let first = ends.partitions.len();
                ends.partitions.extend(partitions.into_iter().map(|p| (topic.clone(), p)));
                let exists: std::collections::HashSet<i32> = ends.partitions[first..].iter().map(|(_, p)| *p).collect();
                // linear, unlike add_partition_offset (see set_start_offsets)
                for (_, p) in wanted.iter().filter(|(t, p)| t == topic && exists.contains(p)) {
                    query.add_partition(topic, *p).set_offset(Offset::End).map_err(|e| (ErrorKind::LogEndPoll, e))?;
                }
            }
        }
    }
    if query.count() == 0 {
        return Ok(ends);
    }
    let found = client.offsets_for_times(query, timeout).map_err(|e| (ErrorKind::LogEndPoll, e))?;
    ends.offsets = found
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) if e.error().is_ok() => Some((e.topic().to_string(), e.partition(), o)),
            _ => None,
        })
        .collect();
    Ok(ends)
}

/// The committed offsets of every watched group that is `due`, for the partitions of its
/// topics, in the groups' order (OffsetFetch, as many at once as `groups::committed_offsets`
/// sends; `None` for a group not
/// due, an offset `None` where a group committed none). A discovered group is asked for
/// everything it committed, in one request, and its answer cut to its topics' partitions
/// (a listed one's partitions go out in requests of 200, see `groups`): at 500 groups on
/// 1 000 partitions that costs the broker a third of five requests of 200, while
/// librdkafka, building the answer with a linear search per partition, costs pipewatch
/// about twice as much (docs/performance.md, "Discovered groups").
pub(crate) fn committed_offsets(
    client: &BaseConsumer,
    groups: &[WatchedGroup],
    due: impl Fn(usize, &WatchedGroup) -> bool,
    ends: &LogEnds,
    timeout: Duration,
    metrics: &SourceMetrics,
) -> Vec<Option<Result<CommittedOffsets, ConsumerError>>> {
    let asked: Vec<usize> = (0..groups.len()).filter(|&i| due(i, &groups[i])).collect();
    let queries: Vec<GroupQuery<'_>> = asked
        .iter()
        .map(|&i| &groups[i])
        .map(|g| GroupQuery {
            group: &g.group,
            partitions: (!g.discovered).then(|| {
                ends.partitions.iter().filter(|(t, _)| g.topics.contains(t)).map(|(t, p)| (t.as_str(), *p)).collect()
            }),
        })
        .collect();
    let answers = groups::committed_offsets(client.client(), &queries, timeout);
    for _ in answers.iter().filter(|a| a.is_err()) {
        metrics.error(ErrorKind::OffsetFetch);
    }
    let mut out: Vec<Option<_>> = groups.iter().map(|_| None).collect();
    for (i, answer) in asked.into_iter().zip(answers) {
        let g = &groups[i];
        out[i] = Some(if g.discovered { answer.map(|found| of_topics(&found, g, ends)) } else { answer });
    }
    out
}

/// Everything a group committed, cut to `g`'s topics' partitions, each of them once:
/// `None` where it committed none (as an answer to the partitions asked one by one).
fn of_topics(found: &CommittedOffsets, g: &WatchedGroup, ends: &LogEnds) -> CommittedOffsets {
    let mut by_partition: std::collections::HashMap<(&str, i32), Option<i64>> =
        found.iter().filter(|(t, _, _)| g.topics.contains(t)).map(|(t, p, o)| ((t.as_str(), *p), *o)).collect();
    ends.partitions
        .iter()
        .filter(|(t, _)| g.topics.contains(t))
        .map(|(t, p)| (t.clone(), *p, by_partition.remove(&(t.as_str(), *p)).flatten()))
        .collect()
}

/// A listed group's committed topics are read again at one listing in this many (and
/// at the first that lists it): a job rarely starts reading another topic under the
/// same group id, and reading everything a group committed is the costliest request
/// pipewatch makes (librdkafka builds the answer with a linear search per partition).
pub(crate) const TOPICS_REREAD_EVERY: u64 = 10;

/// What the listings found of each group: the topics it committed on, as last read.
#[derive(Debug, Default)]
pub(crate) struct GroupTopics {
    listings: u64,
    topics: std::collections::HashMap<String, Vec<String>>,
}

impl GroupTopics {
    /// Whether `group`'s committed topics are read at this listing: it is new, or its
    /// turn has come (the groups' turns spread over the listings by their names).
    fn due(&self, group: &str) -> bool {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        group.hash(&mut h);
        !self.topics.contains_key(group) || h.finish().wrapping_add(self.listings).is_multiple_of(TOPICS_REREAD_EVERY)
    }

    /// Whether the last listing listed `group` (and its committed topics could be read).
    pub(crate) fn listed(&self, group: &str) -> bool {
        self.topics.contains_key(group)
    }
}

/// One listing: what the monitor is told, and everything each group read at it
/// committed (a discovered group's offsets as well).
pub(crate) struct Listed {
    pub(crate) listing: GroupListing,
    pub(crate) read: std::collections::HashMap<String, CommittedOffsets>,
}

/// The cluster's groups whose names match, each with the topics it has committed offsets
/// on (ListGroups; then one OffsetFetch of all its partitions for each group that is new
/// or whose turn it is, see [`TOPICS_REREAD_EVERY`]; the others as last read).
pub(crate) fn list_groups(
    client: &BaseConsumer,
    discovery: &GroupDiscovery,
    own: &str,
    known: &mut GroupTopics,
    timeout: Duration,
    metrics: &SourceMetrics,
) -> Listed {
    let mut read = std::collections::HashMap::new();
    let names: Vec<String> = match groups::group_names(client.client(), timeout) {
        Ok(names) => names.into_iter().filter(|g| g != own && (discovery.matches)(g)).collect(),
        Err(e) => {
            metrics.error(ErrorKind::ListGroups);
            warn!(error = %e, "failed to list the consumer groups");
            return Listed { listing: GroupListing { groups: Err(e) }, read };
        }
    };
    let due: Vec<GroupQuery<'_>> =
        names.iter().filter(|g| known.due(g)).map(|g| GroupQuery { group: g, partitions: None }).collect();
    let answers = groups::committed_offsets(client.client(), &due, timeout);
    for (q, answer) in due.iter().zip(answers) {
        match answer {
            Ok(found) => {
                known.topics.insert(q.group.to_string(), groups::topics_of(&found));
                read.insert(q.group.to_string(), found);
            }
            Err(e) => {
                known.topics.remove(q.group);
                debug!(group = %q.group, error = %e.message, "failed to read a listed group's committed topics");
            }
        }
    }
    // a group no longer listed is new when it is back
    let listed: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
    known.topics.retain(|g, _| listed.contains(g.as_str()));
    known.listings += 1;
    let groups = names.iter().filter_map(|g| known.topics.get(g).map(|topics| (g.clone(), topics.clone()))).collect();
    Listed { listing: GroupListing { groups: Ok(groups) }, read }
}

/// Reads the record before `request.offset` and the first at or after it (the one a
/// consumer whose committed offset this is will read next).
pub(crate) fn fetch_records(fetcher: &BaseConsumer, request: &FetchRequest, timeout: Duration) -> FetchOutcome {
    let from = (request.offset - 1).max(0);
    let mut tpl = TopicPartitionList::new();
    if tpl.add_partition_offset(&request.topic, request.partition, Offset::Offset(from)).is_err()
        || fetcher.assign(&tpl).is_err()
    {
        return FetchOutcome::Failed;
    }
    let deadline = std::time::Instant::now() + timeout;
    let mut records = Vec::new();
    let outcome = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break FetchOutcome::Failed;
        }
        match fetcher.poll(left.min(Duration::from_millis(200))) {
            Some(Ok(m)) if m.topic() == request.topic && m.partition() == request.partition => {
                let offset = m.offset();
                if offset >= from {
                    records.push((offset, m.payload().map(<[u8]>::to_vec), m.timestamp().to_millis()));
                }
                if offset >= request.offset {
                    break FetchOutcome::Records(std::mem::take(&mut records));
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                let expired = matches!(
                    e.rdkafka_error_code(),
                    Some(RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange)
                );
                if expired {
                    let low = fetcher.fetch_watermarks(&request.topic, request.partition, timeout).ok();
                    break FetchOutcome::Expired { log_start: low.map(|(low, _)| low) };
                }
                debug!(error = %e, topic = %request.topic, partition = request.partition, "record fetch failed");
                break FetchOutcome::Failed;
            }
            None => {}
        }
    };
    let _ = fetcher.unassign();
    outcome
}

/// Lists the cluster's topics (metadata of all topics) and gives each that no stream
/// reads yet to the first pattern stream that matches it (internal topics, `__` first,
/// never): per pattern stream, every topic it reads now; and the rest `[discovery]
/// topics` matches.
fn list_topics(
    client: &BaseConsumer,
    listing: &TopicListing,
    topics: &mut Vec<String>,
    matched: &mut [Vec<String>],
    timeout: Duration,
) -> Result<TopicsListed, KafkaError> {
    let md = client.fetch_metadata(None, timeout)?;
    let mut names: Vec<&str> = md.topics().iter().filter(|t| t.error().is_none()).map(|t| t.name()).collect();
    names.sort_unstable();
    let mut discovered = Vec::new();
    for name in names.into_iter().filter(|n| !n.starts_with("__")) {
        if topics.iter().any(|t| t == name) {
            continue;
        }
        if let Some(k) = listing.patterns.iter().position(|(_, matches)| matches(name)) {
            matched[k].push(name.to_string());
            topics.push(name.to_string());
        } else if listing.discover.as_ref().is_some_and(|matches| matches(name)) {
            discovered.push(name.to_string());
        }
    }
    let patterns =
        listing.patterns.iter().zip(matched.iter()).map(|((stream, _), names)| (*stream, names.clone())).collect();
    Ok(TopicsListed { patterns, discovered })
}

/// What the cluster's metadata says of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TopicMeta {
    /// Its partitions; none this time on other topic errors (a leader election under way).
    Partitions(Vec<i32>),
    /// It does not exist.
    Missing,
    /// The authorizer does not let pipewatch describe it (existing or not).
    Denied,
}

pub(crate) fn topic_partitions<C: ConsumerContext>(
    client: &BaseConsumer<C>,
    topic: &str,
    timeout: Duration,
) -> Result<TopicMeta, KafkaError> {
    let md = client.fetch_metadata(Some(topic), timeout)?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(TopicMeta::Missing);
    };
    Ok(topic_meta(t))
}

fn topic_meta(t: &rdkafka::metadata::MetadataTopic) -> TopicMeta {
    match t.error() {
        Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) => TopicMeta::Missing,
        Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) => TopicMeta::Denied,
        Some(_) => TopicMeta::Partitions(Vec::new()),
        None => TopicMeta::Partitions(t.partitions().iter().map(|p| p.id()).collect()),
    }
}
