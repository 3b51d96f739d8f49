//! Volume judged against its own history, on the real broker: topics pre-filled with
//! past records (Kafka timestamps set by the test), a pipewatch that learns the expected
//! rate from the broker's offsets at each hour boundary, live traffic at the learned
//! level, below it and above it, and the alert at a webhook.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

const HOUR_MS: i64 = 3_600_000;
/// Records/s written in the hours around now on the same weekday (the level learned).
const LEVEL: f64 = 2.0;

/// Waits until `stream`'s baseline is in `state` (`ready`, `not_enough_history`); its status.
async fn baseline(pw: &Pipewatch, name: &str, state: &str) -> Value {
    eventually(&format!("{name} baseline {state}"), Duration::from_secs(120), || async {
        let st = stream_status(&pw.status().await, name);
        if st["baseline"]["state"] == state {
            Ok(st["baseline"].clone())
        } else {
            Err(format!("{}", st["baseline"]))
        }
    })
    .await
}

/// Waits until `stream` is `cause` with the baseline's anomaly `anomaly` (`low`, `high`, null).
async fn judged(pw: &Pipewatch, name: &str, cause: &str, anomaly: Value, timeout: Duration) -> Value {
    eventually(&format!("{name} {cause} ({anomaly})"), timeout, || async {
        let st = stream_status(&pw.status().await, name);
        if st["cause"] == cause && st["baseline"]["anomaly"] == anomaly {
            Ok(st)
        } else {
            Err(format!("cause {} rate {} baseline {}", st["cause"], st["rate_records_per_second"], st["baseline"]))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_is_judged_against_the_history_learned_from_the_broker() {
    let bootstrap = broker().await;
    let (weekly, daily, fresh) = (unique_topic("hist14d"), unique_topic("hist1d"), unique_topic("fresh"));
    for t in [&weekly, &daily, &fresh] {
        // the past must outlive the broker's default retention of 7 days
        create_topic_with(bootstrap, t, 1, &[("retention.ms", "-1")]).await.unwrap();
    }
    let now = now_ms();
    let now_hour = now / HOUR_MS;
    let per_hour = |rate: f64| (rate * 3600.0) as u64;
    let (w, d) = (weekly.clone(), daily.clone());
    let written = tokio::task::spawn_blocking(move || {
        let producer = TestProducer::new(bootstrap);
        // 14 days: the same weekday's hours around now at LEVEL, every other hour a quarter
        // of it (judged by the hour of the day, LEVEL would be far above the median)
        let same_weekday = |h: i64| matches!((h - now_hour).rem_euclid(168), 0..=2 | 167);
        let weekly_written = producer
            .history(&w, 1, now_hour - 14 * 24, now, |h| per_hour(if same_weekday(h) { LEVEL } else { LEVEL / 4.0 }));
        // a day and an hour, flat (the current hour up to now, in both: a test that runs
        // into the next hour sees this one complete at its rate)
        producer.history(&d, 1, now_hour - 25, now, |_| per_hour(LEVEL));
        weekly_written
    })
    .await
    .unwrap();
    eprintln!("history written: {written} records over 14 days");

    let sink = Sink::start().await;
    let body = format!(
        r#"
[[stream]]
name = "weekly"
topic = "{weekly}"
event_time = {{ field = "/ts", format = "epoch_millis" }}
baseline = {{ history = "14d" }}
[[stream]]
name = "daily"
topic = "{daily}"
event_time = {{ field = "/ts", format = "epoch_millis" }}
baseline = {{ history = "14d" }}
[[stream]]
name = "fresh"
topic = "{fresh}"
event_time = {{ field = "/ts", format = "epoch_millis" }}
baseline = {{}}
[[alert]]
name = "WeeklyVolumeAnomaly"
kind = "volume_anomaly"
target = "weekly"
for = "3s"
impact = "Orders are missing or duplicated: revenue reports and stock are wrong."
[[alert]]
name = "FreshVolumeAnomaly"
kind = "volume_anomaly"
target = "fresh"
impact = "Never fires: no history to judge by."
"#
    ) + &webhook(&sink.url);
    let targets = [&weekly, &daily, &fresh].map(|t| Target::new(t, 0, event)).into();
    let traffic = Traffic::start(bootstrap, LEVEL, targets);
    let pw = Pipewatch::start(&config(bootstrap, "latest", &body)).await;

    // what was learnt: the expected rate of now's slot within 10 % of what was written
    let learnt = baseline(&pw, "weekly", "ready").await;
    let expected = learnt["band"]["expected"].as_f64().unwrap();
    assert!((expected - LEVEL).abs() <= LEVEL * 0.1, "weekly learnt {learnt}");
    assert_eq!(learnt["band"]["slot"], "hour_of_week", "{learnt}");
    assert!(learnt["history_hours"].as_u64().unwrap() >= 13 * 24, "{learnt}");
    let one_day = baseline(&pw, "daily", "ready").await;
    assert_eq!(one_day["band"]["slot"], "hour_of_day", "{one_day}");
    assert!((one_day["band"]["expected"].as_f64().unwrap() - LEVEL).abs() <= LEVEL * 0.1, "{one_day}");
    let none = baseline(&pw, "fresh", "not_enough_history").await;
    assert_eq!(none["band"], Value::Null);

    // at the learnt level: ok, and the band on /metrics
    judged(&pw, "weekly", "ok", Value::Null, Duration::from_secs(60)).await;
    let m = pw.metrics().await;
    let shown =
        m.value("pipewatch_stream_rate_expected_records_per_second", &[("stream", "weekly"), ("bound", "expected")]);
    assert_eq!(shown, Some(expected));
    for bound in ["lower", "upper"] {
        assert!(m
            .value("pipewatch_stream_rate_expected_records_per_second", &[("stream", "fresh"), ("bound", bound)])
            .is_none());
    }
    promtool_check(&m.0).await;

    // 30 % of it: low, paged once at the webhook
    traffic.set_rate(LEVEL * 0.3);
    let dropped = Instant::now();
    let st = judged(&pw, "weekly", "volume_anomaly", "low".into(), Duration::from_secs(60)).await;
    eprintln!(
        "30 % of the level: volume_anomaly (low) after {:.1} s; {}",
        dropped.elapsed().as_secs_f64(),
        st["baseline"]
    );
    eventually("the alert at the webhook", Duration::from_secs(30), || async {
        let firing = sink.alerts().contains(&("WeeklyVolumeAnomaly".into(), "firing".into()));
        if firing {
            Ok(())
        } else {
            Err(format!("{:?}", sink.alerts()))
        }
    })
    .await;
    let alert = sink
        .bodies()
        .iter()
        .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
        .find(|a| a["labels"]["alertname"] == "WeeklyVolumeAnomaly")
        .unwrap();
    let summary = alert["annotations"]["summary"].as_str().unwrap_or_default().to_string();
    assert!(summary.contains("weekly receives") && summary.contains("outside its expected"), "{alert}");
    assert_eq!(alert["labels"]["cause"], "volume_anomaly", "{alert}");
    eprintln!("firing after {:.1} s: {summary}", dropped.elapsed().as_secs_f64());
    let page = pw.get("/").await.1;
    assert!(page.contains("low: ") && page.contains("hour of the week"), "the page says low and against what");
    assert!(page.contains("data-series=\"rate:weekly\"") && page.contains("<polygon class=band data-points="));

    // back to the level: resolved
    traffic.set_rate(LEVEL);
    judged(&pw, "weekly", "ok", Value::Null, Duration::from_secs(60)).await;
    let delivered = |n: usize| {
        let sink = &sink;
        async move {
            eventually(&format!("{n} notifications at the webhook"), Duration::from_secs(30), || async {
                let alerts = sink.alerts();
                if alerts.len() >= n {
                    Ok(alerts)
                } else {
                    Err(format!("{alerts:?}"))
                }
            })
            .await
        }
    };
    delivered(2).await;

    // three times it: high, paged again (a new episode), and resolved when it ends
    traffic.set_rate(LEVEL * 3.0);
    let st = judged(&pw, "weekly", "volume_anomaly", "high".into(), Duration::from_secs(60)).await;
    eprintln!("3× the level: volume_anomaly (high); {}", st["baseline"]);
    delivered(3).await;
    traffic.set_rate(LEVEL);
    judged(&pw, "weekly", "ok", Value::Null, Duration::from_secs(60)).await;
    let alerts = delivered(4).await;
    // each episode pages once; nothing for the stream with no history
    let (firing, resolved) = (
        ("WeeklyVolumeAnomaly".to_string(), "firing".to_string()),
        ("WeeklyVolumeAnomaly".to_string(), "resolved".to_string()),
    );
    assert_eq!(alerts, vec![firing.clone(), resolved.clone(), firing, resolved]);
    let high = sink.bodies().iter().flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default()).nth(2).unwrap();
    let description = high["annotations"]["description"].as_str().unwrap_or_default().to_string();
    assert!(description.contains("above the expected 2.00 records/s (hour of the week"), "{high}");
    assert_eq!(stream_status(&pw.status().await, "fresh")["cause"], "ok");
    drop(traffic);
    pw.stop().await;
}
