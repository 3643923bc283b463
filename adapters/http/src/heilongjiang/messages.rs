//! The budget-system messages (layouts in `provinces/heilongjiang/docs/messages.md`): builders
//! for what the platform sends, readers for what it receives.

use super::xml::Node;
use chrono::NaiveDate;
use ykt_kernel::Fen;
use ykt_kernel::ports::{BankOutcome, BankResult, FailureReason};

/// `420.00` for 42000 分.
pub fn amt(f: Fen) -> String {
    f.to_string()
}

/// Read a wire amount: exactly two decimals, no sign.
pub fn read_amt(s: &str) -> Result<Fen, String> {
    let err = || format!("金额「{s}」格式错误 (malformed amount)");
    let (a, b) = s.split_once('.').ok_or_else(err)?;
    if a.is_empty()
        || a.len() > 15
        || b.len() != 2
        || !a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
    {
        return Err(err());
    }
    let y: i64 = a.parse().map_err(|_| err())?;
    let f: i64 = b.parse().map_err(|_| err())?;
    Ok(Fen(y * 100 + f))
}

pub fn ymd(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

/// `20230521` → `2023-05-21`.
pub fn iso(yyyymmdd: &str) -> Result<String, String> {
    NaiveDate::parse_from_str(yyyymmdd, "%Y%m%d")
        .map(|d| d.to_string())
        .map_err(|_| format!("日期「{yyyymmdd}」格式错误 (malformed date)"))
}

/// One payee of a plan or voucher.
#[derive(Debug, Clone)]
pub struct Payee<'a> {
    pub line_id: i64,
    pub attempt: u32,
    pub region: &'a str,
    pub name: &'a str,
    pub account: &'a str,
    pub bank: &'a str,
    pub amount: Fen,
    pub period: &'a str,
}

/// The header of a disbursement plan.
#[derive(Debug, Clone)]
pub struct PlanHeader<'a> {
    pub plan_no: &'a str,
    pub province: &'a str,
    pub project_code: &'a str,
    pub project_name: &'a str,
    pub lead_unit: &'a str,
    pub period: &'a str,
    pub grain: bool,
    pub create_date: NaiveDate,
    /// (county code, county name) of every region the plan touches.
    pub regions: Vec<(String, String)>,
    /// How many times finance returned the batch before this submission (0 the first time),
    /// with the last reason.
    pub resubmission: u32,
    pub return_reason: &'a str,
}

pub fn fund_type(grain: bool) -> (&'static str, &'static str) {
    if grain {
        ("2", "粮食风险基金")
    } else {
        ("1", "一般公共预算资金")
    }
}

/// 发放计划 (platform → budget system).
pub fn plan(h: &PlanHeader<'_>, payees: &[Payee<'_>]) -> Node {
    let (ft, ftn) = fund_type(h.grain);
    let total: Fen = payees.iter().map(|p| p.amount).sum();
    let mut regions = Node::new("RegionList");
    for (code, name) in &h.regions {
        regions = regions.child(
            Node::new("Region")
                .leaf("AdmDivCode", code)
                .leaf("AdmDivName", name),
        );
    }
    let mut list = Node::new("DetailList");
    for p in payees {
        list = list.child(
            Node::new("Detail")
                .leaf("LineId", p.line_id)
                .leaf("AdmDivCode", p.region)
                .leaf("PayeeAcctName", p.name)
                .leaf("PayeeAcctNo", p.account)
                .leaf("PayeeAcctBankName", p.bank)
                .leaf("PayAmt", amt(p.amount))
                .leaf("Period", p.period),
        );
    }
    Node::new("DisbursementPlan")
        .leaf("PlanNo", h.plan_no)
        .leaf("Province", h.province)
        .leaf("ProjectCode", h.project_code)
        .leaf("ProjectName", h.project_name)
        .leaf("LeadUnit", h.lead_unit)
        .leaf("Period", h.period)
        .leaf("FundTypeCode", ft)
        .leaf("FundTypeName", ftn)
        .leaf("CreateDate", ymd(h.create_date))
        .leaf("TotalCount", payees.len())
        .leaf("TotalAmt", amt(total))
        .leaf("Resubmission", h.resubmission)
        .leaf("ReturnReason", h.return_reason)
        .child(regions)
        .child(list)
}

/// A region plan of the budget system's receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionPlan {
    pub no: String,
    pub county: String,
    pub count: u64,
    pub amount: Fen,
    pub pay_acct_name: String,
}

