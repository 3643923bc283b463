//! The budget system (预算管理一体化系统) as the 一卡通 platform sees it:
//!
//! - `POST /plans`: a disbursement plan (发放计划) pushed by the platform (黑财监〔2021〕30号
//!   二(三)二 "生成补贴资金发放计划，推送至预算管理一体化系统"), split by fiscal region, one region
//!   plan per county (二(三)三 "预算管理一体化系统按财政区划自动分发各地");
//! - `POST /requests`: the region department's treasury centralised payment request for its
//!   region plan (二(三)三 "由各地补贴资金业务主管部门在预算管理一体化系统中生成国库集中支付申请"),
//!   answered with the 5201 voucher it creates, pending finance review;
//! - `POST /vouchers/{no}/approve`: finance's approval (二(三)三 "经财政部门审核通过后");
//! - `POST /vouchers/{no}/send`: the complete 5201 voucher with its payee detail list, checked
//!   against the approved request and the region plan, then forwarded to the treasury agent
//!   bank;
//! - `POST /vouchers/{no}/repay`: a re-payment voucher (`OriVoucherNo`) for corrected lines,
//!   within the approved voucher's amount, numbered here and forwarded;
//! - `GET /vouchers/{no}`: a voucher's state; `GET /plans/{plan}/returns?after=&limit=`: the
//!   bank's return details for the vouchers of a plan since a cursor, a page at a time,
//!   relayed to the platform (二(三)三 "由预算管理一体化
//!   系统向“一卡通”平台反馈发放情况");
//! - `POST /vouchers/{no}/refunds`: return unpaid money through the original channel.

use super::xml::{self, El};
use super::{SimClock, error, fmt_amt, fnv, parse_amt, xml_bytes_response, xml_response, ymd};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Where the budget system forwards vouchers.
#[derive(Debug, Clone)]
pub struct BudgetConfig {
    /// Base URL of the treasury agent bank.
    pub bank_url: String,
    /// The treasury agent bank of every region (the sim has one).
    pub agent_bank: String,
}

/// A plan's detail as the budget system keeps it: its 12-digit region as a number, its amount
/// and a fingerprint of the payee (name, account, bank), which is what a repeated plan is
/// compared on. Nothing else of a detail is needed after the push (the voucher's details are
/// checked against the amount), and a province-scale plan has a million of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PlanDetail {
    region: u64,
    amount: i64,
    payee: u64,
}

impl PlanDetail {
    /// The county (first six digits of the region), as a number.
    fn county(&self) -> u64 {
        self.region / 1_000_000
    }
}

/// A plan's details, sorted by line: 32 bytes each (a `BTreeMap` filled in line order keeps
/// its nodes half full, some 60 bytes a detail; a province-scale plan has a million).
type Details = Vec<(i64, PlanDetail)>;

/// The detail of `line`.
fn detail_of(details: &Details, line: i64) -> Option<&PlanDetail> {
    details
        .binary_search_by_key(&line, |(l, _)| *l)
        .ok()
        .map(|i| &details[i].1)
}

#[derive(Debug, Clone)]
struct Plan {
    version: u32,
    /// How many times finance returned the plan's request (`Resubmission`).
    resubmission: u32,
    period: String,
    fund_type: String,
    details: Details,
}

#[derive(Debug, Clone)]
struct RegionPlan {
    no: String,
    plan_no: String,
    county: String,
    county_name: String,
    /// Its lines, sorted (8 bytes each).
    lines: Box<[i64]>,
    count: usize,
    amount: i64,
    pay_acct_no: String,
    pay_acct_name: String,
    pay_acct_bank: String,
    void: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    PendingReview,
    Approved,
    Sent,
    Void,
}

impl Status {
    fn code(self) -> &'static str {
        match self {
            Status::PendingReview => "pending_review",
            Status::Approved => "approved",
            Status::Sent => "sent",
            Status::Void => "void",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Status::PendingReview => "待财政审核",
            Status::Approved => "财政已审核",
            Status::Sent => "已发送代理银行",
            Status::Void => "已作废",
        }
    }
}

#[derive(Debug, Clone)]
struct Voucher {
    no: String,
    region_plan: String,
    plan_no: String,
    ori: String,
    status: Status,
    pay_amt: i64,
    agency_code: String,
    agency_name: String,
    vou_date: String,
    approver: String,
    /// What was sent: how many details and a fingerprint of each one's line and `Attempt`,
    /// in order (a repeated send or re-payment is recognised by it; the pairs themselves
    /// were 16 bytes a detail of every voucher).
    sent: Sent,
    /// A voucher sent in parts: each part's fingerprint, in part order.
    sent_parts: Vec<u64>,
}

/// The details a voucher sent: their number and [`ids_digest`] of their (line, attempt
/// fingerprint) pairs in order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sent {
    count: usize,
    digest: u64,
}

impl Sent {
    fn of(ids: &[(i64, u64)]) -> Sent {
        Sent {
            count: ids.len(),
            digest: ids_digest(ids),
        }
    }
}

#[derive(Default)]
struct BudgetState {
    plans: BTreeMap<String, Plan>,
    region_plans: BTreeMap<String, RegionPlan>,
    vouchers: BTreeMap<String, Voucher>,
    plan_seq: u32,
    voucher_seq: u32,
    /// Per plan, its return details as they arrived from the bank.
    returns: BTreeMap<String, ReturnLog>,
    /// Plans being pushed in parts, by plan number.
    plan_parts: BTreeMap<String, PlanParts>,
    /// Vouchers being sent in parts, by voucher number.
    sending: BTreeMap<String, Sending>,
}

struct Budget {
    cfg: BudgetConfig,
    clock: SimClock,
    http: reqwest::Client,
    state: Mutex<BudgetState>,
}

