//! The clients' settings: where reading starts, pipewatch's librdkafka settings under the
//! user's properties, and the wall clock every thread of the source reads.

use std::time::{Duration, SystemTime};

use pipewatch_core::Millis;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;

/// Where reading starts on each assigned partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Earliest,
    Latest,
    /// The first offset whose timestamp is at most this long ago.
    Lookback(Duration),
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub bootstrap_servers: String,
    pub group_id: String,
    pub start: Start,
    /// Passed to librdkafka as they are (TLS, SASL, …), after pipewatch's own settings.
    pub properties: Vec<(String, String)>,
    pub tick: Duration,
    /// A join reads co-partitioned topics (`partitions = "co_partitioned"`): the group
    /// assigns with the range assignor, which gives partition i of every topic of the
    /// same partition count to the same member; otherwise cooperative-sticky.
    pub range_assignment: bool,
}

/// The wall clock, in the core's milliseconds.
pub fn now_ms() -> Millis {
    pipewatch_core::time::epoch_millis(SystemTime::now())
}

/// The consumer's fetch settings (a user's `kafka.properties` override them):
/// - `fetch.queue.backoff.ms`: librdkafka postpones a partition's next fetch this long
///   whenever its local queue is full, which happens as soon as the consumer is a little
///   slower than the fetcher; the default (1 s) turns a catch-up into bursts and ~1 s
///   pauses. 10 ms keeps the fetcher busy.
/// - `queued.max.messages.kbytes` and `fetch.max.bytes`: the prefetched records (the
///   default allows 64 MiB queued plus 50 MiB per fetch response) are capped at 32 MiB
///   queued plus 16 MiB per response, so that memory stays bounded during a catch-up.
/// - `fetch.wait.max.ms`: how long the broker holds a fetch when no partition has a new
///   record. It answers at once when one has, so this costs no latency; but every answer
///   costs librdkafka and the broker work for every assigned partition, which at
///   10 000 idle partitions and the default 500 ms is a quarter of a core for each.
pub const FETCH_DEFAULTS: &[(&str, &str)] = &[
    ("fetch.queue.backoff.ms", "10"),
    ("queued.max.messages.kbytes", "32768"),
    ("fetch.max.bytes", "16777216"),
    ("fetch.wait.max.ms", "5000"),
];

/// pipewatch's settings, the group ones when `group` is set, then the user's properties.
pub(crate) fn client_config(config: &SourceConfig, group: bool) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.bootstrap_servers)
        .set("client.id", "pipewatch")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", if config.start == Start::Earliest { "earliest" } else { "latest" })
        .set("topic.metadata.refresh.interval.ms", "10000")
        .set("reconnect.backoff.max.ms", "2000")
        .set_log_level(RDKafkaLogLevel::Warning);
    if group {
        let strategy = if config.range_assignment { "range" } else { "cooperative-sticky" };
        c.set("group.id", &config.group_id).set("partition.assignment.strategy", strategy);
        for (k, v) in FETCH_DEFAULTS {
            c.set(*k, *v);
        }
    }
    for (k, v) in &config.properties {
        c.set(k, v);
    }
    c
}

/// Checks that librdkafka accepts the properties (no network involved).
pub fn validate_properties(config: &SourceConfig) -> Result<(), KafkaError> {
    client_config(config, true).create::<BaseConsumer>().map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(properties: &[(&str, &str)]) -> SourceConfig {
        SourceConfig {
            bootstrap_servers: "127.0.0.1:9".into(),
            group_id: "pipewatch-test".into(),
            start: Start::Lookback(Duration::from_secs(900)),
            properties: properties.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            tick: Duration::from_secs(1),
            range_assignment: false,
        }
    }

    #[test]
    fn librdkafka_checks_the_properties_without_a_broker() {
        for mechanism in ["PLAIN", "SCRAM-SHA-512", "OAUTHBEARER"] {
            let sasl = [
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanisms", mechanism),
                ("sasl.username", "pipewatch"),
                ("sasl.password", "secret"),
            ];
            if let Err(e) = validate_properties(&config(&sasl)) {
                panic!("SASL_SSL with {mechanism}: {e}");
            }
        }
        let err = validate_properties(&config(&[("no.such.property", "1")])).unwrap_err();
        assert!(err.to_string().contains("no.such.property"), "{err}");
    }
}
