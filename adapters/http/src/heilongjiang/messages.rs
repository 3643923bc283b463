//! The budget-system messages (layouts in `provinces/heilongjiang/docs/messages.md`): builders
//! for what the platform sends, readers for what it receives.

use super::xml::{self, Node, Out};
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

/// 发放计划 (platform → budget system), as a tree (see [`plan_bytes`], which writes it).
pub fn plan(h: &PlanHeader<'_>, payees: &[Payee<'_>]) -> Node {
    xml::parse(&plan_bytes(h, payees)).unwrap_or_default()
}

/// 发放计划 (platform → budget system), written detail by detail as GB18030 bytes.
pub fn plan_bytes(h: &PlanHeader<'_>, payees: &[Payee<'_>]) -> Vec<u8> {
    let total: Fen = payees.iter().map(|p| p.amount).sum();
    let mut w = PlanWriter::new(h, payees.len() as u64, total);
    for p in payees {
        w.detail(p);
    }
    w.finish()
}

/// A 发放计划 written as its details are read ([`plan_bytes`] in parts): the control totals
/// first, then each detail as it comes, so a province-scale batch is never held as payees and
/// as the document at once. [`PlanWriter::finish`] gives the bytes of [`plan_bytes`] for the
/// same details; [`PlanWriter::written`] says what was written, for the caller to check
/// against the totals it announced.
pub struct PlanWriter {
    o: Out,
    announced: u64,
    count: u64,
    total: Fen,
}

impl PlanWriter {
    pub fn new(h: &PlanHeader<'_>, count: u64, total: Fen) -> PlanWriter {
        PlanWriter::part(h, count, total, None, count)
    }

    /// Part `no` of `of` of a plan of `count` details (the control totals are the whole
    /// plan's), `in_part` of them in this part (messages.md, "Plans and vouchers in parts").
    /// `part` `None` is the whole plan.
    pub fn part(
        h: &PlanHeader<'_>,
        count: u64,
        total: Fen,
        part: Option<(u32, u32)>,
        in_part: u64,
    ) -> PlanWriter {
        let (ft, ftn) = fund_type(h.grain);
        let mut o = Out::new();
        o.open("DisbursementPlan", &[]);
        o.leaf("PlanNo", h.plan_no);
        o.leaf("Province", h.province);
        o.leaf("ProjectCode", h.project_code);
        o.leaf("ProjectName", h.project_name);
        o.leaf("LeadUnit", h.lead_unit);
        o.leaf("Period", h.period);
        o.leaf("FundTypeCode", ft);
        o.leaf("FundTypeName", ftn);
        o.leaf("CreateDate", &ymd(h.create_date));
        o.leaf("TotalCount", &count.to_string());
        o.leaf("TotalAmt", &amt(total));
        o.leaf("Resubmission", &h.resubmission.to_string());
        o.leaf("ReturnReason", h.return_reason);
        if let Some((no, of)) = part {
            o.leaf("PartNo", &no.to_string());
            o.leaf("PartCount", &of.to_string());
        }
        o.open("RegionList", &[]);
        for (code, name) in &h.regions {
            o.open("Region", &[]);
            o.leaf("AdmDivCode", code);
            o.leaf("AdmDivName", name);
            o.close("Region");
        }
        o.close("RegionList");
        if in_part == 0 {
            o.leaf("DetailList", "");
        } else {
            o.open("DetailList", &[]);
        }
        PlanWriter {
            o,
            announced: in_part,
            count: 0,
            total: Fen(0),
        }
    }

    pub fn detail(&mut self, p: &Payee<'_>) {
        let o = &mut self.o;
        o.open("Detail", &[]);
        o.leaf("LineId", &p.line_id.to_string());
        o.leaf("AdmDivCode", p.region);
        o.leaf("PayeeAcctName", p.name);
        o.leaf("PayeeAcctNo", p.account);
        o.leaf("PayeeAcctBankName", p.bank);
        o.leaf("PayAmt", &amt(p.amount));
        o.leaf("Period", p.period);
        o.close("Detail");
        self.count += 1;
        self.total += p.amount;
    }

    /// (details, their total) written so far.
    pub fn written(&self) -> (u64, Fen) {
        (self.count, self.total)
    }

