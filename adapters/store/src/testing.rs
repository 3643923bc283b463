//! Test harness: run the same test against SQLite and PostgreSQL.
//!
//! ```ignore
//! #[tokio::test]
//! async fn cards_round_trip() {
//!     each_backend("cards_round_trip", |db| async move {
//!         let store = &db.store;
//!         // ... assertions ...
//!     })
//!     .await;
//! }
//! ```
//!
//! [`each_backend`] runs the body on a fresh SQLite file in a temporary directory, then on a
//! freshly created PostgreSQL database `ykt_test_<name>_<random>` (dropped afterwards, also
//! when the body panics) when a server is reachable at `YKT_TEST_PG_URL` (default
//! [`DEFAULT_PG_URL`]; connect timeout 2 s). Without a server it prints
//! `skipped PostgreSQL for <name>: <reason>` to stderr and passes, unless `YKT_REQUIRE_PG=1`
//! (CI), in which case it fails.
//!
//! This module is compiled in normal builds so other crates' tests can use it; it is small
//! and touches nothing unless called. Its setup failures panic: it is for tests only.

use crate::db::{Backend, Pool, Store};
use crate::error::StoreError;
use crate::vault::Vault;
use futures_util::FutureExt;
use sqlx::Connection;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// Environment variable naming the PostgreSQL server used by tests (an existing database to
/// connect to for `CREATE DATABASE`).
pub const PG_URL_ENV: &str = "YKT_TEST_PG_URL";
/// Used when [`PG_URL_ENV`] is not set.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// When set to `1`, an unreachable PostgreSQL fails the test instead of skipping it.
pub const REQUIRE_PG_ENV: &str = "YKT_REQUIRE_PG";

const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A store under test and where its bytes live.
#[derive(Debug, Clone)]
pub struct TestDb {
    pub store: Store,
    /// The key the store was opened with (to reopen it).
    pub vault: Vault,
    pub target: TestTarget,
}

/// Where a test database lives.
#[derive(Debug, Clone)]
pub enum TestTarget {
    /// A SQLite file (with `-wal` and `-shm` next to it).
    Sqlite { path: PathBuf, url: String },
    /// A PostgreSQL database created for this test.
    Postgres { url: String, database: String },
}

impl TestDb {
    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// The URL the store was opened with.
    pub fn url(&self) -> &str {
        match &self.target {
            TestTarget::Sqlite { url, .. } | TestTarget::Postgres { url, .. } => url,
        }
    }

    /// The SQLite file, if this is SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.target {
            TestTarget::Sqlite { path, .. } => Some(path),
            TestTarget::Postgres { .. } => None,
        }
    }

    /// Open a second store on the same database with the same key (runs the migrations
    /// again).
    pub async fn reopen(&self) -> Result<Store, StoreError> {
        Store::connect(self.url(), self.vault.clone()).await
    }

    /// Everything the database holds, as raw bytes, for scanning: the SQLite file and its
    /// WAL after `PRAGMA wal_checkpoint(TRUNCATE)`; for PostgreSQL the output of `pg_dump`,
    /// or, when `pg_dump` is not installed or fails, every row of every table of the `public`
    /// schema rendered as text.
    pub async fn raw_bytes(&self) -> Result<Vec<u8>, String> {
        match &self.target {
            TestTarget::Sqlite { path, .. } => {
                exec(&self.store, "PRAGMA wal_checkpoint(TRUNCATE)")
                    .await
                    .map_err(|e| e.to_string())?;
                let mut bytes = std::fs::read(path).map_err(|e| e.to_string())?;
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                if let Ok(w) = std::fs::read(PathBuf::from(wal)) {
                    bytes.extend_from_slice(&w);
                }
                Ok(bytes)
            }
            TestTarget::Postgres { url, .. } => {
                match std::process::Command::new("pg_dump")
                    .arg("--no-owner")
                    .arg(url)
                    .output()
                {
                    Ok(out) if out.status.success() => return Ok(out.stdout),
                    Ok(out) => eprintln!(
                        "pg_dump failed ({}), scanning tables instead: {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                    Err(e) => eprintln!("pg_dump not usable ({e}), scanning tables instead"),
                }
                self.pg_tables_as_text().await
            }
        }
    }

    async fn pg_tables_as_text(&self) -> Result<Vec<u8>, String> {
        let Pool::Postgres(p) = &self.store.pool else {
            return Err("not PostgreSQL".into());
        };
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
        )
        .fetch_all(p)
        .await
        .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for t in tables {
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("SELECT CAST(t AS TEXT) FROM \"{t}\" t"))
                    .fetch_all(p)
                    .await
                    .map_err(|e| e.to_string())?;
            for r in rows {
                out.extend_from_slice(t.as_bytes());
                out.push(b' ');
                out.extend_from_slice(r.as_bytes());
                out.push(b'\n');
            }
        }
        Ok(out)
    }
}

