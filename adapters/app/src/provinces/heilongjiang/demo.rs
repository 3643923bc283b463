//! `ykt demo --province heilongjiang`, after intake: the whole unified-treasury cycle over a
//! two-week timeline, with the budget system and the treasury agent bank as real HTTP peers.
//!
//! Day 0: the 补贴政策 column and the county policy lists are published; a grain-risk-fund
//! roster (耕地地力保护补贴资金, 2023) is imported next to the demo's 农村低保 roster; every batch
//! is reviewed and its plan pushed to the budget system, which splits it by region.
//! Day 1: each region's department raises the treasury centralised payment request, finance
//! approves it, the 5201 voucher goes to the agent bank, which pays the cards.
//! Day 2: results come back (partially, repeated and out of order: nothing is applied twice);
//! bulletin-board notices are posted (one county late, on day 9: flagged).
//! Day 4: failed lines are handled: wrong accounts corrected after HR&SS re-issued the card,
//! dormant accounts paid again after reactivation, name mismatches refunded through the
//! original channel; corrected lines are paid again as new attempts.
//! Day 5: finance reconciles; clearing statements (the grain-risk-fund special account).
//! Day 6: results published (web notice, 补贴查询 records).
//! Day 9: the late bulletin notice; the reports as of that day.

use super::ops::{Hlj, ports_for};
use super::{notices, reports};
use crate::cli::user_of;
use crate::cycle::StepReport;
use crate::demo::demo_users;
use crate::intake::{self, ImportResult, Request};
use crate::output;
use crate::provinces::DemoCtx;
use crate::registers::{MemRegisters, demo_regions};
use anyhow::{Context, anyhow};
use chrono::{Days, NaiveDate};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::path::Path;
use ykt_files::Cell;
use ykt_http::heilongjiang::PlatformDate;
use ykt_kernel::card::{CardRecord, CardStatus};
use ykt_kernel::ledger::AccountKind;
use ykt_kernel::ports::FailureReason;
use ykt_kernel::{BankAccount, BatchState, LineState, Period, RegionLevel, User};
use ykt_sim::heilongjiang::{BankConfig, HljSims};
use ykt_store::cycle::LineFix;
use ykt_store::payments::BatchRow;
use ykt_store::{ImportMeta, Store, kinds, ok_rows};

/// The grain-risk-fund project the demo pays, its standard (demo value, 元/亩) and its roster size.
const GRAIN_PROJECT: &str = "HLJ38";
const GRAIN_STANDARD_FEN: i64 = 7000;
const GRAIN_LINES: usize = 30;

fn user(login: &str) -> anyhow::Result<User> {
    let row = demo_users(super::CODE)
        .into_iter()
        .find(|u| u.login == login)
        .ok_or_else(|| anyhow!("演示用户{login}不存在"))?;
    user_of(&row)
}

fn luhn_complete(body: &str) -> String {
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|s| ykt_kernel::ident::luhn_valid(s))
        .unwrap_or_else(|| format!("{body}0"))
}

fn mix(seed: u64, n: u64) -> u64 {
    let mut x = seed ^ n.wrapping_mul(0x9e3779b97f4a7c15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xbf58476d1ce4e5b9);
    x ^ (x >> 29)
}

/// The step's note as a user reads it (the generic runner calls every budget-system
/// reference 凭证号; after push_plan it is the region plan's number).
pub fn note_of(r: &StepReport) -> String {
    if r.step.code == "push_plan" {
        r.note.replace("凭证号", "区划发放计划号")
    } else {
        r.note.clone()
    }
}

