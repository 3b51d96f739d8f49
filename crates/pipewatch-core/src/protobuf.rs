//! Protobuf: one field of a message read without decoding the message. The writer
//! schema (its `.proto` text, as a schema registry serves it, with the files it imports)
//! is compiled once per schema id with protox into descriptors; a field a stream reads —
//! `/after/created_at`, say — becomes a [`ProtoPlan`]: the field numbers on the way and
//! how the target is read. A record is then scanned tag by tag, every other field
//! skipped by its wire type; where a field occurs more than once the last value wins
//! (for a message on the way, each occurrence is searched: Protobuf merges them).
//! `google.protobuf.Timestamp` and the wrapper types are understood. Every step is
//! bounds-checked: truncated or corrupt data is [`FieldMiss::BadEncoding`], never a
//! panic, and nothing is allocated per record.
//!
//! The Confluent wire format puts the message indexes between the schema id and the
//! message: which message of the schema the record is ([`message_indexes`]).

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

pub use crate::avro::SchemaError;
pub use crate::extract::FieldMiss;
use crate::extract::TimeFormat;
use crate::join::KeyValue;
use crate::time::{parse_local, parse_rfc3339, Millis};
use crate::wire::{unzigzag, Cursor};

/// Messages nested deeper than this in hostile data (groups) are bad encoding.
const MAX_DEPTH: usize = 64;

/// The most message indexes a record's framing may carry (nesting of the message type).
pub const MAX_INDEXES: usize = 8;

/// Which message of the schema a record is: the indexes of the Confluent framing (the
/// first top-level message is `[0]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageIndexes {
    indexes: [u32; MAX_INDEXES],
    len: usize,
}

impl MessageIndexes {
    pub fn as_slice(&self) -> &[u32] {
        &self.indexes[..self.len]
    }
}

/// Reads the Confluent message indexes at the start of `data` (after the schema id):
/// a zig-zag varint count, then as many zig-zag varint indexes; a count of 0 means
/// `[0]`. Returns them and the message's bytes.
pub fn message_indexes(data: &[u8]) -> Result<(MessageIndexes, &[u8]), FieldMiss> {
    let mut c = Cursor::new(data);
    let count = c.zigzag()?;
    let mut out = MessageIndexes::default();
    if count == 0 {
        out.len = 1;
    } else {
        let count = usize::try_from(count).ok().filter(|n| *n <= MAX_INDEXES).ok_or(FieldMiss::BadEncoding)?;
        for i in 0..count {
            out.indexes[i] = u32::try_from(c.zigzag()?).map_err(|_| FieldMiss::BadEncoding)?;
        }
        out.len = count;
    }
    Ok((out, &data[c.pos..]))
}

/// A compiled writer schema.
#[derive(Debug, Clone)]
pub struct ProtoSchema {
    pool: DescriptorPool,
    file: String,
}

/// The name the schema itself is compiled under (its imports keep theirs).
const MAIN_FILE: &str = "pipewatch-writer-schema.proto";

/// The schema's text and its references, by the names it imports them as.
struct Sources {
    main: String,
    references: Vec<(String, String)>,
}

