//! Kafka Connect: the connectors that write the watched streams (source connectors, e.g.
//! Debezium reading the orders database) and read them (sink connectors), as the Connect
//! REST API reports them. The binary polls the API and hands the monitor one
//! [`ConnectSnapshot`] per Connect cluster ([`crate::Monitor::set_connect`]); here they are
//! matched to streams and consumers by topic and group, and the worst state of each
//! connector and its tasks becomes a [`ConnectorIssue`]: the stream's or consumer's cause
//! (`connector_failed`, `connector_unassigned`, `connector_paused`), named with the
//! connector, the task, the worker and the error.
//!
//! A cluster that does not answer tells nothing of its connectors: their causes are not
//! claimed (the streams keep their Kafka-level causes) and the connectors' last known
//! states are kept for the status, marked as such.

use serde::Serialize;

use crate::snapshot::KafkaStatus;
use crate::time::Millis;

/// Which way a connector moves records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorType {
    /// Writes a topic (from a database, a file, an API).
    Source,
    /// Reads topics (into a warehouse, a search index).
    Sink,
    Unknown,
}

impl ConnectorType {
    /// As the REST API spells it (`source`, `sink`).
    pub fn from_api(text: &str) -> Self {
        match text.to_ascii_lowercase().as_str() {
            "source" => Self::Source,
            "sink" => Self::Sink,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Sink => "sink",
            Self::Unknown => "unknown",
        }
    }
}

/// The state of a connector or of one of its tasks, as Connect reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorState {
    Running,
    Paused,
    /// Stopped by an operator (`PUT /connectors/{name}/stop`, Kafka 3.5+): no tasks run.
    Stopped,
    /// No worker runs it (a worker left, a rebalance is under way).
    Unassigned,
    Restarting,
    Failed,
    /// A state this version of pipewatch does not know.
    Unknown,
}

impl ConnectorState {
    /// Every state, as `pipewatch_connector_state{state}` exports them.
    pub const ALL: [ConnectorState; 7] =
        [Self::Running, Self::Paused, Self::Stopped, Self::Unassigned, Self::Restarting, Self::Failed, Self::Unknown];

    /// As the REST API spells it (`RUNNING`, `FAILED`, …).
    pub fn from_api(text: &str) -> Self {
        match text.to_ascii_uppercase().as_str() {
            "RUNNING" => Self::Running,
            "PAUSED" => Self::Paused,
            "STOPPED" => Self::Stopped,
            "UNASSIGNED" => Self::Unassigned,
            "RESTARTING" => Self::Restarting,
            "FAILED" => Self::Failed,
            _ => Self::Unknown,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
            Self::Unassigned => "unassigned",
            Self::Restarting => "restarting",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
        }
    }

    /// What this state makes of the streams the connector writes, if anything.
    fn fault(self) -> Option<ConnectorFault> {
        match self {
            Self::Failed => Some(ConnectorFault::Failed),
            Self::Unassigned => Some(ConnectorFault::Unassigned),
            Self::Paused | Self::Stopped => Some(ConnectorFault::Paused),
            Self::Running | Self::Restarting | Self::Unknown => None,
        }
    }
}

/// What is wrong with a connector, worst first: the order in which they are diagnosed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorFault {
    /// The connector or one of its tasks is `FAILED`: it stopped on an error and stays
    /// stopped until restarted.
    Failed,
    /// The connector or one of its tasks runs on no worker.
    Unassigned,
    /// Paused or stopped by an operator: somebody's decision.
    Paused,
}

/// One task of a connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskStatus {
    pub id: i32,
    pub state: ConnectorState,
    pub worker_id: String,
    /// The Java stack trace of a failed task, as Connect holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// Where a connector's topics were learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicsFrom {
    /// `GET /connectors/{name}/topics` (KIP-558): the topics it actually wrote or read.
    ActiveTopics,
    /// Its config (`topics`, `topic`, `topic.prefix`, …): the API lacks the active
    /// topics (Connect before 2.5, or `topic.tracking.enable = false`).
    Config,
}

