//! Environment overrides: one variable per key, `HYBRID_RUNNER_` + the key's path in upper
//! case with `.` as `_`. A set variable replaces the file's value whole (a list or map is
//! not merged); an empty value clears optional keys and empties lists and maps.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::values::{self, LogLevel, ValueError};
use super::{Config, ConfigError};

/// The prefix of every configuration variable.
pub const ENV_PREFIX: &str = "HYBRID_RUNNER_";

/// The variable that overrides `key` (`runner.capacity` → `HYBRID_RUNNER_RUNNER_CAPACITY`).
pub fn env_var_name(key: &str) -> String {
    let mut name = String::from(ENV_PREFIX);
    name.extend(key.chars().map(|c| match c {
        '.' | '-' => '_',
        c => c.to_ascii_uppercase(),
    }));
    name
}

type Parse<T> = fn(&str) -> Result<T, ValueError>;

struct Overrides<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Overrides<'_> {
    fn set<T>(&self, key: &str, slot: &mut T, parse: Parse<T>) -> Result<(), ConfigError> {
        let name = env_var_name(key);
        if let Some(value) = (self.env)(&name) {
            *slot = parse(&value).map_err(|source| ConfigError::Env { name, source })?;
        }
        Ok(())
    }

    /// An optional key: an empty value sets `None`.
    fn set_opt<T>(
        &self,
        key: &str,
        slot: &mut Option<T>,
        parse: Parse<T>,
    ) -> Result<(), ConfigError> {
        let name = env_var_name(key);
        if let Some(value) = (self.env)(&name) {
            *slot = if value.trim().is_empty() {
                None
            } else {
                Some(parse(&value).map_err(|source| ConfigError::Env { name, source })?)
            };
        }
        Ok(())
    }
}

/// Applies every set `HYBRID_RUNNER_*` variable over `config`.
pub(super) fn apply(
    config: &mut Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let o = Overrides { env };
    o.set("log.level", &mut config.log.level, LogLevel::parse)?;

    let r = &mut config.runner;
    o.set("runner.file", &mut r.file, path)?;
    o.set("runner.capacity", &mut r.capacity, count)?;
    o.set("runner.envs", &mut r.envs, map)?;
    o.set("runner.env_file", &mut r.env_file, path)?;
    o.set("runner.timeout", &mut r.timeout, values::parse_duration)?;
    o.set(
        "runner.shutdown_timeout",
        &mut r.shutdown_timeout,
        values::parse_duration,
    )?;
    o.set("runner.insecure", &mut r.insecure, boolean)?;
    o.set(
        "runner.fetch_timeout",
        &mut r.fetch_timeout,
        values::parse_duration,
    )?;
    o.set(
        "runner.fetch_interval",
        &mut r.fetch_interval,
        values::parse_duration,
    )?;
    o.set(
        "runner.fetch_interval_max",
        &mut r.fetch_interval_max,
        values::parse_duration,
    )?;
    // act_runner's container image reads its labels from GITEA_RUNNER_LABELS (a comma
    // list); HYBRID_RUNNER_RUNNER_LABELS wins when both are set.
    if let Some(value) = env("GITEA_RUNNER_LABELS") {
        r.labels = list(&value).map_err(|source| ConfigError::Env {
            name: "GITEA_RUNNER_LABELS".to_string(),
            source,
        })?;
    }
    o.set("runner.labels", &mut r.labels, list)?;
    o.set_opt("runner.spool_dir", &mut r.spool_dir, path)?;
    o.set_opt("runner.github_mirror", &mut r.github_mirror, string)?;

    o.set_opt("host.workdir_parent", &mut config.host.workdir_parent, path)?;

    let c = &mut config.cache;
    o.set("cache.enabled", &mut c.enabled, boolean)?;
    o.set_opt("cache.dir", &mut c.dir, path)?;
    o.set_opt("cache.host", &mut c.host, string)?;
    o.set("cache.port", &mut c.port, |t| {
        t.trim().parse().map_err(|_| ValueError::Port {
            text: t.to_string(),
        })
    })?;
    o.set_opt("cache.external_server", &mut c.external_server, string)?;
    o.set("cache.max_size", &mut c.max_size, |t| {
        job_services::parse_size(t).map_err(|_| ValueError::Size {
            text: t.to_string(),
        })
    })?;

    let m = &mut config.metrics;
    o.set("metrics.enabled", &mut m.enabled, boolean)?;
    o.set("metrics.addr", &mut m.addr, |t| {
        t.trim().parse().map_err(|_| ValueError::Address {
            text: t.to_string(),
        })
    })?;
    o.set(
        "metrics.readiness_grace",
        &mut m.readiness_grace,
        values::parse_duration,
    )?;

    let k = &mut config.kubernetes;
    o.set_opt("kubernetes.kubeconfig", &mut k.kubeconfig, path)?;
    o.set_opt("kubernetes.context", &mut k.context, string)?;
    o.set(
        "kubernetes.namespace_prefix",
        &mut k.namespace_prefix,
        string,
    )?;
    o.set("kubernetes.executor_image", &mut k.executor_image, string)?;
    o.set("kubernetes.job_image", &mut k.job_image, string)?;
    o.set("kubernetes.forwarder_image", &mut k.forwarder_image, string)?;
    o.set(
        "kubernetes.job_resources.requests",
        &mut k.job_resources.requests,
        map,
    )?;
    o.set(
        "kubernetes.job_resources.limits",
        &mut k.job_resources.limits,
        map,
    )?;
    o.set(
        "kubernetes.resources.requests",
        &mut k.resources.requests,
        map,
    )?;
    o.set("kubernetes.resources.limits", &mut k.resources.limits, map)?;
    o.set("kubernetes.quota", &mut k.quota, map)?;
    o.set_opt(
        "kubernetes.registry_secret_file",
        &mut k.registry_secret_file,
        path,
    )?;
    o.set(
        "kubernetes.context_mode",
        &mut k.context_mode,
        values::parse_context_mode,
    )?;
    o.set("kubernetes.cache", &mut k.cache, boolean)?;
    o.set_opt("kubernetes.cache_repo", &mut k.cache_repo, string)?;
    o.set(
        "kubernetes.insecure_registries",
        &mut k.insecure_registries,
        list,
    )?;
    o.set(
        "kubernetes.skip_tls_verify_registries",
        &mut k.skip_tls_verify_registries,
        list,
    )?;
    o.set(
        "kubernetes.ttl_seconds_after_finished",
        &mut k.ttl_seconds_after_finished,
        |t| {
            t.trim().parse().map_err(|_| ValueError::Seconds {
                text: t.to_string(),
            })
        },
    )?;
    o.set("kubernetes.expiry", &mut k.expiry, values::parse_duration)?;
    o.set_opt("kubernetes.template_dir", &mut k.template_dir, path)?;
    o.set(
        "kubernetes.unschedulable_timeout",
        &mut k.unschedulable_timeout,
        values::parse_duration,
    )?;
    Ok(())
}

