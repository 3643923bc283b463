//! Sichuan's operations besides the workflow steps, and the computations its ports share:
//! agency agreements, proxy agreements, objections, plan declarations and the procedural
//! review, the platform's polling of the treasury and the bank, recoveries, the month-end
//! zero-balance check, statements and the ledger of unpaid items.

use super::{Platform, Sichuan};
use crate::cycle::{CycleError, StepReport, account};
use chrono::NaiveDate;
use std::collections::{BTreeMap, HashMap};
use ykt_http::sichuan::voucher::{Voucher, VoucherDetail};
use ykt_kernel::batch::{BatchState, LineState, Totals};
use ykt_kernel::ident::RegionLevel;
use ykt_kernel::intake::ProxyKind;
use ykt_kernel::ledger::{AccountKind, Entry, EntryKind};
use ykt_kernel::ports::PortError;
use ykt_kernel::{Fen, Period, RegionCode, ResidentId, Role, User};
use ykt_province_sichuan::rules::{self, Outstanding, ReviewFigures};
use ykt_store::StoreError;
use ykt_store::payments::BatchRow;
use ykt_store::sichuan::{AgencyAgreement, PlanDeclaration, Review};

/// Why a Sichuan operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum SichuanError {
    /// Refused: the message says why and what to do.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Cycle(#[from] CycleError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Port(#[from] PortError),
}

impl SichuanError {
    /// Whether the user was refused (as opposed to a system failure).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            SichuanError::Refused(_)
                | SichuanError::Cycle(CycleError::Refused(_) | CycleError::Invalid(_))
        )
    }
}

pub fn refused(m: impl Into<String>) -> SichuanError {
    SichuanError::Refused(m.into())
}

type R<T> = Result<T, SichuanError>;

/// The business date as text.
pub fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A Sichuan batch by id.
pub async fn batch(sc: &Sichuan, id: i64) -> R<BatchRow> {
    let b = sc
        .store
        .batch(id)
        .await?
        .ok_or_else(|| refused(format!("批次{id}不存在 (no batch {id})")))?;
    if b.province != ykt_province_sichuan::CODE {
        return Err(refused(format!(
            "批次{id}属于{}，不是四川省的批次 (not a Sichuan batch)",
            b.province
        )));
    }
    Ok(b)
}

/// A Sichuan batch by order number.
pub async fn batch_by_order(sc: &Sichuan, order_no: &str) -> R<Option<BatchRow>> {
    match sc.store.sichuan_batch_id(order_no).await? {
        Some(id) => Ok(sc
            .store
            .batch(id)
            .await?
            .filter(|b| b.province == ykt_province_sichuan::CODE)),
        None => Ok(None),
    }
}

/// The user may act on batch `b` in `role`.
pub fn require(user: &User, role: Role, region: &str) -> R<()> {
    if !user.has(role) {
        return Err(refused(format!(
            "用户{}不具备「{}」角色 (user {} lacks role {role})",
            user.login,
            role.label_zh(),
            user.login
        )));
    }
    let r = RegionCode::parse(region).map_err(|e| refused(e.to_string()))?;
    if !user.covers(&r) {
        return Err(refused(format!(
            "区划{region}不在用户{}的管辖范围内 (outside {}'s scope)",
            user.login, user.login
        )));
    }
    Ok(())
}

/// The village a line's region belongs to (the region itself above village level).
pub fn village_of(region: &str) -> String {
    RegionCode::parse(region)
        .ok()
        .and_then(|r| r.ancestor(RegionLevel::Village).or(Some(r)))
        .map(|r| r.full())
        .unwrap_or_else(|| region.to_owned())
}

/// Region names, looked up once each.
#[derive(Default)]
pub struct Places(HashMap<String, String>);

impl Places {
    /// The name of a region: from the imported region table, else from the region codes
    /// shipped with ykt (what intake checks against when none was imported), else the code.
    pub async fn name(&mut self, sc: &Sichuan, code: &str) -> String {
        if let Some(n) = self.0.get(code) {
            return n.clone();
        }
        let parsed = RegionCode::parse(code).ok();
        let stored = match &parsed {
            Some(r) => sc.store.region_name(r).await.ok().flatten(),
            None => None,
        };
        let n = stored
            .or_else(|| {
                let r = parsed.as_ref()?;
                crate::registers::demo_regions()
                    .into_iter()
                    .find(|e| &e.code == r)
                    .map(|e| e.name)
            })
            .unwrap_or_else(|| code.to_owned());
        self.0.insert(code.to_owned(), n.clone());
        n
    }
    /// `城关镇幸福村` for a village (township name then village name).
    pub async fn village(&mut self, sc: &Sichuan, village: &str) -> String {
        let township = RegionCode::parse(village)
            .ok()
            .and_then(|r| r.ancestor(RegionLevel::Township))
            .map(|t| t.full());
        match township {
            Some(t) if t != village => {
                format!(
                    "{}{}",
                    self.name(sc, &t).await,
                    self.name(sc, village).await
                )
            }
            _ => self.name(sc, village).await,
        }
    }
}

