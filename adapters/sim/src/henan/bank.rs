//! An agent bank (代发金融机构) of the bank-pull model: a real HTTP client of the platform's
//! bank interface (`/henan/bank/v1`, see `provinces/henan/README.md`).
//!
//! For each order it pulls the detail by order number (第二十二条) — a streamed GB18030 CSV,
//! resumed after the last line received when the connection drops, or JSON pages —, credits
//! the cards, sends each card holder an SMS with the project's four-character short name, the
//! amount and the time (第八条(五)), posts the results back line by line (第二十三条), hands over
//! its results for the round and keeps a ledger per project for the monthly and annual
//! statements (第二十六条).
//!
//! Which lines fail is the bank's own business, decided from the seed when it first sees an
//! order's lines: explicitly (`fail`: so many lines per reason) and at random (`fail_rate`). A
//! failure follows the real causes: a wrong account or a closed account fails until the account
//! is corrected, a name mismatch until the name is, a dormant account only on the first attempt
//! (the holder reactivates it). The bank never credits a line and attempt twice: pulling the
//! same line again gives the result it already decided.
//!
//! Faults (seeded): repeated posts, posts in shuffled order and in chunks, a connection dropped
//! mid-pull, a hand-over one line short; and, to test the platform's judgement, results held
//! back, a result for a line the order does not have, amounts one fen off, a post cut short, a
//! bank that pulls and never answers. [`BankSim::set_faults`] changes them between rounds.

use crate::server::SimServer;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::{Datelike, NaiveDate};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ykt_kernel::Fen;
use ykt_kernel::batch::Totals;
use ykt_kernel::ports::FailureReason;

/// What the simulator got wrong, or what the platform refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("模拟银行{bank}：{message}")]
pub struct SimError {
    pub bank: String,
    pub message: String,
}

/// The faults the bank injects.
#[derive(Debug, Clone, Default)]
pub struct BankFaults {
    /// Lines failed on their first attempt: how many per reason.
    pub fail: Vec<(FailureReason, usize)>,
    /// Share of the other lines failed on their first attempt, reason drawn at random among
    /// wrong account, dormant account and closed account.
    pub fail_rate: f64,
    /// Share of result posts sent twice.
    pub repeat_rate: f64,
    /// Post the results in shuffled order.
    pub shuffle: bool,
    /// With `shuffle`: how far a result may move, in lines of the pulled order (0: anywhere
    /// in the order). A bank processing a province-scale file reports it roughly in file
    /// order, each delivery a few thousand lines with its own order scrambled; a result moving
    /// anywhere in a million-line order is the adversarial case (every post then touches as
    /// many random pages of the platform's tables as it has results).
    pub shuffle_window: usize,
    /// Results per post (0: all in one post).
    pub chunk: usize,
    /// On the first pull of each order, drop the connection after this many lines.
    pub drop_after: Option<usize>,
    /// Hand over a credited total one line short (the first hand-over of each order).
    pub handover_short: bool,
    /// This many lines of each pull (the lowest line ids) held back: neither credited nor
    /// reported this time (their results are missing).
    pub withhold: usize,
    /// One more result in the first post, for a line the order does not have (9999999).
    pub unknown_line: bool,
    /// Every posted amount one fen more than the line's.
    pub wrong_amount: bool,
    /// The first post's body cut in half (a transfer cut short); posted whole after the
    /// platform refuses it.
    pub truncate_post: bool,
    /// Pull, then post nothing and hand nothing over (the bank does not answer).
    pub silent: bool,
    /// Post the results but hand nothing over in this run (a bank that hands over at the end
    /// of its day): the next run hands over what it owes.
    pub defer_handover: bool,
}

/// How the bank is set up.
#[derive(Debug, Clone)]
pub struct BankSimConfig {
    /// The platform's base URL (`http://127.0.0.1:8080`).
    pub platform: String,
    /// The bank's code on the platform.
    pub bank: String,
    /// The bank's interface token.
    pub token: String,
    /// The handler (经办人) who stamps hand-overs.
    pub handler: String,
    /// The bank's business date (value date of credits).
    pub today: NaiveDate,
    pub seed: u64,
    pub faults: BankFaults,
    /// `None`: pull the streamed CSV; `Some(n)`: pull JSON pages of `n` lines.
    pub page: Option<usize>,
}

/// An SMS the bank sent (the account masked: this is a log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sms {
    pub order_no: String,
    pub line_id: i64,
    pub account_masked: String,
    pub text: String,
    pub sent_at: String,
}

/// One pull as the bank saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullLog {
    pub order_no: String,
    /// `stream` or `page`.
    pub mode: &'static str,
    pub after: i64,
    pub lines: usize,
    /// Whether the transfer reached its end (`结束` line, or the last page).
    pub complete: bool,
}

/// A line as pulled (the bank's own data: the full account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledLine {
    pub order_no: String,
    pub line_id: i64,
    pub attempt: i64,
    pub name: String,
    pub account: String,
    pub bank: String,
    pub amount: Fen,
    pub period: String,
    pub region: String,
}

/// How many pulled lines and SMS the simulator keeps for [`BankSim::pulled`] and
/// [`BankSim::sms`], and how many bytes of received files for [`BankSim::files`]: its journal
/// for the demo's artifacts and the tests. Beyond it only the books the bank needs go on
/// (outcomes, ledger, hand-overs), so a province-scale order (a million lines) does not keep
/// every line's name, account and text in memory twice over.
pub const JOURNAL_LINES: usize = 20_000;
/// See [`JOURNAL_LINES`].
pub const JOURNAL_FILE_BYTES: usize = 8 << 20;

/// A line as the bank works on it: what deciding, crediting and reporting need. The whole
/// pulled line is kept beside it only while the journal has room.
#[derive(Debug, Clone)]
struct Line {
    line_id: i64,
    attempt: i64,
    amount: Fen,
    /// [`fnv`] of the name and of the account: what deciding needs of them.
    name_fp: u64,
    account_fp: u64,
    full: Option<Box<PulledLine>>,
}

/// One result as posted (field order: alphabetical, as the JSON maps it replaced).
#[derive(Debug, Clone, serde::Serialize)]
struct PostedResult<'a> {
    amount: String,
    attempt: i64,
    date: &'a str,
    line_id: i64,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sms: Option<PostedSms>,
}

#[derive(Debug, Clone, serde::Serialize)]
struct PostedSms {
    sent_at: String,
    text: String,
}

