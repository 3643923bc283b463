//! `ykt serve`: the platform's HTTP server (address from `--listen` or the `listen` setting,
//! default `127.0.0.1:8080`) with Henan's bank interface under `/henan/bank/v1`, the public
//! portal under `/portal` and `/api/v1/public` ([`crate::portal`]) and a health check at
//! `/healthz`. With `sync_seconds` set, it also runs the system's own steps (confirm
//! the treasury's payment, release the detail for pulling, settle batches) that often.
//!
//! It stops on Ctrl-C or SIGTERM; every write is one database transaction, so stopping never
//! leaves anything half done.

use super::Settings;
use super::ops::{self, Henan};
use super::ports;
use crate::cli::open_store;
use crate::config::Config;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use ykt_kernel::province::Province;

pub async fn run(cfg: &Config, listen: Option<String>) -> anyhow::Result<u8> {
    let store = open_store(cfg, true).await?;
    let settings = Settings::from_config(cfg)?;
    let calendar = Arc::new(settings.calendar()?);
    let province: Arc<dyn Province> =
        Arc::from(ops::library_province(&store, &cfg.province_settings).await?);
    let today = ports::today_fn(cfg.today);
    let portal = crate::portal::router(cfg, &store, &[province.as_ref()])?;
    let router = ykt_http::server::app([
        ports::bank_api(&store, province.clone(), calendar.clone(), today.clone()),
        portal,
    ]);
    let addr = listen.unwrap_or_else(|| cfg.listen.clone());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("无法监听 {addr} (cannot listen on {addr})"))?;
    let local = listener.local_addr()?;
    outln!(
        "ykt serve：http://{local} —— 银行接口 /henan/bank/v1（Bearer 凭据）、公众门户 /portal（补贴政策、补贴查询、公示公告）、健康检查 /healthz；Ctrl-C 停止"
    );
    if settings.sync_seconds > 0 {
        let ports = ports::configured(&store, &settings, today.clone())?;
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
    ykt_http::server::serve(listener, router, std::future::pending()).await?;
    Ok(0)
}
