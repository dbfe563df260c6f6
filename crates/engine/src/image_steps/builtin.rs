//! A `uses: docker/build-push-action@*` or `uses: hybrid-runner/build@*` step: its `with:`
//! evaluated as for any action, lowered to a `BuildRequest` (the sha is `github.sha`;
//! whether the k8s Dockerfile exists is checked in the workspace), built on the run's
//! builder under the step's cancel token and timeout, the builder's lines streamed into the
//! step log (masked, prefixed with the variant), and the outputs set per `OutputsStyle`.

use std::sync::Arc;
use std::time::Duration;

use actions::image_build::{
    BuildRequest, BuiltinBuild, OutputsStyle, TagTemplates, dual_k8s_dockerfile,
    from_build_push_inputs, from_dual_inputs,
};

use super::outputs::step_outputs;
use super::{BuildFailure, DEFAULT_BUILD_TIMEOUT, ImageStepError, log_line};
use crate::events::{LogKind, Outcome, StepKey};
use crate::job::{Frame, JobState};
use crate::step::{ProcessOutcome, StepError};
use crate::step_def::StepDef;
use hr_image::registry::{ImageRef, Manifest};
use hr_image::{BuildJob, BuildLog, BuildLogLine, BuildOutcome};

/// `with:` -> the request, or the lowering's message (with its remedy).
pub fn lower(
    kind: BuiltinBuild,
    with: &[(String, String)],
    sha: &str,
    workspace: &std::path::Path,
) -> Result<BuildRequest, ImageStepError> {
    let lowered = match kind {
        BuiltinBuild::BuildPush => from_build_push_inputs(with),
        BuiltinBuild::Dual => {
            let k8s = workspace.join(dual_k8s_dockerfile(with)).is_file();
            from_dual_inputs(with, sha, k8s, &TagTemplates::default())
        }
    };
    Ok(lowered?)
}

