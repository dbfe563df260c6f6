//! Command-line entry point: parses flags and dispatches to a command.

use std::process::ExitCode;

pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
