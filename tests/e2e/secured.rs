//! A secured cluster: the same Apache Kafka with a SASL_SSL listener (SCRAM-SHA-512 and
//! PLAIN, a CA and broker certificate made with openssl), the StandardAuthorizer on and
//! the ACLs the test creates with Kafka's own `kafka-acls`. pipewatch connects as a user
//! with only the rights the README lists, and everything works: watermarks, log ends,
//! sync lag, a watched group's lag and the sync lag it sees.

use std::time::Duration;

use pipewatch_kafka::testing::Secured;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::consumers::read_and_commit;
use crate::support::*;

async fn secured() -> &'static KafkaBroker {
    tokio::task::spawn_blocking(KafkaBroker::shared_secured).await.expect("secured broker start panicked")
}

/// The rights the README lists, as `kafka-acls` arguments: Describe and Read on the
/// watched topics, Read on pipewatch's own group, Describe on each watched group.
fn documented_acls(topics: &[&str], own_group: &str, watched_groups: &[&str]) -> Vec<Vec<String>> {
    let allow = |rest: Vec<&str>| {
        let mut args = vec!["--add", "--allow-principal", "User:pipewatch"];
        args.extend(rest);
        args.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    let mut topic_args = vec!["--operation", "Describe", "--operation", "Read"];
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
