//! The treasury (budget system and treasury payment) over HTTP, platform side: post a voucher
//! (`POST {base}/vouchers`, body the GB18030 XML, `Content-Type: application/xml;
//! charset=GB18030`) and read its receipt; ask for a voucher's status (`GET
//! {base}/vouchers/{no}`). Both answer with a receipt document.

use super::voucher::{Receipt, ReceiptStatus, Voucher, parse_receipt};
use crate::client::{client, transport};
use ykt_kernel::ports::{FundingStatus, PortError};

const SYSTEM: &str = "国库集中支付（预算管理一体化系统）";

/// The treasury's HTTP interface.
#[derive(Debug, Clone)]
pub struct HttpTreasury {
    base: String,
    http: reqwest::Client,
}

impl HttpTreasury {
    /// A client of the treasury at `base` (`http://host:port`).
    pub fn new(base: &str) -> Result<HttpTreasury, PortError> {
        Ok(HttpTreasury {
            base: base.trim_end_matches('/').to_owned(),
            http: client()?,
        })
    }

    async fn receipt(&self, resp: reqwest::Response) -> Result<Receipt, PortError> {
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| transport(SYSTEM, e))?;
        if status.is_server_error() {
            return Err(PortError::new(
                SYSTEM,
                format!("服务暂不可用 (HTTP {status})"),
                true,
            ));
        }
        parse_receipt(&body)
            .map_err(|e| PortError::new(SYSTEM, format!("{e} (HTTP {status})"), false))
    }

    /// Send a voucher; the treasury's receipt says whether it was accepted, paid or rejected.
    /// Sending the same voucher again gets the same receipt.
    pub async fn submit(&self, v: &Voucher) -> Result<Receipt, PortError> {
        self.submit_xml(&v.voucher_no, v.to_xml()).await
    }

    /// Send a voucher's XML as it was sent before (a retry after a failure on this side).
    pub async fn submit_xml(&self, voucher_no: &str, xml: Vec<u8>) -> Result<Receipt, PortError> {
        let resp = self
            .http
            .post(format!("{}/vouchers", self.base))
            .header("content-type", "application/xml; charset=GB18030")
            .body(xml)
            .send()
            .await
            .map_err(|e| transport(SYSTEM, e))?;
        let r = self.receipt(resp).await?;
        if r.voucher_no != voucher_no && r.status != ReceiptStatus::Rejected {
            return Err(PortError::new(
                SYSTEM,
                format!(
                    "回执凭证号{}与所发凭证{voucher_no}不符 (receipt for another voucher)",
                    r.voucher_no
                ),
                false,
            ));
        }
        Ok(r)
    }

    /// The current receipt of a voucher.
    pub async fn status(&self, voucher_no: &str) -> Result<Receipt, PortError> {
        let resp = self
            .http
            .get(format!("{}/vouchers/{voucher_no}", self.base))
            .send()
            .await
            .map_err(|e| transport(SYSTEM, e))?;
        self.receipt(resp).await
    }
}

/// A receipt as the kernel's funding status.
pub fn funding_status(r: &Receipt) -> FundingStatus {
    match r.status {
        ReceiptStatus::Accepted => FundingStatus::Pending {
            voucher_no: r.voucher_no.clone(),
        },
        ReceiptStatus::Paid => FundingStatus::Funded {
            voucher_no: r.voucher_no.clone(),
            amount: r.pay_amt.unwrap_or_default(),
            date: r.pay_date.map(|d| d.to_string()).unwrap_or_default(),
        },
        ReceiptStatus::Rejected => FundingStatus::Refused {
            reason: r.desc.clone(),
        },
    }
}