impl Budget {
    fn lock(&self) -> std::sync::MutexGuard<'_, BudgetState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The budget system's router.
pub fn router(cfg: BudgetConfig, clock: SimClock) -> Router {
    let b = Arc::new(Budget {
        cfg,
        clock,
        http: reqwest::Client::new(),
        state: Mutex::new(BudgetState::default()),
    });
    Router::new()
        .route("/plans", post(push_plan))
        .route("/plans/{plan}/returns", get(returns))
        .route("/requests", post(request))
        .route("/vouchers/{no}", get(status))
        .route("/vouchers/{no}/approve", post(approve))
        .route("/vouchers/{no}/send", post(send))
        .route("/vouchers/{no}/repay", post(repay))
        .route("/vouchers/{no}/refunds", post(refund))
        // A province-scale plan or voucher is larger than axum's default 2 MiB.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .with_state(b)
}

/// The largest message the simulator accepts (a 1,000,000-line plan is some 300 MB of XML).
const MAX_MESSAGE_BYTES: usize = 1 << 30;

fn bad(m: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid", m)
}
fn conflict(m: impl Into<String>) -> Response {
    error(StatusCode::CONFLICT, "conflict", m)
}
fn not_found(m: impl Into<String>) -> Response {
    error(StatusCode::NOT_FOUND, "not_found", m)
}

fn receipt(plan_no: &str, p: &Plan, st: &BudgetState, agent: &str) -> El {
    let mut list = El::new("RegionPlanList");
    for rp in st
        .region_plans
        .values()
        .filter(|r| r.plan_no == plan_no && !r.void)
    {
        list.push(
            El::new("RegionPlan")
                .with(El::leaf("RegionPlanNo", rp.no.clone()))
                .with(El::leaf("AdmDivCode", rp.county.clone()))
                .with(El::leaf("AdmDivName", rp.county_name.clone()))
                .with(El::leaf("Count", rp.count.to_string()))
                .with(El::leaf("Amt", fmt_amt(rp.amount)))
                .with(El::leaf("PayAcctNo", rp.pay_acct_no.clone()))
                .with(El::leaf("PayAcctName", rp.pay_acct_name.clone()))
                .with(El::leaf("PayAcctBankName", rp.pay_acct_bank.clone()))
                .with(El::leaf("AgentBankName", agent)),
        );
    }
    El::new("PlanReceipt")
        .with(El::leaf("PlanNo", plan_no))
        .with(El::leaf("Version", p.version.to_string()))
        .with(El::leaf("Status", "accepted"))
        .with(El::leaf("StatusName", "已接收并按财政区划分发"))
        .with(list)
}

/// A plan message as read: its header, region names and details (each checked), and which
/// part of the plan it is (`PartNo` of `PartCount`; 1 of 1 for a whole plan).
struct PlanMsg {
    plan_no: String,
    resubmission: u32,
    period: String,
    fund_type: String,
    total_count: String,
    total_amt: String,
    names: BTreeMap<String, String>,
    details: Details,
    sum: i64,
    part: (u32, u32),
}

impl PlanMsg {
    /// What must be the same in every part of a plan.
    fn header(&self) -> (u32, &str, &str, &str, &str, u32) {
        (
            self.resubmission,
            &self.period,
            &self.fund_type,
            &self.total_count,
            &self.total_amt,
            self.part.1,
        )
    }

    /// A fingerprint of the details.
    fn digest(&self) -> u64 {
        let mut h = 0u64;
        for (line, d) in &self.details {
            h = fnv(
                h,
                &[
                    &line.to_string(),
                    &d.region.to_string(),
                    &d.amount.to_string(),
                    &d.payee.to_string(),
                ],
            );
        }
        h
    }
}

/// Read a `DisbursementPlan` (or one of its parts) detail by detail: a province-scale plan
/// is never a tree; each detail is checked as it completes and kept compactly, the first bad
/// one ends the read. The control totals are checked on the whole plan ([`accept_plan`]).
fn read_plan(body: &[u8]) -> Result<PlanMsg, String> {
    let mut names: Option<BTreeMap<String, String>> = None;
    let mut details: Details = Vec::new();
    // The lines seen, once they stop coming in ascending order (a repeat is then looked up
    // here; in order, a repeat is the previous line).
    let mut seen: Option<std::collections::HashSet<i64>> = None;
    let mut sum: i64 = 0;
    let root = xml::parse_streaming(body, "DetailList", "Detail", |open, d| {
        // The details of the plan's (first) DetailList, as a tree would be read.
        if open.len() != 2
            || open[0].name != "DisbursementPlan"
            || open[0].child("DetailList").is_some()
        {
            return Ok(());
        }
        let names = names.get_or_insert_with(|| {
            let mut names = BTreeMap::new();
            if let Some(rl) = open[0].child("RegionList") {
                for r in rl.all("Region") {
                    names.insert(
                        r.get("AdmDivCode").to_owned(),
                        r.get("AdmDivName").to_owned(),
                    );
                }
            }
            names
        });
        let Ok(line) = d.get("LineId").parse::<i64>() else {
            return Err(format!("LineId「{}」无效", d.get("LineId")));
        };
        let region = d.get("AdmDivCode");
        if region.len() != 12 || !region.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!("明细{line}的AdmDivCode应为12位区划代码"));
        }
        if !names.contains_key(&region[..6]) {
            return Err(format!("明细{line}的区划{}不在RegionList中", &region[..6]));
        }
        let account = d.get("PayeeAcctNo");
        if !(12..=30).contains(&account.len()) || !account.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!("明细{line}收款账号不是12至30位数字"));
        }
        let amount = match parse_amt(d.get("PayAmt")) {
            Ok(a) if a > 0 => a,
            Ok(_) => return Err(format!("明细{line}金额须大于零")),
            Err(e) => return Err(e),
        };
        sum = sum.checked_add(amount).ok_or("金额溢出")?;
        let pd = PlanDetail {
            region: region
                .parse()
                .map_err(|_| format!("明细{line}的AdmDivCode无效"))?,
            amount,
            payee: fnv(
                0,
                &[d.get("PayeeAcctName"), account, d.get("PayeeAcctBankName")],
            ),
        };
        let repeated = match (&mut seen, details.last()) {
            (None, None) => false,
            (None, Some((last, _))) if line > *last => false,
            (None, Some(_)) => {
                let set: std::collections::HashSet<i64> = details.iter().map(|(l, _)| *l).collect();
                let r = set.contains(&line);
                seen = Some(set);
                r
            }
            (Some(set), _) => set.contains(&line),
        };
        if repeated {
            return Err(format!("明细{line}重复"));
        }
        if let Some(set) = &mut seen {
            set.insert(line);
        }
        details.push((line, pd));
        Ok(())
    })?;
    drop(seen);
    details.sort_unstable_by_key(|(l, _)| *l);
    details.shrink_to_fit();
    if root.name != "DisbursementPlan" {
        return Err("不是DisbursementPlan报文".into());
    }
    let plan_no = root.get("PlanNo").to_owned();
    if plan_no.is_empty() {
        return Err("PlanNo为空".into());
    }
    let resubmission: u32 = match root.get("Resubmission") {
        "" => 0,
        s => s.parse().map_err(|_| format!("Resubmission「{s}」无效"))?,
    };
    let part = super::part_of(&root)?;
    Ok(PlanMsg {
        plan_no,
        resubmission,
        period: root.get("Period").to_owned(),
        fund_type: root.get("FundTypeCode").to_owned(),
        total_count: root.get("TotalCount").to_owned(),
        total_amt: root.get("TotalAmt").to_owned(),
        names: names.unwrap_or_default(),
        details,
        sum,
        part,
    })
}

