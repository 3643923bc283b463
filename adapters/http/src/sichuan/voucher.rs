//! The authorised-payment voucher (layout modelled on the treasury's 8202 财政授权支付凭证) and
//! the treasury's receipt, platform side: the platform writes vouchers and reads receipts.
//!
//! A voucher (`<MOF><VouchCount>1</VouchCount><Voucher>...</Voucher></MOF>`, GB18030) either
//! funds the department's zero-balance account for one batch (a blue voucher, `PayAmt` > 0,
//! with one `Detail` per village) or returns money from it to the treasury (a red-letter
//! voucher, `PayAmt` < 0, naming the original in `OriVoucherNo`). The element names follow the
//! treasury's electronic voucher conventions (`AdmDivCode`, `StYear`, `VtCode`, `VouDate`,
//! `VoucherNo`, `AgencyCode`, `PayeeAcctNo`, `PayAmt`, ...).

use super::xml::{self, Out};
use super::{from_gb18030, parse_fen, to_gb18030};
use chrono::NaiveDate;
use ykt_kernel::Fen;

/// The voucher type code.
pub const VT_CODE: &str = "8202";
/// 支付方式: 授权支付.
pub const PAY_TYPE_AUTHORISED: &str = "12";

/// One detail row: a village's subtotal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoucherDetail {
    /// Twelve-digit village code.
    pub code: String,
    pub name: String,
    pub count: u64,
    pub amount: Fen,
}

/// A voucher as the platform sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voucher {
    pub voucher_no: String,
    /// The voucher a red-letter voucher returns money of.
    pub ori_voucher_no: Option<String>,
    /// The county (six digits).
    pub adm_div_code: String,
    pub st_year: i32,
    pub vou_date: NaiveDate,
    /// Budget unit code and name (the department).
    pub agency_code: String,
    pub agency_name: String,
    /// The department's zero-balance account.
    pub payee_acct_no: String,
    pub payee_acct_name: String,
    pub payee_acct_bank: String,
    /// 功能科目名称: the subsidy project.
    pub exp_func_name: String,
    /// 用途/摘要: order number, period, and the return reason for a red voucher.
    pub purpose: String,
    /// Number of payments (lines) the voucher covers.
    pub bill_count: u64,
    /// Negative for a red-letter voucher.
    pub pay_amt: Fen,
    pub details: Vec<VoucherDetail>,
}

impl Voucher {
    /// Whether this is a red-letter (return) voucher.
    pub fn is_red(&self) -> bool {
        self.pay_amt.is_negative()
    }

    /// The XML document, GB18030-encoded.
    pub fn to_xml(&self) -> Vec<u8> {
        let mut o = Out::new();
        o.open("MOF");
        o.leaf("VouchCount", "1");
        o.open("Voucher");
        o.leaf("VtCode", VT_CODE);
        o.leaf("AdmDivCode", &self.adm_div_code);
        o.leaf("StYear", &self.st_year.to_string());
        o.leaf("VouDate", &self.vou_date.format("%Y%m%d").to_string());
        o.leaf("VoucherNo", &self.voucher_no);
        o.leaf("OriVoucherNo", self.ori_voucher_no.as_deref().unwrap_or(""));
        o.leaf("PayTypeCode", PAY_TYPE_AUTHORISED);
        o.leaf("PayTypeName", "授权支付");
        o.leaf("AgencyCode", &self.agency_code);
        o.leaf("AgencyName", &self.agency_name);
        o.leaf("PayeeAcctNo", &self.payee_acct_no);
        o.leaf("PayeeAcctName", &self.payee_acct_name);
        o.leaf("PayeeAcctBankName", &self.payee_acct_bank);
        o.leaf("ExpFuncName", &self.exp_func_name);
        o.leaf("PayUse", &self.purpose);
        o.leaf("BillCount", &self.bill_count.to_string());
        o.leaf("PayAmt", &self.pay_amt.to_string());
        o.leaf("DetailNum", &self.details.len().to_string());
        o.open("Details");
        for d in &self.details {
            o.open("Detail");
            o.leaf("VillageCode", &d.code);
            o.leaf("VillageName", &d.name);
            o.leaf("Count", &d.count.to_string());
            o.leaf("PayAmt", &d.amount.to_string());
            o.close("Detail");
        }
        o.close("Details");
        o.close("Voucher");
        o.close("MOF");
        to_gb18030(&o.finish())
    }
}

/// What the treasury says about a voucher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStatus {
    /// Received and checked; funds not moved yet.
    Accepted,
    /// Funds moved (for a red voucher: returned to the treasury).
    Paid,
    /// Refused, with the reason in `desc`.
    Rejected,
}

/// The treasury's receipt (回执).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub voucher_no: String,
    pub status: ReceiptStatus,
    pub desc: String,
    pub pay_amt: Option<Fen>,
    pub pay_date: Option<NaiveDate>,
    /// The treasury's reference for a return (退库凭证号).
    pub return_no: Option<String>,
}

