//! `ykt`: the yikatong command line. See `ykt --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    yikatong::cli::main()
}