/// The project and its ancestors, nearest first.
pub fn project_chain(sc: &Sichuan, code: &str) -> Vec<String> {
    let cat = sc.province.catalog();
    std::iter::successors(cat.find(code), |p| {
        p.parent.as_deref().and_then(|c| cat.find(c))
    })
    .map(|p| p.code.clone())
    .collect()
}

/// The agency agreement in force for a batch's department on `on`.
pub async fn agreement_for(
    sc: &Sichuan,
    b: &BatchRow,
    on: NaiveDate,
) -> R<Option<AgencyAgreement>> {
    Ok(sc
        .store
        .sichuan_agreement_for(&b.region, &project_chain(sc, &b.project), &day(on))
        .await?)
}

/// A village's subtotal of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VillageTotal {
    pub code: String,
    pub name: String,
    pub totals: Totals,
}

/// The batch's lines summed per village, in village order.
pub async fn village_totals(sc: &Sichuan, b: &BatchRow) -> R<Vec<VillageTotal>> {
    // Summed per region by the database, then per village (issue #8: the batch was read and
    // decrypted whole for its sums).
    let mut by: BTreeMap<String, Totals> = BTreeMap::new();
    for (region, t) in sc.store.region_totals(b.id).await? {
        let v = by.entry(village_of(&region)).or_default();
        v.count += t.count;
        v.amount += t.amount;
    }
    let mut places = Places::default();
    let mut out = Vec::new();
    for (code, totals) in by {
        out.push(VillageTotal {
            name: places.village(sc, &code).await,
            code,
            totals,
        });
    }
    Ok(out)
}

/// The figures of the procedural review of a batch and the declaration they used.
pub async fn review_figures(
    sc: &Sichuan,
    b: &BatchRow,
) -> R<(ReviewFigures, Option<PlanDeclaration>)> {
    let tally = sc.store.tally(b.id).await?;
    let plan = sc.store.sichuan_plans(b.id).await?.pop();
    let declared = plan
        .as_ref()
        .map(|p| Totals {
            count: u64::try_from(p.count).unwrap_or(0),
            amount: p.amount,
        })
        .unwrap_or_default();
    Ok((
        ReviewFigures {
            summary: b.control,
            detail: tally.total(),
            declared,
        },
        plan,
    ))
}

/// The review's findings: the mismatches, or the missing declaration.
pub fn findings(f: &ReviewFigures, plan: Option<&PlanDeclaration>) -> Vec<String> {
    if plan.is_none() {
        return vec![
            "主管部门尚未申报授权支付用款计划（ykt sichuan plan <批次> --user <经办>）".into(),
        ];
    }
    rules::procedural_review(f)
}

/// A new authorised-payment voucher for a batch, funding the department's zero-balance
/// account with the declared amount, one detail per village (numbered after the batch's
/// earlier plan vouchers).
pub async fn plan_voucher(
    sc: &Sichuan,
    b: &BatchRow,
    a: &AgencyAgreement,
    declared: Totals,
) -> R<Voucher> {
    let sent = sc.store.sichuan_vouchers(b.id).await?;
    let plans: Vec<_> = sent.iter().filter(|v| v.kind == "plan").collect();
    let today = sc.today();
    let county = &b.region[..6.min(b.region.len())];
    let n = plans.len() + 1;
    let period = Period::parse(&b.period)
        .map(|p| p.label_zh())
        .unwrap_or_else(|_| b.period.clone());
    let details = village_totals(sc, b)
        .await?
        .into_iter()
        .map(|v| VoucherDetail {
            code: v.code,
            name: v.name,
            count: v.totals.count,
            amount: v.totals.amount,
        })
        .collect();
    let v = Voucher {
        voucher_no: format!("8202{county}{}{:05}{n:02}", today.format("%Y%m%d"), b.id),
        ori_voucher_no: None,
        adm_div_code: county.to_owned(),
        st_year: chrono::Datelike::year(&today),
        vou_date: today,
        agency_code: format!("{county}-{}", b.project),
        agency_name: a.department.clone(),
        payee_acct_no: a.zb_account_no.clone(),
        payee_acct_name: a.zb_account_name.clone(),
        payee_acct_bank: a.zb_bank.clone(),
        exp_func_name: b.project_name.clone(),
        purpose: format!("{} {period} 惠民惠农补贴（授权支付）", b.order_no),
        bill_count: declared.count,
        pay_amt: declared.amount,
        details,
    };
    Ok(v)
}

