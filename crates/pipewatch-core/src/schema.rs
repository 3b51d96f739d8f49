//! Records framed by a schema registry (the Confluent wire format: magic byte 0, a 4-byte
//! schema id, the datum): what the registry answered for an id ([`SchemaFetch`]), the
//! schemas the monitor knows ([`Registry`]), and each stream's compiled plans per id
//! ([`StreamSchemas`]), which the per-record path reads.
//!
//! Ids are immutable in a registry, so a schema is fetched once per process. A record
//! whose id is not known yet is not judged: the monitor says `Wait` (for it and the
//! partition's records after it), the source holds them and asks the registry (off the
//! per-record path), and hands them in again, in order, once the answer is in. While the registry does
//! not answer, the waiting streams are `schema_registry_unreachable`; a 404 makes the
//! id's records `unknown_schema`.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::avro::{confluent_frame, FieldPlan, Hit, RecordPlan, Schema, SchemaError, MAX_FIELDS};
use crate::extract::{FieldMiss, InvalidReason, TimeFormat};
use crate::join::KeyValue;
use crate::json::{JsonPointer, Lookup};
use crate::protobuf::{message_indexes, scan, Found, MessageIndexes, ProtoPlan, ProtoSchema};
use crate::segment::SegmentState;
use crate::spec::StreamSpec;
use crate::time::Millis;

/// How a stream's record values are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueFormat {
    #[default]
    Json,
    /// Avro in the Confluent wire format, writer schemas from the schema registry.
    Avro,
    /// Protobuf in the Confluent wire format (the message indexes after the schema id).
    Protobuf,
}

impl ValueFormat {
    /// The config names, in the order the docs list them.
    pub const NAMES: [&'static str; 3] = ["json", "avro", "protobuf"];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "json" => Some(Self::Json),
            "avro" => Some(Self::Avro),
            "protobuf" => Some(Self::Protobuf),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Avro => "avro",
            Self::Protobuf => "protobuf",
        }
    }

    /// As a sentence names it.
    pub fn display(self) -> &'static str {
        match self {
            Self::Json => "JSON",
            Self::Avro => "Avro",
            Self::Protobuf => "Protobuf",
        }
    }

    /// Whether its records carry a schema id to be resolved at the registry.
    pub fn uses_registry(self) -> bool {
        self != Self::Json
    }
}

/// A schema as the registry serves it (`GET /schemas/ids/{id}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSchema {
    /// `schemaType` as the registry names it (`AVRO` when it names none).
    pub kind: String,
    pub text: String,
    /// The referenced schemas `(name, text)`, each before the ones that use it (the name
    /// is what a Protobuf schema imports it as).
    pub references: Vec<(String, String)>,
    /// A subject and version the schema is registered under, where the registry says.
    pub subject: Option<String>,
    pub version: Option<i64>,
}

/// What asking the registry for a schema id gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaFetch {
    Found(RegisteredSchema),
    /// The registry does not know the id (404).
    Unknown,
    /// The registry did not answer, or not usefully (a time-out, a 5xx, a body that is
    /// no schema): asked again, the records wait.
    Unreachable(String),
}

/// A writer schema, parsed or compiled.
#[derive(Debug)]
pub(crate) enum Parsed {
    Avro(Schema),
    Protobuf(ProtoSchema),
}

/// A schema id as the monitor knows it, shared by every stream that reads it.
#[derive(Debug)]
pub(crate) struct KnownSchema {
    /// The parsed schema, or why its records cannot be read.
    schema: Result<Parsed, String>,
    subject: Option<String>,
    version: Option<i64>,
}

/// The schemas known to the process, and whether the registry answers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Registry {
    known: FxHashMap<u32, Arc<KnownSchema>>,
    /// Why the registry did not answer the last time it was asked; `None` once it does.
    pub(crate) down: Option<String>,
}

impl Registry {
    /// How many schema ids are known.
    pub(crate) fn known(&self) -> usize {
        self.known.len()
    }

    pub(crate) fn get(&self, id: u32) -> Option<&Arc<KnownSchema>> {
        self.known.get(&id)
    }

    /// Takes in an answer; `true` when the id is known now (found, or not found).
    pub(crate) fn answer(&mut self, id: u32, fetch: SchemaFetch) -> bool {
        let known = match fetch {
            SchemaFetch::Unreachable(why) => {
                self.down = Some(why);
                return false;
            }
            SchemaFetch::Unknown => {
                KnownSchema { schema: Err(format!("schema {id} is not in the registry")), subject: None, version: None }
            }
            SchemaFetch::Found(s) => {
                let schema = match s.kind.to_ascii_uppercase().as_str() {
                    "AVRO" => {
                        let refs: Vec<&str> = s.references.iter().map(|(_, text)| text.as_str()).collect();
                        Schema::parse_with_references(&s.text, &refs).map(Parsed::Avro).map_err(|e| e.to_string())
                    }
                    "PROTOBUF" => ProtoSchema::compile(&s.text, &s.references).map(Parsed::Protobuf),
                    other => Err(format!("a {other} schema, which pipewatch does not read")),
                };
                KnownSchema {
                    schema: schema.map_err(|e| format!("schema {id}: {e}")),
                    subject: s.subject,
                    version: s.version,
                }
            }
        };
        self.down = None;
        self.known.insert(id, Arc::new(known));
        true
    }
}

/// One field's compiled plan, in the schema's format.
#[derive(Debug, Clone)]
enum Plan {
    Avro(FieldPlan),
    Protobuf(ProtoPlan),
}

