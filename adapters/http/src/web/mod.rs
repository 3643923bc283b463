//! The operator console and its JSON API (issue #6): server-rendered pages in Chinese
//! ([`maud`]), CSS and a little JavaScript served from the binary under `/static/`, and the
//! same operations as JSON under `/api/v1`.
//!
//! Who may do what is decided in one place: [`auth::Operator`] (the session's user, loaded
//! by the session layer) with [`auth::Operator::require`] for the route's roles and
//! [`auth::Operator::covers`] for the region scope; batch steps are decided by the kernel's
//! workflow engine, through [`ConsoleOps`], which the composition root implements with the
//! same code paths as the CLI (this crate does not know the province crates).
//!
//! **Architecture invariant**: no workflow logic here. The console shows what
//! `ykt_kernel::workflow::available` allows and hands every action to [`ConsoleOps`].

pub mod admin;
pub mod api;
pub mod auth;
pub mod batches;
pub mod dashboard;
pub mod idempotency;
pub mod layout;
pub mod provinces;
pub mod registry;
pub mod rosters;

use async_trait::async_trait;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use chrono::NaiveDate;
use std::path::Path;
use std::sync::Arc;
use ykt_kernel::batch::BatchState;
use ykt_kernel::province::Province;
use ykt_kernel::{Fen, Role, User};
use ykt_store::Store;
use ykt_store::cycle::LineFix;

/// What a workflow step did (one entry per step: a step may trigger the province's
/// automatic follow-up step).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepDone {
    pub step: String,
    pub label: String,
    /// `None` when nothing moved (e.g. results still open).
    pub from: Option<BatchState>,
    pub to: Option<BatchState>,
    pub note: String,
}

/// What the operator entered with a step.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct StepInput {
    /// Why (required to return a batch).
    #[serde(default)]
    pub reason: Option<String>,
    /// Henan's procedural review: the county's agent bank (濮阳规程 第二十一条), when the
    /// county has more than one.
    #[serde(default)]
    pub bank: Option<String>,
    /// Henan's procedural review: the budget unit (default: the county's lead department).
    #[serde(default)]
    pub budget_unit: Option<String>,
}

impl StepInput {
    fn clean(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
    pub fn reason(&self) -> Option<&str> {
        Self::clean(&self.reason)
    }
    pub fn bank(&self) -> Option<&str> {
        Self::clean(&self.bank)
    }
    pub fn budget_unit(&self) -> Option<&str> {
        Self::clean(&self.budget_unit)
    }
}

/// A roster file received by the console.
#[derive(Debug, Clone)]
pub struct RosterUpload<'a> {
    pub path: &'a Path,
    pub file_name: &'a str,
    pub province: &'a str,
    pub project: &'a str,
    pub period: &'a str,
}

/// The outcome of a roster import.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RosterDone {
    Imported {
        roster_id: i64,
        lines: u64,
        accepted: u64,
        rejected: u64,
        batches: Vec<i64>,
    },
    /// The same file (same SHA-256) was imported before: nothing changed.
    AlreadyImported { roster_id: i64, at: String },
}

/// A deadline of the province's rules (publicity, hand-over checks...) for the dashboard.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadlineView {
    pub batch: Option<i64>,
    pub region: String,
    /// What must be done, e.g. "农村低保 发放名单公示".
    pub title: String,
    pub due: NaiveDate,
    /// Status in Chinese (按期、逾期3天...).
    pub status: String,
    /// Not met by its due date (met late or still open after it).
    pub overdue: bool,
    /// Still to be done.
    pub open: bool,
    /// The rule it comes from.
    pub basis: String,
}

/// A notice posted from the console (Heilongjiang's bulletin-board notice).
#[derive(Debug, Clone, serde::Serialize)]
pub struct NoticeDone {
    pub id: String,
    pub title: String,
    pub published_on: String,
    pub until: Option<String>,
}

/// A candidate agent bank as entered by provincial finance (Henan, 濮阳规程 第十五条).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct BankCandidate {
    pub code: String,
    pub name: String,
    pub agreement_no: String,
    /// 已对接一卡通系统.
    #[serde(default)]
    pub connected: bool,
    /// 支持免费跨行发放.
    #[serde(default)]
    pub free_interbank: bool,
}

