//! `ykt bench` (`cargo xtask bench`): the intake benchmark of the foundation issue and the
//! whole-cycle benchmark of issue #8.
//!
//! Generates, streaming to disk, a GB18030 CSV card registry of `--registry` records and a
//! roster of `--lines` lines with the demo's realistic error mix (see [`crate::demo`]), then
//! runs each stage in its own child process (`ykt bench --stage NAME ...`), so the peak
//! resident set (`VmHWM`) each child reports is that stage's alone:
//!
//! | stage | what |
//! | --- | --- |
//! | `parse` | CSV decoding and parsing of the roster only (`RosterReader`) |
//! | `check` | `ykt check`: registry loaded into memory, then validation + card match |
//! | `raw-sqlite` | the raw limit: the same rows, no validation, multi-row INSERTs in one transaction |
//! | `sqlite-registry` | `Store::import_cards` (and regions, deaths) into a fresh SQLite file |
//! | `sqlite-import` | the real roster import (`intake::import_with`, the problems kept in the database only, as the console and `ykt import roster` without `--report` do) into that file |
//! | `raw-pg` | the raw limit on PostgreSQL: `COPY` in one transaction |
//! | `pg-registry`, `pg-import` | as on SQLite, in a fresh database dropped afterwards |
//! | `cycle` | each province's whole cycle on SQLite and PostgreSQL, per phase, with the raw limits measured in the same child (see [`cycle`]) |
//!
//! Each child prints its figures as JSON on its last stdout line; the parent prints the table
//! and writes it with the raw figures to `<dir>/results.json`. Speed and memory targets live
//! here, in figures a person reads, not in timed tests.
//!
//! `check` runs on one thread (the import overlaps storing with validation: a writer task); the
//! database drivers add their own threads (sqlx runs each SQLite connection on a worker
//! thread, PostgreSQL does the work in its server process). CPU seconds are reported next to
//! wall seconds so the figures say how many cores were busy.

use crate::config::Config;
use crate::demo::{
    DEATH_HEADERS, DEMO_PERIOD, DEMO_PROJECT, REGISTRY_HEADERS, ROSTER_HEADERS, RosterGen,
    card_cells, death_cells, defect_plan, lines_without_card, province_prefix,
};
use crate::intake::{self, ImportResult, Problems, Request};
use crate::registers::{MemRegisters, demo_regions};
use anyhow::{Context, anyhow, bail};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::Connection;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;
use ykt_files::export::CsvGb18030Writer;
use ykt_files::roster::RosterReader;
use ykt_kernel::card::CardRecord;
use ykt_kernel::intake::IntakeSummary;
use ykt_kernel::province::Province;
use ykt_kernel::roster::RawLine;
use ykt_kernel::{RegionCode, Role, User};
use ykt_store::{ImportMeta, ImportOutcome, Store, Vault, kinds, ok_rows};

/// Validation target: lines per second on one core.
const TARGET_CHECK_LINES_PER_S: f64 = 1_000_000.0;
/// Import target: at most this many times the raw limit's time.
const TARGET_IMPORT_RATIO: f64 = 2.0;
/// Memory target for stages that process the roster.
const TARGET_PEAK_MB: f64 = 300.0;
/// Bump when the generated data changes, so old data sets are regenerated.
const GENERATOR_VERSION: u32 = 1;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Roster lines to generate.
    #[arg(long, default_value_t = 1_000_000)]
    pub lines: usize,
    /// Card registry records to generate.
    #[arg(long, default_value_t = 2_000_000)]
    pub registry: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 2023)]
    pub seed: u64,
    /// Work directory: the generated files, the SQLite databases and results.json.
    #[arg(long, default_value = "target/bench")]
    pub dir: PathBuf,
    /// PostgreSQL server for the PostgreSQL stages (a database `ykt_bench_<random>` is
    /// created there and dropped afterwards); skipped with a note when unreachable.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg_url: String,
    /// Skip the PostgreSQL stages.
    #[arg(long)]
    pub no_pg: bool,
    /// Province whose rules apply (default: the configured one, or the first compiled in).
    #[arg(long)]
    pub province: Option<String>,
    /// Run only these stages (comma-separated: parse, check, raw-sqlite, sqlite-registry,
    /// sqlite-import, raw-pg, pg-registry, pg-import, cycle); the import stages need their
    /// registry stage. `cycle` runs each province's whole cycle on SQLite and PostgreSQL
    /// (all provinces compiled in, or `--province`).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Generate the data set again even when `<dir>/data` already holds it.
    #[arg(long)]
    pub regenerate: bool,
    /// Internal: run one stage in this process and print its figures as JSON.
    #[arg(long, hide = true)]
    pub stage: Option<String>,
    /// Internal: the database URL of a stage.
    #[arg(long, hide = true)]
    pub db: Option<String>,
    /// Not an option: the program the stages run (set by the parent).
    #[arg(skip)]
    pub stage_exe: Option<PathBuf>,
    /// Another benchmark instead of intake (`ykt bench lookup`).
    #[command(subcommand)]
    pub mode: Option<BenchMode>,
}

/// The other benchmarks.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum BenchMode {
    /// 补贴查询 under concurrent load against a trivial handler, on 1,000,000 paid lines
    /// (issue #8); see [`lookup`].
    Lookup(lookup::LookupArgs),
}

pub mod cycle;
pub mod lookup;
pub use cycle::phase;

/// One measured part of a stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Metric {
    name: String,
    items: u64,
    seconds: f64,
    cpu_seconds: f64,
}

/// What a stage's child process reports (its last stdout line).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StageOut {
    stage: String,
    metrics: Vec<Metric>,
    wall_seconds: f64,
    cpu_seconds: f64,
    peak_rss_kb: u64,
    #[serde(default)]
    summary: Option<Totals>,
    #[serde(default)]
    info: BTreeMap<String, String>,
    /// The whole-cycle stage's phases.
    #[serde(default)]
    phases: Vec<cycle::PhaseOut>,
}

