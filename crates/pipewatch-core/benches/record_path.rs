//! The per-record path: extract the event time from a ~400-byte JSON order and update
//! its partition tracker (`Monitor::record`), with the timestamp field last and first;
//! and the event time of an Avro order (field 13 of 14) read by its field plan, against
//! apache-avro decoding the datum and pipewatch's JSON path on the same order as JSON;
//! the same for the order as Protobuf, against prost-reflect's `DynamicMessage::decode`;
//! and a pair's join: the order as its leader (its `customer_id` the key, `channel` the
//! segment) and as its follower, each against the same stream without the join.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pipewatch_core::join::JoinPartitions;
use pipewatch_core::segment::SegmentSpec;
use pipewatch_core::spec::ConsumerSpec;
use pipewatch_core::{
    EventTimeSource, Extractor, JsonPointer, Monitor, MonitorSettings, StartPosition, StreamSpec, TimeFormat,
};
use std::hint::black_box;

const NOW: i64 = 1_795_375_975_000;

fn order(ts_first: bool) -> Vec<u8> {
    let body = r#""order_id":"ord-7f3a9c2e-1b4d-4e8f-9a0b-5c6d7e8f9a0b","customer_id":"cus-000184467","currency":"EUR","total":129.95,"items":[{"sku":"SKU-10442","qty":2,"price":39.99},{"sku":"SKU-88120","qty":1,"price":49.97}],"shipping":{"method":"express","country":"DE","zip":"10115"},"payment":{"method":"card","status":"authorized"},"channel":"web","campaign":"autumn-sale","session_id":"sess-9c8b7a6f5e4d3c2b1a""#;
    let ts = r#""created_at":"2026-11-22T19:32:54.123Z""#;
    let doc = if ts_first { format!("{{{ts},{body}}}") } else { format!("{{{body},{ts}}}") };
    doc.into_bytes()
}

/// A stream of JSON orders on topic `name`, its event time `/created_at`.
fn stream_spec(name: &str, segments: Vec<SegmentSpec>) -> StreamSpec {
    StreamSpec {
        name: name.into(),
        topics: vec![name.into()],
        topic_pattern: None,
        value_format: pipewatch_core::ValueFormat::Json,
        message: None,
        extractor: Extractor::new(
            EventTimeSource::Field { pointer: JsonPointer::parse("/created_at").unwrap(), format: TimeFormat::Rfc3339 },
            300_000,
        ),
        max_silence_ms: 120_000,
        max_record_delay_ms: 600_000,
        min_rate: None,
        max_rate: None,
        baseline: None,
        segments,
        max_segment_values: 50,
    }
}

#[derive(serde::Deserialize)]
struct CreatedAt<'a> {
    created_at: &'a str,
}