/// Why an operation did not happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OpError {
    /// The kernel's workflow engine refused the step for this user (403), with a code per
    /// reason (`workflow.role_denied`, `workflow.out_of_scope`, `workflow.wrong_state`,
    /// `workflow.maker_checker`, `workflow.unknown_step`).
    #[error(transparent)]
    Workflow(#[from] ykt_kernel::workflow::WorkflowError),
    /// A rule refused it for this user (403).
    #[error("{0}")]
    Refused(String),
    /// The request is not valid (422): bad file, unknown project, wrong state...
    #[error("{0}")]
    Invalid(String),
    /// Someone else changed the record first, e.g. another reviewer's approval of the same
    /// step committed a moment earlier (409): refresh and look again.
    #[error("{0}")]
    Conflict(String),
    /// Something failed inside (500; the cause is logged, never shown).
    #[error("{0}")]
    Internal(String),
}

/// The operations the console performs, implemented by the composition root with the code
/// paths the CLI uses (`ykt batch step`, `ykt import roster`, `ykt batch correct` ...), so
/// the console never duplicates workflow logic.
#[async_trait]
pub trait ConsoleOps: Send + Sync {
    /// The compiled-in provinces, built from the configuration.
    fn provinces(&self) -> Vec<Arc<dyn Province>>;
    /// The platform's date (`YKT_TODAY` or the clock).
    fn today(&self) -> NaiveDate;
    /// Take a workflow step (and the province's automatic follow-up).
    async fn step(
        &self,
        batch: i64,
        step: &str,
        user: &User,
        input: &StepInput,
    ) -> Result<Vec<StepDone>, OpError>;
    /// Import a roster: validate, match, cross-check and form batches.
    async fn import_roster(
        &self,
        upload: RosterUpload<'_>,
        user: &User,
    ) -> Result<RosterDone, OpError>;
    /// Correct a failed line with the sign-offs the province requires.
    async fn correct(
        &self,
        batch: i64,
        line: i64,
        fix: LineFix,
        user: &User,
    ) -> Result<(), OpError>;
    /// Send corrected lines to the bank again (new attempts).
    async fn redispatch(&self, batch: i64, user: &User) -> Result<usize, OpError>;
    /// The deadlines of the province's rules that concern batches in `user`'s region.
    async fn deadlines(&self, user: &User) -> Result<Vec<DeadlineView>, OpError> {
        let _ = user;
        Ok(Vec::new())
    }
    /// Heilongjiang: post the bulletin-board notice of a reviewed batch (`ykt heilongjiang
    /// bulletin`); posting again changes nothing.
    async fn post_bulletin(&self, batch: i64, user: &User) -> Result<NoticeDone, OpError> {
        let _ = (batch, user);
        Err(not_compiled("黑龙江省"))
    }
    /// Henan: provincial finance registers a candidate agent bank (`ykt henan bank add`).
    async fn henan_add_bank(&self, user: &User, bank: &BankCandidate) -> Result<(), OpError> {
        let _ = (user, bank);
        Err(not_compiled("河南省"))
    }
    /// Henan: county finance selects one of the candidates for its county (`ykt henan bank
    /// select`).
    async fn henan_select_bank(
        &self,
        user: &User,
        county: &str,
        bank: &str,
        agreement_no: &str,
    ) -> Result<(), OpError> {
        let _ = (user, county, bank, agreement_no);
        Err(not_compiled("河南省"))
    }
    /// Henan: the next approval of a project-library change request (county → city →
    /// province finance; the province's approval applies it), or its rejection (`ykt henan
    /// library approve|reject`); the request's new state, in Chinese.
    async fn henan_change_step(
        &self,
        id: i64,
        user: &User,
        reject: bool,
        note: Option<&str>,
    ) -> Result<String, OpError> {
        let _ = (id, user, reject, note);
        Err(not_compiled("河南省"))
    }
    /// Sichuan: record an objection raised during the pre-payment publicity (`ykt sichuan
    /// objection add`); the objection's id.
    async fn sichuan_raise_objection(
        &self,
        batch: i64,
        line: Option<i64>,
        raised_by: &str,
        content: &str,
        user: &User,
    ) -> Result<i64, OpError> {
        let _ = (batch, line, raised_by, content, user);
        Err(not_compiled("四川省"))
    }
    /// Sichuan: resolve an objection, upheld (the line leaves the batch) or dismissed (`ykt
    /// sichuan objection resolve`); what it did, in Chinese.
    async fn sichuan_resolve_objection(
        &self,
        id: i64,
        upheld: bool,
        note: &str,
        user: &User,
    ) -> Result<String, OpError> {
        let _ = (id, upheld, note, user);
        Err(not_compiled("四川省"))
    }
    /// Refund a failed line through the original channel.
    async fn refund(
        &self,
        batch: i64,
        line: i64,
        reason: &str,
        requester: &User,
        approver: &User,
    ) -> Result<Fen, OpError>;
}

