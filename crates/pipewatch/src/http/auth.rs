//! Basic auth on the listener (`basic_auth_users` of `http.web_config_file`): a request
//! without valid credentials gets 401 with `WWW-Authenticate`; the probes may be left open.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// A bcrypt hash checked for unknown users, so that a wrong user costs as long as a
/// wrong password (cost 10, the usual for basic_auth_users).
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| bcrypt::hash("no user has this password", 10).unwrap_or_default());

/// Whether `authorization` (the request's header) carries a user and password that
/// match `users`. bcrypt is slow by design: this runs on a blocking thread.
async fn allowed(users: Arc<BTreeMap<String, String>>, authorization: Option<String>) -> bool {
    use base64::Engine as _;
    let Some((user, password)) = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| pair.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())))
    else {
        return false;
    };
    tokio::task::spawn_blocking(move || match users.get(&user) {
        Some(hash) => bcrypt::verify(&password, hash).unwrap_or(false),
        None => {
            let _ = bcrypt::verify(&password, DUMMY_HASH.as_str());
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// What the basic-auth check lets through without credentials.
#[derive(Clone)]
pub struct Auth {
    pub users: Arc<BTreeMap<String, String>>,
    /// `/healthz` and `/readyz` answer without credentials (for Kubernetes probes).
    pub open_probes: bool,
}

/// The middleware: a request without valid credentials gets 401 (and `WWW-Authenticate`).
pub async fn basic_auth(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let open = auth.users.is_empty() || (auth.open_probes && matches!(path, "/healthz" | "/readyz"));
    if !open {
        let header = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        if !allowed(auth.users.clone(), header).await {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"pipewatch\"")],
                "unauthorized\n",
            )
                .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn basic_auth_checks_the_bcrypt_hash() {
        use base64::Engine as _;
        let users = Arc::new(BTreeMap::from([("prometheus".to_string(), bcrypt::hash("s3cret", 4).unwrap())]));
        let header = |u: &str, p: &str| {
            Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))))
        };
        assert!(allowed(users.clone(), header("prometheus", "s3cret")).await);
        assert!(!allowed(users.clone(), header("prometheus", "wrong")).await);
        assert!(!allowed(users.clone(), header("someone", "s3cret")).await);
        assert!(!allowed(users.clone(), Some("Bearer x".into())).await);
        assert!(!allowed(users, None).await);
    }
}
