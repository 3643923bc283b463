//! 黑龙江省's outside systems as real HTTP peers (layouts: `provinces/heilongjiang/docs/messages.md`):
//!
//! - [`budget`]: the budget system (预算管理一体化系统). It receives disbursement plans from the
//!   一卡通 platform and splits them by fiscal region (黑财监〔2021〕30号 二(三)三 "按财政区划自动分发
//!   各地"), takes each region department's treasury centralised payment request and finance's
//!   approval, forwards approved 5201 direct-payment vouchers to the treasury agent bank and
//!   relays the bank's per-line returns back to the platform.
//! - [`bank`]: the treasury agent bank (国库集中支付代理银行). It pays each detail of a voucher to
//!   the card account, fails a configurable share of them with realistic reasons (wrong account,
//!   dormant account, name mismatch), bears cross-bank fees itself, never pays the same line and
//!   attempt twice, and can repeat, reorder or hold back part of its returns.
//!
//! Every message is GB18030 XML. Both simulators are seeded: the same seed fails the same
//! accounts. Their business date is a [`SimClock`] the caller can move (the demo runs a
//! two-week timeline).

pub mod bank;
pub mod budget;
pub mod xml;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;
use xml::El;

/// `after` and `limit` of a paged returns query: (the position to answer from, at most how
/// many; `None`: all). A missing `after` is the start.
pub(crate) fn page_params(
    q: &std::collections::HashMap<String, String>,
) -> Result<(usize, Option<usize>), String> {
    let after = match q.get("after").map(String::as_str) {
        None | Some("") => 0,
        Some(s) => s.parse().map_err(|_| format!("游标after「{s}」无效"))?,
    };
    let limit = match q.get("limit").map(String::as_str) {
        None | Some("") => None,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("limit「{s}」应为正整数")),
        },
    };
    Ok((after, limit))
}

/// `PartNo` of `PartCount` of a plan or voucher sent in parts (1 of 1 without them;
/// messages.md "Plans and vouchers in parts").
pub(crate) fn part_of(el: &El) -> Result<(u32, u32), String> {
    let number = |name: &str| -> Result<Option<u32>, String> {
        match el.get(name) {
            "" => Ok(None),
            s => match s.parse::<u32>() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(format!("{name}「{s}」无效")),
            },
        }
    };
    match (number("PartNo")?, number("PartCount")?) {
        (None, None) => Ok((1, 1)),
        (Some(k), Some(n)) if k <= n => Ok((k, n)),
        _ => Err("PartNo与PartCount须同时给出，且PartNo不大于PartCount".into()),
    }
}

/// The simulators' business date, shared and movable.
#[derive(Debug, Clone)]
pub struct SimClock(Arc<Mutex<NaiveDate>>);

impl SimClock {
    pub fn new(d: NaiveDate) -> SimClock {
        SimClock(Arc::new(Mutex::new(d)))
    }
    pub fn today(&self) -> NaiveDate {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn set(&self, d: NaiveDate) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = d;
    }
}

/// How the simulated treasury agent bank behaves.
#[derive(Debug, Clone)]
pub struct BankConfig {
    /// The agent bank's name (cards of other banks are cross-bank payments).
    pub name: String,
    pub seed: u64,
    /// Share of card accounts that fail (0.0 to 1.0).
    pub fail_share: f64,
    /// Deliver every return detail twice (the copy after the released details: with paging,
    /// possibly in a later page).
    pub duplicate: bool,
    /// Shuffle the order of return details (each release of them).
    pub reorder: bool,
    /// The first fetch of a voucher's return releases only the first half of its details,
    /// the next one the rest (with paging: in a later page or a later fetch).
    pub partial: bool,
    /// Fee of one cross-bank transfer in 分, borne by the agent bank (黑财监〔2021〕30号 二(三)三
    /// "跨行转账手续费，由各级财政国库集中支付业务代理银行承担").
    pub cross_bank_fee_fen: i64,
}

