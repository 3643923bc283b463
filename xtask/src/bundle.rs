//! `cargo xtask bundle --province <code> | --all [--out DIR]`: a deployment bundle per
//! province, `dist/ykt-<code>-<version>-<target>.tar.gz`, that an integrator carries onto a
//! server with no internet.
//!
//! The archive holds one directory `ykt-<code>-<version>-<target>/` with
//!
//! - `ykt`: the binary, built with exactly that province's feature (mode 0755);
//! - `ykt.toml`: the configuration with that province's defaults, every key commented;
//! - `yikatong.service`: a hardened systemd unit;
//! - `DEPLOY.zh.md`, `DEPLOY.en.md`: the deployment guide;
//! - `manifest.json`: province, version, git commit, enabled features, rustc, build date;
//! - `sbom.cdx.json`: the dependencies (CycloneDX 1.5, from `cargo metadata` and Cargo.lock);
//! - `SHA256SUMS`: every other file's SHA-256 (`sha256sum -c SHA256SUMS`).
//!
//! The templates are in `xtask/templates/`. The archive is reproducible: `SOURCE_DATE_EPOCH`
//! (the commit time unless the caller sets it) is the build date and every entry's mtime,
//! entries are sorted by name, owned by 0:0 with numeric ids, modes are normalised, and the
//! gzip header carries no name or time (`gzip -n`). The same commit, built twice with the same
//! toolchain in the same place, gives byte-identical archives.

use crate::workspace::{self, Listed, Workspace, capture};
use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const YKT_TOML: &str = include_str!("../templates/ykt.toml");
const SERVICE: &str = include_str!("../templates/yikatong.service");
const DEPLOY_ZH: &str = include_str!("../templates/DEPLOY.zh.md");
const DEPLOY_EN: &str = include_str!("../templates/DEPLOY.en.md");

/// The files of a bundle besides the binary and `SHA256SUMS`, with their templates.
const TEMPLATES: &[(&str, &str)] = &[
    ("ykt.toml", YKT_TOML),
    ("yikatong.service", SERVICE),
    ("DEPLOY.zh.md", DEPLOY_ZH),
    ("DEPLOY.en.md", DEPLOY_EN),
];

/// Every file of a bundle, sorted as in the archive.
pub const FILES: &[&str] = &[
    "DEPLOY.en.md",
    "DEPLOY.zh.md",
    "SHA256SUMS",
    "manifest.json",
    "sbom.cdx.json",
    "yikatong.service",
    "ykt",
    "ykt.toml",
];

/// The province-level region code (GB/T 2260) of each province, for the guide's first
/// administrator. A province missing here gets a placeholder in the guide.
const REGIONS: &[(&str, &str)] = &[("heilongjiang", "23"), ("henan", "41"), ("sichuan", "51")];

const USAGE: &str = "\
用法 usage: cargo xtask bundle (--province <code> | --all) [--out DIR]

  --province <code>  为一个省份构建部署包 (one province: heilongjiang, henan, sichuan, ...)
  --all              每个省份各一个部署包 (one bundle per province)
  --out DIR          输出目录 (where the archives go; default: dist/ in the workspace)

SOURCE_DATE_EPOCH (default: the commit time, git log -1 --format=%ct) is the build date and
every archive entry's mtime.";

/// The parsed command line.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    provinces: Selection,
    out: Option<PathBuf>,
}

#[derive(Debug, PartialEq, Eq)]
enum Selection {
    One(String),
    All,
}

fn parse_args(args: &[String]) -> anyhow::Result<Option<Args>> {
    let mut province = None;
    let mut all = false;
    let mut out = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> anyhow::Result<String> {
            match inline.clone().or_else(|| it.next().cloned()) {
                Some(v) if !v.is_empty() => Ok(v),
                _ => bail!("{name} 需要一个值 ({name} needs a value)\n\n{USAGE}"),
            }
        };
        match flag {
            "-h" | "--help" => return Ok(None),
            "--province" => province = Some(value("--province")?),
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--all" => all = true,
            other => bail!("未知参数「{other}」(unknown argument)\n\n{USAGE}"),
        }
    }
    let provinces = match (province, all) {
        (Some(p), false) => Selection::One(p),
        (None, true) => Selection::All,
        (Some(_), true) => {
            bail!("--province 与 --all 只能选一个 (give --province or --all, not both)\n\n{USAGE}")
        }
        (None, false) => bail!("请指定 --province <code> 或 --all (which province?)\n\n{USAGE}"),
    };
    Ok(Some(Args { provinces, out }))
}

