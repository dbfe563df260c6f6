//! Image builds: the build context (what is sent to the builder, after `.dockerignore`,
//! as a deterministic tar.gz with its sha256) and the Kubernetes objects of a Kaniko dual
//! build (namespace, context, registry secret, one Job per variant).

pub mod builder;
pub mod context;
pub mod dockerignore;
pub mod kaniko;
pub mod registry;

pub use builder::{
    BuildError, BuildJob, BuildLog, BuildLogLine, BuildOutcome, BuilderChoice, BuiltImage,
    ImageBuilder,
};
