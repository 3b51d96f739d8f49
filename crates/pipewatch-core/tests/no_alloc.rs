//! The per-record path does not allocate: `Monitor::record` is run under a global
//! allocator that counts, for valid records of every time format and for every kind
//! of invalid record.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use pipewatch_core::segment::SegmentSpec;
use pipewatch_core::{
    EventTimeSource, Extractor, JsonPointer, Monitor, MonitorSettings, StartPosition, StreamSpec, TimeFormat,
};

struct Counting;

thread_local! {
    /// Only the measuring thread counts, into its own counter: the test harness's threads
    /// and the other tests (run in parallel) allocate while a test runs, and a loaded
    /// machine lets those allocations fall inside the measured window.
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    if MEASURING.with(Cell::get) {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
    }
}

/// This thread's allocations while measured, so far.
fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// Runs `f` with this thread's allocations counted.
fn measured<T>(f: impl FnOnce() -> T) -> T {
    MEASURING.with(|m| m.set(true));
    let out = f();
    MEASURING.with(|m| m.set(false));
    out
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const NOW: i64 = 1_795_375_975_000;

fn stream(name: &str, pointer: &str, format: TimeFormat) -> StreamSpec {
    StreamSpec {
        name: name.into(),
        topics: vec![name.into()],
        topic_pattern: None,
        value_format: pipewatch_core::ValueFormat::Json,
        message: None,
        extractor: Extractor::new(
            EventTimeSource::Field { pointer: JsonPointer::parse(pointer).unwrap(), format },
            300_000,
        ),
        max_silence_ms: 120_000,
        max_record_delay_ms: 600_000,
        min_rate: None,
        max_rate: None,
        baseline: None,
        segments: Vec::new(),
        max_segment_values: 50,
    }
}

#[test]
fn recording_a_record_does_not_allocate() {
    // behaviour events counted by two segments (values interned at first sight, then
    // looked up; past the cap of 3 they are `other`)
    let segment =
        |name: &str, field: &str| SegmentSpec { name: name.into(), pointer: JsonPointer::parse(field).unwrap() };
    let streams = vec![
        stream("orders", "/created_at", TimeFormat::Rfc3339),
        StreamSpec {
            segments: vec![segment("channel", "/channel"), segment("event", "/meta/event")],
            max_segment_values: 3,
            ..stream("behaviour", "/meta/ts", TimeFormat::EpochMillis)
        },
    ];
    let mut monitor =
        Monitor::new(MonitorSettings { idle_partition_timeout_ms: 300_000, rate_window_ms: 60_000 }, streams, vec![]);
    // A downstream consumer reads both streams: every valid record also updates the
    // partition's offset index.
    let analytics = pipewatch_core::spec::ConsumerSpec {
        name: "analytics".into(),
        group: "analytics".into(),
        streams: vec![0, 1],
        max_lag_ms: 600_000,
        max_stall_ms: 300_000,
    };
    monitor.watch_consumer(analytics, NOW);
    for s in 0..2 {
        for p in 0..4 {
            monitor.assign_partition(s, 0, p, StartPosition::At(0), NOW);
            monitor.log_end(s, p, 0, NOW);
        }
    }
    let long = "x".repeat(300);
    let records: Vec<(usize, Vec<u8>)> = vec![
        (
            0,
            format!(r#"{{"id":"{long}","items":[{{"a":[1,2]}}],"created_at":"2026-11-22T19:32:54.123Z"}}"#)
                .into_bytes(),
        ),
        (0, br#"{"created_at":"2026-11-22T19:32:54Z","x":"a\"b"}"#.to_vec()),
        (1, br#"{"user":"u\u0031","meta":{"ts":1795375974000}}"#.to_vec()),
        (1, br#"{"channel":"app","meta":{"event":"purchase","ts":1795375974000}}"#.to_vec()),
        (1, br#"{"channel":"web","meta":{"event":"view","ts":1795375974000}}"#.to_vec()),
        (1, br#"{"channel":"email","meta":{"event":"click","ts":1795375974000}}"#.to_vec()),
        (1, br#"{"channel":"sms","meta":{"event":"signup","ts":1795375974000}}"#.to_vec()),
        (1, br#"{"meta":{"ts":"1795375974000"}}"#.to_vec()),
        (1, b"not json".to_vec()),
        (1, br#"{"meta":{}}"#.to_vec()),
        (1, br#"{"meta":{"ts":"soon"}}"#.to_vec()),
        (1, br#"{"meta":{"ts":9795375974000}}"#.to_vec()),
        (1, Vec::new()),
    ];
    // first sight of each segment value: interned (not measured)
    for (i, (s, payload)) in records.iter().enumerate() {
        monitor.record(*s, (i % 4) as i32, 0, Some(payload), None, NOW);
    }
    let round = |monitor: &mut Monitor, round: i64| {
        for (i, (s, payload)) in records.iter().enumerate() {
            monitor.record(*s, (i % 4) as i32, round, Some(payload), None, NOW);
        }
        monitor.record(1, 0, round, None, None, NOW);
    };
    // The offset indexes grow while records wait (no consumer offsets are known here), to
    // their bound of OFFSET_INDEX_LEN: a few allocations per partition, then their rings
    // are reused. Filled first, then measured.
    for r in 1..=600 {
        round(&mut monitor, r);
    }
    let before = allocations();
    measured(|| {
        for r in 601..=1600i64 {
            round(&mut monitor, r);
        }
    });
    let after = allocations();
    assert_eq!(after - before, 0, "allocations on the per-record path");
    // the counter does count what the measured thread allocates
    let check = allocations();
    measured(|| std::hint::black_box(vec![0u8; 64]));
    assert_eq!(allocations() - check, 1, "the counting allocator counts");
    // and the records were really seen
    let snapshot = monitor.tick(NOW);
    let read: u64 = snapshot.streams.iter().flat_map(|s| &s.partitions).map(|p| p.records).sum();
    assert_eq!(read, 22_400 + records.len() as u64);
    let invalid: u64 = snapshot.streams[1].partitions.iter().flat_map(|p| p.invalid.values()).sum();
    assert_eq!(invalid, 9_605);
    let channel = &snapshot.streams[1].segments[0];
    let counted: Vec<(&str, u64)> = channel.values.iter().map(|v| (v.value.as_str(), v.records)).collect();
    // "none": the records without a channel that are JSON; past the cap of 3, other
    assert_eq!(counted, [("none", 8005), ("app", 1601), ("web", 1601), ("other", 3202)]);
    assert_eq!(channel.overflow, 3202);
    monitor.committed_offsets(0, &[pipewatch_core::Committed { stream: 0, slot: 0, offset: Some(1500) }], NOW);
    let after_commit = monitor.tick(NOW);
    let consumer = &after_commit.consumers[0];
    assert!(consumer.streams[0].partitions[0].lag_seconds.is_some(), "the index knows offset 1500: {consumer:?}");
    // an impossible timestamp (chrono rejects it) allocates nothing either
    let before = allocations();
    measured(|| {
        for round in 0..1000i64 {
            let payload = br#"{"created_at":"2026-02-30T19:32:54+24:00"}"#;
            monitor.record(0, 0, 1000 + round, Some(payload), None, NOW);
        }
    });
    assert_eq!(allocations() - before, 0, "allocations on the bad_timestamp path");
    let invalid: u64 = monitor.tick(NOW).streams[0].partitions.iter().map(|p| p.invalid["bad_timestamp"]).sum();
    assert_eq!(invalid, 1000);
}

#[test]
fn reading_a_local_time_in_its_zone_does_not_allocate() {
    let local = StreamSpec {
        extractor: Extractor::new(
            EventTimeSource::Field { pointer: JsonPointer::parse("/created_at").unwrap(), format: TimeFormat::Rfc3339 },
            300_000,
        )
        .with_timezone(Some(chrono_tz::Asia::Shanghai)),
        ..stream("orders", "/created_at", TimeFormat::Rfc3339)
    };
    let mut monitor = Monitor::new(
        MonitorSettings { idle_partition_timeout_ms: 300_000, rate_window_ms: 60_000 },
        vec![local],
        vec![],
    );
    monitor.assign_partition(0, 0, 0, StartPosition::At(0), NOW);
    // Shanghai's wall clock a second before NOW, with and without a fraction, an offset
    // (which wins), and a time that is no time at all
    let records: [&[u8]; 4] = [
        br#"{"id":"o-1","created_at":"2026-11-23 03:32:54"}"#,
        br#"{"id":"o-2","created_at":"2026-11-23T03:32:54.500"}"#,
        br#"{"id":"o-3","created_at":"2026-11-22T19:32:54Z"}"#,
        br#"{"id":"o-4","created_at":"2026-11-23 27:32:54"}"#,
    ];
    let before = allocations();
    measured(|| {
        for round in 0..1000i64 {
            for (i, payload) in records.iter().enumerate() {
                monitor.record(0, 0, round * 4 + i as i64, Some(payload), None, NOW);
            }
        }
    });
    assert_eq!(allocations() - before, 0, "allocations on the local-time path");
    let s = monitor.tick(NOW);
    assert_eq!(s.streams[0].watermark_ms, Some(NOW - 500), "the local times were read in Shanghai's zone");
    assert_eq!(s.streams[0].invalid["bad_timestamp"], 1000, "hour 27 is no time");
}

#[test]
fn reading_an_avro_event_time_does_not_allocate() {
    use pipewatch_core::avro::Schema;
    // a Debezium change event: the event time in the row after the change
    let schema = Schema::parse(
        r#"{"type": "record", "name": "Envelope", "fields": [
            {"name": "before", "type": ["null", {"type": "record", "name": "Row", "fields": [
                {"name": "id", "type": "long"},
                {"name": "tags", "type": {"type": "array", "items": "string"}},
                {"name": "created_at", "type": {"type": "long", "connect.name": "io.debezium.time.MicroTimestamp"}}]}]},
            {"name": "after", "type": ["null", "Row"]},
            {"name": "op", "type": "string"}]}"#,
    )
    .unwrap();
    let plan = schema.plan(&["after", "created_at"], TimeFormat::Rfc3339).unwrap();
    // before: null; after: {id 7, tags ["a"], created_at NOW µs}; op "c" (hand-encoded)
    let mut datum = vec![0, 2, 14, 2, 2, b'a', 0];
    let mut micros = (NOW * 1000) << 1;
    loop {
        let byte = (micros & 0x7f) as u8;
        micros >>= 7;
        if micros == 0 {
            datum.push(byte);
            break;
        }
        datum.push(byte | 0x80);
    }
    datum.extend([2, b'c']);
    assert_eq!(plan.time(&schema, &datum, None), Ok(NOW));
    let before = allocations();
    let found = measured(|| (0..1000).filter(|_| plan.time(&schema, &datum, None) == Ok(NOW)).count());
    assert_eq!(allocations() - before, 0, "allocations on the Avro path");
    assert_eq!(found, 1000);
}

/// A monitor of one stream in `format` with a `channel` segment, partition 0 assigned,
/// the stream's writer schema `(kind, text)` known as id 7 (its first record waited for it).
fn registry_monitor(format: pipewatch_core::ValueFormat, schema: (&str, &str), first: &[u8]) -> Monitor {
    use pipewatch_core::{RecordOutcome, RegisteredSchema, SchemaFetch};
    let spec = StreamSpec {
        value_format: format,
        segments: vec![SegmentSpec { name: "channel".into(), pointer: JsonPointer::parse("/channel").unwrap() }],
        ..stream("orders", "/created_at", TimeFormat::Rfc3339)
    };
    let mut monitor = Monitor::new(
        MonitorSettings { idle_partition_timeout_ms: 300_000, rate_window_ms: 60_000 },
        vec![spec],
        vec![],
    );
    monitor.assign_partition(0, 0, 0, StartPosition::At(0), NOW);
    assert_eq!(monitor.record(0, 0, 0, Some(first), None, NOW), RecordOutcome::Wait(7));
    let (kind, text) = schema;
    let fetch = SchemaFetch::Found(RegisteredSchema {
        kind: kind.into(),
        text: text.into(),
        references: Vec::new(),
        subject: None,
        version: None,
    });
    assert_eq!(monitor.schema_fetched(7, fetch), [(0, 0)]);
    monitor
}

/// Reads `records` once (each segment value's first sight is interned, not measured),
/// then a thousand times over, measured: no allocation. The tick after.
fn read_without_allocating(monitor: &mut Monitor, records: &[Vec<u8>], what: &str) -> pipewatch_core::Snapshot {
    let n = records.len() as i64;
    for (i, r) in records.iter().enumerate() {
        monitor.record(0, 0, i as i64, Some(r), None, NOW);
    }
    let before = allocations();
    measured(|| {
        for round in 1..=1000i64 {
            for (i, r) in records.iter().enumerate() {
                monitor.record(0, 0, round * n + i as i64, Some(r), None, NOW);
            }
        }
    });
    assert_eq!(allocations() - before, 0, "allocations on the {what} path");
    monitor.tick(NOW)
}

/// A segment's values and their counts.
fn segment_counts(s: &pipewatch_core::Snapshot) -> Vec<(String, u64)> {
    s.streams[0].segments[0].values.iter().map(|v| (v.value.clone(), v.records)).collect()
}

#[test]
fn an_avro_stream_with_a_segment_does_not_allocate_per_record() {
    use apache_avro::types::Value as Avro;
    let schema = r#"{"type": "record", "name": "Order", "fields": [
        {"name": "id", "type": "string"},
        {"name": "channel", "type": {"type": "enum", "name": "Channel", "symbols": ["web", "app"]}},
        {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#;
    let reference = apache_avro::Schema::parse_str(schema).unwrap();
    let record = |channel: u32, t: i64| {
        let value = Avro::Record(vec![
            ("id".into(), Avro::String("o-1".into())),
            ("channel".into(), Avro::Enum(channel, ["web", "app"][channel as usize].into())),
            ("created_at".into(), Avro::TimestampMillis(t)),
        ]);
        let mut out = vec![0, 0, 0, 0, 7];
        #[allow(deprecated)]
        out.extend(apache_avro::to_avro_datum(&reference, value).unwrap());
        out
    };
    let mut monitor = registry_monitor(pipewatch_core::ValueFormat::Avro, ("AVRO", schema), &record(0, NOW));
    // a datum cut after its channel, and a JSON record
    let records = [record(0, NOW - 1000), record(1, NOW - 500), record(1, NOW)[..10].to_vec(), b"{}".to_vec()];
    let s = read_without_allocating(&mut monitor, &records, "Avro");
    assert_eq!(s.streams[0].watermark_ms, Some(NOW - 500));
    assert_eq!(s.streams[0].invalid["bad_encoding"], 2002, "a cut datum and a JSON record");
    assert_eq!(
        segment_counts(&s),
        [("web".into(), 1001), ("app".into(), 2002)],
        "the cut record still had its channel"
    );
}

#[test]
fn a_protobuf_stream_with_a_segment_does_not_allocate_per_record() {
    use prost::Message as _;
    use prost_reflect::{DynamicMessage, Kind, Value};
    let schema = r#"syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
enum Channel { WEB = 0; APP = 1; }
message Order { string id = 1; Channel channel = 2; google.protobuf.Timestamp created_at = 3; }
"#;
    let desc =
        pipewatch_core::protobuf::ProtoSchema::compile(schema, &[]).unwrap().message(Some("shop.Order"), &[]).unwrap();
    let Kind::Message(timestamp) = desc.get_field_by_name("created_at").unwrap().kind() else { panic!() };
    // framed with the single message index 0 as one 0 byte; `channel` None leaves it out
    let record = |channel: Option<i32>, t: i64| {
        let mut m = DynamicMessage::new(desc.clone());
        m.set_field_by_name("id", Value::String("o-1".into()));
        if let Some(c) = channel {
            m.set_field_by_name("channel", Value::EnumNumber(c));
        }
        let mut ts = DynamicMessage::new(timestamp.clone());
        ts.set_field_by_name("seconds", Value::I64(t / 1000));
        ts.set_field_by_name("nanos", Value::I32((t % 1000) as i32 * 1_000_000));
        m.set_field_by_name("created_at", Value::Message(ts));
        let mut out = vec![0, 0, 0, 0, 7, 0];
        out.extend(m.encode_to_vec());
        out
    };
    let mut monitor = registry_monitor(pipewatch_core::ValueFormat::Protobuf, ("PROTOBUF", schema), &record(None, NOW));
    // WEB (0) left out, as proto3 writers do; a record cut after its channel; JSON
    let app = record(Some(1), NOW - 500);
    let records = [record(None, NOW - 1000), app.clone(), app[..13].to_vec(), b"{}".to_vec()];
    let s = read_without_allocating(&mut monitor, &records, "Protobuf");
    assert_eq!(s.streams[0].watermark_ms, Some(NOW - 500));
    assert_eq!(s.streams[0].invalid["missing_field"], 1001, "a record cut after its channel has no created_at");
    assert_eq!(s.streams[0].invalid["bad_encoding"], 1001, "a JSON record");
    assert_eq!(
        segment_counts(&s),
        [("WEB".into(), 1001), ("APP".into(), 2002)],
        "WEB is proto3's default: left out, it is still WEB"
    );
}
