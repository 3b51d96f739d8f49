//! Avro: one field of a record read without decoding the record. From the writer schema
//! (its JSON, as a schema registry serves it) a field a stream reads — the event time at
//! `/after/created_at`, say — gets a [`FieldPlan`]: skip steps for every field before it
//! (varints, fixed sizes, length-prefixed strings and bytes, union branches, nested
//! records, arrays and maps by blocks), the union branches taken on the way, and the
//! target read and converted to the core's milliseconds. Every step is bounds-checked:
//! truncated or corrupt data is [`FieldMiss::BadEncoding`], never a panic, and nothing is
//! allocated per record.
//!
//! The schema is read from its JSON here rather than with apache-avro: that crate drops
//! the attributes of primitive types (apache/avro-rs#368), and Debezium names its time
//! types with one (`"connect.name": "io.debezium.time.MicroTimestamp"` on a `long`).
//!
//! The Confluent wire format frames a datum as magic byte 0 and a 4-byte big-endian
//! schema id ([`confluent_frame`]).

use std::collections::HashMap;

use serde_json::Value;

pub use crate::extract::FieldMiss;
use crate::extract::TimeFormat;
use crate::join::KeyValue;
use crate::time::{parse_local, parse_rfc3339, Millis};
use crate::wire::Cursor;

/// Nested skips deeper than this (a recursive type in hostile data) are bad encoding.
const MAX_DEPTH: usize = 64;

/// A schema as the reader needs it: how to skip each value, and what a target is.
#[derive(Debug, Clone, PartialEq)]
enum Type {
    Null,
    Boolean,
    Int(Time),
    Long(Time),
    Float(Time),
    Double(Time),
    Bytes,
    String(Time),
    Fixed(usize),
    /// Its symbols (kept for segments read from Avro, which name a value by its symbol).
    Enum(Vec<String>),
    Array(Box<Type>),
    Map(Box<Type>),
    Union(Vec<Type>),
    /// An index into the schema's named records.
    Record(usize),
}

/// What a value means as a time, from its logical type or Debezium's `connect.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Time {
    /// Nothing said: the stream's configured format decides.
    Plain,
    /// Since the epoch, in this many nanoseconds a unit.
    Epoch(i64),
    /// Local wall-clock time encoded as if it were UTC, in this many nanoseconds a unit.
    Local(i64),
    /// Days since the epoch.
    Date,
    /// An ISO-8601 string with its offset (`io.debezium.time.ZonedTimestamp`).
    Zoned,
}

#[derive(Debug, Clone, PartialEq)]
struct Record {
    name: String,
    fields: Vec<(String, Type)>,
}

/// A writer schema, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    root: Type,
    records: Vec<Record>,
}

/// Why a schema (or a field of it) cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("not an Avro schema: {0}")]
    Invalid(String),
    #[error("the schema has no field {0}")]
    NoField(String),
    #[error("{0}")]
    NotATime(String),
    #[error("{0}")]
    NotText(String),
}

impl Schema {
    /// Parses a schema's JSON (primitive names, records, enums, arrays, maps, fixed,
    /// unions, named references with namespaces, logical types, `connect.name`).
    pub fn parse(json: &str) -> Result<Self, SchemaError> {
        let value: Value = serde_json::from_str(json).map_err(|e| SchemaError::Invalid(e.to_string()))?;
        let mut parser = Parser { records: Vec::new(), names: HashMap::new() };
        let root = parser.parse(&value, "")?;
        Ok(Self { root, records: parser.records })
    }

    /// Whether a value of `t` takes no bytes at all (null, fixed(0), a record of such).
    fn zero_size(&self, t: &Type, depth: usize) -> bool {
        match t {
            Type::Null | Type::Fixed(0) => true,
            Type::Record(i) if depth < MAX_DEPTH => {
                self.records.get(*i).is_some_and(|r| r.fields.iter().all(|(_, f)| self.zero_size(f, depth + 1)))
            }
            _ => false,
        }
    }

    fn resolve(&self, t: &Type) -> Option<&Record> {
        match t {
            Type::Record(i) => self.records.get(*i),
            _ => None,
        }
    }

    /// Parses a schema that refers to named types of other schemas (a registry's
    /// `references`): `references` first, each before the ones that use it.
    pub fn parse_with_references(json: &str, references: &[&str]) -> Result<Self, SchemaError> {
        let mut parser = Parser { records: Vec::new(), names: HashMap::new() };
        for r in references {
            let value: Value = serde_json::from_str(r).map_err(|e| SchemaError::Invalid(e.to_string()))?;
            parser.parse(&value, "")?;
        }
        let value: Value = serde_json::from_str(json).map_err(|e| SchemaError::Invalid(e.to_string()))?;
        let root = parser.parse(&value, "")?;
        Ok(Self { root, records: parser.records })
    }

    /// The steps to the field at `pointer` (its tokens, e.g. `["after", "created_at"]`)
    /// and its type.
    fn path(&self, pointer: &[&str]) -> Result<(Vec<Op>, &Type), SchemaError> {
        let path = format!("/{}", pointer.join("/"));
        let mut ops = Vec::new();
        let mut current = &self.root;
        for (depth, name) in pointer.iter().enumerate() {
            let record = self.resolve(current).ok_or_else(|| SchemaError::NoField(path.clone()))?;
            let k =
                record.fields.iter().position(|(n, _)| n == name).ok_or_else(|| SchemaError::NoField(path.clone()))?;
            ops.extend(record.fields[..k].iter().map(|(_, t)| Op::Skip(t.clone())));
            current = &record.fields[k].1;
            let last = depth + 1 == pointer.len();
            if let Type::Union(branches) = current {
                let take = self
                    .branch_towards(branches, pointer.get(depth + 1).copied())
                    .ok_or_else(|| SchemaError::NoField(path.clone()))?;
                ops.push(Op::Branch { take: take as i64 });
                current = &branches[take];
            }
            if !last && self.resolve(current).is_none() {
                return Err(SchemaError::NoField(path));
            }
        }
        Ok((ops, current))
    }

