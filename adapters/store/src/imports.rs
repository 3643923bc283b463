//! Bulk imports: provenance records (`imports` table), at-most-once imports of the same
//! content, and the streaming loader shared by every reference register.
//!
//! A bulk import runs in ONE write transaction, all or nothing:
//!
//! 1. if `(kind, sha256, scope)` is already in `imports`, nothing happens:
//!    [`ImportOutcome::AlreadyImported`];
//! 2. an `imports` row is inserted (its id is the provenance of every loaded row);
//! 3. records are pulled from the caller's iterator in chunks (memory does not grow with the
//!    size of the file) into a temporary staging table whose primary key rejects a duplicate
//!    inside the file ([`StoreError::Conflict`]): SQLite with multi-row `INSERT`s under the
//!    32 766 bind-parameter limit, PostgreSQL with `COPY ... FROM STDIN` (text format);
//! 4. one `INSERT ... SELECT ... ON CONFLICT DO UPDATE` merges the staging table into the
//!    register: a newer snapshot replaces what an older one said about the same key;
//! 5. the row count is recorded and the transaction commits.
//!
//! A failing record (the iterator yields `Err`) or a conflict aborts the whole import.

use crate::db::{Backend, Store, TxInner, with_tx};
use crate::error::{Result, StoreError};
use crate::registers::values_placeholders;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, SqliteConnection};
use std::convert::Infallible;

/// Well-known import kinds.
pub mod kinds {
    /// A card registry (社保卡管理信息系统) snapshot.
    pub const CARDS: &str = "cards";
    /// The death register.
    pub const DEATHS: &str = "deaths";
    /// The region table (统计用区划代码).
    pub const REGIONS: &str = "regions";
}

/// Where an import comes from. `(kind, sha256, scope)` identifies the content: importing it
/// again does nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportMeta {
    /// What is imported, e.g. [`kinds::CARDS`].
    pub kind: String,
    /// The uploaded file's name, for the record.
    pub file_name: String,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
    /// What part of the register the file covers (e.g. a region code), `""` for all.
    pub scope: String,
    /// Login of the user (or `system`) who imported it.
    pub actor: String,
}

impl ImportMeta {
    /// Meta for `bytes` (hashes them), with an empty scope.
    pub fn for_bytes(kind: &str, file_name: &str, bytes: &[u8], actor: &str) -> ImportMeta {
        ImportMeta {
            kind: kind.to_owned(),
            file_name: file_name.to_owned(),
            sha256: hex::encode(Sha256::digest(bytes)),
            scope: String::new(),
            actor: actor.to_owned(),
        }
    }

    /// The same meta with another scope.
    pub fn with_scope(mut self, scope: impl Into<String>) -> ImportMeta {
        self.scope = scope.into();
        self
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// The records were loaded; `rows` is how many.
    Imported { import_id: i64, rows: u64 },
    /// The same content was imported before (by import `import_id` at `at`); nothing changed.
    AlreadyImported { import_id: i64, at: String },
}

impl ImportOutcome {
    pub fn import_id(&self) -> i64 {
        match self {
            ImportOutcome::Imported { import_id, .. }
            | ImportOutcome::AlreadyImported { import_id, .. } => *import_id,
        }
    }
}

/// Adapt an infallible record source to the `Result` items the import functions take:
/// `store.import_cards(ok_rows(cards), meta)`.
pub fn ok_rows<T>(
    records: impl IntoIterator<Item = T>,
) -> impl Iterator<Item = Result<T, Infallible>> {
    records.into_iter().map(Ok)
}

/// The current time as RFC 3339 UTC with microseconds.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// One value of a staged (or bulk-inserted) row.
pub(crate) enum Val {
    Blob(Vec<u8>),
    Text(String),
    Int(i64),
    Null,
}

impl Val {
    /// `Text`, or `Null` for `None`.
    pub(crate) fn opt_text(s: Option<String>) -> Val {
        s.map_or(Val::Null, Val::Text)
    }
    /// `Blob`, or `Null` for `None`.
    pub(crate) fn opt_blob(b: Option<Vec<u8>>) -> Val {
        b.map_or(Val::Null, Val::Blob)
    }
}

/// How one register is bulk-loaded.
pub(crate) struct BulkSpec {
    /// Name of the temporary staging table.
    pub stage: &'static str,
    /// Its columns, in the order of the rows' values.
    pub columns: &'static [&'static str],
    /// Column definitions of the staging table for SQLite (`STRICT` types).
    pub stage_defs_sqlite: &'static str,
    /// Column definitions of the staging table for PostgreSQL.
    pub stage_defs_pg: &'static str,
    /// Merges the staging table into the register; `$1` is the import id, `$2` the time.
    /// Write `SELECT ... FROM stage WHERE true ON CONFLICT ...`: SQLite needs the `WHERE` to
    /// parse `ON CONFLICT` after a `SELECT`.
    pub merge: &'static str,
}

