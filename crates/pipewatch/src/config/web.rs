//! `http.web_config_file`: TLS and basic auth for the HTTP listener, in the format of the
//! Prometheus exporter-toolkit (the file node_exporter and Alertmanager read with
//! `--web.config.file`), so the same file serves pipewatch.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: /etc/pipewatch/tls.crt
//!   key_file: /etc/pipewatch/tls.key   # PKCS#8 PEM ("BEGIN PRIVATE KEY")
//!   min_version: TLS12
//! basic_auth_users:
//!   prometheus: $2y$10$…                 # bcrypt hashes
//! ```
//!
//! The toolkit's keys pipewatch cannot honour (client certificates, cipher suites,
//! curves, HTTP headers) are errors that say so, never silently ignored.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttpServer>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpServer {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// The validated web config.
#[derive(Clone)]
pub struct WebConfig {
    /// The TLS identity (certificate chain and key), when the listener serves HTTPS.
    pub tls: Option<Tls>,
    /// bcrypt hashes by user; empty: no authentication.
    pub users: Arc<BTreeMap<String, String>>,
}

/// What the listener's TLS needs: the PEM certificate chain and PKCS#8 key, and the
/// lowest protocol version.
#[derive(Clone)]
pub struct Tls {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub min_version: Option<native_tls::Protocol>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Tls {
    /// The acceptor for the listener.
    pub fn acceptor(&self) -> Result<tokio_native_tls::TlsAcceptor, String> {
        let identity = native_tls::Identity::from_pkcs8(&self.cert_pem, &self.key_pem).map_err(|e| e.to_string())?;
        let mut builder = native_tls::TlsAcceptor::builder(identity);
        builder.min_protocol_version(self.min_version.or(Some(native_tls::Protocol::Tlsv12)));
        Ok(builder.build().map_err(|e| e.to_string())?.into())
    }
}

/// Reads and checks the web config; every problem, keyed `http.web_config_file: <key>: …`.
pub fn load(path: &str) -> Result<WebConfig, Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("cannot read {path:?}: {e}")])?;
    let raw: RawWebConfig = serde_saphyr::from_str(&text).map_err(|e| vec![format!("{path:?}: {e}")])?;
    let mut problems = Vec::new();
    let base = Path::new(path).parent().unwrap_or(Path::new("."));
    let read = |file: &str, problems: &mut Vec<String>, key: &str| {
        // relative paths are relative to the web config file, as in the exporter-toolkit
        let full = base.join(file);
        std::fs::read(&full).map_err(|e| problems.push(format!("{key}: cannot read {}: {e}", full.display()))).ok()
    };
    let tls = match raw.tls_server_config {
        None => None,
        Some(t) => {
            for (key, set) in [
                ("client_ca_file", t.client_ca_file.is_some()),
                ("client_allowed_sans", t.client_allowed_sans.is_some()),
                ("max_version", t.max_version.is_some()),
                ("cipher_suites", t.cipher_suites.is_some()),
                ("prefer_server_cipher_suites", t.prefer_server_cipher_suites.is_some()),
                ("curve_preferences", t.curve_preferences.is_some()),
            ] {
                if set {
                    problems.push(format!("tls_server_config.{key}: not supported by pipewatch"));
                }
            }
            if let Some(kind) = t.client_auth_type.as_deref().filter(|k| *k != "NoClientCert") {
                problems.push(format!(
                    "tls_server_config.client_auth_type: {kind:?} is not supported by pipewatch (NoClientCert only)"
                ));
            }
            let min_version = match t.min_version.as_deref() {
                None => None,
                Some("TLS10") => Some(native_tls::Protocol::Tlsv10),
                Some("TLS11") => Some(native_tls::Protocol::Tlsv11),
                Some("TLS12") => Some(native_tls::Protocol::Tlsv12),
                Some(other) => {
                    problems.push(format!(
                        "tls_server_config.min_version: {other:?} is not one of TLS10, TLS11, TLS12 (TLS 1.3 is always offered)"
                    ));
                    None
                }
            };
            let cert = match &t.cert_file {
                Some(f) => read(f, &mut problems, "tls_server_config.cert_file"),
                None => {
                    problems.push("tls_server_config.cert_file: required with tls_server_config".into());
                    None
                }
            };
            let key = match &t.key_file {
                Some(f) => read(f, &mut problems, "tls_server_config.key_file"),
                None => {
                    problems.push("tls_server_config.key_file: required with tls_server_config".into());
                    None
                }
            };
            match (cert, key) {
                (Some(cert_pem), Some(key_pem)) => {
                    let tls = Tls { cert_pem, key_pem, min_version };
                    if let Err(e) = tls.acceptor() {
                        problems.push(format!(
                            "tls_server_config: the certificate and key cannot be used ({e}; the key must be PKCS#8 PEM, `BEGIN PRIVATE KEY`)"
                        ));
                    }
                    Some(tls)
                }
                _ => None,
            }
        }
    };
    if let Some(h) = raw.http_server_config {
        if h.headers.is_some() {
            problems.push("http_server_config.headers: not supported by pipewatch".into());
        }
        if h.http2 == Some(true) {
            problems.push("http_server_config.http2: not supported by pipewatch (HTTP/1.1 only)".into());
        }
    }
    for (user, hash) in &raw.basic_auth_users {
        if !hash.starts_with("$2") {
            problems.push(format!("basic_auth_users.{user}: not a bcrypt hash (htpasswd -nBC 10 {user})"));
        }
    }
    if problems.is_empty() {
        Ok(WebConfig { tls, users: Arc::new(raw.basic_auth_users) })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    #[test]
    fn the_toolkits_keys_pipewatch_cannot_honour_are_named() {
        let dir = std::env::temp_dir().join(format!("pipewatch-web-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = write(
            &dir,
            "web.yml",
            "tls_server_config:\n  cert_file: missing.crt\n  client_auth_type: RequireAndVerifyClientCert\n  \
             min_version: TLS13\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\nbasic_auth_users:\n  alice: plain-text\n",
        );
        let problems = load(&path).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.split(':').next().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "tls_server_config.cipher_suites",
                "tls_server_config.client_auth_type",
                "tls_server_config.min_version",
                "tls_server_config.cert_file",
                "tls_server_config.key_file",
                "basic_auth_users.alice",
            ],
            "{problems:?}"
        );
        let unknown = write(&dir, "unknown.yml", "basic_auth_user:\n  alice: x\n");
        assert!(load(&unknown).unwrap_err()[0].contains("basic_auth_user"), "unknown keys are errors");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
