//! The four ports through which the platform talks to the outside systems (DOMAIN.md §5):
//! the HR&SS card registry, the treasury (budget system and treasury agent bank), the agent
//! bank that credits cards, and the public disclosure channel. Adapters implement them
//! against real systems; simulators implement them for demos and tests.
//!
//! Every trait is object-safe (`async_trait` boxes the futures) so the composition root can
//! hold `Arc<dyn CardRegistry>` and pick an implementation from configuration.

use crate::card::{CardRecord, DeathRecord};
use crate::catalog::Project;
use crate::ident::{BankAccount, RegionCode, ResidentId};
use crate::money::Fen;
use crate::period::Period;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A port call failed. `retryable` says whether the same call may succeed later (timeouts,
/// connection resets) or not (refused, malformed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{system}：{message} ({system}: {message})")]
pub struct PortError {
    pub system: String,
    pub message: String,
    pub retryable: bool,
}

impl PortError {
    pub fn new(
        system: impl Into<String>,
        message: impl Into<String>,
        retryable: bool,
    ) -> PortError {
        PortError {
            system: system.into(),
            message: message.into(),
            retryable,
        }
    }
}

/// 社保卡管理信息系统: look up cards for many resident IDs at once.
#[async_trait]
pub trait CardRegistry: Send + Sync {
    /// One answer per ID, in the same order.
    async fn lookup(&self, ids: &[ResidentId]) -> Result<Vec<Option<CardRecord>>, PortError>;
}

/// The reference registers of the cross-checks (DOMAIN.md §9).
#[async_trait]
pub trait ReferenceData: Send + Sync {
    /// Death-register entries, one answer per ID.
    async fn deaths(&self, ids: &[ResidentId]) -> Result<Vec<Option<DeathRecord>>, PortError>;
    /// Whether each (person, period) of `project` is already paid or in flight (重发).
    async fn paid_or_in_flight(
        &self,
        project: &Project,
        keys: &[(ResidentId, Period)],
    ) -> Result<Vec<bool>, PortError>;
    /// For each (person, period): the name of one of `peers` (mutually exclusive projects) the
    /// person is paid or in flight in for that period.
    async fn exclusive(
        &self,
        peers: &[&Project],
        keys: &[(ResidentId, Period)],
    ) -> Result<Vec<Option<String>>, PortError>;
    /// Whether a custody/receipt agreement is on record for each person.
    async fn agreements(&self, ids: &[ResidentId]) -> Result<Vec<bool>, PortError>;
}

/// A request to fund a batch (a disbursement plan, a treasury payment request or an
/// authorised-payment plan, depending on the province model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundingRequest {
    /// Our reference for the batch (e.g. its order number).
    pub reference: String,
    pub province: String,
    pub region: RegionCode,
    pub project_code: String,
    pub project_name: String,
    pub period: Period,
    /// Budget unit (预算单位) requesting the money.
    pub budget_unit: String,
    pub count: u64,
    pub amount: Fen,
    /// Where the money goes: the agent bank (treasury direct payment / bank pull) or the
    /// department's zero-balance account.
    pub payee_account: String,
}

/// What the treasury said about a funding request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum FundingStatus {
    /// Received, not yet paid.
    Pending { voucher_no: String },
    /// Funds moved.
    Funded {
        voucher_no: String,
        amount: Fen,
        date: String,
    },
    /// Refused, with the treasury's reason.
    Refused { reason: String },
}

/// 预算管理一体化系统 + 国库集中支付: request funding and learn when funds moved.
#[async_trait]
pub trait TreasuryPayment: Send + Sync {
    async fn request_funding(&self, req: &FundingRequest) -> Result<FundingStatus, PortError>;
    async fn funding_status(&self, reference: &str) -> Result<FundingStatus, PortError>;
    /// Return money that could not be paid through the original channel (原渠道退回).
    /// Idempotent by `req.request_no`: a repeated request with the same key is answered with
    /// the first refund's receipt (never a second refund); the same key with a different
    /// amount or reference is refused.
    async fn refund(&self, req: &RefundRequest) -> Result<String, PortError>;
}

