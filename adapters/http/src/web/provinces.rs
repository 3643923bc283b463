//! Province-specific actions in the console and the API, each performed by [`ConsoleOps`]
//! with the CLI's code path (no rule of a province here): Heilongjiang's bulletin-board
//! notice, Henan's candidate agent banks and each county's selection and the approvals of
//! its project-library change requests, Sichuan's publicity objections. Every handler goes through the one guard: the record looked up in the
//! user's scope ([`Operator::in_scope`], 404 outside it), then the route's roles
//! ([`Operator::require`]), then the form, then the province's own checks.
//!
//! [`ConsoleOps`]: super::ConsoleOps

use super::auth::{Operator, audit};
use super::batches::{enc, load_batch};
use super::{BankCandidate, OpError, PageError, WebState};
use crate::server::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};
use ykt_kernel::Role;
use ykt_store::sichuan::Objection;

/// Who posts notices and records objections: the township and the department.
pub const NOTICE_POSTERS: &[Role] = &[Role::TownshipClerk, Role::DeptMaker];
/// Who registers and selects agent banks: finance (the province's rules then tell provincial
/// from county finance).
pub const BANK_FINANCE: &[Role] = &[Role::FinanceReviewer];

/// A failed action: shown as a flash message (refusals, invalid input) or as an error page
/// (internal failures, guard refusals).
enum Failed {
    Page(PageError),
    Op(OpError),
}

impl From<PageError> for Failed {
    fn from(e: PageError) -> Failed {
        Failed::Page(e)
    }
}
impl From<super::auth::Forbidden> for Failed {
    fn from(e: super::auth::Forbidden) -> Failed {
        Failed::Page(e.into())
    }
}
impl From<OpError> for Failed {
    fn from(e: OpError) -> Failed {
        Failed::Op(e)
    }
}

fn invalid(m: impl Into<String>) -> Failed {
    Failed::Page(PageError::new(StatusCode::UNPROCESSABLE_ENTITY, m))
}

/// A page action's answer: back to `to` with the message.
fn page_answer(to: &str, r: Result<String, Failed>) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    match r {
        Ok(m) => Redirect::to(&format!("{to}{sep}ok={}", enc(&m))).into_response(),
        Err(Failed::Op(OpError::Internal(m))) => PageError::internal(&m).into_response(),
        Err(Failed::Op(e)) => {
            Redirect::to(&format!("{to}{sep}err={}", enc(&e.to_string()))).into_response()
        }
        Err(Failed::Page(e)) => e.into_response(),
    }
}

/// An API action's answer.
fn api_answer(r: Result<Value, Failed>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(Failed::Page(e)) => ApiError::from(e).into_response(),
        Err(Failed::Op(e)) => ApiError::from(e).into_response(),
    }
}

fn trimmed(s: &str) -> &str {
    s.trim()
}

// ---- Heilongjiang: the bulletin-board notice ------------------------------------------------

async fn bulletin(st: &WebState, op: &Operator, id: i64) -> Result<super::NoticeDone, Failed> {
    load_batch(st, op, id).await?;
    op.require(NOTICE_POSTERS)?;
    let n = st.ops.post_bulletin(id, &op.user).await?;
    audit(
        st,
        &op.user.login,
        op.audit_role(),
        "web.bulletin",
        format!("batch:{id}"),
        json!({"notice": n.id}),
    )
    .await;
    Ok(n)
}

/// `POST /batches/{id}/bulletin`.
pub async fn bulletin_submit(
    State(st): State<WebState>,
    op: Operator,
    Path(id): Path<i64>,
) -> Response {
    let r = bulletin(&st, &op, id).await.map(|n| {
        let until = n
            .until
            .as_deref()
            .map(|u| format!("，公示期至{u}"))
            .unwrap_or_default();
        format!(
            "公示栏公示「{}」已发布（{}{until}），公众可在公示公告中查看和打印",
            n.title, n.published_on
        )
    });
    page_answer(&format!("/batches/{id}"), r)
}

/// `POST /api/v1/batches/{id}/bulletin`.
pub async fn api_bulletin(
    State(st): State<WebState>,
    op: Operator,
    Path(id): Path<i64>,
) -> Response {
    api_answer(bulletin(&st, &op, id).await.map(|n| json!({ "notice": n })))
}

