#![deny(unsafe_code)]
#![deny(rust_2018_idioms)]
//! pipewatch's Kafka source: the consumer thread that feeds the monitor ([`source`]),
//! the log-end poller that tells silence and rate from the broker, the history learner
//! of the baselines, and helpers that start a real broker for tests ([`testing`], behind
//! the `testing` feature).
//!
//! Its files by concern, the leaves first: `client` (settings, the clock), `metrics`,
//! `messages` (what the threads send each other), `rebalance` (the consumer's
//! callbacks), `records` (batch reads), `waiting` (records held for their schema),
//! `topics` (which stream reads which topic), `reader` (the consumer thread), `poller` (the
//! log-end poller thread), `history` (the learner thread), `joins` (the joins' own
//! consumer thread), `check` (`check-config --connect`), `source` (starts and joins the
//! threads).

mod check;
mod client;
// librdkafka's admin calls for group offsets, which rust-rdkafka does not wrap.
#[allow(unsafe_code)]
mod groups;
mod history;
mod joins;
mod messages;
mod metrics;
mod poller;
mod reader;
mod rebalance;
// librdkafka called directly for batch reads (see its docs).
#[allow(unsafe_code)]
mod records;
pub mod source;
#[cfg(feature = "testing")]
pub mod testing;
mod topics;
mod waiting;

pub use check::{check_group, check_topics, cluster_topics, GroupCheck, TopicCheck};
pub use client::{now_ms, validate_properties, SourceConfig, Start, FETCH_DEFAULTS};
pub use messages::{GroupDiscovery, Links, NameMatch, SchemaLink, TopicListing};
pub use metrics::{ErrorKind, SourceMetrics};
pub use source::{Source, SourceError};
