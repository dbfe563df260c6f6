//! Docker steps of a job whose steps run on this host. A container needs a pod, and the
//! job has none: its first Docker step starts one (the configured job image, in a
//! namespace of its own, deleted with the job's other pods when the job ends), and every
//! Docker step then runs as a container of that pod, as in a pod job. The workspace is the
//! host's: before the step it is copied into the pod, after it (also after a failure or a
//! cancel) the pod's copy comes back over it, so the steps after see what the container
//! wrote, as they would with Docker's bind mount. Files the container deleted are not
//! deleted on the host; nothing else of the host is reachable from the container.
//!
//! Without a cluster the step fails, saying how to give the runner one.

use std::path::Path;
use std::sync::Arc;

use super::action::ActionStepError;
use super::events::{LogKind, Outcome, StepKey};
use super::job::{Frame, JobState};
use super::step::{ProcessOutcome, StepError, StepProcess};
use crate::pod::containers::JobContainers;
use crate::pod::{JobPod, PodError, PodPaths};

impl JobState<'_> {
    /// Runs `process` as a container of `image` (a Docker step, `uses` naming it): in
    /// the job's pod, else in the step pod of this host job.
    pub(super) async fn run_container_process(
        &mut self,
        frame: &Frame,
        key: &StepKey,
        process: StepProcess,
        extra: &[(String, String)],
        image: &str,
        uses: &str,
    ) -> Result<ProcessOutcome, StepError> {
        if self.pod.is_some() {
            return self
                .run_process_step_in(frame, key, process, extra, Some(image))
                .await;
        }
        let Some(pod) = self.step_pod(key, uses).await? else {
            return Ok(ProcessOutcome {
                outcome: Some(Outcome::Cancelled),
                ..ProcessOutcome::default()
            });
        };
        let workspace = self.engine.run.workspace.clone();
        let pod_workspace = PodPaths::new(&workspace, &self.temp).workspace();
        let sent = pod.copy_into(&workspace, &pod_workspace).await?;
        self.note(
            Some(key),
            LogKind::Runner,
            &format!("Copied the workspace into the step pod at {pod_workspace} ({sent} bytes)"),
        );
        self.pod = Some(Arc::clone(&pod));
        let ran = self
            .run_process_step_in(frame, key, process, extra, Some(image))
            .await;
        self.pod = None;
        let back = self.copy_back(&pod, &pod_workspace, &workspace).await;
        match (ran, back) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
            (Ok(outcome), Ok(received)) => {
                self.note(
                    Some(key),
                    LogKind::Runner,
                    &format!(
                        "Copied the step pod's workspace back to {} ({received} bytes)",
                        workspace.display()
                    ),
                );
                Ok(outcome)
            }
        }
    }

    /// The step pod, started by the first Docker step; `None` when the job was
    /// cancelled while it started.
    async fn step_pod(
        &mut self,
        key: &StepKey,
        uses: &str,
    ) -> Result<Option<Arc<JobPod>>, StepError> {
        if let Some(pod) = &self.step_pod {
            return Ok(Some(Arc::clone(pod)));
        }
        let Some(launcher) = self.engine.pods.clone() else {
            return Err(ActionStepError::DockerNeedsPod {
                job: self.key.id.clone(),
                step: key.name.clone(),
                uses: uses.to_string(),
                remedy: self.engine.cluster_remedy.clone(),
            }
            .into());
        };
        let pod = match self
            .launch_pod(&launcher, None, &JobContainers::default())
            .await
        {
            Ok(pod) => pod,
            Err(PodError::Cancelled) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        self.note(
            Some(key),
            LogKind::Runner,
            &format!(
                "This job's steps run on this host; its Docker steps run in the step pod {}/{} (image {})",
                pod.namespace(),
                crate::pod::POD_NAME,
                launcher.settings.image
            ),
        );
        self.step_pod = Some(Arc::clone(&pod));
        let event = &self.engine.run.event_path;
        if event.is_file() {
            pod.provide_event(event, &self.temp).await?;
        }
        Ok(Some(pod))
    }

    /// Brings the pod's workspace back over the host's: into a folder of the job's temp
    /// folder first (a copy that fails half way leaves the workspace as it was), then
    /// file by file over it. Returns the bytes received.
    async fn copy_back(
        &mut self,
        pod: &JobPod,
        pod_workspace: &str,
        workspace: &Path,
    ) -> Result<u64, StepError> {
        let staging = self.temp.join("_step_pod_workspace");
        let received = pod.copy_out(pod_workspace, &staging).await?;
        let merged = merge_into(&staging, workspace);
        let _ = std::fs::remove_dir_all(&staging);
        merged.map_err(|e| {
            StepError::from(PodError::Exec {
                phase: "copying the step pod's workspace back",
                message: format!("cannot write into {}: {e}", workspace.display()),
            })
        })?;
        Ok(received)
    }
}

