//! Flags shared by the commands that talk to the cluster: which kubeconfig and context
//! (`--kubeconfig`, `--kube-context`), and which runner's builds (`--runner-id`,
//! `--namespace-prefix`); plus connecting with them.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;

use hr_cluster::run_ids::DEFAULT_RUNNER_ID;
use hr_image::kaniko::{KanikoBuilder, KanikoConfig};

/// Where the cluster is.
#[derive(Debug, Clone, clap::Args)]
pub struct KubeArgs {
    /// The kubeconfig file [default: $KUBECONFIG, else ~/.kube/config, else the in-cluster
    /// service account]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use [default: its current context]
    #[arg(long, value_name = "NAME")]
    pub kube_context: Option<String>,
}

/// Whose builds: the runner id in the build namespaces' labels and their name prefix.
#[derive(Debug, Clone, clap::Args)]
pub struct RunnerArgs {
    /// The runner id the build namespaces are labelled with (the same default for every
    /// command, so `status` and `cleanup` see the namespaces of `build` and `exec`)
    #[arg(long, value_name = "ID", default_value = DEFAULT_RUNNER_ID)]
    pub runner_id: String,
    /// The prefix of the build namespaces' names
    #[arg(long, value_name = "PREFIX", default_value = "hr")]
    pub namespace_prefix: String,
}

impl RunnerArgs {
    /// The default Kaniko configuration for this runner.
    pub fn kaniko_config(&self) -> KanikoConfig {
        KanikoConfig {
            runner_id: self.runner_id.clone(),
            namespace_prefix: self.namespace_prefix.clone(),
            ..KanikoConfig::default()
        }
    }
}

impl KubeArgs {
    /// Connects with these flags (no request is sent yet).
    pub async fn connect(&self, config: KanikoConfig) -> anyhow::Result<KanikoBuilder> {
        KanikoBuilder::connect(
            self.kubeconfig.as_deref(),
            self.kube_context.as_deref(),
            config,
        )
        .await
        .context("cannot connect to the Kubernetes cluster")
    }
}

/// A runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `3d4h`, `5m12s`, `40s`: the two largest units of a duration.
pub fn short_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, hours, minutes, seconds) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    if days > 0 {
        format!("{days}d{hours}h")
    } else if hours > 0 {
        format!("{hours}h{minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

/// How long ago `t` was (`-` when unknown).
pub fn age(t: Option<SystemTime>, now: SystemTime) -> String {
    match t.and_then(|t| now.duration_since(t).ok()) {
        Some(d) => short_duration(d),
        None => "-".to_string(),
    }
}

/// Seconds since the epoch, for JSON.
pub fn epoch_seconds(t: Option<SystemTime>) -> Option<u64> {
    t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(short_duration(Duration::from_secs(40)), "40s");
        assert_eq!(short_duration(Duration::from_secs(312)), "5m12s");
        assert_eq!(short_duration(Duration::from_secs(3 * 3600 + 60)), "3h1m");
        assert_eq!(
            short_duration(Duration::from_secs(2 * 86_400 + 3600)),
            "2d1h"
        );
        let now = SystemTime::now();
        assert_eq!(age(None, now), "-");
        assert_eq!(age(Some(now + Duration::from_secs(5)), now), "-");
    }
}
