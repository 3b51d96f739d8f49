//! Discovery of consumer groups on a real broker: real groups commit (librdkafka
//! consumers), pipewatch lists the cluster's groups and watches every one whose name
//! matches and whose offsets cover a watched stream — never joining one — with the
//! exact lag and causes of a listed consumer; a group found while running is watched
//! within `every`; beyond `max_groups` the rest are counted and named; a deleted group is
//! `group_unknown`, then forgotten, and its slot goes to the next. A `consumer_stopped`
//! rule over `discovered` pages once per stopped discovered group, naming it, and
//! resolves when the group is gone.

use std::time::Duration;

use crate::support::*;

fn consumer<'a>(status: &'a serde_json::Value, group: &str) -> Option<&'a serde_json::Value> {
    // none before the first tick
    status["consumers"].as_array().into_iter().flatten().find(|c| c["group"] == group)
}

/// The `(consumer, status)` of every alert `name` the sink got, in order.
fn instances(sink: &Sink, name: &str) -> Vec<(String, String)> {
    let alerts =
        sink.bodies().iter().flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default()).collect::<Vec<_>>();
    alerts
        .iter()
        .filter(|a| a["labels"]["alertname"] == name)
        .map(|a| {
            (a["labels"]["consumer"].as_str().unwrap_or("").to_string(), a["status"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

async fn commit(bootstrap: &'static str, group: &str, topic: &str, n: i64) {
    let (g, t) = (group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || read_and_commit(bootstrap, &g, &t, n)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_that_read_a_watched_stream_are_found_watched_capped_and_forgotten() {
    let bootstrap = broker().await;
    let topic = unique_topic("orders");
    let elsewhere = unique_topic("elsewhere");
    create_topic(bootstrap, &topic, 1).await.unwrap();
    create_topic(bootstrap, &elsewhere, 1).await.unwrap();
    let base = now_ms() - 60_000;
    let producer = TestProducer::new(bootstrap);
    for k in 0..20 {
        let created_at = pipewatch_core::time::format_rfc3339(base + k * 1000);
        let order = format!(r#"{{"order_id":"o-{k}","created_at":"{created_at}"}}"#);
        producer.send(&topic, 0, Some(order.as_bytes()));
        producer.send(&elsewhere, 0, Some(order.as_bytes()));
    }
    producer.flush();
    let prefix = unique_topic("disc");
    let (analytics, bi, late) = (format!("{prefix}-analytics"), format!("{prefix}-bi"), format!("{prefix}-late"));
    let (excluded, other, listed) =
        (format!("{prefix}-excluded"), format!("{prefix}-other"), format!("{prefix}-listed"));
    for g in [&analytics, &bi, &excluded, &listed] {
        commit(bootstrap, g, &topic, 10).await;
    }
    commit(bootstrap, &other, &elsewhere, 10).await;

    let sink = Sink::start().await;
    let body = orders_stream(&topic, "")
        + &format!(
            r#"
[[consumer]]
name = "listed"
group = "{listed}"
streams = ["orders"]
max_stall = "3s"
[discovery]
every = "2s"
poll = "2s"
max_groups = 2
forget_after = "6s"
max_lag = "1h"
max_stall = "3s"
groups = {{ include = ["^{prefix}-"], exclude = ["-excluded$"] }}
[[alert]]
name = "DiscoveredJobStopped"
kind = "consumer_stopped"
target = "discovered"
impact = "A job nobody listed has stopped: what it feeds goes stale."
"#
        )
        + &webhook(&sink.url);
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    // analytics and bi are found, and stopped: 10 records wait and nothing commits
    let status = eventually("analytics and bi discovered and stopped", Duration::from_secs(60), || async {
        let s = pw.status().await;
        let stopped = |g: &str| consumer(&s, g).is_some_and(|c| c["cause"] == "consumer_stopped");
        if stopped(&analytics) && stopped(&bi) {
            Ok(s)
        } else {
            Err(s["consumers"].to_string())
        }
    })
    .await;
    let a = consumer(&status, &analytics).unwrap();
    assert_eq!((a["name"].as_str(), a["discovered"].as_bool()), (Some(analytics.as_str()), Some(true)), "{a}");
    assert_eq!(a["streams"][0]["stream"], "orders");
    assert_eq!(a["streams"][0]["partitions"][0]["committed_offset"], 10);
    // exact seconds, as for a listed consumer: now − event time of the record at offset 10
    let lag = a["streams"][0]["partitions"][0]["lag_seconds"].as_f64().unwrap();
    assert_eq!(lag, (status["at_ms"].as_i64().unwrap() - (base + 10_000)) as f64 / 1000.0);
    assert!(consumer(&status, &excluded).is_none(), "excluded by name");
    assert!(consumer(&status, &other).is_none(), "it reads no watched stream");
    let listed_ones: Vec<_> =
        status["consumers"].as_array().unwrap().iter().filter(|c| c["group"] == listed.as_str()).collect();
    assert_eq!(listed_ones.len(), 1, "the [[consumer]] is not discovered again");
    assert_eq!(
        (listed_ones[0]["name"].as_str(), listed_ones[0]["discovered"].as_bool()),
        (Some("listed"), Some(false))
    );
    let m = pw.metrics().await;
    let cause = [("consumer", analytics.as_str()), ("cause", "consumer_stopped"), ("discovered", "true")];
    assert_eq!(m.value("pipewatch_consumer_cause", &cause), Some(1.0), "{}", m.0);
    let listed_cause = [("consumer", "listed"), ("cause", "consumer_stopped"), ("discovered", "false")];
    assert_eq!(m.value("pipewatch_consumer_cause", &listed_cause), Some(1.0));
    assert_eq!(m.value("pipewatch_discovery_groups_watched", &[]), Some(2.0));
    // one page per stopped discovered group, naming it; none for the listed one
    let firing = eventually("both discovered groups paged", Duration::from_secs(30), || async {
        let mut got = instances(&sink, "DiscoveredJobStopped");
        got.sort();
        if got.len() >= 2 {
            Ok(got)
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
    let mut want = vec![(analytics.clone(), "firing".to_string()), (bi.clone(), "firing".to_string())];
    want.sort();
    assert_eq!(firing, want);
    let alert = sink
        .bodies()
        .iter()
        .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
        .find(|a| a["labels"]["consumer"] == analytics.as_str())
        .unwrap();
    assert_eq!(
        (&alert["labels"]["group"], &alert["labels"]["cause"], &alert["labels"]["severity"]),
        (&serde_json::json!(analytics), &serde_json::json!("consumer_stopped"), &serde_json::json!("page"))
    );
    let summary = alert["annotations"]["summary"].as_str().unwrap();
    assert!(summary.starts_with(&format!("{analytics} has committed nothing for ")), "{summary}");
    let m = pw.metrics().await;
    assert_eq!(m.value("pipewatch_alert_active", &[("alert", "DiscoveredJobStopped")]), Some(1.0));

    // a third group while running: beyond max_groups = 2, counted and named
    commit(bootstrap, &late, &topic, 15).await;
    let status = eventually("the late group in the overflow", Duration::from_secs(30), || async {
        let s = pw.status().await;
        match s["discovery"]["overflow"].as_u64() {
            Some(1) => Ok(s),
            _ => Err(s["discovery"].to_string()),
        }
    })
    .await;
    assert_eq!(status["discovery"]["overflow_groups"], serde_json::json!([late]));
    assert!(consumer(&status, &late).is_none());
    assert_eq!(pw.metrics().await.value("pipewatch_discovery_groups_overflow", &[]), Some(1.0));

    // analytics is deleted: group_unknown, then forgotten after 6 s; its slot goes to late
    pipewatch_kafka::testing::delete_group(bootstrap, &analytics).await.unwrap();
    eventually("analytics group_unknown", Duration::from_secs(20), || async {
        let s = pw.status().await;
        match consumer(&s, &analytics).map(|c| c["cause"].clone()) {
            Some(c) if c == "group_unknown" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let status = eventually("analytics forgotten, late watched", Duration::from_secs(30), || async {
        let s = pw.status().await;
        if consumer(&s, &analytics).is_none() && consumer(&s, &late).is_some() {
            Ok(s)
        } else {
            Err(s["discovery"].to_string())
        }
    })
    .await;
    let forgotten = status["discovery"]["forgotten"].as_array().unwrap();
    assert_eq!(forgotten.len(), 1, "{}", status["discovery"]);
    assert_eq!(forgotten[0]["group"], analytics.as_str());
    assert!(forgotten[0]["at_ms"].as_i64().is_some());
    // the page for analytics resolved when it left consumer_stopped; bi's still fires
    let got = instances(&sink, "DiscoveredJobStopped");
    assert!(got.contains(&(analytics.clone(), "resolved".to_string())), "{got:?}");
    assert!(!got.contains(&(bi.clone(), "resolved".to_string())), "{got:?}");
    let m = pw.metrics().await;
    assert_eq!(
        m.value("pipewatch_consumer_cause", &[("consumer", analytics.as_str()), ("cause", "group_unknown")]),
        None,
        "its series are gone"
    );
    let late_lag = eventually("late's lag", Duration::from_secs(20), || async {
        let m = pw.metrics().await;
        m.value("pipewatch_consumer_stream_lag_records", &[("consumer", late.as_str())]).ok_or(m.0)
    })
    .await;
    assert_eq!(late_lag, 5.0, "late committed 15 of 20");
    // a discovered consumer's series are per stream ([discovery].partition_series = false);
    // a listed one keeps its partitions'
    let m = pw.metrics().await;
    assert_eq!(m.value("pipewatch_consumer_lag_records", &[("consumer", late.as_str())]), None);
    assert!(m.value("pipewatch_consumer_lag_records", &[("consumer", "listed"), ("partition", "0")]).is_some());
    promtool_check(&m.0).await;
    pw.stop().await;
    // pipewatch only read the groups: their offsets are as the jobs left them
    let committed = pipewatch_kafka::testing::committed_offsets(bootstrap, &bi, &topic, 1).unwrap();
    assert_eq!(committed, vec![Some(10)]);
}

/// A discovered group at the log end is not read again while it stays listed and nothing
/// is written (the cost of an idle cluster's groups, docs/performance.md): records written
/// make it read at the next poll, and a deleted one, gone from the listing, is read and
/// found gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caught_up_group_is_read_again_when_records_wait_or_it_leaves_the_listing() {
    let bootstrap = broker().await;
    let topic = unique_topic("orders");
    create_topic(bootstrap, &topic, 1).await.unwrap();
    let base = now_ms() - 60_000;
    let producer = TestProducer::new(bootstrap);
    let send = |from: i64, to: i64| {
        for k in from..to {
            let created_at = pipewatch_core::time::format_rfc3339(base + k * 1000);
            producer.send(&topic, 0, Some(format!(r#"{{"order_id":"o-{k}","created_at":"{created_at}"}}"#).as_bytes()));
        }
        producer.flush();
    };
    send(0, 10);
    let group = format!("{}-idle", unique_topic("disc"));
    commit(bootstrap, &group, &topic, 10).await;
    let body = orders_stream(&topic, "")
        + &format!(
            r#"
[discovery]
every = "2s"
poll = "2s"
forget_after = "1h"
max_stall = "3s"
groups = {{ include = ["^{group}$"] }}
"#
        );
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    let state = |want: &'static str, records: i64| {
        let (pw, group) = (&pw, &group);
        async move {
            let s = pw.status().await;
            let c = consumer(&s, group).cloned();
            let got = c.as_ref().map(|c| (c["cause"].clone(), c["streams"][0]["partitions"][0]["lag_records"].clone()));
            match got {
                Some((cause, lag)) if cause == want && lag == records => Ok(()),
                _ => Err(format!("{c:?}")),
            }
        }
    };
    eventually("the idle group caught up", Duration::from_secs(60), || state("ok", 0)).await;
    // it stays caught up for a while (nothing is written, its offsets are not read)
    tokio::time::sleep(Duration::from_secs(5)).await;
    state("ok", 0).await.unwrap();
    // five records: waiting, and nothing commits → stopped
    send(10, 15);
    eventually("five records wait, the group stopped", Duration::from_secs(30), || state("consumer_stopped", 5)).await;
    // it reads them: caught up again, and read when it moves
    commit(bootstrap, &group, &topic, 15).await;
    eventually("caught up again", Duration::from_secs(30), || state("ok", 0)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    // deleted while caught up: gone from the listing, read, found gone
    pipewatch_kafka::testing::delete_group(bootstrap, &group).await.unwrap();
    eventually("the deleted group is group_unknown", Duration::from_secs(30), || async {
        let s = pw.status().await;
        match consumer(&s, &group).map(|c| c["cause"].clone()) {
            Some(c) if c == "group_unknown" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    pw.stop().await;
}