impl FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if name == MAIN_FILE {
            return File::from_source(name, &self.main);
        }
        match self.references.iter().find(|(n, _)| n == name) {
            Some((_, text)) => File::from_source(name, text),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

impl ProtoSchema {
    /// Compiles a `.proto` text with the files it imports (`(import name, text)`, as the
    /// registry's references name them); Google's well-known types are built in.
    pub fn compile(text: &str, references: &[(String, String)]) -> Result<Self, String> {
        // protox's resolver is 'static: the sources are copied in (once per schema id)
        let mut resolver = ChainFileResolver::new();
        resolver.add(Sources { main: text.to_string(), references: references.to_vec() });
        resolver.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        let pool = match compiler.open_file(MAIN_FILE) {
            Ok(c) => c.descriptor_pool(),
            Err(e) => return Err(format!("not a Protobuf schema: {e}")),
        };
        Ok(Self { pool, file: MAIN_FILE.to_string() })
    }

    /// The message a record is: by its full name (`shop.Order`), or by the framing's
    /// indexes.
    pub fn message(&self, name: Option<&str>, indexes: &[u32]) -> Result<MessageDescriptor, String> {
        if let Some(name) = name {
            return self.pool.get_message_by_name(name).ok_or_else(|| format!("the schema has no message {name}"));
        }
        let file = self.pool.get_file_by_name(&self.file).ok_or("the schema has no file")?;
        let (&first, rest) = indexes.split_first().ok_or("no message index")?;
        let mut message =
            file.messages().nth(first as usize).ok_or_else(|| format!("the schema has no message at index {first}"))?;
        for &i in rest {
            let nested = message.child_messages().nth(i as usize);
            message = nested.ok_or_else(|| format!("{} has no nested message at index {i}", message.full_name()))?;
        }
        Ok(message)
    }

    /// The plan for the time at `pointer` (field names, outermost first) in `message`,
    /// read with `format` for numbers the schema does not say the unit of.
    pub fn plan(message: &MessageDescriptor, pointer: &[&str], format: TimeFormat) -> Result<ProtoPlan, SchemaError> {
        let path_text = format!("/{}", pointer.join("/"));
        let (path, _, kind) = leaf(message, pointer)?;
        let unit = match format {
            TimeFormat::EpochSeconds => 1_000_000_000,
            TimeFormat::EpochMillis => 1_000_000,
            TimeFormat::EpochMicros => 1000,
            TimeFormat::Rfc3339 => 0,
        };
        let read = match kind {
            Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => Read::Timestamp,
            Kind::String => Read::String,
            k if unit == 0 && number(&k).is_some() => {
                return Err(SchemaError::NotATime(format!("{path_text} is a number: set format to its epoch unit")))
            }
            k => match number(&k) {
                Some(n) => Read::Number(n, unit),
                None => {
                    return Err(SchemaError::NotATime(format!(
                        "{path_text} is {} in the schema, not a time",
                        kind_name(&k)
                    )))
                }
            },
        };
        Ok(ProtoPlan { path, read, symbols: Vec::new(), default: None })
    }

    /// The plan for a segment's value at `pointer`: a string, or an enum (read as the
    /// name of its value).
    pub fn text_plan(message: &MessageDescriptor, pointer: &[&str]) -> Result<ProtoPlan, SchemaError> {
        let (path, field, kind) = leaf(message, pointer)?;
        match kind {
            Kind::String => Ok(ProtoPlan { path, read: Read::String, symbols: Vec::new(), default: None }),
            Kind::Enum(e) => Ok(ProtoPlan {
                path,
                read: Read::Symbol,
                symbols: e.values().map(|v| (v.number(), v.name().into())).collect(),
                // proto3 leaves a field at its default out: absent is the default value
                default: (!field.supports_presence()).then(|| e.default_value().name().into()),
            }),
            k => Err(SchemaError::NotText(format!(
                "/{} is {} in the schema, not a string or an enum",
                pointer.join("/"),
                kind_name(&k)
            ))),
        }
    }
}

impl ProtoSchema {
    /// The plan for a join key at `pointer`: a string, an enum (its value's name) or an
    /// integer (its decimal text, as JSON writes it); a wrapper's value too.
    pub fn key_plan(message: &MessageDescriptor, pointer: &[&str]) -> Result<ProtoPlan, SchemaError> {
        let (path, _, kind) = leaf(message, pointer)?;
        match (&kind, number(&kind)) {
            (_, Some(n)) if !matches!(n, Number::Double | Number::Float) => {
                Ok(ProtoPlan { path, read: Read::Number(n, 1), symbols: Vec::new(), default: None })
            }
            (Kind::String | Kind::Enum(_), _) => Self::text_plan(message, pointer),
            _ => Err(SchemaError::NotText(format!(
                "/{} is {} in the schema, not a string, an enum or an integer",
                pointer.join("/"),
                kind_name(&kind)
            ))),
        }
    }
}

/// The field numbers to `pointer`'s value, its descriptor and its value's kind (a
/// wrapper's, `google.protobuf.Int64Value` and the like, is its field 1's).
fn leaf(message: &MessageDescriptor, pointer: &[&str]) -> Result<(Vec<u32>, FieldDescriptor, Kind), SchemaError> {
    let (mut path, field) = path(message, pointer)?;
    let mut kind = field.kind();
    if let Some(inner) = wrapper(&kind) {
        path.push(1);
        kind = inner;
    }
    Ok((path, field, kind))
}

/// The field numbers to `pointer`, and its descriptor.
fn path(message: &MessageDescriptor, pointer: &[&str]) -> Result<(Vec<u32>, FieldDescriptor), SchemaError> {
    let text = format!("/{}", pointer.join("/"));
    let mut numbers = Vec::new();
    let mut current = message.clone();
    let mut field = None;
    for (i, name) in pointer.iter().enumerate() {
        let f = current.get_field_by_name(name).ok_or_else(|| SchemaError::NoField(text.clone()))?;
        if f.is_map() {
            return Err(SchemaError::NoField(text.clone()));
        }
        numbers.push(f.number());
        if i + 1 < pointer.len() {
            match f.kind() {
                Kind::Message(m) => current = m,
                _ => return Err(SchemaError::NoField(text.clone())),
            }
        }
        field = Some(f);
    }
    Ok((numbers, field.ok_or(SchemaError::NoField(text))?))
}

/// The value type of a wrapper (`google.protobuf.Int64Value`, …): its field 1.
fn wrapper(kind: &Kind) -> Option<Kind> {
    let Kind::Message(m) = kind else { return None };
    match m.full_name() {
        "google.protobuf.Int64Value"
        | "google.protobuf.UInt64Value"
        | "google.protobuf.Int32Value"
        | "google.protobuf.UInt32Value"
        | "google.protobuf.DoubleValue"
        | "google.protobuf.FloatValue"
        | "google.protobuf.StringValue" => m.get_field(1).map(|f| f.kind()),
        _ => None,
    }
}

/// How a number field is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Number {
    /// int32, int64, uint32, uint64: a plain varint (negative int32/int64 sign-extended).
    Varint,
    /// uint64 read unsigned.
    Unsigned,
    /// sint32, sint64: zig-zag.
    Zigzag,
    Fixed64,
    Fixed32,
    SFixed64,
    SFixed32,
    Double,
    Float,
}

