//! Sichuan's zero-balance-account cycle on the shared scenario (`tests/scenarios/standard/`),
//! on SQLite and PostgreSQL: the same snapshots from both backends. The run itself asserts
//! after every step that the ledger balances, that the truncated result file was rejected
//! whole, and that the zero-balance account goes up and back to zero (see
//! `sichuan_common::run`).
#![cfg(feature = "province-sichuan")]

mod common;
mod sichuan_common;

use sichuan_common::*;
use ykt_kernel::batch::LineState;
use ykt_kernel::{Fen, RegionCode, Role, User};
use ykt_store::testing::each_backend;

#[tokio::test]
async fn standard_scenario_through_the_whole_cycle() {
    each_backend("sichuan_cycle", |db| async move {
        let run = sichuan_common::run(&db.store).await;
        let o = &run.out;
        insta::assert_snapshot!("validation", o.validation);
        insta::assert_snapshot!("trace", o.trace);
        insta::assert_snapshot!("vouchers", o.vouchers);
        insta::assert_snapshot!("bank_files", o.bank_files);
        insta::assert_snapshot!("ledger", o.ledger);
        insta::assert_snapshot!("notices", o.notices);
        insta::assert_snapshot!("checks", o.checks);
        insta::assert_snapshot!("statements", o.statements);
        insta::assert_snapshot!("sms", o.sms);
        // Personal identifiers never appear unmasked in anything rendered.
        let all = [
            &o.validation,
            &o.trace,
            &o.vouchers,
            &o.bank_files,
            &o.ledger,
            &o.notices,
            &o.checks,
            &o.statements,
            &o.sms,
        ];
        let text = std::fs::read_to_string(common::scenario().join("registry.csv")).unwrap();
        for secret in text
            .lines()
            .skip(1)
            .flat_map(|l| l.split(',').take(5).collect::<Vec<_>>())
            .filter(|f| f.len() >= 15 && f.bytes().all(|b| b.is_ascii_digit() || b == b'X'))
        {
            for (i, a) in all.iter().enumerate() {
                assert!(
                    !a.contains(secret),
                    "rendering {i} shows an identifier ending {}",
                    &secret[secret.len() - 4..]
                );
            }
        }
        for phone in ["13945285084", "13945293003", "13945300001", "13945071271"] {
            assert!(all.iter().all(|a| !a.contains(phone)), "a phone in clear");
        }
    })
    .await;
}

/// A repeated result file, delivered after its results were applied, changes nothing: no
/// line moves, no money moves, the file is recorded as a repeat. (The main batch's first file
/// also reports the corrected line's failed first attempt: that result is stale now and is
/// flagged as an anomaly, never applied.)
#[tokio::test]
async fn a_repeated_result_file_changes_nothing() {
    each_backend("sichuan_repeat", |db| async move {
        let run = sichuan_common::run(&db.store).await;
        let store = &db.store;
        let done = run.dir.path().join("from_bank/done");
        for (batch, suffix, stale) in [(run.receipt, "_01_RESEND.txt", 0), (run.main, "_01.txt", 1)]
        {
            let b = store.batch(batch).await.unwrap().unwrap();
            let original = done.join(format!("HP_{}{suffix}", b.order_no));
            assert!(original.exists(), "{}", original.display());
            let name = format!("HP_{}_01_AGAIN.txt", b.order_no);
            std::fs::copy(&original, run.dir.path().join("from_bank").join(&name)).unwrap();
            let ledger = store.ledger_balances().await.unwrap();
            let entries = store.sichuan_postings(None, None).await.unwrap().len();
            let lines = |v: Vec<ykt_store::payments::LineRow>| {
                v.into_iter()
                    .map(|l| (l.id, l.state, l.attempt, l.amount))
                    .collect::<Vec<_>>()
            };
            let before = lines(store.lines(b.id, 0, i64::MAX).await.unwrap());
            let report = run.p.cycle().collect(&b).await.unwrap();
            assert_eq!(
                (report.credited.count, report.failed.count),
                (0, 0),
                "batch {batch}"
            );
            assert_eq!(
                report.duplicates as usize + report.anomalies.len(),
                before.len()
            );
            assert_eq!(report.anomalies.len(), stale, "{:?}", report.anomalies);
            assert!(report.anomalies.iter().all(|a| a.kind == "stale_attempt"));
            assert_eq!(store.ledger_balances().await.unwrap(), ledger);
            assert_eq!(
                store.sichuan_postings(None, None).await.unwrap().len(),
                entries
            );
            assert_eq!(lines(store.lines(b.id, 0, i64::MAX).await.unwrap()), before);
            let f = store
                .sichuan_bank_files(b.id)
                .await
                .unwrap()
                .into_iter()
                .find(|f| f.file_name == name)
                .unwrap();
            assert_eq!(f.status, "repeat");
            check_money(store, "repeat").await;
        }
    })
    .await;
}