fn say_steps(reports: &[StepReport]) {
    for r in reports {
        let note = note_of(r);
        match r.moved {
            Some((from, to)) => outln!(
                "  批次{} {}：{} → {}{}",
                r.batch.id,
                r.step.label,
                from.label_zh(),
                to.label_zh(),
                if note.is_empty() {
                    String::new()
                } else {
                    format!("（{note}）")
                }
            ),
            None => outln!("  批次{} {}：状态不变 {note}", r.batch.id, r.step.label),
        }
        if let Some(res) = &r.results {
            outln!(
                "      回单：到账{}笔{}元，失败{}笔，重复{}条，异常{}条",
                res.credited.count,
                res.credited.amount,
                res.failed.count,
                res.duplicates,
                res.anomalies.len()
            );
        }
    }
}

/// Generate and import the grain-risk-fund roster: household heads with an activated card,
/// from the demo's card registry, paid by area (亩) at the demo standard.
async fn import_grain(
    ctx: &DemoCtx<'_>,
    clerk: &User,
    today: NaiveDate,
) -> anyhow::Result<Vec<BatchRow>> {
    let store = ctx.store;
    let registry = ctx.out.join("社保卡信息.csv");
    let deaths = ctx.out.join("死亡登记.csv");
    let dead: HashSet<String> = ykt_files::registry::read_death_register(&deaths, today)?
        .records
        .into_iter()
        .map(|d| d.resident_id.as_str().to_owned())
        .collect();
    let villages: Vec<_> = demo_regions()
        .into_iter()
        .filter(|e| e.code.level() == RegionLevel::Village && e.code.prefix().starts_with("23"))
        .collect();
    let mut rows = Vec::new();
    // The registry streamed (a province-scale one has millions of cards; the roster takes
    // the first few eligible).
    ykt_files::registry::for_each_card(&registry, today, |c| {
        let Ok(c) = c else {
            return;
        };
        if rows.len() == GRAIN_LINES
            || c.status != CardStatus::Normal
            || !c.activated
            || dead.contains(c.resident_id.as_str())
        {
            return;
        }
        let county = &c.resident_id.as_str()[..6];
        let here: Vec<_> = villages
            .iter()
            .filter(|v| v.code.prefix().starts_with(county))
            .collect();
        if here.is_empty() {
            return;
        }
        let i = rows.len() as u64;
        let village = here[(mix(ctx.seed, i) % here.len() as u64) as usize];
        let mu = 8 + (mix(ctx.seed, i + 1000) % 60) as i64;
        let amount = ykt_kernel::Fen(GRAIN_STANDARD_FEN * mu);
        rows.push(vec![
            Cell::Text(c.name.clone()),
            Cell::Text(c.resident_id.as_str().to_owned()),
            Cell::Text(village.code.full()),
            Cell::Text("耕地地力保护补贴资金".into()),
            Cell::Text(ykt_kernel::Fen(GRAIN_STANDARD_FEN).to_string()),
            Cell::Text("亩".into()),
            Cell::Text(mu.to_string()),
            Cell::Text(amount.to_string()),
            Cell::Text("2023".into()),
            Cell::Text("是".into()),
            Cell::Text(today.to_string()),
        ]);
    })?;
    if rows.is_empty() {
        outln!("（演示数据中没有可用于耕地地力保护补贴的社保卡，跳过粮食风险基金项目）");
        return Ok(Vec::new());
    }
    let file = ctx.out.join("耕地地力保护补贴_2023.xlsx");
    ykt_files::export::write_xlsx_table(
        &file,
        "发放清册",
        &[
            "姓名",
            "身份证号码",
            "行政区划代码",
            "补贴项目",
            "补贴标准",
            "计量单位",
            "数量",
            "补贴金额",
            "属期",
            "户主",
            "发放时间",
        ],
        rows.into_iter(),
    )?;
    let project = ctx
        .province
        .catalog()
        .find(GRAIN_PROJECT)
        .ok_or_else(|| anyhow!("目录中没有{GRAIN_PROJECT}"))?;
    let mut regs = MemRegisters::default();
    regs.add_regions(demo_regions());
    let req = Request {
        province: ctx.province,
        project,
        period: Period::Year(2023),
        today,
        scope: Some(clerk.region.clone()),
        regions: Some(&regs),
        check_cards: true,
    };
    outln!(
        "粮食风险基金项目 grain-risk-fund project: {}（{}）清册 {}",
        project.name,
        project.funding.label_zh(),
        file.display()
    );
    match intake::import(store, &file, &req, clerk).await? {
        ImportResult::Imported { report, result } => {
            out!("{}", output::check_summary(&report));
            out!("{}", output::batches_table(&result.batches));
            Ok(result.batches)
        }
        ImportResult::AlreadyImported { roster_id, .. } => Ok(store
            .batches(Some(super::CODE), None)
            .await?
            .into_iter()
            .filter(|b| b.roster_id == Some(roster_id))
            .collect()),
    }
}