fn number(kind: &Kind) -> Option<Number> {
    Some(match kind {
        Kind::Int32 | Kind::Int64 => Number::Varint,
        Kind::Uint32 | Kind::Uint64 => Number::Unsigned,
        Kind::Sint32 | Kind::Sint64 => Number::Zigzag,
        Kind::Fixed64 => Number::Fixed64,
        Kind::Fixed32 => Number::Fixed32,
        Kind::Sfixed64 => Number::SFixed64,
        Kind::Sfixed32 => Number::SFixed32,
        Kind::Double => Number::Double,
        Kind::Float => Number::Float,
        _ => return None,
    })
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => format!("the message {}", m.full_name()),
        Kind::Enum(e) => format!("the enum {}", e.full_name()),
        Kind::Bool => "a bool".into(),
        Kind::Bytes => "bytes".into(),
        Kind::String => "a string".into(),
        _ => "a number".into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Read {
    /// `google.protobuf.Timestamp`: seconds (1) and nanos (2).
    Timestamp,
    /// A number in units of this many nanoseconds.
    Number(Number, i64),
    String,
    Symbol,
}

/// How to find one field in a message of one writer schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtoPlan {
    path: Vec<u32>,
    read: Read,
    /// An enum's values `(number, name)`, for a segment's value.
    symbols: Vec<(i32, Box<str>)>,
    /// An enum field without presence (proto3): the name of its default value, which
    /// writers leave out.
    default: Option<Box<str>>,
}

/// One field's value as it is on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wire<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Fixed32([u8; 4]),
    Len(&'a [u8]),
}

/// Reading Protobuf fields (the cursor is [`crate::wire`]'s).
impl<'a> Cursor<'a> {
    /// The next field's key: its number and wire type.
    #[inline]
    fn key(&mut self) -> Result<(u32, u64), FieldMiss> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| FieldMiss::BadEncoding)?;
        if number == 0 {
            return Err(FieldMiss::BadEncoding);
        }
        Ok((number, key & 7))
    }

    /// Skips a value of `wire` type.
    #[inline]
    fn skip_field(&mut self, number: u32, wire: u64, depth: usize) -> Result<(), FieldMiss> {
        match wire {
            0 => {
                self.varint()?;
            }
            1 => {
                self.take(8)?;
            }
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| FieldMiss::BadEncoding)?;
                self.take(n)?;
            }
            3 => self.skip_group(number, depth + 1)?,
            5 => {
                self.take(4)?;
            }
            _ => return Err(FieldMiss::BadEncoding),
        }
        Ok(())
    }

    /// The next field: its number and value; groups are skipped (`None` value).
    #[inline]
    fn field(&mut self, depth: usize) -> Result<(u32, Option<Wire<'a>>), FieldMiss> {
        let (number, wire) = self.key()?;
        Ok((number, self.value(number, wire, depth)?))
    }

    /// A value of `wire` type (the key read); a group is skipped (`None`).
    #[inline]
    fn value(&mut self, number: u32, wire: u64, depth: usize) -> Result<Option<Wire<'a>>, FieldMiss> {
        Ok(match wire {
            0 => Some(Wire::Varint(self.varint()?)),
            1 => Some(Wire::Fixed64(self.take(8)?.try_into().map_err(|_| FieldMiss::BadEncoding)?)),
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| FieldMiss::BadEncoding)?;
                Some(Wire::Len(self.take(n)?))
            }
            3 => {
                self.skip_group(number, depth + 1)?;
                None
            }
            5 => Some(Wire::Fixed32(self.take(4)?.try_into().map_err(|_| FieldMiss::BadEncoding)?)),
            _ => return Err(FieldMiss::BadEncoding),
        })
    }

    /// Skips a (deprecated) group up to its end tag.
    fn skip_group(&mut self, number: u32, depth: usize) -> Result<(), FieldMiss> {
        if depth > MAX_DEPTH {
            return Err(FieldMiss::BadEncoding);
        }
        loop {
            let (inner, wire) = self.key()?;
            if wire == 4 {
                return if inner == number { Ok(()) } else { Err(FieldMiss::BadEncoding) };
            }
            self.skip_field(inner, wire, depth)?;
        }
    }
}

