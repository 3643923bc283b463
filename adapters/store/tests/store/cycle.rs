//! The payment cycle on both backends: a batch formed from accepted lines, dispatched, results
//! delivered twice, out of order, for unknown lines and with wrong amounts, a failed line
//! corrected and paid again as a new attempt, another refunded. After every step the batch
//! balances and the ledger sums to zero; no line is ever credited twice.

use crate::common::{account, resident_id, roster_meta};
use ykt_kernel::batch::{LineState, Totals, check_balance};
use ykt_kernel::catalog::{Frequency, FundingChannel, PaymentBasis, Project};
use ykt_kernel::intake::{AcceptedLine, IntakeSummary, LineOutcome};
use ykt_kernel::ledger::{Account, AccountKind, Entry, EntryKind};
use ykt_kernel::period::CrossPeriodRule;
use ykt_kernel::ports::{BankOutcome, BankResult, FailureReason};
use ykt_kernel::{Fen, Period, RegionCode, Yuan};
use ykt_store::Store;
use ykt_store::cycle::LineFix;
use ykt_store::payments::RosterStart;
use ykt_store::testing::each_backend;

fn project() -> Project {
    Project {
        code: "P03".into(),
        name: "农村最低生活保障金".into(),
        short_name: "农村低保".into(),
        parent: None,
        lead_unit: "民政厅".into(),
        frequency: Frequency::Monthly,
        active: None,
        cross_period: CrossPeriodRule::Months(2),
        standard: None,
        unit: None,
        basis: PaymentBasis::Person,
        funding: FundingChannel::Treasury,
        exclusive_group: None,
        proxy_allowed: false,
        policy_basis: String::new(),
        target: String::new(),
        conditions: String::new(),
        standard_text: String::new(),
        test_date: String::new(),
        go_live: String::new(),
    }
}

fn line(n: u64, fen: i64) -> LineOutcome {
    LineOutcome::Accepted(AcceptedLine {
        row: n as u32 + 2,
        name: format!("张{n}"),
        id: resident_id(n),
        phone: None,
        region: RegionCode::parse("230102001201").unwrap(),
        period: Period::Month {
            year: 2023,
            month: 5,
        },
        amount: Yuan::from_fen(Fen(fen)),
        account: Some(account(n)),
        bank: Some("农业银行".into()),
        proxy: None,
        warnings: vec![],
    })
}

const TREASURY: fn() -> Account = || Account::new(AccountKind::Treasury, "230102");
const BANK: fn() -> Account = || Account::new(AccountKind::AgentBank, "农业银行");
const CARDS: fn() -> Account = || Account::new(AccountKind::Beneficiaries, "社保卡账户");

async fn assert_invariants(s: &Store, batch: i64) {
    let b = s.batch(batch).await.unwrap().unwrap();
    let tally = s.tally(batch).await.unwrap();
    check_balance(batch, b.control, &tally).unwrap();
    let (sum, unbalanced) = s.ledger_check().await.unwrap();
    assert_eq!(sum, Fen(0));
    assert_eq!(unbalanced, 0);
    // What left the treasury = what the cards got + what the bank still holds.
    let bal = |a: Account| async move {
        s.ledger_balances()
            .await
            .unwrap()
            .into_iter()
            .find(|(x, _)| *x == a)
            .map(|(_, v)| v)
            .unwrap_or_default()
    };
    assert_eq!(
        -bal(TREASURY()).await,
        bal(CARDS()).await + bal(BANK()).await
    );
    // The cards got exactly the credited lines.
    assert_eq!(bal(CARDS()).await, tally.credited.amount);
}

fn result(order: &str, line_id: i64, attempt: u32, fen: i64, ok: bool) -> BankResult {
    BankResult {
        order_no: order.into(),
        line_id,
        attempt,
        amount: Fen(fen),
        outcome: if ok {
            BankOutcome::Credited
        } else {
            BankOutcome::Failed {
                reason: FailureReason::DormantAccount,
            }
        },
        date: "2023-05-21".into(),
    }
}

