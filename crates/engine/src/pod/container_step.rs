//! A step that runs its own image in the job pod: a Docker action (`uses: docker://IMAGE`,
//! or an action with `runs.using: docker`) as an *ephemeral container* of the job pod
//! (the `pods/ephemeralcontainers` subresource, GA since Kubernetes 1.25), so it shares
//! the pod's volumes and network with the steps container and the services.
//!
//! The container mounts what actions/runner mounts into a Docker action's container
//! (src/Runner.Worker/Handlers/ContainerActionHandler.cs at 258d6c857db3): the workspace
//! at `/github/workspace` (its working directory), the temp folder at
//! `/github/runner_temp`, `/github/home`, `/github/workflow` and the `GITHUB_*` files at
//! `/github/file_commands` (no Docker socket: there is no Docker); it also mounts the pod's `/__w` and
//! `/__t`, so every other path the engine handed the step still means the same thing.
//! Its environment comes from a Secret of its own (`<name>-env`, a `secretKeyRef` per
//! variable), never from the pod's manifest. Its output is the container's log, followed
//! until the container ends; the exit code is its `terminated` state's. A pull that
//! fails (`ErrImagePull`, ...) fails the step at once, naming the image and the reason.
//!
//! An ephemeral container cannot be stopped on its own: a cancelled or timed-out step
//! stops being followed and is reported so, and the container ends with the pod, which
//! goes with the job's namespace.

use std::time::Duration;

use futures_util::AsyncReadExt as _;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, Secret};
use kube::api::{Api, LogParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::container_fields::args_by_reference;
use super::exec::PodStepEnd;
use super::manifest::{REPO_VOLUME, TEMP_VOLUMES};
use super::step_stdout::{STEP_FILES, StepFilesBack, files_listing, parse_files};
use super::{JobPod, POD_NAME, POD_TEMP, POD_WORKSPACE_ROOT, PodError};
use hr_cluster::{describe, retry, status_code};
use hr_image::kaniko::FATAL_WAITING_REASONS;
use hr_process::budget::OutputSink;
use hr_process::host::{OutputStream, ProcessExit};
use hr_process::lines::LineSplitter;

/// Where a Docker action finds the workspace (and starts).
pub const GITHUB_WORKSPACE: &str = "/github/workspace";
/// `HOME` of a Docker action.
pub const GITHUB_HOME: &str = "/github/home";
/// The event file's folder.
pub const GITHUB_WORKFLOW: &str = "/github/workflow";
/// The `GITHUB_*` files' folder.
pub const GITHUB_FILE_COMMANDS: &str = "/github/file_commands";
/// `RUNNER_TEMP` of a Docker action (the pod's temp volume).
pub const GITHUB_RUNNER_TEMP: &str = "/github/runner_temp";

/// How long a container step's container may take to start (its image pull included).
const CONTAINER_START_LIMIT: Duration = Duration::from_secs(300);

/// One container step, its environment already in the container's terms.
#[derive(Debug, Clone)]
pub struct ContainerStep {
    /// The ephemeral container's name, unique in the pod (`step-<n>`).
    pub name: String,
    pub image: String,
    /// `runs.entrypoint` (else the image's).
    pub entrypoint: Option<String>,
    /// `runs.args` (else the image's `CMD`).
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The job's workspace in the pod (`/__w/<name>`).
    pub workspace: String,
    pub timeout: Option<Duration>,
}

/// The environment actions/runner gives a Docker action in place of the host's paths.
pub fn container_paths_env() -> Vec<(String, String)> {
    let file = |name: &str| format!("{GITHUB_FILE_COMMANDS}/{name}");
    vec![
        ("GITHUB_WORKSPACE".into(), GITHUB_WORKSPACE.into()),
        ("HOME".into(), GITHUB_HOME.into()),
        ("RUNNER_TEMP".into(), GITHUB_RUNNER_TEMP.into()),
        (
            "GITHUB_EVENT_PATH".into(),
            format!("{GITHUB_WORKFLOW}/event.json"),
        ),
        ("GITHUB_ENV".into(), file("set_env")),
        ("GITHUB_OUTPUT".into(), file("set_output")),
        ("GITHUB_PATH".into(), file("add_path")),
        ("GITHUB_STATE".into(), file("save_state")),
        ("GITHUB_STEP_SUMMARY".into(), file("step_summary")),
    ]
}

fn container_error(name: &str) -> impl Fn(String) -> PodError + '_ {
    move |message| PodError::ContainerStep {
        name: name.to_string(),
        message,
    }
}

