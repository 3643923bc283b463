//! `ykt demo --province sichuan` as a user runs it: the whole cycle after intake, every
//! artifact written, no personal identifier in clear anywhere but the bank-facing files.
#![cfg(feature = "province-sichuan")]

use std::path::{Path, PathBuf};
use std::process::Command;

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

#[test]
fn demo_runs_the_whole_cycle_and_writes_every_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ykt"))
        .args([
            "demo",
            "--province",
            "sichuan",
            "--lines",
            "60",
            "--out",
            "out",
        ])
        .current_dir(dir.path())
        .env_remove("YKT_CONFIG")
        .env_remove("YKT_DATABASE_URL")
        .env_remove("YKT_MASTER_KEY")
        .env_remove("YKT_PROVINCE")
        .env("YKT_TODAY", "2023-05-20")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for event in [
        "补充清册",
        "proxy.agreement_missing",
        "预期拒绝（公示期未满即报送）",
        "预期拒绝（尚有异议未处理即报送）",
        "从批次中剔除",
        "不一致，退回主管部门",
        "资金尚未到位",
        "资金已到位",
        "整体拒收，未入账",
        "重复文件",
        "更正后再次发放",
        "退回财政金库",
        "双向验证",
        "死亡冒领",
        "月末清零检查",
        "通过，单位零余额账户均为零",
        "已办结",
        "对账单",
        "不平分录0条；单位零余额账户余额合计0.00元",
    ] {
        assert!(stdout.contains(event), "the demo shows {event}:\n{stdout}");
    }
    let root = dir.path().join("out/sichuan/发放流程");
    for f in [
        "流程.txt",
        "用款计划与程序性复核.txt",
        "银行文件记录.txt",
        "异议处理.txt",
        "双向验证.txt",
        "未发放台账.txt",
        "月末清零检查.txt",
        "对账单_2023-05.txt",
        "短信.txt",
        "账务.txt",
    ] {
        let text = std::fs::read_to_string(root.join(f)).unwrap_or_default();
        assert!(!text.trim().is_empty(), "{f} is written");
    }
    let files = files_under(&root);
    let count = |needle: &str| {
        files
            .iter()
            .filter(|p| p.to_string_lossy().contains(needle))
            .count()
    };
    assert!(count("公示/") > 10, "village and township notices");
    assert!(count("凭证/") >= 4, "8202 vouchers");
    assert!(count("to_bank/done/ZF_") >= 3, "payment instructions");
    assert!(count("from_bank/done/HP_") >= 3, "result files");
    assert_eq!(count("from_bank/rejected/"), 1, "the truncated file");
    // Vouchers are GB18030 XML.
    let voucher = files
        .iter()
        .find(|p| p.to_string_lossy().contains("凭证/"))
        .unwrap();
    let bytes = std::fs::read(voucher).unwrap();
    assert!(bytes.starts_with(b"<?xml version=\"1.0\" encoding=\"GB18030\"?>"));
    assert!(std::str::from_utf8(&bytes).is_err(), "GB18030, not UTF-8");

    // Identifiers in clear only in the bank-facing files (and the generated inputs).
    let registry = ykt_files::registry::read_card_registry(
        &dir.path().join("out/sichuan/社保卡信息.csv"),
        chrono::NaiveDate::from_ymd_opt(2023, 5, 20).unwrap(),
    )
    .unwrap();
    let secrets: Vec<String> = registry
        .records
        .iter()
        .flat_map(|c| {
            [
                c.resident_id.as_str().to_owned(),
                c.account.as_str().to_owned(),
            ]
        })
        .collect();
    assert!(secrets.len() > 50);
    let mut hay: Vec<(String, Vec<u8>)> = vec![("stdout".into(), o.stdout.clone())];
    for f in &files {
        let name = f.to_string_lossy().into_owned();
        if name.contains("银行文件交换") {
            continue; // to the bank: the full account is the point
        }
        hay.push((name, std::fs::read(f).unwrap()));
    }
    for f in ["data/ykt.db", "data/ykt.db-wal"] {
        if let Ok(b) = std::fs::read(dir.path().join(f)) {
            hay.push((f.into(), b));
        }
    }
    for (name, h) in &hay {
        for s in &secrets {
            assert!(
                !h.windows(s.len()).any(|w| w == s.as_bytes()),
                "{name} holds an identifier in clear"
            );
        }
    }
}
