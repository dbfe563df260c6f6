//! `hybrid-runner generate-config`: prints the commented default configuration (act_runner's
//! keys where they mean the same, plus `kubernetes:`), to be saved as `config.yaml`.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    print!("{}", hr_gitea::config::generate());
    Ok(ExitCode::SUCCESS)
}
