//! Faulty peers (issue #9, "Faults"): each way an outside system can misbehave is either
//! flagged (an anomaly recorded with the batch, a refusal logged with the order, a line left
//! open and the batch not settled, or the step refused) and never changes money or a line
//! silently. Per province, on SQLite and PostgreSQL:
//!
//! - Heilongjiang: the simulated budget system and treasury agent bank over real HTTP. Their
//!   own fault modes (`duplicate`, `reorder`, `partial`: returns repeated, shuffled, the first
//!   fetch truncated) are switched on in the simulator; the faults the simulator has no mode
//!   for (a result dropped for good, an unknown line, a result of another order, a wrong
//!   amount, a peer that does not answer) are applied to the simulator's real answers by a
//!   wrapper around the bank port.
//! - Sichuan: the cooperating bank behind its file drop (instructed by the department's
//!   zero-balance account), with the simulator's fault modes: no result file, amounts one fen
//!   off, a truncated file, a line left out, lines reversed, a line the order does not have,
//!   a file sent twice; the treasury not answering.
//! - Henan: the agent bank pulling the detail and posting results over the bank interface,
//!   with the simulator's fault modes: a bank that pulls and never answers, a pull cut short,
//!   amounts one fen off, a line the order does not have, a post cut short, results held back,
//!   posts repeated and shuffled; the budget system not answering.

mod common;
#[cfg(feature = "province-heilongjiang")]
mod heilongjiang_common;
#[cfg(feature = "province-henan")]
mod henan_common;
#[cfg(feature = "province-sichuan")]
mod sichuan_common;

use ykt_store::Store;

/// Everything about a batch a silent change would alter: its totals per line state, every
/// line's state and attempt, every ledger balance.
#[allow(dead_code)]
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

/// An address where nothing listens (a peer that is down: the same retryable transport error
/// as a timeout, without waiting a minute for the client's timeout).
#[allow(dead_code)]
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

#[cfg(feature = "province-heilongjiang")]
mod heilongjiang {
    use super::common::*;
    use super::heilongjiang_common::*;
    use super::snapshot;
    use async_trait::async_trait;
    use std::sync::{Arc, Mutex};
    use yikatong::cycle::Cycle;
    use ykt_kernel::Fen;
    use ykt_kernel::ports::{BankAgent, BankResult, PaymentInstruction, PortError};
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
        let sys = yikatong::provinces::heilongjiang::ops::system_user(&h.batch(b).await.unwrap())
            .unwrap();
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
        // The dropped line's result, collected sixteen times at once (the server's collector and
        // operators' `collect_results` at the same moment): applied by exactly one of them,
        // every other run finds it already applied (a duplicate) or is refused saying why; no
        // transition yet (failed lines are open), no line credited twice.
        set(Fault::None);
        let runs = join_all(
            (0..16)
                .map(|_| cycle.step(b, "collect_results", &sys, None))
                .collect(),
        )
        .await;
        let (mut credited, mut refused) = (0, 0);
        for r in runs {
            match r {
                Ok(r) => {
                    assert!(r.moved.is_none(), "failed lines are still open");
                    credited += r.results.map_or(0, |x| x.credited.count);
                }
                Err(e) => {
                    refused += 1;
                    let m = e.to_string();
                    assert!(m.contains("已被他人处理") || m.contains("同时处理"), "{m}");
                }
            }
        }
        eprintln!(
            "faulty_peers heilongjiang: 16 collections at once: {credited} credited, {refused} refused"
        );
        assert_eq!(credited, 1, "the missing line applied once");
        let tally = store.tally(b).await.unwrap();
        assert_eq!(tally.in_flight.count, 0);
        assert_eq!(tally.credited.count + tally.failed.count, lines);
        assert_eq!(store.hlj_lines_credited_twice(b).await.unwrap(), 0);
        store.verify_audit().await.unwrap();
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
}

