//! `hybrid-runner daemon --github URL --pat-file FILE [--capacity N] [--labels a,b]
//! [--runner-group G] [--name-prefix P]`, or with a GitHub App (`--app-id`,
//! `--app-key-file`, `--installation-id`) instead of a PAT: a pool of ephemeral GitHub
//! runners ([`hr_github::pool`]). Nothing is registered on disk. The first SIGTERM stops
//! taking jobs, lets the running ones finish and deletes every runner of the pool; exit 0.
//! A token GitHub refuses at start-up exits 1; missing or conflicting flags exit 2.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::UsageError;
use super::daemon_github::{daemon_options, serve};
use hr_engine::labels::{self, Label};
use hr_gitea::config::Config;
use hr_github::pool::PoolOptions;
use hr_github::{AdminAuth, GitHubUrl, RunnerAdmin};

/// The pool's flags (all with `--github`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PoolArgs {
    /// Run a pool of ephemeral runners for this repository or organisation
    /// (https://github.com/OWNER[/REPO], or a GitHub Enterprise Server URL)
    #[arg(long, value_name = "URL")]
    pub github: Option<String>,
    /// A file holding a personal access token (repo scope for a repository,
    /// admin:org for an organisation)
    #[arg(long, value_name = "FILE", requires = "github")]
    pub pat_file: Option<PathBuf>,
    /// A GitHub App's id, instead of a PAT (with --app-key-file and --installation-id)
    #[arg(long, value_name = "ID", requires_all = ["github", "app_key_file", "installation_id"], conflicts_with = "pat_file")]
    pub app_id: Option<u64>,
    /// The GitHub App's private key (PEM)
    #[arg(long, value_name = "FILE", requires = "app_id")]
    pub app_key_file: Option<PathBuf>,
    /// The App's installation on the repository or organisation
    #[arg(long, value_name = "ID", requires = "app_id")]
    pub installation_id: Option<u64>,
    /// How many runners at once [default: runner.capacity]
    #[arg(long, value_name = "N", requires = "github")]
    pub capacity: Option<usize>,
    /// The runner group of the pool's runners [default: Default]
    #[arg(long, value_name = "GROUP", requires = "github")]
    pub runner_group: Option<String>,
    /// Runner names are PREFIX-<slot>-<random> [default: the host name]
    #[arg(long, value_name = "PREFIX", requires = "github")]
    pub name_prefix: Option<String>,
}

fn read_secret(flag: &str, path: &Path) -> Result<String, UsageError> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_string())
        .map_err(|e| UsageError(format!("cannot read {flag} {}: {e}", path.display())))
}

/// Runs the pool until a signal.
pub fn run(
    config: &Config,
    args: &PoolArgs,
    url: &str,
    labels: &[String],
    envs: Vec<(String, String)>,
) -> anyhow::Result<ExitCode> {
    let github = GitHubUrl::parse(url).map_err(|e| UsageError(e.to_string()))?;
    let auth = match (&args.pat_file, args.app_id) {
        (Some(file), None) => AdminAuth::Pat(read_secret("--pat-file", file)?),
        (None, Some(app_id)) => {
            let (Some(key), Some(installation_id)) = (&args.app_key_file, args.installation_id)
            else {
                return Err(UsageError(
                    "--app-id needs --app-key-file and --installation-id".into(),
                )
                .into());
            };
            AdminAuth::App {
                app_id,
                key_pem: read_secret("--app-key-file", key)?,
                installation_id,
            }
        }
        _ => {
            return Err(UsageError(
                "--github needs --pat-file FILE, or --app-id, --app-key-file and --installation-id"
                    .into(),
            )
            .into());
        }
    };
    let texts: Vec<String> = if labels.is_empty() {
        vec!["self-hosted:host".to_string()]
    } else {
        labels.to_vec()
    };
    let parsed = Label::parse_all(&texts).map_err(|e| UsageError(e.to_string()))?;
    let prefix = args.name_prefix.clone().unwrap_or_else(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "hybrid-runner".to_string())
    });
    let options = PoolOptions {
        capacity: args.capacity.unwrap_or(config.runner.capacity).max(1),
        labels: labels::names(&parsed),
        runner_group: args.runner_group.clone(),
        runner: daemon_options(config, &prefix, parsed, envs, None),
        name_prefix: prefix,
        retry: Duration::from_secs(2),
    };
    serve(config, |http, stop, hard| async move {
        let admin = RunnerAdmin::new(&github, auth).map_err(|e| e.to_string())?;
        hr_github::pool::run(http, admin, options, stop, hard)
            .await
            .map(|()| "the pool stopped and its runners are deleted")
            .map_err(|e| e.to_string())
    })
}
