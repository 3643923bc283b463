//! `ykt heilongjiang ...` (alias `ykt hlj`): drive Heilongjiang's cycle by hand against the
//! configured database and budget system, and produce the province's notices and reports.
//!
//! ```sh
//! ykt heilongjiang sim --budget-port 18231 --bank-port 18232     # in another terminal
//! export YKT_PROVINCE_SETTINGS='{budget_url="http://127.0.0.1:18231"}'
//! ykt heilongjiang step 1 submit_plan --user heilongjiang-clerk       # + push_plan
//! ykt heilongjiang step 1 request_payment --user heilongjiang-clerk
//! ykt heilongjiang step 1 finance_approve --user heilongjiang-finance # + treasury_pay
//! ykt heilongjiang collect 1
//! ```

use super::ops::{Hlj, system_user};
use super::{notices, reports};
use crate::cli::{open_store, user_of};
use crate::config::Config;
use crate::cycle::CycleError;
use anyhow::{Context, anyhow, bail};
use clap::Subcommand;
use std::net::SocketAddr;
use std::path::PathBuf;
use ykt_http::heilongjiang::PlatformDate;
use ykt_kernel::User;
use ykt_sim::heilongjiang::{BankConfig, HljSims};
use ykt_store::Store;

#[derive(Subcommand, Debug)]
pub enum HljCmd {
    /// 启动模拟器 — run the budget system and the treasury agent bank as HTTP servers until
    /// Ctrl-C (for driving the cycle by hand).
    Sim {
        #[arg(long, default_value_t = 18231)]
        budget_port: u16,
        #[arg(long, default_value_t = 18232)]
        bank_port: u16,
        #[arg(long, default_value_t = 2023)]
        seed: u64,
        /// Share of card accounts the bank fails (0 to 1).
        #[arg(long, default_value_t = 0.1)]
        fail_share: f64,
        /// Deliver every return twice.
        #[arg(long)]
        duplicate: bool,
        /// Shuffle returns.
        #[arg(long)]
        reorder: bool,
        /// First fetch of a return carries half of its details.
        #[arg(long)]
        partial: bool,
        /// The agent bank's name.
        #[arg(long, default_value = "中国农业银行")]
        bank_name: String,
    },
    /// 推进流程 — take a workflow step as a user (`system` for the platform's own steps); the
    /// System step that follows automatically (push_plan, treasury_pay) is taken too.
    Step {
        id: i64,
        step: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        reason: Option<String>,
        /// Write the step's artifacts here (the clearing statement after reconcile).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// 接收发放结果 — collect the bank's returns through the budget system (System step).
    Collect { id: i64 },
    /// 公示栏公示 — post the printable bulletin-board notice of a reviewed batch.
    Bulletin {
        id: i64,
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "out/heilongjiang/公示")]
        out: PathBuf,
    },
    /// 公示公开期限台账 — every batch's notice duties (7 days after review on the bulletin board,
    /// 20 days after results or changes on the web), overdue ones flagged. Exit 1 when any is
    /// overdue.
    Notices {
        /// The day to judge against (default: the platform's today).
        #[arg(long)]
        today: Option<chrono::NaiveDate>,
        #[arg(long)]
        json: bool,
    },
    /// “补贴政策”专栏 — publish the policy of every project of the catalogue.
    PublishPolicies,
    /// 补贴政策清单 — the county policy list as xlsx.
    PolicyList {
        /// County code (6 or 12 digits), e.g. 232722 (塔河县).
        #[arg(long)]
        region: String,
        #[arg(long, default_value_t = 2023)]
        year: i32,
        #[arg(long)]
        out: PathBuf,
    },
    /// 监管指标 — the six supervision indicators by region and lead unit (xlsx and JSON).
    Kpi {
        #[arg(long, default_value = "out/heilongjiang")]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// 清算单 — the clearing statement of a batch (grain risk fund special account or
    /// treasury), xlsx and JSON.
    Clearing {
        id: i64,
        #[arg(long, default_value = "out/heilongjiang/清算单")]
        out: PathBuf,
    },
    /// 报文 — every message exchanged with the budget system for a batch, written as
    /// exchanged (GB18030 XML); the terminal shows them masked with --show.
    Messages {
        id: i64,
        #[arg(long, default_value = "out/heilongjiang/报文")]
        out: PathBuf,
        #[arg(long)]
        show: bool,
    },
    /// 发放结果 — every line's attempts, the bank's returns and anomalies (masked).
    Results { id: i64 },
    /// 补贴查询 — a person's published payment records (masked): the resident ID and the name
    /// together, as on the portal.
    Query {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
    },
}

