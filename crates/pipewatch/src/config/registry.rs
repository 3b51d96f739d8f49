//! `[schema_registry]`: where the writer schemas of Avro streams are fetched, with the
//! receivers' CA and auth keys (secrets from files, never shown).

use crate::registry::RegistryConfig;

use super::problems::Problems;
use super::raw::RawConfig;
use super::receivers::access;

/// The registry, validated; a stream that needs one without it is a problem of the
/// stream's `value_format` (see [`super::streams`]).
pub(super) fn registry_config(raw: &RawConfig, p: &mut Problems) -> Option<RegistryConfig> {
    let r = raw.schema_registry.as_ref()?;
    let key = |f: &str| format!("schema_registry.{f}");
    if !(r.url.starts_with("http://") || r.url.starts_with("https://")) {
        p.add(key("url"), format!("{:?} is not an http:// or https:// URL", r.url));
    }
    let timeout = p.positive_duration(&key("timeout"), &r.timeout);
    let access = access(&key, r.ca_file.as_deref(), r.bearer_token_file.as_deref(), r.basic_auth.as_ref(), p);
    Some(RegistryConfig { url: r.url.trim_end_matches('/').to_string(), timeout, access })
}
