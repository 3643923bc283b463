//! 黑龙江省's own tables and queries (migrations `0100_heilongjiang.sql`):
//!
//! - the archive of every message exchanged with the budget system (`hlj_messages`), bodies
//!   encrypted because vouchers carry payee accounts; the platform dates of the exchanges are
//!   what the notice deadlines of 塔河县方案(七) count from;
//! - the treasury agent bank's per-line returns (`hlj_returns`): cross-bank payments and the fees
//!   the agent bank bore (黑财监〔2021〕30号 二(三)三);
//! - the read models of the province's reports: the six supervision indicators of
//!   黑财监〔2023〕1号 三, the ledger entries of a batch (for the grain-risk-fund clearing
//!   statement), the card-activation census.

use crate::db::{Store, TxInner, with_pool, with_write};
use crate::error::{Result, StoreError};
use crate::payments::BatchRow;
use crate::registers::{
    MAX_IN_LIST, in_list_bucket, list_placeholders, open_str, padded, placeholders,
};
use crate::vault::{BlindIndex, IndexKind};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use ykt_kernel::Fen;
use ykt_kernel::batch::LineState;
use ykt_kernel::ledger::AccountKind;

type MessageTuple = (
    i64,
    Option<i64>,
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    Vec<u8>,
    String,
    String,
);

const MESSAGE_SELECT: &str = "id, batch_id, order_no, voucher_no, kind, direction, request, status, body_enc, body_sha256, on_date";

/// Returns recorded per SQLite statement (nine parameters each).
const RETURN_ROWS: usize = 500;

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A message to archive.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub batch_id: Option<i64>,
    pub order_no: &'a str,
    pub voucher_no: &'a str,
    /// e.g. `plan`, `plan_receipt`, `voucher_5201`, `return_5201`.
    pub kind: &'a str,
    /// `out` (platform → budget system) or `in`.
    pub direction: &'a str,
    /// e.g. `POST /plans`.
    pub request: &'a str,
    /// HTTP status of a response.
    pub status: Option<u16>,
    /// The bytes exactly as exchanged (GB18030 XML).
    pub body: &'a [u8],
    /// The platform's date.
    pub on_date: &'a str,
}

/// An archived message, decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    pub id: i64,
    pub batch_id: Option<i64>,
    pub order_no: String,
    pub voucher_no: String,
    pub kind: String,
    pub direction: String,
    pub request: String,
    pub status: Option<i64>,
    pub body: Vec<u8>,
    pub body_sha256: String,
    pub on_date: String,
}

/// When a kind of message was exchanged for a batch (no body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDate {
    pub kind: String,
    pub status: Option<i64>,
    pub on_date: String,
}

/// A return to record (see [`Store::hlj_record_returns`]).
#[derive(Debug, Clone)]
pub struct NewReturn<'a> {
    pub line_id: i64,
    pub attempt: i64,
    pub voucher_no: &'a str,
    pub agent_bank: &'a str,
    pub credited: bool,
    pub cross_bank: bool,
    pub fee: Fen,
    pub paid: Fen,
    pub bank_date: &'a str,
}

/// The bank's return for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnRow {
    pub line_id: i64,
    pub attempt: i64,
    pub batch_id: i64,
    pub voucher_no: String,
    pub agent_bank: String,
    pub card_bank: String,
    pub credited: bool,
    pub cross_bank: bool,
    pub fee: Fen,
    pub paid: Fen,
    pub bank_date: String,
}

/// A payment line as the supervision indicators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KpiLine {
    pub project: String,
    /// The batch's county (12-digit code).
    pub region: String,
    pub state: LineState,
    /// Whether the lines were sent to the bank (an attempt at least).
    pub sent: bool,
    /// For credited lines: whether the account they were credited to is the beneficiary's
    /// social security card account in the card registry.
    pub on_card: Option<bool>,
    /// How many lines are alike in all of the above, and their amount.
    pub lines: u64,
    pub amount: Fen,
}

/// How many lines [`Store::hlj_kpi_lines`] reads at a time.
const KPI_PAGE: i64 = 5_000;