    /// The union branch a path takes: the first record with the `next` field, or for the
    /// target itself the first branch that is not null.
    fn branch_towards(&self, branches: &[Type], next: Option<&str>) -> Option<usize> {
        branches.iter().position(|b| match next {
            Some(n) => self.resolve(b).is_some_and(|r| r.fields.iter().any(|(f, _)| f == n)),
            None => *b != Type::Null,
        })
    }

    /// The plan for the time at `pointer` (its tokens, e.g. `["after", "created_at"]`),
    /// read with `format` for values the schema does not say the unit of.
    pub fn plan(&self, pointer: &[&str], format: TimeFormat) -> Result<FieldPlan, SchemaError> {
        let path = format!("/{}", pointer.join("/"));
        let (ops, current) = self.path(pointer)?;
        let target = match (current, format) {
            (Type::Long(t) | Type::Int(t) | Type::Double(t) | Type::Float(t), _) if *t != Time::Plain => *t,
            (Type::Long(_) | Type::Int(_) | Type::Double(_) | Type::Float(_), TimeFormat::Rfc3339) => {
                return Err(SchemaError::NotATime(format!(
                    "{path} is a number without a logical type: set format to its epoch unit"
                )))
            }
            (Type::Long(_) | Type::Int(_) | Type::Double(_) | Type::Float(_), f) => Time::Epoch(match f {
                TimeFormat::EpochSeconds => 1_000_000_000,
                TimeFormat::EpochMillis => 1_000_000,
                _ => 1000,
            }),
            (Type::String(t), _) => *t,
            (other, _) => {
                return Err(SchemaError::NotATime(format!("{path} is {} in the schema, not a time", kind(other))))
            }
        };
        let read = match current {
            Type::Int(_) => Read::Int,
            Type::Long(_) => Read::Long,
            Type::Float(_) => Read::Float,
            Type::Double(_) => Read::Double,
            _ => Read::String,
        };
        Ok(FieldPlan { ops, read, time: target, symbols: Vec::new() })
    }

    /// The plan for a join key at `pointer`: a string, an enum (its symbol) or an `int`
    /// or `long` (its decimal text, as JSON writes it).
    pub fn key_plan(&self, pointer: &[&str]) -> Result<FieldPlan, SchemaError> {
        let (ops, current) = self.path(pointer)?;
        let read = match current {
            Type::Int(_) => Read::Int,
            Type::Long(_) => Read::Long,
            Type::String(_) | Type::Enum(_) => return self.text_plan(pointer),
            other => {
                return Err(SchemaError::NotText(format!(
                    "/{} is {} in the schema, not a string, an enum or an integer",
                    pointer.join("/"),
                    kind(other)
                )))
            }
        };
        Ok(FieldPlan { ops, read, time: Time::Plain, symbols: Vec::new() })
    }

    /// The plan for a segment's value at `pointer`: a string, or an enum (read as its
    /// symbol).
    pub fn text_plan(&self, pointer: &[&str]) -> Result<FieldPlan, SchemaError> {
        let (ops, current) = self.path(pointer)?;
        let (read, symbols) = match current {
            Type::String(_) => (Read::String, Vec::new()),
            Type::Enum(symbols) => (Read::Symbol, symbols.iter().map(|s| s.as_str().into()).collect()),
            other => {
                return Err(SchemaError::NotText(format!(
                    "/{} is {} in the schema, not a string or an enum",
                    pointer.join("/"),
                    kind(other)
                )))
            }
        };
        Ok(FieldPlan { ops, read, time: Time::Plain, symbols })
    }
}

fn kind(t: &Type) -> &'static str {
    match t {
        Type::Null => "null",
        Type::Boolean => "a boolean",
        Type::Bytes => "bytes",
        Type::Fixed(_) => "a fixed",
        Type::Enum(_) => "an enum",
        Type::Array(_) => "an array",
        Type::Map(_) => "a map",
        Type::Union(_) => "a union",
        Type::Record(_) => "a record",
        _ => "a number",
    }
}

struct Parser {
    records: Vec<Record>,
    /// Full names of the named types declared so far.
    names: HashMap<String, Type>,
}

impl Parser {
    fn parse(&mut self, v: &Value, namespace: &str) -> Result<Type, SchemaError> {
        match v {
            Value::String(name) => self.named(name, namespace, None),
            Value::Array(branches) => {
                let branches = branches.iter().map(|b| self.parse(b, namespace)).collect::<Result<Vec<_>, _>>()?;
                Ok(Type::Union(branches))
            }
            Value::Object(o) => {
                let ty = o.get("type").ok_or_else(|| SchemaError::Invalid("a schema object without type".into()))?;
                let ty = match ty {
                    Value::String(s) => s.as_str(),
                    // {"type": {"type": "record", …}}: the inner schema
                    other => return self.parse(other, namespace),
                };
                let time = time_of(
                    o.get("logicalType").and_then(Value::as_str),
                    o.get("connect.name").and_then(Value::as_str),
                );
                match ty {
                    "record" | "error" => self.record(o, namespace),
                    "enum" => {
                        let symbols = o
                            .get("symbols")
                            .and_then(Value::as_array)
                            .ok_or_else(|| SchemaError::Invalid("an enum without symbols".into()))?;
                        let t = Type::Enum(symbols.iter().filter_map(Value::as_str).map(str::to_string).collect());
                        self.declare(o, namespace, t.clone())?;
                        Ok(t)
                    }
                    "array" => Ok(Type::Array(Box::new(self.parse(
                        o.get("items").ok_or_else(|| SchemaError::Invalid("an array without items".into()))?,
                        namespace,
                    )?))),
                    "map" => Ok(Type::Map(Box::new(self.parse(
                        o.get("values").ok_or_else(|| SchemaError::Invalid("a map without values".into()))?,
                        namespace,
                    )?))),
                    "fixed" => {
                        let size = o
                            .get("size")
                            .and_then(Value::as_u64)
                            .ok_or_else(|| SchemaError::Invalid("a fixed without size".into()))?;
                        let t = Type::Fixed(size as usize);
                        self.declare(o, namespace, t.clone())?;
                        Ok(t)
                    }
                    primitive => self.named(primitive, namespace, Some(time)),
                }
            }
            _ => Err(SchemaError::Invalid(format!("{v} is not a schema"))),
        }
    }

