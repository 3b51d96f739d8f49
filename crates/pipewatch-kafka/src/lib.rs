#![deny(unsafe_code)]
#![deny(rust_2018_idioms)]
//! pipewatch's Kafka source: the consumer loop that feeds the monitor ([`source`]), the
//! log-end poller that tells silence and rate from the broker, and helpers that start
//! a real broker for tests ([`testing`], behind the `testing` feature).

// The one place that calls librdkafka directly: batch reads (see its docs).
mod history;
#[allow(unsafe_code)]
mod records;
pub mod source;
#[cfg(feature = "testing")]
pub mod testing;

pub use source::{
    check_group, check_topics, now_ms, validate_properties, ErrorKind, GroupCheck, Source, SourceConfig, SourceError,
    SourceMetrics, Start, TopicCheck,
};