/// `cargo xtask bundle ...`; the exit code.
pub fn run(args: &[OsString]) -> anyhow::Result<u8> {
    let Some(args) = parse_args(&workspace::utf8_args(args)?)? else {
        println!("{USAGE}");
        return Ok(0);
    };
    let ws = Workspace::load()?;
    let codes = match &args.provinces {
        Selection::One(code) => {
            ws.check_province(code)?;
            vec![code.clone()]
        }
        Selection::All => ws.provinces.clone(),
    };
    let out = match args.out {
        Some(dir) => dir,
        None => ws.root.join("dist"),
    };
    let info = BuildInfo::gather(&ws)?;
    eprintln!(
        "SOURCE_DATE_EPOCH={} ({}), commit {}, {}",
        info.epoch,
        rfc3339_utc(info.epoch)?,
        info.commit,
        info.rustc
    );
    let mut made = Vec::new();
    for code in &codes {
        made.push(bundle(&ws, &info, code, &out)?);
    }
    for archive in &made {
        let sum = sha256_of(archive)?;
        println!("{}\n  sha256 {sum}", archive.display());
    }
    Ok(0)
}

/// What every bundle of one run shares.
#[derive(Debug, Clone)]
struct BuildInfo {
    epoch: u64,
    commit: String,
    rustc: String,
    cargo: String,
    target: String,
}

impl BuildInfo {
    fn gather(ws: &Workspace) -> anyhow::Result<BuildInfo> {
        let epoch = workspace::source_date_epoch(&ws.root)?;
        let commit = git_commit(&ws.root);
        let rustc_program = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let vv = capture(Command::new(rustc_program).arg("-vV").current_dir(&ws.root))?;
        let rustc = vv.lines().next().unwrap_or_default().trim().to_owned();
        let target = vv
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .map(|h| h.trim().to_owned())
            .ok_or_else(|| anyhow!("rustc -vV 没有 host 行 (rustc -vV printed no host)"))?;
        let cargo = capture(workspace::cargo().arg("--version"))?
            .trim()
            .to_owned();
        Ok(BuildInfo {
            epoch,
            commit,
            rustc,
            cargo,
            target,
        })
    }
}

/// `git rev-parse HEAD`, with `-dirty` when tracked or untracked (not ignored) files differ
/// from it; `unknown` outside a git checkout.
fn git_commit(root: &Path) -> String {
    let git = |args: &[&str]| capture(Command::new("git").args(args).current_dir(root));
    let head = match git(&["rev-parse", "HEAD"]) {
        Ok(h) => h.trim().to_owned(),
        Err(e) => {
            eprintln!("注意 note: 不是 git 检出，提交记为 unknown (not a git checkout): {e:#}");
            return "unknown".into();
        }
    };
    match git(&["status", "--porcelain"]) {
        Ok(s) if s.trim().is_empty() => head,
        Ok(_) => format!("{head}-dirty"),
        Err(_) => format!("{head}-dirty"),
    }
}

