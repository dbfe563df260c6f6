//! `hybrid-runner status`: this runner's build namespaces, with their phase, age, expiry
//! and Kaniko Jobs (variant, status, age); `--json` for machines.

use std::process::ExitCode;
use std::time::SystemTime;

use super::kube_args::{KubeArgs, RunnerArgs, age, epoch_seconds, runtime, short_duration};
use hr_image::kaniko::build_namespaces;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub runner: RunnerArgs,
    /// Print the namespaces as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.runner.kaniko_config();
    let namespaces = runtime()?.block_on(async {
        let builder = args.kube.connect(config).await?;
        anyhow::Ok(build_namespaces(builder.client(), builder.config()).await?)
    })?;
    let now = SystemTime::now();
    if args.json {
        let items: Vec<_> = namespaces
            .iter()
            .map(|ns| {
                let jobs: Vec<_> = ns
                    .jobs
                    .iter()
                    .map(|j| {
                        serde_json::json!({
                            "name": j.name,
                            "variant": j.variant,
                            "status": j.status,
                            "reason": j.reason,
                            "created": epoch_seconds(j.created),
                        })
                    })
                    .collect();
                serde_json::json!({
                    "namespace": ns.name,
                    "phase": ns.phase,
                    "task": ns.task,
                    "created": epoch_seconds(ns.created),
                    "expires": epoch_seconds(ns.expires),
                    "jobs": jobs,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    if namespaces.is_empty() {
        println!("no build namespaces of runner {}", args.runner.runner_id);
        return Ok(ExitCode::SUCCESS);
    }
    for ns in &namespaces {
        let expiry = match ns.expires {
            Some(at) => match at.duration_since(now) {
                Ok(left) => format!("expires in {}", short_duration(left)),
                Err(_) => "expired".to_string(),
            },
            None => "no expiry".to_string(),
        };
        println!(
            "{}  {}  age {}  {expiry}  task {}",
            ns.name,
            ns.phase,
            age(ns.created, now),
            if ns.task.is_empty() { "-" } else { &ns.task }
        );
        if ns.jobs.is_empty() {
            println!("  (no jobs)");
        }
        for j in &ns.jobs {
            let reason = if j.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", j.reason)
            };
            println!(
                "  {}  {}  {}{reason}  age {}",
                j.name,
                if j.variant.is_empty() {
                    "-"
                } else {
                    &j.variant
                },
                j.status,
                age(j.created, now)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