/// The event time and the segments read in one pass over a value, where the schema lets
/// their paths share one: each slot says which reading a field of the pass is.
#[derive(Debug, Clone)]
enum Pass {
    Avro(RecordPlan),
    Protobuf(Vec<ProtoPlan>),
}

/// What a field of a [`Pass`] is read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Time,
    Segment(usize),
}

/// What one stream's records of one writer schema (and one message of it) are read
/// with: the plans of its event time and segments, or why they cannot be.
#[derive(Debug, Clone)]
struct IdPlans {
    id: u32,
    /// Protobuf: the message of the schema (the framing's indexes).
    indexes: MessageIndexes,
    known: Arc<KnownSchema>,
    /// The event time's plan (`None`: the stream reads the Kafka timestamp), or why the
    /// schema has no such time.
    time: Option<Result<Plan, String>>,
    /// Each segment's plan; `None` where the schema has no such string or enum.
    segments: Vec<Option<Plan>>,
    /// Each join key's plan (the stream's `join_keys`); `None` where the schema has no
    /// such string, enum or integer. Read after the pass, each alone.
    keys: Vec<Option<Plan>>,
    /// The time and segments in one pass (with two or more to read, where the schema
    /// allows), and what each field of it is for.
    pass: Option<(Pass, Vec<Slot>)>,
    /// Why none of its records can be read (another format, a message not there).
    unusable: Option<String>,
    records: u64,
    /// A record with this id was read.
    seen: bool,
}

/// The writer schema ids a stream's records carry, at most this many in the status (the
/// last to appear).
pub const SCHEMAS_SHOWN: usize = 5;

/// A stream's plans per schema id, and the ids it waits for.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamSchemas {
    ids: Vec<IdPlans>,
    /// The index of the last id read (most records carry the same id as the one before).
    last: usize,
    /// The plans in the order their first record was read.
    seen_order: Vec<usize>,
}

/// What reading one record's time gave.
pub(crate) enum Read {
    /// The schema id is not known yet: the record waits.
    Wait(u32),
    /// The event time, or why there is none; with the time as written, before it was
    /// judged plausible (for the time-zone hint).
    Time(Result<Millis, InvalidReason>, Option<Millis>),
}

/// One schema id in a stream's status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaInUse {
    pub id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Records read with it.
    pub records: u64,
    /// Why its records have no event time, e.g. `schema 12 has no field /created_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A record's framing: the schema id, the message (Protobuf) and the encoded value.
#[inline]
fn frame(format: ValueFormat, doc: &[u8]) -> Option<(u32, MessageIndexes, &[u8])> {
    let (id, rest) = confluent_frame(doc)?;
    match format {
        ValueFormat::Protobuf => {
            let (indexes, message) = message_indexes(rest).ok()?;
            Some((id, indexes, message))
        }
        _ => Some((id, MessageIndexes::default(), rest)),
    }
}

impl StreamSchemas {
    /// Compiles the plans of `id` (and, Protobuf, the message `indexes` name) for the
    /// stream, from a schema the registry knows.
    fn add(
        &mut self,
        id: u32,
        indexes: MessageIndexes,
        known: &Arc<KnownSchema>,
        spec: &StreamSpec,
        join_keys: &[JsonPointer],
    ) -> usize {
        let format = spec.extractor.format().unwrap_or(TimeFormat::Rfc3339);
        let time_pointer = spec.extractor.pointer().map(|p| p.tokens());
        let (mut time, mut segments, mut keys, mut unusable) = (None, Vec::new(), Vec::new(), None);
        match (&known.schema, spec.value_format) {
            (Err(why), _) => unusable = Some(why.clone()),
            (Ok(Parsed::Avro(schema)), ValueFormat::Avro) => {
                time = time_pointer.map(|p| schema.plan(&p, format).map(Plan::Avro).map_err(|e| problem(id, None, &e)));
                segments =
                    spec.segments.iter().map(|g| schema.text_plan(&g.pointer.tokens()).ok().map(Plan::Avro)).collect();
                keys = join_keys.iter().map(|k| schema.key_plan(&k.tokens()).ok().map(Plan::Avro)).collect();
            }
            (Ok(Parsed::Protobuf(schema)), ValueFormat::Protobuf) => {
                match schema.message(spec.message.as_deref(), indexes.as_slice()) {
                    Ok(message) => {
                        time = time_pointer.map(|p| {
                            ProtoSchema::plan(&message, &p, format)
                                .map(Plan::Protobuf)
                                .map_err(|e| problem(id, Some(message.full_name()), &e))
                        });
                        segments = spec
                            .segments
                            .iter()
                            .map(|g| ProtoSchema::text_plan(&message, &g.pointer.tokens()).ok().map(Plan::Protobuf))
                            .collect();
                        keys = join_keys
                            .iter()
                            .map(|k| ProtoSchema::key_plan(&message, &k.tokens()).ok().map(Plan::Protobuf))
                            .collect();
                    }
                    Err(why) => unusable = Some(format!("schema {id}: {why}")),
                }
            }
            (Ok(parsed), wanted) => {
                let kind = if matches!(parsed, Parsed::Avro(_)) { "Avro" } else { "Protobuf" };
                unusable = Some(format!("schema {id} is {kind}, the stream reads {}", wanted.display()));
            }
        }
        let pass = one_pass(&known.schema, spec, &time, &segments);
        self.ids.push(IdPlans {
            id,
            indexes,
            known: known.clone(),
            time,
            segments,
            keys,
            pass,
            unusable,
            records: 0,
            seen: false,
        });
        self.ids.len() - 1
    }

