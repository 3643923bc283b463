//! 黑龙江省 as a user runs it: `ykt demo --province heilongjiang` end to end, and the cycle
//! driven by hand with `ykt heilongjiang ...` against a fresh SQLite database and the
//! simulators running as their own process (`ykt heilongjiang sim`).

#![cfg(feature = "province-heilongjiang")]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/standard")
}

struct Env {
    dir: tempfile::TempDir,
    settings: Option<String>,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            settings: None,
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ykt"));
        c.args(args)
            .current_dir(self.path())
            .env_remove("YKT_CONFIG")
            .env_remove("YKT_DATABASE_URL")
            .env_remove("YKT_MASTER_KEY")
            .env_remove("YKT_PROVINCE")
            .env_remove("YKT_PROVINCE_SETTINGS")
            .env("YKT_TODAY", "2023-05-20")
            .env("RUST_BACKTRACE", "0");
        if let Some(s) = &self.settings {
            c.env("YKT_PROVINCE_SETTINGS", s);
        }
        c
    }
    fn ykt(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out(o),
        err(o)
    );
    out(o)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(files_under(&p));
        } else {
            v.push(p);
        }
    }
    v.sort();
    v
}

#[test]
fn the_demo_runs_the_whole_cycle_and_writes_every_artifact() {
    let e = Env::new();
    let o = e.ykt(&[
        "demo",
        "--province",
        "heilongjiang",
        "--lines",
        "80",
        "--out",
        "out",
    ]);
    let text = ok(&o);
    for expect in [
        "推送发放计划至预算管理一体化系统",
        "国库集中支付代理银行打卡发放",
        "更正后重新支付",
        "原渠道退回",
        "粮食风险基金专户清算单",
        "清算完毕",
        "【逾期】",
        "资金直达社保卡，台账平衡",
        "社会保障卡激活率",
    ] {
        assert!(text.contains(expect), "missing {expect}:\n{text}");
    }
    let dir = e.path().join("out/heilongjiang");
    let all = files_under(&dir);
    let names: Vec<String> = all
        .iter()
        .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
        .collect();
    let has = |pred: &dyn Fn(&str) -> bool| names.iter().any(|n| pred(n));
    assert!(has(
        &|n| n.starts_with("报文/") && n.contains("_发_voucher_5201_")
    ));
    assert!(has(
        &|n| n.starts_with("报文/") && n.contains("_发_repay_5201_")
    ));
    assert!(has(
        &|n| n.starts_with("报文/") && n.contains("_收_return_5201")
    ));
    assert!(has(
        &|n| n.starts_with("报文/") && n.contains("_发_refund_request")
    ));
    assert!(has(
        &|n| n.starts_with("公示/公示栏公示_") && n.ends_with(".html")
    ));
    assert!(has(&|n| n.starts_with("公示/网站公开_")));
    assert!(has(&|n| n.starts_with("清算单/") && n.ends_with(".xlsx")));
    assert!(has(&|n| n.starts_with("政策清单/") && n.ends_with(".xlsx")));
    for f in [
        "监管指标.xlsx",
        "监管指标.json",
        "公示期限台账.txt",
        "发放结果.txt",
        "资金台账.txt",
    ] {
        assert!(names.iter().any(|n| n == f), "{f} missing: {names:?}");
    }
    // Vouchers are GB18030 XML as sent.
    let voucher = all
        .iter()
        .find(|p| p.display().to_string().contains("_发_voucher_5201_"))
        .unwrap();
    let bytes = std::fs::read(voucher).unwrap();
    assert!(bytes.starts_with(b"<?xml version=\"1.0\" encoding=\"GB18030\"?>"));
    let doc = ykt_http::heilongjiang::xml::parse(&bytes).unwrap();
    assert_eq!(doc.name, "MOF");
    // The indicators: all six, by region and by lead unit.
    let k: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("监管指标.json")).unwrap()).unwrap();
    assert_eq!(k["indicators"].as_array().unwrap().len(), 6);
    assert_eq!(k["by_region"].as_array().unwrap().len(), 3);
    assert!(k["by_lead_unit"].as_array().unwrap().len() >= 2);
    for key in [
        "projects_paid",
        "person_times",
        "amount_paid",
        "success_rate",
        "card_share",
        "activation_rate",
    ] {
        assert!(!k["total"][key].is_null(), "{key}");
    }
    // The policy list: all 45 projects with their six columns.
    let list = all
        .iter()
        .find(|p| {
            p.display()
                .to_string()
                .contains("塔河县惠民惠农财政补贴政策清单")
        })
        .unwrap();
    let mut reader = ykt_files::TableReader::open_with(list, |h| h == "序号").unwrap();
    assert_eq!(
        &reader.headers()[..7],
        [
            "序号",
            "财政补贴资金名称",
            "相关政策依据",
            "补贴对象",
            "补贴标准",
            "补贴条件",
            "主管部门"
        ]
    );
    let mut rows = 0;
    while let Some(r) = reader.next_row() {
        r.unwrap();
        rows += 1;
    }
    assert_eq!(rows, 45);
    // No full resident ID or account on the terminal or in the public files.
    let cards = ykt_files::registry::read_card_registry(
        &dir.join("社保卡信息.csv"),
        chrono::NaiveDate::from_ymd_opt(2023, 5, 20).unwrap(),
    )
    .unwrap();
    let public: Vec<String> = all
        .iter()
        .filter(|p| {
            let s = p.display().to_string();
            s.contains("公示") || s.ends_with(".txt") || s.ends_with(".json")
        })
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect();
    for c in &cards.records {
        for secret in [c.resident_id.as_str(), c.account.as_str()] {
            assert!(!text.contains(secret), "full identifier on the terminal");
            assert!(!err(&o).contains(secret));
            for p in &public {
                assert!(!p.contains(secret), "full identifier in a public file");
            }
        }
    }
    // Running it again imports nothing twice and pays nothing twice.
    let again = ok(&e.ykt(&[
        "demo",
        "--province",
        "heilongjiang",
        "--lines",
        "80",
        "--out",
        "out",
    ]));
    assert!(again.contains("已于"), "{again}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Sim(Child);
impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_cycle_driven_by_hand_with_roles_enforced() {
    let mut e = Env::new();
    let (bp, kp) = (free_port(), free_port());
    let _sim = Sim(e
        .cmd(&[
            "heilongjiang",
            "sim",
            "--budget-port",
            &bp.to_string(),
            "--bank-port",
            &kp.to_string(),
            "--fail-share",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", bp)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "simulator did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    ok(&e.ykt(&["import", "registry", &s(&scenario().join("registry.csv"))]));
    ok(&e.ykt(&["import", "deaths", &s(&scenario().join("deaths.csv"))]));
    ok(&e.ykt(&[
        "user",
        "add",
        "daoli-clerk",
        "--name",
        "道里区民政局经办",
        "--roles",
        "dept_maker",
        "--region",
        "230102",
    ]));
    ok(&e.ykt(&[
        "user",
        "add",
        "daoli-finance",
        "--name",
        "道里区财政局",
        "--roles",
        "finance_reviewer",
        "--region",
        "230102",
    ]));
    let o = e.ykt(&[
        "import",
        "roster",
        &s(&scenario().join("roster.csv")),
        "--province",
        "heilongjiang",
        "--project",
        "农村最低生活保障金",
        "--period",
        "2023-05",
        "--user",
        "daoli-clerk",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "some lines are rejected: {}",
        err(&o)
    );

    // Without the budget system configured, the push is refused with the setting named.
    let o = e.ykt(&[
        "heilongjiang",
        "step",
        "1",
        "submit_plan",
        "--user",
        "daoli-clerk",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("budget_url"), "{}", err(&o));
    e.settings = Some(format!("{{budget_url=\"http://127.0.0.1:{bp}\"}}"));
    let t = ok(&e.ykt(&["heilongjiang", "step", "1", "push_plan", "--user", "system"]));
    assert!(t.contains("发放计划已推送"), "{t}");

    // The generic command drives the same ports.
    ok(&e.ykt(&[
        "batch",
        "step",
        "1",
        "request_payment",
        "--user",
        "daoli-clerk",
    ]));
    let o = e.ykt(&[
        "heilongjiang",
        "step",
        "1",
        "finance_approve",
        "--user",
        "daoli-clerk",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("财政审核"), "{}", err(&o));
    let t = ok(&e.ykt(&[
        "heilongjiang",
        "step",
        "1",
        "finance_approve",
        "--user",
        "daoli-finance",
    ]));
    assert!(t.contains("已交银行发放"), "{t}");
    // The returns are collected by `ykt serve` on its timer (`collect_seconds`, the code
    // path of `ykt heilongjiang collect`): the batch settles without anyone running it.
    let by_hand = e.settings.clone();
    e.settings = Some(format!(
        "{{budget_url=\"http://127.0.0.1:{bp}\", collect_seconds=1}}"
    ));
    let mut serve = e
        .cmd(&["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let settled = loop {
        let t = ok(&e.ykt(&["batch", "show", "1"]));
        if t.contains("逐笔发放完毕") {
            break true;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    let _ = serve.kill();
    let served = serve.wait_with_output().unwrap();
    assert!(
        settled,
        "ykt serve did not collect the results within 60 s:\n{}\n{}",
        out(&served),
        err(&served)
    );
    assert!(out(&served).contains("collect_seconds"), "{}", out(&served));
    e.settings = by_hand;
    // Nothing left to collect by hand: the step is no longer available.
    let o = e.ykt(&["heilongjiang", "collect", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let t = ok(&e.ykt(&[
        "heilongjiang",
        "step",
        "1",
        "reconcile",
        "--user",
        "daoli-finance",
        "--out",
        "清算",
    ]));
    assert!(t.contains("清算完毕"), "{t}");
    assert!(e.path().join("清算").read_dir().unwrap().count() >= 2);
    let t = ok(&e.ykt(&[
        "heilongjiang",
        "bulletin",
        "1",
        "--user",
        "daoli-clerk",
        "--out",
        "公示",
    ]));
    assert!(t.contains("发放名单公示"), "{t}");
    ok(&e.ykt(&[
        "heilongjiang",
        "step",
        "1",
        "publish",
        "--user",
        "daoli-clerk",
    ]));
    let t = ok(&e.ykt(&["heilongjiang", "notices"]));
    assert!(t.contains("按期发布") && !t.contains("【逾期】"), "{t}");
    let o = e.ykt(&["heilongjiang", "notices", "--today", "2023-07-01"]);
    assert_eq!(o.status.code(), Some(0), "everything was published on time");
    let k: serde_json::Value = serde_json::from_str(&ok(&e.ykt(&[
        "heilongjiang",
        "kpi",
        "--out",
        "kpi",
        "--json",
    ])))
    .unwrap();
    assert_eq!(k["total"]["success_rate"], "100.00%");
    assert!(e.path().join("kpi/监管指标.xlsx").exists());
    let t = ok(&e.ykt(&["heilongjiang", "messages", "1", "--out", "报文", "--show"]));
    assert!(t.contains("VtCode"), "{t}");
    let t = ok(&e.ykt(&[
        "heilongjiang",
        "query",
        "--id",
        "230102194702041018",
        "--name",
        "王秀英",
    ]));
    assert!(t.contains("1 条") && t.contains("王**"), "{t}");
    let t = ok(&e.ykt(&[
        "heilongjiang",
        "policy-list",
        "--region",
        "230102",
        "--out",
        "清单.xlsx",
    ]));
    assert!(t.contains("45 项"), "{t}");
    ok(&e.ykt(&["audit", "verify"]));
    // Nothing on the terminal ever shows a full identifier.
    let registry = std::fs::read_to_string(scenario().join("registry.csv")).unwrap();
    let everything = [
        ok(&e.ykt(&["heilongjiang", "results", "1"])),
        ok(&e.ykt(&["batch", "lines", "1"])),
        t,
    ]
    .concat();
    for l in registry.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        assert!(!everything.contains(f[0]) && !everything.contains(f[4]));
    }
}
