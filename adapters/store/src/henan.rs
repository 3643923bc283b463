//! Henan's tables (migrations `0300_henan`): the project library and its change requests
//! (濮阳规程 第十至十二条), candidate and county agent banks with their interface credentials
//! (第十五、十六条), orders pushed to the budget system (第二十一条), releases and pulls of the
//! detail by the bank (第二十二条), the results it posts (第二十三条), hand-overs and statements
//! (第二十六条), and the business dates of signed corrections and refunds.
//!
//! The store knows no Henan rule: callers (the province crate's rules, applied by the app)
//! decide; these functions persist, each write in one transaction with its audit entry. Texts
//! that are domain values (a library entry, a statement comparison) are JSON the caller owns.
//! Dates named `on`/`*_on` are business dates `YYYY-MM-DD`; `at` is the write's timestamp.

use crate::db::{Backend, Store, Tx, TxInner, with_pool, with_tx, with_write};
use crate::error::{Result, StoreError};
use crate::registers::{in_list_bucket, list_placeholders, open_str, padded};
use crate::vault::BlindIndex;
use std::collections::HashMap;
use ykt_kernel::audit::AuditRecord;
use ykt_kernel::batch::{LineState, Totals};
use ykt_kernel::{BankAccount, Fen};

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
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

fn invalid(reason: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        reason: reason.into(),
    }
}

fn totals(count: i64, fen: i64) -> Totals {
    Totals {
        count: u64::try_from(count).unwrap_or(0),
        amount: Fen(fen),
    }
}

fn count_i64(t: &Totals) -> i64 {
    i64::try_from(t.count).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------------------------
// The project library (第十至十二条)

/// A project in the library.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LibraryRow {
    pub code: String,
    pub name: String,
    /// The entry's definition (JSON owned by the caller).
    pub entry: String,
    /// `active` or `withdrawn`.
    pub status: String,
    pub version: i64,
    /// The change request that made this version (`None`: the initial library).
    pub request_id: Option<i64>,
    pub updated_on: String,
}

/// One version of a library entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LibraryEvent {
    pub code: String,
    pub version: i64,
    /// `seed`, `add`, `modify` or `withdraw`.
    pub kind: String,
    pub entry: String,
    pub status: String,
    pub request_id: Option<i64>,
    pub actor: String,
    pub on_date: String,
}

/// A change to apply to the library with the last step of a change request.
#[derive(Debug, Clone, Copy)]
pub struct LibraryChange<'a> {
    /// `add`, `modify` or `withdraw`.
    pub kind: &'a str,
    pub code: &'a str,
    pub name: &'a str,
    pub entry: &'a str,
}

/// A change request (调整变更申请表).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChangeRow {
    pub id: i64,
    pub kind: String,
    pub code: String,
    pub entry: String,
    pub reason: String,
    /// The filing unit's region (twelve digits).
    pub region: String,
    pub state: String,
    pub filed_by: String,
    pub filed_on: String,
    pub version: i64,
}

/// A step taken on a change request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChangeStepRow {
    pub seq: i64,
    pub step: String,
    pub actor: String,
    pub role: String,
    /// The office (region) acting.
    pub office: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub note: Option<String>,
    pub on_date: String,
}

/// A new change request.
#[derive(Debug, Clone, Copy)]
pub struct NewChange<'a> {
    pub kind: &'a str,
    pub code: &'a str,
    pub entry: &'a str,
    pub reason: &'a str,
    pub region: &'a str,
    pub actor: &'a str,
    pub role: &'a str,
    pub on: &'a str,
}

/// A step on a change request, applied only if the request is still at `version` and `from`.
#[derive(Debug, Clone, Copy)]
pub struct ChangeMove<'a> {
    pub id: i64,
    pub version: i64,
    pub from: &'a str,
    pub to: &'a str,
    pub step: &'a str,
    pub actor: &'a str,
    pub role: &'a str,
    pub office: &'a str,
    pub note: Option<&'a str>,
    pub on: &'a str,
    /// The library change the step applies (the provincial finance's last step).
    pub apply: Option<LibraryChange<'a>>,
}

type LibTuple = (String, String, String, String, i64, Option<i64>, String);
const LIB_SELECT: &str =
    "SELECT code, name, entry, status, version, request_id, updated_on FROM henan_library";

fn lib_row(t: LibTuple) -> LibraryRow {
    LibraryRow {
        code: t.0,
        name: t.1,
        entry: t.2,
        status: t.3,
        version: t.4,
        request_id: t.5,
        updated_on: t.6,
    }
}

type ChangeTuple = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
);
const CHANGE_SELECT: &str = "SELECT id, kind, code, entry, reason, region, state, filed_by, filed_on, version FROM henan_change_requests";

fn change_row(t: ChangeTuple) -> ChangeRow {
    ChangeRow {
        id: t.0,
        kind: t.1,
        code: t.2,
        entry: t.3,
        reason: t.4,
        region: t.5,
        state: t.6,
        filed_by: t.7,
        filed_on: t.8,
        version: t.9,
    }
}

impl Store {
    /// Load the initial library when it is empty (the same entries again change nothing).
    /// `entries` are `(code, name, entry JSON)`. Returns how many were loaded.
    pub async fn henan_library_seed(
        &self,
        entries: &[(String, String, String)],
        actor: &str,
        on: &str,
    ) -> Result<u64> {
        let at = now();
        let mut tx = self.begin().await?;
        let n: i64 = with_tx!(tx, |c| {
            sqlx::query_scalar("SELECT COUNT(*) FROM henan_library")
                .fetch_one(&mut *c)
                .await?
        });
        if n > 0 {
            tx.rollback().await?;
            return Ok(0);
        }
        for (code, name, entry) in entries {
            with_tx!(tx, |c| {
                sqlx::query("INSERT INTO henan_library (code, name, entry, status, version, request_id, updated_on, at) VALUES ($1, $2, $3, 'active', 1, NULL, $4, $5)")
                    .bind(code).bind(name).bind(entry).bind(on).bind(&at)
                    .execute(&mut *c).await?;
                sqlx::query("INSERT INTO henan_library_history (code, version, kind, entry, status, request_id, actor, on_date, at) VALUES ($1, 1, 'seed', $2, 'active', NULL, $3, $4, $5)")
                    .bind(code).bind(entry).bind(actor).bind(on).bind(&at)
                    .execute(&mut *c).await?;
            });
        }
        let codes: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        self.append_audit_in(
            &mut tx,
            record(
                actor,
                "system",
                "henan.library.seed",
                "henan_library".into(),
                serde_json::json!({"projects": codes, "on": on}),
                &at,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(entries.len() as u64)
    }

    /// The library, by code.
    pub async fn henan_library(&self) -> Result<Vec<LibraryRow>> {
        let rows: Vec<LibTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!("{LIB_SELECT} ORDER BY code"))
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().map(lib_row).collect())
    }

