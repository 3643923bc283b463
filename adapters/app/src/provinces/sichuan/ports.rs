//! Sichuan's ports: the kernel's `TreasuryPayment`, `BankAgent` and `DisclosureChannel` over
//! the province's protocol adapters (`ykt_http::sichuan`) and the store, applying the
//! province's rules at the point where the generic cycle runner calls them.

use super::Sichuan;
use super::ops::{self, SichuanError, day};
use super::render;
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use ykt_http::sichuan::bank::{FileDropBank, InstructionHeader, InstructionRecord, ResultFile};
use ykt_http::sichuan::treasury::{HttpTreasury, funding_status};
use ykt_http::sichuan::voucher::{ReceiptStatus, Voucher};
use ykt_kernel::batch::{BatchState, LineState};
use ykt_kernel::ports::{
    BankAgent, BankOutcome, BankResult, DisclosureChannel, FailureReason, FundingRequest,
    FundingStatus, LookupRecord, Notice, PaymentInstruction, PortError, RefundRequest, ResultPage,
    TreasuryPayment,
};
use ykt_kernel::{Fen, RegionCode};
use ykt_province_sichuan::rules::{
    self, BankCredit, Publicised, PublicityWindow, post_publicity_deadline,
};
use ykt_store::payments::BatchRow;
use ykt_store::sichuan::{BankFile, BankLine, Publicity, PublicityLine, Verification};

const TREASURY: &str = "国库集中支付";
const BANK: &str = "合作银行";
const BOARD: &str = "公示公开";

/// Lines read and decrypted at a time when a large batch is written out or listed.
const PAYEE_PAGE: usize = 5_000;

fn port(system: &str, e: SichuanError) -> PortError {
    match e {
        SichuanError::Port(p) => p,
        other => PortError::new(system, other.to_string(), !other.is_refusal()),
    }
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

// ---- treasury ----------------------------------------------------------------------------

/// The treasury as Sichuan uses it: finance's procedural review gates the authorised-payment
/// voucher; the voucher funds the department's zero-balance account; red-letter vouchers
/// return money to the treasury.
pub struct SichuanTreasury {
    sc: Sichuan,
    http: HttpTreasury,
}

impl SichuanTreasury {
    pub fn new(sc: Sichuan, http: HttpTreasury) -> SichuanTreasury {
        SichuanTreasury { sc, http }
    }

    /// Send a red-letter voucher returning money from the zero-balance account to the
    /// treasury and record it; the treasury's return reference.
    pub async fn send_return(&self, b: &BatchRow, v: &Voucher) -> Result<String, SichuanError> {
        self.send_return_for(b, v, None).await
    }

    /// [`SichuanTreasury::send_return`] for a line's refund, recorded with the refund's
    /// request number (what a retry of the refund finds it by).
    async fn send_return_for(
        &self,
        b: &BatchRow,
        v: &Voucher,
        request_no: Option<&str>,
    ) -> Result<String, SichuanError> {
        // A voucher of this number sent before for this batch (a retry): the same bytes
        // again, so the treasury answers with its receipt instead of taking the money back
        // twice. Looked up by its number, not by reading the batch's vouchers.
        let earlier = self
            .sc
            .store
            .sichuan_voucher(&v.voucher_no)
            .await?
            .filter(|x| x.batch_id == b.id);
        let xml = earlier.map(|x| x.xml).unwrap_or_else(|| v.to_xml());
        let r = self.http.submit_xml(&v.voucher_no, xml.clone()).await?;
        ykt_store::failpoints::hit("sichuan.voucher.after_port_call");
        self.sc
            .store
            .sichuan_record_voucher_for(
                &ykt_store::sichuan::Voucher {
                    voucher_no: v.voucher_no.clone(),
                    batch_id: b.id,
                    kind: "return".into(),
                    amount: v.pay_amt,
                    vou_date: day(v.vou_date),
                    sha256: sha256_hex(&xml),
                    xml,
                    status: status_text(r.status).into(),
                    status_note: r.desc.clone(),
                    paid_on: r.pay_date.map(day),
                },
                request_no,
            )
            .await?;
        match r.status {
            ReceiptStatus::Paid => Ok(r.return_no.unwrap_or(r.voucher_no)),
            _ => Err(ops::refused(format!(
                "国库未受理退回凭证{}：{}",
                v.voucher_no, r.desc
            ))),
        }
    }

    async fn fund(&self, req: &FundingRequest) -> Result<FundingStatus, SichuanError> {
        let b = ops::batch_by_order(&self.sc, &req.reference)
            .await?
            .ok_or_else(|| ops::refused(format!("没有发放单号为{}的批次", req.reference)))?;
        // 乐山办法 三(四)1: summary = detail = declared, or back to the department.
        let (figures, plan) = ops::review_figures(&self.sc, &b).await?;
        let findings = ops::findings(&figures, plan.as_ref());
        if !findings.is_empty() {
            return Ok(FundingStatus::Refused {
                reason: format!("程序性复核未通过：{}", findings.join("；")),
            });
        }
        // 川财办〔2018〕61号 三(三): the department pays through its cooperating bank under a
        // signed agency agreement.
        let Some(a) = ops::agreement_for(&self.sc, &b, self.sc.today()).await? else {
            return Ok(FundingStatus::Refused {
                reason: ops::no_agreement(&b),
            });
        };
        self.sc.store.set_batch_bank(b.id, &a.bank).await?;
        // A voucher already sent for this batch and not rejected (a retried step): the same
        // bytes again, so the treasury answers with its receipt and never funds twice.
        let sent = self
            .sc
            .store
            .sichuan_vouchers(b.id)
            .await?
            .into_iter()
            .rfind(|v| v.kind == "plan" && v.status != "rejected");
        let (voucher_no, xml, amount, vou_date) = match sent {
            Some(v) => (v.voucher_no, v.xml, v.amount, v.vou_date),
            None => {
                let v = ops::plan_voucher(&self.sc, &b, &a, figures.declared).await?;
                (v.voucher_no.clone(), v.to_xml(), v.pay_amt, day(v.vou_date))
            }
        };
        let r = self.http.submit_xml(&voucher_no, xml.clone()).await?;
        ykt_store::failpoints::hit("sichuan.voucher.after_port_call");
        self.sc
            .store
            .sichuan_record_voucher(&ykt_store::sichuan::Voucher {
                voucher_no,
                batch_id: b.id,
                kind: "plan".into(),
                amount,
                vou_date,
                sha256: sha256_hex(&xml),
                xml,
                status: status_text(r.status).into(),
                status_note: r.desc.clone(),
                paid_on: r.pay_date.map(day),
            })
            .await?;
        Ok(funding_status(&r))
    }
}

fn status_text(s: ReceiptStatus) -> &'static str {
    match s {
        ReceiptStatus::Accepted => "accepted",
        ReceiptStatus::Paid => "paid",
        ReceiptStatus::Rejected => "rejected",
    }
}

