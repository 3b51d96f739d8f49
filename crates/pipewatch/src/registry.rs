//! The schema registry client: the writer schemas of the records that wait for them,
//! fetched off the per-record path, on the runtime, through the Confluent-compatible API
//! (Confluent Schema Registry, Apicurio's `ccompat`, Redpanda's, Karapace).
//!
//! - `GET /schemas/ids/{id}`: the schema, its type and references; each reference
//!   (`GET /subjects/{subject}/versions/{version}`) followed, depth first, so the named
//!   types are known before the schema that uses them.
//! - `GET /schemas/ids/{id}/versions`: a subject and version it is registered under (for
//!   the status; its failure costs nothing).
//!
//! Ids are immutable, so each is fetched once. A 404 is the answer `Unknown`; no answer,
//! a 5xx, a 401/403 or a body that is no schema is `Unreachable` with the reason, and the
//! id is asked again after a backoff (1 s doubling to 30 s) until it is answered: the
//! records that wait for it are never lost or counted invalid meanwhile.

use std::collections::BTreeMap;
use std::time::Duration;

use pipewatch_alert::{Access, HttpClient};
use pipewatch_core::{RegisteredSchema, SchemaFetch};
use pipewatch_kafka::SchemaLink;
use prometheus::{IntCounterVec, Opts, Registry};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// `[schema_registry]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// The API's base URL, without a trailing `/`.
    pub url: String,
    pub timeout: Duration,
    pub access: Access,
}

/// The registry API's media type (every Confluent-compatible registry accepts it).
const ACCEPT: &str = "application/vnd.schemaregistry.v1+json, application/json";

/// References deeper than this are a loop (or hostile).
const MAX_REFERENCE_DEPTH: usize = 32;

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Reference>,
}

#[derive(Deserialize)]
struct Reference {
    /// What the schema calls it: a Protobuf import path, an Avro type name.
    name: String,
    subject: String,
    version: i64,
}

#[derive(Deserialize)]
struct SubjectVersion {
    subject: String,
    version: i64,
}

/// The registry's side of the source's [`SchemaLink`]: asks for what it is sent.
pub struct RegistryClient {
    config: RegistryConfig,
    client: HttpClient,
}

impl RegistryClient {
    pub fn new(config: RegistryConfig) -> Self {
        let client = HttpClient::for_remote(&config.access, "schema_registry");
        Self { config, client }
    }

    /// What the registry says of schema `id`.
    pub async fn fetch(&self, id: u32) -> SchemaFetch {
        let url = format!("{}/schemas/ids/{id}", self.config.url);
        let body = match self.get_json::<SchemaBody>(&url).await {
            Ok(Some(body)) => body,
            Ok(None) => return SchemaFetch::Unknown,
            Err(e) => return SchemaFetch::Unreachable(e),
        };
        let mut references = Vec::new();
        if let Err(e) = self.references(&body.references, 0, &mut references).await {
            return SchemaFetch::Unreachable(e);
        }
        // where it is registered: for the status only
        let versions = format!("{}/schemas/ids/{id}/versions", self.config.url);
        let registered = match self.get_json::<Vec<SubjectVersion>>(&versions).await {
            Ok(Some(list)) => list.into_iter().next(),
            _ => None,
        };
        SchemaFetch::Found(RegisteredSchema {
            kind: body.schema_type.unwrap_or_else(|| "AVRO".into()),
            text: body.schema,
            references,
            subject: registered.as_ref().map(|r| r.subject.clone()),
            version: registered.map(|r| r.version),
        })
    }

