//! The Kafka Connect poll's cost: one `[[connect]]` cluster of `--connectors` connectors
//! (two tasks each, one `FAILED` with a 40-frame trace: what a bad day looks like), served
//! by the demo's stand-in for the REST API in a child process (so that only the client's
//! work is measured here), polled `--polls` times by pipewatch's client: every connector's
//! state, tasks, config and active topics (1 + n requests per poll), matched and counted.
//! As reference in the same run, the same requests fetched with nothing parsed. Printed:
//! CPU per poll of each and their ratio, and what a `poll = "10s"` costs per minute.
//!
//! `cargo bench -p pipewatch --bench connect_poll [-- --connectors 50 --polls 200]`; run by
//! `cargo test` it is a smoke run at a small size (no figure asserted).

use std::time::{Duration, Instant};

use pipewatch::connect::{expanded, stand_in, ConnectClient, ConnectConfig, StandInAnswer};
use pipewatch_alert::{Access, HttpClient};

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// This process's user + system CPU seconds (`/proc/self/stat`, clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn answer(n: usize) -> StandInAnswer {
    let trace = format!(
        "org.apache.kafka.connect.errors.ConnectException: An exception occurred in the change event producer.\n{}Caused by: org.postgresql.util.PSQLException: Connection to db:5432 refused.\n",
        "\tat io.debezium.pipeline.ErrorHandler.setProducerThrowable(ErrorHandler.java:67)\n".repeat(40)
    );
    let mut connectors = serde_json::Map::new();
    let mut topics = std::collections::BTreeMap::new();
    for i in 0..n {
        let name = format!("cdc-{i}");
        let config = serde_json::json!({
            "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "topic.prefix": format!("shop{i}"),
            "database.hostname": "db",
            "table.include.list": "public.orders",
        });
        let tasks = [("RUNNING", None), ("FAILED", Some(trace.as_str()))];
        connectors.insert(name.clone(), expanded("source", config, "connect-0:8083", &tasks));
        topics.insert(name, vec![format!("shop{i}.public.orders")]);
    }
    StandInAnswer { connectors: serde_json::Value::Object(connectors), topics }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|a| a == "--bench");
    let n = arg(&args, "--connectors", 50);
    let polls = arg(&args, "--polls", if full { 200 } else { 3 });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    if args.first().map(String::as_str) == Some("serve") {
        // the child: the stand-in, until the parent closes its stdin
        runtime.block_on(async {
            let url = stand_in(move |_| answer(n)).await.expect("stand-in");
            println!("{url}");
            let _ = tokio::task::spawn_blocking(|| std::io::Read::read(&mut std::io::stdin(), &mut [0u8; 1])).await;
        });
        return;
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["serve", "--connectors", &n.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the stand-in process");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let url = line.trim().to_string();
    let config = ConnectConfig {
        name: "cdc".into(),
        url: url.clone(),
        poll: Duration::from_secs(10),
        timeout: Duration::from_secs(10),
        access: Access::default(),
    };
    let watched: Vec<String> = (0..n).map(|i| format!("shop{i}.public.orders")).collect();
    let client = ConnectClient::new(config, watched);
    let raw = HttpClient::system_cas(&Access::default());
    runtime.block_on(async {
        // warm: connections, allocations
        let polled = client.poll().await.expect("the stand-in answers");
        assert_eq!(polled.len(), n);
        let (mut pipewatch, mut reference) = (0.0, 0.0);
        let started = Instant::now();
        for _ in 0..polls {
            let cpu = cpu_seconds();
            let polled = client.poll().await.expect("a poll");
            std::hint::black_box(polled);
            pipewatch += cpu_seconds() - cpu;
            let cpu = cpu_seconds();
            let list = format!("{url}/connectors?expand=status&expand=info");
            std::hint::black_box(raw.get(&list, "application/json", Duration::from_secs(10)).await.expect("get"));
            for i in 0..n {
                let topics = format!("{url}/connectors/cdc-{i}/topics");
                std::hint::black_box(raw.get(&topics, "application/json", Duration::from_secs(10)).await.expect("get"));
            }
            reference += cpu_seconds() - cpu;
        }
        let per = |total: f64| total / polls as f64 * 1000.0;
        println!(
            "connect poll, {n} connectors ({} requests a poll), {polls} polls in {:.1?}: pipewatch's client {:.2} ms CPU a poll, \
             the same requests unparsed {:.2} ms (ratio {:.2}); at poll = \"10s\": {:.0} ms CPU a minute",
            n + 1,
            started.elapsed(),
            per(pipewatch),
            per(reference),
            if reference > 0.0 { pipewatch / reference } else { f64::NAN },
            per(pipewatch) * 6.0
        );
    });
    drop(child.stdin.take());
    let _ = child.wait();
}
