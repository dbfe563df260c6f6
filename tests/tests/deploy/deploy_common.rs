//! What the deploy test files share: the flag combinations, and the runner's pod,
//! containers, arguments and mounts in rendered manifests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hybrid_runner::deploy::{
    DAEMON_CONTAINER, DeployManifests, DeploySettings, REGISTER_CONTAINER, Workload, WorkloadKind,
};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};

pub const INSTANCE: &str = "https://gitea.example.com";
pub const IMAGE: &str = "registry.example.com/hybrid-runner:0.1.0";

/// The flag combinations every property is checked over.
pub fn variants() -> Vec<(&'static str, DeploySettings)> {
    let base = DeploySettings::new(INSTANCE, IMAGE);
    let mut deployment = base.clone();
    deployment.kind = WorkloadKind::Deployment;
    deployment.replicas = 3;
    deployment.capacity = 4;
    deployment.registry_secret = Some("registry.creds".into());
    deployment.labels = vec!["linux:host".into(), "k8s:kubernetes".into()];
    let mut custom = base.clone();
    custom.namespace = "ci-runners".into();
    custom.name = "gitea-runner".into();
    custom.storage = "5Gi".into();
    custom.storage_class = Some("fast-ssd".into());
    custom.shutdown_timeout = Duration::from_secs(600);
    custom.registration_token_secret = "gitea-token".into();
    custom.registry_secret = Some("regcred".into());
    custom.admission_policy = true;
    vec![
        ("defaults", base),
        ("deployment", deployment),
        ("custom", custom),
    ]
}

pub fn pod(m: &DeployManifests) -> &PodTemplateSpec {
    match &m.workload {
        Workload::StatefulSet(s) => &s.spec.template,
        Workload::Deployment(d) => &d.spec.template,
    }
}

pub fn pod_spec(m: &DeployManifests) -> &PodSpec {
    pod(m).spec.as_ref().unwrap()
}

pub fn daemon(m: &DeployManifests) -> &Container {
    pod_spec(m)
        .containers
        .iter()
        .find(|c| c.name == DAEMON_CONTAINER)
        .unwrap()
}

pub fn register(m: &DeployManifests) -> &Container {
    pod_spec(m)
        .init_containers
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.name == REGISTER_CONTAINER)
        .unwrap()
}

/// The value after `flag` in `args`.
pub fn flag<'a>(args: &'a [String], flag: &str) -> &'a str {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} in {args:?}"));
    &args[i + 1]
}

/// The path `path` is reached through in `container`: the mount holding it.
pub fn mount_of<'a>(container: &'a Container, path: &str) -> &'a str {
    container
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .filter(|m| path.starts_with(&format!("{}/", m.mount_path)))
        .max_by_key(|m| m.mount_path.len())
        .map(|m| m.name.as_str())
        .unwrap_or_else(|| panic!("no mount of {} holds {path}", container.name))
}
