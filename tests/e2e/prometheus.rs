//! The users' Prometheus side on live data: a real Prometheus (Debian's package)
//! scrapes pipewatch on the real broker while `pipewatch generate` feeds it, with the
//! rules `pipewatch rules` prints for the config loaded. Two replicas in one group
//! (job `replicas`) and one pipewatch alone (job `single`) watch the same topics; once
//! with every partition's series (`metrics.granularity = "partition"`, the default) and
//! once with the streams' only (`"stream"`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

const PIPEWATCH: &str = env!("CARGO_BIN_EXE_pipewatch");
/// Partitions per topic.
const PARTITIONS: i32 = 3;
/// What the generator's behaviour path lags by: a sync lag of 1800 s.
const BEHAVIOUR_DELAY_S: f64 = 1800.0;
/// One tick of pipewatch plus one scrape interval of Prometheus: how far figures read
/// at different instants from different targets may differ while data flows.
const TICK_AND_SCRAPE_S: f64 = 2.0;

/// A Prometheus process with its own config and storage, stopped on drop.
struct Prometheus {
    addr: SocketAddr,
    child: Child,
    dir: PathBuf,
}

impl Prometheus {
    async fn start(dir: PathBuf, jobs: &[(&str, Vec<SocketAddr>)], rules: &str) -> Self {
        let mut scrape_configs = String::new();
        for (job, targets) in jobs {
            let targets: Vec<String> = targets.iter().map(|a| format!("'{a}'")).collect();
            scrape_configs.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ));
        }
        Self::start_with(dir, &scrape_configs, rules).await
    }

    /// With the `scrape_configs` entries given as YAML.
    async fn start_with(dir: PathBuf, scrape_configs: &str, rules: &str) -> Self {
        let port = pipewatch_kafka::testing::free_port();
        std::fs::write(dir.join("pipewatch.rules.yml"), rules).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - pipewatch.rules.yml\nscrape_configs:\n{scrape_configs}"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("Prometheus not found: apt-get install prometheus");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let prometheus = Self { addr, child, dir };
        wait_ready_endpoint("Prometheus", addr, Duration::from_secs(60)).await;
        prometheus
    }

    /// An instant query: the result vector, or why there is none.
    async fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let (status, body) = try_http_get(self.addr, &format!("/api/v1/query?query={}", url_encode(promql))).await?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if status != 200 || v["status"] != "success" {
            return Err(format!("HTTP {status}: {body}"));
        }
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// `{label value → sample value}` of a query's series, by one label.
    async fn by(&self, promql: &str, label: &str) -> Result<Vec<(String, f64)>, String> {
        let mut out: Vec<(String, f64)> = self
            .query(promql)
            .await?
            .iter()
            .map(|s| {
                let key = s["metric"][label].as_str().unwrap_or_default().to_string();
                let value = s["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
                (key, value)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            if let Ok(log) = std::fs::read_to_string(self.dir.join("prometheus.log")) {
                eprintln!("--- prometheus.log (last lines)\n{}", tail(&log, 30));
            }
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `pipewatch generate` as a user runs it, stopped on drop.
struct Generator(Child);

impl Generator {
    fn start(bootstrap: &str, orders: &str, behaviour: &str, dir: &std::path::Path) -> Self {
        let child = Command::new(PIPEWATCH)
            .args(["generate", "--bootstrap-servers", bootstrap, "--orders-topic", orders])
            .args(["--behaviour-topic", behaviour, "--rate", "30", "--behaviour-delay", "30m"])
            .args(["--invalid-share", "0.05", "--fault-after", "25s", "--silent-partition", "orders:2"])
            .stdout(std::fs::File::create(dir.join("generate.log")).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start pipewatch generate");
        Self(child)
    }

    fn stop(&mut self) {
        // SIGTERM: the generator flushes what it produced and exits.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The downstream job the tests watch: reads both topics in its own group and commits
/// every second, until dropped.
struct AnalyticsJob {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Its group id.
const ANALYTICS_GROUP: &str = "analytics-job";

impl AnalyticsJob {
    fn start(bootstrap: &str, group: &str, topics: [&str; 2]) -> Self {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .set("auto.commit.interval.ms", "1000")
            .create()
            .expect("the analytics job's consumer");
        consumer.subscribe(&topics).expect("the analytics job subscribes");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = consumer.poll(Duration::from_millis(100));
            }
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for AnalyticsJob {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Kafka Connect for the dashboard's connector panels: the shared worker, where a sink
/// connector reads the orders (group `connect-<sink>`, watched as the consumer
/// `warehouse`).
struct ConnectPart<'a> {
    url: String,
    sink: &'a str,
}

fn test_config(
    bootstrap: &str,
    group: &str,
    granularity: &str,
    topics: [&str; 4],
    analytics: &str,
    connect: &ConnectPart<'_>,
) -> String {
    let [orders, behaviour, signups, discovered] = topics;
    let password = std::env::temp_dir().join(format!("{group}-connect-password"));
    std::fs::write(&password, CONNECT_PASSWORD).unwrap();
    let connect = format!(
        "[[connect]]\nname = \"connect\"\nurl = \"{}\"\npoll = \"2s\"\n\
         basic_auth = {{ username = \"{CONNECT_USER}\", password_file = \"{}\" }}\n\
         [[consumer]]\nname = \"warehouse\"\ngroup = \"connect-{}\"\nstreams = [\"orders\"]\n",
        connect.url,
        password.display(),
        connect.sink
    );
    format!(
        r#"
[kafka]
bootstrap_servers = "{bootstrap}"
group_id = "{group}"
start = "earliest"
[kafka.properties]
"topic.metadata.refresh.interval.ms" = "1000"
[metrics]
granularity = "{granularity}"
[monitor]
tick = "1s"
rate_window = "10s"
idle_partition_timeout = "5s"
[discovery]
topics = {{ include = ["^{discovered}$"] }}
max_silence = "30s"
{}"#,
        orders_and_behaviour(
            orders,
            behaviour,
            "max_silence = \"4s\"\nmin_rate = 1.0\nsegments = [{ name = \"channel\", field = \"/channel\" }]",
            &format!(
                "[[stream]]\nname = \"signups\"\ntopic = \"{signups}\"\nevent_time = {{ field = \"/ts\", format = \"epoch_millis\" }}\n\
                 baseline = {{ history = \"2d\", floor = 0.1 }}\n\
                 {SYNC_RULE}\n[[alert]]\nname = \"OrdersInvalid\"\nkind = \"invalid_ratio\"\ntarget = \"orders\"\n\
                 threshold = 0.5\nseverity = \"warning\"\nimpact = \"Orders without a usable time are not counted.\"\n\
                 [[consumer]]\nname = \"analytics\"\ngroup = \"{analytics}\"\nstreams = [\"orders\", \"behaviour\"]\n{connect}"
            )
        )
    )
}

/// Every query of every panel of the shipped dashboards, with Grafana's variables
/// filled in as "All", plus the variables' own queries.
fn dashboard_queries() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dashboards");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("dashboards/") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        for var in dashboard["templating"]["list"].as_array().into_iter().flatten() {
            if let Some(q) = var["query"]["query"].as_str() {
                // label_values(metric, label): the metric must have series
                let metric = q.trim_start_matches("label_values(").split(',').next().unwrap().to_string();
                out.push((format!("{file}: variable {}", var["name"]), metric));
            }
        }
        let mut panels: Vec<&Value> = dashboard["panels"].as_array().into_iter().flatten().collect();
        while let Some(panel) = panels.pop() {
            panels.extend(panel["panels"].as_array().into_iter().flatten());
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().expect("a target without expr").to_string();
                let expr = expr
                    .replace("$stream", ".*")
                    .replace("$pair", ".*")
                    .replace("$consumer", ".*")
                    .replace("$__rate_interval", "10s")
                    .replace("$__interval", "1s")
                    .replace("$__range", "1m");
                assert!(!expr.contains('$'), "unknown variable in {expr}");
                out.push((format!("{file}: panel {} ({})", panel["title"], target["refId"]), expr));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_on_live_data_answers_every_dashboard_query_and_the_rules_match_one_replica() {
    live_prometheus("partition").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_stream_granularity_no_partition_series_and_the_same_answers() {
    live_prometheus("stream").await;
}

/// Each stream's assigned partitions, as the status of `pw` lists them.
async fn assigned(pw: &Pipewatch, stream: &str) -> std::collections::BTreeSet<String> {
    pw.assigned(stream).await.into_keys().collect()
}

async fn live_prometheus(granularity: &str) {
    let partition_series = granularity == "partition";
    let bootstrap = broker().await;
    let (orders, behaviour, signups) = (unique_topic("orders"), unique_topic("behaviour"), unique_topic("signups"));
    create_topic(bootstrap, &orders, PARTITIONS).await.unwrap();
    create_topic(bootstrap, &behaviour, PARTITIONS).await.unwrap();
    // signups: a day and an hour of history at a record a second per partition, and so on
    // live, so that each replica learns a band for its partitions
    topic_with_history(bootstrap, &signups, PARTITIONS, 3600).await;
    let live_signups = steady(bootstrap, &signups, PARTITIONS, Duration::from_secs(1));
    // a topic no stream reads, found by [discovery] topics: a stream of its own
    let clicks = unique_topic("discovered-clicks");
    create_topic(bootstrap, &clicks, PARTITIONS).await.unwrap();
    let live_clicks = steady(bootstrap, &clicks, PARTITIONS, Duration::from_millis(500));
    let dir = std::env::temp_dir().join(format!("pipewatch-prom-{}-{}", std::process::id(), unique_topic("t")));
    std::fs::create_dir_all(&dir).unwrap();

    let group = unique_topic("pipewatch-replicas");
    let analytics = unique_topic(ANALYTICS_GROUP);
    let topics = [orders.as_str(), behaviour.as_str(), signups.as_str(), clicks.as_str()];
    // a sink connector reading the orders (tolerating the generator's invalid records)
    let connect = crate::support::connect().await;
    let sink = unique_topic("warehouse");
    let mut sink_config = discard_sink(&orders);
    sink_config["errors.tolerance"] = "all".into();
    connect.create(&sink, sink_config).await;
    let connect_part = ConnectPart { url: connect.url(), sink: &sink };
    let replicas_config = test_config(bootstrap, &group, granularity, topics, &analytics, &connect_part);
    let a = Pipewatch::start(&replicas_config).await;
    let b = Pipewatch::start(&replicas_config).await;
    let single_group = unique_topic("pipewatch-single");
    let single =
        Pipewatch::start(&test_config(bootstrap, &single_group, granularity, topics, &analytics, &connect_part)).await;
    let config_path = dir.join("pipewatch.toml");
    std::fs::write(&config_path, &replicas_config).unwrap();
    let rules = Command::new(PIPEWATCH).args(["rules", "--config"]).arg(&config_path).output().unwrap();
    assert!(rules.status.success(), "{}", String::from_utf8_lossy(&rules.stderr));
    let prometheus = Prometheus::start(
        dir.clone(),
        &[("replicas", vec![a.addr, b.addr]), ("single", vec![single.addr])],
        &String::from_utf8(rules.stdout).unwrap(),
    )
    .await;
    let mut generator = Generator::start(bootstrap, &orders, &behaviour, &dir);
    let _analytics_job = AnalyticsJob::start(bootstrap, &analytics, [&orders, &behaviour]);

    // Each partition is exported by exactly one replica, and the two cover them all.
    let all: std::collections::BTreeSet<String> = (0..PARTITIONS).map(|p| p.to_string()).collect();
    eventually("the replicas to split every partition", Duration::from_secs(60), || async {
        let (mut na, mut nb) = (0, 0);
        for stream in ["orders", "behaviour"] {
            let (pa, pb) = (assigned(&a, stream).await, assigned(&b, stream).await);
            if !pa.is_disjoint(&pb) || pa.union(&pb).cloned().collect::<std::collections::BTreeSet<_>>() != all {
                return Err(format!("{stream}: a {pa:?}, b {pb:?}"));
            }
            // /metrics shows them at partition granularity, and only then
            let (ma, mb) = (a.metrics().await.partitions(stream), b.metrics().await.partitions(stream));
            let (ea, eb) = if partition_series { (pa.clone(), pb.clone()) } else { Default::default() };
            if (ma.clone(), mb.clone()) != (ea, eb) {
                return Err(format!("{stream}: /metrics a {ma:?}, b {mb:?}; assigned a {pa:?}, b {pb:?}"));
            }
            (na, nb) = (na + pa.len(), nb + pb.len());
        }
        if na == 0 || nb == 0 {
            return Err("one replica has no partition".into());
        }
        Ok(())
    })
    .await;
    // Prometheus sees each partition once: in its own series, or counted once in the
    // replicas' stream series.
    let per_partition = if partition_series {
        "count by (stream, partition) (pipewatch_partition_watermark_timestamp_seconds{job=\"replicas\", stream=~\"orders|behaviour\"})"
    } else {
        "sum by (stream) (pipewatch_stream_partitions{job=\"replicas\", stream=~\"orders|behaviour\"})"
    };
    let (want_series, want_value) =
        if partition_series { (2 * PARTITIONS as usize, "1".to_string()) } else { (2, PARTITIONS.to_string()) };
    eventually("Prometheus to see each partition once", Duration::from_secs(30), || async {
        let counts = prometheus.query(per_partition).await?;
        let right = counts.iter().filter(|s| s["value"][1] == want_value.as_str()).count();
        if counts.len() == want_series && right == counts.len() {
            Ok(())
        } else {
            Err(format!("{counts:?}"))
        }
    })
    .await;
    if !partition_series {
        let with_partition = prometheus.query("count by (__name__) ({__name__=~\"pipewatch_.+\", partition!=\"\"})");
        assert_eq!(with_partition.await.unwrap(), Vec::<Value>::new(), "series with a partition label");
    }

    // The alerting rules fire like the built-in ones, with the cause and the stream
    // (before the generator's fault at 25 s makes orders, the leader, the pair's cause).
    eventually("BehaviourBehindOrders firing in Prometheus", Duration::from_secs(30), || async {
        let alerts = prometheus.query("ALERTS{alertname=\"BehaviourBehindOrders\", alertstate=\"firing\"}").await?;
        let jobs: Vec<&str> = alerts.iter().filter_map(|a| a["metric"]["job"].as_str()).collect();
        let good =
            alerts.iter().all(|a| a["metric"]["cause"] == "event_time_delayed" && a["metric"]["stream"] == "behaviour");
        if jobs.contains(&"replicas") && jobs.contains(&"single") && good {
            Ok(())
        } else {
            Err(format!("{alerts:?}"))
        }
    })
    .await;
    let built_in = single.metrics().await;
    assert_eq!(
        built_in.value("pipewatch_alert_active", &[("alert", "BehaviourBehindOrders"), ("severity", "page")]),
        Some(1.0),
        "the built-in rule fires too"
    );
    assert_eq!(
        built_in.value("pipewatch_alert_cause", &[("alert", "BehaviourBehindOrders"), ("cause", "event_time_delayed")]),
        Some(1.0),
        "with the same cause"
    );

    // Every panel's query returns series.
    let queries = dashboard_queries();
    assert!(queries.len() >= 15, "{queries:?}");
    eventually("every dashboard query to return series", Duration::from_secs(60), || async {
        let mut failing = Vec::new();
        for (what, q) in &queries {
            match prometheus.query(q).await {
                Ok(r) if !r.is_empty() => {}
                Ok(_) => failing.push(format!("{what}: no series for {q}")),
                Err(e) => failing.push(format!("{what}: {q}: {e}")),
            }
        }
        if failing.is_empty() {
            eprintln!("{} dashboard queries returned series", queries.len());
            Ok(())
        } else {
            Err(failing.join("\n"))
        }
    })
    .await;

    // The discovered topic is a stream of its own, by produce time, its figures from the
    // rules over both replicas like any other stream's.
    let fresh = format!("pipewatch:stream_freshness_lag_seconds{{job=\"replicas\", stream=\"{clicks}\"}}");
    let rate = format!("pipewatch:stream_rate_records_per_second{{job=\"replicas\", stream=\"{clicks}\"}}");
    eventually("the discovered topic's stream in Prometheus", Duration::from_secs(60), || async {
        let (lag, rate) = (prometheus.by(&fresh, "stream").await?, prometheus.by(&rate, "stream").await?);
        match (lag.as_slice(), rate.as_slice()) {
            ([(_, lag)], [(_, rate)]) if *lag < 30.0 && *rate > 0.0 => Ok(()),
            _ => Err(format!("freshness {lag:?}, rate {rate:?}")),
        }
    })
    .await;
    let status = single.status().await;
    let discovered = stream_status(&status, &clicks);
    assert_eq!(
        (&discovered["discovered"], &discovered["cause"]),
        (&Value::Bool(true), &Value::from("ok")),
        "{discovered}"
    );
    assert_eq!(status["topic_discovery"]["watched"], 1);
    let partitions = single.metrics().await.partitions(&clicks).len();
    assert_eq!(partitions, if partition_series { PARTITIONS as usize } else { 0 });

    // The replicas' bands summed: the signups rate, summed too, stands inside, as it does
    // for the single pipewatch that learnt every partition's history.
    eventually("the signups rate inside the replicas' summed band", Duration::from_secs(60), || async {
        let rules = prometheus.by("pipewatch:stream_rate_anomaly_score{job=\"replicas\"}", "stream").await?;
        let single_band = prometheus.by("pipewatch_stream_rate_expected_records_per_second{job=\"single\", bound=\"expected\"}", "stream").await?;
        let replicas_band = prometheus.by("sum by (stream) (pipewatch_stream_rate_expected_records_per_second{job=\"replicas\", bound=\"expected\"})", "stream").await?;
        let same_band = single_band.len() == 1 && replicas_band.len() == 1 && (single_band[0].1 - replicas_band[0].1).abs() < 1e-6;
        match rules.as_slice() {
            [(stream, score)] if stream == "signups" && score.abs() < 1.0 && same_band => Ok(()),
            _ => Err(format!("score {rules:?}, band {single_band:?} vs summed {replicas_band:?}")),
        }
    })
    .await;

    // promtool finds nothing in a live exposition (rate bounds, alerts, invalid counts).
    let exposition = a.metrics().await;
    promtool_check(&exposition.0).await;
    let series = exposition.0.lines().filter(|l| !l.starts_with('#')).count();
    eprintln!("{granularity} granularity: {series} series on one replica");

    // While data flows (orders partition 2 silent after 25 s, then idle): the rules over
    // the two replicas' partitions give the single pipewatch's figures.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let compare_flowing = || async {
        let rules_w = prometheus
            .by(
                "pipewatch:stream_watermark_timestamp_seconds{job=\"replicas\", stream=~\"orders|behaviour\"}",
                "stream",
            )
            .await?;
        let own_w = prometheus
            .by("pipewatch_stream_watermark_timestamp_seconds{job=\"single\", stream=~\"orders|behaviour\"}", "stream")
            .await?;
        let rules_lag = prometheus.by("pipewatch:sync_lag_seconds{job=\"replicas\"}", "pair").await?;
        let own_lag = prometheus.by("pipewatch_sync_lag_seconds{job=\"single\"}", "pair").await?;
        let close = |x: &[(String, f64)], y: &[(String, f64)]| {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.0 == q.0 && (p.1 - q.1).abs() <= TICK_AND_SCRAPE_S)
        };
        if rules_w.len() == 2 && close(&rules_w, &own_w) && close(&rules_lag, &own_lag) {
            Ok((rules_lag, own_lag))
        } else {
            Err(format!("watermarks {rules_w:?} vs {own_w:?}; sync lag {rules_lag:?} vs {own_lag:?}"))
        }
    };
    let (rules_lag, own_lag) =
        eventually("the rules' figures within a tick of one replica's", Duration::from_secs(20), compare_flowing).await;
    assert!((rules_lag[0].1 - BEHAVIOUR_DELAY_S).abs() < 10.0, "sync lag {rules_lag:?} (single: {own_lag:?})");
    eprintln!("flowing: sync lag by the rules {rules_lag:?}, by one pipewatch {own_lag:?}");
    // The rate across replicas is one pipewatch's (windows read at other instants: 20 %).
    eventually("the rules' rate near one replica's", Duration::from_secs(20), || async {
        let rules_r = prometheus
            .by("pipewatch:stream_rate_records_per_second{job=\"replicas\", stream=~\"orders|behaviour\"}", "stream")
            .await?;
        let own_r = prometheus
            .by("pipewatch_stream_rate_records_per_second{job=\"single\", stream=~\"orders|behaviour\"}", "stream")
            .await?;
        let near = rules_r.len() == 2
            && rules_r.len() == own_r.len()
            && rules_r.iter().zip(&own_r).all(|(p, q)| p.0 == q.0 && q.1 > 1.0 && (p.1 - q.1).abs() <= 0.2 * q.1);
        if near {
            eprintln!("flowing: rates by the rules {rules_r:?}, by one pipewatch {own_r:?}");
            Ok(())
        } else {
            Err(format!("rates {rules_r:?} vs {own_r:?}"))
        }
    })
    .await;
    eventually("orders partition 2 idle (after the generator's fault)", Duration::from_secs(30), || async {
        let partitions = single.assigned("orders").await;
        let since = partitions.get("2").and_then(|p| p["last_record_ms"].as_i64());
        match since {
            Some(t) if now_ms() - t > 6000 => Ok(()),
            other => Err(format!("last record {other:?}")),
        }
    })
    .await;
    eventually(
        "the rules' figures within a tick of one replica's, one partition idle",
        Duration::from_secs(20),
        compare_flowing,
    )
    .await;

    // Traffic stops: once everything is read and every partition idle, the figures are
    // still and the rules' equal the single pipewatch's.
    generator.stop();
    let (code, _) = connect.rest("DELETE", &format!("/connectors/{sink}"), "").await;
    assert_eq!(code, 204, "the sink connector removed");
    let sent = std::fs::read_to_string(dir.join("generate.log")).unwrap();
    assert!(sent.contains("sent orders="), "{sent}");
    tokio::time::sleep(Duration::from_secs(10)).await;
    eventually("the rules' figures equal to one replica's", Duration::from_secs(20), || async {
        let rules_w = prometheus
            .by(
                "pipewatch:stream_watermark_timestamp_seconds{job=\"replicas\", stream=~\"orders|behaviour\"}",
                "stream",
            )
            .await?;
        let own_w = prometheus
            .by("pipewatch_stream_watermark_timestamp_seconds{job=\"single\", stream=~\"orders|behaviour\"}", "stream")
            .await?;
        let rules_lag = prometheus.by("pipewatch:sync_lag_seconds{job=\"replicas\"}", "pair").await?;
        let own_lag = prometheus.by("pipewatch_sync_lag_seconds{job=\"single\"}", "pair").await?;
        let same = |x: &[(String, f64)], y: &[(String, f64)]| {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.0 == q.0 && (p.1 - q.1).abs() < 1e-6)
        };
        // The analytics job and the warehouse sink have read everything: their own
        // watermarks and sync lag, too.
        let rules_cw =
            prometheus.by("pipewatch:consumer_watermark_timestamp_seconds{job=\"replicas\"}", "stream").await?;
        let own_cw = prometheus.by("pipewatch_consumer_watermark_timestamp_seconds{job=\"single\"}", "stream").await?;
        let rules_cs = prometheus.by("pipewatch:consumer_sync_lag_seconds{job=\"replicas\"}", "pair").await?;
        let own_cs = prometheus.by("pipewatch_consumer_sync_lag_seconds{job=\"single\"}", "pair").await?;
        let rules_cl = prometheus.by("pipewatch:consumer_lag_seconds{job=\"replicas\"}", "consumer").await?;
        let consumers_same = rules_cw.len() == 3
            && same(&rules_cw, &own_cw)
            && rules_cs.len() == 1
            && same(&rules_cs, &own_cs)
            && rules_cl == [("analytics".to_string(), 0.0), ("warehouse".to_string(), 0.0)];
        if rules_w.len() == 2
            && same(&rules_w, &own_w)
            && rules_lag.len() == 1
            && same(&rules_lag, &own_lag)
            && consumers_same
        {
            eprintln!("still: watermarks by the rules {rules_w:?}, by one pipewatch {own_w:?}");
            eprintln!("still: the consumer's sync lag by the rules {rules_cs:?}, by one pipewatch {own_cs:?}");
            Ok(())
        } else {
            Err(format!(
                "watermarks {rules_w:?} vs {own_w:?}; sync lag {rules_lag:?} vs {own_lag:?}; consumer watermarks \
                 {rules_cw:?} vs {own_cw:?}; consumer sync lag {rules_cs:?} vs {own_cs:?}; consumer lag {rules_cl:?}"
            ))
        }
    })
    .await;

    live_signups.stop();
    live_clicks.stop();
    drop(prometheus);
    for pw in [a, b, single] {
        pw.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_pipewatch_over_https_with_basic_auth_from_an_exporter_toolkit_web_config() {
    let dir = std::env::temp_dir().join(format!("pipewatch-web-{}-{}", std::process::id(), unique_topic("w")));
    certificates(&dir);
    let password = "scrape-secret-2718";
    let hash = bcrypt::hash(password, 4).unwrap();
    // the file node_exporter would read with --web.config.file; relative paths are
    // relative to it
    std::fs::write(
        dir.join("web.yml"),
        format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: {hash}\n"),
    )
    .unwrap();
    let ca = dir.join("ca.pem");
    // No cluster is needed to be scraped.
    let dead = format!("127.0.0.1:{}", pipewatch_kafka::testing::free_port());
    let web = |open: bool| {
        format!(
            "{}\n[http]\nweb_config_file = \"{}\"\nprobes_without_auth = {open}\n",
            orders_stream("orders", ""),
            dir.join("web.yml").display()
        )
    };
    let pw = Pipewatch::start(&config(&dead, "latest", &web(true))).await;
    let closed = Pipewatch::start(&config(&dead, "latest", &web(false))).await;

    let (right, wrong) = (basic("prometheus", password), basic("prometheus", "guess"));
    assert_eq!(https_get(pw.addr, &ca, "/metrics", Some(&right)).await.map(|r| r.0), Ok(200));
    assert_eq!(https_get(pw.addr, &ca, "/metrics", Some(&wrong)).await.map(|r| r.0), Ok(401));
    assert_eq!(https_get(pw.addr, &ca, "/metrics", None).await.map(|r| r.0), Ok(401));
    assert_eq!(https_get(pw.addr, &ca, "/api/v1/status", None).await.map(|r| r.0), Ok(401));
    assert_eq!(https_get(pw.addr, &ca, "/healthz", None).await, Ok((200, "ok\n".to_string())), "probes are open");
    assert_eq!(https_get(pw.addr, &ca, "/readyz", None).await.map(|r| r.0), Ok(503), "open, and not ready");
    assert_eq!(https_get(closed.addr, &ca, "/healthz", None).await.map(|r| r.0), Ok(401), "unless the config says so");
    assert!(try_http_get(pw.addr, "/healthz").await.map_or(true, |(code, _)| code != 200), "no plain HTTP");

    let job = |name: &str, user_password: &str, target: SocketAddr| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config:\n      ca_file: {}\n    basic_auth:\n      \
             username: prometheus\n      password: {user_password}\n    static_configs:\n      - targets: ['localhost:{}']\n",
            ca.display(),
            target.port()
        )
    };
    let scrape = format!("{}{}", job("secured", password, pw.addr), job("wrong", "guess", pw.addr));
    let prometheus = Prometheus::start_with(dir.clone(), &scrape, "groups: []\n").await;
    eventually("Prometheus to scrape over HTTPS with basic auth", Duration::from_secs(30), || async {
        let up = prometheus.by("up", "job").await?;
        let build = prometheus.query("pipewatch_build_info{job=\"secured\"}").await?;
        if up == [("secured".to_string(), 1.0), ("wrong".to_string(), 0.0)] && build.len() == 1 {
            Ok(())
        } else {
            Err(format!("up {up:?}, build_info {build:?}"))
        }
    })
    .await;
    drop(prometheus);
    pw.stop().await;
    closed.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The join's completeness rule on a live Prometheus: matched / (matched + missing) from
/// the counters summed, per referral value and for all orders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_join_completeness_rule_computes_the_ratio_from_the_counters() {
    let bootstrap = broker().await;
    let (orders, behaviour) = (unique_topic("orders"), unique_topic("behaviour"));
    create_topic(bootstrap, &orders, 2).await.unwrap();
    create_topic(bootstrap, &behaviour, 2).await.unwrap();
    let dir = std::env::temp_dir().join(format!("pipewatch-prom-join-{}-{}", std::process::id(), unique_topic("t")));
    std::fs::create_dir_all(&dir).unwrap();
    let config_text = config(bootstrap, "earliest", &crate::join::join_config(&orders, &behaviour));
    let pw = Pipewatch::start(&config_text).await;
    let config_path = dir.join("pipewatch.toml");
    std::fs::write(&config_path, &config_text).unwrap();
    let rules = Command::new(PIPEWATCH).args(["rules", "--config"]).arg(&config_path).output().unwrap();
    assert!(rules.status.success(), "{}", String::from_utf8_lossy(&rules.stderr));
    let rules = String::from_utf8(rules.stdout).unwrap();
    assert!(rules.contains("pipewatch:join_completeness_ratio"), "{rules}");
    let prometheus = Prometheus::start(dir.clone(), &[("single", vec![pw.addr])], &rules).await;
    let scraped = |promql: &'static str| {
        let prometheus = &prometheus;
        async move {
            match prometheus.query(promql).await?.is_empty() {
                true => Err(format!("no {promql} yet")),
                false => Ok(()),
            }
        }
    };
    // Prometheus scrapes the counters at zero before anything is judged (a counter's first
    // sample is where increase() starts), then each value's once its orders wait
    let all_zero = r#"pipewatch_join_records_total{outcome="matched",segment=""} == 0"#;
    eventually("the counters scraped at zero", Duration::from_secs(60), || scraped(all_zero)).await;
    let base = now_ms() - 600_000;
    let producer = TestProducer::new(bootstrap);
    crate::join::produce_traffic(&producer, &orders, &behaviour, base, 2);
    let social_zero = r#"pipewatch_join_records_total{outcome="missing",value="social"} == 0"#;
    eventually("social's counters scraped at zero", Duration::from_secs(60), || scraped(social_zero)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    crate::join::advance_behaviour(&producer, &behaviour, base, 2);
    let by = eventually("the ratio per referral", Duration::from_secs(60), || async {
        let by = prometheus.by(r#"pipewatch:join_completeness_ratio{segment="referral"}"#, "value").await?;
        if by.len() == 2 && by[0].1 == 1.0 && by[1].1 == 0.0 {
            Ok(by)
        } else {
            Err(format!("{by:?}"))
        }
    })
    .await;
    assert_eq!(by, [("search".to_string(), 1.0), ("social".to_string(), 0.0)]);
    let all =
        prometheus.query(r#"pipewatch:join_completeness_ratio{pair="orders_behaviour",segment=""}"#).await.unwrap();
    let ratio: f64 = all[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!((ratio - 41.0 / 51.0).abs() < 1e-6, "41 of 51 orders matched: {ratio}");
    // the join_completeness rule fires for the value, as pipewatch's own does
    let alert = eventually("the join rule firing in Prometheus", Duration::from_secs(30), || async {
        let (_, body) = try_http_get(prometheus.addr, "/api/v1/alerts").await?;
        let v: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        let alerts = v["data"]["alerts"].as_array().cloned().unwrap_or_default();
        alerts
            .into_iter()
            .find(|a| a["labels"]["alertname"] == crate::join::ALERT && a["state"] == "firing")
            .ok_or_else(|| body.clone())
    })
    .await;
    let labels = &alert["labels"];
    assert_eq!(
        (&labels["segment"], &labels["value"], &labels["pair"]),
        (&json!("referral"), &json!("social"), &json!("orders_behaviour")),
        "{alert}"
    );
    assert_eq!(
        alert["annotations"]["summary"], "orders with referral=social: 0% matched behaviour, under 50%",
        "{alert}"
    );
    // the pair cause across replicas is pipewatch's: join_incomplete, on the follower
    assert_eq!((&labels["cause"], &labels["stream"]), (&json!("join_incomplete"), &json!("behaviour")), "{alert}");
    let causes = prometheus.query(r#"pipewatch:pair_cause{pair="orders_behaviour"}"#).await.unwrap();
    let named: Vec<(&Value, &Value, &Value)> =
        causes.iter().map(|c| (&c["metric"]["cause"], &c["metric"]["stream"], &c["value"][1])).collect();
    assert_eq!(named, [(&json!("join_incomplete"), &json!("behaviour"), &json!("1"))], "{causes:?}");
    assert_eq!(pw.status().await["pairs"][0]["cause"], "join_incomplete");
    pw.stop().await;
}
