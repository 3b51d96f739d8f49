//! The source: one consumer in `kafka.group_id` reading every stream's topic on its own
//! thread, which owns the [`Monitor`] (so the per-record path takes no lock), and a
//! log-end poller thread that asks the broker for every partition's log end each tick.
//!
//! pipewatch only reads: offsets are never committed (`enable.auto.commit=false`), and
//! each start begins at `start` (`earliest`, `latest` or `lookback`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pipewatch_core::{FetchRequest, Fetched, KafkaStatus, Millis, Monitor, Right, Snapshot, StartPosition};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use tracing::{debug, info, warn};

use crate::history::{learn_histories, Clients, HistoryRequest, Learned};
use crate::records::{cached_high_watermark, Item, QueueHandle, RecordQueue};

/// Where reading starts on each assigned partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Earliest,
    Latest,
    /// The first offset whose timestamp is at most this long ago.
    Lookback(Duration),
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub bootstrap_servers: String,
    pub group_id: String,
    pub start: Start,
    /// Passed to librdkafka as they are (TLS, SASL, …), after pipewatch's own settings.
    pub properties: Vec<(String, String)>,
    pub tick: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("failed to create the Kafka consumer: {0}")]
    Create(#[source] KafkaError),
    #[error("failed to subscribe to {topics:?}: {source}")]
    Subscribe { topics: Vec<String>, source: KafkaError },
    #[error("failed to start the {0} thread: {1}")]
    Thread(&'static str, #[source] std::io::Error),
}

/// Kafka error kinds counted in `pipewatch_kafka_errors_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    AllBrokersDown,
    Transport,
    Consume,
    Rebalance,
    LogEndPoll,
    Metadata,
    OffsetFetch,
    /// Reading a stream's history for its baseline (ListOffsets by time).
    History,
    Other,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::AllBrokersDown,
        ErrorKind::Transport,
        ErrorKind::Consume,
        ErrorKind::Rebalance,
        ErrorKind::LogEndPoll,
        ErrorKind::Metadata,
        ErrorKind::OffsetFetch,
        ErrorKind::History,
        ErrorKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::AllBrokersDown => "all_brokers_down",
            ErrorKind::Transport => "transport",
            ErrorKind::Consume => "consume",
            ErrorKind::Rebalance => "rebalance",
            ErrorKind::LogEndPoll => "log_end_poll",
            ErrorKind::Metadata => "metadata",
            ErrorKind::OffsetFetch => "offset_fetch",
            ErrorKind::History => "history",
            ErrorKind::Other => "other",
        }
    }
}

/// The source's own series: `pipewatch_kafka_errors_total{kind}`, every kind from 0.
#[derive(Debug, Clone)]
pub struct SourceMetrics {
    errors: [IntCounter; ErrorKind::ALL.len()],
    /// `pipewatch_consumer_record_fetches_total{result}`: found, expired, failed.
    fetches: [IntCounter; 3],
    /// `pipewatch_baseline_offset_requests_total`: ListOffsets calls made to learn histories.
    pub history_requests: IntCounter,
}

impl SourceMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let vec =
            IntCounterVec::new(Opts::new("pipewatch_kafka_errors_total", "Kafka client errors by kind."), &["kind"])?;
        registry.register(Box::new(vec.clone()))?;
        let fetches = IntCounterVec::new(
            Opts::new(
                "pipewatch_consumer_record_fetches_total",
                "Records fetched to resolve a consumer's committed offset older than the offset index, by result.",
            ),
            &["result"],
        )?;
        registry.register(Box::new(fetches.clone()))?;
        let history_requests = IntCounter::new(
            "pipewatch_baseline_offset_requests_total",
            "Offsets-by-time lookups (one ListOffsets per leader broker each) made to learn the streams' history for their baselines.",
        )?;
        registry.register(Box::new(history_requests.clone()))?;
        Ok(Self {
            history_requests,
            errors: ErrorKind::ALL.map(|kind| vec.with_label_values(&[kind.as_str()])),
            fetches: ["found", "expired", "failed"].map(|r| fetches.with_label_values(&[r])),
        })
    }

    fn fetched(&self, outcome: &FetchOutcome) {
        let i = match outcome {
            FetchOutcome::Records(_) => 0,
            FetchOutcome::Expired { .. } => 1,
            FetchOutcome::Failed => 2,
        };
        self.fetches[i].inc();
    }

    pub fn error(&self, kind: ErrorKind) {
        self.errors[kind as usize].inc();
    }

    pub fn errors(&self, kind: ErrorKind) -> u64 {
        self.errors[kind as usize].get()
    }
}

fn classify(err: &KafkaError) -> ErrorKind {
    match err.rdkafka_error_code() {
        Some(RDKafkaErrorCode::AllBrokersDown) => ErrorKind::AllBrokersDown,
        Some(
            RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::Resolve | RDKafkaErrorCode::Authentication,
        ) => ErrorKind::Transport,
        _ => ErrorKind::Other,
    }
}

enum Assignment {
    Assigned(Vec<(String, i32, StartPosition)>),
    Revoked(Vec<(String, i32)>),
}

