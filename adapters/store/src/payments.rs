//! Rosters, batches, payment lines and the ledger.
//!
//! A roster import runs in ONE write transaction: the roster row, every accepted line (into
//! a batch per county, created as lines arrive), every problem, the control totals and the
//! audit entries commit together or not at all ("a file with errors is never half-imported",
//! DOMAIN.md §3). The same file for the same province, project and period is imported at most
//! once. Lines arrive chunk by chunk from `ykt_kernel::intake::IntakeRun`, so memory holds one
//! chunk whatever the roster's size.
//!
//! Batch steps use optimistic locking (`version`): two reviewers approving at once produce
//! one transition and one `Conflict`.

use crate::db::{Backend, Store, Tx, TxInner, with_pool, with_tx, with_write};
use crate::error::{Result, StoreError};
use crate::imports::{Val, bind_sqlite_rows, copy_rows};
use crate::registers::{aad, open_str, rows_by_person, values_placeholders};
use crate::vault::{BlindIndex, IndexKind, Vault};
use std::collections::{BTreeMap, HashMap};
use ykt_kernel::audit::AuditRecord;
use ykt_kernel::batch::{BatchState, LineState, Tally, Totals};
use ykt_kernel::card::{CardRecord, DeathRecord};
use ykt_kernel::catalog::Project;
use ykt_kernel::intake::{LineOutcome, ProxyKind};
use ykt_kernel::ledger::{Account, AccountKind, Entry};
use ykt_kernel::mask::MaskPolicy;
use ykt_kernel::ports::{CardRegistry, PortError, ReferenceData};
use ykt_kernel::workflow::Transition;
use ykt_kernel::{BankAccount, Fen, Period, RegionCode, ResidentId, User};

/// What a roster import is for.
#[derive(Debug, Clone)]
pub struct RosterMeta {
    pub province: String,
    /// Short province prefix for order numbers, e.g. `HLJ`.
    pub order_prefix: String,
    pub project: Project,
    /// The batch's current period.
    pub period: Period,
    pub file_name: String,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
    /// Login of the importing user (the batches' maker).
    pub actor: String,
    pub actor_role: String,
    /// The importing user's region.
    pub scope: RegionCode,
    /// The state new batches start in (the province workflow's `initial`).
    pub initial_state: BatchState,
}

/// A batch as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BatchRow {
    pub id: i64,
    pub province: String,
    pub project: String,
    pub project_name: String,
    pub region: String,
    pub period: String,
    pub order_no: String,
    pub state: BatchState,
    pub maker: String,
    pub roster_id: Option<i64>,
    pub funding: String,
    pub control: Totals,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A workflow step taken on a batch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepRow {
    pub seq: i64,
    pub step: String,
    pub actor: String,
    pub role: String,
    pub from_state: String,
    pub to_state: String,
    pub reason: Option<String>,
    pub at: String,
}

/// A payment line, decrypted (for internal use: display masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRow {
    pub id: i64,
    pub batch_id: i64,
    pub row_no: i64,
    pub resident_id: ResidentId,
    pub name: String,
    pub account: BankAccount,
    pub bank: String,
    pub region: String,
    pub period: String,
    pub amount: Fen,
    pub state: LineState,
    pub attempt: i64,
    pub fail_reason: Option<String>,
    pub proxy_kind: Option<String>,
    pub proxy_name: Option<String>,
}

/// A roster as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RosterRow {
    pub id: i64,
    pub province: String,
    pub project: String,
    pub period: String,
    pub file_name: String,
    pub actor: String,
    pub lines: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub accepted_amount: Fen,
    pub at: String,
}

/// What starting a roster import found.
pub enum RosterStart {
    /// A new import; feed it with [`RosterImport::add`] and [`RosterImport::finish`].
    Started(RosterImport),
    /// The same file was imported before; nothing changes.
    AlreadyImported { roster_id: i64, at: String },
}

struct BatchAcc {
    id: i64,
    totals: Totals,
}

/// A roster import in progress (holds the write transaction).
pub struct RosterImport {
    tx: Tx,
    /// Held until the import ends (after `tx`: dropped second).
    _same_file: tokio::sync::OwnedMutexGuard<()>,
    vault: Vault,
    roster_id: i64,
    at: String,
    meta: RosterMeta,
    batches: BTreeMap<String, BatchAcc>,
    mask: MaskPolicy,
    issues: u64,
}

/// The result of a finished roster import.
#[derive(Debug, Clone)]
pub struct RosterResult {
    pub roster_id: i64,
    pub batches: Vec<BatchRow>,
}

/// The columns [`Store::line_row`] decodes, in its tuple's order.
const LINE_SELECT: &str = "id, batch_id, row_no, person_idx, id_enc, name, account_enc, bank, region, period, amount_fen, state, attempt, fail_reason, proxy_kind, proxy_name";
type LineTuple = (
    i64,
    i64,
    i64,
    Vec<u8>,
    Vec<u8>,
    String,
    Vec<u8>,
    String,
    String,
    String,
    i64,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
);

