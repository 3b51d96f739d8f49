//! One task per receiver, fed without blocking from the source thread.
//!
//! - Alertmanager: what matters is each alert's latest state, so the queue keeps one
//!   entry per alert (a firing alert and its resolve coalesce into the resolve); every
//!   firing alert is re-sent each `resend_interval` with `endsAt` four intervals ahead.
//! - Webhook: every transition, in order.
//!
//! Timeouts, connection errors and 5xx are retried with backoff (1 s doubling to 30 s)
//! until they go through; a 4xx is counted and logged once, not retried. A queue that
//! reaches `queue_capacity` drops its oldest entry and counts it.
//!
//! At shutdown [`Delivery::finish`] keeps delivering what is queued (resolves included),
//! retrying every second, for up to a grace period; what is still queued then is logged.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pipewatch_core::alert::{AlertEvent, Transition};
use pipewatch_core::time::Millis;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::http::{Access, HttpClient};
use crate::payload::{alertmanager_alert, fingerprint, generator_url, webhook_body};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiverKind {
    Alertmanager,
    Webhook,
}

#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    pub name: String,
    pub kind: ReceiverKind,
    /// Alertmanager: its base URL (`/api/v2/alerts` is appended); webhook: the URL posted to.
    pub url: String,
    pub timeout: Duration,
    /// Alertmanager: how often firing alerts are re-sent.
    pub resend_interval: Duration,
    pub queue_capacity: usize,
    /// Its CA and `Authorization` header.
    pub access: Access,
}

/// The `result` label values of `pipewatch_alert_notifications_total`.
pub const RESULTS: [&str; 4] = ["sent", "retried", "failed", "dropped"];

/// The receivers' series, registered once: `pipewatch_alert_notifications_total{receiver,result}`
/// and `pipewatch_alert_queue_depth{receiver}`.
#[derive(Debug, Clone)]
pub struct DeliveryMetrics {
    notifications: IntCounterVec,
    queue_depth: IntGaugeVec,
}

impl DeliveryMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let notifications = IntCounterVec::new(
            Opts::new(
                "pipewatch_alert_notifications_total",
                "Requests to alert receivers by result: sent, retried (will be tried again), failed (rejected), dropped (queue full).",
            ),
            &["receiver", "result"],
        )?;
        let queue_depth = IntGaugeVec::new(
            Opts::new("pipewatch_alert_queue_depth", "Alerts or transitions waiting to be sent, per receiver."),
            &["receiver"],
        )?;
        registry.register(Box::new(notifications.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        Ok(Self { notifications, queue_depth })
    }

    /// One receiver's series, every result from 0.
    fn receiver(&self, name: &str) -> ReceiverStats {
        let result = |r: &str| self.notifications.with_label_values(&[name, r]);
        ReceiverStats {
            sent: result(RESULTS[0]),
            retried: result(RESULTS[1]),
            failed: result(RESULTS[2]),
            dropped: result(RESULTS[3]),
            queue_depth: self.queue_depth.with_label_values(&[name]),
        }
    }
}

/// Counts of one receiver.
#[derive(Debug, Clone)]
pub struct ReceiverStats {
    /// Requests accepted by the receiver.
    pub sent: IntCounter,
    /// Requests that failed and will be tried again (timeouts, connection errors, 5xx).
    pub retried: IntCounter,
    /// Requests the receiver rejected (4xx): not retried.
    pub failed: IntCounter,
    /// Queue entries dropped because the queue was full.
    pub dropped: IntCounter,
    /// Entries waiting to be sent.
    pub queue_depth: IntGauge,
}

enum Queue {
    /// Alertmanager: latest state per alert, whether it still has to be sent, and a
    /// version that tells a batch in flight from a newer state.
    ByAlert(BTreeMap<String, (AlertEvent, bool, u64)>),
    /// Webhook: transitions in order, numbered so that a batch in flight is acknowledged
    /// exactly (entries may be dropped at the front meanwhile).
    InOrder { list: VecDeque<(u64, AlertEvent)>, next: u64 },
}

struct Receiver {
    config: ReceiverConfig,
    stats: ReceiverStats,
    queue: Mutex<Queue>,
    wake: Notify,
}

