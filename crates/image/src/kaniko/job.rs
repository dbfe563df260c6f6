//! One Kaniko Job per variant: the template adjusted in typed form with the executor's
//! arguments (context, Dockerfile, one `--destination` per tag, digest file, build args,
//! cache, insecure registries), the context and credential volumes, resources, deadlines,
//! stdin for `tar://stdin`, and `container=kube` in the environment.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMapVolumeSource, Container, EnvVar, KeyToPath,
    PersistentVolumeClaimVolumeSource, PodAffinity, PodAffinityTerm, PodSpec, ResourceRequirements,
    Secret, SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::config::KanikoConfig;
use super::manifests::{CONTEXT_KEY, ContextObjects, harden, place, quantities, set_labels};
use super::templates::Template;
use super::{BuildSpec, ManifestError, VariantSpec};
use hr_cluster::MANAGED_BY;
use hr_cluster::templates::TemplateError;

const CONTEXT_MOUNT: &str = "/context";
const DOCKER_CONFIG_MOUNT: &str = "/kaniko/.docker";
const DIGEST_FILE: &str = "/dev/termination-log";
const CONTEXT_VOLUME: &str = "context";
const DOCKER_CONFIG_VOLUME: &str = "docker-config";
const KANIKO_CONTAINER: &str = "kaniko";
/// Kaniko refuses to run unless it finds itself in a container
/// (`pkg/util/proc/proc.go`): on a cgroup v2 node `/proc/self/cgroup` names no runtime and,
/// with the service account token not mounted, nothing else may either; the `container`
/// variable is one of the places it looks, and `kube` is its name for Kubernetes.
const CONTAINER_ENV: (&str, &str) = ("container", "kube");
/// Label of Kaniko pods reading a ReadWriteOnce context volume; they are kept on one node.
const CONTEXT_USER_LABEL: &str = "hybrid-runner/context-volume";

