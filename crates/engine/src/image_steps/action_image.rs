//! The image of a Docker action built from a `Dockerfile` (`runs.image: Dockerfile`):
//! built from the action's folder with the run's builder (Kaniko on the cluster, or a
//! local builder) and pushed to the action image repository (`--action-image-repo`, the
//! daemon's `kubernetes.cache_repo`) as `<repo>:<action>`, with build avoidance on: the
//! next run of the same action finds an image built from the same inputs in the registry
//! and reuses it instead of building again.

use std::path::Path;
use std::time::Duration;

use actions::image_build::{BuildRequest, OutputsStyle, Variant, VariantRequest};

use super::{BuildFailure, DEFAULT_BUILD_TIMEOUT, ImageStepError};
use crate::action::ActionStepError;
use crate::events::{LogKind, StepKey};
use crate::job::{Frame, JobState};
use crate::step::StepError;
use hr_image::BuildJob;

/// The tag of an action's image: its reference as a Docker tag (`acme/greet@v1` →
/// `acme-greet-v1`, `./tools/greet` → `local-tools-greet`).
pub fn action_tag(uses: &str) -> String {
    let base = match uses.strip_prefix("./") {
        Some(local) => format!("local-{local}"),
        None => uses.to_string(),
    };
    let mut tag: String = base
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    tag = tag.trim_matches(|c| c == '-' || c == '.').to_string();
    tag.truncate(120);
    if tag.is_empty() {
        "action".to_string()
    } else {
        tag
    }
}

impl JobState<'_> {
    /// The image of the action `uses` in `dir`, built from `dockerfile` (or found built):
    /// `repo@digest` when the builder reported the digest, else `repo:tag`; `None` when
    /// the step was cancelled while it built.
    pub(crate) async fn action_image(
        &mut self,
        frame: &Frame,
        key: &StepKey,
        uses: &str,
        dir: &Path,
        dockerfile: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<String>, StepError> {
        let Some(repo) = self.engine.builds.settings.action_image_repo.clone() else {
            return Err(ActionStepError::DockerfileAction {
                uses: uses.to_string(),
                dockerfile: dir.join(dockerfile).display().to_string(),
            }
            .into());
        };
        let tag = format!("{repo}:{}", action_tag(uses));
        let request = BuildRequest {
            context: dir.to_path_buf(),
            variants: vec![VariantRequest {
                variant: Variant::Docker,
                dockerfile: dir.join(dockerfile).display().to_string(),
                tags: vec![tag.clone()],
            }],
            build_args: Vec::new(),
            target: None,
            labels: Vec::new(),
            push: true,
            cache: true,
            skip_unchanged: true,
            outputs_for: OutputsStyle::Shim,
        };
        let job = BuildJob {
            request,
            workspace: dir.to_path_buf(),
            sha: frame.github_sha(),
            task: self.engine.builds.task_ids(&self.key.id),
            timeout: timeout.unwrap_or(DEFAULT_BUILD_TIMEOUT),
            insecure_registries: self.engine.builds.settings.insecure_registries.clone(),
        };
        self.note(
            Some(key),
            LogKind::Runner,
            &format!("{uses}: building its image {tag} from {dockerfile} (reused when unchanged)"),
        );
        let token = self.process_token(frame);
        let outcome = match self.build_logged(key, &job, &token).await {
            Ok(outcome) => outcome,
            Err(BuildFailure::Cancelled) => return Ok(None),
            Err(BuildFailure::Failed(source)) => {
                return Err(ImageStepError::Failed {
                    uses: uses.to_string(),
                    source,
                }
                .into());
            }
        };
        let image = outcome
            .images
            .first()
            .filter(|i| !i.digest.is_empty())
            .map(|i| format!("{repo}@{}", i.digest))
            .unwrap_or(tag);
        self.note(
            Some(key),
            LogKind::Runner,
            &format!("{uses}: image {image}"),
        );
        Ok(Some(image))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_references_become_tags() {
        assert_eq!(action_tag("acme/greet@v1"), "acme-greet-v1");
        assert_eq!(action_tag("./tools/Greet"), "local-tools-greet");
        assert_eq!(action_tag("@@"), "action");
        assert!(action_tag(&"x".repeat(300)).len() <= 128);
    }
}
