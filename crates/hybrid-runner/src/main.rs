use std::process::ExitCode;

fn main() -> ExitCode {
    hybrid_runner::cli::main()
}
