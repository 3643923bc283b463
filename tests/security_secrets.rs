//! Secrets come only from the configuration, the environment or the key file, and go nowhere
//! else (issue #9, "Security"): the master key and a user's password never reach the
//! database, the logs (at `trace`) or any output; with the key in `YKT_MASTER_KEY` no key file
//! is written; the database alone does not open without the key; a key file is created
//! readable by its owner only.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/standard")
}

fn ykt(dir: &Path, key: Option<&str>, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ykt"));
    c.args(args)
        .current_dir(dir)
        .env_remove("YKT_CONFIG")
        .env_remove("YKT_DATABASE_URL")
        .env_remove("YKT_PROVINCE")
        .env_remove("YKT_USER_PASSWORD")
        .env("YKT_LOG", "trace")
        .env("YKT_TODAY", "2023-05-20")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match key {
        Some(k) => c.env("YKT_MASTER_KEY", k),
        None => c.env_remove("YKT_MASTER_KEY"),
    };
    let mut child = c.spawn().expect("spawn ykt");
    if let Some(s) = stdin {
        writeln!(child.stdin.take().expect("stdin"), "{s}").expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("ykt")
}

fn all_bytes(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            all_bytes(&p, out);
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).expect("read")));
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The forms a 32-byte key could be written in.
fn forms(hex_key: &str) -> Vec<Vec<u8>> {
    let raw = hex::decode(hex_key).expect("hex");
    vec![
        hex_key.to_lowercase().into_bytes(),
        hex_key.to_uppercase().into_bytes(),
        raw,
    ]
}

/// Run a working day's commands; every output of every run.
fn workday(dir: &Path, key: Option<&str>, password: &str) -> Vec<(String, Vec<u8>)> {
    let roster = scenario().join("roster.csv").display().to_string();
    let registry = scenario().join("registry.csv").display().to_string();
    let runs: Vec<(Vec<&str>, Option<&str>)> = vec![
        (
            vec![
                "user",
                "add",
                "clerk",
                "--name",
                "经办",
                "--roles",
                "dept_maker",
                "--region",
                "23",
                "--password-stdin",
            ],
            Some(password),
        ),
        (
            vec!["user", "reset-password", "clerk", "--password-stdin"],
            Some(password),
        ),
        (vec!["import", "registry", &registry], None),
        (
            vec![
                "import",
                "roster",
                &roster,
                "--province",
                "henan",
                "--project",
                "HN03",
                "--period",
                "2023-05",
                "--user",
                "clerk",
            ],
            None,
        ),
        (vec!["batch", "list"], None),
        (vec!["batch", "show", "1"], None),
        (vec!["audit", "verify"], None),
        (vec!["user", "list"], None),
        // Failures print their causes: still no secret.
        (
            vec!["batch", "step", "1", "finance_review", "--user", "nobody"],
            None,
        ),
        (vec!["serve", "--listen", "not-an-address"], None),
    ];
    let mut outputs = Vec::new();
    for (args, stdin) in runs {
        let o = ykt(dir, key, &args, stdin);
        let label = args.join(" ");
        outputs.push((format!("stdout of {label}"), o.stdout));
        outputs.push((format!("stderr of {label}"), o.stderr));
    }
    outputs
}

#[test]
fn the_master_key_and_passwords_stay_where_they_are_configured() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let key = "5a1e".repeat(16);
    let password = "correct-horse-电池-staple";
    let mut outputs = workday(dir, Some(&key), password);
    let logged: usize = outputs.iter().map(|(_, b)| b.len()).sum();
    assert!(logged > 10_000, "trace logging was on ({logged} bytes)");
    assert!(
        !dir.join("data/ykt.key").exists(),
        "a key file was written although the key came from the environment"
    );
    all_bytes(dir, &mut outputs);
    assert!(
        outputs.iter().any(|(n, _)| n.ends_with("ykt.db")),
        "the database is swept"
    );
    for (name, bytes) in &outputs {
        for f in forms(&key) {
            assert!(!contains(bytes, &f), "the master key is in {name}");
        }
        assert!(
            !contains(bytes, password.as_bytes()),
            "the password is in {name}"
        );
    }
    // The database alone is not enough: without the key it does not open.
    let o = ykt(dir, None, &["batch", "show", "1"], None);
    assert_ne!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("YKT_MASTER_KEY"), "{err}");
    let o = ykt(dir, Some(&"00".repeat(32)), &["batch", "show", "1"], None);
    assert_ne!(o.status.code(), Some(0), "another key opens the data");
}

#[test]
fn a_created_key_file_is_private_and_its_key_goes_nowhere_else() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let password = "another-long-password";
    let mut outputs = workday(dir, None, password);
    let kf = dir.join("data/ykt.key");
    let mode = std::fs::metadata(&kf)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    let key = std::fs::read_to_string(&kf).expect("key").trim().to_owned();
    assert_eq!(key.len(), 64);
    all_bytes(dir, &mut outputs);
    for (name, bytes) in &outputs {
        if name.ends_with("ykt.key") {
            continue;
        }
        for f in forms(&key) {
            assert!(!contains(bytes, &f), "the master key is in {name}");
        }
        assert!(
            !contains(bytes, password.as_bytes()),
            "the password is in {name}"
        );
    }
}

/// The database password in `YKT_DATABASE_URL` is never printed (the demo prints which
/// database it uses). PostgreSQL only: it runs when `YKT_TEST_PG_URL` is set (trust
/// authentication accepts the password given), and fails without it under `YKT_REQUIRE_PG`.
#[tokio::test]
async fn the_database_password_is_never_printed() {
    use sqlx::Connection;
    let Ok(base) = std::env::var("YKT_TEST_PG_URL") else {
        assert!(
            std::env::var("YKT_REQUIRE_PG").is_err(),
            "YKT_REQUIRE_PG is set but YKT_TEST_PG_URL is not"
        );
        eprintln!("skipped: no YKT_TEST_PG_URL");
        return;
    };
    let name = format!("ykt_secrets_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&base).await.expect("pg");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut admin)
        .await
        .expect("drop");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create");
    let (scheme, rest) = base.split_once("://").expect("url");
    let (userinfo, hostdb) = rest.split_once('@').expect("url with a user");
    let user = userinfo.split(':').next().unwrap_or(userinfo);
    let host = hostdb.split('/').next().unwrap_or(hostdb);
    let password = "pg-Pass-w0rd-never-shown";
    let url = format!("{scheme}://{user}:{password}@{host}/{name}");
    let tmp = tempfile::tempdir().expect("tempdir");
    let o = Command::new(env!("CARGO_BIN_EXE_ykt"))
        .args([
            "demo",
            "--province",
            "henan",
            "--lines",
            "20",
            "--out",
            "out",
        ])
        .current_dir(tmp.path())
        .env_remove("YKT_CONFIG")
        .env_remove("YKT_PROVINCE")
        .env("YKT_DATABASE_URL", &url)
        .env("YKT_MASTER_KEY", "77".repeat(32))
        .env("YKT_LOG", "debug")
        .env("YKT_TODAY", "2023-05-20")
        .output()
        .expect("demo");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop");
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(all.contains(&name), "the demo names its database: {all}");
    assert!(!all.contains(password), "the database password is printed");
}