impl JobState<'_> {
    /// Runs a built-in build action step.
    pub(crate) async fn run_builtin_build(
        &mut self,
        frame: &Frame,
        def: &StepDef,
        key: &StepKey,
        kind: BuiltinBuild,
        uses: &str,
        timeout: Option<Duration>,
    ) -> Result<ProcessOutcome, StepError> {
        let with = frame
            .scope
            .string_map(&def.with, &def.with_inserts)
            .map_err(StepError::evaluate("with"))?;
        let sha = frame.github_sha();
        let workspace = self.engine.run.workspace.clone();
        let request = lower(kind, &with, &sha, &workspace)?;
        let style = request.outputs_for;
        let push = request.push;
        let job = BuildJob {
            request,
            workspace,
            sha,
            task: self.engine.builds.task_ids(&self.key.id),
            timeout: timeout.unwrap_or(DEFAULT_BUILD_TIMEOUT),
            insecure_registries: self.engine.builds.settings.insecure_registries.clone(),
        };
        self.note(
            Some(key),
            LogKind::Runner,
            &format!("{uses}: served by the runner ({})", describe(&job)),
        );
        let token = self.process_token(frame);
        let outcome = match self.build_logged(key, &job, &token).await {
            Ok(outcome) => outcome,
            Err(BuildFailure::Cancelled) => {
                self.note(Some(key), LogKind::Runner, "the build was cancelled");
                return Ok(ProcessOutcome {
                    outcome: Some(Outcome::Cancelled),
                    ..ProcessOutcome::default()
                });
            }
            Err(BuildFailure::Failed(source)) => {
                return Err(ImageStepError::Failed {
                    uses: uses.to_string(),
                    source,
                }
                .into());
            }
        };
        for image in &outcome.images {
            let digest = if image.digest.is_empty() {
                "digest unknown"
            } else {
                image.digest.as_str()
            };
            let verb = if push { "pushed" } else { "built" };
            self.note(
                Some(key),
                LogKind::Stdout,
                &format!(
                    "[{}] {verb} {} ({digest})",
                    image.variant,
                    image.tags.join(", ")
                ),
            );
        }
        if let Some(shim) = &self.docker_shim {
            shim.record_build(&job, &outcome).await;
        }
        let manifest = if style == OutputsStyle::BuildPush && push {
            self.read_back(key, &outcome).await
        } else {
            None
        };
        Ok(ProcessOutcome {
            outcome: Some(Outcome::Success),
            outputs: step_outputs(style, &outcome, manifest.as_ref()),
            state: Vec::new(),
        })
    }

    /// Runs `job` on the run's builder, its log lines becoming the step's output.
    pub(crate) async fn build_logged(
        &mut self,
        key: &StepKey,
        job: &BuildJob,
        token: &tokio_util::sync::CancellationToken,
    ) -> Result<BuildOutcome, BuildFailure> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<BuildLogLine>();
        let log = BuildLog::new(move |line| {
            let _ = tx.send(line);
        });
        let builds = self.engine.builds.clone();
        let result = {
            let build = builds.build(job, &log, token);
            tokio::pin!(build);
            loop {
                tokio::select! {
                    result = &mut build => break result,
                    Some(line) = rx.recv() => self.note(Some(key), LogKind::Stdout, &log_line(&line)),
                }
            }
        };
        drop(log);
        while let Ok(line) = rx.try_recv() {
            self.note(Some(key), LogKind::Stdout, &log_line(&line));
        }
        result
    }

    /// The first image's manifest from its registry (for `imageid` and `metadata`); a
    /// registry that cannot be read leaves them out, with a warning.
    async fn read_back(&self, key: &StepKey, outcome: &BuildOutcome) -> Option<Manifest> {
        let image = outcome.images.first()?;
        let tag = image.tags.first()?;
        let mut reference = ImageRef::parse(tag).ok()?;
        if !image.digest.is_empty() {
            reference = reference.with_reference(&image.digest);
        }
        let registry = self.engine.builds.registry().await;
        let read = match registry {
            Ok(client) => client.manifest(&reference).await.map_err(Arc::new),
            Err(e) => Err(e),
        };
        match read {
            Ok(manifest) => Some(manifest),
            Err(e) => {
                self.note(
                    Some(key),
                    LogKind::Runner,
                    &format!("warning: output `imageid` is left empty: {e}"),
                );
                None
            }
        }
    }
}

/// `2 images (docker, k8s) from Dockerfile, Dockerfile.k8s, push`.
fn describe(job: &BuildJob) -> String {
    let variants: Vec<String> = job
        .request
        .variants
        .iter()
        .map(|v| format!("{} from {}", v.variant, v.dockerfile))
        .collect();
    format!(
        "{}; context {}; {}",
        variants.join(", "),
        job.request.context.display(),
        if job.request.push { "push" } else { "no push" }
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use actions::image_build::Variant;

    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_k8s_variant_follows_the_file_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let inputs = with(&[("image", "127.0.0.1:5000/app")]);
        let request = lower(BuiltinBuild::Dual, &inputs, "abc123", dir.path()).unwrap();
        assert_eq!(request.variants.len(), 1);
        std::fs::write(dir.path().join("Dockerfile.k8s"), "FROM scratch\n").unwrap();
        let request = lower(BuiltinBuild::Dual, &inputs, "abc123", dir.path()).unwrap();
        let variants: Vec<Variant> = request.variants.iter().map(|v| v.variant).collect();
        assert_eq!(variants, vec![Variant::Docker, Variant::K8s]);
        assert!(
            request.variants[1]
                .tags
                .contains(&"127.0.0.1:5000/app:k8s-abc123".to_string())
        );
    }

    #[test]
    fn input_errors_keep_the_lowering_message_and_remedy() {
        let dir = tempfile::tempdir().unwrap();
        let error = lower(
            BuiltinBuild::BuildPush,
            &with(&[("platforms", "linux/s390x,linux/arm64")]),
            "abc",
            dir.path(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("`platforms` is not supported"), "{error}");
        assert!(error.contains("remove `platforms`"), "{error}");
    }
}
