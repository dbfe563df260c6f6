//! What a deploy step writes: the preflight's line per image and workload, one line per
//! finished rollout, and the error annotations (the pod's reason and its container's last
//! log lines). The remedies speak of the step's inputs, not of the CLI's flags.

use std::time::Duration;

use hr_rollout::{
    Outcome, Preflight, PreflightError, Rollback, RolloutFailure, RolloutReport, WorkloadProblem,
};

/// The step's `result`: `failed` when any rollout failed, else `rolled-out` when any
/// workload changed, else `unchanged`.
pub fn overall_result(reports: &[RolloutReport]) -> &'static str {
    let words: Vec<&str> = reports.iter().map(|r| r.outcome.word()).collect();
    if words.contains(&"failed") {
        "failed"
    } else if words.contains(&"rolled-out") {
        "rolled-out"
    } else {
        "unchanged"
    }
}

/// A workload the preflight cannot use, with what to change in the step.
pub fn workload_problem(problem: &WorkloadProblem) -> String {
    match problem {
        WorkloadProblem::Unwatchable { .. } => problem.to_string(),
        WorkloadProblem::NotFound { workload } => format!(
            "{workload} does not exist; create it first (e.g. `kubectl apply`), or fix the step's `workloads` input"
        ),
        WorkloadProblem::Read { workload, message } => format!(
            "cannot read {workload}: {message}; check that the namespace exists and that the runner may read and patch its workloads (`hybrid-runner generate-manifests --deploy-namespaces {}` renders that Role)",
            workload.namespace
        ),
        WorkloadProblem::Container {
            workload,
            wanted,
            containers,
        } => {
            let list = containers.join(", ");
            let found = match wanted {
                Some(name) => format!("no container `{name}` (it has containers {list})"),
                None => format!("no container named like it and more than one (containers {list})"),
            };
            format!(
                "{workload} has {found}; name the container in `workloads`: `{}:<container>`",
                workload.name
            )
        }
    }
}

/// The preflight's lines: `ok` with the digest, or what is missing.
pub fn preflight_lines(preflight: &Preflight) -> Vec<String> {
    let mut lines = preflight.image_lines();
    for problem in &preflight.workload_problems {
        lines.push(format!("missing  {}", workload_problem(problem)));
    }
    lines
}

/// The error annotation of a failed preflight: the summary, then each problem.
pub fn preflight_failure(error: &PreflightError) -> String {
    let PreflightError::Missing {
        images, workloads, ..
    } = error;
    let mut text = error.to_string();
    for image in images {
        text.push_str(&format!("\n- {image}"));
    }
    for problem in workloads {
        text.push_str(&format!("\n- {}", workload_problem(problem)));
    }
    text
}

/// What became of a failed rollout's template.
fn rollback_text(outcome: &Rollback) -> String {
    outcome.describe("not rolled back (`rollback: false`)")
}

/// A failure in the step's words (a timeout names the `timeout` input).
fn failure_text(failure: &RolloutFailure) -> String {
    match failure {
        RolloutFailure::Timeout {
            seconds,
            status,
            not_ready,
        } => format!(
            "the rollout did not finish within {seconds} s (last status: {status}){}; raise the step's `timeout` input, or look at the pods with `kubectl describe`",
            hr_rollout::error::not_ready_text(not_ready)
        ),
        other => other.to_string(),
    }
}

/// One line per finished rollout: `Deployment shop/api: rolled-out in 3.1 s: ...`.
pub fn result_line(report: &RolloutReport) -> String {
    let target = &report.workload.target;
    let took = seconds(report.duration);
    match &report.outcome {
        Outcome::RolledOut { message } | Outcome::Unchanged { message } => {
            format!("{target}: {} in {took}: {message}", report.outcome.word())
        }
        Outcome::Failed {
            failure,
            rollback: outcome,
        } => format!(
            "{target}: failed in {took}: {}; {}",
            failure.reason(),
            rollback_text(outcome)
        ),
    }
}

