//! Reading what the cluster says about a build, with no IO: a Job's verdict from its
//! conditions, a pod's reason never to start (image pull, container config, scheduling),
//! the Kaniko container's state, and the digest in its termination message.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerState, Event, Pod};

/// The container of a build pod that runs the executor (the template's name).
pub const KANIKO_CONTAINER: &str = "kaniko";

/// Waiting reasons after which a container never starts on its own. `ErrImagePull` can be
/// transient on a flaky registry, but the kubelet retries it as `ImagePullBackOff` for
/// minutes while the Job stays active; failing at once, with the reason, is what the user
/// wants from a CI step.
pub const FATAL_WAITING_REASONS: [&str; 6] = [
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// What a Job's conditions say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobVerdict {
    /// No terminal condition yet.
    Running,
    /// `SuccessCriteriaMet` or `Complete` is true.
    Succeeded,
    /// `FailureTarget` or `Failed` is true (reason and message of the condition).
    Failed { reason: String, message: String },
}

/// The verdict of `job`: failure when `FailureTarget` or `Failed` is true (Kubernetes 1.31+
/// adds `FailureTarget` first, older versions only `Failed`), success when
/// `SuccessCriteriaMet` or `Complete` is true, else still running. kube-rs's
/// `is_job_completed` only looks at `Complete`, so it never sees a failure.
pub fn job_verdict(job: &Job) -> JobVerdict {
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let is_true = |c: &&k8s_openapi::api::batch::v1::JobCondition| c.status == "True";
    if let Some(c) = conditions
        .iter()
        .filter(is_true)
        .find(|c| matches!(c.type_.as_str(), "FailureTarget" | "Failed"))
    {
        return JobVerdict::Failed {
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
        };
    }
    if conditions
        .iter()
        .filter(is_true)
        .any(|c| matches!(c.type_.as_str(), "SuccessCriteriaMet" | "Complete"))
    {
        return JobVerdict::Succeeded;
    }
    JobVerdict::Running
}

/// Why a pod cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodProblem {
    /// A container waits for a reason in [`FATAL_WAITING_REASONS`].
    Fatal {
        container: String,
        reason: String,
        message: String,
    },
    /// The scheduler cannot place the pod right now (`PodScheduled=False`,
    /// `Unschedulable`); an autoscaler may still add a node, so this fails only after a
    /// deadline.
    Unschedulable { message: String },
}

/// The first reason `pod` cannot run, if any.
pub fn pod_problem(pod: &Pod) -> Option<PodProblem> {
    let status = pod.status.as_ref()?;
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for c in containers {
        let Some(waiting) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let reason = waiting.reason.as_deref().unwrap_or_default();
        if FATAL_WAITING_REASONS.contains(&reason) {
            return Some(PodProblem::Fatal {
                container: c.name.clone(),
                reason: reason.to_string(),
                message: waiting.message.clone().unwrap_or_default(),
            });
        }
    }
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        })
        .map(|c| PodProblem::Unschedulable {
            message: c.message.clone().unwrap_or_default(),
        })
}

/// The API server's refusal of a Job's pod, from a Job event: the Job controller records
/// a Warning `FailedCreate` with `Error creating: <error>` when the pod create fails
/// (kubernetes pkg/controller/controller_utils.go, `createPods`). A refusal by admission
/// (`pods "..." is forbidden: ...`: ResourceQuota, LimitRange, Pod Security) does not go
/// away on its own while the build waits, so it is returned; other create errors (a
/// timeout of the API server) are left to the Job controller's retries.
pub fn refused_pod(event: &Event) -> Option<String> {
    if event.reason.as_deref() != Some("FailedCreate")
        || event.type_.as_deref() != Some("Warning")
        || event.involved_object.kind.as_deref() != Some("Job")
    {
        return None;
    }
    let message = event.message.as_deref()?.trim();
    let error = message.strip_prefix("Error creating: ").unwrap_or(message);
    (error.starts_with("pods ") && error.contains(" is forbidden: ")).then(|| error.to_string())
}

/// Why the kubelet or the control plane ended a pod, when it was not its containers:
/// `status.reason` (`Evicted`, `DeadlineExceeded`, ...) with its message, or else a true
/// `DisruptionTarget` condition (preemption, eviction, node loss). `None` for a pod whose
/// containers simply exited.
pub fn pod_end_reason(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if let Some(reason) = status.reason.as_deref().filter(|r| !r.is_empty()) {
        let message = status.message.as_deref().unwrap_or_default().trim();
        return Some(if message.is_empty() {
            reason.to_string()
        } else {
            format!("{reason}: {message}")
        });
    }
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionTarget" && c.status == "True")
        .map(|c| {
            let reason = c.reason.as_deref().unwrap_or_default();
            match c
                .message
                .as_deref()
                .map(str::trim)
                .filter(|m| !m.is_empty())
            {
                Some(m) => format!("DisruptionTarget ({reason}): {m}"),
                None => format!("DisruptionTarget ({reason})"),
            }
        })
}

