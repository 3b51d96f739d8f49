//! `pipewatch demo`: the one command a newcomer runs shows the scripted silo and gap.

use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_the_scripted_sync_lag_and_gap() {
    let port = pipewatch_kafka::testing::free_port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipewatch"))
        .args(["demo", "--duration", "75s", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run pipewatch demo");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let m = eventually("the scripted faults on /metrics", Duration::from_secs(75), || async {
        let (_, body) = try_http_get(addr, "/metrics").await?;
        let m = Metrics(body);
        let gap = m.value("pipewatch_gaps_total", &[("stream", "orders"), ("partition", "2")]);
        match (m.cause("behaviour").as_deref(), m.cause("orders").as_deref(), gap) {
            (Some("event_time_delayed"), Some("partition_stalled"), Some(g)) if g >= 1.0 => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // the signups' two weeks of history, learnt from the mock cluster at start: a band of
    // the hour of the week, the rate inside it
    let band = |bound| {
        m.value("pipewatch_stream_rate_expected_records_per_second", &[("stream", "signups"), ("bound", bound)])
    };
    let (lower, upper) = (band("lower").expect("a band"), band("upper").expect("a band"));
    let rate = m.value("pipewatch_stream_rate_records_per_second", &[("stream", "signups")]).expect("signups rate");
    assert!(lower <= rate && rate <= upper, "signups {rate} outside {lower}–{upper}");
    assert!(m.value("pipewatch_stream_baseline_history_seconds", &[("stream", "signups")]).unwrap() >= 13.0 * 86_400.0);
    assert_eq!(m.cause("signups").as_deref(), Some("ok"));
    let lag = m.value("pipewatch_sync_lag_seconds", &[("pair", "orders_behaviour")]).expect("sync lag");
    let firing = [("alert", "BehaviourBehindOrders"), ("severity", "page")];
    assert_eq!(m.value("pipewatch_alert_active", &firing), Some(1.0), "{}", m.0);
    let cause = [("alert", "BehaviourBehindOrders"), ("cause", "event_time_delayed")];
    assert_eq!(m.value("pipewatch_alert_cause", &cause), Some(1.0), "{}", m.0);
    // 8 h, less the few seconds the silent orders partition holds the orders watermark back
    assert!((28_700.0..=28_805.0).contains(&lag), "sync lag {lag}");
    // the join: social's orders were judged missing before the behaviour turned 8 h late;
    // since, the new orders wait for their behaviour, none called missing
    let join = |m: &Metrics, outcome: &str, value: &str| {
        m.value("pipewatch_join_records_total", &[("pair", "orders_behaviour"), ("outcome", outcome), ("value", value)])
    };
    let social_missing = join(&m, "missing", "social").expect("social judged");
    assert!(social_missing >= 10.0, "social orders missing: {social_missing}");
    let search = (join(&m, "matched", "search").unwrap(), join(&m, "missing", "search").unwrap());
    assert!(search.0 >= 10.0 && search.1 == 0.0, "search orders all matched: {search:?}");
    let ratio = m.value("pipewatch_join_completeness_ratio", &[("pair", "orders_behaviour"), ("value", "social")]);
    assert!(ratio.is_some_and(|r| r < 0.5), "social's completeness {ratio:?}");
    let pending = |m: &Metrics| m.value("pipewatch_join_pending_records", &[("pair", "orders_behaviour")]).unwrap();
    let pending_then = pending(&m);
    assert!(pending_then >= 50.0, "orders pending behind the 8 h delay: {pending_then}");
    // the orders are Avro, their schema from the demo's registry stand-in; none invalid
    assert_eq!(m.value("pipewatch_schema_registry_up", &[]), Some(1.0));
    let (_, status) = try_http_get(addr, "/api/v1/status").await.unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let orders = stream_status(&status, "orders");
    assert_eq!(
        (orders["schemas"][0]["id"].as_u64(), orders["schemas"][0]["subject"].as_str()),
        (Some(1), Some("orders-value"))
    );
    assert_eq!(orders["invalid"].as_object().unwrap().values().filter_map(|v| v.as_u64()).sum::<u64>(), 0, "{orders}");
    // at 60 s the orders' CDC connector fails (the demo's stand-in for Kafka Connect)
    let m = eventually("the orders connector_failed on /metrics", Duration::from_secs(20), || async {
        let (_, body) = try_http_get(addr, "/metrics").await?;
        let m = Metrics(body);
        match m.cause("orders").as_deref() {
            Some("connector_failed") => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let failed = [("connect", "cdc"), ("connector", "orders-cdc"), ("task", "0"), ("state", "failed")];
    assert_eq!(m.value("pipewatch_connector_task_state", &failed), Some(1.0), "{}", m.0);
    // late is not missing: more orders pending, none more missing
    assert!(pending(&m) > pending_then, "pending {} after {pending_then}", pending(&m));
    assert_eq!(join(&m, "missing", "social"), Some(social_missing));
    assert_eq!(join(&m, "missing", "search"), Some(0.0));
    let out = child.wait_with_output().await.expect("demo exits");
    assert_eq!(out.status.code(), Some(0));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains(&format!("Open http://127.0.0.1:{port}/")), "{printed}");
    assert!(printed.contains("stream behaviour  event_time_delayed"), "{printed}");
    assert!(printed.contains("stream orders     partition_stalled"), "{printed}");
    // the app's orders stop at 25 s, before the partition does
    assert!(printed.contains("stream orders     segment_silent") && printed.contains("(channel=app)"), "{printed}");
    assert!(
        printed.contains("FIRING   AppOrdersMissing [orders, cause segment_silent]: no orders channel=app records"),
        "{printed}"
    );
    assert!(
        printed.contains(
            "FIRING   BehaviourBehindOrders [orders_behaviour, cause event_time_delayed]: behaviour is 8h 00m behind orders"
        ) || printed.contains("FIRING   BehaviourBehindOrders [orders_behaviour, cause event_time_delayed]: behaviour is 7h 59m"),
        "{printed}"
    );
    assert!(printed.contains("FIRING   OrdersStale [orders, cause partition_stalled]: orders data is"), "{printed}");
    assert!(printed.contains("stream orders     connector_failed"), "{printed}");
    assert!(
        printed.contains("(caused by org.postgresql.util.PSQLException: Connection to orders-db:5432 refused."),
        "{printed}"
    );
    assert!(
        printed.contains(
            "FIRING   OrdersConnectorFailed [orders, cause connector_failed]: connector orders-cdc of orders failed"
        ),
        "{printed}"
    );
    // the social path stops at 8 s: the pair's own cause, and one page naming the value
    assert!(
        printed.contains("pair orders_behaviour join_incomplete") && printed.contains("(referral=social: "),
        "{printed}"
    );
    assert!(
        printed.contains(
            "FIRING   OrdersWithoutBehaviour [orders_behaviour, cause join_incomplete]: orders with referral=social: "
        ),
        "{printed}"
    );
    assert_eq!(printed.matches("FIRING   OrdersWithoutBehaviour").count(), 1, "{printed}");
    // the 8 h delay is the follower's cause, not incompleteness
    assert!(printed.contains("pair orders_behaviour event_time_delayed"), "{printed}");
    // Downstream: the analytics job stops at 10 s.
    assert!(printed.contains("consumer analytics consumer_stopped"), "{printed}");
    assert!(
        printed.contains("FIRING   AnalyticsBehind [analytics, cause consumer_stopped]: analytics is "),
        "{printed}"
    );
    // Once an orders partition stalls, that is the stream's fault, not the job's.
    assert!(printed.contains("consumer analytics upstream_fault"), "{printed}");
    let firing = [("alert", "AnalyticsBehind"), ("cause", "consumer_stopped")];
    assert_eq!(m.value("pipewatch_alert_cause", &firing), Some(1.0), "{}", m.0);
    let lag = m.value("pipewatch_consumer_stream_lag_seconds", &[("consumer", "analytics")]).expect("consumer lag");
    assert!(lag > 20.0, "the job stopped at 10 s: {lag}");
}
