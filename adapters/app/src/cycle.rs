//! The payment cycle as a service: take a workflow step (authorised by the kernel's engine),
//! perform its effect through the ports (push a plan, request funding, dispatch, collect
//! results, publish), post the ledger moves the province declared for it, and record the
//! transition, all in one transaction after the port call succeeded. Port calls are
//! idempotent by reference (order number, line and attempt), so retrying a step after a
//! failure never pays twice.
//!
//! Line-level operations (correct a failed line, pay corrected lines again, refund a line
//! that cannot be paid) live here too.

use chrono::NaiveDate;
use std::fmt::Write as _;
use std::sync::Arc;
use ykt_kernel::batch::{BatchState, LineState, check_balance};
use ykt_kernel::catalog::FundingChannel;
use ykt_kernel::ledger::{Account, AccountKind, Entry, EntryKind};
use ykt_kernel::ports::{
    BankAgent, DisclosureChannel, FundingRequest, FundingStatus, InstructionLine, InstructionPages,
    LookupRecord, Notice, PaymentInstruction, PortError, RefundRequest, TreasuryPayment,
};
use ykt_kernel::province::Province;
use ykt_kernel::workflow::{BatchFacts, Effect, StepDef, Transition, WorkflowError, authorize};
use ykt_kernel::{Fen, Period, RegionCode, Role, User};
use ykt_store::cycle::{LineFix, ResultReport};
use ykt_store::payments::BatchRow;
use ykt_store::{Store, StoreError};

/// The outside systems a deployment talks to. A step whose effect needs a port that is not
/// configured is refused with a clear message.
#[derive(Clone, Default)]
pub struct Ports {
    pub treasury: Option<Arc<dyn TreasuryPayment>>,
    pub bank: Option<Arc<dyn BankAgent>>,
    pub disclosure: Option<Arc<dyn DisclosureChannel>>,
}

/// Why a step or line operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error(transparent)]
    Refused(#[from] WorkflowError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(m: impl Into<String>) -> CycleError {
    CycleError::Invalid(m.into())
}

/// What a step did.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub batch: BatchRow,
    pub step: &'static StepDef,
    /// `None` when the step could not complete yet (results still open): nothing moved.
    pub moved: Option<(BatchState, BatchState)>,
    pub results: Option<ResultReport>,
    /// How many lines the step handed to the bank.
    pub dispatched: usize,
    pub note: String,
}

/// The cycle over one store, province and set of ports.
pub struct Cycle<'a> {
    pub store: &'a Store,
    pub province: &'a dyn Province,
    pub ports: &'a Ports,
    pub today: NaiveDate,
}

/// The account of `kind` a batch's money sits in.
pub fn account(kind: AccountKind, b: &BatchRow, bank: Option<&str>) -> Account {
    let owner = match kind {
        AccountKind::AgentBank => bank.unwrap_or("代理银行").to_owned(),
        AccountKind::Beneficiaries => "社保卡账户".to_owned(),
        AccountKind::ZeroBalance => format!("{}@{}", b.project, b.region),
        AccountKind::Treasury | AccountKind::Adbc | AccountKind::GrainRiskFund => b.region.clone(),
    };
    Account::new(kind, owner)
}

pub fn channel_of(b: &BatchRow) -> FundingChannel {
    if b.funding == "grain_risk_fund" {
        FundingChannel::GrainRiskFund
    } else {
        FundingChannel::Treasury
    }
}

