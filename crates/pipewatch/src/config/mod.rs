//! The config file (TOML): raw serde structs that reject unknown keys ([`raw`]), then
//! [`RawConfig::validate`], which reports every problem at once with its key path
//! ([`problems`]) and returns the validated [`Config`]. One validating function per
//! section: `[kafka]`, `[http]`, `[metrics]`, `[monitor]` ([`settings`], the listener's
//! TLS and basic auth in [`web`]), `[[stream]]` and `[[pair]]` ([`streams`]),
//! `[[consumer]]` ([`consumers`]), `[[alert]]` ([`alerts`]), `[[receiver]]`
//! ([`receivers`]), `[schema_registry]` ([`registry`]), `[[connect]]` ([`connect`]).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use pipewatch_alert::ReceiverConfig;
use pipewatch_core::alert::AlertRule;
use pipewatch_core::spec::ConsumerSpec;
use pipewatch_core::{MonitorSettings, PairSpec, StreamSpec};
use pipewatch_kafka::SourceConfig;

use crate::registry::RegistryConfig;

pub mod alerts;
pub mod connect;
pub mod consumers;
pub mod discovery;
pub mod problems;
pub mod raw;
pub mod receivers;
pub mod registry;
pub mod settings;
pub mod streams;
pub mod web;

pub use problems::ConfigError;
use problems::{key_at, Problems};
pub use raw::{default_listen, RawConfig};
pub use settings::Granularity;

/// The validated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: SourceConfig,
    pub listen: SocketAddr,
    /// Base URL of the HTTP interface as people reach it.
    pub external_url: String,
    pub granularity: Granularity,
    /// TLS and basic auth of the listener (`http.web_config_file`).
    pub web: Option<web::WebConfig>,
    /// `/healthz` and `/readyz` without basic auth.
    pub probes_without_auth: bool,
    /// How long queued notifications are still delivered at shutdown.
    pub shutdown_grace: Duration,
    pub alerts: Vec<AlertRule>,
    pub receivers: Vec<ReceiverConfig>,
    pub settings: MonitorSettings,
    pub streams: Vec<StreamSpec>,
    /// The streams chosen by `topic_pattern`: `(stream, pattern)`.
    pub topic_patterns: Vec<(usize, regex::Regex)>,
    /// How often the cluster's topics are listed for them (`kafka.metadata_refresh`).
    pub metadata_refresh: Duration,
    pub pairs: Vec<PairSpec>,
    pub consumers: Vec<ConsumerSpec>,
    /// Where the Avro streams' writer schemas are fetched.
    pub schema_registry: Option<RegistryConfig>,
    /// The Kafka Connect clusters (`[[connect]]`).
    pub connect: Vec<crate::connect::ConnectConfig>,
    /// `[discovery]` of consumer groups.
    pub discovery: Option<discovery::DiscoveryConfig>,
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, anyhow::Error> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("failed to read {}: {e}", path.display()))?;
    Ok(parse(&text)?)
}

/// Parses and validates config text.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let key = e.span().map(|s| key_at(text, s.start)).unwrap_or_else(|| "config".into());
        ConfigError { problems: vec![(key, e.message().to_string())] }
    })?;
    raw.validate()
}

