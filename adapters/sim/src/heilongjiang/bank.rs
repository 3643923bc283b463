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

/// One detail of a received voucher and what happened to it: the detail's own fields (echoed
/// in the return), not its element tree (a province-scale voucher's tree is ~1 KB a detail).
#[derive(Debug, Clone)]
struct Paid {
    /// The detail's own leaves (`Id` to `Remark`) as the return repeats them, GB18030 bytes
    /// encoded once at receipt: a province-scale return is written many times.
    own: Box<[u8]>,
    line_id: i64,
    attempt: u32,
    amount: i64,
    failure: Option<Failure>,
    cross_bank: bool,
    fee: i64,
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

#[derive(Default)]
struct BankState {
    vouchers: BTreeMap<String, Received>,
    /// (line, attempt) → voucher that paid it.
    attempts: HashMap<(i64, u32), String>,
    /// Lines credited (never paid again).
    credited: HashSet<i64>,
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

    /// The fate of a payment to `account` for `name` (see the module docs).
    fn fate(&self, st: &mut BankState, account: &str, name: &str) -> Option<Failure> {
        let h = fnv(self.cfg.seed, &["acct", account]);
        let share = (self.cfg.fail_share.clamp(0.0, 1.0) * 1_000_000.0) as u64;
        if h % 1_000_000 >= share {
            return None;
        }
        match (h >> 32) % 100 {
            0..40 => Some(Failure::WrongAccount),
            40..75 => {
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

async fn receive(State(bank): State<Arc<Bank>>, body: Bytes) -> Response {
    let root = match xml::parse(&body) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let bodies: Vec<&El> = root.all("VoucherBody").collect();
    if root.name != "MOF" || bodies.is_empty() {
        return bad("不是MOF凭证报文 (not a MOF voucher message)");
    }
    let date = ymd(bank.clock.today());
    let mut receipt = El::new("BankReceipt");
    for vb in bodies {
        let Some(v) = vb.child("Voucher") else {
            return bad("VoucherBody缺少Voucher");
        };
        let no = v.get("VoucherNo").to_owned();
        if no.is_empty() || v.get("VtCode") != "5201" {
            return bad("凭证号为空或凭证类型不是5201");
        }
        let pay_amt = match parse_amt(v.get("PayAmt")) {
            Ok(a) => a,
            Err(e) => return bad(e),
        };
        let Some(list) = v.child("DetailList") else {
            return bad("缺少DetailList");
        };
        let mut parsed = Vec::new();
        let mut sum: i64 = 0;
        for d in list.all("Detail") {
            match detail_of(d) {
                Ok(x) => {
                    sum = match sum.checked_add(x.2) {
                        Some(s) => s,
                        None => return bad("金额溢出"),
                    };
                    parsed.push((d, x));
                }
                Err(e) => return bad(e),
            }
        }
        if parsed.is_empty() || sum != pay_amt {
            return bad(format!(
                "明细合计{}与凭证金额{}不符 (details do not add up to PayAmt)",
                fmt_amt(sum),
                fmt_amt(pay_amt)
            ));
        }
        let mut st = bank.lock();
        if let Some(prev) = st.vouchers.get(&no) {
            let same = prev.paid.len() == parsed.len()
                && prev.paid.iter().zip(&parsed).all(|(p, (_, (l, a, m)))| {
                    p.line_id == *l && p.attempt == *a && p.amount == *m
                });
            if !same {
                return error(
                    StatusCode::CONFLICT,
                    "voucher_conflict",
                    format!(
                        "凭证{no}已收到且内容不同 (voucher received before with other details)"
                    ),
                );
            }
            receipt.push(
                El::new("Voucher")
                    .with(El::leaf("VoucherNo", no.clone()))
                    .with(El::leaf("DetailCount", prev.paid.len().to_string()))
                    .with(El::leaf("AcceptDate", prev.date.clone()))
                    .with(El::leaf("Repeated", "1")),
            );
            continue;
        }
        let mut seen = HashSet::new();
        for (_, (line, attempt, _)) in &parsed {
            if !seen.insert(*line) {
                return bad(format!("明细{line}在凭证中重复"));
            }
            if let Some(other) = st.attempts.get(&(*line, *attempt)) {
                return error(
                    StatusCode::CONFLICT,
                    "duplicate_payment",
                    format!("明细{line}第{attempt}次支付已在凭证{other}中办理，拒绝重复支付"),
                );
            }
            if st.credited.contains(line) {
                return error(
                    StatusCode::CONFLICT,
                    "already_credited",
                    format!("明细{line}已支付成功，拒绝重复支付"),
                );
            }
        }
        let mut paid = Vec::with_capacity(parsed.len());
        for (d, (line, attempt, amount)) in parsed {
            let account = d.get("PayeeAcctNo").to_owned();
            let failure = bank.fate(&mut st, &account, d.get("PayeeAcctName"));
            let cross_bank = d.get("PayeeAcctBankName") != bank.cfg.name;
            st.attempts.insert((line, attempt), no.clone());
            if failure.is_none() {
                st.credited.insert(line);
            }
            let mut own = xml::Out::fragment();
            own.leaf(5, "Id", d.get("Id"));
            own.leaf(5, "LineId", &line.to_string());
            own.leaf(5, "Attempt", &attempt.to_string());
            own.leaf(5, "PayeeAcctName", d.get("PayeeAcctName"));
            own.leaf(5, "PayeeAcctNo", &account);
            own.leaf(5, "PayeeAcctBankName", d.get("PayeeAcctBankName"));
            own.leaf(5, "PayAmt", &fmt_amt(amount));
            own.leaf(5, "Remark", d.get("Remark"));
            paid.push(Paid {
                own: own.finish().into_boxed_slice(),
                line_id: line,
                attempt,
                amount,
                failure,
                cross_bank,
                fee: if cross_bank && failure.is_none() {
                    bank.cfg.cross_bank_fee_fen
                } else {
                    0
                },
            });
        }
        receipt.push(
            El::new("Voucher")
                .with(El::leaf("VoucherNo", no.clone()))
                .with(El::leaf("DetailCount", paid.len().to_string()))
                .with(El::leaf("AcceptDate", date.clone())),
        );
        let mut header = El::new(&v.name);
        header.attrs = v.attrs.clone();
        header.children = v
            .children
            .iter()
            .filter(|c| c.name != "DetailList")
            .cloned()
            .collect();
        st.failed_in_family.clear();
        st.vouchers.insert(
            no,
            Received {
                voucher: header,
                ori: v.get("OriVoucherNo").to_owned(),
                paid,
                date: date.clone(),
                releases: 0,
                released: 0,
                journal: Vec::new(),
            },
        );
    }
    xml_response(StatusCode::OK, &receipt)
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
    let mut st = bank.lock();
    let Some(r) = st.vouchers.get_mut(&no) else {
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
    for p in &items {
        o.open(4, "Detail", &[]);
        o.raw(&p.own);
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
        o.leaf(5, "XFee", &fmt_amt(p.fee));
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
