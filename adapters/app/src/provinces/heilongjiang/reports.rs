//! Heilongjiang's reports and renderings:
//!
//! - the six supervision indicators of 黑财监〔2023〕1号 三 by region and by lead unit, with
//!   cross-bank payments per agent bank (xlsx and JSON);
//! - the county policy list (塔河县方案(四)) as xlsx;
//! - the clearing statement of a batch against its paying account (for grain-risk-fund
//!   projects the special account, 黑财监〔2021〕30号 二(三)四);
//! - human-readable renderings (messages masked, bank results, ledger, trace) for the CLI, the
//!   demo and the snapshot tests.
//!
//! Rates are exact: basis points from integers, rounded half up, printed as `97.50%`.

use super::notices::county_name;
use anyhow::Context;
use chrono::NaiveDate;
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, FormatAlign, Workbook};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;
use std::path::Path;
use ykt_files::Cell;
use ykt_http::heilongjiang::xml::{self as hxml, Node};
use ykt_kernel::batch::LineState;
use ykt_kernel::catalog::{FundingChannel, PaymentBasis};
use ykt_kernel::ledger::AccountKind;
use ykt_kernel::mask::MaskPolicy;
use ykt_kernel::province::Province;
use ykt_kernel::{Fen, RegionCode};
use ykt_province_heilongjiang as hlj;
use ykt_store::Store;
use ykt_store::heilongjiang::{LedgerRow, MessageRow};
use ykt_store::payments::BatchRow;

/// `num / den` as a percentage with two decimals, rounded half up; `None` when `den` is 0.
pub fn pct(num: u64, den: u64) -> Option<String> {
    if den == 0 {
        return None;
    }
    let bp = (u128::from(num) * 20_000 + u128::from(den)) / (2 * u128::from(den));
    Some(format!("{}.{:02}%", bp / 100, bp % 100))
}

/// The six indicators for one group (a region, a lead unit, or all).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Kpi {
    /// Region code or lead unit.
    pub key: String,
    pub name: String,
    /// 补贴发放项目数量: projects with at least one line credited.
    pub projects_paid: u64,
    /// 发放人（户）次: lines credited (persons for person-based projects, households for
    /// household-based ones).
    pub person_times: u64,
    pub persons: u64,
    pub households: u64,
    /// 发放金额 (元).
    pub amount_paid: String,
    pub amount_paid_fen: i64,
    /// Lines sent to the bank at least once.
    pub lines_sent: u64,
    /// 发放成功率 = credited / sent.
    pub success_rate: Option<String>,
    /// Credited lines whose account is the beneficiary's social security card account.
    pub paid_to_card: u64,
    /// 社会保障卡发放占比 = paid_to_card / credited.
    pub card_share: Option<String>,
    /// Roster lines matched to a card (accepted lines, and lines refused for an inactive
    /// financial account), per person-time.
    pub cards_matched: u64,
    pub cards_activated: u64,
    /// 社会保障卡激活率 = activated / matched.
    pub activation_rate: Option<String>,
    #[serde(skip)]
    projects: BTreeSet<String>,
    #[serde(skip)]
    amount: Fen,
}

impl Kpi {
    fn finish(mut self) -> Kpi {
        self.projects_paid = self.projects.len() as u64;
        self.amount_paid = self.amount.to_string();
        self.amount_paid_fen = self.amount.0;
        self.success_rate = pct(self.person_times, self.lines_sent);
        self.card_share = pct(self.paid_to_card, self.person_times);
        self.activation_rate = pct(self.cards_activated, self.cards_matched);
        self
    }
}

/// Cross-bank payments of an agent bank to the cards of one issuing bank.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CrossBank {
    pub agent_bank: String,
    pub card_bank: String,
    pub credited: u64,
    pub cross_bank: u64,
    /// What the beneficiaries received (元): always the full amount.
    pub amount: String,
    /// Fees borne by the agent bank (元).
    pub fees_borne_by_agent_bank: String,
    #[serde(skip)]
    amount_fen: Fen,
    #[serde(skip)]
    fees_fen: Fen,
}

/// The supervision report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KpiReport {
    pub province: String,
    pub as_of: String,
    pub basis: &'static str,
    pub indicators: Vec<(&'static str, &'static str)>,
    pub definitions: Vec<&'static str>,
    pub total: Kpi,
    pub by_region: Vec<Kpi>,
    pub by_lead_unit: Vec<Kpi>,
    pub cross_bank: Vec<CrossBank>,
}