/// Build, stage and archive one province. Returns the archive.
fn bundle(ws: &Workspace, info: &BuildInfo, code: &str, out: &Path) -> anyhow::Result<PathBuf> {
    let name = format!("ykt-{code}-{}-{}", ws.version, info.target);
    fs::create_dir_all(out)
        .with_context(|| format!("无法创建目录 {} (cannot create)", out.display()))?;
    let staging = out.join(format!(".{name}.staging"));
    if staging.exists() {
        fs::remove_dir_all(&staging)
            .with_context(|| format!("无法清理 {} (cannot remove)", staging.display()))?;
    }
    let dir = staging.join(&name);
    fs::create_dir_all(&dir).with_context(|| format!("无法创建目录 {}", dir.display()))?;

    // The binary: built alone, copied at once (the next build replaces cargo's copy), and the
    // copy asked which provinces it has.
    let built = workspace::build_province(code, Some(info.epoch))?;
    let binary = dir.join(workspace::BINARY);
    fs::copy(&built, &binary)
        .with_context(|| format!("无法复制 {} (cannot copy)", built.display()))?;
    let listed = workspace::listed_provinces(&binary, &staging.join("scratch"))?;
    workspace::expect_only(&listed, code)?;
    let Listed {
        name: province_name,
        ..
    } = listed
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("ykt provinces --json 为空 (lists nothing)"))?;

    // The dependency graph of exactly this build.
    let meta = workspace::cargo_metadata(&[
        "--no-default-features",
        "--features",
        &workspace::feature(code),
        "--filter-platform",
        &info.target,
    ])?;
    let lock = fs::read_to_string(ws.root.join("Cargo.lock"))
        .context("无法读取 Cargo.lock (cannot read Cargo.lock)")?;
    let build_date = rfc3339_utc(info.epoch)?;
    let features = enabled_features(&meta)?;
    let sbom = sbom(&meta, &checksums(&lock), &build_date)?;

    let region = REGIONS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, r)| *r)
        .unwrap_or("<省级区划代码 province region code>");
    let vars = [
        ("code", code),
        ("name", province_name.as_str()),
        ("version", ws.version.as_str()),
        ("target", info.target.as_str()),
        ("bundle", name.as_str()),
        ("region", region),
    ];
    for (file, template) in TEMPLATES {
        let text = render(template, &vars).with_context(|| format!("xtask/templates/{file}"))?;
        fs::write(dir.join(file), text)
            .with_context(|| format!("无法写入 {file} (cannot write)"))?;
    }
    let manifest = json!({
        "package": workspace::ROOT_PACKAGE,
        "binary": workspace::BINARY,
        "province": code,
        "province_name": province_name,
        "version": ws.version,
        "target": info.target,
        "profile": "release",
        "git_commit": info.commit,
        "features": features,
        "rustc": info.rustc,
        "cargo": info.cargo,
        "source_date_epoch": info.epoch,
        "build_date": build_date,
    });
    for (file, value) in [("manifest.json", manifest), ("sbom.cdx.json", sbom)] {
        fs::write(dir.join(file), pretty(value)?)
            .with_context(|| format!("无法写入 {file} (cannot write)"))?;
    }

    for file in FILES.iter().filter(|f| **f != "SHA256SUMS") {
        let mode = if *file == workspace::BINARY {
            0o755
        } else {
            0o644
        };
        fs::set_permissions(dir.join(file), fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {file}"))?;
    }
    let sums = capture(
        Command::new("sha256sum")
            .arg("--")
            .args(FILES.iter().filter(|f| **f != "SHA256SUMS"))
            .current_dir(&dir),
    )?;
    fs::write(dir.join("SHA256SUMS"), sums).context("无法写入 SHA256SUMS (cannot write)")?;
    fs::set_permissions(dir.join("SHA256SUMS"), fs::Permissions::from_mode(0o644))
        .context("chmod SHA256SUMS")?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", dir.display()))?;
    check_contents(&dir)?;

    let archive = out.join(format!("{name}.tar.gz"));
    let partial = out.join(format!(".{name}.tar.gz.partial"));
    write_archive(&staging, &name, info.epoch, &partial)?;
    fs::rename(&partial, &archive)
        .with_context(|| format!("无法写入 {} (cannot write)", archive.display()))?;
    let sum = sha256_of(&archive)?;
    fs::write(
        out.join(format!("{name}.tar.gz.sha256")),
        format!("{sum}  {name}.tar.gz\n"),
    )
    .with_context(|| format!("无法写入 {name}.tar.gz.sha256 (cannot write)"))?;
    fs::remove_dir_all(&staging)
        .with_context(|| format!("无法清理 {} (cannot remove)", staging.display()))?;
    eprintln!("== {} ({province_name}): {}", code, archive.display());
    Ok(archive)
}

/// The bundle directory holds exactly [`FILES`].
fn check_contents(dir: &Path) -> anyhow::Result<()> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    if names != FILES {
        bail!("部署包内容不符 (unexpected bundle contents): {names:?}, expected {FILES:?}");
    }
    Ok(())
}

