//! No plaintext personal identifier outside the masked form (issue #9, "Security"): every
//! province's whole demo cycle runs with debug logging, then `ykt serve` answers the public
//! portal (pages, notices, lookups, the public API); everything these produce is swept:
//! stdout and stderr of both, the server's responses, and every file written under the demo's
//! output directory (GB18030 and UTF-8 text decoded, xlsx unpacked). A hit is any resident ID,
//! bank account or phone number of the data set (read from the generated inputs), and any
//! valid 18-digit resident ID or 11-digit mobile number at all.
//!
//! The web console is swept too: after the demo, every demo login (eight roles in each of the
//! three provinces) fetches every page, export and read of the JSON API for every batch of its
//! province, each taken through the whole cycle with corrections and refunds; and
//! (`no_full_identifier_in_the_console_pages_and_exports`) a user of each role fetches them for
//! a Heilongjiang batch at each stage of its cycle (draft, submitted, payment requested, paid to
//! the bank, results collected).
//!
//! DOMAIN.md §3: "Masking for anything public or exported outside the department ... Full
//! identifiers never appear in logs." The outputs allowed to carry full identifiers are listed
//! in [`ALLOWED`], each with its reason; everything else is swept.

#[cfg(feature = "province-heilongjiang")]
mod web_common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Output paths (relative to the demo's `--out`) that may carry full identifiers, and why.
const ALLOWED: &[(&str, &str)] = &[
    // The inputs the demo generates: the department's and HR&SS's own files, which the
    // platform reads (they are where the identifiers come from).
    ("/社保卡信息.csv", "input: HR&SS card registry"),
    ("/死亡登记.csv", "input: the death register"),
    ("/发放清册.xlsx", "input: the department's roster"),
    (
        "heilongjiang/耕地地力保护补贴_2023.xlsx",
        "input: the grain-subsidy roster",
    ),
    ("sichuan/补充清册_", "input: Sichuan's supplementary roster"),
    (
        "henan/流程/社保卡信息变更-",
        "input: HR&SS re-issued cards (a registry update)",
    ),
    // What goes to the bank or the treasury must name the account to pay (and what comes back
    // from the bank names it too); these are the exchanged files as the peers hold them.
    (
        "sichuan/发放流程/银行文件交换/",
        "bank: payment instructions to, and result files from, the cooperating bank",
    ),
    (
        "henan/流程/银行/",
        "bank: the detail each agent bank pulled (the bank's copy)",
    ),
    (
        "heilongjiang/报文/",
        "treasury: plans, 5201 vouchers and returns exchanged with the budget system and agent bank",
    ),
];

fn allowed(rel: &str) -> Option<&'static str> {
    ALLOWED
        .iter()
        .find(|(p, _)| {
            if p.starts_with('/') {
                rel.ends_with(&p[1..]) && rel.matches('/').count() == 1
            } else {
                rel.starts_with(p)
            }
        })
        .map(|(_, why)| *why)
}

fn ykt(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ykt"));
    c.current_dir(dir)
        .env_remove("YKT_CONFIG")
        .env_remove("YKT_DATABASE_URL")
        .env_remove("YKT_MASTER_KEY")
        .env_remove("YKT_PROVINCE")
        .env_remove("YKT_PROVINCE_SETTINGS")
        .env("YKT_LOG", "debug")
        .env("YKT_TODAY", "2023-05-20")
        .env("RUST_BACKTRACE", "0");
    c
}

/// Text of a file: xlsx unpacked (every XML part), else UTF-8 or GB18030.
fn text_of(bytes: &[u8]) -> String {
    if bytes.starts_with(b"PK") {
        let mut out = String::new();
        if let Ok(mut z) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) {
            for i in 0..z.len() {
                if let Ok(mut f) = z.by_index(i) {
                    let mut s = String::new();
                    if f.read_to_string(&mut s).is_ok() {
                        out.push_str(&s);
                        out.push('\n');
                    }
                }
            }
        }
        return out;
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => encoding_rs::GB18030.decode(bytes).0.into_owned(),
    }
}

