//! The `ykt` command line.

use crate::config::Config;
use crate::cycle::{Cycle, CycleError};
use crate::intake::{self, ImportResult, IntakeFailure, Problems, Request};
use crate::output;
use crate::registers::{MemRegisters, demo_regions};
use anyhow::{Context, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use ykt_files::registry::{for_each_card, for_each_death, for_each_region};
use ykt_kernel::province::Province;
use ykt_kernel::{RegionCode, Role, User};
use ykt_store::cycle::LineFix;
use ykt_store::{ImportMeta, ImportOutcome, Store, UserRow, kinds};

#[derive(Parser, Debug)]
#[command(name = "ykt", version, about = "惠民惠农财政补贴资金「一卡通」发放平台 (yikatong)", long_about = None)]
pub struct Cli {
    /// Configuration file (default: ./ykt.toml if present, or $YKT_CONFIG).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// 列出已编译的省份 — list the provinces compiled into this binary.
    Provinces {
        #[arg(long)]
        json: bool,
    },
    /// 补贴项目目录 — the catalogue of a province: codes, names and rules.
    Catalog {
        #[arg(long)]
        province: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// 校验清册（不入库）— validate a roster without storing it. Exit 0: all accepted; 1: some
    /// lines rejected; 2: the file is unusable.
    Check(CheckArgs),
    /// 导入 — import a register or a roster into the configured database.
    #[command(subcommand)]
    Import(ImportCmd),
    /// 用户管理 — manage operator accounts.
    #[command(subcommand)]
    User(UserCmd),
    /// 发放批次 — list, show and drive batches through the province's workflow.
    #[command(subcommand)]
    Batch(BatchCmd),
    /// 审计日志 — verify the hash-chained audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// 演示 — generate a realistic data set into the embedded database and run intake on it.
    Demo(crate::demo::DemoArgs),
    /// 性能基准 — the intake benchmark (generated 1M-line roster, 2M-card registry): prints
    /// lines/s and peak memory per stage; `cargo xtask bench`.
    Bench(crate::bench::BenchArgs),
    /// 黑龙江省 — drive the unified-treasury cycle by hand (steps, results, notices), run the
    /// budget-system simulators, write the policy list, supervision indicators and clearing
    /// statements.
    #[cfg(feature = "province-heilongjiang")]
    #[command(subcommand, name = "heilongjiang", alias = "hlj")]
    Heilongjiang(crate::provinces::heilongjiang::cli::HljCmd),
    /// 四川省 — the zero-balance-account model: agency and proxy agreements, objections,
    /// plan declarations and finance's procedural review, the platform's polling, recoveries,
    /// the month-end check, unpaid items, statements, and the simulators.
    #[cfg(feature = "province-sichuan")]
    #[command(subcommand, name = "sichuan", alias = "sc")]
    Sichuan(crate::provinces::sichuan::cli::SichuanCmd),
    /// 河南省 — the bank-pull model by hand: project library and change requests, agent banks,
    /// review and order push, signed corrections and re-pulls, hand-overs, reports, simulators.
    #[cfg(feature = "province-henan")]
    #[command(subcommand, name = "henan")]
    Henan(crate::provinces::henan::HenanCmd),
    /// 启动HTTP服务 — the platform's HTTP server (`listen`, default 127.0.0.1:8080): the
    /// operator console (/), the JSON API (/api/v1), /healthz, and Henan's bank interface
    /// (/henan/bank/v1) when Henan is compiled in.
    Serve {
        /// Address to listen on (default: the `listen` setting).
        #[arg(long)]
        listen: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct Target {
    /// Province code (heilongjiang, sichuan, henan); optional when one is configured or
    /// compiled in.
    #[arg(long)]
    pub province: Option<String>,
    /// Project code or exact name, e.g. HLJ03 or 农村最低生活保障金.
    #[arg(long)]
    pub project: String,
    /// The batch's current period, e.g. 2023-05, 2023Q2, 2023H1, 2023.
    #[arg(long)]
    pub period: String,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    pub roster: PathBuf,
    #[command(flatten)]
    pub target: Target,
    /// Card registry snapshot (xlsx/CSV) to match against.
    #[arg(long)]
    pub registry: Option<PathBuf>,
    /// Death register (xlsx/CSV).
    #[arg(long)]
    pub deaths: Option<PathBuf>,
    /// Region table (xlsx/CSV); default: the region codes shipped with ykt.
    #[arg(long)]
    pub regions: Option<PathBuf>,
    /// Region the submitting unit covers (lines outside it are refused).
    #[arg(long)]
    pub scope: Option<String>,
    /// One JSON object per problem on stdout (the summary goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Also write the error report (xlsx, GB18030 CSV, JSON) into this directory.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ImportCmd {
    /// 社保卡信息 snapshot: 身份证号码, 姓名, 社会保障卡号, 发卡银行, 银行账号, 卡状态, 金融账户是否激活.
    Registry {
        file: PathBuf,
        #[arg(long)]
        user: Option<String>,
    },
    /// 死亡登记: 身份证号码, 姓名, 死亡日期.
    Deaths {
        file: PathBuf,
        #[arg(long)]
        user: Option<String>,
    },
    /// 区划代码表: 行政区划代码, 名称.
    Regions {
        file: PathBuf,
        #[arg(long)]
        user: Option<String>,
    },
    /// 发放清册: validate, match, cross-check and form batches (one per county).
    Roster {
        file: PathBuf,
        #[command(flatten)]
        target: Target,
        /// The importing user (a department maker or township clerk).
        #[arg(long)]
        user: String,
        /// Also write the error report into this directory.
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Add or update a user.
    Add {
        login: String,
        #[arg(long)]
        name: String,
        /// Comma-separated roles: township_clerk, dept_maker, dept_head, finance_reviewer,
        /// hrss, bank_operator, auditor, admin.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Region code of the user's scope (2 to 12 digits).
        #[arg(long)]
        region: String,
        /// Read the console password from the first line of standard input (for scripts:
        /// `echo "$PW" | ykt user add ...`); otherwise `$YKT_USER_PASSWORD` if set. Without
        /// either, an existing password is kept and a new user cannot log in until one is set.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Disable a user: they can no longer log in, and their open sessions end at once.
    Disable { login: String },
    /// Set a new console password (from standard input with --password-stdin, or
    /// `$YKT_USER_PASSWORD`); the user's open sessions end.
    ResetPassword {
        login: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

/// The environment variable scripts use to pass a password without a prompt.
pub const PASSWORD_ENV: &str = "YKT_USER_PASSWORD";

/// The password given on stdin (`--password-stdin`) or in `$YKT_USER_PASSWORD`.
fn new_password(stdin: bool) -> anyhow::Result<Option<String>> {
    if stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("无法从标准输入读取密码 (cannot read the password from stdin)")?;
        let pw = line.trim_end_matches(['\r', '\n']).to_owned();
        if pw.is_empty() {
            bail!("标准输入中没有密码 (no password on stdin)");
        }
        return Ok(Some(pw));
    }
    Ok(std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()))
}

fn hash_new_password(pw: &str) -> anyhow::Result<String> {
    ykt_http::web::auth::hash_password(pw).map_err(|e| anyhow!("{e}"))
}

async fn audit_user_change(
    store: &Store,
    action: &str,
    login: &str,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    store
        .append_audit(ykt_kernel::audit::AuditRecord {
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            actor: "cli".into(),
            role: Role::Admin.as_str().into(),
            action: action.into(),
            subject: format!("user:{login}"),
            from_state: None,
            to_state: None,
            detail,
        })
        .await?;
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum BatchCmd {
    /// List batches.
    List {
        #[arg(long)]
        province: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show a batch: totals by line state, the trace, and the next steps.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Take a workflow step (e.g. submit_plan, finance_approve) as a user.
    Step {
        id: i64,
        step: String,
        #[arg(long)]
        user: String,
        /// Reason (required to return a batch).
        #[arg(long)]
        reason: Option<String>,
    },
    /// List a batch's lines (masked), optionally of one state (pending, in_flight, credited,
    /// failed, refunded).
    Lines {
        id: i64,
        #[arg(long)]
        state: Option<String>,
    },
    /// Correct a failed line (it is then paid again as a new attempt of the same line).
    Correct {
        id: i64,
        line: i64,
        #[arg(long)]
        user: String,
        /// The corrected bank account.
        #[arg(long)]
        account: Option<String>,
        /// The corrected issuing bank.
        #[arg(long)]
        bank: Option<String>,
        /// The corrected name.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        reason: String,
        /// Who signed the correction for the beneficiary (the beneficiary or the guardian).
        #[arg(long)]
        signed_by: Option<String>,
        /// The department head who signed the correction off.
        #[arg(long)]
        head: Option<String>,
    },
    /// Send corrected lines to the bank again.
    Redispatch {
        id: i64,
        #[arg(long)]
        user: String,
    },
    /// Refund a failed line through the original channel (requested by the department,
    /// agreed by finance).
    Refund {
        id: i64,
        line: i64,
        /// The requesting department user.
        #[arg(long)]
        user: String,
        /// The finance user who agrees.
        #[arg(long)]
        approver: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Verify the whole chain.
    Verify,
}

/// The process entry point: parse, run, map errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("无法启动运行时 (cannot start the runtime): {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("错误 error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("YKT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Open the configured database (creating the embedded one and its key on first use).
pub async fn open_store(cfg: &Config, create: bool) -> anyhow::Result<Store> {
    let (vault, created) = cfg.vault(create)?;
    if let Some(p) = created {
        eprintln!(
            "已生成主密钥并保存在 {}（请妥善备份，勿提交到代码库）(generated a new master key at {})",
            p.display(),
            p.display()
        );
    }
    Store::connect(&cfg.database_url, vault)
        .await
        .with_context(|| {
            format!(
                "无法打开数据库 {} (cannot open the database)",
                redact_url(&cfg.database_url)
            )
        })
}

/// A database URL with its user and password hidden, for messages and logs.
pub(crate) fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(a)) if a > s => format!("{}://***@{}", &url[..s], &url[a + 1..]),
        _ => url.to_owned(),
    }
}

pub fn user_of(row: &UserRow) -> anyhow::Result<User> {
    let roles = row
        .roles
        .iter()
        .map(|r| Role::parse(r).ok_or_else(|| anyhow!("用户{}的角色「{r}」无效", row.login)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let region = RegionCode::parse(&row.region)
        .map_err(|e| anyhow!("用户{}的区划「{}」无效：{e}", row.login, row.region))?;
    Ok(User {
        login: row.login.clone(),
        name: row.display_name.clone(),
        roles,
        region,
        bank: None,
    })
}

async fn load_user(store: &Store, login: &str) -> anyhow::Result<User> {
    let row = store
        .get_user(login)
        .await?
        .ok_or_else(|| anyhow!("用户「{login}」不存在；先用 ykt user add 创建 (no such user)"))?;
    if row.disabled {
        bail!("用户「{login}」已停用 (user is disabled)");
    }
    user_of(&row)
}

fn province_of(name: Option<&str>, cfg: &Config) -> anyhow::Result<Box<dyn Province>> {
    let d = crate::select_province(name, cfg)?;
    Ok(crate::build_province(d, cfg)?)
}

pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    let cfg = Config::load(cli.config.as_deref())?;
    init_logging(&cfg);
    match cli.command {
        Command::Provinces { json } => {
            let ds = crate::provinces();
            if json {
                let v: Vec<_> = ds.iter().map(|d| serde_json::json!({"code": d.code, "name": d.name, "model": d.model.as_str(), "sources": d.sources})).collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                out!("{}", output::provinces_table(&ds));
            }
            Ok(0)
        }
        Command::Catalog { province, json } => {
            // Without --province (and none configured): every compiled-in province.
            let ps: Vec<Box<dyn Province>> = match province.as_deref().or(cfg.province.as_deref()) {
                Some(p) => vec![province_of(Some(p), &cfg)?],
                None => crate::provinces()
                    .into_iter()
                    .map(|d| crate::build_province(d, &cfg))
                    .collect::<Result<_, _>>()?,
            };
            if json {
                let v: Vec<_> = ps.iter().map(|p| serde_json::json!({"province": p.code(), "projects": p.catalog().projects()})).collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(0);
            }
            for p in &ps {
                out!("{}", output::catalog_table(p.as_ref()));
            }
            Ok(0)
        }
        Command::Check(a) => check(&cfg, a).await,
        Command::Import(cmd) => import(&cfg, cmd).await,
        Command::User(cmd) => user(&cfg, cmd).await,
        Command::Batch(cmd) => batch(&cfg, cmd).await,
        Command::Audit(AuditCmd::Verify) => {
            let store = open_store(&cfg, false).await?;
            match store.verify_audit().await {
                Ok(r) => {
                    outln!(
                        "审计日志完整 (audit chain verified): {} 条 entries, head {}",
                        r.entries,
                        r.head.map(|h| h.to_hex()).unwrap_or_else(|| "-".into())
                    );
                    Ok(0)
                }
                // Exit 1: the chain was read and does not verify (2 stays "could not check").
                Err(ykt_store::StoreError::AuditChain(e)) => {
                    outln!("审计日志校验失败 (audit chain verification FAILED): {e}");
                    eprintln!(
                        "审计日志已被改动：请保全数据库文件并报告审计部门。(the audit log was altered: preserve the database and report it)"
                    );
                    Ok(1)
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Demo(a) => crate::demo::run(&cfg, a).await,
        Command::Bench(a) => crate::bench::run(&cfg, a).await,
        #[cfg(feature = "province-heilongjiang")]
        Command::Heilongjiang(cmd) => crate::provinces::heilongjiang::cli::run(&cfg, cmd).await,
        #[cfg(feature = "province-sichuan")]
        Command::Sichuan(cmd) => crate::provinces::sichuan::cli::run(&cfg, cmd).await,
        #[cfg(feature = "province-henan")]
        Command::Henan(cmd) => crate::provinces::henan::run(&cfg, cmd).await,
        Command::Serve { listen } => crate::web::serve(&cfg, listen).await,
    }
}

/// The province plug-in and configured ports for batch `id`.
async fn batch_context(
    store: &Store,
    cfg: &Config,
    id: i64,
) -> anyhow::Result<(Box<dyn Province>, crate::cycle::Ports)> {
    let b = store
        .batch(id)
        .await?
        .ok_or_else(|| anyhow!("批次 {id} 不存在 (no such batch)"))?;
    let p = province_of(Some(&b.province), cfg)?;
    let ports = crate::ports::configured(cfg, p.as_ref(), store).await?;
    Ok((p, ports))
}

/// Whether the configured database already exists (an embedded file that is there, or a
/// server URL).
fn database_present(cfg: &Config) -> bool {
    match cfg.database_url.strip_prefix("sqlite://") {
        Some(path) => Path::new(path.split('?').next().unwrap_or(path)).exists(),
        None => cfg.database_url.starts_with("postgres"),
    }
}

/// Map an intake failure to the CLI's exit code and message.
fn fail(e: IntakeFailure) -> anyhow::Result<u8> {
    match e {
        IntakeFailure::File(f) => {
            eprintln!("文件不可用，未处理任何一行 (file unusable, nothing processed): {f}");
            Ok(2)
        }
        IntakeFailure::Request(m) => {
            eprintln!("{m}");
            Ok(2)
        }
        other => Err(other.into()),
    }
}

async fn check(cfg: &Config, a: CheckArgs) -> anyhow::Result<u8> {
    let province = province_of(a.target.province.as_deref(), cfg)?;
    let (project, period) =
        match intake::resolve(province.as_ref(), &a.target.project, &a.target.period) {
            Ok(x) => x,
            Err(e) => return fail(e),
        };
    let today = cfg.today();
    let mut regs = MemRegisters::default();
    let load = |r: Result<(), ykt_files::FileError>| r.map_err(IntakeFailure::File);
    let loaded = (|| -> Result<(), IntakeFailure> {
        if let Some(f) = &a.registry {
            load(regs.load_cards(f, today))?;
        }
        if let Some(f) = &a.deaths {
            load(regs.load_deaths(f, today))?;
        }
        match &a.regions {
            Some(f) => load(regs.load_regions(f))?,
            None => regs.add_regions(demo_regions()),
        }
        Ok(())
    })();
    if let Err(e) = loaded {
        return fail(e);
    }
    for (file, p) in &regs.problems {
        eprintln!("注意 {file}: {p}");
    }
    let scope = match &a.scope {
        Some(s) => Some(RegionCode::parse(s).map_err(|e| anyhow!("--scope「{s}」：{e}"))?),
        None => None,
    };
    // With a database at hand (and no --registry file), check against it: its card registry,
    // death register, what is already paid or in flight, exclusive projects and agreements.
    let store = if a.registry.is_none() && database_present(cfg) {
        Some(open_store(cfg, false).await?)
    } else {
        None
    };
    let req = Request {
        province: province.as_ref(),
        project,
        period,
        today,
        scope,
        regions: Some(&regs),
        check_cards: a.registry.is_some() || store.is_some(),
    };
    let result = match &store {
        Some(st) => intake::check(&a.roster, &req, st, st).await,
        None => intake::check(&a.roster, &req, &regs, &regs).await,
    };
    let mut report = match result {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    report.history_checked = store.is_some();
    if a.json {
        for p in &report.problems {
            outln!("{}", serde_json::to_string(p)?);
        }
        eprint!("{}", output::check_summary(&report));
    } else {
        out!("{}", output::check_summary(&report));
        if !report.problems.is_empty() {
            outln!("问题明细 problems:");
            out!("{}", output::problems_table(&report));
        }
    }
    if let Some(dir) = &a.report {
        write_reports(dir, &report)?;
    }
    Ok(report.exit_code())
}

/// Write the error report as xlsx, GB18030 CSV and JSON.
pub fn write_reports(dir: &Path, report: &intake::CheckReport) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("无法创建目录 {}", dir.display()))?;
    let lines: Vec<ykt_files::ReportLine> = report
        .problems
        .iter()
        .map(|p| ykt_files::ReportLine {
            row: p.row,
            name_masked: p.name.clone(),
            id_masked: p.id.clone(),
            column: p.column.clone().unwrap_or_default(),
            code: p.code.clone(),
            severity: ykt_kernel::ReasonCode::from_code(&p.code)
                .map(|c| c.severity().label().to_owned())
                .unwrap_or_default(),
            follow_up: p.follow_up.clone(),
            message: p.message.clone(),
        })
        .collect();
    let title = format!("{} {} 清册校验结果", report.project_name, report.period);
    ykt_files::export::write_report_xlsx(&dir.join("校验结果.xlsx"), &title, &lines)?;
    ykt_files::export::write_report_csv_gb18030(&dir.join("校验结果.csv"), &lines)?;
    ykt_files::export::write_report_json(&dir.join("校验结果.json"), &lines)?;
    Ok(())
}

async fn import(cfg: &Config, cmd: ImportCmd) -> anyhow::Result<u8> {
    let store = open_store(cfg, true).await?;
    let today = cfg.today();
    let meta = |kind: &str, file: &Path, user: &Option<String>| -> anyhow::Result<ImportMeta> {
        let sha = intake::hash_file(file)?;
        Ok(ImportMeta {
            kind: kind.into(),
            file_name: file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: sha,
            scope: String::new(),
            actor: user.clone().unwrap_or_else(|| "cli".into()),
        })
    };
    let outcome = match &cmd {
        ImportCmd::Registry { file, user } => {
            let records = collect_rows(file, |f| for_each_card(file, today, f))?;
            store
                .import_cards(records, meta(kinds::CARDS, file, user)?)
                .await?
        }
        ImportCmd::Deaths { file, user } => {
            let records = collect_rows(file, |f| for_each_death(file, today, f))?;
            store
                .import_deaths(records, meta(kinds::DEATHS, file, user)?)
                .await?
        }
        ImportCmd::Regions { file, user } => {
            let records = collect_rows(file, |f| for_each_region(file, f))?;
            store
                .import_regions(records, meta(kinds::REGIONS, file, user)?)
                .await?
        }
        ImportCmd::Roster {
            file,
            target,
            user,
            report,
        } => {
            let province = province_of(target.province.as_deref(), cfg)?;
            let (project, period) =
                match intake::resolve(province.as_ref(), &target.project, &target.period) {
                    Ok(x) => x,
                    Err(e) => return fail(e),
                };
            let user = load_user(&store, user).await?;
            let regions = store.all_regions().await?;
            let mut table = MemRegisters::default();
            table.add_regions(regions);
            if table.regions.is_empty() {
                table.add_regions(demo_regions());
            }
            let req = Request {
                province: province.as_ref(),
                project,
                period,
                today,
                scope: Some(user.region.clone()),
                regions: Some(&table),
                check_cards: true,
            };
            // The problems are kept in memory only for the report files.
            let keep = if report.is_some() {
                Problems::Keep
            } else {
                Problems::Stored
            };
            return match intake::import_with(&store, file, &req, &user, keep).await {
                Err(e) => fail(e),
                Ok(ImportResult::AlreadyImported { roster_id, at }) => {
                    outln!(
                        "该文件已于 {at} 导入（清册 {roster_id}），未重复导入 (already imported as roster {roster_id})"
                    );
                    Ok(0)
                }
                Ok(ImportResult::Imported { report: r, result }) => {
                    out!("{}", output::check_summary(&r));
                    outln!("清册 roster {} 已入库；批次 batches:", result.roster_id);
                    out!("{}", output::batches_table(&result.batches));
                    if let Some(dir) = report {
                        write_reports(dir, &r)?;
                    }
                    Ok(r.exit_code())
                }
            };
        }
    };
    match outcome {
        ImportOutcome::Imported { import_id, rows } => {
            outln!("已导入 {rows} 条 (imported {rows} rows, import {import_id})")
        }
        ImportOutcome::AlreadyImported { import_id, at } => {
            outln!("该文件已于 {at} 导入（导入批次 {import_id}），未重复导入 (already imported)")
        }
    }
    Ok(0)
}

/// Read a register file fully, refusing it (nothing imported) if any row is bad: the rows'
/// problems are listed.
fn collect_rows<T>(
    file: &Path,
    read: impl FnOnce(
        &mut dyn FnMut(Result<T, ykt_files::RowProblem>),
    ) -> Result<(), ykt_files::FileError>,
) -> anyhow::Result<Vec<Result<T, std::convert::Infallible>>> {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    read(&mut |r| match r {
        Ok(t) => good.push(Ok(t)),
        Err(p) => bad.push(p),
    })?;
    if !bad.is_empty() {
        let mut msg = format!(
            "{} 有 {} 行数据有误，未导入任何数据 ({} bad rows, nothing imported):",
            file.display(),
            bad.len(),
            bad.len()
        );
        for p in bad.iter().take(20) {
            msg.push_str(&format!("\n  {p}"));
        }
        bail!(msg);
    }
    Ok(good)
}

async fn user(cfg: &Config, cmd: UserCmd) -> anyhow::Result<u8> {
    let store = open_store(cfg, true).await?;
    match cmd {
        UserCmd::Add {
            login,
            name,
            roles,
            region,
            password_stdin,
        } => {
            for r in &roles {
                Role::parse(r).ok_or_else(|| {
                    anyhow!(
                        "角色「{r}」无效；可选：{}",
                        Role::ALL
                            .iter()
                            .map(|r| r.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            }
            let region =
                RegionCode::parse(&region).map_err(|e| anyhow!("区划「{region}」：{e}"))?;
            let existing = store.get_user(&login).await?;
            let password_hash = match new_password(password_stdin)? {
                Some(pw) => Some(hash_new_password(&pw)?),
                None => existing.as_ref().and_then(|u| u.password_hash.clone()),
            };
            let has_password = password_hash.is_some();
            store
                .upsert_user(&UserRow {
                    login: login.clone(),
                    display_name: name,
                    roles: roles.clone(),
                    region: region.full(),
                    password_hash,
                    disabled: false,
                })
                .await?;
            if existing.is_some() {
                store.delete_sessions_of(&login).await?;
            }
            audit_user_change(
                &store,
                if existing.is_some() { "user.update" } else { "user.add" },
                &login,
                serde_json::json!({"roles": roles, "region": region.full(), "password_set": has_password}),
            )
            .await?;
            outln!("用户 {login} 已保存 (saved)");
            if !has_password {
                outln!(
                    "提示：尚未设置登录密码，用 ykt user reset-password {login} --password-stdin 设置 (no password yet)"
                );
            }
        }
        UserCmd::Disable { login } => {
            store.set_user_disabled(&login, true).await?;
            let n = store.delete_sessions_of(&login).await?;
            audit_user_change(
                &store,
                "user.disable",
                &login,
                serde_json::json!({"sessions_ended": n}),
            )
            .await?;
            outln!("用户 {login} 已停用，结束会话 {n} 个 (disabled)");
        }
        UserCmd::ResetPassword {
            login,
            password_stdin,
        } => {
            let pw = new_password(password_stdin)?.ok_or_else(|| {
                anyhow!("请用 --password-stdin 从标准输入提供新密码，或设置环境变量 {PASSWORD_ENV} (no password given)")
            })?;
            store
                .set_password_hash(&login, &hash_new_password(&pw)?)
                .await?;
            let n = store.delete_sessions_of(&login).await?;
            audit_user_change(
                &store,
                "user.reset_password",
                &login,
                serde_json::json!({"sessions_ended": n}),
            )
            .await?;
            outln!("用户 {login} 的密码已重设，结束会话 {n} 个 (password reset)");
        }
        UserCmd::List => {
            for u in store.list_users().await? {
                outln!(
                    "{} {} {} {}{}",
                    output::pad(&u.login, 16),
                    output::pad(&u.display_name, 12),
                    u.region,
                    u.roles.join(","),
                    if u.disabled { " (停用)" } else { "" }
                );
            }
        }
    }
    Ok(0)
}

async fn batch(cfg: &Config, cmd: BatchCmd) -> anyhow::Result<u8> {
    let store = open_store(cfg, false).await?;
    match cmd {
        BatchCmd::List { province, json } => {
            let bs = store.batches(province.as_deref(), None).await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&bs)?);
            } else {
                out!("{}", output::batches_table(&bs));
            }
        }
        BatchCmd::Show { id, json } => {
            let b = store
                .batch(id)
                .await?
                .ok_or_else(|| anyhow!("批次 {id} 不存在 (no such batch)"))?;
            let tally = store.tally(id).await?;
            let steps = store.batch_steps(id).await?;
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"batch": b, "tally": tally, "steps": steps})
                    )?
                );
            } else {
                let p = province_of(Some(&b.province), cfg)?;
                let next: Vec<_> = p
                    .workflow()
                    .steps_from(b.state)
                    .map(|s| (s.code, s.label, s.role.label_zh()))
                    .collect();
                out!("{}", output::batch_detail(&b, &tally, &steps, &next));
            }
        }
        BatchCmd::Step {
            id,
            step,
            user,
            reason,
        } => {
            let user = load_user(&store, &user).await?;
            let province = store.batch(id).await?.map(|b| b.province);
            if matches!(province.as_deref(), Some("sichuan" | "henan")) {
                // Sichuan and Henan take some steps through their own operations (Sichuan's
                // plan declaration and procedural review, Henan's review with the agent bank,
                // the payable check before the order is pushed, the reconciliation's checks):
                // the same code path as the console, so no step skips its province's records.
                use ykt_http::web::{ConsoleOps, OpError};
                let console = crate::web::AppConsole {
                    cfg: cfg.clone(),
                    store: store.clone(),
                };
                let input = ykt_http::web::StepInput {
                    reason,
                    ..Default::default()
                };
                return match console.step(id, &step, &user, &input).await {
                    Ok(done) => {
                        for d in done {
                            match (d.from, d.to) {
                                (Some(from), Some(to)) if from != to => outln!(
                                    "批次 {id}：{} → {}（{}，{}）{}",
                                    from.label_zh(),
                                    to.label_zh(),
                                    d.label,
                                    user.login,
                                    d.note
                                ),
                                _ => {
                                    outln!("批次 {id}：{}（状态不变 unchanged）{}", d.label, d.note)
                                }
                            }
                        }
                        Ok(0)
                    }
                    Err(OpError::Internal(m)) => Err(anyhow!(m)),
                    Err(e) => {
                        eprintln!("拒绝 refused: {e}");
                        Ok(1)
                    }
                };
            }
            let (p, ports) = batch_context(&store, cfg, id).await?;
            let cycle = Cycle {
                store: &store,
                province: p.as_ref(),
                ports: &ports,
                today: cfg.today(),
            };
            match cycle.step(id, &step, &user, reason.as_deref()).await {
                Ok(r) => {
                    match r.moved {
                        Some((from, to)) => outln!(
                            "批次 {id}：{} → {}（{}，{}）{}",
                            from.label_zh(),
                            to.label_zh(),
                            r.step.label,
                            user.login,
                            r.note
                        ),
                        None => outln!(
                            "批次 {id}：{}（状态不变 unchanged）{}",
                            r.step.label,
                            r.note
                        ),
                    }
                    if let Some(res) = &r.results {
                        outln!(
                            "结果 results: 到账 {}笔 {}元, 失败 {}笔, 重复 {}条, 异常 {}条",
                            res.credited.count,
                            res.credited.amount,
                            res.failed.count,
                            res.duplicates,
                            res.anomalies.len()
                        );
                    }
                }
                Err(CycleError::Refused(e)) => {
                    eprintln!("拒绝 refused: {e}");
                    return Ok(1);
                }
                Err(CycleError::Invalid(m)) => {
                    eprintln!("拒绝 refused: {m}");
                    return Ok(1);
                }
                // The outside system refused or could not be reached: the step did not happen
                // (nothing changed); said once, exit 1 like any refusal.
                Err(CycleError::Port(e)) => {
                    eprintln!("外部系统未办理 not done by the outside system: {e}");
                    return Ok(1);
                }
                Err(e) => return Err(e.into()),
            }
        }
        BatchCmd::Lines { id, state } => {
            let b = store
                .batch(id)
                .await?
                .ok_or_else(|| anyhow!("批次 {id} 不存在 (no such batch)"))?;
            let mask = province_of(Some(&b.province), cfg)?.mask_policy();
            for l in store.lines(id, 0, i64::MAX).await? {
                if state.as_deref().is_some_and(|s| s != l.state.as_str()) {
                    continue;
                }
                outln!(
                    "{:>8} 第{:<5}行 {} {} {} {}元 {} 第{}次{}",
                    l.id,
                    l.row_no,
                    output::pad(&mask.name(&l.name), 8),
                    mask.id(l.resident_id.as_str()),
                    l.account.masked(),
                    l.amount,
                    l.state.label_zh(),
                    l.attempt,
                    l.fail_reason
                        .as_deref()
                        .and_then(ykt_kernel::ports::FailureReason::parse)
                        .map(|r| format!(" {}", r.label_zh()))
                        .unwrap_or_default()
                );
            }
        }
        BatchCmd::Correct {
            id,
            line,
            user,
            account,
            bank,
            name,
            reason,
            signed_by,
            head,
        } => {
            let b = store
                .batch(id)
                .await?
                .ok_or_else(|| anyhow!("批次 {id} 不存在 (no such batch)"))?;
            let user = load_user(&store, &user).await?;
            let p = province_of(Some(&b.province), cfg)?;
            let account = match account {
                Some(a) => Some(
                    ykt_kernel::BankAccount::parse(&a).map_err(|e| anyhow!("--account：{e}"))?,
                ),
                None => None,
            };
            let fix = LineFix {
                account,
                bank,
                name,
                reason,
                beneficiary_signed: signed_by,
                head_signoff: head,
            };
            let ports = crate::ports::Ports::default();
            let cycle = Cycle {
                store: &store,
                province: p.as_ref(),
                ports: &ports,
                today: cfg.today(),
            };
            if let Err(e) = cycle.correct(id, line, &fix, &user).await {
                eprintln!("拒绝 refused: {e}");
                return Ok(1);
            }
            outln!(
                "明细 {line} 已更正，待再次发放 (corrected; pay again with: ykt batch redispatch {id} --user ...)"
            );
        }
        BatchCmd::Redispatch { id, user } => {
            let user = load_user(&store, &user).await?;
            let (p, ports) = batch_context(&store, cfg, id).await?;
            let cycle = Cycle {
                store: &store,
                province: p.as_ref(),
                ports: &ports,
                today: cfg.today(),
            };
            match cycle.redispatch(id, &user).await {
                Ok(lines) => outln!(
                    "再次发放 {} 笔 (re-sent {} lines as new attempts)",
                    lines.len(),
                    lines.len()
                ),
                Err(e) => {
                    eprintln!("拒绝 refused: {e}");
                    return Ok(1);
                }
            }
        }
        BatchCmd::Refund {
            id,
            line,
            user,
            approver,
            reason,
        } => {
            let requester = load_user(&store, &user).await?;
            let approver = load_user(&store, &approver).await?;
            let (p, ports) = batch_context(&store, cfg, id).await?;
            let cycle = Cycle {
                store: &store,
                province: p.as_ref(),
                ports: &ports,
                today: cfg.today(),
            };
            match cycle.refund(id, line, &reason, &requester, &approver).await {
                Ok(amount) => outln!("明细 {line} 已原渠道退回 {amount} 元 (refunded)"),
                Err(e) => {
                    eprintln!("拒绝 refused: {e}");
                    return Ok(1);
                }
            }
        }
    }
    Ok(0)
}