    /// One library entry by code or by name.
    pub async fn henan_library_entry(&self, code_or_name: &str) -> Result<Option<LibraryRow>> {
        let row: Option<LibTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!("{LIB_SELECT} WHERE code = $1 OR name = $1"))
                .bind(code_or_name)
                .fetch_optional(p)
                .await?
        });
        Ok(row.map(lib_row))
    }

    /// Every version of the library (of one project when `code` is given), oldest first.
    pub async fn henan_library_history(&self, code: Option<&str>) -> Result<Vec<LibraryEvent>> {
        type T = (
            String,
            i64,
            String,
            String,
            String,
            Option<i64>,
            String,
            String,
        );
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT code, version, kind, entry, status, request_id, actor, on_date FROM henan_library_history WHERE ($1 IS NULL OR code = $1) ORDER BY id")
                .bind(code)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| LibraryEvent {
                code: t.0,
                version: t.1,
                kind: t.2,
                entry: t.3,
                status: t.4,
                request_id: t.5,
                actor: t.6,
                on_date: t.7,
            })
            .collect())
    }

    /// File a change request (state `filed`, step 1 `file`). Returns its id.
    pub async fn henan_file_change(&self, n: &NewChange<'_>) -> Result<i64> {
        let at = now();
        let mut tx = self.begin().await?;
        let id: i64 = with_tx!(tx, |c| {
            let id: i64 = sqlx::query_scalar("INSERT INTO henan_change_requests (kind, code, entry, reason, region, state, filed_by, filed_on, version, at) VALUES ($1, $2, $3, $4, $5, 'filed', $6, $7, 0, $8) RETURNING id")
                .bind(n.kind).bind(n.code).bind(n.entry).bind(n.reason).bind(n.region).bind(n.actor).bind(n.on).bind(&at)
                .fetch_one(&mut *c).await?;
            sqlx::query("INSERT INTO henan_change_steps (request_id, seq, step, actor, role, office, from_state, to_state, note, on_date, at) VALUES ($1, 1, 'file', $2, $3, $4, NULL, 'filed', $5, $6, $7)")
                .bind(id).bind(n.actor).bind(n.role).bind(n.region).bind(n.reason).bind(n.on).bind(&at)
                .execute(&mut *c).await?;
            id
        });
        self.append_audit_in(
            &mut tx,
            AuditRecord {
                to_state: Some("filed".into()),
                ..record(
                    n.actor,
                    n.role,
                    "henan.change.file",
                    format!("henan_change:{id}"),
                    serde_json::json!({"kind": n.kind, "code": n.code, "reason": n.reason, "region": n.region, "on": n.on}),
                    &at,
                )
            },
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Change requests, newest first.
    pub async fn henan_changes(&self) -> Result<Vec<ChangeRow>> {
        let rows: Vec<ChangeTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!("{CHANGE_SELECT} ORDER BY id DESC"))
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().map(change_row).collect())
    }

    /// One change request.
    pub async fn henan_change(&self, id: i64) -> Result<Option<ChangeRow>> {
        let row: Option<ChangeTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!("{CHANGE_SELECT} WHERE id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await?
        });
        Ok(row.map(change_row))
    }

    /// The steps of a change request, oldest first.
    pub async fn henan_change_steps(&self, id: i64) -> Result<Vec<ChangeStepRow>> {
        type T = (
            i64,
            String,
            String,
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            String,
        );
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT seq, step, actor, role, office, from_state, to_state, note, on_date FROM henan_change_steps WHERE request_id = $1 ORDER BY seq")
                .bind(id)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| ChangeStepRow {
                seq: t.0,
                step: t.1,
                actor: t.2,
                role: t.3,
                office: t.4,
                from_state: t.5,
                to_state: t.6,
                note: t.7,
                on_date: t.8,
            })
            .collect())
    }

    /// Take a step on a change request; with `apply`, change the library in the same
    /// transaction. Refused (`Conflict`) when the request moved meanwhile.
    pub async fn henan_change_move(&self, m: &ChangeMove<'_>) -> Result<()> {
        let at = now();
        let mut tx = self.begin().await?;
        let changed = with_tx!(tx, |c| {
            sqlx::query("UPDATE henan_change_requests SET state = $1, version = version + 1 WHERE id = $2 AND version = $3 AND state = $4")
                .bind(m.to).bind(m.id).bind(m.version).bind(m.from)
                .execute(&mut *c).await?.rows_affected()
        });
        if changed != 1 {
            tx.rollback().await?;
            return Err(StoreError::Concurrent {
                what: format!(
                    "变更申请{}已被他人处理，请刷新后重试 (change request {} changed concurrently)",
                    m.id, m.id
                ),
            });
        }
        with_tx!(tx, |c| {
            sqlx::query("INSERT INTO henan_change_steps (request_id, seq, step, actor, role, office, from_state, to_state, note, on_date, at) \
                 SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM henan_change_steps WHERE request_id = $1")
                .bind(m.id).bind(m.step).bind(m.actor).bind(m.role).bind(m.office).bind(m.from).bind(m.to).bind(m.note).bind(m.on).bind(&at)
                .execute(&mut *c).await?;
        });
        if let Some(a) = &m.apply {
            self.henan_apply_library(&mut tx, a, m.id, m.actor, m.on, &at)
                .await?;
        }
        self.append_audit_in(
            &mut tx,
            AuditRecord {
                from_state: Some(m.from.to_owned()),
                to_state: Some(m.to.to_owned()),
                ..record(
                    m.actor,
                    m.role,
                    &format!("henan.change.{}", m.step),
                    format!("henan_change:{}", m.id),
                    serde_json::json!({"office": m.office, "note": m.note, "on": m.on, "applied": m.apply.map(|a| a.code)}),
                    &at,
                )
            },
        )
        .await?;
        tx.commit().await
    }

    async fn henan_apply_library(
        &self,
        tx: &mut Tx,
        a: &LibraryChange<'_>,
        request: i64,
        actor: &str,
        on: &str,
        at: &str,
    ) -> Result<()> {
        let affected = with_tx!(tx, |c| {
            match a.kind {
                "add" => sqlx::query("INSERT INTO henan_library (code, name, entry, status, version, request_id, updated_on, at) VALUES ($1, $2, $3, 'active', 1, $4, $5, $6)")
                    .bind(a.code).bind(a.name).bind(a.entry).bind(request).bind(on).bind(at)
                    .execute(&mut *c).await?.rows_affected(),
                "modify" => sqlx::query("UPDATE henan_library SET name = $1, entry = $2, version = version + 1, request_id = $3, updated_on = $4, at = $5 WHERE code = $6 AND status = 'active'")
                    .bind(a.name).bind(a.entry).bind(request).bind(on).bind(at).bind(a.code)
                    .execute(&mut *c).await?.rows_affected(),
                "withdraw" => sqlx::query("UPDATE henan_library SET status = 'withdrawn', version = version + 1, request_id = $1, updated_on = $2, at = $3 WHERE code = $4 AND status = 'active'")
                    .bind(request).bind(on).bind(at).bind(a.code)
                    .execute(&mut *c).await?.rows_affected(),
                other => return Err(invalid(format!("未知的变更类型 {other} (unknown change kind)"))),
            }
        });
        if affected != 1 {
            return Err(invalid(format!(
                "补贴项目库中没有在用的项目{}，无法{} (no active project {} in the library)",
                a.code,
                if a.kind == "withdraw" {
                    "停止执行"
                } else {
                    "调整"
                },
                a.code
            )));
        }
        with_tx!(tx, |c| {
            sqlx::query("INSERT INTO henan_library_history (code, version, kind, entry, status, request_id, actor, on_date, at) \
                 SELECT code, version, $1, entry, status, request_id, $2, $3, $4 FROM henan_library WHERE code = $5")
                .bind(a.kind).bind(actor).bind(on).bind(at).bind(a.code)
                .execute(&mut *c).await?;
        });
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Agent banks (第十五、十六条)

/// A candidate agent bank.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CandidateRow {
    pub code: String,
    pub name: String,
    pub agreement_no: String,
    pub connected: bool,
    pub free_interbank: bool,
    pub added_by: String,
    pub added_on: String,
}

/// A county's agent bank.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CountyBankRow {
    pub county: String,
    pub bank: String,
    /// The county's 补贴资金代发协议 under the framework agreement.
    pub agreement_no: String,
    pub selected_by: String,
    pub selected_on: String,
}

