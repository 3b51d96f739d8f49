//! The catch-up and scale benchmark against a real broker (Apache Kafka started by
//! `tests/broker/kafka.sh`, or the one named by `PIPEWATCH_TEST_BOOTSTRAP`).
//!
//! `cargo bench -p pipewatch --bench drain [-- OPTIONS]`
//!
//! * **drain**: produces `--records` JSON orders (~340 bytes, event time last) into a topic
//!   of `--partitions` partitions, then, `--rounds` times in turn, drains them with a bare
//!   librdkafka consumer (a `BaseConsumer` poll loop that touches each payload and nothing
//!   else, librdkafka's default settings) and with the `pipewatch` binary (its default
//!   settings, `start = "lookback"`, `lookback = "15m"`). Each drain is timed from the
//!   partition assignment to the last record read (pipewatch: its "partitions assigned" log
//!   line and its `pipewatch_partition_last_record_timestamp_seconds`); printed: both
//!   rates, their ratio, each process's peak RSS and CPU seconds, and pipewatch's time from
//!   start until the stream leaves `catching_up`.
//! * **drain-avro**: the same with the orders in Avro (the Confluent wire format, the same
//!   fields, ~150 bytes), pipewatch reading them with `value_format = "avro"`, the schema
//!   served by the demo's registry stand-in (fetched once: not on the measured path).
//! * **drain-join**: the same orders, half of them into a second topic (the follower,
//!   `behaviour`, each record sharing its `customer_id` with one of the first), both
//!   drained by the bare consumer and by pipewatch with the pair joined by
//!   `/customer_id` (`before`, `after` and `grace` 0: judged at the next tick on the
//!   slice of the order's minute; `max_keys` and `max_pending` 4 million, above the
//!   drain's million customers a minute and the orders waiting for the follower's slowest
//!   partition), with `partitions = --join-partitions` (`all`, the default: the joins' own
//!   consumer reads the follower once more; `co_partitioned`; or `none`: the two streams
//!   without the pair, the reference for the join's own cost). Printed besides the drain:
//!   when every leader record had been judged (`pipewatch_join_records_total` summed), and
//!   how (matched, missing, unjudged); and any warning in pipewatch's log.
//! * **scale**: `--scale` partitions over `--scale-topics` topics with 4 records each;
//!   pipewatch watches them all: time until every partition has been read, then over
//!   `--idle-secs` with nothing produced (after `--settle-secs`) its CPU, by thread, and
//!   the broker's, RSS, and 10 scrapes of `/metrics` (best and median time, series, bytes);
//!   once per `--granularity` (`partition,stream` by default: `metrics.granularity`), on
//!   the same topics. Before pipewatch starts, the broker's own CPU over an idle window
//!   with the topics and no consumer: the baseline of its figure.
//!   `--property key=value` (repeatable) passes librdkafka properties to pipewatch.
//!   `--group-partitions N`: a group commits (at the log end) on the first N partitions
//!   of the topics, and each granularity runs twice, without and with that group watched
//!   as a `[[consumer]]`: the second figure less the first is the watched group's cost.
//!   `--groups N` (with `--group-partitions`): N groups commit so, found by `[discovery]`
//!   (`max_groups = --max-groups`, default N + 2; `every = "15s"`) instead of a
//!   `[[consumer]]`; after the idle window, one more group commits and the time from its
//!   commit to its first series on `/metrics` is printed (when `max_groups` leaves it a
//!   place; else the overflow is). `--group-behind N`: the groups commit N records short
//!   of the log end (waiting records: stopped jobs, read at every poll) instead of at it
//!   (caught up: an idle cluster's jobs).
//!   `--discover-topics`: the topics are found by `[discovery] topics` (each a stream of
//!   its own, by Kafka timestamp) instead of configured as `[[stream]]`s (no group then).
//! * **history**: the start-up cost of learning a baseline: a topic of
//!   `--history-partitions` partitions with one record per partition in every hour of the
//!   past `--history-days` days (timestamps in the past), then pipewatch with
//!   `baseline = { history = "<days>d" }`: the time from its start until the baseline is
//!   ready, the offsets-by-time lookups it made (`pipewatch_baseline_offset_requests_total`)
//!   and the broker's CPU meanwhile; as reference, one offsets-by-time lookup of every
//!   partition made by a bare librdkafka client in the same run.
//!
//! Run by `cargo test` (no `--bench` argument) it is a smoke run at a small size: it must
//! complete, no figure is asserted.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pipewatch_core::time::{format_rfc3339, parse_rfc3339};
use pipewatch_kafka::testing::{create_topic, create_topic_with, free_port, unique_topic, KafkaBroker, BOOTSTRAP_ENV};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientContext;

/// The pipewatch binary measured: this build's, or `PIPEWATCH_BENCH_BIN` (an earlier
/// build, for a before-and-after figure on the same broker).
fn pipewatch_bin() -> String {
    std::env::var("PIPEWATCH_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_pipewatch").to_string())
}

