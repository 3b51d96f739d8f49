//! Segments on the real broker: one collection path (`channel=app`) stops while the
//! stream's total rate stays the same; a new value appearing is not a fault; ten
//! thousand distinct values stay within the cap.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// Behaviour events at [`RATE`] by the clock (a slow moment is made up at once), their
/// channel taken in turn from `channels` (changeable): the total rate does not depend on
/// how many channels flow.
const RATE: f64 = 20.0;

fn behaviour(bootstrap: &str, topic: &str, channels: Arc<Mutex<Vec<&'static str>>>) -> Traffic {
    let mut n = 0usize;
    let payload = move |now: i64| {
        let list = channels.lock().unwrap().clone();
        let channel = list[n % list.len()];
        n += 1;
        let event = if n.is_multiple_of(10) { "purchase" } else { "view" };
        format!(r#"{{"channel":"{channel}","event":"{event}","ts":{now}}}"#)
    };
    Traffic::start(bootstrap, RATE, vec![Target::new(topic, 0, payload)])
}

/// The stream's rate as pipewatch measures it, averaged over five readings a second apart
/// (the test's producer may stall for a moment on a busy machine and then catch up).
async fn mean_rate(pw: &Pipewatch, name: &str) -> f64 {
    let mut sum = 0.0;
    for _ in 0..5 {
        sum += stream_status(&pw.status().await, name)["rate_records_per_second"].as_f64().unwrap_or(0.0);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    sum / 5.0
}

fn value<'a>(st: &'a Value, segment: &str, value: &str) -> &'a Value {
    let segments = st["segments"].as_array().map(Vec::as_slice).unwrap_or_default();
    let g = segments.iter().find(|g| g["name"] == segment);
    g.and_then(|g| g["values"].as_array()).and_then(|v| v.iter().find(|v| v["value"] == value)).unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_that_stops_is_named_while_the_stream_flows() {
    let bootstrap = broker().await;
    let (topic, clicks) = (unique_topic("behaviour"), unique_topic("clicks"));
    create_topic(bootstrap, &topic, 1).await.unwrap();
    create_topic(bootstrap, &clicks, 1).await.unwrap();
    let sink = Sink::start().await;
    let body = format!(
        r#"
[[stream]]
name = "behaviour"
topic = "{topic}"
event_time = {{ field = "/ts", format = "epoch_millis" }}
max_silence = "5s"
segments = [{{ name = "channel", field = "/channel" }}, {{ name = "event", field = "/event" }}]
[[stream]]
name = "clicks"
topic = "{clicks}"
event_time = {{ field = "/ts", format = "epoch_millis" }}
segments = [{{ name = "user", field = "/user" }}]
[[alert]]
name = "BehaviourPathStopped"
kind = "segment_silence"
target = "behaviour"
threshold = "5s"
for = "2s"
impact = "First purchases of app users are not captured: segmentation and ad targeting miss them."
"#
    ) + &webhook(&sink.url);
    let channels = Arc::new(Mutex::new(vec!["web", "app", "email"]));
    let stop = behaviour(bootstrap, &topic, channels.clone());
    let pw = Pipewatch::start(&config(bootstrap, "latest", &body)).await;
    eventually("every channel judged as flowing", Duration::from_secs(60), || async {
        let st = stream_status(&pw.status().await, "behaviour");
        let judged = ["web", "app", "email"].iter().all(|c| value(&st, "channel", c)["judged"] == true);
        if judged && st["cause"] == "ok" && st["rate_window_full"] == true {
            Ok(st)
        } else {
            Err(format!("{st}"))
        }
    })
    .await;
    let rate_before = mean_rate(&pw, "behaviour").await;

    // a new channel appears: counted, not a fault
    channels.lock().unwrap().push("sms");
    eventually("sms counted", Duration::from_secs(30), || async {
        let st = stream_status(&pw.status().await, "behaviour");
        if value(&st, "channel", "sms")["records"].as_u64().unwrap_or(0) > 10 {
            Ok(())
        } else {
            Err(format!("{st}"))
        }
    })
    .await;
    assert_eq!(stream_status(&pw.status().await, "behaviour")["cause"], "ok");

    // the app path stops; the others carry the same total
    channels.lock().unwrap().retain(|c| *c != "app");
    let stopped = Instant::now();
    let st = eventually("segment_silent naming channel=app", Duration::from_secs(60), || async {
        let st = stream_status(&pw.status().await, "behaviour");
        if st["cause"] == "segment_silent" {
            Ok(st)
        } else {
            Err(format!("{}", st["cause"]))
        }
    })
    .await;
    eprintln!("channel=app stopped: segment_silent after {:.1} s", stopped.elapsed().as_secs_f64());
    assert_eq!(st["segment_silent"], "channel=app", "{st}");
    assert_eq!(value(&st, "channel", "app")["silent"], true);
    for other in ["web", "email", "sms"] {
        assert_eq!(value(&st, "channel", other)["silent"], false, "{other}: {st}");
    }
    // the total barely moves (losing app's quarter uncovered would be −25 %; 10 % leaves
    // room for a test producer slowed by the other tests on 2 cores)
    let rate_after = mean_rate(&pw, "behaviour").await;
    assert!((rate_after - rate_before).abs() <= rate_before * 0.10, "total {rate_before} → {rate_after}");
    let m = pw.metrics().await;
    let app = [("stream", "behaviour"), ("segment", "channel"), ("value", "app")];
    assert!(m.value("pipewatch_segment_silence_seconds", &app).unwrap() > 5.0);
    assert_eq!(m.value("pipewatch_segment_used_to_flow", &app), Some(1.0));
    let page = pw.get("/").await.1;
    assert!(page.contains("no records of <code>channel=app</code>"), "the page names it");

    let alert = eventually("the page at the webhook", Duration::from_secs(30), || async {
        let alerts =
            sink.bodies().iter().flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default()).collect::<Vec<_>>();
        alerts.into_iter().find(|a| a["labels"]["alertname"] == "BehaviourPathStopped").ok_or("none yet".to_string())
    })
    .await;
    let summary = alert["annotations"]["summary"].as_str().unwrap_or_default();
    assert!(summary.starts_with("no behaviour channel=app records for"), "{alert}");
    assert_eq!(alert["labels"]["cause"], "segment_silent");

    // the path comes back: ok, resolved
    channels.lock().unwrap().push("app");
    eventually("ok again", Duration::from_secs(60), || async {
        let st = stream_status(&pw.status().await, "behaviour");
        if st["cause"] == "ok" {
            Ok(())
        } else {
            Err(format!("{}", st["cause"]))
        }
    })
    .await;
    eventually("the resolve", Duration::from_secs(30), || async {
        let alerts = sink.alerts();
        if alerts.contains(&("BehaviourPathStopped".into(), "resolved".into())) {
            Ok(())
        } else {
            Err(format!("{alerts:?}"))
        }
    })
    .await;
    assert_eq!(sink.alerts().len(), 2, "one page for the fault: {:?}", sink.alerts());

    // ten thousand distinct users thrown at a segment: the cap (50) holds, the rest is other
    let c = clicks.clone();
    tokio::task::spawn_blocking(move || {
        let producer = TestProducer::new(bootstrap);
        let now = now_ms();
        for i in 0..10_000 {
            producer.send(&c, 0, Some(format!(r#"{{"user":"u{i}","ts":{now}}}"#).as_bytes()));
        }
        producer.flush();
    })
    .await
    .unwrap();
    let m = eventually("ten thousand clicks counted", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        match m.value("pipewatch_segment_overflow_records_total", &[("stream", "clicks"), ("segment", "user")]) {
            Some(n) if n >= 9950.0 => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let series = m.0.lines().filter(|l| l.starts_with("pipewatch_segment_records_total{stream=\"clicks\"")).count();
    assert_eq!(series, 51, "50 values and other");
    let other = [("stream", "clicks"), ("segment", "user"), ("value", "other")];
    assert_eq!(m.value("pipewatch_segment_records_total", &other), Some(9950.0));
    promtool_check(&m.0).await;
    stop.stop();
    pw.stop().await;
}
