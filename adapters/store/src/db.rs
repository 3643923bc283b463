//! The connection pool, transactions and the two-backend dispatch.
//!
//! # Writing a query once for both backends
//!
//! SQL text is shared: `$1, $2, ...` placeholders (SQLite accepts `$N`), integers as
//! `INTEGER`/`BIGINT` decoded as `i64`, byte strings as `BLOB`/`BYTEA` (`Vec<u8>`), timestamps
//! as RFC 3339 UTC `TEXT`, booleans as integer 0/1. The [`with_pool!`] and [`with_tx!`]
//! macros expand one body once per backend, with the identifier bound to that backend's pool
//! or connection, so the body type-checks against both drivers:
//!
//! ```ignore
//! let name: Option<String> = with_pool!(self, |p| {
//!     sqlx::query_scalar("SELECT name FROM regions WHERE code = $1")
//!         .bind(code)
//!         .fetch_optional(p)
//!         .await?
//! });
//!
//! let mut tx = self.begin().await?;
//! with_tx!(tx, |c| {
//!     sqlx::query("INSERT INTO t (a) VALUES ($1)").bind(a).execute(&mut *c).await?;
//! });
//! tx.commit().await?;
//! ```
//!
//! Both arms must produce the same type: decode rows inside the body with `query_as` into
//! tuples (or `query_scalar`), which implement `FromRow` for both drivers, and convert to
//! domain types outside the macro. Where the backends genuinely differ (bulk loading with
//! `COPY`, locking), match on [`Pool`] / [`TxInner`] directly.
//!
//! Long parameter lists (`IN (...)` lookups, multi-row `VALUES`): SQLite resolves every `$N`
//! with a linear scan when binding, so a statement with thousands of `$N` parameters binds in
//! quadratic time (500 rows x 9 columns: 5x slower than 50 rows; 2 000 rows: 20x). When the
//! list is the statement's only parameters, build it with `registers::list_placeholders` or
//! `registers::values_placeholders`, which emit anonymous `?` on SQLite.
//!
//! # Write transactions
//!
//! [`Store::begin`] opens a *write* transaction.
//!
//! - SQLite: `BEGIN IMMEDIATE`, so the write lock is taken at the start. A `DEFERRED`
//!   transaction (sqlx's `begin()`) that reads and then writes can fail with `SQLITE_BUSY` at
//!   the upgrade, where `busy_timeout` does not help; `IMMEDIATE` waits (up to `busy_timeout`)
//!   at `BEGIN` instead. Inside one process, writers additionally queue on an async mutex (the
//!   *write gate*) so a long import makes other writers wait rather than time out after 5 s;
//!   so does every write outside a transaction ([`with_write!`]).
//!   Consequence: never open a second write transaction, nor write outside it, while holding
//!   one.
//! - PostgreSQL: a plain `BEGIN` (READ COMMITTED); code that needs serialisation takes a lock
//!   explicitly (the audit chain locks `audit_log`).

use crate::error::{Result, StoreError};
use crate::vault::Vault;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// How long SQLite waits for a lock held by another connection or process.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite page cache of a connection while it reads (`cache_size`, negative = KiB): 2 MiB;
/// the pages it misses come from the operating system's file cache (a `pread`, usually not
/// a disk read). The pool has up to eight connections, so this bounds the read caches to
/// 16 MiB. With 8 MiB each (64 MiB in all) a Henan 1M-line cycle peaked at 505 MB, with
/// 2 MiB at 473 MB, in the same CPU time (623 and 620 s; 100k lines: 262 → 219 and 233 MB;
/// BENCHMARKS.md tenth round). A macro, so the connection option and the statement share
/// one literal.
macro_rules! sqlite_read_cache_kib {
    () => {
        "-2048"
    };
}

/// Puts a connection back to the read cache (after a write transaction).
pub(crate) const SQLITE_READ_CACHE: &str =
    concat!("PRAGMA cache_size = ", sqlite_read_cache_kib!());

