//! `hybrid-runner remove`: unregisters the GitHub runner of the runner file, as
//! `config.sh remove --token` does, then deletes its three files. The token is a removal
//! or registration token (`--token`, `--token-file` or `ACTIONS_RUNNER_INPUT_TOKEN`). A
//! Gitea or Forgejo runner file is refused: those servers have no API for it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::UsageError;
use super::register::read_token_file;
use super::register_github::{TOKEN_ENV, credential_files, github_client};
use hr_gitea::config;
use hr_gitea::registration::RegistrationLock;
use hr_github::{GitHubUrl, RunnerSettings};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The config file (its runner.file and runner.insecure are used)
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A removal or registration token [env: ACTIONS_RUNNER_INPUT_TOKEN]
    #[arg(long, conflicts_with = "token_file")]
    pub token: Option<String>,
    /// A file holding the token
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = config::load(args.config.as_deref()).map_err(|e| UsageError(e.to_string()))?;
    let config = loaded.config;
    let runner_file = config.runner.file.clone();
    let _lock = RegistrationLock::acquire(&runner_file)?;
    let text = std::fs::read_to_string(&runner_file).map_err(|e| {
        UsageError(format!(
            "cannot read the runner file {}: {e}; nothing to remove",
            runner_file.display()
        ))
    })?;
    let settings = RunnerSettings::parse(&text).map_err(|_| {
        UsageError(format!(
            "{} is not a GitHub runner's file; a Gitea or Forgejo runner is removed in the instance's Settings > Actions > Runners, then its file deleted",
            runner_file.display()
        ))
    })?;
    let url = settings.github_url.clone().ok_or_else(|| {
        UsageError(format!(
            "{} has no gitHubUrl (a JIT runner's file): GitHub deletes such runners after their job",
            runner_file.display()
        ))
    })?;
    let github = GitHubUrl::parse(&url).map_err(|e| UsageError(e.to_string()))?;
    let from_file = read_token_file(args.token_file.as_deref())?;
    let token = args
        .token
        .clone()
        .or(from_file)
        .or_else(|| std::env::var(TOKEN_ENV).ok())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| UsageError(format!("--token, --token-file or {TOKEN_ENV} is required")))?;
    let (http, runtime) = github_client(config.runner.insecure)?;
    let was_there = runtime.block_on(hr_github::unregister(
        &http,
        &github,
        &token,
        settings.agent_id,
    ))?;
    let (credentials, key) = credential_files(&runner_file);
    for file in [&runner_file, &credentials, &key] {
        match std::fs::remove_file(file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot delete {}", file.display())),
        }
    }
    if was_there {
        println!(
            "Runner {} (id {}) removed from {} and its files deleted",
            settings.agent_name, settings.agent_id, github.url
        );
    } else {
        println!(
            "Runner {} (id {}) was already gone from {}; its files are deleted",
            settings.agent_name, settings.agent_id, github.url
        );
    }
    Ok(ExitCode::SUCCESS)
}