struct SourceContext {
    start: Start,
    metrics: SourceMetrics,
    /// Assignment changes from the rebalance callback, for the consumer loop; `changed`
    /// says there are some, so the per-record path only reads an atomic.
    changes: Mutex<Vec<Assignment>>,
    changed: AtomicBool,
    /// Where newly assigned partitions' records are routed, while the consumer loop runs.
    records: Mutex<Option<QueueHandle>>,
    /// The authorizer denied Read on pipewatch's own group (joining it); cleared when
    /// partitions are assigned.
    group_denied: AtomicBool,
    /// The last authentication failure (SASL), until the cluster answers again.
    auth_error: Mutex<Option<String>>,
    /// When librdkafka said every broker is down (0: it did not, or the cluster
    /// answered a poll since): the cluster is down at once, before a poll times out.
    brokers_down_at: std::sync::atomic::AtomicI64,
}

impl SourceContext {
    fn push_change(&self, change: Assignment) {
        self.changes.lock().unwrap_or_else(PoisonError::into_inner).push(change);
        self.changed.store(true, Ordering::Release);
    }
}

fn apply_assignment_changes(
    consumer: &BaseConsumer<SourceContext>,
    monitor: &mut Monitor,
    stream_of: &HashMap<String, usize>,
    now: Millis,
) {
    let changes = std::mem::take(&mut *consumer.context().changes.lock().unwrap_or_else(PoisonError::into_inner));
    for change in changes {
        match change {
            Assignment::Assigned(ps) => {
                // pipewatch joined its group: Read on it is allowed
                consumer.context().group_denied.store(false, Ordering::Relaxed);
                for (topic, p, start) in ps {
                    if let Some(&s) = stream_of.get(&topic) {
                        monitor.assign(s, p, start, now);
                    }
                }
            }
            Assignment::Revoked(ps) => {
                for (topic, p) in ps {
                    if let Some(&s) = stream_of.get(&topic) {
                        monitor.revoke(s, p);
                    }
                }
            }
        }
    }
}

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                warn!(facility = fac, "librdkafka: {message}")
            }
            _ => debug!(facility = fac, "librdkafka: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let kind = classify(&error);
        self.metrics.error(kind);
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown) => self.brokers_down_at.store(now_ms(), Ordering::Relaxed),
            Some(RDKafkaErrorCode::GroupAuthorizationFailed) => self.group_denied.store(true, Ordering::Relaxed),
            Some(RDKafkaErrorCode::Authentication) => {
                *self.auth_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason.to_string());
            }
            _ => {}
        }
        // librdkafka repeats transport errors while a broker is down: keep them at debug,
        // the all-brokers-down state is what a person needs.
        if kind == ErrorKind::Transport {
            debug!(error = %error, "kafka: {reason}");
        } else {
            warn!(error = %error, "kafka: {reason}");
        }
    }
}

/// Partitions per topic in a line of bounded length: `orders: 3 (0-2), behaviour: 2 (0, 4)`;
/// a long list of partition numbers is cut (the full list is logged at debug level).
fn summary<'a>(partitions: impl Iterator<Item = (&'a str, i32)>) -> String {
    let mut by_topic: std::collections::BTreeMap<&str, Vec<i32>> = std::collections::BTreeMap::new();
    for (t, p) in partitions {
        by_topic.entry(t).or_default().push(p);
    }
    let topics: Vec<String> = by_topic
        .into_iter()
        .map(|(t, mut ps)| {
            ps.sort_unstable();
            let mut ranges: Vec<String> = Vec::new();
            let mut i = 0;
            while i < ps.len() {
                let mut j = i;
                while j + 1 < ps.len() && ps[j + 1] == ps[j] + 1 {
                    j += 1;
                }
                ranges.push(if i == j { ps[i].to_string() } else { format!("{}-{}", ps[i], ps[j]) });
                i = j + 1;
            }
            let shown = if ranges.len() > 8 {
                format!("{}, … {} more ranges", ranges[..8].join(", "), ranges.len() - 8)
            } else {
                ranges.join(", ")
            };
            format!("{t}: {} ({shown})", ps.len())
        })
        .collect();
    if topics.is_empty() {
        "none".into()
    } else {
        topics.join("; ")
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect()
}

impl ConsumerContext for SourceContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let starts = self.set_start_offsets(consumer, tpl);
                if let Some(records) = *self.records.lock().unwrap_or_else(PoisonError::into_inner) {
                    for (topic, p, _) in &starts {
                        records.route(consumer, topic, *p);
                    }
                }
                let r = if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) };
                info!(partitions = %summary(starts.iter().map(|(t, p, _)| (t.as_str(), *p))), "partitions assigned");
                debug!(partitions = ?starts, "partitions assigned, with their start");
                self.push_change(Assignment::Assigned(starts));
                r
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let revoked = partitions(tpl);
                info!(partitions = %summary(revoked.iter().map(|(t, p)| (t.as_str(), *p))), "partitions revoked");
                debug!(partitions = ?revoked, "partitions revoked");
                self.push_change(Assignment::Revoked(partitions(tpl)));
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                warn!(error = ?other, "rebalance failed");
                self.metrics.error(ErrorKind::Rebalance);
                let revoked = consumer.assignment().map(|a| partitions(&a)).unwrap_or_default();
                self.push_change(Assignment::Revoked(revoked));
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            self.metrics.error(ErrorKind::Rebalance);
            warn!(error = %e, "failed to apply the partition assignment");
        }
    }
}

