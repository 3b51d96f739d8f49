//! `GET /api/v1/status`: the tick's snapshot and alert states as JSON, with readiness.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use pipewatch_core::alert::AlertStatus;
use pipewatch_core::Snapshot;
use serde::Serialize;

use super::readiness::not_ready;
use super::AppState;

#[derive(Serialize)]
struct Status<'a> {
    version: &'static str,
    ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_ready: Option<String>,
    #[serde(flatten)]
    snapshot: Option<&'a Snapshot>,
    alerts: &'a [AlertStatus],
}

pub(super) async fn status_json(State(state): State<AppState>) -> Response {
    let tick = state.tick.borrow().clone();
    let snapshot = tick.as_ref().map(|t| &t.snapshot);
    let why = not_ready(snapshot);
    let status = Status {
        version: env!("CARGO_PKG_VERSION"),
        ready: why.is_none(),
        not_ready: why,
        snapshot,
        alerts: tick.as_ref().map_or(&[], |t| &t.alerts),
    };
    match serde_json::to_string_pretty(&status) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("failed to encode status: {e}\n")).into_response(),
    }
}
