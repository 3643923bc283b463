//! `ykt audit verify` on a real demo database (issue #9): intact → exit 0 with the head hash;
//! a one-byte edit, a reordering or a deletion made behind the triggers' back → exit 1 naming
//! the entry.

#![cfg(feature = "province-henan")]

use sqlx::Connection;
use std::path::Path;
use std::process::{Command, Output};

fn ykt(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ykt"))
        .args(args)
        .current_dir(dir)
        .env_remove("YKT_CONFIG")
        .env_remove("YKT_DATABASE_URL")
        .env_remove("YKT_MASTER_KEY")
        .env_remove("YKT_PROVINCE")
        .env("YKT_TODAY", "2023-05-20")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run ykt")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn sql(db: &Path, statements: &[&str]) {
    let url = format!("sqlite://{}", db.display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.expect("open");
    for s in statements {
        sqlx::query(s).execute(&mut c).await.expect(s);
    }
    c.close().await.expect("close");
}

#[tokio::test]
async fn audit_verify_reports_edits_reorderings_and_deletions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let o = ykt(d, &["demo", "--province", "henan", "--lines", "60"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = ykt(d, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let intact = text(&o);
    assert!(intact.contains("审计日志完整"), "{intact}");
    let db = d.join("data/ykt.db");
    sql(
        &db,
        &[
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
        ],
    )
    .await;

    // One byte: the first digit of entry 2's timestamp's seconds.
    sql(
        &db,
        &["UPDATE audit_log SET at = substr(at, 1, 18) || CASE substr(at, 19, 1) WHEN '0' THEN '1' ELSE '0' END || substr(at, 20) WHERE seq = 2"],
    )
    .await;
    let o = ykt(d, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("审计日志第2条内容被篡改"), "{}", text(&o));
    assert!(text(&o).contains("校验失败"));

    // Reordering two later entries (the edit above stays: the first break is reported).
    sql(
        &db,
        &[
            "UPDATE audit_log SET seq = 100003 WHERE seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE seq = 4",
            "UPDATE audit_log SET seq = 4 WHERE seq = 100003",
        ],
    )
    .await;
    let o = ykt(d, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("第2条"), "{}", text(&o));

    // With entry 2 removed and the rest intact, the gap is named.
    sql(&db, &["DELETE FROM audit_log WHERE seq = 2"]).await;
    let o = ykt(d, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("审计日志序号不连续：期望2，实际3"),
        "{}",
        text(&o)
    );
}