/// Twelve partitions assigned to stream 0, read up to their (empty) log end.
fn caught_up(monitor: &mut Monitor) {
    for p in 0..12 {
        monitor.assign_partition(0, 0, p, StartPosition::At(0), NOW);
        monitor.log_end(0, p, 0, NOW);
        monitor.position(0, p, 0);
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("record_path");
    for (name, ts_first) in [("field_last", false), ("field_first", true)] {
        let payload = order(ts_first);
        let spec = stream_spec("orders", Vec::new());
        let mut monitor = Monitor::new(
            MonitorSettings { idle_partition_timeout_ms: 300_000, rate_window_ms: 60_000 },
            vec![spec],
            vec![],
        );
        caught_up(&mut monitor);
        let extractor = monitor.streams().next().unwrap().extractor.clone();
        assert!(extractor.extract(Some(&payload), None, NOW).is_ok());
        group.bench_function(format!("extract_only_{name}"), |b| {
            b.iter(|| extractor.extract(Some(black_box(&payload)), None, NOW))
        });
        // For scale, on the same machine: a full serde_json::Value, and a borrowed
        // one-field struct (both without even parsing the time).
        group.bench_function(format!("serde_json_value_{name}"), |b| {
            b.iter(|| {
                serde_json::from_slice::<serde_json::Value>(black_box(&payload)).map(|v| v.get("created_at").is_some())
            })
        });
        group.bench_function(format!("serde_json_borrowed_struct_{name}"), |b| {
            b.iter(|| serde_json::from_slice::<CreatedAt<'_>>(black_box(&payload)).map(|v| v.created_at.len()))
        });
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{name}_{}B", payload.len()), |b| {
            let mut offset = 0i64;
            b.iter(|| {
                offset += 1;
                monitor.record(0, (offset % 12) as i32, offset, Some(black_box(&payload)), None, NOW);
            })
        });
        // The same with a downstream consumer watching the stream: each record also
        // updates its partition's offset index.
        let mut watched = Monitor::new(
            MonitorSettings { idle_partition_timeout_ms: 300_000, rate_window_ms: 60_000 },
            vec![monitor.streams().next().unwrap().clone()],
            vec![],
        );
        watched.watch_consumer(
            ConsumerSpec {
                name: "analytics".into(),
                group: "analytics".into(),
                streams: vec![0],
                max_lag_ms: 1,
                max_stall_ms: 1,
            },
            NOW,
        );
        caught_up(&mut watched);
        group.bench_function(format!("{name}_{}B_consumer_index", payload.len()), |b| {
            let mut offset = 0i64;
            b.iter(|| {
                offset += 1;
                watched.record(0, (offset % 12) as i32, offset, Some(black_box(&payload)), None, NOW);
            })
        });
        // The same with two segments read from each record (`channel`, `shipping/country`).
        let segment =
            |name: &str, field: &str| SegmentSpec { name: name.into(), pointer: JsonPointer::parse(field).unwrap() };
        let mut segmented = Monitor::new(
            MonitorSettings { idle_partition_timeout_ms: 300_000, rate_window_ms: 60_000 },
            vec![StreamSpec {
                segments: vec![segment("channel", "/channel"), segment("country", "/shipping/country")],
                ..monitor.streams().next().unwrap().clone()
            }],
            vec![],
        );
        caught_up(&mut segmented);
        group.bench_function(format!("{name}_{}B_two_segments", payload.len()), |b| {
            let mut offset = 0i64;
            b.iter(|| {
                offset += 1;
                segmented.record(0, (offset % 12) as i32, offset, Some(black_box(&payload)), None, NOW);
            })
        });
    }
    group.finish();
}

