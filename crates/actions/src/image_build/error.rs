//! Why a build could not be lowered; every message says what to do instead.

/// A build form the runner refuses, or inputs it cannot read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildInputError {
    /// An input the runner cannot honour (`load`, `outputs`, `secrets`, several platforms…).
    #[error("{action}: input `{input}` is not supported: {remedy}")]
    Unsupported {
        action: &'static str,
        input: String,
        remedy: String,
    },
    /// An input whose value cannot be read (a non-boolean `push`, a `build-arg` without `=`…).
    #[error("{action}: input `{input}` has an invalid value `{value}`: {remedy}")]
    InvalidValue {
        action: &'static str,
        input: String,
        value: String,
        remedy: String,
    },
    /// A required input is missing.
    #[error("{action}: input `{input}` is required: {remedy}")]
    Missing {
        action: &'static str,
        input: String,
        remedy: String,
    },
    /// A `docker`/`nerdctl` command line the shim cannot read.
    #[error("`{command}`: {problem}; {remedy}")]
    DockerCli {
        command: String,
        problem: String,
        remedy: String,
    },
}
