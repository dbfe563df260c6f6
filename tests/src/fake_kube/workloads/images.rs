//! What the simulated kubelet asks before it "starts" a container: whether its image is
//! in the registry (the manifest and config are looked up in the real loopback registry
//! with containerd's Accept header and the pod's `imagePullSecrets`, nothing is unpacked;
//! an image anywhere else cannot be reached from this sandbox and reads as not found, with
//! containerd's `NotFound` text), whether the image's config carries [`super::CRASH_LABEL`],
//! and whether the container's env can be made (pkg/kubelet/kubelet_pods.go
//! `makeEnvironmentVariables`: `secret "x" not found`, `couldn't find key k in Secret
//! ns/x`, unless optional).

use serde_json::Value;

use super::super::Shared;
use super::super::images::{self as registry, Credentials, loopback_reference};
use super::super::kubelet::rt;
use super::super::store::Key;
use super::CRASH_LABEL;

/// An image the node has: its `imageID`, its size, and the crash label's value.
#[derive(Debug, Clone)]
pub(crate) struct Inspected {
    pub id: String,
    pub size: u64,
    pub crash: Option<String>,
}

/// The name containerd gives `image`: `docker.io/library/` for short names, `:latest` when
/// there is neither tag nor digest, the tag dropped when there is a digest
/// (`reference.ParseDockerRef`).
pub(super) fn containerd_name(image: &str) -> String {
    if let Some(r) = loopback_reference(image) {
        return r.full;
    }
    let (first, _) = image.split_once('/').unwrap_or(("", image));
    let mut full = if first.contains('.') || first.contains(':') || first == "localhost" {
        image.to_string()
    } else if image.contains('/') {
        format!("docker.io/{image}")
    } else {
        format!("docker.io/library/{image}")
    };
    if let Some((name, digest)) = full.split_once('@') {
        let name = match name.rsplit_once(':') {
            Some((n, tag)) if !tag.contains('/') => n,
            _ => name,
        };
        full = format!("{name}@{digest}");
    } else {
        let last = full.rsplit('/').next().unwrap_or_default();
        if !last.contains(':') {
            full.push_str(":latest");
        }
    }
    full
}

/// Looks `image` up for `pod`; `Err` with containerd's message as the CRI returns it.
pub(super) async fn inspect(
    shared: &Shared,
    pod: &Value,
    image: &str,
) -> Result<Inspected, String> {
    let Some(reference) = loopback_reference(image) else {
        let full = containerd_name(image);
        return Err(format!(
            "rpc error: code = NotFound desc = failed to pull and unpack image \"{full}\": failed to resolve reference \"{full}\": {full}: not found"
        ));
    };
    let credentials = pull_credentials(shared, pod, &reference.registry);
    let described = registry::describe(&reference, credentials).await?;
    let crash = described.config["config"]["Labels"][CRASH_LABEL]
        .as_str()
        .map(str::to_string);
    Ok(Inspected {
        id: described.id(&reference),
        size: described.size(),
        crash,
    })
}

/// The credentials the pod's `imagePullSecrets` hold for `registry`, in their order; a
/// missing Secret is a `FailedToRetrieveImagePullSecret` event.
fn pull_credentials(shared: &Shared, pod: &Value, registry: &str) -> Vec<Credentials> {
    let (found, missing) = registry::pull_secret_credentials(shared, pod, registry);
    registry::record_missing_pull_secrets(shared, pod, &missing);
    found
}

/// Why the container's environment cannot be made (`CreateContainerConfigError`), if so.
pub(super) fn config_error(shared: &Shared, namespace: &str, spec: &Value) -> Option<String> {
    let object = |plural: &str, name: &str| {
        shared.read(|s| s.get(&Key::new(rt(plural), namespace, name)).cloned())
    };
    for from in spec["envFrom"].as_array().into_iter().flatten() {
        let (plural, what, source) = if from.get("secretRef").is_some_and(|s| !s.is_null()) {
            ("secrets", "secret", &from["secretRef"])
        } else {
            ("configmaps", "configmap", &from["configMapRef"])
        };
        let name = source["name"].as_str().unwrap_or_default();
        if object(plural, name).is_none() && source["optional"] != true {
            return Some(format!("{what} \"{name}\" not found"));
        }
    }
    for e in spec["env"].as_array().into_iter().flatten() {
        let from = &e["valueFrom"];
        let (r, plural, what, kind) = if from["secretKeyRef"].is_object() {
            (&from["secretKeyRef"], "secrets", "secret", "Secret")
        } else if from["configMapKeyRef"].is_object() {
            (
                &from["configMapKeyRef"],
                "configmaps",
                "configmap",
                "ConfigMap",
            )
        } else {
            continue;
        };
        let optional = r["optional"] == true;
        let name = r["name"].as_str().unwrap_or_default();
        let key = r["key"].as_str().unwrap_or_default();
        match object(plural, name) {
            None if optional => {}
            None => return Some(format!("{what} \"{name}\" not found")),
            Some(o) => {
                let has = o["data"].get(key).is_some()
                    || (plural == "configmaps" && o["binaryData"].get(key).is_some());
                if !has && !optional {
                    return Some(format!(
                        "couldn't find key {key} in {kind} {namespace}/{name}"
                    ));
                }
            }
        }
    }
    None
}

/// The crash label's value as log lines: split on newlines, or on literal `\n` escapes.
pub(super) fn crash_lines(value: &str) -> Vec<String> {
    value
        .replace("\\n", "\n")
        .lines()
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_containerds() {
        assert_eq!(containerd_name("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(
            containerd_name("bitnami/redis:7"),
            "docker.io/bitnami/redis:7"
        );
        assert_eq!(
            containerd_name("ghcr.io/o/app:1@sha256:ab"),
            "ghcr.io/o/app@sha256:ab"
        );
        assert_eq!(
            containerd_name("127.0.0.1:5000/app:1@sha256:ab"),
            "127.0.0.1:5000/app@sha256:ab"
        );
        assert_eq!(
            containerd_name("registry.example.com:5000/app"),
            "registry.example.com:5000/app:latest"
        );
    }

    #[test]
    fn crash_values_split_into_lines() {
        assert_eq!(crash_lines("a\\nb"), ["a", "b"]);
        assert_eq!(crash_lines("a\nb\n"), ["a", "b"]);
    }
}