/// The SHA-256 (lower-case hex) of a bank's interface token: the only form the store keeps.
/// Tokens are 256-bit random values, so a fast hash is the right tool (as for API tokens);
/// slow password hashes are for low-entropy secrets.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Store {
    /// Register a candidate bank (refused when the code exists).
    pub async fn henan_add_candidate(&self, c: &CandidateRow) -> Result<()> {
        let at = now();
        let mut tx = self.begin().await?;
        with_tx!(tx, |x| {
            sqlx::query("INSERT INTO henan_candidate_banks (code, name, agreement_no, connected, free_interbank, added_by, added_on, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(&c.code).bind(&c.name).bind(&c.agreement_no).bind(i64::from(c.connected)).bind(i64::from(c.free_interbank)).bind(&c.added_by).bind(&c.added_on).bind(&at)
                .execute(&mut *x).await?;
        });
        self.append_audit_in(
            &mut tx,
            record(
                &c.added_by,
                "finance_reviewer",
                "henan.bank.candidate",
                format!("henan_bank:{}", c.code),
                serde_json::json!({"name": c.name, "agreement_no": c.agreement_no, "on": c.added_on}),
                &at,
            ),
        )
        .await?;
        tx.commit().await
    }

    /// The candidate list, by code.
    pub async fn henan_candidates(&self) -> Result<Vec<CandidateRow>> {
        type T = (String, String, String, i64, i64, String, String);
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT code, name, agreement_no, connected, free_interbank, added_by, added_on FROM henan_candidate_banks ORDER BY code")
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| CandidateRow {
                code: t.0,
                name: t.1,
                agreement_no: t.2,
                connected: t.3 == 1,
                free_interbank: t.4 == 1,
                added_by: t.5,
                added_on: t.6,
            })
            .collect())
    }

    /// Select `bank` for `county`, refused when the county already has `max` banks (checked
    /// under a lock, so two finance users selecting at once cannot exceed it).
    pub async fn henan_select_bank(&self, s: &CountyBankRow, max: i64) -> Result<()> {
        let at = now();
        let mut tx = self.begin().await?;
        if tx.backend() == Backend::Postgres {
            with_tx!(tx, |c| {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind(format!("henan_county_banks:{}", s.county))
                    .execute(&mut *c)
                    .await?;
            });
        }
        let have: i64 = with_tx!(tx, |c| {
            sqlx::query_scalar("SELECT COUNT(*) FROM henan_county_banks WHERE county = $1")
                .bind(&s.county)
                .fetch_one(&mut *c)
                .await?
        });
        if have >= max {
            tx.rollback().await?;
            return Err(invalid(format!(
                "{}已选定{have}家代发银行，不能再增加 (the county already has {have} banks)",
                s.county
            )));
        }
        with_tx!(tx, |c| {
            sqlx::query("INSERT INTO henan_county_banks (county, bank, agreement_no, selected_by, selected_on, at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&s.county).bind(&s.bank).bind(&s.agreement_no).bind(&s.selected_by).bind(&s.selected_on).bind(&at)
                .execute(&mut *c).await?;
        });
        self.append_audit_in(
            &mut tx,
            record(
                &s.selected_by,
                "finance_reviewer",
                "henan.bank.select",
                format!("henan_county:{}", s.county),
                serde_json::json!({"bank": s.bank, "agreement_no": s.agreement_no, "on": s.selected_on}),
                &at,
            ),
        )
        .await?;
        tx.commit().await
    }

    /// Drop `bank` from `county`'s banks. Returns whether it was selected.
    pub async fn henan_deselect_bank(&self, county: &str, bank: &str, actor: &str) -> Result<bool> {
        let at = now();
        let mut tx = self.begin().await?;
        let n = with_tx!(tx, |c| {
            sqlx::query("DELETE FROM henan_county_banks WHERE county = $1 AND bank = $2")
                .bind(county)
                .bind(bank)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        if n == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        self.append_audit_in(
            &mut tx,
            record(
                actor,
                "finance_reviewer",
                "henan.bank.deselect",
                format!("henan_county:{county}"),
                serde_json::json!({"bank": bank}),
                &at,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Counties' banks (of one county when given), by county and bank.
    pub async fn henan_county_banks(&self, county: Option<&str>) -> Result<Vec<CountyBankRow>> {
        type T = (String, String, String, String, String);
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT county, bank, agreement_no, selected_by, selected_on FROM henan_county_banks WHERE ($1 IS NULL OR county = $1) ORDER BY county, bank")
                .bind(county)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| CountyBankRow {
                county: t.0,
                bank: t.1,
                agreement_no: t.2,
                selected_by: t.3,
                selected_on: t.4,
            })
            .collect())
    }

    /// Store the hash of a bank's interface credential, replacing any earlier one.
    pub async fn henan_set_credential(
        &self,
        bank: &str,
        token_sha256: &str,
        actor: &str,
    ) -> Result<()> {
        let at = now();
        let mut tx = self.begin().await?;
        with_tx!(tx, |c| {
            sqlx::query("INSERT INTO henan_bank_credentials (bank, token_sha256, issued_by, at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (bank) DO UPDATE SET token_sha256 = excluded.token_sha256, issued_by = excluded.issued_by, at = excluded.at")
                .bind(bank).bind(token_sha256).bind(actor).bind(&at)
                .execute(&mut *c).await?;
        });
        self.append_audit_in(
            &mut tx,
            record(
                actor,
                "admin",
                "henan.bank.credential",
                format!("henan_bank:{bank}"),
                serde_json::json!({}),
                &at,
            ),
        )
        .await?;
        tx.commit().await
    }

    /// The bank a credential hash belongs to.
    pub async fn henan_bank_for_token(&self, token_sha256: &str) -> Result<Option<String>> {
        Ok(with_pool!(self, |p| {
            sqlx::query_scalar("SELECT bank FROM henan_bank_credentials WHERE token_sha256 = $1")
                .bind(token_sha256)
                .fetch_optional(p)
                .await?
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Orders (第二十一条), releases and pulls (第二十二条)

/// A batch's disbursement application.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrderRow {
    pub batch_id: i64,
    pub order_no: String,
    pub bank: String,
    pub budget_unit: String,
    pub assigned_by: String,
    pub assigned_on: String,
    pub pushed_on: Option<String>,
    /// The message as pushed to the budget system (decoded text).
    pub push_message: Option<String>,
    /// The budget system's payment request number.
    pub request_no: Option<String>,
    /// The budget indicator (预算指标) it linked.
    pub indicator: Option<String>,
    pub funded_on: Option<String>,
}

type OrderTuple = (
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);
const ORDER_SELECT: &str = "SELECT batch_id, order_no, bank, budget_unit, assigned_by, assigned_on, pushed_on, push_message, request_no, indicator, funded_on FROM henan_orders";

fn order_row(t: OrderTuple) -> OrderRow {
    OrderRow {
        batch_id: t.0,
        order_no: t.1,
        bank: t.2,
        budget_unit: t.3,
        assigned_by: t.4,
        assigned_on: t.5,
        pushed_on: t.6,
        push_message: t.7,
        request_no: t.8,
        indicator: t.9,
        funded_on: t.10,
    }
}

/// One release of an order's detail for pulling.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReleaseRow {
    pub round: i64,
    pub lines: Totals,
    pub notified: String,
    pub on_date: String,
}

/// One pull of an order's detail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PullRow {
    pub id: i64,
    pub bank: String,
    pub mode: String,
    pub after_line: i64,
    pub last_line: Option<i64>,
    pub lines: i64,
    pub complete: bool,
}

/// A line as served to the bank: the full account (it goes to the bank), never logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullLine {
    pub line_id: i64,
    pub attempt: i64,
    pub row_no: i64,
    pub name: String,
    pub account: BankAccount,
    pub bank: String,
    pub amount: Fen,
    pub period: String,
    pub region: String,
}

type PullTuple = (
    i64,
    i64,
    i64,
    Vec<u8>,
    String,
    Vec<u8>,
    String,
    i64,
    String,
    String,
);
const OPEN_PAGE_SQL: &str = "SELECT id, attempt, row_no, person_idx, name, account_enc, bank, amount_fen, period, region FROM payment_lines \
     WHERE batch_id = $1 AND state = 'in_flight' AND id > $2 ORDER BY id LIMIT $3";

fn pull_line(vault: &crate::vault::Vault, t: PullTuple) -> Result<PullLine> {
    let idx: BlindIndex =
        t.3.as_slice()
            .try_into()
            .map_err(|_| StoreError::corrupt("payment_lines.person_idx"))?;
    let account = open_str(vault, "payment_lines.account", &idx, &t.5)?;
    Ok(PullLine {
        line_id: t.0,
        attempt: t.1,
        row_no: t.2,
        name: t.4,
        account: BankAccount::parse(&account)
            .map_err(|_| StoreError::corrupt("payment_lines.account_enc"))?,
        bank: t.6,
        amount: Fen(t.7),
        period: t.8,
        region: t.9,
    })
}

/// Plaintext bytes of a chunk of a released detail (migration `0302`): large enough that a
/// pull is a few dozen reads and decryptions, small enough to hold one at a time.
pub const DETAIL_CHUNK_BYTES: usize = 1 << 20;
/// Lines read per statement while a detail is written.
const DETAIL_READ: i64 = 4096;

/// How a release's detail is materialised ([`Store::henan_record_release`]).
pub struct DetailSpec<'a> {
    /// The order's batch (its lines in flight are the detail).
    pub batch_id: i64,
    /// Writes one line as the bank receives it (the caller's format: the bank file's line,
    /// its line break included). The store only cuts the bytes into chunks between lines.
    pub encode: &'a (dyn Fn(&PullLine, &mut Vec<u8>) + Send + Sync),
    /// Plaintext bytes per chunk ([`DETAIL_CHUNK_BYTES`]); a chunk never splits a line.
    pub chunk_bytes: usize,
}

/// The materialised detail of an order's latest release.
#[derive(Clone, PartialEq, Eq)]
pub struct DetailRow {
    pub order_no: String,
    pub round: i64,
    /// The lines it lists (those in flight when it was written).
    pub lines: Totals,
    /// The audit log's last entry when it was written.
    pub mark: i64,
    salt: Vec<u8>,
}

impl std::fmt::Debug for DetailRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetailRow")
            .field("order_no", &self.order_no)
            .field("round", &self.round)
            .field("lines", &self.lines)
            .field("mark", &self.mark)
            .finish_non_exhaustive()
    }
}

/// Whether a materialised detail still lists exactly the lines in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailState {
    /// Nothing changed since it was written: serve it as it is.
    Exact,
    /// Results arrived since: serve its lines still in flight ([`Store::henan_in_flight_ids`]).
    Reported,
    /// Lines were dispatched since (the next release is being recorded): read the lines.
    Stale,
}

/// One decrypted chunk of a detail: whole lines `first_line..=last_line` (`lines` of them).
pub struct DetailChunk {
    pub seq: i64,
    pub first_line: i64,
    pub last_line: i64,
    pub lines: i64,
    /// The lines' bytes, as the caller's encoder wrote them.
    pub text: Vec<u8>,
}

/// The key context of a detail: order, round and the salt of this writing.
fn detail_context(order_no: &str, round: i64, salt: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(32 + order_no.len() + salt.len());
    c.extend_from_slice(b"henan_release_chunks\0");
    c.extend_from_slice(order_no.as_bytes());
    c.push(0);
    c.extend_from_slice(&round.to_be_bytes());
    c.extend_from_slice(salt);
    c
}

/// Associated data of a chunk: its place in the detail, so a chunk moved, dropped or
/// relabelled does not authenticate.
fn detail_aad(order_no: &str, round: i64, seq: i64, first: i64, last: i64, lines: i64) -> Vec<u8> {
    let mut a = Vec::with_capacity(64 + order_no.len());
    a.extend_from_slice(b"henan_release_chunks\0");
    a.extend_from_slice(order_no.as_bytes());
    a.push(0);
    for v in [round, seq, first, last, lines] {
        a.extend_from_slice(&v.to_be_bytes());
    }
    a
}

/// The chunk being filled while a detail is written.
struct Chunker {
    buf: Vec<u8>,
    seq: i64,
    first: i64,
    last: i64,
    lines: i64,
}

