//! `ykt demo --province sichuan`: after intake, the whole zero-balance-account cycle on the
//! demo's batches against the simulators (treasury and SMS gateway over HTTP, the cooperating
//! bank on a file drop under `--out`), with the calendar moving day by day from the 8th of the
//! demo's month: agency agreements; a supplementary roster paid through receipt proxies;
//! pre-payment publicity with an objection upheld (the line leaves the batch) and one
//! dismissed, the township refused while the period runs and while an objection is open;
//! the department's review; plan declarations, one with a wrong amount returned by finance's
//! procedural review; funding of the zero-balance accounts; disbursement submitted and
//! confirmed (the maker refused as checker); payment instructions; the bank's results with a
//! failed line, a repeated result file and a truncated one (rejected whole, sent again);
//! SMS; a wrong account corrected and paid again; a closed account refunded to the treasury
//! and entered in the ledger of unpaid items; post-payment publicity within five days with the
//! dual verification; a deceased person's payment recovered; the month-end check before and
//! after returning it; closing; statements. Every artifact is written under
//! `<out>/sichuan/发放流程/`.

use super::ops::{self, day};
use super::render;
use super::{Clock, Endpoints, Platform, Sichuan, platform_for};
use crate::demo::{DEMO_PERIOD, demo_users};
use crate::provinces::DemoCtx;
use anyhow::{Context, anyhow};
use chrono::Days;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use ykt_kernel::intake::ProxyKind;
use ykt_kernel::ports::FailureReason;
use ykt_kernel::{BankAccount, Period, RegionCode, User};
use ykt_sim::server::SimServer;
use ykt_sim::sichuan::bank::{BankSim, BankSimConfig, FailRule, FileFault};
use ykt_sim::sichuan::sms::SmsGateway;
use ykt_sim::sichuan::treasury::{TreasuryConfig, TreasurySim};
use ykt_store::cycle::LineFix;
use ykt_store::payments::BatchRow;
use ykt_store::sichuan::AgencyAgreement;

/// A directory under the system's temporary directory, removed when dropped.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(prefix: &str) -> std::io::Result<ScratchDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p)?;
        Ok(ScratchDir(p))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How the simulators behave.
#[derive(Debug, Clone, Default)]
pub struct SimConfig {
    pub bank: BankSimConfig,
    pub pending_polls: u32,
}

/// The default faults for a seed: a seeded share of failed first attempts, some result files
/// repeated, some truncated first; funding confirmed on the second status query.
pub fn faults(seed: u64, fail_accounts: Vec<FailRule>) -> SimConfig {
    SimConfig {
        bank: BankSimConfig {
            seed,
            fail_permille: 30,
            fail_accounts,
            repeat: FileFault::Permille(250),
            truncate: FileFault::Permille(250),
            sms_url: None,
            content: Default::default(),
        },
        pending_polls: 1,
    }
}

/// The running simulators: the treasury and the SMS gateway on ephemeral localhost ports, the
/// bank on its file drop (rounds run on demand with [`BankSim::process_once`], or in the
/// background with [`BankSim::spawn`]).
pub struct Simulators {
    pub treasury: TreasurySim,
    pub sms: SmsGateway,
    pub bank: BankSim,
    pub bank_dir: PathBuf,
    treasury_server: SimServer,
    sms_server: SimServer,
}

impl Simulators {
    pub async fn start(bank_dir: &Path, cfg: SimConfig) -> anyhow::Result<Simulators> {
        let treasury = TreasurySim::new(TreasuryConfig {
            pending_polls: cfg.pending_polls,
        });
        let treasury_server = SimServer::start(treasury.router()).await?;
        let sms = SmsGateway::new();
        let sms_server = SimServer::start(sms.router()).await?;
        let bank = BankSim::new(
            bank_dir,
            BankSimConfig {
                sms_url: Some(sms_server.url()),
                ..cfg.bank
            },
        )?;
        Ok(Simulators {
            treasury,
            sms,
            bank,
            bank_dir: bank_dir.to_path_buf(),
            treasury_server,
            sms_server,
        })
    }

    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            treasury_url: Some(self.treasury_server.url()),
            bank_dir: Some(self.bank_dir.clone()),
        }
    }

    pub fn sms_url(&self) -> String {
        self.sms_server.url()
    }
}

fn user(province: &str, who: &str) -> anyhow::Result<User> {
    let row = demo_users(province)
        .into_iter()
        .find(|u| u.login.ends_with(&format!("-{who}")))
        .ok_or_else(|| anyhow!("no demo user {who}"))?;
    crate::cli::user_of(&row)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("无法创建目录 {}", d.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("无法写入 {}", path.display()))
}

