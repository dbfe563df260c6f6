//! `hybrid-runner build`: builds the dual-tagged images of one service (a folder) or of
//! the services of a services file, with the builder `--builder` names (`auto`: Kubernetes
//! when configured, else buildah, podman, docker), without any workflow.
//!
//! Exit status: 0 when every image was built (and pushed), 1 when a build failed or no
//! builder is usable, 2 on usage errors.

mod dry_run;
mod report;
pub(super) mod services;
mod then_deploy;

use hr_process::stop_signals::StopSignals;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::report::{ServiceReport, VariantClock};
use self::services::{DEFAULT_SERVICES_FILE, PlanOptions, ServicePlan};
use super::UsageError;
use super::kube_args::{KubeArgs, RunnerArgs};
use hr_cluster::run_ids::unique_task_id;
use hr_image::avoidance::build_avoiding;
use hr_image::kaniko::KanikoConfig;
use hr_image::metrics::BuildMetrics;
use hr_image::registry::{DockerCredentials, RegistryClient};
use hr_image::select::{SelectOptions, select_builder};
use hr_image::{BuildLog, BuildProgress, BuilderChoice, ImageBuilder};

const AFTER_HELP: &str = "\
Tags: variant docker (from Dockerfile) gets latest, docker-latest, docker-<sha>; variant k8s
(from Dockerfile.k8s, when it exists) gets k8s-latest, k8s-<sha>. <sha> is --sha, else
GITHUB_SHA, else the HEAD of the git repository holding the context. --tag v1 adds v1 to the
docker image and k8s-v1 to the k8s image.

Services file (--all / --only, default services.yaml): a YAML list; paths are relative to
the file's folder:

  - name: api                 # required, unique
    context: services/api     # default \".\"
    dockerfile: Dockerfile    # relative to context; variant k8s from <dockerfile>.k8s
    namespace: shop           # the service's namespace; default image <registry>/shop/api
    image: reg:5000/shop/api  # optional; else --registry is required
    deploy:                   # optional, for `deploy` and --deploy; default a Deployment
      - {kind: Deployment, name: api, namespace: shop, container: api}

Builders: buildah and podman honour STORAGE_DRIVER, BUILDAH_ISOLATION and
CONTAINERS_STORAGE_CONF from the environment; docker is used only when its daemon answers.

--deploy: after the builds, every service built deploys its k8s image (docker when it has
no Dockerfile.k8s) by the tag naming the commit, as `hybrid-runner deploy` does (preflight,
image by digest, rollout watch, rollback); services whose image was reused are not
restarted, services whose build failed are not deployed.

Exit status: 0 all built (and deployed), 1 a build or a deploy failed (or no builder is
usable), 2 usage errors.";

