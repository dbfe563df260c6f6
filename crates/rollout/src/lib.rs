//! Rolling built images out to the workloads that run them, and checking the images
//! workloads reference.
//!
//! - [`preflight`]: before anything changes, every image to be set is resolved in its
//!   registry to a digest and every workload read; anything missing stops the deploy.
//! - [`rollout`]: the image is set by digest (`name:tag@sha256:…`) with a strategic merge
//!   patch, the rollout watched as `kubectl rollout status` watches it ([`status`]) while
//!   the new pods are checked for states that never heal ([`pods`]), and a failed rollout
//!   is undone by putting the previous pod template back.
//! - [`image_uses`]: the images of the workloads of manifests or namespaces, for
//!   `check --images`.
//!
//! It knows Deployments, StatefulSets and DaemonSets ([`workload`]), the registry client of
//! `hr_image` and the cluster layer of `hr_cluster`; nothing of services files or the CLI.

pub mod cluster;
pub mod error;
pub mod image_uses;
pub mod pods;
pub mod preflight;
pub mod rollout;
pub mod status;
pub mod workload;

pub use cluster::DeployCluster;
pub use error::{ImageProblem, MissingImage, PreflightError, RolloutFailure, WorkloadProblem};
pub use preflight::{ImageCheck, Planned, Preflight, Target, pinned, preflight, resolve_images};
pub use rollout::{Outcome, Rollback, RolloutOptions, RolloutReport, roll_out, undo};
pub use status::{RolloutStatus, rollout_status};
pub use workload::{Workload, WorkloadKind, WorkloadRef};
