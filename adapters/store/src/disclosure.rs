//! The platform's own disclosure channel: notices as published (masked text only) and the
//! records of the public personal lookup (补贴查询), keyed by the person's blind index. The web
//! portal reads them; publishing twice is harmless (same id or same record: no change).

use crate::db::{Store, TxInner, with_pool, with_tx, with_write};
use crate::error::Result;
use async_trait::async_trait;
use ykt_kernel::Fen;
use ykt_kernel::ports::{DisclosureChannel, LookupRecord, Notice, PortError};

/// Insert `n` unless a notice with its id exists; whether it was inserted.
async fn insert_notice_in(tx: &mut crate::db::Tx, n: &Notice) -> Result<bool> {
    Ok(with_tx!(tx, |c| {
        sqlx::query(
                "INSERT INTO notices (id, kind, region, project_name, title, body, published_on, until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&n.id)
            .bind(&n.kind)
            .bind(n.region.full())
            .bind(&n.project_name)
            .bind(&n.title)
            .bind(&n.body)
            .bind(&n.published_on)
            .bind(n.until.as_deref())
            .execute(&mut *c)
            .await?
            .rows_affected()
    }) == 1)
}

fn port(e: crate::error::StoreError) -> PortError {
    PortError::new("信息公开", e.to_string(), true)
}

/// A published notice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NoticeRow {
    pub id: String,
    pub kind: String,
    pub region: String,
    pub project_name: String,
    pub title: String,
    pub body: String,
    pub published_on: String,
    pub until: Option<String>,
    pub withdrawn: bool,
}

impl Store {
    /// Publish `n` and record `audit` with it, once: in one transaction the notice is inserted
    /// unless one with its id exists, and the audit entry is appended only when it was. Returns
    /// whether this call published it. Two operators posting the same notice at the same moment
    /// make one notice and one audit entry.
    pub async fn publish_notice_once(
        &self,
        n: &Notice,
        audit: ykt_kernel::audit::AuditRecord,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let inserted = insert_notice_in(&mut tx, n).await?;
        if inserted {
            self.append_audit_in(&mut tx, audit).await?;
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(inserted)
    }

    /// Notices, newest first, optionally those whose region lies within `region_prefix`.
    pub async fn notices(&self, region_prefix: Option<&str>) -> Result<Vec<NoticeRow>> {
        let like = format!("{}%", region_prefix.unwrap_or(""));
        type T = (
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT id, kind, region, project_name, title, body, published_on, until, withdrawn_at FROM notices WHERE region LIKE $1 ORDER BY published_on DESC, id")
                .bind(&like)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|t| NoticeRow {
                id: t.0,
                kind: t.1,
                region: t.2,
                project_name: t.3,
                title: t.4,
                body: t.5,
                published_on: t.6,
                until: t.7,
                withdrawn: t.8.is_some(),
            })
            .collect())
    }