/// Maximal runs of digits (an `X` may end an 18-character ID), outside random tokens.
///
/// A run of 32 or more hex characters (a session's CSRF token, a login nonce, a SHA-256
/// digest) is random, not data: its digits are skipped. Without this, a 64-character token
/// holds an 11-digit run that looks like a mobile number in about one run of the sweep in
/// twelve (CI failed that way once).
fn digit_runs(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_hexdigit() {
            let start = i;
            let mut end = i;
            while end < b.len() && b[end].is_ascii_hexdigit() {
                end += 1;
            }
            if end - start >= 32 {
                i = end;
                continue;
            }
        }
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 17 && i < b.len() && (b[i] == b'X' || b[i] == b'x') {
                i += 1;
            }
            out.push(&s[start..i]);
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn digit_runs_skip_random_tokens_but_not_identifiers() {
    // A CSRF token whose digits include a mobile-shaped run.
    let token = "a16541234478b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5";
    assert_eq!(token.len(), 64);
    let page = format!(
        "<meta name=\"csrf\" value=\"{token}\"> 电话13912345678，身份证11010119900101123X，账号 6222020200112233445"
    );
    assert_eq!(
        digit_runs(&page),
        vec!["13912345678", "11010119900101123X", "6222020200112233445"]
    );
    // Short hex-looking words are not tokens: a phone after a letter is still seen.
    assert_eq!(
        digit_runs("tel:13912345678 ab13912345678"),
        vec!["13912345678", "13912345678"]
    );
}

/// A run that is a personal identifier: one of the data set's, a valid resident ID, or a
/// mobile number.
fn is_identifier(run: &str, known: &BTreeSet<String>) -> bool {
    let today = chrono::NaiveDate::from_ymd_opt(2023, 5, 20).unwrap();
    known.contains(run)
        || (run.len() == 18 && ykt_kernel::ResidentId::parse(run, today).is_ok())
        || (run.len() == 11 && run.starts_with('1') && matches!(run.as_bytes()[1], b'3'..=b'9'))
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Every identifier of the generated inputs (the registry's IDs and accounts, the roster's
/// IDs, phones and proxies' IDs, the death register's IDs).
fn known_identifiers(out: &Path) -> BTreeSet<String> {
    let mut known = BTreeSet::new();
    let mut all = Vec::new();
    files(out, &mut all);
    for f in all {
        let rel = f.strip_prefix(out).unwrap().to_string_lossy().into_owned();
        if !allowed(&rel).is_some_and(|why| why.starts_with("input")) {
            continue;
        }
        let mut t = ykt_files::TableReader::open(&f).expect("input readable");
        while let Some(Ok(row)) = t.next_row() {
            for cell in &row.cells {
                // IDs (18), accounts (16-19) and phones (11); not region codes (12) and
                // other numbers.
                let shaped =
                    matches!(cell.len(), 16..=19) || (cell.len() == 11 && cell.starts_with('1'));
                if shaped && cell.bytes().all(|b| b.is_ascii_digit() || b == b'X') {
                    known.insert(cell.clone());
                }
            }
        }
    }
    known
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The public portal as the public uses it: pages, notices, lookups, the public API.
/// The demo's console logins: `{province}-{role}` for every role, password `ykt-demo-2023`.
const DEMO_ROLES: &[&str] = &[
    "township", "clerk", "head", "finance", "hrss", "bank", "auditor", "admin",
];
/// Of those, the department's own staff (`sees_full_data`), who work with full lines.
const FULL_DATA: &[&str] = &["township", "clerk", "head"];

/// Every GET route of the console and of the JSON API (the routers' own route lists).
fn get_routes() -> Vec<&'static str> {
    let mut routes: Vec<&str> = ykt_http::web::console_routes()
        .into_iter()
        .chain(ykt_http::web::api::routes())
        .filter(|(m, _)| *m == "GET")
        .map(|(_, p)| p)
        .collect();
    routes.sort_unstable();
    routes.dedup();
    routes
}

/// Every console page and export and every read of the JSON API (the router's own route
/// lists), for every demo login of every province, each batch of the login's province in
/// place of `{id}`: the batches the demo took through their whole cycle, with corrections,
/// re-payments and refunds. Returns (what, body, exempt): exempt are the department's own
/// staff's views of a batch's lines.
fn console_responses(http: &reqwest::blocking::Client, base: &str) -> ConsoleResponses {
    let routes = get_routes();
    let line_views = [
        "/batches/{id}",
        "/batches/{id}/lines.xlsx",
        "/api/v1/batches/{id}/lines",
    ];
    let mut got = Vec::new();
    for province in ["heilongjiang", "sichuan", "henan"] {
        for role in DEMO_ROLES {
            let login = format!("{province}-{role}");
            let r = http
                .post(format!("{base}/api/v1/login"))
                .json(&serde_json::json!({"login": login, "password": "ykt-demo-2023"}))
                .send()
                .expect("login");
            assert_eq!(r.status(), 200, "{login} logs in");
            let v: serde_json::Value = r.json().expect("login answer");
            let token = v["token"].as_str().expect("token").to_owned();
            let get = |path: &str| {
                let req = http.get(format!("{base}{path}"));
                let req = if path.starts_with("/api/") {
                    req.bearer_auth(&token)
                } else {
                    req.header("cookie", format!("ykt_session={token}"))
                };
                let r = req.send().expect("get");
                let status = r.status();
                (status, r.bytes().map(|b| b.to_vec()).unwrap_or_default())
            };
            let (_, list) = get(&format!("/api/v1/batches?province={province}"));
            let list: serde_json::Value = serde_json::from_slice(&list).unwrap_or_default();
            let ids: Vec<i64> = list["batches"]
                .as_array()
                .map(|a| a.iter().filter_map(|b| b["id"].as_i64()).collect())
                .unwrap_or_default();
            if *role == "admin" {
                assert!(ids.len() >= 2, "{province}: the demo's batches: {list}");
            }
            for route in &routes {
                let subs: Vec<(String, Option<i64>)> = if route.contains("{id}") {
                    ids.iter()
                        .map(|id| (route.replace("{id}", &id.to_string()), Some(*id)))
                        .collect()
                } else {
                    vec![(route.replace("{login}", &login), None)]
                };
                for (path, _) in subs {
                    if path.contains('{') {
                        continue;
                    }
                    let (status, bytes) = get(&path);
                    let exempt = FULL_DATA.contains(role) && line_views.contains(route);
                    got.push((
                        format!("console {login} GET {path} ({status})"),
                        text_of(&bytes),
                        exempt,
                    ));
                }
            }
        }
    }
    got
}

/// Console responses: (what, body, exempt).
type ConsoleResponses = Vec<(String, String, bool)>;

/// The portal's responses, the console's, and the server's log.
fn portal_responses(
    dir: &Path,
    lookups: &[(String, String)],
) -> (Vec<(String, String)>, ConsoleResponses, String) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = dir.join("serve.log");
    let mut server = ykt(dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::from(
            std::fs::File::create(dir.join("serve.out")).expect("out"),
        ))
        .stderr(Stdio::from(std::fs::File::create(&log).expect("log")))
        .spawn()
        .expect("serve");
    let http = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("client");
    let up = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        http.get(format!("{base}/healthz")).send().is_ok()
    });
    let mut got = Vec::new();
    let mut console = Vec::new();
    if up {
        let get = |path: &str, got: &mut Vec<(String, String)>| -> String {
            let body = http
                .get(format!("{base}{path}"))
                .send()
                .and_then(|r| r.text())
                .unwrap_or_default();
            got.push((format!("GET {path}"), body.clone()));
            body
        };
        for p in [
            "/portal/",
            "/portal/policies",
            "/portal/lookup",
            "/api/v1/public/policies",
        ] {
            get(p, &mut got);
        }
        let notices = get("/portal/notices", &mut got);
        let api = get("/api/v1/public/notices", &mut got);
        let mut ids: BTreeSet<String> = BTreeSet::new();
        for piece in notices.split("/portal/notices/").skip(1) {
            let id: String = piece.chars().take_while(|c| *c != '"').collect();
            if !id.is_empty() {
                ids.insert(id);
            }
        }
        assert!(
            !ids.is_empty(),
            "the portal lists the demo's notices: {notices}"
        );
        assert!(api.contains("notices"), "{api}");
        for id in &ids {
            get(&format!("/portal/notices/{id}"), &mut got);
            get(&format!("/api/v1/public/notices/{id}"), &mut got);
        }
        for (id, name) in lookups {
            let r = http
                .post(format!("{base}/api/v1/public/lookup"))
                .json(&serde_json::json!({ "id": id, "name": name }))
                .send()
                .and_then(|r| r.text())
                .unwrap_or_default();
            got.push(("POST /api/v1/public/lookup".into(), r));
            let r = http
                .post(format!("{base}/portal/lookup"))
                .form(&[("id", id.as_str()), ("name", name.as_str())])
                .send()
                .and_then(|r| r.text())
                .unwrap_or_default();
            got.push(("POST /portal/lookup".into(), r));
        }
        console = console_responses(&http, &base);
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        up,
        "ykt serve did not come up: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    (
        got,
        console,
        std::fs::read_to_string(&log).unwrap_or_default(),
    )
}

