//! Wires the pieces together: source thread → snapshots → /metrics, /api/v1/status.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use pipewatch_alert::Delivery;
use pipewatch_core::alert::{AlertEvaluator, AlertEvent, Transition};
use pipewatch_core::{Monitor, Snapshot};
use pipewatch_kafka::{KafkaErrors, Source};
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;
use crate::http::{self, AppState};
use crate::metrics::MonitorCollector;

/// Runs the daemon until `shutdown` completes: reads Kafka, evaluates the alert rules,
/// serves HTTP on `listener`. Every snapshot and the alert transitions of its tick are
/// also passed to `on_snapshot` (the demo prints from them).
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_snapshot: impl FnMut(&Snapshot, &[AlertEvent]) + Send + 'static,
) -> anyhow::Result<()> {
    let (tx, rx) = watch::channel::<Option<Arc<Snapshot>>>(None);
    let errors = Arc::new(KafkaErrors::default());
    let errors_for_metrics = errors.clone();
    let registry = Registry::new();

    let monitor = Monitor::new(config.settings.clone(), config.streams.clone(), config.pairs.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let mut on_snapshot = on_snapshot;
    let status_url = format!("{}/api/v1/status", config.external_url);
    let delivery_stop = CancellationToken::new();
    let delivery =
        Arc::new(Delivery::start(config.receivers.clone(), config.external_url.clone(), delivery_stop.clone()));
    let deliver = delivery.clone();
    let mut alerts =
        AlertEvaluator::new(config.alerts.clone(), config.streams.len(), config.settings.rate_window_ms, status_url);
    let source = Source::spawn(config.source.clone(), monitor, errors, stop.clone(), move |mut snapshot| {
        let events = alerts.evaluate(&snapshot, snapshot.at_ms);
        snapshot.alerts = alerts.status(&snapshot);
        for e in &events {
            log_transition(e);
        }
        deliver.push(&events);
        on_snapshot(&snapshot, &events);
        tx.send_replace(Some(Arc::new(snapshot)));
    })
    .context("failed to start the Kafka source")?;
    MonitorCollector::register(&registry, rx.clone(), errors_for_metrics, delivery.stats())
        .context("failed to register metrics")?;

    let addr = listener.local_addr().context("failed to read the listener's address")?;
    info!(%addr, bootstrap = %config.source.bootstrap_servers, streams = config.streams.len(), "pipewatch running");
    let state = AppState { registry, snapshot: rx, config: Arc::new(config) };
    let served = axum::serve(listener, http::router(state)).with_graceful_shutdown(shutdown).await;

    stop.store(true, Ordering::Relaxed);
    tokio::task::spawn_blocking(move || source.join()).await.context("the source thread panicked")?;
    delivery_stop.cancel();
    if let Ok(delivery) = Arc::try_unwrap(delivery) {
        delivery.join().await;
    }
    served.context("the HTTP server failed")
}

/// One readable line per alert transition.
pub fn transition_line(e: &AlertEvent) -> String {
    let name = e.label("alertname").unwrap_or("?");
    let target = e.label("pair").or(e.label("stream")).unwrap_or("kafka");
    let cause = e.label("cause").unwrap_or("?");
    let summary = e.annotation("summary").unwrap_or("");
    match e.transition {
        Transition::Firing => format!("FIRING   {name} [{target}, cause {cause}]: {summary}"),
        Transition::Resolved => format!("RESOLVED {name} [{target}, cause {cause}]"),
    }
}

fn log_transition(e: &AlertEvent) {
    match e.transition {
        Transition::Firing => warn!(impact = e.annotation("impact").unwrap_or(""), "{}", transition_line(e)),
        Transition::Resolved => info!("{}", transition_line(e)),
    }
}