#[tokio::test]
async fn results_apply_once_and_failures_are_repaid_or_refunded() {
    each_backend("cycle", |db| async move {
        let s = &db.store;
        let meta = roster_meta("test", "T", project(), "230102", "abc");
        let RosterStart::Started(mut imp) = s.begin_roster(meta).await.unwrap() else {
            panic!()
        };
        let lines: Vec<LineOutcome> = (0..5).map(|n| line(n, 10_000 + n as i64)).collect();
        imp.add(&lines).await.unwrap();
        let summary = IntakeSummary {
            lines: 5,
            accepted: 5,
            accepted_amount: Fen(50_010),
            ..Default::default()
        };
        let res = imp.finish(&summary, s).await.unwrap();
        let b = res.batches[0].clone();
        assert_eq!(
            b.control,
            Totals {
                count: 5,
                amount: Fen(50_010)
            }
        );

        // Funding: treasury → bank.
        let mut tx = s.begin().await.unwrap();
        s.post_entry_in(
            &mut tx,
            &Entry::transfer(
                EntryKind::Funding,
                Some(b.id),
                "fund",
                TREASURY(),
                BANK(),
                Fen(50_010),
            )
            .unwrap(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_invariants(s, b.id).await;

        let sent = s.dispatch_pending(b.id, "system", "system").await.unwrap();
        assert_eq!(sent.len(), 5);
        assert!(sent.iter().all(|l| l.attempt == 1));
        // Not recorded as sent (a crash before the bank's acceptance was recorded): the same
        // attempts come back, not new ones.
        let resend = s.dispatch_pending(b.id, "system", "system").await.unwrap();
        assert_eq!(resend, sent, "an unsent delivery is sent again, unchanged");
        s.mark_sent(&sent).await.unwrap();
        assert!(
            s.dispatch_pending(b.id, "system", "system")
                .await
                .unwrap()
                .is_empty(),
            "nothing is sent twice"
        );
        assert_invariants(s, b.id).await;
        let id = |i: usize| sent[i].line_id;
        let fen = |i: usize| sent[i].amount.0;
        let o = b.order_no.as_str();

        // Out of order, partly: line 3 fails, then 0 and 1 credited.
        let r = s
            .apply_results(
                b.id,
                o,
                &[
                    result(o, id(3), 1, fen(3), false),
                    result(o, id(1), 1, fen(1), true),
                    result(o, id(0), 1, fen(0), true),
                ],
                "bank",
                &BANK(),
                &CARDS(),
            )
            .await
            .unwrap();
        assert_eq!(
            (
                r.credited.count,
                r.failed.count,
                r.duplicates,
                r.anomalies.len()
            ),
            (2, 1, 0, 0)
        );
        assert_invariants(s, b.id).await;

        // The same delivery again, plus trouble: a different outcome for a settled line, a wrong
        // amount, an unknown line, another batch's order number.
        let r = s
            .apply_results(
                b.id,
                o,
                &[
                    result(o, id(1), 1, fen(1), true),
                    result(o, id(0), 1, fen(0), false),
                    result(o, id(2), 1, fen(2) + 1, true),
                    result(o, 999_999, 1, 100, true),
                    result("OTHER", id(4), 1, fen(4), true),
                ],
                "bank",
                &BANK(),
                &CARDS(),
            )
            .await
            .unwrap();
        assert_eq!((r.credited.count, r.failed.count, r.duplicates), (0, 0, 1));
        let kinds: Vec<&str> = r.anomalies.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "conflicting_outcome",
                "amount_mismatch",
                "unknown_line",
                "wrong_order"
            ]
        );
        assert_eq!(s.anomalies(b.id).await.unwrap().len(), 4);
        let tally = s.tally(b.id).await.unwrap();
        assert_eq!(tally.credited.count, 2, "a line is never credited twice");
        assert_invariants(s, b.id).await;

        // The rest: 2 credited, 4 fails.
        s.apply_results(
            b.id,
            o,
            &[
                result(o, id(2), 1, fen(2), true),
                result(o, id(4), 1, fen(4), false),
            ],
            "bank",
            &BANK(),
            &CARDS(),
        )
        .await
        .unwrap();
        let t = s.tally(b.id).await.unwrap();
        assert_eq!(
            (t.credited.count, t.failed.count, t.in_flight.count),
            (3, 2, 0)
        );
        assert_invariants(s, b.id).await;

        // Line 3 is corrected and paid again as attempt 2 of the same line.
        let fix = LineFix {
            account: Some(account(77)),
            reason: "账户休眠，已激活新卡".into(),
            beneficiary_signed: Some("本人".into()),
            head_signoff: Some("head".into()),
            ..Default::default()
        };
        assert!(
            s.correct_line(b.id, id(0), &fix, "clerk", "dept_maker")
                .await
                .is_err(),
            "a credited line cannot be corrected"
        );
        s.correct_line(b.id, id(3), &fix, "clerk", "dept_maker")
            .await
            .unwrap();
        let again = s.dispatch_pending(b.id, "system", "system").await.unwrap();
        s.mark_sent(&again).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].line_id, again[0].attempt), (id(3), 2));
        assert_eq!(again[0].account, account(77));
        // A late result for attempt 1 changes nothing; attempt 2 is credited.
        let r = s
            .apply_results(
                b.id,
                o,
                &[
                    result(o, id(3), 1, fen(3), true),
                    result(o, id(3), 2, fen(3), true),
                ],
                "bank",
                &BANK(),
                &CARDS(),
            )
            .await
            .unwrap();
        assert_eq!((r.credited.count, r.anomalies.len()), (1, 1));
        assert_eq!(r.anomalies[0].kind, "stale_attempt");
        let attempts = s.line_attempts(id(3)).await.unwrap();
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[0].outcome.as_deref(), Some("failed"));
        assert_eq!(attempts[1].outcome.as_deref(), Some("credited"));
        assert!(!attempts[1].account_masked.contains(account(77).as_str()));
        assert_invariants(s, b.id).await;

        // Line 4 cannot be paid: refunded through the original channel by two people.
        let route = |amount: Fen| {
            vec![
                Entry::transfer(
                    EntryKind::Refund,
                    Some(b.id),
                    "原渠道退回",
                    BANK(),
                    TREASURY(),
                    amount,
                )
                .unwrap(),
            ]
        };
        assert!(
            s.refund_line(b.id, id(4), "无法发放", "clerk", "clerk", route)
                .await
                .is_err(),
            "the requester cannot approve"
        );
        let refunded = s
            .refund_line(b.id, id(4), "无法发放", "clerk", "finance", route)
            .await
            .unwrap();
        assert_eq!(refunded, Fen(fen(4)));
        assert!(
            s.refund_line(b.id, id(4), "again", "clerk", "finance", route)
                .await
                .is_err(),
            "refunded once"
        );
        let t = s.tally(b.id).await.unwrap();
        assert!(t.is_settled());
        assert_eq!(t.refunded.amount, Fen(fen(4)));
        assert_eq!(t.get(LineState::Credited).count, 4);
        assert_invariants(s, b.id).await;
        // The bank holds nothing for this batch any more.
        let bank = s
            .ledger_balances()
            .await
            .unwrap()
            .into_iter()
            .find(|(a, _)| *a == BANK())
            .map(|(_, v)| v)
            .unwrap();
        assert_eq!(bank, Fen(0));
        s.verify_audit().await.unwrap();
    })
    .await;
}

