//! `ykt henan bench-pull`: the bank interface serving a large order (1,000,000 lines by
//! default) without holding it in memory.
//!
//! The parent builds a fresh SQLite database in `--dir` with one batch of `--lines` synthetic
//! lines, takes it through the real steps (apply, review, push to the simulated budget system,
//! funding, release for pulling: the release writes the order's detail in sealed chunks, so its
//! time includes that), then starts a child process that serves the bank interface and
//! pulls the whole order as the bank would: once as the streamed GB18030 CSV, once as JSON pages
//! of 5,000. The child reports lines per second and its own peak resident memory (`VmHWM`),
//! which covers only the serving and pulling. Speeds are measurements, not assertions.

use super::ops::Henan;
use super::ports::{SimOptions, start_sims};
use crate::config::Config;
use anyhow::{Context, anyhow};
use chrono::NaiveDate;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use ykt_kernel::batch::BatchState;
use ykt_kernel::catalog::Project;
use ykt_kernel::intake::{AcceptedLine, IntakeSummary, LineOutcome};
use ykt_kernel::province::Province;
use ykt_kernel::{BankAccount, Fen, Period, RegionCode, ResidentId, Role, User, Yuan};
use ykt_province_henan::calendar::WorkCalendar;
use ykt_store::payments::{RosterMeta, RosterStart};
use ykt_store::{Store, UserRow, Vault};

#[derive(Args, Debug)]
pub struct BenchPullArgs {
    /// Lines in the order.
    #[arg(long, default_value_t = 1_000_000)]
    pub lines: u64,
    /// Working directory (the benchmark's own database, replaced).
    #[arg(long, default_value = "out/henan-bench")]
    pub dir: PathBuf,
    /// Internal: serve and pull an order prepared by the parent.
    #[arg(long, hide = true)]
    pub pull_only: Option<String>,
}

fn peak_kb() -> u64 {
    status_kb("VmHWM:")
}

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn vault() -> Vault {
    Vault::new([0x48; 32])
}

fn resident(n: u64) -> anyhow::Result<ResidentId> {
    let birth =
        NaiveDate::from_ymd_opt(1940, 1, 1).context("date")? + chrono::Days::new(n / 1000 % 20_000);
    let body = format!("410902{}{:03}", birth.format("%Y%m%d"), n % 1000);
    let b: [u8; 17] = body.as_bytes().try_into().map_err(|_| anyhow!("id"))?;
    ResidentId::from_trusted(&format!("{body}{}", ResidentId::check_digit(&b)))
        .map_err(|e| anyhow!("{e}"))
}