/// An order of 14 fields, the event time the 13th: its Avro schema, datum and JSON.
fn avro_order() -> (&'static str, Vec<u8>, Vec<u8>) {
    use apache_avro::types::Value as Avro;
    let schema = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
        {"name": "order_id", "type": "string"}, {"name": "customer_id", "type": "string"},
        {"name": "currency", "type": "string"}, {"name": "total", "type": "double"},
        {"name": "items", "type": {"type": "array", "items": {"type": "record", "name": "Item", "fields": [
            {"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}, {"name": "price", "type": "double"}]}}},
        {"name": "shipping_method", "type": "string"}, {"name": "country", "type": "string"},
        {"name": "zip", "type": "string"}, {"name": "payment", "type": "string"},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["placed", "authorized", "paid"]}},
        {"name": "campaign", "type": ["null", "string"]}, {"name": "session_id", "type": "string"},
        {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "notes", "type": "string"}]}"#;
    let text = |s: &str| Avro::String(s.into());
    let item = |sku: &str, qty: i32, price: f64| {
        Avro::Record(vec![
            ("sku".into(), text(sku)),
            ("qty".into(), Avro::Int(qty)),
            ("price".into(), Avro::Double(price)),
        ])
    };
    let long =
        "leave the parcel with the neighbour at number 12 if nobody answers; ring twice, the bell is quiet. ".repeat(2);
    let value = Avro::Record(vec![
        ("order_id".into(), text("ord-7f3a9c2e-1b4d-4e8f-9a0b-5c6d7e8f9a0b")),
        ("customer_id".into(), text("cus-000184467")),
        ("currency".into(), text("EUR")),
        ("total".into(), Avro::Double(129.95)),
        ("items".into(), Avro::Array(vec![item("SKU-10442", 2, 39.99), item("SKU-88120", 1, 49.97)])),
        ("shipping_method".into(), text("express")),
        ("country".into(), text("DE")),
        ("zip".into(), text("10115")),
        ("payment".into(), text("card")),
        ("status".into(), Avro::Enum(1, "authorized".into())),
        ("campaign".into(), Avro::Union(1, Box::new(text("autumn-sale")))),
        ("session_id".into(), text("sess-9c8b7a6f5e4d3c2b1a")),
        ("created_at".into(), Avro::TimestampMillis(NOW - 1000)),
        ("notes".into(), Avro::String(long.clone())),
    ]);
    let reference = apache_avro::Schema::parse_str(schema).unwrap();
    #[allow(deprecated)]
    let datum = apache_avro::to_avro_datum(&reference, value).unwrap();
    let json = format!(
        r#"{{"order_id":"ord-7f3a9c2e-1b4d-4e8f-9a0b-5c6d7e8f9a0b","customer_id":"cus-000184467","currency":"EUR","total":129.95,"items":[{{"sku":"SKU-10442","qty":2,"price":39.99}},{{"sku":"SKU-88120","qty":1,"price":49.97}}],"shipping_method":"express","country":"DE","zip":"10115","payment":"card","status":"authorized","campaign":"autumn-sale","session_id":"sess-9c8b7a6f5e4d3c2b1a","created_at":{},"notes":"{long}"}}"#,
        NOW - 1000
    );
    (schema, datum, json.into_bytes())
}

fn avro(c: &mut Criterion) {
    let (schema_json, datum, json) = avro_order();
    let schema = pipewatch_core::avro::Schema::parse(schema_json).unwrap();
    let plan = schema.plan(&["created_at"], TimeFormat::Rfc3339).unwrap();
    assert_eq!(plan.time(&schema, &datum, None), Ok(NOW - 1000));
    let reference = apache_avro::Schema::parse_str(schema_json).unwrap();
    let extractor = Extractor::new(
        EventTimeSource::Field { pointer: JsonPointer::parse("/created_at").unwrap(), format: TimeFormat::EpochMillis },
        300_000,
    );
    assert_eq!(extractor.extract(Some(&json), None, NOW), Ok(NOW - 1000));
    let mut group = c.benchmark_group("avro");
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("field_plan_{}B", datum.len()), |b| {
        b.iter(|| plan.time(&schema, black_box(&datum), None))
    });
    group.bench_function(format!("apache_avro_value_{}B", datum.len()), |b| {
        b.iter(|| {
            #[allow(deprecated)]
            let v = apache_avro::from_avro_datum(&reference, &mut black_box(&datum[..]), None).unwrap();
            matches!(v, apache_avro::types::Value::Record(ref f) if f.len() == 14)
        })
    });
    group.bench_function(format!("json_extract_same_order_{}B", json.len()), |b| {
        b.iter(|| extractor.extract(Some(black_box(&json)), None, NOW))
    });
    // the event time and two segments (the country, a string; the status, an enum):
    // three plans one by one, and one pass
    let country = schema.text_plan(&["country"]).unwrap();
    let status = schema.text_plan(&["status"]).unwrap();
    group.bench_function(format!("time_and_two_segments_plan_by_plan_{}B", datum.len()), |b| {
        b.iter(|| {
            let d = black_box(&datum[..]);
            (
                plan.time(&schema, d, None),
                country.text(&schema, d).map(<[u8]>::len),
                status.text(&schema, d).map(<[u8]>::len),
            )
        })
    });
    let fields = vec![
        (vec!["created_at"], plan.clone(), true),
        (vec!["country"], country.clone(), false),
        (vec!["status"], status.clone(), false),
    ];
    let pass = schema.record_plan(&fields).unwrap();
    group.bench_function(format!("time_and_two_segments_one_pass_{}B", datum.len()), |b| {
        b.iter(|| {
            let mut out = [Err(pipewatch_core::avro::FieldMiss::Missing); pipewatch_core::avro::MAX_FIELDS];
            pass.read(&schema, black_box(&datum), None, &mut out);
            out[0].is_ok() && out[2].is_ok()
        })
    });
    group.finish();
}

/// The order of [`avro_order`] as Protobuf: 14 fields, the event time (a
/// google.protobuf.Timestamp) the 13th.
const ORDER_PROTO: &str = r#"syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
message Order {
  message Item { string sku = 1; int32 qty = 2; double price = 3; }
  enum Status { PLACED = 0; AUTHORIZED = 1; PAID = 2; }
  string order_id = 1; string customer_id = 2; string currency = 3; double total = 4;
  repeated Item items = 5; string shipping_method = 6; string country = 7; string zip = 8;
  string payment = 9; Status status = 10; string campaign = 11; string session_id = 12;
  google.protobuf.Timestamp created_at = 13; string notes = 14;
}
"#;