const DEFINITIONS: &[&str] = &[
    "补贴发放项目数量：有到账明细的补贴项目数",
    "发放人（户）次：到账明细笔数；按人发放项目计人次，按户发放项目计户次",
    "发放金额：到账金额（受益人实收全额，跨行手续费由代理银行承担）",
    "发放成功率：到账笔数 ÷ 已发送代理银行的明细笔数（更正后重新支付成功计为成功）",
    "社会保障卡发放占比：到账至受益人社会保障卡金融账户（与社保卡信息一致）的笔数 ÷ 到账笔数",
    "社会保障卡激活率：已激活的社会保障卡人次 ÷ 与社保卡信息比对到卡的人次（入批明细与因“未激活”未通过的清册行）；未通过行按身份证号码地址码归属区县",
];

/// Compute the six indicators of the province's batches.
pub async fn kpis(
    store: &Store,
    province: &dyn Province,
    as_of: NaiveDate,
) -> anyhow::Result<KpiReport> {
    let code = province.code();
    let catalog = province.catalog();
    let lines = store.hlj_kpi_lines(code).await?;
    let inactive = store.hlj_inactive_cards(code).await?;
    let mut total = Kpi {
        key: hlj::REGION_PREFIX.to_owned(),
        name: province.name().to_owned(),
        ..Kpi::default()
    };
    let mut by_region: BTreeMap<String, Kpi> = BTreeMap::new();
    let mut by_unit: BTreeMap<String, Kpi> = BTreeMap::new();
    let lead = |project: &str| {
        catalog
            .find(project)
            .map(|p| p.lead_unit.clone())
            .unwrap_or_else(|| "（目录外项目）".into())
    };
    for l in &lines {
        let household = catalog
            .find(&l.project)
            .is_some_and(|p| p.basis == PaymentBasis::Household);
        let unit = lead(&l.project);
        let n = l.lines;
        for k in [
            &mut total,
            by_region.entry(l.region.clone()).or_default(),
            by_unit.entry(unit.clone()).or_default(),
        ] {
            k.cards_matched += n;
            k.cards_activated += n;
            if l.sent {
                k.lines_sent += n;
            }
            if l.state == LineState::Credited {
                k.person_times += n;
                if household {
                    k.households += n;
                } else {
                    k.persons += n;
                }
                k.amount += l.amount;
                k.projects.insert(l.project.clone());
                if l.on_card == Some(true) {
                    k.paid_to_card += n;
                }
            }
        }
    }
    // Counties known to the store, for attributing refused lines.
    let mut counties: BTreeSet<String> = by_region.keys().cloned().collect();
    for r in store.all_regions().await? {
        if r.code.level() == ykt_kernel::RegionLevel::County {
            counties.insert(r.code.full());
        }
    }
    for c in &inactive {
        let scope = RegionCode::parse(&c.scope).ok();
        let from_id = c
            .id_masked
            .get(..6)
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
            .map(|p| format!("{p:0<12}"))
            .filter(|full| counties.contains(full))
            .filter(|full| {
                scope
                    .as_ref()
                    .is_none_or(|s| RegionCode::parse(full).is_ok_and(|f| s.contains(&f)))
            });
        let region = from_id
            .or_else(|| scope.as_ref().and_then(|s| s.county()).map(|c| c.full()))
            .unwrap_or_default();
        for k in [
            &mut total,
            by_region.entry(region).or_default(),
            by_unit.entry(lead(&c.project)).or_default(),
        ] {
            k.cards_matched += 1;
        }
    }
    let mut regions = Vec::new();
    for (code, mut k) in by_region {
        k.name = if code.is_empty() {
            "未能归属区县".into()
        } else {
            county_name(store, &code).await?
        };
        k.key = code;
        regions.push(k.finish());
    }
    let units = by_unit
        .into_iter()
        .map(|(u, mut k)| {
            k.key = u.clone();
            k.name = u;
            k.finish()
        })
        .collect();
    let cross = store.hlj_cross_bank(code).await?;
    Ok(KpiReport {
        province: code.to_owned(),
        as_of: as_of.to_string(),
        basis: "黑财监〔2023〕1号 三：补贴发放项目数量、发放人（户）次、发放金额、发放成功率、社会保障卡发放占比、社会保障卡激活率",
        indicators: hlj::INDICATORS.to_vec(),
        definitions: DEFINITIONS.to_vec(),
        total: total.finish(),
        by_region: regions,
        by_lead_unit: units,
        cross_bank: cross
            .into_iter()
            .map(|(a, c, n, x, paid, fee)| CrossBank {
                agent_bank: a,
                card_bank: c,
                credited: n,
                cross_bank: x,
                amount: paid.to_string(),
                fees_borne_by_agent_bank: fee.to_string(),
                amount_fen: paid,
                fees_fen: fee,
            })
            .collect(),
    })
}

