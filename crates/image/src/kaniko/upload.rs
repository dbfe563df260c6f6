//! Getting a context too large for a ConfigMap to Kaniko over `pods/attach`: the loader
//! pod (PVC mode) is created, waited for until it runs, sent the packed tar.gz on its stdin
//! and waited for until its `sha256sum -c` has passed (or its log says why not); in stdin
//! mode each Kaniko pod is sent the tar.gz the same way while its Job is followed. The
//! tar.gz is streamed from its file a MiB at a time, each send reading the file from the
//! start, so memory does not grow with the context.
//!
//! Both containers have `stdinOnce`: the first attach owns stdin and closing it is the
//! EOF the container waits for, so an upload is never retried on the same pod.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ContainerState, Pod};
use kube::api::{Api, AttachParams, DeleteParams, LogParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch_objects};
use kube::{Client, ResourceExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::conditions::{PodProblem, pod_problem};
use super::spec::PackedFile;
use crate::{BuildError, BuildLog};
use hr_cluster::{describe, retry, status_code};

/// Client-side stdin buffer of an attach: large enough that writing is not a frame per
/// kilobyte.
const STDIN_BUFFER: usize = 64 << 10;
/// Bytes of the packed context read from its file at a time (the attach writes them in
/// `STDIN_BUFFER` frames): few enough blocking reads, and what a send holds in memory.
const READ_BUFFER: usize = 1 << 20;
/// How long the Job watch may take to report a failure of its own once an upload to its
/// pod failed (the pod ending is the likelier cause, and its reason says more).
const WATCH_GRACE: Duration = Duration::from_secs(5);
/// How long an attach's stdout may take to end once its session has.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);
/// How many lines of a failed loader's log go into the error.
const LOG_TAIL_LINES: i64 = 20;

/// Why a context upload failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum UploadError {
    #[error(
        "the context loader pod {pod} cannot start its {container} container: {reason}{message}; check pvc.loader_image (and its registry credentials) and that the nodes can reach its registry"
    )]
    LoaderStart {
        pod: String,
        container: String,
        reason: String,
        message: String,
    },
    #[error(
        "the context loader pod {pod} could not be scheduled for {seconds}s: {message}; check that the PVC {claim} can be provisioned (pvc.storage_class) and that a node has capacity"
    )]
    LoaderUnschedulable {
        pod: String,
        claim: String,
        seconds: u64,
        message: String,
    },
    #[error(
        "cannot follow the pod {pod} in namespace {namespace}: {message}; check the runner's RBAC (`hybrid-runner check`)"
    )]
    Watch {
        pod: String,
        namespace: String,
        message: String,
    },
    #[error(
        "cannot attach to the pod {pod} to send the build context: {message}; the runner needs get and create on pods/attach (`hybrid-runner check`)"
    )]
    Attach { pod: String, message: String },
    #[error(
        "sending the build context to the pod {pod} failed after {sent} of {total} bytes: {message}; the connection to the API server broke, try again"
    )]
    Send {
        pod: String,
        sent: u64,
        total: u64,
        message: String,
    },
    #[error(
        "reading the packed build context {path} to send it to the pod {pod} failed after {sent} of {total} bytes: {message}; check the temporary folder (TMPDIR)"
    )]
    Read {
        pod: String,
        path: String,
        sent: u64,
        total: u64,
        message: String,
    },
    #[error(
        "the context loader pod {pod} ended before it was sent the context ({state}); check its image and command (template context-loader.yaml)"
    )]
    LoaderEndedEarly { pod: String, state: String },
    #[error(
        "the context loader pod {pod} failed (exit code {exit_code}) after receiving {bytes} bytes with sha256 {sha256}: {output}; a checksum mismatch means the upload was corrupted on the way, try again"
    )]
    LoaderFailed {
        pod: String,
        exit_code: i32,
        bytes: u64,
        sha256: String,
        output: String,
    },
}

impl From<UploadError> for BuildError {
    fn from(e: UploadError) -> Self {
        BuildError::Unavailable {
            builder: "kaniko",
            message: e.to_string(),
        }
    }
}

