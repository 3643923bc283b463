//! Helpers of Henan's workspace tests: the people of the shared scenario's county (道里区
//! 230102, its city 2301 and province 23) in Henan's roles, the candidate bank, the simulated
//! world, and the shared scenario's roster imported as Henan batches.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use yikatong::cycle::Ports;
use yikatong::provinces::henan::ops::{Henan, load_user};
use yikatong::provinces::henan::ports::{SimEnv, SimOptions, start_sims};
use ykt_kernel::ports::FailureReason;
use ykt_kernel::province::Province;
use ykt_kernel::{Role, User};
use ykt_province_henan::banks::Candidate;
use ykt_province_henan::calendar::WorkCalendar;
use ykt_sim::henan::bank::BankFaults;
use ykt_store::payments::BatchRow;
use ykt_store::{Store, UserRow};

#[path = "../common/mod.rs"]
pub mod common;

pub fn today() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2023, 5, 20).unwrap()
}

/// The scenario's people in Henan's roles.
pub const PEOPLE: &[(&str, &str, &[Role], &str)] = &[
    (
        "daoli-clerk",
        "道里区民政局经办",
        &[Role::DeptMaker],
        "230102",
    ),
    (
        "daoli-head",
        "道里区民政局负责人",
        &[Role::DeptHead],
        "230102",
    ),
    (
        "daoli-cz",
        "道里区财政局",
        &[Role::FinanceReviewer],
        "230102",
    ),
    (
        "daoli-dual",
        "道里区兼岗人员",
        &[Role::DeptMaker, Role::FinanceReviewer],
        "230102",
    ),
    ("harbin-cz", "市财政局", &[Role::FinanceReviewer], "2301"),
    ("prov-cz", "省财政厅", &[Role::FinanceReviewer], "23"),
    ("prov-mz", "省民政厅经办", &[Role::DeptMaker], "23"),
    ("admin", "系统管理员", &[Role::Admin], "23"),
];

pub async fn add_people(store: &Store) {
    for (login, name, roles, region) in PEOPLE {
        store
            .upsert_user(&UserRow {
                login: (*login).into(),
                display_name: (*name).into(),
                roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
                region: format!("{region:0<12}"),
                password_hash: None,
                disabled: false,
            })
            .await
            .unwrap();
    }
}

pub async fn user(store: &Store, login: &str) -> User {
    load_user(store, login).await.unwrap()
}

pub fn candidate(code: &str, name: &str) -> Candidate {
    Candidate {
        code: code.into(),
        name: name.into(),
        agreement_no: format!("豫财监代〔2021〕{}号", code.len()),
        connected: true,
        free_interbank: true,
    }
}

/// The Henan province with the library's projects.
pub async fn province(store: &Store) -> Arc<dyn Province> {
    Arc::from(
        yikatong::provinces::henan::ops::library_province(store, &serde_json::Value::Null)
            .await
            .unwrap(),
    )
}

/// Operations without ports (setup).
pub fn ops<'a>(
    store: &'a Store,
    province: &'a dyn Province,
    ports: &'a Ports,
    calendar: &'a WorkCalendar,
) -> Henan<'a> {
    Henan {
        store,
        province,
        ports,
        today: today(),
        calendar,
    }
}

/// Registers, people, the standard roster imported (one batch for 230102), the candidate banks
/// `ABC-HN` and `PSBC-HN`, county 230102 selecting `banks`.
pub async fn scenario(store: &Store, county_banks: &[&str]) -> BatchRow {
    common::load_registers(store).await;
    add_people(store).await;
    let cfg = yikatong::config::Config::default();
    let p = yikatong::build_province(
        yikatong::select_province(Some("henan"), &cfg).unwrap(),
        &cfg,
    )
    .unwrap();
    let dir = common::scenario();
    common::import(store, p.as_ref(), common::PROJECT, &dir.join("earlier.csv")).await;
    common::import(store, p.as_ref(), common::URBAN, &dir.join("urban.csv")).await;
    let tmp = tempfile::tempdir().unwrap();
    let roster = common::roster_xlsx(tmp.path());
    let (_, result) = common::import(store, p.as_ref(), common::PROJECT, &roster).await;
    let province = province(store).await;
    let cal = WorkCalendar::builtin().unwrap();
    let none = Ports::default();
    let o = ops(store, province.as_ref(), &none, &cal);
    o.seed_library().await.unwrap();
    let czt = user(store, "prov-cz").await;
    o.add_candidate(&czt, &candidate("ABC-HN", "中国农业银行河南省分行"))
        .await
        .unwrap();
    o.add_candidate(&czt, &candidate("PSBC-HN", "中国邮政储蓄银行河南省分行"))
        .await
        .unwrap();
    let county = user(store, "daoli-cz").await;
    for b in county_banks {
        o.select_bank(&county, "230102", b, &format!("道里财代〔2023〕{b}"))
            .await
            .unwrap();
    }
    result.batches.into_iter().next().unwrap()
}

/// The scenario's bank faults: one wrong account, one dormant account, one closed account,
/// repeated and shuffled posts, a dropped connection after five lines, a short hand-over.
pub fn scenario_faults() -> BankFaults {
    BankFaults {
        fail: vec![
            (FailureReason::WrongAccount, 1),
            (FailureReason::DormantAccount, 1),
            (FailureReason::AccountClosed, 1),
        ],
        fail_rate: 0.0,
        repeat_rate: 0.5,
        shuffle: true,
        chunk: 4,
        drop_after: Some(5),
        handover_short: true,
        ..BankFaults::default()
    }
}

/// Start the simulated world with `faults` for every bank.
pub async fn world(
    store: &Store,
    faults: BankFaults,
    page: Option<usize>,
) -> (Arc<dyn Province>, SimEnv) {
    world_with(store, faults, page, true).await
}

/// [`world`], choosing whether the banks are notified (when not, they pull only when run).
pub async fn world_with(
    store: &Store,
    faults: BankFaults,
    page: Option<usize>,
    notify_banks: bool,
) -> (Arc<dyn Province>, SimEnv) {
    let province = province(store).await;
    let env = start_sims(
        store,
        province.clone(),
        Arc::new(WorkCalendar::builtin().unwrap()),
        SimOptions {
            seed: 7,
            today: today(),
            faults: BTreeMap::new(),
            default_faults: faults,
            page,
            pending_polls: 1,
            notify_banks,
        },
    )
    .await
    .unwrap();
    (province, env)
}

/// The ledger's invariants: it sums to zero, no entry is unbalanced, and what left the
/// treasury is what the cards got plus what the banks hold.
pub async fn assert_ledger(store: &Store) {
    use ykt_kernel::Fen;
    use ykt_kernel::ledger::AccountKind;
    let (sum, bad) = store.ledger_check().await.unwrap();
    assert_eq!((sum, bad), (Fen(0), 0), "the ledger balances");
    let b = store.ledger_balances().await.unwrap();
    let of = |k: AccountKind| {
        b.iter()
            .filter(|(a, _)| a.kind == k)
            .map(|(_, v)| *v)
            .sum::<Fen>()
    };
    assert_eq!(
        -of(AccountKind::Treasury),
        of(AccountKind::Beneficiaries) + of(AccountKind::AgentBank)
    );
}
