//! The treasury agent bank (国库集中支付代理银行): receives 5201 direct-payment vouchers from the
//! budget system, pays each detail straight to the beneficiary's card account (黑财监〔2021〕30号
//! 二(三)三 "由国库集中支付业务代理银行将资金支付到受益人社会保障卡账户"), and returns the voucher with
//! the bank's return fields (pay date, paid amount, per-line failure reason).
//!
//! Fault model (seeded, per card account): a `fail_share` of accounts fail, 40% of them as
//! 账号错误 (fails for that account number until it is corrected), 35% as 账户休眠 (fails once;
//! the beneficiary then reactivates the account, so paying the same account again succeeds) and
//! 25% as 户名不符 (fails while the payee name stays the one first refused). Cross-bank payments
//! carry the fee the bank bears itself; the beneficiary always receives the full amount.
//!
//! Invariants: a voucher number is paid at most once (the same voucher again gets the same
//! receipt), a line's attempt is paid at most once, and a line already credited is never paid
//! again.

use super::xml::{self, El};
use super::{
    BankConfig, SimClock, error, fmt_amt, fnv, parse_amt, xml_bytes_response, xml_response, ymd,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Why a detail failed, as the bank reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    WrongAccount,
    Dormant,
    NameMismatch,
}

impl Failure {
    /// `XFailCode` on the wire (the kernel's `FailureReason` codes).
    pub fn code(self) -> &'static str {
        match self {
            Failure::WrongAccount => "wrong_account",
            Failure::Dormant => "dormant_account",
            Failure::NameMismatch => "name_mismatch",
        }
    }
    /// `XAddWord`: the bank's wording.
    pub fn words(self) -> &'static str {
        match self {
            Failure::WrongAccount => "账号错误，无此账户",
            Failure::Dormant => "账户休眠（久悬户），请持卡到网点激活",
            Failure::NameMismatch => "户名与账号不符",
        }
    }
}

/// One detail of a received voucher and what happened to it: where the detail's own fields
/// (echoed in the return) are in the bank's journal file, not its element tree (a
/// province-scale voucher's tree is ~1 KB a detail).
#[derive(Debug, Clone)]
struct Paid {
    /// The detail's own leaves (`Id` to `Remark`) as the return repeats them, GB18030 bytes
    /// encoded once at receipt (a province-scale return is written many times), kept in the
    /// [`Spool`]: a million of them would be some 200 MB in memory.
    own: Spooled,
    line_id: i64,
    attempt: u32,
    amount: i64,
    failure: Option<Failure>,
    cross_bank: bool,
}

impl Paid {
    /// The cross-bank fee the bank bore for it (a successful cross-bank payment only).
    fn fee(&self, cfg: &BankConfig) -> i64 {
        if self.cross_bank && self.failure.is_none() {
            cfg.cross_bank_fee_fen
        } else {
            0
        }
    }
}

/// One (line, attempt) the bank paid or tried to pay: the voucher that carried it (an index
/// into [`Payments::vouchers`]) and, in its top bit, whether it was credited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PayEntry {
    line: i64,
    attempt: u32,
    voucher: u32,
}

const CREDITED: u32 = 1 << 31;

/// Every (line, attempt) the bank paid or tried to, sorted by line and attempt, 16 bytes
/// each: which voucher paid an attempt (never paid twice) and whether a line was credited
/// (never paid again). A hash map of (line, attempt) to the voucher number and a set of the
/// credited lines were some 90 bytes an attempt (their tables sized to powers of two): a
/// province-scale run pays a million.
#[derive(Default)]
struct Payments {
    entries: Vec<PayEntry>,
    vouchers: Vec<Arc<str>>,
}

impl Payments {
    /// The entries of a line, in attempt order.
    fn of_line(&self, line: i64) -> &[PayEntry] {
        let from = self.entries.partition_point(|e| e.line < line);
        let to = from + self.entries[from..].partition_point(|e| e.line == line);
        &self.entries[from..to]
    }

    /// The voucher that paid (or tried to pay) this attempt.
    fn voucher_of(&self, line: i64, attempt: u32) -> Option<&str> {
        self.of_line(line)
            .iter()
            .find(|e| e.attempt == attempt)
            .and_then(|e| self.vouchers.get((e.voucher & !CREDITED) as usize))
            .map(|v| &**v)
    }

    /// Whether any attempt of the line was credited.
    fn credited(&self, line: i64) -> bool {
        self.of_line(line).iter().any(|e| e.voucher & CREDITED != 0)
    }

