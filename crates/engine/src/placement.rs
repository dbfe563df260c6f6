//! What every job source (a Gitea task today, a GitHub job next) does around
//! [`run_assignment`](crate::assignment::run_assignment), whatever protocol it came by:
//!
//! - [`TaskFolders`]: the task's folder under the runner's work folder (cleared of what a
//!   crashed run left), the workspace inside it named after the repository as GitHub's
//!   runner names it, and a scratch folder with a short path (the docker shim's socket
//!   lives there); removed after the job, read-only folders included.
//! - [`Placement`]: where the label puts the steps, on this host or in a job pod of the
//!   task's own namespace (the engine starts the pod before the first step and deletes
//!   it after the last: [`crate::job_pod`]).
//! - [`masker_for`] and [`fail_before_start`]: the lines written before the job (setup,
//!   errors) are masked like the job's own, and a job that cannot start is reported as a
//!   started and failed job with the reason as runner lines ([`end_before_start`], which
//!   `run_assignment` uses too).

use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::events::{Event, EventSink, JobKey, LogKind, Outcome};
use crate::job::JobOutcome;
use crate::labels::{self, Label, LabelKind};
use crate::mask::Masker;

/// A folder of the task could not be made or cleared.
#[derive(Debug, thiserror::Error)]
#[error("cannot prepare the task folder {path}: {source}")]
pub struct FolderError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The folders of one task; [`TaskFolders::remove`] deletes them.
#[derive(Debug)]
pub struct TaskFolders {
    /// `<work folder>/<task id>`.
    pub task_dir: PathBuf,
    /// `<task_dir>/<repository name>`: `GITHUB_WORKSPACE`.
    pub workspace: PathBuf,
    /// A scratch folder in the system's temp folder, deleted with the value.
    pub scratch: crate::scratch::ScratchFolder,
}

impl TaskFolders {
    /// Makes `<parent>/<task_id>` (cleared first when a crashed run left it), the workspace
    /// in it named after `repository`'s last part (`workspace` when that is empty or a dot
    /// name), and a scratch folder `hybrid-runner-task-<task_id>-*` in the temp folder.
    pub fn create(parent: &Path, task_id: &str, repository: &str) -> Result<Self, FolderError> {
        let task_dir = parent.join(task_id);
        let folder_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| FolderError { path, source }
        };
        if task_dir.exists() {
            remove_tree(&task_dir).map_err(folder_error(&task_dir))?;
        }
        let name = repository
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty() && *n != "." && *n != "..")
            .unwrap_or("workspace");
        let workspace = task_dir.join(name);
        std::fs::create_dir_all(&workspace).map_err(folder_error(&workspace))?;
        let scratch = crate::scratch::ScratchFolder::create(&format!("task-{task_id}"))
            .map_err(folder_error(&std::env::temp_dir()))?;
        Ok(TaskFolders {
            task_dir,
            workspace,
            scratch,
        })
    }

    /// Deletes the scratch folder and the task folder.
    pub fn remove(self) -> Result<(), FolderError> {
        drop(self.scratch);
        remove_tree(&self.task_dir).map_err(|source| FolderError {
            path: self.task_dir.clone(),
            source,
        })
    }
}

/// Removes a folder tree, first making its folders writable when a step left read-only
/// ones (Go's module cache does).
pub(crate) fn remove_tree(dir: &Path) -> std::io::Result<()> {
    if std::fs::remove_dir_all(dir).is_ok() || !dir.exists() {
        return Ok(());
    }
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if entry.file_type().is_dir() {
            let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o700));
        }
    }
    std::fs::remove_dir_all(dir)
}

/// A job's labels ask for what this runner cannot give it.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error(
        "label {label} asks for {asked}, which this runner cannot start (it runs no Docker or LXC), and its steps are not run on this host unasked. Either declare the label a host label ({label}:host) to run its steps on this host on purpose, or run them in a Kubernetes pod ({label}:kubernetes://<image>, or keep the label and add a kubernetes: section to the config)"
    )]
    NoContainer { label: String, asked: String },
}

/// Where a job's steps run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// On this host, as the runner's own user.
    Host,
    /// In a pod of the task's own namespace, from `image` (else the configured job image).
    Pod { image: Option<String> },
}

