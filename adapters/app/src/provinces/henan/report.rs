//! Finance's reports (濮阳规程 第二十五条 "各级财政部门每月通过一卡通系统复核、汇总发放补贴资金各类报表，
//! 年终打印装订成册"): the monthly report (per order, per project, per bank: credited, failed
//! attempts, corrections, refunds, reconciliation) and the annual set (a cover with the
//! contents, the year's summary and the twelve monthly reports, one sheet each).
//!
//! A month's figures are the bank's value dates (results) and the business dates of
//! corrections and refunds in that month. Files: xlsx (spreadsheet safety rules of ykt-files:
//! text neutralised, money as numbers with two decimals) and GB18030 CSV.

use super::ops::project_of;
use crate::output::pad;
use anyhow::Context;
use chrono::{Datelike, NaiveDate};
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, FormatAlign, Workbook, Worksheet};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use ykt_files::Cell;
use ykt_files::export::neutralise;
use ykt_kernel::batch::Totals;
use ykt_kernel::province::Province;
use ykt_kernel::{Fen, RegionCode};
use ykt_store::Store;

/// One order's month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderMonth {
    pub order_no: String,
    pub project: String,
    pub project_name: String,
    pub region: String,
    pub region_name: String,
    pub bank: String,
    pub period: String,
    pub control: Totals,
    pub credited: Totals,
    pub failed: Totals,
    pub corrections: u64,
    pub refunded: Totals,
    pub state: String,
    pub reconciliation: String,
}

/// The monthly report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthlyReport {
    /// `YYYY-MM`
    pub month: String,
    pub orders: Vec<OrderMonth>,
}

impl MonthlyReport {
    /// Credited and refunded per project (code, name).
    pub fn by_project(&self) -> BTreeMap<(String, String), (Totals, Totals)> {
        let mut m: BTreeMap<(String, String), (Totals, Totals)> = BTreeMap::new();
        for o in &self.orders {
            let e = m
                .entry((o.project.clone(), o.project_name.clone()))
                .or_default();
            e.0 = e.0 + o.credited;
            e.1 = e.1 + o.refunded;
        }
        m
    }
    /// Credited and failed attempts per bank.
    pub fn by_bank(&self) -> BTreeMap<String, (Totals, Totals)> {
        let mut m: BTreeMap<String, (Totals, Totals)> = BTreeMap::new();
        for o in &self.orders {
            let e = m.entry(o.bank.clone()).or_default();
            e.0 = e.0 + o.credited;
            e.1 = e.1 + o.failed;
        }
        m
    }
    pub fn total(&self) -> (Totals, Totals, Totals) {
        let mut c = Totals::default();
        let mut f = Totals::default();
        let mut r = Totals::default();
        for o in &self.orders {
            c = c + o.credited;
            f = f + o.failed;
            r = r + o.refunded;
        }
        (c, f, r)
    }
}