#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct Args {
    /// The folder of the image to build (its Dockerfile, and Dockerfile.k8s when present)
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// The image repository to push to, without a tag (e.g. registry.local:5000/app)
    #[arg(long, value_name = "NAME", required_unless_present_any = ["all", "only"], conflicts_with_all = ["all", "only"])]
    pub image: Option<String>,
    /// An extra tag for every image (repeatable; `k8s-` is prefixed on the k8s image)
    #[arg(long = "tag", value_name = "T")]
    pub tags: Vec<String>,
    /// Which builder builds: auto, kaniko, buildah, podman or docker
    #[arg(long, value_name = "BUILDER", default_value = "auto")]
    pub builder: BuilderChoice,
    /// A registry reached over plain HTTP or with an untrusted certificate (repeatable)
    #[arg(long, value_name = "HOST:PORT")]
    pub insecure_registry: Vec<String>,
    /// A registry Kaniko reaches over HTTPS without verifying its certificate, e.g.
    /// self-signed (repeatable; Kaniko builds only)
    #[arg(long, value_name = "HOST:PORT")]
    pub skip_tls_verify_registry: Vec<String>,
    /// Print what would be done (builder commands, or the Kubernetes manifests) and stop
    #[arg(long)]
    pub dry_run: bool,
    /// The commit sha in tags [default: GITHUB_SHA, else `git rev-parse HEAD`]
    #[arg(long)]
    pub sha: Option<String>,
    /// Use only this many characters of the sha in tags [default: all]
    #[arg(long, value_name = "N")]
    pub short_sha: Option<usize>,
    /// A tag template of the docker image, replacing `latest`, `docker-latest`,
    /// `docker-{sha}` (repeatable; `{sha}` stands for the commit sha)
    #[arg(long, value_name = "TEMPLATE")]
    pub docker_tag_template: Vec<String>,
    /// A tag template of the k8s image, replacing `k8s-latest`, `k8s-{sha}` (repeatable)
    #[arg(long, value_name = "TEMPLATE")]
    pub k8s_tag_template: Vec<String>,
    /// A build argument KEY=VALUE (repeatable)
    #[arg(long, value_name = "KEY=VALUE")]
    pub build_arg: Vec<String>,
    /// The Dockerfile stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Build and tag only; push nothing
    #[arg(long)]
    pub no_push: bool,
    /// Do not reuse cached layers
    #[arg(long)]
    pub no_cache: bool,
    /// Reuse an image already in the registry that was built from the same context,
    /// Dockerfile, build args, target and labels: add the new tags to it instead of building
    /// (recorded as the label org.hybrid-runner.build-key and a build-<key> tag)
    #[arg(long, conflicts_with = "no_push")]
    pub skip_unchanged: bool,
    /// Print one JSON object (results and metrics) on stdout; the build log goes to stderr
    #[arg(long)]
    pub json: bool,
    /// The services file read by --all and --only
    #[arg(long, value_name = "FILE", default_value = DEFAULT_SERVICES_FILE)]
    pub services: PathBuf,
    /// Build every service of the services file
    #[arg(long)]
    pub all: bool,
    /// Build only these services of the services file (comma-separated; implies --all)
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub only: Vec<String>,
    /// How many services build at once
    #[arg(short = 'p', long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
    /// The registry (and path prefix) of services without an `image`
    #[arg(long, value_name = "HOST[/PREFIX]")]
    pub registry: Option<String>,
    /// The longest one service's build may take, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub timeout: u64,
    /// Then deploy every service that was built (not those whose image was reused) to its
    /// workloads, as `hybrid-runner deploy` does
    #[arg(long, conflicts_with_all = ["no_push", "dry_run"])]
    pub deploy: bool,
    /// With --deploy: the longest one workload's rollout may take, in seconds
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 600,
        requires = "deploy"
    )]
    pub deploy_timeout: u64,
    /// With --deploy: leave a failed workload as it is instead of restoring its previous
    /// pod template
    #[arg(long, requires = "deploy")]
    pub no_rollback: bool,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub runner: RunnerArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let plans = plan(&args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args, plans))
}

/// Every service to build, checked before anything starts.
fn plan(args: &Args) -> Result<Vec<ServicePlan>, UsageError> {
    let sha = services::flag_or_env_sha(args.sha.as_deref());
    let options = PlanOptions {
        sha,
        short_sha: args.short_sha,
        docker_tag_templates: args.docker_tag_template.clone(),
        k8s_tag_templates: args.k8s_tag_template.clone(),
        extra_tags: args.tags.clone(),
        build_args: services::parse_build_args(&args.build_arg)?,
        target: args.target.clone(),
        push: !args.no_push,
        cache: !args.no_cache,
        skip_unchanged: args.skip_unchanged,
        insecure_registries: args.insecure_registry.clone(),
        timeout: Duration::from_secs(args.timeout),
        task: unique_task_id("build"),
    };
    if let Some(image) = &args.image {
        return Ok(vec![services::plan_folder(&args.path, image, &options)?]);
    }
    if args.path != Path::new(".") {
        return Err(UsageError(format!(
            "PATH ({}) builds one folder with --image; --all and --only read the services file (--services FILE)",
            args.path.display()
        )));
    }
    let entries = services::read_services(&args.services)?;
    let base = services::services_base(&args.services)?;
    services::select_services(entries, &args.only)?
        .iter()
        .map(|entry| services::plan_service(&base, entry, args.registry.as_deref(), &options))
        .collect()
}

fn kaniko_config(args: &Args) -> KanikoConfig {
    KanikoConfig {
        insecure_registries: args.insecure_registry.clone(),
        skip_tls_verify_registries: args.skip_tls_verify_registry.clone(),
        ..args.runner.kaniko_config()
    }
}