/// One connector as the REST API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectorStatus {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ConnectorType,
    pub state: ConnectorState,
    pub worker_id: String,
    /// The stack trace of a failed connector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    pub tasks: Vec<TaskStatus>,
    /// The topics it writes (a source) or reads (a sink; its `topics.regex` matched
    /// against the watched topics).
    pub topics: Vec<String>,
    pub topics_from: TopicsFrom,
    /// A source's `topic.prefix` (Debezium: topics are `prefix.schema.table`), matched
    /// when its active topics are not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_prefix: Option<String>,
    /// A sink's consumer group: `consumer.override.group.id`, else `connect-<name>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Times the connector or one of its tasks went into `FAILED` while watched.
    pub failures: u64,
}

/// One Connect cluster (`[[connect]]`) at the last poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectSnapshot {
    /// The `connect` label.
    pub name: String,
    pub url: String,
    pub status: KafkaStatus,
    /// Why it does not answer, while it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the last poll was answered.
    pub polled_at_ms: Option<Millis>,
    /// Its connectors: as last answered (kept, for the status, while it does not answer).
    pub connectors: Vec<ConnectorStatus>,
}

/// What is wrong with a connector that writes or reads a watched stream: the connector,
/// the task (none when the connector itself is in that state), the worker and the error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectorIssue {
    pub connect: String,
    pub connector: String,
    pub fault: ConnectorFault,
    pub state: ConnectorState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<i32>,
    pub worker_id: String,
    /// The first line of the trace and, when the trace has one, its root cause (the last
    /// `Caused by:`), e.g. `org.postgresql.util.PSQLException: Connection to
    /// 127.0.0.1:5432 refused`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ConnectorIssue {
    /// One line for the status, the page and the alert's description.
    pub fn describe(&self) -> String {
        let what = match self.task {
            Some(t) => format!("connector {} task {t}", self.connector),
            None => format!("connector {}", self.connector),
        };
        let worker = if self.worker_id.is_empty() { String::new() } else { format!(" on worker {}", self.worker_id) };
        let error = self.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default();
        format!("{what} ({}){worker} is {}{error}", self.connect, self.state.as_str().to_uppercase())
    }
}

/// The lines of a Java stack trace a person needs, without the frames: the first (the
/// exception thrown), the exception that caused it (the first `Caused by:`: Debezium's
/// `PSQLException`, a converter's `DataException`) and, deeper still, the root cause
/// (the last).
pub fn trace_summary(trace: &str) -> Option<String> {
    let first = trace.lines().map(str::trim).find(|l| !l.is_empty())?;
    let causes: Vec<&str> = trace.lines().filter_map(|l| l.trim().strip_prefix("Caused by: ")).collect();
    Some(match causes.as_slice() {
        [] => first.to_string(),
        [cause] => format!("{first} (caused by {cause})"),
        [cause, .., root] => format!("{first} (caused by {cause}; root cause {root})"),
    })
}

impl ConnectorStatus {
    /// The worst state of the connector and its tasks, if it is a fault: the connector's
    /// own first, then the first task in that state.
    pub fn issue(&self, connect: &str) -> Option<ConnectorIssue> {
        let own = self.state.fault().map(|f| (f, self.state, None, &self.worker_id, &self.trace));
        let tasks =
            self.tasks.iter().filter_map(|t| t.state.fault().map(|f| (f, t.state, Some(t.id), &t.worker_id, &t.trace)));
        let (fault, state, task, worker, trace) = own.into_iter().chain(tasks).min_by_key(|(f, ..)| *f)?;
        Some(ConnectorIssue {
            connect: connect.to_string(),
            connector: self.name.clone(),
            fault,
            state,
            task,
            worker_id: worker.clone(),
            error: trace.as_deref().and_then(trace_summary),
        })
    }

    /// Whether this source connector writes `topic`.
    pub fn writes(&self, topic: &str) -> bool {
        self.kind == ConnectorType::Source
            && (self.topics.iter().any(|t| t == topic)
                || (self.topics_from == TopicsFrom::Config
                    && self
                        .topic_prefix
                        .as_deref()
                        .is_some_and(|p| topic.strip_prefix(p).is_some_and(|rest| rest.starts_with('.')))))
    }

    /// Whether this sink connector reads `topic`.
    pub fn reads(&self, topic: &str) -> bool {
        self.kind == ConnectorType::Sink && self.topics.iter().any(|t| t == topic)
    }
}