    /// Record a voucher's attempts (line, attempt, credited): none of them recorded before.
    fn record(&mut self, voucher: Arc<str>, attempts: impl Iterator<Item = (i64, u32, bool)>) {
        let v = u32::try_from(self.vouchers.len()).unwrap_or(u32::MAX) & !CREDITED;
        self.vouchers.push(voucher);
        let mut new: Vec<PayEntry> = attempts
            .map(|(line, attempt, credited)| PayEntry {
                line,
                attempt,
                voucher: if credited { v | CREDITED } else { v },
            })
            .collect();
        new.sort_unstable();
        if self
            .entries
            .last()
            .is_none_or(|l| new.first().is_none_or(|f| l < f))
        {
            self.entries.reserve_exact(new.len());
            self.entries.extend_from_slice(&new);
            return;
        }
        // A merge of the two sorted runs, into a table of exactly their size.
        let old = std::mem::take(&mut self.entries);
        let mut out = Vec::with_capacity(old.len() + new.len());
        let (mut a, mut b) = (old.into_iter().peekable(), new.into_iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x <= y => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, _) => b.next(),
            };
            match next {
                Some(e) => out.push(e),
                None => break,
            }
        }
        self.entries = out;
    }
}

#[derive(Debug, Clone)]
struct Received {
    /// The voucher's header (every element but its `DetailList`).
    voucher: El,
    ori: String,
    paid: Vec<Paid>,
    date: String,
    /// How many times details were released to the return journal.
    releases: u32,
    /// How many of `paid` (a prefix) were released.
    released: usize,
    /// The return journal: indexes into `paid` in the order the details were returned
    /// (repeats and all). A paged fetch answers a range of it.
    journal: Vec<u32>,
}

/// A stretch of the [`Spool`]: its offset and length.
#[derive(Debug, Clone, Copy)]
struct Spooled {
    at: u64,
    len: u32,
}

/// The bank's journal of received details on disk, as a bank keeps its records: an anonymous
/// file (unlinked as soon as it is open, so nothing is left behind), appended to at receipt
/// and read back by range when a return is written.
struct Spool {
    file: Option<std::fs::File>,
    end: u64,
    /// Bytes appended since the last write to the file.
    pending: Vec<u8>,
}

impl Default for Spool {
    fn default() -> Self {
        Spool {
            file: None,
            end: 0,
            pending: Vec::new(),
        }
    }
}

impl Spool {
    /// Append bytes (kept in memory until [`Spool::flush`]).
    fn push(&mut self, bytes: &[u8]) -> Spooled {
        let at = self.end + self.pending.len() as u64;
        self.pending.extend_from_slice(bytes);
        Spooled {
            at,
            len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
        }
    }

    /// Write what was appended to the file.
    fn flush(&mut self) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            self.file = Some(tempfile::tempfile()?);
        }
        if let Some(f) = self.file.as_mut() {
            f.seek(SeekFrom::Start(self.end))?;
            f.write_all(&self.pending)?;
        }
        self.end += self.pending.len() as u64;
        self.pending = Vec::new();
        Ok(())
    }

    /// Forget what was appended since the last flush (a voucher refused after its details
    /// were read).
    fn discard(&mut self) {
        self.pending = Vec::new();
    }

    /// The bytes of a stretch, appended to `out`.
    fn read(&mut self, s: Spooled, out: &mut Vec<u8>) -> std::io::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let len = s.len as usize;
        if s.at >= self.end {
            let from = usize::try_from(s.at - self.end).unwrap_or(usize::MAX);
            let part = self
                .pending
                .get(from..from.saturating_add(len))
                .ok_or_else(|| std::io::Error::other("spool range"))?;
            out.extend_from_slice(part);
            return Ok(());
        }
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("spool not open"))?;
        f.seek(SeekFrom::Start(s.at))?;
        let start = out.len();
        out.resize(start + len, 0);
        f.read_exact(&mut out[start..])
    }
}

