//! The bank interface (代发金融机构接口) of the bank-pull model, under `/henan/bank/v1`.
//!
//! - 第八条(二): "通过线上获取补贴发放明细、反馈发放结果"; 第二十二条: "根据“发放单号”通过一卡通系统获取补贴
//!   发放明细信息"; 第二十三条: "代发金融机构应及时将发放结果反馈至一卡通系统"; 第二十六条: the stamped
//!   results (交易结果) handed over per batch, and the bank's per-project ledger reconciled monthly
//!   and, in January, for the previous year.
//!
//! Every request carries `Authorization: Bearer <token>`: one credential per bank, of which the
//! store keeps only the SHA-256. A bank sees only the orders assigned to it: another bank's
//! order answers exactly like an order that does not exist (404), so existence does not leak.
//! An order becomes visible once pushed to the budget system, and its lines can be pulled once
//! the treasury has paid the bank (第二十二条 "收到补贴资金后").
//!
//! Pulling serves the lines in flight (sent to the bank and not yet reported), in line-id
//! order: after a correction only the corrected lines are in flight, so a re-pull returns only
//! them. `GET .../lines?after=ID&limit=N` (JSON, keyset paging) and `GET .../lines.csv` (a
//! GB18030 CSV, ending with a `结束` line so a truncated transfer is recognisable); both
//! resume after any line (`after`), and hold one chunk or page at a time whatever the order's
//! size.
//!
//! The lines are not read one by one at each pull: each release (a round: the first dispatch,
//! then each re-dispatch of corrected lines) writes, in its own transaction, the detail as the
//! bank receives it, the CSV's lines in GB18030, in sealed chunks of about 1 MiB
//! (`Store::henan_record_release`, migration `0302`). Lines in flight change only when a
//! result is applied or lines are dispatched, and both leave an audit entry, so a pull knows
//! by one indexed look-up which case it is in:
//!
//! - nothing since the release: the chunks are streamed as they are (decrypted one at a time;
//!   a resumed pull starts in the chunk holding the line after `after`);
//! - results since: the same chunks, less their lines no longer in flight (one index range per
//!   chunk), and the header's count and amount are the open lines', as always;
//! - a dispatch whose release is not recorded yet (or a release from before `0302`): the
//!   lines are read from the database, as before.
//!
//! A chunk that does not authenticate is never served: the pull answers 500 `detail_corrupt`
//! (or, past the first chunk, the stream is cut before its `结束` line).
//!
//! Results (`POST .../results`) are judged as a whole: a body that does not parse (400), an
//! unknown line, a wrong amount, a malformed field or an attempt not yet pulled (422) refuses
//! the post, which is logged with the order (`henan_result_posts`) and changes nothing; an
//! outcome contradicting one already recorded refuses it (409). A result already recorded is a
//! duplicate and changes nothing, so repeated, partial and reordered posts apply each line once.
//! Accepted results are kept as received (with the SMS the bank sent) and applied at once.
//!
//! A hand-over (`POST .../handover`) may carry the bank's own number (`handover_no`): a
//! hand-over re-sent because its answer was lost answers the one recorded under that number
//! and records nothing; the number with other totals is refused (409).

use crate::server::ApiError;
use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use ykt_kernel::Fen;
use ykt_kernel::batch::{BatchState, LineState, Totals};
use ykt_kernel::ledger::Account;
use ykt_kernel::ports::{BankOutcome, BankResult, FailureReason};
use ykt_kernel::province::Province;
use ykt_province_henan::calendar::WorkCalendar;
use ykt_province_henan::reconcile::{
    self, HandoverTotals, NOTIFY_WITHIN, compare_handover, compare_statement,
};
use ykt_store::henan::{
    AcceptPost, ApplyPost, DetailRow, DetailState, HandoverRow, OrderRow, PullLine, ResultRow,
    StatementRow, token_hash,
};
use ykt_store::payments::BatchRow;
use ykt_store::{Store, StoreError};

use super::parse_amount;

/// Largest page of lines served at once.
pub const MAX_PAGE: i64 = 5000;
/// Lines per page when the bank does not say.
pub const DEFAULT_PAGE: i64 = 1000;
/// Largest number of results in one post.
pub const MAX_RESULTS: usize = 5000;
/// Lines read from the database per chunk of the CSV stream.
const STREAM_CHUNK: i64 = 2000;

/// The two accounts a credited line moves money between (agent bank → cards), as the cycle
/// names them for the batch and its bank.
pub type PaymentAccounts = fn(&BatchRow, &str) -> (Account, Account);

/// Everything the bank interface needs.
#[derive(Clone)]
pub struct BankApi {
    pub store: Store,
    pub province: Arc<dyn Province>,
    pub calendar: Arc<WorkCalendar>,
    /// The platform's business date (configured `today` or the local date).
    pub today: Arc<dyn Fn() -> NaiveDate + Send + Sync>,
    pub payment_accounts: PaymentAccounts,
}

/// The router of the bank interface.
pub fn router(api: BankApi) -> Router {
    Router::new()
        .route("/henan/bank/v1/orders", get(list_orders))
        .route("/henan/bank/v1/orders/{order_no}", get(order_header))
        .route("/henan/bank/v1/orders/{order_no}/lines", get(lines_page))
        .route("/henan/bank/v1/orders/{order_no}/lines.csv", get(lines_csv))
        .route(
            "/henan/bank/v1/orders/{order_no}/results",
            post(post_results),
        )
        .route(
            "/henan/bank/v1/orders/{order_no}/handover",
            post(post_handover),
        )
        .route("/henan/bank/v1/statements", post(post_statement))
        .layer(axum::extract::DefaultBodyLimit::max(4 * 1024 * 1024))
        .with_state(api)
}

/// Count and amount on the wire: the amount as yuan with two decimals.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireTotals {
    pub count: u64,
    pub amount: String,
}

impl From<Totals> for WireTotals {
    fn from(t: Totals) -> WireTotals {
        WireTotals {
            count: t.count,
            amount: t.amount.to_string(),
        }
    }
}

