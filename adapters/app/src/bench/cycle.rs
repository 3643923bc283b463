//! `ykt bench --only cycle` (issue #8): each province's whole cycle at scale, on SQLite and on
//! PostgreSQL, each run in a child process of its own.
//!
//! The child loads the registers (regions, the streamed card registry, the death register:
//! set-up, not part of the cycle), imports the roster through the real intake (`intake`
//! phase), then runs the province's demo cycle (`crate::provinces::demo_cycle`: the code paths
//! `ykt demo` and the CLI use, against the real simulators over HTTP and files) with bank
//! failures at 2 %. The demo marks its phases with [`phase`]; each phase records its wall
//! and CPU seconds and its own peak resident set (the kernel's high-water mark is reset at
//! each mark through `/proc/self/clear_refs`). After the cycle the same child measures the
//! raw limits on the same roster: CSV parse, the fastest raw insert (SQLite multi-row INSERT,
//! PostgreSQL COPY) and a loopback HTTP transfer of the roster's bytes from memory.

use super::{
    BenchArgs, Clock, Files, Metric, StageOut, bench_vault, ensure_data, load_registers, mb,
    peak_rss_kb, remove_sqlite, spawn_stage, stage_parse, stage_raw_pg, stage_raw_sqlite,
};
use crate::config::Config;
use crate::demo::{DEMO_PERIOD, DEMO_PROJECT, demo_users};
use crate::intake::{self, ImportResult, Request};
use crate::registers::MemRegisters;
use anyhow::{Context, anyhow, bail};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use ykt_kernel::province::Province;
use ykt_store::Store;

/// Whole-cycle target: at most this many times the sum of the raw limits.
pub(super) const TARGET_CYCLE_RATIO: f64 = 4.0;
/// Intake target within the cycle: at most this many times the raw insert.
pub(super) const TARGET_INTAKE_RATIO: f64 = 2.0;
/// Memory target of the 1M-line run (issue #8).
pub(super) const TARGET_CYCLE_PEAK_MB: f64 = 500.0;
/// The bank failure share of the benchmark's cycle.
pub const FAIL_SHARE: f64 = 0.02;

/// One timed phase of a cycle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PhaseOut {
    pub name: String,
    pub seconds: f64,
    pub cpu_seconds: f64,
    pub peak_rss_kb: u64,
}

struct PhaseLog {
    current: Option<(String, Clock)>,
    done: Vec<PhaseOut>,
}

impl PhaseLog {
    fn close(&mut self) {
        if let Some((name, clock)) = self.current.take() {
            let m = clock.stop(&name, 0);
            self.done.push(PhaseOut {
                name,
                seconds: m.seconds,
                cpu_seconds: m.cpu_seconds,
                peak_rss_kb: peak_rss_kb(),
            });
        }
    }
}

static PHASES: Mutex<Option<PhaseLog>> = Mutex::new(None);

/// Reset the peak resident set (`VmHWM`) to the current one (Linux ≥ 4.0).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Mark the start of a cycle phase (the previous one ends here). Does nothing outside the
/// cycle benchmark, so the demo calls it unconditionally.
pub fn phase(name: &str) {
    let Ok(mut g) = PHASES.lock() else { return };
    let Some(log) = g.as_mut() else { return };
    log.close();
    reset_peak_rss();
    // For profiling: `YKT_LOG=ykt::bench=info,sqlx::query=debug` puts the phases between
    // the statements they ran.
    tracing::info!(target: "ykt::bench", phase = name, "cycle phase starts");
    log.current = Some((name.to_owned(), Clock::start()));
}

fn start_recording() {
    if let Ok(mut g) = PHASES.lock() {
        *g = Some(PhaseLog {
            current: None,
            done: Vec::new(),
        });
    }
}

fn finish_recording() -> Vec<PhaseOut> {
    let Ok(mut g) = PHASES.lock() else {
        return Vec::new();
    };
    match g.take() {
        Some(mut log) => {
            log.close();
            log.done
        }
        None => Vec::new(),
    }
}

