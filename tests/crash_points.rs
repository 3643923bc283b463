//! The crash-point matrix (issue #9, "Faults"): a real `ykt` process is crashed at every
//! commit boundary of a province's payment cycle, then the cycle is resumed by running the
//! next command an operator would run, to the end. After each run: no line lost, none paid
//! twice (the simulated bank's own books against the store), the ledger balanced, the control
//! totals equal, and the outcome identical to the same cycle without a crash.
//!
//! The points are `ykt_store::failpoints::POINTS` (compiled into the test build of `ykt`
//! only). A tracing run of the whole cycle lists every occurrence of every point; each
//! occurrence is then crashed in turn, both ways: `kill -9` of the child while it waits at
//! the point, and the point's panic. Each province's own cycle, driven from the CLI as in
//! its `*_cli` test ([`Prov`] says which command comes next in each state):
//!
//! - Heilongjiang (budget system and treasury agent bank as a separate simulator process, a
//!   quarter of the accounts failing): import, plan, funding request, approval, payment,
//!   results, correction, re-payment, refund, reconciliation, publication.
//! - Sichuan (treasury as a separate simulator process, the cooperating bank behind the file
//!   drop, one round of its work a command, its first result file truncated, one account
//!   closed): import, publicity with an objection raised and resolved, township submission,
//!   department review, plan declaration, procedural review, funding of the zero-balance
//!   account, disbursement, the instruction file, results, refund (a red-letter voucher),
//!   post-payment publicity with the dual verification, closing.
//! - Henan (the budget system as a separate simulator process, `ykt serve` with the bank
//!   interface as another `ykt` process under test, the agent bank pulling the detail and
//!   posting results by hand with `ykt henan bank-sim`, its connection dropping, results
//!   repeated, a third of first attempts failing): import, application, finance review, the
//!   order pushed to the budget system, funding, release for pulling, the bank's pulls and
//!   posts, corrections (signed), re-pulls, refunds, hand-over checks, reconciliation,
//!   publication. A crash point reached in the server kills the server (`kill -9`, or its
//!   panic, then the process killed as a supervisor would); it is started again before the
//!   next command.
//!
//! By default one occurrence of each point in each mode, on one seed (CI); the whole matrix
//! with `CRASH_MATRIX_FULL=1` (every occurrence, both modes, `CRASH_MATRIX_SEEDS` seeds,
//! default 3, from `CRASH_MATRIX_FIRST_SEED`, default 0). `CRASH_MATRIX_ONLY=<prefix>` keeps
//! the points with that prefix.
#![cfg(any(
    feature = "province-heilongjiang",
    feature = "province-sichuan",
    feature = "province-henan"
))]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use ykt_kernel::{BatchState, Fen, LineState};
use ykt_store::failpoints::POINTS;

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/standard")
}

/// The `ykt` under test (`CRASH_MATRIX_BIN` runs a copy, so that a long matrix run is not
/// disturbed by a rebuild).
fn ykt_bin() -> String {
    std::env::var("CRASH_MATRIX_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ykt").to_owned())
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// A province's cycle under the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prov {
    #[cfg(feature = "province-heilongjiang")]
    Heilongjiang,
    #[cfg(feature = "province-sichuan")]
    Sichuan,
    #[cfg(feature = "province-henan")]
    Henan,
}

