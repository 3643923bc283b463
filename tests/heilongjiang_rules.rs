//! 黑龙江省's rules, each on SQLite and PostgreSQL against the simulators over HTTP:
//! maker ≠ checker; the ledger balances after every step (and never touches a unit account);
//! results delivered twice, out of order, stale or contradicting change nothing; a line is
//! never credited twice; the period window; the grain-risk-fund channel as configuration;
//! the notice deadlines; bad messages refused with nothing changed.

#![cfg(feature = "province-heilongjiang")]

mod common;
mod heilongjiang_common;

use common::*;
use heilongjiang_common::*;
use yikatong::cycle::{CycleError, account};
use yikatong::provinces::heilongjiang::notices::{self, DutyKind, DutyStatus};
use yikatong::provinces::heilongjiang::ops::Hlj;
use ykt_http::heilongjiang::{messages as m, xml};
use ykt_kernel::Fen;
use ykt_kernel::batch::{BatchState, LineState};
use ykt_kernel::ledger::AccountKind;
use ykt_kernel::ports::{BankOutcome, FailureReason, RefundRequest};
use ykt_kernel::workflow::WorkflowError;
use ykt_kernel::{BankAccount, Role};
use ykt_store::Store;
use ykt_store::cycle::LineFix;
use ykt_store::payments::BatchRow;
use ykt_store::testing::each_backend;

/// Registers and the standard roster imported; returns the roster's batch (13 lines).
async fn standard_batch(store: &Store, w: &World) -> BatchRow {
    load_registers(store).await;
    let tmp = tempfile::tempdir().unwrap();
    let p = w.province.as_ref();
    import(store, p, PROJECT, &scenario().join("earlier.csv")).await;
    import(store, p, URBAN, &scenario().join("urban.csv")).await;
    let (_, r) = import(store, p, PROJECT, &roster_xlsx(tmp.path())).await;
    r.batches[0].clone()
}

/// Take the batch to `dispatched` (submit, request, approve as the right people).
async fn pay(h: &Hlj<'_>, b: i64) {
    h.step(b, "submit_plan", &clerk(), None)
        .await
        .unwrap()
        .all()
        .unwrap();
    h.step(b, "request_payment", &clerk(), None)
        .await
        .unwrap()
        .all()
        .unwrap();
    h.step(b, "finance_approve", &finance(), None)
        .await
        .unwrap()
        .all()
        .unwrap();
}

async fn collect_until_done(h: &Hlj<'_>, b: i64) {
    for _ in 0..4 {
        h.collect(b).await.unwrap();
        assert_invariants(h.store, b).await;
        if h.store.tally(b).await.unwrap().in_flight.count == 0 {
            break;
        }
    }
}

fn approvals(dates: &[ykt_store::heilongjiang::MessageDate]) -> usize {
    dates.iter().filter(|d| d.kind == "approval").count()
}

#[tokio::test]
async fn the_maker_never_approves_and_refusals_never_reach_the_budget_system() {
    each_backend("hlj_maker_checker", |db| async move {
        let store = &db.store;
        let w = World::start(bank(false, false, false)).await;
        let h = w.hlj(store);
        let b = standard_batch(store, &w).await;
        h.step(b.id, "submit_plan", &clerk(), None)
            .await
            .unwrap()
            .all()
            .unwrap();
        // Bob is both a department clerk and a finance reviewer; he raises the request.
        let bob = user("bob", &[Role::DeptMaker, Role::FinanceReviewer], "230102");
        h.step(b.id, "request_payment", &bob, None)
            .await
            .unwrap()
            .all()
            .unwrap();

        // The maker of the batch, even holding the finance role, cannot approve it.
        let maker_too = user(
            &clerk().login,
            &[Role::DeptMaker, Role::FinanceReviewer],
            "230102",
        );
        for who in [&maker_too, &bob] {
            let e = h
                .step(b.id, "finance_approve", who, None)
                .await
                .unwrap_err();
            assert!(
                matches!(e, CycleError::Refused(WorkflowError::MakerChecker { .. })),
                "{e}"
            );
            let e = h
                .step(b.id, "finance_return", who, Some("退回"))
                .await
                .unwrap_err();
            assert!(matches!(
                e,
                CycleError::Refused(WorkflowError::MakerChecker { .. })
            ));
        }
        // Wrong role, wrong region.
        let e = h
            .step(b.id, "finance_approve", &clerk(), None)
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            CycleError::Refused(WorkflowError::RoleDenied { .. })
        ));
        let far = user("nangang-finance", &[Role::FinanceReviewer], "230103");
        let e = h
            .step(b.id, "finance_approve", &far, None)
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            CycleError::Refused(WorkflowError::OutOfScope { .. })
        ));
        // None of this reached the budget system or moved the batch.
        let now = store.batch(b.id).await.unwrap().unwrap();
        assert_eq!(now.state, BatchState::FundingRequested);
        assert_eq!(
            approvals(&store.hlj_message_dates(&b.order_no).await.unwrap()),
            0
        );
        assert_invariants(store, b.id).await;

        // A different finance user approves; the voucher is paid at once.
        let s = h
            .step(b.id, "finance_approve", &finance(), None)
            .await
            .unwrap()
            .all()
            .unwrap();
        assert_eq!(s.last().unwrap().batch.state, BatchState::Dispatched);
        assert_eq!(
            approvals(&store.hlj_message_dates(&b.order_no).await.unwrap()),
            1
        );
        let steps = store.batch_steps(b.id).await.unwrap();
        let actor = |code: &str| steps.iter().find(|s| s.step == code).unwrap().actor.clone();
        assert_ne!(actor("finance_approve"), actor("request_payment"));
        assert_ne!(actor("finance_approve"), now.maker);

        // Refunds need two different people too.
        collect_until_done(&h, b.id).await;
        let failed = store
            .lines(b.id, 0, i64::MAX)
            .await
            .unwrap()
            .into_iter()
            .find(|l| l.state == LineState::Failed)
            .expect("seed 2 fails some of the scenario's accounts");
        let e = h
            .refund(b.id, failed.id, "无法发放", &maker_too, &maker_too)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("同一人"), "{e}");
        assert_eq!(
            store.tally(b.id).await.unwrap().refunded.count,
            0,
            "the refused refund changed nothing"
        );
        assert_invariants(store, b.id).await;
    })
    .await;
}

