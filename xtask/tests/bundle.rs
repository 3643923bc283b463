//! `cargo xtask bundle --province henan`, end to end: one release build bundled twice gives
//! byte-identical archives, the archive holds exactly the bundle's files with normalised
//! metadata, and the extracted binary runs in a directory outside the source tree
//! (`ykt provinces --json` lists exactly henan; `ykt demo` creates `data/ykt.db` there).
//!
//! This costs one release build of `ykt` with the henan feature.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FILES: &[&str] = &[
    "DEPLOY.en.md",
    "DEPLOY.zh.md",
    "SHA256SUMS",
    "manifest.json",
    "sbom.cdx.json",
    "yikatong.service",
    "ykt",
    "ykt.toml",
];

/// A scratch directory outside the source tree, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("ykt-bundle-test-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ok(what: &str, o: &Output) {
    assert!(
        o.status.success(),
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn bundle_into(out: &Path) -> PathBuf {
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["bundle", "--province", "henan", "--out"])
        .arg(out)
        .env("CARGO", env!("CARGO"))
        .output()
        .unwrap();
    ok("cargo xtask bundle --province henan", &o);
    let archives: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    archives.into_iter().next().unwrap()
}

/// Run the extracted binary with nothing from the source tree: a clean environment and the
/// extracted directory as working directory.
fn ykt(dir: &Path, args: &[&str]) -> Output {
    Command::new(dir.join("ykt"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap()
}

/// Which files of two bundles differ (a failing test's explanation).
fn differing_files(tmp: &Path, a: &Path, b: &Path) -> String {
    let mut out = String::new();
    for (archive, into) in [(a, "xa"), (b, "xb")] {
        let dir = tmp.join(into);
        std::fs::create_dir_all(&dir).unwrap();
        let o = Command::new("tar")
            .arg("-xzf")
            .arg(archive)
            .arg("-C")
            .arg(&dir)
            .output()
            .unwrap();
        ok("tar -x", &o);
    }
    let o = Command::new("diff")
        .args(["-rq", "xa", "xb"])
        .current_dir(tmp)
        .output()
        .unwrap();
    out.push_str(&String::from_utf8_lossy(&o.stdout));
    // The manifests say whether the commit (and so the sources) changed in between.
    let mut commits = Vec::new();
    for into in ["xa", "xb"] {
        for entry in std::fs::read_dir(tmp.join(into)).unwrap() {
            let manifest = entry.unwrap().path().join("manifest.json");
            let text = std::fs::read_to_string(manifest).unwrap_or_default();
            let v: Value = serde_json::from_str(&text).unwrap_or_default();
            commits.push(v["git_commit"].as_str().unwrap_or_default().to_owned());
            out.push_str(&text);
        }
    }
    if commits.len() == 2 && commits[0] != commits[1] {
        out.push_str(&format!(
            "\nthe sources changed between the two bundles ({} then {}): \
             not a reproducibility failure; rerun on a tree nobody is editing\n",
            commits[0], commits[1]
        ));
    }
    out
}

#[test]
fn henan_bundle_is_reproducible_and_runs_on_its_own() {
    let tmp = Scratch::new();
    let a = bundle_into(&tmp.0.join("a"));
    let b = bundle_into(&tmp.0.join("b"));
    let name = a.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(b.file_name(), a.file_name());
    assert!(
        name.starts_with("ykt-henan-") && name.ends_with(".tar.gz"),
        "{name}"
    );
    let bytes = std::fs::read(&a).unwrap();
    if bytes != std::fs::read(&b).unwrap() {
        panic!(
            "two bundles of the same build differ: {}",
            differing_files(&tmp.0, &a, &b)
        );
    }
    // gzip -n: no name, no time in the header (bytes 4..8 are MTIME).
    assert_eq!(&bytes[..3], &[0x1f, 0x8b, 8]);
    assert_eq!(&bytes[4..8], &[0, 0, 0, 0], "gzip header has a time");
    let dir_name = name.trim_end_matches(".tar.gz").to_owned();

    // The archive: one directory, exactly the files, sorted, 0:0, normalised modes.
    let o = Command::new("tar")
        .args([
            "--list",
            "--verbose",
            "--numeric-owner",
            "--full-time",
            "-zf",
        ])
        .arg(&a)
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    ok("tar --list", &o);
    let listing = String::from_utf8(o.stdout).unwrap();
    let mut names = Vec::new();
    let mut times = Vec::new();
    for line in listing.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 6, "{line}");
        assert_eq!(f[1], "0/0", "owner: {line}");
        let want = if f[5].ends_with('/') {
            "drwxr-xr-x"
        } else if f[5].ends_with("/ykt") {
            "-rwxr-xr-x"
        } else {
            "-rw-r--r--"
        };
        assert_eq!(f[0], want, "mode: {line}");
        times.push(format!("{}T{}Z", f[3], f[4]));
        names.push(f[5].to_owned());
    }
    let mut expected = vec![format!("{dir_name}/")];
    expected.extend(FILES.iter().map(|f| format!("{dir_name}/{f}")));
    assert_eq!(names, expected);

    // Extract outside the source tree; the checksums hold.
    let run = tmp.0.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let o = Command::new("tar")
        .arg("-xzf")
        .arg(&a)
        .arg("-C")
        .arg(&run)
        .output()
        .unwrap();
    ok("tar -x", &o);
    let dir = run.join(&dir_name);
    let o = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&dir)
        .output()
        .unwrap();
    ok("sha256sum -c SHA256SUMS", &o);
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), FILES.len() - 1, "{sums}");

    // The manifest: this province, this build, dated by SOURCE_DATE_EPOCH like every entry.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["province"], "henan");
    assert_eq!(manifest["features"], serde_json::json!(["province-henan"]));
    assert_eq!(manifest["version"], env!("CARGO_PKG_VERSION"));
    assert!(name.contains(manifest["target"].as_str().unwrap()));
    assert!(manifest["rustc"].as_str().unwrap().starts_with("rustc "));
    assert!(!manifest["git_commit"].as_str().unwrap().is_empty());
    let date = manifest["build_date"].as_str().unwrap();
    assert!(times.iter().all(|t| t == date), "{times:?} vs {date}");

    // The SBOM: this province's crate and no other.
    let sbom: Value =
        serde_json::from_slice(&std::fs::read(dir.join("sbom.cdx.json")).unwrap()).unwrap();
    let components: Vec<&str> = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(components.contains(&"ykt-province-henan"));
    assert!(components.contains(&"sqlx"));
    assert!(!components.contains(&"ykt-province-sichuan"));
    assert!(!components.contains(&"ykt-province-heilongjiang"));
    assert!(!components.contains(&"insta"), "a dev-dependency is listed");

    let toml = std::fs::read_to_string(dir.join("ykt.toml")).unwrap();
    assert!(toml.lines().any(|l| l == "province = \"henan\""));

    // The binary on its own.
    let o = ykt(&dir, &["provinces", "--json"]);
    ok("ykt provinces --json", &o);
    let listed: Value = serde_json::from_slice(&o.stdout).unwrap();
    let codes: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["henan"]);

    let o = ykt(&dir, &["demo", "--province", "henan", "--lines", "50"]);
    ok("ykt demo --province henan --lines 50", &o);
    assert!(dir.join("data/ykt.db").is_file(), "no data/ykt.db");
    let o = ykt(&dir, &["audit", "verify"]);
    ok("ykt audit verify", &o);
}
