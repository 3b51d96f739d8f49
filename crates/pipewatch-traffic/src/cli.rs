//! `pipewatch generate`'s command line: where to write, how fast, and which faults.

use std::time::Duration;

use crate::{Fault, GenerateOptions, Plan, Scheduled, Stream};

/// `pipewatch generate`'s command line.
#[derive(clap::Args)]
pub struct GenerateArgs {
    #[arg(long, default_value = "localhost:9092")]
    bootstrap_servers: String,
    /// A librdkafka property, KEY=VALUE (repeatable), e.g. -X security.protocol=SASL_SSL.
    #[arg(short = 'X', long = "property", value_parser = parse_property)]
    properties: Vec<(String, String)>,
    #[arg(long, default_value = "orders")]
    orders_topic: String,
    #[arg(long, default_value = "user-behaviour")]
    behaviour_topic: String,
    /// Records per second for each stream, spread over its partitions.
    #[arg(long, default_value_t = 20.0, value_parser = parse_rate)]
    rate: f64,
    /// Stop after this long (e.g. "10m"); runs until Ctrl-C when not given.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Behaviour events are written this long after they happen, from the start (e.g. "8h").
    #[arg(long, value_parser = parse_duration)]
    behaviour_delay: Option<Duration>,
    /// Share of the records, from the start, with no usable event time (0 to 1).
    #[arg(long, value_parser = parse_share)]
    invalid_share: Option<f64>,
    /// When the following faults start.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    fault_after: Duration,
    /// Write nothing to this partition, STREAM:PARTITION with STREAM orders or behaviour (repeatable).
    #[arg(long, value_parser = parse_partition)]
    silent_partition: Vec<(Stream, i32)>,
    /// Write nothing to this stream, orders or behaviour (repeatable).
    #[arg(long, value_parser = parse_stream)]
    stop_stream: Vec<Stream>,
    /// The rate falls to this fraction (0 to 1).
    #[arg(long, value_parser = parse_share)]
    volume_drop: Option<f64>,
    /// Write none of this stream's records of this channel, STREAM:CHANNEL with CHANNEL
    /// web, app or email (one collection path stops; repeatable).
    #[arg(long, value_parser = parse_channel)]
    stop_channel: Vec<(Stream, &'static str)>,
    /// How the orders are written: json, avro (Confluent's wire format, the schema
    /// registered at --schema-registry under <orders topic>-value), or sql: not to Kafka
    /// but as INSERTs into --orders-table on stdout, for psql (a CDC connector such as
    /// Debezium then writes them to Kafka); the table is created first if need be.
    #[arg(long, default_value = "json", value_parser = ["json", "avro", "sql"])]
    orders_format: String,
    /// The table of --orders-format sql.
    #[arg(long, default_value = "orders", value_parser = parse_table)]
    orders_table: String,
    /// The schema registry's Confluent-compatible API (Redpanda's http://redpanda:8081).
    #[arg(long, required_if_eq("orders_format", "avro"))]
    schema_registry: Option<String>,
}

impl GenerateArgs {
    pub fn into_options(self) -> GenerateOptions {
        let from_start = |fault| Scheduled { fault, from: Duration::ZERO, until: None };
        let later = |fault| Scheduled { fault, from: self.fault_after, until: None };
        let mut faults = Vec::new();
        faults.extend(self.behaviour_delay.map(|d| from_start(Fault::BehaviourDelay(d))));
        faults.extend(self.invalid_share.map(|x| from_start(Fault::InvalidShare(x))));
        faults.extend(self.silent_partition.iter().map(|(s, p)| later(Fault::SilentPartition(*s, *p))));
        faults.extend(self.stop_stream.iter().map(|s| later(Fault::StoppedStream(*s))));
        faults.extend(self.volume_drop.map(|x| later(Fault::VolumeDrop(x))));
        faults.extend(self.stop_channel.iter().map(|(s, c)| later(Fault::StoppedChannel(*s, c))));
        GenerateOptions {
            bootstrap_servers: self.bootstrap_servers,
            properties: self.properties,
            plan: Plan {
                orders_topic: self.orders_topic,
                behaviour_topic: self.behaviour_topic,
                rate: self.rate,
                faults,
                orders_avro: None,
                orders_sql: (self.orders_format == "sql").then_some(self.orders_table),
            },
            duration: self.duration,
            schema_registry: (self.orders_format == "avro").then_some(self.schema_registry).flatten(),
        }
    }
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("expected a positive number of records per second, got {s:?}")),
    }
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("expected a number from 0 to 1, got {s:?}")),
    }
}

fn parse_stream(s: &str) -> Result<Stream, String> {
    Stream::from_name(s).ok_or_else(|| format!("expected orders or behaviour, got {s:?}"))
}

fn parse_partition(s: &str) -> Result<(Stream, i32), String> {
    let (stream, partition) = s.split_once(':').ok_or_else(|| format!("expected STREAM:PARTITION, got {s:?}"))?;
    let partition = partition.parse::<i32>().ok().filter(|p| *p >= 0);
    Ok((parse_stream(stream)?, partition.ok_or_else(|| format!("expected a partition number, got {s:?}"))?))
}

fn parse_channel(s: &str) -> Result<(Stream, &'static str), String> {
    let (stream, channel) = s.split_once(':').ok_or_else(|| format!("expected STREAM:CHANNEL, got {s:?}"))?;
    let channel = crate::CHANNELS
        .into_iter()
        .find(|c| *c == channel)
        .ok_or_else(|| format!("expected a channel of {}, got {channel:?}", crate::CHANNELS.join(", ")))?;
    Ok((parse_stream(stream)?, channel))
}

/// A table name for SQL: letters, digits and `_`, optionally `schema.table`.
fn parse_table(s: &str) -> Result<String, String> {
    let word = |w: &str| {
        w.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !s.is_empty() && s.split('.').count() <= 2 && s.split('.').all(word) {
        Ok(s.to_string())
    } else {
        Err(format!("expected a table name such as orders or public.orders, got {s:?}"))
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    pipewatch_core::time::parse_duration(s)
}