/// A red-letter voucher returning `amount` of batch `b`'s funding to the treasury.
pub async fn return_voucher(
    sc: &Sichuan,
    b: &BatchRow,
    original: &str,
    amount: Fen,
    tag: &str,
    n: usize,
    reason: &str,
) -> R<Voucher> {
    let a = agreement_for(sc, b, sc.today())
        .await?
        .ok_or_else(|| refused(no_agreement(b)))?;
    let today = sc.today();
    let county = &b.region[..6.min(b.region.len())];
    Ok(Voucher {
        voucher_no: format!("{original}{tag}{n:02}"),
        ori_voucher_no: Some(original.to_owned()),
        adm_div_code: county.to_owned(),
        st_year: chrono::Datelike::year(&today),
        vou_date: today,
        agency_code: format!("{county}-{}", b.project),
        agency_name: a.department.clone(),
        payee_acct_no: a.zb_account_no.clone(),
        payee_acct_name: a.zb_account_name.clone(),
        payee_acct_bank: a.zb_bank.clone(),
        exp_func_name: b.project_name.clone(),
        purpose: format!("{} 退回财政金库：{reason}", b.order_no),
        bill_count: 1,
        pay_amt: -amount,
        details: vec![VoucherDetail {
            code: b.region.clone(),
            name: "单位零余额账户退回".into(),
            count: 1,
            amount: -amount,
        }],
    })
}

pub fn no_agreement(b: &BatchRow) -> String {
    format!(
        "区划{}「{}」尚无有效的《补贴资金发放委托代理协议》，请先登记（ykt sichuan agreement add） (no agency agreement on record)",
        b.region, b.project_name
    )
}

// ---- agreements ------------------------------------------------------------------------

/// Record an agency agreement (the department's maker or head, within their region).
pub async fn add_agreement(p: &Platform, a: &AgencyAgreement, user: &User) -> R<i64> {
    if !(user.has(Role::DeptMaker) || user.has(Role::DeptHead)) {
        return Err(refused(format!(
            "用户{}不能登记代发协议：须为主管部门经办或负责人 (only the department records agency agreements)",
            user.login
        )));
    }
    let region = RegionCode::parse(&a.region).map_err(|e| refused(format!("区划：{e}")))?;
    if region.level() != RegionLevel::County {
        return Err(refused(format!(
            "代发协议的区划应为县级（6位），实为{} (the department's county)",
            a.region
        )));
    }
    if !user.covers(&region) {
        return Err(refused(format!(
            "区划{}不在用户{}的管辖范围内",
            a.region, user.login
        )));
    }
    if p.sc.province.catalog().find(&a.project).is_none() {
        return Err(refused(format!("补贴项目目录中没有「{}」", a.project)));
    }
    for (v, what) in [
        (&a.department, "委托单位"),
        (&a.bank, "合作银行"),
        (&a.zb_account_no, "零余额账号"),
        (&a.zb_account_name, "零余额账户名称"),
        (&a.zb_bank, "零余额账户开户银行"),
        (&a.agreement_no, "协议编号"),
    ] {
        if v.trim().is_empty() || v.contains(['|', '\n', '\r']) {
            return Err(refused(format!("{what}不能为空，也不能含分隔符或换行")));
        }
    }
    let dates = (
        NaiveDate::parse_from_str(&a.signed_on, "%Y-%m-%d"),
        NaiveDate::parse_from_str(&a.valid_until, "%Y-%m-%d"),
    );
    match dates {
        (Ok(s), Ok(u)) if s <= u => {}
        _ => {
            return Err(refused(
                "签订日期和有效期应为 YYYY-MM-DD，且有效期不早于签订日期",
            ));
        }
    }
    let mut a = a.clone();
    a.region = region.full();
    match p.sc.store.sichuan_add_agreement(&a, &user.login).await {
        Err(StoreError::Conflict { .. }) => Err(refused(format!(
            "协议编号{}已登记 (agreement number already recorded)",
            a.agreement_no
        ))),
        other => Ok(other?),
    }
}