impl Prov {
    /// Whether the cycle must reach `point` (the generic points and the province's own).
    fn reaches(self, point: &str) -> bool {
        let own = match self {
            #[cfg(feature = "province-heilongjiang")]
            Prov::Heilongjiang => "hlj.",
            #[cfg(feature = "province-sichuan")]
            Prov::Sichuan => "sichuan.",
            #[cfg(feature = "province-henan")]
            Prov::Henan => "henan.",
        };
        let province_specific = ["hlj.", "sichuan.", "henan."]
            .iter()
            .any(|p| point.starts_with(p));
        let generic_here = match self {
            // Sichuan corrects no line (its only failure is a closed account, refunded).
            #[cfg(feature = "province-sichuan")]
            Prov::Sichuan => !point.starts_with("correct."),
            #[allow(unreachable_patterns)]
            _ => true,
        };
        if province_specific {
            point.starts_with(own)
        } else {
            generic_here
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Kill,
    Panic,
}

/// Where to crash: the `nth` occurrence of `point`.
#[derive(Debug, Clone)]
struct Crash {
    point: &'static str,
    nth: u64,
    mode: Mode,
}

struct Sim(Child);
impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ykt serve` of a Henan run: the bank interface, a `ykt` process under test like the
/// commands. A crash point reached in it (its `YKT-FAILPOINT` line, or its panic) kills it.
#[cfg(feature = "province-henan")]
struct Server {
    child: std::sync::Arc<std::sync::Mutex<Child>>,
    url: String,
    crashed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[cfg(feature = "province-henan")]
impl Server {
    fn alive(&self) -> bool {
        self.child
            .lock()
            .unwrap()
            .try_wait()
            .is_ok_and(|s| s.is_none())
    }
}

#[cfg(feature = "province-henan")]
impl Drop for Server {
    fn drop(&mut self) {
        let mut c = self.child.lock().unwrap();
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// One run of the cycle in its own directory, against its own simulators.
struct Run {
    prov: Prov,
    /// The simulators' seed (the bank's rounds of Sichuan and Henan are commands of the cycle).
    #[cfg_attr(
        not(any(feature = "province-sichuan", feature = "province-henan")),
        allow(dead_code)
    )]
    seed: u64,
    dir: tempfile::TempDir,
    /// Environment of every `ykt` command of the run (the peers' addresses).
    env: Vec<(String, String)>,
    /// The peer's books (`GET`), for the checks.
    books_url: String,
    _sim: Sim,
    trace: Option<PathBuf>,
    crash: Option<Crash>,
    counter: PathBuf,
    /// The command that crashed, once it did.
    crashed_at: Option<String>,
    /// What ran, for the failure message.
    log: Vec<String>,
    rt: tokio::runtime::Runtime,
    /// The last command of the cycle.
    #[cfg_attr(not(feature = "province-henan"), allow(dead_code))]
    last: Vec<String>,
    /// Hand-overs the department disputed (Henan).
    disputed: u32,
    #[cfg(feature = "province-henan")]
    server: Option<Server>,
    /// The cycle's batch, once the roster is imported (0 before). Not always 1: on PostgreSQL
    /// an import killed before its commit still used up its sequence numbers.
    batch: i64,
    /// The run's PostgreSQL database (a copy of the template's), dropped with the run; `None`
    /// on SQLite (the file in the run's directory).
    pg: Option<(String, String)>,
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some((_, database)) = self.pg.take() {
            #[cfg(feature = "province-henan")]
            drop(self.server.take());
            self.rt
                .block_on(ykt_store::testing::drop_test_database(&database));
        }
    }
}

/// The database the matrix runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Db {
    Sqlite,
    Postgres,
}

/// The prepared directory every run copies (registers imported, users added) and, on
/// PostgreSQL, the prepared database every run copies; the database is dropped with it.
struct Template {
    dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl Template {
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Template {
    fn drop(&mut self) {
        if let Some((_, database)) = self.pg.take() {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(ykt_store::testing::drop_test_database(&database));
        }
    }
}

enum Ran {
    Exit(i32, String, String),
    Crashed,
}

/// A command of the cycle and the platform's date it runs on.
struct Step {
    args: Vec<String>,
    today: &'static str,
}

fn step(today: &'static str, args: &[&str]) -> Option<Step> {
    Some(Step {
        args: strings(args),
        today,
    })
}

#[cfg(any(feature = "province-sichuan", feature = "province-henan"))]
/// Start a simulator process; wait for a line on its stdout that `ready` accepts, keep the
/// values it returns, and drain the rest.
fn spawn_sim(
    mut c: Command,
    dir: &Path,
    mut ready: impl FnMut(&str) -> bool,
) -> (Sim, Vec<String>) {
    let mut child = c
        .current_dir(dir)
        .env_remove("YKT_CONFIG")
        .env_remove("YKT_DATABASE_URL")
        .env_remove("YKT_MASTER_KEY")
        .env_remove("YKT_PROVINCE")
        .env_remove("YKT_PROVINCE_SETTINGS")
        .env_remove("FAILPOINTS")
        .env_remove("FAILPOINT_TRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = ready(&line);
        seen.push(line);
        if done {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (Sim(child), seen)
}

#[cfg(feature = "province-heilongjiang")]
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Run {
    fn start(prov: Prov, template: &Template, seed: u64) -> Run {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(template.path(), dir.path());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let pg = template.pg.as_ref().map(|(_, tmpl)| {
            rt.block_on(ykt_store::testing::copy_postgres_database(
                tmpl,
                &format!("crash_{prov:?}"),
            ))
            .expect("copy the template database")
        });
        let (sim, mut env, books_url) = match prov {
            #[cfg(feature = "province-heilongjiang")]
            Prov::Heilongjiang => {
                // Free ports are picked, then bound by the simulator: another process may take
                // one in between (then the simulator exits at once), so a simulator that is gone
                // is started again on two other ports; one that is slow (a loaded machine) gets
                // a minute.
                let (mut child, mut bp, mut kp);
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    (bp, kp) = (free_port(), free_port());
                    let mut c = Command::new(ykt_bin());
                    c.args([
                        "heilongjiang",
                        "sim",
                        "--budget-port",
                        &bp.to_string(),
                        "--bank-port",
                        &kp.to_string(),
                        "--seed",
                        &seed.to_string(),
                        "--fail-share",
                        "0.25",
                        "--bank-name",
                        "中国工商银行",
                    ])
                    .env("YKT_TODAY", "2023-05-20");
                    child = c
                        .current_dir(dir.path())
                        .env_remove("FAILPOINTS")
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap();
                    let start = Instant::now();
                    let mut up = false;
                    while start.elapsed() < Duration::from_secs(60) {
                        if std::net::TcpStream::connect(("127.0.0.1", kp)).is_ok()
                            && std::net::TcpStream::connect(("127.0.0.1", bp)).is_ok()
                        {
                            up = true;
                            break;
                        }
                        if child.try_wait().ok().flatten().is_some() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    if up {
                        break;
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    assert!(attempt < 3, "simulator did not start (3 attempts)");
                }
                (
                    Sim(child),
                    vec![(
                        "YKT_PROVINCE_SETTINGS".to_owned(),
                        format!("{{budget_url=\"http://127.0.0.1:{bp}\"}}"),
                    )],
                    format!("http://127.0.0.1:{kp}/books"),
                )
            }
            #[cfg(feature = "province-sichuan")]
            Prov::Sichuan => {
                // The treasury (and SMS gateway) only: the bank's rounds are commands of the
                // cycle (`sichuan sim --once`), so this process's bank watches a drop no one
                // writes to.
                let mut c = Command::new(ykt_bin());
                c.args([
                    "sichuan",
                    "sim",
                    "--dir",
                    dir.path().join("idle-drop").to_str().unwrap(),
                    "--treasury-listen",
                    "127.0.0.1:0",
                    "--sms-listen",
                    "127.0.0.1:0",
                ]);
                let mut treasury = String::new();
                let (sim, _) = spawn_sim(c, dir.path(), |l| {
                    if let Some(u) = l.strip_prefix("treasury_url = ") {
                        treasury = u.trim_matches('"').to_owned();
                    }
                    l.starts_with("sms_url")
                });
                assert!(!treasury.is_empty(), "the simulator reports its address");
                let bank = dir.path().join("bank");
                std::fs::create_dir_all(&bank).unwrap();
                std::fs::write(
                    dir.path().join("ykt.toml"),
                    format!(
                        "province = \"sichuan\"\n\n[province_settings]\ntreasury_url = \"{treasury}\"\nbank_dir = \"{}\"\npublicity_days = 3\n",
                        bank.display()
                    ),
                )
                .unwrap();
                (sim, Vec::new(), format!("{treasury}/ledger"))
            }
            #[cfg(feature = "province-henan")]
            Prov::Henan => {
                let mut c = Command::new(ykt_bin());
                c.args(["henan", "budget-sim", "--listen", "127.0.0.1:0"])
                    .env("YKT_TODAY", "2023-05-20");
                let mut budget = String::new();
                let (sim, _) = spawn_sim(c, dir.path(), |l| {
                    budget = address_in(l).unwrap_or_default();
                    !budget.is_empty()
                });
                std::fs::write(
                    dir.path().join("ykt.toml"),
                    format!("[province_settings.henan]\nbudget_url = \"{budget}\"\n"),
                )
                .unwrap();
                (sim, Vec::new(), format!("{budget}/budget/v1/refunds"))
            }
        };
        let counter = dir.path().join("failpoint.count");
        if let Some((url, _)) = &pg {
            env.push(("YKT_DATABASE_URL".to_owned(), url.clone()));
        }
        Run {
            prov,
            seed,
            dir,
            env,
            books_url,
            _sim: sim,
            trace: None,
            crash: None,
            counter,
            crashed_at: None,
            log: Vec::new(),
            rt,
            last: Vec::new(),
            disputed: 0,
            #[cfg(feature = "province-henan")]
            server: None,
            batch: 0,
            pg,
        }
    }

    /// Henan: start `ykt serve` if it is not running (first, or after it crashed).
    #[cfg(feature = "province-henan")]
    fn ensure_server(&mut self) {
        if self.prov != Prov::Henan || self.server.as_ref().is_some_and(Server::alive) {
            return;
        }
        self.server = None;
        let mut child = self
            .cmd(&["serve", "--listen", "127.0.0.1:0"], "2023-05-20")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut url = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(u) = address_in(&line) {
                url = Some(u);
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let child = std::sync::Arc::new(std::sync::Mutex::new(child));
        let crashed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, k) = (child.clone(), crashed.clone());
        std::thread::spawn(move || {
            let mut panicked = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                panicked |= line.contains("panicked");
                if line.starts_with("YKT-FAILPOINT ") || (panicked && line.contains("failpoint")) {
                    k.store(true, std::sync::atomic::Ordering::SeqCst);
                    // `kill -9` (after a panic too: a supervisor restarts the server).
                    let _ = c.lock().unwrap().kill();
                }
            }
        });
        self.server = Some(Server {
            child,
            url: url.expect("ykt serve reports its address"),
            crashed,
        });
    }

    fn cmd(&self, args: &[&str], today: &str) -> Command {
        let mut c = Command::new(ykt_bin());
        c.args(args)
            .current_dir(self.dir.path())
            .env_remove("YKT_CONFIG")
            .env_remove("YKT_DATABASE_URL")
            .env_remove("YKT_MASTER_KEY")
            .env_remove("YKT_PROVINCE")
            .env_remove("YKT_PROVINCE_SETTINGS")
            .env_remove("FAILPOINTS")
            .env_remove("FAILPOINT_TRACE")
            .env("YKT_TODAY", today)
            .env("RUST_BACKTRACE", "0");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        if let Some(t) = &self.trace {
            c.env("FAILPOINT_TRACE", t);
        }
        if let (Some(k), None) = (&self.crash, &self.crashed_at) {
            let action = match k.mode {
                Mode::Kill => "return",
                Mode::Panic => "panic",
            };
            c.env("FAILPOINTS", format!("{}={action}", k.point))
                .env("FAILPOINT_NTH", k.nth.to_string())
                .env("FAILPOINT_COUNT", &self.counter);
        }
        c
    }

    /// Run a command; when it reaches the configured crash point, crash it there. Exit codes
    /// other than 0 and 1 (an error, not a refusal) fail the test.
    fn ykt(&mut self, args: &[&str], today: &str) -> Ran {
        let r = self.ykt_any(args, today);
        if !matches!(args.first(), Some(&"batch"))
            || !matches!(args.get(1), Some(&"show" | &"lines"))
        {
            self.log.push(match &r {
                Ran::Crashed => format!("ykt {} → CRASHED", args.join(" ")),
                Ran::Exit(c, out, err) => format!(
                    "ykt {} → {c} {} {}",
                    args.join(" "),
                    out.lines().last().unwrap_or(""),
                    err.lines().next().unwrap_or("")
                ),
            });
        }
        // The bank's own process fails (exit 2) when the server it talks to was killed.
        let peer = args.get(1) == Some(&"bank-sim");
        if let Ran::Exit(code, out, err) = &r {
            assert!(
                *code == 0 || *code == 1 || (peer && *code == 2),
                "ykt {args:?} failed with {code}:\nstdout:\n{out}\nstderr:\n{err}"
            );
        }
        r
    }

    fn ykt_any(&mut self, args: &[&str], today: &str) -> Ran {
        #[cfg(feature = "province-henan")]
        self.ensure_server();
        let armed = self.crash.is_some() && self.crashed_at.is_none();
        let mut child = self
            .cmd(args, today)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel::<()>();
        let stderr = child.stderr.take().unwrap();
        let err_reader = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("YKT-FAILPOINT ") {
                    let _ = tx.send(());
                }
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        let stdout = child.stdout.take().unwrap();
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(stdout), &mut s);
            s
        });
        let start = Instant::now();
        let status = loop {
            if rx.try_recv().is_ok() {
                // `kill -9`: SIGKILL, no destructor, no rollback, no flush.
                child.kill().unwrap();
                child.wait().unwrap();
                let _ = err_reader.join();
                let _ = out_reader.join();
                self.crashed_at = Some(args.join(" "));
                return Ran::Crashed;
            }
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "ykt {args:?} hangs"
            );
            std::thread::sleep(Duration::from_millis(2));
        };
        let err = err_reader.join().unwrap();
        let out = out_reader.join().unwrap();
        let code = status.code().unwrap_or(-1);
        #[cfg(feature = "province-henan")]
        if armed
            && self
                .server
                .as_ref()
                .is_some_and(|s| s.crashed.load(std::sync::atomic::Ordering::SeqCst))
        {
            self.crashed_at = Some(format!("serve, during `ykt {}`", args.join(" ")));
            return Ran::Crashed;
        }
        if armed && code == 101 && err.contains("panicked") && err.contains("failpoint") {
            self.crashed_at = Some(args.join(" "));
            return Ran::Crashed;
        }
        Ran::Exit(code, out, err)
    }

    fn state(&mut self) -> Option<BatchState> {
        if self.batch == 0 {
            let out = match self.ykt_any(&["batch", "list", "--json"], "2023-05-20") {
                Ran::Exit(0, out, _) => out,
                _ => unreachable!("listing batches crosses no crash point"),
            };
            let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
            assert!(list.len() <= 1, "one roster makes one batch: {out}");
            self.batch = list.first()?["id"].as_i64().unwrap();
        }
        match self.ykt_any(
            &["batch", "show", &self.batch.to_string(), "--json"],
            "2023-05-20",
        ) {
            Ran::Exit(0, out, _) => {
                let b: serde_json::Value = serde_json::from_str(&out).unwrap();
                Some(BatchState::parse(b["batch"]["state"].as_str().unwrap()).unwrap())
            }
            Ran::Exit(..) => None,
            Ran::Crashed => unreachable!("reading a batch crosses no crash point"),
        }
    }

    /// `(line id, state, attempt)` of the batch's lines.
    fn lines(&mut self) -> Vec<(i64, LineState, u32)> {
        let out = match self.ykt(&["batch", "lines", &self.batch.to_string()], "2023-05-20") {
            Ran::Exit(0, out, _) => out,
            _ => unreachable!("listing lines crosses no crash point"),
        };
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let id: i64 = l.split_whitespace().next().unwrap().parse().unwrap();
                let state = [
                    LineState::Pending,
                    LineState::InFlight,
                    LineState::Credited,
                    LineState::Failed,
                    LineState::Refunded,
                ]
                .into_iter()
                .find(|s| l.contains(&format!(" {} ", s.label_zh())))
                .unwrap_or_else(|| panic!("no state in {l}"));
                let attempt: u32 = l
                    .rsplit_once('第')
                    .and_then(|(_, r)| r.split_once('次'))
                    .map(|(n, _)| n.parse().unwrap())
                    .unwrap();
                (id, state, attempt)
            })
            .collect()
    }

    /// The next command an operator runs for the batch's state, or `None` when it is closed.
    fn next_command(&mut self) -> Option<Step> {
        match self.prov {
            #[cfg(feature = "province-heilongjiang")]
            Prov::Heilongjiang => self.next_heilongjiang(),
            #[cfg(feature = "province-sichuan")]
            Prov::Sichuan => self.next_sichuan(),
            #[cfg(feature = "province-henan")]
            Prov::Henan => self.next_henan(),
        }
    }

    #[cfg(any(feature = "province-heilongjiang", feature = "province-sichuan"))]
    /// A failed line's next command: corrected once (its first attempt), else refunded.
    fn failed_line(&self, lines: &[(i64, LineState, u32)], correct: bool) -> Option<Vec<String>> {
        let id = self.batch.to_string();
        if correct {
            if let Some(l) = lines.iter().find(|l| l.1 == LineState::Failed && l.2 == 1) {
                return Some(strings(&[
                    "batch",
                    "correct",
                    &id,
                    &l.0.to_string(),
                    "--user",
                    "clerk",
                    "--reason",
                    "核实账户后重新支付",
                ]));
            }
        }
        lines.iter().find(|l| l.1 == LineState::Failed).map(|l| {
            strings(&[
                "batch",
                "refund",
                &id,
                &l.0.to_string(),
                "--user",
                "clerk",
                "--approver",
                "finance",
                "--reason",
                "账户无法入账，原渠道退回",
            ])
        })
    }

    #[cfg(any(feature = "province-heilongjiang", feature = "province-sichuan"))]
    fn import(&self, today: &'static str, province: Option<&str>) -> Option<Step> {
        let roster = scenario().join("roster.csv");
        let mut a = vec!["import", "roster", roster.to_str().unwrap()];
        if let Some(p) = province {
            a.extend(["--province", p]);
        }
        a.extend([
            "--project",
            "农村最低生活保障金",
            "--period",
            "2023-05",
            "--user",
            "clerk",
        ]);
        step(today, &a)
    }

    #[cfg(feature = "province-heilongjiang")]
    fn next_heilongjiang(&mut self) -> Option<Step> {
        let d = "2023-05-20";
        let Some(state) = self.state() else {
            return self.import(d, Some("heilongjiang"));
        };
        let id = self.batch.to_string();
        let hlj = |step_name: &str, user: &str| {
            step(d, &["heilongjiang", "step", &id, step_name, "--user", user])
        };
        match state {
            BatchState::Draft => hlj("submit_plan", "clerk"),
            BatchState::Submitted => hlj("push_plan", "system"),
            BatchState::PlanPushed => hlj("request_payment", "clerk"),
            BatchState::FundingRequested => hlj("finance_approve", "finance"),
            BatchState::Approved => hlj("treasury_pay", "system"),
            BatchState::Dispatched => {
                let lines = self.lines();
                let has = |s: LineState| lines.iter().any(|l| l.1 == s);
                if has(LineState::InFlight) {
                    step(d, &["heilongjiang", "collect", &id])
                } else if has(LineState::Pending) {
                    step(d, &["batch", "redispatch", &id, "--user", "clerk"])
                } else if let Some(args) = self.failed_line(&lines, true) {
                    Some(Step { args, today: d })
                } else {
                    step(d, &["heilongjiang", "collect", &id])
                }
            }
            BatchState::Settled => step(
                d,
                &[
                    "heilongjiang",
                    "step",
                    &id,
                    "reconcile",
                    "--user",
                    "finance",
                    "--out",
                    "清算",
                ],
            ),
            BatchState::Reconciled => hlj("publish", "clerk"),
            BatchState::Closed => None,
            other => panic!("unexpected state {other}"),
        }
    }

    #[cfg(feature = "province-sichuan")]
    fn next_sichuan(&mut self) -> Option<Step> {
        let Some(state) = self.state() else {
            return self.import("2023-05-08", None);
        };
        let id = self.batch.to_string();
        let batch_step = |today: &'static str, name: &str, user: &str| {
            step(today, &["batch", "step", &id, name, "--user", user])
        };
        match state {
            BatchState::Draft => batch_step("2023-05-08", "start_publicity", "township"),
            BatchState::Publicity => {
                // One objection raised during the publicity and resolved before the township
                // submits (乐山办法: objections are resolved before the list goes on).
                let objections = self.rt.block_on(async {
                    self.store()
                        .await
                        .sichuan_objections(self.batch)
                        .await
                        .unwrap()
                });
                match objections.iter().find(|o| o.status == "open") {
                    _ if objections.is_empty() => step(
                        "2023-05-09",
                        &[
                            "sichuan",
                            "objection",
                            "add",
                            &id,
                            "--by",
                            "村民王某",
                            "--text",
                            "询问名单是否完整",
                            "--user",
                            "township",
                        ],
                    ),
                    Some(o) => step(
                        "2023-05-11",
                        &[
                            "sichuan",
                            "objection",
                            "resolve",
                            &o.id.to_string(),
                            "--dismissed",
                            "--note",
                            "名单完整",
                            "--user",
                            "township",
                        ],
                    ),
                    None => batch_step("2023-05-11", "township_submit", "township"),
                }
            }
            BatchState::Submitted => batch_step("2023-05-12", "dept_review", "head"),
            BatchState::Reviewed | BatchState::Returned => {
                step("2023-05-12", &["sichuan", "plan", &id, "--user", "clerk"])
            }
            BatchState::FundingRequested => step(
                "2023-05-12",
                &["sichuan", "review", &id, "--user", "finance"],
            ),
            BatchState::Approved => step("2023-05-12", &["sichuan", "poll", "--batch", &id]),
            BatchState::Funded => batch_step("2023-05-12", "submit_disbursement", "clerk"),
            BatchState::DisbursementSubmitted => {
                batch_step("2023-05-12", "confirm_disbursement", "finance")
            }
            BatchState::DisbursementConfirmed => {
                batch_step("2023-05-12", "send_instruction", "clerk")
            }
            BatchState::Dispatched => {
                let lines = self.lines();
                let has = |s: LineState| lines.iter().any(|l| l.1 == s);
                let bank = self.dir.path().join("bank");
                if has(LineState::InFlight) && bank_has_work(&bank) {
                    // One round of the bank's work: instructions paid, rejected result files
                    // sent again.
                    let closed = closed_account();
                    let seed = self.seed.to_string();
                    step(
                        "2023-05-12",
                        &[
                            "sichuan",
                            "sim",
                            "--once",
                            "--dir",
                            bank.to_str().unwrap(),
                            "--seed",
                            &seed,
                            "--fail-account",
                            &format!("{closed}:account_closed"),
                            "--truncate-permille",
                            "1000",
                        ],
                    )
                } else if has(LineState::InFlight) {
                    step("2023-05-12", &["sichuan", "poll", "--batch", &id])
                } else if has(LineState::Pending) {
                    step(
                        "2023-05-12",
                        &["batch", "redispatch", &id, "--user", "clerk"],
                    )
                } else if let Some(args) = self.failed_line(&lines, false) {
                    Some(Step {
                        args,
                        today: "2023-05-12",
                    })
                } else {
                    step("2023-05-12", &["sichuan", "poll", "--batch", &id])
                }
            }
            BatchState::Settled => batch_step("2023-05-15", "post_publicity", "clerk"),
            BatchState::Reconciled => batch_step("2023-05-15", "close", "head"),
            BatchState::Closed => None,
            other => panic!("unexpected state {other}"),
        }
    }

    #[cfg(feature = "province-henan")]
    fn next_henan(&mut self) -> Option<Step> {
        let d = "2023-05-20";
        let Some(state) = self.state() else {
            let roster = scenario().join("roster.csv");
            return step(
                d,
                &[
                    "henan",
                    "import",
                    roster.to_str().unwrap(),
                    "--project",
                    "HN03",
                    "--period",
                    "2023-05",
                    "--user",
                    "clerk",
                ],
            );
        };
        let id = self.batch.to_string();
        let (order_no, unapplied, open_handover, unhanded) = self.rt.block_on(async {
            let store = self.store().await;
            let b = store.batch(self.batch).await.unwrap().unwrap();
            let unapplied = store
                .henan_unapplied_results(&b.order_no)
                .await
                .unwrap()
                .len();
            // The hand-over `check` takes next (the latest open one), and what the platform
            // found different in it.
            let handovers = store.henan_handovers(Some(&b.order_no)).await.unwrap();
            let open = handovers
                .iter()
                .rev()
                .find(|h| h.state == "open")
                .map(|h| h.discrepancy.clone());
            // Results the bank posted and has not handed over yet (its run was cut short).
            let last = handovers
                .iter()
                .filter(|h| h.state != "disputed")
                .map(|h| h.upto_post)
                .max()
                .unwrap_or(0);
            let (credited, failed, _) = store
                .henan_round_totals(&b.order_no, last, None)
                .await
                .unwrap();
            (
                b.order_no,
                unapplied,
                open,
                credited.count + failed.count > 0,
            )
        });
        // The agent bank pulls the open detail, posts its results and hands them over (its
        // connection drops after 3 lines; results come in shuffled chunks, half of them
        // twice).
        let bank_sim = |run: &Self, d| {
            let server = run.server.as_ref().map(|s| s.url.clone()).unwrap();
            let token = std::fs::read_to_string(run.dir.path().join("token.txt"))
                .unwrap()
                .trim()
                .to_owned();
            let seed = run.seed.to_string();
            step(
                d,
                &[
                    "henan",
                    "bank-sim",
                    "--url",
                    &server,
                    "--bank",
                    "ABC-HN",
                    "--token",
                    &token,
                    "--seed",
                    &seed,
                    "--state",
                    "bank-books.json",
                    "--fail-rate",
                    "0.3",
                    "--drop-after",
                    "3",
                    "--chunk",
                    "5",
                    "--repeat-rate",
                    "0.5",
                ],
            )
        };
        match state {
            BatchState::Draft | BatchState::Returned => {
                step(d, &["henan", "step", &id, "apply_funds", "--user", "clerk"])
            }
            BatchState::Submitted => step(d, &["henan", "review", &id, "--user", "finance"]),
            BatchState::Approved => step(
                d,
                &["henan", "step", &id, "push_order", "--user", "finance"],
            ),
            BatchState::PlanPushed | BatchState::Funded => step(d, &["henan", "sync"]),
            BatchState::Dispatched => {
                let lines = self.lines();
                let has = |s: LineState| lines.iter().any(|l| l.1 == s);
                let after_bank = self.last.get(1).is_some_and(|c| c == "bank-sim");
                if has(LineState::InFlight) && (unapplied > 0 || after_bank) {
                    step(d, &["henan", "sync"])
                } else if has(LineState::InFlight) {
                    bank_sim(self, d)
                } else if has(LineState::Pending) {
                    step(d, &["henan", "repull", &id, "--user", "clerk"])
                } else if let Some(l) = lines.iter().find(|l| l.1 == LineState::Failed && l.2 == 1)
                {
                    step(
                        d,
                        &[
                            "henan",
                            "correct",
                            &id,
                            &l.0.to_string(),
                            "--user",
                            "clerk",
                            "--head",
                            "head",
                            "--signed-by",
                            "本人 签字",
                            "--reason",
                            "已核实，账户已激活",
                        ],
                    )
                } else if let Some(l) = lines.iter().find(|l| l.1 == LineState::Failed) {
                    step(
                        d,
                        &[
                            "henan",
                            "refund",
                            &id,
                            &l.0.to_string(),
                            "--user",
                            "clerk",
                            "--approver",
                            "finance",
                            "--reason",
                            "账户已销户，原渠道退回",
                        ],
                    )
                } else {
                    step(d, &["henan", "sync"])
                }
            }
            BatchState::Settled => match open_handover {
                Some(found) if found.is_empty() => step(
                    d,
                    &["henan", "handover", "check", &order_no, "--user", "clerk"],
                ),
                // The platform found the bank's totals different from its records: the
                // department reports the error to the bank (第二十六条 "通知乙方采取补救措施").
                Some(_) => {
                    self.disputed += 1;
                    step(
                        d,
                        &[
                            "henan",
                            "handover",
                            "check",
                            &order_no,
                            "--user",
                            "clerk",
                            "--dispute",
                            "交接数与系统记录不符，请银行核实后重新交接",
                        ],
                    )
                }
                // The bank's run was cut short before its hand-over: it hands over on its next
                // run (a bank that never does makes the cycle fail to end).
                None if unhanded => bank_sim(self, d),
                None => step(d, &["henan", "reconcile", &id, "--user", "clerk"]),
            },
            BatchState::Reconciled => step(d, &["henan", "publish", &id, "--user", "clerk"]),
            BatchState::Closed => None,
            other => panic!("unexpected state {other}"),
        }
    }

    /// Drive the batch to the end, resuming after the crash like an operator would: look at
    /// the batch, run the next command. A command refused three times in a row is a cycle
    /// that cannot resume.
    fn drive(&mut self) {
        if let Err(e) = self.try_drive() {
            panic!("{e}");
        }
    }

    fn try_drive(&mut self) -> Result<(), String> {
        let mut last: Option<(Vec<String>, u32)> = None;
        for _ in 0..200 {
            let Some(Step { args: cmd, today }) = self.next_command() else {
                return Ok(());
            };
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            let import = args[0] == "import" || args.get(1) == Some(&"import");
            let ran = self.ykt(&args, today);
            self.last = cmd.clone();
            let refused = match ran {
                Ran::Exit(0, ..) | Ran::Crashed => None,
                // Rejected roster lines make the import exit 1; the batch exists after it.
                Ran::Exit(1, ..) if import => None,
                Ran::Exit(_, out, err) => Some(format!("{out}{err}")),
            };
            match (refused, &mut last) {
                (None, _) => last = None,
                (Some(why), Some((prev, n))) if *prev == cmd => {
                    *n += 1;
                    if *n >= 3 {
                        return Err(format!(
                            "{:?}: the cycle cannot resume after the crash at {:?} (in `ykt {}`): `ykt {}` refused three times:\n{why}\nlast commands:\n{}",
                            self.prov,
                            self.crash,
                            self.crashed_at.clone().unwrap_or_default(),
                            cmd.join(" "),
                            self.log[self.log.len().saturating_sub(12)..].join("\n")
                        ));
                    }
                }
                (Some(_), _) => last = Some((cmd, 1)),
            }
        }
        Err(format!(
            "{:?}: the cycle did not end in 200 commands after the crash at {:?}; last commands:\n{}",
            self.prov,
            self.crash,
            self.log[self.log.len().saturating_sub(12)..].join("\n")
        ))
    }

    async fn store(&self) -> ykt_store::Store {
        let cfg = yikatong::config::Config {
            database_url: match &self.pg {
                Some((url, _)) => url.clone(),
                None => format!("sqlite://{}", self.dir.path().join("data/ykt.db").display()),
            },
            key_file: self.dir.path().join("data/ykt.key"),
            ..Default::default()
        };
        yikatong::cli::open_store(&cfg, false).await.unwrap()
    }

    /// What the peer's own books say: per line, how many times it was credited; the money
    /// credited and refunded.
    #[allow(unused_assignments)] // each province's books fill what they have
    fn peer_books(&self) -> PeerBooks {
        let mut credited: BTreeMap<i64, u32> = BTreeMap::new();
        let mut credited_sum = 0i64;
        let mut refunded = 0i64;
        match self.prov {
            #[cfg(feature = "province-heilongjiang")]
            Prov::Heilongjiang => {
                let books: serde_json::Value = reqwest::blocking::get(&self.books_url)
                    .unwrap()
                    .json()
                    .unwrap();
                for p in books["payments"].as_array().unwrap() {
                    let c = p["credited_fen"].as_i64().unwrap();
                    if c > 0 {
                        *credited.entry(p["line_id"].as_i64().unwrap()).or_default() += 1;
                        credited_sum += c;
                    }
                }
                refunded = books["refunded"]
                    .as_object()
                    .unwrap()
                    .values()
                    .map(|v| v.as_i64().unwrap())
                    .sum();
            }
            #[cfg(feature = "province-henan")]
            Prov::Henan => {
                // The bank's books, kept between its runs: what it decided per line and
                // attempt, and its ledger of credits.
                let text =
                    std::fs::read_to_string(self.dir.path().join("bank-books.json")).unwrap();
                let state: serde_json::Value = serde_json::from_str(&text).unwrap();
                for o in state["outcomes"].as_array().unwrap() {
                    if o[2] == "credited" {
                        *credited.entry(o[0].as_i64().unwrap()).or_default() += 1;
                    }
                }
                credited_sum = state["ledger"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["amount_fen"].as_i64().unwrap())
                    .sum();
                // The budget system's refunds.
                let refunds: serde_json::Value = reqwest::blocking::get(&self.books_url)
                    .unwrap()
                    .json()
                    .unwrap();
                refunded = refunds
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["amount_fen"].as_i64().unwrap())
                    .sum();
            }
            #[cfg(feature = "province-sichuan")]
            Prov::Sichuan => {
                // The bank's copy of every result file it produced, one per instruction file
                // it paid: `D|n|line|attempt|account|amount|status(0 = credited)|...`.
                let sent = self.dir.path().join("bank/bank/sent");
                for e in std::fs::read_dir(&sent).unwrap() {
                    let bytes = std::fs::read(e.unwrap().path()).unwrap();
                    let (text, _, _) = encoding_rs::GB18030.decode(&bytes);
                    for l in text.lines().filter(|l| l.starts_with("D|")) {
                        let f: Vec<&str> = l.split('|').collect();
                        if f[6] == "0" {
                            *credited.entry(f[2].parse().unwrap()).or_default() += 1;
                            credited_sum += yuan_to_fen(f[5]);
                        }
                    }
                }
                // The treasury's red-letter vouchers paid back.
                let ledger: serde_json::Value = reqwest::blocking::get(&self.books_url)
                    .unwrap()
                    .json()
                    .unwrap();
                for v in ledger.as_array().unwrap() {
                    let a = v["amount"].as_i64().unwrap();
                    if a < 0 && v["status"] == "paid" {
                        refunded += -a;
                    }
                }
            }
        }
        PeerBooks {
            credited,
            credited_sum: Fen(credited_sum),
            refunded: Fen(refunded),
        }
    }
}

struct PeerBooks {
    credited: BTreeMap<i64, u32>,
    credited_sum: Fen,
    refunded: Fen,
}

#[cfg(feature = "province-sichuan")]
fn yuan_to_fen(s: &str) -> i64 {
    let (y, f) = s.split_once('.').unwrap_or((s, "0"));
    y.parse::<i64>().unwrap() * 100 + format!("{f:0<2}")[..2].parse::<i64>().unwrap()
}

/// Whether the bank's drop holds work for the bank: an instruction file not yet paid, or a
/// rejection receipt of a result file it must send again.
#[cfg(feature = "province-sichuan")]
fn bank_has_work(bank: &Path) -> bool {
    std::fs::read_dir(bank.join("to_bank")).is_ok_and(|d| {
        d.filter_map(Result::ok).any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            (n.starts_with("ZF_") && n.ends_with(".txt")) || n.ends_with(".rej")
        })
    })
}

/// The card account of the scenario's beneficiary whose account the bank has closed.
#[cfg(feature = "province-sichuan")]
fn closed_account() -> String {
    std::fs::read_to_string(scenario().join("registry.csv"))
        .unwrap()
        .lines()
        .find(|l| l.contains("吕长江"))
        .and_then(|l| l.split(',').nth(4))
        .unwrap()
        .to_owned()
}

/// The `http://...` address a line names.
#[cfg(feature = "province-henan")]
fn address_in(line: &str) -> Option<String> {
    let start = line.find("http://")?;
    line[start..]
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .map(str::to_owned)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// What a finished cycle left: the outcome per line and the money.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    lines: BTreeMap<i64, LineState>,
    credited: Fen,
    refunded: Fen,
    steps: Vec<String>,
}

/// Check the invariants of a finished run and return its outcome.
fn check(run: &Run, label: &str) -> Outcome {
    let books = run.peer_books();
    run.rt.block_on(async {
        let store = run.store().await;
        let b = store.batch(run.batch).await.unwrap().unwrap();
        assert_eq!(b.state, BatchState::Closed, "{label}: not closed");
        let tally = store.tally(run.batch).await.unwrap();
        // Control totals equal: every line accounted for, count and amount.
        ykt_kernel::batch::check_balance(run.batch, b.control, &tally)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert!(tally.is_settled(), "{label}: lines still open");
        // No line lost: as many lines as the roster accepted, all credited or refunded.
        let roster = store
            .roster(b.roster_id.expect("the batch comes from a roster"))
            .await
            .unwrap()
            .unwrap();
        let lines = store.lines(run.batch, 0, i64::MAX).await.unwrap();
        assert_eq!(lines.len() as i64, roster.accepted, "{label}: lines lost");
        assert_eq!(
            tally.credited.count + tally.refunded.count,
            lines.len() as u64
        );
        // The ledger balanced.
        let (sum, unbalanced) = store.ledger_check().await.unwrap();
        assert_eq!((sum, unbalanced), (Fen(0), 0), "{label}: ledger unbalanced");
        // None paid twice, by the bank's own books: each line credited at most once, and
        // exactly the lines and money the store has as credited.
        let twice: Vec<_> = books.credited.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "{label}: paid twice by the bank: {twice:?}"
        );
        let store_credited: BTreeSet<i64> = lines
            .iter()
            .filter(|l| l.state == LineState::Credited)
            .map(|l| l.id)
            .collect();
        assert_eq!(
            books.credited.keys().copied().collect::<BTreeSet<_>>(),
            store_credited,
            "{label}: the bank's credits differ from the store's"
        );
        assert_eq!(books.credited_sum, tally.credited.amount, "{label}");
        #[cfg(feature = "province-heilongjiang")]
        if run.prov == Prov::Heilongjiang {
            assert_eq!(store.hlj_lines_credited_twice(run.batch).await.unwrap(), 0);
        }
        // Refunded once: the treasury's (or its agent bank's) refunds are the store's.
        assert_eq!(books.refunded, tally.refunded.amount, "{label}: refunds");
        // Henan: every refund in the register of corrections and refunds (第二十三条).
        #[cfg(feature = "province-henan")]
        if run.prov == Prov::Henan {
            let events = store.henan_line_events(Some(run.batch)).await.unwrap();
            let refunds: BTreeSet<i64> = events
                .iter()
                .filter(|e| e.kind == "refund")
                .map(|e| e.line_id)
                .collect();
            let refunded_lines: BTreeSet<i64> = lines
                .iter()
                .filter(|l| l.state == LineState::Refunded)
                .map(|l| l.id)
                .collect();
            assert_eq!(
                refunds, refunded_lines,
                "{label}: refunds missing from the register"
            );
            // And every correction (each paid again as a new attempt), signed, once.
            let mut corrections: Vec<i64> = events
                .iter()
                .filter(|e| e.kind == "correction" && e.signed_by.is_some())
                .map(|e| e.line_id)
                .collect();
            corrections.sort();
            let corrected: Vec<i64> = lines
                .iter()
                .filter(|l| l.attempt > 1)
                .map(|l| l.id)
                .collect();
            assert_eq!(
                corrections, corrected,
                "{label}: corrections in the register"
            );
        }
        store
            .verify_audit()
            .await
            .unwrap_or_else(|e| panic!("{label}: audit chain: {e}"));
        Outcome {
            // By position in the batch: on PostgreSQL an import killed before its commit
            // still used up its line ids, so the resumed import's lines have other ids.
            lines: lines
                .iter()
                .enumerate()
                .map(|(i, l)| (i as i64, l.state))
                .collect(),
            credited: tally.credited.amount,
            refunded: tally.refunded.amount,
            steps: store
                .batch_steps(run.batch)
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.step)
                .collect(),
        }
    })
}

