//! One workload's rollout: set the image by digest with a strategic merge patch (as
//! `kubectl set image` does), watch the workload's status and its new pods until it is
//! rolled out, fails, or the time is up; on failure put the previous pod template back
//! (what `kubectl rollout undo` restores when nobody rolled out in between).
//!
//! The undo is a JSON patch that first `test`s that the container still runs the image
//! this rollout set, so a newer rollout by someone else is never undone.

use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::error::RolloutFailure;
use crate::pods::{is_new_pod, last_log_lines, list_pods, not_ready, stuck_container};
use crate::status::{RolloutStatus, rollout_status};
use crate::workload::Workload;

/// How each rollout is watched and ended.
#[derive(Debug, Clone)]
pub struct RolloutOptions {
    /// The longest one workload's rollout may take.
    pub timeout: Duration,
    /// Put the previous pod template back when the rollout fails (`--no-rollback`: false).
    pub rollback: bool,
    /// How often the workload and its pods are read.
    pub poll: Duration,
    /// The field manager recorded in `managedFields`.
    pub field_manager: String,
}

impl Default for RolloutOptions {
    fn default() -> Self {
        RolloutOptions {
            timeout: Duration::from_secs(600),
            rollback: true,
            poll: Duration::from_millis(500),
            field_manager: "hybrid-runner".to_string(),
        }
    }
}

/// What happened to the rollback of a failed rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollback {
    /// Turned off (`--no-rollback`, `rollback: false`): the failed template was left in place.
    Disabled,
    /// Nothing to undo: the image patch was refused, or the container already ran the image.
    NothingChanged,
    /// The previous pod template is back (its container image named).
    Restored { image: String },
    /// The undo patch was refused (e.g. someone rolled out a newer image meanwhile).
    Refused { message: String },
}

impl Rollback {
    /// `disabled`, `nothing-changed`, `restored`, `refused`: for JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            Rollback::Disabled => "disabled",
            Rollback::NothingChanged => "nothing-changed",
            Rollback::Restored { .. } => "restored",
            Rollback::Refused { .. } => "refused",
        }
    }

    /// In a sentence; `disabled` says how the rollback was turned off
    /// (`not rolled back (--no-rollback)`).
    pub fn describe(&self, disabled: &str) -> String {
        match self {
            Rollback::Disabled => disabled.to_string(),
            Rollback::NothingChanged => "nothing was changed".to_string(),
            Rollback::Restored { image } => format!("rolled back to {image}"),
            Rollback::Refused { message } => format!("the rollback was refused: {message}"),
        }
    }
}

/// How one rollout ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// kubectl's `successfully rolled out` line.
    RolledOut { message: String },
    /// The container already ran this image; nothing was patched.
    Unchanged { message: String },
    Failed {
        failure: RolloutFailure,
        rollback: Rollback,
    },
}

impl Outcome {
    /// `rolled-out`, `unchanged`, `failed`.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::RolledOut { .. } => "rolled-out",
            Outcome::Unchanged { .. } => "unchanged",
            Outcome::Failed { .. } => "failed",
        }
    }
}

/// One workload's rollout, for reports.
#[derive(Debug, Clone)]
pub struct RolloutReport {
    pub workload: Workload,
    /// The image set (`name:tag@sha256:…`).
    pub image: String,
    pub outcome: Outcome,
    pub duration: Duration,
}

