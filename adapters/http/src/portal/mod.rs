//! The public portal (惠民惠农补贴公开): what anyone may see, without an account.
//!
//! - **补贴政策** (`/portal/policies`): the policy list of every project in the catalogues of
//!   the compiled-in provinces: name, policy basis, target, standard, conditions, lead unit
//!   (黑财监〔2023〕1号 二: "将列入《计划》的补贴项目相关政策文件上传到专区“补贴政策”专栏向社会
//!   公开"; 塔河县方案(七): "公开补贴政策清单，包括补贴名称、政策依据、补贴对象、补贴标准、补贴
//!   条件、主管部门").
//! - **补贴查询** (`/portal/lookup`): a person enters resident ID and name and sees their own
//!   payments (project, period, amount, date, status), with the name masked (DOMAIN.md §3).
//!   The records are found by the store's keyed blind index of ID and name together
//!   ([`ykt_store::Store::lookup_key`]): a wrong name, a wrong ID and a person never paid
//!   get the very same answer, byte for byte, after the same work (one key computation, one
//!   indexed query), so nothing tells which part was wrong or whether the ID exists.
//!   An ID that fails the GB 11643 format or check digit gets a format error: that depends
//!   only on what was typed, so it reveals nothing about anyone (and it helps a person who
//!   mistyped). Lookups are rate-limited per client ([`limit`]): 429 with `Retry-After`.
//!   The form is posted, so identifiers never appear in URLs, access logs or history.
//! - **公示公告** (`/portal/notices`): published notices (masked text only, as the disclosure
//!   channel stored them) per region and project; withdrawn notices are not shown.
//!
//! Every page has a JSON twin under `/api/v1/public/` (`policies`, `lookup`, `notices`,
//! `notices/{id}`). Pages are server-rendered (maud) in Chinese, printable, with the style
//! sheet served from the binary (no CDN, no script). Responses carry `no-store` where they hold
//! personal data and the usual hardening headers everywhere.

pub mod batch;
pub mod limit;
mod pages;
#[cfg(test)]
mod tests;

use crate::server::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use ykt_kernel::province::Province;
use ykt_kernel::{ResidentId, intake};
use ykt_store::Store;

pub use limit::RateLimiter;

/// Settings of the portal (`[portal]` in `ykt.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortalConfig {
    /// Lookups a client may make at once.
    pub lookup_burst: u32,
    /// Lookups per minute a client regains after the burst; 0 turns the limit off (only for
    /// benchmarks: never in production).
    pub lookup_per_minute: u32,
    /// Take the client address from the last `X-Forwarded-For` entry (set this only behind a
    /// reverse proxy that appends it; otherwise anyone could pick their own address).
    pub trust_forwarded_for: bool,
    /// Lookup queries the portal runs at once; lookups arriving meanwhile wait and go
    /// together in the next query (see [`batch`]). About the number of cores.
    pub lookup_queries: usize,
}

impl Default for PortalConfig {
    fn default() -> PortalConfig {
        PortalConfig {
            lookup_burst: 10,
            lookup_per_minute: 10,
            trust_forwarded_for: false,
            lookup_queries: 2,
        }
    }
}

/// One project of the policy list (补贴政策清单).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub code: String,
    /// 补贴名称
    pub name: String,
    /// 政策依据
    pub basis: String,
    /// 补贴对象
    pub target: String,
    /// 补贴标准
    pub standard: String,
    /// 补贴条件
    pub conditions: String,
    /// 主管部门 (省级牵头组织实施单位)
    pub department: String,
    /// 发放频次
    pub frequency: String,
}

/// The policy list of one province.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyList {
    pub province: String,
    pub province_name: String,
    pub policies: Vec<Policy>,
}

impl PolicyList {
    /// The policy list of a province's catalogue (sub-items included, in catalogue order).
    pub fn of(p: &dyn Province) -> PolicyList {
        let policies = p
            .catalog()
            .projects()
            .iter()
            .map(|pr| {
                let standard = if !pr.standard_text.trim().is_empty() {
                    pr.standard_text.clone()
                } else {
                    match (&pr.standard, &pr.unit) {
                        (Some(s), Some(u)) => format!("{s}元/{u}"),
                        (Some(s), None) => format!("{s}元"),
                        _ => String::new(),
                    }
                };
                Policy {
                    code: pr.code.clone(),
                    name: pr.name.clone(),
                    basis: pr.policy_basis.clone(),
                    target: pr.target.clone(),
                    standard,
                    conditions: pr.conditions.clone(),
                    department: pr.lead_unit.clone(),
                    frequency: pr.frequency.label_zh().to_owned(),
                }
            })
            .collect();
        PolicyList {
            province: p.code().to_owned(),
            province_name: p.name().to_owned(),
            policies,
        }
    }
}

/// What the portal's handlers share.
#[derive(Clone)]
pub struct PortalState {
    store: Store,
    policies: Arc<Vec<PolicyList>>,
    limiter: Arc<RateLimiter>,
    config: Arc<PortalConfig>,
    batcher: batch::LookupBatcher,
}

