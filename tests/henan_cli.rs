//! Henan's cycle driven by hand with the real binary against a fresh SQLite database, as an
//! operator would: the budget-system simulator and `ykt serve` run as processes, the bank
//! simulator is run by hand against the server, every step is taken by a named user and the
//! wrong user is refused. No full account or resident ID ever reaches the terminal.
#![cfg(feature = "province-henan")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

struct Env {
    dir: tempfile::TempDir,
    children: Vec<Child>,
    /// Everything the commands printed (scanned for personal data at the end).
    printed: String,
}

impl Drop for Env {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/standard")
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            children: Vec::new(),
            printed: String::new(),
        }
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ykt"));
        c.args(args)
            .current_dir(self.dir.path())
            .env_remove("YKT_CONFIG")
            .env_remove("YKT_DATABASE_URL")
            .env_remove("YKT_MASTER_KEY")
            .env_remove("YKT_PROVINCE")
            .env("YKT_TODAY", "2023-05-20")
            .env("RUST_BACKTRACE", "0");
        c
    }
    fn run(&mut self, args: &[&str]) -> Output {
        let o = self.cmd(args).output().unwrap();
        self.printed.push_str(&String::from_utf8_lossy(&o.stdout));
        self.printed.push_str(&String::from_utf8_lossy(&o.stderr));
        o
    }
    /// Run, expecting exit code `code`; return stdout.
    fn ok(&mut self, code: i32, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "ykt {}\nstdout: {}\nstderr: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    /// Start a long-running command; return the `http://...` address its first line names.
    fn spawn(&mut self, args: &[&str]) -> String {
        let mut child = self.cmd(args).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        self.children.push(child);
        let start = line
            .find("http://")
            .unwrap_or_else(|| panic!("no address in {line}"));
        line[start..]
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap()
            .to_owned()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn the_cycle_by_hand_with_roles_enforced() {
    let mut e = Env::new();
    let dir = scenario();
    e.ok(0, &["import", "registry", s(&dir.join("registry.csv"))]);
    e.ok(0, &["import", "deaths", s(&dir.join("deaths.csv"))]);
    for (login, roles, region) in [
        ("daoli-clerk", "dept_maker", "230102"),
        ("daoli-head", "dept_head", "230102"),
        ("daoli-cz", "finance_reviewer", "230102"),
        ("prov-cz", "finance_reviewer", "23"),
        ("admin", "admin", "23"),
    ] {
        e.ok(
            0,
            &[
                "user", "add", login, "--name", login, "--roles", roles, "--region", region,
            ],
        );
    }

    // Banks: provincial finance's candidates, the county's choice, the credential.
    let refused = e.run(&[
        "henan",
        "bank",
        "add",
        "ABC-HN",
        "--name",
        "中国农业银行河南省分行",
        "--agreement",
        "豫财监代〔2021〕1号",
        "--user",
        "daoli-cz",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("省财政厅"));
    e.ok(
        0,
        &[
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
        ],
    );
    e.ok(
        0,
        &[
            "henan",
            "bank",
            "select",
            "230102",
            "ABC-HN",
            "--agreement",
            "道里财代〔2023〕1号",
            "--user",
            "daoli-cz",
        ],
    );
    let out = e.ok(
        0,
        &["henan", "bank", "credential", "ABC-HN", "--user", "admin"],
    );
    let token = out.lines().nth(1).unwrap().trim().to_owned();
    assert!(token.starts_with("hnbank_"));
    let out = e.ok(0, &["henan", "bank", "list"]);
    assert!(out.contains("230102000000 ABC-HN"), "{out}");

    // The budget system and the platform's server.
    let budget = e.spawn(&["henan", "budget-sim", "--listen", "127.0.0.1:0"]);
    std::fs::write(
        e.dir.path().join("ykt.toml"),
        format!("[province_settings.henan]\nbudget_url = \"{budget}\"\n"),
    )
    .unwrap();
    let server = e.spawn(&["serve", "--listen", "127.0.0.1:0"]);

    // The department imports; only library projects are accepted.
    let o = e.run(&[
        "henan",
        "import",
        s(&dir.join("roster.csv")),
        "--project",
        "不存在的项目",
        "--period",
        "2023-05",
        "--user",
        "daoli-clerk",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("不在补贴项目库中"));
    let out = e.ok(
        1,
        &[
            "henan",
            "import",
            s(&dir.join("roster.csv")),
            "--project",
            "HN03",
            "--period",
            "2023-05",
            "--user",
            "daoli-clerk",
        ],
    );
    assert!(out.contains("HA202305230102-000001-01"), "{out}");

    // Roles and maker-checker.
    let o = e.run(&["henan", "review", "1", "--user", "daoli-clerk"]);
    assert_eq!(o.status.code(), Some(1), "a clerk cannot review");
    e.ok(
        0,
        &["henan", "step", "1", "apply_funds", "--user", "daoli-clerk"],
    );
    let o = e.run(&["henan", "step", "1", "push_order", "--user", "daoli-cz"]);
    assert_eq!(o.status.code(), Some(1), "no push before the review");
    e.ok(0, &["henan", "review", "1", "--user", "daoli-cz"]);
    let out = e.ok(
        0,
        &["henan", "step", "1", "push_order", "--user", "daoli-cz"],
    );
    assert!(out.contains("发放计划已推送"), "{out}");
    let out = e.ok(0, &["henan", "sync"]);
    assert!(out.contains("资金已到位"), "{out}");
    let out = e.ok(0, &["henan", "sync"]);
    assert!(out.contains("已交银行发放"), "{out}");

    // The bank pulls by hand (its connection drops after 3 lines), fails some lines.
    let state = e.dir.path().join("bank-books.json");
    let bank = |extra: &[&str]| {
        let mut v = vec![
            "henan",
            "bank-sim",
            "--url",
            &server,
            "--bank",
            "ABC-HN",
            "--token",
            &token,
            "--seed",
            "11",
            "--state",
            s(&state),
        ];
        v.extend_from_slice(extra);
        v.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let args = bank(&[
        "--fail-rate",
        "0.3",
        "--drop-after",
        "3",
        "--chunk",
        "5",
        "--repeat-rate",
        "0.5",
    ]);
    let out = e.ok(0, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("行（连接中断后续取）"), "{out}");
    assert!(out.contains("【农村低保】420.00元"), "{out}");
    e.ok(0, &["henan", "sync"]);
    let failed = e.ok(0, &["batch", "lines", "1", "--state", "failed"]);
    let ids: Vec<String> = failed
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert!(!ids.is_empty(), "the seeded bank fails some lines:\n{out}");

    // Corrections need the beneficiary's signature and the head's sign-off.
    let o = e.run(&[
        "henan",
        "correct",
        "1",
        &ids[0],
        "--user",
        "daoli-clerk",
        "--head",
        "daoli-clerk",
        "--signed-by",
        "本人",
        "--reason",
        "核实",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("负责人"));
    for id in &ids {
        e.ok(
            0,
            &[
                "henan",
                "correct",
                "1",
                id,
                "--user",
                "daoli-clerk",
                "--head",
                "daoli-head",
                "--signed-by",
                "本人 签字",
                "--reason",
                "已核实，账户已激活",
            ],
        );
    }
    let out = e.ok(0, &["henan", "repull", "1", "--user", "daoli-clerk"]);
    assert!(out.contains(&format!("已开放{}笔", ids.len())), "{out}");
    // This time the bank posts the results and hands them over only on its next run.
    let args = bank(&["--defer-handover"]);
    let out = e.ok(0, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.contains(&format!("获取{}行", ids.len())),
        "only the corrected lines: {out}"
    );
    assert!(!out.contains("交接：第"), "no hand-over this run: {out}");
    e.ok(0, &["henan", "sync"]);
    // What still fails (a wrong or closed account) is refunded, finance agreeing.
    let still = e.ok(0, &["batch", "lines", "1", "--state", "failed"]);
    for id in still.lines().filter_map(|l| l.split_whitespace().next()) {
        let o = e.run(&[
            "henan",
            "refund",
            "1",
            id,
            "--user",
            "daoli-clerk",
            "--approver",
            "daoli-clerk",
            "--reason",
            "无法发放",
        ]);
        assert_eq!(o.status.code(), Some(1), "the requester cannot agree");
        e.ok(
            0,
            &[
                "henan",
                "refund",
                "1",
                id,
                "--user",
                "daoli-clerk",
                "--approver",
                "daoli-cz",
                "--reason",
                "账户已销户，原渠道退回",
            ],
        );
    }
    let out = e.ok(0, &["henan", "sync"]);
    assert!(out.contains("逐笔发放完毕"), "{out}");

    // Hand-overs are checked, then reconciliation and publication.
    let o = e.run(&["henan", "reconcile", "1", "--user", "daoli-clerk"]);
    assert_eq!(o.status.code(), Some(1), "hand-overs not checked yet");
    let out = e.ok(0, &["henan", "deadlines"]);
    assert!(out.contains("2023-05-26前，待办"), "{out}");
    let check_all = |e: &mut Env| {
        while e
            .run(&[
                "henan",
                "handover",
                "check",
                "HA202305230102-000001-01",
                "--user",
                "daoli-clerk",
            ])
            .status
            .code()
            == Some(0)
        {}
    };
    check_all(&mut e);
    // Every hand-over so far is confirmed, but the re-payment's results were never handed
    // over (第二十六条): the batch cannot be reconciled yet.
    let o = e.run(&["henan", "reconcile", "1", "--user", "daoli-clerk"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("又报送了{}笔交易结果", ids.len())),
        "{err}"
    );
    let args = bank(&[]);
    let out = e.ok(0, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("交接：第"), "the owed hand-over: {out}");
    check_all(&mut e);
    e.ok(0, &["henan", "reconcile", "1", "--user", "daoli-clerk"]);
    e.ok(0, &["henan", "publish", "1", "--user", "daoli-clerk"]);
    let out = e.ok(0, &["batch", "show", "1"]);
    assert!(
        out.contains("已办结") && out.contains("平衡 balanced"),
        "{out}"
    );

    // The bank's statement, finance's monthly report.
    let args = bank(&["--statement", "2023-05"]);
    let out = e.ok(0, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("\"matches\": true"), "{out}");
    let reports = e.dir.path().join("reports");
    let out = e.ok(
        0,
        &[
            "henan",
            "report",
            "monthly",
            "--month",
            "2023-05",
            "--out",
            s(&reports),
        ],
    );
    assert!(out.contains("HA202305230102-000001-01"), "{out}");
    let csv = std::fs::read(reports.join("月报-2023-05.csv")).unwrap();
    let text = ykt_http::henan::budget::decode(&csv).unwrap();
    assert!(text.starts_with("发放单号,补贴项目"), "{text}");
    e.ok(
        0,
        &[
            "henan",
            "report",
            "annual",
            "--year",
            "2023",
            "--out",
            s(&reports),
        ],
    );
    assert!(reports.join("年度汇编-2023.xlsx").exists());
    e.ok(0, &["audit", "verify"]);

    // No full account or resident ID was printed.
    let registry = std::fs::read_to_string(dir.join("registry.csv")).unwrap();
    for line in registry.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        for secret in [f[0], f[4]] {
            assert!(
                !e.printed.contains(secret),
                "printed a full identifier ending {}",
                &secret[secret.len() - 4..]
            );
        }
    }
}
