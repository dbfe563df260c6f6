//! How builds run on the cluster: executor image, namespace naming and lifetime, resources,
//! quota, registry credentials, cache, insecure registries (plain HTTP, or HTTPS whose
//! certificate is not verified) and how the context gets in.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The default Kaniko executor: the maintained osscontainertools fork (Google's kaniko was
/// archived in June 2025), pinned to its latest release at the time of writing (v1.28.3,
/// 2026-08-13). Pin a digest in the configuration for fully reproducible pulls.
pub const DEFAULT_EXECUTOR_IMAGE: &str = "ghcr.io/osscontainertools/kaniko:v1.28.3";

/// The default image of the pod that loads a large context into its volume: the debug
/// build of the same executor release, which carries busybox (`/busybox/sh`, `sha256sum`),
/// so no second registry is needed.
pub const DEFAULT_LOADER_IMAGE: &str = "ghcr.io/osscontainertools/kaniko:v1.28.3-debug";

/// How the build context reaches Kaniko.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContextMode {
    /// A ConfigMap when the context fits, else [`KanikoConfig::large_context`].
    #[default]
    Auto,
    /// Always a ConfigMap (`binaryData`); fails when the context does not fit.
    ConfigMap,
    /// Always a PVC filled by a loader pod.
    Pvc,
    /// Always Kaniko's stdin (`tar://stdin`), written by the runner over attach.
    Stdin,
}

impl ContextMode {
    /// The mode's name as written in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ContextMode::Auto => "auto",
            ContextMode::ConfigMap => "configmap",
            ContextMode::Pvc => "pvc",
            ContextMode::Stdin => "stdin",
        }
    }
}

/// Where [`ContextMode::Auto`] puts a context too large for a ConfigMap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LargeContextMode {
    #[default]
    Pvc,
    Stdin,
}

/// Requests and limits of the Kaniko container, as Kubernetes quantities by resource name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcesConfig {
    pub requests: BTreeMap<String, String>,
    pub limits: BTreeMap<String, String>,
}

impl Default for ResourcesConfig {
    /// Kaniko unpacks images into its own root filesystem, so memory and node ephemeral
    /// storage grow with the image: explicit requests and limits for both.
    fn default() -> Self {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        ResourcesConfig {
            requests: map(&[
                ("cpu", "500m"),
                ("memory", "1Gi"),
                ("ephemeral-storage", "5Gi"),
            ]),
            limits: map(&[("memory", "4Gi"), ("ephemeral-storage", "20Gi")]),
        }
    }
}

/// Container defaults of a namespace's LimitRange, as quantities by resource name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LimitRangeConfig {
    pub default_request: BTreeMap<String, String>,
    pub default_limit: BTreeMap<String, String>,
    pub max: BTreeMap<String, String>,
}

/// The volume a large context is loaded into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvcConfig {
    /// Requested size in bytes; also the largest context accepted.
    pub size_bytes: u64,
    pub storage_class: Option<String>,
    /// `ReadWriteOnce` (both Kaniko pods are then kept on one node) or `ReadWriteMany`.
    pub access_mode: String,
    pub loader_image: String,
}

impl Default for PvcConfig {
    fn default() -> Self {
        PvcConfig {
            size_bytes: 1 << 30,
            storage_class: None,
            access_mode: "ReadWriteOnce".to_string(),
            loader_image: DEFAULT_LOADER_IMAGE.to_string(),
        }
    }
}

/// Everything about running Kaniko builds that comes from the runner's configuration.
#[derive(Debug, Clone)]
pub struct KanikoConfig {
    pub executor_image: String,
    /// Prefix of every build namespace's name.
    pub namespace_prefix: String,
    /// This runner's id, in the namespace's labels (the reaper selects on it).
    pub runner_id: String,
    pub ttl_seconds_after_finished: i32,
    pub resources: ResourcesConfig,
    /// `spec.hard` of a ResourceQuota, when set.
    pub quota: Option<BTreeMap<String, String>>,
    pub limit_range: Option<LimitRangeConfig>,
    /// A Docker `config.json` with registry credentials, when set.
    pub registry_secret: Option<Vec<u8>>,
    pub cache: bool,
    pub cache_repo: Option<String>,
    /// Registries reached over plain HTTP (Kaniko's `--insecure-registry`).
    pub insecure_registries: Vec<String>,
    /// Registries reached over HTTPS without verifying their certificate, e.g. a
    /// self-signed one (Kaniko's `--skip-tls-verify-registry`).
    pub skip_tls_verify_registries: Vec<String>,
    pub context_mode: ContextMode,
    pub large_context: LargeContextMode,
    pub pvc: PvcConfig,
    /// The largest context sent over stdin.
    pub stdin_max_bytes: u64,
    /// How long after the task started a left-over namespace may be reaped.
    pub expiry: Duration,
    /// A folder with the user's own copies of the templates (same file names); missing
    /// files fall back to the built-in ones.
    pub template_dir: Option<PathBuf>,
    /// How long a Kaniko pod may stay unschedulable before the build fails (an autoscaler
    /// may add a node meanwhile).
    pub unschedulable_timeout: Duration,
}

impl Default for KanikoConfig {
    fn default() -> Self {
        KanikoConfig {
            executor_image: DEFAULT_EXECUTOR_IMAGE.to_string(),
            namespace_prefix: "hr".to_string(),
            runner_id: hr_cluster::run_ids::DEFAULT_RUNNER_ID.to_string(),
            ttl_seconds_after_finished: 600,
            resources: ResourcesConfig::default(),
            quota: None,
            limit_range: None,
            registry_secret: None,
            cache: false,
            cache_repo: None,
            insecure_registries: Vec::new(),
            skip_tls_verify_registries: Vec::new(),
            context_mode: ContextMode::Auto,
            large_context: LargeContextMode::Pvc,
            pvc: PvcConfig::default(),
            stdin_max_bytes: 2 << 30,
            expiry: Duration::from_secs(6 * 3600),
            template_dir: None,
            unschedulable_timeout: Duration::from_secs(300),
        }
    }
}