#[async_trait]
impl TreasuryPayment for SichuanTreasury {
    async fn request_funding(&self, req: &FundingRequest) -> Result<FundingStatus, PortError> {
        self.fund(req).await.map_err(|e| port(TREASURY, e))
    }

    async fn funding_status(&self, reference: &str) -> Result<FundingStatus, PortError> {
        let r = self.http.status(reference).await?;
        self.sc
            .store
            .sichuan_voucher_status(
                reference,
                status_text(r.status),
                &r.desc,
                r.pay_date.map(day).as_deref(),
            )
            .await
            .map_err(|e| port(TREASURY, e.into()))?;
        Ok(funding_status(&r))
    }

    /// A refund through the original channel (乐山办法 四(五)2: "将涉及资金从单位零余额账户退回
    /// 财政金库"): a red-letter voucher against the batch's funding voucher. The voucher's
    /// number is the treasury's key: the refund's request number is written into the voucher's
    /// purpose, and a retry of the same refund re-sends the voucher that carries it (the
    /// treasury answers a repeated voucher with its receipt); a first try is numbered by the
    /// batch's refunds so far, which only the refund's own commit changes.
    async fn refund(&self, req: &RefundRequest) -> Result<String, PortError> {
        let go = async {
            let reference = &req.reference;
            let id = self
                .sc
                .store
                .sichuan_voucher_batch(reference)
                .await?
                .ok_or_else(|| ops::refused(format!("没有凭证号为{reference}的拨付凭证")))?;
            let b = ops::batch(&self.sc, id).await?;
            // By index (issue #8: reading and searching every voucher of the batch, and
            // listing the province's unpaid items, for each refund made a million-line
            // cycle's corrections quadratic): the return voucher carrying this request, and
            // the number of the batch's lines refunded so far (its entries in the ledger of
            // unpaid items).
            let earlier = self
                .sc
                .store
                .sichuan_refund_voucher(b.id, &req.request_no)
                .await?;
            let n =
                usize::try_from(self.sc.store.sichuan_refunded_count(b.id).await?).unwrap_or(0) + 1;
            let reason = format!("{}（退款申请号{}）", req.reason, req.request_no);
            let mut v =
                ops::return_voucher(&self.sc, &b, reference, req.amount, "TH", n, &reason).await?;
            if let Some(x) = earlier {
                if x.amount != -req.amount {
                    return Err(ops::refused(format!(
                        "退款申请号{}已用于{}元的退回凭证{}，与本次申请的{}元不符",
                        req.request_no, -x.amount, x.voucher_no, req.amount
                    )));
                }
                v.voucher_no = x.voucher_no;
            }
            self.send_return_for(&b, &v, Some(&req.request_no)).await
        };
        go.await.map_err(|e: SichuanError| port(TREASURY, e))
    }
}