impl Receiver {
    fn push(&self, events: &[AlertEvent]) {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let cap = self.config.queue_capacity.max(1);
        let depth = match &mut *q {
            Queue::ByAlert(alerts) => {
                for e in events {
                    let version = alerts.get(&fingerprint(e)).map_or(0, |(_, _, v)| v + 1);
                    alerts.insert(fingerprint(e), (e.clone(), true, version));
                }
                while alerts.len() > cap {
                    // The oldest resolved alert goes first, then the oldest of any.
                    let victim = alerts
                        .iter()
                        .filter(|(_, (e, _, _))| e.transition == Transition::Resolved)
                        .min_by_key(|(_, (e, _, _))| e.starts_at_ms)
                        .or_else(|| alerts.iter().min_by_key(|(_, (e, _, _))| e.starts_at_ms))
                        .map(|(k, _)| k.clone());
                    if let Some(k) = victim {
                        alerts.remove(&k);
                        self.stats.dropped.inc();
                    }
                }
                alerts.values().filter(|(_, dirty, _)| *dirty).count()
            }
            Queue::InOrder { list, next } => {
                for e in events {
                    if list.len() >= cap {
                        list.pop_front();
                        self.stats.dropped.inc();
                    }
                    list.push_back((*next, e.clone()));
                    *next += 1;
                }
                list.len()
            }
        };
        self.stats.queue_depth.set(depth as i64);
        drop(q);
        self.wake.notify_one();
    }
}

/// The running receivers.
pub struct Delivery {
    receivers: Vec<Arc<Receiver>>,
    tasks: Vec<JoinHandle<()>>,
    /// Cancelled by [`Delivery::finish`]: each task ends once its queue is delivered.
    drain: CancellationToken,
    shutdown: CancellationToken,
}

/// While draining, a failed request is tried again after at most this long.
const DRAIN_RETRY: Duration = Duration::from_secs(1);

impl Delivery {
    /// Starts one task per receiver on the current tokio runtime; they stop when
    /// `shutdown` is cancelled. `external_url` is how people reach pipewatch: alerts
    /// link back to its status (`generatorURL`).
    pub fn start(
        configs: Vec<ReceiverConfig>,
        external_url: String,
        metrics: &DeliveryMetrics,
        shutdown: CancellationToken,
    ) -> Self {
        let drain = CancellationToken::new();
        let mut receivers = Vec::new();
        let mut tasks = Vec::new();
        for config in configs {
            let queue = match config.kind {
                ReceiverKind::Alertmanager => Queue::ByAlert(BTreeMap::new()),
                ReceiverKind::Webhook => Queue::InOrder { list: VecDeque::new(), next: 0 },
            };
            let stats = metrics.receiver(&config.name);
            let client = HttpClient::for_remote(&config.access, &format!("receiver={}", config.name));
            let r = Arc::new(Receiver { config, stats, queue: Mutex::new(queue), wake: Notify::new() });
            let stop = Stop { drain: drain.clone(), shutdown: shutdown.clone() };
            tasks.push(tokio::spawn(work(r.clone(), client, external_url.clone(), stop)));
            receivers.push(r);
        }
        Self { receivers, tasks, drain, shutdown }
    }

    /// Queues alert transitions for every receiver; never blocks on the network.
    pub fn push(&self, events: &[AlertEvent]) {
        if events.is_empty() {
            return;
        }
        for r in &self.receivers {
            r.push(events);
        }
    }

    /// Waits for the tasks to end (after shutdown).
    pub async fn join(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }

    /// Delivers what is queued (resolves included) for up to `grace`, then stops the
    /// receivers; returns how many notifications were left undelivered (each receiver
    /// that had some says so in the log).
    pub async fn finish(self, grace: Duration) -> usize {
        self.drain.cancel();
        let waiting: usize = self.receivers.iter().map(|r| r.stats.queue_depth.get().max(0) as usize).sum();
        if waiting > 0 {
            info!(notifications = waiting, grace = ?grace, "delivering queued notifications before exit");
        }
        let deadline = tokio::time::Instant::now() + grace;
        for mut task in self.tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                // the grace is over: every receiver stops now
                self.shutdown.cancel();
                let _ = task.await;
            }
        }
        let mut lost = 0;
        for r in &self.receivers {
            let left = r.stats.queue_depth.get().max(0) as usize;
            if left > 0 {
                warn!(receiver = %r.config.name, notifications = left, grace = ?grace, "notifications not delivered at shutdown");
            }
            lost += left;
        }
        lost
    }
}

/// How a receiver's task is told to end: `drain` once its queue is delivered,
/// `shutdown` at once.
struct Stop {
    drain: CancellationToken,
    shutdown: CancellationToken,
}

fn now_ms() -> Millis {
    pipewatch_core::time::epoch_millis(std::time::SystemTime::now())
}

enum Outcome {
    Sent,
    Retry(String),
    Rejected(String),
}

