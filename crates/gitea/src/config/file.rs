//! The config file: YAML read by serde-saphyr into structs whose every key is optional
//! (a missing key keeps the layer below). A key no section knows is reported at its
//! `line:col` and ignored ([`super::unknown_keys`]), act_runner's keys that mean nothing here
//! are reported as ignored, and a bad value is an error at its line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

use super::unknown_keys;
use super::values::{self, LogLevel};
use super::{Config, ConfigError};
use hr_engine::labels::Label;
use hr_image::kaniko::ContextMode;

#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    log: Option<FileLog>,
    runner: Option<FileRunner>,
    host: Option<FileHost>,
    metrics: Option<FileMetrics>,
    kubernetes: Option<FileKubernetes>,
    cache: Option<FileCache>,
    // act_runner's, without meaning here.
    container: Option<IgnoredAny>,
    health_check: Option<IgnoredAny>,
    server: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
struct FileLog {
    #[serde(default, deserialize_with = "log_level")]
    level: Option<LogLevel>,
    // act_runner's local copies of job logs; forgejo-runner's job log level.
    job: Option<IgnoredAny>,
    job_level: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
struct FileRunner {
    file: Option<PathBuf>,
    #[serde(default, deserialize_with = "capacity")]
    capacity: Option<usize>,
    envs: Option<BTreeMap<String, String>>,
    env_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "duration")]
    timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    shutdown_timeout: Option<Duration>,
    insecure: Option<bool>,
    #[serde(default, deserialize_with = "duration")]
    fetch_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    fetch_interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    fetch_interval_max: Option<Duration>,
    labels: Option<Vec<LabelSpec>>,
    spool_dir: Option<PathBuf>,
    report_retry: Option<FileRetry>,
    // act_runner's, without meaning here (reporting cadence is this runner's own).
    workdir_cleanup_age: Option<IgnoredAny>,
    idle_cleanup_interval: Option<IgnoredAny>,
    log_report_interval: Option<IgnoredAny>,
    log_report_max_latency: Option<IgnoredAny>,
    log_report_batch_size: Option<IgnoredAny>,
    state_report_interval: Option<IgnoredAny>,
    report_close_timeout: Option<IgnoredAny>,
    report_interval: Option<IgnoredAny>,
    github_mirror: Option<String>,
    action_shallow_clone: Option<IgnoredAny>,
    set_act_env: Option<IgnoredAny>,
    patch_actions: Option<IgnoredAny>,
    allocate_pty: Option<IgnoredAny>,
    default_image: Option<IgnoredAny>,
    tool_cache_mode: Option<IgnoredAny>,
    post_task_script: Option<IgnoredAny>,
    post_task_script_timeout: Option<IgnoredAny>,
    hooks: Option<IgnoredAny>,
}

/// forgejo-runner's `runner.report_retry`.
#[derive(Debug, Default, Deserialize)]
struct FileRetry {
    max_retries: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    initial_delay: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    max_delay: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
struct FileHost {
    workdir_parent: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
struct FileCache {
    enabled: Option<bool>,
    dir: Option<PathBuf>,
    host: Option<String>,
    port: Option<u16>,
    external_server: Option<String>,
    #[serde(default, deserialize_with = "size")]
    max_size: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct FileMetrics {
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "socket_addr")]
    addr: Option<SocketAddr>,
    #[serde(default, deserialize_with = "duration")]
    readiness_grace: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
struct FileKubernetes {
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    namespace_prefix: Option<String>,
    executor_image: Option<String>,
    job_image: Option<String>,
    forwarder_image: Option<String>,
    job_resources: Option<FileResources>,
    resources: Option<FileResources>,
    quota: Option<BTreeMap<String, String>>,
    registry_secret_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "context_mode")]
    context_mode: Option<ContextMode>,
    cache: Option<bool>,
    cache_repo: Option<String>,
    insecure_registries: Option<Vec<String>>,
    skip_tls_verify_registries: Option<Vec<String>>,
    ttl_seconds_after_finished: Option<i32>,
    #[serde(default, deserialize_with = "duration")]
    expiry: Option<Duration>,
    template_dir: Option<PathBuf>,
    #[serde(default, deserialize_with = "duration")]
    unschedulable_timeout: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
struct FileResources {
    requests: Option<BTreeMap<String, String>>,
    limits: Option<BTreeMap<String, String>>,
}

/// A label checked where it is written, so a bad one is reported at its line.
#[derive(Debug)]
struct LabelSpec(String);

impl<'de> Deserialize<'de> for LabelSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Label::parse(&text).map_err(serde::de::Error::custom)?;
        Ok(LabelSpec(text))
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    values::from_str(d, values::parse_duration).map(Some)
}

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    values::from_str(d, job_services::parse_size).map(Some)
}

