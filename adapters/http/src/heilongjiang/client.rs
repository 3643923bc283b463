//! The platform's interface to the budget system (预算管理一体化系统), implementing the kernel's
//! `TreasuryPayment` and `BankAgent` ports for 黑龙江省's unified-treasury model.
//!
//! The platform never talks to the treasury agent bank directly: vouchers go to the budget
//! system, which forwards them to the bank, and the bank's returns come back through it
//! (黑财监〔2021〕30号 二(三)三 "由预算管理一体化系统向“一卡通”平台反馈发放情况").
//!
//! How the generic steps map onto the budget system (the batch's state says which call a
//! funding request is, so a retry of a step repeats the same call and the budget system answers
//! it idempotently):
//!
//! | step (effect) | batch state | call |
//! | --- | --- | --- |
//! | `push_plan` (PushPlan) | submitted | `POST /plans`: the plan with its detail, split by region |
//! | `request_payment` (RequestFunding) | plan_pushed | `POST /requests`: the region's payment request, a 5201 voucher pending review |
//! | `finance_approve` (RequestFunding) | funding_requested | `POST /vouchers/{no}/approve` |
//! | `treasury_pay` / re-dispatch (Dispatch) | approved / dispatched | `POST /vouchers/{no}/send`, or `/repay` for corrected lines |
//! | `collect_results` (CollectResults) | dispatched | `GET /plans/{order}/returns?after={cursor}&limit=`, page by page |
//! | refund | any | `POST /vouchers/{no}/refunds` |
//!
//! Every message, both ways, is archived in the store (`hlj_messages`, encrypted) with the
//! platform's date.

use super::messages::{self as m, Payee, PlanHeader};
use super::xml::{self, Node};
use async_trait::async_trait;
use chrono::NaiveDate;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use ykt_kernel::batch::BatchState;
use ykt_kernel::catalog::{Catalog, FundingChannel, Project};
use ykt_kernel::ports::{
    BankAgent, BankOutcome, BankResult, FundingRequest, FundingStatus, InstructionPages,
    PaymentInstruction, PortError, RefundRequest, ResultPage, TreasuryPayment,
};
use ykt_kernel::{Fen, RegionCode};
use ykt_store::Store;
use ykt_store::heilongjiang::{NewMessage, NewReturn};
use ykt_store::payments::BatchRow;

/// The name of the peer in port errors.
pub const SYSTEM: &str = "预算管理一体化系统";

/// The platform's date, shared and movable (a demo runs a timeline).
#[derive(Debug, Clone)]
pub struct PlatformDate(Arc<RwLock<NaiveDate>>);

impl PlatformDate {
    pub fn new(d: NaiveDate) -> PlatformDate {
        PlatformDate(Arc::new(RwLock::new(d)))
    }
    pub fn get(&self) -> NaiveDate {
        *self.0.read().unwrap_or_else(|p| p.into_inner())
    }
    pub fn set(&self, d: NaiveDate) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = d;
    }
}

/// What the adapter needs to describe a batch: the catalogue and who administers a project
/// in a county (e.g. `ykt_province_heilongjiang::county_department`).
#[derive(Clone)]
pub struct Directory {
    pub catalog: Catalog,
    pub department: fn(&Project, &str) -> String,
    /// Expenditure subject of grain-risk-fund vouchers (2220115).
    pub grain_expenditure_subject: &'static str,
    /// Name of a region the store's region table lacks (e.g. the table shipped with ykt).
    pub region_name: fn(&RegionCode) -> Option<String>,
}

/// The budget-system client.
#[derive(Clone)]
pub struct BudgetSystem {
    base: String,
    http: reqwest::Client,
    store: Store,
    dir: Arc<Directory>,
    date: PlatformDate,
    /// Who approves (recorded by the budget system).
    approver: String,
    /// At most how many details a plan or voucher message carries; a larger one is sent in
    /// parts ([`PART_SIZE`]).
    part_size: usize,
}

fn fail(m: impl Into<String>) -> PortError {
    PortError::new(SYSTEM, m, false)
}

fn store_err(e: ykt_store::StoreError) -> PortError {
    PortError::new("数据库", e.to_string(), true)
}

