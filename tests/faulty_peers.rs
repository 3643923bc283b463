//! Faulty peers (issue #9, "Faults"): each way an outside system can misbehave is either
//! flagged (an anomaly recorded with the batch, a line left open and the batch not settled,
//! or the step refused) and never changes money or a line silently.
//!
//! Heilongjiang's simulated budget system and treasury agent bank run over real HTTP. Their
//! own fault modes (`duplicate`, `reorder`, `partial`: returns repeated, shuffled, the first
//! fetch truncated) are switched on in the simulator; the faults the simulator has no mode for
//! (a result dropped for good, an unknown line, a result of another order, a wrong amount, a
//! peer that does not answer) are applied to the simulator's real answers by a wrapper
//! around the bank port. On SQLite and PostgreSQL.

#![cfg(feature = "province-heilongjiang")]

mod common;
mod heilongjiang_common;

use async_trait::async_trait;
use common::*;
use heilongjiang_common::*;
use std::sync::{Arc, Mutex};
use yikatong::cycle::Cycle;
use ykt_kernel::Fen;
use ykt_kernel::ports::{BankAgent, BankResult, PaymentInstruction, PortError};
use ykt_store::Store;
use ykt_store::testing::{TestDb, each_backend};

/// What the wrapper does to the next collection of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// One line's result never arrives.
    Drop,
    /// A result for a line the batch does not have.
    UnknownLine,
    /// A result carrying another order's number.
    WrongOrder,
    /// A result whose amount differs from the line's by one fen.
    WrongAmount,
    /// The bank does not answer (the client's timeout).
    Timeout,
}

struct Faulty {
    inner: Arc<dyn BankAgent>,
    fault: Mutex<Fault>,
}

#[async_trait]
impl BankAgent for Faulty {
    async fn deliver(&self, i: &PaymentInstruction) -> Result<String, PortError> {
        self.inner.deliver(i).await
    }
    async fn collect_results(&self, order_no: &str) -> Result<Vec<BankResult>, PortError> {
        let fault = *self.fault.lock().unwrap();
        if fault == Fault::Timeout {
            return Err(PortError::new(
                "国库集中支付代理银行",
                "请求超时 (timed out)",
                true,
            ));
        }
        let mut r = self.inner.collect_results(order_no).await?;
        match fault {
            Fault::Drop => {
                // Every copy (the simulator may be repeating its returns).
                let gone = r[0].line_id;
                r.retain(|x| x.line_id != gone);
            }
            Fault::UnknownLine => {
                let mut x = r[0].clone();
                x.line_id = 9_999_999;
                r.push(x);
            }
            Fault::WrongOrder => {
                let mut x = r[0].clone();
                x.order_no = "HLJ000000000000-000000".into();
                r.push(x);
            }
            Fault::WrongAmount => {
                for x in r.iter_mut() {
                    x.amount = x.amount + Fen(1);
                }
            }
            Fault::None | Fault::Timeout => {}
        }
        Ok(r)
    }
}

/// Everything about a batch a silent change would alter.
async fn snapshot(store: &Store, batch: i64) -> String {
    let tally = store.tally(batch).await.unwrap();
    let lines: Vec<_> = store
        .lines(batch, 0, i64::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.id, l.state, l.attempt))
        .collect();
    let ledger = store.ledger_balances().await.unwrap();
    format!("{tally:?} {lines:?} {ledger:?}")
}

async fn run(db: &TestDb) {
    let store = &db.store;
    // The simulator's own faults: returns duplicated, reordered, the first fetch truncated.
    let w = World::start(bank(true, true, true)).await;
    let h = w.hlj(store);
    let province = w.province.as_ref();
    load_registers(store).await;
    let (_, result) = import(store, province, PROJECT, &scenario().join("roster.csv")).await;
    let b = result.batches[0].id;
    let (clerk, finance) = (clerk(), finance());
    h.step(b, "submit_plan", &clerk, None)
        .await
        .unwrap()
        .all()
        .unwrap();
    h.step(b, "request_payment", &clerk, None)
        .await
        .unwrap()
        .all()
        .unwrap();
    h.step(b, "finance_approve", &finance, None)
        .await
        .unwrap()
        .all()
        .unwrap();
    let lines = store.tally(b).await.unwrap().in_flight.count;
    assert!(lines > 2);

    let faulty = Arc::new(Faulty {
        inner: h.ports.bank.clone().unwrap(),
        fault: Mutex::new(Fault::None),
    });
    let mut ports = h.ports.clone();
    ports.bank = Some(faulty.clone());
    let cycle = Cycle {
        store,
        province,
        ports: &ports,
        today: h.today(),
    };
    let sys =
        yikatong::provinces::heilongjiang::ops::system_user(&h.batch(b).await.unwrap()).unwrap();
    let set = |f: Fault| *faulty.fault.lock().unwrap() = f;
    let anomalies = |kind: &'static str| async move {
        store
            .anomalies(b)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.kind == kind)
            .count()
    };

    // Timeout: the step fails, nothing changes, nothing is recorded as done.
    set(Fault::Timeout);
    let before = snapshot(store, b).await;
    let audit_before = store.verify_audit().await.unwrap().entries;
    let e = cycle.step(b, "collect_results", &sys, None).await;
    assert!(e.is_err(), "a peer that does not answer fails the step");
    assert_eq!(snapshot(store, b).await, before, "timeout: nothing changed");
    assert_eq!(store.verify_audit().await.unwrap().entries, audit_before);

    // Wrong amounts: every result refused as an anomaly, no line moves, no money moves.
    set(Fault::WrongAmount);
    let before = snapshot(store, b).await;
    let r = cycle.step(b, "collect_results", &sys, None).await.unwrap();
    let res = r.results.unwrap();
    assert!(r.moved.is_none(), "not settled");
    assert_eq!((res.credited.count, res.failed.count), (0, 0));
    assert!(anomalies("amount_mismatch").await > 0);
    assert_eq!(
        snapshot(store, b).await,
        before,
        "wrong amount: nothing moved"
    );

    // Truncated (the simulator's first fetch carried half) and dropped: the missing lines stay
    // in flight and the batch does not settle; an unknown line and another order's result
    // are anomalies. Duplicates and shuffling change nothing.
    set(Fault::Drop);
    let r = cycle.step(b, "collect_results", &sys, None).await.unwrap();
    assert!(r.moved.is_none());
    assert!(
        store.tally(b).await.unwrap().in_flight.count >= 1,
        "dropped line still open"
    );
    assert!(r.note.contains("发放中"), "{}", r.note);
    set(Fault::UnknownLine);
    let r = cycle.step(b, "collect_results", &sys, None).await.unwrap();
    assert_eq!(anomalies("unknown_line").await, 1);
    let dup = r.results.unwrap().duplicates;
    assert!(
        dup > 0,
        "the simulator's duplicates are counted, not applied twice"
    );
    set(Fault::WrongOrder);
    cycle.step(b, "collect_results", &sys, None).await.unwrap();
    assert_eq!(anomalies("wrong_order").await, 1);

    // A clean collection settles what is left; each line was applied once.
    set(Fault::None);
    cycle.step(b, "collect_results", &sys, None).await.unwrap();
    let tally = store.tally(b).await.unwrap();
    assert_eq!(tally.in_flight.count, 0);
    assert_eq!(tally.credited.count + tally.failed.count, lines);
    assert_eq!(store.hlj_lines_credited_twice(b).await.unwrap(), 0);
    assert_invariants(store, b).await;
}

#[tokio::test]
async fn each_fault_is_flagged_never_a_silent_change() {
    each_backend("faulty_peers", |db| async move { run(&db).await }).await;
}