/// First and last day of `YYYY-MM`.
pub fn month_range(month: &str) -> anyhow::Result<(NaiveDate, NaiveDate)> {
    let from = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .with_context(|| format!("月份「{month}」应为 YYYY-MM"))?;
    let next = if from.month() == 12 {
        NaiveDate::from_ymd_opt(from.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(from.year(), from.month() + 1, 1)
    }
    .context("月份无效")?;
    Ok((from, next.pred_opt().context("月份无效")?))
}

/// Compute the monthly report of `month` (`YYYY-MM`).
pub async fn monthly(
    store: &Store,
    province: &dyn Province,
    month: &str,
) -> anyhow::Result<MonthlyReport> {
    let (from, to) = month_range(month)?;
    let (f, t) = (from.to_string(), to.to_string());
    let mut orders = Vec::new();
    for o in store.henan_orders(None).await? {
        let Some(b) = store.batch(o.batch_id).await? else {
            continue;
        };
        let (credited, failed) = store.henan_result_totals(&o.order_no, &f, &t).await?;
        let events: Vec<_> = store
            .henan_line_events(Some(b.id))
            .await?
            .into_iter()
            .filter(|e| e.on_date >= f && e.on_date <= t)
            .collect();
        let corrections = events.iter().filter(|e| e.kind == "correction").count() as u64;
        let mut refunded = Totals::default();
        for e in events.iter().filter(|e| e.kind == "refund") {
            refunded.add(e.amount);
        }
        if credited.count == 0 && failed.count == 0 && corrections == 0 && refunded.count == 0 {
            continue;
        }
        let region_name = match RegionCode::parse(&b.region) {
            Ok(r) => store.region_name(&r).await?.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let handovers = store.henan_handovers(Some(&o.order_no)).await?;
        let reconciliation = match handovers.last() {
            None => "未交接".to_owned(),
            Some(h) => format!(
                "第{}次交接{}",
                h.seq,
                match h.state.as_str() {
                    "confirmed" => "已核对",
                    "disputed" => "有误已通知",
                    _ => "待核对",
                }
            ),
        };
        let project_name = project_of(store, province, &b.project)
            .await
            .map(|p| p.name)
            .unwrap_or_else(|| b.project_name.clone());
        orders.push(OrderMonth {
            order_no: o.order_no,
            project: b.project.clone(),
            project_name,
            region: b.region.clone(),
            region_name,
            bank: o.bank,
            period: b.period.clone(),
            control: b.control,
            credited,
            failed,
            corrections,
            refunded,
            state: b.state.label_zh().to_owned(),
            reconciliation,
        });
    }
    Ok(MonthlyReport {
        month: month.to_owned(),
        orders,
    })
}

/// The report as text.
pub fn render(r: &MonthlyReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "惠民惠农财政补贴资金“一卡通”发放月报 {}（第二十五条）",
        r.month
    );
    if r.orders.is_empty() {
        let _ = writeln!(s, "  本月无发放");
        return s;
    }
    let _ = writeln!(s, "一、发放明细（按发放单）");
    for o in &r.orders {
        let _ = writeln!(
            s,
            "  {} {} {}{} {} 属期{} 控制数{}笔{}元 | 本月入账{}笔{}元 失败{}次 更正{}笔 退回{}笔{}元 | {} {}",
            o.order_no,
            o.project_name,
            o.region_name,
            if o.region_name.is_empty() {
                &o.region
            } else {
                ""
            },
            o.bank,
            o.period,
            o.control.count,
            o.control.amount,
            o.credited.count,
            o.credited.amount,
            o.failed.count,
            o.corrections,
            o.refunded.count,
            o.refunded.amount,
            o.state,
            o.reconciliation
        );
    }
    let _ = writeln!(s, "二、按补贴项目汇总");
    for ((code, name), (c, rf)) in r.by_project() {
        let _ = writeln!(
            s,
            "  {} {} 入账{}笔 {}元 退回{}笔 {}元",
            pad(&code, 6),
            pad(&name, 30),
            c.count,
            c.amount,
            rf.count,
            rf.amount
        );
    }
    let _ = writeln!(s, "三、按代发银行汇总");
    for (bank, (c, f)) in r.by_bank() {
        let _ = writeln!(
            s,
            "  {} 入账{}笔 {}元 失败{}次 {}元",
            pad(&bank, 10),
            c.count,
            c.amount,
            f.count,
            f.amount
        );
    }
    let (c, f, rf) = r.total();
    let _ = writeln!(
        s,
        "合计：入账{}笔 {}元；失败{}次；退回{}笔 {}元",
        c.count, c.amount, f.count, rf.count, rf.amount
    );
    s
}

const HEADERS: [&str; 15] = [
    "发放单号",
    "补贴项目",
    "区划",
    "代发银行",
    "属期",
    "控制笔数",
    "控制金额",
    "本月入账笔数",
    "本月入账金额",
    "本月失败次数",
    "本月更正笔数",
    "本月退回笔数",
    "本月退回金额",
    "批次状态",
    "交易结果核对",
];

fn cells(o: &OrderMonth) -> Vec<Cell> {
    let n = |v: u64| Cell::Int(i64::try_from(v).unwrap_or(i64::MAX));
    vec![
        Cell::Text(o.order_no.clone()),
        Cell::Text(o.project_name.clone()),
        Cell::Text(if o.region_name.is_empty() {
            o.region.clone()
        } else {
            o.region_name.clone()
        }),
        Cell::Text(o.bank.clone()),
        Cell::Text(o.period.clone()),
        n(o.control.count),
        Cell::Money(o.control.amount),
        n(o.credited.count),
        Cell::Money(o.credited.amount),
        n(o.failed.count),
        n(o.corrections),
        n(o.refunded.count),
        Cell::Money(o.refunded.amount),
        Cell::Text(o.state.clone()),
        Cell::Text(o.reconciliation.clone()),
    ]
}

/// Write the monthly report: `月报-YYYY-MM.xlsx`, `.csv` (GB18030) and `.txt`.
pub fn write_monthly(r: &MonthlyReport, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("无法创建目录 {}", dir.display()))?;
    let base = format!("月报-{}", r.month);
    let xlsx = dir.join(format!("{base}.xlsx"));
    ykt_files::export::write_xlsx_table_titled(
        &xlsx,
        "发放月报",
        Some(&format!("惠民惠农财政补贴资金“一卡通”发放月报 {}", r.month)),
        &HEADERS,
        r.orders.iter().map(cells),
    )?;
    let csv = dir.join(format!("{base}.csv"));
    ykt_files::export::write_csv_gb18030_table(&csv, &HEADERS, r.orders.iter().map(cells))?;
    let txt = dir.join(format!("{base}.txt"));
    std::fs::write(&txt, render(r)).with_context(|| format!("无法写入 {}", txt.display()))?;
    Ok(vec![xlsx, csv, txt])
}