/// A refund retried after the treasury answered (a crash before the platform recorded it, or
/// an answer lost on the way) returns the money once: the agent bank answers the same request
/// number with its first receipt and refuses the number for another amount, and the
/// platform's own refund of the line, which sends the same number, then goes through.
#[tokio::test]
async fn a_refund_repeated_with_the_same_request_number_refunds_once() {
    each_backend("hlj_refund_retry", |db| async move {
        let store = &db.store;
        let w = World::start(bank(false, false, false)).await;
        let h = w.hlj(store);
        let b = standard_batch(store, &w).await;
        for (code, who) in [
            ("submit_plan", clerk()),
            ("request_payment", clerk()),
            ("finance_approve", finance()),
        ] {
            h.step(b.id, code, &who, None).await.unwrap().all().unwrap();
        }
        collect_until_done(&h, b.id).await;
        let failed = store
            .lines(b.id, 0, i64::MAX)
            .await
            .unwrap()
            .into_iter()
            .find(|l| l.state == LineState::Failed)
            .expect("seed 2 fails some of the scenario's accounts");
        let (_, voucher) = store.batch_refs(b.id).await.unwrap();
        let req = RefundRequest {
            reference: voucher.unwrap(),
            request_no: RefundRequest::request_no_for(&b.order_no, failed.id, failed.attempt),
            line_id: failed.id,
            amount: failed.amount,
            reason: "无法发放".into(),
        };
        let treasury = h.ports.treasury.clone().unwrap();
        let refunded = || async {
            let books: serde_json::Value = reqwest::get(format!("{}/books", w.sims.bank.url()))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            Fen(books["refunded"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_i64().unwrap())
                .sum())
        };
        let first = treasury.refund(&req).await.unwrap();
        let again = treasury.refund(&req).await.unwrap();
        assert_eq!(again, first, "the first receipt again");
        assert_eq!(refunded().await, failed.amount, "refunded once");
        let other = RefundRequest {
            amount: Fen(1),
            ..req.clone()
        };
        let e = treasury.refund(&other).await.unwrap_err();
        assert!(e.to_string().contains("退款申请号"), "{e}");
        assert_eq!(refunded().await, failed.amount);
        // The platform's refund of the line: recorded with the bank's refund, nothing more
        // taken back.
        let amount = h
            .refund(b.id, failed.id, "无法发放", &clerk(), &finance())
            .await
            .unwrap();
        assert_eq!(amount, failed.amount);
        assert_eq!(refunded().await, failed.amount);
        let t = store.tally(b.id).await.unwrap();
        assert_eq!((t.refunded.count, t.refunded.amount), (1, failed.amount));
        assert_invariants(store, b.id).await;
    })
    .await;
}

#[tokio::test]
async fn the_ledger_balances_after_every_step_and_no_unit_account_is_ever_used() {
    each_backend("hlj_ledger", |db| async move {
        let store = &db.store;
        // Half of the accounts fail, returns come in halves, twice, shuffled.
        let mut cfg = bank(true, true, true);
        cfg.fail_share = 0.5;
        let w = World::start(cfg).await;
        let h = w.hlj(store);
        let b = standard_batch(store, &w).await;
        let (_, g) = import_grain(store, w.province.as_ref()).await;
        for id in [b.id, g.batches[0].id] {
            assert_invariants(store, id).await;
            for (code, who) in [
                ("submit_plan", clerk()),
                ("request_payment", clerk()),
                ("finance_approve", finance()),
            ] {
                for r in h.step(id, code, &who, None).await.unwrap().all().unwrap() {
                    assert_invariants(store, r.batch.id).await;
                }
            }
            collect_until_done(&h, id).await;
            // Every failure is refunded: the money walks back along the route.
            for l in store.lines(id, 0, i64::MAX).await.unwrap() {
                if l.state == LineState::Failed {
                    h.refund(id, l.id, "无法发放", &clerk(), &finance())
                        .await
                        .unwrap();
                    assert_invariants(store, id).await;
                }
            }
            h.collect(id).await.unwrap();
            assert_invariants(store, id).await;
            for (code, who) in [("reconcile", finance()), ("publish", clerk())] {
                h.step(id, code, &who, None).await.unwrap().all().unwrap();
                assert_invariants(store, id).await;
            }
            let money = batch_money(store, id).await;
            let t = store.tally(id).await.unwrap();
            assert!(t.refunded.count > 0, "half of the accounts fail");
            let source = if id == b.id {
                AccountKind::Treasury
            } else {
                AccountKind::Adbc
            };
            // What left the source is exactly what reached the cards.
            assert_eq!(-money[&source], t.credited.amount);
            assert_eq!(money[&AccountKind::Beneficiaries], t.credited.amount);
            let kinds: Vec<AccountKind> = money.keys().copied().collect();
            let expected = if id == b.id {
                vec![
                    AccountKind::Treasury,
                    AccountKind::AgentBank,
                    AccountKind::Beneficiaries,
                ]
            } else {
                vec![
                    AccountKind::Adbc,
                    AccountKind::GrainRiskFund,
                    AccountKind::AgentBank,
                    AccountKind::Beneficiaries,
                ]
            };
            assert_eq!(kinds, expected);
        }
        // The grain-risk-fund hops carry the subjects of 黑财监〔2021〕30号 二(三)四.
        let subjects: Vec<Option<String>> = store
            .hlj_ledger(&[g.batches[0].id])
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "funding")
            .map(|e| e.subject)
            .collect();
        assert_eq!(
            subjects,
            [Some("1700502".to_owned()), Some("2220115".to_owned())]
        );
    })
    .await;
}

