//! # yikatong: the composition root
//!
//! The `ykt` binary wires the kernel, the compiled-in province crates and the adapters
//! together: configuration, the CLI, the intake service and the demo. Business rules live in
//! the kernel and the province crates; I/O lives in the adapters; this crate only composes.

/// `println!` for command output: a closed pipe (`ykt ... | head`) ends the process quietly
/// instead of panicking.
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($t)*) {
            $crate::output_failed(e);
        }
    }};
}

/// `print!` for command output (see [`outln!`]).
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($t)*) {
            $crate::output_failed(e);
        }
    }};
}

/// Standard output failed: a reader that went away is not an error of ours.
pub fn output_failed(e: std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("无法写入标准输出 (cannot write to stdout): {e}");
    std::process::exit(2);
}

pub mod bench;
pub mod cli;
pub mod config;
pub mod cycle;
pub mod demo;
pub mod intake;
pub mod output;
pub mod portal;
pub mod ports;
pub mod provinces;
pub mod registers;
pub mod web;

use ykt_kernel::province::{Province, ProvinceConfig, ProvinceDescriptor, ProvinceError};

// One line per province: referencing the crate keeps the linker from dropping its
// `inventory::submit!` (STYLE.md: a dependency that is never referenced is not linked).
#[cfg(feature = "province-heilongjiang")]
pub use ykt_province_heilongjiang as heilongjiang;
#[cfg(feature = "province-henan")]
pub use ykt_province_henan as henan;
#[cfg(feature = "province-sichuan")]
pub use ykt_province_sichuan as sichuan;

#[cfg(not(any(
    feature = "province-heilongjiang",
    feature = "province-sichuan",
    feature = "province-henan"
)))]
compile_error!(
    "build ykt with at least one province feature: province-heilongjiang, province-sichuan or province-henan"
);

/// Make sure every compiled-in province crate is linked (its registration is a static the
/// linker would otherwise be free to discard).
pub fn ensure_linked() {
    #[cfg(feature = "province-heilongjiang")]
    std::hint::black_box(heilongjiang::catalog as fn() -> _);
    #[cfg(feature = "province-sichuan")]
    std::hint::black_box(sichuan::catalog as fn() -> _);
    #[cfg(feature = "province-henan")]
    std::hint::black_box(henan::catalog as fn() -> _);
}

/// The compiled-in provinces, sorted by code.
pub fn provinces() -> Vec<&'static ProvinceDescriptor> {
    ensure_linked();
    ykt_kernel::provinces()
}

/// Pick the province: the one named, the configured one, or the only one compiled in.
pub fn select_province(
    named: Option<&str>,
    cfg: &config::Config,
) -> Result<&'static ProvinceDescriptor, ProvinceError> {
    ensure_linked();
    match named.or(cfg.province.as_deref()) {
        Some(code) => ykt_kernel::province::find_province(code),
        None => {
            let all = provinces();
            match all.as_slice() {
                [only] => Ok(*only),
                _ => Err(ProvinceError::Unknown(
                    "(未指定 --province)".into(),
                    all.iter().map(|d| d.code).collect::<Vec<_>>().join(", "),
                )),
            }
        }
    }
}

/// Build a province plug-in from configuration.
pub fn build_province(
    d: &ProvinceDescriptor,
    cfg: &config::Config,
) -> Result<Box<dyn Province>, ProvinceError> {
    (d.build)(&ProvinceConfig {
        settings: cfg.province_settings.clone(),
        extra_projects: Vec::new(),
    })
}
