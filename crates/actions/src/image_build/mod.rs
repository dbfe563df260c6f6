//! What becomes an image build: the three ways a workflow asks for one, lowered to a single
//! [`BuildRequest`] that the runner's `ImageBuilder` executes.
//!
//! 1. `uses: docker/build-push-action@*` ([`from_build_push_inputs`]), served by the runner
//!    itself, never fetched;
//! 2. the runner's own dual-tag action `hybrid-runner/build@v1` ([`from_dual_inputs`]);
//! 3. `docker build` / `nerdctl build` / `docker push` / `docker tag` in `run:` steps, caught by
//!    a shim on the step's `PATH` ([`parse_docker_cli`]).
//!
//! Everything here is pure: no file system, no processes. Facts the lowering needs from the
//! outside world (the commit sha, whether `Dockerfile.k8s` exists) are parameters.

mod build_push;
mod docker_cli;
mod dual;
mod error;
mod inputs;
mod request;

pub use build_push::{BUILD_PUSH_ACTION, from_build_push_inputs};
pub use docker_cli::{DockerCommand, parse_docker_cli};
pub use dual::{
    DUAL_ACTION, TagTemplates, check_image, dual_k8s_dockerfile, dual_tags, from_dual_inputs,
};
pub use error::BuildInputError;
pub use request::{BuildRequest, OutputsStyle, Variant, VariantRequest};

/// Which built-in build action a `uses:` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinBuild {
    /// `docker/build-push-action@<any ref>`.
    BuildPush,
    /// `hybrid-runner/build@<any ref>`.
    Dual,
}

/// `docker/build-push-action@<any>` -> [`BuiltinBuild::BuildPush`],
/// `hybrid-runner/build@<any>` -> [`BuiltinBuild::Dual`], anything else -> `None`.
///
/// Owner and name compare case-insensitively (as GitHub does); a sub-path
/// (`docker/build-push-action/sub@v5`) or a missing `@ref` is not the action.
pub fn is_builtin_build_action(uses: &str) -> Option<BuiltinBuild> {
    let name = name_at_a_ref(uses)?;
    if name.eq_ignore_ascii_case(BUILD_PUSH_ACTION) {
        Some(BuiltinBuild::BuildPush)
    } else if name.eq_ignore_ascii_case(DUAL_ACTION) {
        Some(BuiltinBuild::Dual)
    } else {
        None
    }
}

/// The `owner/name` part of `owner/name@ref`, or `None` without a (non-empty) ref: how a
/// built-in action is named in `uses:` (see also `crate::deploy_action`).
pub(crate) fn name_at_a_ref(uses: &str) -> Option<&str> {
    let (name, reference) = uses.trim().split_once('@')?;
    (!reference.is_empty()).then_some(name)
}