fn not_compiled(province: &str) -> OpError {
    OpError::Invalid(format!(
        "本部署未包含{province}，无法办理此事项 (province not compiled in)"
    ))
}

/// Console settings.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Idle time after which a session ends (seconds).
    pub idle_seconds: i64,
    /// Absolute session lifetime (seconds).
    pub max_seconds: i64,
    /// Add `Secure` to the cookie (behind HTTPS).
    pub secure_cookie: bool,
    pub throttle: ykt_store::sessions::ThrottlePolicy,
}

impl Default for WebConfig {
    fn default() -> WebConfig {
        WebConfig {
            idle_seconds: 30 * 60,
            max_seconds: 12 * 3600,
            secure_cookie: false,
            throttle: Default::default(),
        }
    }
}

/// The console's shared state.
#[derive(Clone)]
pub struct WebState {
    pub store: Store,
    pub ops: Arc<dyn ConsoleOps>,
    pub config: Arc<WebConfig>,
    pub provinces: Arc<Vec<Arc<dyn Province>>>,
    /// Unix seconds now (replaceable in tests).
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// The key signing the login form's CSRF token (random per process: a login page
    /// loaded before a restart must be loaded again).
    pub login_key: Arc<[u8; 32]>,
}

impl WebState {
    pub fn new(store: Store, ops: Arc<dyn ConsoleOps>, config: WebConfig) -> WebState {
        let provinces = Arc::new(ops.provinces());
        WebState {
            store,
            ops,
            config: Arc::new(config),
            provinces,
            clock: Arc::new(|| chrono::Utc::now().timestamp()),
            login_key: Arc::new(rand::random()),
        }
    }
    pub fn now(&self) -> i64 {
        (self.clock)()
    }
    pub fn province(&self, code: &str) -> Option<&Arc<dyn Province>> {
        self.provinces.iter().find(|p| p.code() == code)
    }
}

/// Roles that prepare rosters and see a batch's lines unmasked (their own department's
/// data); everyone else sees them masked (DOMAIN.md §3 masking).
pub fn sees_full_data(user: &User) -> bool {
    [Role::TownshipClerk, Role::DeptMaker, Role::DeptHead]
        .iter()
        .any(|r| user.has(*r))
}

/// Roles that may upload rosters.
pub const UPLOADERS: &[Role] = &[Role::TownshipClerk, Role::DeptMaker];
/// Roles that may read the audit log.
pub const AUDIT_READERS: &[Role] = &[Role::Auditor, Role::Admin];

/// The console's pages as `(method, path, handler)`; [`router`] is built from it.
fn table() -> Vec<(&'static str, &'static str, MethodRouter<WebState>)> {
    vec![
        ("GET", "/", get(dashboard::page)),
        ("GET", "/login", get(auth::login_page)),
        ("POST", "/login", post(auth::login_submit)),
        ("POST", "/logout", post(auth::logout)),
        ("GET", "/batches", get(batches::list_page)),
        ("GET", "/batches/{id}", get(batches::detail_page)),
        ("POST", "/batches/{id}/step", post(batches::step_submit)),
        (
            "POST",
            "/batches/{id}/lines/{line}/correct",
            post(batches::correct_submit),
        ),
        (
            "POST",
            "/batches/{id}/redispatch",
            post(batches::redispatch_submit),
        ),
        (
            "POST",
            "/batches/{id}/lines/{line}/refund",
            post(batches::refund_submit),
        ),
        (
            "POST",
            "/batches/{id}/bulletin",
            post(provinces::bulletin_submit),
        ),
        (
            "POST",
            "/batches/{id}/objections",
            post(provinces::objection_submit),
        ),
        (
            "POST",
            "/objections/{id}/resolve",
            post(provinces::resolve_submit),
        ),
        (
            "POST",
            "/library/requests/{id}/approve",
            post(provinces::change_approve_submit),
        ),
        (
            "POST",
            "/library/requests/{id}/reject",
            post(provinces::change_reject_submit),
        ),
        (
            "POST",
            "/banks/candidates",
            post(provinces::candidate_submit),
        ),
        ("POST", "/banks/select", post(provinces::select_submit)),
        ("GET", "/rosters/new", get(rosters::upload_page)),
        ("POST", "/rosters", post(rosters::upload_submit)),
        ("GET", "/rosters/{id}", get(rosters::result_page)),
        (
            "GET",
            "/rosters/{id}/result.xlsx",
            get(rosters::result_xlsx),
        ),
        ("GET", "/batches/{id}/lines.xlsx", get(registry::batch_xlsx)),
        ("GET", "/catalog", get(admin::catalog_page)),
        ("GET", "/library", get(registry::library_page)),
        ("GET", "/banks", get(registry::banks_page)),
        ("GET", "/reports", get(registry::reports_page)),
        ("GET", "/notices", get(admin::notices_page)),
        ("GET", "/audit", get(admin::audit_page)),
        ("GET", "/users", get(admin::users_page)),
        ("POST", "/users", post(admin::user_save)),
        ("POST", "/users/{login}/disable", post(admin::user_disable)),
        (
            "POST",
            "/users/{login}/password",
            post(admin::user_password),
        ),
        ("GET", "/static/app.css", get(css)),
        ("GET", "/static/app.js", get(js)),
    ]
}