impl Chunker {
    async fn flush(
        &mut self,
        tx: &mut Tx,
        order_no: &str,
        round: i64,
        cipher: &crate::vault::ChunkCipher,
    ) -> Result<()> {
        let aad = detail_aad(order_no, round, self.seq, self.first, self.last, self.lines);
        let cap = self.buf.capacity();
        let mut body = std::mem::replace(&mut self.buf, Vec::with_capacity(cap));
        cipher.seal_in_place(u64::try_from(self.seq).unwrap_or(u64::MAX), &aad, &mut body)?;
        with_tx!(*tx, |c| {
            sqlx::query("INSERT INTO henan_release_chunks (order_no, round, seq, first_line, last_line, lines, body) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(order_no)
                .bind(round)
                .bind(self.seq)
                .bind(self.first)
                .bind(self.last)
                .bind(self.lines)
                .bind(body)
                .execute(&mut *c)
                .await?;
        });
        self.seq += 1;
        self.lines = 0;
        Ok(())
    }
}

impl Store {
    /// Record (or change, before it is pushed) the bank and budget unit of a batch's
    /// disbursement application; the batch's agent bank is set with it.
    pub async fn henan_assign_order(
        &self,
        batch_id: i64,
        order_no: &str,
        bank: &str,
        budget_unit: &str,
        actor: &str,
        on: &str,
    ) -> Result<()> {
        let at = now();
        let mut tx = self.begin().await?;
        let pushed: Option<Option<String>> = with_tx!(tx, |c| {
            sqlx::query_scalar("SELECT pushed_on FROM henan_orders WHERE batch_id = $1")
                .bind(batch_id)
                .fetch_optional(&mut *c)
                .await?
        });
        if let Some(Some(d)) = pushed {
            tx.rollback().await?;
            return Err(invalid(format!(
                "发放申请已于{d}推送预算管理一体化系统，不能再更换代发银行 (the order was pushed on {d})"
            )));
        }
        with_tx!(tx, |c| {
            sqlx::query("INSERT INTO henan_orders (batch_id, order_no, bank, budget_unit, assigned_by, assigned_on, at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (batch_id) DO UPDATE SET bank = excluded.bank, budget_unit = excluded.budget_unit, assigned_by = excluded.assigned_by, assigned_on = excluded.assigned_on, at = excluded.at")
                .bind(batch_id).bind(order_no).bind(bank).bind(budget_unit).bind(actor).bind(on).bind(&at)
                .execute(&mut *c).await?;
            sqlx::query("UPDATE batches SET agent_bank = $1 WHERE id = $2")
                .bind(bank)
                .bind(batch_id)
                .execute(&mut *c)
                .await?;
        });
        self.append_audit_in(
            &mut tx,
            record(
                actor,
                "finance_reviewer",
                "henan.order.assign",
                format!("batch:{batch_id}"),
                serde_json::json!({"order_no": order_no, "bank": bank, "budget_unit": budget_unit, "on": on}),
                &at,
            ),
        )
        .await?;
        crate::failpoints::hit("henan.order.before_commit");
        tx.commit().await?;
        crate::failpoints::hit("henan.order.after_commit");
        Ok(())
    }

    /// The application of an order number.
    pub async fn henan_order(&self, order_no: &str) -> Result<Option<OrderRow>> {
        let t: Option<OrderTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!("{ORDER_SELECT} WHERE order_no = $1"))
                .bind(order_no)
                .fetch_optional(p)
                .await?
        });
        Ok(t.map(order_row))
    }

    /// The application of a batch.
    pub async fn henan_order_of_batch(&self, batch_id: i64) -> Result<Option<OrderRow>> {
        let t: Option<OrderTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!("{ORDER_SELECT} WHERE batch_id = $1"))
                .bind(batch_id)
                .fetch_optional(p)
                .await?
        });
        Ok(t.map(order_row))
    }

    /// Every application (of one bank when given), by batch.
    pub async fn henan_orders(&self, bank: Option<&str>) -> Result<Vec<OrderRow>> {
        let rows: Vec<OrderTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!(
                "{ORDER_SELECT} WHERE ($1 IS NULL OR bank = $1) ORDER BY batch_id"
            ))
            .bind(bank)
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(order_row).collect())
    }

    /// Record what was pushed to the budget system, its payment request number and the
    /// budget indicator it linked.
    pub async fn henan_record_push(
        &self,
        order_no: &str,
        message: &str,
        request_no: &str,
        indicator: Option<&str>,
        on: &str,
    ) -> Result<()> {
        crate::failpoints::hit("henan.push.before_commit");
        let n = with_write!(self, |p| {
            sqlx::query("UPDATE henan_orders SET pushed_on = $1, push_message = $2, request_no = $3, indicator = COALESCE($4, indicator) WHERE order_no = $5")
                .bind(on).bind(message).bind(request_no).bind(indicator).bind(order_no)
                .execute(p).await?.rows_affected()
        });
        crate::failpoints::hit("henan.push.after_commit");
        if n != 1 {
            return Err(invalid(format!(
                "发放单号{order_no}没有发放申请 (no application for {order_no})"
            )));
        }
        Ok(())
    }

    /// Record that the treasury paid the agent bank, with the budget indicator linked.
    pub async fn henan_record_funded(
        &self,
        order_no: &str,
        indicator: &str,
        on: &str,
    ) -> Result<()> {
        crate::failpoints::hit("henan.funded.before_commit");
        with_write!(self, |p| {
            sqlx::query("UPDATE henan_orders SET indicator = $1, funded_on = COALESCE(funded_on, $2) WHERE order_no = $3")
                .bind(indicator).bind(on).bind(order_no)
                .execute(p).await?;
        });
        crate::failpoints::hit("henan.funded.after_commit");
        Ok(())
    }

    /// Record a release of an order's detail for pulling. Returns its round (1, 2, ...).
    ///
    /// With `detail`, the detail is materialised in the same transaction (migration
    /// `0302`): every line of the batch in flight now, in id order, as `detail.encode` writes
    /// it, in chunks of about `detail.chunk_bytes` sealed under a key of this order, round
    /// and a fresh salt; the chunks of earlier rounds are dropped (a pull serves the latest
    /// round). The lines in flight are exactly what a pull serves (第二十二条), and they do
    /// not change until a result arrives or a new dispatch, which the audit mark recorded
    /// with the detail lets a pull see ([`Store::henan_detail_state`]).
    pub async fn henan_record_release(
        &self,
        order_no: &str,
        lines: Totals,
        notified: &str,
        on: &str,
        detail: Option<&DetailSpec<'_>>,
    ) -> Result<i64> {
        let at = now();
        // Statements of bounded size (pages of lines, one chunk each): journals in memory.
        let mut tx = self.begin_bulk().await?;
        let round: i64 = with_tx!(tx, |c| {
            sqlx::query_scalar("INSERT INTO henan_releases (order_no, round, lines, amount_fen, notified, on_date, at) \
                 SELECT $1, COALESCE(MAX(round), 0) + 1, $2, $3, $4, $5, $6 FROM henan_releases WHERE order_no = $1 RETURNING round")
                .bind(order_no).bind(count_i64(&lines)).bind(lines.amount.0).bind(notified).bind(on).bind(&at)
                .fetch_one(&mut *c).await?
        });
        if let Some(d) = detail {
            self.henan_write_detail(&mut tx, order_no, round, d).await?;
        }
        crate::failpoints::hit("henan.release.before_commit");
        tx.commit().await?;
        crate::failpoints::hit("henan.release.after_commit");
        Ok(round)
    }

    async fn henan_write_detail(
        &self,
        tx: &mut Tx,
        order_no: &str,
        round: i64,
        d: &DetailSpec<'_>,
    ) -> Result<()> {
        // The mark before the lines: on PostgreSQL (read committed) a result committed after
        // it has a later audit entry, whether or not the pages below saw its lines.
        let mark: i64 = with_tx!(*tx, |c| {
            sqlx::query_scalar("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM audit_log")
                .fetch_one(&mut *c)
                .await?
        });
        with_tx!(*tx, |c| {
            sqlx::query("DELETE FROM henan_release_chunks WHERE order_no = $1 AND round < $2")
                .bind(order_no)
                .bind(round)
                .execute(&mut *c)
                .await?;
        });
        let salt = self.vault.random_salt();
        let cipher = self
            .vault
            .chunk_cipher(&detail_context(order_no, round, &salt));
        let cap = d.chunk_bytes.max(1);
        let mut chunk = Chunker {
            buf: Vec::with_capacity(cap + cap / 8),
            seq: 0,
            first: 0,
            last: 0,
            lines: 0,
        };
        let mut line = Vec::with_capacity(256);
        let (mut count, mut fen) = (0i64, 0i64);
        let mut after = 0i64;
        loop {
            let rows: Vec<PullTuple> = with_tx!(*tx, |c| {
                sqlx::query_as(OPEN_PAGE_SQL)
                    .bind(d.batch_id)
                    .bind(after)
                    .bind(DETAIL_READ)
                    .fetch_all(&mut *c)
                    .await?
            });
            let Some(last) = rows.last().map(|r| r.0) else {
                break;
            };
            for t in rows {
                let l = pull_line(&self.vault, t)?;
                line.clear();
                (d.encode)(&l, &mut line);
                if chunk.lines > 0 && chunk.buf.len() + line.len() > cap {
                    chunk.flush(tx, order_no, round, &cipher).await?;
                }
                if chunk.lines == 0 {
                    chunk.first = l.line_id;
                }
                chunk.buf.extend_from_slice(&line);
                chunk.last = l.line_id;
                chunk.lines += 1;
                count += 1;
                fen += l.amount.0;
            }
            after = last;
        }
        if chunk.lines > 0 {
            chunk.flush(tx, order_no, round, &cipher).await?;
        }
        with_tx!(*tx, |c| {
            sqlx::query("UPDATE henan_releases SET detail_lines = $1, detail_fen = $2, detail_salt = $3, detail_mark = $4 WHERE order_no = $5 AND round = $6")
                .bind(count)
                .bind(fen)
                .bind(salt.to_vec())
                .bind(mark)
                .bind(order_no)
                .bind(round)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// The releases of an order, oldest first.
    pub async fn henan_releases(&self, order_no: &str) -> Result<Vec<ReleaseRow>> {
        let rows: Vec<(i64, i64, i64, String, String)> = with_pool!(self, |p| {
            sqlx::query_as("SELECT round, lines, amount_fen, notified, on_date FROM henan_releases WHERE order_no = $1 ORDER BY round")
                .bind(order_no)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| ReleaseRow {
                round: t.0,
                lines: totals(t.1, t.2),
                notified: t.3,
                on_date: t.4,
            })
            .collect())
    }

    /// Count and amount of a batch's lines waiting for the bank (in flight).
    pub async fn henan_open_totals(&self, batch_id: i64) -> Result<Totals> {
        let (n, fen): (i64, i64) = with_pool!(self, |p| {
            sqlx::query_as("SELECT COUNT(*), CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM payment_lines WHERE batch_id = $1 AND state = 'in_flight'")
                .bind(batch_id)
                .fetch_one(p)
                .await?
        });
        Ok(totals(n, fen))
    }

    /// Up to `limit` lines of a batch waiting for the bank, with ids above `after`, in id
    /// order (keyset paging: memory holds one page whatever the order's size).
    pub async fn henan_open_page(
        &self,
        batch_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<PullLine>> {
        let rows: Vec<PullTuple> = with_pool!(self, |p| {
            sqlx::query_as(OPEN_PAGE_SQL)
                .bind(batch_id)
                .bind(after)
                .bind(limit)
                .fetch_all(p)
                .await?
        });
        rows.into_iter()
            .map(|t| pull_line(&self.vault, t))
            .collect()
    }

    /// The latest release of an order, if its detail was materialised (releases recorded
    /// before migration `0302` were not: they are served from the lines).
    pub async fn henan_detail(&self, order_no: &str) -> Result<Option<DetailRow>> {
        type T = (i64, Option<i64>, Option<i64>, Option<Vec<u8>>, Option<i64>);
        let row: Option<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT round, detail_lines, detail_fen, detail_salt, detail_mark FROM henan_releases WHERE order_no = $1 ORDER BY round DESC LIMIT 1")
                .bind(order_no)
                .fetch_optional(p)
                .await?
        });
        Ok(row.and_then(|(round, n, fen, salt, mark)| {
            Some(DetailRow {
                order_no: order_no.to_owned(),
                round,
                lines: totals(n?, fen?),
                mark: mark?,
                salt: salt?,
            })
        }))
    }

    /// Whether the lines in flight of `batch_id` are still those `detail` lists: a result
    /// applied since it was written takes lines out ([`DetailState::Reported`]), a dispatch
    /// puts new ones in ([`DetailState::Stale`]). Every change of a line's state into or out
    /// of flight writes its audit entry in the same transaction (`batch.dispatch` in
    /// [`Store::dispatch_pending`], `batch.results` in [`Store::apply_results_in`]), so the
    /// audit entries of the batch after the detail's mark tell, by index, without reading
    /// a line.
    pub async fn henan_detail_state(
        &self,
        batch_id: i64,
        detail: &DetailRow,
    ) -> Result<DetailState> {
        let subject = format!("batch:{batch_id}");
        let (dispatched, reported): (i64, i64) = with_pool!(self, |p| {
            sqlx::query_as("SELECT \
                 CAST(CASE WHEN EXISTS (SELECT 1 FROM audit_log WHERE subject = $1 AND seq > $2 AND action = 'batch.dispatch') THEN 1 ELSE 0 END AS BIGINT), \
                 CAST(CASE WHEN EXISTS (SELECT 1 FROM audit_log WHERE subject = $1 AND seq > $2 AND action = 'batch.results') THEN 1 ELSE 0 END AS BIGINT)")
                .bind(&subject)
                .bind(detail.mark)
                .fetch_one(p)
                .await?
        });
        Ok(if dispatched != 0 {
            DetailState::Stale
        } else if reported != 0 {
            DetailState::Reported
        } else {
            DetailState::Exact
        })
    }

    /// The chunk of `detail` holding its first line above `after_line`, authenticated and
    /// decrypted (`None` past the last line). A chunk that does not authenticate (altered,
    /// moved, truncated) is [`StoreError::Corrupt`], never served.
    pub async fn henan_detail_chunk(
        &self,
        detail: &DetailRow,
        after_line: i64,
    ) -> Result<Option<DetailChunk>> {
        type T = (i64, i64, i64, i64, Vec<u8>);
        let row: Option<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT seq, first_line, last_line, lines, body FROM henan_release_chunks WHERE order_no = $1 AND round = $2 AND last_line > $3 ORDER BY last_line LIMIT 1")
                .bind(&detail.order_no)
                .bind(detail.round)
                .bind(after_line)
                .fetch_optional(p)
                .await?
        });
        let Some((seq, first_line, last_line, lines, mut text)) = row else {
            return Ok(None);
        };
        let cipher = self.vault.chunk_cipher(&detail_context(
            &detail.order_no,
            detail.round,
            &detail.salt,
        ));
        let aad = detail_aad(
            &detail.order_no,
            detail.round,
            seq,
            first_line,
            last_line,
            lines,
        );
        cipher
            .open_in_place(u64::try_from(seq).unwrap_or(u64::MAX), &aad, &mut text)
            .map_err(|_| {
                tracing::error!(order = %detail.order_no, round = detail.round, seq, "a chunk of a released detail failed authentication");
                StoreError::corrupt(&format!(
                    "发放单{}第{}轮明细第{seq}块校验失败 (henan_release_chunks: chunk {seq} of round {} does not authenticate)",
                    detail.order_no, detail.round, detail.round
                ))
            })?;
        Ok(Some(DetailChunk {
            seq,
            first_line,
            last_line,
            lines,
            text,
        }))
    }

    /// Ids of a batch's lines in flight between `from` and `to` (inclusive), in order: what
    /// of a detail's chunk is still open once results arrived ([`DetailState::Reported`]).
    /// Served by the `(batch_id, state)` index with the row id (no line is read).
    pub async fn henan_in_flight_ids(&self, batch_id: i64, from: i64, to: i64) -> Result<Vec<i64>> {
        Ok(with_pool!(self, |p| {
            sqlx::query_scalar("SELECT id FROM payment_lines WHERE batch_id = $1 AND state = 'in_flight' AND id >= $2 AND id <= $3 ORDER BY id")
                .bind(batch_id)
                .bind(from)
                .bind(to)
                .fetch_all(p)
                .await?
        }))
    }

    /// Record the start of a pull. Returns its id.
    pub async fn henan_pull_start(
        &self,
        order_no: &str,
        bank: &str,
        mode: &str,
        after: i64,
    ) -> Result<i64> {
        let at = now();
        Ok(with_write!(self, |p| {
            sqlx::query_scalar("INSERT INTO henan_pulls (order_no, bank, mode, after_line, lines, complete, at) VALUES ($1, $2, $3, $4, 0, 0, $5) RETURNING id")
                .bind(order_no).bind(bank).bind(mode).bind(after).bind(&at)
                .fetch_one(p).await?
        }))
    }

    /// Record how a pull ended: the last line served, how many, and whether the whole
    /// transfer completed.
    pub async fn henan_pull_finish(
        &self,
        id: i64,
        last_line: Option<i64>,
        lines: i64,
        complete: bool,
    ) -> Result<()> {
        let at = now();
        with_write!(self, |p| {
            sqlx::query("UPDATE henan_pulls SET last_line = $1, lines = $2, complete = $3, finished_at = $4 WHERE id = $5")
                .bind(last_line).bind(lines).bind(i64::from(complete)).bind(&at).bind(id)
                .execute(p).await?;
        });
        Ok(())
    }

    /// The pulls of an order, oldest first.
    pub async fn henan_pulls(&self, order_no: &str) -> Result<Vec<PullRow>> {
        type T = (i64, String, String, i64, Option<i64>, i64, i64);
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT id, bank, mode, after_line, last_line, lines, complete FROM henan_pulls WHERE order_no = $1 ORDER BY id")
                .bind(order_no)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| PullRow {
                id: t.0,
                bank: t.1,
                mode: t.2,
                after_line: t.3,
                last_line: t.4,
                lines: t.5,
                complete: t.6 == 1,
            })
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------
// Results (第二十三条)