/// The child: registers, intake, the province's cycle, then the raw limits.
pub(super) async fn stage_cycle(
    cfg: &Config,
    files: &Files,
    args: &BenchArgs,
    province: &dyn Province,
    url: &str,
    today: NaiveDate,
) -> anyhow::Result<StageOut> {
    let store = Store::connect(url, bench_vault(args.seed)).await?;
    for u in demo_users(province.code()) {
        store.upsert_user(&u).await?;
    }
    let registry = load_registers(&store, files, today).await?;

    start_recording();
    phase("intake");
    let mut regions = MemRegisters::default();
    regions.add_regions(store.all_regions().await?);
    let user = crate::cli::user_of(&demo_users(province.code())[0])?;
    let (project, period) = intake::resolve(province, DEMO_PROJECT, DEMO_PERIOD)?;
    let req = Request {
        province,
        project,
        period,
        today,
        scope: Some(user.region.clone()),
        regions: Some(&regions),
        check_cards: true,
    };
    // Only the summary is kept of the intake's report: its list of every problem (some
    // 100,000 at a million lines, 400 bytes each) is the harness's, not the cycle's, and
    // was carried through every later phase.
    let (summary, batches) = match intake::import(&store, &files.roster, &req, &user).await? {
        ImportResult::Imported { report, result } => (report.summary, result.batches),
        ImportResult::AlreadyImported { .. } => bail!("roster already imported"),
    };
    // The demo cycle reads the registers under the demo's file names (Heilongjiang draws its
    // grain-fund roster from them).
    let out_dir = args.dir.join("out");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("{}", out_dir.display()))?;
    for (from, to) in [
        (&files.registry, "社保卡信息.csv"),
        (&files.deaths, "死亡登记.csv"),
    ] {
        let to = out_dir.join(to);
        let _ = std::fs::remove_file(&to);
        std::fs::hard_link(from, &to)
            .or_else(|_| std::fs::copy(from, &to).map(|_| ()))
            .with_context(|| format!("{}", to.display()))?;
    }
    let ctx = crate::provinces::DemoCtx {
        cfg,
        store: &store,
        province,
        batches,
        out: out_dir,
        seed: args.seed,
        fail_share: Some(FAIL_SHARE),
    };
    let cycle = crate::provinces::demo_cycle(&ctx).await;
    let phases = finish_recording();
    cycle?;
    let tally = store.ledger_check().await?;
    store.close().await;

    // The raw limits, on the same roster, in the same process.
    let parse = stage_parse(files)?
        .metric("parse")
        .cloned()
        .ok_or_else(|| anyhow!("parse"))?;
    let insert = if url.starts_with("sqlite:") {
        let raw_db = args.dir.join("raw.db");
        remove_sqlite(&raw_db)?;
        let r = stage_raw_sqlite(files, &format!("sqlite://{}", raw_db.display())).await?;
        remove_sqlite(&raw_db)?;
        r
    } else {
        stage_raw_pg(files, url).await?
    }
    .metric("insert")
    .cloned()
    .ok_or_else(|| anyhow!("insert"))?;
    let http = raw_http(&files.roster, summary.lines).await?;

    let mut out = StageOut {
        metrics: vec![registry, parse, insert, http],
        summary: Some((&summary).into()),
        phases,
        ..StageOut::default()
    };
    out.info.insert("province".into(), province.code().into());
    out.info.insert(
        "backend".into(),
        if url.starts_with("sqlite:") {
            "SQLite"
        } else {
            "PostgreSQL"
        }
        .into(),
    );
    out.info.insert("ledger_sum".into(), tally.0.to_string());
    out.info
        .insert("ledger_unbalanced".into(), tally.1.to_string());
    Ok(out)
}