/// Read a `PlanReceipt`.
pub fn read_plan_receipt(n: &Node) -> Result<Vec<RegionPlan>, String> {
    if n.name != "PlanReceipt" {
        return Err(format!("应为PlanReceipt，收到{}", n.name));
    }
    let list = n
        .find("RegionPlanList")
        .ok_or("PlanReceipt缺少RegionPlanList")?;
    list.each("RegionPlan")
        .map(|r| {
            Ok(RegionPlan {
                no: r.text_of("RegionPlanNo").to_owned(),
                county: r.text_of("AdmDivCode").to_owned(),
                count: r
                    .text_of("Count")
                    .parse()
                    .map_err(|_| "RegionPlan.Count无效".to_owned())?,
                amount: read_amt(r.text_of("Amt"))?,
                pay_acct_name: r.text_of("PayAcctName").to_owned(),
            })
        })
        .collect()
}

/// 国库集中支付申请 (the region department's request for its region plan).
pub fn payment_request(
    region_plan: &str,
    agency_code: &str,
    agency_name: &str,
    remark: &str,
) -> Node {
    Node::new("PaymentRequest")
        .leaf("RegionPlanNo", region_plan)
        .leaf("AgencyCode", agency_code)
        .leaf("AgencyName", agency_name)
        .leaf("Remark", remark)
}

/// Finance's approval.
pub fn approval(approver: &str) -> Node {
    Node::new("Approval")
        .leaf("Approver", approver)
        .leaf("Opinion", "同意")
}

/// A `VoucherNotice`: the state of a 5201 voucher at the budget system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoucherNotice {
    pub voucher_no: String,
    pub adm_div: String,
    pub st_year: String,
    pub vou_date: String,
    pub plan_no: String,
    pub region_plan: String,
    pub ori: String,
    pub fund_type: String,
    pub agency_code: String,
    pub agency_name: String,
    pub pay_acct_no: String,
    pub pay_acct_name: String,
    pub pay_acct_bank: String,
    pub pay_bank: String,
    pub pay_amt: Fen,
    pub status: String,
}

pub fn read_notice(n: &Node) -> Result<VoucherNotice, String> {
    if n.name != "VoucherNotice" {
        return Err(format!("应为VoucherNotice，收到{}", n.name));
    }
    let t = |k: &str| n.text_of(k).to_owned();
    if n.text_of("VtCode") != "5201" || n.text_of("VoucherNo").is_empty() {
        return Err("VoucherNotice不是5201凭证".into());
    }
    Ok(VoucherNotice {
        voucher_no: t("VoucherNo"),
        adm_div: t("AdmDivCode"),
        st_year: t("StYear"),
        vou_date: t("VouDate"),
        plan_no: t("PlanNo"),
        region_plan: t("RegionPlanNo"),
        ori: t("OriVoucherNo"),
        fund_type: t("FundTypeCode"),
        agency_code: t("AgencyCode"),
        agency_name: t("AgencyName"),
        pay_acct_no: t("PayAcctNo"),
        pay_acct_name: t("PayAcctName"),
        pay_acct_bank: t("PayAcctBankName"),
        pay_bank: t("PayBankName"),
        pay_amt: read_amt(n.text_of("PayAmt"))?,
        status: t("Status"),
    })
}

/// The 5201 direct-payment voucher (财政直接支付凭证) with its payee detail list.
/// `voucher_no` is empty for a re-payment voucher (the budget system numbers it) and
/// `ori` then names the original voucher.
pub fn voucher_5201(
    n: &VoucherNotice,
    voucher_no: &str,
    ori: &str,
    summary: &str,
    exp_func: &str,
    date: NaiveDate,
    payees: &[Payee<'_>],
) -> Node {
    let total: Fen = payees.iter().map(|p| p.amount).sum();
    let (_, ftn) = fund_type(n.fund_type == "2");
    let mut list = Node::new("DetailList");
    for p in payees {
        list = list.child(
            Node::new("Detail")
                .leaf("Id", format!("{}-{}", p.line_id, p.attempt))
                .leaf("LineId", p.line_id)
                .leaf("Attempt", p.attempt)
                .leaf("PayeeAcctName", p.name)
                .leaf("PayeeAcctNo", p.account)
                .leaf("PayeeAcctBankName", p.bank)
                .leaf("PayAmt", amt(p.amount))
                .leaf("Remark", format!("属期{}", p.period)),
        );
    }
    let voucher = Node::new("Voucher")
        .leaf("Id", voucher_no)
        .leaf("AdmDivCode", &n.adm_div)
        .leaf("StYear", &n.st_year)
        .leaf("VtCode", "5201")
        .leaf("VouDate", ymd(date))
        .leaf("VoucherNo", voucher_no)
        .leaf("OriVoucherNo", ori)
        .leaf("PlanNo", &n.plan_no)
        .leaf("RegionPlanNo", &n.region_plan)
        .leaf("FundTypeCode", &n.fund_type)
        .leaf("FundTypeName", ftn)
        .leaf("PayTypeCode", "11")
        .leaf("PayTypeName", "财政直接支付")
        .leaf("ExpFuncCode", exp_func)
        .leaf("AgencyCode", &n.agency_code)
        .leaf("AgencyName", &n.agency_name)
        .leaf("PayAcctNo", &n.pay_acct_no)
        .leaf("PayAcctName", &n.pay_acct_name)
        .leaf("PayAcctBankName", &n.pay_acct_bank)
        .leaf("PayBankName", &n.pay_bank)
        .leaf("PayAmt", amt(total))
        .leaf("PaySummaryName", summary)
        .leaf("DetailCount", payees.len())
        .child(list);
    Node::new("MOF").leaf("VoucherCount", 1).child(
        Node::new("VoucherBody")
            .attr("AdmDivCode", &n.adm_div)
            .attr("StYear", &n.st_year)
            .attr("VtCode", "5201")
            .attr("VoucherNo", voucher_no)
            .child(voucher),
    )
}

/// One detail of a bank return voucher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnDetail {
    pub voucher_no: String,
    pub result: BankResult,
    pub cross_bank: bool,
    pub fee: Fen,
    pub paid: Fen,
}