#[derive(Default)]
struct BankState {
    vouchers: BTreeMap<String, Received>,
    /// (line, attempt) → voucher that paid it, and the lines credited (never paid again).
    payments: Payments,
    /// The details' own fields of every received voucher.
    spool: Spool,
    /// Vouchers received in parts, not yet complete.
    parts: HashMap<String, Parts>,
    /// Dormant accounts reactivated after their failure.
    reactivated: HashSet<String>,
    /// Account → the payee name the bank refused as not matching.
    refused_names: HashMap<String, String>,
    /// Refunded amount per original voucher.
    refunded: HashMap<String, i64>,
    refund_seq: u32,
    /// What failed in a voucher family (the voucher and its re-payments, latest attempt of
    /// each line), computed once after each received voucher: a refund per failed line of a
    /// province-scale voucher would otherwise walk the whole family each time.
    failed_in_family: HashMap<String, i64>,
    /// Refunds by the platform's request number: (voucher, amount, the receipt sent).
    refund_requests: HashMap<String, (String, i64, El)>,
}

struct Bank {
    cfg: BankConfig,
    clock: SimClock,
    state: Mutex<BankState>,
}

impl Bank {
    fn lock(&self) -> std::sync::MutexGuard<'_, BankState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How payments to `account` can fail, by the seeded fault model alone (see the module
    /// docs): `None` for an account that never fails.
    fn fault(&self, account: &str) -> Option<Failure> {
        let h = fnv(self.cfg.seed, &["acct", account]);
        let share = (self.cfg.fail_share.clamp(0.0, 1.0) * 1_000_000.0) as u64;
        if h % 1_000_000 >= share {
            return None;
        }
        Some(match (h >> 32) % 100 {
            0..40 => Failure::WrongAccount,
            40..75 => Failure::Dormant,
            _ => Failure::NameMismatch,
        })
    }

    /// The fate of a payment with this [`Bank::fault`] (see the module docs): a dormant
    /// account fails once, a name mismatch while the name stays the one refused. `payee` is
    /// the (account, name) of a detail whose fault depends on them.
    fn fate(
        &self,
        st: &mut BankState,
        fault: Option<Failure>,
        payee: Option<&(Box<str>, Box<str>)>,
    ) -> Option<Failure> {
        let (account, name) = match (fault, payee) {
            (None, _) => return None,
            (Some(Failure::WrongAccount), _) => return Some(Failure::WrongAccount),
            (Some(_), Some((a, n))) => (&**a, &**n),
            (Some(f), None) => return Some(f),
        };
        match fault {
            Some(Failure::Dormant) => {
                if st.reactivated.insert(account.to_owned()) {
                    Some(Failure::Dormant)
                } else {
                    None
                }
            }
            _ => match st.refused_names.get(account) {
                None => {
                    st.refused_names.insert(account.to_owned(), name.to_owned());
                    Some(Failure::NameMismatch)
                }
                Some(n) if n == name => Some(Failure::NameMismatch),
                Some(_) => None,
            },
        }
    }
}

/// The bank's router: `POST /vouchers`, `GET /returns/{voucher}`, `POST /refunds`.
pub fn router(cfg: BankConfig, clock: SimClock) -> Router {
    let bank = Arc::new(Bank {
        cfg,
        clock,
        state: Mutex::new(BankState::default()),
    });
    Router::new()
        .route("/vouchers", post(receive))
        .route("/returns/{no}", get(returns))
        .route("/refunds", post(refund))
        .route("/books", get(books))
        // A province-scale plan or voucher is larger than axum's default 2 MiB.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .with_state(bank)
}

/// The largest message the simulator accepts (a 1,000,000-line plan is some 300 MB of XML).
const MAX_MESSAGE_BYTES: usize = 1 << 30;

/// The bank's own books (`GET /books`, JSON, for tests and the operator's reconciliation):
/// every payment it made, by voucher, line and attempt, with the amount actually credited
/// (0 for a failed one), and the refunds per original voucher. A line credited twice would
/// show here twice, whatever the platform recorded.
async fn books(State(bank): State<Arc<Bank>>) -> Response {
    let st = bank.lock();
    let payments: Vec<serde_json::Value> = st
        .vouchers
        .iter()
        .flat_map(|(no, r)| {
            r.paid.iter().map(move |p| {
                serde_json::json!({
                    "voucher_no": no,
                    "line_id": p.line_id,
                    "attempt": p.attempt,
                    "amount_fen": p.amount,
                    "credited_fen": if p.failure.is_none() { p.amount } else { 0 },
                })
            })
        })
        .collect();
    axum::Json(serde_json::json!({"payments": payments, "refunded": st.refunded})).into_response()
}

fn bad(m: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid", m)
}