impl StageOut {
    fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

/// Intake totals, compared across stages (check, SQLite and PostgreSQL must agree).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Totals {
    lines: u64,
    accepted: u64,
    rejected: u64,
    accepted_fen: i64,
    issues: BTreeMap<String, u64>,
}

impl From<&IntakeSummary> for Totals {
    fn from(s: &IntakeSummary) -> Totals {
        Totals {
            lines: s.lines,
            accepted: s.accepted,
            rejected: s.rejected,
            accepted_fen: s.accepted_amount.0,
            issues: s.by_code.clone(),
        }
    }
}

/// The generated files.
struct Files {
    roster: PathBuf,
    registry: PathBuf,
    deaths: PathBuf,
    manifest: PathBuf,
}

impl Files {
    fn in_dir(dir: &Path) -> Files {
        let data = dir.join("data");
        Files {
            roster: data.join("roster.csv"),
            registry: data.join("registry.csv"),
            deaths: data.join("deaths.csv"),
            manifest: data.join("manifest.json"),
        }
    }
}

/// What was generated, to reuse a data set made with the same parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Manifest {
    generator: u32,
    province: String,
    seed: u64,
    lines: usize,
    registry_requested: usize,
    registry_records: u64,
    deaths: u64,
    roster_bytes: u64,
    registry_bytes: u64,
}

pub async fn run(cfg: &Config, args: BenchArgs) -> anyhow::Result<u8> {
    if let Some(BenchMode::Lookup(a)) = args.mode {
        return lookup::run(cfg, a).await;
    }
    let province = crate::build_province(
        crate::select_province(args.province.as_deref(), cfg).or_else(|e| {
            if args.province.is_none() {
                crate::provinces().into_iter().next().ok_or(e)
            } else {
                Err(e)
            }
        })?,
        cfg,
    )?;
    if let Some(stage) = args.stage.clone() {
        return run_stage(cfg, &stage, &args, province.as_ref(), cfg.today()).await;
    }
    run_parent(&args, province.as_ref()).await
}

// ----- the parent: generate, run the stages, print the table ----------------------------------

async fn run_parent(args: &BenchArgs, province: &dyn Province) -> anyhow::Result<u8> {
    anyhow::ensure!(args.lines > 0, "--lines 至少为 1 (at least 1)");
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("无法创建目录 {}", args.dir.display()))?;
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("{}", args.dir.display()))?;
    let files = Files::in_dir(&dir);
    eprintln!(
        "ykt bench: {} lines, {} registry records, province {}, seed {}, dir {}",
        args.lines,
        args.registry,
        province.code(),
        args.seed,
        dir.display()
    );
    let load_before = loadavg();
    // The intake stages' data set (the cycle makes one per province).
    let intake_wanted = args.only.is_empty() || args.only.iter().any(|o| o != "cycle");
    let manifest = if intake_wanted {
        let m = ensure_data(args, province, &files)?;
        eprintln!(
            "data: roster {:.1} MB, registry {} records {:.1} MB, deaths {}",
            mb(m.roster_bytes),
            m.registry_records,
            mb(m.registry_bytes),
            m.deaths
        );
        Some(m)
    } else {
        None
    };

    // The stages run from a copy of this binary: a build into the shared target directory
    // while the benchmark runs must not swap the program under it.
    let exe = dir.join("ykt-bench-stage");
    std::fs::copy(std::env::current_exe().context("current_exe")?, &exe)
        .with_context(|| format!("{}", exe.display()))?;
    let args = &BenchArgs {
        stage_exe: Some(exe),
        ..args.clone()
    };
    let wanted = |s: &str| args.only.is_empty() || args.only.iter().any(|o| o == s);
    let mut outs: BTreeMap<String, StageOut> = BTreeMap::new();
    let mut notes: Vec<String> = Vec::new();

    for stage in ["parse", "check"] {
        if wanted(stage) {
            outs.insert(
                stage.into(),
                spawn_stage(args, province, &dir, stage, None)?,
            );
        }
    }

    // SQLite.
    let raw_db = dir.join("raw.db");
    let store_db = dir.join("ykt.db");
    if wanted("raw-sqlite") {
        remove_sqlite(&raw_db)?;
        let url = format!("sqlite://{}", raw_db.display());
        outs.insert(
            "raw-sqlite".into(),
            spawn_stage(args, province, &dir, "raw-sqlite", Some(&url))?,
        );
        remove_sqlite(&raw_db)?;
    }
    let sqlite_url = format!("sqlite://{}", store_db.display());
    if wanted("sqlite-registry") {
        remove_sqlite(&store_db)?;
        outs.insert(
            "sqlite-registry".into(),
            spawn_stage(args, province, &dir, "sqlite-registry", Some(&sqlite_url))?,
        );
    }
    if wanted("sqlite-import") {
        outs.insert(
            "sqlite-import".into(),
            spawn_stage(args, province, &dir, "sqlite-import", Some(&sqlite_url))?,
        );
    }

    // PostgreSQL.
    let pg_stages = ["raw-pg", "pg-registry", "pg-import"];
    if args.no_pg {
        notes.push("PostgreSQL stages skipped (--no-pg).".into());
    } else if pg_stages.iter().any(|s| wanted(s)) {
        match pg_admin(&args.pg_url).await {
            Err(e) => {
                let note = format!(
                    "PostgreSQL at {} is unreachable ({e}); PostgreSQL stages skipped.",
                    redact_url(&args.pg_url)
                );
                eprintln!("note: {note}");
                notes.push(note);
            }
            Ok(mut admin) => {
                let name = format!("ykt_bench_{:08x}", rand::random::<u32>());
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .with_context(|| format!("CREATE DATABASE {name}"))?;
                let url = with_database(&args.pg_url, &name);
                let mut run_pg = || -> anyhow::Result<()> {
                    for stage in pg_stages {
                        if wanted(stage) {
                            outs.insert(
                                stage.into(),
                                spawn_stage(args, province, &dir, stage, Some(&url))?,
                            );
                        }
                    }
                    Ok(())
                };
                let result = run_pg();
                let dropped = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await;
                if let Err(e) = dropped {
                    eprintln!("warning: could not drop database {name}: {e}");
                }
                result?;
            }
        }
    }
    if store_db.exists() {
        remove_sqlite(&store_db)?;
    }

    // Each province's whole cycle (issue #8).
    let cycles = if wanted("cycle") {
        cycle::run_cycles(args, &dir, &mut notes).await?
    } else {
        BTreeMap::new()
    };
    let _ = std::fs::remove_file(dir.join("ykt-bench-stage"));

    // Do the three intakes agree?
    let totals: Vec<(&str, &Totals)> = ["check", "sqlite-import", "pg-import"]
        .into_iter()
        .filter_map(|s| Some((s, outs.get(s)?.summary.as_ref()?)))
        .collect();
    if let Some((first, t)) = totals.first() {
        for (other, u) in &totals[1..] {
            if t != u {
                bail!("{first} and {other} disagree on the intake result: {t:?} vs {u:?}");
            }
        }
        notes.push(format!(
            "Intake result (identical in {}): {} lines, {} accepted, {} rejected.",
            totals
                .iter()
                .map(|(s, _)| *s)
                .collect::<Vec<_>>()
                .join(", "),
            t.lines,
            t.accepted,
            t.rejected
        ));
    }

    // Other work on the machine inflates wall times: say how busy it was.
    notes.push(format!(
        "Load average (1 min) at the start and the end: {} and {}, on {} CPUs.",
        load_before,
        loadavg(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    ));
    let rows = table_rows(&outs);
    if !rows.is_empty() {
        crate::out!("{}", render_table(&rows));
    }
    let cycle_rows = cycle::cycle_rows(&cycles);
    if !cycle_rows.is_empty() {
        crate::out!("{}", cycle::render_cycle(&cycle_rows));
    }
    for n in &notes {
        crate::outln!("{n}");
    }
    let results = serde_json::json!({
        "date": chrono::Local::now().to_rfc3339(),
        "machine": machine(),
        "args": {
            "lines": args.lines, "registry": args.registry, "seed": args.seed,
            "province": province.code(), "pg": !args.no_pg,
        },
        "data": manifest,
        "rows": rows,
        "cycle_rows": cycle_rows,
        "notes": notes,
        "stages": outs,
        "cycles": cycles,
    });
    let path = dir.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)?)
        .with_context(|| format!("{}", path.display()))?;
    crate::outln!("results: {}", path.display());
    Ok(0)
}