#[test]
fn no_full_identifier_leaves_the_department_unmasked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let demo = ykt(dir)
        .args(["demo", "--lines", "60", "--out", "out"])
        .output()
        .expect("demo");
    let stdout = String::from_utf8_lossy(&demo.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&demo.stderr).into_owned();
    assert_eq!(demo.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("DEBUG"), "debug logging was on");
    let out = dir.join("out");
    let known = known_identifiers(&out);
    assert!(
        known.len() > 300,
        "{} identifiers in the inputs",
        known.len()
    );

    // Lookups with real pairs: beneficiaries of the demo's rosters.
    let mut lookups = Vec::new();
    for p in ["heilongjiang", "sichuan", "henan"] {
        let f = out.join(p).join("发放清册.xlsx");
        if let Ok(r) = ykt_files::RosterReader::open(&f) {
            for l in r.flatten().take(2) {
                let id = l
                    .get(ykt_kernel::Column::ResidentId)
                    .unwrap_or("")
                    .to_owned();
                let name = l.get(ykt_kernel::Column::Name).unwrap_or("").to_owned();
                lookups.push((id, name));
            }
        }
    }
    let (responses, console, serve_log) = portal_responses(dir, &lookups);
    assert!(responses.len() > 10, "{} portal responses", responses.len());

    let mut swept: Vec<(String, String)> = vec![
        ("demo stdout".into(), stdout),
        ("demo stderr (debug log)".into(), stderr),
        ("serve log".into(), serve_log),
    ];
    swept.extend(responses);
    let mut all = Vec::new();
    files(&out, &mut all);
    let mut exempt_hits = 0;
    let mut exempt_files = 0;
    for f in &all {
        let rel = f.strip_prefix(&out).unwrap().to_string_lossy().into_owned();
        let text = text_of(&std::fs::read(f).expect("read"));
        if allowed(&rel).is_some() {
            exempt_files += 1;
            exempt_hits += digit_runs(&text)
                .into_iter()
                .filter(|r| is_identifier(r, &known))
                .count();
        } else {
            swept.push((format!("out/{rel}"), text));
        }
    }
    // The sweep can see identifiers: the exempt files (inputs, bank and treasury files) are
    // full of them.
    assert!(
        exempt_hits > 500,
        "{exempt_hits} identifiers in {exempt_files} exempt files"
    );

    let mut leaks = Vec::new();
    for (what, text) in &swept {
        for r in digit_runs(text) {
            if is_identifier(r, &known) {
                let masked = ykt_kernel::mask::mask_middle(r, 4, 4);
                leaks.push(format!("{what}: {masked}"));
            }
        }
    }
    eprintln!(
        "swept {} outputs ({} files under out/, {} exempt)",
        swept.len(),
        all.len() - exempt_files,
        exempt_files
    );
    assert!(
        leaks.is_empty(),
        "{} unmasked identifiers:\n{}",
        leaks.len(),
        leaks.join("\n")
    );

    // The console of every province after the whole cycle: nothing unmasked except the
    // department's own staff's views of a batch's lines, which must hold identifiers (so the
    // detector sees them there).
    let mut console_exempt_hits = 0;
    let mut console_leaks = Vec::new();
    for (what, text, exempt) in &console {
        for r in digit_runs(text) {
            if is_identifier(r, &known) {
                if *exempt {
                    console_exempt_hits += 1;
                } else {
                    console_leaks.push(format!(
                        "{what}: {}",
                        ykt_kernel::mask::mask_middle(r, 4, 4)
                    ));
                }
            }
        }
    }
    let ok = console
        .iter()
        .filter(|(w, _, _)| w.ends_with("(200 OK)"))
        .count();
    // A refunded line as the JSON API shows it (`"state":"refunded"`).
    let refunds = console
        .iter()
        .filter(|(w, t, _)| w.contains("/lines (200") && t.contains("\"refunded\""))
        .count();
    eprintln!(
        "console: {} responses ({ok} 200 OK) of 24 logins × 3 provinces' batches, {console_exempt_hits} identifiers in the department's own line views, {refunds} line lists holding refunded lines, {} leaks",
        console.len(),
        console_leaks.len()
    );
    assert!(console.len() > 300, "{} console responses", console.len());
    assert!(
        refunds > 0,
        "the demo's refunded lines were among the pages swept"
    );
    assert!(
        console_exempt_hits > 100,
        "the sweep sees identifiers where they are allowed: {console_exempt_hits}"
    );
    assert!(
        console_leaks.is_empty(),
        "{} unmasked identifiers in the console:\n{}",
        console_leaks.len(),
        console_leaks.join("\n")
    );
}