/// A refund of one failed line through the original channel (原渠道退回; 濮阳规程 第二十三条
/// "通知代发金融机构将未发资金原渠道退回", 乐山办法 四(五)2 "将涉及资金从单位零余额账户退回财政金库").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    /// The batch's treasury reference (voucher or payment-request number).
    pub reference: String,
    /// The platform's key for this refund ([`RefundRequest::request_no_for`]): the same line
    /// and attempt always give the same key, so a refund retried after a crash or a lost
    /// answer is recognised by the peer instead of being refunded twice or refused.
    pub request_no: String,
    pub line_id: i64,
    pub amount: Fen,
    pub reason: String,
}

impl RefundRequest {
    /// The refund of `line_id`'s `attempt` in the batch numbered `order_no`: derived from
    /// them alone, so every retry of the same refund sends the same key.
    pub fn request_no_for(order_no: &str, line_id: i64, attempt: i64) -> String {
        format!("TK-{order_no}-{line_id}-{attempt}")
    }
}

/// One payment in an instruction to the bank: the line, its attempt number (a corrected line
/// is paid again as a new attempt of the same line, never a new line) and the card account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstructionLine {
    pub line_id: i64,
    pub attempt: u32,
    pub name: String,
    pub account: BankAccount,
    pub bank: String,
    pub amount: Fen,
}

/// A payment instruction: the detail of one batch (or of its corrected lines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentInstruction {
    /// The batch's order number (发放单号).
    pub order_no: String,
    pub project_name: String,
    pub project_short_name: String,
    pub count: u64,
    pub total: Fen,
    pub lines: Vec<InstructionLine>,
}

/// The bank's per-line outcome (发放结果反馈 / 回盘).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankResult {
    pub order_no: String,
    pub line_id: i64,
    pub attempt: u32,
    /// The amount the bank says it credited (or tried to).
    pub amount: Fen,
    pub outcome: BankOutcome,
    /// Bank's value date, `YYYY-MM-DD`.
    pub date: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum BankOutcome {
    Credited,
    Failed { reason: FailureReason },
}

/// Why a bank could not credit a card (濮阳规程 第二十三条: "账号错误或账户休眠等原因").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// 账号错误
    WrongAccount,
    /// 账户休眠
    DormantAccount,
    /// 户名不符
    NameMismatch,
    /// 账户冻结/销户
    AccountClosed,
    /// 其他
    Other,
}

impl FailureReason {
    pub fn label_zh(self) -> &'static str {
        match self {
            FailureReason::WrongAccount => "账号错误",
            FailureReason::DormantAccount => "账户休眠",
            FailureReason::NameMismatch => "户名不符",
            FailureReason::AccountClosed => "账户冻结或已销户",
            FailureReason::Other => "其他原因",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::WrongAccount => "wrong_account",
            FailureReason::DormantAccount => "dormant_account",
            FailureReason::NameMismatch => "name_mismatch",
            FailureReason::AccountClosed => "account_closed",
            FailureReason::Other => "other",
        }
    }
    pub fn parse(s: &str) -> Option<FailureReason> {
        [
            FailureReason::WrongAccount,
            FailureReason::DormantAccount,
            FailureReason::NameMismatch,
            FailureReason::AccountClosed,
            FailureReason::Other,
        ]
        .into_iter()
        .find(|r| r.as_str() == s || r.label_zh() == s)
    }
}

/// The lines of a payment instruction handed over a page at a time
/// ([`BankAgent::deliver_paged`]): a province-scale instruction is never held whole.
#[async_trait]
pub trait InstructionPages: Send {
    /// The next lines, in line order; `None` after the last.
    async fn next_page(&mut self) -> Result<Option<Vec<InstructionLine>>, PortError>;
}