/// The last value of the field at `path` in `data` (a message on the way searched in
/// every occurrence, as Protobuf merges them); `None` when it is not there.
fn find<'a>(data: &'a [u8], path: &[u32], depth: usize) -> Result<Option<Wire<'a>>, FieldMiss> {
    let Some((&want, rest)) = path.split_first() else { return Ok(None) };
    let mut c = Cursor::new(data);
    let mut found = None;
    while !c.at_end() {
        let (number, wire) = c.key()?;
        if number != want {
            c.skip_field(number, wire, depth)?;
            continue;
        }
        let value = c.value(number, wire, depth)?;
        match (rest.is_empty(), value) {
            (true, Some(v)) => found = Some(v),
            (false, Some(Wire::Len(sub))) => {
                if let Some(v) = find(sub, rest, depth + 1)? {
                    found = Some(v);
                }
            }
            (false, Some(_)) => return Err(FieldMiss::BadEncoding),
            (_, None) => {}
        }
    }
    Ok(found)
}

/// Where one plan's field is in a message: its last value, not there (`Ok(None)`), or
/// why the message cannot be read that far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found<'a>(Result<Option<Wire<'a>>, FieldMiss>);

impl Default for Found<'_> {
    /// Not there.
    fn default() -> Self {
        Found(Ok(None))
    }
}

/// The most plans [`scan`] reads in one pass (the event time and eight segments).
pub const MAX_SCAN: usize = 9;

/// The fields of several plans found in one scan of `message` (into `out`, one per plan):
/// what each plan alone would find, the message read once. Does not allocate.
pub fn scan<'a>(plans: &[ProtoPlan], message: &'a [u8], out: &mut [Found<'a>]) {
    let n = plans.len().min(MAX_SCAN).min(out.len());
    let mut found = [Ok(None); MAX_SCAN];
    let all = (1u16 << n) - 1;
    if let Err(e) = find_many(message, &plans[..n], 0, all, &mut found, 0) {
        for f in &mut found[..n] {
            *f = Err(e);
        }
    }
    for (o, f) in out.iter_mut().zip(found).take(n) {
        *o = Found(f);
    }
}

/// [`find`] for the plans in `mask` at once, at `level` of their paths: each found value
/// into `out` (the last wins; an error sticks to the plans that met it).
fn find_many<'a>(
    data: &'a [u8],
    plans: &[ProtoPlan],
    level: usize,
    mask: u16,
    out: &mut [Result<Option<Wire<'a>>, FieldMiss>; MAX_SCAN],
    depth: usize,
) -> Result<(), FieldMiss> {
    let mut c = Cursor::new(data);
    while !c.at_end() {
        let (number, wire) = c.key()?;
        let (mut leaf, mut deeper) = (0u16, 0u16);
        for (i, plan) in plans.iter().enumerate() {
            if mask & (1 << i) != 0 && plan.path[level] == number {
                if plan.path.len() == level + 1 {
                    leaf |= 1 << i;
                } else {
                    deeper |= 1 << i;
                }
            }
        }
        if leaf | deeper == 0 {
            c.skip_field(number, wire, depth)?;
            continue;
        }
        let value = c.value(number, wire, depth)?;
        let Some(value) = value else { continue }; // a group
        for (i, o) in out.iter_mut().enumerate().take(plans.len()) {
            if leaf & (1 << i) != 0 && o.is_ok() {
                *o = Ok(Some(value));
            }
        }
        if deeper != 0 {
            let failed = match value {
                Wire::Len(sub) => find_many(sub, plans, level + 1, deeper, out, depth + 1).err(),
                _ => Some(FieldMiss::BadEncoding),
            };
            if let Some(e) = failed {
                for (i, o) in out.iter_mut().enumerate().take(plans.len()) {
                    if deeper & (1 << i) != 0 {
                        *o = Err(e);
                    }
                }
            }
        }
    }
    Ok(())
}

impl ProtoPlan {
    /// The event time in `message` (the Protobuf encoding, after the framing), in the
    /// core's milliseconds; strings without an offset are read in `timezone`.
    pub fn time(&self, message: &[u8], timezone: Option<chrono_tz::Tz>) -> Result<Millis, FieldMiss> {
        self.time_in(Found(find(message, &self.path, 0)), timezone)
    }

