//! # ykt-kernel
//!
//! The domain of 惠民惠农财政补贴资金「一卡通」: identifiers, the catalogue, roster validation,
//! batches and payment lines, the double-entry ledger, the workflow engine, the audit chain,
//! and the four ports (`CardRegistry`, `TreasuryPayment`, `BankAgent`, `DisclosureChannel`)
//! through which provinces and adapters plug in.
//!
//! **Architecture invariant**: this crate does no I/O and owns no async runtime. It knows
//! nothing of SQL, HTTP or files; it is pure logic plus trait definitions.

pub mod actor;
pub mod audit;
pub mod batch;
pub mod card;
pub mod catalog;
pub mod ident;
pub mod intake;
pub mod ledger;
pub mod mask;
pub mod money;
pub mod period;
pub mod ports;
pub mod province;
pub mod reason;
pub mod roster;
pub mod workflow;

pub use actor::{Role, User};
pub use batch::{BatchState, LineState, Tally, Totals};
pub use catalog::{Catalog, Project};
pub use ident::{BankAccount, Phone, RegionCode, RegionLevel, ResidentId};
pub use money::{Fen, Yuan};
pub use period::{Period, PeriodKind};
pub use province::{FundingModel, Province, ProvinceConfig, ProvinceDescriptor, provinces};
pub use reason::{FollowUp, ReasonCode, Severity};
pub use roster::{Column, Issue, RawLine, RawLineRef};

/// Re-exported so province crates can `inventory::submit!` without their own dependency
/// version drifting.
pub use inventory;
