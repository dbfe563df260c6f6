//! The API vocabulary of the fake: the resource types it serves (with their group, version,
//! kind and scope), the `Status` bodies of its errors, and RFC 3339 timestamps.

use std::time::SystemTime;

use serde_json::{Value, json};

/// One resource type the fake serves.
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// The plural used in paths, e.g. `configmaps`.
    pub plural: &'static str,
    pub kind: &'static str,
    /// `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub namespaced: bool,
    /// Whether `status` is a subresource (writes to the main resource keep the old status).
    pub status_subresource: bool,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether objects of this type carry `metadata.generation`.
    pub fn has_generation(&self) -> bool {
        matches!(
            self.plural,
            "jobs" | "pods" | "deployments" | "replicasets" | "statefulsets" | "daemonsets"
        )
    }

    /// `Kind.group` (`Deployment.apps`), or the kind alone in the core group, as
    /// `schema.GroupKind` prints in error messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

const fn core(
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    status: bool,
) -> ResourceType {
    ResourceType {
        plural,
        kind,
        group: "",
        version: "v1",
        namespaced,
        status_subresource: status,
    }
}

const fn apps(plural: &'static str, kind: &'static str, status: bool) -> ResourceType {
    ResourceType {
        plural,
        kind,
        group: "apps",
        version: "v1",
        namespaced: true,
        status_subresource: status,
    }
}

pub static RESOURCES: &[ResourceType] = &[
    core("namespaces", "Namespace", false, true),
    core("configmaps", "ConfigMap", true, false),
    core("secrets", "Secret", true, false),
    core(
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
        true,
    ),
    core("resourcequotas", "ResourceQuota", true, true),
    core("limitranges", "LimitRange", true, false),
    core("pods", "Pod", true, true),
    core("events", "Event", true, false),
    ResourceType {
        plural: "jobs",
        kind: "Job",
        group: "batch",
        version: "v1",
        namespaced: true,
        status_subresource: true,
    },
    core(
        "replicationcontrollers",
        "ReplicationController",
        true,
        true,
    ),
    ResourceType {
        plural: "cronjobs",
        kind: "CronJob",
        group: "batch",
        version: "v1",
        namespaced: true,
        status_subresource: true,
    },
    apps("deployments", "Deployment", true),
    apps("replicasets", "ReplicaSet", true),
    apps("statefulsets", "StatefulSet", true),
    apps("daemonsets", "DaemonSet", true),
    apps("controllerrevisions", "ControllerRevision", false),
    ResourceType {
        plural: "leases",
        kind: "Lease",
        group: "coordination.k8s.io",
        version: "v1",
        namespaced: true,
        status_subresource: false,
    },
    ResourceType {
        plural: "selfsubjectaccessreviews",
        kind: "SelfSubjectAccessReview",
        group: "authorization.k8s.io",
        version: "v1",
        namespaced: false,
        status_subresource: false,
    },
];

/// The resource type served at `group`/`version`/`plural`.
pub fn resource(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource type of `kind` (e.g. `Job`) or of a plural (e.g. `jobs`).
pub fn resource_named(kind_or_plural: &str) -> Option<&'static ResourceType> {
    RESOURCES.iter().find(|r| {
        r.kind.eq_ignore_ascii_case(kind_or_plural) || r.plural.eq_ignore_ascii_case(kind_or_plural)
    })
}

/// A failed request: its HTTP code and the `Status` the real API server would send.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String, details: Value) -> Self {
        ApiError {
            code,
            reason,
            message,
            details,
        }
    }

    fn details(rt: &ResourceType, name: &str) -> Value {
        let mut d = json!({"name": name, "kind": rt.plural});
        if !rt.group.is_empty() {
            d["group"] = json!(rt.group);
        }
        d
    }

    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        let message = match rt.group {
            "" => format!("{} \"{name}\" not found", rt.plural),
            g => format!("{}.{g} \"{name}\" not found", rt.plural),
        };
        Self::new(404, "NotFound", message, Self::details(rt, name))
    }

    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        let message = match rt.group {
            "" => format!("{} \"{name}\" already exists", rt.plural),
            g => format!("{}.{g} \"{name}\" already exists", rt.plural),
        };
        Self::new(409, "AlreadyExists", message, Self::details(rt, name))
    }

    pub fn conflict(rt: &ResourceType, name: &str) -> Self {
        let what = match rt.group {
            "" => rt.plural.to_string(),
            g => format!("{}.{g}", rt.plural),
        };
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {what} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
            Self::details(rt, name),
        )
    }

    pub fn namespace_terminating(rt: &ResourceType, name: &str, namespace: &str) -> Self {
        let mut details = Self::details(rt, name);
        details["causes"] = json!([{
            "reason": "NamespaceTerminating",
            "message": format!("namespace {namespace} is being terminated"),
            "field": "metadata.namespace"
        }]);
        Self::new(
            403,
            "Forbidden",
            format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                rt.plural
            ),
            details,
        )
    }

    pub fn rbac(verb: &str, resource: &str, group: &str, namespace: Option<&str>) -> Self {
        let scope = match namespace {
            Some(ns) => format!(" in the namespace \"{ns}\""),
            None => " at the cluster scope".to_string(),
        };
        let (plural, _) = resource.split_once('/').unwrap_or((resource, ""));
        Self::new(
            403,
            "Forbidden",
            format!(
                "{plural} is forbidden: User \"system:serviceaccount:hybrid-runner:runner\" cannot {verb} resource \"{resource}\" in API group \"{group}\"{scope}"
            ),
            json!({"kind": plural}),
        )
    }

    /// A 422 `Invalid` as `errors.NewInvalid` writes it: the qualified kind in the message
    /// (`Deployment.apps "x" is invalid: ...`), the kind (not the resource) in the details.
    pub fn invalid(rt: &ResourceType, name: &str, field: &str, problem: &str) -> Self {
        let mut details = Self::details(rt, name);
        details["kind"] = json!(rt.kind);
        details["causes"] =
            json!([{"reason": "FieldValueInvalid", "message": problem, "field": field}]);
        Self::new(
            422,
            "Invalid",
            format!(
                "{} \"{name}\" is invalid: {field}: {problem}",
                rt.qualified_kind()
            ),
            details,
        )
    }

    /// A failed JSON patch (`add`/`remove`/`test`...): `patch.go` answers with
    /// `NewGenericServerResponse(422, ...)`, whose message drops the patch library's text.
    pub fn json_patch_failed() -> Self {
        Self::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request".to_string(),
            json!({}),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into(), Value::Null)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message.into(), Value::Null)
    }

    /// A PATCH of a type the API server does not take (pkg/endpoints/handlers/patch.go:
    /// the patch types of a built-in kind); `content_type` is what was sent.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        let _ = content_type;
        Self::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml".to_string(),
            Value::Null,
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
            Value::Null,
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
            json!({"causes": [{"message": message}]}),
        )
    }

    /// The `Status` object of this error.
    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if !self.details.is_null() {
            s["details"] = self.details.clone();
        }
        s
    }
}

/// `t` as RFC 3339 in UTC with second precision, as Kubernetes writes timestamps.
pub use hr_cluster::time::rfc3339;

/// Now, as [`rfc3339`].
pub fn now() -> String {
    rfc3339(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_798_761_600 + 3_723);
        assert_eq!(rfc3339(t), "2027-01-01T01:02:03Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn not_found_names_the_group() {
        let jobs = resource_named("Job").unwrap_or(&RESOURCES[0]);
        assert_eq!(
            ApiError::not_found(jobs, "x").message,
            "jobs.batch \"x\" not found"
        );
    }
}
