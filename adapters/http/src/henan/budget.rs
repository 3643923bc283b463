//! The budget system (预算管理一体化系统) as Henan's `TreasuryPayment` port (濮阳规程 第二十一条):
//! "在一卡通系统中生成补贴资金发放申请，并将“发放单号”“资金总额”“预算单位”等信息推送到预算管理一体化系统……
//! 根据“发放单号”及补贴项目信息，挂接预算指标或用款计划，生成资金支付申请，由财政国库支付机构按规定将补贴资金
//! 拨付至代发金融机构"; 第二十三条: unpaid money "原渠道退回".
//!
//! Messages are XML documents in GB18030 (`Content-Type: application/xml; charset=GB18030`):
//!
//! - `POST {base}/budget/v1/orders` with `<DisbursementOrder>` → `<Receipt>` (the payment
//!   request number the budget system generated, or why it refused);
//! - `GET {base}/budget/v1/payments/{request_no}` → `<PaymentStatus>` (`pending`, `paid` with
//!   the voucher, amount, date and the budget indicator linked, or `refused`);
//! - `POST {base}/budget/v1/refunds` with `<Refund>` → `<RefundReceipt>`.
//!
//! The layouts are documented in `provinces/henan/README.md`.

use crate::henan::parse_amount;
use async_trait::async_trait;
use quick_xml::events::Event;
use std::collections::HashMap;
use ykt_kernel::Fen;
use ykt_kernel::ports::{FundingRequest, FundingStatus, PortError, RefundRequest, TreasuryPayment};

const SYSTEM: &str = "预算管理一体化系统";

/// The order pushed to the budget system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderMessage {
    /// 发放单号
    pub order_no: String,
    /// County code (six digits).
    pub region: String,
    pub project_code: String,
    pub project_name: String,
    pub period: String,
    /// 预算单位
    pub budget_unit: String,
    pub count: u64,
    /// 资金总额
    pub total: Fen,
    /// The agent bank to pay (代发金融机构).
    pub payee_bank: String,
}

/// What the budget system answered to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReceipt {
    pub accepted: bool,
    /// The payment request (资金支付申请) number, when accepted.
    pub request_no: Option<String>,
    /// The budget indicator (预算指标) linked, when accepted.
    pub indicator: Option<String>,
    pub message: String,
    /// The XML text that was pushed (for the record; it holds no personal data).
    pub sent: String,
}

/// The state of a payment request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentState {
    pub order_no: String,
    /// `pending`, `paid` or `refused`.
    pub status: String,
    pub request_no: String,
    pub voucher_no: String,
    /// The budget indicator (预算指标) linked.
    pub indicator: String,
    pub amount: Option<Fen>,
    pub date: String,
    pub message: String,
}

/// Escape text for an element.
fn esc(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// A flat XML message: root name and leaf elements.
fn document(root: &str, fields: &[(&str, String)]) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"GB18030\"?>\n");
    s.push_str(&format!("<{root}>\n"));
    for (k, v) in fields {
        s.push_str(&format!("  <{k}>{}</{k}>\n", esc(v)));
    }
    s.push_str(&format!("</{root}>\n"));
    s
}

/// The `<DisbursementOrder>` message of an order.
pub fn order_xml(m: &OrderMessage) -> String {
    document(
        "DisbursementOrder",
        &[
            ("OrderNo", m.order_no.clone()),
            ("Region", m.region.clone()),
            ("ProjectCode", m.project_code.clone()),
            ("ProjectName", m.project_name.clone()),
            ("Period", m.period.clone()),
            ("BudgetUnit", m.budget_unit.clone()),
            ("Count", m.count.to_string()),
            ("TotalAmount", m.total.to_string()),
            ("PayeeBank", m.payee_bank.clone()),
        ],
    )
}

/// The `<Refund>` message: `RequestNo` is the payment request the money came by,
/// `RefundRequestNo` the platform's key for this refund (the same for every retry of it).
pub fn refund_xml(req: &RefundRequest) -> String {
    document(
        "Refund",
        &[
            ("RequestNo", req.reference.clone()),
            ("RefundRequestNo", req.request_no.clone()),
            ("Amount", req.amount.to_string()),
            ("Reason", req.reason.clone()),
        ],
    )
}