#[tokio::test]
async fn results_twice_out_of_order_stale_or_contradicting_change_nothing() {
    each_backend("hlj_results", |db| async move {
        let store = &db.store;
        let w = World::start(bank(true, true, false)).await;
        let h = w.hlj(store);
        let b = standard_batch(store, &w).await;
        pay(&h, b.id).await;
        collect_until_done(&h, b.id).await;
        let snapshot = |store: Store, id: i64| async move {
            (
                store.tally(id).await.unwrap(),
                store.hlj_ledger(&[id]).await.unwrap().len(),
                store
                    .lines(id, 0, i64::MAX)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|l| (l.id, l.state, l.attempt))
                    .collect::<Vec<_>>(),
            )
        };
        let before = snapshot(store.clone(), b.id).await;

        // Collecting again asks from the batch's cursor: nothing new, nothing changes.
        let r = h.collect(b.id).await.unwrap();
        let res = r.results.unwrap();
        assert_eq!(res.credited.count + res.failed.count, 0);
        assert!(res.anomalies.is_empty());
        assert_eq!(snapshot(store.clone(), b.id).await, before);

        // The whole history again (no cursor: every detail the bank repeated, shuffled),
        // delivered straight to the store, reversed and doubled: nothing changes.
        let bank_port = h.ports.bank.clone().unwrap();
        let mut results = bank_port.collect_results(&b.order_no).await.unwrap();
        results.reverse();
        let twice: Vec<_> = results.iter().chain(results.iter()).cloned().collect();
        let (agent, _) = store.batch_refs(b.id).await.unwrap();
        let from = account(AccountKind::AgentBank, &b, agent.as_deref());
        let to = account(AccountKind::Beneficiaries, &b, None);
        let rep = store
            .apply_results(b.id, &b.order_no, &twice, "system", &from, &to)
            .await
            .unwrap();
        assert_eq!(rep.credited.count + rep.failed.count, 0);
        assert_eq!(rep.duplicates as usize, twice.len());
        assert_eq!(snapshot(store.clone(), b.id).await, before);

        // A contradicting report for a credited line is flagged, never applied.
        let credited = results
            .iter()
            .find(|r| r.outcome == BankOutcome::Credited)
            .unwrap()
            .clone();
        let mut liar = credited.clone();
        liar.outcome = BankOutcome::Failed {
            reason: FailureReason::WrongAccount,
        };
        let rep = store
            .apply_results(b.id, &b.order_no, &[liar], "system", &from, &to)
            .await
            .unwrap();
        assert_eq!(rep.anomalies.len(), 1);
        assert_eq!(rep.anomalies[0].kind, "conflicting_outcome");
        assert_eq!(snapshot(store.clone(), b.id).await, before);

        // Out of order after a re-payment: the new attempt's result arrives, then the old
        // attempt's failure again; the old one is stale and changes nothing.
        let failed = store
            .lines(b.id, 0, i64::MAX)
            .await
            .unwrap()
            .into_iter()
            .find(|l| l.state == LineState::Failed)
            .unwrap();
        let old = results
            .iter()
            .find(|r| r.line_id == failed.id)
            .unwrap()
            .clone();
        let fix = LineFix {
            account: Some(BankAccount::parse("6228480000031000102").unwrap()),
            reason: "更正账号".into(),
            ..LineFix::default()
        };
        h.correct(b.id, failed.id, &fix, &clerk()).await.unwrap();
        h.redispatch(b.id, &clerk()).await.unwrap();
        let mut new = old.clone();
        new.attempt = 2;
        new.outcome = BankOutcome::Credited;
        let rep = store
            .apply_results(
                b.id,
                &b.order_no,
                &[new.clone(), old.clone()],
                "system",
                &from,
                &to,
            )
            .await
            .unwrap();
        assert_eq!(rep.credited.count, 1);
        assert_eq!(rep.anomalies.len(), 1);
        assert_eq!(rep.anomalies[0].kind, "stale_attempt");
        let line = store
            .lines(b.id, 0, i64::MAX)
            .await
            .unwrap()
            .into_iter()
            .find(|l| l.id == failed.id)
            .unwrap();
        assert_eq!((line.state, line.attempt), (LineState::Credited, 2));
        // And the same pair once more: nothing at all.
        let rep = store
            .apply_results(b.id, &b.order_no, &[old, new], "system", &from, &to)
            .await
            .unwrap();
        assert_eq!(rep.credited.count, 0);
        assert_invariants(store, b.id).await;
    })
    .await;
}

