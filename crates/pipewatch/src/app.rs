//! Wires the pieces together: source thread → snapshots → /metrics, /api/v1/status.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use pipewatch_core::{Monitor, Snapshot};
use pipewatch_kafka::{KafkaErrors, Source};
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::metrics::MonitorCollector;

/// Runs the daemon until `shutdown` completes: reads Kafka, serves HTTP on `listener`.
/// Every snapshot is also passed to `on_snapshot` (the demo prints from it).
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_snapshot: impl FnMut(&Snapshot) + Send + 'static,
) -> anyhow::Result<()> {
    let (tx, rx) = watch::channel::<Option<Arc<Snapshot>>>(None);
    let errors = Arc::new(KafkaErrors::default());
    let registry = Registry::new();
    MonitorCollector::register(&registry, rx.clone(), errors.clone()).context("failed to register metrics")?;

    let monitor = Monitor::new(config.settings.clone(), config.streams.clone(), config.pairs.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let mut on_snapshot = on_snapshot;
    let source = Source::spawn(config.source.clone(), monitor, errors, stop.clone(), move |snapshot| {
        on_snapshot(&snapshot);
        tx.send_replace(Some(Arc::new(snapshot)));
    })
    .context("failed to start the Kafka source")?;

    let addr = listener.local_addr().context("failed to read the listener's address")?;
    info!(%addr, bootstrap = %config.source.bootstrap_servers, streams = config.streams.len(), "pipewatch running");
    let state = AppState { registry, snapshot: rx, config: Arc::new(config) };
    let served = axum::serve(listener, http::router(state)).with_graceful_shutdown(shutdown).await;

    stop.store(true, Ordering::Relaxed);
    tokio::task::spawn_blocking(move || source.join()).await.context("the source thread panicked")?;
    served.context("the HTTP server failed")
}