    /// Like [`Self::time`], with the field already found ([`scan`]).
    pub fn time_in(&self, found: Found<'_>, timezone: Option<chrono_tz::Tz>) -> Result<Millis, FieldMiss> {
        let value = found.0?.ok_or(FieldMiss::Missing)?;
        match (self.read, value) {
            (Read::Timestamp, Wire::Len(ts)) => {
                let (mut seconds, mut nanos) = (0i64, 0i64);
                let mut c = Cursor::new(ts);
                while !c.at_end() {
                    match c.field(1)? {
                        (1, Some(Wire::Varint(v))) => seconds = v as i64,
                        (2, Some(Wire::Varint(v))) => nanos = i64::from(v as i32),
                        _ => {}
                    }
                }
                seconds
                    .checked_mul(1000)
                    .and_then(|ms| ms.checked_add(nanos.div_euclid(1_000_000)))
                    .ok_or(FieldMiss::BadTimestamp)
            }
            (Read::String, Wire::Len(text)) => parse_rfc3339(text)
                .or_else(|| timezone.and_then(|tz| parse_local(text, tz)))
                .ok_or(FieldMiss::BadTimestamp),
            (Read::Number(kind, unit), wire) => {
                let v: f64 = match (kind, wire) {
                    (Number::Varint, Wire::Varint(v)) => return Ok(scale(v as i64, unit)),
                    (Number::Unsigned, Wire::Varint(v)) => {
                        return i64::try_from(v).map(|v| scale(v, unit)).map_err(|_| FieldMiss::BadTimestamp)
                    }
                    (Number::Zigzag, Wire::Varint(v)) => return Ok(scale(unzigzag(v), unit)),
                    (Number::Fixed64, Wire::Fixed64(b)) => {
                        return i64::try_from(u64::from_le_bytes(b))
                            .map(|v| scale(v, unit))
                            .map_err(|_| FieldMiss::BadTimestamp)
                    }
                    (Number::SFixed64, Wire::Fixed64(b)) => return Ok(scale(i64::from_le_bytes(b), unit)),
                    (Number::Fixed32, Wire::Fixed32(b)) => return Ok(scale(i64::from(u32::from_le_bytes(b)), unit)),
                    (Number::SFixed32, Wire::Fixed32(b)) => return Ok(scale(i64::from(i32::from_le_bytes(b)), unit)),
                    (Number::Double, Wire::Fixed64(b)) => f64::from_le_bytes(b),
                    (Number::Float, Wire::Fixed32(b)) => f64::from(f32::from_le_bytes(b)),
                    _ => return Err(FieldMiss::BadEncoding),
                };
                let ms = crate::extract::float_millis(v, unit);
                if ms.is_finite() && ms.abs() < 1e17 {
                    Ok(ms.floor() as Millis)
                } else {
                    Err(FieldMiss::BadTimestamp)
                }
            }
            _ => Err(FieldMiss::BadEncoding),
        }
    }

    /// A segment's value in `message`: a string's bytes, or an enum value's name (a plan
    /// from [`ProtoSchema::text_plan`]). An enum value the schema does not name reads as
    /// missing (Protobuf keeps unknown enum values).
    pub fn text<'a>(&'a self, message: &'a [u8]) -> Result<&'a [u8], FieldMiss> {
        self.text_in(Found(find(message, &self.path, 0)), message)
    }

    /// A join key in `message` (a plan from [`ProtoSchema::key_plan`]); an integer left
    /// out (proto3's zero) is no key.
    pub fn key<'a>(&'a self, message: &'a [u8]) -> Result<KeyValue<'a>, FieldMiss> {
        let Read::Number(kind, _) = self.read else {
            return self.text(message).map(KeyValue::Text);
        };
        let value = find(message, &self.path, 0)?.ok_or(FieldMiss::Missing)?;
        let v = match (kind, value) {
            (Number::Varint, Wire::Varint(v)) => i128::from(v as i64),
            (Number::Unsigned, Wire::Varint(v)) => i128::from(v),
            (Number::Zigzag, Wire::Varint(v)) => i128::from(unzigzag(v)),
            (Number::Fixed64, Wire::Fixed64(b)) => i128::from(u64::from_le_bytes(b)),
            (Number::SFixed64, Wire::Fixed64(b)) => i128::from(i64::from_le_bytes(b)),
            (Number::Fixed32, Wire::Fixed32(b)) => i128::from(u32::from_le_bytes(b)),
            (Number::SFixed32, Wire::Fixed32(b)) => i128::from(i32::from_le_bytes(b)),
            _ => return Err(FieldMiss::BadEncoding),
        };
        Ok(KeyValue::Int(v))
    }