const LINE_COLS: &[&str] = &[
    "batch_id",
    "row_no",
    "person_idx",
    "id_enc",
    "name",
    "phone_enc",
    "account_enc",
    "bank",
    "region",
    "project",
    "period",
    "dup_scope",
    "amount_fen",
    "state",
    "attempt",
    "proxy_kind",
    "proxy_name",
    "warnings",
];
const ISSUE_COLS: &[&str] = &[
    "roster_id",
    "row_no",
    "column_name",
    "code",
    "severity",
    "message",
    "name_masked",
    "id_masked",
];

/// Rows per multi-row INSERT on SQLite: a chunk is cut into statements of these sizes
/// (largest first), so a handful of distinct statements is prepared and cached whatever the
/// chunk sizes; 512 rows of 18 columns stay well under SQLite's 32 766 parameters.
const SQLITE_INSERT_ROWS: [usize; 5] = [512, 128, 32, 8, 1];

/// Rows per multi-row INSERT on PostgreSQL (under its 65 535 parameters).
const PG_INSERT_PARAMS: usize = 30_000;

/// `INSERT INTO table (cols) VALUES (...), (...)` with every row's values bound, in
/// statements under both backends' parameter limits. On SQLite the parameters are anonymous
/// (`?`): binding thousands of `$N` is quadratic there (see `registers::placeholders`).
pub(crate) async fn insert_rows(
    tx: &mut Tx,
    table: &str,
    cols: &[&str],
    rows: &[Vec<Val>],
) -> Result<()> {
    let head = format!("INSERT INTO {table} ({}) VALUES ", cols.join(", "));
    let mut rest = rows;
    while !rest.is_empty() {
        let n = match tx.backend() {
            Backend::Sqlite => SQLITE_INSERT_ROWS
                .into_iter()
                .find(|&n| n <= rest.len())
                .unwrap_or(1),
            Backend::Postgres => (PG_INSERT_PARAMS / cols.len()).clamp(1, rest.len()),
        };
        let (chunk, tail) = rest.split_at(n);
        let sql = format!(
            "{head}{}",
            values_placeholders(tx.backend(), chunk.len(), cols.len())
        );
        match &mut tx.inner {
            TxInner::Sqlite(t) => {
                bind_sqlite_rows(sqlx::query(&sql), chunk)
                    .execute(&mut **t)
                    .await?;
            }
            TxInner::Postgres(t) => {
                let mut q = sqlx::query(&sql);
                for row in chunk {
                    for v in row {
                        q = match v {
                            Val::Int(i) => q.bind(*i),
                            Val::Text(s) => q.bind(s.as_str()),
                            Val::Blob(b) => q.bind(b.as_slice()),
                            Val::Null => q.bind(None::<i64>),
                        };
                    }
                }
                q.execute(&mut **t).await?;
            }
        }
        rest = tail;
    }
    Ok(())
}