struct Sheet<'a> {
    bold: &'a Format,
    title: &'a Format,
    money: &'a Format,
}

impl Sheet<'_> {
    fn text(&self, ws: &mut Worksheet, r: u32, c: u16, s: &str) -> anyhow::Result<()> {
        ws.write_string(r, c, neutralise(s).as_ref())?;
        Ok(())
    }
    fn cell(&self, ws: &mut Worksheet, r: u32, c: u16, cell: &Cell) -> anyhow::Result<()> {
        match cell {
            Cell::Text(s) => self.text(ws, r, c, s)?,
            Cell::Int(i) => {
                ws.write_number(r, c, *i as f64)?;
            }
            Cell::Money(f) => {
                // Two decimals are exact for the integer 分 shown (xlsx stores numbers as
                // doubles; the sheet displays 0.00).
                ws.write_number_with_format(r, c, f.0 as f64 / 100.0, self.money)?;
            }
        }
        Ok(())
    }
    fn table(
        &self,
        ws: &mut Worksheet,
        title: &str,
        headers: &[&str],
        rows: &[Vec<Cell>],
    ) -> anyhow::Result<()> {
        ws.write_string_with_format(0, 0, neutralise(title).as_ref(), self.title)?;
        for (c, h) in headers.iter().enumerate() {
            ws.write_string_with_format(2, c as u16, *h, self.bold)?;
            ws.set_column_width(c as u16, 14)?;
        }
        for (i, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                self.cell(ws, 3 + i as u32, c as u16, cell)?;
            }
        }
        if rows.is_empty() {
            self.text(ws, 3, 0, "本月无发放")?;
        }
        Ok(())
    }
}

