//! What Sichuan's users read: the publicity lists, the statement of the publicity, the
//! procedural review, vouchers and bank files (personal fields masked), the zero-balance
//! account's history, the dual verification, the month-end check, the ledger of unpaid items,
//! statements and SMS texts. Plain text, printable; every personal identifier masked.

use crate::output::pad;
use chrono::NaiveDate;
use std::fmt::Write;
use ykt_kernel::batch::{LineState, Totals};
use ykt_kernel::mask::MaskPolicy;
use ykt_kernel::{Fen, Period};
use ykt_province_sichuan::rules::{Difference, Outstanding, PublicityWindow};
use ykt_store::payments::{BatchRow, StepRow};
use ykt_store::sichuan::{
    AgencyAgreement, BankFile, Objection, PlanDeclaration, Publicity, PublicityLine, Review,
    Unpaid, Verification,
};

/// `2023年5月` for a stored period (`2023-05`).
pub fn period_zh(p: &str) -> String {
    Period::parse(p)
        .map(|p| p.label_zh())
        .unwrap_or_else(|_| p.to_owned())
}

fn unit(household: bool) -> &'static str {
    if household { "户" } else { "人" }
}

/// Each line without trailing spaces (padded columns end where the text ends).
fn tidy(o: String) -> String {
    let mut t: String = o.lines().map(|l| format!("{}\n", l.trim_end())).collect();
    if !o.ends_with('\n') {
        t.pop();
    }
    t
}

fn rule(o: &mut String) {
    let _ = writeln!(o, "{}", "-".repeat(72));
}

/// The village list before payment (masked, printable).
pub fn pre_village(
    b: &BatchRow,
    place: &str,
    township: &str,
    w: &PublicityWindow,
    lines: &[&PublicityLine],
    household: bool,
) -> String {
    let mut o = pre_village_head(b, place, w);
    let mut total = Fen(0);
    for (i, l) in lines.iter().enumerate() {
        total += l.amount;
        o.push_str(&pre_village_row(i + 1, l));
    }
    o.push_str(&pre_village_foot(
        b,
        township,
        lines.len(),
        total,
        household,
    ));
    o
}

/// [`pre_village`]'s heading (complete lines: the list can be rendered a line at a time,
/// each part tidied on its own, the same text).
pub fn pre_village_head(b: &BatchRow, place: &str, w: &PublicityWindow) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{} 发放前公示", b.project_name);
    let _ = writeln!(o, "村（社区）：{place}");
    let _ = writeln!(
        o,
        "属期：{}    公示期：{} 至 {}（{}天）",
        period_zh(&b.period),
        w.starts,
        w.ends,
        (w.ends - w.starts).num_days() + 1
    );
    rule(&mut o);
    let _ = writeln!(
        o,
        "{} {} {} {} 备注",
        pad("序号", 4),
        pad("姓名", 22),
        pad("身份证号码", 20),
        pad("金额（元）", 12)
    );
    tidy(o)
}

/// [`pre_village`]'s line `n` (from 1).
pub fn pre_village_row(n: usize, l: &PublicityLine) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} {} {} {} {}",
        pad(&n.to_string(), 4),
        pad(&l.name_masked, 22),
        pad(&l.id_masked, 20),
        pad(&l.amount.to_string(), 12),
        l.note
    );
    tidy(o)
}

/// [`pre_village`]'s closing lines for `count` lines of `total`.
pub fn pre_village_foot(
    b: &BatchRow,
    township: &str,
    count: usize,
    total: Fen,
    household: bool,
) -> String {
    let mut o = String::new();
    rule(&mut o);
    let _ = writeln!(o, "合计：{count}{}，{total}元", unit(household));
    let _ = writeln!(
        o,
        "如对公示对象或金额有异议，请于公示期内向{township}人民政府或县级主管部门反映。"
    );
    let _ = writeln!(o, "发放单号：{}", b.order_no);
    tidy(o)
}

