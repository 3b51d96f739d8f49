//! A real change-data-capture pipeline: PostgreSQL (logical decoding on) and a Kafka
//! Connect worker with Debezium's PostgreSQL connector against the shared broker, each
//! started once per test binary by the scripts in `tests/connect/`.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use pipewatch_kafka::testing::{free_port, KafkaBroker};

use super::{http_request, wait_for_script};

/// The user and password of the shared worker's REST API (basic auth), as
/// `tests/connect/connect.sh` sets them by default.
pub const CONNECT_USER: &str = "pipewatch";
pub const CONNECT_PASSWORD: &str = "connect-secret";

fn authorization() -> String {
    use base64::Engine as _;
    let pair = format!("{CONNECT_USER}:{CONNECT_PASSWORD}");
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

fn script(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/connect").join(name)
}

/// Runs `script` with `args` in the background (it stops when this process ends).
fn spawn(name: &str, args: &[String]) -> Result<Child, String> {
    Command::new("bash")
        .arg(script(name))
        .args(args)
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("failed to run tests/connect/{name}: {e}"))
}

/// A running PostgreSQL with the database `shop`.
pub struct Postgres {
    pub port: u16,
    dir: std::path::PathBuf,
    child: std::sync::Mutex<Option<Child>>,
}

/// The PostgreSQL every test of this binary shares (started on first use).
pub async fn postgres() -> &'static Postgres {
    tokio::task::spawn_blocking(|| {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(|| Postgres::start().unwrap_or_else(|e| panic!("{e}")))
    })
    .await
    .expect("postgres start panicked")
}

impl Postgres {
    /// A PostgreSQL of the caller's own (one the test may stop), on a port of its own.
    pub fn start() -> Result<Self, String> {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("pipewatch-postgres-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pg = Postgres { port, dir, child: std::sync::Mutex::new(None) };
        pg.run()?;
        Ok(pg)
    }

    fn run(&self) -> Result<(), String> {
        let mut child = spawn("postgres.sh", &["run".into(), self.port.to_string(), self.dir.display().to_string()])?;
        wait_for_script(&mut child, "PostgreSQL", || run_sql(self.port, "SELECT 1").map(drop))
            .map_err(|e| format!("{e}\nPostgreSQL is in Debian's postgresql package: apt-get install postgresql"))?;
        *self.child.lock().unwrap() = Some(child);
        Ok(())
    }

    /// Stops the server (its data kept) and waits until it is gone.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            // the script's trap stops the server
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data.
    pub fn start_again(&self) {
        self.run().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Runs `sql` in `shop`; its output.
    pub fn sql(&self, sql: &str) -> String {
        run_sql(self.port, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

fn run_sql(port: u16, sql: &str) -> Result<String, String> {
    let out = Command::new("bash")
        .arg(script("postgres.sh"))
        .args(["psql", &port.to_string(), sql])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// A running Kafka Connect worker (distributed mode) with Debezium's PostgreSQL connector
/// and the tests' discarding sink, its REST API behind basic auth.
pub struct Connect {
    pub addr: SocketAddr,
    _child: Child,
}

/// The Connect worker every test of this binary shares, against the shared broker.
pub async fn connect() -> &'static Connect {
    tokio::task::spawn_blocking(|| {
        static SHARED: OnceLock<Connect> = OnceLock::new();
        SHARED.get_or_init(|| {
            let bootstrap = KafkaBroker::shared();
            let port = free_port();
            let dir = std::env::temp_dir().join(format!("pipewatch-connect-{}-{port}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let args = ["run".into(), port.to_string(), bootstrap.to_string(), dir.display().to_string()];
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let started = spawn("connect.sh", &args).and_then(|mut child| {
                wait_for_script(&mut child, "Kafka Connect", || {
                    match rt.block_on(http_request(addr, "GET", "/connector-plugins", &authorization(), "")) {
                        Ok((200, body))
                            if body.contains("PostgresConnector") && body.contains("DiscardSinkConnector") =>
                        {
                            Ok(())
                        }
                        other => Err(format!("{other:?}")),
                    }
                })?;
                Ok(Connect { addr, _child: child })
            });
            started.unwrap_or_else(|e| {
                panic!(
                    "{e}\ntests/connect/connect.sh fetches Kafka Connect and Debezium from Maven Central (mvn) \
                     and runs them with java: `bash tests/connect/connect.sh fetch`"
                )
            })
        })
    })
    .await
    .expect("connect start panicked")
}

impl Connect {
    /// `method path` with `body` as the tests' user: the status code and the body.
    pub async fn rest(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        http_request(self.addr, method, path, &authorization(), body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path} at Kafka Connect: {e}"))
    }

    /// Creates connector `name` with `config` (`POST /connectors`).
    pub async fn create(&self, name: &str, config: serde_json::Value) {
        let body = serde_json::json!({ "name": name, "config": config }).to_string();
        let (status, answer) = self.rest("POST", "/connectors", &body).await;
        assert_eq!(status, 201, "creating connector {name}: {answer}");
    }

    /// `GET /connectors/{name}/status`.
    pub async fn status(&self, name: &str) -> serde_json::Value {
        let (_, body) = self.rest("GET", &format!("/connectors/{name}/status"), "").await;
        serde_json::from_str(&body).unwrap_or_default()
    }

    /// The URL pipewatch is given.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The tests' sink connector reading `topics` in group `connect-<name>`: it discards what
/// it reads; a record its JSON converter cannot read fails its task.
pub fn discard_sink(topics: &str) -> serde_json::Value {
    serde_json::json!({
        "connector.class": "dev.pipewatch.test.DiscardSinkConnector",
        "topics": topics,
        "tasks.max": "1",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "consumer.override.auto.offset.reset": "earliest",
    })
}

/// A stream named `orders` on `topic` that Debezium writes through Connect's JSON
/// converter: its event time the row's `created_at`, with `extra` settings.
pub fn debezium_stream(topic: &str, extra: &str) -> String {
    format!(
        "[[stream]]\nname = \"orders\"\ntopic = \"{topic}\"\n\
         event_time = {{ field = \"/payload/after/created_at\", format = \"rfc3339\" }}\n{extra}\n"
    )
}

/// A Debezium PostgreSQL connector's config for one table of `shop`, its topic
/// `<prefix>.public.<table>` created by Connect (one partition).
pub fn debezium_postgres(pg: &Postgres, prefix: &str, table: &str) -> serde_json::Value {
    serde_json::json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1",
        "database.port": pg.port.to_string(),
        "database.user": "postgres",
        "database.password": "unused",
        "database.dbname": "shop",
        "topic.prefix": prefix,
        "plugin.name": "pgoutput",
        "publication.autocreate.mode": "filtered",
        "publication.name": format!("{prefix}_publication"),
        "slot.name": format!("{prefix}_slot"),
        "table.include.list": format!("public.{table}"),
        "topic.creation.default.replication.factor": "1",
        "topic.creation.default.partitions": "1",
    })
}