async fn load_user(
    store: &Store,
    login: &str,
    batch: Option<&ykt_store::payments::BatchRow>,
) -> anyhow::Result<User> {
    if login == "system" {
        let b = batch.ok_or_else(|| anyhow!("system 只能执行批次的系统步骤"))?;
        return system_user(b);
    }
    let row = store
        .get_user(login)
        .await?
        .ok_or_else(|| anyhow!("用户「{login}」不存在；先用 ykt user add 创建 (no such user)"))?;
    if row.disabled {
        bail!("用户「{login}」已停用 (user is disabled)");
    }
    user_of(&row)
}

async fn context<'a>(
    cfg: &Config,
    store: &'a Store,
    province: &'a dyn ykt_kernel::province::Province,
) -> anyhow::Result<Hlj<'a>> {
    let date = PlatformDate::new(cfg.today());
    let ports = match super::budget_url(cfg)? {
        Some(url) => super::ops::ports_for(store, province, &url, date.clone())?,
        None => super::configured_ports(cfg, store).await?,
    };
    Ok(Hlj {
        store,
        province,
        ports,
        date,
    })
}

fn refused(e: CycleError, cfg: &Config) -> anyhow::Result<u8> {
    match e {
        CycleError::Refused(e) => {
            eprintln!("拒绝 refused: {e}");
            Ok(1)
        }
        CycleError::Invalid(m) => {
            eprintln!("拒绝 refused: {m}");
            if (m.contains("no treasury port") || m.contains("no bank port"))
                && let Ok(None) = super::budget_url(cfg)
            {
                eprintln!(
                    "提示：未配置预算管理一体化系统地址。运行 ykt heilongjiang sim，并设置 [province_settings] budget_url（或 YKT_PROVINCE_SETTINGS='{{budget_url=\"http://127.0.0.1:18231\"}}'）"
                );
            }
            Ok(1)
        }
        CycleError::Port(p) => {
            eprintln!("外部系统错误 port error: {p}");
            Ok(if p.retryable { 3 } else { 1 })
        }
        other => Err(other.into()),
    }
}

