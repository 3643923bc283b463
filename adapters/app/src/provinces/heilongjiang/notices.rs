//! Disclosure duties of a county (塔河县方案(七)) and the printable bulletin-board notice.
//!
//! - 公示栏公示 (bulletin board): the reviewed list is posted "于补贴资金审核后7日内"; the review
//!   date is the day the reviewed plan went to the budget system.
//! - 网站公开 (government portal): "在补贴信息产生或发生变化20日内向社会公开": the information is
//!   produced when the bank's results first come back, and changes with every re-payment of
//!   corrected lines and every refund; the web notice (the `publish` step) must follow each
//!   within 20 days.
//!
//! Dates are the platform's dates of the budget-system exchanges (archived with each message)
//! and of the notices. A duty not met by its due date is flagged 逾期.

use anyhow::anyhow;
use chrono::{Days, NaiveDate};
use std::collections::HashMap;
use std::fmt::Write;
use ykt_kernel::RegionCode;
use ykt_kernel::ports::Notice;
use ykt_kernel::province::Province;
use ykt_province_heilongjiang as hlj;
use ykt_store::Store;
use ykt_store::payments::BatchRow;

/// Which notice a duty asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DutyKind {
    Bulletin,
    Web,
}

impl DutyKind {
    pub fn label(self) -> &'static str {
        match self {
            DutyKind::Bulletin => "公示栏公示",
            DutyKind::Web => "网站公开",
        }
    }
}

/// One disclosure duty of a batch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Duty {
    pub batch_id: i64,
    pub order_no: String,
    pub region: String,
    pub county: String,
    pub project_name: String,
    pub kind: DutyKind,
    /// What started the clock (审核推送, 发放结果产生, 信息变更：更正重发/退回).
    pub trigger: String,
    pub trigger_on: NaiveDate,
    pub due_on: NaiveDate,
    /// When the notice that meets the duty was published.
    pub done_on: Option<NaiveDate>,
}

/// Where a duty stands on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "days")]
pub enum DutyStatus {
    /// Published by the due date.
    OnTime,
    /// Published, this many days late.
    Late(i64),
    /// Not yet published, this many days left (0 = due today).
    Open(i64),
    /// Not published and past due by this many days.
    Overdue(i64),
}

impl Duty {
    pub fn status(&self, today: NaiveDate) -> DutyStatus {
        match self.done_on {
            Some(d) if d <= self.due_on => DutyStatus::OnTime,
            Some(d) => DutyStatus::Late((d - self.due_on).num_days()),
            None if today <= self.due_on => DutyStatus::Open((self.due_on - today).num_days()),
            None => DutyStatus::Overdue((today - self.due_on).num_days()),
        }
    }
    /// Overdue or published late: the supervisor's flag.
    pub fn flagged(&self, today: NaiveDate) -> bool {
        matches!(
            self.status(today),
            DutyStatus::Late(_) | DutyStatus::Overdue(_)
        )
    }
}

impl DutyStatus {
    pub fn label(self) -> String {
        match self {
            DutyStatus::OnTime => "按期发布".into(),
            DutyStatus::Late(n) => format!("【逾期】超期{n}天发布"),
            DutyStatus::Open(0) => "待发布（今日到期）".into(),
            DutyStatus::Open(n) => format!("待发布（剩余{n}天）"),
            DutyStatus::Overdue(n) => format!("【逾期】已超期{n}天未发布"),
        }
    }
}

fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok()
}

/// County name of a batch's region.
pub async fn county_name(store: &Store, region: &str) -> anyhow::Result<String> {
    let r = RegionCode::parse(region).map_err(|e| anyhow!("{e}"))?;
    let county = r.county().unwrap_or(r);
    Ok(match store.region_name(&county).await? {
        Some(n) => n,
        None => {
            super::ops::shipped_region_name(&county).unwrap_or_else(|| county.prefix().to_owned())
        }
    })
}