#[allow(clippy::too_many_arguments)]
pub(super) fn kaniko_job(
    spec: &BuildSpec,
    variant: &VariantSpec,
    config: &KanikoConfig,
    ns: &str,
    context: &ContextObjects,
    registry_secret: Option<&Secret>,
    sha256: &str,
) -> Result<Job, ManifestError> {
    let name = format!("kaniko-{}", variant.variant);
    let mut job: Job = Template::KanikoJob.render(
        config.template_dir.as_deref(),
        "Job",
        &[
            ("namespace", ns),
            ("job_name", &name),
            ("variant", variant.variant.as_str()),
            ("executor_image", &config.executor_image),
        ],
    )?;
    place(&mut job.metadata, ns);
    job.metadata.name = Some(name);
    let variant_label = ("hybrid-runner/variant", variant.variant.as_str());
    set_labels(&mut job.metadata, &[MANAGED_BY, variant_label]);
    job.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(
            "hybrid-runner/context-sha256".to_string(),
            sha256.to_string(),
        );

    let job_spec = job.spec.get_or_insert_with(Default::default);
    job_spec.backoff_limit = Some(0);
    job_spec.active_deadline_seconds =
        Some(spec.timeout.as_secs().clamp(1, i64::MAX as u64) as i64);
    job_spec.ttl_seconds_after_finished = Some(config.ttl_seconds_after_finished);
    let template = &mut job_spec.template;
    let template_meta = template.metadata.get_or_insert_with(Default::default);
    set_labels(template_meta, &[MANAGED_BY, variant_label]);
    let pod = template.spec.get_or_insert_with(Default::default);
    harden(pod);

    let mut mounts = Vec::new();
    let context_arg = match context {
        ContextObjects::ConfigMap(cm) => {
            pod.volumes.get_or_insert_with(Vec::new).push(Volume {
                name: CONTEXT_VOLUME.to_string(),
                config_map: Some(ConfigMapVolumeSource {
                    name: cm.metadata.name.clone().unwrap_or_default(),
                    items: Some(vec![KeyToPath {
                        key: CONTEXT_KEY.to_string(),
                        path: CONTEXT_KEY.to_string(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            });
            mounts.push(read_only_mount(CONTEXT_VOLUME, CONTEXT_MOUNT));
            format!("--context=tar://{CONTEXT_MOUNT}/{CONTEXT_KEY}")
        }
        ContextObjects::Pvc { pvc, .. } => {
            pod.volumes.get_or_insert_with(Vec::new).push(Volume {
                name: CONTEXT_VOLUME.to_string(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: pvc.metadata.name.clone().unwrap_or_default(),
                    read_only: Some(true),
                }),
                ..Default::default()
            });
            mounts.push(read_only_mount(CONTEXT_VOLUME, CONTEXT_MOUNT));
            if config.pvc.access_mode == "ReadWriteOnce" {
                keep_on_one_node(template_meta, pod);
            }
            format!("--context=tar://{CONTEXT_MOUNT}/{CONTEXT_KEY}")
        }
        ContextObjects::Stdin => "--context=tar://stdin".to_string(),
    };
    if let Some(secret) = registry_secret {
        pod.volumes.get_or_insert_with(Vec::new).push(Volume {
            name: DOCKER_CONFIG_VOLUME.to_string(),
            secret: Some(SecretVolumeSource {
                secret_name: secret.metadata.name.clone(),
                items: Some(vec![KeyToPath {
                    key: ".dockerconfigjson".to_string(),
                    path: "config.json".to_string(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(read_only_mount(DOCKER_CONFIG_VOLUME, DOCKER_CONFIG_MOUNT));
    }

    let container = kaniko_container(pod)?;
    let args = container.args.get_or_insert_with(Vec::new);
    args.push(context_arg);
    args.push(format!("--dockerfile={}", variant.dockerfile));
    args.extend(variant.tags.iter().map(|t| format!("--destination={t}")));
    args.push(format!("--digest-file={DIGEST_FILE}"));
    args.extend(
        spec.build_args
            .iter()
            .map(|(k, v)| format!("--build-arg={k}={v}")),
    );
    if let Some(target) = &spec.target {
        args.push(format!("--target={target}"));
    }
    args.extend(spec.labels.iter().map(|(k, v)| format!("--label={k}={v}")));
    if config.cache {
        args.push("--cache=true".to_string());
        if let Some(repo) = &config.cache_repo {
            args.push(format!("--cache-repo={repo}"));
        }
    }
    args.extend(
        config
            .insecure_registries
            .iter()
            .map(|r| format!("--insecure-registry={r}")),
    );
    args.extend(
        config
            .skip_tls_verify_registries
            .iter()
            .map(|r| format!("--skip-tls-verify-registry={r}")),
    );
    set_env(container, CONTAINER_ENV.0, CONTAINER_ENV.1);
    container
        .volume_mounts
        .get_or_insert_with(Vec::new)
        .extend(mounts);
    container.resources = Some(ResourceRequirements {
        requests: quantities(&config.resources.requests),
        limits: quantities(&config.resources.limits),
        ..Default::default()
    });
    container.termination_message_path = Some(DIGEST_FILE.to_string());
    if matches!(context, ContextObjects::Stdin) {
        container.stdin = Some(true);
        container.stdin_once = Some(true);
        container.tty = Some(false);
    }
    Ok(job)
}

/// A ReadWriteOnce volume attaches to one node: require the Kaniko pods that read it to
/// share a node (the first one schedules freely because it matches its own term).
fn keep_on_one_node(pod_meta: &mut ObjectMeta, pod: &mut PodSpec) {
    set_labels(pod_meta, &[(CONTEXT_USER_LABEL, "true")]);
    pod.affinity
        .get_or_insert_with(Affinity::default)
        .pod_affinity = Some(PodAffinity {
        required_during_scheduling_ignored_during_execution: Some(vec![PodAffinityTerm {
            label_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    CONTEXT_USER_LABEL.to_string(),
                    "true".to_string(),
                )])),
                ..Default::default()
            }),
            topology_key: "kubernetes.io/hostname".to_string(),
            ..Default::default()
        }]),
        ..Default::default()
    });
}

fn kaniko_container(pod: &mut PodSpec) -> Result<&mut Container, ManifestError> {
    pod.containers
        .iter_mut()
        .find(|c| c.name == KANIKO_CONTAINER)
        .ok_or(ManifestError::Template(TemplateError::Parse {
            template: Template::KanikoJob.file_name(),
            kind: "Job",
            message: format!("the pod template has no container named {KANIKO_CONTAINER}"),
        }))
}

/// Sets `name` in the container's environment, replacing a template's own value.
fn set_env(container: &mut Container, name: &str, value: &str) {
    let env = container.env.get_or_insert_with(Vec::new);
    env.retain(|e| e.name != name);
    env.push(EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        ..Default::default()
    });
}

fn read_only_mount(volume: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: volume.to_string(),
        mount_path: path.to_string(),
        read_only: Some(true),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::kaniko::Variant;

    fn job_for(config: &KanikoConfig) -> Job {
        let variant = VariantSpec {
            variant: Variant::Docker,
            dockerfile: "Dockerfile".into(),
            tags: vec!["reg.example:443/app:1".into()],
        };
        let spec = BuildSpec {
            image: "reg.example:443/app".into(),
            sha: "abc".into(),
            context_dir: PathBuf::from("/src"),
            variants: vec![variant.clone()],
            build_args: Vec::new(),
            target: None,
            labels: Vec::new(),
            timeout: Duration::from_secs(60),
        };
        kaniko_job(
            &spec,
            &variant,
            config,
            "hr-test",
            &ContextObjects::Stdin,
            None,
            "0",
        )
        .unwrap()
    }

    fn container(job: &mut Job) -> &Container {
        let pod = job.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
        kaniko_container(pod).unwrap()
    }

    #[test]
    fn plain_http_and_unverified_tls_registries_get_their_own_flags() {
        let config = KanikoConfig {
            insecure_registries: vec!["plain.local:5000".into()],
            skip_tls_verify_registries: vec!["self-signed.local:443".into()],
            ..KanikoConfig::default()
        };
        let mut job = job_for(&config);
        let args = container(&mut job).args.clone().unwrap();
        let registry_flags: Vec<&str> = args
            .iter()
            .map(String::as_str)
            .filter(|a| a.starts_with("--insecure") || a.starts_with("--skip-tls"))
            .collect();
        assert_eq!(
            registry_flags,
            [
                "--insecure-registry=plain.local:5000",
                "--skip-tls-verify-registry=self-signed.local:443"
            ]
        );

        let mut bare = job_for(&KanikoConfig::default());
        let args = container(&mut bare).args.clone().unwrap();
        assert!(
            !args
                .iter()
                .any(|a| a.starts_with("--insecure") || a.starts_with("--skip-tls")),
            "{args:?}"
        );
    }

    #[test]
    fn the_kaniko_container_says_it_runs_in_kubernetes() {
        let mut job = job_for(&KanikoConfig::default());
        let env = container(&mut job).env.clone().unwrap_or_default();
        let container_vars: Vec<_> = env.iter().filter(|e| e.name == "container").collect();
        assert_eq!(container_vars.len(), 1, "{env:?}");
        assert_eq!(container_vars[0].value.as_deref(), Some("kube"));
    }

    #[test]
    fn a_template_value_of_container_is_replaced_and_other_variables_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = Template::KanikoJob.file_name();
        std::fs::write(
            dir.path().join(file),
            format!(
                "{}          env:\n            - name: container\n              value: docker\n            - name: HTTP_PROXY\n              value: http://proxy:3128\n",
                Template::KanikoJob.builtin()
            ),
        )
        .unwrap();
        let config = KanikoConfig {
            template_dir: Some(dir.path().to_path_buf()),
            ..KanikoConfig::default()
        };
        let mut job = job_for(&config);
        let env = container(&mut job).env.clone().unwrap();
        let pairs: Vec<(&str, Option<&str>)> = env
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_deref()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("HTTP_PROXY", Some("http://proxy:3128")),
                ("container", Some("kube"))
            ]
        );
    }
}