/// Every identifier-shaped cell of the scenario's files the console imports (card registry,
/// death register, roster): IDs and accounts (16-19 digits) and phones (11).
#[cfg(feature = "province-heilongjiang")]
fn scenario_identifiers() -> BTreeSet<String> {
    let mut known = BTreeSet::new();
    for f in ["registry.csv", "deaths.csv", "roster.csv"] {
        let mut t = ykt_files::TableReader::open(&web_common::scenario().join(f)).expect(f);
        while let Some(Ok(row)) = t.next_row() {
            for cell in &row.cells {
                let shaped =
                    matches!(cell.len(), 16..=19) || (cell.len() == 11 && cell.starts_with('1'));
                if shaped && cell.bytes().all(|b| b.is_ascii_digit() || b == b'X') {
                    known.insert(cell.clone());
                }
            }
        }
    }
    known
}

#[cfg(feature = "province-heilongjiang")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_full_identifier_in_the_console_pages_and_exports() {
    use ykt_kernel::Role;
    const ROLES: &[Role] = &[
        Role::TownshipClerk,
        Role::DeptMaker,
        Role::DeptHead,
        Role::FinanceReviewer,
        Role::Hrss,
        Role::BankOperator,
        Role::Auditor,
        Role::Admin,
    ];
    let users: Vec<(String, &str)> = ROLES
        .iter()
        .map(|r| (format!("u-{}", r.as_str()), r.as_str()))
        .collect();
    let mut refs: Vec<(&str, &str, &str)> = vec![("maker", "dept_maker", "230102")];
    refs.extend(users.iter().map(|(l, r)| (l.as_str(), *r, "230102")));
    let env = web_common::prepared(&refs);
    let sims = ykt_sim::heilongjiang::HljSims::start(
        ykt_sim::heilongjiang::BankConfig {
            name: "中国工商银行".into(),
            seed: 2,
            fail_share: 0.25,
            duplicate: false,
            reorder: false,
            partial: false,
            cross_bank_fee_fen: 150,
        },
        chrono::NaiveDate::from_ymd_opt(2023, 5, 20).unwrap(),
    )
    .await
    .unwrap();
    let mut cfg = env.config();
    cfg.province_settings = serde_json::json!({ "budget_url": sims.budget.url() });
    let srv = web_common::serve(&cfg, |_| {}).await;
    let base = srv.base.clone();
    let mut sessions = Vec::new();
    for (login, role) in &users {
        let (token, _) = web_common::login(&base, login, web_common::PASSWORD)
            .await
            .unwrap();
        sessions.push((*role, token));
    }
    let maker = web_common::login(&base, "maker", web_common::PASSWORD)
        .await
        .unwrap()
        .0;
    let finance = sessions
        .iter()
        .find(|(r, _)| *r == "finance_reviewer")
        .unwrap()
        .1
        .clone();
    let routes = get_routes();
    let paths: Vec<String> = routes
        .iter()
        .filter_map(|p| {
            let p = p.replace("{id}", "1").replace("{login}", "maker");
            (!p.contains('{')).then_some(p)
        })
        .collect();
    let http = web_common::client();
    let mut swept: Vec<(String, String)> = Vec::new();
    let mut fetch = async |stage: &str| {
        for (role, token) in &sessions {
            for path in &paths {
                let req = http.get(format!("{base}{path}"));
                let req = if path.starts_with("/api/") {
                    req.bearer_auth(token)
                } else {
                    req.header("cookie", format!("ykt_session={token}"))
                };
                let r = req.send().await.unwrap();
                let status = r.status();
                let bytes = r.bytes().await.unwrap();
                swept.push((
                    format!("{stage}: {role} GET {path} ({status})"),
                    text_of(&bytes),
                ));
            }
        }
    };
    let step = async |who: &str, step: &str| {
        let r = web_common::client()
            .post(format!("{base}/api/v1/batches/1/steps/{step}"))
            .bearer_auth(who)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        let st = r.status();
        assert!(st.is_success(), "{step}: {st} {}", r.text().await.unwrap());
    };
    fetch("draft").await;
    step(&maker, "submit_plan").await;
    fetch("submitted").await;
    step(&maker, "request_payment").await;
    fetch("payment requested").await;
    step(&finance, "finance_approve").await;
    fetch("paid to the bank").await;
    let collected = yikatong::provinces::heilongjiang::collect_due(&cfg, &srv.store)
        .await
        .unwrap();
    assert!(!collected.is_empty(), "the batch's results were collected");
    fetch("results collected").await;
    let exports = swept
        .iter()
        .filter(|(w, t)| w.contains("lines.xlsx") && w.contains("200") && !t.is_empty())
        .count();
    assert!(exports >= 5, "the line export was fetched: {exports}");
    let known = scenario_identifiers();
    assert!(known.len() > 30, "{} identifiers", known.len());
    // The department's own staff (township clerk, department maker and head: `sees_full_data`)
    // work with the full lines inside the console: the batch's line views and export are
    // theirs. Everything else, and everything any other role sees, is swept.
    let full_data = ["township_clerk", "dept_maker", "dept_head"];
    let line_views = [
        "GET /batches/1 ",
        "GET /batches/1/lines.xlsx ",
        "GET /api/v1/batches/1/lines ",
    ];
    let mut leaks = BTreeSet::new();
    let mut exempt_hits = 0;
    for (what, text) in &swept {
        let exempt = full_data
            .iter()
            .any(|r| what.contains(&format!(": {r} GET")))
            && line_views.iter().any(|v| what.contains(v));
        for r in digit_runs(text) {
            if is_identifier(r, &known) {
                if exempt {
                    exempt_hits += 1;
                } else {
                    let masked = ykt_kernel::mask::mask_middle(r, 4, 4);
                    leaks.insert(format!("{what}: {masked}"));
                }
            }
        }
    }
    assert!(
        exempt_hits > 100,
        "the sweep sees identifiers where they are allowed: {exempt_hits}"
    );
    let ok = swept.iter().filter(|(w, _)| w.contains("(200 OK)")).count();
    eprintln!(
        "console sweep: {} responses ({ok} 200 OK) over {} paths × {} roles × 5 stages, {exempt_hits} identifiers in the department's own line views, {} leaks",
        swept.len(),
        paths.len(),
        sessions.len(),
        leaks.len()
    );
    assert!(
        leaks.is_empty(),
        "{} unmasked identifiers:\n{}",
        leaks.len(),
        leaks.into_iter().collect::<Vec<_>>().join("\n")
    );
}