/// Bulk rows of a roster import: multi-row INSERTs on SQLite, `COPY` on PostgreSQL.
async fn bulk_rows(tx: &mut Tx, table: &str, cols: &[&str], rows: &[Vec<Val>]) -> Result<()> {
    match &mut tx.inner {
        TxInner::Sqlite(_) => insert_rows(tx, table, cols, rows).await,
        TxInner::Postgres(t) => copy_rows(t, table, cols, rows).await,
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

type BatchTuple = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    String,
    i64,
    i64,
    i64,
    String,
    String,
);

const BATCH_SELECT: &str = "SELECT id, province, project, project_name, region, period, order_no, state, maker, roster_id, funding, \
     control_count, control_fen, version, created_at, updated_at FROM batches";

fn batch_row(t: BatchTuple) -> Result<BatchRow> {
    let state = BatchState::parse(&t.7).ok_or_else(|| StoreError::corrupt("batches.state"))?;
    Ok(BatchRow {
        id: t.0,
        province: t.1,
        project: t.2,
        project_name: t.3,
        region: t.4,
        period: t.5,
        order_no: t.6,
        state,
        maker: t.8,
        roster_id: t.9,
        funding: t.10,
        control: Totals {
            count: u64::try_from(t.11).unwrap_or(0),
            amount: Fen(t.12),
        },
        version: t.13,
        created_at: t.14,
        updated_at: t.15,
    })
}

impl Store {
    /// Start importing a roster; `AlreadyImported` when the same file was imported before.
    pub async fn begin_roster(&self, meta: RosterMeta) -> Result<RosterStart> {
        let same_file = self
            .file_gate(format!(
                "roster|{}|{}|{}|{}",
                meta.province, meta.project.code, meta.period, meta.sha256
            ))
            .await;
        let mut tx = self.begin_bulk().await?;
        let existing: Option<(i64, String)> = with_tx!(tx, |c| {
            sqlx::query_as("SELECT id, at FROM rosters WHERE province = $1 AND project = $2 AND period = $3 AND sha256 = $4")
                .bind(&meta.province)
                .bind(&meta.project.code)
                .bind(meta.period.to_string())
                .bind(&meta.sha256)
                .fetch_optional(&mut *c)
                .await?
        });
        if let Some((roster_id, at)) = existing {
            tx.rollback().await?;
            return Ok(RosterStart::AlreadyImported { roster_id, at });
        }
        let at = now();
        let inserted: Result<i64> = async {
            Ok(with_tx!(tx, |c| {
                sqlx::query_scalar(
                    "INSERT INTO rosters (province, project, period, file_name, sha256, actor, scope, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(&meta.province)
                .bind(&meta.project.code)
                .bind(meta.period.to_string())
                .bind(&meta.file_name)
                .bind(&meta.sha256)
                .bind(&meta.actor)
                .bind(meta.scope.full())
                .bind(&at)
                .fetch_one(&mut *c)
                .await?
            }))
        }
        .await;
        let roster_id = match inserted {
            Ok(id) => id,
            Err(e) if e.is_conflict() => {
                // The same file imported at the same moment by another request, committed
                // while this insert waited for it (PostgreSQL holds a conflicting insert until
                // the first transaction ends): that import is this one's answer.
                tx.rollback().await?;
                let existing: Option<(i64, String)> = with_pool!(self, |p| {
                    sqlx::query_as("SELECT id, at FROM rosters WHERE province = $1 AND project = $2 AND period = $3 AND sha256 = $4")
                        .bind(&meta.province)
                        .bind(&meta.project.code)
                        .bind(meta.period.to_string())
                        .bind(&meta.sha256)
                        .fetch_optional(p)
                        .await?
                });
                return match existing {
                    Some((roster_id, at)) => Ok(RosterStart::AlreadyImported { roster_id, at }),
                    None => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        Ok(RosterStart::Started(RosterImport {
            tx,
            _same_file: same_file,
            vault: self.vault.clone(),
            roster_id,
            at,
            meta,
            batches: BTreeMap::new(),
            mask: MaskPolicy::default(),
            issues: 0,
        }))
    }

    /// A roster by id.
    pub async fn roster(&self, id: i64) -> Result<Option<RosterRow>> {
        let t: Option<(
            i64,
            String,
            String,
            String,
            String,
            String,
            i64,
            i64,
            i64,
            i64,
            String,
        )> = with_pool!(self, |p| {
            sqlx::query_as("SELECT id, province, project, period, file_name, actor, line_count, accepted, rejected, accepted_fen, at FROM rosters WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?
        });
        Ok(t.map(|t| RosterRow {
            id: t.0,
            province: t.1,
            project: t.2,
            period: t.3,
            file_name: t.4,
            actor: t.5,
            lines: t.6,
            accepted: t.7,
            rejected: t.8,
            accepted_amount: Fen(t.9),
            at: t.10,
        }))
    }

    /// The problems of a roster in row order: `(row, column, code, severity, message, name_masked, id_masked)`.
    pub async fn roster_issues(
        &self,
        roster_id: i64,
    ) -> Result<Vec<(i64, Option<String>, String, String, String, String, String)>> {
        Ok(with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT row_no, column_name, code, severity, message, name_masked, id_masked FROM roster_issues WHERE roster_id = $1 ORDER BY row_no, code",
            )
            .bind(roster_id)
            .fetch_all(p)
            .await?
        }))
    }

    /// Batches, newest first, optionally of one province and inside one region.
    pub async fn batches(
        &self,
        province: Option<&str>,
        within: Option<&RegionCode>,
    ) -> Result<Vec<BatchRow>> {
        let like = within
            .map(|r| format!("{}%", r.prefix()))
            .unwrap_or_else(|| "%".into());
        let rows: Vec<BatchTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!("{BATCH_SELECT} WHERE ($1 IS NULL OR province = $1) AND region LIKE $2 ORDER BY id DESC"))
                .bind(province)
                .bind(&like)
                .fetch_all(p)
                .await?
        });
        rows.into_iter().map(batch_row).collect()
    }

    /// One batch.
    pub async fn batch(&self, id: i64) -> Result<Option<BatchRow>> {
        let t: Option<BatchTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!("{BATCH_SELECT} WHERE id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await?
        });
        t.map(batch_row).transpose()
    }

    /// The steps taken on a batch, oldest first.
    pub async fn batch_steps(&self, id: i64) -> Result<Vec<StepRow>> {
        let rows: Vec<(
            i64,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            String,
        )> = with_pool!(self, |p| {
            sqlx::query_as("SELECT seq, step, actor, role, from_state, to_state, reason, at FROM batch_steps WHERE batch_id = $1 ORDER BY seq")
                .bind(id)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| StepRow {
                seq: t.0,
                step: t.1,
                actor: t.2,
                role: t.3,
                from_state: t.4,
                to_state: t.5,
                reason: t.6,
                at: t.7,
            })
            .collect())
    }

    /// Lines of a batch by state.
    pub async fn tally(&self, batch_id: i64) -> Result<Tally> {
        let rows: Vec<(String, i64, i64)> = with_pool!(self, |p| {
            sqlx::query_as("SELECT state, COUNT(*), CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM payment_lines WHERE batch_id = $1 GROUP BY state")
                .bind(batch_id)
                .fetch_all(p)
                .await?
        });
        let mut t = Tally::default();
        for (state, n, fen) in rows {
            let s = LineState::parse(&state)
                .ok_or_else(|| StoreError::corrupt("payment_lines.state"))?;
            *t.slot(s) = Totals {
                count: u64::try_from(n).unwrap_or(0),
                amount: Fen(fen),
            };
        }
        Ok(t)
    }

    /// Lines of a batch in row order, decrypted.
    pub async fn lines(&self, batch_id: i64, offset: i64, limit: i64) -> Result<Vec<LineRow>> {
        let rows: Vec<LineTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!(
                "SELECT {LINE_SELECT} FROM payment_lines WHERE batch_id = $1 ORDER BY row_no, id LIMIT $2 OFFSET $3"
            ))
            .bind(batch_id)
            .bind(limit)
            .bind(offset)
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(|t| self.line_row(t)).collect()
    }

    /// The ids of a batch's lines in [`Store::lines`]' order (row, then id): eight bytes a
    /// line, to walk a large batch in pages with [`Store::lines_by_id`] instead of reading
    /// and decrypting every line at once (or paging with `OFFSET`, which re-reads the skipped
    /// rows for every page).
    pub async fn line_ids(&self, batch_id: i64) -> Result<Vec<i64>> {
        let ids: Vec<(i64,)> = with_pool!(self, |p| {
            sqlx::query_as("SELECT id FROM payment_lines WHERE batch_id = $1 ORDER BY row_no, id")
                .bind(batch_id)
                .fetch_all(p)
                .await?
        });
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }

    /// The (id, region) of a batch's lines in [`Store::lines`]' order, nothing decrypted:
    /// to group a large batch's lines by village before reading them a page at a time.
    pub async fn line_regions(&self, batch_id: i64) -> Result<Vec<(i64, String)>> {
        Ok(with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT id, region FROM payment_lines WHERE batch_id = $1 ORDER BY row_no, id",
            )
            .bind(batch_id)
            .fetch_all(p)
            .await?
        }))
    }

    /// A batch's lines counted and summed per region (nothing decrypted, nothing per line
    /// returned), in region order.
    pub async fn region_totals(&self, batch_id: i64) -> Result<Vec<(String, Totals)>> {
        let rows: Vec<(String, i64, i64)> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT region, COUNT(*), CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM payment_lines WHERE batch_id = $1 GROUP BY region ORDER BY region",
            )
            .bind(batch_id)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(r, n, fen)| {
                (
                    r,
                    Totals {
                        count: u64::try_from(n).unwrap_or(0),
                        amount: Fen(fen),
                    },
                )
            })
            .collect())
    }

    /// The lines of `batch_id` with these ids, in the order of `ids` (ids of other batches
    /// or of no line are left out). Read by primary key, [`MAX_IN_LIST`] at a time.
    ///
    /// [`MAX_IN_LIST`]: crate::registers::MAX_IN_LIST
    pub async fn lines_by_id(&self, batch_id: i64, ids: &[i64]) -> Result<Vec<LineRow>> {
        let mut found: HashMap<i64, LineRow> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(crate::registers::MAX_IN_LIST) {
            let sql = format!(
                "SELECT {LINE_SELECT} FROM payment_lines WHERE id IN ({})",
                crate::registers::list_placeholders(
                    self.backend(),
                    crate::registers::in_list_bucket(chunk.len())
                )
            );
            let rows: Vec<LineTuple> = with_pool!(self, |p| {
                let mut q = sqlx::query_as(&sql);
                for id in crate::registers::padded(chunk) {
                    q = q.bind(id);
                }
                q.fetch_all(p).await?
            });
            for t in rows {
                // By primary key (the batch index would read the whole batch per chunk, see
                // `line_status_sql`); the batch is checked here.
                if t.1 == batch_id {
                    let row = self.line_row(t)?;
                    found.insert(row.id, row);
                }
            }
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// The lines of a batch in one state, in row order, decrypted (by the `(batch_id, state)`
    /// index: the failed lines of a large batch without reading the others).
    pub async fn lines_in_state(&self, batch_id: i64, state: LineState) -> Result<Vec<LineRow>> {
        let rows: Vec<LineTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!(
                "SELECT {LINE_SELECT} FROM payment_lines WHERE batch_id = $1 AND state = $2 ORDER BY row_no, id"
            ))
            .bind(batch_id)
            .bind(state.as_str())
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(|t| self.line_row(t)).collect()
    }

    /// The (id, attempt) of a batch's lines in one state, without decrypting anything (what a
    /// collection needs to know which lines are in flight in a million-line batch).
    pub async fn line_attempts_in_state(
        &self,
        batch_id: i64,
        state: LineState,
    ) -> Result<Vec<(i64, i64)>> {
        Ok(with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT id, attempt FROM payment_lines WHERE batch_id = $1 AND state = $2 ORDER BY row_no, id",
            )
            .bind(batch_id)
            .bind(state.as_str())
            .fetch_all(p)
            .await?
        }))
    }

    /// One line of a batch (`None` when the batch has no such line), without reading the
    /// others: a refund or correction of one line in a million-line batch reads one row.
    pub async fn line(&self, batch_id: i64, line_id: i64) -> Result<Option<LineRow>> {
        let row: Option<LineTuple> = with_pool!(self, |p| {
            sqlx::query_as(&format!(
                "SELECT {LINE_SELECT} FROM payment_lines WHERE batch_id = $1 AND id = $2"
            ))
            .bind(batch_id)
            .bind(line_id)
            .fetch_optional(p)
            .await?
        });
        row.map(|t| self.line_row(t)).transpose()
    }

    fn line_row(&self, t: LineTuple) -> Result<LineRow> {
        let idx: BlindIndex =
            t.3.as_slice()
                .try_into()
                .map_err(|_| StoreError::corrupt("payment_lines.person_idx"))?;
        let id = open_str(&self.vault, "payment_lines.id", &idx, &t.4)?;
        let account = open_str(&self.vault, "payment_lines.account", &idx, &t.6)?;
        Ok(LineRow {
            id: t.0,
            batch_id: t.1,
            row_no: t.2,
            resident_id: ResidentId::from_trusted(&id)
                .map_err(|_| StoreError::corrupt("payment_lines.id_enc"))?,
            name: t.5,
            account: BankAccount::parse(&account)
                .map_err(|_| StoreError::corrupt("payment_lines.account_enc"))?,
            bank: t.7,
            region: t.8,
            period: t.9,
            amount: Fen(t.10),
            state: LineState::parse(&t.11)
                .ok_or_else(|| StoreError::corrupt("payment_lines.state"))?,
            attempt: t.12,
            fail_reason: t.13,
            proxy_kind: t.14,
            proxy_name: t.15,
        })
    }

    /// Take a workflow step: the state changes only if the batch is still at the version and
    /// state the caller authorised against; the step and its audit entry commit with it, and
    /// so does the treasury's new reference for the batch when the step's outside call
    /// returned one (a reference recorded apart from its step would, after a crash in
    /// between, make the retried step address the outside system by the wrong number).
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_step(
        &self,
        batch: &BatchRow,
        t: &Transition,
        actor: &User,
        reason: Option<&str>,
        detail: serde_json::Value,
        entries: &[Entry],
        treasury_ref: Option<&str>,
    ) -> Result<BatchRow> {
        let at = now();
        let mut tx = self.begin().await?;
        let changed = with_tx!(tx, |c| {
            sqlx::query("UPDATE batches SET state = $1, version = version + 1, updated_at = $2 WHERE id = $3 AND version = $4 AND state = $5")
                .bind(t.to.as_str())
                .bind(&at)
                .bind(batch.id)
                .bind(batch.version)
                .bind(t.from.as_str())
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        if changed != 1 {
            tx.rollback().await?;
            return Err(StoreError::Concurrent {
                what: format!(
                    "批次{}已被他人处理，请刷新后重试 (batch {} changed concurrently)",
                    batch.id, batch.id
                ),
            });
        }
        if t.step.effect == ykt_kernel::workflow::Effect::Cancel {
            // 作废: every line of a batch that was never sent leaves `pending` for `cancelled`
            // with the batch, in the same transaction. A line in any other state means
            // something was sent or paid: refuse, change nothing.
            let (cancelled, others): (u64, i64) = with_tx!(tx, |c| {
                let n = sqlx::query(
                    "UPDATE payment_lines SET state = 'cancelled' WHERE batch_id = $1 AND state = 'pending' AND attempt = 0",
                )
                .bind(batch.id)
                .execute(&mut *c)
                .await?
                .rows_affected();
                let others: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM payment_lines WHERE batch_id = $1 AND state <> 'cancelled'",
                )
                .bind(batch.id)
                .fetch_one(&mut *c)
                .await?;
                (n, others)
            });
            if others != 0 || cancelled != batch.control.count {
                tx.rollback().await?;
                return Err(StoreError::Invalid {
                    reason: format!(
                        "批次{}已有明细发送或发放（{others}笔），不能作废 (batch {} has lines that were sent; it cannot be cancelled)",
                        batch.id, batch.id
                    ),
                });
            }
        }
        if let Some(r) = treasury_ref {
            with_tx!(tx, |c| {
                sqlx::query("UPDATE batches SET treasury_ref = $1 WHERE id = $2")
                    .bind(r)
                    .bind(batch.id)
                    .execute(&mut *c)
                    .await?;
            });
        }
        with_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO batch_steps (batch_id, seq, step, actor, role, from_state, to_state, reason, at) \
                 SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7, $8 FROM batch_steps WHERE batch_id = $1",
            )
            .bind(batch.id)
            .bind(t.step.code)
            .bind(&actor.login)
            .bind(t.role.as_str())
            .bind(t.from.as_str())
            .bind(t.to.as_str())
            .bind(reason)
            .bind(&at)
            .execute(&mut *c)
            .await?;
        });
        let mut detail = detail;
        if let (Some(r), Some(obj)) = (reason, detail.as_object_mut()) {
            obj.insert("reason".into(), serde_json::Value::String(r.to_owned()));
        }
        for e in entries {
            self.post_entry_in(&mut tx, e).await?;
        }
        self.append_audit_in(&mut tx, t.audit(batch.id, &actor.login, &at, detail))
            .await?;
        crate::failpoints::hit("step.before_commit");
        tx.commit().await?;
        crate::failpoints::hit("step.after_commit");
        self.batch(batch.id)
            .await?
            .ok_or_else(|| StoreError::corrupt("batches"))
    }

    /// Post a balanced ledger entry inside `tx`.
    pub async fn post_entry_in(&self, tx: &mut Tx, e: &Entry) -> Result<i64> {
        let at = now();
        let id: i64 = with_tx!(tx, |c| {
            sqlx::query_scalar("INSERT INTO ledger_entries (batch_id, kind, memo, subject, at) VALUES ($1, $2, $3, $4, $5) RETURNING id")
                .bind(e.batch)
                .bind(e.kind.as_str())
                .bind(&e.memo)
                .bind(e.subject.as_deref())
                .bind(&at)
                .fetch_one(&mut *c)
                .await?
        });
        let rows: Vec<Vec<Val>> = e
            .postings()
            .iter()
            .map(|p| {
                vec![
                    Val::Int(id),
                    Val::Text(p.account.kind.as_str().into()),
                    Val::Text(p.account.owner.clone()),
                    Val::Int(p.amount.0),
                ]
            })
            .collect();
        insert_rows(
            tx,
            "ledger_postings",
            &["entry_id", "account_kind", "owner", "amount_fen"],
            &rows,
        )
        .await?;
        Ok(id)
    }

    /// Balance of every account.
    pub async fn ledger_balances(&self) -> Result<Vec<(Account, Fen)>> {
        let rows: Vec<(String, String, i64)> = with_pool!(self, |p| {
            sqlx::query_as("SELECT account_kind, owner, CAST(SUM(amount_fen) AS BIGINT) FROM ledger_postings GROUP BY account_kind, owner ORDER BY account_kind, owner")
                .fetch_all(p)
                .await?
        });
        rows.into_iter()
            .map(|(k, o, v)| {
                Ok((
                    Account::new(
                        AccountKind::parse(&k)
                            .ok_or_else(|| StoreError::corrupt("ledger_postings.account_kind"))?,
                        o,
                    ),
                    Fen(v),
                ))
            })
            .collect()
    }

    /// The sum of all postings (always zero) and the number of entries that do not balance
    /// on their own (always none).
    pub async fn ledger_check(&self) -> Result<(Fen, i64)> {
        let (sum, bad): (i64, i64) = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT CAST(COALESCE((SELECT SUM(amount_fen) FROM ledger_postings), 0) AS BIGINT), \
                 (SELECT COUNT(*) FROM (SELECT entry_id FROM ledger_postings GROUP BY entry_id HAVING SUM(amount_fen) <> 0) x)",
            )
            .fetch_one(p)
            .await?
        });
        Ok((Fen(sum), bad))
    }

    /// Record a custody or receipt agreement for a person.
    pub async fn record_agreement(
        &self,
        person: &ResidentId,
        kind: ProxyKind,
        proxy_name: &str,
        filed_with: &str,
        signed_on: &str,
    ) -> Result<()> {
        let idx = self
            .vault
            .blind_index(IndexKind::ResidentId, person.as_str());
        let kind = match kind {
            ProxyKind::Custody => "custody",
            ProxyKind::Receipt => "receipt",
        };
        with_write!(self, |p| {
            sqlx::query(
                "INSERT INTO proxy_agreements (person_idx, kind, proxy_name, filed_with, signed_on) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (person_idx, kind) DO UPDATE SET proxy_name = excluded.proxy_name, filed_with = excluded.filed_with, signed_on = excluded.signed_on",
            )
            .bind(idx.as_slice())
            .bind(kind)
            .bind(proxy_name)
            .bind(filed_with)
            .bind(signed_on)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// `(person_idx, period)` pairs paid or in flight for any of `projects`, among `persons`.
    async fn paid_pairs(
        &self,
        projects: &[&str],
        persons: &[BlindIndex],
    ) -> Result<HashMap<(BlindIndex, String), String>> {
        let mut out = HashMap::new();
        // The project is the first parameter, the keys follow: `$1` then `= ANY($2)` on
        // PostgreSQL, anonymous `?` on SQLite (see `registers::rows_by_person`).
        let head = match self.backend() {
            Backend::Sqlite => {
                "SELECT person_idx, period, project FROM payment_lines WHERE project = ? AND state NOT IN ('refunded', 'cancelled') AND person_idx"
            }
            Backend::Postgres => {
                "SELECT person_idx, period, project FROM payment_lines WHERE project = $1 AND state NOT IN ('refunded', 'cancelled') AND person_idx"
            }
        };
        for project in projects {
            let rows: Vec<(Vec<u8>, String, String)> =
                rows_by_person(self, head, Some(project), persons).await?;
            for (idx, period, project) in rows {
                if let Ok(idx) = BlindIndex::try_from(idx.as_slice()) {
                    out.insert((idx, period), project);
                }
            }
        }
        Ok(out)
    }
}

impl RosterImport {
    pub fn roster_id(&self) -> i64 {
        self.roster_id
    }

    async fn batch_for(&mut self, county: &str) -> Result<i64> {
        if let Some(b) = self.batches.get(county) {
            return Ok(b.id);
        }
        // 发放单号: province prefix, period, county (6 digits), roster and batch sequence,
        // e.g. HLJ202305230102-000001-01.
        let county6 = county.get(..6).unwrap_or(county);
        let order_no = format!(
            "{}{}{}-{:06}-{:02}",
            self.meta.order_prefix,
            self.meta.period.to_string().replace('-', ""),
            county6,
            self.roster_id,
            self.batches.len() + 1
        );
        let m = &self.meta;
        let id: i64 = with_tx!(self.tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO batches (province, project, project_name, region, period, order_no, state, maker, roster_id, funding, control_count, control_fen, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, 0, $11, $11) RETURNING id",
            )
            .bind(&m.province)
            .bind(&m.project.code)
            .bind(&m.project.name)
            .bind(county)
            .bind(m.period.to_string())
            .bind(&order_no)
            .bind(m.initial_state.as_str())
            .bind(&m.actor)
            .bind(self.roster_id)
            .bind(match m.project.funding {
                ykt_kernel::catalog::FundingChannel::Treasury => "treasury",
                ykt_kernel::catalog::FundingChannel::GrainRiskFund => "grain_risk_fund",
            })
            .bind(&self.at)
            .fetch_one(&mut *c)
            .await?
        });
        self.batches.insert(
            county.to_owned(),
            BatchAcc {
                id,
                totals: Totals::default(),
            },
        );
        Ok(id)
    }

    /// Store a chunk of outcomes: accepted lines into their county's batch, problems into
    /// the roster's issue list.
    pub async fn add(&mut self, outcomes: &[LineOutcome]) -> Result<()> {
        let mut lines = Vec::new();
        let mut issues = Vec::new();
        let several = !self.meta.project.frequency.once_per_period();
        for o in outcomes {
            match o {
                LineOutcome::Accepted(a) => {
                    let (Some(account), Some(bank)) = (&a.account, &a.bank) else {
                        return Err(StoreError::Invalid {
                            reason: format!(
                                "第{}行未比对社保卡，不能入批 (row {} was not matched against the card registry)",
                                a.row, a.row
                            ),
                        });
                    };
                    let county = a.region.county().unwrap_or_else(|| a.region.clone()).full();
                    let batch_id = self.batch_for(&county).await?;
                    if let Some(b) = self.batches.get_mut(&county) {
                        b.totals.add(a.amount.to_fen());
                    }
                    let idx = self.vault.blind_index(IndexKind::ResidentId, a.id.as_str());
                    lines.push(vec![
                        Val::Int(batch_id),
                        Val::Int(i64::from(a.row)),
                        Val::Blob(idx.to_vec()),
                        Val::Blob(
                            self.vault
                                .seal(&aad("payment_lines.id", &idx), a.id.as_str().as_bytes()),
                        ),
                        Val::Text(a.name.clone()),
                        Val::opt_blob(a.phone.as_ref().map(|p| {
                            self.vault
                                .seal(&aad("payment_lines.phone", &idx), p.as_str().as_bytes())
                        })),
                        Val::Blob(self.vault.seal(
                            &aad("payment_lines.account", &idx),
                            account.as_str().as_bytes(),
                        )),
                        Val::Text(bank.clone()),
                        Val::Text(a.region.full()),
                        Val::Text(self.meta.project.code.clone()),
                        Val::Text(a.period.to_string()),
                        Val::Int(if several { batch_id } else { 0 }),
                        Val::Int(a.amount.to_fen().0),
                        Val::Text(LineState::Pending.as_str().into()),
                        Val::Int(0),
                        Val::opt_text(a.proxy.as_ref().map(|p| p.kind.label_zh().to_owned())),
                        Val::opt_text(a.proxy.as_ref().map(|p| p.name.clone())),
                        Val::Text(
                            a.warnings
                                .iter()
                                .map(|w| w.code.as_str())
                                .collect::<Vec<_>>()
                                .join(","),
                        ),
                    ]);
                    for w in &a.warnings {
                        issues.push(self.issue_row(w, Some(&a.name), Some(a.id.as_str())));
                    }
                }
                LineOutcome::Rejected {
                    name,
                    id,
                    raw_id,
                    issues: is,
                    ..
                } => {
                    let idtext = id
                        .as_ref()
                        .map(|i| i.as_str().to_owned())
                        .or_else(|| raw_id.clone());
                    for i in is {
                        issues.push(self.issue_row(i, name.as_deref(), idtext.as_deref()));
                    }
                }
            }
        }
        self.issues += issues.len() as u64;
        bulk_rows(&mut self.tx, "payment_lines", LINE_COLS, &lines).await.map_err(|e| match e {
            StoreError::Conflict { .. } => StoreError::Conflict {
                what: "同一人同一项目同一属期已在其他批次中发放或在途 (a person, project and period is already paid or in flight)".into(),
            },
            e => e,
        })?;
        bulk_rows(&mut self.tx, "roster_issues", ISSUE_COLS, &issues).await
    }

    fn issue_row(&self, i: &ykt_kernel::Issue, name: Option<&str>, id: Option<&str>) -> Vec<Val> {
        let id_masked = match id {
            Some(t) if t.chars().count() >= 15 => self.mask.id(t),
            Some(t) => ykt_kernel::mask::mask_middle(t, 2, 2),
            None => String::new(),
        };
        vec![
            Val::Int(self.roster_id),
            Val::Int(i64::from(i.row)),
            Val::opt_text(i.column.map(|c| c.label().to_owned())),
            Val::Text(i.code.as_str().into()),
            Val::Text(i.severity.as_str().into()),
            Val::Text(i.message.clone()),
            Val::Text(name.map(|n| self.mask.name(n)).unwrap_or_default()),
            Val::Text(id_masked),
        ]
    }

    /// Commit: control totals, roster counts and audit entries, all in the same transaction.
    pub async fn finish(
        mut self,
        summary: &ykt_kernel::intake::IntakeSummary,
        store: &Store,
    ) -> Result<RosterResult> {
        for b in self.batches.values() {
            let (count, fen) = (
                i64::try_from(b.totals.count).unwrap_or(i64::MAX),
                b.totals.amount.0,
            );
            with_tx!(self.tx, |c| {
                sqlx::query(
                    "UPDATE batches SET control_count = $1, control_fen = $2 WHERE id = $3",
                )
                .bind(count)
                .bind(fen)
                .bind(b.id)
                .execute(&mut *c)
                .await?;
            });
        }
        let (lines, accepted, rejected) = (
            summary.lines as i64,
            summary.accepted as i64,
            summary.rejected as i64,
        );
        with_tx!(self.tx, |c| {
            sqlx::query("UPDATE rosters SET line_count = $1, accepted = $2, rejected = $3, accepted_fen = $4 WHERE id = $5")
                .bind(lines)
                .bind(accepted)
                .bind(rejected)
                .bind(summary.accepted_amount.0)
                .bind(self.roster_id)
                .execute(&mut *c)
                .await?;
        });
        let m = &self.meta;
        let rec = AuditRecord {
            at: self.at.clone(),
            actor: m.actor.clone(),
            role: m.actor_role.clone(),
            action: "roster.import".into(),
            subject: format!("roster:{}", self.roster_id),
            from_state: None,
            to_state: None,
            detail: serde_json::json!({
                "file": m.file_name, "sha256": m.sha256, "project": m.project.code, "period": m.period.to_string(),
                "lines": lines, "accepted": accepted, "rejected": rejected, "accepted_fen": summary.accepted_amount.0,
                "batches": self.batches.values().map(|b| b.id).collect::<Vec<_>>(),
            }),
        };
        store.append_audit_in(&mut self.tx, rec).await?;
        for b in self.batches.values() {
            let rec = AuditRecord {
                at: self.at.clone(),
                actor: m.actor.clone(),
                role: m.actor_role.clone(),
                action: "batch.create".into(),
                subject: format!("batch:{}", b.id),
                from_state: None,
                to_state: Some(m.initial_state.as_str().into()),
                detail: serde_json::json!({"count": b.totals.count, "amount_fen": b.totals.amount.0, "roster": self.roster_id}),
            };
            store.append_audit_in(&mut self.tx, rec).await?;
        }
        let ids: Vec<i64> = self.batches.values().map(|b| b.id).collect();
        crate::failpoints::hit("import.before_commit");
        self.tx.commit().await?;
        crate::failpoints::hit("import.after_commit");
        let mut batches = Vec::new();
        for id in ids {
            if let Some(b) = store.batch(id).await? {
                batches.push(b);
            }
        }
        Ok(RosterResult {
            roster_id: self.roster_id,
            batches,
        })
    }
}