/// Write the annual set of `year` (`年度汇编-YYYY.xlsx`, `.txt`): a contents sheet, the year's
/// summary per project, and one sheet per month.
pub async fn write_annual(
    store: &Store,
    province: &dyn Province,
    year: i32,
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("无法创建目录 {}", dir.display()))?;
    let mut months = Vec::new();
    for m in 1..=12 {
        months.push(monthly(store, province, &format!("{year:04}-{m:02}")).await?);
    }
    let mut wb = Workbook::new();
    let fixed = ExcelDateTime::from_ymd(2000, 1, 1)?;
    wb.set_properties(
        &DocProperties::new()
            .set_title(format!(
                "惠民惠农财政补贴资金“一卡通”发放报表年度汇编 {year}"
            ))
            .set_creation_datetime(&fixed),
    );
    let bold = Format::new().set_bold();
    let title = Format::new()
        .set_bold()
        .set_font_size(14)
        .set_align(FormatAlign::Left);
    let money = Format::new().set_num_format("0.00");
    let sh = Sheet {
        bold: &bold,
        title: &title,
        money: &money,
    };
    let mut text = String::new();
    let _ = writeln!(
        text,
        "惠民惠农财政补贴资金“一卡通”发放报表年度汇编 {year}（第二十五条）"
    );

    // Contents.
    let ws = wb.add_worksheet();
    ws.set_name("目录")?;
    sh.text(
        ws,
        0,
        0,
        &format!("惠民惠农财政补贴资金“一卡通”发放报表年度汇编 {year}"),
    )?;
    ws.write_string_with_format(2, 0, "表", &bold)?;
    ws.write_string_with_format(2, 1, "内容", &bold)?;
    ws.write_string_with_format(2, 2, "入账笔数", &bold)?;
    ws.write_string_with_format(2, 3, "入账金额", &bold)?;
    ws.set_column_width(1, 40)?;
    sh.text(ws, 3, 0, "年度汇总")?;
    sh.text(ws, 3, 1, "按补贴项目汇总全年发放")?;
    let mut year_total = Totals::default();
    for (i, m) in months.iter().enumerate() {
        let (c, _, _) = m.total();
        year_total = year_total + c;
        let r = 4 + i as u32;
        sh.text(ws, r, 0, &format!("{:02}月", i + 1))?;
        sh.text(ws, r, 1, &format!("{} 发放月报", m.month))?;
        sh.cell(ws, r, 2, &Cell::Int(c.count as i64))?;
        sh.cell(ws, r, 3, &Cell::Money(c.amount))?;
    }
    sh.text(ws, 16, 0, "合计")?;
    sh.cell(ws, 16, 2, &Cell::Int(year_total.count as i64))?;
    sh.cell(ws, 16, 3, &Cell::Money(year_total.amount))?;

    // The year's summary per project.
    let mut per: BTreeMap<(String, String), [Fen; 13]> = BTreeMap::new();
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (i, m) in months.iter().enumerate() {
        for (k, (c, _)) in m.by_project() {
            per.entry(k.clone()).or_insert([Fen(0); 13])[i] += c.amount;
            *counts.entry(k).or_default() += c.count;
        }
    }
    let ws = wb.add_worksheet();
    ws.set_name("年度汇总")?;
    let mut headers: Vec<String> = vec!["项目代码".into(), "补贴项目".into(), "全年笔数".into()];
    headers.extend((1..=12).map(|m| format!("{m}月金额")));
    headers.push("全年金额".into());
    let hs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let rows: Vec<Vec<Cell>> = per
        .iter()
        .map(|((code, name), amounts)| {
            let mut row = vec![
                Cell::Text(code.clone()),
                Cell::Text(name.clone()),
                Cell::Int(counts[&(code.clone(), name.clone())] as i64),
            ];
            row.extend(amounts[..12].iter().map(|a| Cell::Money(*a)));
            row.push(Cell::Money(amounts[..12].iter().copied().sum()));
            row
        })
        .collect();
    sh.table(ws, &format!("{year}年度按补贴项目汇总"), &hs, &rows)?;
    let _ = writeln!(
        text,
        "年度汇总：入账{}笔 {}元",
        year_total.count, year_total.amount
    );
    for ((code, name), amounts) in &per {
        let _ = writeln!(
            text,
            "  {} {} {}笔 {}元",
            pad(code, 6),
            pad(name, 30),
            counts[&(code.clone(), name.clone())],
            amounts[..12].iter().copied().sum::<Fen>()
        );
    }

    // The months.
    for m in &months {
        let ws = wb.add_worksheet();
        ws.set_name(format!("{}月", &m.month[5..]))?;
        let rows: Vec<Vec<Cell>> = m.orders.iter().map(cells).collect();
        sh.table(ws, &format!("{} 发放月报", m.month), &HEADERS, &rows)?;
        if !m.orders.is_empty() {
            text.push_str(&render(m));
        }
    }
    let xlsx = dir.join(format!("年度汇编-{year}.xlsx"));
    wb.save(&xlsx)
        .with_context(|| format!("无法写入 {}", xlsx.display()))?;
    let txt = dir.join(format!("年度汇编-{year}.txt"));
    std::fs::write(&txt, &text).with_context(|| format!("无法写入 {}", txt.display()))?;
    Ok(vec![xlsx, txt])
}