pub async fn run(cfg: &Config, a: BenchPullArgs) -> anyhow::Result<u8> {
    if let Some(order) = &a.pull_only {
        return pull_only(cfg, &a, order).await;
    }
    std::fs::create_dir_all(&a.dir)?;
    let db = a.dir.join("bench.db");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    let url = format!(
        "sqlite://{}",
        std::fs::canonicalize(&a.dir)?.join("bench.db").display()
    );
    let store = Store::connect(&url, vault()).await?;
    let today = NaiveDate::from_ymd_opt(2023, 5, 20).context("date")?;
    let province: Arc<dyn Province> =
        Arc::from(super::ops::library_province(&store, &serde_json::Value::Null).await?);
    let project: Project = province
        .catalog()
        .find("HN03")
        .cloned()
        .ok_or_else(|| anyhow!("HN03"))?;
    for (login, role) in [
        ("bench-clerk", Role::DeptMaker),
        ("bench-cz", Role::FinanceReviewer),
        ("bench-prov", Role::FinanceReviewer),
    ] {
        store
            .upsert_user(&UserRow {
                login: login.into(),
                display_name: login.into(),
                roles: vec![role.as_str().into()],
                region: if login == "bench-prov" {
                    "410000000000"
                } else {
                    "410902000000"
                }
                .into(),
                password_hash: None,
                disabled: false,
            })
            .await?;
    }

    // The order's lines, streamed into one batch.
    let t = Instant::now();
    let RosterStart::Started(mut imp) = store
        .begin_roster(RosterMeta {
            province: "henan".into(),
            order_prefix: "HA".into(),
            project: project.clone(),
            period: Period::parse("2023-05").map_err(|e| anyhow!("{e}"))?,
            file_name: "bench".into(),
            sha256: format!("bench-{}", a.lines),
            actor: "bench-clerk".into(),
            actor_role: "dept_maker".into(),
            scope: RegionCode::parse("410902").map_err(|e| anyhow!("{e}"))?,
            initial_state: BatchState::Draft,
        })
        .await?
    else {
        anyhow::bail!("bench roster exists");
    };
    let region = RegionCode::parse("410902001201").map_err(|e| anyhow!("{e}"))?;
    let mut n = 0u64;
    let mut total = Fen(0);
    while n < a.lines {
        let mut chunk = Vec::with_capacity(5000);
        for _ in 0..5000.min(a.lines - n) {
            let fen = 30_000 + (n % 500) as i64;
            total += Fen(fen);
            chunk.push(LineOutcome::Accepted(AcceptedLine {
                row: u32::try_from(n + 2).unwrap_or(u32::MAX),
                name: format!("张{}", n % 97),
                id: resident(n)?,
                phone: None,
                region: region.clone(),
                period: Period::parse("2023-05").map_err(|e| anyhow!("{e}"))?,
                amount: Yuan::from_fen(Fen(fen)),
                account: Some(
                    BankAccount::parse(&format!("622848{n:013}")).map_err(|e| anyhow!("{e}"))?,
                ),
                bank: Some("中国农业银行".into()),
                proxy: None,
                warnings: vec![],
            }));
            n += 1;
        }
        imp.add(&chunk).await?;
    }
    let res = imp
        .finish(
            &IntakeSummary {
                lines: a.lines,
                accepted: a.lines,
                accepted_amount: total,
                ..Default::default()
            },
            &store,
        )
        .await?;
    let batch = res
        .batches
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("no batch"))?;
    outln!("生成 {} 行：{:.1} 秒", a.lines, t.elapsed().as_secs_f64());

    // The real steps up to the release.
    let calendar = WorkCalendar::builtin()?;
    let none = crate::cycle::Ports::default();
    let setup = Henan {
        store: &store,
        province: province.as_ref(),
        ports: &none,
        today,
        calendar: &calendar,
    };
    setup.seed_library().await?;
    let user = |login: &str, role: Role, region: &str| -> anyhow::Result<User> {
        Ok(User {
            login: login.into(),
            name: login.into(),
            roles: vec![role],
            region: RegionCode::parse(region).map_err(|e| anyhow!("{e}"))?,
            bank: None,
        })
    };
    setup
        .add_candidate(
            &user("bench-prov", Role::FinanceReviewer, "41")?,
            &ykt_province_henan::banks::Candidate {
                code: "BENCH".into(),
                name: "基准测试银行".into(),
                agreement_no: "基准".into(),
                connected: true,
                free_interbank: true,
            },
        )
        .await?;
    let cz = user("bench-cz", Role::FinanceReviewer, "410902")?;
    setup.select_bank(&cz, "410902", "BENCH", "基准").await?;
    let env = start_sims(
        &store,
        province.clone(),
        Arc::new(calendar.clone()),
        SimOptions {
            seed: 1,
            today,
            faults: Default::default(),
            default_faults: Default::default(),
            page: None,
            pending_polls: 0,
            notify_banks: false,
        },
    )
    .await?;
    let ops = Henan {
        ports: &env.ports,
        ..setup
    };
    let clerk = user("bench-clerk", Role::DeptMaker, "410902")?;
    ops.step(batch.id, "apply_funds", &clerk, None).await?;
    ops.review(batch.id, &cz, None, None).await?;
    ops.step(batch.id, "push_order", &cz, None).await?;
    ops.sync().await?;
    let t = Instant::now();
    ops.sync().await?;
    let secs = t.elapsed().as_secs_f64();
    outln!(
        "开放获取（{} 行在途，含明细加密分块写入）：{:.1} 秒，{:.0} 行/秒，父进程峰值内存 {} MiB",
        a.lines,
        secs,
        a.lines as f64 / secs.max(1e-9),
        peak_kb() / 1024
    );
    let admin = user("system", Role::Admin, "41")?;
    let token = ops.issue_credential(&admin, "BENCH").await?;
    drop(env);
    store.close().await;

    let me = std::env::current_exe()?;
    let out = std::process::Command::new(me)
        .args([
            "henan",
            "bench-pull",
            "--pull-only",
            &batch.order_no,
            "--lines",
        ])
        .arg(a.lines.to_string())
        .arg("--dir")
        .arg(&a.dir)
        .env("HENAN_BENCH_DB", &url)
        .env("HENAN_BENCH_TOKEN", &token)
        .output()?;
    out!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    Ok(u8::from(!out.status.success()) * 2)
}