fn protobuf(c: &mut Criterion) {
    use pipewatch_core::protobuf::ProtoSchema;
    use prost::Message as _;
    use prost_reflect::{DynamicMessage, Kind, Value};
    let schema = ProtoSchema::compile(ORDER_PROTO, &[]).unwrap();
    let desc = schema.message(Some("shop.Order"), &[]).unwrap();
    let message = |field: &str| match desc.get_field_by_name(field).unwrap().kind() {
        Kind::Message(m) => m,
        _ => unreachable!(),
    };
    let mut m = DynamicMessage::new(desc.clone());
    let text = |s: &str| Value::String(s.into());
    for (field, value) in [
        ("order_id", "ord-7f3a9c2e-1b4d-4e8f-9a0b-5c6d7e8f9a0b"),
        ("customer_id", "cus-000184467"),
        ("currency", "EUR"),
        ("shipping_method", "express"),
        ("country", "DE"),
        ("zip", "10115"),
        ("payment", "card"),
        ("campaign", "autumn-sale"),
        ("session_id", "sess-9c8b7a6f5e4d3c2b1a"),
    ] {
        m.set_field_by_name(field, text(value));
    }
    m.set_field_by_name("total", Value::F64(129.95));
    let items = [("SKU-10442", 2, 39.99), ("SKU-88120", 1, 49.97)]
        .into_iter()
        .map(|(sku, qty, price)| {
            let mut i = DynamicMessage::new(message("items"));
            i.set_field_by_name("sku", text(sku));
            i.set_field_by_name("qty", Value::I32(qty));
            i.set_field_by_name("price", Value::F64(price));
            Value::Message(i)
        })
        .collect();
    m.set_field_by_name("items", Value::List(items));
    m.set_field_by_name("status", Value::EnumNumber(1));
    let mut t = DynamicMessage::new(message("created_at"));
    t.set_field_by_name("seconds", Value::I64((NOW - 1000) / 1000));
    m.set_field_by_name("created_at", Value::Message(t));
    let long =
        "leave the parcel with the neighbour at number 12 if nobody answers; ring twice, the bell is quiet. ".repeat(2);
    m.set_field_by_name("notes", Value::String(long));
    let bytes = m.encode_to_vec();
    let plan = ProtoSchema::plan(&desc, &["created_at"], TimeFormat::Rfc3339).unwrap();
    assert_eq!(plan.time(&bytes, None), Ok(NOW - 1000));
    let (_, _, json) = avro_order();
    let extractor = Extractor::new(
        EventTimeSource::Field { pointer: JsonPointer::parse("/created_at").unwrap(), format: TimeFormat::EpochMillis },
        300_000,
    );
    let mut group = c.benchmark_group("protobuf");
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("field_plan_{}B", bytes.len()), |b| b.iter(|| plan.time(black_box(&bytes), None)));
    group.bench_function(format!("prost_reflect_dynamic_message_{}B", bytes.len()), |b| {
        b.iter(|| DynamicMessage::decode(desc.clone(), black_box(&bytes[..])).unwrap())
    });
    group.bench_function(format!("json_extract_same_order_{}B", json.len()), |b| {
        b.iter(|| extractor.extract(Some(black_box(&json)), None, NOW))
    });
    let country = ProtoSchema::text_plan(&desc, &["country"]).unwrap();
    let status = ProtoSchema::text_plan(&desc, &["status"]).unwrap();
    group.bench_function(format!("time_and_two_segments_plan_by_plan_{}B", bytes.len()), |b| {
        b.iter(|| {
            let d = black_box(&bytes[..]);
            (plan.time(d, None), country.text(d).map(<[u8]>::len), status.text(d).map(<[u8]>::len))
        })
    });
    let plans = [plan.clone(), country.clone(), status.clone()];
    group.bench_function(format!("time_and_two_segments_one_pass_{}B", bytes.len()), |b| {
        b.iter(|| {
            let d = black_box(&bytes[..]);
            let mut found = [pipewatch_core::protobuf::Found::default(); 3];
            pipewatch_core::protobuf::scan(&plans, d, &mut found);
            (
                plans[0].time_in(found[0], None),
                plans[1].text_in(found[1], d).map(<[u8]>::len),
                plans[2].text_in(found[2], d).map(<[u8]>::len),
            )
        })
    });
    group.finish();
}

