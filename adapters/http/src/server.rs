//! The platform's HTTP server (`ykt serve`): one axum router per area, merged into one app
//! with a health check and JSON errors, served until a shutdown signal.
//!
//! Areas add themselves by handing [`app`] their router (the operator console and API of
//! [`crate::web`], Henan's bank interface, the public portal). Handlers return [`ApiError`]
//! for anything that is not a success: the body is always
//! `{"code": code, "error": code, "message": text, "details": ...}`, and an internal failure is logged with
//! its cause while the client gets a generic message (causes never leak).

use axum::Json;
pub use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::future::Future;

/// An error answer: status, a stable code, a message in Chinese (English in parentheses) and
/// optional structured details (e.g. the refused lines of a post).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }
    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = Some(details);
        self
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", message)
    }
    /// An internal failure: the cause is logged, the client sees a generic message.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "服务器内部错误，请稍后重试 (internal error, please retry later)",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // `code` is the documented field (console API, issue #6); `error` is kept for the
        // bank interface's existing clients.
        let mut body =
            serde_json::json!({"code": self.code, "error": self.code, "message": self.message});
        if let Some(d) = self.details {
            body["details"] = d;
        }
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

impl From<ykt_store::StoreError> for ApiError {
    fn from(e: ykt_store::StoreError) -> ApiError {
        ApiError::internal(&e)
    }
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn not_found() -> ApiError {
    ApiError::not_found("没有这个地址 (no such endpoint)")
}

/// The whole app: the areas' routers merged, `GET /healthz`, JSON 404 for anything else.
pub fn app(areas: impl IntoIterator<Item = Router>) -> Router {
    let mut router = Router::new().route("/healthz", axum::routing::get(health));
    for r in areas {
        router = router.merge(r);
    }
    router.fallback(not_found)
}

/// Serve `router` on `listener` until `shutdown` completes (in-flight requests finish).
/// Handlers can see the peer address (`ConnectInfo<SocketAddr>`: the portal's rate limit).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The client address is available to handlers (login throttling per address).
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn health_and_json_errors() {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, app([]), async {
            let _ = rx.await;
        }));
        let base = format!("http://{addr}");
        let ok = reqwest::get(format!("{base}/healthz")).await.unwrap();
        assert_eq!(ok.status(), 200);
        let missing = reqwest::get(format!("{base}/nope")).await.unwrap();
        assert_eq!(missing.status(), 404);
        let body: serde_json::Value = missing.json().await.unwrap();
        assert_eq!(body["error"], "not_found");
        let _ = tx.send(());
        task.await.unwrap().unwrap();
    }
}
