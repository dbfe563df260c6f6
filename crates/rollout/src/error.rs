//! What can go wrong, by phase: the preflight ([`PreflightError`], with one
//! [`ImageProblem`] or [`WorkloadProblem`] per thing missing) and the rollout of one
//! workload ([`RolloutFailure`]). Each message says what to do about it.

use crate::workload::WorkloadRef;
use hr_image::registry::Absence;

/// An image to be set that the preflight could not find.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageProblem {
    #[error("{image}: {}", missing_detail(*absence, tags))]
    Missing {
        image: String,
        absence: Absence,
        /// Tags the repository has (some), when only the tag is missing.
        tags: Vec<String>,
    },
    #[error("{image}: {message}")]
    Unreachable { image: String, message: String },
    #[error("{image}: {message}")]
    Denied { image: String, message: String },
    #[error("{image}: not an image reference: {message}")]
    Reference { image: String, message: String },
}

/// `no such tag in the registry (the repository has tags 1.0, latest)`.
pub fn missing_detail(absence: Absence, tags: &[String]) -> String {
    match (absence, tags.is_empty()) {
        (Absence::Tag, false) => format!(
            "{} in the registry (the repository has tags {})",
            absence.as_str(),
            tags.join(", ")
        ),
        _ => format!("{} in the registry", absence.as_str()),
    }
}

impl ImageProblem {
    /// `missing`, `unreachable` or `invalid`: for one-line reports.
    pub fn status(&self) -> &'static str {
        match self {
            ImageProblem::Missing { .. } => "missing",
            ImageProblem::Unreachable { .. } => "unreachable",
            ImageProblem::Denied { .. } => "denied",
            ImageProblem::Reference { .. } => "invalid",
        }
    }
}

/// An image the preflight could not find, and the build that should have produced it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}; {producer}")]
pub struct MissingImage {
    pub problem: ImageProblem,
    /// E.g. `built by service api (hybrid-runner build --only api)`.
    pub producer: String,
}

/// A workload the preflight could not use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadProblem {
    #[error(
        "{workload} does not exist; create it first (e.g. `kubectl apply`), or name another in the service's `deploy:` list"
    )]
    NotFound { workload: WorkloadRef },
    #[error("cannot read {workload}: {message}")]
    Read {
        workload: WorkloadRef,
        message: String,
    },
    #[error("{workload} {why}")]
    Unwatchable {
        workload: Box<WorkloadRef>,
        /// What keeps a rollout from happening, and what to do.
        why: String,
    },
    #[error("{workload} has {}; set `container:` in the service's `deploy:` entry", describe_containers(wanted.as_deref(), containers))]
    Container {
        workload: Box<WorkloadRef>,
        wanted: Option<String>,
        containers: Vec<String>,
    },
}

fn describe_containers(wanted: Option<&str>, containers: &[String]) -> String {
    let list = containers.join(", ");
    match wanted {
        Some(name) => format!("no container `{name}` (it has containers {list})"),
        None => format!("no container named like it and more than one (containers {list})"),
    }
}

/// The preflight failed: nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreflightError {
    #[error("{}; nothing was changed", preflight_summary(images.len(), *total, workloads.len()))]
    Missing {
        images: Vec<MissingImage>,
        workloads: Vec<WorkloadProblem>,
        total: usize,
    },
}

/// `2 of 3 images are missing or unreachable, 1 workload is missing or unusable`.
fn preflight_summary(images: usize, total: usize, workloads: usize) -> String {
    let mut parts = Vec::new();
    if images > 0 {
        let verb = if images == 1 { "is" } else { "are" };
        let noun = if total == 1 { "image" } else { "images" };
        parts.push(format!(
            "{images} of {total} {noun} {verb} missing or unreachable"
        ));
    }
    if workloads > 0 {
        let (noun, verb) = if workloads == 1 {
            ("workload", "is")
        } else {
            ("workloads", "are")
        };
        parts.push(format!("{workloads} {noun} {verb} missing or unusable"));
    }
    parts.join(", ")
}

/// `; new pods not ready: a; b`, or nothing.
pub fn not_ready_text(not_ready: &[String]) -> String {
    if not_ready.is_empty() {
        String::new()
    } else {
        format!("; new pods not ready: {}", not_ready.join("; "))
    }
}

/// Why one workload's rollout failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolloutFailure {
    #[error("the API server refused the image patch: {message}")]
    Patch { message: String },
    #[error("pod {pod}, container {container}: {reason}: {message}")]
    Pod {
        pod: String,
        container: String,
        /// `ErrImagePull`, `ImagePullBackOff`, `CrashLoopBackOff`, ...
        reason: String,
        message: String,
        /// The container's last log lines (its previous instance after a crash).
        logs: Vec<String>,
    },
    #[error("{message}")]
    Deadline { message: String },
    #[error(
        "the rollout did not finish within {seconds} s (last status: {status}){}; raise --timeout, or look at the pods with `kubectl describe`",
        not_ready_text(not_ready)
    )]
    Timeout {
        seconds: u64,
        status: String,
        /// What the new pods that are not ready wait for (`pod api-1: not scheduled: ...`).
        not_ready: Vec<String>,
    },
    #[error("{message}")]
    Unsupported { message: String },
    #[error("watching the rollout failed: {message}")]
    Watch { message: String },
    #[error("cancelled")]
    Cancelled,
}

impl RolloutFailure {
    /// A short word for reports (`CrashLoopBackOff`, `ProgressDeadlineExceeded`, `timeout`).
    pub fn reason(&self) -> &str {
        match self {
            RolloutFailure::Patch { .. } => "patch-refused",
            RolloutFailure::Pod { reason, .. } => reason,
            RolloutFailure::Deadline { .. } => "ProgressDeadlineExceeded",
            RolloutFailure::Timeout { .. } => "timeout",
            RolloutFailure::Unsupported { .. } => "unsupported",
            RolloutFailure::Watch { .. } => "watch-failed",
            RolloutFailure::Cancelled => "cancelled",
        }
    }
}