/// Lookups at most in one query.
const LOOKUPS_PER_QUERY: usize = 64;

impl PortalState {
    /// The portal's state. Starts the lookup batcher, so call it inside the tokio runtime.
    pub fn new(store: Store, policies: Vec<PolicyList>, config: PortalConfig) -> PortalState {
        PortalState {
            batcher: batch::LookupBatcher::spawn(
                store.clone(),
                config.lookup_queries,
                LOOKUPS_PER_QUERY,
            ),
            store,
            policies: Arc::new(policies),
            limiter: Arc::new(RateLimiter::new(
                config.lookup_burst,
                config.lookup_per_minute,
            )),
            config: Arc::new(config),
        }
    }
}

/// The portal's pages under `/portal` and their JSON twins under `/api/v1/public`.
pub fn router(state: PortalState) -> Router {
    Router::new()
        .route("/portal", get(pages::index))
        .route("/portal/", get(pages::index))
        .route("/portal/style.css", get(pages::style))
        .route("/portal/policies", get(pages::policies))
        .route(
            "/portal/lookup",
            get(pages::lookup_form).post(pages::lookup_page),
        )
        .route("/portal/notices", get(pages::notices))
        .route("/portal/notices/{id}", get(pages::notice))
        .route("/api/v1/public/policies", get(api_policies))
        .route("/api/v1/public/lookup", axum::routing::post(api_lookup))
        .route("/api/v1/public/notices", get(api_notices))
        .route("/api/v1/public/notices/{id}", get(api_notice))
        .layer(axum::middleware::map_response(harden))
        .with_state(state)
}

/// Headers on every portal response: no sniffing, no framing, no referrer (a lookup result
/// page must not leak to another site), nothing loaded from elsewhere.
async fn harden(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; script-src 'none'; frame-ancestors 'none'"),
    );
    r
}

/// The client address a lookup is limited under: the peer address, or the last
/// `X-Forwarded-For` entry when configured to trust it. Without either (a test calling the
/// router directly), every request shares one bucket: the safe side.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<PortalState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PortalState,
    ) -> Result<ClientIp, Self::Rejection> {
        if state.config.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get_all(HeaderName::from_static("x-forwarded-for"))
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .next_back();
            if let Some(ip) = forwarded {
                return Ok(ClientIp(ip));
            }
        }
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        ))
    }
}

/// What a lookup asks.
#[derive(Debug, Clone, Deserialize)]
pub struct LookupQuery {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// One payment as the public sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicRecord {
    pub name_masked: String,
    pub project_name: String,
    pub period: String,
    /// 元, two decimals.
    pub amount: String,
    pub date: String,
    pub status: String,
}

/// The answer to a lookup: the same shape whether or not anything was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LookupAnswer {
    pub records: Vec<PublicRecord>,
}

/// Why a lookup got no answer.
#[derive(Debug)]
pub enum LookupError {
    /// Over the client's rate; retry after this many seconds.
    Limited(u64),
    /// What was typed is not a valid resident ID or name (a reason code of DOMAIN.md §3 and
    /// a message in Chinese that says what to check, never which person exists).
    Input(&'static str, &'static str),
    /// The store failed (the cause is logged where it happened).
    Store,
}

