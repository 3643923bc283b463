//! Accounts and sessions: argon2id passwords, sessions in the database, CSRF tokens, login
//! throttling, and the one guard every handler goes through ([`Operator`]).
//!
//! - Passwords: Argon2id with m = 19 456 KiB, t = 2, p = 1 (the issue's minimum: "at least
//!   19 MiB, 2 iterations"), stored as PHC strings in `users.password_hash`.
//! - Sessions: a random 256-bit token in an `HttpOnly; SameSite=Strict; Path=/` cookie (or an
//!   `Authorization: Bearer` header for API clients); the database keeps only its SHA-256.
//!   A new token at every login (no fixation), idle expiry, logout deletes the row.
//! - CSRF: a per-session token, in a hidden `_csrf` field of every form or the
//!   `X-CSRF-Token` header of script requests, checked by [`session_layer`] on every unsafe
//!   request that authenticates with the cookie.
//! - Login CSRF: before any session exists, the login form carries a token signed with the
//!   process's key (`issued.nonce.hmac`), also set as the `ykt_login_csrf` cookie
//!   (`HttpOnly; SameSite=Strict; Path=/login`); `POST /login` needs both, equal and valid
//!   (signed double submit), so another site cannot log a browser in under its own account.
//!   `POST /api/v1/login` (JSON body, no cookie needed) is not a form a site can forge.
//! - Throttling: failed logins count per login name and per client address; 5 failures
//!   within 15 minutes lock that key for 15 minutes (stored in the database).

use super::layout;
use super::{PageError, WebState};
use crate::server::ApiError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use ykt_kernel::audit::AuditRecord;
use ykt_kernel::{RegionCode, Role, User};
use ykt_store::sessions::SessionRow;

/// The session cookie's name.
pub const COOKIE: &str = "ykt_session";
/// The CSRF header for script requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The CSRF form field.
pub const CSRF_FIELD: &str = "_csrf";
/// The login form's CSRF cookie (before any session exists).
pub const LOGIN_CSRF_COOKIE: &str = "ykt_login_csrf";
/// How long a login form's token is valid (seconds).
pub const LOGIN_CSRF_SECONDS: i64 = 2 * 3600;

/// Argon2id memory cost in KiB (19 MiB).
pub const ARGON2_M_KIB: u32 = 19_456;
/// Argon2id iterations.
pub const ARGON2_T: u32 = 2;
/// Argon2id lanes.
pub const ARGON2_P: u32 = 1;

/// The password hasher with the platform's parameters.
pub fn argon2() -> Argon2<'static> {
    // The constants are valid parameters (checked by a test); fall back to the crate's
    // defaults (also Argon2id, 19 MiB, t = 2) rather than panic.
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a password could not be set.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("密码至少需要10个字符 (the password needs at least 10 characters)")]
    TooShort,
    #[error("无法计算密码摘要 (cannot hash the password): {0}")]
    Hash(String),
}