/// The 1-minute load average, as `/proc/loadavg` gives it.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

fn remove_sqlite(db: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("{}", db.display())),
        }
    }
    Ok(())
}

/// Run one stage in a child process and read the JSON on its last stdout line.
fn spawn_stage(
    args: &BenchArgs,
    province: &dyn Province,
    dir: &Path,
    stage: &str,
    db: Option<&str>,
) -> anyhow::Result<StageOut> {
    eprintln!("stage {stage} ...");
    let exe = match &args.stage_exe {
        Some(e) => e.clone(),
        None => std::env::current_exe().context("current_exe")?,
    };
    let mut cmd = Command::new(exe);
    cmd.arg("bench")
        .arg("--stage")
        .arg(stage)
        .arg("--lines")
        .arg(args.lines.to_string())
        .arg("--registry")
        .arg(args.registry.to_string())
        .arg("--seed")
        .arg(args.seed.to_string())
        .arg("--province")
        .arg(province.code())
        .arg("--dir")
        .arg(dir);
    if let Some(db) = db {
        cmd.arg("--db").arg(db);
    }
    // sqlx logs every statement over a second at `warn`, with its whole text: a bulk insert
    // would flood the output.
    if std::env::var_os("YKT_LOG").is_none() {
        cmd.env("YKT_LOG", "error");
    }
    // The cycle runs the demo's calendar (the roster's period is the demo's).
    if stage == "cycle" && std::env::var_os("YKT_TODAY").is_none() {
        cmd.env("YKT_TODAY", "2023-05-20");
    }
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("stage {stage}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stage == "cycle" {
        // The cycle's transcript (what `ykt demo` prints), kept next to its data.
        let log = dir.join(match db {
            Some(u) if u.starts_with("sqlite:") => "cycle-sqlite.log",
            _ => "cycle-pg.log",
        });
        let _ = std::fs::write(&log, stdout.as_bytes());
    }
    if !out.status.success() {
        bail!("stage {stage} failed ({}): {stdout}", out.status);
    }
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| anyhow!("stage {stage} printed no figures"))?;
    let o: StageOut =
        serde_json::from_str(last).with_context(|| format!("stage {stage} figures: {last}"))?;
    for m in &o.metrics {
        eprintln!(
            "  {:<28} {:>10} in {:>8.2} s = {:>12.0}/s (cpu {:.2} s)",
            m.name,
            m.items,
            m.seconds,
            rate(m.items, m.seconds),
            m.cpu_seconds
        );
    }
    eprintln!("  peak RSS {:.1} MB", o.peak_rss_kb as f64 / 1024.0);
    Ok(o)
}

fn rate(items: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        items as f64 / seconds
    } else {
        0.0
    }
}

/// One row of the printed table.
#[derive(Debug, Clone, Serialize)]
struct Row {
    stage: String,
    what: String,
    items: u64,
    seconds: f64,
    per_second: f64,
    cpu_seconds: f64,
    peak_rss_mb: Option<f64>,
    ratio_to_raw: Option<f64>,
    target: String,
    met: Option<bool>,
}

