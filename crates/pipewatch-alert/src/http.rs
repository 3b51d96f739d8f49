//! pipewatch's outbound HTTP: one client per remote (an alert receiver, the schema
//! registry), trusting the system's CAs and the remote's own `ca_file`, sending its
//! `Authorization` header (bearer token or basic auth, from files, never shown).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper_tls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A value that is sent, never shown: its `Debug` is `Secret(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(crate) String);

impl Secret {
    /// `Authorization: Bearer <token>`.
    pub fn bearer(token: &str) -> Self {
        Self(format!("Bearer {token}"))
    }

    /// `Authorization: Basic <base64(username:password)>`.
    pub fn basic(username: &str, password: &str) -> Self {
        use base64::Engine as _;
        Self(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why a CA certificate cannot be used (checked when the config is loaded).
pub fn check_ca(pem: &[u8]) -> Result<(), String> {
    native_tls::Certificate::from_pem(pem).map(drop).map_err(|e| e.to_string())
}

/// How to reach one remote: its CA besides the system's, its `Authorization` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// A CA certificate (PEM) trusted for this remote, besides the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// The `Authorization` header sent with every request (bearer token or basic auth).
    pub authorization: Option<Secret>,
}

/// An HTTP(S) client of one remote.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    authorization: Option<Secret>,
}

/// A remote's answer: its status and (the start of) its body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Answer {
    /// The body as text, cut to a line's length (for errors).
    pub fn excerpt(&self) -> String {
        String::from_utf8_lossy(&self.body).chars().take(200).collect()
    }
}

impl HttpClient {
    /// A client with the system's CAs, plus the remote's own if it has one.
    pub fn new(access: &Access) -> Result<Self, String> {
        let mut tls = native_tls::TlsConnector::builder();
        if let Some(pem) = &access.ca_pem {
            tls.add_root_certificate(native_tls::Certificate::from_pem(pem).map_err(|e| e.to_string())?);
        }
        let tls = tls.build().map_err(|e| e.to_string())?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        let connector = HttpsConnector::from((http, tokio_native_tls::TlsConnector::from(tls)));
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            authorization: access.authorization.clone(),
        })
    }

    /// [`HttpClient::new`], or when the remote's CA cannot be set up (it was checked with
    /// the config: only a TLS library failure gets here) the system's CAs, said once in
    /// the log naming `remote` (e.g. `receiver=alertmanager`).
    pub fn for_remote(access: &Access, remote: &str) -> Self {
        Self::new(access).unwrap_or_else(|e| {
            tracing::warn!(remote, error = %e, "failed to set up TLS with the remote's CA; using the system's");
            Self::system_cas(access)
        })
    }

    /// A client with the system's CAs only (when the remote's own could not be set up).
    pub fn system_cas(access: &Access) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build(HttpsConnector::new()),
            authorization: access.authorization.clone(),
        }
    }

    /// `GET url`; `Err` when there is no answer within `timeout` (or no connection).
    pub async fn get(&self, url: &str, accept: &str, timeout: Duration) -> Result<Answer, String> {
        let request = hyper::Request::get(url).header(hyper::header::ACCEPT, accept);
        self.send(request, Bytes::new(), timeout).await
    }

    /// `POST url` with a JSON body.
    pub async fn post_json(&self, url: &str, body: String, timeout: Duration) -> Result<Answer, String> {
        let request = hyper::Request::post(url).header(hyper::header::CONTENT_TYPE, "application/json");
        self.send(request, Bytes::from(body), timeout).await
    }

    async fn send(
        &self,
        request: hyper::http::request::Builder,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer, String> {
        let mut request = request.header(hyper::header::USER_AGENT, concat!("pipewatch/", env!("CARGO_PKG_VERSION")));
        if let Some(Secret(value)) = &self.authorization {
            request = request.header(hyper::header::AUTHORIZATION, value.as_str());
        }
        let request = request.body(Full::new(body)).map_err(|e| format!("bad request: {e}"))?;
        let response = match tokio::time::timeout(timeout, self.client.request(request)).await {
            Err(_) => return Err(format!("no answer within {timeout:?}")),
            Ok(Err(e)) => return Err(error_chain(&e)),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        // the body is read whole (so the connection can be reused), within the time-out
        let body = match tokio::time::timeout(timeout, response.into_body().collect()).await {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(e)) => return Err(format!("{status}, then the body failed: {e}")),
            Err(_) => return Err(format!("{status}, then no body within {timeout:?}")),
        };
        Ok(Answer { status, body })
    }
}

/// An error with its causes (hyper's own says only "client error (Connect)").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
