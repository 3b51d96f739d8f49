//! The Kafka Connect clients: each `[[connect]]` cluster's REST API polled every `poll`,
//! on the runtime, read only (`GET`, never a `PUT`, `POST` or `DELETE`: pipewatch does not
//! restart connectors):
//!
//! - `GET /connectors?expand=status&expand=info`: every connector's type, config, state
//!   and its tasks' states, workers and traces, in one request;
//! - `GET /connectors/{name}/topics` (KIP-558): the topics it actually wrote or read. Where
//!   the API lacks it (a 404 before Connect 2.5, a 403 with `topic.tracking.enable =
//!   false`) the connector's config says: a source's `topic`/`topics`/`kafka.topic`, or
//!   Debezium's `topic.prefix` (`database.server.name` before Debezium 2); a sink's
//!   `topics`, and `topics.regex` matched against the watched topics. The status says
//!   which (`topics_from`).
//!
//! After each poll the source thread gets every cluster's [`ConnectSnapshot`]; the
//! monitor matches connectors to streams and consumers ([`pipewatch_core::connect`]). A
//! poll that fails is tried again once after a second before the cluster is declared
//! down (one lost request is not an outage): its connectors are then kept as last
//! known, and their states no longer count.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pipewatch_alert::{Access, HttpClient};
use pipewatch_core::connect::{ConnectorState, ConnectorStatus, ConnectorType, TaskStatus, TopicsFrom};
use pipewatch_core::{ConnectSnapshot, KafkaStatus, Millis};
use serde::Deserialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// `[[connect]]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectConfig {
    /// The `connect` label.
    pub name: String,
    /// The REST API's base URL, without a trailing `/`.
    pub url: String,
    pub poll: Duration,
    pub timeout: Duration,
    pub access: Access,
}

/// How long a failed poll waits before it is tried once more.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
struct Expanded {
    status: Option<StatusBody>,
    info: Option<InfoBody>,
}

#[derive(Deserialize)]
struct StatusBody {
    connector: StateBody,
    #[serde(default)]
    tasks: Vec<TaskBody>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct StateBody {
    state: String,
    #[serde(default)]
    worker_id: String,
    trace: Option<String>,
}

#[derive(Deserialize)]
struct TaskBody {
    id: i32,
    state: String,
    #[serde(default)]
    worker_id: String,
    trace: Option<String>,
}

#[derive(Deserialize)]
struct InfoBody {
    #[serde(default)]
    config: BTreeMap<String, Value>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// One cluster's client.
pub struct ConnectClient {
    config: ConnectConfig,
    client: HttpClient,
    /// The watched topics, for a sink's `topics.regex`.
    watched: Vec<String>,
}

impl ConnectClient {
    pub fn new(config: ConnectConfig, watched: Vec<String>) -> Self {
        let client = HttpClient::for_remote(&config.access, &format!("connect={}", config.name));
        Self { config, client, watched }
    }

    pub fn config(&self) -> &ConnectConfig {
        &self.config
    }

    /// Every connector, its tasks and its topics, as the API says now.
    pub async fn poll(&self) -> Result<Vec<ConnectorStatus>, String> {
        let url = format!("{}/connectors?expand=status&expand=info", self.config.url);
        let listed: BTreeMap<String, Expanded> = self.get_json(&url).await?;
        let mut out = Vec::with_capacity(listed.len());
        for (name, e) in listed {
            // a connector deleted or created between the list and its status: next poll
            let Some(status) = e.status else { continue };
            let (config, info_kind) = e.info.map(|i| (i.config, i.kind)).unwrap_or_default();
            let kind = ConnectorType::from_api(status.kind.as_deref().or(info_kind.as_deref()).unwrap_or(""));
            let (topics, topics_from) = match self.active_topics(&name).await {
                Ok(active) => (active, TopicsFrom::ActiveTopics),
                Err(Absent) => (Vec::new(), TopicsFrom::Config),
            };
            out.push(self.connector(name, kind, status, &config, topics, topics_from));
        }
        Ok(out)
    }

