//! The monitor against a real broker: what a user sees on /metrics, /readyz and
//! /api/v1/status when streams are in sync, delayed, stalled, silent, malformed, or
//! when the cluster is gone.

use std::time::Duration;

use crate::support::*;

const EIGHT_HOURS_MS: i64 = 8 * 3600 * 1000;

fn streams(orders: &str, behaviour: &str) -> String {
    orders_and_behaviour(orders, behaviour, "", SYNC_RULE)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviour_eight_hours_behind_orders_is_a_sync_lag_of_28800_seconds() {
    let bootstrap = broker().await;
    let (orders, behaviour) = (unique_topic("orders"), unique_topic("behaviour"));
    create_topic(bootstrap, &orders, 2).await.unwrap();
    create_topic(bootstrap, &behaviour, 2).await.unwrap();
    let mut targets = Vec::new();
    for p in 0..2 {
        targets.push(Target::new(&orders, p, order));
        targets.push(Target::new(&behaviour, p, |now| {
            format!(r#"{{"user_id":"u1","event":"view","ts":{}}}"#, now - EIGHT_HOURS_MS)
        }));
    }
    let _traffic = Traffic::start(bootstrap, 10.0, targets);
    let group = unique_topic("pipewatch-test-group");
    let pw = Pipewatch::start(&config_in_group(bootstrap, &group, "earliest", &streams(&orders, &behaviour))).await;

    let m = eventually("sync lag and causes", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        let lag = m.value(
            "pipewatch_sync_lag_seconds",
            &[("pair", "orders_behaviour"), ("leader", "orders"), ("follower", "behaviour")],
        );
        // The cause can show from the freshness lag before the first record read in real
        // time has had its delay observed: wait for both.
        let delays = m.value("pipewatch_stream_record_delay_seconds_count", &[("stream", "behaviour")]);
        match (lag, m.cause("behaviour").as_deref(), m.cause("orders").as_deref(), delays) {
            (Some(_), Some("event_time_delayed"), Some("ok"), Some(n)) if n > 0.0 => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let lag = m.value("pipewatch_sync_lag_seconds", &[("pair", "orders_behaviour")]).unwrap();
    assert!((lag - 28_800.0).abs() <= 5.0, "sync lag {lag}");
    let fresh = m.value("pipewatch_stream_freshness_lag_seconds", &[("stream", "behaviour")]).unwrap();
    assert!((fresh - 28_800.0).abs() <= 5.0, "behaviour freshness lag {fresh}");
    let orders_fresh = m.value("pipewatch_stream_freshness_lag_seconds", &[("stream", "orders")]).unwrap();
    assert!(orders_fresh < 5.0, "orders freshness lag {orders_fresh}");
    // every partition is exported, with its broker log end and pipewatch's position
    for stream in ["orders", "behaviour"] {
        for p in ["0", "1"] {
            let l = [("stream", stream), ("partition", p)];
            assert!(m.value("pipewatch_partition_log_end_offset", &l).unwrap() > 0.0, "{stream}/{p}");
            assert!(m.value("pipewatch_records_total", &l).unwrap() > 0.0, "{stream}/{p}");
            assert!(m.value("pipewatch_partition_watermark_timestamp_seconds", &l).is_some(), "{stream}/{p}");
        }
    }
    assert_eq!(m.value("pipewatch_kafka_up", &[]), Some(1.0));
    assert!(m.value("pipewatch_stream_record_delay_seconds_count", &[("stream", "behaviour")]).unwrap() > 0.0);
    promtool_check(&m.0).await;

    let (status, body) = pw.get("/api/v1/status").await;
    assert_eq!(status, 200);
    let status: serde_json::Value = serde_json::from_str(&body).expect("status is JSON");
    assert_eq!(status["ready"], true, "{body}");
    assert_eq!(status["pairs"][0]["cause"], "event_time_delayed", "{body}");
    // the alert: firing, with the root cause and the business impact
    let alert = eventually("the sync-lag alert firing", Duration::from_secs(30), || async {
        let (_, body) = pw.get("/api/v1/status").await;
        let status: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        let alert = status["alerts"][0].clone();
        if alert["state"] == "firing" {
            Ok(alert)
        } else {
            Err(alert.to_string())
        }
    })
    .await;
    assert_eq!(alert["name"], "BehaviourBehindOrders", "{alert}");
    assert_eq!(alert["cause"], "event_time_delayed", "{alert}");
    let annotations = alert["event"]["annotations"].to_string();
    assert!(
        annotations.contains("behaviour is 8h 00m behind orders")
            || annotations.contains("behaviour is 7h 59m behind orders"),
        "{alert}"
    );
    assert!(annotations.contains("Behaviour analysis, segmentation and ad targeting run on stale data."), "{alert}");
    let labels = alert["event"]["labels"].to_string();
    assert!(labels.contains(r#"["pair","orders_behaviour"]"#) && labels.contains(r#"["severity","page"]"#), "{alert}");
    let m = pw.metrics().await;
    let active = [("alert", "BehaviourBehindOrders"), ("severity", "page")];
    assert_eq!(m.value("pipewatch_alert_active", &active), Some(1.0));
    let cause = [("alert", "BehaviourBehindOrders"), ("cause", "event_time_delayed")];
    assert_eq!(m.value("pipewatch_alert_cause", &cause), Some(1.0));
    let (status, page) = pw.get("/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("behaviour is 8h 00m behind orders") || page.contains("behaviour is 7h 59m behind orders"),
        "{page}"
    );
    assert_eq!(pw.get("/readyz").await.0, 200);
    pw.stop().await;
    // pipewatch only reads: not even its own group has committed offsets
    for topic in [&orders, &behaviour] {
        let committed = pipewatch_kafka::testing::committed_offsets(bootstrap, &group, topic, 2).unwrap();
        assert_eq!(committed, vec![None, None], "{topic}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_partition_opens_a_gap_and_a_stopped_stream_is_a_silent_producer() {
    let bootstrap = broker().await;
    let topic = unique_topic("orders");
    create_topic(bootstrap, &topic, 2).await.unwrap();
    let traffic = Traffic::start(bootstrap, 10.0, vec![Target::new(&topic, 0, order), Target::new(&topic, 1, order)]);
    let body = orders_stream(&topic, r#"max_silence = "3s""#);
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    let wait = Duration::from_secs(60);
    let m = pw.wait_cause("orders", "ok", Duration::from_secs(60)).await;
    // A gap needs a log end seen advancing: wait for partition 1's to move once more
    // (on a busy machine "ok" can come with the first log end pipewatch saw).
    let end = |m: &Metrics| m.value("pipewatch_partition_log_end_offset", &[("stream", "orders"), ("partition", "1")]);
    let first = end(&m).unwrap_or(0.0);
    eventually("partition 1's log end advancing", wait, || async {
        let m = pw.metrics().await;
        match end(&m) {
            Some(e) if e > first => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    traffic.pause(1, true);
    let m = pw.wait_cause("orders", "partition_stalled", wait).await;
    assert_eq!(m.value("pipewatch_gaps_total", &[("stream", "orders"), ("partition", "1")]), Some(1.0));
    assert_eq!(m.value("pipewatch_gaps_total", &[("stream", "orders"), ("partition", "0")]), Some(0.0));

    traffic.pause(0, true);
    let m = pw.wait_cause("orders", "producer_silent", wait).await;
    assert!(m.value("pipewatch_stream_silence_seconds", &[("stream", "orders")]).unwrap() > 3.0);
    assert_eq!(m.value("pipewatch_gaps_total", &[("stream", "orders"), ("partition", "0")]), Some(1.0));

    traffic.pause(0, false);
    traffic.pause(1, false);
    let m = pw.wait_cause("orders", "ok", wait).await;
    assert_eq!(m.value("pipewatch_gap_duration_seconds_count", &[("stream", "orders")]), Some(2.0), "both gaps closed");
    assert_eq!(m.value("pipewatch_gaps_total", &[("stream", "orders"), ("partition", "1")]), Some(1.0));
    drop(traffic);
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalid_reason_is_counted_and_leaves_the_watermark_alone() {
    let bootstrap = broker().await;
    let topic = unique_topic("behaviour");
    create_topic(bootstrap, &topic, 1).await.unwrap();
    let valid_ts = now_ms() - 1000;
    let producer = TestProducer::new(bootstrap);
    let records: Vec<Option<String>> = vec![
        Some(format!(r#"{{"ts":{valid_ts}}}"#)),
        None,                                                  // empty_payload (tombstone)
        Some("<xml>not json</xml>".into()),                    // not_json
        Some(r#"{"user":"u1"}"#.into()),                       // missing_field
        Some(r#"{"ts":"yesterday"}"#.into()),                  // bad_timestamp
        Some(format!(r#"{{"ts":{}}}"#, now_ms() + 3_600_000)), // future_timestamp
        Some(format!(r#"{{"ts":{}}}"#, valid_ts - 60_000)),    // valid, older: watermark stays
    ];
    for r in &records {
        producer.send(&topic, 0, r.as_deref().map(str::as_bytes));
    }
    producer.flush();
    let body = format!(
        r#"
[[stream]]
name = "behaviour"
topic = "{topic}"
event_time = {{ field = "/ts", format = "epoch_millis" }}
"#
    );
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    let l = [("stream", "behaviour"), ("partition", "0")];
    let m = eventually("all 7 records read", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        match m.value("pipewatch_records_total", &l) {
            Some(n) if n == 7.0 => Ok(m),
            other => Err(format!("records_total {other:?}")),
        }
    })
    .await;
    for reason in ["empty_payload", "not_json", "missing_field", "bad_timestamp", "future_timestamp"] {
        assert_eq!(
            m.value("pipewatch_records_invalid_total", &[l[0], l[1], ("reason", reason)]),
            Some(1.0),
            "reason {reason}"
        );
    }
    let wm = m.value("pipewatch_partition_watermark_timestamp_seconds", &l).unwrap();
    assert_eq!((wm * 1000.0).round() as i64, valid_ts);
    assert_eq!(m.value("pipewatch_stream_watermark_timestamp_seconds", &[("stream", "behaviour")]), Some(wm));
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_malformed_records_at_full_speed_are_counted_and_change_no_watermark() {
    let bootstrap = broker().await;
    let topic = unique_topic("behaviour");
    create_topic(bootstrap, &topic, 2).await.unwrap();
    let body = format!(
        "[[stream]]\nname = \"behaviour\"\ntopic = \"{topic}\"\nevent_time = {{ field = \"/ts\", format = \"epoch_millis\" }}\n"
    );
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    let valid_ts = now_ms() - 1000;
    let producer = TestProducer::new(bootstrap);
    for p in 0..2 {
        producer.send(&topic, p, Some(format!(r#"{{"ts":{valid_ts}}}"#).as_bytes()));
    }
    producer.flush();
    pw.wait_cause("behaviour", "ok", Duration::from_secs(60)).await;
    // every reason, in several shapes each: 10 000 records as fast as the producer goes
    let nested = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let shapes: Vec<(&str, Option<String>)> = vec![
        ("empty_payload", None),
        ("empty_payload", Some(String::new())),
        ("not_json", Some("<xml>not json</xml>".into())),
        ("not_json", Some(r#"{"ts": 17953"#.into())),
        ("not_json", Some("\u{0}\u{1}\u{2}binary".into())),
        ("missing_field", Some(r#"{"user":"u1"}"#.into())),
        ("missing_field", Some(format!(r#"{{"deep": {nested}}}"#))),
        ("bad_timestamp", Some(r#"{"ts":"yesterday"}"#.into())),
        ("bad_timestamp", Some(format!(r#"{{"ts":{}}}"#, "9".repeat(400)))),
        ("bad_timestamp", Some(r#"{"ts":-1e400}"#.into())),
        ("future_timestamp", Some(format!(r#"{{"ts":{}}}"#, now_ms() + 3_600_000))),
    ];
    let mut want: std::collections::BTreeMap<&str, f64> = Default::default();
    for i in 0..10_000 {
        let (reason, payload) = &shapes[i % shapes.len()];
        producer.send(&topic, (i % 2) as i32, payload.as_deref().map(str::as_bytes));
        *want.entry(reason).or_default() += 1.0;
    }
    producer.flush();
    let m = eventually("10 002 records read", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        let read: f64 =
            (0..2).filter_map(|p| m.value("pipewatch_records_total", &[("partition", &p.to_string())])).sum();
        if read == 10_002.0 {
            Ok(m)
        } else {
            Err(format!("records_total {read}"))
        }
    })
    .await;
    for (reason, n) in &want {
        let counted: f64 = (0..2)
            .filter_map(|p| {
                m.value("pipewatch_records_invalid_total", &[("partition", &p.to_string()), ("reason", reason)])
            })
            .sum();
        assert_eq!(counted, *n, "reason {reason}");
    }
    let wm = m.value("pipewatch_stream_watermark_timestamp_seconds", &[("stream", "behaviour")]).unwrap();
    assert_eq!((wm * 1000.0).round() as i64, valid_ts, "the watermark is the valid records' event time");
    assert_eq!(pw.get("/healthz").await.0, 200);
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_added_to_a_watched_topic_while_running_are_picked_up() {
    let bootstrap = broker().await;
    let topic = unique_topic("orders");
    create_topic(bootstrap, &topic, 1).await.unwrap();
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &orders_stream(&topic, ""))).await;
    let traffic = Traffic::start(bootstrap, 10.0, vec![Target::new(&topic, 0, order)]);
    pw.wait_cause("orders", "ok", Duration::from_secs(60)).await;
    add_partitions(bootstrap, &topic, 3).await.unwrap();
    drop(traffic);
    let traffic = Traffic::start(bootstrap, 10.0, (0..3).map(|p| Target::new(&topic, p, order)).collect());
    eventually("the new partitions read", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        let read: Vec<Option<f64>> =
            (1..3).map(|p| m.value("pipewatch_records_total", &[("partition", &p.to_string())])).collect();
        let assigned = m.value("pipewatch_stream_partitions", &[("stream", "orders")]);
        if read.iter().all(|r| r.is_some_and(|n| n > 0.0)) && assigned == Some(3.0) {
            Ok(())
        } else {
            Err(format!("records on partitions 1, 2: {read:?}; assigned {assigned:?}"))
        }
    })
    .await;
    pw.wait_cause("orders", "ok", Duration::from_secs(30)).await;
    drop(traffic);
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_reported_not_fatal_and_pipewatch_recovers() {
    let port = pipewatch_kafka::testing::free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let topic = unique_topic("orders");
    let body = orders_stream(&topic, "");
    let pw = Pipewatch::start(&config(&bootstrap, "earliest", &body)).await;
    pw.wait_state(503, 0.0, "orders", "kafka_unreachable", Duration::from_secs(60)).await;
    assert_eq!(pw.get("/healthz").await.0, 200, "the process is alive");

    let broker = tokio::task::spawn_blocking(move || KafkaBroker::start(port))
        .await
        .unwrap()
        .expect("start a broker on the port");
    create_topic(&broker.bootstrap, &topic, 1).await.unwrap();
    let traffic = Traffic::start(&broker.bootstrap, 10.0, vec![Target::new(&topic, 0, order)]);
    pw.wait_state(200, 1.0, "orders", "ok", Duration::from_secs(90)).await;
    drop(traffic);
    pw.stop().await;
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_in_one_group_split_the_partitions_and_take_them_back() {
    let bootstrap = broker().await;
    let topic = unique_topic("orders");
    create_topic(bootstrap, &topic, 4).await.unwrap();
    let targets = (0..4).map(|p| Target::new(&topic, p, order)).collect();
    let _traffic = Traffic::start(bootstrap, 10.0, targets);
    let body = orders_stream(&topic, "");
    // both replicas share one group (the config's group id)
    let config = config(bootstrap, "latest", &body);
    let all: std::collections::BTreeSet<String> = (0..4).map(|p| p.to_string()).collect();
    let first = Pipewatch::start(&config).await;
    holds_every_partition(&first, &all, "one replica holds every partition").await;

    let second = Pipewatch::start(&config).await;
    eventually("two replicas split the partitions", Duration::from_secs(90), || async {
        let (a, b) = (first.metrics().await.partitions("orders"), second.metrics().await.partitions("orders"));
        let union: std::collections::BTreeSet<String> = a.union(&b).cloned().collect();
        if !a.is_empty() && !b.is_empty() && a.is_disjoint(&b) && union == all {
            Ok(())
        } else {
            Err(format!("first {a:?}, second {b:?}"))
        }
    })
    .await;
    // a rebalance is not a fault
    first.wait_cause("orders", "ok", Duration::from_secs(20)).await;

    second.stop().await;
    holds_every_partition(&first, &all, "the remaining replica takes every partition back").await;
    first.stop().await;
}

async fn holds_every_partition(pw: &Pipewatch, all: &std::collections::BTreeSet<String>, what: &str) {
    eventually(what, Duration::from_secs(90), || async {
        let held = pw.metrics().await.partitions("orders");
        if &held == all {
            Ok(())
        } else {
            Err(format!("{held:?}"))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_deleted_topic_is_named_until_it_is_there() {
    let bootstrap = broker().await;
    let orders = unique_topic("orders");
    let behaviour = unique_topic("user-behavior-typo");
    create_topic(bootstrap, &orders, 1).await.unwrap();
    let toml = config(bootstrap, "earliest", &streams(&orders, &behaviour));

    let (code, stdout, stderr) = check_connect(&toml).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("stream behaviour: topic {behaviour:?} does not exist")), "{stdout}");
    assert!(stdout.contains(&format!("stream orders: topic {orders:?} (1 partitions)")), "{stdout}");
    assert!(
        stderr.contains(&format!("error: 1 configured topic missing: {behaviour:?} (stream behaviour)")),
        "{stderr}"
    );

    let pw = Pipewatch::start(&toml).await;
    let wait = Duration::from_secs(60);
    pw.wait_state(503, 1.0, "behaviour", "topic_missing", wait).await;
    let (_, ready) = pw.get("/readyz").await;
    assert!(ready.contains(&format!("topic {behaviour:?} of stream behaviour does not exist")), "{ready}");
    let (_, page) = pw.get("/").await;
    assert!(page.contains(&format!("topic <code>{behaviour}</code> does not exist on the cluster")), "{page}");
    let (_, status) = pw.get("/api/v1/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["ready"], false, "{status}");
    assert_eq!(status["pairs"][0]["cause"], "topic_missing", "{status}");
    assert_eq!(pw.metrics().await.cause("orders").as_deref(), Some("no_data"), "the other stream is watched as ever");

    // The topic is created: pipewatch recovers by itself.
    create_topic(bootstrap, &behaviour, 1).await.unwrap();
    pw.wait_state(200, 1.0, "behaviour", "no_data", wait).await;
    let (code, stdout, stderr) = check_connect(&toml).await;
    assert_eq!(code, 0, "{stdout}{stderr}");

    // Deleted while running: named again, and nothing else breaks.
    delete_topic(bootstrap, &orders).await.unwrap();
    pw.wait_state(503, 1.0, "orders", "topic_missing", wait).await;
    let (_, ready) = pw.get("/readyz").await;
    assert!(ready.contains(&format!("topic {orders:?} of stream orders does not exist")), "{ready}");
    assert_eq!(pw.metrics().await.cause("behaviour").as_deref(), Some("no_data"));
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_to_a_pipe_has_no_colour_codes_and_a_short_assignment_line() {
    use tokio::io::AsyncBufReadExt;
    let bootstrap = broker().await;
    let topic = unique_topic("orders");
    create_topic(bootstrap, &topic, 300).await.unwrap();
    let dir = std::env::temp_dir().join(unique_topic("pipewatch-log"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pipewatch.toml");
    let port = pipewatch_kafka::testing::free_port();
    let body = format!("[http]\nlisten = \"127.0.0.1:{port}\"\n{}", orders_stream(&topic, ""));
    std::fs::write(&path, config(bootstrap, "earliest", &body)).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipewatch"))
        .args(["run", "--config"])
        .arg(&path)
        .env_remove("NO_COLOR")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run pipewatch");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let assigned = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push(line.clone());
            if line.contains("partitions assigned") {
                return Some(line);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| panic!("no assignment logged: {seen:?}"));
    assert!(assigned.contains(&format!("{topic}: 300 (0-299)")), "{assigned}");
    assert!(assigned.len() < 300, "{} characters: {assigned}", assigned.len());
    for line in seen.iter().chain([&assigned]) {
        assert!(!line.contains('\u{1b}'), "colour codes in a log written to a pipe: {line:?}");
    }
    child.kill().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_with_the_fields_as_keys() {
    use tokio::io::AsyncBufReadExt;
    let bootstrap = broker().await;
    let topic = unique_topic("orders");
    create_topic(bootstrap, &topic, 3).await.unwrap();
    let dir = std::env::temp_dir().join(unique_topic("pipewatch-json-log"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pipewatch.toml");
    let port = pipewatch_kafka::testing::free_port();
    let body = format!("[http]\nlisten = \"127.0.0.1:{port}\"\n{}", orders_stream(&topic, ""));
    std::fs::write(&path, config(bootstrap, "earliest", &body)).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipewatch"))
        .args(["--log-format", "json", "run", "--config"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run pipewatch");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut events: Vec<serde_json::Value> = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let event: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"));
            let assigned = event["message"] == "partitions assigned";
            events.push(event);
            if assigned {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(found, "no assignment logged: {events:?}");
    let running = events.iter().find(|e| e["message"] == "pipewatch running").expect("the start event");
    assert_eq!(running["level"], "INFO");
    assert_eq!(running["target"], "pipewatch::app");
    assert_eq!(running["bootstrap"], bootstrap);
    assert_eq!(running["streams"], 1);
    assert_eq!(running["addr"], format!("127.0.0.1:{port}"));
    assert!(running["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{running}");
    let assigned = events.last().unwrap();
    assert_eq!(assigned["partitions"], format!("{topic}: 3 (0-2)"), "{assigned}");
    child.kill().await.ok();
}
