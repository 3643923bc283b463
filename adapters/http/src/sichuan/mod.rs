//! Sichuan's protocols, platform side (layouts documented in `provinces/sichuan/README.md`):
//!
//! - [`voucher`] + [`treasury`]: authorised-payment vouchers modelled on the treasury's 8202
//!   (财政授权支付凭证), XML in GB18030, posted over HTTP to the treasury (budget system), which
//!   answers with a receipt in the same encoding;
//! - [`bank`]: the payment instruction file (GB18030 text, header with count and total, one
//!   line per payment, trailer) dropped into the cooperating bank's directory, and the result
//!   files the bank drops back, each accepted or rejected whole.
//!
//! The simulators in `ykt_sim::sichuan` implement the other side of the same layouts,
//! independently, so a layout mistake on either side shows in the tests.

pub mod bank;
pub mod treasury;
pub mod voucher;
mod xml;

#[cfg(test)]
mod tests;

use ykt_kernel::Fen;

/// Parse an amount written as yuan with exactly two decimals (`420.00`, `-420.00`).
pub fn parse_fen(s: &str) -> Option<Fen> {
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

/// Encode text as GB18030 (which can encode every Unicode character, so nothing is ever
/// substituted).
pub fn to_gb18030(text: &str) -> Vec<u8> {
    encoding_rs::GB18030.encode(text).0.into_owned()
}

/// Decode GB18030 bytes strictly: `None` when they are not valid GB18030 (e.g. a file cut in
/// the middle of a character).
pub fn from_gb18030(bytes: &[u8]) -> Option<String> {
    encoding_rs::GB18030
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn amounts_parse_exactly() {
        assert_eq!(parse_fen("420.00"), Some(Fen(42_000)));
        assert_eq!(parse_fen("-0.05"), Some(Fen(-5)));
        assert_eq!(parse_fen("420.0"), None);
        assert_eq!(parse_fen("420"), None);
        assert_eq!(parse_fen(".50"), None);
        assert_eq!(parse_fen("4e2.00"), None);
        assert_eq!(parse_fen("99999999999999999.00"), None);
    }

    #[test]
    fn gb18030_round_trips_rare_characters() {
        let s = "𬌗䶮欧阳娜娜";
        assert_eq!(from_gb18030(&to_gb18030(s)).as_deref(), Some(s));
        let b = to_gb18030("张三");
        assert_eq!(from_gb18030(&b[..3]), None, "a cut character is refused");
    }
}
