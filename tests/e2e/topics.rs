//! Streams over several topics on a real broker: a `topic_pattern` reads every topic of
//! the cluster it matches — a topic created while pipewatch runs from the next listing on,
//! its partitions with their own `topic` label, the stream's watermark over all of them,
//! a watched job's lag on each — and a stream of `topics` whose one topic is missing names
//! it without being `topic_missing`.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::*;

/// A config that lists the cluster's topics every 2 s, with `body`.
fn listing_config(bootstrap: &str, body: &str) -> String {
    let own = unique_topic("pipewatch-test-group");
    format!(
        "[kafka]\nbootstrap_servers = \"{bootstrap}\"\ngroup_id = \"{own}\"\nstart = \"earliest\"\n\
         metadata_refresh = \"2s\"\n[monitor]\ntick = \"1s\"\nrate_window = \"10s\"\n{body}"
    )
}

/// The `(topic, partition)`s of `stream`'s partition series.
fn partitions(m: &Metrics, stream: &str) -> BTreeSet<(String, String)> {
    let prefix = format!("pipewatch_records_total{{stream=\"{stream}\",topic=\"");
    m.0.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (topic, rest) = rest.split_once('"')?;
            let partition = rest.strip_prefix(",partition=\"")?.split('"').next()?;
            Some((topic.to_string(), partition.to_string()))
        })
        .collect()
}

/// The scrape once the orders stream counted `records` on `topic` and its partition
/// series are as `partitions_read` wants them.
async fn orders_read(
    pw: &Pipewatch,
    what: &str,
    topic: &str,
    records: f64,
    partitions_read: impl Fn(&BTreeSet<(String, String)>) -> bool,
) -> Metrics {
    eventually(what, Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        let read = m.value("pipewatch_records_total", &[("stream", "orders"), ("topic", topic)]) == Some(records);
        if read && partitions_read(&partitions(&m, "orders")) {
            Ok(m)
        } else {
            Err(m.0)
        }
    })
    .await
}