/// HR&SS re-issued the cards of these people (账号错误: the registry's account was stale): a
/// registry update with the new card accounts, imported like any registry snapshot.
async fn reissue_cards(
    store: &Store,
    dir: &Path,
    round: usize,
    people: &[(ykt_store::payments::LineRow, String)],
) -> anyhow::Result<()> {
    let records: Vec<CardRecord> = people
        .iter()
        .map(|(l, acct)| {
            Ok(CardRecord {
                resident_id: l.resident_id.clone(),
                name: l.name.clone(),
                card_no: format!("B{}", &acct[acct.len() - 8..]),
                bank: l.bank.clone(),
                account: BankAccount::parse(acct).map_err(|e| anyhow!("{e}"))?,
                status: CardStatus::Normal,
                activated: true,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let file = dir.join(format!("社保卡信息_补换卡_第{round}批.csv"));
    ykt_files::export::write_csv_gb18030_table(
        &file,
        &crate::demo::REGISTRY_HEADERS,
        records.iter().map(crate::demo::card_cells),
    )?;
    let bytes = std::fs::read(&file)?;
    store
        .import_cards(
            ok_rows(records),
            ImportMeta::for_bytes(
                kinds::CARDS,
                &file
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                &bytes,
                "hrss",
            ),
        )
        .await?;
    Ok(())
}

/// Collect results until nothing more comes (a first fetch may carry only part).
async fn collect_all(h: &Hlj<'_>, id: i64) -> anyhow::Result<()> {
    for _ in 0..3 {
        let r = h.collect(id).await?;
        let moved = r.moved.is_some();
        say_steps(&[r]);
        if moved || h.store.tally(id).await?.in_flight.count == 0 {
            break;
        }
    }
    Ok(())
}

pub async fn run(ctx: &DemoCtx<'_>) -> anyhow::Result<()> {
    let store = ctx.store;
    let start = ctx.cfg.today();
    let date = PlatformDate::new(start);
    let sims = HljSims::start(
        BankConfig {
            seed: ctx.seed,
            fail_share: ctx.fail_share.unwrap_or(0.06),
            duplicate: true,
            reorder: true,
            partial: true,
            ..BankConfig::default()
        },
        start,
    )
    .await
    .context("无法启动模拟器 (cannot start the simulators)")?;
    let h = Hlj {
        store,
        province: ctx.province,
        ports: ports_for(store, ctx.province, &sims.budget.url(), date.clone())?,
        date: date.clone(),
    };
    let day = |n: u64| {
        let d = start + Days::new(n);
        date.set(d);
        sims.clock.set(d);
        outln!("-- 第{n}天 {d} --");
        d
    };
    let clerk = user("heilongjiang-clerk")?;
    let finance = user("heilongjiang-finance")?;
    outln!();
    outln!("== 发放流程 payment cycle：国库集中统一发放（黑财监〔2021〕30号）==");
    outln!(
        "模拟器 simulators: 预算管理一体化系统 {}，国库集中支付代理银行 {}（{}；6%账户失败，回单分批、重复、乱序）",
        sims.budget.url(),
        sims.bank.url(),
        BankConfig::default().name
    );

    day(0);
    crate::bench::phase("policies, grain roster");
    let n = h.publish_policies().await?;
    outln!("“补贴政策”专栏已发布 {n} 个项目的政策（黑财监〔2023〕1号 二）");
    let mut batches: Vec<BatchRow> = ctx.batches.clone();
    batches.extend(import_grain(ctx, &clerk, start).await?);
    let mut counties: BTreeMap<String, String> = BTreeMap::new();
    for b in &batches {
        counties.insert(
            b.region.clone(),
            notices::county_name(store, &b.region).await?,
        );
    }
    let policy_dir = ctx.out.join("政策清单");
    for name in counties.values() {
        let p = policy_dir.join(format!("{name}惠民惠农财政补贴政策清单.xlsx"));
        reports::write_policy_list(&p, ctx.province, name, 2023)?;
    }
    outln!(
        "补贴政策清单 policy lists: {}（{}个区县）",
        policy_dir.display(),
        counties.len()
    );

    crate::bench::phase("plan push (budget system)");
    outln!("审核并推送发放计划 review and push the plans:");
    for b in &batches {
        say_steps(&h.step(b.id, "submit_plan", &clerk, None).await?.all()?);
    }

    day(1);
    crate::bench::phase("request, approval, voucher to bank");
    outln!("各区县主管部门生成国库集中支付申请，财政审核，代理银行打卡发放:");
    for b in &batches {
        say_steps(&h.step(b.id, "request_payment", &clerk, None).await?.all()?);
        say_steps(
            &h.step(b.id, "finance_approve", &finance, None)
                .await?
                .all()?,
        );
    }

    day(2);
    crate::bench::phase("results");
    outln!("接收发放结果（经预算管理一体化系统反馈）:");
    for b in &batches {
        collect_all(&h, b.id).await?;
    }
    let bulletin_dir = ctx.out.join("公示");
    let late = batches.last().map(|b| b.region.clone());
    let mut late_batches = Vec::new();
    for b in &batches {
        if Some(&b.region) == late.as_ref() {
            late_batches.push(b.id);
            continue;
        }
        let (n, p) = h.post_bulletin(b.id, &clerk, Some(&bulletin_dir)).await?;
        outln!(
            "  公示栏公示 {} → {}",
            n.title,
            p.map(|p| p.display().to_string()).unwrap_or_default()
        );
    }

    day(4);
    crate::bench::phase("corrections, repayment, refunds");
    outln!("处理发放失败的明细 failed lines:");
    let mut refunds = 0;
    for round in 1..=3 {
        let mut reissue = Vec::new();
        let mut fixes: Vec<(i64, i64, LineFix)> = Vec::new();
        let mut refund: Vec<(i64, i64, String)> = Vec::new();
        for b in &batches {
            for l in store.lines_in_state(b.id, LineState::Failed).await? {
                let reason = l.fail_reason.as_deref().and_then(FailureReason::parse);
                match (round, reason) {
                    (1 | 2, Some(FailureReason::WrongAccount)) => {
                        let bin = &l.account.as_str()[..6];
                        let n = mix(ctx.seed, l.id as u64 * 7 + round as u64) % 1_000_000_000_000;
                        let acct = luhn_complete(&format!("{bin}{n:012}"));
                        fixes.push((
                            b.id,
                            l.id,
                            LineFix {
                                account: Some(
                                    BankAccount::parse(&acct).map_err(|e| anyhow!("{e}"))?,
                                ),
                                reason: "账号错误：人社部门已补换社会保障卡，更正为新卡金融账户"
                                    .into(),
                                ..LineFix::default()
                            },
                        ));
                        reissue.push((l, acct));
                    }
                    (1 | 2, Some(FailureReason::DormantAccount)) => fixes.push((
                        b.id,
                        l.id,
                        LineFix {
                            reason: "账户休眠：受益人已持卡到银行网点激活，原账户重新支付".into(),
                            ..LineFix::default()
                        },
                    )),
                    _ => refund.push((
                        b.id,
                        l.id,
                        format!(
                            "{}：经核实本期无法发放，申请原渠道退回",
                            reason.map(|r| r.label_zh()).unwrap_or("发放失败")
                        ),
                    )),
                }
            }
        }
        if fixes.is_empty() && refund.is_empty() {
            break;
        }
        if !reissue.is_empty() {
            reissue_cards(store, &ctx.out, round, &reissue).await?;
            outln!("  人社部门补换卡 {} 张，已更新社保卡信息", reissue.len());
        }
        // One transaction per batch for its corrections, and one for its refunds (each
        // refund still its own idempotent request to the treasury).
        for part in fixes.chunk_by(|a, b| a.0 == b.0) {
            let bid = part[0].0;
            let these: Vec<(i64, &LineFix)> = part.iter().map(|(_, l, f)| (*l, f)).collect();
            h.correct_many(bid, &these, &clerk).await?;
            for (_, lid, fix) in part {
                outln!("  批次{bid} 明细{lid} 更正：{}", fix.reason);
            }
        }
        for part in refund.chunk_by(|a, b| a.0 == b.0) {
            let bid = part[0].0;
            let these: Vec<(i64, &str)> = part.iter().map(|(_, l, w)| (*l, w.as_str())).collect();
            let (amounts, stopped) = h.refund_many(bid, &these, &clerk, &finance).await;
            for ((_, lid, why), amount) in part.iter().zip(&amounts) {
                refunds += 1;
                outln!(
                    "  批次{bid} 明细{lid} 原渠道退回 {amount}元（{why}；经办{}，财政{}同意）",
                    clerk.login,
                    finance.login
                );
            }
            if let Some(e) = stopped {
                return Err(e.into());
            }
        }
        let touched: Vec<i64> = {
            let mut v: Vec<i64> = fixes.iter().map(|f| f.0).collect();
            v.sort();
            v.dedup();
            v
        };
        for bid in &touched {
            let n = h.redispatch(*bid, &clerk).await?;
            outln!("  批次{bid} 更正后重新支付 {n} 笔（同一明细的新一次支付）");
        }
        for b in &batches {
            let now = store.batch(b.id).await?.map(|x| x.state);
            if now == Some(BatchState::Dispatched) {
                collect_all(&h, b.id).await?;
            }
        }
    }
    if refunds == 0 {
        outln!("  （本次演示没有需要退回的明细）");
    }

    day(5);
    crate::bench::phase("reconciliation");
    outln!("财政对账，粮食风险基金专户清算 reconcile and clear:");
    let clearing_dir = ctx.out.join("清算单");
    for b in &batches {
        say_steps(&h.step(b.id, "reconcile", &finance, None).await?.all()?);
        let now = h.batch(b.id).await?;
        let c = reports::clearing(store, &now).await?;
        let p = reports::write_clearing(&clearing_dir, &c)?;
        if now.funding == "grain_risk_fund" {
            out!("{}", reports::render_clearing(&c));
        }
        outln!("  清算单 {}", p.display());
    }

    day(6);
    crate::bench::phase("publication, reports");
    outln!("发放结果公开（政府网站专栏、“补贴查询”专栏）publish:");
    for b in &batches {
        say_steps(&h.step(b.id, "publish", &clerk, None).await?.all()?);
    }

    let today = day(9);
    for id in late_batches {
        let (n, p) = h.post_bulletin(id, &clerk, Some(&bulletin_dir)).await?;
        outln!(
            "  公示栏公示（迟发）{} → {}",
            n.title,
            p.map(|p| p.display().to_string()).unwrap_or_default()
        );
    }
    // Each batch's web notice read on its own (a province-scale one is tens of MB).
    for b in &batches {
        let Some(n) = store.notice(&format!("{}-result", b.order_no)).await? else {
            continue;
        };
        if n.kind == "result" && n.region.starts_with("23") {
            std::fs::create_dir_all(&bulletin_dir)?;
            std::fs::write(
                bulletin_dir.join(format!("网站公开_{}.txt", n.id.trim_end_matches("-result"))),
                format!("{}\n{}\n{}", n.title, n.published_on, n.body),
            )?;
        }
    }
    let duties = notices::duties(store, super::CODE).await?;
    let register = notices::render_duties(&duties, today);
    out!("{register}");
    std::fs::write(ctx.out.join("公示期限台账.txt"), &register)?;

    // Every treasury message as exchanged, the bank results, the ledger.
    let msg_dir = ctx.out.join("报文");
    let mut n_msgs = 0;
    let mut county_of = HashMap::new();
    // The results listing written as it is produced (a province-scale one is hundreds of MB).
    let results_path = ctx.out.join("发放结果.txt");
    let mut results = std::io::BufWriter::new(
        std::fs::File::create(&results_path)
            .with_context(|| format!("无法写入 {}", results_path.display()))?,
    );
    for b in &batches {
        n_msgs += reports::write_messages_of(store, &msg_dir.join(&b.order_no), &b.order_no)
            .await?
            .len();
        writeln!(results, "批次{} {} {}", b.id, b.order_no, b.project_name)?;
        reports::write_results(store, ctx.province, b, &mut |part| {
            results.write_all(part.as_bytes())?;
            Ok(())
        })
        .await?;
        county_of.insert(b.id, counties.get(&b.region).cloned().unwrap_or_default());
    }
    results.flush()?;
    drop(results);
    let ids: Vec<i64> = batches.iter().map(|b| b.id).collect();
    let entries = store.hlj_ledger(&ids).await?;
    std::fs::write(
        ctx.out.join("资金台账.txt"),
        reports::render_ledger(&entries, &county_of),
    )?;
    outln!(
        "报文 treasury messages: {} 份（GB18030 XML，原样留存）→ {}",
        n_msgs,
        msg_dir.display()
    );

    // Checks a supervisor would make.
    let (sum, unbalanced) = store.ledger_check().await?;
    let unit_accounts = entries
        .iter()
        .flat_map(|e| e.postings.iter())
        .filter(|p| p.0 == AccountKind::ZeroBalance)
        .count();
    let held: ykt_kernel::Fen = entries
        .iter()
        .flat_map(|e| e.postings.iter())
        .filter(|p| p.0 == AccountKind::AgentBank)
        .map(|p| p.2)
        .sum();
    outln!(
        "资金台账 ledger: 合计{}元（应为0），不平分录{}笔，单位账户过渡{}笔，代理银行待结算余额{}元 → {}",
        sum,
        unbalanced,
        unit_accounts,
        held,
        if sum.is_zero() && unbalanced == 0 && unit_accounts == 0 && held.is_zero() {
            "资金直达社保卡，台账平衡"
        } else {
            "台账异常"
        }
    );
    for b in &batches {
        let b = h.batch(b.id).await?;
        let t = store.tally(b.id).await?;
        outln!(
            "  批次{} {} {} {}：到账{}笔{}元，退回{}笔{}元 — {}",
            b.id,
            counties.get(&b.region).cloned().unwrap_or_default(),
            b.project_name,
            b.period,
            t.credited.count,
            t.credited.amount,
            t.refunded.count,
            t.refunded.amount,
            b.state.label_zh()
        );
    }

    let k = reports::kpis(store, ctx.province, today).await?;
    let (xlsx, json) = reports::write_kpis(&ctx.out, &k)?;
    out!("{}", reports::render_kpis(&k));
    outln!("监管指标 KPIs: {} , {}", xlsx.display(), json.display());
    outln!("公示 notices: {}", bulletin_dir.display());
    Ok(())
}