/// Where the Kaniko container of a pod is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KanikoState {
    /// Not created yet, or waiting (pulling, creating).
    NotStarted,
    Running,
    Terminated {
        exit_code: i32,
        reason: String,
        /// The termination message: the digest on success (`--digest-file=/dev/termination-log`).
        message: String,
    },
}

impl KanikoState {
    /// Whether the container has started (so its log can be read).
    pub fn started(&self) -> bool {
        !matches!(self, KanikoState::NotStarted)
    }
}

/// The state of the container named [`KANIKO_CONTAINER`] in `pod`.
pub fn kaniko_state(pod: &Pod) -> KanikoState {
    let state: Option<&ContainerState> = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_deref())
        .and_then(|cs| cs.iter().find(|c| c.name == KANIKO_CONTAINER))
        .and_then(|c| c.state.as_ref());
    match state {
        Some(ContainerState {
            terminated: Some(t),
            ..
        }) => KanikoState::Terminated {
            exit_code: t.exit_code,
            reason: t.reason.clone().unwrap_or_default(),
            message: t.message.clone().unwrap_or_default(),
        },
        Some(ContainerState {
            running: Some(_), ..
        }) => KanikoState::Running,
        _ => KanikoState::NotStarted,
    }
}

/// The image digest in a termination message: `sha256:` and 64 lowercase hex digits,
/// surrounding whitespace ignored. `None` for anything else.
pub fn parse_digest(message: &str) -> Option<String> {
    let digest = message.trim();
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then(|| digest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::api::core::v1::{
        ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
        PodCondition, PodStatus,
    };

    fn job(conditions: &[(&str, &str, &str)]) -> Job {
        Job {
            status: Some(JobStatus {
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(type_, status, reason)| JobCondition {
                            type_: type_.to_string(),
                            status: status.to_string(),
                            reason: Some(reason.to_string()),
                            message: Some(format!("{type_} because {reason}")),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn job_conditions_give_the_verdict() {
        assert_eq!(job_verdict(&Job::default()), JobVerdict::Running);
        assert_eq!(job_verdict(&job(&[])), JobVerdict::Running);
        assert_eq!(
            job_verdict(&job(&[("Complete", "True", "CompletionsReached")])),
            JobVerdict::Succeeded
        );
        assert_eq!(
            job_verdict(&job(&[(
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached"
            )])),
            JobVerdict::Succeeded
        );
        assert_eq!(
            job_verdict(&job(&[("Complete", "False", "x")])),
            JobVerdict::Running
        );
        // 1.31+: FailureTarget comes first, Failed once the pods are gone.
        assert_eq!(
            job_verdict(&job(&[("FailureTarget", "True", "BackoffLimitExceeded")])),
            JobVerdict::Failed {
                reason: "BackoffLimitExceeded".into(),
                message: "FailureTarget because BackoffLimitExceeded".into()
            }
        );
        assert_eq!(
            job_verdict(&job(&[
                ("Suspended", "False", "x"),
                ("Failed", "True", "DeadlineExceeded")
            ])),
            JobVerdict::Failed {
                reason: "DeadlineExceeded".into(),
                message: "Failed because DeadlineExceeded".into()
            }
        );
        assert_eq!(
            job_verdict(&job(&[("Failed", "False", "x")])),
            JobVerdict::Running
        );
    }

    fn pod_with(states: Vec<(&str, ContainerState)>, conditions: Vec<PodCondition>) -> Pod {
        Pod {
            status: Some(PodStatus {
                container_statuses: Some(
                    states
                        .into_iter()
                        .map(|(name, state)| ContainerStatus {
                            name: name.to_string(),
                            state: Some(state),
                            ..Default::default()
                        })
                        .collect(),
                ),
                conditions: Some(conditions),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn waiting(reason: &str) -> ContainerState {
        ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.to_string()),
                message: Some(format!("because {reason}")),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn waiting_reasons_are_classified() {
        for reason in FATAL_WAITING_REASONS {
            let pod = pod_with(vec![("kaniko", waiting(reason))], vec![]);
            assert_eq!(
                pod_problem(&pod),
                Some(PodProblem::Fatal {
                    container: "kaniko".into(),
                    reason: reason.into(),
                    message: format!("because {reason}")
                })
            );
        }
        for reason in ["ContainerCreating", "PodInitializing", ""] {
            let pod = pod_with(vec![("kaniko", waiting(reason))], vec![]);
            assert_eq!(pod_problem(&pod), None, "{reason}");
        }
        assert_eq!(pod_problem(&Pod::default()), None);
    }

    #[test]
    fn unschedulable_is_read_from_the_scheduled_condition() {
        let cond = |status: &str, reason: &str| PodCondition {
            type_: "PodScheduled".into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some("0/3 nodes are available".into()),
            ..Default::default()
        };
        let pod = pod_with(vec![], vec![cond("False", "Unschedulable")]);
        assert_eq!(
            pod_problem(&pod),
            Some(PodProblem::Unschedulable {
                message: "0/3 nodes are available".into()
            })
        );
        assert_eq!(pod_problem(&pod_with(vec![], vec![cond("True", "")])), None);
        assert_eq!(
            pod_problem(&pod_with(vec![], vec![cond("False", "SchedulingGated")])),
            None
        );
        // A fatal container reason wins over scheduling.
        let pod = pod_with(
            vec![("kaniko", waiting("ErrImagePull"))],
            vec![cond("False", "Unschedulable")],
        );
        assert!(matches!(pod_problem(&pod), Some(PodProblem::Fatal { .. })));
    }

    #[test]
    fn kaniko_container_state_and_digest() {
        let digest = format!("sha256:{}", "ab12".repeat(16));
        let terminated = ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 0,
                reason: Some("Completed".into()),
                message: Some(format!("{digest}\n")),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pod = pod_with(
            vec![("sidecar", waiting("x")), ("kaniko", terminated)],
            vec![],
        );
        let state = kaniko_state(&pod);
        let KanikoState::Terminated { message, .. } = &state else {
            panic!("{state:?}")
        };
        assert_eq!(parse_digest(message), Some(digest));
        assert!(state.started());
        let running = ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..Default::default()
        };
        assert_eq!(
            kaniko_state(&pod_with(vec![("kaniko", running)], vec![])),
            KanikoState::Running
        );
        assert_eq!(
            kaniko_state(&pod_with(
                vec![("kaniko", waiting("ContainerCreating"))],
                vec![]
            )),
            KanikoState::NotStarted
        );
        assert!(!KanikoState::NotStarted.started());
    }

    #[test]
    fn digests_are_strict() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(
            parse_digest(&format!("  sha256:{hex}  ")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(parse_digest(&format!("sha256:{}", &hex[1..])), None);
        assert_eq!(
            parse_digest(&format!("sha256:{}", hex.to_uppercase())),
            None
        );
        assert_eq!(parse_digest(&format!("sha512:{hex}")), None);
        assert_eq!(parse_digest(""), None);
        assert_eq!(parse_digest("error building image"), None);
    }

    #[test]
    fn failed_create_events_give_the_refusal() {
        let event = |reason: &str, type_: &str, message: &str| Event {
            reason: Some(reason.into()),
            type_: Some(type_.into()),
            message: Some(message.into()),
            involved_object: k8s_openapi::api::core::v1::ObjectReference {
                kind: Some("Job".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let quota = "Error creating: pods \"kaniko-docker-x7k2p\" is forbidden: exceeded quota: build-quota, requested: pods=1, used: pods=0, limited: pods=0";
        assert_eq!(
            refused_pod(&event("FailedCreate", "Warning", quota)).as_deref(),
            Some(&quota["Error creating: ".len()..])
        );
        assert_eq!(
            refused_pod(&event("SuccessfulCreate", "Normal", "Created pod: x")),
            None
        );
        // Not an admission refusal: the Job controller retries it.
        assert_eq!(
            refused_pod(&event(
                "FailedCreate",
                "Warning",
                "Error creating: the server was unable to return a response in the time allotted"
            )),
            None
        );
    }

    #[test]
    fn pod_end_reasons_name_eviction_deadline_and_disruption() {
        let evicted = Pod {
            status: Some(PodStatus {
                phase: Some("Failed".into()),
                reason: Some("Evicted".into()),
                message: Some("The node was low on resource: memory. ".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            pod_end_reason(&evicted).as_deref(),
            Some("Evicted: The node was low on resource: memory.")
        );
        let preempted = Pod {
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "DisruptionTarget".into(),
                    status: "True".into(),
                    reason: Some("PreemptionByScheduler".into()),
                    message: Some(
                        "default-scheduler: preempting to accommodate a higher priority pod".into(),
                    ),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            pod_end_reason(&preempted).as_deref(),
            Some(
                "DisruptionTarget (PreemptionByScheduler): default-scheduler: preempting to accommodate a higher priority pod"
            )
        );
        assert_eq!(pod_end_reason(&Pod::default()), None);
    }
}
