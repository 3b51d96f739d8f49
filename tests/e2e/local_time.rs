//! Event times written as local time without an offset, on the real broker: read in the
//! stream's `event_time.timezone` they are in sync with a UTC stream (a sync lag near 0,
//! not the 8 hours of Shanghai's offset); without a zone the same records are
//! `bad_timestamp`, counted, never guessed.

use std::time::Duration;

use crate::support::*;

/// An order at `now`, its `created_at` Shanghai's wall-clock time without an offset, as a
/// producer there writes it (UTC+8 all year: `2026-12-01 18:00:00.123` at 10:00Z).
fn local_order(now: i64) -> String {
    let wall = pipewatch_core::time::format_rfc3339(now + 8 * 3600 * 1000);
    let local = wall.trim_end_matches('Z').replacen('T', " ", 1);
    format!(r#"{{"order_id":"o-{now}","created_at":"{local}"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_times_read_in_their_zone_are_in_sync_and_without_one_are_bad_timestamps() {
    let bootstrap = broker().await;
    let (orders, behaviour, unzoned) = (unique_topic("orders"), unique_topic("behaviour"), unique_topic("unzoned"));
    for t in [&orders, &behaviour, &unzoned] {
        create_topic(bootstrap, t, 1).await.unwrap();
    }
    let traffic = Traffic::start(
        bootstrap,
        10.0,
        vec![
            Target::new(&orders, 0, local_order),
            Target::new(&behaviour, 0, event),
            Target::new(&unzoned, 0, local_order),
        ],
    );
    let body = format!(
        r#"
[[stream]]
name = "orders"
topic = "{orders}"
event_time = {{ field = "/created_at", format = "rfc3339", timezone = "Asia/Shanghai" }}
[[stream]]
name = "behaviour"
topic = "{behaviour}"
event_time = {{ field = "/ts", format = "epoch_millis" }}
[[stream]]
name = "unzoned"
topic = "{unzoned}"
event_time = {{ field = "/created_at", format = "rfc3339" }}
[[pair]]
name = "orders_behaviour"
leader = "orders"
follower = "behaviour"
"#
    );
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    let m = eventually("orders and behaviour ok and in sync", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        let lag = m.value("pipewatch_sync_lag_seconds", &[("pair", "orders_behaviour")]);
        match (m.cause("orders").as_deref(), m.cause("behaviour").as_deref(), lag) {
            (Some("ok"), Some("ok"), Some(lag)) if lag.abs() < 5.0 => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let fresh = m.value("pipewatch_stream_freshness_lag_seconds", &[("stream", "orders")]).unwrap();
    assert!(fresh < 10.0, "orders read in Shanghai's zone are fresh, not 8 h old: {fresh}");
    let bad = m.value("pipewatch_records_invalid_total", &[("stream", "unzoned"), ("reason", "bad_timestamp")]);
    assert!(bad.is_some_and(|n| n > 0.0), "without a zone a local time is a bad timestamp: {bad:?}");
    assert_eq!(m.cause("unzoned").as_deref(), Some("no_data"), "no valid event time read");
    traffic.stop();
    pw.stop().await;
}

/// Behaviour 8 h late to the second (local time read as UTC) is asked about, in the status
/// and on the page, next to its cause; a batch path 8 h late whose delays spread over half
/// an hour is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eight_hour_delay_to_the_second_is_asked_about_and_a_spread_out_one_is_not() {
    let bootstrap = broker().await;
    let (orders, behaviour, batch) = (unique_topic("orders"), unique_topic("behaviour"), unique_topic("batch"));
    for t in [&orders, &behaviour, &batch] {
        create_topic(bootstrap, t, 1).await.unwrap();
    }
    const EIGHT_HOURS: i64 = 8 * 3600 * 1000;
    let mut n = 0i64;
    let spread_out = move |now: i64| {
        n += 1;
        event(now - EIGHT_HOURS - (n * 7919 % 1800) * 1000)
    };
    let traffic = Traffic::start(
        bootstrap,
        10.0,
        vec![
            Target::new(&orders, 0, order),
            Target::new(&behaviour, 0, |now| event(now - EIGHT_HOURS)),
            Target::new(&batch, 0, spread_out),
        ],
    );
    let batch_stream = format!(
        "[[stream]]\nname = \"batch\"\ntopic = \"{batch}\"\nevent_time = {{ field = \"/ts\", format = \"epoch_millis\" }}\n"
    );
    let pw =
        Pipewatch::start(&config(bootstrap, "latest", &orders_and_behaviour(&orders, &behaviour, "", &batch_stream)))
            .await;
    let status = eventually("the question next to event_time_delayed", Duration::from_secs(60), || async {
        let status = pw.status().await;
        let (behaviour, batch) = (stream_status(&status, "behaviour"), stream_status(&status, "batch"));
        let asked = behaviour["cause"] == "event_time_delayed" && behaviour["timezone_hint"].is_string();
        // the batch has had a whole window of records read in real time
        let judged = batch["cause"] == "event_time_delayed" && batch["median_record_delay_seconds"].is_number();
        if asked && judged && status["pairs"][0]["timezone_hint"].is_string() {
            Ok(status)
        } else {
            Err(format!("{behaviour}\n{batch}\n{}", status["pairs"][0]))
        }
    })
    .await;
    let hint = stream_status(&status, "behaviour")["timezone_hint"].as_str().unwrap().to_string();
    assert!(hint.starts_with("behind by 8h 00m ± ") && hint.contains("UTC+08:00"), "{hint}");
    let pair = status["pairs"][0]["timezone_hint"].as_str().unwrap();
    assert!(pair.starts_with("behaviour is behind orders by 8h 00m"), "{pair}");
    assert_eq!(stream_status(&status, "batch")["timezone_hint"], serde_json::Value::Null, "a batch spreads");
    let page = pw.get("/").await.1;
    assert!(page.contains("are event times written as local time?"), "the page asks too");
    traffic.stop();
    pw.stop().await;
}
