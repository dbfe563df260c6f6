//! The Kubernetes side of an image build: the manifests of a Kaniko dual build (namespace,
//! quota, registry secret, build context, one Job per variant), rendered from the YAML
//! templates under `templates/kaniko/` into typed `k8s-openapi` objects and adjusted in typed
//! form, never string-patched after rendering; and running them: [`KanikoBuilder`]
//! creates the objects, follows each Job and its pod, streams the log, reads the digest,
//! and deletes the namespace on every path.

mod apply;
mod builder;
mod check;
mod conditions;
mod config;
mod inspect;
mod job;
mod manifests;
mod permissions;
mod pod_log;
mod run;
mod spec;
mod tags;
mod templates;
mod upload;
mod watch;
mod yaml;

use std::path::PathBuf;
use std::time::Duration;

use hr_cluster::templates::TemplateError;

pub use builder::KanikoBuilder;
pub use check::{
    Check, CheckOptions, CheckStatus, POD_ROUND_TRIP, PodProbe, PodProbeReport, run_checks,
};
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
    build_manifests_packed, configmap_data_size,
};
pub use permissions::needed_permissions;
pub use run::BuildTimings;
pub use spec::{
    PackedFile, REVISION_LABEL, build_spec, pack_context_file, registry_host, repository,
};
pub use tags::{TagTemplates, dual_tags};
pub use templates::Template;
pub use yaml::to_yaml_documents;

/// One image variant of a dual build (the same type every build form lowers to).
pub use actions::image_build::Variant;

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

/// Why the manifests of a build could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("nothing to build: no variant (is there a Dockerfile in {0}?)")]
    NoVariants(PathBuf),
    #[error("variant {0} has no tag to push; configure at least one tag template")]
    NoTags(Variant),
    #[error("{0}")]
    ContextTooLarge(String),
    #[error(
        "cannot read the packed build context of {} back from {}: {message}; check the temporary folder (TMPDIR)",
        .dir.display(),
        .path.display()
    )]
    ContextRead {
        dir: PathBuf,
        path: PathBuf,
        message: String,
    },
    #[error("cannot serialize the {kind} {name} as {format}: {message}")]
    Serialize {
        kind: &'static str,
        name: String,
        format: &'static str,
        message: String,
    },
}