/// SQLite page cache of the connection holding a write transaction: 64 MiB, because bulk
/// loads insert into B-trees keyed by random blind indexes, which thrash a small cache. Set
/// by [`Store::begin`] and reset to [`SQLITE_READ_CACHE`] before the transaction ends, so at
/// most one connection holds a large cache at a time (a pool of eight 64 MiB caches took an
/// import of a million lines to 777 MB).
const SQLITE_WRITE_CACHE: &str = "PRAGMA cache_size = -65536";

/// How a SQLite write transaction begins. Its temporary storage is set first (it can only
/// change outside a transaction, and it decides where the transaction's *statement
/// journals* go):
///
/// - every write transaction: the default (files), so a bulk import's staging table
///   (`imports`) is never held in memory, nor the journal of a statement that changes a
///   whole batch (cancelling a batch of a million lines);
/// - a transaction whose statements each change a bounded number of rows
///   ([`Store::begin_bulk`]: the roster import's chunks, a release's, a delivery's and a
///   result post's chunks of at most a few thousand lines): in memory. Each of the roster
///   import's multi-row INSERTs
///   (512 rows) journals every page it changes for the first time in that statement, so the
///   statement alone can be undone; the lines' indexes are keyed by random blind indexes, so
///   that is two or three pages a row. SQLite keeps a statement journal in memory up to
///   64 KiB and writes the rest to a temporary file: `pwrite` from the statement journal was
///   11 % of the import's CPU at 100,000 lines (profiled; a million lines journal an
///   estimated 7 GB). In memory it is the largest statement's pages at a time (estimated a
///   few MB), freed when the statement ends. The bank results' transactions pay the same
///   (statement journals were 5 % of a Henan cycle's samples at 100,000 lines). None of
///   these transactions creates temporary tables.
const SQLITE_BEGIN: &str = "PRAGMA temp_store = DEFAULT; BEGIN IMMEDIATE";
const SQLITE_BEGIN_BULK: &str = "PRAGMA temp_store = MEMORY; BEGIN IMMEDIATE";

/// WAL pages after which a commit copies the log back into the database (SQLite's default
/// is 1,000 pages, 4 MiB). A post of 1,000 bank results rewrites about that many pages, so at
/// the default every such commit also ran a checkpoint, copying and syncing again pages the
/// next commit rewrites; at 10,000 pages (a log of up to 40 MiB on disk, not in memory)
/// a page rewritten by consecutive commits is copied back once.
const SQLITE_WAL_AUTOCHECKPOINT: &str = "10000";

/// Rows a SQLite connection's worker thread queues ahead of the reader (see `connect_sqlite`).
const SQLITE_ROW_BUFFER: usize = 1024;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The connection pool of either backend.
#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The store: one repository API over SQLite or PostgreSQL, selected by the URL.
/// Cheap to clone (the pool and the vault are shared).
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    pub(crate) vault: Vault,
    /// SQLite on a file: the file (the public lookup opens read connections of its own).
    pub(crate) sqlite_file: Option<Arc<std::path::PathBuf>>,
    /// SQLite only: serialises write transactions inside this process (see the module docs).
    write_gate: Arc<Mutex<()>>,
    /// One lock per file being imported (see [`Store::file_gate`]).
    file_gates: Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<Mutex<()>>>>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// Run `$body` with `$p` bound to the store's pool (`&SqlitePool` or `&PgPool`). The body is
