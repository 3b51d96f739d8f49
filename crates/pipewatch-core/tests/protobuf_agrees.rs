//! The Protobuf field plans against the reference decoder (prost-reflect's
//! `DynamicMessage`): on generated messages — fields of every wire type around the
//! target, the target at depth 1, 2 and 3, and messages sent twice (concatenated, as
//! Protobuf merges them: the last value wins) — what a plan reads is what the reference
//! decodes; on random bytes and mutated messages it never panics. Each property runs a
//! bounded number of cases.

use pipewatch_core::protobuf::{scan, FieldMiss, ProtoPlan, ProtoSchema};
use pipewatch_core::TimeFormat;
use proptest::prelude::*;
use prost::Message as _;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, Value};

const SCHEMA: &str = r#"syntax = "proto3";
package t;
import "google/protobuf/timestamp.proto";
message Deep { sint32 n = 1; int64 at = 9; }
message Inner {
  bool flag = 1;
  bytes blob = 2;
  Deep deep = 3;
  google.protobuf.Timestamp at = 4;
  repeated fixed32 nums = 5;
}
message Outer {
  string name = 1;
  repeated int64 list = 2;
  map<string, double> dict = 3;
  int64 at = 4;
  Inner inner = 5;
  fixed64 after = 6;
}
"#;

fn outer() -> MessageDescriptor {
    let schema = ProtoSchema::compile(SCHEMA, &[]).unwrap();
    schema.message(Some("t.Outer"), &[]).unwrap()
}

fn child(m: &MessageDescriptor, field: &str) -> MessageDescriptor {
    match m.get_field_by_name(field).unwrap().kind() {
        Kind::Message(m) => m,
        _ => panic!("{field} is no message"),
    }
}

/// One generated message's fields; `None` leaves a field out.
#[derive(Debug, Clone)]
struct Fields {
    name: String,
    list: Vec<i64>,
    dict: Vec<(String, f64)>,
    at: Option<i64>,
    inner: Option<(bool, Vec<u8>, Option<(i32, Option<i64>)>, Option<(i64, i32)>, Vec<u32>)>,
    after: u64,
}

fn build(desc: &MessageDescriptor, f: &Fields) -> DynamicMessage {
    let mut m = DynamicMessage::new(desc.clone());
    m.set_field_by_name("name", Value::String(f.name.clone()));
    m.set_field_by_name("list", Value::List(f.list.iter().map(|v| Value::I64(*v)).collect()));
    let dict = f.dict.iter().map(|(k, v)| (prost_reflect::MapKey::String(k.clone()), Value::F64(*v))).collect();
    m.set_field_by_name("dict", Value::Map(dict));
    if let Some(at) = f.at {
        m.set_field_by_name("at", Value::I64(at));
    }
    if let Some((flag, blob, deep, at, nums)) = &f.inner {
        let inner_desc = child(desc, "inner");
        let mut inner = DynamicMessage::new(inner_desc.clone());
        inner.set_field_by_name("flag", Value::Bool(*flag));
        inner.set_field_by_name("blob", Value::Bytes(blob.clone().into()));
        if let Some((n, at)) = deep {
            let mut d = DynamicMessage::new(child(&inner_desc, "deep"));
            d.set_field_by_name("n", Value::I32(*n));
            if let Some(at) = at {
                d.set_field_by_name("at", Value::I64(*at));
            }
            inner.set_field_by_name("deep", Value::Message(d));
        }
        if let Some((seconds, nanos)) = at {
            let mut t = DynamicMessage::new(child(&inner_desc, "at"));
            t.set_field_by_name("seconds", Value::I64(*seconds));
            t.set_field_by_name("nanos", Value::I32(*nanos));
            inner.set_field_by_name("at", Value::Message(t));
        }
        inner.set_field_by_name("nums", Value::List(nums.iter().map(|v| Value::U32(*v)).collect()));
        m.set_field_by_name("inner", Value::Message(inner));
    }
    m.set_field_by_name("after", Value::U64(f.after));
    m
}

prop_compose! {
    fn fields()(
        name in ".{0,40}",
        list in prop::collection::vec(any::<i64>(), 0..20),
        dict in prop::collection::vec((".{0,8}", any::<f64>()), 0..6),
        at in prop::option::of(946_684_800_000i64..4_102_444_800_000),
        inner in prop::option::of((
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..64),
            prop::option::of((any::<i32>(), prop::option::of(946_684_800_000i64..4_102_444_800_000))),
            prop::option::of((946_684_800i64..4_102_444_800, 0i32..1_000_000_000)),
            prop::collection::vec(any::<u32>(), 0..8),
        )),
        after in any::<u64>(),
    ) -> Fields {
        Fields { name, list, dict, at, inner, after }
    }
}

