//! Migrations, keys, users and regions.

use crate::common::{meta, region};
use ykt_kernel::ident::RegionCode;
use ykt_store::testing::{count, each_backend};
use ykt_store::{ImportOutcome, StoreError, UserRow, Vault, kinds, ok_rows};

#[tokio::test]
async fn migrations_apply_twice_and_key_is_checked() {
    each_backend("migrations", |db| async move {
        let applied = count(&db.store, "_sqlx_migrations").await.expect("count");
        assert!(applied >= 1);
        db.store.migrate().await.expect("second migrate is a no-op");
        let again = db.reopen().await.expect("reopen runs the migrations again");
        again.migrate().await.expect("and again");
        assert_eq!(
            count(&again, "_sqlx_migrations").await.expect("count"),
            applied
        );
        again.close().await;
        let (other, _) = Vault::generate();
        assert!(matches!(
            ykt_store::Store::connect(db.url(), other).await,
            Err(StoreError::KeyMismatch)
        ));
    })
    .await;
}

#[tokio::test]
async fn users_round_trip() {
    each_backend("users", |db| async move {
        let s = &db.store;
        let mut u = UserRow {
            login: "wang".into(),
            display_name: "王会计".into(),
            roles: vec!["finance_reviewer".into(), "auditor".into()],
            region: "230102".into(),
            password_hash: None,
            disabled: false,
        };
        s.upsert_user(&u).await.expect("insert");
        let got = s.get_user("wang").await.expect("get").expect("present");
        assert_eq!(got.region, "230102000000");
        assert_eq!(got.roles, u.roles);
        u.password_hash = Some("$argon2id$v=19$...".into());
        u.disabled = true;
        s.upsert_user(&u).await.expect("update");
        let got = s.get_user("wang").await.expect("get").expect("present");
        assert_eq!(got.password_hash, u.password_hash);
        assert!(got.disabled);
        s.upsert_user(&UserRow {
            login: "an".into(),
            roles: vec![],
            ..u.clone()
        })
        .await
        .expect("insert");
        let all = s.list_users().await.expect("list");
        assert_eq!(
            all.iter().map(|u| u.login.as_str()).collect::<Vec<_>>(),
            ["an", "wang"]
        );
        assert!(all[0].roles.is_empty());
        assert!(s.get_user("nobody").await.expect("get").is_none());
        let bad = UserRow {
            roles: vec!["a,b".into()],
            ..u.clone()
        };
        assert!(matches!(
            s.upsert_user(&bad).await,
            Err(StoreError::Invalid { .. })
        ));
        let bad = UserRow {
            region: "12345".into(),
            ..u
        };
        assert!(matches!(
            s.upsert_user(&bad).await,
            Err(StoreError::Invalid { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn regions_import_and_lookup() {
    each_backend("regions", |db| async move {
        let s = &db.store;
        let entries = vec![
            region("23", "黑龙江省"),
            region("2301", "哈尔滨市"),
            region("230102", "道里区"),
            region("230102001", "兆麟街道"),
            region("441900003000", "东城街道"),
        ];
        let m = meta(kinds::REGIONS, "regions-v1");
        let out = s
            .import_regions(ok_rows(entries.clone()), m.clone())
            .await
            .expect("import");
        assert!(matches!(out, ImportOutcome::Imported { rows: 5, .. }));
        assert!(matches!(
            s.import_regions(ok_rows(entries.clone()), m)
                .await
                .expect("again"),
            ImportOutcome::AlreadyImported { .. }
        ));
        let county = RegionCode::parse("230102000000").expect("code");
        assert!(s.region_exists(&county).await.expect("exists"));
        assert_eq!(
            s.region_name(&county).await.expect("name").as_deref(),
            Some("道里区")
        );
        let unknown = RegionCode::parse("230103").expect("code");
        assert!(!s.region_exists(&unknown).await.expect("exists"));
        assert_eq!(s.all_regions().await.expect("all"), entries);

        // A newer table renames.
        let renamed = vec![region("230102", "道里区（新）")];
        s.import_regions(ok_rows(renamed), meta(kinds::REGIONS, "regions-v2"))
            .await
            .expect("import");
        assert_eq!(
            s.region_name(&county).await.expect("name").as_deref(),
            Some("道里区（新）")
        );
        assert_eq!(count(s, "regions").await.expect("count"), 5);
    })
    .await;
}