// ---- Sichuan: publicity objections ----------------------------------------------------------

#[derive(Debug, Clone, serde::Deserialize)]
pub struct ObjectionForm {
    /// The line objected to (row id), if any.
    #[serde(default)]
    pub line: Option<String>,
    /// Who raised it (masked when stored).
    #[serde(default)]
    pub by: String,
    pub text: String,
}

async fn raise(st: &WebState, op: &Operator, id: i64, f: &ObjectionForm) -> Result<i64, Failed> {
    load_batch(st, op, id).await?;
    op.require(NOTICE_POSTERS)?;
    let line = match f.line.as_deref().map(trimmed).filter(|s| !s.is_empty()) {
        Some(l) => Some(
            l.parse::<i64>()
                .map_err(|_| invalid(format!("明细编号「{l}」应为数字 (line id)")))?,
        ),
        None => None,
    };
    if trimmed(&f.text).is_empty() {
        return Err(invalid("异议内容不能为空 (the objection needs a text)"));
    }
    let oid = st
        .ops
        .sichuan_raise_objection(id, line, trimmed(&f.by), trimmed(&f.text), &op.user)
        .await?;
    audit(
        st,
        &op.user.login,
        op.audit_role(),
        "web.objection_add",
        format!("batch:{id}"),
        json!({"objection": oid, "line": line}),
    )
    .await;
    Ok(oid)
}

/// `POST /batches/{id}/objections`.
pub async fn objection_submit(
    State(st): State<WebState>,
    op: Operator,
    Path(id): Path<i64>,
    axum::Form(f): axum::Form<ObjectionForm>,
) -> Response {
    let r = raise(&st, &op, id, &f)
        .await
        .map(|oid| format!("异议{oid}已登记"));
    page_answer(&format!("/batches/{id}"), r)
}

