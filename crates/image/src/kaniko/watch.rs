//! Following one variant's Kaniko Job to its end: a watch on the Job (its conditions give
//! the verdict) and one on its pod (label `job-name=`) to start the log stream, fail fast
//! on reasons that never recover, time out an unschedulable pod, and read the digest from
//! the container's termination message.

use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::api::{Api, ListParams};
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::runtime::{WatchStreamExt, watcher as watch_objects};
use kube::{Client, ResourceExt};
use tokio::time::Instant;

use super::Variant;
use super::conditions::{
    JobVerdict, KanikoState, PodProblem, job_verdict, kaniko_state, parse_digest, pod_end_reason,
    pod_problem, refused_pod,
};
use super::pod_log::PodLogStream;
use crate::{BuildError, BuildLog};
use hr_cluster::{describe, retry};

/// How long the log stream may take to deliver its last lines once the Job finished.
const LOG_DRAIN: Duration = Duration::from_secs(10);
/// Watch errors in a row after which the build is given up.
const MAX_WATCH_ERRORS: u32 = 8;

/// One variant to follow.
#[derive(Clone)]
pub(super) struct VariantWatch {
    pub client: Client,
    pub namespace: String,
    pub job_name: String,
    pub variant: Variant,
    /// Whether the build pushes (a success without a digest is then an error).
    pub push: bool,
    pub unschedulable_timeout: Duration,
}

impl VariantWatch {
    /// Follows the Job to its end; the digest on success (empty when not pushed and none
    /// was reported).
    pub(super) async fn run(self, log: BuildLog) -> Result<String, BuildError> {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.namespace);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let job_config = watcher::Config::default()
            .labels(&format!("hybrid-runner/variant={}", self.variant.as_str()));
        let pod_config = watcher::Config::default().labels(&self.pod_selector());
        let mut job_events = events(watch_objects(jobs, job_config));
        let mut pod_events = events(watch_objects(pods.clone(), pod_config));
        // The Job's Events: a pod the API server refuses (quota, LimitRange, Pod Security)
        // shows only there, as the Job controller's `FailedCreate`. Without the permission
        // to read Events the build still ends, at its deadline.
        let kube_events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let event_config = watcher::Config::default().fields(&format!(
            "involvedObject.kind=Job,involvedObject.name={}",
            self.job_name
        ));
        let mut job_kube_events = events(watch_objects(kube_events, event_config));
        let mut events_open = true;
        let mut pod_end: Option<(String, String)> = None;

        let mut unschedulable_since: Option<(Instant, String)> = None;
        let mut log_stream: Option<(String, PodLogStream)> = None;
        let mut last_state = KanikoState::NotStarted;
        let mut errors = 0u32;
        let verdict = loop {
            let unschedulable_deadline = unschedulable_since
                .as_ref()
                .map(|(since, _)| *since + self.unschedulable_timeout);
            tokio::select! {
                event = job_events.next() => match event {
                    Some(Ok(Change::Deleted(job))) if job.name_any() == self.job_name => {
                        return Err(self.failed(format!(
                            "Job {} was deleted before it finished (was its namespace {} deleted, e.g. by `hybrid-runner cleanup --all`?)",
                            self.job_name, self.namespace
                        )));
                    }
                    Some(Ok(Change::Deleted(_))) => {}
                    Some(Ok(Change::Applied(job))) => {
                        errors = 0;
                        if job.name_any() != self.job_name {
                            continue;
                        }
                        match job_verdict(&job) {
                            JobVerdict::Running => {}
                            done => break done,
                        }
                    }
                    Some(Err(e)) => self.watch_error(&mut errors, "Job", e)?,
                    None => return Err(self.failed("the watch on the Job ended unexpectedly".to_string())),
                },
                event = job_kube_events.next(), if events_open => match event {
                    Some(Ok(Change::Applied(event))) => {
                        if event.involved_object.name.as_deref() != Some(self.job_name.as_str()) {
                            continue;
                        }
                        if let Some(refusal) = refused_pod(&event) {
                            return Err(self.failed(format!(
                                "the API server refused the pod of Job {}: {refusal}; {}",
                                self.job_name,
                                refusal_remedy(&refusal)
                            )));
                        }
                    }
                    Some(Ok(Change::Deleted(_))) => {}
                    Some(Err(e)) => {
                        tracing::debug!(namespace = %self.namespace, error = %e, "watch error on the Job's events");
                    }
                    None => events_open = false,
                },
                event = pod_events.next() => match event {
                    // A deleted pod's last state may still say why it ended (eviction).
                    Some(Ok(Change::Deleted(pod))) => {
                        if self.owns(&pod) && let Some(reason) = pod_end_reason(&pod) {
                            pod_end = Some((pod.name_any(), reason));
                        }
                    }
                    Some(Ok(Change::Applied(pod))) => {
                        errors = 0;
                        if !self.owns(&pod) {
                            continue;
                        }
                        if let Some(reason) = pod_end_reason(&pod) {
                            pod_end = Some((pod.name_any(), reason));
                        }
                        match pod_problem(&pod) {
                            Some(PodProblem::Fatal { container, reason, message }) => {
                                return Err(self.failed(format!(
                                    "pod {} cannot start its {container} container: {reason}{}; {}",
                                    pod.name_any(),
                                    colon(&message),
                                    remedy(&reason)
                                )));
                            }
                            Some(PodProblem::Unschedulable { message }) => {
                                if unschedulable_since.is_none() {
                                    unschedulable_since = Some((Instant::now(), message));
                                }
                            }
                            None => unschedulable_since = None,
                        }
                        let state = kaniko_state(&pod);
                        if state.started() && log_stream.is_none() {
                            let stream = PodLogStream::start(pods.clone(), pod.name_any(), self.variant, log.clone());
                            log_stream = Some((pod.name_any(), stream));
                        }
                        if state.started() {
                            last_state = state;
                        }
                    }
                    Some(Err(e)) => self.watch_error(&mut errors, "pod", e)?,
                    None => return Err(self.failed("the watch on the pod ended unexpectedly".to_string())),
                },
                _ = sleep_until(unschedulable_deadline) => {
                    let message = unschedulable_since.map(|(_, m)| m).unwrap_or_default();
                    return Err(self.failed(format!(
                        "the Kaniko pod could not be scheduled for {}s: {message}; free capacity or lower the Kaniko resource requests",
                        self.unschedulable_timeout.as_secs()
                    )));
                }
            }
        };