#[tokio::test]
async fn a_line_is_never_credited_twice_and_cross_bank_fees_never_touch_the_beneficiary() {
    each_backend("hlj_once", |db| async move {
        let store = &db.store;
        let w = World::start(bank(true, true, true)).await;
        let h = w.hlj(store);
        let b = standard_batch(store, &w).await;
        pay(&h, b.id).await;
        collect_until_done(&h, b.id).await;
        let lines = store.lines(b.id, 0, i64::MAX).await.unwrap();
        let credited = lines
            .iter()
            .find(|l| l.state == LineState::Credited)
            .unwrap();

        // Nothing pending: no re-dispatch; a credited line cannot be corrected.
        assert!(h.redispatch(b.id, &clerk()).await.is_err());
        let fix = LineFix {
            reason: "再付一次".into(),
            ..LineFix::default()
        };
        assert!(h.correct(b.id, credited.id, &fix, &clerk()).await.is_err());

        // Forged at the budget system: a re-payment voucher for a credited line is refused
        // by the agent bank and nothing is paid.
        let (_, voucher) = store.batch_refs(b.id).await.unwrap();
        let voucher = voucher.unwrap();
        let http = reqwest::Client::new();
        let get = http
            .get(format!("{}/vouchers/{voucher}", w.sims.budget.url()))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let notice = m::read_notice(&xml::parse(&get).unwrap()).unwrap();
        let payee = m::Payee {
            line_id: credited.id,
            attempt: 2,
            region: "",
            name: &credited.name,
            account: credited.account.as_str(),
            bank: &credited.bank,
            amount: credited.amount,
            period: &credited.period,
        };
        let doc = m::voucher_5201(&notice, "", &voucher, "重复支付", "", w.day(3), &[payee]);
        let resp = http
            .post(format!("{}/vouchers/{voucher}/repay", w.sims.budget.url()))
            .body(xml::encode(&doc))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::CONFLICT);
        let err = xml::parse(&resp.bytes().await.unwrap()).unwrap();
        assert!(err.text_of("Message").contains("已支付成功"), "{err:?}");

        // Every line credited at most once, the cards got exactly the credited lines, in full.
        assert_eq!(store.hlj_lines_credited_twice(b.id).await.unwrap(), 0);
        for l in store.lines(b.id, 0, i64::MAX).await.unwrap() {
            let n = store
                .line_attempts(l.id)
                .await
                .unwrap()
                .iter()
                .filter(|a| a.outcome.as_deref() == Some("credited"))
                .count();
            assert!(n <= 1);
            assert_eq!(n == 1, l.state == LineState::Credited);
        }
        let returns = store.hlj_returns("heilongjiang", Some(b.id)).await.unwrap();
        let paid: Vec<_> = returns.iter().filter(|r| r.credited).collect();
        assert!(!paid.is_empty());
        for r in &paid {
            // 中国工商银行 paying 中国农业银行 cards: cross-bank, fee borne by the bank.
            assert!(r.cross_bank);
            assert_eq!(r.fee, Fen(150));
            let line = lines.iter().find(|l| l.id == r.line_id).unwrap();
            assert_eq!(
                r.paid, line.amount,
                "the beneficiary receives the full amount"
            );
        }
        let tally = store.tally(b.id).await.unwrap();
        assert_eq!(
            batch_money(store, b.id).await[&AccountKind::Beneficiaries],
            tally.credited.amount
        );
        assert_invariants(store, b.id).await;
    })
    .await;
}

#[tokio::test]
async fn notice_deadlines_are_tracked_and_overdue_ones_flagged() {
    each_backend("hlj_notices", |db| async move {
        let store = &db.store;
        let w = World::start(bank(false, false, false)).await;
        let h = w.hlj(store);
        let b = standard_batch(store, &w).await;
        w.day(0);
        h.step(b.id, "submit_plan", &clerk(), None)
            .await
            .unwrap()
            .all()
            .unwrap();
        let bulletin = |ds: &[notices::Duty]| {
            ds.iter()
                .find(|d| d.batch_id == b.id && d.kind == DutyKind::Bulletin)
                .unwrap()
                .clone()
        };
        let d = bulletin(&notices::duties(store, "heilongjiang").await.unwrap());
        assert_eq!(d.trigger_on, start_date());
        assert_eq!(d.due_on, w.day(7));
        assert_eq!(d.status(w.day(7)), DutyStatus::Open(0));
        assert!(!d.flagged(w.day(7)));
        assert_eq!(d.status(w.day(8)), DutyStatus::Overdue(1));
        assert!(d.flagged(w.day(8)));

        // A township clerk outside the county cannot post it; the county clerk posts late.
        let far = user("nangang-clerk", &[Role::DeptMaker], "230103");
        assert!(h.post_bulletin(b.id, &far, None).await.is_err());
        w.day(8);
        // Sixteen postings at once (two clerks clicking, a retried request): one notice, one
        // audit entry, the same posting date for all.
        let audited = async || {
            store
                .audit_entries(1, i64::MAX)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.record.action == "notice.bulletin")
                .count()
        };
        let poster = clerk();
        let posts = join_all(
            (0..16)
                .map(|_| h.post_bulletin(b.id, &poster, None))
                .collect(),
        )
        .await;
        let mut dates = std::collections::BTreeSet::new();
        for p in posts {
            dates.insert(p.unwrap().0.published_on);
        }
        assert_eq!(dates.len(), 1, "{dates:?}");
        assert_eq!(audited().await, 1, "one audit entry for sixteen postings");
        store.verify_audit().await.unwrap();
        let (n, _) = h.post_bulletin(b.id, &clerk(), None).await.unwrap();
        assert_eq!(audited().await, 1);
        assert!(!n.body.contains("230102194702041018"), "masked");
        assert!(n.body.contains("230102********1018"));
        let d = bulletin(&notices::duties(store, "heilongjiang").await.unwrap());
        assert_eq!(d.done_on, Some(w.day(8)));
        assert_eq!(d.status(w.day(30)), DutyStatus::Late(1));
        // Posting again keeps the first date.
        w.day(9);
        let (again, _) = h.post_bulletin(b.id, &clerk(), None).await.unwrap();
        assert_eq!(again.published_on, w.day(8).to_string());

        // Results on day 10 start the 20-day web clock.
        h.step(b.id, "request_payment", &clerk(), None)
            .await
            .unwrap()
            .all()
            .unwrap();
        h.step(b.id, "finance_approve", &finance(), None)
            .await
            .unwrap()
            .all()
            .unwrap();
        w.day(10);
        h.collect(b.id).await.unwrap();
        let web = notices::duties(store, "heilongjiang")
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.batch_id == b.id && d.kind == DutyKind::Web)
            .unwrap();
        assert_eq!(web.trigger_on, w.day(10));
        assert_eq!(web.due_on, w.day(30));
        assert_eq!(web.status(w.day(31)), DutyStatus::Overdue(1));
        assert!(notices::render_duties(&[web], w.day(31)).contains("【逾期】"));
    })
    .await;
}

