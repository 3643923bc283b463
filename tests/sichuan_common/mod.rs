//! The shared scenario (`tests/scenarios/standard/`) run through Sichuan's whole
//! zero-balance-account cycle against the simulators, with a small supplementary roster paid
//! through receipt proxies (`receipt.csv`). Every step is followed by the money checks; the
//! renderings users read are collected for the snapshots.
#![allow(dead_code)]

use crate::common::{self, PROJECT, URBAN, clerk, load_registers, roster_xlsx, scenario};
use chrono::NaiveDate;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use yikatong::config::Config;
use yikatong::cycle::CycleError;
use yikatong::provinces::sichuan::demo::{ScratchDir, SimConfig, Simulators};
use yikatong::provinces::sichuan::{Clock, Platform, Sichuan, ops, platform_for, render};
use ykt_kernel::batch::{LineState, check_balance};
use ykt_kernel::intake::ProxyKind;
use ykt_kernel::ledger::AccountKind;
use ykt_kernel::ports::FailureReason;
use ykt_kernel::{BankAccount, Fen, Period, RegionCode, ResidentId, Role, User};
use ykt_sim::sichuan::bank::{BankSimConfig, FailRule, FileFault};
use ykt_store::Store;
use ykt_store::cycle::LineFix;
use ykt_store::sichuan::AgencyAgreement;

pub fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn user(login: &str, role: Role) -> User {
    User {
        login: login.into(),
        name: login.into(),
        roles: vec![role],
        region: RegionCode::parse("230102").unwrap(),
        bank: None,
    }
}

pub fn township() -> User {
    user("daoli-township", Role::TownshipClerk)
}
pub fn head() -> User {
    user("daoli-head", Role::DeptHead)
}
pub fn finance() -> User {
    user("daoli-finance", Role::FinanceReviewer)
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sichuan_common")
}

/// What the scenario produced, rendered as users read it.
#[derive(Default)]
pub struct Outputs {
    pub validation: String,
    pub trace: String,
    pub vouchers: String,
    pub bank_files: String,
    pub ledger: String,
    pub notices: String,
    pub checks: String,
    pub statements: String,
    pub sms: String,
}

pub struct Run {
    pub p: Platform,
    pub sims: Simulators,
    pub dir: ScratchDir,
    pub main: i64,
    pub receipt: i64,
    pub out: Outputs,
}

