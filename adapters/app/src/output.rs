//! Human-readable renderings shared by the CLI, the demo and the snapshot tests.

use crate::intake::CheckReport;
use std::fmt::Write;
use ykt_kernel::ReasonCode;
use ykt_kernel::batch::Tally;
use ykt_kernel::province::ProvinceDescriptor;
use ykt_store::payments::{BatchRow, StepRow};

/// Pad `s` to `width` display columns (CJK characters count as two).
pub fn pad(s: &str, width: usize) -> String {
    let w: usize = s
        .chars()
        .map(|c| if (c as u32) >= 0x1100 { 2 } else { 1 })
        .sum();
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}

pub fn provinces_table(ds: &[&ProvinceDescriptor]) -> String {
    let mut s = String::new();
    for d in ds {
        let _ = writeln!(
            s,
            "{} {} {}",
            pad(d.code, 14),
            pad(d.name, 10),
            d.model.label_zh()
        );
    }
    s
}

/// The summary of a check or an import, with counts per reason code.
pub fn check_summary(r: &CheckReport) -> String {
    let s = &r.summary;
    let mut o = String::new();
    let _ = writeln!(o, "文件 file: {} ({})", r.file, r.format);
    let _ = writeln!(
        o,
        "省份 province: {}   项目 project: {} {}   当前属期 period: {}",
        r.province, r.project_code, r.project_name, r.period
    );
    let _ = writeln!(
        o,
        "行数 lines: {}   通过 accepted: {}   未通过 rejected: {}   有提示 with warnings: {}",
        s.lines, s.accepted, s.rejected, s.with_warnings
    );
    let _ = writeln!(o, "通过金额 accepted amount: {} 元", s.accepted_amount);
    if !r.cards_checked {
        let _ = writeln!(
            o,
            "注意：未提供社保卡信息（--registry），未比对社会保障卡 (card registry not given: card rules skipped)"
        );
    }
    if !r.history_checked {
        let _ = writeln!(
            o,
            "注意：无数据库，未比对已发放/在途记录与互斥项目（导入时会比对）(no database: already-paid and exclusive-project checks run at import)"
        );
    }
    if !s.by_code.is_empty() {
        let _ = writeln!(o, "按原因 by reason (行数 lines):");
        for (code, n) in &s.by_code {
            let (title, sev) = ReasonCode::from_code(code)
                .map(|c| (c.title(), c.severity().label()))
                .unwrap_or(("", ""));
            let _ = writeln!(o, "  {} {:>6}  {} {}", pad(code, 26), n, sev, title);
        }
    }
    o
}

/// Problems as a table (row, column, code, message).
pub fn problems_table(r: &CheckReport) -> String {
    let mut o = String::new();
    for p in &r.problems {
        let _ = writeln!(
            o,
            "第{:<4}行 {} {} {} {}",
            p.row,
            pad(p.column.as_deref().unwrap_or("-"), 16),
            pad(&p.code, 24),
            pad(&format!("{} {}", p.name, p.id), 28),
            p.message
        );
    }
    o
}

pub fn batches_table(bs: &[BatchRow]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} {} {} {} {} {} {}",
        pad("批次", 6),
        pad("发放单号", 28),
        pad("项目", 22),
        pad("区划", 13),
        pad("属期", 8),
        pad("笔数/金额", 22),
        "状态"
    );
    for b in bs {
        let _ = writeln!(
            o,
            "{} {} {} {} {} {} {}",
            pad(&b.id.to_string(), 6),
            pad(&b.order_no, 28),
            pad(&b.project_name, 22),
            pad(&b.region, 13),
            pad(&b.period, 8),
            pad(&format!("{}笔 {}元", b.control.count, b.control.amount), 22),
            b.state.label_zh()
        );
    }
    o
}

pub fn batch_detail(
    b: &BatchRow,
    tally: &Tally,
    steps: &[StepRow],
    next: &[(&str, &str, &str)],
) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "批次 batch {}  发放单号 {}", b.id, b.order_no);
    let _ = writeln!(
        o,
        "项目 {} ({})  区划 {}  属期 {}  资金渠道 {}",
        b.project_name, b.project, b.region, b.period, b.funding
    );
    let _ = writeln!(
        o,
        "状态 state: {} ({})  编制人 maker: {}",
        b.state.label_zh(),
        b.state,
        b.maker
    );
    let _ = writeln!(
        o,
        "控制数 control: {}笔 {}元",
        b.control.count, b.control.amount
    );
    for s in ykt_kernel::LineState::ALL {
        let t = tally.get(*s);
        if t.count > 0 {
            let _ = writeln!(
                o,
                "  {} {:>6}笔 {:>14}元",
                pad(s.label_zh(), 10),
                t.count,
                t.amount.to_string()
            );
        }
    }
    let total = tally.total();
    let ok = if total == b.control {
        "平衡 balanced"
    } else {
        "不平衡 UNBALANCED"
    };
    let _ = writeln!(
        o,
        "  合计 {:>10}笔 {:>14}元  {ok}",
        total.count,
        total.amount.to_string()
    );
    if !steps.is_empty() {
        let _ = writeln!(o, "流程 trace:");
        for s in steps {
            let _ = writeln!(
                o,
                "  {:>2}. {} {} → {}  {} ({}){}",
                s.seq,
                pad(&s.step, 22),
                s.from_state,
                s.to_state,
                s.actor,
                s.role,
                s.reason
                    .as_deref()
                    .map(|r| format!("  原因: {r}"))
                    .unwrap_or_default()
            );
        }
    }
    if !next.is_empty() {
        let _ = writeln!(o, "下一步 next steps:");
        for (code, label, role) in next {
            let _ = writeln!(o, "  {} {} [{}]", pad(code, 24), label, role);
        }
    }
    o
}

/// The catalogue of a province, one project a line (sub-items indented).
pub fn catalog_table(p: &dyn ykt_kernel::province::Province) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} — {}（{}个项目）",
        p.name(),
        p.model().label_zh(),
        p.catalog().len()
    );
    for pr in p.catalog().projects() {
        let depth = std::iter::successors(pr.parent.as_deref(), |c| {
            p.catalog().find(c).and_then(|q| q.parent.as_deref())
        })
        .count();
        let _ = writeln!(
            o,
            "{}{} {} [{}] {} {} {}{}{}",
            "  ".repeat(depth),
            pad(&pr.code, 10),
            pad(&pr.name, 44),
            pr.short_name,
            pr.frequency.label_zh(),
            pr.cross_period.label_zh(),
            pr.active
                .map(|w| format!("属期{}", w.label_zh()))
                .unwrap_or_default(),
            if pr.basis == ykt_kernel::catalog::PaymentBasis::Household {
                " 按户"
            } else {
                ""
            },
            if pr.funding == ykt_kernel::catalog::FundingChannel::GrainRiskFund {
                " 粮食风险基金专户"
            } else {
                ""
            }
        );
    }
    o
}
