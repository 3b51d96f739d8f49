//! The shipped deployment files: Prometheus rules (generated output, promtool's checks
//! and unit tests), the docker compose stack (docker-compose parses it, every file it
//! mounts exists and passes its tool's check) and the Kubernetes manifests (validated
//! offline against the Kubernetes and prometheus-operator schemas).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PIPEWATCH: &str = env!("CARGO_BIN_EXE_pipewatch");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs a command, panicking with how to install it when it is missing.
fn run(program: &str, args: &[&str], dir: &Path, install: &str) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} could not run ({e}): {install}"))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn pipewatch_rules(dir: &Path, config: &str, format: &str) -> String {
    let out = run(PIPEWATCH, &["rules", "--config", config, "--format", format], dir, "");
    assert!(out.status.success(), "pipewatch rules --config {config}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// Without the leading comment lines (they name the config file).
fn body(rules: &str) -> String {
    rules.lines().skip_while(|l| l.starts_with('#')).collect::<Vec<_>>().join("\n")
}

/// The TOML config inside deploy/kubernetes/configmap.yaml (its `pipewatch.toml: |` block).
fn configmap_toml() -> String {
    let yaml = read("deploy/kubernetes/configmap.yaml");
    let mut lines = yaml.lines().skip_while(|l| l.trim() != "pipewatch.toml: |").skip(1);
    let mut toml = String::new();
    for line in lines.by_ref() {
        match line.strip_prefix("    ") {
            Some(rest) => toml.push_str(rest),
            None if line.trim().is_empty() => {}
            None => break,
        }
        toml.push('\n');
    }
    assert!(toml.contains("[kafka]"), "no pipewatch.toml in deploy/kubernetes/configmap.yaml");
    toml
}

#[test]
fn shipped_rules_are_the_output_for_the_shipped_configs_and_pass_promtool() {
    let root = repo();
    let shipped = read("deploy/prometheus/pipewatch.rules.yml");
    assert_eq!(
        pipewatch_rules(&root, "pipewatch.example.toml", "prometheus"),
        shipped,
        "deploy/prometheus/pipewatch.rules.yml is stale: regenerate it with \
         `pipewatch rules --config pipewatch.example.toml > deploy/prometheus/pipewatch.rules.yml`"
    );
    // docker compose loads the same file for its own config: their rules must agree.
    assert_eq!(
        body(&pipewatch_rules(&root, "deploy/compose/pipewatch.toml", "prometheus")),
        body(&shipped),
        "deploy/compose/pipewatch.toml's streams, pairs or alerts differ from pipewatch.example.toml's"
    );
    // The PrometheusRule is the output for the ConfigMap's config.
    let dir = tempdir("k8s-config");
    std::fs::write(dir.join("pipewatch.toml"), configmap_toml()).unwrap();
    assert_eq!(
        pipewatch_rules(&dir, "pipewatch.toml", "prometheusrule"),
        read("deploy/kubernetes/prometheusrule.yaml"),
        "deploy/kubernetes/prometheusrule.yaml is stale: regenerate it from the ConfigMap's pipewatch.toml with \
         `pipewatch rules --config pipewatch.toml --format prometheusrule`"
    );

    let promtool = "promtool is in Debian's prometheus package: apt-get install prometheus";
    let prom_dir = root.join("deploy/prometheus");
    let out = run("promtool", &["check", "rules", "pipewatch.rules.yml"], &prom_dir, promtool);
    assert!(out.status.success(), "promtool check rules: {}", text(&out));
    let out = run("promtool", &["test", "rules", "pipewatch.rules.test.yml"], &prom_dir, promtool);
    assert!(out.status.success() && text(&out).contains("SUCCESS"), "promtool test rules: {}", text(&out));
}

/// The rules for a rule of every kind (volume anomaly, segment silence, consumer lag, the
/// sync lag a consumer sees and the connector kinds included), at both granularities, pass promtool's check:
/// their PromQL parses and their annotation templates too.
#[test]
fn rules_of_every_alert_kind_pass_promtool() {
    let example = read("pipewatch.example.toml")
        .replace(
            "[[stream]]\nname = \"orders\"",
            "[[stream]]\nname = \"orders\"\nbaseline = { history = \"14d\" }\nmin_rate = 1.0",
        )
        .replace(
            "follower = \"behaviour\"\n",
            "follower = \"behaviour\"\njoin = { leader_key = \"/customer_id\", follower_key = \"/user_id\" }\n",
        );
    let extra = r#"
[[consumer]]
name = "analytics"
group = "analytics-job"
streams = ["orders", "behaviour"]
[[alert]]
name = "OrdersVolume"
kind = "volume_anomaly"
target = "orders"
impact = "x"
[[alert]]
name = "OrdersSlow"
kind = "rate_low"
target = "orders"
threshold = 1.0
clear = 2.0
impact = "x"
[[alert]]
name = "OrdersFlood"
kind = "rate_high"
target = "orders"
threshold = 1000.0
impact = "x"
[[alert]]
name = "OrdersSilent"
kind = "silence"
target = "orders"
threshold = "5m"
impact = "x"
[[alert]]
name = "OrdersInvalid"
kind = "invalid_ratio"
target = "orders"
threshold = 0.05
impact = "x"
[[alert]]
name = "AnalyticsBehind"
kind = "consumer_lag"
target = "analytics"
threshold = "10m"
impact = "x"
[[alert]]
name = "AnalyticsOutOfSync"
kind = "consumer_sync_lag"
target = "analytics"
pair = "orders_behaviour"
threshold = "15m"
impact = "x"
[[alert]]
name = "AnalyticsSinkPaused"
kind = "connector_paused"
target = "analytics"
impact = "x"
[[alert]]
name = "AnalyticsStopped"
kind = "consumer_stopped"
target = "analytics"
impact = "x"
[[alert]]
name = "DiscoveredJobBehind"
kind = "consumer_lag"
target = "discovered"
threshold = "10m"
impact = "x"
[[alert]]
name = "DiscoveredJobStopped"
kind = "consumer_stopped"
target = "discovered"
impact = "x"
[[alert]]
name = "OrdersWithoutBehaviour"
kind = "join_completeness"
target = "orders_behaviour"
threshold = 0.5
min_judged = 50
impact = "x"
[discovery]
groups = { include = ["^"] }
"#;
    let promtool = "promtool is in Debian's prometheus package: apt-get install prometheus";
    for granularity in ["partition", "stream"] {
        let dir = tempdir(&format!("every-kind-{granularity}"));
        let config = format!("{example}{extra}")
            .replace("granularity = \"partition\"", &format!("granularity = \"{granularity}\""));
        std::fs::write(dir.join("pipewatch.toml"), config).unwrap();
        let rules = pipewatch_rules(&dir, "pipewatch.toml", "prometheus");
        // PipewatchDown, KafkaUnreachable, ConnectUnreachable, the example's 4, these 12
        assert_eq!(rules.matches("\n      - alert: ").count(), 3 + 4 + 12, "{rules}");
        std::fs::write(dir.join("rules.yml"), &rules).unwrap();
        let out = run("promtool", &["check", "rules", "rules.yml"], &dir, promtool);
        assert!(out.status.success(), "promtool check rules ({granularity}): {}\n{rules}", text(&out));
        // The consumer rules on a replica's series: one alert per discovered consumer,
        // none for a configured one, none while an upstream fault or a stream catching
        // up holds it back; the configured consumer's own rules, held back alike.
        std::fs::write(dir.join("rules.test.yml"), DISCOVERED_RULES_TEST).unwrap();
        let out = run("promtool", &["test", "rules", "rules.test.yml"], &dir, promtool);
        assert!(
            out.status.success() && text(&out).contains("SUCCESS"),
            "promtool test rules ({granularity}): {}\n{rules}",
            text(&out)
        );
    }
}

/// `promtool test rules` input for [`rules_of_every_alert_kind_pass_promtool`]: consumers
/// as one replica serves them.
const DISCOVERED_RULES_TEST: &str = r#"
rule_files: [rules.yml]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'pipewatch_kafka_up{job="pw",instance="a"}'
        values: '1x20'
      - series: 'pipewatch_consumer_cause{job="pw",instance="a",consumer="analytics",group="analytics-job",cause="consumer_stopped",discovered="false"}'
        values: '1x20'
      - series: 'pipewatch_consumer_cause{job="pw",instance="a",consumer="billing-job",group="billing-job",cause="consumer_stopped",discovered="true"}'
        values: '1x20'
      - series: 'pipewatch_consumer_cause{job="pw",instance="a",consumer="search-indexer",group="search-indexer",cause="consumer_lagging",discovered="true"}'
        values: '1x20'
      - series: 'pipewatch_consumer_cause{job="pw",instance="a",consumer="orders-reader",group="orders-reader",cause="upstream_fault",discovered="true"}'
        values: '1x20'
      - series: 'pipewatch_consumer_cause{job="pw",instance="a",consumer="late-reader",group="late-reader",cause="consumer_lagging",discovered="true"}'
        values: '1x20'
      - series: 'pipewatch_consumer_stalled_seconds{job="pw",instance="a",consumer="analytics",group="analytics-job"}'
        values: '400x20'
      - series: 'pipewatch_consumer_stalled_seconds{job="pw",instance="a",consumer="billing-job",group="billing-job"}'
        values: '400x20'
      - series: 'pipewatch_consumer_stalled_seconds{job="pw",instance="a",consumer="search-indexer",group="search-indexer"}'
        values: '0x20'
      - series: 'pipewatch_consumer_stream_lag_seconds{job="pw",instance="a",consumer="analytics",group="analytics-job",stream="orders"}'
        values: '2000x20'
      - series: 'pipewatch_consumer_stream_lag_seconds{job="pw",instance="a",consumer="billing-job",group="billing-job",stream="orders"}'
        values: '2000x20'
      - series: 'pipewatch_consumer_stream_lag_seconds{job="pw",instance="a",consumer="search-indexer",group="search-indexer",stream="orders"}'
        values: '1000x20'
      - series: 'pipewatch_consumer_stream_lag_seconds{job="pw",instance="a",consumer="orders-reader",group="orders-reader",stream="orders"}'
        values: '5000x20'
      - series: 'pipewatch_consumer_stream_lag_seconds{job="pw",instance="a",consumer="late-reader",group="late-reader",stream="behaviour"}'
        values: '3000x20'
      - series: 'pipewatch_stream_cause{job="pw",instance="a",stream="behaviour",cause="catching_up"}'
        values: '1x20'
    # AnalyticsBehind waits: analytics reads behaviour, which catches up.
    promql_expr_test:
      - expr: 'ALERTS{alertstate="firing", alertname=~"Discovered.*|Analytics.*"}'
        eval_time: 2m
        exp_samples:
          - labels: 'ALERTS{alertname="AnalyticsStopped",alertstate="firing",severity="page",cause="consumer_stopped",consumer="analytics",group="analytics-job",job="pw"}'
            value: 1
          - labels: 'ALERTS{alertname="DiscoveredJobBehind",alertstate="firing",severity="warning",cause="consumer_stopped",consumer="billing-job",group="billing-job",job="pw"}'
            value: 1
          - labels: 'ALERTS{alertname="DiscoveredJobBehind",alertstate="firing",severity="warning",cause="consumer_lagging",consumer="search-indexer",group="search-indexer",job="pw"}'
            value: 1
          - labels: 'ALERTS{alertname="DiscoveredJobStopped",alertstate="firing",severity="page",cause="consumer_stopped",consumer="billing-job",group="billing-job",job="pw"}'
            value: 1
"#;

#[test]
fn the_compose_file_parses_and_every_file_it_mounts_passes_its_check() {
    let root = repo();
    let deploy = root.join("deploy");
    let out = run(
        "docker-compose",
        &["-f", "docker-compose.yml", "config"],
        &deploy,
        "docker-compose is in Debian's docker-compose package: apt-get install docker-compose",
    );
    assert!(out.status.success(), "docker-compose config: {}", text(&out));
    let resolved = String::from_utf8_lossy(&out.stdout).to_string();
    for service in [
        "redpanda",
        "topics",
        "pipewatch",
        "postgres",
        "connect",
        "connector",
        "generator",
        "prometheus",
        "alertmanager",
        "grafana",
    ] {
        assert!(resolved.contains(&format!("\n  {service}:\n")), "service {service} missing:\n{resolved}");
    }
    // Every bind mount's source exists (docker would create an empty folder instead).
    let mut mounts = 0;
    for line in resolved.lines() {
        // bind mounts resolve to absolute paths in the repository
        if let Some(spec) = line.trim().strip_prefix("- ").filter(|s| s.starts_with(root.to_str().unwrap())) {
            let source = spec.split(':').next().unwrap();
            assert!(Path::new(&source).exists(), "mounted {source} does not exist");
            mounts += 1;
        }
    }
    assert!(mounts >= 7, "expected the config, rules, Alertmanager and Grafana mounts:\n{resolved}");

    let out = run(PIPEWATCH, &["check-config", "--config", "compose/pipewatch.toml"], &deploy, "");
    assert!(out.status.success(), "deploy/compose/pipewatch.toml: {}", text(&out));
    let out = run("promtool", &["check", "config", "prometheus/prometheus.yml"], &deploy, "apt-get install prometheus");
    assert!(out.status.success(), "promtool check config: {}", text(&out));
    let out = run(
        "amtool",
        &["check-config", "alertmanager/alertmanager.yml"],
        &deploy,
        "amtool is in Debian's prometheus-alertmanager package: apt-get install prometheus-alertmanager",
    );
    assert!(out.status.success(), "amtool check-config: {}", text(&out));
    // The generator's orders go into PostgreSQL (its table as compose creates it is the
    // one the generator writes), its default faults are `pipewatch generate`'s own flags;
    // Debezium's connector reads that table into the topic pipewatch watches.
    // (docker-compose folds the long line: its pieces up to the next key)
    let generate: Vec<&str> = resolved
        .lines()
        .skip_while(|l| !l.starts_with("  generator:"))
        .skip_while(|l| !l.contains("pipewatch generate "))
        .take_while(|l| !l.trim_end().ends_with(':'))
        .map(str::trim)
        .collect();
    let generate = generate.join(" ");
    for part in
        ["--orders-format sql --orders-table orders", "--fault-after 5m --silent-partition behaviour:2", "| psql"]
    {
        assert!(generate.contains(part), "{part:?} not in {generate}");
    }
    let ddl = read("deploy/compose/orders.sql");
    let created = ddl.lines().find(|l| l.starts_with("CREATE TABLE")).expect("the orders table");
    assert_eq!(created, format!("{};", pipewatch_traffic::ORDERS_TABLE_SQL.replace("{table}", "orders")));
    let cdc: serde_json::Value = serde_json::from_str(&read("deploy/compose/orders-cdc.json")).unwrap();
    let topic = format!("{}.{}", cdc["topic.prefix"].as_str().unwrap(), cdc["table.include.list"].as_str().unwrap());
    assert!(read("deploy/compose/pipewatch.toml").contains(&format!("topic = \"{topic}\"")), "{topic}");

    // Grafana's provisioning points at the dashboards folder it mounts.
    let dashboards = read("dashboards/provisioning/dashboards/pipewatch.yml");
    assert!(dashboards.contains("path: /var/lib/grafana/dashboards/pipewatch"), "{dashboards}");
    assert!(read("dashboards/provisioning/datasources/prometheus.yml").contains("url: http://prometheus:9090"));
}

#[test]
fn the_generator_rejects_bad_fault_knobs_with_the_flag_named() {
    for (args, needle) in [
        (&["--silent-partition", "orders"][..], "--silent-partition"),
        (&["--stop-stream", "carts"][..], "expected orders or behaviour"),
        (&["--orders-format", "sql", "--orders-table", "orders; drop"][..], "expected a table name"),
        (&["--invalid-share", "1.5"][..], "expected a number from 0 to 1"),
        (&["--rate", "0"][..], "expected a positive number"),
        (&["--behaviour-delay", "8 hours"][..], "--behaviour-delay"),
    ] {
        let out = run(PIPEWATCH, &[&["generate"][..], args].concat(), &repo(), "");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(needle), "{args:?}: {}", text(&out));
    }
}

