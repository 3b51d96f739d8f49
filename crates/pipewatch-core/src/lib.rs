#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
//! pipewatch's pure domain. No I/O and no clock: every rule takes `now` as an argument.
//!
//! What the monitor is told ([`spec`]) and what it tells ([`snapshot`]); the [`monitor`]
//! itself, with a stream's trackers, watermarks, gaps and rates in [`stream`] and a
//! downstream consumer's exact lag in [`consumer`] (through the [`offset_index`]); the
//! low-watermark rule and sync lag ([`watermark`]); event-time extraction ([`extract`],
//! [`json`], [`time`]); the diagnosis of which link broke ([`diagnosis`]); volume
//! baselines ([`baseline`]) and segments ([`segment`]); schema-registry formats
//! ([`avro`], [`schema`]); Kafka Connect's connectors ([`connect`]); alert rules with their state
//! machine ([`alert`]).

pub mod alert;
pub mod avro;
pub mod baseline;
pub mod connect;
pub mod consumer;
pub mod diagnosis;
pub mod discovery;
pub mod extract;
pub mod histogram;
pub mod join;
pub mod json;
pub mod monitor;
pub mod offset_hint;
pub mod offset_index;
pub mod protobuf;
pub mod schema;
pub mod segment;
pub mod snapshot;
pub mod spec;
pub mod stream;
pub mod time;
pub mod topic_discovery;
pub mod watermark;
mod wire;

pub use connect::{ConnectSnapshot, ConnectorIssue};
pub use consumer::{FetchRequest, Fetched, FetchedRecord};
pub use diagnosis::Cause;
pub use discovery::{DiscoverySpec, GroupChange, GroupListing};
pub use extract::{EventTimeSource, Extractor, InvalidReason, TimeFormat};
pub use join::{FollowerPayload, FollowerReader, FollowerRecord, JoinPartitions, JoinSpec};
pub use json::JsonPointer;
pub use monitor::{Monitor, RecordOutcome};
pub use schema::{RegisteredSchema, SchemaFetch, ValueFormat};
pub use snapshot::{KafkaStatus, Snapshot};
pub use spec::{Committed, ConsumerError, MonitorSettings, PairSpec, PartitionSlot, Right, StartPosition, StreamSpec};
pub use time::Millis;
pub use topic_discovery::TopicDiscoverySpec;
