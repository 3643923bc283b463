//! Cancelling (作废) a batch (issue #9): only the department's maker, only with a reason, only
//! before anything left the platform; the lines stay (counted in the control totals, never
//! paid) and no longer hold their people's project and period, so a corrected roster with the
//! same people is accepted; a batch that was submitted cannot be cancelled. On SQLite and
//! PostgreSQL, Heilongjiang's workflow.

#![cfg(feature = "province-heilongjiang")]

mod common;

use common::*;
use yikatong::cycle::{Cycle, Ports};
use ykt_kernel::{BatchState, LineState, RegionCode, Role, User};

fn finance() -> User {
    User {
        login: "daoli-finance".into(),
        name: "道里区财政局".into(),
        roles: vec![Role::FinanceReviewer],
        region: RegionCode::parse("230102").unwrap(),
        bank: None,
    }
}

/// The cycle with no outside system: the steps before anything leaves the platform need none.
fn offline<'a>(store: &'a ykt_store::Store, province: &'a dyn ykt_kernel::Province) -> Cycle<'a> {
    static NONE: std::sync::LazyLock<Ports> = std::sync::LazyLock::new(Ports::default);
    Cycle {
        store,
        province,
        ports: &NONE,
        today: chrono::NaiveDate::from_ymd_opt(2023, 5, 20).unwrap(),
    }
}

/// The scenario's roster again, as a new file (a BOM in front: same lines, other bytes).
fn corrected_roster(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("roster.csv");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(std::fs::read(scenario().join("roster.csv")).unwrap());
    std::fs::write(&file, bytes).unwrap();
    file
}

#[tokio::test]
async fn a_draft_is_cancelled_by_its_maker_and_frees_its_people() {
    ykt_store::testing::each_backend("cancel_batch", |db| async move {
        let store = &db.store;
        load_registers(store).await;
        let province = built_province("heilongjiang");
        let (_, first) = import(
            store,
            province.as_ref(),
            PROJECT,
            &scenario().join("roster.csv"),
        )
        .await;
        let b = first.batches[0].clone();
        assert!(b.control.count > 0);
        let cycle = offline(store, province.as_ref());

        // While the batch holds its people, the same people in a new file are refused.
        let dir = tempfile::tempdir().unwrap();
        let again = corrected_roster(dir.path());
        let (report, held) = import(store, province.as_ref(), PROJECT, &again).await;
        let accepted: u64 = held.batches.iter().map(|b| b.control.count).sum();
        let _ = report;
        assert_eq!(accepted, 0);

        // Finance may not cancel; the maker must give a reason.
        let e = cycle
            .step(b.id, "cancel", &finance(), Some("x"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("不具备"), "{e}");
        let e = cycle
            .step(b.id, "cancel", &clerk(), None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("作废须说明原因"), "{e}");
        assert_eq!(
            store.batch(b.id).await.unwrap().unwrap().state,
            BatchState::Draft
        );

        let r = cycle
            .step(b.id, "cancel", &clerk(), Some("名单有误，重新造册"))
            .await
            .unwrap();
        assert_eq!(r.moved, Some((BatchState::Draft, BatchState::Cancelled)));
        let lines = store.lines(b.id, 0, i64::MAX).await.unwrap();
        assert_eq!(lines.len() as u64, b.control.count);
        assert!(lines.iter().all(|l| l.state == LineState::Cancelled));
        let tally = store.tally(b.id).await.unwrap();
        assert_eq!(tally.cancelled, b.control);
        ykt_kernel::batch::check_balance(b.id, b.control, &tally).unwrap();
        let steps = store.batch_steps(b.id).await.unwrap();
        let last = steps.last().unwrap();
        assert_eq!(
            (
                last.step.as_str(),
                last.actor.as_str(),
                last.reason.as_deref()
            ),
            ("cancel", "daoli-clerk", Some("名单有误，重新造册"))
        );
        store.verify_audit().await.unwrap();

        // Nothing more happens to a cancelled batch.
        for step in ["submit_plan", "cancel"] {
            let e = cycle
                .step(b.id, step, &clerk(), Some("再试"))
                .await
                .unwrap_err();
            assert!(e.to_string().contains("已作废"), "{step}: {e}");
        }

        // The corrected roster's lines are accepted again: exactly the cancelled ones.
        // A third file with the same lines (CRLF line ends: other bytes again).
        let dir2 = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(scenario().join("roster.csv")).unwrap();
        let third = dir2.path().join("roster.csv");
        std::fs::write(&third, text.replace('\n', "\r\n")).unwrap();
        let (_, second) = import(store, province.as_ref(), PROJECT, &third).await;
        let n: u64 = second.batches.iter().map(|b| b.control.count).sum();
        assert_eq!(n, b.control.count);
        let nb = second.batches[0].clone();
        assert_eq!(nb.state, BatchState::Draft);

        // Once submitted, a batch cannot be cancelled any more.
        cycle
            .step(nb.id, "submit_plan", &clerk(), None)
            .await
            .unwrap();
        let e = cycle
            .step(nb.id, "cancel", &clerk(), Some("晚了"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("不能执行"), "{e}");
        let t = store.tally(nb.id).await.unwrap();
        assert_eq!(t.pending, nb.control);
    })
    .await;
}

/// Henan: a batch finance returned may still be cancelled (its order number never went to the
/// budget system); one with finance may not.
#[cfg(feature = "province-henan")]
#[tokio::test]
async fn henan_cancels_a_returned_batch_but_not_one_with_finance() {
    ykt_store::testing::each_backend("cancel_batch_henan", |db| async move {
        let store = &db.store;
        load_registers(store).await;
        let province = built_province("henan");
        let (_, r) = import(
            store,
            province.as_ref(),
            "HN03",
            &scenario().join("roster.csv"),
        )
        .await;
        let b = r.batches[0].clone();
        let cycle = offline(store, province.as_ref());
        cycle
            .step(b.id, "apply_funds", &clerk(), None)
            .await
            .unwrap();
        let e = cycle
            .step(b.id, "cancel", &clerk(), Some("有误"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("不能执行"), "{e}");
        cycle
            .step(b.id, "finance_return", &finance(), Some("材料不全"))
            .await
            .unwrap();
        let r = cycle
            .step(b.id, "cancel", &clerk(), Some("重新采集"))
            .await
            .unwrap();
        assert_eq!(r.moved, Some((BatchState::Returned, BatchState::Cancelled)));
        let t = store.tally(b.id).await.unwrap();
        assert_eq!((t.cancelled, t.pending.count), (b.control, 0));
    })
    .await;
}