impl Placement {
    /// Where a job's steps run, from its `runs-on` and this runner's labels, and the runner
    /// line that says so. A job whose label asks
    /// for a container (`docker`, `lxc`) runs in a pod of the job's namespace when Kubernetes
    /// is configured (`kubernetes`), and is refused otherwise: its steps are untrusted code
    /// meant to be kept off the machine, so they never land on this host silently. A job whose
    /// `runs-on` matches no label (Gitea sends jobs without `runs-on` to every runner) is
    /// placed as act_runner places it: in its default container when the runner has any
    /// container label, else on the host.
    pub fn for_runs_on(
        runs_on: &[String],
        labels: &[Label],
        kubernetes: bool,
    ) -> Result<(Placement, String), PlacementError> {
        let in_pod = |image: &Option<String>| {
            image
                .as_ref()
                .map(|i| format!(" ({i})"))
                .unwrap_or_default()
        };
        // A job that asked for a container: who asked, what for, the image, and how the
        // runner line about its pod starts.
        let (name, asked, image, lead) = match labels::pick(runs_on, labels) {
            None if !labels.iter().any(|l| l.kind.wants_isolation()) => {
                let line = format!(
                    "runs-on [{}] matches none of this runner's labels: the steps run on this host",
                    runs_on.join(", ")
                );
                return Ok((Placement::Host, line));
            }
            None => {
                let name = runs_on
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "self-hosted".into());
                let asked = format!(
                    "the runner's default container (runs-on [{}] matches none of its labels, and act_runner runs such a job in its default image)",
                    runs_on.join(", ")
                );
                let lead = asked.clone();
                (name, asked, None, lead)
            }
            Some(label) => {
                let name = label.name.clone();
                let (asked, image) = match &label.kind {
                    LabelKind::Host => {
                        let line = format!("Label {name}: the steps run on this host");
                        return Ok((Placement::Host, line));
                    }
                    LabelKind::Kubernetes { image } => {
                        let line = format!(
                            "Label {name}: the steps run in a pod of the job's namespace{}",
                            in_pod(image)
                        );
                        return Ok((
                            Placement::Pod {
                                image: image.clone(),
                            },
                            line,
                        ));
                    }
                    LabelKind::Docker { image } => (
                        format!(
                            "the Docker image {}",
                            image.as_deref().unwrap_or("(the default one)")
                        ),
                        image.clone(),
                    ),
                    LabelKind::Lxc { template } => (
                        format!(
                            "the LXC container {}",
                            template.as_deref().unwrap_or("(default)")
                        ),
                        None,
                    ),
                };
                let lead = format!("Label {name} asks for {asked}; this runner has no Docker");
                (name, asked, image, lead)
            }
        };
        if !kubernetes {
            return Err(PlacementError::NoContainer { label: name, asked });
        }
        let line = format!(
            "{lead}: the steps run in a pod of the job's namespace{}",
            in_pod(&image)
        );
        Ok((Placement::Pod { image }, line))
    }
}

/// A masker for the lines a source writes around the job: every secret value and the
/// source's own credentials (tokens) in `values`.
pub fn masker_for<'a>(values: impl IntoIterator<Item = &'a str>) -> Masker {
    let mut masker = Masker::new();
    for value in values {
        masker.add(value);
    }
    masker
}

/// Runs `assignment` (the engine starts and deletes its pod, if any) and cleans up after
/// it, whatever the job's end: the job's `folders` removed, each
/// said (or its failure warned about) through `say` as a runner line.
pub async fn run_and_clean_up(
    assignment: crate::assignment::Assignment,
    folders: TaskFolders,
    sink: &EventSink,
    cancel: CancellationToken,
    hard_cancel: CancellationToken,
    say: &(dyn Fn(String) + Sync),
) -> JobOutcome {
    let run =
        crate::assignment::run_assignment(assignment, sink.clone(), cancel, hard_cancel).await;
    if let Err(e) = folders.remove() {
        say(format!(
            "warning: cannot remove the job folder {}: {}",
            e.path.display(),
            e.source
        ));
    }
    run
}

/// Reports a job that cannot start: started, `error: <error>` as runner lines (masked),
/// finished as failed.
pub fn fail_before_start(
    sink: &EventSink,
    key: JobKey,
    masker: &Masker,
    error: &dyn std::fmt::Display,
    started: Instant,
) -> JobOutcome {
    let text = format!("error: {error}");
    let lines = text.lines().map(|line| masker.mask(line).into_owned());
    end_before_start(sink, key, Outcome::Failure, lines, started)
}