impl SourceContext {
    /// Decides where each newly assigned partition starts and sets it in `tpl`.
    /// Offsets are never committed, so this is the only place a start is decided.
    /// `earliest` is looked up as the first offset with a timestamp ≥ 0, so that an
    /// empty partition is known to be at its end (nothing to replay).
    fn set_start_offsets(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &mut TopicPartitionList,
    ) -> Vec<(String, i32, StartPosition)> {
        let assigned = partitions(tpl);
        let since = match self.start {
            Start::Latest => {
                let _ = tpl.set_all_offsets(Offset::End);
                return assigned.into_iter().map(|(t, p)| (t, p, StartPosition::LogEnd)).collect();
            }
            Start::Earliest => 0,
            Start::Lookback(lookback) => now_ms() - lookback.as_millis() as Millis,
        };
        // Partition lists are built with `add_partition` + `set_offset` on the element:
        // `add_partition_offset` and `set_partition_offset` search the whole list for each
        // entry, quadratic in the partition count.
        let mut query = TopicPartitionList::with_capacity(assigned.len());
        for (topic, p) in &assigned {
            let _ = query.add_partition(topic, *p).set_offset(Offset::Offset(since));
        }
        let found = match consumer.offsets_for_times(query, Duration::from_secs(10)) {
            Ok(found) => found,
            Err(e) => {
                warn!(error = %e, "failed to look up start offsets; falling back to auto.offset.reset");
                self.metrics.error(ErrorKind::Rebalance);
                let fallback = if self.start == Start::Earliest { Offset::Beginning } else { Offset::End };
                let _ = tpl.set_all_offsets(fallback);
                let start = if self.start == Start::Earliest { StartPosition::Unknown } else { StartPosition::LogEnd };
                return assigned.into_iter().map(|(t, p)| (t, p, start)).collect();
            }
        };
        let found = found.elements();
        let found: HashMap<(&str, i32), i64> = found
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) if o >= 0 && e.error().is_ok() => Some(((e.topic(), e.partition()), o)),
                _ => None,
            })
            .collect();
        let mut starts = Vec::with_capacity(assigned.len());
        for mut e in tpl.elements() {
            // No record that recent (or an empty partition): start at the end.
            let (offset, start) = match found.get(&(e.topic(), e.partition())) {
                Some(&o) => (Offset::Offset(o), StartPosition::At(o)),
                None => (Offset::End, StartPosition::LogEnd),
            };
            let _ = e.set_offset(offset);
            starts.push((e.topic().to_string(), e.partition(), start));
        }
        starts
    }
}

/// What the log-end poller found at one tick.
struct LogEndPoll {
    at: Millis,
    /// `None`: the cluster did not answer.
    log_ends: Option<LogEnds>,
    /// Why it did not.
    error: Option<String>,
    /// Per watched consumer: its group's committed offsets `(topic, partition, offset)`,
    /// or why they could not be read. Empty when the cluster did not answer.
    committed: Vec<Result<Vec<(String, i32, Option<i64>)>, GroupError>>,
    /// Records fetched for committed offsets older than the offset index.
    fetched: Vec<(FetchRequest, FetchOutcome)>,
}

/// What a record fetch found: `(offset, payload, Kafka timestamp)` from the record before
/// the committed offset on.
#[derive(Debug)]
enum FetchOutcome {
    Records(Vec<(i64, Option<Vec<u8>>, Option<Millis>)>),
    Expired { log_start: Option<i64> },
    Failed,
}

/// Records fetched per tick at most, so that a burst of far-behind groups cannot delay
/// the log-end poll.
const FETCHES_PER_TICK: usize = 4;

/// The poller thread's clients: metadata, log ends the consumer cannot tell, the
/// watched groups' offsets, record fetches.
struct Poller {
    client: BaseConsumer,
    topics: Vec<String>,
    groups: Vec<WatchedGroup>,
    /// Reads single records by offset (no group); present when consumers are watched.
    fetcher: Option<BaseConsumer>,
    /// Records the monitor wants fetched.
    requests: Receiver<Vec<FetchRequest>>,
    /// Assigned partitions whose log end the consumer has not learnt from a fetch yet.
    uncached: Receiver<Vec<(String, i32)>>,
}

/// The consumer thread's ends of the channels to and from the poller (and the history
/// learner, when a stream has a baseline).
struct PollerLink {
    polls: Receiver<LogEndPoll>,
    requests: Sender<Vec<FetchRequest>>,
    uncached: Sender<Vec<(String, i32)>>,
    history: Option<HistoryLink>,
}

struct HistoryLink {
    requests: Sender<HistoryRequest>,
    learned: Receiver<Learned>,
}

/// A watched consumer's group, read through a client of its own that never joins,
/// subscribes or commits: it only asks the group coordinator for committed offsets.
struct WatchedGroup {
    group: String,
    client: BaseConsumer<GroupContext>,
    topics: Vec<String>,
}

/// A watched group's client remembers what the authorizer answered: librdkafka reports
/// a denied FindCoordinator through the error callback, and the OffsetFetch then times out.
#[derive(Default)]
struct GroupContext {
    denied: AtomicBool,
}

impl ClientContext for GroupContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::GroupAuthorizationFailed) {
            self.denied.store(true, Ordering::Relaxed);
        } else {
            debug!(error = %error, "watched group's client: {reason}");
        }
    }
}

impl ConsumerContext for GroupContext {}

/// The partitions of the topics that exist, the topics that do not, and the log ends
/// asked for (ListOffsets).
#[derive(Debug, Default)]
struct LogEnds {
    partitions: Vec<(String, i32)>,
    offsets: Vec<(String, i32, i64)>,
    missing: Vec<String>,
    /// Topics the authorizer does not let pipewatch describe.
    denied: Vec<String>,
}