    /// `(id, published_on, withdrawn)` of the notices whose region lies within
    /// `region_prefix`, ordered as [`Store::notices`], without their bodies (a province-scale
    /// batch's notices are tens of MB each).
    pub async fn notice_dates(
        &self,
        region_prefix: Option<&str>,
    ) -> Result<Vec<(String, String, bool)>> {
        let like = format!("{}%", region_prefix.unwrap_or(""));
        let rows: Vec<(String, String, Option<String>)> = with_pool!(self, |p| {
            sqlx::query_as("SELECT id, published_on, withdrawn_at FROM notices WHERE region LIKE $1 ORDER BY published_on DESC, id")
                .bind(&like)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, on, withdrawn)| (id, on, withdrawn.is_some()))
            .collect())
    }

    /// One notice by id.
    /// The ids of [`Store::notices`], in the same order, without their bodies (a
    /// province-scale cycle's village lists hold every line of every batch).
    pub async fn notice_ids(&self, region_prefix: Option<&str>) -> Result<Vec<String>> {
        let like = format!("{}%", region_prefix.unwrap_or(""));
        Ok(with_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT id FROM notices WHERE region LIKE $1 ORDER BY published_on DESC, id",
            )
            .bind(&like)
            .fetch_all(p)
            .await?
        }))
    }

    pub async fn notice(&self, id: &str) -> Result<Option<NoticeRow>> {
        type T = (
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
        );
        let row: Option<T> = with_pool!(self, |p| {
            sqlx::query_as("SELECT id, kind, region, project_name, title, body, published_on, until, withdrawn_at FROM notices WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?
        });
        Ok(row.map(|t| NoticeRow {
            id: t.0,
            kind: t.1,
            region: t.2,
            project_name: t.3,
            title: t.4,
            body: t.5,
            published_on: t.6,
            until: t.7,
            withdrawn: t.8.is_some(),
        }))
    }

    /// The public lookup key of a person (补贴查询): the vault's keyed blind index of the
    /// resident ID (normalised 18 characters) and the name (normalised middle dots, no
    /// spaces) together, in hex. A lookup with a wrong name finds nothing, exactly like a
    /// lookup of someone never paid, so an answer cannot tell which part was wrong; the key
    /// reveals neither.
    pub fn lookup_key(&self, id: &str, name: &str) -> String {
        let name = ykt_kernel::intake::normalise_name(name);
        hex::encode(
            self.vault
                .blind_index(crate::IndexKind::ResidentId, &format!("{id}|{name}")),
        )
    }

    /// The lookup records of several people at once (by lookup key; at most 500 keys), in
    /// key order, each person's newest first. One query for many concurrent lookups: the
    /// portal gathers the lookups that arrive while the database is busy (see
    /// `ykt_http::portal::batch`), which saves a round trip (and, on SQLite, two thread
    /// hand-overs) per lookup. For a run of such queries, [`Store::lookup_reader`] keeps one
    /// connection instead of taking one from the pool each time.
    pub async fn lookup_records_many(&self, person_keys: &[String]) -> Result<Vec<LookupRecord>> {
        LookupReader {
            store: self.clone(),
            held: None,
            direct: false,
        }
        .lookup_records_many(person_keys)
        .await
    }

    /// A reader for a run of lookups that keeps its connection (see [`LookupReader`]).
    pub fn lookup_reader(&self) -> LookupReader {
        LookupReader {
            store: self.clone(),
            held: None,
            direct: self.sqlite_file.is_some(),
        }
    }

    /// The lookup records of one person (by lookup key).
    pub async fn lookup_records(&self, person_key: &str) -> Result<Vec<LookupRecord>> {
        let rows: Vec<(String, String, String, String, i64, String, String)> = with_pool!(
            self,
            |p| {
                sqlx::query_as("SELECT person_key, name_masked, project_name, period, amount_fen, date, status FROM lookup_records WHERE person_key = $1 ORDER BY date DESC, period DESC")
                .bind(person_key)
                .fetch_all(p)
                .await?
            }
        );
        Ok(rows.into_iter().filter_map(record).collect())
    }
}

/// A stored lookup record (a row with an unreadable period is skipped: it was never written
/// by this code).
/// A lookup record as read: key, masked name, project, period, amount in 分, date, status.
type LookupRow = (String, String, String, String, i64, String, String);

/// A connection of the pool, held; or the reader's own.
enum Held {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
    /// SQLite on a file: a read-only connection of the reader's own, queried on the calling
    /// thread (see [`LookupReader`]).
    Direct(rusqlite::Connection),
}

/// Statements a direct connection keeps prepared: one per number of keys in a query, and a
/// busy portal's batches have from one to a few dozen.
const DIRECT_STATEMENTS: usize = 64;

/// A read-only connection to the store's SQLite file with the pool's settings.
fn open_direct(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let c = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(crate::db::SQLITE_BUSY_TIMEOUT)?;
    c.execute_batch(crate::db::SQLITE_READ_CACHE)?;
    c.set_prepared_statement_cache_capacity(DIRECT_STATEMENTS);
    Ok(c)
}

/// The query on a direct connection.
fn fetch_direct(
    c: &rusqlite::Connection,
    sql: &str,
    person_keys: &[String],
) -> rusqlite::Result<Vec<LookupRow>> {
    let mut st = c.prepare_cached(sql)?;
    let rows = st.query_map(rusqlite::params_from_iter(person_keys), |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ))
    })?;
    rows.collect()
}

/// Lookups on one connection kept between queries: the portal's batcher keeps one per query
/// slot (`ykt_http::portal::batch`).
///
/// PostgreSQL (and SQLite in memory): a connection of the pool, kept while lookups keep
/// arriving. sqlx tests every connection given back to its pool with a ping, in a task of
/// its own (a round trip to the server); a reader pays it once per run of queries. Give the
/// connection back when idle ([`LookupReader::release`], or drop the reader): the pool's
/// `close` waits for every connection.
///
/// SQLite on a file: a read-only connection of the reader's own (rusqlite, the same SQLite
/// library), queried on the calling thread. sqlx runs each SQLite connection on a thread of
/// its own, and under load the portal's CPU went more to handing each query to that thread
/// and back (waking it, parking it: measured, the kernel's scheduler took two thirds of that
/// thread's time) than to SQLite's work. A lookup query is bounded (at most 500 keys, each
/// a probe of the primary key, from SQLite's page cache or the file cache), so it runs where
/// the request is, like the hashing and the JSON around it. It reads in WAL mode beside the
/// platform's writers (each query sees the last commit) and is kept when idle (it holds no
/// lock then and the pool's `close` does not wait for it).
pub struct LookupReader {
    store: Store,
    held: Option<Held>,
    /// Use a direct connection (SQLite on a file).
    direct: bool,
}

