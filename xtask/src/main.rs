//! `cargo xtask <task> [args...]`: the workspace's developer tasks (the alias is in
//! `.cargo/config.toml`). Arguments are parsed by hand: each task passes the rest on.

mod bundle;
mod check_features;
mod workspace;

use anyhow::Context;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask <task> [args...]

tasks:
  bench [args...]   the intake and whole-cycle benchmark: builds ykt in release mode
                    and runs `ykt bench [args...]` (1,000,000-line roster, 2,000,000-card
                    registry; intake stages, then each province's whole cycle on SQLite
                    and PostgreSQL; figures written to target/bench/results.json).
                    `cargo xtask bench --help` lists its options.
  bundle (--province <code> | --all) [--out DIR]
                    deployment bundles: dist/ykt-<code>-<version>-<target>.tar.gz
                    (binary built with that province only, ykt.toml, systemd unit,
                    guide, manifest, SBOM, SHA256SUMS), reproducible.
  check-features    builds ykt once per province feature and checks that
                    `ykt provinces --json` lists exactly that province.
  help              this message
";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let task = args.next();
    let rest: Vec<OsString> = args.collect();
    let result = match task.as_ref().and_then(|t| t.to_str()) {
        Some("bench") => bench(&rest),
        Some("bundle") => bundle::run(&rest),
        Some("check-features") => check_features::run(&rest),
        Some("help" | "--help" | "-h") => {
            print!("{USAGE}");
            Ok(0)
        }
        Some(other) => {
            eprint!("unknown task `{other}`\n\n{USAGE}");
            Ok(2)
        }
        None => {
            eprint!("{USAGE}");
            Ok(2)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The workspace root (the parent of `xtask/`).
fn root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}

/// The cargo that runs us (`cargo xtask` sets `$CARGO`), else `cargo` on PATH.
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")))
}

/// `cargo run --release -p yikatong -- bench [args...]` from the workspace root; its exit code.
fn bench(args: &[OsString]) -> anyhow::Result<u8> {
    let status = cargo()
        .current_dir(root())
        .args([
            "run",
            "--release",
            "-p",
            "yikatong",
            "--bin",
            "ykt",
            "--",
            "bench",
        ])
        .args(args)
        .status()
        .context("cannot run cargo")?;
    Ok(status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(2))
}