/// A plan being pushed in parts: the parts received so far (their fingerprints) and, merged,
/// their details.
struct PlanParts {
    first: PlanMsg,
    parts: BTreeMap<u32, u64>,
}

/// The answer to a part before the plan is complete.
fn part_receipt(plan_no: &str, part: (u32, u32), received: usize) -> Response {
    xml_response(
        StatusCode::OK,
        &El::new("PlanReceipt")
            .with(El::leaf("PlanNo", plan_no))
            .with(El::leaf("Status", "receiving"))
            .with(El::leaf(
                "StatusName",
                format!("已接收第{}部分（共{}部分）", part.0, part.1),
            ))
            .with(El::leaf("PartNo", part.0.to_string()))
            .with(El::leaf("PartCount", part.1.to_string()))
            .with(El::leaf("ReceivedParts", received.to_string())),
    )
}

async fn push_plan(State(b): State<Arc<Budget>>, body: Bytes) -> Response {
    let msg = match read_plan(&body) {
        Ok(m) => m,
        Err(e) => return bad(e),
    };
    drop(body);
    let mut guard = b.lock();
    let st = &mut *guard;
    if msg.part.1 == 1 {
        return accept_plan(&b, st, msg);
    }
    // A plan in parts (messages.md): parts are kept until all have come, then the plan is
    // checked and distributed as a whole; a plan pushed again in parts, unchanged, gets the
    // same receipt at its last part (as a whole plan pushed again does).
    let plan_no = msg.plan_no.clone();
    let (k, n) = msg.part;
    let digest = msg.digest();
    let restart = match st.plan_parts.get(&plan_no) {
        None => true,
        Some(pp) => {
            k == 1 && (pp.first.header() != msg.header() || pp.parts.get(&1) != Some(&digest))
        }
    };
    if restart {
        if k != 1 {
            return conflict(format!("发放计划{plan_no}应从第1部分推送"));
        }
        let mut parts = BTreeMap::new();
        parts.insert(1, digest);
        st.plan_parts
            .insert(plan_no.clone(), PlanParts { first: msg, parts });
        return part_receipt(&plan_no, (1, n), 1);
    }
    let Some(pp) = st.plan_parts.get_mut(&plan_no) else {
        return conflict(format!("发放计划{plan_no}应从第1部分推送"));
    };
    if pp.first.header() != msg.header() {
        return conflict(format!(
            "发放计划{plan_no}第{k}部分的控制数或属期与第1部分不符"
        ));
    }
    match pp.parts.get(&k) {
        Some(d) if *d == digest => {
            return part_receipt(&plan_no, msg.part, pp.parts.len());
        }
        Some(_) => {
            return conflict(format!(
                "发放计划{plan_no}第{k}部分已接收且内容不同，请从第1部分重新推送"
            ));
        }
        None => {}
    }
    for (line, _) in &msg.details {
        if detail_of(&pp.first.details, *line).is_some() {
            return bad(format!("明细{line}重复"));
        }
    }
    let Some(sum) = pp.first.sum.checked_add(msg.sum) else {
        return bad("金额溢出");
    };
    pp.first.sum = sum;
    let in_order = match (pp.first.details.last(), msg.details.first()) {
        (Some(a), Some(b)) => a.0 < b.0,
        _ => true,
    };
    pp.first.details.extend(msg.details);
    if !in_order {
        pp.first.details.sort_by_key(|(l, _)| *l);
    }
    pp.parts.insert(k, digest);
    if pp.parts.len() < n as usize {
        return part_receipt(&plan_no, msg.part, pp.parts.len());
    }
    let Some(pp) = st.plan_parts.remove(&plan_no) else {
        return conflict(format!("发放计划{plan_no}应从第1部分推送"));
    };
    accept_plan(&b, st, pp.first)
}

