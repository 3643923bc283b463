//! Application glue for sichuan (see the module docs of `crate::provinces`).
//!
//! Transitional: the province's adapters and simulators are being built (its issue); until
//! then only the platform's own disclosure channel is wired, the simulators are not available
//! and the demo stops after intake.

use super::{DemoCtx, Sims, own_disclosure};
use crate::config::Config;
use crate::cycle::Ports;
use ykt_store::Store;

pub async fn configured_ports(_cfg: &Config, store: &Store) -> anyhow::Result<Ports> {
    Ok(Ports {
        treasury: None,
        bank: None,
        disclosure: Some(own_disclosure(store)),
    })
}

pub async fn simulated_ports(_store: &Store, _seed: u64) -> anyhow::Result<(Ports, Sims)> {
    anyhow::bail!("sichuan 的模拟器尚未接入 (simulators not wired yet)")
}

pub async fn demo_cycle(_ctx: &DemoCtx<'_>) -> anyhow::Result<()> {
    outln!("（发放、结果、更正、退款与公开的完整流程尚未接入本省）");
    Ok(())
}
