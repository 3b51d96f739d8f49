//! Downstream consumers on a real broker: a real consumer group reads and commits, then
//! stops; pipewatch reads its committed offsets (never joining the group) and shows its
//! lag in exact seconds, `consumer_stopped`, and an unknown group as `group_unknown`.

use std::time::Duration;

use crate::support::*;

/// The lag seconds of `consumer` on partition 0 of its first stream and the snapshot's
/// time, read together from `/api/v1/status`.
async fn status_lag(pw: &Pipewatch, consumer: &str) -> (f64, i64) {
    let (_, status) = pw.get("/api/v1/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let c = status["consumers"].as_array().unwrap().iter().find(|c| c["name"] == consumer).unwrap();
    let lag = c["streams"][0]["partitions"][0]["lag_seconds"].as_f64().unwrap_or_else(|| panic!("no lag: {c}"));
    (lag, status["at_ms"].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_consumer_lags_in_exact_seconds_and_an_unknown_group_is_named() {
    let bootstrap = broker().await;
    let topic = unique_topic("orders");
    create_topic(bootstrap, &topic, 1).await.unwrap();
    // 20 orders, one a second of event time, the last 41 s ago
    let base = now_ms() - 60_000;
    let producer = TestProducer::new(bootstrap);
    for k in 0..20 {
        let created_at = pipewatch_core::time::format_rfc3339(base + k * 1000);
        producer.send(&topic, 0, Some(format!(r#"{{"order_id":"o-{k}","created_at":"{created_at}"}}"#).as_bytes()));
    }
    producer.flush();
    let group = unique_topic("analytics-job");
    let b = bootstrap.to_string();
    let (t, g) = (topic.clone(), group.clone());
    tokio::task::spawn_blocking(move || read_and_commit(&b, &g, &t, 10)).await.unwrap();

    let unknown = unique_topic("no-such-job");
    let body = orders_stream(&topic, "")
        + &format!(
            r#"
[[consumer]]
name = "analytics"
group = "{group}"
streams = ["orders"]
max_lag = "1h"
max_stall = "3s"
[[consumer]]
name = "reporting"
group = "{unknown}"
streams = ["orders"]
[[alert]]
name = "AnalyticsBehind"
kind = "consumer_lag"
target = "analytics"
threshold = "30s"
for = "5s"
severity = "page"
impact = "Segmentation and ad targeting run on stale data."
"#
        );
    let toml = config(bootstrap, "earliest", &body);
    let (code, stdout, stderr) = check_connect(&toml).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("consumer analytics (group {group:?}): committed offsets for 1 of 1 partitions\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "consumer reporting (group {unknown:?}): committed offsets for 0 of 1 partitions: none yet"
        )),
        "{stdout}"
    );
    let pw = Pipewatch::start(&toml).await;
    let consumer_cause = |m: &Metrics, consumer: &str| {
        ["ok", "consumer_stopped", "consumer_lagging", "group_unknown", "upstream_fault", "kafka_unreachable"]
            .into_iter()
            .find(|c| m.value("pipewatch_consumer_cause", &[("consumer", consumer), ("cause", c)]) == Some(1.0))
            .map(str::to_string)
    };
    let m = eventually("analytics consumer_stopped", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        match consumer_cause(&m, "analytics").as_deref() {
            Some("consumer_stopped") => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let labels = [("consumer", "analytics"), ("partition", "0")];
    assert_eq!(m.value("pipewatch_consumer_committed_offset", &labels), Some(10.0));
    assert_eq!(m.value("pipewatch_consumer_lag_records", &labels), Some(10.0));
    // exact: the snapshot's now − event time of the record at offset 10
    let (lag, at) = status_lag(&pw, "analytics").await;
    assert_eq!(lag, (at - (base + 10_000)) as f64 / 1000.0, "exact lag seconds");
    // the last record it processed: offset 9
    let watermark = m
        .value("pipewatch_consumer_watermark_timestamp_seconds", &[("consumer", "analytics"), ("stream", "orders")])
        .expect("consumer watermark");
    assert_eq!(watermark, (base + 9_000) as f64 / 1000.0);
    // it grows a second per second while the job stands still
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = pw.metrics().await.value("pipewatch_consumer_lag_seconds", &labels).unwrap();
    assert!((later - lag - 3.0).abs() <= 1.5, "{lag} s, then {later} s three seconds later");
    assert_eq!(consumer_cause(&pw.metrics().await, "reporting").as_deref(), Some("group_unknown"));
    // Its lag alert fires, naming the job and the root cause.
    let m = pw.metrics().await;
    assert_eq!(m.value("pipewatch_alert_active", &[("alert", "AnalyticsBehind")]), Some(1.0), "{}", m.0);
    assert_eq!(
        m.value("pipewatch_alert_cause", &[("alert", "AnalyticsBehind"), ("cause", "consumer_stopped")]),
        Some(1.0)
    );
    let (_, status) = pw.get("/api/v1/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let alert = status["alerts"].as_array().unwrap().iter().find(|a| a["name"] == "AnalyticsBehind").unwrap().clone();
    assert_eq!(alert["cause"], "consumer_stopped", "{alert}");
    let labels = alert["event"]["labels"].to_string();
    assert!(
        labels.contains(r#"["consumer","analytics"]"#) && labels.contains(&format!(r#"["group","{group}"]"#)),
        "{alert}"
    );
    let summary = alert["event"]["annotations"].to_string();
    assert!(summary.contains("analytics is ") && summary.contains(" behind its input"), "{alert}");
    let (_, status) = pw.get("/api/v1/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let reporting = status["consumers"].as_array().unwrap().iter().find(|c| c["name"] == "reporting").unwrap().clone();
    assert!(reporting["error"].as_str().unwrap_or_default().contains("no committed offsets"), "{reporting}");
    assert_eq!(pw.get("/readyz").await.0, 200, "an unknown group does not make pipewatch unready");
    let (_, page) = pw.get("/").await;
    assert!(page.contains("<h2>Consumers</h2>") && page.contains("consumer_stopped"), "{page}");
    assert!(page.contains(&format!("reporting <small>({unknown})</small>")), "{page}");
    promtool_check(&pw.metrics().await.0).await;
    pw.stop().await;
    // pipewatch only read the groups: their offsets are as the job left them
    let committed = pipewatch_kafka::testing::committed_offsets(bootstrap, &group, &topic, 1).unwrap();
    assert_eq!(committed, vec![Some(10)]);
    let committed = pipewatch_kafka::testing::committed_offsets(bootstrap, &unknown, &topic, 1).unwrap();
    assert_eq!(committed, vec![None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_reading_behaviour_eight_hours_late_shows_a_consumer_sync_lag_of_28800_seconds() {
    let bootstrap = broker().await;
    let (orders, behaviour) = (unique_topic("orders"), unique_topic("behaviour"));
    for t in [&orders, &behaviour] {
        create_topic(bootstrap, t, 1).await.unwrap();
    }
    // Both topics carry an event of 8 h ago and one of now: in sync.
    let now = now_ms();
    let producer = TestProducer::new(bootstrap);
    for at in [now - 8 * 3600 * 1000, now] {
        let created_at = pipewatch_core::time::format_rfc3339(at);
        producer.send(&orders, 0, Some(format!(r#"{{"created_at":"{created_at}"}}"#).as_bytes()));
        producer.send(&behaviour, 0, Some(format!(r#"{{"ts":{at}}}"#).as_bytes()));
    }
    producer.flush();
    // The job has processed all orders, but of behaviour only the event of 8 h ago.
    let group = unique_topic("analytics-job");
    let (b, g, o, bh) = (bootstrap.to_string(), group.clone(), orders.clone(), behaviour.clone());
    tokio::task::spawn_blocking(move || {
        read_and_commit(&b, &g, &o, 2);
        read_and_commit(&b, &g, &bh, 1);
    })
    .await
    .unwrap();
    let consumer = format!(
        r#"
[[consumer]]
name = "analytics"
group = "{group}"
streams = ["orders", "behaviour"]
"#
    );
    let pw =
        Pipewatch::start(&config(bootstrap, "earliest", &orders_and_behaviour(&orders, &behaviour, "", &consumer)))
            .await;
    let m = eventually("the consumer's sync lag", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        match m.value("pipewatch_consumer_sync_lag_seconds", &[("consumer", "analytics"), ("pair", "orders_behaviour")])
        {
            Some(v) => Ok((m, v)),
            None => Err("absent".to_string()),
        }
    })
    .await;
    let (m, consumer_sync) = m;
    assert_eq!(consumer_sync, 28_800.0, "what the job sees: its orders 8 h ahead of its behaviour");
    let topics_sync = m.value("pipewatch_sync_lag_seconds", &[("pair", "orders_behaviour")]).expect("sync lag");
    assert_eq!(topics_sync, 0.0, "the topics themselves are in sync");
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_far_behind_the_offset_index_lags_in_exact_seconds_with_one_record_fetch() {
    let bootstrap = broker().await;
    let topic = unique_topic("orders");
    create_topic(bootstrap, &topic, 1).await.unwrap();
    // More records than the offset index keeps, one a second of event time.
    let n = pipewatch_core::offset_index::OFFSET_INDEX_LEN as i64 + 200;
    let base = now_ms() - (n + 60) * 1000;
    let producer = TestProducer::new(bootstrap);
    for k in 0..n {
        let created_at = pipewatch_core::time::format_rfc3339(base + k * 1000);
        producer.send(&topic, 0, Some(format!(r#"{{"order_id":"o-{k}","created_at":"{created_at}"}}"#).as_bytes()));
    }
    producer.flush();
    // The job committed at offset 10 long before pipewatch started.
    let group = unique_topic("analytics-job");
    let (b, g, t) = (bootstrap.to_string(), group.clone(), topic.clone());
    tokio::task::spawn_blocking(move || read_and_commit(&b, &g, &t, 10)).await.unwrap();
    let body = orders_stream(&topic, "")
        + &format!(
            r#"
[[consumer]]
name = "analytics"
group = "{group}"
streams = ["orders"]
max_lag = "2h"
max_stall = "1h"
"#
        );
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    let labels = [("consumer", "analytics"), ("partition", "0")];
    eventually("lag seconds of a group behind the index", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        m.value("pipewatch_consumer_lag_seconds", &labels).ok_or_else(|| {
            let lines: Vec<&str> = m.0.lines().filter(|l| l.contains("consumer") && !l.starts_with('#')).collect();
            format!("absent: {}", lines.join("\n"))
        })
    })
    .await;
    let (lag, at) = status_lag(&pw, "analytics").await;
    assert_eq!(lag, (at - (base + 10_000)) as f64 / 1000.0, "exact, through the one-record fetch");
    let m = pw.metrics().await;
    assert_eq!(
        m.value("pipewatch_consumer_watermark_timestamp_seconds", &[("consumer", "analytics")]),
        Some((base + 9_000) as f64 / 1000.0),
        "the record before the committed offset, fetched with it"
    );
    let fetches = |m: &Metrics| m.value("pipewatch_consumer_record_fetches_total", &[("result", "found")]);
    assert_eq!(fetches(&m), Some(1.0));
    // No more fetches while the committed offset stands still; the lag still grows.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m = pw.metrics().await;
    assert_eq!(fetches(&m), Some(1.0), "fetched once while the offset stands still");
    let later = m.value("pipewatch_consumer_lag_seconds", &labels).unwrap();
    assert!((later - lag - 3.0).abs() <= 1.5, "{lag} s, then {later} s");
    assert_eq!(m.value("pipewatch_consumer_cause", &[("consumer", "analytics"), ("cause", "ok")]), Some(1.0));
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_deleted_before_the_group_read_them_are_counted_as_expired() {
    let bootstrap = broker().await;
    let topic = unique_topic("orders");
    create_topic(bootstrap, &topic, 1).await.unwrap();
    let producer = TestProducer::new(bootstrap);
    let base = now_ms() - 60_000;
    for k in 0..30 {
        let created_at = pipewatch_core::time::format_rfc3339(base + k * 1000);
        producer.send(&topic, 0, Some(format!(r#"{{"created_at":"{created_at}"}}"#).as_bytes()));
    }
    producer.flush();
    let group = unique_topic("analytics-job");
    let (b, g, t) = (bootstrap.to_string(), group.clone(), topic.clone());
    tokio::task::spawn_blocking(move || read_and_commit(&b, &g, &t, 10)).await.unwrap();
    // Retention deletes offsets 0 … 19: ten records the job never read.
    delete_records_before(bootstrap, &topic, 0, 20).await.unwrap();
    let body = orders_stream(&topic, "")
        + &format!(
            r#"
[[consumer]]
name = "analytics"
group = "{group}"
streams = ["orders"]
"#
        );
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    let m = eventually("records_expired", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        match m.value("pipewatch_consumer_cause", &[("consumer", "analytics"), ("cause", "records_expired")]) {
            Some(v) if v == 1.0 => Ok(m),
            _ => Err(m.0.lines().filter(|l| l.starts_with("pipewatch_consumer")).collect::<Vec<_>>().join("\n")),
        }
    })
    .await;
    assert_eq!(
        m.value("pipewatch_consumer_expired_records", &[("consumer", "analytics"), ("partition", "0")]),
        Some(10.0)
    );
    assert_eq!(m.value("pipewatch_consumer_record_fetches_total", &[("result", "expired")]), Some(1.0));
    let (_, status) = pw.get("/api/v1/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["consumers"][0]["streams"][0]["partitions"][0]["expired_records"], 10, "{status}");
    pw.stop().await;
}
