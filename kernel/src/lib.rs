//! # ykt-kernel
//!
//! The domain of 惠民惠农财政补贴资金「一卡通」: identifiers, the catalogue, roster validation,
//! batches and payment lines, the double-entry ledger, the workflow engine, the audit chain,
//! and the four ports (`CardRegistry`, `TreasuryPayment`, `BankAgent`, `DisclosureChannel`)
//! through which provinces and adapters plug in.
//!
//! **Architecture invariant**: this crate does no I/O and owns no async runtime. It knows
//! nothing of SQL, HTTP or files; it is pure logic plus trait definitions.

pub mod audit;
pub mod card;
pub mod ident;
pub mod mask;
pub mod money;
pub mod period;
pub mod reason;
pub mod roster;

pub use ident::{BankAccount, Phone, RegionCode, RegionLevel, ResidentId};
pub use money::{Fen, Yuan};
pub use period::{Period, PeriodKind};
pub use reason::{FollowUp, ReasonCode, Severity};
pub use roster::{Column, Issue, RawLine};