// ---- bank --------------------------------------------------------------------------------

/// The cooperating bank as Sichuan uses it: the payment instruction file with everything the
/// bank needs (payee's ID, phone, SMS text, the agency agreement), result files read back
/// whole.
pub struct SichuanBank {
    sc: Sichuan,
    drop: FileDropBank,
}

impl SichuanBank {
    pub fn new(sc: Sichuan, drop: FileDropBank) -> SichuanBank {
        SichuanBank { sc, drop }
    }

    async fn send(&self, ins: &PaymentInstruction) -> Result<String, SichuanError> {
        let sc = &self.sc;
        let b = ops::batch_by_order(sc, &ins.order_no)
            .await?
            .ok_or_else(|| ops::refused(format!("没有发放单号为{}的批次", ins.order_no)))?;
        let a = ops::agreement_for(sc, &b, sc.today())
            .await?
            .ok_or_else(|| ops::refused(ops::no_agreement(&b)))?;
        let project = sc.province.catalog().find(&b.project).cloned();
        let date = sc.today();
        let date_zh = date.format("%Y年%-m月%-d日").to_string();
        let h = InstructionHeader {
            order_no: b.order_no.clone(),
            pay_date: date,
            department: a.department.clone(),
            zb_account_no: a.zb_account_no.clone(),
            zb_account_name: a.zb_account_name.clone(),
            agreement_no: a.agreement_no.clone(),
            bank: a.bank.clone(),
            project_code: b.project.clone(),
            project_name: b.project_name.clone(),
        };
        // Written as it is built, a page of payees at a time (issue #8: the payees of the
        // whole batch, every record with its SMS text and the file's text were held at once).
        let mut w = self.drop.begin_instruction(
            &h,
            ins.lines.len() as u64,
            ins.lines.iter().map(|l| l.amount).sum(),
            ins.lines.iter().map(|l| (l.line_id, l.attempt)).collect(),
        )?;
        for page in ins.lines.chunks(PAYEE_PAGE) {
            let ids: Vec<i64> = page.iter().map(|l| l.line_id).collect();
            let payees = sc.store.sichuan_payees_of(b.id, &ids).await?;
            for l in page {
                let p = payees
                    .get(&l.line_id)
                    .ok_or_else(|| ops::refused(format!("明细{}不在批次中", l.line_id)))?;
                let receipt = p.proxy_kind.as_deref() == Some("代领");
                let sms = match &project {
                    Some(pr) => sc.province.sms_text(pr, l.amount, &date_zh),
                    None => format!(
                        "您的{}{}元已于{date_zh}发放至社会保障卡账户。",
                        b.project_name, l.amount
                    ),
                };
                w.push(&InstructionRecord {
                    line_id: l.line_id,
                    attempt: l.attempt,
                    holder: if receipt {
                        p.proxy_name.clone().unwrap_or_default()
                    } else {
                        p.name.clone()
                    },
                    id_no: p.resident_id.clone(),
                    account: l.account.as_str().to_owned(),
                    card_bank: l.bank.clone(),
                    amount: l.amount,
                    phone: p.phone.clone().unwrap_or_default(),
                    beneficiary: if receipt {
                        p.name.clone()
                    } else {
                        String::new()
                    },
                    proxy_kind: p.proxy_kind.clone().unwrap_or_default(),
                    sms,
                })?;
            }
        }
        let w = w.finish()?;
        ykt_store::failpoints::hit("sichuan.bank_file.after_write");
        if !w.already {
            sc.store
                .sichuan_record_bank_file(
                    &BankFile {
                        id: 0,
                        batch_id: b.id,
                        direction: "instruction".into(),
                        file_name: w.file_name.clone(),
                        sha256: w.sha256.clone(),
                        line_count: i64::try_from(w.count).unwrap_or(i64::MAX),
                        amount: w.total,
                        status: "sent".into(),
                        note: format!("代发协议{}，合作银行{}", a.agreement_no, a.bank),
                        on_date: day(date),
                    },
                    &[],
                    "system",
                )
                .await?;
        }
        Ok(w.file_name)
    }

