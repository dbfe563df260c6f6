//! The runner's configuration: one validated [`Config`] built before any socket opens, from
//! defaults, then the YAML file (`-c config.yaml`), then environment variables, then the
//! command's flags, each layer overriding the one before.
//!
//! Keys match act_runner's where they mean the same (`log.level`, `runner.file`,
//! `runner.capacity`, `runner.envs`, `runner.env_file`, `runner.timeout`,
//! `runner.shutdown_timeout`, `runner.insecure`, `runner.fetch_timeout`,
//! `runner.fetch_interval`, `runner.fetch_interval_max`, `runner.labels`,
//! `host.workdir_parent`, `metrics.enabled`, `metrics.addr`, `metrics.readiness_grace`), so an
//! act_runner config file loads: act_runner keys that mean nothing here (`cache`,
//! `container`, `runner.github_mirror`, …) are accepted and reported as ignored; any other
//! unknown key is an error at its line. The `kubernetes:` section maps onto the builder's
//! [`KanikoConfig`].
//!
//! Environment variables: one per key, `HYBRID_RUNNER_` followed by the key's path in upper
//! case with `.` as `_` (`runner.capacity` → `HYBRID_RUNNER_RUNNER_CAPACITY`,
//! `kubernetes.resources.requests` → `HYBRID_RUNNER_KUBERNETES_RESOURCES_REQUESTS`). Lists
//! are comma-separated (`a:host,b:kubernetes`), maps are `k=v` pairs separated by commas
//! (`cpu=1,memory=2Gi`), booleans `true`/`false`/`1`/`0`, durations like `30s` or `1h30m`.

mod env;
mod file;
mod template;
mod unknown_keys;
pub mod values;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use env::{ENV_PREFIX, env_var_name};
use hr_cluster::names::is_dns1123_label;
use hr_engine::labels::{Label, LabelError};
use hr_image::kaniko::{ContextMode, KanikoConfig, ResourcesConfig};
pub use template::generate;
pub use values::LogLevel;

/// The largest `runner.fetch_timeout`: a FetchTask call never outlives the 60 s call deadline.
pub const MAX_FETCH_TIMEOUT: Duration = crate::client::CALL_TIMEOUT;

/// The whole configuration, validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub log: LogConfig,
    pub runner: RunnerConfig,
    pub host: HostConfig,
    pub metrics: MetricsConfig,
    pub kubernetes: KubernetesConfig,
    pub cache: CacheConfig,
}

/// `cache:`, act_runner's keys: the cache server jobs save to and restore from.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    pub enabled: bool,
    /// Where entries are kept; `None` = `$HOME/.cache/hybrid-runner/cache`.
    pub dir: Option<PathBuf>,
    /// The host jobs reach the server at; `None` = this machine's outbound address.
    pub host: Option<String>,
    /// The port it listens on; 0 = a free one.
    pub port: u16,
    /// Another server's URL given to jobs instead of starting one.
    pub external_server: Option<String>,
    /// Past this the least recently used entries go (bytes).
    pub max_size: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            dir: None,
            host: None,
            port: 0,
            external_server: None,
            max_size: job_services::DEFAULT_CACHE_LIMIT,
        }
    }
}

/// `log:`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogConfig {
    pub level: LogLevel,
}

/// `runner:`: the identity file and how tasks are fetched and run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerConfig {
    /// The `.runner` registration file; relative paths are from the working folder.
    pub file: PathBuf,
    /// Tasks run at once.
    pub capacity: usize,
    /// Extra environment of every job.
    pub envs: BTreeMap<String, String>,
    /// A dotenv file with extra job environment, read when it exists.
    pub env_file: PathBuf,
    /// The longest a job may run.
    pub timeout: Duration,
    /// How long a stopping daemon waits for running tasks before cancelling them.
    pub shutdown_timeout: Duration,
    /// Skip TLS verification of the Gitea instance.
    pub insecure: bool,
    /// The deadline of one FetchTask call (at most [`MAX_FETCH_TIMEOUT`]).
    pub fetch_timeout: Duration,
    /// The pause between polls when the server had a task or answered.
    pub fetch_interval: Duration,
    /// The longest pause between polls after consecutive empty answers or errors.
    pub fetch_interval_max: Duration,
    /// Labels in act_runner's syntax; when set they replace the `.runner` file's.
    pub labels: Vec<String>,
    /// Where the daemon keeps each running task's log rows until the server acknowledged
    /// them; `None` = `.runner-spool` beside the runner file.
    pub spool_dir: Option<PathBuf>,
    /// Forgejo's `report_retry`: how the final log and state of a task are retried.
    pub report_retry: ReportRetry,
    /// act_runner's `github_mirror`: where actions are fetched from when the server's
    /// default actions URL is `https://github.com`.
    pub github_mirror: Option<String>,
}