/// The raw HTTP limit: the roster's bytes served from memory by a trivial handler and
/// received over loopback by the same HTTP client the platform uses.
async fn raw_http(file: &Path, lines: u64) -> anyhow::Result<Metric> {
    let bytes = std::fs::read(file).with_context(|| format!("{}", file.display()))?;
    let n = bytes.len() as u64;
    let body = axum::body::Bytes::from(bytes);
    let router = ykt_http::server::Router::new().route(
        "/raw",
        axum::routing::get(move || {
            let b = body.clone();
            async move { b }
        }),
    );
    let server = ykt_sim::server::SimServer::start(router).await?;
    let http = ykt_http::client::client_with_timeout(std::time::Duration::from_secs(3600))
        .map_err(|e| anyhow!("{e}"))?;
    let clock = Clock::start();
    let mut resp = http.get(format!("{}/raw", server.url())).send().await?;
    anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
    let mut got = 0u64;
    while let Some(chunk) = resp.chunk().await? {
        got += chunk.len() as u64;
    }
    anyhow::ensure!(got == n, "raw transfer {got} bytes, expected {n}");
    Ok(clock.stop("http", lines))
}

/// The parent: for each province (all compiled in, or `--province`) and backend, the data
/// set in `<dir>/cycle-<province>/` and one child process.
pub(super) async fn run_cycles(
    args: &BenchArgs,
    dir: &Path,
    notes: &mut Vec<String>,
) -> anyhow::Result<BTreeMap<String, StageOut>> {
    let cfg = Config::default();
    let provinces: Vec<Box<dyn Province>> = match &args.province {
        Some(p) => vec![crate::build_province(
            crate::select_province(Some(p), &cfg)?,
            &cfg,
        )?],
        None => crate::provinces()
            .into_iter()
            .map(|d| crate::build_province(d, &cfg))
            .collect::<Result<_, _>>()?,
    };
    let mut outs = BTreeMap::new();
    let pg = if args.no_pg {
        None
    } else {
        match super::pg_admin(&args.pg_url).await {
            Ok(c) => Some(c),
            Err(e) => {
                notes.push(format!(
                    "PostgreSQL at {} is unreachable ({e}); the PostgreSQL cycles are skipped.",
                    super::redact_url(&args.pg_url)
                ));
                None
            }
        }
    };
    let mut pg = pg;
    for p in &provinces {
        let sub = dir.join(format!("cycle-{}", p.code()));
        let files = Files::in_dir(&sub);
        let sub_args = BenchArgs {
            province: Some(p.code().to_owned()),
            ..args.clone()
        };
        let m = ensure_data(&sub_args, p.as_ref(), &files)?;
        eprintln!(
            "cycle data {}: roster {:.1} MB, registry {} records",
            p.code(),
            mb(m.roster_bytes),
            m.registry_records
        );
        let db = sub.join("cycle.db");
        remove_sqlite(&db)?;
        let url = format!("sqlite://{}", db.display());
        let key = format!("cycle-{}-sqlite", p.code());
        let mut o = spawn_stage(&sub_args, p.as_ref(), &sub, "cycle", Some(&url))?;
        o.stage = key.clone();
        outs.insert(key, o);
        remove_sqlite(&db)?;
        if let Some(admin) = pg.as_mut() {
            let name = format!("ykt_bench_cycle_{:08x}", rand::random::<u32>());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut *admin)
                .await
                .with_context(|| format!("CREATE DATABASE {name}"))?;
            let url = super::with_database(&args.pg_url, &name);
            let r = spawn_stage(&sub_args, p.as_ref(), &sub, "cycle", Some(&url));
            let dropped = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut *admin)
                .await;
            if let Err(e) = dropped {
                eprintln!("warning: could not drop database {name}: {e}");
            }
            let key = format!("cycle-{}-pg", p.code());
            let mut o = r?;
            o.stage = key.clone();
            outs.insert(key, o);
        }
    }
    Ok(outs)
}

/// One row of the cycle table.
#[derive(Debug, Clone, Serialize)]
pub(super) struct CycleRow {
    province: String,
    backend: String,
    phase: String,
    lines: u64,
    seconds: f64,
    cpu_seconds: f64,
    lines_per_second: f64,
    peak_rss_mb: f64,
    ratio: Option<f64>,
    limit: String,
    target: String,
    met: Option<bool>,
}

