//! The pod backend: the steps of a job whose `runs-on` picked a `kubernetes` /
//! `kubernetes://IMAGE` label run in one pod of the job's own namespace.
//!
//! [`JobPod::start`] creates the job namespace (the same labels, expiry annotation and
//! guard as a build namespace, so the reaper and `hybrid-runner cleanup` know it) and the
//! pod from `templates/job-pod.yaml` (built in) (it only sleeps; no service account token), and
//! waits until it runs, failing fast on a fatal waiting reason (`ImagePullBackOff`, ...).
//! Every step is then one `pods/exec` into it (`exec`; what comes back: `step_stdout`): the step's script and
//! environment go in over the exec's stdin, never in the exec URL, and its `GITHUB_*`
//! files come back after its output.
//! [`JobPod::delete`] deletes the namespace; a pod dropped undeleted has its guard do it.
//!
//! Paths: the job's workspace is `/__w/<workspace folder name>` and its temp folder `/__t`
//! in the pod (two emptyDir volumes); [`PodPaths`] maps the host paths the engine computes.

pub mod container_fields;
pub mod container_step;
pub mod containers;
mod copy;
pub mod docker_options;
mod exec;
pub mod git_ignored;
pub mod manifest;
mod probe;
mod step_stdout;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;

pub use exec::{PodProcess, PodStepEnd};
pub use probe::{CheckPod, DEFAULT_PROBE_IMAGE};
pub use step_stdout::{
    SENT_UP_TO, StepFile, StepFileContents, StepFilesBack, StepFilesFormatError,
};

use crate::image_steps::BuildSettings;
use containers::JobContainers;
use hr_cluster::{NamespaceGuard, describe, retry, status_code};
use hr_image::kaniko::{KanikoBuilder, KanikoConfig, PodProblem, pod_problem};
use manifest::{JobManifests, job_manifests};

/// Where the workspace volume is mounted in the pod.
pub const POD_WORKSPACE_ROOT: &str = "/__w";
/// Where the temp volume (scripts, `GITHUB_*` files) is mounted in the pod.
pub const POD_TEMP: &str = "/__t";
/// `RUNNER_TOOL_CACHE` in the pod (under the temp volume: the pod's own, gone with it).
pub const POD_TOOL_CACHE: &str = "/__t/_tool";
/// The one container of the job pod.
pub const STEPS_CONTAINER: &str = "steps";
/// The pod's name in its namespace.
pub const POD_NAME: &str = "job";
/// The image a plain `kubernetes` label runs its steps in.
pub const DEFAULT_JOB_IMAGE: &str = "node:20-bookworm";
/// `PATH` in the pod before `GITHUB_PATH` additions (the Debian default; the image's own
/// `ENV PATH` is not known to the runner).
pub const POD_DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The image of the port forwarders (`ports: ['HOST:PORT']`) by default: busybox, whose
/// `nc -ll -e` serves each connection with a process of its own.
pub const DEFAULT_FORWARDER_IMAGE: &str = "busybox:1.37";

/// [`PodSettings::copy_idle_timeout`] by default.
pub const DEFAULT_COPY_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// How the job pods of this runner are made (`kubernetes.*` settings).
#[derive(Debug, Clone)]
pub struct PodSettings {
    /// The image of a `kubernetes` label without one (`kubernetes.job_image`).
    pub image: String,
    /// How long the pod may take to run (image pull included).
    pub start_timeout: Duration,
    /// After this the reaper may delete a job namespace left behind (`kubernetes.expiry`).
    pub expiry: Duration,
    /// A folder whose `job-pod.yaml` / `namespace.yaml` replace the built-in templates.
    pub template_dir: Option<PathBuf>,
    /// Requests and limits of the steps container, over the template's (by resource name).
    pub requests: BTreeMap<String, String>,
    pub limits: BTreeMap<String, String>,
    /// How long copying the pod's workspace out may go without a byte (or, after the
    /// last, without the exec's exit status) before it fails: a stalled exec stream
    /// (a lost node, a hung proxy) must not hang the step.
    pub copy_idle_timeout: Duration,
    /// The image of the port forwarder sidecars (`kubernetes.forwarder_image`): it must
    /// have busybox's `nc` with `-ll` and `-e`.
    pub forwarder_image: String,
    /// `exec --use-gitignore`: the copy of the repository a job pod starts with leaves out
    /// what git ignores ([`git_ignored`]). A host job's step pod still gets every file:
    /// it works on what the job's earlier steps made.
    pub use_gitignore: bool,
}