/// A whole plan (or all its parts): the control totals checked, then distributed by region
/// (a plan pushed again unchanged gets the same receipt).
fn accept_plan(b: &Budget, st: &mut BudgetState, msg: PlanMsg) -> Response {
    let PlanMsg {
        plan_no,
        resubmission,
        period,
        fund_type,
        total_count,
        total_amt,
        names,
        details,
        sum,
        ..
    } = msg;
    if details.is_empty() {
        return bad("发放计划没有明细");
    }
    if total_count != details.len().to_string() || parse_amt(&total_amt) != Ok(sum) {
        return bad(format!(
            "控制数不符：报文{}笔{}元，明细{}笔{}元",
            total_count,
            total_amt,
            details.len(),
            fmt_amt(sum)
        ));
    }
    let grain = fund_type == "2";
    let version = match st.plans.get(&plan_no) {
        Some(p) if p.details == details && p.resubmission == resubmission => {
            return xml_response(StatusCode::OK, &receipt(&plan_no, p, st, &b.cfg.agent_bank));
        }
        Some(p) => {
            // A changed or resubmitted plan (finance returned the request and the department
            // submitted again): allowed only while nothing was approved; earlier region plans
            // and vouchers are voided.
            if resubmission < p.resubmission {
                return conflict(format!("发放计划{plan_no}已有更新的提交"));
            }
            if st.vouchers.values().any(|v| {
                v.plan_no == plan_no && matches!(v.status, Status::Approved | Status::Sent)
            }) {
                return conflict(format!("发放计划{plan_no}已有审核通过的支付凭证，不能更改"));
            }
            for v in st.vouchers.values_mut().filter(|v| v.plan_no == plan_no) {
                v.status = Status::Void;
            }
            for r in st
                .region_plans
                .values_mut()
                .filter(|r| r.plan_no == plan_no)
            {
                r.void = true;
            }
            p.version + 1
        }
        None => 1,
    };
    let year = period.get(..4).unwrap_or("0000").to_owned();
    // By county (numbers of six digits: their order is that of the codes), each county's
    // lines sorted and its amount.
    let mut by_county: BTreeMap<u64, (Vec<i64>, i64)> = BTreeMap::new();
    for (line, d) in &details {
        let c = by_county.entry(d.county()).or_default();
        c.0.push(*line);
        c.1 += d.amount;
    }
    for (county, (lines, amount)) in by_county {
        let county = format!("{county:06}");
        let county = &county;
        st.plan_seq += 1;
        let county_name = names.get(county).cloned().unwrap_or_default();
        let no = format!("JH{county}{year}{:05}", st.plan_seq);
        let (pay_acct_no, pay_acct_name, pay_acct_bank) = if grain {
            (
                format!("272{county}0001"),
                format!("{county_name}粮食风险基金专户"),
                "中国人民银行国库".to_owned(),
            )
        } else {
            (
                format!("0801{county}000001"),
                format!("{county_name}财政局财政零余额账户"),
                b.cfg.agent_bank.clone(),
            )
        };
        st.region_plans.insert(
            no.clone(),
            RegionPlan {
                no,
                plan_no: plan_no.clone(),
                county: county.clone(),
                county_name,
                count: lines.len(),
                lines: lines.into_boxed_slice(),
                amount,
                pay_acct_no,
                pay_acct_name,
                pay_acct_bank,
                void: false,
            },
        );
    }
    let plan = Plan {
        version,
        resubmission,
        period,
        fund_type,
        details,
    };
    let r = receipt(&plan_no, &plan, st, &b.cfg.agent_bank);
    st.plans.insert(plan_no, plan);
    xml_response(StatusCode::OK, &r)
}

fn notice(v: &Voucher, st: &BudgetState, agent_bank: &str) -> El {
    let rp = st.region_plans.get(&v.region_plan);
    let plan = st.plans.get(&v.plan_no);
    El::new("VoucherNotice")
        .with(El::leaf("VoucherNo", v.no.clone()))
        .with(El::leaf("VtCode", "5201"))
        .with(El::leaf(
            "AdmDivCode",
            rp.map(|r| r.county.clone()).unwrap_or_default(),
        ))
        .with(El::leaf(
            "StYear",
            plan.and_then(|p| p.period.get(..4)).unwrap_or_default(),
        ))
        .with(El::leaf("VouDate", v.vou_date.clone()))
        .with(El::leaf("PlanNo", v.plan_no.clone()))
        .with(El::leaf("RegionPlanNo", v.region_plan.clone()))
        .with(El::leaf("OriVoucherNo", v.ori.clone()))
        .with(El::leaf(
            "FundTypeCode",
            plan.map(|p| p.fund_type.clone()).unwrap_or_default(),
        ))
        .with(El::leaf("AgencyCode", v.agency_code.clone()))
        .with(El::leaf("AgencyName", v.agency_name.clone()))
        .with(El::leaf(
            "PayAcctNo",
            rp.map(|r| r.pay_acct_no.clone()).unwrap_or_default(),
        ))
        .with(El::leaf(
            "PayAcctName",
            rp.map(|r| r.pay_acct_name.clone()).unwrap_or_default(),
        ))
        .with(El::leaf(
            "PayAcctBankName",
            rp.map(|r| r.pay_acct_bank.clone()).unwrap_or_default(),
        ))
        .with(El::leaf("PayBankName", agent_bank))
        .with(El::leaf("PayAmt", fmt_amt(v.pay_amt)))
        .with(El::leaf(
            "DetailCount",
            if v.sent.count == 0 {
                rp.map(|r| r.count).unwrap_or(0).to_string()
            } else {
                v.sent.count.to_string()
            },
        ))
        .with(El::leaf("Approver", v.approver.clone()))
        .with(El::leaf("Status", v.status.code()))
        .with(El::leaf("StatusName", v.status.label()))
}

async fn request(State(b): State<Arc<Budget>>, body: Bytes) -> Response {
    let req = match xml::parse(&body) {
        Ok(r) if r.name == "PaymentRequest" => r,
        Ok(_) => return bad("不是PaymentRequest报文"),
        Err(e) => return bad(e),
    };
    let rp_no = req.get("RegionPlanNo").to_owned();
    if req.get("AgencyName").is_empty() {
        return bad("预算单位AgencyName为空");
    }
    let today = ymd(b.clock.today());
    let mut guard = b.lock();
    let st = &mut *guard;
    let Some(rp) = st.region_plans.get(&rp_no).cloned() else {
        return not_found(format!("区划发放计划{rp_no}不存在"));
    };
    if rp.void {
        return conflict(format!("区划发放计划{rp_no}已作废"));
    }
    if let Some(v) = st
        .vouchers
        .values()
        .find(|v| v.region_plan == rp_no && v.ori.is_empty() && v.status != Status::Void)
    {
        return xml_response(StatusCode::OK, &notice(v, st, &b.cfg.agent_bank));
    }
    st.voucher_seq += 1;
    let year = st
        .plans
        .get(&rp.plan_no)
        .and_then(|p| p.period.get(..4))
        .unwrap_or("0000")
        .to_owned();
    let v = Voucher {
        no: format!("5201{}{year}{:05}", rp.county, st.voucher_seq),
        region_plan: rp_no,
        plan_no: rp.plan_no.clone(),
        ori: String::new(),
        status: Status::PendingReview,
        pay_amt: rp.amount,
        agency_code: req.get("AgencyCode").to_owned(),
        agency_name: req.get("AgencyName").to_owned(),
        vou_date: today,
        approver: String::new(),
        sent: Sent::default(),
        sent_parts: Vec::new(),
    };
    let n = notice(&v, st, &b.cfg.agent_bank);
    st.vouchers.insert(v.no.clone(), v);
    xml_response(StatusCode::OK, &n)
}