const KPI_HEADERS: [&str; 14] = [
    "区划/单位",
    "名称",
    "补贴发放项目数量",
    "发放人（户）次",
    "其中人次",
    "其中户次",
    "发放金额（元）",
    "已发送明细笔数",
    "发放成功率",
    "到社保卡笔数",
    "社会保障卡发放占比",
    "比对到卡人次",
    "已激活人次",
    "社会保障卡激活率",
];

fn kpi_cells(k: &Kpi) -> Vec<Cell> {
    let n = |v: u64| Cell::Int(i64::try_from(v).unwrap_or(i64::MAX));
    let r = |v: &Option<String>| Cell::Text(v.clone().unwrap_or_else(|| "-".into()));
    vec![
        Cell::Text(k.key.clone()),
        Cell::Text(k.name.clone()),
        n(k.projects_paid),
        n(k.person_times),
        n(k.persons),
        n(k.households),
        Cell::Money(Fen(k.amount_paid_fen)),
        n(k.lines_sent),
        r(&k.success_rate),
        n(k.paid_to_card),
        r(&k.card_share),
        n(k.cards_matched),
        n(k.cards_activated),
        r(&k.activation_rate),
    ]
}

/// A sheet of a workbook.
pub struct Sheet<'a> {
    pub name: &'a str,
    pub title: String,
    pub headers: &'a [&'a str],
    pub rows: Vec<Vec<Cell>>,
}