fn table_rows(outs: &BTreeMap<String, StageOut>) -> Vec<Row> {
    let mut rows = Vec::new();
    let rss = |o: &StageOut| o.peak_rss_kb as f64 / 1024.0;
    let row = |o: &StageOut, m: &Metric, what: &str, with_rss: bool| Row {
        stage: o.stage.clone(),
        what: what.to_owned(),
        items: m.items,
        seconds: m.seconds,
        per_second: rate(m.items, m.seconds),
        cpu_seconds: m.cpu_seconds,
        peak_rss_mb: with_rss.then(|| rss(o)),
        ratio_to_raw: None,
        target: String::new(),
        met: None,
    };
    let mem_target = |r: &mut Row| {
        r.target = format!("< {TARGET_PEAK_MB:.0} MB");
        r.met = r.peak_rss_mb.map(|m| m < TARGET_PEAK_MB);
    };
    if let Some(o) = outs.get("parse")
        && let Some(m) = o.metric("parse")
    {
        let mut r = row(o, m, "CSV decode + parse (RosterReader), lines", true);
        mem_target(&mut r);
        rows.push(r);
    }
    if let Some(o) = outs.get("check") {
        if let Some(m) = o.metric("registry load") {
            rows.push(row(o, m, "registry load into memory, records", false));
        }
        if let Some(m) = o.metric("validate") {
            let mut r = row(o, m, "validation + card match (excl. load), lines", false);
            r.target = format!(">= {:.0} lines/s, 1 core", TARGET_CHECK_LINES_PER_S);
            r.met = Some(r.per_second >= TARGET_CHECK_LINES_PER_S);
            rows.push(r);
        }
        if let Some(m) = o.metric("total") {
            let mut r = row(o, m, "check incl. registry load, lines", true);
            mem_target(&mut r);
            rows.push(r);
        }
    }
    for (raw, registry, import, label) in [
        ("raw-sqlite", "sqlite-registry", "sqlite-import", "SQLite"),
        ("raw-pg", "pg-registry", "pg-import", "PostgreSQL"),
    ] {
        let raw_seconds = outs
            .get(raw)
            .and_then(|o| o.metric("insert"))
            .map(|m| m.seconds);
        if let Some(o) = outs.get(raw)
            && let Some(m) = o.metric("insert")
        {
            let how = if raw == "raw-pg" {
                "COPY"
            } else {
                "multi-row INSERT"
            };
            rows.push(row(o, m, &format!("raw limit: parse + {how}, lines"), true));
        }
        if let Some(o) = outs.get(registry)
            && let Some(m) = o.metric("cards")
        {
            rows.push(row(
                o,
                m,
                &format!("{label} registry import (import_cards), records"),
                true,
            ));
        }
        if let Some(o) = outs.get(import)
            && let Some(m) = o.metric("import")
        {
            let mut r = row(
                o,
                m,
                &format!("{label} roster import (real path), lines"),
                true,
            );
            r.ratio_to_raw = raw_seconds.filter(|s| *s > 0.0).map(|s| m.seconds / s);
            r.target = format!("<= {TARGET_IMPORT_RATIO:.0}x raw, < {TARGET_PEAK_MB:.0} MB");
            let mem_ok = r.peak_rss_mb.is_some_and(|m| m < TARGET_PEAK_MB);
            r.met = r
                .ratio_to_raw
                .map(|x| x <= TARGET_IMPORT_RATIO && mem_ok)
                .or(Some(mem_ok).filter(|ok| !ok));
            rows.push(r);
        }
    }
    rows
}

fn render_table(rows: &[Row]) -> String {
    let mut s = String::new();
    let header = format!(
        "{:<16} {:<54} {:>9} {:>8} {:>11} {:>8} {:>8} {:>7}  {:<28} {}\n",
        "stage", "what", "items", "s", "per s", "cpu s", "RSS MB", "ratio", "target", "met"
    );
    s.push_str(&header);
    s.push_str(&"-".repeat(header.trim_end().len()));
    s.push('\n');
    for r in rows {
        s.push_str(&format!(
            "{:<16} {:<54} {:>9} {:>8.2} {:>11.0} {:>8.2} {:>8} {:>7}  {:<28} {}\n",
            r.stage,
            r.what,
            r.items,
            r.seconds,
            r.per_second,
            r.cpu_seconds,
            r.peak_rss_mb
                .map(|m| format!("{m:.0}"))
                .unwrap_or_else(|| "".into()),
            r.ratio_to_raw
                .map(|x| format!("{x:.2}x"))
                .unwrap_or_default(),
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

/// The machine, for the record.
fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_total = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .map(|l| l.trim_start_matches("MemTotal:").trim().to_owned())
        .unwrap_or_default();
    serde_json::json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "mem_total": mem_total,
    })
}

/// Generate the data set unless `<dir>/data` holds one made with the same parameters.
fn ensure_data(
    args: &BenchArgs,
    province: &dyn Province,
    files: &Files,
) -> anyhow::Result<Manifest> {
    if !args.regenerate
        && let Ok(text) = std::fs::read_to_string(&files.manifest)
        && let Ok(m) = serde_json::from_str::<Manifest>(&text)
        && m.generator == GENERATOR_VERSION
        && m.province == province.code()
        && m.seed == args.seed
        && m.lines == args.lines
        && m.registry_requested == args.registry
        && file_len(&files.roster) == Some(m.roster_bytes)
        && file_len(&files.registry) == Some(m.registry_bytes)
        && files.deaths.exists()
    {
        eprintln!("data: reusing {}", files.manifest.display());
        return Ok(m);
    }
    let t = Instant::now();
    let m = generate(args, province, files)?;
    eprintln!("data: generated in {:.1} s", t.elapsed().as_secs_f64());
    std::fs::write(&files.manifest, serde_json::to_string_pretty(&m)?)
        .with_context(|| format!("{}", files.manifest.display()))?;
    Ok(m)
}

fn file_len(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.len())
}