async fn status(State(b): State<Arc<Budget>>, Path(no): Path<String>) -> Response {
    let st = b.lock();
    match st.vouchers.get(&no) {
        Some(v) => xml_response(StatusCode::OK, &notice(v, &st, &b.cfg.agent_bank)),
        None => not_found(format!("支付凭证{no}不存在")),
    }
}

async fn approve(State(b): State<Arc<Budget>>, Path(no): Path<String>, body: Bytes) -> Response {
    let req = match xml::parse(&body) {
        Ok(r) if r.name == "Approval" => r,
        Ok(_) => return bad("不是Approval报文"),
        Err(e) => return bad(e),
    };
    let mut guard = b.lock();
    let st = &mut *guard;
    let Some(v) = st.vouchers.get_mut(&no) else {
        return not_found(format!("支付凭证{no}不存在"));
    };
    match v.status {
        Status::PendingReview => {
            v.status = Status::Approved;
            v.approver = req.get("Approver").to_owned();
        }
        Status::Approved | Status::Sent => {}
        Status::Void => return conflict(format!("支付凭证{no}已作废，不能审核")),
    }
    let v = v.clone();
    xml_response(StatusCode::OK, &notice(&v, st, &b.cfg.agent_bank))
}

/// A 5201 voucher's detail as read for the checks: its line (or the text that is not one),
/// a fingerprint of its `Attempt` and its amount (or why it is not one).
struct VoucherDetail {
    line: Result<i64, Box<str>>,
    attempt: u64,
    amount: Result<i64, String>,
}

impl VoucherDetail {
    fn of(d: &El) -> VoucherDetail {
        VoucherDetail {
            line: d.get("LineId").parse().map_err(|_| d.get("LineId").into()),
            attempt: fnv(0, &[d.get("Attempt")]),
            amount: parse_amt(d.get("PayAmt")),
        }
    }
}

/// A 5201 message read detail by detail: the tree without the details of its (first)
/// voucher's `DetailList`, and those details as [`VoucherDetail`]s (a province-scale voucher
/// is never a tree). The other details (a second voucher, which [`voucher_of`] refuses) are
/// read and dropped.
fn read_voucher(bytes: &[u8]) -> Result<(El, Vec<VoucherDetail>), String> {
    let mut details = Vec::new();
    let root = xml::parse_streaming(bytes, "DetailList", "Detail", |open, d| {
        // Only the first DetailList of the first Voucher of the first VoucherBody, as
        // `voucher_of` and `check_details` read a tree.
        let first = open.len() == 4
            && open[1].name == "VoucherBody"
            && open[2].name == "Voucher"
            && open[0].child("VoucherBody").is_none()
            && open[1].child("Voucher").is_none()
            && open[2].child("DetailList").is_none();
        if first {
            details.push(VoucherDetail::of(&d));
        }
        Ok(())
    })?;
    Ok((root, details))
}

/// The details of a voucher's tree (a re-payment, read whole).
fn details_of(v: &El) -> Vec<VoucherDetail> {
    v.child("DetailList")
        .map(|l| l.all("Detail").map(VoucherDetail::of).collect())
        .unwrap_or_default()
}

/// Check a 5201 voucher's details against the plan: (detail ids, lines, sum). `only` limits
/// the lines to a set (the original voucher's region plan).
fn check_details(
    v: &El,
    details: &[VoucherDetail],
    plan: &Plan,
    only: &[i64],
    whole: bool,
) -> Result<(Vec<(i64, u64)>, Vec<i64>, i64), String> {
    if v.child("DetailList").is_none() {
        return Err("缺少DetailList".into());
    }
    let mut ids = Vec::with_capacity(details.len());
    let mut lines = Vec::with_capacity(details.len());
    let mut seen = std::collections::HashSet::new();
    let mut sum: i64 = 0;
    for d in details {
        let line = match &d.line {
            Ok(l) => *l,
            Err(text) => return Err(format!("LineId「{text}」无效")),
        };
        let pd = detail_of(&plan.details, line)
            .filter(|_| only.binary_search(&line).is_ok())
            .ok_or_else(|| format!("明细{line}不在该区划发放计划中"))?;
        let amount = d.amount.clone()?;
        if amount != pd.amount {
            return Err(format!(
                "明细{line}金额{}与发放计划{}不符",
                fmt_amt(amount),
                fmt_amt(pd.amount)
            ));
        }
        if !seen.insert(line) {
            return Err(format!("明细{line}重复"));
        }
        sum = sum.checked_add(amount).ok_or("金额溢出")?;
        ids.push((line, d.attempt));
        lines.push(line);
    }
    if ids.is_empty() {
        return Err("凭证没有明细".into());
    }
    let pay_amt = parse_amt(v.get("PayAmt"))?;
    if whole && pay_amt != sum {
        return Err(format!(
            "明细合计{}与凭证金额{}不符",
            fmt_amt(sum),
            fmt_amt(pay_amt)
        ));
    }
    Ok((ids, lines, sum))
}

