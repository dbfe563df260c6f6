//! The `hybrid-runner` command line, built inside the tests crate: Cargo gives integration
//! tests the path of their own package's binaries only (`CARGO_BIN_EXE_<name>`), so the
//! end-to-end tests here run this one. It is the same `cli::main` as the real binary.

use std::process::ExitCode;

fn main() -> ExitCode {
    hybrid_runner::cli::main()
}
