//! The audit chain on storage: concurrency, append in a caller's transaction, tampering.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use ykt_kernel::audit::{AuditRecord, ChainError};
use ykt_store::testing::{each_backend, exec};
use ykt_store::{Backend, StoreError};

fn record(i: u32) -> AuditRecord {
    AuditRecord {
        at: format!("2024-05-01T08:00:{:02}Z", i % 60),
        actor: format!("clerk{}", i % 3),
        role: "dept_maker".into(),
        action: "batch.submit".into(),
        subject: format!("batch:{i}"),
        from_state: Some("draft".into()),
        to_state: Some("submitted".into()),
        detail: serde_json::json!({"count": i, "amount_fen": 1050 * i64::from(i), "note": "中文 ✓"}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_form_one_gapless_chain() {
    each_backend("audit_concurrent", |db| async move {
        let next = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = db.store.clone();
            let next = next.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= 100 {
                        break;
                    }
                    store.append_audit(record(i)).await.expect("append");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let report = db.store.verify_audit().await.expect("verifies");
        assert_eq!(report.entries, 100);
        let entries = db.store.audit_entries(1, 1_000).await.expect("entries");
        assert_eq!(
            entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=100).collect::<Vec<_>>()
        );
        assert_eq!(report.head, entries.last().map(|e| e.hash));
        // Every record is there exactly once.
        let mut subjects: Vec<_> = entries.iter().map(|e| e.record.subject.clone()).collect();
        subjects.sort();
        subjects.dedup();
        assert_eq!(subjects.len(), 100);
        assert_eq!(entries[0].record.detail["note"], "中文 ✓");
        assert_eq!(db.store.audit_entries(99, 10).await.expect("tail").len(), 2);
    })
    .await;
}

#[tokio::test]
async fn append_in_a_transaction_commits_or_rolls_back_with_it() {
    each_backend("audit_in_tx", |db| async move {
        let s = &db.store;
        let mut tx = s.begin().await.expect("begin");
        s.append_audit_in(&mut tx, record(1)).await.expect("append");
        tx.rollback().await.expect("rollback");
        assert_eq!(s.verify_audit().await.expect("verify").entries, 0);

        let mut tx = s.begin().await.expect("begin");
        let a = s.append_audit_in(&mut tx, record(1)).await.expect("append");
        let b = s.append_audit_in(&mut tx, record(2)).await.expect("append");
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(b.prev_hash, a.hash);
        tx.commit().await.expect("commit");
        assert_eq!(s.verify_audit().await.expect("verify").entries, 2);

        // A dropped transaction rolls back too.
        {
            let mut tx = s.begin().await.expect("begin");
            s.append_audit_in(&mut tx, record(3)).await.expect("append");
        }
        assert_eq!(s.append_audit(record(4)).await.expect("append").seq, 3);
    })
    .await;
}

#[tokio::test]
async fn tampering_is_refused_or_detected() {
    each_backend("audit_tamper", |db| async move {
        let s = &db.store;
        for i in 0..10 {
            s.append_audit(record(i)).await.expect("append");
        }
        assert_eq!(s.verify_audit().await.expect("intact").entries, 10);

        // The append-only triggers refuse changes on both backends.
        assert!(
            exec(s, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 5")
                .await
                .is_err()
        );
        assert!(
            exec(s, "DELETE FROM audit_log WHERE seq = 10")
                .await
                .is_err()
        );
        if db.backend() == Backend::Postgres {
            assert!(exec(s, "TRUNCATE audit_log").await.is_err());
        }
        assert_eq!(s.verify_audit().await.expect("still intact").entries, 10);

        // Someone with DDL rights disables the protection: verification still catches it.
        match db.backend() {
            Backend::Sqlite => {
                exec(
                    s,
                    "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete",
                )
                .await
                .expect("drop");
            }
            Backend::Postgres => {
                exec(s, "ALTER TABLE audit_log DISABLE TRIGGER USER")
                    .await
                    .expect("disable");
            }
        }
        exec(s, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 5")
            .await
            .expect("edit");
        let err = s.verify_audit().await.expect_err("edit detected");
        assert!(
            matches!(err, StoreError::AuditChain(ChainError::Tampered { seq: 5 })),
            "{err:?}"
        );

        exec(s, "UPDATE audit_log SET actor = 'clerk1' WHERE seq = 5")
            .await
            .expect("restore");
        assert_eq!(s.verify_audit().await.expect("restored").entries, 10);

        exec(s, "DELETE FROM audit_log WHERE seq = 3")
            .await
            .expect("delete");
        let err = s.verify_audit().await.expect_err("deletion detected");
        assert!(
            matches!(
                err,
                StoreError::AuditChain(ChainError::Gap {
                    expected: 3,
                    found: 4
                })
            ),
            "{err:?}"
        );

        exec(s, "UPDATE audit_log SET hash = 'not hex' WHERE seq = 1")
            .await
            .expect("garble");
        let err = s.verify_audit().await.expect_err("garbage detected");
        assert!(
            matches!(err, StoreError::AuditChain(ChainError::Tampered { seq: 1 })),
            "{err:?}"
        );
    })
    .await;
}

/// Issue #9: the verifier catches a one-byte edit anywhere in a record, a deleted entry in the
/// middle and two entries swapped, once the append-only triggers are out of the way (someone
/// with DDL rights, or a raw edit of the SQLite file).
#[tokio::test]
async fn one_byte_edit_deletion_and_reordering_are_detected() {
    each_backend("audit_byte_reorder", |db| async move {
        let s = &db.store;
        for i in 0..8 {
            s.append_audit(record(i)).await.expect("append");
        }
        let intact = s.verify_audit().await.expect("intact");
        assert_eq!(intact.entries, 8);
        match db.backend() {
            Backend::Sqlite => exec(
                s,
                "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete",
            )
            .await
            .map(|_| ()),
            Backend::Postgres => exec(s, "ALTER TABLE audit_log DISABLE TRIGGER USER")
                .await
                .map(|_| ()),
        }
        .expect("protection off");
        let verdict = || async { s.verify_audit().await };

        // One byte of the JSON detail: the amount 4200 becomes 4201 (record 4 is seq 5).
        exec(
            s,
            "UPDATE audit_log SET detail = replace(detail, '4200', '4201') WHERE seq = 5",
        )
        .await
        .expect("edit");
        assert!(matches!(
            verdict().await,
            Err(StoreError::AuditChain(ChainError::Tampered { seq: 5 }))
        ));
        exec(
            s,
            "UPDATE audit_log SET detail = replace(detail, '4201', '4200') WHERE seq = 5",
        )
        .await
        .expect("restore");
        // One character of the timestamp, the actor, a state: each is caught.
        for (col, from, to) in [
            ("at", "08:00:02", "08:00:03"),
            ("actor", "clerk2", "clerk3"),
            ("to_state", "submitted", "submittee"),
        ] {
            exec(
                s,
                &format!(
                    "UPDATE audit_log SET {col} = replace({col}, '{from}', '{to}') WHERE seq = 3"
                ),
            )
            .await
            .expect("edit");
            assert!(
                matches!(
                    verdict().await,
                    Err(StoreError::AuditChain(ChainError::Tampered { seq: 3 }))
                ),
                "{col}"
            );
            exec(
                s,
                &format!(
                    "UPDATE audit_log SET {col} = replace({col}, '{to}', '{from}') WHERE seq = 3"
                ),
            )
            .await
            .expect("restore");
        }
        assert_eq!(verdict().await.expect("restored"), intact);

        // Reordering: entries 4 and 5 swap places (their seq numbers are exchanged).
        exec(s, "UPDATE audit_log SET seq = 1004 WHERE seq = 4")
            .await
            .expect("swap");
        exec(s, "UPDATE audit_log SET seq = 4 WHERE seq = 5")
            .await
            .expect("swap");
        exec(s, "UPDATE audit_log SET seq = 5 WHERE seq = 1004")
            .await
            .expect("swap");
        let err = verdict().await.expect_err("reordering detected");
        assert!(
            matches!(
                err,
                StoreError::AuditChain(
                    ChainError::Broken { seq: 4 } | ChainError::Tampered { seq: 4 }
                )
            ),
            "{err:?}"
        );
        exec(s, "UPDATE audit_log SET seq = 1004 WHERE seq = 4")
            .await
            .expect("swap back");
        exec(s, "UPDATE audit_log SET seq = 4 WHERE seq = 5")
            .await
            .expect("swap back");
        exec(s, "UPDATE audit_log SET seq = 5 WHERE seq = 1004")
            .await
            .expect("swap back");
        assert_eq!(verdict().await.expect("restored"), intact);

        // A deleted entry whose successors are renumbered to close the gap: the chain breaks
        // at the first renumbered entry.
        exec(s, "DELETE FROM audit_log WHERE seq = 6")
            .await
            .expect("delete");
        exec(s, "UPDATE audit_log SET seq = seq + 1000 WHERE seq > 6")
            .await
            .expect("renumber");
        exec(s, "UPDATE audit_log SET seq = seq - 1001 WHERE seq > 1000")
            .await
            .expect("renumber");
        let err = verdict().await.expect_err("deletion detected");
        assert!(
            matches!(
                err,
                StoreError::AuditChain(
                    ChainError::Broken { seq: 6 } | ChainError::Tampered { seq: 6 }
                )
            ),
            "{err:?}"
        );

        // Cutting the tail leaves a valid shorter chain: only the head recorded elsewhere
        // (printed by `ykt audit verify`) shows it, so the report must change.
        exec(s, "DELETE FROM audit_log WHERE seq >= 6")
            .await
            .expect("truncate tail");
        let short = verdict().await.expect("a prefix verifies");
        assert_eq!(short.entries, 5);
        assert_ne!(short.head, intact.head);
    })
    .await;
}
