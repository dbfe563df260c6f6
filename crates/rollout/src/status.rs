//! Whether a workload finished rolling out, decided exactly as `kubectl rollout status`
//! decides it (kubectl `pkg/polymorphichelpers/rollout_status.go`: the Deployment,
//! StatefulSet and DaemonSet status viewers), with kubectl's messages.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use serde_json::Value;

use crate::workload::WorkloadKind;

/// One reading of a workload's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutStatus {
    /// Still rolling out: kubectl's `Waiting for ...` line.
    Waiting(String),
    /// Rolled out: kubectl's `... successfully rolled out` line.
    Done(String),
    /// The rollout cannot finish (a Deployment past its progress deadline), or cannot be
    /// watched (an `OnDelete` StatefulSet or DaemonSet).
    Failed {
        reason: &'static str,
        message: String,
    },
}

/// The status of `object`, a workload of `kind` as the API returned it.
pub fn rollout_status(kind: WorkloadKind, object: &Value) -> RolloutStatus {
    match kind {
        WorkloadKind::Deployment => match serde_json::from_value::<Deployment>(object.clone()) {
            Ok(d) => deployment_status(&d),
            Err(e) => unreadable(kind, &e),
        },
        WorkloadKind::StatefulSet => match serde_json::from_value::<StatefulSet>(object.clone()) {
            Ok(s) => stateful_set_status(&s),
            Err(e) => unreadable(kind, &e),
        },
        WorkloadKind::DaemonSet => match serde_json::from_value::<DaemonSet>(object.clone()) {
            Ok(d) => daemon_set_status(&d),
            Err(e) => unreadable(kind, &e),
        },
    }
}

fn unreadable(kind: WorkloadKind, e: &serde_json::Error) -> RolloutStatus {
    RolloutStatus::Failed {
        reason: "unreadable",
        message: format!("the API returned a {kind} that does not parse: {e}"),
    }
}