/// Take a step and say what it did.
async fn step(
    p: &Platform,
    id: i64,
    code: &str,
    u: &User,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    let r = p.cycle().step(id, code, u, reason).await?;
    match r.moved {
        Some((from, to)) => outln!(
            "  批次{id} {}：{} → {}（{}）{}",
            r.step.label,
            from.label_zh(),
            to.label_zh(),
            u.login,
            r.note
        ),
        None => outln!("  批次{id} {}：状态不变 {}", r.step.label, r.note),
    }
    if let Some(res) = &r.results {
        outln!(
            "    回盘：到账{}笔{}元，失败{}笔，重复{}条，异常{}条",
            res.credited.count,
            res.credited.amount,
            res.failed.count,
            res.duplicates,
            res.anomalies.len()
        );
    }
    Ok(())
}

/// A refusal's message (a port's refusal without the port's name repeated).
pub fn refusal_text(e: &crate::cycle::CycleError) -> String {
    match e {
        crate::cycle::CycleError::Port(p) => p.message.clone(),
        other => other.to_string(),
    }
}

/// Take a step that must be refused, and say why it was.
async fn refused_step(
    p: &Platform,
    id: i64,
    code: &str,
    u: &User,
    what: &str,
) -> anyhow::Result<()> {
    match p.cycle().step(id, code, u, None).await {
        Ok(_) => Err(anyhow!("演示预期{what}被拒绝，却执行成功了")),
        Err(e) => {
            outln!("  预期拒绝（{what}）：{}", refusal_text(&e));
            Ok(())
        }
    }
}

async fn poll(
    p: &Platform,
    scope: &RegionCode,
    seen: &mut std::collections::HashSet<i64>,
) -> anyhow::Result<()> {
    for r in ops::poll(p, None, Some(scope)).await? {
        if r.step == "collect_results" {
            for f in p.sc.store.sichuan_bank_files(r.batch).await? {
                let new = f.direction == "result" && seen.insert(f.id);
                match f.status.as_str() {
                    "rejected" if new => outln!(
                        "  批次{} 回盘文件{}整体拒收，未入账：{}（已向银行发送拒收回执）",
                        r.batch,
                        f.file_name,
                        f.note
                    ),
                    "repeat" if new => outln!(
                        "  批次{} 回盘文件{}为重复文件：{}",
                        r.batch,
                        f.file_name,
                        f.note
                    ),
                    _ => {}
                }
            }
        }
        match r.outcome {
            Ok(rep) => {
                match rep.moved {
                    Some((from, to)) => outln!(
                        "  批次{} {}：{} → {}{}",
                        r.batch,
                        rep.step.label,
                        from.label_zh(),
                        to.label_zh(),
                        rep.note
                    ),
                    None => outln!("  批次{} {}：{}", r.batch, rep.step.label, rep.note),
                }
                if let Some(res) = &rep.results {
                    outln!(
                        "    回盘：到账{}笔{}元，失败{}笔，重复{}条（重复回盘不重复入账），异常{}条",
                        res.credited.count,
                        res.credited.amount,
                        res.failed.count,
                        res.duplicates,
                        res.anomalies.len()
                    );
                }
            }
            Err(m) => outln!(
                "  批次{} {}：{m}",
                r.batch,
                p.sc.province
                    .workflow()
                    .step(r.step)
                    .map(|s| s.label)
                    .unwrap_or(r.step)
            ),
        }
    }
    Ok(())
}

async fn bank_round(s: &Simulators) -> anyhow::Result<()> {
    let r = s.bank.process_once().await?;
    if !r.instructions.is_empty() || !r.resent.is_empty() {
        outln!(
            "  [模拟合作银行] 读取指令{}份，到账{}笔、失败{}笔，发送短信{}条，写回盘{}份{}{}{}",
            r.instructions.len(),
            r.credited,
            r.failed,
            r.sms_sent,
            r.results.len(),
            if r.repeated.is_empty() {
                String::new()
            } else {
                format!("（其中重复发送{}）", r.repeated.join("、"))
            },
            if r.truncated.is_empty() {
                String::new()
            } else {
                format!("（{} 传输中被截断）", r.truncated.join("、"))
            },
            if r.resent.is_empty() {
                String::new()
            } else {
                format!("（收到拒收回执，重发{}）", r.resent.join("、"))
            }
        );
    }
    Ok(())
}

/// A new Luhn-valid account with the same bank prefix (the beneficiary's replaced card).
fn replaced_account(old: &BankAccount, rng: &mut StdRng) -> anyhow::Result<BankAccount> {
    let bin = &old.as_str()[..6.min(old.as_str().len())];
    let body = format!("{bin}{:012}", rng.gen_range(0..1_000_000_000_000u64));
    let full = (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|s| ykt_kernel::ident::luhn_valid(s))
        .unwrap_or_else(|| format!("{body}0"));
    BankAccount::parse(&full).map_err(|e| anyhow!("{e}"))
}

