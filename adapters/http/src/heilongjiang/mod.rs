//! 黑龙江省: the platform's interface to the budget system (预算管理一体化系统) and, through it,
//! the treasury agent bank. Messages are GB18030 XML modelled on the treasury's electronic
//! voucher 5201 (财政直接支付凭证); the layouts are documented in
//! `provinces/heilongjiang/docs/messages.md`.

pub mod client;
pub mod messages;
pub mod xml;

pub use client::{BudgetSystem, Directory, PlatformDate};
