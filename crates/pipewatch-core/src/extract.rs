//! Event time: where a record says its business event happened, and why a record's
//! event time may be unusable (the invalid reasons, counted, never guessed around).

use crate::json::{JsonPointer, Lookup};
use crate::time::{parse_local, parse_rfc3339, Millis};

/// How a JSON field encodes a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    Rfc3339,
    EpochSeconds,
    EpochMillis,
    EpochMicros,
}

impl TimeFormat {
    /// The config names, in the order the docs list them.
    pub const NAMES: [&'static str; 4] = ["rfc3339", "epoch_seconds", "epoch_millis", "epoch_micros"];

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "rfc3339" => Self::Rfc3339,
            "epoch_seconds" => Self::EpochSeconds,
            "epoch_millis" => Self::EpochMillis,
            "epoch_micros" => Self::EpochMicros,
            _ => return None,
        })
    }
}

/// Why a record's event time could not be used. The set is fixed: these are the
/// `reason` label values of `pipewatch_records_invalid_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InvalidReason {
    /// No payload, or a zero-length one (e.g. a tombstone).
    EmptyPayload,
    /// The payload is not JSON (as far as the lookup read it).
    NotJson,
    /// The event-time field (or the Kafka timestamp) is absent.
    MissingField,
    /// The field is there but is not a time in the configured format, or is implausible
    /// (before 2000-01-01: usually seconds read as milliseconds or the like).
    BadTimestamp,
    /// The event time is more than `max_future_skew` ahead of the arrival time.
    FutureTimestamp,
    /// A schema-registry format (Avro): the payload is not framed as the registry's
    /// serializers frame it, or its datum is truncated or corrupt.
    BadEncoding,
    /// The registry does not know the record's schema id (404), or its schema cannot be
    /// read as the stream's format.
    UnknownSchema,
}

impl InvalidReason {
    pub const ALL: [InvalidReason; 7] = [
        Self::EmptyPayload,
        Self::NotJson,
        Self::MissingField,
        Self::BadTimestamp,
        Self::FutureTimestamp,
        Self::BadEncoding,
        Self::UnknownSchema,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmptyPayload => "empty_payload",
            Self::NotJson => "not_json",
            Self::MissingField => "missing_field",
            Self::BadTimestamp => "bad_timestamp",
            Self::FutureTimestamp => "future_timestamp",
            Self::BadEncoding => "bad_encoding",
            Self::UnknownSchema => "unknown_schema",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why a field of a schema-registry format (Avro, Protobuf) gave no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldMiss {
    /// The field is not in this record (a union took another branch, e.g. `null`; a
    /// Protobuf field left out).
    Missing,
    /// Truncated or corrupt data.
    BadEncoding,
    /// The value is there but is no time (an unparsable string, out of range).
    BadTimestamp,
}

/// A decimal number of `unit_ns`-nanosecond units, in milliseconds: scaled the way the
/// JSON path scales (seconds × 1000, micros ÷ 1000), so that a decimal such as
/// `1795375975.123` seconds is the millisecond it says.
pub(crate) fn float_millis(v: f64, unit_ns: i64) -> f64 {
    match unit_ns {
        1_000_000_000 => v * 1000.0,
        1_000_000 => v,
        1000 => v / 1000.0,
        ns => v * ns as f64 / 1_000_000.0,
    }
}

/// Event times before this (2000-01-01T00:00:00Z) are implausible for a live pipeline.
pub const MIN_PLAUSIBLE_EVENT_TIME: Millis = 946_684_800_000;

/// Where a stream's records carry their event time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTimeSource {
    /// A JSON field at a pointer, in a format.
    Field { pointer: JsonPointer, format: TimeFormat },
    /// The Kafka message timestamp (create or log-append time).
    KafkaTimestamp,
}

/// Extracts event times for one stream; built once from the config, then used per record.
#[derive(Debug, Clone)]
pub struct Extractor {
    source: EventTimeSource,
    max_future_skew_ms: Millis,
    /// The zone of RFC 3339-like strings written without an offset (local time); without
    /// one such a string is `bad_timestamp`.
    timezone: Option<chrono_tz::Tz>,
}

impl Extractor {
    pub fn new(source: EventTimeSource, max_future_skew_ms: Millis) -> Self {
        Self { source, max_future_skew_ms, timezone: None }
    }