/// The maker of a batch never checks it: the maker cannot review for the department what
/// they made, nor approve or confirm for finance what they declared or submitted, whatever
/// roles they hold; nor may the township clerk who publicised review for the department.
#[tokio::test]
async fn maker_is_never_checker() {
    each_backend("sichuan_maker_checker", |db| async move {
        let run = sichuan_common::run(&db.store).await;
        let p = &run.p;
        let store = &db.store;
        // The importing clerk, now holding every role.
        let everything = User {
            login: common::clerk().login,
            name: "全能".into(),
            roles: vec![
                Role::DeptMaker,
                Role::DeptHead,
                Role::FinanceReviewer,
                Role::TownshipClerk,
            ],
            region: RegionCode::parse("230102").unwrap(),
            bank: None,
        };
        let township_head = User {
            login: township().login,
            roles: vec![Role::TownshipClerk, Role::DeptHead],
            ..everything.clone()
        };
        // Next month's roster for two of the scenario's people, imported by the clerk.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("june.csv");
        std::fs::write(
            &file,
            "姓名,身份证号码,行政区划代码,补贴项目,补贴金额,属期,户主\n\
             王秀英,230102194702041018,230102001201,农村最低生活保障金,420.00,2023-06,是\n\
             曾德胜,230102195603031388,230102002201,农村最低生活保障金,420.00,2023-06,是\n",
        )
        .unwrap();
        let cfg = yikatong::config::Config::default();
        let province = yikatong::build_province(
            yikatong::select_province(Some("sichuan"), &cfg).unwrap(),
            &cfg,
        )
        .unwrap();
        let (report, result) =
            common::import(store, province.as_ref(), common::PROJECT, &file).await;
        assert_eq!(report.summary.accepted, 2, "{:?}", report.problems);
        let id = result.batches[0].id;
        p.sc.clock.set(day("2023-06-01"));
        let cycle = || p.cycle();
        cycle()
            .step(id, "start_publicity", &township_head, None)
            .await
            .unwrap();
        p.sc.clock.set(day("2023-06-08"));
        cycle()
            .step(id, "township_submit", &township_head, None)
            .await
            .unwrap();
        for (who, label) in [
            (&everything, "the maker"),
            (&township_head, "the township clerk who publicised"),
        ] {
            let m = refused(p, id, "dept_review", who).await;
            assert!(m.contains("经办与审核不得为同一人"), "{label}: {m}");
        }
        cycle()
            .step(id, "dept_review", &head(), None)
            .await
            .unwrap();
        yikatong::provinces::sichuan::ops::declare_plan(p, id, None, None, &everything)
            .await
            .unwrap();
        let e = yikatong::provinces::sichuan::ops::review(p, id, &everything)
            .await
            .err()
            .expect("refused");
        assert!(e.to_string().contains("经办与审核不得为同一人"), "{e}");
        assert!(
            store.sichuan_reviews(id).await.unwrap().is_empty(),
            "a refused review records nothing"
        );
        assert!(
            refused(p, id, "finance_return", &everything)
                .await
                .contains("经办与审核不得为同一人")
        );
        assert!(
            yikatong::provinces::sichuan::ops::review(p, id, &finance())
                .await
                .unwrap()
                .review
                .passed
        );
        sichuan_common::poll_until_funded(p, id).await;
        cycle()
            .step(id, "submit_disbursement", &everything, None)
            .await
            .unwrap();
        assert!(
            refused(p, id, "confirm_disbursement", &everything)
                .await
                .contains("经办与审核不得为同一人")
        );
        cycle()
            .step(id, "confirm_disbursement", &finance(), None)
            .await
            .unwrap();
        check_money(store, "maker-checker").await;
    })
    .await;
}

