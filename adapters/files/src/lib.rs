//! # ykt-files
//!
//! File formats of the 一卡通 platform: streaming roster import (xlsx and CSV in UTF-8, UTF-8
//! with BOM, GBK or GB18030), the reference registers (card registry, death register, region
//! table) and exports (the per-line validation report in xlsx, GB18030 CSV and JSON, and
//! generic table writers). See `README.md` next to this crate's `Cargo.toml` for the layouts.
//!
//! Rules kept everywhere: no panic on any input; memory does not grow with a file's size
//! (except calamine's in-memory shared-strings table for xlsx); an encoding is never silently
//! substituted; no error message contains a full resident ID, bank account or phone number.

mod decode;
pub mod error;
pub mod export;
pub mod registry;
pub mod roster;
pub mod table;
mod zipcheck;

pub use error::FileError;
pub use export::{Cell, ReportLine, neutralise};
pub use registry::{Loaded, RowProblem};
pub use roster::RosterReader;
pub use table::{SourceFormat, TableReader, TableRow, TextEncoding};
