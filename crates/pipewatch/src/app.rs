//! Wires the stages together:
//!
//! ```text
//! source thread (reads Kafka, feeds the monitor) ──Snapshot──► tick stage (alerts, receivers)
//!                                                                 │ Arc<Tick>
//!                                               latest ◄──────────┴──────► subscribers (the demo)
//!                                    (/metrics, /api/v1/status, /)
//! ```
//!
//! The Kafka thread hands one immutable [`Snapshot`] per tick to the tick stage
//! ([`crate::tick`]), which evaluates every alert rule once, queues the transitions for
//! the receivers and publishes the [`Tick`] that HTTP, metrics and subscribers read.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use pipewatch_alert::{Delivery, DeliveryMetrics};
use pipewatch_core::alert::AlertEvaluator;
use pipewatch_core::{Monitor, Snapshot};
use pipewatch_kafka::{Source, SourceMetrics};
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::config::Config;
use crate::history::History;
use crate::http::{self, AppState};
use crate::tick::{tick_stage, Tick};

/// Snapshots waiting for the tick stage; the source drops one (and says so) rather than
/// wait when the stage is this far behind.
const SNAPSHOT_QUEUE: usize = 8;
/// Ticks a subscriber may fall behind before it misses some.
const SUBSCRIBER_QUEUE: usize = 64;

/// The daemon, built from a config; [`App::subscribe`] before [`App::run`] to see every tick.
pub struct App {
    config: Config,
    ticks: broadcast::Sender<Arc<Tick>>,
}

impl App {
    pub fn new(config: Config) -> Self {
        Self { config, ticks: broadcast::channel(SUBSCRIBER_QUEUE).0 }
    }

    /// Every tick from now on (a subscriber that falls behind misses the oldest).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Tick>> {
        self.ticks.subscribe()
    }

    /// Runs until `shutdown` completes: reads Kafka, evaluates the alert rules, serves
    /// HTTP on `listener`.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let config = self.config;
        let registry = Registry::new();
        let source_metrics = SourceMetrics::register(&registry).context("failed to register the source's metrics")?;
        let delivery_metrics =
            DeliveryMetrics::register(&registry).context("failed to register the receivers' metrics")?;
        let registry_stop = CancellationToken::new();
        let schemas = match &config.schema_registry {
            Some(r) => {
                let metrics = crate::registry::RegistryMetrics::register(&registry)
                    .context("failed to register the schema registry's metrics")?;
                let client = crate::registry::RegistryClient::new(r.clone());
                Some(crate::registry::start(client, metrics, registry_stop.clone()))
            }
            None => None,
        };
        let connect = if config.connect.is_empty() {
            None
        } else {
            // a sink's topics.regex is matched against these (a pattern's topics are named
            // by the sink's active topics)
            let watched: Vec<String> = config.streams.iter().flat_map(|s| s.topics.iter().cloned()).collect();
            let clients =
                config.connect.iter().map(|c| crate::connect::ConnectClient::new(c.clone(), watched.clone())).collect();
            let (tx, rx) = std::sync::mpsc::channel();
            let send = move |all| {
                // the source thread gone: shutting down
                let _ = tx.send(all);
            };
            crate::connect::start(clients, pipewatch_kafka::now_ms, send, registry_stop.clone());
            Some(rx)
        };
        let discovery = config.discovery.as_ref().and_then(|d| {
            let groups = d.groups.clone()?;
            let matches = Box::new(move |g: &str| groups.matches(g));
            Some(pipewatch_kafka::GroupDiscovery { every: d.every, poll: d.poll, matches })
        });
        let discover_topics = config.discovery.as_ref().and_then(|d| d.topics.clone());
        let listing = !config.topic_patterns.is_empty() || discover_topics.is_some();
        let topics = listing.then(|| pipewatch_kafka::TopicListing {
            every: config.metadata_refresh,
            discover: discover_topics
                .map(|(names, _)| -> pipewatch_kafka::NameMatch { Box::new(move |t: &str| names.matches(t)) }),
            patterns: config
                .topic_patterns
                .iter()
                .map(|(stream, r)| {
                    let r = r.clone();
                    let matches: pipewatch_kafka::NameMatch = Box::new(move |t: &str| r.is_match(t));
                    (*stream, matches)
                })
                .collect(),
        });
        let links = pipewatch_kafka::Links { schemas, connect, discovery, topics };
        let (latest_tx, latest) = watch::channel::<Option<Arc<Tick>>>(None);

        let delivery_stop = CancellationToken::new();
        let delivery = Delivery::start(
            config.receivers.clone(),
            config.external_url.clone(),
            &delivery_metrics,
            delivery_stop.clone(),
        );
        let alerts = AlertEvaluator::new(config.alerts.clone(), config.streams.len(), config.settings.rate_window_ms);
        let (snapshots_tx, snapshots) = mpsc::channel::<Snapshot>(SNAPSHOT_QUEUE);
        let history = Arc::new(std::sync::Mutex::new(History::default()));
        let stage = tokio::spawn(tick_stage(snapshots, alerts, delivery, latest_tx, self.ticks, history.clone()));

        let mut monitor = Monitor::new(config.settings.clone(), config.streams.clone(), config.pairs.clone());
        for c in &config.consumers {
            monitor.watch_consumer(c.clone(), pipewatch_kafka::now_ms());
        }
        if let Some(d) = &config.discovery {
            if d.groups.is_some() {
                monitor.set_discovery(d.spec.clone());
            }
            if let Some((_, spec)) = &d.topics {
                monitor.set_topic_discovery(spec.clone());
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let spawned =
            Source::spawn(config.source.clone(), monitor, source_metrics, stop.clone(), links, move |snapshot| {
                if let Err(mpsc::error::TrySendError::Full(_)) = snapshots_tx.try_send(snapshot) {
                    debug!("the tick stage is behind: a snapshot was dropped");
                }
            });
        let source = match spawned {
            Ok(source) => source,
            Err(e) => {
                delivery_stop.cancel();
                return Err(e).context("failed to start the Kafka source");
            }
        };

        let addr = listener.local_addr().context("failed to read the listener's address")?;
        info!(%addr, bootstrap = %config.source.bootstrap_servers, streams = config.streams.len(), "pipewatch running");
        let grace = config.shutdown_grace;
        let tls = config.web.as_ref().and_then(|w| w.tls.clone());
        let state = AppState { registry, tick: latest, config: Arc::new(config), history };
        let served = http::serve(listener, http::router(state), tls.as_ref(), shutdown).await;

        stop.store(true, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || source.join()).await.context("the source thread panicked")?;
        registry_stop.cancel();
        // The source is gone, so is its sender: the stage ends after the last snapshot;
        // then what the receivers still have queued goes out (up to `shutdown.grace`).
        let delivery = stage.await.context("the tick stage panicked")?;
        delivery.finish(grace).await;
        served.context("the HTTP server failed")
    }
}

/// Runs the daemon until `shutdown` completes (see [`App::run`]).
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    App::new(config).run(listener, shutdown).await
}