impl JobPod {
    /// Runs `step` as an ephemeral container of the pod, streaming its log lines to
    /// `on_line` (all as stdout: a container log does not keep the two apart).
    pub async fn run_container_step(
        &self,
        step: &ContainerStep,
        on_line: &mut dyn OutputSink,
        cancel: &CancellationToken,
    ) -> Result<PodStepEnd, PodError> {
        // `step-<step index>-<n>`: a step may run several containers (pre-entrypoint,
        // main), and an ephemeral container's name is taken for the pod's life.
        let n = self
            .container_steps
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let step = &ContainerStep {
            name: format!("{}-{n}", step.name),
            ..step.clone()
        };
        let error = container_error(&step.name);
        let start = Instant::now();
        // Fresh `GITHUB_*` files and the folders the mounts need.
        let files: Vec<String> = STEP_FILES
            .iter()
            .map(|f| format!("{POD_TEMP}/_files/{f}"))
            .collect();
        let prepare = format!(
            "mkdir -p {POD_TEMP}/_files {POD_TEMP}/_github_home {POD_TEMP}/_github_workflow '{ws}' && : > {}",
            files.join(" && : > "),
            ws = step.workspace.replace('\'', r"'\''"),
        );
        self.exec_output(
            vec!["sh".into(), "-c".into(), prepare],
            "preparing a container step",
        )
        .await?;
        let secret_name = format!("{}-env", step.name);
        let (args, arg_env) = args_by_reference(&step.args);
        let env: Vec<(String, String)> = step.env.iter().cloned().chain(arg_env).collect();
        if !env.is_empty() {
            let data: std::collections::BTreeMap<String, String> = env
                .iter()
                .enumerate()
                .map(|(i, (_, v))| (i.to_string(), v.clone()))
                .collect();
            let secret = Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some(secret_name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..Default::default()
                },
                type_: Some("Opaque".into()),
                string_data: Some(data),
                ..Default::default()
            };
            let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
            let post = PostParams::default();
            match retry(|| secrets.create(&post, &secret)).await {
                Ok(_) => {}
                Err(e) if status_code(&e) == Some(409) => {}
                Err(e) => return Err(error(format!("creating its Secret: {}", describe(&e)))),
            }
        }
        let container = ephemeral_container(step, &env, &args, &secret_name);
        let patch = json!({"spec": {"ephemeralContainers": [container]}});
        let pods = self.pods();
        let (params, patch) = (PatchParams::default(), Patch::Strategic(patch));
        retry(|| pods.patch_ephemeral_containers(POD_NAME, &params, &patch))
            .await
            .map_err(|e| {
                error(format!(
                    "adding it to the pod: {}; the runner needs patch on pods/ephemeralcontainers",
                    describe(&e)
                ))
            })?;
        let deadline = step.timeout.map(|t| start + t);
        let stopped = async {
            match deadline {
                Some(at) => tokio::select! {
                    () = tokio::time::sleep_until(at) => true,
                    () = cancel.cancelled() => false,
                },
                None => {
                    cancel.cancelled().await;
                    false
                }
            }
        };
        tokio::pin!(stopped);
        let ended = {
            let run = self.follow_container(&pods, step, on_line);
            tokio::pin!(run);
            tokio::select! {
                code = &mut run => Ok(code?),
                timed_out = &mut stopped => Err(timed_out),
            }
        };
        match ended {
            Ok(code) => {
                let exit = ProcessExit {
                    code: Some(code),
                    signal: None,
                    timed_out: false,
                    cancelled: false,
                    duration: start.elapsed(),
                };
                // The files the container wrote, read from the steps container (one more
                // exec: the ephemeral container's image may have no shell).
                let listing = self
                    .exec_output(
                        vec!["sh".into(), "-c".into(), files_listing(POD_TEMP)],
                        "reading a container step's GITHUB_* files",
                    )
                    .await?;
                let files = match parse_files(&listing) {
                    Ok(files) => StepFilesBack::Files(files),
                    Err(e) => StepFilesBack::Malformed(e),
                };
                Ok(PodStepEnd { exit, files })
            }
            Err(timed_out) => {
                on_line.line(
                    OutputStream::Stderr,
                    &format!(
                        "{} {} is no longer followed; it ends with the job's pod",
                        step.name,
                        if timed_out {
                            "timed out"
                        } else {
                            "was cancelled"
                        }
                    ),
                    false,
                );
                let exit = ProcessExit {
                    code: None,
                    signal: None,
                    timed_out,
                    cancelled: !timed_out,
                    duration: start.elapsed(),
                };
                Ok(PodStepEnd {
                    exit,
                    files: StepFilesBack::Missing,
                })
            }
        }
    }

    /// Waits until the container runs (or fails to start), streams its log, then returns
    /// its exit code.
    async fn follow_container(
        &self,
        pods: &Api<Pod>,
        step: &ContainerStep,
        on_line: &mut dyn OutputSink,
    ) -> Result<i32, PodError> {
        let error = container_error(&step.name);
        let started = Instant::now();
        loop {
            if started.elapsed() > CONTAINER_START_LIMIT {
                return Err(error(format!(
                    "it did not start within {} s (image {})",
                    CONTAINER_START_LIMIT.as_secs(),
                    step.image
                )));
            }
            let status = self.container_status(pods, &step.name).await?;
            let state = status.as_ref().and_then(|s| s.state.clone());
            if let Some(waiting) = state.as_ref().and_then(|s| s.waiting.as_ref()) {
                let reason = waiting.reason.clone().unwrap_or_default();
                if FATAL_WAITING_REASONS.contains(&reason.as_str()) {
                    return Err(error(format!(
                        "the image {} cannot run: {reason}: {}",
                        step.image,
                        waiting.message.clone().unwrap_or_default()
                    )));
                }
            }
            if state
                .as_ref()
                .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let params = LogParams {
            container: Some(step.name.clone()),
            follow: true,
            ..LogParams::default()
        };
        let mut splitter = LineSplitter::default();
        let mut emit =
            |line: String, continued: bool| on_line.line(OutputStream::Stdout, &line, continued);
        match pods.log_stream(POD_NAME, &params).await {
            Ok(stream) => {
                let mut reader = stream;
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = reader.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    splitter.push(&buf[..n], &mut emit);
                }
                splitter.finish(&mut emit);
            }
            Err(e) => emit(
                format!("cannot follow the container's log: {}", describe(&e)),
                false,
            ),
        }
        // The log ends when the container does; its state may trail a moment.
        for _ in 0..600 {
            let status = self.container_status(pods, &step.name).await?;
            if let Some(t) = status.and_then(|s| s.state?.terminated) {
                return Ok(t.exit_code);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(error(
            "its log ended, but it did not terminate within 60 s".into(),
        ))
    }

    async fn container_status(
        &self,
        pods: &Api<Pod>,
        name: &str,
    ) -> Result<Option<ContainerStatus>, PodError> {
        let pod = retry(|| pods.get(POD_NAME))
            .await
            .map_err(|e| container_error(name)(describe(&e)))?;
        // A pod that ended takes up no new ephemeral container (the kubelet's pod worker
        // is done with it): no status would ever come.
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if let Some(phase @ ("Succeeded" | "Failed")) = phase {
            return Err(container_error(name)(format!(
                "the job pod has ended ({phase})"
            )));
        }
        Ok(pod
            .status
            .and_then(|s| s.ephemeral_container_statuses)
            .into_iter()
            .flatten()
            .find(|c| c.name == name))
    }
}

/// The ephemeral container of `step` (env by reference to `secret`).
/// The ephemeral container of `step`: `env` by reference to `secret`, `args` as given
/// (references into `env`: [`args_by_reference`]).
fn ephemeral_container(
    step: &ContainerStep,
    env: &[(String, String)],
    args: &[String],
    secret: &str,
) -> serde_json::Value {
    let env: Vec<serde_json::Value> = env
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            json!({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": i.to_string()}}})
        })
        .collect();
    // Whole volumes only: the API server refuses `subPath` in an ephemeral container
    // (validateEphemeralContainers in pkg/apis/core/validation/validation.go), so every
    // folder shared under another name is a volume of its own (`manifest::REPO_VOLUME`,
    // `manifest::TEMP_VOLUMES`).
    let mut mounts = vec![
        json!({"name": "workspace", "mountPath": POD_WORKSPACE_ROOT}),
        json!({"name": REPO_VOLUME, "mountPath": step.workspace}),
        json!({"name": REPO_VOLUME, "mountPath": GITHUB_WORKSPACE}),
        json!({"name": "temp", "mountPath": POD_TEMP}),
        json!({"name": "temp", "mountPath": GITHUB_RUNNER_TEMP}),
    ];
    for ((volume, pod_path), github_path) in
        TEMP_VOLUMES
            .iter()
            .zip([GITHUB_FILE_COMMANDS, GITHUB_HOME, GITHUB_WORKFLOW])
    {
        mounts.push(json!({"name": volume, "mountPath": pod_path}));
        mounts.push(json!({"name": volume, "mountPath": github_path}));
    }
    let mut container = json!({
        "name": step.name,
        "image": step.image,
        "workingDir": GITHUB_WORKSPACE,
        "env": env,
        "volumeMounts": mounts,
    });
    if let Some(entrypoint) = &step.entrypoint {
        container["command"] = json!([entrypoint]);
    }
    if !args.is_empty() {
        container["args"] = json!(args);
    }
    container
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_step_mounts_what_actions_runner_mounts_and_keeps_env_out() {
        let step = ContainerStep {
            name: "step-3".into(),
            image: "alpine:3".into(),
            entrypoint: Some("/entry.sh".into()),
            args: vec!["a b".into()],
            env: vec![("INPUT_TOKEN".into(), "s3cret".into())],
            workspace: "/__w/app".into(),
            timeout: None,
        };
        let (args, arg_env) = args_by_reference(&step.args);
        let env: Vec<_> = step.env.iter().cloned().chain(arg_env).collect();
        let c = ephemeral_container(&step, &env, &args, "step-3-env");
        assert!(!c.to_string().contains("s3cret"));
        assert_eq!(c["env"][0]["valueFrom"]["secretKeyRef"]["key"], "0");
        assert_eq!(c["command"], json!(["/entry.sh"]));
        // The argument travels in the Secret; the manifest holds a reference to it.
        assert_eq!(c["args"], json!(["$(HYBRID_RUNNER_ARG_0)"]));
        assert_eq!(c["env"][1]["name"], "HYBRID_RUNNER_ARG_0");
        assert_eq!(c["workingDir"], "/github/workspace");
        let mounts = c["volumeMounts"].as_array().unwrap();
        assert!(mounts.contains(&json!({"name": "repo", "mountPath": "/github/workspace"})));
        assert!(mounts.contains(&json!({"name": "repo", "mountPath": "/__w/app"})));
        assert!(
            mounts
                .contains(&json!({"name": "file-commands", "mountPath": "/github/file_commands"}))
        );
        assert!(mounts.iter().all(|m| m.get("subPath").is_none()));
        let env = container_paths_env();
        assert!(env.contains(&("GITHUB_ENV".into(), "/github/file_commands/set_env".into())));
    }
}
