//! Model-based test of the batch lifecycle (issue #9, "Faults"): random sequences of
//! operations run against the real cycle (`yikatong::cycle::Cycle` over the store, on SQLite
//! and PostgreSQL, Heilongjiang's workflow, in-memory treasury and bank ports) and against a
//! small reference model written independently of the kernel; after every operation the
//! store must agree with the model (batch state, every line's state and attempt, the
//! anomalies recorded) and the invariants must hold (control totals, balanced ledger).
//!
//! Operations: workflow steps by the maker, the finance reviewer, a user holding both roles
//! (self-approval, refused by maker-checker) and the system; bank results (success, failure,
//! repeated, stale attempt, unknown line, wrong amount; several queued = out of order);
//! correction, re-payment, refund (and a refund approved by its requester, refused);
//! cancellation (作废, by anyone: only the maker's of a draft takes effect) and a re-import of
//! the same people in a corrected file (accepted only for those whose line was cancelled or
//! refunded: one line per person, project and period).
//! `MODEL_CASES` sets the number of cases (default 8; each runs on both backends).

mod common;

use async_trait::async_trait;
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::sync::{Arc, Mutex};
use yikatong::cycle::{Cycle, Ports};
use ykt_kernel::ports::{
    BankAgent, BankOutcome, BankResult, FailureReason, FundingRequest, FundingStatus,
    PaymentInstruction, PortError, RefundRequest, TreasuryPayment,
};
use ykt_kernel::{BatchState, Fen, LineState, RegionCode, Role, User};
use ykt_store::Store;
use ykt_store::cycle::LineFix;

/// Reimports in all cases: (some lines accepted again, none accepted).
static REIMPORTS: [std::sync::atomic::AtomicU64; 2] = [
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
];

struct Treasury;
#[async_trait]
impl TreasuryPayment for Treasury {
    async fn request_funding(&self, r: &FundingRequest) -> Result<FundingStatus, PortError> {
        Ok(FundingStatus::Pending {
            voucher_no: format!("V-{}", r.reference),
        })
    }
    async fn funding_status(&self, r: &str) -> Result<FundingStatus, PortError> {
        Ok(FundingStatus::Pending {
            voucher_no: r.to_owned(),
        })
    }
    async fn refund(&self, r: &RefundRequest) -> Result<String, PortError> {
        Ok(format!("R-{}", r.request_no))
    }
}