    /// The referenced schemas `(name, text)`, each after the ones it refers to.
    async fn references(
        &self,
        refs: &[Reference],
        depth: usize,
        out: &mut Vec<(String, String)>,
    ) -> Result<(), String> {
        for r in refs {
            if depth >= MAX_REFERENCE_DEPTH {
                return Err(format!("references nested deeper than {MAX_REFERENCE_DEPTH} (a loop?)"));
            }
            let subject = percent_encode(&r.subject);
            let url = format!("{}/subjects/{subject}/versions/{}", self.config.url, r.version);
            let body = match self.get_json::<SchemaBody>(&url).await? {
                Some(body) => body,
                None => {
                    return Err(format!("the reference {} version {} is not in the registry", r.subject, r.version))
                }
            };
            Box::pin(self.references(&body.references, depth + 1, out)).await?;
            if !out.iter().any(|(name, _)| *name == r.name) {
                out.push((r.name.clone(), body.schema));
            }
        }
        Ok(())
    }

    /// `GET url` as JSON: `None` for a 404, `Err` for anything that is not an answer.
    async fn get_json<T: for<'de> Deserialize<'de>>(&self, url: &str) -> Result<Option<T>, String> {
        let answer = self.client.get(url, ACCEPT, self.config.timeout).await?;
        if answer.status == hyper::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(format!("{url} answered {} {}", answer.status, answer.excerpt()));
        }
        serde_json::from_slice(&answer.body).map(Some).map_err(|e| format!("{url} answered what is no schema: {e}"))
    }

    /// `check-config --connect`: whether the registry answers (its subjects listed).
    pub async fn check(&self) -> Result<usize, String> {
        let url = format!("{}/subjects", self.config.url);
        match self.get_json::<Vec<String>>(&url).await? {
            Some(subjects) => Ok(subjects.len()),
            None => Err(format!("{url} answered 404 Not Found: is the URL the Confluent-compatible API's?")),
        }
    }
}

/// `pipewatch_schema_registry_requests_total{result}`: schema fetches by result.
#[derive(Debug, Clone)]
pub struct RegistryMetrics {
    requests: IntCounterVec,
}

/// The `result` label values of `pipewatch_schema_registry_requests_total`.
pub const RESULTS: [&str; 3] = ["found", "unknown", "failed"];

impl RegistryMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "pipewatch_schema_registry_requests_total",
                "Schemas asked of the schema registry by result: found, unknown (404: its records are unknown_schema), failed (asked again).",
            ),
            &["result"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        for r in RESULTS {
            requests.with_label_values(&[r]);
        }
        Ok(Self { requests })
    }
}

/// Starts the registry's task on the current runtime: the link the source reads through.
/// The task ends when `shutdown` is cancelled.
pub fn start(client: RegistryClient, metrics: RegistryMetrics, shutdown: CancellationToken) -> SchemaLink {
    let (ask_tx, mut asked) = mpsc::unbounded_channel::<u32>();
    let (answers_tx, answers) = std::sync::mpsc::channel();
    tokio::spawn(async move {
        // ids not answered yet, with when each is asked next and its backoff
        let mut pending: BTreeMap<u32, (tokio::time::Instant, Duration)> = BTreeMap::new();
        loop {
            let next = pending.values().map(|(at, _)| *at).min();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                id = asked.recv() => match id {
                    Some(id) => {
                        pending.entry(id).or_insert((tokio::time::Instant::now(), BACKOFF_START));
                    }
                    None => return,
                },
                _ = sleep_until(next) => {}
            }
            let now = tokio::time::Instant::now();
            let due: Vec<u32> = pending.iter().filter(|(_, (at, _))| *at <= now).map(|(id, _)| *id).collect();
            for id in due {
                let fetch = client.fetch(id).await;
                let result = match &fetch {
                    SchemaFetch::Found(s) => {
                        info!(schema_id = id, subject = ?s.subject, version = ?s.version, kind = %s.kind, "schema fetched");
                        pending.remove(&id);
                        RESULTS[0]
                    }
                    SchemaFetch::Unknown => {
                        warn!(
                            schema_id = id,
                            "the schema registry does not know schema {id}: its records are unknown_schema"
                        );
                        pending.remove(&id);
                        RESULTS[1]
                    }
                    SchemaFetch::Unreachable(why) => {
                        let entry = pending.entry(id).or_insert((now, BACKOFF_START));
                        warn!(schema_id = id, error = %why, retry_in = ?entry.1, "the schema registry did not answer");
                        *entry = (tokio::time::Instant::now() + entry.1, (entry.1 * 2).min(BACKOFF_MAX));
                        RESULTS[2]
                    }
                };
                metrics.requests.with_label_values(&[result]).inc();
                if answers_tx.send((id, fetch)).is_err() {
                    return;
                }
            }
        }
    });
    SchemaLink {
        ask: Box::new(move |id| {
            let _ = ask_tx.send(id);
        }),
        answers,
    }
}