    pub fn finish(mut self) -> Vec<u8> {
        if self.announced != 0 {
            self.o.close("DetailList");
        }
        self.o.close("DisbursementPlan");
        self.o.finish()
    }
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

/// The 5201 direct-payment voucher (财政直接支付凭证) with its payee detail list, as a tree (see
/// [`voucher_5201_bytes`], which writes it).
pub fn voucher_5201(
    n: &VoucherNotice,
    voucher_no: &str,
    ori: &str,
    summary: &str,
    exp_func: &str,
    date: NaiveDate,
    payees: &[Payee<'_>],
) -> Node {
    xml::parse(&voucher_5201_bytes(
        n, voucher_no, ori, summary, exp_func, date, payees,
    ))
    .unwrap_or_default()
}

/// The 5201 direct-payment voucher (财政直接支付凭证) with its payee detail list, written
/// detail by detail as GB18030 bytes. `voucher_no` is empty for a re-payment voucher (the
/// budget system numbers it) and `ori` then names the original voucher.
pub fn voucher_5201_bytes(
    n: &VoucherNotice,
    voucher_no: &str,
    ori: &str,
    summary: &str,
    exp_func: &str,
    date: NaiveDate,
    payees: &[Payee<'_>],
) -> Vec<u8> {
    let total: Fen = payees.iter().map(|p| p.amount).sum();
    voucher_5201_part_bytes(
        n,
        (voucher_no, ori, summary, exp_func),
        date,
        (payees.len() as u64, total),
        None,
        payees,
    )
}

/// Part `no` of `of` of a 5201 voucher (messages.md, "Plans and vouchers in parts"):
/// `PayAmt` and `DetailCount` are the whole voucher's `totals`, the details this part's.
/// `part` `None` is the whole voucher ([`voucher_5201_bytes`]). `refs` are the voucher
/// number, the original voucher, the summary and the expenditure subject.
pub fn voucher_5201_part_bytes(
    n: &VoucherNotice,
    refs: (&str, &str, &str, &str),
    date: NaiveDate,
    totals: (u64, Fen),
    part: Option<(u32, u32)>,
    payees: &[Payee<'_>],
) -> Vec<u8> {
    let (voucher_no, ori, summary, exp_func) = refs;
    let (count, total) = totals;
    let (_, ftn) = fund_type(n.fund_type == "2");
    let mut o = Out::new();
    o.open("MOF", &[]);
    o.leaf("VoucherCount", "1");
    o.open(
        "VoucherBody",
        &[
            ("AdmDivCode", &n.adm_div),
            ("StYear", &n.st_year),
            ("VtCode", "5201"),
            ("VoucherNo", voucher_no),
        ],
    );
    o.open("Voucher", &[]);
    o.leaf("Id", voucher_no);
    o.leaf("AdmDivCode", &n.adm_div);
    o.leaf("StYear", &n.st_year);
    o.leaf("VtCode", "5201");
    o.leaf("VouDate", &ymd(date));
    o.leaf("VoucherNo", voucher_no);
    o.leaf("OriVoucherNo", ori);
    o.leaf("PlanNo", &n.plan_no);
    o.leaf("RegionPlanNo", &n.region_plan);
    o.leaf("FundTypeCode", &n.fund_type);
    o.leaf("FundTypeName", ftn);
    o.leaf("PayTypeCode", "11");
    o.leaf("PayTypeName", "财政直接支付");
    o.leaf("ExpFuncCode", exp_func);
    o.leaf("AgencyCode", &n.agency_code);
    o.leaf("AgencyName", &n.agency_name);
    o.leaf("PayAcctNo", &n.pay_acct_no);
    o.leaf("PayAcctName", &n.pay_acct_name);
    o.leaf("PayAcctBankName", &n.pay_acct_bank);
    o.leaf("PayBankName", &n.pay_bank);
    o.leaf("PayAmt", &amt(total));
    o.leaf("PaySummaryName", summary);
    o.leaf("DetailCount", &count.to_string());
    if let Some((no, of)) = part {
        o.leaf("PartNo", &no.to_string());
        o.leaf("PartCount", &of.to_string());
    }
    if payees.is_empty() {
        o.leaf("DetailList", "");
    } else {
        o.open("DetailList", &[]);
        for p in payees {
            o.open("Detail", &[]);
            o.leaf("Id", &format!("{}-{}", p.line_id, p.attempt));
            o.leaf("LineId", &p.line_id.to_string());
            o.leaf("Attempt", &p.attempt.to_string());
            o.leaf("PayeeAcctName", p.name);
            o.leaf("PayeeAcctNo", p.account);
            o.leaf("PayeeAcctBankName", p.bank);
            o.leaf("PayAmt", &amt(p.amount));
            o.leaf("Remark", &format!("属期{}", p.period));
            o.close("Detail");
        }
        o.close("DetailList");
    }
    o.close("Voucher");
    o.close("VoucherBody");
    o.close("MOF");
    o.finish()
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

/// Read the return vouchers (回单) relayed by the budget system, from a tree (see
/// [`read_returns_bytes`]).
pub fn read_returns(n: &Node, order_no: &str) -> Result<Vec<ReturnDetail>, String> {
    read_returns_bytes(&xml::encode(n), order_no)
}

/// The fields of a return detail the platform reads (first occurrence of each).
#[derive(Default)]
struct RawDetail {
    fields: [Option<String>; 9],
}

const DETAIL_FIELDS: [&str; 9] = [
    "XPayFlag",
    "LineId",
    "Attempt",
    "PayAmt",
    "XPayAmt",
    "XFailCode",
    "XFee",
    "XPayDate",
    "XCrossBank",
];

impl RawDetail {
    fn get(&self, i: usize) -> &str {
        self.fields[i].as_deref().unwrap_or("")
    }
    fn into_detail(self, vno: &str, order_no: &str) -> Result<Option<ReturnDetail>, String> {
        let flag = self.get(0);
        if flag.is_empty() {
            return Ok(None);
        }
        let line_id: i64 = self
            .get(1)
            .parse()
            .map_err(|_| format!("回单LineId「{}」无效", self.get(1)))?;
        let attempt: u32 = self
            .get(2)
            .parse()
            .map_err(|_| format!("回单Attempt「{}」无效", self.get(2)))?;
        let amount = read_amt(self.get(3))?;
        let paid = read_amt(self.get(4))?;
        let (outcome, reported) = match flag {
            "1" => (BankOutcome::Credited, paid),
            "2" => (
                BankOutcome::Failed {
                    reason: FailureReason::parse(self.get(5)).unwrap_or(FailureReason::Other),
                },
                amount,
            ),
            other => return Err(format!("回单XPayFlag「{other}」无效")),
        };
        let fee = match self.get(6) {
            "" => Fen(0),
            s => read_amt(s)?,
        };
        Ok(Some(ReturnDetail {
            voucher_no: vno.to_owned(),
            result: BankResult {
                order_no: order_no.to_owned(),
                line_id,
                attempt,
                amount: reported,
                outcome,
                date: iso(self.get(7))?,
            },
            cross_bank: self.get(8) == "1",
            fee,
            paid,
        }))
    }
}

/// Read the return vouchers (回单) relayed by the budget system as the bytes stream: a
/// province-scale return (every detail of the order, repeated) is never decoded whole or
/// built as a tree. Details without the bank's return fields (not processed yet) are
/// skipped. Per `VoucherBody`, the first `Voucher` and its first `DetailList` count (as a
/// tree reader finding the first child of each name would).
pub fn read_returns_bytes(bytes: &[u8], order_no: &str) -> Result<Vec<ReturnDetail>, String> {
    read_returns_page(bytes, order_no).map(|p| p.details)
}

/// A page of returns (`GET /plans/{PlanNo}/returns?after=&limit=`): its details, the cursor
/// after it (`NextCursor`, absent from a budget system that does not page) and whether more
/// details are ready (`More` = `1`).
#[derive(Debug, Default)]
pub struct ReturnsPage {
    pub details: Vec<ReturnDetail>,
    pub next: Option<String>,
    pub more: bool,
}

/// [`read_returns_bytes`], with the page's `NextCursor` and `More` (children of `MOF`).
pub fn read_returns_page(bytes: &[u8], order_no: &str) -> Result<ReturnsPage, String> {
    use quick_xml::events::Event;
    let (mut next, mut more): (Option<String>, bool) = (None, false);
    let enc = xml::encoding_of(bytes)?;
    xml::check_encoding(bytes, enc)?;
    let err = |m: &dyn std::fmt::Display| format!("报文格式错误 (malformed XML): {m}");
    let text_of = |b: &[u8]| -> Result<String, String> {
        enc.decode_without_bom_handling_and_without_replacement(b)
            .map(|s| s.into_owned())
            .ok_or_else(|| "报文含非法字节 (bytes invalid for the declared charset)".to_owned())
    };
    let mut r = quick_xml::Reader::from_reader(bytes);
    // Element names from the root down; the text of the innermost element.
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut text = String::new();
    let mut out = Vec::new();
    let mut roots = 0;
    // Per VoucherBody: whether its (first) Voucher was seen; per Voucher: its number, whether
    // its (first) DetailList was seen, its details so far.
    let (mut voucher_seen, mut in_voucher, mut list_seen, mut in_list) =
        (false, false, false, false);
    let mut vno: Option<String> = None;
    let mut details: Vec<RawDetail> = Vec::new();
    let mut cur: Option<RawDetail> = None;
    loop {
        let ev = r.read_event().map_err(|e| err(&e))?;
        let (name, empty) = match &ev {
            Event::Start(e) => (e.name().as_ref().to_vec(), false),
            Event::Empty(e) => (e.name().as_ref().to_vec(), true),
            Event::End(_) => (Vec::new(), false),
            Event::Text(t) => {
                text.push_str(&text_of(&**t)?);
                continue;
            }
            Event::CData(t) => {
                text.push_str(&text_of(&**t)?);
                continue;
            }
            Event::GeneralRef(g) => {
                let s = match g.resolve_char_ref().map_err(|e| err(&e))? {
                    Some(c) => c.to_string(),
                    None => {
                        let n = text_of(&**g)?;
                        quick_xml::escape::resolve_predefined_entity(&n)
                            .ok_or_else(|| err(&format!("未知实体&{n};")))?
                            .to_owned()
                    }
                };
                text.push_str(&s);
                continue;
            }
            Event::DocType(_) => return Err(err(&"不接受DOCTYPE")),
            Event::Eof => break,
            _ => continue,
        };
        if let Event::Start(e) | Event::Empty(e) = &ev {
            for a in e.attributes() {
                a.map_err(|x| err(&x))?;
            }
            if stack.is_empty() {
                roots += 1;
                if roots > 1 {
                    return Err(err(&"多个根元素"));
                }
                if name != b"MOF" {
                    return Err(format!(
                        "应为MOF回单，收到{}",
                        String::from_utf8_lossy(&name)
                    ));
                }
            }
            // Opening: what this element starts.
            match (stack.len(), name.as_slice()) {
                (1, b"VoucherBody") => {
                    voucher_seen = false;
                }
                (2, b"Voucher") if stack[1] == b"VoucherBody" && !voucher_seen => {
                    voucher_seen = true;
                    in_voucher = true;
                    list_seen = false;
                    vno = None;
                    details.clear();
                }
                (3, b"DetailList") if in_voucher && !list_seen => {
                    list_seen = true;
                    in_list = true;
                }
                (4, b"Detail") if in_list => cur = Some(RawDetail::default()),
                _ => {}
            }
            text.clear();
            stack.push(name);
            if !empty {
                continue;
            }
        }
        // Closing (an End, or an empty element just opened).
        let closed = stack.pop().ok_or_else(|| err(&"结束标记不匹配"))?;
        let value = text.trim();
        match (stack.len(), closed.as_slice()) {
            (3, b"VoucherNo") if in_voucher && vno.is_none() => vno = Some(value.to_owned()),
            (5, field) if cur.is_some() => {
                if let Some(i) = DETAIL_FIELDS.iter().position(|f| f.as_bytes() == field)
                    && let Some(d) = cur.as_mut()
                    && d.fields[i].is_none()
                {
                    d.fields[i] = Some(value.to_owned());
                }
            }
            (4, b"Detail") if in_list => {
                if let Some(d) = cur.take() {
                    details.push(d);
                }
            }
            (3, b"DetailList") if in_list => in_list = false,
            (2, b"Voucher") if in_voucher => {
                in_voucher = false;
                let v = vno.take().unwrap_or_default();
                for d in details.drain(..) {
                    if let Some(x) = d.into_detail(&v, order_no)? {
                        out.push(x);
                    }
                }
            }
            (1, b"VoucherBody") if !voucher_seen => return Err("VoucherBody缺少Voucher".into()),
            (1, b"NextCursor") if next.is_none() => next = Some(value.to_owned()),
            (1, b"More") => more = value == "1",
            _ => {}
        }
        text.clear();
    }
    if !stack.is_empty() {
        return Err(err(&"元素未闭合"));
    }
    if roots == 0 {
        return Err(err(&"空报文"));
    }
    Ok(ReturnsPage {
        details: out,
        next: next.filter(|c| !c.is_empty()),
        more,
    })
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

    fn detail(line: i64, flag: &str) -> Node {
        let d = Node::new("Detail")
            .leaf("Id", format!("{line}-1"))
            .leaf("LineId", line)
            .leaf("Attempt", 1)
            .leaf("PayeeAcctName", "欧阳𬌗 & 李")
            .leaf("PayAmt", "420.00");
        if flag.is_empty() {
            return d;
        }
        d.leaf("XPayDate", "20230521")
            .leaf("XPayAmt", if flag == "1" { "420.00" } else { "0.00" })
            .leaf("XPayFlag", flag)
            .leaf(
                "XFailCode",
                if flag == "1" { "" } else { "dormant_account" },
            )
            .leaf("XCrossBank", "1")
            .leaf("XFee", if flag == "1" { "1.00" } else { "0.00" })
    }

    #[test]
    fn returns_are_read_as_they_stream() {
        let doc = Node::new("MOF")
            .leaf("VoucherCount", 2)
            .child(
                Node::new("VoucherBody").attr("VoucherNo", "V1").child(
                    Node::new("Voucher")
                        .child(
                            Node::new("DetailList")
                                .child(detail(7, "1"))
                                .child(detail(8, ""))
                                .child(detail(9, "2"))
                                .child(detail(7, "1")),
                        )
                        // After its details, as a tree reader would still find it.
                        .leaf("VoucherNo", "V1")
                        .child(Node::new("DetailList").child(detail(99, "1"))),
                ),
            )
            .child(
                Node::new("VoucherBody").child(
                    Node::new("Voucher")
                        .leaf("VoucherNo", "V2")
                        .child(Node::new("DetailList").child(detail(10, "2"))),
                ),
            );
        let bytes = xml::encode(&doc);
        let got = read_returns_bytes(&bytes, "P1").unwrap();
        let seen: Vec<(String, i64, bool, Fen)> = got
            .iter()
            .map(|d| {
                (
                    d.voucher_no.clone(),
                    d.result.line_id,
                    matches!(d.result.outcome, BankOutcome::Credited),
                    d.fee,
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("V1".into(), 7, true, Fen(100)),
                ("V1".into(), 9, false, Fen(0)),
                ("V1".into(), 7, true, Fen(100)),
                ("V2".into(), 10, false, Fen(0)),
            ]
        );
        assert!(
            got.iter()
                .all(|d| d.cross_bank && d.result.date == "2023-05-21")
        );
        assert_eq!(
            got[1].result.amount,
            Fen(42000),
            "a failure reports the amount"
        );
        assert_eq!(read_returns(&doc, "P1").unwrap(), got);

        assert!(read_returns_bytes(&xml::encode(&Node::new("Other")), "P1").is_err());
        let no_voucher = Node::new("MOF").child(Node::new("VoucherBody"));
        assert!(read_returns_bytes(&xml::encode(&no_voucher), "P1").is_err());
        let bad_line = Node::new("MOF").child(
            Node::new("VoucherBody").child(
                Node::new("Voucher")
                    .child(Node::new("DetailList").child(detail(1, "1").leaf("LineId", "x"))),
            ),
        );
        // The first LineId counts (1): valid.
        assert!(read_returns_bytes(&xml::encode(&bad_line), "P1").is_ok());
        for bad in [
            &b"<MOF><VoucherBody></MOF>"[..],
            b"<?xml version=\"1.0\" encoding=\"GB18030\"?><MOF>\x81\x20</MOF>",
            b"<!DOCTYPE x><MOF/>",
            b"<MOF>&nope;</MOF>",
        ] {
            assert!(read_returns_bytes(bad, "P1").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn streamed_voucher_is_the_documented_tree() {
        let n = VoucherNotice {
            voucher_no: "V1".into(),
            adm_div: "230102".into(),
            st_year: "2023".into(),
            vou_date: String::new(),
            plan_no: "P1".into(),
            region_plan: "R1".into(),
            ori: String::new(),
            fund_type: "1".into(),
            agency_code: "A".into(),
            agency_name: "塔河县民政局".into(),
            pay_acct_no: "1".into(),
            pay_acct_name: "零余额 <账户>".into(),
            pay_acct_bank: "B".into(),
            pay_bank: "中国农业银行".into(),
            pay_amt: Fen(42000),
            status: "approved".into(),
        };
        let payee = Payee {
            line_id: 7,
            attempt: 1,
            region: "",
            name: "欧阳𬌗",
            account: "6228480000031000102",
            bank: "中国农业银行",
            amount: Fen(42000),
            period: "2023-05",
        };
        let date = NaiveDate::from_ymd_opt(2023, 5, 21).unwrap();
        let doc = voucher_5201(&n, "V1", "", "摘要", "", date, &[payee]);
        let v = doc.find("VoucherBody").unwrap().find("Voucher").unwrap();
        assert_eq!(v.text_of("PayAcctName"), "零余额 <账户>");
        assert_eq!(v.text_of("PayAmt"), "420.00");
        let d = v.find("DetailList").unwrap().find("Detail").unwrap();
        assert_eq!(d.text_of("Id"), "7-1");
        assert_eq!(d.text_of("PayeeAcctName"), "欧阳𬌗");
        assert_eq!(d.text_of("Remark"), "属期2023-05");
        let names: Vec<&str> = v.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.first(), Some(&"Id"));
        assert_eq!(names.last(), Some(&"DetailList"));
    }
}