async fn pull_only(_cfg: &Config, a: &BenchPullArgs, order: &str) -> anyhow::Result<u8> {
    let url = std::env::var("HENAN_BENCH_DB").context("HENAN_BENCH_DB")?;
    let token = std::env::var("HENAN_BENCH_TOKEN").context("HENAN_BENCH_TOKEN")?;
    let store = Store::connect(&url, vault()).await?;
    let province: Arc<dyn Province> =
        Arc::from(super::ops::library_province(&store, &serde_json::Value::Null).await?);
    let today = super::ports::today_fn(NaiveDate::from_ymd_opt(2023, 5, 20));
    let router = ykt_http::server::app([super::ports::bank_api(
        &store,
        province,
        Arc::new(WorkCalendar::builtin()?),
        today,
    )]);
    let server = ykt_sim::server::SimServer::start(router).await?;
    let base_kb = status_kb("VmRSS:");
    let http = ykt_http::henan::client_with_timeout(std::time::Duration::from_secs(3600))?;

    // The stream: count lines as they arrive, keep nothing.
    let t = Instant::now();
    let mut resp = http
        .get(format!(
            "{}/henan/bank/v1/orders/{order}/lines.csv",
            server.url()
        ))
        .bearer_auth(&token)
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
    let mut newlines = 0u64;
    let mut bytes = 0u64;
    while let Some(chunk) = resp.chunk().await? {
        bytes += chunk.len() as u64;
        newlines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    let secs_stream = secs;
    let lines = newlines.saturating_sub(3);
    anyhow::ensure!(
        lines == a.lines,
        "streamed {lines} lines, expected {}",
        a.lines
    );
    outln!(
        "流式CSV：{lines} 行，{:.1} MiB，{:.1} 秒，{:.0} 行/秒",
        bytes as f64 / 1048576.0,
        secs,
        lines as f64 / secs
    );

    // Pages of 5,000.
    let t = Instant::now();
    let mut after = 0i64;
    let mut paged = 0u64;
    loop {
        let v: serde_json::Value = http
            .get(format!(
                "{}/henan/bank/v1/orders/{order}/lines?after={after}&limit=5000",
                server.url()
            ))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        paged += v["lines"].as_array().map(|l| l.len()).unwrap_or(0) as u64;
        match v["next_after"].as_i64() {
            Some(n) => after = n,
            None => break,
        }
    }
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(paged == a.lines, "paged {paged} lines");
    outln!(
        "分页JSON（每页5000）：{paged} 行，{:.1} 秒，{:.0} 行/秒",
        secs,
        paged as f64 / secs
    );
    outln!(
        "获取进程内存：启动后 {} MiB，峰值 {} MiB（服务端与银行端同一进程，明细不驻留内存）",
        base_kb / 1024,
        peak_kb() / 1024
    );

    // The raw limit (issue #8): the same bytes over the same loopback HTTP from a handler that
    // does nothing but send them from memory. The order is pulled once more (untimed) to get
    // them, so this part's memory (the whole file held) comes after the peak reported above.
    let mut resp = http
        .get(format!(
            "{}/henan/bank/v1/orders/{order}/lines.csv",
            server.url()
        ))
        .bearer_auth(&token)
        .send()
        .await?;
    let mut same = Vec::with_capacity(usize::try_from(bytes).unwrap_or(0));
    while let Some(chunk) = resp.chunk().await? {
        same.extend_from_slice(&chunk);
    }
    anyhow::ensure!(same.len() as u64 == bytes, "second pull differs in size");
    let body = axum::body::Bytes::from(same);
    let raw_router = ykt_http::server::Router::new().route(
        "/raw",
        axum::routing::get(move || {
            let b = body.clone();
            async move { b }
        }),
    );
    let raw_server = ykt_sim::server::SimServer::start(raw_router).await?;
    let t = Instant::now();
    let mut resp = http.get(format!("{}/raw", raw_server.url())).send().await?;
    anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
    let (mut raw_bytes, mut raw_newlines) = (0u64, 0u64);
    while let Some(chunk) = resp.chunk().await? {
        raw_bytes += chunk.len() as u64;
        raw_newlines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    let raw_secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        raw_bytes == bytes && raw_newlines == newlines,
        "raw transfer {raw_bytes} bytes, expected {bytes}"
    );
    outln!(
        "原始回环HTTP（同样字节，内存直发）：{:.1} MiB，{:.2} 秒，{:.0} 行/秒；流式CSV为其 {:.2} 倍（目标 ≤ 2 倍）",
        raw_bytes as f64 / 1048576.0,
        raw_secs,
        lines as f64 / raw_secs.max(1e-9),
        secs_stream / raw_secs.max(1e-9)
    );
    Ok(0)
}