/// A parsed detail of a voucher (public for the fuzz targets, `tests/fuzz`).
pub fn detail_of(d: &El) -> Result<(i64, u32, i64), String> {
    let line: i64 = d
        .get("LineId")
        .parse()
        .map_err(|_| format!("明细LineId「{}」无效", d.get("LineId")))?;
    let attempt: u32 = d
        .get("Attempt")
        .parse()
        .map_err(|_| format!("明细Attempt「{}」无效", d.get("Attempt")))?;
    if attempt == 0 {
        return Err("明细Attempt须从1开始".into());
    }
    let acct = d.get("PayeeAcctNo");
    if !(12..=30).contains(&acct.len()) || !acct.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("明细{line}收款账号不是12至30位数字"));
    }
    if d.get("PayeeAcctName").is_empty() {
        return Err(format!("明细{line}收款人户名为空"));
    }
    let amt = parse_amt(d.get("PayAmt"))?;
    if amt <= 0 {
        return Err(format!("明细{line}金额须大于零"));
    }
    Ok((line, attempt, amt))
}

/// The parts received of a voucher sent in parts (`PartNo` of `PartCount`), by part.
struct Parts {
    count: u32,
    parts: BTreeMap<u32, Vec<Incoming>>,
}

/// A valid detail of a received voucher as read: its (line, attempt, amount), how it can
/// fail ([`Bank::fault`]) and, only when its fate depends on them (a dormant account, a name
/// mismatch: a few in a hundred), its account and name; its own fields in the spool. Some 48
/// bytes: a province-scale voucher's details are kept until all its parts have come.
struct Incoming {
    checked: (i64, u32, i64),
    fault: Option<Failure>,
    payee: Option<Box<(Box<str>, Box<str>)>>,
    cross_bank: bool,
    own: Spooled,
}

/// The details of one `VoucherBody` as read, and the first detail that was not valid.
#[derive(Default)]
struct BodyDetails {
    details: Vec<Incoming>,
    invalid: Option<String>,
}

