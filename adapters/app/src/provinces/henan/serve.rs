//! Henan's part of `ykt serve` (`crate::web::serve`): the bank interface under
//! `/henan/bank/v1`. With `sync_seconds` set, it also runs the system's own steps (confirm the
//! treasury's payment, release the detail for pulling, settle batches) that often. Every write
//! is one database transaction, so stopping the server never leaves anything half done.

use super::Settings;
use super::ops::{self, Henan};
use super::ports;
use crate::config::Config;
use std::sync::Arc;
use std::time::Duration;
use ykt_kernel::province::Province;
use ykt_store::Store;

/// Henan's area of `ykt serve`: the bank interface router; with `sync_seconds` set, also
/// start the system's own steps on a timer.
pub async fn bank_area(cfg: &Config, store: &Store) -> anyhow::Result<ykt_http::server::Router> {
    let settings = Settings::from_config(cfg)?;
    let calendar = Arc::new(settings.calendar()?);
    let province: Arc<dyn Province> =
        Arc::from(ops::library_province(store, &cfg.province_settings).await?);
    let today = ports::today_fn(cfg.today);
    let router = ports::bank_api(store, province.clone(), calendar.clone(), today.clone());
    if settings.sync_seconds > 0 {
        let ports = ports::configured(store, &settings, today.clone())?;
        let store = store.clone();
        let every = Duration::from_secs(settings.sync_seconds);
        outln!(
            "系统步骤每{}秒执行一次（确认拨付、开放获取、结果办结）",
            settings.sync_seconds
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let ops = Henan {
                    store: &store,
                    province: province.as_ref(),
                    ports: &ports,
                    today: (today)(),
                    calendar: &calendar,
                };
                match ops.sync().await {
                    Ok(lines) => {
                        for l in lines {
                            tracing::info!(batch = l.batch, order = %l.order_no, step = l.step, outcome = %l.outcome, "system step");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "the system's steps failed"),
                }
            }
        });
    }
    Ok(router)
}
