//! The pod backend: the steps of a job whose `runs-on` picked a `kubernetes` /
//! `kubernetes://IMAGE` label run in one pod of the job's own namespace.
//!
//! [`JobPod::start`] creates the job namespace (the same labels, expiry annotation and
//! guard as a build namespace, so the reaper and `hybrid-runner cleanup` know it) and the
//! pod from `templates/job-pod.yaml` (built in) (it only sleeps; no service account token), and
//! waits until it runs, failing fast on a fatal waiting reason (`ImagePullBackOff`, ...).
//! Every step is then a `pods/exec` into it ([`exec`]): the step's script, environment and
//! empty `GITHUB_*` files go in over the exec's stdin as a tar, never in the exec URL.
//! [`JobPod::delete`] deletes the namespace; a pod dropped undeleted has its guard do it.
//!
//! Paths: the job's workspace is `/__w/<workspace folder name>` and its temp folder `/__t`
//! in the pod (two emptyDir volumes); [`PodPaths`] maps the host paths the engine computes.

mod copy;
mod exec;
mod probe;
mod tar;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;

pub use exec::{PodProcess, StepFileContents};
pub use probe::{CheckPod, DEFAULT_PROBE_IMAGE};

use crate::image_steps::BuildSettings;
use hr_cluster::templates::{substitute, template_text};
use hr_cluster::{NamespaceGuard, NamespaceOwner, describe, retry, status_code, task_namespace};
use hr_image::kaniko::{KanikoBuilder, KanikoConfig, PodProblem, pod_problem};

/// Where the workspace volume is mounted in the pod.
pub const POD_WORKSPACE_ROOT: &str = "/__w";
/// Where the temp volume (scripts, `GITHUB_*` files) is mounted in the pod.
pub const POD_TEMP: &str = "/__t";
/// The one container of the job pod.
pub const STEPS_CONTAINER: &str = "steps";
/// The pod's name in its namespace.
pub const POD_NAME: &str = "job";
/// The image a plain `kubernetes` label runs its steps in.
pub const DEFAULT_JOB_IMAGE: &str = "node:20-bookworm";
/// `PATH` in the pod before `GITHUB_PATH` additions (the Debian default; the image's own
/// `ENV PATH` is not known to the runner).
pub const POD_DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// [`PodSettings::copy_idle_timeout`] by default.
pub const DEFAULT_COPY_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

const TEMPLATE_NAME: &str = "job-pod.yaml";
const BUILTIN_TEMPLATE: &str = include_str!("../../templates/job-pod.yaml");

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
        }
    }
}

/// One job's pod, running; delete it with [`JobPod::delete`].
pub struct JobPod {
    client: Client,
    namespace: String,
    guard: Mutex<Option<NamespaceGuard>>,
    /// Action folders copied into the pod: (host folder, folder in the pod).
    actions: Mutex<Vec<(String, String)>>,
    /// [`PodSettings::copy_idle_timeout`].
    copy_idle: Duration,
}

