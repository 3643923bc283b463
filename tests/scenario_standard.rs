//! The shared scenario (`tests/scenarios/standard/`) run through every compiled-in province:
//! the intake result (per-line problems, totals, batches) is snapshotted per province, so the
//! provinces' outputs sit side by side in `tests/snapshots/`. The same snapshot is asserted on
//! SQLite and on PostgreSQL, which proves both backends give the same result.

mod common;

use common::*;
use std::fmt::Write;
use ykt_store::testing::{TestDb, each_backend};

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
            // A whole request, not a line: refused before reading (heilongjiang_rules).
            if *code == ykt_kernel::ReasonCode::ProjectInactive {
                continue;
            }
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