impl Cycle<'_> {
    async fn batch(&self, id: i64) -> Result<BatchRow, CycleError> {
        self.store
            .batch(id)
            .await?
            .ok_or_else(|| invalid(format!("批次{id}不存在 (no batch {id})")))
    }

    fn treasury(&self) -> Result<&Arc<dyn TreasuryPayment>, CycleError> {
        self.ports.treasury.as_ref().ok_or_else(|| {
            invalid("未配置国库支付/预算管理一体化系统接口 (no treasury port configured)")
        })
    }
    fn bank(&self) -> Result<&Arc<dyn BankAgent>, CycleError> {
        self.ports
            .bank
            .as_ref()
            .ok_or_else(|| invalid("未配置代发银行接口 (no bank port configured)"))
    }
    fn disclosure(&self) -> Result<&Arc<dyn DisclosureChannel>, CycleError> {
        self.ports
            .disclosure
            .as_ref()
            .ok_or_else(|| invalid("未配置信息公开接口 (no disclosure port configured)"))
    }

    /// Authorise `step` for `user` on batch `id` (no side effect).
    pub async fn authorize(
        &self,
        id: i64,
        step: &str,
        user: &User,
    ) -> Result<(BatchRow, Transition), CycleError> {
        let b = self.batch(id).await?;
        let steps = self.store.batch_steps(id).await?;
        let history: Vec<(String, String)> = steps.into_iter().map(|s| (s.step, s.actor)).collect();
        let region = RegionCode::parse(&b.region).map_err(|e| invalid(e.to_string()))?;
        let facts = BatchFacts {
            id,
            state: b.state,
            region: &region,
            maker: &b.maker,
            history: &history,
        };
        let t = authorize(self.province.workflow(), step, &facts, user)?;
        Ok((b, t))
    }

    /// The funding request describing a batch.
    pub fn funding_request(&self, b: &BatchRow, payee: &str) -> Result<FundingRequest, CycleError> {
        Ok(FundingRequest {
            reference: b.order_no.clone(),
            province: b.province.clone(),
            region: RegionCode::parse(&b.region).map_err(|e| invalid(e.to_string()))?,
            project_code: b.project.clone(),
            project_name: b.project_name.clone(),
            period: Period::parse(&b.period).map_err(|e| invalid(e.to_string()))?,
            budget_unit: format!("{}主管部门", b.project_name),
            count: b.control.count,
            amount: b.control.amount,
            payee_account: payee.to_owned(),
        })
    }

    /// After an outside call failed or was refused: whether the batch changed meanwhile
    /// (another user's step on it committed first, e.g. two reviewers approving at once).
    /// Then that is the reason to give, not the peer's answer to a request it saw twice.
    async fn overtaken(&self, b: &BatchRow) -> Option<CycleError> {
        match self.store.batch(b.id).await {
            Ok(Some(now)) if now.version != b.version => {
                Some(CycleError::Store(StoreError::Concurrent {
                    what: format!(
                        "批次{}已被他人处理，请刷新后重试 (batch {} changed concurrently)",
                        b.id, b.id
                    ),
                }))
            }
            _ => None,
        }
    }

    /// Take `step` on batch `id` as `user`.
    pub async fn step(
        &self,
        id: i64,
        step: &str,
        user: &User,
        reason: Option<&str>,
    ) -> Result<StepReport, CycleError> {
        let (b, t) = self.authorize(id, step, user).await?;
        if t.step.effect == Effect::Return && reason.is_none_or(|r| r.trim().is_empty()) {
            return Err(invalid("退回须说明原因 (a return needs a reason)"));
        }
        if t.step.effect == Effect::Cancel && reason.is_none_or(|r| r.trim().is_empty()) {
            return Err(invalid("作废须说明原因 (a cancellation needs a reason)"));
        }
        let tally = self.store.tally(id).await?;
        check_balance(id, b.control, &tally).map_err(|e| invalid(e.to_string()))?;
        let (bank, treasury_ref) = self.store.batch_refs(id).await?;
        let mut report = StepReport {
            batch: b.clone(),
            step: t.step,
            moved: None,
            results: None,
            dispatched: 0,
            note: String::new(),
        };
        let mut detail =
            serde_json::json!({"count": b.control.count, "amount_fen": b.control.amount.0});
        // The treasury's new reference, recorded with the transition.
        let mut new_ref: Option<String> = None;

        match t.step.effect {
            Effect::PushPlan | Effect::RequestFunding => {
                let payee = bank.clone().unwrap_or_else(|| "代理银行".into());
                let status = match self
                    .treasury()?
                    .request_funding(&self.funding_request(&b, &payee)?)
                    .await
                {
                    Ok(s) => s,
                    Err(e) => return Err(self.overtaken(&b).await.unwrap_or(e.into())),
                };
                match status {
                    FundingStatus::Refused { reason } => {
                        if let Some(e) = self.overtaken(&b).await {
                            return Err(e);
                        }
                        return Err(invalid(format!(
                            "国库/预算系统拒绝：{reason} (refused by the treasury)"
                        )));
                    }
                    FundingStatus::Pending { voucher_no }
                    | FundingStatus::Funded { voucher_no, .. } => {
                        detail["voucher_no"] = voucher_no.clone().into();
                        report.note = format!("凭证号 {voucher_no}");
                        new_ref = Some(voucher_no);
                    }
                }
            }
            Effect::ConfirmFunding => {
                let reference = treasury_ref.clone().unwrap_or_else(|| b.order_no.clone());
                match self.treasury()?.funding_status(&reference).await? {
                    FundingStatus::Funded {
                        amount,
                        date,
                        voucher_no,
                    } => {
                        if amount != b.control.amount {
                            return Err(invalid(format!(
                                "到账金额{amount}元与批次控制数{}元不符 (funded amount differs from the control total)",
                                b.control.amount
                            )));
                        }
                        detail["funded_on"] = date.into();
                        detail["voucher_no"] = voucher_no.into();
                    }
                    FundingStatus::Pending { .. } => {
                        return Err(invalid(
                            "资金尚未到位，请稍后再试 (funds have not arrived yet)",
                        ));
                    }
                    FundingStatus::Refused { reason } => {
                        return Err(invalid(format!("拨付被拒绝：{reason}")));
                    }
                }
            }
            Effect::Dispatch => {
                report.dispatched = self.deliver_paged(&b, user).await?;
                // Nothing left to send but lines in flight: the delivery happened and was
                // recorded, only the transition was not (the process stopped in between).
                if report.dispatched == 0 && tally.in_flight.count == 0 {
                    return Err(invalid("没有待发放的明细 (no pending lines)"));
                }
                detail["dispatched"] = report.dispatched.into();
            }
            Effect::CollectResults => {
                let r = self.collect(&b).await?;
                let tally = self.store.tally(id).await?;
                detail["credited"] = tally.credited.count.into();
                detail["failed_open"] = tally.failed.count.into();
                report.results = Some(r);
                if !tally.is_settled() {
                    report.note = format!(
                        "尚有{}笔发放中、{}笔失败待更正或退回，批次暂不办结 ({} in flight, {} failed open)",
                        tally.in_flight.count,
                        tally.failed.count,
                        tally.in_flight.count,
                        tally.failed.count
                    );
                    report.batch = self.batch(id).await?;
                    return Ok(report);
                }
            }
            Effect::Reconcile => {
                if !tally.is_settled() {
                    return Err(invalid(
                        "尚有明细未发放完毕，不能对账 (lines are still open)",
                    ));
                }
                detail["credited_fen"] = tally.credited.amount.0.into();
                detail["refunded_fen"] = tally.refunded.amount.0.into();
            }
            Effect::Publish => {
                let published = self.publish(&b).await?;
                detail["published_records"] = published.into();
            }
            Effect::Cancel => {
                // Only a batch none of whose lines was ever sent can be cancelled: nothing
                // outside the platform knows of it, no money moved.
                if tally.pending != b.control {
                    return Err(invalid(format!(
                        "批次{id}已有明细发送或发放，不能作废 (batch {id} has lines that were sent)"
                    )));
                }
                detail["cancelled"] = b.control.count.into();
                report.note = format!("已作废{}笔明细", b.control.count);
            }
            _ => {}
        }
        if matches!(
            t.step.effect,
            Effect::PushPlan | Effect::RequestFunding | Effect::ConfirmFunding | Effect::Publish
        ) {
            ykt_store::failpoints::hit("step.after_port_call");
        }

        let channel = channel_of(&b);
        let entries = t
            .step
            .ledger
            .iter()
            .filter(|m| m.applies(channel))
            .map(|m| {
                let e = Entry::transfer(
                    EntryKind::Funding,
                    Some(id),
                    m.memo,
                    account(m.from, &b, bank.as_deref()),
                    account(m.to, &b, bank.as_deref()),
                    b.control.amount,
                );
                e.map(|e| match m.subject {
                    Some(s) => e.with_subject(s),
                    None => e,
                })
                .map_err(|e| invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let after = match self
            .store
            .apply_step(&b, &t, user, reason, detail, &entries, new_ref.as_deref())
            .await
        {
            Ok(after) => after,
            // A collection whose results are applied (committed with their audit entry) and
            // that then lost the transition to a collection running at the same moment: the
            // other one settled the batch. Not a refusal: say what this one did.
            Err(StoreError::Concurrent { what }) if t.step.effect == Effect::CollectResults => {
                let now = self.batch(id).await?;
                if now.state != t.to {
                    return Err(StoreError::Concurrent { what }.into());
                }
                report.note = format!(
                    "结果已入账；批次已由同时进行的另一次结果收取办结 (results applied; another collection settled batch {id})"
                );
                report.batch = now;
                return Ok(report);
            }
            Err(e) => return Err(e.into()),
        };
        report.moved = Some((t.from, after.state));
        report.batch = after;
        Ok(report)
    }

    /// Send pending lines as new attempts, or first deliver again the attempts of a delivery
    /// that was never recorded as sent: the bank deduplicates by line and attempt, so a retry
    /// after a failed or interrupted delivery is safe. Returns the lines sent (none when
    /// nothing was pending).
    async fn deliver(&self, b: &BatchRow, user: &User) -> Result<Vec<InstructionLine>, CycleError> {
        let role = user.roles.first().map(|r| r.as_str()).unwrap_or("system");
        // The bank port first: a platform without one must refuse before any line is marked
        // in flight, or the lines would wait for a bank that never had them.
        let bank = self.bank()?;
        let lines = self.store.dispatch_pending(b.id, &user.login, role).await?;
        if lines.is_empty() {
            return Ok(lines);
        }
        self.send(bank.as_ref(), b, lines).await
    }

    /// [`Cycle::deliver`], returning how many lines were sent; to an agent that reads an
    /// instruction a page at a time ([`BankAgent::delivers_in_pages`]), the lines are read
    /// (decrypted) [`DELIVERY_PAGE`] at a time as it asks for them, and only each attempt's
    /// line, number and amount is held (a province-scale batch's lines held decrypted were
    /// some 160 bytes each). The same attempts are sent and recorded either way.
    async fn deliver_paged(&self, b: &BatchRow, user: &User) -> Result<usize, CycleError> {
        let bank = self.bank()?;
        if !bank.delivers_in_pages() {
            return Ok(self.deliver(b, user).await?.len());
        }
        let role = user.roles.first().map(|r| r.as_str()).unwrap_or("system");
        let mut sent = self
            .store
            .dispatch_pending_ids(b.id, &user.login, role)
            .await?;
        if sent.is_empty() {
            return Ok(0);
        }
        sent.sort_by_key(|a| a.0);
        let project = self.province.catalog().find(&b.project);
        let header = PaymentInstruction {
            order_no: b.order_no.clone(),
            project_name: b.project_name.clone(),
            project_short_name: project.map(|p| p.short_name.clone()).unwrap_or_default(),
            count: sent.len() as u64,
            total: sent.iter().map(|a| a.2).sum(),
            lines: Vec::new(),
        };
        let attempts: Vec<(i64, u32)> = sent.iter().map(|a| (a.0, a.1)).collect();
        drop(sent);
        let mut pages = StorePages {
            store: self.store,
            batch_id: b.id,
            attempts: &attempts,
            at: 0,
        };
        bank.deliver_paged(&header, &mut pages).await?;
        ykt_store::failpoints::hit("dispatch.after_send");
        self.store.mark_sent_attempts(&attempts).await?;
        Ok(attempts.len())
    }

    /// Hand `lines` to the bank as one instruction and record them as sent.
    async fn send(
        &self,
        bank: &dyn BankAgent,
        b: &BatchRow,
        mut lines: Vec<InstructionLine>,
    ) -> Result<Vec<InstructionLine>, CycleError> {
        lines.sort_by_key(|l| l.line_id);
        let project = self.province.catalog().find(&b.project);
        let instruction = PaymentInstruction {
            order_no: b.order_no.clone(),
            project_name: b.project_name.clone(),
            project_short_name: project.map(|p| p.short_name.clone()).unwrap_or_default(),
            count: lines.len() as u64,
            total: lines.iter().map(|l| l.amount).sum(),
            lines,
        };
        bank.deliver(&instruction).await?;
        ykt_store::failpoints::hit("dispatch.after_send");
        self.store.mark_sent(&instruction.lines).await?;
        Ok(instruction.lines)
    }

    /// Pay corrected lines again (each a new attempt of the same line).
    pub async fn redispatch(
        &self,
        id: i64,
        user: &User,
    ) -> Result<Vec<InstructionLine>, CycleError> {
        let b = self.batch(id).await?;
        if b.state != BatchState::Dispatched && b.state != BatchState::Settled {
            return Err(invalid(format!(
                "批次状态为「{}」，不能再次发放 (batch is not dispatched)",
                b.state.label_zh()
            )));
        }
        if !(user.has(Role::DeptMaker) || user.has(Role::System)) {
            return Err(invalid(format!(
                "用户{}不能发起再次发放 (only the department or the system re-dispatches)",
                user.login
            )));
        }
        let lines = self.deliver(&b, user).await?;
        if lines.is_empty() {
            return Err(invalid("没有待发放的明细 (no pending lines)"));
        }
        Ok(lines)
    }

    /// Collect and apply the bank's results for a batch.
    pub async fn collect(&self, b: &BatchRow) -> Result<ResultReport, CycleError> {
        let bank = self.bank()?;
        // A delivery interrupted before it was recorded as sent: send it (again) first, or
        // its lines would wait for results of payments the bank may never have received.
        let unsent = self.store.unsent_attempts(b.id).await?;
        if !unsent.is_empty() {
            self.send(bank.as_ref(), b, unsent).await?;
        }
        // Page by page from where the last recorded page ended: each page's results and the
        // cursor after it in one transaction (a crash in between fetches that page again).
        // An agent that does not page answers everything in one page, without a cursor.
        let mut cursor = self.store.results_cursor(b.id).await?;
        let mut report = ResultReport::default();
        loop {
            let page = bank.collect_page(&b.order_no, cursor.as_deref()).await?;
            ykt_store::failpoints::hit("results.after_fetch");
            let (agent, _) = self.store.batch_refs(b.id).await?;
            let from = account(AccountKind::AgentBank, b, agent.as_deref());
            let to = account(AccountKind::Beneficiaries, b, None);
            let r = self
                .store
                .apply_results_page(
                    b.id,
                    &b.order_no,
                    &page.results,
                    page.next.as_deref(),
                    "system",
                    &from,
                    &to,
                )
                .await?;
            report.merge(r);
            let moved = page.next.is_some() && page.next != cursor;
            if !page.more || !moved || page.results.is_empty() {
                return Ok(report);
            }
            cursor = page.next;
        }
    }

    /// Correct a failed line (department maker; where the province requires it, with the
    /// beneficiary's or guardian's signature and the department head's sign-off).
    pub async fn correct(
        &self,
        id: i64,
        line_id: i64,
        fix: &LineFix,
        user: &User,
    ) -> Result<(), CycleError> {
        self.correct_many(id, &[(line_id, fix)], user).await
    }

    /// Correct failed lines of one batch at once: the same checks and records as
    /// [`Cycle::correct`] for each, in one transaction (all or none).
    pub async fn correct_many(
        &self,
        id: i64,
        fixes: &[(i64, &LineFix)],
        user: &User,
    ) -> Result<(), CycleError> {
        if !user.has(Role::DeptMaker) {
            return Err(invalid(format!(
                "用户{}不具备「主管部门经办」角色，不能更正明细 (only a department maker corrects lines)",
                user.login
            )));
        }
        let b = self.batch(id).await?;
        let region = RegionCode::parse(&b.region).map_err(|e| invalid(e.to_string()))?;
        if !user.covers(&region) {
            return Err(invalid(format!(
                "批次区划{}不在用户{}的管辖范围内",
                b.region, user.login
            )));
        }
        if fixes.iter().any(|(_, f)| f.reason.trim().is_empty()) {
            return Err(invalid("更正须说明原因 (a correction needs a reason)"));
        }
        self.store
            .correct_lines(id, fixes, &user.login, Role::DeptMaker.as_str())
            .await?;
        Ok(())
    }

    /// Refund a line that cannot be paid, through the original channel: requested by the
    /// department, agreed by finance (different people), money walked back along the route.
    pub async fn refund(
        &self,
        id: i64,
        line_id: i64,
        reason: &str,
        requester: &User,
        approver: &User,
    ) -> Result<Fen, CycleError> {
        let (done, failed) = self
            .refund_many(id, &[(line_id, reason)], requester, approver)
            .await;
        match failed {
            Some(e) => Err(e),
            None => Ok(done.first().copied().unwrap_or_default()),
        }
    }

    /// Refund failed lines of one batch: each line's refund asked of the treasury (its own
    /// idempotent request, as [`Cycle::refund`]), then all that the treasury granted recorded
    /// in one transaction. Returns the amounts recorded, in order, and the error that stopped
    /// the rest (the lines before it are recorded; a retry of a line whose refund the
    /// treasury granted but the platform did not record sends the same key and gets the
    /// first receipt).
    pub async fn refund_many(
        &self,
        id: i64,
        lines: &[(i64, &str)],
        requester: &User,
        approver: &User,
    ) -> (Vec<Fen>, Option<CycleError>) {
        match self.refund_checked(id, lines, requester, approver).await {
            Ok(x) => x,
            Err(e) => (Vec::new(), Some(e)),
        }
    }

    async fn refund_checked(
        &self,
        id: i64,
        lines: &[(i64, &str)],
        requester: &User,
        approver: &User,
    ) -> Result<(Vec<Fen>, Option<CycleError>), CycleError> {
        if !requester.has(Role::DeptMaker) {
            return Err(invalid(format!(
                "退款须由主管部门申请；{}不具备该角色",
                requester.login
            )));
        }
        if !approver.has(Role::FinanceReviewer) {
            return Err(invalid(format!(
                "退款须经财政部门同意；{}不具备该角色",
                approver.login
            )));
        }
        let b = self.batch(id).await?;
        let (bank, treasury_ref) = self.store.batch_refs(id).await?;
        let route = self.province.route(channel_of(&b));
        let treasury = self.treasury()?;
        let mut granted: Vec<(i64, &str)> = Vec::with_capacity(lines.len());
        let mut stopped = None;
        for &(line_id, reason) in lines {
            let line = match self.store.line(id, line_id).await {
                Ok(Some(l)) => l,
                Ok(None) => {
                    stopped = Some(invalid(format!("批次{id}没有明细{line_id}")));
                    break;
                }
                Err(e) => {
                    stopped = Some(e.into());
                    break;
                }
            };
            if line.state != LineState::Failed {
                stopped = Some(invalid(format!(
                    "明细{line_id}状态为「{}」，只有发放失败的明细可以退回",
                    line.state.label_zh()
                )));
                break;
            }
            // The key is the line's and attempt's alone: a refund retried after a crash
            // between the treasury's answer and the commit below sends the same key, and the
            // treasury answers with its first receipt instead of refusing (or refunding
            // twice).
            let req = RefundRequest {
                reference: treasury_ref.clone().unwrap_or_else(|| b.order_no.clone()),
                request_no: RefundRequest::request_no_for(&b.order_no, line.id, line.attempt),
                line_id: line.id,
                amount: line.amount,
                reason: reason.to_owned(),
            };
            if let Err(e) = treasury.refund(&req).await {
                stopped = Some(e.into());
                break;
            }
            granted.push((line_id, reason));
        }
        if granted.is_empty() {
            return match stopped {
                Some(e) => Err(e),
                None => Ok((Vec::new(), None)),
            };
        }
        ykt_store::failpoints::hit("refund.after_port_call");
        let entries = |amount: Fen| {
            route
                .windows(2)
                .rev()
                .filter_map(|w| {
                    Entry::transfer(
                        EntryKind::Refund,
                        Some(id),
                        "原渠道退回",
                        account(w[1], &b, bank.as_deref()),
                        account(w[0], &b, bank.as_deref()),
                        amount,
                    )
                    .ok()
                })
                .collect()
        };
        let done = self
            .store
            .refund_lines(id, &granted, &requester.login, &approver.login, entries)
            .await?;
        Ok((done, stopped))
    }

    /// Publish a settled batch: a masked notice of what was paid, and lookup records for the
    /// public personal query. Returns how many records were published.
    ///
    /// The lines are read and decrypted a page at a time (by primary key, in roster order)
    /// and each page's lookup records are published before the next is read, so memory does
    /// not grow with the batch (a million-line batch read whole held about 1 GB). Publishing
    /// records is idempotent (a record already published is kept once), so a publication
    /// cut short is simply run again; the notice goes out last, once its body is complete.
    async fn publish(&self, b: &BatchRow) -> Result<u64, CycleError> {
        /// Lines read, and records published, at a time.
        const PAGE: usize = 5_000;
        let mask = self.province.mask_policy();
        let d = self.disclosure()?;
        let mut body = format!("{} {} {}\n", b.project_name, b.period, b.region);
        let mut published = 0;
        let ids = self.store.line_ids(b.id).await?;
        for page in ids.chunks(PAGE) {
            let mut records = Vec::with_capacity(page.len());
            for l in self.store.lines_by_id(b.id, page).await? {
                if l.state != LineState::Credited {
                    continue;
                }
                let _ = writeln!(
                    body,
                    "{} {} {}元",
                    mask.name(&l.name),
                    mask.id(l.resident_id.as_str()),
                    l.amount
                );
                records.push(LookupRecord {
                    person_key: lookup_key(self.store, l.resident_id.as_str(), &l.name),
                    name_masked: mask.name(&l.name),
                    project_name: b.project_name.clone(),
                    period: Period::parse(&l.period).map_err(|e| invalid(e.to_string()))?,
                    amount: l.amount,
                    date: self.today.to_string(),
                    status: LineState::Credited.label_zh().to_owned(),
                });
            }
            if !records.is_empty() {
                published += d.publish_records(&records).await?;
            }
        }
        let notice = Notice {
            id: format!("{}-result", b.order_no),
            kind: "result".into(),
            region: RegionCode::parse(&b.region).map_err(|e| invalid(e.to_string()))?,
            project_name: b.project_name.clone(),
            title: format!("{}{}发放结果公示", b.project_name, b.period),
            body,
            published_on: self.today.to_string(),
            until: None,
        };
        d.publish(&notice).await?;
        Ok(published)
    }
}

/// How many lines [`Cycle::deliver_paged`] reads at a time.
pub const DELIVERY_PAGE: usize = 5_000;

/// The lines of a delivery read from the store a page at a time, in line order.
struct StorePages<'a> {
    store: &'a Store,
    batch_id: i64,
    /// (line, attempt) of the delivery, sorted by line.
    attempts: &'a [(i64, u32)],
    /// How many were handed over.
    at: usize,
}

#[async_trait::async_trait]
impl InstructionPages for StorePages<'_> {
    async fn next_page(&mut self) -> Result<Option<Vec<InstructionLine>>, PortError> {
        let rest = &self.attempts[self.at.min(self.attempts.len())..];
        if rest.is_empty() {
            return Ok(None);
        }
        let page = &rest[..rest.len().min(DELIVERY_PAGE)];
        self.at += page.len();
        let lines = self
            .store
            .attempts_by_id(self.batch_id, page)
            .await
            .map_err(|e| PortError::new("数据库", e.to_string(), true))?;
        if lines.len() != page.len() {
            return Err(PortError::new(
                "数据库",
                format!(
                    "批次{}待发送的明细读取不全（{}笔中读到{}笔）",
                    self.batch_id,
                    page.len(),
                    lines.len()
                ),
                true,
            ));
        }
        Ok(Some(lines))
    }
}

/// The public lookup key of a person: the store's keyed blind index of the resident ID and
/// the name together (hex). A lookup with a wrong name finds nothing, exactly like a lookup of
/// someone never paid, so the response cannot tell which part was wrong; the key reveals
/// neither.
pub fn lookup_key(store: &Store, id: &str, name: &str) -> String {
    store.lookup_key(id, name)
}