async fn receive(State(bank): State<Arc<Bank>>, body: Bytes) -> Response {
    // Read detail by detail (a province-scale voucher is never a tree): per `VoucherBody`
    // (by position), the details of its first `Voucher`'s first `DetailList`, each one's own
    // fields written to the spool as they come; a voucher refused below leaves them unused.
    let mut incoming: Vec<BodyDetails> = Vec::new();
    let mut guard = bank.lock();
    let st = &mut *guard;
    let parsed = xml::parse_streaming(&body, "DetailList", "Detail", |open, d| {
        let first = open.len() == 4
            && open[0].name == "MOF"
            && open[1].name == "VoucherBody"
            && open[2].name == "Voucher"
            && open[1].child("Voucher").is_none()
            && open[2].child("DetailList").is_none();
        if !first {
            return Ok(());
        }
        let body_no = open[0].all("VoucherBody").count();
        if incoming.len() <= body_no {
            incoming.resize_with(body_no + 1, BodyDetails::default);
        }
        let checked = detail_of(&d);
        let (line, attempt, amount) = checked.clone().unwrap_or_default();
        let mut own = xml::Out::fragment();
        own.leaf(5, "Id", d.get("Id"));
        own.leaf(5, "LineId", &line.to_string());
        own.leaf(5, "Attempt", &attempt.to_string());
        own.leaf(5, "PayeeAcctName", d.get("PayeeAcctName"));
        own.leaf(5, "PayeeAcctNo", d.get("PayeeAcctNo"));
        own.leaf(5, "PayeeAcctBankName", d.get("PayeeAcctBankName"));
        own.leaf(5, "PayAmt", &fmt_amt(amount));
        own.leaf(5, "Remark", d.get("Remark"));
        let own = st.spool.push(&own.finish());
        let into = &mut incoming[body_no];
        match checked {
            Ok(checked) => {
                let fault = bank.fault(d.get("PayeeAcctNo"));
                let payee =
                    matches!(fault, Some(Failure::Dormant | Failure::NameMismatch)).then(|| {
                        Box::new((d.get("PayeeAcctNo").into(), d.get("PayeeAcctName").into()))
                    });
                into.details.push(Incoming {
                    checked,
                    fault,
                    payee,
                    cross_bank: d.get("PayeeAcctBankName") != bank.cfg.name,
                    own,
                });
            }
            Err(e) => {
                if into.invalid.is_none() {
                    into.invalid = Some(e);
                }
            }
        }
        Ok(())
    });
    let root = match parsed {
        Ok(r) => r,
        Err(e) => {
            st.spool.discard();
            return bad(e);
        }
    };
    let bodies: Vec<&El> = root.all("VoucherBody").collect();
    if root.name != "MOF" || bodies.is_empty() {
        st.spool.discard();
        return bad("不是MOF凭证报文 (not a MOF voucher message)");
    }
    incoming.resize_with(bodies.len(), BodyDetails::default);
    let date = ymd(bank.clock.today());
    let mut receipt = El::new("BankReceipt");
    // Whatever is refused below: the details read and not yet kept are dropped (a voucher
    // kept earlier in the same message wrote them to the file: they stay there unused).
    let refuse = |st: &mut BankState, r: Response| {
        st.spool.discard();
        r
    };
    for (vb, BodyDetails { details, invalid }) in bodies.into_iter().zip(incoming) {
        let Some(v) = vb.child("Voucher") else {
            return refuse(st, bad("VoucherBody缺少Voucher"));
        };
        let no = v.get("VoucherNo").to_owned();
        if no.is_empty() || v.get("VtCode") != "5201" {
            return refuse(st, bad("凭证号为空或凭证类型不是5201"));
        }
        let part = match super::part_of(v) {
            Ok(p) => p,
            Err(e) => return refuse(st, bad(e)),
        };
        if let Err(e) = parse_amt(v.get("PayAmt")) {
            return refuse(st, bad(e));
        }
        if v.child("DetailList").is_none() {
            return refuse(st, bad("缺少DetailList"));
        }
        if let Some(e) = invalid {
            return refuse(st, bad(e));
        }
        if part.1 == 1 {
            if let Err(r) = accept(&bank, st, v, &no, details, &date, &mut receipt) {
                return refuse(st, r);
            }
            continue;
        }
        // A voucher in parts: kept until all have come, then paid as a whole.
        let (k, n) = part;
        if let Some(prev) = st.vouchers.get(&no) {
            receipt.push(
                El::new("Voucher")
                    .with(El::leaf("VoucherNo", no.clone()))
                    .with(El::leaf("DetailCount", prev.paid.len().to_string()))
                    .with(El::leaf("AcceptDate", prev.date.clone()))
                    .with(El::leaf("Repeated", "1")),
            );
            continue;
        }
        if st.parts.get(&no).is_some_and(|p| p.count != n) {
            st.parts.remove(&no);
        }
        let mut seen = HashSet::new();
        for d in &details {
            let line = d.checked.0;
            if !seen.insert(line) {
                return refuse(st, bad(format!("明细{line}在凭证中重复")));
            }
        }
        if let Err(e) = st.spool.flush() {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "journal",
                format!("代理银行记账失败：{e}"),
            );
        }
        let staged = st.parts.entry(no.clone()).or_insert_with(|| Parts {
            count: n,
            parts: BTreeMap::new(),
        });
        staged.parts.insert(k, details);
        if staged.parts.len() < n as usize {
            receipt.push(
                El::new("Voucher")
                    .with(El::leaf("VoucherNo", no.clone()))
                    .with(El::leaf("PartNo", k.to_string()))
                    .with(El::leaf("PartCount", n.to_string()))
                    .with(El::leaf("Status", "receiving")),
            );
            continue;
        }
        let Some(all) = st.parts.remove(&no) else {
            continue;
        };
        let mut details: Vec<Incoming> = Vec::with_capacity(all.parts.values().map(Vec::len).sum());
        for part in all.parts.into_values() {
            details.extend(part);
        }
        if let Err(r) = accept(&bank, st, v, &no, details, &date, &mut receipt) {
            return refuse(st, r);
        }
    }
    st.spool.discard();
    xml_response(StatusCode::OK, &receipt)
}

