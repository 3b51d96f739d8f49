//! Test helpers: a real Apache Kafka broker (started by `tests/broker/kafka.sh`, or the
//! one named by `PIPEWATCH_TEST_BOOTSTRAP`), topics and a producer. For tests only.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// Set to `host:port` to test against a running broker (e.g. Redpanda from docker
/// compose) instead of starting Apache Kafka.
pub const BOOTSTRAP_ENV: &str = "PIPEWATCH_TEST_BOOTSTRAP";

const HOW_TO_GET_ONE: &str = "the end-to-end tests need Apache Kafka: they start it with \
tests/broker/kafka.sh (needs java 17+ and mvn: apt-get install openjdk-17-jre-headless maven), \
or set PIPEWATCH_TEST_BOOTSTRAP=host:port to use a running broker";

/// A Kafka broker this test process started; stopped on drop.
pub struct KafkaBroker {
    /// The PLAINTEXT listener (on a secured broker: the tests' own, a super user).
    pub bootstrap: String,
    /// A secured broker's SASL_SSL listener (see [`KafkaBroker::start_secured`]).
    pub secured: Option<Secured>,
    child: Option<Child>,
    dir: PathBuf,
    /// PLAINTEXT, controller and SASL_SSL ports: a restart uses the same.
    ports: (u16, u16, Option<u16>),
}

/// How to reach a secured broker's SASL_SSL listener as user [`Secured::USER`].
#[derive(Debug, Clone)]
pub struct Secured {
    pub bootstrap: String,
    /// The CA certificate (PEM) that signed the broker's certificate.
    pub ca: PathBuf,
}

impl Secured {
    /// The user tests connect as (SCRAM-SHA-512 or PLAIN); no right until ACLs give it.
    pub const USER: &'static str = "pipewatch";
    /// Its password (the default of `kafka.sh`).
    pub const PASSWORD: &'static str = "pipewatch-secret";

    /// librdkafka properties for this listener with `mechanism` and `password`.
    pub fn properties(&self, mechanism: &str, password: &str) -> Vec<(String, String)> {
        [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", mechanism),
            ("sasl.username", Self::USER),
            ("sasl.password", password),
            ("ssl.ca.location", &self.ca.display().to_string()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/broker/kafka.sh")
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("no free port on 127.0.0.1")
}

impl KafkaBroker {
    /// The broker shared by the tests of this process: `PIPEWATCH_TEST_BOOTSTRAP`, or
    /// Apache Kafka started once. Panics with how to get one if none can be had.
    pub fn shared() -> &'static str {
        static SHARED: OnceLock<(String, Option<KafkaBroker>)> = OnceLock::new();
        &SHARED
            .get_or_init(|| match std::env::var(BOOTSTRAP_ENV) {
                Ok(b) if !b.is_empty() => {
                    wait_ready(&b, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{BOOTSTRAP_ENV}={b}: {e}"));
                    (b, None)
                }
                _ => {
                    let broker = KafkaBroker::start(free_port()).unwrap_or_else(|e| panic!("{e}\n{HOW_TO_GET_ONE}"));
                    (broker.bootstrap.clone(), Some(broker))
                }
            })
            .0
    }

    /// The secured broker shared by the tests of this process, started once (always
    /// Apache Kafka by `kafka.sh run-secure`: `PIPEWATCH_TEST_BOOTSTRAP` is not used).
    pub fn shared_secured() -> &'static KafkaBroker {
        static SHARED: OnceLock<KafkaBroker> = OnceLock::new();
        SHARED
            .get_or_init(|| KafkaBroker::start_secured(free_port()).unwrap_or_else(|e| panic!("{e}\n{HOW_TO_GET_ONE}")))
    }

    /// Starts a new Apache Kafka on `port` and waits until it answers.
    pub fn start(port: u16) -> Result<Self, String> {
        Self::launch(port, None)
    }

    /// Starts a new Apache Kafka with a SASL_SSL listener (SCRAM-SHA-512 and PLAIN, the
    /// StandardAuthorizer, no ACL) besides the PLAINTEXT one on `port`.
    pub fn start_secured(port: u16) -> Result<Self, String> {
        Self::launch(port, Some(free_port()))
    }

    fn launch(port: u16, secured: Option<u16>) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("pipewatch-kafka-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
        let ca = dir.join("ca.pem");
        let secured_listener = secured.map(|s| Secured { bootstrap: format!("127.0.0.1:{s}"), ca });
        let mut broker = KafkaBroker {
            bootstrap: format!("127.0.0.1:{port}"),
            secured: secured_listener,
            child: None,
            dir,
            ports: (port, free_port(), secured),
        };
        broker.run()?;
        Ok(broker)
    }

    /// Runs `kafka.sh` on this broker's ports and directory and waits until it answers.
    fn run(&mut self) -> Result<(), String> {
        let (port, cport, secured) = self.ports;
        let mut command = Command::new("bash");
        command.arg(script());
        match secured {
            None => command.args(["run", &port.to_string()]),
            Some(s) => command.args(["run-secure", &port.to_string(), &s.to_string()]),
        };
        let child = command
            .arg(cport.to_string())
            .arg(&self.dir)
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("failed to run {}: {e}", script().display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            // The script exits early when the jars cannot be fetched or formatting fails.
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            let error = match (exited, wait_ready(&self.bootstrap, Duration::from_secs(2))) {
                (_, Ok(())) => return Ok(()),
                (Some(status), _) => format!("tests/broker/kafka.sh exited ({status})"),
                (None, Err(e)) if Instant::now() > deadline => format!("no answer within 120s: {e}"),
                (None, Err(_)) => continue,
            };
            let mut logs = String::new();
            for name in ["format.log", "kafka.log"] {
                let log = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
                logs.push_str(&format!("\n--- {name}\n{}", tail.join("\n")));
            }
            self.stop();
            return Err(format!("Apache Kafka did not start on {}: {error}{logs}", self.bootstrap));
        }
    }

    /// Kills the broker's JVM with SIGKILL (a crash: nothing flushed, no controlled
    /// shutdown), keeping its data for [`KafkaBroker::restart`].
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let script = child.id();
            let children =
                std::fs::read_to_string(format!("/proc/{script}/task/{script}/children")).unwrap_or_default();
            for jvm in children.split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", jvm]).status();
            }
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same ports, with the data it had.
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill_hard();
        self.run()
    }