impl ConnectSnapshot {
    /// Whether the cluster answered the last poll: only then do its connectors' states
    /// count.
    pub fn answers(&self) -> bool {
        self.status == KafkaStatus::Up
    }
}

/// The worst issue of the connectors, on clusters that answer, that write a topic of
/// the stream (`writes`).
pub fn producer_issue(
    clusters: &[ConnectSnapshot],
    writes: impl Fn(&ConnectorStatus) -> bool,
) -> Option<ConnectorIssue> {
    worst(clusters, writes)
}

/// The worst issue of the sink connectors, on clusters that answer, whose group is `group`.
pub fn sink_issue(clusters: &[ConnectSnapshot], group: &str) -> Option<ConnectorIssue> {
    worst(clusters, |c| c.kind == ConnectorType::Sink && c.group.as_deref() == Some(group))
}

/// The connectors for which `is` holds (those that write a stream's topics, say), as
/// `connect/connector`.
pub fn connectors_of(clusters: &[ConnectSnapshot], is: impl Fn(&ConnectorStatus) -> bool) -> Vec<String> {
    clusters
        .iter()
        .flat_map(|k| k.connectors.iter().map(move |c| (k, c)))
        .filter(|(_, c)| is(c))
        .map(|(k, c)| format!("{}/{}", k.name, c.name))
        .collect()
}

/// Whether a cluster that does not answer held, when it last did, a connector for which
/// `is` holds: its state now is unknown.
pub fn unknown(clusters: &[ConnectSnapshot], is: impl Fn(&ConnectorStatus) -> bool) -> Option<String> {
    clusters.iter().find(|k| !k.answers() && k.connectors.iter().any(&is)).map(|k| k.name.clone())
}

