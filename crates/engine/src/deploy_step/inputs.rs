//! The inputs of `hybrid-runner/deploy@v1`, read and checked before the cluster or the
//! registry is asked anything; every error names the input and says what to write.
//!
//! | input | | |
//! | --- | --- | --- |
//! | `image` | required | the image to set: `name@sha256:…` (the build's `k8s-image` output) or `name:tag`, resolved to its digest |
//! | `workloads` | required | one per line (or comma-separated): `[kind/]name[:container]` or `kind/namespace/name[:container]`; kind `deployment` by default, kubectl's names (`deploy`, `sts`, `ds` ...) |
//! | `namespace` | | the namespace of workloads that name none [default: the kube context's, or the service account's in a cluster] |
//! | `timeout` | `600` | the longest one workload's rollout may take: seconds, or `90s`, `10m`, `1h` |
//! | `rollback` | `true` | put the previous pod template back when a rollout fails |
//! | `insecure-registries` | | registries (`host:port`) reached over plain HTTP, besides the runner's own |

use std::time::Duration;

use actions::inputs::{boolean_value, get, unknown_input};
use hr_cluster::names::{is_dns1123_label, is_dns1123_subdomain};
use hr_rollout::{Target, WorkloadKind, WorkloadRef};

use super::DEPLOY_ACTION;

/// Every input the action takes.
pub const KNOWN_INPUTS: &[&str] = &[
    "image",
    "workloads",
    "namespace",
    "timeout",
    "rollback",
    "insecure-registries",
];

/// [`DeployRequest::timeout`] when the step gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Inputs that cannot be read; each message names the input and the remedy.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeployInputError {
    #[error("{DEPLOY_ACTION}: input `{input}` is required: {remedy}")]
    Missing { input: &'static str, remedy: String },
    #[error("{DEPLOY_ACTION}: input `{input}` has an invalid value `{value}`: {remedy}")]
    InvalidValue {
        input: &'static str,
        value: String,
        remedy: String,
    },
    #[error("{DEPLOY_ACTION}: input `{input}` is not supported: {remedy}")]
    Unsupported { input: String, remedy: String },
}

/// One workload as `workloads` names it; the namespace is resolved later, against the
/// cluster's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadSpec {
    pub kind: WorkloadKind,
    /// Given in the line itself (`kind/namespace/name`).
    pub namespace: Option<String>,
    pub name: String,
    pub container: Option<String>,
}

/// What one deploy step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployRequest {
    pub image: String,
    pub workloads: Vec<WorkloadSpec>,
    /// The `namespace` input.
    pub namespace: Option<String>,
    pub timeout: Duration,
    pub rollback: bool,
    /// The `insecure-registries` input (the runner's own come on top).
    pub insecure_registries: Vec<String>,
}

impl DeployRequest {
    /// The preflight's targets; `default_namespace` is the cluster connection's.
    pub fn targets(&self, default_namespace: &str) -> Vec<Target> {
        let namespace = self.namespace.as_deref().unwrap_or(default_namespace);
        self.workloads
            .iter()
            .map(|w| Target {
                workload: WorkloadRef {
                    kind: w.kind,
                    namespace: w.namespace.clone().unwrap_or_else(|| namespace.to_string()),
                    name: w.name.clone(),
                    container: w.container.clone(),
                },
                image: self.image.clone(),
                producer: "check the step's `image` input (e.g. `${{ steps.<build step id>.outputs.k8s-image }}` of a `hybrid-runner/build@v1` step with `push: true`)".to_string(),
            })
            .collect()
    }
}

