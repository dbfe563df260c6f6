//! `hybrid-runner deploy`: sets the images the services file's services built on their
//! workloads, safely. A preflight resolves every image to a digest and reads every
//! workload before anything changes; then each image is set by digest and its rollout
//! watched, and a failed rollout is undone (see `hr_rollout`).
//!
//! Exit status: 0 when every workload rolled out, 1 when the preflight or a rollout failed,
//! 2 on usage errors.

pub(in crate::cli) mod plan;
pub mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actions::image_build::Variant;
use anyhow::Context as _;
use kube::api::{Patch, PatchParams};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::plan::{ServiceTargets, TagChoice, check_distinct, service_targets};
use self::report::WorkloadRow;
use super::UsageError;
use super::build::services::{
    DEFAULT_SERVICES_FILE, flag_or_env_sha, read_services, select_services, services_base,
};
use super::kube_args::{KubeArgs, runtime};
use hr_image::registry::{DockerCredentials, RegistryClient};
use hr_process::stop_signals::StopSignals;
use hr_rollout::{
    DeployCluster, Outcome, Planned, Preflight, RolloutOptions, Target, preflight, roll_out,
};

const AFTER_HELP: &str = "\
Services file (default services.yaml, as `build --all` reads it); a service may name its
workloads (default: a Deployment named like the service, in the service's namespace, its
container named like it or its only container):

  - name: api
    namespace: shop
    deploy:
      - kind: Deployment      # or StatefulSet, DaemonSet
        name: api
        namespace: shop
        container: api

Image: <image>:k8s-<sha> (--variant k8s, the default; services without a Dockerfile.k8s
deploy docker-<sha>), <image>:docker-<sha> (--variant docker); --tag T deploys k8s-T / T.
<sha> is --sha, else GITHUB_SHA, else the git HEAD of the service's context, cut to
--short-sha characters as `build --short-sha` cuts it.

Preflight: every image is resolved in its registry to a digest (the runner's Docker
credentials, --insecure-registry for plain HTTP) and every workload read; anything missing
fails the deploy before any workload changes. The image is then set by digest
(name:tag@sha256:...) with a strategic merge patch and the rollout watched as `kubectl
rollout status` watches it; a new pod in ErrImagePull, ImagePullBackOff, CrashLoopBackOff or
CreateContainerConfigError fails it at once, and a failed workload gets its previous pod
template back (as `kubectl rollout undo`) unless --no-rollback.

Exit status: 0 all rolled out, 1 the preflight or a rollout failed, 2 usage errors.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VariantArg {
    K8s,
    Docker,
}

#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["all", "only"])))]
pub struct Args {
    /// The services file
    #[arg(long, value_name = "FILE", default_value = DEFAULT_SERVICES_FILE)]
    pub services: PathBuf,
    /// Deploy every service of the services file
    #[arg(long)]
    pub all: bool,
    /// Deploy only these services (comma-separated)
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Deploy this tag (`k8s-T` for the k8s variant) instead of the commit's
    #[arg(long, value_name = "T")]
    pub tag: Option<String>,
    /// Which image variant to deploy [default: k8s, docker for services without Dockerfile.k8s]
    #[arg(long, value_enum)]
    pub variant: Option<VariantArg>,
    /// The commit sha in tags [default: GITHUB_SHA, else `git rev-parse HEAD`]
    #[arg(long)]
    pub sha: Option<String>,
    /// Use only this many characters of the sha in tags, as the build did
    #[arg(long, value_name = "N")]
    pub short_sha: Option<usize>,
    /// The registry (and path prefix) of services without an `image`
    #[arg(long, value_name = "HOST[/PREFIX]")]
    pub registry: Option<String>,
    /// A registry reached over plain HTTP (repeatable)
    #[arg(long, value_name = "HOST:PORT")]
    pub insecure_registry: Vec<String>,
    /// How many workloads roll out at once
    #[arg(short = 'p', long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
    /// Run the preflight and print the patches (checked by the API server with
    /// dryRun=All); change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object on stdout; progress goes to stderr
    #[arg(long)]
    pub json: bool,
    /// The longest one workload's rollout may take, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub timeout: u64,
    /// Leave a failed workload as it is instead of restoring its previous pod template
    #[arg(long)]
    pub no_rollback: bool,
    #[command(flatten)]
    pub kube: KubeArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let entries = read_services(&args.services)?;
    let base = services_base(&args.services)?;
    let entries = select_services(entries, &args.only)?;
    let choice = TagChoice {
        variant: args.variant.map(|v| match v {
            VariantArg::K8s => Variant::K8s,
            VariantArg::Docker => Variant::Docker,
        }),
        tag: args.tag.clone(),
        sha: flag_or_env_sha(args.sha.as_deref()),
        short_sha: args.short_sha,
    };
    runtime()?.block_on(async {
        let cluster = connect(&args.kube).await?;
        let services = entries
            .iter()
            .map(|e| {
                service_targets(
                    &base,
                    e,
                    args.registry.as_deref(),
                    &choice,
                    &cluster.namespace,
                )
            })
            .collect::<Result<Vec<_>, UsageError>>()?;
        check_distinct(&services)?;
        let registry = registry_client(&args.insecure_registry)?;
        let options = DeployOptions {
            parallel: usize::from(args.parallel),
            dry_run: args.dry_run,
            json: args.json,
            rollout: RolloutOptions {
                timeout: Duration::from_secs(args.timeout),
                rollback: !args.no_rollback,
                ..RolloutOptions::default()
            },
        };
        let run = deploy(&cluster.client, &registry, &services, &options).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&run.to_json())?);
        }
        Ok(run.exit_code())
    })
}