/// Why a watched group's offsets could not be read; `denied`: the authorizer said no.
#[derive(Debug)]
struct GroupError {
    error: String,
    denied: bool,
}

/// The running source: the consumer thread and the log-end poller.
pub struct Source {
    consumer: JoinHandle<()>,
    poller: JoinHandle<()>,
    learner: Option<JoinHandle<()>>,
}

pub fn now_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as Millis)
}

/// The consumer's fetch settings (a user's `kafka.properties` override them):
/// - `fetch.queue.backoff.ms`: librdkafka postpones a partition's next fetch this long
///   whenever its local queue is full, which happens as soon as the consumer is a little
///   slower than the fetcher; the default (1 s) turns a catch-up into bursts and ~1 s
///   pauses. 10 ms keeps the fetcher busy.
/// - `queued.max.messages.kbytes` and `fetch.max.bytes`: the prefetched records (the
///   default allows 64 MiB queued plus 50 MiB per fetch response) are capped at 32 MiB
///   queued plus 16 MiB per response, so that memory stays bounded during a catch-up.
/// - `fetch.wait.max.ms`: how long the broker holds a fetch when no partition has a new
///   record. It answers at once when one has, so this costs no latency; but every answer
///   costs librdkafka and the broker work for every assigned partition, which at
///   10 000 idle partitions and the default 500 ms is a quarter of a core for each.
pub const FETCH_DEFAULTS: &[(&str, &str)] = &[
    ("fetch.queue.backoff.ms", "10"),
    ("queued.max.messages.kbytes", "32768"),
    ("fetch.max.bytes", "16777216"),
    ("fetch.wait.max.ms", "5000"),
];

/// pipewatch's settings, the group ones when `group` is set, then the user's properties.
fn client_config(config: &SourceConfig, group: bool) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.bootstrap_servers)
        .set("client.id", "pipewatch")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", if config.start == Start::Earliest { "earliest" } else { "latest" })
        .set("topic.metadata.refresh.interval.ms", "10000")
        .set("reconnect.backoff.max.ms", "2000")
        .set_log_level(RDKafkaLogLevel::Warning);
    if group {
        c.set("group.id", &config.group_id).set("partition.assignment.strategy", "cooperative-sticky");
        for (k, v) in FETCH_DEFAULTS {
            c.set(*k, *v);
        }
    }
    for (k, v) in &config.properties {
        c.set(k, v);
    }
    c
}

/// Checks that librdkafka accepts the properties (no network involved).
pub fn validate_properties(config: &SourceConfig) -> Result<(), KafkaError> {
    client_config(config, true).create::<BaseConsumer>().map(drop)
}

impl Source {
    /// Starts reading. `publish` gets the monitor's snapshot every tick (the hand-off to
    /// the tick stage); the threads stop once `shutdown` is set.
    pub fn spawn(
        config: SourceConfig,
        monitor: Monitor,
        metrics: SourceMetrics,
        shutdown: Arc<AtomicBool>,
        publish: impl FnMut(Snapshot) + Send + 'static,
    ) -> Result<Self, SourceError> {
        let topics: Vec<String> = monitor.streams().map(|s| s.topic.clone()).collect();
        let context = SourceContext {
            start: config.start,
            metrics: metrics.clone(),
            changes: Mutex::new(Vec::new()),
            changed: AtomicBool::new(false),
            records: Mutex::new(None),
            group_denied: AtomicBool::new(false),
            auth_error: Mutex::new(None),
            brokers_down_at: std::sync::atomic::AtomicI64::new(0),
        };
        let consumer: BaseConsumer<SourceContext> =
            client_config(&config, true).create_with_context(context).map_err(SourceError::Create)?;
        let records = RecordQueue::new(&consumer);
        *consumer.context().records.lock().unwrap_or_else(PoisonError::into_inner) = Some(records.handle());
        let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topic_refs).map_err(|source| SourceError::Subscribe { topics: topics.clone(), source })?;
        let poll_client: BaseConsumer = client_config(&config, false).create().map_err(SourceError::Create)?;
        let groups = monitor
            .consumers()
            .map(|c| {
                let client = group_client(&config, &c.group).map_err(SourceError::Create)?;
                let topics = c.streams.iter().map(|&i| topics[i].clone()).collect();
                Ok(WatchedGroup { group: c.group.clone(), client, topics })
            })
            .collect::<Result<Vec<_>, SourceError>>()?;

