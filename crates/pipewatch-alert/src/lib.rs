#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
//! pipewatch's alert delivery: each receiver (Prometheus Alertmanager's v2 API, or a
//! webhook that gets Alertmanager's webhook payload) has its own task and queue;
//! failed sends are retried with backoff, so an outage of a receiver loses nothing.
//! The JSON bodies live in [`payload`], the queues and workers in [`delivery`], the
//! HTTP client (shared with the schema registry's) in [`http`].

pub mod delivery;
pub mod http;
pub mod payload;

pub use delivery::{Delivery, DeliveryMetrics, ReceiverConfig, ReceiverKind, ReceiverStats, RESULTS};
pub use http::{check_ca, Access, HttpClient, Secret};