/// The disclosure duties of every batch of the province, oldest batch first.
pub async fn duties(store: &Store, province: &str) -> anyhow::Result<Vec<Duty>> {
    let mut batches = store.batches(Some(province), None).await?;
    batches.sort_by_key(|b| b.id);
    // Only when each was published (not the bodies: a province-scale batch's notices are
    // tens of MB each).
    let notices: HashMap<String, String> = store
        .notice_dates(None)
        .await?
        .into_iter()
        .filter(|n| !n.2)
        .map(|n| (n.0, n.1))
        .collect();
    let mut out = Vec::new();
    for b in &batches {
        let msgs = store.hlj_message_dates(&b.order_no).await?;
        let ok = |kind: &str| -> Vec<NaiveDate> {
            msgs.iter()
                .filter(|m| m.kind == kind && m.status.is_none_or(|s| (200..300).contains(&s)))
                .filter_map(|m| date(&m.on_date))
                .collect()
        };
        let county = county_name(store, &b.region).await?;
        let mk =
            |kind: DutyKind, trigger: &str, on: NaiveDate, days: u32, done: Option<NaiveDate>| {
                Duty {
                    batch_id: b.id,
                    order_no: b.order_no.clone(),
                    region: b.region.clone(),
                    county: county.clone(),
                    project_name: b.project_name.clone(),
                    kind,
                    trigger: trigger.to_owned(),
                    trigger_on: on,
                    due_on: on + Days::new(u64::from(days)),
                    done_on: done.filter(|d| *d >= on),
                }
            };
        let bulletin = notices
            .get(&format!("{}-bulletin", b.order_no))
            .and_then(|d| date(d));
        let web = notices
            .get(&format!("{}-result", b.order_no))
            .and_then(|d| date(d));
        if let Some(review) = ok("plan_receipt").into_iter().min() {
            let mut d = mk(
                DutyKind::Bulletin,
                "审核后推送发放计划",
                review,
                hlj::BULLETIN_DAYS,
                None,
            );
            d.done_on = bulletin;
            out.push(d);
        }
        if let Some(first) = ok("return_5201").into_iter().min() {
            out.push(mk(DutyKind::Web, "发放结果产生", first, hlj::WEB_DAYS, web));
        }
        let mut changes: Vec<(NaiveDate, &str)> = ok("repay_5201")
            .into_iter()
            .map(|d| (d, "信息变更：更正后重新支付"))
            .chain(
                ok("refund_request")
                    .into_iter()
                    .map(|d| (d, "信息变更：原渠道退回")),
            )
            .collect();
        changes.sort();
        changes.dedup();
        for (on, what) in changes {
            out.push(mk(DutyKind::Web, what, on, hlj::WEB_DAYS, web));
        }
    }
    Ok(out)
}

/// The duties as a table, flags first in each line.
pub fn render_duties(duties: &[Duty], today: NaiveDate) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "公示公开期限台账（截至{today}；公示栏：审核后{}日内，网站：信息产生或变化后{}日内）",
        hlj::BULLETIN_DAYS,
        hlj::WEB_DAYS
    );
    for d in duties {
        let _ = writeln!(
            o,
            "  批次{} {} {} {} | {} | 起算 {} {} | 期限 {} | 发布 {} | {}",
            d.batch_id,
            d.county,
            d.project_name,
            d.order_no,
            d.kind.label(),
            d.trigger_on,
            d.trigger,
            d.due_on,
            d.done_on
                .map(|x| x.to_string())
                .unwrap_or_else(|| "-".into()),
            d.status(today).label()
        );
    }
    let flagged = duties.iter().filter(|d| d.flagged(today)).count();
    let _ = writeln!(o, "  共{}项，逾期{}项", duties.len(), flagged);
    o
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// How many lines [`bulletin`] reads (decrypted) at a time.
const BULLETIN_PAGE: usize = 5_000;