/// A township's totals per village (三(二)2: "乡镇公开分村的汇总数").
pub fn township_summary(
    b: &BatchRow,
    township: &str,
    villages: &[(String, String, usize, Fen)],
    window: Option<&PublicityWindow>,
    unpaid: Option<usize>,
) -> String {
    let mut o = String::new();
    let stage = if window.is_some() {
        "发放前公示"
    } else {
        "发放结果公示"
    };
    let _ = writeln!(o, "{township} {} {stage}（分村汇总）", b.project_name);
    match window {
        Some(w) => {
            let _ = writeln!(
                o,
                "属期：{}    公示期：{} 至 {}",
                period_zh(&b.period),
                w.starts,
                w.ends
            );
        }
        None => {
            let _ = writeln!(o, "属期：{}", period_zh(&b.period));
        }
    }
    rule(&mut o);
    let _ = writeln!(o, "{} {} 金额（元）", pad("村（社区）", 16), pad("笔数", 8));
    let (mut n, mut t) = (0usize, Fen(0));
    for (_, name, count, amount) in villages {
        n += count;
        t += *amount;
        let _ = writeln!(
            o,
            "{} {} {}",
            pad(name, 16),
            pad(&count.to_string(), 8),
            amount
        );
    }
    rule(&mut o);
    let _ = writeln!(o, "{} {} {}", pad("合计", 16), pad(&n.to_string(), 8), t);
    if let Some(u) = unpaid.filter(|u| *u > 0) {
        let _ = writeln!(o, "另有{u}笔未能到账，资金已退回财政，列入未发放台账。");
    }
    let _ = writeln!(o, "发放单号：{}", b.order_no);
    tidy(o)
}

/// The statement of the publicity the township submits with its data (四(二)1 "公开公示佐证材料").
pub fn publicity_statement(
    b: &BatchRow,
    county: &str,
    p: &Publicity,
    lines: &[PublicityLine],
    objections: &[Objection],
    remaining: Totals,
    today: NaiveDate,
) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{county} {} {} 发放前公示情况说明",
        b.project_name,
        period_zh(&b.period)
    );
    let _ = writeln!(
        o,
        "公示期：{} 至 {}；公示名单{}笔{}元，张贴村级明细及乡镇分村汇总共{}份。",
        p.starts_on, p.ends_on, p.line_count, p.amount, p.notices
    );
    if objections.is_empty() {
        let _ = writeln!(o, "公示期内未收到异议。");
    } else {
        let _ = writeln!(o, "公示期内收到异议{}条，均已处理：", objections.len());
        for ob in objections {
            let target = ob
                .line_id
                .and_then(|id| lines.iter().find(|l| l.line_id == id))
                .map(|l| format!("，涉及{}", l.name_masked))
                .unwrap_or_default();
            let verdict = match ob.status.as_str() {
                "upheld" => "异议成立，已从名单中剔除",
                "dismissed" => "经核实异议不成立，维持原名单",
                _ => "未处理",
            };
            let _ = writeln!(
                o,
                "  异议{}（{}反映{target}）：{}；{verdict}。处理意见：{}",
                ob.id,
                ob.raised_by,
                ob.content,
                ob.resolution.as_deref().unwrap_or("")
            );
        }
    }
    let excluded: Vec<&PublicityLine> = lines.iter().filter(|l| l.excluded).collect();
    if !excluded.is_empty() {
        let _ = writeln!(
            o,
            "剔除：{}（{}笔{}元）。",
            excluded
                .iter()
                .map(|l| l.name_masked.as_str())
                .collect::<Vec<_>>()
                .join("、"),
            excluded.len(),
            excluded.iter().map(|l| l.amount).sum::<Fen>()
        );
    }
    let _ = writeln!(
        o,
        "公示期满，经乡镇人民政府审核盖章，报送{}笔{}元。报送日期：{today}",
        remaining.count, remaining.amount
    );
    let _ = writeln!(o, "发放单号：{}", b.order_no);
    tidy(o)
}

