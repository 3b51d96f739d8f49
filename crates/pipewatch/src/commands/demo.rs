//! `pipewatch demo`: no broker needed. librdkafka's mock cluster runs in process,
//! synthetic orders (Avro, their schema served by an in-process stand-in for a schema
//! registry: `created_at` a `timestamp-millis`) and behaviour (JSON, `ts` epoch millis)
//! traffic flows into it, and a scripted fault unfolds while the monitor watches:
//!
//! - from [`SOCIAL_STOP_AT`] the behaviour of users who came by social referral (one in
//!   twelve) is no longer collected while their orders are: the totals barely move, but
//!   the join of orders and behaviour by user finds nothing for `referral=social`: the
//!   pair is `join_incomplete` naming it, and `OrdersWithoutBehaviour` pages;
//! - from [`DELAY_AT`] behaviour events arrive 8 h after they happen: the real-time
//!   path fails and a batch path delivers them, on every partition (the silo). The
//!   stream watermark is the stalest active partition's, so the pair's sync lag reads
//!   8 h at once, and the join's new orders are pending (not missing);
//! - from [`APP_STOP_AT`] orders placed in the app (`channel=app`, one in twelve) are no
//!   longer written: the total drops 8 %, and `segment_silent` names `channel=app`
//!   [`MAX_SILENCE`] later;
//! - from [`SILENT_AT`] orders partition [`SILENT_PARTITION`] receives nothing (a gap
//!   opens [`MAX_SILENCE`] later);
//! - at [`CDC_FAILS_AT`] the task of `orders-cdc`, the Debezium connector that writes the
//!   orders (as an in-process stand-in for Kafka Connect's REST API says), fails on a
//!   refused database connection, and no order is written any more: the stream's cause
//!   is `connector_failed` at the next poll, naming the task and the `PSQLException`,
//!   and `OrdersConnectorFailed` pages.
//!
//! And a third stream, signups, is written two weeks into the past before anything
//! starts (a day that peaks in the evening, a busier weekend: [`signup_rate`]), so its
//! baseline is learnt from the mock cluster at once and its rate flows inside the band.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pipewatch_core::diagnosis::PairCause;
use pipewatch_core::time::format_rfc3339;
use pipewatch_core::Cause;
use pipewatch_traffic::{self as traffic, Counts, Deliveries, Fault, Plan, Scheduled, Stream, TrafficProducer};
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tracing::warn;

use crate::app::App;
use crate::config;
use crate::tick::{self, Tick};

pub const ORDERS_TOPIC: &str = "orders";
/// The orders are Avro: their schema's id at the demo's registry stand-in.
pub const ORDERS_SCHEMA_ID: u32 = 1;
pub const BEHAVIOUR_TOPIC: &str = "user-behaviour";
pub const PARTITIONS: i32 = 3;
pub const DELAY_AT: Duration = Duration::from_secs(30);
/// When the behaviour of users who came by social referral stops being collected (their
/// orders go on: the join of orders and behaviour finds none for them).
pub const SOCIAL_STOP_AT: Duration = Duration::from_secs(8);
/// When the analytics job (group [`ANALYTICS_GROUP`], reading orders) stops.
pub const ANALYTICS_STOP_AT: Duration = Duration::from_secs(10);
pub const ANALYTICS_GROUP: &str = "analytics";
pub const SILENT_AT: Duration = Duration::from_secs(40);
pub const APP_STOP_AT: Duration = Duration::from_secs(25);
/// When the orders' CDC connector fails (and the orders stop).
pub const CDC_FAILS_AT: Duration = Duration::from_secs(60);
pub const CDC_CONNECTOR: &str = "orders-cdc";
const CDC_TRACE: &str = "org.apache.kafka.connect.errors.ConnectException: An exception occurred in the change event producer. This connector will be stopped.\n\tat io.debezium.pipeline.ErrorHandler.setProducerThrowable(ErrorHandler.java:67)\nCaused by: org.postgresql.util.PSQLException: Connection to orders-db:5432 refused. Check that the hostname and port are correct and that the postmaster is accepting TCP/IP connections.\n\tat org.postgresql.core.v3.ConnectionFactoryImpl.openConnectionImpl(ConnectionFactoryImpl.java:346)\nCaused by: java.net.ConnectException: Connection refused\n\tat java.base/sun.nio.ch.Net.pollConnect(Native Method)\n";
pub const SIGNUPS_TOPIC: &str = "signups";
/// How far back the signups history goes.
const HISTORY_DAYS: i64 = 14;
/// The mock cluster keeps at most 100 000 records (5 MB) per partition: the signups'
/// two weeks are spread wide enough to stay whole.
const SIGNUPS_PARTITIONS: i32 = 12;
pub const SILENT_PARTITION: i32 = 2;
pub const MAX_SILENCE: &str = "10s";
pub const BEHAVIOUR_DELAY_MS: i64 = 8 * 3600 * 1000;
/// Records per second per stream.
const RATE: f64 = 15.0;

