//! The `ykt` binary as a user runs it: exit codes, messages, all-or-nothing imports,
//! idempotency, maker-checker, the demo, and no plaintext personal data at rest or in output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/standard")
}

/// A working directory with its own embedded database and key.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn ykt(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ykt"))
            .args(args)
            .current_dir(self.path())
            .env_remove("YKT_CONFIG")
            .env_remove("YKT_DATABASE_URL")
            .env_remove("YKT_MASTER_KEY")
            .env_remove("YKT_PROVINCE")
            .env("YKT_TODAY", "2023-05-20")
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap()
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn provinces_lists_exactly_the_compiled_features() {
    let e = Env::new();
    let o = e.ykt(&["provinces", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let codes: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    let mut expected = Vec::new();
    if cfg!(feature = "province-heilongjiang") {
        expected.push("heilongjiang");
    }
    if cfg!(feature = "province-henan") {
        expected.push("henan");
    }
    if cfg!(feature = "province-sichuan") {
        expected.push("sichuan");
    }
    assert_eq!(codes, expected);
}

#[test]
fn check_exit_codes_and_json() {
    let e = Env::new();
    let dir = scenario();
    let (roster, registry, deaths) = (
        dir.join("roster.csv"),
        dir.join("registry.csv"),
        dir.join("deaths.csv"),
    );
    let base = [
        "--province",
        "heilongjiang",
        "--project",
        "HLJ03",
        "--period",
        "2023-05",
    ];
    let mut args = vec!["check", s(&roster)];
    args.extend(base);
    args.extend([
        "--registry",
        s(&registry),
        "--deaths",
        s(&deaths),
        "--scope",
        "230102",
    ]);
    let o = e.ykt(&args);
    assert_eq!(code(&o), 1, "some lines are rejected: {}", stderr(&o));
    let out = stdout(&o);
    // Without a database, already-paid and exclusive-project checks cannot run (and it says so).
    assert!(out.contains("未通过 rejected: 26"), "{out}");
    assert!(out.contains("未比对已发放"), "{out}");
    assert!(out.contains("card.none"), "{out}");

    // --json: one object per problem on stdout.
    args.push("--json");
    let o = e.ykt(&args);
    assert_eq!(code(&o), 1);
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Every rejected line (26, as printed above) has at least one error among the problems.
    let mut rejected: Vec<u64> = lines
        .iter()
        .filter(|l| l["severity"] == "error")
        .filter_map(|l| l["row"].as_u64())
        .collect();
    rejected.sort_unstable();
    rejected.dedup();
    assert_eq!(rejected.len(), 26, "{lines:?}");
    for l in &lines {
        for k in ["row", "column", "code", "severity", "message"] {
            assert!(l.get(k).is_some(), "missing {k} in {l}");
        }
    }
    assert!(
        lines
            .iter()
            .any(|l| l["code"] == "id.checksum" && l["row"] == 8)
    );

    // A roster whose lines are all good: exit 0.
    let text = std::fs::read_to_string(dir.join("roster.csv")).unwrap();
    let good: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("姓名") || l.ends_with(",正常"))
        .collect();
    let f = e.write("good.csv", good.join("\n").as_bytes());
    let o = e.ykt(&[
        "check",
        s(&f),
        "--province",
        "heilongjiang",
        "--project",
        "农村最低生活保障金",
        "--period",
        "2023-05",
        "--registry",
        s(&registry),
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("未通过 rejected: 0"));
}

#[test]
fn unusable_files_and_requests_exit_2_with_clear_messages() {
    let e = Env::new();
    let base = [
        "--province",
        "heilongjiang",
        "--project",
        "HLJ03",
        "--period",
        "2023-05",
    ];
    let run = |file: &Path, extra: &[&str]| {
        let mut a = vec!["check", s(file)];
        a.extend(base);
        a.extend(extra);
        e.ykt(&a)
    };
    let missing = e.write("missing-column.csv", "姓名,补贴金额\n张三,100\n".as_bytes());
    let o = run(&missing, &[]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(
        err.contains("missing-column.csv") && err.contains("身份证号码"),
        "{err}"
    );

    // Invalid bytes in what looks like GB18030 text.
    let mut bytes = "姓名,身份证号码,补贴金额\n".as_bytes().to_vec();
    bytes.extend_from_slice(b"\xd5\xc5\xc8\xfd,110105194912310025,100\n\xff\xff\xff,1,1\n");
    let bad = e.write("bad-encoding.csv", &bytes);
    let o = run(&bad, &[]);
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    assert!(stderr(&o).contains("bad-encoding.csv"), "{}", stderr(&o));

    let o = run(&e.path().join("nope.csv"), &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("nope.csv"));

    let ok = e.write(
        "ok.csv",
        "姓名,身份证号码,补贴金额\n张三,110105194912310025,100\n".as_bytes(),
    );
    let o = e.ykt(&[
        "check",
        s(&ok),
        "--province",
        "xizang",
        "--project",
        "X",
        "--period",
        "2023-05",
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("xizang") && stderr(&o).contains("heilongjiang"),
        "{}",
        stderr(&o)
    );
    let o = e.ykt(&[
        "check",
        s(&ok),
        "--province",
        "heilongjiang",
        "--project",
        "不存在",
        "--period",
        "2023-05",
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("不存在"));
    let o = e.ykt(&[
        "check",
        s(&ok),
        "--province",
        "heilongjiang",
        "--project",
        "HLJ03",
        "--period",
        "2023Q2",
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("2023Q2"));
}

/// Set up users and registers in a fresh embedded database.
fn prepared() -> Env {
    let e = Env::new();
    let dir = scenario();
    for (i, (login, roles)) in [
        ("clerk", "dept_maker"),
        ("finance", "finance_reviewer"),
        ("both", "dept_maker,finance_reviewer"),
    ]
    .into_iter()
    .enumerate()
    {
        let o = e.ykt(&[
            "user", "add", login, "--name", login, "--roles", roles, "--region", "230102",
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        if i == 0 {
            assert!(
                stderr(&o).contains("ykt.key"),
                "the first run says where the key is kept: {}",
                stderr(&o)
            );
        }
    }
    let o = e.ykt(&["import", "registry", s(&dir.join("registry.csv"))]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("39"), "{}", stdout(&o));
    let o = e.ykt(&["import", "deaths", s(&dir.join("deaths.csv"))]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    e
}

#[test]
fn roster_import_is_all_or_nothing_and_at_most_once() {
    let e = prepared();
    let dir = scenario();
    let roster = dir.join("roster.csv");
    let args = [
        "import",
        "roster",
        s(&roster),
        "--province",
        "henan",
        "--project",
        "HN03",
        "--period",
        "2023-05",
        "--user",
        "clerk",
    ];
    let o = e.ykt(&args);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("15笔"), "{}", stdout(&o));
    let o = e.ykt(&args);
    assert_eq!(code(&o), 0);
    assert!(
        stdout(&o).contains("已导入") || stdout(&o).contains("already imported"),
        "{}",
        stdout(&o)
    );
    let o = e.ykt(&["batch", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v.as_array().unwrap().len(),
        1,
        "the second import formed no batch"
    );

    // A file that breaks in the middle (invalid bytes on its last line) imports nothing.
    let mut bytes = std::fs::read(dir.join("earlier.csv")).unwrap();
    bytes.extend_from_slice(b"\xff\xfe\xfd,1,1,1,1,1,1\n");
    let broken = e.write("broken.csv", &bytes);
    let o = e.ykt(&[
        "import",
        "roster",
        s(&broken),
        "--province",
        "henan",
        "--project",
        "HN03",
        "--period",
        "2023-04",
        "--user",
        "clerk",
    ]);
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    let o = e.ykt(&["batch", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v.as_array().unwrap().len(),
        1,
        "nothing of the broken file was stored"
    );

    let o = e.ykt(&["audit", "verify"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn maker_can_never_approve_their_own_batch() {
    let e = prepared();
    let roster = scenario().join("roster.csv");
    let o = e.ykt(&[
        "import",
        "roster",
        s(&roster),
        "--province",
        "henan",
        "--project",
        "HN03",
        "--period",
        "2023-05",
        "--user",
        "both",
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let step = |step: &str, user: &str, extra: &[&str]| {
        let mut a = vec!["batch", "step", "1", step, "--user", user];
        a.extend(extra);
        e.ykt(&a)
    };
    let o = step("finance_review", "finance", &[]);
    assert_eq!(code(&o), 1, "not submitted yet");
    assert!(stderr(&o).contains("草稿"), "{}", stderr(&o));
    let o = step("apply_funds", "finance", &[]);
    assert_eq!(code(&o), 1, "finance cannot apply for funds");
    assert!(stderr(&o).contains("主管部门经办"), "{}", stderr(&o));
    let o = step("apply_funds", "both", &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = step("finance_review", "both", &[]);
    assert_eq!(
        code(&o),
        1,
        "the maker holds the finance role too, but made the batch"
    );
    assert!(
        stderr(&o).contains("经办与审核不得为同一人"),
        "{}",
        stderr(&o)
    );
    let o = step("finance_return", "finance", &[]);
    assert_eq!(code(&o), 1, "a return needs a reason");
    // `ykt batch step` takes Henan's review through the province's own operation: it needs
    // the county's agent bank (第二十一条), which provincial finance lists and the county picks.
    let o = step("finance_review", "finance", &[]);
    assert_eq!(code(&o), 1, "no agent bank yet");
    assert!(stderr(&o).contains("代发银行"), "{}", stderr(&o));
    let o = e.ykt(&[
        "user",
        "add",
        "prov-cz",
        "--name",
        "省财政厅",
        "--roles",
        "finance_reviewer",
        "--region",
        "23",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = e.ykt(&[
        "henan",
        "bank",
        "add",
        "ABC-HN",
        "--name",
        "中国农业银行河南省分行",
        "--agreement",
        "豫财监代〔2021〕1号",
        "--user",
        "prov-cz",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = e.ykt(&[
        "henan",
        "bank",
        "select",
        "230102",
        "ABC-HN",
        "--agreement",
        "道里财代〔2023〕1号",
        "--user",
        "finance",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = step("finance_review", "finance", &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = e.ykt(&["batch", "show", "1"]);
    let out = stdout(&o);
    assert!(
        out.contains("财政已审核") && out.contains("平衡 balanced"),
        "{out}"
    );
    assert!(
        out.contains("apply_funds") && out.contains("finance_review"),
        "{out}"
    );
    let o = e.ykt(&["audit", "verify"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// Every 18-digit ID, 16-19-digit account and 11-digit mobile number of the registry file.
fn secrets(registry: &Path) -> Vec<String> {
    let text = String::from_utf8_lossy(&std::fs::read(registry).unwrap()).into_owned();
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        out.push(f[0].to_owned());
        out.push(f[4].to_owned());
    }
    out
}

#[test]
fn demo_runs_twice_and_leaves_no_plaintext_identifiers() {
    let e = Env::new();
    let o = e.ykt(&[
        "demo",
        "--province",
        "henan",
        "--lines",
        "80",
        "--out",
        "out",
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let first = stdout(&o);
    assert!(first.contains("通过 accepted"), "{first}");
    for f in [
        "out/henan/发放清册.xlsx",
        "out/henan/社保卡信息.csv",
        "out/henan/校验结果/校验结果.xlsx",
        "out/henan/校验结果/校验结果.csv",
        "out/henan/校验结果/校验结果.json",
        "data/ykt.db",
        "data/ykt.key",
    ] {
        assert!(e.path().join(f).exists(), "{f} missing");
    }
    let o = e.ykt(&[
        "demo",
        "--province",
        "henan",
        "--lines",
        "80",
        "--out",
        "out",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("已于"),
        "the same files are not imported twice: {}",
        stdout(&o)
    );

    // No plaintext ID or account in the database files, the outputs or the reports.
    let secrets = secrets(&e.path().join("out/henan/社保卡信息.csv"));
    assert!(secrets.len() > 100);
    let mut haystacks: Vec<(String, Vec<u8>)> = vec![("stdout".into(), first.into_bytes())];
    for f in [
        "data/ykt.db",
        "data/ykt.db-wal",
        "out/henan/校验结果/校验结果.csv",
        "out/henan/校验结果/校验结果.json",
        "out/henan/校验结果/校验结果.xlsx",
    ] {
        if let Ok(b) = std::fs::read(e.path().join(f)) {
            haystacks.push((f.into(), b));
        }
    }
    for (name, hay) in &haystacks {
        for s in &secrets {
            assert!(
                !hay.windows(s.len()).any(|w| w == s.as_bytes()),
                "{name} holds a plaintext identifier"
            );
        }
    }
}
