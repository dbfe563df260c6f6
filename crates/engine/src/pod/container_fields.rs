//! How a container of the job pod gets what its spec asks for ([`ContainerSpec`]): its
//! environment as references into the `job-env` Secret, its arguments likewise, `options`
//! (user, working folder, CPU and memory limits), volumes, health checks as startup
//! probes, and the port forwarder sidecars ([`super::manifest`] puts them together).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction, Probe, ResourceRequirements,
    SecretKeySelector, SecurityContext, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::containers::{ContainerSpec, VolumeSpec};
use super::manifest::{ENV_SECRET, FORWARDER_PREFIX};

/// The prefix of the variables that carry a container's arguments.
pub const ARG_VARIABLE: &str = "HYBRID_RUNNER_ARG_";

/// `args` as Kubernetes `$(VAR)` references to variables of their own (which come from a
/// Secret like the rest of the environment), so an argument holding a secret (`command:
/// --requirepass ${{ secrets.PW }}`) is not in the pod's manifest: the kubelet expands the
/// references when it starts the container, and an expanded value is not expanded again.
pub fn args_by_reference(args: &[String]) -> (Vec<String>, Vec<(String, String)>) {
    args.iter()
        .enumerate()
        .map(|(i, arg)| {
            let name = format!("{ARG_VARIABLE}{i}");
            (format!("$({name})"), (name, arg.clone()))
        })
        .unzip()
}

/// The container's environment as references into `job-env` (`<container>.<n>` keys:
/// Secret keys allow fewer characters than variable names).
pub(super) fn set_env(
    container: &mut Container,
    env: &[(String, String)],
    data: &mut BTreeMap<String, String>,
) {
    if env.is_empty() {
        return;
    }
    let list = container.env.get_or_insert_with(Vec::new);
    for (i, (name, value)) in env.iter().enumerate() {
        let key = format!("{}.{i}", container.name);
        data.insert(key.clone(), value.clone());
        list.retain(|e| e.name != *name);
        list.push(EnvVar {
            name: name.clone(),
            value: None,
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: ENV_SECRET.to_string(),
                    key,
                    optional: Some(false),
                }),
                ..Default::default()
            }),
        });
    }
}

pub(super) fn apply_options(container: &mut Container, spec: &ContainerSpec) {
    let o = &spec.options;
    if let Some((uid, gid)) = o.user {
        let sc = container
            .security_context
            .get_or_insert_with(SecurityContext::default);
        sc.run_as_user = Some(uid);
        sc.run_as_group = gid;
        sc.run_as_non_root = (uid != 0).then_some(true);
    }
    if let Some(workdir) = &o.workdir {
        container.working_dir = Some(workdir.clone());
    }
    for (name, value) in [("cpu", &o.cpus), ("memory", &o.memory)] {
        if let Some(value) = value {
            let resources = container
                .resources
                .get_or_insert_with(ResourceRequirements::default);
            resources
                .limits
                .get_or_insert_with(BTreeMap::new)
                .insert(name.to_string(), Quantity(value.clone()));
            // A request above the new limit would be refused.
            if let Some(requests) = resources.requests.as_mut() {
                requests.remove(name);
            }
        }
    }
}

/// Mounts `volumes` in `container`, adding each to `all` once (a named volume is shared
/// by every container naming it).
pub(super) fn mount_volumes(
    container: &mut Container,
    volumes: &[VolumeSpec],
    all: &mut Vec<Volume>,
) {
    for (i, v) in volumes.iter().enumerate() {
        let volume = match &v.name {
            Some(name) => {
                let clean: String = name
                    .to_ascii_lowercase()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect();
                let mut volume = format!("vol-{}", clean.trim_matches('-'));
                volume.truncate(63);
                volume.trim_end_matches('-').to_string()
            }
            None => format!("{}-anon-{i}", container.name),
        };
        if !all.iter().any(|existing| existing.name == volume) {
            all.push(Volume {
                name: volume.clone(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            });
        }
        container
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .push(VolumeMount {
                name: volume,
                mount_path: v.path.clone(),
                read_only: Some(v.read_only).filter(|r| *r),
                ..Default::default()
            });
    }
}

/// The sidecar that passes connections to `localhost:host` on to `127.0.0.1:port`.
pub(super) fn forwarder(image: &str, host: u16, port: u16) -> Container {
    let quantity = |pairs: &[(&str, &str)]| {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                .collect(),
        )
    };
    Container {
        name: format!("{FORWARDER_PREFIX}{host}"),
        image: Some(image.to_string()),
        restart_policy: Some("Always".into()),
        command: Some(
            [
                "nc",
                "-ll",
                "-p",
                &host.to_string(),
                "-e",
                "nc",
                "127.0.0.1",
                &port.to_string(),
            ]
            .map(String::from)
            .to_vec(),
        ),
        ports: Some(vec![k8s_openapi::api::core::v1::ContainerPort {
            container_port: i32::from(host),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        startup_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(i32::from(host)),
                ..Default::default()
            }),
            period_seconds: Some(1),
            failure_threshold: Some(30),
            ..Default::default()
        }),
        resources: Some(ResourceRequirements {
            requests: quantity(&[("cpu", "10m"), ("memory", "16Mi")]),
            limits: quantity(&[("memory", "64Mi")]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(super) fn probe(command: &str, health: &super::docker_options::HealthCheck) -> Probe {
    let (period, timeout, failures) = health.probe_numbers();
    Probe {
        exec: Some(ExecAction {
            command: Some(vec!["sh".into(), "-c".into(), command.to_string()]),
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(timeout),
        failure_threshold: Some(failures),
        initial_delay_seconds: Some(0),
        ..Default::default()
    }
}