/// The one 5201 voucher of a message (public for the fuzz targets, `tests/fuzz`).
pub fn voucher_of(root: &El) -> Result<&El, String> {
    if root.name != "MOF" {
        return Err("不是MOF凭证报文".into());
    }
    let mut bodies = root.all("VoucherBody");
    let vb = bodies.next().ok_or("缺少VoucherBody")?;
    if bodies.next().is_some() {
        return Err("一次只能提交一张凭证".into());
    }
    let v = vb.child("Voucher").ok_or("缺少Voucher")?;
    if v.get("VtCode") != "5201" {
        return Err("凭证类型不是5201".into());
    }
    Ok(v)
}

async fn forward(b: &Budget, bytes: impl Into<reqwest::Body>) -> Result<(), Response> {
    let r = b
        .http
        .post(format!("{}/vouchers", b.cfg.bank_url))
        .header("content-type", "application/xml; charset=GB18030")
        .body(bytes)
        .send()
        .await
        .map_err(|e| {
            error(
                StatusCode::BAD_GATEWAY,
                "bank_unreachable",
                format!("代理银行无法连接：{e}"),
            )
        })?;
    if r.status().is_success() {
        return Ok(());
    }
    let status = r.status();
    let body = r.bytes().await.unwrap_or_default();
    let msg = xml::parse(&body)
        .map(|e| e.get("Message").to_owned())
        .unwrap_or_default();
    Err(error(
        if status == reqwest::StatusCode::CONFLICT {
            StatusCode::CONFLICT
        } else {
            StatusCode::BAD_GATEWAY
        },
        "bank_refused",
        format!("代理银行拒绝：{msg}"),
    ))
}

/// The parts received of a voucher sent in parts (`PartNo` of `PartCount`): each part's
/// fingerprint and detail ids, the lines and the amount so far.
#[derive(Default)]
struct Sending {
    count: u32,
    parts: BTreeMap<u32, (u64, Vec<(i64, u64)>)>,
    lines: std::collections::HashSet<i64>,
    sum: i64,
}

fn ids_digest(ids: &[(i64, u64)]) -> u64 {
    ids.iter()
        .fold(0u64, |h, (l, a)| fnv(h, &[&l.to_string(), &a.to_string()]))
}