/// The supplementary roster paid through receipt proxies (乐山办法 五: a person without an ID
/// paid to a proxy's card under a recorded receipt agreement): three registry-only people of
/// the demo data set, one receiving for a beneficiary without an ID (agreement on record),
/// one without an agreement (refused: `proxy.agreement_missing`), one paid in person.
async fn supplementary(
    ctx: &DemoCtx<'_>,
    sc: &Sichuan,
    clerk: &User,
    village: &str,
) -> anyhow::Result<Option<BatchRow>> {
    let today = ctx.cfg.today();
    // The first three cards of the registry, streamed (a province-scale one has millions).
    let mut first = Vec::new();
    ykt_files::registry::for_each_card(&ctx.out.join("社保卡信息.csv"), today, |c| {
        if first.len() < 3
            && let Ok(c) = c
        {
            first.push(c);
        }
    })?;
    let people: Vec<_> = first.iter().collect();
    if people.len() < 3 {
        return Ok(None);
    }
    sc.store
        .record_agreement(
            &people[0].resident_id,
            ProxyKind::Receipt,
            &people[0].name,
            "幸福村村民委员会",
            "2023-04-20",
        )
        .await?;
    let project = "分散特困人员救助供养金";
    let rows = [
        [
            "马德贵",
            "",
            "",
            village,
            project,
            "560.00",
            DEMO_PERIOD,
            "",
            &people[0].name,
            people[0].resident_id.as_str(),
            "代领",
        ],
        [
            "韦小芳",
            "",
            "",
            village,
            project,
            "560.00",
            DEMO_PERIOD,
            "",
            &people[1].name,
            people[1].resident_id.as_str(),
            "代领",
        ],
        [
            &people[2].name,
            people[2].resident_id.as_str(),
            "13800138000",
            village,
            project,
            "560.00",
            DEMO_PERIOD,
            "",
            "",
            "",
            "",
        ],
    ];
    let file = ctx.out.join("补充清册_特困供养_代领.csv");
    ykt_files::export::write_csv_gb18030_table(
        &file,
        &[
            "姓名",
            "身份证号码",
            "手机号码",
            "行政区划代码",
            "补贴项目",
            "补贴金额",
            "属期",
            "户主",
            "代领人",
            "代领人身份证号码",
            "代领类型",
        ],
        rows.iter().map(|r| {
            r.iter()
                .map(|c| ykt_files::Cell::Text((*c).to_owned()))
                .collect()
        }),
    )?;
    let (p, period) = crate::intake::resolve(ctx.province, project, DEMO_PERIOD)?;
    let mut regs = crate::registers::MemRegisters::default();
    regs.add_regions(crate::registers::demo_regions());
    let req = crate::intake::Request {
        province: ctx.province,
        project: p,
        period,
        today,
        scope: Some(clerk.region.clone()),
        regions: Some(&regs),
        check_cards: true,
    };
    match crate::intake::import(ctx.store, &file, &req, clerk).await? {
        crate::intake::ImportResult::Imported { report, result } => {
            outln!(
                "补充清册（{}，代领）：{}行，通过{}行，未通过{}行：{}",
                project,
                report.summary.lines,
                report.summary.accepted,
                report.summary.rejected,
                report
                    .problems
                    .iter()
                    .map(|pr| format!("第{}行 {} {}", pr.row, pr.code, pr.message))
                    .collect::<Vec<_>>()
                    .join("；")
            );
            Ok(result.batches.into_iter().next())
        }
        crate::intake::ImportResult::AlreadyImported { .. } => Ok(None),
    }
}

fn agreement_for(b: &BatchRow, county: &str, n: usize) -> AgencyAgreement {
    let dept = if b.project.starts_with("SC09") {
        "民政局"
    } else {
        "主管部门"
    };
    AgencyAgreement {
        id: 0,
        agreement_no: format!("SCDF-{}-{:03}", &b.region[..6], n),
        region: b.region.clone(),
        project: "SC09".into(),
        department: format!("{county}{dept}"),
        zb_account_no: format!("2215{}{:07}", &b.region[..6], 1000 + n),
        zb_account_name: format!("{county}{dept}"),
        zb_bank: "中国农业银行股份有限公司乐山分行".into(),
        bank: "中国农业银行".into(),
        terms: "委托事项：惠民惠农补贴资金代发；发放时间：收到发放指令当日；信息反馈：逐笔回盘及失败原因；资金监管：不得额外收费；对账办法：按月对账".into(),
        signed_on: "2023-01-05".into(),
        valid_until: "2025-12-31".into(),
    }
}