    #[inline]
    fn find(&self, id: u32, indexes: &MessageIndexes) -> Option<usize> {
        let is = |p: &IdPlans| p.id == id && p.indexes == *indexes;
        if self.ids.get(self.last).is_some_and(is) {
            return Some(self.last);
        }
        self.ids.iter().position(is)
    }

    /// The event time of one record (its segments' values into `segments`, its join
    /// keys' hashes into `keys`), or `Wait` when its schema id is not known yet. The
    /// per-record path: no allocation.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn read(
        &mut self,
        registry: &Registry,
        spec: &StreamSpec,
        payload: Option<&[u8]>,
        kafka_timestamp: Option<Millis>,
        arrival: Millis,
        segments: &mut [SegmentState],
        live: bool,
        join_keys: &[JsonPointer],
        keys: &mut [Option<u64>],
    ) -> Read {
        let extractor = &spec.extractor;
        let Some(doc) = payload.filter(|p| !p.is_empty()) else {
            return Read::Time(Err(InvalidReason::EmptyPayload), None);
        };
        let Some((id, indexes, datum)) = frame(spec.value_format, doc) else {
            return Read::Time(Err(InvalidReason::BadEncoding), None);
        };
        let index = match self.find(id, &indexes) {
            Some(i) => i,
            None => match registry.get(id) {
                Some(known) => self.add(id, indexes, known, spec, join_keys),
                None => return Read::Wait(id),
            },
        };
        self.last = index;
        let plans = &mut self.ids[index];
        plans.records += 1;
        if !plans.seen {
            plans.seen = true;
            self.seen_order.push(index);
        }
        let plans = &self.ids[index];
        if plans.unusable.is_some() {
            return Read::Time(Err(InvalidReason::UnknownSchema), None);
        }
        let schema = &plans.known.schema;
        for (key, plan) in keys.iter_mut().zip(&plans.keys) {
            *key = plan.as_ref().and_then(|p| key_of(p, schema, datum).ok()).map(KeyValue::hash);
        }
        if let Some((pass, slots)) = &plans.pass {
            return read_in_one_pass(pass, slots, schema, datum, extractor, kafka_timestamp, segments, live, arrival);
        }
        for (segment, plan) in segments.iter_mut().zip(&plans.segments) {
            let found = match plan.as_ref().map(|p| text(p, schema, datum)) {
                Some(Ok(raw)) => Lookup::String { raw, escaped: false },
                Some(Err(FieldMiss::BadEncoding)) => Lookup::NotJson,
                _ => Lookup::Missing,
            };
            segment.record(found, live, arrival);
        }
        match &plans.time {
            None => Read::Time(extractor.extract(payload, kafka_timestamp, arrival), kafka_timestamp),
            Some(Err(_)) => Read::Time(Err(InvalidReason::MissingField), None),
            Some(Ok(plan)) => {
                let written = time(plan, schema, datum, extractor.timezone());
                Read::Time(extractor.from_decoded(written, arrival), written.ok())
            }
        }
    }

    /// The event time of a record read outside the stream (a consumer's committed
    /// offset): never waits, an id not known yet gives none.
    pub(crate) fn time_of(
        &mut self,
        registry: &Registry,
        spec: &StreamSpec,
        join_keys: &[JsonPointer],
        payload: Option<&[u8]>,
        kafka_timestamp: Option<Millis>,
        now: Millis,
    ) -> Option<Millis> {
        let (id, indexes, datum) = frame(spec.value_format, payload?)?;
        let index = match self.find(id, &indexes) {
            Some(i) => i,
            None => self.add(id, indexes, registry.get(id)?, spec, join_keys),
        };
        let plans = &self.ids[index];
        if plans.unusable.is_some() {
            return None;
        }
        match &plans.time {
            None => spec.extractor.extract(payload, kafka_timestamp, now).ok(),
            Some(Ok(plan)) => {
                let written = time(plan, &plans.known.schema, datum, spec.extractor.timezone());
                spec.extractor.from_decoded(written, now).ok()
            }
            Some(Err(_)) => None,
        }
    }

    /// Writer schema ids that appeared after the first (another message of an id already
    /// read is no new id): `pipewatch_stream_schema_changes_total`.
    pub(crate) fn changes(&self) -> u64 {
        let mut ids: Vec<u32> = self.seen_order.iter().map(|&i| self.ids[i].id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len().saturating_sub(1) as u64
    }

    /// The last ids to appear, newest last.
    pub(crate) fn in_use(&self) -> Vec<SchemaInUse> {
        let from = self.seen_order.len().saturating_sub(SCHEMAS_SHOWN);
        self.seen_order[from..]
            .iter()
            .map(|&i| {
                let p = &self.ids[i];
                SchemaInUse {
                    id: p.id,
                    subject: p.known.subject.clone(),
                    version: p.known.version,
                    records: p.records,
                    problem: match (&p.unusable, &p.time) {
                        (Some(why), _) => Some(why.clone()),
                        (None, Some(Err(why))) => Some(why.clone()),
                        _ => None,
                    },
                }
            })
            .collect()
    }
}