/// 代发银行: deliver the payment instruction (push a file, or make the detail available to be
/// pulled by order number) and collect the results.
#[async_trait]
pub trait BankAgent: Send + Sync {
    /// Push, or announce for pulling. Idempotent by (order_no, attempt set).
    async fn deliver(&self, instruction: &PaymentInstruction) -> Result<String, PortError>;
    /// Whether this agent reads an instruction's lines a page at a time
    /// ([`BankAgent::deliver_paged`]); a caller then hands them over so, not whole.
    fn delivers_in_pages(&self) -> bool {
        false
    }
    /// [`BankAgent::deliver`] of `instruction` (its `count` and `total` those of the whole
    /// instruction, its `lines` empty), the lines read from `pages`. By default every page is
    /// read and the whole instruction delivered.
    async fn deliver_paged(
        &self,
        instruction: &PaymentInstruction,
        pages: &mut dyn InstructionPages,
    ) -> Result<String, PortError> {
        let mut whole = instruction.clone();
        while let Some(page) = pages.next_page().await? {
            whole.lines.extend(page);
        }
        self.deliver(&whole).await
    }
    /// Results available for an order so far (may repeat, may be partial, may be reordered).
    async fn collect_results(&self, order_no: &str) -> Result<Vec<BankResult>, PortError>;
    /// The results recorded since `cursor` (a position this agent answered before; `None`:
    /// from the start), at most a page of them, with the position after them and whether
    /// more is ready now. The caller keeps the cursor with the page's results (one
    /// transaction), so a retry after a crash asks for the same page again. An agent that
    /// does not page answers everything so far ([`BankAgent::collect_results`]), no cursor.
    async fn collect_page(
        &self,
        order_no: &str,
        cursor: Option<&str>,
    ) -> Result<ResultPage, PortError> {
        let _ = cursor;
        Ok(ResultPage {
            results: self.collect_results(order_no).await?,
            next: None,
            more: false,
        })
    }
}

/// A page of a bank's results ([`BankAgent::collect_page`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultPage {
    pub results: Vec<BankResult>,
    /// Where the next page starts (`None`: the agent does not page).
    pub next: Option<String>,
    /// More results are ready beyond this page.
    pub more: bool,
}

/// A notice to publish (公示/公开), already masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub id: String,
    pub kind: String,
    pub region: RegionCode,
    pub project_name: String,
    pub title: String,
    /// Masked, printable body (plain text or HTML).
    pub body: String,
    pub published_on: String,
    /// Last day it must stay up, if any.
    pub until: Option<String>,
}

/// One masked payment record for the public personal lookup (补贴查询).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupRecord {
    /// Keyed blind index of the resident ID and name together (never the ID itself): a lookup
    /// must name both, and a wrong pair finds nothing.
    pub person_key: String,
    pub name_masked: String,
    pub project_name: String,
    pub period: Period,
    pub amount: Fen,
    pub date: String,
    pub status: String,
}

/// 公示公开 / 补贴查询: publish notices and lookup records, withdraw them.
#[async_trait]
pub trait DisclosureChannel: Send + Sync {
    async fn publish(&self, notice: &Notice) -> Result<String, PortError>;
    async fn withdraw(&self, notice_id: &str) -> Result<(), PortError>;
    async fn publish_records(&self, records: &[LookupRecord]) -> Result<u64, PortError>;
}

#[cfg(test)]
mod tests {
    use super::RefundRequest;

    #[test]
    fn a_refund_key_names_the_line_and_attempt_and_nothing_else() {
        let k = RefundRequest::request_no_for("HLJ-2023-05-000001", 7, 2);
        assert_eq!(k, RefundRequest::request_no_for("HLJ-2023-05-000001", 7, 2));
        assert_ne!(k, RefundRequest::request_no_for("HLJ-2023-05-000001", 7, 1));
        assert_ne!(k, RefundRequest::request_no_for("HLJ-2023-05-000001", 8, 2));
        assert_ne!(k, RefundRequest::request_no_for("HLJ-2023-05-000002", 7, 2));
    }
}
