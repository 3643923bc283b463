//! Sichuan's own tables (migration `0200_sichuan`): agency agreements with cooperating banks,
//! pre- and post-payment publicity with its masked lines, objections, plan declarations and
//! procedural reviews, the 8202 vouchers exchanged with the treasury, the files exchanged with
//! the bank, recoveries, dual verifications and month-end checks.
//!
//! Every change runs in one write transaction with its audit entry (and its ledger entries,
//! where money moves). Lists keep masked names and IDs only; the payee details a payment
//! instruction needs are decrypted on demand ([`Store::sichuan_payees`]) and never stored
//! again in clear.

use crate::db::{Store, with_pool, with_tx, with_write};
use crate::error::{Result, StoreError};
use crate::registers::open_str;
use crate::vault::BlindIndex;
use std::collections::HashMap;
use ykt_kernel::Fen;
use ykt_kernel::audit::AuditRecord;
use ykt_kernel::batch::{BatchState, LineState};
use ykt_kernel::ledger::{AccountKind, Entry};

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn invalid(reason: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        reason: reason.into(),
    }
}

fn record(
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

/// A 《补贴资金发放委托代理协议》 (川财办〔2018〕61号 三(三)).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AgencyAgreement {
    pub id: i64,
    pub agreement_no: String,
    /// The department's county, twelve digits.
    pub region: String,
    /// The project it covers (with its sub-items).
    pub project: String,
    pub department: String,
    /// The department's zero-balance account (an organisation's account, not personal data).
    pub zb_account_no: String,
    pub zb_account_name: String,
    pub zb_bank: String,
    /// The cooperating bank (合作银行).
    pub bank: String,
    /// 委托事项、发放时间、信息反馈、资金监管、对账办法.
    pub terms: String,
    pub signed_on: String,
    pub valid_until: String,
}

/// Everything a payment instruction says about a payee (decrypted: bank-facing only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payee {
    pub resident_id: String,
    pub name: String,
    pub phone: Option<String>,
    pub region: String,
    pub proxy_kind: Option<String>,
    pub proxy_name: Option<String>,
}

/// A publicity of a batch (`pre` before payment, `post` after).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Publicity {
    pub batch_id: i64,
    pub stage: String,
    pub starts_on: String,
    pub ends_on: String,
    pub closed_on: Option<String>,
    pub notices: i64,
    pub line_count: i64,
    pub amount: Fen,
}

/// A line as publicised before payment (masked).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublicityLine {
    pub line_id: i64,
    /// The village (twelve digits).
    pub village: String,
    pub name_masked: String,
    pub id_masked: String,
    /// 户主 / 代管 / 代领 remarks shown on the list.
    pub note: String,
    pub amount: Fen,
    pub excluded: bool,
}

/// An objection raised during the pre-payment publicity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Objection {
    pub id: i64,
    pub batch_id: i64,
    pub line_id: Option<i64>,
    pub raised_by: String,
    pub content: String,
    pub raised_on: String,
    pub recorded_by: String,
    pub status: String,
    pub resolution: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_on: Option<String>,
}

/// What resolving an objection did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub objection: Objection,
    /// The line taken out of the batch (upheld objection against a line).
    pub excluded: Option<(i64, Fen)>,
}

/// A plan declaration (申报授权支付用款计划).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlanDeclaration {
    pub id: i64,
    pub batch_id: i64,
    pub count: i64,
    pub amount: Fen,
    pub declared_by: String,
    pub declared_on: String,
}

/// A procedural review.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Review {
    pub id: i64,
    pub batch_id: i64,
    pub plan_id: Option<i64>,
    pub summary: (i64, Fen),
    pub detail: (i64, Fen),
    pub declared: (i64, Fen),
    pub passed: bool,
    /// The mismatches, one per line (empty when passed).
    pub findings: String,
    pub reviewer: String,
    pub reviewed_on: String,
}

/// A voucher exchanged with the treasury.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voucher {
    pub voucher_no: String,
    pub batch_id: i64,
    /// `plan` or `return`.
    pub kind: String,
    pub amount: Fen,
    pub vou_date: String,
    pub sha256: String,
    /// The XML as sent (GB18030).
    pub xml: Vec<u8>,
    pub status: String,
    pub status_note: String,
    pub paid_on: Option<String>,
}

/// A file exchanged with the bank.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BankFile {
    pub id: i64,
    pub batch_id: i64,
    /// `instruction` or `result`.
    pub direction: String,
    pub file_name: String,
    pub sha256: String,
    pub line_count: i64,
    pub amount: Fen,
    /// `sent`, `accepted`, `repeat` or `rejected`.
    pub status: String,
    pub note: String,
    pub on_date: String,
}

/// One line of an accepted result file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BankLine {
    pub line_id: i64,
    pub attempt: i64,
    pub amount: Fen,
    pub credited: bool,
    pub reason: Option<String>,
    pub value_date: String,
    pub sms_sent: bool,
}

/// A recovered payment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Recovery {
    pub id: i64,
    pub batch_id: i64,
    pub line_id: i64,
    /// `duplicate` or `deceased`.
    pub kind: String,
    pub amount: Fen,
    pub reason: String,
    pub requested_by: String,
    pub approved_by: String,
    pub recovered_on: String,
    pub returned_on: Option<String>,
    pub return_ref: Option<String>,
}

/// The dual verification of a batch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    pub batch_id: i64,
    pub paid_on: String,
    pub deadline: String,
    pub published_on: String,
    pub on_time: bool,
    pub publicised: (i64, Fen),
    pub credited: (i64, Fen),
    /// JSON array of the differences (`ykt_province_sichuan::rules::Difference`).
    pub differences: String,
}

/// A month-end check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MonthEnd {
    pub id: i64,
    pub month: String,
    pub scope: String,
    pub checked_on: String,
    pub balance: Fen,
    /// JSON array of the outstanding items.
    pub outstanding: String,
    pub passed: bool,
    pub actor: String,
}

/// A ledger posting with its entry, for account histories.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Posting {
    pub entry_id: i64,
    pub batch_id: Option<i64>,
    pub kind: String,
    pub memo: String,
    pub account_kind: String,
    pub owner: String,
    pub amount: Fen,
}

/// A refunded line for the ledger of unpaid items (未发放台账).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unpaid {
    pub batch_id: i64,
    pub order_no: String,
    pub project_name: String,
    pub line_id: i64,
    pub name: String,
    pub region: String,
    pub period: String,
    pub amount: Fen,
    pub fail_reason: Option<String>,
    pub reason: String,
    pub requested_by: String,
    pub approved_by: String,
    pub at: String,
}

/// A credited payment of one person, for statements (对账单).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    /// The person's blind index (hex): groups a person's payments, never shown.
    pub person_key: String,
    pub resident_id: String,
    pub name: String,
    pub region: String,
    pub account: String,
    pub project_name: String,
    pub period: String,
    pub amount: Fen,
    pub bank_date: String,
    pub proxy_kind: Option<String>,
    pub proxy_name: Option<String>,
    pub line_id: i64,
    pub batch_id: i64,
}

type AgreementTuple = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

const AGREEMENT_SELECT: &str = "SELECT id, agreement_no, region, project, department, zb_account_no, zb_account_name, zb_bank, bank, terms, signed_on, valid_until FROM sichuan_agency_agreements";

fn agreement(t: AgreementTuple) -> AgencyAgreement {
    AgencyAgreement {
        id: t.0,
        agreement_no: t.1,
        region: t.2,
        project: t.3,
        department: t.4,
        zb_account_no: t.5,
        zb_account_name: t.6,
        zb_bank: t.7,
        bank: t.8,
        terms: t.9,
        signed_on: t.10,
        valid_until: t.11,
    }
}

