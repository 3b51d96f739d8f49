//! A secured cluster: the same Apache Kafka with a SASL_SSL listener (SCRAM-SHA-512 and
//! PLAIN, a CA and broker certificate made with openssl), the StandardAuthorizer on and
//! the ACLs the test creates with Kafka's own `kafka-acls`. pipewatch connects as a user
//! with only the rights the README lists, and everything works: watermarks, log ends,
//! sync lag, a watched group's lag and the sync lag it sees; `[discovery]` with Describe
//! on a group prefix watches the groups under it and no others.

use std::time::Duration;

use pipewatch_kafka::testing::Secured;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::support::*;

async fn secured() -> &'static KafkaBroker {
    tokio::task::spawn_blocking(KafkaBroker::shared_secured).await.expect("secured broker start panicked")
}

/// The rights the README lists, as `kafka-acls` arguments: Read on the watched topics
/// (which implies Describe), Read on pipewatch's own group, Describe on each watched group.
fn documented_acls(topics: &[&str], own_group: &str, watched_groups: &[&str]) -> Vec<Vec<String>> {
    let allow = |rest: Vec<&str>| {
        let mut args = vec!["--add", "--allow-principal", "User:pipewatch"];
        args.extend(rest);
        args.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    let mut topic_args = vec!["--operation", "Read"];
    for t in topics {
        topic_args.extend(["--topic", t]);
    }
    out.push(allow(topic_args));
    out.push(allow(vec!["--operation", "Read", "--group", own_group]));
    for g in watched_groups {
        out.push(allow(vec!["--operation", "Describe", "--group", g]));
    }
    out
}

fn grant(broker: &KafkaBroker, acls: &[Vec<String>]) {
    for args in acls {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        broker.acls(&args).unwrap_or_else(|e| panic!("{e}"));
    }
}

fn secured_config(s: &Secured, mechanism: &str, group: &str, body: &str) -> String {
    let properties: String =
        s.properties(mechanism, Secured::PASSWORD).iter().map(|(k, v)| format!("{k:?} = {v:?}\n")).collect();
    format!(
        r#"
[kafka]
bootstrap_servers = "{}"
group_id = "{group}"
start = "earliest"
[kafka.properties]
"topic.metadata.refresh.interval.ms" = "1000"
{properties}
[monitor]
tick = "1s"
rate_window = "10s"
{body}
"#,
        s.bootstrap
    )
}

/// Whether user `pipewatch` may describe `topic`: the authorizer's word, asked directly.
fn may_describe(s: &Secured, topic: &str) -> Result<bool, String> {
    let mut cc = rdkafka::ClientConfig::new();
    cc.set("bootstrap.servers", &s.bootstrap).set("log_level", "0");
    for (k, v) in s.properties("SCRAM-SHA-512", Secured::PASSWORD) {
        cc.set(k, v);
    }
    let client: BaseConsumer = cc.create().map_err(|e| e.to_string())?;
    let md = client.fetch_metadata(Some(topic), Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let t = md.topics().iter().find(|t| t.name() == topic).ok_or("topic not in the answer")?;
    Ok(t.error().is_none())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_only_the_documented_rights_everything_works_over_sasl_ssl() {
    let broker = secured().await;
    let s = broker.secured.clone().expect("a secured listener");
    let (orders, behaviour) = (unique_topic("orders"), unique_topic("behaviour"));
    for t in [&orders, &behaviour] {
        create_topic(&broker.bootstrap, t, 1).await.unwrap();
    }
    // Both topics carry an event of 8 h ago and one of now; the analytics job has read
    // every order but only the older behaviour event.
    let now = now_ms();
    let producer = TestProducer::new(&broker.bootstrap);
    for at in [now - 8 * 3600 * 1000, now] {
        let created_at = pipewatch_core::time::format_rfc3339(at);
        producer.send(&orders, 0, Some(format!(r#"{{"created_at":"{created_at}"}}"#).as_bytes()));
        producer.send(&behaviour, 0, Some(format!(r#"{{"ts":{at}}}"#).as_bytes()));
    }
    producer.flush();
    let job = unique_topic("analytics-job");
    let (b, g, o, bh) = (broker.bootstrap.clone(), job.clone(), orders.clone(), behaviour.clone());
    tokio::task::spawn_blocking(move || {
        read_and_commit(&b, &g, &o, 2);
        read_and_commit(&b, &g, &bh, 1);
    })
    .await
    .unwrap();

    // The authorizer is on: with no ACL the user may not even describe the topic.
    let (s2, o2) = (s.clone(), orders.clone());
    let before = tokio::task::spawn_blocking(move || may_describe(&s2, &o2)).await.unwrap();
    assert_eq!(before, Ok(false), "user pipewatch described {orders} before any ACL");

    let consumer =
        format!("[[consumer]]\nname = \"analytics\"\ngroup = \"{job}\"\nstreams = [\"orders\", \"behaviour\"]\n");
    let body = orders_and_behaviour(&orders, &behaviour, "", &consumer);
    for mechanism in ["SCRAM-SHA-512", "PLAIN"] {
        let group = unique_topic("pipewatch-secured");
        grant(broker, &documented_acls(&[&orders, &behaviour], &group, &[&job]));
        let pw = Pipewatch::start(&secured_config(&s, mechanism, &group, &body)).await;
        let m = eventually(&format!("{mechanism}: the consumer's sync lag"), Duration::from_secs(60), || async {
            let m = pw.metrics().await;
            let sync = [("consumer", "analytics"), ("pair", "orders_behaviour")];
            match m.value("pipewatch_consumer_sync_lag_seconds", &sync) {
                Some(v) => Ok((m, v)),
                None => Err(format!("absent; kafka_up {:?}", m.value("pipewatch_kafka_up", &[]))),
            }
        })
        .await;
        let (m, consumer_sync) = m;
        assert_eq!(consumer_sync, 28_800.0, "{mechanism}: the job's orders 8 h ahead of its behaviour");
        assert_eq!(m.value("pipewatch_sync_lag_seconds", &[("pair", "orders_behaviour")]), Some(0.0), "{mechanism}");
        assert_eq!(m.value("pipewatch_kafka_up", &[]), Some(1.0), "{mechanism}");
        for stream in ["orders", "behaviour"] {
            let p0 = [("stream", stream), ("partition", "0")];
            assert_eq!(m.value("pipewatch_partition_log_end_offset", &p0), Some(2.0), "{mechanism} {stream}");
            assert_eq!(m.value("pipewatch_records_total", &p0), Some(2.0), "{mechanism} {stream}");
            let w = m.value("pipewatch_stream_watermark_timestamp_seconds", &[("stream", stream)]);
            assert_eq!(w, Some(now as f64 / 1000.0), "{mechanism} {stream}");
        }
        let lag = [("consumer", "analytics"), ("stream", "behaviour"), ("partition", "0")];
        assert_eq!(m.value("pipewatch_consumer_lag_records", &lag), Some(1.0), "{mechanism}");
        assert!(m.value("pipewatch_consumer_lag_seconds", &lag).is_some(), "{mechanism}: {}", m.0);
        let (status, ready) = pw.get("/readyz").await;
        assert_eq!(status, 200, "{mechanism}: {ready}");
        pw.stop().await;
    }
}

/// One right taken away while pipewatch runs with all the others: what it shows, and
/// that it recovers once the ACL is back.
struct Denial {
    broker: &'static KafkaBroker,
    orders: String,
    behaviour: String,
    group: String,
    job: String,
    pw: Pipewatch,
}

impl Denial {
    /// pipewatch with every documented right, reading both streams and the job's group.
    async fn start() -> Self {
        let broker = secured().await;
        let s = broker.secured.clone().expect("a secured listener");
        let (orders, behaviour) = (unique_topic("orders"), unique_topic("behaviour"));
        for t in [&orders, &behaviour] {
            create_topic(&broker.bootstrap, t, 1).await.unwrap();
        }
        let (job, group) = (unique_topic("analytics-job"), unique_topic("pipewatch-denial"));
        produce(broker, &orders, &behaviour);
        let (b, g, o) = (broker.bootstrap.clone(), job.clone(), orders.clone());
        tokio::task::spawn_blocking(move || read_and_commit(&b, &g, &o, 1)).await.unwrap();
        grant(broker, &documented_acls(&[&orders, &behaviour], &group, &[&job]));
        let consumer = format!("[[consumer]]\nname = \"analytics\"\ngroup = \"{job}\"\nstreams = [\"orders\"]\n");
        let body = orders_and_behaviour(&orders, &behaviour, "", &consumer);
        let pw = Pipewatch::start(&secured_config(&s, "SCRAM-SHA-512", &group, &body)).await;
        let d = Denial { broker, orders, behaviour, group, job, pw };
        d.wait("every right granted", |st| {
            let causes = (
                cause(st, "streams", "orders"),
                cause(st, "streams", "behaviour"),
                cause(st, "consumers", "analytics"),
            );
            causes == ("ok".into(), "ok".into(), "ok".into())
        })
        .await;
        d
    }

    /// One record on each topic, in real time.
    fn produce(&self) {
        produce(self.broker, &self.orders, &self.behaviour);
    }

    fn acl(&self, action: &str, operation: &str, kind: &str, name: &str) {
        let mut args = vec![action, "--allow-principal", "User:pipewatch", "--operation", operation, kind, name];
        if action == "--remove" {
            args.push("--force");
        }
        self.broker.acls(&args).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Waits until the status satisfies `check`; returns it.
    async fn wait(&self, what: &str, check: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        eventually(what, Duration::from_secs(60), || async {
            let st = self.pw.status().await;
            if check(&st) {
                Ok(st)
            } else {
                Err(format!("not_ready {}, streams {}, consumers {}", st["not_ready"], st["streams"], st["consumers"]))
            }
        })
        .await
    }
}

/// One record on each topic, in real time.
fn produce(broker: &KafkaBroker, orders: &str, behaviour: &str) {
    let producer = TestProducer::new(&broker.bootstrap);
    let created_at = pipewatch_core::time::format_rfc3339(now_ms());
    producer.send(orders, 0, Some(format!(r#"{{"created_at":"{created_at}"}}"#).as_bytes()));
    producer.send(behaviour, 0, Some(format!(r#"{{"ts":{}}}"#, now_ms()).as_bytes()));
    producer.flush();
}

/// The cause of the named entry of `status[list]`.
fn cause(status: &serde_json::Value, list: &str, name: &str) -> String {
    let entries = status[list].as_array().cloned().unwrap_or_default();
    let entry = entries.into_iter().find(|e| e["name"] == name).unwrap_or_default();
    entry["cause"].as_str().unwrap_or_default().to_string()
}

/// The status entry of stream `name`.
fn stream<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["streams"].as_array().and_then(|a| a.iter().find(|s| s["name"] == name)).unwrap_or(&serde_json::Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_that_may_not_be_described_is_named_and_recovers() {
    let d = Denial::start().await;
    // Read implies Describe: without it the topic may not even be described
    d.acl("--remove", "Read", "--topic", &d.orders);
    let right = format!("Describe on topic {}", d.orders);
    let st =
        d.wait("orders access_denied (Describe)", |st| stream(st, "orders")["access_denied"] == right.as_str()).await;
    assert_eq!(cause(&st, "streams", "orders"), "access_denied", "{st}");
    assert_eq!(cause(&st, "streams", "behaviour"), "ok", "the other stream is not affected: {st}");
    let (code, ready) = d.pw.get("/readyz").await;
    assert_eq!((code, ready.trim()), (503, format!("not ready: access denied: {right} (stream orders)").as_str()));
    d.acl("--add", "Read", "--topic", &d.orders);
    d.produce();
    d.wait("orders ok again", |st| {
        cause(st, "streams", "orders") == "ok" && stream(st, "orders")["access_denied"].is_null()
    })
    .await;
    assert_eq!(d.pw.get("/readyz").await.0, 200);
    d.pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_that_may_not_be_read_is_named_and_recovers() {
    let d = Denial::start().await;
    d.acl("--add", "Describe", "--topic", &d.orders);
    d.acl("--remove", "Read", "--topic", &d.orders);
    d.produce();
    let right = format!("Read on topic {}", d.orders);
    let st = d.wait("orders access_denied (Read)", |st| stream(st, "orders")["access_denied"] == right.as_str()).await;
    assert_eq!(cause(&st, "streams", "orders"), "access_denied", "{st}");
    let (code, ready) = d.pw.get("/readyz").await;
    assert_eq!((code, ready.trim()), (503, format!("not ready: access denied: {right} (stream orders)").as_str()));
    d.acl("--add", "Read", "--topic", &d.orders);
    d.produce();
    d.wait("orders ok again", |st| cause(st, "streams", "orders") == "ok").await;
    d.pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipewatchs_own_group_that_may_not_be_read_is_named_and_recovers() {
    let d = Denial::start().await;
    d.acl("--remove", "Read", "--group", &d.group);
    d.produce();
    let right = format!("Read on group {}", d.group);
    let st = d
        .wait("both streams access_denied (group)", |st| {
            stream(st, "orders")["access_denied"] == right.as_str()
                && stream(st, "behaviour")["access_denied"] == right.as_str()
        })
        .await;
    assert_eq!(cause(&st, "streams", "behaviour"), "access_denied", "{st}");
    let (code, ready) = d.pw.get("/readyz").await;
    assert_eq!(
        (code, ready.trim()),
        (503, format!("not ready: access denied: {right} (streams orders, behaviour)").as_str())
    );
    d.acl("--add", "Read", "--group", &d.group);
    d.produce();
    d.wait("both streams ok again", |st| {
        cause(st, "streams", "orders") == "ok" && cause(st, "streams", "behaviour") == "ok"
    })
    .await;
    d.pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_group_that_may_not_be_described_is_named_and_recovers() {
    let d = Denial::start().await;
    d.acl("--remove", "Describe", "--group", &d.job);
    let error = format!("access denied: Describe on group {}", d.job);
    let st = d
        .wait("the consumer access_denied", |st| {
            let c = st["consumers"].as_array().and_then(|a| a.first()).cloned().unwrap_or_default();
            c["cause"] == "access_denied" && c["error"] == error.as_str()
        })
        .await;
    assert_eq!(cause(&st, "streams", "orders"), "ok", "the streams are not affected: {st}");
    d.acl("--add", "Describe", "--group", &d.job);
    d.wait("the consumer ok again", |st| cause(st, "consumers", "analytics") == "ok").await;
    d.pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_kafka_unreachable_with_the_authentication_error_and_never_the_password() {
    let broker = secured().await;
    let s = broker.secured.clone().expect("a secured listener");
    let orders = unique_topic("orders");
    create_topic(&broker.bootstrap, &orders, 1).await.unwrap();
    let wrong = "not-the-password-4711";
    let config = secured_config(&s, "SCRAM-SHA-512", &unique_topic("pipewatch-wrong"), &orders_stream(&orders, ""))
        .replace(Secured::PASSWORD, wrong);
    let pw = Daemon::start(&config).await;
    let status = eventually("kafka_unreachable with the authentication error", Duration::from_secs(60), || async {
        let (_, body) = http_get(pw.addr, "/api/v1/status").await;
        let st: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        let error = st["kafka_error"].as_str().unwrap_or_default();
        if st["kafka"] == "down"
            && error.contains("authentication failed")
            && cause(&st, "streams", "orders") == "kafka_unreachable"
        {
            Ok(body)
        } else {
            Err(body)
        }
    })
    .await;
    let (code, ready) = http_get(pw.addr, "/readyz").await;
    assert_eq!(code, 503);
    assert!(ready.contains("kafka unreachable: authentication failed"), "{ready}");
    let (_, page) = http_get(pw.addr, "/").await;
    let log = pw.log();
    assert!(log.contains("Authentication failed") || log.contains("authentication"), "{log}");
    for (what, text) in
        [("status", &status), ("readyz", &ready), ("log", &log), ("page", &page), ("metrics", &pw.metrics().await.0)]
    {
        assert!(!text.contains(wrong), "the password is in the {what}:\n{text}");
    }
}

/// `[discovery]` with the documented rights: Describe on the groups by prefix. The groups
/// under the prefix are listed and watched; a group the pattern matches but the principal
/// may not describe is not listed, and nothing fails for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_with_describe_on_a_group_prefix_watches_those_groups_and_no_others() {
    let broker = secured().await;
    let s = broker.secured.clone().expect("a secured listener");
    let orders = unique_topic("orders");
    create_topic(&broker.bootstrap, &orders, 1).await.unwrap();
    let now = now_ms();
    let producer = TestProducer::new(&broker.bootstrap);
    for k in 0..4 {
        let created_at = pipewatch_core::time::format_rfc3339(now - (4 - k) * 60_000);
        producer.send(&orders, 0, Some(format!(r#"{{"created_at":"{created_at}"}}"#).as_bytes()));
    }
    producer.flush();
    let (prefix, hidden) = (unique_topic("shop-jobs"), unique_topic("hidden-jobs"));
    let (reporting, other) = (format!("{prefix}-reporting"), format!("{hidden}-billing"));
    for g in [&reporting, &other] {
        let (b, g, o) = (broker.bootstrap.clone(), g.clone(), orders.clone());
        tokio::task::spawn_blocking(move || read_and_commit(&b, &g, &o, 2)).await.unwrap();
    }
    let group = unique_topic("pipewatch-secured");
    grant(broker, &documented_acls(&[&orders], &group, &[]));
    let prefixed = format!("{prefix}-");
    grant(
        broker,
        &[[
            "--add",
            "--allow-principal",
            "User:pipewatch",
            "--operation",
            "Describe",
            "--group",
            &prefixed,
            "--resource-pattern-type",
            "prefixed",
        ]
        .map(str::to_string)
        .to_vec()],
    );
    let body = orders_stream(&orders, "")
        + &format!("[discovery]\nevery = \"2s\"\ngroups = {{ include = [\"^{prefix}-\", \"^{hidden}-\"] }}\n");
    let pw = Pipewatch::start(&secured_config(&s, "SCRAM-SHA-512", &group, &body)).await;
    let m = eventually("the reporting job discovered with its lag", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        let lag = [("consumer", reporting.as_str()), ("stream", "orders")];
        match m.value("pipewatch_consumer_stream_lag_records", &lag) {
            Some(v) => Ok((m, v)),
            None => {
                Err(m.value("pipewatch_discovery_groups_watched", &[]).map_or("no discovery".into(), |w| w.to_string()))
            }
        }
    })
    .await;
    let (m, lag) = m;
    assert_eq!(lag, 2.0, "it committed 2 of 4");
    assert_eq!(m.value("pipewatch_discovery_groups_watched", &[]), Some(1.0), "only the group it may describe");
    assert_eq!(m.value("pipewatch_kafka_errors_total", &[("kind", "list_groups")]), Some(0.0));
    let status = pw.status().await;
    let groups: Vec<&str> =
        status["consumers"].as_array().unwrap().iter().filter_map(|c| c["group"].as_str()).collect();
    assert_eq!(groups, [reporting.as_str()], "{other} is not listed to this principal");
    assert!(status["discovery"]["error"].is_null(), "{}", status["discovery"]);
    assert_eq!(status["discovery"]["overflow"], 0);
    pw.stop().await;
}
