//! Personal and administrative identifiers (DOMAIN.md §3): the resident ID (公民身份号码,
//! GB 11643-1999), the administrative division code (GB/T 2260 and 统计用区划代码), the bank
//! account a social security card carries, and the mobile phone number.
//!
//! Every type here validates on construction, so a value of the type is always well-formed.
//! Types that hold a personal identifier (`ResidentId`, `BankAccount`, `Phone`) print only
//! their masked form through `Debug` and `Display`: the full value is reachable only through
//! `as_str()`, for storage and encryption ("Full identifiers never appear in logs").

pub mod account;
pub mod phone;
pub mod region;
pub mod resident_id;

pub use account::{AccountError, BankAccount, luhn_valid};
pub use phone::{Phone, PhoneError};
pub use region::{RegionCode, RegionError, RegionLevel, is_province_code};
pub use resident_id::{IdError, ParsedId, ResidentId, check_digit};