/// A result as the bank posted it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResultRow {
    pub line_id: i64,
    pub attempt: i64,
    pub order_no: String,
    pub bank: String,
    pub amount: Fen,
    /// `credited` or `failed`.
    pub outcome: String,
    /// Failure reason code (`wrong_account`, ...).
    pub reason: Option<String>,
    pub bank_date: String,
    pub sms_text: Option<String>,
    pub sms_at: Option<String>,
    pub sms_ok: Option<bool>,
}

/// A post of results as received, for [`Store::henan_accept_post`].
#[derive(Debug, Clone, Copy)]
pub struct AcceptPost<'a> {
    pub order_no: &'a str,
    pub bank: &'a str,
    pub rows: &'a [ResultRow],
    /// Results of the post already recorded by an earlier post (kept once, not applied).
    pub duplicates: u64,
}

/// The new results of a post to apply to their lines, for [`Store::henan_accept_post`].
#[derive(Debug, Clone, Copy)]
pub struct ApplyPost<'a> {
    pub batch_id: i64,
    pub results: &'a [ykt_kernel::ports::BankResult],
    pub actor: &'a str,
    pub paid_from: &'a ykt_kernel::ledger::Account,
    pub paid_to: &'a ykt_kernel::ledger::Account,
}

/// What the platform knows of a line when a result arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineFacts {
    pub state: LineState,
    pub attempt: i64,
    pub amount: Fen,
}

/// One post of results by a bank.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PostRow {
    pub id: i64,
    pub bank: String,
    pub results: i64,
    pub applied: i64,
    pub duplicates: i64,
    pub refused: i64,
    pub error: Option<String>,
}

type ResultTuple = (
    i64,
    i64,
    String,
    String,
    i64,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
);
const RESULT_COLS: &str = "r.line_id, r.attempt, r.order_no, r.bank, r.amount_fen, r.outcome, r.reason, r.bank_date, r.sms_text, r.sms_at, r.sms_ok";