fn log_level<'de, D: Deserializer<'de>>(d: D) -> Result<Option<LogLevel>, D::Error> {
    values::from_str(d, LogLevel::parse).map(Some)
}

fn context_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ContextMode>, D::Error> {
    values::from_str(d, values::parse_context_mode).map(Some)
}

fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    values::from_str(d, |t| {
        t.trim().parse().map_err(|_| {
            format!("{t:?} is not an address; write it as host-ip:port, e.g. 127.0.0.1:9101 or 0.0.0.0:9101")
        })
    })
    .map(Some)
}

/// A whole number; 0 and below become 0, which [`Config::normalise`] makes 1 with a
/// warning, as act_runner does.
fn capacity<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let n = i64::deserialize(d)?;
    Ok(Some(usize::try_from(n.max(0)).unwrap_or(usize::MAX)))
}

/// Applies the file's keys over `config`; returns the warnings for ignored keys.
pub(super) fn apply(
    config: &mut Config,
    text: &str,
    path: &Path,
) -> Result<Vec<String>, ConfigError> {
    let file: FileConfig = if text.trim().is_empty() {
        FileConfig::default()
    } else {
        serde_saphyr::from_str::<Option<FileConfig>>(text)
            .map_err(|e| parse_error(&e, path))?
            .unwrap_or_default()
    };
    let mut warnings: Vec<String> = ignored_keys(&file)
        .into_iter()
        .map(|key| {
            format!(
                "{}: {key} is an act_runner setting hybrid-runner does not use; it is ignored",
                path.display()
            )
        })
        .collect();
    if let Ok(tree) = workflows::yaml::parse(text, &path.display().to_string()) {
        for (key, node) in unknown_keys::unknown_keys(&tree, &known_keys) {
            warnings.push(format!(
                "{}:{}:{}: unknown key {key}; it is ignored (check its spelling and section)",
                path.display(),
                node.location.line,
                node.location.column
            ));
        }
    }
    if let Some(log) = file.log {
        set(&mut config.log.level, log.level);
    }
    if let Some(r) = file.runner {
        let c = &mut config.runner;
        set(&mut c.file, r.file);
        set(&mut c.capacity, r.capacity);
        set(&mut c.envs, r.envs);
        set(&mut c.env_file, r.env_file);
        set(&mut c.timeout, r.timeout);
        set(&mut c.shutdown_timeout, r.shutdown_timeout);
        set(&mut c.insecure, r.insecure);
        set(&mut c.fetch_timeout, r.fetch_timeout);
        set(&mut c.fetch_interval, r.fetch_interval);
        set(&mut c.fetch_interval_max, r.fetch_interval_max);
        set(
            &mut c.labels,
            r.labels.map(|l| l.into_iter().map(|s| s.0).collect()),
        );
        set_some(&mut c.spool_dir, r.spool_dir);
        set_some(
            &mut c.github_mirror,
            r.github_mirror.filter(|m| !m.trim().is_empty()),
        );
        if let Some(retry) = r.report_retry {
            let slot = &mut c.report_retry;
            // forgejo-runner: 0 retries and a 0 delay mean its defaults, a 0 max no cap.
            set(&mut slot.max_retries, retry.max_retries.filter(|n| *n > 0));
            set(
                &mut slot.initial_delay,
                retry.initial_delay.filter(|d| !d.is_zero()),
            );
            if let Some(max) = retry.max_delay {
                slot.max_delay = (!max.is_zero()).then_some(max);
            }
        }
    }
    if let Some(h) = file.host {
        set_some(&mut config.host.workdir_parent, h.workdir_parent);
    }
    if let Some(c) = file.cache {
        let slot = &mut config.cache;
        set(&mut slot.enabled, c.enabled);
        set_some(&mut slot.dir, c.dir.filter(|d| !d.as_os_str().is_empty()));
        set_some(&mut slot.host, c.host.filter(|h| !h.trim().is_empty()));
        set(&mut slot.port, c.port);
        set_some(
            &mut slot.external_server,
            c.external_server.filter(|s| !s.trim().is_empty()),
        );
        set(&mut slot.max_size, c.max_size);
    }
    if let Some(m) = file.metrics {
        let c = &mut config.metrics;
        set(&mut c.enabled, m.enabled);
        set(&mut c.addr, m.addr);
        set(&mut c.readiness_grace, m.readiness_grace);
    }
    if let Some(k) = file.kubernetes {
        let c = &mut config.kubernetes;
        c.configured = true;
        set_some(&mut c.kubeconfig, k.kubeconfig);
        set_some(&mut c.context, k.context);
        set(&mut c.namespace_prefix, k.namespace_prefix);
        set(&mut c.executor_image, k.executor_image);
        set(&mut c.job_image, k.job_image);
        set(&mut c.forwarder_image, k.forwarder_image);
        if let Some(res) = k.job_resources {
            set(&mut c.job_resources.requests, res.requests);
            set(&mut c.job_resources.limits, res.limits);
        }
        if let Some(res) = k.resources {
            set(&mut c.resources.requests, res.requests);
            set(&mut c.resources.limits, res.limits);
        }
        set(&mut c.quota, k.quota);
        set_some(&mut c.registry_secret_file, k.registry_secret_file);
        set(&mut c.context_mode, k.context_mode);
        set(&mut c.cache, k.cache);
        set_some(&mut c.cache_repo, k.cache_repo);
        set(&mut c.insecure_registries, k.insecure_registries);
        set(
            &mut c.skip_tls_verify_registries,
            k.skip_tls_verify_registries,
        );
        set(
            &mut c.ttl_seconds_after_finished,
            k.ttl_seconds_after_finished,
        );
        set(&mut c.expiry, k.expiry);
        set_some(&mut c.template_dir, k.template_dir);
        set(&mut c.unschedulable_timeout, k.unschedulable_timeout);
    }
    Ok(warnings)
}

