//! Reference pages: agent banks and agency agreements, the Henan project library with its
//! change requests, and reports to download (xlsx).

use super::auth::{Operator, audit};
use super::batches::{load_batch, visible_batches};
use super::layout;
use super::{PageError, WebState};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use ykt_files::Cell;
use ykt_kernel::ports::FailureReason;

/// 代发银行与协议: Henan's candidate banks and each county's selection (濮阳规程 第十四、十五条),
/// Sichuan's agency agreements (川财办〔2018〕61号: 部门与合作银行签订代发协议), within the
/// user's region.
pub async fn banks_page(
    State(st): State<WebState>,
    op: Operator,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Result<Markup, PageError> {
    let henan = st.province("henan").is_some();
    let finance = op.user.has(ykt_kernel::Role::FinanceReviewer);
    let prefix = op.user.region.prefix().to_owned();
    let candidates = st.store.henan_candidates().await?;
    let county: Vec<_> = st
        .store
        .henan_county_banks(None)
        .await?
        .into_iter()
        .filter(|c| c.county.starts_with(&prefix) || prefix.starts_with(&c.county))
        .collect();
    let agreements = st.store.sichuan_agreements(Some(&prefix)).await?;
    let body = html! {
        (layout::flash(q.get("ok").map(String::as_str), q.get("err").map(String::as_str)))
        @if henan && finance {
            section.card id="bank-forms" {
                h2 { "河南省：登记备选代发银行（省财政厅）" }
                (layout::action_form(&op, "/banks/candidates", "列入备选名单", "确认将该银行列入备选代发金融机构？", html! {
                    label { "银行代码 " input type="text" name="code" required placeholder="如 ABC-HN" size="10"; }
                    label { "银行名称 " input type="text" name="name" required; }
                    label { "委托代理协议编号 " input type="text" name="agreement_no" required; }
                    label.check { input type="checkbox" name="connected" checked; "已对接一卡通系统" }
                    label.check { input type="checkbox" name="free_interbank" checked; "支持免费跨行发放" }
                }))
                h2 { "河南省：县（区）选定代发银行（县级财政）" }
                @if candidates.is_empty() { p.muted { "备选名单为空：须先由省财政厅登记备选代发银行。" } }
                @else { (layout::action_form(&op, "/banks/select", "选定", "确认选定该银行为本县（区）代发银行？", html! {
                    label { "县（区）区划 " input type="text" name="county" required value=(op.user.region.prefix()) size="12"; }
                    label { "银行 " select name="bank" required {
                        @for c in &candidates { option value=(c.code) { (c.name) "（" (c.code) "）" } }
                    } }
                    label { "县级代发协议编号 " input type="text" name="agreement_no" required; }
                })) }
            }
        }
        @if !candidates.is_empty() || !county.is_empty() {
            section.card {
                h2 { "河南省：代发银行备选库" }
                table.data id="candidates" {
                    thead { tr { th { "代码" } th { "银行" } th { "协议编号" } th { "已联网" } th { "跨行免费" } th { "入库" } } }
                    tbody { @for c in &candidates {
                        tr { td.mono { (c.code) } td { (c.name) } td { (c.agreement_no) }
                             td { @if c.connected { "是" } @else { "否" } } td { @if c.free_interbank { "是" } @else { "否" } }
                             td { (c.added_by) "，" (c.added_on) } }
                    } }
                }
                h2 { "各县（区）选定的代发银行" }
                table.data id="county-banks" {
                    thead { tr { th { "县（区）" } th { "银行" } th { "协议编号" } th { "选定" } } }
                    tbody { @for c in &county {
                        tr { td { (c.county) } td { (c.bank) } td { (c.agreement_no) } td { (c.selected_by) "，" (c.selected_on) } }
                    } }
                }
            }
        }
        @if !agreements.is_empty() {
            section.card {
                h2 { "四川省：代发协议" }
                table.data id="agreements" {
                    thead { tr { th { "协议编号" } th { "区划" } th { "项目" } th { "部门" } th { "合作银行" } th { "零余额账户" } th { "签订" } th { "有效期至" } } }
                    tbody { @for a in &agreements {
                        tr { td { (a.agreement_no) } td { (a.region) } td { (a.project) } td { (a.department) } td { (a.bank) }
                             td { (a.zb_account_name) " " (a.zb_bank) } td { (a.signed_on) } td { (a.valid_until) } }
                    } }
                }
            }
        }
        @if candidates.is_empty() && county.is_empty() && agreements.is_empty() {
            p.muted { "本辖区尚无代发银行或代发协议记录。黑龙江省由国库集中支付代理银行打卡发放，无需单独协议。" }
        }
        p.muted { "四川省代发协议的登记与河南省撤销选定、银行接口凭据仍使用 ykt sichuan agreement、ykt henan bank deselect|credential 命令。" }
    };
    Ok(layout::page("代发银行与协议", &op, &body))
}

/// 河南省补贴项目库 and its change requests (濮阳规程 第十至十二条).
pub async fn library_page(
    State(st): State<WebState>,
    op: Operator,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Result<Markup, PageError> {
    let rows = st.store.henan_library().await?;
    let history = st.store.henan_library_history(None).await?;
    // The change requests filed in the user's scope; finance approves the open ones (county →
    // city → province, 濮阳规程 第十二条), the province's own rules deciding who may.
    let requests: Vec<_> = st
        .store
        .henan_changes()
        .await?
        .into_iter()
        .filter(|c| op.covers(&c.region).is_ok())
        .collect();
    let finance = op.user.has(ykt_kernel::Role::FinanceReviewer);
    let body = html! {
        (layout::flash(q.get("ok").map(String::as_str), q.get("err").map(String::as_str)))
        @if !requests.is_empty() {
            section.card {
                h2 { "变更申请（" (requests.len()) "）" }
                table.data id="library-requests" {
                    thead { tr { th { "#" } th { "类别" } th { "项目" } th { "理由" } th { "填报单位" } th { "填报" } th { "状态" } @if finance { th { "审核" } } } }
                    tbody { @for c in &requests {
                        @let open = !matches!(c.state.as_str(), "applied" | "rejected");
                        tr {
                            td { (c.id) } td { (c.kind) } td.mono { (c.code) } td.wrap { (c.reason) }
                            td { (c.region) } td { (c.filed_by) "，" (c.filed_on) } td { (c.state) }
                            @if finance { td { @if open {
                                (layout::action_form(&op, &format!("/library/requests/{}/approve", c.id), "审核通过",
                                    &format!("确认审核通过变更申请{}？", c.id), html! {
                                        input type="text" name="note" placeholder="意见（可空）";
                                    }))
                                (layout::action_form(&op, &format!("/library/requests/{}/reject", c.id), "不予通过",
                                    &format!("确认不予通过变更申请{}？", c.id), html! {
                                        input type="text" name="note" placeholder="理由（必填）" required;
                                    }))
                            } } }
                        }
                    } }
                }
                p.muted { "变更申请的填报（申请表）仍使用 ykt henan library request add 命令。" }
            }
        }
        @if rows.is_empty() { p.muted { "项目库尚未建立（仅河南省部署使用）。" } }
        @else {
            section.card {
                h2 { "项目库（" (rows.len()) "）" }
                table.data id="library" {
                    thead { tr { th { "代码" } th { "项目" } th { "状态" } th { "版本" } th { "变更申请" } th { "更新日期" } } }
                    tbody { @for r in &rows {
                        tr { td.mono { (r.code) } td { (r.name) } td { (r.status) } td { (r.version) }
                             td { (r.request_id.map(|i| i.to_string()).unwrap_or_default()) } td { (r.updated_on) } }
                    } }
                }
            }
            section.card {
                h2 { "变更记录" }
                table.data id="library-history" {
                    thead { tr { th { "项目" } th { "版本" } th { "类别" } th { "状态" } th { "申请" } th { "办理人" } th { "日期" } } }
                    tbody { @for e in history.iter().rev().take(200) {
                        tr { td.mono { (e.code) } td { (e.version) } td { (e.kind) } td { (e.status) }
                             td { (e.request_id.map(|i| i.to_string()).unwrap_or_default()) } td { (e.actor) } td { (e.on_date) } }
                    } }
                }
            }
        }
    };
    Ok(layout::page("河南省补贴项目库", &op, &body))
}

/// 报表下载: each visible batch's payment list (xlsx, masked).
pub async fn reports_page(State(st): State<WebState>, op: Operator) -> Result<Markup, PageError> {
    let batches = visible_batches(&st, &op.user).await?;
    let body = html! {
        section.card {
            p.muted { "发放明细表为对外报送格式，个人信息一律脱敏；清册校验结果见各清册页面。" }
            table.data id="reports" {
                thead { tr { th { "批次" } th { "发放单号" } th { "项目" } th { "区划" } th { "属期" } th { "状态" } th { "下载" } } }
                tbody { @for b in &batches {
                    tr { td { a href={"/batches/" (b.id)} { (b.id) } } td { (b.order_no) } td { (b.project_name) } td { (b.region) }
                         td { (b.period) } td { (b.state.label_zh()) }
                         td { a href={"/batches/" (b.id) "/lines.xlsx"} download { "发放明细（xlsx）" } } }
                } }
            }
        }
    };
    Ok(layout::page("报表下载", &op, &body))
}

/// One batch's payment list as xlsx (masked: an export leaves the department, DOMAIN.md §3).
pub async fn batch_xlsx(
    State(st): State<WebState>,
    op: Operator,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let b = load_batch(&st, &op, id).await?;
    let mask = st
        .province(&b.province)
        .map(|p| p.mask_policy())
        .unwrap_or_default();
    let lines = st.store.lines(id, 0, i64::MAX).await?;
    let dir = std::env::temp_dir().join(format!(
        "ykt-report-{}",
        hex::encode(rand::random::<[u8; 12]>())
    ));
    std::fs::create_dir(&dir).map_err(|e| PageError::internal(&e))?;
    let path = dir.join("report.xlsx");
    let title = format!(
        "{} {} {} 发放明细表（{}）",
        b.region, b.project_name, b.period, b.order_no
    );
    let written = ykt_files::export::write_xlsx_table_titled(
        &path,
        "发放明细",
        Some(&title),
        &[
            "行号",
            "姓名",
            "身份证号码",
            "账号",
            "开户银行",
            "区划",
            "属期",
            "金额（元）",
            "状态",
            "发放次数",
            "失败原因",
        ],
        lines.iter().map(|l| {
            vec![
                Cell::Int(l.row_no),
                Cell::Text(mask.name(&l.name)),
                Cell::Text(mask.id(l.resident_id.as_str())),
                Cell::Text(l.account.masked()),
                Cell::Text(l.bank.clone()),
                Cell::Text(l.region.clone()),
                Cell::Text(l.period.clone()),
                Cell::Money(l.amount),
                Cell::Text(l.state.label_zh().to_owned()),
                Cell::Int(l.attempt),
                Cell::Text(
                    l.fail_reason
                        .as_deref()
                        .and_then(FailureReason::parse)
                        .map(|r| r.label_zh().to_owned())
                        .unwrap_or_default(),
                ),
            ]
        }),
    );
    let bytes = written
        .map_err(|e| PageError::internal(&e))
        .and_then(|_| std::fs::read(&path).map_err(|e| PageError::internal(&e)));
    let _ = std::fs::remove_dir_all(&dir);
    let bytes = bytes?;
    audit(
        &st,
        &op.user.login,
        op.audit_role(),
        "web.report_download",
        format!("batch:{id}"),
        serde_json::json!({"report": "lines.xlsx", "lines": lines.len()}),
    )
    .await;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"batch-{id}-lines.xlsx\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
