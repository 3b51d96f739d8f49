//! Event-time extraction never panics, whatever the payload: random bytes, truncated
//! and mutated records, deep nesting, huge numbers. What it finds agrees with serde_json
//! on generated JSON. Each property runs a bounded number of cases (CI runs them all).

use pipewatch_core::extract::{MAX_EPOCH_MS, MIN_PLAUSIBLE_EVENT_TIME};
use pipewatch_core::json::{Lookup, PointerSet};
use pipewatch_core::{EventTimeSource, Extractor, InvalidReason, JsonPointer, Millis, TimeFormat};
use proptest::prelude::*;
use serde_json::Value;

const NOW: Millis = 1_795_375_975_000;
const SKEW: Millis = 300_000;
const FORMATS: [TimeFormat; 4] =
    [TimeFormat::Rfc3339, TimeFormat::EpochSeconds, TimeFormat::EpochMillis, TimeFormat::EpochMicros];
const POINTERS: [&str; 6] = ["/ts", "/created_at", "/a/0/ts", "/a~1b", "/0", "/n/m/o"];
const ORDER: &str = r#"{"order_id":"o-1","items":[{"sku":"A-1","qty":2,"note":"a \"quoted\" [x]"}],"total":12.5,"a":[{"ts":1795375970000}],"n":{"m":{"o":"2026-11-30T10:00:00Z"}},"created_at":"2026-11-30T10:00:00.123Z","ts":1795375970123}"#;

fn extractor(pointer: &str, format: TimeFormat) -> Extractor {
    let pointer = JsonPointer::parse(pointer).expect("a valid pointer");
    Extractor::new(EventTimeSource::Field { pointer, format }, SKEW)
}

/// Extracts with every pointer and format; an event time found is always plausible.
fn check_all(payload: &[u8]) -> Result<(), TestCaseError> {
    for pointer in POINTERS {
        for format in FORMATS {
            if let Ok(t) = extractor(pointer, format).extract(Some(payload), Some(NOW), NOW) {
                prop_assert!((MIN_PLAUSIBLE_EVENT_TIME..=NOW + SKEW).contains(&t), "{t} from {pointer}");
            }
        }
    }
    Ok(())
}

/// Every pointer looked up in one pass finds what each finds alone.
fn one_pass_agrees(payload: &[u8]) -> Result<(), TestCaseError> {
    let more = ["/a", "/n/m", "/ts", "/items/0/sku", "/qty", ""];
    let pointers: Vec<JsonPointer> = POINTERS.iter().chain(&more).filter_map(|p| JsonPointer::parse(p).ok()).collect();
    let set = PointerSet::new(pointers.clone());
    let mut found = [Lookup::Missing; 16];
    set.lookup_all(payload, &mut found);
    for (p, f) in pointers.iter().zip(found) {
        prop_assert_eq!(p.lookup(payload), f, "{} in {:?}", p.as_str(), String::from_utf8_lossy(payload));
    }
    Ok(())
}

/// Keys, some of them the ones the pointers look for.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![Just("ts".to_string()), Just("a".to_string()), "[a-z~/]{1,4}"]
}

/// A record: a JSON object whose values go a few levels deep.
fn json_record() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(key(), json_value(), 0..8).prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// JSON values of a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (MAX_EPOCH_MS - 2..MAX_EPOCH_MS + 2).prop_map(Value::from),
        (MIN_PLAUSIBLE_EVENT_TIME..NOW + 2 * SKEW).prop_map(Value::from),
        // fractional epoch milliseconds, some plausible
        (MIN_PLAUSIBLE_EVENT_TIME as f64..(NOW + 2 * SKEW) as f64).prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "[a-z\"\\\\{}\\[\\]:, ]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(payload in prop::collection::vec(any::<u8>(), 0..512)) {
        check_all(&payload)?;
        one_pass_agrees(&payload)?;
    }

    #[test]
    fn truncated_and_mutated_records(cut in 0..ORDER.len(), flips in prop::collection::vec((0..ORDER.len(), any::<u8>()), 0..4)) {
        check_all(&ORDER.as_bytes()[..cut])?;
        one_pass_agrees(&ORDER.as_bytes()[..cut])?;
        let mut mutated = ORDER.as_bytes().to_vec();
        for (i, b) in flips {
            mutated[i] = b;
        }
        check_all(&mutated)?;
        one_pass_agrees(&mutated)?;
    }

    #[test]
    fn huge_and_odd_numbers(digits in "-?[0-9]{1,400}(\\.[0-9]{0,40})?([eE][+-]?[0-9]{1,5})?") {
        check_all(format!(r#"{{"ts": {digits}}}"#).as_bytes())?;
        check_all(format!(r#"{{"ts": "{digits}"}}"#).as_bytes())?;
    }

    /// On any record serde_json writes, the lookup finds what serde_json's pointer finds.
    #[test]
    fn agrees_with_serde_json(doc in json_record()) {
        let text = serde_json::to_string(&doc).unwrap();
        one_pass_agrees(text.as_bytes())?;
        one_pass_agrees(serde_json::to_string_pretty(&doc).unwrap().as_bytes())?;
        for pointer in POINTERS {
            let found = extractor(pointer, TimeFormat::EpochMillis).extract(Some(text.as_bytes()), None, NOW);
            match doc.pointer(pointer) {
                None => prop_assert_eq!(found, Err(InvalidReason::MissingField), "{} in {}", pointer, text),
                Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
                    (Some(t), _) if (MIN_PLAUSIBLE_EVENT_TIME..=NOW + SKEW).contains(&t) => prop_assert_eq!(found, Ok(t)),
                    (Some(t), _) if t > NOW + SKEW && t <= MAX_EPOCH_MS => {
                        prop_assert_eq!(found, Err(InvalidReason::FutureTimestamp))
                    }
                    // fractional milliseconds are floored
                    (None, Some(f)) if (MIN_PLAUSIBLE_EVENT_TIME as f64..=(NOW + SKEW) as f64).contains(&f) => {
                        prop_assert_eq!(found, Ok(f.floor() as Millis), "{}", text)
                    }
                    _ => prop_assert!(found.is_err(), "{:?} for {} in {}", found, pointer, text),
                },
                Some(_) => prop_assert!(found.is_err(), "{:?} for {} in {}", found, pointer, text),
            }
        }
    }
}

#[test]
fn deep_nesting_neither_overflows_nor_hides_the_field() {
    for depth in [1usize, 64, 10_000, 1_000_000] {
        for open in ["[", "{\"a\":"] {
            let close = if open == "[" { "]" } else { "}" };
            let doc = format!("{{\"x\":{}1{},\"ts\":1795375970123}}", open.repeat(depth), close.repeat(depth));
            let found = extractor("/ts", TimeFormat::EpochMillis).extract(Some(doc.as_bytes()), None, NOW);
            assert_eq!(found, Ok(1_795_375_970_123), "depth {depth} of {open}");
            // unclosed: not JSON as far as the lookup reads, never a panic
            let unclosed = format!("{{\"x\":{}", open.repeat(depth));
            check_all(unclosed.as_bytes()).unwrap();
        }
    }
}