/// A voucher's details (all of them: a whole voucher, or all its parts): checked as a whole
/// and paid, its receipt entry added. Nothing is recorded when it is refused.
fn accept(
    bank: &Bank,
    st: &mut BankState,
    v: &El,
    no: &str,
    details: Vec<Incoming>,
    date: &str,
    receipt: &mut El,
) -> Result<(), Response> {
    let pay_amt = parse_amt(v.get("PayAmt")).map_err(bad)?;
    let parsed = details;
    let mut sum: i64 = 0;
    for d in &parsed {
        sum = sum
            .checked_add(d.checked.2)
            .ok_or_else(|| bad("金额溢出"))?;
    }
    if parsed.is_empty() || sum != pay_amt {
        return Err(bad(format!(
            "明细合计{}与凭证金额{}不符 (details do not add up to PayAmt)",
            fmt_amt(sum),
            fmt_amt(pay_amt)
        )));
    }
    if let Some(prev) = st.vouchers.get(no) {
        let same = prev.paid.len() == parsed.len()
            && prev.paid.iter().zip(&parsed).all(|(p, d)| {
                let (l, a, m) = d.checked;
                p.line_id == l && p.attempt == a && p.amount == m
            });
        if !same {
            return Err(error(
                StatusCode::CONFLICT,
                "voucher_conflict",
                format!("凭证{no}已收到且内容不同 (voucher received before with other details)"),
            ));
        }
        receipt.push(
            El::new("Voucher")
                .with(El::leaf("VoucherNo", no))
                .with(El::leaf("DetailCount", prev.paid.len().to_string()))
                .with(El::leaf("AcceptDate", prev.date.clone()))
                .with(El::leaf("Repeated", "1")),
        );
        return Ok(());
    }
    let mut seen = HashSet::new();
    for (line, attempt, _) in parsed.iter().map(|d| &d.checked) {
        if !seen.insert(*line) {
            return Err(bad(format!("明细{line}在凭证中重复")));
        }
        if let Some(other) = st.payments.voucher_of(*line, *attempt) {
            return Err(error(
                StatusCode::CONFLICT,
                "duplicate_payment",
                format!("明细{line}第{attempt}次支付已在凭证{other}中办理，拒绝重复支付"),
            ));
        }
        if st.payments.credited(*line) {
            return Err(error(
                StatusCode::CONFLICT,
                "already_credited",
                format!("明细{line}已支付成功，拒绝重复支付"),
            ));
        }
    }
    // The details' own fields to the file before anything is recorded.
    st.spool.flush().map_err(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "journal",
            format!("代理银行记账失败：{e}"),
        )
    })?;
    let voucher_no: Arc<str> = no.into();
    let mut paid = Vec::with_capacity(parsed.len());
    for d in parsed {
        let (line, attempt, amount) = d.checked;
        let failure = bank.fate(st, d.fault, d.payee.as_deref());
        paid.push(Paid {
            own: d.own,
            line_id: line,
            attempt,
            amount,
            failure,
            cross_bank: d.cross_bank,
        });
    }
    st.payments.record(
        voucher_no,
        paid.iter()
            .map(|p| (p.line_id, p.attempt, p.failure.is_none())),
    );
    receipt.push(
        El::new("Voucher")
            .with(El::leaf("VoucherNo", no))
            .with(El::leaf("DetailCount", paid.len().to_string()))
            .with(El::leaf("AcceptDate", date)),
    );
    // The voucher's header, without its details nor (for one sent in parts) which part.
    let mut header = El::new(&v.name);
    header.attrs = v.attrs.clone();
    header.children = v
        .children
        .iter()
        .filter(|c| !matches!(c.name.as_str(), "DetailList" | "PartNo" | "PartCount"))
        .cloned()
        .collect();
    st.failed_in_family.clear();
    st.vouchers.insert(
        no.to_owned(),
        Received {
            voucher: header,
            ori: v.get("OriVoucherNo").to_owned(),
            paid,
            date: date.to_owned(),
            releases: 0,
            released: 0,
            journal: Vec::new(),
        },
    );
    Ok(())
}

/// Release details not yet returned to the voucher's return journal (a fetch that has seen
/// the whole journal asks for news): all of them, or with `partial` the first half on the
/// first release; shuffled with `reorder`; each twice (the copies after them) with
/// `duplicate`.
fn release(cfg: &BankConfig, no: &str, r: &mut Received) {
    let n = r.paid.len();
    if r.released >= n {
        return;
    }
    r.releases += 1;
    let upto = if cfg.partial && r.releases == 1 && n > 1 {
        n.div_ceil(2)
    } else {
        n
    };
    let mut items: Vec<u32> = (r.released..upto)
        .filter_map(|i| u32::try_from(i).ok())
        .collect();
    if cfg.reorder {
        let mut rng = rand::rngs::StdRng::seed_from_u64(fnv(
            cfg.seed,
            &["reorder", no, &r.releases.to_string()],
        ));
        items.shuffle(&mut rng);
    }
    // Exactly what is added (a province-scale journal doubling its table would keep up to
    // twice its size).
    r.journal
        .reserve_exact(items.len() * if cfg.duplicate { 2 } else { 1 });
    r.journal.extend_from_slice(&items);
    if cfg.duplicate {
        r.journal.extend_from_slice(&items);
    }
    r.released = upto;
}