/// Write several sheets into one xlsx (text neutralised against formula injection, money as
/// numbers with two decimals, a fixed creation time so the same content gives the same file).
pub fn write_workbook(path: &Path, sheets: &[Sheet<'_>]) -> anyhow::Result<()> {
    let mut wb = Workbook::new();
    let created = ExcelDateTime::from_ymd(2000, 1, 1).context("xlsx 日期")?;
    let mut props = DocProperties::new().set_creation_datetime(&created);
    if let Some(s) = sheets.first() {
        props = props.set_title(s.title.as_str());
    }
    wb.set_properties(&props);
    let bold = Format::new().set_bold();
    let title_fmt = Format::new()
        .set_bold()
        .set_font_size(14)
        .set_align(FormatAlign::Center);
    let money = Format::new().set_num_format("0.00");
    for s in sheets {
        let ws = wb.add_worksheet();
        ws.set_name(s.name)?;
        let last = u16::try_from(s.headers.len().saturating_sub(1)).unwrap_or(0);
        ws.merge_range(
            0,
            0,
            0,
            last.max(1),
            &ykt_files::neutralise(&s.title),
            &title_fmt,
        )?;
        let mut widths: Vec<usize> = s.headers.iter().map(|h| h.chars().count() * 2).collect();
        for (c, h) in s.headers.iter().enumerate() {
            ws.write_string_with_format(1, c as u16, *h, &bold)?;
        }
        for (r, row) in s.rows.iter().enumerate() {
            let r = u32::try_from(r + 2).context("行数超过 Excel 上限")?;
            for (c, cell) in row.iter().enumerate() {
                let col = c as u16;
                let w = match cell {
                    Cell::Text(t) => {
                        let t = ykt_files::neutralise(t);
                        ws.write_string(r, col, t.as_ref())?;
                        t.chars()
                            .map(|ch| if (ch as u32) < 0x1100 { 1 } else { 2 })
                            .sum()
                    }
                    Cell::Int(i) => {
                        ws.write_number(r, col, *i as f64)?;
                        i.to_string().len()
                    }
                    Cell::Money(f) => {
                        ws.write_number_with_format(r, col, f.0 as f64 / 100.0, &money)?;
                        f.to_string().len()
                    }
                };
                if let Some(x) = widths.get_mut(c) {
                    *x = (*x).max(w);
                }
            }
        }
        for (c, w) in widths.iter().enumerate() {
            ws.set_column_width(c as u16, (*w as f64 + 2.0).min(60.0))?;
        }
        ws.set_freeze_panes(2, 0)?;
    }
    wb.save(path)
        .with_context(|| format!("无法写入 {}", path.display()))?;
    Ok(())
}

/// Write the supervision report as `监管指标.xlsx` and `监管指标.json` in `dir`.
pub fn write_kpis(
    dir: &Path,
    r: &KpiReport,
) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("无法创建目录 {}", dir.display()))?;
    let mut by_region: Vec<Vec<Cell>> = r.by_region.iter().map(kpi_cells).collect();
    by_region.push(kpi_cells(&r.total));
    let mut by_unit: Vec<Vec<Cell>> = r.by_lead_unit.iter().map(kpi_cells).collect();
    by_unit.push(kpi_cells(&r.total));
    let cross = r
        .cross_bank
        .iter()
        .map(|c| {
            vec![
                Cell::Text(c.agent_bank.clone()),
                Cell::Text(c.card_bank.clone()),
                Cell::Int(c.credited as i64),
                Cell::Int(c.cross_bank as i64),
                Cell::Money(c.amount_fen),
                Cell::Money(c.fees_fen),
            ]
        })
        .collect();
    let defs = r
        .definitions
        .iter()
        .map(|d| vec![Cell::Text((*d).to_owned())])
        .collect();
    let xlsx = dir.join("监管指标.xlsx");
    write_workbook(
        &xlsx,
        &[
            Sheet {
                name: "按区划",
                title: format!(
                    "惠民惠农财政补贴资金“一卡通”发放监管指标（按区划，截至{}）",
                    r.as_of
                ),
                headers: &KPI_HEADERS,
                rows: by_region,
            },
            Sheet {
                name: "按牵头单位",
                title: format!(
                    "惠民惠农财政补贴资金“一卡通”发放监管指标（按省级牵头单位，截至{}）",
                    r.as_of
                ),
                headers: &KPI_HEADERS,
                rows: by_unit,
            },
            Sheet {
                name: "跨行发放",
                title: "跨行发放统计（跨行转账手续费由国库集中支付代理银行承担）".into(),
                headers: &[
                    "代理银行",
                    "发卡银行",
                    "到账笔数",
                    "其中跨行笔数",
                    "受益人实收金额（元）",
                    "代理银行承担手续费（元）",
                ],
                rows: cross,
            },
            Sheet {
                name: "指标口径",
                title: r.basis.to_owned(),
                headers: &["口径说明"],
                rows: defs,
            },
        ],
    )?;
    let json = dir.join("监管指标.json");
    std::fs::write(&json, serde_json::to_string_pretty(r)?)
        .with_context(|| format!("无法写入 {}", json.display()))?;
    Ok((xlsx, json))
}

/// The report as text.
pub fn render_kpis(r: &KpiReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "监管指标（{}，截至{}）", r.basis, r.as_of);
    let line = |o: &mut String, k: &Kpi| {
        let label = if k.key == k.name {
            k.name.clone()
        } else {
            format!("{} {}", k.key, k.name)
        };
        let _ = writeln!(
            o,
            "  {} | 项目{} | 人(户)次{}（人{} 户{}） | 金额{}元 | 成功率{} ({}/{}) | 社保卡占比{} | 激活率{} ({}/{})",
            label,
            k.projects_paid,
            k.person_times,
            k.persons,
            k.households,
            k.amount_paid,
            k.success_rate.as_deref().unwrap_or("-"),
            k.person_times,
            k.lines_sent,
            k.card_share.as_deref().unwrap_or("-"),
            k.activation_rate.as_deref().unwrap_or("-"),
            k.cards_activated,
            k.cards_matched
        );
    };
    let _ = writeln!(o, "按区划:");
    for k in &r.by_region {
        line(&mut o, k);
    }
    let _ = writeln!(o, "按省级牵头单位:");
    for k in &r.by_lead_unit {
        line(&mut o, k);
    }
    let _ = writeln!(o, "合计:");
    line(&mut o, &r.total);
    let _ = writeln!(o, "跨行发放（手续费由代理银行承担，受益人实收全额）:");
    for c in &r.cross_bank {
        let _ = writeln!(
            o,
            "  {} → {}：到账{}笔，其中跨行{}笔，实收{}元，代理银行承担手续费{}元",
            c.agent_bank,
            c.card_bank,
            c.credited,
            c.cross_bank,
            c.amount,
            c.fees_borne_by_agent_bank
        );
    }
    o
}