        // The pod watch may lag behind the Job: read the pod once more for its final state,
        // and its whole log if the stream never started.
        if (!matches!(last_state, KanikoState::Terminated { .. }) || log_stream.is_none())
            && let Some((pod, state)) = self.read_pod_state(&pods).await
        {
            if log_stream.is_none() {
                let stream =
                    PodLogStream::start(pods.clone(), pod.clone(), self.variant, log.clone());
                log_stream = Some((pod, stream));
            }
            if state.started() {
                last_state = state;
            }
        }
        let last_line = match log_stream {
            Some((_, mut stream)) => {
                stream.finish(LOG_DRAIN).await;
                stream.last_line()
            }
            None => None,
        };
        if pod_end.is_none() && matches!(verdict, JobVerdict::Failed { .. }) {
            pod_end = self.read_pod_end(&pods).await;
        }
        let result = self.conclude(verdict, last_state, last_line, pod_end);
        match result {
            Err(BuildError::Failed { variant, message }) if self.namespace_terminating().await => {
                Err(BuildError::Failed {
                    variant,
                    message: format!(
                        "{message}; its namespace {} is being deleted (by `hybrid-runner cleanup --all`?)",
                        self.namespace
                    ),
                })
            }
            other => other,
        }
    }

    /// Whether the build namespace is being deleted.
    async fn namespace_terminating(&self) -> bool {
        let api: Api<Namespace> = Api::all(self.client.clone());
        match api.get_opt(&self.namespace).await {
            Ok(Some(ns)) => {
                ns.metadata.deletion_timestamp.is_some()
                    || ns.status.and_then(|s| s.phase).as_deref() == Some("Terminating")
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    fn pod_selector(&self) -> String {
        format!("job-name={}", self.job_name)
    }

    /// Whether `pod` belongs to this variant's Job (checked on the object, in case the
    /// server ignored the label selector).
    fn owns(&self, pod: &Pod) -> bool {
        pod.labels().get("job-name").map(String::as_str) == Some(self.job_name.as_str())
            || pod
                .owner_references()
                .iter()
                .any(|o| o.kind == "Job" && o.name == self.job_name)
    }

    /// The name and Kaniko state of this Job's pod (a terminated one first).
    async fn read_pod_state(&self, pods: &Api<Pod>) -> Option<(String, KanikoState)> {
        let params = ListParams::default().labels(&self.pod_selector());
        let list = retry(|| pods.list(&params)).await.ok()?;
        let mut found: Vec<(String, KanikoState)> = list
            .items
            .iter()
            .filter(|p| self.owns(p))
            .map(|p| (p.name_any(), kaniko_state(p)))
            .collect();
        found.sort_by_key(|(_, s)| !matches!(s, KanikoState::Terminated { .. }));
        found.into_iter().next()
    }

    /// Why this Job's pod was ended by the cluster (eviction, deadline, disruption), if it
    /// was.
    async fn read_pod_end(&self, pods: &Api<Pod>) -> Option<(String, String)> {
        let params = ListParams::default().labels(&self.pod_selector());
        let list = retry(|| pods.list(&params)).await.ok()?;
        list.items
            .iter()
            .filter(|p| self.owns(p))
            .find_map(|p| pod_end_reason(p).map(|r| (p.name_any(), r)))
    }

    fn watch_error(
        &self,
        errors: &mut u32,
        what: &str,
        e: watcher::Error,
    ) -> Result<(), BuildError> {
        *errors += 1;
        tracing::debug!(namespace = %self.namespace, error = %e, "watch error on the {what}");
        if *errors >= MAX_WATCH_ERRORS {
            let detail = match &e {
                watcher::Error::InitialListFailed(k)
                | watcher::Error::WatchStartFailed(k)
                | watcher::Error::WatchFailed(k) => describe(k),
                other => other.to_string(),
            };
            return Err(BuildError::Unavailable {
                builder: "kaniko",
                message: format!(
                    "cannot watch the {what} of {} in namespace {}: {detail}; check the runner's RBAC (`hybrid-runner check`)",
                    self.job_name, self.namespace
                ),
            });
        }
        Ok(())
    }

    fn failed(&self, message: String) -> BuildError {
        BuildError::Failed {
            variant: self.variant,
            message,
        }
    }

    /// The result of a finished Job.
    fn conclude(
        &self,
        verdict: JobVerdict,
        state: KanikoState,
        last_line: Option<String>,
        pod_end: Option<(String, String)>,
    ) -> Result<String, BuildError> {
        let (exit, message) = match &state {
            KanikoState::Terminated {
                exit_code,
                reason,
                message,
            } => (Some((*exit_code, reason.clone())), message.clone()),
            _ => (None, String::new()),
        };
        match verdict {
            JobVerdict::Succeeded => match parse_digest(&message) {
                Some(digest) => Ok(digest),
                None if !self.push => Ok(String::new()),
                None => Err(self.failed(format!(
                    "Job {} succeeded but its kaniko container reported no digest (termination message {:?}); check that the executor honours --digest-file=/dev/termination-log",
                    self.job_name,
                    message.trim()
                ))),
            },
            JobVerdict::Failed { reason, message: why } => {
                let mut text = format!("Job {} failed", self.job_name);
                if !reason.is_empty() {
                    text.push_str(&format!(" ({reason}{})", colon(&why)));
                }
                if let Some((code, reason)) = exit {
                    text.push_str(&format!("; the kaniko container exited with code {code}"));
                    if !reason.is_empty() {
                        text.push_str(&format!(" ({reason})"));
                    }
                }
                if let Some((pod, reason)) = pod_end {
                    text.push_str(&format!("; its pod {pod} was ended by the cluster ({reason})"));
                }
                if let Some(line) = last_line {
                    text.push_str(&format!("; last log line: {}", line.trim()));
                }
                if reason == "DeadlineExceeded" {
                    text.push_str("; the build ran past its timeout (activeDeadlineSeconds)");
                }
                Err(self.failed(text))
            }
            JobVerdict::Running => Err(self.failed(format!(
                "Job {} stopped being watched before it finished",
                self.job_name
            ))),
        }
    }
}

/// What a watch saw happen to an object.
enum Change<K> {
    /// Listed, added or modified.
    Applied(K),
    Deleted(K),
}

type Changes<K> = std::pin::Pin<Box<dyn Stream<Item = Result<Change<K>, watcher::Error>> + Send>>;

/// The changes of a watch stream, errors passed through; the watcher backs off between
/// failed attempts.
fn events<K: Clone + Send + 'static>(
    stream: impl Stream<Item = Result<WatchEvent<K>, watcher::Error>> + Send + 'static,
) -> Changes<K> {
    stream
        .default_backoff()
        .filter_map(|event| {
            std::future::ready(match event {
                Ok(WatchEvent::Apply(k) | WatchEvent::InitApply(k)) => Some(Ok(Change::Applied(k))),
                Ok(WatchEvent::Delete(k)) => Some(Ok(Change::Deleted(k))),
                Ok(WatchEvent::Init | WatchEvent::InitDone) => None,
                Err(e) => Some(Err(e)),
            })
        })
        .boxed()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn colon(message: &str) -> String {
    if message.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", message.trim())
    }
}

/// What to do about a pod the API server refuses.
fn refusal_remedy(refusal: &str) -> &'static str {
    if refusal.contains("PodSecurity") {
        "the build namespace's Pod Security level does not admit the Kaniko pod; label it pod-security.kubernetes.io/enforce=privileged (or baseline) in the namespace template"
    } else if refusal.contains("quota") {
        "raise the build namespace's ResourceQuota (kaniko quota) or lower the Kaniko resources"
    } else {
        "set the Kaniko resources (requests and limits) within the build namespace's LimitRange"
    }
}

/// What to do about a waiting reason that never recovers.
fn remedy(reason: &str) -> &'static str {
    match reason {
        "ImagePullBackOff" | "ErrImagePull" | "ErrImageNeverPull" => {
            "check executor_image (and its registry credentials) and that the nodes can reach its registry"
        }
        "InvalidImageName" => "fix executor_image; it is not a valid image reference",
        _ => {
            "a Secret or ConfigMap the pod mounts is missing or invalid; check the build namespace's objects"
        }
    }
}