impl Default for PodSettings {
    fn default() -> Self {
        PodSettings {
            image: DEFAULT_JOB_IMAGE.to_string(),
            start_timeout: Duration::from_secs(300),
            expiry: KanikoConfig::default().expiry,
            template_dir: None,
            requests: BTreeMap::new(),
            limits: BTreeMap::new(),
            copy_idle_timeout: DEFAULT_COPY_IDLE_TIMEOUT,
            forwarder_image: DEFAULT_FORWARDER_IMAGE.to_string(),
            use_gitignore: false,
        }
    }
}

/// What went wrong with a job pod.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error(
        "cannot reach the cluster for the job pod: {0}; check kubernetes.kubeconfig and kubernetes.context (`hybrid-runner check`)"
    )]
    Connect(String),
    #[error(
        "cannot render the job pod's manifests: {0}; fix your kubernetes.template_dir copy of job-pod.yaml, or remove it to use the built-in one"
    )]
    Render(String),
    #[error(
        "cannot create {what}: {message}; the runner needs create on namespaces and pods (`hybrid-runner check`)"
    )]
    Create { what: String, message: String },
    #[error(
        "the job pod {namespace}/{POD_NAME} did not start: {message}; check the image name and the cluster's capacity"
    )]
    Start { namespace: String, message: String },
    #[error(
        "service {service} of the job pod {namespace}/{POD_NAME} did not become healthy: its health check (options: --health-cmd) kept failing or it exited, and the kubelet restarted it; check the service's image, env and health command{}",
        last_lines(logs)
    )]
    Service {
        namespace: String,
        service: String,
        logs: Vec<String>,
    },
    /// A Docker step's container (its message says what and, where one helps, the remedy).
    #[error("the container step {name} in the job pod failed: {message}")]
    ContainerStep { name: String, message: String },
    #[error("the job was cancelled while its pod was starting")]
    Cancelled,
    #[error(
        "exec into the job pod failed ({phase}): {message}; the runner needs create on pods/exec (`hybrid-runner check`)"
    )]
    Exec {
        phase: &'static str,
        message: String,
    },
}

/// How many of a failed service's last log lines its error shows.
const SERVICE_LOG_LINES: i64 = 20;

fn last_lines(logs: &[String]) -> String {
    if logs.is_empty() {
        return ". It wrote no log".to_string();
    }
    format!(". Its last log lines:\n{}\n", logs.join("\n"))
}

/// Why a step of a pod job could not be handed to the pod or taken back from it (the
/// engine's side of it; the pod's own failures are [`PodError`]s).
#[derive(Debug, thiserror::Error)]
pub enum PodStepError {
    /// A file of the step under the job's temp folder (its script) could not be read.
    #[error("cannot read {file} to send it to the job pod: {source}")]
    ReadFile {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A `GITHUB_*` file the step wrote in the pod could not be stored on this host.
    #[error("cannot store {} from the job pod: {source}", path.display())]
    StoreFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// After the boundary line, the step's exec brought back something else than the
    /// listing of its `GITHUB_*` files.
    #[error("cannot read the GITHUB_* files that came back from the job pod: {0}")]
    StepFiles(#[from] StepFilesFormatError),
    #[error("{uses}: the job has no pod")]
    NoPod { uses: String },
    /// An action served on the runner that cannot serve a pod job.
    #[error(
        "{uses}: a job on a `kubernetes` label runs this action on the runner, which it cannot do in a pod (docs/internals/pod-steps.md)"
    )]
    RunnerOnly { uses: String },
}

