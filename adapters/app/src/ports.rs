//! Which implementation of each port a deployment uses, from configuration.
//!
//! The province modules provide their adapters (HTTP clients of the budget system, the
//! treasury agent bank, file drops...); until a province's adapters are configured, steps that
//! need a port are refused with a message naming the missing port.

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
    let _ = (cfg, province);
    let disclosure: std::sync::Arc<dyn ykt_kernel::ports::DisclosureChannel> =
        std::sync::Arc::new(store.clone());
    Ok(Ports {
        treasury: None,
        bank: None,
        disclosure: Some(disclosure),
    })
}
