//! The public portal's composition: the policy lists of every compiled-in province (a
//! province whose catalogue lives in the database, like Henan's project library, hands its
//! current catalogue in) and the configured lookup limit. `ykt serve` merges the router.

use crate::config::Config;
use anyhow::anyhow;
use ykt_http::portal::{PolicyList, PortalState};
use ykt_kernel::province::Province;
use ykt_store::Store;

/// The portal's router (`/portal`, `/api/v1/public`). `current` replaces the built-in
/// catalogue of the provinces it names.
pub fn router(
    cfg: &Config,
    store: &Store,
    current: &[&dyn Province],
) -> anyhow::Result<ykt_http::server::Router> {
    let mut lists = Vec::new();
    for d in crate::provinces() {
        match current.iter().find(|p| p.code() == d.code) {
            Some(p) => lists.push(PolicyList::of(*p)),
            None => {
                let p = crate::build_province(d, cfg).map_err(|e| anyhow!("{e}"))?;
                lists.push(PolicyList::of(p.as_ref()));
            }
        }
    }
    Ok(ykt_http::portal::router(PortalState::new(
        store.clone(),
        lists,
        cfg.portal.clone(),
    )))
}
