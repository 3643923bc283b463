//! The audit trail: every state change is recorded as an entry whose hash covers its own
//! canonical content and the previous entry's hash, so an edit, a deletion or a reordering
//! anywhere in the log is detected by [`verify_chain`].
//!
//! 濮阳规程 第二十七条: "做到申报、审核、发放、监管等各环节有据可依、有据可查".

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The hash the first entry of a chain links to.
pub const GENESIS: [u8; 32] = [0u8; 32];

/// What happened, by whom, to what. `detail` is free JSON, never holding a full personal
/// identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339 UTC timestamp.
    pub at: String,
    /// The acting user's login (or `system`, `bank:<code>`...).
    pub actor: String,
    /// The role the actor acted in.
    pub role: String,
    /// What was done, e.g. `batch.approve`, `roster.import`.
    pub action: String,
    /// What it was done to, e.g. `batch:42`.
    pub subject: String,
    /// State before, if a state changed.
    pub from_state: Option<String>,
    /// State after, if a state changed.
    pub to_state: Option<String>,
    /// Anything else worth keeping (counts, totals, reasons).
    pub detail: serde_json::Value,
}

impl AuditRecord {
    /// Canonical bytes: the fields in a fixed order, JSON-encoded (serde_json writes object
    /// keys of `detail` in sorted order because it uses a BTreeMap by default).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let v = serde_json::json!([
            self.at,
            self.actor,
            self.role,
            self.action,
            self.subject,
            self.from_state,
            self.to_state,
            self.detail,
        ]);
        // Serializing a Value cannot fail.
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

/// An audit record placed in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainedAudit {
    /// 1-based position in the chain.
    pub seq: i64,
    pub record: AuditRecord,
    pub prev_hash: Hash,
    pub hash: Hash,
}

/// A SHA-256 digest, shown as hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    pub fn from_hex(s: &str) -> Option<Hash> {
        let v = hex::decode(s).ok()?;
        <[u8; 32]>::try_from(v.as_slice()).ok().map(Hash)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..12])
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Hash::from_hex(&s).ok_or_else(|| serde::de::Error::custom("bad hash"))
    }
}

/// `SHA-256(seq || prev_hash || canonical(record))`.
pub fn entry_hash(seq: i64, prev: &Hash, record: &AuditRecord) -> Hash {
    let mut h = Sha256::new();
    h.update(seq.to_be_bytes());
    h.update(prev.0);
    h.update(record.canonical_bytes());
    Hash(h.finalize().into())
}

/// Append `record` after `prev` (the last entry, or `None` for the first).
pub fn chain(prev: Option<&ChainedAudit>, record: AuditRecord) -> ChainedAudit {
    let (seq, prev_hash) = match prev {
        Some(p) => (p.seq + 1, p.hash),
        None => (1, Hash(GENESIS)),
    };
    let hash = entry_hash(seq, &prev_hash, &record);
    ChainedAudit {
        seq,
        record,
        prev_hash,
        hash,
    }
}

/// Why a chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("审计日志第{seq}条内容被篡改 (entry {seq}: content does not match its hash)")]
    Tampered { seq: i64 },
    #[error(
        "审计日志第{seq}条与上一条不衔接 (entry {seq}: previous hash does not match; an entry was deleted, inserted or reordered)"
    )]
    Broken { seq: i64 },
    #[error(
        "审计日志序号不连续：期望{expected}，实际{found} (sequence gap: expected {expected}, found {found})"
    )]
    Gap { expected: i64, found: i64 },
}

/// The result of verifying a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub entries: i64,
    pub head: Option<Hash>,
}

/// Verify entries given in `seq` order. Detects a changed byte in any record, a deleted or
/// inserted entry and a reordering.
pub fn verify_chain<'a>(
    entries: impl IntoIterator<Item = &'a ChainedAudit>,
) -> Result<ChainReport, ChainError> {
    let mut expected_seq = 1;
    let mut prev = Hash(GENESIS);
    for e in entries {
        if e.seq != expected_seq {
            return Err(ChainError::Gap {
                expected: expected_seq,
                found: e.seq,
            });
        }
        if e.prev_hash != prev {
            return Err(ChainError::Broken { seq: e.seq });
        }
        if entry_hash(e.seq, &e.prev_hash, &e.record) != e.hash {
            return Err(ChainError::Tampered { seq: e.seq });
        }
        prev = e.hash;
        expected_seq += 1;
    }
    Ok(ChainReport {
        entries: expected_seq - 1,
        head: (expected_seq > 1).then_some(prev),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u32) -> AuditRecord {
        AuditRecord {
            at: format!("2023-05-01T00:00:{i:02}Z"),
            actor: "clerk".into(),
            role: "dept_maker".into(),
            action: "batch.submit".into(),
            subject: format!("batch:{i}"),
            from_state: Some("draft".into()),
            to_state: Some("submitted".into()),
            detail: serde_json::json!({"count": i, "amount_fen": 100 * i}),
        }
    }

    fn build(n: u32) -> Vec<ChainedAudit> {
        let mut v: Vec<ChainedAudit> = Vec::new();
        for i in 0..n {
            let e = chain(v.last(), rec(i));
            v.push(e);
        }
        v
    }

    #[test]
    fn intact_chain_verifies() {
        let v = build(5);
        let r = verify_chain(&v).unwrap();
        assert_eq!(r.entries, 5);
        assert_eq!(r.head, Some(v[4].hash));
    }

    #[test]
    fn edit_delete_and_reorder_are_detected() {
        let mut v = build(5);
        v[2].record.actor = "clerK".into();
        assert_eq!(verify_chain(&v), Err(ChainError::Tampered { seq: 3 }));

        let mut v = build(5);
        v.remove(2);
        assert_eq!(
            verify_chain(&v),
            Err(ChainError::Gap {
                expected: 3,
                found: 4
            })
        );

        let mut v = build(5);
        v.swap(1, 2);
        let (a, b) = (v[1].seq, v[2].seq);
        v[1].seq = b;
        v[2].seq = a;
        assert!(matches!(
            verify_chain(&v),
            Err(ChainError::Broken { .. }) | Err(ChainError::Gap { .. })
        ));

        // Deleting the last entry is only visible against a stored head: the report's head
        // changes.
        let v = build(5);
        assert_ne!(verify_chain(&v[..4]).unwrap().head, Some(v[4].hash));
    }
}