/// The money checks after every step: the ledger sums to zero with every entry balanced,
/// every batch of the scenario balances against its control totals, no zero-balance account
/// or bank account is overdrawn.
pub async fn check_money(store: &Store, what: &str) {
    let (sum, bad) = store.ledger_check().await.unwrap();
    assert_eq!((sum, bad), (Fen(0), 0), "ledger after {what}");
    for b in store.batches(Some("sichuan"), None).await.unwrap() {
        let tally = store.tally(b.id).await.unwrap();
        check_balance(b.id, b.control, &tally).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
    for (a, v) in store.ledger_balances().await.unwrap() {
        if matches!(a.kind, AccountKind::ZeroBalance | AccountKind::AgentBank) {
            assert!(!v.is_negative(), "{what}: {a} is overdrawn ({v})");
        }
    }
}

/// The balance of every zero-balance account together.
pub async fn zero_balance(store: &Store) -> Fen {
    store
        .ledger_balances()
        .await
        .unwrap()
        .iter()
        .filter(|(a, _)| a.kind == AccountKind::ZeroBalance)
        .map(|(_, v)| *v)
        .sum()
}

async fn step(p: &Platform, id: i64, code: &str, u: &User, reason: Option<&str>) {
    p.cycle()
        .step(id, code, u, reason)
        .await
        .unwrap_or_else(|e| panic!("{code} on batch {id} by {}: {e}", u.login));
    check_money(&p.sc.store, code).await;
}

/// A step that must be refused; returns the refusal's message. Nothing changes.
pub async fn refused(p: &Platform, id: i64, code: &str, u: &User) -> String {
    let before = p.sc.store.batch(id).await.unwrap().unwrap();
    let e = p
        .cycle()
        .step(id, code, u, Some("试图越权"))
        .await
        .expect_err(code);
    let after = p.sc.store.batch(id).await.unwrap().unwrap();
    assert_eq!(
        (before.state, before.version),
        (after.state, after.version),
        "a refused {code} changes nothing"
    );
    match e {
        CycleError::Port(p) => p.message,
        other => other.to_string(),
    }
}

/// Poll until the batch's funding arrived (the simulated treasury answers `accepted` first).
pub async fn poll_until_funded(p: &Platform, id: i64) {
    for _ in 0..5 {
        poll(p).await;
        if p.sc.store.batch(id).await.unwrap().unwrap().state.as_str() == "funded" {
            return;
        }
    }
    panic!("batch {id} never funded");
}

async fn poll(p: &Platform) {
    let scope = RegionCode::parse("230102").unwrap();
    ops::poll(p, None, Some(&scope)).await.unwrap();
    check_money(&p.sc.store, "poll").await;
}

fn report(r: &yikatong::intake::CheckReport) -> String {
    let mut o = String::new();
    let s = &r.summary;
    writeln!(
        o,
        "{} {} 当前属期 {}：行数 {} 通过 {} 未通过 {} 有提示 {} 通过金额 {} 元",
        r.project_code,
        r.project_name,
        r.period,
        s.lines,
        s.accepted,
        s.rejected,
        s.with_warnings,
        s.accepted_amount
    )
    .unwrap();
    for p in &r.problems {
        writeln!(
            o,
            "  {:>2} | {} | {} | {} | {} {} | {}",
            p.row,
            p.column.as_deref().unwrap_or("-"),
            p.code,
            p.severity,
            p.name,
            p.id,
            p.message
        )
        .unwrap();
    }
    o
}

/// A Luhn-valid account (the replaced card of a beneficiary whose account was wrong).
fn new_account() -> BankAccount {
    let body = "622848000099000001";
    let full = (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|s| ykt_kernel::ident::luhn_valid(s))
        .unwrap();
    BankAccount::parse(&full).unwrap()
}

async fn line_of(store: &Store, batch: i64, name: &str) -> ykt_store::payments::LineRow {
    store
        .lines(batch, 0, i64::MAX)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no line {name} in batch {batch}"))
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Run the scenario through the whole cycle (see the module docs).
pub async fn run(store: &Store) -> Run {
    let cfg = Config::default();
    let province = yikatong::build_province(
        yikatong::select_province(Some("sichuan"), &cfg).unwrap(),
        &cfg,
    )
    .unwrap();
    load_registers(store).await;
    // A receipt agreement for 赵凤英, who receives for 马德贵 (no ID); none for 黄志强.
    store
        .record_agreement(
            &ResidentId::from_trusted("230102198908221071").unwrap(),
            ProxyKind::Receipt,
            "赵凤英",
            "幸福村村民委员会",
            "2023-04-20",
        )
        .await
        .unwrap();
    let dir = scenario();
    let tmp = tempfile::tempdir().unwrap();
    common::import(store, province.as_ref(), PROJECT, &dir.join("earlier.csv")).await;
    common::import(store, province.as_ref(), URBAN, &dir.join("urban.csv")).await;
    let (main_report, main) =
        common::import(store, province.as_ref(), PROJECT, &roster_xlsx(tmp.path())).await;
    let (receipt_report, receipt) = common::import(
        store,
        province.as_ref(),
        "分散特困人员救助供养金",
        &fixtures().join("receipt.csv"),
    )
    .await;
    let (main, receipt) = (main.batches[0].id, receipt.batches[0].id);
    let mut out = Outputs {
        validation: format!("{}\n{}", report(&main_report), report(&receipt_report)),
        ..Outputs::default()
    };

    let clock = Clock::fixed(day("2023-05-08"));
    let sc = Sichuan::from_config(&cfg, store, clock.clone()).unwrap();
    let wrong = line_of(store, main, "傅春兰").await;
    let closed = line_of(store, main, "吕长江").await;
    let main_order = store.batch(main).await.unwrap().unwrap().order_no;
    let receipt_order = store.batch(receipt).await.unwrap().unwrap().order_no;
    let bank_dir = ScratchDir::new("ykt-sichuan-test").unwrap();
    let sims = Simulators::start(
        bank_dir.path(),
        SimConfig {
            bank: BankSimConfig {
                seed: 61,
                fail_permille: 0,
                fail_accounts: vec![
                    FailRule {
                        account: wrong.account.as_str().into(),
                        reason: FailureReason::WrongAccount,
                        attempts: 1,
                    },
                    FailRule {
                        account: closed.account.as_str().into(),
                        reason: FailureReason::AccountClosed,
                        attempts: 0,
                    },
                ],
                repeat: FileFault::Orders(vec![main_order.clone()]),
                truncate: FileFault::Orders(vec![receipt_order.clone()]),
                sms_url: None,
                content: Default::default(),
            },
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
            terms: "委托事项：低保及特困供养金代发；发放时间：收到指令当日；信息反馈：逐笔回盘；资金监管：不得收费；对账办法：按月对账".into(),
            signed_on: "2023-01-05".into(),
            valid_until: "2025-12-31".into(),
        },
        &clerk,
    )
    .await
    .unwrap();

    // Pre-payment publicity, objections, the township's submission.
    for b in [main, receipt] {
        step(&p, b, "start_publicity", &township, None).await;
    }
    clock.set(day("2023-05-10"));
    let target = line_of(store, main, "彭秀云").await;
    let o1 = ops::raise_objection(
        &p,
        main,
        Some(target.id),
        "张明华",
        "该户子女在外务工收入稳定，家庭人均收入已超标",
        &township,
    )
    .await
    .unwrap();
    let o2 = ops::raise_objection(
        &p,
        main,
        None,
        "李秀珍",
        "本村困难户是否都已列入名单",
        &township,
    )
    .await
    .unwrap();
    assert!(
        refused(&p, main, "township_submit", &township)
            .await
            .contains("尚未期满")
    );
    clock.set(day("2023-05-12"));
    let r = ops::resolve_objection(&p, o1, true, "经入户核实收入超标，取消本期发放", &township)
        .await
        .unwrap();
    assert_eq!(r.excluded, Some((target.id, Fen(42_000))));
    clock.set(day("2023-05-15"));
    assert!(
        refused(&p, main, "township_submit", &township)
            .await
            .contains("异议")
    );
    ops::resolve_objection(&p, o2, false, "经核对名单无遗漏", &township)
        .await
        .unwrap();
    for b in [main, receipt] {
        step(&p, b, "township_submit", &township, None).await;
        step(&p, b, "dept_review", &head, None).await;
    }

    // Plans and the procedural review: a wrong declaration is returned with its reason.
    ops::declare_plan(&p, main, None, Some(Fen(503_000)), &clerk)
        .await
        .unwrap();
    let rv = ops::review(&p, main, &finance).await.unwrap();
    assert!(!rv.review.passed);
    assert_eq!(
        p.sc.store
            .batch(main)
            .await
            .unwrap()
            .unwrap()
            .state
            .as_str(),
        "returned"
    );
    ops::declare_plan(&p, main, None, None, &clerk)
        .await
        .unwrap();
    assert!(ops::review(&p, main, &finance).await.unwrap().review.passed);
    ops::declare_plan(&p, receipt, None, None, &clerk)
        .await
        .unwrap();
    assert!(
        ops::review(&p, receipt, &finance)
            .await
            .unwrap()
            .review
            .passed
    );
    check_money(store, "review").await;

    // Funding: pending at the first query, funded at the second.
    clock.set(day("2023-05-16"));
    poll(&p).await;
    assert_eq!(zero_balance(store).await, Fen(0), "nothing funded yet");
    poll(&p).await;
    let funded =
        p.sc.store
            .batch(main)
            .await
            .unwrap()
            .unwrap()
            .control
            .amount
            + p.sc
                .store
                .batch(receipt)
                .await
                .unwrap()
                .unwrap()
                .control
                .amount;
    assert_eq!(
        zero_balance(store).await,
        funded,
        "the zero-balance account goes up"
    );
    for b in [main, receipt] {
        step(&p, b, "submit_disbursement", &clerk, None).await;
        step(&p, b, "confirm_disbursement", &finance, None).await;
        step(&p, b, "send_instruction", &clerk, None).await;
    }
    assert_eq!(zero_balance(store).await, Fen(0), "paid on to the bank");

    // The bank: a failed line, a repeated result file, a truncated one.
    sims.bank.process_once().await.unwrap();
    poll(&p).await;
    let receipt_tally = store.tally(receipt).await.unwrap();
    assert_eq!(
        receipt_tally.in_flight.count, 2,
        "the truncated file is rejected whole"
    );
    assert!(
        store
            .sichuan_postings(Some(AccountKind::Beneficiaries), Some(receipt))
            .await
            .unwrap()
            .is_empty(),
        "nothing of the truncated file is applied"
    );
    sims.bank.process_once().await.unwrap();
    poll(&p).await;
    assert_eq!(store.tally(receipt).await.unwrap().credited.count, 2);

    // Wrong account corrected and paid again; closed account refunded to the treasury.
    clock.set(day("2023-05-17"));
    p.cycle()
        .correct(
            main,
            wrong.id,
            &LineFix {
                account: Some(new_account()),
                bank: None,
                name: None,
                reason: "社保卡已补换，更正为新卡账号".into(),
                beneficiary_signed: Some("本人".into()),
                head_signoff: Some(head.login.clone()),
            },
            &clerk,
        )
        .await
        .unwrap();
    p.cycle().redispatch(main, &clerk).await.unwrap();
    check_money(store, "redispatch").await;
    p.cycle()
        .refund(
            main,
            closed.id,
            "账户已销户，本人外出当年无法更正，列入未发放台账",
            &clerk,
            &finance,
        )
        .await
        .unwrap();
    check_money(store, "refund").await;
    sims.bank.process_once().await.unwrap();
    poll(&p).await;
    for b in [main, receipt] {
        let bt = store.batch(b).await.unwrap().unwrap();
        assert_eq!(bt.state.as_str(), "settled", "batch {b}");
    }
    assert_eq!(
        zero_balance(store).await,
        Fen(0),
        "every line paid or refunded: the zero-balance account is back to zero"
    );
    assert_eq!(line_of(store, main, "傅春兰").await.attempt, 2);
    assert_eq!(
        line_of(store, main, "吕长江").await.state,
        LineState::Refunded
    );

    // Post-payment publicity within five days, with the dual verification.
    clock.set(day("2023-05-19"));
    for b in [main, receipt] {
        step(&p, b, "post_publicity", &clerk, None).await;
    }
    // A deceased person's payment recovered, then the month end.
    clock.set(day("2023-05-22"));
    let dead = line_of(store, main, "沈国栋").await;
    ops::recover(
        &p,
        main,
        dead.id,
        "deceased",
        "比对死亡登记：该对象属期前已死亡，家属冒领",
        &clerk,
        &finance,
    )
    .await
    .unwrap();
    check_money(store, "recover").await;
    assert_eq!(zero_balance(store).await, Fen(42_000));
    clock.set(day("2023-05-31"));
    let scope = RegionCode::parse("230102").unwrap();
    let month = Period::parse("2023-05").unwrap();
    let before = ops::month_end(&p, month, &scope, None, &clerk)
        .await
        .unwrap();
    assert!(!before.passed);
    let after = ops::month_end(&p, month, &scope, Some((&clerk, &finance)), &clerk)
        .await
        .unwrap();
    assert!(after.passed, "{}", render::month_end(&after));
    check_money(store, "month end").await;
    assert_eq!(zero_balance(store).await, Fen(0));
    for b in [main, receipt] {
        step(&p, b, "close", &head, None).await;
    }
    let statements = ops::statements(&p, month, Some(&scope)).await.unwrap();

    // Renderings.
    let mask = p.sc.province.mask_policy();
    for b in [main, receipt] {
        let row = store.batch(b).await.unwrap().unwrap();
        out.trace.push_str(&render::trace(
            &row,
            &store.batch_steps(b).await.unwrap(),
            p.sc.province.workflow(),
        ));
        writeln!(out.vouchers, "批次{b} {}", row.order_no).unwrap();
        out.vouchers.push_str(&render::reviews(
            &store.sichuan_plans(b).await.unwrap(),
            &store.sichuan_reviews(b).await.unwrap(),
        ));
        for v in store.sichuan_vouchers(b).await.unwrap() {
            writeln!(
                out.vouchers,
                "--- {}（{}，{}：{}）",
                v.voucher_no, v.kind, v.status, v.status_note
            )
            .unwrap();
            out.vouchers.push_str(&render::voucher_text(&v.xml));
        }
        writeln!(out.bank_files, "批次{b} {}", row.order_no).unwrap();
        out.bank_files.push_str(&render::bank_files(
            &store.sichuan_bank_files(b).await.unwrap(),
        ));
        let lines = store.lines(b, 0, i64::MAX).await.unwrap();
        if let Some(v) = store.sichuan_verification(b).await.unwrap() {
            writeln!(out.checks, "双向验证 批次{b}").unwrap();
            out.checks.push_str(&render::verification(&v, |id| {
                lines
                    .iter()
                    .find(|l| l.id == id)
                    .map(|l| format!("{} {}", mask.name(&l.name), l.state.label_zh()))
                    .unwrap_or_default()
            }));
        }
        writeln!(out.checks, "异议 批次{b}").unwrap();
        out.checks.push_str(&render::objections(
            &store.sichuan_objections(b).await.unwrap(),
        ));
    }
    out.checks.push_str("未发放台账\n");
    out.checks.push_str(&render::unpaid(
        &store.sichuan_unpaid("sichuan", "230102").await.unwrap(),
        &mask,
    ));
    out.checks.push_str(&render::month_end(&before));
    out.checks.push_str(&render::month_end(&after));
    for f in files_under(bank_dir.path()) {
        let rel = f
            .strip_prefix(bank_dir.path())
            .unwrap()
            .display()
            .to_string();
        if rel.starts_with("bank/") {
            continue; // the bank's own copies
        }
        writeln!(out.bank_files, "=== {rel}").unwrap();
        out.bank_files.push_str(&render::bank_file_masked(
            &std::fs::read(&f).unwrap(),
            &mask,
        ));
    }
    let postings = store.sichuan_postings(None, None).await.unwrap();
    out.ledger.push_str("单位零余额账户\n");
    out.ledger
        .push_str(&render::ledger(&postings, &["zero_balance"]));
    out.ledger.push_str("全部分录\n");
    out.ledger.push_str(&render::ledger(&postings, &[]));
    out.ledger.push_str("余额\n");
    for (a, v) in store.ledger_balances().await.unwrap() {
        writeln!(out.ledger, "  {} {}", a.label_zh(), v).unwrap();
    }
    let orders = [main_order, receipt_order];
    let mut notices = store.notices(None).await.unwrap();
    notices.sort_by(|a, b| a.id.cmp(&b.id));
    for n in notices
        .iter()
        .filter(|n| orders.iter().any(|o| n.id.starts_with(o)))
    {
        writeln!(
            out.notices,
            "=== {} [{}] {}{}\n{}",
            n.id,
            n.kind,
            n.published_on,
            n.until
                .as_deref()
                .map(|u| format!(" 至 {u}"))
                .unwrap_or_default(),
            n.body
        )
        .unwrap();
    }
    out.statements = render::statements(&month, "按月", &statements);
    out.sms = render::sms(&sims.sms.messages(), &mask);
    Run {
        p,
        sims,
        dir: bank_dir,
        main,
        receipt,
        out,
    }
}
