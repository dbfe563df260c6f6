//! The Kubernetes side of an image build: the manifests of a Kaniko dual build (namespace,
//! quota, registry secret, build context, one Job per variant), rendered from the YAML
//! templates under `templates/build/` into typed `k8s-openapi` objects and adjusted in typed
//! form, never string-patched after rendering; and running them: [`KanikoBuilder`]
//! creates the objects, follows each Job and its pod, streams the log, reads the digest,
//! and deletes the namespace on every path.

mod apply;
mod check;
mod cleanup;
mod cluster;
mod conditions;
mod config;
mod inspect;
mod job;
mod manifests;
mod names;
mod permissions;
mod pod_log;
mod run;
mod spec;
mod tags;
mod templates;
mod time;
mod upload;
mod watch;
mod yaml;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub use check::{Check, CheckOptions, CheckStatus, run_checks};
pub use cleanup::{
    EXPIRES_AT_ANNOTATION, NamespaceGuard, RUNNER_ID_LABEL, ReapScope, delete_namespace,
    expires_at, is_runner_namespace, reap, reap_expired, reapable_namespaces, runner_namespaces,
    runner_selector, select_reapable,
};
pub use cluster::{ClusterError, KanikoBuilder};
pub(crate) use cluster::{describe, retry, status_code};
pub use conditions::{
    FATAL_WAITING_REASONS, JobVerdict, KANIKO_CONTAINER, KanikoState, PodProblem, job_verdict,
    kaniko_state, parse_digest, pod_problem,
};
pub use config::{
    ContextMode, DEFAULT_EXECUTOR_IMAGE, DEFAULT_LOADER_IMAGE, KanikoConfig, LargeContextMode,
    LimitRangeConfig, PvcConfig, ResourcesConfig,
};
pub use inspect::{BuildNamespace, BuildNamespaceJob, build_namespaces, stream_logs};
pub use manifests::{
    BuildManifests, CONFIGMAP_BUDGET_BYTES, CONTEXT_KEY, ContextObjects, build_manifests,
    configmap_encoded_size,
};
pub(crate) use manifests::{NamespaceOwner, task_namespace};
pub use names::{is_dns1123_label, label_value, namespace_name};
pub use permissions::{
    ALL_PERMISSIONS, Permission, job_pod_permissions, needed_permissions, with_job_pods,
};
pub use run::BuildTimings;
pub use spec::{REVISION_LABEL, build_spec, registry_host, repository};
pub use tags::{TagTemplates, dual_tags};
pub use templates::Template;
pub(crate) use templates::{substitute, template_text};
pub(crate) use time::rfc3339;
pub use yaml::to_yaml_documents;

/// One image variant of a dual build (the same type every build form lowers to).
pub use actions::build::Variant;

/// One variant to build: its Dockerfile (relative to the context) and the full image
/// references (`registry/repo:tag`) to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantSpec {
    pub variant: Variant,
    pub dockerfile: String,
    pub tags: Vec<String>,
}

/// What to build: the image, the commit, the context and the variants.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// The image repository without a tag, e.g. `registry.local:5000/app`.
    pub image: String,
    /// The commit sha the tags are derived from.
    pub sha: String,
    /// The context directory on the host (for messages; the bytes come separately).
    pub context_dir: PathBuf,
    pub variants: Vec<VariantSpec>,
    /// `--build-arg` pairs, in order.
    pub build_args: Vec<(String, String)>,
    /// `--target` stage, if any.
    pub target: Option<String>,
    /// `--label` pairs, in order.
    pub labels: Vec<(String, String)>,
    /// The step timeout, which becomes each Job's `activeDeadlineSeconds`.
    pub timeout: Duration,
}

/// Who the build belongs to: the task and job the namespace is named after, and when the
/// task started (the namespace's expiry counts from there).
#[derive(Debug, Clone)]
pub struct TaskIds {
    pub task: String,
    pub job: String,
    pub started_at: SystemTime,
}

/// Why the manifests of a build could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "cannot read the template {path}: {source}; fix template_dir or remove the file to use the built-in template"
    )]
    TemplateRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("template {template}: {message}")]
    TemplateSubstitute {
        template: &'static str,
        message: String,
    },
    #[error(
        "template {template} is not a valid {kind} after substitution: {message}; fix the template or remove it from template_dir to use the built-in one"
    )]
    TemplateParse {
        template: &'static str,
        kind: &'static str,
        message: String,
    },
    #[error("nothing to build: no variant (is there a Dockerfile in {0}?)")]
    NoVariants(PathBuf),
    #[error("variant {0} has no tag to push; configure at least one tag template")]
    NoTags(Variant),
    #[error("{0}")]
    ContextTooLarge(String),
    #[error("cannot serialize the {kind} {name} as {format}: {message}")]
    Serialize {
        kind: &'static str,
        name: String,
        format: &'static str,
        message: String,
    },
}
