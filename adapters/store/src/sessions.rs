//! Console sessions and login throttling (migration 0005, issue #6).
//!
//! A session is found by the SHA-256 of its token (the token itself is never stored); times
//! are unix seconds supplied by the caller, so tests can move the clock.

use crate::db::{Store, with_pool, with_write};
use crate::error::{Result, StoreError};

/// One stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub token_hash: String,
    pub login: String,
    pub csrf: String,
    pub created_at: i64,
    pub last_seen: i64,
    pub expires_at: i64,
}

/// Throttling policy: `max_failures` failed logins within `window` seconds lock the key for
/// `lock` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    pub max_failures: i64,
    pub window: i64,
    pub lock: i64,
}

impl Default for ThrottlePolicy {
    /// 5 failures within 15 minutes lock for 15 minutes.
    fn default() -> ThrottlePolicy {
        ThrottlePolicy {
            max_failures: 5,
            window: 15 * 60,
            lock: 15 * 60,
        }
    }
}

impl Store {
    /// Store a new session.
    pub async fn create_session(&self, s: &SessionRow) -> Result<()> {
        with_write!(self, |p| {
            sqlx::query(
                "INSERT INTO web_sessions (token_hash, login, csrf, created_at, last_seen, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&s.token_hash)
            .bind(&s.login)
            .bind(&s.csrf)
            .bind(s.created_at)
            .bind(s.last_seen)
            .bind(s.expires_at)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// The session with this token hash, if any.
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>> {
        let row: Option<(String, String, String, i64, i64, i64)> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT token_hash, login, csrf, created_at, last_seen, expires_at FROM web_sessions \
                 WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(p)
            .await?
        });
        Ok(row.map(|t| SessionRow {
            token_hash: t.0,
            login: t.1,
            csrf: t.2,
            created_at: t.3,
            last_seen: t.4,
            expires_at: t.5,
        }))
    }

    /// Record activity on a session (idle expiry counts from here).
    pub async fn touch_session(&self, token_hash: &str, now: i64) -> Result<()> {
        with_write!(self, |p| {
            sqlx::query("UPDATE web_sessions SET last_seen = $2 WHERE token_hash = $1")
                .bind(token_hash)
                .bind(now)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Delete one session (logout, expiry).
    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        with_write!(self, |p| {
            sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Delete every session of a user (disabled, password reset). Returns how many.
    pub async fn delete_sessions_of(&self, login: &str) -> Result<u64> {
        Ok(with_write!(self, |p| {
            sqlx::query("DELETE FROM web_sessions WHERE login = $1")
                .bind(login)
                .execute(p)
                .await?
                .rows_affected()
        }))
    }

    /// Set (or replace) a user's password hash (an argon2id PHC string).
    pub async fn set_password_hash(&self, login: &str, hash: &str) -> Result<()> {
        let n = with_write!(self, |p| {
            sqlx::query("UPDATE users SET password_hash = $2 WHERE login = $1")
                .bind(login)
                .bind(hash)
                .execute(p)
                .await?
                .rows_affected()
        });
        if n == 0 {
            return Err(StoreError::Invalid {
                reason: format!("用户「{login}」不存在 (no such user)"),
            });
        }
        Ok(())
    }

    /// Disable or re-enable a user.
    pub async fn set_user_disabled(&self, login: &str, disabled: bool) -> Result<()> {
        let n = with_write!(self, |p| {
            sqlx::query("UPDATE users SET disabled = $2 WHERE login = $1")
                .bind(login)
                .bind(i64::from(disabled))
                .execute(p)
                .await?
                .rows_affected()
        });
        if n == 0 {
            return Err(StoreError::Invalid {
                reason: format!("用户「{login}」不存在 (no such user)"),
            });
        }
        Ok(())
    }

    /// Until when `key` is locked (unix seconds), if it is locked at `now`.
    pub async fn login_locked(&self, key: &str, now: i64) -> Result<Option<i64>> {
        let until: Option<i64> = with_pool!(self, |p| {
            sqlx::query_scalar("SELECT locked_until FROM login_throttle WHERE key = $1")
                .bind(key)
                .fetch_optional(p)
                .await?
        });
        Ok(until.filter(|u| *u > now))
    }

    /// Count a failed login against `key`; returns the lock's end when this failure locks it.
    pub async fn record_login_failure(
        &self,
        key: &str,
        now: i64,
        policy: ThrottlePolicy,
    ) -> Result<Option<i64>> {
        let mut tx = self.begin().await?;
        let cur: Option<(i64, i64)> = crate::db::with_tx!(tx, |c| {
            sqlx::query_as("SELECT failures, window_start FROM login_throttle WHERE key = $1")
                .bind(key)
                .fetch_optional(&mut *c)
                .await?
        });
        let (failures, start) = match cur {
            Some((n, start)) if now - start < policy.window => (n + 1, start),
            _ => (1, now),
        };
        let locked_until = if failures >= policy.max_failures {
            now + policy.lock
        } else {
            0
        };
        crate::db::with_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO login_throttle (key, failures, window_start, locked_until) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, \
                 window_start = excluded.window_start, locked_until = excluded.locked_until",
            )
            .bind(key)
            .bind(failures)
            .bind(start)
            .bind(locked_until)
            .execute(&mut *c)
            .await?;
        });
        tx.commit().await?;
        Ok((locked_until > 0).then_some(locked_until))
    }

    /// Forget the failures of `key` (after a successful login).
    pub async fn clear_login_failures(&self, key: &str) -> Result<()> {
        with_write!(self, |p| {
            sqlx::query("DELETE FROM login_throttle WHERE key = $1")
                .bind(key)
                .execute(p)
                .await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserRow;
    use crate::testing::each_backend;

    #[tokio::test]
    async fn sessions_and_throttling_on_both_backends() {
        each_backend("web_sessions", |db| async move {
            let store = db.store.clone();
            store
                .upsert_user(&UserRow {
                    login: "clerk".into(),
                    display_name: "经办".into(),
                    roles: vec!["dept_maker".into()],
                    region: "230102".into(),
                    password_hash: None,
                    disabled: false,
                })
                .await
                .unwrap();
            let s = SessionRow {
                token_hash: "ab".repeat(32),
                login: "clerk".into(),
                csrf: "c".into(),
                created_at: 100,
                last_seen: 100,
                expires_at: 100 + 3600,
            };
            store.create_session(&s).await.unwrap();
            assert_eq!(store.session(&s.token_hash).await.unwrap(), Some(s.clone()));
            store.touch_session(&s.token_hash, 200).await.unwrap();
            assert_eq!(
                store
                    .session(&s.token_hash)
                    .await
                    .unwrap()
                    .unwrap()
                    .last_seen,
                200
            );
            assert_eq!(store.delete_sessions_of("clerk").await.unwrap(), 1);
            assert_eq!(store.session(&s.token_hash).await.unwrap(), None);

            let policy = ThrottlePolicy::default();
            for i in 0..4 {
                assert_eq!(
                    store
                        .record_login_failure("login:clerk", 1000 + i, policy)
                        .await
                        .unwrap(),
                    None
                );
            }
            assert_eq!(store.login_locked("login:clerk", 1004).await.unwrap(), None);
            let until = store
                .record_login_failure("login:clerk", 1004, policy)
                .await
                .unwrap();
            assert_eq!(until, Some(1004 + 900));
            assert_eq!(
                store.login_locked("login:clerk", 1005).await.unwrap(),
                Some(1904)
            );
            assert_eq!(store.login_locked("login:clerk", 1904).await.unwrap(), None);
            store.clear_login_failures("login:clerk").await.unwrap();
            assert_eq!(store.login_locked("login:clerk", 1005).await.unwrap(), None);

            store
                .set_password_hash("clerk", "$argon2id$x")
                .await
                .unwrap();
            store.set_user_disabled("clerk", true).await.unwrap();
            let u = store.get_user("clerk").await.unwrap().unwrap();
            assert_eq!(u.password_hash.as_deref(), Some("$argon2id$x"));
            assert!(u.disabled);
            assert!(store.set_user_disabled("nobody", true).await.is_err());
        })
        .await;
    }
}