fn orders(producer: &TestProducer, topic: &str, partition: i32, at: i64, n: i64) {
    for k in 0..n {
        let created_at = pipewatch_core::time::format_rfc3339(at + k * 1000);
        producer.send(topic, partition, Some(format!(r#"{{"created_at":"{created_at}"}}"#).as_bytes()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_stream_reads_every_matching_topic_and_one_created_while_running() {
    let bootstrap = broker().await;
    let prefix = unique_topic("regional");
    let (eu, us, apac) = (format!("{prefix}-eu"), format!("{prefix}-us"), format!("{prefix}-apac"));
    let (clicks, never) = (unique_topic("clicks"), unique_topic("clicks-never"));
    create_topic(bootstrap, &eu, 2).await.unwrap();
    create_topic(bootstrap, &us, 1).await.unwrap();
    create_topic(bootstrap, &clicks, 1).await.unwrap();
    let now = now_ms();
    let producer = TestProducer::new(bootstrap);
    orders(&producer, &eu, 0, now - 60_000, 5);
    orders(&producer, &eu, 1, now - 60_000, 5);
    orders(&producer, &us, 0, now - 300_000, 5);
    producer.send(&clicks, 0, Some(b"{}"));
    producer.flush();
    let group = unique_topic("regional-job");
    let offsets = [(eu.as_str(), 0, 5), (eu.as_str(), 1, 2), (us.as_str(), 0, 5)];
    let (g, o) = (group.clone(), offsets.map(|(t, p, n)| (t.to_string(), p, n)));
    tokio::task::spawn_blocking(move || {
        let o: Vec<(&str, i32, i64)> = o.iter().map(|(t, p, n)| (t.as_str(), *p, *n)).collect();
        commit_offsets(bootstrap, &g, &o)
    })
    .await
    .unwrap();

    let config = listing_config(
        bootstrap,
        &format!(
            r#"
[[stream]]
name = "orders"
topic_pattern = "^{prefix}-[a-z]+$"
event_time = {{ field = "/created_at", format = "rfc3339" }}
[[stream]]
name = "clicks"
topics = ["{clicks}", "{never}"]
event_time = {{ source = "kafka_timestamp" }}
[[consumer]]
name = "analytics"
group = "{group}"
streams = ["orders"]
max_lag = "1h"
"#
        ),
    );
    let pw = Pipewatch::start(&config).await;
    let want = |topics: &[(&str, &str)]| -> BTreeSet<(String, String)> {
        topics.iter().map(|(t, p)| (t.to_string(), p.to_string())).collect()
    };
    let all = want(&[(&eu, "0"), (&eu, "1"), (&us, "0")]);
    let m = orders_read(&pw, "both topics' partitions read", &us, 5.0, |p| *p == all).await;
    // the low watermark over every partition of both topics: us's last record
    let watermark = m.value("pipewatch_stream_watermark_timestamp_seconds", &[("stream", "orders")]).unwrap();
    assert_eq!(watermark, (now - 300_000 + 4_000) as f64 / 1000.0);
    let lag = |m: &Metrics, topic: &str, p: &str| {
        m.value("pipewatch_consumer_lag_records", &[("consumer", "analytics"), ("topic", topic), ("partition", p)])
    };
    let m = eventually("the job's lag on both topics", Duration::from_secs(20), || async {
        let m = pw.metrics().await;
        if lag(&m, &eu, "1").is_some() && lag(&m, &us, "0").is_some() {
            Ok(m)
        } else {
            Err(m.0)
        }
    })
    .await;
    assert_eq!((lag(&m, &eu, "0"), lag(&m, &eu, "1"), lag(&m, &us, "0")), (Some(0.0), Some(3.0), Some(0.0)));
    let status = pw.status().await;
    let o = stream_status(&status, "orders");
    assert_eq!(o["topic"], format!("^{prefix}-[a-z]+$"));
    let topics: Vec<&str> = o["topics"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(topics, [eu.as_str(), us.as_str()]);
    // one of the listed topics does not exist: named, the stream reads the other
    let c = stream_status(&status, "clicks");
    assert_ne!(c["cause"], "topic_missing", "{c}");
    assert_eq!(c["missing_topics"], serde_json::json!([never]));

    // a region added while running: read from the next listing on, holding the watermark back
    create_topic(bootstrap, &apac, 1).await.unwrap();
    orders(&producer, &apac, 0, now - 600_000, 3);
    producer.flush();
    let new = (apac.clone(), "0".to_string());
    let m = orders_read(&pw, "the new topic read", &apac, 3.0, |p| p.contains(&new)).await;
    let watermark = m.value("pipewatch_stream_watermark_timestamp_seconds", &[("stream", "orders")]).unwrap();
    assert_eq!(watermark, (now - 600_000 + 2_000) as f64 / 1000.0);
    assert_eq!(partitions(&m, "orders").len(), 4, "{:?}", partitions(&m, "orders"));
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_topics_are_streams_of_their_own_by_produce_time_up_to_max_topics() {
    let bootstrap = broker().await;
    let prefix = unique_topic("shop");
    let (orders_topic, clicks, refunds) =
        (format!("{prefix}-orders"), format!("{prefix}-clicks"), format!("{prefix}-refunds"));
    for t in [&orders_topic, &clicks] {
        create_topic(bootstrap, t, 1).await.unwrap();
    }
    let producer = TestProducer::new(bootstrap);
    let produced = now_ms() - 90_000;
    orders(&producer, &orders_topic, 0, produced, 2);
    // clicks carry no event time of their own: the Kafka timestamp is theirs
    for k in 0..3 {
        producer.send_at(&clicks, 0, Some(b"not json"), Some(produced + k * 1000));
    }
    producer.flush();
    let group = format!("{prefix}-clicks-job");
    let (g, c) = (group.clone(), clicks.clone());
    tokio::task::spawn_blocking(move || commit_offsets(bootstrap, &g, &[(c.as_str(), 0, 1)])).await.unwrap();
    let config = listing_config(
        bootstrap,
        &format!(
            r#"
[[stream]]
name = "orders"
topic = "{orders_topic}"
event_time = {{ field = "/created_at", format = "rfc3339" }}
[discovery]
every = "2s"
poll = "1s"
groups = {{ include = ["^{prefix}-"] }}
topics = {{ include = ["^{prefix}-"] }}
max_topics = 1
max_silence = "1h"
"#
        ),
    );
    let pw = Pipewatch::start(&config).await;
    let status = eventually("clicks discovered, read and its job's lag known", Duration::from_secs(60), || async {
        let s = pw.status().await;
        let job = s["consumers"].as_array().into_iter().flatten().find(|c| c["group"] == group.as_str());
        let lag = job.and_then(|j| j["streams"][0]["partitions"][0]["lag_records"].as_i64());
        if stream_status(&s, &clicks)["watermark_ms"].is_i64() && lag == Some(2) {
            Ok(s)
        } else {
            Err(format!("{}\n{}", s["streams"], s["consumers"]))
        }
    })
    .await;
    let c = stream_status(&status, &clicks);
    assert_eq!(
        (&c["discovered"], &c["topic"], &c["cause"]),
        (&true.into(), &clicks.clone().into(), &"ok".into()),
        "{c}"
    );
    assert_eq!(c["watermark_ms"], produced + 2000, "the last record's Kafka timestamp");
    assert_eq!(c["invalid"]["not_json"], 0, "no payload is read for its time: {c}");
    assert_eq!(stream_status(&status, "orders")["discovered"], false);
    assert_eq!(status["topic_discovery"]["watched"], 1);
    let job = status["consumers"].as_array().unwrap().iter().find(|j| j["group"] == group.as_str()).unwrap();
    assert_eq!((&job["discovered"], &job["streams"][0]["stream"]), (&true.into(), &clicks.clone().into()));
    // lag in seconds by produce time: now − the Kafka timestamp of the record at offset 1
    let lag = job["streams"][0]["partitions"][0]["lag_seconds"].as_f64().unwrap();
    assert_eq!(lag, (status["at_ms"].as_i64().unwrap() - (produced + 1000)) as f64 / 1000.0);

    // a second topic while running: beyond max_topics = 1, counted and named, not read
    create_topic(bootstrap, &refunds, 1).await.unwrap();
    let status = eventually("the second topic in the overflow", Duration::from_secs(30), || async {
        let s = pw.status().await;
        match s["topic_discovery"]["overflow"].as_u64() {
            Some(1) => Ok(s),
            _ => Err(s["topic_discovery"].to_string()),
        }
    })
    .await;
    assert_eq!(status["topic_discovery"]["overflow_topics"], serde_json::json!([refunds]));
    assert!(stream_status(&status, &refunds).is_null());
    let m = pw.metrics().await;
    assert_eq!(m.value("pipewatch_discovery_topics_watched", &[]), Some(1.0));
    assert_eq!(m.value("pipewatch_discovery_topics_overflow", &[]), Some(1.0));
    assert_eq!(
        m.value("pipewatch_records_total", &[("stream", clicks.as_str()), ("topic", clicks.as_str())]),
        Some(3.0)
    );
    pw.stop().await;
}