fn not_found(order_no: &str) -> ApiError {
    ApiError::not_found(format!(
        "发放单号{order_no}不存在或不属于本行 (order {order_no} not found for this bank)"
    ))
}

fn funded(state: BatchState) -> bool {
    matches!(
        state,
        BatchState::Funded
            | BatchState::Dispatched
            | BatchState::Settled
            | BatchState::Reconciled
            | BatchState::Closed
    )
}

impl BankApi {
    /// The bank the request's credential belongs to.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "缺少银行接口凭据：请在 Authorization 头中提供 Bearer 令牌 (missing bearer token)",
                )
            })?;
        match self.store.henan_bank_for_token(&token_hash(token)).await? {
            Some(bank) => Ok(bank),
            None => Err(ApiError::unauthorized(
                "银行接口凭据无效或已更换 (invalid or replaced credential)",
            )),
        }
    }

    /// The order and its batch, if `order_no` is the calling bank's and already pushed.
    async fn own_order(
        &self,
        bank: &str,
        order_no: &str,
    ) -> Result<(OrderRow, BatchRow), ApiError> {
        let order = self
            .store
            .henan_order(order_no)
            .await?
            .filter(|o| o.bank == bank && o.pushed_on.is_some())
            .ok_or_else(|| not_found(order_no))?;
        let batch = self
            .store
            .batch(order.batch_id)
            .await?
            .ok_or_else(|| not_found(order_no))?;
        Ok((order, batch))
    }

    /// Like [`BankApi::own_order`], and the treasury has paid the bank.
    async fn funded_order(
        &self,
        bank: &str,
        order_no: &str,
    ) -> Result<(OrderRow, BatchRow), ApiError> {
        let (o, b) = self.own_order(bank, order_no).await?;
        if !funded(b.state) {
            return Err(ApiError::conflict(format!(
                "发放单{order_no}的补贴资金尚未拨付至本行，暂不能获取明细或反馈结果（第二十二条） (funds have not reached the bank yet)"
            )));
        }
        Ok((o, b))
    }

    /// The project's four-character short name: from the catalogue, or from the project
    /// library for projects added by a change request.
    async fn short_name(&self, project: &str) -> Result<String, ApiError> {
        if let Some(p) = self.province.catalog().find(project) {
            return Ok(p.short_name.clone());
        }
        let entry = self.store.henan_library_entry(project).await?;
        Ok(entry
            .and_then(|e| serde_json::from_str::<serde_json::Value>(&e.entry).ok())
            .and_then(|v| v["short_name"].as_str().map(str::to_owned))
            .unwrap_or_default())
    }
}

#[derive(Serialize)]
struct OrderSummary {
    order_no: String,
    project_code: String,
    project_name: String,
    region: String,
    period: String,
    state: String,
    funded: bool,
    open: WireTotals,
}

async fn list_orders(
    State(api): State<BankApi>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let bank = api.authenticate(&headers).await?;
    let mut orders = Vec::new();
    for o in api.store.henan_orders(Some(&bank)).await? {
        if o.pushed_on.is_none() {
            continue;
        }
        let Some(b) = api.store.batch(o.batch_id).await? else {
            continue;
        };
        let open = api.store.henan_open_totals(b.id).await?;
        orders.push(OrderSummary {
            order_no: o.order_no,
            project_code: b.project,
            project_name: b.project_name,
            region: b.region,
            period: b.period,
            state: b.state.as_str().into(),
            funded: funded(b.state),
            open: open.into(),
        });
    }
    Ok(Json(serde_json::json!({"bank": bank, "orders": orders})))
}

async fn order_header(
    State(api): State<BankApi>,
    Path(order_no): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let bank = api.authenticate(&headers).await?;
    let (o, b) = api.own_order(&bank, &order_no).await?;
    let tally = api.store.tally(b.id).await?;
    let short = api.short_name(&b.project).await?;
    Ok(Json(serde_json::json!({
        "order_no": o.order_no,
        "bank": o.bank,
        "project": {"code": b.project, "name": b.project_name, "short_name": short},
        "region": b.region,
        "period": b.period,
        "budget_unit": o.budget_unit,
        "state": b.state.as_str(),
        "funded": funded(b.state),
        "funded_on": o.funded_on,
        "control": WireTotals::from(b.control),
        "open": WireTotals::from(tally.in_flight),
        "credited": WireTotals::from(tally.credited),
        "failed": WireTotals::from(tally.failed),
        "refunded": WireTotals::from(tally.refunded),
    })))
}

/// A line as the bank receives it (the full account: it is the bank's to credit).
#[derive(Serialize)]
struct WireLine {
    line_id: i64,
    attempt: i64,
    name: String,
    account: String,
    bank: String,
    amount: String,
    period: String,
    region: String,
}

impl From<PullLine> for WireLine {
    fn from(l: PullLine) -> WireLine {
        WireLine {
            line_id: l.line_id,
            attempt: l.attempt,
            name: l.name,
            account: l.account.as_str().to_owned(),
            bank: l.bank,
            amount: l.amount.to_string(),
            period: l.period,
            region: l.region,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

async fn lines_page(
    State(api): State<BankApi>,
    Path(order_no): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let bank = api.authenticate(&headers).await?;
    let (_, b) = api.funded_order(&bank, &order_no).await?;
    let after = q.after.unwrap_or(0).max(0);
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit 应在1至{MAX_PAGE}之间 (limit must be 1..={MAX_PAGE})"
        )));
    }
    let pull = api
        .store
        .henan_pull_start(&order_no, &bank, "page", after)
        .await?;
    let (open, lines) = match detail_source(&api.store, &order_no, b.id).await? {
        Source::Detail(d, filter) => {
            let open = if filter {
                api.store.henan_open_totals(b.id).await?
            } else {
                d.lines
            };
            let lines = detail_page(&api.store, b.id, &d, filter, after, limit)
                .await
                .map_err(|e| pull_error(&order_no, e))?;
            (open, lines)
        }
        Source::Lines => {
            let open = api.store.henan_open_totals(b.id).await?;
            let page = api.store.henan_open_page(b.id, after, limit).await?;
            (open, page.into_iter().map(WireLine::from).collect())
        }
    };
    let last = lines.last().map(|l| l.line_id);
    let n = lines.len() as i64;
    api.store.henan_pull_finish(pull, last, n, true).await?;
    let next_after = if n == limit { last } else { None };
    Ok(Json(serde_json::json!({
        "order_no": order_no,
        "open": WireTotals::from(open),
        "lines": lines,
        "next_after": next_after,
    })))
}

