//! Batch list and detail: filters, masked lines, and exactly the actions the workflow allows
//! this user now (`ykt_kernel::workflow::available`), each with a confirmation.

use super::auth::{Forbidden, Operator, audit};
use super::layout::{self, action_form};
use super::{PageError, WebState, sees_full_data};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use std::collections::HashMap;
use ykt_kernel::batch::{BatchState, LineState};
use ykt_kernel::mask::MaskPolicy;
use ykt_kernel::ports::FailureReason;
use ykt_kernel::workflow::{BatchFacts, Effect, StepDef, available};
use ykt_kernel::{BankAccount, RegionCode, Role, User};
use ykt_store::cycle::LineFix;
use ykt_store::payments::{BatchRow, LineRow};

/// Percent-encode a message for a redirect's query string.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The batches the user may see (their region), newest first.
pub async fn visible_batches(st: &WebState, user: &User) -> Result<Vec<BatchRow>, PageError> {
    Ok(st.store.batches(None, Some(&user.region)).await?)
}

/// A batch the user may see, or 404 (the same for a batch outside the user's region as for
/// none: [`Operator::in_scope`]).
pub async fn load_batch(st: &WebState, op: &Operator, id: i64) -> Result<BatchRow, PageError> {
    op.in_scope(st.store.batch(id).await?, |b| &b.region, "批次")
}

/// The steps `user` may take on `b` now, per the kernel's workflow engine.
pub async fn actions_for(
    st: &WebState,
    b: &BatchRow,
    user: &User,
) -> Result<Vec<&'static StepDef>, PageError> {
    let history: Vec<(String, String)> = st
        .store
        .batch_steps(b.id)
        .await?
        .into_iter()
        .map(|s| (s.step, s.actor))
        .collect();
    Ok(actions_given(st, b, user, &history))
}

/// [`actions_for`] with the batch's step history (`(step, actor)`, oldest first) at hand.
pub fn actions_given(
    st: &WebState,
    b: &BatchRow,
    user: &User,
    history: &[(String, String)],
) -> Vec<&'static StepDef> {
    let Some(p) = st.province(&b.province) else {
        return Vec::new();
    };
    let Ok(region) = RegionCode::parse(&b.region) else {
        return Vec::new();
    };
    let facts = BatchFacts {
        id: b.id,
        state: b.state,
        region: &region,
        maker: &b.maker,
        history,
    };
    available(p.workflow(), &facts, user)
}

pub fn state_label(s: &str) -> &str {
    BatchState::parse(s).map(|s| s.label_zh()).unwrap_or(s)
}