/// Why a receipt could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("国库回执无法解析：{0} (unreadable treasury receipt: {0})")]
pub struct ReceiptError(pub String);

/// Read a receipt (`<MOF><Receipt>...</Receipt></MOF>`, GB18030).
pub fn parse_receipt(bytes: &[u8]) -> Result<Receipt, ReceiptError> {
    let text = from_gb18030(bytes).ok_or_else(|| ReceiptError("不是有效的GB18030文本".into()))?;
    let root = xml::parse(&text).map_err(ReceiptError)?;
    let r = root
        .child("Receipt")
        .ok_or_else(|| ReceiptError("缺少Receipt元素".into()))?;
    let status = match r.text_of("Status") {
        "accepted" => ReceiptStatus::Accepted,
        "paid" => ReceiptStatus::Paid,
        "rejected" => ReceiptStatus::Rejected,
        other => return Err(ReceiptError(format!("未知状态「{other}」"))),
    };
    let voucher_no = r.text_of("VoucherNo").to_owned();
    if voucher_no.is_empty() {
        return Err(ReceiptError("缺少VoucherNo".into()));
    }
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let pay_amt = match r.text_of("PayAmt") {
        "" => None,
        s => Some(parse_fen(s).ok_or_else(|| ReceiptError(format!("金额「{s}」无效")))?),
    };
    let pay_date = match r.text_of("PayDate") {
        "" => None,
        s => Some(
            NaiveDate::parse_from_str(s, "%Y%m%d")
                .map_err(|_| ReceiptError(format!("日期「{s}」无效")))?,
        ),
    };
    Ok(Receipt {
        voucher_no,
        status,
        desc: r.text_of("StatusDesc").to_owned(),
        pay_amt,
        pay_date,
        return_no: opt(r.text_of("ReturnNo")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Voucher {
        Voucher {
            voucher_no: "8202-511102-20230515-0001".into(),
            ori_voucher_no: None,
            adm_div_code: "511102".into(),
            st_year: 2023,
            vou_date: NaiveDate::from_ymd_opt(2023, 5, 15).unwrap(),
            agency_code: "511102-SC09".into(),
            agency_name: "乐山市市中区民政局".into(),
            payee_acct_no: "22150101040012345".into(),
            payee_acct_name: "乐山市市中区民政局零余额账户".into(),
            payee_acct_bank: "中国农业银行乐山分行".into(),
            exp_func_name: "农村最低生活保障金".into(),
            purpose: "SC202305511102-000001-01 2023年5月 <发放>".into(),
            bill_count: 3,
            pay_amt: Fen(126_000),
            details: vec![
                VoucherDetail {
                    code: "511102001201".into(),
                    name: "幸福村".into(),
                    count: 2,
                    amount: Fen(84_000),
                },
                VoucherDetail {
                    code: "511102001202".into(),
                    name: "光明村".into(),
                    count: 1,
                    amount: Fen(42_000),
                },
            ],
        }
    }

    #[test]
    fn voucher_is_gb18030_xml_with_escaped_text() {
        let bytes = sample().to_xml();
        assert!(bytes.starts_with(b"<?xml version=\"1.0\" encoding=\"GB18030\"?>"));
        assert!(std::str::from_utf8(&bytes).is_err(), "not UTF-8: GB18030");
        let text = from_gb18030(&bytes).unwrap();
        assert!(text.contains("<VtCode>8202</VtCode>"));
        assert!(text.contains("<PayAmt>1260.00</PayAmt>"));
        assert!(text.contains("&lt;发放&gt;"));
        assert_eq!(text.matches("<Detail>").count(), 2);
    }

    #[test]
    fn receipts_parse_and_bad_ones_are_refused() {
        let ok = to_gb18030(
            "<?xml version=\"1.0\" encoding=\"GB18030\"?><MOF><Receipt><VoucherNo>V1</VoucherNo><Status>paid</Status>\
             <StatusDesc>已拨付至单位零余额账户</StatusDesc><PayAmt>1260.00</PayAmt><PayDate>20230515</PayDate></Receipt></MOF>",
        );
        let r = parse_receipt(&ok).unwrap();
        assert_eq!(r.status, ReceiptStatus::Paid);
        assert_eq!(r.pay_amt, Some(Fen(126_000)));
        assert_eq!(r.pay_date, NaiveDate::from_ymd_opt(2023, 5, 15));
        assert!(
            parse_receipt(
                b"<MOF><Receipt><VoucherNo>V1</VoucherNo><Status>maybe</Status></Receipt></MOF>"
            )
            .is_err()
        );
        assert!(parse_receipt(b"<MOF><Receipt><VoucherNo>V1</VoucherNo>").is_err());
        assert!(parse_receipt(&ok[..ok.len() - 20]).is_err());
    }
}