/// Where a pull's lines come from.
enum Source {
    /// The latest release's materialised detail; `true`: results arrived since it was
    /// written, so only its lines still in flight are served.
    Detail(DetailRow, bool),
    /// The lines themselves (a release recorded before details were materialised, or a
    /// dispatch whose release is being recorded).
    Lines,
}

async fn detail_source(store: &Store, order_no: &str, batch_id: i64) -> Result<Source, ApiError> {
    let Some(d) = store.henan_detail(order_no).await? else {
        return Ok(Source::Lines);
    };
    Ok(match store.henan_detail_state(batch_id, &d).await? {
        DetailState::Exact => Source::Detail(d, false),
        DetailState::Reported => Source::Detail(d, true),
        DetailState::Stale => Source::Lines,
    })
}

/// A chunk of the detail that does not authenticate is refused with a message that says so
/// (the bank pulls again later; nothing altered is ever served).
fn pull_error(order_no: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::Corrupt { .. } => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "detail_corrupt",
            format!(
                "发放单{order_no}的明细数据校验失败，未发送任何被改动的数据，请联系一卡通系统管理员 (the order's stored detail failed its integrity check; nothing was served)"
            ),
        ),
        e => e.into(),
    }
}

/// The lines of a detail chunk, each with its line break: a line ends at a CRLF outside
/// quotes. In GB18030 the bytes `"`, `,`, CR and LF only ever stand for themselves (no
/// multi-byte sequence contains them), so the scan is exact on the encoded bytes.
fn chunk_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut quoted = false;
        let mut end = rest.len();
        for (i, &c) in rest.iter().enumerate() {
            match c {
                b'"' => quoted = !quoted,
                b'\n' if !quoted => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
        }
        let (line, tail) = rest.split_at(end);
        rest = tail;
        Some(line)
    })
}

/// The line id a detail line starts with.
fn line_id_of(line: &[u8]) -> Option<i64> {
    let end = line.iter().position(|&c| c == b',')?;
    std::str::from_utf8(&line[..end]).ok()?.parse().ok()
}

/// The next part of a detail served after line `after`: the bytes of the lines of the chunk
/// holding the first line above `after` (only those still in flight when `filter`), how many,
/// the last one served, and the cursor to continue from (the chunk's last line). `None` past
/// the end.
async fn detail_piece(
    store: &Store,
    batch_id: i64,
    d: &DetailRow,
    filter: bool,
    after: i64,
) -> Result<Option<Piece>, StoreError> {
    let Some(chunk) = store.henan_detail_chunk(d, after).await? else {
        return Ok(None);
    };
    if !filter && chunk.first_line > after {
        return Ok(Some(Piece {
            bytes: Bytes::from(chunk.text),
            lines: chunk.lines,
            last: Some(chunk.last_line),
            next: chunk.last_line,
        }));
    }
    let open = if filter {
        Some(
            store
                .henan_in_flight_ids(batch_id, chunk.first_line.max(after + 1), chunk.last_line)
                .await?,
        )
    } else {
        None
    };
    let mut bytes = Vec::with_capacity(chunk.text.len());
    let (mut lines, mut last) = (0i64, None);
    for line in chunk_lines(&chunk.text) {
        let id = line_id_of(line).ok_or_else(|| StoreError::Corrupt {
            what: "henan_release_chunks: a line without its id".into(),
        })?;
        if id <= after || open.as_ref().is_some_and(|o| o.binary_search(&id).is_err()) {
            continue;
        }
        bytes.extend_from_slice(line);
        lines += 1;
        last = Some(id);
    }
    Ok(Some(Piece {
        bytes: Bytes::from(bytes),
        lines,
        last,
        next: chunk.last_line,
    }))
}

struct Piece {
    bytes: Bytes,
    lines: i64,
    last: Option<i64>,
    next: i64,
}

/// RFC 4180 fields of one detail line (its line break removed).
fn csv_fields(line: &str) -> Vec<String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let mut out = Vec::with_capacity(8);
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn wire_line(line: &[u8]) -> Result<WireLine, StoreError> {
    let bad = || StoreError::Corrupt {
        what: "henan_release_chunks: a malformed line".into(),
    };
    let (text, _) = encoding_rs::GB18030.decode_without_bom_handling(line);
    let f = csv_fields(&text);
    let [id, attempt, name, account, bank, amount, period, region]: [String; 8] =
        f.try_into().map_err(|_| bad())?;
    Ok(WireLine {
        line_id: id.parse().map_err(|_| bad())?,
        attempt: attempt.parse().map_err(|_| bad())?,
        name,
        account,
        bank,
        amount,
        period,
        region,
    })
}

/// Up to `limit` lines of a detail above `after` (still in flight when `filter`).
async fn detail_page(
    store: &Store,
    batch_id: i64,
    d: &DetailRow,
    filter: bool,
    after: i64,
    limit: i64,
) -> Result<Vec<WireLine>, StoreError> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let mut out = Vec::with_capacity(limit.min(MAX_PAGE as usize));
    let mut cursor = after;
    while out.len() < limit {
        let Some(p) = detail_piece(store, batch_id, d, filter, cursor).await? else {
            break;
        };
        for line in chunk_lines(&p.bytes) {
            if out.len() == limit {
                break;
            }
            out.push(wire_line(line)?);
        }
        cursor = p.next;
    }
    Ok(out)
}

/// RFC 4180 quoting for the bank file (machine to machine: no spreadsheet neutralisation,
/// which would alter names).
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\r', '\n']) {
        std::borrow::Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn gb18030(text: &str) -> Bytes {
    let (bytes, _, _) = encoding_rs::GB18030.encode(text);
    Bytes::from(bytes.into_owned())
}

