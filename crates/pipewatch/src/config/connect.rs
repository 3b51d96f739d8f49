//! `[[connect]]`: the Kafka Connect clusters whose connectors write and read the streams,
//! polled read-only, with the receivers' CA and auth keys (secrets from files, never
//! shown).

use crate::connect::ConnectConfig;

use super::problems::Problems;
use super::raw::RawConfig;
use super::receivers::access;

/// Every `[[connect]]`, validated.
pub(super) fn connect_configs(raw: &RawConfig, p: &mut Problems) -> Vec<ConnectConfig> {
    let mut out = Vec::new();
    for (i, c) in raw.connect.iter().enumerate() {
        let key = |f: &str| format!("connect[{i}].{f}");
        let valid_name =
            !c.name.is_empty() && c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
        if !valid_name {
            p.add(
                key("name"),
                format!("{:?} is not a name of letters, digits, '-', '_' and '.' (the connect label)", c.name),
            );
        } else if raw.connect[..i].iter().any(|d| d.name == c.name) {
            p.add(key("name"), format!("duplicate Connect cluster name {:?}", c.name));
        }
        if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
            p.add(key("url"), format!("{:?} is not an http:// or https:// URL", c.url));
        }
        let poll = p.positive_duration(&key("poll"), &c.poll);
        let timeout = p.positive_duration(&key("timeout"), &c.timeout);
        let access = access(&key, c.ca_file.as_deref(), c.bearer_token_file.as_deref(), c.basic_auth.as_ref(), p);
        out.push(ConnectConfig {
            name: c.name.clone(),
            url: c.url.trim_end_matches('/').to_string(),
            poll,
            timeout,
            access,
        });
    }
    out
}
