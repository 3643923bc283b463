//! Per-province application glue: which adapters talk to the province's outside systems, the
//! simulators that stand in for them in demos and tests, and the demo's whole payment cycle.
//! One module per compiled-in province, each with the same three functions:
//!
//! - `configured_ports(cfg, store)`: the ports of a real deployment, from `[province_settings]`;
//! - `simulated_ports(store, seed)`: start the simulators (real HTTP peers on localhost) and
//!   return ports talking to them, with the guard that keeps them running;
//! - `demo_cycle(ctx)`: after intake, run the whole cycle on the demo's batches.

use crate::config::Config;
use crate::cycle::Ports;
use std::path::PathBuf;
use ykt_kernel::province::Province;
use ykt_store::Store;
use ykt_store::payments::BatchRow;

#[cfg(feature = "province-heilongjiang")]
pub mod heilongjiang;
#[cfg(feature = "province-henan")]
pub mod henan;
#[cfg(feature = "province-sichuan")]
pub mod sichuan;

/// Keeps simulators alive; dropping it stops them.
#[derive(Default)]
pub struct Sims(pub Vec<Box<dyn std::any::Any + Send + Sync>>);

/// What the demo hands to a province's cycle after intake.
pub struct DemoCtx<'a> {
    pub cfg: &'a Config,
    pub store: &'a Store,
    pub province: &'a dyn Province,
    /// The batches intake formed (already in the database, in their initial state).
    pub batches: Vec<BatchRow>,
    /// The demo's output directory for this province (write every artifact here).
    pub out: PathBuf,
    pub seed: u64,
    /// The banks' failure share when a benchmark sets it (`None`: the demo's own faults).
    pub fail_share: Option<f64>,
}

/// The configured ports of `province`.
pub async fn configured_ports(
    cfg: &Config,
    province: &dyn Province,
    store: &Store,
) -> anyhow::Result<Ports> {
    match province.code() {
        #[cfg(feature = "province-heilongjiang")]
        "heilongjiang" => heilongjiang::configured_ports(cfg, store).await,
        #[cfg(feature = "province-sichuan")]
        "sichuan" => sichuan::configured_ports(cfg, store).await,
        #[cfg(feature = "province-henan")]
        "henan" => henan::configured_ports(cfg, store).await,
        other => anyhow::bail!("省份{other}没有端口配置 (no port configuration for {other})"),
    }
}

/// Start `province`'s simulators and return ports talking to them.
pub async fn simulated_ports(
    province: &dyn Province,
    store: &Store,
    seed: u64,
) -> anyhow::Result<(Ports, Sims)> {
    match province.code() {
        #[cfg(feature = "province-heilongjiang")]
        "heilongjiang" => heilongjiang::simulated_ports(store, seed).await,
        #[cfg(feature = "province-sichuan")]
        "sichuan" => sichuan::simulated_ports(store, seed).await,
        #[cfg(feature = "province-henan")]
        "henan" => henan::simulated_ports(store, seed).await,
        other => anyhow::bail!("省份{other}没有模拟器 (no simulators for {other})"),
    }
}

/// Run the demo's whole cycle for `ctx.province`.
pub async fn demo_cycle(ctx: &DemoCtx<'_>) -> anyhow::Result<()> {
    match ctx.province.code() {
        #[cfg(feature = "province-heilongjiang")]
        "heilongjiang" => heilongjiang::demo_cycle(ctx).await,
        #[cfg(feature = "province-sichuan")]
        "sichuan" => sichuan::demo_cycle(ctx).await,
        #[cfg(feature = "province-henan")]
        "henan" => henan::demo_cycle(ctx).await,
        other => anyhow::bail!("省份{other}没有发放流程演示 (no demo cycle for {other})"),
    }
}

/// The disclosure channel every province starts with: the platform's own portal tables.
pub fn own_disclosure(store: &Store) -> std::sync::Arc<dyn ykt_kernel::ports::DisclosureChannel> {
    std::sync::Arc::new(store.clone())
}
