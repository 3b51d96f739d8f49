//! The real schema registry: Apicurio Registry (its Confluent-compatible API), one per
//! test binary, started on first use by `tests/registry/apicurio.sh`; schemas registered
//! through its API as producers' serializers register them; records framed as they frame
//! them; and a cut-able proxy in front of it (a registry outage that keeps its schemas).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use pipewatch_kafka::testing::free_port;

use super::{http_post_json, try_http_get, wait_for_script, CutProxy};

const HOW_TO_GET_ONE: &str = "tests/registry/apicurio.sh fetches Apicurio Registry from Maven Central (mvn) \
     and runs it with a Java >= 21 (JAVA21, or any /usr/lib/jvm/*/bin/java): `bash tests/registry/apicurio.sh fetch`";

/// A running Apicurio Registry.
pub struct SchemaRegistry {
    /// The API's address and its base path.
    pub addr: SocketAddr,
    pub url: String,
    _child: Child,
}

/// The registry every test of this binary shares (started on first use).
pub async fn schema_registry() -> &'static SchemaRegistry {
    tokio::task::spawn_blocking(|| {
        static SHARED: OnceLock<SchemaRegistry> = OnceLock::new();
        SHARED.get_or_init(|| start().unwrap_or_else(|e| panic!("{e}\n{HOW_TO_GET_ONE}")))
    })
    .await
    .expect("registry start panicked")
}

fn start() -> Result<SchemaRegistry, String> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/registry/apicurio.sh");
    let (port, management) = (free_port(), free_port());
    let log = std::env::temp_dir().join(format!("pipewatch-apicurio-{}-{port}.log", std::process::id()));
    let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let mut child = Command::new("bash")
        .arg(&script)
        .args(["run", &port.to_string(), &management.to_string(), &std::process::id().to_string()])
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(|e| e.to_string())?)
        .stderr(out)
        .spawn()
        .map_err(|e| format!("failed to run {}: {e}", script.display()))?;
    let ready: SocketAddr = format!("127.0.0.1:{management}").parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    wait_for_script(&mut child, "Apicurio Registry", || match rt.block_on(try_http_get(ready, "/health/ready")) {
        Ok((200, _)) => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .map_err(|e| format!("{e}\n{}", std::fs::read_to_string(&log).unwrap_or_default()))?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    Ok(SchemaRegistry { addr, url: format!("http://{addr}/apis/ccompat/v7"), _child: child })
}

impl SchemaRegistry {
    /// Registers `schema` (Avro JSON) under `subject`, with references `(name, subject,
    /// version)`: its id, as a serializer would learn it.
    pub async fn register(&self, subject: &str, schema: &str, references: &[(&str, &str, i64)]) -> u32 {
        self.register_as("AVRO", subject, schema, references).await
    }

    /// Registers a schema of `kind` (`AVRO`, `PROTOBUF`): its id.
    pub async fn register_as(&self, kind: &str, subject: &str, schema: &str, references: &[(&str, &str, i64)]) -> u32 {
        let refs: Vec<serde_json::Value> = references
            .iter()
            .map(|(name, subject, version)| serde_json::json!({"name": name, "subject": subject, "version": version}))
            .collect();
        let body = serde_json::json!({"schema": schema, "schemaType": kind, "references": refs}).to_string();
        let path = format!("/apis/ccompat/v7/subjects/{subject}/versions");
        let (status, answer) = http_post_json(self.addr, &path, &body).await.expect("the registry answers");
        assert_eq!(status, 200, "registering {subject}: {answer}");
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
        v["id"].as_u64().unwrap_or_else(|| panic!("no id in {answer}")) as u32
    }
}

/// A datum framed as Confluent's serializers frame it: magic byte 0, the schema id, the
/// Avro binary encoding.
#[allow(deprecated)] // the datum encoder of the apache-avro release in use
pub fn avro_framed(id: u32, schema: &apache_avro::Schema, value: apache_avro::types::Value) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend(apache_avro::to_avro_datum(schema, value).expect("the value fits the schema"));
    out
}

/// A Protobuf message framed as Confluent's serializer frames it: magic byte 0, the
/// schema id, the message indexes (zig-zag varints; `[0]` as one 0 byte), the message.
pub fn protobuf_framed(id: u32, indexes: &[u32], message: &prost_reflect::DynamicMessage) -> Vec<u8> {
    use prost::Message as _;
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    if indexes == [0] {
        out.push(0);
    } else {
        out.push((indexes.len() as u8) << 1);
        for i in indexes {
            out.push((*i as u8) << 1);
        }
    }
    out.extend(message.encode_to_vec());
    out
}

/// A proxy to the registry that the test can cut ([`CutProxy`]): the registry
/// unreachable, its schemas kept.
pub struct RegistryProxy {
    pub url: String,
    proxy: CutProxy,
}

impl RegistryProxy {
    pub async fn start(registry: &SchemaRegistry) -> Self {
        let proxy = CutProxy::start(registry.addr).await;
        Self { url: format!("http://{}/apis/ccompat/v7", proxy.addr), proxy }
    }

    /// Cuts the registry off (`true`) or lets it through again.
    pub fn set_down(&self, down: bool) {
        self.proxy.set_down(down);
    }
}