fn demo_config(bootstrap: &str, listen: &str, registry: &str, connect: &str) -> String {
    format!(
        r#"
[kafka]
bootstrap_servers = "{bootstrap}"
group_id = "pipewatch-demo"
start = "earliest"
[http]
listen = "{listen}"
[monitor]
rate_window = "30s"
[schema_registry]
url = "{registry}"
[[connect]]
name = "cdc"
url = "{connect}"
poll = "2s"
[[stream]]
name = "orders"
topic = "{ORDERS_TOPIC}"
value_format = "avro"
event_time = {{ field = "/created_at", format = "rfc3339" }}
max_silence = "{MAX_SILENCE}"
max_record_delay = "1m"
segments = [{{ name = "channel", field = "/channel" }}, {{ name = "referral", field = "/referral" }}]
[[stream]]
name = "behaviour"
topic = "{BEHAVIOUR_TOPIC}"
event_time = {{ field = "/ts", format = "epoch_millis" }}
max_silence = "{MAX_SILENCE}"
max_record_delay = "1m"
[[stream]]
name = "signups"
topic = "{SIGNUPS_TOPIC}"
event_time = {{ field = "/ts", format = "epoch_millis" }}
max_silence = "1m"
baseline = {{ history = "{HISTORY_DAYS}d", tolerance = 0.3, floor = 0.1 }}
[[pair]]
name = "orders_behaviour"
leader = "orders"
follower = "behaviour"
join = {{ leader_key = "/user_id", follower_key = "/user_id", before = "5s", after = "2s", grace = "1s", segments = ["referral"], window = "5m", min_judged = 10 }}
[[consumer]]
name = "analytics"
group = "{ANALYTICS_GROUP}"
streams = ["orders"]
max_lag = "30s"
max_stall = "5s"
[[alert]]
name = "AnalyticsBehind"
kind = "consumer_lag"
target = "analytics"
threshold = "10s"
for = "3s"
severity = "page"
impact = "Segmentation and ad targeting run on orders the analytics job has not processed."
[[alert]]
name = "BehaviourBehindOrders"
kind = "sync_lag"
target = "orders_behaviour"
threshold = "15m"
clear = "10m"
for = "5s"
severity = "page"
impact = "Behaviour analysis, segmentation and ad targeting run on stale data."
[[alert]]
name = "AppOrdersMissing"
kind = "segment_silence"
target = "orders"
threshold = "{MAX_SILENCE}"
severity = "page"
impact = "Orders placed in the app are not captured: revenue, conversion and stock reports undercount the app."
[[alert]]
name = "OrdersWithoutBehaviour"
kind = "join_completeness"
target = "orders_behaviour"
threshold = 0.5
min_judged = 10
severity = "page"
impact = "Orders whose users have no behaviour data: their profiles, segments and ads are built without these purchases."
[[alert]]
name = "SignupsOffTheirUsual"
kind = "volume_anomaly"
target = "signups"
for = "30s"
impact = "Signups are off their usual level for this hour of the week: a broken signup path or a bot wave."
[[alert]]
name = "OrdersStale"
kind = "freshness_lag"
target = "orders"
threshold = "15s"
severity = "page"
impact = "Revenue and stock dashboards show orders that are no longer current."
[[alert]]
name = "OrdersConnectorFailed"
kind = "connector_failed"
target = "orders"
impact = "No order reaches analytics, stock or revenue reports until the CDC connector is restarted."
"#
    )
}