/// The order of customer `k`.
fn order_of(k: usize) -> Vec<u8> {
    let doc = String::from_utf8(order(false)).unwrap();
    doc.replace("cus-000184467", &format!("cus-{k:09}")).into_bytes()
}

fn join(c: &mut Criterion) {
    use pipewatch_core::join::JoinSpec;
    use pipewatch_core::PairSpec;
    let mut group = c.benchmark_group("join");
    group.throughput(Throughput::Elements(1));
    let payloads: Vec<Vec<u8>> = (0..4096).map(order_of).collect();
    let stream = |name: &str| {
        stream_spec(
            name,
            vec![SegmentSpec { name: "channel".into(), pointer: JsonPointer::parse("/channel").unwrap() }],
        )
    };
    let spec = JoinSpec {
        leader_key: JsonPointer::parse("/customer_id").unwrap(),
        follower_key: JsonPointer::parse("/customer_id").unwrap(),
        before_ms: 1_800_000,
        after_ms: 300_000,
        grace_ms: 60_000,
        segments: vec![(0, "channel".into())],
        sample: 1,
        max_keys: 10_000_000,
        max_pending: 10_000_000,
        window_ms: 900_000,
        partitions: JoinPartitions::CoPartitioned,
        incomplete_below: 0.5,
        min_judged: 20,
    };
    // the orders' event time less than that: judged once the follower is ahead, read then
    let now = NOW + spec.after_ms + spec.grace_ms + 2000;
    for joined in [false, true] {
        let pair =
            PairSpec { name: "orders_behaviour".into(), leader: 0, follower: 1, join: joined.then(|| spec.clone()) };
        let mut m = Monitor::new(
            MonitorSettings { idle_partition_timeout_ms: 300_000, rate_window_ms: 60_000 },
            vec![stream("orders"), stream("behaviour")],
            vec![pair],
        );
        for s in 0..2 {
            for p in 0..12 {
                m.assign_partition(s, 0, p, StartPosition::At(0), now);
                m.log_end(s, p, 0, now);
                m.position(s, p, 0);
            }
        }
        // the follower read from before any order's window, then ahead of every order's
        // window and grace: each tick judges what waits, looking its key up in the slices
        let at =
            |t: i64| format!(r#"{{"customer_id":"x","created_at":"{}"}}"#, pipewatch_core::time::format_rfc3339(t));
        let (early, ahead) = (at(NOW - spec.before_ms - 60_000), at(now - 1000));
        for p in 0..12 {
            m.record(1, p, 0, Some(early.as_bytes()), None, now);
            m.record(1, p, 1, Some(ahead.as_bytes()), None, now);
        }
        let name = if joined { "with_join" } else { "without_join" };
        group.bench_function(format!("follower_{name}"), |b| {
            let mut offset = 0i64;
            b.iter(|| {
                offset += 1;
                let doc = &payloads[offset as usize % payloads.len()];
                m.record(1, (offset % 12) as i32, offset, Some(black_box(doc)), None, now);
            })
        });
        // a tick a second at 100 000 orders a second: its judging is part of the cost
        group.bench_function(format!("leader_{name}_tick_per_100000"), |b| {
            let mut offset = 0i64;
            b.iter(|| {
                offset += 1;
                let doc = &payloads[offset as usize % payloads.len()];
                m.record(0, (offset % 12) as i32, offset, Some(black_box(doc)), None, now);
                if offset % 100_000 == 0 {
                    m.tick(now);
                }
            })
        });
        if joined {
            // what was measured: orders judged, each matched (its customer followed)
            let s = m.tick(now);
            let total = s.pairs[0].join.as_ref().expect("the join").total;
            assert!(total.matched > 0 && total.missing == 0 && total.unjudged == 0, "judged: {total:?}");
        }
    }
    group.finish();
}

criterion_group!(benches, bench, avro, protobuf, join);
criterion_main!(benches);
