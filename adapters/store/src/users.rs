//! Operator accounts, kept as plain strings until the kernel has its `User`/`Role` types.

use crate::db::{Store, with_pool, with_write};
use crate::error::{Result, StoreError};
use crate::imports::now_rfc3339;
use ykt_kernel::ident::RegionCode;

/// One operator account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub login: String,
    pub display_name: String,
    /// Role codes (e.g. `dept_maker`); none may contain a comma.
    pub roles: Vec<String>,
    /// The region the user may act in: stored as the twelve-digit code.
    pub region: String,
    /// argon2id PHC string, `None` until a password is set.
    pub password_hash: Option<String>,
    pub disabled: bool,
}

type UserTuple = (String, String, String, String, Option<String>, i64);

fn decode(t: UserTuple) -> Result<UserRow> {
    let (login, display_name, roles, region, password_hash, disabled) = t;
    let roles = roles
        .split(',')
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    let disabled = match disabled {
        0 => false,
        1 => true,
        _ => return Err(StoreError::corrupt("users.disabled")),
    };
    Ok(UserRow {
        login,
        display_name,
        roles,
        region,
        password_hash,
        disabled,
    })
}

impl Store {
    /// Create the user or replace everything but its creation time.
    pub async fn upsert_user(&self, user: &UserRow) -> Result<()> {
        let login = user.login.as_str();
        if login.trim().is_empty() || login.trim() != login {
            return Err(StoreError::Invalid {
                reason: "登录名为空或首尾有空白 (empty login or surrounding whitespace)".into(),
            });
        }
        if let Some(bad) = user.roles.iter().find(|r| r.is_empty() || r.contains(',')) {
            return Err(StoreError::Invalid {
                reason: format!("角色代码无效 (invalid role code {bad:?})"),
            });
        }
        let region = RegionCode::parse(&user.region)
            .map_err(|_| StoreError::Invalid {
                reason: format!("用户区划代码无效 (invalid region code {:?})", user.region),
            })?
            .full();
        let roles = user.roles.join(",");
        let disabled = i64::from(user.disabled);
        let created_at = now_rfc3339();
        with_write!(self, |p| {
            sqlx::query(
                "INSERT INTO users (login, display_name, roles, region, password_hash, disabled, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (login) DO UPDATE SET display_name = excluded.display_name, \
                 roles = excluded.roles, region = excluded.region, \
                 password_hash = excluded.password_hash, disabled = excluded.disabled",
            )
            .bind(login)
            .bind(&user.display_name)
            .bind(&roles)
            .bind(&region)
            .bind(&user.password_hash)
            .bind(disabled)
            .bind(&created_at)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// The user `login`, if any.
    pub async fn get_user(&self, login: &str) -> Result<Option<UserRow>> {
        let row = with_pool!(self, |p| {
            sqlx::query_as::<_, UserTuple>(
                "SELECT login, display_name, roles, region, password_hash, disabled FROM users \
                 WHERE login = $1",
            )
            .bind(login)
            .fetch_optional(p)
            .await?
        });
        row.map(decode).transpose()
    }

    /// All users, ordered by login.
    pub async fn list_users(&self) -> Result<Vec<UserRow>> {
        let rows = with_pool!(self, |p| {
            sqlx::query_as::<_, UserTuple>(
                "SELECT login, display_name, roles, region, password_hash, disabled FROM users \
                 ORDER BY login",
            )
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(decode).collect()
    }
}