async fn run_async(args: Args, plans: Vec<ServicePlan>) -> anyhow::Result<ExitCode> {
    let config = kaniko_config(&args);
    if args.dry_run && args.builder == BuilderChoice::Kaniko {
        dry_run::print_kaniko(&plans, &config, args.json)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut select = SelectOptions::from_process(args.kube.kubeconfig.clone(), config.clone());
    select.kube_context = args.kube.kube_context.clone();
    let builder = match select_builder(args.builder, &select).await {
        Ok(builder) => builder,
        Err(error) => {
            if args.json {
                let report = serde_json::json!({
                    "builder": null,
                    "result": "failure",
                    "error": error.to_string(),
                    "services": [],
                });
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            super::print_error(&anyhow::Error::new(error));
            return Ok(ExitCode::FAILURE);
        }
    };
    if args.dry_run {
        dry_run::print_builder(&builder, &plans, &config, args.json)?;
        return Ok(ExitCode::SUCCESS);
    }
    let cancel = CancellationToken::new();
    // SIGINT, SIGTERM or SIGHUP: cancelled builds report `cancelled` and exit 1.
    let signals = {
        let cancel = cancel.clone();
        let mut stops = StopSignals::new(StopSignals::RUN)?;
        tokio::spawn(async move {
            let first = stops.next().await;
            eprintln!(
                "\ncancelling ({}): the builds are being stopped",
                first.name()
            );
            cancel.cancel();
        })
    };
    let builder_name = builder.name();
    let deployables: Vec<then_deploy::Deployable> = plans
        .iter()
        .map(|p| then_deploy::Deployable::of(p, args.short_sha))
        .collect();
    let registry = if args.skip_unchanged {
        match DockerCredentials::from_environment()
            .and_then(|c| RegistryClient::new(&args.insecure_registry, c))
        {
            Ok(client) => Some(Arc::new(client)),
            Err(e) => {
                eprintln!("warning: --skip-unchanged is off: {e}");
                None
            }
        }
    } else {
        None
    };
    let reports = build_all(
        Arc::new(builder),
        registry,
        plans,
        usize::from(args.parallel),
        args.json,
        &cancel,
    )
    .await;
    signals.abort();
    let metrics = BuildMetrics::new();
    report::observe(&metrics, &reports);
    let failed: Vec<&ServiceReport> = reports
        .iter()
        .filter(|r| r.result != hr_image::metrics::BuildResult::Success)
        .collect();
    let deployed = if args.deploy {
        Some(deploy_built(&args, &deployables, &reports).await?)
    } else {
        None
    };
    if args.json {
        let mut report = report::json_report(builder_name, &reports, &metrics);
        if let Some(run) = &deployed {
            report["deploy"] = run.to_json();
        }
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report::write_table(&mut std::io::stdout().lock(), &reports)?;
        for service in &failed {
            for variant in service.variants.iter().filter(|v| v.error.is_some()) {
                eprintln!(
                    "error: {}/{} {}: {}",
                    service.name,
                    variant.variant,
                    variant.result.as_str(),
                    variant.error.as_deref().unwrap_or("")
                );
            }
        }
    }
    let deploy_failed = deployed.as_ref().is_some_and(|run| !run.ok);
    Ok(if failed.is_empty() && !deploy_failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `--deploy`: the services built, deployed (see `then_deploy`).
async fn deploy_built(
    args: &Args,
    deployables: &[then_deploy::Deployable],
    reports: &[ServiceReport],
) -> anyhow::Result<super::deploy::DeployRun> {
    use super::deploy::{DeployOptions, connect, deploy, registry_client};
    let cluster = connect(&args.kube).await?;
    let (services, notes) =
        then_deploy::targets_after_build(deployables, reports, &cluster.namespace)?;
    for note in notes {
        say(args.json, &format!("note: {note}"));
    }
    let registry = registry_client(&args.insecure_registry)?;
    let options = DeployOptions {
        parallel: usize::from(args.parallel),
        dry_run: false,
        json: args.json,
        rollout: hr_rollout::RolloutOptions {
            timeout: Duration::from_secs(args.deploy_timeout),
            rollback: !args.no_rollback,
            ..hr_rollout::RolloutOptions::default()
        },
    };
    deploy(&cluster.client, &registry, &services, &options).await
}

/// Builds the services, at most `parallel` at once, each service's variants as its
/// builder runs them; one report per service in plan order.
async fn build_all(
    builder: Arc<ImageBuilder>,
    registry: Option<Arc<RegistryClient>>,
    plans: Vec<ServicePlan>,
    parallel: usize,
    json: bool,
    cancel: &CancellationToken,
) -> Vec<ServiceReport> {
    let slots = Arc::new(Semaphore::new(parallel.max(1)));
    let mut tasks = JoinSet::new();
    let count = plans.len();
    for (index, plan) in plans.into_iter().enumerate() {
        let (builder, slots, cancel) = (Arc::clone(&builder), Arc::clone(&slots), cancel.clone());
        let registry = registry.clone();
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let registry = registry.as_deref();
            (
                index,
                build_one(&builder, registry, plan, json, &cancel).await,
            )
        });
    }
    let mut reports: Vec<Option<ServiceReport>> = (0..count).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, report)) = joined
            && let Some(slot) = reports.get_mut(index)
        {
            *slot = Some(report);
        }
    }
    reports.into_iter().flatten().collect()
}