/// What processing an order did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderReport {
    pub order_no: String,
    pub pulled: usize,
    pub credited: Totals,
    pub failed: Totals,
    pub posts: usize,
    pub repeated: usize,
    pub dropped: bool,
    /// The platform's answer to the hand-over.
    pub handover: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Credited,
    Failed(FailureReason),
}

impl Outcome {
    /// As the books write it: `credited`, or the failure's reason code.
    fn as_str(&self) -> &'static str {
        match self {
            Outcome::Credited => "credited",
            Outcome::Failed(r) => r.as_str(),
        }
    }
}

#[derive(Debug)]
struct BankState {
    rng: StdRng,
    /// Lines that fail their first attempt: reason, and fingerprints of the account and name
    /// that failed.
    fate: HashMap<i64, (FailureReason, String, String)>,
    decided: HashSet<String>,
    outcomes: HashMap<(i64, i64), Outcome>,
    /// 台账: credited per (project code, month).
    ledger: BTreeMap<(String, String), Totals>,
    sms: Vec<Sms>,
    pulls: Vec<PullLog>,
    pulled: Vec<PulledLine>,
    /// The CSV files as received (order, bytes).
    files: Vec<(String, Vec<u8>)>,
    dropped: HashSet<String>,
    /// Orders handed over at least once.
    handed: HashSet<String>,
    /// True totals of each hand-over: (order, seq) → (credited, failed).
    handovers: HashMap<(String, i64), (Totals, Totals)>,
    /// Results posted (or being posted) since the order's last acknowledged hand-over:
    /// (line, attempt) → (credited, amount). The next hand-over covers all of them, whether
    /// or not an earlier one whose answer never came included them.
    unhanded: HashMap<String, Unhanded>,
    /// A hand-over sent whose answer (the 200) never came, per order: sent again, with the
    /// same number and totals, before anything else is posted for the order.
    unanswered: HashMap<String, SentHandover>,
    /// The bank's last hand-over number (its own sequence, across orders).
    handover_no: i64,
    reports: Vec<OrderReport>,
    clock: u32,
}

/// An order's results awaiting a hand-over: (line, attempt) → (credited, amount), in key
/// order. A sorted vector rather than a `BTreeMap`: a province-scale order's results arrive
/// in ascending order, which leaves a B-tree's nodes about half full (≈ 60 bytes a result
/// against these 32), and they are only ever added in bulk, summed and removed in bulk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Unhanded(Vec<((i64, i64), (bool, Fen))>);

impl Unhanded {
    /// Add results; a key already held takes the later value, as a map's `insert` does.
    fn extend(&mut self, results: impl IntoIterator<Item = ((i64, i64), (bool, Fen))>) {
        let before = self.0.len();
        let results = results.into_iter();
        // Room for all at once (the results of a pull: the upper bound is the lines pulled),
        // not doubling step by step with the old and new buffers both held.
        let (low, high) = results.size_hint();
        self.0.reserve(high.unwrap_or(low));
        self.0.extend(results);
        // The usual case, results after every key held and ascending: nothing to sort.
        let from = before.saturating_sub(1);
        if self.0[from..].windows(2).all(|w| w[0].0 < w[1].0) {
            return;
        }
        // Stable: of equal keys the later added stays last, and is the one kept.
        self.0.sort_by_key(|e| e.0);
        self.0.reverse();
        self.0.dedup_by_key(|e| e.0);
        self.0.reverse();
    }

    fn insert(&mut self, key: (i64, i64), value: (bool, Fen)) {
        self.extend([(key, value)]);
    }

    /// Drop the results a hand-over covered (`covers` in key order, as [`Unhanded::keys`]
    /// gives them).
    fn remove_covered(&mut self, covers: &[(i64, i64)]) {
        self.0.retain(|(k, _)| covers.binary_search(k).is_err());
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn keys(&self) -> impl Iterator<Item = &(i64, i64)> {
        self.0.iter().map(|(k, _)| k)
    }

    fn values(&self) -> impl Iterator<Item = &(bool, Fen)> {
        self.0.iter().map(|(_, v)| v)
    }

    fn iter(&self) -> impl Iterator<Item = &((i64, i64), (bool, Fen))> {
        self.0.iter()
    }
}

/// A hand-over as the bank sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SentHandover {
    /// The bank's number of the hand-over.
    no: i64,
    /// The totals sent (short by one credit under [`BankFaults::handover_short`]).
    credited: Totals,
    failed: Totals,
    /// The true totals of the results it covers.
    true_totals: (Totals, Totals),
    /// The results it covers.
    covers: Vec<(i64, i64)>,
}

/// The books with their `outcomes` entry serialized from the map itself (see
/// [`BankSim::write_state`]), every other entry as it is.
struct StreamedBooks<'a> {
    books: &'a serde_json::Value,
    outcomes: &'a HashMap<(i64, i64), Outcome>,
}

impl serde::Serialize for StreamedBooks<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Some(books) = self.books.as_object() else {
            return self.books.serialize(s);
        };
        let mut m = s.serialize_map(Some(books.len()))?;
        for (k, v) in books {
            if k == "outcomes" {
                m.serialize_entry(k, &Outcomes(self.outcomes))?;
            } else {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

/// Each outcome as `[line, attempt, outcome]`, in (line, attempt) order.
struct Outcomes<'a>(&'a HashMap<(i64, i64), Outcome>);

impl serde::Serialize for Outcomes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            sorted(self.0)
                .into_iter()
                .map(|((l, a), o)| (l, a, o.as_str())),
        )
    }
}

/// A map's entries in key order: the books are written the same way every time (a
/// `HashMap` iterates in a different order in each process).
fn sorted<K: Ord, V>(m: &HashMap<K, V>) -> Vec<(&K, &V)> {
    let mut v: Vec<(&K, &V)> = m.iter().collect();
    v.sort_unstable_by(|a, b| a.0.cmp(b.0));
    v
}

/// A set's members in order (see [`sorted`]).
fn sorted_set<T: Ord>(m: &HashSet<T>) -> Vec<&T> {
    let mut v: Vec<&T> = m.iter().collect();
    v.sort_unstable();
    v
}

fn totals_json(t: &Totals) -> serde_json::Value {
    serde_json::json!({"count": t.count, "amount_fen": t.amount.0})
}

fn totals_of(v: &serde_json::Value) -> Option<Totals> {
    Some(Totals {
        count: v["count"].as_u64()?,
        amount: Fen(v["amount_fen"].as_i64()?),
    })
}

