//! The `BankAgent` port of the pull model (濮阳规程 第二十二、二十三条).
//!
//! Nothing is pushed to the bank: by the time `deliver` runs, the cycle has put the lines in
//! flight, which is what makes them available on the bank interface. `deliver` records the
//! release, with the detail the bank will pull materialised in the same transaction (the bank
//! file's bytes in sealed chunks, see `Store::henan_record_release`), and notifies the bank ("及时通知代发金融机构再次获取发放明细信息") at its notification
//! address, if one is configured: `POST {url}` with
//! `{"order_no": "...", "lines": 13, "amount": "5460.00"}`. The notice carries no personal
//! data and grants nothing (the bank still pulls with its own credential), so it needs no
//! secret; a bank without an address polls `GET /henan/bank/v1/orders` instead, and a failed
//! notice is recorded but does not undo the release.
//!
//! Results reach the platform when the bank posts them (see [`super::bank_api`]), which
//! applies them at once; `collect_results` returns only results kept but not yet applied
//! (a post interrupted between keeping and applying), so collecting is always safe.

use async_trait::async_trait;
use chrono::NaiveDate;
use std::collections::HashMap;
use std::sync::Arc;
use ykt_kernel::batch::Totals;
use ykt_kernel::ports::{
    BankAgent, BankOutcome, BankResult, FailureReason, PaymentInstruction, PortError,
};
use ykt_store::Store;
use ykt_store::henan::{DETAIL_CHUNK_BYTES, DetailSpec};

const SYSTEM: &str = "代发银行接口";

/// The pull model's bank port.
#[derive(Clone)]
pub struct PullAgent {
    store: Store,
    /// Notification address per bank code.
    notify: HashMap<String, String>,
    http: reqwest::Client,
    today: Arc<dyn Fn() -> NaiveDate + Send + Sync>,
}

impl PullAgent {
    pub fn new(
        store: Store,
        notify: HashMap<String, String>,
        today: Arc<dyn Fn() -> NaiveDate + Send + Sync>,
    ) -> Result<PullAgent, PortError> {
        Ok(PullAgent {
            store,
            notify,
            http: crate::client::client()?,
            today,
        })
    }

    async fn notify(&self, url: &str, ins: &PaymentInstruction) -> String {
        let body = serde_json::json!({
            "order_no": ins.order_no,
            "lines": ins.count,
            "amount": ins.total.to_string(),
        });
        match self.http.post(url).json(&body).send().await {
            Ok(r) if r.status().is_success() => "已通知银行获取明细".into(),
            Ok(r) => {
                tracing::warn!(status = %r.status(), order = %ins.order_no, "the bank refused the notice");
                format!(
                    "通知银行失败（HTTP {}），由银行轮询获取",
                    r.status().as_u16()
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, order = %ins.order_no, "the bank could not be notified");
                "通知银行失败（无法连接），由银行轮询获取".into()
            }
        }
    }
}

fn store_err(e: ykt_store::StoreError) -> PortError {
    PortError::new(SYSTEM, e.to_string(), true)
}

#[async_trait]
impl BankAgent for PullAgent {
    async fn deliver(&self, ins: &PaymentInstruction) -> Result<String, PortError> {
        let order = self
            .store
            .henan_order(&ins.order_no)
            .await
            .map_err(store_err)?
            .ok_or_else(|| {
                PortError::new(
                    SYSTEM,
                    format!(
                        "发放单号{}没有发放申请（未选择代发银行） (no application for this order)",
                        ins.order_no
                    ),
                    false,
                )
            })?;
        let notified = match self.notify.get(&order.bank) {
            Some(url) => self.notify(url, ins).await,
            None => "未配置通知地址，由银行轮询获取".to_owned(),
        };
        // The detail the bank pulls is written with the release (the bank file's bytes,
        // sealed in chunks), so a pull streams it instead of reading every line again.
        let detail = DetailSpec {
            batch_id: order.batch_id,
            encode: &super::bank_api::encode_line,
            chunk_bytes: DETAIL_CHUNK_BYTES,
        };
        let round = self
            .store
            .henan_record_release(
                &ins.order_no,
                Totals {
                    count: ins.count,
                    amount: ins.total,
                },
                &notified,
                &(self.today)().to_string(),
                Some(&detail),
            )
            .await
            .map_err(store_err)?;
        Ok(format!("{}#{round}", ins.order_no))
    }

    async fn collect_results(&self, order_no: &str) -> Result<Vec<BankResult>, PortError> {
        let rows = self
            .store
            .henan_unapplied_results(order_no)
            .await
            .map_err(store_err)?;
        rows.into_iter()
            .map(|r| {
                let outcome = match (r.outcome.as_str(), r.reason.as_deref()) {
                    ("credited", _) => BankOutcome::Credited,
                    (_, Some(reason)) => BankOutcome::Failed {
                        reason: FailureReason::parse(reason).unwrap_or(FailureReason::Other),
                    },
                    _ => BankOutcome::Failed {
                        reason: FailureReason::Other,
                    },
                };
                Ok(BankResult {
                    order_no: r.order_no,
                    line_id: r.line_id,
                    attempt: u32::try_from(r.attempt).unwrap_or(u32::MAX),
                    amount: r.amount,
                    outcome,
                    date: r.bank_date,
                })
            })
            .collect()
    }
}