/// The county policy list (塔河县方案(四): "清单应包括财政补贴资金名称、相关政策依据、补贴对象、
/// 补贴标准、补贴条件、主管部门等信息") as xlsx.
pub fn write_policy_list(
    path: &Path,
    province: &dyn Province,
    county: &str,
    year: i32,
) -> anyhow::Result<u64> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("无法创建目录 {}", dir.display()))?;
    }
    let rows = province
        .catalog()
        .projects()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            vec![
                Cell::Int(i as i64 + 1),
                Cell::Text(p.name.clone()),
                Cell::Text(p.policy_basis.clone()),
                Cell::Text(p.target.clone()),
                Cell::Text(p.standard_text.clone()),
                Cell::Text(p.conditions.clone()),
                Cell::Text(hlj::county_department(p, county)),
                Cell::Text(p.frequency.label_zh().into()),
                Cell::Text(p.funding.label_zh().into()),
            ]
        })
        .collect::<Vec<_>>();
    let n = rows.len() as u64;
    write_workbook(
        path,
        &[Sheet {
            name: "补贴政策清单",
            title: format!("{county}惠民惠农财政补贴政策清单（{year}年）"),
            headers: &[
                "序号",
                "财政补贴资金名称",
                "相关政策依据",
                "补贴对象",
                "补贴标准",
                "补贴条件",
                "主管部门",
                "发放频次",
                "资金渠道",
            ],
            rows,
        }],
    )?;
    Ok(n)
}

/// The clearing statement of a batch: every ledger hop of its money, the balance of each
/// account, and whether the paying account is cleared (funded = paid to cards + refunded).
#[derive(Debug, Clone, Serialize)]
pub struct Clearing {
    pub batch_id: i64,
    pub order_no: String,
    pub county: String,
    pub project: String,
    pub period: String,
    pub channel: String,
    /// The account cleared against: `XX县粮食风险基金专户` or the treasury single account.
    pub account: String,
    pub vouchers: Vec<String>,
    pub entries: Vec<ClearingEntry>,
    pub balances: Vec<(String, String)>,
    #[serde(skip)]
    balances_fen: Vec<(String, Fen)>,
    pub funded: String,
    pub paid_to_cards: String,
    pub refunded: String,
    pub agent_bank_held: String,
    pub cleared: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClearingEntry {
    pub seq: usize,
    pub kind: String,
    pub memo: String,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub amount: String,
    #[serde(skip)]
    amount_fen: Fen,
}

fn account_label(k: AccountKind, owner: &str, county: &str) -> String {
    match k {
        AccountKind::GrainRiskFund => hlj::grain_account_name(county),
        AccountKind::Treasury => format!("{county}国库单一账户"),
        AccountKind::Adbc => format!("{county}农业发展银行粮食风险基金账户"),
        AccountKind::AgentBank => format!("代理银行（{owner}）待结算财政款项"),
        AccountKind::Beneficiaries => "受益人社会保障卡账户".into(),
        AccountKind::ZeroBalance => format!("单位零余额账户（{owner}）"),
    }
}

/// Build the clearing statement of batch `b`.
pub async fn clearing(store: &Store, b: &BatchRow) -> anyhow::Result<Clearing> {
    let county = county_name(store, &b.region).await?;
    let grain = b.funding == "grain_risk_fund";
    let entries = store.hlj_ledger(&[b.id]).await?;
    let mut balances: BTreeMap<AccountKind, Fen> = BTreeMap::new();
    let mut rows = Vec::new();
    let (mut funded, mut paid, mut refunded) = (Fen(0), Fen(0), Fen(0));
    for (i, e) in entries.iter().enumerate() {
        for (k, _, a) in &e.postings {
            *balances.entry(*k).or_default() += *a;
        }
        let from = e.postings.iter().find(|p| p.2.is_negative());
        let to = e.postings.iter().find(|p| p.2.is_positive());
        let (Some(from), Some(to)) = (from, to) else {
            continue;
        };
        if to.0 == AccountKind::AgentBank && e.kind == "funding" {
            funded += to.2;
        }
        if to.0 == AccountKind::Beneficiaries {
            paid += to.2;
        }
        if from.0 == AccountKind::AgentBank && e.kind == "refund" {
            refunded += to.2;
        }
        rows.push(ClearingEntry {
            seq: i + 1,
            kind: entry_kind_label(&e.kind),
            memo: e.memo.clone(),
            subject: e.subject.clone().unwrap_or_default(),
            from: account_label(from.0, &from.1, &county),
            to: account_label(to.0, &to.1, &county),
            amount: to.2.to_string(),
            amount_fen: to.2,
        });
    }
    let held = balances
        .get(&AccountKind::AgentBank)
        .copied()
        .unwrap_or_default();
    let special = balances
        .get(&AccountKind::GrainRiskFund)
        .copied()
        .unwrap_or_default();
    let vouchers = store.hlj_sent_vouchers(&b.order_no).await?;
    Ok(Clearing {
        batch_id: b.id,
        order_no: b.order_no.clone(),
        county: county.clone(),
        project: b.project_name.clone(),
        period: b.period.clone(),
        channel: if grain {
            FundingChannel::GrainRiskFund.label_zh().into()
        } else {
            FundingChannel::Treasury.label_zh().into()
        },
        account: if grain {
            hlj::grain_account_name(&county)
        } else {
            format!("{county}国库单一账户")
        },
        vouchers,
        entries: rows,
        balances: balances
            .iter()
            .map(|(k, v)| (k.label_zh().to_owned(), v.to_string()))
            .collect(),
        balances_fen: balances
            .iter()
            .map(|(k, v)| (k.label_zh().to_owned(), *v))
            .collect(),
        funded: funded.to_string(),
        paid_to_cards: paid.to_string(),
        refunded: refunded.to_string(),
        agent_bank_held: held.to_string(),
        cleared: held.is_zero() && special.is_zero() && funded == paid + refunded,
    })
}

fn entry_kind_label(k: &str) -> String {
    match k {
        "funding" => "拨付/清算",
        "payment" => "打卡发放",
        "refund" => "原渠道退回",
        "clearing" => "清算",
        "recovery" => "追回退库",
        other => other,
    }
    .to_owned()
}

/// The statement as text.
pub fn render_clearing(c: &Clearing) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}清算单 — 批次{} {} {} {}（{}）",
        c.account, c.batch_id, c.order_no, c.project, c.period, c.channel
    );
    let _ = writeln!(o, "  支付凭证: {}", c.vouchers.join(", "));
    for e in &c.entries {
        let _ = writeln!(
            o,
            "  {:>2}. {} {} → {} {}元 {}{}",
            e.seq,
            e.kind,
            e.from,
            e.to,
            e.amount,
            e.memo,
            if e.subject.is_empty() {
                String::new()
            } else {
                format!(" [科目{}]", e.subject)
            }
        );
    }
    let _ = writeln!(o, "  余额:");
    for (k, v) in &c.balances {
        let _ = writeln!(o, "    {k} {v}");
    }
    let _ = writeln!(
        o,
        "  拨付代理银行{}元 = 到卡{}元 + 退回{}元；代理银行待结算余额{}元 → {}",
        c.funded,
        c.paid_to_cards,
        c.refunded,
        c.agent_bank_held,
        if c.cleared {
            "清算完毕"
        } else {
            "尚未清算完毕"
        }
    );
    o
}