/// A line of the post-payment village list.
pub struct PaidLine {
    pub line: PublicityLine,
    pub state: LineState,
    pub paid_on: Option<NaiveDate>,
}

/// The village list after payment: what was actually paid and when (四(六)).
pub fn post_village(b: &BatchRow, place: &str, lines: &[PaidLine], household: bool) -> String {
    let mut o = post_village_head(b, place);
    let (mut n, mut t) = (0usize, Fen(0));
    for (i, l) in lines.iter().enumerate() {
        if let Some(amount) = paid(l) {
            n += 1;
            t += amount;
        }
        o.push_str(&post_village_row(i + 1, l));
    }
    o.push_str(&post_village_foot(b, n, t, household));
    o
}

/// What a line of the post-payment list counts as paid (credited with a date).
pub fn paid(l: &PaidLine) -> Option<Fen> {
    match (l.state, l.paid_on) {
        (LineState::Credited, Some(_)) => Some(l.line.amount),
        _ => None,
    }
}

/// [`post_village`]'s heading (complete lines, as [`pre_village_head`]).
pub fn post_village_head(b: &BatchRow, place: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{} 发放结果公示", b.project_name);
    let _ = writeln!(o, "村（社区）：{place}    属期：{}", period_zh(&b.period));
    rule(&mut o);
    let _ = writeln!(
        o,
        "{} {} {} {} {} 备注",
        pad("序号", 4),
        pad("姓名", 22),
        pad("身份证号码", 20),
        pad("金额（元）", 12),
        pad("到账日期", 12)
    );
    tidy(o)
}

/// [`post_village`]'s line `i` (from 1).
pub fn post_village_row(i: usize, l: &PaidLine) -> String {
    let mut o = String::new();
    let (date, note) = match (l.state, l.paid_on) {
        (LineState::Credited, Some(d)) => (d.to_string(), l.line.note.clone()),
        (LineState::Refunded, _) => ("未到账".into(), "资金已退回财政，列入未发放台账".into()),
        _ => ("未到账".into(), "发放中".into()),
    };
    let _ = writeln!(
        o,
        "{} {} {} {} {} {}",
        pad(&i.to_string(), 4),
        pad(&l.line.name_masked, 22),
        pad(&l.line.id_masked, 20),
        pad(&l.line.amount.to_string(), 12),
        pad(&date, 12),
        note
    );
    tidy(o)
}

/// [`post_village`]'s closing lines for `n` lines paid, `t` in all.
pub fn post_village_foot(b: &BatchRow, n: usize, t: Fen, household: bool) -> String {
    let mut o = String::new();
    rule(&mut o);
    let _ = writeln!(o, "实际发放：{n}{}，{t}元。", unit(household));
    let _ = writeln!(o, "发放单号：{}", b.order_no);
    tidy(o)
}

/// The workflow trace of a batch (no timestamps: the steps, who took them and why).
pub fn trace(
    b: &BatchRow,
    steps: &[StepRow],
    workflow: &ykt_kernel::workflow::WorkflowDef,
) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "批次 {} {} {} {} — {}",
        b.id,
        b.order_no,
        b.project_name,
        period_zh(&b.period),
        b.state.label_zh()
    );
    for s in steps {
        let label = workflow.step(&s.step).map(|d| d.label).unwrap_or("");
        let _ = writeln!(
            o,
            "  {:>2}. {} {} {} → {}  {}（{}）{}",
            s.seq,
            pad(&s.step, 22),
            pad(label, 30),
            s.from_state,
            s.to_state,
            s.actor,
            s.role,
            s.reason
                .as_deref()
                .map(|r| format!("  原因：{r}"))
                .unwrap_or_default()
        );
    }
    tidy(o)
}

