//! `hybrid-runner register --github URL --token TOKEN`: registers a runner with GitHub on
//! the runner-admin flow, as `config.sh --url --token` does, and writes actions/runner's
//! three files: the runner file (`runner.file`, default `.runner`), and `.credentials` and
//! `.credentials_rsaparams` in the same folder, each mode 0600, under the runner file's
//! lock. The labels given (`name` or `name:host`, `name:kubernetes://image`, as for Gitea)
//! are registered by name after `self-hosted`, `Linux` and the architecture, and kept in
//! the runner file's `labels` (a field actions/runner ignores) for the daemon's placement.
//!
//! The token comes from `--token`, `--token-file` or `ACTIONS_RUNNER_INPUT_TOKEN` (the
//! variable actions/runner reads `--token` from); the name defaults to the host name.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use super::UsageError;
use super::register::{Args, Prompt, comma_list, read_token_file, runner_name};
use hr_engine::labels::{self, Label};
use hr_gitea::config::Config;
use hr_gitea::registration::write_private;
use hr_github::registration::DEFAULT_RUNNER_VERSION;
use hr_github::{GitHubUrl, Registered, RunnerRequest, RunnerSettings};

/// The variable actions/runner reads the registration token from.
pub const TOKEN_ENV: &str = "ACTIONS_RUNNER_INPUT_TOKEN";

/// The HTTP client for GitHub and a runtime to drive it.
pub fn github_client(
    insecure: bool,
) -> anyhow::Result<(hr_github::reqwest::Client, tokio::runtime::Runtime)> {
    hr_cluster::install_crypto_provider();
    let http = hr_github::http_client(insecure).context("cannot create an HTTP client")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok((http, runtime))
}

/// The credential files beside `runner_file`.
pub fn credential_files(runner_file: &Path) -> (PathBuf, PathBuf) {
    let folder = match runner_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    (
        folder.join(".credentials"),
        folder.join(".credentials_rsaparams"),
    )
}

pub(super) fn run(
    args: &Args,
    url: &str,
    config: &Config,
    runner_file: &Path,
) -> anyhow::Result<ExitCode> {
    let github = GitHubUrl::parse(url).map_err(|e| UsageError(e.to_string()))?;
    if args.keep_existing && runner_file.exists() {
        let text = std::fs::read_to_string(runner_file)
            .with_context(|| format!("cannot read {}", runner_file.display()))?;
        let existing = RunnerSettings::parse(&text)
            .context("--keep-existing: the runner file exists but cannot be used; delete it to register again")?;
        eprintln!(
            "kept the registration of {} (id {}) in {}",
            existing.agent_name,
            existing.agent_id,
            runner_file.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let stdin = std::io::stdin();
    let mut prompt = Prompt {
        input: stdin.lock(),
        output: std::io::stderr(),
        interactive: !args.no_interactive,
    };
    let from_file = read_token_file(args.token_file.as_deref())?;
    let token = prompt.value(
        args.token
            .clone()
            .or(from_file)
            .or_else(|| std::env::var(TOKEN_ENV).ok()),
        "Enter the registration token (Settings > Actions > Runners > New self-hosted runner):",
        &format!("--token, --token-file or {TOKEN_ENV} is required with --no-interactive"),
        None,
    )?;
    let name = runner_name(args, &mut prompt)?;
    let texts: Vec<String> = if config.runner.labels.is_empty() {
        comma_list(args.labels.as_deref().unwrap_or_default())
            .into_iter()
            .map(str::to_string)
            .collect()
    } else {
        if args.labels.is_some() {
            eprintln!("warning: --labels is ignored: the config file sets runner.labels");
        }
        config.runner.labels.clone()
    };
    let labels = Label::parse_for_registration(&texts).map_err(|e| UsageError(e.to_string()))?;
    drop(prompt);

    let request = RunnerRequest {
        name,
        labels: labels::names(&labels),
        ephemeral: args.ephemeral,
        disable_update: true,
        runner_group: args.runner_group.clone(),
        version: DEFAULT_RUNNER_VERSION.to_string(),
    };
    let (http, runtime) = github_client(config.runner.insecure)?;
    let registered = runtime.block_on(hr_github::register(&http, &github, &token, &request))?;
    if runner_file.exists() {
        eprintln!("replacing the registration in {}", runner_file.display());
    }
    save(runner_file, &registered, &labels)?;
    let s = &registered.settings;
    if args.json {
        let report = serde_json::json!({
            "id": s.agent_id,
            "name": s.agent_name,
            "github_url": s.github_url,
            "runner_group": s.pool_name,
            "labels": labels.iter().map(Label::to_spec).collect::<Vec<_>>(),
            "ephemeral": s.ephemeral,
            "file": runner_file,
        });
        println!("{report:#}");
    } else {
        println!(
            "Runner registered successfully: {} (id {}) for {} in group {}, saved in {}",
            s.agent_name,
            s.agent_id,
            github.url,
            s.pool_name.as_deref().unwrap_or("?"),
            runner_file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the three files; the key and credentials first, so a runner file never names
/// credentials that are not there.
fn save(runner_file: &Path, registered: &Registered, labels: &[Label]) -> anyhow::Result<()> {
    let (credentials, key) = credential_files(runner_file);
    let key_text = hr_github::files::with_bom(&registered.key.to_rsa_parameters());
    write_private(&key, &key_text).with_context(|| format!("cannot write {}", key.display()))?;
    write_private(&credentials, &registered.credentials.to_file())
        .with_context(|| format!("cannot write {}", credentials.display()))?;
    let mut settings = registered.settings.to_json();
    settings.insert(
        "labels".to_string(),
        labels.iter().map(Label::to_spec).collect(),
    );
    write_private(
        runner_file,
        &hr_github::files::with_bom(&serde_json::Value::Object(settings)),
    )
    .with_context(|| format!("cannot write {}", runner_file.display()))?;
    Ok(())
}