fn deployment_status(d: &Deployment) -> RolloutStatus {
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    let status = d.status.clone().unwrap_or_default();
    if generation > status.observed_generation.unwrap_or(0) {
        return RolloutStatus::Waiting(
            "Waiting for deployment spec update to be observed...".to_string(),
        );
    }
    let timed_out = status.conditions.iter().flatten().any(|c| {
        c.type_.as_deref() == Some("Progressing")
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if timed_out {
        return RolloutStatus::Failed {
            reason: "ProgressDeadlineExceeded",
            message: format!("deployment \"{name}\" exceeded its progress deadline"),
        };
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if let Some(wanted) = d.spec.replicas
        && updated < wanted
    {
        return RolloutStatus::Waiting(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {updated} out of {wanted} new replicas have been updated..."
        ));
    }
    if replicas > updated {
        return RolloutStatus::Waiting(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {} old replicas are pending termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return RolloutStatus::Waiting(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    RolloutStatus::Done(format!("deployment \"{name}\" successfully rolled out"))
}

fn stateful_set_status(s: &StatefulSet) -> RolloutStatus {
    let spec = &s.spec;
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    if strategy.type_.as_deref().unwrap_or("RollingUpdate") != "RollingUpdate" {
        return RolloutStatus::Failed {
            reason: "OnDelete",
            message: "rollout status is only available for RollingUpdate strategy type; this StatefulSet updates its pods only when they are deleted (OnDelete)".to_string(),
        };
    }
    let status = s.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or(0);
    if observed == 0 || s.metadata.generation.unwrap_or(0) > observed {
        return RolloutStatus::Waiting(
            "Waiting for statefulset spec update to be observed...".to_string(),
        );
    }
    let ready = status.ready_replicas.unwrap_or(0);
    if let Some(wanted) = spec.replicas
        && ready < wanted
    {
        return RolloutStatus::Waiting(format!(
            "Waiting for {} pods to be ready...",
            wanted - ready
        ));
    }
    let updated = status.updated_replicas.unwrap_or(0);
    if let Some(rolling) = &strategy.rolling_update {
        if let (Some(wanted), Some(partition)) = (spec.replicas, rolling.partition)
            && updated < wanted - partition
        {
            return RolloutStatus::Waiting(format!(
                "Waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated...",
                wanted - partition
            ));
        }
        return RolloutStatus::Done(format!(
            "partitioned roll out complete: {updated} new pods have been updated..."
        ));
    }
    let update_revision = status.update_revision.clone().unwrap_or_default();
    let current_revision = status.current_revision.clone().unwrap_or_default();
    if update_revision != current_revision {
        return RolloutStatus::Waiting(format!(
            "waiting for statefulset rolling update to complete {updated} pods at revision {update_revision}..."
        ));
    }
    RolloutStatus::Done(format!(
        "statefulset rolling update complete {} pods at revision {current_revision}...",
        status.current_replicas.unwrap_or(0)
    ))
}

fn daemon_set_status(d: &DaemonSet) -> RolloutStatus {
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let strategy = d
        .spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.clone())
        .unwrap_or_else(|| "RollingUpdate".to_string());
    if strategy != "RollingUpdate" {
        return RolloutStatus::Failed {
            reason: "OnDelete",
            message: "rollout status is only available for RollingUpdate strategy type; this DaemonSet updates its pods only when they are deleted (OnDelete)".to_string(),
        };
    }
    let status = d.status.clone().unwrap_or_default();
    if d.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return RolloutStatus::Waiting(
            "Waiting for daemon set spec update to be observed...".to_string(),
        );
    }
    let desired = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    if updated < desired {
        return RolloutStatus::Waiting(format!(
            "Waiting for daemon set \"{name}\" rollout to finish: {updated} out of {desired} new pods have been updated..."
        ));
    }
    let available = status.number_available.unwrap_or(0);
    if available < desired {
        return RolloutStatus::Waiting(format!(
            "Waiting for daemon set \"{name}\" rollout to finish: {available} of {desired} updated pods are available..."
        ));
    }
    RolloutStatus::Done(format!("daemon set \"{name}\" successfully rolled out"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(generation: i64, status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "api", "generation": generation},
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}},
                        "template": {"spec": {"containers": []}}},
               "status": status})
    }

    #[test]
    fn deployments_read_as_kubectl_reads_them() {
        let status = |g, s| rollout_status(WorkloadKind::Deployment, &deployment(g, s));
        assert_eq!(
            status(2, json!({"observedGeneration": 1})),
            RolloutStatus::Waiting("Waiting for deployment spec update to be observed...".into())
        );
        assert_eq!(
            status(2, json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1})),
            RolloutStatus::Waiting("Waiting for deployment \"api\" rollout to finish: 1 out of 2 new replicas have been updated...".into())
        );
        assert_eq!(
            status(2, json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2})),
            RolloutStatus::Waiting("Waiting for deployment \"api\" rollout to finish: 1 old replicas are pending termination...".into())
        );
        assert_eq!(
            status(2, json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1})),
            RolloutStatus::Waiting("Waiting for deployment \"api\" rollout to finish: 1 of 2 updated replicas are available...".into())
        );
        assert_eq!(
            status(
                2,
                json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2})
            ),
            RolloutStatus::Done("deployment \"api\" successfully rolled out".into())
        );
        let timed_out = status(
            2,
            json!({"observedGeneration": 2, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
        );
        assert!(
            matches!(timed_out, RolloutStatus::Failed { reason: "ProgressDeadlineExceeded", ref message } if message.contains("exceeded its progress deadline")),
            "{timed_out:?}"
        );
    }

    #[test]
    fn stateful_and_daemon_sets_read_as_kubectl_reads_them() {
        let sts = |strategy: Value, status: Value| {
            rollout_status(
                WorkloadKind::StatefulSet,
                &json!({"metadata": {"name": "db", "generation": 3},
                        "spec": {"replicas": 3, "serviceName": "db", "selector": {}, "template": {},
                                 "updateStrategy": strategy},
                        "status": status}),
            )
        };
        let rolling = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}});
        assert_eq!(
            sts(
                rolling.clone(),
                json!({"observedGeneration": 3, "replicas": 3, "readyReplicas": 1})
            ),
            RolloutStatus::Waiting("Waiting for 2 pods to be ready...".into())
        );
        assert_eq!(
            sts(
                rolling,
                json!({"observedGeneration": 3, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3})
            ),
            RolloutStatus::Done(
                "partitioned roll out complete: 3 new pods have been updated...".into()
            )
        );
        assert_eq!(
            sts(
                json!({"type": "RollingUpdate"}),
                json!({"observedGeneration": 3, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3, "currentRevision": "db-1", "updateRevision": "db-2"})
            ),
            RolloutStatus::Waiting(
                "waiting for statefulset rolling update to complete 3 pods at revision db-2..."
                    .into()
            )
        );
        assert!(matches!(
            sts(json!({"type": "OnDelete"}), json!({})),
            RolloutStatus::Failed {
                reason: "OnDelete",
                ..
            }
        ));
        let ds = |status: Value| {
            rollout_status(
                WorkloadKind::DaemonSet,
                &json!({"metadata": {"name": "agent", "generation": 2},
                        "spec": {"selector": {}, "template": {}}, "status": status}),
            )
        };
        assert_eq!(
            ds(json!({"observedGeneration": 2, "desiredNumberScheduled": 1, "currentNumberScheduled": 1, "numberMisscheduled": 0, "numberReady": 0, "updatedNumberScheduled": 1, "numberAvailable": 0})),
            RolloutStatus::Waiting("Waiting for daemon set \"agent\" rollout to finish: 0 of 1 updated pods are available...".into())
        );
        assert_eq!(
            ds(
                json!({"observedGeneration": 2, "desiredNumberScheduled": 1, "currentNumberScheduled": 1, "numberMisscheduled": 0, "numberReady": 1, "updatedNumberScheduled": 1, "numberAvailable": 1})
            ),
            RolloutStatus::Done("daemon set \"agent\" successfully rolled out".into())
        );
    }
}
