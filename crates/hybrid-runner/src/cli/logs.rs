//! `hybrid-runner logs NAME [--follow]`: the Kaniko logs of a build namespace (`NAME`) or
//! of one of its Jobs (`NAMESPACE/JOB`), each line prefixed with `[job] ` when several pods
//! are shown.

use std::io::Write;
use std::process::ExitCode;

use super::UsageError;
use super::kube_args::{KubeArgs, RunnerArgs, runtime};
use hr_image::kaniko::stream_logs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A build namespace (see `hybrid-runner status`), or NAMESPACE/JOB
    pub name: String,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub runner: RunnerArgs,
    /// Keep streaming until the builds end
    #[arg(short, long)]
    pub follow: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (namespace, job) = match args.name.split_once('/') {
        Some((ns, job)) if !ns.is_empty() && !job.is_empty() => (ns, Some(job)),
        Some(_) => {
            return Err(UsageError(format!(
                "{}: expected NAMESPACE or NAMESPACE/JOB",
                args.name
            ))
            .into());
        }
        None => (args.name.as_str(), None),
    };
    let config = args.runner.kaniko_config();
    let prefix = job.is_none();
    let count = runtime()?.block_on(async {
        let builder = args.kube.connect(config).await?;
        let print = |job: &str, line: &str| {
            let mut out = std::io::stdout().lock();
            let _ = if prefix {
                writeln!(out, "[{job}] {line}")
            } else {
                writeln!(out, "{line}")
            };
        };
        anyhow::Ok(stream_logs(builder.client(), namespace, job, args.follow, &print).await?)
    })?;
    if count == 0 {
        eprintln!("no Kaniko pods in {}", args.name);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