/// Minimum password length in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Hash a new password (argon2id PHC string).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the stored hash (a malformed hash never matches).
pub fn verify_password(stored: &str, password: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(h) => argon2().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn login_mac(key: &[u8; 32], payload: &str) -> hmac::Hmac<Sha256> {
    use hmac::Mac;
    let mut m =
        <hmac::Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    m.update(b"ykt-login-csrf:");
    m.update(payload.as_bytes());
    m
}

/// A new login-form token: `issued.nonce.mac` (hex), signed with the process's key.
pub fn login_csrf_token(key: &[u8; 32], now: i64) -> String {
    use hmac::Mac;
    let mut nonce = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let payload = format!("{now}.{}", hex::encode(nonce));
    let mac = hex::encode(login_mac(key, &payload).finalize().into_bytes());
    format!("{payload}.{mac}")
}

/// Whether the login form's field and cookie carry the same token, signed by this process
/// and not older than [`LOGIN_CSRF_SECONDS`].
pub fn login_csrf_ok(key: &[u8; 32], now: i64, field: &str, cookie: Option<&str>) -> bool {
    use hmac::Mac;
    if cookie != Some(field) {
        return false;
    }
    let mut parts = field.rsplitn(2, '.');
    let (Some(mac), Some(payload)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Some(issued) = payload
        .split_once('.')
        .and_then(|(t, _)| t.parse::<i64>().ok())
    else {
        return false;
    };
    let age = now - issued;
    if !(0..=LOGIN_CSRF_SECONDS).contains(&age) {
        return false;
    }
    match hex::decode(mac) {
        Ok(m) => login_mac(key, payload).verify_slice(&m).is_ok(),
        Err(_) => false,
    }
}

/// The logged-in user of a request, as loaded by [`session_layer`].
#[derive(Debug, Clone)]
pub struct Operator {
    pub user: User,
    pub csrf: String,
    token_hash: String,
    pub via_bearer: bool,
}

/// A refusal by the guard: 403 with a message in Chinese.
#[derive(Debug)]
pub struct Forbidden(pub String);

impl From<Forbidden> for PageError {
    fn from(f: Forbidden) -> PageError {
        PageError::forbidden(f.0)
    }
}
impl From<Forbidden> for ApiError {
    fn from(f: Forbidden) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", f.0)
    }
}

impl Operator {
    /// The user must hold one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Forbidden> {
        if roles.iter().any(|r| self.user.has(*r)) {
            Ok(())
        } else {
            Err(Forbidden(format!(
                "用户{}没有此功能的权限（需要以下角色之一：{}）(role required)",
                self.user.login,
                roles
                    .iter()
                    .map(|r| r.label_zh())
                    .collect::<Vec<_>>()
                    .join("、")
            )))
        }
    }
    /// The data of `region` must lie in the user's scope.
    pub fn covers(&self, region: &str) -> Result<(), Forbidden> {
        match RegionCode::parse(region) {
            Ok(r) if self.user.covers(&r) => Ok(()),
            _ => Err(Forbidden(format!(
                "区划{region}不在用户{}的管辖范围（{}）内 (outside the user's region)",
                self.user.login,
                self.user.region.full()
            ))),
        }
    }
    /// A record looked up by id for this user: a record that does not exist and one whose
    /// region lies outside the user's scope get the same 404 with the same message, so ids
    /// outside the scope cannot be probed (every id-taking route goes through this).
    pub fn in_scope<T>(
        &self,
        found: Option<T>,
        region: impl FnOnce(&T) -> &str,
        what: &str,
    ) -> Result<T, PageError> {
        match found {
            Some(t) if self.covers(region(&t)).is_ok() => Ok(t),
            _ => Err(PageError::not_found(format!(
                "未找到该{what}（不存在，或不在您的管辖范围内）(not found)"
            ))),
        }
    }
    /// The role recorded in audit entries for this user's actions.
    pub fn audit_role(&self) -> &'static str {
        self.user
            .roles
            .first()
            .map(|r| r.as_str())
            .unwrap_or("none")
    }
}

impl FromRequestParts<WebState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &WebState,
    ) -> Result<Operator, Response> {
        match parts.extensions.get::<Option<Operator>>() {
            Some(Some(op)) => Ok(op.clone()),
            _ if parts.uri.path().starts_with("/api/") => {
                Err(ApiError::unauthorized("请先登录 (login required)").into_response())
            }
            _ => Err(Redirect::to("/login").into_response()),
        }
    }
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, COOKIE)
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_owned())
}