/// The whole cycle for the demo's batches (see the module docs).
pub async fn run(ctx: &DemoCtx<'_>) -> anyhow::Result<()> {
    let out = ctx.out.join("发放流程");
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("无法清理 {}", out.display()))?;
    }
    std::fs::create_dir_all(&out)?;
    let period = Period::parse(DEMO_PERIOD).map_err(|e| anyhow!("{e}"))?;
    let d0 = period.start_date() + Days::new(7);
    let at = |n: u64| d0 + Days::new(n);
    let clock = Clock::fixed(d0);
    let sc = Sichuan::from_config(ctx.cfg, ctx.store, clock.clone())?;
    let code = ctx.province.code();
    let (clerk, head, finance, township) = (
        user(code, "clerk")?,
        user(code, "head")?,
        user(code, "finance")?,
        user(code, "township")?,
    );
    let scope = clerk.region.clone();
    let mut rng = StdRng::seed_from_u64(ctx.seed ^ 0x5c5c_2018);
    let mut batches = ctx.batches.clone();
    batches.sort_by_key(|b| b.id);
    let Some(first) = batches.first().cloned() else {
        outln!("（没有通过的明细，未形成批次）");
        return Ok(());
    };
    outln!();
    outln!("== 单位零余额账户发放流程（{}起，模拟日历） ==", day(d0));

    crate::bench::phase("agreements, publicity");
    // Agency agreements, one per county department (川财办〔2018〕61号 三(三)).
    let mut places = ops::Places::default();
    let mut counties: Vec<String> = batches.iter().map(|b| b.region.clone()).collect();
    counties.sort();
    counties.dedup();
    let sims_dir = out.join("银行文件交换");
    // The first line only (a province-scale batch has hundreds of thousands).
    let village = sc
        .store
        .lines(first.id, 0, 1)
        .await?
        .first()
        .map(|l| ops::village_of(&l.region))
        .unwrap_or_else(|| first.region.clone());
    if let Some(extra) = supplementary(ctx, &sc, &clerk, &village).await? {
        batches.push(extra);
    }

    // Seeded faults: which line's account is wrong (paid again after correction), which
    // account is closed (refunded), which order's result file is repeated, which truncated.
    // Picked among the batches' line ids (in row order, as the lines are listed), and only
    // the picked lines read and decrypted: the same draws as over the lines themselves.
    let account_of = async |batch: i64, id: i64| -> anyhow::Result<BankAccount> {
        sc.store
            .line(batch, id)
            .await?
            .map(|l| l.account)
            .ok_or_else(|| anyhow!("批次{batch}没有明细{id}"))
    };
    let b_fail = &batches[0];
    let b_refund = batches.get(1).unwrap_or(&batches[0]).clone();
    let b_recover = batches.get(2).unwrap_or(&batches[0]).clone();
    let fail_ids = sc.store.line_ids(b_fail.id).await?;
    let wrong_line = *fail_ids
        .choose(&mut rng)
        .ok_or_else(|| anyhow!("批次{}没有明细", b_fail.id))?;
    let wrong_account = account_of(b_fail.id, wrong_line).await?;
    let closed_id = *sc
        .store
        .line_ids(b_refund.id)
        .await?
        .into_iter()
        .filter(|id| *id != wrong_line)
        .collect::<Vec<_>>()
        .choose(&mut rng)
        .ok_or_else(|| anyhow!("批次{}没有明细", b_refund.id))?;
    let closed = (closed_id, account_of(b_refund.id, closed_id).await?);
    let sims = Simulators::start(
        &sims_dir,
        SimConfig {
            bank: BankSimConfig {
                seed: ctx.seed,
                fail_permille: ctx.fail_share.map_or(0, |s| (s * 1000.0).round() as u32),
                fail_accounts: vec![
                    FailRule {
                        account: wrong_account.as_str().to_owned(),
                        reason: FailureReason::WrongAccount,
                        attempts: 1,
                    },
                    FailRule {
                        account: closed.1.as_str().to_owned(),
                        reason: FailureReason::AccountClosed,
                        attempts: 0,
                    },
                ],
                repeat: FileFault::Orders(vec![b_fail.order_no.clone()]),
                truncate: FileFault::Orders(vec![b_refund.order_no.clone()]),
                sms_url: None,
                content: Default::default(),
            },
            pending_polls: 1,
        },
    )
    .await?;
    let p = platform_for(&sc, &sims.endpoints())?;
    let mut seen = std::collections::HashSet::new();

    outln!("[{}] 登记代发协议", day(clock.today()));
    for (i, county) in counties.iter().enumerate() {
        let name = places.name(&sc, county).await;
        let b = batches
            .iter()
            .find(|b| &b.region == county)
            .unwrap_or(&first);
        let a = agreement_for(b, &name, i + 1);
        ops::add_agreement(&p, &a, &clerk).await?;
        outln!(
            "  {} {} 与{}签订《补贴资金发放委托代理协议》（{}）",
            a.agreement_no,
            a.department,
            a.bank,
            a.region
        );
    }

    // Pre-payment publicity (乐山办法 四(二)1).
    outln!(
        "[{}] 乡镇张榜公示（{}天）",
        day(clock.today()),
        sc.settings.publicity_days
    );
    for b in &batches {
        step(&p, b.id, "start_publicity", &township, None).await?;
    }
    clock.set(at(2));
    outln!("[{}] 公示期内收到异议", day(clock.today()));
    let target = fail_ids
        .iter()
        .copied()
        .find(|id| *id != wrong_line)
        .ok_or_else(|| anyhow!("批次{}明细太少", b_fail.id))?;
    drop(fail_ids);
    let o1 = ops::raise_objection(
        &p,
        b_fail.id,
        Some(target),
        "张明华",
        "该户家庭成员有稳定务工收入，人均收入已超过低保标准",
        &township,
    )
    .await?;
    let o2 = ops::raise_objection(
        &p,
        b_fail.id,
        None,
        "李秀珍",
        "本组困难户是否均已纳入公示名单",
        &township,
    )
    .await?;
    outln!("  异议{o1}（针对明细{target}）、异议{o2}（一般询问）已登记");
    refused_step(
        &p,
        b_fail.id,
        "township_submit",
        &township,
        "公示期未满即报送",
    )
    .await?;
    clock.set(at(4));
    let r = ops::resolve_objection(
        &p,
        o1,
        true,
        "经入户核实，该户2023年4月起家庭人均收入超过当地低保标准，异议成立，取消本期发放",
        &township,
    )
    .await?;
    outln!(
        "[{}] 异议{o1}成立：明细{}（{}元）从批次中剔除",
        day(clock.today()),
        r.excluded.map(|e| e.0).unwrap_or_default(),
        r.excluded.map(|e| e.1).unwrap_or_default()
    );
    clock.set(at(7));
    outln!("[{}] 公示期满", day(clock.today()));
    refused_step(
        &p,
        b_fail.id,
        "township_submit",
        &township,
        "尚有异议未处理即报送",
    )
    .await?;
    ops::resolve_objection(
        &p,
        o2,
        false,
        "经核对本组困难户均已按规定申报，名单无遗漏",
        &township,
    )
    .await?;
    outln!("  异议{o2}经核实不成立，已答复");
    for b in &batches {
        step(&p, b.id, "township_submit", &township, None).await?;
    }
    refused_step(&p, b_fail.id, "dept_review", &clerk, "经办人越权审核").await?;
    for b in &batches {
        step(&p, b.id, "dept_review", &head, None).await?;
    }

    crate::bench::phase("plans, procedural review");
    // Authorised payment plans and finance's procedural review.
    outln!(
        "[{}] 申报授权支付用款计划；财政程序性复核",
        day(clock.today())
    );
    for b in &batches {
        let b = ops::batch(&sc, b.id).await?;
        let amount = if b.id == b_refund.id {
            // A typing error in the declared amount: finance returns it.
            Some(b.control.amount - ykt_kernel::Fen(10_000))
        } else {
            None
        };
        let (plan, _) = ops::declare_plan(&p, b.id, None, amount, &clerk).await?;
        outln!("  批次{} 申报{}笔{}元", b.id, plan.count, plan.amount);
    }
    for b in &batches {
        let o = ops::review(&p, b.id, &finance).await?;
        outln!(
            "  批次{} 程序性复核：{}{}",
            b.id,
            if o.review.passed {
                "汇总=明细=申报，通过"
            } else {
                "不一致，退回主管部门"
            },
            if o.review.passed {
                String::new()
            } else {
                format!("（{}）", o.review.findings.replace('\n', "；"))
            }
        );
    }
    let b = ops::batch(&sc, b_refund.id).await?;
    let (plan, _) = ops::declare_plan(&p, b.id, None, None, &clerk).await?;
    outln!(
        "  批次{} 更正后重新申报{}笔{}元",
        b.id,
        plan.count,
        plan.amount
    );
    let o = ops::review(&p, b.id, &finance).await?;
    outln!(
        "  批次{} 程序性复核：{}",
        b.id,
        if o.review.passed {
            "通过"
        } else {
            "仍不一致"
        }
    );

    crate::bench::phase("funding, instruction file, results");
    // Funds to the zero-balance accounts.
    clock.set(at(8));
    outln!(
        "[{}] 国库拨付至单位零余额账户（平台查询到账）",
        day(clock.today())
    );
    poll(&p, &scope, &mut seen).await?;
    poll(&p, &scope, &mut seen).await?;
    outln!(
        "[{}] 再次比对金额，提交发放申请；财政确认",
        day(clock.today())
    );
    for b in &batches {
        step(&p, b.id, "submit_disbursement", &clerk, None).await?;
    }
    refused_step(
        &p,
        b_fail.id,
        "confirm_disbursement",
        &clerk,
        "经办人越权确认发放",
    )
    .await?;
    for b in &batches {
        step(&p, b.id, "confirm_disbursement", &finance, None).await?;
    }
    outln!("[{}] 向合作银行提交发放指令", day(clock.today()));
    for b in &batches {
        step(&p, b.id, "send_instruction", &clerk, None).await?;
    }
    bank_round(&sims).await?;
    outln!("[{}] 接收回盘", day(clock.today()));
    poll(&p, &scope, &mut seen).await?;
    bank_round(&sims).await?;
    poll(&p, &scope, &mut seen).await?;

    crate::bench::phase("corrections, repayment, refunds");
    // Failures: corrected and paid again, or refunded to the treasury.
    clock.set(at(9));
    outln!("[{}] 处理发放失败", day(clock.today()));
    let new_account = replaced_account(&wrong_account, &mut rng)?;
    p.cycle()
        .correct(
            b_fail.id,
            wrong_line,
            &LineFix {
                account: Some(new_account),
                bank: None,
                name: None,
                reason: "经核实该对象社会保障卡已补换，更正为新卡金融账户".into(),
                beneficiary_signed: Some("本人".into()),
                head_signoff: Some(head.login.clone()),
            },
            &clerk,
        )
        .await?;
    let again = p.cycle().redispatch(b_fail.id, &clerk).await?;
    outln!(
        "  批次{} 明细{wrong_line} 账号错误：更正后再次发放{}笔（第2次）",
        b_fail.id,
        again.len()
    );
    let amount = p
        .cycle()
        .refund(
            b_refund.id,
            closed.0,
            "账户已销户，本人长期外出务工，当年无法更正，列入未发放台账",
            &clerk,
            &finance,
        )
        .await?;
    outln!(
        "  批次{} 明细{} 账户已销户：{}元从单位零余额账户退回财政金库，列入未发放台账",
        b_refund.id,
        closed.0,
        amount
    );
    bank_round(&sims).await?;
    poll(&p, &scope, &mut seen).await?;
    if ctx.fail_share.is_some() {
        // The benchmark's share of failures: a dormant or wrong account is checked with the
        // beneficiary (signed, the head signs off) and paid again; anything else goes back
        // to the treasury.
        let (mut fixed, mut back) = (0usize, 0usize);
        for b in &batches {
            // Only the failed lines, by the (batch, state) index.
            let failed = sc
                .store
                .lines_in_state(b.id, ykt_kernel::LineState::Failed)
                .await?;
            let mut again = false;
            for l in failed {
                let reason = l.fail_reason.as_deref().and_then(FailureReason::parse);
                if matches!(
                    reason,
                    Some(FailureReason::WrongAccount | FailureReason::DormantAccount)
                ) {
                    p.cycle()
                        .correct(
                            b.id,
                            l.id,
                            &LineFix {
                                account: None,
                                bank: None,
                                name: None,
                                reason: "经核实账户已激活，原账户再次发放".into(),
                                beneficiary_signed: Some("本人".into()),
                                head_signoff: Some(head.login.clone()),
                            },
                            &clerk,
                        )
                        .await?;
                    again = true;
                    fixed += 1;
                } else {
                    p.cycle()
                        .refund(b.id, l.id, "账户无法入账，退回财政金库", &clerk, &finance)
                        .await?;
                    back += 1;
                }
            }
            if again {
                p.cycle().redispatch(b.id, &clerk).await?;
            }
        }
        outln!("  其余失败明细：更正后再次发放{fixed}笔，退回{back}笔");
        bank_round(&sims).await?;
        poll(&p, &scope, &mut seen).await?;
    }

    crate::bench::phase("post-publicity, recovery, month end");
    // Post-payment publicity within five days, with the dual verification.
    clock.set(at(10));
    outln!("[{}] 发放后再公示与双向验证", day(clock.today()));
    for b in &batches {
        step(&p, b.id, "post_publicity", &clerk, None).await?;
        if let Some(v) = sc.store.sichuan_verification(b.id).await? {
            let diffs: Vec<ykt_province_sichuan::rules::Difference> =
                serde_json::from_str(&v.differences).unwrap_or_default();
            outln!(
                "    双向验证：公示{}笔{}元，银行到账{}笔{}元，差异{}笔；{}",
                v.publicised.0,
                v.publicised.1,
                v.credited.0,
                v.credited.1,
                diffs.len(),
                if v.on_time {
                    "5日内公示"
                } else {
                    "逾期公示"
                }
            );
        }
    }

    // A deceased person's payment recovered, then the month end.
    clock.set(at(12));
    // The last credited line paid in person, read from the end a page at a time.
    let mut dead = None;
    for page in sc.store.line_ids(b_recover.id).await?.rchunks(1000) {
        dead = sc
            .store
            .lines_by_id(b_recover.id, page)
            .await?
            .into_iter()
            .rfind(|l| l.state == ykt_kernel::LineState::Credited && l.proxy_kind.is_none());
        if dead.is_some() {
            break;
        }
    }
    let dead = dead.ok_or_else(|| anyhow!("批次{}没有已到账明细", b_recover.id))?;
    let amount = ops::recover(
        &p,
        b_recover.id,
        dead.id,
        "deceased",
        "民政部门比对死亡登记：该对象已于属期前死亡，家属冒领，已追回",
        &clerk,
        &finance,
    )
    .await?;
    outln!(
        "[{}] 批次{} 明细{} 死亡冒领：追回{}元至单位零余额账户",
        day(clock.today()),
        b_recover.id,
        dead.id,
        amount
    );
    clock.set(period.end_date());
    let month = period;
    let before = ops::month_end(&p, month, &scope, None, &clerk).await?;
    outln!(
        "[{}] 月末清零检查：{}",
        day(clock.today()),
        render::month_end(&before).lines().next().unwrap_or("")
    );
    for l in render::month_end(&before).lines().skip(1) {
        outln!("  {l}");
    }
    let after = ops::month_end(&p, month, &scope, Some((&clerk, &finance)), &clerk).await?;
    outln!(
        "  退回追回款后复查：{}",
        render::month_end(&after).lines().next().unwrap_or("")
    );
    for b in &batches {
        step(&p, b.id, "close", &head, None).await?;
    }

    crate::bench::phase("statements, reports");
    // Statements and artifacts.
    let statements = write_statements(&p, &out, &month, &scope).await?;
    outln!(
        "[{}] 出具对账单{}份（{}）",
        day(clock.today()),
        statements,
        sc.settings.statement_frequency.label_zh()
    );
    let mask = sc.province.mask_policy();
    write_artifacts(&p, &sims, &out, &batches, &[before, after]).await?;
    let (sum, bad) = sc.store.ledger_check().await?;
    let zb: ykt_kernel::Fen = sc
        .store
        .ledger_balances()
        .await?
        .iter()
        .filter(|(a, _)| a.kind == ykt_kernel::ledger::AccountKind::ZeroBalance)
        .map(|(_, v)| *v)
        .sum();
    outln!(
        "账务：全部分录合计{sum}元，不平分录{bad}条；单位零余额账户余额合计{zb}元；短信{}条（{}）",
        sims.sms.count(),
        sims.sms
            .first()
            .map(|m| format!("{} {}", mask.phone(&m.to), m.text))
            .unwrap_or_default()
    );
    outln!("发放流程文件 artifacts: {}", out.display());
    Ok(())
}

