//! `hybrid-runner generate-manifests`: everything that runs the daemon in a cluster
//! (Namespace, ServiceAccount, least-privilege ClusterRole and its binding, with
//! `--deploy-namespaces` a Role and RoleBinding per namespace it deploys to, the config
//! ConfigMap, a headless Service, a StatefulSet or Deployment) as multi-document YAML for
//! `kubectl apply -f -`, or as a JSON `List` with `--json`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::deploy::{DeploySettings, WorkloadKind, deploy_manifests};
use hr_gitea::config::values::parse_duration;

use super::UsageError;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    /// Each replica keeps its registration and log spool on its own volume
    Statefulset,
    /// Stateless pods: each new pod registers a new runner
    Deployment,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Gitea or Forgejo instance, e.g. https://gitea.example.com
    #[arg(long, value_name = "URL")]
    pub instance: String,
    /// The hybrid-runner image the pods run (with the tools your host steps need)
    #[arg(long, value_name = "IMAGE")]
    pub image: String,
    /// The namespace the runner lives in (created by the manifests)
    #[arg(long, default_value = "hybrid-runner")]
    pub namespace: String,
    /// The name of the workload, ServiceAccount and Service; runners are named after the pods
    #[arg(long, default_value = "hybrid-runner")]
    pub name: String,
    /// Labels registered, comma-separated [default: ubuntu-latest:host,self-hosted:host]
    #[arg(long, value_name = "LIST")]
    pub labels: Option<String>,
    /// Tasks each runner runs at once (runner.capacity)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub capacity: usize,
    /// Runner pods
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub replicas: i32,
    /// The Secret in --namespace whose key `token` holds the registration token
    #[arg(
        long,
        value_name = "SECRET",
        default_value = "hybrid-runner-registration"
    )]
    pub registration_token_secret: String,
    /// A kubernetes.io/dockerconfigjson Secret in --namespace with registry credentials for
    /// the image builds
    #[arg(long, value_name = "SECRET")]
    pub registry_secret: Option<String>,
    /// How long a stopping runner waits for running tasks (runner.shutdown_timeout); the
    /// pod's grace period is this plus 2 minutes
    #[arg(long, value_name = "DURATION", default_value = "3h")]
    pub shutdown_timeout: String,
    /// The workload kind
    #[arg(long, value_enum, default_value = "statefulset")]
    pub kind: KindArg,
    /// The size of each StatefulSet replica's volume (.runner and the log spool)
    #[arg(long, value_name = "SIZE", default_value = "1Gi")]
    pub storage: String,
    /// The StorageClass of that volume [default: the cluster's default]
    #[arg(long, value_name = "CLASS")]
    pub storage_class: Option<String>,
    /// A folder with your own copies of the templates of templates/deploy/
    #[arg(long, value_name = "DIR")]
    pub template_dir: Option<PathBuf>,
    /// Also create a ValidatingAdmissionPolicy (Kubernetes 1.30+) that lets the runner
    /// create and delete only in build namespaces, which RBAC alone cannot express
    #[arg(long)]
    pub admission_policy: bool,
    /// Namespaces (comma-separated, existing) the runner deploys to with `uses:
    /// hybrid-runner/deploy@v1` or `hybrid-runner deploy`: each gets a Role and RoleBinding
    /// granting its ServiceAccount get and patch on Deployments, StatefulSets and
    /// DaemonSets, list on pods and get on pods/log there, and nothing else
    #[arg(long, value_name = "NS1,NS2", value_delimiter = ',')]
    pub deploy_namespaces: Vec<String>,
    /// Print one JSON `List` instead of YAML documents
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let usage = |flag: &str, message: String| UsageError(format!("{flag}: {message}"));
    let mut settings = DeploySettings::new(&args.instance, &args.image);
    settings.namespace = args.namespace;
    settings.name = args.name;
    if let Some(labels) = &args.labels {
        settings.labels = labels
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
    }
    settings.capacity = args.capacity;
    settings.replicas = args.replicas;
    settings.registration_token_secret = args.registration_token_secret;
    settings.registry_secret = args.registry_secret;
    settings.shutdown_timeout = parse_duration(&args.shutdown_timeout)
        .map_err(|e| usage("--shutdown-timeout", e.to_string()))?;
    settings.kind = match args.kind {
        KindArg::Statefulset => WorkloadKind::StatefulSet,
        KindArg::Deployment => WorkloadKind::Deployment,
    };
    settings.storage = args.storage;
    settings.storage_class = args.storage_class;
    if let Some(dir) = &args.template_dir
        && !dir.is_dir()
    {
        return Err(usage(
            "--template-dir",
            format!("{} is not a folder", dir.display()),
        )
        .into());
    }
    settings.template_dir = args.template_dir;
    settings.admission_policy = args.admission_policy;
    settings.deploy_namespaces = args
        .deploy_namespaces
        .iter()
        .map(|ns| ns.trim().to_string())
        .filter(|ns| !ns.is_empty())
        .collect();
    settings.validate().map_err(|e| UsageError(e.to_string()))?;
    let manifests = deploy_manifests(&settings)?;
    if args.json {
        println!("{:#}", manifests.to_json_list()?);
    } else {
        print!("{}", manifests.to_yaml()?);
    }
    Ok(ExitCode::SUCCESS)
}
