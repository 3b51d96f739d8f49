//! Kafka Connect named as the cause: the real worker (behind basic auth) with Debezium's
//! PostgreSQL connector and the tests' own sink, polled by pipewatch through its REST API.
//!
//! - A CDC task that fails (its database stopped) is the stream's cause
//!   `connector_failed` at the next poll, named with the task, the worker and the error,
//!   and its alert reaches the webhook long before `max_silence`; restarted through the
//!   REST API by the test it resolves. A paused connector is `connector_paused`.
//! - A sink task killed by a record its converter cannot read makes its consumer
//!   `connector_failed`, not `consumer_stopped`; a sink nobody listed is watched as the
//!   consumer of its group all the same, a listed one once. Connect cut off is `connect_unreachable`:
//!   the built-in alert fires, `/readyz` says so, the streams keep their Kafka-level
//!   causes and the connector alert is held, not resolved. A wrong password is named.

use std::time::{Duration, Instant};

use pipewatch_kafka::testing::{create_topic, unique_topic, TestProducer};

use crate::support::*;

/// The `[[connect]]` entry for the shared worker at `url` (its password in a file).
fn connect_section(name: &str, url: &str, password: &str, poll: &str) -> String {
    let file = std::env::temp_dir().join(format!("{}-password", unique_topic("connect")));
    std::fs::write(&file, format!("{password}\n")).unwrap();
    format!(
        "[[connect]]\nname = \"{name}\"\nurl = \"{url}\"\npoll = \"{poll}\"\n\
         basic_auth = {{ username = \"{CONNECT_USER}\", password_file = \"{}\" }}\n",
        file.display()
    )
}

