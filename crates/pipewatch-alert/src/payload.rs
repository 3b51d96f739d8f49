//! The JSON bodies receivers get.

use pipewatch_core::alert::{AlertEvent, Transition};
use pipewatch_core::time::{format_rfc3339, Millis};
use serde_json::{json, Map, Value};

fn object(pairs: &[(String, String)]) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

/// A stable identity of an alert: its sorted labels.
pub fn fingerprint(e: &AlertEvent) -> String {
    let mut labels: Vec<_> = e.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    labels.sort();
    labels.join(",")
}

/// The link back from an alert to the pipewatch that sent it: its status API.
pub fn generator_url(external_url: &str) -> String {
    format!("{}/api/v1/status", external_url.trim_end_matches('/'))
}

/// One alert of Alertmanager's `POST /api/v2/alerts` body. A firing alert's `endsAt`
/// lies `firing_ttl_ms` ahead (it is re-sent before then); a resolved one's is when it
/// resolved.
pub fn alertmanager_alert(e: &AlertEvent, now: Millis, firing_ttl_ms: Millis, generator_url: &str) -> Value {
    let ends_at = match e.transition {
        Transition::Firing => now + firing_ttl_ms,
        Transition::Resolved => e.ends_at_ms.unwrap_or(now),
    };
    json!({
        "labels": object(&e.labels),
        "annotations": object(&e.annotations),
        "startsAt": format_rfc3339(e.starts_at_ms),
        "endsAt": format_rfc3339(ends_at),
        "generatorURL": generator_url,
    })
}

/// The webhook body: the shape of Alertmanager's webhook payload (version 4), so that
/// tools that consume Alertmanager webhooks consume pipewatch's too.
pub fn webhook_body(receiver: &str, external_url: &str, events: &[AlertEvent]) -> Value {
    let status = if events.iter().any(|e| e.transition == Transition::Firing) { "firing" } else { "resolved" };
    let common = |pick: fn(&AlertEvent) -> &Vec<(String, String)>| {
        let mut common = Map::new();
        if let Some(first) = events.first() {
            for (k, v) in pick(first) {
                if events.iter().all(|e| pick(e).iter().any(|(k2, v2)| k2 == k && v2 == v)) {
                    common.insert(k.clone(), Value::String(v.clone()));
                }
            }
        }
        Value::Object(common)
    };
    let link = generator_url(external_url);
    let alerts: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "status": match e.transition { Transition::Firing => "firing", Transition::Resolved => "resolved" },
                "labels": object(&e.labels),
                "annotations": object(&e.annotations),
                "startsAt": format_rfc3339(e.starts_at_ms),
                "endsAt": e.ends_at_ms.map_or_else(|| "0001-01-01T00:00:00Z".to_string(), format_rfc3339),
                "generatorURL": link,
                "fingerprint": fingerprint(e),
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": format!("pipewatch/{receiver}"),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {},
        "commonLabels": common(|e| &e.labels),
        "commonAnnotations": common(|e| &e.annotations),
        "externalURL": external_url,
        "alerts": alerts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(transition: Transition, cause: &str) -> AlertEvent {
        AlertEvent {
            transition,
            labels: vec![("alertname".into(), "BehaviourBehindOrders".into()), ("cause".into(), cause.into())],
            annotations: vec![("summary".into(), "behaviour is 8h 02m behind orders".into())],
            starts_at_ms: 1_795_375_975_000,
            ends_at_ms: (transition == Transition::Resolved).then_some(1_795_376_035_000),
        }
    }

    #[test]
    fn alertmanager_alert_ends_ahead_while_firing_and_when_resolved() {
        let now = 1_795_375_985_000;
        let link = generator_url("http://pw/");
        let firing = alertmanager_alert(&event(Transition::Firing, "event_time_delayed"), now, 240_000, &link);
        assert_eq!(firing["startsAt"], "2026-11-22T19:32:55.000Z");
        assert_eq!(firing["endsAt"], "2026-11-22T19:37:05.000Z");
        assert_eq!(firing["generatorURL"], "http://pw/api/v1/status");
        assert!(firing["annotations"].get("generatorURL").is_none());
        assert_eq!(firing["labels"]["cause"], "event_time_delayed");
        let resolved = alertmanager_alert(&event(Transition::Resolved, "event_time_delayed"), now, 240_000, &link);
        assert_eq!(resolved["endsAt"], "2026-11-22T19:33:55.000Z");
    }

    #[test]
    fn webhook_body_is_shaped_like_alertmanagers() {
        let body = webhook_body(
            "hook",
            "http://pw",
            &[event(Transition::Firing, "producer_silent"), event(Transition::Resolved, "event_time_delayed")],
        );
        assert_eq!(body["version"], "4");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["receiver"], "hook");
        assert_eq!(body["commonLabels"], serde_json::json!({"alertname": "BehaviourBehindOrders"}));
        assert_eq!(body["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(body["alerts"][1]["status"], "resolved");
        assert_ne!(body["alerts"][0]["fingerprint"], body["alerts"][1]["fingerprint"]);
        assert_eq!(body["alerts"][0]["generatorURL"], "http://pw/api/v1/status");
    }
}