    /// A primitive, or a reference to a named type declared before.
    fn named(&mut self, name: &str, namespace: &str, time: Option<Time>) -> Result<Type, SchemaError> {
        let time = time.unwrap_or(Time::Plain);
        Ok(match name {
            "null" => Type::Null,
            "boolean" => Type::Boolean,
            "int" => Type::Int(time),
            "long" => Type::Long(time),
            "float" => Type::Float(time),
            "double" => Type::Double(time),
            "bytes" => Type::Bytes,
            "string" => Type::String(time),
            other => {
                let full = if other.contains('.') || namespace.is_empty() {
                    other.to_string()
                } else {
                    format!("{namespace}.{other}")
                };
                self.names
                    .get(&full)
                    .or_else(|| self.names.get(other))
                    .cloned()
                    .ok_or_else(|| SchemaError::Invalid(format!("unknown type {other:?}")))?
            }
        })
    }

    fn full_name(o: &serde_json::Map<String, Value>, namespace: &str) -> Result<(String, String), SchemaError> {
        let name = o
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| SchemaError::Invalid("a named type without name".into()))?;
        let ns = o.get("namespace").and_then(Value::as_str).unwrap_or(namespace);
        Ok(match name.rsplit_once('.') {
            Some((ns, _)) => (name.to_string(), ns.to_string()),
            None if ns.is_empty() => (name.to_string(), String::new()),
            None => (format!("{ns}.{name}"), ns.to_string()),
        })
    }

    fn declare(&mut self, o: &serde_json::Map<String, Value>, namespace: &str, t: Type) -> Result<(), SchemaError> {
        let (full, _) = Self::full_name(o, namespace)?;
        self.names.insert(full, t);
        Ok(())
    }

    fn record(&mut self, o: &serde_json::Map<String, Value>, namespace: &str) -> Result<Type, SchemaError> {
        let (full, ns) = Self::full_name(o, namespace)?;
        let index = self.records.len();
        // declared before its fields: a field may refer to the record itself
        self.records.push(Record { name: full.clone(), fields: Vec::new() });
        self.names.insert(full, Type::Record(index));
        let fields = o
            .get("fields")
            .and_then(Value::as_array)
            .ok_or_else(|| SchemaError::Invalid("a record without fields".into()))?;
        let mut parsed = Vec::with_capacity(fields.len());
        for f in fields {
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| SchemaError::Invalid("a field without name".into()))?;
            let ty = f.get("type").ok_or_else(|| SchemaError::Invalid(format!("field {name} without type")))?;
            parsed.push((name.to_string(), self.parse(ty, &ns)?));
        }
        self.records[index].fields = parsed;
        Ok(Type::Record(index))
    }
}