/// `POST /api/v1/batches/{id}/objections` with `{line?, by, text}`.
pub async fn api_objection(
    State(st): State<WebState>,
    op: Operator,
    Path(id): Path<i64>,
    Json(f): Json<ObjectionJson>,
) -> Response {
    let f = ObjectionForm {
        line: f.line.map(|l| l.to_string()),
        by: f.by,
        text: f.text,
    };
    api_answer(
        raise(&st, &op, id, &f)
            .await
            .map(|oid| json!({ "objection": oid })),
    )
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct ObjectionJson {
    #[serde(default)]
    pub line: Option<i64>,
    #[serde(default)]
    pub by: String,
    pub text: String,
}

/// An objection the user may see (its batch in the user's scope), or 404, the same as for
/// none.
pub async fn load_objection(
    st: &WebState,
    op: &Operator,
    id: i64,
) -> Result<(Objection, i64), PageError> {
    let found = match st.store.sichuan_objection(id).await? {
        Some(o) => st.store.batch(o.batch_id).await?.map(|b| (o, b)),
        None => None,
    };
    let (o, b) = op.in_scope(found, |(_, b)| &b.region, "异议")?;
    Ok((o, b.id))
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct ResolveForm {
    /// `upheld` or `dismissed`.
    #[serde(default)]
    pub outcome: String,
    #[serde(default)]
    pub note: String,
}

async fn resolve(
    st: &WebState,
    op: &Operator,
    id: i64,
    f: &ResolveForm,
) -> Result<(i64, String), Failed> {
    let (_, batch) = load_objection(st, op, id).await?;
    op.require(NOTICE_POSTERS)?;
    let upheld = match f.outcome.trim() {
        "upheld" => true,
        "dismissed" => false,
        other => {
            return Err(invalid(format!(
                "处理结果「{other}」应为 upheld（成立）或 dismissed（不成立）"
            )));
        }
    };
    if trimmed(&f.note).is_empty() {
        return Err(invalid("处理意见不能为空 (a resolution needs a note)"));
    }
    let said = st
        .ops
        .sichuan_resolve_objection(id, upheld, trimmed(&f.note), &op.user)
        .await?;
    audit(
        st,
        &op.user.login,
        op.audit_role(),
        "web.objection_resolve",
        format!("batch:{batch}"),
        json!({"objection": id, "upheld": upheld}),
    )
    .await;
    Ok((batch, said))
}

/// `POST /objections/{id}/resolve`.
pub async fn resolve_submit(
    State(st): State<WebState>,
    op: Operator,
    Path(id): Path<i64>,
    axum::Form(f): axum::Form<ResolveForm>,
) -> Response {
    match resolve(&st, &op, id, &f).await {
        Ok((batch, said)) => page_answer(&format!("/batches/{batch}"), Ok(said)),
        Err(Failed::Op(e)) => match load_objection(&st, &op, id).await {
            Ok((_, batch)) => page_answer(&format!("/batches/{batch}"), Err(Failed::Op(e))),
            Err(e) => e.into_response(),
        },
        Err(Failed::Page(e)) => e.into_response(),
    }
}

/// `POST /api/v1/objections/{id}/resolve` with `{upheld, note}`.
pub async fn api_resolve(
    State(st): State<WebState>,
    op: Operator,
    Path(id): Path<i64>,
    Json(f): Json<ResolveJson>,
) -> Response {
    let f = ResolveForm {
        outcome: if f.upheld { "upheld" } else { "dismissed" }.into(),
        note: f.note,
    };
    api_answer(
        resolve(&st, &op, id, &f)
            .await
            .map(|(batch, said)| json!({"objection": id, "batch": batch, "result": said})),
    )
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct ResolveJson {
    pub upheld: bool,
    #[serde(default)]
    pub note: String,
}

// ---- Henan: agent banks ---------------------------------------------------------------------

#[derive(Debug, Clone, serde::Deserialize)]
pub struct CandidateForm {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub agreement_no: String,
    /// Checkbox (`on` when ticked).
    #[serde(default)]
    pub connected: Option<String>,
    #[serde(default)]
    pub free_interbank: Option<String>,
}

async fn add_bank(st: &WebState, op: &Operator, c: &BankCandidate) -> Result<(), Failed> {
    op.require(BANK_FINANCE)?;
    if [&c.code, &c.name, &c.agreement_no]
        .iter()
        .any(|v| v.trim().is_empty())
    {
        return Err(invalid(
            "须填写银行代码、名称和委托代理协议编号 (code, name and agreement are required)",
        ));
    }
    st.ops.henan_add_bank(&op.user, c).await?;
    audit(
        st,
        &op.user.login,
        op.audit_role(),
        "web.bank_candidate",
        format!("bank:{}", c.code.trim()),
        json!({"agreement": c.agreement_no.trim()}),
    )
    .await;
    Ok(())
}

/// `POST /banks/candidates`.
pub async fn candidate_submit(
    State(st): State<WebState>,
    op: Operator,
    axum::Form(f): axum::Form<CandidateForm>,
) -> Response {
    let c = BankCandidate {
        code: f.code.trim().to_owned(),
        name: f.name.trim().to_owned(),
        agreement_no: f.agreement_no.trim().to_owned(),
        connected: f.connected.is_some(),
        free_interbank: f.free_interbank.is_some(),
    };
    let r = add_bank(&st, &op, &c)
        .await
        .map(|()| format!("{}（{}）已列入备选代发金融机构", c.name, c.code));
    page_answer("/banks", r)
}

/// `POST /api/v1/banks/candidates` with a [`BankCandidate`].
pub async fn api_candidate(
    State(st): State<WebState>,
    op: Operator,
    Json(c): Json<BankCandidate>,
) -> Response {
    api_answer(
        add_bank(&st, &op, &c)
            .await
            .map(|()| json!({"candidate": c.code})),
    )
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct SelectForm {
    #[serde(default)]
    pub county: String,
    #[serde(default)]
    pub bank: String,
    #[serde(default)]
    pub agreement_no: String,
}

async fn select_bank(st: &WebState, op: &Operator, f: &SelectForm) -> Result<(), Failed> {
    op.require(BANK_FINANCE)?;
    if [&f.county, &f.bank, &f.agreement_no]
        .iter()
        .any(|v| v.trim().is_empty())
    {
        return Err(invalid(
            "须填写县（区）区划代码、银行代码和县级代发协议编号 (county, bank and agreement are required)",
        ));
    }
    op.covers(f.county.trim())?;
    st.ops
        .henan_select_bank(
            &op.user,
            f.county.trim(),
            f.bank.trim(),
            f.agreement_no.trim(),
        )
        .await?;
    audit(
        st,
        &op.user.login,
        op.audit_role(),
        "web.bank_select",
        format!("county:{}", f.county.trim()),
        json!({"bank": f.bank.trim(), "agreement": f.agreement_no.trim()}),
    )
    .await;
    Ok(())
}

/// `POST /banks/select`.
pub async fn select_submit(
    State(st): State<WebState>,
    op: Operator,
    axum::Form(f): axum::Form<SelectForm>,
) -> Response {
    let r = select_bank(&st, &op, &f)
        .await
        .map(|()| format!("{} 已选定 {} 为代发银行", f.county.trim(), f.bank.trim()));
    page_answer("/banks", r)
}

/// `POST /api/v1/banks/select` with `{county, bank, agreement_no}`.
pub async fn api_select(
    State(st): State<WebState>,
    op: Operator,
    Json(f): Json<SelectForm>,
) -> Response {
    api_answer(
        select_bank(&st, &op, &f)
            .await
            .map(|()| json!({"county": f.county.trim(), "bank": f.bank.trim()})),
    )
}

// ---- Henan: project-library change requests -------------------------------------------------

/// A change request the user may see (filed in the user's scope), or 404, the same as for
/// none.
pub async fn load_change(
    st: &WebState,
    op: &Operator,
    id: i64,
) -> Result<ykt_store::henan::ChangeRow, PageError> {
    op.in_scope(st.store.henan_change(id).await?, |c| &c.region, "变更申请")
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    pub note: String,
}

async fn change_step(
    st: &WebState,
    op: &Operator,
    id: i64,
    reject: bool,
    note: &str,
) -> Result<String, Failed> {
    load_change(st, op, id).await?;
    op.require(BANK_FINANCE)?;
    let note = Some(note.trim()).filter(|n| !n.is_empty());
    if reject && note.is_none() {
        return Err(invalid("不予通过须填写理由 (a rejection needs a reason)"));
    }
    let state = st.ops.henan_change_step(id, &op.user, reject, note).await?;
    audit(
        st,
        &op.user.login,
        op.audit_role(),
        if reject {
            "web.library_reject"
        } else {
            "web.library_approve"
        },
        format!("library_request:{id}"),
        json!({}),
    )
    .await;
    Ok(state)
}

/// `POST /library/requests/{id}/approve`.
pub async fn change_approve_submit(
    State(st): State<WebState>,
    op: Operator,
    Path(id): Path<i64>,
    axum::Form(f): axum::Form<NoteForm>,
) -> Response {
    let r = change_step(&st, &op, id, false, &f.note)
        .await
        .map(|s| format!("变更申请{id}：{s}"));
    page_answer("/library", r)
}

/// `POST /library/requests/{id}/reject`.
pub async fn change_reject_submit(
    State(st): State<WebState>,
    op: Operator,
    Path(id): Path<i64>,
    axum::Form(f): axum::Form<NoteForm>,
) -> Response {
    let r = change_step(&st, &op, id, true, &f.note)
        .await
        .map(|s| format!("变更申请{id}：{s}"));
    page_answer("/library", r)
}

/// `POST /api/v1/library/requests/{id}/approve` with `{note?}`.
pub async fn api_change_approve(
    State(st): State<WebState>,
    op: Operator,
    Path(id): Path<i64>,
    body: Option<Json<NoteForm>>,
) -> Response {
    let note = body.map(|Json(b)| b.note).unwrap_or_default();
    api_answer(
        change_step(&st, &op, id, false, &note)
            .await
            .map(|s| json!({"request": id, "state": s})),
    )
}

/// `POST /api/v1/library/requests/{id}/reject` with `{note}`.
pub async fn api_change_reject(
    State(st): State<WebState>,
    op: Operator,
    Path(id): Path<i64>,
    body: Option<Json<NoteForm>>,
) -> Response {
    let note = body.map(|Json(b)| b.note).unwrap_or_default();
    api_answer(
        change_step(&st, &op, id, true, &note)
            .await
            .map(|s| json!({"request": id, "state": s})),
    )
}