    /// Take the result files of `order_no` waiting in the drop: each checked whole, then
    /// recorded with its lines (read again a line at a time, never held whole) and moved
    /// out of the drop; a bad one recorded as refused and a receipt telling the bank why.
    /// Their results are applied from the record, a page at a time
    /// ([`SichuanBank::collect_page`]).
    async fn take_result_files(&self, batch_id: i64, order_no: &str) -> Result<(), SichuanError> {
        let sc = &self.sc;
        let files = self.drop.scan_results(order_no)?;
        if files.is_empty() {
            return Ok(());
        }
        let recorded: HashMap<String, BankFile> = sc
            .store
            .sichuan_bank_files(batch_id)
            .await?
            .into_iter()
            .filter(|f| f.direction == "result")
            .map(|f| (f.file_name.clone(), f))
            .collect();
        let today = day(sc.today());
        for f in files {
            let name = f.file_name().to_owned();
            if let Some(r) = recorded.get(&name) {
                // Read and recorded before, not yet answered (a crash in between): finish what
                // the first reading did. A file refused whole gets its rejection receipt now,
                // or the bank would never send it complete and its lines would stay in flight.
                if r.status == "rejected" {
                    self.drop.reject(&name, &r.note)?;
                } else {
                    self.drop.archive(&name)?;
                }
                continue;
            }
            let record = |file_name: String, sha256: String| BankFile {
                id: 0,
                batch_id,
                direction: "result".into(),
                file_name,
                sha256,
                line_count: 0,
                amount: Fen(0),
                status: String::new(),
                note: String::new(),
                on_date: today.clone(),
            };
            let (file, reason) = match f {
                ResultFile::Rejected {
                    file_name,
                    sha256,
                    reason,
                } => (
                    BankFile {
                        status: "rejected".into(),
                        note: reason.clone(),
                        ..record(file_name, sha256)
                    },
                    Some(reason),
                ),
                ResultFile::Accepted {
                    file_name,
                    sha256,
                    count,
                    total,
                    ..
                } => {
                    let repeat_of = sc.store.sichuan_accepted_result(&sha256).await?;
                    (
                        BankFile {
                            line_count: i64::try_from(count).unwrap_or(i64::MAX),
                            amount: total,
                            status: if repeat_of.is_some() {
                                "repeat"
                            } else {
                                "accepted"
                            }
                            .into(),
                            note: match &repeat_of {
                                Some(first) => format!("与已接收的{first}内容相同，不重复入账"),
                                None => String::new(),
                            },
                            ..record(file_name, sha256)
                        },
                        None,
                    )
                }
            };
            let recorded = if reason.is_some() {
                sc.store
                    .sichuan_record_bank_file(&file, &[], "system")
                    .await
            } else {
                // A repeated file's lines are recorded too (its status keeps them out of
                // every total), so that applying them counts them as the duplicates they are.
                let Some(records) =
                    self.drop
                        .read_result(&file.file_name, order_no, &file.sha256)?
                else {
                    continue; // taken meanwhile by another collection
                };
                let lines = records.map(|r| {
                    r.map(|r| BankLine {
                        line_id: r.line_id,
                        attempt: i64::from(r.attempt),
                        amount: r.amount,
                        credited: r.failure.is_none(),
                        reason: r.failure.map(|f| f.as_str().to_owned()),
                        value_date: day(r.value_date),
                        sms_sent: r.sms_sent,
                    })
                });
                sc.store
                    .sichuan_record_bank_file_read(&file, lines, "system")
                    .await
            };
            if taken_by_another(&recorded) {
                continue;
            }
            recorded?;
            match reason {
                Some(reason) => self.drop.reject(&file.file_name, &reason)?,
                None => self.drop.archive(&file.file_name)?,
            }
        }
        Ok(())
    }

    /// A page of the results of `order_no` recorded after `cursor` (file, line, attempt),
    /// after taking what the bank has sent ([`SichuanBank::take_result_files`]). The cursor
    /// is a position in the record, so results recorded but not applied (a crash in
    /// between) are applied by the next collection, and a page is the same whatever the
    /// size of the batch.
    async fn collect_page(
        &self,
        order_no: &str,
        cursor: Option<&str>,
    ) -> Result<ResultPage, SichuanError> {
        let b = ops::batch_by_order(&self.sc, order_no)
            .await?
            .ok_or_else(|| ops::refused(format!("没有发放单号为{order_no}的批次")))?;
        self.take_result_files(b.id, order_no).await?;
        let after = cursor.map(parse_cursor).transpose()?;
        let rows = self
            .sc
            .store
            .sichuan_result_page(b.id, after, RESULTS_PAGE)
            .await?;
        let more = rows.len() == RESULTS_PAGE;
        let next = match rows.last() {
            Some((file, l)) => Some(format!("{file}:{}:{}", l.line_id, l.attempt)),
            None => cursor.map(str::to_owned),
        };
        let results = rows
            .into_iter()
            .map(|(_, l)| BankResult {
                order_no: order_no.to_owned(),
                line_id: l.line_id,
                attempt: u32::try_from(l.attempt).unwrap_or(0),
                amount: l.amount,
                outcome: if l.credited {
                    BankOutcome::Credited
                } else {
                    BankOutcome::Failed {
                        reason: l
                            .reason
                            .as_deref()
                            .and_then(FailureReason::parse)
                            .unwrap_or(FailureReason::Other),
                    }
                },
                date: l.value_date,
            })
            .collect();
        Ok(ResultPage {
            results,
            next,
            more,
        })
    }
}

