//! The reference pages against what pipewatch really serves: every family of a live
//! `/metrics` (streams, an Avro one through the real schema registry, a pair, segments, a
//! baseline, a watched consumer, a sink connector of the real Kafka Connect, an alert and
//! a receiver, on the real broker) is in docs/metrics.md with its type and labels.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::*;

/// The families docs/metrics.md lists: name → (type, labels).
fn documented() -> BTreeMap<String, (String, Vec<String>)> {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/metrics.md")).unwrap();
    docs.lines()
        .filter(|l| l.starts_with("| `pipewatch_"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let labels = cells[3].split(',').map(|c| c.trim().trim_matches('`').to_string());
            let labels = labels.filter(|l| !l.is_empty() && l != "—").collect();
            (cells[1].trim_matches('`').to_string(), (cells[2].to_string(), labels))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_of_a_live_scrape_is_in_the_metrics_reference() {
    let bootstrap = broker().await;
    let (orders, behaviour) = (unique_topic("orders"), unique_topic("behaviour"));
    for t in [&orders, &behaviour] {
        create_topic(bootstrap, t, 1).await.unwrap();
    }
    let signups = unique_topic("signups");
    topic_with_history(bootstrap, &signups, 1, 3600).await;
    // payments in Avro, their schema registered as the generator registers it
    let (registry, payments) = (schema_registry().await, unique_topic("payments"));
    create_topic(bootstrap, &payments, 1).await.unwrap();
    let id = registry.register(&format!("{payments}-value"), pipewatch_traffic::avro::ORDER_SCHEMA, &[]).await;
    let avro = Traffic::start(
        bootstrap,
        5.0,
        vec![Target::bytes(&payments, 0, move |now| {
            pipewatch_traffic::avro::order(id, now as u64, "web", now, false, ("u-1", "search"))
        })],
    );
    let no = || std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = orders_and_behaviour_traffic(bootstrap, &orders, &behaviour, no(), no());
    let live_signups = steady(bootstrap, &signups, 1, Duration::from_secs(1));
    let group = unique_topic("analytics");
    // a sink connector reading the orders, watched as the consumer of its group
    let connect = connect().await;
    let sink = unique_topic("warehouse");
    connect.create(&sink, discard_sink(&orders)).await;
    let password = std::env::temp_dir().join(format!("{sink}-password"));
    std::fs::write(&password, CONNECT_PASSWORD).unwrap();
    let rest = format!(
        r#"
join = {{ leader_key = "/order_id", follower_key = "/ts", before = "1s", after = "1s", grace = "1s" }}
[schema_registry]
url = "{}"
[[stream]]
name = "payments"
topic = "{payments}"
value_format = "avro"
event_time = {{ field = "/created_at", format = "rfc3339" }}
[[stream]]
name = "signups"
topic = "{signups}"
event_time = {{ field = "/ts", format = "epoch_millis" }}
baseline = {{ history = "2d", floor = 0.1 }}
min_rate = 0.1
segments = [{{ name = "kind", field = "/kind" }}]
[[consumer]]
name = "analytics"
group = "{group}"
streams = ["orders", "behaviour"]
[[consumer]]
name = "warehouse"
group = "connect-{sink}"
streams = ["orders"]
[[connect]]
name = "connect"
url = "{connect_url}"
poll = "1s"
basic_auth = {{ username = "{CONNECT_USER}", password_file = "{password}" }}
[discovery]
groups = {{ include = ["^{group}-discovered$"] }}
topics = {{ include = ["^{group}-discovered-topic$"] }}
{SYNC_RULE}
[[receiver]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:9/"
"#,
        registry.url,
        connect_url = connect.url(),
        password = password.display(),
    );
    let pw =
        Pipewatch::start(&config(bootstrap, "earliest", &orders_and_behaviour(&orders, &behaviour, "", &rest))).await;
    pw.wait_cause("orders", "ok", Duration::from_secs(60)).await;
    pw.wait_cause("payments", "ok", Duration::from_secs(60)).await;
    read_and_commit(bootstrap, &group, &orders, 5);
    read_and_commit(bootstrap, &group, &behaviour, 5);
    let body = eventually("a band, the consumer's lag and the sync lag it sees", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        let band = m.value("pipewatch_stream_rate_expected_records_per_second", &[("stream", "signups")]);
        let lag = m.value("pipewatch_consumer_lag_seconds", &[("stream", "orders")]);
        let sync = m.value("pipewatch_consumer_sync_lag_seconds", &[("consumer", "analytics")]);
        let sink = m.value("pipewatch_connector_stream", &[("role", "sink"), ("consumer", "warehouse")]);
        // the orders joined with behaviour by keys that never match: missing, and some pending
        let judged = m.value("pipewatch_join_completeness_ratio", &[]);
        let pending = m.value("pipewatch_join_pending_oldest_seconds", &[]);
        match (band, lag, sync, sink, judged, pending) {
            (Some(_), Some(_), Some(_), Some(_), Some(_), Some(_)) => Ok(m.0),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let docs = documented();
    let mut live: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            live.insert(name.to_string(), (kind.to_string(), Vec::new()));
        } else if !line.starts_with('#') {
            let series = line.rsplit_once(' ').map_or(line, |(s, _)| s);
            let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| live.get(*f).is_some_and(|(k, _)| k == "histogram")))
                .unwrap_or(name);
            let names: Vec<String> = labels
                .trim_end_matches('}')
                .split(',')
                .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_string()))
                .filter(|l| l != "le")
                .collect();
            if let Some((_, seen)) = live.get_mut(family) {
                if seen.is_empty() {
                    *seen = names;
                } else {
                    assert_eq!(*seen, names, "{family}: two label sets");
                }
            }
        }
    }
    for (name, (kind, labels)) in &live {
        let Some((k, l)) = docs.get(name) else { panic!("{name} is served but not in docs/metrics.md") };
        assert_eq!((k, l), (kind, labels), "{name}: docs/metrics.md says {k} {l:?}, /metrics serves {kind} {labels:?}");
    }
    // everything but what only data loss shows
    let absent: Vec<&String> = docs.keys().filter(|n| !live.contains_key(*n)).collect();
    assert!(
        absent.iter().all(|n| n.contains("expired_records")),
        "documented but not served by this config: {absent:?}"
    );
    traffic.stop();
    let (code, _) = connect.rest("DELETE", &format!("/connectors/{sink}"), "").await;
    assert_eq!(code, 204);
    avro.stop();
    live_signups.stop();
    pw.stop().await;
}