#[tokio::test]
async fn grain_risk_fund_projects_are_configuration() {
    each_backend("hlj_grain_cfg", |db| async move {
        let store = &db.store;
        load_registers(store).await;
        let cfg = yikatong::config::Config {
            province_settings: serde_json::json!({"grain_risk_fund_projects": ["HLJ03"]}),
            ..Default::default()
        };
        let p = yikatong::build_province(
            yikatong::select_province(Some("heilongjiang"), &cfg).unwrap(),
            &cfg,
        )
        .unwrap();
        let (_, r) = import(store, p.as_ref(), PROJECT, &scenario().join("earlier.csv")).await;
        assert_eq!(r.batches[0].funding, "grain_risk_fund");
        let (_, r) = import(store, p.as_ref(), URBAN, &scenario().join("urban.csv")).await;
        assert_eq!(r.batches[0].funding, "treasury");
        assert_eq!(
            p.route(ykt_kernel::catalog::FundingChannel::GrainRiskFund),
            [
                AccountKind::Adbc,
                AccountKind::GrainRiskFund,
                AccountKind::AgentBank
            ]
        );
    })
    .await;
}

/// Lines outside the project's 发放属期 or its cross-period rule are rejected (no database).
#[tokio::test]
async fn periods_outside_the_window_or_the_cross_period_rule_are_rejected() {
    let p = province();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("roster.csv");
    std::fs::write(
        &file,
        "姓名,身份证号码,行政区划代码,补贴金额,属期\n\
         王秀英,230102194702041018,230102001201,300.00,2023-06\n\
         李建国,230102195403071027,230102001201,300.00,2023-05\n\
         张桂兰,230102196104101032,230102001201,300.00,2023-10\n\
         刘德福,23010219680513104X,230102001201,300.00,2023-09\n",
    )
    .unwrap();
    let mut regs = yikatong::registers::MemRegisters::default();
    regs.add_regions(yikatong::registers::demo_regions());
    // 困难残疾人生活补贴: 发放属期 2023年6-12月, 可按照当前月向前/后追溯3个月.
    let project = p.catalog().find("HLJ17").unwrap();
    let req = yikatong::intake::Request {
        province: p.as_ref(),
        project,
        period: ykt_kernel::Period::parse("2023-06").unwrap(),
        today: start_date(),
        scope: None,
        regions: Some(&regs),
        check_cards: false,
    };
    let r = yikatong::intake::check(&file, &req, &regs, &regs)
        .await
        .unwrap();
    let codes = |row: u32| {
        r.problems
            .iter()
            .filter(|x| x.row == row)
            .map(|x| x.code.as_str())
            .collect::<Vec<_>>()
    };
    assert!(codes(2).is_empty());
    assert_eq!(
        codes(3),
        ["period.out_of_window"],
        "before the project's window"
    );
    assert_eq!(codes(4), ["period.out_of_window"], "beyond +3 months");
    assert!(codes(5).is_empty(), "+3 months is allowed");
    assert_eq!(r.summary.accepted, 2);
    let row3 = r.problems.iter().find(|x| x.row == 3).unwrap();
    assert!(
        row3.message
            .contains("不在项目发放属期2023年6月至2023年12月内"),
        "{}",
        row3.message
    );

    // A batch for a current period from which no line could reach the window is refused as a
    // whole (project.inactive), before anything is read: 2023-02 + 3 months is still May.
    let err = yikatong::intake::resolve(p.as_ref(), "HLJ17", "2023-02").unwrap_err();
    assert!(
        err.to_string().contains("project.inactive") && err.to_string().contains("2023年2月"),
        "{err}"
    );
    assert!(yikatong::intake::resolve(p.as_ref(), "HLJ17", "2023-03").is_ok());
    assert!(yikatong::intake::resolve(p.as_ref(), "HLJ17", "2024-03").is_ok());
    assert!(yikatong::intake::resolve(p.as_ref(), "HLJ17", "2024-04").is_err());
}

/// (line, attempt, credited) of every detail of a returns answer, and its cursor and `More`.
fn page_of(bytes: &[u8], order: &str) -> (Vec<(i64, u32, bool)>, Option<String>, bool) {
    let p = m::read_returns_page(bytes, order).unwrap();
    let d = p
        .details
        .iter()
        .map(|d| {
            (
                d.result.line_id,
                d.result.attempt,
                d.result.outcome == BankOutcome::Credited,
            )
        })
        .collect();
    (d, p.next, p.more)
}