/// Write the statement as xlsx and JSON in `dir`.
pub fn write_clearing(dir: &Path, c: &Clearing) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("无法创建目录 {}", dir.display()))?;
    let base = format!("清算单_{}", c.order_no);
    let mut rows: Vec<Vec<Cell>> = c
        .entries
        .iter()
        .map(|e| {
            vec![
                Cell::Int(e.seq as i64),
                Cell::Text(e.kind.clone()),
                Cell::Text(e.memo.clone()),
                Cell::Text(e.subject.clone()),
                Cell::Text(e.from.clone()),
                Cell::Text(e.to.clone()),
                Cell::Money(e.amount_fen),
            ]
        })
        .collect();
    for (k, v) in &c.balances_fen {
        rows.push(vec![
            Cell::Text(String::new()),
            Cell::Text("余额".into()),
            Cell::Text(k.clone()),
            Cell::Text(String::new()),
            Cell::Text(String::new()),
            Cell::Text(String::new()),
            Cell::Money(*v),
        ]);
    }
    rows.push(vec![
        Cell::Text(String::new()),
        Cell::Text("结论".into()),
        Cell::Text(format!(
            "拨付{}元 = 到卡{}元 + 退回{}元；{}",
            c.funded,
            c.paid_to_cards,
            c.refunded,
            if c.cleared {
                "清算完毕"
            } else {
                "尚未清算完毕"
            }
        )),
        Cell::Text(String::new()),
        Cell::Text(String::new()),
        Cell::Text(String::new()),
        Cell::Text(String::new()),
    ]);
    let xlsx = dir.join(format!("{base}.xlsx"));
    write_workbook(
        &xlsx,
        &[Sheet {
            name: "清算单",
            title: format!(
                "{}清算单（{} {} {}，凭证{}）",
                c.account,
                c.project,
                c.period,
                c.order_no,
                c.vouchers.join("、")
            ),
            headers: &[
                "序号",
                "业务",
                "摘要",
                "科目",
                "付款账户",
                "收款账户",
                "金额（元）",
            ],
            rows,
        }],
    )?;
    std::fs::write(
        dir.join(format!("{base}.json")),
        serde_json::to_string_pretty(c)?,
    )?;
    Ok(xlsx)
}

