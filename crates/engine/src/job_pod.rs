//! A job's pod over its life: started when the job starts (after its `if:`, so a skipped
//! job starts none) when the job asks for containers (`container:`, `services:`) or its
//! label places it in a pod, and deleted (its whole namespace) when the job ends, on
//! every path. Without a cluster, a job that asks for containers fails before its first
//! step, saying how to give it one ([`PodLauncher`] absent).
//!
//! Once the pod runs, the `job` context says what GitHub's runner says about Docker's
//! containers, as far as it means anything in a pod: `job.container.id` is the pod's
//! `<namespace>/job`, `job.container.network` and each `job.services.<id>.network` the
//! namespace (one network for all), `job.services.<id>.id` the service's container and
//! `job.services.<id>.ports` its ports, each with the port it is reached on at localhost
//! (its own, or the host port of a `HOST:PORT` mapping, which a forwarder serves).

use std::sync::Arc;
use std::time::Duration;

use workflows::expression::{Object, Value};
use workflows::model::{Job, Workflow};

use super::engine::CheckoutMode;
use super::events::{LogKind, Outcome};
use super::job::{Frame, JobState};
use crate::placement::Placement;
use crate::pod::containers::{JobContainers, asks_for_containers};
use crate::pod::{JobPod, PodError, PodJob, PodSettings};

/// How a daemon is given a cluster, as said to a job that needs one when it has none.
pub const DAEMON_CLUSTER_REMEDY: &str =
    "add a kubernetes: section to the runner's config (`hybrid-runner generate-config` shows it)";

/// How the engine starts job pods (a cluster is configured).
#[derive(Debug, Clone)]
pub struct PodLauncher {
    pub settings: PodSettings,
    /// The run or task the namespaces are named and labelled after.
    pub task: String,
    /// Where the job's label put it: `Pod` makes every job a pod job (its image, else the
    /// configured one, unless `container:` names another); `Host` only jobs that ask for
    /// containers.
    pub label: Placement,
}

impl PodLauncher {
    /// A daemon's launcher for the job of `task` that its label placed at `label`: there
    /// is one when the runner has a cluster configured, and also when the label asks for
    /// a pod without one (the pod then fails to start with the reason: the steps never
    /// land on this host).
    pub fn for_task(
        label: Placement,
        settings: &PodSettings,
        kubernetes_configured: bool,
        task: String,
    ) -> Option<PodLauncher> {
        let in_pod = matches!(label, Placement::Pod { .. });
        (kubernetes_configured || in_pod).then(|| PodLauncher {
            settings: settings.clone(),
            task,
            label,
        })
    }
}

