//! Application glue for 四川省 (the zero-balance-account model, 川财办〔2018〕61号 and the 乐山
//! draft rules; `provinces/sichuan/README.md`).
//!
//! Every workflow step goes through the generic cycle runner (`ykt batch step`); what Sichuan
//! adds happens in its ports, which know the province's rules:
//!
//! - [`ports::SichuanDisclosure`]: the publicity boards. Publishing for a batch in draft posts
//!   the masked village lists and township totals for the configured period; for a batch in
//!   publicity it closes the publicity (refused while the period runs or an objection is
//!   open) and issues the publicity statement the township submits; for a settled batch it
//!   posts the result publicity and runs the dual verification against the bank's credits.
//! - [`ports::SichuanTreasury`]: finance's procedural review (summary = detail = declared
//!   amount) before the authorised-payment voucher (8202 layout, XML in GB18030) goes to the
//!   treasury; the agency agreement must be on record; red-letter vouchers return money.
//! - [`ports::SichuanBank`]: the payment instruction file (with the payee's ID, phone and the
//!   SMS text) dropped to the cooperating bank, and its result files read back, each accepted
//!   or rejected whole, repeats recognised.
//!
//! [`ops`] holds the operations that are not workflow steps (agreements, objections, plan
//! declarations, the system's polling, recoveries, the month-end check, statements, the
//! ledger of unpaid items); [`cli`] exposes them as `ykt sichuan ...`; [`demo`] runs the whole
//! cycle for `ykt demo --province sichuan`; [`render`] writes what users read.

pub mod cli;
pub mod demo;
pub mod ops;
pub mod ports;
pub mod render;

use super::{DemoCtx, Sims};
use crate::config::Config;
use crate::cycle::{Cycle, Ports};
use chrono::NaiveDate;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use ykt_kernel::province::Province;
use ykt_province_sichuan::Settings;
use ykt_store::Store;

/// The platform's business date. Fixed for a command (`today` of the configuration); the demo
/// moves it forward day by day.
#[derive(Debug, Clone)]
pub struct Clock(Arc<AtomicI32>);

impl Clock {
    pub fn fixed(d: NaiveDate) -> Clock {
        Clock(Arc::new(AtomicI32::new(
            chrono::Datelike::num_days_from_ce(&d),
        )))
    }
    pub fn today(&self) -> NaiveDate {
        NaiveDate::from_num_days_from_ce_opt(self.0.load(Ordering::SeqCst)).unwrap_or_default()
    }
    pub fn set(&self, d: NaiveDate) {
        self.0
            .store(chrono::Datelike::num_days_from_ce(&d), Ordering::SeqCst);
    }
}

/// What Sichuan's ports and operations share.
#[derive(Clone)]
pub struct Sichuan {
    pub store: Store,
    pub province: Arc<dyn Province>,
    pub settings: Arc<Settings>,
    pub clock: Clock,
}

impl Sichuan {
    /// Sichuan as configured (the province plug-in built from `cfg`).
    pub fn from_config(cfg: &Config, store: &Store, clock: Clock) -> anyhow::Result<Sichuan> {
        let d = crate::select_province(Some(ykt_province_sichuan::CODE), cfg)?;
        let province: Arc<dyn Province> = Arc::from(crate::build_province(d, cfg)?);
        Ok(Sichuan {
            store: store.clone(),
            province,
            settings: Arc::new(Settings::from_json(&cfg.province_settings)?),
            clock,
        })
    }

    pub fn today(&self) -> NaiveDate {
        self.clock.today()
    }
}

/// Sichuan with its ports: what operations run against.
#[derive(Clone)]
pub struct Platform {
    pub sc: Sichuan,
    pub ports: Ports,
    /// The treasury port itself, for returns that are not line refunds (recoveries).
    pub treasury: Option<Arc<ports::SichuanTreasury>>,
}

impl Platform {
    /// The generic cycle runner over this platform, at today's date.
    pub fn cycle(&self) -> Cycle<'_> {
        Cycle {
            store: &self.sc.store,
            province: self.sc.province.as_ref(),
            ports: &self.ports,
            today: self.sc.today(),
        }
    }
}

/// Where a deployment's outside systems are (`[province_settings]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// The treasury's voucher interface, `http://host:port`.
    pub treasury_url: Option<String>,
    /// The cooperating bank's file drop directory.
    pub bank_dir: Option<PathBuf>,
}

impl Endpoints {
    pub fn from_config(cfg: &Config) -> anyhow::Result<Endpoints> {
        let s = &cfg.province_settings;
        let text = |key: &str| -> anyhow::Result<Option<String>> {
            match s.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(v)) if !v.trim().is_empty() => {
                    Ok(Some(v.trim().to_owned()))
                }
                Some(v) => anyhow::bail!(
                    "[province_settings] {key} 应为非空字符串，实为 {v} ({key} must be a string)"
                ),
            }
        };
        Ok(Endpoints {
            treasury_url: text("treasury_url")?,
            bank_dir: text("bank_dir")?.map(PathBuf::from),
        })
    }
}

/// The platform for `sc` talking to `ep` (a port not configured stays empty: its steps are
/// refused with a clear message).
pub fn platform_for(sc: &Sichuan, ep: &Endpoints) -> anyhow::Result<Platform> {
    let treasury = match &ep.treasury_url {
        Some(url) => Some(Arc::new(ports::SichuanTreasury::new(
            sc.clone(),
            ykt_http::sichuan::treasury::HttpTreasury::new(url)?,
        ))),
        None => None,
    };
    let bank = match &ep.bank_dir {
        Some(dir) => Some(Arc::new(ports::SichuanBank::new(
            sc.clone(),
            ykt_http::sichuan::bank::FileDropBank::new(dir)?,
        )) as Arc<dyn ykt_kernel::ports::BankAgent>),
        None => None,
    };
    Ok(Platform {
        sc: sc.clone(),
        ports: Ports {
            treasury: treasury
                .clone()
                .map(|t| t as Arc<dyn ykt_kernel::ports::TreasuryPayment>),
            bank,
            disclosure: Some(Arc::new(ports::SichuanDisclosure::new(sc.clone()))),
        },
        treasury,
    })
}

/// The configured platform for a command.
pub fn platform(cfg: &Config, store: &Store) -> anyhow::Result<Platform> {
    let sc = Sichuan::from_config(cfg, store, Clock::fixed(cfg.today()))?;
    platform_for(&sc, &Endpoints::from_config(cfg)?)
}

pub async fn configured_ports(cfg: &Config, store: &Store) -> anyhow::Result<Ports> {
    Ok(platform(cfg, store)?.ports)
}

/// Start the simulators (treasury and SMS gateway over HTTP, the bank on a file drop in a
/// temporary directory, working in the background) and return ports talking to them.
pub async fn simulated_ports(store: &Store, seed: u64) -> anyhow::Result<(Ports, Sims)> {
    let dir = demo::ScratchDir::new("ykt-sichuan-bank")?;
    let sims = demo::Simulators::start(dir.path(), demo::faults(seed, Vec::new())).await?;
    let cfg = Config::default();
    let sc = Sichuan::from_config(&cfg, store, Clock::fixed(cfg.today()))?;
    let ports = platform_for(&sc, &sims.endpoints())?.ports;
    let bank = sims
        .bank
        .clone()
        .spawn(std::time::Duration::from_millis(200));
    Ok((
        ports,
        Sims(vec![Box::new(sims), Box::new(bank), Box::new(dir)]),
    ))
}

pub async fn demo_cycle(ctx: &DemoCtx<'_>) -> anyhow::Result<()> {
    demo::run(ctx).await
}