/// A roster line the card registry found with an inactive financial account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InactiveCard {
    pub roster_id: i64,
    pub row_no: i64,
    pub project: String,
    /// The importing unit's region (12 digits).
    pub scope: String,
    pub id_masked: String,
}

/// A ledger entry with its postings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    pub id: i64,
    pub batch_id: Option<i64>,
    pub kind: String,
    pub memo: String,
    pub subject: Option<String>,
    pub postings: Vec<(AccountKind, String, Fen)>,
}

impl Store {
    /// The batch with this order number (发放单号).
    pub async fn hlj_batch_by_order(&self, order_no: &str) -> Result<Option<BatchRow>> {
        let id: Option<i64> = with_pool!(self, |p| {
            sqlx::query_scalar("SELECT id FROM batches WHERE order_no = $1")
                .bind(order_no)
                .fetch_optional(p)
                .await?
        });
        match id {
            Some(id) => self.batch(id).await,
            None => Ok(None),
        }
    }

    /// The batch whose treasury reference (voucher number) or order number is `reference`.
    pub async fn hlj_batch_by_ref(&self, reference: &str) -> Result<Option<BatchRow>> {
        let id: Option<i64> = with_pool!(self, |p| {
            sqlx::query_scalar("SELECT id FROM batches WHERE treasury_ref = $1 OR order_no = $1 ORDER BY id LIMIT 1")
                .bind(reference)
                .fetch_optional(p)
                .await?
        });
        match id {
            Some(id) => self.batch(id).await,
            None => Ok(None),
        }
    }

    /// Archive a message (body encrypted). Returns its id.
    pub async fn hlj_archive(&self, m: &NewMessage<'_>) -> Result<i64> {
        let sha = hex::encode(Sha256::digest(m.body));
        let enc = self.vault.encrypt(m.body);
        let at = now();
        crate::failpoints::hit("hlj.archive.before_commit");
        let id = with_write!(self, |p| {
            sqlx::query_scalar(
                "INSERT INTO hlj_messages (batch_id, order_no, voucher_no, kind, direction, request, status, body_enc, body_sha256, on_date, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            )
            .bind(m.batch_id)
            .bind(m.order_no)
            .bind(m.voucher_no)
            .bind(m.kind)
            .bind(m.direction)
            .bind(m.request)
            .bind(m.status.map(i64::from))
            .bind(enc.as_slice())
            .bind(&sha)
            .bind(m.on_date)
            .bind(&at)
            .fetch_one(p)
            .await?
        });
        crate::failpoints::hit("hlj.archive.after_commit");
        Ok(id)
    }

    /// The archived messages of a batch's order number, oldest first, decrypted.
    pub async fn hlj_messages(&self, order_no: &str) -> Result<Vec<MessageRow>> {
        let rows: Vec<MessageTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!(
                "SELECT {MESSAGE_SELECT} FROM hlj_messages WHERE order_no = $1 ORDER BY id"
            ))
            .bind(order_no)
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(|t| self.message_row(t)).collect()
    }

    /// The ids of an order's archived messages, oldest first: read them one at a time with
    /// [`Store::hlj_message`] (a province-scale order's messages are hundreds of MB together).
    pub async fn hlj_message_ids(&self, order_no: &str) -> Result<Vec<i64>> {
        Ok(with_pool!(self, |p| {
            sqlx::query_scalar("SELECT id FROM hlj_messages WHERE order_no = $1 ORDER BY id")
                .bind(order_no)
                .fetch_all(p)
                .await?
        }))
    }