/// How many recorded results a collection applies in one transaction.
const RESULTS_PAGE: usize = 10_000;

/// A results cursor `file:line:attempt` ([`SichuanBank::collect_page`]).
fn parse_cursor(c: &str) -> Result<(i64, i64, i64), SichuanError> {
    let mut it = c.split(':').map(str::parse::<i64>);
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(Ok(f)), Some(Ok(l)), Some(Ok(a)), None) => Ok((f, l, a)),
        _ => Err(ops::refused(format!(
            "回盘位置「{c}」无效 (bad results cursor)"
        ))),
    }
}

/// A result file another collection recorded first (two polls at once: the file names are
/// unique): that collection applies and archives it, this one leaves it alone.
fn taken_by_another(recorded: &Result<i64, ykt_store::StoreError>) -> bool {
    matches!(recorded, Err(e) if e.is_conflict())
}

#[async_trait]
impl BankAgent for SichuanBank {
    async fn deliver(&self, instruction: &PaymentInstruction) -> Result<String, PortError> {
        self.send(instruction).await.map_err(|e| port(BANK, e))
    }

    async fn collect_results(&self, order_no: &str) -> Result<Vec<BankResult>, PortError> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = BankAgent::collect_page(self, order_no, cursor.as_deref()).await?;
            all.extend(page.results);
            if !page.more || page.next == cursor {
                return Ok(all);
            }
            cursor = page.next;
        }
    }

    async fn collect_page(
        &self,
        order_no: &str,
        cursor: Option<&str>,
    ) -> Result<ResultPage, PortError> {
        SichuanBank::collect_page(self, order_no, cursor)
            .await
            .map_err(|e| port(BANK, e))
    }
}

// ---- disclosure --------------------------------------------------------------------------

/// The publicity boards: village lists and township totals before payment (for the configured
/// period, objections resolved before the township submits), and again after payment, checked
/// against the bank's credits.
pub struct SichuanDisclosure {
    sc: Sichuan,
}

impl SichuanDisclosure {
    pub fn new(sc: Sichuan) -> SichuanDisclosure {
        SichuanDisclosure { sc }
    }

    async fn publish_batch(&self, b: &BatchRow) -> Result<String, SichuanError> {
        match b.state {
            BatchState::Draft => pre_publicity(&self.sc, b).await,
            BatchState::Publicity => close_publicity(&self.sc, b).await,
            BatchState::Settled => post_publicity(&self.sc, b).await,
            s => Err(ops::refused(format!(
                "批次状态为「{}」，没有需要公示的内容",
                s.label_zh()
            ))),
        }
    }
}

#[async_trait]
impl DisclosureChannel for SichuanDisclosure {
    async fn publish(&self, notice: &Notice) -> Result<String, PortError> {
        let batch = match notice.id.strip_suffix("-result") {
            Some(order) => ops::batch_by_order(&self.sc, order)
                .await
                .map_err(|e| port(BOARD, e))?,
            None => None,
        };
        match batch {
            Some(b) => self.publish_batch(&b).await.map_err(|e| port(BOARD, e)),
            None => self.sc.store.publish(notice).await,
        }
    }

    async fn withdraw(&self, notice_id: &str) -> Result<(), PortError> {
        self.sc.store.withdraw(notice_id).await
    }

    async fn publish_records(&self, records: &[LookupRecord]) -> Result<u64, PortError> {
        self.sc.store.publish_records(records).await
    }
}

/// A line as the publicity lists show it: masked name and ID, and the remark on household
/// head, custody or receipt proxy (乐山办法 五: "在资金发放公示中，也要分别注明领取人和实际享受人
/// 的姓名").
pub fn publicity_line(
    sc: &Sichuan,
    l: &ykt_store::payments::LineRow,
    household: bool,
) -> PublicityLine {
    let mask = sc.province.mask_policy();
    let proxy = l
        .proxy_name
        .as_deref()
        .map(|n| mask.name(n))
        .unwrap_or_default();
    let (id_masked, note) = match l.proxy_kind.as_deref() {
        Some("代领") => (
            "无身份证".to_owned(),
            format!(
                "实际享受人{}，领取人{proxy}（代为领取协议已备案）",
                mask.name(&l.name)
            ),
        ),
        Some("代管") => (
            mask.id(l.resident_id.as_str()),
            format!(
                "{}社保卡由{}代管（代管协议已备案）",
                if household { "户主；" } else { "" },
                proxy
            ),
        ),
        _ => (
            mask.id(l.resident_id.as_str()),
            if household {
                "户主".into()
            } else {
                String::new()
            },
        ),
    };
    PublicityLine {
        line_id: l.id,
        village: ops::village_of(&l.region),
        name_masked: mask.name(&l.name),
        id_masked,
        note,
        amount: l.amount,
        excluded: false,
    }
}