/// `pipewatch generate --orders-format avro`: registers `schema` (Avro) under `subject`
/// as a producer's serializer does (`POST /subjects/{subject}/versions`); its id. The
/// one write to a registry, and the generator's, not the daemon's.
pub async fn register(url: &str, subject: &str, schema: &str) -> Result<u32, String> {
    let client = HttpClient::system_cas(&Access::default());
    let url = format!("{}/subjects/{}/versions", url.trim_end_matches('/'), percent_encode(subject));
    let body = serde_json::json!({ "schema": schema }).to_string();
    let answer = client.post_json(&url, body, Duration::from_secs(10)).await?;
    if !answer.status.is_success() {
        return Err(format!("{url} answered {} {}", answer.status, answer.excerpt()));
    }
    #[derive(Deserialize)]
    struct Registered {
        id: u32,
    }
    serde_json::from_slice::<Registered>(&answer.body).map(|r| r.id).map_err(|e| format!("{url} answered no id: {e}"))
}

/// A stand-in for a schema registry, for the demo only: the Confluent-compatible API's
/// reads (`/schemas/ids/{id}`, `/schemas/ids/{id}/versions`, `/subjects`) over fixed
/// `(id, subject, Avro schema)`s, on a loopback port. Serves until the runtime ends.
pub async fn stand_in(schemas: Vec<(u32, String, String)>) -> std::io::Result<String> {
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::routing::get;
    use std::sync::Arc;
    type Schemas = Arc<Vec<(u32, String, String)>>;
    let json = |status: StatusCode, v: serde_json::Value| {
        (status, [(axum::http::header::CONTENT_TYPE, "application/vnd.schemaregistry.v1+json")], v.to_string())
            .into_response()
    };
    let not_found = move |id: u32| {
        json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error_code": 40403, "message": format!("Schema {id} not found")}),
        )
    };
    let schema = move |State(s): State<Schemas>, Path(id): Path<u32>| async move {
        match s.iter().find(|(i, _, _)| *i == id) {
            Some((_, _, text)) => json(StatusCode::OK, serde_json::json!({ "schema": text })),
            None => not_found(id),
        }
    };
    let versions = move |State(s): State<Schemas>, Path(id): Path<u32>| async move {
        match s.iter().find(|(i, _, _)| *i == id) {
            Some((_, subject, _)) => json(StatusCode::OK, serde_json::json!([{ "subject": subject, "version": 1 }])),
            None => not_found(id),
        }
    };
    let subjects = move |State(s): State<Schemas>| async move {
        json(StatusCode::OK, serde_json::json!(s.iter().map(|(_, subject, _)| subject.clone()).collect::<Vec<_>>()))
    };
    let router = axum::Router::new()
        .route("/schemas/ids/{id}", get(schema))
        .route("/schemas/ids/{id}/versions", get(versions))
        .route("/subjects", get(subjects))
        .with_state(Arc::new(schemas));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            warn!(error = %e, "the demo's schema registry stopped");
        }
    });
    Ok(url)
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A subject name as a path segment (subjects hold `.`, `-`, and at times `/` or `:`).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_encoded_as_path_segments() {
        assert_eq!(percent_encode("shop.orders-value"), "shop.orders-value");
        assert_eq!(percent_encode("a/b:c d"), "a%2Fb%3Ac%20d");
    }
}
