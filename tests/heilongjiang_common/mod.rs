//! Helpers of Heilongjiang's workspace tests: the standard scenario and a grain-risk-fund
//! roster imported, the simulators started, the province's operations wired to them, and the
//! money invariants checked after every step.
#![allow(dead_code)]

use chrono::NaiveDate;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use yikatong::intake::{self, ImportResult, Request};
use yikatong::provinces::heilongjiang::ops::{Hlj, ports_for};
use yikatong::registers::{MemRegisters, demo_regions};
use ykt_http::heilongjiang::PlatformDate;
use ykt_kernel::batch::{BatchState, check_balance};
use ykt_kernel::ledger::AccountKind;
use ykt_kernel::province::Province;
use ykt_kernel::{Fen, Period, RegionCode, Role, User};
use ykt_sim::heilongjiang::{BankConfig, HljSims};
use ykt_store::Store;
use ykt_store::payments::{BatchRow, RosterResult};

pub const START: (i32, u32, u32) = (2023, 5, 20);

pub fn start_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(START.0, START.1, START.2).unwrap()
}

pub fn grain_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/heilongjiang_common/grain.csv")
}

pub fn province() -> Box<dyn Province> {
    let cfg = yikatong::config::Config::default();
    yikatong::build_province(
        yikatong::select_province(Some("heilongjiang"), &cfg).unwrap(),
        &cfg,
    )
    .unwrap()
}

pub fn user(login: &str, roles: &[Role], region: &str) -> User {
    User {
        login: login.into(),
        name: login.into(),
        roles: roles.to_vec(),
        region: RegionCode::parse(region).unwrap(),
        bank: None,
    }
}

/// The district's finance reviewer.
pub fn finance() -> User {
    user("daoli-finance", &[Role::FinanceReviewer], "230102")
}

/// The simulated bank of the tests: 中国工商银行 (the scenario's cards are 中国农业银行 cards, so
/// every payment is cross-bank), seed 2, a quarter of the accounts failing.
pub fn bank(duplicate: bool, reorder: bool, partial: bool) -> BankConfig {
    BankConfig {
        name: "中国工商银行".into(),
        seed: 2,
        fail_share: 0.25,
        duplicate,
        reorder,
        partial,
        cross_bank_fee_fen: 150,
    }
}

/// Simulators, date and ports for one store.
pub struct World {
    pub sims: HljSims,
    pub date: PlatformDate,
    pub province: Box<dyn Province>,
}

impl World {
    pub async fn start(cfg: BankConfig) -> World {
        let today = start_date();
        World {
            sims: HljSims::start(cfg, today).await.unwrap(),
            date: PlatformDate::new(today),
            province: province(),
        }
    }
    /// The operations, talking to the simulators.
    pub fn hlj<'a>(&'a self, store: &'a Store) -> Hlj<'a> {
        Hlj {
            store,
            province: self.province.as_ref(),
            ports: ports_for(
                store,
                self.province.as_ref(),
                &self.sims.budget.url(),
                self.date.clone(),
            )
            .unwrap(),
            date: self.date.clone(),
        }
    }
    /// Move the platform's and the simulators' date to `n` days after the start.
    pub fn day(&self, n: u64) -> NaiveDate {
        let d = start_date() + chrono::Days::new(n);
        self.date.set(d);
        self.sims.clock.set(d);
        d
    }
}

