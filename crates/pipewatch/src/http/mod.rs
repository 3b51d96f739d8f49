//! The HTTP interface: `/metrics`, `/healthz`, `/readyz`, `/api/v1/status` and `/`.
//! Each path in a file of its own: [`readiness`], [`status_json`], [`page`] (the status
//! page); basic auth on every path in `auth`; `/metrics` renders the tick's series
//! ([`crate::metrics`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus::Registry;

use crate::config::Config;
use crate::metrics::{render_chunks, View};
use crate::tick::TickRx;

mod auth;
pub mod page;
pub mod readiness;
pub mod status_json;

#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    pub tick: TickRx,
    pub config: Arc<Config>,
    /// The last hour, for the status page's charts.
    pub history: Arc<std::sync::Mutex<crate::history::History>>,
}

pub fn router(state: AppState) -> Router {
    let web = state.config.web.clone();
    let open_probes = state.config.probes_without_auth;
    let router = Router::new()
        .route("/", get(page::status_page))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readiness::readyz))
        .route("/api/v1/status", get(status_json::status_json))
        .with_state(state);
    match web.filter(|w| !w.users.is_empty()) {
        Some(w) => {
            let auth = auth::Auth { users: w.users, open_probes };
            router.layer(axum::middleware::from_fn_with_state(auth, auth::basic_auth))
        }
        None => router,
    }
}

/// Serves `router` on `listener` until `shutdown`: plain HTTP, or HTTPS when the web
/// config has `tls_server_config` (HTTP/1.1 over the OpenSSL librdkafka links already).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<&crate::config::web::Tls>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some(tls) = tls else {
        return axum::serve(listener, router).with_graceful_shutdown(shutdown).await;
    };
    let acceptor = tls.acceptor().map_err(std::io::Error::other)?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // out of file descriptors, say: wait a little rather than spin
                    tracing::warn!(error = %e, "failed to accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (acceptor, router, watcher) = (acceptor.clone(), router.clone(), graceful.watcher());
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp)).await;
            let stream = match handshake {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    // in-flight requests finish; idle keep-alive connections close
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}

async fn metrics(State(state): State<AppState>) -> Response {
    let view = View {
        granularity: state.config.granularity,
        discovered_partitions: state.config.discovery.as_ref().is_some_and(|d| d.partition_series),
    };
    match render_chunks(&state.registry, &state.tick, view) {
        Ok(chunks) => {
            let body = axum::body::Body::new(Chunks::new(chunks));
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("failed to render metrics: {e}\n")).into_response(),
    }
}

/// A body sent as the chunks it was written in (its length known: a `Content-Length`).
struct Chunks {
    chunks: std::vec::IntoIter<String>,
    remaining: u64,
}

impl Chunks {
    fn new(chunks: Vec<String>) -> Self {
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        Self { chunks: chunks.into_iter(), remaining }
    }
}

impl hyper::body::Body for Chunks {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let next = self.chunks.next();
        if let Some(c) = &next {
            self.remaining -= c.len() as u64;
        }
        // a String becomes Bytes without a copy
        std::task::Poll::Ready(next.map(|c| Ok(hyper::body::Frame::data(axum::body::Bytes::from(c)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && self.chunks.len() == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.remaining)
    }
}
