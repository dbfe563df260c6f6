//! A step process of a job whose steps run in a pod (see [`crate::pod`]): the
//! process the engine would start on the host, in the pod's terms. The environment loses
//! the runner's own process environment (the image brings its own `HOME`, ...), host
//! paths of the job become the pod's (`/__w/...`, `/__t`), `PATH` is the `GITHUB_PATH`
//! additions before the image's usual folders, a shell found on the host is called by
//! its name, and a script under the job's temp folder travels along with the step.
//!
//! `uses:` in a job pod: `actions/checkout` fetches on this host (git, as for host jobs)
//! and the workspace is then copied into the pod; the built-in image builds copy the
//! pod's workspace out and build on the runner; JavaScript and composite actions run in
//! the pod, their folder copied in once per job (`node` is the image's).

use std::path::Path;
use std::sync::Arc;

use actions::{ActionRef, Builtin};

use super::engine::CheckoutMode;
use super::events::{LogKind, StepKey};
use super::job::{Frame, JobState};
use super::step::{ProcessOutcome, StepError};
use super::step_def::StepDef;
use crate::pod::{
    JobPod, POD_DEFAULT_PATH, PodError, PodPaths, PodProcess, PodStepError, StepFile, StepFilesBack,
};
use hr_process::host::ProcessSpec;

impl JobState<'_> {
    /// The job pod and `spec` in its terms, when the job's steps run in a pod.
    pub(super) fn pod_step(
        &self,
        spec: &ProcessSpec,
    ) -> Result<Option<(Arc<JobPod>, PodProcess)>, PodStepError> {
        let Some(pod) = &self.pod else {
            return Ok(None);
        };
        let paths = PodPaths::of(
            pod,
            &self.engine.run.workspace,
            &self.temp,
            &self.engine.tool_cache(),
        );
        let process = pod_process(
            spec,
            &self.step_env.env,
            &self.engine.host_env,
            &paths,
            &self.path_prepends,
        )?;
        Ok(Some((Arc::clone(pod), process)))
    }

    /// Writes the `GITHUB_*` files that came back with the exec of the step `key` over
    /// the job's host copies, where the engine reads them. Without them (the exec ended
    /// before its shell wrote them) they count as empty, which a runner line says.
    pub(super) fn store_pod_step_files(
        &self,
        key: &StepKey,
        files: StepFilesBack,
    ) -> Result<(), StepError> {
        match files {
            StepFilesBack::Files(files) => Ok(store_step_files(&self.temp, &files)?),
            StepFilesBack::Missing => {
                self.note(
                    Some(key),
                    LogKind::Runner,
                    "The step's exec in the job pod ended before its GITHUB_* files came back (the step was killed, or the connection was lost): GITHUB_ENV, GITHUB_OUTPUT, GITHUB_PATH, GITHUB_STATE and GITHUB_STEP_SUMMARY count as empty for this step",
                );
                Ok(())
            }
            StepFilesBack::Malformed(e) => Err(PodStepError::from(e).into()),
        }
    }

    /// Whether a `uses:` step of a pod job needs [`Self::run_uses_in_pod`]: checkout of a
    /// server's job (`exec` copied its workspace into the pod when the pod started) and
    /// the built-in builds, which run on the runner; JavaScript and composite actions run in the
    /// pod through the usual path (their folder provided by [`Self::action_in_pod`]).
    pub(super) fn served_on_runner_for_pod(&self, uses: &str) -> bool {
        self.pod.is_some()
            && (actions::image_build::is_builtin_build_action(uses).is_some()
                || (self.engine.checkout == CheckoutMode::Fetch
                    && ActionRef::parse(uses)
                        .ok()
                        .is_some_and(|a| matches!(actions::builtin(&a), Some(Builtin::Checkout)))))
    }

    /// In a pod job, copies the action folder `dir` into the pod (once per job); its host
    /// path then maps to the pod's in every step process of the job.
    pub(super) async fn action_in_pod(
        &mut self,
        dir: &Path,
        key: &StepKey,
    ) -> Result<(), PodError> {
        let Some(pod) = self.pod.clone() else {
            return Ok(());
        };
        let workspace = &self.engine.run.workspace;
        // A local action (`./path`) is in the workspace, which the pod has.
        if dir.starts_with(workspace) {
            return Ok(());
        }
        let known = pod.copied().len();
        let in_pod = pod.provide_action(dir).await?;
        if pod.copied().len() > known {
            self.note(
                Some(key),
                LogKind::Runner,
                &format!(
                    "Copied the action {} into the job pod at {in_pod}",
                    dir.display()
                ),
            );
        }
        Ok(())
    }

    /// A `uses:` step of a job whose steps run in a pod (see the module docs).
    pub(super) async fn run_uses_in_pod(
        &mut self,
        frame: &Frame,
        def: &StepDef,
        key: &StepKey,
        uses: &str,
        timeout: Option<std::time::Duration>,
    ) -> Result<ProcessOutcome, StepError> {
        let checkout = ActionRef::parse(uses)
            .ok()
            .is_some_and(|a| matches!(actions::builtin(&a), Some(Builtin::Checkout)));
        let Some(pod) = self.pod.clone() else {
            return Err(PodStepError::NoPod {
                uses: uses.to_string(),
            }
            .into());
        };
        if let Some(kind) = actions::image_build::is_builtin_build_action(uses) {
            // The build runs on the runner as for host jobs, from the pod's workspace as
            // it is now (copied out over the host's mirror of it).
            let workspace = self.engine.run.workspace.clone();
            let paths = PodPaths::new(&workspace, &self.temp);
            let received = if self.engine.checkout == CheckoutMode::InPlace {
                // `exec`: the workspace is the user's repository, never emptied: the pod's
                // files go over it and what only it has (what git ignores, left out of
                // the pod's copy) stays.
                let staging = self.temp.join("_job_pod_workspace");
                let received = pod.copy_out(&paths.workspace(), &staging).await?;
                let merged = crate::step_pod::merge_into(&staging, &workspace);
                let _ = std::fs::remove_dir_all(&staging);
                merged.map_err(|e| PodError::Exec {
                    phase: "copying the job pod's workspace to the runner for the build",
                    message: format!("cannot write into {}: {e}", workspace.display()),
                })?;
                received
            } else {
                pod.copy_out(&paths.workspace(), &workspace).await?
            };
            self.note(
                Some(key),
                LogKind::Runner,
                &format!(
                    "Copied the job pod's workspace {} to the runner for the build ({received} bytes)",
                    paths.workspace()
                ),
            );
            return self
                .run_builtin_build(frame, def, key, kind, uses, timeout)
                .await;
        }
        if !checkout || self.engine.checkout != CheckoutMode::Fetch {
            return Err(PodStepError::RunnerOnly {
                uses: uses.to_string(),
            }
            .into());
        }
        let outcome = self.run_checkout(frame, def, key).await?;
        let workspace = &self.engine.run.workspace;
        let paths = PodPaths::new(workspace, &self.temp);
        let sent = pod.copy_into(workspace, &paths.workspace()).await?;
        self.note(
            Some(key),
            LogKind::Runner,
            &format!(
                "Copied the workspace into the job pod at {} ({sent} bytes)",
                paths.workspace()
            ),
        );
        Ok(outcome)
    }
}