/// A line of human output: stdout normally, stderr under `--json` (stdout is the JSON).
fn say(json: bool, line: &str) {
    if json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

async fn build_one(
    builder: &ImageBuilder,
    registry: Option<&RegistryClient>,
    plan: ServicePlan,
    json: bool,
    cancel: &CancellationToken,
) -> ServiceReport {
    let name = plan.name.clone();
    let start = Instant::now();
    let clock = Arc::new(Mutex::new(VariantClock::default()));
    say(
        json,
        &format!(
            "==> {name}: building {} with {} (sha {})",
            plan.image,
            builder.name(),
            plan.job.sha
        ),
    );
    let log = {
        let (lines_name, progress_name) = (name.clone(), name.clone());
        let clock = Arc::clone(&clock);
        BuildLog::new(move |line| {
            let prefix = match line.variant {
                Some(v) => format!("{lines_name}/{v}"),
                None => lines_name.clone(),
            };
            say(json, &format!("[{prefix}] {}", line.line));
        })
        .with_progress(move |event| {
            let mut clock = clock.lock().unwrap_or_else(|p| p.into_inner());
            clock.record(&event);
            say(json, &progress_line(&progress_name, &event, &clock, start));
        })
    };
    let result = match registry {
        Some(registry) => build_avoiding(builder, &plan.job, &log, cancel, registry)
            .await
            .map(|avoided| avoided.outcome),
        None => builder.build(&plan.job, &log, cancel).await,
    };
    let clock = clock.lock().unwrap_or_else(|p| p.into_inner());
    let variants: Vec<_> = plan
        .job
        .request
        .variants
        .iter()
        .map(|v| (v.variant, v.tags.clone()))
        .collect();
    let variant_reports = report::variant_reports(&variants, &result, &clock, start);
    let error = result.as_ref().err();
    let result_kind = report::service_result(&variant_reports, error);
    ServiceReport {
        name,
        image: plan.image,
        namespace: plan.namespace,
        sha: plan.job.sha,
        result: result_kind,
        duration_seconds: start.elapsed().as_secs_f64(),
        error: error.map(ToString::to_string),
        variants: variant_reports,
    }
}

fn progress_line(
    service: &str,
    event: &BuildProgress,
    clock: &VariantClock,
    start: Instant,
) -> String {
    match event {
        BuildProgress::Started(variant) => {
            format!("==> {service}/{variant}: started")
        }
        BuildProgress::Built(image) => format!(
            "==> {service}/{}: built in {}{}",
            image.variant,
            report::human_duration(clock.elapsed(image.variant, start).as_secs_f64()),
            if image.digest.is_empty() {
                String::new()
            } else {
                format!(", {}", image.digest)
            }
        ),
        BuildProgress::Reused(image) => format!(
            "==> {service}/{}: reused {} (unchanged inputs, not rebuilt) in {}",
            image.variant,
            image.digest,
            report::human_duration(clock.elapsed(image.variant, start).as_secs_f64())
        ),
        BuildProgress::Failed { variant, .. } => format!(
            "==> {service}/{variant}: failed after {}",
            report::human_duration(clock.elapsed(*variant, start).as_secs_f64())
        ),
    }
}
