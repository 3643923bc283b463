//! `Idempotency-Key` on the JSON API's mutating requests (issue #9, "Faults"): a client that
//! is not sure its request arrived (a timeout, a dropped connection) sends it again with the
//! same key and gets the first request's response, never a second effect.
//!
//! - The key is per user: 1 to 200 visible ASCII characters (a UUID is typical).
//! - The first request with a key claims it in the store (`idempotency_keys`, migration
//!   `0007`); its response is stored and replayed, byte for byte with the same status, to
//!   every repeat, marked `Idempotency-Replayed: true`.
//! - Repeats that arrive while the first is still running wait for its response (up to 30
//!   s, then `409 idempotency_in_progress`); sixteen at once make one effect.
//! - The same key with another method, path or body: `422 idempotency_key_reused`.
//! - A request that failed inside the server (5xx) gives its key back: it may be retried.
//! - Without the header a request behaves as before; `GET` and the login are never keyed.

use super::WebState;
use super::auth::Operator;
use crate::server::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::time::Duration;
use ykt_store::idempotency::StoredResponse;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotency-replayed";

/// The largest body a keyed request may carry (a roster upload).
const MAX_BODY: usize = 256 * 1024 * 1024;
const WAIT: Duration = Duration::from_secs(30);

fn valid_key(k: &str) -> bool {
    (1..=200).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic())
}

fn replay(r: StoredResponse) -> Response {
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    if let Some(ct) = r.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    resp.headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    resp
}

fn store_error(e: ykt_store::StoreError) -> Response {
    tracing::error!(error = %e, "idempotency key store failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "服务器内部错误 (internal error)",
    )
    .into_response()
}

/// The middleware (inside the session layer, so the operator is known).
pub async fn layer(State(st): State<WebState>, req: Request, next: Next) -> Response {
    let keyed = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && req.uri().path() != "/api/v1/login"
        && req.headers().contains_key(HEADER);
    if !keyed {
        return next.run(req).await;
    }
    let Some(login) = req
        .extensions()
        .get::<Option<Operator>>()
        .and_then(|o| o.as_ref())
        .map(|o| o.user.login.clone())
    else {
        // Not logged in: the handler refuses it as usual; nothing to remember.
        return next.run(req).await;
    };
    let key = match req.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        Some(k) if valid_key(k) => k.to_owned(),
        _ => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_idempotency_key",
                "Idempotency-Key 须为1至200个可见ASCII字符 (Idempotency-Key must be 1 to 200 visible ASCII characters)",
            )
            .into_response();
        }
    };
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::bad_request("请求体过大或不完整 (body too large or incomplete)")
                .into_response();
        }
    };
    let method = parts.method.as_str().to_owned();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut h = Sha256::new();
    for part in [
        method.as_bytes(),
        path.as_bytes(),
        parts
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.as_bytes())
            .unwrap_or_default(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(&bytes);
    let sha = hex::encode(h.finalize());
    let started = std::time::Instant::now();
    loop {
        match st
            .store
            .idempotency_claim(&login, &key, &method, &path, &sha, (st.clock)())
            .await
        {
            Err(e) => return store_error(e),
            Ok(true) => break,
            Ok(false) => {}
        }
        let row = match st.store.idempotency_get(&login, &key).await {
            Err(e) => return store_error(e),
            // Given back meanwhile (the first request failed): claim it again.
            Ok(None) => continue,
            Ok(Some(r)) => r,
        };
        if row.method != method || row.path != path || row.request_sha256 != sha {
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                format!(
                    "Idempotency-Key「{key}」已用于另一请求（{} {}），不能用于不同的请求 (the key was used for a different request)",
                    row.method, row.path
                ),
            )
            .into_response();
        }
        if let Some(r) = row.response {
            return replay(r);
        }
        if started.elapsed() > WAIT {
            return ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "使用同一Idempotency-Key的请求仍在处理中，请稍后重试 (a request with this key is still being processed)",
            )
            .into_response();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (rparts, rbody) = resp.into_parts();
    if rparts.status.is_server_error() {
        if let Err(e) = st.store.idempotency_release(&login, &key).await {
            return store_error(e);
        }
        return Response::from_parts(rparts, rbody);
    }
    let body = match axum::body::to_bytes(rbody, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            let _ = st.store.idempotency_release(&login, &key).await;
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "服务器内部错误 (internal error)",
            )
            .into_response();
        }
    };
    let stored = StoredResponse {
        status: rparts.status.as_u16(),
        content_type: rparts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body.to_vec(),
    };
    if let Err(e) = st.store.idempotency_finish(&login, &key, &stored).await {
        return store_error(e);
    }
    Response::from_parts(rparts, Body::from(body))
}