#[cfg(feature = "province-sichuan")]
mod sichuan {
    use super::common::{self, PROJECT, clerk, join_all, load_registers, scenario};
    use super::sichuan_common::{check_money, day, finance, head, poll_until_funded, township};
    use super::{dead_url, snapshot};
    use yikatong::config::Config;
    use yikatong::cycle::StepReport;
    use yikatong::provinces::sichuan::demo::{ScratchDir, SimConfig, Simulators};
    use yikatong::provinces::sichuan::{Clock, Endpoints, Platform, Sichuan, ops, platform_for};
    use ykt_kernel::User;
    use ykt_kernel::batch::LineState;
    use ykt_kernel::ledger::AccountKind;
    use ykt_sim::sichuan::bank::{BankSim, BankSimConfig, ContentFaults, FileFault};
    use ykt_store::Store;
    use ykt_store::sichuan::AgencyAgreement;
    use ykt_store::testing::{TestDb, each_backend};

    async fn step(p: &Platform, id: i64, code: &str, u: &User) {
        p.cycle()
            .step(id, code, u, None)
            .await
            .unwrap_or_else(|e| panic!("{code}: {e}"));
        check_money(&p.sc.store, code).await;
    }

    /// The system's collection of the batch's results (what `ykt sichuan poll` runs).
    async fn collect(p: &Platform, b: i64) -> StepReport {
        let mut polled = ops::poll(p, Some(b), None).await.unwrap();
        assert_eq!(polled.len(), 1);
        let r = polled.remove(0);
        assert_eq!(r.step, "collect_results");
        let r = r.outcome.unwrap_or_else(|e| panic!("collect: {e}"));
        check_money(&p.sc.store, "collect").await;
        r
    }