/// The error annotation of a failed rollout, with the container's last log lines.
pub fn rollout_failure(report: &RolloutReport) -> Option<String> {
    let Outcome::Failed {
        failure,
        rollback: outcome,
    } = &report.outcome
    else {
        return None;
    };
    let w = &report.workload;
    let mut text = format!(
        "{}, container {}: {}; {}",
        w.target,
        w.container,
        failure_text(failure),
        rollback_text(outcome)
    );
    if let RolloutFailure::Pod { logs, .. } = failure
        && !logs.is_empty()
    {
        text.push_str("\nlast log lines of the container:");
        for line in logs {
            text.push_str(&format!("\n| {line}"));
        }
    }
    Some(text)
}

fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hr_rollout::{Workload, WorkloadKind, WorkloadRef};
    use serde_json::json;

    fn report(outcome: Outcome) -> RolloutReport {
        let target = WorkloadRef {
            kind: WorkloadKind::Deployment,
            namespace: "shop".into(),
            name: "api".into(),
            container: None,
        };
        let object = json!({"spec": {"selector": {"matchLabels": {"app": "api"}},
            "template": {"spec": {"containers": [{"name": "api", "image": "reg/api:old"}]}}}});
        RolloutReport {
            workload: Workload::from_object(&target, object).unwrap(),
            image: "reg/api:2@sha256:ab".into(),
            outcome,
            duration: Duration::from_millis(2500),
        }
    }

    #[test]
    fn failures_carry_the_reason_the_rollback_and_the_last_log_lines() {
        let crashed = report(Outcome::Failed {
            failure: RolloutFailure::Pod {
                pod: "api-7d9-x2".into(),
                container: "api".into(),
                reason: "CrashLoopBackOff".into(),
                message: "back-off 10s restarting failed container".into(),
                logs: vec!["starting".into(), "panic: no DATABASE_URL".into()],
            },
            rollback: Rollback::Restored {
                image: "reg/api:old".into(),
            },
        });
        let text = rollout_failure(&crashed).unwrap();
        assert_eq!(
            text,
            "Deployment shop/api, container api: pod api-7d9-x2, container api: CrashLoopBackOff: back-off 10s restarting failed container; rolled back to reg/api:old\nlast log lines of the container:\n| starting\n| panic: no DATABASE_URL"
        );
        assert_eq!(
            result_line(&crashed),
            "Deployment shop/api: failed in 2.5 s: CrashLoopBackOff; rolled back to reg/api:old"
        );
        let slow = report(Outcome::Failed {
            failure: RolloutFailure::Timeout {
                seconds: 30,
                status: "Waiting for deployment \"api\" rollout to finish".into(),
                not_ready: Vec::new(),
            },
            rollback: Rollback::Disabled,
        });
        let text = rollout_failure(&slow).unwrap();
        assert!(text.contains("raise the step's `timeout` input"), "{text}");
        assert!(
            text.ends_with("not rolled back (`rollback: false`)"),
            "{text}"
        );
        let refused = report(Outcome::Failed {
            failure: RolloutFailure::Patch {
                message: "forbidden".into(),
            },
            rollback: Rollback::NothingChanged,
        });
        assert!(result_line(&refused).ends_with("patch-refused; nothing was changed"));
        let done = report(Outcome::RolledOut {
            message: "deployment \"api\" successfully rolled out".into(),
        });
        assert_eq!(rollout_failure(&done), None);
        assert_eq!(
            result_line(&done),
            "Deployment shop/api: rolled-out in 2.5 s: deployment \"api\" successfully rolled out"
        );
        let same = report(Outcome::Unchanged {
            message: String::new(),
        });
        assert_eq!(overall_result(std::slice::from_ref(&same)), "unchanged");
        assert_eq!(overall_result(&[same.clone(), done]), "rolled-out");
        assert_eq!(overall_result(&[same, crashed]), "failed");
    }

    #[test]
    fn workload_problems_name_the_input_to_fix() {
        let target = WorkloadRef {
            kind: WorkloadKind::StatefulSet,
            namespace: "shop".into(),
            name: "db".into(),
            container: None,
        };
        let text = workload_problem(&WorkloadProblem::Container {
            workload: Box::new(target.clone()),
            wanted: None,
            containers: vec!["main".into(), "backup".into()],
        });
        assert!(text.contains("containers main, backup"), "{text}");
        assert!(text.contains("`db:<container>`"), "{text}");
        let text = workload_problem(&WorkloadProblem::NotFound { workload: target });
        assert!(text.contains("fix the step's `workloads` input"), "{text}");
    }
}
