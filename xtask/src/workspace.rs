//! What `bundle` and `check-features` share: the workspace (from `cargo metadata`), the
//! province features of the root package, a release build of `ykt` with exactly one of them,
//! and running the built binary.
//!
//! Every build is its own `cargo build -p yikatong --no-default-features --features
//! province-<code>` invocation, never part of `--workspace`: features unify across one cargo
//! invocation, so another province would leak in (STYLE.md, "Plugins behind features").

use anyhow::{Context, anyhow, bail};
use serde_json::Value;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The root package: it builds the `ykt` binary.
pub const ROOT_PACKAGE: &str = "yikatong";
/// The binary target of the root package.
pub const BINARY: &str = "ykt";
/// Prefix of the root package's province features.
pub const FEATURE_PREFIX: &str = "province-";

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}

/// The cargo that runs us (`cargo xtask` and `cargo test` set `$CARGO`), else `cargo` on PATH.
pub fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(program);
    cmd.current_dir(root());
    cmd
}

/// The task's arguments as text (all of ours are).
pub fn utf8_args(args: &[OsString]) -> anyhow::Result<Vec<String>> {
    args.iter()
        .map(|a| {
            a.to_str().map(str::to_owned).ok_or_else(|| {
                anyhow!(
                    "参数不是 UTF-8 (argument is not UTF-8): {}",
                    OsStr::to_string_lossy(a)
                )
            })
        })
        .collect()
}

/// The workspace as `cargo metadata --no-deps` describes it.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    /// The root package's version.
    pub version: String,
    /// Province codes, from the root package's `province-*` features, sorted.
    pub provinces: Vec<String>,
}

impl Workspace {
    pub fn load() -> anyhow::Result<Workspace> {
        let root = root();
        let meta = cargo_metadata(&["--no-deps"])?;
        let pkg = root_package(&meta)?;
        let version = str_field(pkg, "version")?.to_owned();
        let mut provinces: Vec<String> = pkg
            .get("features")
            .and_then(Value::as_object)
            .map(|f| {
                f.keys()
                    .filter_map(|k| k.strip_prefix(FEATURE_PREFIX))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        provinces.sort();
        if provinces.is_empty() {
            bail!(
                "根包 {ROOT_PACKAGE} 没有 province-* 特性 (the root package has no province-* features)"
            );
        }
        let target_dir = PathBuf::from(str_field(&meta, "target_directory")?);
        Ok(Workspace {
            root,
            target_dir,
            version,
            provinces,
        })
    }

    /// Refuse a province that is not a feature of the root package, naming those that are.
    pub fn check_province(&self, code: &str) -> anyhow::Result<()> {
        if self.provinces.iter().any(|p| p == code) {
            Ok(())
        } else {
            bail!(
                "没有该省份：「{code}」；可选：{} (no feature province-{code}; available: {})",
                self.provinces.join(", "),
                self.provinces.join(", ")
            )
        }
    }
}

/// `cargo metadata --format-version 1 --locked` with extra arguments, parsed.
pub fn cargo_metadata(extra: &[&str]) -> anyhow::Result<Value> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(extra)
        .stderr(Stdio::inherit())
        .output()
        .context("无法运行 cargo metadata (cannot run cargo metadata)")?;
    if !out.status.success() {
        bail!(
            "cargo metadata 失败 (cargo metadata failed): {}",
            out.status
        );
    }
    serde_json::from_slice(&out.stdout)
        .context("cargo metadata 的输出无法解析 (cannot parse cargo metadata's output)")
}

/// The root package's entry in `cargo metadata`'s `packages`.
pub fn root_package(meta: &Value) -> anyhow::Result<&Value> {
    meta.get("packages")
        .and_then(Value::as_array)
        .and_then(|ps| {
            ps.iter()
                .find(|p| p.get("name").and_then(Value::as_str) == Some(ROOT_PACKAGE))
        })
        .ok_or_else(|| anyhow!("cargo metadata 中没有包 {ROOT_PACKAGE} (package not found)"))
}

pub fn str_field<'a>(v: &'a Value, key: &str) -> anyhow::Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("cargo metadata: missing string field `{key}`"))
}

/// The cargo feature of a province.
pub fn feature(code: &str) -> String {
    format!("{FEATURE_PREFIX}{code}")
}