async fn post(client: &HttpClient, url: &str, body: String, timeout: Duration) -> Outcome {
    match client.post_json(url, body, timeout).await {
        Err(e) => Outcome::Retry(e),
        Ok(answer) if answer.status.is_success() => Outcome::Sent,
        Ok(answer) if answer.status.is_server_error() || answer.status == hyper::StatusCode::TOO_MANY_REQUESTS => {
            Outcome::Retry(format!("{} {}", answer.status, answer.excerpt()))
        }
        Ok(answer) => Outcome::Rejected(format!("{} {}", answer.status, answer.excerpt())),
    }
}

/// A request body, and what it covers: `(alert, version)` for Alertmanager, the
/// transitions up to (excluding) a number for a webhook.
struct Batch {
    body: String,
    alerts: Vec<(String, u64)>,
    up_to: u64,
}

/// What to send now.
fn take_batch(r: &Receiver, external_url: &str, resend_all: bool) -> Option<Batch> {
    let q = r.queue.lock().unwrap_or_else(PoisonError::into_inner);
    match &*q {
        Queue::ByAlert(alerts) => {
            let ttl = 4 * r.config.resend_interval.as_millis() as Millis;
            let now = now_ms();
            let picked: Vec<(&String, &AlertEvent, u64)> = alerts
                .iter()
                .filter(|(_, (e, dirty, _))| *dirty || (resend_all && e.transition == Transition::Firing))
                .map(|(k, (e, _, v))| (k, e, *v))
                .collect();
            if picked.is_empty() {
                return None;
            }
            let link = generator_url(external_url);
            let body: Vec<_> = picked.iter().map(|(_, e, _)| alertmanager_alert(e, now, ttl, &link)).collect();
            let alerts = picked.iter().map(|(k, _, v)| ((*k).clone(), *v)).collect();
            Some(Batch { body: serde_json::Value::Array(body).to_string(), alerts, up_to: 0 })
        }
        Queue::InOrder { list, .. } => {
            let n = list.len().min(100);
            let up_to = list.get(n.checked_sub(1)?)?.0 + 1;
            let batch: Vec<AlertEvent> = list.iter().take(n).map(|(_, e)| e.clone()).collect();
            Some(Batch {
                body: webhook_body(&r.config.name, external_url, &batch).to_string(),
                alerts: Vec::new(),
                up_to,
            })
        }
    }
}

/// Marks a delivered (or rejected) batch done; alert states that changed while it
/// was in flight stay queued.
fn done(r: &Receiver, batch: &Batch) {
    let mut q = r.queue.lock().unwrap_or_else(PoisonError::into_inner);
    let depth = match &mut *q {
        Queue::ByAlert(alerts) => {
            for (k, version) in &batch.alerts {
                match alerts.get_mut(k) {
                    Some((e, _, v)) if *v == *version && e.transition == Transition::Resolved => {
                        alerts.remove(k);
                    }
                    Some((_, dirty, v)) if *v == *version => *dirty = false,
                    _ => {}
                }
            }
            alerts.values().filter(|(_, dirty, _)| *dirty).count()
        }
        Queue::InOrder { list, .. } => {
            while list.front().is_some_and(|(seq, _)| *seq < batch.up_to) {
                list.pop_front();
            }
            list.len()
        }
    };
    r.stats.queue_depth.set(depth as i64);
}