pub async fn run(cfg: &Config, cmd: HljCmd) -> anyhow::Result<u8> {
    if let HljCmd::Sim {
        budget_port,
        bank_port,
        seed,
        fail_share,
        duplicate,
        reorder,
        partial,
        bank_name,
    } = cmd
    {
        if !(0.0..=1.0).contains(&fail_share) {
            bail!("--fail-share 应在0到1之间 (must be between 0 and 1)");
        }
        let sims = HljSims::start_on(
            BankConfig {
                name: bank_name,
                seed,
                fail_share,
                duplicate,
                reorder,
                partial,
                ..BankConfig::default()
            },
            cfg.today(),
            SocketAddr::from(([127, 0, 0, 1], budget_port)),
            SocketAddr::from(([127, 0, 0, 1], bank_port)),
        )
        .await
        .context("无法启动模拟器（端口被占用？）(cannot start the simulators)")?;
        outln!("预算管理一体化系统 budget system: {}", sims.budget.url());
        outln!(
            "国库集中支付代理银行 treasury agent bank: {}",
            sims.bank.url()
        );
        outln!(
            "在 ykt.toml 中设置 set in ykt.toml:\n[province_settings]\nbudget_url = \"{}\"",
            sims.budget.url()
        );
        outln!(
            "或 or: export YKT_PROVINCE_SETTINGS='{{budget_url=\"{}\"}}'",
            sims.budget.url()
        );
        outln!("按 Ctrl-C 停止 (Ctrl-C stops)");
        std::future::pending::<()>().await;
        return Ok(0);
    }
    let store = open_store(cfg, false).await?;
    let province = super::province(cfg)?;
    let h = context(cfg, &store, province.as_ref()).await?;
    match cmd {
        HljCmd::Sim { .. } => Ok(0),
        HljCmd::Step {
            id,
            step,
            user,
            reason,
            out,
        } => {
            let b = h.batch(id).await?;
            if b.province != super::CODE {
                bail!("批次{id}属于{}，不是黑龙江省的批次", b.province);
            }
            let user = load_user(&store, &user, Some(&b)).await?;
            match h.step(id, &step, &user, reason.as_deref()).await {
                Ok(stepped) => {
                    for r in &stepped.reports {
                        match r.moved {
                            Some((from, to)) => outln!(
                                "批次 {id}：{} → {}（{}，{}）{}",
                                from.label_zh(),
                                to.label_zh(),
                                r.step.label,
                                r.step.role.label_zh(),
                                super::demo::note_of(r)
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
                        if r.step.code == "reconcile" && r.moved.is_some() {
                            let c = reports::clearing(&store, &r.batch).await?;
                            out!("{}", reports::render_clearing(&c));
                            if let Some(dir) = &out {
                                let p = reports::write_clearing(dir, &c)?;
                                outln!("清算单 clearing statement: {}", p.display());
                            }
                        }
                    }
                    match stepped.follow_up_failed {
                        None => Ok(0),
                        Some((next, e)) => {
                            eprintln!(
                                "「{step}」已完成，但随后的系统步骤「{next}」未能执行；排除原因后用 ykt heilongjiang step {id} {next} --user system 重试"
                            );
                            refused(e, cfg)
                        }
                    }
                }
                Err(e) => refused(e, cfg),
            }
        }
        HljCmd::Collect { id } => match h.collect(id).await {
            Ok(r) => {
                match r.moved {
                    Some((from, to)) => {
                        outln!("批次 {id}：{} → {}", from.label_zh(), to.label_zh())
                    }
                    None => outln!("批次 {id}：状态不变 {}", r.note),
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
                Ok(0)
            }
            Err(e) => refused(e, cfg),
        },
        HljCmd::Bulletin { id, user, out } => {
            let b = h.batch(id).await?;
            let user = load_user(&store, &user, Some(&b)).await?;
            match h.post_bulletin(id, &user, Some(&out)).await {
                Ok((n, p)) => {
                    outln!("{}（发布日期 {}）", n.title, n.published_on);
                    if let Some(p) = p {
                        outln!("可打印公示 printable notice: {}", p.display());
                    }
                    Ok(0)
                }
                Err(e) => {
                    eprintln!("拒绝 refused: {e}");
                    Ok(1)
                }
            }
        }
        HljCmd::Notices { today, json } => {
            let today = today.unwrap_or_else(|| cfg.today());
            let duties = notices::duties(&store, super::CODE).await?;
            if json {
                let v: Vec<_> = duties
                    .iter()
                    .map(|d| serde_json::json!({"duty": d, "status": d.status(today), "flagged": d.flagged(today)}))
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                out!("{}", notices::render_duties(&duties, today));
            }
            Ok(u8::from(duties.iter().any(|d| d.flagged(today))))
        }
        HljCmd::PublishPolicies => {
            let n = h.publish_policies().await?;
            outln!("“补贴政策”专栏已发布 {n} 个项目 (published the policies of {n} projects)");
            Ok(0)
        }
        HljCmd::PolicyList { region, year, out } => {
            let r = ykt_kernel::RegionCode::parse(&region)
                .map_err(|e| anyhow!("--region「{region}」：{e}"))?;
            let county = r
                .county()
                .ok_or_else(|| anyhow!("--region 应为区县级或以下的区划代码"))?;
            // The imported region table, or the one shipped with ykt.
            let name = match store.region_name(&county).await? {
                Some(n) => n,
                None => super::ops::shipped_region_name(&county).ok_or_else(|| {
                    anyhow!("区划{}不在区划表中（先 ykt import regions）", county.full())
                })?,
            };
            let n = reports::write_policy_list(&out, province.as_ref(), &name, year)?;
            outln!("{name}补贴政策清单 {n} 项 → {}", out.display());
            Ok(0)
        }
        HljCmd::Kpi { out, json } => {
            let k = reports::kpis(&store, province.as_ref(), cfg.today()).await?;
            let (x, j) = reports::write_kpis(&out, &k)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&k)?);
            } else {
                out!("{}", reports::render_kpis(&k));
                outln!("→ {} , {}", x.display(), j.display());
            }
            Ok(0)
        }
        HljCmd::Clearing { id, out } => {
            let b = h.batch(id).await?;
            let c = reports::clearing(&store, &b).await?;
            out!("{}", reports::render_clearing(&c));
            let p = reports::write_clearing(&out, &c)?;
            outln!("→ {}", p.display());
            Ok(0)
        }
        HljCmd::Messages { id, out, show } => {
            let b = h.batch(id).await?;
            let msgs = store.hlj_messages(&b.order_no).await?;
            let dir = out.join(&b.order_no);
            let files = reports::write_messages(&dir, &msgs)?;
            if show {
                let mask = province.mask_policy();
                for m in &msgs {
                    out!("{}", reports::render_message(m, &mask));
                }
            }
            outln!(
                "{} 份报文已按原样写入 {}（含收款人全账号，仅供与预算管理一体化系统、代理银行核对）",
                files.len(),
                dir.display()
            );
            Ok(0)
        }
        HljCmd::Results { id } => {
            let b = h.batch(id).await?;
            out!(
                "{}",
                reports::render_results(&store, province.as_ref(), &b).await?
            );
            Ok(0)
        }
        HljCmd::Query { id, name } => {
            let rid = ykt_kernel::ResidentId::from_trusted(id.trim())
                .map_err(|e| anyhow!("身份证号码无效：{e}"))?;
            let key = crate::cycle::lookup_key(&store, rid.as_str(), &name);
            let recs = store.lookup_records(&key).await?;
            outln!("补贴查询 {}：{} 条", rid.masked(), recs.len());
            for r in recs {
                outln!(
                    "  {} {} {} {}元 {} {}",
                    r.name_masked,
                    r.project_name,
                    r.period,
                    r.amount,
                    r.date,
                    r.status
                );
            }
            Ok(0)
        }
    }
}