/// The return voucher (回单) of one voucher: the voucher with the bank's return fields, for
/// the details of its return journal after position `after` (from the start without it), at
/// most `limit` (all without). A fetch from the journal's end releases what is new first.
/// The headers `X-Detail-Count` (details in this answer) and `X-More` (`1`: more of the
/// journal beyond them) let the budget system page without parsing the return.
async fn returns(
    State(bank): State<Arc<Bank>>,
    Path(no): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (after, limit) = match super::page_params(&q) {
        Ok(x) => x,
        Err(e) => return bad(e),
    };
    let mut guard = bank.lock();
    let BankState {
        vouchers, spool, ..
    } = &mut *guard;
    let Some(r) = vouchers.get_mut(&no) else {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_voucher",
            format!("本行未收到凭证{no}"),
        );
    };
    if after > r.journal.len() {
        return bad(format!(
            "游标{after}超出凭证{no}的回单（{}条）",
            r.journal.len()
        ));
    }
    if after == r.journal.len() {
        release(&bank.cfg, &no, r);
    }
    let r = &*r;
    let end = limit.map_or(r.journal.len(), |l| {
        after.saturating_add(l).min(r.journal.len())
    });
    let more = end < r.journal.len();
    let items: Vec<&Paid> = r.journal[after..end]
        .iter()
        .filter_map(|&i| r.paid.get(i as usize))
        .collect();
    // The successful details' total, each detail once however often it repeats here.
    let mut counted = HashSet::new();
    let paid_amt: i64 = r.journal[after..end]
        .iter()
        .filter(|&&i| counted.insert(i))
        .filter_map(|&i| r.paid.get(i as usize))
        .filter(|p| p.failure.is_none())
        .map(|p| p.amount)
        .sum();
    // Written as it goes: a province-scale return (every detail, repeated) is never a tree.
    let mut v = r.voucher.clone();
    v.set("XPayDate", r.date.clone());
    v.set("XPayAmt", fmt_amt(paid_amt));
    v.set("XDetailCount", items.len().to_string());
    let mut o = xml::Out::new();
    o.open(0, "MOF", &[]);
    o.leaf(1, "VoucherCount", "1");
    o.open(
        1,
        "VoucherBody",
        &[
            ("AdmDivCode", v.get("AdmDivCode")),
            ("StYear", v.get("StYear")),
            ("VtCode", "5201"),
            ("VoucherNo", &no),
        ],
    );
    o.open(2, &v.name, &[]);
    for c in &v.children {
        o.el(c, 3);
    }
    o.open(3, "DetailList", &[]);
    // The bank's wordings, encoded once per return.
    let words = |w: &str| xml::gb18030(w).into_owned();
    let success = words("支付成功");
    let bearer = words("代理银行");
    let failed: Vec<(Failure, Vec<u8>)> = [
        Failure::WrongAccount,
        Failure::Dormant,
        Failure::NameMismatch,
    ]
    .into_iter()
    .map(|f| (f, words(f.words())))
    .collect();
    let mut own = Vec::new();
    for p in &items {
        o.open(4, "Detail", &[]);
        own.clear();
        if let Err(e) = spool.read(p.own, &mut own) {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "journal",
                format!("代理银行读取记账失败：{e}"),
            );
        }
        o.raw(&own);
        o.leaf(5, "XPayDate", &r.date);
        o.leaf(
            5,
            "XPayAmt",
            &fmt_amt(if p.failure.is_none() { p.amount } else { 0 }),
        );
        o.leaf(5, "XPayFlag", if p.failure.is_none() { "1" } else { "2" });
        o.leaf(5, "XFailCode", p.failure.map(Failure::code).unwrap_or(""));
        let word = match p.failure {
            None => &success,
            Some(f) => failed
                .iter()
                .find(|(g, _)| *g == f)
                .map(|(_, w)| w)
                .unwrap_or(&success),
        };
        o.leaf_encoded(5, "XAddWord", word);
        o.leaf(5, "XCrossBank", if p.cross_bank { "1" } else { "0" });
        o.leaf(5, "XFee", &fmt_amt(p.fee(&bank.cfg)));
        o.leaf_encoded(5, "XFeeBearer", &bearer);
        o.close(4, "Detail");
    }
    o.close(3, "DetailList");
    o.close(2, &v.name);
    o.close(1, "VoucherBody");
    o.close(0, "MOF");
    let count = items.len().to_string();
    let mut resp = xml_bytes_response(StatusCode::OK, o.finish());
    let h = resp.headers_mut();
    if let Ok(v) = axum::http::HeaderValue::from_str(&count) {
        h.insert("x-detail-count", v);
    }
    h.insert(
        "x-more",
        axum::http::HeaderValue::from_static(if more { "1" } else { "0" }),
    );
    resp
}

