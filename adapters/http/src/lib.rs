//! # ykt-http: HTTP adapters
//!
//! Clients of the outside systems, implementing the kernel's ports over HTTP (one module per
//! province protocol), and the platform's own HTTP interfaces (the bank pull interface, the
//! operator console and JSON API in [`web`]).
//!
//! **Architecture invariant**: protocol details (message layouts, encodings) live here and in
//! the simulators that mirror them; the kernel and province crates never see bytes on a wire.

pub mod client;
#[cfg(feature = "heilongjiang")]
pub mod heilongjiang;
#[cfg(feature = "henan")]
pub mod henan;
pub mod portal;
pub mod server;
pub mod sichuan;
pub mod web;
