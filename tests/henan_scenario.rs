//! The shared scenario (`tests/scenarios/standard/`) through Henan's whole bank-pull cycle, on
//! SQLite and on PostgreSQL, against the simulated outside world over real HTTP: the budget
//! system links an indicator and pays; the agent bank pulls the detail by order number (its
//! first connection drops after five lines), fails three lines (wrong account, dormant account,
//! closed account), posts results shuffled, in chunks and partly twice, hands over one line
//! short; the department corrects two lines with signatures, the bank pulls only those again,
//! the third is refunded; the hand-over error is reported and remedied; the batch is
//! reconciled and published; the bank's monthly statement matches; finance's monthly report.
//!
//! Snapshots (same on both backends): validation report, workflow trace, order push, pulled
//! detail, results, corrections, ledger, reconciliation, SMS texts, published records, monthly
//! report. After every step the batch balances and the ledger sums to zero.
#![cfg(feature = "province-henan")]

mod henan_common;

use henan_common::*;
use std::fmt::Write;
use yikatong::provinces::henan::ops::Henan;
use yikatong::provinces::henan::{render, report};
use ykt_kernel::batch::{LineState, check_balance};
use ykt_kernel::card::{CardRecord, CardStatus};
use ykt_kernel::ports::FailureReason;
use ykt_kernel::{BankAccount, Fen};
use ykt_province_henan::calendar::WorkCalendar;
use ykt_store::testing::{TestDb, each_backend};
use ykt_store::{ImportMeta, kinds, ok_rows};

async fn invariants(store: &ykt_store::Store, batch: i64) {
    let b = store.batch(batch).await.unwrap().unwrap();
    check_balance(batch, b.control, &store.tally(batch).await.unwrap()).unwrap();
    assert_ledger(store).await;
}