/// `tar ... | gzip -n -9 > archive`, reproducibly: sorted names, fixed mtime, 0:0 numeric
/// owner, GNU format (no atime/ctime), no environment options.
fn write_archive(staging: &Path, name: &str, epoch: u64, archive: &Path) -> anyhow::Result<()> {
    let file = fs::File::create(archive)
        .with_context(|| format!("无法创建 {} (cannot create)", archive.display()))?;
    let mut tar = Command::new("tar")
        .args(["--create", "--file=-", "--format=gnu", "--sort=name"])
        .arg(format!("--mtime=@{epoch}"))
        .args(["--owner=0", "--group=0", "--numeric-owner"])
        .args(["--no-acls", "--no-xattrs", "--no-selinux"])
        .arg("--directory")
        .arg(staging)
        .arg("--")
        .arg(name)
        .env("LC_ALL", "C")
        .env_remove("TAR_OPTIONS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("无法运行 tar (cannot run GNU tar)")?;
    let tar_out = tar.stdout.take().ok_or_else(|| anyhow!("tar: no stdout"))?;
    let gzip = Command::new("gzip")
        .args(["-n", "-9", "-c"])
        .env_remove("GZIP")
        .stdin(Stdio::from(tar_out))
        .stdout(Stdio::from(file))
        .status()
        .context("无法运行 gzip (cannot run gzip)");
    let tar_status = tar.wait().context("tar")?;
    let gzip = gzip?;
    if !tar_status.success() || !gzip.success() {
        let _ = fs::remove_file(archive);
        bail!("打包失败 (archiving failed): tar {tar_status}, gzip {gzip}");
    }
    Ok(())
}

fn sha256_of(file: &Path) -> anyhow::Result<String> {
    let out = capture(Command::new("sha256sum").arg("--").arg(file))?;
    out.split_whitespace()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("sha256sum printed nothing"))
}

/// Replace every `{{key}}`; a placeholder left over is an error.
fn render(template: &str, vars: &[(&str, &str)]) -> anyhow::Result<String> {
    let mut text = template.to_owned();
    for (key, value) in vars {
        text = text.replace(&format!("{{{{{key}}}}}"), value);
    }
    if let Some(at) = text.find("{{") {
        let rest = &text[at..];
        let end = rest.find("}}").map_or(rest.len().min(30), |e| e + 2);
        bail!("模板中有未知占位符 (unknown placeholder) {}", &rest[..end]);
    }
    Ok(text)
}

/// Pretty JSON with sorted keys and a final newline (the same bytes whatever serde_json's
/// map order is).
fn pretty(mut v: Value) -> anyhow::Result<String> {
    v.sort_all_objects();
    let mut s = serde_json::to_string_pretty(&v)?;
    s.push('\n');
    Ok(s)
}

/// The root package's features as cargo resolved them for this build.
fn enabled_features(meta: &Value) -> anyhow::Result<Vec<String>> {
    let root = workspace::str_field(resolve(meta)?, "root")?;
    let node = *nodes(meta)?
        .get(root)
        .ok_or_else(|| anyhow!("cargo metadata: no resolve node for the root"))?;
    let mut f: Vec<String> = node
        .get("features")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    f.sort();
    Ok(f)
}

fn resolve(meta: &Value) -> anyhow::Result<&Value> {
    meta.get("resolve")
        .filter(|r| !r.is_null())
        .ok_or_else(|| anyhow!("cargo metadata: no resolve graph"))
}

fn nodes(meta: &Value) -> anyhow::Result<BTreeMap<&str, &Value>> {
    Ok(resolve(meta)?
        .get("nodes")
        .and_then(Value::as_array)
        .map(|ns| {
            ns.iter()
                .filter_map(|n| Some((n.get("id")?.as_str()?, n)))
                .collect()
        })
        .unwrap_or_default())
}

/// `name version -> checksum` from Cargo.lock (registry packages have one).
fn checksums(lock: &str) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    let (mut name, mut version) = (None, None);
    let unquote = |v: &str| v.trim().trim_matches('"').to_owned();
    for line in lock.lines() {
        if line.trim() == "[[package]]" {
            (name, version) = (None, None);
        } else if let Some(v) = line.strip_prefix("name = ") {
            name = Some(unquote(v));
        } else if let Some(v) = line.strip_prefix("version = ") {
            version = Some(unquote(v));
        } else if let (Some(v), Some(n), Some(ver)) =
            (line.strip_prefix("checksum = "), &name, &version)
        {
            out.insert((n.clone(), ver.clone()), unquote(v));
        }
    }
    out
}