impl Default for BankConfig {
    fn default() -> Self {
        BankConfig {
            name: "中国农业银行".into(),
            seed: 2023,
            fail_share: 0.1,
            duplicate: false,
            reorder: false,
            partial: false,
            cross_bank_fee_fen: 100,
        }
    }
}

/// A running simulator on a fixed or ephemeral address. Dropping it stops the server.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    /// Serve `router` on `addr` (`127.0.0.1:0` for an ephemeral port).
    pub async fn start_on(router: axum::Router, addr: SocketAddr) -> std::io::Result<Server> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::warn!(error = %e, "simulator stopped");
            }
        });
        Ok(Server { addr, task })
    }
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Both simulators, running.
#[derive(Debug)]
pub struct HljSims {
    pub budget: Server,
    pub bank: Server,
    pub clock: SimClock,
}

impl HljSims {
    /// Start the bank and the budget system (wired to the bank) on ephemeral ports.
    pub async fn start(bank: BankConfig, today: NaiveDate) -> std::io::Result<HljSims> {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        HljSims::start_on(bank, today, any, any).await
    }

    /// Start them on given addresses (`ykt heilongjiang sim`).
    pub async fn start_on(
        bank: BankConfig,
        today: NaiveDate,
        budget_addr: SocketAddr,
        bank_addr: SocketAddr,
    ) -> std::io::Result<HljSims> {
        let clock = SimClock::new(today);
        let agent = bank.name.clone();
        let bank = Server::start_on(bank::router(bank, clock.clone()), bank_addr).await?;
        let budget = Server::start_on(
            budget::router(
                budget::BudgetConfig {
                    bank_url: bank.url(),
                    agent_bank: agent,
                },
                clock.clone(),
            ),
            budget_addr,
        )
        .await?;
        Ok(HljSims {
            budget,
            bank,
            clock,
        })
    }
}

/// An XML response in GB18030.
pub(crate) fn xml_response(status: StatusCode, el: &El) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/xml; charset=GB18030")],
        xml::to_bytes(el),
    )
        .into_response()
}

/// A GB18030 XML response already encoded (see [`xml::Out`]).
pub(crate) fn xml_bytes_response(status: StatusCode, bytes: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/xml; charset=GB18030")],
        bytes,
    )
        .into_response()
}

/// An `<Error>` response.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    xml_response(
        status,
        &El::new("Error")
            .with(El::leaf("Code", code))
            .with(El::leaf("Message", message)),
    )
}

/// `420.00` → 42000 分. Exactly two decimals, no sign, at most 15 integer digits.
pub(crate) fn parse_amt(s: &str) -> Result<i64, String> {
    let bad =
        || format!("金额「{s}」格式错误，应为两位小数的元 (amount must be yuan with 2 decimals)");
    let (i, f) = s.split_once('.').ok_or_else(bad)?;
    if i.is_empty()
        || i.len() > 15
        || f.len() != 2
        || !i.bytes().all(|b| b.is_ascii_digit())
        || !f.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let v: i64 = i.parse().map_err(|_| bad())?;
    let c: i64 = f.parse().map_err(|_| bad())?;
    Ok(v * 100 + c)
}

/// 42000 分 → `420.00`.
pub(crate) fn fmt_amt(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

pub(crate) fn ymd(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

/// FNV-1a over the parts: a stable, seedable hash for the fault model.
pub(crate) fn fnv(seed: u64, parts: &[&str]) -> u64 {
    let mut h = 0xcbf29ce484222325u64 ^ seed;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    // Final avalanche (splitmix64) so nearby inputs spread.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d049bb133111eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(parse_amt("420.00"), Ok(42000));
        assert_eq!(parse_amt("0.05"), Ok(5));
        for bad in ["420", "420.0", "-1.00", "1,000.00", "", ".50", "1.005"] {
            assert!(parse_amt(bad).is_err(), "{bad}");
        }
        assert_eq!(fmt_amt(42005), "420.05");
    }
}
