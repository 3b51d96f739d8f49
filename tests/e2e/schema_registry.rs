//! Avro and Protobuf streams through the real schema registry (Apicurio Registry's
//! Confluent-compatible API) on the real broker: records written as Confluent's
//! serializers write them, their schemas (and the ones they refer to) registered through
//! the registry's API. The event time read from the payload whatever versions the records
//! carry; what cannot be read counted by reason and named; a registry outage waits, loses
//! nothing and names the registry.

use std::time::Duration;

use apache_avro::types::Value as Avro;

use crate::support::*;

/// Version 1 of the orders' schema: the event time (a union with null) after a nested
/// record, an array of records, a map and an enum.
const ORDER_V1: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "order_id", "type": "string"},
    {"name": "shipping", "type": {"type": "record", "name": "Address", "fields": [
        {"name": "street", "type": "string"}, {"name": "country", "type": "string"}]}},
    {"name": "items", "type": {"type": "array", "items": {"type": "record", "name": "Item", "fields": [
        {"name": "sku", "type": "string"}, {"name": "price", "type": "double"}]}}},
    {"name": "tags", "type": {"type": "map", "values": "string"}},
    {"name": "channel", "type": {"type": "enum", "name": "Channel", "symbols": ["web", "app"]}},
    {"name": "created_at", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]}]}"#;

/// Version 2: a field added before the event time.
const ORDER_V2: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "order_id", "type": "string"},
    {"name": "coupon", "type": ["null", "string"], "default": null},
    {"name": "shipping", "type": {"type": "record", "name": "Address", "fields": [
        {"name": "street", "type": "string"}, {"name": "country", "type": "string"}]}},
    {"name": "items", "type": {"type": "array", "items": {"type": "record", "name": "Item", "fields": [
        {"name": "sku", "type": "string"}, {"name": "price", "type": "double"}]}}},
    {"name": "tags", "type": {"type": "map", "values": "string"}},
    {"name": "channel", "type": {"type": "enum", "name": "Channel", "symbols": ["web", "app"]}},
    {"name": "created_at", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]}]}"#;

/// Version 3: the event time dropped.
const ORDER_V3: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "order_id", "type": "string"},
    {"name": "channel", "type": {"type": "enum", "name": "Channel", "symbols": ["web", "app"]}}]}"#;

fn schema(text: &str) -> apache_avro::Schema {
    apache_avro::Schema::parse_str(text).unwrap()
}

/// An order of version 1 or 2 placed at `created_at`, three items, from the app.
fn order(version: u8, created_at: i64) -> Avro {
    let item = |k: i64| {
        Avro::Record(vec![("sku".into(), Avro::String(format!("SKU-{k}"))), ("price".into(), Avro::Double(9.5))])
    };
    let mut fields = vec![("order_id".to_string(), Avro::String(format!("o-{created_at}")))];
    if version == 2 {
        fields.push(("coupon".into(), Avro::Union(1, Box::new(Avro::String("TEN".into())))));
    }
    fields.extend([
        (
            "shipping".into(),
            Avro::Record(vec![
                ("street".into(), Avro::String("Main St 1".into())),
                ("country".into(), Avro::String("DE".into())),
            ]),
        ),
        ("items".into(), Avro::Array((0..3).map(item).collect())),
        ("tags".into(), Avro::Map([("campaign".to_string(), Avro::String("autumn".into()))].into_iter().collect())),
        ("channel".into(), Avro::Enum(1, "app".into())),
        ("created_at".into(), Avro::Union(1, Box::new(Avro::TimestampMillis(created_at)))),
    ]);
    Avro::Record(fields)
}

fn avro_stream(topic: &str) -> String {
    format!(
        r#"
[[stream]]
name = "orders"
topic = "{topic}"
value_format = "avro"
event_time = {{ field = "/created_at", format = "rfc3339" }}
segments = [{{ name = "channel", field = "/channel" }}]
"#
    )
}

