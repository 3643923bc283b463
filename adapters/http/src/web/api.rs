//! The JSON API under `/api/v1`: the console's operations for programs. Authentication by
//! the session cookie (with the `X-CSRF-Token` header on writes) or `Authorization: Bearer
//! <token>` from `POST /api/v1/login`. Errors are `{code, message}`; roster results carry the
//! reason codes of DOMAIN.md §3. The OpenAPI 3 description is `GET /api/v1/openapi.json`.

use super::auth::{self, Operator};
use super::batches::{actions_for, fix_of, load_batch, visible_batches};
use super::{PageError, WebState, sees_full_data};
use crate::server::ApiError;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;
use ykt_kernel::Role;
use ykt_kernel::reason::ReasonCode;

type ApiResult = Result<Json<Value>, ApiError>;

impl From<PageError> for ApiError {
    fn from(e: PageError) -> ApiError {
        let code = match e.status {
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
            StatusCode::CONFLICT => "conflict",
            StatusCode::BAD_REQUEST => "bad_request",
            _ => "internal",
        };
        ApiError::new(e.status, code, e.message)
    }
}

pub const OPENAPI: &str = include_str!("assets/openapi.json");

/// The API's routes as `(method, path, handler)`: [`router`] is built from this table, so
/// [`routes`] is exactly what is served (the OpenAPI test checks every entry is documented).
fn table() -> Vec<(&'static str, &'static str, MethodRouter<WebState>)> {
    vec![
        ("POST", "/api/v1/login", post(auth::api_login)),
        ("POST", "/api/v1/logout", post(auth::api_logout)),
        ("GET", "/api/v1/me", get(me)),
        ("GET", "/api/v1/batches", get(batches)),
        ("GET", "/api/v1/batches/{id}", get(batch)),
        ("GET", "/api/v1/batches/{id}/lines", get(lines)),
        ("POST", "/api/v1/batches/{id}/steps/{step}", post(step)),
        (
            "POST",
            "/api/v1/batches/{id}/lines/{line}/correct",
            post(correct),
        ),
        ("POST", "/api/v1/batches/{id}/redispatch", post(redispatch)),
        (
            "POST",
            "/api/v1/batches/{id}/lines/{line}/refund",
            post(refund),
        ),
        (
            "POST",
            "/api/v1/batches/{id}/bulletin",
            post(super::provinces::api_bulletin),
        ),
        (
            "POST",
            "/api/v1/batches/{id}/objections",
            post(super::provinces::api_objection),
        ),
        (
            "POST",
            "/api/v1/objections/{id}/resolve",
            post(super::provinces::api_resolve),
        ),
        (
            "POST",
            "/api/v1/library/requests/{id}/approve",
            post(super::provinces::api_change_approve),
        ),
        (
            "POST",
            "/api/v1/library/requests/{id}/reject",
            post(super::provinces::api_change_reject),
        ),
        (
            "POST",
            "/api/v1/banks/candidates",
            post(super::provinces::api_candidate),
        ),
        (
            "POST",
            "/api/v1/banks/select",
            post(super::provinces::api_select),
        ),
        ("POST", "/api/v1/rosters", post(upload)),
        ("GET", "/api/v1/rosters/{id}", get(roster)),
        ("GET", "/api/v1/catalog", get(catalog)),
        ("GET", "/api/v1/audit/verify", get(audit_verify)),
        ("GET", "/api/v1/openapi.json", get(openapi)),
    ]
}

/// Every API route as `(method, path)`.
pub fn routes() -> Vec<(&'static str, &'static str)> {
    table().into_iter().map(|(m, p, _)| (m, p)).collect()
}