/// Mask the personal data of a message for display (payee names and accounts).
pub fn mask_node(n: &mut Node, mask: &MaskPolicy) {
    match n.name.as_str() {
        "PayeeAcctNo" => n.text = mask.account(&n.text),
        "PayeeAcctName" => n.text = mask.name(&n.text),
        _ => {}
    }
    for c in &mut n.children {
        mask_node(c, mask);
    }
}

fn pretty(n: &Node, depth: usize, o: &mut String) {
    let pad = "  ".repeat(depth);
    let attrs: String = n
        .attrs
        .iter()
        .map(|(k, v)| format!(" {k}=\"{v}\""))
        .collect();
    if n.children.is_empty() {
        if n.text.is_empty() {
            let _ = writeln!(o, "{pad}<{}{attrs}/>", n.name);
        } else {
            let _ = writeln!(o, "{pad}<{}{attrs}>{}</{}>", n.name, n.text, n.name);
        }
        return;
    }
    let _ = writeln!(o, "{pad}<{}{attrs}>", n.name);
    for c in &n.children {
        pretty(c, depth + 1, o);
    }
    let _ = writeln!(o, "{pad}</{}>", n.name);
}

/// One archived message, decoded and masked.
pub fn render_message(m: &MessageRow, mask: &MaskPolicy) -> String {
    let mut o = format!(
        "[{}] {} {} {} {}{}\n",
        m.on_date,
        if m.direction == "out" {
            "平台→预算系统"
        } else {
            "预算系统→平台"
        },
        m.request,
        m.kind,
        if m.voucher_no.is_empty() {
            String::new()
        } else {
            format!("凭证{} ", m.voucher_no)
        },
        m.status.map(|s| format!("HTTP {s}")).unwrap_or_default()
    );
    match hxml::parse(&m.body) {
        Ok(mut n) => {
            mask_node(&mut n, mask);
            pretty(&n, 1, &mut o);
        }
        Err(e) => {
            let _ = writeln!(o, "  （无法解析：{e}）");
        }
    }
    o
}

fn message_file(dir: &Path, i: usize, m: &MessageRow) -> anyhow::Result<std::path::PathBuf> {
    let name = format!(
        "{:03}_{}_{}{}.xml",
        i + 1,
        if m.direction == "out" { "发" } else { "收" },
        m.kind,
        if m.voucher_no.is_empty() {
            String::new()
        } else {
            format!("_{}", m.voucher_no)
        }
    );
    let p = dir.join(name);
    std::fs::write(&p, &m.body).with_context(|| format!("无法写入 {}", p.display()))?;
    Ok(p)
}

/// Write every archived message of a batch as exchanged (GB18030 XML; vouchers carry full
/// payee accounts: they are bank-facing files). Returns the paths.
pub fn write_messages(dir: &Path, msgs: &[MessageRow]) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("无法创建目录 {}", dir.display()))?;
    msgs.iter()
        .enumerate()
        .map(|(i, m)| message_file(dir, i, m))
        .collect()
}

/// [`write_messages`] for an order's archived messages, read one at a time (a province-scale
/// order's returns are tens of MB each, and it has several).
pub async fn write_messages_of(
    store: &Store,
    dir: &Path,
    order_no: &str,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("无法创建目录 {}", dir.display()))?;
    let mut out = Vec::new();
    for (i, id) in store
        .hlj_message_ids(order_no)
        .await?
        .into_iter()
        .enumerate()
    {
        if let Some(m) = store.hlj_message(id).await? {
            out.push(message_file(dir, i, &m)?);
        }
    }
    Ok(out)
}

