//! The `hybrid-runner` command line the end-to-end tests run: the tests crate's own
//! `hybrid-runner-cli` binary (src/bin/hybrid-runner-cli.rs, the same `cli::main` as the
//! real binary), which Cargo builds before it runs any integration test of this crate.
//! [`bin`] is the one place that knows where it is.

use std::path::PathBuf;
use std::process::Command;

/// The binary's name in the tests crate.
pub const BIN_NAME: &str = "hybrid-runner-cli";

/// The path of the `hybrid-runner-cli` binary: `CARGO_BIN_EXE_hybrid-runner-cli` when
/// Cargo passes it at run time, else the binary beside the running test executable's
/// `deps/` folder (where Cargo puts a package's binaries, debug and release alike).
pub fn bin() -> PathBuf {
    if let Some(path) = std::env::var_os(format!("CARGO_BIN_EXE_{BIN_NAME}")) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the path of the running test executable");
    let mut dir = exe
        .parent()
        .expect("the test executable sits in a folder")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(format!("{BIN_NAME}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: build the tests crate's binaries (cargo test -p hybrid-runner-tests builds them)",
        path.display()
    );
    path
}

/// `hybrid-runner` with no arguments yet, started in the system's temporary folder unless
/// the caller sets `current_dir`: a command that writes relative to where it runs (a
/// `.runner` file, a rendered manifest, a build context) never lands in the repository.
pub fn command() -> Command {
    let mut command = Command::new(bin());
    command.current_dir(std::env::temp_dir());
    command
}

/// [`command`] for async tests.
pub fn tokio_command() -> tokio::process::Command {
    tokio::process::Command::from(command())
}
