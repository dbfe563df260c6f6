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
use super::conditions::KANIKO_CONTAINER;
use crate::build::BuildLog;

/// Tries to open the stream (the container may not accept log reads for a moment after
/// the kubelet reports it started).
const OPEN_ATTEMPTS: u32 = 10;
const OPEN_PAUSE: Duration = Duration::from_millis(200);

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
    let params = LogParams {
        follow: true,
        container: Some(KANIKO_CONTAINER.to_string()),
        ..Default::default()
    };
    let mut attempt = 1;
    let reader = loop {
        match pods.log_stream(&pod, &params).await {
            Ok(reader) => break reader,
            Err(e) if attempt < OPEN_ATTEMPTS => {
                tracing::debug!(pod = %pod, error = %e, "pod log not readable yet");
                attempt += 1;
                tokio::time::sleep(OPEN_PAUSE).await;
            }
            Err(e) => {
                log.line(
                    Some(variant),
                    format!("(cannot read the log of pod {pod}: {e})"),
                );
                return;
            }
        }
    };
    let mut lines = std::pin::pin!(reader.lines());
    while let Some(line) = lines.next().await {
        match line {
            Ok(line) => {
                if !line.trim().is_empty()
                    && let Ok(mut l) = last.lock()
                {
                    *l = Some(line.clone());
                }
                log.line(Some(variant), line);
            }
            Err(e) => {
                log.line(
                    Some(variant),
                    format!("(the log of pod {pod} ended early: {e})"),
                );
                return;
            }
        }
    }
}