/// The unspecified shell in a pod: `bash -e` when the image has bash, else `sh -e`.
const DEFAULT_SHELL: &str =
    "if command -v bash >/dev/null 2>&1; then exec bash -e \"$1\"; fi; exec sh -e \"$1\"";

/// `spec` over `base` (the job's step environment), for the pod.
pub(super) fn pod_process(
    spec: &ProcessSpec,
    base: &[(String, String)],
    host_env: &[(String, String)],
    paths: &PodPaths,
    path_prepends: &[String],
) -> Result<PodProcess, PodStepError> {
    let mut env: Vec<(String, String)> = base
        .iter()
        .filter(|entry| !host_env.contains(entry))
        .chain(spec.env.iter())
        .filter(|(k, _)| k != "PATH")
        .map(|(k, v)| (k.clone(), paths.to_pod(v)))
        .collect();
    let mut path: Vec<String> = path_prepends.iter().map(|p| paths.to_pod(p)).collect();
    path.push(POD_DEFAULT_PATH.to_string());
    env.push(("PATH".into(), path.join(":")));
    let temp = paths.temp_host.display().to_string();
    let mut files = Vec::new();
    for arg in std::iter::once(&spec.program).chain(&spec.args) {
        if let Some(rel) = arg.strip_prefix(&temp).map(|r| r.trim_start_matches('/'))
            && !rel.is_empty()
            && Path::new(arg).is_file()
        {
            let bytes = std::fs::read(arg).map_err(|source| PodStepError::ReadFile {
                file: arg.clone(),
                source,
            })?;
            files.push((rel.to_string(), bytes));
        }
    }
    let program = if spec.program.starts_with(&temp) {
        paths.to_pod(&spec.program)
    } else if spec.program.starts_with('/') {
        // A shell the engine found on this host: the pod's own, by name.
        Path::new(&spec.program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| spec.program.clone())
    } else {
        spec.program.clone()
    };
    let mut args: Vec<String> = spec.args.iter().map(|a| paths.to_pod(a)).collect();
    let mut program = program;
    // No `shell:` (the engine's `bash -e {0}` because this host has bash): GitHub's rule,
    // bash if the image has it, else sh, decided in the pod.
    if program == "bash" && args.len() == 2 && args[0] == "-e" {
        let script = args.pop().unwrap_or_default();
        program = "sh".to_string();
        args = vec![
            "-c".to_string(),
            DEFAULT_SHELL.to_string(),
            "sh".to_string(),
            script,
        ];
    }
    Ok(PodProcess {
        program,
        args,
        env,
        cwd: paths.to_pod(&spec.cwd.display().to_string()),
        workspace: paths.workspace(),
        files,
        timeout: spec.timeout,
    })
}

