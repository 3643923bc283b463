//! # ykt-sim: the outside systems, simulated as real network peers
//!
//! Each simulator speaks the same protocol as the production system it stands for (HTTP with
//! the documented message layouts, or a file drop), so the platform's adapters are exercised
//! exactly as in production. Simulators are seeded: the same seed gives the same failures, and
//! fault modes (failed lines, duplicated, reordered or truncated results, timeouts) are
//! switched on explicitly.
//!
//! Simulators start on `127.0.0.1:0` (an ephemeral port) and report their address; dropping the
//! returned handle stops them.

#[cfg(feature = "heilongjiang")]
pub mod heilongjiang;
pub mod henan;
pub mod server;
pub mod sichuan;
