//! Sichuan's outside systems, simulated (layouts in `provinces/sichuan/README.md`):
//!
//! - [`treasury::TreasurySim`]: the treasury / budget system over HTTP, taking authorised-
//!   payment vouchers (8202 layout, XML in GB18030), checking them and funding the
//!   department's zero-balance account (or taking money back on a red-letter voucher);
//! - [`bank::BankSim`]: the cooperating bank behind a file drop: reads payment instructions,
//!   credits cards (or fails lines, seeded), texts each beneficiary through the SMS gateway,
//!   writes result files — sometimes twice, sometimes truncated first (seeded faults) — and
//!   sends a refused result file again when the platform's rejection receipt arrives;
//! - [`sms::SmsGateway`]: the SMS gateway the bank texts through, over HTTP.
//!
//! This side parses what the platform writes and writes what the platform parses; it shares
//! no code with the platform's adapters (`ykt_http::sichuan`), so both implement the
//! documented layouts independently.

pub mod bank;
pub mod sms;
pub mod treasury;
/// The XML reader and writer of the vouchers (public for the fuzz targets, `tests/fuzz`).
pub mod xml;

use ykt_kernel::Fen;

/// Parse yuan with exactly two decimals (`420.00`, `-420.00`).
pub(crate) fn parse_fen(s: &str) -> Option<Fen> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (yuan, fen) = digits.split_once('.')?;
    if yuan.is_empty()
        || fen.len() != 2
        || !yuan.bytes().all(|b| b.is_ascii_digit())
        || !fen.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let v = yuan
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(fen.parse::<i64>().ok()?)?;
    Some(Fen(if neg { -v } else { v }))
}

pub(crate) fn gb18030(text: &str) -> Vec<u8> {
    encoding_rs::GB18030.encode(text).0.into_owned()
}

pub(crate) fn from_gb18030(bytes: &[u8]) -> Option<String> {
    encoding_rs::GB18030
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|c| c.into_owned())
}

/// FNV-1a over the parts: the simulators' seeded, platform-independent decisions.
pub(crate) fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A simulator served on a chosen address (`ykt sichuan sim`), for as long as the returned
/// task runs; the bound address (a `:0` port resolved).
pub async fn serve_at(
    router: axum::Router,
    addr: &str,
) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::warn!(error = %e, "simulator stopped");
        }
    });
    Ok((bound, task))
}