/// Run the whole cycle; return the snapshots by name.
async fn cycle(db: &TestDb) -> Vec<(&'static str, String)> {
    let store = &db.store;
    let (validation, batch) = scenario_with_report(store).await;
    let (province, env) = world(store, scenario_faults(), None).await;
    let cal = WorkCalendar::builtin().unwrap();
    let ops = Henan {
        store,
        province: province.as_ref(),
        ports: &env.ports,
        today: today(),
        calendar: &cal,
    };
    let id = batch.id;
    let mut snaps = vec![("validation", validation)];

    // Maker ≠ checker: whoever applied for the funds cannot review them.
    let dual = user(store, "daoli-dual").await;
    ops.step(id, "apply_funds", &dual, None).await.unwrap();
    let refused = ops.review(id, &dual, None, None).await.unwrap_err();
    assert!(refused.is_refusal());
    assert!(
        refused.to_string().contains("经办与审核不得为同一人"),
        "{refused}"
    );
    assert!(
        store.henan_order_of_batch(id).await.unwrap().is_none(),
        "a refused review records nothing"
    );
    invariants(store, id).await;
    let finance = user(store, "daoli-cz").await;
    ops.review(id, &finance, None, None).await.unwrap();
    ops.step(id, "push_order", &finance, None).await.unwrap();
    invariants(store, id).await;

    // The system's steps until the bank has reported: funding (one "pending" answer first),
    // release, the bank pulls and posts.
    for _ in 0..5 {
        ops.sync().await.unwrap();
        env.settle().await.unwrap();
        invariants(store, id).await;
    }
    let lines = store.lines(id, 0, i64::MAX).await.unwrap();
    let failed: Vec<_> = lines
        .iter()
        .filter(|l| l.state == LineState::Failed)
        .collect();
    assert_eq!(failed.len(), 3, "three lines failed on their first attempt");

    // The deadlines before the department acts: the short hand-over must be reported within
    // 3 working days, so by the 4th it is overdue.
    let as_of = cal.add_working_days(today(), 4).unwrap();
    let before = ops.handovers(None, as_of).await.unwrap();
    assert!(
        before
            .iter()
            .any(|v| v.deadlines.as_ref().unwrap().any_overdue())
    );
    let deadlines = render::handovers(&before);

    // Corrections: the wrong account gets the new card HR&SS issued; the dormant account was
    // reactivated; the closed account is refunded.
    let clerk = user(store, "daoli-clerk").await;
    let mut corrected = Vec::new();
    for l in &failed {
        match l.fail_reason.as_deref().and_then(FailureReason::parse) {
            Some(FailureReason::WrongAccount) => {
                let account = BankAccount::parse("6228480099990000017").unwrap();
                let card = CardRecord {
                    resident_id: l.resident_id.clone(),
                    name: l.name.clone(),
                    card_no: "B00000001".into(),
                    bank: l.bank.clone(),
                    account: account.clone(),
                    status: CardStatus::Normal,
                    activated: true,
                };
                // The account must be the registry's: refused before HR&SS updated it.
                let e = ops
                    .correct(
                        id,
                        l.id,
                        &clerk,
                        "daoli-head",
                        "本人 签字",
                        Some(account.as_str()),
                        None,
                        "补办社保卡",
                    )
                    .await
                    .unwrap_err();
                assert!(e.to_string().contains("社保卡管理信息系统"), "{e}");
                store
                    .import_cards(
                        ok_rows(vec![card]),
                        ImportMeta::for_bytes(
                            kinds::CARDS,
                            "社保卡信息变更.csv",
                            b"new card",
                            "hrss",
                        ),
                    )
                    .await
                    .unwrap();
                // Without the head's sign-off (the clerk signing as head) it is refused.
                let e = ops
                    .correct(
                        id,
                        l.id,
                        &clerk,
                        "daoli-clerk",
                        &format!("本人 {}", l.name),
                        Some(account.as_str()),
                        None,
                        "补办社保卡",
                    )
                    .await
                    .unwrap_err();
                assert!(e.to_string().contains("负责人"), "{e}");
                ops.correct(
                    id,
                    l.id,
                    &clerk,
                    "daoli-head",
                    &format!("本人 {}", l.name),
                    Some(account.as_str()),
                    None,
                    "原账号错误，已补办社保卡",
                )
                .await
                .unwrap();
                corrected.push(l.id);
            }
            Some(FailureReason::DormantAccount) => {
                ops.correct(
                    id,
                    l.id,
                    &clerk,
                    "daoli-head",
                    &format!("监护人 {}", l.name),
                    None,
                    None,
                    "账户休眠，已激活",
                )
                .await
                .unwrap();
                corrected.push(l.id);
            }
            _ => {
                ops.refund(id, l.id, &clerk, &finance, "账户已销户，原渠道退回")
                    .await
                    .unwrap();
            }
        }
        invariants(store, id).await;
    }
    assert_eq!(corrected.len(), 2);

    // The bank pulls again: only the two corrected lines, each once, as attempt 2.
    let bank = env.banks.get("ABC-HN").unwrap();
    let pulled_before = bank.pulled().len();
    assert_eq!(ops.repull(id, &clerk).await.unwrap(), 2);
    env.settle().await.unwrap();
    let second: Vec<_> = bank.pulled()[pulled_before..].to_vec();
    let mut ids: Vec<i64> = second.iter().map(|l| l.line_id).collect();
    ids.sort();
    corrected.sort();
    assert_eq!(
        ids, corrected,
        "only the corrected lines are pulled again, once each"
    );
    assert!(second.iter().all(|l| l.attempt == 2));
    for l in &corrected {
        let attempts = store.line_attempts(*l).await.unwrap();
        assert_eq!(
            attempts
                .iter()
                .map(|a| a.outcome.as_deref())
                .collect::<Vec<_>>(),
            [Some("failed"), Some("credited")],
            "line {l}: failed once, credited once"
        );
    }
    for _ in 0..2 {
        ops.sync().await.unwrap();
    }
    invariants(store, id).await;
    let tally = store.tally(id).await.unwrap();
    assert!(tally.is_settled());
    let cards: Fen = store
        .ledger_balances()
        .await
        .unwrap()
        .into_iter()
        .filter(|(a, _)| a.kind == ykt_kernel::ledger::AccountKind::Beneficiaries)
        .map(|(_, v)| v)
        .sum();
    assert_eq!(
        cards, tally.credited.amount,
        "every credited line paid exactly once"
    );

    // Hand-overs: the short one is reported and remedied; the others are confirmed.
    loop {
        let open: Vec<_> = store
            .henan_handovers(Some(&batch.order_no))
            .await
            .unwrap()
            .into_iter()
            .filter(|h| h.state == "open")
            .collect();
        let Some(h) = open.first() else { break };
        if h.discrepancy.is_empty() {
            ops.check_handover(&batch.order_no, Some(h.seq), &clerk, None)
                .await
                .unwrap();
        } else {
            assert!(
                ops.check_handover(&batch.order_no, Some(h.seq), &clerk, None)
                    .await
                    .is_err()
            );
            ops.check_handover(
                &batch.order_no,
                Some(h.seq),
                &clerk,
                Some("入账笔数少一笔，请核查"),
            )
            .await
            .unwrap();
            bank.resubmit_handover(&batch.order_no, h.seq)
                .await
                .unwrap();
        }
    }
    ops.reconcile(id, &clerk).await.unwrap();
    ops.publish(id, &clerk).await.unwrap();
    invariants(store, id).await;
    let statement = bank.post_statement("2023-05").await.unwrap();
    assert_eq!(statement["matches"], true);

    // Renderings.
    let b = store.batch(id).await.unwrap().unwrap();
    let order = store.henan_order_of_batch(id).await.unwrap().unwrap();
    let mut trace = format!("批次 {} {} {}\n", b.order_no, b.region, b.state.label_zh());
    trace.push_str(&render::steps(&store.batch_steps(id).await.unwrap()));
    trace.push_str(&render::traffic(
        &store.henan_releases(&b.order_no).await.unwrap(),
        &store.henan_pulls(&b.order_no).await.unwrap(),
        &store.henan_posts(&b.order_no).await.unwrap(),
    ));
    snaps.push(("workflow_trace", trace));
    snaps.push(("order_push", render::order(&order)));

    let mask = province.mask_policy();
    let mut pulled = String::new();
    for p in bank.pulls() {
        let _ = writeln!(
            pulled,
            "{} 自明细{}之后 {}行{}",
            p.mode,
            p.after,
            p.lines,
            if p.complete { "" } else { "（连接中断）" }
        );
    }
    for l in bank.pulled() {
        let _ = writeln!(
            pulled,
            "  明细{} 第{}次 {} {} {} {}元 {} {}",
            l.line_id,
            l.attempt,
            mask.name(&l.name),
            mask.account(&l.account),
            l.bank,
            l.amount,
            l.period,
            l.region
        );
    }
    snaps.push(("pulled_detail", pulled));

    let results = store.henan_results(&b.order_no).await.unwrap();
    let mut res = render::results(&results);
    res.push_str("明细终态：\n");
    res.push_str(&render::lines(
        &store.henan_line_digest(id).await.unwrap(),
        &mask,
    ));
    snaps.push(("results", res));

    // The paged readers give what the whole-batch readers give, in the order asked, and
    // leave out lines of other batches.
    let whole = store.lines(id, 0, i64::MAX).await.unwrap();
    let mut ids = store.line_ids(id).await.unwrap();
    assert_eq!(ids, whole.iter().map(|l| l.id).collect::<Vec<_>>());
    ids.reverse();
    let paged = store.lines_by_id(id, &ids).await.unwrap();
    assert_eq!(
        paged.iter().map(|l| (l.id, l.state)).collect::<Vec<_>>(),
        whole
            .iter()
            .rev()
            .map(|l| (l.id, l.state))
            .collect::<Vec<_>>()
    );
    ids.sort_unstable();
    let digest = store.henan_line_digest(id).await.unwrap();
    assert_eq!(store.henan_line_digest_of(id, &ids).await.unwrap(), digest);
    let foreign = store.lines_by_id(id + 1_000, &ids[..1]).await.unwrap();
    assert!(foreign.is_empty(), "a line of another batch was returned");
    // The results page by page of lines (pages of 3 lines; a re-paid line has two) are the
    // whole order's results, in the same order.
    let mut pages = Vec::new();
    for page in ids.chunks(3) {
        pages.extend(store.henan_results_of(&b.order_no, page).await.unwrap());
    }
    let key = |r: &ykt_store::henan::ResultRow| (r.line_id, r.attempt, r.outcome.clone());
    assert_eq!(
        pages.iter().map(key).collect::<Vec<_>>(),
        results.iter().map(key).collect::<Vec<_>>()
    );
    assert!(
        results.iter().any(|r| r.attempt > 1),
        "no re-paid line in the scenario"
    );

    let mut corr = render::line_events(&store.henan_line_events(Some(id)).await.unwrap(), &mask);
    for l in &corrected {
        for a in store.line_attempts(*l).await.unwrap() {
            let _ = writeln!(
                corr,
                "  明细{l} 第{}次 {} {}元 {}",
                a.attempt,
                a.account_masked,
                a.amount,
                match a.outcome.as_deref() {
                    Some("credited") => "已入账",
                    Some("failed") => "失败",
                    _ => "-",
                }
            );
        }
    }
    snaps.push(("corrections", corr));

    let (sum, unbalanced) = store.ledger_check().await.unwrap();
    snaps.push((
        "ledger",
        render::ledger(&store.ledger_balances().await.unwrap(), sum, unbalanced),
    ));

    let mut rec = format!("期限检查（以{as_of}为准，部门未处理时）：\n{deadlines}\n处理后：\n");
    rec.push_str(&render::handovers(
        &ops.handovers(None, as_of).await.unwrap(),
    ));
    rec.push_str("银行台账对账：\n");
    rec.push_str(&render::statements(
        &store.henan_statements().await.unwrap(),
    ));
    snaps.push(("reconciliation", rec));

    snaps.push(("sms", render::sms(&results)));

    let mut published = String::new();
    for n in store.notices(Some("230102")).await.unwrap() {
        let _ = writeln!(published, "公示：{}（{}）", n.title, n.published_on);
        for line in n.body.lines() {
            let _ = writeln!(published, "  {line}");
        }
    }
    let _ = writeln!(published, "惠民惠农补贴查询记录：");
    for l in store.lines(id, 0, i64::MAX).await.unwrap() {
        let key = yikatong::cycle::lookup_key(store, l.resident_id.as_str(), &l.name);
        published.push_str(&render::published(
            &store.lookup_records(&key).await.unwrap(),
        ));
    }
    snaps.push(("published", published));

    let monthly = report::monthly(store, province.as_ref(), "2023-05")
        .await
        .unwrap();
    snaps.push(("monthly_report", report::render(&monthly)));
    snaps
}

async fn scenario_with_report(store: &ykt_store::Store) -> (String, ykt_store::payments::BatchRow) {
    let batch = scenario(store, &["ABC-HN"]).await;
    let roster = store
        .roster(batch.roster_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    let mut o = format!(
        "清册 {} 项目 {} 属期 {}：{}行，通过{}行（{}元），未通过{}行\n",
        roster.file_name,
        roster.project,
        roster.period,
        roster.lines,
        roster.accepted,
        roster.accepted_amount,
        roster.rejected
    );
    for (row, col, code, sev, msg, name, id) in store.roster_issues(roster.id).await.unwrap() {
        let _ = writeln!(
            o,
            "  第{row}行 {} {code} {sev} {name} {id} {msg}",
            col.as_deref().unwrap_or("-")
        );
    }
    (o, batch)
}

#[tokio::test]
async fn standard_scenario_through_henan() {
    each_backend("henan_scenario", |db| async move {
        for (name, text) in cycle(&db).await {
            insta::assert_snapshot!(name, text);
        }
    })
    .await;
}