    async fn anomalies(store: &Store, b: i64, kind: &str) -> usize {
        store
            .anomalies(b)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.kind == kind)
            .count()
    }

    /// A bank on the same drop with `content` faults for `order` (and `truncate`, `repeat`).
    fn bank(dir: &ScratchDir, content: ContentFaults, truncate: bool, repeat: bool) -> BankSim {
        let order = |on: bool, o: &FileFault| if on { o.clone() } else { FileFault::Never };
        let all = FileFault::Permille(1000);
        BankSim::new(
            dir.path(),
            BankSimConfig {
                seed: 5,
                truncate: order(truncate, &all),
                repeat: order(repeat, &all),
                content,
                ..BankSimConfig::default()
            },
        )
        .unwrap()
    }

    async fn run(db: &TestDb) {
        let store = &db.store;
        let cfg = Config::default();
        let province = yikatong::build_province(
            yikatong::select_province(Some("sichuan"), &cfg).unwrap(),
            &cfg,
        )
        .unwrap();
        load_registers(store).await;
        let (_, r) = common::import(
            store,
            province.as_ref(),
            PROJECT,
            &scenario().join("roster.csv"),
        )
        .await;
        let b = r.batches[0].id;
        let order = store.batch(b).await.unwrap().unwrap().order_no;
        let clock = Clock::fixed(day("2023-05-08"));
        let sc = Sichuan::from_config(&cfg, store, clock.clone()).unwrap();
        let dir = ScratchDir::new("ykt-sichuan-peers").unwrap();
        let sims = Simulators::start(
            dir.path(),
            SimConfig {
                bank: BankSimConfig::default(),
                pending_polls: 1,
            },
        )
        .await
        .unwrap();
        let p = platform_for(&sc, &sims.endpoints()).unwrap();
        let (clerk, township, head, finance) = (clerk(), township(), head(), finance());
        ops::add_agreement(
            &p,
            &AgencyAgreement {
                id: 0,
                agreement_no: "DL-2023-001".into(),
                region: "230102000000".into(),
                project: "SC09".into(),
                department: "道里区民政局".into(),
                zb_account_no: "221501010400123".into(),
                zb_account_name: "道里区民政局".into(),
                zb_bank: "中国农业银行道里支行".into(),
                bank: "中国农业银行".into(),
                terms: "委托事项：低保代发；发放时间：收到指令当日；信息反馈：逐笔回盘；资金监管：不得收费；对账办法：按月对账".into(),
                signed_on: "2023-01-05".into(),
                valid_until: "2025-12-31".into(),
            },
            &clerk,
        )
        .await
        .unwrap();
        step(&p, b, "start_publicity", &township).await;
        clock.set(day("2023-05-15"));
        step(&p, b, "township_submit", &township).await;
        step(&p, b, "dept_review", &head).await;
        ops::declare_plan(&p, b, None, None, &clerk).await.unwrap();
        assert!(ops::review(&p, b, &finance).await.unwrap().review.passed);
        clock.set(day("2023-05-16"));

        // The treasury does not answer: the poll fails with the port's error, nothing changes.
        let dead = platform_for(
            &sc,
            &Endpoints {
                treasury_url: Some(dead_url()),
                bank_dir: Some(dir.path().to_path_buf()),
            },
        )
        .unwrap();
        let before = snapshot(store, b).await;
        let audit = store.verify_audit().await.unwrap().entries;
        let state = store.batch(b).await.unwrap().unwrap().state;
        let e = ops::poll(&dead, Some(b), None).await;
        assert!(e.is_err(), "a treasury that does not answer fails the poll");
        assert_eq!(
            snapshot(store, b).await,
            before,
            "treasury down: nothing changed"
        );
        assert_eq!(store.verify_audit().await.unwrap().entries, audit);
        assert_eq!(store.batch(b).await.unwrap().unwrap().state, state);

        poll_until_funded(&p, b).await;
        step(&p, b, "submit_disbursement", &clerk).await;
        step(&p, b, "confirm_disbursement", &finance).await;
        step(&p, b, "send_instruction", &clerk).await;
        let n = store.tally(b).await.unwrap().in_flight.count;
        assert!(n > 2);
        eprintln!("faulty_peers sichuan: {n} lines in flight");
        let on = FileFault::Orders(vec![order.clone()]);

        // The bank reads the instruction and never answers: every line stays in flight, the
        // step says so, nothing changes.
        let before = snapshot(store, b).await;
        let silent = bank(
            &dir,
            ContentFaults {
                silent: on.clone(),
                ..ContentFaults::default()
            },
            false,
            false,
        );
        let round = silent.process_once().await.unwrap();
        assert_eq!((round.instructions.len(), round.withheld.len()), (1, 1));
        let r = collect(&p, b).await;
        assert!(r.moved.is_none());
        assert!(r.note.contains("发放中"), "{}", r.note);
        assert_eq!(
            snapshot(store, b).await,
            before,
            "no answer: nothing changed"
        );

        // Every amount one fen off (the file itself consistent): each result an anomaly, no
        // line and no money moves.
        let wrong = bank(
            &dir,
            ContentFaults {
                wrong_amount: on.clone(),
                ..ContentFaults::default()
            },
            false,
            false,
        );
        assert_eq!(wrong.resend(&order).unwrap().altered.len(), 1);
        let r = collect(&p, b).await;
        assert!(r.moved.is_none());
        let res = r.results.unwrap();
        assert_eq!((res.credited.count, res.failed.count), (0, 0));
        assert!(anomalies(store, b, "amount_mismatch").await as u64 >= n);
        assert_eq!(
            snapshot(store, b).await,
            before,
            "wrong amounts: nothing moved"
        );

        // A truncated file: refused whole with the reason, a rejection receipt for the bank,
        // nothing applied.
        let cut = bank(&dir, ContentFaults::default(), true, false);
        assert_eq!(cut.resend(&order).unwrap().truncated.len(), 1);
        collect(&p, b).await;
        let rejected: Vec<_> = store
            .sichuan_bank_files(b)
            .await
            .unwrap()
            .into_iter()
            .filter(|f| f.direction == "result" && f.status == "rejected")
            .collect();
        assert_eq!(rejected.len(), 1);
        assert!(
            rejected[0].note.contains("截断") || rejected[0].note.contains("不完整"),
            "{}",
            rejected[0].note
        );
        let receipts = std::fs::read_dir(dir.path().join("to_bank"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".rej"))
            .count();
        assert_eq!(receipts, 1, "the bank is told why");
        assert_eq!(
            snapshot(store, b).await,
            before,
            "truncated: nothing applied"
        );

        // The bank answers the receipt with a file that leaves one line out, lists the lines
        // in reverse and adds a line the order does not have: the others are applied, the
        // missing one stays in flight (the batch does not settle), the stranger is an anomaly.
        let lossy = bank(
            &dir,
            ContentFaults {
                drop_line: on.clone(),
                reorder: on.clone(),
                unknown_line: on.clone(),
                ..ContentFaults::default()
            },
            false,
            false,
        );
        let round = lossy.process_once().await.unwrap();
        assert_eq!(round.resent.len(), 1);
        assert_eq!(round.altered[0].1, ["drop_line", "reorder", "unknown_line"]);
        let r = collect(&p, b).await;
        assert!(r.moved.is_none(), "one line is missing: not settled");
        assert!(r.note.contains("发放中"), "{}", r.note);
        assert_eq!(r.results.unwrap().credited.count, n - 1);
        assert_eq!(anomalies(store, b, "unknown_line").await, 1);
        let tally = store.tally(b).await.unwrap();
        assert_eq!((tally.in_flight.count, tally.credited.count), (1, n - 1));

        // The complete file, sent twice, and sixteen polls at once (sixteen `ykt sichuan poll`
        // runs): each file taken by one poll (the second copy recorded as a repeat), the
        // missing line applied once, one transition; a poll overtaken by another is refused
        // saying so, never applies anything twice.
        let twice = bank(&dir, ContentFaults::default(), false, true);
        let round = twice.resend(&order).unwrap();
        assert_eq!(round.repeated.len(), 1);
        let polls = join_all((0..16).map(|_| ops::poll(&p, Some(b), None)).collect()).await;
        let (mut credited, mut duplicates, mut moved, mut refused) = (0, 0, 0, 0);
        for r in polls {
            match r.map(|mut v| v.pop().map(|x| x.outcome)) {
                Ok(Some(Ok(r))) => {
                    let res = r.results.unwrap();
                    credited += res.credited.count;
                    duplicates += res.duplicates;
                    moved += usize::from(r.moved.is_some());
                }
                Ok(Some(Err(m))) => {
                    refused += 1;
                    assert!(!m.is_empty());
                }
                Ok(None) => {} // already settled when this poll looked
                Err(e) => {
                    refused += 1;
                    // Another poll's step or its application of the same lines committed first.
                    let m = e.to_string();
                    assert!(m.contains("已被他人处理") || m.contains("同时处理"), "{m}");
                    assert!(
                        m.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                        "{m}"
                    );
                }
            }
        }
        eprintln!(
            "faulty_peers sichuan: 16 polls at once: {credited} credited, {duplicates} duplicates, {moved} settled, {refused} refused"
        );
        // A poll that applied the missing line and then lost the transition to another poll
        // (that found nothing left to apply) reports its results, and that the other settled.
        assert_eq!(
            credited, 1,
            "the missing line reported applied exactly once"
        );
        assert_eq!(moved, 1, "one poll settled the batch");
        let settled = store
            .batch_steps(b)
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.to_state == "settled")
            .count();
        assert_eq!(settled, 1, "one transition");
        check_money(store, "sixteen polls").await;
        let waiting = std::fs::read_dir(dir.path().join("from_bank"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_file())
            .count();
        assert_eq!(waiting, 0, "every file taken once");
        let files = store.sichuan_bank_files(b).await.unwrap();
        assert!(files.iter().any(|f| f.status == "repeat"));

        // Every line applied once: credited count and the cards' balance agree, nothing in
        // flight, the batch balances (check_money), the ledger sums to zero.
        let tally = store.tally(b).await.unwrap();
        assert_eq!((tally.in_flight.count, tally.credited.count), (0, n));
        let lines = store.lines(b, 0, i64::MAX).await.unwrap();
        assert!(
            lines
                .iter()
                .all(|l| l.state == LineState::Credited && l.attempt == 1)
        );
        let cards: ykt_kernel::Fen = store
            .ledger_balances()
            .await
            .unwrap()
            .into_iter()
            .filter(|(a, _)| a.kind == AccountKind::Beneficiaries)
            .map(|(_, v)| v)
            .sum();
        assert_eq!(cards, tally.credited.amount, "no line credited twice");
        assert_eq!(
            store.batch(b).await.unwrap().unwrap().state.as_str(),
            "settled"
        );
        check_money(store, "the end").await;
    }

    #[tokio::test]
    async fn each_fault_is_flagged_never_a_silent_change() {
        each_backend("faulty_peers_sichuan", |db| async move { run(&db).await }).await;
    }
}

