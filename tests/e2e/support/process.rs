//! pipewatch as the tests run it: in this process (`Pipewatch`, on a random port) or as
//! the `pipewatch run` binary with its log (`Daemon`); its HTTP interface read as a
//! client would (plain, HTTPS, basic auth), and its `/metrics` parsed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pipewatch::config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::eventually;

/// pipewatch running in this process, on a random port.
pub struct Pipewatch {
    pub addr: SocketAddr,
    token: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Pipewatch {
    pub async fn start(config_toml: &str) -> Self {
        let config = config::parse(config_toml).unwrap_or_else(|e| panic!("test config invalid: {e}\n{config_toml}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let token = CancellationToken::new();
        let task = tokio::spawn(pipewatch::app::run(config, listener, token.clone().cancelled_owned()));
        Self { addr, token, task }
    }

    pub async fn stop(self) {
        self.token.cancel();
        self.task.await.expect("pipewatch task panicked").expect("pipewatch::app::run failed");
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path).await
    }

    pub async fn metrics(&self) -> Metrics {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200, "{body}");
        Metrics(body)
    }

    /// `/api/v1/status`, parsed.
    pub async fn status(&self) -> serde_json::Value {
        let (status, body) = self.get("/api/v1/status").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("status is not JSON ({e}): {body}"))
    }

    /// The partitions of `stream` assigned to this pipewatch, as its status lists them
    /// (at either metrics granularity), with the status entry of each.
    pub async fn assigned(&self, stream: &str) -> std::collections::BTreeMap<String, serde_json::Value> {
        let status = self.status().await;
        let streams = status["streams"].as_array().cloned().unwrap_or_default();
        let st = streams.into_iter().find(|s| s["name"] == stream).unwrap_or_default();
        let partitions = st["partitions"].as_array().cloned().unwrap_or_default();
        partitions.into_iter().map(|p| (p["partition"].to_string(), p)).collect()
    }

    /// Waits until `stream`'s cause is `want`; returns the metrics that showed it.
    pub async fn wait_cause(&self, stream: &str, want: &str, timeout: Duration) -> Metrics {
        eventually(&format!("{stream} cause {want}"), timeout, || async {
            let m = self.metrics().await;
            match m.cause(stream) {
                Some(c) if c == want => Ok(m),
                other => {
                    // what the diagnosis saw: each partition's log end, position, read time
                    let detail: Vec<&str> =
                        m.0.lines()
                            .filter(|l| {
                                (l.starts_with("pipewatch_partition_") || l.starts_with("pipewatch_stream_silence"))
                                    && l.contains(&format!("stream=\"{stream}\""))
                            })
                            .collect();
                    Err(format!("cause {other:?}\n{}", detail.join("\n")))
                }
            }
        })
        .await
    }

    /// Waits until /readyz answers `readyz`, `pipewatch_kafka_up` is `kafka_up` and
    /// `stream`'s cause is `cause`, all at once.
    pub async fn wait_state(&self, readyz: u16, kafka_up: f64, stream: &str, cause: &str, timeout: Duration) {
        let what = format!("/readyz {readyz}, kafka_up {kafka_up}, {stream} cause {cause}");
        eventually(&what, timeout, || async {
            let m = self.metrics().await;
            let seen = (self.get("/readyz").await.0, m.value("pipewatch_kafka_up", &[]), m.cause(stream));
            if seen == (readyz, Some(kafka_up), Some(cause.to_string())) {
                Ok(())
            } else {
                Err(format!("{seen:?}"))
            }
        })
        .await
    }
}

/// A plain HTTP/1.1 GET; panics if nothing answers.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    try_http_get(addr, path).await.unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
}

/// A plain HTTP/1.1 GET: the status code and the body.
pub async fn try_http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    request(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")).await
}

/// A plain HTTP/1.1 request with an `Authorization` header and a JSON body (empty: none).
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    authorization: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: {authorization}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    request(addr, &format!("{head}{body}")).await
}

/// A TCP proxy the test can cut: while down, every connection through it is closed and
/// new ones are closed at once (what is behind it unreachable, its state kept).
pub struct CutProxy {
    pub addr: SocketAddr,
    down: tokio::sync::watch::Sender<bool>,
}

impl CutProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (down, watch_down) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = watch_down.clone();
                if *cut.borrow() {
                    let _ = client.shutdown().await;
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut upstream) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                        _ = cut.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        Self { addr, down }
    }

    /// Cuts the target off (`true`) or lets it through again.
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }
}

/// A plain HTTP/1.1 POST of a JSON body: the status code and the response body.
pub async fn http_post_json(addr: SocketAddr, path: &str, body: &str) -> Result<(u16, String), String> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    request(addr, &format!("{head}{body}")).await
}

async fn request(addr: SocketAddr, request: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    s.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
    response(buf)
}

