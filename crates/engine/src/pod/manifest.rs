//! The objects of one job pod: its namespace, the Secrets it reads and the pod itself,
//! rendered from the templates (`namespace.yaml`, `job-pod.yaml`) and completed in typed
//! form from the job's containers ([`JobContainers`]):
//!
//! - the `steps` container runs the job container's image (else the label's, else the
//!   configured job image) with its `options` (user, working folder, CPU and memory
//!   limits) and volumes;
//! - each service is a native sidecar (an init container with `restartPolicy: Always`,
//!   Kubernetes 1.29+), so it starts before the steps and lives as long as the pod; its
//!   `--health-cmd` is its startup probe, and the kubelet starts the steps container only
//!   once every service passed it (the first step waits for the services that way);
//! - `hostAliases` map every service's name to 127.0.0.1 (the pod's containers share one
//!   network), plus the `--add-host` entries;
//! - each port mapped to another number (`ports: ['15432:5432']`) gets a forwarder
//!   sidecar `fwd-<host port>` after the services: busybox's `nc -ll -p HOST -e nc
//!   127.0.0.1 PORT` (one process per connection) in `kubernetes.forwarder_image`, with a
//!   `tcpSocket` startup probe, so the steps start only once `localhost:HOST` answers;
//! - every container's `env` comes from the Secret `job-env` (`secretKeyRef`), so no value
//!   (a secret among them) is in the pod's manifest; `credentials` become the
//!   `kubernetes.io/dockerconfigjson` Secret `job-registry`, the pod's image pull Secret.
//!
//! Both Secrets live in the job namespace and go with it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, HostAlias, LocalObjectReference, Namespace, Pod, Secret,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::container_fields::{
    apply_options, args_by_reference, forwarder, mount_volumes, probe, set_env,
};
use super::containers::{ContainerSpec, JobContainers};
use super::{
    POD_NAME, POD_TEMP, POD_WORKSPACE_ROOT, PodError, PodJob, PodSettings, STEPS_CONTAINER,
};
use hr_cluster::templates::{substitute, template_text};
use hr_cluster::{NamespaceOwner, task_namespace};

const TEMPLATE_NAME: &str = "job-pod.yaml";
const BUILTIN_TEMPLATE: &str = include_str!("../../templates/job-pod.yaml");
/// The Secret holding every container's environment.
pub const ENV_SECRET: &str = "job-env";
/// The image pull Secret made from `credentials:`.
pub const REGISTRY_SECRET: &str = "job-registry";
/// The prefix of a service's container name.
pub const SERVICE_PREFIX: &str = "svc-";
/// The prefix of a port forwarder's container name (then the port it listens on).
pub const FORWARDER_PREFIX: &str = "fwd-";
/// The volume of the job's repository folder (`/__w/<name>`), shared with container steps
/// at `/github/workspace` (an ephemeral container may not mount a volume's sub-path, so
/// each folder a Docker action shares is a volume of its own).
pub const REPO_VOLUME: &str = "repo";
/// The volumes under the temp folder a container step shares: (volume, path in the steps
/// container).
pub const TEMP_VOLUMES: [(&str, &str); 3] = [
    ("file-commands", "/__t/_files"),
    ("github-home", "/__t/_github_home"),
    ("github-workflow", "/__t/_github_workflow"),
];

/// Everything created for one job pod, in creation order: the namespace, the Secrets,
/// the pod; and runner lines about choices made on the way.
#[derive(Debug, Clone)]
pub struct JobManifests {
    pub namespace: Namespace,
    pub secrets: Vec<Secret>,
    pub pod: Pod,
    /// The container name of each service, by service id.
    pub services: Vec<(String, String)>,
    pub notes: Vec<String>,
}

