//! `hybrid-runner register`: trades a Gitea/Forgejo registration token for a runner identity
//! and stores it in the runner file (`runner.file`, default `.runner`) in act_runner's format;
//! with `--github URL`, a GitHub registration token for actions/runner's files
//! ([`super::register_github`]).
//!
//! Inputs, as act_runner takes them: `--instance`, `--token` (or `--token-file`, or the
//! `GITEA_RUNNER_REGISTRATION_TOKEN` variable), `--name` (default: the host name),
//! `--labels` (a comma list; labels in the config file win), `--ephemeral`. Without
//! `--no-interactive`, values not given are asked for on stdin; with it, a missing value is
//! a usage error (exit 2). The server is pinged first (retried every second while it is
//! unreachable), then `Register` is called and the file written atomically, mode 0600,
//! under the runner file's lock. `--keep-existing` leaves a usable runner file alone (the
//! init container of the in-cluster StatefulSet runs on every pod start).

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use super::UsageError;
use hr_engine::labels::DEFAULT_LABELS;
use hr_engine::labels::{self, Label};
use hr_gitea::config;
use hr_gitea::proto::runner::v1::RegisterRequest;
use hr_gitea::registration::{self, Registration, RegistrationLock};
use hr_gitea::{ClientOptions, RpcError, RunnerClient, client};

/// The variable act_runner reads the registration token from.
pub const TOKEN_ENV: &str = "GITEA_RUNNER_REGISTRATION_TOKEN";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The config file (its runner.file, runner.labels and runner.insecure are used)
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The Gitea or Forgejo instance, e.g. https://gitea.example.com
    #[arg(long, value_name = "URL", conflicts_with = "github")]
    pub instance: Option<String>,
    /// Register with GitHub instead: https://github.com/OWNER[/REPO], an enterprise
    /// (https://github.com/enterprises/NAME), or a GitHub Enterprise Server URL
    #[arg(long, value_name = "URL")]
    pub github: Option<String>,
    /// The GitHub runner group [default: the default group]
    #[arg(long, value_name = "GROUP", requires = "github")]
    pub runner_group: Option<String>,
    /// The registration token [env: GITEA_RUNNER_REGISTRATION_TOKEN]
    #[arg(long, conflicts_with = "token_file")]
    pub token: Option<String>,
    /// A file holding the registration token
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The runner's name [default: the host name]
    #[arg(long)]
    pub name: Option<String>,
    /// Labels, comma-separated: name:host, name:docker://image, name:kubernetes,
    /// name:kubernetes://image [default: ubuntu-latest:host,self-hosted:host]
    #[arg(long)]
    pub labels: Option<String>,
    /// Register an ephemeral runner: the server deletes it after its one task
    #[arg(long)]
    pub ephemeral: bool,
    /// Never ask on stdin; a missing value is a usage error
    #[arg(long)]
    pub no_interactive: bool,
    /// When the runner file already holds a registration, keep it and exit 0 without
    /// contacting the instance (for an init container that runs on every pod start)
    #[arg(long)]
    pub keep_existing: bool,
    /// How many times to ping the instance, a second apart, before giving up
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub ping_attempts: u32,
    /// Print the result as JSON (never the token)
    #[arg(long)]
    pub json: bool,
}

/// Everything `Register` needs, resolved from flags, config, environment and prompts.
#[derive(Debug, Clone, PartialEq)]
struct Inputs {
    instance: String,
    token: String,
    name: String,
    labels: Vec<Label>,
    ephemeral: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = config::load(args.config.as_deref()).map_err(|e| UsageError(e.to_string()))?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let config = loaded.config;
    let runner_file = config.runner.file.clone();
    // Taken before anything else: a daemon using this file, or a second registration,
    // must not race this one.
    let _lock = RegistrationLock::acquire(&runner_file)?;
    if let Some(url) = &args.github {
        return super::register_github::run(&args, url, &config, &runner_file);
    }