/// The month's statements written to `对账单_<month>.txt` as they are built, a thousand at a
/// time (one per beneficiary paid: a province-scale run has a million), the same text as
/// rendering them all at once. Returns how many there were.
async fn write_statements(
    p: &Platform,
    out: &Path,
    month: &Period,
    scope: &RegionCode,
) -> anyhow::Result<usize> {
    use std::io::Write as _;
    let sc = &p.sc;
    let path = out.join(format!("对账单_{month}.txt"));
    let ctx = || format!("无法写入 {}", path.display());
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).with_context(ctx)?);
    let mut failed = None;
    let mut first = true;
    let freq = sc.settings.statement_frequency.label_zh();
    let n = ops::statements_each(p, *month, Some(scope), ops::STATEMENT_PAGE, |chunk| {
        if failed.is_some() {
            return Ok(());
        }
        let sep = if first {
            Ok(())
        } else {
            writeln!(f, "{}", "=".repeat(72))
        };
        first = false;
        if let Err(e) =
            sep.and_then(|()| f.write_all(render::statements(month, freq, chunk).as_bytes()))
        {
            failed = Some(e);
        }
        Ok(())
    })
    .await?;
    if let Some(e) = failed {
        return Err(e).with_context(ctx);
    }
    f.flush().with_context(ctx)?;
    Ok(n)
}

