//! Which implementation of each port a deployment uses, from configuration (delegated to the
//! province's module in [`crate::provinces`]).

use crate::config::Config;
pub use crate::cycle::Ports;
use ykt_kernel::province::Province;
use ykt_store::Store;

/// The ports configured for `province`.
pub async fn configured(
    cfg: &Config,
    province: &dyn Province,
    store: &Store,
) -> anyhow::Result<Ports> {
    crate::provinces::configured_ports(cfg, province, store).await
}
