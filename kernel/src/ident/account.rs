//! The bank account of a social security card's financial account (社保卡金融账户), collected
//! with the roster (濮阳规程 第十七条) and returned by the card registry.
//!
//! Debit card numbers carry a Luhn check digit (ISO/IEC 7812-1), but passbook (存折) accounts
//! and some older account numbers legitimately fail it: a failed check is the warning
//! `account.luhn` (DOMAIN.md §3), never a parse error.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Shortest accepted account number, in digits.
pub const MIN_LEN: usize = 12;
/// Longest accepted account number, in digits.
pub const MAX_LEN: usize = 30;

/// Whether `digits` passes the Luhn check (ISO/IEC 7812-1 Annex B: from the right, double
/// every second digit, subtract 9 from results above 9, the total must be a multiple of 10).
/// `false` for an empty string or any non-digit character.
pub fn luhn_valid(digits: &str) -> bool {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    #[allow(clippy::manual_is_multiple_of)] // u32::is_multiple_of needs Rust 1.87; MSRV is 1.85
    let valid = sum % 10 == 0;
    valid
}

/// Why a text is not a bank account number. There is no reason code for it in DOMAIN.md §3:
/// callers decide how to report it (the card registry's account is authoritative).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// A character other than digits, spaces and `-`.
    #[error("银行账号格式错误：只能包含数字 (bank account must contain digits only)")]
    Format,
    /// Fewer than 12 or more than 30 digits.
    #[error(
        "银行账号长度错误：应为12至30位数字，实为{len}位 \
         (bank account must have 12 to 30 digits, has {len})"
    )]
    Length {
        /// Number of digits found.
        len: usize,
    },
}

/// A bank account number: 12 to 30 ASCII digits.
///
/// `Debug` and `Display` are masked (`6217********1234`); [`BankAccount::as_str`] gives the
/// full number for storage, encryption and bank files. Serde uses the plain digit string
/// (deserialising validates like [`BankAccount::parse`]).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BankAccount(String);

/// Whether every byte is an ASCII digit (`true` for none), looking at all of them.
fn all_digits(b: &[u8]) -> bool {
    b.iter().fold(true, |ok, d| ok & d.is_ascii_digit())
}

impl BankAccount {
    /// Parse an account number: surrounding whitespace, inner spaces (ASCII and full-width)
    /// and `-` are removed; what remains must be 12 to 30 ASCII digits. The Luhn check is
    /// not applied (see [`BankAccount::luhn_ok`]).
    pub fn parse(s: &str) -> Result<BankAccount, AccountError> {
        // Most cells are the bare digits: checked in one pass without an early exit (the
        // compiler vectorises it) and copied at once, not character by character.
        let digits: String = if all_digits(s.as_bytes()) {
            s.to_owned()
        } else {
            let d: String = s
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .collect();
            if !all_digits(d.as_bytes()) {
                return Err(AccountError::Format);
            }
            d
        };
        let len = digits.len();
        if !(MIN_LEN..=MAX_LEN).contains(&len) {
            return Err(AccountError::Length { len });
        }
        Ok(BankAccount(digits))
    }

    /// Whether the number passes the Luhn check; `false` is reported as the warning
    /// `account.luhn` (passbook accounts legitimately fail).
    pub fn luhn_ok(&self) -> bool {
        luhn_valid(&self.0)
    }

    /// The full number. **For storage, encryption and bank files only**; never log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The masked form of DOMAIN.md §3 with the default policy: first 4, one `*` per hidden
    /// digit, last 4 (`6217********1234`; the length is preserved).
    pub fn masked(&self) -> String {
        crate::mask::MaskPolicy::default().account(&self.0)
    }
}

impl fmt::Debug for BankAccount {
    /// Masked: `BankAccount(6217********1234)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BankAccount({})", self.masked())
    }
}