/// The time and segments of `spec` in one pass, where there are two or more to read and
/// the schema lets their paths share one.
fn one_pass(
    schema: &Result<Parsed, String>,
    spec: &StreamSpec,
    time: &Option<Result<Plan, String>>,
    segments: &[Option<Plan>],
) -> Option<(Pass, Vec<Slot>)> {
    let mut slots = Vec::new();
    let mut plans = Vec::new();
    let mut pointers = Vec::new();
    if let (Some(Ok(plan)), Some(pointer)) = (time, spec.extractor.pointer()) {
        slots.push(Slot::Time);
        plans.push(plan);
        pointers.push(pointer.tokens());
    }
    for (j, (plan, g)) in segments.iter().zip(&spec.segments).enumerate() {
        if let Some(plan) = plan {
            slots.push(Slot::Segment(j));
            plans.push(plan);
            pointers.push(g.pointer.tokens());
        }
    }
    if plans.len() < 2 || plans.len() > MAX_FIELDS {
        return None;
    }
    let pass = match schema.as_ref().ok()? {
        Parsed::Avro(schema) => {
            let fields: Option<Vec<(Vec<&str>, FieldPlan, bool)>> = plans
                .iter()
                .zip(&pointers)
                .zip(&slots)
                .map(|((plan, pointer), slot)| match plan {
                    Plan::Avro(p) => Some((pointer.clone(), p.clone(), *slot == Slot::Time)),
                    Plan::Protobuf(_) => None,
                })
                .collect();
            Pass::Avro(schema.record_plan(&fields?)?)
        }
        Parsed::Protobuf(_) => Pass::Protobuf(
            plans
                .iter()
                .map(|plan| match plan {
                    Plan::Protobuf(p) => Some(p.clone()),
                    Plan::Avro(_) => None,
                })
                .collect::<Option<Vec<_>>>()?,
        ),
    };
    Some((pass, slots))
}

