//! `hybrid-runner check`: the built-in "test-hybrid-builds". One line per check
//! (`ok   …`, `FAIL …: reason`, `skip …: why`), or `--json`; exit 1 when any check fails.
//! `check --images` checks the images of workloads instead (`check_images`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::kube_args::{KubeArgs, RunnerArgs, runtime};
use hr_engine::pod::{CheckPod, DEFAULT_PROBE_IMAGE};
use hr_image::kaniko::{CheckOptions, CheckStatus, registry_host, run_checks};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub runner: RunnerArgs,
    /// An image the runner will push (its registry is probed)
    #[arg(long, value_name = "NAME")]
    pub image: Option<String>,
    /// The registry to probe, host[:port] (instead of --image)
    #[arg(long, value_name = "HOST")]
    pub registry: Option<String>,
    /// A registry reached over plain HTTP (repeatable); probed over HTTP
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,
    /// The Kaniko executor image builds will use
    #[arg(long, value_name = "IMAGE")]
    pub executor_image: Option<String>,
    /// A Docker config.json with registry credentials (then creating Secrets is checked)
    #[arg(long, value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
    /// Also check what jobs on `kubernetes` labels need (their namespace, pod and pods/exec)
    #[arg(long)]
    pub job_pods: bool,
    /// The image of the pod the check starts (one exec round trip and the registry probe
    /// from inside it); it needs sh, tar, head, mkfifo and wget or curl
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_PROBE_IMAGE)]
    pub probe_image: String,
    /// How long that pod may take to run, image pull included
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub probe_timeout: u64,
    /// Also check, in each of these namespaces, what deploys need there (the Roles of
    /// `generate-manifests --deploy-namespaces`)
    #[arg(long, value_name = "NS1,NS2", value_delimiter = ',')]
    pub deploy_namespaces: Vec<String>,
    /// Print the checks as JSON
    #[arg(long)]
    pub json: bool,
    /// Instead: list every image the workloads of -n/--all-namespaces or of manifests
    /// (-f FILE, stdin) reference, present (with its digest) or missing, and the pods that
    /// cannot pull theirs; exit 1 when any image is missing
    #[arg(long)]
    pub images: bool,
    /// A namespace whose workloads are checked (repeatable; with --images)
    #[arg(
        short = 'n',
        long = "namespace",
        value_name = "NAMESPACE",
        requires = "images"
    )]
    pub namespaces: Vec<String>,
    /// Check the workloads of every namespace (with --images)
    #[arg(short = 'A', long, requires = "images")]
    pub all_namespaces: bool,
    /// A file of manifests, multi-document YAML or JSON (repeatable; `-` is stdin; with
    /// --images)
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE",
        requires = "images"
    )]
    pub files: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.images {
        let sources = super::check_images::ImageSources {
            namespaces: args.namespaces.clone(),
            all_namespaces: args.all_namespaces,
            files: args.files.clone(),
            insecure_registries: args.insecure_registry.clone(),
            json: args.json,
        };
        return super::check_images::run(sources, &args.kube);
    }
    let mut config = args.runner.kaniko_config();
    if let Some(image) = &args.executor_image {
        config.executor_image = image.clone();
    }
    if let Some(path) = &args.docker_config {
        config.registry_secret = Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read the Docker config {}", path.display()))?,
        );
    }
    let registry = args
        .registry
        .clone()
        .or_else(|| args.image.as_deref().map(|i| registry_host(i).to_string()))
        .or_else(|| args.insecure_registry.first().cloned());
    let options = CheckOptions {
        insecure_registry: registry
            .as_ref()
            .is_some_and(|r| args.insecure_registry.contains(r)),
        registry,
        job_pods: args.job_pods,
        deploy_namespaces: args.deploy_namespaces.clone(),
        pod_probe: Some(Arc::new(CheckPod {
            image: args.probe_image.clone(),
            start_timeout: Duration::from_secs(args.probe_timeout),
        })),
    };
    let checks = runtime()?.block_on(async {
        let builder = args.kube.connect(config).await?;
        anyhow::Ok(run_checks(&builder, &options).await)
    })?;
    let failed = checks.iter().any(|c| c.status == CheckStatus::Fail);
    if args.json {
        let items: Vec<_> = checks
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "status": c.status.as_str(),
                    "detail": c.detail,
                })
            })
            .collect();
        let doc = serde_json::json!({ "ok": !failed, "checks": items });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for c in &checks {
            match c.status {
                CheckStatus::Ok => println!("ok   {} ({})", c.name, c.detail),
                CheckStatus::Fail => println!("FAIL {}: {}", c.name, c.detail),
                CheckStatus::Skip => println!("skip {}: {}", c.name, c.detail),
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