/// An HTTPS GET trusting `ca` (a PEM file), with an `Authorization` header if given:
/// the status code and the body.
pub async fn https_get(
    addr: SocketAddr,
    ca: &std::path::Path,
    path: &str,
    authorization: Option<&str>,
) -> Result<(u16, String), String> {
    let pem = std::fs::read(ca).map_err(|e| e.to_string())?;
    let ca = native_tls::Certificate::from_pem(&pem).map_err(|e| e.to_string())?;
    let tls = native_tls::TlsConnector::builder().add_root_certificate(ca).build().map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut s = tokio_native_tls::TlsConnector::from(tls).connect("localhost", tcp).await.map_err(|e| e.to_string())?;
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    // a server that closes without TLS close_notify is fine: what arrived counts
    let _ = s.read_to_end(&mut buf).await;
    response(buf)
}

/// `Authorization: Basic …` for `user` and `password`.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// A test CA and a server certificate for 127.0.0.1 / localhost in `dir`
/// (`tests/broker/certificates.sh`: ca.pem, server.crt, server.key).
pub fn certificates(dir: &std::path::Path) {
    let status = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/broker/certificates.sh"))
        .arg(dir)
        .status()
        .expect("run certificates.sh");
    assert!(status.success(), "certificates.sh failed (openssl: apt-get install openssl)");
}

fn response(buf: Vec<u8>) -> Result<(u16, String), String> {
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).ok_or_else(|| format!("not HTTP: {text}"))?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding: chunked"));
    Ok((status, if chunked { dechunk(body)? } else { body.to_string() }))
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut rest: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or("truncated chunk")?;
        let size = usize::from_str_radix(size.trim(), 16).map_err(|e| format!("bad chunk size {size:?}: {e}"))?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(after.get(..size).ok_or("truncated chunk")?);
        rest = after.get(size + 2..).ok_or("truncated chunk")?;
    }
}

/// A /metrics body.
#[derive(Debug, Clone)]
pub struct Metrics(pub String);

impl Metrics {
    /// The value of the series `name` whose labels include all of `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            if n != name {
                return None;
            }
            if labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))) {
                value.parse().ok()
            } else {
                None
            }
        })
    }

    /// The partitions of `stream` this pipewatch exports.
    pub fn partitions(&self, stream: &str) -> std::collections::BTreeSet<String> {
        let prefix = format!("pipewatch_records_total{{stream=\"{stream}\",");
        self.0
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter_map(|rest| rest.split("partition=\"").nth(1))
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_string)
            .collect()
    }

    /// The cause whose `pipewatch_stream_cause` series is 1.
    pub fn cause(&self, stream: &str) -> Option<String> {
        self.0.lines().find_map(|line| {
            let rest = line.strip_prefix(&format!("pipewatch_stream_cause{{stream=\"{stream}\",cause=\""))?;
            let (cause, value) = rest.split_once("\"} ")?;
            (value.trim() == "1").then(|| cause.to_string())
        })
    }
}

/// `pipewatch run` as a process (for what signals do), its log in a file; killed on drop.
pub struct Daemon {
    child: std::process::Child,
    pub addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Daemon {
    /// Starts `pipewatch run` on `config` (which must not set `[http]`).
    pub async fn start(config: &str) -> Self {
        let port = pipewatch_kafka::testing::free_port();
        let dir = std::env::temp_dir().join(format!("pipewatch-daemon-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pipewatch.toml");
        std::fs::write(&path, format!("{config}\n[http]\nlisten = \"127.0.0.1:{port}\"\n")).unwrap();
        let log = dir.join("pipewatch.log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_pipewatch"))
            .args(["run", "--config"])
            .arg(&path)
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start pipewatch run");
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let daemon = Self { child, addr, log };
        eventually("pipewatch to listen", Duration::from_secs(30), || async {
            try_http_get(addr, "/healthz").await.map(|_| ())
        })
        .await;
        daemon
    }

    pub async fn metrics(&self) -> Metrics {
        Metrics(http_get(self.addr, "/metrics").await.1)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status and how long the exit took (at most `limit`).
    pub async fn terminate(&mut self, limit: Duration) -> (std::process::ExitStatus, Duration) {
        let sent = Instant::now();
        let killed = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(killed.success(), "kill -TERM failed");
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, sent.elapsed());
            }
            assert!(sent.elapsed() < limit, "pipewatch still running {limit:?} after SIGTERM:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until a Prometheus-family server (Prometheus, Alertmanager) answers `GET /-/ready`.
pub async fn wait_ready_endpoint(what: &str, addr: SocketAddr, timeout: Duration) {
    eventually(&format!("{what} ready"), timeout, || async move {
        match try_http_get(addr, "/-/ready").await {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

/// Polls `ready` until it says yes, or the script that starts a service (`child`) exits,
/// or 120 s pass (the script is then killed).
pub fn wait_for_script(
    child: &mut std::process::Child,
    what: &str,
    mut ready: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what}: the script exited ({status})"));
        }
        match ready() {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                let _ = child.kill();
                return Err(format!("{what} not ready within 120 s: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}
