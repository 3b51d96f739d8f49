#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
//! The pipewatch daemon as a library: the config ([`config`], the listener's TLS and
//! basic auth in [`config::web`]), the stages wired together ([`app::run`]: the source,
//! the tick stage ([`tick`]), HTTP), the HTTP interface ([`http`]) with the status page's
//! charts ([`history`]), `/metrics` ([`metrics`], every family declared in
//! [`metrics::names`]), the Prometheus rules generator ([`rules`]), the schema registry and Kafka Connect
//! clients ([`registry`], [`connect`]), the other commands
//! ([`commands`]: check-config, rules, demo) and logs ([`telemetry`]). `main.rs` only
//! parses the command line and handles signals.

pub mod app;
pub mod commands;
pub mod config;
pub mod connect;
pub mod history;
pub mod http;
pub mod metrics;
pub mod registry;
pub mod rules;
pub mod telemetry;
pub mod tick;