/// Read the return vouchers (回单) relayed by the budget system. Details without the bank's
/// return fields (not processed yet) are skipped.
pub fn read_returns(n: &Node, order_no: &str) -> Result<Vec<ReturnDetail>, String> {
    if n.name != "MOF" {
        return Err(format!("应为MOF回单，收到{}", n.name));
    }
    let mut out = Vec::new();
    for vb in n.each("VoucherBody") {
        let v = vb.find("Voucher").ok_or("VoucherBody缺少Voucher")?;
        let vno = v.text_of("VoucherNo").to_owned();
        let Some(list) = v.find("DetailList") else {
            continue;
        };
        for d in list.each("Detail") {
            let flag = d.text_of("XPayFlag");
            if flag.is_empty() {
                continue;
            }
            let line_id: i64 = d
                .text_of("LineId")
                .parse()
                .map_err(|_| format!("回单LineId「{}」无效", d.text_of("LineId")))?;
            let attempt: u32 = d
                .text_of("Attempt")
                .parse()
                .map_err(|_| format!("回单Attempt「{}」无效", d.text_of("Attempt")))?;
            let amount = read_amt(d.text_of("PayAmt"))?;
            let paid = read_amt(d.text_of("XPayAmt"))?;
            let (outcome, reported) = match flag {
                "1" => (BankOutcome::Credited, paid),
                "2" => (
                    BankOutcome::Failed {
                        reason: FailureReason::parse(d.text_of("XFailCode"))
                            .unwrap_or(FailureReason::Other),
                    },
                    amount,
                ),
                other => return Err(format!("回单XPayFlag「{other}」无效")),
            };
            let fee = match d.text_of("XFee") {
                "" => Fen(0),
                s => read_amt(s)?,
            };
            out.push(ReturnDetail {
                voucher_no: vno.clone(),
                result: BankResult {
                    order_no: order_no.to_owned(),
                    line_id,
                    attempt,
                    amount: reported,
                    outcome,
                    date: iso(d.text_of("XPayDate"))?,
                },
                cross_bank: d.text_of("XCrossBank") == "1",
                fee,
                paid,
            });
        }
    }
    Ok(out)
}

/// A `RefundRequest`: `request_no` is the platform's key for the refund (the same for every
/// retry of it), which the agent bank answers a repeat of with its first receipt.
pub fn refund_request(request_no: &str, amount: Fen, reason: &str) -> Node {
    Node::new("RefundRequest")
        .leaf("RequestNo", request_no)
        .leaf("Amount", amt(amount))
        .leaf("Reason", reason)
}

/// Read a `RefundReceipt`: (refund number, amount).
pub fn read_refund(n: &Node) -> Result<(String, Fen), String> {
    if n.name != "RefundReceipt" {
        return Err(format!("应为RefundReceipt，收到{}", n.name));
    }
    Ok((
        n.text_of("RefundNo").to_owned(),
        read_amt(n.text_of("Amount"))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_dates() {
        assert_eq!(read_amt("420.05"), Ok(Fen(42005)));
        assert!(read_amt("420.5").is_err());
        assert!(read_amt("-1.00").is_err());
        assert_eq!(iso("20230521").unwrap(), "2023-05-21");
        assert!(iso("20231341").is_err());
    }
}
