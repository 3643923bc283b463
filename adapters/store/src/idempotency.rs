//! Idempotency keys of the JSON API (migration `0007`): the first request with a key claims
//! it, its response is stored, and every repeat with the same request gets that response
//! again; see `ykt_http::web::idempotency`.

use crate::db::{Store, with_pool, with_tx};
use crate::error::Result;

/// What a key already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub method: String,
    pub path: String,
    pub request_sha256: String,
    /// `None` while the first request is still running.
    pub response: Option<StoredResponse>,
}

/// A response kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Store {
    /// Claim `key` for `login`'s request; `true` when this request is the first (it must
    /// then [`Store::idempotency_finish`] or [`Store::idempotency_release`] the key).
    pub async fn idempotency_claim(
        &self,
        login: &str,
        key: &str,
        method: &str,
        path: &str,
        request_sha256: &str,
        now_unix: i64,
    ) -> Result<bool> {
        // Writes go through a transaction, so that on SQLite they wait their turn at the
        // store's write gate (a roster import holds the write lock for seconds).
        let mut tx = self.begin().await?;
        let n = with_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO idempotency_keys (login, idem_key, method, path, request_sha256, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (login, idem_key) DO NOTHING",
            )
            .bind(login)
            .bind(key)
            .bind(method)
            .bind(path)
            .bind(request_sha256)
            .bind(now_unix)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(n == 1)
    }

    /// What `key` of `login` holds, if it was claimed.
    pub async fn idempotency_get(&self, login: &str, key: &str) -> Result<Option<KeyRow>> {
        type T = (
            String,
            String,
            String,
            Option<i64>,
            Option<String>,
            Option<Vec<u8>>,
        );
        let row: Option<T> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT method, path, request_sha256, status, content_type, response FROM idempotency_keys WHERE login = $1 AND idem_key = $2",
            )
            .bind(login)
            .bind(key)
            .fetch_optional(p)
            .await?
        });
        Ok(
            row.map(|(method, path, request_sha256, status, ct, body)| KeyRow {
                method,
                path,
                request_sha256,
                response: status.map(|s| StoredResponse {
                    status: u16::try_from(s).unwrap_or(500),
                    content_type: ct,
                    body: body.unwrap_or_default(),
                }),
            }),
        )
    }

    /// Store the first request's response.
    pub async fn idempotency_finish(
        &self,
        login: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        with_tx!(tx, |c| {
            sqlx::query(
                "UPDATE idempotency_keys SET status = $1, content_type = $2, response = $3 WHERE login = $4 AND idem_key = $5",
            )
            .bind(i64::from(response.status))
            .bind(response.content_type.as_deref())
            .bind(response.body.as_slice())
            .bind(login)
            .bind(key)
            .execute(&mut *c)
            .await?;
        });
        tx.commit().await
    }

    /// Give a key back (the first request failed inside the server: it may be retried).
    pub async fn idempotency_release(&self, login: &str, key: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        with_tx!(tx, |c| {
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE login = $1 AND idem_key = $2 AND status IS NULL",
            )
            .bind(login)
            .bind(key)
            .execute(&mut *c)
            .await?;
        });
        tx.commit().await
    }
}
