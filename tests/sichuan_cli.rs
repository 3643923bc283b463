//! Sichuan's cycle driven by hand with the `ykt` binary against a fresh SQLite database, the
//! simulators running as a separate process (`ykt sichuan sim`): the treasury and the SMS
//! gateway over HTTP, the cooperating bank on the file drop. Every step is a command a user
//! types, as a user with a role; refusals change nothing; no command prints a personal
//! identifier in clear.
#![cfg(feature = "province-sichuan")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/standard")
}

struct Env {
    dir: tempfile::TempDir,
    printed: std::cell::RefCell<String>,
}

/// The simulators' process; stopped (by its own pid) when dropped.
struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            printed: Default::default(),
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn ykt_on(&self, today: &str, args: &[&str]) -> Output {
        let o = Command::new(env!("CARGO_BIN_EXE_ykt"))
            .args(args)
            .current_dir(self.path())
            .env_remove("YKT_CONFIG")
            .env_remove("YKT_DATABASE_URL")
            .env_remove("YKT_MASTER_KEY")
            .env_remove("YKT_PROVINCE")
            .env("YKT_TODAY", today)
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        self.printed
            .borrow_mut()
            .push_str(&String::from_utf8_lossy(&o.stdout));
        self.printed
            .borrow_mut()
            .push_str(&String::from_utf8_lossy(&o.stderr));
        o
    }
    /// Run and expect success.
    fn ok(&self, today: &str, args: &[&str]) -> String {
        let o = self.ykt_on(today, args);
        assert_eq!(
            code(&o),
            0,
            "{args:?}\nstdout: {}\nstderr: {}",
            out(&o),
            err(&o)
        );
        out(&o)
    }
    /// Run and expect a refusal; the message.
    fn refused(&self, today: &str, args: &[&str]) -> String {
        let o = self.ykt_on(today, args);
        assert_ne!(
            code(&o),
            0,
            "{args:?} should be refused\nstdout: {}",
            out(&o)
        );
        err(&o)
    }
    fn state(&self, batch: &str) -> String {
        let o = self.ok("2023-05-08", &["batch", "show", batch, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&o).unwrap();
        v["batch"]["state"].as_str().unwrap().to_owned()
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Start `ykt sichuan sim` on ephemeral ports; the treasury URL it reports.
fn start_sim(env: &Env, bank: &Path, closed_account: &str) -> (Sim, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ykt"))
        .args([
            "sichuan",
            "sim",
            "--dir",
            bank.to_str().unwrap(),
            "--treasury-listen",
            "127.0.0.1:0",
            "--sms-listen",
            "127.0.0.1:0",
            "--fail-account",
            &format!("{closed_account}:account_closed"),
            "--truncate-permille",
            "1000",
        ])
        .current_dir(env.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut treasury = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("treasury_url = ") {
            treasury = Some(url.trim_matches('"').to_owned());
        }
        if line.starts_with("sms_url") {
            break;
        }
    }
    // Keep draining what the simulators print.
    std::thread::spawn(move || for _ in lines {});
    (
        Sim(child),
        treasury.expect("the simulator reports its address"),
    )
}

#[test]
fn the_cycle_by_hand_with_roles_enforced() {
    let env = Env::new();
    let bank = env.path().join("bank");
    std::fs::create_dir_all(&bank).unwrap();
    let registry = std::fs::read_to_string(scenario().join("registry.csv")).unwrap();
    let closed = registry
        .lines()
        .find(|l| l.contains("吕长江"))
        .and_then(|l| l.split(',').nth(4))
        .unwrap()
        .to_owned();
    let (_sim, treasury) = start_sim(&env, &bank, &closed);
    std::fs::write(
        env.path().join("ykt.toml"),
        format!(
            "database_url = \"sqlite://db/ykt.db\"\nprovince = \"sichuan\"\n\n[province_settings]\ntreasury_url = \"{treasury}\"\nbank_dir = \"{}\"\npublicity_days = 3\n",
            bank.display()
        ),
    )
    .unwrap();
    let d = "2023-05-08";
    let s = |p: &str| scenario().join(p).to_str().unwrap().to_owned();
    env.ok(d, &["import", "registry", &s("registry.csv")]);
    env.ok(d, &["import", "deaths", &s("deaths.csv")]);
    for (login, role) in [
        ("township", "township_clerk"),
        ("clerk", "dept_maker"),
        ("head", "dept_head"),
        ("finance", "finance_reviewer"),
    ] {
        env.ok(
            d,
            &[
                "user", "add", login, "--name", login, "--roles", role, "--region", "230102",
            ],
        );
    }
    env.ok(
        d,
        &[
            "sichuan",
            "proxy",
            "--id",
            "230102198512221358",
            "--kind",
            "custody",
            "--proxy",
            "高淑英",
            "--filed-with",
            "幸福村村民委员会",
            "--signed",
            "2023-01-10",
            "--user",
            "clerk",
        ],
    );
    let o = env.ykt_on(
        d,
        &[
            "import",
            "roster",
            &s("roster.csv"),
            "--project",
            "农村最低生活保障金",
            "--period",
            "2023-05",
            "--user",
            "clerk",
        ],
    );
    assert_eq!(code(&o), 1, "some lines rejected: {}", err(&o));
    assert!(out(&o).contains("草稿"));
    let b = "1";

    // Agency agreement: refused to the township, recorded by the department.
    let agreement = [
        "sichuan",
        "agreement",
        "add",
        "--no",
        "DL-2023-001",
        "--region",
        "230102",
        "--project",
        "SC09",
        "--department",
        "道里区民政局",
        "--bank",
        "中国农业银行",
        "--zb-account",
        "221501010400123",
        "--zb-bank",
        "中国农业银行道里支行",
        "--signed",
        "2023-01-05",
        "--until",
        "2025-12-31",
        "--user",
    ];
    let mut a: Vec<&str> = agreement.to_vec();
    a.push("township");
    assert!(env.refused(d, &a).contains("不能登记代发协议"));
    let mut a: Vec<&str> = agreement.to_vec();
    a.push("clerk");
    env.ok(d, &a);

    // Publicity: the period must run out and every objection be resolved.
    assert!(
        env.refused(
            d,
            &["batch", "step", b, "start_publicity", "--user", "clerk"]
        )
        .contains("乡镇经办")
    );
    env.ok(
        d,
        &["batch", "step", b, "start_publicity", "--user", "township"],
    );
    env.ok(
        "2023-05-09",
        &[
            "sichuan",
            "objection",
            "add",
            b,
            "--by",
            "村民王某",
            "--text",
            "询问名单是否完整",
            "--user",
            "township",
        ],
    );
    let m = env.refused(
        "2023-05-09",
        &["batch", "step", b, "township_submit", "--user", "township"],
    );
    assert!(m.contains("尚未期满"), "{m}");
    let m = env.refused(
        "2023-05-11",
        &["batch", "step", b, "township_submit", "--user", "township"],
    );
    assert!(m.contains("异议"), "{m}");
    assert_eq!(env.state(b), "publicity");
    env.ok(
        "2023-05-11",
        &[
            "sichuan",
            "objection",
            "resolve",
            "1",
            "--dismissed",
            "--note",
            "名单完整",
            "--user",
            "township",
        ],
    );
    env.ok(
        "2023-05-11",
        &["batch", "step", b, "township_submit", "--user", "township"],
    );

    // Review, plan, procedural review (maker and checker are different people).
    let d = "2023-05-12";
    assert!(
        env.refused(d, &["batch", "step", b, "dept_review", "--user", "clerk"])
            .contains("主管部门负责人")
    );
    env.ok(d, &["batch", "step", b, "dept_review", "--user", "head"]);
    env.ok(
        d,
        &["sichuan", "plan", b, "--amount", "1.00", "--user", "clerk"],
    );
    assert!(
        env.refused(d, &["sichuan", "review", b, "--user", "clerk"])
            .contains("财政审核")
    );
    let o = env.ok(d, &["sichuan", "review", b, "--user", "finance"]);
    assert!(o.contains("不一致，退回"), "{o}");
    assert_eq!(env.state(b), "returned");
    env.ok(d, &["sichuan", "plan", b, "--user", "clerk"]);
    let o = env.ok(d, &["sichuan", "review", b, "--user", "finance"]);
    assert!(o.contains("一致，通过"), "{o}");
    assert!(
        env.refused(
            d,
            &["batch", "step", b, "fund_zero_balance", "--user", "finance"]
        )
        .contains("系统")
    );
    let o = env.ok(d, &["sichuan", "poll"]);
    assert!(o.contains("资金已到位"), "{o}");

    // Disbursement: submitted by the department, confirmed by finance, sent to the bank.
    env.ok(
        d,
        &["batch", "step", b, "submit_disbursement", "--user", "clerk"],
    );
    assert!(
        env.refused(
            d,
            &[
                "batch",
                "step",
                b,
                "confirm_disbursement",
                "--user",
                "clerk"
            ]
        )
        .contains("财政审核")
    );
    env.ok(
        d,
        &[
            "batch",
            "step",
            b,
            "confirm_disbursement",
            "--user",
            "finance",
        ],
    );
    env.ok(
        d,
        &["batch", "step", b, "send_instruction", "--user", "clerk"],
    );
    assert!(
        std::fs::read_dir(bank.join("to_bank")).unwrap().count() > 0
            || bank.join("to_bank/done").exists()
    );

    // The bank works in its own process: poll until its (first truncated, then resent)
    // results are in and only the closed account is left failed.
    let mut failed = String::new();
    for _ in 0..100 {
        env.ok(d, &["sichuan", "poll", "--batch", b]);
        failed = env.ok(d, &["batch", "lines", b, "--state", "failed"]);
        let in_flight = env.ok(d, &["batch", "lines", b, "--state", "in_flight"]);
        if !failed.trim().is_empty() && in_flight.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(failed.contains("账户冻结或已销户"), "{failed}");
    let show = env.ok(d, &["sichuan", "show", b]);
    assert!(
        show.contains("整体拒收"),
        "the truncated result file was refused whole:\n{show}"
    );
    let line = failed.split_whitespace().next().unwrap().to_owned();
    assert!(
        env.refused(
            d,
            &[
                "batch",
                "refund",
                b,
                &line,
                "--user",
                "clerk",
                "--approver",
                "clerk",
                "--reason",
                "销户"
            ]
        )
        .contains("财政")
    );
    env.ok(
        d,
        &[
            "batch",
            "refund",
            b,
            &line,
            "--user",
            "clerk",
            "--approver",
            "finance",
            "--reason",
            "账户已销户，当年无法更正",
        ],
    );
    let o = env.ok(d, &["sichuan", "poll", "--batch", b]);
    assert!(o.contains("逐笔发放完毕"), "{o}");

    // After payment: publicity within five days, dual verification, month end, statements.
    let d = "2023-05-15";
    env.ok(
        d,
        &["batch", "step", b, "post_publicity", "--user", "clerk"],
    );
    let show = env.ok(d, &["sichuan", "show", b]);
    assert!(
        show.contains("差异 1笔") && show.contains("按期（5日内）"),
        "{show}"
    );
    let unpaid = env.ok(d, &["sichuan", "unpaid", "--region", "230102"]);
    assert!(
        unpaid.contains("吕*") && unpaid.contains("合计 1笔"),
        "{unpaid}"
    );
    let me = env.ok(
        "2023-05-31",
        &[
            "sichuan",
            "month-end",
            "--month",
            "2023-05",
            "--region",
            "230102",
            "--user",
            "clerk",
        ],
    );
    assert!(me.contains("通过"), "{me}");
    let st = env.ok(
        "2023-05-31",
        &[
            "sichuan",
            "statements",
            "--period",
            "2023-05",
            "--region",
            "230102",
            "--out",
            "statements",
        ],
    );
    assert!(st.contains("对账单"), "{st}");
    assert!(env.path().join("statements/对账单_2023-05.csv").exists());
    assert!(
        env.refused(
            d,
            &[
                "sichuan",
                "statements",
                "--period",
                "2023Q2",
                "--region",
                "230102"
            ]
        )
        .contains("按月")
    );
    env.ok(d, &["batch", "step", b, "close", "--user", "head"]);
    assert_eq!(env.state(b), "closed");
    env.ok(d, &["audit", "verify"]);

    // Nothing any command printed shows an ID, account or phone in clear.
    let printed = env.printed.borrow();
    for field in registry
        .lines()
        .skip(1)
        .flat_map(|l| l.split(',').collect::<Vec<_>>())
    {
        let digits = field.trim_end_matches('X');
        if field.len() >= 15 && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            assert!(
                !printed.contains(field),
                "printed an identifier ending {}",
                &field[field.len() - 4..]
            );
        }
    }
    assert!(!printed.contains("13945007919"));
}