pub async fn list_page(
    State(st): State<WebState>,
    op: Operator,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Markup, PageError> {
    let all = visible_batches(&st, &op.user).await?;
    let f_state = q.get("state").filter(|s| !s.is_empty());
    let f_region = q.get("region").filter(|s| !s.is_empty());
    let f_province = q.get("province").filter(|s| !s.is_empty());
    let rows: Vec<&BatchRow> = all
        .iter()
        .filter(|b| f_state.is_none_or(|s| b.state.as_str() == s))
        .filter(|b| f_region.is_none_or(|r| b.region.starts_with(r.trim_end_matches('0'))))
        .filter(|b| f_province.is_none_or(|p| &b.province == p))
        .collect();
    let body = html! {
        form.filters method="get" action="/batches" {
            label { "状态 " select name="state" {
                option value="" { "全部" }
                @for s in BatchState::ALL {
                    option value=(s.as_str()) selected[f_state.is_some_and(|x| x == s.as_str())] { (s.label_zh()) }
                }
            } }
            label { "区划 " input type="text" name="region" value=[f_region] placeholder="如 230102" size="12"; }
            @if st.provinces.len() > 1 {
                label { "省份 " select name="province" {
                    option value="" { "全部" }
                    @for p in st.provinces.iter() {
                        option value=(p.code()) selected[f_province.is_some_and(|x| x == p.code())] { (p.name()) }
                    }
                } }
            }
            button type="submit" { "筛选" }
        }
        p.muted { "共 " (rows.len()) " 个批次（" (op.user.region.full()) " 范围内）" }
        table.data id="batches" {
            thead { tr { th { "批次" } th { "发放单号" } th { "补贴项目" } th { "区划" } th { "属期" } th { "状态" } th.num { "笔数" } th.num { "金额（元）" } th { "经办" } } }
            tbody {
                @for b in &rows {
                    tr {
                        td { a href={"/batches/" (b.id)} { (b.id) } }
                        td { (b.order_no) }
                        td { (b.project_name) }
                        td { (b.region) }
                        td { (b.period) }
                        td { span.state { (b.state.label_zh()) } }
                        td.num { (b.control.count) }
                        td.num { (b.control.amount) }
                        td { (b.maker) }
                    }
                }
            }
        }
    };
    Ok(layout::page("发放批次", &op, &body))
}

fn line_cells(l: &LineRow, full: bool, mask: &MaskPolicy) -> (String, String, String) {
    if full {
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
    }
}

pub async fn detail_page(
    State(st): State<WebState>,
    op: Operator,
    Path(id): Path<i64>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Markup, PageError> {
    let b = load_batch(&st, &op, id).await?;
    let tally = st.store.tally(id).await?;
    let steps = st.store.batch_steps(id).await?;
    let actions = actions_for(&st, &b, &op.user).await?;
    let full = sees_full_data(&op.user);
    let mask = st
        .province(&b.province)
        .map(|p| p.mask_policy())
        .unwrap_or_default();
    let f_state = q.get("state").filter(|s| !s.is_empty());
    let f_reason = q.get("reason").filter(|s| !s.is_empty());
    let f_region = q.get("region").filter(|s| !s.is_empty());
    // The lines are read chunk by chunk and only one page is kept: memory does not grow with
    // the size of the batch.
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let wanted = |l: &LineRow| {
        f_state.is_none_or(|s| l.state.as_str() == s)
            && f_reason.is_none_or(|r| l.fail_reason.as_deref() == Some(r.as_str()))
            && f_region.is_none_or(|r| l.region.starts_with(r.as_str()))
    };
    let mut shown: Vec<LineRow> = Vec::new();
    let mut skipped = 0usize;
    let mut more = false;
    let mut offset = 0i64;
    'scan: loop {
        let chunk = st.store.lines(id, offset, LINE_CHUNK).await?;
        if chunk.is_empty() {
            break;
        }
        offset += i64::try_from(chunk.len()).unwrap_or(LINE_CHUNK);
        for l in chunk {
            if !wanted(&l) {
                continue;
            }
            if skipped < page * PAGE {
                skipped += 1;
            } else if shown.len() < PAGE {
                shown.push(l);
            } else {
                more = true;
                break 'scan;
            }
        }
    }
    let total_lines = tally.total().count;
    // Henan: the county's agent banks, for finance's procedural review.
    let county_banks = if b.province == "henan" && b.region.len() >= 6 {
        st.store
            .henan_county_banks(Some(&format!("{:0<12}", &b.region[..6])))
            .await?
    } else {
        Vec::new()
    };
    // Sichuan: the objections raised during the publicity (川财办〔2018〕61号: 公示期内的异议).
    let objections = if b.province == "sichuan" {
        st.store.sichuan_objections(id).await?
    } else {
        Vec::new()
    };
    let poster = super::provinces::NOTICE_POSTERS
        .iter()
        .any(|r| op.user.has(*r));
    // Heilongjiang: the bulletin-board notice once the batch is reviewed (塔河县方案(七)).
    let may_bulletin = b.province == "heilongjiang"
        && poster
        && !matches!(
            b.state,
            BatchState::Draft | BatchState::Returned | BatchState::Cancelled
        );
    let may_correct = op.user.has(Role::DeptMaker) && op.user.covers_str(&b.region);
    let may_refund = op.user.has(Role::FinanceReviewer) && op.user.covers_str(&b.region);
    // After dispatch, a pending line is a corrected one waiting to be paid again.
    let corrected_waiting = tally.get(LineState::Pending).count > 0
        && matches!(b.state, BatchState::Dispatched | BatchState::Settled);
    let page_link = |p: usize| {
        let mut qs: Vec<String> = [
            ("state", f_state),
            ("reason", f_reason),
            ("region", f_region),
        ]
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", enc(v))))
        .collect();
        qs.push(format!("page={p}"));
        format!("/batches/{id}?{}", qs.join("&"))
    };
    let body = html! {
        (layout::flash(q.get("ok").map(String::as_str), q.get("err").map(String::as_str)))
        section.card {
            dl.facts {
                dt { "发放单号" } dd { (b.order_no) }
                dt { "补贴项目" } dd { (b.project_name) "（" (b.project) "）" }
                dt { "区划" } dd { (b.region) }
                dt { "属期" } dd { (b.period) }
                dt { "状态" } dd { span.state id="batch-state" { (b.state.label_zh()) } }
                dt { "控制数" } dd { (b.control.count) " 笔，" (b.control.amount) " 元" }
                dt { "经办（制单）" } dd { (b.maker) }
            }
        }
        section.card {
            h2 { "可执行的操作" }
            @if actions.is_empty() {
                p.muted id="no-actions" { "当前状态下您没有可执行的操作。" }
            }
            div.actions id="actions" {
                @for s in &actions {
                    @let needs_reason = matches!(s.effect, Effect::Return | Effect::Cancel);
                    @let bank_choice = b.province == "henan" && s.code == "finance_review";
                    (action_form(&op, &format!("/batches/{id}/step"), s.label,
                        &format!("确认对批次{id}执行「{}」？", s.label),
                        html! {
                            input type="hidden" name="step" value=(s.code);
                            @if needs_reason { input type="text" name="reason" placeholder="退回原因（必填）" required; }
                            @if bank_choice {
                                label { "代发银行 " select name="bank" {
                                    @if county_banks.len() != 1 { option value="" { "请选择" } }
                                    @for cb in &county_banks { option value=(cb.bank) { (cb.bank) "（" (cb.agreement_no) "）" } }
                                } }
                                label { "预算单位 " input type="text" name="budget_unit" placeholder="默认：本县牵头部门"; }
                            }
                        }))
                }
                @if may_bulletin {
                    (action_form(&op, &format!("/batches/{id}/bulletin"), "张贴公示栏公示",
                        &format!("确认发布批次{id}的公示栏公示（脱敏）？"), html! {}))
                }
                @if may_correct && corrected_waiting {
                    (action_form(&op, &format!("/batches/{id}/redispatch"), "再次发放已更正明细",
                        "确认将已更正的明细再次交银行发放？", html! {}))
                }
            }
        }
        @if b.province == "sichuan" {
            section.card {
                h2 { "公示异议（" (objections.len()) "）" }
                table.data id="objections" {
                    thead { tr { th { "#" } th { "明细" } th { "提出人" } th { "内容" } th { "登记" } th { "状态" } th { "处理意见" } @if poster { th { "处理" } } } }
                    tbody { @for o in &objections {
                        tr {
                            td { (o.id) } td { (o.line_id.map(|l| l.to_string()).unwrap_or_default()) }
                            td { (o.raised_by) } td.wrap { (o.content) } td { (o.recorded_by) "，" (o.raised_on) }
                            td { (match o.status.as_str() { "open" => "待处理", "upheld" => "成立", "dismissed" => "不成立", s => s }) }
                            td.wrap { (o.resolution.as_deref().unwrap_or("")) }
                            @if poster { td { @if o.status == "open" {
                                (action_form(&op, &format!("/objections/{}/resolve", o.id), "处理",
                                    &format!("确认处理异议{}？成立的异议将把该笔明细从批次中剔除。", o.id), html! {
                                        select name="outcome" { option value="dismissed" { "不成立" } option value="upheld" { "成立" } }
                                        input type="text" name="note" placeholder="处理意见（必填）" required;
                                    }))
                            } } }
                        }
                    } }
                }
                @if poster {
                    (action_form(&op, &format!("/batches/{id}/objections"), "登记异议",
                        "确认登记该异议？", html! {
                            label { "明细编号 " input type="text" name="line" inputmode="numeric" size="8" placeholder="可空"; }
                            label { "提出人 " input type="text" name="by" placeholder="姓名（脱敏保存）"; }
                            label { "异议内容 " input type="text" name="text" required; }
                        }))
                }
            }
        }
        section.card {
            h2 { "明细汇总" }
            table.data {
                thead { tr { th { "状态" } th.num { "笔数" } th.num { "金额（元）" } } }
                tbody {
                    @for s in LineState::ALL {
                        @let t = tally.get(*s);
                        @if t.count > 0 { tr { td { (s.label_zh()) } td.num { (t.count) } td.num { (t.amount) } } }
                    }
                }
            }
        }
        section.card {
            h2 { "流程记录" }
            table.data id="steps" {
                thead { tr { th { "#" } th { "步骤" } th { "执行人" } th { "状态变化" } th { "原因" } th { "时间" } } }
                tbody {
                    @for s in &steps {
                        @let label = st.province(&b.province).and_then(|p| p.workflow().step(&s.step)).map(|d| d.label).unwrap_or(s.step.as_str());
                        tr { td { (s.seq) } td { (label) } td { (s.actor) } td { (state_label(&s.from_state)) " → " (state_label(&s.to_state)) } td { (s.reason.as_deref().unwrap_or("")) } td { (s.at) } }
                    }
                }
            }
        }
        section.card {
            h2 { "发放明细" }
            form.filters method="get" action={"/batches/" (id)} {
                label { "状态 " select name="state" {
                    option value="" { "全部" }
                    @for s in LineState::ALL { option value=(s.as_str()) selected[f_state.is_some_and(|x| x == s.as_str())] { (s.label_zh()) } }
                } }
                label { "失败原因 " select name="reason" {
                    option value="" { "全部" }
                    @for r in FAIL_REASONS { @if let Some(fr) = FailureReason::parse(r) {
                        option value=(r) selected[f_reason.is_some_and(|x| x == r)] { (fr.label_zh()) }
                    } }
                } }
                label { "区划 " input type="text" name="region" value=[f_region] size="12"; }
                button type="submit" { "筛选" }
            }
            @if !full { p.muted { "个人信息已按规定脱敏显示。" } }
            p.muted id="page-info" {
                "第 " (page + 1) " 页，显示 " (shown.len()) " 笔（本批次共 " (total_lines) " 笔）"
                @if page > 0 { " · " a href=(page_link(page - 1)) { "上一页" } }
                @if more { " · " a href=(page_link(page + 1)) { "下一页" } }
            }
            table.data id="lines" {
                thead { tr { th { "行号" } th { "姓名" } th { "身份证号码" } th { "账号" } th { "区划" } th.num { "金额（元）" } th { "状态" } th { "次数" } th { "失败原因" } @if may_correct || may_refund { th { "处理" } } } }
                tbody {
                    @for l in &shown {
                        @let (name, rid, acct) = line_cells(l, full, &mask);
                        tr {
                            td { (l.row_no) } td { (name) } td.mono { (rid) } td.mono { (acct) } td { (l.region) }
                            td.num { (l.amount) } td { (l.state.label_zh()) } td { (l.attempt) }
                            td { (l.fail_reason.as_deref().and_then(FailureReason::parse).map(|r| r.label_zh()).unwrap_or("")) }
                            @if may_correct || may_refund {
                                td {
                                    @if l.state == LineState::Failed {
                                        @if may_correct { (correct_form(&op, id, l)) }
                                        @if may_refund {
                                            (action_form(&op, &format!("/batches/{id}/lines/{}/refund", l.id), "原渠道退回",
                                                "确认将该笔资金原渠道退回？", html! { input type="text" name="reason" placeholder="退回原因" required; }))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&format!("批次 {id}"), &op, &body))
}

/// Lines per page of the batch detail.
const PAGE: usize = 200;
/// Lines read from the store at a time.
const LINE_CHUNK: i64 = 2000;

const FAIL_REASONS: &[&str] = &[
    "wrong_account",
    "dormant_account",
    "name_mismatch",
    "account_closed",
    "other",
];

fn correct_form(op: &Operator, id: i64, l: &LineRow) -> Markup {
    html! {
        details.correct {
            summary { "更正" }
            form.action method="post" action={"/batches/" (id) "/lines/" (l.id) "/correct"} data-confirm="确认提交更正？更正后该笔将再次发放。" {
                (layout::csrf(op))
                label { "新账号 " input type="text" name="account" inputmode="numeric"; }
                label { "开户银行 " input type="text" name="bank"; }
                label { "姓名 " input type="text" name="name"; }
                label { "更正原因 " input type="text" name="reason" required; }
                label { "本人/监护人签字 " input type="text" name="signed_by" placeholder="如：本人 张三"; }
                label { "负责人签批 " input type="text" name="head" placeholder="主管部门负责人"; }
                button type="submit" { "提交更正" }
            }
        }
    }
}

#[derive(serde::Deserialize)]
pub struct StepForm {
    pub step: String,
    #[serde(flatten)]
    pub input: super::StepInput,
}

fn back(id: i64, result: Result<String, String>) -> Response {
    match result {
        Ok(m) => Redirect::to(&format!("/batches/{id}?ok={}", enc(&m))).into_response(),
        Err(m) => Redirect::to(&format!("/batches/{id}?err={}", enc(&m))).into_response(),
    }
}

/// Describe what steps did, for the flash message and the API.
pub fn describe(done: &[super::StepDone]) -> String {
    done.iter()
        .map(|d| match (d.from, d.to) {
            (Some(f), Some(t)) => format!("{}：{} → {}", d.label, f.label_zh(), t.label_zh()),
            _ => format!("{}：状态不变 {}", d.label, d.note),
        })
        .collect::<Vec<_>>()
        .join("；")
}

pub async fn step_submit(
    State(st): State<WebState>,
    op: Operator,
    Path(id): Path<i64>,
    axum::Form(f): axum::Form<StepForm>,
) -> Result<Response, PageError> {
    load_batch(&st, &op, id).await?;
    let done = st.ops.step(id, &f.step, &op.user, &f.input).await?;
    Ok(back(id, Ok(describe(&done))))
}

#[derive(serde::Deserialize)]
pub struct CorrectForm {
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub bank: String,
    #[serde(default)]
    pub name: String,
    pub reason: String,
    #[serde(default)]
    pub signed_by: String,
    #[serde(default)]
    pub head: String,
}

fn opt(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// Build a correction from the form (the account is checked here; the rest by the province).
pub fn fix_of(f: CorrectForm) -> Result<LineFix, String> {
    let account = match opt(f.account) {
        Some(a) => Some(BankAccount::parse(&a).map_err(|e| format!("新账号：{e}"))?),
        None => None,
    };
    Ok(LineFix {
        account,
        bank: opt(f.bank),
        name: opt(f.name),
        reason: f.reason.trim().to_owned(),
        beneficiary_signed: opt(f.signed_by),
        head_signoff: opt(f.head),
    })
}

pub async fn correct_submit(
    State(st): State<WebState>,
    op: Operator,
    Path((id, line)): Path<(i64, i64)>,
    axum::Form(f): axum::Form<CorrectForm>,
) -> Result<Response, PageError> {
    load_batch(&st, &op, id).await?;
    op.require(&[Role::DeptMaker])?;
    let fix = match fix_of(f) {
        Ok(x) => x,
        Err(m) => return Ok(back(id, Err(m))),
    };
    match st.ops.correct(id, line, fix, &op.user).await {
        Ok(()) => {
            audit(
                &st,
                &op.user.login,
                op.audit_role(),
                "web.line_correct",
                format!("batch:{id}"),
                serde_json::json!({"line": line}),
            )
            .await;
            Ok(back(id, Ok(format!("明细{line}已更正，待再次发放"))))
        }
        Err(super::OpError::Internal(m)) => Err(PageError::internal(&m)),
        Err(e) => Ok(back(id, Err(e.to_string()))),
    }
}

pub async fn redispatch_submit(
    State(st): State<WebState>,
    op: Operator,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    load_batch(&st, &op, id).await?;
    op.require(&[Role::DeptMaker])?;
    match st.ops.redispatch(id, &op.user).await {
        Ok(n) => Ok(back(id, Ok(format!("已再次发放{n}笔")))),
        Err(super::OpError::Internal(m)) => Err(PageError::internal(&m)),
        Err(e) => Ok(back(id, Err(e.to_string()))),
    }
}

#[derive(serde::Deserialize)]
pub struct RefundForm {
    pub reason: String,
}

/// Finance agrees to a refund the department asked for: the batch's maker is recorded as the
/// requester (the department that prepared the batch), the finance user as the approver.
pub async fn refund_submit(
    State(st): State<WebState>,
    op: Operator,
    Path((id, line)): Path<(i64, i64)>,
    axum::Form(f): axum::Form<RefundForm>,
) -> Result<Response, PageError> {
    let b = load_batch(&st, &op, id).await?;
    op.require(&[Role::FinanceReviewer])?;
    let requester = st
        .store
        .get_user(&b.maker)
        .await?
        .as_ref()
        .and_then(super::auth::user_of_row)
        .ok_or_else(|| Forbidden(format!("批次经办人{}不存在或无效，无法申请退回", b.maker)))?;
    match st
        .ops
        .refund(id, line, f.reason.trim(), &requester, &op.user)
        .await
    {
        Ok(amount) => Ok(back(id, Ok(format!("明细{line}已原渠道退回{amount}元")))),
        Err(super::OpError::Internal(m)) => Err(PageError::internal(&m)),
        Err(e) => Ok(back(id, Err(e.to_string()))),
    }
}

/// Region scope on a stored region string.
trait CoversStr {
    fn covers_str(&self, region: &str) -> bool;
}
impl CoversStr for User {
    fn covers_str(&self, region: &str) -> bool {
        RegionCode::parse(region).is_ok_and(|r| self.covers(&r))
    }
}