/// expanded once per backend and must evaluate to the same type in both. See the module docs.
macro_rules! with_pool {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.pool {
            $crate::db::Pool::Sqlite($p) => $body,
            $crate::db::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use with_pool;

/// [`with_pool!`] for a statement that writes outside a transaction (autocommit). On SQLite it
/// first queues on the write gate, as [`Store::begin`] does: otherwise it would wait for the
/// database's write lock only `busy_timeout` (5 s) while a long transaction of this process
/// holds it, and fail with `database is locked` (seen: a bank's pull, which records itself,
/// refused with HTTP 500 during a loaded release). Never use it while holding a [`Tx`].
macro_rules! with_write {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.pool {
            $crate::db::Pool::Sqlite($p) => {
                let _gate = $store.sqlite_write_gate().await;
                $body
            }
            $crate::db::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use with_write;

/// Run `$body` with `$c` bound to the transaction's connection (`&mut SqliteConnection` or
/// `&mut PgConnection`; pass `&mut *$c` as the executor). Expanded once per backend.
macro_rules! with_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match &mut $tx.inner {
            $crate::db::TxInner::Sqlite(t) => {
                let $c: &mut ::sqlx::SqliteConnection = &mut **t;
                $body
            }
            $crate::db::TxInner::Postgres(t) => {
                let $c: &mut ::sqlx::PgConnection = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use with_tx;

/// A write transaction on either backend, from [`Store::begin`]. Dropping it without
/// [`Tx::commit`] rolls back.
pub struct Tx {
    // Field order matters: the transaction is dropped (rolled back) before the gate opens.
    pub(crate) inner: TxInner,
    _gate: Option<OwnedMutexGuard<()>>,
}

pub(crate) enum TxInner {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(mut t) => {
                // Shrinking first is safe: dirty pages stay until COMMIT writes them, and
                // SQLite frees the pages over the limit as they become clean.
                sqlx::query(SQLITE_READ_CACHE).execute(&mut *t).await?;
                t.commit().await?
            }
            TxInner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(mut t) => {
                sqlx::query(SQLITE_READ_CACHE).execute(&mut *t).await?;
                t.rollback().await?
            }
            TxInner::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.inner {
            TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::Postgres(_) => Backend::Postgres,
        }
    }
}

impl fmt::Debug for Tx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tx")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

fn config(reason: impl Into<String>) -> StoreError {
    StoreError::Config {
        reason: reason.into(),
    }
}

/// Whether a SQLite URL names an in-memory database.
fn sqlite_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

impl Store {
    /// Connect to `url` and apply the migrations.
    ///
    /// - `sqlite://path/to/ykt.db` (relative to the working directory; `sqlite:///abs/path`
    ///   for an absolute path): parent directories and the file are created when missing; WAL
    ///   journal, `synchronous=FULL`, foreign keys on, busy timeout 5 s.
    /// - `sqlite::memory:`: a private in-memory database (one connection, lives as long as the
    ///   store; so a read through the store waits while a write transaction is open).
    /// - `postgres://user@host:port/database` (or `postgresql://`).
    ///
    /// Refuses a database that was created with another master key
    /// ([`StoreError::KeyMismatch`]).
    pub async fn connect(url: &str, vault: Vault) -> Result<Store> {
        let pool = if url.starts_with("sqlite:") {
            Pool::Sqlite(connect_sqlite(url).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url).map_err(|e| {
                config(format!("PostgreSQL 地址无法解析 (bad PostgreSQL URL): {e}"))
            })?;
            Pool::Postgres(connect_postgres(opts).await?)
        } else {
            return Err(config(
                "数据库地址应以 sqlite: 或 postgres:// 开头 (the URL must start with sqlite: or postgres://)",
            ));
        };
        let sqlite_file = match &pool {
            Pool::Sqlite(p) if !sqlite_in_memory(url) => {
                Some(Arc::new(p.connect_options().get_filename().to_path_buf()))
            }
            _ => None,
        };
        let store = Store {
            pool,
            vault,
            sqlite_file,
            write_gate: Arc::new(Mutex::new(())),
            file_gates: Arc::default(),
        };
        store.migrate().await?;
        store.check_key().await?;
        tracing::info!(backend = %store.backend(), "store connected and migrated");
        Ok(store)
    }

    /// Apply pending migrations (idempotent; [`Store::connect`] already did).
    pub async fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(p) => SQLITE_MIGRATOR.run(p).await?,
            Pool::Postgres(p) => POSTGRES_MIGRATOR.run(p).await?,
        }
        Ok(())
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The vault encrypting personal identifiers.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Close all connections (waits for checked-out connections to come back).
    pub async fn close(&self) {
        with_pool!(self, |p| p.close().await)
    }

    /// Serialise, inside this process, the imports of one file (`key`: what makes it the same
    /// import, e.g. province, project, period and SHA-256): a second upload of the file waits
    /// for the first without holding a connection, then finds it imported. On PostgreSQL
    /// the waiting inserts would otherwise each hold a pool connection blocked on the first
    /// import's row until the pool ran dry.
    pub(crate) async fn file_gate(&self, key: String) -> OwnedMutexGuard<()> {
        let gate = {
            let mut map = self.file_gates.lock().unwrap_or_else(|e| e.into_inner());
            map.retain(|_, g| Arc::strong_count(g) > 1);
            map.entry(key).or_default().clone()
        };
        gate.lock_owned().await
    }

    /// Open a write transaction (see the module docs for the locking).
    /// The write gate of this process's SQLite writers (see [`with_write!`]).
    pub(crate) async fn sqlite_write_gate(&self) -> OwnedMutexGuard<()> {
        self.write_gate.clone().lock_owned().await
    }

    pub async fn begin(&self) -> Result<Tx> {
        self.begin_as(SQLITE_BEGIN).await
    }

    /// [`Store::begin`] for a transaction of bounded statements (a roster import, a release,
    /// a delivery of results: each statement a chunk of at most a few thousand rows): on
    /// SQLite its statement journals are kept in memory (see [`SQLITE_BEGIN_BULK`]); no
    /// temporary table may be created in it.
    pub(crate) async fn begin_bulk(&self) -> Result<Tx> {
        self.begin_as(SQLITE_BEGIN_BULK).await
    }

    async fn begin_as(&self, sqlite_begin: &'static str) -> Result<Tx> {
        match &self.pool {
            Pool::Sqlite(p) => {
                let gate = self.write_gate.clone().lock_owned().await;
                // One `sqlite3_exec` on the connection that takes the transaction: the
                // temporary storage setting, then `BEGIN IMMEDIATE`.
                let mut t = p.begin_with(sqlite_begin).await?;
                // A transaction dropped without commit or rollback (an error path) leaves its
                // connection with the large cache until its next write transaction ends.
                sqlx::query(SQLITE_WRITE_CACHE).execute(&mut *t).await?;
                Ok(Tx {
                    inner: TxInner::Sqlite(t),
                    _gate: Some(gate),
                })
            }
            Pool::Postgres(p) => {
                let t = p.begin().await?;
                Ok(Tx {
                    inner: TxInner::Postgres(t),
                    _gate: None,
                })
            }
        }
    }

    /// Record the vault's key-check value on first use; refuse another key afterwards.
    async fn check_key(&self) -> Result<()> {
        let mine = self.vault.check_value().to_owned();
        let mut tx = self.begin().await?;
        let stored: String = with_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO store_meta (key, value) VALUES ('vault_check', $1) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(&mine)
            .execute(&mut *c)
            .await?;
            sqlx::query_scalar("SELECT value FROM store_meta WHERE key = 'vault_check'")
                .fetch_one(&mut *c)
                .await?
        });
        tx.commit().await?;
        if stored != mine {
            return Err(StoreError::KeyMismatch);
        }
        Ok(())
    }
}

async fn connect_sqlite(url: &str) -> Result<SqlitePool> {
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(|e| config(format!("SQLite 地址无法解析 (bad SQLite URL): {e}")))?
        .foreign_keys(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .synchronous(SqliteSynchronous::Full)
        // See sqlite_read_cache_kib (write transactions enlarge it while they last).
        .pragma("cache_size", sqlite_read_cache_kib!())
        // See SQLITE_WAL_AUTOCHECKPOINT.
        .pragma("wal_autocheckpoint", SQLITE_WAL_AUTOCHECKPOINT)
        // Rows a query's worker thread may queue before it waits for the reader: sqlx's
        // default of 50 made a 900-row lookup switch threads every few rows.
        .row_buffer_size(SQLITE_ROW_BUFFER);
    if sqlite_in_memory(url) {
        // Every connection to `:memory:` would be a separate database (sqlx names it and
        // uses a shared cache, but shared-cache locking reports SQLITE_LOCKED without waiting):
        // keep exactly one connection, forever.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await?;
        return Ok(pool);
    }
    let path = opts.get_filename().to_path_buf();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let opts = opts
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        // sqlx pings every connection before lending it out. For an embedded database that
        // is a round trip to the connection's worker thread (two thread hand-overs) before
        // every query and proves nothing a query would not: measured on the public lookup,
        // 64.7 -> 51.9 µs of CPU per request (BENCHMARKS.md, eleventh round).
        .test_before_acquire(false)
        .connect_with(opts)
        .await?;
    Ok(pool)
}

async fn connect_postgres(opts: PgConnectOptions) -> Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(opts)
        .await?;
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database made before migration 0010 (every other migration applied, the province
    /// ones of a higher number included) gets it on the next start: the lookup records are
    /// carried over into the WITHOUT ROWID table, none lost, and the out-of-order version is
    /// applied rather than refused.
    #[tokio::test]
    async fn lookup_records_survive_migration_0010_on_an_older_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join("old.db"))
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .expect("pool");
        let before = Migrator {
            migrations: SQLITE_MIGRATOR
                .migrations
                .iter()
                .filter(|m| m.version != 10)
                .cloned()
                .collect::<Vec<_>>()
                .into(),
            ..Migrator::DEFAULT
        };
        assert!(before.migrations.iter().any(|m| m.version > 10));
        before.run(&pool).await.expect("the older schema");
        for (key, period) in [("k1", "2023-04"), ("k1", "2023-05"), ("k2", "2023-05")] {
            sqlx::query(
                "INSERT INTO lookup_records (person_key, name_masked, project_name, period, \
                 amount_fen, date, status) VALUES (?, '张*', '农村低保', ?, 46500, '2023-05-20', '已到账')",
            )
            .bind(key)
            .bind(period)
            .execute(&pool)
            .await
            .expect("insert");
        }
        SQLITE_MIGRATOR
            .run(&pool)
            .await
            .expect("0010 on the older database");
        let sql: String =
            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = 'lookup_records'")
                .fetch_one(&pool)
                .await
                .expect("table");
        assert!(sql.contains("WITHOUT ROWID"), "{sql}");
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT person_key, period, amount_fen FROM lookup_records ORDER BY person_key, period",
        )
        .fetch_all(&pool)
        .await
        .expect("rows");
        assert_eq!(
            rows,
            [
                ("k1".to_string(), "2023-04".to_string(), 46500),
                ("k1".to_string(), "2023-05".to_string(), 46500),
                ("k2".to_string(), "2023-05".to_string(), 46500),
            ]
        );
        pool.close().await;
    }

    #[tokio::test]
    async fn memory_store_connects_and_refuses_other_key_on_file() {
        let (vault, _) = Vault::generate();
        let store = Store::connect("sqlite::memory:", vault.clone())
            .await
            .expect("memory store");
        assert_eq!(store.backend(), Backend::Sqlite);
        store.close().await;

        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("a/b/ykt.db").display());
        let store = Store::connect(&url, vault.clone())
            .await
            .expect("file store");
        store.close().await;
        let (other, _) = Vault::generate();
        assert!(matches!(
            Store::connect(&url, other).await,
            Err(StoreError::KeyMismatch)
        ));
        let again = Store::connect(&url, vault).await.expect("same key reopens");
        again.close().await;

        assert!(matches!(
            Store::connect("mysql://x", Vault::generate().0).await,
            Err(StoreError::Config { .. })
        ));
    }

    /// A write outside a transaction waits for a longer transaction of the same process
    /// instead of failing with `database is locked` after `busy_timeout`.
    #[tokio::test]
    async fn autocommit_write_waits_for_a_transaction_longer_than_busy_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("ykt.db").display());
        let store = Store::connect(&url, Vault::generate().0)
            .await
            .expect("file store");
        let tx = store.begin().await.expect("write transaction");
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .upsert_user(&crate::UserRow {
                        login: "clerk".into(),
                        display_name: "经办".into(),
                        roles: vec!["dept_maker".into()],
                        region: "410902000000".into(),
                        password_hash: None,
                        disabled: false,
                    })
                    .await
            })
        };
        tokio::time::sleep(SQLITE_BUSY_TIMEOUT + Duration::from_secs(1)).await;
        assert!(!writer.is_finished(), "the write waits for the transaction");
        tx.commit().await.expect("commit");
        writer
            .await
            .expect("task")
            .expect("the write succeeds once the transaction ends");
        assert!(store.get_user("clerk").await.expect("read").is_some());
        store.close().await;
    }
}
