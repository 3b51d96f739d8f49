//! Traffic written to the test topics in the background, by the clock: one helper for
//! every test. Each target (a topic's partition and how its payload is made at the send
//! time) gets `rate` records a second; a slow moment (a busy machine, a broker outage:
//! the records wait in the producer's queue) is made up at once, so a rate a test
//! compares is the rate it asked for. Targets can be paused and the rate changed while it
//! runs; dropping the traffic stops it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{now_ms, TestProducer};

/// Makes a record's payload from the time it is sent (milliseconds since the epoch).
pub type MakePayload = Box<dyn FnMut(i64) -> Vec<u8> + Send>;

/// One partition written to, and how.
pub struct Target {
    topic: String,
    partition: i32,
    payload: MakePayload,
    paused: Arc<AtomicBool>,
}

impl Target {
    pub fn new(topic: &str, partition: i32, mut payload: impl FnMut(i64) -> String + Send + 'static) -> Self {
        Self::bytes(topic, partition, move |at| payload(at).into_bytes())
    }

    /// A target whose payloads are bytes (Avro, say).
    pub fn bytes(topic: &str, partition: i32, payload: impl FnMut(i64) -> Vec<u8> + Send + 'static) -> Self {
        Self { topic: topic.to_string(), partition, payload: Box::new(payload), paused: Arc::default() }
    }

    /// Paused while `flag` is set (a flag the test owns).
    pub fn paused_by(mut self, flag: Arc<AtomicBool>) -> Self {
        self.paused = flag;
        self
    }
}

/// Records written until dropped (or [`Traffic::stop`]).
pub struct Traffic {
    /// Records per second per target, in thousandths.
    rate: Arc<AtomicU64>,
    paused: Vec<Arc<AtomicBool>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    /// `records_per_second` to each target, by the clock.
    pub fn start(bootstrap: &str, records_per_second: f64, mut targets: Vec<Target>) -> Self {
        let rate = Arc::new(AtomicU64::new((records_per_second * 1000.0) as u64));
        let stop = Arc::new(AtomicBool::new(false));
        let paused = targets.iter().map(|t| t.paused.clone()).collect();
        let (r, s, bootstrap) = (rate.clone(), stop.clone(), bootstrap.to_string());
        let thread = std::thread::spawn(move || {
            let producer = TestProducer::new(&bootstrap);
            let (mut sent, mut due, mut last) = (0.0, 0.0, Instant::now());
            while !s.load(Ordering::Relaxed) {
                let now = Instant::now();
                due += (now - last).as_secs_f64() * r.load(Ordering::Relaxed) as f64 / 1000.0;
                last = now;
                while sent + 1.0 <= due {
                    let at = now_ms();
                    for t in targets.iter_mut().filter(|t| !t.paused.load(Ordering::Relaxed)) {
                        producer.send(&t.topic, t.partition, Some(&(t.payload)(at)));
                    }
                    sent += 1.0;
                }
                // through a broker's outage the records wait in the producer's queue
                let _ = producer.try_flush(Duration::from_secs(1));
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self { rate, paused, stop, thread: Some(thread) }
    }

    pub fn set_rate(&self, records_per_second: f64) {
        self.rate.store((records_per_second * 1000.0) as u64, Ordering::Relaxed);
    }

    /// Pauses (or resumes) target `i`, in the order given.
    pub fn pause(&self, i: usize, paused: bool) {
        self.paused[i].store(paused, Ordering::Relaxed);
    }

    pub fn stop(self) {}
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An order placed at `now`, its event time in RFC 3339.
pub fn order(now: i64) -> String {
    format!(r#"{{"order_id":"o-{now}","total":42.5,"created_at":"{}"}}"#, pipewatch_core::time::format_rfc3339(now))
}

/// An event with its time in epoch milliseconds.
pub fn event(ts: i64) -> String {
    format!(r#"{{"ts":{ts}}}"#)
}

/// Orders and behaviour events on partition 0, 10 a second each: orders in real time;
/// behaviour 8 h late while `delayed` is set, and none while `stopped` is set.
pub fn orders_and_behaviour_traffic(
    bootstrap: &str,
    orders: &str,
    behaviour: &str,
    delayed: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
) -> Traffic {
    let late = move |now: i64| event(if delayed.load(Ordering::Relaxed) { now - 8 * 3600 * 1000 } else { now });
    Traffic::start(
        bootstrap,
        10.0,
        vec![Target::new(orders, 0, order), Target::new(behaviour, 0, late).paused_by(stopped)],
    )
}

/// `{"ts": now}` on every partition of `topic` each `every`.
pub fn steady(bootstrap: &str, topic: &str, partitions: i32, every: Duration) -> Traffic {
    let targets = (0..partitions).map(|p| Target::new(topic, p, event)).collect();
    Traffic::start(bootstrap, 1.0 / every.as_secs_f64(), targets)
}