/// Record a custody (代管) or receipt (代领) agreement filed with the village committee
/// (乐山办法 五: "需签订代为管理委托书，同时需村（居）民委员会备案登记"). For a receipt proxy the
/// person is the proxy (the beneficiary has no ID).
pub async fn add_proxy_agreement(
    p: &Platform,
    person: &ResidentId,
    kind: ProxyKind,
    proxy_name: &str,
    filed_with: &str,
    signed_on: NaiveDate,
    user: &User,
) -> R<()> {
    if !(user.has(Role::TownshipClerk) || user.has(Role::DeptMaker)) {
        return Err(refused(format!(
            "用户{}不能登记代管/代领协议：须为乡镇经办或主管部门经办",
            user.login
        )));
    }
    if proxy_name.trim().is_empty() || filed_with.trim().is_empty() {
        return Err(refused("代管人/代领人姓名和备案单位不能为空"));
    }
    let mask = p.sc.province.mask_policy();
    p.sc.store
        .record_agreement(
            person,
            kind,
            proxy_name.trim(),
            filed_with.trim(),
            &day(signed_on),
        )
        .await?;
    p.sc.store
        .append_audit(ykt_kernel::audit::AuditRecord {
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            actor: user.login.clone(),
            role: user.roles.first().map(|r| r.as_str()).unwrap_or("").into(),
            action: "sichuan.proxy_agreement".into(),
            subject: format!("person:{}", person.masked()),
            from_state: None,
            to_state: None,
            detail: serde_json::json!({"kind": kind.label_zh(), "proxy": mask.name(proxy_name), "filed_with": filed_with, "signed_on": day(signed_on)}),
        })
        .await?;
    Ok(())
}

// ---- objections ------------------------------------------------------------------------

/// Record an objection during the pre-payment publicity (township clerk or department).
pub async fn raise_objection(
    p: &Platform,
    batch_id: i64,
    line: Option<i64>,
    raised_by: &str,
    content: &str,
    user: &User,
) -> R<i64> {
    let b = batch(&p.sc, batch_id).await?;
    let role = if user.has(Role::TownshipClerk) {
        Role::TownshipClerk
    } else {
        Role::DeptMaker
    };
    require(user, role, &b.region)?;
    if content.trim().is_empty() {
        return Err(refused("异议内容不能为空"));
    }
    let by = p.sc.province.mask_policy().name(raised_by);
    Ok(p.sc
        .store
        .sichuan_raise_objection(
            batch_id,
            line,
            if by.is_empty() { "匿名" } else { &by },
            content.trim(),
            &day(p.sc.today()),
            &user.login,
            role.as_str(),
        )
        .await?)
}

/// Resolve an objection: upheld (against a line: the line leaves the batch) or dismissed.
pub async fn resolve_objection(
    p: &Platform,
    id: i64,
    upheld: bool,
    note: &str,
    user: &User,
) -> R<ykt_store::sichuan::Resolution> {
    let o =
        p.sc.store
            .sichuan_objection(id)
            .await?
            .ok_or_else(|| refused(format!("异议{id}不存在")))?;
    let b = batch(&p.sc, o.batch_id).await?;
    let role = if user.has(Role::TownshipClerk) {
        Role::TownshipClerk
    } else {
        Role::DeptMaker
    };
    require(user, role, &b.region)?;
    if note.trim().is_empty() {
        return Err(refused("处理意见不能为空 (a resolution needs a note)"));
    }
    match p
        .sc
        .store
        .sichuan_resolve_objection(
            id,
            upheld,
            note.trim(),
            &day(p.sc.today()),
            &user.login,
            role.as_str(),
        )
        .await
    {
        Err(StoreError::Invalid { reason }) => Err(refused(reason)),
        other => Ok(other?),
    }
}

// ---- plan and review -------------------------------------------------------------------

/// Declare the authorised payment plan (申报授权支付用款计划) — `count`/`amount` default to the
/// batch's summary — and take the `request_plan` step (or, when the batch is already waiting
/// for finance, only record the declaration).
pub async fn declare_plan(
    p: &Platform,
    batch_id: i64,
    count: Option<u64>,
    amount: Option<Fen>,
    user: &User,
) -> R<(PlanDeclaration, Option<StepReport>)> {
    let b = batch(&p.sc, batch_id).await?;
    let step_needed = match b.state {
        BatchState::Reviewed | BatchState::Returned => true,
        BatchState::FundingRequested => false,
        s => {
            return Err(refused(format!(
                "批次状态为「{}」，不能申报用款计划 (the plan is declared after the department's review)",
                s.label_zh()
            )));
        }
    };
    if step_needed {
        // Authorise first: a refused user records nothing.
        p.cycle().authorize(batch_id, "request_plan", user).await?;
    } else {
        require(user, Role::DeptMaker, &b.region)?;
    }
    let count = count.unwrap_or(b.control.count);
    let amount = amount.unwrap_or(b.control.amount);
    if amount.is_negative() {
        return Err(refused("申报金额不能为负"));
    }
    p.sc.store
        .sichuan_declare_plan(
            batch_id,
            i64::try_from(count).unwrap_or(i64::MAX),
            amount,
            &user.login,
            &day(p.sc.today()),
        )
        .await?;
    let plan =
        p.sc.store
            .sichuan_plans(batch_id)
            .await?
            .pop()
            .ok_or_else(|| {
                SichuanError::Store(StoreError::Invalid {
                    reason: "plan".into(),
                })
            })?;
    let report = if step_needed {
        Some(p.cycle().step(batch_id, "request_plan", user, None).await?)
    } else {
        None
    };
    Ok((plan, report))
}

