//! The command line: flags parsed by clap into one [`Cli`] value, then dispatched to a
//! command. Commands return an [`ExitCode`]; errors print as `error: …` followed by one
//! `caused by: …` line per cause. Usage and configuration errors exit 2.

mod act_args;
mod actrc;
mod build;
mod cache_server;
mod check;
mod check_images;
mod cleanup;
mod context;
mod daemon;
mod daemon_github;
mod daemon_pool;
mod deploy;
mod docker_shim;
mod dotenv;
mod exec;
mod expr;
mod generate_config;
mod generate_manifests;
mod graph;
mod input_file;
pub mod kube_args;
mod list;
mod logs;
mod register;
mod register_github;
mod remove;
mod render;
mod status;
mod table;
mod validate;
mod workflow_files;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// A self-hosted GitHub/Gitea Actions runner whose image builds run as Kaniko Jobs on Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "hybrid-runner", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check workflow files and print `path:line:col: message` for every problem.
    ///
    /// Exits 0 when every file is clean, 1 when any has a problem, 2 on usage errors.
    Validate(validate::Args),
    /// Evaluate one `${{ }}` expression (written without `${{ }}`) and print the result as JSON.
    Expr(expr::Args),
    /// List the jobs a workflow would run for an event, in `needs` stages, matrix legs expanded.
    List(list::Args),
    /// Run workflows locally, on this host, as GitHub would.
    Exec(Box<exec::Args>),
    /// Show what goes into an image build context after `.dockerignore`, and its sha256.
    Context(context::Args),
    /// Print every manifest of the Kubernetes dual build of a folder as multi-document YAML.
    Render(render::Args),
    /// Check that Kaniko builds can run: cluster reachable, permissions, namespace and
    /// ConfigMap round trips, registry reachable, executor image set.
    ///
    /// One line per check; exits 1 when any fails. With --images: every image the workloads
    /// of namespaces or manifests reference, present or missing; exits 1 when any is missing.
    Check(check::Args),
    /// Delete this runner's expired build namespaces (`--all`: every one).
    Cleanup(cleanup::Args),
    /// List this runner's build namespaces with their Kaniko Jobs.
    Status(status::Args),
    /// Print the Kaniko logs of a build namespace or Job.
    Logs(logs::Args),
    /// Build (and push) the dual-tagged images of a folder or of the services of a services file.
    ///
    /// Exits 0 when every image was built, 1 when a build failed, 2 on usage errors.
    Build(Box<build::Args>),
    /// Set the images built for the services of a services file on their workloads: a
    /// preflight resolves every image to a digest first, each rollout is watched, and a
    /// failed one is rolled back.
    ///
    /// Exits 0 when every workload rolled out, 1 when the preflight or a rollout failed, 2 on
    /// usage errors.
    Deploy(Box<deploy::Args>),
    /// Register this runner with a Gitea or Forgejo instance (or GitHub, `--github URL`) and
    /// save the `.runner` file.
    ///
    /// Exits 0 when registered, 1 when the instance refused or could not be reached, 2 on
    /// usage errors (a missing value with --no-interactive, a bad label or config).
    Register(Box<register::Args>),
    /// Unregister the GitHub runner of the runner file (`config.sh remove`) and delete its files.
    ///
    /// Exits 0 when removed (or already gone), 1 when GitHub refused, 2 on usage errors.
    Remove(remove::Args),
    /// Print a commented configuration file with every key at its default.
    GenerateConfig(generate_config::Args),
    /// Print the manifests that run the daemon in a cluster, for `kubectl apply -f -`.
    ///
    /// Namespace, ServiceAccount, least-privilege ClusterRole and binding, config
    /// ConfigMap, headless Service, and a StatefulSet (or Deployment). Exits 2 on usage errors.
    GenerateManifests(Box<generate_manifests::Args>),
    /// Run the registered runner: poll the Gitea/Forgejo instance for tasks and run them.
    ///
    /// Exits 0 when stopped by SIGTERM/SIGINT (after draining) or when the one task of
    /// --once or of an ephemeral registration is done; 1 when the instance refuses the
    /// runner's credentials; 2 on usage errors (no runner file: run `hybrid-runner register`).
    Daemon(daemon::Args),
}

/// An error in how the command was called or configured: printed, then exit 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

pub fn main() -> ExitCode {
    // The `docker` shim of `exec` steps: no clap, so `docker --help` and every other
    // argument reach the engine untouched.
    let mut raw = std::env::args();
    if raw.nth(1).as_deref() == Some(hr_engine::image_steps::protocol::SHIM_SUBCOMMAND) {
        return docker_shim::run(raw.collect());
    }
    hr_cluster::install_crypto_provider();
    let command = Cli::command();
    let args = match command.find_subcommand("exec") {
        Some(exec) => actrc::with_actrc(std::env::args_os().collect(), exec),
        None => std::env::args_os().collect(),
    };
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Expr(args) => expr::run(args),
        Command::List(args) => list::run(args),
        Command::Exec(args) => exec::run(*args),
        Command::Context(args) => context::run(args),
        Command::Render(args) => render::run(args),
        Command::Check(args) => check::run(args),
        Command::Cleanup(args) => cleanup::run(args),
        Command::Status(args) => status::run(args),
        Command::Logs(args) => logs::run(args),
        Command::Build(args) => build::run(*args),
        Command::Deploy(args) => deploy::run(*args),
        Command::Register(args) => register::run(*args),
        Command::Remove(args) => remove::run(args),
        Command::GenerateConfig(args) => generate_config::run(args),
        Command::GenerateManifests(args) => generate_manifests::run(*args),
        Command::Daemon(args) => daemon::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            print_error(&error);
            if error.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// `error: <message>` then `  caused by: <cause>` for each cause, uv's way.
pub fn print_error(error: &anyhow::Error) {
    eprintln!("error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

/// The workflow folders tried when no path is given, in order: `validate` checks every one
/// that exists (each file by its folder's dialect), `exec` and `list` read the first.
/// `.forgejo/workflows` comes first because Forgejo reads only it when it exists
/// (`modules/actions/workflows.go`: `.forgejo/workflows`, then `.gitea/workflows`, then
/// `.github/workflows`, the first that exists).
pub const DEFAULT_WORKFLOW_DIRS: [&str; 3] = [
    ".forgejo/workflows",
    ".github/workflows",
    ".gitea/workflows",
];

fn default_workflow_paths() -> Vec<PathBuf> {
    DEFAULT_WORKFLOW_DIRS
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .collect()
}