/// The CSV's column header.
pub const CSV_HEADER: &str = "明细号,发放次数,姓名,银行账号,开户银行,金额,属期,行政区划";

/// One line of the bank file as the bank receives it, GB18030, with its CRLF: what a
/// release's detail is materialised from ([`ykt_store::henan::DetailSpec`]) and what the
/// stream writes when it reads the lines themselves.
pub fn encode_line(l: &PullLine, out: &mut Vec<u8>) {
    let text = format!(
        "{},{},{},{},{},{},{},{}\r\n",
        l.line_id,
        l.attempt,
        csv_field(&l.name),
        l.account.as_str(),
        csv_field(&l.bank),
        l.amount,
        l.period,
        l.region
    );
    let (bytes, _, _) = encoding_rs::GB18030.encode(&text);
    out.extend_from_slice(&bytes);
}

/// Records how a stream ended, also when the client goes away mid-transfer (the stream is
/// dropped): the pull is then recorded as incomplete.
struct PullGuard {
    store: Store,
    id: i64,
    last: Option<i64>,
    served: i64,
    finished: bool,
}

impl Drop for PullGuard {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let (store, id, last, served) = (self.store.clone(), self.id, self.last, self.served);
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move {
                if let Err(e) = store.henan_pull_finish(id, last, served, false).await {
                    tracing::warn!(error = %e, "could not record an interrupted pull");
                }
            });
        }
        tracing::info!(
            pull = id,
            served,
            "the bank left a streamed pull before its end"
        );
    }
}

struct StreamState {
    store: Store,
    batch_id: i64,
    /// The materialised detail and whether to filter it, or `None`: read the lines.
    detail: Option<(DetailRow, bool)>,
    /// Where the next read starts (a line id).
    cursor: i64,
    /// The detail's parts read ahead by [`StreamState::read_ahead`]'s task; `Ok(None)` marks
    /// the end.
    ahead: Option<tokio::sync::mpsc::Receiver<Result<Option<Piece>, StoreError>>>,
    /// What is sent before anything is read: the header, and the detail's first part.
    ready: std::collections::VecDeque<Bytes>,
    done: bool,
    guard: PullGuard,
}

/// Parts of a detail read ahead of the one being sent: reading and decrypting the next chunk
/// overlaps sending this one.
const READ_AHEAD: usize = 2;

impl StreamState {
    /// Read the rest of the detail from the cursor in a task of its own, [`READ_AHEAD`] parts
    /// ahead of the transfer. The task stops when the transfer is dropped (the bank left).
    fn read_ahead(&mut self) {
        let Some((d, filter)) = self.detail.clone() else {
            return;
        };
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        let (store, batch_id, mut cursor) = (self.store.clone(), self.batch_id, self.cursor);
        tokio::spawn(async move {
            loop {
                let next = detail_piece(&store, batch_id, &d, filter, cursor).await;
                let stop = !matches!(next, Ok(Some(_)));
                if let Ok(Some(p)) = &next {
                    cursor = p.next;
                    if p.lines == 0 {
                        continue;
                    }
                }
                if tx.send(next).await.is_err() || stop {
                    break;
                }
            }
        });
        self.ahead = Some(rx);
    }

    /// The next part of the body after the ready ones, `None` at the end (then the closing
    /// line is sent and the pull recorded complete).
    async fn next_part(&mut self) -> Result<Option<Bytes>, StoreError> {
        if let Some(rx) = self.ahead.as_mut() {
            let Some(next) = rx.recv().await else {
                return Err(StoreError::Corrupt {
                    what: "the detail's reading task ended early".into(),
                });
            };
            let Some(p) = next? else {
                return Ok(None);
            };
            self.cursor = p.next;
            self.guard.served += p.lines;
            self.guard.last = p.last.or(self.guard.last);
            return Ok(Some(p.bytes));
        }
        match &self.detail {
            Some((d, filter)) => loop {
                let Some(p) =
                    detail_piece(&self.store, self.batch_id, d, *filter, self.cursor).await?
                else {
                    return Ok(None);
                };
                self.cursor = p.next;
                if p.lines == 0 {
                    continue;
                }
                self.guard.served += p.lines;
                self.guard.last = p.last.or(self.guard.last);
                return Ok(Some(p.bytes));
            },
            None => {
                let page = self
                    .store
                    .henan_open_page(self.batch_id, self.cursor, STREAM_CHUNK)
                    .await?;
                let Some(last) = page.last().map(|l| l.line_id) else {
                    return Ok(None);
                };
                let mut bytes = Vec::with_capacity(page.len() * 96);
                for l in &page {
                    encode_line(l, &mut bytes);
                }
                self.guard.served += page.len() as i64;
                self.guard.last = Some(last);
                self.cursor = last;
                Ok(Some(Bytes::from(bytes)))
            }
        }
    }
}