/// Execute raw SQL (one or more statements, no parameters) on the store's pool. For tests
/// that need to reach behind the repository API (tampering, inspecting storage).
pub async fn exec(store: &Store, sql: &str) -> Result<u64, StoreError> {
    Ok(match &store.pool {
        Pool::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await?.rows_affected(),
        Pool::Postgres(p) => sqlx::raw_sql(sql).execute(p).await?.rows_affected(),
    })
}

/// `SELECT COUNT(*) FROM <table>`.
pub async fn count(store: &Store, table: &str) -> Result<i64, StoreError> {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    Ok(match &store.pool {
        Pool::Sqlite(p) => sqlx::query_scalar(&sql).fetch_one(p).await?,
        Pool::Postgres(p) => sqlx::query_scalar(&sql).fetch_one(p).await?,
    })
}

/// A fresh SQLite store in a new temporary directory (deleted when the `TempDir` drops).
pub async fn sqlite_db() -> (TestDb, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("ykt.db");
    let url = format!("sqlite://{}", path.display());
    let (vault, _) = Vault::generate();
    let store = Store::connect(&url, vault.clone())
        .await
        .expect("open the SQLite test store");
    (
        TestDb {
            store,
            vault,
            target: TestTarget::Sqlite { path, url },
        },
        dir,
    )
}

/// Why PostgreSQL is not available, remembered so later tests skip without waiting again.
static PG_UNAVAILABLE: OnceLock<String> = OnceLock::new();

fn pg_admin_url() -> String {
    std::env::var(PG_URL_ENV).unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

fn pg_required() -> bool {
    std::env::var(REQUIRE_PG_ENV).is_ok_and(|v| v == "1")
}

/// `url` with its database replaced by `database` (query string kept).
fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let rest = &base[scheme_end..];
    let authority = rest.split_once('/').map(|(a, _)| a).unwrap_or(rest);
    let mut out = format!("{}{}/{}", &base[..scheme_end], authority, database);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn pg_admin() -> Result<sqlx::PgConnection, String> {
    if let Some(reason) = PG_UNAVAILABLE.get() {
        return Err(reason.clone());
    }
    let url = pg_admin_url();
    let result =
        match tokio::time::timeout(PG_CONNECT_TIMEOUT, sqlx::PgConnection::connect(&url)).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(format!("cannot connect to {PG_URL_ENV}: {e}")),
            Err(_) => Err(format!(
                "no answer from {PG_URL_ENV} within {PG_CONNECT_TIMEOUT:?}"
            )),
        };
    if let Err(reason) = &result {
        let _ = PG_UNAVAILABLE.set(reason.clone());
    }
    result
}

fn test_database_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("ykt_test_{clean}_{:08x}", rand::random::<u32>())
}

/// A fresh PostgreSQL database and a store on it, or why not. Drop it with
/// [`drop_postgres_db`].
pub async fn postgres_db(name: &str) -> Result<TestDb, String> {
    let mut admin = pg_admin().await?;
    let database = test_database_name(name);
    sqlx::raw_sql(&format!("CREATE DATABASE \"{database}\""))
        .execute(&mut admin)
        .await
        .map_err(|e| format!("CREATE DATABASE failed: {e}"))?;
    let _ = admin.close().await;
    let url = url_with_database(&pg_admin_url(), &database);
    let (vault, _) = Vault::generate();
    match Store::connect(&url, vault.clone()).await {
        Ok(store) => Ok(TestDb {
            store,
            vault,
            target: TestTarget::Postgres { url, database },
        }),
        Err(e) => {
            drop_database(&database).await;
            panic!("open the PostgreSQL test store: {e}");
        }
    }
}

async fn drop_database(database: &str) {
    match pg_admin().await {
        Ok(mut admin) => {
            if let Err(e) = sqlx::raw_sql(&format!(
                "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
            ))
            .execute(&mut admin)
            .await
            {
                eprintln!("could not drop test database {database}: {e}");
            }
            let _ = admin.close().await;
        }
        Err(e) => eprintln!("could not drop test database {database}: {e}"),
    }
}