    fn connector(
        &self,
        name: String,
        kind: ConnectorType,
        status: StatusBody,
        config: &BTreeMap<String, Value>,
        active: Vec<String>,
        topics_from: TopicsFrom,
    ) -> ConnectorStatus {
        let text = |key: &str| config.get(key).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty());
        let list = |key: &str| text(key).into_iter().flat_map(|v| v.split(',')).map(|t| t.trim().to_string());
        let mut topics: BTreeSet<String> = active.into_iter().collect();
        let mut topic_prefix = None;
        let mut group = None;
        match kind {
            // what a sink subscribes to is its config: exact, whatever it has read yet
            ConnectorType::Sink => {
                topics.extend(list("topics").filter(|t| !t.is_empty()));
                if let Some(re) = text("topics.regex") {
                    match regex::Regex::new(&format!("^(?:{re})$")) {
                        Ok(re) => topics.extend(self.watched.iter().filter(|t| re.is_match(t)).cloned()),
                        Err(e) => {
                            warn!(connect = %self.config.name, connector = %name, error = %e, "topics.regex is not a regular expression pipewatch can read")
                        }
                    }
                }
                group =
                    Some(text("consumer.override.group.id").map_or_else(|| format!("connect-{name}"), String::from));
            }
            _ if topics_from == TopicsFrom::Config => {
                for key in ["topic", "topics", "kafka.topic"] {
                    topics.extend(list(key).filter(|t| !t.is_empty()));
                }
                topic_prefix = text("topic.prefix").or(text("database.server.name")).map(String::from);
            }
            _ => {}
        }
        ConnectorStatus {
            name,
            kind,
            state: ConnectorState::from_api(&status.connector.state),
            worker_id: status.connector.worker_id,
            trace: status.connector.trace,
            tasks: status
                .tasks
                .into_iter()
                .map(|t| TaskStatus {
                    id: t.id,
                    state: ConnectorState::from_api(&t.state),
                    worker_id: t.worker_id,
                    trace: t.trace,
                })
                .collect(),
            topics: topics.into_iter().collect(),
            topics_from,
            topic_prefix,
            group,
            failures: 0,
        }
    }

    /// `GET /connectors/{name}/topics`; [`Absent`] where the API lacks it (or fails: the
    /// config then says).
    async fn active_topics(&self, name: &str) -> Result<Vec<String>, Absent> {
        #[derive(Deserialize)]
        struct Topics {
            #[serde(default)]
            topics: Vec<String>,
        }
        let url = format!("{}/connectors/{}/topics", self.config.url, percent_encode(name));
        let answer: BTreeMap<String, Topics> = self.get_json(&url).await.map_err(|_| Absent)?;
        Ok(answer.into_values().flat_map(|t| t.topics).collect())
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, url: &str) -> Result<T, String> {
        let answer = self.client.get(url, "application/json", self.config.timeout).await?;
        if !answer.status.is_success() {
            return Err(format!("{url} answered {} {}", answer.status, answer.excerpt()));
        }
        serde_json::from_slice(&answer.body)
            .map_err(|e| format!("{url} answered what is not Kafka Connect's REST API: {e}"))
    }

