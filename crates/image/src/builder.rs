//! The `ImageBuilder`: one interface that executes a [`BuildJob`], whichever builder runs it
//! (Kaniko on Kubernetes, a local buildah / podman / docker, or a dry run that only prints
//! what it would do). Every build form of a workflow (the built-in actions and the `docker`
//! shim) and the standalone `hybrid-runner build` come through here.
//!
//! The set of builders is closed, so [`ImageBuilder`] is an enum, not a trait object.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actions::image_build::{BuildRequest, Variant};
use tokio_util::sync::CancellationToken;

use super::kaniko::KanikoBuilder;
use super::local::LocalBuilder;
use hr_cluster::TaskIds;

/// A build as the builder receives it: the lowered request plus the facts of the job it
/// belongs to.
#[derive(Debug, Clone)]
pub struct BuildJob {
    /// What to build. Paths in it (`context`, each variant's `dockerfile`) are relative to
    /// [`BuildJob::workspace`] (absolute paths are used as given).
    pub request: BuildRequest,
    /// The folder the request's relative paths start from (the step's working directory).
    pub workspace: PathBuf,
    /// The commit the tags were derived from (full sha), recorded as a label.
    pub sha: String,
    /// The task and job the build belongs to (names the Kubernetes namespace).
    pub task: TaskIds,
    /// The longest the build may take (the step's timeout).
    pub timeout: Duration,
    /// Registries reached over plain HTTP or with an untrusted certificate (`host:port`).
    pub insecure_registries: Vec<String>,
}

impl BuildJob {
    /// The context folder on the host.
    pub fn context_dir(&self) -> PathBuf {
        self.workspace.join(&self.request.context)
    }

    /// A variant's Dockerfile on the host.
    pub fn dockerfile_path(&self, dockerfile: &str) -> PathBuf {
        self.workspace.join(dockerfile)
    }
}

/// One image the build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    pub variant: Variant,
    /// The manifest digest, `sha256:<hex>`, as the registry knows it (empty only when the
    /// request did not push and the builder cannot know it).
    pub digest: String,
    /// Every full reference (`registry/name:tag`) the image was tagged (and pushed) with.
    pub tags: Vec<String>,
}

/// Records a finished build in `metrics`: one observation per requested variant, each
/// with the build's whole duration and result.
fn observe(
    metrics: &super::metrics::BuildMetrics,
    job: &BuildJob,
    result: &Result<BuildOutcome, BuildError>,
    duration: Duration,
) {
    use super::metrics::BuildResult;
    let result = match result {
        Ok(_) => BuildResult::Success,
        Err(BuildError::Cancelled) => BuildResult::Cancelled,
        Err(BuildError::TimedOut(_)) => BuildResult::TimedOut,
        Err(_) => BuildResult::Failure,
    };
    for variant in &job.request.variants {
        metrics.observe(variant.variant.as_str(), result, duration);
    }
}

/// What a finished build reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildOutcome {
    /// One entry per variant, in the request's order.
    pub images: Vec<BuiltImage>,
}

/// One line of build output (the builder's own log, the Kaniko pod's log ...), tagged with
/// the variant it belongs to when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildLogLine {
    pub variant: Option<Variant>,
    pub line: String,
}

/// How one variant of a build is getting on, for callers that show per-variant progress
/// (`hybrid-runner build`). Builders that run variants separately report them; a caller
/// must not rely on receiving any (a builder may report only its final outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildProgress {
    /// The builder started building the variant.
    Started(Variant),
    /// The variant was built (and pushed when the request says so).
    Built(BuiltImage),
    /// The variant was not built: an image built from the same inputs was in the registry
    /// and got the requested tags (`skip-unchanged`, see [`super::avoidance`]).
    Reused(BuiltImage),
    /// The variant's build or push failed; `message` is what [`BuildError::Failed`] says.
    Failed { variant: Variant, message: String },
}

type ProgressSink = Arc<dyn Fn(BuildProgress) + Send + Sync>;

/// Where a builder writes its log lines. The receiver masks secrets before anything is
/// shown, so builders write lines as they come.
#[derive(Clone)]
pub struct BuildLog {
    sink: Arc<dyn Fn(BuildLogLine) + Send + Sync>,
    progress: Option<ProgressSink>,
}

impl fmt::Debug for BuildLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BuildLog")
    }
}

