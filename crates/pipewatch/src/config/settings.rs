//! The one-table sections: `[kafka]`, `[http]`, `[metrics]`, `[shutdown]` and
//! `[monitor]`.

use std::net::SocketAddr;
use std::time::Duration;

use pipewatch_core::MonitorSettings;
use pipewatch_kafka::Start;

use super::problems::Problems;
use super::raw::{RawHttp, RawKafka, RawMetrics, RawMonitor};
use super::web::{self, WebConfig};

/// How finely /metrics (and the rules generated for it) break the figures down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// Every partition's series, and the stream's.
    Partition,
    /// The streams' and consumers' series only; the counters summed per stream.
    Stream,
}

impl Granularity {
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Partition => "partition",
            Granularity::Stream => "stream",
        }
    }
}

/// `[kafka]`: the brokers, pipewatch's own group, where reading starts, and the
/// properties librdkafka gets (none of those pipewatch sets itself).
pub(super) fn kafka_start(k: &RawKafka, p: &mut Problems) -> Start {
    if k.bootstrap_servers.trim().is_empty() {
        p.add("kafka.bootstrap_servers", "must name at least one broker, e.g. \"localhost:9092\"");
    }
    if k.group_id.trim().is_empty() {
        p.add("kafka.group_id", "must not be empty");
    }
    let lookback = p.positive_duration("kafka.lookback", &k.lookback);
    let start = match k.start.as_str() {
        "earliest" => Start::Earliest,
        "latest" => Start::Latest,
        "lookback" => Start::Lookback(lookback),
        other => {
            p.add("kafka.start", format!("{other:?} is not one of earliest, latest, lookback"));
            Start::Latest
        }
    };
    for key in k.properties.keys() {
        if matches!(key.as_str(), "group.id" | "enable.auto.commit" | "bootstrap.servers") {
            p.add(
                format!("kafka.properties.\"{key}\""),
                "is set by pipewatch (use kafka.group_id / kafka.bootstrap_servers; offsets are never committed)",
            );
        }
    }
    start
}

/// `http.listen`.
pub(super) fn listen(h: &RawHttp, p: &mut Problems) -> SocketAddr {
    match h.listen.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            p.add("http.listen", format!("{:?} is not an address like \"127.0.0.1:9464\"", h.listen));
            SocketAddr::from(([127, 0, 0, 1], 9464))
        }
    }
}

/// `metrics.granularity`.
pub(super) fn granularity(m: &RawMetrics, p: &mut Problems) -> Granularity {
    match m.granularity.as_str() {
        "partition" => Granularity::Partition,
        "stream" => Granularity::Stream,
        other => {
            p.add("metrics.granularity", format!("{other:?} is not one of partition, stream"));
            Granularity::Partition
        }
    }
}

/// `http.web_config_file`, read and checked: each of its problems is keyed with it.
pub(super) fn web_config(h: &RawHttp, p: &mut Problems) -> Option<WebConfig> {
    h.web_config_file.as_deref().and_then(|path| match web::load(path) {
        Ok(web) => Some(web),
        Err(problems) => {
            for problem in problems {
                p.add("http.web_config_file", problem);
            }
            None
        }
    })
}

/// `http.external_url`, or the listener's own URL (`https://` with TLS).
pub(super) fn external_url(h: &RawHttp, listen: SocketAddr, web: Option<&WebConfig>, p: &mut Problems) -> String {
    match &h.external_url {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => u.trim_end_matches('/').to_string(),
        Some(u) => {
            p.add("http.external_url", format!("{u:?} is not an http:// or https:// URL"));
            String::new()
        }
        None => format!("{}://{listen}", if web.is_some_and(|w| w.tls.is_some()) { "https" } else { "http" }),
    }
}

/// `[monitor]`, validated.
pub(super) struct MonitorSection {
    pub tick: Duration,
    pub settings: MonitorSettings,
    pub max_future_skew: Duration,
}

pub(super) fn monitor(m: &RawMonitor, p: &mut Problems) -> MonitorSection {
    let tick = p.positive_duration("monitor.tick", &m.tick);
    let idle = p.positive_duration("monitor.idle_partition_timeout", &m.idle_partition_timeout);
    let rate_window = p.positive_duration("monitor.rate_window", &m.rate_window);
    let max_future_skew = p.duration("monitor.max_future_skew", &m.max_future_skew);
    if !tick.is_zero() && !rate_window.is_zero() && rate_window < tick * 2 {
        p.add("monitor.rate_window", format!("must span at least two ticks ({})", m.tick));
    }
    MonitorSection {
        tick,
        settings: MonitorSettings {
            idle_partition_timeout_ms: idle.as_millis() as i64,
            rate_window_ms: rate_window.as_millis() as i64,
        },
        max_future_skew,
    }
}
