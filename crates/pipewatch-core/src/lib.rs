#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
//! pipewatch's pure domain: event-time extraction ([`extract`], [`json`]), the monitor
//! state with its trackers, watermarks, gaps and rates ([`monitor`]), the diagnosis of
//! which link broke ([`diagnosis`]), downstream consumers and their exact lag
//! ([`consumer`]), alert rules with their state machine ([`alert`]) and
//! time helpers ([`time`]). No I/O and no clock: every rule takes `now` as an argument.

pub mod alert;
pub mod baseline;
pub mod consumer;
pub mod diagnosis;
pub mod extract;
pub mod histogram;
pub mod json;
pub mod monitor;
pub mod segment;
pub mod time;

pub use diagnosis::Cause;
pub use extract::{EventTimeSource, Extractor, InvalidReason, TimeFormat};
pub use json::JsonPointer;
pub use monitor::{
    FetchRequest, Fetched, KafkaStatus, Monitor, MonitorSettings, PairSpec, Right, Snapshot, StartPosition, StreamSpec,
};
pub use time::Millis;