/// Plan declarations and procedural reviews.
pub fn reviews(plans: &[PlanDeclaration], reviews: &[Review]) -> String {
    let mut o = String::new();
    for p in plans {
        let _ = writeln!(
            o,
            "用款计划申报 {}：{}笔 {}元（{}，{}）",
            p.id, p.count, p.amount, p.declared_by, p.declared_on
        );
    }
    for r in reviews {
        let _ = writeln!(
            o,
            "程序性复核 {}（{}，{}）：汇总 {}笔{}元 / 明细 {}笔{}元 / 申报 {}笔{}元 — {}",
            r.id,
            r.reviewer,
            r.reviewed_on,
            r.summary.0,
            r.summary.1,
            r.detail.0,
            r.detail.1,
            r.declared.0,
            r.declared.1,
            if r.passed {
                "一致，通过"
            } else {
                "不一致，退回"
            }
        );
        for f in r.findings.lines() {
            let _ = writeln!(o, "    {f}");
        }
    }
    tidy(o)
}

/// A voucher's XML as text (decoded from GB18030).
pub fn voucher_text(xml: &[u8]) -> String {
    ykt_http::sichuan::from_gb18030(xml).unwrap_or_else(|| "（无法解码的凭证）\n".into())
}

/// A file exchanged with the bank, decoded, with every personal field masked (ID, account,
/// phone, names; the SMS text is kept: it names no one).
pub fn bank_file_masked(bytes: &[u8], mask: &MaskPolicy) -> String {
    let Some(text) = ykt_http::sichuan::from_gb18030(bytes) else {
        return format!(
            "（{}字节，不是有效的GB18030文本：被截断的文件）\n",
            bytes.len()
        );
    };
    let mut o = String::new();
    let complete = text.ends_with('\n');
    for line in text.lines() {
        let mut f: Vec<String> = line.split('|').map(str::to_owned).collect();
        let acct = |s: &str| mask.account(s);
        match (f.first().map(String::as_str), f.len()) {
            (Some("D"), 13) => {
                f[4] = mask.name(&f[4]);
                f[5] = mask.id(&f[5]);
                f[6] = acct(&f[6]);
                f[9] = mask.phone(&f[9]);
                if !f[10].is_empty() {
                    f[10] = mask.name(&f[10]);
                }
            }
            (Some("D"), n) if n >= 5 => {
                f[4] = acct(&f[4]);
            }
            (Some("H"), 14) => {
                f[6] = acct(&f[6]);
            }
            _ => {}
        }
        let _ = writeln!(o, "{}", f.join("|"));
    }
    if !complete {
        let _ = writeln!(o, "（文件在此处中断）");
    }
    o
}

/// The files exchanged with the bank for a batch.
pub fn bank_files(files: &[BankFile]) -> String {
    let mut o = String::new();
    for f in files {
        let status = match f.status.as_str() {
            "sent" => "已发送",
            "accepted" => "已接收入账",
            "repeat" => "重复文件，未重复入账",
            "rejected" => "整体拒收，未入账",
            s => s,
        };
        let dir = if f.direction == "instruction" {
            "发放指令"
        } else {
            "回盘文件"
        };
        let _ = writeln!(
            o,
            "{} {} {} {}笔 {}元 {}{}",
            f.on_date,
            dir,
            pad(&f.file_name, 44),
            f.line_count,
            f.amount,
            status,
            if f.note.is_empty() {
                String::new()
            } else {
                format!("（{}）", f.note)
            }
        );
    }
    tidy(o)
}