pub(super) fn cycle_rows(outs: &BTreeMap<String, StageOut>) -> Vec<CycleRow> {
    let mut rows = Vec::new();
    for o in outs.values() {
        let province = o.info.get("province").cloned().unwrap_or_default();
        let backend = o.info.get("backend").cloned().unwrap_or_default();
        let lines = o.summary.as_ref().map(|t| t.lines).unwrap_or(0);
        let secs = |name: &str| o.metric(name).map(|m| m.seconds).unwrap_or(0.0);
        let (parse, insert, http) = (secs("parse"), secs("insert"), secs("http"));
        let raw_sum = parse + insert + http;
        let row = |phase: &str, s: f64, cpu: f64, rss_kb: u64| CycleRow {
            province: province.clone(),
            backend: backend.clone(),
            phase: phase.to_owned(),
            lines,
            seconds: s,
            cpu_seconds: cpu,
            lines_per_second: if s > 0.0 { lines as f64 / s } else { 0.0 },
            peak_rss_mb: rss_kb as f64 / 1024.0,
            ratio: None,
            limit: String::new(),
            target: String::new(),
            met: None,
        };
        let mut peak = 0u64;
        let (mut total, mut total_cpu) = (0.0, 0.0);
        for ph in &o.phases {
            let mut r = row(&ph.name, ph.seconds, ph.cpu_seconds, ph.peak_rss_kb);
            if ph.name == "intake" && insert > 0.0 {
                r.ratio = Some(ph.seconds / insert);
                r.limit = "raw insert".into();
                r.target = format!("<= {TARGET_INTAKE_RATIO:.0}x");
                r.met = r.ratio.map(|x| x <= TARGET_INTAKE_RATIO);
            }
            peak = peak.max(ph.peak_rss_kb);
            total += ph.seconds;
            total_cpu += ph.cpu_seconds;
            rows.push(r);
        }
        let mut r = row("whole cycle", total, total_cpu, peak);
        if raw_sum > 0.0 {
            r.ratio = Some(total / raw_sum);
            r.limit = "sum of raw limits".into();
        }
        r.target = format!("<= {TARGET_CYCLE_RATIO:.0}x, < {TARGET_CYCLE_PEAK_MB:.0} MB");
        let mem_ok = r.peak_rss_mb < TARGET_CYCLE_PEAK_MB;
        r.met = Some(r.ratio.is_some_and(|x| x <= TARGET_CYCLE_RATIO) && mem_ok);
        rows.push(r);
        for (name, what) in [
            ("parse", "raw: CSV parse"),
            (
                "insert",
                if backend == "SQLite" {
                    "raw: multi-row INSERT"
                } else {
                    "raw: COPY"
                },
            ),
            ("http", "raw: loopback HTTP of the bytes"),
        ] {
            if let Some(m) = o.metric(name) {
                rows.push(row(what, m.seconds, m.cpu_seconds, 0));
            }
        }
        rows.push(row("raw: sum", raw_sum, 0.0, 0));
    }
    rows
}

pub(super) fn render_cycle(rows: &[CycleRow]) -> String {
    let mut s = String::new();
    let header = format!(
        "{:<13} {:<10} {:<32} {:>9} {:>9} {:>9} {:>10} {:>7} {:>8}  {:<24} {}\n",
        "province",
        "backend",
        "phase",
        "lines",
        "s",
        "cpu s",
        "lines/s",
        "RSS MB",
        "ratio",
        "target",
        "met"
    );
    s.push_str(&header);
    s.push_str(&"-".repeat(header.trim_end().len()));
    s.push('\n');
    for r in rows {
        s.push_str(&format!(
            "{:<13} {:<10} {:<32} {:>9} {:>9.2} {:>9.2} {:>10.0} {:>7} {:>8}  {:<24} {}\n",
            r.province,
            r.backend,
            r.phase,
            r.lines,
            r.seconds,
            r.cpu_seconds,
            r.lines_per_second,
            if r.peak_rss_mb > 0.0 {
                format!("{:.0}", r.peak_rss_mb)
            } else {
                String::new()
            },
            r.ratio.map(|x| format!("{x:.2}x")).unwrap_or_default(),
            r.target,
            match r.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "",
            }
        ));
    }
    s
}