/// The strategic merge patch that sets `container`'s image (`kubectl set image`'s patch).
pub fn image_patch(container: &str, image: &str) -> Value {
    json!({"spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}})
}

/// The JSON patch that puts `workload`'s template back, if its container still runs `image`.
pub fn undo_patch(workload: &Workload, image: &str) -> Value {
    json!([
        {"op": "test",
         "path": format!("/spec/template/spec/containers/{}/image", workload.container_index),
         "value": image},
        {"op": "replace", "path": "/spec/template", "value": workload.template},
    ])
}

/// Rolls `image` out to `workload`; `progress` gets each new status line.
pub async fn roll_out(
    client: &kube::Client,
    workload: &Workload,
    image: &str,
    options: &RolloutOptions,
    progress: &(dyn Fn(&str) + Send + Sync),
    cancel: &CancellationToken,
) -> RolloutReport {
    let start = Instant::now();
    let outcome = match patch_and_watch(client, workload, image, options, progress, cancel).await {
        Ok(outcome) => outcome,
        Err(failure) => {
            let patched =
                workload.image != image && !matches!(failure, RolloutFailure::Patch { .. });
            let rollback = if !patched {
                Rollback::NothingChanged
            } else if !options.rollback {
                Rollback::Disabled
            } else {
                progress(&format!(
                    "rolling back to the previous pod template ({})",
                    workload.image
                ));
                undo(client, workload, image, &options.field_manager).await
            };
            Outcome::Failed { failure, rollback }
        }
    };
    RolloutReport {
        workload: workload.clone(),
        image: image.to_string(),
        outcome,
        duration: start.elapsed(),
    }
}

async fn patch_and_watch(
    client: &kube::Client,
    workload: &Workload,
    image: &str,
    options: &RolloutOptions,
    progress: &(dyn Fn(&str) + Send + Sync),
    cancel: &CancellationToken,
) -> Result<Outcome, RolloutFailure> {
    let target = &workload.target;
    let api = target.api(client);
    let unchanged = workload.image == image;
    if !unchanged {
        let params = PatchParams {
            field_manager: Some(options.field_manager.clone()),
            ..PatchParams::default()
        };
        let patch = Patch::Strategic(image_patch(&workload.container, image));
        hr_cluster::retry(|| api.patch(&target.name, &params, &patch))
            .await
            .map_err(|e| RolloutFailure::Patch {
                message: hr_cluster::describe(&e),
            })?;
    }
    let deadline = start_deadline(options.timeout);
    let mut last_line = String::new();
    loop {
        let object = hr_cluster::retry(|| api.get(&target.name))
            .await
            .map_err(|e| RolloutFailure::Watch {
                message: hr_cluster::describe(&e),
            })?;
        let object = serde_json::to_value(object).unwrap_or_default();
        let line = match rollout_status(target.kind, &object) {
            RolloutStatus::Done(message) => {
                return Ok(if unchanged {
                    Outcome::Unchanged { message }
                } else {
                    Outcome::RolledOut { message }
                });
            }
            RolloutStatus::Failed { reason, message } => {
                return Err(match reason {
                    "ProgressDeadlineExceeded" => RolloutFailure::Deadline { message },
                    _ => RolloutFailure::Unsupported { message },
                });
            }
            RolloutStatus::Waiting(line) => line,
        };
        if line != last_line {
            progress(&line);
            last_line = line;
        }
        let pods = list_pods(client, &target.namespace, &workload.selector)
            .await
            .map_err(|e| RolloutFailure::Watch {
                message: hr_cluster::describe(&e),
            })?;
        if let Some(stuck) = pods
            .iter()
            .filter(|p| is_new_pod(p, &workload.container, image))
            .find_map(stuck_container)
        {
            let logs = last_log_lines(client, &target.namespace, &stuck).await;
            return Err(RolloutFailure::Pod {
                pod: stuck.pod,
                container: stuck.container,
                reason: stuck.reason,
                message: stuck.message,
                logs,
            });
        }
        if Instant::now() >= deadline {
            return Err(RolloutFailure::Timeout {
                seconds: options.timeout.as_secs(),
                status: last_line.trim_end_matches("...").to_string(),
                not_ready: not_ready(&pods, &workload.container, image),
            });
        }
        tokio::select! {
            () = tokio::time::sleep(options.poll) => {}
            () = cancel.cancelled() => return Err(RolloutFailure::Cancelled),
        }
    }
}

fn start_deadline(timeout: Duration) -> Instant {
    Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365))
}

/// Puts the template read before the rollout back (see [`undo_patch`]).
pub async fn undo(
    client: &kube::Client,
    workload: &Workload,
    image: &str,
    field_manager: &str,
) -> Rollback {
    let patch: json_patch::Patch = match serde_json::from_value(undo_patch(workload, image)) {
        Ok(patch) => patch,
        Err(e) => {
            return Rollback::Refused {
                message: e.to_string(),
            };
        }
    };
    let params = PatchParams {
        field_manager: Some(field_manager.to_string()),
        ..PatchParams::default()
    };
    let api = workload.target.api(client);
    let patch = Patch::Json::<()>(patch);
    match hr_cluster::retry(|| api.patch(&workload.target.name, &params, &patch)).await {
        Ok(_) => Rollback::Restored {
            image: workload.image.clone(),
        },
        Err(e) => Rollback::Refused {
            message: hr_cluster::describe(&e),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::workload::{WorkloadKind, WorkloadRef};

    #[test]
    fn the_undo_tests_the_image_then_replaces_the_template() {
        let target = WorkloadRef {
            kind: WorkloadKind::Deployment,
            namespace: "shop".into(),
            name: "api".into(),
            container: None,
        };
        let object = json!({"spec": {"selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "api"}},
                         "spec": {"containers": [{"name": "log", "image": "busybox"},
                                                 {"name": "api", "image": "reg/api:old"}]}}}});
        let workload = Workload::from_object(&target, object).unwrap();
        let undo = undo_patch(&workload, "reg/api:k8s-1@sha256:ab");
        assert_eq!(undo[0]["path"], "/spec/template/spec/containers/1/image");
        assert_eq!(undo[0]["value"], "reg/api:k8s-1@sha256:ab");
        assert_eq!(
            undo[1]["value"]["spec"]["containers"][1]["image"],
            "reg/api:old"
        );
        let parsed: json_patch::Patch = serde_json::from_value(undo).unwrap();
        assert_eq!(parsed.0.len(), 2);
        assert_eq!(
            image_patch("api", "x")["spec"]["template"]["spec"]["containers"][0],
            json!({"name": "api", "image": "x"})
        );
    }
}