struct Options {
    full: bool,
    records: u64,
    partitions: i32,
    rounds: u32,
    scale: i32,
    scale_topics: i32,
    idle: Duration,
    settle: Duration,
    /// `--property key=value`: librdkafka properties for pipewatch's `[kafka.properties]`.
    properties: Vec<(String, String)>,
    /// `--granularity partition,stream`: the `metrics.granularity` of each scale run.
    granularities: Vec<String>,
    history_partitions: i32,
    history_days: i64,
    /// `--group-partitions N`: partitions a watched group has committed on (scale).
    group_partitions: i32,
    /// `--groups N`: that many groups so committed, discovered (scale).
    groups: u32,
    /// `--max-groups N`: `[discovery].max_groups` (default: `--groups`).
    max_groups: u32,
    /// `--group-behind N`: the groups commit N records short of the log end (0..=4).
    group_behind: i64,
    /// `--discover-topics`: the scale topics found by `[discovery] topics`, not configured.
    discover_topics: bool,
    /// `--join-partitions all|co_partitioned|none`: the drain-join's `join.partitions`
    /// (`none`: the same two streams without the pair, the join's reference).
    join_partitions: String,
}

impl Options {
    fn parse(args: &[String]) -> Self {
        let full = args.iter().any(|a| a == "--bench");
        let get = |name: &str| -> Option<u64> {
            let i = args.iter().position(|a| a == name)?;
            let v = args.get(i + 1).unwrap_or_else(|| panic!("{name} needs a value"));
            Some(v.replace('_', "").parse().unwrap_or_else(|e| panic!("{name} {v}: {e}")))
        };
        Options {
            full,
            records: get("--records").unwrap_or(if full { 5_000_000 } else { 20_000 }),
            partitions: get("--partitions").unwrap_or(6) as i32,
            rounds: get("--rounds").unwrap_or(if full { 3 } else { 1 }) as u32,
            scale: get("--scale").unwrap_or(if full { 10_000 } else { 40 }) as i32,
            scale_topics: get("--scale-topics").unwrap_or(4) as i32,
            idle: Duration::from_secs(get("--idle-secs").unwrap_or(if full { 60 } else { 3 })),
            settle: Duration::from_secs(get("--settle-secs").unwrap_or(if full { 30 } else { 1 })),
            properties: args
                .windows(2)
                .filter(|w| w[0] == "--property")
                .map(|w| {
                    let (k, v) = w[1].split_once('=').unwrap_or_else(|| panic!("--property {}: want key=value", w[1]));
                    (k.to_string(), v.to_string())
                })
                .collect(),
            granularities: args
                .iter()
                .position(|a| a == "--granularity")
                .map(|i| args.get(i + 1).expect("--granularity needs a value").as_str())
                .unwrap_or("partition,stream")
                .split(',')
                .map(str::to_string)
                .collect(),
            history_partitions: get("--history-partitions").unwrap_or(if full { 1000 } else { 8 }) as i32,
            history_days: get("--history-days").unwrap_or(if full { 14 } else { 2 }) as i64,
            group_partitions: get("--group-partitions").unwrap_or(0) as i32,
            groups: get("--groups").unwrap_or(0) as u32,
            max_groups: get("--max-groups").or(get("--groups").map(|n| n + 2)).unwrap_or(0) as u32,
            group_behind: get("--group-behind").unwrap_or(0).min(SCALE_RECORDS as u64) as i64,
            discover_topics: args.iter().any(|a| a == "--discover-topics"),
            join_partitions: args
                .iter()
                .position(|a| a == "--join-partitions")
                .map_or("all", |i| args.get(i + 1).expect("--join-partitions needs a value").as_str())
                .to_string(),
        }
    }
}

