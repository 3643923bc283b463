//! Human-readable renderings of Henan's records, shared by the CLI, the demo and the snapshot
//! tests. Personal identifiers appear masked only; run-dependent values (timestamps) are not
//! shown.

use super::ops::{HandoverView, LibraryItem};
use crate::output::pad;
use std::fmt::Write;
use ykt_kernel::Fen;
use ykt_kernel::batch::Totals;
use ykt_kernel::ledger::Account;
use ykt_kernel::mask::MaskPolicy;
use ykt_kernel::ports::{FailureReason, LookupRecord};
use ykt_province_henan::library::{ChangeKind, ChangeState, LibraryEntry};
use ykt_store::henan::{
    CandidateRow, ChangeRow, ChangeStepRow, CountyBankRow, LibraryEvent, LineDigest, LineEventRow,
    OrderRow, PostRow, PullRow, ReleaseRow, ResultRow, StatementRow,
};
use ykt_store::payments::StepRow;

fn t(x: &Totals) -> String {
    format!("{}笔 {}元", x.count, x.amount)
}

fn reason_zh(r: Option<&str>) -> String {
    r.and_then(FailureReason::parse)
        .map(|r| r.label_zh().to_owned())
        .unwrap_or_default()
}

/// The project library.
pub fn library(items: &[LibraryItem]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "补贴项目库（{}个项目，第十条）", items.len());
    for i in items {
        let e = &i.entry;
        let _ = writeln!(
            o,
            "  {} {} [{}] {} {} 主管：{} 版本{}{}",
            pad(&e.code, 6),
            pad(&e.name, 34),
            e.short_name,
            e.frequency,
            if i.row.status == "active" {
                "在用"
            } else {
                "已停止执行"
            },
            if e.lead_unit.is_empty() {
                "-"
            } else {
                &e.lead_unit
            },
            i.row.version,
            i.row
                .request_id
                .map(|r| format!("（变更申请{r}）"))
                .unwrap_or_default()
        );
    }
    o
}

/// The library's history.
pub fn history(events: &[LibraryEvent]) -> String {
    let mut o = String::new();
    for e in events {
        let name = serde_json::from_str::<LibraryEntry>(&e.entry)
            .map(|x| x.name)
            .unwrap_or_default();
        let kind = match e.kind.as_str() {
            "seed" => "初始入库",
            k => ChangeKind::parse(k).map(|k| k.label_zh()).unwrap_or(k),
        };
        let _ = writeln!(
            o,
            "  {} {} v{} {} {}{} 经办：{}",
            e.on_date,
            pad(&e.code, 6),
            e.version,
            pad(kind, 8),
            name,
            e.request_id
                .map(|r| format!("（变更申请{r}）"))
                .unwrap_or_default(),
            e.actor
        );
    }
    o
}

/// One change request and its steps.
pub fn change(req: &ChangeRow, steps: &[ChangeStepRow]) -> String {
    let mut o = String::new();
    let kind = ChangeKind::parse(&req.kind)
        .map(|k| k.label_zh())
        .unwrap_or("?");
    let state = ChangeState::parse(&req.state)
        .map(|s| s.label_zh())
        .unwrap_or("?");
    let name = serde_json::from_str::<LibraryEntry>(&req.entry)
        .map(|e| format!("{} [{}]", e.name, e.short_name))
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "变更申请 {}：{} {} {}  填报单位区划 {}  状态：{}",
        req.id, kind, req.code, name, req.region, state
    );
    let _ = writeln!(o, "  理由：{}", req.reason);
    for s in steps {
        let label = match s.step.as_str() {
            "file" => "主管部门填报",
            "review" => "同级财政审核",
            "recheck" => "市财政局复核",
            "apply" => "省财政厅调整入库",
            "reject" => "不予通过",
            other => other,
        };
        let _ = writeln!(
            o,
            "  {}. {} {} {}（{} {}）{}",
            s.seq,
            s.on_date,
            pad(label, 16),
            s.actor,
            s.role,
            s.office,
            s.note
                .as_deref()
                .filter(|n| s.step != "file" && !n.is_empty())
                .map(|n| format!(" 意见：{n}"))
                .unwrap_or_default()
        );
    }
    o
}

/// Candidate banks and the counties' choices.
pub fn banks(candidates: &[CandidateRow], counties: &[CountyBankRow]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "备选代发金融机构（省财政厅，第十五条）：");
    for c in candidates {
        let _ = writeln!(
            o,
            "  {} {} 协议 {}  已对接 {} 免费跨行 {}",
            pad(&c.code, 10),
            pad(&c.name, 30),
            c.agreement_no,
            if c.connected { "是" } else { "否" },
            if c.free_interbank { "是" } else { "否" }
        );
    }
    let _ = writeln!(o, "县（区）代发银行（第十六条，1至2家）：");
    for c in counties {
        let _ = writeln!(
            o,
            "  {} {} 代发协议 {}  选定：{} {}",
            c.county,
            pad(&c.bank, 10),
            c.agreement_no,
            c.selected_by,
            c.selected_on
        );
    }
    o
}

