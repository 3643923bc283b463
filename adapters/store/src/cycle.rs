//! The payment cycle after intake: lines sent to the bank as attempts, the bank's results
//! applied once each (anything odd becomes an anomaly, never a silent change), corrections
//! of failed lines and refunds through the original channel.
//!
//! Every function runs in one write transaction with its audit entry and ledger postings.
//! Each guarded `UPDATE ... WHERE state = ... AND attempt = ...` means a line can only move
//! from the state the kernel decided on, so a repeated or concurrent delivery of the same
//! results changes nothing the second time and a line is never credited twice.

use crate::db::{Store, Tx, TxInner, with_pool, with_tx, with_write};
use crate::error::{Result, StoreError};
use crate::imports::Val;
use crate::payments::insert_rows;
use crate::registers::{aad, in_list_bucket, list_placeholders, open_str, padded};
use crate::vault::BlindIndex;
use std::collections::HashMap;
use ykt_kernel::audit::AuditRecord;
use ykt_kernel::batch::{LineState, LineStatus, ResultEffect, Totals, apply_result};
use ykt_kernel::ledger::{Account, Entry, EntryKind};
use ykt_kernel::ports::{BankOutcome, BankResult, InstructionLine};
use ykt_kernel::{BankAccount, Fen};

/// Lines read, moved and recorded per statement when a batch is dispatched.
const DISPATCH_CHUNK: i64 = 4096;

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// An attempt handed to the bank, as [`Store::dispatch_pending_ids`] keeps it: (line,
/// attempt, amount).
pub type AttemptRef = (i64, u32, Fen);

/// What applying a delivery of results did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResultReport {
    pub credited: Totals,
    pub failed: Totals,
    /// Results that repeated an outcome already recorded.
    pub duplicates: u64,
    /// Results that were refused and recorded as anomalies.
    pub anomalies: Vec<Anomaly>,
}

impl ResultReport {
    /// Add a later page's report to this one.
    pub fn merge(&mut self, o: ResultReport) {
        self.credited = self.credited + o.credited;
        self.failed = self.failed + o.failed;
        self.duplicates += o.duplicates;
        self.anomalies.extend(o.anomalies);
    }
}

/// A result that changed nothing because something was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Anomaly {
    pub line_id: i64,
    pub kind: String,
    pub detail: String,
}

/// One attempt to pay a line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttemptRow {
    pub attempt: i64,
    pub account_masked: String,
    pub amount: Fen,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub bank_date: Option<String>,
}

/// A correction of a failed line.
#[derive(Debug, Clone, Default)]
pub struct LineFix {
    /// The corrected account (after re-checking the card registry).
    pub account: Option<BankAccount>,
    /// The corrected bank, with the account.
    pub bank: Option<String>,
    /// The corrected name.
    pub name: Option<String>,
    pub reason: String,
    /// Who signed for the beneficiary (the beneficiary or guardian), when the rules ask for it.
    pub beneficiary_signed: Option<String>,
    /// The department head who signed the correction off, when the rules ask for it.
    pub head_signoff: Option<String>,
}

fn audit(
    actor: &str,
    role: &str,
    action: &str,
    subject: String,
    detail: serde_json::Value,
    at: &str,
) -> AuditRecord {
    AuditRecord {
        at: at.to_owned(),
        actor: actor.to_owned(),
        role: role.to_owned(),
        action: action.to_owned(),
        subject,
        from_state: None,
        to_state: None,
        detail,
    }
}

