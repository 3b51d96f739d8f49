//! End-to-end tests: the `pipewatch` binary and library against a real Kafka broker
//! (Apache Kafka started by tests/broker/kafka.sh, or PIPEWATCH_TEST_BOOTSTRAP) and, for
//! the schema-registry formats, a real Apicurio Registry (tests/registry/apicurio.sh).

mod support;

mod alerting;
mod baselines;
mod check_config;
mod connectors;
mod consumers;
mod debezium;
mod demo;
mod deploy;
mod diagnosis_rules;
mod discovery;
mod docs;
mod join;
mod local_time;
mod prometheus;
mod real_broker;
mod schema_registry;
mod secured;
mod segments;
mod status_page;
mod topics;
