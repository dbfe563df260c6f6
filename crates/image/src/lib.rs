//! Image builds: the build context (what is sent to the builder, after `.dockerignore`,
//! as a deterministic tar.gz with its sha256), the Kubernetes objects of a Kaniko dual
//! build (namespace, context, registry secret, one Job per variant), and the local
//! builders (buildah, podman, docker) that build on this host.

pub mod avoidance;
pub mod builder;
pub mod context;
pub mod dockerignore;
pub mod kaniko;
pub mod local;
pub mod metrics;
pub mod registry;
pub mod select;

pub use builder::{
    BuildError, BuildJob, BuildLog, BuildLogLine, BuildOutcome, BuildProgress, BuilderChoice,
    BuiltImage, ImageBuilder,
};