        let fetcher = if groups.is_empty() {
            None
        } else {
            let mut fc = client_config(&config, false);
            // librdkafka assigns only with a group id: pipewatch's own, never joined or
            // committed (assign, not subscribe). One record (and the one before) per
            // fetch: no large prefetch; an offset below the log start is an error, not a
            // silent jump to the end.
            fc.set("group.id", &config.group_id)
                .set("auto.offset.reset", "error")
                .set("max.partition.fetch.bytes", "65536")
                .set("queued.min.messages", "1")
                .set("fetch.wait.max.ms", "100");
            Some(fc.create().map_err(SourceError::Create)?)
        };
        let (tx, rx) = mpsc::channel();
        let (requests_tx, requests) = mpsc::channel();
        let (uncached_tx, uncached) = mpsc::channel();
        let poller = {
            let (shutdown, metrics, tick) = (shutdown.clone(), metrics.clone(), config.tick);
            let poller = Poller { client: poll_client, topics: topics.clone(), groups, fetcher, requests, uncached };
            std::thread::Builder::new()
                .name("pipewatch-log-end".into())
                .spawn(move || poll_log_ends(poller, tick, metrics, shutdown, tx))
                .map_err(|e| SourceError::Thread("log-end poller", e))?
        };
        let (history, learner) = if monitor.streams().any(|s| s.baseline.is_some()) {
            let lookups: BaseConsumer = client_config(&config, false).create().map_err(SourceError::Create)?;
            let mut reader = client_config(&config, false);
            reader.set("group.id", &config.group_id).set("auto.offset.reset", "error");
            let clients = Clients { lookups, reader };
            let (requests_tx, requests) = mpsc::channel();
            let (learned_tx, learned) = mpsc::channel();
            let (shutdown, metrics) = (shutdown.clone(), metrics.clone());
            let learner = std::thread::Builder::new()
                .name("pipewatch-history".into())
                .spawn(move || learn_histories(clients, requests, learned_tx, metrics, shutdown))
                .map_err(|e| SourceError::Thread("history learner", e))?;
            (Some(HistoryLink { requests: requests_tx, learned }), Some(learner))
        } else {
            (None, None)
        };
        let link = PollerLink { polls: rx, requests: requests_tx, uncached: uncached_tx, history };
        let consumer = std::thread::Builder::new()
            .name("pipewatch-source".into())
            .spawn(move || {
                // a topic name with a NUL byte has no partitions to read anyway
                let topic_names =
                    topics.iter().map(|t| std::ffi::CString::new(t.as_str()).unwrap_or_default()).collect();
                let group_id = config.group_id.clone();
                let source =
                    Reader { consumer, records, monitor, topics, topic_names, group_id, metrics, errors_logged: 0 };
                source.run(config.tick, shutdown, link, publish)
            })
            .map_err(|e| SourceError::Thread("consumer", e))?;
        Ok(Self { consumer, poller, learner })
    }

    /// Waits for the threads to end (after shutdown was set).
    pub fn join(self) {
        let _ = self.consumer.join();
        let _ = self.poller.join();
        if let Some(learner) = self.learner {
            let _ = learner.join();
        }
    }
}

/// The consumer thread: reads records into the monitor and hands a snapshot to the
/// tick stage every tick.
struct Reader {
    consumer: BaseConsumer<SourceContext>,
    /// The assigned partitions' records, read in batches (see `records`).
    records: RecordQueue,
    monitor: Monitor,
    /// Each stream's topic, and as a C string for librdkafka.
    topics: Vec<String>,
    topic_names: Vec<std::ffi::CString>,
    /// pipewatch's own group.
    group_id: String,
    metrics: SourceMetrics,
    errors_logged: u64,
}

impl Reader {
    fn run(mut self, tick: Duration, shutdown: Arc<AtomicBool>, link: PollerLink, mut publish: impl FnMut(Snapshot)) {
        let tick_ms = tick.as_millis().max(1) as Millis;
        let mut next_tick = now_ms();
        let stream_of: HashMap<String, usize> =
            self.monitor.streams().enumerate().map(|(i, s)| (s.topic.clone(), i)).collect();
        while !shutdown.load(Ordering::Relaxed) {
            // Rebalances and errors arrive on the consumer queue, and so do the records
            // of a partition fetched before it was routed to the record queue.
            let polled = self.consumer.poll(Duration::ZERO);
            let now = now_ms();
            // Rebalance callbacks run inside poll: apply them before any record, which
            // may belong to a partition just assigned.
            let changed = &self.consumer.context().changed;
            if changed.load(Ordering::Relaxed) && changed.swap(false, Ordering::Acquire) {
                apply_assignment_changes(&self.consumer, &mut self.monitor, &stream_of, now);
            }
            let busy = match polled {
                Some(Ok(msg)) => {
                    if let Some(&stream) = stream_of.get(msg.topic()) {
                        let ts = msg.timestamp().to_millis();
                        self.monitor.record(stream, msg.partition(), msg.offset(), msg.payload(), ts, now);
                    }
                    true
                }
                Some(Err(e)) => {
                    self.consume_error(&e);
                    true
                }
                None => false,
            };
            // Wait for records only when the consumer queue had nothing: a rebalance
            // waits at most 100 ms.
            let wait = if busy || now >= next_tick { Duration::ZERO } else { Duration::from_millis(100) };
            self.read_records(&stream_of, wait);
            let now = now_ms();
            if now < next_tick {
                continue;
            }
            self.apply_polls(&link, &stream_of);
            self.apply_brokers_down(now, tick_ms);
            self.apply_group_denial();
            self.cached_log_ends(&link, now);
            if let Ok(positions) = self.consumer.position() {
                for e in positions.elements() {
                    if let (Offset::Offset(o), Some(&s)) = (e.offset(), stream_of.get(e.topic())) {
                        self.monitor.position(s, e.partition(), o);
                    }
                }
            }
            self.exchange_histories(&link);
            publish(self.monitor.tick(now));
            let wanted = self.monitor.take_fetches(FETCHES_PER_TICK);
            if !wanted.is_empty() {
                let _ = link.requests.send(wanted);
            }
            next_tick = now - (now - next_tick) % tick_ms + tick_ms;
        }
        // The record queue goes before the consumer (it belongs to the consumer's client),
        // and the rebalance callback of the consumer's close must not route to it.
        *self.consumer.context().records.lock().unwrap_or_else(PoisonError::into_inner) = None;
        drop(self.records);
        info!("source stopped");
    }

