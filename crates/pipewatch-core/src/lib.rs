#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
//! pipewatch's pure domain: event-time extraction ([`extract`], [`json`]), the monitor
//! state with its trackers, watermarks, gaps, rates and diagnosis ([`monitor`]), and
//! time helpers ([`time`]), and alert rules with their state machine ([`alert`]). No I/O and no clock: every rule takes `now` as an argument.

pub mod alert;
pub mod extract;
pub mod histogram;
pub mod json;
pub mod monitor;
pub mod time;

pub use extract::{EventTimeSource, Extractor, InvalidReason, TimeFormat};
pub use json::JsonPointer;
pub use monitor::{Cause, KafkaStatus, Monitor, MonitorSettings, PairSpec, Snapshot, StartPosition, StreamSpec};
pub use time::Millis;
