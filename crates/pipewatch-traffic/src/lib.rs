#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
//! The traffic generator: the one part of pipewatch that writes to Kafka (the daemon
//! only reads). Synthetic shop traffic: orders (`created_at`, RFC 3339) and behaviour
//! events (`ts`, epoch millis), spread round-robin over each topic's partitions, with
//! faults switched on and off on a schedule. `pipewatch demo` writes it into its mock
//! cluster and `pipewatch generate` ([`cli`]) into a real one (a test cluster: it writes
//! to the topics).

pub mod avro;
pub mod cli;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipewatch_core::time::{format_rfc3339, Millis};
use rdkafka::client::ClientContext;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use tracing::warn;

fn now_ms() -> Millis {
    pipewatch_core::time::epoch_millis(std::time::SystemTime::now())
}

/// One of the two synthetic streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Orders,
    Behaviour,
}

impl Stream {
    pub const ALL: [Stream; 2] = [Stream::Orders, Stream::Behaviour];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Orders => "orders",
            Self::Behaviour => "behaviour",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// What goes wrong while a [`Scheduled`] fault is on.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Behaviour events are written this long after they happen (a batch path).
    BehaviourDelay(Duration),
    /// Nothing is written to this partition.
    SilentPartition(Stream, i32),
    /// Nothing is written to the stream.
    StoppedStream(Stream),
    /// Both streams are written at this fraction of the rate.
    VolumeDrop(f64),
    /// This share of the records (0..=1) carries no usable event time.
    InvalidShare(f64),
    /// The records of this `channel` (see [`channel`]) are not written: one collection
    /// path of the stream stops while the others go on.
    StoppedChannel(Stream, &'static str),
    /// The records of the users who came by this `referral` (see [`referral`]) are not
    /// written: their behaviour is not collected, while their orders are.
    StoppedReferral(Stream, &'static str),
}

/// Every value [`referral`] gives.
pub const REFERRALS: [&str; 3] = ["search", "social", "direct"];

/// How the user of record `seq` came to the shop: `social` one in twelve, `search` a
/// third, `direct` the rest. The same user writes the orders and the behaviour of the
/// same `seq` ([`user`]).
pub fn referral(seq: u64) -> &'static str {
    match seq % 12 {
        7 => "social",
        0 | 3 | 6 | 9 => "search",
        _ => "direct",
    }
}

/// The user of record `seq` of either stream: the order and the behaviour event of the
/// same `seq` are one user's, written at about the same time (both streams' records go in
/// turn), so a join by user matches them.
pub fn user(seq: u64) -> String {
    format!("u-{}", seq % 4093)
}

/// Every value [`channel`] gives.
pub const CHANNELS: [&str; 3] = ["web", "app", "email"];

/// The `channel` field of record `n`: `app` one in twelve, `email` two, `web` the rest.
pub fn channel(n: u64) -> &'static str {
    match n % 12 {
        0 => "app",
        1 | 2 => "email",
        _ => "web",
    }
}

/// A fault, on from `from` (after the start) until `until`, if given.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    pub fault: Fault,
    pub from: Duration,
    pub until: Option<Duration>,
}

impl Scheduled {
    fn on(&self, elapsed: Duration) -> bool {
        elapsed >= self.from && self.until.is_none_or(|u| elapsed < u)
    }
}

/// Topics, rate and faults.
#[derive(Debug, Clone)]
pub struct Plan {
    pub orders_topic: String,
    pub behaviour_topic: String,
    /// Records per second per stream, spread over its partitions.
    pub rate: f64,
    pub faults: Vec<Scheduled>,
    /// Orders written as Avro with this registered schema id ([`avro::ORDER_SCHEMA`]);
    /// `None`: JSON.
    pub orders_avro: Option<u32>,
    /// Orders not written to Kafka but printed as SQL `INSERT`s into this table, one a
    /// line on stdout (for `psql`: a CDC connector then carries them to Kafka, as in a
    /// shop); see [`ORDERS_TABLE_SQL`].
    pub orders_sql: Option<String>,
}

