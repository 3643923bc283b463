//! The audit trail: the hash chain of `ykt_kernel::audit` persisted in `audit_log`.
//!
//! Appending reads the last entry, chains the new record onto it and inserts it, inside a
//! write transaction that excludes every other appender:
//!
//! - SQLite: the transaction is `BEGIN IMMEDIATE` (plus the in-process write gate, see
//!   [`crate::db`]), so writers are serialised from their first statement.
//! - PostgreSQL: `LOCK TABLE audit_log IN EXCLUSIVE MODE`, held to the end of the transaction.
//!   It conflicts with every other writer of the table (including one that forgot the lock)
//!   but not with readers, so verification and the console keep reading. The lock is taken
//!   when the audit row is written: append the audit row as the *last* statement of a
//!   transaction that changes state ([`Store::append_audit_in`]), which keeps the lock short
//!   and its ordering after row locks consistent.
//!
//! The primary key on `seq` is a second line of defence: two appenders that somehow computed
//! the same `seq` cannot both commit. Both backends refuse `UPDATE` and `DELETE` on the table
//! with a trigger.

use crate::db::{Store, Tx, TxInner, with_pool, with_tx};
use crate::error::{Result, StoreError};
use ykt_kernel::audit::{
    AuditRecord, ChainError, ChainReport, ChainedAudit, GENESIS, Hash, chain, entry_hash,
};

/// Entries read per query when verifying the chain.
const VERIFY_CHUNK: i64 = 1_000;

const SELECT_AUDIT: &str = "SELECT seq, at, actor, role, action, subject, from_state, to_state, \
                            detail, prev_hash, hash FROM audit_log";

type AuditTuple = (
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
);