#[test]
fn the_generator_names_the_cluster_it_cannot_reach() {
    let port = pipewatch_kafka::testing::free_port().to_string();
    let bootstrap = format!("127.0.0.1:{port}");
    let out = run(PIPEWATCH, &["generate", "--bootstrap-servers", &bootstrap, "--duration", "2s"], &repo(), "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = text(&out);
    assert!(err.contains(&format!("is the cluster at {bootstrap} reachable")) && err.contains("topic orders"), "{err}");
}

#[test]
fn the_kubernetes_manifests_validate_against_the_kubernetes_schemas_offline() {
    let root = repo();
    let out = run("bash", &["tests/k8s/fetch-crds.sh"], &root, "bash is needed");
    assert!(out.status.success(), "fetching the prometheus-operator CRDs: {}", text(&out));
    let crds = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut args = vec!["tests/k8s/validate.py".to_string(), "--crds".into(), crds];
    let mut manifests: Vec<String> = std::fs::read_dir(root.join("deploy/kubernetes"))
        .unwrap()
        .map(|e| format!("deploy/kubernetes/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|p| p.ends_with(".yaml"))
        .collect();
    manifests.sort();
    assert_eq!(manifests.len(), 5, "{manifests:?}");
    args.extend(manifests);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run("python3", &args, &root, "pip install kubernetes-validate==1.31.0");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("5 documents, 0 problems"), "{}", text(&out));

    // The ConfigMap's config is valid, and has no receiver: with replicas the
    // PrometheusRule alerts, since each replica sees only its partitions.
    let dir = tempdir("k8s-check");
    std::fs::write(dir.join("pipewatch.toml"), configmap_toml()).unwrap();
    let out = run(PIPEWATCH, &["check-config", "--config", "pipewatch.toml"], &dir, "");
    assert!(out.status.success(), "the ConfigMap's pipewatch.toml: {}", text(&out));
    assert!(!configmap_toml().contains("[[receiver]]"));
    let deployment = read("deploy/kubernetes/deployment.yaml");
    assert!(deployment.contains("replicas: 2") && deployment.contains("runAsNonRoot: true"));
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pipewatch-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
