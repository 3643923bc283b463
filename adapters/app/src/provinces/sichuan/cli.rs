//! `ykt sichuan ...`: Sichuan's operations besides the workflow steps (which `ykt batch step`
//! takes), and its simulators.

use super::ops::{self, SichuanError};
use super::{Platform, render};
use crate::cli::{open_store, user_of};
use crate::config::Config;
use anyhow::{Context, anyhow};
use chrono::NaiveDate;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use ykt_kernel::intake::ProxyKind;
use ykt_kernel::ports::FailureReason;
use ykt_kernel::{Period, RegionCode, ResidentId, User, Yuan};
use ykt_sim::sichuan::bank::{BankSim, BankSimConfig, FailRule, FileFault};
use ykt_store::Store;
use ykt_store::sichuan::AgencyAgreement;

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum SichuanCmd {
    /// 代发协议 — the departments' agency agreements with their cooperating banks.
    #[command(subcommand)]
    Agreement(AgreementCmd),
    /// 代管/代领协议 — record a custody or receipt proxy agreement filed with the village
    /// committee (for a receipt proxy, --id is the proxy's ID).
    Proxy(ProxyArgs),
    /// 异议 — objections during the pre-payment publicity.
    #[command(subcommand)]
    Objection(ObjectionCmd),
    /// 申报用款计划 — declare the authorised payment plan and take `request_plan`.
    Plan {
        batch: i64,
        /// Declared amount in yuan (default: the batch's total).
        #[arg(long)]
        amount: Option<String>,
        /// Declared number of payments (default: the batch's count).
        #[arg(long)]
        count: Option<u64>,
        #[arg(long)]
        user: String,
    },
    /// 程序性复核 — finance compares summary, detail and declared amount: approves (the 8202
    /// voucher goes to the treasury) or returns the batch with every mismatch.
    Review {
        batch: i64,
        #[arg(long)]
        user: String,
    },
    /// 系统轮询 — the platform's own steps that are due: funds arrived in the zero-balance
    /// account, result files arrived from the bank.
    Poll {
        #[arg(long)]
        batch: Option<i64>,
        /// Region to poll (default: every Sichuan batch).
        #[arg(long)]
        region: Option<String>,
    },
    /// 追回 — recover a credited duplicate or deceased person's payment into the
    /// zero-balance account (returned to the treasury at month end).
    Recover {
        batch: i64,
        line: i64,
        /// `duplicate` (重复领取) or `deceased` (死亡冒领).
        #[arg(long)]
        kind: String,
        #[arg(long)]
        reason: String,
        /// The requesting department user.
        #[arg(long)]
        user: String,
        /// The finance user who agrees.
        #[arg(long)]
        approver: String,
    },
    /// 月末清零检查 — the month-end check of the zero-balance accounts; with --clear,
    /// recovered money goes back to the treasury first.
    MonthEnd {
        /// The month, e.g. 2023-05.
        #[arg(long)]
        month: String,
        #[arg(long)]
        region: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        clear: bool,
        /// The finance user who agrees to the returns (with --clear).
        #[arg(long)]
        approver: Option<String>,
    },
    /// 未发放台账 — lines that could not be paid and went back to the treasury.
    Unpaid {
        /// Region (default: all).
        #[arg(long)]
        region: Option<String>,
    },
    /// 对账单 — statements to beneficiaries for a period (monthly, quarterly or yearly as
    /// configured).
    Statements {
        #[arg(long)]
        period: String,
        /// Region (default: all).
        #[arg(long)]
        region: Option<String>,
        /// Also write them (text and GB18030 CSV) into this directory.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// 批次详情 — publicity, objections, plan and review, vouchers, bank files, dual
    /// verification and the zero-balance account of a batch.
    Show { batch: i64 },
    /// 模拟器 — run the treasury and SMS gateway (HTTP) and the cooperating bank (file drop).
    Sim(SimArgs),
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum AgreementCmd {
    /// Record an agreement.
    Add(AgreementArgs),
    /// List agreements.
    List {
        /// Region (default: all).
        #[arg(long)]
        region: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct AgreementArgs {
    /// 协议编号.
    #[arg(long)]
    pub no: String,
    /// The department's county (6 digits).
    #[arg(long)]
    pub region: String,
    /// The project covered (code; covers its sub-items), e.g. SC09.
    #[arg(long)]
    pub project: String,
    /// 委托单位.
    #[arg(long)]
    pub department: String,
    /// 合作银行.
    #[arg(long)]
    pub bank: String,
    /// 单位零余额账号.
    #[arg(long)]
    pub zb_account: String,
    /// 零余额账户名称 (default: the department).
    #[arg(long)]
    pub zb_name: Option<String>,
    /// 零余额账户开户银行.
    #[arg(long)]
    pub zb_bank: String,
    #[arg(long)]
    pub signed: String,
    #[arg(long)]
    pub until: String,
    /// 委托事项、发放时间、信息反馈、资金监管、对账办法.
    #[arg(
        long,
        default_value = "委托事项：补贴资金代发；发放时间：收到指令当日；信息反馈：逐笔回盘；资金监管：不得收费；对账办法：按月对账"
    )]
    pub terms: String,
    #[arg(long)]
    pub user: String,
}

#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// The beneficiary's ID (custody) or the proxy's ID (receipt: the beneficiary has none).
    #[arg(long)]
    pub id: String,
    /// `custody` (代管) or `receipt` (代领).
    #[arg(long)]
    pub kind: String,
    /// The custodian's or receiving proxy's name.
    #[arg(long)]
    pub proxy: String,
    /// The village committee the agreement is filed with.
    #[arg(long)]
    pub filed_with: String,
    #[arg(long)]
    pub signed: String,
    #[arg(long)]
    pub user: String,
}

#[derive(Subcommand, Debug)]
pub enum ObjectionCmd {
    /// Record an objection.
    Add {
        batch: i64,
        /// The line objected to (none: a general objection).
        #[arg(long)]
        line: Option<i64>,
        /// Who objected (stored masked).
        #[arg(long)]
        by: String,
        #[arg(long)]
        text: String,
        #[arg(long)]
        user: String,
    },
    /// Resolve an objection: upheld (a line objected to leaves the batch) or dismissed.
    Resolve {
        id: i64,
        #[arg(
            long,
            conflicts_with = "dismissed",
            required_unless_present = "dismissed"
        )]
        upheld: bool,
        #[arg(long)]
        dismissed: bool,
        #[arg(long)]
        note: String,
        #[arg(long)]
        user: String,
    },
    /// List a batch's objections.
    List { batch: i64 },
}