/// Parse a flat message: the root element's name and its leaf elements' text.
pub fn parse_flat(text: &str) -> Result<(String, HashMap<String, String>), String> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut root: Option<String> = None;
    let mut current: Option<String> = None;
    let mut fields = HashMap::new();
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                depth += 1;
                match depth {
                    1 => root = Some(name),
                    2 => {
                        fields.insert(name.clone(), String::new());
                        current = Some(name);
                    }
                    _ => return Err("报文层级过深 (nested elements are not expected)".into()),
                }
            }
            Ok(Event::Empty(e)) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if depth == 0 {
                    root = Some(name);
                } else {
                    fields.insert(name, String::new());
                }
            }
            Ok(Event::End(_)) => {
                depth = depth.saturating_sub(1);
                current = None;
            }
            Ok(Event::Text(t)) => {
                if let Some(c) = &current {
                    let s = t.decode().map_err(|e| format!("文本无法解码: {e}"))?;
                    if let Some(v) = fields.get_mut(c) {
                        v.push_str(&s);
                    }
                }
            }
            Ok(Event::GeneralRef(r)) => {
                if let Some(c) = &current {
                    let name = r.decode().map_err(|e| format!("实体无法解码: {e}"))?;
                    let resolved = quick_xml::escape::unescape(&format!("&{name};"))
                        .map_err(|e| format!("未知实体 &{name}; ({e})"))?
                        .into_owned();
                    if let Some(v) = fields.get_mut(c) {
                        v.push_str(&resolved);
                    }
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(format!("XML格式错误 (malformed XML): {e}")),
            Ok(_) => {}
        }
    }
    if depth != 0 {
        return Err("XML不完整 (truncated XML)".into());
    }
    let root = root.ok_or("XML为空 (empty document)")?;
    for v in fields.values_mut() {
        *v = v.trim().to_owned();
    }
    Ok((root, fields))
}

/// GB18030 bytes of a message.
pub fn encode(text: &str) -> Vec<u8> {
    encoding_rs::GB18030.encode(text).0.into_owned()
}

/// Decode a GB18030 message.
pub fn decode(bytes: &[u8]) -> Result<String, String> {
    let (text, _, bad) = encoding_rs::GB18030.decode(bytes);
    if bad {
        return Err("报文不是有效的GB18030编码 (not valid GB18030)".into());
    }
    Ok(text.into_owned())
}

/// The client of the budget system.
#[derive(Debug, Clone)]
pub struct BudgetClient {
    base: String,
    http: reqwest::Client,
}

fn port(message: impl Into<String>, retryable: bool) -> PortError {
    PortError::new(SYSTEM, message, retryable)
}

impl BudgetClient {
    /// A client of the budget system at `base` (e.g. `http://127.0.0.1:9101`).
    pub fn new(base: &str) -> Result<BudgetClient, PortError> {
        Ok(BudgetClient {
            base: base.trim_end_matches('/').to_owned(),
            http: crate::client::client()?,
        })
    }