fn time_of(logical: Option<&str>, connect: Option<&str>) -> Time {
    match (logical, connect) {
        (Some("timestamp-millis"), _)
        | (_, Some("io.debezium.time.Timestamp" | "org.apache.kafka.connect.data.Timestamp")) => Time::Epoch(1_000_000),
        (Some("timestamp-micros"), _) | (_, Some("io.debezium.time.MicroTimestamp")) => Time::Epoch(1000),
        (Some("timestamp-nanos"), _) | (_, Some("io.debezium.time.NanoTimestamp")) => Time::Epoch(1),
        (Some("local-timestamp-millis"), _) => Time::Local(1_000_000),
        (Some("local-timestamp-micros"), _) => Time::Local(1000),
        (Some("local-timestamp-nanos"), _) => Time::Local(1),
        (Some("date"), _) | (_, Some("io.debezium.time.Date" | "org.apache.kafka.connect.data.Date")) => Time::Date,
        (_, Some("io.debezium.time.ZonedTimestamp")) => Time::Zoned,
        _ => Time::Plain,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Skip(Type),
    /// A union on the way: the branch that leads on; another one means the field is not
    /// in this record.
    Branch {
        take: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Int,
    Long,
    Float,
    Double,
    String,
    /// An enum's index, named by its symbol.
    Symbol,
}

/// How to find one field's time in a datum of one writer schema.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldPlan {
    ops: Vec<Op>,
    read: Read,
    time: Time,
    /// An enum's symbols, for a segment's value.
    symbols: Vec<Box<str>>,
}

/// Skipping Avro values (the cursor is [`crate::wire`]'s).
impl Cursor<'_> {
    fn skip_value(&mut self, t: &Type, schema: &Schema, depth: usize) -> Result<(), FieldMiss> {
        if depth > MAX_DEPTH {
            return Err(FieldMiss::BadEncoding);
        }
        match t {
            Type::Null => {}
            Type::Boolean => {
                self.take(1)?;
            }
            Type::Int(_) | Type::Long(_) | Type::Enum(_) => {
                self.zigzag()?;
            }
            Type::Float(_) => {
                self.take(4)?;
            }
            Type::Double(_) => {
                self.take(8)?;
            }
            Type::Bytes | Type::String(_) => {
                let n = self.len()?;
                self.take(n)?;
            }
            Type::Fixed(n) => {
                self.take(*n)?;
            }
            Type::Union(branches) => {
                let i = usize::try_from(self.zigzag()?).map_err(|_| FieldMiss::BadEncoding)?;
                self.skip_value(branches.get(i).ok_or(FieldMiss::BadEncoding)?, schema, depth + 1)?;
            }
            Type::Record(i) => {
                let record = schema.records.get(*i).ok_or(FieldMiss::BadEncoding)?;
                for (_, f) in &record.fields {
                    self.skip_value(f, schema, depth + 1)?;
                }
            }
            Type::Array(items) | Type::Map(items) => {
                let map = matches!(t, Type::Map(_));
                loop {
                    let count = self.zigzag()?;
                    if count == 0 {
                        break;
                    }
                    if count < 0 {
                        // a block with its size in bytes: skipped at once
                        let bytes = self.len()?;
                        self.take(bytes)?;
                        continue;
                    }
                    // items of no size (null, an empty record) take no bytes: a hostile
                    // count must not spin over them
                    if !map && schema.zero_size(items, depth) {
                        continue;
                    }
                    for _ in 0..count {
                        if map {
                            let n = self.len()?;
                            self.take(n)?;
                        }
                        self.skip_value(items, schema, depth + 1)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A value as its encoding reads, before it is taken as a time.
enum Raw<'a> {
    Int(i64),
    Float(f64),
    Text(&'a [u8]),
}

impl FieldPlan {
    /// The event time in `datum` (the Avro binary encoding, after any framing), in the
    /// core's milliseconds; local times are read in `timezone`.
    pub fn time(&self, schema: &Schema, datum: &[u8], timezone: Option<chrono_tz::Tz>) -> Result<Millis, FieldMiss> {
        let mut c = self.walk(schema, datum)?;
        self.read_time(&mut c, timezone)
    }

    /// The time at the cursor: the value is always read whole (a cursor error is
    /// `BadEncoding`), then taken as a time (or `BadTimestamp`).
    #[inline]
    fn read_time(&self, c: &mut Cursor<'_>, timezone: Option<chrono_tz::Tz>) -> Result<Millis, FieldMiss> {
        let raw = match self.read {
            Read::Int | Read::Long | Read::Symbol => Raw::Int(c.zigzag()?),
            Read::Float => {
                Raw::Float(f64::from(f32::from_le_bytes(c.take(4)?.try_into().map_err(|_| FieldMiss::BadEncoding)?)))
            }
            Read::Double => Raw::Float(f64::from_le_bytes(c.take(8)?.try_into().map_err(|_| FieldMiss::BadEncoding)?)),
            Read::String => {
                let n = c.len()?;
                Raw::Text(c.take(n)?)
            }
        };
        match (raw, self.time) {
            (Raw::Text(text), time) => {
                let zone = if time == Time::Zoned { None } else { timezone };
                parse_rfc3339(text).or_else(|| zone.and_then(|tz| parse_local(text, tz))).ok_or(FieldMiss::BadTimestamp)
            }
            (Raw::Int(v), Time::Date) => v.checked_mul(86_400_000).ok_or(FieldMiss::BadTimestamp),
            (Raw::Int(v), Time::Epoch(ns)) => Ok(to_millis(v, ns)),
            (Raw::Int(v), Time::Local(ns)) => local(to_millis(v, ns), timezone),
            (Raw::Float(v), Time::Epoch(ns) | Time::Local(ns)) => {
                let ms = crate::extract::float_millis(v, ns);
                if !ms.is_finite() {
                    return Err(FieldMiss::BadTimestamp);
                }
                let ms = ms.floor() as Millis;
                if matches!(self.time, Time::Local(_)) {
                    local(ms, timezone)
                } else {
                    Ok(ms)
                }
            }
            _ => Err(FieldMiss::BadTimestamp),
        }
    }

    /// The cursor at the field, every step before it taken.
    #[inline]
    fn walk<'a>(&self, schema: &Schema, datum: &'a [u8]) -> Result<Cursor<'a>, FieldMiss> {
        let mut c = Cursor::new(datum);
        for op in &self.ops {
            match op {
                Op::Skip(t) => c.skip_value(t, schema, 0)?,
                Op::Branch { take } => {
                    if c.zigzag()? != *take {
                        return Err(FieldMiss::Missing);
                    }
                }
            }
        }
        Ok(c)
    }

    /// A segment's value in `datum`: a string's bytes, or an enum's symbol (a plan from
    /// [`Schema::text_plan`]).
    pub fn text<'a>(&'a self, schema: &Schema, datum: &'a [u8]) -> Result<&'a [u8], FieldMiss> {
        let mut c = self.walk(schema, datum)?;
        self.read_text(&mut c)
    }

    /// A join key in `datum` (a plan from [`Schema::key_plan`]).
    pub fn key<'a>(&'a self, schema: &Schema, datum: &'a [u8]) -> Result<KeyValue<'a>, FieldMiss> {
        let mut c = self.walk(schema, datum)?;
        match self.read {
            Read::Int | Read::Long => Ok(KeyValue::Int(i128::from(c.zigzag()?))),
            _ => self.read_text(&mut c).map(KeyValue::Text),
        }
    }

    /// The text at the cursor (read whole, as [`Self::read_time`]).
    #[inline]
    fn read_text<'a>(&'a self, c: &mut Cursor<'a>) -> Result<&'a [u8], FieldMiss> {
        match self.read {
            Read::Symbol => {
                let i = usize::try_from(c.zigzag()?).map_err(|_| FieldMiss::BadEncoding)?;
                self.symbols.get(i).map(|s| s.as_bytes()).ok_or(FieldMiss::BadEncoding)
            }
            _ => {
                let n = c.len()?;
                c.take(n)
            }
        }
    }
}

/// The most fields a [`RecordPlan`] reads in one walk (the event time and eight segments).
pub const MAX_FIELDS: usize = 9;

/// What one walk of a [`RecordPlan`] found for one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit<'a> {
    Time(Millis),
    Text(&'a [u8]),
}

/// One step of a walk over a record.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Skip(Type),
    /// Field `i` of the plan is here, a value of this type.
    Read(usize, Type),
    /// A record on the way: its fields.
    Fields(Vec<Step>),
    /// A union on the way: branch `take` holds the fields `under` (read by `inner`);
    /// another branch is skipped, and they are missing.
    Union {
        take: i64,
        branches: Vec<Type>,
        inner: Vec<Step>,
        under: Vec<usize>,
    },
}

/// Several fields of one writer schema — a stream's event time and its segments — read
/// in one walk over the datum, each as its [`FieldPlan`] alone would read it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordPlan {
    steps: Vec<Step>,
    fields: Vec<FieldPlan>,
    /// Which fields are read as a time (else as a text).
    as_time: Vec<bool>,
}

impl Schema {
    /// One walk for `fields` (their pointer tokens, their plans from [`Schema::plan`] or
    /// [`Schema::text_plan`], and whether each is a time): `None` where the fields' paths
    /// cannot share one walk (a field inside another, two readings of one union), and
    /// the plans are then read one by one.
    pub fn record_plan(&self, fields: &[(Vec<&str>, FieldPlan, bool)]) -> Option<RecordPlan> {
        if fields.is_empty() || fields.len() > MAX_FIELDS {
            return None;
        }
        let paths: Vec<(&[&str], usize)> = fields.iter().enumerate().map(|(i, (p, _, _))| (&p[..], i)).collect();
        let record = self.resolve(&self.root)?;
        let mut steps = self.steps(record, &paths, 0)?;
        // nothing to read after the last field
        while matches!(steps.last(), Some(Step::Skip(_))) {
            steps.pop();
        }
        Some(RecordPlan {
            steps,
            fields: fields.iter().map(|(_, plan, _)| plan.clone()).collect(),
            as_time: fields.iter().map(|(_, _, time)| *time).collect(),
        })
    }

    fn steps(&self, record: &Record, paths: &[(&[&str], usize)], depth: usize) -> Option<Vec<Step>> {
        let mut steps = Vec::with_capacity(record.fields.len());
        for (name, t) in &record.fields {
            let here: Vec<(&[&str], usize)> =
                paths.iter().filter(|(p, _)| p[depth] == name.as_str()).copied().collect();
            if here.is_empty() {
                steps.push(Skip(t.clone()));
                continue;
            }
            let leaves: Vec<usize> = here.iter().filter(|(p, _)| p.len() == depth + 1).map(|(_, i)| *i).collect();
            let deeper: Vec<(&[&str], usize)> = here.iter().filter(|(p, _)| p.len() > depth + 1).copied().collect();
            let step = match (&leaves[..], deeper.is_empty(), t) {
                ([i], true, Type::Union(branches)) => {
                    let take = self.branch_towards(branches, None)?;
                    let inner = vec![Step::Read(*i, branches[take].clone())];
                    Step::Union { take: take as i64, branches: branches.clone(), inner, under: vec![*i] }
                }
                ([i], true, t) => Step::Read(*i, t.clone()),
                ([], false, Type::Union(branches)) => {
                    // the branch each field's own plan takes: one walk when they all take it
                    let branch_of = |p: &[&str]| self.branch_towards(branches, Some(p[depth + 1]));
                    let take = branch_of(deeper[0].0)?;
                    if deeper.iter().any(|(p, _)| branch_of(p) != Some(take)) {
                        return None;
                    }
                    let inner = self.steps(self.resolve(&branches[take])?, &deeper, depth + 1)?;
                    let under = deeper.iter().map(|(_, i)| *i).collect();
                    Step::Union {
                        take: take as i64,
                        branches: branches.clone(),
                        inner: vec![Step::Fields(inner)],
                        under,
                    }
                }
                ([], false, t) => Step::Fields(self.steps(self.resolve(t)?, &deeper, depth + 1)?),
                _ => return None,
            };
            steps.push(step);
        }
        Some(steps)
    }
}

use Step::Skip;

impl RecordPlan {
    /// Each field's value in `datum` into `out` (in the order the plan was made with).
    /// Does not allocate.
    pub fn read<'a>(
        &'a self,
        schema: &Schema,
        datum: &'a [u8],
        timezone: Option<chrono_tz::Tz>,
        out: &mut [Result<Hit<'a>, FieldMiss>],
    ) {
        let n = self.fields.len().min(out.len());
        for o in &mut out[..n] {
            *o = Err(FieldMiss::Missing);
        }
        let mut done = [false; MAX_FIELDS];
        let mut left = n;
        let mut c = Cursor::new(datum);
        if let Err(e) = self.walk(&self.steps, &mut c, schema, timezone, out, &mut done, &mut left) {
            // what the walk had not reached: unreadable
            for (o, d) in out[..n].iter_mut().zip(done) {
                if !d {
                    *o = Err(e);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn walk<'a>(
        &'a self,
        steps: &[Step],
        c: &mut Cursor<'a>,
        schema: &Schema,
        timezone: Option<chrono_tz::Tz>,
        out: &mut [Result<Hit<'a>, FieldMiss>],
        done: &mut [bool; MAX_FIELDS],
        left: &mut usize,
    ) -> Result<(), FieldMiss> {
        for step in steps {
            if *left == 0 {
                return Ok(());
            }
            match step {
                Skip(t) => c.skip_value(t, schema, 0)?,
                Step::Read(i, t) => {
                    let plan = &self.fields[*i];
                    let start = c.pos;
                    let value = if self.as_time[*i] {
                        plan.read_time(c, timezone).map(Hit::Time)
                    } else {
                        plan.read_text(c).map(Hit::Text)
                    };
                    if value == Err(FieldMiss::BadEncoding) {
                        // unreadable as this field (an enum index past its symbols), or
                        // not there at all: the walk goes on only past a whole value
                        c.pos = start;
                        c.skip_value(t, schema, 0)?;
                    }
                    out[*i] = value;
                    done[*i] = true;
                    *left -= 1;
                }
                Step::Fields(inner) => self.walk(inner, c, schema, timezone, out, done, left)?,
                Step::Union { take, branches, inner, under } => {
                    let branch = c.zigzag()?;
                    if branch == *take {
                        self.walk(inner, c, schema, timezone, out, done, left)?;
                    } else {
                        for i in under {
                            done[*i] = true; // missing: out[i] stays so
                            *left -= 1;
                        }
                        let t =
                            usize::try_from(branch).ok().and_then(|b| branches.get(b)).ok_or(FieldMiss::BadEncoding)?;
                        c.skip_value(t, schema, 1)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// `value` units of `ns` nanoseconds each, in milliseconds (floored).
fn to_millis(value: i64, ns: i64) -> Millis {
    match ns {
        1_000_000_000 => value.saturating_mul(1000),
        1_000_000 => value,
        _ => value.div_euclid(1_000_000 / ns),
    }
}

/// A local wall-clock time encoded as if it were UTC, read in `timezone`.
fn local(wall: Millis, timezone: Option<chrono_tz::Tz>) -> Result<Millis, FieldMiss> {
    use chrono::TimeZone;
    let tz = timezone.ok_or(FieldMiss::BadTimestamp)?;
    let naive = chrono::DateTime::from_timestamp_millis(wall).ok_or(FieldMiss::BadTimestamp)?.naive_utc();
    match tz.from_local_datetime(&naive) {
        chrono::offset::LocalResult::Single(t) | chrono::offset::LocalResult::Ambiguous(t, _) => {
            Ok(t.timestamp_millis())
        }
        chrono::offset::LocalResult::None => Err(FieldMiss::BadTimestamp),
    }
}

/// The Confluent wire format: magic byte 0, the schema id (4 bytes, big-endian), the
/// datum. `None` for a payload not framed so.
pub fn confluent_frame(payload: &[u8]) -> Option<(u32, &[u8])> {
    match payload {
        [0, a, b, c, d, rest @ ..] => Some((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::Value as Avro;

    const NOW: Millis = 1_795_375_975_123; // 2026-11-22T19:32:55.123Z

    /// An order with 13 fields of every kind before its event time, and one after.
    const ORDER: &str = r#"{
        "type": "record", "name": "Order", "namespace": "shop",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "nothing", "type": "null"},
            {"name": "paid", "type": "boolean"},
            {"name": "qty", "type": "int"},
            {"name": "customer", "type": "long"},
            {"name": "weight", "type": "float"},
            {"name": "total", "type": "double"},
            {"name": "blob", "type": "bytes"},
            {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 4}},
            {"name": "channel", "type": {"type": "enum", "name": "Channel", "symbols": ["web", "app"]}},
            {"name": "items", "type": {"type": "array", "items": {"type": "record", "name": "Item",
                "fields": [{"name": "sku", "type": "string"}, {"name": "price", "type": "double"}]}}},
            {"name": "tags", "type": {"type": "map", "values": "string"}},
            {"name": "coupon", "type": ["null", "string"]},
            {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "note", "type": "string"}
        ]}"#;

    fn order(created_at: Avro, items: usize, coupon: Option<&str>) -> Avro {
        let item = |k: usize| {
            Avro::Record(vec![("sku".into(), Avro::String(format!("SKU-{k}"))), ("price".into(), Avro::Double(9.5))])
        };
        Avro::Record(vec![
            ("id".into(), Avro::String("o-1".into())),
            ("nothing".into(), Avro::Null),
            ("paid".into(), Avro::Boolean(true)),
            ("qty".into(), Avro::Int(-3)),
            ("customer".into(), Avro::Long(184_467)),
            ("weight".into(), Avro::Float(1.5)),
            ("total".into(), Avro::Double(129.95)),
            ("blob".into(), Avro::Bytes(vec![1, 2, 3])),
            ("hash".into(), Avro::Fixed(4, vec![9, 9, 9, 9])),
            ("channel".into(), Avro::Enum(1, "app".into())),
            ("items".into(), Avro::Array((0..items).map(item).collect())),
            ("tags".into(), Avro::Map([("campaign".to_string(), Avro::String("autumn".into()))].into_iter().collect())),
            (
                "coupon".into(),
                match coupon {
                    Some(c) => Avro::Union(1, Box::new(Avro::String(c.into()))),
                    None => Avro::Union(0, Box::new(Avro::Null)),
                },
            ),
            ("created_at".into(), created_at),
            ("note".into(), Avro::String("leave at the door".into())),
        ])
    }

    // the datum encoder of the release in use (its successor's writer API is newer)
    #[allow(deprecated)]
    fn encode(schema: &str, value: Avro) -> Vec<u8> {
        let reference = apache_avro::Schema::parse_str(schema).unwrap();
        apache_avro::to_avro_datum(&reference, value).unwrap()
    }

    #[test]
    fn the_field_after_every_kind_of_value_is_read() {
        let schema = Schema::parse(ORDER).unwrap();
        let plan = schema.plan(&["created_at"], TimeFormat::Rfc3339).unwrap();
        for (items, coupon) in [(0, None), (3, Some("TEN")), (200, None)] {
            let datum = encode(ORDER, order(Avro::TimestampMillis(NOW), items, coupon));
            assert_eq!(plan.time(&schema, &datum, None), Ok(NOW), "{items} items, coupon {coupon:?}");
        }
    }

    #[test]
    fn segment_values_are_strings_and_enum_symbols() {
        let schema = Schema::parse(ORDER).unwrap();
        let datum = encode(ORDER, order(Avro::TimestampMillis(NOW), 3, Some("TEN")));
        let channel = schema.text_plan(&["channel"]).unwrap();
        assert_eq!(channel.text(&schema, &datum), Ok(&b"app"[..]));
        let coupon = schema.text_plan(&["coupon"]).unwrap();
        assert_eq!(coupon.text(&schema, &datum), Ok(&b"TEN"[..]));
        let none = encode(ORDER, order(Avro::TimestampMillis(NOW), 3, None));
        assert_eq!(coupon.text(&schema, &none), Err(FieldMiss::Missing));
        assert_eq!(schema.text_plan(&["note"]).unwrap().text(&schema, &datum), Ok(&b"leave at the door"[..]));
        assert!(
            matches!(schema.text_plan(&["qty"]), Err(SchemaError::NotText(m)) if m == "/qty is a number in the schema, not a string or an enum")
        );
        assert_eq!(schema.text_plan(&["region"]), Err(SchemaError::NoField("/region".into())));
        // a symbol index beyond the symbols, a cut datum
        let one = Schema::parse(
            r#"{"type": "record", "name": "R", "fields": [
            {"name": "c", "type": {"type": "enum", "name": "C", "symbols": ["a"]}}]}"#,
        )
        .unwrap();
        let plan = one.text_plan(&["c"]).unwrap();
        assert_eq!(plan.text(&one, &[0]), Ok(&b"a"[..]));
        assert_eq!(plan.text(&one, &[2]), Err(FieldMiss::BadEncoding));
        assert_eq!(plan.text(&one, &[]), Err(FieldMiss::BadEncoding));
        assert_eq!(
            schema.text_plan(&["note"]).unwrap().text(&schema, &datum[..datum.len() - 1]),
            Err(FieldMiss::BadEncoding)
        );
    }

    #[test]
    fn one_walk_reads_every_field_as_its_own_plan_would() {
        let schema = Schema::parse(ORDER).unwrap();
        let fields = vec![
            (vec!["channel"], schema.text_plan(&["channel"]).unwrap(), false),
            (vec!["coupon"], schema.text_plan(&["coupon"]).unwrap(), false),
            (vec!["created_at"], schema.plan(&["created_at"], TimeFormat::Rfc3339).unwrap(), true),
        ];
        let walk = schema.record_plan(&fields).unwrap();
        let mut out = [Err(FieldMiss::Missing); MAX_FIELDS];
        let datum = encode(ORDER, order(Avro::TimestampMillis(NOW), 3, None));
        walk.read(&schema, &datum, None, &mut out);
        assert_eq!(out[..3], [Ok(Hit::Text(b"app")), Err(FieldMiss::Missing), Ok(Hit::Time(NOW))]);
        // an enum index past its symbols: that field is unreadable, the walk goes on
        let Avro::Record(mut web) = order(Avro::TimestampMillis(NOW), 3, None) else { unreachable!() };
        web.iter_mut().find(|(n, _)| n == "channel").unwrap().1 = Avro::Enum(0, "web".into());
        let web = encode(ORDER, Avro::Record(web));
        // the one byte that differs is the channel's index (zig-zag 1 against 0)
        let at = datum.iter().zip(&web).position(|(a, b)| a != b).unwrap();
        let mut odd = datum.clone();
        odd[at] = 10;
        walk.read(&schema, &odd, None, &mut out);
        assert_eq!(out[..3], [Err(FieldMiss::BadEncoding), Err(FieldMiss::Missing), Ok(Hit::Time(NOW))]);
        assert_eq!(fields[2].1.time(&schema, &odd, None), Ok(NOW));
        // a field inside another, two fields in one: no one walk
        let nested = vec![
            (vec!["items"], schema.text_plan(&["note"]).unwrap(), false),
            (vec!["items", "sku"], schema.text_plan(&["note"]).unwrap(), false),
        ];
        assert_eq!(schema.record_plan(&nested), None);
    }

    #[test]
    fn named_types_of_referenced_schemas_are_known() {
        let address = r#"{"type": "record", "name": "Address", "namespace": "shop",
            "fields": [{"name": "street", "type": "string"}, {"name": "country", "type": "string"}]}"#;
        let order = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
            {"name": "shipping", "type": "shop.Address"},
            {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-micros"}}]}"#;
        assert!(matches!(Schema::parse(order), Err(SchemaError::Invalid(m)) if m.contains("shop.Address")));
        let schema = Schema::parse_with_references(order, &[address]).unwrap();
        // the same record with the named type written inline: the same bytes
        let inline = order.replace("\"shop.Address\"", address);
        let datum = encode(
            &inline,
            Avro::Record(vec![
                (
                    "shipping".into(),
                    Avro::Record(vec![
                        ("street".into(), Avro::String("Main St 1".into())),
                        ("country".into(), Avro::String("DE".into())),
                    ]),
                ),
                ("created_at".into(), Avro::TimestampMicros(NOW * 1000)),
            ]),
        );
        assert_eq!(schema.plan(&["created_at"], TimeFormat::Rfc3339).unwrap().time(&schema, &datum, None), Ok(NOW));
        assert_eq!(schema.text_plan(&["shipping", "country"]).unwrap().text(&schema, &datum), Ok(&b"DE"[..]));
    }

    #[test]
    fn truncated_or_corrupt_data_is_bad_encoding_and_never_a_panic() {
        let schema = Schema::parse(ORDER).unwrap();
        let plan = schema.plan(&["created_at"], TimeFormat::Rfc3339).unwrap();
        let datum = encode(ORDER, order(Avro::TimestampMillis(NOW), 3, Some("TEN")));
        // every cut before the end of the event time (the note after it: a length byte
        // and 17 bytes)
        for cut in 0..datum.len() - 18 {
            let got = plan.time(&schema, &datum[..cut], None);
            assert!(got.is_err(), "cut at {cut}: {got:?}");
        }
        // a huge length, a varint that never ends, a union branch that does not exist
        let mut huge = datum.clone();
        huge[0] = 0xfe;
        huge[1] = 0xff;
        assert_eq!(plan.time(&schema, &huge, None), Err(FieldMiss::BadEncoding));
        assert_eq!(plan.time(&schema, &[0xff; 32], None), Err(FieldMiss::BadEncoding));
    }

    #[test]
    fn debezium_change_events_name_their_time_types_and_a_delete_has_no_after() {
        let envelope = r#"{
            "type": "record", "name": "Envelope", "namespace": "shop.public.orders",
            "fields": [
                {"name": "before", "type": ["null", {"type": "record", "name": "Value", "fields": [
                    {"name": "id", "type": "long"},
                    {"name": "created_at", "type": {"type": "long", "connect.version": 1, "connect.name": "io.debezium.time.MicroTimestamp"}},
                    {"name": "placed_on", "type": {"type": "int", "connect.name": "io.debezium.time.Date"}},
                    {"name": "updated_at", "type": {"type": "string", "connect.name": "io.debezium.time.ZonedTimestamp"}}
                ]}], "default": null},
                {"name": "after", "type": ["null", "Value"], "default": null},
                {"name": "op", "type": "string"},
                {"name": "ts_ms", "type": ["null", "long"]}
            ]}"#;
        let schema = Schema::parse(envelope).unwrap();
        let row = |micros: i64| {
            Avro::Record(vec![
                ("id".into(), Avro::Long(7)),
                ("created_at".into(), Avro::Long(micros)),
                ("placed_on".into(), Avro::Int(20_414)),
                ("updated_at".into(), Avro::String("2026-11-22T20:32:55.123+01:00".into())),
            ])
        };
        let event = |after: Option<Avro>| {
            Avro::Record(vec![
                ("before".into(), Avro::Union(0, Box::new(Avro::Null))),
                (
                    "after".into(),
                    match after {
                        Some(v) => Avro::Union(1, Box::new(v)),
                        None => Avro::Union(0, Box::new(Avro::Null)),
                    },
                ),
                ("op".into(), Avro::String("c".into())),
                ("ts_ms".into(), Avro::Union(1, Box::new(Avro::Long(NOW)))),
            ])
        };
        let created = schema.plan(&["after", "created_at"], TimeFormat::Rfc3339).unwrap();
        let insert = encode(envelope, event(Some(row(NOW * 1000 + 456))));
        assert_eq!(created.time(&schema, &insert, None), Ok(NOW));
        let placed = schema.plan(&["after", "placed_on"], TimeFormat::Rfc3339).unwrap();
        assert_eq!(placed.time(&schema, &insert, None), Ok(20_414 * 86_400_000));
        let updated = schema.plan(&["after", "updated_at"], TimeFormat::Rfc3339).unwrap();
        assert_eq!(updated.time(&schema, &insert, None), Ok(NOW));
        let delete = encode(envelope, event(None));
        assert_eq!(created.time(&schema, &delete, None), Err(FieldMiss::Missing), "a delete has no after");
        // a plain long says nothing of its unit: the stream's format does
        assert!(schema.plan(&["ts_ms"], TimeFormat::Rfc3339).is_err());
        let ts = schema.plan(&["ts_ms"], TimeFormat::EpochMillis).unwrap();
        assert_eq!(ts.time(&schema, &insert, None), Ok(NOW));
    }

    #[test]
    fn a_field_the_schema_lacks_or_that_is_no_time_is_named_when_planned() {
        let schema = Schema::parse(ORDER).unwrap();
        assert_eq!(schema.plan(&["placed_at"], TimeFormat::Rfc3339), Err(SchemaError::NoField("/placed_at".into())));
        assert_eq!(schema.plan(&["items", "sku"], TimeFormat::Rfc3339), Err(SchemaError::NoField("/items/sku".into())));
        let err = schema.plan(&["channel"], TimeFormat::Rfc3339).unwrap_err().to_string();
        assert_eq!(err, "/channel is an enum in the schema, not a time");
        assert!(
            Schema::parse(r#"{"type": "record", "name": "X", "fields": [{"name": "a", "type": "Unknown"}]}"#).is_err()
        );
    }

    #[test]
    fn local_timestamps_are_read_in_the_streams_zone() {
        let schema_json = r#"{"type": "record", "name": "R", "fields": [
            {"name": "at", "type": {"type": "long", "logicalType": "local-timestamp-millis"}}]}"#;
        let schema = Schema::parse(schema_json).unwrap();
        let plan = schema.plan(&["at"], TimeFormat::Rfc3339).unwrap();
        // Shanghai's wall clock at NOW, encoded as if it were UTC
        let wall = NOW + 8 * 3_600_000;
        let datum = encode(schema_json, Avro::Record(vec![("at".into(), Avro::LocalTimestampMillis(wall))]));
        assert_eq!(plan.time(&schema, &datum, Some(chrono_tz::Asia::Shanghai)), Ok(NOW));
        assert_eq!(plan.time(&schema, &datum, None), Err(FieldMiss::BadTimestamp), "no zone, no guess");
    }

    #[test]
    fn a_recursive_type_is_skipped_to_a_bounded_depth() {
        let list = r#"{"type": "record", "name": "Node", "fields": [
            {"name": "next", "type": ["null", "Node"]},
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#;
        let schema = Schema::parse(list).unwrap();
        let plan = schema.plan(&["at"], TimeFormat::Rfc3339).unwrap();
        let mut node = Avro::Record(vec![
            ("next".into(), Avro::Union(0, Box::new(Avro::Null))),
            ("at".into(), Avro::TimestampMillis(1)),
        ]);
        for _ in 0..10 {
            node = Avro::Record(vec![
                ("next".into(), Avro::Union(1, Box::new(node))),
                ("at".into(), Avro::TimestampMillis(NOW)),
            ]);
        }
        assert_eq!(plan.time(&schema, &encode(list, node), None), Ok(NOW));
        // hostile data: a chain deeper than any schema needs
        let deep: Vec<u8> = std::iter::repeat_n(2u8, 10_000).collect();
        assert_eq!(plan.time(&schema, &deep, None), Err(FieldMiss::BadEncoding));
    }

    #[test]
    fn a_huge_count_of_items_of_no_size_does_not_spin() {
        let schema = Schema::parse(
            r#"{"type": "record", "name": "R", "fields": [
                {"name": "nothing", "type": {"type": "array", "items": "null"}},
                {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#,
        )
        .unwrap();
        let plan = schema.plan(&["at"], TimeFormat::Rfc3339).unwrap();
        // a block of 2^62 nulls, the end of the array, then the time (zig-zag varints)
        let mut datum = vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00];
        datum.extend([0x02]);
        // (before the guard this spun through 2^62 nulls)
        assert_eq!(plan.time(&schema, &datum, None), Ok(1));
    }

    #[test]
    fn the_confluent_frame_is_magic_zero_and_a_big_endian_id() {
        assert_eq!(confluent_frame(&[0, 0, 0, 1, 44, 7, 8]), Some((300, &[7u8, 8][..])));
        assert_eq!(confluent_frame(&[1, 0, 0, 1, 44]), None);
        assert_eq!(confluent_frame(b"{}"), None);
    }
}
