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