    /// `check-config --connect`: how many connectors the API lists.
    pub async fn check(&self) -> Result<usize, String> {
        let url = format!("{}/connectors", self.config.url);
        self.get_json::<Vec<String>>(&url).await.map(|names| names.len())
    }
}

/// The API has no active topics for the connector.
struct Absent;

/// A connector name in a URL path.
fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Times a connector or one of its tasks went into `FAILED` since the previous poll.
fn count_failures(previous: &[ConnectorStatus], now: &mut [ConnectorStatus]) {
    for c in now.iter_mut() {
        let before = previous.iter().find(|p| p.name == c.name);
        let was_failed = |task: Option<i32>| {
            before.is_some_and(|p| match task {
                None => p.state == ConnectorState::Failed,
                Some(id) => p.tasks.iter().any(|t| t.id == id && t.state == ConnectorState::Failed),
            })
        };
        let mut new = u64::from(c.state == ConnectorState::Failed && !was_failed(None));
        new += c.tasks.iter().filter(|t| t.state == ConnectorState::Failed && !was_failed(Some(t.id))).count() as u64;
        c.failures = before.map_or(0, |p| p.failures) + new;
    }
}

/// Starts one task per cluster on the current runtime; after each poll every cluster's
/// latest state goes to `send` (in config order). The tasks end when `shutdown` is
/// cancelled.
pub fn start(
    clients: Vec<ConnectClient>,
    now_ms: fn() -> Millis,
    send: impl Fn(Vec<ConnectSnapshot>) + Send + Sync + 'static,
    shutdown: CancellationToken,
) {
    let latest: Arc<Mutex<Vec<ConnectSnapshot>>> = Arc::new(Mutex::new(
        clients
            .iter()
            .map(|c| ConnectSnapshot {
                name: c.config.name.clone(),
                url: c.config.url.clone(),
                status: KafkaStatus::Unknown,
                error: None,
                polled_at_ms: None,
                connectors: Vec::new(),
            })
            .collect(),
    ));
    let send = Arc::new(send);
    for (i, client) in clients.into_iter().enumerate() {
        let (latest, send, shutdown) = (latest.clone(), send.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(client.config.poll);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let mut polled = client.poll().await;
                if polled.is_err() {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(RETRY) => {}
                    }
                    polled = client.poll().await;
                }
                let all = {
                    let mut all = latest.lock().unwrap_or_else(PoisonError::into_inner);
                    let k = &mut all[i];
                    match polled {
                        Ok(mut connectors) => {
                            count_failures(&k.connectors, &mut connectors);
                            if k.status != KafkaStatus::Up {
                                info!(connect = %k.name, url = %k.url, connectors = connectors.len(), "Kafka Connect answers");
                            }
                            log_changes(&k.name, &k.connectors, &connectors);
                            (k.status, k.error, k.polled_at_ms, k.connectors) =
                                (KafkaStatus::Up, None, Some(now_ms()), connectors);
                        }
                        Err(e) => {
                            if k.status != KafkaStatus::Down {
                                warn!(connect = %k.name, url = %k.url, error = %e, "Kafka Connect does not answer");
                            }
                            (k.status, k.error) = (KafkaStatus::Down, Some(e));
                        }
                    }
                    all.clone()
                };
                send(all);
            }
        });
    }
}

/// One log line per connector or task that changes state.
fn log_changes(connect: &str, before: &[ConnectorStatus], now: &[ConnectorStatus]) {
    for c in now {
        let old = before.iter().find(|p| p.name == c.name);
        if old.map(|o| o.state) != Some(c.state) {
            log_state(connect, &c.name, None, c.state, &c.worker_id, c.trace.as_deref());
        }
        for t in &c.tasks {
            let was = old.and_then(|o| o.tasks.iter().find(|x| x.id == t.id)).map(|x| x.state);
            if was != Some(t.state) {
                log_state(connect, &c.name, Some(t.id), t.state, &t.worker_id, t.trace.as_deref());
            }
        }
    }
}

fn log_state(connect: &str, name: &str, task: Option<i32>, state: ConnectorState, worker: &str, trace: Option<&str>) {
    let error = trace.and_then(pipewatch_core::connect::trace_summary).unwrap_or_default();
    match state {
        ConnectorState::Failed => {
            warn!(connect, connector = name, task, worker, error, "a Kafka Connect connector is FAILED")
        }
        ConnectorState::Unassigned | ConnectorState::Paused | ConnectorState::Stopped => {
            warn!(
                connect,
                connector = name,
                task,
                worker,
                state = state.as_str(),
                "a Kafka Connect connector does not run"
            )
        }
        _ => info!(connect, connector = name, task, worker, state = state.as_str(), "Kafka Connect connector state"),
    }
}

/// What a stand-in for a Connect REST API answers at a moment: the expanded connector
/// list (`GET /connectors?expand=status&expand=info`) and each connector's active topics.
pub struct StandInAnswer {
    pub connectors: Value,
    pub topics: BTreeMap<String, Vec<String>>,
}