impl BudgetSystem {
    pub fn new(
        base_url: &str,
        store: Store,
        dir: Directory,
        date: PlatformDate,
    ) -> Result<BudgetSystem, PortError> {
        let base = base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(fail(format!(
                "预算管理一体化系统地址「{base}」应以 http:// 或 https:// 开头"
            )));
        }
        Ok(BudgetSystem {
            base,
            http: crate::client::client()?,
            store,
            dir: Arc::new(dir),
            date,
            approver: "财政部门（经一卡通平台）".into(),
            part_size: PART_SIZE,
        })
    }

    /// The same client sending plans and vouchers in parts of at most `n` details (tests of
    /// the parts on a small batch; at least 1).
    pub fn with_part_size(mut self, n: usize) -> BudgetSystem {
        self.part_size = n.max(1);
        self
    }

    pub fn date(&self) -> &PlatformDate {
        &self.date
    }

    /// Send a message and archive both directions. `body` is `None` for a GET.
    async fn call(
        &self,
        b: Option<&BatchRow>,
        order_no: &str,
        voucher_no: &str,
        kinds: (&str, &str),
        method_path: (&str, String),
        body: Option<Vec<u8>>,
    ) -> Result<Node, PortError> {
        let request = format!("{} {}", method_path.0, method_path.1);
        let (_, doc) = self
            .exchange(b, order_no, voucher_no, kinds, method_path, body, true)
            .await?;
        doc.ok_or_else(|| fail(format!("{request}：空报文")))
    }

    /// [`Self::call`], answering the bytes of a successful reply as received (not parsed: a
    /// province-scale reply is read as it streams); `parse` says whether to parse it too.
    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        b: Option<&BatchRow>,
        order_no: &str,
        voucher_no: &str,
        (kind_out, kind_in): (&str, &str),
        method_path: (&str, String),
        body: Option<Vec<u8>>,
        parse: bool,
    ) -> Result<(axum::body::Bytes, Option<Node>), PortError> {
        let (method, path) = method_path;
        let request = format!("{method} {path}");
        let on_date = self.date.get().to_string();
        let batch_id = b.map(|b| b.id);
        if let Some(bytes) = &body {
            self.store
                .hlj_archive(&NewMessage {
                    batch_id,
                    order_no,
                    voucher_no,
                    kind: kind_out,
                    direction: "out",
                    request: &request,
                    status: None,
                    body: bytes,
                    on_date: &on_date,
                })
                .await
                .map_err(store_err)?;
        }
        let url = format!("{}{path}", self.base);
        let rb = match body {
            Some(bytes) => self
                .http
                .post(&url)
                .header("content-type", "application/xml; charset=GB18030")
                .body(bytes),
            None => self.http.get(&url),
        };
        let resp = rb
            .send()
            .await
            .map_err(|e| crate::client::transport(SYSTEM, e))?;
        let status = resp.status();
        let got = resp
            .bytes()
            .await
            .map_err(|e| crate::client::transport(SYSTEM, e))?;
        let doc = if parse || !status.is_success() {
            Some(xml::parse(&got))
        } else {
            None
        };
        let in_voucher = doc
            .as_ref()
            .and_then(|d| d.as_ref().ok())
            .map(|d| d.text_of("VoucherNo").to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| voucher_no.to_owned());
        self.store
            .hlj_archive(&NewMessage {
                batch_id,
                order_no,
                voucher_no: &in_voucher,
                kind: if status.is_success() {
                    kind_in
                } else {
                    "error"
                },
                direction: "in",
                request: &request,
                status: Some(status.as_u16()),
                body: &got,
                on_date: &on_date,
            })
            .await
            .map_err(store_err)?;
        if !status.is_success() {
            // A refusal that is not XML (e.g. 413 from a size limit in front of the system)
            // is reported by its status, not as a malformed reply.
            let msg = match &doc {
                Some(Ok(doc)) if doc.name == "Error" => {
                    format!("{}（{}）", doc.text_of("Message"), doc.text_of("Code"))
                }
                _ => format!("HTTP {status}"),
            };
            return Err(PortError::new(
                SYSTEM,
                format!("{request} 被拒绝：{msg}"),
                status.is_server_error(),
            ));
        }
        match doc {
            None => Ok((got, None)),
            Some(d) => {
                let d = d.map_err(|e| fail(format!("{request}：{e}")))?;
                Ok((got, Some(d)))
            }
        }
    }

    async fn batch(&self, order_no: &str) -> Result<BatchRow, PortError> {
        self.store
            .hlj_batch_by_order(order_no)
            .await
            .map_err(store_err)?
            .ok_or_else(|| fail(format!("平台没有发放单号为{order_no}的批次")))
    }

    async fn batch_of_ref(&self, reference: &str) -> Result<BatchRow, PortError> {
        self.store
            .hlj_batch_by_ref(reference)
            .await
            .map_err(store_err)?
            .ok_or_else(|| fail(format!("平台没有支付凭证号或发放单号为{reference}的批次")))
    }

    fn project(&self, b: &BatchRow) -> Result<&Project, PortError> {
        self.dir
            .catalog
            .find(&b.project)
            .ok_or_else(|| fail(format!("补贴项目{}不在目录中", b.project)))
    }

    async fn county_name(&self, code: &str) -> Result<String, PortError> {
        let r = RegionCode::parse(code).map_err(|e| fail(e.to_string()))?;
        let county = r.county().unwrap_or(r);
        Ok(
            match self.store.region_name(&county).await.map_err(store_err)? {
                Some(n) => n,
                None => {
                    (self.dir.region_name)(&county).unwrap_or_else(|| county.prefix().to_owned())
                }
            },
        )
    }

    /// The budget unit (预算单位) of a batch: the county department and a code made of the
    /// county code and the department's number among the catalogue's lead units.
    async fn agency(&self, b: &BatchRow) -> Result<(String, String), PortError> {
        let p = self.project(b)?;
        let county = self.county_name(&b.region).await?;
        let mut units: Vec<&str> = self
            .dir
            .catalog
            .projects()
            .iter()
            .map(|q| q.lead_unit.as_str())
            .collect();
        let mut seen = std::collections::HashSet::new();
        units.retain(|u| seen.insert(*u));
        let n = units.iter().position(|u| *u == p.lead_unit).unwrap_or(0) + 101;
        Ok((
            format!("{}{n:03}", &b.region[..6.min(b.region.len())]),
            (self.dir.department)(p, &county),
        ))
    }

    async fn push_plan(&self, b: &BatchRow) -> Result<FundingStatus, PortError> {
        let p = self.project(b)?.clone();
        let county6 = b.region.get(..6).unwrap_or(&b.region).to_owned();
        let regions = vec![(county6.clone(), self.county_name(&b.region).await?)];
        // A batch finance returned is a new submission: the budget system voids the earlier
        // request (the generic return step does not call it).
        let returns: Vec<_> = self
            .store
            .batch_steps(b.id)
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|s| s.step == "finance_return")
            .collect();
        let reason = returns
            .last()
            .and_then(|s| s.reason.clone())
            .unwrap_or_default();
        let header = PlanHeader {
            plan_no: &b.order_no,
            province: "黑龙江省",
            project_code: &p.code,
            project_name: &p.name,
            lead_unit: &p.lead_unit,
            period: &b.period,
            grain: p.funding == FundingChannel::GrainRiskFund,
            create_date: self.date.get(),
            regions,
            resubmission: u32::try_from(returns.len()).unwrap_or(u32::MAX),
            return_reason: &reason,
        };
        // The details written as the lines are read, a page at a time (a province-scale
        // batch is never held decrypted whole next to its plan); a batch of more than
        // `part_size` lines goes in parts (messages.md), each archived as sent.
        let ids = self.store.line_ids(b.id).await.map_err(store_err)?;
        if ids.len() as u64 != b.control.count {
            return Err(fail("批次明细与控制数不符，不能推送发放计划"));
        }
        let parts: Vec<&[i64]> = if ids.is_empty() {
            vec![&[]]
        } else {
            ids.chunks(self.part_size).collect()
        };
        let of = u32::try_from(parts.len()).map_err(|_| fail("发放计划部分过多"))?;
        let mut written = (0u64, Fen(0));
        let mut receipt = None;
        for (k, part) in parts.iter().enumerate() {
            let no = u32::try_from(k + 1).unwrap_or(u32::MAX);
            let mut w = m::PlanWriter::part(
                &header,
                b.control.count,
                b.control.amount,
                (of > 1).then_some((no, of)),
                part.len() as u64,
            );
            for page in part.chunks(PLAN_PAGE) {
                let lines = self
                    .store
                    .lines_by_id(b.id, page)
                    .await
                    .map_err(store_err)?;
                for l in &lines {
                    w.detail(&Payee {
                        line_id: l.id,
                        attempt: 0,
                        region: &l.region,
                        name: &l.name,
                        account: l.account.as_str(),
                        bank: &l.bank,
                        amount: l.amount,
                        period: &l.period,
                    });
                }
            }
            let (c, a) = w.written();
            written = (written.0 + c, written.1 + a);
            if (c != part.len() as u64)
                || (no == of && written != (b.control.count, b.control.amount))
            {
                return Err(fail("批次明细与控制数不符，不能推送发放计划"));
            }
            let doc = w.finish();
            receipt = Some(
                self.call(
                    Some(b),
                    &b.order_no,
                    "",
                    ("plan", "plan_receipt"),
                    ("POST", "/plans".into()),
                    Some(doc),
                )
                .await?,
            );
        }
        drop(ids);
        let receipt = receipt.ok_or_else(|| fail("发放计划没有内容"))?;
        let plans = m::read_plan_receipt(&receipt).map_err(fail)?;
        let rp = plans
            .iter()
            .find(|r| r.county == county6)
            .ok_or_else(|| fail(format!("预算管理一体化系统未分发区划{county6}的发放计划")))?;
        if rp.amount != b.control.amount || rp.count != b.control.count {
            return Err(fail(format!(
                "区划发放计划{}为{}笔{}元，与批次控制数{}笔{}元不符",
                rp.no, rp.count, rp.amount, b.control.count, b.control.amount
            )));
        }
        let agent = receipt
            .find("RegionPlanList")
            .and_then(|l| {
                l.each("RegionPlan")
                    .find(|r| r.text_of("AdmDivCode") == county6)
            })
            .map(|r| r.text_of("AgentBankName").to_owned())
            .unwrap_or_default();
        if !agent.is_empty() {
            self.store
                .set_batch_bank(b.id, &agent)
                .await
                .map_err(store_err)?;
        }
        Ok(FundingStatus::Pending {
            voucher_no: rp.no.clone(),
        })
    }

    async fn raise_request(&self, b: &BatchRow) -> Result<FundingStatus, PortError> {
        let (_, region_plan) = self.store.batch_refs(b.id).await.map_err(store_err)?;
        let region_plan =
            region_plan.ok_or_else(|| fail("批次尚无区划发放计划号，请先推送发放计划"))?;
        let (code, name) = self.agency(b).await?;
        let doc = xml::encode(&m::payment_request(
            &region_plan,
            &code,
            &name,
            &format!("{} {}", b.project_name, b.period),
        ));
        let n = self
            .call(
                Some(b),
                &b.order_no,
                "",
                ("payment_request", "voucher_notice"),
                ("POST", "/requests".into()),
                Some(doc),
            )
            .await?;
        let n = m::read_notice(&n).map_err(fail)?;
        if n.pay_amt != b.control.amount {
            return Err(fail(format!(
                "支付凭证{}金额{}元与批次控制数{}元不符",
                n.voucher_no, n.pay_amt, b.control.amount
            )));
        }
        Ok(FundingStatus::Pending {
            voucher_no: n.voucher_no,
        })
    }

    async fn approve(&self, b: &BatchRow) -> Result<FundingStatus, PortError> {
        let (_, voucher) = self.store.batch_refs(b.id).await.map_err(store_err)?;
        let voucher = voucher.ok_or_else(|| fail("批次尚无支付凭证号"))?;
        let n = self
            .call(
                Some(b),
                &b.order_no,
                &voucher,
                ("approval", "voucher_notice"),
                ("POST", format!("/vouchers/{voucher}/approve")),
                Some(xml::encode(&m::approval(&self.approver))),
            )
            .await?;
        let n = m::read_notice(&n).map_err(fail)?;
        status_of(&n, self.date.get())
    }

    /// The notice of a voucher.
    pub async fn voucher(
        &self,
        b: Option<&BatchRow>,
        order_no: &str,
        voucher: &str,
    ) -> Result<m::VoucherNotice, PortError> {
        let n = self
            .call(
                b,
                order_no,
                voucher,
                ("status_query", "voucher_notice"),
                ("GET", format!("/vouchers/{voucher}")),
                None,
            )
            .await?;
        m::read_notice(&n).map_err(fail)
    }

    /// Every return detail of an order as the budget system relays it (repeats and all),
    /// from the start in one answer.
    pub async fn returns(&self, order_no: &str) -> Result<Vec<m::ReturnDetail>, PortError> {
        Ok(self.returns_page(order_no, None, None).await?.details)
    }

    /// The return details the budget system recorded since `cursor` (from the start without
    /// one), at most `limit` (all without), with the cursor after them and whether more are
    /// ready: `GET /plans/{order}/returns?after=&limit=`. Each page is archived as received
    /// and its returns recorded (`hlj_returns`, the first report of an attempt wins); the
    /// caller keeps the cursor with the page's results.
    pub async fn returns_page(
        &self,
        order_no: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<m::ReturnsPage, PortError> {
        let b = self.batch(order_no).await?;
        let mut query = Vec::new();
        if let Some(c) = cursor {
            query.push(format!("after={}", query_escape(c)));
        }
        if let Some(l) = limit {
            query.push(format!("limit={l}"));
        }
        let path = if query.is_empty() {
            format!("/plans/{order_no}/returns")
        } else {
            format!("/plans/{order_no}/returns?{}", query.join("&"))
        };
        let (bytes, _) = self
            .exchange(
                Some(&b),
                order_no,
                "",
                ("returns_query", "return_5201"),
                ("GET", path.clone()),
                None,
                false,
            )
            .await?;
        let page =
            m::read_returns_page(&bytes, order_no).map_err(|e| fail(format!("GET {path}：{e}")))?;
        drop(bytes);
        let (bank, _) = self.store.batch_refs(b.id).await.map_err(store_err)?;
        let bank = bank.unwrap_or_default();
        // Only this page's lines: what was already reported per line and attempt (the first
        // report wins), and the line's current attempt on the platform (nothing decrypted).
        let ids: Vec<i64> = page.details.iter().map(|d| d.result.line_id).collect();
        let (attempts, flags) = self
            .store
            .hlj_page_state(b.id, &ids)
            .await
            .map_err(store_err)?;
        drop(ids);
        let before: HashMap<(i64, i64), bool> =
            flags.into_iter().map(|(l, a, c)| ((l, a), c)).collect();
        let latest: HashMap<i64, u32> = attempts
            .into_iter()
            .map(|(id, attempt)| (id, u32::try_from(attempt).unwrap_or(0)))
            .collect();
        let m::ReturnsPage {
            details,
            next,
            more,
        } = page;
        let mut out = Vec::with_capacity(details.len());
        for d in details {
            let credited = matches!(d.result.outcome, BankOutcome::Credited);
            let key = (d.result.line_id, i64::from(d.result.attempt));
            // An earlier attempt's return, repeated exactly as first reported (a fetch
            // without a cursor relays every voucher's return again), is history, not news.
            // Anything else (a new report, a repeat of the latest attempt, a contradicting
            // one) goes to the kernel, which applies it once or records it as an anomaly.
            let superseded = latest
                .get(&d.result.line_id)
                .is_some_and(|l| *l > d.result.attempt);
            if superseded && before.get(&key) == Some(&credited) {
                continue;
            }
            out.push(d);
        }
        let rows: Vec<NewReturn<'_>> = out
            .iter()
            .map(|d| NewReturn {
                line_id: d.result.line_id,
                attempt: i64::from(d.result.attempt),
                voucher_no: &d.voucher_no,
                agent_bank: &bank,
                credited: matches!(d.result.outcome, BankOutcome::Credited),
                cross_bank: d.cross_bank,
                fee: d.fee,
                paid: d.paid,
                bank_date: &d.result.date,
            })
            .collect();
        self.store
            .hlj_record_returns(b.id, &rows)
            .await
            .map_err(store_err)?;
        drop(rows);
        Ok(m::ReturnsPage {
            details: out,
            next,
            more,
        })
    }
}