/// `cargo build --locked --release -p yikatong --no-default-features --features province-<code>`
/// on its own, with `SOURCE_DATE_EPOCH` when given. Returns the built binary (as cargo reports
/// it). Cargo's progress and diagnostics go to our stderr.
pub fn build_province(code: &str, source_date_epoch: Option<u64>) -> anyhow::Result<PathBuf> {
    let feature = feature(code);
    eprintln!(
        "== cargo build --locked --release -p {ROOT_PACKAGE} --no-default-features --features {feature}"
    );
    let mut cmd = cargo();
    cmd.args(["build", "--locked", "--release", "-p", ROOT_PACKAGE])
        .args(["--no-default-features", "--features", &feature])
        .args(["--bin", BINARY, "--message-format=json-render-diagnostics"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(e) = source_date_epoch {
        cmd.env("SOURCE_DATE_EPOCH", e.to_string());
    }
    let out = cmd
        .output()
        .context("无法运行 cargo build (cannot run cargo build)")?;
    if !out.status.success() {
        bail!("构建失败 (build failed): {feature}: {}", out.status);
    }
    let mut exe = None;
    for line in out.stdout.split(|b| *b == b'\n') {
        let Ok(msg) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        let is_ykt = msg.get("reason").and_then(Value::as_str) == Some("compiler-artifact")
            && msg.pointer("/target/name").and_then(Value::as_str) == Some(BINARY);
        if let (true, Some(path)) = (is_ykt, msg.get("executable").and_then(Value::as_str)) {
            exe = Some(PathBuf::from(path));
        }
    }
    exe.ok_or_else(|| anyhow!("cargo 没有报告 {BINARY} 的路径 (cargo reported no {BINARY} binary)"))
}

/// `cargo check --tests` of the root package with only this province's feature: the
/// workspace tests must compile (and gate themselves with `#![cfg(feature = ...)]`) in every
/// single-province build, not only in the default one.
pub fn check_tests_of_province(code: &str) -> anyhow::Result<()> {
    let feature = feature(code);
    eprintln!(
        "== cargo check --locked --tests -p {ROOT_PACKAGE} --no-default-features --features {feature}"
    );
    let status = cargo()
        .args(["check", "--locked", "--tests", "-p", ROOT_PACKAGE])
        .args(["--no-default-features", "--features", &feature])
        .stdin(Stdio::null())
        .status()
        .context("无法运行 cargo check (cannot run cargo check)")?;
    if !status.success() {
        bail!(
            "测试在只含 {feature} 的构建中无法编译 (tests do not compile with only {feature}): {status}"
        );
    }
    Ok(())
}

/// A province as the built binary lists it (`ykt provinces --json`).
#[derive(Debug, Clone)]
pub struct Listed {
    pub code: String,
    pub name: String,
}

/// Run `<binary> provinces --json` in an empty directory with a clean environment (no
/// `ykt.toml`, no `YKT_*`), and return what it lists.
pub fn listed_provinces(binary: &Path, scratch: &Path) -> anyhow::Result<Vec<Listed>> {
    std::fs::create_dir_all(scratch)
        .with_context(|| format!("无法创建目录 {} (cannot create)", scratch.display()))?;
    let out = Command::new(binary)
        .args(["provinces", "--json"])
        .current_dir(scratch)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("无法运行 {} (cannot run)", binary.display()))?;
    if !out.status.success() {
        bail!(
            "{} provinces --json 失败 (failed): {}\n{}",
            binary.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .context("ykt provinces --json 的输出不是 JSON (output is not JSON)")?;
    let list = v
        .as_array()
        .ok_or_else(|| anyhow!("ykt provinces --json: expected an array"))?;
    list.iter()
        .map(|p| {
            Ok(Listed {
                code: str_field(p, "code")?.to_owned(),
                name: str_field(p, "name")?.to_owned(),
            })
        })
        .collect()
}

/// Assert that the binary lists exactly the province it was built for.
pub fn expect_only(listed: &[Listed], code: &str) -> anyhow::Result<()> {
    let codes: Vec<&str> = listed.iter().map(|p| p.code.as_str()).collect();
    if codes != [code] {
        bail!(
            "只启用 {} 构建的 ykt 列出了 [{}]，应只有 [{code}] (a build with only {} lists [{}], expected exactly [{code}])",
            feature(code),
            codes.join(", "),
            feature(code),
            codes.join(", ")
        );
    }
    Ok(())
}

/// Run a command and return its standard output as text; fail with its stderr.
pub fn capture(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("无法运行 (cannot run) {shown}"))?;
    if !out.status.success() {
        bail!(
            "命令失败 (command failed): {shown}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("{shown}: output is not UTF-8"))
}

/// `SOURCE_DATE_EPOCH` as the caller set it, else the commit time. Every build of ours passes
/// it to cargo (C build scripts track it), so bundles and checks share their artifacts.
pub fn source_date_epoch(root: &Path) -> anyhow::Result<u64> {
    if let Some(v) = std::env::var_os("SOURCE_DATE_EPOCH") {
        let v = v.to_string_lossy();
        return v.trim().parse().map_err(|_| {
            anyhow!(
                "SOURCE_DATE_EPOCH「{v}」不是秒数 (SOURCE_DATE_EPOCH must be seconds since 1970)"
            )
        });
    }
    let out = capture(
        Command::new("git")
            .args(["log", "-1", "--format=%ct"])
            .current_dir(root),
    )
    .context(
        "无法从 git 取得提交时间；请设置 SOURCE_DATE_EPOCH (no commit time from git: set SOURCE_DATE_EPOCH)",
    )?;
    out.trim().parse().map_err(|_| {
        anyhow!(
            "git log 的提交时间「{}」无法解析 (cannot parse the commit time)",
            out.trim()
        )
    })
}