/// Why a stored row does not read back as an entry (the column name).
struct BadColumn(&'static str);

fn decode(t: AuditTuple) -> std::result::Result<ChainedAudit, (i64, BadColumn)> {
    let (seq, at, actor, role, action, subject, from_state, to_state, detail, prev_hash, hash) = t;
    let detail = serde_json::from_str(&detail).map_err(|_| (seq, BadColumn("detail")))?;
    let prev_hash = Hash::from_hex(&prev_hash).ok_or((seq, BadColumn("prev_hash")))?;
    let hash = Hash::from_hex(&hash).ok_or((seq, BadColumn("hash")))?;
    Ok(ChainedAudit {
        seq,
        record: AuditRecord {
            at,
            actor,
            role,
            action,
            subject,
            from_state,
            to_state,
            detail,
        },
        prev_hash,
        hash,
    })
}

fn decode_or_corrupt(t: AuditTuple) -> Result<ChainedAudit> {
    decode(t).map_err(|(seq, BadColumn(col))| {
        StoreError::corrupt(format!("audit_log seq {seq} column {col}"))
    })
}

/// Incremental form of `ykt_kernel::audit::verify_chain`, same rules in the same order, so
/// the log can be verified in chunks without holding it in memory.
// TODO(kernel): once the kernel offers a resumable verifier, use it instead of this copy.
struct Cursor {
    expected_seq: i64,
    prev: Hash,
}

impl Cursor {
    fn new() -> Cursor {
        Cursor {
            expected_seq: 1,
            prev: Hash(GENESIS),
        }
    }

    fn push(&mut self, e: &ChainedAudit) -> std::result::Result<(), ChainError> {
        if e.seq != self.expected_seq {
            return Err(ChainError::Gap {
                expected: self.expected_seq,
                found: e.seq,
            });
        }
        if e.prev_hash != self.prev {
            return Err(ChainError::Broken { seq: e.seq });
        }
        if entry_hash(e.seq, &e.prev_hash, &e.record) != e.hash {
            return Err(ChainError::Tampered { seq: e.seq });
        }
        self.prev = e.hash;
        self.expected_seq += 1;
        Ok(())
    }

    fn report(&self) -> ChainReport {
        ChainReport {
            entries: self.expected_seq - 1,
            head: (self.expected_seq > 1).then_some(self.prev),
        }
    }
}

impl Store {
    /// Append `record` to the audit chain in its own transaction.
    pub async fn append_audit(&self, record: AuditRecord) -> Result<ChainedAudit> {
        let mut tx = self.begin().await?;
        let entry = self.append_audit_in(&mut tx, record).await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// Append `record` inside `tx`, so the audit row commits (or not) with the state change it
    /// records. Make it the last write of the transaction (see the module docs).
    pub async fn append_audit_in(&self, tx: &mut Tx, record: AuditRecord) -> Result<ChainedAudit> {
        if let TxInner::Postgres(t) = &mut tx.inner {
            sqlx::query("LOCK TABLE audit_log IN EXCLUSIVE MODE")
                .execute(&mut **t)
                .await?;
        }
        let last_sql = format!("{SELECT_AUDIT} ORDER BY seq DESC LIMIT 1");
        let last: Option<AuditTuple> = with_tx!(tx, |c| {
            sqlx::query_as::<_, AuditTuple>(&last_sql)
                .fetch_optional(&mut *c)
                .await?
        });
        let prev = last.map(decode_or_corrupt).transpose()?;
        let entry = chain(prev.as_ref(), record);
        let detail =
            serde_json::to_string(&entry.record.detail).map_err(|e| StoreError::Invalid {
                reason: format!("audit detail: {e}"),
            })?;
        let r = &entry.record;
        with_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO audit_log (seq, at, actor, role, action, subject, from_state, \
                 to_state, detail, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(entry.seq)
            .bind(&r.at)
            .bind(&r.actor)
            .bind(&r.role)
            .bind(&r.action)
            .bind(&r.subject)
            .bind(&r.from_state)
            .bind(&r.to_state)
            .bind(&detail)
            .bind(entry.prev_hash.to_hex())
            .bind(entry.hash.to_hex())
            .execute(&mut *c)
            .await?;
        });
        Ok(entry)
    }

    /// Up to `limit` entries with `seq >= from_seq`, in `seq` order.
    pub async fn audit_entries(&self, from_seq: i64, limit: i64) -> Result<Vec<ChainedAudit>> {
        let sql = format!("{SELECT_AUDIT} WHERE seq >= $1 ORDER BY seq LIMIT $2");
        let rows = with_pool!(self, |p| {
            sqlx::query_as::<_, AuditTuple>(&sql)
                .bind(from_seq)
                .bind(limit.max(0))
                .fetch_all(p)
                .await?
        });
        rows.into_iter().map(decode_or_corrupt).collect()
    }

    /// Verify the whole chain, reading it in `seq` order in chunks. A changed, deleted,
    /// inserted or reordered entry is [`StoreError::AuditChain`]; a row that does not even
    /// decode counts as tampered.
    pub async fn verify_audit(&self) -> Result<ChainReport> {
        let sql = format!("{SELECT_AUDIT} WHERE seq > $1 ORDER BY seq LIMIT $2");
        let mut cursor = Cursor::new();
        let mut after = i64::MIN;
        loop {
            let rows = with_pool!(self, |p| {
                sqlx::query_as::<_, AuditTuple>(&sql)
                    .bind(after)
                    .bind(VERIFY_CHUNK)
                    .fetch_all(p)
                    .await?
            });
            let Some(last) = rows.last() else { break };
            after = last.0;
            for t in rows {
                let e = decode(t).map_err(|(seq, _)| ChainError::Tampered { seq })?;
                cursor.push(&e)?;
            }
        }
        Ok(cursor.report())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ykt_kernel::audit::verify_chain;

    fn rec(i: u32) -> AuditRecord {
        AuditRecord {
            at: format!("2024-01-01T00:00:{:02}Z", i % 60),
            actor: "a".into(),
            role: "r".into(),
            action: "x.y".into(),
            subject: format!("s:{i}"),
            from_state: None,
            to_state: Some("t".into()),
            detail: serde_json::json!({"n": i}),
        }
    }

    /// The cursor agrees with the kernel's verifier on intact and broken chains.
    #[test]
    fn cursor_matches_kernel() {
        let mut v: Vec<ChainedAudit> = Vec::new();
        for i in 0..6 {
            let e = chain(v.last(), rec(i));
            v.push(e);
        }
        let run = |v: &[ChainedAudit]| {
            let mut c = Cursor::new();
            for e in v {
                c.push(e)?;
            }
            Ok::<_, ChainError>(c.report())
        };
        assert_eq!(run(&v), verify_chain(&v));
        let mut t = v.clone();
        t[3].record.actor = "b".into();
        assert_eq!(run(&t), verify_chain(&t));
        let mut t = v.clone();
        t.remove(2);
        assert_eq!(run(&t), verify_chain(&t));
        let mut t = v.clone();
        t[4].prev_hash = t[1].hash;
        assert_eq!(run(&t), verify_chain(&t));
        assert_eq!(run(&[]), verify_chain(&[]));
    }
}