/// How many lines the platform reads (decrypted) at a time to write a plan.
const PLAN_PAGE: usize = 5_000;

/// At most how many details one plan or 5201 voucher message carries: a larger batch's plan
/// and voucher go in parts (`PartNo`/`PartCount`, messages.md), a few MB each, so neither
/// side (nor the archive) ever holds a province-scale document whole.
pub const PART_SIZE: usize = 20_000;

/// How many return details the platform asks for per page (`limit`): a page of a
/// province-scale order is a few MB, whatever the order's size.
pub const RETURNS_PAGE: usize = 5_000;

/// A cursor as a query value: the budget system's cursors are opaque; anything but the
/// unreserved characters of RFC 3986 is percent-encoded.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn status_of(n: &m::VoucherNotice, today: NaiveDate) -> Result<FundingStatus, PortError> {
    Ok(match n.status.as_str() {
        "pending_review" => FundingStatus::Pending {
            voucher_no: n.voucher_no.clone(),
        },
        "approved" | "sent" => FundingStatus::Funded {
            voucher_no: n.voucher_no.clone(),
            amount: n.pay_amt,
            date: today.to_string(),
        },
        "void" => FundingStatus::Refused {
            reason: format!("支付凭证{}已作废", n.voucher_no),
        },
        other => return Err(fail(format!("未知的凭证状态「{other}」"))),
    })
}

