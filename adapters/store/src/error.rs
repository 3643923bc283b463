//! The store's error type.
//!
//! Messages are Chinese first, English in parentheses. No variant ever carries a full resident
//! ID, bank account or phone number: conflicts name the constraint, not the value.

use sqlx::error::ErrorKind;
use ykt_kernel::audit::ChainError;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL or an option is unusable.
    #[error("数据库配置无效：{reason} (invalid database configuration: {reason})")]
    Config { reason: String },

    /// A unique constraint refused the write: the thing already exists.
    #[error("数据重复：{what} (conflict: {what} already exists)")]
    Conflict { what: String },

    /// The record changed since it was read: another user's change committed first (the
    /// optimistic lock of a batch's or a request's version). `what` says so to the operator.
    #[error("{what}")]
    Concurrent { what: String },

    /// Any other database failure.
    #[error("数据库访问失败 (database error: {0})")]
    Database(#[source] sqlx::Error),

    /// A read on the public lookup's own SQLite connection failed
    /// ([`crate::disclosure::LookupReader`]).
    #[error("数据库访问失败 (database error: {0})")]
    Direct(#[source] rusqlite::Error),

    /// Applying the migrations failed.
    #[error("数据库结构升级失败 (migration failed: {0})")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// The master key is malformed or the key file unusable. `reason` never contains the key.
    #[error("密钥无效：{reason} (invalid key: {reason})")]
    Key { reason: String },

    /// The database was written with another master key.
    #[error(
        "加密密钥与数据库不匹配 (the encryption key does not match the key this database was created with)"
    )]
    KeyMismatch,

    /// A ciphertext did not authenticate: wrong key or corrupted data.
    #[error("解密失败 (decryption failed: wrong key or corrupted data)")]
    Decrypt,

    /// A stored value could not be read back into its type.
    #[error("存储的数据已损坏：{what} (stored data is corrupt: {what})")]
    Corrupt { what: String },

    /// The record source of a bulk import failed; nothing of the import was kept.
    #[error(
        "导入数据第{index}条读取失败，本次导入未做任何更改 (record {index} of the import could not be read; nothing was imported)"
    )]
    Source {
        /// 1-based position of the failing record in the source.
        index: u64,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// An argument is invalid (e.g. a role code containing a comma).
    #[error("参数无效：{reason} (invalid input: {reason})")]
    Invalid { reason: String },

    /// The audit chain does not verify.
    #[error(transparent)]
    AuditChain(#[from] ChainError),

    /// A file could not be read or written (key file, SQLite directory).
    #[error("文件读写失败：{path} (I/O error on {path}: {source})")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    pub(crate) fn corrupt(what: impl Into<String>) -> StoreError {
        StoreError::Corrupt { what: what.into() }
    }

    /// Whether this is a [`StoreError::Conflict`] or a [`StoreError::Concurrent`] change.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            StoreError::Conflict { .. } | StoreError::Concurrent { .. }
        )
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        // PostgreSQL names the constraint; SQLite's message is "UNIQUE constraint failed:
        // table.column, ..." which names columns, never values.
        let conflict = match &e {
            sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation => {
                Some(match db.constraint() {
                    Some(c) => c.to_owned(),
                    None => db
                        .message()
                        .rsplit_once(": ")
                        .map(|(_, cols)| cols.to_owned())
                        .unwrap_or_else(|| "unique constraint".to_owned()),
                })
            }
            _ => None,
        };
        if let sqlx::Error::Database(db) = &e
            && db.code().is_some_and(|c| rolled_back_by_server(&c))
        {
            // The server rolled the whole transaction back: nothing of it was applied, so
            // the caller may do it again (a bank's post is answered 409, "repost").
            return StoreError::Concurrent {
                what: format!(
                    "与另一请求同时修改相同数据，已整体回退，请重试 (concurrent transaction rolled back: {})",
                    db.message()
                ),
            };
        }
        match conflict {
            Some(what) => StoreError::Conflict { what },
            None => StoreError::Database(e),
        }
    }
}

/// PostgreSQL's SQLSTATEs for a transaction the server rolled back because of another one
/// (`serialization_failure`, `deadlock_detected`).
fn rolled_back_by_server(sqlstate: &str) -> bool {
    matches!(sqlstate, "40001" | "40P01")
}

/// Shorthand used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    #[test]
    fn deadlocks_and_serialization_failures_are_concurrent_changes() {
        assert!(super::rolled_back_by_server("40P01"));
        assert!(super::rolled_back_by_server("40001"));
        assert!(!super::rolled_back_by_server("23505"));
    }
}