impl Store {
    /// Record the agent bank a batch is paid through.
    pub async fn set_batch_bank(&self, batch_id: i64, bank: &str) -> Result<()> {
        with_write!(self, |p| {
            sqlx::query("UPDATE batches SET agent_bank = $1 WHERE id = $2")
                .bind(bank)
                .bind(batch_id)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Record the treasury's reference for a batch's funding.
    pub async fn set_treasury_ref(&self, batch_id: i64, reference: &str) -> Result<()> {
        with_write!(self, |p| {
            sqlx::query("UPDATE batches SET treasury_ref = $1 WHERE id = $2")
                .bind(reference)
                .bind(batch_id)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// `(agent_bank, treasury_ref)` of a batch.
    pub async fn batch_refs(&self, batch_id: i64) -> Result<(Option<String>, Option<String>)> {
        let r: Option<(Option<String>, Option<String>)> = with_pool!(self, |p| {
            sqlx::query_as("SELECT agent_bank, treasury_ref FROM batches WHERE id = $1")
                .bind(batch_id)
                .fetch_optional(p)
                .await?
        });
        r.ok_or_else(|| StoreError::Invalid {
            reason: format!("批次{batch_id}不存在 (no batch {batch_id})"),
        })
    }

    /// Send every pending line of a batch to the bank as a new attempt: pending → in flight,
    /// attempt + 1, recorded with the account it goes to. Returns the instruction lines;
    /// the caller records them as sent ([`Store::mark_sent`]) once the bank accepted them.
    ///
    /// If an earlier delivery was never recorded as sent (the process stopped between
    /// marking its lines in flight and recording the bank's acceptance), exactly those
    /// attempts are returned again, with their attempt numbers and accounts, and nothing new
    /// is marked: the bank deduplicates by line and attempt, so sending them again pays
    /// nothing twice, and without it they would wait in flight for results that never come.
    pub async fn dispatch_pending(
        &self,
        batch_id: i64,
        actor: &str,
        role: &str,
    ) -> Result<Vec<InstructionLine>> {
        let unsent = self.unsent_attempts(batch_id).await?;
        if !unsent.is_empty() {
            return Ok(unsent);
        }
        let mut out = Vec::new();
        self.dispatch_new(batch_id, actor, role, &mut |l| out.push(l))
            .await?;
        Ok(out)
    }

    /// [`Store::dispatch_pending`] keeping of each attempt only its line, attempt number and
    /// amount, in line order (nothing decrypted is held: a province-scale batch's lines were
    /// some 160 bytes each), for an agent that reads the lines a page at a time
    /// ([`Store::attempts_by_id`]). The same attempts, recorded the same way.
    pub async fn dispatch_pending_ids(
        &self,
        batch_id: i64,
        actor: &str,
        role: &str,
    ) -> Result<Vec<AttemptRef>> {
        let unsent = self.unsent_attempt_ids(batch_id).await?;
        if !unsent.is_empty() {
            return Ok(unsent);
        }
        let mut out = Vec::new();
        self.dispatch_new(batch_id, actor, role, &mut |l| {
            out.push((l.line_id, l.attempt, l.amount))
        })
        .await?;
        Ok(out)
    }

    /// The dispatch of [`Store::dispatch_pending`] when nothing is unsent: each line sent
    /// handed to `sink`, in line order.
    async fn dispatch_new(
        &self,
        batch_id: i64,
        actor: &str,
        role: &str,
        sink: &mut (dyn FnMut(InstructionLine) + Send),
    ) -> Result<()> {
        let at = now();
        let mut tx = self.begin_bulk().await?;
        type T = (i64, i64, Vec<u8>, String, Vec<u8>, String, i64);
        // Chunk by chunk in id order (a million-line order used to be read in one
        // `fetch_all` and moved with two statements per line): the lines of one chunk are
        // exactly the pending ones in (after, last], so one UPDATE moves them all and one
        // multi-row INSERT records their attempts.
        let (mut count, mut total, mut max_attempt) = (0usize, Fen(0), None::<u32>);
        let mut after = 0i64;
        loop {
            let rows: Vec<T> = with_tx!(tx, |c| {
                sqlx::query_as("SELECT id, attempt, person_idx, name, account_enc, bank, amount_fen FROM payment_lines WHERE batch_id = $1 AND state = 'pending' AND id > $2 ORDER BY id LIMIT $3")
                    .bind(batch_id)
                    .bind(after)
                    .bind(DISPATCH_CHUNK)
                    .fetch_all(&mut *c)
                    .await?
            });
            let Some(last) = rows.last().map(|r| r.0) else {
                break;
            };
            let mut attempts: Vec<Vec<Val>> = Vec::with_capacity(rows.len());
            for (id, attempt, idx, name, account_enc, bank, fen) in rows {
                let idx: BlindIndex = idx
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::corrupt("payment_lines.person_idx"))?;
                let account = open_str(&self.vault, "payment_lines.account", &idx, &account_enc)?;
                let account = BankAccount::parse(&account)
                    .map_err(|_| StoreError::corrupt("payment_lines.account_enc"))?;
                let next = attempt + 1;
                attempts.push(vec![
                    Val::Int(id),
                    Val::Int(next),
                    Val::Blob(self.vault.seal(
                        &aad("line_attempts.account", &idx),
                        account.as_str().as_bytes(),
                    )),
                    Val::Int(fen),
                    Val::Text(at.clone()),
                ]);
                let attempt = u32::try_from(next).unwrap_or(u32::MAX);
                count += 1;
                total += Fen(fen);
                max_attempt = max_attempt.max(Some(attempt));
                sink(InstructionLine {
                    line_id: id,
                    attempt,
                    name,
                    account,
                    bank,
                    amount: Fen(fen),
                });
            }
            with_tx!(tx, |c| {
                sqlx::query("UPDATE payment_lines SET state = 'in_flight', attempt = attempt + 1 WHERE batch_id = $1 AND state = 'pending' AND id > $2 AND id <= $3")
                    .bind(batch_id)
                    .bind(after)
                    .bind(last)
                    .execute(&mut *c)
                    .await?;
            });
            insert_rows(
                &mut tx,
                "line_attempts",
                &[
                    "line_id",
                    "attempt",
                    "account_enc",
                    "amount_fen",
                    "dispatched_at",
                ],
                &attempts,
            )
            .await?;
            after = last;
        }
        let detail =
            serde_json::json!({"lines": count, "amount_fen": total.0, "attempts": max_attempt});
        self.append_audit_in(
            &mut tx,
            audit(
                actor,
                role,
                "batch.dispatch",
                format!("batch:{batch_id}"),
                detail,
                &at,
            ),
        )
        .await?;
        crate::failpoints::hit("dispatch.before_commit");
        tx.commit().await?;
        crate::failpoints::hit("dispatch.after_commit");
        Ok(())
    }

    /// [`Store::unsent_attempts`] as (line, attempt, amount), nothing decrypted.
    async fn unsent_attempt_ids(&self, batch_id: i64) -> Result<Vec<AttemptRef>> {
        let rows: Vec<(i64, i64, i64)> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT l.id, a.attempt, a.amount_fen \
                 FROM payment_lines l JOIN line_attempts a ON a.line_id = l.id AND a.attempt = l.attempt \
                 WHERE l.batch_id = $1 AND l.state = 'in_flight' AND a.sent_at IS NULL ORDER BY l.id",
            )
            .bind(batch_id)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, attempt, fen)| (id, u32::try_from(attempt).unwrap_or(u32::MAX), Fen(fen)))
            .collect())
    }

    /// These attempts of `batch_id`'s lines (`wanted` sorted by line), each with its line's
    /// name and bank and the account it was dispatched to (decrypted), in that order:
    /// a page of a delivery read by [`Store::dispatch_pending_ids`]' references. Attempts of
    /// other batches or of no line are left out. Read by the range of line ids (primary
    /// keys: the batch index would read the whole batch for each page).
    pub async fn attempts_by_id(
        &self,
        batch_id: i64,
        wanted: &[(i64, u32)],
    ) -> Result<Vec<InstructionLine>> {
        let (Some(first), Some(last)) = (wanted.first(), wanted.last()) else {
            return Ok(Vec::new());
        };
        type T = (i64, i64, i64, Vec<u8>, String, Vec<u8>, String, i64);
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT l.id, l.batch_id, a.attempt, l.person_idx, l.name, a.account_enc, l.bank, a.amount_fen \
                 FROM payment_lines l JOIN line_attempts a ON a.line_id = l.id \
                 WHERE l.id >= $1 AND l.id <= $2 ORDER BY l.id, a.attempt",
            )
            .bind(first.0)
            .bind(last.0)
            .fetch_all(p)
            .await?
        });
        let mut out = Vec::with_capacity(wanted.len());
        for (id, batch, attempt, idx, name, account_enc, bank, fen) in rows {
            let attempt = u32::try_from(attempt).unwrap_or(u32::MAX);
            if batch != batch_id || wanted.binary_search(&(id, attempt)).is_err() {
                continue;
            }
            let idx: BlindIndex = idx
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::corrupt("payment_lines.person_idx"))?;
            let account = open_str(&self.vault, "line_attempts.account", &idx, &account_enc)?;
            let account = BankAccount::parse(&account)
                .map_err(|_| StoreError::corrupt("line_attempts.account_enc"))?;
            out.push(InstructionLine {
                line_id: id,
                attempt,
                name,
                account,
                bank,
                amount: Fen(fen),
            });
        }
        Ok(out)
    }

    /// Attempts of a batch in flight but not recorded as sent (see [`Store::dispatch_pending`]),
    /// with the account each was dispatched to.
    pub async fn unsent_attempts(&self, batch_id: i64) -> Result<Vec<InstructionLine>> {
        type T = (i64, i64, Vec<u8>, String, Vec<u8>, String, i64);
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT l.id, a.attempt, l.person_idx, l.name, a.account_enc, l.bank, a.amount_fen \
                 FROM payment_lines l JOIN line_attempts a ON a.line_id = l.id AND a.attempt = l.attempt \
                 WHERE l.batch_id = $1 AND l.state = 'in_flight' AND a.sent_at IS NULL ORDER BY l.id",
            )
            .bind(batch_id)
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|(id, attempt, idx, name, account_enc, bank, fen)| {
                let idx: BlindIndex = idx
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::corrupt("payment_lines.person_idx"))?;
                let account = open_str(&self.vault, "line_attempts.account", &idx, &account_enc)?;
                let account = BankAccount::parse(&account)
                    .map_err(|_| StoreError::corrupt("line_attempts.account_enc"))?;
                Ok(InstructionLine {
                    line_id: id,
                    attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
                    name,
                    account,
                    bank,
                    amount: Fen(fen),
                })
            })
            .collect()
    }

    /// Record that the bank accepted these attempts (after [`Store::dispatch_pending`]).
    pub async fn mark_sent(&self, lines: &[InstructionLine]) -> Result<()> {
        let attempts: Vec<(i64, u32)> = lines.iter().map(|l| (l.line_id, l.attempt)).collect();
        self.mark_sent_attempts(&attempts).await
    }

    /// [`Store::mark_sent`] of these (line, attempt) pairs.
    pub async fn mark_sent_attempts(&self, attempts: &[(i64, u32)]) -> Result<()> {
        let at = now();
        let mut sorted: Vec<(i64, u32)> = attempts.to_vec();
        sorted.sort_unstable();
        let lines = sorted;
        let mut tx = self.begin_bulk().await?;
        // A few statements for the whole delivery (was one UPDATE per line: 50,000
        // round trips to the database for a 50,000-line release).
        match &mut tx.inner {
            TxInner::Sqlite(t) => {
                for chunk in lines.chunks(SENT_ROWS) {
                    let values = vec!["(?, ?)"; chunk.len()].join(", ");
                    let sql = format!(
                        "UPDATE line_attempts SET sent_at = ? FROM (VALUES {values}) AS v \
                         WHERE line_attempts.line_id = v.column1 AND line_attempts.attempt = v.column2 AND line_attempts.sent_at IS NULL"
                    );
                    // The `?` of `sent_at` comes first in the statement's text.
                    let mut q = sqlx::query(&sql).bind(&at);
                    for l in chunk {
                        q = q.bind(l.0).bind(i64::from(l.1));
                    }
                    q.execute(&mut **t).await?;
                }
            }
            TxInner::Postgres(t) => {
                if !lines.is_empty() {
                    let ids: Vec<i64> = lines.iter().map(|l| l.0).collect();
                    let attempts: Vec<i64> = lines.iter().map(|l| i64::from(l.1)).collect();
                    sqlx::query(
                        "UPDATE line_attempts SET sent_at = $1 \
                         FROM UNNEST($2::bigint[], $3::bigint[]) AS v (line_id, attempt) \
                         WHERE line_attempts.line_id = v.line_id AND line_attempts.attempt = v.attempt AND line_attempts.sent_at IS NULL",
                    )
                    .bind(&at)
                    .bind(&ids)
                    .bind(&attempts)
                    .execute(&mut **t)
                    .await?;
                }
            }
        }
        crate::failpoints::hit("sent.before_commit");
        tx.commit().await?;
        crate::failpoints::hit("sent.after_commit");
        Ok(())
    }

    /// Apply a delivery of bank results to a batch. Each result is judged by the kernel
    /// (`apply_result`); applied ones move their line, repeated ones are counted, anything
    /// else is recorded as an anomaly. Credited amounts are posted from `paid_from` to
    /// `paid_to` in the same transaction.
    pub async fn apply_results(
        &self,
        batch_id: i64,
        order_no: &str,
        results: &[BankResult],
        actor: &str,
        paid_from: &Account,
        paid_to: &Account,
    ) -> Result<ResultReport> {
        self.apply_results_page(batch_id, order_no, results, None, actor, paid_from, paid_to)
            .await
    }

    /// Where a paging bank's results were read up to (see [`Store::apply_results_page`]).
    pub async fn results_cursor(&self, batch_id: i64) -> Result<Option<String>> {
        let r: Option<(Option<String>,)> = with_pool!(self, |p| {
            sqlx::query_as("SELECT results_cursor FROM batches WHERE id = $1")
                .bind(batch_id)
                .fetch_optional(p)
                .await?
        });
        r.map(|x| x.0).ok_or_else(|| StoreError::Invalid {
            reason: format!("批次{batch_id}不存在 (no batch {batch_id})"),
        })
    }

    /// [`Store::apply_results`] for a page of a paging bank's results, keeping `next` (the
    /// position after the page) as the batch's results cursor in the same transaction: a
    /// crash before the commit leaves the old cursor, so the retry fetches the same page
    /// and nothing is applied twice. `None` keeps the cursor as it is.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_results_page(
        &self,
        batch_id: i64,
        order_no: &str,
        results: &[BankResult],
        next: Option<&str>,
        actor: &str,
        paid_from: &Account,
        paid_to: &Account,
    ) -> Result<ResultReport> {
        let mut tx = self.begin_bulk().await?;
        // The batch's row first, as a step's transition takes it before its lines and the
        // audit chain: two polls, one applying a page and one settling the batch, then lock
        // in the same order on PostgreSQL (the cursor written last deadlocked them).
        if let Some(next) = next {
            with_tx!(tx, |c| {
                sqlx::query("UPDATE batches SET results_cursor = $1 WHERE id = $2")
                    .bind(next)
                    .bind(batch_id)
                    .execute(&mut *c)
                    .await?;
            });
        }
        let report = self
            .apply_results_in(
                &mut tx, batch_id, order_no, results, actor, paid_from, paid_to,
            )
            .await?;
        crate::failpoints::hit("results.before_commit");
        tx.commit().await?;
        crate::failpoints::hit("results.after_commit");
        Ok(report)
    }

    /// [`Store::apply_results`] inside the caller's transaction, so that a caller keeping
    /// its own record of the results (Henan's result posts) commits both at once.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_results_in(
        &self,
        tx: &mut Tx,
        batch_id: i64,
        order_no: &str,
        results: &[BankResult],
        actor: &str,
        paid_from: &Account,
        paid_to: &Account,
    ) -> Result<ResultReport> {
        let at = now();
        // Each line read once, however often the delivery repeats it.
        let mut ids: Vec<i64> = results.iter().map(|r| r.line_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut status: HashMap<i64, LineStatus> = HashMap::new();
        for chunk in ids.chunks(900) {
            let sql = line_status_sql(tx.backend(), chunk.len());
            let rows: Vec<(i64, i64, String, i64, i64)> = with_tx!(tx, |c| {
                let mut q = sqlx::query_as(&sql);
                // Padded to the bucket's size (few distinct statements).
                for id in padded(chunk) {
                    q = q.bind(id);
                }
                q.fetch_all(&mut *c).await?
            });
            for (id, _, state, attempt, fen) in rows.into_iter().filter(|r| r.1 == batch_id) {
                let state = LineState::parse(&state)
                    .ok_or_else(|| StoreError::corrupt("payment_lines.state"))?;
                status.insert(
                    id,
                    LineStatus {
                        state,
                        attempt: u32::try_from(attempt).unwrap_or(0),
                        amount: Fen(fen),
                    },
                );
            }
        }
        let mut report = ResultReport::default();
        let mut settles: Vec<Settle> = Vec::new();
        for r in results {
            let effect = if r.order_no != order_no {
                None
            } else {
                status.get(&r.line_id).map(|s| (apply_result(*s, r), *s))
            };
            match effect {
                None => {
                    let (kind, detail) = if r.order_no != order_no {
                        (
                            "wrong_order",
                            format!("结果的发放单号{}不属于本批次{order_no}", r.order_no),
                        )
                    } else {
                        ("unknown_line", format!("本批次没有明细{}", r.line_id))
                    };
                    report.anomalies.push(Anomaly {
                        line_id: r.line_id,
                        kind: kind.into(),
                        detail,
                    });
                }
                Some((ResultEffect::Applied { to, reason }, before)) => {
                    settles.push(Settle {
                        line_id: r.line_id,
                        attempt: i64::from(r.attempt),
                        state: to.as_str(),
                        outcome: if to == LineState::Credited {
                            "credited"
                        } else {
                            "failed"
                        },
                        reason: reason.map(|x| x.as_str()),
                        bank_date: r.date.clone(),
                    });
                    if to == LineState::Credited {
                        report.credited.add(before.amount);
                    } else {
                        report.failed.add(before.amount);
                    }
                    status.insert(
                        r.line_id,
                        LineStatus {
                            state: to,
                            ..before
                        },
                    );
                }
                Some((ResultEffect::Duplicate, _)) => report.duplicates += 1,
                Some((other, _)) => {
                    let kind = match &other {
                        ResultEffect::Stale { .. } => "stale_attempt",
                        ResultEffect::Conflict { .. } => "conflicting_outcome",
                        ResultEffect::AmountMismatch { .. } => "amount_mismatch",
                        _ => "not_in_flight",
                    };
                    let outcome = match &r.outcome {
                        BankOutcome::Credited => "credited".to_owned(),
                        BankOutcome::Failed { reason } => format!("failed:{}", reason.as_str()),
                    };
                    let detail = format!(
                        "{} (attempt {}, amount {}, outcome {outcome})",
                        serde_json::to_string(&other).unwrap_or_default(),
                        r.attempt,
                        r.amount
                    );
                    report.anomalies.push(Anomaly {
                        line_id: r.line_id,
                        kind: kind.into(),
                        detail,
                    });
                }
            }
        }
        // In line order, as `mark_sent` locks them: two transactions settling and marking
        // the same attempts on PostgreSQL then take their row locks in the same order
        // (shuffled results against a release being recorded as sent deadlocked).
        settles.sort_by_key(|r| (r.line_id, r.attempt));
        settle(tx, &settles, &at).await?;
        for a in &report.anomalies {
            with_tx!(tx, |c| {
                sqlx::query("INSERT INTO anomalies (batch_id, line_id, kind, detail, at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(batch_id)
                    .bind(a.line_id)
                    .bind(&a.kind)
                    .bind(&a.detail)
                    .bind(&at)
                    .execute(&mut *c)
                    .await?;
            });
        }
        if report.credited.count > 0 {
            let memo = format!("打卡发放{}笔", report.credited.count);
            let e = Entry::transfer(
                EntryKind::Payment,
                Some(batch_id),
                memo,
                paid_from.clone(),
                paid_to.clone(),
                report.credited.amount,
            )
            .map_err(|e| StoreError::Invalid {
                reason: e.to_string(),
            })?;
            self.post_entry_in(tx, &e).await?;
        }
        let detail = serde_json::json!({
            "results": results.len(), "credited": report.credited.count, "credited_fen": report.credited.amount.0,
            "failed": report.failed.count, "duplicates": report.duplicates, "anomalies": report.anomalies.len(),
        });
        self.append_audit_in(
            tx,
            audit(
                actor,
                "system",
                "batch.results",
                format!("batch:{batch_id}"),
                detail,
                &at,
            ),
        )
        .await?;
        Ok(report)
    }

    /// Correct a failed line: it goes back to pending (to be paid again as a new attempt).
    pub async fn correct_line(
        &self,
        batch_id: i64,
        line_id: i64,
        fix: &LineFix,
        actor: &str,
        role: &str,
    ) -> Result<()> {
        self.correct_lines(batch_id, &[(line_id, fix)], actor, role)
            .await
    }

    /// Correct failed lines of a batch in one transaction (each with its correction record
    /// and audit entry, as [`Store::correct_line`]): all or none, one commit for a delivery's
    /// failures instead of one each.
    pub async fn correct_lines(
        &self,
        batch_id: i64,
        fixes: &[(i64, &LineFix)],
        actor: &str,
        role: &str,
    ) -> Result<()> {
        let at = now();
        let mut tx = self.begin().await?;
        for &(line_id, fix) in fixes {
            self.correct_in(&mut tx, batch_id, line_id, fix, actor, role, &at)
                .await?;
        }
        crate::failpoints::hit("correct.before_commit");
        tx.commit().await?;
        crate::failpoints::hit("correct.after_commit");
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn correct_in(
        &self,
        tx: &mut Tx,
        batch_id: i64,
        line_id: i64,
        fix: &LineFix,
        actor: &str,
        role: &str,
        at: &str,
    ) -> Result<()> {
        let row: Option<(Vec<u8>, i64, String)> = with_tx!(*tx, |c| {
            sqlx::query_as("SELECT person_idx, attempt, state FROM payment_lines WHERE id = $1 AND batch_id = $2").bind(line_id).bind(batch_id).fetch_optional(&mut *c).await?
        });
        let Some((idx, attempt, state)) = row else {
            return Err(StoreError::Invalid {
                reason: format!(
                    "批次{batch_id}没有明细{line_id} (no line {line_id} in batch {batch_id})"
                ),
            });
        };
        if state != LineState::Failed.as_str() {
            return Err(StoreError::Invalid {
                reason: format!(
                    "明细{line_id}状态为{state}，只有发放失败的明细可以更正 (only failed lines can be corrected)"
                ),
            });
        }
        let idx: BlindIndex = idx
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::corrupt("payment_lines.person_idx"))?;
        let mut changed = Vec::new();
        let account_enc = fix.account.as_ref().map(|a| {
            changed.push("银行账号");
            self.vault
                .seal(&aad("payment_lines.account", &idx), a.as_str().as_bytes())
        });
        if fix.bank.is_some() {
            changed.push("发卡银行");
        }
        if fix.name.is_some() {
            changed.push("姓名");
        }
        with_tx!(*tx, |c| {
            sqlx::query(
                "UPDATE payment_lines SET state = 'pending', fail_reason = NULL, account_enc = COALESCE($1, account_enc), bank = COALESCE($2, bank), name = COALESCE($3, name) \
                 WHERE id = $4 AND state = 'failed'",
            )
            .bind(account_enc)
            .bind(fix.bank.as_deref())
            .bind(fix.name.as_deref())
            .bind(line_id)
            .execute(&mut *c)
            .await?;
            sqlx::query("INSERT INTO corrections (line_id, after_attempt, changed, reason, beneficiary_signed, head_signoff, actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(line_id)
                .bind(attempt)
                .bind(changed.join("、"))
                .bind(&fix.reason)
                .bind(fix.beneficiary_signed.as_deref())
                .bind(fix.head_signoff.as_deref())
                .bind(actor)
                .bind(at)
                .execute(&mut *c)
                .await?;
        });
        let detail = serde_json::json!({"line": line_id, "changed": changed, "reason": fix.reason, "beneficiary_signed": fix.beneficiary_signed.is_some(), "head_signoff": fix.head_signoff});
        self.append_audit_in(
            tx,
            audit(
                actor,
                role,
                "line.correct",
                format!("batch:{batch_id}"),
                detail,
                at,
            ),
        )
        .await?;
        Ok(())
    }

    /// Refund a failed line through the original channel: failed → refunded, the `entries`
    /// (built for its amount by the caller from the province's route) posted with it.
    /// The requester and the approver must be different people.
    pub async fn refund_line(
        &self,
        batch_id: i64,
        line_id: i64,
        reason: &str,
        requested_by: &str,
        approved_by: &str,
        entries: impl Fn(Fen) -> Vec<Entry>,
    ) -> Result<Fen> {
        let fen = self
            .refund_lines(
                batch_id,
                &[(line_id, reason)],
                requested_by,
                approved_by,
                entries,
            )
            .await?;
        Ok(fen.first().copied().unwrap_or_default())
    }

    /// Refund failed lines of a batch in one transaction (each with its refund record, ledger
    /// entries and audit entry, as [`Store::refund_line`]): all or none. Returns each line's
    /// amount, in order.
    pub async fn refund_lines(
        &self,
        batch_id: i64,
        lines: &[(i64, &str)],
        requested_by: &str,
        approved_by: &str,
        entries: impl Fn(Fen) -> Vec<Entry>,
    ) -> Result<Vec<Fen>> {
        if requested_by == approved_by {
            return Err(StoreError::Invalid { reason: "退款须由主管部门申请、财政部门同意，不能是同一人 (the requester cannot approve the refund)".into() });
        }
        let at = now();
        let mut tx = self.begin().await?;
        let mut out = Vec::with_capacity(lines.len());
        for &(line_id, reason) in lines {
            let row: Option<(i64, String)> = with_tx!(tx, |c| {
                sqlx::query_as(
                    "SELECT amount_fen, state FROM payment_lines WHERE id = $1 AND batch_id = $2",
                )
                .bind(line_id)
                .bind(batch_id)
                .fetch_optional(&mut *c)
                .await?
            });
            let Some((fen, state)) = row else {
                return Err(StoreError::Invalid {
                    reason: format!(
                        "批次{batch_id}没有明细{line_id} (no line {line_id} in batch {batch_id})"
                    ),
                });
            };
            if state != LineState::Failed.as_str() {
                return Err(StoreError::Invalid {
                    reason: format!(
                        "明细{line_id}状态为{state}，只有发放失败的明细可以退回 (only failed lines can be refunded)"
                    ),
                });
            }
            with_tx!(tx, |c| {
                sqlx::query(
                    "UPDATE payment_lines SET state = 'refunded' WHERE id = $1 AND state = 'failed'",
                )
                .bind(line_id)
                .execute(&mut *c)
                .await?;
                sqlx::query("INSERT INTO refunds (line_id, amount_fen, reason, requested_by, approved_by, at) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(line_id)
                    .bind(fen)
                    .bind(reason)
                    .bind(requested_by)
                    .bind(approved_by)
                    .bind(&at)
                    .execute(&mut *c)
                    .await?;
            });
            for e in entries(Fen(fen)) {
                self.post_entry_in(&mut tx, &e).await?;
            }
            let detail = serde_json::json!({"line": line_id, "amount_fen": fen, "reason": reason, "requested_by": requested_by, "approved_by": approved_by});
            self.append_audit_in(
                &mut tx,
                audit(
                    approved_by,
                    "finance_reviewer",
                    "line.refund",
                    format!("batch:{batch_id}"),
                    detail,
                    at.as_str(),
                ),
            )
            .await?;
            out.push(Fen(fen));
        }
        crate::failpoints::hit("refund.before_commit");
        tx.commit().await?;
        crate::failpoints::hit("refund.after_commit");
        Ok(out)
    }

    /// The anomalies recorded for a batch, oldest first.
    pub async fn anomalies(&self, batch_id: i64) -> Result<Vec<Anomaly>> {
        let rows: Vec<(Option<i64>, String, String)> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT line_id, kind, detail FROM anomalies WHERE batch_id = $1 ORDER BY id",
            )
            .bind(batch_id)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(l, kind, detail)| Anomaly {
                line_id: l.unwrap_or(0),
                kind,
                detail,
            })
            .collect())
    }

    /// Every attempt to pay every line of a batch, accounts masked, by line and attempt: one
    /// query for a batch's report instead of one per line.
    pub async fn batch_line_attempts(&self, batch_id: i64) -> Result<Vec<(i64, AttemptRow)>> {
        type T = (
            i64,
            Vec<u8>,
            i64,
            Vec<u8>,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT a.line_id, l.person_idx, a.attempt, a.account_enc, a.amount_fen, a.outcome, a.reason, a.bank_date \
                 FROM line_attempts a JOIN payment_lines l ON l.id = a.line_id \
                 WHERE l.batch_id = $1 ORDER BY a.line_id, a.attempt",
            )
            .bind(batch_id)
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(
                |(line, idx, attempt, enc, fen, outcome, reason, bank_date)| {
                    let idx: BlindIndex = idx
                        .as_slice()
                        .try_into()
                        .map_err(|_| StoreError::corrupt("payment_lines.person_idx"))?;
                    let row =
                        self.attempt_row(&idx, (attempt, enc, fen, outcome, reason, bank_date))?;
                    Ok((line, row))
                },
            )
            .collect()
    }

    /// [`Store::batch_line_attempts`] for some lines of a batch only (a page of a large batch:
    /// what it costs is the page, not the batch), in line and attempt order. Read by line id,
    /// [`MAX_IN_LIST`] at a time; lines of other batches are left out.
    ///
    /// [`MAX_IN_LIST`]: crate::registers::MAX_IN_LIST
    pub async fn line_attempts_of(
        &self,
        batch_id: i64,
        line_ids: &[i64],
    ) -> Result<Vec<(i64, AttemptRow)>> {
        type T = (
            i64,
            i64,
            Vec<u8>,
            i64,
            Vec<u8>,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let mut out = Vec::new();
        for chunk in line_ids.chunks(crate::registers::MAX_IN_LIST) {
            let sql = format!(
                "SELECT a.line_id, l.batch_id, l.person_idx, a.attempt, a.account_enc, a.amount_fen, a.outcome, a.reason, a.bank_date \
                 FROM line_attempts a JOIN payment_lines l ON l.id = a.line_id \
                 WHERE a.line_id IN ({})",
                list_placeholders(self.backend(), in_list_bucket(chunk.len()))
            );
            let rows: Vec<T> = with_pool!(self, |p| {
                let mut q = sqlx::query_as(&sql);
                for id in padded(chunk) {
                    q = q.bind(id);
                }
                q.fetch_all(p).await?
            });
            for (line, batch, idx, attempt, enc, fen, outcome, reason, bank_date) in rows {
                if batch != batch_id {
                    continue;
                }
                let idx: BlindIndex = idx
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::corrupt("payment_lines.person_idx"))?;
                let row =
                    self.attempt_row(&idx, (attempt, enc, fen, outcome, reason, bank_date))?;
                out.push((line, row));
            }
        }
        out.sort_by_key(|(line, a)| (*line, a.attempt));
        Ok(out)
    }

    /// Every attempt to pay a line, accounts masked.
    pub async fn line_attempts(&self, line_id: i64) -> Result<Vec<AttemptRow>> {
        let idx: Option<Vec<u8>> = with_pool!(self, |p| {
            sqlx::query_scalar("SELECT person_idx FROM payment_lines WHERE id = $1")
                .bind(line_id)
                .fetch_optional(p)
                .await?
        });
        let Some(idx) = idx else {
            return Ok(Vec::new());
        };
        let idx: BlindIndex = idx
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::corrupt("payment_lines.person_idx"))?;
        let rows: Vec<AttemptTuple> = with_pool!(self, |p| {
            sqlx::query_as("SELECT attempt, account_enc, amount_fen, outcome, reason, bank_date FROM line_attempts WHERE line_id = $1 ORDER BY attempt")
                .bind(line_id)
                .fetch_all(p)
                .await?
        });
        rows.into_iter()
            .map(|t| self.attempt_row(&idx, t))
            .collect()
    }

    /// An attempt as read, its account decrypted (with the line's blind index) and masked.
    fn attempt_row(&self, idx: &BlindIndex, t: AttemptTuple) -> Result<AttemptRow> {
        let (attempt, enc, fen, outcome, reason, bank_date) = t;
        let account = open_str(&self.vault, "line_attempts.account", idx, &enc)?;
        let account_masked = BankAccount::parse(&account)
            .map(|a| a.masked())
            .unwrap_or_else(|_| ykt_kernel::mask::mask_middle(&account, 4, 4));
        Ok(AttemptRow {
            attempt,
            account_masked,
            amount: Fen(fen),
            outcome,
            reason,
            bank_date,
        })
    }
}