fn result_row(t: ResultTuple) -> ResultRow {
    ResultRow {
        line_id: t.0,
        attempt: t.1,
        order_no: t.2,
        bank: t.3,
        amount: Fen(t.4),
        outcome: t.5,
        reason: t.6,
        bank_date: t.7,
        sms_text: t.8,
        sms_at: t.9,
        sms_ok: t.10.map(|v| v == 1),
    }
}

impl Store {
    /// State, attempt and amount of the lines `ids` that belong to `batch_id` (others are
    /// absent from the map).
    pub async fn henan_line_facts(
        &self,
        batch_id: i64,
        ids: &[i64],
    ) -> Result<HashMap<i64, LineFacts>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(900) {
            // By primary key, the batch checked here (see `line_status_sql`).
            let sql = crate::cycle::line_status_sql(self.backend(), chunk.len());
            let rows: Vec<(i64, i64, String, i64, i64)> = with_pool!(self, |p| {
                let mut q = sqlx::query_as(&sql);
                // Padded to the bucket's size (few distinct statements).
                for id in padded(chunk) {
                    q = q.bind(id);
                }
                q.fetch_all(p).await?
            });
            for (id, _, state, attempt, fen) in rows.into_iter().filter(|r| r.1 == batch_id) {
                let state = LineState::parse(&state)
                    .ok_or_else(|| StoreError::corrupt("payment_lines.state"))?;
                out.insert(
                    id,
                    LineFacts {
                        state,
                        attempt,
                        amount: Fen(fen),
                    },
                );
            }
        }
        Ok(out)
    }

    /// Outcomes already recorded for the lines `ids`, by (line, attempt).
    pub async fn henan_recorded_outcomes(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<(i64, i64), String>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(900) {
            let sql = format!(
                "SELECT line_id, attempt, outcome FROM henan_results WHERE line_id IN ({})",
                list_placeholders(self.backend(), in_list_bucket(chunk.len()))
            );
            let rows: Vec<(i64, i64, String)> = with_pool!(self, |p| {
                let mut q = sqlx::query_as(&sql);
                // Padded to the bucket's size (few distinct statements).
                for id in padded(chunk) {
                    q = q.bind(id);
                }
                q.fetch_all(p).await?
            });
            out.extend(rows.into_iter().map(|(l, a, o)| ((l, a), o)));
        }
        Ok(out)
    }

    /// Accept a post of results in one transaction: keep it as received, apply the new
    /// results to their lines ([`Store::apply_results_in`]: states, anomalies, the payment's
    /// ledger entry, audit) and record what applying did. A crash at any point leaves either
    /// all of it or none, so a repost after a crash applies what the first post could not
    /// (a post kept but not applied would make its repost look like a duplicate). Returns
    /// the post's id and what applying did (`None` when nothing was new).
    pub async fn henan_accept_post(
        &self,
        post: &AcceptPost<'_>,
        apply: Option<&ApplyPost<'_>>,
    ) -> Result<(i64, Option<crate::cycle::ResultReport>)> {
        let mut tx = self.begin_bulk().await?;
        let post_id = self
            .henan_record_results_in(&mut tx, post.order_no, post.bank, post.rows)
            .await?;
        crate::failpoints::hit("henan.post.before_commit");
        let report = match apply {
            Some(a) => Some(
                self.apply_results_in(
                    &mut tx,
                    a.batch_id,
                    post.order_no,
                    a.results,
                    a.actor,
                    a.paid_from,
                    a.paid_to,
                )
                .await?,
            ),
            None => None,
        };
        let (applied, duplicates) = match &report {
            Some(r) => (
                r.credited.count + r.failed.count,
                post.duplicates + r.duplicates,
            ),
            None => (0, post.duplicates),
        };
        with_tx!(tx, |c| {
            sqlx::query(
                "UPDATE henan_result_posts SET applied = $1, duplicates = $2 WHERE id = $3",
            )
            .bind(applied as i64)
            .bind(duplicates as i64)
            .bind(post_id)
            .execute(&mut *c)
            .await?;
        });
        crate::failpoints::hit("results.before_commit");
        tx.commit().await?;
        crate::failpoints::hit("results.after_commit");
        Ok((post_id, report))
    }

    /// Keep a post of results as received (a result already recorded for its line and
    /// attempt is kept once). Returns the post's id.
    async fn henan_record_results_in(
        &self,
        tx: &mut Tx,
        order_no: &str,
        bank: &str,
        rows: &[ResultRow],
    ) -> Result<i64> {
        let at = now();
        let post: i64 = with_tx!(tx, |c| {
            sqlx::query_scalar("INSERT INTO henan_result_posts (order_no, bank, results, applied, duplicates, refused, at) VALUES ($1, $2, $3, 0, 0, 0, $4) RETURNING id")
                .bind(order_no).bind(bank).bind(rows.len() as i64).bind(&at)
                .fetch_one(&mut *c).await?
        });
        // A few statements for the whole post, not one per result (each statement is a round
        // trip to the database).
        const COLS: &str = "line_id, attempt, order_no, bank, amount_fen, outcome, reason, bank_date, sms_text, sms_at, sms_ok, post_id, received_at";
        match &mut tx.inner {
            TxInner::Sqlite(t) => {
                // 13 parameters a row: 500 rows stay far under SQLite's limit of 32,766.
                for chunk in rows.chunks(500) {
                    let values =
                        vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                    let sql = format!(
                        "INSERT INTO henan_results ({COLS}) VALUES {values} ON CONFLICT (line_id, attempt) DO NOTHING"
                    );
                    let mut q = sqlx::query(&sql);
                    for r in chunk {
                        q = q
                            .bind(r.line_id)
                            .bind(r.attempt)
                            .bind(&r.order_no)
                            .bind(&r.bank)
                            .bind(r.amount.0)
                            .bind(&r.outcome)
                            .bind(r.reason.as_deref())
                            .bind(&r.bank_date)
                            .bind(r.sms_text.as_deref())
                            .bind(r.sms_at.as_deref())
                            .bind(r.sms_ok.map(i64::from))
                            .bind(post)
                            .bind(&at);
                    }
                    q.execute(&mut **t).await?;
                }
            }
            TxInner::Postgres(t) => {
                if !rows.is_empty() {
                    let col = |f: fn(&ResultRow) -> Option<&str>| -> Vec<Option<&str>> {
                        rows.iter().map(f).collect()
                    };
                    sqlx::query(&format!(
                        "INSERT INTO henan_results ({COLS}) \
                         SELECT v.*, $12, $13 FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[]) AS v \
                         ON CONFLICT (line_id, attempt) DO NOTHING"
                    ))
                    .bind(rows.iter().map(|r| r.line_id).collect::<Vec<i64>>())
                    .bind(rows.iter().map(|r| r.attempt).collect::<Vec<i64>>())
                    .bind(col(|r| Some(r.order_no.as_str())))
                    .bind(col(|r| Some(r.bank.as_str())))
                    .bind(rows.iter().map(|r| r.amount.0).collect::<Vec<i64>>())
                    .bind(col(|r| Some(r.outcome.as_str())))
                    .bind(col(|r| r.reason.as_deref()))
                    .bind(col(|r| Some(r.bank_date.as_str())))
                    .bind(col(|r| r.sms_text.as_deref()))
                    .bind(col(|r| r.sms_at.as_deref()))
                    .bind(
                        rows.iter()
                            .map(|r| r.sms_ok.map(i64::from))
                            .collect::<Vec<Option<i64>>>(),
                    )
                    .bind(post)
                    .bind(&at)
                    .execute(&mut **t)
                    .await?;
                }
            }
        }
        Ok(post)
    }

    /// Record a refused post (nothing of it was kept or applied).
    pub async fn henan_log_refused_post(
        &self,
        order_no: &str,
        bank: &str,
        results: u64,
        refused: u64,
        error: &str,
    ) -> Result<()> {
        let at = now();
        with_write!(self, |p| {
            sqlx::query("INSERT INTO henan_result_posts (order_no, bank, results, applied, duplicates, refused, error, at) VALUES ($1, $2, $3, 0, 0, $4, $5, $6)")
                .bind(order_no).bind(bank).bind(results as i64).bind(refused as i64).bind(error).bind(&at)
                .execute(p).await?;
        });
        Ok(())
    }

    /// The posts of an order, oldest first.
    pub async fn henan_posts(&self, order_no: &str) -> Result<Vec<PostRow>> {
        type T = (i64, String, i64, i64, i64, i64, Option<String>);
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT id, bank, results, applied, duplicates, refused, error FROM henan_result_posts WHERE order_no = $1 ORDER BY id")
                .bind(order_no)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| PostRow {
                id: t.0,
                bank: t.1,
                results: t.2,
                applied: t.3,
                duplicates: t.4,
                refused: t.5,
                error: t.6,
            })
            .collect())
    }

    /// Results received for lines that are still in flight at the same attempt: kept but not
    /// applied yet (e.g. the process stopped between keeping and applying a post).
    pub async fn henan_unapplied_results(&self, order_no: &str) -> Result<Vec<ResultRow>> {
        let rows: Vec<ResultTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!(
                "SELECT {RESULT_COLS} FROM henan_results r JOIN payment_lines l ON l.id = r.line_id \
                 WHERE r.order_no = $1 AND l.state = 'in_flight' AND l.attempt = r.attempt ORDER BY r.line_id"
            ))
            .bind(order_no)
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(result_row).collect())
    }

    /// Every result of an order, by line and attempt.
    pub async fn henan_results(&self, order_no: &str) -> Result<Vec<ResultRow>> {
        let rows: Vec<ResultTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!(
                "SELECT {RESULT_COLS} FROM henan_results r WHERE r.order_no = $1 ORDER BY r.line_id, r.attempt"
            ))
            .bind(order_no)
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(result_row).collect())
    }

    /// The results of an order for the lines `line_ids` (a page of the batch's lines), by
    /// line and attempt: [`Store::henan_results`] a page at a time when called with the
    /// batch's line ids in ascending pages. By line (the primary key), not by a cursor over
    /// the order: without table statistics SQLite answers `order_no = ? ORDER BY line_id`
    /// from the order's index and sorts the whole order for every page.
    pub async fn henan_results_of(
        &self,
        order_no: &str,
        line_ids: &[i64],
    ) -> Result<Vec<ResultRow>> {
        let mut out = Vec::new();
        for chunk in line_ids.chunks(crate::registers::MAX_IN_LIST) {
            let n = crate::registers::in_list_bucket(chunk.len());
            let sql = format!(
                "SELECT {RESULT_COLS} FROM henan_results r WHERE r.line_id IN ({}) ORDER BY r.line_id, r.attempt",
                crate::registers::list_placeholders(self.backend(), n)
            );
            let rows: Vec<ResultTuple> = with_pool!(self, |p| {
                let mut q = sqlx::query_as(&sql);
                for id in crate::registers::padded(chunk) {
                    q = q.bind(id);
                }
                q.fetch_all(p).await?
            });
            out.extend(
                rows.into_iter()
                    .map(result_row)
                    .filter(|r| r.order_no == order_no),
            );
        }
        out.sort_by_key(|r| (r.line_id, r.attempt));
        Ok(out)
    }

    /// Credited and failed results of an order with a bank date in `[from, to]`.
    pub async fn henan_result_totals(
        &self,
        order_no: &str,
        from: &str,
        to: &str,
    ) -> Result<(Totals, Totals)> {
        let rows: Vec<(String, i64, i64)> = with_pool!(self, |p| {
            sqlx::query_as("SELECT outcome, COUNT(*), CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM henan_results \
                 WHERE order_no = $1 AND bank_date >= $2 AND bank_date <= $3 GROUP BY outcome")
                .bind(order_no).bind(from).bind(to)
                .fetch_all(p).await?
        });
        let mut credited = Totals::default();
        let mut failed = Totals::default();
        for (o, n, fen) in rows {
            if o == "credited" {
                credited = totals(n, fen);
            } else {
                failed = totals(n, fen);
            }
        }
        Ok((credited, failed))
    }

    /// Credited results of `bank` with a bank date in `[from, to]`, per project code.
    pub async fn henan_credited_by_project(
        &self,
        bank: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, Totals)>> {
        let rows: Vec<(String, i64, i64)> = with_pool!(self, |p| {
            sqlx::query_as("SELECT l.project, COUNT(*), CAST(COALESCE(SUM(r.amount_fen), 0) AS BIGINT) FROM henan_results r JOIN payment_lines l ON l.id = r.line_id \
                 WHERE r.bank = $1 AND r.outcome = 'credited' AND r.bank_date >= $2 AND r.bank_date <= $3 GROUP BY l.project ORDER BY l.project")
                .bind(bank).bind(from).bind(to)
                .fetch_all(p).await?
        });
        Ok(rows
            .into_iter()
            .map(|(p, n, fen)| (p, totals(n, fen)))
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-overs and statements (第二十六条), line events

/// A hand-over of the bank's stamped results (交易结果) for an order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HandoverRow {
    pub order_no: String,
    pub seq: i64,
    pub bank: String,
    /// The bank's handler (经办人) who stamped it.
    pub handler: String,
    pub received_on: String,
    pub bank_credited: Totals,
    pub bank_failed: Totals,
    pub sys_credited: Totals,
    pub sys_failed: Totals,
    /// The last result post the hand-over covers.
    pub upto_post: i64,
    /// What the platform found different at receipt (empty when none).
    pub discrepancy: String,
    /// `open`, `confirmed` or `disputed`.
    pub state: String,
    pub done_on: Option<String>,
    pub done_by: Option<String>,
    pub note: Option<String>,
    /// The bank's own number of the hand-over (`handover_no`), when it sent one: a hand-over
    /// re-sent with the same number is the same hand-over (migration `0301`).
    pub handover_no: Option<i64>,
}

/// A bank statement compared with the platform.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatementRow {
    pub bank: String,
    /// `YYYY-MM` or `YYYY`.
    pub period: String,
    /// `monthly` or `annual`.
    pub kind: String,
    pub received_on: String,
    /// The comparison (JSON owned by the caller).
    pub lines: String,
    pub matches: bool,
}

