//! What the source's threads send each other: the poller's findings for the consumer
//! thread, and the history learner's requests and answers. A leaf: it imports no other
//! module of the crate, so that the threads' modules never import each other.

use pipewatch_core::baseline::PartitionHistory;
use pipewatch_core::spec::ConsumerError;
use pipewatch_core::{
    ConnectSnapshot, FetchRequest, FollowerPayload, FollowerRecord, GroupListing, Millis, SchemaFetch,
};

/// The consumer thread's link to the schema registry (which another thread or task
/// asks): the ids records wait for go out through `ask`, which never blocks; the
/// answers come back, and the registry's side keeps asking while it does not answer.
pub struct SchemaLink {
    pub ask: Box<dyn FnMut(u32) + Send>,
    pub answers: std::sync::mpsc::Receiver<(u32, SchemaFetch)>,
}

/// The consumer thread's links to what is asked off the per-record path, by tasks of
/// the runtime: the schema registry, and the Kafka Connect clusters' latest states
/// (every `[[connect]]`, sent whole after each poll; the thread applies the last at its
/// tick).
#[derive(Default)]
pub struct Links {
    pub schemas: Option<SchemaLink>,
    pub connect: Option<std::sync::mpsc::Receiver<Vec<ConnectSnapshot>>>,
    /// `[discovery]` of consumer groups: the poller lists them.
    pub discovery: Option<GroupDiscovery>,
    /// The streams chosen by `topic_pattern`, and `[discovery] topics`: the poller lists
    /// the cluster's topics.
    pub topics: Option<TopicListing>,
}

/// How the poller finds topics: every `every` it lists the cluster's topics (metadata of
/// all topics) and gives each topic no stream reads yet to the first stream whose
/// `topic_pattern` matches it; of the rest, those `discover` matches are handed to the
/// monitor, which makes each a stream of its own. Internal topics (`__` first) never
/// match.
pub struct TopicListing {
    pub every: std::time::Duration,
    /// `(stream, matches)`, in the streams' order.
    pub patterns: Vec<(usize, NameMatch)>,
    /// `[discovery] topics`.
    pub discover: Option<NameMatch>,
}

/// What one listing of the cluster's topics found.
#[derive(Debug, Default)]
pub(crate) struct TopicsListed {
    /// Per pattern stream, the topics it reads now, those found at this listing last.
    pub(crate) patterns: Vec<(usize, Vec<String>)>,
    /// The topics `[discovery] topics` matches that no stream reads (the monitor decides).
    pub(crate) discovered: Vec<String>,
}

/// Whether a name (of a group, of a topic) is one to watch.
pub type NameMatch = Box<dyn Fn(&str) -> bool + Send>;

/// How the poller discovers consumer groups: every `every` it lists the cluster's groups
/// (ListGroups) and reads the committed topics of each whose name `matches`; each
/// discovered group's offsets are read once per `poll`, spread over the ticks (a listed
/// consumer's every tick).
pub struct GroupDiscovery {
    pub every: std::time::Duration,
    pub poll: std::time::Duration,
    pub matches: NameMatch,
}

/// A watched group the poller reads from now on, at the monitor's consumer index: a new
/// one (the next index), or the new topics of one (none: read no more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WatchedGroup {
    pub(crate) consumer: usize,
    pub(crate) group: String,
    pub(crate) topics: Vec<String>,
    /// Found by `[discovery]`: its offsets are read once per `poll`, not every tick.
    pub(crate) discovered: bool,
}

/// The discovered consumers caught up at the reader's last tick (see
/// `Monitor::caught_up_groups`), by the monitor's index: the poller does not read them
/// while the listing lists them.
pub(crate) type CaughtUp = std::sync::Arc<std::sync::Mutex<std::collections::HashSet<usize>>>;

/// Follower records of one join (the pair's index) the joins' own consumer read at `at`:
/// read (JSON) or, in a schema-registry format, as they came (decoded by the monitor).
pub(crate) struct JoinBatch {
    pub(crate) join: usize,
    pub(crate) records: Vec<FollowerRecord>,
    pub(crate) payloads: Vec<FollowerPayload>,
    pub(crate) at: Millis,
}

/// What the log-end poller found at one tick.
pub(crate) struct LogEndPoll {
    pub(crate) at: Millis,
    /// `None`: the cluster did not answer.
    pub(crate) log_ends: Option<LogEnds>,
    /// Why it did not.
    pub(crate) error: Option<String>,
    /// Per watched consumer (`None`: not read at this tick): its group's committed
    /// offsets `(topic, partition, offset)`,
    /// or why they could not be read. Empty when the cluster did not answer.
    pub(crate) committed: Vec<Option<Result<crate::groups::CommittedOffsets, ConsumerError>>>,
    /// Records fetched for committed offsets older than the offset index.
    pub(crate) fetched: Vec<(FetchRequest, FetchOutcome)>,
    /// The groups listed at this tick (every `[discovery].every`).
    pub(crate) groups: Option<GroupListing>,
    /// The cluster's topics listed at this tick (every `kafka.metadata_refresh`, with a
    /// `topic_pattern` or `[discovery] topics`).
    pub(crate) topics: Option<TopicsListed>,
}

/// What a record fetch found: `(offset, payload, Kafka timestamp)` from the record before
/// the committed offset on.
#[derive(Debug)]
pub(crate) enum FetchOutcome {
    Records(Vec<(i64, Option<Vec<u8>>, Option<Millis>)>),
    Expired { log_start: Option<i64> },
    Failed,
}

/// The partitions of the topics that exist, the topics that do not, and the log ends
/// asked for (ListOffsets).
#[derive(Debug, Default)]
pub(crate) struct LogEnds {
    pub(crate) partitions: Vec<(String, i32)>,
    pub(crate) offsets: Vec<(String, i32, i64)>,
    pub(crate) missing: Vec<String>,
    /// Topics the authorizer does not let pipewatch describe.
    pub(crate) denied: Vec<String>,
}

/// Partitions of one stream whose history is wanted.
#[derive(Debug, Clone)]
pub(crate) struct HistoryRequest {
    pub stream: usize,
    pub name: String,
    pub topic: String,
    pub partitions: Vec<i32>,
    pub history_ms: Millis,
}

/// What was learnt: per partition its history, `None` where it could not be read.
pub(crate) struct Learned {
    pub topic: String,
    pub partitions: Vec<(i32, Option<PartitionHistory>)>,
}
