//! The console in a real browser: the real binary (`ykt serve`, with the Heilongjiang budget
//! system and agent bank simulated by `ykt heilongjiang sim`), headless Chromium driven
//! through the W3C WebDriver protocol (chromedriver) by a small client over reqwest.
//!
//! Scenario: log in, upload a roster and see its errors and follow-up lists, submit the
//! plan, see that the maker cannot approve, approve as finance, follow the batch to paid,
//! reconcile and publish. Screenshots go to `target/web-screenshots/`.
//!
//! Without /usr/bin/chromium or /usr/bin/chromedriver the test prints "skipped: ..." and
//! passes, unless `YKT_REQUIRE_BROWSER=1` (CI sets it).

// The scenario uses the Heilongjiang catalogue and workflow.
#![cfg(feature = "province-heilongjiang")]

mod web_common;

use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use web_common::{Env, PASSWORD, scenario};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `N` distinct free ports: each listener is held until all are chosen, so the kernel cannot
/// hand the same port out twice.
fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

/// A child process killed when dropped.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait until `proc` listens on `port`; if it exits first, or does not listen within 30 s,
/// fail with what it wrote to its stderr file `log`.
fn wait_for_port(proc: &mut Proc, port: u16, what: &str, log: &Path) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let exited = proc.0.try_wait().unwrap();
        if exited.is_some() || start.elapsed() > Duration::from_secs(30) {
            let _ = proc.0.kill();
            let err = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{what} did not start on port {port} (exit: {exited:?}): {err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Decode standard base64 (the screenshots).
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let Some(v) = val(c) else { continue };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// A minimal W3C WebDriver client.
struct Browser {
    http: reqwest::blocking::Client,
    base: String,
    session: String,
    shots: PathBuf,
}

impl Browser {
    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let req = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url).json(&body),
        };
        let v: Value = req.send().unwrap().json().unwrap();
        if let Some(e) = v["value"].get("error") {
            panic!("webdriver {method} {path}: {e} {}", v["value"]["message"]);
        }
        v["value"].clone()
    }
    fn try_cmd(&self, path: &str, body: Value) -> Option<Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let v: Value = self.http.post(&url).json(&body).send().ok()?.json().ok()?;
        if v["value"].get("error").is_some() {
            return None;
        }
        Some(v["value"].clone())
    }
    fn go(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url }));
    }
    fn url(&self) -> String {
        self.cmd("GET", "/url", Value::Null)
            .as_str()
            .unwrap()
            .to_owned()
    }
    fn find(&self, using: &str, value: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(v) = self.try_cmd("/element", json!({"using": using, "value": value})) {
                return v[ELEMENT].as_str().unwrap().to_owned();
            }
            if start.elapsed() > Duration::from_secs(10) {
                self.shot("zz-failed");
                panic!("no element {value} on {}", self.url());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    fn css(&self, sel: &str) -> String {
        self.find("css selector", sel)
    }
    fn exists(&self, xpath: &str) -> bool {
        self.try_cmd("/element", json!({"using": "xpath", "value": xpath}))
            .is_some()
    }
    fn type_in(&self, sel: &str, text: &str) {
        let e = self.css(sel);
        self.cmd("POST", &format!("/element/{e}/clear"), json!({}));
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            json!({ "text": text }),
        );
    }
    fn click(&self, element: &str) {
        self.cmd("POST", &format!("/element/{element}/click"), json!({}));
    }
    /// The text of the element `sel`. While a page is being replaced (after a click or a
    /// submit), an element found a moment ago can be gone before its text is read ("stale
    /// element reference"): the element is then looked up again, for at most ten seconds.
    fn text(&self, sel: &str) -> String {
        let start = Instant::now();
        loop {
            let e = self.css(sel);
            let url = format!("{}/session/{}/element/{e}/text", self.base, self.session);
            let v: Value = self
                .http
                .get(&url)
                .send()
                .expect("webdriver answers")
                .json()
                .expect("webdriver answers JSON");
            match v["value"].get("error").and_then(Value::as_str) {
                None => return v["value"].as_str().unwrap_or("").to_owned(),
                Some("stale element reference") if start.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Some(e) => panic!("webdriver GET text of {sel}: {e} {}", v["value"]["message"]),
            }
        }
    }
    fn body(&self) -> String {
        self.text("body")
    }
    fn script(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/async",
            json!({"script": script, "args": []}),
        )
    }
    /// Click a workflow button by its label and accept the confirmation dialog.
    fn act(&self, label: &str) {
        let b = self.find("xpath", &format!("//button[normalize-space()='{label}']"));
        self.click(&b);
        let start = Instant::now();
        while self.try_cmd("/alert/accept", json!({})).is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "no confirmation for {label}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_for(
            |b| b.url().contains("ok=") || b.url().contains("err="),
            label,
        );
    }
    fn wait_for(&self, cond: impl Fn(&Browser) -> bool, what: &str) {
        let start = Instant::now();
        while !cond(self) {
            if start.elapsed() > Duration::from_secs(30) {
                self.shot("zz-timeout");
                panic!(
                    "timed out waiting for {what}; at {}: {}",
                    self.url(),
                    self.body()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    fn shot(&self, name: &str) -> PathBuf {
        let v = self.cmd("GET", "/screenshot", Value::Null);
        let png = base64_decode(v.as_str().unwrap());
        let p = self.shots.join(format!("{name}.png"));
        std::fs::write(&p, png).unwrap();
        p
    }
    fn login(&self, base: &str, login: &str) {
        self.go(&format!("{base}/login"));
        self.type_in("input[name=login]", login);
        self.type_in("input[name=password]", PASSWORD);
        let b = self.css("form button[type=submit]");
        self.click(&b);
        self.wait_for(|b| !b.url().contains("/login"), "login");
    }
    fn logout(&self) {
        let b = self.find("xpath", "//button[normalize-space()='退出']");
        self.click(&b);
        self.wait_for(|b| b.url().contains("/login"), "logout");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send();
    }
}

fn state(b: &Browser) -> String {
    b.text("#batch-state")
}

#[test]
fn operator_cycle_in_headless_chromium() {
    let required = std::env::var("YKT_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    for tool in [CHROMIUM, CHROMEDRIVER] {
        if !Path::new(tool).exists() {
            assert!(!required, "YKT_REQUIRE_BROWSER=1 but {tool} is missing");
            println!("skipped: {tool} is not installed (apt-get install chromium chromium-driver)");
            return;
        }
    }
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/web-screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    // The platform: registers, two users, the simulators, the server.
    let env = Env::new();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    env.ok(&["import", "registry", &s(&scenario().join("registry.csv"))]);
    env.ok(&["import", "deaths", &s(&scenario().join("deaths.csv"))]);
    env.add_user("daoli-clerk", "dept_maker", "230102");
    env.add_user("daoli-finance", "finance_reviewer", "230102");
    let roster = env.path().join("道里区农村低保2023年5月.csv");
    std::fs::copy(scenario().join("roster.csv"), &roster).unwrap();
    let [bp, kp, port, dport] = free_ports();
    let mut sim = Proc(
        env.cmd(&[
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
        .stderr(std::fs::File::create(env.path().join("sim.stderr")).unwrap())
        .spawn()
        .unwrap(),
    );
    wait_for_port(
        &mut sim,
        bp,
        "the budget-system simulator",
        &env.path().join("sim.stderr"),
    );
    // `ykt serve` collects the bank's returns itself, every second (collect_seconds).
    let settings = format!("{{budget_url=\"http://127.0.0.1:{bp}\", collect_seconds=1}}");
    let mut server = Proc(
        env.cmd(&["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("YKT_PROVINCE_SETTINGS", &settings)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(env.path().join("serve.stderr")).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for_port(
        &mut server,
        port,
        "ykt serve",
        &env.path().join("serve.stderr"),
    );
    let base = format!("http://127.0.0.1:{port}");

    // The browser.
    let mut driver = Proc(
        std::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={dport}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(env.path().join("chromedriver.stderr")).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for_port(
        &mut driver,
        dport,
        "chromedriver",
        &env.path().join("chromedriver.stderr"),
    );
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": CHROMIUM, "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1400,1000", "--lang=zh-CN",
            format!("--user-data-dir={}", profile.path().display()),
        ]}
    }}});
    let v: Value = http
        .post(format!("http://127.0.0.1:{dport}/session"))
        .json(&caps)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let session = v["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("chromedriver refused the session: {v}"))
        .to_owned();
    let b = Browser {
        http,
        base: format!("http://127.0.0.1:{dport}"),
        session,
        shots,
    };

    // 1. Log in as the department's maker.
    b.go(&format!("{base}/"));
    b.wait_for(
        |b| b.url().ends_with("/login"),
        "redirect to the login page",
    );
    b.shot("01-login");
    b.login(&base, "daoli-clerk");
    assert!(b.body().contains("等待我处理"), "{}", b.body());

    // 2. Upload the roster: the progress bar, then the per-line result.
    b.go(&format!("{base}/rosters/new"));
    b.cmd(
        "POST",
        "/execute/sync",
        json!({"script": "document.querySelector('select[name=province]').value = 'heilongjiang';", "args": []}),
    );
    b.type_in("input[name=project]", "农村最低生活保障金");
    b.type_in("input[name=period]", "2023-05");
    b.type_in("input[name=file]", &s(&roster));
    b.shot("02-upload-form");
    let submit = b.find("xpath", "//button[normalize-space()='上传并校验']");
    b.click(&submit);
    b.wait_for(|b| b.url().contains("/rosters/1"), "the roster result page");
    b.shot("03-roster-result");
    let summary = b.text("#summary");
    assert!(summary.contains("不合格"), "{summary}");
    let problems = b.text("#problems");
    for code in [
        "id.checksum",
        "card.none",
        "card.inactive",
        "person.deceased",
        "region.outside_scope",
    ] {
        assert!(
            problems.contains(code),
            "{code} missing from the result: {problems}"
        );
    }
    assert!(!b.text("#need-card").is_empty() && b.text("#need-card").contains("行号"));
    assert!(b.body().contains("需办卡人员") && b.body().contains("需激活金融账户人员"));
    // The downloadable result is a real xlsx.
    let xlsx = b.script(
        "const done = arguments[0]; fetch('/rosters/1/result.xlsx').then(r => r.arrayBuffer()).then(a => { const u = new Uint8Array(a); done([u.length, u[0], u[1]]); });",
    );
    assert!(
        xlsx[0].as_u64().unwrap() > 1000 && xlsx[1] == 0x50 && xlsx[2] == 0x4b,
        "{xlsx}"
    );

    // 3. Open the batch and submit the plan (pushed to the budget system at once).
    let link = b.css("#roster-batches a");
    b.click(&link);
    b.wait_for(|b| b.url().contains("/batches/1"), "the batch page");
    assert_eq!(state(&b), "草稿");
    let lines = b.text("#lines");
    assert!(
        lines.contains("230102194702041018"),
        "the maker sees full data"
    );
    b.act("生成并提交发放计划");
    assert_eq!(state(&b), "发放计划已推送", "{}", b.body());
    b.act("生成国库集中支付申请");
    assert_eq!(state(&b), "已申请拨付");
    b.shot("04-maker-requested-payment");

    // 4. The maker cannot approve: no button, and a forged request is refused.
    assert!(!b.exists("//button[normalize-space()='财政审核通过']"));
    let forged = b.script(
        "const done = arguments[0]; fetch('/batches/1/step', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded', 'X-CSRF-Token': document.body.dataset.csrf}, body: 'step=finance_approve'}).then(r => r.text().then(t => done([r.status, t])));",
    );
    assert_eq!(forged[0], 403, "{forged}");
    assert!(forged[1].as_str().unwrap().contains("财政审核"), "{forged}");
    b.logout();

    // 5. Finance approves: the voucher goes to the agent bank at once.
    b.login(&base, "daoli-finance");
    assert!(
        b.text("#waiting").contains("财政审核通过"),
        "waiting for finance"
    );
    b.shot("05-finance-dashboard");
    b.go(&format!("{base}/batches/1"));
    let masked = b.text("#lines");
    assert!(
        !masked.contains("230102194702041018") && masked.contains("230102********1018"),
        "finance sees masked data: {masked}"
    );
    b.act("财政审核通过");
    assert_eq!(state(&b), "已交银行发放", "{}", b.body());

    // 6. The platform collects the bank's results (ykt serve's timer, collect_seconds), then
    // finance reconciles.
    b.wait_for(
        |b| {
            b.go(&format!("{base}/batches/1"));
            state(b) == "逐笔发放完毕"
        },
        "ykt serve collecting the results",
    );
    assert!(b.text("#lines").contains("已到账"));
    b.shot("06-paid");
    b.act("对账与资金清算");
    assert_eq!(state(&b), "已对账");
    // The agent-bank page with finance's registration forms (Henan is compiled in).
    b.go(&format!("{base}/banks"));
    assert!(b.exists("//button[normalize-space()='列入备选名单']"));
    b.shot("06a-banks");
    b.logout();

    // 7. The maker posts the bulletin-board notice (公示栏公示), then publishes and closes the
    // batch.
    b.login(&base, "daoli-clerk");
    b.go(&format!("{base}/batches/1"));
    b.act("张贴公示栏公示");
    assert!(b.body().contains("公示栏公示「"), "{}", b.body());
    b.shot("07a-bulletin-posted");
    b.act("公开公示并办结");
    assert_eq!(state(&b), "已办结", "{}", b.body());
    b.shot("07-closed");
    b.go(&format!("{base}/"));
    b.shot("08-dashboard-kpi");
    let chart = b.text("#kpi-chart");
    assert!(chart.contains("230102"), "{chart}");
    // The notice duties of the batch (塔河县方案(七)) are on the dashboard with their dates.
    let deadlines = b.text("#deadlines");
    assert!(deadlines.contains("农村最低生活保障金"), "{deadlines}");

    b.logout();

    // 8. A member of the public looks the payment up on the portal (补贴查询), without logging
    // in: the right pair shows the published payment, masked; a wrong name shows nothing.
    b.go(&format!("{base}/portal/lookup"));
    b.type_in("#id", "230102194702041018");
    b.type_in("#name", "王秀英");
    let submit = b.css("form.box button[type=submit]");
    b.click(&submit);
    b.wait_for(|b| b.body().contains("查询结果"), "the lookup answer");
    let found = b.body();
    b.shot("09-portal-lookup");
    assert!(
        found.contains("农村最低生活保障金") && found.contains("420.00"),
        "{found}"
    );
    assert!(
        !found.contains("230102194702041018"),
        "the ID never comes back"
    );
    assert!(
        found.contains("王*") && !found.contains("王秀英<"),
        "masked name"
    );
    b.go(&format!("{base}/portal/lookup"));
    b.type_in("#id", "230102194702041018");
    b.type_in("#name", "王秀");
    let submit = b.css("form.box button[type=submit]");
    b.click(&submit);
    b.wait_for(|b| b.body().contains("查询结果"), "the lookup answer");
    let none = b.body();
    assert!(none.contains("未查询到发放记录"), "{none}");
    assert!(!none.contains("420.00"), "{none}");
    // The bulletin notice posted from the console is among the public notices.
    b.go(&format!("{base}/portal/notices"));
    b.shot("10-portal-notices");
    assert!(b.body().contains("公示栏"), "{}", b.body());
}