#[derive(Default)]
struct Bank {
    queue: Mutex<Vec<BankResult>>,
}
#[async_trait]
impl BankAgent for Bank {
    async fn deliver(&self, i: &PaymentInstruction) -> Result<String, PortError> {
        Ok(i.order_no.clone())
    }
    async fn collect_results(&self, _: &str) -> Result<Vec<BankResult>, PortError> {
        Ok(std::mem::take(&mut *self.queue.lock().unwrap()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Maker,
    Finance,
    /// Holds both roles: approving what they made is self-approval.
    Both,
    System,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Res {
    Success,
    Failure,
    Stale,
    Unknown,
    WrongAmount,
}

#[derive(Debug, Clone)]
enum Op {
    /// The next step of the batch's state, by the user whose job it is.
    Advance,
    /// A whole return: success for every line in flight.
    PayAll,
    Step(&'static str, Who),
    Result(usize, Res),
    Correct(usize),
    Redispatch,
    Refund(usize),
    RefundBySelf(usize),
    /// Import the same roster again (a new file: the same lines with a BOM in front).
    Reimport,
}

const STEPS: &[&str] = &[
    "submit_plan",
    "push_plan",
    "request_payment",
    "finance_approve",
    "finance_return",
    "treasury_pay",
    "collect_results",
    "reconcile",
    "publish",
    "cancel",
];

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        Just(Who::Maker),
        Just(Who::Finance),
        Just(Who::Both),
        Just(Who::System)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let by = who();
    let res = prop_oneof![
        3 => Just(Res::Success),
        2 => Just(Res::Failure),
        1 => Just(Res::Stale),
        1 => Just(Res::Unknown),
        1 => Just(Res::WrongAmount),
    ];
    prop_oneof![
        6 => Just(Op::Advance),
        1 => Just(Op::PayAll),
        2 => (proptest::sample::select(STEPS), by).prop_map(|(s, w)| Op::Step(s, w)),
        5 => (0usize..64, res).prop_map(|(l, r)| Op::Result(l, r)),
        2 => (0usize..64).prop_map(Op::Correct),
        1 => Just(Op::Redispatch),
        1 => (0usize..64).prop_map(Op::Refund),
        1 => (0usize..64).prop_map(Op::RefundBySelf),
        2 => who().prop_map(|w| Op::Step("cancel", w)),
        1 => Just(Op::Reimport),
    ]
}

/// The reference model: what should be true, worked out without the kernel.
#[derive(Debug, Clone)]
struct Model {
    state: BatchState,
    /// (line id, state, attempt, amount)
    lines: Vec<(i64, LineState, u32, Fen)>,
    anomalies: usize,
    queue: Vec<BankResult>,
    history: Vec<(&'static str, &'static str)>,
    /// The roster was imported a second time (its new batch's lines hold their people).
    reimported: bool,
}

fn user(w: Who) -> User {
    let r = RegionCode::parse("230102").unwrap();
    let u = |login: &str, roles: Vec<Role>| User {
        login: login.into(),
        name: login.into(),
        roles,
        region: r.clone(),
        bank: None,
    };
    match w {
        Who::Maker => clerk(),
        Who::Finance => u("daoli-finance", vec![Role::FinanceReviewer]),
        Who::Both => u("daoli-both", vec![Role::DeptMaker, Role::FinanceReviewer]),
        Who::System => User::system(r),
    }
}

fn login(w: Who) -> &'static str {
    match w {
        Who::Maker => "daoli-clerk",
        Who::Finance => "daoli-finance",
        Who::Both => "daoli-both",
        Who::System => "system",
    }
}

fn has(w: Who, role: Role) -> bool {
    match role {
        Role::DeptMaker => matches!(w, Who::Maker | Who::Both),
        Role::FinanceReviewer => matches!(w, Who::Finance | Who::Both),
        Role::System => w == Who::System,
        _ => false,
    }
}

impl Model {
    fn settled(&self) -> bool {
        self.lines
            .iter()
            .all(|l| matches!(l.1, LineState::Credited | LineState::Refunded))
    }

    /// The step's outcome: `None` refused, `Some(moved)`.
    fn step(&mut self, code: &'static str, w: Who) -> Option<bool> {
        use BatchState as S;
        let (from, to, role, separate): (&[S], S, Role, bool) = match code {
            "submit_plan" => (
                &[S::Draft, S::Returned],
                S::Submitted,
                Role::DeptMaker,
                false,
            ),
            "push_plan" => (&[S::Submitted], S::PlanPushed, Role::System, false),
            "request_payment" => (
                &[S::PlanPushed],
                S::FundingRequested,
                Role::DeptMaker,
                false,
            ),
            "finance_approve" => (
                &[S::FundingRequested],
                S::Approved,
                Role::FinanceReviewer,
                true,
            ),
            "finance_return" => (
                &[S::FundingRequested],
                S::Returned,
                Role::FinanceReviewer,
                true,
            ),
            "treasury_pay" => (&[S::Approved], S::Dispatched, Role::System, false),
            "collect_results" => (&[S::Dispatched], S::Settled, Role::System, false),
            "reconcile" => (&[S::Settled], S::Reconciled, Role::FinanceReviewer, false),
            "publish" => (&[S::Reconciled], S::Closed, Role::DeptMaker, false),
            "cancel" => (&[S::Draft], S::Cancelled, Role::DeptMaker, false),
            _ => unreachable!(),
        };
        if !from.contains(&self.state) || !has(w, role) {
            return None;
        }
        let me = login(w);
        if separate
            && (me == "daoli-clerk"
                || self
                    .history
                    .iter()
                    .any(|(s, a)| *a == me && matches!(*s, "submit_plan" | "request_payment")))
        {
            return None;
        }
        if code == "finance_return" {
            // A return needs a reason; the test gives one.
        }
        match code {
            "treasury_pay" => {
                if !self.lines.iter().any(|l| l.1 == LineState::Pending) {
                    return None;
                }
                self.dispatch();
            }
            "cancel" => {
                for l in &mut self.lines {
                    l.1 = LineState::Cancelled;
                }
            }
            "collect_results" => {
                for r in std::mem::take(&mut self.queue) {
                    self.apply(&r);
                }
                if !self.settled() {
                    return Some(false);
                }
            }
            _ => {}
        }
        self.history.push((code, me));
        self.state = to;
        Some(true)
    }

    fn dispatch(&mut self) {
        for l in self.lines.iter_mut().filter(|l| l.1 == LineState::Pending) {
            l.1 = LineState::InFlight;
            l.2 += 1;
        }
    }

    fn apply(&mut self, r: &BankResult) {
        let Some(l) = self.lines.iter_mut().find(|l| l.0 == r.line_id) else {
            self.anomalies += 1;
            return;
        };
        if r.amount != l.3 || r.attempt != l.2 {
            self.anomalies += 1;
            return;
        }
        let credit = r.outcome == BankOutcome::Credited;
        match (l.1, credit) {
            (LineState::InFlight, true) => l.1 = LineState::Credited,
            (LineState::InFlight, false) => l.1 = LineState::Failed,
            (LineState::Credited, true) => {}
            (LineState::Failed | LineState::Refunded | LineState::Pending, false) => {}
            _ => self.anomalies += 1,
        }
    }
}

struct World<'a> {
    store: &'a Store,
    province: Box<dyn ykt_kernel::Province>,
    ports: Ports,
    bank: Arc<Bank>,
    batch: i64,
    order_no: String,
}

impl World<'_> {
    async fn run(&self, m: &mut Model, op: &Op) -> Result<(), String> {
        let cycle = Cycle {
            store: self.store,
            province: self.province.as_ref(),
            ports: &self.ports,
            today: chrono::NaiveDate::from_ymd_opt(2023, 5, 20).unwrap(),
        };
        let b = self.batch;
        let line = |i: usize| m.lines[i % m.lines.len()].0;
        let advance;
        let op = if let Op::Advance = op {
            use BatchState as S;
            let (code, who) = match m.state {
                S::Draft | S::Returned => ("submit_plan", Who::Maker),
                S::Submitted => ("push_plan", Who::System),
                S::PlanPushed => ("request_payment", Who::Maker),
                S::FundingRequested => ("finance_approve", Who::Finance),
                S::Approved => ("treasury_pay", Who::System),
                S::Dispatched => ("collect_results", Who::System),
                S::Settled => ("reconcile", Who::Finance),
                _ => ("publish", Who::Maker),
            };
            advance = Op::Step(code, who);
            &advance
        } else {
            op
        };
        match op {
            Op::Advance => unreachable!(),
            Op::PayAll => {
                for l in m.lines.iter().filter(|l| l.1 == LineState::InFlight) {
                    let r = BankResult {
                        order_no: self.order_no.clone(),
                        line_id: l.0,
                        attempt: l.2,
                        amount: l.3,
                        outcome: BankOutcome::Credited,
                        date: "2023-05-21".into(),
                    };
                    m.queue.push(r.clone());
                    self.bank.queue.lock().unwrap().push(r);
                }
            }
            Op::Step(code, w) => {
                let reason = match *code {
                    "finance_return" => Some("材料不全"),
                    "cancel" => Some("名单有误，重新造册"),
                    _ => None,
                };
                let got = cycle.step(b, code, &user(*w), reason).await;
                let expect = m.step(code, *w);
                match (&got, expect) {
                    (Ok(r), Some(moved)) if r.moved.is_some() == moved => {}
                    (Err(_), None) => {}
                    _ => {
                        return Err(format!(
                            "{op:?}: store {:?}, model {expect:?}",
                            got.map(|r| r.moved)
                        ));
                    }
                }
            }
            Op::Result(i, kind) => {
                let l = m.lines[i % m.lines.len()];
                let mut r = BankResult {
                    order_no: self.order_no.clone(),
                    line_id: l.0,
                    attempt: l.2,
                    amount: l.3,
                    outcome: BankOutcome::Credited,
                    date: "2023-05-21".into(),
                };
                match kind {
                    Res::Success => {}
                    Res::Failure => {
                        r.outcome = BankOutcome::Failed {
                            reason: FailureReason::WrongAccount,
                        }
                    }
                    Res::Stale => r.attempt = l.2.saturating_sub(1),
                    Res::Unknown => r.line_id = 9_999_999,
                    Res::WrongAmount => r.amount = l.3 + Fen(1),
                }
                m.queue.push(r.clone());
                self.bank.queue.lock().unwrap().push(r);
            }
            Op::Correct(i) => {
                let id = line(*i);
                let fix = LineFix {
                    reason: "核实账户".into(),
                    ..Default::default()
                };
                let got = cycle.correct(b, id, &fix, &user(Who::Maker)).await;
                let l = m.lines.iter_mut().find(|l| l.0 == id).unwrap();
                let expect = l.1 == LineState::Failed;
                if expect {
                    l.1 = LineState::Pending;
                }
                if got.is_ok() != expect {
                    return Err(format!("{op:?}: store {got:?}, model {expect}"));
                }
            }
            Op::Redispatch => {
                let got = cycle.redispatch(b, &user(Who::Maker)).await;
                let expect = matches!(m.state, BatchState::Dispatched | BatchState::Settled)
                    && m.lines.iter().any(|l| l.1 == LineState::Pending);
                if expect {
                    m.dispatch();
                }
                if got.is_ok() != expect {
                    return Err(format!("{op:?}: store {got:?}, model {expect}"));
                }
            }
            Op::Reimport => {
                // A corrected file with the same people: a line is accepted again only where
                // this batch's line no longer holds the person's project and period.
                if m.reimported {
                    // Once: the second batch now holds the people it accepted.
                    return self.check(m).await;
                }
                let expect = m
                    .lines
                    .iter()
                    .filter(|l| matches!(l.1, LineState::Cancelled | LineState::Refunded))
                    .count() as u64;
                m.reimported = true;
                let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
                let file = dir.path().join("roster.csv");
                let mut bytes = b"\xEF\xBB\xBF".to_vec();
                bytes.extend(
                    std::fs::read(scenario().join("roster.csv")).map_err(|e| e.to_string())?,
                );
                std::fs::write(&file, bytes).map_err(|e| e.to_string())?;
                let (_, result) = import(self.store, self.province.as_ref(), PROJECT, &file).await;
                let got: u64 = result.batches.iter().map(|b| b.control.count).sum();
                if got != expect {
                    return Err(format!(
                        "{op:?}: store accepted {got} lines, model {expect}"
                    ));
                }
                REIMPORTS[usize::from(got == 0)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Op::Refund(i) | Op::RefundBySelf(i) => {
                let id = line(*i);
                let approver = if matches!(op, Op::Refund(_)) {
                    Who::Finance
                } else {
                    Who::Both
                };
                let requester = if approver == Who::Both {
                    Who::Both
                } else {
                    Who::Maker
                };
                let got = cycle
                    .refund(b, id, "无法入账", &user(requester), &user(approver))
                    .await;
                let l = m.lines.iter_mut().find(|l| l.0 == id).unwrap();
                let expect = l.1 == LineState::Failed && requester != approver;
                if expect {
                    l.1 = LineState::Refunded;
                }
                if got.is_ok() != expect {
                    return Err(format!("{op:?}: store {got:?}, model {expect}"));
                }
            }
        }
        self.check(m).await
    }

    async fn check(&self, m: &Model) -> Result<(), String> {
        let s = self.store;
        let b = s.batch(self.batch).await.unwrap().unwrap();
        if b.state != m.state {
            return Err(format!("state: store {}, model {}", b.state, m.state));
        }
        let lines: Vec<(i64, LineState, u32, Fen)> = s
            .lines(self.batch, 0, i64::MAX)
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.id, l.state, u32::try_from(l.attempt).unwrap(), l.amount))
            .collect();
        if lines != m.lines {
            return Err(format!("lines: store {lines:?}\nmodel {:?}", m.lines));
        }
        let anomalies = s.anomalies(self.batch).await.unwrap().len();
        if anomalies != m.anomalies {
            return Err(format!(
                "anomalies: store {anomalies}, model {}",
                m.anomalies
            ));
        }
        let tally = s.tally(self.batch).await.unwrap();
        ykt_kernel::batch::check_balance(self.batch, b.control, &tally)
            .map_err(|e| e.to_string())?;
        let (sum, unbalanced) = s.ledger_check().await.unwrap();
        if (sum, unbalanced) != (Fen(0), 0) {
            return Err(format!("ledger: sum {sum}, unbalanced {unbalanced}"));
        }
        // Money left the agent bank only for credited lines.
        let paid: Fen = s
            .ledger_balances()
            .await
            .unwrap()
            .into_iter()
            .filter(|(a, _)| a.kind == ykt_kernel::ledger::AccountKind::Beneficiaries)
            .map(|(_, f)| f)
            .sum();
        if paid != tally.credited.amount {
            return Err(format!("paid {paid} ≠ credited {}", tally.credited.amount));
        }
        Ok(())
    }
}

/// One case on one fresh store: import the roster, run the operations, compare after each.
async fn case(db: &ykt_store::testing::TestDb, ops: &[Op]) -> Result<u64, String> {
    let store = &db.store;
    load_registers(store).await;
    let province = built_province("heilongjiang");
    let (_, result) = import(
        store,
        province.as_ref(),
        PROJECT,
        &scenario().join("roster.csv"),
    )
    .await;
    let b = result.batches[0].clone();
    let bank = Arc::new(Bank::default());
    let w = World {
        store,
        province,
        ports: Ports {
            treasury: Some(Arc::new(Treasury)),
            bank: Some(bank.clone()),
            disclosure: Some(yikatong::provinces::own_disclosure(store)),
        },
        bank,
        batch: b.id,
        order_no: b.order_no.clone(),
    };
    let mut m = Model {
        state: BatchState::Draft,
        lines: store
            .lines(b.id, 0, i64::MAX)
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.id, l.state, u32::try_from(l.attempt).unwrap(), l.amount))
            .collect(),
        anomalies: 0,
        queue: Vec::new(),
        history: Vec::new(),
        reimported: false,
    };
    w.check(&m).await?;
    for (n, o) in ops.iter().enumerate() {
        w.run(&mut m, o)
            .await
            .map_err(|e| format!("{:?}: after {} operations ({ops:?}): {e}", db.target, n + 1))?;
    }
    Ok(ops.len() as u64)
}

