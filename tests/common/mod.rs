//! Shared helpers of the workspace tests: the standard scenario (`tests/scenarios/standard/`)
//! loaded into a store, rosters imported as the scenario's department clerk.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use yikatong::intake::{self, ImportResult, Request};
use yikatong::registers::{MemRegisters, demo_regions};
use ykt_kernel::intake::ProxyKind;
use ykt_kernel::{RegionCode, ResidentId, Role, User};
use ykt_store::{ImportMeta, Store, kinds, ok_rows};

pub const PERIOD: &str = "2023-05";
pub const PROJECT: &str = "农村最低生活保障金";
pub const URBAN: &str = "城市最低生活保障金";

pub fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/standard")
}

/// The roster as a clerk's spreadsheet: `roster.csv` written to xlsx, where the line whose
/// 备注 says `数字单元格` has its ID typed as a number (the classic Excel mistake).
pub fn roster_xlsx(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(scenario().join("roster.csv")).unwrap();
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (r, line) in text.lines().enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let numeric = cells.last() == Some(&"数字单元格");
        for (c, v) in cells.iter().enumerate() {
            let (r, c) = (r as u32, c as u16);
            if numeric && c == 1 {
                ws.write_number(r, c, v.parse::<f64>().unwrap()).unwrap();
            } else if !v.is_empty() {
                ws.write_string(r, c, *v).unwrap();
            }
        }
    }
    let out = dir.join("roster.xlsx");
    wb.save(&out).unwrap();
    out
}

pub fn meta(kind: &str, file: &Path) -> ImportMeta {
    ImportMeta::for_bytes(
        kind,
        &file.file_name().unwrap().to_string_lossy(),
        &std::fs::read(file).unwrap(),
        "test",
    )
}

pub async fn load_registers(store: &Store) {
    let dir = scenario();
    let today = chrono::NaiveDate::from_ymd_opt(2023, 5, 20).unwrap();
    let cards = ykt_files::registry::read_card_registry(&dir.join("registry.csv"), today).unwrap();
    assert!(cards.problems.is_empty(), "{:?}", cards.problems);
    store
        .import_cards(
            ok_rows(cards.records),
            meta(kinds::CARDS, &dir.join("registry.csv")),
        )
        .await
        .unwrap();
    let deaths = ykt_files::registry::read_death_register(&dir.join("deaths.csv"), today).unwrap();
    store
        .import_deaths(
            ok_rows(deaths.records),
            meta(kinds::DEATHS, &dir.join("deaths.csv")),
        )
        .await
        .unwrap();
    let regions = demo_regions();
    store
        .import_regions(
            ok_rows(regions),
            ImportMeta::for_bytes(
                kinds::REGIONS,
                "regions.csv",
                yikatong::registers::DEMO_REGIONS_CSV.as_bytes(),
                "test",
            ),
        )
        .await
        .unwrap();
    let agreements = std::fs::read_to_string(dir.join("agreements.csv")).unwrap();
    for line in agreements.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        store
            .record_agreement(
                &ResidentId::from_trusted(f[0]).unwrap(),
                ProxyKind::Custody,
                f[1],
                f[2],
                f[3],
            )
            .await
            .unwrap();
    }
}

pub fn clerk() -> User {
    User {
        login: "daoli-clerk".into(),
        name: "道里区民政局经办".into(),
        roles: vec![Role::DeptMaker],
        region: RegionCode::parse("230102").unwrap(),
        bank: None,
    }
}

pub async fn import(
    store: &Store,
    province: &dyn ykt_kernel::Province,
    project: &str,
    file: &Path,
) -> (intake::CheckReport, ykt_store::payments::RosterResult) {
    let (p, period) = intake::resolve(province, project, PERIOD_OF(file)).unwrap();
    let mut table = MemRegisters::default();
    table.add_regions(demo_regions());
    let today = chrono::NaiveDate::from_ymd_opt(2023, 5, 20).unwrap();
    let user = clerk();
    let req = Request {
        province,
        project: p,
        period,
        today,
        scope: Some(user.region.clone()),
        regions: Some(&table),
        check_cards: true,
    };
    match intake::import(store, file, &req, &user).await.unwrap() {
        ImportResult::Imported { report, result } => (report, result),
        ImportResult::AlreadyImported { .. } => panic!("{} imported twice", file.display()),
    }
}

#[allow(non_snake_case)]
pub fn PERIOD_OF(file: &Path) -> &'static str {
    if file.ends_with("earlier.csv") {
        "2023-04"
    } else {
        PERIOD
    }
}

/// Run the futures together on this task (interleaved at their await points) and return
/// their outputs in order.
#[allow(dead_code)]
pub async fn join_all<F: std::future::Future>(fs: Vec<F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut fs: Vec<_> = fs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = fs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in fs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *o = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// A compiled-in province with the default configuration.
#[allow(dead_code)]
pub fn built_province(code: &str) -> Box<dyn ykt_kernel::Province> {
    let cfg = yikatong::config::Config::default();
    yikatong::build_province(yikatong::select_province(Some(code), &cfg).unwrap(), &cfg).unwrap()
}
