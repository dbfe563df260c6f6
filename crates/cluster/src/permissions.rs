//! The Kubernetes API permissions the Kaniko builder, its reaper and `status` / `logs` /
//! `cleanup` use, as one table: `hybrid-runner check` asks the API server about exactly
//! these (SelfSubjectAccessReview), and the runner's in-cluster ClusterRole
//! (`hybrid-runner generate-manifests`) is built from them, so the two cannot drift.
//! [`DEPLOY_PERMISSIONS`] are what a deploy (`hybrid-runner/deploy`, `hybrid-runner
//! deploy`: `hr_rollout`) does in the namespaces of its workloads, granted per namespace
//! by the Roles of `generate-manifests --deploy-namespaces`.

/// One permission: API group (`""` = core), resource, subresource (`""` = none), verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
    pub verbs: &'static [&'static str],
}

impl Permission {
    /// `group/resource/subresource` with empty parts left out, e.g. `pods/log`, `batch/jobs`.
    pub fn path(&self) -> String {
        match (self.group, self.subresource) {
            ("", "") => self.resource.to_string(),
            ("", sub) => format!("{}/{sub}", self.resource),
            (group, "") => format!("{group}/{}", self.resource),
            (group, sub) => format!("{group}/{}/{sub}", self.resource),
        }
    }

    /// The resource as RBAC names it: `pods/log` for a subresource.
    pub fn rbac_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

const fn permission(
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    verbs: &'static [&'static str],
) -> Permission {
    Permission {
        group,
        resource,
        subresource,
        verbs,
    }
}

/// Build namespaces: created per build (`get` reads one back after a conflict and while a
/// Job is followed), listed by label by the reaper, `status` and `cleanup`, deleted after
/// every build.
pub const NAMESPACES: Permission =
    permission("", "namespaces", "", &["create", "get", "list", "delete"]);
/// Kaniko Jobs: created, followed with a watch, listed by `status`, deleted on cancel.
pub const JOBS: Permission = permission(
    "batch",
    "jobs",
    "",
    &["create", "get", "list", "watch", "delete"],
);
/// Kaniko pods, followed with a watch and read for their state.
pub const PODS_READ: Permission = permission("", "pods", "", &["get", "list", "watch"]);
/// The same plus the context loader pod of a PVC context, which the runner creates and
/// deletes itself.
pub const PODS_WITH_LOADER: Permission = permission(
    "",
    "pods",
    "",
    &["create", "get", "list", "watch", "delete"],
);
/// Kaniko's log, streamed into the step log and printed by `hybrid-runner logs`.
pub const POD_LOGS: Permission = permission("", "pods", "log", &["get"]);
/// The context ConfigMap (`get` and `delete` only for the round trip of `check`).
pub const CONFIGMAPS: Permission = permission("", "configmaps", "", &["create", "get", "delete"]);
/// The context PVC of a large context.
pub const PVCS: Permission = permission(
    "",
    "persistentvolumeclaims",
    "",
    &["create", "get", "delete"],
);
/// Writing the context to the loader's or Kaniko's stdin. WebSocket attach is authorized
/// as `get`, and from Kubernetes 1.35 also as `create`.
pub const POD_ATTACH: Permission = permission("", "pods", "attach", &["get", "create"]);
/// Running the steps of a `kubernetes` label's job in its pod (`backend::pod`). WebSocket
/// exec is authorized as `get`, and from Kubernetes 1.35 also as `create`.
pub const POD_EXEC: Permission = permission("", "pods", "exec", &["get", "create"]);
/// A Docker step of a job pod, an ephemeral container added to the running pod.
pub const POD_EPHEMERAL_CONTAINERS: Permission =
    permission("", "pods", "ephemeralcontainers", &["patch"]);
/// The registry credentials Secret of a build namespace, and a job pod's Secrets (its
/// containers' env, its image pull Secret); never read back.
pub const SECRETS: Permission = permission("", "secrets", "", &["create"]);
/// The optional ResourceQuota of a build namespace.
pub const RESOURCE_QUOTAS: Permission = permission("", "resourcequotas", "", &["create"]);
/// The optional LimitRange of a build namespace.
pub const LIMIT_RANGES: Permission = permission("", "limitranges", "", &["create"]);

/// Events of a build's Jobs and pods: a `FailedCreate` (quota, LimitRange, Pod Security)
/// fails the build at once with the API server's message.
pub const EVENTS: Permission = permission("", "events", "", &["list", "watch"]);

/// The Lease in each build namespace, renewed while the build runs (`patch`), and listed
/// by the daemon's reaper to find builds whose runner is gone (`hr_cluster::leases`).
pub const LEASES: Permission = permission(
    "coordination.k8s.io",
    "leases",
    "",
    &["create", "patch", "list"],
);

/// The Deployments a deploy sets images on: read before the rollout and polled while it
/// is watched (`get`), the image set by a strategic merge patch and a failed rollout
/// undone by a JSON patch (`patch`). Nothing is listed, watched or replaced.
pub const DEPLOYMENTS: Permission = permission("apps", "deployments", "", &["get", "patch"]);
/// The StatefulSets a deploy sets images on, as [`DEPLOYMENTS`].
pub const STATEFUL_SETS: Permission = permission("apps", "statefulsets", "", &["get", "patch"]);
/// The DaemonSets a deploy sets images on, as [`DEPLOYMENTS`].
pub const DAEMON_SETS: Permission = permission("apps", "daemonsets", "", &["get", "patch"]);
/// A rollout's pods, listed by the workload's selector to find new pods that cannot start
/// (`ErrImagePull`, `CrashLoopBackOff`, ...).
pub const PODS_LIST: Permission = permission("", "pods", "", &["list"]);

/// What a deploy needs in each namespace it deploys to: its workloads, their pods, and
/// the last log lines of a container that cannot start ([`POD_LOGS`]). The undo restores
/// the pod template read before the rollout, so no ReplicaSet or ControllerRevision is
/// read.
pub const DEPLOY_PERMISSIONS: [Permission; 5] =
    [DEPLOYMENTS, STATEFUL_SETS, DAEMON_SETS, PODS_LIST, POD_LOGS];

/// Every permission of the ClusterRole any configuration may need (the union of
/// [`needed_permissions`] over all configurations); a deploy's are [`DEPLOY_PERMISSIONS`].
pub const ALL_PERMISSIONS: [Permission; 14] = [
    NAMESPACES,
    JOBS,
    LEASES,
    PODS_WITH_LOADER,
    POD_LOGS,
    CONFIGMAPS,
    PVCS,
    POD_ATTACH,
    POD_EXEC,
    POD_EPHEMERAL_CONTAINERS,
    SECRETS,
    RESOURCE_QUOTAS,
    LIMIT_RANGES,
    EVENTS,
];

/// What the jobs of `kubernetes` labels and container jobs need besides builds: their
/// namespace, their Secrets (env, image pull), their pod (created, read while it starts;
/// deleted with the namespace), exec into it, its services' and Docker steps' logs, and
/// Docker steps as ephemeral containers.
pub fn job_pod_permissions() -> [Permission; 6] {
    [
        NAMESPACES,
        SECRETS,
        PODS_WITH_LOADER,
        POD_EXEC,
        POD_LOGS,
        POD_EPHEMERAL_CONTAINERS,
    ]
}

/// `needed` (a build's) plus what the job pods of `kubernetes` labels need.
pub fn with_job_pods(mut needed: Vec<Permission>) -> Vec<Permission> {
    needed.retain(|p| *p != PODS_READ);
    for p in job_pod_permissions() {
        if !needed.contains(&p) {
            needed.push(p);
        }
    }
    needed
}