#[cfg(feature = "province-henan")]
mod henan {
    use super::henan_common::*;
    use super::{dead_url, snapshot};
    use std::sync::Arc;
    use yikatong::cycle::Ports;
    use yikatong::provinces::henan::ops::Henan;
    use yikatong::provinces::henan::ports::{HenanTreasury, today_fn};
    use ykt_http::henan::budget::BudgetClient;
    use ykt_kernel::Fen;
    use ykt_kernel::batch::{BatchState, LineState, check_balance};
    use ykt_kernel::ledger::AccountKind;
    use ykt_province_henan::calendar::WorkCalendar;
    use ykt_sim::henan::bank::BankFaults;
    use ykt_store::Store;
    use ykt_store::testing::{TestDb, each_backend};

    async fn check(store: &Store, batch: i64) {
        let b = store.batch(batch).await.unwrap().unwrap();
        check_balance(batch, b.control, &store.tally(batch).await.unwrap()).unwrap();
        assert_ledger(store).await;
    }

    /// The refused posts logged with the order: (results refused, message).
    async fn refused_posts(store: &Store, order: &str) -> Vec<(i64, String)> {
        store
            .henan_posts(order)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|p| p.error.map(|e| (p.refused, e)))
            .collect()
    }

    /// Synchronising changes nothing: the batch waits for its results.
    async fn still(ops: &Henan<'_>, what: &str) {
        let s = ops.sync().await.unwrap();
        assert!(
            s[0].outcome.starts_with("状态不变"),
            "{what}: {}",
            s[0].outcome
        );
        check(ops.store, s[0].batch).await;
    }

    async fn run(db: &TestDb) {
        let store = &db.store;
        let batch = scenario(store, &["ABC-HN"]).await;
        let (id, order) = (batch.id, batch.order_no.clone());
        let (province, env) = world_with(store, BankFaults::default(), None, false).await;
        let cal = WorkCalendar::builtin().unwrap();
        let ops = Henan {
            store,
            province: province.as_ref(),
            ports: &env.ports,
            today: today(),
            calendar: &cal,
        };
        let clerk = user(store, "daoli-clerk").await;
        let finance = user(store, "daoli-cz").await;
        ops.step(id, "apply_funds", &clerk, None).await.unwrap();
        ops.review(id, &finance, None, None).await.unwrap();
        ops.step(id, "push_order", &finance, None).await.unwrap();
        check(store, id).await;

        // The budget system does not answer: synchronising fails with the port's error,
        // nothing changes.
        let dead_ports = Ports {
            treasury: Some(Arc::new(HenanTreasury {
                client: BudgetClient::new(&dead_url()).unwrap(),
                store: store.clone(),
                today: today_fn(Some(today())),
            })),
            bank: env.ports.bank.clone(),
            disclosure: env.ports.disclosure.clone(),
        };
        let dead = Henan {
            ports: &dead_ports,
            ..ops
        };
        let before = snapshot(store, id).await;
        let audit = store.verify_audit().await.unwrap().entries;
        let e = dead.sync().await;
        assert!(
            e.is_err(),
            "a budget system that does not answer fails the sync"
        );
        assert_eq!(
            snapshot(store, id).await,
            before,
            "budget system down: nothing changed"
        );
        assert_eq!(store.verify_audit().await.unwrap().entries, audit);
        assert_eq!(
            store.batch(id).await.unwrap().unwrap().state,
            BatchState::PlanPushed
        );

        for _ in 0..3 {
            ops.sync().await.unwrap();
        }
        assert_eq!(
            store.batch(id).await.unwrap().unwrap().state,
            BatchState::Dispatched
        );
        let n = store.tally(id).await.unwrap().in_flight.count;
        assert!(n > 2);
        eprintln!("faulty_peers henan: {n} lines in flight");
        let bank = &env.banks["ABC-HN"];
        // The bank pulls (its connection dropping after three lines: it resumes after the
        // last line received) and never answers: every line stays in flight.
        let before = snapshot(store, id).await;
        bank.set_faults(BankFaults {
            drop_after: Some(3),
            silent: true,
            ..BankFaults::default()
        });
        let r = bank.process(&order).await.unwrap();
        assert_eq!((r.pulled as u64, r.dropped, r.posts), (n, true, 0));
        still(&ops, "silent bank").await;
        assert_eq!(
            snapshot(store, id).await,
            before,
            "no answer: nothing changed"
        );

        // Every amount one fen off; a line the order does not have: each post refused whole
        // (422) with the reason, logged with the order, nothing applied.
        bank.set_faults(BankFaults {
            wrong_amount: true,
            ..BankFaults::default()
        });
        let e = bank.process(&order).await.unwrap_err().to_string();
        assert!(e.contains("422") && e.contains("无法受理"), "{e}");
        bank.set_faults(BankFaults {
            unknown_line: true,
            ..BankFaults::default()
        });
        let e = bank.process(&order).await.unwrap_err().to_string();
        assert!(e.contains("422") && e.contains("无法受理"), "{e}");
        let refused = refused_posts(store, &order).await;
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert_eq!(refused[0].0 as u64, n, "every wrong amount refused");
        assert_eq!(refused[1].0, 1, "the stranger refused");
        assert!(refused.iter().all(|(_, m)| m.contains("整批未处理")));
        still(&ops, "refused posts").await;
        assert_eq!(
            snapshot(store, id).await,
            before,
            "refused posts: nothing changed"
        );
        assert!(store.henan_results(&order).await.unwrap().is_empty());

        // A post cut short (refused, logged), then whole, twice and shuffled, one line's
        // result held back: the others applied once (the repeat counted as duplicates), the
        // held line in flight, the hand-over refused while it is, the batch not settled.
        bank.set_faults(BankFaults {
            truncate_post: true,
            withhold: 1,
            repeat_rate: 1.0,
            shuffle: true,
            ..BankFaults::default()
        });
        let e = bank.process(&order).await.unwrap_err().to_string();
        assert!(
            e.contains("409") && e.contains("尚有1笔明细未反馈结果"),
            "{e}"
        );
        let refused = refused_posts(store, &order).await;
        assert_eq!(refused.len(), 3);
        assert!(refused[2].1.contains("无法解析"), "{}", refused[2].1);
        let posts = store.henan_posts(&order).await.unwrap();
        let dups: i64 = posts.iter().map(|p| p.duplicates).sum();
        assert_eq!(dups as u64, n - 1, "the repeated post changed nothing");
        let tally = store.tally(id).await.unwrap();
        assert_eq!((tally.in_flight.count, tally.credited.count), (1, n - 1));
        still(&ops, "a line held back").await;

        // The bank sends the held-back result: applied, handed over without discrepancy, the
        // batch settles.
        bank.set_faults(BankFaults::default());
        let r = bank.process(&order).await.unwrap();
        assert_eq!(r.pulled, 1, "only the missing line is pulled again");
        let h = r.handover.unwrap();
        assert_eq!(h["discrepancies"].as_array().map(Vec::len), Some(0), "{h}");
        ops.sync().await.unwrap();
        assert_eq!(
            store.batch(id).await.unwrap().unwrap().state,
            BatchState::Settled
        );

        // Every line applied once: one result per line, the cards hold the credited amount.
        let tally = store.tally(id).await.unwrap();
        assert_eq!((tally.in_flight.count, tally.credited.count), (0, n));
        assert_eq!(store.henan_results(&order).await.unwrap().len() as u64, n);
        let lines = store.lines(id, 0, i64::MAX).await.unwrap();
        assert!(
            lines
                .iter()
                .all(|l| l.state == LineState::Credited && l.attempt == 1)
        );
        let cards: Fen = store
            .ledger_balances()
            .await
            .unwrap()
            .into_iter()
            .filter(|(a, _)| a.kind == AccountKind::Beneficiaries)
            .map(|(_, v)| v)
            .sum();
        assert_eq!(cards, tally.credited.amount, "no line credited twice");
        check(store, id).await;
    }

    #[tokio::test]
    async fn each_fault_is_flagged_never_a_silent_change() {
        each_backend("faulty_peers_henan", |db| async move { run(&db).await }).await;
    }
}