/// Rows per multi-row INSERT on SQLite: at most 500, and under the 32 766 bind parameters.
fn sqlite_rows_per_insert(columns: usize) -> usize {
    (32_766 / columns.max(1)).clamp(1, 500)
}

/// Rows per COPY message on PostgreSQL.
pub(crate) const PG_ROWS_PER_SEND: usize = 2_000;

/// Pulls records from the source, numbering them, and converts them to rows.
struct Feeder<I, F> {
    iter: I,
    index: u64,
    to_row: F,
}

impl<T, E, I, F> Feeder<I, F>
where
    I: Iterator<Item = Result<T, E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
    F: FnMut(T) -> Result<Vec<Val>>,
{
    /// Up to `n` rows; empty at the end of the source.
    fn next_chunk(&mut self, n: usize) -> Result<Vec<Vec<Val>>> {
        let mut rows = Vec::with_capacity(n.min(1024));
        while rows.len() < n {
            let Some(item) = self.iter.next() else { break };
            self.index += 1;
            let record = item.map_err(|e| StoreError::Source {
                index: self.index,
                source: e.into(),
            })?;
            rows.push((self.to_row)(record)?);
        }
        Ok(rows)
    }
}

impl Store {
    /// The import of this content, if it happened: `(id, at)`.
    pub async fn find_import(
        &self,
        kind: &str,
        sha256: &str,
        scope: &str,
    ) -> Result<Option<(i64, String)>> {
        Ok(crate::db::with_pool!(self, |p| {
            sqlx::query_as::<_, (i64, String)>(
                "SELECT id, at FROM imports WHERE kind = $1 AND sha256 = $2 AND scope = $3",
            )
            .bind(kind)
            .bind(sha256)
            .bind(scope)
            .fetch_optional(p)
            .await?
        }))
    }

    /// Run one bulk import (see the module docs).
    pub(crate) async fn bulk_import<T, E, I, F>(
        &self,
        spec: &BulkSpec,
        meta: &ImportMeta,
        records: I,
        to_row: F,
    ) -> Result<ImportOutcome>
    where
        I: IntoIterator<Item = Result<T, E>>,
        I::IntoIter: Send,
        T: Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
        F: FnMut(T) -> Result<Vec<Val>> + Send,
    {
        let mut tx = self.begin().await?;
        let existing = with_tx!(tx, |c| {
            sqlx::query_as::<_, (i64, String)>(
                "SELECT id, at FROM imports WHERE kind = $1 AND sha256 = $2 AND scope = $3",
            )
            .bind(&meta.kind)
            .bind(&meta.sha256)
            .bind(&meta.scope)
            .fetch_optional(&mut *c)
            .await?
        });
        if let Some((import_id, at)) = existing {
            tx.rollback().await?;
            return Ok(ImportOutcome::AlreadyImported { import_id, at });
        }
        let at = now_rfc3339();
        // ON CONFLICT DO NOTHING: on PostgreSQL a concurrent import of the same content waits
        // here for the other transaction and then finds its row.
        let inserted: Option<i64> = with_tx!(tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO imports (kind, file_name, sha256, scope, actor, at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (kind, sha256, scope) DO NOTHING RETURNING id",
            )
            .bind(&meta.kind)
            .bind(&meta.file_name)
            .bind(&meta.sha256)
            .bind(&meta.scope)
            .bind(&meta.actor)
            .bind(&at)
            .fetch_optional(&mut *c)
            .await?
        });
        let Some(import_id) = inserted else {
            tx.rollback().await?;
            return match self
                .find_import(&meta.kind, &meta.sha256, &meta.scope)
                .await?
            {
                Some((import_id, at)) => Ok(ImportOutcome::AlreadyImported { import_id, at }),
                None => Err(StoreError::Conflict {
                    what: "imports (kind, sha256, scope)".into(),
                }),
            };
        };