/// Runs the demo until `duration` passes (if given) or `shutdown` completes.
pub async fn run(
    listen: &str,
    duration: Option<Duration>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let cluster = MockCluster::new(1).context("failed to start the mock Kafka cluster")?;
    for (topic, partitions) in
        [(ORDERS_TOPIC, PARTITIONS), (BEHAVIOUR_TOPIC, PARTITIONS), (SIGNUPS_TOPIC, SIGNUPS_PARTITIONS)]
    {
        cluster.create_topic(topic, partitions, 1).with_context(|| format!("failed to create topic {topic}"))?;
    }
    let bootstrap = cluster.bootstrap_servers();
    println!("pipewatch demo: writing {HISTORY_DAYS} days of signups history into the mock cluster…");
    let history = {
        let bootstrap = bootstrap.clone();
        tokio::task::spawn_blocking(move || signups_history(&bootstrap)).await.context("the history writer")??
    };
    let subject = format!("{ORDERS_TOPIC}-value");
    let schemas = vec![(ORDERS_SCHEMA_ID, subject, traffic::avro::ORDER_SCHEMA.to_string())];
    let registry = crate::registry::stand_in(schemas).await.context("failed to start the demo's schema registry")?;
    let connect = crate::connect::stand_in(cdc_connector).await.context("failed to start the demo's Kafka Connect")?;
    let config =
        config::parse(&demo_config(&bootstrap, listen, &registry, &connect)).context("the demo config is invalid")?;
    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "failed to listen on {} (is another pipewatch running? move the demo with --listen 127.0.0.1:PORT)",
            config.listen
        )
    })?;
    let url = format!("http://{}", listener.local_addr().context("failed to read the listener's address")?);

    print_script(&url, history);

    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let producer: TrafficProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create_with_context(Deliveries(counts.clone()))
        .context("failed to create the demo producer")?;
    let traffic = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("demo-traffic".into())
            .spawn(move || traffic::run(&producer, &plan(), [PARTITIONS; 2], &counts, &stop))
            .context("failed to start the traffic thread")?
    };

    let signups = {
        let (bootstrap, stop) = (bootstrap.clone(), stop.clone());
        std::thread::Builder::new()
            .name("demo-signups".into())
            .spawn(move || live_signups(&bootstrap, &stop))
            .context("failed to start the signups writer")?
    };
    let analytics = {
        let (bootstrap, stop) = (bootstrap.clone(), stop.clone());
        std::thread::Builder::new()
            .name("demo-analytics".into())
            .spawn(move || analytics_job(&bootstrap, &stop))
            .context("failed to start the analytics job")?
    };

    let app = App::new(config);
    let mut ticks = app.subscribe();
    let printer = tokio::spawn(async move {
        let mut printed = Printed::default();
        loop {
            match ticks.recv().await {
                Ok(tick) => printed.print(&tick),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            }
        }
    });

    let timer = async move {
        match duration {
            Some(d) => tokio::select! { _ = tokio::time::sleep(d) => {}, _ = shutdown => {} },
            None => shutdown.await,
        }
    };
    let result = app.run(listener, timer).await;
    let _ = printer.await;
    stop.store(true, Ordering::Relaxed);
    if traffic.join().is_err() {
        warn!("the demo traffic thread panicked");
    }
    if analytics.join().is_err() {
        warn!("the demo analytics job panicked");
    }
    if signups.join().is_err() {
        warn!("the demo signups writer panicked");
    }
    drop(cluster);
    result
}

