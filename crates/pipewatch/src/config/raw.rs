//! The config file as written: serde structs that reject unknown keys, each field with
//! why it exists, defaults as named functions. [`super::RawConfig::validate`] turns them
//! into the validated [`super::Config`].

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The cluster to read and how.
    pub kafka: RawKafka,
    /// The one HTTP listener (/metrics, /healthz, /readyz, /api/v1/status, /).
    #[serde(default)]
    pub http: RawHttp,
    /// How the monitor measures.
    #[serde(default)]
    pub monitor: RawMonitor,
    /// What /metrics exports.
    #[serde(default)]
    pub metrics: RawMetrics,
    /// How pipewatch stops.
    #[serde(default)]
    pub shutdown: RawShutdown,
    /// The streams to watch, one topic each.
    #[serde(default, rename = "stream")]
    pub streams: Vec<RawStream>,
    /// Streams that downstream jobs join: their sync lag is measured.
    #[serde(default, rename = "pair")]
    pub pairs: Vec<RawPair>,
    /// Downstream jobs whose groups' committed offsets are watched (never joined).
    #[serde(default, rename = "consumer")]
    pub consumers: Vec<RawConsumer>,
    /// Alert rules on streams and pairs.
    #[serde(default, rename = "alert")]
    pub alerts: Vec<RawAlert>,
    /// Where alerts are delivered.
    #[serde(default, rename = "receiver")]
    pub receivers: Vec<RawReceiver>,
    /// The schema registry of the streams whose values are Avro.
    pub schema_registry: Option<RawSchemaRegistry>,
    /// Kafka Connect clusters whose connectors write and read the streams.
    #[serde(default)]
    pub connect: Vec<RawConnect>,
    /// Consumer groups watched without being listed.
    pub discovery: Option<RawDiscovery>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiscovery {
    /// Which groups are discovered, by name.
    pub groups: Option<RawPatterns>,
    /// How often the cluster's groups are listed.
    #[serde(default = "default_discovery_every")]
    pub every: String,
    /// How often each discovered group's committed offsets are read.
    #[serde(default = "default_discovery_poll")]
    pub poll: String,
    /// Whether discovered consumers get per-partition series (else per stream only).
    #[serde(default)]
    pub partition_series: bool,
    /// Discovered groups watched at most.
    #[serde(default = "default_max_groups")]
    pub max_groups: usize,
    /// How long a discovered group whose offsets are gone stays `group_unknown`.
    #[serde(default = "default_forget_after")]
    pub forget_after: String,
    /// The discovered consumers' `max_lag`.
    #[serde(default = "default_max_lag")]
    pub max_lag: String,
    /// The discovered consumers' `max_stall`.
    #[serde(default = "default_max_stall")]
    pub max_stall: String,
    /// Which topics are discovered, by name: each a stream of its own.
    pub topics: Option<RawPatterns>,
    /// Discovered topics read at most.
    #[serde(default = "default_max_topics")]
    pub max_topics: usize,
    /// The discovered streams' `max_silence`.
    #[serde(default = "default_max_silence")]
    pub max_silence: String,
    /// The discovered streams' `max_record_delay`.
    #[serde(default = "default_max_record_delay")]
    pub max_record_delay: String,
}

fn default_max_topics() -> usize {
    1000
}
/// `_schemas`, `_confluent-*`, and Kafka Connect's configs, offsets and status topics
/// (`__` topics never match).
pub fn default_topic_excludes() -> Vec<String> {
    vec!["^_".into(), "^connect-.*(configs|offsets|status)$".into()]
}

/// Names matched by regular expressions: any of `include` (every name when empty) and
/// none of `exclude` (unset: the defaults of what is matched, groups' or topics').
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPatterns {
    #[serde(default)]
    pub include: Vec<String>,
    pub exclude: Option<Vec<String>>,
}