#[async_trait]
impl TreasuryPayment for BudgetSystem {
    async fn request_funding(&self, req: &FundingRequest) -> Result<FundingStatus, PortError> {
        let b = self.batch(&req.reference).await?;
        if req.amount != b.control.amount {
            return Err(fail("申请金额与批次控制数不符"));
        }
        match b.state {
            BatchState::Submitted => self.push_plan(&b).await,
            BatchState::PlanPushed => self.raise_request(&b).await,
            BatchState::FundingRequested => self.approve(&b).await,
            s => Err(fail(format!(
                "批次{}状态为「{}」，预算管理一体化系统没有对应的操作",
                b.id,
                s.label_zh()
            ))),
        }
    }

    async fn funding_status(&self, reference: &str) -> Result<FundingStatus, PortError> {
        // `reference` is a voucher number (the batch's treasury reference).
        let b = self.batch_of_ref(reference).await?;
        let n = self.voucher(Some(&b), &b.order_no, reference).await?;
        status_of(&n, self.date.get())
    }

    async fn refund(&self, req: &RefundRequest) -> Result<String, PortError> {
        let (reference, amount) = (&req.reference, req.amount);
        let b = self.batch_of_ref(reference).await?;
        let doc = self
            .call(
                Some(&b),
                &b.order_no,
                reference,
                ("refund_request", "refund_receipt"),
                ("POST", format!("/vouchers/{reference}/refunds")),
                Some(xml::encode(&m::refund_request(
                    &req.request_no,
                    amount,
                    &req.reason,
                ))),
            )
            .await?;
        let (no, refunded) = m::read_refund(&doc).map_err(fail)?;
        if refunded != amount {
            return Err(fail(format!(
                "退款回执金额{refunded}元与申请{amount}元不符"
            )));
        }
        Ok(no)
    }
}