/// Loads the packed context into the context volume with the loader pod: create it, wait until it
/// runs, send the tarball on its stdin, wait for its checksum verdict, then delete it
/// (the volume keeps the file). A loader left behind by an error goes with the namespace.
pub(super) async fn load_context_volume(
    client: &Client,
    namespace: &str,
    loader: &Pod,
    claim: &str,
    context: &PackedFile,
    unschedulable_timeout: Duration,
    log: &BuildLog,
) -> Result<(), BuildError> {
    let sha256 = &context.sha256;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let name = loader.name_any();
    let container = loader
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .map(|c| c.name.clone())
        .unwrap_or_default();
    let post = PostParams::default();
    match retry(|| pods.create(&post, loader)).await {
        Ok(_) => {}
        // An earlier try of this call landed; the namespace is this build's own.
        Err(e) if status_code(&e) == Some(409) => {}
        Err(e) => {
            return Err(BuildError::Unavailable {
                builder: "kaniko",
                message: format!(
                    "cannot create the context loader pod {name} in namespace {namespace}: {}; run `hybrid-runner check` to see which permission is missing",
                    describe(&e)
                ),
            });
        }
    }
    log.line(
        None,
        format!(
            "loading the build context ({} bytes, sha256:{sha256}) into the volume {claim} through the pod {name}",
            context.size
        ),
    );
    let fail_fast = FailFast::Loader {
        claim: claim.to_string(),
        unschedulable_timeout,
    };
    let start = wait_for_start(
        &pods,
        namespace,
        &name,
        watcher::Config::default().fields(&format!("metadata.name={name}")),
        &container,
        &fail_fast,
    )
    .await?;
    if let Started::Ended(state) = start.state {
        return Err(UploadError::LoaderEndedEarly {
            pod: name,
            state: describe_state(&state),
        }
        .into());
    }
    let output = send(&pods, &name, &container, context, true).await?;
    let (exit_code, state) = wait_for_end(&pods, namespace, &name, &container).await?;
    if exit_code != 0 {
        let mut text = output.trim().to_string();
        if text.is_empty() {
            text = loader_log(&pods, &name, &container).await;
        }
        if text.is_empty() {
            text = describe_state(&state);
        }
        return Err(UploadError::LoaderFailed {
            pod: name,
            exit_code,
            bytes: context.size,
            sha256: sha256.to_string(),
            output: text,
        }
        .into());
    }
    log.line(
        None,
        format!("the build context is in the volume {claim}, its sha256 checked by the pod {name}"),
    );
    let background = DeleteParams::background();
    if let Err(e) = retry(|| pods.delete(&name, &background)).await {
        // The namespace deletion removes it anyway.
        tracing::debug!(pod = %name, error = %e, "deleting the context loader pod failed");
    }
    Ok(())
}

/// Runs `watch` (following one Kaniko Job) while the context is sent to the Job's pod on
/// stdin as soon as it runs. The watch decides the result; a failed upload ends the build
/// unless the watch reports a failure of its own right after.
pub(super) async fn watch_with_stdin<W>(
    watch: W,
    client: &Client,
    namespace: &str,
    job_name: &str,
    container: &str,
    context: &PackedFile,
) -> Result<String, BuildError>
where
    W: Future<Output = Result<String, BuildError>>,
{
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let upload = async {
        let config = watcher::Config::default().labels(&format!("job-name={job_name}"));
        let what = format!("of the Job {job_name}");
        let start =
            wait_for_start(&pods, namespace, &what, config, container, &FailFast::No).await?;
        match start.state {
            // Kaniko ended without its context; the watch reports why.
            Started::Ended(_) => Ok(()),
            Started::Running => send(&pods, &start.pod, container, context, false)
                .await
                .map(|_| ()),
        }
    };
    tokio::pin!(watch, upload);
    let mut uploading = true;
    loop {
        tokio::select! {
            result = &mut watch => return result,
            sent = &mut upload, if uploading => match sent {
                Ok(()) => uploading = false,
                Err(e) => {
                    return match tokio::time::timeout(WATCH_GRACE, &mut watch).await {
                        Ok(Err(watch_error)) => Err(watch_error),
                        _ => Err(e.into()),
                    };
                }
            },
        }
    }
}

/// Whether waiting for a pod fails on pull errors and scheduling trouble itself (the
/// loader), or leaves that to the Job watch that runs alongside (Kaniko in stdin mode).
enum FailFast {
    No,
    Loader {
        claim: String,
        unschedulable_timeout: Duration,
    },
}

/// How a container was found once it was no longer waiting.
enum Started {
    Running,
    Ended(Box<ContainerState>),
}

