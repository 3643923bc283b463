//! `ykt`: the yikatong command line. See `ykt --help`.

use std::process::ExitCode;

/// mimalloc instead of glibc's allocator: with a large heap (a card registry in memory, a
/// million-line import) glibc spent 40-55 % of the validation coalescing freed chunks
/// (`malloc_consolidate`); see BENCHMARKS.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// glibc's malloc still serves the C code (SQLite): a large blob read or written (an
/// archived province-scale message is tens of MB) is a large allocation, and after the first
/// one is freed glibc raises its mmap threshold to that size, so later ones come from the
/// per-thread arenas (one per SQLite connection's worker thread) and stay resident after they
/// are freed. A fixed threshold keeps allocations of 4 MiB and more in their own mappings,
/// returned when freed (the HLJ 50k cycle's peak fell by a quarter; BENCHMARKS.md).
///
/// And at most two arenas: glibc gives each thread that allocates its own arena of up to
/// 64 MiB, so each of the pool's SQLite connection threads kept one resident (eight of them
/// were 520 MB of a 1M-line Heilongjiang cycle's 950 MB, BENCHMARKS.md eighth round); shared
/// arenas reuse what one connection freed for the next.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fix_c_mmap_threshold() {
    // SAFETY: mallopt only sets parameters of glibc's allocator; called before any thread
    // starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        // See above: Henan's 100k-line cycle also peaked 48 MB lower (331 -> 283 MB).
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fix_c_mmap_threshold() {}

fn main() -> ExitCode {
    fix_c_mmap_threshold();
    // Crash points (`FAILPOINTS`) exist only in the test build; elsewhere this does nothing.
    let _failpoints = ykt_store::failpoints::setup();
    yikatong::cli::main()
}