async fn lines_csv(
    State(api): State<BankApi>,
    Path(order_no): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let bank = api.authenticate(&headers).await?;
    let (_, b) = api.funded_order(&bank, &order_no).await?;
    if q.limit.is_some() {
        return Err(ApiError::bad_request(
            "CSV 流式获取不分页，请去掉 limit；分页请用 /lines (the stream is not paged)",
        ));
    }
    let after = q.after.unwrap_or(0).max(0);
    let source = detail_source(&api.store, &order_no, b.id).await?;
    let open = match &source {
        Source::Detail(d, false) => d.lines,
        _ => api.store.henan_open_totals(b.id).await?,
    };
    let short = api.short_name(&b.project).await?;
    let pull = api
        .store
        .henan_pull_start(&order_no, &bank, "stream", after)
        .await?;
    let header = format!(
        "发放单号,{},项目简称,{},笔数,{},金额,{}\r\n{CSV_HEADER}\r\n",
        csv_field(&order_no),
        csv_field(&short),
        open.count,
        open.amount
    );
    let mut state = StreamState {
        store: api.store.clone(),
        batch_id: b.id,
        detail: match source {
            Source::Detail(d, filter) => Some((d, filter)),
            Source::Lines => None,
        },
        cursor: after,
        ahead: None,
        ready: std::collections::VecDeque::from([gb18030(&header)]),
        done: false,
        guard: PullGuard {
            store: api.store.clone(),
            id: pull,
            last: None,
            served: 0,
            finished: false,
        },
    };
    // The first part is read before the answer starts: a detail that fails its check is
    // refused with a status, not a truncated 200.
    match state.next_part().await {
        Ok(Some(part)) => {
            state.ready.push_back(part);
            state.read_ahead();
        }
        Ok(None) => {}
        Err(e) => {
            state.guard.finished = true;
            if let Err(e) = api.store.henan_pull_finish(pull, None, 0, false).await {
                tracing::warn!(error = %e, "could not record a refused pull");
            }
            return Err(pull_error(&order_no, e));
        }
    }
    let stream = futures_util::stream::unfold(state, move |mut st| async move {
        if let Some(part) = st.ready.pop_front() {
            return Some((Ok::<Bytes, std::io::Error>(part), st));
        }
        if st.done {
            return None;
        }
        match st.next_part().await {
            Ok(Some(part)) => Some((Ok(part), st)),
            Ok(None) => {
                st.done = true;
                st.guard.finished = true;
                if let Err(e) = st
                    .store
                    .henan_pull_finish(st.guard.id, st.guard.last, st.guard.served, true)
                    .await
                {
                    tracing::warn!(error = %e, "could not record a finished pull");
                }
                Some((Ok(gb18030(&format!("结束,{}\r\n", st.guard.served))), st))
            }
            Err(e) => {
                tracing::error!(error = %e, "reading an order's lines failed mid-stream");
                st.done = true;
                Some((
                    Err(std::io::Error::other("读取明细失败 (reading lines failed)")),
                    st,
                ))
            }
        }
    });
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=GB18030"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// One result as the bank posts it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireResult {
    line_id: i64,
    attempt: i64,
    amount: String,
    /// `credited` or `failed`.
    outcome: String,
    /// For `failed`: `wrong_account`, `dormant_account`, `name_mismatch`, `account_closed`,
    /// `other` (or the Chinese label).
    #[serde(default)]
    reason: Option<String>,
    /// The bank's value date, `YYYY-MM-DD`.
    date: String,
    /// The SMS sent to the card holder (第八条(五)), for credited lines.
    #[serde(default)]
    sms: Option<WireSms>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSms {
    text: String,
    sent_at: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultPost {
    results: Vec<WireResult>,
}

#[derive(Serialize)]
struct Problem {
    line_id: i64,
    attempt: i64,
    problem: String,
}

/// A result's own fields read (amount, outcome, value date), before anything is looked up;
/// the first problem found, in that order.
fn read_wire(r: &WireResult) -> Result<(Fen, BankOutcome, NaiveDate), String> {
    let Some(amount) = parse_amount(&r.amount) else {
        return Err(format!(
            "金额「{}」格式错误，应为两位小数的元，如 420.00 (amount must be yuan with two decimals)",
            r.amount
        ));
    };
    let outcome = match (r.outcome.as_str(), r.reason.as_deref()) {
        ("credited", None) => BankOutcome::Credited,
        ("credited", Some(_)) => {
            return Err("入账成功的结果不应有失败原因 (a credited result has no reason)".into());
        }
        ("failed", Some(reason)) => match FailureReason::parse(reason) {
            Some(reason) => BankOutcome::Failed { reason },
            None => {
                return Err(format!(
                    "失败原因「{reason}」无法识别，应为 wrong_account、dormant_account、name_mismatch、account_closed 或 other (unknown reason)"
                ));
            }
        },
        ("failed", None) => {
            return Err(
                "发放失败须注明原因（第八条第二项） (a failed result needs a reason)".into(),
            );
        }
        (other, _) => {
            return Err(format!(
                "结果「{other}」无法识别，应为 credited 或 failed (outcome must be credited or failed)"
            ));
        }
    };
    let Ok(date) = NaiveDate::parse_from_str(&r.date, "%Y-%m-%d") else {
        return Err(format!(
            "日期「{}」应为 YYYY-MM-DD (date must be YYYY-MM-DD)",
            r.date
        ));
    };
    Ok((amount, outcome, date))
}

/// One result of a post as read by [`read_result_post`]: line, attempt, amount, outcome, date.
pub type WireReading = (i64, i64, Fen, BankOutcome, NaiveDate);

/// Read a result post's body as `POST /orders/{no}/results` does before it consults the
/// store: the JSON, then each result's own fields. The fuzz targets (`tests/fuzz`) call it.
pub fn read_result_post(body: &[u8]) -> Result<Vec<Result<WireReading, String>>, String> {
    let post: ResultPost = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(post
        .results
        .iter()
        .map(|r| read_wire(r).map(|(a, o, d)| (r.line_id, r.attempt, a, o, d)))
        .collect())
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("{what}报文无法解析：{e} (malformed {what} body)"))
    })
}