#[derive(Args, Debug)]
pub struct SimArgs {
    /// The bank's file drop directory (shared with the platform's `bank_dir`).
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:7301")]
    pub treasury_listen: String,
    #[arg(long, default_value = "127.0.0.1:7302")]
    pub sms_listen: String,
    #[arg(long, default_value_t = 2023)]
    pub seed: u64,
    /// Share (per mille) of first attempts that fail for a seeded reason.
    #[arg(long, default_value_t = 0)]
    pub fail_permille: u32,
    /// ACCOUNT:REASON[:ATTEMPTS] — an account the bank fails (reason wrong_account,
    /// dormant_account, name_mismatch, account_closed, other; ATTEMPTS 0 = always, default).
    #[arg(long)]
    pub fail_account: Vec<String>,
    /// Share (per mille) of orders whose first result file is sent twice.
    #[arg(long, default_value_t = 0)]
    pub repeat_permille: u32,
    /// Share (per mille) of orders whose first result file is sent truncated.
    #[arg(long, default_value_t = 0)]
    pub truncate_permille: u32,
    /// Status queries a funding voucher answers `accepted` before `paid`.
    #[arg(long, default_value_t = 0)]
    pub pending_polls: u32,
    /// Do one round of the bank's work and exit (no HTTP servers).
    #[arg(long)]
    pub once: bool,
}

async fn load_user(store: &Store, login: &str) -> anyhow::Result<User> {
    let row = store
        .get_user(login)
        .await?
        .ok_or_else(|| anyhow!("用户「{login}」不存在；先用 ykt user add 创建 (no such user)"))?;
    if row.disabled {
        anyhow::bail!("用户「{login}」已停用 (user is disabled)");
    }
    user_of(&row)
}

fn date(s: &str, what: &str) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| anyhow!("{what}「{s}」应为 YYYY-MM-DD"))
}