/// Moves everything under `from` to the same place under `to`, replacing what is there
/// (a file replaces a folder and the other way round; a symbolic link is written as a link,
/// never followed). What only `to` has stays.
pub(crate) fn merge_into(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in walkdir::WalkDir::new(from).min_depth(1).follow_links(false) {
        let entry = entry.map_err(std::io::Error::other)?;
        let relative = entry
            .path()
            .strip_prefix(from)
            .map_err(std::io::Error::other)?;
        let target = to.join(relative);
        let existing = std::fs::symlink_metadata(&target).ok();
        let kind = entry.file_type();
        if kind.is_dir() {
            match existing {
                Some(m) if m.is_dir() => {}
                Some(_) => {
                    std::fs::remove_file(&target)?;
                    std::fs::create_dir(&target)?;
                }
                None => std::fs::create_dir_all(&target)?,
            }
            continue;
        }
        match existing {
            Some(m) if m.is_dir() => std::fs::remove_dir_all(&target)?,
            Some(_) => std::fs::remove_file(&target)?,
            None => {}
        }
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
        } else if std::fs::rename(entry.path(), &target).is_err() {
            // Another file system: copy (the mode comes along).
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_replaces_adds_and_keeps_what_only_the_host_has() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("from"), dir.path().join("to"));
        for d in [&from, &to] {
            std::fs::create_dir_all(d.join("sub")).unwrap();
        }
        std::fs::write(from.join("changed.txt"), "new").unwrap();
        std::fs::write(to.join("changed.txt"), "old").unwrap();
        std::fs::write(from.join("sub/added.txt"), "added").unwrap();
        std::fs::write(to.join("kept.txt"), "kept").unwrap();
        // A folder where the host has a file, a file where it has a folder.
        std::fs::create_dir_all(from.join("was-file")).unwrap();
        std::fs::write(from.join("was-file/inner"), "i").unwrap();
        std::fs::write(to.join("was-file"), "f").unwrap();
        std::fs::write(from.join("was-dir"), "now a file").unwrap();
        std::fs::create_dir_all(to.join("was-dir/deep")).unwrap();
        // A link is written as a link, and a link on the host is replaced, not followed.
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "untouched").unwrap();
        std::os::unix::fs::symlink(&outside, to.join("link.txt")).unwrap();
        std::fs::write(from.join("link.txt"), "replaced").unwrap();
        std::os::unix::fs::symlink("changed.txt", from.join("alias")).unwrap();
        merge_into(&from, &to).unwrap();
        let read = |p: &str| std::fs::read_to_string(to.join(p)).unwrap();
        assert_eq!(read("changed.txt"), "new");
        assert_eq!(read("sub/added.txt"), "added");
        assert_eq!(read("kept.txt"), "kept");
        assert_eq!(read("was-file/inner"), "i");
        assert_eq!(read("was-dir"), "now a file");
        assert_eq!(read("link.txt"), "replaced");
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "untouched");
        assert_eq!(
            std::fs::read_link(to.join("alias")).unwrap(),
            Path::new("changed.txt")
        );
    }
}