    /// One batch from the record queue into the monitor. The per-record path: no lock, no
    /// allocation, one hash lookup per run of records of the same topic.
    fn read_records(&mut self, stream_of: &HashMap<String, usize>, wait: Duration) {
        let now = now_ms();
        let Reader { records, monitor, metrics, errors_logged, .. } = self;
        let mut topic: (*const u8, usize, Option<usize>) = (std::ptr::null(), 0, None);
        records.read(wait, |item| match item {
            Item::Record(r) => {
                if (r.topic.as_ptr(), r.topic.len()) != (topic.0, topic.1) {
                    topic = (r.topic.as_ptr(), r.topic.len(), stream_of.get(r.topic).copied());
                }
                if let Some(stream) = topic.2 {
                    monitor.record(stream, r.partition, r.offset, r.payload, r.timestamp, now);
                }
            }
            Item::Error(e, topic) => {
                if e.rdkafka_error_code() == Some(RDKafkaErrorCode::TopicAuthorizationFailed) {
                    if let Some((topic, &s)) = topic.and_then(|t| stream_of.get_key_value(t)) {
                        monitor.set_access_denied(Some(s), Right::ReadTopic, Some(format!("Read on topic {topic}")));
                    }
                }
                consume_error(metrics, errors_logged, &e)
            }
        });
    }

    fn consume_error(&mut self, e: &KafkaError) {
        if e.rdkafka_error_code() == Some(RDKafkaErrorCode::GroupAuthorizationFailed) {
            self.consumer.context().group_denied.store(true, Ordering::Relaxed);
        }
        consume_error(&self.metrics, &mut self.errors_logged, e);
    }

    /// librdkafka lost every broker at least a tick ago and no poll answered since: the
    /// cluster is down now, before the poller's requests time out (so a crashed broker is
    /// `kafka_unreachable` before its silence could be taken for a silent producer).
    fn apply_brokers_down(&mut self, now: Millis, tick_ms: Millis) {
        let context = self.consumer.context();
        let since = context.brokers_down_at.load(Ordering::Relaxed);
        if since != 0 && now - since >= tick_ms {
            let auth = context.auth_error.lock().unwrap_or_else(PoisonError::into_inner).clone();
            let why =
                auth.map_or_else(|| "every broker is down".to_string(), |a| format!("authentication failed: {a}"));
            self.monitor.set_kafka_status(KafkaStatus::Down, Some(why));
        }
    }

    /// What the authorizer denies pipewatch's own group, into the monitor.
    fn apply_group_denial(&mut self) {
        let denied = self.consumer.context().group_denied.load(Ordering::Relaxed);
        let resource = denied.then(|| format!("Read on group {}", self.group_id));
        self.monitor.set_access_denied(None, Right::ReadGroup, resource);
    }

    /// The log end of every assigned partition, from what librdkafka learnt from the last
    /// fetch response (each carries every fetched partition's high watermark, and the
    /// broker answers a fetch as soon as any partition has a new record): no request.
    /// The partitions it cannot tell yet go to the poller for a ListOffsets.
    fn cached_log_ends(&mut self, link: &PollerLink, now: Millis) {
        let mut uncached = Vec::new();
        let assigned: Vec<(usize, i32)> = self.monitor.assigned().collect();
        for (s, p) in assigned {
            match cached_high_watermark(&self.consumer, &self.topic_names[s], p) {
                Some(end) => self.monitor.log_end(s, p, end, now),
                None => uncached.push((self.topics[s].clone(), p)),
            }
        }
        let _ = link.uncached.send(uncached);
    }

    /// The histories learnt since the last tick into the monitor; the partitions newly
    /// assigned to streams with a baseline to the learner, one request per stream.
    fn exchange_histories(&mut self, link: &PollerLink) {
        let Some(history) = &link.history else { return };
        while let Ok(learned) = history.learned.try_recv() {
            for (p, h) in learned.partitions {
                self.monitor.learned(learned.stream, p, h);
            }
        }
        let mut wanted: Vec<HistoryRequest> = Vec::new();
        for (stream, partition) in self.monitor.take_history_requests() {
            match wanted.iter_mut().find(|r| r.stream == stream) {
                Some(r) => r.partitions.push(partition),
                None => {
                    let Some(spec) = self.monitor.streams().nth(stream) else { continue };
                    let Some(baseline) = spec.baseline else { continue };
                    wanted.push(HistoryRequest {
                        stream,
                        name: spec.name.clone(),
                        topic: spec.topic.clone(),
                        partitions: vec![partition],
                        history_ms: baseline.history_ms,
                    });
                }
            }
        }
        for r in wanted {
            let _ = history.requests.send(r);
        }
    }