/// Close the store and drop its PostgreSQL database (no-op for SQLite).
pub async fn drop_postgres_db(db: TestDb) {
    db.store.close().await;
    if let TestTarget::Postgres { database, .. } = &db.target {
        drop_database(database).await;
    }
}

/// Run `f` on a fresh SQLite store, then on a fresh PostgreSQL store if a server is reachable
/// (see the module docs).
pub async fn each_backend<F, Fut>(name: &str, f: F)
where
    F: Fn(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    {
        let (db, _dir) = sqlite_db().await;
        let store = db.store.clone();
        f(db).await;
        store.close().await;
    }

    match postgres_db(name).await {
        Ok(db) => {
            let kept = db.clone();
            let outcome = AssertUnwindSafe(f(db)).catch_unwind().await;
            drop_postgres_db(kept).await;
            if let Err(panic) = outcome {
                std::panic::resume_unwind(panic);
            }
        }
        Err(reason) if pg_required() => {
            panic!(
                "PostgreSQL is required ({REQUIRE_PG_ENV}=1) but unavailable for {name}: {reason}"
            )
        }
        Err(reason) => eprintln!("skipped PostgreSQL for {name}: {reason}"),
    }
}

/// A fresh, empty PostgreSQL database (no store opened on it): `(url, database)`, or why
/// not. Drop it with [`drop_test_database`].
pub async fn empty_postgres_database(name: &str) -> Result<(String, String), String> {
    let mut admin = pg_admin().await?;
    let database = test_database_name(name);
    sqlx::raw_sql(&format!("CREATE DATABASE \"{database}\""))
        .execute(&mut admin)
        .await
        .map_err(|e| format!("CREATE DATABASE failed: {e}"))?;
    let _ = admin.close().await;
    Ok((url_with_database(&pg_admin_url(), &database), database))
}

/// A new database `name` (made unique like every test database) copied from the database
/// `template` (`CREATE DATABASE … TEMPLATE`, which needs no other session on `template`):
/// its URL and name. For tests that prepare a database once and run many cases on copies.
pub async fn copy_postgres_database(
    template: &str,
    name: &str,
) -> Result<(String, String), String> {
    let mut admin = pg_admin().await?;
    let database = test_database_name(name);
    sqlx::raw_sql(&format!(
        "CREATE DATABASE \"{database}\" TEMPLATE \"{template}\""
    ))
    .execute(&mut admin)
    .await
    .map_err(|e| format!("CREATE DATABASE … TEMPLATE failed: {e}"))?;
    let _ = admin.close().await;
    Ok((url_with_database(&pg_admin_url(), &database), database))
}

/// Whether PostgreSQL is required (`YKT_REQUIRE_PG=1`): a test that cannot reach it fails
/// instead of saying it skipped.
pub fn postgres_required() -> bool {
    pg_required()
}

/// Drop a database made by [`empty_postgres_database`] (open connections are ended).
pub async fn drop_test_database(database: &str) {
    drop_database(database).await;
}

/// Run `f` with `None` (the test uses a SQLite file of its own), then, when a PostgreSQL
/// server is reachable, with the URL of a fresh, empty database, dropped afterwards (also
/// when `f` panics). For tests whose program under test opens the database itself with its
/// own key (the real binary, the composition root). Without a server it prints `skipped
/// PostgreSQL for <name>: <reason>`, or fails under `YKT_REQUIRE_PG=1`, as [`each_backend`].
pub async fn each_database_url<F, Fut>(name: &str, f: F)
where
    F: Fn(Option<String>) -> Fut,
    Fut: Future<Output = ()>,
{
    f(None).await;
    match empty_postgres_database(name).await {
        Ok((url, database)) => {
            let outcome = AssertUnwindSafe(f(Some(url))).catch_unwind().await;
            drop_database(&database).await;
            if let Err(panic) = outcome {
                std::panic::resume_unwind(panic);
            }
        }
        Err(reason) if pg_required() => {
            panic!(
                "PostgreSQL is required ({REQUIRE_PG_ENV}=1) but unavailable for {name}: {reason}"
            )
        }
        Err(reason) => eprintln!("skipped PostgreSQL for {name}: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_rewrite() {
        assert_eq!(
            url_with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            url_with_database("postgres://u:p@h/db?sslmode=disable", "y"),
            "postgres://u:p@h/y?sslmode=disable"
        );
        assert_eq!(url_with_database("postgres://h", "z"), "postgres://h/z");
        let n = test_database_name("Cards-Import");
        assert!(n.starts_with("ykt_test_cards_import_") && n.len() <= 63);
    }
}