/// The container name of service `id`: `svc-` and the id as a DNS label (lower case,
/// `-` for anything else), unique among `taken`.
fn service_container_name(id: &str, taken: &[String]) -> String {
    let mut base: String = id
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    base = base.trim_matches('-').to_string();
    base.truncate(50);
    let base = format!("{SERVICE_PREFIX}{}", base.trim_end_matches('-'));
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) || name == STEPS_CONTAINER {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// Whether `name` is a DNS-1123 subdomain, which `hostAliases` host names must be.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The registry of `image` as a Docker config's `auths` key.
fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => "https://index.docker.io/v1/".to_string(),
    }
}

/// The manifests of a job's pod in a new namespace.
pub fn job_manifests(
    settings: &PodSettings,
    job: &PodJob,
    image: &str,
    containers: &JobContainers,
) -> Result<JobManifests, PodError> {
    let dir = settings.template_dir.as_deref();
    let (name, namespace) = task_namespace(
        dir,
        NamespaceOwner {
            prefix: &job.namespace_prefix,
            runner_id: &job.runner_id,
            task: &job.task,
            job: &job.job,
        },
        SystemTime::now() + settings.expiry,
    )
    .map_err(|e| PodError::Render(e.to_string()))?;
    let image = containers.job.as_ref().map_or(image, |c| c.image.as_str());
    let mut pod = pod_manifest(settings, &name, image, pod_deadline(settings, job))?;
    share_step_folders(&mut pod, &job.workspace);
    let mut env_data = BTreeMap::new();
    let mut auths = serde_json::Map::new();
    let mut notes = Vec::new();
    let mut services = Vec::new();
    let spec = pod.spec.get_or_insert_with(Default::default);
    let mut volumes: Vec<Volume> = Vec::new();
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut hostname = None;
    let mut taken: Vec<String> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| c.name.clone())
        .collect();
    let mut add = |container: &mut Container, spec_of: &ContainerSpec| {
        set_env(container, &spec_of.env, &mut env_data);
        apply_options(container, spec_of);
        mount_volumes(container, &spec_of.volumes, &mut volumes);
        if let Some((user, password)) = &spec_of.credentials {
            let auth =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            auths.insert(
                registry_of(&spec_of.image),
                serde_json::json!({"username": user, "password": password, "auth": auth}),
            );
        }
        for (host, ip) in &spec_of.options.add_hosts {
            aliases.entry(ip.clone()).or_default().push(host.clone());
        }
        if hostname.is_none() {
            hostname = spec_of.options.hostname.clone();
        }
    };
    if let Some(job_container) = &containers.job {
        let Some(steps) = spec
            .containers
            .iter_mut()
            .find(|c| c.name == STEPS_CONTAINER)
        else {
            return Err(PodError::Render(format!(
                "{TEMPLATE_NAME} has no container named {STEPS_CONTAINER}"
            )));
        };
        add(steps, job_container);
        if let Some(health) = &job_container.options.health {
            steps.startup_probe = Some(probe(&health.command, health));
        }
    }
    let mut sidecars = Vec::new();
    let mut service_aliases = Vec::new();
    for service in &containers.services {
        let c = &service.container;
        let container_name = service_container_name(&service.id, &taken);
        taken.push(container_name.clone());
        let mut container = Container {
            name: container_name.clone(),
            image: Some(c.image.clone()),
            restart_policy: Some("Always".into()),
            command: c.entrypoint.clone().map(|e| vec![e]),
            ports: Some(
                c.ports
                    .iter()
                    .map(|p| k8s_openapi::api::core::v1::ContainerPort {
                        container_port: i32::from(p.container),
                        protocol: Some(p.protocol.to_string()),
                        ..Default::default()
                    })
                    .collect(),
            )
            .filter(|p: &Vec<_>| !p.is_empty()),
            startup_probe: c
                .options
                .health
                .as_ref()
                .map(|health| probe(&health.command, health)),
            ..Default::default()
        };
        let (args, arg_env) = args_by_reference(&c.command);
        let mut with_args = c.clone();
        with_args.env.extend(arg_env);
        container.args = Some(args).filter(|a| !a.is_empty());
        add(&mut container, &with_args);
        sidecars.push(container);
        let alias = service.id.to_ascii_lowercase();
        if is_host_name(&alias) {
            service_aliases.push(alias);
        } else {
            notes.push(format!(
                "Service {}: `{}` is not a host name Kubernetes accepts (RFC 1123: lower-case letters, digits, `-` and `.`), so the job reaches it at localhost only",
                service.id, service.id
            ));
        }
        services.push((service.id.clone(), container_name));
    }
    for (host, port) in containers.forwarded_ports() {
        sidecars.push(forwarder(&settings.forwarder_image, host, port));
    }
    if !service_aliases.is_empty() {
        let loopback = aliases.entry("127.0.0.1".into()).or_default();
        service_aliases.append(loopback);
        *loopback = service_aliases;
    }
    if !sidecars.is_empty() {
        spec.init_containers
            .get_or_insert_with(Vec::new)
            .extend(sidecars);
    }
    if !volumes.is_empty() {
        spec.volumes.get_or_insert_with(Vec::new).extend(volumes);
    }
    if !aliases.is_empty() {
        let list = spec.host_aliases.get_or_insert_with(Vec::new);
        for (ip, hostnames) in aliases {
            list.push(HostAlias {
                ip,
                hostnames: Some(hostnames),
            });
        }
    }
    if hostname.is_some() {
        spec.hostname = hostname;
    }
    let secret = |name: &str, type_: &str, data: BTreeMap<String, String>| Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(name_of(&namespace)),
            labels: namespace.metadata.labels.clone().map(|mut l| {
                l.retain(|k, _| k.starts_with("app.kubernetes.io/"));
                l
            }),
            ..Default::default()
        },
        type_: Some(type_.to_string()),
        string_data: Some(data),
        ..Default::default()
    };
    let mut secrets = Vec::new();
    if !env_data.is_empty() {
        secrets.push(secret(ENV_SECRET, "Opaque", env_data));
    }
    if !auths.is_empty() {
        let config = serde_json::json!({ "auths": auths }).to_string();
        secrets.push(secret(
            REGISTRY_SECRET,
            "kubernetes.io/dockerconfigjson",
            [(".dockerconfigjson".to_string(), config)].into(),
        ));
        spec.image_pull_secrets = Some(vec![LocalObjectReference {
            name: REGISTRY_SECRET.to_string(),
        }]);
    }
    Ok(JobManifests {
        namespace,
        secrets,
        pod,
        services,
        notes,
    })
}