type ObjectionTuple = (
    i64,
    i64,
    Option<i64>,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

const OBJECTION_SELECT: &str = "SELECT id, batch_id, line_id, raised_by, content, raised_on, recorded_by, status, resolution, resolved_by, resolved_on FROM sichuan_objections";

fn objection(t: ObjectionTuple) -> Objection {
    Objection {
        id: t.0,
        batch_id: t.1,
        line_id: t.2,
        raised_by: t.3,
        content: t.4,
        raised_on: t.5,
        recorded_by: t.6,
        status: t.7,
        resolution: t.8,
        resolved_by: t.9,
        resolved_on: t.10,
    }
}

fn publicity_line(t: (i64, String, String, String, String, i64, i64)) -> PublicityLine {
    PublicityLine {
        line_id: t.0,
        village: t.1,
        name_masked: t.2,
        id_masked: t.3,
        note: t.4,
        amount: Fen(t.5),
        excluded: t.6 != 0,
    }
}

/// A pre-payment publicity being recorded (see [`Store::sichuan_begin_publicity`]): one write
/// transaction, committed by [`PublicityWriter::finish`]; dropped before, nothing is recorded.
pub struct PublicityWriter {
    store: Store,
    tx: crate::db::Tx,
    batch_id: i64,
    at: String,
}

impl PublicityWriter {
    /// Record these masked lines (a page of the batch's lines; each line once).
    pub async fn add(&mut self, lines: &[PublicityLine]) -> Result<()> {
        use crate::imports::Val;
        let rows: Vec<Vec<Val>> = lines
            .iter()
            .map(|l| {
                vec![
                    Val::Int(self.batch_id),
                    Val::Int(l.line_id),
                    Val::Text(l.village.clone()),
                    Val::Text(l.name_masked.clone()),
                    Val::Text(l.id_masked.clone()),
                    Val::Text(l.note.clone()),
                    Val::Int(l.amount.0),
                    Val::Int(0),
                ]
            })
            .collect();
        crate::payments::insert_rows(
            &mut self.tx,
            "sichuan_publicity_lines",
            &[
                "batch_id",
                "line_id",
                "village",
                "name_masked",
                "id_masked",
                "note",
                "amount_fen",
                "excluded",
            ],
            &rows,
        )
        .await
    }

    /// Set the record's figures (`p`: notices, lines, amount), append the audit entry and
    /// commit.
    pub async fn finish(mut self, p: &Publicity, actor: &str) -> Result<()> {
        let at = self.at.clone();
        with_tx!(self.tx, |c| {
            sqlx::query("UPDATE sichuan_publicity SET starts_on = $1, ends_on = $2, notices = $3, line_count = $4, amount_fen = $5, actor = $6 WHERE batch_id = $7 AND stage = 'pre'")
                .bind(&p.starts_on)
                .bind(&p.ends_on)
                .bind(p.notices)
                .bind(p.line_count)
                .bind(p.amount.0)
                .bind(actor)
                .bind(self.batch_id)
                .execute(&mut *c)
                .await?;
        });
        let detail = serde_json::json!({"starts_on": p.starts_on, "ends_on": p.ends_on, "notices": p.notices, "lines": p.line_count, "amount_fen": p.amount.0});
        self.store
            .append_audit_in(
                &mut self.tx,
                record(
                    actor,
                    "township_clerk",
                    "sichuan.publicity.pre",
                    format!("batch:{}", self.batch_id),
                    detail,
                    &at,
                ),
            )
            .await?;
        crate::failpoints::hit("sichuan.publicity.before_commit");
        self.tx.commit().await?;
        crate::failpoints::hit("sichuan.publicity.after_commit");
        Ok(())
    }
}

type VoucherTuple = (
    String,
    i64,
    String,
    i64,
    String,
    String,
    Vec<u8>,
    String,
    String,
    Option<String>,
);

const VOUCHER_SELECT: &str = "SELECT voucher_no, batch_id, kind, amount_fen, vou_date, sha256, xml, status, status_note, paid_on FROM sichuan_vouchers";

fn voucher(t: VoucherTuple) -> Voucher {
    Voucher {
        voucher_no: t.0,
        batch_id: t.1,
        kind: t.2,
        amount: Fen(t.3),
        vou_date: t.4,
        sha256: t.5,
        xml: t.6,
        status: t.7,
        status_note: t.8,
        paid_on: t.9,
    }
}

impl Store {
    // ---- agency agreements -------------------------------------------------------------

    /// Record an agency agreement (`id` is ignored). The same agreement number twice is a
    /// conflict.
    pub async fn sichuan_add_agreement(&self, a: &AgencyAgreement, actor: &str) -> Result<i64> {
        let at = now();
        let mut tx = self.begin().await?;
        let id: i64 = with_tx!(tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO sichuan_agency_agreements (agreement_no, region, project, department, zb_account_no, zb_account_name, zb_bank, bank, terms, signed_on, valid_until, actor, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
            )
            .bind(&a.agreement_no)
            .bind(&a.region)
            .bind(&a.project)
            .bind(&a.department)
            .bind(&a.zb_account_no)
            .bind(&a.zb_account_name)
            .bind(&a.zb_bank)
            .bind(&a.bank)
            .bind(&a.terms)
            .bind(&a.signed_on)
            .bind(&a.valid_until)
            .bind(actor)
            .bind(&at)
            .fetch_one(&mut *c)
            .await?
        });
        let detail = serde_json::json!({"agreement_no": a.agreement_no, "region": a.region, "project": a.project, "department": a.department, "bank": a.bank, "signed_on": a.signed_on, "valid_until": a.valid_until});
        self.append_audit_in(
            &mut tx,
            record(
                actor,
                "dept_maker",
                "sichuan.agreement",
                format!("agreement:{}", a.agreement_no),
                detail,
                &at,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Agency agreements whose region lies within `region_prefix` (all when `None`).
    pub async fn sichuan_agreements(
        &self,
        region_prefix: Option<&str>,
    ) -> Result<Vec<AgencyAgreement>> {
        let like = format!("{}%", region_prefix.unwrap_or(""));
        let rows: Vec<AgreementTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!(
                "{AGREEMENT_SELECT} WHERE region LIKE $1 ORDER BY region, project, id"
            ))
            .bind(&like)
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(agreement).collect())
    }

    /// The agreement in force on `on` for a county and a project (or one of its ancestors,
    /// nearest first): the latest signed one.
    pub async fn sichuan_agreement_for(
        &self,
        county: &str,
        projects: &[String],
        on: &str,
    ) -> Result<Option<AgencyAgreement>> {
        for project in projects {
            let row: Option<AgreementTuple> = with_pool!(self, |p| {
                sqlx::query_as(&format!(
                    "{AGREEMENT_SELECT} WHERE region = $1 AND project = $2 AND signed_on <= $3 AND valid_until >= $3 ORDER BY signed_on DESC, id DESC LIMIT 1"
                ))
                .bind(county)
                .bind(project)
                .bind(on)
                .fetch_optional(p)
                .await?
            });
            if let Some(t) = row {
                return Ok(Some(agreement(t)));
            }
        }
        Ok(None)
    }

    // ---- batches and payees ----------------------------------------------------------------

    /// The id of the batch with this order number.
    pub async fn sichuan_batch_id(&self, order_no: &str) -> Result<Option<i64>> {
        Ok(with_pool!(self, |p| {
            sqlx::query_scalar("SELECT id FROM batches WHERE order_no = $1")
                .bind(order_no)
                .fetch_optional(p)
                .await?
        }))
    }

    /// The payee details of every line of a batch, decrypted, by line id. For the payment
    /// instruction to the bank only: never print or store them.
    pub async fn sichuan_payees(&self, batch_id: i64) -> Result<HashMap<i64, Payee>> {
        type T = (
            i64,
            Vec<u8>,
            Vec<u8>,
            String,
            Option<Vec<u8>>,
            String,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT id, person_idx, id_enc, name, phone_enc, region, proxy_kind, proxy_name FROM payment_lines WHERE batch_id = $1")
                .bind(batch_id)
                .fetch_all(p)
                .await?
        });
        let mut out = HashMap::with_capacity(rows.len());
        for (id, idx, id_enc, name, phone_enc, region, proxy_kind, proxy_name) in rows {
            let idx: BlindIndex = idx
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::corrupt("payment_lines.person_idx"))?;
            let resident_id = open_str(&self.vault, "payment_lines.id", &idx, &id_enc)?;
            let phone = match phone_enc {
                Some(p) => Some(open_str(&self.vault, "payment_lines.phone", &idx, &p)?),
                None => None,
            };
            out.insert(
                id,
                Payee {
                    resident_id,
                    name,
                    phone,
                    region,
                    proxy_kind,
                    proxy_name,
                },
            );
        }
        Ok(out)
    }

    /// [`Store::sichuan_payees`] for some lines of a batch only (a page of a large batch),
    /// by line id, [`MAX_IN_LIST`] at a time; lines of other batches are left out.
    ///
    /// [`MAX_IN_LIST`]: crate::registers::MAX_IN_LIST
    pub async fn sichuan_payees_of(
        &self,
        batch_id: i64,
        line_ids: &[i64],
    ) -> Result<HashMap<i64, Payee>> {
        type T = (
            i64,
            i64,
            Vec<u8>,
            Vec<u8>,
            String,
            Option<Vec<u8>>,
            String,
            Option<String>,
            Option<String>,
        );
        let mut out = HashMap::with_capacity(line_ids.len());
        for chunk in line_ids.chunks(crate::registers::MAX_IN_LIST) {
            let sql = format!(
                "SELECT id, batch_id, person_idx, id_enc, name, phone_enc, region, proxy_kind, proxy_name FROM payment_lines WHERE id IN ({})",
                crate::registers::list_placeholders(
                    self.backend(),
                    crate::registers::in_list_bucket(chunk.len())
                )
            );
            let rows: Vec<T> = with_pool!(self, |p| {
                let mut q = sqlx::query_as(&sql);
                for id in crate::registers::padded(chunk) {
                    q = q.bind(id);
                }
                q.fetch_all(p).await?
            });
            for (id, batch, idx, id_enc, name, phone_enc, region, proxy_kind, proxy_name) in rows {
                if batch != batch_id {
                    continue;
                }
                out.insert(
                    id,
                    self.payee(
                        &idx, &id_enc, name, phone_enc, region, proxy_kind, proxy_name,
                    )?,
                );
            }
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn payee(
        &self,
        idx: &[u8],
        id_enc: &[u8],
        name: String,
        phone_enc: Option<Vec<u8>>,
        region: String,
        proxy_kind: Option<String>,
        proxy_name: Option<String>,
    ) -> Result<Payee> {
        let idx: BlindIndex = idx
            .try_into()
            .map_err(|_| StoreError::corrupt("payment_lines.person_idx"))?;
        let resident_id = open_str(&self.vault, "payment_lines.id", &idx, id_enc)?;
        let phone = match phone_enc {
            Some(p) => Some(open_str(&self.vault, "payment_lines.phone", &idx, &p)?),
            None => None,
        };
        Ok(Payee {
            resident_id,
            name,
            phone,
            region,
            proxy_kind,
            proxy_name,
        })
    }

    // ---- publicity -------------------------------------------------------------------------

    /// Record the pre-payment publicity of a batch and its masked lines. Publishing again
    /// (a retried step) keeps the first record.
    pub async fn sichuan_start_publicity(
        &self,
        p: &Publicity,
        lines: &[PublicityLine],
        actor: &str,
    ) -> Result<()> {
        let Some(mut w) = self.sichuan_begin_publicity(p).await? else {
            return Ok(());
        };
        w.add(lines).await?;
        w.finish(p, actor).await
    }

    /// [`Store::sichuan_start_publicity`] with the lines added a page at a time
    /// ([`PublicityWriter::add`]) in one transaction, for a batch too large to hold its
    /// masked lines at once. `None` when the batch's publicity was recorded already (a
    /// retried step: the first record stays). The record's counts and amount are those given
    /// to [`PublicityWriter::finish`].
    pub async fn sichuan_begin_publicity(&self, p: &Publicity) -> Result<Option<PublicityWriter>> {
        let at = now();
        let mut tx = self.begin_bulk().await?;
        // The row first, so that a concurrent start of the same publicity waits on it (and
        // then finds it), as when the whole record was written at once.
        let inserted = with_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO sichuan_publicity (batch_id, stage, starts_on, ends_on, closed_on, notices, line_count, amount_fen, actor, at) \
                 VALUES ($1, 'pre', $2, $3, NULL, $4, $5, $6, 'system', $7) ON CONFLICT (batch_id, stage) DO NOTHING",
            )
            .bind(p.batch_id)
            .bind(&p.starts_on)
            .bind(&p.ends_on)
            .bind(p.notices)
            .bind(p.line_count)
            .bind(p.amount.0)
            .bind(&at)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        Ok(Some(PublicityWriter {
            store: self.clone(),
            tx,
            batch_id: p.batch_id,
            at,
        }))
    }

    /// Record the post-payment publicity (idempotent: the first record stays).
    pub async fn sichuan_record_post_publicity(&self, p: &Publicity, actor: &str) -> Result<()> {
        let at = now();
        with_write!(self, |c| {
            sqlx::query(
                "INSERT INTO sichuan_publicity (batch_id, stage, starts_on, ends_on, closed_on, notices, line_count, amount_fen, actor, at) \
                 VALUES ($1, 'post', $2, $3, NULL, $4, $5, $6, $7, $8) ON CONFLICT (batch_id, stage) DO NOTHING",
            )
            .bind(p.batch_id)
            .bind(&p.starts_on)
            .bind(&p.ends_on)
            .bind(p.notices)
            .bind(p.line_count)
            .bind(p.amount.0)
            .bind(actor)
            .bind(&at)
            .execute(c)
            .await?;
        });
        Ok(())
    }

    /// Mark the pre-payment publicity closed (the township submitted).
    pub async fn sichuan_close_publicity(&self, batch_id: i64, closed_on: &str) -> Result<()> {
        with_write!(self, |c| {
            sqlx::query("UPDATE sichuan_publicity SET closed_on = $1 WHERE batch_id = $2 AND stage = 'pre' AND closed_on IS NULL")
                .bind(closed_on)
                .bind(batch_id)
                .execute(c)
                .await?;
        });
        Ok(())
    }

    /// The publicity of a batch at `stage` (`pre` or `post`).
    pub async fn sichuan_publicity(&self, batch_id: i64, stage: &str) -> Result<Option<Publicity>> {
        type T = (i64, String, String, String, Option<String>, i64, i64, i64);
        let t: Option<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT batch_id, stage, starts_on, ends_on, closed_on, notices, line_count, amount_fen FROM sichuan_publicity WHERE batch_id = $1 AND stage = $2")
                .bind(batch_id)
                .bind(stage)
                .fetch_optional(p)
                .await?
        });
        Ok(t.map(|t| Publicity {
            batch_id: t.0,
            stage: t.1,
            starts_on: t.2,
            ends_on: t.3,
            closed_on: t.4,
            notices: t.5,
            line_count: t.6,
            amount: Fen(t.7),
        }))
    }

    /// The lines of the pre-payment publicity, in line order.
    pub async fn sichuan_publicity_lines(&self, batch_id: i64) -> Result<Vec<PublicityLine>> {
        type T = (i64, String, String, String, String, i64, i64);
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT line_id, village, name_masked, id_masked, note, amount_fen, excluded FROM sichuan_publicity_lines WHERE batch_id = $1 ORDER BY line_id")
                .bind(batch_id)
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().map(publicity_line).collect())
    }

    /// Some lines of the pre-payment publicity of a batch (by line id), in line order.
    pub async fn sichuan_publicity_lines_of(
        &self,
        batch_id: i64,
        line_ids: &[i64],
    ) -> Result<Vec<PublicityLine>> {
        let mut out = Vec::new();
        for id in line_ids {
            type T = (i64, String, String, String, String, i64, i64);
            let row: Option<T> = with_pool!(self, |p| {
                sqlx::query_as("SELECT line_id, village, name_masked, id_masked, note, amount_fen, excluded FROM sichuan_publicity_lines WHERE batch_id = $1 AND line_id = $2")
                    .bind(batch_id)
                    .bind(id)
                    .fetch_optional(p)
                    .await?
            });
            out.extend(row.map(publicity_line));
        }
        out.sort_by_key(|l| l.line_id);
        out.dedup_by_key(|l| l.line_id);
        Ok(out)
    }

    /// The lines taken out of a batch's pre-payment publicity (upheld objections), in line
    /// order.
    pub async fn sichuan_publicity_excluded(&self, batch_id: i64) -> Result<Vec<PublicityLine>> {
        type T = (i64, String, String, String, String, i64, i64);
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT line_id, village, name_masked, id_masked, note, amount_fen, excluded FROM sichuan_publicity_lines WHERE batch_id = $1 AND excluded = 1 ORDER BY line_id")
                .bind(batch_id)
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().map(publicity_line).collect())
    }

    /// The lines publicised before payment (not taken out), (line, amount), after line
    /// `after`, at most `limit`, in line order: a page of what the dual verification
    /// compares (by the primary key, never the whole batch at once).
    pub async fn sichuan_publicised_page(
        &self,
        batch_id: i64,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Fen)>> {
        let rows: Vec<(i64, i64)> = with_pool!(self, |p| {
            sqlx::query_as("SELECT line_id, amount_fen FROM sichuan_publicity_lines WHERE batch_id = $1 AND line_id > $2 AND excluded = 0 ORDER BY line_id LIMIT $3")
                .bind(batch_id)
                .bind(after)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().map(|(l, a)| (l, Fen(a))).collect())
    }

    // ---- objections ------------------------------------------------------------------------

    /// Record an objection against a batch in publicity (optionally against one of its
    /// lines). `raised_by` must already be masked.
    #[allow(clippy::too_many_arguments)]
    pub async fn sichuan_raise_objection(
        &self,
        batch_id: i64,
        line_id: Option<i64>,
        raised_by: &str,
        content: &str,
        raised_on: &str,
        actor: &str,
        role: &str,
    ) -> Result<i64> {
        let at = now();
        let mut tx = self.begin().await?;
        let state: Option<String> = with_tx!(tx, |c| {
            sqlx::query_scalar("SELECT state FROM batches WHERE id = $1")
                .bind(batch_id)
                .fetch_optional(&mut *c)
                .await?
        });
        match state.as_deref() {
            None => {
                return Err(invalid(format!(
                    "批次{batch_id}不存在 (no batch {batch_id})"
                )));
            }
            Some(s) if s != BatchState::Publicity.as_str() => {
                return Err(invalid(format!(
                    "批次{batch_id}不在发放前公示期内（状态「{}」），不能登记异议 (objections are recorded during the pre-payment publicity)",
                    BatchState::parse(s).map(|s| s.label_zh()).unwrap_or(s)
                )));
            }
            Some(_) => {}
        }
        if let Some(line) = line_id {
            let found: Option<i64> = with_tx!(tx, |c| {
                sqlx::query_scalar("SELECT id FROM payment_lines WHERE id = $1 AND batch_id = $2")
                    .bind(line)
                    .bind(batch_id)
                    .fetch_optional(&mut *c)
                    .await?
            });
            if found.is_none() {
                return Err(invalid(format!(
                    "批次{batch_id}没有明细{line} (no line {line} in batch {batch_id})"
                )));
            }
        }
        let id: i64 = with_tx!(tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO sichuan_objections (batch_id, line_id, raised_by, content, raised_on, recorded_by, status, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'open', $7) RETURNING id",
            )
            .bind(batch_id)
            .bind(line_id)
            .bind(raised_by)
            .bind(content)
            .bind(raised_on)
            .bind(actor)
            .bind(&at)
            .fetch_one(&mut *c)
            .await?
        });
        let detail = serde_json::json!({"objection": id, "line": line_id, "raised_on": raised_on});
        self.append_audit_in(
            &mut tx,
            record(
                actor,
                role,
                "sichuan.objection.raise",
                format!("batch:{batch_id}"),
                detail,
                &at,
            ),
        )
        .await?;
        crate::failpoints::hit("sichuan.objection.before_commit");
        tx.commit().await?;
        crate::failpoints::hit("sichuan.objection.after_commit");
        Ok(id)
    }

    /// Resolve an open objection. An upheld objection against a line takes the line out of
    /// the batch (the batch is still in publicity, so its lines are not frozen yet): the line
    /// is deleted, the control totals shrink, the publicity keeps the line marked excluded.
    #[allow(clippy::too_many_arguments)]
    pub async fn sichuan_resolve_objection(
        &self,
        objection_id: i64,
        upheld: bool,
        resolution: &str,
        resolved_on: &str,
        actor: &str,
        role: &str,
    ) -> Result<Resolution> {
        let at = now();
        let mut tx = self.begin().await?;
        let t: Option<ObjectionTuple> = with_tx!(tx, |c| {
            sqlx::query_as(&format!("{OBJECTION_SELECT} WHERE id = $1"))
                .bind(objection_id)
                .fetch_optional(&mut *c)
                .await?
        });
        let Some(t) = t else {
            return Err(invalid(format!(
                "异议{objection_id}不存在 (no objection {objection_id})"
            )));
        };
        let o = objection(t);
        if o.status != "open" {
            return Err(invalid(format!(
                "异议{objection_id}已处理（{}） (objection already resolved)",
                o.status
            )));
        }
        let state: String = with_tx!(tx, |c| {
            sqlx::query_scalar("SELECT state FROM batches WHERE id = $1")
                .bind(o.batch_id)
                .fetch_one(&mut *c)
                .await?
        });
        if state != BatchState::Publicity.as_str() {
            return Err(invalid(format!(
                "批次{}已不在公示期内，不能处理异议 (the batch is no longer in publicity)",
                o.batch_id
            )));
        }
        let mut excluded = None;
        if let Some(line) = o.line_id.filter(|_| upheld) {
            {
                let row: Option<(i64, String, i64)> = with_tx!(tx, |c| {
                    sqlx::query_as("SELECT amount_fen, state, attempt FROM payment_lines WHERE id = $1 AND batch_id = $2")
                        .bind(line)
                        .bind(o.batch_id)
                        .fetch_optional(&mut *c)
                        .await?
                });
                let Some((fen, lstate, attempt)) = row else {
                    return Err(invalid(format!(
                        "明细{line}已不在批次中 (line already removed)"
                    )));
                };
                if lstate != LineState::Pending.as_str() || attempt != 0 {
                    return Err(StoreError::corrupt("payment_lines.state"));
                }
                let changed = with_tx!(tx, |c| {
                    sqlx::query("DELETE FROM payment_lines WHERE id = $1 AND state = 'pending' AND attempt = 0")
                        .bind(line)
                        .execute(&mut *c)
                        .await?;
                    sqlx::query("UPDATE batches SET control_count = control_count - 1, control_fen = control_fen - $1, version = version + 1, updated_at = $2 WHERE id = $3 AND state = 'publicity'")
                        .bind(fen)
                        .bind(&at)
                        .bind(o.batch_id)
                        .execute(&mut *c)
                        .await?
                        .rows_affected()
                });
                if changed != 1 {
                    return Err(StoreError::Concurrent {
                        what: format!(
                            "批次{}已被他人处理，请刷新后重试 (batch changed concurrently)",
                            o.batch_id
                        ),
                    });
                }
                with_tx!(tx, |c| {
                    sqlx::query("UPDATE sichuan_publicity_lines SET excluded = 1 WHERE batch_id = $1 AND line_id = $2")
                        .bind(o.batch_id)
                        .bind(line)
                        .execute(&mut *c)
                        .await?;
                });
                excluded = Some((line, Fen(fen)));
            }
        }
        let status = if upheld { "upheld" } else { "dismissed" };
        with_tx!(tx, |c| {
            sqlx::query("UPDATE sichuan_objections SET status = $1, resolution = $2, resolved_by = $3, resolved_on = $4 WHERE id = $5 AND status = 'open'")
                .bind(status)
                .bind(resolution)
                .bind(actor)
                .bind(resolved_on)
                .bind(objection_id)
                .execute(&mut *c)
                .await?;
        });
        let detail = serde_json::json!({"objection": objection_id, "status": status, "excluded_line": excluded.map(|e| e.0), "excluded_fen": excluded.map(|e| e.1.0)});
        self.append_audit_in(
            &mut tx,
            record(
                actor,
                role,
                "sichuan.objection.resolve",
                format!("batch:{}", o.batch_id),
                detail,
                &at,
            ),
        )
        .await?;
        crate::failpoints::hit("sichuan.objection.before_commit");
        tx.commit().await?;
        crate::failpoints::hit("sichuan.objection.after_commit");
        let o = self
            .sichuan_objection(objection_id)
            .await?
            .ok_or_else(|| StoreError::corrupt("sichuan_objections"))?;
        Ok(Resolution {
            objection: o,
            excluded,
        })
    }

    /// One objection.
    pub async fn sichuan_objection(&self, id: i64) -> Result<Option<Objection>> {
        let t: Option<ObjectionTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!("{OBJECTION_SELECT} WHERE id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await?
        });
        Ok(t.map(objection))
    }

    /// The objections of a batch, oldest first.
    pub async fn sichuan_objections(&self, batch_id: i64) -> Result<Vec<Objection>> {
        let rows: Vec<ObjectionTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!(
                "{OBJECTION_SELECT} WHERE batch_id = $1 ORDER BY id"
            ))
            .bind(batch_id)
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(objection).collect())
    }

    // ---- plans and reviews ---------------------------------------------------------------

    /// Record the department's plan declaration.
    pub async fn sichuan_declare_plan(
        &self,
        batch_id: i64,
        count: i64,
        amount: Fen,
        declared_by: &str,
        declared_on: &str,
    ) -> Result<i64> {
        if count < 0 || amount.is_negative() {
            return Err(invalid(
                "申报笔数和金额不能为负 (declared figures cannot be negative)",
            ));
        }
        let at = now();
        let mut tx = self.begin().await?;
        let id: i64 = with_tx!(tx, |c| {
            sqlx::query_scalar("INSERT INTO sichuan_plans (batch_id, declared_count, declared_fen, declared_by, declared_on, at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id")
                .bind(batch_id)
                .bind(count)
                .bind(amount.0)
                .bind(declared_by)
                .bind(declared_on)
                .bind(&at)
                .fetch_one(&mut *c)
                .await?
        });
        let detail = serde_json::json!({"plan": id, "declared_count": count, "declared_fen": amount.0, "declared_on": declared_on});
        self.append_audit_in(
            &mut tx,
            record(
                declared_by,
                "dept_maker",
                "sichuan.plan.declare",
                format!("batch:{batch_id}"),
                detail,
                &at,
            ),
        )
        .await?;
        crate::failpoints::hit("sichuan.plan.before_commit");
        tx.commit().await?;
        crate::failpoints::hit("sichuan.plan.after_commit");
        Ok(id)
    }

    /// The plan declarations of a batch, oldest first.
    pub async fn sichuan_plans(&self, batch_id: i64) -> Result<Vec<PlanDeclaration>> {
        let rows: Vec<(i64, i64, i64, i64, String, String)> = with_pool!(self, |p| {
            sqlx::query_as("SELECT id, batch_id, declared_count, declared_fen, declared_by, declared_on FROM sichuan_plans WHERE batch_id = $1 ORDER BY id")
                .bind(batch_id)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| PlanDeclaration {
                id: t.0,
                batch_id: t.1,
                count: t.2,
                amount: Fen(t.3),
                declared_by: t.4,
                declared_on: t.5,
            })
            .collect())
    }

    /// Record a procedural review (`id` is ignored).
    pub async fn sichuan_record_review(&self, r: &Review) -> Result<i64> {
        let at = now();
        let mut tx = self.begin().await?;
        let id: i64 = with_tx!(tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO sichuan_reviews (batch_id, plan_id, summary_count, summary_fen, detail_count, detail_fen, declared_count, declared_fen, passed, findings, reviewer, reviewed_on, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
            )
            .bind(r.batch_id)
            .bind(r.plan_id)
            .bind(r.summary.0)
            .bind(r.summary.1.0)
            .bind(r.detail.0)
            .bind(r.detail.1.0)
            .bind(r.declared.0)
            .bind(r.declared.1.0)
            .bind(i64::from(r.passed))
            .bind(&r.findings)
            .bind(&r.reviewer)
            .bind(&r.reviewed_on)
            .bind(&at)
            .fetch_one(&mut *c)
            .await?
        });
        let detail = serde_json::json!({"review": id, "passed": r.passed, "findings": r.findings, "plan": r.plan_id});
        self.append_audit_in(
            &mut tx,
            record(
                &r.reviewer,
                "finance_reviewer",
                "sichuan.review",
                format!("batch:{}", r.batch_id),
                detail,
                &at,
            ),
        )
        .await?;
        crate::failpoints::hit("sichuan.review.before_commit");
        tx.commit().await?;
        crate::failpoints::hit("sichuan.review.after_commit");
        Ok(id)
    }

    /// The procedural reviews of a batch, oldest first.
    pub async fn sichuan_reviews(&self, batch_id: i64) -> Result<Vec<Review>> {
        type T = (
            i64,
            i64,
            Option<i64>,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            String,
            String,
            String,
        );
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT id, batch_id, plan_id, summary_count, summary_fen, detail_count, detail_fen, declared_count, declared_fen, passed, findings, reviewer, reviewed_on FROM sichuan_reviews WHERE batch_id = $1 ORDER BY id")
                .bind(batch_id)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| Review {
                id: t.0,
                batch_id: t.1,
                plan_id: t.2,
                summary: (t.3, Fen(t.4)),
                detail: (t.5, Fen(t.6)),
                declared: (t.7, Fen(t.8)),
                passed: t.9 != 0,
                findings: t.10,
                reviewer: t.11,
                reviewed_on: t.12,
            })
            .collect())
    }

    // ---- vouchers --------------------------------------------------------------------------

    /// Record a voucher sent to the treasury (sending the same voucher number again keeps the
    /// first record and updates its status).
    pub async fn sichuan_record_voucher(&self, v: &Voucher) -> Result<()> {
        self.sichuan_record_voucher_for(v, None).await
    }

    /// [`Store::sichuan_record_voucher`] for a red-letter voucher sent for a line's refund,
    /// with the refund's request number (the key [`Store::sichuan_refund_voucher`] finds it
    /// by). A voucher recorded again keeps the request number it was first recorded with.
    pub async fn sichuan_record_voucher_for(
        &self,
        v: &Voucher,
        request_no: Option<&str>,
    ) -> Result<()> {
        let at = now();
        crate::failpoints::hit("sichuan.voucher.before_commit");
        with_write!(self, |c| {
            sqlx::query(
                "INSERT INTO sichuan_vouchers (voucher_no, batch_id, kind, amount_fen, vou_date, sha256, xml, status, status_note, paid_on, at, request_no) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (voucher_no) DO UPDATE SET status = excluded.status, status_note = excluded.status_note, paid_on = excluded.paid_on, \
                 request_no = COALESCE(sichuan_vouchers.request_no, excluded.request_no)",
            )
            .bind(&v.voucher_no)
            .bind(v.batch_id)
            .bind(&v.kind)
            .bind(v.amount.0)
            .bind(&v.vou_date)
            .bind(&v.sha256)
            .bind(v.xml.as_slice())
            .bind(&v.status)
            .bind(&v.status_note)
            .bind(v.paid_on.as_deref())
            .bind(&at)
            .bind(request_no)
            .execute(c)
            .await?;
        });
        crate::failpoints::hit("sichuan.voucher.after_commit");
        Ok(())
    }

    /// Update the status the treasury reported for a voucher.
    pub async fn sichuan_voucher_status(
        &self,
        voucher_no: &str,
        status: &str,
        note: &str,
        paid_on: Option<&str>,
    ) -> Result<()> {
        with_write!(self, |c| {
            sqlx::query("UPDATE sichuan_vouchers SET status = $1, status_note = $2, paid_on = COALESCE($3, paid_on) WHERE voucher_no = $4")
                .bind(status)
                .bind(note)
                .bind(paid_on)
                .bind(voucher_no)
                .execute(c)
                .await?;
        });
        Ok(())
    }

    /// The batch a voucher belongs to.
    pub async fn sichuan_voucher_batch(&self, voucher_no: &str) -> Result<Option<i64>> {
        Ok(with_pool!(self, |p| {
            sqlx::query_scalar("SELECT batch_id FROM sichuan_vouchers WHERE voucher_no = $1")
                .bind(voucher_no)
                .fetch_optional(p)
                .await?
        }))
    }

    /// The vouchers of a batch, in the order they were sent.
    pub async fn sichuan_vouchers(&self, batch_id: i64) -> Result<Vec<Voucher>> {
        let rows: Vec<VoucherTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!(
                "{VOUCHER_SELECT} WHERE batch_id = $1 ORDER BY at, voucher_no"
            ))
            .bind(batch_id)
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(voucher).collect())
    }

    /// One voucher by its number (the primary key), whatever its batch.
    pub async fn sichuan_voucher(&self, voucher_no: &str) -> Result<Option<Voucher>> {
        let row: Option<VoucherTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!("{VOUCHER_SELECT} WHERE voucher_no = $1"))
                .bind(voucher_no)
                .fetch_optional(p)
                .await?
        });
        Ok(row.map(voucher))
    }

    /// The first red-letter voucher (in the order sent) of a batch that was sent for the
    /// refund `request_no`: recorded with it ([`Store::sichuan_record_voucher_for`], by the
    /// `(batch_id, request_no)` index), or recorded without a request number (before
    /// migration `0201`, or not a line refund) and carrying it in its text. Reads the
    /// voucher(s) sent for this request and those without a number, not every voucher of
    /// the batch (a million-line batch has thousands).
    pub async fn sichuan_refund_voucher(
        &self,
        batch_id: i64,
        request_no: &str,
    ) -> Result<Option<Voucher>> {
        if request_no.is_empty() {
            return Ok(None);
        }
        type T = (
            String,
            i64,
            String,
            i64,
            String,
            String,
            Vec<u8>,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
        );
        let cols = "voucher_no, batch_id, kind, amount_fen, vou_date, sha256, xml, status, status_note, paid_on, request_no, at";
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as(&format!(
                "SELECT {cols} FROM sichuan_vouchers WHERE batch_id = $1 AND request_no = $2 AND kind = 'return' \
                 UNION ALL SELECT {cols} FROM sichuan_vouchers WHERE batch_id = $1 AND request_no IS NULL AND kind = 'return' \
                 ORDER BY 12, 1"
            ))
            .bind(batch_id)
            .bind(request_no)
            .fetch_all(p)
            .await?
        });
        let key = request_no.as_bytes();
        Ok(rows
            .into_iter()
            .find(|t| match &t.10 {
                Some(r) => r == request_no,
                None => t.6.windows(key.len()).any(|w| w == key),
            })
            .map(|t| voucher((t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7, t.8, t.9))))
    }

    /// How many lines of a batch were refunded (the `(batch_id, state)` index; a refunded
    /// line has exactly one refund and stays refunded).
    pub async fn sichuan_refunded_count(&self, batch_id: i64) -> Result<i64> {
        Ok(with_pool!(self, |p| {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM payment_lines WHERE batch_id = $1 AND state = 'refunded'",
            )
            .bind(batch_id)
            .fetch_one(p)
            .await?
        }))
    }

    // ---- bank files ----------------------------------------------------------------------

    /// Record a file exchanged with the bank (`id` is ignored) and, for an accepted result
    /// file, its lines; with an audit entry. A file name already recorded in the same
    /// direction is a conflict.
    pub async fn sichuan_record_bank_file(
        &self,
        f: &BankFile,
        lines: &[BankLine],
        actor: &str,
    ) -> Result<i64> {
        self.sichuan_record_bank_file_read(f, lines.iter().cloned().map(Ok::<_, String>), actor)
            .await
    }

    /// [`Store::sichuan_record_bank_file`] with the file's lines read as they are recorded
    /// (a result file of a province-scale batch is never held whole): one transaction, so an
    /// `Err` from `lines` (the file could not be read to its end) records nothing at all.
    pub async fn sichuan_record_bank_file_read<I, E>(
        &self,
        f: &BankFile,
        lines: I,
        actor: &str,
    ) -> Result<i64>
    where
        I: IntoIterator<Item = std::result::Result<BankLine, E>>,
        I::IntoIter: Send,
        E: std::fmt::Display,
    {
        let at = now();
        let mut tx = self.begin().await?;
        let id: i64 = with_tx!(tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO sichuan_bank_files (batch_id, direction, file_name, sha256, line_count, amount_fen, status, note, on_date, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            )
            .bind(f.batch_id)
            .bind(&f.direction)
            .bind(&f.file_name)
            .bind(&f.sha256)
            .bind(f.line_count)
            .bind(f.amount.0)
            .bind(&f.status)
            .bind(&f.note)
            .bind(&f.on_date)
            .bind(&at)
            .fetch_one(&mut *c)
            .await?
        });
        for l in lines {
            let l = l.map_err(|e| invalid(e.to_string()))?;
            with_tx!(tx, |c| {
                sqlx::query(
                    "INSERT INTO sichuan_bank_lines (file_id, line_id, attempt, amount_fen, credited, reason, value_date, sms_sent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (file_id, line_id, attempt) DO NOTHING",
                )
                .bind(id)
                .bind(l.line_id)
                .bind(l.attempt)
                .bind(l.amount.0)
                .bind(i64::from(l.credited))
                .bind(l.reason.as_deref())
                .bind(&l.value_date)
                .bind(i64::from(l.sms_sent))
                .execute(&mut *c)
                .await?;
            });
        }
        let detail = serde_json::json!({"file": f.file_name, "sha256": f.sha256, "lines": f.line_count, "amount_fen": f.amount.0, "status": f.status, "note": f.note});
        self.append_audit_in(
            &mut tx,
            record(
                actor,
                if f.direction == "instruction" {
                    "dept_maker"
                } else {
                    "system"
                },
                &format!("sichuan.bank.{}", f.direction),
                format!("batch:{}", f.batch_id),
                detail,
                &at,
            ),
        )
        .await?;
        crate::failpoints::hit("sichuan.bank_file.before_commit");
        tx.commit().await?;
        crate::failpoints::hit("sichuan.bank_file.after_commit");
        Ok(id)
    }

    /// The files exchanged with the bank for a batch, in order.
    pub async fn sichuan_bank_files(&self, batch_id: i64) -> Result<Vec<BankFile>> {
        type T = (
            i64,
            i64,
            String,
            String,
            String,
            i64,
            i64,
            String,
            String,
            String,
        );
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT id, batch_id, direction, file_name, sha256, line_count, amount_fen, status, note, on_date FROM sichuan_bank_files WHERE batch_id = $1 ORDER BY id")
                .bind(batch_id)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| BankFile {
                id: t.0,
                batch_id: t.1,
                direction: t.2,
                file_name: t.3,
                sha256: t.4,
                line_count: t.5,
                amount: Fen(t.6),
                status: t.7,
                note: t.8,
                on_date: t.9,
            })
            .collect())
    }

    /// The name of an accepted result file with this content, if one was recorded.
    pub async fn sichuan_accepted_result(&self, sha256: &str) -> Result<Option<String>> {
        Ok(with_pool!(self, |p| {
            sqlx::query_scalar("SELECT file_name FROM sichuan_bank_files WHERE direction = 'result' AND status = 'accepted' AND sha256 = $1 ORDER BY id LIMIT 1")
                .bind(sha256)
                .fetch_optional(p)
                .await?
        }))
    }

    /// The credits of a batch's accepted result files for the lines after `after` up to
    /// `upto`, (line, amount, value date), in line order (a line's credits in file order):
    /// the credits of one page of the dual verification, by the `line_id` index.
    pub async fn sichuan_bank_credits_between(
        &self,
        batch_id: i64,
        after: i64,
        upto: i64,
    ) -> Result<Vec<(i64, Fen, String)>> {
        let rows: Vec<(i64, i64, String)> = with_pool!(self, |p| {
            sqlx::query_as("SELECT l.line_id, l.amount_fen, l.value_date FROM sichuan_bank_lines l JOIN sichuan_bank_files f ON f.id = l.file_id \
                            WHERE l.line_id > $2 AND l.line_id <= $3 AND f.batch_id = $1 AND f.status = 'accepted' AND l.credited = 1 \
                            ORDER BY l.line_id, f.id, l.attempt")
                .bind(batch_id)
                .bind(after)
                .bind(upto)
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().map(|(l, a, d)| (l, Fen(a), d)).collect())
    }

    /// The value date of each of `ids`' first credit (in file order) in the batch's accepted
    /// result files; a line never credited is absent.
    pub async fn sichuan_first_credits(
        &self,
        batch_id: i64,
        ids: &[i64],
    ) -> Result<HashMap<i64, String>> {
        let mut first: HashMap<i64, String> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(crate::registers::MAX_IN_LIST) {
            // The list the only parameters (see `list_placeholders`); the batch checked here.
            let sql = format!(
                "SELECT l.line_id, l.value_date, f.batch_id FROM sichuan_bank_lines l JOIN sichuan_bank_files f ON f.id = l.file_id \
                 WHERE l.line_id IN ({}) AND f.status = 'accepted' AND l.credited = 1 ORDER BY f.id, l.attempt",
                crate::registers::list_placeholders(
                    self.backend(),
                    crate::registers::in_list_bucket(chunk.len())
                )
            );
            let rows: Vec<(i64, String, i64)> = with_pool!(self, |p| {
                let mut q = sqlx::query_as(&sql);
                for id in crate::registers::padded(chunk) {
                    q = q.bind(id);
                }
                q.fetch_all(p).await?
            });
            for (line, date, _) in rows.into_iter().filter(|r| r.2 == batch_id) {
                first.entry(line).or_insert(date);
            }
        }
        Ok(first)
    }

    /// Every line of every accepted result file of a batch, in file then line order.
    pub async fn sichuan_bank_lines(&self, batch_id: i64) -> Result<Vec<BankLine>> {
        let rows: Vec<BankLineRow> = with_pool!(self, |p| {
            sqlx::query_as("SELECT l.line_id, l.attempt, l.amount_fen, l.credited, l.reason, l.value_date, l.sms_sent FROM sichuan_bank_lines l JOIN sichuan_bank_files f ON f.id = l.file_id \
                            WHERE f.batch_id = $1 AND f.status = 'accepted' ORDER BY f.id, l.line_id, l.attempt")
                .bind(batch_id)
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().map(bank_line).collect())
    }

    /// A page of what a collection applies: the lines of a batch's accepted and repeated
    /// result files after position `after` (file, line, attempt; `None`: from the start), at
    /// most `limit`, in that order, each with its file. A repeated file's lines are there so
    /// that they are counted as the duplicates they are. Read file by file, each file's
    /// lines by its primary key from the position on: a page costs its own size, never the
    /// batch's.
    pub async fn sichuan_result_page(
        &self,
        batch_id: i64,
        after: Option<(i64, i64, i64)>,
        limit: usize,
    ) -> Result<Vec<(i64, BankLine)>> {
        let (from_file, from_line, from_attempt) = after.unwrap_or((0, -1, -1));
        let files: Vec<i64> = with_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT id FROM sichuan_bank_files WHERE batch_id = $1 AND direction = 'result' \
                 AND status IN ('accepted', 'repeat') AND id >= $2 ORDER BY id",
            )
            .bind(batch_id)
            .bind(from_file)
            .fetch_all(p)
            .await?
        });
        let mut out = Vec::new();
        for file in files {
            let want = limit.saturating_sub(out.len());
            if want == 0 {
                break;
            }
            let (line, attempt) = if file == from_file {
                (from_line, from_attempt)
            } else {
                (-1, -1)
            };
            let rows: Vec<BankLineRow> = with_pool!(self, |p| {
                sqlx::query_as(
                    "SELECT line_id, attempt, amount_fen, credited, reason, value_date, sms_sent FROM sichuan_bank_lines \
                     WHERE file_id = $1 AND (line_id, attempt) > ($2, $3) ORDER BY line_id, attempt LIMIT $4",
                )
                .bind(file)
                .bind(line)
                .bind(attempt)
                .bind(i64::try_from(want).unwrap_or(i64::MAX))
                .fetch_all(p)
                .await?
            });
            out.extend(rows.into_iter().map(|r| (file, bank_line(r))));
        }
        Ok(out)
    }

    // ---- recoveries ------------------------------------------------------------------------

    /// Recover a credited payment (duplicate or deceased person) into the zero-balance
    /// account: recorded with its ledger entry and audit in one transaction. The requester
    /// and the approver are different people.
    #[allow(clippy::too_many_arguments)]
    pub async fn sichuan_recover(
        &self,
        batch_id: i64,
        line_id: i64,
        kind: &str,
        reason: &str,
        requested_by: &str,
        approved_by: &str,
        recovered_on: &str,
        entry: impl FnOnce(Fen) -> std::result::Result<Entry, String>,
    ) -> Result<Fen> {
        if requested_by == approved_by {
            return Err(invalid(
                "追回须由主管部门申请、财政部门同意，不能是同一人 (the requester cannot approve the recovery)",
            ));
        }
        if !matches!(kind, "duplicate" | "deceased") {
            return Err(invalid(format!(
                "追回类型应为 duplicate（重复领取）或 deceased（死亡冒领），实为「{kind}」"
            )));
        }
        let at = now();
        let mut tx = self.begin().await?;
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
            return Err(invalid(format!(
                "批次{batch_id}没有明细{line_id} (no line {line_id} in batch {batch_id})"
            )));
        };
        if state != LineState::Credited.as_str() {
            return Err(invalid(format!(
                "明细{line_id}状态为「{}」，只有已到账的款项可以追回 (only credited payments can be recovered)",
                LineState::parse(&state)
                    .map(|s| s.label_zh())
                    .unwrap_or(&state)
            )));
        }
        let inserted = with_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO sichuan_recoveries (batch_id, line_id, kind, amount_fen, reason, requested_by, approved_by, recovered_on, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (line_id) DO NOTHING",
            )
            .bind(batch_id)
            .bind(line_id)
            .bind(kind)
            .bind(fen)
            .bind(reason)
            .bind(requested_by)
            .bind(approved_by)
            .bind(recovered_on)
            .bind(&at)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if inserted == 0 {
            return Err(invalid(format!(
                "明细{line_id}已追回过 (line {line_id} was already recovered)"
            )));
        }
        let e = entry(Fen(fen)).map_err(invalid)?;
        if !e.touches(AccountKind::ZeroBalance) {
            return Err(invalid(
                "追回须进入单位零余额账户 (recoveries go to the zero-balance account)",
            ));
        }
        self.post_entry_in(&mut tx, &e).await?;
        let detail = serde_json::json!({"line": line_id, "kind": kind, "amount_fen": fen, "reason": reason, "requested_by": requested_by, "approved_by": approved_by, "recovered_on": recovered_on});
        self.append_audit_in(
            &mut tx,
            record(
                approved_by,
                "finance_reviewer",
                "sichuan.recover",
                format!("batch:{batch_id}"),
                detail,
                &at,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(Fen(fen))
    }

    /// Recoveries of the batches whose region lies within `region_prefix`, oldest first.
    pub async fn sichuan_recoveries(&self, region_prefix: &str) -> Result<Vec<Recovery>> {
        type T = (
            i64,
            i64,
            i64,
            String,
            i64,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
        );
        let like = format!("{region_prefix}%");
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT r.id, r.batch_id, r.line_id, r.kind, r.amount_fen, r.reason, r.requested_by, r.approved_by, r.recovered_on, r.returned_on, r.return_ref \
                            FROM sichuan_recoveries r JOIN batches b ON b.id = r.batch_id WHERE b.region LIKE $1 ORDER BY r.id")
                .bind(&like)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| Recovery {
                id: t.0,
                batch_id: t.1,
                line_id: t.2,
                kind: t.3,
                amount: Fen(t.4),
                reason: t.5,
                requested_by: t.6,
                approved_by: t.7,
                recovered_on: t.8,
                returned_on: t.9,
                return_ref: t.10,
            })
            .collect())
    }

    /// Mark a recovery returned to the treasury, posting the return entry in the same
    /// transaction. Returning twice is refused.
    pub async fn sichuan_return_recovery(
        &self,
        recovery_id: i64,
        returned_on: &str,
        return_ref: &str,
        entry: &Entry,
        actor: &str,
    ) -> Result<()> {
        let at = now();
        let mut tx = self.begin().await?;
        let changed = with_tx!(tx, |c| {
            sqlx::query("UPDATE sichuan_recoveries SET returned_on = $1, return_ref = $2 WHERE id = $3 AND returned_on IS NULL")
                .bind(returned_on)
                .bind(return_ref)
                .bind(recovery_id)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        if changed != 1 {
            return Err(invalid(format!(
                "追回款{recovery_id}不存在或已退回财政 (recovery missing or already returned)"
            )));
        }
        self.post_entry_in(&mut tx, entry).await?;
        let detail = serde_json::json!({"recovery": recovery_id, "returned_on": returned_on, "reference": return_ref, "amount_fen": entry.postings().iter().map(|p| p.amount.0.max(0)).sum::<i64>()});
        self.append_audit_in(
            &mut tx,
            record(
                actor,
                "dept_maker",
                "sichuan.recovery.return",
                format!("recovery:{recovery_id}"),
                detail,
                &at,
            ),
        )
        .await?;
        tx.commit().await
    }

    // ---- verification and month end -------------------------------------------------------

    /// Record the dual verification of a batch (the first one stays).
    pub async fn sichuan_record_verification(&self, v: &Verification, actor: &str) -> Result<()> {
        let at = now();
        let mut tx = self.begin().await?;
        let inserted = with_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO sichuan_verifications (batch_id, paid_on, deadline, published_on, on_time, publicised_count, publicised_fen, credited_count, credited_fen, differences, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (batch_id) DO NOTHING",
            )
            .bind(v.batch_id)
            .bind(&v.paid_on)
            .bind(&v.deadline)
            .bind(&v.published_on)
            .bind(i64::from(v.on_time))
            .bind(v.publicised.0)
            .bind(v.publicised.1.0)
            .bind(v.credited.0)
            .bind(v.credited.1.0)
            .bind(&v.differences)
            .bind(&at)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(());
        }
        let detail = serde_json::json!({"paid_on": v.paid_on, "deadline": v.deadline, "published_on": v.published_on, "on_time": v.on_time, "differences": serde_json::from_str::<serde_json::Value>(&v.differences).unwrap_or_default()});
        self.append_audit_in(
            &mut tx,
            record(
                actor,
                "dept_maker",
                "sichuan.verification",
                format!("batch:{}", v.batch_id),
                detail,
                &at,
            ),
        )
        .await?;
        crate::failpoints::hit("sichuan.verification.before_commit");
        tx.commit().await?;
        crate::failpoints::hit("sichuan.verification.after_commit");
        Ok(())
    }

    /// The dual verification of a batch.
    pub async fn sichuan_verification(&self, batch_id: i64) -> Result<Option<Verification>> {
        type T = (i64, String, String, String, i64, i64, i64, i64, i64, String);
        let t: Option<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT batch_id, paid_on, deadline, published_on, on_time, publicised_count, publicised_fen, credited_count, credited_fen, differences FROM sichuan_verifications WHERE batch_id = $1")
                .bind(batch_id)
                .fetch_optional(p)
                .await?
        });
        Ok(t.map(|t| Verification {
            batch_id: t.0,
            paid_on: t.1,
            deadline: t.2,
            published_on: t.3,
            on_time: t.4 != 0,
            publicised: (t.5, Fen(t.6)),
            credited: (t.7, Fen(t.8)),
            differences: t.9,
        }))
    }

    /// Record a month-end check (`id` is ignored) with its audit entry.
    pub async fn sichuan_record_month_end(&self, m: &MonthEnd) -> Result<i64> {
        let at = now();
        let mut tx = self.begin().await?;
        let id: i64 = with_tx!(tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO sichuan_month_end (month, scope, checked_on, balance_fen, outstanding, passed, actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )
            .bind(&m.month)
            .bind(&m.scope)
            .bind(&m.checked_on)
            .bind(m.balance.0)
            .bind(&m.outstanding)
            .bind(i64::from(m.passed))
            .bind(&m.actor)
            .bind(&at)
            .fetch_one(&mut *c)
            .await?
        });
        let detail = serde_json::json!({"month": m.month, "scope": m.scope, "checked_on": m.checked_on, "balance_fen": m.balance.0, "passed": m.passed});
        self.append_audit_in(
            &mut tx,
            record(
                &m.actor,
                "dept_maker",
                "sichuan.month_end",
                format!("month_end:{id}"),
                detail,
                &at,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    // ---- ledger, unpaid items, statements ----------------------------------------------

    /// Every posting on accounts of `kind` (all kinds when `None`) in entry order, optionally
    /// of one batch.
    pub async fn sichuan_postings(
        &self,
        kind: Option<AccountKind>,
        batch_id: Option<i64>,
    ) -> Result<Vec<Posting>> {
        type T = (i64, Option<i64>, String, String, String, String, i64);
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT e.id, e.batch_id, e.kind, e.memo, p.account_kind, p.owner, p.amount_fen FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id \
                            WHERE ($1 IS NULL OR p.account_kind = $1) AND ($2 IS NULL OR e.batch_id = $2) ORDER BY e.id, p.amount_fen")
                .bind(kind.map(|k| k.as_str()))
                .bind(batch_id)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| Posting {
                entry_id: t.0,
                batch_id: t.1,
                kind: t.2,
                memo: t.3,
                account_kind: t.4,
                owner: t.5,
                amount: Fen(t.6),
            })
            .collect())
    }

    /// The refunded lines of one province's batches within `region_prefix`: the ledger of
    /// unpaid items (乐山办法 四(五)2: "业务主管部门做好台账和备案").
    pub async fn sichuan_unpaid(&self, province: &str, region_prefix: &str) -> Result<Vec<Unpaid>> {
        type T = (
            i64,
            String,
            String,
            i64,
            String,
            String,
            String,
            i64,
            Option<String>,
            String,
            String,
            String,
            String,
        );
        let like = format!("{region_prefix}%");
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT b.id, b.order_no, b.project_name, l.id, l.name, l.region, l.period, r.amount_fen, l.fail_reason, r.reason, r.requested_by, r.approved_by, r.at \
                            FROM refunds r JOIN payment_lines l ON l.id = r.line_id JOIN batches b ON b.id = l.batch_id \
                            WHERE b.province = $1 AND b.region LIKE $2 ORDER BY r.id")
                .bind(province)
                .bind(&like)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| Unpaid {
                batch_id: t.0,
                order_no: t.1,
                project_name: t.2,
                line_id: t.3,
                name: t.4,
                region: t.5,
                period: t.6,
                amount: Fen(t.7),
                fail_reason: t.8,
                reason: t.9,
                requested_by: t.10,
                approved_by: t.11,
                at: t.12,
            })
            .collect())
    }

    /// Credited payments of one province's batches within `region_prefix` whose bank date
    /// lies in `[from, to]` (YYYY-MM-DD), decrypted for statements (mask before output), as
    /// a stream, in the order statements are handed down: grouped by person (blind index
    /// and name), the groups ordered by the region of the person's first payment (lowest
    /// region, then line id), then name, then blind index; within a group by region, then
    /// line id. The database sorts (a province has a
    /// million payments: none of them is held here but the rows in the channel), on a
    /// connection whose temporary storage is files, so SQLite's sorter spills to disk, not
    /// to memory. Names and codes compare byte-wise on both backends.
    pub fn sichuan_statement_stream(
        &self,
        province: &str,
        region_prefix: &str,
        from: &str,
        to: &str,
    ) -> StatementStream {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<StatementLine>>>(4);
        let store = self.clone();
        let args = (
            province.to_owned(),
            format!("{region_prefix}%"),
            from.to_owned(),
            to.to_owned(),
        );
        let task = tokio::spawn(async move {
            let sent = tx.clone();
            if let Err(e) = store.statement_rows(args, tx).await {
                let _ = sent.send(Err(e)).await;
            }
        });
        StatementStream { rx, task }
    }

    async fn statement_rows(
        &self,
        (province, like, from, to): (String, String, String, String),
        tx: tokio::sync::mpsc::Sender<Result<Vec<StatementLine>>>,
    ) -> Result<()> {
        use futures_util::TryStreamExt;
        type T = (
            i64,
            i64,
            Vec<u8>,
            Vec<u8>,
            String,
            String,
            Vec<u8>,
            String,
            String,
            i64,
            String,
            Option<String>,
            Option<String>,
        );
        /// Rows sent at a time.
        const ROWS: usize = 512;
        let (first, order) = match self.backend() {
            crate::db::Backend::Sqlite => (
                "MIN(l.region)",
                "first_region, name, person_idx, region, id",
            ),
            crate::db::Backend::Postgres => (
                "MIN(l.region COLLATE \"C\")",
                "first_region COLLATE \"C\", name COLLATE \"C\", person_idx, region COLLATE \"C\", id",
            ),
        };
        let sql = format!(
            "SELECT id, batch_id, person_idx, id_enc, name, region, account_enc, project_name, period, amount_fen, bank_date, proxy_kind, proxy_name FROM ( \
             SELECT l.id, b.id AS batch_id, l.person_idx, l.id_enc, l.name, l.region, a.account_enc, b.project_name, l.period, l.amount_fen, a.bank_date, l.proxy_kind, l.proxy_name, \
             {first} OVER (PARTITION BY l.person_idx, l.name) AS first_region \
             FROM payment_lines l JOIN batches b ON b.id = l.batch_id JOIN line_attempts a ON a.line_id = l.id AND a.attempt = l.attempt \
             WHERE b.province = $1 AND b.region LIKE $2 AND l.state = 'credited' AND a.outcome = 'credited' AND a.bank_date >= $3 AND a.bank_date <= $4 \
             ) s ORDER BY {order}"
        );
        let open = |t: T| -> Result<StatementLine> {
            let idx: BlindIndex =
                t.2.as_slice()
                    .try_into()
                    .map_err(|_| StoreError::corrupt("payment_lines.person_idx"))?;
            Ok(StatementLine {
                person_key: hex::encode(idx),
                resident_id: open_str(&self.vault, "payment_lines.id", &idx, &t.3)?,
                name: t.4,
                region: t.5,
                account: open_str(&self.vault, "line_attempts.account", &idx, &t.6)?,
                project_name: t.7,
                period: t.8,
                amount: Fen(t.9),
                bank_date: t.10,
                proxy_kind: t.11,
                proxy_name: t.12,
                line_id: t.0,
                batch_id: t.1,
            })
        };
        let mut buf = Vec::with_capacity(ROWS);
        macro_rules! drain {
            ($rows:expr) => {{
                let mut rows = $rows;
                while let Some(t) = rows.try_next().await? {
                    buf.push(open(t)?);
                    if buf.len() == ROWS {
                        let page = std::mem::replace(&mut buf, Vec::with_capacity(ROWS));
                        if tx.send(Ok(page)).await.is_err() {
                            // The reader stopped: nothing more to read.
                            return Ok(());
                        }
                    }
                }
            }};
        }
        match &self.pool {
            crate::db::Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                // A connection last used by a bulk transaction keeps `temp_store = MEMORY`
                // (see `SQLITE_BEGIN_BULK`): this sort must spill to files.
                sqlx::query("PRAGMA temp_store = DEFAULT")
                    .execute(&mut *conn)
                    .await?;
                drain!(
                    sqlx::query_as::<_, T>(&sql)
                        .bind(&province)
                        .bind(&like)
                        .bind(&from)
                        .bind(&to)
                        .fetch(&mut *conn)
                );
            }
            crate::db::Pool::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                drain!(
                    sqlx::query_as::<_, T>(&sql)
                        .bind(&province)
                        .bind(&like)
                        .bind(&from)
                        .bind(&to)
                        .fetch(&mut *conn)
                );
            }
        }
        if !buf.is_empty() {
            let _ = tx.send(Ok(buf)).await;
        }
        Ok(())
    }
}

/// The credited payments of [`Store::sichuan_statement_stream`], read as the database
/// delivers them (a background task reads, decrypts and hands over a few hundred rows at a
/// time; dropping the stream stops it).
pub struct StatementStream {
    rx: tokio::sync::mpsc::Receiver<Result<Vec<StatementLine>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StatementStream {
    /// The next rows, in order; `None` at the end.
    pub async fn next_rows(&mut self) -> Result<Option<Vec<StatementLine>>> {
        self.rx.recv().await.transpose()
    }
}

impl Drop for StatementStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A `sichuan_bank_lines` row: line, attempt, amount, credited, reason, value date, SMS sent.
type BankLineRow = (i64, i64, i64, i64, Option<String>, String, i64);

fn bank_line(t: BankLineRow) -> BankLine {
    BankLine {
        line_id: t.0,
        attempt: t.1,
        amount: Fen(t.2),
        credited: t.3 != 0,
        reason: t.4,
        value_date: t.5,
        sms_sent: t.6 != 0,
    }
}