/// CycloneDX 1.5 of what the build links: every package reachable from the root through
/// normal dependencies (`scope: required`) and those only build scripts use (`excluded`).
/// References are `name@version`, so the document does not depend on the checkout's path.
fn sbom(
    meta: &Value,
    sums: &BTreeMap<(String, String), String>,
    timestamp: &str,
) -> anyhow::Result<Value> {
    let packages: BTreeMap<&str, &Value> = meta
        .get("packages")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| Some((p.get("id")?.as_str()?, p)))
                .collect()
        })
        .unwrap_or_default();
    let nodes = nodes(meta)?;
    let root = workspace::str_field(resolve(meta)?, "root")?;
    let pkg = |id: &str| -> anyhow::Result<&Value> {
        packages
            .get(id)
            .copied()
            .ok_or_else(|| anyhow!("cargo metadata: unknown package {id}"))
    };
    let bom_ref = |id: &str| -> anyhow::Result<String> {
        let p = pkg(id)?;
        Ok(format!(
            "{}@{}",
            workspace::str_field(p, "name")?,
            workspace::str_field(p, "version")?
        ))
    };
    // Edges that reach the build: normal and build dependencies (not dev).
    let edges = |id: &str| -> Vec<(&str, bool)> {
        let Some(deps) = nodes
            .get(id)
            .and_then(|n| n.get("deps"))
            .and_then(Value::as_array)
        else {
            return Vec::new();
        };
        deps.iter()
            .filter_map(|d| {
                let kinds: Vec<Option<&str>> = d
                    .get("dep_kinds")
                    .and_then(Value::as_array)?
                    .iter()
                    .map(|k| k.get("kind").and_then(Value::as_str))
                    .collect();
                let normal = kinds.contains(&None);
                let build = kinds.contains(&Some("build"));
                (normal || build).then_some((d.get("pkg")?.as_str()?, normal))
            })
            .collect()
    };
    // Reachable through normal edges only (linked), then through any edge.
    let walk = |normal_only: bool| -> BTreeSet<&str> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![root];
        while let Some(id) = todo.pop() {
            for (dep, normal) in edges(id) {
                if (normal || !normal_only) && seen.insert(dep) {
                    todo.push(dep);
                }
            }
        }
        seen
    };
    let linked = walk(true);
    let all = walk(false);

    let mut components = Vec::new();
    let mut dependencies = Vec::new();
    for id in std::iter::once(root).chain(all.iter().copied()) {
        let p = pkg(id)?;
        let name = workspace::str_field(p, "name")?;
        let version = workspace::str_field(p, "version")?;
        let source = p.get("source").and_then(Value::as_str);
        let mut depends: Vec<String> = edges(id)
            .into_iter()
            .map(|(d, _)| bom_ref(d))
            .collect::<anyhow::Result<_>>()?;
        depends.sort();
        depends.dedup();
        dependencies.push(json!({"ref": bom_ref(id)?, "dependsOn": depends}));
        if id == root {
            continue;
        }
        let mut c = json!({
            "type": "library",
            "bom-ref": bom_ref(id)?,
            "name": name,
            "version": version,
            "scope": if linked.contains(id) { "required" } else { "excluded" },
            "properties": [{
                "name": "cargo:source",
                "value": source.unwrap_or("workspace"),
            }],
        });
        if source.is_some_and(|s| s.starts_with("registry+")) {
            c["purl"] = json!(format!("pkg:cargo/{name}@{version}"));
        }
        if let Some(l) = p.get("license").and_then(Value::as_str) {
            c["licenses"] = json!([{ "expression": l }]);
        }
        if let Some(sum) = sums.get(&(name.to_owned(), version.to_owned())) {
            c["hashes"] = json!([{ "alg": "SHA-256", "content": sum }]);
        }
        components.push(c);
    }
    components.sort_by_key(|c| c["bom-ref"].as_str().unwrap_or_default().to_owned());
    dependencies.sort_by_key(|d| d["ref"].as_str().unwrap_or_default().to_owned());

    let root_pkg = pkg(root)?;
    let features = enabled_features(meta)?.join(",");
    Ok(json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "tools": {"components": [{"type": "application", "name": "cargo xtask bundle"}]},
            "component": {
                "type": "application",
                "bom-ref": bom_ref(root)?,
                "name": workspace::str_field(root_pkg, "name")?,
                "version": workspace::str_field(root_pkg, "version")?,
                "licenses": [{"expression": root_pkg.get("license").and_then(Value::as_str).unwrap_or("NOASSERTION")}],
                "properties": [{"name": "cargo:features", "value": features}],
            },
        },
        "components": components,
        "dependencies": dependencies,
    }))
}