/// [`StreamSchemas::read`] for a value whose time and segments are read in one pass.
#[allow(clippy::too_many_arguments)]
#[inline]
fn read_in_one_pass(
    pass: &Pass,
    slots: &[Slot],
    schema: &Result<Parsed, String>,
    datum: &[u8],
    extractor: &crate::extract::Extractor,
    kafka_timestamp: Option<Millis>,
    segments: &mut [SegmentState],
    live: bool,
    arrival: Millis,
) -> Read {
    let tz = extractor.timezone();
    let mut hits: [Result<Hit<'_>, FieldMiss>; MAX_FIELDS] = [Err(FieldMiss::Missing); MAX_FIELDS];
    match (pass, schema) {
        (Pass::Avro(plan), Ok(Parsed::Avro(s))) => plan.read(s, datum, tz, &mut hits),
        (Pass::Protobuf(plans), _) => {
            let mut found = [Found::default(); MAX_FIELDS];
            scan(plans, datum, &mut found);
            for ((hit, (plan, f)), slot) in hits.iter_mut().zip(plans.iter().zip(found)).zip(slots) {
                *hit = match slot {
                    Slot::Time => plan.time_in(f, tz).map(Hit::Time),
                    Slot::Segment(_) => plan.text_in(f, datum).map(Hit::Text),
                };
            }
        }
        _ => return Read::Time(Err(InvalidReason::UnknownSchema), None),
    }
    // segments without a plan in this schema: not there
    for (j, segment) in segments.iter_mut().enumerate() {
        let found = match slots.iter().position(|s| *s == Slot::Segment(j)).map(|k| hits[k]) {
            Some(Ok(Hit::Text(raw))) => Lookup::String { raw, escaped: false },
            Some(Err(FieldMiss::BadEncoding)) => Lookup::NotJson,
            _ => Lookup::Missing,
        };
        segment.record(found, live, arrival);
    }
    match slots.iter().position(|s| *s == Slot::Time).map(|k| hits[k]) {
        Some(Ok(Hit::Time(t))) => Read::Time(extractor.from_decoded(Ok(t), arrival), Some(t)),
        Some(Err(miss)) => Read::Time(extractor.from_decoded(Err(miss), arrival), None),
        Some(Ok(Hit::Text(_))) => Read::Time(Err(InvalidReason::BadTimestamp), None),
        // the Kafka timestamp, or no plan for the time in this schema
        None => match extractor.pointer() {
            None => Read::Time(extractor.extract(None, kafka_timestamp, arrival), kafka_timestamp),
            Some(_) => Read::Time(Err(InvalidReason::MissingField), None),
        },
    }
}

/// A plan's time in a datum of its schema.
#[inline]
fn time(
    plan: &Plan,
    schema: &Result<Parsed, String>,
    datum: &[u8],
    tz: Option<chrono_tz::Tz>,
) -> Result<Millis, FieldMiss> {
    match (plan, schema) {
        (Plan::Avro(p), Ok(Parsed::Avro(s))) => p.time(s, datum, tz),
        (Plan::Protobuf(p), Ok(_)) => p.time(datum, tz),
        _ => Err(FieldMiss::BadEncoding),
    }
}

/// A plan's join key in a datum of its schema.
#[inline]
fn key_of<'a>(plan: &'a Plan, schema: &Result<Parsed, String>, datum: &'a [u8]) -> Result<KeyValue<'a>, FieldMiss> {
    match (plan, schema) {
        (Plan::Avro(p), Ok(Parsed::Avro(s))) => p.key(s, datum),
        (Plan::Protobuf(p), Ok(_)) => p.key(datum),
        _ => Err(FieldMiss::BadEncoding),
    }
}

/// A plan's text (a segment's value) in a datum of its schema.
#[inline]
fn text<'a>(plan: &'a Plan, schema: &Result<Parsed, String>, datum: &'a [u8]) -> Result<&'a [u8], FieldMiss> {
    match (plan, schema) {
        (Plan::Avro(p), Ok(Parsed::Avro(s))) => p.text(s, datum),
        (Plan::Protobuf(p), Ok(_)) => p.text(datum),
        _ => Err(FieldMiss::BadEncoding),
    }
}

/// Why a writer schema gives a stream no event time, for the status: `schema 12 has no
/// field /created_at` (and the Protobuf message looked in).
fn problem(id: u32, message: Option<&str>, e: &SchemaError) -> String {
    match (e, message) {
        (SchemaError::NoField(path), None) => format!("schema {id} has no field {path}"),
        (SchemaError::NoField(path), Some(m)) => format!("schema {id} has no field {path} (message {m})"),
        (other, _) => format!("schema {id}: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use apache_avro::types::Value as Avro;

    use super::*;
    use crate::diagnosis::Cause;
    use crate::extract::{EventTimeSource, Extractor, TimeFormat};
    use crate::json::JsonPointer;
    use crate::segment::SegmentSpec;
    use crate::snapshot::{KafkaStatus, Snapshot};
    use crate::spec::{MonitorSettings, StartPosition};
    use crate::Monitor;
    use crate::RecordOutcome;

    const SEC: Millis = 1000;
    const T0: Millis = 1_795_375_975_000;

    const V1: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
        {"name": "id", "type": "string"},
        {"name": "channel", "type": {"type": "enum", "name": "Channel", "symbols": ["web", "app"]}},
        {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#;
    /// The next version: a field added before the event time.
    const V2: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
        {"name": "id", "type": "string"},
        {"name": "coupon", "type": ["null", "string"], "default": null},
        {"name": "channel", "type": {"type": "enum", "name": "Channel", "symbols": ["web", "app"]}},
        {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#;
    /// A version without the event time.
    const V3: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
        {"name": "id", "type": "string"},
        {"name": "channel", "type": {"type": "enum", "name": "Channel", "symbols": ["web", "app"]}}]}"#;

    #[allow(deprecated)]
    fn framed(id: u32, schema: &str, fields: Vec<(&str, Avro)>) -> Vec<u8> {
        let reference = apache_avro::Schema::parse_str(schema).unwrap();
        let record = Avro::Record(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let mut out = vec![0];
        out.extend_from_slice(&id.to_be_bytes());
        out.extend(apache_avro::to_avro_datum(&reference, record).unwrap());
        out
    }

    /// The framing alone (enough to be asked for a schema).
    fn header(id: u32) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&id.to_be_bytes());
        out
    }

    fn v1(created_at: Millis, channel: u32) -> Vec<u8> {
        let symbol = ["web", "app"][channel as usize].to_string();
        framed(
            1,
            V1,
            vec![
                ("id", Avro::String("o-1".into())),
                ("channel", Avro::Enum(channel, symbol)),
                ("created_at", Avro::TimestampMillis(created_at)),
            ],
        )
    }

    fn found(text: &str, version: i64) -> SchemaFetch {
        SchemaFetch::Found(RegisteredSchema {
            kind: "AVRO".into(),
            text: text.into(),
            references: Vec::new(),
            subject: Some("orders-value".into()),
            version: Some(version),
        })
    }

    fn avro_monitor() -> Monitor {
        let mut m = Monitor::new(
            MonitorSettings { idle_partition_timeout_ms: 300 * SEC, rate_window_ms: 60 * SEC },
            vec![avro_spec()],
            vec![],
        );
        m.set_kafka_status(KafkaStatus::Up, None);
        for p in 0..2 {
            m.assign_partition(0, 0, p, StartPosition::At(0), T0);
            m.log_end(0, p, 0, T0);
            m.position(0, p, 0);
        }
        m
    }

    /// Avro orders: event time `/created_at`, segment `channel`.
    fn avro_spec() -> StreamSpec {
        StreamSpec {
            name: "orders".into(),
            topics: vec!["orders".into()],
            topic_pattern: None,
            value_format: ValueFormat::Avro,
            message: None,
            extractor: Extractor::new(
                EventTimeSource::Field {
                    pointer: JsonPointer::parse("/created_at").unwrap(),
                    format: TimeFormat::Rfc3339,
                },
                300 * SEC,
            ),
            max_silence_ms: 120 * SEC,
            max_record_delay_ms: 600 * SEC,
            min_rate: None,
            max_rate: None,
            baseline: None,
            segments: vec![SegmentSpec { name: "channel".into(), pointer: JsonPointer::parse("/channel").unwrap() }],
            max_segment_values: crate::segment::DEFAULT_MAX_VALUES,
        }
    }

    #[test]
    fn an_avro_leader_joins_on_a_long_or_string_key_as_its_json_text() {
        const ORDER: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
            {"name": "user_id", "type": "long"},
            {"name": "channel", "type": {"type": "enum", "name": "Channel", "symbols": ["web", "app"]}},
            {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "coupon", "type": ["null", "string"], "default": null}]}"#;
        let order = |user: i64, channel: u32, coupon: Option<&str>| {
            let symbol = ["web", "app"][channel as usize].to_string();
            let coupon = coupon
                .map_or(Avro::Union(0, Box::new(Avro::Null)), |c| Avro::Union(1, Box::new(Avro::String(c.into()))));
            framed(
                7,
                ORDER,
                vec![
                    ("user_id", Avro::Long(user)),
                    ("channel", Avro::Enum(channel, symbol)),
                    ("created_at", Avro::TimestampMillis(T0)),
                    ("coupon", coupon),
                ],
            )
        };
        let mut behaviour = avro_spec();
        behaviour.name = "behaviour".into();
        behaviour.topics = vec!["behaviour".into()];
        behaviour.value_format = ValueFormat::Json;
        behaviour.segments = Vec::new();
        behaviour.extractor = Extractor::new(
            EventTimeSource::Field { pointer: JsonPointer::parse("/ts").unwrap(), format: TimeFormat::EpochMillis },
            300 * SEC,
        );
        let join = |leader_key: &str| crate::join::JoinSpec {
            leader_key: JsonPointer::parse(leader_key).unwrap(),
            follower_key: JsonPointer::parse("/user").unwrap(),
            before_ms: 60 * SEC,
            after_ms: 10 * SEC,
            grace_ms: 5 * SEC,
            segments: vec![(0, "channel".into())],
            sample: 1,
            max_keys: 1000,
            max_pending: 1000,
            window_ms: 900 * SEC,
            partitions: crate::join::JoinPartitions::CoPartitioned,
            incomplete_below: 0.5,
            min_judged: 1,
        };
        let pairs = vec![
            crate::spec::PairSpec { name: "by_user".into(), leader: 0, follower: 1, join: Some(join("/user_id")) },
            crate::spec::PairSpec { name: "by_coupon".into(), leader: 0, follower: 1, join: Some(join("/coupon")) },
        ];
        let mut m = Monitor::new(
            MonitorSettings { idle_partition_timeout_ms: 300 * SEC, rate_window_ms: 60 * SEC },
            vec![avro_spec(), behaviour],
            pairs,
        );
        for s in 0..2 {
            m.assign_partition(s, 0, 0, StartPosition::At(0), T0);
        }
        let b = |m: &mut Monitor, o: i64, user: &str, t: Millis| {
            let doc = format!(r#"{{"user": {user}, "ts": {t}}}"#);
            m.record(1, 0, o, Some(doc.as_bytes()), None, t);
        };
        b(&mut m, 0, "0", T0 - 70 * SEC);
        b(&mut m, 1, "42", T0 - 20 * SEC);
        b(&mut m, 2, "\"43\"", T0 - 20 * SEC);
        b(&mut m, 3, "\"SPRING\"", T0 - 20 * SEC);
        assert_eq!(m.schema_fetched(7, found(ORDER, 1)), Vec::<(usize, crate::spec::PartitionSlot)>::new());
        let orders = [(42, 0, Some("SPRING")), (43, 1, None), (44, 1, Some("x"))];
        for (o, (user, channel, coupon)) in orders.into_iter().enumerate() {
            assert_eq!(m.record(0, 0, o as i64, Some(&order(user, channel, coupon)), None, T0), RecordOutcome::Read);
        }
        b(&mut m, 4, "0", T0 + 20 * SEC);
        let s = m.tick(T0 + 20 * SEC);
        let (by_user, by_coupon) = (s.pairs[0].join.as_ref().unwrap(), s.pairs[1].join.as_ref().unwrap());
        assert_eq!((by_user.total.matched, by_user.total.missing), (2, 1), "42 and \"43\" matched, 44 missing");
        let by: Vec<_> = by_user.values.iter().map(|v| (v.value.as_str(), v.total.matched, v.total.missing)).collect();
        assert_eq!(by, [("web", 1, 0), ("app", 1, 1)]);
        // a union's string: SPRING matched, x missing, the null no key (not judged)
        assert_eq!((by_coupon.total.matched, by_coupon.total.missing, by_coupon.pending), (1, 1, 0));
    }

    #[test]
    fn an_avro_follower_read_by_the_joins_own_consumer_is_decoded_here_and_waits_for_its_schema() {
        const EVENT: &str = r#"{"type": "record", "name": "Event", "namespace": "shop", "fields": [
            {"name": "user_id", "type": "long"},
            {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#;
        let event = |user: i64, t: Millis| {
            framed(7, EVENT, vec![("user_id", Avro::Long(user)), ("created_at", Avro::TimestampMillis(t))])
        };
        let mut behaviour = avro_spec();
        behaviour.name = "behaviour".into();
        behaviour.topics = vec!["behaviour".into()];
        behaviour.segments = Vec::new();
        let mut orders = avro_spec();
        orders.value_format = ValueFormat::Json;
        orders.segments = Vec::new();
        orders.extractor = Extractor::new(
            EventTimeSource::Field { pointer: JsonPointer::parse("/ts").unwrap(), format: TimeFormat::EpochMillis },
            300 * SEC,
        );
        let join = crate::join::JoinSpec {
            leader_key: JsonPointer::parse("/user").unwrap(),
            follower_key: JsonPointer::parse("/user_id").unwrap(),
            before_ms: 60 * SEC,
            after_ms: 10 * SEC,
            grace_ms: 5 * SEC,
            segments: Vec::new(),
            sample: 1,
            max_keys: 1000,
            max_pending: 1000,
            window_ms: 900 * SEC,
            partitions: crate::join::JoinPartitions::All,
            incomplete_below: 0.5,
            min_judged: 1,
        };
        let pair = crate::spec::PairSpec { name: "by_user".into(), leader: 0, follower: 1, join: Some(join) };
        let mut m = Monitor::new(
            MonitorSettings { idle_partition_timeout_ms: 300 * SEC, rate_window_ms: 60 * SEC },
            vec![orders, behaviour],
            vec![pair],
        );
        let readers = m.follower_readers();
        assert_eq!(readers.iter().map(|r| (r.join, r.encoded)).collect::<Vec<_>>(), [(0, true)]);
        m.assign_partition(0, 0, 0, StartPosition::At(0), T0);
        let copied = |user: i64, t: Millis| crate::join::FollowerPayload {
            slot: 0,
            payload: Some(event(user, t)),
            timestamp: None,
            arrival: T0,
        };
        let records = [copied(0, T0 - 70 * SEC), copied(42, T0 - 20 * SEC), copied(0, T0 + 20 * SEC)];
        // the schema not known yet: nothing taken, all to be given again
        assert_eq!(m.follower_payloads(0, &records, T0), Err((0, 7)));
        assert_eq!(m.schema_fetched(7, found(EVENT, 1)), Vec::<(usize, crate::spec::PartitionSlot)>::new());
        assert_eq!(m.follower_payloads(0, &records, T0), Ok(()));
        for (o, user) in [42, 43].into_iter().enumerate() {
            let doc = format!(r#"{{"user": {user}, "ts": {T0}}}"#);
            assert_eq!(m.record(0, 0, o as i64, Some(doc.as_bytes()), None, T0), RecordOutcome::Read);
        }
        let s = m.tick(T0 + 20 * SEC);
        let j = s.pairs[0].join.as_ref().unwrap();
        assert_eq!((j.total.matched, j.total.missing, j.pending), (1, 1, 0), "42 matched, 43 missing");
        // the follower stream's own counts are its records', not the copy's
        assert_eq!(s.streams[1].records, 0);
    }

    fn stream(s: &Snapshot) -> &crate::snapshot::StreamSnapshot {
        &s.streams[0]
    }

    #[test]
    fn a_record_of_an_unknown_id_waits_for_its_schema_and_is_read_once_it_is_in() {
        let mut m = avro_monitor();
        let record = v1(T0 - 2 * SEC, 1);
        assert_eq!(m.record(0, 0, 0, Some(&record), None, T0), RecordOutcome::Wait(1));
        // the partition waits: its next records wait behind it
        assert_eq!(m.record(0, 0, 1, Some(&record), None, T0), RecordOutcome::Wait(1));
        assert!(m.waiting(0, 0) && !m.waiting(0, 1));
        let s = m.tick(T0);
        assert_eq!((stream(&s).cause, stream(&s).records), (Cause::NoData, 0), "merely asked: no fault");
        assert_eq!(stream(&s).waiting_for_schemas, [1]);
        // the registry does not answer: a monitoring fault that names it, nothing counted
        assert!(m.schema_fetched(1, SchemaFetch::Unreachable("connection refused".into())).is_empty());
        let s = m.tick(T0 + SEC);
        assert_eq!(stream(&s).cause, Cause::SchemaRegistryUnreachable);
        assert_eq!(stream(&s).cause_detail().as_deref(), Some("records wait for schema 1: connection refused"));
        assert_eq!(s.schema_registry.as_ref().map(|r| r.status), Some(KafkaStatus::Down));
        assert_eq!(stream(&s).invalid.values().sum::<u64>(), 0);
        // it answers: the partition resumes at the record that waited
        assert_eq!(m.schema_fetched(1, found(V1, 1)), [(0, 0)]);
        assert!(!m.waiting(0, 0));
        assert_eq!(m.record(0, 0, 0, Some(&record), None, T0 + 2 * SEC), RecordOutcome::Read);
        // another partition with the same id reads it at once
        assert_eq!(m.record(0, 1, 0, Some(&v1(T0 - SEC, 0)), None, T0 + 2 * SEC), RecordOutcome::Read);
        let s = m.tick(T0 + 2 * SEC);
        let st = stream(&s);
        assert_eq!((st.records, st.watermark_ms, st.schema_registry.as_deref()), (2, Some(T0 - 2 * SEC), None));
        assert_eq!(s.schema_registry.as_ref().map(|r| (r.status, r.schemas_known)), Some((KafkaStatus::Up, 1)));
        assert_eq!(
            st.schemas,
            [SchemaInUse { id: 1, subject: Some("orders-value".into()), version: Some(1), records: 2, problem: None }]
        );
        let values: Vec<(&str, u64)> = st.segments[0].values.iter().map(|v| (v.value.as_str(), v.records)).collect();
        assert_eq!(values, [("app", 1), ("web", 1)]);
    }

    #[test]
    fn versions_are_read_each_by_its_own_schema_and_what_cannot_be_read_is_counted_by_reason() {
        let mut m = avro_monitor();
        for (id, text, v) in [(1, V1, 1), (2, V2, 2), (3, V3, 3)] {
            assert_eq!(m.record(0, 0, 0, Some(&header(id)), None, T0), RecordOutcome::Wait(id));
            m.schema_fetched(id, found(text, v));
        }
        assert_eq!(m.record(0, 0, 0, Some(&header(404)), None, T0), RecordOutcome::Wait(404));
        assert_eq!(m.schema_fetched(404, SchemaFetch::Unknown), [(0, 0)]);
        let v2 = framed(
            2,
            V2,
            vec![
                ("id", Avro::String("o-2".into())),
                ("coupon", Avro::Union(1, Box::new(Avro::String("TEN".into())))),
                ("channel", Avro::Enum(0, "web".into())),
                ("created_at", Avro::TimestampMillis(T0 - SEC)),
            ],
        );
        let v3 = framed(3, V3, vec![("id", Avro::String("o-3".into())), ("channel", Avro::Enum(0, "web".into()))]);
        let mut unknown = v1(T0, 0);
        unknown[1..5].copy_from_slice(&404u32.to_be_bytes());
        let v1 = v1(T0 - 3 * SEC, 0);
        let records: [&[u8]; 7] = [&v1, &v2, &v3, &unknown, br#"{"created_at": 1}"#, &v2[..v2.len() - 2], b""];
        for (offset, r) in records.iter().enumerate() {
            assert_eq!(m.record(0, 0, offset as i64, Some(r), None, T0), RecordOutcome::Read, "record {offset}");
        }
        let s = m.tick(T0);
        let st = stream(&s);
        assert_eq!(st.watermark_ms, Some(T0 - SEC), "version 2 read past its new field");
        let invalid: Vec<(&str, u64)> = st.invalid.iter().filter(|(_, n)| **n > 0).map(|(r, n)| (r, *n)).collect();
        assert_eq!(
            invalid,
            [("bad_encoding", 2), ("empty_payload", 1), ("missing_field", 1), ("unknown_schema", 1)],
            "a JSON record and a cut datum are bad encoding"
        );
        let problems: Vec<(u32, Option<&str>)> = st.schemas.iter().map(|x| (x.id, x.problem.as_deref())).collect();
        assert_eq!(
            problems,
            [
                (1, None),
                (2, None),
                (3, Some("schema 3 has no field /created_at")),
                (404, Some("schema 404 is not in the registry"))
            ]
        );
        assert_eq!(st.schema_changes, 3, "three ids appeared after the first");
    }

    #[test]
    fn a_schema_of_another_format_is_named() {
        let mut m = avro_monitor();
        let record = v1(T0, 0);
        m.record(0, 0, 0, Some(&record), None, T0);
        let proto = SchemaFetch::Found(RegisteredSchema {
            kind: "PROTOBUF".into(),
            text: "syntax = \"proto3\";".into(),
            references: Vec::new(),
            subject: None,
            version: None,
        });
        m.schema_fetched(1, proto);
        m.record(0, 0, 0, Some(&record), None, T0);
        let s = m.tick(T0);
        assert_eq!(stream(&s).invalid[crate::InvalidReason::UnknownSchema], 1);
        assert_eq!(stream(&s).schemas[0].problem.as_deref(), Some("schema 1 is Protobuf, the stream reads Avro"));
    }

    const PROTO: &str = r#"syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
message Refund { string order_id = 1; }
message Order {
  enum Channel { WEB = 0; APP = 1; }
  string order_id = 1;
  Channel channel = 2;
  google.protobuf.Timestamp created_at = 3;
}
"#;

    /// An order of [`PROTO`] framed as Confluent's serializer frames it (indexes `[1]`).
    fn proto_order(id: u32, created_at: Millis, channel: i32) -> Vec<u8> {
        use prost::Message as _;
        use prost_reflect::{DynamicMessage, Value};
        let schema = crate::protobuf::ProtoSchema::compile(PROTO, &[]).unwrap();
        let desc = schema.message(Some("shop.Order"), &[]).unwrap();
        let mut m = DynamicMessage::new(desc.clone());
        m.set_field_by_name("order_id", Value::String("o-1".into()));
        m.set_field_by_name("channel", Value::EnumNumber(channel));
        let prost_reflect::Kind::Message(ts) = desc.get_field_by_name("created_at").unwrap().kind() else { panic!() };
        let mut t = DynamicMessage::new(ts);
        t.set_field_by_name("seconds", Value::I64(created_at / 1000));
        t.set_field_by_name("nanos", Value::I32((created_at % 1000) as i32 * 1_000_000));
        m.set_field_by_name("created_at", Value::Message(t));
        let mut out = header(id);
        out.extend([2, 2]); // one index, 1 (zig-zag)
        out.extend(m.encode_to_vec());
        out
    }

    #[test]
    fn a_protobuf_stream_reads_the_message_its_framing_names() {
        let mut m = avro_monitor();
        // the same stream as Protobuf
        let mut spec = m.streams().next().unwrap().clone();
        spec.value_format = ValueFormat::Protobuf;
        m = Monitor::new(
            MonitorSettings { idle_partition_timeout_ms: 300 * SEC, rate_window_ms: 60 * SEC },
            vec![spec],
            vec![],
        );
        m.set_kafka_status(KafkaStatus::Up, None);
        m.assign_partition(0, 0, 0, StartPosition::At(0), T0);
        let record = proto_order(21, T0 - 1500, 1);
        assert_eq!(m.record(0, 0, 0, Some(&record), None, T0), RecordOutcome::Wait(21));
        let fetch = SchemaFetch::Found(RegisteredSchema {
            kind: "PROTOBUF".into(),
            text: PROTO.into(),
            references: Vec::new(),
            subject: Some("orders-value".into()),
            version: Some(1),
        });
        assert_eq!(m.schema_fetched(21, fetch), [(0, 0)]);
        m.record(0, 0, 0, Some(&record), None, T0);
        // the same id, the framing naming the first message (a Refund): no created_at there
        let mut refund = header(21);
        refund.extend([0, 0x0a, 1, b'r']);
        m.record(0, 0, 1, Some(&refund), None, T0);
        // an Avro-framed record (no indexes) is cut short where the indexes should be
        m.record(0, 0, 2, Some(&header(21)), None, T0);
        let s = m.tick(T0);
        let st = stream(&s);
        assert_eq!(st.watermark_ms, Some(T0 - 1500));
        assert_eq!(
            (st.invalid[crate::InvalidReason::MissingField], st.invalid[crate::InvalidReason::BadEncoding]),
            (1, 1)
        );
        let problems: Vec<Option<&str>> = st.schemas.iter().map(|x| x.problem.as_deref()).collect();
        assert_eq!(problems, [None, Some("schema 21 has no field /created_at (message shop.Refund)")]);
        assert_eq!(st.schema_changes, 0, "another message of the same schema is no new schema");
        let values: Vec<(&str, u64)> = st.segments[0].values.iter().map(|v| (v.value.as_str(), v.records)).collect();
        assert_eq!(values, [("APP", 1), ("none", 1)]);
    }
}
