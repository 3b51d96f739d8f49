//! `GET /readyz`: 200 once the cluster answers, every configured topic exists,
//! partitions are assigned, no records wait for a schema registry that does not answer
//! and every Kafka Connect cluster answers; 503 with the reason otherwise (the status API
//! and page say the same).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pipewatch_core::{Cause, KafkaStatus, Snapshot};

use super::AppState;

/// Why pipewatch is not ready, or `None` when the cluster answers, every configured
/// topic exists and partitions are assigned.
pub(super) fn not_ready(snapshot: Option<&Snapshot>) -> Option<String> {
    let Some(s) = snapshot else {
        return Some("starting".into());
    };
    // each right denied once, with the streams it stops (Read on pipewatch's own group
    // stops them all), then the topics that do not exist
    let mut denied: Vec<(&str, Vec<&str>)> = Vec::new();
    for st in &s.streams {
        if let Some(right) = st.access_denied.as_deref() {
            match denied.iter_mut().find(|(r, _)| *r == right) {
                Some((_, streams)) => streams.push(&st.name),
                None => denied.push((right, vec![&st.name])),
            }
        }
    }
    let mut missing: Vec<String> = denied
        .iter()
        .map(|(right, streams)| {
            let s = if streams.len() == 1 { "" } else { "s" };
            format!("access denied: {right} (stream{s} {})", streams.join(", "))
        })
        .collect();
    missing.extend(s.streams.iter().filter(|st| st.cause == Cause::TopicMissing).map(|st| match st.topics.len() {
        1 => format!("topic {:?} of stream {} does not exist", st.topic, st.name),
        _ => format!("stream {}: {}", st.name, st.missing_phrase()),
    }));
    missing.extend(s.streams.iter().filter(|st| st.cause == Cause::SchemaRegistryUnreachable).map(|st| {
        let why = st.schema_registry.as_deref().unwrap_or("it does not answer");
        format!("schema registry unreachable for stream {}: {why}", st.name)
    }));
    missing.extend(s.connect.iter().filter(|k| k.status == KafkaStatus::Down).map(|k| {
        format!("Kafka Connect {} unreachable: {}", k.name, k.error.as_deref().unwrap_or("it does not answer"))
    }));
    match s.kafka {
        KafkaStatus::Unknown => Some("kafka not reached yet".into()),
        KafkaStatus::Down => Some(match &s.kafka_error {
            Some(e) => format!("kafka unreachable: {e}"),
            None => "kafka unreachable".into(),
        }),
        KafkaStatus::Up if !missing.is_empty() => Some(missing.join("; ")),
        KafkaStatus::Up if s.streams.iter().all(|st| st.partitions.is_empty()) => Some("no partitions assigned".into()),
        KafkaStatus::Up => None,
    }
}

pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    let tick = state.tick.borrow().clone();
    match not_ready(tick.as_ref().map(|t| &t.snapshot)) {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")).into_response(),
    }
}
