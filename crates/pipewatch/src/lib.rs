#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
//! The pipewatch daemon as a library: config ([`config`]), the wiring of source, monitor
//! and HTTP ([`app::run`]), the Prometheus export ([`metrics`]), the HTTP interface
//! ([`http`]) and the self-contained demo ([`demo`]). `main.rs` only parses the command
//! line and handles signals.

pub mod app;
pub mod config;
pub mod demo;
pub mod http;
pub mod metrics;
pub mod rules;
pub mod traffic;