/// Records on each partition of the scale topics.
const SCALE_RECORDS: i64 = 4;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("bare-consumer") {
        return bare_consumer(&args[1], &args[2], args[3].parse().expect("records"));
    }
    let options = Options::parse(&args);
    let only = |what: &str| !args.iter().any(|a| a == "--only") || args.iter().any(|a| a == what);
    let (bootstrap, broker) = match std::env::var(BOOTSTRAP_ENV) {
        Ok(b) if !b.is_empty() => (b, None),
        _ => {
            let broker = KafkaBroker::start(free_port()).unwrap_or_else(|e| {
                panic!("{e}\nthe benchmark needs Apache Kafka: tests/broker/kafka.sh (java 17+ and mvn), or set {BOOTSTRAP_ENV}=host:port")
            });
            (broker.bootstrap.clone(), Some(broker))
        }
    };
    let broker_pid = broker.as_ref().and_then(|b| b.process_id()).and_then(java_child);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let dir = std::env::temp_dir().join(format!("pipewatch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    println!(
        "pipewatch drain benchmark ({} build of pipewatch), broker {bootstrap}, {} cores",
        if options.full { "release" } else { "test" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if only("drain") {
        drain(&options, &bootstrap, &runtime, &dir, Format::Json);
    }
    if only("drain-avro") {
        drain(&options, &bootstrap, &runtime, &dir, Format::Avro);
    }
    if only("drain-join") {
        drain(&options, &bootstrap, &runtime, &dir, Format::Join);
    }
    if only("scale") {
        scale(&options, &bootstrap, broker_pid, &runtime, &dir);
    }
    if only("history") {
        history(&options, &bootstrap, broker_pid, &runtime, &dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    drop(broker);
}

// ---------------------------------------------------------------------------- drain

/// How the drain's orders are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Avro,
    /// JSON orders over two topics, their pair joined by customer.
    Join,
}

/// The Avro orders' schema id at the registry stand-in.
const AVRO_SCHEMA_ID: u32 = 1;

/// The drain's orders in Avro: the JSON order's fields.
const AVRO_ORDER: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "order_id", "type": "string"}, {"name": "customer_id", "type": "string"},
    {"name": "currency", "type": "string"}, {"name": "total", "type": "double"},
    {"name": "items", "type": {"type": "array", "items": {"type": "record", "name": "Item", "fields": [
        {"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}, {"name": "price", "type": "double"}]}}},
    {"name": "shipping_method", "type": "string"}, {"name": "country", "type": "string"},
    {"name": "channel", "type": "string"}, {"name": "session_id", "type": "string"},
    {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#;

/// Order `i` as Avro, framed.
fn avro_order(schema: &apache_avro::Schema, i: u64, created_at: i64) -> Vec<u8> {
    use apache_avro::types::Value as Avro;
    let text = |s: String| Avro::String(s);
    let item = |sku: &str, qty: i32, price: f64| {
        Avro::Record(vec![
            ("sku".into(), text(sku.into())),
            ("qty".into(), Avro::Int(qty)),
            ("price".into(), Avro::Double(price)),
        ])
    };
    let value = Avro::Record(vec![
        ("order_id".into(), text(format!("ord-{i:012}"))),
        ("customer_id".into(), text(format!("cus-{:09}", i % 1_000_003))),
        ("currency".into(), text("EUR".into())),
        ("total".into(), Avro::Double(129.95)),
        ("items".into(), Avro::Array(vec![item("SKU-10442", 2, 39.99), item("SKU-88120", 1, 49.97)])),
        ("shipping_method".into(), text("express".into())),
        ("country".into(), text("DE".into())),
        ("channel".into(), text("web".into())),
        ("session_id".into(), text(format!("sess-{i:016x}"))),
        ("created_at".into(), Avro::TimestampMillis(created_at)),
    ]);
    let mut out = vec![0];
    out.extend_from_slice(&AVRO_SCHEMA_ID.to_be_bytes());
    #[allow(deprecated)]
    out.extend(apache_avro::to_avro_datum(schema, value).expect("the order fits its schema"));
    out
}

/// The registry stand-in the Avro drain's pipewatch fetches its one schema from, on a
/// thread of its own (the bench's runtime only runs while it is blocked on).
fn registry_stand_in() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let schemas = vec![(AVRO_SCHEMA_ID, "bench-orders-value".to_string(), AVRO_ORDER.to_string())];
            let url = pipewatch::registry::stand_in(schemas).await.expect("the registry stand-in");
            tx.send(url).expect("send the url");
            std::future::pending::<()>().await
        })
    });
    rx.recv().expect("the registry stand-in's url")
}

fn drain(o: &Options, bootstrap: &str, runtime: &tokio::runtime::Runtime, dir: &Path, format: Format) {
    let topic = unique_topic("bench-orders");
    runtime.block_on(create_topic(bootstrap, &topic, o.partitions)).expect("create the drain topic");
    // the join's follower: the odd records, each sharing its customer with the one before
    let follower = (format == Format::Join).then(|| unique_topic("bench-behaviour"));
    if let Some(f) = &follower {
        runtime.block_on(create_topic(bootstrap, f, o.partitions)).expect("create the follower topic");
    }
    let started = Instant::now();
    let schema = apache_avro::Schema::parse_str(AVRO_ORDER).expect("the Avro order's schema");
    let size = match format {
        Format::Json => {
            produce(bootstrap, &[topic.as_str()], o.records, |_| None);
            order(0, &format_rfc3339(0)).len()
        }
        Format::Join => {
            let topics = [topic.as_str(), follower.as_deref().unwrap_or_default()];
            produce_with(
                bootstrap,
                &topics,
                o.records,
                |_| None,
                |i, at| order_of(i, i / 2, &format_rfc3339(at)).into_bytes(),
            );
            // then one record a second ahead on each follower partition: its watermark
            // passes every order (else the last orders wait for an idle partition)
            let producer = producer(bootstrap);
            let ahead = order_of(o.records, 0, &format_rfc3339(pipewatch_kafka::now_ms() + 1000)).into_bytes();
            for p in 0..o.partitions {
                send(&producer, BaseRecord::to(topics[1]).partition(p).payload(&ahead[..]));
            }
            producer.flush(Duration::from_secs(30)).expect("flush the bench producer");
            order(0, &format_rfc3339(0)).len()
        }
        Format::Avro => {
            produce_with(bootstrap, &[topic.as_str()], o.records, |_| None, |i, at| avro_order(&schema, i, at));
            avro_order(&schema, 0, 0).len()
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let (name, registry) = match format {
        Format::Json => ("drain", None),
        Format::Avro => ("drain-avro", Some(registry_stand_in())),
        Format::Join => ("drain-join", None),
    };
    let topics = match &follower {
        Some(f) => format!("{topic},{f}"),
        None => topic.clone(),
    };
    println!(
        "\n{name}: {} {format:?} records of {size} bytes in {} partitions of {topic} (produced in {secs:.1} s, {:.0} records/s)",
        o.records,
        o.partitions,
        o.records as f64 / secs
    );
    if follower.is_some() {
        println!(
            "  joined by /customer_id, partitions = {:?}; judged after: from the assignment until every leader record was judged",
            o.join_partitions
        );
    }
    println!(
        "round  bare records/s  pipewatch records/s  ratio  bare RSS/CPU        pipewatch RSS/CPU   healthy after{}",
        if follower.is_some() { "  judged after" } else { "" }
    );
    let mut ratios = Vec::new();
    for round in 1..=o.rounds {
        let extra = if follower.is_some() { o.partitions as u64 } else { 0 };
        let bare = run_bare(bootstrap, &topics, o.records + extra);
        let pw = run_pipewatch_drain(o, bootstrap, &topic, follower.as_deref(), dir, registry.as_deref());
        let ratio = pw.rate() / bare.rate();
        ratios.push(ratio);
        println!(
            "{round:>5}  {:>14.0}  {:>19.0}  {ratio:>5.2}  {:>6.1} MiB {:>5.1} s  {:>6.1} MiB {:>5.1} s  {:>13}{}",
            bare.rate(),
            pw.rate(),
            bare.peak_rss_mib,
            bare.cpu_s,
            pw.peak_rss_mib,
            pw.cpu_s,
            pw.healthy_after.map_or("-".into(), |d| format!("{:.1} s", d.as_secs_f64())),
            pw.judged_after.map_or(String::new(), |d| format!("  {:>10.1} s", d.as_secs_f64())),
        );
        if let Some([matched, missing, unjudged]) = pw.outcomes {
            println!("       leader records matched {matched}, missing {missing}, unjudged {unjudged}");
        }
    }
    ratios.sort_by(f64::total_cmp);
    println!("median ratio pipewatch / bare: {:.2}", ratios[ratios.len() / 2]);
}

struct Drained {
    records: u64,
    /// From the partition assignment to the last record read.
    elapsed: Duration,
    peak_rss_mib: f64,
    cpu_s: f64,
    /// pipewatch only: from its start until the stream left `catching_up` (cause `ok`).
    healthy_after: Option<Duration>,
    /// pipewatch with a join: from the assignment until every leader record was judged
    /// (to the 200 ms of the polls of `/metrics`).
    judged_after: Option<Duration>,
    /// pipewatch with a join: the leader records matched, missing and unjudged.
    outcomes: Option<[u64; 3]>,
}

impl Drained {
    fn rate(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-3)
    }
}

/// The bare consumer in a process of its own (this binary, `bare-consumer`), so that its
/// RSS and CPU are its own.
fn run_bare(bootstrap: &str, topic: &str, records: u64) -> Drained {
    let out = Command::new(std::env::current_exe().expect("current exe"))
        .args(["bare-consumer", bootstrap, topic, &records.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .expect("run the bare consumer");
    assert!(out.status.success(), "the bare consumer failed: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text.split_whitespace().map(|v| v.parse().expect("bare consumer output")).collect();
    Drained {
        records: f[0] as u64,
        elapsed: Duration::from_secs_f64(f[1]),
        peak_rss_mib: f[2],
        cpu_s: f[3],
        healthy_after: None,
        judged_after: None,
        outcomes: None,
    }
}

struct AssignedAt(std::sync::Mutex<Option<Instant>>);

impl ClientContext for AssignedAt {}
impl ConsumerContext for AssignedAt {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(_) = rebalance {
            self.0.lock().unwrap().get_or_insert_with(Instant::now);
        }
    }
}

/// `bare-consumer BOOTSTRAP TOPICS N`: reads N records of the topics (comma-separated) with
/// librdkafka's defaults, prints `records seconds peak_rss_mib cpu_seconds`.
fn bare_consumer(bootstrap: &str, topics: &str, records: u64) {
    let consumer: BaseConsumer<AssignedAt> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_topic("bench-bare"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create_with_context(AssignedAt(std::sync::Mutex::new(None)))
        .expect("bare consumer");
    consumer.subscribe(&topics.split(',').collect::<Vec<_>>()).expect("subscribe");
    let (mut n, mut bytes) = (0u64, 0usize);
    let deadline = Instant::now() + Duration::from_secs(600);
    while n < records {
        assert!(Instant::now() < deadline, "bare consumer: {n} of {records} records after 600 s");
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                bytes += m.payload().map_or(0, <[u8]>::len);
                n += 1;
            }
            Some(Err(e)) => panic!("bare consumer: {e}"),
            None => {}
        }
    }
    let elapsed = consumer.context().0.lock().unwrap().expect("assigned").elapsed();
    std::hint::black_box(bytes);
    let me = std::process::id();
    println!("{n} {} {} {}", elapsed.as_secs_f64(), peak_rss_mib(me).unwrap_or(0.0), cpu_seconds(me).unwrap_or(0.0));
}

fn run_pipewatch_drain(
    o: &Options,
    bootstrap: &str,
    topic: &str,
    follower: Option<&str>,
    dir: &Path,
    registry: Option<&str>,
) -> Drained {
    // the join's records ahead, one per follower partition
    let records = o.records + if follower.is_some() { o.partitions as u64 } else { 0 };
    let leader_records = o.records.div_ceil(2);
    let avro = match registry {
        Some(url) => format!("[schema_registry]\nurl = \"{url}\"\n"),
        None => String::new(),
    };
    let format = if registry.is_some() { "value_format = \"avro\"\n" } else { "" };
    let time = "event_time = { field = \"/created_at\", format = \"rfc3339\" }\n";
    let mut streams = format!("{avro}[[stream]]\nname = \"orders\"\ntopic = \"{topic}\"\n{format}{time}");
    if let Some(f) = follower {
        streams.push_str(&format!("[[stream]]\nname = \"behaviour\"\ntopic = \"{f}\"\n{time}"));
    }
    if follower.is_some() && o.join_partitions != "none" {
        streams.push_str(&format!(
            "[[pair]]\nname = \"orders_behaviour\"\n\
             leader = \"orders\"\nfollower = \"behaviour\"\njoin = {{ leader_key = \"/customer_id\", follower_key = \
             \"/customer_id\", before = \"0s\", after = \"0s\", grace = \"0s\", max_keys = 4000000, max_pending = 4000000, partitions = {:?} }}\n",
            o.join_partitions
        ));
    }
    let pw = Pipewatch::start(bootstrap, "start = \"lookback\"\nlookback = \"15m\"", &o.properties, &streams, dir);
    let mut healthy_after = None;
    let mut judged_at = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    let joined = follower.is_some() && o.join_partitions != "none";
    let metrics = loop {
        let m = pw.metrics();
        if healthy_after.is_none() && m.value("pipewatch_stream_cause", &[("cause", "ok")]) == Some(1.0) {
            healthy_after = Some(pw.started.elapsed());
        }
        // every leader record judged (the counters for all have no segment)
        let judged = m.sum_where("pipewatch_join_records_total", "segment=\"\"") as u64;
        if joined && judged_at.is_none() && judged >= leader_records {
            judged_at = Some(pipewatch_kafka::now_ms());
        }
        if m.sum("pipewatch_records_total") as u64 >= records
            && healthy_after.is_some()
            && (!joined || judged_at.is_some())
        {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "pipewatch: {} of {records} records after 600 s",
            m.sum("pipewatch_records_total")
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let last_ms = (metrics.max("pipewatch_partition_last_record_timestamp_seconds") * 1000.0) as i64;
    let (peak_rss_mib, cpu_s) = (pw.peak_rss_mib(), pw.cpu_seconds());
    let log = pw.stop();
    for warning in log.lines().filter(|l| l.contains(" WARN ")) {
        println!("       pipewatch warned: {warning}");
    }
    let assigned_ms = log
        .lines()
        .find(|l| l.contains("partitions assigned"))
        .and_then(|l| parse_rfc3339(l.split_whitespace().next()?.as_bytes()))
        .unwrap_or_else(|| panic!("no \"partitions assigned\" line in pipewatch's log:\n{log}"));
    Drained {
        records: metrics.sum("pipewatch_records_total") as u64,
        elapsed: Duration::from_millis((last_ms - assigned_ms).max(1) as u64),
        peak_rss_mib,
        cpu_s,
        healthy_after,
        judged_after: judged_at.map(|at| Duration::from_millis((at - assigned_ms).max(0) as u64)),
        outcomes: joined.then(|| {
            ["matched", "missing", "unjudged"].map(|o| {
                metrics
                    .samples("pipewatch_join_records_total")
                    .filter(|(l, _)| l.contains("segment=\"\"") && l.contains(&format!("outcome=\"{o}\"")))
                    .map(|(_, v)| v as u64)
                    .sum()
            })
        }),
    }
}

// ---------------------------------------------------------------------------- scale

fn scale(o: &Options, bootstrap: &str, broker_pid: Option<u32>, runtime: &tokio::runtime::Runtime, dir: &Path) {
    let per_topic = (o.scale / o.scale_topics).max(1);
    assert!(!o.discover_topics || o.group_partitions == 0, "--discover-topics runs without a group");
    let run = unique_topic("bench-scale");
    let topics: Vec<String> = (0..o.scale_topics).map(|i| format!("{run}-{i}")).collect();
    let started = Instant::now();
    for t in &topics {
        runtime.block_on(create_topic(bootstrap, t, per_topic)).expect("create a scale topic");
    }
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let records = SCALE_RECORDS as u64 * (per_topic * o.scale_topics) as u64;
    // SCALE_RECORDS on every partition, round robin
    produce(bootstrap, &refs, records, |i| Some((i / refs.len() as u64 % per_topic as u64) as i32));
    let named = match topics.as_slice() {
        [first, _, _, .., last] => format!("{first}, …, {last}"),
        all => all.join(", "),
    };
    println!(
        "\nscale: {} topics × {per_topic} partitions ({named}), {records} records (set up in {:.0} s)",
        topics.len(),
        started.elapsed().as_secs_f64()
    );
    let streams: String = match o.discover_topics {
        // every scale topic a stream of its own, by Kafka timestamp
        true => format!(
            "[discovery]\ntopics = {{ include = [\"^{run}-\"] }}\nmax_topics = {}\n",
            topics.len()
        ),
        false => topics
            .iter()
            .enumerate()
            .map(|(i, t)| {
                format!("[[stream]]\nname = \"s{i}\"\ntopic = \"{t}\"\nevent_time = {{ field = \"/created_at\", format = \"rfc3339\" }}\n")
            })
            .collect(),
    };
    let per_minute = 60.0 / o.idle.as_secs_f64();
    if let Some(pid) = broker_pid {
        let b0 = cpu_seconds(pid);
        std::thread::sleep(o.idle);
        if let (Some(b0), Some(b1)) = (b0, cpu_seconds(pid)) {
            println!(
                "broker alone (the topics, no consumer) over {} s: {:.2} CPU s/min",
                o.idle.as_secs(),
                (b1 - b0) * per_minute
            );
        }
    }
    let partitions: Vec<(&str, i32)> =
        refs.iter().flat_map(|t| (0..per_topic).map(move |p| (*t, p))).take(o.group_partitions as usize).collect();
    let prefix = unique_topic("bench-job");
    let consumer = (o.group_partitions > 0).then(|| {
        let started = Instant::now();
        if o.groups > 0 {
            for k in 0..o.groups {
                commit_group(bootstrap, &format!("{prefix}-{k}"), &partitions, SCALE_RECORDS - o.group_behind);
            }
            println!(
                "{} groups {prefix}-* committed on {} partitions each (in {:.0} s)",
                o.groups,
                partitions.len(),
                started.elapsed().as_secs_f64()
            );
            return format!(
                "[discovery]\nevery = \"15s\"\nmax_groups = {}\ngroups = {{ include = [\"^{prefix}-\"] }}\n",
                o.max_groups
            );
        }
        let group = unique_topic("bench-analytics");
        commit_group(bootstrap, &group, &partitions, SCALE_RECORDS - o.group_behind);
        let streams: Vec<String> = (0..o.scale_topics)
            .filter(|i| partitions.iter().any(|(t, _)| *t == topics[*i as usize]))
            .map(|i| format!("\"s{i}\""))
            .collect();
        println!("group {group} committed on {} partitions", partitions.len());
        format!("[[consumer]]\nname = \"analytics\"\ngroup = \"{group}\"\nstreams = [{}]\n", streams.join(", "))
    });
    let watched = if o.groups > 0 {
        format!("{} groups discovered (max_groups = {})", o.groups, o.max_groups)
    } else {
        "the group watched as a [[consumer]]".to_string()
    };
    for granularity in &o.granularities {
        let config = format!("[metrics]\ngranularity = \"{granularity}\"\n{streams}");
        println!("\nmetrics.granularity = {granularity:?}{}", if consumer.is_some() { ", no consumer" } else { "" });
        scale_run(o, bootstrap, records, broker_pid, &config, dir).stop();
        if let Some(consumer) = &consumer {
            println!("\nmetrics.granularity = {granularity:?}, {watched}");
            let pw = scale_run(o, bootstrap, records, broker_pid, &format!("{config}{consumer}"), dir);
            if o.groups > 0 && o.max_groups <= o.groups {
                let m = pw.metrics();
                println!(
                    "watched {}, overflow {}",
                    m.sum("pipewatch_discovery_groups_watched"),
                    m.sum("pipewatch_discovery_groups_overflow")
                );
            } else if o.groups > 0 {
                // a new job's first commit, and how long until pipewatch serves its series
                let group = format!("{prefix}-new-{granularity}");
                let committed = Instant::now();
                commit_group(bootstrap, &group, &partitions, SCALE_RECORDS - o.group_behind);
                let needle = format!("consumer=\"{group}\"");
                let deadline = committed + Duration::from_secs(300);
                while !http_get(pw.port, "/metrics").contains(&needle) {
                    assert!(Instant::now() < deadline, "no series of {group} 300 s after its commit");
                    std::thread::sleep(Duration::from_millis(200));
                }
                let m = pw.metrics();
                println!(
                    "a new group's first commit to its series: {:.1} s (every = 15s); watched {}, overflow {}",
                    committed.elapsed().as_secs_f64(),
                    m.sum("pipewatch_discovery_groups_watched"),
                    m.sum("pipewatch_discovery_groups_overflow"),
                );
            }
            pw.stop();
        }
    }
}

/// Commits `offset` for `group` on each partition, without joining the group (the
/// offsets a consumer that read that far would have committed).
fn commit_group(bootstrap: &str, group: &str, partitions: &[(&str, i32)], offset: i64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("the committing client");
    let mut tpl = TopicPartitionList::new();
    for (topic, p) in partitions {
        tpl.add_partition_offset(topic, *p, Offset::Offset(offset)).expect("offset");
    }
    consumer.commit(&tpl, CommitMode::Sync).expect("commit the group's offsets");
}

/// One pipewatch on the scale topics: until every partition is read, then idle; returned
/// running.
fn scale_run(
    o: &Options,
    bootstrap: &str,
    records: u64,
    broker_pid: Option<u32>,
    config: &str,
    dir: &Path,
) -> Pipewatch {
    let pw = Pipewatch::start(bootstrap, "start = \"earliest\"", &o.properties, config, dir);
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let m = pw.metrics();
        if m.sum("pipewatch_records_total") as u64 >= records {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pipewatch read {} of {records} records in 900 s",
            m.sum("pipewatch_records_total")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    println!("every partition read after {:.1} s", pw.started.elapsed().as_secs_f64());
    // librdkafka's fetcher stays busy for a while after the first records of thousands of
    // partitions (see the README): let it settle, then measure an idle window
    std::thread::sleep(o.settle);
    let (pw0, broker0, threads0) = (pw.cpu_seconds(), broker_pid.and_then(cpu_seconds), thread_cpu(pw.child.id()));
    std::thread::sleep(o.idle);
    let (pw1, broker1, threads1) = (pw.cpu_seconds(), broker_pid.and_then(cpu_seconds), thread_cpu(pw.child.id()));
    let per_minute = 60.0 / o.idle.as_secs_f64();
    let rss = pw.rss_mib();
    let mut times = Vec::new();
    let mut body = String::new();
    for _ in 0..10 {
        let t = Instant::now();
        body = http_get(pw.port, "/metrics");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let series = body.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).count();
    println!(
        "idle over {} s: pipewatch {:.2} CPU s/min, broker {} CPU s/min; RSS {rss:.0} MiB (peak {:.0} MiB)",
        o.idle.as_secs(),
        (pw1 - pw0) * per_minute,
        match (broker0, broker1) {
            (Some(a), Some(b)) => format!("{:.2}", (b - a) * per_minute),
            _ => "n/a (not started by the benchmark)".into(),
        },
        pw.peak_rss_mib(),
    );
    let busy: Vec<String> = threads1
        .iter()
        .filter_map(|(tid, (name, t1))| {
            let t0 = threads0.get(tid).map_or(0.0, |(_, t)| *t);
            let per_minute = (t1 - t0) * per_minute;
            (per_minute >= 0.05).then(|| format!("{name} {per_minute:.2}"))
        })
        .collect();
    println!("  by thread (CPU s/min): {}", if busy.is_empty() { "all below 0.05".into() } else { busy.join(", ") });
    println!(
        "/metrics: best {:.1} ms, median {:.1} ms, {series} series, {:.1} MB",
        times[0],
        times[times.len() / 2],
        body.len() as f64 / 1e6
    );
    pw
}

// ---------------------------------------------------------------------------- history

fn history(o: &Options, bootstrap: &str, broker_pid: Option<u32>, runtime: &tokio::runtime::Runtime, dir: &Path) {
    const HOUR_MS: i64 = 3_600_000;
    let topic = unique_topic("bench-history");
    let partitions = o.history_partitions;
    runtime
        .block_on(create_topic_with(bootstrap, &topic, partitions, &[("retention.ms", "-1")]))
        .expect("create the history topic");
    let started = Instant::now();
    let now_hour = pipewatch_kafka::now_ms() / HOUR_MS;
    let hours = o.history_days * 24;
    let producer = producer(bootstrap);
    for hour in now_hour - hours..now_hour {
        let at = hour * HOUR_MS + HOUR_MS / 2;
        let payload = format!(r#"{{"created_at":"{}"}}"#, format_rfc3339(at));
        for p in 0..partitions {
            send(&producer, BaseRecord::to(&topic).partition(p).payload(payload.as_bytes()).timestamp(at));
        }
    }
    producer.flush(Duration::from_secs(300)).expect("flush the history");
    println!(
        "\nhistory: {topic}, {partitions} partitions × {hours} hours, one record each ({} records, written in {:.0} s)",
        partitions as i64 * hours,
        started.elapsed().as_secs_f64()
    );
    // the reference: one lookup of every partition at one time, by a bare client
    let client: BaseConsumer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("client");
    let mut lookups = Vec::new();
    for i in 0..5 {
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(&topic, p)
                .set_offset(rdkafka::Offset::Offset((now_hour - 24 * (i + 1)) * HOUR_MS))
                .expect("offset");
        }
        let t = Instant::now();
        client.offsets_for_times(tpl, Duration::from_secs(30)).expect("offsets for times");
        lookups.push(t.elapsed().as_secs_f64());
    }
    lookups.sort_by(f64::total_cmp);
    let lookup = lookups[lookups.len() / 2];
    println!("reference: one offsets-by-time lookup of {partitions} partitions (bare librdkafka client), median of 5: {:.1} ms", lookup * 1000.0);
    let streams = format!(
        "[[stream]]\nname = \"history\"\ntopic = \"{topic}\"\nevent_time = {{ field = \"/created_at\", format = \"rfc3339\" }}\nbaseline = {{ history = \"{}d\" }}\n",
        o.history_days
    );
    let broker0 = broker_pid.and_then(cpu_seconds);
    let pw = Pipewatch::start(bootstrap, "start = \"latest\"", &o.properties, &streams, dir);
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let status: serde_json::Value = serde_json::from_str(&http_get(pw.port, "/api/v1/status")).expect("status");
        if status["streams"][0]["baseline"]["state"] == "ready" {
            break;
        }
        assert!(Instant::now() < deadline, "no baseline after 900 s:\n{}", pw.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    let learnt = pw.started.elapsed().as_secs_f64();
    let broker1 = broker_pid.and_then(cpu_seconds);
    let m = pw.metrics();
    let requests = m.value("pipewatch_baseline_offset_requests_total", &[]).unwrap_or(0.0);
    let line = pw.log_text().lines().find(|l| l.contains("history learnt")).unwrap_or_default().to_string();
    // the learner's own time: `seconds="0.05"` in its log line
    let learning: f64 = line
        .split("seconds=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    println!(
        "pipewatch: learning took {learning:.2} s for {requests:.0} offsets-by-time lookups ({:.2}× as many reference \
         lookups); baseline ready {learnt:.1} s after start (group join included); pipewatch CPU {:.2} s, broker CPU \
         meanwhile {}, RSS {:.0} MiB",
        learning / (requests * lookup),
        pw.cpu_seconds(),
        match (broker0, broker1) {
            (Some(a), Some(b)) => format!("{:.2} s", b - a),
            _ => "n/a".into(),
        },
        pw.rss_mib()
    );
    println!("  {}", line.trim());
    pw.stop();
}

// ---------------------------------------------------------------------------- parts

/// A JSON order of ~340 bytes with its event time last.
fn order(i: u64, created_at: &str) -> String {
    order_of(i, i, created_at)
}

/// Order `i` of customer `customer` (modulo a million).
fn order_of(i: u64, customer: u64, created_at: &str) -> String {
    format!(
        r#"{{"order_id":"ord-{i:012}","customer_id":"cus-{:09}","currency":"EUR","total":129.95,"items":[{{"sku":"SKU-10442","qty":2,"price":39.99}},{{"sku":"SKU-88120","qty":1,"price":49.97}}],"shipping":{{"method":"express","country":"DE"}},"channel":"web","session_id":"sess-{i:016x}","created_at":"{created_at}"}}"#,
        customer % 1_000_003
    )
}

fn producer(bootstrap: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "50")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create()
        .expect("bench producer")
}

/// Sends one record, waiting while the producer's queue is full.
fn send(producer: &BaseProducer, mut record: BaseRecord<'_, [u8], [u8]>) {
    loop {
        match producer.send(record) {
            Ok(()) => break,
            Err((e, r)) => {
                assert!(
                    matches!(e.rdkafka_error_code(), Some(rdkafka::error::RDKafkaErrorCode::QueueFull)),
                    "produce: {e}"
                );
                producer.poll(Duration::from_millis(20));
                record = r;
            }
        }
    }
    producer.poll(Duration::ZERO);
}

/// Produces `n` orders round robin over `topics` (to `partition(i)` when it says, else
/// the partitioner's choice), event time now, and waits for every acknowledgement.
fn produce(bootstrap: &str, topics: &[&str], n: u64, partition: impl Fn(u64) -> Option<i32>) {
    produce_with(bootstrap, topics, n, partition, |i, at| order(i, &format_rfc3339(at)).into_bytes())
}

/// Like [`produce`], each record's payload made by `payload(i, event time)`.
fn produce_with(
    bootstrap: &str,
    topics: &[&str],
    n: u64,
    partition: impl Fn(u64) -> Option<i32>,
    payload: impl Fn(u64, i64) -> Vec<u8>,
) {
    let producer = producer(bootstrap);
    let mut ts = pipewatch_kafka::now_ms();
    for i in 0..n {
        if i % 1000 == 0 {
            ts = pipewatch_kafka::now_ms();
        }
        let payload = payload(i, ts);
        let topic = topics[(i % topics.len() as u64) as usize];
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(&payload[..]);
        if let Some(p) = partition(i) {
            record = record.partition(p);
        }
        send(&producer, record);
    }
    producer.flush(Duration::from_secs(300)).expect("flush the bench producer");
}

/// The pipewatch binary with a config of the benchmark's, its log in a file.
struct Pipewatch {
    child: Child,
    port: u16,
    log: PathBuf,
    started: Instant,
}

impl Pipewatch {
    fn start(bootstrap: &str, start: &str, properties: &[(String, String)], streams: &str, dir: &Path) -> Self {
        let port = free_port();
        let group = unique_topic("bench-pipewatch");
        let properties: String = properties.iter().map(|(k, v)| format!("{k:?} = {v:?}\n")).collect();
        let config = format!(
            "[kafka]\nbootstrap_servers = \"{bootstrap}\"\ngroup_id = \"{group}\"\n{start}\n[kafka.properties]\n{properties}[http]\nlisten = \"127.0.0.1:{port}\"\n{streams}"
        );
        let path = dir.join(format!("{group}.toml"));
        std::fs::write(&path, config).expect("write the bench config");
        let log = dir.join(format!("{group}.log"));
        let child = Command::new(pipewatch_bin())
            .args(["run", "--config"])
            .arg(&path)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("bench log"))
            .spawn()
            .expect("start pipewatch");
        let pw = Pipewatch { child, port, log, started: Instant::now() };
        let deadline = Instant::now() + Duration::from_secs(60);
        while try_http_get(port, "/healthz").is_err() {
            assert!(Instant::now() < deadline, "pipewatch did not listen within 60 s:\n{}", pw.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
        pw
    }

    fn metrics(&self) -> Metrics {
        Metrics(http_get(self.port, "/metrics"))
    }

    fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.child.id()).unwrap_or(0.0)
    }

    fn peak_rss_mib(&self) -> f64 {
        peak_rss_mib(self.child.id()).unwrap_or(0.0)
    }

    fn rss_mib(&self) -> f64 {
        status_kib(self.child.id(), "VmRSS:").map_or(0.0, |k| k / 1024.0)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops it (SIGTERM) and returns its log.
    fn stop(mut self) -> String {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        self.log_text()
    }
}

struct Metrics(String);

impl Metrics {
    fn samples<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
        self.0.lines().filter_map(move |l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = rest.rsplit_once(' ')?;
            (labels.is_empty() || labels.starts_with('{')).then(|| (labels, value.parse().unwrap_or(f64::NAN)))
        })
    }

    fn sum(&self, name: &str) -> f64 {
        self.samples(name).map(|(_, v)| v).sum()
    }

    /// The sum over the series of `name` whose labels include `label` (`key="value"`).
    fn sum_where(&self, name: &str, label: &str) -> f64 {
        self.samples(name).filter(|(labels, _)| labels.contains(label)).map(|(_, v)| v).sum()
    }

    fn max(&self, name: &str) -> f64 {
        self.samples(name).map(|(_, v)| v).fold(f64::NAN, f64::max)
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples(name)
            .find(|(l, _)| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
            .map(|(_, v)| v)
    }
}

fn try_http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    Ok(response.split_once("\r\n\r\n").map_or(String::new(), |(_, body)| body.to_string()))
}

fn http_get(port: u16, path: &str) -> String {
    try_http_get(port, path).unwrap_or_else(|e| panic!("GET {path} on pipewatch: {e}"))
}

// ---------------------------------------------------------------------------- /proc

fn status_kib(pid: u32, key: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(key)?.trim().strip_suffix("kB")?.trim().parse().ok())
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    status_kib(pid, "VmHWM:").map(|k| k / 1024.0)
}

/// User + system CPU seconds of a process (clock ticks of 1/100 s, Linux's USER_HZ).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the fields after the command name, which is in parentheses and may hold spaces
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// CPU seconds of each thread of a process, by thread id: `(name, seconds)`.
fn thread_cpu(pid: u32) -> std::collections::HashMap<u32, (String, f64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Default::default() };
    tasks
        .flatten()
        .filter_map(|t| {
            let tid: u32 = t.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(t.path().join("comm")).ok()?.trim().to_string();
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            let f: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some((tid, (name, ticks / 100.0)))
        })
        .collect()
}

/// The broker's JVM: the child of the `kafka.sh` process.
fn java_child(script_pid: u32) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let ppid: u32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?;
        (ppid == script_pid && cmdline.contains("kafka.Kafka")).then_some(pid)
    })
}