/// `attempt, account_enc, amount_fen, outcome, reason, bank_date` of `line_attempts`.
type AttemptTuple = (
    i64,
    Vec<u8>,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The statement reading `id, batch_id, state, attempt, amount_fen` of up to `n` lines by
/// id (at most [`crate::registers::MAX_IN_LIST`]), for the results of one delivery; bind the
/// ids padded with the last one to `in_list_bucket(n)` (few distinct statements). The caller
/// keeps the rows of its batch. By primary key on purpose: with `batch_id = $1 AND id IN
/// (...)` SQLite's planner chose the `(batch_id, state)` index and read every line of the
/// batch for each delivery, so a 25-result post on a 25,000-line order read 25,000 rows and
/// an order's results cost time quadratic in its size.
pub(crate) fn line_status_sql(backend: crate::db::Backend, n: usize) -> String {
    format!(
        "SELECT id, batch_id, state, attempt, amount_fen FROM payment_lines WHERE id IN ({})",
        list_placeholders(backend, in_list_bucket(n))
    )
}

/// One result that settles its line's attempt, for [`settle`].
struct Settle {
    line_id: i64,
    attempt: i64,
    /// The line's new state (`credited` or `failed`).
    state: &'static str,
    /// The attempt's outcome (`credited` or `failed`).
    outcome: &'static str,
    reason: Option<&'static str>,
    bank_date: String,
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Bind each row's six values, in the order of the `VALUES` rows of [`settle`].
fn bind_settles<'q>(mut q: SqliteQuery<'q>, rows: &'q [Settle]) -> SqliteQuery<'q> {
    for r in rows {
        q = q
            .bind(r.line_id)
            .bind(r.attempt)
            .bind(r.state)
            .bind(r.outcome)
            .bind(r.reason)
            .bind(r.bank_date.as_str());
    }
    q
}

/// Attempts per statement of [`Store::mark_sent`] on SQLite (2 parameters each).
const SENT_ROWS: usize = 1000;

/// Lines per statement of [`settle`] on SQLite (6 parameters each, far under its limit).
const SETTLE_ROWS: usize = 500;

/// Settle the lines `rows` and their attempts, a few statements for the whole post instead
/// of two per line (each statement is a round trip to the database: on SQLite a hand-over
/// to its worker thread, on PostgreSQL a message to the server). A line settles only from
/// `in_flight` at that attempt; if any of them is no longer there (another request settled
/// it meanwhile), nothing is applied and the caller's transaction fails with a conflict.
async fn settle(tx: &mut Tx, rows: &[Settle], at: &str) -> Result<()> {
    let mut changed = 0u64;
    match &mut tx.inner {
        TxInner::Sqlite(t) => {
            for chunk in rows.chunks(SETTLE_ROWS) {
                let values = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                let sql = format!(
                    "UPDATE payment_lines SET state = v.column3, fail_reason = v.column5 \
                     FROM (VALUES {values}) AS v \
                     WHERE payment_lines.id = v.column1 AND payment_lines.attempt = v.column2 AND payment_lines.state = 'in_flight'"
                );
                changed += bind_settles(sqlx::query(&sql), chunk)
                    .execute(&mut **t)
                    .await?
                    .rows_affected();
                let sql = format!(
                    "UPDATE line_attempts SET outcome = v.column4, reason = v.column5, bank_date = v.column6, settled_at = ? \
                     FROM (VALUES {values}) AS v \
                     WHERE line_attempts.line_id = v.column1 AND line_attempts.attempt = v.column2"
                );
                // The `?` of `settled_at` comes first in the statement's text.
                bind_settles(sqlx::query(&sql).bind(at), chunk)
                    .execute(&mut **t)
                    .await?;
            }
        }
        TxInner::Postgres(t) => {
            if !rows.is_empty() {
                let ids: Vec<i64> = rows.iter().map(|r| r.line_id).collect();
                let attempts: Vec<i64> = rows.iter().map(|r| r.attempt).collect();
                let states: Vec<&str> = rows.iter().map(|r| r.state).collect();
                let outcomes: Vec<&str> = rows.iter().map(|r| r.outcome).collect();
                let reasons: Vec<Option<&str>> = rows.iter().map(|r| r.reason).collect();
                let dates: Vec<&str> = rows.iter().map(|r| r.bank_date.as_str()).collect();
                changed = sqlx::query(
                    "UPDATE payment_lines SET state = v.state, fail_reason = v.reason \
                     FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[]) AS v (id, attempt, state, reason) \
                     WHERE payment_lines.id = v.id AND payment_lines.attempt = v.attempt AND payment_lines.state = 'in_flight'",
                )
                .bind(&ids)
                .bind(&attempts)
                .bind(&states)
                .bind(&reasons)
                .execute(&mut **t)
                .await?
                .rows_affected();
                sqlx::query(
                    "UPDATE line_attempts SET outcome = v.outcome, reason = v.reason, bank_date = v.bank_date, settled_at = $6 \
                     FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[]) AS v (line_id, attempt, outcome, reason, bank_date) \
                     WHERE line_attempts.line_id = v.line_id AND line_attempts.attempt = v.attempt",
                )
                .bind(&ids)
                .bind(&attempts)
                .bind(&outcomes)
                .bind(&reasons)
                .bind(&dates)
                .bind(at)
                .execute(&mut **t)
                .await?;
            }
        }
    }
    if changed != rows.len() as u64 {
        return Err(StoreError::Concurrent {
            what: format!(
                "{}条明细中有{}条的结果正由另一请求同时处理，请稍后重试 (lines changed concurrently)",
                rows.len(),
                rows.len() as u64 - changed.min(rows.len() as u64)
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Vault;
    use crate::db::{Backend, Pool};

    /// The lines of a delivery are read by primary key, not through the batch index (which
    /// read every line of the batch per delivery).
    #[tokio::test]
    async fn line_status_reads_by_primary_key() {
        let (vault, _) = Vault::generate();
        let store = Store::connect("sqlite::memory:", vault)
            .await
            .expect("memory store");
        let Pool::Sqlite(p) = &store.pool else {
            unreachable!("an SQLite store")
        };
        for n in [1, 25, 900] {
            let sql = format!("EXPLAIN QUERY PLAN {}", line_status_sql(Backend::Sqlite, n));
            let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(&sql);
            for i in 0..in_list_bucket(n) {
                q = q.bind(i as i64 + 1);
            }
            let plan: Vec<String> = q
                .fetch_all(p)
                .await
                .expect("plan")
                .into_iter()
                .map(|r| r.3)
                .collect();
            assert!(
                plan.iter().any(|d| d.contains("INTEGER PRIMARY KEY")),
                "{n} ids: {plan:?}"
            );
            assert!(
                !plan.iter().any(|d| d.contains("payment_lines_batch")),
                "{n} ids: {plan:?}"
            );
        }
        store.close().await;
    }
}
