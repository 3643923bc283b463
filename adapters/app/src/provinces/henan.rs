//! Application glue for Henan (河南省, 濮阳规程 under 豫财监〔2021〕38号): the bank-pull model.
//!
//! - [`ops`]: the operations (project library and change requests, agent banks, the batch flow
//!   around the cycle runner, signed corrections, re-pulls, refunds, hand-over checks);
//! - [`ports`]: the budget-system port (with the library and order checks), the pull agent,
//!   and the simulated world (platform bank interface, budget system, agent banks);
//! - [`cli`]: `ykt henan ...`; [`serve`]: `ykt serve`;
//! - [`demo`]: the demo's whole cycle; [`report`]: the monthly report and the annual set;
//!   [`render`]: the human-readable renderings.
//!
//! Settings come from `[province_settings.henan]` in `ykt.toml`:
//!
//! ```toml
//! [province_settings.henan]
//! budget_url = "http://127.0.0.1:9101"          # 预算管理一体化系统
//! calendar_file = "/etc/yikatong/calendar.toml" # extra or corrected calendar years
//! sync_seconds = 30                             # ykt serve runs the system's steps this often
//! [province_settings.henan.bank_notify]         # where each bank is told to pull
//! ABC-HN = "http://bank.example/notify"
//! ```

pub mod bench;
pub mod cli;
pub mod demo;
pub mod ops;
pub mod ports;
pub mod render;
pub mod report;
pub mod serve;

use super::{DemoCtx, Sims};
use crate::config::Config;
use crate::cycle::Ports;
use anyhow::Context;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use ykt_province_henan::calendar::WorkCalendar;
use ykt_store::Store;

/// `[province_settings.henan]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The budget system's base URL.
    #[serde(default)]
    pub budget_url: Option<String>,
    /// Notification address per bank code (第二十三条 "及时通知代发金融机构").
    #[serde(default)]
    pub bank_notify: BTreeMap<String, String>,
    /// A calendar file adding or replacing years of the built-in working-day calendar.
    #[serde(default)]
    pub calendar_file: Option<PathBuf>,
    /// Seconds between two runs of the system's steps by `ykt serve` (0: never).
    #[serde(default)]
    pub sync_seconds: u64,
}

impl Settings {
    pub fn from_config(cfg: &Config) -> anyhow::Result<Settings> {
        match cfg.province_settings.get(ykt_province_henan::CODE) {
            Some(v) => serde_json::from_value(v.clone())
                .context("配置 [province_settings.henan] 有误 (invalid Henan settings)"),
            None => Ok(Settings::default()),
        }
    }

    /// The built-in working-day calendar, with the configured file's years added.
    pub fn calendar(&self) -> anyhow::Result<WorkCalendar> {
        let cal = WorkCalendar::builtin()?;
        Ok(match &self.calendar_file {
            Some(f) => {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("无法读取工作日历 {}", f.display()))?;
                cal.merged(WorkCalendar::parse(&text)?)
            }
            None => cal,
        })
    }
}

pub use cli::{HenanCmd, run};

pub async fn configured_ports(cfg: &Config, store: &Store) -> anyhow::Result<Ports> {
    let settings = Settings::from_config(cfg)?;
    ports::configured(store, &settings, ports::today_fn(cfg.today))
}

/// Start the platform's bank interface, the budget system and one simulated agent bank per
/// candidate bank (the candidates must be registered first), with the default faults.
pub async fn simulated_ports(store: &Store, seed: u64) -> anyhow::Result<(Ports, Sims)> {
    let province: Arc<dyn ykt_kernel::province::Province> =
        Arc::from(ops::library_province(store, &serde_json::Value::Null).await?);
    let today = std::env::var("YKT_TODAY")
        .ok()
        .and_then(|s| chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok())
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let env = ports::start_sims(
        store,
        province,
        Arc::new(WorkCalendar::builtin()?),
        ports::SimOptions {
            seed,
            today,
            faults: BTreeMap::new(),
            default_faults: demo::default_faults(),
            page: None,
            pending_polls: 0,
            notify_banks: true,
        },
    )
    .await?;
    Ok((env.ports.clone(), Sims(vec![Box::new(env)])))
}

pub async fn demo_cycle(ctx: &DemoCtx<'_>) -> anyhow::Result<()> {
    demo::run(ctx).await
}
