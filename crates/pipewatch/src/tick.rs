//! The tick stage: one evaluation of the alert rules per snapshot, the transitions to
//! the receivers, and the [`Tick`] that HTTP, metrics and subscribers read.

use std::sync::{Arc, Mutex, PoisonError};

use pipewatch_alert::Delivery;
use pipewatch_core::alert::{AlertEvaluator, AlertEvent, AlertStatus, Evaluation, Transition};
use pipewatch_core::Snapshot;
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{info, warn};

use crate::history::History;

/// One tick as the rest of pipewatch sees it: the monitor's snapshot, every alert
/// rule's state after it, and the transitions it caused.
#[derive(Debug)]
pub struct Tick {
    pub snapshot: Snapshot,
    pub alerts: Vec<AlertStatus>,
    pub events: Vec<AlertEvent>,
}

/// The latest tick, for HTTP and metrics.
pub type TickRx = watch::Receiver<Option<Arc<Tick>>>;

/// The tick stage: one evaluation per snapshot, the transitions to the receivers, the
/// tick to its readers. Ends when the source does; hands the receivers back to drain.
pub(crate) async fn tick_stage(
    mut snapshots: mpsc::Receiver<Snapshot>,
    mut alerts: AlertEvaluator,
    delivery: Delivery,
    latest: watch::Sender<Option<Arc<Tick>>>,
    subscribers: broadcast::Sender<Arc<Tick>>,
    history: Arc<Mutex<History>>,
) -> Delivery {
    while let Some(snapshot) = snapshots.recv().await {
        history.lock().unwrap_or_else(PoisonError::into_inner).record(&snapshot);
        let Evaluation { events, alerts: states } = alerts.evaluate(&snapshot, snapshot.at_ms);
        for e in &events {
            log_transition(e);
        }
        delivery.push(&events);
        let tick = Arc::new(Tick { snapshot, alerts: states, events });
        // No subscriber is fine.
        let _ = subscribers.send(tick.clone());
        latest.send_replace(Some(tick));
    }
    delivery
}

/// One readable line per alert transition.
pub fn transition_line(e: &AlertEvent) -> String {
    let name = e.label("alertname").unwrap_or("?");
    let target = e.label("pair").or(e.label("stream")).or(e.label("consumer")).unwrap_or("kafka");
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
