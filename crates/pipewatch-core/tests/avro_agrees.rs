//! The Avro field plans against the reference implementation (apache-avro): on generated
//! records of several shapes, with the target at several depths, what a plan reads is
//! what was written; on random bytes and mutated datums it never panics. Each property
//! runs a bounded number of cases.

use apache_avro::types::Value as Avro;
use pipewatch_core::avro::{FieldMiss, FieldPlan, Hit, Schema};
use pipewatch_core::TimeFormat;
use proptest::prelude::*;

/// The target at depth 1 (`/at`), 2 (`/inner/at`, behind a union) and 3
/// (`/inner/deep/at`), after arrays, maps and unions of every length.
const SCHEMA: &str = r#"{
    "type": "record", "name": "Outer", "namespace": "t",
    "fields": [
        {"name": "name", "type": "string"},
        {"name": "list", "type": {"type": "array", "items": ["null", "long", "string"]}},
        {"name": "dict", "type": {"type": "map", "values": {"type": "array", "items": "double"}}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "inner", "type": ["null", {"type": "record", "name": "Inner", "fields": [
            {"name": "flag", "type": "boolean"},
            {"name": "blob", "type": "bytes"},
            {"name": "deep", "type": {"type": "record", "name": "Deep", "fields": [
                {"name": "n", "type": "int"},
                {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}},
            {"name": "at", "type": {"type": "string"}}]}]},
        {"name": "tail", "type": ["null", "string"]}
    ]}"#;

#[allow(deprecated)]
fn encode(value: Avro) -> Vec<u8> {
    let reference = apache_avro::Schema::parse_str(SCHEMA).unwrap();
    apache_avro::to_avro_datum(&reference, value).unwrap()
}

fn rfc3339(ms: i64) -> String {
    pipewatch_core::time::format_rfc3339(ms)
}

prop_compose! {
    fn record()(
        name in ".{0,40}",
        list in prop::collection::vec(prop_oneof![Just(None), any::<i64>().prop_map(Some)], 0..20),
        dict in prop::collection::vec((".{0,8}", prop::collection::vec(any::<f64>(), 0..5)), 0..6),
        at in 946_684_800_000_000i64..4_102_444_800_000_000,
        tail in prop::option::of(".{0,12}"),
        inner in prop::option::of((any::<bool>(), prop::collection::vec(any::<u8>(), 0..64), any::<i32>(), 946_684_800_000i64..4_102_444_800_000, 946_684_800_000i64..4_102_444_800_000)),
    ) -> (Avro, i64, Option<(i64, i64)>) {
        let list = list.into_iter().map(|v| match v {
            None => Avro::Union(0, Box::new(Avro::Null)),
            Some(n) if n % 2 == 0 => Avro::Union(1, Box::new(Avro::Long(n))),
            Some(n) => Avro::Union(2, Box::new(Avro::String(n.to_string()))),
        }).collect();
        let dict = dict.into_iter().map(|(k, v)| (k, Avro::Array(v.into_iter().map(Avro::Double).collect()))).collect();
        let times = inner.as_ref().map(|(_, _, _, deep_at, at)| (*deep_at, *at));
        let inner_value = match inner {
            None => Avro::Union(0, Box::new(Avro::Null)),
            Some((flag, blob, n, deep_at, at)) => Avro::Union(1, Box::new(Avro::Record(vec![
                ("flag".into(), Avro::Boolean(flag)),
                ("blob".into(), Avro::Bytes(blob)),
                ("deep".into(), Avro::Record(vec![("n".into(), Avro::Int(n)), ("at".into(), Avro::TimestampMillis(deep_at))])),
                ("at".into(), Avro::String(rfc3339(at))),
            ]))),
        };
        let value = Avro::Record(vec![
            ("name".into(), Avro::String(name)),
            ("list".into(), Avro::Array(list)),
            ("dict".into(), Avro::Map(dict)),
            ("at".into(), Avro::TimestampMicros(at)),
            ("inner".into(), inner_value),
            (
                "tail".into(),
                match tail {
                    Some(t) => Avro::Union(1, Box::new(Avro::String(t))),
                    None => Avro::Union(0, Box::new(Avro::Null)),
                },
            ),
        ]);
        (value, at, times)
    }
}

/// The fields the one-walk plan reads: the name (a text), the three times (two behind a
/// union) and the tail after them (a text behind another union).
fn fields(schema: &Schema) -> Vec<(Vec<&'static str>, FieldPlan, bool)> {
    let mut fields = vec![(vec!["name"], schema.text_plan(&["name"]).unwrap(), false)];
    for p in [&["at"][..], &["inner", "at"], &["inner", "deep", "at"]] {
        fields.push((p.to_vec(), schema.plan(p, TimeFormat::Rfc3339).unwrap(), true));
    }
    fields.push((vec!["tail"], schema.text_plan(&["tail"]).unwrap(), false));
    fields
}

/// One walk reads what each field's plan reads alone, on any bytes.
fn one_walk_agrees(schema: &Schema, datum: &[u8]) -> Result<(), TestCaseError> {
    let fields = fields(schema);
    let walk = schema.record_plan(&fields).expect("one walk for these fields");
    let mut out = [Err(FieldMiss::Missing); 9];
    walk.read(schema, datum, None, &mut out);
    for ((_, plan, time), got) in fields.iter().zip(out) {
        let alone =
            if *time { plan.time(schema, datum, None).map(Hit::Time) } else { plan.text(schema, datum).map(Hit::Text) };
        prop_assert_eq!(got, alone);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_plan_reads_what_the_reference_wrote((value, at, inner) in record()) {
        let schema = Schema::parse(SCHEMA).unwrap();
        let datum = encode(value);
        let top = schema.plan(&["at"], TimeFormat::Rfc3339).unwrap();
        prop_assert_eq!(top.time(&schema, &datum, None), Ok(at.div_euclid(1000)));
        let deep = schema.plan(&["inner", "deep", "at"], TimeFormat::Rfc3339).unwrap();
        let string = schema.plan(&["inner", "at"], TimeFormat::Rfc3339).unwrap();
        match inner {
            Some((deep_at, string_at)) => {
                prop_assert_eq!(deep.time(&schema, &datum, None), Ok(deep_at));
                prop_assert_eq!(string.time(&schema, &datum, None), Ok(string_at));
            }
            None => {
                prop_assert_eq!(deep.time(&schema, &datum, None), Err(FieldMiss::Missing));
                prop_assert_eq!(string.time(&schema, &datum, None), Err(FieldMiss::Missing));
            }
        }
        one_walk_agrees(&schema, &datum)?;
    }

    #[test]
    fn random_bytes_and_mutated_datums_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        (value, _, _) in record(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let schema = Schema::parse(SCHEMA).unwrap();
        let plans = [&["at"][..], &["inner", "at"], &["inner", "deep", "at"]].map(|p| schema.plan(p, TimeFormat::Rfc3339).unwrap());
        let mut mutated = encode(value);
        for (at, byte) in edits {
            let i = at.index(mutated.len().max(1));
            if let Some(b) = mutated.get_mut(i) {
                *b = byte;
            }
        }
        for plan in &plans {
            let _ = plan.time(&schema, &bytes, None);
            let _ = plan.time(&schema, &mutated, None);
        }
        one_walk_agrees(&schema, &bytes)?;
        one_walk_agrees(&schema, &mutated)?;
        for cut in [mutated.len() / 3, mutated.len() / 2, mutated.len().saturating_sub(1)] {
            one_walk_agrees(&schema, &mutated[..cut])?;
        }
    }
}