/// `pipewatch demo` (and the poll's bench): an in-process stand-in for a Kafka Connect
/// REST API, answering what `answer` says for the time since it started (the demo's
/// script). Like the mock cluster, never a stand-in for the tests' real Connect.
pub async fn stand_in(answer: impl Fn(Duration) -> StandInAnswer + Send + Sync + 'static) -> std::io::Result<String> {
    use axum::extract::{Path, State};
    use axum::response::IntoResponse;
    use axum::routing::get;
    type Answer = Arc<(tokio::time::Instant, Box<dyn Fn(Duration) -> StandInAnswer + Send + Sync>)>;
    let json = |v: Value| ([(axum::http::header::CONTENT_TYPE, "application/json")], v.to_string()).into_response();
    let list = move |State(a): State<Answer>| async move { json((a.1)(a.0.elapsed()).connectors) };
    let topics = move |State(a): State<Answer>, Path(name): Path<String>| async move {
        let topics = (a.1)(a.0.elapsed()).topics.remove(&name).unwrap_or_default();
        json(serde_json::json!({ name: { "topics": topics } }))
    };
    let state: Answer = Arc::new((tokio::time::Instant::now(), Box::new(answer)));
    let router = axum::Router::new()
        .route("/connectors", get(list))
        .route("/connectors/{name}/topics", get(topics))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            warn!(error = %e, "the Kafka Connect stand-in stopped");
        }
    });
    Ok(url)
}

/// One connector as the expanded list shows it: its type, config, state and tasks
/// (`(state, trace)` each, on worker `worker`).
pub fn expanded(kind: &str, config: Value, worker: &str, tasks: &[(&str, Option<&str>)]) -> Value {
    let tasks: Vec<Value> = tasks
        .iter()
        .enumerate()
        .map(|(id, (state, trace))| {
            let mut t = serde_json::json!({ "id": id, "state": state, "worker_id": worker });
            if let Some(trace) = trace {
                t["trace"] = (*trace).into();
            }
            t
        })
        .collect();
    serde_json::json!({
        "status": { "connector": { "state": "RUNNING", "worker_id": worker }, "tasks": tasks, "type": kind },
        "info": { "config": config, "tasks": [], "type": kind },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, state: ConnectorState, tasks: &[ConnectorState], failures: u64) -> ConnectorStatus {
        ConnectorStatus {
            name: name.into(),
            kind: ConnectorType::Source,
            state,
            worker_id: String::new(),
            trace: None,
            tasks: tasks
                .iter()
                .enumerate()
                .map(|(i, s)| TaskStatus { id: i as i32, state: *s, worker_id: String::new(), trace: None })
                .collect(),
            topics: Vec::new(),
            topics_from: TopicsFrom::ActiveTopics,
            topic_prefix: None,
            group: None,
            failures,
        }
    }

    #[test]
    fn a_failure_is_counted_once_per_transition_into_failed() {
        use ConnectorState::*;
        let mut now = vec![status("cdc", Running, &[Failed, Running], 0)];
        count_failures(&[], &mut now);
        assert_eq!(now[0].failures, 1, "failed when first seen");
        let before = now.clone();
        let mut still = vec![status("cdc", Running, &[Failed, Failed], 0)];
        count_failures(&before, &mut still);
        assert_eq!(still[0].failures, 2, "task 1 is new, task 0 still the same failure");
        let mut back = vec![status("cdc", Running, &[Running, Running], 0)];
        count_failures(&still, &mut back);
        let mut again = vec![status("cdc", Failed, &[Failed, Running], 0)];
        count_failures(&back, &mut again);
        assert_eq!(again[0].failures, 4, "restarted, then the connector and task 0 failed again");
    }

    #[test]
    fn names_are_encoded_in_paths() {
        assert_eq!(percent_encode("orders cdc/1"), "orders%20cdc%2F1");
        assert_eq!(percent_encode("shop.orders-cdc_2"), "shop.orders-cdc_2");
    }
}