/// Load the request's session (cookie or bearer token), end it when idle or expired, and
/// check the CSRF token of every unsafe request that authenticates with the cookie. The
/// result is put into the request's extensions for [`Operator`].
pub async fn session_layer(State(st): State<WebState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let bearer = bearer_token(&parts.headers);
    let via_bearer = bearer.is_some();
    let token = bearer.or_else(|| cookie_token(&parts.headers));
    let op = match token {
        Some(t) => match load_operator(&st, &t, via_bearer).await {
            Ok(op) => op,
            Err(e) => return e.into_response(),
        },
        None => None,
    };
    let path = parts.uri.path().to_owned();
    let api = path.starts_with("/api/");
    let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let mut body = body;
    if unsafe_method
        && let Some(op) = op.as_ref().filter(|o| !o.via_bearer)
        && path != "/login"
        && path != "/api/v1/login"
    {
        let header_ok = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == op.csrf);
        let mut ok = header_ok;
        if !ok && is_form(&parts.headers) {
            match axum::body::to_bytes(body, 1024 * 1024).await {
                Ok(bytes) => {
                    ok = form_field(&bytes, CSRF_FIELD).is_some_and(|v| v == op.csrf);
                    body = Body::from(bytes);
                }
                Err(_) => {
                    return PageError::bad_request("表单过大 (form too large)").into_response();
                }
            }
        }
        // A roster upload without script (multipart form): the token is the form's first
        // field, checked by the upload handler before it reads the file.
        let upload = matches!(path.as_str(), "/rosters" | "/api/v1/rosters");
        if !ok && upload && is_multipart(&parts.headers) {
            parts.extensions.insert(CsrfInForm(op.csrf.clone()));
            ok = true;
        }
        if !ok {
            tracing::warn!(user = %op.user.login, path = %path, "request refused: CSRF token missing or wrong");
            let msg = "安全校验失败：页面已过期或来源不明，请刷新页面后重试 (CSRF token missing or wrong)";
            return if api {
                ApiError::new(StatusCode::FORBIDDEN, "csrf", msg).into_response()
            } else {
                PageError::forbidden(msg).into_response()
            };
        }
    }
    parts.extensions.insert(op);
    let mut resp = next.run(Request::from_parts(parts, body)).await;
    secure_headers(&path, resp.headers_mut());
    resp
}

/// Browser hardening on every console and API response: only our own scripts and styles, no
/// framing, no MIME sniffing, no referrer to other sites, and pages with personal data never
/// cached.
fn secure_headers(path: &str, h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !path.starts_with("/static/") {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// The CSRF token a multipart upload must carry as its `_csrf` field (set by
/// [`session_layer`] when the header is absent).
#[derive(Debug, Clone)]
pub struct CsrfInForm(pub String);

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"))
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// A field of an urlencoded body, undecoded (the CSRF token is plain hex).
fn form_field<'a>(body: &'a [u8], name: &str) -> Option<&'a str> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn load_operator(
    st: &WebState,
    token: &str,
    via_bearer: bool,
) -> Result<Option<Operator>, PageError> {
    let hash = token_hash(token);
    let Some(s) = st.store.session(&hash).await? else {
        return Ok(None);
    };
    let now = st.now();
    if now - s.last_seen > st.config.idle_seconds || now >= s.expires_at {
        st.store.delete_session(&hash).await?;
        return Ok(None);
    }
    let Some(row) = st.store.get_user(&s.login).await? else {
        st.store.delete_session(&hash).await?;
        return Ok(None);
    };
    if row.disabled {
        st.store.delete_session(&hash).await?;
        return Ok(None);
    }
    let Some(user) = user_of_row(&row) else {
        tracing::warn!(user = %row.login, "stored user has an invalid role or region; session refused");
        return Ok(None);
    };
    // Activity is recorded at most once a minute (idle expiry is counted in minutes), and
    // best effort: on SQLite a long roster import holds the write lock for seconds, and a
    // console request must not fail because its session's clock could not be moved on then.
    if now - s.last_seen >= TOUCH_EVERY_SECONDS {
        if let Err(e) = st.store.touch_session(&hash, now).await {
            tracing::warn!(error = %e, "could not record session activity; the session stays valid");
        }
    }
    Ok(Some(Operator {
        user,
        csrf: s.csrf,
        token_hash: hash,
        via_bearer,
    }))
}

/// How often a session's `last_seen` is written: at most once a minute per session.
const TOUCH_EVERY_SECONDS: i64 = 60;

/// A stored user as the kernel's `User` (`None` when a role or the region is invalid).
pub fn user_of_row(row: &ykt_store::UserRow) -> Option<User> {
    let roles = row
        .roles
        .iter()
        .map(|r| Role::parse(r))
        .collect::<Option<Vec<_>>>()?;
    Some(User {
        login: row.login.clone(),
        name: row.display_name.clone(),
        roles,
        region: RegionCode::parse(&row.region).ok()?,
        bank: None,
    })
}