/// A delivery larger than one statement (mark_sent writes 1,000 attempts a statement, a
/// delivery's lines are read 900 at a time, settled 500 at a time): every attempt is
/// recorded as sent exactly when asked, every result applied once.
#[tokio::test]
async fn large_deliveries_span_statements() {
    each_backend("cycle_large", |db| async move {
        let s = &db.store;
        let meta = roster_meta("test", "T", project(), "230102", "abc");
        let RosterStart::Started(mut imp) = s.begin_roster(meta).await.unwrap() else {
            panic!()
        };
        const N: u64 = 2_100;
        let lines: Vec<LineOutcome> = (0..N).map(|n| line(n, 10_000)).collect();
        imp.add(&lines).await.unwrap();
        let summary = IntakeSummary {
            lines: N,
            accepted: N,
            accepted_amount: Fen(10_000 * N as i64),
            ..Default::default()
        };
        let res = imp.finish(&summary, s).await.unwrap();
        let b = res.batches[0].clone();
        let sent = s.dispatch_pending(b.id, "system", "system").await.unwrap();
        assert_eq!(sent.len(), N as usize);
        s.mark_sent(&sent[..1_500]).await.unwrap();
        let unsent = s.unsent_attempts(b.id).await.unwrap();
        assert_eq!(
            unsent,
            sent[1_500..].to_vec(),
            "exactly the attempts not marked"
        );
        s.mark_sent(&sent).await.unwrap();
        assert!(s.unsent_attempts(b.id).await.unwrap().is_empty());

        let results: Vec<BankResult> = sent
            .iter()
            .rev()
            .map(|l| result(&b.order_no, l.line_id, l.attempt, 10_000, true))
            .collect();
        let r = s
            .apply_results(b.id, &b.order_no, &results, "system", &BANK(), &CARDS())
            .await
            .unwrap();
        assert_eq!(r.credited.count, N);
        assert_eq!(r.credited.amount, Fen(10_000 * N as i64));
        assert!(r.anomalies.is_empty(), "{:?}", r.anomalies.first());
        let again = s
            .apply_results(b.id, &b.order_no, &results, "system", &BANK(), &CARDS())
            .await
            .unwrap();
        assert_eq!(again.duplicates, N, "a repeated delivery changes nothing");
        assert_eq!(again.credited.count, 0);
        let tally = s.tally(b.id).await.unwrap();
        assert_eq!(tally.credited.count, N);
    })
    .await;
}