        let mut feeder = Feeder {
            iter: records.into_iter(),
            index: 0,
            to_row,
        };
        let rows = match &mut tx.inner {
            TxInner::Sqlite(t) => stage_sqlite(t, spec, &mut feeder).await?,
            TxInner::Postgres(t) => stage_postgres(t, spec, &mut feeder).await?,
        };
        let rows_i64 = i64::try_from(rows).unwrap_or(i64::MAX);
        with_tx!(tx, |c| {
            sqlx::query(spec.merge)
                .bind(import_id)
                .bind(&at)
                .execute(&mut *c)
                .await?;
            sqlx::query("UPDATE imports SET row_count = $1, accepted = $1 WHERE id = $2")
                .bind(rows_i64)
                .bind(import_id)
                .execute(&mut *c)
                .await?;
        });
        if let TxInner::Sqlite(t) = &mut tx.inner {
            sqlx::query(&format!("DROP TABLE temp.{}", spec.stage))
                .execute(&mut **t)
                .await?;
        }
        tx.commit().await?;
        tracing::info!(kind = %meta.kind, import_id, rows, "bulk import committed");
        Ok(ImportOutcome::Imported { import_id, rows })
    }
}

async fn stage_sqlite<T, E, I, F>(
    conn: &mut SqliteConnection,
    spec: &BulkSpec,
    feeder: &mut Feeder<I, F>,
) -> Result<u64>
where
    I: Iterator<Item = Result<T, E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
    F: FnMut(T) -> Result<Vec<Val>>,
{
    sqlx::query(&format!("DROP TABLE IF EXISTS temp.{}", spec.stage))
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!(
        "CREATE TEMP TABLE {} ({}) STRICT",
        spec.stage, spec.stage_defs_sqlite
    ))
    .execute(&mut *conn)
    .await?;
    let ncols = spec.columns.len();
    let per_insert = sqlite_rows_per_insert(ncols);
    let full_sql = multi_row_insert(spec, per_insert);
    let mut total = 0u64;
    loop {
        let rows = feeder.next_chunk(per_insert)?;
        if rows.is_empty() {
            break;
        }
        let partial_sql;
        let sql = if rows.len() == per_insert {
            &full_sql
        } else {
            partial_sql = multi_row_insert(spec, rows.len());
            &partial_sql
        };
        total += rows.len() as u64;
        let mut q = sqlx::query(sql);
        for row in rows {
            if row.len() != ncols {
                return Err(StoreError::Invalid {
                    reason: format!("staged row has {} values, expected {ncols}", row.len()),
                });
            }
            for v in row {
                q = match v {
                    Val::Blob(b) => q.bind(b),
                    Val::Text(s) => q.bind(s),
                    Val::Int(i) => q.bind(i),
                    Val::Null => q.bind(None::<i64>),
                };
            }
        }
        q.execute(&mut *conn).await?;
    }
    Ok(total)
}

/// `INSERT INTO stage (cols) VALUES (?, ...), (...)` for `rows` rows.
///
/// Anonymous `?` rather than `$N`: SQLite resolves each named parameter with a linear scan
/// (`sqlite3_bind_parameter_name`), which makes binding a statement with thousands of `$N`
/// parameters quadratic (measured: 500 rows of 9 columns took 5x longer than 50 rows).
fn multi_row_insert(spec: &BulkSpec, rows: usize) -> String {
    format!(
        "INSERT INTO {} ({}) VALUES {}",
        spec.stage,
        spec.columns.join(", "),
        values_placeholders(Backend::Sqlite, rows, spec.columns.len())
    )
}

async fn stage_postgres<T, E, I, F>(
    conn: &mut PgConnection,
    spec: &BulkSpec,
    feeder: &mut Feeder<I, F>,
) -> Result<u64>
where
    I: Iterator<Item = Result<T, E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
    F: FnMut(T) -> Result<Vec<Val>>,
{
    sqlx::query(&format!(
        "CREATE TEMP TABLE {} ({}) ON COMMIT DROP",
        spec.stage, spec.stage_defs_pg
    ))
    .execute(&mut *conn)
    .await?;
    let statement = format!(
        "COPY {} ({}) FROM STDIN",
        spec.stage,
        spec.columns.join(", ")
    );
    let mut copy = conn.copy_in_raw(&statement).await?;
    let ncols = spec.columns.len();
    let mut buf = Vec::with_capacity(256 * 1024);
    let mut total = 0u64;
    loop {
        let rows = match feeder.next_chunk(PG_ROWS_PER_SEND) {
            Ok(rows) => rows,
            Err(e) => {
                // The server answers CopyFail with an error that we expect; the transaction is
                // rolled back when the caller drops it.
                if let Err(abort_err) = copy.abort("import aborted by the client").await {
                    tracing::debug!(error = %abort_err, "COPY abort reported an error");
                }
                return Err(e);
            }
        };
        if rows.is_empty() {
            break;
        }
        total += rows.len() as u64;
        buf.clear();
        for row in &rows {
            if row.len() != ncols {
                if let Err(abort_err) = copy.abort("malformed staged row").await {
                    tracing::debug!(error = %abort_err, "COPY abort reported an error");
                }
                return Err(StoreError::Invalid {
                    reason: format!("staged row has {} values, expected {ncols}", row.len()),
                });
            }
            copy_text_row(&mut buf, row);
        }
        copy.send(buf.as_slice()).await?;
    }
    copy.finish().await?;
    Ok(total)
}

