//! The dashboard: batches by province and state, what is waiting for *me*, publicity
//! deadlines due or overdue, and KPI per region with a server-rendered SVG chart (success
//! rate and amount credited; 黑财监〔2023〕1号 的监管指标 "发放成功率").

use super::auth::Operator;
use super::batches::{actions_given, visible_batches};
use super::layout;
use super::{PageError, WebState};
use axum::extract::State;
use maud::{Markup, html};
use std::collections::BTreeMap;
use ykt_kernel::Fen;
use ykt_kernel::batch::LineState;

/// KPI of one region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionKpi {
    pub region: String,
    pub credited: u64,
    pub failed: u64,
    pub credited_amount: Fen,
}

impl RegionKpi {
    /// Success rate in per mille of the lines with a result (credited / (credited + failed)).
    pub fn rate_permille(&self) -> Option<u64> {
        let done = self.credited + self.failed;
        (done > 0).then(|| self.credited * 1000 / done)
    }
}

/// Escape text for the SVG (region names come from an imported table).
fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The chart: one row per region, a bar for the success rate and a bar for the amount
/// (scaled to the largest amount). Plain SVG, no script.
pub fn kpi_svg(kpis: &[RegionKpi]) -> String {
    let row_h = 28;
    let h = 30 + row_h * kpis.len().max(1);
    let max_amount = kpis
        .iter()
        .map(|k| k.credited_amount.0)
        .max()
        .unwrap_or(0)
        .max(1);
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="各区划发放成功率与到账金额" width="860" height="{h}" viewBox="0 0 860 {h}" font-size="12" font-family="sans-serif">"##
    );
    s.push_str(r##"<text x="150" y="14" fill="#333">发放成功率</text><text x="480" y="14" fill="#333">到账金额（元）</text>"##);
    for (i, k) in kpis.iter().enumerate() {
        let y = 24 + i * row_h;
        let rate = k.rate_permille();
        let rate_w = rate.unwrap_or(0) * 250 / 1000;
        let amt_w = i64::try_from(250u64).unwrap_or(250) * k.credited_amount.0.max(0) / max_amount;
        let label = match rate {
            Some(r) => format!("{}.{}%", r / 10, r % 10),
            None => "无结果".to_owned(),
        };
        s.push_str(&format!(
            r##"<text x="0" y="{ty}" fill="#222">{region}</text><rect x="150" y="{y}" width="{rate_w}" height="16" fill="#2e7d32"><title>{region} 成功率 {label}</title></rect><text x="{lx}" y="{ty}" fill="#222">{label}</text><rect x="480" y="{y}" width="{amt_w}" height="16" fill="#1565c0"><title>{region} 到账 {amt}元</title></rect><text x="{ax}" y="{ty}" fill="#222">{amt}</text>"##,
            ty = y + 12,
            region = xml_escape(&k.region),
            lx = 155 + rate_w,
            ax = 485 + amt_w,
            amt = k.credited_amount,
        ));
    }
    s.push_str("</svg>");
    s
}