/// The repository folder and the temp folders a container step shares, each a volume
/// mounted in the steps container where the engine expects the folder.
fn share_step_folders(pod: &mut Pod, workspace: &str) {
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    let repo_path = format!("{POD_WORKSPACE_ROOT}/{workspace}");
    let shared: Vec<(&str, String)> = std::iter::once((REPO_VOLUME, repo_path))
        .chain(TEMP_VOLUMES.iter().map(|(v, p)| (*v, p.to_string())))
        .collect();
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    for (volume, _) in &shared {
        if !volumes.iter().any(|v| v.name == *volume) {
            volumes.push(Volume {
                name: volume.to_string(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            });
        }
    }
    if let Some(steps) = spec
        .containers
        .iter_mut()
        .find(|c| c.name == STEPS_CONTAINER)
    {
        let mounts = steps.volume_mounts.get_or_insert_with(Vec::new);
        for (volume, path) in shared {
            if !mounts.iter().any(|m| m.mount_path == path) {
                mounts.push(VolumeMount {
                    name: volume.to_string(),
                    mount_path: path,
                    ..Default::default()
                });
            }
        }
    }
}

fn name_of(namespace: &Namespace) -> String {
    namespace.metadata.name.clone().unwrap_or_default()
}

/// The job pod in namespace `name`, rendered from the template (of
/// `settings.template_dir`, else the built-in one) and fixed up in typed form: its name,
/// namespace, image, no service account token, `activeDeadlineSeconds` of `deadline`, and
/// the requests and limits of `settings`.
pub(super) fn pod_manifest(
    settings: &PodSettings,
    name: &str,
    image: &str,
    deadline: Duration,
) -> Result<Pod, PodError> {
    let dir = settings.template_dir.as_deref();
    let text = pod_template(dir)?;
    let text = substitute(
        TEMPLATE_NAME,
        &text,
        &[("namespace", name), ("image", image)],
    )
    .map_err(|e| PodError::Render(e.to_string()))?;
    let mut pod: Pod = serde_saphyr::from_str(&text)
        .map_err(|e| PodError::Render(format!("{TEMPLATE_NAME}: {e}")))?;
    pod.metadata.name = Some(POD_NAME.to_string());
    pod.metadata.namespace = Some(name.to_string());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.automount_service_account_token = Some(false);
    spec.active_deadline_seconds = Some(deadline.as_secs().max(1) as i64);
    let Some(container) = spec
        .containers
        .iter_mut()
        .find(|c| c.name == STEPS_CONTAINER)
    else {
        return Err(PodError::Render(format!(
            "{TEMPLATE_NAME} has no container named {STEPS_CONTAINER}"
        )));
    };
    container.image = Some(image.to_string());
    if !settings.requests.is_empty() || !settings.limits.is_empty() {
        let resources = container.resources.get_or_insert_with(Default::default);
        for (wanted, map) in [
            (&settings.requests, &mut resources.requests),
            (&settings.limits, &mut resources.limits),
        ] {
            let map = map.get_or_insert_with(BTreeMap::new);
            for (name, quantity) in wanted {
                map.insert(name.clone(), Quantity(quantity.clone()));
            }
        }
    }
    let mounts = container.volume_mounts.get_or_insert_with(Vec::new);
    for (volume, path) in [("workspace", POD_WORKSPACE_ROOT), ("temp", POD_TEMP)] {
        if !mounts.iter().any(|m| m.mount_path == path) {
            return Err(PodError::Render(format!(
                "{TEMPLATE_NAME}: the {STEPS_CONTAINER} container must mount a volume (such as {volume}) at {path}"
            )));
        }
    }
    Ok(pod)
}

/// The job pod's `activeDeadlineSeconds`: the job's time limit plus the time it may take to
/// start, never past the namespace's expiry (the reaper deletes it then anyway); the
/// expiry when the job has no limit.
fn pod_deadline(settings: &PodSettings, job: &PodJob) -> Duration {
    match job.time_limit {
        Some(limit) => (limit + settings.start_timeout).min(settings.expiry),
        None => settings.expiry,
    }
}

fn pod_template(dir: Option<&Path>) -> Result<String, PodError> {
    template_text(dir, TEMPLATE_NAME, BUILTIN_TEMPLATE)
        .map_err(|(path, e)| PodError::Render(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::super::containers::VolumeSpec;
    use super::*;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn job() -> PodJob {
        PodJob {
            runner_id: "runner-a".into(),
            namespace_prefix: "hr".into(),
            task: "42".into(),
            job: "build".into(),
            time_limit: Some(Duration::from_secs(3600)),
            workspace: "app".into(),
        }
    }

    fn manifests(
        settings: &PodSettings,
        job: &PodJob,
        image: &str,
    ) -> Result<(Namespace, Pod), PodError> {
        let m = job_manifests(settings, job, image, &JobContainers::default())?;
        assert!(m.secrets.is_empty());
        Ok((m.namespace, m.pod))
    }

    #[test]
    fn manifests_carry_the_image_guard_labels_and_no_token() {
        let (ns, pod) = manifests(&PodSettings::default(), &job(), "alpine:3").unwrap();
        let name = ns.metadata.name.clone().unwrap();
        assert!(name.starts_with("hr-"), "{name}");
        let labels = ns.metadata.labels.unwrap();
        assert_eq!(labels["hybrid-runner/task-id"], "42");
        assert!(
            ns.metadata
                .annotations
                .unwrap()
                .contains_key("hybrid-runner/expires-at")
        );
        assert_eq!(pod.metadata.namespace.as_deref(), Some(name.as_str()));
        let spec = pod.spec.unwrap();
        assert_eq!(spec.automount_service_account_token, Some(false));
        // The job's hour plus the 5 minutes it may take to start.
        assert_eq!(spec.active_deadline_seconds, Some(3900));
        assert_eq!(spec.containers[0].image.as_deref(), Some("alpine:3"));
        let template = spec.containers[0].resources.clone().unwrap();
        assert_eq!(template.requests.unwrap()["cpu"].0, "100m");
        let settings = PodSettings {
            requests: [("cpu".to_string(), "2".to_string())].into(),
            limits: [("memory".to_string(), "8Gi".to_string())].into(),
            ..PodSettings::default()
        };
        let (_, pod) = manifests(&settings, &job(), "alpine:3").unwrap();
        let resources = pod.spec.unwrap().containers[0].resources.clone().unwrap();
        let requests = resources.requests.unwrap();
        assert_eq!(requests["cpu"].0, "2");
        assert_eq!(requests["memory"].0, "128Mi", "the template's stays");
        assert_eq!(resources.limits.unwrap()["memory"].0, "8Gi");
        // No limit, or one past the expiry: the expiry.
        let unlimited = PodJob {
            time_limit: None,
            ..job()
        };
        let (_, pod) = manifests(&settings, &unlimited, "alpine:3").unwrap();
        assert_eq!(pod.spec.unwrap().active_deadline_seconds, Some(6 * 3600));
        let long = PodJob {
            time_limit: Some(Duration::from_secs(24 * 3600)),
            ..job()
        };
        let (_, pod) = manifests(&settings, &long, "alpine:3").unwrap();
        assert_eq!(pod.spec.unwrap().active_deadline_seconds, Some(6 * 3600));
    }

    #[test]
    fn services_are_sidecars_reached_by_name_and_env_stays_out_of_the_pod() {
        use super::super::containers::{PortSpec, ServiceSpec};
        use super::super::docker_options::{DockerOptions, HealthCheck};
        let health = HealthCheck {
            command: "pg_isready".into(),
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            retries: 4,
            start_period: Duration::ZERO,
        };
        let service = |id: &str, image: &str| ServiceSpec {
            id: id.into(),
            container: ContainerSpec {
                image: image.into(),
                env: vec![("POSTGRES_PASSWORD".into(), "s3cret".into())],
                ports: vec![PortSpec {
                    container: 5432,
                    host: None,
                    protocol: "TCP",
                    location: Default::default(),
                }],
                volumes: vec![VolumeSpec {
                    name: Some("shared".into()),
                    path: "/shared".into(),
                    read_only: false,
                }],
                options: DockerOptions {
                    health: Some(health.clone()),
                    ..DockerOptions::default()
                },
                credentials: Some(("me".into(), "pw".into())),
                command: vec!["--requirepass".into(), "redis-s3cret".into()],
                ..ContainerSpec::default()
            },
        };
        let mut containers = JobContainers {
            job: Some(ContainerSpec {
                image: "registry.example:5000/ci/node:20".into(),
                env: vec![("TOKEN".into(), "t0ken".into())],
                volumes: vec![VolumeSpec {
                    name: Some("shared".into()),
                    path: "/data".into(),
                    read_only: true,
                }],
                options: DockerOptions {
                    user: Some((1000, Some(1000))),
                    cpus: Some("500m".into()),
                    add_hosts: vec![("gw".into(), "10.0.0.1".into())],
                    ..DockerOptions::default()
                },
                ..ContainerSpec::default()
            }),
            services: vec![service("db", "postgres:16"), service("My_Cache", "redis:7")],
        };
        containers.services[0].container.ports[0].host = Some(15432);
        let m = job_manifests(&PodSettings::default(), &job(), "ignored:1", &containers).unwrap();
        let text = serde_json::to_string(&m.pod).unwrap();
        for secret in ["s3cret", "t0ken", "\"pw\"", "redis-s3cret"] {
            assert!(!text.contains(secret), "{secret} in the pod: {text}");
        }
        let spec = m.pod.spec.clone().unwrap();
        let steps = &spec.containers[0];
        assert_eq!(
            steps.image.as_deref(),
            Some("registry.example:5000/ci/node:20")
        );
        let sc = steps.security_context.clone().unwrap();
        assert_eq!((sc.run_as_user, sc.run_as_group), (Some(1000), Some(1000)));
        let resources = steps.resources.clone().unwrap();
        assert_eq!(resources.limits.unwrap()["cpu"].0, "500m");
        assert!(!resources.requests.unwrap().contains_key("cpu"));
        let env = steps.env.clone().unwrap();
        let reference = env[0].value_from.clone().unwrap().secret_key_ref.unwrap();
        assert_eq!(
            (reference.name.as_str(), reference.key.as_str()),
            (ENV_SECRET, "steps.0")
        );
        let init = spec.init_containers.clone().unwrap();
        assert_eq!(
            init.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["svc-db", "svc-my-cache", "fwd-15432"]
        );
        assert_eq!(init[0].restart_policy.as_deref(), Some("Always"));
        // `15432:5432`: a forwarder listens on 15432, ready once it accepts.
        assert_eq!(
            init[2].command.clone().unwrap(),
            ["nc", "-ll", "-p", "15432", "-e", "nc", "127.0.0.1", "5432"]
        );
        assert_eq!(
            init[2].image.as_deref(),
            Some(super::super::DEFAULT_FORWARDER_IMAGE)
        );
        let tcp = init[2].startup_probe.clone().unwrap().tcp_socket.unwrap();
        assert_eq!(tcp.port, IntOrString::Int(15432));
        // A service's arguments travel in job-env; the manifest refers to them.
        assert_eq!(
            init[0].args.clone().unwrap(),
            ["$(HYBRID_RUNNER_ARG_0)", "$(HYBRID_RUNNER_ARG_1)"]
        );
        let probe = init[0].startup_probe.clone().unwrap();
        assert_eq!(
            (
                probe.period_seconds,
                probe.timeout_seconds,
                probe.failure_threshold
            ),
            (Some(2), Some(1), Some(4))
        );
        assert_eq!(
            probe.exec.unwrap().command.unwrap(),
            ["sh", "-c", "pg_isready"]
        );
        // One shared volume, mounted read-only in the steps container.
        let volumes = spec.volumes.clone().unwrap();
        assert_eq!(volumes.iter().filter(|v| v.name == "vol-shared").count(), 1);
        let mount = steps.volume_mounts.clone().unwrap();
        assert!(
            mount
                .iter()
                .any(|m| m.mount_path == "/data" && m.read_only == Some(true))
        );
        let aliases = spec.host_aliases.clone().unwrap();
        let loopback = aliases.iter().find(|a| a.ip == "127.0.0.1").unwrap();
        assert_eq!(
            loopback.hostnames.clone().unwrap(),
            ["db"],
            "My_Cache is no host name"
        );
        assert!(aliases.iter().any(|a| a.ip == "10.0.0.1"));
        assert!(m.notes[0].contains("My_Cache"), "{:?}", m.notes);
        assert_eq!(
            m.services[1],
            ("My_Cache".to_string(), "svc-my-cache".to_string())
        );
        // The Secrets: the env, and the registry logins by registry.
        assert_eq!(m.secrets.len(), 2);
        let env = m.secrets[0].string_data.clone().unwrap();
        assert_eq!(env["steps.0"], "t0ken");
        assert_eq!(env["svc-db.0"], "s3cret");
        let config: serde_json::Value =
            serde_json::from_str(&m.secrets[1].string_data.clone().unwrap()[".dockerconfigjson"])
                .unwrap();
        assert_eq!(
            config["auths"]["https://index.docker.io/v1/"]["auth"],
            "bWU6cHc="
        );
        assert_eq!(spec.image_pull_secrets.unwrap()[0].name, REGISTRY_SECRET);
        assert_eq!(registry_of("localhost/x"), "localhost");
        assert_eq!(registry_of("127.0.0.1:5000/x:1"), "127.0.0.1:5000");
    }
}