/// Append an audit entry for a console action (failures are logged: the action itself
/// already committed with its own audit entry where it changed data).
pub async fn audit(
    st: &WebState,
    actor: &str,
    role: &str,
    action: &str,
    subject: String,
    detail: serde_json::Value,
) {
    let rec = AuditRecord {
        at: chrono::DateTime::from_timestamp(st.now(), 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        actor: actor.to_owned(),
        role: role.to_owned(),
        action: action.to_owned(),
        subject,
        from_state: None,
        to_state: None,
        detail,
    };
    if let Err(e) = st.store.append_audit(rec).await {
        tracing::error!(error = %e, action, "cannot write the audit entry");
    }
}

fn client_ip(parts_ext: &axum::http::Extensions) -> String {
    parts_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "local".into())
}

/// Why a login failed.
#[derive(Debug)]
pub enum LoginError {
    /// Wrong login or password (never says which).
    Wrong,
    /// Too many failures: locked until (unix seconds).
    Locked(i64),
    Internal(String),
}

impl LoginError {
    fn message(&self) -> String {
        match self {
            LoginError::Wrong => "用户名或密码错误，或账户已停用 (wrong login or password)".into(),
            LoginError::Locked(until) => {
                let t = chrono::DateTime::from_timestamp(*until, 0)
                    .map(|t| {
                        t.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"))
                            .format("%H:%M")
                            .to_string()
                    })
                    .unwrap_or_default();
                format!(
                    "登录失败次数过多，已暂停登录至 {t}（北京时间）(too many failed logins, locked)"
                )
            }
            LoginError::Internal(_) => "服务器内部错误，请稍后重试 (internal error)".into(),
        }
    }
    fn status(&self) -> StatusCode {
        match self {
            LoginError::Wrong => StatusCode::UNAUTHORIZED,
            LoginError::Locked(_) => StatusCode::TOO_MANY_REQUESTS,
            LoginError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A new session for `login`.
pub struct NewSession {
    pub token: String,
    pub csrf: String,
}

/// Check the password (with throttling) and open a new session.
pub async fn login(
    st: &WebState,
    login: &str,
    password: &str,
    ip: &str,
    previous_token: Option<&str>,
) -> Result<NewSession, LoginError> {
    let internal = |e: ykt_store::StoreError| {
        tracing::error!(error = %e, "login failed inside");
        LoginError::Internal(e.to_string())
    };
    let now = st.now();
    let login = login.trim();
    let keys = [format!("login:{login}"), format!("ip:{ip}")];
    for k in &keys {
        if let Some(until) = st.store.login_locked(k, now).await.map_err(internal)? {
            audit(
                st,
                login,
                "none",
                "auth.login_locked",
                format!("user:{login}"),
                serde_json::json!({"ip": ip}),
            )
            .await;
            return Err(LoginError::Locked(until));
        }
    }
    let row = st.store.get_user(login).await.map_err(internal)?;
    let ok = match &row {
        Some(r) if !r.disabled => r
            .password_hash
            .as_deref()
            .is_some_and(|h| verify_password(h, password)),
        _ => {
            // Spend the same time as a real check, so timing does not tell whether the
            // login exists.
            let _ = hash_password("timing-equaliser-password");
            false
        }
    };
    let user = row.as_ref().filter(|_| ok).and_then(user_of_row);
    let Some(user) = user else {
        let mut locked = None;
        for k in &keys {
            if let Some(u) = st
                .store
                .record_login_failure(k, now, st.config.throttle)
                .await
                .map_err(internal)?
            {
                locked = Some(u);
            }
        }
        audit(
            st,
            login,
            "none",
            "auth.login_failed",
            format!("user:{login}"),
            serde_json::json!({"ip": ip}),
        )
        .await;
        return Err(match locked {
            Some(u) => LoginError::Locked(u),
            None => LoginError::Wrong,
        });
    };
    for k in &keys {
        st.store.clear_login_failures(k).await.map_err(internal)?;
    }
    if let Some(old) = previous_token {
        st.store
            .delete_session(&token_hash(old))
            .await
            .map_err(internal)?;
    }
    let token = random_hex();
    let csrf = random_hex();
    st.store
        .create_session(&SessionRow {
            token_hash: token_hash(&token),
            login: user.login.clone(),
            csrf: csrf.clone(),
            created_at: now,
            last_seen: now,
            expires_at: now + st.config.max_seconds,
        })
        .await
        .map_err(internal)?;
    audit(
        st,
        &user.login,
        user.roles.first().map(|r| r.as_str()).unwrap_or("none"),
        "auth.login",
        format!("user:{}", user.login),
        serde_json::json!({"ip": ip}),
    )
    .await;
    Ok(NewSession { token, csrf })
}

fn set_cookie(st: &WebState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if st.config.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("ykt_session=; Path=/"))
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    pub login: String,
    pub password: String,
    /// The login form's CSRF token.
    #[serde(default, rename = "_csrf")]
    pub csrf: String,
}

pub async fn login_page(State(st): State<WebState>, op: Option<Operator>) -> Response {
    if op.is_some() {
        return Redirect::to("/").into_response();
    }
    login_form(&st, None, StatusCode::OK)
}

/// The login form with a fresh CSRF token, in the page and in its cookie.
fn login_form(st: &WebState, error: Option<&str>, status: StatusCode) -> Response {
    let token = login_csrf_token(&st.login_key, st.now());
    let secure = if st.config.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    let cookie = HeaderValue::from_str(&format!(
        "{LOGIN_CSRF_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/login; Max-Age={LOGIN_CSRF_SECONDS}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("ykt_login_csrf=; Path=/login"));
    let mut resp = (
        status,
        layout::bare(
            "登录",
            &html! {
                div.card.login {
                    h1 { "惠民惠农财政补贴资金「一卡通」" }
                    h2 { "工作人员登录" }
                    @if let Some(e) = error { p.flash.error role="alert" { (e) } }
                    form method="post" action="/login" {
                        input type="hidden" name=(CSRF_FIELD) value=(token);
                        label { "用户名" input type="text" name="login" autocomplete="username" required autofocus; }
                        label { "密码" input type="password" name="password" autocomplete="current-password" required; }
                        button type="submit" { "登录" }
                    }
                    p.muted { "公众查询请访问 " a href="/portal/" { "补贴查询" } }
                }
            },
        ),
    )
        .into_response();
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    resp
}

impl OptionalFromRequestParts<WebState> for Operator {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        _state: &WebState,
    ) -> Result<Option<Operator>, std::convert::Infallible> {
        Ok(parts
            .extensions
            .get::<Option<Operator>>()
            .cloned()
            .flatten())
    }
}
use axum::extract::OptionalFromRequestParts;

pub async fn login_submit(
    State(st): State<WebState>,
    headers: HeaderMap,
    ext: axum::http::Extensions,
    axum::Form(f): axum::Form<LoginForm>,
) -> Response {
    let ip = client_ip(&ext);
    let presented = cookie_value(&headers, LOGIN_CSRF_COOKIE);
    if !login_csrf_ok(&st.login_key, st.now(), &f.csrf, presented.as_deref()) {
        tracing::warn!(ip = %ip, "login refused: login form's CSRF token missing, wrong or expired");
        audit(
            &st,
            f.login.trim(),
            "none",
            "auth.login_csrf",
            format!("user:{}", f.login.trim()),
            serde_json::json!({"ip": ip}),
        )
        .await;
        return login_form(
            &st,
            Some(
                "登录页面已过期或来源不明，请重新输入用户名和密码 (login form expired or not from this site)",
            ),
            StatusCode::FORBIDDEN,
        );
    }
    match login(
        &st,
        &f.login,
        &f.password,
        &ip,
        cookie_token(&headers).as_deref(),
    )
    .await
    {
        Ok(s) => {
            let mut resp = Redirect::to("/").into_response();
            let h = resp.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(&st, &s.token, st.config.max_seconds),
            );
            // The login form's token is used up.
            h.append(
                header::SET_COOKIE,
                HeaderValue::from_static(
                    "ykt_login_csrf=; HttpOnly; SameSite=Strict; Path=/login; Max-Age=0",
                ),
            );
            resp
        }
        Err(e) => login_form(&st, Some(&e.message()), e.status()),
    }
}

pub async fn logout(State(st): State<WebState>, op: Operator) -> Response {
    end_session(&st, &op).await;
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&st, "", 0));
    resp
}