struct Start {
    pod: String,
    state: Started,
}

/// Waits until `container` of the first pod `config` selects runs (or has already ended).
async fn wait_for_start(
    pods: &Api<Pod>,
    namespace: &str,
    what: &str,
    config: watcher::Config,
    container: &str,
    fail_fast: &FailFast,
) -> Result<Start, UploadError> {
    let mut events = watch_objects(pods.clone(), config)
        .default_backoff()
        .boxed();
    let mut unschedulable_since: Option<(Instant, String)> = None;
    let mut errors = 0u32;
    loop {
        let deadline = match (fail_fast, &unschedulable_since) {
            (
                FailFast::Loader {
                    unschedulable_timeout,
                    ..
                },
                Some((since, _)),
            ) => Some(*since + *unschedulable_timeout),
            _ => None,
        };
        let event = tokio::select! {
            event = events.next() => event,
            _ = sleep_until(deadline) => {
                if let (FailFast::Loader { claim, unschedulable_timeout }, Some((_, message))) =
                    (fail_fast, unschedulable_since.take())
                {
                    return Err(UploadError::LoaderUnschedulable {
                        pod: what.to_string(),
                        claim: claim.clone(),
                        seconds: unschedulable_timeout.as_secs(),
                        message,
                    });
                }
                continue;
            }
        };
        let pod = match event {
            Some(Ok(Event::Apply(pod) | Event::InitApply(pod))) => {
                errors = 0;
                pod
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                errors += 1;
                if errors >= 8 {
                    return Err(UploadError::Watch {
                        pod: what.to_string(),
                        namespace: namespace.to_string(),
                        message: e.to_string(),
                    });
                }
                continue;
            }
            None => {
                return Err(UploadError::Watch {
                    pod: what.to_string(),
                    namespace: namespace.to_string(),
                    message: "the watch ended".to_string(),
                });
            }
        };
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        match container_state(&pod, container) {
            Some(ContainerState {
                running: Some(_), ..
            }) => {
                return Ok(Start {
                    pod: pod.name_any(),
                    state: Started::Running,
                });
            }
            Some(
                state @ ContainerState {
                    terminated: Some(_),
                    ..
                },
            ) => {
                return Ok(Start {
                    pod: pod.name_any(),
                    state: Started::Ended(Box::new(state)),
                });
            }
            _ => {}
        }
        if let FailFast::Loader { .. } = fail_fast {
            match pod_problem(&pod) {
                Some(PodProblem::Fatal {
                    container,
                    reason,
                    message,
                }) => {
                    return Err(UploadError::LoaderStart {
                        pod: pod.name_any(),
                        container,
                        reason,
                        message: if message.trim().is_empty() {
                            String::new()
                        } else {
                            format!(": {}", message.trim())
                        },
                    });
                }
                Some(PodProblem::Unschedulable { message }) => {
                    if unschedulable_since.is_none() {
                        unschedulable_since = Some((Instant::now(), message));
                    }
                }
                None => unschedulable_since = None,
            }
        }
    }
}