/// Import the grain-risk-fund roster (耕地地力保护补贴资金, 2023) as the district clerk.
pub async fn import_grain(
    store: &Store,
    province: &dyn Province,
) -> (intake::CheckReport, RosterResult) {
    let dir = tempfile::tempdir().unwrap();
    // The clerk's file, as a GB18030 CSV (how county offices export from their ledgers).
    let text = std::fs::read_to_string(grain_csv()).unwrap();
    let mut lines = text.lines();
    let headers: Vec<&str> = lines.next().unwrap().split(',').collect();
    let file = dir.path().join("耕地地力保护补贴.csv");
    ykt_files::export::write_csv_gb18030_table(
        &file,
        &headers,
        lines.map(|l| {
            l.split(',')
                .map(|c| ykt_files::Cell::Text(c.to_owned()))
                .collect::<Vec<_>>()
        }),
    )
    .unwrap();
    let project = province.catalog().find("HLJ38").unwrap();
    let mut table = MemRegisters::default();
    table.add_regions(demo_regions());
    let clerk = super::common::clerk();
    let req = Request {
        province,
        project,
        period: Period::Year(2023),
        today: start_date(),
        scope: Some(clerk.region.clone()),
        regions: Some(&table),
        check_cards: true,
    };
    match intake::import(store, &file, &req, &clerk).await.unwrap() {
        ImportResult::Imported { report, result } => (report, result),
        ImportResult::AlreadyImported { .. } => panic!("grain roster imported twice"),
    }
}

/// Money per account kind within one batch's ledger entries.
pub async fn batch_money(store: &Store, batch: i64) -> BTreeMap<AccountKind, Fen> {
    let mut m = BTreeMap::new();
    for e in store.hlj_ledger(&[batch]).await.unwrap() {
        let sum: Fen = e.postings.iter().map(|p| p.2).sum();
        assert_eq!(
            sum,
            Fen(0),
            "entry {} of batch {batch} does not balance",
            e.id
        );
        for (k, _, a) in e.postings {
            *m.entry(k).or_default() += a;
        }
    }
    m
}

/// The invariants that must hold after every step, for one batch: its lines add up to its
/// control totals; the whole ledger sums to zero with no unbalanced entry; no department,
/// township or village account is ever touched; the cards hold exactly the credited lines;
/// the agent bank holds exactly what it was funded minus what it paid and returned (never
/// less than nothing); no line was ever credited twice.
pub async fn assert_invariants(store: &Store, batch: i64) {
    let b: BatchRow = store.batch(batch).await.unwrap().unwrap();
    let tally = store.tally(batch).await.unwrap();
    check_balance(batch, b.control, &tally).unwrap();
    let (sum, unbalanced) = store.ledger_check().await.unwrap();
    assert_eq!(sum, Fen(0));
    assert_eq!(unbalanced, 0);
    let m = batch_money(store, batch).await;
    assert!(
        !m.contains_key(&AccountKind::ZeroBalance),
        "a unit account was used"
    );
    let total: Fen = m.values().copied().sum();
    assert_eq!(total, Fen(0));
    let get = |k| m.get(&k).copied().unwrap_or_default();
    assert_eq!(get(AccountKind::Beneficiaries), tally.credited.amount);
    let steps: Vec<String> = store
        .batch_steps(batch)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.step)
        .collect();
    let funded = if steps.iter().any(|s| s == "treasury_pay") {
        b.control.amount
    } else {
        Fen(0)
    };
    assert_eq!(
        get(AccountKind::AgentBank),
        funded - tally.credited.amount - tally.refunded.amount,
        "agent bank holds what it was funded minus paid and returned"
    );
    assert!(get(AccountKind::AgentBank) >= Fen(0));
    if b.funding == "grain_risk_fund" {
        let approved = steps.iter().any(|s| s == "finance_approve");
        // ADBC → special account at approval, special account → agent bank at payment:
        // the special account holds the money only in between.
        let expect = if approved && funded == Fen(0) {
            b.control.amount
        } else {
            Fen(0)
        };
        assert_eq!(get(AccountKind::GrainRiskFund), expect);
        assert_eq!(get(AccountKind::Treasury), Fen(0));
    } else {
        assert_eq!(get(AccountKind::GrainRiskFund), Fen(0));
        assert_eq!(get(AccountKind::Adbc), Fen(0));
    }
    assert_eq!(store.hlj_lines_credited_twice(batch).await.unwrap(), 0);
    if b.state == BatchState::Settled || b.state == BatchState::Closed {
        assert!(tally.is_settled());
        assert_eq!(get(AccountKind::AgentBank), Fen(0));
    }
}
