//! Bulk imports of the card registry and the death register.

use crate::common::{card, cards, cards_meta, death, meta, resident_id};
use ykt_kernel::card::CardStatus;
use ykt_store::testing::{count, each_backend};
use ykt_store::{ImportOutcome, StoreError, kinds, ok_rows};

const N: u64 = 3_000;

#[tokio::test]
async fn card_import_then_lookup() {
    each_backend("card_lookup", |db| async move {
        let s = &db.store;
        let out = s.import_cards(ok_rows(cards(0..N)), cards_meta("snapshot-1")).await.expect("import");
        let ImportOutcome::Imported { import_id, rows } = out else { panic!("expected Imported, got {out:?}") };
        assert_eq!(rows, N);
        assert_eq!(s.card_count().await.expect("count"), N as i64);

        // Found, not found, order preserved, duplicates in the question answered twice.
        let ask = [resident_id(5), resident_id(N + 10), resident_id(N - 1), resident_id(5)];
        let got = s.lookup_cards(&ask).await.expect("lookup");
        assert_eq!(got, vec![Some(card(5)), None, Some(card(N - 1)), Some(card(5))]);

        // Many at once (several IN-list chunks), reversed order.
        let ids: Vec<_> = (0..N).rev().map(resident_id).collect();
        let got = s.lookup_cards(&ids).await.expect("lookup all");
        assert_eq!(got.len(), N as usize);
        for (i, c) in got.into_iter().enumerate() {
            assert_eq!(c, Some(card(N - 1 - i as u64)));
        }
        assert!(s.lookup_cards(&[]).await.expect("empty").is_empty());

        // Same content again: nothing happens.
        let again = s.import_cards(ok_rows(cards(0..N)), cards_meta("snapshot-1")).await.expect("again");
        assert!(
            matches!(again, ImportOutcome::AlreadyImported { import_id: id, .. } if id == import_id),
            "{again:?}"
        );
        assert_eq!(s.card_count().await.expect("count"), N as i64);
        assert_eq!(count(s, "imports").await.expect("count"), 1);
        // The same content under another scope is another import.
        let scoped = cards_meta("snapshot-1").with_scope("230102");
        let out = s.import_cards(ok_rows(cards(0..10)), scoped).await.expect("scoped");
        assert!(matches!(out, ImportOutcome::Imported { rows: 10, .. }));

        // A newer snapshot replaces a person's card and adds new people.
        let mut changed = card(7);
        changed.status = CardStatus::Lost;
        changed.activated = true;
        changed.account = crate::common::account(900_000);
        let newer = std::iter::once(changed.clone()).chain(cards(N..N + 5));
        let out = s.import_cards(ok_rows(newer), cards_meta("snapshot-2")).await.expect("newer");
        assert!(matches!(out, ImportOutcome::Imported { rows: 6, .. }));
        assert_eq!(s.card_count().await.expect("count"), N as i64 + 5);
        let got = s.lookup_cards(&[resident_id(7), resident_id(N + 4)]).await.expect("lookup");
        assert_eq!(got, vec![Some(changed), Some(card(N + 4))]);
    })
    .await;
}

#[derive(Debug, thiserror::Error)]
#[error("bad row")]
struct BadRow;

#[tokio::test]
async fn failing_import_leaves_nothing() {
    each_backend("failing_import", |db| async move {
        let s = &db.store;
        // The source fails at record 2 500 (after several chunks were written).
        let source = (0..N).map(|n| if n == 2_499 { Err(BadRow) } else { Ok(card(n)) });
        let err = s
            .import_cards(source, cards_meta("broken"))
            .await
            .expect_err("must fail");
        assert!(
            matches!(err, StoreError::Source { index: 2_500, .. }),
            "{err:?}"
        );
        assert_eq!(s.card_count().await.expect("count"), 0);
        assert_eq!(count(s, "imports").await.expect("count"), 0);

        // The same person twice in one file: a conflict, nothing kept.
        let dup = cards(0..2_000).chain(std::iter::once(card(1_234)));
        let err = s
            .import_cards(ok_rows(dup), cards_meta("dup"))
            .await
            .expect_err("must fail");
        assert!(err.is_conflict(), "{err:?}");
        assert!(!err.to_string().contains(resident_id(1_234).as_str()));
        assert_eq!(s.card_count().await.expect("count"), 0);
        assert_eq!(count(s, "imports").await.expect("count"), 0);

        // After a good import, a failing one changes nothing that was there.
        s.import_cards(ok_rows(cards(0..100)), cards_meta("good"))
            .await
            .expect("good");
        let mut lost = card(3);
        lost.status = CardStatus::Cancelled;
        let source = std::iter::once(Ok(lost)).chain(std::iter::once(Err(BadRow)));
        assert!(s.import_cards(source, cards_meta("bad2")).await.is_err());
        assert_eq!(
            s.lookup_cards(&[resident_id(3)]).await.expect("lookup"),
            vec![Some(card(3))]
        );
        assert_eq!(count(s, "imports").await.expect("count"), 1);
        // The failed content was not recorded as imported: it can be retried once fixed.
        let out = s
            .import_cards(ok_rows(cards(0..1)), cards_meta("bad2"))
            .await
            .expect("retry");
        assert!(matches!(out, ImportOutcome::Imported { rows: 1, .. }));

        // The store is still usable on the same connections.
        assert_eq!(s.card_count().await.expect("count"), 100);
    })
    .await;
}

#[tokio::test]
async fn death_register() {
    each_backend("deaths", |db| async move {
        let s = &db.store;
        let out = s
            .import_deaths(
                ok_rows((0..50).map(death)),
                meta(kinds::DEATHS, "deaths-2023"),
            )
            .await
            .expect("import");
        assert!(matches!(out, ImportOutcome::Imported { rows: 50, .. }));
        let got = s
            .lookup_deaths(&[resident_id(49), resident_id(50), resident_id(0)])
            .await
            .expect("lookup");
        assert_eq!(got, vec![Some(death(49)), None, Some(death(0))]);
        // Cards and deaths are separate registers.
        assert!(s.lookup_cards(&[resident_id(0)]).await.expect("lookup")[0].is_none());
    })
    .await;
}
