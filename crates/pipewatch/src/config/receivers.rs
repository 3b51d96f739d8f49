//! `[[receiver]]`: where alerts go (Alertmanager's v2 API or a webhook), with secrets read
//! from files when the config is loaded.

use pipewatch_alert::{Access, ReceiverConfig, ReceiverKind, Secret};

use super::problems::Problems;
use super::raw::{RawBasicAuth, RawConfig};

/// The `[[receiver]]`s, validated.
pub(super) fn receiver_configs(raw: &RawConfig, p: &mut Problems) -> Vec<ReceiverConfig> {
    let mut receivers = Vec::new();
    for (i, r) in raw.receivers.iter().enumerate() {
        let key = |f: &str| format!("receiver[{i}].{f}");
        if r.name.trim().is_empty() {
            p.add(key("name"), "must not be empty");
        } else if raw.receivers[..i].iter().any(|o| o.name == r.name) {
            p.add(key("name"), format!("duplicate receiver name {:?}", r.name));
        }
        let kind = match r.kind.as_str() {
            "alertmanager" => Some(ReceiverKind::Alertmanager),
            "webhook" => Some(ReceiverKind::Webhook),
            other => {
                p.add(key("kind"), format!("{other:?} is not one of alertmanager, webhook"));
                None
            }
        };
        if !(r.url.starts_with("http://") || r.url.starts_with("https://")) {
            p.add(key("url"), format!("{:?} is not an http:// or https:// URL", r.url));
        }
        let timeout = p.positive_duration(&key("timeout"), &r.timeout);
        let resend_interval = p.positive_duration(&key("resend_interval"), &r.resend_interval);
        if r.queue_capacity == 0 {
            p.add(key("queue_capacity"), "must be at least 1");
        }
        let access = access(&key, r.ca_file.as_deref(), r.bearer_token_file.as_deref(), r.basic_auth.as_ref(), p);
        if let Some(kind) = kind {
            receivers.push(ReceiverConfig {
                name: r.name.clone(),
                kind,
                url: r.url.clone(),
                timeout,
                resend_interval,
                queue_capacity: r.queue_capacity,
                access,
            });
        }
    }
    receivers
}

/// How to reach a remote (a receiver, the schema registry): its CA file, and one of a
/// bearer token file and basic auth, read now; each problem under `key(…)`.
pub(super) fn access(
    key: &dyn Fn(&str) -> String,
    ca_file: Option<&str>,
    bearer_token_file: Option<&str>,
    basic_auth: Option<&RawBasicAuth>,
    p: &mut Problems,
) -> Access {
    let ca_pem = ca_file.and_then(|path| match std::fs::read(path) {
        Ok(pem) => match pipewatch_alert::check_ca(&pem) {
            Ok(()) => Some(pem),
            Err(e) => {
                p.add(key("ca_file"), format!("{path:?} is not a PEM certificate: {e}"));
                None
            }
        },
        Err(e) => {
            p.add(key("ca_file"), format!("cannot read {path:?}: {e}"));
            None
        }
    });
    let authorization = match (bearer_token_file, basic_auth) {
        (Some(_), Some(_)) => {
            p.add(key("basic_auth"), "set one of bearer_token_file and basic_auth");
            None
        }
        (Some(path), None) => secret_file(path, key("bearer_token_file"), p).map(|t| Secret::bearer(&t)),
        (None, Some(b)) => {
            if b.username.is_empty() {
                p.add(key("basic_auth.username"), "must not be empty");
            }
            secret_file(&b.password_file, key("basic_auth.password_file"), p).map(|pw| Secret::basic(&b.username, &pw))
        }
        (None, None) => None,
    };
    Access { ca_pem, authorization }
}

/// A secret from a file, without its trailing newline; the problem, keyed, if unreadable.
fn secret_file(path: &str, key: String, p: &mut Problems) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim_end_matches(['\n', '\r']).is_empty() => {
            p.add(key, format!("{path:?} is empty"));
            None
        }
        Ok(text) => Some(text.trim_end_matches(['\n', '\r']).to_string()),
        Err(e) => {
            p.add(key, format!("cannot read {path:?}: {e}"));
            None
        }
    }
}