fn string(text: &str) -> Result<String, ValueError> {
    Ok(text.trim().to_string())
}

fn path(text: &str) -> Result<PathBuf, ValueError> {
    Ok(PathBuf::from(text.trim()))
}

/// A whole number; 0 and below become 0 (see [`Config::normalise`]).
fn count(text: &str) -> Result<usize, ValueError> {
    let n: i64 = text.trim().parse().map_err(|_| ValueError::WholeNumber {
        text: text.to_string(),
    })?;
    Ok(usize::try_from(n.max(0)).unwrap_or(usize::MAX))
}

fn boolean(text: &str) -> Result<bool, ValueError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        _ => Err(ValueError::Boolean {
            text: text.to_string(),
        }),
    }
}

/// `a,b,c`, entries trimmed, empty ones dropped.
fn list(text: &str) -> Result<Vec<String>, ValueError> {
    Ok(text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect())
}

/// `k=v,k=v`.
fn map(text: &str) -> Result<BTreeMap<String, String>, ValueError> {
    list(text)?
        .into_iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(ValueError::KeyValue { pair }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        assert_eq!(
            env_var_name("runner.capacity"),
            "HYBRID_RUNNER_RUNNER_CAPACITY"
        );
        assert_eq!(
            env_var_name("kubernetes.resources.requests"),
            "HYBRID_RUNNER_KUBERNETES_RESOURCES_REQUESTS"
        );
    }

    #[test]
    fn value_syntaxes() {
        assert_eq!(list(" a:host, ,b ").unwrap(), ["a:host", "b"]);
        assert_eq!(
            map("cpu=1, memory=2Gi").unwrap(),
            BTreeMap::from([("cpu".into(), "1".into()), ("memory".into(), "2Gi".into())])
        );
        assert!(map("cpu").is_err());
        assert!(boolean("maybe").is_err());
        assert!(boolean("TRUE").unwrap());
    }
}
