//! `hybrid-runner cleanup`: deletes this runner's build namespaces whose expiry has passed
//! (`--all`: every one of them), printing each; `--dry-run` only prints them.

use std::process::ExitCode;
use std::time::SystemTime;

use super::kube_args::{KubeArgs, RunnerArgs, runtime};
use hr_cluster::{ReapScope, reap, reapable_namespaces};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub runner: RunnerArgs,
    /// Delete every build namespace of this runner, expired or not (builds in progress fail)
    #[arg(long)]
    pub all: bool,
    /// Print what would be deleted, delete nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the namespaces as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.runner.kaniko_config();
    let scope = if args.all {
        ReapScope::All
    } else {
        ReapScope::ExpiredAt(SystemTime::now())
    };
    let names = runtime()?.block_on(async {
        let builder = args.kube.connect(config).await?;
        let names = if args.dry_run {
            reapable_namespaces(builder.client(), &builder.config().runner_id, scope).await?
        } else {
            reap(builder.client(), &builder.config().runner_id, scope).await?
        };
        anyhow::Ok(names)
    })?;
    if args.json {
        let doc = serde_json::json!({
            "dry_run": args.dry_run,
            "namespaces": names,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for name in &names {
        println!("{verb} namespace {name}");
    }
    let what = if args.all { "" } else { "expired " };
    let plural = if names.len() == 1 { "" } else { "s" };
    println!(
        "{} {what}build namespace{plural} of runner {} {verb}",
        names.len(),
        args.runner.runner_id
    );
    Ok(ExitCode::SUCCESS)
}