fn invalid(m: &Metrics, reason: &str) -> f64 {
    m.value("pipewatch_records_invalid_total", &[("stream", "orders"), ("partition", "0"), ("reason", reason)])
        .unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_orders_paired_with_json_behaviour_8h_behind_through_every_schema_version() {
    let (bootstrap, registry) = (broker().await, schema_registry().await);
    let (orders, behaviour) = (unique_topic("avro-orders"), unique_topic("behaviour"));
    for t in [&orders, &behaviour] {
        create_topic(bootstrap, t, 1).await.unwrap();
    }
    let subject = format!("{orders}-value");
    // the registry gives the same id to the same schema under any subject: this test's own
    let own = |text: &str| {
        text.replacen(r#""namespace": "shop","#, &format!(r#""namespace": "shop", "doc": "{orders}","#), 1)
    };
    let v1 = registry.register(&subject, &own(ORDER_V1), &[]).await;
    let writer = schema(ORDER_V1);
    let eight_hours = 8 * 3600 * 1000;
    let traffic = Traffic::start(
        bootstrap,
        10.0,
        vec![
            Target::bytes(&orders, 0, move |now| avro_framed(v1, &writer, order(1, now))),
            Target::new(&behaviour, 0, move |now| event(now - eight_hours)),
        ],
    );
    let body = format!(
        r#"
[schema_registry]
url = "{}"
{}
[[stream]]
name = "behaviour"
topic = "{behaviour}"
event_time = {{ field = "/ts", format = "epoch_millis" }}
[[pair]]
name = "orders_behaviour"
leader = "orders"
follower = "behaviour"
"#,
        registry.url,
        avro_stream(&orders)
    );
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    let m = eventually("behaviour 8 h behind the Avro orders", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        let lag = m.value("pipewatch_sync_lag_seconds", &[("pair", "orders_behaviour")]);
        match (m.cause("orders").as_deref(), m.cause("behaviour").as_deref(), lag) {
            (Some("ok"), Some("event_time_delayed"), Some(lag)) if (lag - 28_800.0).abs() < 5.0 => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(m.value("pipewatch_schema_registry_up", &[]), Some(1.0));
    assert_eq!(m.value("pipewatch_stream_schema_changes_total", &[("stream", "orders")]), Some(0.0));
    assert!(m.value("pipewatch_segment_records_total", &[("stream", "orders"), ("value", "app")]).unwrap() > 0.0);
    let status = pw.status().await;
    let st = stream_status(&status, "orders");
    assert_eq!(st["schemas"][0]["id"], v1, "{st}");
    assert_eq!(
        (st["schemas"][0]["subject"].as_str(), st["schemas"][0]["version"].as_i64()),
        (Some(&*subject), Some(1))
    );
    assert!(st["freshness_lag_seconds"].as_f64().unwrap() < 5.0, "{st}");

    // version 2 adds a field before the event time: read right
    let v2 = registry.register(&subject, &own(ORDER_V2), &[]).await;
    let producer = TestProducer::new(bootstrap);
    let writer2 = schema(ORDER_V2);
    for _ in 0..20 {
        let record = avro_framed(v2, &writer2, order(2, now_ms()));
        producer.send(&orders, 0, Some(&record));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    producer.flush();
    eventually("version 2 read", Duration::from_secs(30), || async {
        let st = stream_status(&pw.status().await, "orders");
        let ids: Vec<u64> = st["schemas"].as_array().unwrap().iter().filter_map(|x| x["id"].as_u64()).collect();
        let fresh = st["freshness_lag_seconds"].as_f64().is_some_and(|l| l < 5.0);
        if ids.contains(&u64::from(v2)) && fresh && st["invalid"]["missing_field"] == 0 {
            Ok(())
        } else {
            Err(st.to_string())
        }
    })
    .await;
    // version 3 drops it: missing_field, with the schema named; corrupt and truncated
    // datums and an id the registry does not know, each counted by its reason
    let v3 = registry.register(&subject, &own(ORDER_V3), &[]).await;
    let dropped = avro_framed(v3, &schema(ORDER_V3), {
        Avro::Record(vec![
            ("order_id".into(), Avro::String("o-3".into())),
            ("channel".into(), Avro::Enum(0, "web".into())),
        ])
    });
    let good = avro_framed(v2, &schema(ORDER_V2), order(2, now_ms()));
    let mut unknown = good.clone();
    unknown[1..5].copy_from_slice(&987_654u32.to_be_bytes());
    let truncated = good[..good.len() - 3].to_vec();
    let mut corrupt = good.clone();
    corrupt[5] = 0x01; // order_id's length: -1
    for (record, n) in [(&dropped, 3), (&unknown, 2), (&truncated, 4), (&corrupt, 1)] {
        for _ in 0..n {
            producer.send(&orders, 0, Some(record));
        }
    }
    producer.flush();
    let m = eventually("each bad record counted by its reason", Duration::from_secs(30), || async {
        let m = pw.metrics().await;
        let seen = ["missing_field", "unknown_schema", "bad_encoding"].map(|r| invalid(&m, r));
        if seen == [3.0, 2.0, 5.0] {
            Ok(m)
        } else {
            Err(format!("{seen:?}"))
        }
    })
    .await;
    assert_eq!(invalid(&m, "not_json"), 0.0);
    assert_eq!(m.value("pipewatch_stream_schema_changes_total", &[("stream", "orders")]), Some(3.0));
    let st = stream_status(&pw.status().await, "orders");
    let problems: Vec<&str> = st["schemas"].as_array().unwrap().iter().filter_map(|x| x["problem"].as_str()).collect();
    assert_eq!(
        problems,
        [format!("schema {v3} has no field /created_at"), "schema 987654 is not in the registry".to_string()],
        "{st}"
    );
    traffic.stop();
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_outage_holds_the_records_back_names_the_registry_and_loses_nothing() {
    let (bootstrap, registry) = (broker().await, schema_registry().await);
    let proxy = RegistryProxy::start(registry).await;
    let orders = unique_topic("avro-orders");
    create_topic(bootstrap, &orders, 1).await.unwrap();
    let subject = format!("{orders}-value");
    let v1 = registry.register(&subject, ORDER_V1, &[]).await;
    let producer = TestProducer::new(bootstrap);
    let send = |id: u32, version: u8, n: usize| {
        let writer = schema(if version == 1 { ORDER_V1 } else { ORDER_V2 });
        for _ in 0..n {
            producer.send(&orders, 0, Some(&avro_framed(id, &writer, order(version, now_ms()))));
        }
        producer.flush();
    };
    send(v1, 1, 50);
    let body = format!("[schema_registry]\nurl = \"{}\"\ntimeout = \"1s\"\n{}", proxy.url, avro_stream(&orders));
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    let records = |m: &Metrics| m.value("pipewatch_records_total", &[("stream", "orders"), ("partition", "0")]);
    eventually("the first 50 read", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        if records(&m) == Some(50.0) && m.cause("orders").as_deref() == Some("ok") {
            Ok(())
        } else {
            Err(format!("{:?} {:?}", records(&m), m.cause("orders")))
        }
    })
    .await;
    // the registry goes away; a new version's records arrive
    proxy.set_down(true);
    let v2 = registry.register(&subject, ORDER_V2, &[]).await;
    send(v2, 2, 30);
    send(v1, 1, 20);
    // and 100 MB more: past what is held in memory (64 MiB), the partition is paused
    let writer = schema(ORDER_V2);
    for _ in 0..1000 {
        let mut big = order(2, now_ms());
        if let Avro::Record(fields) = &mut big {
            let tags = fields.iter_mut().find(|(name, _)| name == "tags").unwrap();
            tags.1 = Avro::Map([("note".to_string(), Avro::String("x".repeat(100_000)))].into_iter().collect());
        }
        producer.send(&orders, 0, Some(&avro_framed(v2, &writer, big)));
    }
    producer.flush();
    let m = pw.wait_cause("orders", "schema_registry_unreachable", Duration::from_secs(30)).await;
    assert_eq!(m.value("pipewatch_schema_registry_up", &[]), Some(0.0));
    assert_eq!(records(&m), Some(50.0), "the records wait for their schema, none read past it");
    let paused_at = eventually("the partition paused at the memory limit", Duration::from_secs(30), || async {
        let m = pw.metrics().await;
        match (
            m.value("pipewatch_partitions_paused_for_schema", &[]),
            m.value("pipewatch_records_held_for_schema", &[]),
        ) {
            (Some(1.0), Some(held)) => Ok(held),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // paused: what is written now stays in Kafka until the partition resumes
    send(v1, 1, 100);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = pw.metrics().await.value("pipewatch_records_held_for_schema", &[]).unwrap();
    assert_eq!(held, paused_at, "paused: no more records come in");
    assert!(held >= 600.0, "{held} records held: the limit is 64 MiB of them");
    let total_invalid: f64 =
        m.0.lines()
            .filter(|l| l.starts_with("pipewatch_records_invalid_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
    assert_eq!(total_invalid, 0.0, "no record counted invalid while the registry is down");
    let (code, why) = pw.get("/readyz").await;
    assert_eq!(code, 503);
    assert!(
        why.contains(&format!("schema registry unreachable for stream orders: records wait for schema {v2}")),
        "{why}"
    );
    let st = stream_status(&pw.status().await, "orders");
    assert_eq!(st["waiting_for_schemas"][0], v2, "{st}");
    // back: every record read once, in order, none invalid
    proxy.set_down(false);
    let m = eventually("every record read once the registry is back", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        match (records(&m), m.cause("orders").as_deref()) {
            (Some(1200.0), Some("ok")) => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(m.value("pipewatch_schema_registry_up", &[]), Some(1.0));
    for reason in ["missing_field", "bad_encoding", "unknown_schema"] {
        assert_eq!(invalid(&m, reason), 0.0, "{reason}");
    }
    assert_eq!(pw.get("/readyz").await.0, 200);
    let position = m.value("pipewatch_partition_position_offset", &[("stream", "orders"), ("partition", "0")]);
    assert_eq!(position, Some(1200.0));
    assert_eq!(m.value("pipewatch_records_held_for_schema", &[]), Some(0.0));
    assert_eq!(m.value("pipewatch_partitions_paused_for_schema", &[]), Some(0.0));
    pw.stop().await;
}

/// The address the orders' Protobuf schema imports (registered as its own subject).
const ADDRESS_PROTO: &str = r#"syntax = "proto3";
package shop.common;
message Address { string street = 1; string country = 2; }
"#;

/// The orders as Protobuf: a refund message first (the records are the second message),
/// the event time a google.protobuf.Timestamp after a nested message, a repeated one and
/// a map.
const ORDER_PROTO: &str = r#"syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
import "shop/common/address.proto";
message Refund { string order_id = 1; }
message Order {
  enum Channel { WEB = 0; APP = 1; }
  message Item { string sku = 1; double price = 2; }
  string order_id = 1;
  shop.common.Address shipping = 2;
  repeated Item items = 3;
  map<string, string> tags = 4;
  Channel channel = 5;
  google.protobuf.Timestamp created_at = 6;
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_orders_with_an_imported_schema_paired_with_json_behaviour_8h_behind() {
    use prost_reflect::{DynamicMessage, Kind, Value};
    let (bootstrap, registry) = (broker().await, schema_registry().await);
    let (orders, behaviour) = (unique_topic("proto-orders"), unique_topic("behaviour"));
    for t in [&orders, &behaviour] {
        create_topic(bootstrap, t, 1).await.unwrap();
    }
    // the imported file first, under its own subject, then the schema that imports it
    let common = format!("{orders}-shop.common.Address");
    let own = |text: &str| format!("{text}// {orders}\n");
    registry.register_as("PROTOBUF", &common, &own(ADDRESS_PROTO), &[]).await;
    let id = registry
        .register_as(
            "PROTOBUF",
            &format!("{orders}-value"),
            &own(ORDER_PROTO),
            &[("shop/common/address.proto", &common, 1)],
        )
        .await;
    // the producer's own descriptors, from the same text
    let schema = pipewatch_core::protobuf::ProtoSchema::compile(
        ORDER_PROTO,
        &[("shop/common/address.proto".to_string(), ADDRESS_PROTO.to_string())],
    )
    .unwrap();
    let desc = schema.message(Some("shop.Order"), &[]).unwrap();
    let message_of = |field: &str| match desc.get_field_by_name(field).unwrap().kind() {
        Kind::Message(m) => m,
        _ => panic!("{field}"),
    };
    let (address, item, timestamp) = (message_of("shipping"), message_of("items"), message_of("created_at"));
    let order = move |now: i64| {
        let mut m = DynamicMessage::new(desc.clone());
        m.set_field_by_name("order_id", Value::String(format!("o-{now}")));
        let mut a = DynamicMessage::new(address.clone());
        a.set_field_by_name("country", Value::String("DE".into()));
        m.set_field_by_name("shipping", Value::Message(a));
        let items = (0..3)
            .map(|k| {
                let mut i = DynamicMessage::new(item.clone());
                i.set_field_by_name("sku", Value::String(format!("SKU-{k}")));
                i.set_field_by_name("price", Value::F64(9.5));
                Value::Message(i)
            })
            .collect();
        m.set_field_by_name("items", Value::List(items));
        // every other order from the web: proto3 leaves WEB (0) out
        m.set_field_by_name("channel", Value::EnumNumber((now / 100 % 2) as i32));
        let mut t = DynamicMessage::new(timestamp.clone());
        t.set_field_by_name("seconds", Value::I64(now / 1000));
        t.set_field_by_name("nanos", Value::I32((now % 1000) as i32 * 1_000_000));
        m.set_field_by_name("created_at", Value::Message(t));
        protobuf_framed(id, &[1], &m)
    };
    let eight_hours = 8 * 3600 * 1000;
    let traffic = Traffic::start(
        bootstrap,
        10.0,
        vec![Target::bytes(&orders, 0, order), Target::new(&behaviour, 0, move |now| event(now - eight_hours))],
    );
    let body = format!(
        r#"
[schema_registry]
url = "{}"
[[stream]]
name = "orders"
topic = "{orders}"
value_format = "protobuf"
event_time = {{ field = "/created_at", format = "rfc3339" }}
segments = [{{ name = "channel", field = "/channel" }}, {{ name = "country", field = "/shipping/country" }}]
[[stream]]
name = "behaviour"
topic = "{behaviour}"
event_time = {{ field = "/ts", format = "epoch_millis" }}
[[pair]]
name = "orders_behaviour"
leader = "orders"
follower = "behaviour"
"#,
        registry.url
    );
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    let m = eventually("behaviour 8 h behind the Protobuf orders", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        let lag = m.value("pipewatch_sync_lag_seconds", &[("pair", "orders_behaviour")]);
        match (m.cause("orders").as_deref(), m.cause("behaviour").as_deref(), lag) {
            (Some("ok"), Some("event_time_delayed"), Some(lag)) if (lag - 28_800.0).abs() < 5.0 => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let segment = |value: &str| {
        m.value("pipewatch_segment_records_total", &[("stream", "orders"), ("segment", "channel"), ("value", value)])
    };
    assert!(
        segment("WEB").unwrap_or(0.0) > 0.0 && segment("APP").unwrap_or(0.0) > 0.0,
        "{:?}",
        (segment("WEB"), segment("APP"))
    );
    assert!(m.value("pipewatch_segment_records_total", &[("segment", "country"), ("value", "DE")]).unwrap() > 0.0);
    let invalid: f64 =
        m.0.lines()
            .filter(|l| l.starts_with("pipewatch_records_invalid_total{stream=\"orders\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
    assert_eq!(invalid, 0.0);
    let st = stream_status(&pw.status().await, "orders");
    assert_eq!(st["schemas"][0]["id"], id, "{st}");
    traffic.stop();
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generator_writes_avro_orders_through_the_registry_as_compose_runs_it() {
    let (bootstrap, registry) = (broker().await, schema_registry().await);
    let (orders, behaviour) = (unique_topic("gen-orders"), unique_topic("gen-behaviour"));
    for t in [&orders, &behaviour] {
        create_topic(bootstrap, t, 3).await.unwrap();
    }
    let generator = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipewatch"))
        .args(["generate", "--bootstrap-servers", bootstrap, "--orders-topic", &orders])
        .args(["--behaviour-topic", &behaviour, "--rate", "20", "--duration", "60s", "--invalid-share", "0.1"])
        .args(["--orders-format", "avro", "--schema-registry", &registry.url])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start pipewatch generate");
    let body = format!(
        "[schema_registry]\nurl = \"{}\"\n{}\n[[stream]]\nname = \"behaviour\"\ntopic = \"{behaviour}\"\n\
         event_time = {{ field = \"/ts\", format = \"epoch_millis\" }}\n",
        registry.url,
        avro_stream(&orders)
    );
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    let m = pw.wait_cause("orders", "ok", Duration::from_secs(60)).await;
    let values = ["web", "app", "email"]
        .map(|v| m.value("pipewatch_segment_records_total", &[("stream", "orders"), ("value", v)]).unwrap_or(0.0));
    assert!(values.iter().all(|n| *n > 0.0), "every channel counted from the Avro enum: {values:?}");
    let st = stream_status(&pw.status().await, "orders");
    assert_eq!(st["schemas"][0]["subject"].as_str(), Some(format!("{orders}-value").as_str()), "{st}");
    // the generator's invalid orders: cut before their event time
    eventually("the generator's invalid orders counted as bad encoding", Duration::from_secs(30), || async {
        let st = stream_status(&pw.status().await, "orders");
        let bad = st["invalid"]["bad_encoding"].as_u64().unwrap_or(0);
        let others: u64 = st["invalid"].as_object().unwrap().values().filter_map(|v| v.as_u64()).sum::<u64>() - bad;
        if bad > 0 && others == 0 {
            Ok(())
        } else {
            Err(st["invalid"].to_string())
        }
    })
    .await;
    drop(generator);
    pw.stop().await;
}

/// The behaviour events in Avro: the user and when.
const EVENT: &str = r#"{"type": "record", "name": "Event", "namespace": "shop", "fields": [
    {"name": "user_id", "type": "string"},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_avro_follower_is_joined_by_the_default_every_partition_read_and_its_own_counts_stay_its() {
    let (bootstrap, registry) = (broker().await, schema_registry().await);
    let (orders, behaviour) = (unique_topic("orders"), unique_topic("avro-behaviour"));
    for t in [&orders, &behaviour] {
        create_topic(bootstrap, t, 2).await.unwrap();
    }
    let own = EVENT.replacen(r#""namespace": "shop","#, &format!(r#""namespace": "shop", "doc": "{behaviour}","#), 1);
    let id = registry.register(&format!("{behaviour}-value"), &own, &[]).await;
    let writer = schema(EVENT);
    let event = |user: &str, t: i64| {
        let value =
            Avro::Record(vec![("user_id".into(), Avro::String(user.into())), ("ts".into(), Avro::TimestampMillis(t))]);
        avro_framed(id, &writer, value)
    };
    // 30 orders over both partitions: 24 from search whose users the behaviour stream saw
    // 10 s before, 6 from social never seen; the behaviour read from before the first
    // order and past the last one's window on both partitions
    let base = now_ms() - 600_000;
    let producer = TestProducer::new(bootstrap);
    for p in 0..2 {
        producer.send(&behaviour, p, Some(&event("nobody", base - 40_000)));
    }
    for k in 0..30 {
        let (user, referral) = if k < 24 { (format!("u{k}"), "search") } else { (format!("s{k}"), "social") };
        let t = base + k * 1000;
        if referral == "search" {
            // not co-partitioned: the user's behaviour on the other partition than its order
            producer.send(&behaviour, ((k + 1) % 2) as i32, Some(&event(&user, t - 10_000)));
        }
        producer.send(&orders, (k % 2) as i32, Some(crate::join::order(&user, referral, t).as_bytes()));
    }
    for p in 0..2 {
        producer.send(&behaviour, p, Some(&event("nobody", base + 60_000)));
    }
    producer.flush();
    // the join tests' config, the behaviour in Avro
    let joined = crate::join::join_config(&orders, &behaviour);
    let avro = format!("topic = \"{behaviour}\"\nvalue_format = \"avro\"");
    assert!(joined.contains(&format!("topic = \"{behaviour}\"")));
    let body = format!("[schema_registry]\nurl = \"{}\"\n", registry.url)
        + &joined.replace(&format!("topic = \"{behaviour}\""), &avro);
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    let judged = |m: &Metrics, outcome: &str, value: &str| {
        let labels = [("pair", "orders_behaviour"), ("outcome", outcome), ("segment", "referral"), ("value", value)];
        m.value("pipewatch_join_records_total", &labels)
    };
    let m = eventually("every order judged", Duration::from_secs(60), || async {
        let m = pw.metrics().await;
        let all = ["matched", "missing", "unjudged"].map(|o| {
            m.value("pipewatch_join_records_total", &[("pair", "orders_behaviour"), ("outcome", o), ("segment", "")])
        });
        match all {
            [Some(a), Some(b), Some(c)] if a + b + c == 30.0 => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!((judged(&m, "matched", "search"), judged(&m, "missing", "search")), (Some(24.0), Some(0.0)));
    assert_eq!((judged(&m, "matched", "social"), judged(&m, "missing", "social")), (Some(0.0), Some(6.0)));
    // the follower stream counts its own records, once: the join's copy is not counted
    let records = ["0", "1"].map(|p| m.value("pipewatch_records_total", &[("stream", "behaviour"), ("partition", p)]));
    assert_eq!(records, [Some(14.0), Some(14.0)]);
    let status = pw.status().await;
    assert_eq!(status["pairs"][0]["join"]["partitions"], "all", "{}", status["pairs"][0]);
    pw.stop().await;
}