impl std::fmt::Debug for JobPod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobPod")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl JobPod {
    /// Creates the job namespace and pod and waits until the pod runs. On any failure
    /// the namespace is deleted again before this returns.
    pub async fn start(
        builds: &BuildSettings,
        settings: &PodSettings,
        job: &PodJob,
        image: Option<&str>,
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
        let (namespace, pod) = manifests(settings, job, image)?;
        let name = namespace.metadata.name.clone().unwrap_or_default();
        let guard = NamespaceGuard::new(client.clone(), cluster.kube_config().clone(), &name);
        let pod_job = JobPod {
            client,
            namespace: name,
            guard: Mutex::new(Some(guard)),
            actions: Mutex::new(Vec::new()),
            copy_idle: settings.copy_idle_timeout,
        };
        let started = tokio::select! {
            r = pod_job.create_and_wait(&namespace, &pod, settings.start_timeout) => r,
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

    /// The action folders already in the pod: (host folder, folder in the pod).
    pub fn actions(&self) -> Vec<(String, String)> {
        match self.actions.lock() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Copies an action's folder (from the runner's action cache) into the pod once per
    /// job, under `/__t/_actions/<n>`; returns where it is in the pod.
    pub async fn provide_action(&self, host_dir: &Path) -> Result<String, PodError> {
        let host = host_dir.display().to_string();
        if let Some((_, pod)) = self.actions().into_iter().find(|(h, _)| *h == host) {
            return Ok(pod);
        }
        let pod_dir = format!("{POD_TEMP}/_actions/{}", self.actions().len());
        self.copy_into(host_dir, &pod_dir).await?;
        let mut actions = match self.actions.lock() {
            Ok(a) => a,
            Err(poisoned) => poisoned.into_inner(),
        };
        actions.push((host, pod_dir.clone()));
        Ok(pod_dir)
    }

    pub(crate) fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn create_and_wait(
        &self,
        namespace: &Namespace,
        pod: &Pod,
        timeout: Duration,
    ) -> Result<(), PodError> {
        let post = PostParams::default();
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        // Transient errors (5xx, 429, a lost connection) are retried, as for builds.
        retry(|| namespaces.create(&post, namespace))
            .await
            .map_err(|e| PodError::Create {
                what: format!("the job namespace {}", self.namespace),
                message: describe(&e),
            })?;
        self.create_pod_and_wait(pod, timeout).await
    }

    /// Creates `pod` in the pod's namespace (which exists) and waits until it runs,
    /// failing fast on a fatal waiting reason; after `timeout` the error names what the
    /// pod was waiting for (`Unschedulable`, a container's waiting reason).
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
                "Running" => return Ok(()),
                "Succeeded" | "Failed" => {
                    return Err(start_error(format!(
                        "it ended ({phase}) before its first step"
                    )));
                }
                _ => {}
            }
            if let Some(PodProblem::Fatal {
                container,
                reason,
                message,
            }) = pod_problem(&current)
            {
                return Err(start_error(format!(
                    "container {container}: {reason}: {message}"
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(start_error(format!(
                    "it was not running after {} s (phase {phase}{})",
                    timeout.as_secs(),
                    waiting_for(&current)
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
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

/// What a pod that is not running yet waits for, as `: <reason>: <message>` (empty when
/// nothing says): `Unschedulable` with the scheduler's message, else the first container's
/// waiting reason (`ContainerCreating`, `ErrImagePull`, ...).
fn waiting_for(pod: &Pod) -> String {
    if let Some(PodProblem::Unschedulable { message }) = pod_problem(pod) {
        return format!(": Unschedulable: {message}");
    }
    let waiting = pod
        .status
        .as_ref()
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

/// The namespace and pod of a job, rendered from the templates and fixed up in typed form.
fn manifests(
    settings: &PodSettings,
    job: &PodJob,
    image: &str,
) -> Result<(Namespace, Pod), PodError> {
    let dir = settings.template_dir.as_deref();
    let (name, namespace) = task_namespace(
        dir,
        NamespaceOwner {
            prefix: &job.namespace_prefix,
            runner_id: &job.runner_id,
            task: &job.task,
            job: &job.job,
        },
        SystemTime::now() + settings.expiry,
    )
    .map_err(|e| PodError::Render(e.to_string()))?;
    let pod = pod_manifest(settings, &name, image, pod_deadline(settings, job))?;
    Ok((namespace, pod))
}

/// The job pod in namespace `name`, rendered from the template (of
/// `settings.template_dir`, else the built-in one) and fixed up in typed form: its name,
/// namespace, image, no service account token, `activeDeadlineSeconds` of `deadline`, and
/// the requests and limits of `settings`.
fn pod_manifest(
    settings: &PodSettings,
    name: &str,
    image: &str,
    deadline: Duration,
) -> Result<Pod, PodError> {
    let dir = settings.template_dir.as_deref();
    let text = pod_template(dir)?;
    let text = substitute(
        TEMPLATE_NAME,
        &text,
        &[("namespace", name), ("image", image)],
    )
    .map_err(|e| PodError::Render(e.to_string()))?;
    let mut pod: Pod = serde_saphyr::from_str(&text)
        .map_err(|e| PodError::Render(format!("{TEMPLATE_NAME}: {e}")))?;
    pod.metadata.name = Some(POD_NAME.to_string());
    pod.metadata.namespace = Some(name.to_string());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.automount_service_account_token = Some(false);
    spec.active_deadline_seconds = Some(deadline.as_secs().max(1) as i64);
    let Some(container) = spec
        .containers
        .iter_mut()
        .find(|c| c.name == STEPS_CONTAINER)
    else {
        return Err(PodError::Render(format!(
            "{TEMPLATE_NAME} has no container named {STEPS_CONTAINER}"
        )));
    };
    container.image = Some(image.to_string());
    if !settings.requests.is_empty() || !settings.limits.is_empty() {
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
        let resources = container.resources.get_or_insert_with(Default::default);
        for (wanted, map) in [
            (&settings.requests, &mut resources.requests),
            (&settings.limits, &mut resources.limits),
        ] {
            let map = map.get_or_insert_with(BTreeMap::new);
            for (name, quantity) in wanted {
                map.insert(name.clone(), Quantity(quantity.clone()));
            }
        }
    }
    let mounts = container.volume_mounts.get_or_insert_with(Vec::new);
    for (volume, path) in [("workspace", POD_WORKSPACE_ROOT), ("temp", POD_TEMP)] {
        if !mounts.iter().any(|m| m.mount_path == path) {
            return Err(PodError::Render(format!(
                "{TEMPLATE_NAME}: the {STEPS_CONTAINER} container must mount a volume (such as {volume}) at {path}"
            )));
        }
    }
    Ok(pod)
}

/// The job pod's `activeDeadlineSeconds`: the job's time limit plus the time it may take to
/// start, never past the namespace's expiry (the reaper deletes it then anyway); the
/// expiry when the job has no limit.
fn pod_deadline(settings: &PodSettings, job: &PodJob) -> Duration {
    match job.time_limit {
        Some(limit) => (limit + settings.start_timeout).min(settings.expiry),
        None => settings.expiry,
    }
}

fn pod_template(dir: Option<&Path>) -> Result<String, PodError> {
    template_text(dir, TEMPLATE_NAME, BUILTIN_TEMPLATE)
        .map_err(|(path, e)| PodError::Render(format!("{}: {e}", path.display())))
}

/// Host paths the engine computes, and where they are in the pod.
#[derive(Debug, Clone)]
pub struct PodPaths {
    /// (host, pod) pairs, longest host path first.
    pairs: Vec<(String, String)>,
    pub temp_host: PathBuf,
}

impl PodPaths {
    /// The job's paths in `pod`: its workspace, temp folder and the action folders
    /// copied in.
    pub fn of(pod: &JobPod, workspace: &Path, temp: &Path) -> PodPaths {
        let mut paths = PodPaths::new(workspace, temp);
        paths.pairs.extend(pod.actions());
        paths
            .pairs
            .sort_by_key(|(host, _)| std::cmp::Reverse(host.len()));
        paths
    }

    /// The job's workspace and temp folder on the host.
    pub fn new(workspace: &Path, temp: &Path) -> PodPaths {
        let name = workspace
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "workspace".to_string());
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

    fn job() -> PodJob {
        PodJob {
            runner_id: "runner-a".into(),
            namespace_prefix: "hr".into(),
            task: "42".into(),
            job: "build".into(),
            time_limit: Some(Duration::from_secs(3600)),
        }
    }

    #[test]
    fn manifests_carry_the_image_guard_labels_and_no_token() {
        let (ns, pod) = manifests(&PodSettings::default(), &job(), "alpine:3").unwrap();
        let name = ns.metadata.name.clone().unwrap();
        assert!(name.starts_with("hr-"), "{name}");
        let labels = ns.metadata.labels.unwrap();
        assert_eq!(labels["hybrid-runner/task-id"], "42");
        assert!(
            ns.metadata
                .annotations
                .unwrap()
                .contains_key("hybrid-runner/expires-at")
        );
        assert_eq!(pod.metadata.namespace.as_deref(), Some(name.as_str()));
        let spec = pod.spec.unwrap();
        assert_eq!(spec.automount_service_account_token, Some(false));
        // The job's hour plus the 5 minutes it may take to start.
        assert_eq!(spec.active_deadline_seconds, Some(3900));
        assert_eq!(spec.containers[0].image.as_deref(), Some("alpine:3"));
        let template = spec.containers[0].resources.clone().unwrap();
        assert_eq!(template.requests.unwrap()["cpu"].0, "100m");
        let settings = PodSettings {
            requests: [("cpu".to_string(), "2".to_string())].into(),
            limits: [("memory".to_string(), "8Gi".to_string())].into(),
            ..PodSettings::default()
        };
        let (_, pod) = manifests(&settings, &job(), "alpine:3").unwrap();
        let resources = pod.spec.unwrap().containers[0].resources.clone().unwrap();
        let requests = resources.requests.unwrap();
        assert_eq!(requests["cpu"].0, "2");
        assert_eq!(requests["memory"].0, "128Mi", "the template's stays");
        assert_eq!(resources.limits.unwrap()["memory"].0, "8Gi");
        // No limit, or one past the expiry: the expiry.
        let unlimited = PodJob {
            time_limit: None,
            ..job()
        };
        let (_, pod) = manifests(&settings, &unlimited, "alpine:3").unwrap();
        assert_eq!(pod.spec.unwrap().active_deadline_seconds, Some(6 * 3600));
        let long = PodJob {
            time_limit: Some(Duration::from_secs(24 * 3600)),
            ..job()
        };
        let (_, pod) = manifests(&settings, &long, "alpine:3").unwrap();
        assert_eq!(pod.spec.unwrap().active_deadline_seconds, Some(6 * 3600));
    }

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
