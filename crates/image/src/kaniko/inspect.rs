//! Looking at this runner's builds on the cluster: its build namespaces with their Kaniko
//! Jobs (`hybrid-runner status`), and the logs of their Kaniko pods (`hybrid-runner logs`).

use std::time::SystemTime;

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, LogParams};
use kube::{Client, ResourceExt};

use super::conditions::{JobVerdict, KANIKO_CONTAINER, job_verdict};
use super::config::KanikoConfig;
use hr_cluster::namespaces::{expires_at, runner_namespaces};
use hr_cluster::{ClusterError, retry};

/// One build namespace of this runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildNamespace {
    pub name: String,
    /// `Active` or `Terminating`.
    pub phase: String,
    pub created: Option<SystemTime>,
    pub expires: Option<SystemTime>,
    /// The task id from the namespace's annotation.
    pub task: String,
    pub jobs: Vec<BuildNamespaceJob>,
}

/// One Kaniko Job of a build namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildNamespaceJob {
    pub name: String,
    pub variant: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// The reason of a failure.
    pub reason: String,
    pub created: Option<SystemTime>,
}

/// This runner's build namespaces with their Jobs, sorted by name.
pub async fn build_namespaces(
    client: &Client,
    config: &KanikoConfig,
) -> Result<Vec<BuildNamespace>, ClusterError> {
    let mut out = Vec::new();
    for ns in runner_namespaces(client, &config.runner_id).await? {
        let name = ns.name_any();
        let jobs_api: Api<Job> = Api::namespaced(client.clone(), &name);
        let all = ListParams::default();
        let jobs = retry(|| jobs_api.list(&all))
            .await
            .map_err(|source| ClusterError::Api {
                action: format!("cannot list the Jobs of namespace {name}"),
                cause: source,
            })?;
        let mut jobs: Vec<BuildNamespaceJob> = jobs.items.iter().map(job_summary).collect();
        jobs.sort_by(|a, b| a.name.cmp(&b.name));
        let phase = ns
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| {
                if ns.metadata.deletion_timestamp.is_some() {
                    "Terminating".to_string()
                } else {
                    "Active".to_string()
                }
            });
        out.push(BuildNamespace {
            phase,
            created: system_time(ns.metadata.creation_timestamp.as_ref()),
            expires: expires_at(&ns),
            task: ns
                .annotations()
                .get("hybrid-runner/task-id")
                .cloned()
                .unwrap_or_default(),
            name,
            jobs,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn job_summary(job: &Job) -> BuildNamespaceJob {
    let (status, reason) = match job_verdict(job) {
        JobVerdict::Running => ("running", String::new()),
        JobVerdict::Succeeded => ("succeeded", String::new()),
        JobVerdict::Failed { reason, .. } => ("failed", reason),
    };
    BuildNamespaceJob {
        name: job.name_any(),
        variant: job
            .labels()
            .get("hybrid-runner/variant")
            .cloned()
            .unwrap_or_default(),
        status: status.to_string(),
        reason,
        created: system_time(job.metadata.creation_timestamp.as_ref()),
    }
}

fn system_time(t: Option<&Time>) -> Option<SystemTime> {
    t.map(|t| SystemTime::from(t.0))
}

/// Writes the Kaniko logs of `namespace` (every Kaniko pod, or only those of `job`) to
/// `out`, each line prefixed with `[job] ` when more than one pod is shown. With `follow`,
/// the streams stay open until the containers end.
pub async fn stream_logs(
    client: &Client,
    namespace: &str,
    job: Option<&str>,
    follow: bool,
    out: &(dyn Fn(&str, &str) + Sync),
) -> Result<usize, ClusterError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let selector = match job {
        Some(job) => format!("job-name={job}"),
        None => "app.kubernetes.io/component=kaniko".to_string(),
    };
    let params = ListParams::default().labels(&selector);
    let list = retry(|| pods.list(&params))
        .await
        .map_err(|source| ClusterError::Api {
            action: format!("cannot list the Kaniko pods of namespace {namespace}"),
            cause: source,
        })?;
    let mut targets: Vec<(String, String)> = list
        .items
        .iter()
        .map(|p| {
            let job = p
                .labels()
                .get("job-name")
                .cloned()
                .unwrap_or_else(|| p.name_any());
            (p.name_any(), job)
        })
        .collect();
    targets.sort();
    let count = targets.len();
    let streams = targets.into_iter().map(|(pod, job)| {
        let pods = pods.clone();
        async move {
            let params = LogParams {
                follow,
                container: Some(KANIKO_CONTAINER.to_string()),
                ..Default::default()
            };
            let reader =
                pods.log_stream(&pod, &params)
                    .await
                    .map_err(|source| ClusterError::Api {
                        action: format!("cannot read the log of pod {pod}"),
                        cause: source,
                    })?;
            let mut lines = std::pin::pin!(reader.lines());
            while let Some(Ok(line)) = lines.next().await {
                out(&job, &line);
            }
            Ok::<(), ClusterError>(())
        }
    });
    // One stream at a time without --follow (the logs read whole, in order); all together
    // with it.
    if follow {
        futures::future::try_join_all(streams).await?;
    } else {
        for stream in streams {
            stream.await?;
        }
    }
    Ok(count)
}
