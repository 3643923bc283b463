//! `cargo xtask check-features`: build `ykt` once per province with only that province's
//! feature (each its own cargo invocation, so nothing unifies in) and assert that the binary's
//! `ykt provinces --json` lists exactly that province. This proves that every province crate
//! registers itself when it is the only one, and that none leaks into another's build. Before
//! each build it runs `cargo check --tests` with the same features, so the workspace tests
//! compile in every single-province build too.

use crate::workspace::{self, Workspace};
use anyhow::bail;
use std::ffi::OsString;

const USAGE: &str = "\
用法 usage: cargo xtask check-features

For each province: checks that the tests compile with only that province's feature
(cargo check --tests), builds ykt with it (release, --no-default-features --features
province-<code>) and checks that `ykt provinces --json` lists exactly that province.";

/// `cargo xtask check-features`; the exit code.
pub fn run(args: &[OsString]) -> anyhow::Result<u8> {
    let args = workspace::utf8_args(args)?;
    match args.first().map(String::as_str) {
        None => {}
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return Ok(0);
        }
        Some(other) => bail!("未知参数「{other}」(unknown argument)\n\n{USAGE}"),
    }
    let ws = Workspace::load()?;
    let epoch = workspace::source_date_epoch(&ws.root)?;
    let scratch = ws.target_dir.join("xtask-check-features");
    let mut report = Vec::new();
    let mut failed = 0;
    for code in &ws.provinces {
        if let Err(e) = workspace::check_tests_of_province(code) {
            failed += 1;
            report.push(format!(
                "{:<24} cargo check --tests  FAILED: {e}",
                workspace::feature(code)
            ));
            continue;
        }
        let binary = workspace::build_province(code, Some(epoch))?;
        let listed = workspace::listed_provinces(&binary, &scratch)?;
        let codes: Vec<&str> = listed.iter().map(|p| p.code.as_str()).collect();
        let verdict = match workspace::expect_only(&listed, code) {
            Ok(()) => "ok".to_owned(),
            Err(e) => {
                failed += 1;
                format!("FAILED: {e}")
            }
        };
        report.push(format!(
            "{:<24} ykt provinces --json -> [{}]  {verdict}",
            workspace::feature(code),
            codes.join(", ")
        ));
    }
    let _ = std::fs::remove_dir_all(&scratch);
    println!("check-features:");
    for line in &report {
        println!("  {line}");
    }
    if failed > 0 {
        bail!("{failed} 个省份特性检查失败 ({failed} province feature check(s) failed)");
    }
    println!(
        "每个省份单独构建时只包含该省份 (each province built alone lists exactly itself): {} ok",
        ws.provinces.len()
    );
    Ok(0)
}