/// What the demo shows, and when.
fn print_script(url: &str, history: u64) {
    println!(
        "pipewatch demo: an in-process Kafka (librdkafka's mock cluster) with orders (Avro, through an in-process \
         schema registry) and behaviour (JSON) traffic.\n\
         \n  Open {url}/          the status page (refreshes every 5 s)\n       {url}/metrics   Prometheus metrics\n\
         \nWhat happens:\n  0s   both streams flow, in sync; orders and behaviour join by user\n  \
         {}s   the behaviour of users who came by social referral (1 in 12) stops being collected while their orders go on: \
         the totals barely move,\n       but the join finds none of their behaviour: pipewatch_join_completeness_ratio{{value=\"social\"}} \
         falls to 0, the pair is join_incomplete\n       naming referral=social, alert OrdersWithoutBehaviour fires\n  \
         {}s  behaviour events start arriving 8h after they happen (a batch path replaces the real-time one): \
         pipewatch_sync_lag_seconds{{pair=\"orders_behaviour\"}} ≈ 28800, cause event_time_delayed,\n       \
         alert BehaviourBehindOrders fires 5s later; the new orders wait for their behaviour \
         (pipewatch_join_pending_records), none is called missing\n  \
         {}s  orders placed in the app (channel=app, 1 in 12) stop being captured while the rest flows (the total drops 8 %): \
         cause segment_silent {} later,\n       naming channel=app; alert AppOrdersMissing fires\n  \
         {}s  orders partition {} goes silent: \
         a gap opens after {} of silence, cause partition_stalled; alert OrdersStale fires once orders data is 15s old\n  \
         {}s  the task of {CDC_CONNECTOR}, the Debezium connector writing the orders, fails (a PostgreSQL connection refused): \
         cause connector_failed at the next poll of Kafka Connect,\n       naming the task, its worker and the PSQLException; \
         alert OrdersConnectorFailed pages at once\n\
         \nAnd the signups stream ({} records over the last {} days, written before the start) flows inside \
         the band learnt from that history at start:\n       expected vs actual on the status page, \
         pipewatch_stream_rate_expected_records_per_second{{stream=\"signups\"}}\n\
         \nAnd downstream: the analytics job (consumer group {ANALYTICS_GROUP}, reading orders) stops at {}s: its lag \
         (pipewatch_consumer_lag_seconds) climbs 1 s per second,\n       \
         cause consumer_stopped 5s later; alert AnalyticsBehind fires once it is 10s behind (for 3s)\n",
        SOCIAL_STOP_AT.as_secs(),
        DELAY_AT.as_secs(),
        APP_STOP_AT.as_secs(),
        MAX_SILENCE,
        SILENT_AT.as_secs(),
        SILENT_PARTITION,
        MAX_SILENCE,
        CDC_FAILS_AT.as_secs(),
        history,
        HISTORY_DAYS,
        ANALYTICS_STOP_AT.as_secs()
    );
}

/// Signups per second at `at` (UTC): a day that is quiet at night and peaks in the
/// evening, a weekend a third busier; linear between the hours' middles.
pub fn signup_rate(at: i64) -> f64 {
    const DAY: [f64; 24] = [
        0.3, 0.2, 0.2, 0.2, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0, 1.0, 1.0, 1.1, 1.1, 1.0, 1.0, 1.1, 1.3, 1.5, 1.6, 1.4, 1.0,
        0.7, 0.5,
    ];
    const HOUR: i64 = 3_600_000;
    let level = |hour: i64| {
        // 1970-01-01 was a Thursday: day 0 of the week is a Monday three days earlier
        let weekday = (hour.div_euclid(24) + 3).rem_euclid(7);
        let weekend = if weekday >= 5 { 1.3 } else { 1.0 };
        DAY[hour.rem_euclid(24) as usize] * weekend
    };
    let pos = (at - HOUR / 2) as f64 / HOUR as f64;
    let before = pos.floor() as i64;
    let w = pos - before as f64;
    0.5 * (level(before) * (1.0 - w) + level(before + 1) * w)
}