/// A signed correction or a refund, with its business date.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineEventRow {
    pub batch_id: i64,
    pub line_id: i64,
    /// `correction` or `refund`.
    pub kind: String,
    pub signed_by: Option<String>,
    pub head: Option<String>,
    pub amount: Fen,
    pub on_date: String,
}

impl Store {
    /// Record a hand-over (its `seq` is assigned: the order's next). Returns the seq.
    pub async fn henan_record_handover(&self, h: &HandoverRow) -> Result<i64> {
        let at = now();
        let mut tx = self.begin().await?;
        let seq: i64 = with_tx!(tx, |c| {
            sqlx::query_scalar("INSERT INTO henan_handovers (order_no, seq, bank, handler, received_on, bank_credited, bank_credited_fen, bank_failed, bank_failed_fen, \
                 sys_credited, sys_credited_fen, sys_failed, sys_failed_fen, upto_post, discrepancy, state, at, handover_no) \
                 SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'open', $15, $16 FROM henan_handovers WHERE order_no = $1 RETURNING seq")
                .bind(&h.order_no).bind(&h.bank).bind(&h.handler).bind(&h.received_on)
                .bind(count_i64(&h.bank_credited)).bind(h.bank_credited.amount.0).bind(count_i64(&h.bank_failed)).bind(h.bank_failed.amount.0)
                .bind(count_i64(&h.sys_credited)).bind(h.sys_credited.amount.0).bind(count_i64(&h.sys_failed)).bind(h.sys_failed.amount.0)
                .bind(h.upto_post).bind(&h.discrepancy).bind(&at).bind(h.handover_no)
                .fetch_one(&mut *c).await?
        });
        self.append_audit_in(
            &mut tx,
            record(
                &format!("bank:{}", h.bank),
                "bank_operator",
                "henan.handover.receive",
                format!("henan_order:{}", h.order_no),
                serde_json::json!({"seq": seq, "handover_no": h.handover_no, "received_on": h.received_on, "discrepancy": h.discrepancy}),
                &at,
            ),
        )
        .await?;
        crate::failpoints::hit("henan.handover.before_commit");
        tx.commit().await?;
        crate::failpoints::hit("henan.handover.after_commit");
        Ok(seq)
    }

    /// What the platform recorded from an order's posts in `(after_post, upto_post]` (no upper
    /// bound when `None`): credited and failed results, and the last post covered.
    pub async fn henan_round_totals(
        &self,
        order_no: &str,
        after_post: i64,
        upto_post: Option<i64>,
    ) -> Result<(Totals, Totals, i64)> {
        let upto = match upto_post {
            Some(u) => u,
            None => {
                let last: Option<i64> = with_pool!(self, |p| {
                    sqlx::query_scalar("SELECT MAX(id) FROM henan_result_posts WHERE order_no = $1")
                        .bind(order_no)
                        .fetch_one(p)
                        .await?
                });
                last.unwrap_or(0).max(after_post)
            }
        };
        let rows: Vec<(String, i64, i64)> = with_pool!(self, |p| {
            sqlx::query_as("SELECT outcome, COUNT(*), CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM henan_results \
                 WHERE order_no = $1 AND post_id > $2 AND post_id <= $3 GROUP BY outcome")
                .bind(order_no).bind(after_post).bind(upto)
                .fetch_all(p).await?
        });
        let (mut credited, mut failed) = (Totals::default(), Totals::default());
        for (o, n, fen) in rows {
            if o == "credited" {
                credited = totals(n, fen);
            } else {
                failed = totals(n, fen);
            }
        }
        Ok((credited, failed, upto))
    }