impl BuildLog {
    pub fn new(sink: impl Fn(BuildLogLine) + Send + Sync + 'static) -> BuildLog {
        BuildLog {
            sink: Arc::new(sink),
            progress: None,
        }
    }

    /// The same log, also handing per-variant [`BuildProgress`] to `progress`.
    pub fn with_progress(
        mut self,
        progress: impl Fn(BuildProgress) + Send + Sync + 'static,
    ) -> BuildLog {
        self.progress = Some(Arc::new(progress));
        self
    }

    /// Reports a variant's progress (dropped when nobody listens).
    pub fn progress(&self, event: BuildProgress) {
        if let Some(progress) = &self.progress {
            progress(event);
        }
    }

    /// A log that drops every line.
    pub fn discard() -> BuildLog {
        BuildLog::new(|_| {})
    }

    pub fn line(&self, variant: Option<Variant>, line: impl Into<String>) {
        (self.sink)(BuildLogLine {
            variant,
            line: line.into(),
        });
    }
}

/// Why a build did not produce its images. A failed build is an error of the step, shown
/// to the user with its remedy; the variant names the phase that failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot pack the build context {dir}: {message}")]
    Context { dir: PathBuf, message: String },
    #[error(transparent)]
    Manifests(#[from] super::kaniko::ManifestError),
    /// The builder ran and the build itself failed (a Dockerfile step, a push ...).
    #[error("{variant} image build failed: {message}")]
    Failed { variant: Variant, message: String },
    /// The builder could not be started or reached (missing program, cluster unreachable,
    /// permission refused ...).
    #[error("{builder}: {message}")]
    Unavailable {
        builder: &'static str,
        message: String,
    },
    #[error("the build did not finish within {0:?}")]
    TimedOut(Duration),
    #[error("the build was cancelled")]
    Cancelled,
}

/// Which builder the user asked for (`--builder`, the `builder` config key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuilderChoice {
    /// Kubernetes when a kubeconfig or in-cluster config works, else the first local
    /// builder found on `PATH`.
    #[default]
    Auto,
    Kaniko,
    Buildah,
    Podman,
    Docker,
}

impl BuilderChoice {
    pub const NAMES: [&'static str; 5] = ["auto", "kaniko", "buildah", "podman", "docker"];

    pub fn as_str(self) -> &'static str {
        match self {
            BuilderChoice::Auto => "auto",
            BuilderChoice::Kaniko => "kaniko",
            BuilderChoice::Buildah => "buildah",
            BuilderChoice::Podman => "podman",
            BuilderChoice::Docker => "docker",
        }
    }
}

impl std::str::FromStr for BuilderChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(BuilderChoice::Auto),
            "kaniko" | "kubernetes" => Ok(BuilderChoice::Kaniko),
            "buildah" => Ok(BuilderChoice::Buildah),
            "podman" => Ok(BuilderChoice::Podman),
            "docker" => Ok(BuilderChoice::Docker),
            other => Err(format!(
                "unknown builder '{other}'; expected one of {}",
                BuilderChoice::NAMES.join(", ")
            )),
        }
    }
}

/// The builder that runs builds. Variants are added as the builders land: `Kaniko`
/// (`build/kaniko/`), `Local` (`build/local/`: buildah, podman, docker) and `DryRun`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ImageBuilder {
    /// Kaniko Jobs on Kubernetes, one namespace per build.
    Kaniko(KanikoBuilder),
    /// buildah, podman or docker on this host.
    Local(LocalBuilder),
}

impl ImageBuilder {
    /// Run one build to the end: every variant built (in parallel where the builder can)
    /// and pushed when the request says so. Cancelling `cancel` stops the build and
    /// cleans up what it created before returning [`BuildError::Cancelled`].
    pub async fn build(
        &self,
        job: &BuildJob,
        log: &BuildLog,
        cancel: &CancellationToken,
    ) -> Result<BuildOutcome, BuildError> {
        let started = std::time::Instant::now();
        let result = match self {
            ImageBuilder::Kaniko(builder) => builder.build(job, log, cancel).await,
            ImageBuilder::Local(local) => local.build(job, log, cancel).await,
        };
        observe(super::metrics::process(), job, &result, started.elapsed());
        result
    }

    /// The builder's name as `--builder` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            ImageBuilder::Kaniko(_) => "kaniko",
            ImageBuilder::Local(local) => local.tool.as_str(),
        }
    }
}