    /// Like [`Self::text`], with the field already found in `message` ([`scan`]).
    pub fn text_in<'a>(&'a self, found: Found<'a>, message: &'a [u8]) -> Result<&'a [u8], FieldMiss> {
        let value = match (found.0.and_then(|v| v.ok_or(FieldMiss::Missing)), &self.default) {
            // left out at its default, in a message that is there
            (Err(FieldMiss::Missing), Some(default)) => {
                let parent = &self.path[..self.path.len() - 1];
                return if parent.is_empty() || find(message, parent, 0)?.is_some() {
                    Ok(default.as_bytes())
                } else {
                    Err(FieldMiss::Missing)
                };
            }
            (v, _) => v?,
        };
        match (self.read, value) {
            (Read::Symbol, Wire::Varint(v)) => {
                let n = v as i64 as i32;
                self.symbols.iter().find(|(k, _)| *k == n).map(|(_, s)| s.as_bytes()).ok_or(FieldMiss::Missing)
            }
            (Read::String, Wire::Len(text)) => Ok(text),
            _ => Err(FieldMiss::BadEncoding),
        }
    }
}

/// `value` units of `unit` nanoseconds each, in milliseconds (floored).
fn scale(value: i64, unit: i64) -> Millis {
    match unit {
        1_000_000_000 => value.saturating_mul(1000),
        1_000_000 => value,
        _ => value.div_euclid(1_000_000 / unit),
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use prost_reflect::{DynamicMessage, Value};

    use super::*;

    const NOW: Millis = 1_795_375_975_123; // 2026-11-22T19:32:55.123Z

    const COMMON: &str = r#"syntax = "proto3";
package shop.common;
message Address { string street = 1; string country = 2; }
"#;

    /// An order: the event time after a nested message, repeated messages, a map and an
    /// enum; a second top-level message and a nested one for the framing's indexes.
    const ORDER: &str = r#"syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
import "common.proto";
enum Channel { WEB = 0; APP = 1; EMAIL = 7; }
message Refund { string order_id = 1; int64 refunded_at_ms = 2; }
message Order {
  message Item { string sku = 1; double price = 2; }
  string order_id = 1;
  shop.common.Address shipping = 2;
  repeated Item items = 3;
  map<string, string> tags = 4;
  Channel channel = 5;
  google.protobuf.Timestamp created_at = 13;
  int64 paid_at_ms = 14;
  string shipped_at = 15;
  google.protobuf.Int64Value packed_at_us = 16;
  sint64 zig = 17;
  fixed64 fixed_ms = 18;
  double seconds = 19;
  bool gift = 20;
}
"#;

    fn schema() -> ProtoSchema {
        ProtoSchema::compile(ORDER, &[("common.proto".into(), COMMON.into())]).unwrap()
    }

    fn order(schema: &ProtoSchema) -> DynamicMessage {
        let desc = schema.message(Some("shop.Order"), &[]).unwrap();
        let mut m = DynamicMessage::new(desc.clone());
        m.set_field_by_name("order_id", Value::String("o-1".into()));
        let address = desc.get_field_by_name("shipping").unwrap();
        let Kind::Message(address) = address.kind() else { panic!() };
        let mut a = DynamicMessage::new(address);
        a.set_field_by_name("country", Value::String("DE".into()));
        m.set_field_by_name("shipping", Value::Message(a));
        let Kind::Message(item) = desc.get_field_by_name("items").unwrap().kind() else { panic!() };
        let items = (0..3)
            .map(|k| {
                let mut i = DynamicMessage::new(item.clone());
                i.set_field_by_name("sku", Value::String(format!("SKU-{k}")));
                i.set_field_by_name("price", Value::F64(9.5));
                Value::Message(i)
            })
            .collect();
        m.set_field_by_name("items", Value::List(items));
        m.set_field_by_name("channel", Value::EnumNumber(1));
        let Kind::Message(ts) = desc.get_field_by_name("created_at").unwrap().kind() else { panic!() };
        let mut t = DynamicMessage::new(ts);
        t.set_field_by_name("seconds", Value::I64(NOW.div_euclid(1000)));
        t.set_field_by_name("nanos", Value::I32((NOW.rem_euclid(1000) * 1_000_000) as i32 + 999));
        m.set_field_by_name("created_at", Value::Message(t));
        m.set_field_by_name("paid_at_ms", Value::I64(NOW));
        m.set_field_by_name("shipped_at", Value::String("2026-11-22T19:32:55.123Z".into()));
        let Kind::Message(w) = desc.get_field_by_name("packed_at_us").unwrap().kind() else { panic!() };
        let mut wrapped = DynamicMessage::new(w);
        wrapped.set_field_by_name("value", Value::I64(NOW * 1000));
        m.set_field_by_name("packed_at_us", Value::Message(wrapped));
        m.set_field_by_name("zig", Value::I64(-NOW));
        m.set_field_by_name("fixed_ms", Value::U64(NOW as u64));
        m.set_field_by_name("seconds", Value::F64(NOW as f64 / 1000.0));
        m
    }

    fn plan(schema: &ProtoSchema, field: &str, format: TimeFormat) -> ProtoPlan {
        let message = schema.message(None, &[1]).unwrap();
        ProtoSchema::plan(&message, &[field], format).unwrap()
    }

    #[test]
    fn a_join_key_is_a_string_an_enum_or_an_integer_hashed_as_its_text() {
        let s = schema();
        let bytes = order(&s).encode_to_vec();
        let message = s.message(None, &[1]).unwrap();
        let key = |field: &[&str]| ProtoSchema::key_plan(&message, field).map(|p| p.key(&bytes).map(KeyValue::hash));
        let text = |t: &str| xxhash_rust::xxh3::xxh3_64(t.as_bytes());
        assert_eq!(key(&["paid_at_ms"]), Ok(Ok(text(&NOW.to_string()))), "an int64: its decimal text");
        assert_eq!(key(&["zig"]), Ok(Ok(text(&(-NOW).to_string()))), "a sint64");
        assert_eq!(key(&["fixed_ms"]), Ok(Ok(text(&NOW.to_string()))), "a fixed64");
        assert_eq!(key(&["channel"]).unwrap(), Ok(text("APP")), "an enum: its value's name");
        assert_eq!(key(&["shipping", "country"]), Ok(Ok(text("DE"))));
        assert!(matches!(key(&["seconds"]), Err(SchemaError::NotText(_))), "a double is no key");
        assert!(key(&["items"]).is_err(), "a repeated message is no key");
    }

    #[test]
    fn every_kind_of_time_a_shop_writes_is_read() {
        let s = schema();
        let bytes = order(&s).encode_to_vec();
        for (field, format, want) in [
            ("created_at", TimeFormat::Rfc3339, NOW),
            ("paid_at_ms", TimeFormat::EpochMillis, NOW),
            ("shipped_at", TimeFormat::Rfc3339, NOW),
            ("packed_at_us", TimeFormat::EpochMicros, NOW),
            ("zig", TimeFormat::EpochMillis, -NOW),
            ("fixed_ms", TimeFormat::EpochMillis, NOW),
            ("seconds", TimeFormat::EpochSeconds, NOW),
        ] {
            assert_eq!(plan(&s, field, format).time(&bytes, None), Ok(want), "{field}");
        }
        let message = s.message(None, &[1]).unwrap();
        assert_eq!(
            ProtoSchema::plan(&message, &["paid_at_ms"], TimeFormat::Rfc3339),
            Err(SchemaError::NotATime("/paid_at_ms is a number: set format to its epoch unit".into()))
        );
        assert_eq!(
            ProtoSchema::plan(&message, &["gift"], TimeFormat::EpochMillis),
            Err(SchemaError::NotATime("/gift is a bool in the schema, not a time".into()))
        );
        assert_eq!(
            ProtoSchema::plan(&message, &["placed_at"], TimeFormat::Rfc3339),
            Err(SchemaError::NoField("/placed_at".into()))
        );
    }

    #[test]
    fn messages_by_framing_indexes_or_by_name_and_nested_fields_and_segments() {
        let s = schema();
        assert_eq!(s.message(None, &[0]).unwrap().full_name(), "shop.Refund");
        assert_eq!(s.message(None, &[1, 0]).unwrap().full_name(), "shop.Order.Item");
        assert!(s.message(None, &[2]).unwrap_err().contains("no message at index 2"));
        assert!(s.message(Some("shop.Nope"), &[]).unwrap_err().contains("shop.Nope"));
        let order = s.message(None, &[1]).unwrap();
        let bytes = self::order(&s).encode_to_vec();
        let country = ProtoSchema::text_plan(&order, &["shipping", "country"]).unwrap();
        assert_eq!(country.text(&bytes), Ok(&b"DE"[..]));
        let street = ProtoSchema::text_plan(&order, &["shipping", "street"]).unwrap();
        assert_eq!(street.text(&bytes), Err(FieldMiss::Missing), "proto3 leaves an empty string out");
        let channel = ProtoSchema::text_plan(&order, &["channel"]).unwrap();
        assert_eq!(channel.text(&bytes), Ok(&b"APP"[..]));
        // proto3 leaves WEB (0) out: it still reads WEB; no message at all is missing
        let web = DynamicMessage::new(order.clone()).encode_to_vec();
        assert_eq!(channel.text(&[0x0a, 1, b'x']), Ok(&b"WEB"[..]));
        assert_eq!(channel.text(&web), Ok(&b"WEB"[..]));
        assert!(matches!(ProtoSchema::text_plan(&order, &["paid_at_ms"]), Err(SchemaError::NotText(_))));
    }

    #[test]
    fn the_last_value_wins_and_messages_merge() {
        let s = schema();
        let first = order(&s).encode_to_vec();
        let message = s.message(None, &[1]).unwrap();
        let mut later = DynamicMessage::new(message.clone());
        later.set_field_by_name("paid_at_ms", Value::I64(NOW + 5));
        let mut both = first.clone();
        both.extend(later.encode_to_vec());
        assert_eq!(plan(&s, "paid_at_ms", TimeFormat::EpochMillis).time(&both, None), Ok(NOW + 5));
        // the address sent again without the country: merged, the country stays
        let mut again = DynamicMessage::new(message.clone());
        let Kind::Message(address) = message.get_field_by_name("shipping").unwrap().kind() else { panic!() };
        let mut a = DynamicMessage::new(address);
        a.set_field_by_name("street", Value::String("Elm St 2".into()));
        again.set_field_by_name("shipping", Value::Message(a));
        let mut merged = first.clone();
        merged.extend(again.encode_to_vec());
        let country = ProtoSchema::text_plan(&message, &["shipping", "country"]).unwrap();
        assert_eq!(country.text(&merged), Ok(&b"DE"[..]));
        let decoded = DynamicMessage::decode(message, &merged[..]).unwrap();
        assert_eq!(
            decoded
                .get_field_by_name("shipping")
                .unwrap()
                .as_message()
                .unwrap()
                .get_field_by_name("country")
                .unwrap()
                .as_str(),
            Some("DE")
        );
    }

    #[test]
    fn truncated_or_corrupt_data_is_bad_encoding_and_never_a_panic() {
        let s = schema();
        let bytes = order(&s).encode_to_vec();
        let p = plan(&s, "created_at", TimeFormat::Rfc3339);
        for cut in 1..bytes.len() {
            let _ = p.time(&bytes[..cut], None);
        }
        assert_eq!(p.time(&[0x0a, 0x7f], None), Err(FieldMiss::BadEncoding), "a length past the end");
        assert_eq!(p.time(&[0x0f], None), Err(FieldMiss::BadEncoding), "wire type 7");
        assert_eq!(p.time(&[0xff; 12], None), Err(FieldMiss::BadEncoding), "a varint that never ends");
        assert_eq!(p.time(&[], None), Err(FieldMiss::Missing));
        // a (proto2) group before the field, and the field's key written in two bytes
        let paid = plan(&s, "paid_at_ms", TimeFormat::EpochMillis);
        let mut odd = vec![0x4b, 0x08, 0x01, 0x53, 0x54, 0x4c]; // group 9 { 1: 1, group 10 {} }
        odd.extend([0xf0, 0x80, 0x00]); // field 14, varint, padded key
        odd.extend([0x05]);
        assert_eq!(paid.time(&odd, None), Ok(5));
        assert_eq!(paid.time(&[0x4b, 0x08, 0x01], None), Err(FieldMiss::BadEncoding), "a group without its end");
        assert_eq!(paid.time(&[0x4b, 0x54], None), Err(FieldMiss::BadEncoding), "another group's end");
    }

    #[test]
    fn the_confluent_message_indexes() {
        assert_eq!(
            message_indexes(&[0, 1, 2]).map(|(i, rest)| (i.as_slice().to_vec(), rest)),
            Ok((vec![0], &[1, 2][..]))
        );
        // [1, 0]: count 2, then 1 and 0, zig-zag
        assert_eq!(
            message_indexes(&[4, 2, 0, 9]).map(|(i, rest)| (i.as_slice().to_vec(), rest)),
            Ok((vec![1, 0], &[9][..]))
        );
        assert_eq!(message_indexes(&[]).map(|_| ()), Err(FieldMiss::BadEncoding));
        assert_eq!(message_indexes(&[40]).map(|_| ()), Err(FieldMiss::BadEncoding), "20 indexes");
        assert_eq!(message_indexes(&[1]).map(|_| ()), Err(FieldMiss::BadEncoding), "a negative count");
    }

    #[test]
    fn a_schema_that_does_not_compile_says_why() {
        let err = ProtoSchema::compile("syntax = \"proto3\"; message A { B b = 1; }", &[]).unwrap_err();
        assert!(err.starts_with("not a Protobuf schema"), "{err}");
        let err = ProtoSchema::compile(ORDER, &[]).unwrap_err();
        assert!(err.contains("common.proto"), "{err}");
    }
}