/// Money that could not be paid goes back to the paying account (原渠道退回): at most what
/// failed in the voucher family (the voucher and its re-payments) and was not refunded yet.
/// A request repeating an earlier one's `RequestNo` (a retry after a lost answer or a
/// crash) is answered with that refund's receipt and refunds nothing; the same number for
/// another voucher or amount is refused (`refund_request_reused`).
async fn refund(State(bank): State<Arc<Bank>>, body: Bytes) -> Response {
    let req = match xml::parse(&body) {
        Ok(r) if r.name == "RefundRequest" => r,
        Ok(_) => return bad("不是RefundRequest报文"),
        Err(e) => return bad(e),
    };
    let no = req.get("VoucherNo").to_owned();
    let amount = match parse_amt(req.get("Amount")) {
        Ok(a) if a > 0 => a,
        Ok(_) => return bad("退款金额须大于零"),
        Err(e) => return bad(e),
    };
    let request_no = req.get("RequestNo").to_owned();
    let mut st = bank.lock();
    if let Some((v, a, receipt)) = st.refund_requests.get(&request_no) {
        if *v == no && *a == amount {
            return xml_response(StatusCode::OK, receipt);
        }
        return error(
            StatusCode::CONFLICT,
            "refund_request_reused",
            format!(
                "退款申请号{request_no}已用于凭证{v}的{}元退款，与本次申请（凭证{no}，{}元）不符",
                fmt_amt(*a),
                fmt_amt(amount)
            ),
        );
    }
    let Some(orig) = st.vouchers.get(&no) else {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_voucher",
            format!("本行未收到凭证{no}"),
        );
    };
    let pay_acct = orig.voucher.get("PayAcctName").to_owned();
    let cached = st.failed_in_family.get(&no).copied();
    let failed = match cached {
        Some(f) => f,
        None => {
            // Latest attempt of every line of the family.
            let mut latest: HashMap<i64, (u32, i64, bool)> = HashMap::new();
            for r in st.vouchers.values().filter(|r| r_family(r, &no)) {
                for p in &r.paid {
                    let e = latest.entry(p.line_id).or_insert((
                        p.attempt,
                        p.amount,
                        p.failure.is_some(),
                    ));
                    if p.attempt >= e.0 {
                        *e = (p.attempt, p.amount, p.failure.is_some());
                    }
                }
            }
            let f: i64 = latest.values().filter(|v| v.2).map(|v| v.1).sum();
            st.failed_in_family.insert(no.clone(), f);
            f
        }
    };
    let done = st.refunded.get(&no).copied().unwrap_or(0);
    if amount > failed - done {
        return error(
            StatusCode::CONFLICT,
            "refund_exceeds",
            format!(
                "退款{}元超过凭证{no}未支付成功且未退回的金额{}元",
                fmt_amt(amount),
                fmt_amt(failed - done)
            ),
        );
    }
    *st.refunded.entry(no.clone()).or_default() += amount;
    st.refund_seq += 1;
    let date = ymd(bank.clock.today());
    let receipt = El::new("RefundReceipt")
        .with(El::leaf(
            "RefundNo",
            format!("TK{date}{:04}", st.refund_seq),
        ))
        .with(El::leaf("VoucherNo", no.clone()))
        .with(El::leaf("RequestNo", request_no.clone()))
        .with(El::leaf("Amount", fmt_amt(amount)))
        .with(El::leaf("RefundDate", date))
        .with(El::leaf("ReturnAcctName", pay_acct))
        .with(El::leaf("Reason", req.get("Reason")));
    if !request_no.is_empty() {
        st.refund_requests
            .insert(request_no, (no, amount, receipt.clone()));
    }
    xml_response(StatusCode::OK, &receipt)
}

fn r_family(r: &Received, no: &str) -> bool {
    r.voucher.get("VoucherNo") == no || r.ori == no
}