impl fmt::Display for BankAccount {
    /// Masked: `6217********1234`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for BankAccount {
    /// The plain digit string.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for BankAccount {
    /// Validates like [`BankAccount::parse`].
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BankAccount::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn luhn() {
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
        assert!(luhn_valid("6217000000001236"));
        assert!(luhn_valid("6222020200112345679"));
        assert!(!luhn_valid("6217000000001234"));
        assert!(!luhn_valid(""));
        assert!(!luhn_valid("6217 0000 0000 1236"));
        assert!(luhn_valid("0"));
    }

    #[test]
    fn parse_strips_separators() {
        let a = BankAccount::parse(" 6217 0000-0000 1236 ").unwrap();
        assert_eq!(a.as_str(), "6217000000001236");
        assert!(a.luhn_ok());
        let b = BankAccount::parse("6217000000001234").unwrap();
        assert!(!b.luhn_ok(), "passbook-style numbers parse but fail Luhn");
        assert!(BankAccount::parse("6217\u{3000}0000 0000 1236").is_ok());
    }

    #[test]
    fn parse_rejects() {
        assert_eq!(
            BankAccount::parse("6217a00000001236"),
            Err(AccountError::Format)
        );
        assert_eq!(
            BankAccount::parse("6217.000000001236"),
            Err(AccountError::Format)
        );
        assert_eq!(
            BankAccount::parse("６２１７０００００００１２３６"),
            Err(AccountError::Format)
        );
        assert_eq!(BankAccount::parse(""), Err(AccountError::Length { len: 0 }));
        assert_eq!(
            BankAccount::parse("12345678901"),
            Err(AccountError::Length { len: 11 })
        );
        assert!(BankAccount::parse("123456789012").is_ok());
        assert!(BankAccount::parse(&"1".repeat(30)).is_ok());
        assert_eq!(
            BankAccount::parse(&"1".repeat(31)),
            Err(AccountError::Length { len: 31 })
        );
    }

    #[test]
    fn masked_everywhere() {
        let a = BankAccount::parse("6217000000001234").unwrap();
        assert_eq!(a.masked(), "6217********1234");
        assert_eq!(a.to_string(), "6217********1234");
        assert_eq!(format!("{a:?}"), "BankAccount(6217********1234)");
        let b = BankAccount::parse("6222020200112345679").unwrap();
        assert_eq!(b.masked(), "6222***********5679");
    }

    #[test]
    fn serde_plain() {
        let a = BankAccount::parse("6217000000001234").unwrap();
        let j = serde_json::to_string(&a).unwrap();
        assert_eq!(j, "\"6217000000001234\"");
        assert_eq!(serde_json::from_str::<BankAccount>(&j).unwrap(), a);
        assert!(serde_json::from_str::<BankAccount>("\"12ab\"").is_err());
    }

    proptest! {
        #[test]
        fn masking_hides_the_middle(s in "[0-9]{12,30}") {
            let a = BankAccount::parse(&s).unwrap();
            let m = a.masked();
            prop_assert_eq!(m.chars().count(), s.len());
            prop_assert_eq!(&m[..4], &s[..4]);
            prop_assert_eq!(&m[s.len() - 4..], &s[s.len() - 4..]);
            prop_assert!(m[4..s.len() - 4].bytes().all(|b| b == b'*'));
            let middle = &s[4..s.len() - 4];
            if middle.len() > 4 {
                prop_assert!(!m.contains(middle));
            }
            let dbg = format!("{:?}", a);
            prop_assert!(!dbg.contains(&s));
        }

        #[test]
        fn luhn_detects_single_digit_errors(s in "[0-9]{15}", pos in 0usize..16, delta in 1u8..10) {
            let check = (0..10u8).map(|d| format!("{s}{d}")).find(|c| luhn_valid(c)).unwrap();
            let mut b = check.clone().into_bytes();
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            prop_assert!(!luhn_valid(&String::from_utf8(b).unwrap()));
        }
    }
}
