#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
//! pipewatch's alert delivery: each receiver (Prometheus Alertmanager's v2 API, or a
//! webhook that gets Alertmanager's webhook payload) has its own task and queue;
//! failed sends are retried with backoff, so an outage of a receiver loses nothing.
//! The JSON bodies live in [`payload`], the queues and workers in [`delivery`].

pub mod delivery;
pub mod payload;

pub use delivery::{check_ca, Delivery, DeliveryMetrics, ReceiverConfig, ReceiverKind, ReceiverStats, Secret, RESULTS};