#[tokio::test]
async fn the_budget_system_pages_the_returns_from_a_cursor() {
    each_backend("hlj_pages", |db| async move {
        let store = &db.store;
        // The bank repeats, reorders and holds back half of each voucher at first.
        let w = World::start(bank(true, true, true)).await;
        let h = w.hlj(store);
        let b = standard_batch(store, &w).await;
        pay(&h, b.id).await;
        let http = reqwest::Client::new();
        let url = format!("{}/plans/{}/returns", w.sims.budget.url(), b.order_no);
        let get = |q: String| {
            let http = http.clone();
            let url = url.clone();
            async move {
                let r = http.get(format!("{url}{q}")).send().await.unwrap();
                assert!(r.status().is_success(), "{}", r.status());
                r.bytes().await.unwrap()
            }
        };
        // Pages of 3 from the start, following the cursor while more is ready.
        let (mut paged, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
        let mut first_page = None;
        loop {
            let q = match &cursor {
                Some(c) => format!("?after={c}&limit=3"),
                None => "?limit=3".to_owned(),
            };
            let (d, next, more) = page_of(&get(q).await, &b.order_no);
            assert!(d.len() <= 3);
            pages += 1;
            if pages == 1 {
                first_page = Some(d.clone());
            }
            paged.extend(d);
            assert!(next.is_some(), "every answer carries its cursor");
            cursor = next;
            if !more {
                break;
            }
            assert!(pages < 1000, "the cursor moves");
        }
        assert!(pages > 1, "more than one page ({} details)", paged.len());
        // Asking again from the start answers the same first page.
        let (again, _, _) = page_of(&get("?limit=3".into()).await, &b.order_no);
        assert_eq!(Some(again), first_page);
        // The bank holds back half at first: a query from the cursor brings the rest (news
        // only), and only once.
        let c = cursor.clone().unwrap();
        let (rest, next2, _) = page_of(&get(format!("?after={c}")).await, &b.order_no);
        assert!(!rest.is_empty());
        let lines = |d: &[(i64, u32, bool)]| {
            let mut l: Vec<i64> = d.iter().map(|x| x.0).collect();
            l.sort_unstable();
            l.dedup();
            l
        };
        assert!(
            lines(&rest).iter().all(|l| !lines(&paged).contains(l)),
            "news only"
        );
        let c2 = next2.clone().unwrap();
        let (none, next3, more) = page_of(&get(format!("?after={c2}")).await, &b.order_no);
        assert!(none.is_empty() && !more);
        assert_eq!(next3, next2);
        // Without a cursor or limit: everything recorded, in the order it came.
        let (all, next, more) = page_of(&get(String::new()).await, &b.order_no);
        assert!(!more);
        assert_eq!(next, next2);
        let mut both = paged.clone();
        both.extend(rest.iter().copied());
        assert_eq!(all, both);
        // Every line of the batch came, each detail repeated by the bank.
        let total = store.tally(b.id).await.unwrap().in_flight.count as usize;
        assert_eq!(lines(&paged).len() + lines(&rest).len(), total);
        assert_eq!(paged.len() + rest.len(), 2 * total);
        // A bad cursor is refused.
        let r = http.get(format!("{url}?after=x")).send().await.unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);

        // The platform pages from its own cursor and applies each attempt once.
        collect_until_done(&h, b.id).await;
        assert_eq!(store.tally(b.id).await.unwrap().in_flight.count, 0);
        assert!(store.results_cursor(b.id).await.unwrap().is_some());
    })
    .await;
}