/// Which job a pod belongs to (names the namespace and labels it).
#[derive(Debug, Clone)]
pub struct PodJob {
    pub runner_id: String,
    pub namespace_prefix: String,
    pub task: String,
    pub job: String,
    /// How long the job may run (`runner.timeout`), if limited: the pod's
    /// `activeDeadlineSeconds` is this plus the start timeout, so a pod left behind by a
    /// crashed runner is ended by the kubelet.
    pub time_limit: Option<Duration>,
    /// The workspace folder's name (`/__w/<name>` in the pod; [`workspace_name`]).
    pub workspace: String,
}

/// The name of the job workspace's folder in the pod: the host folder's name, else
/// `workspace`.
pub fn workspace_name(workspace: &Path) -> String {
    workspace
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .unwrap_or_else(|| "workspace".to_string())
}

impl PodJob {
    /// The pod of job `job` of task `task` (the source's id of the run), labelled and named
    /// as `builds` says; `time_limit` zero means unlimited.
    pub fn new(builds: &BuildSettings, task: &str, job: &str, time_limit: Duration) -> PodJob {
        PodJob {
            runner_id: builds.runner_id.clone(),
            namespace_prefix: builds.namespace_prefix.clone(),
            task: task.to_string(),
            job: job.to_string(),
            time_limit: Some(time_limit).filter(|t| !t.is_zero()),
            workspace: "workspace".to_string(),
        }
    }
}

/// One job's pod, running; delete it with [`JobPod::delete`].
pub struct JobPod {
    client: Client,
    namespace: String,
    guard: Mutex<Option<NamespaceGuard>>,
    /// What was copied into the pod from this host, action folders and the event file:
    /// (host path, path in the pod).
    copied: Mutex<Vec<(String, String)>>,
    /// [`PodSettings::copy_idle_timeout`].
    copy_idle: Duration,
    /// The services' container names, by service id.
    services: Vec<(String, String)>,
    /// How many container steps the pod has taken (each ephemeral container needs a
    /// name of its own, for good: they are never removed).
    container_steps: std::sync::atomic::AtomicUsize,
    /// Runner lines about how the job's containers were mapped.
    notes: Vec<String>,
}