/// Items of a list input: one per line or comma-separated, trimmed, empty ones dropped.
fn items(value: &str) -> impl Iterator<Item = &str> {
    value
        .lines()
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

fn invalid(input: &'static str, value: &str, remedy: impl Into<String>) -> DeployInputError {
    DeployInputError::InvalidValue {
        input,
        value: value.to_string(),
        remedy: remedy.into(),
    }
}

/// `with:` -> the request.
pub fn from_deploy_inputs(inputs: &[(String, String)]) -> Result<DeployRequest, DeployInputError> {
    if let Some(name) = unknown_input(inputs, KNOWN_INPUTS) {
        return Err(DeployInputError::Unsupported {
            input: name.to_string(),
            remedy: format!(
                "it is not an input of {DEPLOY_ACTION}; known inputs: {}",
                KNOWN_INPUTS.join(", ")
            ),
        });
    }
    let image = get(inputs, "image").ok_or_else(|| DeployInputError::Missing {
        input: "image",
        remedy: "set `image: ${{ steps.<build step id>.outputs.k8s-image }}` (the digest a `hybrid-runner/build@v1` step pushed) or `image: registry/name:tag`".to_string(),
    })?;
    if let Err(e) = hr_image::registry::ImageRef::parse(image) {
        return Err(invalid(
            "image",
            image,
            format!("{e}, or `registry/name@sha256:<digest>`"),
        ));
    }
    let listed = get(inputs, "workloads").ok_or_else(|| DeployInputError::Missing {
        input: "workloads",
        remedy: "name the workloads, one per line: `api` (a Deployment), `statefulset/db:main`, `daemonset/infra/agent`".to_string(),
    })?;
    let mut workloads: Vec<WorkloadSpec> = Vec::new();
    for item in items(listed) {
        let spec = workload(item)?;
        if workloads.contains(&spec) {
            return Err(invalid(
                "workloads",
                item,
                "it is named twice; name each workload (and container) once",
            ));
        }
        workloads.push(spec);
    }
    if workloads.is_empty() {
        return Err(invalid(
            "workloads",
            listed,
            "name at least one workload: `api` (a Deployment), `statefulset/db:main`",
        ));
    }
    let namespace = get(inputs, "namespace").map(str::to_string);
    if let Some(ns) = &namespace
        && !is_dns1123_label(ns)
    {
        return Err(invalid(
            "namespace",
            ns,
            "a namespace name is 1 to 63 lower-case letters, digits or `-`, starting and ending with a letter or digit",
        ));
    }
    let timeout = match get(inputs, "timeout") {
        None => DEFAULT_TIMEOUT,
        Some(text) => seconds(text).ok_or_else(|| {
            invalid(
                "timeout",
                text,
                "give the longest a rollout may take in seconds (`600`), or as `90s`, `10m`, `1h`",
            )
        })?,
    };
    let rollback = match get(inputs, "rollback") {
        None => true,
        Some(text) => boolean_value(text)
            .ok_or_else(|| invalid("rollback", text, "write `true` or `false`"))?,
    };
    let mut insecure_registries = Vec::new();
    for host in get(inputs, "insecure-registries")
        .map(items)
        .into_iter()
        .flatten()
    {
        if host.contains("://") || host.contains('/') || host.contains(char::is_whitespace) {
            return Err(invalid(
                "insecure-registries",
                host,
                "name registries as `host:port`, without a scheme or path",
            ));
        }
        insecure_registries.push(host.to_string());
    }
    Ok(DeployRequest {
        image: image.to_string(),
        workloads,
        namespace,
        timeout,
        rollback,
        insecure_registries,
    })
}

/// `[kind/]name[:container]` or `kind/namespace/name[:container]`.
fn workload(item: &str) -> Result<WorkloadSpec, DeployInputError> {
    let bad = |remedy: &str| invalid("workloads", item, remedy);
    let (path, container) = match item.split_once(':') {
        Some((path, container)) => (path, Some(container.trim())),
        None => (item, None),
    };
    let parts: Vec<&str> = path.split('/').map(str::trim).collect();
    let (kind, namespace, name) = match parts.as_slice() {
        [name] => (None, None, *name),
        [kind, name] => (Some(*kind), None, *name),
        [kind, namespace, name] => (Some(*kind), Some(*namespace), *name),
        _ => {
            return Err(bad(
                "write `[kind/]name[:container]` or `kind/namespace/name[:container]`",
            ));
        }
    };
    let kind = match kind {
        None => WorkloadKind::Deployment,
        Some(text) => WorkloadKind::parse(text).ok_or_else(|| {
            bad(&format!(
                "`{text}` is not a workload kind: use deployment (deploy), statefulset (sts) or daemonset (ds)"
            ))
        })?,
    };
    if let Some(ns) = namespace
        && !is_dns1123_label(ns)
    {
        return Err(bad(&format!(
            "`{ns}` is not a namespace name (lower-case letters, digits and `-`)"
        )));
    }
    if !is_dns1123_subdomain(name) {
        return Err(bad(&format!(
            "`{name}` is not a workload name (lower-case letters, digits, `-` and `.`)"
        )));
    }
    if let Some(c) = container
        && !is_dns1123_label(c)
    {
        return Err(bad(&format!(
            "`{c}` is not a container name (lower-case letters, digits and `-`)"
        )));
    }
    Ok(WorkloadSpec {
        kind,
        namespace: namespace.map(str::to_string),
        name: name.to_string(),
        container: container.map(str::to_string),
    })
}

/// `600`, `600s`, `10m`, `1h` -> a duration of at least a second.
fn seconds(text: &str) -> Option<Duration> {
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let factor = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    };
    let seconds = number.parse::<u64>().ok()?.checked_mul(factor)?;
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        from_deploy_inputs(&with(pairs)).unwrap_err().to_string()
    }

    const IMAGE: &str = "127.0.0.1:5000/shop/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn workloads_read_kind_namespace_name_and_container() {
        let request = from_deploy_inputs(&with(&[
            ("image", IMAGE),
            (
                "workloads",
                "api\n  statefulset/db:main\nds/infra/agent, deploy/web:nginx\n\n",
            ),
            ("namespace", "shop"),
        ]))
        .unwrap();
        assert_eq!(request.timeout, DEFAULT_TIMEOUT);
        assert!(request.rollback);
        let targets: Vec<String> = request
            .targets("default")
            .iter()
            .map(|t| format!("{} {:?}", t.workload, t.workload.container))
            .collect();
        assert_eq!(
            targets,
            [
                "Deployment shop/api None",
                "StatefulSet shop/db Some(\"main\")",
                "DaemonSet infra/agent None",
                "Deployment shop/web Some(\"nginx\")",
            ]
        );
        // Without `namespace`, the cluster connection's namespace.
        let request =
            from_deploy_inputs(&with(&[("image", "reg/api:1"), ("workloads", "api")])).unwrap();
        assert_eq!(request.targets("ctx")[0].workload.namespace, "ctx");
        assert_eq!(request.targets("ctx")[0].image, "reg/api:1");
    }

    #[test]
    fn timeout_rollback_and_registries_are_read() {
        let request = from_deploy_inputs(&with(&[
            ("image", IMAGE),
            ("workloads", "api"),
            ("timeout", "10m"),
            ("rollback", "false"),
            ("insecure-registries", "127.0.0.1:5000\nreg.local:5001"),
        ]))
        .unwrap();
        assert_eq!(request.timeout, Duration::from_secs(600));
        assert!(!request.rollback);
        assert_eq!(
            request.insecure_registries,
            ["127.0.0.1:5000", "reg.local:5001"]
        );
        for (text, secs) in [("45", 45), ("45s", 45), ("2m", 120), ("1h", 3600)] {
            assert_eq!(seconds(text), Some(Duration::from_secs(secs)), "{text}");
        }
        for bad in ["0", "-1", "1.5", "10 minutes", "m", "99999999999999999999"] {
            assert_eq!(seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_error_names_its_input_and_the_remedy() {
        for (pairs, needles) in [
            (
                &[("workloads", "api")][..],
                &["input `image` is required", "k8s-image"][..],
            ),
            (
                &[("image", "Reg/API:1 x"), ("workloads", "api")],
                &["input `image` has an invalid value `Reg/API:1 x`"],
            ),
            (
                &[("image", IMAGE)],
                &["input `workloads` is required", "one per line"],
            ),
            (
                &[("image", IMAGE), ("workloads", "job/migrate")],
                &[
                    "input `workloads` has an invalid value `job/migrate`",
                    "`job` is not a workload kind",
                    "statefulset (sts)",
                ],
            ),
            (
                &[("image", IMAGE), ("workloads", "a/b/c/d")],
                &["input `workloads`", "kind/namespace/name[:container]"],
            ),
            (
                &[("image", IMAGE), ("workloads", "API")],
                &["input `workloads`", "`API` is not a workload name"],
            ),
            (
                &[("image", IMAGE), ("workloads", "deploy/Shop/api")],
                &["input `workloads`", "`Shop` is not a namespace name"],
            ),
            (
                &[("image", IMAGE), ("workloads", "api:Main_1")],
                &["input `workloads`", "`Main_1` is not a container name"],
            ),
            (
                &[("image", IMAGE), ("workloads", "api\ndeployment/api")],
                &[
                    "input `workloads` has an invalid value `deployment/api`",
                    "named twice",
                ],
            ),
            (
                &[
                    ("image", IMAGE),
                    ("workloads", "api"),
                    ("namespace", "Shop"),
                ],
                &["input `namespace` has an invalid value `Shop`"],
            ),
            (
                &[("image", IMAGE), ("workloads", "api"), ("timeout", "soon")],
                &["input `timeout` has an invalid value `soon`", "seconds"],
            ),
            (
                &[("image", IMAGE), ("workloads", "api"), ("rollback", "yes")],
                &[
                    "input `rollback` has an invalid value `yes`",
                    "`true` or `false`",
                ],
            ),
            (
                &[
                    ("image", IMAGE),
                    ("workloads", "api"),
                    ("insecure-registries", "http://reg:5000"),
                ],
                &[
                    "input `insecure-registries` has an invalid value `http://reg:5000`",
                    "host:port",
                ],
            ),
            (
                &[("image", IMAGE), ("workloads", "api"), ("replicas", "3")],
                &[
                    "input `replicas` is not supported",
                    "known inputs: image, workloads",
                ],
            ),
        ] {
            let message = error(pairs);
            assert!(message.starts_with("hybrid-runner/deploy: "), "{message}");
            for needle in needles {
                assert!(message.contains(needle), "{pairs:?}: {message}");
            }
        }
        // An unknown input left empty (as unset inputs arrive) is no error.
        assert!(
            from_deploy_inputs(&with(&[
                ("image", IMAGE),
                ("workloads", "api"),
                ("replicas", "")
            ]))
            .is_ok()
        );
    }
}
