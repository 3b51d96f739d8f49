#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
//! The pipewatch daemon as a library: config ([`config`]), the stages wired together
//! ([`app::run`]: the source, the tick stage ([`tick`]), HTTP), the Prometheus export ([`metrics`]),
//! the HTTP interface ([`http`]; TLS and basic auth: [`web`]), the Prometheus rules generator ([`rules`]), the
//! offline and connected config checks ([`check`]) and the self-contained demo ([`demo`]).
//! `main.rs` only parses the command line and handles signals.

pub mod app;
pub mod check;
pub mod config;
pub mod demo;
pub mod history;
pub mod http;
pub mod metrics;
pub mod rules;
pub mod tick;