/// `runner.report_retry` (forgejo-runner's keys): the final calls of a task make at least
/// `max_retries` attempts, waiting `initial_delay` after the first failure, doubling up to
/// `max_delay` (`None`: no cap). The defaults are this runner's: 3 attempts, 100ms, 5s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRetry {
    pub max_retries: u32,
    pub initial_delay: Duration,
    pub max_delay: Option<Duration>,
}

impl Default for ReportRetry {
    fn default() -> Self {
        ReportRetry {
            max_retries: crate::report::FINAL_MIN_ATTEMPTS,
            initial_delay: Duration::from_millis(100),
            max_delay: Some(Duration::from_secs(5)),
        }
    }
}

impl Default for RunnerConfig {
    /// act_runner's defaults.
    fn default() -> Self {
        RunnerConfig {
            file: PathBuf::from(".runner"),
            capacity: 1,
            envs: BTreeMap::new(),
            env_file: PathBuf::from(".env"),
            timeout: Duration::from_secs(3 * 3600),
            shutdown_timeout: Duration::ZERO,
            insecure: false,
            fetch_timeout: Duration::from_secs(5),
            fetch_interval: Duration::from_secs(2),
            fetch_interval_max: Duration::from_secs(5),
            labels: Vec::new(),
            spool_dir: None,
            report_retry: ReportRetry::default(),
            github_mirror: None,
        }
    }
}

impl RunnerConfig {
    /// The spool folder, with the default (`<folder of runner.file>/.runner-spool`) resolved.
    pub fn spool_dir_or_default(&self) -> PathBuf {
        self.spool_dir
            .clone()
            .unwrap_or_else(|| match self.file.parent() {
                Some(folder) if !folder.as_os_str().is_empty() => folder.join(".runner-spool"),
                _ => PathBuf::from(".runner-spool"),
            })
    }
}

/// `host:`: jobs whose steps run on this host.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostConfig {
    /// Where job work folders are made; `None` = `$HOME/.cache/hybrid-runner/work`.
    pub workdir_parent: Option<PathBuf>,
}

impl HostConfig {
    /// The folder job work folders go into, with the default resolved from `home`.
    pub fn workdir_parent_or_default(&self, home: &Path) -> PathBuf {
        self.workdir_parent
            .clone()
            .unwrap_or_else(|| home.join(".cache/hybrid-runner/work"))
    }
}

/// `metrics:`: `/metrics`, `/healthz`, `/readyz`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    pub enabled: bool,
    pub addr: SocketAddr,
    /// How long polls may keep failing before `/readyz` answers 503.
    pub readiness_grace: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: false,
            addr: SocketAddr::from(([127, 0, 0, 1], 9101)),
            readiness_grace: Duration::from_secs(30),
        }
    }
}

/// `kubernetes:`: the cluster and how Kaniko builds run on it.
#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesConfig {
    /// The config file has a `kubernetes:` section: the operator set up a cluster, so jobs
    /// of container labels (`docker`, `lxc`) run in pods instead of being refused.
    pub configured: bool,
    /// `None`: `KUBECONFIG`, then `~/.kube/config`, then the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// A context of the kubeconfig; `None` = its current context.
    pub context: Option<String>,
    pub namespace_prefix: String,
    pub executor_image: String,
    /// The image the steps of a `kubernetes` label without an image run in.
    pub job_image: String,
    /// The image of the port forwarders of `ports: ['HOST:PORT']` (busybox's `nc`).
    pub forwarder_image: String,
    /// Requests and limits of the job pods' container; an empty map keeps the template's.
    pub job_resources: ResourcesConfig,
    pub resources: ResourcesConfig,
    /// `spec.hard` of a ResourceQuota in each build namespace; empty = no quota.
    pub quota: BTreeMap<String, String>,
    /// A Docker `config.json` with registry credentials, put in a Secret of each build
    /// namespace.
    pub registry_secret_file: Option<PathBuf>,
    pub context_mode: ContextMode,
    /// Kaniko's layer cache (`--cache`), in `cache_repo` when set.
    pub cache: bool,
    pub cache_repo: Option<String>,
    /// Registries reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Registries reached over HTTPS without verifying their certificate (self-signed).
    pub skip_tls_verify_registries: Vec<String>,
    pub ttl_seconds_after_finished: i32,
    /// How long after a task started a left-over build namespace may be reaped.
    pub expiry: Duration,
    /// A folder with the user's own copies of the manifest templates.
    pub template_dir: Option<PathBuf>,
    /// How long a Kaniko pod may stay unschedulable before the build fails.
    pub unschedulable_timeout: Duration,
}