fn default_discovery_every() -> String {
    "1m".into()
}
fn default_discovery_poll() -> String {
    "10s".into()
}
fn default_max_groups() -> usize {
    200
}
fn default_forget_after() -> String {
    "24h".into()
}
/// Console consumers (one per `kafka-console-consumer` run) and internal groups.
pub fn default_group_excludes() -> Vec<String> {
    vec!["^console-consumer-".into(), "^_".into()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConnect {
    /// The `connect` label.
    pub name: String,
    /// The REST API's base URL (`http://connect:8083`).
    pub url: String,
    /// How often the connectors' states are read.
    #[serde(default = "default_connect_poll")]
    pub poll: String,
    /// How long one request may take.
    #[serde(default = "default_registry_timeout")]
    pub timeout: String,
    /// A CA certificate (PEM) to trust for the API, besides the system's.
    pub ca_file: Option<String>,
    /// A file holding a bearer token for `Authorization: Bearer …`.
    pub bearer_token_file: Option<String>,
    /// Basic auth, the password read from a file.
    pub basic_auth: Option<RawBasicAuth>,
}

fn default_connect_poll() -> String {
    "10s".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReceiver {
    pub name: String,
    /// `alertmanager` (its v2 API) or `webhook` (Alertmanager's webhook payload).
    pub kind: String,
    /// Alertmanager's base URL, or the webhook's URL.
    pub url: String,
    /// How long one request may take.
    #[serde(default = "default_receiver_timeout")]
    pub timeout: String,
    /// Alertmanager: how often firing alerts are re-sent (their `endsAt` is 4× ahead).
    #[serde(default = "default_resend_interval")]
    pub resend_interval: String,
    /// How many alerts (Alertmanager) or transitions (webhook) may wait; beyond, the
    /// oldest are dropped and counted.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// A CA certificate (PEM file) to trust for an https:// URL, besides the system's.
    pub ca_file: Option<String>,
    /// A file holding a token sent as `Authorization: Bearer <token>`.
    pub bearer_token_file: Option<String>,
    /// HTTP basic auth, the password read from a file.
    pub basic_auth: Option<RawBasicAuth>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchemaRegistry {
    /// The Confluent-compatible API's base URL (Apicurio's is `…/apis/ccompat/v7`).
    pub url: String,
    /// How long a request may take before it is retried.
    #[serde(default = "default_registry_timeout")]
    pub timeout: String,
    /// A CA certificate (PEM) to trust for the registry, besides the system's.
    pub ca_file: Option<String>,
    /// A file holding a bearer token for `Authorization: Bearer …`.
    pub bearer_token_file: Option<String>,
    /// Basic auth, the password read from a file.
    pub basic_auth: Option<RawBasicAuth>,
}

fn default_registry_timeout() -> String {
    "5s".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasicAuth {
    pub username: String,
    /// A file holding the password (secrets live in files, never in the config).
    pub password_file: String,
}

fn default_receiver_timeout() -> String {
    "10s".into()
}
fn default_resend_interval() -> String {
    "1m".into()
}
fn default_queue_capacity() -> usize {
    10_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafka {
    /// Where to reach the cluster, `host:port[,host:port…]`.
    pub bootstrap_servers: String,
    /// pipewatch's own consumer group: replicas sharing it split the partitions. Its
    /// offsets are never committed.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Where reading starts: `earliest`, `latest` or `lookback`.
    #[serde(default = "default_start")]
    pub start: String,
    /// With `start = "lookback"`: how much history to replay at start.
    #[serde(default = "default_lookback")]
    pub lookback: String,
    /// How often the cluster's topics are listed for the streams' `topic_pattern`s.
    #[serde(default = "default_metadata_refresh")]
    pub metadata_refresh: String,
    /// Passed to librdkafka as they are (TLS, SASL, timeouts, …).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

fn default_metadata_refresh() -> String {
    "30s".into()
}

fn default_group_id() -> String {
    "pipewatch".into()
}
fn default_start() -> String {
    "lookback".into()
}
fn default_lookback() -> String {
    "15m".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// Address of the HTTP listener; loopback by default, so nothing is exposed unasked.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// How people reach this listener (behind a proxy, a Service, …), for the links in
    /// alerts; default `http://<listen>`.
    pub external_url: Option<String>,
    /// TLS and basic auth for the listener, in the Prometheus exporter-toolkit's format
    /// (the file node_exporter's `--web.config.file` reads).
    pub web_config_file: Option<String>,
    /// `/healthz` and `/readyz` answer without basic auth (Kubernetes probes).
    #[serde(default)]
    pub probes_without_auth: bool,
}

impl Default for RawHttp {
    fn default() -> Self {
        Self { listen: default_listen(), external_url: None, web_config_file: None, probes_without_auth: false }
    }
}

pub fn default_listen() -> String {
    "127.0.0.1:9464".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// `partition` (every partition's series: what small clusters want) or `stream` (per
    /// stream and consumer only: a few hundred series for a cluster of 10 000 partitions).
    #[serde(default = "default_granularity")]
    pub granularity: String,
}

fn default_granularity() -> String {
    "partition".into()
}

impl Default for RawMetrics {
    fn default() -> Self {
        Self { granularity: default_granularity() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShutdown {
    /// On SIGTERM, queued notifications (resolves included) are still delivered for up
    /// to this long: a receiver that is down while pipewatch restarts loses nothing.
    #[serde(default = "default_shutdown_grace")]
    pub grace: String,
}

fn default_shutdown_grace() -> String {
    "10s".into()
}

impl Default for RawShutdown {
    fn default() -> Self {
        Self { grace: default_shutdown_grace() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitor {
    /// How often snapshots are taken, log ends polled and metrics refreshed.
    #[serde(default = "default_tick")]
    pub tick: String,
    /// A partition with no record for this long no longer holds the stream watermark back.
    #[serde(default = "default_idle_partition_timeout")]
    pub idle_partition_timeout: String,
    /// The window of the record rate and of the median record delay.
    #[serde(default = "default_rate_window")]
    pub rate_window: String,
    /// Event times further ahead of arrival than this are invalid (`future_timestamp`).
    #[serde(default = "default_max_future_skew")]
    pub max_future_skew: String,
}

fn default_tick() -> String {
    "1s".into()
}
fn default_idle_partition_timeout() -> String {
    "5m".into()
}
fn default_rate_window() -> String {
    "1m".into()
}
fn default_max_future_skew() -> String {
    "5m".into()
}

impl Default for RawMonitor {
    fn default() -> Self {
        Self {
            tick: default_tick(),
            idle_partition_timeout: default_idle_partition_timeout(),
            rate_window: default_rate_window(),
            max_future_skew: default_max_future_skew(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStream {
    /// The stream's name in metrics, alerts and pairs.
    pub name: String,
    /// The topic it reads; or `topics`, several; or every topic `topic_pattern` matches.
    pub topic: Option<String>,
    pub topics: Option<Vec<String>>,
    pub topic_pattern: Option<String>,
    /// How record values are encoded: `json`, or `avro` or `protobuf` (through the
    /// schema registry).
    #[serde(default = "default_value_format")]
    pub value_format: String,
    /// Protobuf: the message the records are, where the schema holds several.
    pub message: Option<String>,
    /// Where records carry their event time.
    pub event_time: RawEventTime,
    /// A partition whose log end stops advancing for longer is silent: a gap opens.
    #[serde(default = "default_max_silence")]
    pub max_silence: String,
    /// A median record delay above this is `event_time_delayed`.
    #[serde(default = "default_max_record_delay")]
    pub max_record_delay: String,
    /// Below this many records per second the stream is `volume_low` (unset: no bound).
    pub min_rate: Option<f64>,
    /// Above this many records per second the stream is `volume_high` (unset: no bound).
    pub max_rate: Option<f64>,
    /// An expected rate per hour of the week learned from the topic's history
    /// (`volume_anomaly`); off unless set.
    pub baseline: Option<RawBaseline>,
    /// Low-cardinality fields counted per value (`segment_silent`).
    #[serde(default)]
    pub segments: Vec<RawSegment>,
    /// Distinct values kept per segment; later ones count as `other`.
    #[serde(default = "default_max_segment_values")]
    pub max_segment_values: usize,
    /// The field that marks a source connector's snapshot copies of existing rows
    /// (Debezium: `/payload/source/snapshot`): `source_snapshot`, not `event_time_delayed`.
    pub snapshot_field: Option<String>,
}

fn default_value_format() -> String {
    "json".into()
}

fn default_max_segment_values() -> usize {
    pipewatch_core::segment::DEFAULT_MAX_VALUES
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSegment {
    /// The `segment` label.
    pub name: String,
    /// JSON pointer to the field, e.g. `/channel`.
    pub field: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBaseline {
    /// How far back the history is read from the broker (at most the topic's retention).
    #[serde(default = "default_baseline_history")]
    pub history: String,
    /// The band's half-width in robust standard deviations (MAD × 1.4826).
    #[serde(default = "default_sensitivity")]
    pub sensitivity: f64,
    /// The band is at least this share of the expected rate either side (0–1).
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// The band is at least this many records/s either side (> 0): tiny absolute
    /// changes never alert.
    #[serde(default = "default_floor")]
    pub floor: f64,
}

fn default_baseline_history() -> String {
    "14d".into()
}
fn default_sensitivity() -> f64 {
    3.0
}
fn default_tolerance() -> f64 {
    0.2
}
fn default_floor() -> f64 {
    1.0
}

fn default_max_silence() -> String {
    "2m".into()
}
fn default_max_record_delay() -> String {
    "10m".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEventTime {
    /// JSON pointer to the field, e.g. `/created_at`.
    pub field: Option<String>,
    /// `rfc3339`, `epoch_seconds`, `epoch_millis` or `epoch_micros`.
    pub format: Option<String>,
    /// `kafka_timestamp`: use the Kafka message timestamp instead of a field.
    pub source: Option<String>,
    /// With `rfc3339`: the IANA time zone of strings written without an offset (local
    /// time, `2026-12-01 18:00:00`); without it such a string is `bad_timestamp`.
    pub timezone: Option<String>,
}

/// A threshold: a duration for lag and silence rules, a number for rate and ratio rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawThreshold {
    Text(String),
    Number(f64),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    /// The alert's name (`alertname`).
    pub name: String,
    /// `freshness_lag`, `sync_lag`, `silence`, `rate_low`, `rate_high`, `invalid_ratio`,
    /// `consumer_lag` or `consumer_sync_lag`.
    pub kind: String,
    /// A stream name; a pair name for `sync_lag`; a consumer name for the consumer kinds.
    pub target: String,
    /// For `consumer_sync_lag`: the pair (both of whose streams the consumer reads).
    pub pair: Option<String>,
    /// A duration (`"15m"`) for lag and silence, records/s for rates, a fraction (0–1)
    /// for `invalid_ratio`, band half-widths for `volume_anomaly` (default 1: the band's
    /// edge).
    pub threshold: Option<RawThreshold>,
    /// Once firing, the alert resolves only past this (hysteresis); default: threshold.
    pub clear: Option<RawThreshold>,
    /// How long the condition must hold before the alert fires.
    #[serde(default = "default_for", rename = "for")]
    pub for_: String,
    /// The `severity` label (by default `warning`; `page` for `connector_failed`, `info`
    /// for `connector_paused`).
    pub severity: Option<String>,
    /// Extra labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The business consequence, for the person paged.
    pub impact: String,
    /// `join_completeness`: records judged over the join's window a segment value needs
    /// before its ratio may fire the rule.
    pub min_judged: Option<u64>,
}

fn default_for() -> String {
    "0s".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPair {
    pub name: String,
    /// The stream the follower must keep up with (e.g. orders).
    pub leader: String,
    /// The stream that must keep up (e.g. behaviour).
    pub follower: String,
    /// Join completeness: the leader's records whose key the follower carried around
    /// their event time.
    pub join: Option<RawJoin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJoin {
    /// JSON pointer to the key in the leader's records, e.g. `/user_id`.
    pub leader_key: String,
    /// JSON pointer to the key in the follower's records.
    pub follower_key: String,
    /// A follower record this long before the leader's event time matches it.
    #[serde(default = "default_join_before")]
    pub before: String,
    /// A follower record this long after it matches it too.
    #[serde(default = "default_join_after")]
    pub after: String,
    /// How far past `t + after` the follower's watermark must be before a record is judged.
    #[serde(default = "default_join_grace")]
    pub grace: String,
    /// The leader's segments that label the outcomes.
    #[serde(default)]
    pub segments: Vec<String>,
    /// Judge one key in this many (the same keys on both sides and on every replica).
    #[serde(default = "default_join_sample")]
    pub sample: u64,
    /// Follower keys kept at most (beyond, the oldest slices go: their records unjudged).
    #[serde(default = "default_join_max_keys")]
    pub max_keys: usize,
    /// Leader records waiting for judgment at most (beyond, unjudged).
    #[serde(default = "default_join_max_pending")]
    pub max_pending: usize,
    /// The completeness ratio is over the records judged within this.
    #[serde(default = "default_join_window")]
    pub window: String,
    /// Which follower partitions a replica reads for the join: `all` (its own consumer
    /// reads every one) or `co_partitioned` (the group's share, with the range assignor).
    #[serde(default = "default_join_partitions")]
    pub partitions: String,
    /// The pair is `join_incomplete` while a segment value (or all the leader's records)
    /// judged at least `min_judged` times over the window has a completeness under this.
    #[serde(default = "default_join_incomplete_below")]
    pub incomplete_below: f64,
    #[serde(default = "default_join_min_judged")]
    pub min_judged: u64,
}

fn default_join_incomplete_below() -> f64 {
    pipewatch_core::join::DEFAULT_INCOMPLETE_BELOW
}

fn default_join_min_judged() -> u64 {
    pipewatch_core::join::DEFAULT_MIN_JUDGED
}

fn default_join_partitions() -> String {
    "all".into()
}

fn default_join_before() -> String {
    "30m".into()
}

fn default_join_after() -> String {
    "5m".into()
}

fn default_join_grace() -> String {
    "1m".into()
}

fn default_join_sample() -> u64 {
    1
}

fn default_join_max_keys() -> usize {
    pipewatch_core::join::DEFAULT_MAX_KEYS
}

fn default_join_max_pending() -> usize {
    pipewatch_core::join::DEFAULT_MAX_PENDING
}

fn default_join_window() -> String {
    "15m".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsumer {
    /// The `consumer` label (e.g. `analytics`).
    pub name: String,
    /// Its Kafka group id: pipewatch reads the group's committed offsets, never joins it.
    pub group: String,
    /// The configured streams it reads.
    pub streams: Vec<String>,
    /// Lag seconds above this: `consumer_lagging`.
    #[serde(default = "default_max_lag")]
    pub max_lag: String,
    /// Committed offsets still for longer while records wait: `consumer_stopped`.
    #[serde(default = "default_max_stall")]
    pub max_stall: String,
}

fn default_max_lag() -> String {
    format!("{}m", pipewatch_core::spec::DEFAULT_MAX_LAG_MS / 60_000)
}
fn default_max_stall() -> String {
    format!("{}m", pipewatch_core::spec::DEFAULT_MAX_STALL_MS / 60_000)
}