fn region(s: &str) -> anyhow::Result<RegionCode> {
    RegionCode::parse(s).map_err(|e| anyhow!("区划「{s}」：{e}"))
}

/// Print a refusal and give exit code 1; pass other errors on.
fn refusal(e: SichuanError) -> anyhow::Result<u8> {
    if e.is_refusal() {
        eprintln!("拒绝 refused: {e}");
        Ok(1)
    } else {
        Err(e.into())
    }
}

pub async fn run(cfg: &Config, cmd: SichuanCmd) -> anyhow::Result<u8> {
    if let SichuanCmd::Sim(a) = cmd {
        return sim(a).await;
    }
    let store = open_store(cfg, false).await?;
    let p = super::platform(cfg, &store)?;
    let mask = p.sc.province.mask_policy();
    let r: Result<(), SichuanError> = match cmd {
        SichuanCmd::Sim(_) => Ok(()),
        SichuanCmd::Agreement(AgreementCmd::Add(a)) => {
            let user = load_user(&store, &a.user).await?;
            let ag = AgencyAgreement {
                id: 0,
                agreement_no: a.no.trim().to_owned(),
                region: format!("{:0<12}", a.region.trim()),
                project: a.project.trim().to_owned(),
                department: a.department.trim().to_owned(),
                zb_account_no: a.zb_account.trim().to_owned(),
                zb_account_name: a
                    .zb_name
                    .clone()
                    .unwrap_or_else(|| a.department.clone())
                    .trim()
                    .to_owned(),
                zb_bank: a.zb_bank.trim().to_owned(),
                bank: a.bank.trim().to_owned(),
                terms: a.terms.clone(),
                signed_on: a.signed.trim().to_owned(),
                valid_until: a.until.trim().to_owned(),
            };
            ops::add_agreement(&p, &ag, &user).await.map(|id| {
                outln!(
                    "代发协议 {} 已登记（{}） (agreement recorded)",
                    ag.agreement_no,
                    id
                );
            })
        }
        SichuanCmd::Agreement(AgreementCmd::List { region: r }) => {
            let r = r.as_deref().map(region).transpose()?;
            let list = store
                .sichuan_agreements(r.as_ref().map(|r| r.prefix()))
                .await?;
            out!("{}", render::agreements(&list, &mask));
            Ok(())
        }
        SichuanCmd::Proxy(a) => {
            let user = load_user(&store, &a.user).await?;
            let id = ResidentId::parse(&a.id, cfg.today())
                .map_err(|e| anyhow!("--id：{e}"))?
                .id;
            let kind = match a.kind.trim() {
                "custody" | "代管" => ProxyKind::Custody,
                "receipt" | "代领" => ProxyKind::Receipt,
                k => anyhow::bail!("--kind「{k}」应为 custody（代管）或 receipt（代领）"),
            };
            let signed = date(&a.signed, "--signed")?;
            ops::add_proxy_agreement(&p, &id, kind, &a.proxy, &a.filed_with, signed, &user)
                .await
                .map(|()| {
                    outln!(
                        "{}协议已登记：{}（{}，{}备案） (proxy agreement recorded)",
                        kind.label_zh(),
                        id.masked(),
                        mask.name(&a.proxy),
                        a.filed_with
                    )
                })
        }
        SichuanCmd::Objection(ObjectionCmd::Add {
            batch,
            line,
            by,
            text,
            user,
        }) => {
            let user = load_user(&store, &user).await?;
            ops::raise_objection(&p, batch, line, &by, &text, &user)
                .await
                .map(|id| outln!("异议 {id} 已登记（批次{batch}） (objection recorded)"))
        }
        SichuanCmd::Objection(ObjectionCmd::Resolve {
            id,
            upheld,
            dismissed: _,
            note,
            user,
        }) => {
            let user = load_user(&store, &user).await?;
            ops::resolve_objection(&p, id, upheld, &note, &user)
                .await
                .map(|r| match r.excluded {
                    Some((line, amount)) => outln!(
                        "异议 {id} 成立：明细{line}（{amount}元）已从批次{}中剔除",
                        r.objection.batch_id
                    ),
                    None => outln!(
                        "异议 {id} 已处理：{}",
                        if upheld { "成立" } else { "不成立" }
                    ),
                })
        }
        SichuanCmd::Objection(ObjectionCmd::List { batch }) => {
            out!(
                "{}",
                render::objections(&store.sichuan_objections(batch).await?)
            );
            Ok(())
        }
        SichuanCmd::Plan {
            batch,
            amount,
            count,
            user,
        } => {
            let user = load_user(&store, &user).await?;
            let amount = match amount {
                Some(a) => Some(
                    Yuan::parse(&a)
                        .map_err(|e| anyhow!("--amount「{a}」：{e}"))?
                        .to_fen(),
                ),
                None => None,
            };
            ops::declare_plan(&p, batch, count, amount, &user)
                .await
                .map(|(plan, step)| {
                    outln!(
                        "批次 {batch}：申报授权支付用款计划 {}笔 {}元{}",
                        plan.count,
                        plan.amount,
                        step.and_then(|s| s.moved)
                            .map(|(f, t)| format!("（{} → {}）", f.label_zh(), t.label_zh()))
                            .unwrap_or_default()
                    )
                })
        }
        SichuanCmd::Review { batch, user } => {
            let user = load_user(&store, &user).await?;
            ops::review(&p, batch, &user).await.map(|o| {
                out!("{}", render::reviews(&[], std::slice::from_ref(&o.review)));
                if let Some((f, t)) = o.report.moved {
                    outln!(
                        "批次 {batch}：{} → {}（{}）{}",
                        f.label_zh(),
                        t.label_zh(),
                        o.report.step.label,
                        o.report.note
                    );
                }
            })
        }
        SichuanCmd::Poll { batch, region: r } => {
            let r = r.as_deref().map(region).transpose()?;
            ops::poll(&p, batch, r.as_ref()).await.map(|list| {
                if list.is_empty() {
                    outln!("没有待平台处理的批次 (nothing due)");
                }
                for x in list {
                    match x.outcome {
                        Ok(rep) => {
                            match rep.moved {
                                Some((f, t)) => outln!("批次 {}：{} → {}（{}）{}", x.batch, f.label_zh(), t.label_zh(), rep.step.label, rep.note),
                                None => outln!("批次 {}：{}（状态不变）{}", x.batch, rep.step.label, rep.note),
                            }
                            if let Some(res) = rep.results {
                                outln!(
                                    "  结果 results: 到账 {}笔 {}元, 失败 {}笔, 重复 {}条, 异常 {}条",
                                    res.credited.count,
                                    res.credited.amount,
                                    res.failed.count,
                                    res.duplicates,
                                    res.anomalies.len()
                                );
                            }
                        }
                        Err(m) => outln!("批次 {}：{}（{}）", x.batch, m, x.step),
                    }
                }
            })
        }
        SichuanCmd::Recover {
            batch,
            line,
            kind,
            reason,
            user,
            approver,
        } => {
            let requester = load_user(&store, &user).await?;
            let approver = load_user(&store, &approver).await?;
            ops::recover(&p, batch, line, &kind, &reason, &requester, &approver)
                .await
                .map(|a| {
                    outln!("明细 {line} 已追回 {a} 元至单位零余额账户，月末退回财政 (recovered)")
                })
        }
        SichuanCmd::MonthEnd {
            month,
            region: r,
            user,
            clear,
            approver,
        } => {
            let month = Period::parse(&month).map_err(|e| anyhow!("--month「{month}」：{e}"))?;
            let r = region(&r)?;
            let actor = load_user(&store, &user).await?;
            let approver = match (&approver, clear) {
                (Some(a), true) => Some(load_user(&store, a).await?),
                (None, true) => anyhow::bail!("--clear 需要 --approver（财政审核）"),
                _ => None,
            };
            ops::month_end(
                &p,
                month,
                &r,
                approver.as_ref().map(|a| (&actor, a)),
                &actor,
            )
            .await
            .map(|rep| out!("{}", render::month_end(&rep)))
        }
        SichuanCmd::Unpaid { region: r } => {
            let r = r.as_deref().map(region).transpose()?;
            let items = store
                .sichuan_unpaid(
                    ykt_province_sichuan::CODE,
                    r.as_ref().map(|r| r.prefix()).unwrap_or(""),
                )
                .await?;
            out!("{}", render::unpaid(&items, &mask));
            Ok(())
        }
        SichuanCmd::Statements {
            period,
            region: r,
            out: dir,
        } => {
            let period =
                Period::parse(&period).map_err(|e| anyhow!("--period「{period}」：{e}"))?;
            let r = r.as_deref().map(region).transpose()?;
            match ops::statements(&p, period, r.as_ref()).await {
                Ok(list) => {
                    let text = render::statements(
                        &period,
                        p.sc.settings.statement_frequency.label_zh(),
                        &list,
                    );
                    if let Some(dir) = dir {
                        write_statements(&dir, &period, &text, &list)?;
                        outln!("对账单 {} 份已写入 {}", list.len(), dir.display());
                    } else {
                        out!("{text}");
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        SichuanCmd::Show { batch } => show(&p, batch).await,
    };
    match r {
        Ok(()) => Ok(0),
        Err(e) => refusal(e),
    }
}

fn write_statements(
    dir: &std::path::Path,
    period: &Period,
    text: &str,
    list: &[ops::Statement],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("无法创建目录 {}", dir.display()))?;
    std::fs::write(dir.join(format!("对账单_{period}.txt")), text)?;
    let rows = list.iter().flat_map(|s| {
        s.items.iter().map(move |i| {
            vec![
                ykt_files::Cell::Text(s.name.clone()),
                ykt_files::Cell::Text(s.id.clone()),
                ykt_files::Cell::Text(s.place.clone()),
                ykt_files::Cell::Text(s.account.clone()),
                ykt_files::Cell::Text(i.project.clone()),
                ykt_files::Cell::Text(i.period.clone()),
                ykt_files::Cell::Text(i.amount.to_string()),
                ykt_files::Cell::Text(i.date.clone()),
                ykt_files::Cell::Text(i.note.clone()),
            ]
        })
    });
    ykt_files::export::write_csv_gb18030_table(
        &dir.join(format!("对账单_{period}.csv")),
        &[
            "享受对象",
            "身份证号码",
            "住址",
            "社会保障卡账号",
            "补贴项目",
            "属期",
            "金额",
            "日期",
            "备注",
        ],
        rows,
    )?;
    Ok(())
}

async fn show(p: &Platform, id: i64) -> Result<(), SichuanError> {
    let sc = &p.sc;
    let b = ops::batch(sc, id).await?;
    let tally = sc.store.tally(id).await?;
    let steps = sc.store.batch_steps(id).await?;
    let next: Vec<_> = sc
        .province
        .workflow()
        .steps_from(b.state)
        .map(|s| (s.code, s.label, s.role.label_zh()))
        .collect();
    out!("{}", crate::output::batch_detail(&b, &tally, &steps, &next));
    if let Some(pb) = sc.store.sichuan_publicity(id, "pre").await? {
        outln!(
            "发放前公示：{} 至 {}，{}笔 {}元，公示{}份{}",
            pb.starts_on,
            pb.ends_on,
            pb.line_count,
            pb.amount,
            pb.notices,
            pb.closed_on
                .map(|d| format!("；{d} 乡镇报送"))
                .unwrap_or_default()
        );
    }
    let obj = sc.store.sichuan_objections(id).await?;
    if !obj.is_empty() {
        outln!("异议：");
        out!("{}", render::objections(&obj));
    }
    let rv = render::reviews(
        &sc.store.sichuan_plans(id).await?,
        &sc.store.sichuan_reviews(id).await?,
    );
    if !rv.is_empty() {
        out!("{rv}");
    }
    for v in sc.store.sichuan_vouchers(id).await? {
        outln!(
            "凭证 {} {} {}元 {}（{}）{}",
            v.voucher_no,
            if v.kind == "plan" {
                "拨付"
            } else {
                "退回（红字）"
            },
            v.amount,
            v.status,
            v.status_note,
            v.paid_on.map(|d| format!(" {d}")).unwrap_or_default()
        );
    }
    let files = render::bank_files(&sc.store.sichuan_bank_files(id).await?);
    if !files.is_empty() {
        outln!("银行文件：");
        out!("{files}");
    }
    if let Some(v) = sc.store.sichuan_verification(id).await? {
        let mask = sc.province.mask_policy();
        let lines = sc.store.lines(id, 0, i64::MAX).await?;
        outln!("双向验证：");
        out!(
            "{}",
            render::verification(&v, |lid| lines
                .iter()
                .find(|l| l.id == lid)
                .map(|l| format!("{} {}", mask.name(&l.name), l.state.label_zh()))
                .unwrap_or_default())
        );
    }
    let postings = sc
        .store
        .sichuan_postings(Some(ykt_kernel::ledger::AccountKind::ZeroBalance), Some(id))
        .await?;
    if !postings.is_empty() {
        outln!("单位零余额账户：");
        out!("{}", render::ledger(&postings, &[]));
    }
    Ok(())
}

fn fail_rule(s: &str) -> anyhow::Result<FailRule> {
    let mut parts = s.split(':');
    let account = parts.next().unwrap_or("").trim().to_owned();
    let reason = parts
        .next()
        .and_then(FailureReason::parse)
        .ok_or_else(|| anyhow!("--fail-account「{s}」：失败原因应为 wrong_account、dormant_account、name_mismatch、account_closed 或 other"))?;
    let attempts = match parts.next() {
        Some(n) => n
            .trim()
            .parse()
            .map_err(|_| anyhow!("--fail-account「{s}」：次数应为数字"))?,
        None => 0,
    };
    if account.is_empty() || !account.bytes().all(|b| b.is_ascii_digit()) {
        anyhow::bail!("--fail-account「{s}」：账号应为数字");
    }
    Ok(FailRule {
        account,
        reason,
        attempts,
    })
}

/// Run the simulators in the foreground (until the process is stopped), or one bank round.
async fn sim(a: SimArgs) -> anyhow::Result<u8> {
    let rules = a
        .fail_account
        .iter()
        .map(|s| fail_rule(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut cfg = BankSimConfig {
        seed: a.seed,
        fail_permille: a.fail_permille.min(1000),
        fail_accounts: rules,
        repeat: if a.repeat_permille > 0 {
            FileFault::Permille(a.repeat_permille)
        } else {
            FileFault::Never
        },
        truncate: if a.truncate_permille > 0 {
            FileFault::Permille(a.truncate_permille)
        } else {
            FileFault::Never
        },
        sms_url: None,
        content: Default::default(),
    };
    if a.once {
        let bank = BankSim::new(&a.dir, cfg)?;
        let r = bank.process_once().await?;
        outln!(
            "模拟合作银行：读取指令{}份，到账{}笔，失败{}笔，写回盘{}份，重发{}份",
            r.instructions.len(),
            r.credited,
            r.failed,
            r.results.len(),
            r.resent.len()
        );
        return Ok(0);
    }
    let treasury =
        ykt_sim::sichuan::treasury::TreasurySim::new(ykt_sim::sichuan::treasury::TreasuryConfig {
            pending_polls: a.pending_polls,
        });
    let (t_addr, _t) = ykt_sim::sichuan::serve_at(treasury.router(), &a.treasury_listen)
        .await
        .with_context(|| format!("无法监听 {}", a.treasury_listen))?;
    let sms = ykt_sim::sichuan::sms::SmsGateway::new();
    let (s_addr, _s) = ykt_sim::sichuan::serve_at(sms.router(), &a.sms_listen)
        .await
        .with_context(|| format!("无法监听 {}", a.sms_listen))?;
    cfg.sms_url = Some(format!("http://{s_addr}"));
    let bank = BankSim::new(&a.dir, cfg)?;
    outln!("treasury_url = \"http://{t_addr}\"");
    outln!("bank_dir = \"{}\"", a.dir.display());
    outln!("sms_url = \"http://{s_addr}\"");
    outln!("模拟国库、短信网关与合作银行运行中（Ctrl-C 结束） (simulators running)");
    let every = std::time::Duration::from_millis(200);
    loop {
        match bank.process_once().await {
            Ok(r) if !r.instructions.is_empty() || !r.resent.is_empty() => outln!(
                "模拟合作银行：读取指令{}份，到账{}笔，失败{}笔，短信{}条，写回盘{}份（重复{}，截断{}，重发{}）",
                r.instructions.len(),
                r.credited,
                r.failed,
                r.sms_sent,
                r.results.len(),
                r.repeated.len(),
                r.truncated.len(),
                r.resent.len()
            ),
            Ok(_) => {}
            Err(e) => eprintln!("模拟银行出错：{e}"),
        }
        tokio::time::sleep(every).await;
    }
}
