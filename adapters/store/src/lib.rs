//! # ykt-store
//!
//! The SQL store: one repository API over SQLite (embedded; a county or a demo) and
//! PostgreSQL (a province), selected by the URL given to [`Store::connect`]. Migrations for
//! each backend live in `migrations/sqlite` and `migrations/postgres` and are applied on start.
//!
//! - [`db`]: pool, write transactions ([`Tx`]) and the dispatch macros that let each query be
//!   written once for both backends; start there when adding a repository.
//! - [`vault`]: personal identifiers (resident ID, card number, account, phone) are stored
//!   only encrypted (AES-256-GCM) with a keyed blind index for lookups; the master key stays
//!   out of the database.
//! - [`imports`]: streaming, all-or-nothing, at-most-once bulk imports (multi-row `INSERT` on
//!   SQLite, `COPY` on PostgreSQL).
//! - [`registers`]: regions, the card registry snapshot and the death register.
//! - [`payments`]: rosters, batches (one per county), payment lines, workflow steps and the
//!   double-entry ledger; the cross-check lookups (`ReferenceData`) intake runs against.
//! - [`audit`]: the hash-chained, append-only audit log.
//! - [`users`]: operator accounts.
//! - [`heilongjiang`]: Heilongjiang's budget-system message archive, the agent bank's returns,
//!   the read models of its supervision indicators and clearing statement.
//! - [`henan`]: Henan's project library, agent banks, orders, pulls, results, hand-overs.
//! - [`testing`]: run a test on both backends.
//!
//! **Invariants**: money is integer 分 (`BIGINT`) in storage, never a float; no full personal
//! identifier is stored in clear, logged or put into an error.

pub mod audit;
pub mod console;
pub mod cycle;
pub mod db;
pub mod disclosure;
pub mod error;
pub mod failpoints;
pub mod heilongjiang;
pub mod henan;
pub mod idempotency;
pub mod imports;
pub mod payments;
pub mod registers;
pub mod sessions;
pub mod sichuan;
pub mod testing;
pub mod users;
pub mod vault;

pub use db::{Backend, Store, Tx};
pub use error::StoreError;
pub use imports::{ImportMeta, ImportOutcome, kinds, ok_rows};
pub use users::UserRow;
pub use vault::{IndexKind, KeyFile, Vault};
