//! Integration tests of ykt-store, each run on SQLite and (when reachable) PostgreSQL through
//! `ykt_store::testing::each_backend`.

mod audit;
mod common;
mod cycle;
mod henan_detail;
mod imports;
mod pii;
mod schema;
mod sichuan;
