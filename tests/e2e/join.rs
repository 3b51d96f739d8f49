//! Join completeness on a real broker: orders joined with the same user's behaviour. A
//! referral value whose users have no behaviour at all has a ratio of 0 while the others
//! match (one of them by a behaviour event after the order, within `after`); while the
//! behaviour stream is behind, the new orders are pending, not missing.

use std::time::Duration;

use crate::support::*;

/// The `join_completeness` rule of [`join_config`].
pub(crate) const ALERT: &str = "OrdersWithoutBehaviour";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_without_behaviour_are_missing_per_referral_and_a_late_follower_leaves_them_pending() {
    let bootstrap = broker().await;
    let (orders, behaviour) = (unique_topic("orders"), unique_topic("behaviour"));
    create_topic(bootstrap, &orders, 2).await.unwrap();
    create_topic(bootstrap, &behaviour, 2).await.unwrap();
    let base = now_ms() - 600_000;
    let producer = TestProducer::new(bootstrap);
    produce_traffic(&producer, &orders, &behaviour, base, 2);
    advance_behaviour(&producer, &behaviour, base, 2);
    let sink = Sink::start().await;
    let body = join_config(&orders, &behaviour) + &webhook(&sink.url);
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    let judged = |m: &Metrics, outcome: &str, value: Option<&str>| {
        let mut labels = vec![("pair", "orders_behaviour"), ("outcome", outcome)];
        if let Some(v) = value {
            labels.extend([("segment", "referral"), ("value", v)]);
        }
        m.value("pipewatch_join_records_total", &labels)
    };
    let m = eventually("every order judged", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        match (judged(&m, "matched", None), judged(&m, "missing", None)) {
            (Some(a), Some(b)) if a + b == 51.0 => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(judged(&m, "matched", Some("search")), Some(41.0), "the one seen after its order matched too");
    assert_eq!(judged(&m, "missing", Some("search")), Some(0.0));
    assert_eq!((judged(&m, "matched", Some("social")), judged(&m, "missing", Some("social"))), (Some(0.0), Some(10.0)));
    assert_eq!(judged(&m, "unjudged", None), Some(0.0));
    let ratio = |m: &Metrics, value: &str| {
        m.value("pipewatch_join_completeness_ratio", &[("pair", "orders_behaviour"), ("value", value)])
    };
    assert_eq!((ratio(&m, "social"), ratio(&m, "search")), (Some(0.0), Some(1.0)));
    assert_eq!(m.value("pipewatch_join_pending_records", &[("pair", "orders_behaviour")]), Some(0.0));
    let status = pw.status().await;
    let join = &status["pairs"][0]["join"];
    assert_eq!(join["total"], serde_json::json!({"matched": 41, "missing": 10, "unjudged": 0}), "{join}");
    // both streams ok: the pair's own cause, naming the value
    let pair = &status["pairs"][0];
    assert_eq!(
        (&pair["cause"], &pair["cause_stream"]),
        (&serde_json::json!("join_incomplete"), &serde_json::json!("behaviour")),
        "{pair}"
    );
    assert_eq!(join["incomplete"][0]["value"], "social", "{join}");
    assert_eq!(join["incomplete"].as_array().map(Vec::len), Some(1), "all 41 of 51: not under half");
    // the status page's row for the value that never joins
    let (code, page) = try_http_get(pw.addr, "/").await.unwrap();
    assert_eq!(code, 200);
    let row = "<td>orders_behaviour</td><td>referral</td><td><code>social</code></td><td>0 / 10</td><td class='fault'>0 %</td>";
    assert!(page.contains(row), "{page}");
    assert!(page.contains("join_incomplete<br><small>referral=social: 0 of 10 matched</small>"), "{page}");
    // one page for the pair, naming the value that never joins
    let alert = eventually("the join alert at the webhook", Duration::from_secs(30), || async {
        let alerts: Vec<serde_json::Value> =
            sink.bodies().iter().flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default()).collect();
        match alerts.iter().find(|a| a["labels"]["alertname"] == ALERT) {
            Some(a) => Ok(a.clone()),
            None => Err(format!("{alerts:?}")),
        }
    })
    .await;
    assert_eq!(
        (&alert["status"], &alert["labels"]["pair"], &alert["labels"]["cause"]),
        (&serde_json::json!("firing"), &serde_json::json!("orders_behaviour"), &serde_json::json!("join_incomplete"))
    );
    assert_eq!(alert["annotations"]["summary"], "orders with referral=social: 0.0% matched behaviour, under 50.0%");
    let description = alert["annotations"]["description"].as_str().unwrap();
    assert!(
        description.starts_with("orders with referral=social: 0 of 10 matched behaviour in the last 1h 00m, other values referral=search 100.0%"),
        "{description}"
    );

    // the behaviour stream stops advancing: ten more orders wait, none is missing
    for k in 0..10 {
        let user = format!("u{k}");
        producer.send(&orders, (k % 2) as i32, Some(order(&user, "search", base + 120_000 + k * 1000).as_bytes()));
    }
    producer.flush();
    let m = eventually("ten orders pending", Duration::from_secs(30), || async {
        let m = pw.metrics().await;
        match m.value("pipewatch_join_pending_records", &[("pair", "orders_behaviour")]) {
            Some(10.0) => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m2 = pw.metrics().await;
    assert_eq!((judged(&m2, "missing", None), judged(&m, "missing", None)), (Some(10.0), Some(10.0)));
    let oldest = m2.value("pipewatch_join_pending_oldest_seconds", &[("pair", "orders_behaviour")]).unwrap();
    assert!(oldest >= 480.0, "the oldest pending order's age by event time: {oldest}");
    // still the one fault (re-sent while it fires): social firing, nothing resolved or new
    let pages: Vec<serde_json::Value> = sink
        .bodies()
        .iter()
        .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["labels"]["alertname"] == ALERT)
        .collect();
    let same = |a: &serde_json::Value| {
        a["status"] == "firing" && a["annotations"]["summary"] == alert["annotations"]["summary"]
    };
    assert!(pages.iter().all(same), "pending orders page nothing more: {pages:?}");
    promtool_check(&m2.0).await;
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_8_hours_late_leaves_every_order_pending_none_missing_and_no_page() {
    let bootstrap = broker().await;
    let (orders, behaviour) = (unique_topic("orders"), unique_topic("behaviour"));
    create_topic(bootstrap, &orders, 2).await.unwrap();
    create_topic(bootstrap, &behaviour, 2).await.unwrap();
    // every user's behaviour is there, but it happened 8 h before the orders' time: the
    // batch path delivers it 8 h late
    let base = now_ms() - 60_000;
    let producer = TestProducer::new(bootstrap);
    for k in 0..40 {
        let (user, referral) = (format!("u{k}"), if k % 4 == 0 { "social" } else { "search" });
        let t = base + k * 1000;
        producer.send(&behaviour, (k % 2) as i32, Some(event(&user, t - 8 * 3600 * 1000).as_bytes()));
        producer.send(&orders, (k % 2) as i32, Some(order(&user, referral, t).as_bytes()));
    }
    producer.flush();
    let sink = Sink::start().await;
    let pw =
        Pipewatch::start(&config(bootstrap, "earliest", &(join_config(&orders, &behaviour) + &webhook(&sink.url))))
            .await;
    let m = eventually("every order pending", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        match m.value("pipewatch_join_pending_records", &[("pair", "orders_behaviour")]) {
            Some(40.0) => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let lag = m.value("pipewatch_sync_lag_seconds", &[("pair", "orders_behaviour")]).unwrap();
    assert!((28_700.0..=28_810.0).contains(&lag), "behaviour 8 h behind: {lag}");
    let oldest = m.value("pipewatch_join_pending_oldest_seconds", &[("pair", "orders_behaviour")]).unwrap();
    assert!(oldest >= 60.0, "the oldest pending order's age: {oldest}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    // late is not missing: nothing judged, the pair's cause the follower's delay, no page
    for referral in [None, Some("search"), Some("social")] {
        assert_eq!(summed(&[&pw], referral).await, [0.0; 3], "{referral:?}");
    }
    eventually("the pair's cause the follower's delay", Duration::from_secs(30), || async {
        let status = pw.status().await;
        match status["pairs"][0]["cause"].as_str() {
            Some("event_time_delayed") => Ok(()),
            _ => Err(status["pairs"][0].to_string()),
        }
    })
    .await;
    let pages: Vec<serde_json::Value> = sink
        .bodies()
        .iter()
        .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["labels"]["alertname"] == ALERT)
        .collect();
    assert!(pages.is_empty(), "a late follower pages nothing of the join: {pages:?}");
    pw.stop().await;
}

/// `(matched, missing, unjudged)` of `pw`'s join: for all its orders, or those of
/// `referral` (`/metrics`).
async fn outcomes(pw: &Pipewatch, referral: Option<&str>) -> [f64; 3] {
    let m = pw.metrics().await;
    let (segment, value) = referral.map_or(("", ""), |v| ("referral", v));
    ["matched", "missing", "unjudged"].map(|outcome| {
        let labels = [("pair", "orders_behaviour"), ("outcome", outcome), ("segment", segment), ("value", value)];
        m.value("pipewatch_join_records_total", &labels).unwrap_or(0.0)
    })
}

/// The outcomes of replicas summed.
async fn summed(replicas: &[&Pipewatch], referral: Option<&str>) -> [f64; 3] {
    let mut sum = [0.0; 3];
    for r in replicas {
        for (s, o) in sum.iter_mut().zip(outcomes(r, referral).await) {
            *s += o;
        }
    }
    sum
}

/// Outcomes for all, search and social, each `(matched, missing, unjudged)`.
type ByReferral = [[f64; 3]; 3];

/// One pipewatch alone and two groups of two replicas, one joining with `partitions =
/// "all"`, one with `"co_partitioned"`, on the orders of [`produce_traffic`] with
/// `behaviour_partitions`; once every order is judged (or unjudged) everywhere, the
/// alone one's outcomes and the replicas' of both groups summed (the replicas, the alone
/// one last, to stop).
async fn two_replicas_each_way(behaviour_partitions: i32) -> (ByReferral, ByReferral, ByReferral, Vec<Pipewatch>) {
    let bootstrap = broker().await;
    let (orders, behaviour) = (unique_topic("orders"), unique_topic("behaviour"));
    create_topic(bootstrap, &orders, 2).await.unwrap();
    create_topic(bootstrap, &behaviour, behaviour_partitions).await.unwrap();
    let all = join_config(&orders, &behaviour);
    let co = all.replace("min_judged = 5 }", "min_judged = 5, partitions = \"co_partitioned\" }");
    assert_ne!(all, co);
    let single = Pipewatch::start(&config(bootstrap, "earliest", &all)).await;
    let (group_all, group_co) = (unique_topic("pipewatch-all"), unique_topic("pipewatch-co"));
    let mut replicas = Vec::new();
    for (group, body) in [(&group_all, &all), (&group_co, &co), (&group_all, &all), (&group_co, &co)] {
        replicas.push(Pipewatch::start(&config_in_group(bootstrap, group, "earliest", body)).await);
    }
    // each replica has its share before a record is written (a partition moved after it
    // was read would be read twice)
    eventually("each replica's share", Duration::from_secs(60), || async {
        let mut shares = Vec::new();
        for r in &replicas {
            shares.push((r.assigned("orders").await.len(), r.assigned("behaviour").await.len()));
        }
        // both members of each group have partitions, and the group all of them (the
        // range assignor splits each topic, cooperative-sticky the count)
        let n = behaviour_partitions as usize;
        let settled = shares.iter().all(|&(o, b)| o + b >= 1)
            && [0, 1].iter().all(|g| (shares[*g].0 + shares[g + 2].0, shares[*g].1 + shares[g + 2].1) == (2, n));
        if settled {
            Ok(())
        } else {
            Err(format!("(orders, behaviour) per replica: {shares:?}"))
        }
    })
    .await;
    let base = now_ms() - 600_000;
    let producer = TestProducer::new(bootstrap);
    produce_traffic(&producer, &orders, &behaviour, base, behaviour_partitions);
    advance_behaviour(&producer, &behaviour, base, behaviour_partitions);
    let (a, c) = ([&replicas[0], &replicas[2]], [&replicas[1], &replicas[3]]);
    let counted = |o: [f64; 3]| o.iter().sum::<f64>();
    eventually("every order judged everywhere", Duration::from_secs(60), || async {
        let counts =
            [counted(summed(&[&single], None).await), counted(summed(&a, None).await), counted(summed(&c, None).await)];
        if counts == [51.0; 3] {
            Ok(())
        } else {
            Err(format!("alone, all, co_partitioned: {counts:?}"))
        }
    })
    .await;
    let (mut alone, mut all_sum, mut co_sum) = ([[0.0; 3]; 3], [[0.0; 3]; 3], [[0.0; 3]; 3]);
    for (i, referral) in [None, Some("search"), Some("social")].into_iter().enumerate() {
        alone[i] = summed(&[&single], referral).await;
        all_sum[i] = summed(&a, referral).await;
        co_sum[i] = summed(&c, referral).await;
    }
    replicas.push(single);
    (alone, all_sum, co_sum, replicas)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_co_partitioned_topics_sum_to_one_pipewatch_either_way() {
    let (alone, all, co, replicas) = two_replicas_each_way(2).await;
    // all, search, social: (matched, missing, unjudged)
    assert_eq!(alone, [[41.0, 10.0, 0.0], [41.0, 0.0, 0.0], [0.0, 10.0, 0.0]]);
    assert_eq!(all, alone, "partitions = \"all\": each replica read every behaviour partition");
    assert_eq!(co, alone, "co-partitioned: each replica's orders with its behaviour partitions");
    for r in [&replicas[1], &replicas[3]] {
        let join = &r.status().await["pairs"][0]["join"];
        assert_eq!(
            (&join["partitions"], &join["co_partitioned"]),
            (&serde_json::json!("co_partitioned"), &serde_json::json!(true)),
            "{join}"
        );
    }
    let join = &replicas[0].status().await["pairs"][0]["join"];
    assert_eq!((&join["partitions"], &join["co_partitioned"]), (&serde_json::json!("all"), &serde_json::Value::Null));
    for r in replicas {
        r.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_topics_not_co_partitioned_all_partitions_still_sum_to_one_pipewatch_and_co_partitioned_judges_none() {
    // behaviour has three partitions, orders two: a user's orders and behaviour are on
    // different partition numbers
    let (alone, all, co, replicas) = two_replicas_each_way(3).await;
    assert_eq!(alone, [[41.0, 10.0, 0.0], [41.0, 0.0, 0.0], [0.0, 10.0, 0.0]]);
    assert_eq!(all, alone, "partitions = \"all\" is right on any topics");
    assert_eq!(co, [[0.0, 0.0, 51.0], [0.0, 0.0, 41.0], [0.0, 0.0, 10.0]], "nothing called missing: all unjudged");
    for r in [&replicas[1], &replicas[3]] {
        let join = &r.status().await["pairs"][0]["join"];
        assert_eq!(join["co_partitioned"], serde_json::json!(false), "{join}");
        let (code, page) = try_http_get(r.addr, "/").await.unwrap();
        assert_eq!(code, 200);
        assert!(page.contains("are not co-partitioned here"), "{page}");
    }
    for r in replicas {
        r.stop().await;
    }
}

/// A JSON order of `user` from `referral` at `t`.
pub(crate) fn order(user: &str, referral: &str, t: i64) -> String {
    let created_at = pipewatch_core::time::format_rfc3339(t);
    format!(r#"{{"order_id":"o-{user}","user_id":"{user}","referral":"{referral}","created_at":"{created_at}"}}"#)
}

fn event(user: &str, t: i64) -> String {
    format!(r#"{{"user_id":"{user}","event":"view","ts":{t}}}"#)
}

/// 51 orders from `base` on, over two partitions: 41 from search whose users the
/// behaviour stream saw (40 of them 10 s before the order, one 3 s after, within
/// `after`), 10 from social never seen; the behaviour stream read from 40 s before the
/// first order on all its `behaviour_partitions` (user k's behaviour on partition
/// k mod that, its orders on k mod 2: co-partitioned with two).
pub(crate) fn produce_traffic(
    producer: &TestProducer,
    orders: &str,
    behaviour: &str,
    base: i64,
    behaviour_partitions: i32,
) {
    for p in 0..behaviour_partitions {
        producer.send(behaviour, p, Some(event("nobody", base - 40_000).as_bytes()));
    }
    for k in 0..50 {
        let (user, referral) = if k < 40 { (format!("u{k}"), "search") } else { (format!("s{k}"), "social") };
        let t = base + k * 1000;
        if referral == "search" {
            let p = (k % i64::from(behaviour_partitions)) as i32;
            producer.send(behaviour, p, Some(event(&user, t - 10_000).as_bytes()));
        }
        producer.send(orders, (k % 2) as i32, Some(order(&user, referral, t).as_bytes()));
    }
    producer.send(orders, 0, Some(order("after", "search", base + 50_000).as_bytes()));
    producer.send(behaviour, 0, Some(event("after", base + 53_000).as_bytes()));
    producer.flush();
}

/// The behaviour watermark past the last order of [`produce_traffic`] + after + grace,
/// on each of its `partitions`.
pub(crate) fn advance_behaviour(producer: &TestProducer, behaviour: &str, base: i64, partitions: i32) {
    for p in 0..partitions {
        producer.send(behaviour, p, Some(event("nobody", base + 60_000).as_bytes()));
    }
    producer.flush();
}

/// orders (with the `referral` segment) and behaviour, their pair joined by user, and
/// the `join_completeness` rule [`ALERT`] under half matched (5 judged at least).
pub(crate) fn join_config(orders: &str, behaviour: &str) -> String {
    orders_and_behaviour(
        orders,
        behaviour,
        // the records are minutes old by design
        "max_record_delay = \"1h\"",
        r#"join = { leader_key = "/user_id", follower_key = "/user_id", before = "20s", after = "5s", grace = "2s", segments = ["referral"], window = "1h", min_judged = 5 }
[[alert]]
name = "OrdersWithoutBehaviour"
kind = "join_completeness"
target = "orders_behaviour"
threshold = 0.5
min_judged = 5
impact = "Orders whose users have no behaviour: their segments and ads are built without them."
"#,
    )
    .replace(
        "event_time = { field = \"/created_at\", format = \"rfc3339\" }\n",
        "event_time = { field = \"/created_at\", format = \"rfc3339\" }\nsegments = [{ name = \"referral\", field = \"/referral\" }]\n",
    )
}