/// The bulletin-board notice of a batch: the notice to publish (plain text, masked) and,
/// into `html`, a printable HTML page (A4, masked).
///
/// Both are written row by row as the lines are read (a page at a time, decrypted): a
/// province-scale batch's rows are never held apart from the text (its HTML, three times
/// the text, goes straight to the writer).
pub async fn bulletin(
    store: &Store,
    province: &dyn Province,
    b: &BatchRow,
    today: NaiveDate,
    mut html: Option<&mut (dyn std::io::Write + Send)>,
) -> anyhow::Result<Notice> {
    let mask = province.mask_policy();
    let county = county_name(store, &b.region).await?;
    let department = province
        .catalog()
        .find(&b.project)
        .map(|p| hlj::county_department(p, &county))
        .unwrap_or_else(|| format!("{county}业务主管部门"));
    let period = ykt_kernel::Period::parse(&b.period)
        .map(|p| p.label_zh())
        .unwrap_or_else(|_| b.period.clone());
    let title = format!("{county}{}（{period}）发放名单公示", b.project_name);
    let intro = format!(
        "根据黑财监〔2021〕30号及《塔河县加强惠农惠民财政补贴资金“一卡通”管理工作的实施方案》（七），现将经审核的{}（属期{period}）发放名单予以公示，接受社会和群众监督。公示期间如有异议，请向{department}反映。补贴资金由国库集中支付代理银行直接发放至本人社会保障卡账户。",
        b.project_name
    );
    let mut text = format!("{title}\n{intro}\n序号 村（社区） 姓名 身份证号码 补贴金额（元）\n");
    // The HTML in pieces of about this size.
    const HTML_PIECE: usize = 1 << 16;
    let mut h = String::new();
    if html.is_some() {
        h.push_str("<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\n");
        let _ = writeln!(h, "<title>{}</title>", esc(&title));
        h.push_str(
            "<style>@page{size:A4;margin:18mm}body{font-family:SimSun,'Songti SC',serif;font-size:12pt}\
h1{text-align:center;font-size:18pt}table{width:100%;border-collapse:collapse}\
th,td{border:1px solid #000;padding:3px 6px}td.n{text-align:right}p.sign{text-align:right}\
@media print{.noprint{display:none}}</style></head><body>\n",
        );
        let _ = writeln!(h, "<h1>{}</h1>\n<p>{}</p>", esc(&title), esc(&intro));
        h.push_str("<table><thead><tr><th>序号</th><th>村（社区）</th><th>姓名</th><th>身份证号码</th><th>补贴金额（元）</th></tr></thead><tbody>\n");
    }
    let mut names: HashMap<String, String> = HashMap::new();
    let mut n = 0usize;
    let mut total = ykt_kernel::Fen(0);
    // The lines read (decrypted) a page at a time.
    let ids = store.line_ids(b.id).await?;
    // About a row's length a line (a text doubled as it grows is, for a moment, its old and
    // new copies).
    text.reserve(ids.len() * 64);
    for page in ids.chunks(BULLETIN_PAGE) {
        for l in store.lines_by_id(b.id, page).await? {
            let place = match names.get(&l.region) {
                Some(p) => p.clone(),
                None => {
                    let r = RegionCode::parse(&l.region).map_err(|e| anyhow!("{e}"))?;
                    let name = |c: RegionCode| async move {
                        Ok::<_, anyhow::Error>(match store.region_name(&c).await? {
                            Some(n) => n,
                            None => super::ops::shipped_region_name(&c).unwrap_or_default(),
                        })
                    };
                    let village = name(r.clone()).await?;
                    let town = match r.parent() {
                        Some(t) if t.level() == ykt_kernel::RegionLevel::Township => {
                            name(t).await?
                        }
                        _ => String::new(),
                    };
                    let p = format!("{town}{village}");
                    names.insert(l.region.clone(), p.clone());
                    p
                }
            };
            let (name, id) = (mask.name(&l.name), mask.id(l.resident_id.as_str()));
            n += 1;
            total += l.amount;
            let _ = writeln!(text, "{} {} {} {} {}", n, place, name, id, l.amount);
            if let Some(w) = html.as_mut() {
                let _ = writeln!(
                    h,
                    "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                    n,
                    esc(&place),
                    esc(&name),
                    esc(&id),
                    l.amount
                );
                if h.len() >= HTML_PIECE {
                    w.write_all(h.as_bytes())?;
                    h.clear();
                }
            }
        }
    }
    drop(ids);
    let _ = writeln!(text, "合计 {}人 {}元\n{department}\n{today}", n, total);
    if let Some(w) = html.as_mut() {
        let _ = writeln!(
            h,
            "<tr><td colspan=\"4\">合计 {}人</td><td class=\"n\">{}</td></tr></tbody></table>",
            n, total
        );
        let _ = writeln!(
            h,
            "<p class=\"sign\">{}<br>{}</p>\n<p class=\"noprint\">打印后张贴于基层政务公示栏。</p></body></html>",
            esc(&department),
            today
        );
        w.write_all(h.as_bytes())?;
    }
    let notice = Notice {
        id: format!("{}-bulletin", b.order_no),
        kind: "bulletin".into(),
        region: RegionCode::parse(&b.region).map_err(|e| anyhow!("{e}"))?,
        project_name: b.project_name.clone(),
        title,
        body: text,
        published_on: today.to_string(),
        until: None,
    };
    Ok(notice)
}
