//! The runner's pod (from `pod.yaml`) in its StatefulSet or Deployment, and the headless
//! Service: the arguments of the register and daemon containers, the metrics port, the
//! grace period, the data volume and the registry credentials, all set in typed form.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, KeyToPath, PodTemplateSpec, SecretVolumeSource,
    Service, ServicePort, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sha2::{Digest, Sha256};

use super::daemon_config::{CONFIG_FILE, METRICS_PORT, REGISTRY_DIR, REGISTRY_FILE, TOKEN_FILE};
use super::templates::DeployTemplate;
use super::{DeployError, DeploySettings, Workload, WorkloadKind, grace_period_seconds};

/// The init container that registers, and the daemon's container, by name in `pod.yaml`.
pub const REGISTER_CONTAINER: &str = "register";
pub const DAEMON_CONTAINER: &str = "daemon";
/// The volume holding `.runner` and the spool.
pub const DATA_VOLUME: &str = "data";
const REGISTRY_VOLUME: &str = "registry-credentials";
/// The pod template's annotation with the sha256 of `config.yaml`: a changed config
/// changes the template, so `kubectl apply` rolls the pods.
pub const CONFIG_SHA256_ANNOTATION: &str = "hybrid-runner/config-sha256";

/// The headless Service in front of the runners' metrics port.
pub(super) fn service(
    settings: &DeploySettings,
    dir: Option<&Path>,
    values: &[(&str, &str)],
) -> Result<Service, DeployError> {
    let mut service: Service = DeployTemplate::Service.render(dir, "Service", values)?;
    service.metadata.name = Some(settings.name.clone());
    service.metadata.namespace = Some(settings.namespace.clone());
    let spec = service.spec.get_or_insert_with(Default::default);
    spec.selector = Some(selector(settings));
    let ports = spec.ports.get_or_insert_with(Vec::new);
    ports.retain(|p| p.name.as_deref() != Some("metrics"));
    ports.push(ServicePort {
        name: Some("metrics".to_string()),
        port: i32::from(METRICS_PORT),
        target_port: Some(IntOrString::String("metrics".to_string())),
        protocol: Some("TCP".to_string()),
        ..Default::default()
    });
    Ok(service)
}

/// The StatefulSet or Deployment running the daemon.
pub(super) fn workload(
    settings: &DeploySettings,
    dir: Option<&Path>,
    values: &[(&str, &str)],
    config_text: &str,
) -> Result<Workload, DeployError> {
    let pod_values: Vec<(&str, &str)> = values
        .iter()
        .copied()
        .chain([
            ("image", settings.image.as_str()),
            ("token_secret", settings.registration_token_secret.as_str()),
        ])
        .collect();
    let mut pod: PodTemplateSpec =
        DeployTemplate::Pod.render(dir, "PodTemplateSpec", &pod_values)?;
    adjust_pod(&mut pod, settings, config_text)?;
    let storage_values: Vec<(&str, &str)> = values
        .iter()
        .copied()
        .chain([("storage", settings.storage.as_str())])
        .collect();
    match settings.kind {
        WorkloadKind::StatefulSet => {
            let mut set: StatefulSet =
                DeployTemplate::StatefulSet.render(dir, "StatefulSet", &storage_values)?;
            set.metadata.name = Some(settings.name.clone());
            set.metadata.namespace = Some(settings.namespace.clone());
            let spec = &mut set.spec;
            spec.replicas = Some(settings.replicas);
            spec.service_name = Some(settings.name.clone());
            spec.selector.match_labels = Some(selector(settings));
            spec.template = pod;
            let claims = spec.volume_claim_templates.get_or_insert_with(Vec::new);
            let Some(claim) = claims
                .iter_mut()
                .find(|c| c.metadata.name.as_deref() == Some(DATA_VOLUME))
            else {
                return Err(shape(
                    DeployTemplate::StatefulSet,
                    "has no volumeClaimTemplate named `data` (it holds .runner and the log spool)",
                ));
            };
            if let Some(class) = &settings.storage_class {
                claim
                    .spec
                    .get_or_insert_with(Default::default)
                    .storage_class_name = Some(class.clone());
            }
            Ok(Workload::StatefulSet(Box::new(set)))
        }
        WorkloadKind::Deployment => {
            let mut deployment: Deployment =
                DeployTemplate::Deployment.render(dir, "Deployment", &storage_values)?;
            deployment.metadata.name = Some(settings.name.clone());
            deployment.metadata.namespace = Some(settings.namespace.clone());
            let spec = &mut deployment.spec;
            spec.replicas = Some(settings.replicas);
            spec.selector.match_labels = Some(selector(settings));
            let pod_spec = pod.spec.get_or_insert_with(Default::default);
            let volumes = pod_spec.volumes.get_or_insert_with(Vec::new);
            volumes.retain(|v| v.name != DATA_VOLUME);
            volumes.push(Volume {
                name: DATA_VOLUME.to_string(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            });
            spec.template = pod;
            Ok(Workload::Deployment(Box::new(deployment)))
        }
    }
}

/// The labels that select the runner's pods.
fn selector(settings: &DeploySettings) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "hybrid-runner".to_string(),
        ),
        (
            "app.kubernetes.io/instance".to_string(),
            settings.name.clone(),
        ),
    ])
}