impl std::fmt::Debug for JobPod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobPod")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl JobPod {
    /// Creates the job namespace, its Secrets and the pod (with `containers`: the job
    /// container and the services as sidecars) and waits until the pod runs and every
    /// service passed its health check. On any failure the namespace is deleted again
    /// before this returns.
    pub async fn start(
        builds: &BuildSettings,
        settings: &PodSettings,
        job: &PodJob,
        image: Option<&str>,
        containers: &JobContainers,
        cancel: &CancellationToken,
    ) -> Result<JobPod, PodError> {
        let config = KanikoConfig {
            runner_id: job.runner_id.clone(),
            namespace_prefix: job.namespace_prefix.clone(),
            ..KanikoConfig::default()
        };
        let cluster = KanikoBuilder::connect(
            builds.kubeconfig.as_deref(),
            builds.kube_context.as_deref(),
            config,
        )
        .await
        .map_err(|e| PodError::Connect(e.to_string()))?;
        let client = cluster.client().clone();
        let image = image.unwrap_or(&settings.image);
        let manifests = job_manifests(settings, job, image, containers)?;
        let name = manifests
            .namespace
            .metadata
            .name
            .clone()
            .unwrap_or_default();
        let guard = NamespaceGuard::new(client.clone(), cluster.kube_config().clone(), &name);
        let pod_job = JobPod {
            client,
            namespace: name,
            guard: Mutex::new(Some(guard)),
            copied: Mutex::new(Vec::new()),
            copy_idle: settings.copy_idle_timeout,
            services: manifests.services.clone(),
            notes: manifests.notes.clone(),
            container_steps: Default::default(),
        };
        let started = tokio::select! {
            r = pod_job.create_and_wait(&manifests, settings.start_timeout) => r,
            () = cancel.cancelled() => Err(PodError::Cancelled),
        };
        match started {
            Ok(()) => Ok(pod_job),
            Err(e) => {
                // The error is the news; a failed deletion is left to the guard's reaper.
                let _ = pod_job.delete().await;
                Err(e)
            }
        }
    }

    /// The job namespace's name.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The services' container names in the pod, by service id.
    pub fn services(&self) -> &[(String, String)] {
        &self.services
    }

    /// Runner lines on how the job's containers were mapped to the pod.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// What is already copied into the pod (action folders, the event file): (host path,
    /// path in the pod).
    pub fn copied(&self) -> Vec<(String, String)> {
        match self.copied.lock() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Copies an action's folder (from the runner's action cache) into the pod once per
    /// job, under `/__t/_actions/<n>`; returns where it is in the pod.
    pub async fn provide_action(&self, host_dir: &Path) -> Result<String, PodError> {
        let host = host_dir.display().to_string();
        if let Some((_, pod)) = self.copied().into_iter().find(|(h, _)| *h == host) {
            return Ok(pod);
        }
        let prefix = format!("{POD_TEMP}/_actions/");
        let copied = self
            .copied()
            .iter()
            .filter(|(_, pod)| pod.starts_with(&prefix))
            .count();
        let pod_dir = format!("{prefix}{copied}");
        self.copy_into(host_dir, &pod_dir).await?;
        self.record_copy(host, pod_dir.clone());
        Ok(pod_dir)
    }

    /// Notes that `host` is at `pod` in the pod now (see [`Self::copied`]).
    fn record_copy(&self, host: String, pod: String) {
        let mut copied = match self.copied.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        copied.push((host, pod));
    }

    /// Copies the run's event file (`GITHUB_EVENT_PATH`, outside the job's temp folder on
    /// this host) into the pod at `/__t/_github_workflow/event.json`, where actions/runner
    /// keeps it (a Docker step sees it at `/github/workflow/event.json`); its host path
    /// then maps there in every step of the job.
    pub async fn provide_event(&self, event: &Path, temp_host: &Path) -> Result<(), PodError> {
        let dir = temp_host.join("_github_workflow");
        let copied = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::copy(event, dir.join("event.json")).map(|_| ()));
        if let Err(e) = copied {
            return Err(PodError::Exec {
                phase: "copying the event file",
                message: format!("{}: {e}", dir.display()),
            });
        }
        let in_pod = format!("{POD_TEMP}/_github_workflow");
        self.copy_into(&dir, &in_pod).await?;
        self.record_copy(event.display().to_string(), format!("{in_pod}/event.json"));
        Ok(())
    }

    pub(crate) fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn create_and_wait(
        &self,
        manifests: &JobManifests,
        timeout: Duration,
    ) -> Result<(), PodError> {
        let post = PostParams::default();
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        // Transient errors (5xx, 429, a lost connection) are retried, as for builds.
        retry(|| namespaces.create(&post, &manifests.namespace))
            .await
            .map_err(|e| PodError::Create {
                what: format!("the job namespace {}", self.namespace),
                message: describe(&e),
            })?;
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        for secret in &manifests.secrets {
            let name = secret.metadata.name.clone().unwrap_or_default();
            match retry(|| secrets.create(&post, secret)).await {
                // An earlier try of this call whose answer was lost.
                Ok(_) => {}
                Err(e) if status_code(&e) == Some(409) => {}
                Err(e) => {
                    return Err(PodError::Create {
                        what: format!("the Secret {}/{name}", self.namespace),
                        message: describe(&e),
                    });
                }
            }
        }
        self.create_pod_and_wait(&manifests.pod, timeout).await
    }

    /// Creates `pod` in the pod's namespace (which exists) and waits until it runs and
    /// its containers with a startup probe (the services' health checks) have started,
    /// failing fast on a fatal waiting reason or a service that failed its health check
    /// (the kubelet restarted it); after `timeout` the error names what the pod was
    /// waiting for (`Unschedulable`, a container's waiting reason, a service).
    async fn create_pod_and_wait(&self, pod: &Pod, timeout: Duration) -> Result<(), PodError> {
        let post = PostParams::default();
        let pods = self.pods();
        match retry(|| pods.create(&post, pod)).await {
            Ok(_) => {}
            // Only this job creates pods in its fresh namespace: a conflict is an earlier
            // try of this call whose answer was lost.
            Err(e) if status_code(&e) == Some(409) => {}
            Err(e) => {
                return Err(PodError::Create {
                    what: format!("the job pod {}/{POD_NAME}", self.namespace),
                    message: describe(&e),
                });
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let start_error = |message: String| PodError::Start {
            namespace: self.namespace.clone(),
            message,
        };
        loop {
            let current = retry(|| pods.get(POD_NAME))
                .await
                .map_err(|e| start_error(describe(&e)))?;
            let phase = current
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            match phase.as_str() {
                "Running" if self.all_started(&current) => return Ok(()),
                "Succeeded" | "Failed" => {
                    return Err(start_error(format!(
                        "it ended ({phase}) before its first step"
                    )));
                }
                _ => {}
            }
            if let Some((id, container)) = self.unhealthy_service(&current) {
                let logs = self.last_log_lines(&container).await;
                return Err(PodError::Service {
                    namespace: self.namespace.clone(),
                    service: id,
                    logs,
                });
            }
            if let Some(PodProblem::Fatal {
                container,
                reason,
                message,
            }) = pod_problem(&current)
            {
                let who = match self.services.iter().find(|(_, c)| *c == container) {
                    Some((id, _)) => format!("service {id} (container {container})"),
                    None => format!("container {container}"),
                };
                return Err(start_error(format!("{who}: {reason}: {message}")));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(start_error(format!(
                    "it was not running after {} s (phase {phase}{})",
                    timeout.as_secs(),
                    self.waiting_for(&current)
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Whether every container of `pod` with a startup probe has passed it (`started`).
    fn all_started(&self, pod: &Pod) -> bool {
        let probed: Vec<&str> = pod
            .spec
            .iter()
            .flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers))
            .filter(|c| c.startup_probe.is_some())
            .map(|c| c.name.as_str())
            .collect();
        let statuses = pod.status.as_ref().map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
                .collect::<Vec<_>>()
        });
        probed.iter().all(|name| {
            statuses
                .iter()
                .flatten()
                .any(|c| c.name == *name && c.started == Some(true))
        })
    }

    /// A service the kubelet restarted (its health check failed as often as Docker's
    /// `--health-retries` allow, or it exited): (service id, container name).
    fn unhealthy_service(&self, pod: &Pod) -> Option<(String, String)> {
        let statuses = pod.status.as_ref()?.init_container_statuses.as_ref()?;
        self.services.iter().find_map(|(id, container)| {
            statuses
                .iter()
                .any(|s| s.name == *container && s.restart_count > 0)
                .then(|| (id.clone(), container.clone()))
        })
    }

    /// The last lines a container wrote before its restart (else its current ones), for
    /// the error that names it; empty when the API server has none.
    async fn last_log_lines(&self, container: &str) -> Vec<String> {
        let pods = self.pods();
        for previous in [true, false] {
            let params = kube::api::LogParams {
                container: Some(container.to_string()),
                previous,
                tail_lines: Some(SERVICE_LOG_LINES),
                ..Default::default()
            };
            if let Ok(text) = pods.logs(POD_NAME, &params).await
                && !text.trim().is_empty()
            {
                return text.lines().map(str::to_string).collect();
            }
        }
        Vec::new()
    }

    /// What a pod that is not running yet waits for, as `: <reason>: <message>` (empty
    /// when nothing says): `Unschedulable` with the scheduler's message, a service whose
    /// health check has not passed, else the first container's waiting reason
    /// (`ContainerCreating`, `ErrImagePull`, ...).
    fn waiting_for(&self, pod: &Pod) -> String {
        if let Some(PodProblem::Unschedulable { message }) = pod_problem(pod) {
            return format!(": Unschedulable: {message}");
        }
        let status = pod.status.as_ref();
        let unstarted: Vec<&str> = self
            .services
            .iter()
            .filter(|(_, container)| {
                !status
                    .and_then(|s| s.init_container_statuses.as_ref())
                    .into_iter()
                    .flatten()
                    .any(|c| c.name == *container && c.started == Some(true))
            })
            .map(|(id, _)| id.as_str())
            .collect();
        if !unstarted.is_empty() {
            return format!(
                ": the services {} have not passed their health check",
                unstarted.join(", ")
            );
        }
        let waiting = status
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
            .find_map(|c| c.state.as_ref()?.waiting.clone());
        match waiting {
            Some(w) => {
                let reason = w.reason.unwrap_or_default();
                match w.message.filter(|m| !m.is_empty()) {
                    Some(message) => format!(": {reason}: {message}"),
                    None if reason.is_empty() => String::new(),
                    None => format!(": {reason}"),
                }
            }
            None => String::new(),
        }
    }

    /// Deletes the job namespace (and with it the pod and whatever the steps left
    /// running). Idempotent: a second call does nothing. Returns a warning when the
    /// deletion could not be started (the reaper deletes the namespace once it expires).
    pub async fn delete(&self) -> Result<(), hr_cluster::ClusterError> {
        let guard = match self.guard.lock() {
            Ok(mut g) => g.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        match guard {
            Some(guard) => guard.delete().await.map(|_| ()),
            None => Ok(()),
        }
    }
}

/// Host paths the engine computes, and where they are in the pod.
#[derive(Debug, Clone)]
pub struct PodPaths {
    /// (host, pod) pairs, longest host path first.
    pairs: Vec<(String, String)>,
    pub temp_host: PathBuf,
}

impl PodPaths {
    /// The job's paths in `pod`: its workspace, temp folder, the runner's tool cache
    /// (the pod has one of its own, [`POD_TOOL_CACHE`]) and what was copied in.
    pub fn of(pod: &JobPod, workspace: &Path, temp: &Path, tool_cache: &Path) -> PodPaths {
        let mut paths = PodPaths::new(workspace, temp);
        paths
            .pairs
            .push((tool_cache.display().to_string(), POD_TOOL_CACHE.to_string()));
        paths.pairs.extend(pod.copied());
        paths
            .pairs
            .sort_by_key(|(host, _)| std::cmp::Reverse(host.len()));
        paths
    }

    /// The job's workspace and temp folder on the host.
    pub fn new(workspace: &Path, temp: &Path) -> PodPaths {
        let name = workspace_name(workspace);
        let mut pairs = vec![
            (
                workspace.display().to_string(),
                format!("{POD_WORKSPACE_ROOT}/{name}"),
            ),
            (temp.display().to_string(), POD_TEMP.to_string()),
        ];
        pairs.sort_by_key(|(host, _)| std::cmp::Reverse(host.len()));
        PodPaths {
            pairs,
            temp_host: temp.to_path_buf(),
        }
    }

    /// `text` with every host path of the job replaced by its place in the pod.
    pub fn to_pod(&self, text: &str) -> String {
        self.pairs
            .iter()
            .fold(text.to_string(), |acc, (host, pod)| {
                acc.replace(host.as_str(), pod)
            })
    }

    /// The workspace in the pod.
    pub fn workspace(&self) -> String {
        self.pairs
            .iter()
            .find(|(_, pod)| pod.starts_with(POD_WORKSPACE_ROOT))
            .map(|(_, pod)| pod.clone())
            .unwrap_or_else(|| POD_WORKSPACE_ROOT.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_map_into_the_pod() {
        let paths = PodPaths::new(Path::new("/srv/w/7/repo"), Path::new("/srv/w/7/tmp/job"));
        assert_eq!(paths.workspace(), "/__w/repo");
        assert_eq!(
            paths.to_pod("/srv/w/7/repo/sub:/srv/w/7/tmp/job/_files/set_env"),
            "/__w/repo/sub:/__t/_files/set_env"
        );
        assert_eq!(paths.to_pod("/elsewhere"), "/elsewhere");
    }
}
