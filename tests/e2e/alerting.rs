//! Alerts from rule to the person paged: pipewatch → the real Alertmanager (Debian's
//! `prometheus-alertmanager`, with the shipped config) → a webhook, on the real broker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

fn config_with(bootstrap: &str, orders: &str, behaviour: &str, rules: &str, receivers: &str) -> String {
    config(
        bootstrap,
        "earliest",
        &orders_and_behaviour(orders, behaviour, r#"max_silence = "3s""#, &format!("{rules}\n{receivers}")),
    )
}

async fn topics(bootstrap: &str) -> (String, String) {
    let (orders, behaviour) = (unique_topic("orders"), unique_topic("behaviour"));
    create_topic(bootstrap, &orders, 1).await.unwrap();
    create_topic(bootstrap, &behaviour, 1).await.unwrap();
    (orders, behaviour)
}

/// When the rule's condition first held, from pipewatch's status.
async fn pending_or_firing_since(pw: &Pipewatch, name: &str) -> i64 {
    eventually("the rule's condition to hold", Duration::from_secs(60), || async {
        let (_, body) = pw.get("/api/v1/status").await;
        let status: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        let alert = status["alerts"].as_array().and_then(|a| a.iter().find(|a| a["name"] == name)).cloned();
        match alert {
            Some(a) if a["state"] == "pending" || a["state"] == "firing" => {
                a["since_ms"].as_i64().ok_or("no since".into())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_silo_reaches_alertmanager_with_its_cause_and_resolves() {
    let bootstrap = broker().await;
    let (orders, behaviour) = topics(bootstrap).await;
    let sink = Sink::start().await;
    let am = Alertmanager::start(&sink.url).await;
    let (delayed, stopped) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicBool::new(false)));
    let stop = orders_and_behaviour_traffic(bootstrap, &orders, &behaviour, delayed.clone(), stopped);
    let receiver = format!(
        "[[receiver]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"{}\"\nresend_interval = \"5s\"\n",
        am.url()
    );
    let pw = Pipewatch::start(&config_with(bootstrap, &orders, &behaviour, SYNC_RULE, &receiver)).await;

    let crossing = pending_or_firing_since(&pw, "BehaviourBehindOrders").await;
    let alert = eventually("the alert in Alertmanager", Duration::from_secs(60), || async {
        am.alert("BehaviourBehindOrders").await.ok_or_else(|| "not there".to_string())
    })
    .await;
    let latency_ms = now_ms() - crossing;
    eprintln!("crossing → Alertmanager: {latency_ms} ms (for = 2000 ms, so {} ms after `for`)", latency_ms - 2000);
    assert!(latency_ms <= 2000 + 2000, "arrived {latency_ms} ms after the crossing");
    assert_eq!(alert["labels"]["cause"], "event_time_delayed", "{alert}");
    assert_eq!(alert["labels"]["severity"], "page", "{alert}");
    assert_eq!(alert["labels"]["pair"], "orders_behaviour", "{alert}");
    let summary = alert["annotations"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with("behaviour is 8h 00m behind orders") || summary.starts_with("behaviour is 7h 59m"),
        "{alert}"
    );
    assert_eq!(alert["annotations"]["impact"], "Behaviour analysis, segmentation and ad targeting run on stale data.");
    assert!(alert["generatorURL"].as_str().unwrap_or_default().ends_with("/api/v1/status"), "{alert}");
    // behind Alertmanager, the webhook hears of it under its cause
    eventually("the notification at the webhook", Duration::from_secs(30), || async {
        let bodies = sink.bodies();
        if bodies.iter().any(|b| b["commonLabels"]["cause"] == "event_time_delayed" && b["status"] == "firing") {
            Ok(())
        } else {
            Err(format!("{bodies:?}"))
        }
    })
    .await;

    // recovery: behaviour in real time again → resolved in Alertmanager
    delayed.store(false, Ordering::Relaxed);
    eventually("the alert resolved in Alertmanager", Duration::from_secs(60), || async {
        match am.alert("BehaviourBehindOrders").await {
            None => Ok(()),
            Some(a) if a["status"]["state"] == "resolved" => Ok(()),
            Some(a) => Err(a.to_string()),
        }
    })
    .await;
    eventually("the resolved notification at the webhook", Duration::from_secs(30), || async {
        let bodies = sink.bodies();
        if bodies.iter().any(|b| b["status"] == "resolved") {
            Ok(())
        } else {
            Err(format!("{} bodies", bodies.len()))
        }
    })
    .await;
    stop.stop();
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_producer_pages_once_naming_producer_silent() {
    let bootstrap = broker().await;
    let (orders, behaviour) = topics(bootstrap).await;
    let sink = Sink::start().await;
    let am = Alertmanager::start(&sink.url).await;
    let (delayed, stopped) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let stop = orders_and_behaviour_traffic(bootstrap, &orders, &behaviour, delayed, stopped.clone());
    let rules = r#"
[[alert]]
name = "BehaviourSilent"
kind = "silence"
target = "behaviour"
threshold = "5s"
severity = "page"
impact = "Behaviour data stops reaching analytics."
[[alert]]
name = "BehaviourStale"
kind = "freshness_lag"
target = "behaviour"
threshold = "6s"
severity = "page"
impact = "Segmentation works on old behaviour."
[[alert]]
name = "BehaviourBehindOrders"
kind = "sync_lag"
target = "orders_behaviour"
threshold = "6s"
severity = "page"
impact = "Behaviour and orders no longer join."
[[alert]]
name = "BehaviourVolumeLow"
kind = "rate_low"
target = "behaviour"
threshold = 1
severity = "warning"
impact = "Fewer behaviour events than expected."
"#;
    let receiver = format!("[[receiver]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"{}\"\n", am.url());
    let pw = Pipewatch::start(&config_with(bootstrap, &orders, &behaviour, rules, &receiver)).await;
    pw.wait_cause("behaviour", "ok", Duration::from_secs(60)).await;
    let before = sink.bodies().len();

    stopped.store(true, Ordering::Relaxed);
    // every symptom fires, all of them with the root cause
    eventually("all four alerts in Alertmanager", Duration::from_secs(60), || async {
        let alerts = am.alerts().await;
        let names: Vec<String> =
            alerts.iter().filter_map(|a| a["labels"]["alertname"].as_str().map(String::from)).collect();
        if names.len() >= 4 {
            Ok(())
        } else {
            let (_, status) = pw.get("/api/v1/status").await;
            let status: Value = serde_json::from_str(&status).unwrap_or_default();
            let m = pw.metrics().await;
            let sent = m.0.lines().filter(|l| l.starts_with("pipewatch_alert_")).collect::<Vec<_>>().join("\n");
            Err(format!("{names:?}\n{}\n{sent}", status["alerts"]))
        }
    })
    .await;
    for a in am.alerts().await {
        assert_eq!(a["labels"]["cause"], "producer_silent", "{a}");
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // let Alertmanager flush its group
    let bodies: Vec<Value> = sink.bodies().into_iter().skip(before).collect();
    let groups: std::collections::BTreeSet<String> = bodies.iter().map(|b| b["groupKey"].to_string()).collect();
    assert_eq!(groups.len(), 1, "one notification group: {bodies:#?}");
    assert!(bodies.iter().all(|b| b["commonLabels"]["cause"] == "producer_silent"), "{bodies:#?}");
    stop.stop();
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alertmanager_outage_loses_no_alert() {
    let bootstrap = broker().await;
    let (orders, behaviour) = topics(bootstrap).await;
    let sink = Sink::start().await;
    let mut am = Alertmanager::start(&sink.url).await;
    let (delayed, stopped) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicBool::new(false)));
    let stop = orders_and_behaviour_traffic(bootstrap, &orders, &behaviour, delayed, stopped.clone());
    let rules = format!(
        "{SYNC_RULE}\n[[alert]]\nname = \"BehaviourSilent\"\nkind = \"silence\"\ntarget = \"behaviour\"\nthreshold = \"5s\"\nseverity = \"page\"\nimpact = \"Behaviour data stops reaching analytics.\"\n"
    );
    let receiver = format!("[[receiver]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"{}\"\nresend_interval = \"5s\"\ntimeout = \"2s\"\n", am.url());
    let pw = Pipewatch::start(&config_with(bootstrap, &orders, &behaviour, &rules, &receiver)).await;
    eventually("the alert in Alertmanager", Duration::from_secs(60), || async {
        am.alert("BehaviourBehindOrders").await.ok_or_else(|| "not there".to_string())
    })
    .await;

    // Alertmanager goes away for 30 s; meanwhile a second alert fires
    am.stop();
    let down_at = Instant::now();
    stopped.store(true, Ordering::Relaxed);
    pw.wait_cause("behaviour", "producer_silent", Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(down_at.elapsed())).await;
    let m = pw.metrics().await;
    let retried = m.value("pipewatch_alert_notifications_total", &[("receiver", "am"), ("result", "retried")]).unwrap();
    assert!(retried > 0.0, "sends failed while Alertmanager was down");
    assert!(m.value("pipewatch_alert_queue_depth", &[("receiver", "am")]).unwrap() > 0.0, "{}", m.0);

    am.spawn().await;
    eventually("both alerts in Alertmanager after its restart", Duration::from_secs(60), || async {
        let (a, b) = (am.alert("BehaviourBehindOrders").await, am.alert("BehaviourSilent").await);
        if a.is_some() && b.is_some() {
            Ok(())
        } else {
            Err(format!("{a:?} {b:?}"))
        }
    })
    .await;
    let m = pw.metrics().await;
    let count =
        |result| m.value("pipewatch_alert_notifications_total", &[("receiver", "am"), ("result", result)]).unwrap();
    assert_eq!((count("failed"), count("dropped")), (0.0, 0.0), "nothing rejected or dropped");
    assert!(count("sent") >= 2.0);
    eventually("the queue drained", Duration::from_secs(20), || async {
        match pw.metrics().await.value("pipewatch_alert_queue_depth", &[("receiver", "am")]) {
            Some(d) if d == 0.0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    stop.stop();
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_receiver_gets_firing_and_resolved_bodies() {
    let bootstrap = broker().await;
    let (orders, behaviour) = topics(bootstrap).await;
    let sink = Sink::start().await;
    let (delayed, stopped) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicBool::new(false)));
    let stop = orders_and_behaviour_traffic(bootstrap, &orders, &behaviour, delayed.clone(), stopped);
    let receiver = format!("[[receiver]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n", sink.url);
    let pw = Pipewatch::start(&config_with(bootstrap, &orders, &behaviour, SYNC_RULE, &receiver)).await;
    let firing = eventually("a firing body", Duration::from_secs(60), || async {
        sink.bodies().into_iter().find(|b| b["status"] == "firing").ok_or_else(|| "none yet".to_string())
    })
    .await;
    assert_eq!(firing["version"], "4");
    assert_eq!(firing["receiver"], "hook");
    let alert = &firing["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"]["alertname"], "BehaviourBehindOrders");
    assert_eq!(alert["labels"]["cause"], "event_time_delayed");
    assert!(alert["annotations"]["summary"].as_str().unwrap_or_default().contains("behind orders"), "{alert}");
    delayed.store(false, Ordering::Relaxed);
    let resolved = eventually("a resolved body", Duration::from_secs(60), || async {
        sink.bodies().into_iter().find(|b| b["status"] == "resolved").ok_or_else(|| "none yet".to_string())
    })
    .await;
    let alert = &resolved["alerts"][0];
    assert_eq!(alert["status"], "resolved");
    assert_eq!(alert["startsAt"], firing["alerts"][0]["startsAt"], "the same alert");
    assert_ne!(alert["endsAt"], "0001-01-01T00:00:00Z");
    stop.stop();
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_pages_once_and_inhibits_its_symptoms() {
    let sink = Sink::start().await;
    let am = Alertmanager::start(&sink.url).await;
    let dead = format!("127.0.0.1:{}", pipewatch_kafka::testing::free_port());
    let receiver = format!("[[receiver]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"{}\"\n", am.url());
    let pw = Pipewatch::start(&config_with(&dead, "orders", "behaviour", SYNC_RULE, &receiver)).await;
    let alert = eventually("KafkaUnreachable in Alertmanager", Duration::from_secs(60), || async {
        am.alert("KafkaUnreachable").await.ok_or_else(|| "not there".to_string())
    })
    .await;
    assert_eq!(alert["labels"]["cause"], "kafka_unreachable", "{alert}");
    assert_eq!(alert["labels"]["severity"], "page", "{alert}");
    // the per-stream rule is held back, not fired
    let (_, status) = pw.get("/api/v1/status").await;
    let status: Value = serde_json::from_str(&status).unwrap();
    let rule =
        status["alerts"].as_array().unwrap().iter().find(|a| a["name"] == "BehaviourBehindOrders").unwrap().clone();
    assert_eq!(
        (rule["state"].as_str(), rule["held_back"].as_str()),
        (Some("inactive"), Some("kafka_unreachable")),
        "{rule}"
    );
    // a symptom that fired before the cluster went away (say, from another replica) is
    // inhibited by the shipped config
    let now = now_ms();
    let symptom = serde_json::json!([{
        "labels": {"alertname": "BehaviourBehindOrders", "cause": "event_time_delayed", "severity": "page", "pair": "orders_behaviour"},
        "annotations": {"summary": "behaviour is 8h 00m behind orders"},
        "startsAt": pipewatch_core::time::format_rfc3339(now),
        "endsAt": pipewatch_core::time::format_rfc3339(now + 300_000),
    }]);
    let addr = format!("127.0.0.1:{}", am.port).parse().unwrap();
    let (code, body) = http_post_json(addr, "/api/v2/alerts", &symptom.to_string()).await.unwrap();
    assert_eq!(code, 200, "{body}");
    eventually("the symptom suppressed", Duration::from_secs(20), || async {
        match am.alert("BehaviourBehindOrders").await {
            Some(a)
                if a["status"]["state"] == "suppressed"
                    && !a["status"]["inhibitedBy"].as_array().is_none_or(Vec::is_empty) =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for body in sink.bodies() {
        let names: Vec<&str> =
            body["alerts"].as_array().unwrap().iter().filter_map(|a| a["labels"]["alertname"].as_str()).collect();
        assert!(!names.contains(&"BehaviourBehindOrders"), "an inhibited symptom paged: {body}");
    }
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejecting_receiver_is_counted_not_retried_and_a_failing_one_is_retried() {
    let bootstrap = broker().await;
    let (orders, behaviour) = topics(bootstrap).await;
    let sink = Sink::start().await;
    let (delayed, stopped) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicBool::new(false)));
    let stop = orders_and_behaviour_traffic(bootstrap, &orders, &behaviour, delayed, stopped);
    let receivers = format!(
        "[[receiver]]\nname = \"rejecting\"\nkind = \"webhook\"\nurl = \"{0}reject\"\n\
         [[receiver]]\nname = \"failing\"\nkind = \"webhook\"\nurl = \"{0}broken\"\n\
         [shutdown]\ngrace = \"1s\"\n",
        sink.url
    );
    let pw = Pipewatch::start(&config_with(bootstrap, &orders, &behaviour, SYNC_RULE, &receivers)).await;
    let count = |m: &Metrics, receiver: &str, result: &str| {
        m.value("pipewatch_alert_notifications_total", &[("receiver", receiver), ("result", result)]).unwrap_or(-1.0)
    };
    eventually("a 4xx counted as failed, a 5xx retried", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        let seen = (count(&m, "rejecting", "failed"), count(&m, "failing", "retried"));
        if seen.0 >= 1.0 && seen.1 >= 2.0 {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m = pw.metrics().await;
    assert_eq!(count(&m, "rejecting", "failed"), 1.0, "the rejected batch is not sent again");
    assert_eq!(count(&m, "rejecting", "retried"), 0.0);
    assert_eq!(m.value("pipewatch_alert_queue_depth", &[("receiver", "rejecting")]), Some(0.0));
    assert_eq!(
        m.value("pipewatch_alert_queue_depth", &[("receiver", "failing")]),
        Some(1.0),
        "kept until it goes through"
    );
    stop.stop();
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_delivers_the_queued_firing_and_resolve_when_the_receiver_comes_back_within_the_grace() {
    let bootstrap = broker().await;
    let (orders, behaviour) = topics(bootstrap).await;
    // the receiver's port: nothing listens there until after SIGTERM
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_addr = hook.local_addr().unwrap();
    drop(hook);
    let (delayed, stopped) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicBool::new(false)));
    let stop = orders_and_behaviour_traffic(bootstrap, &orders, &behaviour, delayed.clone(), stopped);
    let rest = format!(
        "{SYNC_RULE}\n[[receiver]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://{hook_addr}/\"\n\
         [shutdown]\ngrace = \"20s\"\n"
    );
    let mut pw = Daemon::start(&config_with(bootstrap, &orders, &behaviour, "", &rest)).await;
    let fired = [("alert", "BehaviourBehindOrders"), ("severity", "page")];
    eventually("BehaviourBehindOrders firing", Duration::from_secs(60), || async {
        match pw.metrics().await.value("pipewatch_alert_active", &fired) {
            Some(1.0) => Ok(()),
            other => Err(format!("alert_active {other:?}")),
        }
    })
    .await;
    delayed.store(false, Ordering::Relaxed);
    // resolved, and both transitions wait for the receiver, which has been retried
    let queued = eventually("the firing and the resolve queued", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        let active = m.value("pipewatch_alert_active", &fired);
        let depth = m.value("pipewatch_alert_queue_depth", &[("receiver", "hook")]);
        let retried = m.value("pipewatch_alert_notifications_total", &[("receiver", "hook"), ("result", "retried")]);
        match (active, depth, retried) {
            (Some(a), Some(d), Some(r)) if a == 0.0 && d == 2.0 && r > 0.0 => Ok(r),
            other => Err(format!("active, queue depth, retried: {other:?}")),
        }
    })
    .await;
    eprintln!("queued behind a dead receiver after {queued} failed requests");
    stop.stop();

    let come_back = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        Sink::serve(tokio::net::TcpListener::bind(hook_addr).await.expect("bind the receiver's port again"))
    };
    let (exit, sink) = tokio::join!(pw.terminate(Duration::from_secs(40)), come_back);
    let (status, took) = exit;
    assert!(status.success(), "exit {status:?} after SIGTERM:\n{}", pw.log());
    assert_eq!(
        sink.alerts(),
        [
            ("BehaviourBehindOrders".to_string(), "firing".to_string()),
            ("BehaviourBehindOrders".into(), "resolved".into())
        ],
        "what the receiver got; log:\n{}",
        pw.log()
    );
    assert!(took >= Duration::from_secs(3) && took < Duration::from_secs(20), "exit after {took:?}");
    let log = pw.log();
    assert!(log.contains("delivering queued notifications before exit"), "{log}");
    assert!(!log.contains("not delivered at shutdown"), "{log}");
    eprintln!("delivered and exited {took:?} after SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_receiver_that_stays_down_exits_after_the_grace_and_counts_what_was_lost() {
    // No cluster at all: the built-in KafkaUnreachable fires and waits for a dead receiver.
    let dead = format!("127.0.0.1:{}", pipewatch_kafka::testing::free_port());
    let hook = format!("127.0.0.1:{}", pipewatch_kafka::testing::free_port());
    let body = format!(
        "{}\n[[receiver]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://{hook}/\"\n[shutdown]\ngrace = \"2s\"\n",
        orders_stream("orders", "")
    );
    let mut pw = Daemon::start(&config(&dead, "latest", &body)).await;
    eventually("KafkaUnreachable queued for the dead receiver", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        let active = m.value("pipewatch_alert_active", &[("alert", "KafkaUnreachable")]);
        let depth = m.value("pipewatch_alert_queue_depth", &[("receiver", "hook")]);
        match (active, depth) {
            (Some(a), Some(d)) if a == 1.0 && d == 1.0 => Ok(()),
            other => Err(format!("active, queue depth: {other:?}")),
        }
    })
    .await;
    let (status, took) = pw.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "exit {status:?}:\n{}", pw.log());
    assert!(took >= Duration::from_secs(2), "exited {took:?} after SIGTERM, before the grace ran out");
    let log = pw.log();
    let lost =
        log.lines().find(|l| l.contains("notifications not delivered at shutdown")).unwrap_or_else(|| panic!("{log}"));
    assert!(lost.contains("receiver=hook") && lost.contains("notifications=1"), "{lost}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_over_tls_with_basic_auth_and_a_bearer_token_never_show_their_secrets() {
    let dir = std::env::temp_dir().join(format!("pipewatch-tls-receivers-{}", std::process::id()));
    certificates(&dir);
    let (password, wrong) = ("am-password-1234", "wrong-password-5678");
    for (file, secret) in [("am-password", password), ("wrong-password", wrong), ("token", SINK_TOKEN)] {
        std::fs::write(dir.join(file), format!("{secret}\n")).unwrap();
    }
    let sink = Sink::start().await;
    let am = Alertmanager::start_tls(&sink.url, &dir, "pipewatch", password).await;
    let https = format!("https://127.0.0.1:{}", am.port);
    let ca = dir.join("ca.pem").display().to_string();
    let secret = |f: &str| dir.join(f).display().to_string();
    let receivers = format!(
        "[[receiver]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"{https}\"\nca_file = \"{ca}\"\n\
         basic_auth = {{ username = \"pipewatch\", password_file = \"{}\" }}\n\
         [[receiver]]\nname = \"am-wrong\"\nkind = \"alertmanager\"\nurl = \"{https}\"\nca_file = \"{ca}\"\n\
         basic_auth = {{ username = \"pipewatch\", password_file = \"{}\" }}\n\
         [[receiver]]\nname = \"am-untrusted\"\nkind = \"alertmanager\"\nurl = \"{https}\"\n\
         basic_auth = {{ username = \"pipewatch\", password_file = \"{}\" }}\n\
         [[receiver]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}bearer\"\nbearer_token_file = \"{}\"\n\
         [shutdown]\ngrace = \"1s\"\n",
        secret("am-password"),
        secret("wrong-password"),
        secret("am-password"),
        sink.url,
        secret("token"),
    );
    // No cluster: the built-in KafkaUnreachable fires at once, for every receiver.
    let dead = format!("127.0.0.1:{}", pipewatch_kafka::testing::free_port());
    let mut pw =
        Daemon::start(&config(&dead, "latest", &format!("{}\n{receivers}", orders_stream("orders", "")))).await;
    let count = |m: &Metrics, receiver: &str, result: &str| {
        m.value("pipewatch_alert_notifications_total", &[("receiver", receiver), ("result", result)]).unwrap_or(-1.0)
    };
    eventually(
        "KafkaUnreachable through Alertmanager over TLS, and at the bearer webhook",
        Duration::from_secs(60),
        || async {
            let alerts = sink.alerts();
            let through_am = sink
                .bodies()
                .iter()
                .any(|b| b["receiver"] != "hook" && b["alerts"][0]["labels"]["alertname"] == "KafkaUnreachable");
            let m = pw.metrics().await;
            let seen = (
                count(&m, "am", "sent"),
                count(&m, "hook", "sent"),
                count(&m, "am-wrong", "failed"),
                count(&m, "am-untrusted", "retried"),
            );
            if through_am
                && alerts.iter().filter(|a| a.0 == "KafkaUnreachable").count() >= 2
                && seen.0 >= 1.0
                && seen.1 >= 1.0
                && seen.2 >= 1.0
                && seen.3 >= 1.0
            {
                Ok(())
            } else {
                Err(format!("sent/failed/retried {seen:?}; sink {:?}", sink.bodies()))
            }
        },
    )
    .await;
    let m = pw.metrics().await;
    assert_eq!(count(&m, "am-wrong", "sent"), 0.0, "a wrong password is not let in");
    assert_eq!(count(&m, "am-wrong", "retried"), 0.0, "a 401 is not retried");
    assert_eq!(count(&m, "am-untrusted", "sent"), 0.0, "a certificate of an unknown CA is not trusted");
    let (_, status) = http_get(pw.addr, "/api/v1/status").await;
    let (_, page) = http_get(pw.addr, "/").await;
    let log = pw.log();
    assert!(log.contains("receiver rejected alerts") && log.contains("am-wrong"), "{log}");
    for (what, text) in [("status", &status), ("page", &page), ("metrics", &m.0), ("log", &log)] {
        for s in [password, wrong, SINK_TOKEN] {
            assert!(!text.contains(s), "a secret is in the {what}:\n{text}");
        }
    }
    let (status, _) = pw.terminate(Duration::from_secs(30)).await;
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_answering_500_for_a_minute_then_200_gets_every_transition_in_order() {
    let bootstrap = broker().await;
    let (orders, behaviour) = topics(bootstrap).await;
    let sink = Sink::start().await;
    sink.failing.store(true, Ordering::Relaxed);
    let (delayed, stopped) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicBool::new(false)));
    let stop = orders_and_behaviour_traffic(bootstrap, &orders, &behaviour, delayed.clone(), stopped.clone());
    let receiver = format!("[[receiver]]\nname = \"flaky\"\nkind = \"webhook\"\nurl = \"{}flaky\"\n", sink.url);
    let silence =
        "[[alert]]\nname = \"BehaviourSilent\"\nkind = \"silence\"\ntarget = \"behaviour\"\nthreshold = \"3s\"\n\
                   severity = \"page\"\nimpact = \"Segments stop updating.\"\n";
    let rules = format!("{SYNC_RULE}\n{silence}");
    let pw = Pipewatch::start(&config_with(bootstrap, &orders, &behaviour, &rules, &receiver)).await;
    let started = Instant::now();
    // three transitions while the receiver answers 500: the silo fires and resolves,
    // then behaviour stops and its silence fires
    let steps: [(&str, f64, &dyn Fn()); 3] = [
        ("BehaviourBehindOrders", 1.0, &|| delayed.store(false, Ordering::Relaxed)),
        ("BehaviourBehindOrders", 0.0, &|| stopped.store(true, Ordering::Relaxed)),
        ("BehaviourSilent", 1.0, &|| {}),
    ];
    for (alert, want, then) in steps {
        let active = [("alert", alert), ("severity", "page")];
        eventually(&format!("{alert} active {want}"), Duration::from_secs(60), || async {
            match pw.metrics().await.value("pipewatch_alert_active", &active) {
                Some(v) if v == want => Ok(()),
                other => {
                    let st = pw.status().await;
                    Err(format!("{other:?}; pairs {}; alerts {}", st["pairs"], st["alerts"]))
                }
            }
        })
        .await;
        then();
    }
    let m = pw.metrics().await;
    assert_eq!(m.value("pipewatch_alert_queue_depth", &[("receiver", "flaky")]), Some(3.0), "{}", m.0);
    tokio::time::sleep(Duration::from_secs(60).saturating_sub(started.elapsed())).await;
    sink.failing.store(false, Ordering::Relaxed);
    let back = Instant::now();
    let got = eventually("every transition at the receiver", Duration::from_secs(60), || async {
        let got = sink.alerts();
        if got.len() >= 3 {
            Ok(got)
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
    let want =
        [("BehaviourBehindOrders", "firing"), ("BehaviourBehindOrders", "resolved"), ("BehaviourSilent", "firing")];
    let want: Vec<(String, String)> = want.iter().map(|(a, s)| (a.to_string(), s.to_string())).collect();
    assert_eq!(got, want, "in order, none lost");
    let m = pw.metrics().await;
    let count = |r: &str| m.value("pipewatch_alert_notifications_total", &[("receiver", "flaky"), ("result", r)]);
    assert!(count("retried").is_some_and(|n| n >= 3.0), "{}", m.0);
    assert_eq!(count("dropped"), Some(0.0));
    eprintln!("after {:?} of 500s: delivered {:?} after the receiver came back", started.elapsed(), back.elapsed());
    stop.stop();
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_under_traffic_and_restarted_pages_once_and_recovers_to_ok() {
    // A broker of its own, crashed (SIGKILL) and started again on its data.
    let mut broker = tokio::task::spawn_blocking(|| KafkaBroker::start(pipewatch_kafka::testing::free_port()))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = broker.bootstrap.clone();
    let (orders, behaviour) = topics(&bootstrap).await;
    let sink = Sink::start().await;
    let (delayed, stopped) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let stop = orders_and_behaviour_traffic(&bootstrap, &orders, &behaviour, delayed, stopped);
    let silence = |stream: &str| {
        format!(
            "[[alert]]\nname = \"{stream}Silent\"\nkind = \"silence\"\ntarget = \"{stream}\"\nthreshold = \"3s\"\n\
             severity = \"page\"\nimpact = \"Nothing arrives.\"\n"
        )
    };
    let rules = format!("{SYNC_RULE}\n{}\n{}", silence("orders"), silence("behaviour"));
    let receiver = format!("[[receiver]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n", sink.url);
    let pw = Pipewatch::start(&config_with(&bootstrap, &orders, &behaviour, &rules, &receiver)).await;
    for stream in ["orders", "behaviour"] {
        pw.wait_cause(stream, "ok", Duration::from_secs(60)).await;
    }
    tokio::task::block_in_place(|| broker.kill_hard());
    let pages = |sink: &Sink| sink.alerts().into_iter().filter(|(a, _)| a == "KafkaUnreachable").count();
    eventually("KafkaUnreachable at the receiver", Duration::from_secs(60), || async {
        if pages(&sink) == 1 {
            Ok(())
        } else {
            Err(format!("{:?}", sink.alerts()))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    tokio::task::block_in_place(|| broker.restart()).unwrap_or_else(|e| panic!("{e}"));
    for stream in ["orders", "behaviour"] {
        pw.wait_cause(stream, "ok", Duration::from_secs(90)).await;
    }
    eventually("KafkaUnreachable resolved", Duration::from_secs(30), || async {
        if pages(&sink) == 2 {
            Ok(())
        } else {
            Err(format!("{:?}", sink.alerts()))
        }
    })
    .await;
    // a while later: the crash paged once, and nothing else did
    tokio::time::sleep(Duration::from_secs(8)).await;
    let got = sink.alerts();
    let want: Vec<(String, String)> = [("KafkaUnreachable", "firing"), ("KafkaUnreachable", "resolved")]
        .iter()
        .map(|(a, s)| (a.to_string(), s.to_string()))
        .collect();
    assert_eq!(got, want, "what reached the receiver");
    let records = pw.metrics().await.value("pipewatch_records_total", &[("stream", "orders")]);
    eprintln!("after the crash: {got:?}; orders read {records:?}");
    stop.stop();
    pw.stop().await;
    drop(broker);
}