/// Every line of a batch with every attempt (accounts masked), the anomalies recorded and
/// the agent bank's returns (cross-bank, fee borne).
pub async fn render_results(
    store: &Store,
    province: &dyn Province,
    b: &BatchRow,
) -> anyhow::Result<String> {
    let mut all = String::new();
    write_results(store, province, b, &mut |part| {
        all.push_str(part);
        Ok(())
    })
    .await?;
    Ok(all)
}

/// How many lines [`write_results`] reads (decrypted) at a time.
const RESULTS_PAGE: usize = 5_000;

/// [`render_results`] handed to `sink` a page of lines at a time (a province-scale batch's
/// listing is written as it is read, never held whole, nor its lines and attempts).
pub async fn write_results(
    store: &Store,
    province: &dyn Province,
    b: &BatchRow,
    sink: &mut (dyn FnMut(&str) -> anyhow::Result<()> + Send),
) -> anyhow::Result<()> {
    let mask = province.mask_policy();
    let ids = store.line_ids(b.id).await?;
    for page in ids.chunks(RESULTS_PAGE) {
        let mut o = String::new();
        // The page's returns only (a province-scale batch's were some 50 bytes a return
        // in a map of them all).
        let returns: HashMap<(i64, i64), (bool, Fen)> = store
            .hlj_return_fees_of(b.id, page)
            .await?
            .into_iter()
            .map(|(l, a, cross, fee)| ((l, a), (cross, fee)))
            .collect();
        let mut attempts: HashMap<i64, Vec<ykt_store::cycle::AttemptRow>> = HashMap::new();
        for (line, a) in store.line_attempts_of(b.id, page).await? {
            attempts.entry(line).or_default().push(a);
        }
        for l in store.lines_by_id(b.id, page).await? {
            let _ = writeln!(
                o,
                "  第{}行 {} {} {}元 {}{}",
                l.row_no,
                mask.name(&l.name),
                l.bank,
                l.amount,
                l.state.label_zh(),
                l.fail_reason
                    .as_deref()
                    .and_then(ykt_kernel::ports::FailureReason::parse)
                    .map(|r| format!("（{}）", r.label_zh()))
                    .unwrap_or_default()
            );
            for a in attempts.remove(&l.id).unwrap_or_default() {
                let (cross, fee) = returns.get(&(l.id, a.attempt)).copied().unwrap_or_default();
                let outcome = match a.outcome.as_deref() {
                    Some("credited") => "到账".to_owned(),
                    Some(_) => format!(
                        "失败（{}）",
                        a.reason
                            .as_deref()
                            .and_then(ykt_kernel::ports::FailureReason::parse)
                            .map(|r| r.label_zh())
                            .unwrap_or("原因未说明")
                    ),
                    None => "在途".to_owned(),
                };
                let _ = writeln!(
                    o,
                    "      第{}次 {} {}元 {}{}{}",
                    a.attempt,
                    a.account_masked,
                    a.amount,
                    outcome,
                    a.bank_date
                        .as_deref()
                        .map(|d| format!(" {d}"))
                        .unwrap_or_default(),
                    match (cross, fee.is_positive()) {
                        (true, true) => format!(" 跨行，手续费{fee}元由代理银行承担"),
                        (true, false) => " 跨行".to_owned(),
                        _ => String::new(),
                    }
                );
            }
        }
        sink(&o)?;
    }
    let mut o = String::new();
    let anomalies = store.anomalies(b.id).await?;
    if !anomalies.is_empty() {
        let _ = writeln!(o, "  异常回单（未改变任何数据）:");
        let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
        for a in anomalies {
            *by_kind.entry(a.kind).or_default() += 1;
        }
        for (k, n) in by_kind {
            let _ = writeln!(o, "    {k} {n}条");
        }
    }
    sink(&o)
}

/// The ledger entries of some batches.
pub fn render_ledger(entries: &[LedgerRow], county_of: &HashMap<i64, String>) -> String {
    let mut o = String::new();
    for e in entries {
        let county = e
            .batch_id
            .and_then(|b| county_of.get(&b))
            .cloned()
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  批次{} {} {}{}",
            e.batch_id
                .map(|b| b.to_string())
                .unwrap_or_else(|| "-".into()),
            entry_kind_label(&e.kind),
            e.memo,
            e.subject
                .as_deref()
                .map(|s| format!(" [科目{s}]"))
                .unwrap_or_default()
        );
        for (k, owner, a) in &e.postings {
            let _ = writeln!(
                o,
                "      {} {:>12}",
                account_label(*k, owner, &county),
                a.to_string()
            );
        }
    }
    o
}
