//! Shared set-up of the console tests: a working directory prepared with the real binary
//! (registers, users, one Heilongjiang roster in 230102), and the console served in-process
//! over real HTTP.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/standard")
}

/// The demo password every test user gets (test data only).
pub const PASSWORD: &str = "test-password-123";

pub struct Env {
    pub dir: tempfile::TempDir,
    /// The database (`None`: the SQLite file `data/ykt.db` of the directory).
    pub database_url: Option<String>,
}

impl Env {
    pub fn new() -> Env {
        Env::on(None)
    }
    /// A working directory whose binary and console use `database_url` (a PostgreSQL URL
    /// from `ykt_store::testing::each_database_url`), or SQLite with `None`.
    pub fn on(database_url: Option<String>) -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            database_url,
        }
    }
    /// `SQLite` or `PostgreSQL`, for messages.
    pub fn backend(&self) -> &'static str {
        if self.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ykt"));
        c.args(args)
            .current_dir(self.path())
            .env_remove("YKT_CONFIG")
            .env_remove("YKT_DATABASE_URL")
            .env_remove("YKT_MASTER_KEY")
            .env_remove("YKT_PROVINCE")
            .env_remove("YKT_PROVINCE_SETTINGS")
            .env_remove("YKT_USER_PASSWORD")
            .env("YKT_TODAY", "2023-05-20")
            .env("RUST_BACKTRACE", "0");
        if let Some(url) = &self.database_url {
            c.env("YKT_DATABASE_URL", url);
        }
        c
    }
    pub fn ykt(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.ykt(args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "ykt {args:?}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    /// `ykt user add` with the test password on stdin.
    pub fn add_user(&self, login: &str, roles: &str, region: &str) {
        use std::io::Write;
        let mut child = self
            .cmd(&[
                "user",
                "add",
                login,
                "--name",
                login,
                "--roles",
                roles,
                "--region",
                region,
                "--password-stdin",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    /// The configuration the binary uses in this directory.
    pub fn config(&self) -> yikatong::config::Config {
        yikatong::config::Config {
            database_url: self.database_url.clone().unwrap_or_else(|| {
                format!("sqlite://{}", self.path().join("data/ykt.db").display())
            }),
            key_file: self.path().join("data/ykt.key"),
            today: chrono::NaiveDate::from_ymd_opt(2023, 5, 20),
            ..Default::default()
        }
    }
}

/// Registers, and a Heilongjiang 农村低保 roster imported by `maker` (230102) → batch 1, on
/// SQLite.
pub fn prepared(users: &[(&str, &str, &str)]) -> Env {
    prepared_on(None, users)
}

/// [`prepared`] on `database_url` (see [`Env::on`]).
pub fn prepared_on(database_url: Option<String>, users: &[(&str, &str, &str)]) -> Env {
    let e = Env::on(database_url);
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    e.ok(&["import", "registry", &s(&scenario().join("registry.csv"))]);
    e.ok(&["import", "deaths", &s(&scenario().join("deaths.csv"))]);
    for (login, roles, region) in users {
        e.add_user(login, roles, region);
    }
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
        "maker",
    ]);
    assert_eq!(o.status.code(), Some(1), "some lines are rejected");
    e
}

/// A second batch (2) of the same maker: last month's 农村低保 (one of the two lines is
/// already in batch 1, so the import exits 1 with the other line in batch 2).
pub fn second_batch(e: &Env) {
    let o = e.ykt(&[
        "import",
        "roster",
        scenario().join("earlier.csv").to_str().unwrap(),
        "--province",
        "heilongjiang",
        "--project",
        "农村最低生活保障金",
        "--period",
        "2023-04",
        "--user",
        "maker",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("HLJ202304230102-000002"));
}

/// The console served in-process on an ephemeral port (stops when dropped).
pub struct Served {
    pub base: String,
    pub store: ykt_store::Store,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub async fn serve(
    cfg: &yikatong::config::Config,
    state_hook: impl FnOnce(&mut ykt_http::web::WebState),
) -> Served {
    let store = yikatong::cli::open_store(cfg, false).await.unwrap();
    let mut state = yikatong::web::web_state(cfg, &store);
    state_hook(&mut state);
    let router = ykt_http::server::app([ykt_http::web::router(state)]);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ykt_http::server::serve(listener, router, async {
        let _ = rx.await;
    }));
    Served {
        base: format!("http://{addr}"),
        store,
        stop: Some(tx),
    }
}

/// An HTTP client that does not follow redirects and keeps no cookies.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Log in through the form; returns (session token, csrf token).
pub async fn login(
    base: &str,
    login: &str,
    password: &str,
) -> Result<(String, String), reqwest::StatusCode> {
    let r = client()
        .post(format!("{base}/api/v1/login"))
        .json(&serde_json::json!({"login": login, "password": password}))
        .send()
        .await
        .unwrap();
    if r.status() != 200 {
        return Err(r.status());
    }
    let v: serde_json::Value = r.json().await.unwrap();
    Ok((
        v["token"].as_str().unwrap().to_owned(),
        v["csrf"].as_str().unwrap().to_owned(),
    ))
}
