//! `hybrid-runner render [PATH] --image NAME`: every manifest of the Kubernetes dual build of
//! PATH (namespace, context ConfigMap or PVC, secrets, one Kaniko Job per variant) as
//! multi-document YAML, exactly as it would be sent. Variant `docker` needs `Dockerfile`;
//! variant `k8s` is added when `Dockerfile.k8s` exists.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;

use hr_cluster::TaskIds;
use hr_image::kaniko::{
    BuildSpec, ContextMode, KanikoConfig, LargeContextMode, TagTemplates, Variant, VariantSpec,
    build_manifests_packed, dual_tags, pack_context_file, to_yaml_documents,
};

use super::UsageError;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ModeArg {
    Auto,
    Configmap,
    Pvc,
    Stdin,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LargeArg {
    Pvc,
    Stdin,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The build context: a folder with a Dockerfile (and optionally Dockerfile.k8s)
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// The image repository to push to, without a tag (e.g. registry.local:5000/app)
    #[arg(long, value_name = "NAME")]
    pub image: String,
    /// The commit sha in tags [default: `git rev-parse HEAD` in PATH]
    #[arg(long)]
    pub sha: Option<String>,
    /// Use only this many digits of the sha in tags [default: all]
    #[arg(long, value_name = "N")]
    pub short_sha: Option<usize>,
    /// How the context reaches Kaniko
    #[arg(long, value_enum, default_value = "auto")]
    pub context_mode: ModeArg,
    /// Where `--context-mode auto` puts a context too large for a ConfigMap
    #[arg(long, value_enum, default_value = "pvc")]
    pub large_context: LargeArg,
    /// The Kaniko executor image
    #[arg(long, value_name = "IMAGE")]
    pub executor_image: Option<String>,
    /// A Docker config.json with registry credentials, sent as a dockerconfigjson Secret
    #[arg(long, value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
    /// Enable Kaniko's layer cache
    #[arg(long)]
    pub cache: bool,
    /// The cache repository (implies --cache)
    #[arg(long, value_name = "REPO")]
    pub cache_repo: Option<String>,
    /// A registry reached over plain HTTP (repeatable)
    #[arg(long, value_name = "REGISTRY")]
    pub insecure_registry: Vec<String>,
    /// A registry reached over HTTPS without verifying its certificate, e.g. self-signed
    /// (repeatable)
    #[arg(long, value_name = "REGISTRY")]
    pub skip_tls_verify_registry: Vec<String>,
    /// A build argument KEY=VALUE (repeatable)
    #[arg(long, value_name = "KEY=VALUE")]
    pub build_arg: Vec<String>,
    /// The Dockerfile stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// The build timeout in seconds (each Job's activeDeadlineSeconds)
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub timeout: u64,
    /// A folder with your own copies of the manifest templates
    #[arg(long, value_name = "DIR")]
    pub template_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // The same rule as `build` and `hybrid-runner/build`: `registry/name`, lower case.
    actions::image_build::check_image(&args.image)
        .map_err(|e| UsageError(format!("--image: {e}")))?;
    let dir = &args.path;
    if !dir.join("Dockerfile").is_file() {
        return Err(UsageError(format!(
            "{} has no Dockerfile; pass the folder of the image to build",
            dir.display()
        ))
        .into());
    }
    let mut variants = vec![Variant::Docker];
    if dir.join(Variant::K8s.default_dockerfile()).is_file() {
        variants.push(Variant::K8s);
    }
    let sha = match &args.sha {
        Some(sha) => sha.clone(),
        None => head_sha(dir)?,
    };
    let templates = TagTemplates {
        sha_length: args.short_sha,
        ..TagTemplates::default()
    };
    let variants = dual_tags(&args.image, &sha, &variants, &templates)
        .into_iter()
        .map(|(variant, tags)| VariantSpec {
            variant,
            dockerfile: variant.default_dockerfile().to_string(),
            tags,
        })
        .collect();
    let build_args = args
        .build_arg
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(UsageError(format!(
                "--build-arg {pair}: expected KEY=VALUE"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let spec = BuildSpec {
        image: args.image.clone(),
        sha,
        context_dir: dir.clone(),
        variants,
        build_args,
        target: args.target.clone(),
        labels: Vec::new(),
        timeout: Duration::from_secs(args.timeout),
    };
    let defaults = KanikoConfig::default();
    let registry_secret = match &args.docker_config {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read the Docker config {}", path.display()))?,
        ),
        None => None,
    };
    let config = KanikoConfig {
        executor_image: args
            .executor_image
            .clone()
            .unwrap_or(defaults.executor_image.clone()),
        runner_id: hr_cluster::run_ids::DEFAULT_RUNNER_ID.to_string(),
        registry_secret,
        cache: args.cache || args.cache_repo.is_some(),
        cache_repo: args.cache_repo.clone(),
        insecure_registries: args.insecure_registry.clone(),
        skip_tls_verify_registries: args.skip_tls_verify_registry.clone(),
        context_mode: match args.context_mode {
            ModeArg::Auto => ContextMode::Auto,
            ModeArg::Configmap => ContextMode::ConfigMap,
            ModeArg::Pvc => ContextMode::Pvc,
            ModeArg::Stdin => ContextMode::Stdin,
        },
        large_context: match args.large_context {
            LargeArg::Pvc => LargeContextMode::Pvc,
            LargeArg::Stdin => LargeContextMode::Stdin,
        },
        template_dir: args.template_dir.clone(),
        ..defaults
    };
    let job = std::fs::canonicalize(dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "build".to_string());
    let task = TaskIds {
        task: "render".to_string(),
        job,
        started_at: SystemTime::now(),
    };
    print!("{}", manifests_yaml(&spec, &config, &task)?);
    Ok(ExitCode::SUCCESS)
}

/// Every manifest of the Kaniko dual build `spec` describes, as the multi-document YAML
/// that would be sent: the context packed from `spec.context_dir`, the manifests rendered.
/// Shared by `render` and `build --dry-run --builder kaniko`.
pub(super) fn manifests_yaml(
    spec: &BuildSpec,
    config: &KanikoConfig,
    task: &TaskIds,
) -> anyhow::Result<String> {
    // BuildError::Context names the folder: "cannot pack the build context DIR: ...".
    let packed = pack_context_file(spec)?;
    let manifests = build_manifests_packed(spec, config, task, &packed)?;
    Ok(to_yaml_documents(&manifests)?)
}

/// The commit checked out in the git repository holding `dir` (`git rev-parse HEAD`).
pub(super) fn head_sha(dir: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .output();
    match out {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
        _ => Err(UsageError(format!(
            "cannot read the commit of {} with git; pass --sha",
            dir.display()
        ))
        .into()),
    }
}
