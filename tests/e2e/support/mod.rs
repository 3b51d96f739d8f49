//! What every end-to-end test shares: the broker ([`broker`]), pipewatch in process or as
//! the binary ([`process`]), alert receivers — a webhook sink and the real Alertmanager
//! ([`receivers`]) — the real schema registry ([`registry`]), PostgreSQL and Kafka Connect
//! with Debezium ([`connect`]) and traffic written by the clock ([`traffic`]); configs,
//! waiting for a condition, the clock. No test file imports another.

use std::future::Future;
use std::time::{Duration, Instant};

mod broker;
mod connect;
mod process;
mod receivers;
mod registry;
mod traffic;

pub use broker::*;
pub use connect::*;
pub use process::*;
pub use receivers::*;
pub use registry::*;
pub use traffic::*;

/// The entry of stream `name` in a `/api/v1/status` (null when there is none).
pub fn stream_status(status: &serde_json::Value, name: &str) -> serde_json::Value {
    status["streams"].as_array().and_then(|a| a.iter().find(|s| s["name"] == name)).cloned().unwrap_or_default()
}

/// Polls `check` until it returns `Some`, or panics with `what` and the last state.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

pub fn now_ms() -> i64 {
    pipewatch_kafka::now_ms()
}

/// A config for one test: its own group, its own topics.
pub fn config(bootstrap: &str, start: &str, body: &str) -> String {
    config_in_group(bootstrap, &unique_topic("pipewatch-test-group"), start, body)
}

/// A config whose consumer group the test names.
pub fn config_in_group(bootstrap: &str, group: &str, start: &str, body: &str) -> String {
    format!(
        r#"
[kafka]
bootstrap_servers = "{bootstrap}"
group_id = "{group}"
start = "{start}"
[kafka.properties]
"topic.metadata.refresh.interval.ms" = "1000"
[monitor]
tick = "1s"
rate_window = "10s"
{body}
"#
    )
}

/// One `orders` stream on `topic`, with `extra` settings.
pub fn orders_stream(topic: &str, extra: &str) -> String {
    format!(
        r#"
[[stream]]
name = "orders"
topic = "{topic}"
event_time = {{ field = "/created_at", format = "rfc3339" }}
{extra}
"#
    )
}

/// The `orders` (RFC 3339 `created_at`) and `behaviour` (epoch-millis `ts`) streams on
/// the given topics, each with `stream_extra` settings, their pair, and `rest`.
pub fn orders_and_behaviour(orders: &str, behaviour: &str, stream_extra: &str, rest: &str) -> String {
    format!(
        r#"
[[stream]]
name = "orders"
topic = "{orders}"
event_time = {{ field = "/created_at", format = "rfc3339" }}
{stream_extra}
[[stream]]
name = "behaviour"
topic = "{behaviour}"
event_time = {{ field = "/ts", format = "epoch_millis" }}
{stream_extra}
[[pair]]
name = "orders_behaviour"
leader = "orders"
follower = "behaviour"
{rest}
"#
    )
}

/// The sync-lag rule of the tests: behaviour more than 15 m behind orders for 2 s.
pub const SYNC_RULE: &str = r#"
[[alert]]
name = "BehaviourBehindOrders"
kind = "sync_lag"
target = "orders_behaviour"
threshold = "15m"
clear = "10m"
for = "2s"
severity = "page"
impact = "Behaviour analysis, segmentation and ad targeting run on stale data."
"#;

/// `promtool check metrics` on an exposition: no findings.
pub async fn promtool_check(metrics: &str) {
    let mut child = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool not found: apt-get install prometheus (it ships promtool)");
    let mut stdin = child.stdin.take().expect("stdin");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, metrics.as_bytes()).await.expect("write to promtool");
    drop(stdin);
    let out = child.wait_with_output().await.expect("promtool");
    let findings = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && findings.trim().is_empty(), "promtool check metrics: {findings}");
}

/// `pipewatch check-config --connect` on a config: exit code, stdout, stderr.
pub async fn check_connect(toml: &str) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(unique_topic("pipewatch-check-connect"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pipewatch.toml");
    std::fs::write(&path, toml).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipewatch"))
        .args(["check-config", "--connect", "--config"])
        .arg(&path)
        .output()
        .await
        .expect("run pipewatch check-config --connect");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}