/// Write the registry, death register and roster in one streaming pass.
fn generate(args: &BenchArgs, province: &dyn Province, files: &Files) -> anyhow::Result<Manifest> {
    if let Some(d) = files.roster.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("{}", d.display()))?;
    }
    let _ = std::fs::remove_file(&files.manifest);
    // Registry = the roster's people who have a card + registry-only people up to the size.
    let with_card = args.lines - lines_without_card(&defect_plan(args.lines));
    let extra = args.registry.saturating_sub(with_card);
    let mut registry = CsvGb18030Writer::create(&files.registry, &REGISTRY_HEADERS)?;
    let write_card = |w: &mut CsvGb18030Writer, c: &CardRecord| -> anyhow::Result<()> {
        w.write_row(&card_cells(c))?;
        Ok(())
    };
    let mut generator = RosterGen::new(province, args.lines, extra, args.seed, true, |c| {
        write_card(&mut registry, &c)
    })?;
    let mut roster = CsvGb18030Writer::create(&files.roster, &ROSTER_HEADERS)?;
    let mut deaths = CsvGb18030Writer::create(&files.deaths, &DEATH_HEADERS)?;
    while let Some(line) = generator.next_line()? {
        roster.write_row(&line.roster)?;
        if let Some(c) = &line.card {
            write_card(&mut registry, c)?;
        }
        if let Some(d) = &line.death {
            deaths.write_row(&death_cells(d))?;
        }
    }
    let registry_records = registry.finish()?;
    let n_deaths = deaths.finish()?;
    roster.finish()?;
    Ok(Manifest {
        generator: GENERATOR_VERSION,
        province: province.code().to_owned(),
        seed: args.seed,
        lines: args.lines,
        registry_requested: args.registry,
        registry_records,
        deaths: n_deaths,
        roster_bytes: file_len(&files.roster).unwrap_or(0),
        registry_bytes: file_len(&files.registry).unwrap_or(0),
    })
}

// ----- PostgreSQL administration ------------------------------------------------------------

async fn pg_admin(url: &str) -> anyhow::Result<sqlx::PgConnection> {
    use sqlx::ConnectOptions;
    use std::str::FromStr;
    // Quiet: CREATE/DROP DATABASE may pass sqlx's one-second slow-statement warning.
    let opts = sqlx::postgres::PgConnectOptions::from_str(url)?.disable_statement_logging();
    let connect = sqlx::PgConnection::connect_with(&opts);
    match tokio::time::timeout(std::time::Duration::from_secs(5), connect).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(anyhow!("{e}")),
        Err(_) => Err(anyhow!("timed out after 5 s")),
    }
}

/// `url` with its database replaced by `db` (query parameters kept).
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let host_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let mut out = match base[host_start..].find('/') {
        Some(i) => base[..host_start + i].to_owned(),
        None => base.to_owned(),
    };
    out.push('/');
    out.push_str(db);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(a)) if a > s => format!("{}://***@{}", &url[..s], &url[a + 1..]),
        _ => url.to_owned(),
    }
}

// ----- the stages (run in a child process) --------------------------------------------------

/// CPU seconds (user + system) of this process so far, from `/proc/self/stat` (clock ticks of
/// 1/100 s, Linux's fixed `USER_HZ`).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name: field 3 (state) is index 0, utime (14) index 11, stime (15) 12.
    (ticks(11) + ticks(12)) / 100.0
}

/// A stage's peak resident set: the cycle resets the peak at each phase
/// (`/proc/self/clear_refs`), so it is the largest of the phases' and `now` (the last one's
/// alone was reported until the eleventh round: Sichuan's 1M run said 324 MB, its funding
/// phase had reached 551).
fn stage_peak_kb(phases: &[cycle::PhaseOut], now: u64) -> u64 {
    phases.iter().map(|p| p.peak_rss_kb).fold(now, u64::max)
}

/// Peak resident set size (`VmHWM`) in KiB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Times one part of a stage.
struct Clock {
    wall: Instant,
    cpu: f64,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu: cpu_seconds(),
        }
    }
    fn stop(&self, name: &str, items: u64) -> Metric {
        Metric {
            name: name.to_owned(),
            items,
            seconds: self.wall.elapsed().as_secs_f64(),
            cpu_seconds: cpu_seconds() - self.cpu,
        }
    }
}

/// The fixed master key of the benchmark's own databases (synthetic data only).
fn bench_vault(seed: u64) -> Vault {
    let mut key = [0x5au8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    Vault::new(key)
}

async fn run_stage(
    cfg: &Config,
    stage: &str,
    args: &BenchArgs,
    province: &dyn Province,
    today: NaiveDate,
) -> anyhow::Result<u8> {
    let files = Files::in_dir(&args.dir);
    let db = || args.db.clone().ok_or_else(|| anyhow!("--db is required"));
    let total = Clock::start();
    let mut out = match stage {
        "parse" => stage_parse(&files)?,
        "check" => stage_check(&files, province, today).await?,
        "raw-sqlite" => stage_raw_sqlite(&files, &db()?).await?,
        "raw-pg" => stage_raw_pg(&files, &db()?).await?,
        "sqlite-registry" | "pg-registry" => stage_registry(&files, args, &db()?, today).await?,
        "sqlite-import" | "pg-import" => {
            stage_import(&files, args, province, &db()?, today).await?
        }
        "cycle" => cycle::stage_cycle(cfg, &files, args, province, &db()?, today).await?,
        other => bail!("unknown stage `{other}`"),
    };
    let t = total.stop("", 0);
    out.stage = stage.to_owned();
    out.wall_seconds = t.seconds;
    out.cpu_seconds = cpu_seconds();
    out.peak_rss_kb = stage_peak_kb(&out.phases, peak_rss_kb());
    crate::outln!("{}", serde_json::to_string(&out)?);
    Ok(0)
}

fn stage_parse(files: &Files) -> anyhow::Result<StageOut> {
    let clock = Clock::start();
    let mut reader = RosterReader::open(&files.roster)?;
    let (mut lines, mut bad) = (0u64, 0u64);
    for line in reader.by_ref() {
        match line {
            Ok(l) => {
                lines += 1;
                std::hint::black_box(&l);
            }
            Err(_) => bad += 1,
        }
    }
    let mut out = StageOut {
        metrics: vec![clock.stop("parse", lines + bad)],
        ..StageOut::default()
    };
    out.info.insert("row_errors".into(), bad.to_string());
    out.info.insert("format".into(), reader.format().label());
    Ok(out)
}

fn request<'a>(
    province: &'a dyn Province,
    regions: &'a MemRegisters,
    scope: Option<RegionCode>,
    today: NaiveDate,
) -> anyhow::Result<Request<'a>> {
    let (project, period) = intake::resolve(province, DEMO_PROJECT, DEMO_PERIOD)?;
    Ok(Request {
        province,
        project,
        period,
        today,
        scope,
        regions: Some(regions),
        check_cards: true,
    })
}