pub fn router() -> Router<WebState> {
    super::build(table())
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn me(op: Operator) -> Json<Value> {
    Json(json!({
        "login": op.user.login,
        "name": op.user.name,
        "roles": op.user.roles,
        "region": op.user.region.full(),
        "full_data": sees_full_data(&op.user),
    }))
}

async fn batches(
    State(st): State<WebState>,
    op: Operator,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let all = visible_batches(&st, &op.user).await?;
    let v: Vec<_> = all
        .into_iter()
        .filter(|b| q.get("state").is_none_or(|s| b.state.as_str() == s))
        .filter(|b| q.get("province").is_none_or(|p| &b.province == p))
        .filter(|b| {
            q.get("region")
                .is_none_or(|r| b.region.starts_with(r.as_str()))
        })
        .collect();
    Ok(Json(json!({ "batches": v })))
}

async fn batch(State(st): State<WebState>, op: Operator, Path(id): Path<i64>) -> ApiResult {
    let b = load_batch(&st, &op, id).await?;
    let tally = st.store.tally(id).await?;
    let steps = st.store.batch_steps(id).await?;
    let actions: Vec<_> = actions_for(&st, &b, &op.user)
        .await?
        .into_iter()
        .map(|s| json!({"step": s.code, "label": s.label, "to": s.to}))
        .collect();
    Ok(Json(
        json!({"batch": b, "tally": tally, "steps": steps, "actions": actions}),
    ))
}

async fn lines(
    State(st): State<WebState>,
    op: Operator,
    Path(id): Path<i64>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let b = load_batch(&st, &op, id).await?;
    let full = sees_full_data(&op.user);
    let mask = st
        .province(&b.province)
        .map(|p| p.mask_policy())
        .unwrap_or_default();
    let offset: i64 = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit: i64 = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
        .clamp(1, 5000);
    let rows = st.store.lines(id, offset, limit).await?;
    let v: Vec<_> = rows
        .iter()
        .filter(|l| q.get("state").is_none_or(|s| l.state.as_str() == s))
        .filter(|l| {
            q.get("reason")
                .is_none_or(|r| l.fail_reason.as_deref() == Some(r.as_str()))
        })
        .filter(|l| q.get("region").is_none_or(|r| l.region.starts_with(r.as_str())))
        .map(|l| {
            let (name, rid, acct) = if full {
                (
                    l.name.clone(),
                    l.resident_id.as_str().to_owned(),
                    l.account.as_str().to_owned(),
                )
            } else {
                (
                    mask.name(&l.name),
                    mask.id(l.resident_id.as_str()),
                    l.account.masked(),
                )
            };
            json!({
                "id": l.id, "row": l.row_no, "name": name, "resident_id": rid, "account": acct,
                "bank": l.bank, "region": l.region, "period": l.period, "amount": l.amount.to_string(),
                "state": l.state, "attempt": l.attempt, "fail_reason": l.fail_reason,
            })
        })
        .collect();
    Ok(Json(
        json!({"masked": !full, "offset": offset, "limit": limit, "lines": v}),
    ))
}

async fn step(
    State(st): State<WebState>,
    op: Operator,
    Path((id, step)): Path<(i64, String)>,
    body: Option<Json<super::StepInput>>,
) -> ApiResult {
    load_batch(&st, &op, id).await?;
    let input = body.map(|Json(b)| b).unwrap_or_default();
    let done = st.ops.step(id, &step, &op.user, &input).await?;
    let b = st.store.batch(id).await?;
    Ok(Json(json!({"done": done, "batch": b})))
}

#[derive(serde::Deserialize)]
struct CorrectBody {
    #[serde(default)]
    account: String,
    #[serde(default)]
    bank: String,
    #[serde(default)]
    name: String,
    reason: String,
    #[serde(default)]
    signed_by: String,
    #[serde(default)]
    head: String,
}

async fn correct(
    State(st): State<WebState>,
    op: Operator,
    Path((id, line)): Path<(i64, i64)>,
    Json(b): Json<CorrectBody>,
) -> ApiResult {
    load_batch(&st, &op, id).await?;
    op.require(&[Role::DeptMaker])?;
    let fix = fix_of(super::batches::CorrectForm {
        account: b.account,
        bank: b.bank,
        name: b.name,
        reason: b.reason,
        signed_by: b.signed_by,
        head: b.head,
    })
    .map_err(|m| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "account.luhn", m))?;
    st.ops.correct(id, line, fix, &op.user).await?;
    auth::audit(
        &st,
        &op.user.login,
        op.audit_role(),
        "web.line_correct",
        format!("batch:{id}"),
        json!({"line": line}),
    )
    .await;
    Ok(Json(json!({"corrected": line})))
}