/// Attaches to `container` of `pod`, writes the packed context to its stdin (read from its
/// file a piece at a time) and closes it; with `wait`, reads the container's output until
/// it ends and returns it. Without, returns once the session is over (the container ended
/// or the server closed it).
async fn send(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    context: &PackedFile,
    wait: bool,
) -> Result<String, UploadError> {
    let total = context.size;
    let read_error = |sent: u64, message: String| UploadError::Read {
        pod: pod.to_string(),
        path: context.path().display().to_string(),
        sent,
        total,
        message,
    };
    // Opened before the attach: a context that cannot be read is not half sent.
    let mut file = tokio::fs::File::open(context.path())
        .await
        .map_err(|e| read_error(0, e.to_string()))?;
    let params = AttachParams::default()
        .container(container)
        .stdin(true)
        .stdout(wait)
        .stderr(false)
        .max_stdin_buf_size(STDIN_BUFFER);
    let mut attached = pods
        .attach(pod, &params)
        .await
        .map_err(|e| UploadError::Attach {
            pod: pod.to_string(),
            message: describe(&e),
        })?;
    let Some(mut stdin) = attached.stdin() else {
        return Err(UploadError::Attach {
            pod: pod.to_string(),
            message: "the attach session has no stdin".to_string(),
        });
    };
    // The output must be read while writing, or the session's loop stalls on it.
    let output = attached.stdout().map(|mut stdout| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf).await;
            String::from_utf8_lossy(&buf).into_owned()
        })
    });
    let status = attached.take_status();
    let mut sent = 0u64;
    let mut buffer = vec![0u8; READ_BUFFER];
    loop {
        let n = match file.read(&mut buffer).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => return Err(read_error(sent, e.to_string())),
        };
        if let Err(e) = stdin.write_all(&buffer[..n]).await {
            return Err(UploadError::Send {
                pod: pod.to_string(),
                sent,
                total,
                message: e.to_string(),
            });
        }
        sent += n as u64;
    }
    if sent != total {
        // The file changed under the runner: what was sent is not the context it hashed.
        return Err(read_error(
            sent,
            "the file no longer has the packed size".to_string(),
        ));
    }
    // EOF: the v5 protocol's close of the stdin channel (v4 closes the socket).
    if let Err(e) = stdin.shutdown().await {
        return Err(UploadError::Send {
            pod: pod.to_string(),
            sent,
            total,
            message: e.to_string(),
        });
    }
    drop(stdin);
    if let Some(status) = status {
        // The container's exit status, or nothing when the session ended without one.
        let _ = status.await;
    }
    if let Err(e) = attached.join().await {
        tracing::debug!(pod = %pod, error = %e, "the attach session ended with an error");
    }
    // kube-rs ends the stdout reader only when the session ends cleanly (with a status or
    // a close handshake): on `v4.channel.k8s.io` ending stdin closes the whole socket, and
    // a server that drops it then leaves the reader open for ever. What came is enough.
    Ok(match output {
        Some(mut task) => match tokio::time::timeout(OUTPUT_GRACE, &mut task).await {
            Ok(text) => text.unwrap_or_default(),
            Err(_) => {
                task.abort();
                String::new()
            }
        },
        None => String::new(),
    })
}

/// Waits until `container` of `pod` has terminated; its exit code and state.
async fn wait_for_end(
    pods: &Api<Pod>,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<(i32, ContainerState), UploadError> {
    let config = watcher::Config::default().fields(&format!("metadata.name={pod}"));
    let mut events = watch_objects(pods.clone(), config)
        .default_backoff()
        .boxed();
    let mut errors = 0u32;
    loop {
        match events.next().await {
            Some(Ok(Event::Apply(p) | Event::InitApply(p))) => {
                errors = 0;
                if let Some(state) = container_state(&p, container)
                    && let Some(t) = &state.terminated
                {
                    return Ok((t.exit_code, state.clone()));
                }
            }
            Some(Ok(Event::Delete(_))) => {
                return Err(UploadError::Watch {
                    pod: pod.to_string(),
                    namespace: namespace.to_string(),
                    message: "the pod was deleted before it finished".to_string(),
                });
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                errors += 1;
                if errors >= 8 {
                    return Err(UploadError::Watch {
                        pod: pod.to_string(),
                        namespace: namespace.to_string(),
                        message: e.to_string(),
                    });
                }
            }
            None => {
                return Err(UploadError::Watch {
                    pod: pod.to_string(),
                    namespace: namespace.to_string(),
                    message: "the watch ended".to_string(),
                });
            }
        }
    }
}

/// The last lines of the loader's log, empty when unreadable.
async fn loader_log(pods: &Api<Pod>, pod: &str, container: &str) -> String {
    let params = LogParams {
        container: Some(container.to_string()),
        tail_lines: Some(LOG_TAIL_LINES),
        ..Default::default()
    };
    pods.logs(pod, &params)
        .await
        .map(|text| text.trim().replace('\n', " | "))
        .unwrap_or_default()
}

fn container_state(pod: &Pod, container: &str) -> Option<ContainerState> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == container)?
        .state
        .clone()
}

fn describe_state(state: &ContainerState) -> String {
    match &state.terminated {
        Some(t) => format!(
            "exit code {}{}{}",
            t.exit_code,
            t.reason
                .as_deref()
                .map(|r| format!(", {r}"))
                .unwrap_or_default(),
            t.message
                .as_deref()
                .filter(|m| !m.trim().is_empty())
                .map(|m| format!(": {}", m.trim()))
                .unwrap_or_default()
        ),
        None => "not terminated".to_string(),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