async fn send(State(b): State<Arc<Budget>>, Path(no): Path<String>, body: Bytes) -> Response {
    let (root, details) = match read_voucher(&body) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let v = match voucher_of(&root) {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    let part = match super::part_of(v) {
        Ok(p) => p,
        Err(e) => return bad(e),
    };
    let (ids, lines, sum, complete) = {
        let st = b.lock();
        let Some(voucher) = st.vouchers.get(&no) else {
            return not_found(format!("支付凭证{no}不存在"));
        };
        if v.get("VoucherNo") != no || !v.get("OriVoucherNo").is_empty() {
            return bad("凭证号与地址不符");
        }
        let Some(rp) = st.region_plans.get(&voucher.region_plan) else {
            return not_found("区划发放计划不存在");
        };
        let Some(plan) = st.plans.get(&voucher.plan_no) else {
            return not_found("发放计划不存在");
        };
        if v.get("AdmDivCode") != rp.county || parse_amt(v.get("PayAmt")) != Ok(voucher.pay_amt) {
            return bad("凭证区划或金额与财政审核的支付申请不符");
        }
        let whole = part.1 == 1;
        let (ids, lines, sum) = match check_details(v, &details, plan, &rp.lines, whole) {
            Ok(x) => x,
            Err(e) => return bad(e),
        };
        if whole && lines.len() != rp.lines.len() {
            return bad("凭证明细与区划发放计划不一致");
        }
        let (k, n) = part;
        match voucher.status {
            Status::Approved => {}
            Status::Sent if whole && voucher.sent == Sent::of(&ids) => {
                return xml_response(StatusCode::OK, &notice(voucher, &st, &b.cfg.agent_bank));
            }
            Status::Sent
                if !whole
                    && voucher.sent_parts.len() == n as usize
                    && voucher.sent_parts.get(k as usize - 1) == Some(&ids_digest(&ids)) =>
            {
                return xml_response(StatusCode::OK, &notice(voucher, &st, &b.cfg.agent_bank));
            }
            Status::Sent => return conflict(format!("支付凭证{no}已发送，明细不同")),
            Status::PendingReview => return conflict(format!("支付凭证{no}尚未经财政审核")),
            Status::Void => return conflict(format!("支付凭证{no}已作废")),
        }
        // A part: checked against the parts received so far; the last one completes the
        // voucher, which must then be exactly the region plan's lines and amount.
        let mut complete = whole;
        if !whole {
            let (count, got, so_far, sum_so_far) = match st.sending.get(&no) {
                Some(s) => (s.count, s.parts.get(&k).map(|p| p.0), s.parts.len(), s.sum),
                None => (n, None, 0, 0),
            };
            if count != n {
                return conflict(format!("支付凭证{no}的部分数与已接收的不同"));
            }
            match got {
                Some(d) if d == ids_digest(&ids) => {
                    return xml_response(StatusCode::OK, &notice(voucher, &st, &b.cfg.agent_bank));
                }
                Some(_) => return conflict(format!("支付凭证{no}第{k}部分已接收且内容不同")),
                None => {}
            }
            if let Some(s) = st.sending.get(&no)
                && let Some(line) = lines.iter().find(|l| s.lines.contains(l))
            {
                return bad(format!("明细{line}重复"));
            }
            if so_far + 1 == n as usize {
                let count = st.sending.get(&no).map_or(0, |s| s.lines.len()) + lines.len();
                if count != rp.lines.len() {
                    return bad("凭证明细与区划发放计划不一致");
                }
                if sum_so_far.checked_add(sum) != Some(voucher.pay_amt) {
                    return bad(format!(
                        "明细合计与凭证金额{}不符",
                        fmt_amt(voucher.pay_amt)
                    ));
                }
                complete = true;
            }
        }
        (ids, lines, sum, complete)
    };
    drop((root, details));
    // Each part goes on to the bank as it is checked (the bank pays a voucher once all its
    // parts have come); nothing of it is kept here but its ids.
    if let Err(r) = forward(&b, body).await {
        return r;
    }
    let mut guard = b.lock();
    let st = &mut *guard;
    let mut sent_parts = Vec::new();
    let ids = if part.1 == 1 {
        ids
    } else {
        let s = st.sending.entry(no.clone()).or_default();
        s.count = part.1;
        s.sum += sum;
        s.lines.extend(lines);
        let digest = ids_digest(&ids);
        s.parts.insert(part.0, (digest, ids));
        if !complete {
            Vec::new()
        } else {
            let s = st.sending.remove(&no).unwrap_or_default();
            let mut all = Vec::with_capacity(s.lines.len());
            for (d, ids) in s.parts.into_values() {
                sent_parts.push(d);
                all.extend(ids);
            }
            all
        }
    };
    let Some(voucher) = st.vouchers.get_mut(&no) else {
        return not_found(format!("支付凭证{no}不存在"));
    };
    if complete {
        voucher.status = Status::Sent;
        voucher.sent = Sent::of(&ids);
        voucher.sent_parts = sent_parts;
    }
    let v = voucher.clone();
    xml_response(StatusCode::OK, &notice(&v, st, &b.cfg.agent_bank))
}

async fn repay(State(b): State<Arc<Budget>>, Path(no): Path<String>, body: Bytes) -> Response {
    let mut root = match xml::parse(&body) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let (new_no, ids, sum, forward_bytes) = {
        let mut guard = b.lock();
        let st = &mut *guard;
        let v = match voucher_of(&root) {
            Ok(v) => v,
            Err(e) => return bad(e),
        };
        if v.get("OriVoucherNo") != no {
            return bad("OriVoucherNo与原凭证号不符");
        }
        let Some(orig) = st.vouchers.get(&no).cloned() else {
            return not_found(format!("原支付凭证{no}不存在"));
        };
        if orig.status != Status::Sent {
            return conflict(format!("原支付凭证{no}尚未发送代理银行，不能重新支付"));
        }
        let (Some(rp), Some(plan)) = (
            st.region_plans.get(&orig.region_plan),
            st.plans.get(&orig.plan_no),
        ) else {
            return not_found("发放计划不存在");
        };
        let (ids, _, sum) = match check_details(v, &details_of(v), plan, &rp.lines, true) {
            Ok(x) => x,
            Err(e) => return bad(e),
        };
        if sum > orig.pay_amt {
            return bad("重新支付金额超过原凭证金额");
        }
        let sent = Sent::of(&ids);
        if let Some(prev) = st.vouchers.values().find(|x| x.ori == no && x.sent == sent) {
            return xml_response(StatusCode::OK, &notice(prev, st, &b.cfg.agent_bank));
        }
        st.voucher_seq += 1;
        let year = v.get("StYear").to_owned();
        let new_no = format!("5201{}{year}{:05}", rp.county, st.voucher_seq);
        let today = ymd(b.clock.today());
        if let Some(vb) = root.child_mut("VoucherBody") {
            vb.set_attr("VoucherNo", new_no.clone());
            if let Some(vv) = vb.child_mut("Voucher") {
                vv.set("VoucherNo", new_no.clone());
                vv.set("Id", new_no.clone());
                vv.set("VouDate", today);
            }
        }
        (new_no, ids, sum, xml::to_bytes(&root))
    };
    drop(root);
    if let Err(r) = forward(&b, forward_bytes).await {
        return r;
    }
    let mut guard = b.lock();
    let st = &mut *guard;
    let Some(orig) = st.vouchers.get(&no).cloned() else {
        return not_found(format!("原支付凭证{no}不存在"));
    };
    let v = Voucher {
        no: new_no.clone(),
        region_plan: orig.region_plan,
        plan_no: orig.plan_no,
        ori: no,
        status: Status::Sent,
        pay_amt: sum,
        agency_code: orig.agency_code,
        agency_name: orig.agency_name,
        vou_date: ymd(b.clock.today()),
        approver: orig.approver,
        sent: Sent::of(&ids),
        sent_parts: Vec::new(),
    };
    let n = notice(&v, st, &b.cfg.agent_bank);
    st.vouchers.insert(new_no, v);
    xml_response(StatusCode::OK, &n)
}

/// A stretch of a plan's return log: `len` details of one voucher's bank return journal from
/// its position `from`, at position `start` of the plan's log.
#[derive(Debug, Clone)]
struct Run {
    voucher: String,
    from: usize,
    len: usize,
    start: usize,
}

/// A plan's return details in the order they arrived from the bank (as references into the
/// bank's return journals, not the details: a page replayed after a crash is fetched from the
/// bank again, by range), and how far each voucher's journal was read.
#[derive(Debug, Default)]
struct ReturnLog {
    runs: Vec<Run>,
    total: usize,
    read: BTreeMap<String, usize>,
}

impl ReturnLog {
    /// The stretches of the log in `[after, after + limit)`.
    fn replay(&self, after: usize, limit: Option<usize>) -> Vec<(String, usize, usize)> {
        let end = limit.map_or(self.total, |l| after.saturating_add(l).min(self.total));
        let first = self.runs.partition_point(|r| r.start + r.len <= after);
        let mut out = Vec::new();
        for r in &self.runs[first..] {
            if r.start >= end {
                break;
            }
            let from = after.max(r.start);
            let to = end.min(r.start + r.len);
            out.push((r.voucher.clone(), r.from + (from - r.start), to - from));
        }
        out
    }
}

/// One range of a voucher's bank return journal: its `VoucherBody` parts (byte ranges of the
/// bank's answer), how many details, whether the journal has more after them.
async fn bank_range(
    b: &Budget,
    no: &str,
    after: usize,
    limit: Option<usize>,
) -> Result<(Vec<Bytes>, usize, bool), Response> {
    let mut url = format!("{}/returns/{no}?after={after}", b.cfg.bank_url);
    if let Some(l) = limit {
        url.push_str(&format!("&limit={l}"));
    }
    let r = b.http.get(url).send().await.map_err(|e| {
        error(
            StatusCode::BAD_GATEWAY,
            "bank_unreachable",
            format!("代理银行无法连接：{e}"),
        )
    })?;
    if !r.status().is_success() {
        return Err(error(
            StatusCode::BAD_GATEWAY,
            "bank_refused",
            format!("代理银行未返回凭证{no}的回单"),
        ));
    }
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let count = header("x-detail-count").and_then(|v| v.parse::<usize>().ok());
    let more = header("x-more").as_deref() == Some("1");
    let Some(count) = count else {
        return Err(error(
            StatusCode::BAD_GATEWAY,
            "bank_malformed",
            format!("代理银行凭证{no}的回单缺少明细条数"),
        ));
    };
    let body = r.bytes().await.unwrap_or_default();
    match xml::children_ranges(&body, "MOF", "VoucherBody") {
        Ok(ranges) => Ok((
            ranges.into_iter().map(|x| body.slice(x)).collect(),
            count,
            more,
        )),
        Err(e) => Err(error(StatusCode::BAD_GATEWAY, "bank_malformed", e)),
    }
}

/// `GET /plans/{plan}/returns?after={cursor}&limit={n}`: the return details of the plan's
/// sent vouchers recorded after the cursor (from the start without one), at most `n` (all
/// without), as the bank wrote them, with `NextCursor` (the position after them) and `More`
/// (`1`: more are ready; ask again from `NextCursor`). Details already recorded are fetched
/// from the bank by range; when the page has room, each sent voucher's bank journal is read
/// on from where it was read, and what is new is recorded here in the order it arrived.
async fn returns(
    State(b): State<Arc<Budget>>,
    Path(plan): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (after, limit) = match super::page_params(&q) {
        Ok(x) => x,
        Err(e) => return bad(e),
    };
    let (nos, replay, total) = {
        let st = b.lock();
        if !st.plans.contains_key(&plan) {
            return not_found(format!("发放计划{plan}不存在"));
        }
        let nos: Vec<String> = st
            .vouchers
            .values()
            .filter(|v| v.plan_no == plan && v.status == Status::Sent)
            .map(|v| v.no.clone())
            .collect();
        let log = st.returns.get(&plan);
        let total = log.map_or(0, |l| l.total);
        if after > total {
            return bad(format!("游标{after}超出发放计划{plan}的回单（{total}条）"));
        }
        let replay = log.map(|l| l.replay(after, limit)).unwrap_or_default();
        (nos, replay, total)
    };
    // Relayed as the bank wrote them: each return voucher's `VoucherBody` is checked and
    // copied byte for byte into one `MOF`, never parsed into a tree.
    let mut parts: Vec<Bytes> = Vec::new();
    let mut served = 0usize;
    for (no, from, len) in replay {
        match bank_range(&b, &no, from, Some(len)).await {
            Ok((p, n, _)) => {
                served += n;
                parts.extend(p);
            }
            Err(r) => return r,
        }
    }
    let mut more = after + served < total;
    if !more {
        for no in nos {
            let room = limit.map(|l| l.saturating_sub(served));
            if room == Some(0) {
                more = true;
                break;
            }
            let from = b
                .lock()
                .returns
                .get(&plan)
                .and_then(|l| l.read.get(&no).copied())
                .unwrap_or(0);
            let (p, n, bank_more) = match bank_range(&b, &no, from, room).await {
                Ok(x) => x,
                Err(r) => return r,
            };
            if n > 0 {
                let mut st = b.lock();
                let log = st.returns.entry(plan.clone()).or_default();
                if log.read.get(&no).copied().unwrap_or(0) != from || log.total != after + served {
                    // A fetch at the same time recorded news first: these are not relayed
                    // here (the answer must be the log from the cursor, without a gap); the
                    // platform asks again from `NextCursor`.
                    more = true;
                    continue;
                }
                log.runs.push(Run {
                    voucher: no.clone(),
                    from,
                    len: n,
                    start: log.total,
                });
                log.total += n;
                log.read.insert(no.clone(), from + n);
                served += n;
                parts.extend(p);
            }
            more |= bank_more;
        }
    }
    let mut o = xml::Out::new();
    o.open(0, "MOF", &[]);
    o.leaf(1, "VoucherCount", &parts.len().to_string());
    o.leaf(1, "NextCursor", &(after + served).to_string());
    o.leaf(1, "More", if more { "1" } else { "0" });
    for p in &parts {
        o.raw_line(1, p);
    }
    drop(parts);
    o.close(0, "MOF");
    xml_bytes_response(StatusCode::OK, o.finish())
}

async fn refund(State(b): State<Arc<Budget>>, Path(no): Path<String>, body: Bytes) -> Response {
    let mut req = match xml::parse(&body) {
        Ok(r) if r.name == "RefundRequest" => r,
        Ok(_) => return bad("不是RefundRequest报文"),
        Err(e) => return bad(e),
    };
    {
        let st = b.lock();
        match st.vouchers.get(&no) {
            Some(v) if v.status == Status::Sent && v.ori.is_empty() => {}
            Some(_) => return conflict(format!("支付凭证{no}未发送代理银行或不是原凭证")),
            None => return not_found(format!("支付凭证{no}不存在")),
        }
    }
    req.set("VoucherNo", no);
    let r = match b
        .http
        .post(format!("{}/refunds", b.cfg.bank_url))
        .header("content-type", "application/xml; charset=GB18030")
        .body(xml::to_bytes(&req))
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_GATEWAY,
                "bank_unreachable",
                format!("代理银行无法连接：{e}"),
            );
        }
    };
    let status = r.status();
    let body = r.bytes().await.unwrap_or_default();
    match xml::parse(&body) {
        Ok(doc) if status.is_success() => xml_response(StatusCode::OK, &doc),
        Ok(doc) => error(
            StatusCode::CONFLICT,
            "bank_refused",
            format!("代理银行拒绝退款：{}", doc.get("Message")),
        ),
        Err(e) => error(StatusCode::BAD_GATEWAY, "bank_malformed", e),
    }
}
