//! `pipewatch check-config`: the exit code and the message a person sees.

use std::process::Command;

use crate::support::*;

fn check(config: &str) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!("pipewatch-check-{}-{}", std::process::id(), config.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pipewatch.toml");
    std::fs::write(&path, config).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_pipewatch")).arg("check-config").arg("--config").arg(&path).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_example_config_passes() {
    let (code, stdout, stderr) = check(include_str!("../../pipewatch.example.toml"));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("ok (2 streams, 1 pairs, 4 alerts)"), "{stdout}");
}

#[test]
fn a_bad_config_lists_every_problem_with_its_key() {
    let bad = r#"
[kafka]
bootstrap_servers = "localhost:9092"
lookback = "15 minutes"
[[stream]]
name = "orders"
topic = "orders"
event_time = { field = "/created_at", format = "iso" }
[[stream]]
name = "behaviour"
topic = "user-behaviour"
event_time = { field = "/ts", format = "epoch_millis" }
max_silence = "0s"
[[pair]]
name = "orders_behaviour"
leader = "ordres"
follower = "behaviour"
"#;
    let (code, _, stderr) = check(bad);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("config is invalid (4 problems)"), "{stderr}");
    for line in [
        "kafka.lookback: \"15 minutes\" has an unknown unit",
        "stream[0].event_time.format: \"iso\" is not one of rfc3339, epoch_seconds, epoch_millis, epoch_micros",
        "stream[1].max_silence: must be greater than zero",
        "pair[0].leader: no stream named \"ordres\" (known: orders, behaviour)",
    ] {
        assert!(stderr.contains(line), "missing {line:?} in:\n{stderr}");
    }
}

#[test]
fn unknown_keys_and_missing_files_are_errors() {
    let (code, _, stderr) = check("[kafka]\nbootstrap_servers = \"x:9092\"\n[[stream]]\nname = \"a\"\ntopic = \"a\"\nevent_time = { source = \"kafka_timestamp\" }\nmax_silense = \"1m\"\n");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("stream[0].max_silense (line 7): unknown field `max_silense`"), "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_pipewatch"))
        .args(["check-config", "--config", "/nonexistent/pipewatch.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed to read /nonexistent/pipewatch.toml"));
}

#[test]
fn check_config_connect_names_a_cluster_that_does_not_answer() {
    let config = format!(
        "{}\n{}",
        r#"[kafka]
bootstrap_servers = "127.0.0.1:1"
"#,
        r#"[[stream]]
name = "orders"
topic = "orders"
event_time = { field = "/created_at", format = "rfc3339" }
"#
    );
    let dir = std::env::temp_dir().join(format!("pipewatch-check-connect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pipewatch.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pipewatch"))
        .args(["check-config", "--connect", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error: kafka.bootstrap_servers: the cluster at 127.0.0.1:1 does not answer"), "{stderr}");
    // without --connect the same config is fine: check-config stays offline
    let offline =
        Command::new(env!("CARGO_BIN_EXE_pipewatch")).arg("check-config").arg("--config").arg(&path).output().unwrap();
    assert_eq!(offline.status.code(), Some(0), "{}", String::from_utf8_lossy(&offline.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_connect_asks_the_schema_registry() {
    let (bootstrap, registry) = (broker().await, schema_registry().await);
    let orders = unique_topic("avro-orders");
    create_topic(bootstrap, &orders, 1).await.unwrap();
    let stream = format!(
        "[[stream]]\nname = \"orders\"\ntopic = \"{orders}\"\nvalue_format = \"avro\"\n\
         event_time = {{ field = \"/created_at\", format = \"rfc3339\" }}\n"
    );
    let toml = config(bootstrap, "latest", &format!("[schema_registry]\nurl = \"{}\"\n{stream}", registry.url));
    let (code, stdout, stderr) = check_connect(&toml).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("schema registry at {}: reachable", registry.url)), "{stdout}");
    // nothing listens there
    let dead = format!("http://127.0.0.1:{}/apis/ccompat/v7", pipewatch_kafka::testing::free_port());
    let toml = config(bootstrap, "latest", &format!("[schema_registry]\nurl = \"{dead}\"\ntimeout = \"2s\"\n{stream}"));
    let (code, stdout, stderr) = check_connect(&toml).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("error: schema_registry.url: the registry at {dead} does not answer")),
        "{stderr}"
    );
}