/// What a delivery of a batch's voucher needs: the batch, its voucher and that voucher's
/// notice (its state), the expenditure function, the summary and the date.
struct Delivery {
    b: BatchRow,
    voucher: String,
    notice: m::VoucherNotice,
    exp: &'static str,
    summary: String,
    today: NaiveDate,
}

impl BudgetSystem {
    async fn delivery(&self, order_no: &str) -> Result<Delivery, PortError> {
        let b = self.batch(order_no).await?;
        let (_, voucher) = self.store.batch_refs(b.id).await.map_err(store_err)?;
        let voucher = voucher.ok_or_else(|| fail("批次尚无支付凭证号"))?;
        let notice = self.voucher(Some(&b), &b.order_no, &voucher).await?;
        let p = self.project(&b)?;
        let exp = if p.funding == FundingChannel::GrainRiskFund {
            self.dir.grain_expenditure_subject
        } else {
            ""
        };
        let summary = format!("{} {}", b.project_name, b.period);
        Ok(Delivery {
            b,
            voucher,
            notice,
            exp,
            summary,
            today: self.date.get(),
        })
    }

    /// Send part `part` (`(k, of)`, `None` for a whole voucher) of the original voucher: the
    /// details of these payees, with the whole voucher's count and amount.
    async fn send_part(
        &self,
        d: &Delivery,
        totals: (u64, Fen),
        part: Option<(u32, u32)>,
        payees: &[Payee<'_>],
    ) -> Result<Node, PortError> {
        let doc = m::voucher_5201_part_bytes(
            &d.notice,
            (&d.voucher, "", &d.summary, d.exp),
            d.today,
            totals,
            part,
            payees,
        );
        self.call(
            Some(&d.b),
            &d.b.order_no,
            &d.voucher,
            ("voucher_5201", "voucher_notice"),
            ("POST", format!("/vouchers/{}/send", d.voucher)),
            Some(doc),
        )
        .await
    }

    /// The 5201 voucher (or its re-payment) of a whole instruction.
    async fn deliver_whole(
        &self,
        d: &Delivery,
        ins: &PaymentInstruction,
    ) -> Result<String, PortError> {
        let b = &d.b;
        let periods: HashMap<i64, String> = self
            .store
            .hlj_line_attempts(b.id)
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|(id, _, period)| (id, period))
            .collect();
        let payees: Vec<Payee<'_>> = ins
            .lines
            .iter()
            .map(|l| Payee {
                line_id: l.line_id,
                attempt: l.attempt,
                region: "",
                name: &l.name,
                account: l.account.as_str(),
                bank: &l.bank,
                amount: l.amount,
                period: periods
                    .get(&l.line_id)
                    .map(String::as_str)
                    .unwrap_or(&b.period),
            })
            .collect();
        // First attempts are the approved voucher's own details: sent on it, also when the
        // voucher is already sent (a delivery repeated after an interruption; the budget
        // system answers a repeated send with the same details with its notice). Later
        // attempts are re-payments against it.
        let first = ins.lines.iter().all(|l| l.attempt == 1);
        match d.notice.status.as_str() {
            "approved" | "sent" if first => {
                // More than `part_size` details: the voucher in parts (messages.md), each
                // with the whole voucher's PayAmt and DetailCount.
                let total: Fen = payees.iter().map(|p| p.amount).sum();
                let parts: Vec<&[Payee<'_>]> = if payees.len() <= self.part_size {
                    vec![&payees[..]]
                } else {
                    payees.chunks(self.part_size).collect()
                };
                let of = u32::try_from(parts.len()).map_err(|_| fail("支付凭证部分过多"))?;
                let mut last = None;
                for (k, part) in parts.iter().enumerate() {
                    let no = u32::try_from(k + 1).unwrap_or(u32::MAX);
                    let r = self
                        .send_part(
                            d,
                            (payees.len() as u64, total),
                            (of > 1).then_some((no, of)),
                            part,
                        )
                        .await?;
                    last = Some(r);
                }
                let r = last.ok_or_else(|| fail("支付凭证没有内容"))?;
                Ok(m::read_notice(&r).map_err(fail)?.voucher_no)
            }
            "sent" => {
                let voucher = &d.voucher;
                let doc = m::voucher_5201_bytes(
                    &d.notice, "", voucher, &d.summary, d.exp, d.today, &payees,
                );
                let r = self
                    .call(
                        Some(b),
                        &b.order_no,
                        voucher,
                        ("repay_5201", "voucher_notice"),
                        ("POST", format!("/vouchers/{voucher}/repay")),
                        Some(doc),
                    )
                    .await?;
                Ok(m::read_notice(&r).map_err(fail)?.voucher_no)
            }
            other => Err(fail(format!(
                "支付凭证{}状态为「{other}」，不能发送代理银行",
                d.voucher
            ))),
        }
    }
}