/// The disbursement application and what the budget system answered.
pub fn order(o: &OrderRow) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "发放单号 {}  代发银行 {}  预算单位 {}",
        o.order_no, o.bank, o.budget_unit
    );
    let _ = writeln!(
        s,
        "  审核选定：{} {}  推送：{}  支付申请：{}  预算指标：{}  拨付到账：{}",
        o.assigned_by,
        o.assigned_on,
        o.pushed_on.as_deref().unwrap_or("-"),
        o.request_no.as_deref().unwrap_or("-"),
        o.indicator.as_deref().unwrap_or("-"),
        o.funded_on.as_deref().unwrap_or("-")
    );
    if let Some(m) = &o.push_message {
        let _ = writeln!(s, "  推送报文（GB18030 XML）：");
        for l in m.lines() {
            let _ = writeln!(s, "    {l}");
        }
    }
    s
}

/// Releases, pulls and posts of an order (the platform's log).
pub fn traffic(releases: &[ReleaseRow], pulls: &[PullRow], posts: &[PostRow]) -> String {
    let mut s = String::new();
    for r in releases {
        let _ = writeln!(
            s,
            "  第{}次开放获取 {} {}  {}",
            r.round,
            r.on_date,
            t(&r.lines),
            r.notified
        );
    }
    for p in pulls {
        let _ = writeln!(
            s,
            "  银行获取明细（{}）自明细{}之后{}",
            if p.mode == "stream" {
                "流式CSV"
            } else {
                "分页JSON"
            },
            p.after_line,
            if p.mode == "page" {
                format!("，{}行", p.lines)
            } else {
                String::new()
            }
        );
    }
    for p in posts {
        let _ = writeln!(
            s,
            "  结果报文：{}条，受理{}条，重复{}条{}",
            p.results,
            p.applied,
            p.duplicates,
            p.error
                .as_deref()
                .map(|e| format!("，拒收：{e}"))
                .unwrap_or_default()
        );
    }
    s
}

/// The lines of a batch (masked).
pub fn lines(lines: &[LineDigest], mask: &MaskPolicy) -> String {
    let mut s = String::new();
    for l in lines {
        let _ = writeln!(
            s,
            "  明细{:<4} {} {} {} {:>8}元 {} 第{}次{}",
            l.line_id,
            pad(&format!("第{}行", l.row_no), 8),
            pad(&mask.name(&l.name), 6),
            l.account_masked,
            l.amount.to_string(),
            l.state.label_zh(),
            l.attempt,
            l.fail_reason
                .as_deref()
                .map(|r| format!(" {}", reason_zh(Some(r))))
                .unwrap_or_default()
        );
    }
    s
}

/// Results as the bank posted them.
pub fn results(rows: &[ResultRow]) -> String {
    let mut s = String::new();
    for r in rows {
        let _ = writeln!(
            s,
            "  明细{:<4} 第{}次 {:>8}元 {} {}{}",
            r.line_id,
            r.attempt,
            r.amount.to_string(),
            if r.outcome == "credited" {
                "已入账"
            } else {
                "失败"
            },
            r.bank_date,
            r.reason
                .as_deref()
                .map(|x| format!(" {}", reason_zh(Some(x))))
                .unwrap_or_default()
        );
    }
    s
}

/// The SMS the bank reported sending.
pub fn sms(rows: &[ResultRow]) -> String {
    let mut s = String::new();
    for r in rows.iter().filter(|r| r.sms_text.is_some()) {
        let _ = writeln!(
            s,
            "  明细{:<4} {} {}{}",
            r.line_id,
            r.sms_at.as_deref().unwrap_or(""),
            r.sms_text.as_deref().unwrap_or(""),
            match r.sms_ok {
                Some(false) => "（不符合第八条第五项）",
                _ => "",
            }
        );
    }
    s
}

/// A signer as recorded ("本人 王秀英", "监护人 李四"): the relation kept, the name masked.
pub fn signer(text: &str, mask: &MaskPolicy) -> String {
    match text.trim().split_once(char::is_whitespace) {
        Some((relation, name)) => format!("{relation} {}", mask.name(name.trim())),
        None => text.trim().to_owned(),
    }
}