/// The table `--orders-format sql` writes into (`{table}` its name).
pub const ORDERS_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS {table} (order_id text PRIMARY KEY, customer_id text NOT NULL, channel text NOT NULL, total numeric(10, 2) NOT NULL, currency text NOT NULL, created_at timestamptz)";

impl Plan {
    pub fn topic(&self, stream: Stream) -> &str {
        match stream {
            Stream::Orders => &self.orders_topic,
            Stream::Behaviour => &self.behaviour_topic,
        }
    }
}

/// Counts of what was written (delivery reports included).
#[derive(Debug, Default)]
pub struct Counts {
    pub sent: [AtomicU64; 2],
    pub invalid: AtomicU64,
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
}

impl Counts {
    pub fn sent(&self, stream: Stream) -> u64 {
        self.sent[stream as usize].load(Ordering::Relaxed)
    }
}

/// Producer context that counts delivery reports.
pub struct Deliveries(pub Arc<Counts>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.0.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.0.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

pub type TrafficProducer = BaseProducer<Deliveries>;

/// How often records are written.
const STEP: Duration = Duration::from_millis(50);

/// Writes traffic following `plan` until `stop` is set; `partitions` holds the
/// partition counts of the orders and behaviour topics.
pub fn run(producer: &TrafficProducer, plan: &Plan, partitions: [i32; 2], counts: &Counts, stop: &AtomicBool) {
    use std::io::Write as _;
    let started = Instant::now();
    let mut sql = plan.orders_sql.as_ref().map(|_| std::io::LineWriter::new(std::io::stdout()));
    let mut credit = [0.0f64; 2];
    let mut next_partition = [0i32; 2];
    let mut invalid_credit = 0.0f64;
    let mut n: u64 = 0;
    // each stream's records in turn: its channel
    let mut seq = [0u64; 2];
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let elapsed = started.elapsed();
        let dt = last.elapsed().as_secs_f64();
        last = Instant::now();
        let on: Vec<&Fault> = plan.faults.iter().filter(|f| f.on(elapsed)).map(|f| &f.fault).collect();
        let factor = on.iter().fold(1.0, |acc, f| if let Fault::VolumeDrop(x) = f { acc * x } else { acc });
        let invalid_share = on.iter().fold(0.0, |acc, f| if let Fault::InvalidShare(x) = f { x.max(acc) } else { acc });
        let delay_ms =
            on.iter().fold(
                0,
                |acc, f| {
                    if let Fault::BehaviourDelay(d) = f {
                        acc.max(d.as_millis() as Millis)
                    } else {
                        acc
                    }
                },
            );
        let now = now_ms();
        for stream in Stream::ALL {
            let i = stream as usize;
            if on.iter().any(|f| **f == Fault::StoppedStream(stream)) {
                credit[i] = 0.0;
                continue;
            }
            let open: Vec<i32> =
                (0..partitions[i]).filter(|p| !on.iter().any(|f| **f == Fault::SilentPartition(stream, *p))).collect();
            if open.is_empty() {
                continue;
            }
            credit[i] += plan.rate * factor * dt;
            while credit[i] >= 1.0 {
                credit[i] -= 1.0;
                n += 1;
                seq[i] += 1;
                let channel = channel(seq[i]);
                if on.iter().any(|f| matches!(f, Fault::StoppedChannel(s, c) if *s == stream && *c == channel)) {
                    continue;
                }
                let referral = referral(seq[i]);
                if on.iter().any(|f| matches!(f, Fault::StoppedReferral(s, r) if *s == stream && *r == referral)) {
                    continue;
                }
                let partition = open[next_partition[i] as usize % open.len()];
                next_partition[i] = next_partition[i].wrapping_add(1);
                invalid_credit += invalid_share;
                let invalid = invalid_credit >= 1.0;
                if invalid {
                    invalid_credit -= 1.0;
                    counts.invalid.fetch_add(1, Ordering::Relaxed);
                }
                if let (Stream::Orders, Some(out), Some(table)) = (stream, sql.as_mut(), &plan.orders_sql) {
                    // a closed pipe (psql gone) is a failed write, counted like a failed produce
                    match writeln!(out, "{}", order_insert(table, n, channel, now, invalid)) {
                        Ok(()) => counts.sent[i].fetch_add(1, Ordering::Relaxed),
                        Err(_) => counts.failed.fetch_add(1, Ordering::Relaxed),
                    };
                    continue;
                }
                let by = (user(seq[i]), referral);
                let payload = match (stream, plan.orders_avro) {
                    (Stream::Orders, Some(id)) => avro::order(id, n, channel, now, invalid, (&by.0, by.1)),
                    (Stream::Orders, None) => order(n, channel, now, invalid, (&by.0, by.1)).into_bytes(),
                    (Stream::Behaviour, _) => behaviour(n, &by.0, channel, now - delay_ms, invalid).into_bytes(),
                };
                let record = BaseRecord::<(), [u8]>::to(plan.topic(stream)).partition(partition).payload(&payload);
                if let Err((e, _)) = producer.send(record) {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                    warn!(topic = plan.topic(stream), partition, error = %e, "failed to produce");
                } else {
                    counts.sent[i].fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        producer.poll(Duration::ZERO);
        std::thread::sleep(STEP);
    }
    if let Err(e) = producer.flush(Duration::from_secs(5)) {
        warn!(error = %e, "records still unsent at exit");
    }
}

/// `pipewatch generate`: where to write and what to break.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub bootstrap_servers: String,
    /// librdkafka properties (TLS, SASL, …).
    pub properties: Vec<(String, String)>,
    pub plan: Plan,
    pub duration: Option<Duration>,
    /// `--orders-format avro`: the schema registry the orders' schema is registered at
    /// before anything is written (its id then goes into `plan.orders_avro`).
    pub schema_registry: Option<String>,
}

/// How long `generate` waits for its topics to show up in the cluster's metadata.
const TOPIC_WAIT: Duration = Duration::from_secs(60);

/// Writes traffic into a real cluster until `duration` passes or `shutdown` completes,
/// printing what was written every 10 s.
pub async fn generate(
    opts: GenerateOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let counts = Arc::new(Counts::default());
    let mut config = rdkafka::ClientConfig::new();
    config.set("bootstrap.servers", &opts.bootstrap_servers).set("linger.ms", "20");
    for (k, v) in &opts.properties {
        config.set(k, v);
    }
    let producer: TrafficProducer =
        config.create_with_context(Deliveries(counts.clone())).context("failed to create the producer")?;
    let producer = Arc::new(producer);
    let plan = opts.plan.clone();
    let partitions = {
        let (producer, plan) = (producer.clone(), plan.clone());
        let (bootstrap, wait) =
            (opts.bootstrap_servers.clone(), opts.duration.map_or(TOPIC_WAIT, |d| d.min(TOPIC_WAIT)));
        tokio::task::spawn_blocking(move || topic_partitions(&producer, &plan, &bootstrap, wait))
            .await
            .context("the metadata task failed")??
    };
    // with the orders as SQL on stdout, what the generator says goes to stderr
    let sql = plan.orders_sql.clone();
    let say = move |line: String| if sql.is_some() { eprintln!("{line}") } else { println!("{line}") };
    match &plan.orders_sql {
        Some(table) => {
            println!("{};", ORDERS_TABLE_SQL.replace("{table}", table));
            say(format!(
                "writing {} records/s of orders into table {table} (SQL on stdout) and to {} ({} partitions)",
                plan.rate, plan.behaviour_topic, partitions[1]
            ));
        }
        None => say(format!(
            "writing {} records/s to each of {} ({} partitions) and {} ({} partitions)",
            plan.rate, plan.orders_topic, partitions[0], plan.behaviour_topic, partitions[1]
        )),
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, counts) = (stop.clone(), counts.clone());
        std::thread::Builder::new()
            .name("traffic".into())
            .spawn(move || run(&producer, &plan, partitions, &counts, &stop))
            .context("failed to start the traffic thread")?
    };
    let report = |counts: &Counts| {
        say(format!(
            "sent orders={} behaviour={} (invalid {}), delivered {}, failed {}",
            counts.sent(Stream::Orders),
            counts.sent(Stream::Behaviour),
            counts.invalid.load(Ordering::Relaxed),
            counts.delivered.load(Ordering::Relaxed),
            counts.failed.load(Ordering::Relaxed)
        ));
    };
    let until = async move {
        match opts.duration {
            Some(d) => tokio::select! { _ = tokio::time::sleep(d) => {}, _ = shutdown => {} },
            None => shutdown.await,
        }
    };
    tokio::pin!(until);
    let mut every = tokio::time::interval(Duration::from_secs(10));
    every.tick().await;
    loop {
        tokio::select! {
            _ = &mut until => break,
            _ = every.tick() => report(&counts),
        }
    }
    stop.store(true, Ordering::Relaxed);
    tokio::task::spawn_blocking(move || writer.join()).await.ok();
    report(&counts);
    Ok(())
}

/// Partition counts of the plan's topics, waiting up to `wait` for them.
fn topic_partitions(
    producer: &TrafficProducer,
    plan: &Plan,
    bootstrap: &str,
    wait: Duration,
) -> anyhow::Result<[i32; 2]> {
    let deadline = Instant::now() + wait;
    let mut out = [0; 2];
    for stream in Stream::ALL {
        if stream == Stream::Orders && plan.orders_sql.is_some() {
            // the orders go into a table: no topic of theirs to write
            out[0] = 1;
            continue;
        }
        let topic = plan.topic(stream);
        loop {
            let found = producer
                .client()
                .fetch_metadata(Some(topic), Duration::from_secs(5))
                .map_err(|e| e.to_string())
                .and_then(|m| match m.topics().first() {
                    Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(t.partitions().len() as i32),
                    Some(t) => Err(format!("{:?}", t.error())),
                    None => Err("not in the metadata".into()),
                });
            match found {
                Ok(n) => {
                    out[stream as usize] = n;
                    break;
                }
                Err(e) if Instant::now() >= deadline => anyhow::bail!(
                    "topic {topic} not available after {wait:?} ({e}): is the cluster at {bootstrap} reachable, and the \
                     topic created (e.g. `rpk topic create {topic} -p 3` or \
                     `kafka-topics.sh --create --topic {topic} --partitions 3`)?"
                ),
                Err(e) => {
                    warn!(topic, error = %e, "waiting for the topic");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }
    Ok(out)
}

/// An invalid record, one reason after the other: not JSON, no event time, a bad one.
fn invalid(n: u64, field: &str) -> String {
    match n % 3 {
        0 => format!(r#"{{"id":"{n}","{field}":"#),
        1 => format!(r#"{{"id":"{n}"}}"#),
        _ => format!(r#"{{"id":"{n}","{field}":"yesterday"}}"#),
    }
}

/// Order `n` in `channel` at `created_at`, of `(user, referral)`.
fn order(n: u64, channel: &str, created_at: Millis, bad: bool, (user, referral): (&str, &str)) -> String {
    if bad {
        return invalid(n, "created_at");
    }
    format!(
        r#"{{"order_id":"ord-{n}","customer_id":"cus-{}","channel":"{}","total":{}.{:02},"currency":"EUR","created_at":"{}","user_id":"{user}","referral":"{referral}"}}"#,
        n % 977,
        channel,
        10 + n % 190,
        n % 100,
        format_rfc3339(created_at)
    )
}

/// Order `n` as an SQL `INSERT` into `table` ([`ORDERS_TABLE_SQL`]): the JSON order's
/// fields, a bad one without `created_at`.
fn order_insert(table: &str, n: u64, channel: &str, created_at: Millis, bad: bool) -> String {
    let created_at = if bad { "NULL".to_string() } else { format!("'{}'", format_rfc3339(created_at)) };
    format!(
        "INSERT INTO {table} VALUES ('ord-{n}', 'cus-{}', '{channel}', {}.{:02}, 'EUR', {created_at}) ON CONFLICT DO NOTHING;",
        n % 977,
        10 + n % 190,
        n % 100,
    )
}

fn behaviour(n: u64, user: &str, channel: &str, ts: Millis, bad: bool) -> String {
    if bad {
        return invalid(n, "ts");
    }
    format!(r#"{{"user_id":"{user}","channel":"{channel}","event":"view","sku":"SKU-{}","ts":{ts}}}"#, n % 500)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_the_event_time_the_monitor_extracts() {
        use pipewatch_core::extract::{EventTimeSource, Extractor, InvalidReason, TimeFormat};
        use pipewatch_core::json::JsonPointer;
        let field = |p: &str, format| {
            Extractor::new(EventTimeSource::Field { pointer: JsonPointer::parse(p).unwrap(), format }, 300_000)
        };
        let (orders, events) = (field("/created_at", TimeFormat::Rfc3339), field("/ts", TimeFormat::EpochMillis));
        let t = 1_790_000_000_000;
        let by = ("u-7", "social");
        assert_eq!(orders.extract(Some(order(7, "web", t, false, by).as_bytes()), None, t), Ok(t));
        assert_eq!(events.extract(Some(behaviour(7, "u-7", "app", t - 5000, false).as_bytes()), None, t), Ok(t - 5000));
        // the order and the behaviour of one seq are one user's
        let user_id = JsonPointer::parse("/user_id").unwrap();
        let (o, b) = (order(7, "web", t, false, by), behaviour(9, "u-7", "app", t, false));
        assert_eq!(user_id.lookup(o.as_bytes()), user_id.lookup(b.as_bytes()));
        assert_eq!((referral(7), referral(19), user(4093 + 7)), ("social", "social", "u-7".to_string()));
        let reasons: Vec<_> =
            (0..3).map(|n| orders.extract(Some(order(n, "web", t, true, by).as_bytes()), None, t)).collect();
        assert_eq!(
            reasons,
            [Err(InvalidReason::NotJson), Err(InvalidReason::MissingField), Err(InvalidReason::BadTimestamp)]
        );
        for n in 0..3 {
            assert!(events.extract(Some(behaviour(n, "u-1", "web", t, true).as_bytes()), None, t).is_err());
        }
    }

    #[test]
    fn faults_shape_what_is_written() {
        let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
        for topic in ["o", "b"] {
            cluster.create_topic(topic, 3, 1).unwrap();
        }
        let counts = Arc::new(Counts::default());
        let producer: TrafficProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .create_with_context(Deliveries(counts.clone()))
            .unwrap();
        let from_start = |fault| Scheduled { fault, from: Duration::ZERO, until: None };
        let plan = Plan {
            orders_topic: "o".into(),
            behaviour_topic: "b".into(),
            rate: 200.0,
            faults: vec![
                from_start(Fault::StoppedStream(Stream::Behaviour)),
                from_start(Fault::SilentPartition(Stream::Orders, 1)),
                from_start(Fault::VolumeDrop(0.5)),
                from_start(Fault::InvalidShare(0.25)),
                // over before it starts: never on
                Scheduled { fault: Fault::StoppedStream(Stream::Orders), from: Duration::from_secs(60), until: None },
            ],
            orders_avro: None,
            orders_sql: None,
        };
        let stop = AtomicBool::new(false);
        let started = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| run(&producer, &plan, [3, 3], &counts, &stop));
            std::thread::sleep(Duration::from_secs(2));
            stop.store(true, Ordering::Relaxed);
        });
        let elapsed = started.elapsed().as_secs_f64();
        let end = |topic, p| producer.client().fetch_watermarks(topic, p, Duration::from_secs(5)).unwrap().1;
        let (o0, o1, o2) = (end("o", 0), end("o", 1), end("o", 2));
        assert_eq!(o1, 0, "the silent partition");
        assert!((o0 - o2).abs() <= 1, "round-robin over the others: {o0} {o2}");
        // half of 200/s (the writer catches up on the time it ran, however busy the machine)
        let per_second = (o0 + o2) as f64 / elapsed;
        assert!((70.0..=110.0).contains(&per_second), "{o0} + {o2} records in {elapsed:.2} s");
        assert_eq!((0..3).map(|p| end("b", p)).sum::<i64>(), 0, "the stopped stream");
        let sent = counts.sent(Stream::Orders);
        assert_eq!(sent as i64, o0 + o2);
        assert_eq!(counts.delivered.load(Ordering::Relaxed), sent);
        assert_eq!(counts.invalid.load(Ordering::Relaxed), sent / 4);
    }
}
