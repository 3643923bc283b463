//! Henan's project library and agent banks, on SQLite and PostgreSQL (濮阳规程 第十至十二、十五、
//! 十六条): a county unit's change request goes through county finance, city finance and
//! provincial finance, each step by a different user in the right office, every step audited
//! and the library's history listed; a provincial unit files straight to provincial finance;
//! a withdrawn project can no longer be paid (refused at review and at the order push); the
//! candidate list admits only connected banks paying across banks for free; a county selects
//! one or two.
#![cfg(feature = "province-henan")]

mod henan_common;

use henan_common::*;
use yikatong::cycle::Ports;
use ykt_province_henan::calendar::WorkCalendar;
use ykt_province_henan::library::{ChangeKind, parse_form};
use ykt_store::testing::each_backend;

#[tokio::test]
async fn change_requests_and_banks() {
    each_backend("henan_library", |db| async move {
        let store = &db.store;
        let batch = scenario(store, &["ABC-HN"]).await;
        let province = province(store).await;
        let cal = WorkCalendar::builtin().unwrap();
        let none = Ports::default();
        let o = ops(store, province.as_ref(), &none, &cal);
        assert_eq!(o.seed_library().await.unwrap(), 0, "seeded once");
        assert_eq!(o.library().await.unwrap().len(), 8);

        // A county unit adds a project: county finance, city finance, provincial finance.
        let form = parse_form(
            "[project]\ncode = \"HN09\"\nname = \"道里区临时救助金\"\nshort_name = \"临时救助\"\nlead_unit = \"道里区民政局\"\nfrequency = \"多次/年\"\n",
        )
        .unwrap();
        let clerk = user(store, "daoli-clerk").await;
        let county = user(store, "daoli-cz").await;
        let city = user(store, "harbin-cz").await;
        let prov = user(store, "prov-cz").await;
        let dual = user(store, "daoli-dual").await;
        // A three-character short name is refused (第八条(五) "四字简称").
        let mut short = form.clone();
        short.short_name = "临时救".into();
        let e = o
            .file_change(&clerk, ChangeKind::Add, Some(short), None, "新增")
            .await
            .unwrap_err();
        assert!(e.is_refusal() && e.to_string().contains("4个字"), "{e}");
        let id = o
            .file_change(&dual, ChangeKind::Add, Some(form.clone()), None, "新增区级临时救助")
            .await
            .unwrap();
        // The filer cannot review it, even holding the finance role in the county.
        let e = o.change_step(id, &dual, false, None).await.unwrap_err();
        assert!(e.to_string().contains("不同的人"), "{e}");
        // City and provincial finance cannot skip the county.
        assert!(o.change_step(id, &city, false, None).await.is_err());
        assert!(o.change_step(id, &prov, false, None).await.is_err());
        assert!(o.check_payable("HN09").await.is_err(), "not in the library yet");
        o.change_step(id, &county, false, Some("资料齐全")).await.unwrap();
        assert!(o.change_step(id, &county, false, None).await.is_err(), "county twice");
        o.change_step(id, &city, false, Some("复核无误")).await.unwrap();
        let r = o.change_step(id, &prov, false, Some("同意")).await.unwrap();
        assert_eq!(r.state, "applied");
        assert!(o.change_step(id, &prov, false, None).await.is_err(), "applied is final");
        assert_eq!(o.check_payable("HN09").await.unwrap().entry.short_name, "临时救助");
        let steps = store.henan_change_steps(id).await.unwrap();
        assert_eq!(
            steps.iter().map(|s| (s.step.as_str(), s.actor.as_str())).collect::<Vec<_>>(),
            [
                ("file", "daoli-dual"),
                ("review", "daoli-cz"),
                ("recheck", "harbin-cz"),
                ("apply", "prov-cz")
            ]
        );
        // Adding it again is refused.
        assert!(o
            .file_change(&clerk, ChangeKind::Add, Some(form), None, "重复")
            .await
            .is_err());

        // A provincial unit withdraws HN03 straight through provincial finance; a rejection
        // needs a reason and ends the request.
        let mz = user(store, "prov-mz").await;
        let rej = o
            .file_change(&mz, ChangeKind::Withdraw, None, Some("HN02"), "试行")
            .await
            .unwrap();
        assert!(o.change_step(rej, &prov, true, None).await.is_err(), "a reason is needed");
        let r = o.change_step(rej, &prov, true, Some("政策仍在执行")).await.unwrap();
        assert_eq!(r.state, "rejected");
        assert!(o.check_payable("HN02").await.is_ok());
        let w = o
            .file_change(&mz, ChangeKind::Withdraw, None, Some("HN03"), "政策到期不再执行")
            .await
            .unwrap();
        o.change_step(w, &prov, false, None).await.unwrap();
        let e = o.check_payable("HN03").await.unwrap_err();
        assert!(e.to_string().contains("已停止执行"), "{e}");

        // The history lists every version, and every step is in the audit chain.
        let hist = store.henan_library_history(None).await.unwrap();
        let kinds: Vec<(&str, &str, i64)> = hist
            .iter()
            .filter(|h| h.kind != "seed")
            .map(|h| (h.code.as_str(), h.kind.as_str(), h.version))
            .collect();
        assert_eq!(kinds, [("HN09", "add", 1), ("HN03", "withdraw", 2)]);
        let audit = store.audit_entries(1, 10_000).await.unwrap();
        let actions: Vec<&str> = audit
            .iter()
            .map(|a| a.record.action.as_str())
            .filter(|a| a.starts_with("henan.change"))
            .collect();
        assert_eq!(
            actions,
            [
                "henan.change.file",
                "henan.change.review",
                "henan.change.recheck",
                "henan.change.apply",
                "henan.change.file",
                "henan.change.reject",
                "henan.change.file",
                "henan.change.apply"
            ]
        );
        store.verify_audit().await.unwrap();

        // A withdrawn project is not paid: finance's review is refused.
        let a = user(store, "daoli-dual").await;
        o.step(batch.id, "apply_funds", &a, None).await.unwrap();
        let e = o.review(batch.id, &county, None, None).await.unwrap_err();
        assert!(e.to_string().contains("已停止执行"), "{e}");

        // Banks: only connected banks paying for free; a county selects one or two.
        let mut c = candidate("CCB-X", "某城市商业银行");
        c.connected = false;
        assert!(o.add_candidate(&prov, &c).await.is_err());
        c.connected = true;
        c.free_interbank = false;
        assert!(o.add_candidate(&prov, &c).await.is_err());
        c.free_interbank = true;
        assert!(o.add_candidate(&county, &c).await.is_err(), "only provincial finance");
        o.add_candidate(&prov, &c).await.unwrap();
        assert!(o.select_bank(&city, "230102", "PSBC-HN", "x").await.is_err(), "only the county");
        o.select_bank(&county, "230102", "PSBC-HN", "道里财代〔2023〕2号").await.unwrap();
        let e = o
            .select_bank(&county, "230102", "CCB-X", "道里财代〔2023〕3号")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("1至2家"), "{e}");
        assert!(o.select_bank(&county, "230102", "NOPE", "x").await.is_err());
        assert_eq!(store.henan_county_banks(Some("230102000000")).await.unwrap().len(), 2);
        let admin = user(store, "admin").await;
        assert!(o.issue_credential(&county, "ABC-HN").await.is_err(), "only an administrator");
        assert!(o.issue_credential(&admin, "NOPE").await.is_err());
        let t1 = o.issue_credential(&admin, "ABC-HN").await.unwrap();
        let t2 = o.issue_credential(&admin, "ABC-HN").await.unwrap();
        assert_ne!(t1, t2);
        let hash = ykt_store::henan::token_hash;
        assert_eq!(store.henan_bank_for_token(&hash(&t1)).await.unwrap(), None, "replaced");
        assert_eq!(
            store.henan_bank_for_token(&hash(&t2)).await.unwrap().as_deref(),
            Some("ABC-HN")
        );
    })
    .await;
}