#[test]
fn the_lifecycle_agrees_with_the_model() {
    let cases: u32 = std::env::var("MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let checked = std::sync::atomic::AtomicU64::new(0);
    let states = Mutex::new(std::collections::BTreeSet::new());
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        // A failing sequence is shrunk on fresh databases: keep it bounded.
        max_shrink_iters: 64,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 1..80), |ops| {
        let err = Mutex::new(None::<String>);
        rt.block_on(ykt_store::testing::each_backend("model_lifecycle", |db| {
            let (ops, err, checked, states) = (&ops, &err, &checked, &states);
            async move {
                match case(&db, ops).await {
                    Ok(n) => {
                        checked.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                        let st = db.store.batch(1).await.unwrap().map(|b| b.state);
                        states.lock().unwrap().insert(format!("{st:?}"));
                    }
                    Err(e) => *err.lock().unwrap() = Some(e),
                }
            }
        }));
        match err.into_inner().unwrap() {
            Some(e) => Err(proptest::test_runner::TestCaseError::fail(e)),
            None => Ok(()),
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!(
        "model: {cases} cases × backends, {} operations checked against the model; final states reached: {:?}; re-imports of the same people: {} accepted some lines (cancelled or refunded before), {} accepted none",
        checked.load(std::sync::atomic::Ordering::Relaxed),
        states.lock().unwrap(),
        REIMPORTS[0].load(std::sync::atomic::Ordering::Relaxed),
        REIMPORTS[1].load(std::sync::atomic::Ordering::Relaxed),
    );
}