impl JobState<'_> {
    /// Starts the job's pod when it needs one; `Err(outcome)` ends the job before its
    /// first step (the reason already written as a runner line).
    pub(super) async fn start_pod(
        &mut self,
        frame: &mut Frame,
        job: &Job,
        workflow: &Workflow,
    ) -> Result<(), Outcome> {
        let engine = self.engine;
        let label_image = match engine.pods.as_deref().map(|p| &p.label) {
            Some(Placement::Pod { image }) => Some(image.clone()),
            _ => None,
        };
        if !asks_for_containers(job) && label_image.is_none() {
            return Ok(());
        }
        let Some(launcher) = engine.pods.clone() else {
            let remedy = format!(
                "{} to run it in a pod of its own namespace, or remove `container:` and `services:` to run the steps on this host",
                engine.cluster_remedy
            );
            let what = match (&job.container, job.services.first()) {
                (Some(c), _) => format!(
                    "runs in `container: {}`",
                    c.image.as_ref().map_or("", |i| i.value.as_str())
                ),
                (None, Some((name, _))) => format!("starts the service container '{}'", name.value),
                (None, None) => "runs on a label that puts its steps in a pod".to_string(),
            };
            self.note(
                None,
                LogKind::Runner,
                &format!(
                    "error: job '{}' {what}, which needs a Kubernetes cluster for its pod; {remedy}",
                    job.id.value
                ),
            );
            return Err(Outcome::Failure);
        };
        // A dry run's container that reads a value only a real run has is not checked
        // further (the pod does not start anyway).
        let containers = match JobContainers::evaluate(job, &workflow.file, &frame.scope) {
            Ok(c) => Some(c),
            Err(e) => match self.container_read(job, &frame.scope) {
                Some((what, read)) => {
                    self.note(None, LogKind::Runner, &format!("dry run: {what}: {read}"));
                    None
                }
                None => {
                    self.note(None, LogKind::Runner, &format!("error: {e}"));
                    return Err(Outcome::Failure);
                }
            },
        };
        let Some(containers) = containers.filter(|_| !engine.dry_run) else {
            self.note(
                None,
                LogKind::Runner,
                "Dry run: the job's pod is not started",
            );
            return Ok(());
        };
        let image = label_image.flatten();
        let pod = match self
            .launch_pod(&launcher, image.as_deref(), &containers)
            .await
        {
            Ok(pod) => pod,
            Err(PodError::Cancelled) => {
                self.note(
                    None,
                    LogKind::Runner,
                    "the job was cancelled while its pod was starting",
                );
                return Err(Outcome::Cancelled);
            }
            Err(e) => {
                self.note(None, LogKind::Runner, &format!("error: {e}"));
                return Err(Outcome::Failure);
            }
        };
        let image = containers
            .job
            .as_ref()
            .map(|c| c.image.clone())
            .or(image)
            .unwrap_or_else(|| launcher.settings.image.clone());
        self.note(
            None,
            LogKind::Runner,
            &format!(
                "Job pod {}/{} is running (image {image})",
                pod.namespace(),
                crate::pod::POD_NAME
            ),
        );
        for service in &containers.services {
            self.note(
                None,
                LogKind::Runner,
                &format!(
                    "Service {} ({}) is running{}",
                    service.id,
                    service.container.image,
                    if service.container.options.health.is_some() {
                        " and healthy"
                    } else {
                        ""
                    }
                ),
            );
        }
        set_job_context(frame, &pod, &containers);
        self.pod = Some(Arc::clone(&pod));
        let event = &engine.run.event_path;
        if event.is_file()
            && let Err(e) = pod.provide_event(event, &self.temp).await
        {
            self.note(None, LogKind::Runner, &format!("error: {e}"));
            return Err(Outcome::Failure);
        }
        if engine.checkout == CheckoutMode::InPlace {
            // `exec`: the workspace is the repository on this host; the pod gets a copy.
            let workspace = &engine.run.workspace;
            let paths = crate::pod::PodPaths::new(workspace, &self.temp);
            let left_out = if launcher.settings.use_gitignore {
                crate::pod::git_ignored::git_ignored(workspace)
            } else {
                Vec::new()
            };
            match pod
                .copy_into_leaving_out(workspace, &paths.workspace(), &left_out)
                .await
            {
                Ok(sent) => self.note(
                    None,
                    LogKind::Runner,
                    &format!(
                        "Copied the workspace {} into the job pod at {} ({sent} bytes{})",
                        workspace.display(),
                        paths.workspace(),
                        match left_out.len() {
                            0 => String::new(),
                            n => format!(", {n} paths git ignores left out"),
                        }
                    ),
                ),
                Err(e) => {
                    self.note(None, LogKind::Runner, &format!("error: {e}"));
                    return Err(Outcome::Failure);
                }
            }
        }
        Ok(())
    }

    /// Starts a pod for this job from `launcher` in a namespace of its own (given up when
    /// the job is cancelled), and writes its notes.
    pub(super) async fn launch_pod(
        &mut self,
        launcher: &PodLauncher,
        image: Option<&str>,
        containers: &JobContainers,
    ) -> Result<Arc<JobPod>, PodError> {
        let engine = self.engine;
        let mut pod_job = PodJob::new(
            &engine.builds.settings,
            &launcher.task,
            &self.key.id,
            engine.job_time_limit.unwrap_or(Duration::ZERO),
        );
        pod_job.workspace = crate::pod::workspace_name(&engine.run.workspace);
        let pod = JobPod::start(
            &engine.builds.settings,
            &launcher.settings,
            &pod_job,
            image,
            containers,
            &self.cancel,
        )
        .await?;
        for line in pod.notes() {
            self.note(None, LogKind::Runner, line);
        }
        Ok(Arc::new(pod))
    }

    /// Deletes the job's pods (the job pod, or the step pod of a job whose steps run on
    /// this host) and their namespaces.
    pub(super) async fn delete_pod(&mut self) {
        for pod in [self.pod.take(), self.step_pod.take()]
            .into_iter()
            .flatten()
        {
            match pod.delete().await {
                Ok(()) => self.note(
                    None,
                    LogKind::Runner,
                    &format!("Job namespace {} deleted", pod.namespace()),
                ),
                Err(e) => self.note(None, LogKind::Runner, &format!("warning: {e}")),
            }
        }
    }
}

/// `job.container` and `job.services` for a job in `pod`.
fn set_job_context(frame: &mut Frame, pod: &JobPod, containers: &JobContainers) {
    let Some(Value::Object(job)) = frame.scope.get("job").cloned() else {
        return;
    };
    let mut job = (*job).clone();
    let network = Value::from(pod.namespace());
    let mut container = Object::new();
    container.insert(
        "id",
        Value::from(format!("{}/{}", pod.namespace(), crate::pod::POD_NAME)),
    );
    container.insert("network", network.clone());
    job.insert("container", Value::object(container));
    let mut services = Object::new();
    for service in &containers.services {
        let mut entry = Object::new();
        let id = pod
            .services()
            .iter()
            .find(|(s, _)| *s == service.id)
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        entry.insert("id", Value::from(id));
        entry.insert("network", network.clone());
        let mut ports = Object::new();
        for port in &service.container.ports {
            ports.insert(
                port.container.to_string(),
                Value::from(port.reached_on().to_string()),
            );
        }
        entry.insert("ports", Value::object(ports));
        services.insert(service.id.clone(), Value::object(entry));
    }
    job.insert("services", Value::object(services));
    frame.scope.set("job", Value::object(job));
}