/// The cluster of the `--kubeconfig` / `--kube-context` flags.
pub async fn connect(kube: &KubeArgs) -> anyhow::Result<DeployCluster> {
    DeployCluster::connect(kube.kubeconfig.as_deref(), kube.kube_context.as_deref())
        .await
        .context("cannot connect to the Kubernetes cluster")
}

/// The registry client with the runner's Docker credentials.
pub fn registry_client(insecure: &[String]) -> anyhow::Result<RegistryClient> {
    let credentials = DockerCredentials::from_environment()?;
    Ok(RegistryClient::new(insecure, credentials)?)
}

/// How one deploy runs.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    pub parallel: usize,
    pub dry_run: bool,
    pub json: bool,
    pub rollout: RolloutOptions,
}

/// A line of human output: stdout normally, stderr under `--json`.
fn say(json: bool, line: &str) {
    if json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// What one deploy did: the preflight, then the rollouts (or, in a dry run, the patches).
#[derive(Debug)]
pub struct DeployRun {
    pub found: Preflight,
    pub rows: Vec<WorkloadRow>,
    /// `--dry-run`: each patch and the API server's verdict.
    pub patches: Vec<serde_json::Value>,
    pub dry_run: bool,
    /// Why the deploy stopped before rolling anything out.
    pub error: Option<String>,
    pub ok: bool,
}

impl DeployRun {
    pub fn exit_code(&self) -> ExitCode {
        if self.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    /// The whole run as one JSON object (`deploy --json`, the `deploy` key of `build --json`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut doc = serde_json::json!({
            "result": if self.ok { "success" } else { "failure" },
            "dry_run": self.dry_run,
            "images": report::images_json(&self.found),
            "workload_problems": self.found.workload_problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "workloads": self.rows.iter().map(report::row_json).collect::<Vec<_>>(),
        });
        if self.dry_run {
            doc["patches"] = serde_json::json!(self.patches);
        }
        if let Some(error) = &self.error {
            doc["error"] = serde_json::json!(error);
        }
        doc
    }
}

/// Runs the preflight, then rolls every target out (or prints the patches, `dry_run`).
/// Progress goes to stdout (stderr under `json`); the final table and the errors are
/// printed in text mode; the caller prints [`DeployRun::to_json`] under `json`.
pub async fn deploy(
    client: &kube::Client,
    registry: &RegistryClient,
    services: &[ServiceTargets],
    options: &DeployOptions,
) -> anyhow::Result<DeployRun> {
    for note in services.iter().filter_map(|s| s.note.as_deref()) {
        say(options.json, &format!("note: {note}"));
    }
    let targets: Vec<Target> = services.iter().flat_map(|s| s.targets.clone()).collect();
    if targets.is_empty() {
        say(options.json, "==> nothing to deploy");
        return Ok(DeployRun {
            found: Preflight::default(),
            rows: Vec::new(),
            patches: Vec::new(),
            dry_run: options.dry_run,
            error: None,
            ok: true,
        });
    }
    let service_of = |target: &Target| {
        services
            .iter()
            .find(|s| s.targets.contains(target))
            .map(|s| s.service.clone())
            .unwrap_or_default()
    };
    say(
        options.json,
        &format!(
            "==> preflight: {} for {}",
            plural(count_distinct(&targets), "image"),
            plural(targets.len(), "workload")
        ),
    );
    let found = preflight(client, registry, &targets).await;
    let mut text = Vec::new();
    report::write_preflight(&mut text, &found)?;
    say(options.json, String::from_utf8_lossy(&text).trim_end());
    let mut run = DeployRun {
        found,
        rows: Vec::new(),
        patches: Vec::new(),
        dry_run: options.dry_run,
        error: None,
        ok: false,
    };
    if let Some(error) = run.found.error() {
        eprintln!("error: {error}");
        run.error = Some(error.to_string());
        return Ok(run);
    }
    if options.dry_run {
        run.patches = dry_run(client, &run.found, options).await?;
        run.ok = run.patches.iter().all(|p| p["accepted"] == true);
        return Ok(run);
    }
    run.rows = roll_out_all(client, &run.found.planned, &service_of, options).await;
    run.ok = !run
        .rows
        .iter()
        .any(|r| matches!(r.report.outcome, Outcome::Failed { .. }));
    if !options.json {
        report::write_table(&mut std::io::stdout().lock(), &run.rows)?;
    }
    report::write_failures(&mut std::io::stderr().lock(), &run.rows)?;
    Ok(run)
}