impl Default for KubernetesConfig {
    /// The builder's own defaults ([`KanikoConfig::default`]).
    fn default() -> Self {
        let kaniko = KanikoConfig::default();
        KubernetesConfig {
            configured: false,
            kubeconfig: None,
            context: None,
            namespace_prefix: kaniko.namespace_prefix,
            executor_image: kaniko.executor_image,
            job_image: hr_engine::pod::DEFAULT_JOB_IMAGE.to_string(),
            forwarder_image: hr_engine::pod::DEFAULT_FORWARDER_IMAGE.to_string(),
            job_resources: ResourcesConfig {
                requests: BTreeMap::new(),
                limits: BTreeMap::new(),
            },
            resources: kaniko.resources,
            quota: kaniko.quota.unwrap_or_default(),
            registry_secret_file: None,
            context_mode: kaniko.context_mode,
            cache: kaniko.cache,
            cache_repo: kaniko.cache_repo,
            insecure_registries: kaniko.insecure_registries,
            skip_tls_verify_registries: kaniko.skip_tls_verify_registries,
            ttl_seconds_after_finished: kaniko.ttl_seconds_after_finished,
            expiry: kaniko.expiry,
            template_dir: kaniko.template_dir,
            unschedulable_timeout: kaniko.unschedulable_timeout,
        }
    }
}

