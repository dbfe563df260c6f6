//! The daemon's `config.yaml` inside the cluster: the typed [`Config`] the pod runs with
//! and its text for the ConfigMap. Paths point into the pod's volumes; `kubernetes:` keeps
//! no kubeconfig, so the builder uses the pod's ServiceAccount.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use hr_gitea::config::values::format_duration;
use hr_gitea::config::{Config, KubernetesConfig};
use hr_image::kaniko::KanikoConfig;

use super::DeploySettings;

/// Where the ConfigMap is mounted and the file in it.
pub const CONFIG_DIR: &str = "/etc/hybrid-runner/config";
pub const CONFIG_FILE: &str = "/etc/hybrid-runner/config/config.yaml";
/// The volume with `.runner` and the log spool (a PVC of the StatefulSet).
pub const DATA_DIR: &str = "/data";
/// The registration file, on the data volume.
pub const RUNNER_FILE: &str = "/data/.runner";
/// Task work folders (an emptyDir: scratch space of running tasks).
pub const WORKDIR_PARENT: &str = "/work/tasks";
/// Where the registration token Secret is mounted, and the token file in it.
pub const TOKEN_DIR: &str = "/etc/hybrid-runner/registration";
pub const TOKEN_FILE: &str = "/etc/hybrid-runner/registration/token";
/// Where the registry credentials Secret is mounted, and the Docker config in it.
pub const REGISTRY_DIR: &str = "/etc/hybrid-runner/registry";
pub const REGISTRY_FILE: &str = "/etc/hybrid-runner/registry/config.json";
/// The port of `/metrics`, `/healthz` and `/readyz`, on every interface of the pod.
pub const METRICS_PORT: u16 = 9101;

/// The configuration the daemon runs with under `settings`.
pub fn daemon_config(settings: &DeploySettings) -> Config {
    let mut config = Config::default();
    config.runner.file = PathBuf::from(RUNNER_FILE);
    config.runner.capacity = settings.capacity;
    config.runner.shutdown_timeout = settings.shutdown_timeout;
    config.host.workdir_parent = Some(PathBuf::from(WORKDIR_PARENT));
    config.metrics.enabled = true;
    config.metrics.addr = SocketAddr::from(([0, 0, 0, 0], METRICS_PORT));
    // In the cluster: container labels' jobs go to pods (the ConfigMap has the section).
    config.kubernetes.configured = true;
    config.kubernetes.registry_secret_file = settings
        .registry_secret
        .as_ref()
        .map(|_| PathBuf::from(REGISTRY_FILE));
    config
}

/// `config` as the text of `config.yaml`: the keys that differ from the defaults, each
/// value a quoted YAML string or a plain number or boolean.
pub fn config_text(config: &Config) -> String {
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let r = &config.runner;
    let mut out = String::from(
        "# Written by `hybrid-runner generate-manifests` for a runner inside the cluster.\n\
         # Every key not listed keeps its default (see `hybrid-runner generate-config`).\n",
    );
    let _ = writeln!(out, "log:\n  level: {}", config.log.level.as_str());
    let _ = writeln!(out, "runner:");
    let _ = writeln!(out, "  file: {}", q(&r.file.to_string_lossy()));
    let _ = writeln!(out, "  capacity: {}", r.capacity);
    let _ = writeln!(out, "  timeout: {}", format_duration(r.timeout));
    let _ = writeln!(
        out,
        "  # The pod's terminationGracePeriodSeconds leaves room for this.\n  shutdown_timeout: {}",
        format_duration(r.shutdown_timeout)
    );
    if let Some(dir) = &config.host.workdir_parent {
        let _ = writeln!(
            out,
            "host:\n  workdir_parent: {}",
            q(&dir.to_string_lossy())
        );
    }
    let m = &config.metrics;
    let _ = writeln!(
        out,
        "metrics:\n  # The pod's probes call /healthz and /readyz here.\n  enabled: {}\n  addr: {}",
        m.enabled,
        q(&m.addr.to_string())
    );
    let k = &config.kubernetes;
    let _ = writeln!(
        out,
        "kubernetes:\n  # No kubeconfig: builds use the pod's ServiceAccount."
    );
    let _ = writeln!(out, "  namespace_prefix: {}", q(&k.namespace_prefix));
    let _ = writeln!(out, "  executor_image: {}", q(&k.executor_image));
    let _ = writeln!(out, "  context_mode: {}", k.context_mode.as_str());
    if let Some(file) = &k.registry_secret_file {
        let _ = writeln!(
            out,
            "  registry_secret_file: {}",
            q(&file.to_string_lossy())
        );
    }
    out
}

/// The builder configuration `config` leads to, as far as permissions go (the registry
/// credentials are a file in the pod, so only their presence is known here).
pub fn kaniko_shape(k: &KubernetesConfig) -> KanikoConfig {
    KanikoConfig {
        context_mode: k.context_mode,
        registry_secret: k.registry_secret_file.as_ref().map(|_| Vec::new()),
        quota: (!k.quota.is_empty()).then(|| k.quota.clone()),
        ..KanikoConfig::default()
    }
}
