//! The one shape every build form lowers to.

use std::path::PathBuf;

/// Which Dockerfile flavour a variant builds: the image for plain Docker hosts, or the one
/// tuned for Kubernetes (`Dockerfile.k8s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Variant {
    /// Built from `Dockerfile`; tagged `latest`, `docker-latest`, `docker-<sha>` by default.
    Docker,
    /// Built from `Dockerfile.k8s`; tagged `k8s-latest`, `k8s-<sha>` by default.
    K8s,
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Variant {
    /// Both variants, in build order.
    pub const ALL: [Variant; 2] = [Variant::Docker, Variant::K8s];

    /// The Dockerfile the variant is built from, relative to the context.
    pub fn default_dockerfile(self) -> &'static str {
        match self {
            Variant::Docker => "Dockerfile",
            Variant::K8s => "Dockerfile.k8s",
        }
    }

    /// The lower-case name used in inputs (`variants: docker,k8s`) and output keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Docker => "docker",
            Variant::K8s => "k8s",
        }
    }
}

/// Which outputs the step exposes once the build finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputsStyle {
    /// `docker/build-push-action`: `imageid`, `digest`, `metadata`.
    BuildPush,
    /// `hybrid-runner/build`: per variant `<variant>-digest`, `<variant>-image`
    /// (`name@digest`), `<variant>-tags`.
    Dual,
    /// The `docker` CLI shim: no step outputs; the command's exit status and log only.
    Shim,
}

/// One image to build: a Dockerfile and the full references to tag it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantRequest {
    pub variant: Variant,
    /// Path of the Dockerfile relative to the workspace (as `docker build -f` would take it
    /// from the step's working directory).
    pub dockerfile: String,
    /// Full references, `registry/name:tag`; a reference without a tag got `:latest`.
    pub tags: Vec<String>,
}

/// A build, whichever form asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRequest {
    /// The build context, relative to the workspace as given (`.` when not given).
    pub context: PathBuf,
    /// One entry per image to build; never empty.
    pub variants: Vec<VariantRequest>,
    /// `--build-arg` pairs in the order given; a later duplicate overrides an earlier one when
    /// the builder applies them.
    pub build_args: Vec<(String, String)>,
    /// The multi-stage target, if any.
    pub target: Option<String>,
    pub labels: Vec<(String, String)>,
    /// Push the tags to their registry once built.
    pub push: bool,
    /// Reuse cached layers (false for `no-cache: true` / `--no-cache`).
    pub cache: bool,
    /// Opt-in build avoidance (`skip-unchanged: true`, `--skip-unchanged`): when the registry
    /// already holds an image built from the same inputs, tag it instead of building. Only
    /// honoured when the request pushes; see the runner's `build::avoidance`.
    pub skip_unchanged: bool,
    pub outputs_for: OutputsStyle,
}