    /// What the log-end poller found since the last tick, into the monitor.
    fn apply_polls(&mut self, link: &PollerLink, stream_of: &HashMap<String, usize>) {
        let (consumer, topic_names) = (&self.consumer, &self.topic_names);
        let monitor = &mut self.monitor;
        while let Ok(poll) = link.polls.try_recv() {
            let context = consumer.context();
            match poll.log_ends {
                // a poll begun before librdkafka lost every broker says nothing of now
                Some(_) if poll.at <= context.brokers_down_at.load(Ordering::Relaxed) => {}
                Some(ends) => {
                    context.brokers_down_at.store(0, Ordering::Relaxed);
                    monitor.set_kafka_status(KafkaStatus::Up, None);
                    *context.auth_error.lock().unwrap_or_else(PoisonError::into_inner) = None;
                    for (topic, &s) in stream_of {
                        monitor.set_topic_missing(s, ends.missing.contains(topic));
                        let denied = ends.denied.contains(topic).then(|| format!("Describe on topic {topic}"));
                        monitor.set_access_denied(Some(s), Right::DescribeTopic, denied);
                    }
                    for (topic, p, end) in ends.offsets {
                        // A ListOffsets answer is older than what a fetch may have told
                        // since: the cache wins (a log end never goes back by mistake).
                        let Some(&s) = stream_of.get(&topic) else { continue };
                        if cached_high_watermark(consumer, &topic_names[s], p).is_none() {
                            monitor.log_end(s, p, end, poll.at);
                        }
                    }
                }
                None => {
                    // the authentication failure says more than the poll's time-out
                    let auth = context.auth_error.lock().unwrap_or_else(PoisonError::into_inner).clone();
                    let why = auth.map(|a| format!("authentication failed: {a}")).or(poll.error);
                    monitor.set_kafka_status(KafkaStatus::Down, why);
                }
            }
            for (consumer, result) in poll.committed.into_iter().enumerate() {
                match result {
                    Ok(offsets) => {
                        let offsets: Vec<(usize, i32, Option<i64>)> = offsets
                            .into_iter()
                            .filter_map(|(topic, p, o)| stream_of.get(&topic).map(|&s| (s, p, o)))
                            .collect();
                        monitor.committed_offsets(consumer, &offsets, poll.at);
                    }
                    Err(GroupError { error, denied }) => monitor.consumer_error(consumer, error, denied),
                }
            }
            for (request, outcome) in &poll.fetched {
                let found = match outcome {
                    FetchOutcome::Records(records) => {
                        let borrowed: Vec<(i64, Option<&[u8]>, Option<Millis>)> =
                            records.iter().map(|(o, p, t)| (*o, p.as_deref(), *t)).collect();
                        monitor.fetched(request, Fetched::Records(&borrowed), poll.at);
                        continue;
                    }
                    FetchOutcome::Expired { log_start } => Fetched::Expired { log_start: *log_start },
                    FetchOutcome::Failed => Fetched::Failed,
                };
                monitor.fetched(request, found, poll.at);
            }
        }
    }
}

/// Counts a consume error; logs a few lines per burst (the counter has the rest).
fn consume_error(metrics: &SourceMetrics, logged: &mut u64, e: &KafkaError) {
    metrics.error(ErrorKind::Consume);
    if *logged < 10 || logged.is_power_of_two() {
        warn!(error = %e, "consume failed");
    }
    *logged += 1;
}

