//! Streaming a Kaniko pod's log into the build log, live, each line tagged with its
//! variant: `pods/log?follow=true` opened once the container has started, read line by
//! line until the container ends.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use tokio::task::JoinHandle;

use super::Variant;
use super::conditions::{KANIKO_CONTAINER, KanikoState, kaniko_state};
use crate::BuildLog;

/// Tries to open the stream (the container may not accept log reads for a moment after
/// the kubelet reports it started).
const OPEN_ATTEMPTS: u32 = 10;
const OPEN_PAUSE: Duration = Duration::from_millis(200);
/// How many times a stream that ended without a line is opened again.
const EMPTY_REOPENS: u32 = 50;

/// A running log stream; aborted when dropped.
#[derive(Debug)]
pub(super) struct PodLogStream {
    task: Option<JoinHandle<()>>,
    last_line: Arc<Mutex<Option<String>>>,
}

impl PodLogStream {
    /// Starts following the Kaniko container's log of `pod`.
    pub(super) fn start(
        pods: Api<Pod>,
        pod: String,
        variant: Variant,
        log: BuildLog,
    ) -> PodLogStream {
        let last_line = Arc::new(Mutex::new(None));
        let last = Arc::clone(&last_line);
        let task = tokio::spawn(async move { follow(pods, pod, variant, log, last).await });
        PodLogStream {
            task: Some(task),
            last_line,
        }
    }

    /// Waits up to `grace` for the stream to reach the end of the log (the container has
    /// ended), then stops it.
    pub(super) async fn finish(&mut self, grace: Duration) {
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(grace, task).await.is_err() {
                abort.abort();
            }
        }
    }

    /// The last non-empty line read so far (Kaniko's final line names the error).
    pub(super) fn last_line(&self) -> Option<String> {
        self.last_line.lock().ok().and_then(|l| l.clone())
    }
}

impl Drop for PodLogStream {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn follow(
    pods: Api<Pod>,
    pod: String,
    variant: Variant,
    log: BuildLog,
    last: Arc<Mutex<Option<String>>>,
) {
    // A stream can end before the container wrote anything (some servers end a follow
    // that finds no log yet); it is opened again until a line arrives or a read that
    // started after the container ended comes back empty.
    for _ in 0..EMPTY_REOPENS {
        let ended_before = container_ended(&pods, &pod).await;
        match read_once(&pods, &pod, variant, &log, &last).await {
            Ok(0) if !ended_before => tokio::time::sleep(OPEN_PAUSE).await,
            Ok(_) => return,
            Err(message) => {
                log.line(Some(variant), message);
                return;
            }
        }
    }
}

/// Whether the Kaniko container of `pod` has terminated (false when unknown).
async fn container_ended(pods: &Api<Pod>, pod: &str) -> bool {
    pods.get_opt(pod)
        .await
        .ok()
        .flatten()
        .is_some_and(|p| matches!(kaniko_state(&p), KanikoState::Terminated { .. }))
}

/// Follows the log once; the number of lines read, or a message for the build log.
async fn read_once(
    pods: &Api<Pod>,
    pod: &str,
    variant: Variant,
    log: &BuildLog,
    last: &Mutex<Option<String>>,
) -> Result<usize, String> {
    let params = LogParams {
        follow: true,
        container: Some(KANIKO_CONTAINER.to_string()),
        ..Default::default()
    };
    let mut attempt = 1;
    let reader = loop {
        match pods.log_stream(pod, &params).await {
            Ok(reader) => break reader,
            Err(e) if attempt < OPEN_ATTEMPTS => {
                tracing::debug!(pod = %pod, error = %e, "pod log not readable yet");
                attempt += 1;
                tokio::time::sleep(OPEN_PAUSE).await;
            }
            Err(e) => return Err(format!("(cannot read the log of pod {pod}: {e})")),
        }
    };
    let mut count = 0;
    let mut lines = std::pin::pin!(reader.lines());
    while let Some(line) = lines.next().await {
        match line {
            Ok(line) => {
                count += 1;
                if !line.trim().is_empty()
                    && let Ok(mut l) = last.lock()
                {
                    *l = Some(line.clone());
                }
                log.line(Some(variant), line);
            }
            Err(e) => return Err(format!("(the log of pod {pod} ended early: {e})")),
        }
    }
    Ok(count)
}