/// Seconds since 1970 as `YYYY-MM-DDTHH:MM:SSZ` (UTC), without a clock.
fn rfc3339_utc(epoch: u64) -> anyhow::Result<String> {
    let days = i64::try_from(epoch / 86_400).map_err(|_| anyhow!("SOURCE_DATE_EPOCH too large"))?;
    let secs = epoch % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if year > 9999 {
        bail!("SOURCE_DATE_EPOCH {epoch} is after the year 9999");
    }
    Ok(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn dates_from_epoch() {
        assert_eq!(rfc3339_utc(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400).unwrap(), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000).unwrap(), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_utc(4_102_444_799).unwrap(), "2099-12-31T23:59:59Z");
        assert!(rfc3339_utc(u64::MAX).is_err());
    }

    #[test]
    fn command_line() {
        let one = parse_args(&args("--province henan")).unwrap().unwrap();
        assert_eq!(one.provinces, Selection::One("henan".into()));
        let all = parse_args(&args("--all --out=/tmp/x")).unwrap().unwrap();
        assert_eq!(all.provinces, Selection::All);
        assert_eq!(all.out, Some(PathBuf::from("/tmp/x")));
        assert!(parse_args(&args("--help")).unwrap().is_none());
        for bad in [
            "",
            "--province",
            "--all --province henan",
            "--frobnicate",
            "--out",
        ] {
            let e = parse_args(&args(bad)).unwrap_err().to_string();
            assert!(e.contains("usage"), "{bad}: {e}");
        }
    }

    #[test]
    fn every_template_renders_for_every_province() {
        for (code, region) in REGIONS {
            let vars = [
                ("code", *code),
                ("name", "某省"),
                ("version", "0.0.0"),
                ("target", "x86_64-unknown-linux-gnu"),
                ("bundle", "ykt-x"),
                ("region", *region),
            ];
            for (file, t) in TEMPLATES {
                let text = render(t, &vars).unwrap_or_else(|e| panic!("{file}: {e:#}"));
                assert!(!text.contains("{{"), "{file}");
            }
            let toml = render(YKT_TOML, &vars).unwrap();
            assert!(toml.contains(&format!("\nprovince = \"{code}\"\n")));
        }
        assert!(render("a {{nope}} b", &[]).is_err());
    }

    #[test]
    fn the_unit_is_hardened() {
        for line in [
            "User=yikatong",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "PrivateDevices=yes",
            "ProtectKernelTunables=yes",
            "ProtectKernelModules=yes",
            "ProtectKernelLogs=yes",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
            "ReadWritePaths=/var/lib/yikatong",
            "CapabilityBoundingSet=",
            "SystemCallFilter=@system-service",
            "UMask=0077",
            "EnvironmentFile=/etc/yikatong/ykt.env",
            "ExecStart=/opt/yikatong/ykt serve",
        ] {
            assert!(
                SERVICE.lines().any(|l| l == line),
                "yikatong.service lacks `{line}`"
            );
        }
    }

    #[test]
    fn lock_checksums() {
        let lock = "[[package]]\nname = \"a\"\nversion = \"1.0.0\"\nsource = \"registry+x\"\nchecksum = \"abc\"\n\n[[package]]\nname = \"b\"\nversion = \"0.1.0\"\n";
        let sums = checksums(lock);
        assert_eq!(
            sums.get(&("a".into(), "1.0.0".into())).map(String::as_str),
            Some("abc")
        );
        assert_eq!(sums.len(), 1);
    }
}