fn worst(clusters: &[ConnectSnapshot], is: impl Fn(&ConnectorStatus) -> bool) -> Option<ConnectorIssue> {
    clusters
        .iter()
        .filter(|k| k.answers())
        .flat_map(|k| k.connectors.iter().filter(|c| is(c)).filter_map(|c| c.issue(&k.name)))
        .min_by_key(|i| i.fault)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "org.apache.kafka.connect.errors.ConnectException: An exception occurred in the change event producer. This connector will be stopped.\n\tat io.debezium.pipeline.ErrorHandler.setProducerThrowable(ErrorHandler.java:67)\nCaused by: org.postgresql.util.PSQLException: Connection to 127.0.0.1:5432 refused. Check that the hostname and port are correct.\n\tat org.postgresql.core.v3.ConnectionFactoryImpl.openConnectionImpl(ConnectionFactoryImpl.java:346)\n";

    fn connector(name: &str, kind: ConnectorType, state: ConnectorState, tasks: &[ConnectorState]) -> ConnectorStatus {
        ConnectorStatus {
            name: name.into(),
            kind,
            state,
            worker_id: "10.0.0.1:8083".into(),
            trace: None,
            tasks: tasks
                .iter()
                .enumerate()
                .map(|(i, s)| TaskStatus {
                    id: i as i32,
                    state: *s,
                    worker_id: format!("10.0.0.{}:8083", i + 2),
                    trace: (*s == ConnectorState::Failed).then(|| TRACE.to_string()),
                })
                .collect(),
            topics: vec!["shop.public.orders".into()],
            topics_from: TopicsFrom::ActiveTopics,
            topic_prefix: Some("shop".into()),
            group: (kind == ConnectorType::Sink).then(|| format!("connect-{name}")),
            failures: 0,
        }
    }

    fn cluster(status: KafkaStatus, connectors: Vec<ConnectorStatus>) -> ConnectSnapshot {
        ConnectSnapshot {
            name: "cdc".into(),
            url: "http://connect:8083".into(),
            status,
            error: None,
            polled_at_ms: None,
            connectors,
        }
    }

    #[test]
    fn the_task_that_failed_is_named_with_its_worker_and_root_cause() {
        use ConnectorState::*;
        // the connector itself says RUNNING: the tasks must be read
        let c = connector("orders-cdc", ConnectorType::Source, Running, &[Running, Failed]);
        let issue = c.issue("cdc").unwrap();
        assert_eq!(
            (issue.fault, issue.task, issue.worker_id.as_str()),
            (ConnectorFault::Failed, Some(1), "10.0.0.3:8083")
        );
        assert_eq!(
            issue.describe(),
            "connector orders-cdc task 1 (cdc) on worker 10.0.0.3:8083 is FAILED: org.apache.kafka.connect.errors.ConnectException: An exception occurred in the change event producer. This connector will be stopped. (caused by org.postgresql.util.PSQLException: Connection to 127.0.0.1:5432 refused. Check that the hostname and port are correct.)"
        );
        // failed outranks unassigned outranks paused, the connector's own state first
        let c = connector("x", ConnectorType::Source, Paused, &[Unassigned, Failed]);
        assert_eq!(c.issue("cdc").map(|i| (i.fault, i.task)), Some((ConnectorFault::Failed, Some(1))));
        let c = connector("x", ConnectorType::Source, Paused, &[Paused]);
        assert_eq!(c.issue("cdc").map(|i| (i.fault, i.task)), Some((ConnectorFault::Paused, None)));
        let c = connector("x", ConnectorType::Source, Stopped, &[]);
        assert_eq!(c.issue("cdc").map(|i| i.fault), Some(ConnectorFault::Paused), "stopped is an operator's decision");
        assert_eq!(connector("x", ConnectorType::Source, Running, &[Running, Restarting]).issue("cdc"), None);
    }

    #[test]
    fn connectors_are_matched_by_topic_and_group_on_clusters_that_answer() {
        use ConnectorState::*;
        let source = connector("orders-cdc", ConnectorType::Source, Running, &[Failed]);
        let sink = connector("warehouse", ConnectorType::Sink, Running, &[Failed]);
        let up = [cluster(KafkaStatus::Up, vec![source.clone(), sink.clone()])];
        let writes = |t: &'static str| move |c: &ConnectorStatus| c.writes(t);
        assert_eq!(producer_issue(&up, writes("shop.public.orders")).map(|i| i.connector), Some("orders-cdc".into()));
        assert_eq!(producer_issue(&up, writes("clicks")), None);
        assert_eq!(sink_issue(&up, "connect-warehouse").map(|i| i.connector), Some("warehouse".into()));
        assert_eq!(sink_issue(&up, "analytics"), None);
        assert_eq!(connectors_of(&up, writes("shop.public.orders")), ["cdc/orders-cdc"]);
        assert_eq!(connectors_of(&up, |c| c.reads("shop.public.orders")), ["cdc/warehouse"]);
        // a cluster that does not answer claims nothing, and says what it leaves unknown
        let down = [cluster(KafkaStatus::Down, vec![source.clone()])];
        assert_eq!(producer_issue(&down, writes("shop.public.orders")), None);
        assert_eq!(unknown(&down, |c| c.writes("shop.public.orders")), Some("cdc".into()));
        assert_eq!(unknown(&up, |c| c.writes("shop.public.orders")), None);
        // without active topics, a Debezium-style prefix names the topics
        let mut by_config = source;
        by_config.topics = Vec::new();
        by_config.topics_from = TopicsFrom::Config;
        assert!(by_config.writes("shop.public.orders") && !by_config.writes("shopping.orders"));
        assert!(sink.reads("shop.public.orders") && !sink.writes("shop.public.orders"));
    }

    #[test]
    fn a_trace_is_summed_up_by_its_first_line_and_root_cause() {
        assert_eq!(
            trace_summary("java.lang.NullPointerException\n\tat x.y(Z.java:1)"),
            Some("java.lang.NullPointerException".into())
        );
        assert_eq!(trace_summary("\n  \n"), None);
        assert!(trace_summary(TRACE).unwrap().ends_with("(caused by org.postgresql.util.PSQLException: Connection to 127.0.0.1:5432 refused. Check that the hostname and port are correct.)"));
        let deep = format!("{TRACE}Caused by: java.net.ConnectException: Connection refused\n\tat sun.nio.ch.Net.pollConnect(Native Method)\n");
        assert!(trace_summary(&deep)
            .unwrap()
            .ends_with("are correct.; root cause java.net.ConnectException: Connection refused)"));
    }
}