fn household(sc: &Sichuan, b: &BatchRow) -> bool {
    sc.province
        .catalog()
        .find(&b.project)
        .is_some_and(|p| p.basis == ykt_kernel::catalog::PaymentBasis::Household)
}

#[allow(clippy::too_many_arguments)]
fn notice(
    b: &BatchRow,
    id: String,
    kind: &str,
    region: &str,
    title: String,
    body: String,
    on: &str,
    until: Option<String>,
) -> Result<Notice, SichuanError> {
    Ok(Notice {
        id,
        kind: kind.into(),
        region: RegionCode::parse(region).map_err(|e| ops::refused(e.to_string()))?,
        project_name: b.project_name.clone(),
        title,
        body,
        published_on: on.to_owned(),
        until,
    })
}

fn township_of(village: &str) -> String {
    RegionCode::parse(village)
        .ok()
        .and_then(|r| r.ancestor(ykt_kernel::RegionLevel::Township))
        .map(|r| r.full())
        .unwrap_or_else(|| village.to_owned())
}

/// A batch's line ids in line order, and grouped by village (in village order, each in line
/// order), read without decrypting anything (eight bytes a line, twice).
async fn villages(
    sc: &Sichuan,
    b: &BatchRow,
) -> Result<(Vec<i64>, BTreeMap<String, Vec<i64>>), SichuanError> {
    let mut village: HashMap<String, String> = HashMap::new();
    let mut by: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let rows = sc.store.line_regions(b.id).await?;
    let mut order = Vec::with_capacity(rows.len());
    for (id, region) in rows {
        let v = village
            .entry(region)
            .or_insert_with_key(|r| ops::village_of(r));
        match by.get_mut(v.as_str()) {
            Some(ids) => ids.push(id),
            None => {
                by.insert(v.clone(), vec![id]);
            }
        }
        order.push(id);
    }
    Ok((order, by))
}

/// The pre-payment publicity (乐山办法 四(二)1, 三(二)2): one masked, printable list per village
/// (the detail) and one summary per township (totals per village), posted from today for the
/// configured number of days.
async fn pre_publicity(sc: &Sichuan, b: &BatchRow) -> Result<String, SichuanError> {
    if sc.store.sichuan_publicity(b.id, "pre").await?.is_some() {
        // Published already (a retried step): the boards keep the first lists.
        return Ok(format!("{}-pre", b.order_no));
    }
    let today = sc.today();
    let window = PublicityWindow::new(today, sc.settings.publicity_days);
    let hh = household(sc, b);
    // A village's lines at a time, each page read and decrypted when its list is written,
    // and each list published when complete (issue #8: the batch decrypted whole, with a
    // masked line each and every list's text, was held at once).
    let (order, by_village) = villages(sc, b).await?;
    let mut places = ops::Places::default();
    let mut notices = 0i64;
    let (mut line_count, mut total) = (0i64, Fen(0));
    let mut townships: BTreeMap<String, Vec<(String, String, usize, Fen)>> = BTreeMap::new();
    for (village, ids) in &by_village {
        let place = places.village(sc, village).await;
        let township = township_of(village);
        let tname = places.name(sc, &township).await;
        let mut body = render::pre_village_head(b, &place, &window);
        let (mut n, mut amount) = (0usize, Fen(0));
        for page in ids.chunks(PAYEE_PAGE) {
            for l in sc.store.lines_by_id(b.id, page).await? {
                let pl = publicity_line(sc, &l, hh);
                n += 1;
                amount += pl.amount;
                body.push_str(&render::pre_village_row(n, &pl));
            }
        }
        body.push_str(&render::pre_village_foot(b, &tname, n, amount, hh));
        townships.entry(township.clone()).or_default().push((
            village.clone(),
            places.name(sc, village).await,
            n,
            amount,
        ));
        let n_ = notice(
            b,
            format!("{}-pre-{village}", b.order_no),
            "pre_publicity",
            village,
            format!(
                "{place} {} {} 发放前公示",
                b.project_name,
                render::period_zh(&b.period)
            ),
            body,
            &day(today),
            Some(day(window.ends)),
        )?;
        sc.store.publish(&n_).await?;
        notices += 1;
        line_count += n as i64;
        total += amount;
    }
    drop(by_village);
    for (township, villages) in &townships {
        let tname = places.name(sc, township).await;
        let n_ = notice(
            b,
            format!("{}-pre-summary-{township}", b.order_no),
            "pre_publicity_summary",
            township,
            format!(
                "{tname} {} {} 发放前公示（分村汇总）",
                b.project_name,
                render::period_zh(&b.period)
            ),
            render::township_summary(b, &tname, villages, Some(&window), None),
            &day(today),
            Some(day(window.ends)),
        )?;
        sc.store.publish(&n_).await?;
        notices += 1;
    }
    let record = Publicity {
        batch_id: b.id,
        stage: "pre".into(),
        starts_on: day(window.starts),
        ends_on: day(window.ends),
        closed_on: None,
        notices,
        line_count,
        amount: total,
    };
    // The masked lines recorded in one transaction, a page at a time in line order.
    if let Some(mut w) = sc.store.sichuan_begin_publicity(&record).await? {
        for page in order.chunks(PAYEE_PAGE) {
            let lines: Vec<PublicityLine> = sc
                .store
                .lines_by_id(b.id, page)
                .await?
                .iter()
                .map(|l| publicity_line(sc, l, hh))
                .collect();
            w.add(&lines).await?;
        }
        w.finish(&record, "system").await?;
    }
    Ok(format!("{}-pre", b.order_no))
}