/// Polls every partition's log end of the monitored topics once per tick: metadata for
/// the partition list, then one ListOffsets (latest) per leader broker.
fn poll_log_ends(
    poller: Poller,
    tick: Duration,
    metrics: SourceMetrics,
    shutdown: Arc<AtomicBool>,
    tx: Sender<LogEndPoll>,
) {
    let Poller { client, topics, groups, fetcher, requests, uncached } = poller;
    let mut wanted: Vec<FetchRequest> = Vec::new();
    let mut uncached_now: Vec<(String, i32)> = Vec::new();
    let timeout = tick.max(Duration::from_secs(2)) * 3;
    let mut failures = 0u32;
    let mut ever_up = false;
    let mut missing: Vec<String> = Vec::new();
    while !shutdown.load(Ordering::Relaxed) {
        let started = std::time::Instant::now();
        // only the consumer's latest word counts
        while let Ok(latest) = uncached.try_recv() {
            uncached_now = latest;
        }
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
        let committed = match &log_ends {
            Some(ends) => groups.iter().map(|g| committed_offsets(g, ends, timeout, &metrics)).collect(),
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
        if tx.send(LogEndPoll { at, log_ends, error, committed, fetched }).is_err() {
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
fn poll_once(
    client: &BaseConsumer,
    topics: &[String],
    wanted: &[(String, i32)],
    timeout: Duration,
) -> Result<LogEnds, (ErrorKind, KafkaError)> {
    let mut query = TopicPartitionList::new();
    let mut ends = LogEnds::default();
    for topic in topics {
        match topic_partitions(client, topic, timeout).map_err(|e| (ErrorKind::Metadata, e))? {
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

/// A watched group's committed offsets for the partitions of its topics (OffsetFetch;
/// `None` where it committed none).
fn committed_offsets(
    group: &WatchedGroup,
    ends: &LogEnds,
    timeout: Duration,
    metrics: &SourceMetrics,
) -> Result<Vec<(String, i32, Option<i64>)>, GroupError> {
    let partitions = ends.partitions.iter().filter(|(t, _)| group.topics.contains(t)).map(|(t, p)| (t.as_str(), *p));
    read_committed(&group.client, partitions, timeout).map_err(|e| {
        metrics.error(ErrorKind::OffsetFetch);
        group_error(&group.client, &group.group, e)
    })
}

/// What a watched group's failed read says: the authorizer's no, named, or the error.
fn group_error(client: &BaseConsumer<GroupContext>, group: &str, e: KafkaError) -> GroupError {
    let denied = client.context().denied.swap(false, Ordering::Relaxed)
        || e.rdkafka_error_code() == Some(RDKafkaErrorCode::GroupAuthorizationFailed);
    let error = if denied { format!("access denied: Describe on group {group}") } else { e.to_string() };
    GroupError { error, denied }
}

/// A client that reads `group`'s committed offsets: it has the group id, and never
/// subscribes, assigns or commits.
fn group_client(config: &SourceConfig, group: &str) -> KafkaResult<BaseConsumer<GroupContext>> {
    let mut cc = client_config(config, false);
    cc.set("group.id", group);
    cc.create_with_context(GroupContext::default())
}

/// The group's committed offsets for these partitions (OffsetFetch); `None` where it
/// committed none.
fn read_committed<'a, C: ConsumerContext>(
    client: &BaseConsumer<C>,
    partitions: impl Iterator<Item = (&'a str, i32)>,
    timeout: Duration,
) -> KafkaResult<Vec<(String, i32, Option<i64>)>> {
    let mut query = TopicPartitionList::new();
    for (topic, p) in partitions {
        query.add_partition(topic, p);
    }
    if query.count() == 0 {
        return Ok(Vec::new());
    }
    let found = client.committed_offsets(query, timeout)?;
    Ok(found
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 && e.error().is_ok() => (e.topic().to_string(), e.partition(), Some(o)),
            _ => (e.topic().to_string(), e.partition(), None),
        })
        .collect())
}

/// Reads the record before `request.offset` and the first at or after it (the one a
/// consumer whose committed offset this is will read next).
fn fetch_records(fetcher: &BaseConsumer, request: &FetchRequest, timeout: Duration) -> FetchOutcome {
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

/// What the cluster's metadata says of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TopicMeta {
    /// Its partitions; none this time on other topic errors (a leader election under way).
    Partitions(Vec<i32>),
    /// It does not exist.
    Missing,
    /// The authorizer does not let pipewatch describe it (existing or not).
    Denied,
}

fn topic_partitions<C: ConsumerContext>(
    client: &BaseConsumer<C>,
    topic: &str,
    timeout: Duration,
) -> Result<TopicMeta, KafkaError> {
    let md = client.fetch_metadata(Some(topic), timeout)?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(TopicMeta::Missing);
    };
    Ok(match t.error() {
        Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) => TopicMeta::Missing,
        Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) => TopicMeta::Denied,
        Some(_) => TopicMeta::Partitions(Vec::new()),
        None => TopicMeta::Partitions(t.partitions().iter().map(|p| p.id()).collect()),
    })
}

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
    let client = group_client(config, group).map_err(|e| e.to_string())?;
    let mut partitions = Vec::new();
    for topic in topics {
        if let TopicMeta::Partitions(ps) = topic_partitions(&client, topic, timeout).map_err(|e| e.to_string())? {
            partitions.extend(ps.into_iter().map(|p| (topic.as_str(), p)));
        }
    }
    let found = read_committed(&client, partitions.iter().copied(), timeout)
        .map_err(|e| group_error(&client, group, e).error)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(properties: &[(&str, &str)]) -> SourceConfig {
        SourceConfig {
            bootstrap_servers: "127.0.0.1:9".into(),
            group_id: "pipewatch-test".into(),
            start: Start::Lookback(Duration::from_secs(900)),
            properties: properties.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            tick: Duration::from_secs(1),
        }
    }

    #[test]
    fn librdkafka_checks_the_properties_without_a_broker() {
        for mechanism in ["PLAIN", "SCRAM-SHA-512", "OAUTHBEARER"] {
            let sasl = [
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanisms", mechanism),
                ("sasl.username", "pipewatch"),
                ("sasl.password", "secret"),
            ];
            if let Err(e) = validate_properties(&config(&sasl)) {
                panic!("SASL_SSL with {mechanism}: {e}");
            }
        }
        let err = validate_properties(&config(&[("no.such.property", "1")])).unwrap_err();
        assert!(err.to_string().contains("no.such.property"), "{err}");
    }

    #[test]
    fn assignment_log_lines_stay_short_at_thousands_of_partitions() {
        let contiguous: Vec<(String, i32)> = (0..5000).map(|p| ("orders".to_string(), p)).collect();
        let line = summary(contiguous.iter().map(|(t, p)| (t.as_str(), *p)));
        assert_eq!(line, "orders: 5000 (0-4999)");
        // every other partition (a replica's share): ranges are cut after 8
        let scattered: Vec<(String, i32)> =
            (0..5000).step_by(2).map(|p| ("behaviour".to_string(), p)).chain([("orders".to_string(), 7)]).collect();
        let line = summary(scattered.iter().map(|(t, p)| (t.as_str(), *p)));
        assert!(
            line.starts_with("behaviour: 2500 (0, 2, 4, 6, 8, 10, 12, 14, … 2492 more ranges); orders: 1 (7)"),
            "{line}"
        );
        assert!(line.len() < 200);
        assert_eq!(summary(std::iter::empty()), "none");
    }

    #[test]
    fn error_kinds_are_distinct_label_values() {
        let registry = Registry::new();
        let errors = SourceMetrics::register(&registry).unwrap();
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i);
            for _ in 0..=i {
                errors.error(*kind);
            }
        }
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(errors.errors(*kind), i as u64 + 1, "{}", kind.as_str());
        }
        let exported = registry.gather();
        let errors_family = exported.iter().find(|f| f.name() == "pipewatch_kafka_errors_total").unwrap();
        assert_eq!(errors_family.get_metric().len(), ErrorKind::ALL.len(), "every kind from 0");
        let fetches = exported.iter().find(|f| f.name() == "pipewatch_consumer_record_fetches_total").unwrap();
        assert_eq!(fetches.get_metric().len(), 3, "found, expired, failed from 0");
        let names: std::collections::HashSet<_> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        assert_eq!(classify(&KafkaError::Global(RDKafkaErrorCode::AllBrokersDown)), ErrorKind::AllBrokersDown);
    }
}
