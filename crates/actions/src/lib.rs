//! Everything behind `uses:`: parsing references, reading `action.yml` metadata
//! (composite / node / docker), the remote action cache (git, from a configurable base URL,
//! with an offline mode) and the built-in actions the runner serves itself (the image
//! builds in [`image_build`], `hybrid-runner/deploy` in [`deploy_action`]).
//!
//! No Gitea, GitHub API or Kubernetes knowledge lives here. IO is blocking (the `git` CLI
//! through `std::process`); async callers wrap it in `spawn_blocking`.

mod cache;
pub mod deploy_action;
mod error;
pub mod image_build;
pub mod inputs;
mod manifest;
mod reference;

pub use cache::{ActionCache, no_link_leaves};
pub use error::{ActionError, Result};
pub use manifest::{
    ActionInput, ActionManifest, ActionOutput, CompositeStep, NODE_VERSIONS, Runs, load_manifest,
    parse_manifest,
};
pub use reference::{ActionRef, Builtin, WorkflowRef, builtin};