impl RawConfig {
    pub fn validate(self) -> Result<Config, ConfigError> {
        let mut p = Problems::default();
        let k = &self.kafka;
        let start = settings::kafka_start(k, &mut p);
        let listen = settings::listen(&self.http, &mut p);
        let granularity = settings::granularity(&self.metrics, &mut p);
        let shutdown_grace = p.duration("shutdown.grace", &self.shutdown.grace);
        let web = settings::web_config(&self.http, &mut p);
        let monitor = settings::monitor(&self.monitor, &mut p);
        let mut names = HashSet::new();
        let (streams, topic_patterns) = streams::stream_specs(&self, monitor.max_future_skew, &mut names, &mut p);
        let metadata_refresh = p.positive_duration("kafka.metadata_refresh", &k.metadata_refresh);
        let pairs = streams::pair_specs(&self, &mut names, &mut p);
        let consumers = consumers::consumer_specs(&self, &mut p);
        let alerts =
            self.alerts.iter().enumerate().filter_map(|(i, a)| alerts::alert_rule(i, a, &self, &mut p)).collect();
        let external_url = settings::external_url(&self.http, listen, web.as_ref(), &mut p);
        let receivers = receivers::receiver_configs(&self, &mut p);
        let schema_registry = registry::registry_config(&self, &mut p);
        let connect = connect::connect_configs(&self, &mut p);
        let discovery = discovery::discovery_config(&self, monitor.max_future_skew, &mut p);

        let config = Config {
            external_url,
            granularity,
            web,
            probes_without_auth: self.http.probes_without_auth,
            shutdown_grace,
            alerts,
            receivers,
            source: SourceConfig {
                bootstrap_servers: k.bootstrap_servers.clone(),
                group_id: k.group_id.clone(),
                start,
                properties: k.properties.iter().map(|(a, b)| (a.clone(), b.clone())).collect(),
                tick: monitor.tick,
                range_assignment: pairs
                    .iter()
                    .filter_map(|pr| pr.join.as_ref())
                    .any(|j| j.partitions == pipewatch_core::JoinPartitions::CoPartitioned),
            },
            listen,
            settings: monitor.settings,
            streams,
            topic_patterns,
            metadata_refresh,
            pairs,
            consumers,
            schema_registry,
            connect,
            discovery,
        };
        if p.0.is_empty() {
            if let Err(e) = pipewatch_kafka::validate_properties(&config.source) {
                p.add("kafka.properties", format!("librdkafka rejects them: {e}"));
            }
        }
        if p.0.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems: p.0 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipewatch_alert::{ReceiverKind, Secret};
    use pipewatch_core::alert::{AlertKind, AlertTarget};
    use pipewatch_core::JoinPartitions;
    use pipewatch_kafka::Start;

    const EXAMPLE: &str = include_str!("../../../../pipewatch.example.toml");

    #[test]
    fn the_example_config_is_valid() {
        let c = parse(EXAMPLE).unwrap();
        assert_eq!(c.streams.len(), 2);
        assert_eq!(c.pairs.len(), 1);
        assert_eq!(c.listen.to_string(), "127.0.0.1:9464");
        assert_eq!(c.source.start, Start::Lookback(Duration::from_secs(900)));
        assert_eq!(c.alerts.len(), 4);
        assert_eq!(c.alerts[2].kind, AlertKind::ConnectorFailed);
        assert_eq!(c.alerts[2].severity, "page", "the kind's default");
        assert_eq!(c.alerts[3].kind, AlertKind::SegmentSilence);
        assert_eq!((c.connect.len(), c.connect[0].poll), (1, Duration::from_secs(10)));
        assert_eq!(c.streams[1].segments.len(), 1);
        assert_eq!(c.alerts[0].threshold, 900.0);
        assert_eq!(c.alerts[0].clear, 600.0);
        assert_eq!(c.external_url, "http://127.0.0.1:9464");
        assert_eq!(c.receivers.len(), 1);
        assert_eq!(c.receivers[0].kind, ReceiverKind::Alertmanager);
        assert_eq!(c.receivers[0].resend_interval, Duration::from_secs(60));
    }

    #[test]
    fn every_problem_is_listed_with_its_key() {
        let text = r#"
[kafka]
bootstrap_servers = "localhost:9092"
start = "beginning"
[metrics]
granularity = "topic"
[shutdown]
grace = "soon"
[monitor]
tick = "1 second"
[[stream]]
name = "orders"
topic = "orders"
event_time = { field = "created_at", format = "rfc3339" }
max_silence = "2x"
[[stream]]
name = "orders"
topic = "user-behaviour"
event_time = { field = "/ts", format = "epoch_ms" }
[[pair]]
name = "orders_behaviour"
leader = "orders"
follower = "behavior"
"#;
        let err = parse(text).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "kafka.start",
                "metrics.granularity",
                "shutdown.grace",
                "monitor.tick",
                "stream[0].event_time.field",
                "stream[0].max_silence",
                "stream[1].name",
                "stream[1].event_time.format",
                "pair[0].follower",
            ],
            "{err}"
        );
        let shown = err.to_string();
        assert!(shown.starts_with("config is invalid (9 problems)"), "{shown}");
        assert!(shown.contains("metrics.granularity: \"topic\" is not one of partition, stream"), "{shown}");
        assert!(
            shown.contains("\"epoch_ms\" is not one of rfc3339, epoch_seconds, epoch_millis, epoch_micros"),
            "{shown}"
        );
        assert!(shown.contains("no stream named \"behavior\" (known: orders, orders)"), "{shown}");
    }

    #[test]
    fn baselines_and_segments_are_validated_with_their_keys() {
        let text = r#"
[kafka]
bootstrap_servers = "localhost:9092"
[[stream]]
name = "orders"
topic = "orders"
event_time = { field = "/ts", format = "epoch_millis" }
baseline = { history = "2h", sensitivity = 0.0, tolerance = 1.5, floor = 0.0 }
segments = [{ name = "channel", field = "channel" }, { name = "channel", field = "/c" }, { name = "a b", field = "/x" }]
max_segment_values = 0
[[stream]]
name = "behaviour"
topic = "behaviour"
event_time = { field = "/ts", format = "epoch_millis" }
baseline = { history = "365d" }
[[alert]]
name = "OrdersOffUsual"
kind = "volume_anomaly"
target = "orders"
threshold = -1.0
impact = "x"
[[alert]]
name = "BehaviourOffUsual"
kind = "volume_anomaly"
target = "behaviour"
impact = "x"
[[alert]]
name = "NoBaseline"
kind = "volume_anomaly"
target = "behaviour2"
impact = "x"
[[alert]]
name = "PathStopped"
kind = "segment_silence"
target = "orders"
impact = "x"
"#;
        let err = parse(text).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "stream[0].baseline.history",
                "stream[0].baseline.sensitivity",
                "stream[0].baseline.tolerance",
                "stream[0].baseline.floor",
                "stream[0].segments[0].field",
                "stream[0].segments[1].name",
                "stream[0].segments[2].name",
                "stream[0].max_segment_values",
                "stream[1].baseline.history",
                "alert[0].threshold",
                "alert[2].target",
                "alert[3].threshold",
            ],
            "{err}"
        );
        let shown = err.to_string();
        assert!(shown.contains("at least 1d"), "{shown}");
        assert!(shown.contains("duplicate segment name \"channel\""), "{shown}");
        assert!(shown.contains("segment_silence needs a threshold"), "{shown}");
        // a volume_anomaly needs the stream's baseline; its threshold defaults to the band's edge
        let without = text.replace("baseline = { history = \"365d\" }\n", "");
        let err = parse(&without).unwrap_err();
        assert!(err.to_string().contains("volume_anomaly needs a baseline on stream \"behaviour\""), "{err}");
        let good = parse(
            "[kafka]\nbootstrap_servers = \"k:9092\"\n[[stream]]\nname = \"o\"\ntopic = \"o\"\n\
             event_time = { field = \"/ts\", format = \"epoch_millis\" }\nbaseline = {}\n\
             [[alert]]\nname = \"A\"\nkind = \"volume_anomaly\"\ntarget = \"o\"\nimpact = \"x\"\n",
        )
        .unwrap();
        let spec = good.streams[0].baseline.unwrap();
        assert_eq!((spec.history_ms, spec.sensitivity, spec.tolerance, spec.floor), (14 * 86_400_000, 3.0, 0.2, 1.0));
        assert_eq!((good.alerts[0].threshold, good.alerts[0].clear), (1.0, 1.0));
    }

    #[test]
    fn a_join_completeness_rule_needs_a_joined_pair_and_a_fraction_and_only_it_takes_min_judged() {
        let text = r#"
[kafka]
bootstrap_servers = "localhost:9092"
[[stream]]
name = "orders"
topic = "orders"
event_time = { field = "/created_at", format = "rfc3339" }
[[stream]]
name = "behaviour"
topic = "behaviour"
event_time = { field = "/ts", format = "epoch_millis" }
[[pair]]
name = "orders_behaviour"
leader = "orders"
follower = "behaviour"
[[alert]]
name = "A"
kind = "join_completeness"
target = "orders_behaviour"
threshold = 1.5
impact = "x"
[[alert]]
name = "B"
kind = "freshness_lag"
target = "orders"
threshold = "5m"
min_judged = 10
impact = "x"
"#;
        let err = parse(text).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["alert[0].target", "alert[0].threshold", "alert[1].min_judged"], "{err}");
        let shown = err.to_string();
        assert!(shown.contains("join_completeness needs a pair with a join; \"orders_behaviour\" has none"), "{shown}");
        assert!(shown.contains("1.5 is not a fraction between 0 and 1"), "{shown}");
        let joined = text
            .replace(
                "follower = \"behaviour\"\n",
                "follower = \"behaviour\"\njoin = { leader_key = \"/u\", follower_key = \"/u\" }\n",
            )
            .replace("threshold = 1.5", "threshold = 0.5")
            .replace("min_judged = 10\n", "");
        let c = parse(&joined).unwrap();
        assert_eq!((c.alerts[0].threshold, c.alerts[0].min_judged, c.alerts[1].min_judged), (0.5, 20, 0));
    }

    #[test]
    fn a_join_is_validated_with_its_keys_and_read_into_the_pair() {
        let base = r#"
[kafka]
bootstrap_servers = "localhost:9092"
[[stream]]
name = "orders"
topic = "orders"
event_time = { field = "/created_at", format = "rfc3339" }
segments = [{ name = "referral", field = "/referral" }]
[[stream]]
name = "behaviour"
topic = "behaviour"
value_format = "avro"
event_time = { field = "/ts", format = "epoch_millis" }
[[pair]]
name = "orders_behaviour"
leader = "orders"
follower = "behaviour"
"#;
        let bad = format!(
            "{base}join = {{ leader_key = \"user_id\", follower_key = \"/user_id\", before = \"soon\", segments = [\"channel\"], sample = 0, partitions = \"some\" }}\n"
        );
        let err = parse(&bad).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "stream[1].value_format",
                "pair[0].join.leader_key",
                "pair[0].join.before",
                "pair[0].join.segments[0]",
                "pair[0].join.sample",
                "pair[0].join.partitions",
            ],
            "{err}"
        );
        assert!(err.to_string().contains("\"some\" is not one of all, co_partitioned"), "{err}");
        let shown = err.to_string();
        assert!(
            shown.contains("\"channel\" is not a segment of the leader \"orders\" (its segments: referral)"),
            "{shown}"
        );
        // an Avro follower, read by the joins' own consumer (decoded where the schemas are)
        let registry = "[schema_registry]\nurl = \"http://registry:8081\"\n[[stream]]\nname = \"orders\"";
        let avro = format!(
            "{}join = {{ leader_key = \"/user_id\", follower_key = \"/user\" }}\n",
            base.replace("[[stream]]\nname = \"orders\"", registry)
        );
        let c = parse(&avro).unwrap();
        assert_eq!(c.pairs[0].join.as_ref().unwrap().partitions, JoinPartitions::All);
        let good = format!(
            "{}join = {{ leader_key = \"/user_id\", follower_key = \"/user\", segments = [\"referral\"], sample = 10 }}\n",
            base.replace("value_format = \"avro\"\n", "")
        );
        let c = parse(&good).unwrap();
        let j = c.pairs[0].join.as_ref().unwrap();
        assert_eq!(
            (j.before_ms, j.after_ms, j.grace_ms, j.window_ms, j.sample),
            (1_800_000, 300_000, 60_000, 900_000, 10)
        );
        assert_eq!(j.segments, vec![(0, "referral".to_string())]);
        assert_eq!(j.partitions, JoinPartitions::All, "the default: every follower partition");
        assert!(!c.source.range_assignment, "the group assigns cooperative-sticky");
        let co = parse(&good.replace("sample = 10", "partitions = \"co_partitioned\"")).unwrap();
        assert_eq!(co.pairs[0].join.as_ref().unwrap().partitions, JoinPartitions::CoPartitioned);
        assert!(co.source.range_assignment, "the range assignor keeps partition i of both together");
        // `all` names the follower's topics: a pattern's are not known up front
        let pattern = good.replace("topic = \"behaviour\"", "topic_pattern = \"behaviour-.*\"");
        let err = parse(&pattern).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert_eq!(err.problems[0].0, "pair[0].join.partitions", "{err}");
        assert!(err.problems[0].1.contains("chooses them by topic_pattern"), "{err}");
    }

    #[test]
    fn alert_rules_are_validated_with_their_keys() {
        let head = EXAMPLE.split("[[alert]]").next().unwrap();
        let text = format!(
            r#"{head}
[[alert]]
name = "BehaviourBehindOrders"
kind = "sync_lag"
target = "orders"
threshold = "15m"
clear = "20m"
impact = "stale segmentation"
[[alert]]
name = "OrdersInvalid"
kind = "invalid_ratio"
target = "orders_behaviour"
threshold = 5
impact = ""
labels = {{ "team-name" = "x", cause = "y" }}
[[alert]]
name = "OrdersSlow"
kind = "rate_lowish"
target = "orders"
threshold = 1
impact = "x"
"#
        );
        let err = parse(&text).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "alert[0].target",
                "alert[0].clear",
                "alert[1].target",
                "alert[1].threshold",
                "alert[1].impact",
                "alert[1].labels.cause",
                "alert[1].labels.team-name",
                "alert[2].kind",
            ],
            "{err}"
        );
        assert!(err.to_string().contains("(a pair: only sync_lag and join_completeness target pairs)"), "{err}");
    }

    #[test]
    fn receiver_secrets_and_cas_come_from_files_and_every_problem_is_keyed() {
        let dir = std::env::temp_dir().join(format!("pipewatch-receiver-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "t0ken\n").unwrap();
        std::fs::write(dir.join("empty"), "\n").unwrap();
        std::fs::write(dir.join("ca.pem"), "not a certificate").unwrap();
        let d = dir.display();
        let text = format!(
            r#"
[kafka]
bootstrap_servers = "localhost:9092"
[[stream]]
name = "orders"
topic = "orders"
event_time = {{ field = "/ts", format = "epoch_millis" }}
[[receiver]]
name = "ok"
kind = "webhook"
url = "https://hooks.example.com/"
bearer_token_file = "{d}/token"
[[receiver]]
name = "both"
kind = "webhook"
url = "https://hooks.example.com/"
bearer_token_file = "{d}/token"
basic_auth = {{ username = "pw", password_file = "{d}/token" }}
[[receiver]]
name = "files"
kind = "alertmanager"
url = "https://am.example.com"
ca_file = "{d}/ca.pem"
basic_auth = {{ username = "", password_file = "{d}/empty" }}
[[receiver]]
name = "missing"
kind = "alertmanager"
url = "https://am.example.com"
ca_file = "{d}/nothing.pem"
bearer_token_file = "{d}/nothing"
"#
        );
        let err = parse(&text).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "receiver[1].basic_auth",
                "receiver[2].ca_file",
                "receiver[2].basic_auth.username",
                "receiver[2].basic_auth.password_file",
                "receiver[3].ca_file",
                "receiver[3].bearer_token_file",
            ],
            "{err}"
        );
        assert!(!err.to_string().contains("t0ken"), "{err}");
        let ok = parse(text.split("[[receiver]]\nname = \"both\"").next().unwrap()).unwrap();
        assert_eq!(
            ok.receivers[0].access.authorization,
            Some(Secret::bearer("t0ken")),
            "the newline is not part of it"
        );
        assert!(!format!("{ok:?}").contains("t0ken"), "Debug shows no secret");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_avro_stream_needs_the_registry_and_the_registrys_keys_are_checked() {
        let streams = r#"
[kafka]
bootstrap_servers = "localhost:9092"
[[stream]]
name = "orders"
topic = "orders"
value_format = "avro"
event_time = { field = "/after/created_at", format = "epoch_micros" }
[[stream]]
name = "behaviour"
topic = "behaviour"
value_format = "protobuff"
message = "shop.Event"
event_time = { field = "/ts", format = "epoch_millis" }
"#;
        let err = parse(streams).unwrap_err();
        assert_eq!(
            err.problems,
            [
                (
                    "stream[0].value_format".to_string(),
                    "\"avro\" needs a [schema_registry] (its url) to fetch the writer schemas from".to_string()
                ),
                ("stream[1].value_format".to_string(), "\"protobuff\" is not one of json, avro, protobuf".to_string()),
                (
                    "stream[1].message".to_string(),
                    "only for value_format = \"protobuf\" (the message of the .proto the records are)".to_string()
                ),
            ]
        );
        let dir = std::env::temp_dir().join(format!("pipewatch-registry-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("secret"), "s3cret\n").unwrap();
        let d = dir.display();
        let one = streams.split("[[stream]]\nname = \"behaviour\"").next().unwrap();
        let bad = format!(
            "{one}[schema_registry]\nurl = \"registry:8081\"\ntimeout = \"0s\"\nca_file = \"{d}/none.pem\"\n\
             basic_auth = {{ username = \"key\", password_file = \"{d}/nothing\" }}\n"
        );
        let keys: Vec<String> = parse(&bad).unwrap_err().problems.into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "schema_registry.url",
                "schema_registry.timeout",
                "schema_registry.ca_file",
                "schema_registry.basic_auth.password_file"
            ]
        );
        let good = format!(
            "{one}[schema_registry]\nurl = \"http://127.0.0.1:8080/apis/ccompat/v7/\"\n\
             basic_auth = {{ username = \"key\", password_file = \"{d}/secret\" }}\n"
        );
        let c = parse(&good).unwrap();
        let r = c.schema_registry.as_ref().unwrap();
        assert_eq!((r.url.as_str(), r.timeout), ("http://127.0.0.1:8080/apis/ccompat/v7", Duration::from_secs(5)));
        assert_eq!(r.access.authorization, Some(Secret::basic("key", "s3cret")));
        assert_eq!(c.streams[0].value_format, pipewatch_core::ValueFormat::Avro);
        assert!(!format!("{c:?}").contains("s3cret"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn consumers_are_validated_with_their_keys() {
        let text = format!(
            "{EXAMPLE}{}",
            r#"
[[consumer]]
name = "analytics"
group = "analytics-job"
streams = ["orders", "behaviour"]
max_lag = "30m"
[[consumer]]
name = "analytics"
group = "pipewatch"
streams = ["ordres", "orders", "orders"]
max_stall = "soon"
[[consumer]]
name = "reporting"
group = ""
streams = []
"#
        );
        let err = parse(&text).unwrap_err().to_string();
        for want in [
            "consumer[1].name: duplicate consumer name \"analytics\"",
            "consumer[1].group: \"pipewatch\" is pipewatch's own group (kafka.group_id)",
            "consumer[1].streams[0]: no stream named \"ordres\" (known: orders, behaviour)",
            "consumer[1].streams[2]: \"orders\" is listed twice",
            "consumer[1].max_stall: \"soon\" is not a duration",
            "consumer[2].group: must not be empty",
            "consumer[2].streams: must name at least one stream",
        ] {
            assert!(err.contains(want), "missing {want:?} in\n{err}");
        }
        let good = format!(
            "{EXAMPLE}{}",
            "[[consumer]]\nname = \"analytics\"\ngroup = \"analytics-job\"\nstreams = [\"behaviour\"]\n"
        );
        let c = parse(&good).unwrap();
        assert_eq!(c.consumers[0].streams, vec![1]);
        assert_eq!((c.consumers[0].max_lag_ms, c.consumers[0].max_stall_ms), (900_000, 300_000), "defaults 15m, 5m");
    }

    #[test]
    fn consumer_alerts_name_a_consumer_and_for_the_sync_lag_a_pair_it_reads() {
        let text = format!(
            "{EXAMPLE}{}",
            r#"
[[consumer]]
name = "analytics"
group = "analytics-job"
streams = ["behaviour"]
[[alert]]
name = "A"
kind = "consumer_lag"
target = "analytcs"
threshold = "15m"
impact = "stale"
[[alert]]
name = "B"
kind = "consumer_sync_lag"
target = "analytics"
pair = "orders_behaviour"
threshold = "15m"
impact = "stale"
[[alert]]
name = "C"
kind = "consumer_sync_lag"
target = "analytics"
threshold = "15m"
impact = "stale"
[[alert]]
name = "D"
kind = "freshness_lag"
target = "orders"
pair = "orders_behaviour"
threshold = "15m"
impact = "stale"
"#
        );
        let err = parse(&text).unwrap_err().to_string();
        // the example's own alerts come first
        let first = EXAMPLE.matches("\n[[alert]]").count();
        for (i, want) in [
            "target: consumer_lag needs a consumer or \"discovered\"; no consumer named \"analytcs\" (known: analytics)",
            "pair: consumer \"analytics\" does not read both \"orders\" and \"behaviour\"",
            "pair: consumer_sync_lag needs the pair whose sync lag the consumer sees",
            "pair: only consumer_sync_lag takes a pair",
        ]
        .into_iter()
        .enumerate()
        {
            let want = format!("alert[{}].{want}", first + i);
            assert!(err.contains(&want), "missing {want:?} in\n{err}");
        }
    }

    #[test]
    fn discovered_is_a_target_of_the_lag_and_stopped_kinds_once_there_is_discovery() {
        let rules = r#"
[[consumer]]
name = "discovered"
group = "analytics-job"
streams = ["behaviour"]
[[alert]]
name = "A"
kind = "consumer_stopped"
target = "discovered"
impact = "stale"
[[alert]]
name = "B"
kind = "consumer_sync_lag"
target = "discovered"
pair = "orders_behaviour"
threshold = "15m"
impact = "stale"
[[alert]]
name = "C"
kind = "consumer_stopped"
target = "discovered"
threshold = "5m"
impact = "stale"
"#;
        // the example's Connect cluster would find sink consumers: without it nothing is discovered
        let example = EXAMPLE.replace("[[connect]]\nname = \"cdc\"\nurl = \"http://localhost:8083\"\n", "");
        assert_ne!(example, EXAMPLE);
        let err = parse(&format!("{example}{rules}")).unwrap_err().to_string();
        let first = EXAMPLE.matches("\n[[alert]]").count();
        for want in [
            "consumer[0].name: \"discovered\" is the alert target of every discovered consumer: name the job"
                .to_string(),
            format!("alert[{first}].target: \"discovered\" needs consumers to discover: a [discovery]"),
            format!("alert[{}].target: consumer_sync_lag cannot target \"discovered\": name a consumer", first + 1),
            format!("alert[{}].threshold: consumer_stopped takes no threshold", first + 2),
        ] {
            assert!(err.contains(&want), "missing {want:?} in\n{err}");
        }
        let good = format!(
            "{EXAMPLE}{}",
            r#"
[discovery]
groups = { include = ["^analytics-"] }
[[alert]]
name = "A"
kind = "consumer_stopped"
target = "discovered"
impact = "stale"
[[alert]]
name = "B"
kind = "consumer_lag"
target = "discovered"
threshold = "15m"
impact = "stale"
"#
        );
        let c = parse(&good).unwrap();
        let n = c.alerts.len();
        assert_eq!(c.alerts[n - 2].target, AlertTarget::Discovered);
        assert_eq!((c.alerts[n - 2].kind, c.alerts[n - 2].severity.as_str()), (AlertKind::ConsumerStopped, "page"));
        assert_eq!((c.alerts[n - 1].kind, c.alerts[n - 1].threshold), (AlertKind::ConsumerLag, 900.0));
    }

    #[test]
    fn labels_pipewatch_sets_on_a_consumer_alert_are_refused_with_their_key() {
        let text = format!(
            "{EXAMPLE}{}",
            r#"
[[consumer]]
name = "analytics"
group = "analytics-job"
streams = ["behaviour"]
[[alert]]
name = "A"
kind = "consumer_lag"
target = "analytics"
threshold = "15m"
impact = "stale"
labels = { group = "data", consumer = "x", team = "data" }
"#
        );
        let err = parse(&text).unwrap_err().to_string();
        let first = EXAMPLE.matches("\n[[alert]]").count();
        for label in ["group", "consumer"] {
            let want = format!("alert[{first}].labels.{label}: is set by pipewatch");
            assert!(err.contains(&want), "missing {want:?} in\n{err}");
        }
        assert!(!err.contains("labels.team"), "{err}");
    }

    #[test]
    fn a_time_zone_goes_with_rfc3339_strings_and_is_an_iana_name() {
        let stream = |event_time: &str| {
            format!(
                "[kafka]\nbootstrap_servers = \"x:1\"\n[[stream]]\nname = \"orders\"\ntopic = \"orders\"\nevent_time = {event_time}\n"
            )
        };
        let ok =
            parse(&stream(r#"{ field = "/created_at", format = "rfc3339", timezone = "Asia/Shanghai" }"#)).unwrap();
        let local = br#"{"created_at":"2026-12-01 18:00:00"}"#;
        let at = ok.streams[0].extractor.extract(Some(local), None, 1_800_000_000_000);
        assert_eq!(at, Ok(pipewatch_core::time::parse_rfc3339(b"2026-12-01T10:00:00Z").unwrap()));
        for (event_time, want) in [
            (
                r#"{ field = "/t", format = "rfc3339", timezone = "Asia/Shangai" }"#,
                "stream[0].event_time.timezone: \"Asia/Shangai\" is not an IANA time zone",
            ),
            (
                r#"{ field = "/t", format = "epoch_millis", timezone = "Asia/Shanghai" }"#,
                "stream[0].event_time.timezone: goes with format = \"rfc3339\": epoch values are UTC already",
            ),
            (
                r#"{ source = "kafka_timestamp", timezone = "UTC" }"#,
                "stream[0].event_time.timezone: goes with field and format = \"rfc3339\"",
            ),
        ] {
            let err = parse(&stream(event_time)).unwrap_err().to_string();
            assert!(err.contains(want), "missing {want:?} in\n{err}");
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = parse("[kafka]\nbootstrap_servers = \"x:1\"\nbootstrap = \"y\"\n").unwrap_err();
        assert!(err.to_string().contains("kafka.bootstrap (line 3): unknown field `bootstrap`"), "{err}");
        let stream = "[[stream]]\nname = \"a\"\ntopic = \"a\"\nevent_time = { source = \"kafka_timestamp\" }\n";
        let err = parse(&format!("[kafka]\nbootstrap_servers = \"x:1\"\n{stream}[[stream]]\nname = 5\n")).unwrap_err();
        assert!(err.to_string().contains("stream[1].name (line 8): invalid type: integer `5`"), "{err}");
        let err =
            parse(&format!("[kafka]\nbootstrap_servers = \"x:1\"\n{stream}[[stream]]\nname = \"b\"\n")).unwrap_err();
        assert!(err.to_string().contains("stream[1] (line 7): missing field `event_time`"), "{err}");
        // what it reads: exactly one of topic, topics and topic_pattern
        let base = "[kafka]\nbootstrap_servers = \"x:1\"\n[[stream]]\nname = \"a\"\nevent_time = { source = \"kafka_timestamp\" }\n";
        for (reads, problem) in [
            ("", "stream[0].topic: say what the stream reads"),
            (
                "topic = \"a\"\ntopics = [\"b\"]\n",
                "stream[0].topic: one of topic, topics and topic_pattern, not several",
            ),
            ("topics = []\n", "stream[0].topics: name at least one topic"),
            ("topic_pattern = \"^orders-(\"\n", "stream[0].topic_pattern: not a regular expression"),
            ("topics = [\"a\", \"a\"]\n", "stream[0].topics[1]: topic \"a\" is already watched by another stream"),
        ] {
            let err = parse(&format!("{base}{reads}")).unwrap_err().to_string();
            assert!(err.contains(problem), "{reads}: {err}");
        }
        let c = parse(&format!("{base}topic_pattern = \"^orders-[a-z]+$\"\n")).unwrap();
        assert_eq!((c.streams[0].topic_pattern.as_deref(), c.topic_patterns.len()), (Some("^orders-[a-z]+$"), 1));
        assert_eq!(c.metadata_refresh, Duration::from_secs(30));
        // [discovery] topics alone: no [[stream]] needed, the internal topics left out
        let c = parse("[kafka]\nbootstrap_servers = \"x:1\"\n[discovery]\ntopics = {}\n").unwrap();
        let (names, spec) = c.discovery.unwrap().topics.unwrap();
        assert!(names.matches("orders") && !names.matches("_schemas") && !names.matches("connect-offsets"));
        assert_eq!((spec.max_topics, spec.template.max_silence_ms), (1000, 120_000));
        let err = parse("[kafka]\nbootstrap_servers = \"x:1\"\n").unwrap_err().to_string();
        assert!(err.contains("stream: no [[stream]] configured (nor [discovery] topics)"), "{err}");
    }

    #[test]
    fn kafka_timestamp_source_and_bad_properties() {
        let text = r#"
[kafka]
bootstrap_servers = "localhost:9092"
[kafka.properties]
"no.such.property" = "1"
[[stream]]
name = "clicks"
topic = "clicks"
event_time = { source = "kafka_timestamp" }
"#;
        let err = parse(text).unwrap_err();
        assert_eq!(err.problems[0].0, "kafka.properties");
        assert!(err.problems[0].1.contains("no.such.property"), "{err}");
    }

    mod never_panics {
        use proptest::prelude::*;

        const EXAMPLE: &str = include_str!("../../../../pipewatch.example.toml");

        /// Loading never panics: a config is valid, or every problem has a key.
        fn loads(text: &str) -> Result<(), TestCaseError> {
            if let Err(e) = super::parse(text) {
                prop_assert!(!e.problems.is_empty());
                prop_assert!(e.problems.iter().all(|(k, m)| !k.is_empty() && !m.is_empty()), "{}", e);
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn random_text(text in "\\PC{0,300}") {
                loads(&text)?;
            }

        }

        proptest! {
            // A config that validates creates a librdkafka client to check its properties
            // (milliseconds each): fewer cases here.
            #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn truncated_and_mutated_example(cut in 0..EXAMPLE.len(), edits in prop::collection::vec((0..EXAMPLE.len(), "[\\[\\]=\"{}0-9a-z.,\n -]"), 1..6)) {
                loads(EXAMPLE.get(..cut).unwrap_or(EXAMPLE))?;
                let mut text = EXAMPLE.to_string();
                for (at, with) in edits {
                    let at = (0..=at.min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
                    text.insert_str(at, &with);
                }
                loads(&text)?;
            }


            #[test]
            fn odd_values_for_every_duration_and_number(value in prop_oneof![
                "\"[0-9]{1,30}[a-z]{0,3}\"", "-?[0-9]{1,30}(\\.[0-9]{1,5})?(e[0-9]{1,4})?", Just("\"\"".to_string()),
                Just("nan".to_string()), Just("inf".to_string()), Just("-inf".to_string()),
            ]) {
                for key in ["tick", "idle_partition_timeout", "rate_window", "max_future_skew"] {
                    loads(&format!("{EXAMPLE}\n").replace(&format!("\n{key} = "), &format!("\n{key} = {value}\n# ")))?;
                }
                for key in ["max_silence", "min_rate", "threshold", "lookback", "grace"] {
                    loads(&EXAMPLE.replacen(&format!("\n{key} = "), &format!("\n{key} = {value}\n# "), 1))?;
                }
            }
        }
    }

    /// Every key the parser accepts, as the docs write it (`stream.baseline.history`),
    /// found by deserializing [`RawConfig`] from a deserializer that offers each struct
    /// every field it asks for and records them.
    mod keys {
        use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

        pub struct Recorder<'a> {
            pub path: String,
            pub keys: &'a mut Vec<String>,
        }

        type Error = de::value::Error;

        impl<'de> de::Deserializer<'de> for Recorder<'_> {
            type Error = Error;

            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _name: &'static str,
                fields: &'static [&'static str],
                visitor: V,
            ) -> Result<V::Value, Error> {
                visitor.visit_map(Fields { fields, next: 0, path: self.path, keys: self.keys })
            }

            fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                visitor.visit_some(self)
            }

            fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                visitor.visit_seq(One { item: Some(self) })
            }

            // maps (`kafka.properties`, `alert.labels`) are free-form: empty
            fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                visitor.visit_map(de::value::MapDeserializer::new(std::iter::empty::<(String, String)>()))
            }

            fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                visitor.visit_bool(false)
            }

            fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                visitor.visit_u64(1)
            }

            fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                visitor.visit_f64(1.0)
            }

            // strings, and the untagged threshold (a string or a number)
            fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                visitor.visit_str("1s")
            }

            serde::forward_to_deserialize_any! {
                i8 i16 i32 i64 i128 u8 u16 u32 u128 f32 char str string bytes byte_buf unit
                unit_struct newtype_struct tuple tuple_struct enum identifier ignored_any
            }
        }

        struct Fields<'a> {
            fields: &'static [&'static str],
            next: usize,
            path: String,
            keys: &'a mut Vec<String>,
        }

        impl<'de> MapAccess<'de> for Fields<'_> {
            type Error = Error;

            fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
                let Some(field) = self.fields.get(self.next) else { return Ok(None) };
                seed.deserialize((*field).into_deserializer()).map(Some)
            }

            fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
                let field = self.fields[self.next];
                self.next += 1;
                let path = if self.path.is_empty() { field.to_string() } else { format!("{}.{field}", self.path) };
                self.keys.push(path.clone());
                seed.deserialize(Recorder { path, keys: self.keys })
            }
        }

        struct One<'a> {
            item: Option<Recorder<'a>>,
        }

        impl<'de> SeqAccess<'de> for One<'_> {
            type Error = Error;

            fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
                self.item.take().map(|r| seed.deserialize(r)).transpose()
            }
        }
    }

    #[test]
    fn every_key_the_parser_accepts_is_in_the_configuration_reference() {
        use serde::Deserialize;
        let mut keys = Vec::new();
        RawConfig::deserialize(keys::Recorder { path: String::new(), keys: &mut keys }).unwrap();
        let docs = include_str!("../../../../docs/configuration.md");
        // the arrays of tables are documented by their entries' keys
        let tables =
            ["stream", "pair", "consumer", "alert", "receiver", "kafka", "http", "metrics", "shutdown", "monitor"];
        let missing: Vec<&String> =
            keys.iter().filter(|k| !tables.contains(&k.as_str()) && !docs.contains(&format!("`{k}`"))).collect();
        assert!(keys.len() > 50, "the recorder found {} keys: {keys:?}", keys.len());
        assert!(missing.is_empty(), "keys the parser accepts, missing from docs/configuration.md: {missing:?}");
    }
}