/// The end of the pre-payment publicity (乐山办法 四(二)1: "公示期满无异议的……连同公开公示佐证
/// 材料报送"): refused while the period runs or an objection is open; otherwise the publicity
/// statement (what was posted, the objections and how each was resolved) is issued with the
/// township's submission.
async fn close_publicity(sc: &Sichuan, b: &BatchRow) -> Result<String, SichuanError> {
    let today = sc.today();
    let p = sc
        .store
        .sichuan_publicity(b.id, "pre")
        .await?
        .ok_or_else(|| {
            ops::refused("该批次尚未进行发放前公示 (no pre-payment publicity on record)")
        })?;
    let ends = chrono::NaiveDate::parse_from_str(&p.ends_on, "%Y-%m-%d")
        .map_err(|_| ops::refused("公示期记录无效"))?;
    let window = PublicityWindow {
        starts: chrono::NaiveDate::parse_from_str(&p.starts_on, "%Y-%m-%d").unwrap_or(ends),
        ends,
    };
    if !window.is_over(today) {
        return Err(ops::refused(format!(
            "公示期为{}至{}，{}尚未期满，乡镇不能报送 (the publicity period has not ended)",
            p.starts_on,
            p.ends_on,
            day(today)
        )));
    }
    let objections = sc.store.sichuan_objections(b.id).await?;
    let open: Vec<String> = objections
        .iter()
        .filter(|o| o.status == "open")
        .map(|o| format!("异议{}", o.id))
        .collect();
    if !open.is_empty() {
        return Err(ops::refused(format!(
            "尚有{}条异议未处理（{}），处理完毕后方可报送 (objections still open)",
            open.len(),
            open.join("、")
        )));
    }
    // Only the lines the statement names (the objections' and those taken out), not the
    // batch's whole list.
    let targets: Vec<i64> = objections.iter().filter_map(|o| o.line_id).collect();
    let mut lines = sc.store.sichuan_publicity_lines_of(b.id, &targets).await?;
    lines.extend(sc.store.sichuan_publicity_excluded(b.id).await?);
    lines.sort_by_key(|l| l.line_id);
    lines.dedup_by_key(|l| l.line_id);
    let mut places = ops::Places::default();
    let county = places.name(sc, &b.region).await;
    let body = render::publicity_statement(b, &county, &p, &lines, &objections, b.control, today);
    let n = notice(
        b,
        format!("{}-publicity-closed", b.order_no),
        "publicity_statement",
        &b.region,
        format!(
            "{} {} {} 发放前公示情况说明",
            county,
            b.project_name,
            render::period_zh(&b.period)
        ),
        body,
        &day(today),
        None,
    )?;
    sc.store.publish(&n).await?;
    sc.store.sichuan_close_publicity(b.id, &day(today)).await?;
    Ok(n.id)
}