async fn write_artifacts(
    p: &Platform,
    sims: &Simulators,
    out: &Path,
    batches: &[BatchRow],
    checks: &[ops::MonthEndReport],
) -> anyhow::Result<()> {
    let sc = &p.sc;
    let mask = sc.province.mask_policy();
    let mut trace = String::new();
    let mut reviews = String::new();
    let mut files = String::new();
    let mut objections = String::new();
    let mut verification = String::new();
    for b in batches {
        let b = ops::batch(sc, b.id).await.map_err(anyhow::Error::from)?;
        trace.push_str(&render::trace(
            &b,
            &sc.store.batch_steps(b.id).await?,
            sc.province.workflow(),
        ));
        reviews.push_str(&format!("批次{} {}\n", b.id, b.order_no));
        reviews.push_str(&render::reviews(
            &sc.store.sichuan_plans(b.id).await?,
            &sc.store.sichuan_reviews(b.id).await?,
        ));
        files.push_str(&format!("批次{} {}\n", b.id, b.order_no));
        files.push_str(&render::bank_files(
            &sc.store.sichuan_bank_files(b.id).await?,
        ));
        objections.push_str(&render::objections(
            &sc.store.sichuan_objections(b.id).await?,
        ));
        for v in sc.store.sichuan_vouchers(b.id).await? {
            let path = out.join("凭证").join(format!("{}.xml", v.voucher_no));
            if let Some(d) = path.parent() {
                std::fs::create_dir_all(d)?;
            }
            std::fs::write(&path, &v.xml)?;
        }
        if let Some(v) = sc.store.sichuan_verification(b.id).await? {
            // Only the lines that differ are read (a batch may hold a million lines).
            let differing: Vec<i64> = serde_json::from_str::<
                Vec<ykt_province_sichuan::rules::Difference>,
            >(&v.differences)
            .unwrap_or_default()
            .iter()
            .map(|d| d.line_id())
            .collect();
            let lines: HashMap<i64, _> = sc
                .store
                .lines_by_id(b.id, &differing)
                .await?
                .into_iter()
                .map(|l| (l.id, l))
                .collect();
            verification.push_str(&format!("批次{} {}\n", b.id, b.order_no));
            verification.push_str(&render::verification(&v, |id| {
                lines
                    .get(&id)
                    .map(|l| format!("{} {}", mask.name(&l.name), l.state.label_zh()))
                    .unwrap_or_default()
            }));
        }
    }
    write(&out.join("流程.txt"), &trace)?;
    write(&out.join("用款计划与程序性复核.txt"), &reviews)?;
    write(&out.join("银行文件记录.txt"), &files)?;
    write(&out.join("异议处理.txt"), &objections)?;
    write(&out.join("双向验证.txt"), &verification)?;
    // One notice read at a time (the village lists hold every line of every batch).
    for id in sc.store.notice_ids(None).await? {
        if !batches.iter().any(|b| id.starts_with(&b.order_no)) {
            continue;
        }
        if let Some(n) = sc.store.notice(&id).await? {
            write(
                &out.join("公示").join(format!("{}.txt", n.id)),
                &format!(
                    "{}\n发布日期：{}{}\n\n{}",
                    n.title,
                    n.published_on,
                    n.until
                        .map(|u| format!("  公示截止：{u}"))
                        .unwrap_or_default(),
                    n.body
                ),
            )?;
        }
    }
    let unpaid = sc
        .store
        .sichuan_unpaid(ykt_province_sichuan::CODE, "")
        .await?;
    write(&out.join("未发放台账.txt"), &render::unpaid(&unpaid, &mask))?;
    write(
        &out.join("月末清零检查.txt"),
        &checks
            .iter()
            .map(render::month_end)
            .collect::<Vec<_>>()
            .join("\n"),
    )?;
    // The gateway's log rendered a message at a time into the file (a province-scale run
    // sends a million).
    {
        use std::io::Write as _;
        let path = out.join("短信.txt");
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("无法写入 {}", path.display()))?,
        );
        let mut failed = None;
        sims.sms.each(|m| {
            if failed.is_none()
                && let Err(e) = f.write_all(render::sms(std::slice::from_ref(m), &mask).as_bytes())
            {
                failed = Some(e);
            }
        });
        if let Some(e) = failed {
            return Err(e).with_context(|| format!("无法写入 {}", path.display()));
        }
        f.flush()
            .with_context(|| format!("无法写入 {}", path.display()))?;
    }
    let postings = sc.store.sichuan_postings(None, None).await?;
    let mut ledger = String::from("单位零余额账户（逐笔，含余额）\n");
    ledger.push_str(&render::ledger(&postings, &["zero_balance"]));
    ledger.push_str("\n全部账户分录\n");
    ledger.push_str(&render::ledger(&postings, &[]));
    ledger.push_str("\n各账户余额\n");
    for (a, v) in sc.store.ledger_balances().await? {
        ledger.push_str(&format!("  {} {}元\n", a.label_zh(), v));
    }
    write(&out.join("账务.txt"), &ledger)?;
    let treasury = serde_json::to_string_pretty(&sims.treasury.vouchers())?;
    write(&out.join("国库凭证登记（模拟国库）.json"), &treasury)?;
    Ok(())
}