/// A job that ends before any step: started, `lines` as runner lines, finished with
/// `result`.
pub fn end_before_start(
    sink: &EventSink,
    key: JobKey,
    result: Outcome,
    lines: impl IntoIterator<Item = String>,
    started: Instant,
) -> JobOutcome {
    sink.send(Event::JobStarted { job: key.clone() });
    for line in lines {
        sink.send(Event::Log {
            job: key.clone(),
            step: None,
            kind: LogKind::Runner,
            line,
        });
    }
    let duration = started.elapsed();
    sink.send(Event::JobFinished {
        job: key,
        result,
        duration,
        outputs: Vec::new(),
    });
    JobOutcome {
        result,
        outputs: Vec::new(),
        duration,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_named_after_the_repository_and_removed_with_read_only_subfolders() {
        let parent = tempfile::tempdir().unwrap();
        let folders = TaskFolders::create(parent.path(), "7", "owner/app").unwrap();
        assert_eq!(folders.workspace, parent.path().join("7/app"));
        assert!(folders.workspace.is_dir() && folders.scratch.path().is_dir());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(folders.scratch.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "the scratch folder holds step scripts");
        let locked = folders.workspace.join("cache/mod");
        std::fs::create_dir_all(&locked).unwrap();
        std::fs::set_permissions(
            folders.workspace.join("cache"),
            std::fs::Permissions::from_mode(0o500),
        )
        .unwrap();
        let scratch = folders.scratch.path().to_path_buf();
        folders.remove().unwrap();
        assert!(!parent.path().join("7").exists() && !scratch.exists());

        // A left-over folder is cleared; an empty or dot repository name gives `workspace`.
        std::fs::create_dir_all(parent.path().join("8/old")).unwrap();
        let folders = TaskFolders::create(parent.path(), "8", "..").unwrap();
        assert_eq!(folders.workspace, parent.path().join("8/workspace"));
        assert!(!parent.path().join("8/old").exists());
        folders.remove().unwrap();
    }

    #[test]
    fn a_job_that_cannot_start_fails_with_masked_lines() {
        let (sink, mut events) = EventSink::channel();
        let key = JobKey {
            id: "build".into(),
            name: "build".into(),
        };
        let masker = masker_for(["s3cret"]);
        let outcome = fail_before_start(
            &sink,
            key,
            &masker,
            &"token s3cret refused\nsecond line",
            Instant::now(),
        );
        assert_eq!(outcome.result, Outcome::Failure);
        drop(sink);
        let mut lines = Vec::new();
        while let Ok(event) = events.try_recv() {
            if let Event::Log { line, .. } = event {
                lines.push(line);
            }
        }
        assert_eq!(lines, ["error: token *** refused", "second line"]);
    }

    #[test]
    fn container_labels_run_in_pods_with_kubernetes_and_are_refused_without() {
        let labels = Label::parse_list(
            "linux:host,ubuntu:docker://node:20,plain:docker,deb:lxc://debian:12,k8s:kubernetes://img:1",
        )
        .unwrap();
        let place = |runs_on: &[&str], kubernetes: bool| {
            let runs_on: Vec<String> = runs_on.iter().map(|s| s.to_string()).collect();
            Placement::for_runs_on(&runs_on, &labels, kubernetes)
        };
        let (host, line) = place(&["linux"], false).unwrap();
        assert!(matches!(host, Placement::Host) && line.contains("run on this host"));
        let (pod, line) = place(&["k8s"], false).unwrap();
        assert!(matches!(pod, Placement::Pod { image: Some(ref i) } if i == "img:1"));
        assert!(
            line.contains("pod of the job's namespace (img:1)"),
            "{line}"
        );
        // Without Kubernetes a container label never runs on the host.
        for runs_on in [&["ubuntu"][..], &["plain"], &["deb"], &["other"]] {
            let error = place(runs_on, false).unwrap_err().to_string();
            assert!(
                error.contains(":host") && error.contains("kubernetes"),
                "{runs_on:?}: {error}"
            );
        }
        let error = place(&["ubuntu"], false).unwrap_err().to_string();
        assert!(
            error.starts_with("label ubuntu asks for the Docker image node:20"),
            "{error}"
        );
        // With it, they run in a pod: the label's image, else the job image.
        let (pod, line) = place(&["ubuntu"], true).unwrap();
        assert!(matches!(pod, Placement::Pod { image: Some(ref i) } if i == "node:20"));
        assert!(line.contains("node:20") && line.contains("pod"), "{line}");
        for runs_on in [&["plain"][..], &["deb"], &["other"]] {
            let (pod, _) = place(runs_on, true).unwrap();
            assert!(matches!(pod, Placement::Pod { image: None }), "{runs_on:?}");
        }
        // A host-only runner places an unmatched job on the host, as act_runner does.
        let host_only = Label::parse_list("linux:host").unwrap();
        let (host, line) =
            Placement::for_runs_on(&["other".to_string()], &host_only, false).unwrap();
        assert!(matches!(host, Placement::Host) && line.contains("matches none"));
    }
}