    /// One archived message, decrypted.
    pub async fn hlj_message(&self, id: i64) -> Result<Option<MessageRow>> {
        let row: Option<MessageTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!(
                "SELECT {MESSAGE_SELECT} FROM hlj_messages WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(p)
            .await?
        });
        row.map(|t| self.message_row(t)).transpose()
    }

    fn message_row(&self, t: MessageTuple) -> Result<MessageRow> {
        let body = self.vault.decrypt(&t.8)?;
        if hex::encode(Sha256::digest(&body)) != t.9 {
            return Err(StoreError::corrupt("hlj_messages.body"));
        }
        Ok(MessageRow {
            id: t.0,
            batch_id: t.1,
            order_no: t.2,
            voucher_no: t.3,
            kind: t.4,
            direction: t.5,
            request: t.6,
            status: t.7,
            body,
            body_sha256: t.9,
            on_date: t.10,
        })
    }

    /// Kind, status and platform date of every message of an order, oldest first.
    pub async fn hlj_message_dates(&self, order_no: &str) -> Result<Vec<MessageDate>> {
        let rows: Vec<(String, Option<i64>, String)> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT kind, status, on_date FROM hlj_messages WHERE order_no = $1 ORDER BY id",
            )
            .bind(order_no)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(kind, status, on_date)| MessageDate {
                kind,
                status,
                on_date,
            })
            .collect())
    }

    /// Record the bank's returns of a delivery, in one transaction. A return is kept only for
    /// a line of the batch; the first report of a line's attempt wins and a repeat changes
    /// nothing. Returns how many were new.
    pub async fn hlj_record_returns(&self, batch_id: i64, rows: &[NewReturn<'_>]) -> Result<u64> {
        if rows
            .iter()
            .any(|r| r.fee.is_negative() || r.paid.is_negative() || r.attempt < 1)
        {
            return Err(StoreError::Invalid {
                reason: "回单金额或次数无效 (negative amount or attempt below 1)".into(),
            });
        }
        // The first report of a line's attempt wins, also within one delivery: keep the
        // first, then insert the rest in a few statements (was one INSERT per return).
        let mut seen = std::collections::HashSet::new();
        let rows: Vec<&NewReturn<'_>> = rows
            .iter()
            .filter(|r| seen.insert((r.line_id, r.attempt)))
            .collect();
        let mut tx = self.begin().await?;
        let mut n = 0;
        match &mut tx.inner {
            TxInner::Sqlite(t) => {
                for chunk in rows.chunks(RETURN_ROWS) {
                    let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                    let sql = format!(
                        "INSERT INTO hlj_returns (line_id, attempt, batch_id, voucher_no, agent_bank, card_bank, credited, cross_bank, fee_fen, paid_fen, bank_date) \
                         SELECT l.id, v.column2, l.batch_id, v.column3, v.column4, l.bank, v.column5, v.column6, v.column7, v.column8, v.column9 \
                         FROM (VALUES {values}) AS v JOIN payment_lines l ON l.id = v.column1 WHERE l.batch_id = ? \
                         ON CONFLICT (line_id, attempt) DO NOTHING"
                    );
                    let mut q = sqlx::query(&sql);
                    for r in chunk {
                        q = q
                            .bind(r.line_id)
                            .bind(r.attempt)
                            .bind(r.voucher_no)
                            .bind(r.agent_bank)
                            .bind(i64::from(r.credited))
                            .bind(i64::from(r.cross_bank))
                            .bind(r.fee.0)
                            .bind(r.paid.0)
                            .bind(r.bank_date);
                    }
                    n += q.bind(batch_id).execute(&mut **t).await?.rows_affected();
                }
            }
            TxInner::Postgres(t) => {
                for chunk in rows.chunks(RETURN_ROWS * 10) {
                    let col = |f: &dyn Fn(&NewReturn<'_>) -> i64| -> Vec<i64> {
                        chunk.iter().map(|r| f(r)).collect()
                    };
                    let txt = |f: &dyn Fn(&NewReturn<'_>) -> String| -> Vec<String> {
                        chunk.iter().map(|r| f(r)).collect()
                    };
                    n += sqlx::query(
                        "INSERT INTO hlj_returns (line_id, attempt, batch_id, voucher_no, agent_bank, card_bank, credited, cross_bank, fee_fen, paid_fen, bank_date) \
                         SELECT l.id, v.attempt, l.batch_id, v.voucher_no, v.agent_bank, l.bank, v.credited, v.cross_bank, v.fee, v.paid, v.bank_date \
                         FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[]) \
                           AS v (line_id, attempt, voucher_no, agent_bank, credited, cross_bank, fee, paid, bank_date) \
                         JOIN payment_lines l ON l.id = v.line_id WHERE l.batch_id = $10 \
                         ON CONFLICT (line_id, attempt) DO NOTHING",
                    )
                    .bind(col(&|r| r.line_id))
                    .bind(col(&|r| r.attempt))
                    .bind(txt(&|r| r.voucher_no.to_owned()))
                    .bind(txt(&|r| r.agent_bank.to_owned()))
                    .bind(col(&|r| i64::from(r.credited)))
                    .bind(col(&|r| i64::from(r.cross_bank)))
                    .bind(col(&|r| r.fee.0))
                    .bind(col(&|r| r.paid.0))
                    .bind(txt(&|r| r.bank_date.to_owned()))
                    .bind(batch_id)
                    .execute(&mut **t)
                    .await?
                    .rows_affected();
                }
            }
        }
        crate::failpoints::hit("hlj.returns.before_commit");
        tx.commit().await?;
        crate::failpoints::hit("hlj.returns.after_commit");
        Ok(n)
    }

    /// Every line of a batch with its current attempt and period, without decrypting anything
    /// (what a delivery or a collection needs of the lines it does not send).
    pub async fn hlj_line_attempts(&self, batch_id: i64) -> Result<Vec<(i64, i64, String)>> {
        Ok(with_pool!(self, |p| {
            sqlx::query_as("SELECT id, attempt, period FROM payment_lines WHERE batch_id = $1")
                .bind(batch_id)
                .fetch_all(p)
                .await?
        }))
    }

    /// `(id, period)` of a batch's lines with ids from `first` to `last`, nothing decrypted
    /// (the periods of a part of a voucher). By the range of primary keys (the batch index
    /// would read the whole batch for each part); the batch is checked here.
    pub async fn hlj_line_periods(
        &self,
        batch_id: i64,
        first: i64,
        last: i64,
    ) -> Result<Vec<(i64, String)>> {
        let rows: Vec<(i64, i64, String)> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT id, batch_id, period FROM payment_lines WHERE id >= $1 AND id <= $2",
            )
            .bind(first)
            .bind(last)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .filter(|r| r.1 == batch_id)
            .map(|(id, _, period)| (id, period))
            .collect())
    }

    /// Which attempts of a batch's lines have a recorded return, and whether it was credited.
    pub async fn hlj_return_flags(&self, batch_id: i64) -> Result<Vec<(i64, i64, bool)>> {
        let rows: Vec<(i64, i64, i64)> = with_pool!(self, |p| {
            sqlx::query_as("SELECT line_id, attempt, credited FROM hlj_returns WHERE batch_id = $1")
                .bind(batch_id)
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().map(|(l, a, c)| (l, a, c == 1)).collect())
    }

    /// Every recorded return of a batch as (line, attempt, cross-bank, fee borne): what the
    /// results listing needs of them, 32 bytes a return (not [`Store::hlj_returns`]' rows).
    pub async fn hlj_return_fees(&self, batch_id: i64) -> Result<Vec<(i64, i64, bool, Fen)>> {
        let rows: Vec<(i64, i64, i64, i64)> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT line_id, attempt, cross_bank, fee_fen FROM hlj_returns WHERE batch_id = $1",
            )
            .bind(batch_id)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(l, a, c, f)| (l, a, c == 1, Fen(f)))
            .collect())
    }

    /// [`Store::hlj_return_fees`] of some lines of a batch only (a page of a results
    /// listing), by line (the returns' primary key), [`MAX_IN_LIST`] lines at a time.
    pub async fn hlj_return_fees_of(
        &self,
        batch_id: i64,
        line_ids: &[i64],
    ) -> Result<Vec<(i64, i64, bool, Fen)>> {
        let mut ids = line_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::new();
        for chunk in ids.chunks(MAX_IN_LIST) {
            let sql = format!(
                "SELECT line_id, batch_id, attempt, cross_bank, fee_fen FROM hlj_returns WHERE line_id IN ({})",
                list_placeholders(self.backend(), in_list_bucket(chunk.len()))
            );
            let rows: Vec<(i64, i64, i64, i64, i64)> = with_pool!(self, |p| {
                let mut q = sqlx::query_as(&sql);
                for id in padded(chunk) {
                    q = q.bind(id);
                }
                q.fetch_all(p).await?
            });
            out.extend(
                rows.into_iter()
                    .filter(|r| r.1 == batch_id)
                    .map(|(l, _, a, c, f)| (l, a, c == 1, Fen(f))),
            );
        }
        Ok(out)
    }

    /// For some lines of a batch (a page of returns): each line's current attempt, and which
    /// of its attempts have a recorded return and whether it was credited. Read by line, so a
    /// page costs what it holds, not the batch (`hlj_line_attempts`, `hlj_return_flags`).
    #[allow(clippy::type_complexity)]
    pub async fn hlj_page_state(
        &self,
        batch_id: i64,
        line_ids: &[i64],
    ) -> Result<(Vec<(i64, i64)>, Vec<(i64, i64, bool)>)> {
        let mut ids = line_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let (mut attempts, mut flags) = (Vec::new(), Vec::new());
        for chunk in ids.chunks(MAX_IN_LIST) {
            let list = list_placeholders(self.backend(), in_list_bucket(chunk.len()));
            let a_sql =
                format!("SELECT id, batch_id, attempt FROM payment_lines WHERE id IN ({list})");
            let f_sql = format!(
                "SELECT line_id, batch_id, attempt, credited FROM hlj_returns WHERE line_id IN ({list})"
            );
            let a: Vec<(i64, i64, i64)> = with_pool!(self, |p| {
                let mut q = sqlx::query_as(&a_sql);
                for id in padded(chunk) {
                    q = q.bind(id);
                }
                q.fetch_all(p).await?
            });
            let f: Vec<(i64, i64, i64, i64)> = with_pool!(self, |p| {
                let mut q = sqlx::query_as(&f_sql);
                for id in padded(chunk) {
                    q = q.bind(id);
                }
                q.fetch_all(p).await?
            });
            attempts.extend(
                a.into_iter()
                    .filter(|r| r.1 == batch_id)
                    .map(|(id, _, at)| (id, at)),
            );
            flags.extend(
                f.into_iter()
                    .filter(|r| r.1 == batch_id)
                    .map(|(l, _, at, c)| (l, at, c == 1)),
            );
        }
        Ok((attempts, flags))
    }

    /// The numbers of the vouchers sent to the agent bank for an order (the original and its
    /// re-payments), without reading the message bodies.
    pub async fn hlj_sent_vouchers(&self, order_no: &str) -> Result<Vec<String>> {
        Ok(with_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT DISTINCT voucher_no FROM hlj_messages WHERE order_no = $1 AND direction = 'in' \
                 AND kind = 'voucher_notice' AND (request LIKE '%/send' OR request LIKE '%/repay') ORDER BY voucher_no",
            )
            .bind(order_no)
            .fetch_all(p)
            .await?
        }))
    }

    /// The recorded returns of a province's batches (all when `batch_id` is `None`).
    pub async fn hlj_returns(
        &self,
        province: &str,
        batch_id: Option<i64>,
    ) -> Result<Vec<ReturnRow>> {
        type T = (
            i64,
            i64,
            i64,
            String,
            String,
            String,
            i64,
            i64,
            i64,
            i64,
            String,
        );
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT r.line_id, r.attempt, r.batch_id, r.voucher_no, r.agent_bank, r.card_bank, r.credited, r.cross_bank, r.fee_fen, r.paid_fen, r.bank_date \
                 FROM hlj_returns r JOIN batches b ON b.id = r.batch_id \
                 WHERE b.province = $1 AND ($2 IS NULL OR r.batch_id = $2) ORDER BY r.batch_id, r.line_id, r.attempt",
            )
            .bind(province)
            .bind(batch_id)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| ReturnRow {
                line_id: t.0,
                attempt: t.1,
                batch_id: t.2,
                voucher_no: t.3,
                agent_bank: t.4,
                card_bank: t.5,
                credited: t.6 == 1,
                cross_bank: t.7 == 1,
                fee: Fen(t.8),
                paid: Fen(t.9),
                bank_date: t.10,
            })
            .collect())
    }

    /// The payment lines of a province's batches counted by project, county, state, whether
    /// sent, and for credited lines whether they reached the beneficiary's social security
    /// card account (the account of its credited attempt, compared by blind index with the
    /// card registry's account). Read a page of lines at a time, by id: a province's million
    /// lines are counted, never held.
    pub async fn hlj_kpi_lines(&self, province: &str) -> Result<Vec<KpiLine>> {
        type T = (i64, String, String, String, i64, i64, Vec<u8>);
        type Key = (String, String, String, bool, Option<bool>);
        let mut groups: std::collections::BTreeMap<Key, (u64, i64)> = Default::default();
        let mut after = i64::MIN;
        loop {
            let rows: Vec<T> = with_pool!(self, |p| {
                sqlx::query_as(
                    "SELECT l.id, b.project, b.region, l.state, l.attempt, l.amount_fen, l.person_idx \
                     FROM payment_lines l JOIN batches b ON b.id = l.batch_id WHERE b.province = $1 AND l.id > $2 ORDER BY l.id LIMIT $3",
                )
                .bind(province)
                .bind(after)
                .bind(KPI_PAGE)
                .fetch_all(p)
                .await?
            });
            let Some(last) = rows.last() else {
                break;
            };
            after = last.0;
            // Credited attempts' accounts and the registry's card accounts, for credited lines.
            let credited: Vec<&T> = rows.iter().filter(|t| t.3 == "credited").collect();
            let mut on_card: HashMap<i64, bool> = HashMap::new();
            for chunk in credited.chunks(400) {
                let ids: Vec<i64> = chunk.iter().map(|t| t.0).collect();
                let sql = format!(
                    "SELECT a.line_id, a.account_enc, c.account_idx FROM line_attempts a \
                     JOIN payment_lines l ON l.id = a.line_id AND l.attempt = a.attempt \
                     LEFT JOIN cards c ON c.person_idx = l.person_idx \
                     WHERE a.line_id IN ({})",
                    placeholders(1, ids.len())
                );
                let found: Vec<(i64, Vec<u8>, Option<Vec<u8>>)> = with_pool!(self, |p| {
                    let mut q = sqlx::query_as(&sql);
                    for id in &ids {
                        q = q.bind(*id);
                    }
                    q.fetch_all(p).await?
                });
                let idx_of: HashMap<i64, &Vec<u8>> = chunk.iter().map(|t| (t.0, &t.6)).collect();
                for (line, enc, card_idx) in found {
                    let Some(person) = idx_of.get(&line) else {
                        continue;
                    };
                    let person: BlindIndex = person
                        .as_slice()
                        .try_into()
                        .map_err(|_| StoreError::corrupt("payment_lines.person_idx"))?;
                    let account = open_str(&self.vault, "line_attempts.account", &person, &enc)?;
                    let idx = self.vault.blind_index(IndexKind::Account, &account);
                    on_card.insert(
                        line,
                        card_idx.is_some_and(|c| c.as_slice() == idx.as_slice()),
                    );
                }
            }
            for t in &rows {
                let on_card =
                    (t.3 == "credited").then(|| on_card.get(&t.0).copied().unwrap_or(false));
                let g = groups
                    .entry((t.1.clone(), t.2.clone(), t.3.clone(), t.4 >= 1, on_card))
                    .or_default();
                g.0 += 1;
                g.1 += t.5;
            }
        }
        groups
            .into_iter()
            .map(
                |((project, region, state, sent, on_card), (lines, amount))| {
                    let state = LineState::parse(&state)
                        .ok_or_else(|| StoreError::corrupt("payment_lines.state"))?;
                    Ok(KpiLine {
                        project,
                        region,
                        state,
                        sent,
                        on_card,
                        lines,
                        amount: Fen(amount),
                    })
                },
            )
            .collect()
    }

    /// The credited returns of a province's batches counted by agent bank and card bank:
    /// (agent bank, card bank, credited, of which cross-bank, amount paid, fees borne).
    pub async fn hlj_cross_bank(
        &self,
        province: &str,
    ) -> Result<Vec<(String, String, u64, u64, Fen, Fen)>> {
        let rows: Vec<(String, String, i64, i64, i64, i64)> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT r.agent_bank, r.card_bank, COUNT(*), CAST(SUM(r.cross_bank) AS BIGINT), CAST(SUM(r.paid_fen) AS BIGINT), CAST(SUM(r.fee_fen) AS BIGINT) \
                 FROM hlj_returns r JOIN batches b ON b.id = r.batch_id \
                 WHERE b.province = $1 AND r.credited = 1 GROUP BY r.agent_bank, r.card_bank",
            )
            .bind(province)
            .fetch_all(p)
            .await?
        });
        // In the banks' names' byte order on both backends (not the server's collation).
        let mut rows = rows;
        rows.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
        Ok(rows
            .into_iter()
            .map(|(a, c, n, x, paid, fee)| {
                (
                    a,
                    c,
                    u64::try_from(n).unwrap_or(0),
                    u64::try_from(x).unwrap_or(0),
                    Fen(paid),
                    Fen(fee),
                )
            })
            .collect())
    }

    /// Roster lines of a province rejected because the card's financial account is not
    /// activated (one per roster line, however many problems it had).
    pub async fn hlj_inactive_cards(&self, province: &str) -> Result<Vec<InactiveCard>> {
        let rows: Vec<(i64, i64, String, String, String)> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT i.roster_id, i.row_no, r.project, r.scope, MIN(i.id_masked) FROM roster_issues i JOIN rosters r ON r.id = i.roster_id \
                 WHERE r.province = $1 AND i.code = 'card.inactive' GROUP BY i.roster_id, i.row_no, r.project, r.scope ORDER BY i.roster_id, i.row_no",
            )
            .bind(province)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| InactiveCard {
                roster_id: t.0,
                row_no: t.1,
                project: t.2,
                scope: t.3,
                id_masked: t.4,
            })
            .collect())
    }

    /// The ledger entries of some batches with their postings, oldest first.
    pub async fn hlj_ledger(&self, batch_ids: &[i64]) -> Result<Vec<LedgerRow>> {
        let mut out: Vec<LedgerRow> = Vec::new();
        for chunk in batch_ids.chunks(400) {
            let sql = format!(
                "SELECT e.id, e.batch_id, e.kind, e.memo, e.subject, p.account_kind, p.owner, p.amount_fen \
                 FROM ledger_entries e JOIN ledger_postings p ON p.entry_id = e.id \
                 WHERE e.batch_id IN ({}) ORDER BY e.id, p.amount_fen",
                placeholders(1, chunk.len())
            );
            type T = (
                i64,
                Option<i64>,
                String,
                String,
                Option<String>,
                String,
                String,
                i64,
            );
            let rows: Vec<T> = with_pool!(self, |p| {
                let mut q = sqlx::query_as(&sql);
                for id in chunk {
                    q = q.bind(*id);
                }
                q.fetch_all(p).await?
            });
            for t in rows {
                let kind = AccountKind::parse(&t.5)
                    .ok_or_else(|| StoreError::corrupt("ledger_postings.account_kind"))?;
                match out.last_mut() {
                    Some(e) if e.id == t.0 => e.postings.push((kind, t.6, Fen(t.7))),
                    _ => out.push(LedgerRow {
                        id: t.0,
                        batch_id: t.1,
                        kind: t.2,
                        memo: t.3,
                        subject: t.4,
                        postings: vec![(kind, t.6, Fen(t.7))],
                    }),
                }
            }
        }
        out.sort_by_key(|e| e.id);
        Ok(out)
    }

    /// Whether a line was ever reported credited in more than one attempt (must never be).
    pub async fn hlj_lines_credited_twice(&self, batch_id: i64) -> Result<i64> {
        Ok(with_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM (SELECT a.line_id FROM line_attempts a JOIN payment_lines l ON l.id = a.line_id \
                 WHERE l.batch_id = $1 AND a.outcome = 'credited' GROUP BY a.line_id HAVING COUNT(*) > 1) x",
            )
            .bind(batch_id)
            .fetch_one(p)
            .await?
        }))
    }
}