/// `1 image`, `2 images`.
pub fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn count_distinct(targets: &[Target]) -> usize {
    let mut images: Vec<&str> = targets.iter().map(|t| t.image.as_str()).collect();
    images.sort_unstable();
    images.dedup();
    images.len()
}

/// Sends each patch with `dryRun=All` so the API server checks it, and prints it (text
/// mode); changes nothing. One JSON entry per patch.
async fn dry_run(
    client: &kube::Client,
    found: &Preflight,
    options: &DeployOptions,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut patches = Vec::new();
    for planned in &found.planned {
        let w = &planned.workload;
        let patch = hr_rollout::rollout::image_patch(&w.container, &planned.image);
        let params = PatchParams {
            dry_run: true,
            field_manager: Some(options.rollout.field_manager.clone()),
            ..PatchParams::default()
        };
        let checked = w
            .target
            .api(client)
            .patch(&w.target.name, &params, &Patch::Strategic(patch.clone()))
            .await
            .map(|_| ());
        let verdict = match &checked {
            Ok(()) => "accepted by the API server (dryRun=All)".to_string(),
            Err(e) => format!("refused by the API server: {}", hr_cluster::describe(e)),
        };
        if !options.json {
            println!(
                "PATCH {} (application/strategic-merge-patch+json): {verdict}\n{}",
                w.target.path(),
                serde_json::to_string_pretty(&patch)?
            );
        }
        patches.push(serde_json::json!({
            "path": w.target.path(),
            "content_type": "application/strategic-merge-patch+json",
            "patch": patch,
            "previous_image": w.image,
            "image": planned.image,
            "accepted": checked.is_ok(),
            "verdict": verdict,
        }));
    }
    Ok(patches)
}

/// Rolls every planned target out, `parallel` at once; rows in plan order. SIGINT or
/// SIGTERM stops the watches (a stopped rollout is rolled back like a failed one).
async fn roll_out_all(
    client: &kube::Client,
    planned: &[Planned],
    service_of: &dyn Fn(&Target) -> String,
    options: &DeployOptions,
) -> Vec<WorkloadRow> {
    let cancel = CancellationToken::new();
    let signals = StopSignals::new(StopSignals::RUN).ok().map(|mut stops| {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let first = stops.next().await;
            eprintln!(
                "\ncancelling ({}): the rollouts are being stopped",
                first.name()
            );
            cancel.cancel();
        })
    });
    let slots = Arc::new(Semaphore::new(options.parallel.max(1)));
    let mut tasks = JoinSet::new();
    for (index, planned) in planned.iter().enumerate() {
        let (client, slots, cancel) = (client.clone(), Arc::clone(&slots), cancel.clone());
        let planned = planned.clone();
        let service = service_of(&planned.target);
        let (json, rollout) = (options.json, options.rollout.clone());
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let w = &planned.workload;
            say(
                json,
                &format!(
                    "==> {service}: {}, container {}: {} (was {})",
                    w.target, w.container, planned.image, w.image
                ),
            );
            let prefix = service.clone();
            let progress = move |line: &str| say(json, &format!("[{prefix}] {line}"));
            let report = roll_out(&client, w, &planned.image, &rollout, &progress, &cancel).await;
            let done = match &report.outcome {
                Outcome::RolledOut { message } | Outcome::Unchanged { message } => message.clone(),
                Outcome::Failed { failure, .. } => format!("failed: {failure}"),
            };
            say(json, &format!("[{service}] {done}"));
            (index, WorkloadRow { service, report })
        });
    }
    let mut rows: Vec<Option<WorkloadRow>> = planned.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, row)) = joined
            && let Some(slot) = rows.get_mut(index)
        {
            *slot = Some(row);
        }
    }
    if let Some(signals) = signals {
        signals.abort();
    }
    rows.into_iter().flatten().collect()
}