async fn stage_check(
    files: &Files,
    province: &dyn Province,
    today: NaiveDate,
) -> anyhow::Result<StageOut> {
    let load = Clock::start();
    let mut regs = MemRegisters::default();
    regs.load_cards(&files.registry, today)?;
    regs.load_deaths(&files.deaths, today)?;
    regs.add_regions(demo_regions());
    if let Some((file, p)) = regs.problems.first() {
        bail!("{file}: {p}");
    }
    let loaded = load.stop("registry load", regs.cards.len() as u64);
    let validate = Clock::start();
    let req = request(province, &regs, None, today)?;
    let report = intake::check(&files.roster, &req, &regs, &regs).await?;
    let lines = report.summary.lines;
    let validated = validate.stop("validate", lines);
    let total = load.stop("total", lines);
    let mut out = StageOut {
        metrics: vec![loaded, validated, total],
        summary: Some(Totals::from(&report.summary)),
        ..StageOut::default()
    };
    out.info
        .insert("problems".into(), report.problems.len().to_string());
    Ok(out)
}

async fn stage_registry(
    files: &Files,
    args: &BenchArgs,
    url: &str,
    today: NaiveDate,
) -> anyhow::Result<StageOut> {
    let store = Store::connect(url, bench_vault(args.seed)).await?;
    let cards = load_registers(&store, files, today).await?;
    store.close().await;
    Ok(StageOut {
        metrics: vec![cards],
        ..StageOut::default()
    })
}

/// Regions, the card registry (streamed) and the death register into `store`; the registry
/// import is timed.
async fn load_registers(store: &Store, files: &Files, today: NaiveDate) -> anyhow::Result<Metric> {
    let meta = |kind: &str, file: &Path| -> anyhow::Result<ImportMeta> {
        Ok(ImportMeta {
            kind: kind.into(),
            file_name: file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: intake::hash_file(file)?,
            scope: String::new(),
            actor: "bench".into(),
        })
    };
    store
        .import_regions(
            ok_rows(demo_regions()),
            ImportMeta::for_bytes(
                kinds::REGIONS,
                "regions.csv",
                crate::registers::DEMO_REGIONS_CSV.as_bytes(),
                "bench",
            ),
        )
        .await?;

    // The registry is streamed: a reader thread parses the file into a bounded channel the
    // import pulls from, so memory holds a few thousand records, not two million.
    let clock = Clock::start();
    let card_meta = meta(kinds::CARDS, &files.registry)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<CardRecord, String>>(4096);
    let path = files.registry.clone();
    let reader = std::thread::spawn(move || {
        ykt_files::registry::for_each_card(&path, today, |r| {
            let _ = tx.send(r.map_err(|p| p.to_string()));
        })
    });
    let outcome = store.import_cards(rx, card_meta).await;
    let read = reader
        .join()
        .map_err(|_| anyhow!("registry reader thread panicked"))?;
    read?;
    let rows = match outcome? {
        ImportOutcome::Imported { rows, .. } => rows,
        ImportOutcome::AlreadyImported { .. } => bail!("registry already imported"),
    };
    let cards = clock.stop("cards", rows);

    let deaths = ykt_files::registry::read_death_register(&files.deaths, today)?;
    store
        .import_deaths(ok_rows(deaths.records), meta(kinds::DEATHS, &files.deaths)?)
        .await?;
    Ok(cards)
}

async fn stage_import(
    files: &Files,
    args: &BenchArgs,
    province: &dyn Province,
    url: &str,
    today: NaiveDate,
) -> anyhow::Result<StageOut> {
    let store = Store::connect(url, bench_vault(args.seed)).await?;
    let clock = Clock::start();
    let mut regions = MemRegisters::default();
    regions.add_regions(store.all_regions().await?);
    let scope = RegionCode::parse(province_prefix(province.code())).map_err(|e| anyhow!("{e}"))?;
    let user = User {
        login: "bench".into(),
        name: "bench".into(),
        roles: vec![Role::DeptMaker],
        region: scope.clone(),
        bank: None,
    };
    let req = request(province, &regions, Some(scope), today)?;
    // As the console and `ykt import roster` without `--report` import: the problems go to
    // the roster's issue list only.
    let result = intake::import_with(&store, &files.roster, &req, &user, Problems::Stored).await?;
    let (report, batches) = match result {
        ImportResult::Imported { report, result } => (report, result.batches.len()),
        ImportResult::AlreadyImported { .. } => bail!("roster already imported"),
    };
    let import = clock.stop("import", report.summary.lines);
    store.close().await;
    let mut out = StageOut {
        metrics: vec![import],
        summary: Some(Totals::from(&report.summary)),
        ..StageOut::default()
    };
    out.info.insert("batches".into(), batches.to_string());
    Ok(out)
}