impl LookupError {
    fn status(&self) -> StatusCode {
        match self {
            LookupError::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            LookupError::Input(..) => StatusCode::UNPROCESSABLE_ENTITY,
            LookupError::Store => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    fn message(&self) -> String {
        match self {
            LookupError::Limited(s) => format!(
                "查询过于频繁，请{s}秒后再试。(too many lookups from your address, retry in {s} s)"
            ),
            LookupError::Input(_, m) => (*m).to_owned(),
            LookupError::Store => {
                "查询服务暂时不可用，请稍后重试。(the lookup is unavailable, please retry later)"
                    .to_owned()
            }
        }
    }
    fn retry_after(&self, mut r: Response) -> Response {
        if let LookupError::Limited(s) = self {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

const ID_MESSAGE: &str = "身份证号码不正确：应为18位（前17位数字，末位数字或X）或15位数字，且校验位正确。请核对后重新输入。(the resident ID is malformed or its check digit is wrong)";
const NAME_MESSAGE: &str = "姓名不正确：请输入与身份证一致的姓名（不含数字和符号，不超过30个字）。(the name is empty or invalid)";

/// Run one lookup for `client` (the whole rule of this module's docs, shared by the page and
/// the API).
pub async fn lookup(
    state: &PortalState,
    client: IpAddr,
    q: &LookupQuery,
) -> Result<LookupAnswer, LookupError> {
    if let Err(wait) = state.limiter.check(client, Instant::now()) {
        return Err(LookupError::Limited(
            wait.as_secs_f64().ceil().max(1.0) as u64
        ));
    }
    let today = chrono::Local::now().date_naive();
    let id =
        ResidentId::parse(&q.id, today).map_err(|_| LookupError::Input("id.format", ID_MESSAGE))?;
    let name = intake::normalise_name(&q.name);
    let n = name.chars().count();
    if n == 0
        || n > 30
        || name
            .chars()
            .any(|c| c.is_control() || c.is_ascii_digit() || c.is_ascii_punctuation())
    {
        return Err(LookupError::Input("name.invalid", NAME_MESSAGE));
    }
    let key = state.store.lookup_key(id.id.as_str(), &name);
    let records = state
        .batcher
        .lookup(key)
        .await
        .map_err(|()| LookupError::Store)?;
    Ok(LookupAnswer {
        records: records
            .into_iter()
            .map(|r| PublicRecord {
                name_masked: r.name_masked,
                project_name: r.project_name,
                period: r.period.to_string(),
                amount: r.amount.to_string(),
                date: r.date,
                status: r.status,
            })
            .collect(),
    })
}

/// Personal data: never stored by a browser or a proxy.
fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn api_policies(State(s): State<PortalState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "provinces": s.policies.as_slice() }))
}

async fn api_lookup(
    State(s): State<PortalState>,
    ClientIp(ip): ClientIp,
    Json(q): Json<LookupQuery>,
) -> Response {
    match lookup(&s, ip, &q).await {
        Ok(a) => no_store(Json(a).into_response()),
        Err(e) => {
            let code = match &e {
                LookupError::Limited(_) => "rate_limited",
                LookupError::Input(c, _) => c,
                LookupError::Store => "internal",
            };
            no_store(e.retry_after(ApiError::new(e.status(), code, e.message()).into_response()))
        }
    }
}

/// Filters of the notice list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NoticeFilter {
    /// Region code or prefix (2 province, 4 city, 6 county, 9 township, 12 village digits).
    #[serde(default)]
    pub region: Option<String>,
    /// Project name (exact).
    #[serde(default)]
    pub project: Option<String>,
}

/// At most this many notices in one list (newest first).
const NOTICE_LIMIT: usize = 500;

/// A published notice as the public sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicNotice {
    pub id: String,
    pub kind: String,
    pub kind_label: String,
    pub region: String,
    pub project_name: String,
    pub title: String,
    pub published_on: String,
    pub until: Option<String>,
}

fn kind_label(kind: &str) -> String {
    match kind {
        "result" => "发放结果公示",
        "policy" => "补贴政策",
        "bulletin" => "公示栏公示",
        "plan" => "发放计划公示",
        "correction" => "更正公示",
        "refund" => "退回公示",
        "return" => "退回公示",
        "publicity" | "pre" => "发放前公示",
        "post" => "发放后公开",
        other => other,
    }
    .to_owned()
}

/// The region filter as a prefix of digits, or a Chinese error.
fn region_prefix(f: &NoticeFilter) -> Result<String, ApiError> {
    let r = f.region.as_deref().unwrap_or("").trim();
    if r.len() > 12 || !r.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(
            "地区代码应为最多12位数字（如 23 黑龙江省、2301 哈尔滨市）。(region must be up to 12 digits)",
        ));
    }
    Ok(r.to_owned())
}

/// Published, not withdrawn notices matching the filter, newest first.
async fn list_notices(
    store: &Store,
    f: &NoticeFilter,
) -> Result<Vec<ykt_store::disclosure::NoticeRow>, ApiError> {
    let prefix = region_prefix(f)?;
    let project = f
        .project
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    Ok(store
        .notices(Some(&prefix))
        .await?
        .into_iter()
        .filter(|n| !n.withdrawn)
        .filter(|n| project.is_none_or(|p| n.project_name == p))
        .take(NOTICE_LIMIT)
        .collect())
}

fn public_notice(n: &ykt_store::disclosure::NoticeRow) -> PublicNotice {
    PublicNotice {
        id: n.id.clone(),
        kind: n.kind.clone(),
        kind_label: kind_label(&n.kind),
        region: n.region.clone(),
        project_name: n.project_name.clone(),
        title: n.title.clone(),
        published_on: n.published_on.clone(),
        until: n.until.clone(),
    }
}

async fn api_notices(
    State(s): State<PortalState>,
    Query(f): Query<NoticeFilter>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let list: Vec<PublicNotice> = list_notices(&s.store, &f)
        .await?
        .iter()
        .map(public_notice)
        .collect();
    Ok(Json(serde_json::json!({ "notices": list })))
}

/// One published notice by id (withdrawn ones are gone).
async fn find_notice(
    store: &Store,
    id: &str,
) -> Result<ykt_store::disclosure::NoticeRow, ApiError> {
    store
        .notice(id)
        .await?
        .filter(|n| !n.withdrawn)
        .ok_or_else(|| {
            ApiError::not_found("没有这条公示，或已撤回。(no such notice, or withdrawn)")
        })
}

async fn api_notice(
    State(s): State<PortalState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let n = find_notice(&s.store, &id).await?;
    let mut v = serde_json::to_value(public_notice(&n)).map_err(|e| ApiError::internal(&e))?;
    v["body"] = serde_json::Value::String(n.body);
    Ok(Json(v))
}