/// Writes the `GITHUB_*` files a step wrote in the pod over the job's host copies (the
/// same names under `<temp>/_files`), where the engine reads them as after a host step.
/// A file that was not sent (over [`crate::pod::SENT_UP_TO`] bytes) becomes a sparse file
/// of its size, which the engine drops unread with its usual annotation.
fn store_step_files(temp: &Path, files: &[StepFile]) -> Result<(), PodStepError> {
    for file in files {
        let path = temp.join("_files").join(&file.name);
        let stored = std::fs::write(&path, &file.bytes).and_then(|()| {
            if (file.bytes.len() as u64) < file.size {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len(file.size)?;
            }
            Ok(())
        });
        if let Err(source) = stored {
            return Err(PodStepError::StoreFile { path, source });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn host_step_becomes_a_pod_step() {
        let dir = tempfile::tempdir().unwrap();
        let temp = dir.path().join("tmp");
        std::fs::create_dir_all(&temp).unwrap();
        let script = temp.join("step.sh");
        std::fs::write(&script, "echo hi\n").unwrap();
        let workspace = dir.path().join("repo");
        let paths = PodPaths::new(&workspace, &temp);
        let spec = ProcessSpec {
            program: "/usr/bin/bash".into(),
            args: vec!["-e".into(), script.display().to_string()],
            env: vec![
                (
                    "GITHUB_ENV".into(),
                    format!("{}/_files/set_env", temp.display()),
                ),
                ("PATH".into(), "/host/bin".into()),
            ],
            cwd: workspace.join("sub"),
            timeout: None,
        };
        let base = vec![
            ("HOME".to_string(), "/root".to_string()),
            ("CI".to_string(), "true".to_string()),
        ];
        let host = vec![("HOME".to_string(), "/root".to_string())];
        let prepends = vec![format!("{}/bin", workspace.display())];
        let p = pod_process(&spec, &base, &host, &paths, &prepends).unwrap();
        // The default shell is chosen in the pod (bash if there, else sh).
        assert_eq!(p.program, "sh");
        assert_eq!(p.args[0], "-c");
        assert_eq!(p.args[3], "/__t/step.sh");
        for (path, expected) in [("/usr/bin:/bin", "bash"), ("/nonexistent", "sh")] {
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(
                    p.args[1]
                        .replace("exec bash -e", "echo bash; exit; ")
                        .replace("exec sh -e", "echo sh; exit; "),
                )
                .env("PATH", path)
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                expected,
                "{path}"
            );
        }
        assert_eq!(p.cwd, "/__w/repo/sub");
        assert_eq!(
            p.files,
            vec![("step.sh".to_string(), b"echo hi\n".to_vec())]
        );
        assert!(!p.env.iter().any(|(k, _)| k == "HOME"));
        assert!(p.env.contains(&("CI".into(), "true".into())));
        assert!(
            p.env
                .contains(&("GITHUB_ENV".into(), "/__t/_files/set_env".into()))
        );
        let path = &p.env.iter().rfind(|(k, _)| k == "PATH").unwrap().1;
        assert!(path.starts_with("/__w/repo/bin:/usr/local/sbin"), "{path}");
        let _ = PathBuf::new();
    }

    #[test]
    fn files_from_the_pod_replace_the_host_copies() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("_files")).unwrap();
        let file = |name: &str, size: u64, bytes: &[u8]| StepFile {
            name: name.into(),
            size,
            bytes: bytes.to_vec(),
        };
        // A file over the limit came as its size alone: the host copy has that size, so
        // the engine drops it with its usual annotation (and never reads the zeros).
        let big = crate::pod::SENT_UP_TO + 1;
        let files = [file("set_env", 4, b"A=1\n"), file("set_output", big, b"")];
        store_step_files(dir.path(), &files).unwrap();
        let host = dir.path().join("_files");
        assert_eq!(std::fs::read(host.join("set_env")).unwrap(), b"A=1\n");
        assert_eq!(
            std::fs::metadata(host.join("set_output")).unwrap().len(),
            big
        );
    }
}