    /// Reads strings without an offset as local time in `timezone` (an offset, when a
    /// string has one, still wins).
    pub fn with_timezone(mut self, timezone: Option<chrono_tz::Tz>) -> Self {
        self.timezone = timezone;
        self
    }

    /// The event time of one record, or why it has none. `kafka_timestamp` is the
    /// message timestamp if the broker gave one. Does not allocate.
    #[inline]
    pub fn extract(
        &self,
        payload: Option<&[u8]>,
        kafka_timestamp: Option<Millis>,
        arrival: Millis,
    ) -> Result<Millis, InvalidReason> {
        let t = match &self.source {
            EventTimeSource::KafkaTimestamp => kafka_timestamp.ok_or(InvalidReason::MissingField)?,
            EventTimeSource::Field { pointer, .. } => {
                let payload = match payload {
                    Some(p) if !p.is_empty() => p,
                    _ => return Err(InvalidReason::EmptyPayload),
                };
                return self.from_lookup(pointer.lookup(payload), arrival);
            }
        };
        self.plausible(t, arrival)
    }

    /// The JSON pointer of the event time, when it is a field.
    pub fn pointer(&self) -> Option<&JsonPointer> {
        match &self.source {
            EventTimeSource::Field { pointer, .. } => Some(pointer),
            EventTimeSource::KafkaTimestamp => None,
        }
    }

    /// How the field writes its time (`None` for the Kafka timestamp).
    pub fn format(&self) -> Option<TimeFormat> {
        match self.source {
            EventTimeSource::Field { format, .. } => Some(format),
            EventTimeSource::KafkaTimestamp => None,
        }
    }

    /// The zone of local times.
    pub fn timezone(&self) -> Option<chrono_tz::Tz> {
        self.timezone
    }

    /// Like [`Self::extract`] for a time already read from a schema-registry format.
    #[inline]
    pub fn from_decoded(&self, found: Result<Millis, FieldMiss>, arrival: Millis) -> Result<Millis, InvalidReason> {
        let t = found.map_err(|miss| match miss {
            FieldMiss::Missing => InvalidReason::MissingField,
            FieldMiss::BadEncoding => InvalidReason::BadEncoding,
            FieldMiss::BadTimestamp => InvalidReason::BadTimestamp,
        })?;
        self.plausible(t, arrival)
    }

    /// Like [`Self::extract`] for a field, with the field already looked up (with other
    /// fields, in one pass: [`crate::json::PointerSet`]) in a payload that is not empty.
    #[inline]
    pub fn from_lookup(&self, found: Lookup<'_>, arrival: Millis) -> Result<Millis, InvalidReason> {
        let t = self.time_of(found)?;
        self.plausible(t, arrival)
    }

    /// The event time as the record writes it, before it is judged plausible: for the
    /// time-zone hint, how far ahead a record rejected as `future_timestamp` is.
    pub fn written_time(&self, payload: Option<&[u8]>, kafka_timestamp: Option<Millis>) -> Option<Millis> {
        match &self.source {
            EventTimeSource::KafkaTimestamp => kafka_timestamp,
            EventTimeSource::Field { pointer, .. } => self.time_of(pointer.lookup(payload?)).ok(),
        }
    }