#[tokio::test]
async fn the_budget_system_refuses_bad_messages_and_pays_nothing() {
    let w = World::start(bank(false, false, false)).await;
    let http = reqwest::Client::new();
    let budget = w.sims.budget.url();
    let post = |path: String, body: Vec<u8>| {
        let http = http.clone();
        async move {
            let r = http.post(path).body(body).send().await.unwrap();
            let s = r.status();
            (s, xml::parse(&r.bytes().await.unwrap()).unwrap())
        }
    };
    // Malformed XML, a plan whose totals do not add up, an unknown voucher.
    let (s, e) = post(
        format!("{budget}/plans"),
        b"<DisbursementPlan><PlanNo>".to_vec(),
    )
    .await;
    assert_eq!(s, reqwest::StatusCode::BAD_REQUEST);
    assert_eq!(e.name, "Error");
    let plan = |total: Fen| {
        m::plan(
            &m::PlanHeader {
                plan_no: "P1",
                province: "黑龙江省",
                project_code: "HLJ03",
                project_name: "农村最低生活保障金",
                lead_unit: "省民政厅",
                period: "2023-05",
                grain: false,
                create_date: start_date(),
                regions: vec![("230102".into(), "道里区".into())],
                resubmission: 0,
                return_reason: "",
            },
            &[m::Payee {
                line_id: 1,
                attempt: 0,
                region: "230102001201",
                name: "王𬌗",
                account: "6228480000010000032",
                bank: "中国农业银行",
                amount: total,
                period: "2023-05",
            }],
        )
    };
    let mut bad = plan(Fen(42000));
    for c in &mut bad.children {
        if c.name == "TotalAmt" {
            c.text = "999.00".into();
        }
    }
    let (s, e) = post(format!("{budget}/plans"), xml::encode(&bad)).await;
    assert_eq!(s, reqwest::StatusCode::BAD_REQUEST);
    assert!(e.text_of("Message").contains("控制数不符"));
    let (s, _) = post(
        format!("{budget}/vouchers/520100/approve"),
        xml::encode(&m::approval("x")),
    )
    .await;
    assert_eq!(s, reqwest::StatusCode::NOT_FOUND);

    // A good plan, request and approval; then a voucher whose amount was tampered with.
    let (s, rec) = post(format!("{budget}/plans"), xml::encode(&plan(Fen(42000)))).await;
    assert_eq!(s, reqwest::StatusCode::OK, "{rec:?}");
    let rp = m::read_plan_receipt(&rec).unwrap();
    assert_eq!(rp.len(), 1);
    let (_, n) = post(
        format!("{budget}/requests"),
        xml::encode(&m::payment_request(
            &rp[0].no,
            "230102102",
            "道里区民政局",
            "",
        )),
    )
    .await;
    let n = m::read_notice(&n).unwrap();
    // Sending before finance approved is refused.
    let payee = |amount| m::Payee {
        line_id: 1,
        attempt: 1,
        region: "",
        name: "王𬌗",
        account: "6228480000010000032",
        bank: "中国农业银行",
        amount,
        period: "2023-05",
    };
    let doc = m::voucher_5201(
        &n,
        &n.voucher_no,
        "",
        "x",
        "",
        start_date(),
        &[payee(Fen(42000))],
    );
    let (s, _) = post(
        format!("{budget}/vouchers/{}/send", n.voucher_no),
        xml::encode(&doc),
    )
    .await;
    assert_eq!(s, reqwest::StatusCode::CONFLICT);
    post(
        format!("{budget}/vouchers/{}/approve", n.voucher_no),
        xml::encode(&m::approval("财政")),
    )
    .await;
    let doc = m::voucher_5201(
        &n,
        &n.voucher_no,
        "",
        "x",
        "",
        start_date(),
        &[payee(Fen(52000))],
    );
    let (s, e) = post(
        format!("{budget}/vouchers/{}/send", n.voucher_no),
        xml::encode(&doc),
    )
    .await;
    assert_eq!(s, reqwest::StatusCode::BAD_REQUEST, "{e:?}");
    // The bank never saw it.
    let r = http
        .get(format!("{}/returns/{}", w.sims.bank.url(), n.voucher_no))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::NOT_FOUND);
    // The right voucher goes through once; sending it again is idempotent.
    let doc = m::voucher_5201(
        &n,
        &n.voucher_no,
        "",
        "x",
        "",
        start_date(),
        &[payee(Fen(42000))],
    );
    for _ in 0..2 {
        let (s, e) = post(
            format!("{budget}/vouchers/{}/send", n.voucher_no),
            xml::encode(&doc),
        )
        .await;
        assert_eq!(s, reqwest::StatusCode::OK, "{e:?}");
    }
    let r = http
        .get(format!("{budget}/plans/P1/returns"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let details = m::read_returns(&xml::parse(&r).unwrap(), "P1").unwrap();
    assert_eq!(details.len(), 1, "paid once");
}

#[tokio::test]
async fn without_a_budget_system_the_step_is_refused_and_the_review_stays_recorded() {
    each_backend("hlj_no_budget", |db| async move {
        let store = &db.store;
        let w = World::start(bank(false, false, false)).await;
        let b = standard_batch(store, &w).await;
        let cfg = yikatong::config::Config::default();
        let ports = yikatong::provinces::heilongjiang::configured_ports(&cfg, store)
            .await
            .unwrap();
        assert!(ports.treasury.is_none() && ports.bank.is_none());
        let h = Hlj {
            store,
            province: w.province.as_ref(),
            ports,
            date: w.date.clone(),
        };
        let s = h.step(b.id, "submit_plan", &clerk(), None).await.unwrap();
        let (next, e) = s.follow_up_failed.unwrap();
        assert_eq!(next, "push_plan");
        assert!(e.to_string().contains("no treasury port"), "{e}");
        assert_eq!(
            store.batch(b.id).await.unwrap().unwrap().state,
            BatchState::Submitted
        );
        assert!(
            store
                .hlj_message_dates(&b.order_no)
                .await
                .unwrap()
                .is_empty()
        );
        assert_invariants(store, b.id).await;
        // The bad setting is named.
        let bad = yikatong::config::Config {
            province_settings: serde_json::json!({"budget_url": 5}),
            ..Default::default()
        };
        let e = yikatong::provinces::heilongjiang::budget_url(&bad).unwrap_err();
        assert!(e.to_string().contains("budget_url"));
    })
    .await;
}

#[tokio::test]
async fn a_returned_batch_is_pushed_again_and_its_old_voucher_voided() {
    each_backend("hlj_return", |db| async move {
        let store = &db.store;
        let w = World::start(bank(false, false, false)).await;
        let h = w.hlj(store);
        let b = standard_batch(store, &w).await;
        h.step(b.id, "submit_plan", &clerk(), None)
            .await
            .unwrap()
            .all()
            .unwrap();
        h.step(b.id, "request_payment", &clerk(), None)
            .await
            .unwrap()
            .all()
            .unwrap();
        let (_, first) = store.batch_refs(b.id).await.unwrap();
        let first = first.unwrap();
        // A return needs a reason; then the clerk submits again and the plan is pushed again.
        assert!(
            h.step(b.id, "finance_return", &finance(), None)
                .await
                .is_err()
        );
        h.step(b.id, "finance_return", &finance(), Some("预算单位填写有误"))
            .await
            .unwrap()
            .all()
            .unwrap();
        h.step(b.id, "submit_plan", &clerk(), None)
            .await
            .unwrap()
            .all()
            .unwrap();
        h.step(b.id, "request_payment", &clerk(), None)
            .await
            .unwrap()
            .all()
            .unwrap();
        let (_, second) = store.batch_refs(b.id).await.unwrap();
        assert_ne!(second.as_deref(), Some(first.as_str()), "a new voucher");
        // The first voucher is void at the budget system and can no longer be approved.
        let http = reqwest::Client::new();
        let r = http
            .post(format!("{}/vouchers/{first}/approve", w.sims.budget.url()))
            .body(xml::encode(&m::approval("财政")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::CONFLICT);
        h.step(b.id, "finance_approve", &finance(), None)
            .await
            .unwrap()
            .all()
            .unwrap();
        collect_until_done(&h, b.id).await;
        assert_invariants(store, b.id).await;
        let t = store.tally(b.id).await.unwrap();
        assert_eq!(t.in_flight.count, 0);
        assert_eq!(t.credited.count + t.failed.count, b.control.count);
    })
    .await;
}

/// A batch larger than a part (messages.md, "Plans and vouchers in parts"): the plan and
/// the 5201 voucher go in parts, each archived; a push or delivery repeated sends every part
/// again and changes nothing; the bank pays each line once, after the last part.
#[tokio::test]
async fn a_plan_and_voucher_larger_than_a_part_go_in_parts_and_pay_each_line_once() {
    each_backend("hlj_parts", |db| async move {
        let store = &db.store;
        let w = World::start(bank(true, true, true)).await;
        let mut h = w.hlj(store);
        h.ports = yikatong::provinces::heilongjiang::ops::ports_in_parts(
            store,
            w.province.as_ref(),
            &w.sims.budget.url(),
            w.date.clone(),
            5,
        )
        .unwrap();
        let b = standard_batch(store, &w).await;
        let n = b.control.count;
        assert!(n > 10, "three parts at least: {n}");
        let parts = n.div_ceil(5);
        pay(&h, b.id).await;
        collect_until_done(&h, b.id).await;
        let t = store.tally(b.id).await.unwrap();
        assert_eq!(t.in_flight.count, 0);
        assert_eq!(t.credited.count + t.failed.count, n);

        let msgs = store.hlj_messages(&b.order_no).await.unwrap();
        let sent = |kind: &str| -> Vec<xml::Node> {
            msgs.iter()
                .filter(|m| m.kind == kind && m.direction == "out")
                .map(|m| xml::parse(&m.body).unwrap())
                .collect()
        };
        let plans = sent("plan");
        assert_eq!(plans.len() as u64, parts);
        for (k, p) in plans.iter().enumerate() {
            assert_eq!(p.text_of("PartNo"), (k + 1).to_string());
            assert_eq!(p.text_of("PartCount"), parts.to_string());
            assert_eq!(
                p.text_of("TotalCount"),
                n.to_string(),
                "the whole plan's totals"
            );
        }
        let receipts: Vec<String> = msgs
            .iter()
            .filter(|m| m.kind == "plan_receipt")
            .map(|m| xml::parse(&m.body).unwrap().text_of("Status").to_owned())
            .collect();
        let mut expect = vec!["receiving".to_owned(); parts as usize - 1];
        expect.push("accepted".into());
        assert_eq!(receipts, expect);
        let vouchers = sent("voucher_5201");
        assert_eq!(vouchers.len() as u64, parts);
        let details: usize = vouchers
            .iter()
            .map(|v| {
                v.find("VoucherBody")
                    .and_then(|x| x.find("Voucher"))
                    .and_then(|x| x.find("DetailList"))
                    .map_or(0, |l| l.each("Detail").count())
            })
            .sum();
        assert_eq!(details as u64, n, "every line in exactly one part");

        // The whole voucher paid once at the bank, each line once.
        let books: serde_json::Value = reqwest::get(format!("{}/books", w.sims.bank.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut lines: Vec<i64> = books["payments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["attempt"] == 1)
            .map(|p| p["line_id"].as_i64().unwrap())
            .collect();
        lines.sort_unstable();
        lines.dedup();
        assert_eq!(lines.len() as u64, n);

        // A part sent again (a delivery repeated after an interruption) is answered as
        // before; the same part with other details is refused; nothing is paid twice.
        let http = reqwest::Client::new();
        let (_, voucher) = store.batch_refs(b.id).await.unwrap();
        let voucher = voucher.unwrap();
        let again = msgs
            .iter()
            .find(|m| m.kind == "voucher_5201" && m.direction == "out")
            .unwrap();
        let r = http
            .post(format!("{}/vouchers/{voucher}/send", w.sims.budget.url()))
            .body(again.body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        let other = msgs
            .iter()
            .filter(|m| m.kind == "voucher_5201" && m.direction == "out")
            .nth(1)
            .unwrap();
        let mut forged = xml::parse(&other.body).unwrap();
        for c in &mut forged.children {
            if let Some(v) = c.children.iter_mut().find(|v| v.name == "Voucher") {
                for l in &mut v.children {
                    if l.name == "PartNo" {
                        l.text = "1".into();
                    }
                }
            }
        }
        let r = http
            .post(format!("{}/vouchers/{voucher}/send", w.sims.budget.url()))
            .body(xml::encode(&forged))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::CONFLICT);
        let again_books: serde_json::Value = reqwest::get(format!("{}/books", w.sims.bank.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(again_books["payments"], books["payments"]);
        assert_eq!(store.hlj_lines_credited_twice(b.id).await.unwrap(), 0);

        // The plan pushed again in parts (a retried push) gets the same receipt at the end.
        let plan_msgs: Vec<&ykt_store::heilongjiang::MessageRow> = msgs
            .iter()
            .filter(|m| m.kind == "plan" && m.direction == "out")
            .collect();
        let mut last = None;
        for m in plan_msgs {
            let r = http
                .post(format!("{}/plans", w.sims.budget.url()))
                .body(m.body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), reqwest::StatusCode::OK);
            last = Some(xml::parse(&r.bytes().await.unwrap()).unwrap());
        }
        let last = last.unwrap();
        assert_eq!(last.text_of("Status"), "accepted");
        assert_eq!(last.text_of("Version"), "1", "unchanged, not a new version");
    })
    .await;
}
