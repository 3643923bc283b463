//! Henan (濮阳规程 under 豫财监〔2021〕38号): the platform's side of the bank-pull model.
//!
//! - [`bank_api`]: the bank interface `ykt serve` exposes (第二十二、二十三、二十六条): an agent
//!   bank authenticates with its credential, lists and pulls its own orders by order number
//!   (paged JSON or a streamed GB18030 CSV), posts results line by line (idempotently), hands
//!   over its stamped results and posts its per-project statements.
//! - [`budget`]: the client of the budget system (预算管理一体化系统, 第二十一条): the order is
//!   pushed as a GB18030 XML message, funding and refunds are asked the same way; implements
//!   the `TreasuryPayment` port.
//! - [`agent`]: the `BankAgent` port of the pull model: releasing an order means recording the
//!   release and notifying the bank, which then pulls; results are those the bank posted.
//!
//! The message layouts are documented in `provinces/henan/README.md`; the simulators in
//! `ykt-sim` implement the other side of each from that description.

pub mod agent;
pub mod bank_api;
pub mod budget;

use ykt_kernel::Fen;

pub use crate::client::client_with_timeout;

/// Parse a wire amount: yuan with exactly two decimals, e.g. `420.00` (no sign, no separator,
/// no exponent): money on the wire is never a float.
pub fn parse_amount(s: &str) -> Option<Fen> {
    let (int, frac) = s.split_once('.')?;
    if int.is_empty()
        || int.len() > 15
        || frac.len() != 2
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (int.len() > 1 && int.starts_with('0'))
    {
        return None;
    }
    let yuan: i64 = int.parse().ok()?;
    let fen: i64 = frac.parse().ok()?;
    yuan.checked_mul(100)?.checked_add(fen).map(Fen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_amounts_are_strict() {
        assert_eq!(parse_amount("420.00"), Some(Fen(42000)));
        assert_eq!(parse_amount("0.01"), Some(Fen(1)));
        for bad in [
            "420", "420.0", "420.001", "-1.00", "1e3.00", "01.00", "4,20.00", "", ".50",
        ] {
            assert_eq!(parse_amount(bad), None, "{bad}");
        }
    }
}