/// A simulated agent bank.
#[derive(Clone)]
pub struct BankSim {
    cfg: Arc<BankSimConfig>,
    http: reqwest::Client,
    state: Arc<Mutex<BankState>>,
    faults: Arc<Mutex<BankFaults>>,
    work: Arc<tokio::sync::Mutex<()>>,
    pending: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<SimError>>>,
}

/// Parse one CSV record (RFC 4180 quoting).
fn csv_record(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => out.push(std::mem::take(&mut field)),
            (_, c) => field.push(c),
        }
    }
    out.push(field);
    out
}

fn mask(account: &str) -> String {
    ykt_kernel::mask::mask_middle(account, 4, 4)
}

/// A fingerprint of an account or name (FNV-1a): enough to tell whether the platform changed
/// it, without keeping the value in the bank's books.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// [`fnv`] as the bank's books write it.
fn fingerprint_text(h: u64) -> String {
    format!("{h:016x}")
}

/// The SMS of a credit sent at `minutes` past midnight of `today`: (sent at, text).
fn sms_text(today: NaiveDate, short: &str, amount: Fen, minutes: u32) -> (String, String) {
    let sent_at = format!("{today} {:02}:{:02}", minutes / 60 % 24, minutes % 60);
    let text = format!("【{short}】{amount}元已于{sent_at}到账，请查收。");
    (sent_at, text)
}

impl Line {
    /// The working line of `pulled`, keeping `pulled` whole while `journal` has room.
    fn of(pulled: PulledLine, journal: &mut usize) -> Line {
        let mut line = Line {
            line_id: pulled.line_id,
            attempt: pulled.attempt,
            amount: pulled.amount,
            name_fp: fnv(&pulled.name),
            account_fp: fnv(&pulled.account),
            full: None,
        };
        if *journal > 0 {
            *journal -= 1;
            line.full = Some(Box::new(pulled));
        }
        line
    }
}