/// Bind the values of `rows`, in order, to a multi-row INSERT whose only parameters are
/// theirs (see [`crate::registers::values_placeholders`]).
pub(crate) fn bind_sqlite_rows<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    rows: &'q [Vec<Val>],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    for row in rows {
        for v in row {
            q = match v {
                Val::Blob(b) => q.bind(b.as_slice()),
                Val::Text(s) => q.bind(s.as_str()),
                Val::Int(i) => q.bind(*i),
                Val::Null => q.bind(None::<i64>),
            };
        }
    }
    q
}

/// `COPY table (columns) FROM STDIN` of `rows` (text format) on a connection inside a
/// transaction: the PostgreSQL bulk path of payment lines and roster issues, in the format
/// the registers are staged with.
pub(crate) async fn copy_rows(
    conn: &mut PgConnection,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Val>],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let statement = format!("COPY {table} ({}) FROM STDIN", columns.join(", "));
    let mut copy = conn.copy_in_raw(&statement).await?;
    let mut buf = Vec::with_capacity(256 * 1024);
    for chunk in rows.chunks(PG_ROWS_PER_SEND) {
        buf.clear();
        for row in chunk {
            copy_text_row(&mut buf, row);
        }
        if let Err(e) = copy.send(buf.as_slice()).await {
            if let Err(abort_err) = copy.abort("bulk insert failed").await {
                tracing::debug!(error = %abort_err, "COPY abort reported an error");
            }
            return Err(e.into());
        }
    }
    copy.finish().await?;
    Ok(())
}

/// Append one row in COPY text format: tab-separated, newline-terminated, backslash escapes;
/// bytea as `\\x<hex>` (the backslash itself escaped), NULL as `\N`.
pub(crate) fn copy_text_row(buf: &mut Vec<u8>, row: &[Val]) {
    for (i, v) in row.iter().enumerate() {
        if i > 0 {
            buf.push(b'\t');
        }
        match v {
            Val::Blob(b) => {
                buf.extend_from_slice(b"\\\\x");
                buf.extend_from_slice(hex::encode(b).as_bytes());
            }
            Val::Int(n) => {
                use std::io::Write as _;
                let _ = write!(buf, "{n}");
            }
            Val::Null => buf.extend_from_slice(b"\\N"),
            Val::Text(s) => {
                for &byte in s.as_bytes() {
                    match byte {
                        b'\\' => buf.extend_from_slice(b"\\\\"),
                        b'\n' => buf.extend_from_slice(b"\\n"),
                        b'\r' => buf.extend_from_slice(b"\\r"),
                        b'\t' => buf.extend_from_slice(b"\\t"),
                        other => buf.push(other),
                    }
                }
            }
        }
    }
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes() {
        let mut buf = Vec::new();
        copy_text_row(
            &mut buf,
            &[
                Val::Blob(vec![0x01, 0xab]),
                Val::Text("a\tb\\c\nd".into()),
                Val::Int(-7),
                Val::Null,
            ],
        );
        assert_eq!(buf, b"\\\\x01ab\ta\\tb\\\\c\\nd\t-7\t\\N\n");
    }

    #[test]
    fn multi_row_placeholders() {
        let spec = BulkSpec {
            stage: "s",
            columns: &["a", "b"],
            stage_defs_sqlite: "",
            stage_defs_pg: "",
            merge: "",
        };
        assert_eq!(
            multi_row_insert(&spec, 2),
            "INSERT INTO s (a, b) VALUES (?, ?), (?, ?)"
        );
        assert_eq!(sqlite_rows_per_insert(11), 500);
        assert_eq!(sqlite_rows_per_insert(100), 327);
    }
}
