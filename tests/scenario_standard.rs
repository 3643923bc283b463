//! The shared scenario (`tests/scenarios/standard/`) run through every compiled-in province:
//! the intake result (per-line problems, totals, batches) is snapshotted per province, so the
//! provinces' outputs sit side by side in `tests/snapshots/`. The same snapshot is asserted on
//! SQLite and on PostgreSQL, which proves both backends give the same result.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use yikatong::intake::{self, ImportResult, Request};
use yikatong::registers::{MemRegisters, demo_regions};
use ykt_kernel::intake::ProxyKind;
use ykt_kernel::{RegionCode, ResidentId, Role, User};
use ykt_store::testing::{TestDb, each_backend};
use ykt_store::{ImportMeta, Store, kinds, ok_rows};

const PERIOD: &str = "2023-05";
const PROJECT: &str = "农村最低生活保障金";
const URBAN: &str = "城市最低生活保障金";

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/standard")
}

/// The roster as a clerk's spreadsheet: `roster.csv` written to xlsx, where the line whose
/// 备注 says `数字单元格` has its ID typed as a number (the classic Excel mistake).
fn roster_xlsx(dir: &Path) -> PathBuf {
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

fn meta(kind: &str, file: &Path) -> ImportMeta {
    ImportMeta::for_bytes(
        kind,
        &file.file_name().unwrap().to_string_lossy(),
        &std::fs::read(file).unwrap(),
        "test",
    )
}

async fn load_registers(store: &Store) {
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

fn clerk() -> User {
    User {
        login: "daoli-clerk".into(),
        name: "道里区民政局经办".into(),
        roles: vec![Role::DeptMaker],
        region: RegionCode::parse("230102").unwrap(),
        bank: None,
    }
}

async fn import(
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
fn PERIOD_OF(file: &Path) -> &'static str {
    if file.ends_with("earlier.csv") {
        "2023-04"
    } else {
        PERIOD
    }
}

/// Render the intake of the standard roster for one province.
async fn run_province(db: &TestDb, code: &str) -> String {
    let store = &db.store;
    let cfg = yikatong::config::Config::default();
    let province =
        yikatong::build_province(yikatong::select_province(Some(code), &cfg).unwrap(), &cfg)
            .unwrap();
    load_registers(store).await;
    let dir = scenario();
    let tmp = tempfile::tempdir().unwrap();
    let (earlier, _) = import(store, province.as_ref(), PROJECT, &dir.join("earlier.csv")).await;
    let (urban, _) = import(store, province.as_ref(), URBAN, &dir.join("urban.csv")).await;
    let roster = roster_xlsx(tmp.path());
    let (report, result) = import(store, province.as_ref(), PROJECT, &roster).await;

    let mut o = String::new();
    writeln!(
        o,
        "省份: {} ({}) — {}",
        province.name(),
        province.code(),
        province.model().label_zh()
    )
    .unwrap();
    writeln!(
        o,
        "先导入: 4月农村低保 {} 行通过, 5月城市低保 {} 行通过",
        earlier.summary.accepted, urban.summary.accepted
    )
    .unwrap();
    writeln!(
        o,
        "项目: {} {} 当前属期 {}",
        report.project_code, report.project_name, report.period
    )
    .unwrap();
    let s = &report.summary;
    writeln!(
        o,
        "行数 {}  通过 {}  未通过 {}  有提示 {}  通过金额 {} 元",
        s.lines, s.accepted, s.rejected, s.with_warnings, s.accepted_amount
    )
    .unwrap();
    writeln!(o, "\n按原因:").unwrap();
    for (code, n) in &s.by_code {
        writeln!(o, "  {code:<26} {n}").unwrap();
    }
    writeln!(
        o,
        "\n逐行问题 (行 | 列 | 代码 | 级别 | 需办理 | 姓名 身份证 | 说明):"
    )
    .unwrap();
    for p in &report.problems {
        writeln!(
            o,
            "  {:>2} | {} | {} | {} | {} | {} {} | {}",
            p.row,
            p.column.as_deref().unwrap_or("-"),
            p.code,
            p.severity,
            p.follow_up,
            p.name,
            p.id,
            p.message
        )
        .unwrap();
    }
    writeln!(o, "\n批次:").unwrap();
    for b in &result.batches {
        let tally = store.tally(b.id).await.unwrap();
        ykt_kernel::batch::check_balance(b.id, b.control, &tally).unwrap();
        writeln!(
            o,
            "  {} {} {} {}笔 {}元 {}",
            b.order_no,
            b.region,
            b.period,
            b.control.count,
            b.control.amount,
            b.state.label_zh()
        )
        .unwrap();
    }
    let total: ykt_kernel::Fen = result.batches.iter().map(|b| b.control.amount).sum();
    assert_eq!(
        total, s.accepted_amount,
        "batches hold exactly the accepted lines"
    );
    o
}

#[tokio::test]
async fn standard_scenario_intake_per_province() {
    for d in yikatong::provinces() {
        let code = d.code;
        each_backend(&format!("scenario_{code}"), |db| async move {
            let text = run_province(&db, code).await;
            insta::assert_snapshot!(format!("intake_{code}"), text);
        })
        .await;
    }
}

#[tokio::test]
async fn every_reason_code_appears_in_the_standard_roster() {
    each_backend("scenario_codes", |db| async move {
        let text = run_province(&db, yikatong::provinces()[0].code).await;
        for code in ykt_kernel::ReasonCode::ALL {
            assert!(
                text.contains(&format!(" {} ", code.as_str()))
                    || text.contains(&format!("| {} |", code.as_str())),
                "missing {code}"
            );
        }
    })
    .await;
}

/// Every resident ID, account and phone number of the scenario files.
fn scenario_secrets() -> Vec<String> {
    let mut out = Vec::new();
    for f in [
        "roster.csv",
        "registry.csv",
        "deaths.csv",
        "earlier.csv",
        "urban.csv",
    ] {
        let text = std::fs::read_to_string(scenario().join(f)).unwrap();
        for field in text.lines().skip(1).flat_map(|l| l.split(',')) {
            let digits = field.trim_end_matches('X');
            let all_digits = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            // 18-character and 15-digit IDs, 16-19-digit accounts, 11-digit mobiles; not the
            // 12-digit region codes, which are public.
            let shaped =
                matches!(field.len(), 15..=19) || (field.len() == 11 && field.starts_with('1'));
            if all_digits && shaped {
                out.push(field.to_owned());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[tokio::test]
async fn no_plaintext_identifier_at_rest_after_intake() {
    let secrets = scenario_secrets();
    assert!(
        secrets.len() > 80,
        "ids, accounts and phones: {}",
        secrets.len()
    );
    each_backend("scenario_pii", |db| {
        let secrets = secrets.clone();
        async move {
            run_province(&db, yikatong::provinces()[0].code).await;
            let raw = db.raw_bytes().await.unwrap();
            assert!(
                raw.len() > 10_000,
                "the scan sees the data ({} bytes)",
                raw.len()
            );
            for s in &secrets {
                assert!(
                    !raw.windows(s.len()).any(|w| w == s.as_bytes()),
                    "{} holds a plaintext identifier ending {}",
                    db.backend(),
                    &s[s.len() - 4..]
                );
            }
        }
    })
    .await;
}