impl LookupReader {
    /// [`Store::lookup_records_many`] on the held connection (taken from the pool first if
    /// none is held). After an error the connection goes back to the pool, which checks it
    /// and closes it if it is broken; the next query takes another.
    pub async fn lookup_records_many(
        &mut self,
        person_keys: &[String],
    ) -> Result<Vec<LookupRecord>> {
        if person_keys.is_empty() {
            return Ok(Vec::new());
        }
        if person_keys.len() > 500 {
            return Err(crate::error::StoreError::Invalid {
                reason: format!(
                    "一次最多查询500个键，收到{}个 (at most 500 keys)",
                    person_keys.len()
                ),
            });
        }
        let placeholders: Vec<String> = (1..=person_keys.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT person_key, name_masked, project_name, period, amount_fen, date, status FROM lookup_records WHERE person_key IN ({}) ORDER BY person_key, date DESC, period DESC",
            placeholders.join(", ")
        );
        let mut held = match (self.held.take(), &self.store.sqlite_file) {
            (Some(h), _) => h,
            (None, Some(path)) if self.direct => {
                Held::Direct(open_direct(path).map_err(direct_error)?)
            }
            (None, _) => match &self.store.pool {
                crate::db::Pool::Sqlite(p) => Held::Sqlite(p.acquire().await?),
                crate::db::Pool::Postgres(p) => Held::Postgres(p.acquire().await?),
            },
        };
        macro_rules! fetch {
            ($c:expr) => {{
                let mut q = sqlx::query_as::<_, LookupRow>(&sql);
                for k in person_keys {
                    q = q.bind(k);
                }
                q.fetch_all(&mut **$c).await
            }};
        }
        let rows = match &mut held {
            Held::Sqlite(c) => fetch!(c)?,
            Held::Postgres(c) => fetch!(c)?,
            Held::Direct(c) => fetch_direct(c, &sql, person_keys).map_err(direct_error)?,
        };
        self.held = Some(held);
        Ok(rows.into_iter().filter_map(record).collect())
    }

    /// Give a held connection of the pool back (a direct SQLite connection is kept).
    pub fn release(&mut self) {
        if !matches!(self.held, Some(Held::Direct(_))) {
            self.held = None;
        }
    }

    /// Whether a connection of the pool is held.
    pub fn holds_pool_connection(&self) -> bool {
        matches!(self.held, Some(Held::Sqlite(_) | Held::Postgres(_)))
    }

    /// Whether the reader reads through a connection of its own (SQLite on a file).
    pub fn is_direct(&self) -> bool {
        self.direct
    }
}

/// A direct connection's failure, as the store reports a database error.
fn direct_error(e: rusqlite::Error) -> crate::error::StoreError {
    crate::error::StoreError::Direct(e)
}

fn record(t: LookupRow) -> Option<LookupRecord> {
    Some(LookupRecord {
        person_key: t.0,
        name_masked: t.1,
        project_name: t.2,
        period: ykt_kernel::Period::parse(&t.3).ok()?,
        amount: Fen(t.4),
        date: t.5,
        status: t.6,
    })
}

#[async_trait]
impl DisclosureChannel for Store {
    async fn publish(&self, n: &Notice) -> std::result::Result<String, PortError> {
        let run = async {
            let mut tx = self.begin().await?;
            insert_notice_in(&mut tx, n).await?;
            tx.commit().await
        };
        run.await.map_err(port)?;
        Ok(n.id.clone())
    }

    async fn withdraw(&self, id: &str) -> std::result::Result<(), PortError> {
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        with_write!(self, |p| {
            sqlx::query(
                "UPDATE notices SET withdrawn_at = $1 WHERE id = $2 AND withdrawn_at IS NULL",
            )
            .bind(&at)
            .bind(id)
            .execute(p)
            .await
            .map_err(|e| port(e.into()))?;
        });
        Ok(())
    }

