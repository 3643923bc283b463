//! Application glue for 黑龙江省 (see the module docs of `crate::provinces`): the ports talking to
//! the budget system over HTTP (`[province_settings] budget_url`), the simulators, the demo's
//! whole cycle, the `ykt heilongjiang` subcommands and the province's reports.
//!
//! - [`ops`]: steps with their automatic follow-ups, the bulletin-board notice, the 补贴政策
//!   column;
//! - [`notices`]: the disclosure duties of 塔河县方案(七) and the printable notice;
//! - [`reports`]: the six supervision indicators, the policy list, the clearing statement,
//!   renderings;
//! - [`demo`]: `ykt demo --province heilongjiang` after intake;
//! - [`cli`]: `ykt heilongjiang ...`.

pub mod cli;
pub mod demo;
pub mod notices;
pub mod ops;
pub mod reports;

use super::{DemoCtx, Sims, own_disclosure};
use crate::config::Config;
use crate::cycle::Ports;
use anyhow::{anyhow, bail};
use ykt_http::heilongjiang::PlatformDate;
use ykt_kernel::province::Province;
use ykt_sim::heilongjiang::{BankConfig, HljSims};
use ykt_store::Store;

pub use ykt_province_heilongjiang::CODE;

/// The province plug-in as configured.
pub fn province(cfg: &Config) -> anyhow::Result<Box<dyn Province>> {
    let d = ykt_kernel::province::find_province(CODE)?;
    Ok(crate::build_province(d, cfg)?)
}

/// `budget_url` in `[province_settings.heilongjiang]` (or `[province_settings]`): the budget
/// system's base URL, if configured.
pub fn budget_url(cfg: &Config) -> anyhow::Result<Option<String>> {
    match ykt_province_heilongjiang::Settings::table(&cfg.province_settings).get("budget_url") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
        Some(other) => bail!(
            "province_settings.budget_url 应为预算管理一体化系统的地址字符串，而不是 {other} (must be a URL string)"
        ),
    }
}

/// `collect_seconds` in `[province_settings.heilongjiang]` (or `[province_settings]`): how
/// often `ykt serve` collects the returns of the batches waiting for them (the System step
/// `collect_results`, as `ykt heilongjiang collect ID`); 0 or unset: never (by hand).
pub fn collect_seconds(cfg: &Config) -> anyhow::Result<u64> {
    match ykt_province_heilongjiang::Settings::table(&cfg.province_settings).get("collect_seconds")
    {
        None | Some(serde_json::Value::Null) => Ok(0),
        Some(v) => v.as_u64().ok_or_else(|| {
            anyhow!(
                "province_settings.collect_seconds 应为非负整数（秒），而不是 {v} (must be a number of seconds)"
            )
        }),
    }
}

/// One round of result collection: `ykt heilongjiang collect ID` for every Heilongjiang batch
/// handed to the bank (dispatched) and not yet settled. Each batch's outcome, in id order.
pub async fn collect_due(
    cfg: &Config,
    store: &Store,
) -> anyhow::Result<
    Vec<(
        i64,
        Result<crate::cycle::StepReport, crate::cycle::CycleError>,
    )>,
> {
    let mut due: Vec<i64> = store
        .batches(Some(CODE), None)
        .await?
        .into_iter()
        .filter(|b| b.state == ykt_kernel::batch::BatchState::Dispatched)
        .map(|b| b.id)
        .collect();
    due.sort_unstable();
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let p = province(cfg)?;
    let h = ops::Hlj {
        store,
        province: p.as_ref(),
        ports: configured_ports(cfg, store).await?,
        date: PlatformDate::new(cfg.today()),
    };
    let mut out = Vec::with_capacity(due.len());
    for id in due {
        out.push((id, h.collect(id).await));
    }
    Ok(out)
}

/// With `collect_seconds` set, start collecting the returns on a timer (part of `ykt
/// serve`); every collection is one database transaction, so stopping the server never
/// leaves one half done. Refused when the budget system is not configured.
pub fn spawn_collector(cfg: &Config, store: &Store) -> anyhow::Result<Option<u64>> {
    let secs = collect_seconds(cfg)?;
    if secs == 0 {
        return Ok(None);
    }
    if budget_url(cfg)?.is_none() {
        bail!(
            "province_settings.collect_seconds 需要同时配置 budget_url（预算管理一体化系统地址） (collect_seconds needs budget_url)"
        );
    }
    let (cfg, store) = (cfg.clone(), store.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(secs));
        loop {
            tick.tick().await;
            match collect_due(&cfg, &store).await {
                Ok(done) => {
                    for (id, r) in done {
                        match r {
                            Ok(r) => {
                                tracing::info!(batch = id, moved = ?r.moved, note = %r.note, "results collected")
                            }
                            Err(e) => {
                                tracing::warn!(batch = id, error = %e, "result collection failed; next round retries")
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "result collection round failed"),
            }
        }
    });
    Ok(Some(secs))
}

/// The ports of a deployment: the budget system at `budget_url` for treasury and bank (the
/// platform reaches the agent bank only through it), the platform's own disclosure tables.
/// Without `budget_url` only disclosure is wired, and steps that need the budget system are
/// refused with a message naming the setting.
pub async fn configured_ports(cfg: &Config, store: &Store) -> anyhow::Result<Ports> {
    match budget_url(cfg)? {
        Some(url) => {
            let p = province(cfg)?;
            ops::ports_for(store, p.as_ref(), &url, PlatformDate::new(cfg.today()))
        }
        None => Ok(Ports {
            treasury: None,
            bank: None,
            disclosure: Some(own_disclosure(store)),
        }),
    }
}

/// Start the simulators (budget system and treasury agent bank on ephemeral ports, seeded,
/// 10% of accounts failing, returns repeated and reordered) and return ports talking to them.
pub async fn simulated_ports(store: &Store, seed: u64) -> anyhow::Result<(Ports, Sims)> {
    let today = chrono::Local::now().date_naive();
    let sims = HljSims::start(
        BankConfig {
            seed,
            duplicate: true,
            reorder: true,
            ..BankConfig::default()
        },
        today,
    )
    .await
    .map_err(|e| anyhow!("无法启动模拟器 (cannot start the simulators): {e}"))?;
    let p = province(&Config::default())?;
    let ports = ops::ports_for(
        store,
        p.as_ref(),
        &sims.budget.url(),
        PlatformDate::new(today),
    )?;
    Ok((ports, Sims(vec![Box::new(sims)])))
}

/// The whole cycle after the demo's intake (see [`demo`]).
pub async fn demo_cycle(ctx: &DemoCtx<'_>) -> anyhow::Result<()> {
    demo::run(ctx).await
}