/// One signup record at `at`.
fn signup(n: u64, at: i64) -> String {
    format!(r#"{{"user_id":"u-{n}","channel":"{}","ts":{at}}}"#, traffic::channel(n))
}

/// The signups of the past [`HISTORY_DAYS`] days (their Kafka timestamps and event
/// times when they happened), up to now: how many.
fn signups_history(bootstrap: &str) -> anyhow::Result<u64> {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .context("failed to create the history writer")?;
    let now = pipewatch_kafka::now_ms();
    let mut at = now - HISTORY_DAYS * 86_400_000;
    let mut n = 0u64;
    while at < now {
        let payload = signup(n, at);
        let mut record = BaseRecord::<(), str>::to(SIGNUPS_TOPIC)
            .partition((n % SIGNUPS_PARTITIONS as u64) as i32)
            .payload(&payload)
            .timestamp(at);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                // the producer's queue is full: let it drain
                Err((e, r)) if e.rdkafka_error_code() == Some(rdkafka::error::RDKafkaErrorCode::QueueFull) => {
                    producer.poll(Duration::from_millis(10));
                    record = r;
                }
                Err((e, _)) => anyhow::bail!("failed to write the signups history: {e}"),
            }
        }
        n += 1;
        at += (1000.0 / signup_rate(at)) as i64;
    }
    producer.flush(Duration::from_secs(60)).context("failed to write the signups history")?;
    Ok(n)
}

/// Signups as they happen, at [`signup_rate`], until `stop`.
fn live_signups(bootstrap: &str, stop: &AtomicBool) {
    use rdkafka::producer::{BaseProducer, BaseRecord};
    let producer: BaseProducer = match ClientConfig::new().set("bootstrap.servers", bootstrap).create() {
        Ok(p) => p,
        Err(e) => return warn!(error = %e, "the demo signups writer could not start"),
    };
    let mut next = pipewatch_kafka::now_ms();
    let mut n = 1u64 << 40;
    while !stop.load(Ordering::Relaxed) {
        let now = pipewatch_kafka::now_ms();
        while next <= now {
            let payload = signup(n, next);
            let record = BaseRecord::<(), str>::to(SIGNUPS_TOPIC)
                .partition((n % SIGNUPS_PARTITIONS as u64) as i32)
                .payload(&payload);
            if producer.send(record).is_err() {
                warn!("the demo signups writer could not send");
            }
            n += 1;
            next += (1000.0 / signup_rate(next)) as i64;
        }
        producer.poll(Duration::from_millis(100));
    }
}

/// The demo's downstream job: reads orders in its own group and commits every second,
/// until [`ANALYTICS_STOP_AT`], when it stops (its offsets stay committed).
fn analytics_job(bootstrap: &str, stop: &AtomicBool) {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    let consumer: BaseConsumer = match ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", ANALYTICS_GROUP)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
    {
        Ok(c) => c,
        Err(e) => return warn!(error = %e, "the demo analytics job could not start"),
    };
    if let Err(e) = consumer.subscribe(&[ORDERS_TOPIC]) {
        return warn!(error = %e, "the demo analytics job could not subscribe");
    }
    let started = std::time::Instant::now();
    let mut last_commit = started;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < ANALYTICS_STOP_AT {
        let _ = consumer.poll(Duration::from_millis(100));
        if last_commit.elapsed() >= Duration::from_secs(1) {
            let _ = consumer.commit_consumer_state(CommitMode::Async);
            last_commit = std::time::Instant::now();
        }
    }
    let _ = consumer.commit_consumer_state(CommitMode::Sync);
}

