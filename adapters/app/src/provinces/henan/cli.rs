//! `ykt henan ...`: Henan's own commands, each step of the bank-pull model by hand against the
//! configured database, with roles enforced (the user is named with `--user`).

use super::ops::{Henan, OpError, load_user};
use super::{Settings, render, report};
use crate::cli::open_store;
use crate::config::Config;
use crate::cycle::StepReport;
use anyhow::{Context, anyhow};
use chrono::NaiveDate;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use ykt_kernel::ports::FailureReason;
use ykt_kernel::province::Province;
use ykt_province_henan::banks::Candidate;
use ykt_province_henan::calendar::WorkCalendar;
use ykt_province_henan::library::{ChangeKind, parse_form};
use ykt_sim::henan::bank::{BankFaults, BankSim, BankSimConfig};
use ykt_sim::henan::budget::{BudgetSim, BudgetSimConfig, indicators};
use ykt_store::Store;

/// 河南省（濮阳规程）：补贴项目库、代发银行、发放申请、银行获取明细、更正重发、对账、报表。
#[derive(Subcommand, Debug)]
pub enum HenanCmd {
    /// 补贴项目库与调整变更申请（第十至十二条）
    #[command(subcommand)]
    Library(LibraryCmd),
    /// 代发金融机构：备选名单、县（区）选定、接口凭据（第十五、十六条）
    #[command(subcommand)]
    Bank(BankCmd),
    /// 导入清册（只接受补贴项目库中在用的项目，第十、二十条）
    Import {
        file: PathBuf,
        #[arg(long)]
        project: String,
        #[arg(long)]
        period: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// 财政程序性审核：选择代发银行和预算单位（第二十一条）
    Review {
        batch: i64,
        #[arg(long)]
        user: String,
        /// The county's agent bank (needed when the county has two).
        #[arg(long)]
        bank: Option<String>,
        /// 预算单位 (default: the county's department of the project's lead unit).
        #[arg(long)]
        budget_unit: Option<String>,
    },
    /// 执行流程步骤（apply_funds、push_order、publish_results……），含本省的校验
    Step {
        batch: i64,
        step: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// 系统步骤：确认国库拨付、开放银行获取明细、结果齐全后办结（ykt serve 定时执行）
    Sync,
    /// 发放申请：代发银行、预算单位、推送报文、获取与结果记录、明细
    Order { batch: i64 },
    /// 更正发放失败的明细（补贴对象或监护人签字、主管部门负责人审核签字，第二十三条）
    Correct {
        batch: i64,
        line: i64,
        /// The department clerk making the correction.
        #[arg(long)]
        user: String,
        /// The department head who signs it off (a user with role dept_head).
        #[arg(long)]
        head: String,
        /// Who signed for the beneficiary, e.g. "本人 王秀英" or "监护人 李四".
        #[arg(long)]
        signed_by: String,
        /// The corrected account (must match the card registry).
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        reason: String,
    },
    /// 通知代发银行再次获取更正后的明细（第二十三条）
    Repull {
        batch: i64,
        #[arg(long)]
        user: String,
    },
    /// 原渠道退回确实无法发放的资金（主管部门申请，财政同意，第二十三条）
    Refund {
        batch: i64,
        line: i64,
        #[arg(long)]
        user: String,
        #[arg(long)]
        approver: String,
        #[arg(long)]
        reason: String,
    },
    /// 银行交易结果交接与核对（第二十六条）
    #[command(subcommand)]
    Handover(HandoverCmd),
    /// 对账：确认交易结果核对无误（confirm_reconciliation）
    Reconcile {
        batch: i64,
        #[arg(long)]
        user: String,
    },
    /// 确认发放结果并自动推送至惠民惠农补贴查询（第二十四条）
    Publish {
        batch: i64,
        #[arg(long)]
        user: String,
    },
    /// 核对与通知期限（工作日），逾期标出
    Deadlines {
        /// The day to judge by (default: today).
        #[arg(long)]
        as_of: Option<NaiveDate>,
    },
    /// 银行台账对账（月度、年度）
    Statements,
    /// 报表：月报、年度汇编（第二十五条）
    #[command(subcommand)]
    Report(ReportCmd),
    /// 工作日历：覆盖的年份；或给定日期后第N个工作日
    Calendar {
        #[arg(long)]
        from: Option<NaiveDate>,
        #[arg(long)]
        days: Option<u32>,
    },
    /// 运行预算管理一体化系统模拟器（供手工演练）
    BudgetSim {
        #[arg(long, default_value = "127.0.0.1:9101")]
        listen: String,
        /// Status queries answered "pending" before the treasury pays.
        #[arg(long, default_value_t = 0)]
        pending_polls: u32,
    },
    /// 运行一次代发银行模拟器：获取本行发放单明细、打卡、反馈结果、交接（或报送台账）
    BankSim(BankSimArgs),
    /// 基准：银行接口服务大发放单（默认100万行）的速度与内存
    BenchPull(super::bench::BenchPullArgs),
}

#[derive(Subcommand, Debug)]
pub enum LibraryCmd {
    /// 列出补贴项目库
    List,
    /// 项目库的变更历史
    History { code: Option<String> },
    /// 以申请表格式输出一个项目（便于填写调整变更申请）
    Form { code: String },
    /// 填报调整变更申请表（--form 为 [project] 表的 TOML 文件）
    Request {
        /// add（新增）、modify（调整）或 withdraw（停止执行）
        kind: String,
        #[arg(long)]
        form: Option<PathBuf>,
        /// The project code (withdraw).
        #[arg(long)]
        code: Option<String>,
        #[arg(long)]
        user: String,
        #[arg(long)]
        reason: String,
    },
    /// 列出变更申请
    Requests,
    /// 查看一份变更申请
    Show { id: i64 },
    /// 审核 / 复核 / 调整入库（由下一环节的财政部门办理）
    Approve {
        id: i64,
        #[arg(long)]
        user: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// 不予通过
    Reject {
        id: i64,
        #[arg(long)]
        user: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum BankCmd {
    /// 备选名单与各县选定情况
    List,
    /// 省财政厅增加备选代发金融机构
    Add {
        code: String,
        #[arg(long)]
        name: String,
        /// 《河南省惠民惠农财政补贴资金发放业务委托代理协议》编号
        #[arg(long)]
        agreement: String,
        #[arg(long)]
        user: String,
        /// The bank is not connected to the system (it will be refused).
        #[arg(long)]
        not_connected: bool,
        /// The bank does not pay across banks for free (it will be refused).
        #[arg(long)]
        no_free_interbank: bool,
    },
    /// 县（区）财政选定代发银行（1至2家）
    Select {
        county: String,
        bank: String,
        /// 县（区）补贴资金代发协议编号
        #[arg(long)]
        agreement: String,
        #[arg(long)]
        user: String,
    },
    /// 取消县（区）代发银行
    Deselect {
        county: String,
        bank: String,
        #[arg(long)]
        user: String,
    },
    /// 签发银行接口凭据（仅显示一次，库中只存散列）
    Credential {
        bank: String,
        #[arg(long)]
        user: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum HandoverCmd {
    /// 列出交易结果交接及期限
    List {
        #[arg(long)]
        as_of: Option<NaiveDate>,
    },
    /// 核对交易结果：无误则确认；有误用 --dispute 说明并通知银行
    Check {
        order_no: String,
        #[arg(long)]
        seq: Option<i64>,
        #[arg(long)]
        user: String,
        #[arg(long)]
        dispute: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReportCmd {
    /// 月报
    Monthly {
        #[arg(long)]
        month: String,
        #[arg(long, default_value = "out/henan-reports")]
        out: PathBuf,
    },
    /// 年度汇编
    Annual {
        #[arg(long)]
        year: i32,
        #[arg(long, default_value = "out/henan-reports")]
        out: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct BankSimArgs {
    /// The platform (`ykt serve`) base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    #[arg(long)]
    pub bank: String,
    /// The bank's interface token (from `ykt henan bank credential`).
    #[arg(long)]
    pub token: String,
    #[arg(long, default_value_t = 2023)]
    pub seed: u64,
    /// Share of lines failed on their first attempt.
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Share of result posts sent twice.
    #[arg(long, default_value_t = 0.0)]
    pub repeat_rate: f64,
    /// Drop the connection after this many lines of the first pull.
    #[arg(long)]
    pub drop_after: Option<usize>,
    /// Pull JSON pages of this size instead of the streamed CSV.
    #[arg(long)]
    pub page: Option<usize>,
    /// Results per post (shuffled); 0: one post.
    #[arg(long, default_value_t = 0)]
    pub chunk: usize,
    /// Post the results but hand nothing over in this run (the next run hands over what is
    /// owed), as a bank that hands over at the end of its day.
    #[arg(long)]
    pub defer_handover: bool,
    /// Post the bank's ledger for this period (YYYY-MM or YYYY) instead of pulling.
    #[arg(long)]
    pub statement: Option<String>,
    /// The bank's own books (ledger per project, what it credited), kept between runs.
    #[arg(long, default_value = "bank-sim-state.json")]
    pub state: PathBuf,
}

/// The context of a command: store, Henan province (with the library), ports, calendar.
struct Ctx {
    store: Store,
    province: Arc<dyn Province>,
    ports: crate::cycle::Ports,
    calendar: WorkCalendar,
    today: NaiveDate,
}

impl Ctx {
    async fn open(cfg: &Config, create: bool) -> anyhow::Result<Ctx> {
        let store = open_store(cfg, create).await?;
        let settings = Settings::from_config(cfg)?;
        let calendar = settings.calendar()?;
        let province: Arc<dyn Province> =
            Arc::from(super::ops::library_province(&store, &cfg.province_settings).await?);
        let ports = super::ports::configured(&store, &settings, super::ports::today_fn(cfg.today))?;
        Ok(Ctx {
            store,
            province,
            ports,
            calendar,
            today: cfg.today(),
        })
    }
    fn ops(&self) -> Henan<'_> {
        Henan {
            store: &self.store,
            province: self.province.as_ref(),
            ports: &self.ports,
            today: self.today,
            calendar: &self.calendar,
        }
    }
}

/// Print a refusal and return exit code 1, or pass a failure up.
fn outcome<T>(r: Result<T, OpError>, ok: impl FnOnce(T)) -> anyhow::Result<u8> {
    match r {
        Ok(v) => {
            ok(v);
            Ok(0)
        }
        Err(e) if e.is_refusal() => {
            eprintln!("拒绝 refused: {e}");
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}

fn step_line(id: i64, r: &StepReport, login: &str) {
    match r.moved {
        Some((from, to)) => outln!(
            "批次 {id}：{} → {}（{}，{}）{}",
            from.label_zh(),
            to.label_zh(),
            r.step.label,
            login,
            r.note
        ),
        None => outln!("批次 {id}：{}（状态不变）{}", r.step.label, r.note),
    }
}

async fn user(ctx: &Ctx, login: &str) -> Result<ykt_kernel::User, OpError> {
    load_user(&ctx.store, login).await
}

/// Run a `ykt henan` command.
pub async fn run(cfg: &Config, cmd: HenanCmd) -> anyhow::Result<u8> {
    match cmd {
        HenanCmd::BudgetSim {
            listen,
            pending_polls,
        } => return budget_sim(cfg, &listen, pending_polls).await,
        HenanCmd::BankSim(a) => return bank_sim(cfg, a).await,
        HenanCmd::BenchPull(a) => return super::bench::run(cfg, a).await,
        HenanCmd::Calendar { from, days } => {
            let settings = Settings::from_config(cfg)?;
            let cal = settings.calendar()?;
            match (from, days) {
                (Some(f), Some(n)) => {
                    outln!("{f} 后第{n}个工作日：{}", cal.add_working_days(f, n)?)
                }
                _ => {
                    for (y, r) in cal.years() {
                        outln!(
                            "{y}年 {}：放假{}天，调休上班{}天",
                            r.source,
                            r.holidays.len(),
                            r.workdays.len()
                        );
                    }
                }
            }
            return Ok(0);
        }
        _ => {}
    }
    let creates = matches!(
        cmd,
        HenanCmd::Library(_) | HenanCmd::Bank(_) | HenanCmd::Import { .. }
    );
    let ctx = Ctx::open(cfg, creates).await?;
    let ops = ctx.ops();
    ops.seed_library().await?;
    match cmd {
        HenanCmd::Library(c) => library(&ctx, c).await,
        HenanCmd::Bank(c) => bank(&ctx, c).await,
        HenanCmd::Import {
            file,
            project,
            period,
            user: login,
            report,
        } => {
            let u = match user(&ctx, &login).await {
                Ok(u) => u,
                Err(e) => return outcome(Err::<(), _>(e), |_| {}),
            };
            if let Err(e) = ops.check_payable(&project).await {
                return outcome(Err::<(), _>(e), |_| {});
            }
            import(cfg, &ctx, &file, &project, &period, &u, report).await
        }
        HenanCmd::Review {
            batch,
            user: login,
            bank,
            budget_unit,
        } => {
            let r = async {
                let u = user(&ctx, &login).await?;
                ops.review(batch, &u, bank.as_deref(), budget_unit.as_deref())
                    .await
            }
            .await;
            outcome(r, |r| {
                step_line(batch, &r, &login);
            })
        }
        HenanCmd::Step {
            batch,
            step,
            user: login,
            reason,
        } => {
            let r = async {
                let u = user(&ctx, &login).await?;
                ops.step(batch, &step, &u, reason.as_deref()).await
            }
            .await;
            outcome(r, |r| step_line(batch, &r, &login))
        }
        HenanCmd::Sync => outcome(ops.sync().await, |lines| {
            if lines.is_empty() {
                outln!("没有等待系统办理的批次 (nothing to do)");
            }
            for l in lines {
                outln!("批次 {} {} {}：{}", l.batch, l.order_no, l.step, l.outcome);
            }
        }),
        HenanCmd::Order { batch } => order(&ctx, batch).await,
        HenanCmd::Correct {
            batch,
            line,
            user: login,
            head,
            signed_by,
            account,
            name,
            reason,
        } => {
            let r = async {
                let u = user(&ctx, &login).await?;
                ops.correct(
                    batch,
                    line,
                    &u,
                    &head,
                    &signed_by,
                    account.as_deref(),
                    name.as_deref(),
                    &reason,
                )
                .await
            }
            .await;
            outcome(r, |_| {
                outln!(
                    "明细 {line} 已更正（签字已记录），待通知银行再次获取：ykt henan repull {batch} --user {login}"
                )
            })
        }
        HenanCmd::Repull { batch, user: login } => {
            let r = async {
                let u = user(&ctx, &login).await?;
                ops.repull(batch, &u).await
            }
            .await;
            outcome(r, |n| {
                outln!("已开放{n}笔更正后的明细并通知代发银行再次获取 (re-released {n} lines)")
            })
        }
        HenanCmd::Refund {
            batch,
            line,
            user: login,
            approver,
            reason,
        } => {
            let r = async {
                let u = user(&ctx, &login).await?;
                let a = user(&ctx, &approver).await?;
                ops.refund(batch, line, &u, &a, &reason).await
            }
            .await;
            outcome(r, |amount| outln!("明细 {line} 已原渠道退回 {amount} 元"))
        }
        HenanCmd::Handover(HandoverCmd::List { as_of }) => {
            let views = ops.handovers(None, as_of.unwrap_or(ctx.today)).await?;
            if views.is_empty() {
                outln!("尚无银行交易结果交接");
            }
            out!("{}", render::handovers(&views));
            Ok(0)
        }
        HenanCmd::Handover(HandoverCmd::Check {
            order_no,
            seq,
            user: login,
            dispute,
        }) => {
            let r = async {
                let u = user(&ctx, &login).await?;
                ops.check_handover(&order_no, seq, &u, dispute.as_deref())
                    .await
            }
            .await;
            outcome(r, |h| {
                outln!(
                    "{} 第{}次交易结果：{}",
                    h.order_no,
                    h.seq,
                    if h.state == "confirmed" {
                        "核对无误，已盖章交回并报财政备案"
                    } else {
                        "发现错误，已通知银行补救"
                    }
                )
            })
        }
        HenanCmd::Reconcile { batch, user: login } => {
            let r = async {
                let u = user(&ctx, &login).await?;
                ops.reconcile(batch, &u).await
            }
            .await;
            outcome(r, |r| step_line(batch, &r, &login))
        }
        HenanCmd::Publish { batch, user: login } => {
            let r = async {
                let u = user(&ctx, &login).await?;
                ops.publish(batch, &u).await
            }
            .await;
            outcome(r, |r| step_line(batch, &r, &login))
        }
        HenanCmd::Deadlines { as_of } => {
            let as_of = as_of.unwrap_or(ctx.today);
            let views = ops.handovers(None, as_of).await?;
            outln!("期限检查（以{as_of}为准，第二十六条）：");
            let mut flagged = 0;
            for v in &views {
                if v.deadlines
                    .as_ref()
                    .map(|d| d.any_overdue())
                    .unwrap_or(true)
                    || v.row.state == "open"
                {
                    out!("{}", render::handovers(std::slice::from_ref(v)));
                    if v.deadlines
                        .as_ref()
                        .map(|d| d.any_overdue())
                        .unwrap_or(false)
                    {
                        flagged += 1;
                    }
                }
            }
            outln!("逾期 {flagged} 项");
            Ok(0)
        }
        HenanCmd::Statements => {
            out!(
                "{}",
                render::statements(&ctx.store.henan_statements().await?)
            );
            Ok(0)
        }
        HenanCmd::Report(ReportCmd::Monthly { month, out }) => {
            let r = report::monthly(&ctx.store, ctx.province.as_ref(), &month).await?;
            out!("{}", report::render(&r));
            for f in report::write_monthly(&r, &out)? {
                outln!("已写入 {}", f.display());
            }
            Ok(0)
        }
        HenanCmd::Report(ReportCmd::Annual { year, out }) => {
            for f in report::write_annual(&ctx.store, ctx.province.as_ref(), year, &out).await? {
                outln!("已写入 {}", f.display());
            }
            Ok(0)
        }
        HenanCmd::BudgetSim { .. }
        | HenanCmd::BankSim(_)
        | HenanCmd::BenchPull(_)
        | HenanCmd::Calendar { .. } => Ok(0),
    }
}

async fn library(ctx: &Ctx, cmd: LibraryCmd) -> anyhow::Result<u8> {
    let ops = ctx.ops();
    match cmd {
        LibraryCmd::List => {
            out!("{}", render::library(&ops.library().await?));
            Ok(0)
        }
        LibraryCmd::History { code } => {
            out!(
                "{}",
                render::history(&ctx.store.henan_library_history(code.as_deref()).await?)
            );
            Ok(0)
        }
        LibraryCmd::Form { code } => {
            let row = ctx
                .store
                .henan_library_entry(&code)
                .await?
                .ok_or_else(|| anyhow!("补贴项目库中没有「{code}」"))?;
            out!("{}", super::ops::entry_of(&row)?.to_form());
            Ok(0)
        }
        LibraryCmd::Request {
            kind,
            form,
            code,
            user: login,
            reason,
        } => {
            let Some(kind) = ChangeKind::parse(&kind) else {
                eprintln!("拒绝 refused: 变更类型应为 add、modify 或 withdraw");
                return Ok(1);
            };
            let entry = match &form {
                Some(f) => {
                    let text = std::fs::read_to_string(f)
                        .with_context(|| format!("无法读取申请表 {}", f.display()))?;
                    match parse_form(&text) {
                        Ok(e) => Some(e),
                        Err(e) => {
                            eprintln!("拒绝 refused: {}：{e}", f.display());
                            return Ok(1);
                        }
                    }
                }
                None => None,
            };
            let r = async {
                let u = user(ctx, &login).await?;
                ops.file_change(&u, kind, entry, code.as_deref(), &reason)
                    .await
            }
            .await;
            outcome(r, |id| {
                outln!(
                    "已填报变更申请 {id}（{}），待下一环节财政部门办理",
                    kind.label_zh()
                )
            })
        }
        LibraryCmd::Requests => {
            for r in ctx.store.henan_changes().await? {
                let steps = ctx.store.henan_change_steps(r.id).await?;
                out!("{}", render::change(&r, &steps));
            }
            Ok(0)
        }
        LibraryCmd::Show { id } => {
            let r = ctx
                .store
                .henan_change(id)
                .await?
                .ok_or_else(|| anyhow!("没有变更申请{id}"))?;
            let steps = ctx.store.henan_change_steps(id).await?;
            out!("{}", render::change(&r, &steps));
            Ok(0)
        }
        LibraryCmd::Approve {
            id,
            user: login,
            note,
        } => {
            let r = async {
                let u = user(ctx, &login).await?;
                ops.change_step(id, &u, false, note.as_deref()).await
            }
            .await;
            outcome(r, |r| {
                outln!(
                    "变更申请 {id}：{}",
                    ykt_province_henan::library::ChangeState::parse(&r.state)
                        .map(|s| s.label_zh())
                        .unwrap_or("")
                )
            })
        }
        LibraryCmd::Reject {
            id,
            user: login,
            reason,
        } => {
            let r = async {
                let u = user(ctx, &login).await?;
                ops.change_step(id, &u, true, Some(&reason)).await
            }
            .await;
            outcome(r, |_| outln!("变更申请 {id}：不予通过"))
        }
    }
}

async fn bank(ctx: &Ctx, cmd: BankCmd) -> anyhow::Result<u8> {
    let ops = ctx.ops();
    match cmd {
        BankCmd::List => {
            out!(
                "{}",
                render::banks(
                    &ctx.store.henan_candidates().await?,
                    &ctx.store.henan_county_banks(None).await?
                )
            );
            Ok(0)
        }
        BankCmd::Add {
            code,
            name,
            agreement,
            user: login,
            not_connected,
            no_free_interbank,
        } => {
            let r = async {
                let u = user(ctx, &login).await?;
                ops.add_candidate(
                    &u,
                    &Candidate {
                        code: code.clone(),
                        name,
                        agreement_no: agreement,
                        connected: !not_connected,
                        free_interbank: !no_free_interbank,
                    },
                )
                .await
            }
            .await;
            outcome(r, |_| outln!("{code} 已列入备选代发金融机构"))
        }
        BankCmd::Select {
            county,
            bank,
            agreement,
            user: login,
        } => {
            let r = async {
                let u = user(ctx, &login).await?;
                ops.select_bank(&u, &county, &bank, &agreement).await
            }
            .await;
            outcome(r, |_| outln!("{county} 已选定 {bank} 为代发银行"))
        }
        BankCmd::Deselect {
            county,
            bank,
            user: login,
        } => {
            let r = async {
                let u = user(ctx, &login).await?;
                let c = ykt_kernel::RegionCode::parse(&county)
                    .map_err(|e| OpError::Refused(e.to_string()))?;
                ykt_province_henan::banks::authorize_selection(&u, &c)?;
                Ok(ctx
                    .store
                    .henan_deselect_bank(&c.full(), &bank, &u.login)
                    .await?)
            }
            .await;
            outcome(r, |done| {
                if done {
                    outln!("{county} 已取消 {bank}")
                } else {
                    outln!("{county} 未选定 {bank}，无变化")
                }
            })
        }
        BankCmd::Credential { bank, user: login } => {
            let r = async {
                let u = user(ctx, &login).await?;
                ops.issue_credential(&u, &bank).await
            }
            .await;
            // The token goes to stdout once, for the bank's administrator; it is never logged.
            outcome(r, |t| {
                outln!("{bank} 的接口凭据（只显示这一次，系统仅保存其散列）：");
                outln!("{t}")
            })
        }
    }
}

async fn import(
    cfg: &Config,
    ctx: &Ctx,
    file: &std::path::Path,
    project: &str,
    period: &str,
    u: &ykt_kernel::User,
    report: Option<PathBuf>,
) -> anyhow::Result<u8> {
    use crate::intake::{self, ImportResult, Request};
    use crate::registers::{MemRegisters, demo_regions};
    let (p, per) = match intake::resolve(ctx.province.as_ref(), project, period) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return Ok(2);
        }
    };
    let mut table = MemRegisters::default();
    table.add_regions(ctx.store.all_regions().await?);
    if table.regions.is_empty() {
        table.add_regions(demo_regions());
    }
    let req = Request {
        province: ctx.province.as_ref(),
        project: p,
        period: per,
        today: cfg.today(),
        scope: Some(u.region.clone()),
        regions: Some(&table),
        check_cards: true,
    };
    // The problems are kept in memory only for the report files.
    let keep = if report.is_some() {
        intake::Problems::Keep
    } else {
        intake::Problems::Stored
    };
    match intake::import_with(&ctx.store, file, &req, u, keep).await {
        Err(intake::IntakeFailure::File(f)) => {
            eprintln!("文件不可用，未处理任何一行 (file unusable, nothing processed): {f}");
            Ok(2)
        }
        Err(intake::IntakeFailure::Request(m)) => {
            eprintln!("{m}");
            Ok(2)
        }
        Err(e) => Err(e.into()),
        Ok(ImportResult::AlreadyImported { roster_id, at }) => {
            outln!("该文件已于 {at} 导入（清册 {roster_id}），未重复导入");
            Ok(0)
        }
        Ok(ImportResult::Imported { report: r, result }) => {
            out!("{}", crate::output::check_summary(&r));
            outln!("清册 roster {} 已入库；批次 batches:", result.roster_id);
            out!("{}", crate::output::batches_table(&result.batches));
            if let Some(dir) = report {
                crate::cli::write_reports(&dir, &r)?;
            }
            Ok(r.exit_code())
        }
    }
}

async fn order(ctx: &Ctx, batch: i64) -> anyhow::Result<u8> {
    let Some(o) = ctx.store.henan_order_of_batch(batch).await? else {
        eprintln!("批次 {batch} 尚无发放申请（财政审核时选择代发银行）");
        return Ok(1);
    };
    out!("{}", render::order(&o));
    out!(
        "{}",
        render::traffic(
            &ctx.store.henan_releases(&o.order_no).await?,
            &ctx.store.henan_pulls(&o.order_no).await?,
            &ctx.store.henan_posts(&o.order_no).await?
        )
    );
    outln!("明细 lines:");
    out!(
        "{}",
        render::lines(
            &ctx.store.henan_line_digest(batch).await?,
            &ctx.province.mask_policy()
        )
    );
    let events = ctx.store.henan_line_events(Some(batch)).await?;
    if !events.is_empty() {
        outln!("更正与退回:");
        out!(
            "{}",
            render::line_events(&events, &ctx.province.mask_policy())
        );
    }
    Ok(0)
}

async fn budget_sim(cfg: &Config, listen: &str, pending_polls: u32) -> anyhow::Result<u8> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("无法监听 {listen}"))?;
    let today = cfg.today();
    let province = crate::build_province(
        crate::select_province(Some(ykt_province_henan::CODE), cfg)?,
        cfg,
    )?;
    let mut codes: Vec<String> = province
        .catalog()
        .projects()
        .iter()
        .map(|p| p.code.clone())
        .collect();
    // Projects added by change requests, when a database is at hand.
    if let Ok(store) = open_store(cfg, false).await {
        for r in store.henan_library().await.unwrap_or_default() {
            if !codes.contains(&r.code) {
                codes.push(r.code);
            }
        }
    }
    let refs: Vec<&str> = codes.iter().map(String::as_str).collect();
    let sim = BudgetSim::new(BudgetSimConfig {
        today,
        indicators: indicators(
            &refs,
            "",
            chrono::Datelike::year(&today),
            ykt_kernel::Fen(100_000_000_000),
        ),
        pending_polls,
    });
    outln!(
        "预算管理一体化系统模拟器 listening on http://{} (indicators for {} projects; Ctrl-C to stop)",
        listener.local_addr()?,
        refs.len()
    );
    axum_serve(listener, sim.router()).await?;
    Ok(0)
}

async fn axum_serve(
    listener: tokio::net::TcpListener,
    router: ykt_http::server::Router,
) -> anyhow::Result<()> {
    ykt_http::server::serve(listener, router, std::future::pending()).await?;
    Ok(())
}

async fn bank_sim(cfg: &Config, a: BankSimArgs) -> anyhow::Result<u8> {
    let sim = BankSim::new(BankSimConfig {
        platform: a.url.clone(),
        bank: a.bank.clone(),
        token: a.token.clone(),
        handler: format!("{}代发经办员", a.bank),
        today: cfg.today(),
        seed: a.seed,
        faults: BankFaults {
            fail: Vec::<(FailureReason, usize)>::new(),
            fail_rate: a.fail_rate,
            repeat_rate: a.repeat_rate,
            shuffle: a.chunk > 0,
            chunk: a.chunk,
            drop_after: a.drop_after,
            handover_short: false,
            defer_handover: a.defer_handover,
            ..BankFaults::default()
        },
        page: a.page,
    })?;
    if a.state.exists() {
        let text = std::fs::read_to_string(&a.state)
            .with_context(|| format!("无法读取 {}", a.state.display()))?;
        sim.import_state(
            &serde_json::from_str(&text)
                .with_context(|| format!("{} 不是模拟银行的账簿文件", a.state.display()))?,
        );
    }
    let save = |sim: &BankSim| -> anyhow::Result<()> {
        std::fs::write(&a.state, serde_json::to_string_pretty(&sim.export_state())?)
            .with_context(|| format!("无法写入 {}", a.state.display()))
    };
    if let Some(period) = &a.statement {
        let v = sim.post_statement(period).await?;
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let reports = sim.run_once().await;
    save(&sim)?;
    let reports = reports?;
    if reports.is_empty() {
        outln!("{}：没有待获取明细的发放单", a.bank);
    }
    for r in reports {
        outln!(
            "{}：获取{}行{}，入账{}笔{}元，失败{}笔{}元，结果报文{}次（重复{}次）",
            r.order_no,
            r.pulled,
            if r.dropped {
                "（连接中断后续取）"
            } else {
                ""
            },
            r.credited.count,
            r.credited.amount,
            r.failed.count,
            r.failed.amount,
            r.posts,
            r.repeated
        );
        if let Some(h) = &r.handover {
            outln!(
                "  交接：第{}次，核对期限 {}{}",
                h["seq"],
                h["check_by"].as_str().unwrap_or("-"),
                h["discrepancies"]
                    .as_array()
                    .filter(|d| !d.is_empty())
                    .map(|d| format!("，不符：{d:?}"))
                    .unwrap_or_default()
            );
        }
    }
    for s in sim.sms() {
        outln!("  短信 {} {}", s.account_masked, s.text);
    }
    Ok(0)
}

/// The calendar of a deployment (used by `ykt serve`).
pub fn calendar(cfg: &Config) -> anyhow::Result<WorkCalendar> {
    Settings::from_config(cfg)?.calendar()
}