async fn end_session(st: &WebState, op: &Operator) {
    if let Err(e) = st.store.delete_session(&op.token_hash).await {
        tracing::error!(error = %e, "cannot delete the session");
    }
    audit(
        st,
        &op.user.login,
        op.audit_role(),
        "auth.logout",
        format!("user:{}", op.user.login),
        serde_json::json!({}),
    )
    .await;
}

/// `POST /api/v1/login`: `{login, password}` → `{token, csrf, expires_in}`; use the token as
/// `Authorization: Bearer ...` (no CSRF header needed) or as the cookie it also sets.
pub async fn api_login(
    State(st): State<WebState>,
    ext: axum::http::Extensions,
    Json(f): Json<LoginFormJson>,
) -> Response {
    let ip = client_ip(&ext);
    match login(&st, &f.login, &f.password, &ip, None).await {
        Ok(s) => {
            let mut resp = Json(serde_json::json!({
                "token": s.token,
                "csrf": s.csrf,
                "idle_seconds": st.config.idle_seconds,
            }))
            .into_response();
            resp.headers_mut().insert(
                header::SET_COOKIE,
                set_cookie(&st, &s.token, st.config.max_seconds),
            );
            resp
        }
        Err(e) => {
            let code = match e {
                LoginError::Wrong => "unauthorized",
                LoginError::Locked(_) => "locked",
                LoginError::Internal(_) => "internal",
            };
            ApiError::new(e.status(), code, e.message()).into_response()
        }
    }
}

