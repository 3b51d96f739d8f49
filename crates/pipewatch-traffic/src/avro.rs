//! The orders as Avro, as a schema-registry producer writes them: the Confluent wire
//! format (magic byte 0, the schema id, the datum), the datum hand-encoded for the one
//! schema below (the generator writes, it needs no Avro library; pipewatch's tests check
//! these bytes against apache-avro).

/// The orders' Avro schema: the fields of the JSON orders, the channel an enum and the
/// event time a `timestamp-millis`, then the user and how they came (the join's key and
/// segment).
pub const ORDER_SCHEMA: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
  {"name": "order_id", "type": "string"},
  {"name": "customer_id", "type": "string"},
  {"name": "channel", "type": {"type": "enum", "name": "Channel", "symbols": ["web", "app", "email"]}},
  {"name": "total", "type": "double"},
  {"name": "currency", "type": "string"},
  {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "user_id", "type": "string"},
  {"name": "referral", "type": "string"}]}"#;

fn long(v: i64, out: &mut Vec<u8>) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    long(s.len() as i64, out);
    out.extend_from_slice(s.as_bytes());
}

/// Order `n` in `channel` placed at `created_at` by `(user, referral)`, framed with
/// `schema_id`; `bad`: its datum cut before the event time (a record pipewatch counts as
/// `bad_encoding`).
pub fn order(schema_id: u32, n: u64, channel: &str, created_at: i64, bad: bool, by: (&str, &str)) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&schema_id.to_be_bytes());
    string(&format!("ord-{n}"), &mut out);
    string(&format!("cus-{}", n % 977), &mut out);
    let symbol = match channel {
        "app" => 1,
        "email" => 2,
        _ => 0,
    };
    long(symbol, &mut out);
    let total = (10 + n % 190) as f64 + (n % 100) as f64 / 100.0;
    out.extend_from_slice(&total.to_le_bytes());
    string("EUR", &mut out);
    if !bad {
        long(created_at, &mut out);
        string(by.0, &mut out);
        string(by.1, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orders_are_what_apache_avro_reads() {
        use apache_avro::types::Value;
        let schema = apache_avro::Schema::parse_str(ORDER_SCHEMA).unwrap();
        let record = order(7, 1234, "app", 1_795_375_975_123, false, ("u-42", "social"));
        assert_eq!(record[..5], [0, 0, 0, 0, 7]);
        #[allow(deprecated)]
        let value = apache_avro::from_avro_datum(&schema, &mut &record[5..], None).unwrap();
        let Value::Record(fields) = value else { panic!("{value:?}") };
        let get = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(get("order_id"), Value::String("ord-1234".into()));
        assert_eq!(get("channel"), Value::Enum(1, "app".into()));
        assert_eq!(get("total"), Value::Double(104.34));
        assert_eq!(get("created_at"), Value::TimestampMillis(1_795_375_975_123));
        assert_eq!((get("user_id"), get("referral")), (Value::String("u-42".into()), Value::String("social".into())));
        let bad = order(7, 1234, "web", 0, true, ("u-1", "search"));
        #[allow(deprecated)]
        let cut = apache_avro::from_avro_datum(&schema, &mut &bad[5..], None);
        assert!(cut.is_err(), "a bad order is cut before its event time");
    }
}