/// What the demo prints: each alert transition, and each stream's and consumer's cause
/// when it changes.
#[derive(Default)]
struct Printed {
    causes: Vec<(String, Cause)>,
    consumers: Vec<(String, &'static str)>,
    pairs: Vec<(String, &'static str)>,
}

impl Printed {
    fn print(&mut self, tick: &Tick) {
        let at = format_rfc3339(tick.snapshot.at_ms);
        for e in &tick.events {
            println!("{at}  {}", tick::transition_line(e));
        }
        for st in &tick.snapshot.streams {
            let changed = match self.causes.iter_mut().find(|(n, _)| *n == st.name) {
                Some((_, c)) if *c == st.cause => false,
                Some((_, c)) => {
                    *c = st.cause;
                    true
                }
                None => {
                    self.causes.push((st.name.clone(), st.cause));
                    true
                }
            };
            if changed {
                let detail = st.cause_detail().map_or_else(String::new, |d| format!(" ({d})"));
                println!("{at}  stream {:<10} {:<20} {}{detail}", st.name, st.cause.as_str(), st.cause.explain());
            }
        }
        for c in &tick.snapshot.consumers {
            let cause = c.cause.as_str();
            match self.consumers.iter_mut().find(|(n, _)| *n == c.name) {
                Some((_, last)) if *last == cause => continue,
                Some((_, last)) => *last = cause,
                None => self.consumers.push((c.name.clone(), cause)),
            }
            println!("{at}  consumer {:<8} {:<20} {}", c.name, cause, c.cause.explain());
        }
        for p in &tick.snapshot.pairs {
            let cause = p.cause.as_str();
            match self.pairs.iter_mut().find(|(n, _)| *n == p.name) {
                Some((_, last)) if *last == cause => continue,
                Some((_, last)) => *last = cause,
                None => self.pairs.push((p.name.clone(), cause)),
            }
            let detail = match p.cause {
                PairCause::JoinIncomplete => {
                    let named: Vec<String> = p.join.iter().flat_map(|j| &j.incomplete).map(|v| v.phrase()).collect();
                    format!(" ({})", named.join("; "))
                }
                PairCause::Stream(_) => String::new(),
            };
            println!("{at}  pair {} {:<20} {}{detail}", p.name, cause, p.cause.explain());
        }
    }
}

/// The orders' CDC connector as Connect's REST API tells it, `since` the demo started.
fn cdc_connector(since: Duration) -> crate::connect::StandInAnswer {
    let config = serde_json::json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "topic.prefix": "shop",
        "database.hostname": "orders-db",
    });
    let task = if since < CDC_FAILS_AT { ("RUNNING", None) } else { ("FAILED", Some(CDC_TRACE)) };
    let connector = crate::connect::expanded("source", config, "connect-0:8083", &[task]);
    crate::connect::StandInAnswer {
        connectors: serde_json::json!({ CDC_CONNECTOR: connector }),
        topics: [(CDC_CONNECTOR.to_string(), vec![ORDERS_TOPIC.to_string()])].into(),
    }
}

/// The demo's script as a traffic plan.
fn plan() -> Plan {
    let at = |fault, from, until| Scheduled { fault, from, until };
    Plan {
        orders_topic: ORDERS_TOPIC.into(),
        behaviour_topic: BEHAVIOUR_TOPIC.into(),
        rate: RATE,
        faults: vec![
            // Real-time behaviour uses partitions 0..2 (the last one stays empty: key
            // skew); the batch path that takes over at DELAY_AT writes to all of them.
            at(Fault::SilentPartition(Stream::Behaviour, PARTITIONS - 1), Duration::ZERO, Some(DELAY_AT)),
            at(Fault::BehaviourDelay(Duration::from_millis(BEHAVIOUR_DELAY_MS as u64)), DELAY_AT, None),
            at(Fault::SilentPartition(Stream::Orders, SILENT_PARTITION), SILENT_AT, None),
            at(Fault::StoppedChannel(Stream::Orders, "app"), APP_STOP_AT, None),
            at(Fault::StoppedReferral(Stream::Behaviour, "social"), SOCIAL_STOP_AT, None),
        ]
        .into_iter()
        // the CDC connector failed: nothing is written any more
        .chain((0..PARTITIONS).map(|p| at(Fault::SilentPartition(Stream::Orders, p), CDC_FAILS_AT, None)))
        .collect(),
        orders_avro: Some(ORDERS_SCHEMA_ID),
        orders_sql: None,
    }
}