    /// Hand-overs (of one order when given), by order and seq.
    pub async fn henan_handovers(&self, order_no: Option<&str>) -> Result<Vec<HandoverRow>> {
        const SQL: &str = "SELECT order_no, seq, bank, handler, received_on, bank_credited, bank_credited_fen, bank_failed, bank_failed_fen, \
             sys_credited, sys_credited_fen, sys_failed, sys_failed_fen, upto_post, discrepancy, state, done_on, done_by, note, handover_no FROM henan_handovers \
             WHERE ($1 IS NULL OR order_no = $1) ORDER BY order_no, seq";
        // More columns than sqlx decodes into a tuple: read them one by one.
        let rows: Vec<HandoverRow> = with_pool!(self, |p| {
            let rows = sqlx::query(SQL).bind(order_no).fetch_all(p).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                use sqlx::Row;
                let t = |c: &str, f: &str| -> std::result::Result<Totals, sqlx::Error> {
                    Ok(totals(r.try_get::<i64, _>(c)?, r.try_get::<i64, _>(f)?))
                };
                out.push(HandoverRow {
                    order_no: r.try_get("order_no")?,
                    seq: r.try_get("seq")?,
                    bank: r.try_get("bank")?,
                    handler: r.try_get("handler")?,
                    received_on: r.try_get("received_on")?,
                    bank_credited: t("bank_credited", "bank_credited_fen")?,
                    bank_failed: t("bank_failed", "bank_failed_fen")?,
                    sys_credited: t("sys_credited", "sys_credited_fen")?,
                    sys_failed: t("sys_failed", "sys_failed_fen")?,
                    upto_post: r.try_get("upto_post")?,
                    discrepancy: r.try_get("discrepancy")?,
                    state: r.try_get("state")?,
                    done_on: r.try_get("done_on")?,
                    done_by: r.try_get("done_by")?,
                    note: r.try_get("note")?,
                    handover_no: r.try_get("handover_no")?,
                });
            }
            out
        });
        Ok(rows)
    }

    /// Close an open hand-over: `confirmed` (checked, stamped, filed with finance) or
    /// `disputed` (the bank notified of an error).
    pub async fn henan_close_handover(
        &self,
        order_no: &str,
        seq: i64,
        state: &str,
        on: &str,
        by: &str,
        note: Option<&str>,
    ) -> Result<()> {
        let at = now();
        let mut tx = self.begin().await?;
        let n = with_tx!(tx, |c| {
            sqlx::query("UPDATE henan_handovers SET state = $1, done_on = $2, done_by = $3, note = $4 WHERE order_no = $5 AND seq = $6 AND state = 'open'")
                .bind(state).bind(on).bind(by).bind(note).bind(order_no).bind(seq)
                .execute(&mut *c).await?.rows_affected()
        });
        if n != 1 {
            tx.rollback().await?;
            return Err(invalid(format!(
                "发放单{order_no}没有待核对的第{seq}次交易结果 (no open hand-over {seq} for {order_no})"
            )));
        }
        self.append_audit_in(
            &mut tx,
            AuditRecord {
                from_state: Some("open".into()),
                to_state: Some(state.to_owned()),
                ..record(
                    by,
                    "dept_maker",
                    "henan.handover.check",
                    format!("henan_order:{order_no}"),
                    serde_json::json!({"seq": seq, "on": on, "note": note}),
                    &at,
                )
            },
        )
        .await?;
        crate::failpoints::hit("henan.handover.before_commit");
        tx.commit().await?;
        crate::failpoints::hit("henan.handover.after_commit");
        Ok(())
    }

    /// Record a statement comparison (a later statement for the same bank and period
    /// replaces the earlier).
    pub async fn henan_record_statement(&self, s: &StatementRow) -> Result<()> {
        let at = now();
        let mut tx = self.begin().await?;
        with_tx!(tx, |c| {
            sqlx::query("INSERT INTO henan_statements (bank, period, kind, received_on, lines, matches, at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (bank, period) DO UPDATE SET kind = excluded.kind, received_on = excluded.received_on, lines = excluded.lines, matches = excluded.matches, at = excluded.at")
                .bind(&s.bank).bind(&s.period).bind(&s.kind).bind(&s.received_on).bind(&s.lines).bind(i64::from(s.matches)).bind(&at)
                .execute(&mut *c).await?;
        });
        self.append_audit_in(
            &mut tx,
            record(
                &format!("bank:{}", s.bank),
                "bank_operator",
                "henan.statement",
                format!("henan_bank:{}", s.bank),
                serde_json::json!({"period": s.period, "kind": s.kind, "matches": s.matches, "on": s.received_on}),
                &at,
            ),
        )
        .await?;
        tx.commit().await
    }

    /// Statements, by period and bank.
    pub async fn henan_statements(&self) -> Result<Vec<StatementRow>> {
        type T = (String, String, String, String, String, i64);
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT bank, period, kind, received_on, lines, matches FROM henan_statements ORDER BY period, bank")
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| StatementRow {
                bank: t.0,
                period: t.1,
                kind: t.2,
                received_on: t.3,
                lines: t.4,
                matches: t.5 == 1,
            })
            .collect())
    }

    /// Record the business date (and signatures) of a correction or refund about to be made,
    /// before it is: a crash between the two then leaves the record without the correction or
    /// refund, which the retry completes (and reuses the record), rather than a correction or
    /// refund without its record. Returns the record's id: the one already there for the same
    /// pending correction or refund (more records of the kind for the line than corrections or
    /// refunds of it), or a new one.
    pub async fn henan_record_line_event(&self, e: &LineEventRow) -> Result<i64> {
        let recorded: i64 = with_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM henan_line_events WHERE line_id = $1 AND kind = $2",
            )
            .bind(e.line_id)
            .bind(&e.kind)
            .fetch_one(p)
            .await?
        });
        let done: i64 = if e.kind == "refund" {
            with_pool!(self, |p| {
                sqlx::query_scalar("SELECT COUNT(*) FROM refunds WHERE line_id = $1")
                    .bind(e.line_id)
                    .fetch_one(p)
                    .await?
            })
        } else {
            with_pool!(self, |p| {
                sqlx::query_scalar("SELECT COUNT(*) FROM corrections WHERE line_id = $1")
                    .bind(e.line_id)
                    .fetch_one(p)
                    .await?
            })
        };
        if recorded > done {
            let id: i64 = with_pool!(self, |p| {
                sqlx::query_scalar(
                    "SELECT MAX(id) FROM henan_line_events WHERE line_id = $1 AND kind = $2",
                )
                .bind(e.line_id)
                .bind(&e.kind)
                .fetch_one(p)
                .await?
            });
            return Ok(id);
        }
        let at = now();
        crate::failpoints::hit("henan.line_event.before_commit");
        let id: i64 = with_write!(self, |p| {
            sqlx::query_scalar("INSERT INTO henan_line_events (batch_id, line_id, kind, signed_by, head, amount_fen, on_date, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id")
                .bind(e.batch_id).bind(e.line_id).bind(&e.kind).bind(e.signed_by.as_deref()).bind(e.head.as_deref()).bind(e.amount.0).bind(&e.on_date).bind(&at)
                .fetch_one(p).await?
        });
        crate::failpoints::hit("henan.line_event.after_commit");
        Ok(id)
    }

    /// Remove the record of a correction or refund that was refused after all.
    pub async fn henan_drop_line_event(&self, id: i64) -> Result<()> {
        with_write!(self, |p| {
            sqlx::query("DELETE FROM henan_line_events WHERE id = $1")
                .bind(id)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Corrections and refunds (of one batch when given), in the order recorded.
    pub async fn henan_line_events(&self, batch_id: Option<i64>) -> Result<Vec<LineEventRow>> {
        type T = (
            i64,
            i64,
            String,
            Option<String>,
            Option<String>,
            i64,
            String,
        );
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT batch_id, line_id, kind, signed_by, head, amount_fen, on_date FROM henan_line_events WHERE ($1 IS NULL OR batch_id = $1) ORDER BY id")
                .bind(batch_id)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| LineEventRow {
                batch_id: t.0,
                line_id: t.1,
                kind: t.2,
                signed_by: t.3,
                head: t.4,
                amount: Fen(t.5),
                on_date: t.6,
            })
            .collect())
    }

    /// A batch's lines whose card accounts are needed masked (rendering): id, row, name,
    /// masked account, amount, state, attempt, failure reason.
    pub async fn henan_line_digest(&self, batch_id: i64) -> Result<Vec<LineDigest>> {
        let rows: Vec<DigestTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!(
                "SELECT {DIGEST_SELECT} FROM payment_lines WHERE batch_id = $1 ORDER BY id"
            ))
            .bind(batch_id)
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(|t| self.line_digest(t)).collect()
    }

    /// [`Store::henan_line_digest`] of some lines of a batch, in the order of `ids` (ids of
    /// other batches are left out): a page at a time, by primary key, for batches too large
    /// to read whole.
    pub async fn henan_line_digest_of(
        &self,
        batch_id: i64,
        ids: &[i64],
    ) -> Result<Vec<LineDigest>> {
        let mut found: HashMap<i64, LineDigest> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(crate::registers::MAX_IN_LIST) {
            let sql = format!(
                "SELECT {DIGEST_SELECT} FROM payment_lines WHERE id IN ({})",
                crate::registers::list_placeholders(
                    self.backend(),
                    crate::registers::in_list_bucket(chunk.len())
                )
            );
            let rows: Vec<DigestTuple> = with_pool!(self, |p| {
                let mut q = sqlx::query_as(&sql);
                for id in crate::registers::padded(chunk) {
                    q = q.bind(id);
                }
                q.fetch_all(p).await?
            });
            for t in rows {
                if t.9 == batch_id {
                    let d = self.line_digest(t)?;
                    found.insert(d.line_id, d);
                }
            }
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    fn line_digest(&self, t: DigestTuple) -> Result<LineDigest> {
        let idx: BlindIndex =
            t.2.as_slice()
                .try_into()
                .map_err(|_| StoreError::corrupt("payment_lines.person_idx"))?;
        let account = open_str(&self.vault, "payment_lines.account", &idx, &t.4)?;
        Ok(LineDigest {
            line_id: t.0,
            row_no: t.1,
            name: t.3,
            account_masked: ykt_kernel::mask::mask_middle(&account, 4, 4),
            amount: Fen(t.5),
            state: LineState::parse(&t.6)
                .ok_or_else(|| StoreError::corrupt("payment_lines.state"))?,
            attempt: t.7,
            fail_reason: t.8,
        })
    }
}

/// A line for display: the account already masked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineDigest {
    pub line_id: i64,
    pub row_no: i64,
    pub name: String,
    pub account_masked: String,
    pub amount: Fen,
    pub state: LineState,
    pub attempt: i64,
    pub fail_reason: Option<String>,
}

/// The columns of a [`LineDigest`] (with the line's batch, to check lines read by id), and
/// their row type.
const DIGEST_SELECT: &str =
    "id, row_no, person_idx, name, account_enc, amount_fen, state, attempt, fail_reason, batch_id";
type DigestTuple = (
    i64,
    i64,
    Vec<u8>,
    String,
    Vec<u8>,
    i64,
    String,
    i64,
    Option<String>,
    i64,
);