    /// Runs `kafka-acls` (Kafka's AclCommand) against this broker's PLAINTEXT listener,
    /// e.g. `["--add", "--allow-principal", "User:pipewatch", "--operation", "Read",
    /// "--topic", "orders"]`; its output, or why it failed.
    pub fn acls(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("bash")
            .arg(script())
            .args(["acls", "--bootstrap-server", &self.bootstrap])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("failed to run {}: {e}", script().display()))?;
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!("kafka-acls {args:?} failed ({}): {text}", out.status))
        }
    }

    /// The process id of `kafka.sh` (the broker's JVM is its child), while it runs.
    pub fn process_id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the broker (SIGTERM to the script, which stops the JVM) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until the cluster answers a metadata request.
pub fn wait_ready(bootstrap: &str, timeout: Duration) -> Result<(), String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "0")
        .create()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    loop {
        match consumer.fetch_metadata(None, Duration::from_secs(2)) {
            Ok(md) if !md.brokers().is_empty() => return Ok(()),
            Ok(_) => {}
            Err(e) if Instant::now() > deadline => return Err(format!("no answer within {timeout:?}: {e}")),
            Err(_) => {}
        }
        if Instant::now() > deadline {
            return Err(format!("no broker listed within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The offsets `group` has committed on each partition of `topic` (`None`: none).
pub fn committed_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Result<Vec<Option<i64>>, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .map_err(|e| e.to_string())?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let found = consumer.committed_offsets(tpl, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    Ok(found
        .elements()
        .iter()
        .map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => Some(o),
            _ => None,
        })
        .collect())
}

/// A topic name no other test (or earlier run) uses.
pub fn unique_topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{prefix}-{}-{nanos:x}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Creates a topic and waits until its metadata shows every partition.
pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32) -> Result<(), String> {
    create_topic_with(bootstrap, name, partitions, &[]).await
}

/// Creates a topic with topic configs (e.g. `retention.ms`) and waits for its partitions.
pub async fn create_topic_with(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().map_err(|e| e.to_string())?;
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = admin
        .create_topics([&topic], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))))
        .await
        .map_err(|e| e.to_string())?;
    for r in results {
        r.map_err(|(t, e)| format!("failed to create topic {t}: {e}"))?;
    }
    wait_partitions(bootstrap, name, partitions)
}

/// Deletes a consumer group with no members, its committed offsets with it (DeleteGroups,
/// as `kafka-consumer-groups --delete` does).
pub async fn delete_group(bootstrap: &str, group: &str) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().map_err(|e| e.to_string())?;
    let results = admin
        .delete_groups(&[group], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))))
        .await
        .map_err(|e| e.to_string())?;
    for r in results {
        r.map_err(|(g, e)| format!("failed to delete group {g}: {e}"))?;
    }
    Ok(())
}

/// Grows `name` to `partitions` partitions (CreatePartitions), and waits until the
/// cluster shows them.
pub async fn add_partitions(bootstrap: &str, name: &str, partitions: usize) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().map_err(|e| e.to_string())?;
    let grow = NewPartitions::new(name, partitions);
    let results = admin
        .create_partitions([&grow], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))))
        .await
        .map_err(|e| e.to_string())?;
    for r in results {
        r.map_err(|(t, e)| format!("failed to add partitions to {t}: {e}"))?;
    }
    wait_partitions(bootstrap, name, partitions as i32)
}