/// What finance's review did.
pub struct ReviewOutcome {
    pub review: Review,
    pub report: StepReport,
}

/// Finance's procedural review (乐山办法 三(四)1): compare the three figures, record the review,
/// then approve (`finance_review`: the voucher goes to the treasury) or return the batch to
/// the department with every mismatch as the reason (`finance_return`).
pub async fn review(p: &Platform, batch_id: i64, user: &User) -> R<ReviewOutcome> {
    let b = batch(&p.sc, batch_id).await?;
    // Both outcomes need the right to review: check before recording anything.
    p.cycle()
        .authorize(batch_id, "finance_review", user)
        .await?;
    let (f, plan) = review_figures(&p.sc, &b).await?;
    let found = findings(&f, plan.as_ref());
    let n = |t: Totals| (i64::try_from(t.count).unwrap_or(i64::MAX), t.amount);
    let mut r = Review {
        id: 0,
        batch_id,
        plan_id: plan.as_ref().map(|p| p.id),
        summary: n(f.summary),
        detail: n(f.detail),
        declared: n(f.declared),
        passed: found.is_empty(),
        findings: found.join("\n"),
        reviewer: user.login.clone(),
        reviewed_on: day(p.sc.today()),
    };
    r.id = p.sc.store.sichuan_record_review(&r).await?;
    let report = if r.passed {
        p.cycle()
            .step(batch_id, "finance_review", user, None)
            .await?
    } else {
        let reason = format!("程序性复核未通过：{}", found.join("；"));
        p.cycle()
            .step(batch_id, "finance_return", user, Some(&reason))
            .await?
    };
    Ok(ReviewOutcome { review: r, report })
}

// ---- the platform's own steps ----------------------------------------------------------

/// What polling did to one batch.
#[derive(Debug, Clone)]
pub struct Polled {
    pub batch: i64,
    pub step: &'static str,
    pub outcome: Result<StepReport, String>,
}

/// Take the system's steps that are due: confirm funding that arrived in the zero-balance
/// account (`fund_zero_balance`) and collect the bank's results (`collect_results`), for one
/// batch or every Sichuan batch within `scope`.
pub async fn poll(p: &Platform, only: Option<i64>, scope: Option<&RegionCode>) -> R<Vec<Polled>> {
    let batches = match only {
        Some(id) => vec![batch(&p.sc, id).await?],
        None => {
            p.sc.store
                .batches(Some(ykt_province_sichuan::CODE), scope)
                .await?
                .into_iter()
                .rev()
                .collect()
        }
    };
    let mut out = Vec::new();
    for b in batches {
        let step = match b.state {
            BatchState::Approved => "fund_zero_balance",
            BatchState::Dispatched => "collect_results",
            _ => continue,
        };
        let region = RegionCode::parse(&b.region).map_err(|e| refused(e.to_string()))?;
        let system = User::system(region);
        let outcome = match p.cycle().step(b.id, step, &system, None).await {
            Ok(r) => Ok(r),
            Err(CycleError::Invalid(m)) => Err(m),
            Err(CycleError::Refused(e)) => Err(e.to_string()),
            Err(e) => return Err(e.into()),
        };
        out.push(Polled {
            batch: b.id,
            step,
            outcome,
        });
    }
    Ok(out)
}

// ---- recoveries and the month end ------------------------------------------------------