#[async_trait]
impl BankAgent for BudgetSystem {
    /// Send the 5201 voucher with the payee details of these attempts: the approved voucher
    /// itself the first time, a re-payment voucher (`OriVoucherNo`) for corrected lines.
    async fn deliver(&self, ins: &PaymentInstruction) -> Result<String, PortError> {
        let d = self.delivery(&ins.order_no).await?;
        self.deliver_whole(&d, ins).await
    }

    fn delivers_in_pages(&self) -> bool {
        true
    }

    /// [`BankAgent::deliver`], the lines read a page at a time: the original voucher's own
    /// details (first attempts) are written and sent a part at a time as they are read, so a
    /// province-scale voucher is never held whole, neither its payees nor its XML. Anything
    /// else (a re-payment of corrected lines) is read whole and sent as before. The messages
    /// are those [`BankAgent::deliver`] sends, byte for byte.
    async fn deliver_paged(
        &self,
        ins: &PaymentInstruction,
        pages: &mut dyn InstructionPages,
    ) -> Result<String, PortError> {
        let d = self.delivery(&ins.order_no).await?;
        let mut buf = pages.next_page().await?.unwrap_or_default();
        let originals = matches!(d.notice.status.as_str(), "approved" | "sent")
            && buf.iter().all(|l| l.attempt == 1);
        if !originals {
            let mut whole = ins.clone();
            whole.lines = buf;
            while let Some(p) = pages.next_page().await? {
                whole.lines.extend(p);
            }
            return self.deliver_whole(&d, &whole).await;
        }
        let totals = (ins.count, ins.total);
        let size = self.part_size;
        let of = usize::try_from(ins.count)
            .map_err(|_| fail("支付凭证明细过多"))?
            .div_ceil(size)
            .max(1);
        let of = u32::try_from(of).map_err(|_| fail("支付凭证部分过多"))?;
        let mut done = false;
        let mut written = (0u64, Fen(0));
        let mut last = None;
        for k in 1..=of {
            while !done && buf.len() < size {
                match pages.next_page().await? {
                    Some(p) => buf.extend(p),
                    None => done = true,
                }
            }
            let rest = buf.split_off(buf.len().min(size));
            let part = std::mem::replace(&mut buf, rest);
            if part.iter().any(|l| l.attempt != 1) {
                return Err(fail("同一次发送中既有首次支付又有重新支付的明细"));
            }
            // The periods of the part's lines (by the range of their ids).
            let periods: HashMap<i64, String> = match (part.first(), part.last()) {
                (Some(a), Some(z)) => self
                    .store
                    .hlj_line_periods(d.b.id, a.line_id, z.line_id)
                    .await
                    .map_err(store_err)?
                    .into_iter()
                    .collect(),
                _ => HashMap::new(),
            };
            let payees: Vec<Payee<'_>> = part
                .iter()
                .map(|l| Payee {
                    line_id: l.line_id,
                    attempt: l.attempt,
                    region: "",
                    name: &l.name,
                    account: l.account.as_str(),
                    bank: &l.bank,
                    amount: l.amount,
                    period: periods
                        .get(&l.line_id)
                        .map(String::as_str)
                        .unwrap_or(&d.b.period),
                })
                .collect();
            written = (
                written.0 + payees.len() as u64,
                written.1 + payees.iter().map(|p| p.amount).sum::<Fen>(),
            );
            if k == of && (written != totals || !buf.is_empty()) {
                return Err(fail("支付凭证明细与发送的明细笔数、金额不符"));
            }
            let r = self
                .send_part(&d, totals, (of > 1).then_some((k, of)), &payees)
                .await?;
            last = Some(r);
        }
        if !done && pages.next_page().await?.is_some() {
            return Err(fail("支付凭证明细与发送的明细笔数、金额不符"));
        }
        let r = last.ok_or_else(|| fail("支付凭证没有内容"))?;
        Ok(m::read_notice(&r).map_err(fail)?.voucher_no)
    }

    async fn collect_results(&self, order_no: &str) -> Result<Vec<BankResult>, PortError> {
        Ok(self
            .returns(order_no)
            .await?
            .into_iter()
            .map(|d| d.result)
            .collect())
    }

    /// A page of [`RETURNS_PAGE`] returns after `cursor` (`GET /plans/{order}/returns?after=`).
    async fn collect_page(
        &self,
        order_no: &str,
        cursor: Option<&str>,
    ) -> Result<ResultPage, PortError> {
        let page = self
            .returns_page(order_no, cursor, Some(RETURNS_PAGE))
            .await?;
        Ok(ResultPage {
            results: page.details.into_iter().map(|d| d.result).collect(),
            next: page.next,
            more: page.more,
        })
    }
}