/// The columns of the raw tables: those of `payment_lines`.
const RAW_COLS: [&str; 18] = [
    "batch_id",
    "row_no",
    "person_idx",
    "id_enc",
    "name",
    "phone_enc",
    "account_enc",
    "bank",
    "region",
    "project",
    "period",
    "dup_scope",
    "amount_fen",
    "state",
    "attempt",
    "proxy_kind",
    "proxy_name",
    "warnings",
];

/// `payment_lines` without its constraints: the same columns and indexes (the unique one
/// made plain, since unvalidated rows repeat people).
fn raw_table_sql(blob: &str, int: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE raw_lines (id {int} PRIMARY KEY{auto}, batch_id {int} NOT NULL, \
             row_no {int} NOT NULL, person_idx {blob} NOT NULL, id_enc {blob} NOT NULL, \
             name TEXT NOT NULL, phone_enc {blob}, account_enc {blob} NOT NULL, bank TEXT NOT NULL, \
             region TEXT NOT NULL, project TEXT NOT NULL, period TEXT NOT NULL, \
             dup_scope {int} NOT NULL, amount_fen {int} NOT NULL, state TEXT NOT NULL, \
             attempt {int} NOT NULL DEFAULT 0, fail_reason TEXT, proxy_kind TEXT, \
             proxy_name TEXT, warnings TEXT NOT NULL DEFAULT '')",
            auto = if int == "BIGINT" {
                " GENERATED BY DEFAULT AS IDENTITY"
            } else {
                ""
            }
        ),
        "CREATE INDEX raw_lines_once ON raw_lines (project, person_idx, period, dup_scope)".into(),
        "CREATE INDEX raw_lines_batch ON raw_lines (batch_id, state)".into(),
        "CREATE INDEX raw_lines_person ON raw_lines (person_idx, period)".into(),
    ]
}

/// A raw line's values, in [`RAW_COLS`] order, without validation: text as it came, the
/// amount read leniently.
struct RawRow {
    row: i64,
    id: Vec<u8>,
    name: String,
    phone: Option<Vec<u8>>,
    account: Vec<u8>,
    region: String,
    project: String,
    period: String,
    amount_fen: i64,
    proxy_kind: Option<String>,
    proxy_name: Option<String>,
}

impl RawRow {
    fn of(l: RawLine) -> RawRow {
        let amount_fen = l
            .amount
            .as_deref()
            .and_then(|a| a.parse::<f64>().ok())
            .map(|y| (y * 100.0).round() as i64)
            .unwrap_or(0);
        RawRow {
            row: i64::from(l.row),
            id: l.resident_id.map(String::into_bytes).unwrap_or_default(),
            name: l.name.unwrap_or_default(),
            phone: l.phone.map(String::into_bytes),
            account: l.bank_account.map(String::into_bytes).unwrap_or_default(),
            region: l.region.unwrap_or_default(),
            project: l.project.unwrap_or_default(),
            period: l.period.unwrap_or_default(),
            amount_fen,
            proxy_kind: l.proxy_kind,
            proxy_name: l.proxy_name,
        }
    }
}

/// Rows per multi-row INSERT of the SQLite raw limit (18 columns: 9,000 parameters).
const RAW_SQLITE_ROWS: usize = 500;

async fn stage_raw_sqlite(files: &Files, url: &str) -> anyhow::Result<StageOut> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use std::str::FromStr;
    // The store's settings (WAL, synchronous=FULL, 64 MiB cache): only the work differs.
    let opts = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .pragma("cache_size", "-65536");
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await?;
    for sql in raw_table_sql("BLOB", "INTEGER") {
        sqlx::query(&sql).execute(&mut conn).await?;
    }
    let version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&mut conn)
        .await?;
    let insert = |rows: usize| {
        let one = format!("({})", vec!["?"; RAW_COLS.len()].join(", "));
        format!(
            "INSERT INTO raw_lines ({}) VALUES {}",
            RAW_COLS.join(", "),
            vec![one; rows].join(", ")
        )
    };
    let full = insert(RAW_SQLITE_ROWS);
    let clock = Clock::start();
    let mut reader = RosterReader::open(&files.roster)?;
    let mut tx = conn.begin().await?;
    let mut total = 0u64;
    let mut chunk: Vec<RawRow> = Vec::with_capacity(RAW_SQLITE_ROWS);
    loop {
        chunk.clear();
        for line in reader.by_ref() {
            chunk.push(RawRow::of(line?));
            if chunk.len() == RAW_SQLITE_ROWS {
                break;
            }
        }
        if chunk.is_empty() {
            break;
        }
        total += chunk.len() as u64;
        let partial;
        let sql = if chunk.len() == RAW_SQLITE_ROWS {
            &full
        } else {
            partial = insert(chunk.len());
            &partial
        };
        let mut q = sqlx::query(sql);
        for r in chunk.drain(..) {
            q = q
                .bind(1i64)
                .bind(r.row)
                .bind(r.id.clone())
                .bind(r.id)
                .bind(r.name)
                .bind(r.phone)
                .bind(r.account)
                .bind("")
                .bind(r.region)
                .bind(r.project)
                .bind(r.period)
                .bind(0i64)
                .bind(r.amount_fen)
                .bind("pending")
                .bind(0i64)
                .bind(r.proxy_kind)
                .bind(r.proxy_name)
                .bind("");
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let insert = clock.stop("insert", total);
    conn.close().await?;
    let mut out = StageOut {
        metrics: vec![insert],
        ..StageOut::default()
    };
    out.info.insert("sqlite_version".into(), version);
    Ok(out)
}

/// Rows per COPY message of the PostgreSQL raw limit.
const RAW_PG_ROWS: usize = 2_000;

async fn stage_raw_pg(files: &Files, url: &str) -> anyhow::Result<StageOut> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    for sql in raw_table_sql("BYTEA", "BIGINT") {
        sqlx::query(&sql).execute(&mut conn).await?;
    }
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await?;
    let clock = Clock::start();
    let mut reader = RosterReader::open(&files.roster)?;
    let mut tx = conn.begin().await?;
    let mut copy = tx
        .copy_in_raw(&format!(
            "COPY raw_lines ({}) FROM STDIN",
            RAW_COLS.join(", ")
        ))
        .await?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut total = 0u64;
    let mut in_buf = 0;
    for line in reader.by_ref() {
        let r = RawRow::of(line?);
        copy_row(&mut buf, &r);
        total += 1;
        in_buf += 1;
        if in_buf == RAW_PG_ROWS {
            copy.send(buf.as_slice()).await?;
            buf.clear();
            in_buf = 0;
        }
    }
    if !buf.is_empty() {
        copy.send(buf.as_slice()).await?;
    }
    copy.finish().await?;
    tx.commit().await?;
    let insert = clock.stop("insert", total);
    conn.close().await?;
    let mut out = StageOut {
        metrics: vec![insert],
        ..StageOut::default()
    };
    out.info.insert("postgres_version".into(), version);
    Ok(out)
}