/// The keys of the section at `path` of the file (`""`: the top).
fn known_keys(path: &str) -> Option<&'static [&'static str]> {
    use unknown_keys::fields_of;
    match path {
        "" => Some(fields_of::<FileConfig>()),
        "log" => Some(fields_of::<FileLog>()),
        "runner" => Some(fields_of::<FileRunner>()),
        "runner.report_retry" => Some(fields_of::<FileRetry>()),
        "host" => Some(fields_of::<FileHost>()),
        "metrics" => Some(fields_of::<FileMetrics>()),
        "cache" => Some(fields_of::<FileCache>()),
        "kubernetes" => Some(fields_of::<FileKubernetes>()),
        "kubernetes.job_resources" | "kubernetes.resources" => Some(fields_of::<FileResources>()),
        _ => None,
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

fn set_some<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

/// The act_runner keys present in the file that this runner does not use.
fn ignored_keys(file: &FileConfig) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut add = |present: bool, key| {
        if present {
            keys.push(key);
        }
    };
    add(file.container.is_some(), "container");
    add(file.health_check.is_some(), "health_check");
    add(file.server.is_some(), "server");
    if let Some(log) = &file.log {
        add(log.job.is_some(), "log.job");
        add(log.job_level.is_some(), "log.job_level");
    }
    if let Some(r) = &file.runner {
        for (present, key) in [
            (
                r.workdir_cleanup_age.is_some(),
                "runner.workdir_cleanup_age",
            ),
            (
                r.idle_cleanup_interval.is_some(),
                "runner.idle_cleanup_interval",
            ),
            (
                r.log_report_interval.is_some(),
                "runner.log_report_interval",
            ),
            (
                r.log_report_max_latency.is_some(),
                "runner.log_report_max_latency",
            ),
            (
                r.log_report_batch_size.is_some(),
                "runner.log_report_batch_size",
            ),
            (
                r.state_report_interval.is_some(),
                "runner.state_report_interval",
            ),
            (
                r.report_close_timeout.is_some(),
                "runner.report_close_timeout",
            ),
            (r.report_interval.is_some(), "runner.report_interval"),
            (
                r.action_shallow_clone.is_some(),
                "runner.action_shallow_clone",
            ),
            (r.set_act_env.is_some(), "runner.set_act_env"),
            (r.patch_actions.is_some(), "runner.patch_actions"),
            (r.allocate_pty.is_some(), "runner.allocate_pty"),
            (r.default_image.is_some(), "runner.default_image"),
            (r.tool_cache_mode.is_some(), "runner.tool_cache_mode"),
            (r.post_task_script.is_some(), "runner.post_task_script"),
            (
                r.post_task_script_timeout.is_some(),
                "runner.post_task_script_timeout",
            ),
            (r.hooks.is_some(), "runner.hooks"),
        ] {
            add(present, key);
        }
    }
    keys
}

/// `file:line:column: message`, the parser's own " at line L, column C" and snippet dropped.
fn parse_error(e: &serde_saphyr::Error, path: &Path) -> ConfigError {
    let rendered = e.without_snippet().to_string();
    let first = rendered.lines().next().unwrap_or("invalid YAML").trim();
    match e.location().filter(|l| l.line() > 0) {
        Some(location) => {
            let message = match first.rfind(" at line ") {
                Some(i) => &first[..i],
                None => first,
            };
            ConfigError::Parse {
                path: path.to_path_buf(),
                line: location.line(),
                column: location.column(),
                message: message.to_string(),
            }
        }
        None => ConfigError::ParseNoLocation {
            path: path.to_path_buf(),
            message: first.to_string(),
        },
    }
}