async fn post_results(
    State(api): State<BankApi>,
    Path(order_no): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let bank = api.authenticate(&headers).await?;
    let (_, b) = api.funded_order(&bank, &order_no).await?;
    let post: ResultPost = match parse_body(&body, "发放结果") {
        Ok(p) => p,
        Err(e) => {
            // Kept for the department without the parser's detail (it may quote the body).
            api.store
                .henan_log_refused_post(
                    &order_no,
                    &bank,
                    0,
                    0,
                    "发放结果报文无法解析（不完整或格式错误），整批未处理 (malformed result post; nothing applied)",
                )
                .await?;
            return Err(e);
        }
    };
    let n = post.results.len();
    if n == 0 {
        return Err(ApiError::bad_request("结果为空 (no results)"));
    }
    if n > MAX_RESULTS {
        return Err(ApiError::bad_request(format!(
            "一次最多反馈{MAX_RESULTS}条结果，本次{n}条，请分批反馈 (at most {MAX_RESULTS} results per post)"
        )));
    }
    let ids: Vec<i64> = post.results.iter().map(|r| r.line_id).collect();
    let facts = api.store.henan_line_facts(b.id, &ids).await?;
    let recorded = api.store.henan_recorded_outcomes(&ids).await?;
    let short = api.short_name(&b.project).await?;

    let mut problems = Vec::new();
    let mut conflicts = Vec::new();
    let mut seen: HashMap<(i64, i64), String> = HashMap::new();
    let mut rows = Vec::new();
    let mut to_apply = Vec::new();
    let mut duplicates = 0u64;
    let mut sms_warnings = Vec::new();
    for r in &post.results {
        let mut bad = |p: String| {
            problems.push(Problem {
                line_id: r.line_id,
                attempt: r.attempt,
                problem: p,
            })
        };
        let Some(f) = facts.get(&r.line_id) else {
            bad(format!(
                "明细{}不属于发放单{order_no} (unknown line {} for this order)",
                r.line_id, r.line_id
            ));
            continue;
        };
        let (amount, outcome, date) = match read_wire(r) {
            Ok(x) => x,
            Err(p) => {
                bad(p);
                continue;
            }
        };
        if amount != f.amount {
            bad(format!(
                "金额{}元与明细金额{}元不符 (amount {} differs from the line's {})",
                amount, f.amount, amount, f.amount
            ));
            continue;
        }
        if r.attempt < 1 || r.attempt > f.attempt {
            bad(format!(
                "明细{}第{}次发放尚未被本行获取 (attempt {} of line {} was never pulled)",
                r.line_id, r.attempt, r.attempt, r.line_id
            ));
            continue;
        }
        let label = match outcome {
            BankOutcome::Credited => "credited",
            BankOutcome::Failed { .. } => "failed",
        };
        let key = (r.line_id, r.attempt);
        match seen.get(&key).or_else(|| recorded.get(&key)) {
            Some(o) if o == label => {
                duplicates += 1;
                continue;
            }
            Some(o) => {
                conflicts.push(Problem {
                    line_id: r.line_id,
                    attempt: r.attempt,
                    problem: format!(
                        "明细{}第{}次发放已反馈为「{}」，不能改为「{}」 (contradicts the recorded outcome)",
                        r.line_id,
                        r.attempt,
                        if o == "credited" { "已入账" } else { "失败" },
                        if label == "credited" { "已入账" } else { "失败" }
                    ),
                });
                continue;
            }
            None => {}
        }
        if r.attempt < f.attempt || f.state != LineState::InFlight {
            conflicts.push(Problem {
                line_id: r.line_id,
                attempt: r.attempt,
                problem: format!(
                    "明细{}第{}次发放已不在途（当前第{}次，{}） (line is no longer in flight at that attempt)",
                    r.line_id,
                    r.attempt,
                    f.attempt,
                    f.state.label_zh()
                ),
            });
            continue;
        }
        seen.insert(key, label.to_owned());
        let sms_ok = match (&outcome, &r.sms) {
            (BankOutcome::Credited, Some(s)) => {
                let p = ykt_province_henan::sms_problems(&s.text, &short, amount);
                if !p.is_empty() {
                    sms_warnings.push(serde_json::json!({"line_id": r.line_id, "problems": p}));
                }
                Some(p.is_empty())
            }
            (BankOutcome::Credited, None) => {
                sms_warnings.push(
                    serde_json::json!({"line_id": r.line_id, "problems": ["未发送到账短信"]}),
                );
                Some(false)
            }
            (BankOutcome::Failed { .. }, _) => None,
        };
        rows.push(ResultRow {
            line_id: r.line_id,
            attempt: r.attempt,
            order_no: order_no.clone(),
            bank: bank.clone(),
            amount,
            outcome: label.into(),
            reason: match outcome {
                BankOutcome::Failed { reason } => Some(reason.as_str().into()),
                BankOutcome::Credited => None,
            },
            bank_date: date.to_string(),
            sms_text: r.sms.as_ref().map(|s| s.text.clone()),
            sms_at: r.sms.as_ref().map(|s| s.sent_at.clone()),
            sms_ok,
        });
        to_apply.push(BankResult {
            order_no: order_no.clone(),
            line_id: r.line_id,
            attempt: u32::try_from(r.attempt).unwrap_or(u32::MAX),
            amount,
            outcome,
            date: date.to_string(),
        });
    }
    if !problems.is_empty() {
        let msg = format!(
            "本次反馈的{n}条结果中有{}条无法受理，整批未处理，请更正后重新反馈 ({} of {n} results refused; nothing applied)",
            problems.len(),
            problems.len()
        );
        api.store
            .henan_log_refused_post(&order_no, &bank, n as u64, problems.len() as u64, &msg)
            .await?;
        return Err(ApiError::unprocessable(msg).with_details(serde_json::json!(problems)));
    }
    if !conflicts.is_empty() {
        let msg = format!(
            "本次反馈的{n}条结果中有{}条与已记录的结果矛盾，整批未处理 ({} of {n} results contradict recorded outcomes; nothing applied)",
            conflicts.len(),
            conflicts.len()
        );
        api.store
            .henan_log_refused_post(&order_no, &bank, n as u64, conflicts.len() as u64, &msg)
            .await?;
        return Err(ApiError::conflict(msg).with_details(serde_json::json!(conflicts)));
    }
    // Kept, applied and its effect recorded in one transaction: a repost after a crash
    // finds either all of it (its results are duplicates) or none (they apply).
    let (from, to) = (api.payment_accounts)(&b, &bank);
    let actor = format!("bank:{bank}");
    let apply = ApplyPost {
        batch_id: b.id,
        results: &to_apply,
        actor: &actor,
        paid_from: &from,
        paid_to: &to,
    };
    let post = AcceptPost {
        order_no: &order_no,
        bank: &bank,
        rows: &rows,
        duplicates,
    };
    let (_, report) = match api
        .store
        .henan_accept_post(&post, (!to_apply.is_empty()).then_some(&apply))
        .await
    {
        Ok(r) => r,
        Err(e) if e.is_conflict() => {
            return Err(ApiError::conflict(
                "同一明细的结果正在被另一请求处理，请稍后重新反馈 (the same lines are being applied concurrently; repost)",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let (applied, anomalies) = match &report {
        Some(r) => {
            duplicates += r.duplicates;
            (r.credited.count + r.failed.count, r.anomalies.len())
        }
        None => (0, 0),
    };
    Ok(Json(serde_json::json!({
        "order_no": order_no,
        "received": n,
        "applied": applied,
        "duplicates": duplicates,
        "anomalies": anomalies,
        "sms_warnings": sms_warnings,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HandoverPost {
    /// The bank's handler (经办人) who stamped the results.
    handler: String,
    credited: WireTotals,
    failed: WireTotals,
    /// The disputed hand-over this one replaces (the bank's remedy), if any.
    #[serde(default)]
    replaces: Option<i64>,
    /// The bank's own number of this hand-over (optional). A hand-over re-sent with a number
    /// already recorded for the order (its answer was lost) answers the recorded hand-over and
    /// records nothing; the same number with other totals is refused (409).
    #[serde(default)]
    handover_no: Option<i64>,
}

/// The answer to a hand-over recorded (now or before: a re-sent one gets the same answer).
fn handover_answer(
    api: &BankApi,
    row: &HandoverRow,
    replayed: bool,
) -> Result<serde_json::Value, ApiError> {
    let received_on = NaiveDate::parse_from_str(&row.received_on, "%Y-%m-%d")
        .map_err(|e| ApiError::internal(&e))?;
    let found = compare_handover(
        HandoverTotals {
            credited: row.bank_credited,
            failed: row.bank_failed,
        },
        HandoverTotals {
            credited: row.sys_credited,
            failed: row.sys_failed,
        },
    );
    let check_by = api
        .calendar
        .add_working_days(received_on, reconcile::CHECK_WITHIN)
        .map(|d| d.to_string());
    let notify_by = (!found.is_empty())
        .then(|| api.calendar.add_working_days(received_on, NOTIFY_WITHIN))
        .transpose()
        .map(|d| d.map(|d| d.to_string()));
    let warning = match (&check_by, &notify_by) {
        (Err(e), _) | (_, Err(e)) => Some(e.to_string()),
        _ => None,
    };
    Ok(serde_json::json!({
        "order_no": row.order_no,
        "seq": row.seq,
        "handover_no": row.handover_no,
        "received_on": row.received_on,
        "check_by": check_by.ok(),
        "notify_by": notify_by.ok().flatten(),
        "discrepancies": found.iter().map(|d| d.describe()).collect::<Vec<_>>(),
        "warning": warning,
        "replayed": replayed,
    }))
}

/// A hand-over the order already has under the bank's number `no`: its answer again when
/// the re-sent one is the same, a refusal when it is another.
fn repeated_handover(
    api: &BankApi,
    order_no: &str,
    no: i64,
    earlier: &[HandoverRow],
    bank_totals: HandoverTotals,
) -> Option<Result<serde_json::Value, ApiError>> {
    let first = earlier.iter().find(|x| x.handover_no == Some(no))?;
    if first.bank_credited != bank_totals.credited || first.bank_failed != bank_totals.failed {
        return Some(Err(ApiError::conflict(format!(
            "发放单{order_no}的交接编号{no}已用于第{}次交接，本次交接的合计与之不同；新的交接请使用新的编号 (hand-over number {no} already used with other totals)",
            first.seq
        ))));
    }
    Some(handover_answer(api, first, true))
}

fn wire_totals(t: &WireTotals, what: &str) -> Result<Totals, ApiError> {
    let amount = parse_amount(&t.amount).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{what}金额「{}」格式错误 (malformed amount)",
            t.amount
        ))
    })?;
    Ok(Totals {
        count: t.count,
        amount,
    })
}

async fn post_handover(
    State(api): State<BankApi>,
    Path(order_no): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let bank = api.authenticate(&headers).await?;
    let (_, b) = api.funded_order(&bank, &order_no).await?;
    let h: HandoverPost = parse_body(&body, "交易结果交接")?;
    if h.handler.trim().is_empty() {
        return Err(ApiError::bad_request(
            "须填写银行经办人（第二十六条：加盖银行及经办人印章） (the handler is required)",
        ));
    }
    let bank_totals = HandoverTotals {
        credited: wire_totals(&h.credited, "已入账")?,
        failed: wire_totals(&h.failed, "发放失败")?,
    };
    if let Some(no) = h.handover_no {
        if no < 1 {
            return Err(ApiError::bad_request(
                "交接编号应为正整数 (handover_no must be positive)",
            ));
        }
        let earlier = api.store.henan_handovers(Some(&order_no)).await?;
        if let Some(answer) = repeated_handover(&api, &order_no, no, &earlier, bank_totals) {
            return answer.map(Json);
        }
    }
    let tally = api.store.tally(b.id).await?;
    if tally.in_flight.count > 0 {
        return Err(ApiError::conflict(format!(
            "发放单{order_no}尚有{}笔明细未反馈结果，完成本批次代发后再交接（第二十六条） ({} lines still in flight)",
            tally.in_flight.count, tally.in_flight.count
        )));
    }
    // The round: what the bank posted since its last accepted hand-over of this order; or,
    // for a hand-over that replaces a disputed one (the bank's remedy), the same posts as it.
    let earlier = api.store.henan_handovers(Some(&order_no)).await?;
    let last_accepted = |before: i64| {
        earlier
            .iter()
            .filter(|h| h.state != "disputed" && h.seq < before)
            .map(|h| h.upto_post)
            .max()
            .unwrap_or(0)
    };
    let (previous, upto) = match h.replaces {
        Some(seq) => {
            let Some(d) = earlier.iter().find(|x| x.seq == seq) else {
                return Err(ApiError::unprocessable(format!(
                    "发放单{order_no}没有第{seq}次交接 (no hand-over {seq})"
                )));
            };
            if d.state != "disputed" {
                return Err(ApiError::conflict(format!(
                    "第{seq}次交接未被主管部门指出错误，无需重新交接 (hand-over {seq} is not disputed)"
                )));
            }
            let before = earlier
                .iter()
                .filter(|x| x.state != "disputed" && x.upto_post < d.upto_post)
                .map(|x| x.upto_post)
                .max()
                .unwrap_or(0);
            (before, Some(d.upto_post))
        }
        None => (last_accepted(i64::MAX), None),
    };
    let (credited, failed, upto_post) = api
        .store
        .henan_round_totals(&order_no, previous, upto)
        .await?;
    if upto_post == previous {
        return Err(ApiError::conflict(format!(
            "发放单{order_no}自上次交接后没有新的发放结果，无需交接 (nothing posted since the last hand-over)"
        )));
    }
    let sys = HandoverTotals { credited, failed };
    let found = compare_handover(bank_totals, sys);
    let discrepancy = found
        .iter()
        .map(|d| d.describe())
        .collect::<Vec<_>>()
        .join("；");
    let today = (api.today)();
    let row = HandoverRow {
        order_no: order_no.clone(),
        seq: 0,
        bank: bank.clone(),
        handler: h.handler.trim().to_owned(),
        received_on: today.to_string(),
        bank_credited: bank_totals.credited,
        bank_failed: bank_totals.failed,
        sys_credited: sys.credited,
        sys_failed: sys.failed,
        upto_post,
        discrepancy,
        state: "open".into(),
        done_on: None,
        done_by: None,
        note: None,
        handover_no: h.handover_no,
    };
    let seq = match api.store.henan_record_handover(&row).await {
        Ok(seq) => seq,
        Err(e) => {
            // The same number sent twice at once: the other request recorded it first.
            if let Some(no) = h.handover_no {
                let earlier = api.store.henan_handovers(Some(&order_no)).await?;
                if let Some(answer) = repeated_handover(&api, &order_no, no, &earlier, bank_totals)
                {
                    return answer.map(Json);
                }
            }
            return Err(e.into());
        }
    };
    handover_answer(&api, &HandoverRow { seq, ..row }, false).map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementPost {
    /// `YYYY-MM` (monthly) or `YYYY` (annual).
    period: String,
    projects: Vec<StatementProject>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementProject {
    code: String,
    count: u64,
    amount: String,
}

/// The first and last day of a statement period.
fn period_range(period: &str) -> Option<(NaiveDate, NaiveDate, &'static str)> {
    if let Ok(y) = period.parse::<i32>() {
        let from = NaiveDate::from_ymd_opt(y, 1, 1)?;
        let to = NaiveDate::from_ymd_opt(y, 12, 31)?;
        return (period.len() == 4).then_some((from, to, "annual"));
    }
    let (y, m) = period.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let from = NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)?;
    let next = if from.month() == 12 {
        NaiveDate::from_ymd_opt(from.year() + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(from.year(), from.month() + 1, 1)?
    };
    Some((from, next.pred_opt()?, "monthly"))
}

async fn post_statement(
    State(api): State<BankApi>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let bank = api.authenticate(&headers).await?;
    let s: StatementPost = parse_body(&body, "台账对账")?;
    let (from, to, kind) = period_range(&s.period).ok_or_else(|| {
        ApiError::bad_request(format!(
            "对账期间「{}」应为 YYYY-MM（月度）或 YYYY（年度） (period must be YYYY-MM or YYYY)",
            s.period
        ))
    })?;
    let today = (api.today)();
    if from > today {
        return Err(ApiError::conflict(format!(
            "对账期间{}尚未开始 (the period has not started)",
            s.period
        )));
    }
    if kind == "annual" && !reconcile::annual_open(from.year(), today) {
        return Err(ApiError::conflict(format!(
            "{}年度汇总核对应在次年1月进行（第二十六条） (the annual reconciliation happens in January of the next year)",
            from.year()
        )));
    }
    let mut bank_side = Vec::new();
    for p in &s.projects {
        let amount = parse_amount(&p.amount).ok_or_else(|| {
            ApiError::bad_request(format!(
                "项目{}金额「{}」格式错误 (malformed amount)",
                p.code, p.amount
            ))
        })?;
        bank_side.push((
            p.code.clone(),
            Totals {
                count: p.count,
                amount,
            },
        ));
    }
    let platform = api
        .store
        .henan_credited_by_project(&bank, &from.to_string(), &to.to_string())
        .await?;
    let lines = compare_statement(&bank_side, &platform);
    let matches = lines.iter().all(|l| l.matches());
    api.store
        .henan_record_statement(&StatementRow {
            bank: bank.clone(),
            period: s.period.clone(),
            kind: kind.into(),
            received_on: today.to_string(),
            lines: serde_json::to_string(&lines).map_err(|e| ApiError::internal(&e))?,
            matches,
        })
        .await?;
    let view: Vec<_> = lines
        .iter()
        .map(|l| {
            serde_json::json!({
                "project": l.project,
                "bank": WireTotals::from(l.bank),
                "platform": WireTotals::from(l.platform),
                "matches": l.matches(),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        "bank": bank,
        "period": s.period,
        "kind": kind,
        "matches": matches,
        "lines": view,
        "due": (kind == "annual").then(|| reconcile::annual_due(from.year()).to_string()),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_periods() {
        let (f, t, k) = period_range("2026-02").unwrap();
        assert_eq!(
            (f.to_string(), t.to_string(), k),
            ("2026-02-01".into(), "2026-02-28".into(), "monthly")
        );
        let (f, t, k) = period_range("2025").unwrap();
        assert_eq!(
            (f.to_string(), t.to_string(), k),
            ("2025-01-01".into(), "2025-12-31".into(), "annual")
        );
        assert!(period_range("2025-13").is_none());
        assert!(period_range("25").is_none());
        assert!(period_range("2025-1").is_none());
    }

    #[test]
    fn csv_fields_are_quoted() {
        assert_eq!(csv_field("王秀英"), "王秀英");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
    }
}