fn port_err(e: StoreError) -> PortError {
    PortError::new("数据库", e.to_string(), true)
}

#[async_trait::async_trait]
impl CardRegistry for Store {
    async fn lookup(
        &self,
        ids: &[ResidentId],
    ) -> std::result::Result<Vec<Option<CardRecord>>, PortError> {
        self.lookup_cards(ids).await.map_err(port_err)
    }
}

#[async_trait::async_trait]
impl ReferenceData for Store {
    async fn deaths(
        &self,
        ids: &[ResidentId],
    ) -> std::result::Result<Vec<Option<DeathRecord>>, PortError> {
        self.lookup_deaths(ids).await.map_err(port_err)
    }

    async fn paid_or_in_flight(
        &self,
        project: &Project,
        keys: &[(ResidentId, Period)],
    ) -> std::result::Result<Vec<bool>, PortError> {
        let idx: Vec<BlindIndex> = keys
            .iter()
            .map(|(i, _)| self.vault.blind_index(IndexKind::ResidentId, i.as_str()))
            .collect();
        let found = self
            .paid_pairs(&[project.code.as_str()], &idx)
            .await
            .map_err(port_err)?;
        Ok(idx
            .iter()
            .zip(keys)
            .map(|(i, (_, p))| found.contains_key(&(*i, p.to_string())))
            .collect())
    }