/// Ledger postings with a running balance per account.
pub fn ledger(postings: &[ykt_store::sichuan::Posting], kinds: &[&str]) -> String {
    let mut o = String::new();
    let mut balance: std::collections::BTreeMap<String, Fen> = Default::default();
    for p in postings {
        let key = format!("{}:{}", p.account_kind, p.owner);
        let bal = balance.entry(key).or_default();
        *bal += p.amount;
        if !kinds.is_empty() && !kinds.contains(&p.account_kind.as_str()) {
            continue;
        }
        let label = ykt_kernel::ledger::AccountKind::parse(&p.account_kind)
            .map(|k| k.label_zh())
            .unwrap_or("");
        let _ = writeln!(
            o,
            "分录{:>3} 批次{:>3} {} {} {:>12} 余额 {:>12}  {}",
            p.entry_id,
            p.batch_id
                .map(|b| b.to_string())
                .unwrap_or_else(|| "-".into()),
            pad(&format!("{label}[{}]", p.owner), 34),
            pad(
                ykt_kernel::ledger::EntryKind::label_zh(match p.kind.as_str() {
                    "payment" => ykt_kernel::ledger::EntryKind::Payment,
                    "refund" => ykt_kernel::ledger::EntryKind::Refund,
                    "clearing" => ykt_kernel::ledger::EntryKind::Clearing,
                    "recovery" => ykt_kernel::ledger::EntryKind::Recovery,
                    _ => ykt_kernel::ledger::EntryKind::Funding,
                }),
                10
            ),
            signed(p.amount),
            bal.to_string(),
            p.memo
        );
    }
    tidy(o)
}

fn signed(f: Fen) -> String {
    if f.is_negative() {
        f.to_string()
    } else {
        format!("+{f}")
    }
}

/// The dual verification report.
pub fn verification(v: &Verification, describe: impl Fn(i64) -> String) -> String {
    let mut o = String::new();
    let diffs: Vec<Difference> = serde_json::from_str(&v.differences).unwrap_or_default();
    let _ = writeln!(
        o,
        "发放日期 {}；再公示期限 {}；公示日期 {} — {}",
        v.paid_on,
        v.deadline,
        v.published_on,
        if v.on_time {
            "按期（5日内）"
        } else {
            "逾期"
        }
    );
    let _ = writeln!(
        o,
        "公示 {}笔 {}元；银行到账 {}笔 {}元；差异 {}笔",
        v.publicised.0,
        v.publicised.1,
        v.credited.0,
        v.credited.1,
        diffs.len()
    );
    for d in &diffs {
        let _ = writeln!(
            o,
            "  差异：明细{} {} — {}",
            d.line_id(),
            describe(d.line_id()),
            d.label_zh()
        );
    }
    tidy(o)
}

/// The month-end check.
pub fn month_end(r: &super::ops::MonthEndReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} 月末清零检查（区划 {}，检查日 {}）：{}",
        r.month.label_zh(),
        r.scope,
        r.checked_on,
        if r.passed {
            "通过，单位零余额账户均为零"
        } else {
            "未通过"
        }
    );
    for (id, amount, reference) in &r.returned {
        let _ = writeln!(
            o,
            "  已退回财政：追回款{id} {amount}元（退库凭证{reference}）"
        );
    }
    for (owner, v) in &r.balances {
        let _ = writeln!(o, "  单位零余额账户[{owner}] 余额 {v}元");
    }
    for i in &r.outstanding {
        let (batch, line) = match i {
            Outstanding::FundedNotInstructed { batch, .. } => (*batch, None),
            Outstanding::FailedOpen { batch, line, .. }
            | Outstanding::InFlight { batch, line, .. }
            | Outstanding::RecoveredNotReturned { batch, line, .. } => (*batch, Some(*line)),
        };
        let _ = writeln!(
            o,
            "  未清：批次{batch}{} {}元 — {}",
            line.map(|l| format!(" 明细{l}")).unwrap_or_default(),
            i.amount(),
            i.label_zh()
        );
    }
    tidy(o)
}

/// The ledger of unpaid items (未发放台账), masked.
pub fn unpaid(items: &[Unpaid], mask: &MaskPolicy) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} {} {} {} {} {} 原因",
        pad("批次", 5),
        pad("明细", 6),
        pad("姓名", 8),
        pad("项目", 20),
        pad("属期", 10),
        pad("金额（元）", 10)
    );
    for u in items {
        let _ = writeln!(
            o,
            "{} {} {} {} {} {} {}{}（{}申请，{}同意）",
            pad(&u.batch_id.to_string(), 5),
            pad(&u.line_id.to_string(), 6),
            pad(&mask.name(&u.name), 8),
            pad(&u.project_name, 20),
            pad(&period_zh(&u.period), 10),
            pad(&u.amount.to_string(), 10),
            u.fail_reason
                .as_deref()
                .and_then(ykt_kernel::ports::FailureReason::parse)
                .map(|r| format!("银行：{}；", r.label_zh()))
                .unwrap_or_default(),
            u.reason,
            u.requested_by,
            u.approved_by
        );
    }
    let total: Fen = items.iter().map(|u| u.amount).sum();
    let _ = writeln!(
        o,
        "合计 {}笔 {}元，已从单位零余额账户退回财政金库。",
        items.len(),
        total
    );
    tidy(o)
}