/// The post-payment publicity (乐山办法 四(六)): within five days of payment, the village lists
/// of what was actually paid and when, the township totals per village, and the dual
/// verification of what was publicised against what the bank credited, each difference
/// flagged and recorded.
async fn post_publicity(sc: &Sichuan, b: &BatchRow) -> Result<String, SichuanError> {
    let today = sc.today();
    // The dual verification a page of publicised lines at a time, with the credits of the
    // same lines: the differences come out in line order as from the whole lists (issue #8:
    // the batch's credits and publicised lines, and a map of every line's first credit,
    // were held at once).
    let mut diffs = Vec::new();
    let (mut credited, mut credited_count) = (Fen(0), 0i64);
    let (mut publicised_total, mut publicised_count) = (Fen(0), 0i64);
    let mut paid_on: Option<chrono::NaiveDate> = None;
    let mut after = i64::MIN;
    loop {
        let page = sc
            .store
            .sichuan_publicised_page(b.id, after, PAYEE_PAGE)
            .await?;
        // The last page takes every credit after it too (a credit never publicised).
        let upto = match page.last() {
            Some((line, _)) if page.len() == PAYEE_PAGE => *line,
            _ => i64::MAX,
        };
        let credits: Vec<BankCredit> = sc
            .store
            .sichuan_bank_credits_between(b.id, after, upto)
            .await?
            .into_iter()
            .filter_map(|(line_id, amount, date)| {
                Some(BankCredit {
                    line_id,
                    amount,
                    date: chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").ok()?,
                })
            })
            .collect();
        let publicised: Vec<Publicised> = page
            .into_iter()
            .map(|(line_id, amount)| Publicised { line_id, amount })
            .collect();
        diffs.extend(rules::dual_verification(&publicised, &credits));
        for c in &credits {
            credited += c.amount;
            credited_count += 1;
            paid_on = paid_on.max(Some(c.date));
        }
        for p in &publicised {
            publicised_total += p.amount;
            publicised_count += 1;
        }
        if upto == i64::MAX {
            break;
        }
        after = upto;
    }
    let paid_on = paid_on.unwrap_or(today);
    let deadline = post_publicity_deadline(paid_on);
    let hh = household(sc, b);
    let mut places = ops::Places::default();
    // A village's lines at a time, its list published when complete.
    let (_, by_village) = villages(sc, b).await?;
    let mut notices = 0i64;
    let mut townships: BTreeMap<String, Vec<(String, String, usize, Fen)>> = BTreeMap::new();
    let mut unpaid_by_township: BTreeMap<String, usize> = BTreeMap::new();
    for (village, ids) in &by_village {
        let place = places.village(sc, village).await;
        let township = township_of(village);
        let mut body = render::post_village_head(b, &place);
        let (mut i, mut n, mut t) = (0usize, 0usize, Fen(0));
        let (mut credited_n, mut credited_t) = (0usize, Fen(0));
        for page in ids.chunks(PAYEE_PAGE) {
            // Each line's first credit (in file order): the page's, by line id.
            let first_credit = sc.store.sichuan_first_credits(b.id, page).await?;
            for l in sc.store.lines_by_id(b.id, page).await? {
                let line = render::PaidLine {
                    line: publicity_line(sc, &l, hh),
                    state: l.state,
                    paid_on: first_credit
                        .get(&l.id)
                        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()),
                };
                i += 1;
                if let Some(a) = render::paid(&line) {
                    n += 1;
                    t += a;
                }
                if line.state == LineState::Credited {
                    credited_n += 1;
                    credited_t += line.line.amount;
                }
                body.push_str(&render::post_village_row(i, &line));
            }
        }
        body.push_str(&render::post_village_foot(b, n, t, hh));
        townships.entry(township.clone()).or_default().push((
            village.clone(),
            places.name(sc, village).await,
            credited_n,
            credited_t,
        ));
        *unpaid_by_township.entry(township).or_default() += i - credited_n;
        let n_ = notice(
            b,
            format!("{}-post-{village}", b.order_no),
            "post_publicity",
            village,
            format!(
                "{place} {} {} 发放结果公示",
                b.project_name,
                render::period_zh(&b.period)
            ),
            body,
            &day(today),
            None,
        )?;
        sc.store.publish(&n_).await?;
        notices += 1;
    }
    drop(by_village);
    for (township, villages) in &townships {
        let tname = places.name(sc, township).await;
        let n_ = notice(
            b,
            format!("{}-post-summary-{township}", b.order_no),
            "post_publicity_summary",
            township,
            format!(
                "{tname} {} {} 发放结果公示（分村汇总）",
                b.project_name,
                render::period_zh(&b.period)
            ),
            render::township_summary(
                b,
                &tname,
                villages,
                None,
                Some(unpaid_by_township.get(township).copied().unwrap_or(0)),
            ),
            &day(today),
            None,
        )?;
        sc.store.publish(&n_).await?;
        notices += 1;
    }
    sc.store
        .sichuan_record_post_publicity(
            &Publicity {
                batch_id: b.id,
                stage: "post".into(),
                starts_on: day(today),
                ends_on: day(deadline),
                closed_on: None,
                notices,
                line_count: credited_count,
                amount: credited,
            },
            "system",
        )
        .await?;
    sc.store
        .sichuan_record_verification(
            &Verification {
                batch_id: b.id,
                paid_on: day(paid_on),
                deadline: day(deadline),
                published_on: day(today),
                on_time: today <= deadline,
                publicised: (publicised_count, publicised_total),
                credited: (credited_count, credited),
                differences: serde_json::to_string(&diffs).unwrap_or_else(|_| "[]".into()),
            },
            "system",
        )
        .await?;
    Ok(format!("{}-post", b.order_no))
}