fn shape(template: DeployTemplate, message: &str) -> DeployError {
    DeployError::TemplateShape {
        template: template.file_name(),
        message: message.to_string(),
    }
}

/// Sets what the flags decide on the pod rendered from `pod.yaml`.
fn adjust_pod(
    pod: &mut PodTemplateSpec,
    settings: &DeploySettings,
    config_text: &str,
) -> Result<(), DeployError> {
    let meta = pod.metadata.get_or_insert_with(Default::default);
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .extend(selector(settings));
    let digest = Sha256::digest(config_text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    meta.annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(CONFIG_SHA256_ANNOTATION.to_string(), hex);
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.service_account_name = Some(settings.name.clone());
    spec.termination_grace_period_seconds = grace_period_seconds(settings.shutdown_timeout);

    let register = spec
        .init_containers
        .get_or_insert_with(Vec::new)
        .iter_mut()
        .find(|c| c.name == REGISTER_CONTAINER)
        .ok_or_else(|| {
            shape(
                DeployTemplate::Pod,
                "has no init container named `register`",
            )
        })?;
    register.args = Some(register_args(settings));

    let daemon = spec
        .containers
        .iter_mut()
        .find(|c| c.name == DAEMON_CONTAINER)
        .ok_or_else(|| shape(DeployTemplate::Pod, "has no container named `daemon`"))?;
    daemon.args = Some(
        ["daemon", "--config", CONFIG_FILE]
            .map(String::from)
            .to_vec(),
    );
    set_metrics_port(daemon);
    if let Some(secret) = &settings.registry_secret {
        daemon
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .push(VolumeMount {
                name: REGISTRY_VOLUME.to_string(),
                mount_path: REGISTRY_DIR.to_string(),
                read_only: Some(true),
                ..Default::default()
            });
        let file = REGISTRY_FILE
            .rsplit('/')
            .next()
            .unwrap_or("config.json")
            .to_string();
        spec.volumes.get_or_insert_with(Vec::new).push(Volume {
            name: REGISTRY_VOLUME.to_string(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.clone()),
                items: Some(vec![KeyToPath {
                    key: ".dockerconfigjson".to_string(),
                    path: file,
                    ..Default::default()
                }]),
                // 0440: the owner and the fsGroup may read it.
                default_mode: Some(0o440),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    Ok(())
}

/// `hybrid-runner register` as the init container runs it: keeps an existing registration,
/// never prompts, and names the runner after the pod (`$(POD_NAME)` is expanded by the
/// kubelet from the container's environment).
pub fn register_args(settings: &DeploySettings) -> Vec<String> {
    [
        "register",
        "--keep-existing",
        "--no-interactive",
        "--config",
        CONFIG_FILE,
        "--instance",
        settings.instance.trim(),
        "--token-file",
        TOKEN_FILE,
        "--name",
        "$(POD_NAME)",
        "--labels",
        &settings.labels.join(","),
    ]
    .map(String::from)
    .to_vec()
}

/// The daemon's `metrics` port at [`METRICS_PORT`], whatever the template said.
fn set_metrics_port(daemon: &mut Container) {
    let ports = daemon.ports.get_or_insert_with(Vec::new);
    ports.retain(|p| p.name.as_deref() != Some("metrics"));
    ports.push(ContainerPort {
        name: Some("metrics".to_string()),
        container_port: i32::from(METRICS_PORT),
        protocol: Some("TCP".to_string()),
        ..Default::default()
    });
}
