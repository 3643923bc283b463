//! `ykt`: the yikatong command line. See `ykt --help`.

use std::process::ExitCode;

/// mimalloc instead of glibc's allocator: with a large heap (a card registry in memory, a
/// million-line import) glibc spent 40-55 % of the validation coalescing freed chunks
/// (`malloc_consolidate`); see BENCHMARKS.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Crash points (`FAILPOINTS`) exist only in the test build; elsewhere this does nothing.
    let _failpoints = ykt_store::failpoints::setup();
    yikatong::cli::main()
}