/// One scan for every plan reads what each plan reads alone, on any bytes.
fn one_scan_agrees(plans: &[ProtoPlan], bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut found = vec![pipewatch_core::protobuf::Found::default(); plans.len()];
    scan(plans, bytes, &mut found);
    for (plan, f) in plans.iter().zip(found) {
        prop_assert_eq!(plan.time_in(f, None), plan.time(bytes, None));
    }
    Ok(())
}

/// What the reference decodes at a path of fields (`None`: not set).
fn reference(decoded: &DynamicMessage, path: &[&str]) -> Option<Value> {
    let (last, on_the_way) = path.split_last().unwrap();
    let mut m = decoded.clone();
    for name in on_the_way {
        if !m.has_field_by_name(name) {
            return None;
        }
        m = m.get_field_by_name(name).unwrap().as_message().unwrap().clone();
    }
    m.has_field_by_name(last).then(|| m.get_field_by_name(last).unwrap().into_owned())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn plans_read_what_the_reference_decodes(first in fields(), second in prop::option::of(fields())) {
        let desc = outer();
        let mut bytes = build(&desc, &first).encode_to_vec();
        if let Some(second) = &second {
            // sent twice: Protobuf merges the two, the last value of a field wins
            bytes.extend(build(&desc, second).encode_to_vec());
        }
        let decoded = DynamicMessage::decode(desc.clone(), &bytes[..]).unwrap();
        // depth 1 and 3: epoch milliseconds
        for path in [&["at"][..], &["inner", "deep", "at"][..]] {
            let plan = ProtoSchema::plan(&desc, path, TimeFormat::EpochMillis).unwrap();
            let want = match reference(&decoded, path) {
                Some(Value::I64(v)) => Ok(v),
                None => Err(FieldMiss::Missing),
                other => panic!("{other:?}"),
            };
            prop_assert_eq!(plan.time(&bytes, None), want, "{:?}", path);
        }
        // depth 2: a google.protobuf.Timestamp
        let plan = ProtoSchema::plan(&desc, &["inner", "at"], TimeFormat::Rfc3339).unwrap();
        let want = match reference(&decoded, &["inner", "at"]) {
            Some(Value::Message(t)) => {
                let seconds = t.get_field_by_name("seconds").unwrap().as_i64().unwrap();
                let nanos = t.get_field_by_name("nanos").unwrap().as_i32().unwrap();
                Ok(seconds * 1000 + i64::from(nanos) / 1_000_000)
            }
            None => Err(FieldMiss::Missing),
            other => panic!("{other:?}"),
        };
        prop_assert_eq!(plan.time(&bytes, None), want);
        let plans = [
            ProtoSchema::plan(&desc, &["at"], TimeFormat::EpochMillis).unwrap(),
            plan,
            ProtoSchema::plan(&desc, &["inner", "deep", "at"], TimeFormat::EpochMillis).unwrap(),
        ];
        one_scan_agrees(&plans, &bytes)?;
    }

    #[test]
    fn random_and_mutated_bytes_never_panic(
        f in fields(),
        noise in prop::collection::vec(any::<u8>(), 0..200),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let desc = outer();
        let plans = [
            ProtoSchema::plan(&desc, &["at"], TimeFormat::EpochMillis).unwrap(),
            ProtoSchema::plan(&desc, &["inner", "at"], TimeFormat::Rfc3339).unwrap(),
            ProtoSchema::plan(&desc, &["inner", "deep", "at"], TimeFormat::EpochMillis).unwrap(),
        ];
        let mut bytes = build(&desc, &f).encode_to_vec();
        for plan in &plans {
            let _ = plan.time(&noise, None);
        }
        if !bytes.is_empty() {
            for (i, b) in &flips {
                let at = i.index(bytes.len());
                bytes[at] ^= b | 1;
            }
            let cut = cut.index(bytes.len() + 1);
            for plan in &plans {
                let _ = plan.time(&bytes, None);
                let _ = plan.time(&bytes[..cut], None);
            }
            one_scan_agrees(&plans, &bytes)?;
            one_scan_agrees(&plans, &bytes[..cut])?;
            one_scan_agrees(&plans, &noise)?;
        }
    }
}
