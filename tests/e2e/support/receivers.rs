//! Alert receivers for the tests: a webhook sink that records every body it gets, and
//! Prometheus Alertmanager itself (Debian's `prometheus-alertmanager`) with the shipped
//! config, its timers shortened.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use serde_json::Value;

use super::{eventually, try_http_get, wait_ready_endpoint};

/// A webhook endpoint that records every body it gets.
pub struct Sink {
    pub url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    /// While set, `/flaky` answers 500 (and records nothing).
    pub failing: Arc<AtomicBool>,
}

impl Sink {
    pub async fn start() -> Self {
        Self::serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    pub fn serve(listener: tokio::net::TcpListener) -> Self {
        let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
        let failing = Arc::new(AtomicBool::new(false));
        let b = bodies.clone();
        let app = Router::new()
            .route(
                "/flaky",
                post({
                    let (b, failing) = (bodies.clone(), failing.clone());
                    move |body: String| {
                        let (b, failing) = (b.clone(), failing.clone());
                        async move {
                            if failing.load(Ordering::Relaxed) {
                                return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                            }
                            b.lock().unwrap().push(serde_json::from_str(&body).unwrap_or(Value::String(body)));
                            axum::http::StatusCode::OK
                        }
                    }
                }),
            )
            .route(
                "/",
                post(move |body: String| {
                    let b = b.clone();
                    async move {
                        b.lock().unwrap().push(serde_json::from_str(&body).unwrap_or(Value::String(body)));
                        "ok"
                    }
                }),
            )
            .route("/reject", post(|| async { (axum::http::StatusCode::BAD_REQUEST, "unknown field") }))
            .route(
                "/bearer",
                post({
                    let b = bodies.clone();
                    move |headers: axum::http::HeaderMap, body: String| {
                        let b = b.clone();
                        async move {
                            let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                            if auth != format!("Bearer {SINK_TOKEN}") {
                                return axum::http::StatusCode::UNAUTHORIZED;
                            }
                            b.lock().unwrap().push(serde_json::from_str(&body).unwrap_or(Value::String(body)));
                            axum::http::StatusCode::OK
                        }
                    }
                }),
            )
            .route("/broken", post(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "try later") }));
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, bodies, failing }
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// `(alertname, status)` of every alert in every body, in order.
    pub fn alerts(&self) -> Vec<(String, String)> {
        let bodies = self.bodies();
        let alerts = bodies.iter().flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default());
        alerts
            .map(|a| {
                let name = a["labels"]["alertname"].as_str().unwrap_or_default().to_string();
                (name, a["status"].as_str().unwrap_or_default().to_string())
            })
            .collect()
    }
}

/// The `[[receiver]]` entry of a webhook named `hook` at `url`.
pub fn webhook(url: &str) -> String {
    format!("[[receiver]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{url}\"\n")
}

/// The token the sink's `/bearer` route wants.
pub const SINK_TOKEN: &str = "sink-token-0815";

/// Prometheus Alertmanager with the shipped config, its timers shortened for tests.
pub struct Alertmanager {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// `--web.config.file` (TLS and basic auth), when it serves HTTPS.
    web_config: Option<PathBuf>,
}

impl Alertmanager {
    pub async fn start(webhook_url: &str) -> Self {
        let port = pipewatch_kafka::testing::free_port();
        let dir = std::env::temp_dir().join(format!("pipewatch-am-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let shipped =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/alertmanager/alertmanager.yml"))
                .expect("deploy/alertmanager/alertmanager.yml");
        let config = shipped
            .replace("http://localhost:5001/", webhook_url)
            .replace("group_wait: 30s", "group_wait: 1s")
            .replace("group_interval: 5m", "group_interval: 1s");
        std::fs::write(dir.join("alertmanager.yml"), config).unwrap();
        let mut am = Self { port, dir, child: None, web_config: None };
        am.spawn().await;
        am
    }

    /// The same, serving HTTPS with a certificate from `certs` (`certificates.sh`) and
    /// basic auth for `user` with `password`, in the exporter-toolkit's web config.
    pub async fn start_tls(webhook_url: &str, certs: &std::path::Path, user: &str, password: &str) -> Self {
        let mut am = Self::start(webhook_url).await;
        am.stop();
        let hash = bcrypt::hash(password, 4).unwrap();
        let web = am.dir.join("web.yml");
        std::fs::write(
            &web,
            format!(
                "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  {user}: {hash}\n",
                certs.join("server.crt").display(),
                certs.join("server.key").display()
            ),
        )
        .unwrap();
        am.web_config = Some(web);
        am.spawn().await;
        am
    }

    pub async fn spawn(&mut self) {
        let binary = ["prometheus-alertmanager", "alertmanager"]
            .into_iter()
            .find(|b| Command::new(b).arg("--version").output().is_ok())
            .expect("Alertmanager not found: apt-get install prometheus-alertmanager");
        let mut command = Command::new(binary);
        if let Some(web) = &self.web_config {
            command.arg(format!("--web.config.file={}", web.display()));
        }
        let child = command
            .arg(format!("--config.file={}", self.dir.join("alertmanager.yml").display()))
            .arg(format!("--storage.path={}", self.dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("alertmanager.log")).unwrap())
            .spawn()
            .expect("start Alertmanager");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        if self.web_config.is_none() {
            wait_ready_endpoint("Alertmanager", addr, Duration::from_secs(30)).await;
        } else {
            // HTTPS: listening is ready enough (pipewatch retries until it answers)
            eventually("Alertmanager to listen", Duration::from_secs(30), || async {
                tokio::net::TcpStream::connect(addr).await.map(drop).map_err(|e| e.to_string())
            })
            .await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The alerts Alertmanager holds (`GET /api/v2/alerts`).
    pub async fn alerts(&self) -> Vec<Value> {
        let addr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        match try_http_get(addr, "/api/v2/alerts").await {
            Ok((200, body)) => serde_json::from_str::<Vec<Value>>(&body).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    pub async fn alert(&self, name: &str) -> Option<Value> {
        self.alerts().await.into_iter().find(|a| a["labels"]["alertname"] == name)
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