    async fn exchange(
        &self,
        req: reqwest::RequestBuilder,
        expect_root: &str,
    ) -> Result<HashMap<String, String>, PortError> {
        let resp = req
            .send()
            .await
            .map_err(|e| crate::client::transport(SYSTEM, e))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| crate::client::transport(SYSTEM, e))?;
        let text = decode(&bytes).map_err(|m| port(m, false))?;
        if !status.is_success() {
            let detail = parse_flat(&text)
                .ok()
                .and_then(|(_, f)| f.get("Message").cloned())
                .unwrap_or_else(|| text.chars().take(200).collect());
            return Err(port(
                format!("HTTP {status}：{detail}"),
                status.is_server_error(),
            ));
        }
        let (root, fields) = parse_flat(&text).map_err(|m| port(m, false))?;
        if root != expect_root {
            return Err(port(
                format!("应答报文应为<{expect_root}>，实为<{root}> (unexpected answer)"),
                false,
            ));
        }
        Ok(fields)
    }

    /// Push an order (第二十一条). The budget system links an indicator and generates the
    /// payment request; pushing the same order again returns the same request.
    pub async fn push_order(&self, m: &OrderMessage) -> Result<PushReceipt, PortError> {
        let sent = order_xml(m);
        let f = self
            .exchange(
                self.http
                    .post(format!("{}/budget/v1/orders", self.base))
                    .header("Content-Type", "application/xml; charset=GB18030")
                    .body(encode(&sent)),
                "Receipt",
            )
            .await?;
        let get = |k: &str| f.get(k).cloned().unwrap_or_default();
        if get("OrderNo") != m.order_no {
            return Err(port(
                "应答的发放单号与推送的不一致 (receipt for another order)",
                false,
            ));
        }
        let accepted = get("Status") == "accepted";
        Ok(PushReceipt {
            accepted,
            request_no: accepted.then(|| get("RequestNo")).filter(|r| !r.is_empty()),
            indicator: accepted.then(|| get("Indicator")).filter(|r| !r.is_empty()),
            message: get("Message"),
            sent,
        })
    }

    /// The state of a payment request.
    pub async fn payment(&self, request_no: &str) -> Result<PaymentState, PortError> {
        let f = self
            .exchange(
                self.http
                    .get(format!("{}/budget/v1/payments/{request_no}", self.base)),
                "PaymentStatus",
            )
            .await?;
        let get = |k: &str| f.get(k).cloned().unwrap_or_default();
        let amount =
            match get("PaidAmount").as_str() {
                "" => None,
                a => Some(parse_amount(a).ok_or_else(|| {
                    port(format!("金额「{a}」格式错误 (malformed amount)"), false)
                })?),
            };
        Ok(PaymentState {
            order_no: get("OrderNo"),
            status: get("Status"),
            request_no: get("RequestNo"),
            voucher_no: get("VoucherNo"),
            indicator: get("Indicator"),
            amount,
            date: get("PaidDate"),
            message: get("Message"),
        })
    }

    /// Return unpaid money through the original channel. Returns the refund number.
    /// A retry of the same refund (same `request_no`) is answered with the first receipt.
    pub async fn refund_request(&self, req: &RefundRequest) -> Result<String, PortError> {
        let f = self
            .exchange(
                self.http
                    .post(format!("{}/budget/v1/refunds", self.base))
                    .header("Content-Type", "application/xml; charset=GB18030")
                    .body(encode(&refund_xml(req))),
                "RefundReceipt",
            )
            .await?;
        match f.get("Status").map(String::as_str) {
            Some("accepted") => Ok(f.get("RefundNo").cloned().unwrap_or_default()),
            _ => Err(port(
                format!(
                    "退款被拒绝：{} (refund refused)",
                    f.get("Message").cloned().unwrap_or_default()
                ),
                false,
            )),
        }
    }
}

/// The funding request as an order message (the budget unit and payee as the request says).
pub fn order_of(req: &FundingRequest) -> OrderMessage {
    OrderMessage {
        order_no: req.reference.clone(),
        region: req.region.prefix().to_owned(),
        project_code: req.project_code.clone(),
        project_name: req.project_name.clone(),
        period: req.period.to_string(),
        budget_unit: req.budget_unit.clone(),
        count: req.count,
        total: req.amount,
        payee_bank: req.payee_account.clone(),
    }
}

#[async_trait]
impl TreasuryPayment for BudgetClient {
    async fn request_funding(&self, req: &FundingRequest) -> Result<FundingStatus, PortError> {
        let r = self.push_order(&order_of(req)).await?;
        Ok(match r.request_no {
            Some(voucher_no) if r.accepted => FundingStatus::Pending { voucher_no },
            _ => FundingStatus::Refused { reason: r.message },
        })
    }

    async fn funding_status(&self, reference: &str) -> Result<FundingStatus, PortError> {
        let p = self.payment(reference).await?;
        Ok(match p.status.as_str() {
            "paid" => FundingStatus::Funded {
                voucher_no: p.voucher_no,
                amount: p
                    .amount
                    .ok_or_else(|| port("已支付的应答缺少金额 (paid without amount)", false))?,
                date: p.date,
            },
            "pending" => FundingStatus::Pending {
                voucher_no: p.request_no,
            },
            _ => FundingStatus::Refused { reason: p.message },
        })
    }

    async fn refund(&self, req: &RefundRequest) -> Result<String, PortError> {
        self.refund_request(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_message_round_trips_through_gb18030() {
        let m = OrderMessage {
            order_no: "HA202305410902-000001-01".into(),
            region: "410902".into(),
            project_code: "HN03".into(),
            project_name: "农村最低生活保障金".into(),
            period: "2023-05".into(),
            budget_unit: "华龙区民政局 & <测试>".into(),
            count: 13,
            total: Fen(546000),
            payee_bank: "ABC-HN".into(),
        };
        let text = decode(&encode(&order_xml(&m))).unwrap();
        let (root, f) = parse_flat(&text).unwrap();
        assert_eq!(root, "DisbursementOrder");
        assert_eq!(f["BudgetUnit"], "华龙区民政局 & <测试>");
        assert_eq!(f["TotalAmount"], "5460.00");
        assert!(parse_flat("<A><B>1</B>").is_err());
        assert!(parse_flat("<A><B><C>1</C></B></A>").is_err());
    }
}