    #[inline]
    fn time_of(&self, found: Lookup<'_>) -> Result<Millis, InvalidReason> {
        let EventTimeSource::Field { format, .. } = self.source else {
            return Err(InvalidReason::MissingField);
        };
        Ok(match found {
            Lookup::String { raw, escaped } => {
                if escaped {
                    return Err(InvalidReason::BadTimestamp);
                }
                match format {
                    TimeFormat::Rfc3339 => parse_rfc3339(raw)
                        .or_else(|| self.timezone.and_then(|tz| parse_local(raw, tz)))
                        .ok_or(InvalidReason::BadTimestamp)?,
                    _ => parse_epoch(raw, format).ok_or(InvalidReason::BadTimestamp)?,
                }
            }
            Lookup::Number(raw) => match format {
                TimeFormat::Rfc3339 => return Err(InvalidReason::BadTimestamp),
                _ => parse_epoch(raw, format).ok_or(InvalidReason::BadTimestamp)?,
            },
            Lookup::Other => return Err(InvalidReason::BadTimestamp),
            Lookup::Missing => return Err(InvalidReason::MissingField),
            Lookup::NotJson => return Err(InvalidReason::NotJson),
        })
    }

    #[inline]
    fn plausible(&self, t: Millis, arrival: Millis) -> Result<Millis, InvalidReason> {
        if t < MIN_PLAUSIBLE_EVENT_TIME {
            return Err(InvalidReason::BadTimestamp);
        }
        if t > arrival.saturating_add(self.max_future_skew_ms) {
            return Err(InvalidReason::FutureTimestamp);
        }
        Ok(t)
    }
}

/// Parses an epoch number (integer, decimal or exponent form) in the given unit.
/// Epoch values beyond this many milliseconds either way (about 3 million years) are no
/// time at all: `bad_timestamp`, however they are written.
pub const MAX_EPOCH_MS: Millis = 100_000_000_000_000_000;

fn parse_epoch(raw: &[u8], format: TimeFormat) -> Option<Millis> {
    // Fast path: a plain integer.
    let (neg, body) = match raw.first() {
        Some(b'-') => (true, &raw[1..]),
        _ => (false, raw),
    };
    if !body.is_empty() && body.len() <= 18 && body.iter().all(u8::is_ascii_digit) {
        let mut v: i64 = 0;
        for &c in body {
            v = v * 10 + i64::from(c - b'0');
        }
        let v = if neg { -v } else { v };
        let ms = match format {
            TimeFormat::EpochSeconds => v.checked_mul(1000)?,
            TimeFormat::EpochMillis => v,
            TimeFormat::EpochMicros => v.div_euclid(1000),
            TimeFormat::Rfc3339 => return None,
        };
        return (ms.abs() <= MAX_EPOCH_MS).then_some(ms);
    }
    let v: f64 = std::str::from_utf8(raw).ok()?.parse().ok()?;
    if !v.is_finite() {
        return None;
    }
    let ms = match format {
        TimeFormat::EpochSeconds => v * 1000.0,
        TimeFormat::EpochMillis => v,
        TimeFormat::EpochMicros => v / 1000.0,
        TimeFormat::Rfc3339 => return None,
    };
    if ms.abs() > MAX_EPOCH_MS as f64 {
        return None;
    }
    Some(ms.floor() as Millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_795_375_975_000; // 2026-11-22T19:32:55Z
    const SKEW: Millis = 300_000;

    fn field(ptr: &str, format: TimeFormat) -> Extractor {
        Extractor::new(EventTimeSource::Field { pointer: JsonPointer::parse(ptr).unwrap(), format }, SKEW)
    }

    #[test]
    fn a_local_time_is_read_in_the_streams_zone_and_an_offset_still_wins() {
        let naive = br#"{"t":"2026-11-23 03:32:55"}"#; // Shanghai's wall clock at NOW
        assert_eq!(field("/t", TimeFormat::Rfc3339).extract(Some(naive), None, NOW), Err(InvalidReason::BadTimestamp));
        let ex = field("/t", TimeFormat::Rfc3339).with_timezone(Some(chrono_tz::Asia::Shanghai));
        assert_eq!(ex.extract(Some(naive), None, NOW), Ok(NOW));
        assert_eq!(ex.extract(Some(br#"{"t":"2026-11-22T19:32:55Z"}"#), None, NOW), Ok(NOW));
        assert_eq!(ex.extract(Some(br#"{"t":"2026-11-23 03:32"}"#), None, NOW), Err(InvalidReason::BadTimestamp));
    }

    #[test]
    fn every_format() {
        let ex = field("/t", TimeFormat::Rfc3339);
        assert_eq!(ex.extract(Some(br#"{"t":"2026-11-22T19:32:55Z"}"#), None, NOW), Ok(NOW));
        let ex = field("/t", TimeFormat::EpochSeconds);
        assert_eq!(ex.extract(Some(br#"{"t":1795375975}"#), None, NOW), Ok(NOW));
        assert_eq!(ex.extract(Some(br#"{"t":1795375975.25}"#), None, NOW), Ok(NOW + 250));
        assert_eq!(ex.extract(Some(br#"{"t":"1795375975"}"#), None, NOW), Ok(NOW));
        let ex = field("/t", TimeFormat::EpochMillis);
        assert_eq!(ex.extract(Some(br#"{"t":1795375975000}"#), None, NOW), Ok(NOW));
        assert_eq!(ex.extract(Some(br#"{"t":1.795375975e12}"#), None, NOW), Ok(NOW));
        let ex = field("/t", TimeFormat::EpochMicros);
        assert_eq!(ex.extract(Some(br#"{"t":1795375975000123}"#), None, NOW), Ok(NOW));
        let ex = Extractor::new(EventTimeSource::KafkaTimestamp, SKEW);
        assert_eq!(ex.extract(None, Some(NOW - 5), NOW), Ok(NOW - 5));
    }

    #[test]
    fn every_invalid_reason() {
        let ex = field("/t", TimeFormat::EpochMillis);
        assert_eq!(ex.extract(None, Some(NOW), NOW), Err(InvalidReason::EmptyPayload));
        assert_eq!(ex.extract(Some(b""), Some(NOW), NOW), Err(InvalidReason::EmptyPayload));
        assert_eq!(ex.extract(Some(b"not json at all"), Some(NOW), NOW), Err(InvalidReason::NotJson));
        assert_eq!(ex.extract(Some(br#"{"t": 1"#), Some(NOW), NOW), Err(InvalidReason::NotJson));
        assert_eq!(ex.extract(Some(br#"{"x": 1}"#), Some(NOW), NOW), Err(InvalidReason::MissingField));
        assert_eq!(ex.extract(Some(br#"{"t": "soon"}"#), Some(NOW), NOW), Err(InvalidReason::BadTimestamp));
        assert_eq!(ex.extract(Some(br#"{"t": null}"#), Some(NOW), NOW), Err(InvalidReason::BadTimestamp));
        // seconds written where milliseconds were promised: January 1970
        assert_eq!(ex.extract(Some(br#"{"t": 1795375975}"#), Some(NOW), NOW), Err(InvalidReason::BadTimestamp));
        let future = format!(r#"{{"t": {}}}"#, NOW + SKEW + 1);
        assert_eq!(ex.extract(Some(future.as_bytes()), Some(NOW), NOW), Err(InvalidReason::FutureTimestamp));
        let edge = format!(r#"{{"t": {}}}"#, NOW + SKEW);
        assert_eq!(ex.extract(Some(edge.as_bytes()), Some(NOW), NOW), Ok(NOW + SKEW));
        let rfc = field("/t", TimeFormat::Rfc3339);
        assert_eq!(rfc.extract(Some(br#"{"t": 1795375975}"#), None, NOW), Err(InvalidReason::BadTimestamp));
        let kafka = Extractor::new(EventTimeSource::KafkaTimestamp, SKEW);
        assert_eq!(kafka.extract(Some(b"x"), None, NOW), Err(InvalidReason::MissingField));
    }

    #[test]
    fn reason_names_are_the_metric_labels() {
        let names: Vec<_> = InvalidReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "empty_payload",
                "not_json",
                "missing_field",
                "bad_timestamp",
                "future_timestamp",
                "bad_encoding",
                "unknown_schema"
            ]
        );
        for (i, r) in InvalidReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