    if args.keep_existing && runner_file.exists() {
        // A file that does not load is not kept: it would stop the daemon anyway.
        let existing = Registration::load(&runner_file)
            .context("--keep-existing: the runner file exists but cannot be used; delete it to register again")?;
        eprintln!(
            "kept the registration of {} (id {}) at {} in {}",
            existing.name,
            existing.id,
            existing.address,
            runner_file.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let env_token = std::env::var(TOKEN_ENV).ok();
    let stdin = std::io::stdin();
    let mut prompt = Prompt {
        input: stdin.lock(),
        output: std::io::stderr(),
        interactive: !args.no_interactive,
    };
    if prompt.interactive && runner_file.exists() {
        let answer = prompt.ask(&format!(
            "{} already holds a registration; replace it? [y/N]",
            runner_file.display()
        ))?;
        if !answer.eq_ignore_ascii_case("y") && !answer.eq_ignore_ascii_case("yes") {
            eprintln!("kept {}", runner_file.display());
            return Ok(ExitCode::SUCCESS);
        }
    }
    let inputs = resolve(&args, &config.runner.labels, env_token, &mut prompt)?;
    drop(prompt);

    let client = RunnerClient::new(
        &inputs.instance,
        ClientOptions {
            insecure: config.runner.insecure,
            ..ClientOptions::default()
        },
    )
    .map_err(|e| UsageError(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let registration = runtime.block_on(register(&client, &inputs, args.ping_attempts))?;
    if runner_file.exists() {
        eprintln!("replacing the registration in {}", runner_file.display());
    }
    registration.save(&runner_file)?;
    if args.json {
        let report = serde_json::json!({
            "id": registration.id,
            "uuid": registration.uuid,
            "name": registration.name,
            "address": registration.address,
            "labels": registration.labels,
            "ephemeral": registration.ephemeral,
            "file": runner_file,
        });
        println!("{report:#}");
    } else {
        println!(
            "Runner registered successfully: {} (id {}) at {}, saved in {}",
            registration.name,
            registration.id,
            registration.address,
            runner_file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Ping (retrying while the server is unreachable), then Register.
async fn register(
    client: &RunnerClient,
    inputs: &Inputs,
    ping_attempts: u32,
) -> anyhow::Result<Registration> {
    ping_until_up(client, ping_attempts.max(1), Duration::from_secs(1)).await?;
    let request = RegisterRequest {
        name: inputs.name.clone(),
        token: inputs.token.clone(),
        version: client::VERSION.to_string(),
        labels: labels::names(&inputs.labels),
        ephemeral: inputs.ephemeral,
        // The daemon's Declare states the capabilities on every start.
        capabilities: Vec::new(),
        ..Default::default()
    };
    let response = client.register(&request).await.map_err(|e| {
        anyhow::Error::new(e).context(
            "the instance refused the registration; check the token (Settings → Actions → Runners) and that it belongs to this instance",
        )
    })?;
    let runner = response.runner.ok_or_else(|| {
        anyhow::anyhow!("the instance answered Register without a runner; is it Gitea or Forgejo?")
    })?;
    if runner.uuid.is_empty() || runner.token.is_empty() {
        anyhow::bail!("the instance answered Register without the runner's uuid or token");
    }
    if inputs.ephemeral && !runner.ephemeral {
        eprintln!(
            "warning: the instance did not confirm the ephemeral registration (Gitea before 1.24?); the daemon will still run one task and exit"
        );
    }
    Ok(Registration {
        warning: registration::WARNING.to_string(),
        id: runner.id,
        uuid: runner.uuid,
        name: if runner.name.is_empty() {
            inputs.name.clone()
        } else {
            runner.name
        },
        token: runner.token,
        address: inputs.instance.clone(),
        labels: inputs.labels.iter().map(Label::to_spec).collect(),
        ephemeral: inputs.ephemeral,
        other: Default::default(),
    })
}

/// Pings until the server answers; only transient failures (network, timeouts, 5xx) are
/// retried, `interval` apart, at most `attempts` times in all.
async fn ping_until_up(
    client: &RunnerClient,
    attempts: u32,
    interval: Duration,
) -> Result<(), RpcError> {
    let mut attempt = 1;
    loop {
        match client.ping("hybrid-runner").await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_transient() && attempt < attempts => {
                eprintln!(
                    "cannot ping {} (attempt {attempt}/{attempts}): {e}; retrying",
                    client.base_url()
                );
                attempt += 1;
                tokio::time::sleep(interval).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Asks for values on `input`, or refuses when not interactive.
pub(super) struct Prompt<R, W> {
    pub(super) input: R,
    pub(super) output: W,
    pub(super) interactive: bool,
}

impl<R: BufRead, W: Write> Prompt<R, W> {
    /// One trimmed line after printing `question`.
    pub(super) fn ask(&mut self, question: &str) -> Result<String, UsageError> {
        let _ = write!(self.output, "{question} ");
        let _ = self.output.flush();
        let mut line = String::new();
        let read = self
            .input
            .read_line(&mut line)
            .map_err(|e| UsageError(format!("cannot read stdin: {e}")))?;
        if read == 0 {
            return Err(UsageError(
                "stdin closed before every value was given; pass them as flags with --no-interactive"
                    .to_string(),
            ));
        }
        Ok(line.trim().to_string())
    }

    /// `given`, else the answer to `question` (`missing` when not interactive), else
    /// `default` for an empty answer.
    pub(super) fn value(
        &mut self,
        given: Option<String>,
        question: &str,
        missing: &str,
        default: Option<&str>,
    ) -> Result<String, UsageError> {
        if let Some(v) = given.filter(|v| !v.trim().is_empty()) {
            return Ok(v.trim().to_string());
        }
        if !self.interactive {
            return match default {
                Some(d) => Ok(d.to_string()),
                None => Err(UsageError(missing.to_string())),
            };
        }
        loop {
            let answer = self.ask(question)?;
            match (answer.is_empty(), default) {
                (false, _) => return Ok(answer),
                (true, Some(d)) => return Ok(d.to_string()),
                (true, None) => continue,
            }
        }
    }
}

/// The contents of `--token-file`, trimmed, when given.
pub(super) fn read_token_file(
    path: Option<&std::path::Path>,
) -> Result<Option<String>, UsageError> {
    path.map(|path| {
        std::fs::read_to_string(path)
            .map(|t| t.trim().to_string())
            .map_err(|e| UsageError(format!("cannot read --token-file {}: {e}", path.display())))
    })
    .transpose()
}

/// `--name`, else asked for, else the host name.
pub(super) fn runner_name<R: BufRead, W: Write>(
    args: &Args,
    prompt: &mut Prompt<R, W>,
) -> Result<String, UsageError> {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hybrid-runner".to_string());
    prompt.value(
        args.name.clone(),
        &format!("Enter the runner name [{host}]:"),
        "",
        Some(&host),
    )
}

/// The non-empty items of a comma-separated list, trimmed.
pub(super) fn comma_list(text: &str) -> Vec<&str> {
    text.split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

fn resolve<R: BufRead, W: Write>(
    args: &Args,
    config_labels: &[String],
    env_token: Option<String>,
    prompt: &mut Prompt<R, W>,
) -> Result<Inputs, UsageError> {
    let instance = prompt.value(
        args.instance.clone(),
        "Enter the Gitea instance URL (for example, https://gitea.com/):",
        "--instance is required with --no-interactive",
        None,
    )?;
    let instance = instance.trim_end_matches('/').to_string();
    if !(instance.starts_with("http://") || instance.starts_with("https://")) {
        return Err(UsageError(format!(
            "--instance {instance:?} is not an http:// or https:// URL"
        )));
    }
    let from_file = read_token_file(args.token_file.as_deref())?;
    let token = prompt.value(
        args.token.clone().or(from_file).or(env_token),
        "Enter the runner token:",
        &format!("--token, --token-file or {TOKEN_ENV} is required with --no-interactive"),
        None,
    )?;
    let name = runner_name(args, prompt)?;
    let labels = if !config_labels.is_empty() {
        if args.labels.is_some() {
            eprintln!("warning: --labels is ignored: the config file sets runner.labels");
        }
        Label::parse_for_registration(config_labels).map_err(|e| UsageError(e.to_string()))?
    } else {
        let default = DEFAULT_LABELS.join(",");
        let text = prompt.value(
            args.labels.clone(),
            &format!("Enter the runner labels, comma-separated [{default}]:"),
            "",
            Some(&default),
        )?;
        let texts = comma_list(&text);
        let labels =
            Label::parse_for_registration(&texts).map_err(|e| UsageError(e.to_string()))?;
        if labels.is_empty() {
            return Err(UsageError("--labels names no label".to_string()));
        }
        labels
    };
    Ok(Inputs {
        instance,
        token,
        name,
        labels,
        ephemeral: args.ephemeral,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(argv: &[&str]) -> Args {
        let mut full = vec!["register"];
        full.extend_from_slice(argv);
        Cli::parse_from(full).args
    }

    fn prompt(input: &str, interactive: bool) -> Prompt<&[u8], Vec<u8>> {
        Prompt {
            input: input.as_bytes(),
            output: Vec::new(),
            interactive,
        }
    }

    #[test]
    fn flags_alone_without_prompts() {
        let a = args(&[
            "--no-interactive",
            "--instance",
            "http://gitea:3000/",
            "--token",
            "t0k",
            "--name",
            "r1",
            "--labels",
            "a:host,b:kubernetes://img",
            "--ephemeral",
        ]);
        let mut p = prompt("", false);
        let inputs = resolve(&a, &[], None, &mut p).unwrap();
        assert_eq!(inputs.instance, "http://gitea:3000");
        assert_eq!(inputs.token, "t0k");
        assert_eq!(inputs.name, "r1");
        assert_eq!(labels::names(&inputs.labels), ["a", "b"]);
        assert!(inputs.ephemeral);
        assert!(p.output.is_empty());
    }

    #[test]
    fn missing_values_are_usage_errors_without_interaction() {
        let a = args(&["--no-interactive", "--token", "t"]);
        let err = resolve(&a, &[], None, &mut prompt("", false)).unwrap_err();
        assert!(err.0.contains("--instance is required"), "{err}");
        let a = args(&["--no-interactive", "--instance", "https://g"]);
        let err = resolve(&a, &[], None, &mut prompt("", false)).unwrap_err();
        assert!(err.0.contains(TOKEN_ENV), "{err}");
    }

    #[test]
    fn token_from_env_or_file_and_defaults() {
        let a = args(&["--no-interactive", "--instance", "https://g"]);
        let inputs = resolve(&a, &[], Some("envtok".into()), &mut prompt("", false)).unwrap();
        assert_eq!(inputs.token, "envtok");
        assert!(!inputs.name.is_empty());
        assert_eq!(
            inputs.labels.iter().map(Label::to_spec).collect::<Vec<_>>(),
            DEFAULT_LABELS
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "filetok\n").unwrap();
        let a = args(&[
            "--no-interactive",
            "--instance",
            "https://g",
            "--token-file",
            file.to_str().unwrap(),
        ]);
        let inputs = resolve(&a, &[], Some("envtok".into()), &mut prompt("", false)).unwrap();
        assert_eq!(inputs.token, "filetok");
    }

    #[test]
    fn config_labels_win_over_the_flag() {
        let a = args(&[
            "--no-interactive",
            "--instance",
            "https://g",
            "--token",
            "t",
            "--labels",
            "x:host",
        ]);
        let inputs = resolve(&a, &["k:kubernetes".into()], None, &mut prompt("", false)).unwrap();
        assert_eq!(labels::names(&inputs.labels), ["k"]);
    }

    #[test]
    fn interactive_asks_for_what_is_missing() {
        let a = args(&["--name", "given"]);
        let mut p = prompt("\nhttps://gitea.example.com/\ntok\n\n", true);
        let inputs = resolve(&a, &[], None, &mut p).unwrap();
        assert_eq!(inputs.instance, "https://gitea.example.com");
        assert_eq!(inputs.token, "tok");
        assert_eq!(inputs.name, "given");
        assert_eq!(inputs.labels.len(), DEFAULT_LABELS.len());
        let asked = String::from_utf8(p.output).unwrap();
        assert!(asked.contains("instance URL"), "{asked}");
        assert!(asked.contains("runner token"), "{asked}");
        assert!(!asked.contains("runner name"), "{asked}");
        assert!(asked.contains("labels"), "{asked}");
    }

    #[test]
    fn interactive_stdin_closing_early_is_a_usage_error() {
        let a = args(&[]);
        let err = resolve(&a, &[], None, &mut prompt("https://g\n", true)).unwrap_err();
        assert!(err.0.contains("stdin closed"), "{err}");
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let a = args(&[
            "--no-interactive",
            "--instance",
            "gitea.local",
            "--token",
            "t",
        ]);
        assert!(resolve(&a, &[], None, &mut prompt("", false)).is_err());
        let a = args(&[
            "--no-interactive",
            "--instance",
            "https://g",
            "--token",
            "t",
            "--labels",
            "a:kubernetes:img",
        ]);
        let err = resolve(&a, &[], None, &mut prompt("", false)).unwrap_err();
        assert!(err.0.contains("the image must follow `//`"), "{err}");
    }
}