/// Every console route as `(method, path)` (the route × role tests walk this list).
pub fn console_routes() -> Vec<(&'static str, &'static str)> {
    table().into_iter().map(|(m, p, _)| (m, p)).collect()
}

/// A router from a route table (methods of one path are merged).
fn build(t: Vec<(&'static str, &'static str, MethodRouter<WebState>)>) -> Router<WebState> {
    let mut by_path: Vec<(&'static str, MethodRouter<WebState>)> = Vec::new();
    for (_, path, mr) in t {
        match by_path.iter_mut().find(|(p, _)| *p == path) {
            Some((_, existing)) => {
                let prev = std::mem::take(existing);
                *existing = prev.merge(mr);
            }
            None => by_path.push((path, mr)),
        }
    }
    by_path
        .into_iter()
        .fold(Router::new(), |r, (p, mr)| r.route(p, mr))
}

/// The console and the API, under the session layer.
pub fn router(state: WebState) -> Router {
    build(table())
        .merge(api::router().layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        )))
        .layer(axum::extract::DefaultBodyLimit::max(256 * 1024 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::session_layer,
        ))
        .with_state(state)
}

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        JS,
    )
        .into_response()
}

/// An error shown as a console page (status, title, message in Chinese).
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError {
            status,
            message: message.into(),
        }
    }
    pub fn forbidden(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::FORBIDDEN, message)
    }
    pub fn not_found(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::NOT_FOUND, message)
    }
    pub fn bad_request(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn internal(cause: &dyn std::fmt::Display) -> PageError {
        tracing::error!(error = %cause, "console request failed");
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "服务器内部错误，请稍后重试或联系系统管理员 (internal error)",
        )
    }
}

impl From<ykt_store::StoreError> for PageError {
    fn from(e: ykt_store::StoreError) -> PageError {
        PageError::internal(&e)
    }
}

impl From<OpError> for PageError {
    fn from(e: OpError) -> PageError {
        match e {
            OpError::Refused(m) => PageError::forbidden(m),
            OpError::Workflow(w) => PageError::forbidden(w.to_string()),
            OpError::Invalid(m) => PageError::new(StatusCode::UNPROCESSABLE_ENTITY, m),
            OpError::Conflict(m) => PageError::new(StatusCode::CONFLICT, m),
            OpError::Internal(m) => PageError::internal(&m),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::FORBIDDEN => "无权操作",
            StatusCode::NOT_FOUND => "未找到",
            StatusCode::UNAUTHORIZED => "请先登录",
            s if s.is_server_error() => "系统错误",
            _ => "操作未完成",
        };
        (
            self.status,
            layout::bare(
                title,
                &maud::html! {
                    div.card.error {
                        h1 { (title) }
                        p.message { (self.message) }
                        p { a href="/" { "返回工作台" } " · " a href="/batches" { "发放批次" } }
                    }
                },
            ),
        )
            .into_response()
    }
}

/// The API code of a workflow refusal.
pub fn workflow_code(w: &ykt_kernel::workflow::WorkflowError) -> &'static str {
    use ykt_kernel::workflow::WorkflowError as W;
    match w {
        W::UnknownStep(_) => "workflow.unknown_step",
        W::RoleDenied { .. } => "workflow.role_denied",
        W::OutOfScope { .. } => "workflow.out_of_scope",
        W::WrongState { .. } => "workflow.wrong_state",
        W::MakerChecker { .. } => "workflow.maker_checker",
    }
}

impl From<OpError> for crate::server::ApiError {
    fn from(e: OpError) -> crate::server::ApiError {
        use crate::server::ApiError;
        match e {
            OpError::Refused(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            OpError::Workflow(w) => {
                ApiError::new(StatusCode::FORBIDDEN, workflow_code(&w), w.to_string())
            }
            OpError::Invalid(m) => ApiError::unprocessable(m),
            OpError::Conflict(m) => ApiError::conflict(m),
            OpError::Internal(m) => ApiError::internal(&m),
        }
    }
}