/// The alert `name` in the sink's bodies with `status`, if it arrived.
fn arrived(sink: &Sink, name: &str, status: &str) -> Option<serde_json::Value> {
    sink.bodies()
        .iter()
        .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
        .find(|a| a["labels"]["alertname"] == name && a["status"] == status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_cdc_task_is_named_as_the_cause_and_pages_before_any_silence_threshold() {
    let (bootstrap, connect) = (broker().await, connect().await);
    // a database of this test's own: it is stopped
    let pg = tokio::task::spawn_blocking(|| Postgres::start().unwrap_or_else(|e| panic!("{e}"))).await.unwrap();
    let table = unique_topic("orders").replace('-', "_");
    let prefix = unique_topic("cdc").replace('-', "_");
    pg.sql(&format!(
        "CREATE TABLE {table} (id serial PRIMARY KEY, channel text NOT NULL, created_at timestamptz NOT NULL DEFAULT now()); \
         INSERT INTO {table} (channel) VALUES ('web');"
    ));
    let name = format!("{prefix}-source");
    let mut cdc = debezium_postgres(&pg, &prefix, &table);
    // no retries: a lost connection fails the task (Debezium 3.6 retries a connection
    // that is refused at restart without end, whatever `errors.max.retries` says)
    cdc["errors.max.retries"] = "0".into();
    connect.create(&name, cdc).await;
    let topic = format!("{prefix}.public.{table}");
    let sink = Sink::start().await;
    let body = format!(
        r#"{stream}
{connect}
[[alert]]
name = "OrdersConnectorFailed"
kind = "connector_failed"
target = "orders"
impact = "Orders stop reaching analytics."

[[alert]]
name = "OrdersConnectorPaused"
kind = "connector_paused"
target = "orders"
impact = "Orders wait in the database until the connector is resumed."

{hook}"#,
        stream = debezium_stream(&topic, "max_silence = \"10m\""),
        connect = connect_section("cdc", &connect.url(), CONNECT_PASSWORD, "2s"),
        hook = webhook(&sink.url),
    );
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    let connector = format!("cdc/{name}");
    eventually("the stream ok, written by the connector", Duration::from_secs(90), || async {
        let st = stream_status(&pw.status().await, "orders");
        match (st["cause"].as_str(), st["connectors"][0].as_str()) {
            (Some("ok"), Some(c)) if c == connector => Ok(()),
            _ => Err(format!("{st} / connector {}", connect.status(&name).await)),
        }
    })
    .await;

    // the database stopped: the task fails
    let broken = Instant::now();
    pg.stop();
    let failed_at = eventually("Connect to report the task FAILED", Duration::from_secs(120), || async {
        let s = connect.status(&name).await;
        if s["tasks"][0]["state"] == "FAILED" {
            Ok(Instant::now())
        } else {
            Err(s.to_string())
        }
    })
    .await;
    let st = eventually("the stream connector_failed", Duration::from_secs(30), || async {
        let st = stream_status(&pw.status().await, "orders");
        if st["cause"] == "connector_failed" {
            Ok(st)
        } else {
            Err(st.to_string())
        }
    })
    .await;
    let caused_at = Instant::now();
    let issue = &st["connector"];
    assert_eq!((issue["connector"].as_str(), issue["task"].as_i64()), (Some(name.as_str()), Some(0)), "{st}");
    assert_eq!(issue["worker_id"], format!("127.0.0.1:{}", connect.addr.port()), "{st}");
    let error = issue["error"].as_str().unwrap_or_default();
    assert!(error.contains("PSQLException"), "the database error named: {st}");
    let alert = eventually("the connector_failed alert at the webhook", Duration::from_secs(30), || async {
        arrived(&sink, "OrdersConnectorFailed", "firing").ok_or_else(|| format!("{:?}", sink.alerts()))
    })
    .await;
    let paged_at = Instant::now();
    eprintln!(
        "PostgreSQL stopped → task FAILED {:?}; FAILED → cause connector_failed {:?}, → webhook {:?} (poll 2 s, max_silence 10 min)",
        failed_at - broken,
        caused_at - failed_at,
        paged_at - failed_at
    );
    assert_eq!(
        (alert["labels"]["cause"].as_str(), alert["labels"]["severity"].as_str()),
        (Some("connector_failed"), Some("page"))
    );
    assert_eq!(alert["annotations"]["summary"], format!("connector {name} of orders failed"));
    let description = alert["annotations"]["description"].as_str().unwrap_or_default();
    assert!(description.starts_with(&format!("connector {name} task 0 (cdc) on worker 127.0.0.1:")), "{alert}");
    assert!(description.contains("PSQLException"), "{alert}");
    // the full trace in the status, the states on /metrics
    let status = pw.status().await;
    let trace = status["connect"][0]["connectors"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name.as_str()))
        .map(|c| c["tasks"][0]["trace"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    assert!(trace.contains("\tat "), "the full trace: {trace}");
    let m = pw.metrics().await;
    let task = |state: &str| {
        m.value("pipewatch_connector_task_state", &[("connector", name.as_str()), ("task", "0"), ("state", state)])
    };
    assert_eq!((task("failed"), task("running")), (Some(1.0), Some(0.0)));
    assert!(m.value("pipewatch_connector_failures_total", &[("connector", name.as_str())]) >= Some(1.0));
    assert_eq!(m.value("pipewatch_connect_up", &[("connect", "cdc")]), Some(1.0));
    assert_eq!(
        m.value(
            "pipewatch_connector_stream",
            &[("connector", name.as_str()), ("role", "source"), ("stream", "orders")]
        ),
        Some(1.0)
    );

    // the database back, the task restarted by the test (pipewatch never writes to Connect)
    pg.start_again();
    let (code, answer) =
        connect.rest("POST", &format!("/connectors/{name}/restart?includeTasks=true&onlyFailed=true"), "").await;
    assert!(code == 202 || code == 204, "restart: {code} {answer}");
    pg.sql(&format!("INSERT INTO {table} (channel) VALUES ('app');"));
    eventually("the stream ok again and the alert resolved", Duration::from_secs(90), || async {
        let st = stream_status(&pw.status().await, "orders");
        match (st["cause"].as_str(), arrived(&sink, "OrdersConnectorFailed", "resolved")) {
            (Some("ok"), Some(_)) => Ok(()),
            _ => Err(format!("{st} / {:?}", sink.alerts())),
        }
    })
    .await;

    // paused by somebody: its own cause and its own, lower, alert
    let (code, answer) = connect.rest("PUT", &format!("/connectors/{name}/pause"), "").await;
    assert_eq!(code, 202, "pause: {answer}");
    pw.wait_cause("orders", "connector_paused", Duration::from_secs(30)).await;
    let alert = eventually("the connector_paused alert", Duration::from_secs(30), || async {
        arrived(&sink, "OrdersConnectorPaused", "firing").ok_or_else(|| format!("{:?}", sink.alerts()))
    })
    .await;
    assert_eq!(alert["labels"]["severity"], "info", "{alert}");
    assert_eq!(alert["annotations"]["summary"], format!("connector {name} of orders is paused"));
    let (code, _) = connect.rest("PUT", &format!("/connectors/{name}/resume"), "").await;
    assert_eq!(code, 202);
    pw.wait_cause("orders", "ok", Duration::from_secs(30)).await;
    let (code, _) = connect.rest("DELETE", &format!("/connectors/{name}"), "").await;
    assert_eq!(code, 204);
    pw.stop().await;
    pg.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_killed_by_a_poison_record_is_connector_failed_and_connect_cut_off_holds_its_alert() {
    let (bootstrap, connect) = (broker().await, connect().await);
    let topic = unique_topic("clicks");
    create_topic(bootstrap, &topic, 1).await.unwrap();
    let name = unique_topic("warehouse");
    let producer = TestProducer::new(bootstrap);
    let click = |n: i64| format!(r#"{{"id": {n}, "ts": {}}}"#, now_ms());
    for n in 0..5 {
        producer.send(&topic, 0, Some(click(n).as_bytes()));
    }
    producer.flush();
    connect.create(&name, discard_sink(&topic)).await;
    // a second sink of the same topic that nobody listed: watched all the same
    let audit = unique_topic("audit");
    connect.create(&audit, discard_sink(&topic)).await;
    let proxy = CutProxy::start(connect.addr).await;
    let sink = Sink::start().await;
    let body = format!(
        r#"
[[stream]]
name = "clicks"
topic = "{topic}"
event_time = {{ field = "/ts", format = "epoch_millis" }}
max_silence = "10m"

[[consumer]]
name = "warehouse"
group = "connect-{name}"
streams = ["clicks"]
max_stall = "10m"

{through_proxy}
{wrong_password}
[[alert]]
name = "WarehouseSinkFailed"
kind = "connector_failed"
target = "warehouse"
impact = "The warehouse stops receiving clicks."

{hook}"#,
        through_proxy = connect_section("sinks", &format!("http://{}", proxy.addr), CONNECT_PASSWORD, "1s"),
        wrong_password = connect_section("typo", &connect.url(), "not-the-password", "1s"),
        hook = webhook(&sink.url),
    );
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    eventually("the sink's group ok, named as the sink", Duration::from_secs(90), || async {
        let status = pw.status().await;
        let c = &status["consumers"][0];
        match (c["cause"].as_str(), c["sink"].as_str()) {
            (Some("ok"), Some(s)) if s == format!("sinks/{name}") && c["streams"][0]["lag_records"] == 0 => Ok(()),
            _ => Err(format!("{c} / {}", connect.status(&name).await)),
        }
    })
    .await;
    // the unlisted sink is a consumer of its own, named by its connector; the listed one
    // is not watched twice
    let c = eventually("the unlisted sink watched", Duration::from_secs(60), || async {
        let status = pw.status().await;
        let consumers = status["consumers"].as_array().cloned().unwrap_or_default();
        match consumers.iter().find(|c| c["name"] == audit.as_str()) {
            Some(c) if c["cause"] == "ok" && c["streams"][0]["lag_records"] == 0 => Ok((c.clone(), consumers.len())),
            _ => Err(format!("{consumers:?}")),
        }
    })
    .await;
    assert_eq!(
        (c.0["group"].as_str(), c.0["discovered"].as_bool()),
        (Some(format!("connect-{audit}").as_str()), Some(true))
    );
    assert_eq!(c.1, 2, "the listed sink's group is the listed consumer, once");
    // the wrong password is named, not hidden
    eventually("the wrong password named", Duration::from_secs(30), || async {
        let typo = pw.status().await["connect"][1].clone();
        match (typo["status"].as_str(), typo["error"].as_str()) {
            (Some("down"), Some(e)) if e.contains("401") => Ok(()),
            _ => Err(typo.to_string()),
        }
    })
    .await;

    // a record the JSON converter cannot read: the task fails, the group stops committing
    producer.send(&topic, 0, Some(b"this is not json"));
    producer.send(&topic, 0, Some(click(6).as_bytes()));
    producer.flush();
    let c = eventually("the consumer connector_failed", Duration::from_secs(60), || async {
        let status = pw.status().await;
        let c = status["consumers"][0].clone();
        if c["cause"] == "connector_failed" {
            Ok(c)
        } else {
            Err(format!("{c} / {}", connect.status(&name).await))
        }
    })
    .await;
    assert_eq!(c["connector"]["task"], 0, "{c}");
    // the worker's error handler stops the task; the converter's DataException is in the trace
    assert!(c["connector"]["error"].as_str().unwrap_or_default().contains("ConnectException"), "{c}");
    let status = pw.status().await;
    let sink_status = status["connect"][0]["connectors"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name.as_str()).cloned())
        .unwrap_or_default();
    assert!(sink_status["tasks"][0]["trace"].as_str().unwrap_or_default().contains("DataException"), "{sink_status}");
    let alert = eventually("the sink's alert at the webhook", Duration::from_secs(30), || async {
        arrived(&sink, "WarehouseSinkFailed", "firing").ok_or_else(|| format!("{:?}", sink.alerts()))
    })
    .await;
    assert_eq!(
        (alert["labels"]["consumer"].as_str(), alert["labels"]["cause"].as_str()),
        (Some("warehouse"), Some("connector_failed"))
    );

    // Connect cut off: its own alert, /readyz says so, the stream keeps its Kafka-level
    // cause and the sink's alert is held, not resolved
    proxy.set_down(true);
    let alert = eventually("ConnectUnreachable at the webhook", Duration::from_secs(30), || async {
        sink.bodies()
            .iter()
            .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
            .find(|a| a["labels"]["alertname"] == "ConnectUnreachable" && a["labels"]["connect"] == "sinks")
            .ok_or_else(|| format!("{:?}", sink.alerts()))
    })
    .await;
    assert_eq!(alert["labels"]["cause"], "connect_unreachable");
    let (code, readyz) = pw.get("/readyz").await;
    assert!(code == 503 && readyz.contains("Kafka Connect sinks unreachable"), "{code} {readyz}");
    let status = pw.status().await;
    assert_eq!(stream_status(&status, "clicks")["cause"], "ok", "the stream's own cause stays");
    let held =
        status["alerts"].as_array().unwrap().iter().find(|a| a["name"] == "WarehouseSinkFailed").cloned().unwrap();
    assert_eq!(
        (held["state"].as_str(), held["held_back"].as_str()),
        (Some("firing"), Some("connect_unreachable")),
        "{held}"
    );
    assert_eq!(pw.metrics().await.value("pipewatch_connect_up", &[("connect", "sinks")]), Some(0.0));
    assert!(arrived(&sink, "WarehouseSinkFailed", "resolved").is_none(), "held, not resolved");
    proxy.set_down(false);
    eventually("ConnectUnreachable resolved", Duration::from_secs(30), || async {
        sink.bodies()
            .iter()
            .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
            .find(|a| {
                a["labels"]["alertname"] == "ConnectUnreachable"
                    && a["status"] == "resolved"
                    && a["labels"]["connect"] == "sinks"
            })
            .map(drop)
            .ok_or_else(|| format!("{:?}", sink.alerts()))
    })
    .await;
    for connector in [&name, &audit] {
        let (code, _) = connect.rest("DELETE", &format!("/connectors/{connector}"), "").await;
        assert_eq!(code, 204);
    }
    pw.stop().await;
}