impl BankSim {
    pub fn new(cfg: BankSimConfig) -> Result<BankSim, SimError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| SimError {
                bank: cfg.bank.clone(),
                message: e.to_string(),
            })?;
        Ok(BankSim {
            state: Arc::new(Mutex::new(BankState {
                rng: StdRng::seed_from_u64(cfg.seed),
                fate: HashMap::new(),
                decided: HashSet::new(),
                outcomes: HashMap::new(),
                ledger: BTreeMap::new(),
                sms: Vec::new(),
                pulls: Vec::new(),
                pulled: Vec::new(),
                files: Vec::new(),
                dropped: HashSet::new(),
                handed: HashSet::new(),
                handovers: HashMap::new(),
                unhanded: HashMap::new(),
                unanswered: HashMap::new(),
                handover_no: 0,
                reports: Vec::new(),
                clock: 0,
            })),
            faults: Arc::new(Mutex::new(cfg.faults.clone())),
            cfg: Arc::new(cfg),
            http,
            work: Arc::new(tokio::sync::Mutex::new(())),
            pending: Arc::new(AtomicUsize::new(0)),
            errors: Arc::new(Mutex::new(Vec::new())),
        })
    }

    pub fn code(&self) -> &str {
        &self.cfg.bank
    }

    /// The faults of the next rounds.
    pub fn set_faults(&self, faults: BankFaults) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    fn faults(&self) -> BankFaults {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn err(&self, message: impl Into<String>) -> SimError {
        SimError {
            bank: self.cfg.bank.clone(),
            message: message.into(),
        }
    }

    fn st(&self) -> std::sync::MutexGuard<'_, BankState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/henan/bank/v1{path}",
            self.cfg.platform.trim_end_matches('/')
        )
    }

    async fn get_json(&self, path: &str) -> Result<serde_json::Value, SimError> {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.cfg.token)
            .send()
            .await
            .map_err(|e| self.err(format!("请求失败: {e}")))?;
        let status = r.status();
        let v: serde_json::Value = r
            .json()
            .await
            .map_err(|e| self.err(format!("应答无法解析: {e}")))?;
        if !status.is_success() {
            return Err(self.err(format!("HTTP {status}: {}", v["message"])));
        }
        Ok(v)
    }

    async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(StatusCode, serde_json::Value), SimError> {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.cfg.token)
            .json(body)
            .send()
            .await
            .map_err(|e| self.err(format!("请求失败: {e}")))?;
        let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let v: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
        Ok((status, v))
    }

    async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, serde_json::Value), SimError> {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.cfg.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| self.err(format!("请求失败: {e}")))?;
        let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let v: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
        Ok((status, v))
    }

    /// One streamed pull from `after`, stopping after `stop` lines (a dropped connection).
    async fn pull_stream(
        &self,
        order_no: &str,
        after: i64,
        stop: Option<usize>,
        journal: &mut usize,
    ) -> Result<(Vec<Line>, bool), SimError> {
        let mut resp = self
            .http
            .get(self.url(&format!("/orders/{order_no}/lines.csv?after={after}")))
            .bearer_auth(&self.cfg.token)
            .send()
            .await
            .map_err(|e| self.err(format!("获取明细失败: {e}")))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            return Err(self.err(format!("获取明细失败 HTTP {status}: {body}")));
        }
        let mut decoder = encoding_rs::GB18030.new_decoder();
        let mut file_room = {
            let kept: usize = self.st().files.iter().map(|(_, b)| b.len()).sum();
            JOURNAL_FILE_BYTES.saturating_sub(kept)
        };
        let mut raw = Vec::new();
        let mut text = String::new();
        let mut lines = Vec::new();
        let mut seen = 0usize;
        let mut complete = false;
        let mut dropped = false;
        'read: loop {
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(_) => break,
            };
            if chunk.len() <= file_room {
                raw.extend_from_slice(&chunk);
                file_room -= chunk.len();
            } else {
                // The journal's room is used up: this file is not kept.
                file_room = 0;
                raw = Vec::new();
            }
            let need = decoder
                .max_utf8_buffer_length(chunk.len())
                .unwrap_or(chunk.len() * 4);
            text.reserve(need);
            let _ = decoder.decode_to_string(&chunk, &mut text, false);
            while let Some(pos) = text.find("\r\n") {
                let line: String = text.drain(..pos + 2).collect();
                let line = line.trim_end_matches("\r\n");
                seen += 1;
                if seen <= 2 {
                    continue; // the summary line and the column header
                }
                let f = csv_record(line);
                if f.first().map(String::as_str) == Some("结束") {
                    let n: usize = f.get(1).and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
                    complete = n == lines.len();
                    break 'read;
                }
                if f.len() != 8 {
                    return Err(self.err(format!("明细行格式错误: {} 列", f.len())));
                }
                let num = |i: usize| f[i].parse::<i64>().map_err(|_| self.err("明细号格式错误"));
                let pulled = PulledLine {
                    order_no: order_no.to_owned(),
                    line_id: num(0)?,
                    attempt: num(1)?,
                    name: f[2].clone(),
                    account: f[3].clone(),
                    bank: f[4].clone(),
                    amount: super::amount(&f[5]).ok_or_else(|| self.err("金额格式错误"))?,
                    period: f[6].clone(),
                    region: f[7].clone(),
                };
                lines.push(Line::of(pulled, journal));
                if stop.is_some_and(|s| lines.len() >= s) {
                    dropped = true;
                    break 'read;
                }
            }
        }
        drop(resp); // a dropped connection, when stopping early
        if file_room > 0 || !raw.is_empty() {
            self.st().files.push((order_no.to_owned(), raw));
        }
        self.st().pulls.push(PullLog {
            order_no: order_no.to_owned(),
            mode: "stream",
            after,
            lines: lines.len(),
            complete: complete && !dropped,
        });
        Ok((lines, complete && !dropped))
    }

    /// Pull every open line of an order, resuming after a dropped connection.
    async fn pull(&self, order_no: &str) -> Result<(Vec<Line>, bool), SimError> {
        let faults = self.faults();
        let first_time = !self.st().dropped.contains(order_no);
        let mut all: Vec<Line> = Vec::new();
        let mut journal = JOURNAL_LINES.saturating_sub(self.st().pulled.len());
        let mut dropped = false;
        match self.cfg.page {
            None => {
                let mut stop = if first_time { faults.drop_after } else { None };
                for _ in 0..5 {
                    let after = all.last().map(|l| l.line_id).unwrap_or(0);
                    let (lines, complete) = self
                        .pull_stream(order_no, after, stop, &mut journal)
                        .await?;
                    all.extend(lines);
                    if complete {
                        break;
                    }
                    if stop.take().is_some() {
                        dropped = true;
                    }
                }
            }
            Some(n) => {
                let mut after = 0i64;
                let mut drop_next = first_time && faults.drop_after.is_some();
                loop {
                    let path = format!("/orders/{order_no}/lines?after={after}&limit={n}");
                    if drop_next {
                        // Send the request and go away without reading the answer.
                        drop_next = false;
                        dropped = true;
                        let r = self
                            .http
                            .get(self.url(&path))
                            .bearer_auth(&self.cfg.token)
                            .send()
                            .await;
                        drop(r);
                        self.st().pulls.push(PullLog {
                            order_no: order_no.to_owned(),
                            mode: "page",
                            after,
                            lines: 0,
                            complete: false,
                        });
                        continue;
                    }
                    let v = self.get_json(&path).await?;
                    let page: Vec<Line> = v["lines"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|l| PulledLine {
                            order_no: order_no.to_owned(),
                            line_id: l["line_id"].as_i64().unwrap_or(0),
                            attempt: l["attempt"].as_i64().unwrap_or(0),
                            name: l["name"].as_str().unwrap_or("").to_owned(),
                            account: l["account"].as_str().unwrap_or("").to_owned(),
                            bank: l["bank"].as_str().unwrap_or("").to_owned(),
                            amount: l["amount"]
                                .as_str()
                                .and_then(super::amount)
                                .unwrap_or(Fen(0)),
                            period: l["period"].as_str().unwrap_or("").to_owned(),
                            region: l["region"].as_str().unwrap_or("").to_owned(),
                        })
                        .map(|l| Line::of(l, &mut journal))
                        .collect();
                    self.st().pulls.push(PullLog {
                        order_no: order_no.to_owned(),
                        mode: "page",
                        after,
                        lines: page.len(),
                        complete: true,
                    });
                    all.extend(page);
                    match v["next_after"].as_i64() {
                        Some(next) => after = next,
                        None => break,
                    }
                }
            }
        }
        if dropped {
            self.st().dropped.insert(order_no.to_owned());
        }
        Ok((all, dropped))
    }

    /// Decide which of an order's first-attempt lines fail (once per order).
    fn assign_fates(&self, order_no: &str, lines: &[Line]) {
        let faults = self.faults();
        let mut st = self.st();
        if !st.decided.insert(order_no.to_owned()) {
            return;
        }
        let mut firsts: Vec<&Line> = lines.iter().filter(|l| l.attempt == 1).collect();
        firsts.sort_by_key(|l| l.line_id);
        let st = &mut *st;
        firsts.shuffle(&mut st.rng);
        let mut i = 0;
        for (reason, n) in &faults.fail {
            for _ in 0..*n {
                if let Some(l) = firsts.get(i) {
                    st.fate.insert(
                        l.line_id,
                        (
                            *reason,
                            fingerprint_text(l.account_fp),
                            fingerprint_text(l.name_fp),
                        ),
                    );
                }
                i += 1;
            }
        }
        if faults.fail_rate > 0.0 {
            for l in firsts.iter().skip(i) {
                if st.rng.gen_bool(faults.fail_rate.min(1.0)) {
                    let reason = [
                        FailureReason::WrongAccount,
                        FailureReason::DormantAccount,
                        FailureReason::AccountClosed,
                    ][st.rng.gen_range(0..3)];
                    st.fate.insert(
                        l.line_id,
                        (
                            reason,
                            fingerprint_text(l.account_fp),
                            fingerprint_text(l.name_fp),
                        ),
                    );
                }
            }
        }
    }

    fn decide(st: &mut BankState, l: &Line) -> (Outcome, bool) {
        if let Some(o) = st.outcomes.get(&(l.line_id, l.attempt)) {
            return (*o, false);
        }
        let o = match st.fate.get(&l.line_id) {
            None => Outcome::Credited,
            Some((reason, account, name)) => match reason {
                FailureReason::WrongAccount | FailureReason::AccountClosed
                    if fingerprint_text(l.account_fp) == *account =>
                {
                    Outcome::Failed(*reason)
                }
                FailureReason::NameMismatch if fingerprint_text(l.name_fp) == *name => {
                    Outcome::Failed(*reason)
                }
                FailureReason::DormantAccount | FailureReason::Other if l.attempt == 1 => {
                    Outcome::Failed(*reason)
                }
                _ => Outcome::Credited,
            },
        };
        st.outcomes.insert((l.line_id, l.attempt), o);
        (o, true)
    }

    /// Pull an order's open lines, credit the cards, post the results and hand over.
    pub async fn process(&self, order_no: &str) -> Result<OrderReport, SimError> {
        let _one_at_a_time = self.work.lock().await;
        let faults = self.faults();
        // A hand-over whose answer was lost: the same hand-over again, before anything new is
        // posted (the platform answers it as recorded, or records it now).
        let resent = if self.st().unanswered.contains_key(order_no) {
            Some(self.send_handover(order_no).await?)
        } else {
            None
        };
        let header = self.get_json(&format!("/orders/{order_no}")).await?;
        let project = header["project"]["code"].as_str().unwrap_or("").to_owned();
        let short = header["project"]["short_name"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let (mut lines, dropped) = self.pull(order_no).await?;
        let mut report = OrderReport {
            order_no: order_no.to_owned(),
            pulled: lines.len(),
            credited: Totals::default(),
            failed: Totals::default(),
            posts: 0,
            repeated: 0,
            dropped,
            handover: resent,
        };
        if lines.is_empty() {
            // Results posted in an earlier run whose hand-over never went out.
            if self.owes(order_no) && !faults.defer_handover {
                report.handover = self.hand_over(order_no, &faults).await?;
                self.st().reports.push(report.clone());
            }
            return Ok(report);
        }
        self.assign_fates(order_no, &lines);
        if faults.withhold > 0 {
            // Held back: neither credited nor reported this time.
            let mut ids: Vec<i64> = lines.iter().map(|l| l.line_id).collect();
            ids.sort_unstable();
            let held: HashSet<i64> = ids.into_iter().take(faults.withhold).collect();
            lines.retain(|l| !held.contains(&l.line_id));
        }
        let today = self.cfg.today;
        let today_text = today.to_string();
        let month = format!("{:04}-{:02}", today.year(), today.month());
        // What the bank decided, line by line: the outcome and, for a credit, the minute of
        // its SMS. The posts are made from these a chunk at a time, so a million-line order
        // is not held as a million JSON results.
        let mut decisions: Vec<(Outcome, u32)> = Vec::with_capacity(lines.len());
        // The posting order: (line, whether it is the stranger of `unknown_line`).
        let mut order: Vec<(usize, bool)>;
        {
            let mut st = self.st();
            st.pulled
                .extend(lines.iter().filter_map(|l| l.full.as_deref().cloned()));
            for l in &lines {
                let (o, new) = Self::decide(&mut st, l);
                let minutes = 9 * 60 + st.clock;
                match o {
                    Outcome::Credited => {
                        report.credited.add(l.amount);
                        // The bank remembers the SMS of a credit it already made.
                        if new {
                            st.clock += 1;
                            let e = st
                                .ledger
                                .entry((project.clone(), month.clone()))
                                .or_default();
                            *e = *e
                                + Totals {
                                    count: 1,
                                    amount: l.amount,
                                };
                            if let Some(full) = &l.full
                                && st.sms.len() < JOURNAL_LINES
                            {
                                let (sent_at, text) = sms_text(today, &short, l.amount, minutes);
                                st.sms.push(Sms {
                                    order_no: order_no.to_owned(),
                                    line_id: l.line_id,
                                    account_masked: mask(&full.account),
                                    text,
                                    sent_at,
                                });
                            }
                        }
                    }
                    Outcome::Failed(_) => report.failed.add(l.amount),
                }
                decisions.push((o, minutes));
            }
            order = (0..lines.len()).map(|i| (i, false)).collect();
            if faults.shuffle {
                match faults.shuffle_window {
                    0 => order.shuffle(&mut st.rng),
                    w => order.chunks_mut(w).for_each(|c| c.shuffle(&mut st.rng)),
                }
            }
        }
        if faults.unknown_line
            && let Some(&(first, _)) = order.first()
        {
            order.insert(1.min(order.len()), (first, true));
        }
        if faults.silent || order.is_empty() {
            // Nothing posted, nothing handed over.
            self.st().reports.push(report.clone());
            return Ok(report);
        }
        let result = |&(i, stranger): &(usize, bool)| {
            let (l, (o, minutes)) = (&lines[i], decisions[i]);
            let posted = if faults.wrong_amount {
                l.amount + Fen(1)
            } else {
                l.amount
            };
            let mut r = PostedResult {
                amount: posted.to_string(),
                attempt: l.attempt,
                date: &today_text,
                line_id: if stranger { 9_999_999 } else { l.line_id },
                outcome: "credited",
                reason: None,
                sms: None,
            };
            match o {
                Outcome::Credited => {
                    let (sent_at, text) = sms_text(today, &short, l.amount, minutes);
                    r.sms = Some(PostedSms { sent_at, text });
                }
                Outcome::Failed(reason) => {
                    r.outcome = "failed";
                    r.reason = Some(reason.as_str());
                }
            }
            r
        };
        // Counted before they are posted: a post whose answer is lost may have been recorded.
        {
            let mut st = self.st();
            let st = &mut *st;
            let outcomes = &st.outcomes;
            st.unhanded
                .entry(order_no.to_owned())
                .or_default()
                .extend(lines.iter().filter_map(|l| {
                    let o = outcomes.get(&(l.line_id, l.attempt))?;
                    Some(((l.line_id, l.attempt), (*o == Outcome::Credited, l.amount)))
                }));
        }
        let chunk = match faults.chunk {
            0 => order.len().max(1),
            n => n,
        };
        let mut cut_short = faults.truncate_post;
        for part in order.chunks(chunk) {
            let part: Vec<PostedResult<'_>> = part.iter().map(result).collect();
            let body = serde_json::json!({ "results": part });
            if cut_short {
                cut_short = false;
                let bytes = body.to_string().into_bytes();
                let (status, v) = self
                    .post_raw(
                        &format!("/orders/{order_no}/results"),
                        bytes[..bytes.len() / 2].to_vec(),
                    )
                    .await?;
                if status.is_success() {
                    return Err(self.err(format!(
                        "截断的结果报文竟被接受 HTTP {status}: {}",
                        v["message"]
                    )));
                }
                report.posts += 1;
            }
            let repeat = {
                let rate = faults.repeat_rate.min(1.0);
                rate > 0.0 && self.st().rng.gen_bool(rate)
            };
            for time in 0..(1 + usize::from(repeat)) {
                let mut tries = 0;
                loop {
                    let (status, v) = self
                        .post_json(&format!("/orders/{order_no}/results"), &body)
                        .await?;
                    if status.is_success() {
                        break;
                    }
                    tries += 1;
                    if status == StatusCode::CONFLICT && tries < 3 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    return Err(self.err(format!("结果被拒绝 HTTP {status}: {}", v["message"])));
                }
                report.posts += 1;
                if time > 0 {
                    report.repeated += 1;
                }
            }
        }
        if !faults.defer_handover {
            report.handover = self.hand_over(order_no, &faults).await?;
        }
        self.st().reports.push(report.clone());
        Ok(report)
    }

    /// Whether results of `order_no` await a hand-over (or a hand-over its answer).
    fn owes(&self, order_no: &str) -> bool {
        let st = self.st();
        st.unanswered.contains_key(order_no)
            || st.unhanded.get(order_no).is_some_and(|u| !u.is_empty())
    }

    /// Hand over everything posted since the last acknowledged hand-over, under a new number.
    async fn hand_over(
        &self,
        order_no: &str,
        faults: &BankFaults,
    ) -> Result<Option<serde_json::Value>, SimError> {
        {
            let mut st = self.st();
            let Some(results) = st.unhanded.get(order_no).filter(|u| !u.is_empty()) else {
                return Ok(None);
            };
            let (mut credited, mut failed) = (Totals::default(), Totals::default());
            let mut one = None;
            for (credit, amount) in results.values() {
                if *credit {
                    credited.add(*amount);
                    one.get_or_insert(*amount);
                } else {
                    failed.add(*amount);
                }
            }
            let covers: Vec<(i64, i64)> = results.keys().copied().collect();
            let true_totals = (credited, failed);
            if faults.handover_short
                && !st.handed.contains(order_no)
                && let Some(one) = one
            {
                credited = Totals {
                    count: credited.count - 1,
                    amount: credited.amount - one,
                };
            }
            st.handover_no += 1;
            let no = st.handover_no;
            st.unanswered.insert(
                order_no.to_owned(),
                SentHandover {
                    no,
                    credited,
                    failed,
                    true_totals,
                    covers,
                },
            );
        }
        self.send_handover(order_no).await.map(Some)
    }

    /// Send the order's unanswered hand-over; once answered, the results it covers are
    /// handed over.
    async fn send_handover(&self, order_no: &str) -> Result<serde_json::Value, SimError> {
        let Some(h) = self.st().unanswered.get(order_no).cloned() else {
            return Err(self.err(format!("发放单{order_no}没有待交接的交易结果")));
        };
        // A connection error leaves it unanswered: sent again on the next run.
        let (status, v) = self
            .post_json(
                &format!("/orders/{order_no}/handover"),
                &serde_json::json!({
                    "handler": self.cfg.handler,
                    "handover_no": h.no,
                    "credited": {"count": h.credited.count, "amount": h.credited.amount.to_string()},
                    "failed": {"count": h.failed.count, "amount": h.failed.amount.to_string()},
                }),
            )
            .await?;
        if status.is_server_error() {
            // Perhaps recorded before it failed: the same hand-over again next time.
            return Err(self.err(format!("交接未获答复 HTTP {status}: {}", v["message"])));
        }
        let mut st = self.st();
        st.unanswered.remove(order_no);
        if !status.is_success() {
            // Refused, so not recorded: its results go in the next hand-over.
            drop(st);
            return Err(self.err(format!("交接被拒绝 HTTP {status}: {}", v["message"])));
        }
        st.handed.insert(order_no.to_owned());
        if let Some(u) = st.unhanded.get_mut(order_no) {
            u.remove_covered(&h.covers);
        }
        if let Some(seq) = v["seq"].as_i64() {
            st.handovers
                .insert((order_no.to_owned(), seq), h.true_totals);
        }
        Ok(v)
    }

    /// Hand over the round of a disputed hand-over again, with the true totals (the remedy
    /// after the department reported an error, 第二十六条 "通知乙方采取补救措施").
    pub async fn resubmit_handover(
        &self,
        order_no: &str,
        seq: i64,
    ) -> Result<serde_json::Value, SimError> {
        let (credited, failed) = self
            .st()
            .handovers
            .get(&(order_no.to_owned(), seq))
            .copied()
            .ok_or_else(|| self.err(format!("本行没有发放单{order_no}的第{seq}次交接")))?;
        let no = {
            let mut st = self.st();
            st.handover_no += 1;
            st.handover_no
        };
        let (status, v) = self
            .post_json(
                &format!("/orders/{order_no}/handover"),
                &serde_json::json!({
                    "handler": self.cfg.handler,
                    "credited": {"count": credited.count, "amount": credited.amount.to_string()},
                    "failed": {"count": failed.count, "amount": failed.amount.to_string()},
                    "replaces": seq,
                    "handover_no": no,
                }),
            )
            .await?;
        if !status.is_success() {
            return Err(self.err(format!("交接被拒绝 HTTP {status}: {}", v["message"])));
        }
        Ok(v)
    }

    /// Process every order of this bank that has lines waiting (polling instead of being
    /// notified).
    pub async fn run_once(&self) -> Result<Vec<OrderReport>, SimError> {
        let v = self.get_json("/orders").await?;
        let mut out = Vec::new();
        for o in v["orders"].as_array().cloned().unwrap_or_default() {
            let Some(no) = o["order_no"].as_str() else {
                continue;
            };
            // Lines to pull, or results still to hand over.
            let waiting = o["funded"].as_bool() == Some(true)
                && (o["open"]["count"].as_u64().unwrap_or(0) > 0 || self.owes(no));
            if waiting {
                out.push(self.process(no).await?);
            }
        }
        Ok(out)
    }

    /// Post the bank's ledger for `period` (`YYYY-MM`: a month; `YYYY`: the year) and return
    /// the platform's comparison.
    pub async fn post_statement(&self, period: &str) -> Result<serde_json::Value, SimError> {
        let projects: Vec<serde_json::Value> = {
            let st = self.st();
            let mut per: BTreeMap<String, Totals> = BTreeMap::new();
            for ((project, month), t) in &st.ledger {
                if month == period || month.starts_with(&format!("{period}-")) {
                    let e = per.entry(project.clone()).or_default();
                    *e = *e + *t;
                }
            }
            per.into_iter()
                .map(|(code, t)| {
                    serde_json::json!({"code": code, "count": t.count, "amount": t.amount.to_string()})
                })
                .collect()
        };
        let (status, v) = self
            .post_json(
                "/statements",
                &serde_json::json!({"period": period, "projects": projects}),
            )
            .await?;
        if !status.is_success() {
            return Err(self.err(format!("对账被拒绝 HTTP {status}: {}", v["message"])));
        }
        Ok(v)
    }

    /// The SMS sent so far: the first [`JOURNAL_LINES`].
    pub fn sms(&self) -> Vec<Sms> {
        self.st().sms.clone()
    }
    /// The pulls made so far.
    pub fn pulls(&self) -> Vec<PullLog> {
        self.st().pulls.clone()
    }
    /// The lines pulled so far (full accounts: the bank's data; mask before showing): the
    /// first [`JOURNAL_LINES`].
    pub fn pulled(&self) -> Vec<PulledLine> {
        self.st().pulled.clone()
    }
    /// The CSV files received, as bytes (GB18030), per order: those that fit in
    /// [`JOURNAL_FILE_BYTES`].
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        self.st().files.clone()
    }
    /// The reports of the orders processed.
    pub fn reports(&self) -> Vec<OrderReport> {
        self.st().reports.clone()
    }
    /// Errors of background processing (after a notice).
    pub fn errors(&self) -> Vec<SimError> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }
    /// The bank's ledger: (project, month) → credited.
    pub fn ledger(&self) -> Vec<((String, String), Totals)> {
        self.st()
            .ledger
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// The bank's books as JSON (its ledger, what it decided per line and attempt, which
    /// lines fail), to keep between runs of a one-shot process.
    pub fn export_state(&self) -> serde_json::Value {
        let st = self.st();
        let mut v = self.books(&st);
        v["outcomes"] = sorted(&st.outcomes)
            .into_iter()
            .map(|((l, a), o)| serde_json::json!([l, a, o.as_str()]))
            .collect();
        v
    }

    /// [`BankSim::export_state`] written to `w` as pretty JSON (the same text as
    /// `serde_json::to_string_pretty` of it), the outcome of every line streamed rather than
    /// built as a JSON tree first: a million outcomes as `serde_json::Value`s take about
    /// 200 MB.
    pub fn write_state(&self, w: impl std::io::Write) -> serde_json::Result<()> {
        let st = self.st();
        let books = self.books(&st);
        serde_json::to_writer_pretty(
            w,
            &StreamedBooks {
                books: &books,
                outcomes: &st.outcomes,
            },
        )
    }

    /// The books without the outcomes (`"outcomes": null`).
    fn books(&self, st: &BankState) -> serde_json::Value {
        serde_json::json!({
            "bank": self.cfg.bank,
            "ledger": st.ledger.iter().map(|((p, m), t)| serde_json::json!({"project": p, "month": m, "count": t.count, "amount_fen": t.amount.0})).collect::<Vec<_>>(),
            "outcomes": null,
            "fate": sorted(&st.fate).into_iter().map(|(l, (r, acct, name))| serde_json::json!([l, r.as_str(), acct, name])).collect::<Vec<_>>(),
            "decided": sorted_set(&st.decided),
            "clock": st.clock,
            "handed": sorted_set(&st.handed),
            "handovers": sorted(&st.handovers).into_iter().map(|((o, seq), (c, f))| serde_json::json!({"order_no": o, "seq": seq, "credited": totals_json(c), "failed": totals_json(f)})).collect::<Vec<_>>(),
            "unhanded": sorted(&st.unhanded).into_iter().flat_map(|(o, u)| u.iter().map(move |((l, a), (c, fen))| serde_json::json!([o, l, a, c, fen.0]))).collect::<Vec<_>>(),
            "unanswered": sorted(&st.unanswered).into_iter().map(|(o, h)| serde_json::json!({
                "order_no": o, "no": h.no, "credited": totals_json(&h.credited), "failed": totals_json(&h.failed),
                "true_credited": totals_json(&h.true_totals.0), "true_failed": totals_json(&h.true_totals.1),
                "covers": h.covers,
            })).collect::<Vec<_>>(),
            "handover_no": st.handover_no,
        })
    }

    /// Load books saved by [`BankSim::export_state`] (unknown or malformed parts are skipped).
    pub fn import_state(&self, v: &serde_json::Value) {
        let mut st = self.st();
        let arr = |k: &str| v[k].as_array().cloned().unwrap_or_default();
        for e in arr("ledger") {
            if let (Some(p), Some(m), Some(c), Some(f)) = (
                e["project"].as_str(),
                e["month"].as_str(),
                e["count"].as_u64(),
                e["amount_fen"].as_i64(),
            ) {
                st.ledger.insert(
                    (p.to_owned(), m.to_owned()),
                    Totals {
                        count: c,
                        amount: Fen(f),
                    },
                );
            }
        }
        for e in arr("outcomes") {
            if let (Some(l), Some(a), Some(o)) = (e[0].as_i64(), e[1].as_i64(), e[2].as_str()) {
                let o = if o == "credited" {
                    Outcome::Credited
                } else {
                    Outcome::Failed(FailureReason::parse(o).unwrap_or(FailureReason::Other))
                };
                st.outcomes.insert((l, a), o);
            }
        }
        for e in arr("fate") {
            if let (Some(l), Some(r), Some(acct), Some(name)) =
                (e[0].as_i64(), e[1].as_str(), e[2].as_str(), e[3].as_str())
            {
                let r = FailureReason::parse(r).unwrap_or(FailureReason::Other);
                st.fate.insert(l, (r, acct.to_owned(), name.to_owned()));
            }
        }
        for d in arr("decided") {
            if let Some(d) = d.as_str() {
                st.decided.insert(d.to_owned());
            }
        }
        st.clock = v["clock"]
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(st.clock);
        for o in arr("handed") {
            if let Some(o) = o.as_str() {
                st.handed.insert(o.to_owned());
            }
        }
        for h in arr("handovers") {
            if let (Some(o), Some(seq), Some(c), Some(f)) = (
                h["order_no"].as_str(),
                h["seq"].as_i64(),
                totals_of(&h["credited"]),
                totals_of(&h["failed"]),
            ) {
                st.handovers.insert((o.to_owned(), seq), (c, f));
            }
        }
        for e in arr("unhanded") {
            if let (Some(o), Some(l), Some(a), Some(c), Some(fen)) = (
                e[0].as_str(),
                e[1].as_i64(),
                e[2].as_i64(),
                e[3].as_bool(),
                e[4].as_i64(),
            ) {
                st.unhanded
                    .entry(o.to_owned())
                    .or_default()
                    .insert((l, a), (c, Fen(fen)));
            }
        }
        for h in arr("unanswered") {
            let covers = h["covers"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .filter_map(|k| Some((k[0].as_i64()?, k[1].as_i64()?)))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            if let (Some(o), Some(no), Some(c), Some(f), Some(tc), Some(tf)) = (
                h["order_no"].as_str(),
                h["no"].as_i64(),
                totals_of(&h["credited"]),
                totals_of(&h["failed"]),
                totals_of(&h["true_credited"]),
                totals_of(&h["true_failed"]),
            ) {
                st.unanswered.insert(
                    o.to_owned(),
                    SentHandover {
                        no,
                        credited: c,
                        failed: f,
                        true_totals: (tc, tf),
                        covers,
                    },
                );
            }
        }
        st.handover_no = v["handover_no"].as_i64().unwrap_or(st.handover_no);
    }

    /// Wait until every notified order has been processed (or `timeout` passes). Returns
    /// whether the bank is idle.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let start = std::time::Instant::now();
        while self.pending.load(Ordering::SeqCst) > 0 {
            if start.elapsed() > timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Take a notice: process the order in the background.
    pub fn notice(&self, order_no: String) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        let sim = self.clone();
        tokio::spawn(async move {
            if let Err(e) = sim.process(&order_no).await {
                tracing::warn!(error = %e, "the simulated bank could not process an order");
                if let Ok(mut errs) = sim.errors.lock() {
                    errs.push(e);
                }
            }
            sim.pending.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// Serve the notification address (`POST /notify`, `GET /status`) on an ephemeral port.
    pub async fn serve_notices(&self) -> std::io::Result<SimServer> {
        async fn notify(
            State(sim): State<BankSim>,
            Json(v): Json<serde_json::Value>,
        ) -> (StatusCode, Json<serde_json::Value>) {
            match v["order_no"].as_str() {
                Some(no) => {
                    sim.notice(no.to_owned());
                    (
                        StatusCode::ACCEPTED,
                        Json(serde_json::json!({"accepted": no})),
                    )
                }
                None => (
                    StatusCode::BAD_REQUEST,
                    Json(serde_json::json!({"message": "缺少 order_no"})),
                ),
            }
        }
        async fn status(State(sim): State<BankSim>) -> Json<serde_json::Value> {
            Json(serde_json::json!({
                "busy": sim.pending.load(Ordering::SeqCst),
                "processed": sim.reports().len(),
            }))
        }
        let router = Router::new()
            .route("/notify", post(notify))
            .route("/status", get(status))
            .with_state(self.clone());
        SimServer::start(router).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhanded_results_are_a_map_in_key_order() {
        let mut u = Unhanded::default();
        u.extend([((1, 1), (true, Fen(5))), ((2, 1), (false, Fen(7)))]);
        // Out of order, and a key again: sorted, the later value kept, as a map would.
        u.extend([
            ((4, 1), (true, Fen(9))),
            ((2, 1), (true, Fen(8))),
            ((3, 2), (true, Fen(1))),
        ]);
        u.insert((0, 1), (false, Fen(2)));
        assert_eq!(
            u.iter().copied().collect::<Vec<_>>(),
            vec![
                ((0, 1), (false, Fen(2))),
                ((1, 1), (true, Fen(5))),
                ((2, 1), (true, Fen(8))),
                ((3, 2), (true, Fen(1))),
                ((4, 1), (true, Fen(9))),
            ]
        );
        let covers: Vec<(i64, i64)> = u.keys().copied().take(3).collect();
        u.remove_covered(&covers);
        assert_eq!(u.keys().copied().collect::<Vec<_>>(), vec![(3, 2), (4, 1)]);
        assert_eq!(u.values().map(|v| v.1).sum::<Fen>(), Fen(10));
        u.remove_covered(&[(3, 2), (4, 1)]);
        assert!(u.is_empty());
    }

    #[test]
    fn the_books_keep_unanswered_hand_overs_across_runs() {
        let cfg = || BankSimConfig {
            platform: "http://127.0.0.1:9".into(),
            bank: "ABC-HN".into(),
            token: "t".into(),
            handler: "经办".into(),
            today: chrono::NaiveDate::from_ymd_opt(2023, 5, 20).unwrap(),
            seed: 1,
            faults: BankFaults::default(),
            page: Some(100),
        };
        let a = BankSim::new(cfg()).unwrap();
        {
            let mut st = a.st();
            let u = st.unhanded.entry("FF1".into()).or_default();
            u.insert((1, 1), (true, Fen(42000)));
            u.insert((2, 1), (false, Fen(100)));
            st.unanswered.insert(
                "FF1".into(),
                SentHandover {
                    no: 3,
                    credited: Totals {
                        count: 1,
                        amount: Fen(42000),
                    },
                    failed: Totals {
                        count: 1,
                        amount: Fen(100),
                    },
                    true_totals: (
                        Totals {
                            count: 1,
                            amount: Fen(42000),
                        },
                        Totals {
                            count: 1,
                            amount: Fen(100),
                        },
                    ),
                    covers: vec![(1, 1), (2, 1)],
                },
            );
            st.handover_no = 3;
            st.handed.insert("FF0".into());
            st.handovers.insert(("FF0".into(), 1), Default::default());
            st.outcomes.insert((1, 1), Outcome::Credited);
            st.outcomes
                .insert((2, 1), Outcome::Failed(FailureReason::WrongAccount));
        }
        // The streamed books are the same text as the JSON tree's.
        let mut written = Vec::new();
        a.write_state(&mut written).unwrap();
        let exported = a.export_state();
        assert_eq!(
            String::from_utf8(written.clone()).unwrap(),
            serde_json::to_string_pretty(&exported).unwrap()
        );
        assert_eq!(exported["outcomes"].as_array().map(Vec::len), Some(2));
        let b = BankSim::new(cfg()).unwrap();
        b.import_state(&serde_json::from_slice(&written).unwrap());
        assert_eq!(b.export_state(), exported);
        assert!(b.owes("FF1") && !b.owes("FF0"));
        let (sa, sb) = (a.st(), b.st());
        assert_eq!(sb.unhanded, sa.unhanded);
        assert_eq!(sb.unanswered, sa.unanswered);
        assert_eq!(sb.handover_no, 3);
        assert_eq!(sb.handed, sa.handed);
        assert_eq!(sb.handovers, sa.handovers);
    }

    #[test]
    fn csv_records() {
        assert_eq!(csv_record("1,2,王秀英"), ["1", "2", "王秀英"]);
        assert_eq!(csv_record("\"a,b\",\"c\"\"d\",e"), ["a,b", "c\"d", "e"]);
        assert_eq!(csv_record(""), [""]);
    }
}