    /// All the records in one transaction and a few statements (one per record, each its own
    /// commit, made publication the slowest step of a large batch).
    async fn publish_records(
        &self,
        records: &[LookupRecord],
    ) -> std::result::Result<u64, PortError> {
        self.insert_lookup_records(records)
            .await
            .map_err(|e| port(e.into()))
    }
}

impl Store {
    async fn insert_lookup_records(&self, records: &[LookupRecord]) -> Result<u64> {
        const COLS: &str =
            "person_key, name_masked, project_name, period, amount_fen, date, status";
        let mut n = 0;
        let mut tx = self.begin().await?;
        match &mut tx.inner {
            TxInner::Sqlite(t) => {
                // 7 parameters a row: 1,000 rows stay far under SQLite's limit of 32,766.
                for chunk in records.chunks(1000) {
                    let values = vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                    let sql = format!(
                        "INSERT INTO lookup_records ({COLS}) VALUES {values} ON CONFLICT DO NOTHING"
                    );
                    let mut q = sqlx::query(&sql);
                    for r in chunk {
                        q = q
                            .bind(&r.person_key)
                            .bind(&r.name_masked)
                            .bind(&r.project_name)
                            .bind(r.period.to_string())
                            .bind(r.amount.0)
                            .bind(&r.date)
                            .bind(&r.status);
                    }
                    n += q.execute(&mut **t).await?.rows_affected();
                }
            }
            TxInner::Postgres(t) => {
                for chunk in records.chunks(50_000) {
                    let text = |f: fn(&LookupRecord) -> String| -> Vec<String> {
                        chunk.iter().map(f).collect()
                    };
                    n += sqlx::query(&format!(
                        "INSERT INTO lookup_records ({COLS}) \
                         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[]) \
                         ON CONFLICT DO NOTHING"
                    ))
                    .bind(text(|r| r.person_key.clone()))
                    .bind(text(|r| r.name_masked.clone()))
                    .bind(text(|r| r.project_name.clone()))
                    .bind(text(|r| r.period.to_string()))
                    .bind(chunk.iter().map(|r| r.amount.0).collect::<Vec<i64>>())
                    .bind(text(|r| r.date.clone()))
                    .bind(text(|r| r.status.clone()))
                    .execute(&mut **t)
                    .await?
                    .rows_affected();
                }
            }
        }
        tx.commit().await?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::each_backend;
    use ykt_kernel::Period;

    fn rec(key: &str, period: &str, fen: i64) -> LookupRecord {
        LookupRecord {
            person_key: key.into(),
            name_masked: "张*".into(),
            project_name: "农村最低生活保障金".into(),
            period: Period::parse(period).expect("period"),
            amount: Fen(fen),
            date: format!("{period}-28"),
            status: "已到账".into(),
        }
    }

    /// A reader answers as the store does, sees what is published after its first query,
    /// survives `release`, refuses more than 500 keys, and never keeps the pool from closing.
    #[tokio::test]
    async fn a_reader_answers_like_the_store_and_sees_new_records() {
        each_backend("lookup_reader", |db| async move {
            let s = &db.store;
            s.publish_records(&[rec("a", "2023-04", 100), rec("a", "2023-05", 200)])
                .await
                .expect("publish");
            let mut r = s.lookup_reader();
            assert_eq!(r.is_direct(), s.backend() == crate::Backend::Sqlite);
            let keys = vec!["a".to_string(), "b".to_string()];
            let got = r.lookup_records_many(&keys).await.expect("read");
            assert_eq!(got, s.lookup_records_many(&keys).await.expect("store"));
            assert_eq!(
                got.iter().map(|x| x.amount.0).collect::<Vec<_>>(),
                [200, 100],
                "newest first"
            );
            assert_eq!(r.holds_pool_connection(), !r.is_direct());
            r.release();
            assert!(!r.holds_pool_connection());

            s.publish_records(&[rec("b", "2023-05", 300)])
                .await
                .expect("publish");
            let got = r.lookup_records_many(&keys).await.expect("read again");
            assert_eq!(
                got.iter()
                    .map(|x| (x.person_key.as_str(), x.amount.0))
                    .collect::<Vec<_>>(),
                [("a", 200), ("a", 100), ("b", 300)]
            );
            let many: Vec<String> = (0..501).map(|i| format!("k{i}")).collect();
            assert!(matches!(
                r.lookup_records_many(&many).await,
                Err(crate::StoreError::Invalid { .. })
            ));
            r.release();
            tokio::time::timeout(std::time::Duration::from_secs(10), s.close())
                .await
                .expect("a released reader keeps no pool connection");
            drop(r);
        })
        .await;
    }
}