/// Recover a credited payment found to be a duplicate or a deceased person's (乐山办法
/// 四(五)3): the money comes back from the card into the department's zero-balance account
/// and waits there for the month-end return to the treasury. Requested by the department,
/// agreed by finance.
pub async fn recover(
    p: &Platform,
    batch_id: i64,
    line_id: i64,
    kind: &str,
    reason: &str,
    requester: &User,
    approver: &User,
) -> R<Fen> {
    let b = batch(&p.sc, batch_id).await?;
    require(requester, Role::DeptMaker, &b.region)?;
    require(approver, Role::FinanceReviewer, &b.region)?;
    if reason.trim().is_empty() {
        return Err(refused("追回须说明原因"));
    }
    let (bank, _) = p.sc.store.batch_refs(batch_id).await?;
    let from = account(AccountKind::Beneficiaries, &b, None);
    let to = account(AccountKind::ZeroBalance, &b, bank.as_deref());
    let memo = match kind {
        "deceased" => "死亡冒领款追回至单位零余额账户",
        _ => "重复领取款追回至单位零余额账户",
    };
    match p
        .sc
        .store
        .sichuan_recover(
            batch_id,
            line_id,
            kind,
            reason.trim(),
            &requester.login,
            &approver.login,
            &day(p.sc.today()),
            |amount| {
                Entry::transfer(EntryKind::Recovery, Some(batch_id), memo, from, to, amount)
                    .map_err(|e| e.to_string())
            },
        )
        .await
    {
        Err(StoreError::Invalid { reason }) => Err(refused(reason)),
        other => Ok(other?),
    }
}

/// The month-end check of the zero-balance accounts within a region.
#[derive(Debug, Clone)]
pub struct MonthEndReport {
    pub month: Period,
    pub scope: String,
    pub checked_on: NaiveDate,
    /// Zero-balance accounts with their balances (non-zero ones are listed even after
    /// passing... which cannot happen).
    pub balances: Vec<(String, Fen)>,
    pub outstanding: Vec<Outstanding>,
    /// Recoveries returned to the treasury by this run (recovery id, amount, reference).
    pub returned: Vec<(i64, Fen, String)>,
    pub passed: bool,
}

fn in_scope(owner: &str, scope: &RegionCode) -> bool {
    owner
        .rsplit_once('@')
        .and_then(|(_, region)| RegionCode::parse(region).ok())
        .is_some_and(|r| scope.contains(&r))
}