async fn work(r: Arc<Receiver>, client: HttpClient, external_url: String, stop: Stop) {
    let Stop { drain, shutdown } = stop;
    let url = match r.config.kind {
        ReceiverKind::Alertmanager => format!("{}/api/v2/alerts", r.config.url.trim_end_matches('/')),
        ReceiverKind::Webhook => r.config.url.clone(),
    };
    let resend = r.config.resend_interval.max(Duration::from_secs(1));
    let mut next_resend = tokio::time::Instant::now() + resend;
    let mut backoff = Duration::from_secs(1);
    let mut failing = false;
    loop {
        let resend_all = r.config.kind == ReceiverKind::Alertmanager && tokio::time::Instant::now() >= next_resend;
        if resend_all {
            next_resend = tokio::time::Instant::now() + resend;
        }
        if let Some(batch) = take_batch(&r, &external_url, resend_all) {
            match post(&client, &url, batch.body.clone(), r.config.timeout).await {
                Outcome::Sent => {
                    r.stats.sent.inc();
                    if failing {
                        info!(receiver = %r.config.name, "receiver reachable again");
                        failing = false;
                    }
                    backoff = Duration::from_secs(1);
                    done(&r, &batch);
                    continue;
                }
                Outcome::Rejected(why) => {
                    r.stats.failed.inc();
                    warn!(receiver = %r.config.name, %url, error = %why, "receiver rejected alerts; not retrying them");
                    done(&r, &batch);
                    continue;
                }
                Outcome::Retry(why) => {
                    r.stats.retried.inc();
                    if !failing {
                        warn!(receiver = %r.config.name, %url, error = %why, "failed to send alerts; retrying with backoff");
                        failing = true;
                    }
                    let wait = if drain.is_cancelled() { backoff.min(DRAIN_RETRY) } else { backoff };
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        // shutting down: try again soon rather than after a long backoff
                        _ = drain.cancelled(), if !drain.is_cancelled() => {}
                        _ = tokio::time::sleep(wait) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            }
        } else if drain.is_cancelled() {
            return;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = drain.cancelled() => {}
            _ = r.wake.notified() => {}
            _ = tokio::time::sleep_until(next_resend) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    fn receiver(kind: ReceiverKind, cap: usize) -> Receiver {
        let queue = match kind {
            ReceiverKind::Alertmanager => Queue::ByAlert(BTreeMap::new()),
            ReceiverKind::Webhook => Queue::InOrder { list: VecDeque::new(), next: 0 },
        };
        let config = ReceiverConfig {
            name: "r".into(),
            kind,
            url: "http://127.0.0.1:9/".into(),
            timeout: Duration::from_secs(1),
            resend_interval: Duration::from_secs(60),
            queue_capacity: cap,
            access: Access::default(),
        };
        let stats = DeliveryMetrics::register(&Registry::new()).unwrap().receiver("r");
        Receiver { config, stats, queue: Mutex::new(queue), wake: Notify::new() }
    }

    fn event(name: &str, transition: Transition, at: Millis) -> AlertEvent {
        AlertEvent {
            transition,
            labels: vec![("alertname".into(), name.into())],
            annotations: vec![],
            starts_at_ms: at,
            ends_at_ms: None,
        }
    }

    #[test]
    fn secrets_are_sent_as_headers_and_never_shown() {
        assert_eq!(Secret::basic("pipewatch", "s3cret").0, "Basic cGlwZXdhdGNoOnMzY3JldA==");
        assert_eq!(Secret::bearer("t0ken").0, "Bearer t0ken");
        let mut r = receiver(ReceiverKind::Webhook, 1).config;
        r.access.authorization = Some(Secret::bearer("t0ken"));
        assert!(!format!("{r:?}").contains("t0ken"), "{r:?}");
        assert!(crate::check_ca(b"not a certificate").is_err());
    }

    #[test]
    fn alertmanager_queue_keeps_the_latest_state_per_alert() {
        let r = receiver(ReceiverKind::Alertmanager, 2);
        r.push(&[
            event("A", Transition::Firing, 1),
            event("A", Transition::Resolved, 1),
            event("B", Transition::Firing, 2),
        ]);
        assert_eq!(r.stats.queue_depth.get(), 2, "A's firing and resolve coalesce");
        let batch = take_batch(&r, "", false).unwrap();
        assert!(batch.body.contains("\"A\"") && batch.body.contains("\"B\""));
        // B changes while the batch is in flight: it stays queued, A (resolved) is gone
        r.push(&[event("B", Transition::Resolved, 2)]);
        done(&r, &batch);
        assert_eq!(r.stats.queue_depth.get(), 1);
        r.push(&[event("C", Transition::Firing, 3), event("D", Transition::Firing, 4)]);
        assert_eq!(r.stats.dropped.get(), 1, "over capacity: the oldest resolved alert goes");
    }

    #[test]
    fn webhook_queue_keeps_every_transition_in_order_up_to_its_capacity() {
        let r = receiver(ReceiverKind::Webhook, 3);
        r.push(&[event("A", Transition::Firing, 1), event("A", Transition::Resolved, 1)]);
        let batch = take_batch(&r, "http://pw", false).unwrap();
        assert_eq!(batch.up_to, 2);
        let body: serde_json::Value = serde_json::from_str(&batch.body).unwrap();
        assert_eq!(body["alerts"][0]["status"], "firing");
        assert_eq!(body["alerts"][1]["status"], "resolved"); // two more while the batch is in flight: the queue is full, the oldest goes
        r.push(&[event("B", Transition::Firing, 2), event("C", Transition::Firing, 3)]);
        assert_eq!(r.stats.dropped.get(), 1);
        done(&r, &batch);
        // B and C were not in the batch: both still wait
        let next = take_batch(&r, "http://pw", false).unwrap();
        let body: serde_json::Value = serde_json::from_str(&next.body).unwrap();
        assert_eq!(body["alerts"].as_array().unwrap().len(), 2);
        assert_eq!(body["alerts"][0]["labels"]["alertname"], "B");
    }
}