/// Five queries whatever the number of batches: the batches, their step histories, the
/// lines' totals per region (summed in SQL), the regions' names, the notices.
pub async fn page(State(st): State<WebState>, op: Operator) -> Result<Markup, PageError> {
    let within = Some(&op.user.region);
    let batches = visible_batches(&st, &op.user).await?;
    let histories = st.store.step_history_within(within).await?;
    let no_history = Vec::new();
    // Batches by province and state (the state is the province's workflow step reached).
    let mut by_state: BTreeMap<(String, &'static str), (u64, Fen)> = BTreeMap::new();
    let mut waiting = Vec::new();
    for b in &batches {
        let pname = st
            .province(&b.province)
            .map(|p| p.name().to_owned())
            .unwrap_or_else(|| b.province.clone());
        let e = by_state
            .entry((pname, b.state.label_zh()))
            .or_insert((0, Fen(0)));
        e.0 += 1;
        e.1 = Fen(e.1.0 + b.control.amount.0);
        let history = histories.get(&b.id).unwrap_or(&no_history);
        let acts = actions_given(&st, b, &op.user, history);
        if !acts.is_empty() {
            waiting.push((b, acts));
        }
    }
    let names = st.store.batch_region_names(within).await?;
    let kpis: Vec<RegionKpi> = st
        .store
        .tallies_by_region(within)
        .await?
        .into_iter()
        .map(|(region, t)| {
            let c = t.get(LineState::Credited);
            let label = match (names.get(&region), ykt_kernel::RegionCode::parse(&region)) {
                (Some(name), Ok(code)) => format!("{name} {}", code.prefix()),
                _ => region,
            };
            RegionKpi {
                region: label,
                credited: c.count,
                failed: t.get(LineState::Failed).count + t.get(LineState::Refunded).count,
                credited_amount: c.amount,
            }
        })
        .collect();
    let today = st.ops.today().format("%Y-%m-%d").to_string();
    let notices = st
        .store
        .notices(Some(op.user.region.prefix()))
        .await?
        .into_iter()
        .filter(|n| !n.withdrawn && n.until.as_deref().is_some_and(|u| u >= today.as_str()))
        .collect::<Vec<_>>();
    let mut deadlines = st.ops.deadlines(&op.user).await?;
    // Overdue first, then what is still open by due date; met ones last.
    deadlines.sort_by_key(|d| (!d.overdue, !d.open, d.due));
    deadlines.truncate(100);
    let body = html! {
        section.card {
            h2 { "等待我处理（" (waiting.len()) "）" }
            @if waiting.is_empty() { p.muted { "暂无待办。" } }
            table.data id="waiting" {
                tbody { @for (b, acts) in &waiting {
                    tr {
                        td { a href={"/batches/" (b.id)} { "批次 " (b.id) } }
                        td { (b.project_name) } td { (b.region) } td { (b.period) }
                        td { (b.state.label_zh()) }
                        td { (acts.iter().map(|a| a.label).collect::<Vec<_>>().join("、")) }
                    }
                } }
            }
        }
        section.card {
            h2 { "批次概况" }
            table.data id="by-state" {
                thead { tr { th { "省份" } th { "状态（流程环节）" } th.num { "批次数" } th.num { "金额（元）" } } }
                tbody { @for ((p, s), (n, amt)) in &by_state {
                    tr { td { (p) } td { (s) } td.num { (n) } td.num { (amt) } }
                } }
            }
        }
        section.card {
            h2 { "期限（今天 " (today) "）：到期与逾期" }
            @if deadlines.is_empty() { p.muted { "没有需要关注的期限。" } }
            table.data id="deadlines" {
                thead { tr { th { "事项" } th { "批次" } th { "区划" } th { "期限" } th { "状态" } th { "起算事项 / 依据" } } }
                tbody { @for d in &deadlines {
                    tr class=(if d.overdue { "err" } else if d.open { "warn" } else { "" }) {
                        td { (d.title) }
                        td { @if let Some(b) = d.batch { a href={"/batches/" (b)} { (b) } } }
                        td { (d.region) } td { (d.due) } td { (d.status) } td.wrap { (d.basis) }
                    }
                } }
            }
            @if !notices.is_empty() {
                h2 { "公示中的公告" }
                table.data id="open-notices" {
                    tbody { @for n in &notices {
                        tr { td { (n.title) } td { (n.region) } td { (n.project_name) } td { "至 " (n.until.as_deref().unwrap_or("")) } }
                    } }
                }
            }
        }
        section.card {
            h2 { "监管指标：各区划发放成功率与到账金额" }
            div.chart id="kpi-chart" { (layout::raw(kpi_svg(&kpis))) }
        }
    };
    Ok(layout::page("工作台", &op, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_shows_rate_and_amount_per_region() {
        let svg = kpi_svg(&[
            RegionKpi {
                region: "230102".into(),
                credited: 9,
                failed: 1,
                credited_amount: Fen(90_000),
            },
            RegionKpi {
                region: "230103".into(),
                credited: 0,
                failed: 0,
                credited_amount: Fen(0),
            },
        ]);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("230102 成功率 90.0%"));
        assert!(svg.contains("900.00"));
        assert!(svg.contains("无结果"));
        let evil = kpi_svg(&[RegionKpi {
            region: "<script>alert(1)</script>".into(),
            ..Default::default()
        }]);
        assert!(!evil.contains("<script>") && evil.contains("&lt;script&gt;"));
        // The largest amount gets the full 250px bar.
        assert!(svg.contains(r#"x="480" y="24" width="250""#));
    }
}
