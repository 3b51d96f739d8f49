//! The per-record path: extract the event time from a ~400-byte JSON order and update
//! its partition tracker (`Monitor::record`), with the timestamp field last and first.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
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

#[derive(serde::Deserialize)]
struct CreatedAt<'a> {
    created_at: &'a str,
}

/// Twelve partitions assigned to stream 0, read up to their (empty) log end.
fn caught_up(monitor: &mut Monitor) {
    for p in 0..12 {
        monitor.assign(0, p, StartPosition::At(0), NOW);
        monitor.log_end(0, p, 0, NOW);
        monitor.position(0, p, 0);
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("record_path");
    for (name, ts_first) in [("field_last", false), ("field_first", true)] {
        let payload = order(ts_first);
        let spec = StreamSpec {
            name: "orders".into(),
            topic: "orders".into(),
            extractor: Extractor::new(
                EventTimeSource::Field {
                    pointer: JsonPointer::parse("/created_at").unwrap(),
                    format: TimeFormat::Rfc3339,
                },
                300_000,
            ),
            max_silence_ms: 120_000,
            max_record_delay_ms: 600_000,
            min_rate: None,
            max_rate: None,
            baseline: None,
            segments: Vec::new(),
            max_segment_values: 50,
        };
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

criterion_group!(benches, bench);
criterion_main!(benches);