fn wait_partitions(bootstrap: &str, name: &str, partitions: i32) -> Result<(), String> {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().map_err(|e| e.to_string())?;
    // thousands of partitions take a while on a loaded 2-core machine
    let wait = Duration::from_secs(30) + Duration::from_millis(30 * partitions.max(0) as u64);
    let deadline = Instant::now() + wait;
    loop {
        if let Ok(md) = consumer.fetch_metadata(Some(name), Duration::from_secs(2)) {
            if md.topics().iter().any(|t| t.error().is_none() && t.partitions().len() == partitions as usize) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("topic {name} not visible with {partitions} partitions after {} s", wait.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Deletes a topic (the broker must allow it, as the test broker does).
pub async fn delete_topic(bootstrap: &str, name: &str) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().map_err(|e| e.to_string())?;
    let results = admin
        .delete_topics(&[name], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))))
        .await
        .map_err(|e| e.to_string())?;
    for r in results {
        r.map_err(|(t, e)| format!("failed to delete topic {t}: {e}"))?;
    }
    Ok(())
}

/// Deletes the records of `topic`/`partition` before `offset`, as retention would.
pub async fn delete_records_before(bootstrap: &str, topic: &str, partition: i32, offset: i64) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().map_err(|e| e.to_string())?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, rdkafka::Offset::Offset(offset)).map_err(|e| e.to_string())?;
    let done = admin
        .delete_records(&tpl, &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))))
        .await
        .map_err(|e| e.to_string())?;
    for e in done.elements() {
        e.error().map_err(|err| format!("failed to delete records of {topic}/{partition}: {err}"))?;
    }
    Ok(())
}

/// A producer for test traffic.
pub struct TestProducer {
    producer: BaseProducer,
}

impl TestProducer {
    pub fn new(bootstrap: &str) -> Self {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("linger.ms", "5")
            // back at once when a broker restarts (the fault tests)
            .set("reconnect.backoff.max.ms", "500")
            .create()
            .expect("failed to create the test producer");
        Self { producer }
    }

    /// Sends one record (payload `None`: a tombstone) to a partition and waits for it.
    pub fn send(&self, topic: &str, partition: i32, payload: Option<&[u8]>) {
        self.send_at(topic, partition, payload, None);
    }

    /// Sends one record with its Kafka timestamp set (`None`: the producer's clock).
    pub fn send_at(&self, topic: &str, partition: i32, payload: Option<&[u8]>, timestamp: Option<i64>) {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).partition(partition);
        if let Some(p) = payload {
            record = record.payload(p);
        }
        if let Some(t) = timestamp {
            record = record.timestamp(t);
        }
        let mut record = record;
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((e, r)) => {
                    assert!(
                        matches!(e.rdkafka_error_code(), Some(rdkafka::error::RDKafkaErrorCode::QueueFull)),
                        "failed to produce to {topic}/{partition}: {e}"
                    );
                    self.producer.poll(Duration::from_millis(50));
                    record = r;
                }
            }
        }
        self.producer.poll(Duration::ZERO);
    }

    /// Writes a past: for each hour from `from_hour` on, `per_hour(hour)` records to each
    /// partition, spread evenly over the hour, up to (not including) `until` (ms since the
    /// epoch: the current hour is written as far as now, so that it completes at its rate
    /// when a test runs into the next hour); their Kafka timestamp and `{"ts": …}` event
    /// time set to when they happened. Returns the records written. The topic needs a
    /// retention longer than the past.
    pub fn history(
        &self,
        topic: &str,
        partitions: i32,
        from_hour: i64,
        until: i64,
        per_hour: impl Fn(i64) -> u64,
    ) -> u64 {
        const HOUR_MS: i64 = 3_600_000;
        let mut written = 0;
        for hour in from_hour..=until.div_euclid(HOUR_MS) {
            let n = per_hour(hour);
            for i in 0..n {
                let at = hour * HOUR_MS + (i as i64 * HOUR_MS) / n as i64;
                if at >= until {
                    break;
                }
                let payload = format!(r#"{{"ts":{at}}}"#);
                for p in 0..partitions {
                    self.send_at(topic, p, Some(payload.as_bytes()), Some(at));
                }
                written += partitions as u64;
            }
        }
        self.flush();
        written
    }

    /// Waits until everything sent is acknowledged.
    pub fn flush(&self) {
        self.producer.flush(Duration::from_secs(30)).expect("failed to flush the test producer");
    }

    /// Waits up to `timeout` for what was sent to be acknowledged; what is not stays
    /// queued (for traffic that must outlive a broker's outage).
    pub fn try_flush(&self, timeout: Duration) -> Result<(), String> {
        self.producer.flush(timeout).map_err(|e| e.to_string())
    }
}
