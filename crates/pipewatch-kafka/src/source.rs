//! The source: one consumer in `kafka.group_id` reading every stream's topic on its own
//! thread, which owns the [`Monitor`] (so the per-record path takes no lock), and a
//! log-end poller thread that asks the broker for every partition's log end each tick.
//!
//! pipewatch only reads: offsets are never committed (`enable.auto.commit=false`), and
//! each start begins at `start` (`earliest`, `latest` or `lookback`).
//! Its parts: the clients' settings (`client`), the rebalance callback (`rebalance`), the
//! consumer thread (`reader`), the log-end poller (`poller`), the history learner
//! (`history`), the joins' own consumer (`joins`) and the messages between them
//! (`messages`).

use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use pipewatch_core::{Monitor, Snapshot};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;

use crate::client::{client_config, SourceConfig};
use crate::history::{learn_histories, Clients};
use crate::joins::{JoinContext, Joins};
use crate::messages::Links;
use crate::messages::{CaughtUp, WatchedGroup};
use crate::metrics::SourceMetrics;
use crate::poller::{poll_log_ends, Poller};
use crate::reader::{HistoryLink, PollerLink, Reader};
use crate::rebalance::SourceContext;
use crate::records::RecordQueue;
use crate::topics::TopicTable;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("failed to create the Kafka consumer: {0}")]
    Create(#[source] KafkaError),
    #[error("failed to subscribe to {topics:?}: {source}")]
    Subscribe { topics: Vec<String>, source: KafkaError },
    #[error("failed to start the {0} thread: {1}")]
    Thread(&'static str, #[source] std::io::Error),
}

/// The running source: the consumer thread and the log-end poller.
pub struct Source {
    consumer: JoinHandle<()>,
    poller: JoinHandle<()>,
    learner: Option<JoinHandle<()>>,
    joins: Option<JoinHandle<()>>,
}

impl Source {
    /// Starts reading. `publish` gets the monitor's snapshot every tick (the hand-off to
    /// the tick stage); the threads stop once `shutdown` is set.
    pub fn spawn(
        config: SourceConfig,
        monitor: Monitor,
        metrics: SourceMetrics,
        shutdown: Arc<AtomicBool>,
        links: Links,
        publish: impl FnMut(Snapshot) + Send + 'static,
    ) -> Result<Self, SourceError> {
        let table = TopicTable::new(&monitor);
        let topics = table.names();
        let context = SourceContext {
            start: config.start,
            metrics: metrics.clone(),
            changes: Mutex::new(Vec::new()),
            changed: AtomicBool::new(false),
            records: Mutex::new(None),
            group_denied: AtomicBool::new(false),
            auth_error: Mutex::new(None),
            brokers_down_at: AtomicI64::new(0),
        };
        let consumer: BaseConsumer<SourceContext> =
            client_config(&config, true).create_with_context(context).map_err(SourceError::Create)?;
        let records = RecordQueue::new(&consumer);
        *consumer.context().records.lock().unwrap_or_else(PoisonError::into_inner) = Some(records.handle());
        let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        // streams chosen by a pattern only: subscribed once the poller finds their topics
        if !topic_refs.is_empty() {
            consumer
                .subscribe(&topic_refs)
                .map_err(|source| SourceError::Subscribe { topics: topics.clone(), source })?;
        }
        let poll_client: BaseConsumer = client_config(&config, false).create().map_err(SourceError::Create)?;
        let groups: Vec<WatchedGroup> = monitor
            .consumers()
            .enumerate()
            .map(|(consumer, c)| WatchedGroup {
                consumer,
                group: c.group.clone(),
                topics: table.of_streams(&c.streams),
                discovered: false,
            })
            .collect();

        // groups may be added while running when Kafka Connect's sinks are watched
        let fetcher = if groups.is_empty() && links.connect.is_none() && links.discovery.is_none() {
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
        let discovery = links.discovery.map(|d| (d, config.group_id.clone()));
        let listing = links.topics;
        let (discovered_tx, discovered) = mpsc::channel();
        let (tx, rx) = mpsc::channel();
        let (requests_tx, requests) = mpsc::channel();
        let (uncached_tx, uncached) = mpsc::channel();
        let (added_tx, added) = mpsc::channel();
        let caught_up = CaughtUp::default();
        let poller = {
            let (shutdown, metrics, tick) = (shutdown.clone(), metrics.clone(), config.tick);
            let poller = Poller {
                client: poll_client,
                topics: topics.clone(),
                listing,
                discovered,
                groups,
                fetcher,
                requests,
                uncached,
                added,
                discovery,
                caught_up: caught_up.clone(),
            };
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
        let readers = monitor.follower_readers();
        let (join_batches, joins) = if readers.is_empty() {
            (None, None)
        } else {
            // the group's settings (fetch sizes, the user's properties); assigned, never joined
            let consumer: BaseConsumer<JoinContext> = client_config(&config, true)
                .create_with_context(JoinContext { metrics: metrics.clone() })
                .map_err(SourceError::Create)?;
            let (batches, received) = mpsc::sync_channel(64);
            let joins = Joins { consumer, readers, start: config.start, metrics: metrics.clone(), batches };
            let shutdown = shutdown.clone();
            let thread = std::thread::Builder::new()
                .name("pipewatch-join".into())
                .spawn(move || joins.run(shutdown))
                .map_err(|e| SourceError::Thread("join consumer", e))?;
            (Some(received), Some(thread))
        };
        let link = PollerLink {
            polls: rx,
            requests: requests_tx,
            uncached: uncached_tx,
            history,
            groups: added_tx,
            topics: discovered_tx,
            caught_up,
            joins: join_batches,
        };
        let consumer = std::thread::Builder::new()
            .name("pipewatch-source".into())
            .spawn(move || {
                let group_id = config.group_id.clone();
                let source = Reader {
                    consumer,
                    records,
                    monitor,
                    topics: table,
                    group_id,
                    waiting: crate::waiting::Waiting::new(links.schemas, metrics.clone()),
                    connect: links.connect,
                    metrics,
                    errors_logged: 0,
                    co_partitioned: Vec::new(),
                    join_waiting: None,
                };
                source.run(config.tick, shutdown, link, publish)
            })
            .map_err(|e| SourceError::Thread("consumer", e))?;
        Ok(Self { consumer, poller, learner, joins })
    }

    /// Waits for the threads to end (after shutdown was set).
    pub fn join(self) {
        let _ = self.consumer.join();
        let _ = self.poller.join();
        if let Some(learner) = self.learner {
            let _ = learner.join();
        }
        if let Some(joins) = self.joins {
            let _ = joins.join();
        }
    }
}