async fn outstanding(
    p: &Platform,
    scope: &RegionCode,
) -> R<(Vec<(String, Fen)>, Vec<Outstanding>)> {
    let store = &p.sc.store;
    let balances: Vec<(String, Fen)> = store
        .ledger_balances()
        .await?
        .into_iter()
        .filter(|(a, v)| {
            a.kind == AccountKind::ZeroBalance && !v.is_zero() && in_scope(&a.owner, scope)
        })
        .map(|(a, v)| (a.owner, v))
        .collect();
    let mut items = Vec::new();
    let mut batches = store
        .batches(Some(ykt_province_sichuan::CODE), Some(scope))
        .await?;
    batches.sort_by_key(|b| b.id);
    for b in &batches {
        match b.state {
            BatchState::Funded
            | BatchState::DisbursementSubmitted
            | BatchState::DisbursementConfirmed => items.push(Outstanding::FundedNotInstructed {
                batch: b.id,
                amount: b.control.amount,
            }),
            BatchState::Dispatched | BatchState::Settled => {
                let tally = store.tally(b.id).await?;
                if tally.failed.count + tally.in_flight.count + tally.pending.count > 0 {
                    // Only the open lines (by the (batch, state) index), in row order.
                    let mut open = Vec::new();
                    for state in [LineState::Failed, LineState::Pending, LineState::InFlight] {
                        open.extend(store.lines_in_state(b.id, state).await?);
                    }
                    open.sort_by_key(|l| (l.row_no, l.id));
                    for l in open {
                        match l.state {
                            LineState::Failed | LineState::Pending => {
                                items.push(Outstanding::FailedOpen {
                                    batch: b.id,
                                    line: l.id,
                                    amount: l.amount,
                                })
                            }
                            LineState::InFlight => items.push(Outstanding::InFlight {
                                batch: b.id,
                                line: l.id,
                                amount: l.amount,
                            }),
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    for r in store.sichuan_recoveries(scope.prefix()).await? {
        if r.returned_on.is_none() {
            items.push(Outstanding::RecoveredNotReturned {
                batch: r.batch_id,
                line: r.line_id,
                amount: r.amount,
            });
        }
    }
    Ok((balances, items))
}

/// The month-end check (乐山办法 四(五)3 "按月清零"): list every zero-balance account that is not
/// zero and everything outstanding. With `clear` (requested by the department, agreed by
/// finance), recovered money waiting in the zero-balance accounts goes back to the treasury
/// first (a red-letter voucher each, posted zero-balance account → treasury). The check is
/// recorded with its verdict.
pub async fn month_end(
    p: &Platform,
    month: Period,
    scope: &RegionCode,
    clear: Option<(&User, &User)>,
    actor: &User,
) -> R<MonthEndReport> {
    if month.kind() != ykt_kernel::PeriodKind::Month {
        return Err(refused("月末检查的属期应为月份，如 2023-05"));
    }
    if !(actor.has(Role::DeptMaker)
        || actor.has(Role::FinanceReviewer)
        || actor.has(Role::DeptHead)
        || actor.has(Role::Auditor))
    {
        return Err(refused(format!("用户{}不能进行月末清零检查", actor.login)));
    }
    if !actor.covers(scope) {
        return Err(refused(format!(
            "区划{}不在用户{}的管辖范围内",
            scope.full(),
            actor.login
        )));
    }
    let mut returned = Vec::new();
    if let Some((requester, approver)) = clear {
        if requester.login == approver.login {
            return Err(refused(
                "退回财政须由主管部门申请、财政部门同意，不能是同一人",
            ));
        }
        for r in p.sc.store.sichuan_recoveries(scope.prefix()).await? {
            if r.returned_on.is_some() {
                continue;
            }
            let b = batch(&p.sc, r.batch_id).await?;
            require(requester, Role::DeptMaker, &b.region)?;
            require(approver, Role::FinanceReviewer, &b.region)?;
            let (bank, treasury_ref) = p.sc.store.batch_refs(b.id).await?;
            let original =
                treasury_ref.ok_or_else(|| refused(format!("批次{}没有拨付凭证", b.id)))?;
            let treasury = p
                .treasury
                .as_ref()
                .ok_or_else(|| refused("未配置国库支付接口 (no treasury port configured)"))?;
            let v = return_voucher(
                &p.sc,
                &b,
                &original,
                r.amount,
                "ZH",
                usize::try_from(r.id).unwrap_or(0),
                &format!("追回款按月清零（明细{}）", r.line_id),
            )
            .await?;
            let reference = treasury.send_return(&b, &v).await?;
            let e = Entry::transfer(
                EntryKind::Recovery,
                Some(b.id),
                "追回款退回财政（按月清零）",
                account(AccountKind::ZeroBalance, &b, bank.as_deref()),
                account(AccountKind::Treasury, &b, bank.as_deref()),
                r.amount,
            )
            .map_err(|e| refused(e.to_string()))?;
            p.sc.store
                .sichuan_return_recovery(r.id, &day(p.sc.today()), &reference, &e, &requester.login)
                .await?;
            returned.push((r.id, r.amount, reference));
        }
    }
    let (balances, items) = outstanding(p, scope).await?;
    let balance: Fen = balances.iter().map(|(_, v)| *v).sum();
    let passed = rules::month_end_passes(balance, &items);
    p.sc.store
        .sichuan_record_month_end(&ykt_store::sichuan::MonthEnd {
            id: 0,
            month: month.to_string(),
            scope: scope.full(),
            checked_on: day(p.sc.today()),
            balance,
            outstanding: serde_json::to_string(&items).unwrap_or_default(),
            passed,
            actor: actor.login.clone(),
        })
        .await?;
    Ok(MonthEndReport {
        month,
        scope: scope.full(),
        checked_on: p.sc.today(),
        balances,
        outstanding: items,
        returned,
        passed,
    })
}

// ---- statements and the ledger of unpaid items -----------------------------------------

/// One payment on a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementItem {
    pub project: String,
    pub period: String,
    pub amount: Fen,
    pub date: String,
    pub note: String,
}

/// A statement (对账单) to one beneficiary: masked, printable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub name: String,
    pub id: String,
    pub place: String,
    pub account: String,
    pub proxy_note: Option<String>,
    pub items: Vec<StatementItem>,
    pub total: Fen,
    /// Village then name: the order statements are handed down in.
    order: (String, String),
}

/// The statements of a period (乐山办法 四(六): "按月、按季或按年将补贴资金发放明细告知享受对
/// 象"): one per beneficiary paid in the period (by the bank's value date), each payment with
/// project, 属期, amount and date; recoveries are shown against the payment. In the order
/// they go down through townships and villages (the village of the person's first payment,
/// then name).
pub async fn statements(
    p: &Platform,
    period: Period,
    scope: Option<&RegionCode>,
) -> R<Vec<Statement>> {
    let mut out = Vec::new();
    statements_each(p, period, scope, STATEMENT_PAGE, |page| {
        out.extend_from_slice(page);
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Statements handed over at a time by [`statements_each`] in the demo.
pub const STATEMENT_PAGE: usize = 1000;

/// [`statements`] a page of `page_size` statements at a time (the last page may be
/// shorter), in the same order, without building them all: the database orders the
/// province's payments (a million of them at province scale) and each statement is built
/// from its person's rows as they arrive. Returns how many statements there were.
pub async fn statements_each(
    p: &Platform,
    period: Period,
    scope: Option<&RegionCode>,
    page_size: usize,
    mut each: impl FnMut(&[Statement]) -> R<()>,
) -> R<usize> {
    let prefix = scope.map(|r| r.prefix()).unwrap_or("");
    let freq = p.sc.settings.statement_frequency;
    if !freq.accepts(&period) {
        return Err(refused(format!(
            "本省对账单{}出具，对账期间应为{}（如 {}） (statement period does not match the frequency)",
            freq.label_zh(),
            freq.kind().label_zh(),
            match freq {
                rules::StatementFrequency::Monthly => "2023-05",
                rules::StatementFrequency::Quarterly => "2023Q2",
                rules::StatementFrequency::Yearly => "2023",
            }
        )));
    }
    let mask = p.sc.province.mask_policy();
    let recoveries: HashMap<i64, ykt_store::sichuan::Recovery> =
        p.sc.store
            .sichuan_recoveries(prefix)
            .await?
            .into_iter()
            .map(|r| (r.line_id, r))
            .collect();
    let mut rows = p.sc.store.sichuan_statement_stream(
        ykt_province_sichuan::CODE,
        prefix,
        &day(period.start_date()),
        &day(period.end_date()),
    );
    let mut places = Places::default();
    let mut page: Vec<Statement> = Vec::with_capacity(page_size.min(4096));
    let mut count = 0usize;
    // One person's payments (consecutive in the stream), first payment first.
    let mut group: Vec<ykt_store::sichuan::StatementLine> = Vec::new();
    loop {
        let next = rows.next_rows().await?;
        let done = next.is_none();
        for l in next
            .into_iter()
            .flatten()
            .map(Some)
            .chain(done.then_some(None))
        {
            let same = match (&l, group.first()) {
                (Some(l), Some(g)) => l.person_key == g.person_key && l.name == g.name,
                _ => false,
            };
            if !same && !group.is_empty() {
                let ls = std::mem::take(&mut group);
                page.push(statement(p, &mut places, &mask, &recoveries, ls).await);
                count += 1;
                if page.len() >= page_size.max(1) {
                    each(&page)?;
                    page.clear();
                }
            }
            if let Some(l) = l {
                group.push(l);
            }
        }
        if done {
            break;
        }
    }
    if !page.is_empty() {
        each(&page)?;
    }
    Ok(count)
}

/// One person's statement from their payments (first payment first).
async fn statement(
    p: &Platform,
    places: &mut Places,
    mask: &ykt_kernel::mask::MaskPolicy,
    recoveries: &HashMap<i64, ykt_store::sichuan::Recovery>,
    ls: Vec<ykt_store::sichuan::StatementLine>,
) -> Statement {
    let first = &ls[0];
    let receipt = first.proxy_kind.as_deref() == Some("代领");
    let proxy = first
        .proxy_name
        .as_deref()
        .map(|n| mask.name(n))
        .unwrap_or_default();
    let mut items = Vec::new();
    let mut total = Fen(0);
    for l in &ls {
        total += l.amount;
        items.push(StatementItem {
            project: l.project_name.clone(),
            period: super::render::period_zh(&l.period),
            amount: l.amount,
            date: l.bank_date.clone(),
            note: String::new(),
        });
        if let Some(r) = recoveries.get(&l.line_id) {
            total -= r.amount;
            items.push(StatementItem {
                project: l.project_name.clone(),
                period: super::render::period_zh(&l.period),
                amount: -r.amount,
                date: r.recovered_on.clone(),
                note: format!(
                    "{}追回",
                    if r.kind == "deceased" {
                        "死亡冒领"
                    } else {
                        "重复领取"
                    }
                ),
            });
        }
    }
    Statement {
        name: mask.name(&first.name),
        id: if receipt {
            "无身份证".into()
        } else {
            mask.id(&first.resident_id)
        },
        place: places.village(&p.sc, &village_of(&first.region)).await,
        account: mask.account(&first.account),
        proxy_note: match first.proxy_kind.as_deref() {
            Some("代领") => Some(format!("由代领人{proxy}代为领取，款项进入代领人社会保障卡")),
            Some("代管") => Some(format!("社会保障卡由{proxy}代管")),
            _ => None,
        },
        items,
        total,
        order: (first.region.clone(), first.name.clone()),
    }
}