async fn redispatch(State(st): State<WebState>, op: Operator, Path(id): Path<i64>) -> ApiResult {
    load_batch(&st, &op, id).await?;
    op.require(&[Role::DeptMaker])?;
    let n = st.ops.redispatch(id, &op.user).await?;
    Ok(Json(json!({"redispatched": n})))
}

#[derive(serde::Deserialize)]
struct RefundBody {
    reason: String,
}

async fn refund(
    State(st): State<WebState>,
    op: Operator,
    Path((id, line)): Path<(i64, i64)>,
    Json(r): Json<RefundBody>,
) -> ApiResult {
    let b = load_batch(&st, &op, id).await?;
    op.require(&[Role::FinanceReviewer])?;
    let requester = st
        .store
        .get_user(&b.maker)
        .await?
        .as_ref()
        .and_then(auth::user_of_row)
        .ok_or_else(|| ApiError::unprocessable(format!("批次经办人{}不存在或无效", b.maker)))?;
    let amount = st
        .ops
        .refund(id, line, r.reason.trim(), &requester, &op.user)
        .await?;
    Ok(Json(
        json!({"refunded": line, "amount": amount.to_string()}),
    ))
}

async fn upload(
    State(st): State<WebState>,
    op: Operator,
    csrf: Option<axum::Extension<auth::CsrfInForm>>,
    mp: Multipart,
) -> ApiResult {
    op.require(super::UPLOADERS)?;
    let r = super::rosters::receive(mp, csrf.as_deref())
        .await
        .map_err(|m| {
            if csrf.is_some() && m.contains("CSRF") {
                ApiError::new(StatusCode::FORBIDDEN, "csrf", m)
            } else {
                ApiError::unprocessable(m)
            }
        })?;
    let done = super::rosters::import(&st, &op, &r).await?;
    Ok(Json(json!({ "result": done })))
}

async fn roster(State(st): State<WebState>, op: Operator, Path(id): Path<i64>) -> ApiResult {
    let r = super::rosters::load_roster(&st, &op, id).await?;
    let problems: Vec<_> = st
        .store
        .roster_issues(id)
        .await?
        .into_iter()
        .map(|i| {
            let follow = ReasonCode::from_code(&i.2).map(|c| c.follow_up().label());
            json!({"row": i.0, "column": i.1, "code": i.2, "severity": i.3, "message": i.4,
                   "name": i.5, "id": i.6, "follow_up": follow})
        })
        .collect();
    Ok(Json(json!({"roster": r, "problems": problems})))
}

async fn catalog(State(st): State<WebState>, _op: Operator) -> ApiResult {
    let v: Vec<_> = st
        .provinces
        .iter()
        .map(
            |p| json!({"province": p.code(), "name": p.name(), "projects": p.catalog().projects()}),
        )
        .collect();
    Ok(Json(json!({ "provinces": v })))
}

async fn audit_verify(State(st): State<WebState>, op: Operator) -> ApiResult {
    op.require(super::AUDIT_READERS)?;
    match st.store.verify_audit().await {
        Ok(r) => Ok(Json(json!({
            "verified": true, "entries": r.entries, "head": r.head.map(|h| h.to_hex()),
        }))),
        Err(ykt_store::StoreError::AuditChain(_)) => Ok(Json(
            json!({"verified": false, "message": "审计链校验失败 (the audit chain does not verify)"}),
        )),
        Err(e) => Err(e.into()),
    }
}