/// Corrections and refunds with their signatures (the signer's name masked).
pub fn line_events(events: &[LineEventRow], mask: &MaskPolicy) -> String {
    let mut s = String::new();
    for e in events {
        match e.kind.as_str() {
            "correction" => {
                let _ = writeln!(
                    s,
                    "  {} 明细{} 更正：补贴对象签字「{}」，主管部门负责人{}审核签字",
                    e.on_date,
                    e.line_id,
                    signer(e.signed_by.as_deref().unwrap_or(""), mask),
                    e.head.as_deref().unwrap_or("")
                );
            }
            _ => {
                let _ = writeln!(
                    s,
                    "  {} 明细{} 原渠道退回{}元：主管部门{}申请，财政{}同意",
                    e.on_date,
                    e.line_id,
                    e.amount,
                    e.signed_by.as_deref().unwrap_or(""),
                    e.head.as_deref().unwrap_or("")
                );
            }
        }
    }
    s
}

/// Hand-overs with their deadlines.
pub fn handovers(views: &[HandoverView]) -> String {
    let mut s = String::new();
    for v in views {
        let h = &v.row;
        let state = match h.state.as_str() {
            "confirmed" => "已核对无误，盖章报财政备案",
            "disputed" => "发现错误，已通知银行补救",
            _ => "待核对",
        };
        let _ = writeln!(
            s,
            "  {} 第{}次交易结果 {} 经办人{} 收到{}：银行入账{} 失败{}；系统入账{} 失败{}",
            h.order_no,
            h.seq,
            h.bank,
            h.handler,
            h.received_on,
            t(&h.bank_credited),
            t(&h.bank_failed),
            t(&h.sys_credited),
            t(&h.sys_failed)
        );
        if !h.discrepancy.is_empty() {
            let _ = writeln!(s, "    不符：{}", h.discrepancy);
        }
        let _ = writeln!(
            s,
            "    {}{}{}",
            state,
            h.done_on
                .as_deref()
                .map(|d| format!("（{d} {}）", h.done_by.as_deref().unwrap_or("")))
                .unwrap_or_default(),
            h.note
                .as_deref()
                .map(|n| format!(" 说明：{n}"))
                .unwrap_or_default()
        );
        match &v.deadlines {
            Ok(d) => {
                let _ = writeln!(
                    s,
                    "    核对期限（5个工作日）：{}{}",
                    d.check.label_zh(),
                    if d.check.overdue { " ⚠逾期" } else { "" }
                );
                if let Some(n) = d.notify {
                    let _ = writeln!(
                        s,
                        "    通知银行期限（3个工作日）：{}{}",
                        n.label_zh(),
                        if n.overdue { " ⚠逾期" } else { "" }
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(s, "    期限无法计算：{e}");
            }
        }
    }
    s
}

/// Statements compared with the platform.
pub fn statements(rows: &[StatementRow]) -> String {
    let mut s = String::new();
    for r in rows {
        let _ = writeln!(
            s,
            "  {} {} {}（{}收到）：{}",
            r.bank,
            r.period,
            if r.kind == "annual" {
                "年度汇总核对"
            } else {
                "月度对账"
            },
            r.received_on,
            if r.matches { "相符" } else { "不符" }
        );
        let lines: Vec<serde_json::Value> = serde_json::from_str(&r.lines).unwrap_or_default();
        for l in lines {
            let tot = |v: &serde_json::Value| {
                format!(
                    "{}笔 {}元",
                    v["count"].as_u64().unwrap_or(0),
                    Fen(v["amount"].as_i64().unwrap_or(0))
                )
            };
            let _ = writeln!(
                s,
                "    {} 银行 {} / 系统 {}",
                l["project"].as_str().unwrap_or(""),
                tot(&l["bank"]),
                tot(&l["platform"])
            );
        }
    }
    s
}

/// Ledger balances.
pub fn ledger(balances: &[(Account, Fen)], sum: Fen, unbalanced: i64) -> String {
    let mut s = String::new();
    for (a, v) in balances {
        let _ = writeln!(s, "  {} {:>12}元", pad(&a.label_zh(), 40), v.to_string());
    }
    let _ = writeln!(s, "  合计 {}元，不平分录 {} 笔", sum, unbalanced);
    s
}

/// A batch's workflow trace.
pub fn steps(steps: &[StepRow]) -> String {
    let mut s = String::new();
    for st in steps {
        let _ = writeln!(
            s,
            "  {:>2}. {} {} → {}  {}（{}）{}",
            st.seq,
            pad(&st.step, 24),
            st.from_state,
            st.to_state,
            st.actor,
            st.role,
            st.reason
                .as_deref()
                .map(|r| format!(" 原因：{r}"))
                .unwrap_or_default()
        );
    }
    s
}

/// Lookup records as published.
pub fn published(records: &[LookupRecord]) -> String {
    let mut s = String::new();
    for r in records {
        let _ = writeln!(
            s,
            "  {} {} {} {}元 {} {}",
            pad(&r.name_masked, 6),
            r.project_name,
            r.period,
            r.amount,
            r.date,
            r.status
        );
    }
    s
}