/// Registers, users and the province's standing records once; each run starts from a copy.
fn template(prov: Prov, db: Db) -> Template {
    let dir = tempfile::tempdir().unwrap();
    let pg = match db {
        Db::Sqlite => None,
        Db::Postgres => Some(
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(ykt_store::testing::empty_postgres_database(&format!(
                    "crash_tmpl_{prov:?}"
                )))
                .expect("PostgreSQL reachable (checked by the caller)"),
        ),
    };
    let today = match prov {
        #[cfg(feature = "province-henan")]
        Prov::Henan => "2023-05-20",
        #[cfg(feature = "province-heilongjiang")]
        Prov::Heilongjiang => "2023-05-20",
        #[cfg(feature = "province-sichuan")]
        Prov::Sichuan => "2023-05-08",
    };
    let run = |args: &[&str]| {
        let o = Command::new(ykt_bin())
            .args(args)
            .current_dir(dir.path())
            .env_remove("YKT_CONFIG")
            .env_remove("YKT_DATABASE_URL")
            .env_remove("YKT_MASTER_KEY")
            .env_remove("YKT_PROVINCE")
            .env_remove("YKT_PROVINCE_SETTINGS")
            .env_remove("FAILPOINTS")
            .env("YKT_TODAY", today)
            .envs(pg.iter().map(|(url, _)| ("YKT_DATABASE_URL", url)))
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {o:?}");
    };
    let s = |f: &str| scenario().join(f).to_str().unwrap().to_owned();
    run(&["import", "registry", &s("registry.csv")]);
    run(&["import", "deaths", &s("deaths.csv")]);
    let users: &[(&str, &str)] = &[
        ("clerk", "dept_maker"),
        ("finance", "finance_reviewer"),
        ("head", "dept_head"),
        ("township", "township_clerk"),
    ];
    for (login, roles) in users {
        run(&[
            "user", "add", login, "--name", login, "--roles", roles, "--region", "230102",
        ]);
    }
    match prov {
        #[cfg(feature = "province-heilongjiang")]
        Prov::Heilongjiang => {}
        #[cfg(feature = "province-henan")]
        Prov::Henan => {
            for (login, roles, region) in [
                ("prov-cz", "finance_reviewer", "23"),
                ("admin", "admin", "23"),
            ] {
                run(&[
                    "user", "add", login, "--name", login, "--roles", roles, "--region", region,
                ]);
            }
            run(&[
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
            run(&[
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
            let o = Command::new(ykt_bin())
                .args(["henan", "bank", "credential", "ABC-HN", "--user", "admin"])
                .current_dir(dir.path())
                .env_remove("YKT_CONFIG")
                .env_remove("YKT_DATABASE_URL")
                .env_remove("YKT_MASTER_KEY")
                .env_remove("FAILPOINTS")
                .env("YKT_TODAY", today)
                .envs(pg.iter().map(|(url, _)| ("YKT_DATABASE_URL", url)))
                .output()
                .unwrap();
            assert!(o.status.success(), "{o:?}");
            let out = String::from_utf8_lossy(&o.stdout);
            let token = out.lines().nth(1).unwrap().trim();
            assert!(token.starts_with("hnbank_"), "{out}");
            std::fs::write(dir.path().join("token.txt"), token).unwrap();
        }
        #[cfg(feature = "province-sichuan")]
        Prov::Sichuan => {
            std::fs::write(dir.path().join("ykt.toml"), "province = \"sichuan\"\n").unwrap();
            run(&[
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
            ]);
            run(&[
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
                "clerk",
            ]);
        }
    }
    Template { dir, pg }
}

/// One case: crash the cycle there, resume it to the end, check it against `expected`.
/// Returns how many hand-overs the resumed cycle had to dispute (Henan).
fn crash_and_resume(
    prov: Prov,
    template: &Template,
    seed: u64,
    case: &Crash,
    expected: &Outcome,
) -> u32 {
    let mut run = Run::start(prov, template, 100 + seed);
    run.crash = Some(case.clone());
    run.drive();
    let label = format!(
        "{prov:?} seed {seed}, {} #{} {:?} in `ykt {}`",
        case.point,
        case.nth,
        case.mode,
        run.crashed_at.clone().unwrap_or_default()
    );
    assert!(run.crashed_at.is_some(), "{label}: never crashed");
    let got = check(&run, &label);
    assert_eq!(
        &got, expected,
        "{label}: outcome differs from the uncrashed run"
    );
    run.disputed
}

/// A case the matrix found broken once, run on every build whatever the default matrix
/// picks: the uncrashed cycle, then the crash there and the resumed cycle.
#[cfg(any(feature = "province-sichuan", feature = "province-henan"))]
fn regression(prov: Prov, point: &'static str, nth: u64, mode: Mode) {
    let template = template(prov, Db::Sqlite);
    let mut reference = Run::start(prov, &template, 100);
    reference.drive();
    let expected = check(&reference, &format!("{prov:?}, no crash"));
    crash_and_resume(prov, &template, 0, &Crash { point, nth, mode }, &expected);
}

/// Found by the matrix: killed after recording the bank's truncated result file as refused
/// and before writing the rejection receipt, the next poll archived the file unanswered; the
/// bank never sent it complete and the lines stayed in flight for good.
#[cfg(feature = "province-sichuan")]
#[test]
fn sichuan_killed_between_refusing_a_result_file_and_telling_the_bank() {
    regression(
        Prov::Sichuan,
        "sichuan.bank_file.after_commit",
        2,
        Mode::Kill,
    );
}

/// Found by the matrix: killed after the refund committed and before Henan's register of
/// corrections and refunds recorded it, the refund had no entry (its business date and who
/// asked and agreed) for good. The entry is now recorded first and reused by the retry.
#[cfg(feature = "province-henan")]
#[test]
fn henan_killed_between_a_refund_and_its_register_entry() {
    regression(Prov::Henan, "refund.after_commit", 1, Mode::Kill);
}

/// The matrix for one province: a traced run without a crash, then one run per crash.
fn matrix(prov: Prov, db: Db) {
    if db == Db::Postgres {
        let probe = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(ykt_store::testing::empty_postgres_database("crash_probe"));
        match probe {
            Ok((_, database)) => tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(ykt_store::testing::drop_test_database(&database)),
            Err(reason) if ykt_store::testing::postgres_required() => {
                panic!("PostgreSQL is required (YKT_REQUIRE_PG=1) but unavailable: {reason}")
            }
            Err(reason) => {
                eprintln!("skipped PostgreSQL for the {prov:?} crash matrix: {reason}");
                return;
            }
        }
    }
    assert!(
        ykt_store::failpoints::ENABLED,
        "the test build has crash points"
    );
    let full = std::env::var("CRASH_MATRIX_FULL").is_ok_and(|v| v == "1");
    let seeds: u64 = if full {
        std::env::var("CRASH_MATRIX_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3)
    } else {
        1
    };
    let template = template(prov, db);
    let started = Instant::now();
    let mut crashes = 0u64;
    let mut points_seen: BTreeSet<&str> = BTreeSet::new();
    let mut disputed: Vec<String> = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    // `CRASH_MATRIX_FIRST_SEED` starts elsewhere (to run further seeds apart).
    let first: u64 = std::env::var("CRASH_MATRIX_FIRST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    for seed in first..first + seeds {
        // The cycle without a crash, traced: every occurrence of every point.
        let mut reference = Run::start(prov, &template, 100 + seed);
        let trace = reference.dir.path().join("trace");
        reference.trace = Some(trace.clone());
        reference.drive();
        let expected = check(&reference, &format!("{prov:?} seed {seed}, no crash"));
        assert_eq!(
            reference.disputed, 0,
            "{prov:?}: the uncrashed cycle disputes nothing"
        );
        let mut occurrences: BTreeMap<&'static str, u64> = BTreeMap::new();
        for l in std::fs::read_to_string(&trace).unwrap().lines() {
            let p = POINTS.iter().find(|p| **p == l).unwrap();
            *occurrences.entry(p).or_default() += 1;
        }
        let missing: Vec<_> = POINTS
            .iter()
            .filter(|p| prov.reaches(p) && !occurrences.contains_key(*p))
            .collect();
        assert!(
            missing.is_empty(),
            "{prov:?}: crash points the cycle never reaches: {missing:?}"
        );
        assert!(
            expected.refunded > Fen(0) && expected.steps.len() >= 8,
            "{prov:?}: the cycle covers failures and refunds: {expected:?}"
        );
        eprintln!(
            "{prov:?} seed {seed}: {} occurrences of {} points in one cycle: {occurrences:?}",
            occurrences.values().sum::<u64>(),
            occurrences.len()
        );
        let mut cases = Vec::new();
        for (i, (point, n)) in occurrences.iter().enumerate() {
            if full {
                for nth in 1..=*n {
                    for mode in [Mode::Kill, Mode::Panic] {
                        cases.push(Crash { point, nth, mode });
                    }
                }
            } else {
                // One occurrence of each point, alternating the mode and walking through
                // the occurrences, so that the default run still reaches late ones.
                let nth = 1 + (i as u64 * 7) % n;
                let mode = if i % 2 == 0 { Mode::Kill } else { Mode::Panic };
                cases.push(Crash { point, nth, mode });
            }
        }
        let only = std::env::var("CRASH_MATRIX_ONLY").ok();
        let total = cases.len();
        for (i, case) in cases.into_iter().enumerate() {
            if only.as_deref().is_some_and(|o| !case.point.starts_with(o)) {
                continue;
            }
            let what = format!("{} #{} {:?}", case.point, case.nth, case.mode);
            // Every case runs; the failures are listed at the end.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                crash_and_resume(prov, &template, seed, &case, &expected)
            }));
            match ran {
                Ok(n) => {
                    if n > 0 {
                        disputed.push(what.clone());
                    }
                    crashes += 1;
                    points_seen.insert(case.point);
                    eprintln!(
                        "{prov:?} seed {seed} case {}/{total} {what}: resumed",
                        i + 1
                    );
                }
                Err(e) => {
                    let why = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    eprintln!("{prov:?} seed {seed} case {}/{total} {what}: FAILED", i + 1);
                    failed.push((what, why));
                }
            }
        }
    }
    eprintln!(
        "{prov:?} crash matrix on {db:?}: {} points, {crashes} crashes resumed over {seeds} seed(s): 0 lines lost, 0 paid twice, ledger balanced, control totals equal ({:.0?}); {} of them with a hand-over disputed: {disputed:?}; {} cases failed: {:?}",
        points_seen.len(),
        started.elapsed(),
        disputed.len(),
        failed.len(),
        failed.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert!(
        failed.is_empty(),
        "{prov:?} on {db:?}: {} crash cases failed:\n{}",
        failed.len(),
        failed
            .iter()
            .map(|(w, why)| format!("{w}: {why}"))
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    // A bank whose hand-over was lost in a crash hands over again what the platform has not
    // acknowledged, so the department never has to dispute a hand-over to resume.
    assert!(
        disputed.is_empty(),
        "{prov:?}: {} crash cases resumed only after a disputed hand-over: {disputed:?}",
        disputed.len()
    );
}

#[cfg(feature = "province-heilongjiang")]
#[test]
fn heilongjiang_crash_at_every_commit_boundary_then_resume() {
    matrix(Prov::Heilongjiang, Db::Sqlite);
}

#[cfg(feature = "province-sichuan")]
#[test]
fn sichuan_crash_at_every_commit_boundary_then_resume() {
    matrix(Prov::Sichuan, Db::Sqlite);
}

#[cfg(feature = "province-henan")]
#[test]
fn henan_crash_at_every_commit_boundary_then_resume() {
    matrix(Prov::Henan, Db::Sqlite);
}

#[cfg(feature = "province-heilongjiang")]
#[test]
fn heilongjiang_crash_at_every_commit_boundary_then_resume_on_postgres() {
    matrix(Prov::Heilongjiang, Db::Postgres);
}

#[cfg(feature = "province-sichuan")]
#[test]
fn sichuan_crash_at_every_commit_boundary_then_resume_on_postgres() {
    matrix(Prov::Sichuan, Db::Postgres);
}

#[cfg(feature = "province-henan")]
#[test]
fn henan_crash_at_every_commit_boundary_then_resume_on_postgres() {
    matrix(Prov::Henan, Db::Postgres);
}