/// Lines end where the scenario says: corrected line paid on its second attempt, closed
/// account refunded, the objected line gone, the recovered payment still credited (the
/// recovery is its own record).
#[tokio::test]
async fn lines_end_in_their_final_states() {
    each_backend("sichuan_lines", |db| async move {
        let run = sichuan_common::run(&db.store).await;
        let store = &db.store;
        let t = store.tally(run.main).await.unwrap();
        assert_eq!(t.refunded.count, 1);
        assert_eq!(t.pending.count + t.in_flight.count + t.failed.count, 0);
        assert_eq!(t.credited.count, 11);
        let b = store.batch(run.main).await.unwrap().unwrap();
        assert_eq!(b.control.count, 12, "the objected line left the batch");
        assert_eq!(b.control.amount, Fen(504_000));
        let lines = store.lines(run.main, 0, i64::MAX).await.unwrap();
        assert!(lines.iter().all(|l| l.name != "彭秀云"));
        assert!(
            lines
                .iter()
                .all(|l| l.state == LineState::Credited || l.state == LineState::Refunded)
        );
        let r = store.tally(run.receipt).await.unwrap();
        assert_eq!(r.credited.count, 2);
        let unpaid = store.sichuan_unpaid("sichuan", "230102").await.unwrap();
        assert_eq!(unpaid.len(), 1);
        assert_eq!(unpaid[0].name, "吕长江");
        assert_eq!(zero_balance(store).await, Fen(0));
    })
    .await;
}

/// The province's simulator hook gives working ports: the treasury answers over HTTP (an
/// unknown voucher is refused), the bank's drop refuses an unknown order, the disclosure
/// channel publishes to the platform's own tables.
#[tokio::test]
async fn simulated_ports_talk_to_running_simulators() {
    each_backend("sichuan_sim_ports", |db| async move {
        let cfg = yikatong::config::Config::default();
        let province = yikatong::build_province(
            yikatong::select_province(Some("sichuan"), &cfg).unwrap(),
            &cfg,
        )
        .unwrap();
        let (ports, _sims) = yikatong::provinces::simulated_ports(province.as_ref(), &db.store, 7)
            .await
            .unwrap();
        let treasury = ports.treasury.expect("treasury port");
        assert!(matches!(
            treasury.funding_status("NO-SUCH-VOUCHER").await.unwrap(),
            ykt_kernel::ports::FundingStatus::Refused { .. }
        ));
        let bank = ports.bank.expect("bank port");
        let e = bank.collect_results("NO-SUCH-ORDER").await.unwrap_err();
        assert!(e.message.contains("NO-SUCH-ORDER"), "{e}");
        let notice = ykt_kernel::ports::Notice {
            id: "sichuan-test-notice".into(),
            kind: "policy".into(),
            region: RegionCode::parse("510000").unwrap(),
            project_name: "农村最低生活保障金".into(),
            title: "政策公开".into(),
            body: "正文".into(),
            published_on: "2023-05-08".into(),
            until: None,
        };
        ports
            .disclosure
            .expect("disclosure")
            .publish(&notice)
            .await
            .unwrap();
        assert!(
            db.store
                .notices(None)
                .await
                .unwrap()
                .iter()
                .any(|n| n.id == notice.id)
        );
    })
    .await;
}