impl KubernetesConfig {
    /// The builder's configuration for the runner `runner_id`; reads the registry
    /// credentials file when one is set.
    pub fn kaniko(&self, runner_id: &str) -> Result<KanikoConfig, ConfigError> {
        let registry_secret = match &self.registry_secret_file {
            Some(path) => {
                Some(
                    std::fs::read(path).map_err(|source| ConfigError::RegistrySecret {
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        Ok(KanikoConfig {
            executor_image: self.executor_image.clone(),
            namespace_prefix: self.namespace_prefix.clone(),
            runner_id: runner_id.to_string(),
            ttl_seconds_after_finished: self.ttl_seconds_after_finished,
            resources: self.resources.clone(),
            quota: (!self.quota.is_empty()).then(|| self.quota.clone()),
            registry_secret,
            cache: self.cache,
            cache_repo: self.cache_repo.clone(),
            insecure_registries: self.insecure_registries.clone(),
            skip_tls_verify_registries: self.skip_tls_verify_registries.clone(),
            context_mode: self.context_mode,
            expiry: self.expiry,
            template_dir: self.template_dir.clone(),
            unschedulable_timeout: self.unschedulable_timeout,
            ..KanikoConfig::default()
        })
    }
}

/// A configuration with the act_runner keys it ignored, for the caller to print.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    /// `<file>: <key> is ignored: <why>` lines.
    pub warnings: Vec<String>,
}

/// Why the configuration cannot be used. Printed as usage errors (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}; check the -c path")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{path}: {message}")]
    ParseNoLocation { path: PathBuf, message: String },
    #[error("environment variable {name}: {source}")]
    Env {
        name: String,
        #[source]
        source: values::ValueError,
    },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("runner.labels: {0}")]
    Label(#[from] LabelError),
    #[error("cannot read kubernetes.registry_secret_file {path}; give a Docker config.json")]
    RegistrySecret {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Loads the configuration: defaults, then `file` when given, then the process
/// environment; validated.
pub fn load(file: Option<&Path>) -> Result<Loaded, ConfigError> {
    load_with_env(file, &|name| std::env::var(name).ok())
}

/// [`load`] with the environment read through `env` (tests pass a map).
pub fn load_with_env(
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    let mut config = Config::default();
    let mut warnings = Vec::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        warnings = file::apply(&mut config, &text, path)?;
    }
    env::apply(&mut config, env)?;
    warnings.extend(config.normalise());
    config.validate()?;
    Ok(Loaded { config, warnings })
}

impl Config {
    /// Replaces the values act_runner replaces (internal/pkg/config/config.go,
    /// `LoadDefault`) the same way, and says so: a capacity below 1 is 1, a `timeout` of 0
    /// is 3h, a `fetch_timeout` of 0 is 5s and one past 60s is 60s, a `fetch_interval` of 0
    /// is 2s, a `fetch_interval_max` of 0 is 5s and one below `fetch_interval` is raised to
    /// it. Returns one warning per replaced value.
    pub fn normalise(&mut self) -> Vec<String> {
        let mut warnings = Vec::new();
        let r = &mut self.runner;
        let mut replace = |key: &str, slot: &mut Duration, cond: bool, to: Duration, why: &str| {
            if cond {
                warnings.push(format!(
                    "runner.{key} {} {why}; using {} (as act_runner does)",
                    values::format_duration(*slot),
                    values::format_duration(to)
                ));
                *slot = to;
            }
        };
        let timeout = r.timeout;
        replace(
            "timeout",
            &mut r.timeout,
            timeout.is_zero(),
            Duration::from_secs(3 * 3600),
            "is no time limit",
        );
        let fetch = r.fetch_timeout;
        replace(
            "fetch_timeout",
            &mut r.fetch_timeout,
            fetch.is_zero(),
            Duration::from_secs(5),
            "is no deadline",
        );
        let fetch = r.fetch_timeout;
        replace(
            "fetch_timeout",
            &mut r.fetch_timeout,
            fetch > MAX_FETCH_TIMEOUT,
            MAX_FETCH_TIMEOUT,
            "exceeds the 60s deadline of one call",
        );
        let interval = r.fetch_interval;
        replace(
            "fetch_interval",
            &mut r.fetch_interval,
            interval.is_zero(),
            Duration::from_secs(2),
            "would poll without pause",
        );
        let max = r.fetch_interval_max;
        replace(
            "fetch_interval_max",
            &mut r.fetch_interval_max,
            max.is_zero(),
            Duration::from_secs(5),
            "would poll without pause",
        );
        let (max, interval) = (r.fetch_interval_max, r.fetch_interval);
        replace(
            "fetch_interval_max",
            &mut r.fetch_interval_max,
            max < interval,
            interval,
            "is less than runner.fetch_interval",
        );
        if r.capacity == 0 {
            warnings.push(
                "runner.capacity 0 is not a number of tasks; using 1 (as act_runner does)"
                    .to_string(),
            );
            r.capacity = 1;
        }
        warnings
    }

    /// Checks what single values cannot: ranges and relations between keys. Call again
    /// after applying command-line flags.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_string(),
            })
        };
        let runner = &self.runner;
        if runner.capacity == 0 {
            return invalid("runner.capacity", "must be 1 or more");
        }
        if runner.fetch_timeout.is_zero() || runner.fetch_timeout > MAX_FETCH_TIMEOUT {
            return invalid(
                "runner.fetch_timeout",
                "must be more than 0s and at most 60s (the deadline of one call)",
            );
        }
        if runner.fetch_interval.is_zero() {
            return invalid("runner.fetch_interval", "must be more than 0s");
        }
        if runner.fetch_interval_max < runner.fetch_interval {
            return invalid(
                "runner.fetch_interval_max",
                "must be at least runner.fetch_interval",
            );
        }
        if runner.timeout.is_zero() {
            return invalid("runner.timeout", "must be more than 0s");
        }
        Label::parse_all(&runner.labels)?;
        let k8s = &self.kubernetes;
        if !is_dns1123_label(&k8s.namespace_prefix) || k8s.namespace_prefix.len() > 20 {
            return invalid(
                "kubernetes.namespace_prefix",
                "must be 1 to 20 lowercase letters, digits or '-', starting and ending with a letter or digit",
            );
        }
        if k8s.job_image.trim().is_empty() {
            return invalid("kubernetes.job_image", "must name an image");
        }
        if k8s.forwarder_image.trim().is_empty() {
            return invalid("kubernetes.forwarder_image", "must name an image");
        }
        if k8s.executor_image.trim().is_empty() {
            return invalid("kubernetes.executor_image", "must name an image");
        }
        if k8s.ttl_seconds_after_finished < 0 {
            return invalid("kubernetes.ttl_seconds_after_finished", "must be 0 or more");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