/// Objections of a batch.
pub fn objections(list: &[Objection]) -> String {
    let mut o = String::new();
    for ob in list {
        let status = match ob.status.as_str() {
            "open" => "待处理",
            "upheld" => "成立",
            "dismissed" => "不成立",
            s => s,
        };
        let _ = writeln!(
            o,
            "异议{} 批次{}{} {} {}：{} — {}{}",
            ob.id,
            ob.batch_id,
            ob.line_id.map(|l| format!(" 明细{l}")).unwrap_or_default(),
            ob.raised_on,
            ob.raised_by,
            ob.content,
            status,
            ob.resolution
                .as_deref()
                .map(|r| format!(
                    "（{}，{}：{r}）",
                    ob.resolved_on.as_deref().unwrap_or(""),
                    ob.resolved_by.as_deref().unwrap_or("")
                ))
                .unwrap_or_default()
        );
    }
    tidy(o)
}

/// Agency agreements.
pub fn agreements(list: &[AgencyAgreement], mask: &MaskPolicy) -> String {
    let mut o = String::new();
    for a in list {
        let _ = writeln!(
            o,
            "{} {} {} {} 合作银行{} 零余额账户{}（{}） {}至{}",
            a.agreement_no,
            a.region,
            a.project,
            a.department,
            a.bank,
            mask.account(&a.zb_account_no),
            a.zb_bank,
            a.signed_on,
            a.valid_until
        );
    }
    tidy(o)
}

/// Statements, one per beneficiary, separated for printing.
pub fn statements(period: &Period, freq: &str, list: &[super::ops::Statement]) -> String {
    let mut o = String::new();
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            let _ = writeln!(o, "{}", "=".repeat(72));
        }
        let _ = writeln!(
            o,
            "惠民惠农财政补贴资金对账单（{}，{freq}）",
            period.label_zh()
        );
        let _ = writeln!(o, "享受对象：{}    身份证号码：{}", s.name, s.id);
        let _ = writeln!(o, "住址：{}    社会保障卡账号：{}", s.place, s.account);
        if let Some(n) = &s.proxy_note {
            let _ = writeln!(o, "说明：{n}");
        }
        let _ = writeln!(
            o,
            "{} {} {} {} {} 备注",
            pad("序号", 4),
            pad("补贴项目", 44),
            pad("属期", 10),
            pad("金额（元）", 10),
            pad("日期", 10)
        );
        for (j, it) in s.items.iter().enumerate() {
            let _ = writeln!(
                o,
                "{} {} {} {} {} {}",
                pad(&(j + 1).to_string(), 4),
                pad(&it.project, 44),
                pad(&it.period, 10),
                pad(&it.amount.to_string(), 10),
                pad(&it.date, 10),
                it.note
            );
        }
        let _ = writeln!(o, "合计：{}元", s.total);
        let _ = writeln!(
            o,
            "如对发放明细有疑问，请向乡镇人民政府或县级业务主管部门反映。"
        );
    }
    tidy(o)
}

/// SMS texts as the gateway received them, phones masked.
pub fn sms(list: &[ykt_sim::sichuan::sms::Sms], mask: &MaskPolicy) -> String {
    let mut o = String::new();
    for m in list {
        let _ = writeln!(
            o,
            "{} {} [{}] {}",
            m.id,
            mask.phone(&m.to),
            m.sender,
            m.text
        );
    }
    o
}