/// One row in COPY text format, in [`RAW_COLS`] order.
fn copy_row(buf: &mut Vec<u8>, r: &RawRow) {
    use std::io::Write as _;
    fn text(buf: &mut Vec<u8>, s: &str) {
        for &b in s.as_bytes() {
            match b {
                b'\\' => buf.extend_from_slice(b"\\\\"),
                b'\n' => buf.extend_from_slice(b"\\n"),
                b'\r' => buf.extend_from_slice(b"\\r"),
                b'\t' => buf.extend_from_slice(b"\\t"),
                _ => buf.push(b),
            }
        }
    }
    fn bytea(buf: &mut Vec<u8>, b: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        buf.extend_from_slice(b"\\\\x");
        for &x in b {
            buf.push(HEX[usize::from(x >> 4)]);
            buf.push(HEX[usize::from(x & 15)]);
        }
    }
    fn opt(buf: &mut Vec<u8>, s: &Option<String>) {
        match s {
            Some(s) => text(buf, s),
            None => buf.extend_from_slice(b"\\N"),
        }
    }
    let _ = write!(buf, "1\t{}\t", r.row);
    bytea(buf, &r.id);
    buf.push(b'\t');
    bytea(buf, &r.id);
    buf.push(b'\t');
    text(buf, &r.name);
    buf.push(b'\t');
    match &r.phone {
        Some(p) => bytea(buf, p),
        None => buf.extend_from_slice(b"\\N"),
    }
    buf.push(b'\t');
    bytea(buf, &r.account);
    buf.extend_from_slice(b"\t\t");
    text(buf, &r.region);
    buf.push(b'\t');
    text(buf, &r.project);
    buf.push(b'\t');
    text(buf, &r.period);
    let _ = write!(buf, "\t0\t{}\tpending\t0\t", r.amount_fen);
    opt(buf, &r.proxy_kind);
    buf.push(b'\t');
    opt(buf, &r.proxy_name);
    buf.extend_from_slice(b"\t\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "b"),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "b"),
            "postgres://u:p@h/b?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "b"), "postgres://h/b");
        assert_eq!(redact_url("postgres://u:p@h/db"), "postgres://***@h/db");
    }

    #[test]
    fn a_cycle_stage_reports_its_largest_phase_peak() {
        let ph = |name: &str, kb| cycle::PhaseOut {
            name: name.into(),
            seconds: 1.0,
            cpu_seconds: 1.0,
            peak_rss_kb: kb,
        };
        let phases = [
            ph("intake", 267_104),
            ph("funding", 550_996),
            ph("reports", 323_832),
        ];
        assert_eq!(stage_peak_kb(&phases, 323_832), 550_996);
        assert_eq!(stage_peak_kb(&[], 1_000), 1_000);
    }

    #[test]
    fn copy_rows_escape() {
        let r = RawRow {
            row: 2,
            id: b"1".to_vec(),
            name: "a\tb".into(),
            phone: None,
            account: Vec::new(),
            region: "r".into(),
            project: "p".into(),
            period: "2023-05".into(),
            amount_fen: 100,
            proxy_kind: None,
            proxy_name: Some("x\\y".into()),
        };
        let mut buf = Vec::new();
        copy_row(&mut buf, &r);
        let s = String::from_utf8(buf).unwrap();
        assert_eq!(s.matches('\t').count(), RAW_COLS.len() - 1);
        assert!(s.starts_with("1\t2\t\\\\x31\t\\\\x31\ta\\tb\t\\N\t\\\\x\t\tr\tp\t2023-05\t0\t100\tpending\t0\t\\N\tx\\\\y\t\n"));
    }

    /// The generator with unique IDs makes a registry of the requested size without
    /// duplicate people, and `check` over it gives the mix the demo promises.
    #[tokio::test]
    async fn small_data_set_checks() {
        crate::ensure_linked();
        let dir = tempfile::tempdir().unwrap();
        let d = crate::provinces()[0];
        let cfg = Config::default();
        let province = crate::build_province(d, &cfg).unwrap();
        let args = BenchArgs {
            lines: 3000,
            registry: 5000,
            seed: 7,
            dir: dir.path().to_path_buf(),
            pg_url: String::new(),
            no_pg: true,
            province: None,
            only: Vec::new(),
            regenerate: false,
            stage: None,
            db: None,
            stage_exe: None,
            mode: None,
        };
        let files = Files::in_dir(dir.path());
        let m = ensure_data(&args, province.as_ref(), &files).unwrap();
        assert_eq!(m.registry_records, 5000);
        let today = NaiveDate::from_ymd_opt(2023, 5, 20).unwrap();
        let out = stage_check(&files, province.as_ref(), today).await.unwrap();
        let t = out.summary.unwrap();
        assert_eq!(t.lines, 3000);
        assert!(t.rejected > 200 && t.rejected < 600, "{t:?}");
        assert_eq!(out.metrics[0].items, 5000);
    }
}