#[derive(serde::Deserialize)]
pub struct LoginFormJson {
    pub login: String,
    pub password: String,
}

/// `POST /api/v1/logout`.
pub async fn api_logout(State(st): State<WebState>, op: Operator) -> Response {
    end_session(&st, &op).await;
    let mut resp = Json(serde_json::json!({"status": "logged_out"})).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&st, "", 0));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_with_the_required_parameters() {
        let h = hash_password("correct horse battery").unwrap();
        let parsed = PasswordHash::new(&h).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        let p = Params::try_from(&parsed).unwrap();
        assert_eq!(p.m_cost(), 19_456, "at least 19 MiB");
        assert_eq!(p.t_cost(), 2, "two iterations");
        assert_eq!(p.p_cost(), 1);
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse batterz"));
        assert!(!verify_password("not a hash", "x"));
        assert!(matches!(
            hash_password("short"),
            Err(PasswordError::TooShort)
        ));
        // Two hashes of one password differ (random salt).
        assert_ne!(h, hash_password("correct horse battery").unwrap());
    }

    #[test]
    fn login_form_token_is_signed_double_submitted_and_expires() {
        let key = [7u8; 32];
        let t = login_csrf_token(&key, 1000);
        assert!(login_csrf_ok(&key, 1000, &t, Some(&t)));
        assert!(login_csrf_ok(&key, 1000 + LOGIN_CSRF_SECONDS, &t, Some(&t)));
        // No cookie, a different cookie, expired, issued in the future, another key.
        assert!(!login_csrf_ok(&key, 1000, &t, None));
        let other = login_csrf_token(&key, 1000);
        assert_ne!(t, other);
        assert!(!login_csrf_ok(&key, 1000, &t, Some(&other)));
        assert!(!login_csrf_ok(
            &key,
            1001 + LOGIN_CSRF_SECONDS,
            &t,
            Some(&t)
        ));
        assert!(!login_csrf_ok(&key, 999, &t, Some(&t)));
        assert!(!login_csrf_ok(&[8u8; 32], 1000, &t, Some(&t)));
        // A forged token (any payload with a made-up MAC), and garbage.
        let forged = format!("1000.{}.{}", "00".repeat(16), "ab".repeat(32));
        assert!(!login_csrf_ok(&key, 1000, &forged, Some(&forged)));
        for junk in ["", ".", "x.y.z", "1000..", "1000"] {
            assert!(!login_csrf_ok(&key, 1000, junk, Some(junk)), "{junk:?}");
        }
    }

    #[test]
    fn csrf_field_and_cookie_parsing() {
        assert_eq!(form_field(b"a=1&_csrf=abc&b=2", "_csrf"), Some("abc"));
        assert_eq!(form_field(b"a=1", "_csrf"), None);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("x=1; ykt_session=tok; y=2"),
        );
        assert_eq!(cookie_token(&h).as_deref(), Some("tok"));
        assert_eq!(token_hash("a").len(), 64);
    }
}