    async fn exclusive(
        &self,
        peers: &[&Project],
        keys: &[(ResidentId, Period)],
    ) -> std::result::Result<Vec<Option<String>>, PortError> {
        let idx: Vec<BlindIndex> = keys
            .iter()
            .map(|(i, _)| self.vault.blind_index(IndexKind::ResidentId, i.as_str()))
            .collect();
        let codes: Vec<&str> = peers.iter().map(|p| p.code.as_str()).collect();
        let found = self.paid_pairs(&codes, &idx).await.map_err(port_err)?;
        Ok(idx
            .iter()
            .zip(keys)
            .map(|(i, (_, p))| {
                found.get(&(*i, p.to_string())).map(|code| {
                    peers
                        .iter()
                        .find(|q| &q.code == code)
                        .map(|q| q.name.clone())
                        .unwrap_or_else(|| code.clone())
                })
            })
            .collect())
    }

    async fn agreements(&self, ids: &[ResidentId]) -> std::result::Result<Vec<bool>, PortError> {
        let idx: Vec<BlindIndex> = ids
            .iter()
            .map(|i| self.vault.blind_index(IndexKind::ResidentId, i.as_str()))
            .collect();
        let rows: Vec<(Vec<u8>,)> = rows_by_person(
            self,
            "SELECT person_idx FROM proxy_agreements WHERE person_idx",
            None,
            &idx,
        )
        .await
        .map_err(port_err)?;
        let have: std::collections::HashSet<Vec<u8>> = rows.into_iter().map(|r| r.0).collect();
        Ok(idx.iter().map(|i| have.contains(i.as_slice())).collect())
    }
}
