//! Docker actions: `uses: docker://IMAGE` and actions whose `action.yml` says
//! `runs.using: docker`, run as a container of the job's pod ([`crate::pod::container_step`])
//! the way actions/runner runs them (src/Runner.Worker/Handlers/ContainerActionHandler.cs
//! at 258d6c857db3):
//!
//! - the entrypoint is `runs.entrypoint` (for `docker://`, the `entrypoint` input), else
//!   the image's; the arguments are `runs.args`, each evaluated with the `inputs` context
//!   (for `docker://`, the `args` input split as a shell would), else the image's `CMD`;
//! - the environment is the step's, `runs.env` (evaluated with `inputs`; the step's own
//!   `env` wins), `INPUT_<NAME>` for every input, and the `/github/...` paths;
//! - `runs.pre-entrypoint` runs in the same image when the job starts, with the other
//!   actions' `pre` steps (`JobState::run_pres`), under `runs.pre-if` (default
//!   `always()`); a local action's never runs (GitHub's warning says so), and one inside a
//!   composite action runs right before its main entrypoint. `runs.post-entrypoint` runs
//!   when the job ends, as a post step under `runs.post-if` (default `always()`).
//!
//! An action whose `runs.image` is a `Dockerfile` is built first
//! ([`crate::image_steps::action_image`]: pushed to the action image repository, reused
//! while unchanged). A job whose steps run on this host runs them in a step pod of its
//! own ([`crate::step_pod`]); a runner without a cluster fails the step saying how to
//! give it one.

use std::path::Path;
use std::time::Duration;

use actions::{ActionManifest, Runs};

use super::action::ActionStepError;
use super::commands::AnnotationLevel;
use super::eval::string_object;
use super::events::{Outcome, StepKey};
use super::job::{Frame, JobState, PostStep};
use super::step::{ProcessOutcome, StepError, StepProcess};
use super::step_def::StepDef;
use crate::pod::docker_options::split_words;

/// What a Docker step runs, before its environment is completed.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DockerRun {
    pub image: String,
    pub entrypoint: Option<String>,
    pub args: Vec<String>,
    /// `runs.env` evaluated, then the `INPUT_*` variables.
    pub env: Vec<(String, String)>,
}

/// `runs:` of a Docker action, as `action.yml` writes it.
pub(super) struct DockerRuns<'a> {
    pub image: &'a str,
    pub entrypoint: Option<&'a str>,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub pre_entrypoint: Option<&'a str>,
    pub pre_if: Option<&'a str>,
    pub post_entrypoint: Option<&'a str>,
    pub post_if: Option<&'a str>,
    /// A `./path` action of the repository (its `pre-entrypoint` never runs).
    pub local: bool,
}

impl<'a> DockerRuns<'a> {
    /// The `runs:` of a Docker action's manifest (`None` for another kind); `local`: a
    /// `./path` action of the repository.
    pub(super) fn of(runs: &'a Runs, local: bool) -> Option<DockerRuns<'a>> {
        let Runs::Docker {
            image,
            entrypoint,
            args,
            env,
            pre_entrypoint,
            pre_if,
            post_entrypoint,
            post_if,
        } = runs
        else {
            return None;
        };
        Some(DockerRuns {
            image,
            entrypoint: entrypoint.as_deref(),
            args,
            env,
            pre_entrypoint: pre_entrypoint.as_deref(),
            pre_if: pre_if.as_deref(),
            post_entrypoint: post_entrypoint.as_deref(),
            post_if: post_if.as_deref(),
            local,
        })
    }
}

impl DockerRun {
    /// The same container running `pre-entrypoint` instead, without the arguments.
    fn pre(&self, pre: &str) -> DockerRun {
        DockerRun {
            entrypoint: Some(pre.to_string()),
            args: Vec::new(),
            ..self.clone()
        }
    }
}

/// `INPUT_<NAME>` as GitHub's runner names an input's variable.
pub(super) fn input_variables(inputs: &[(String, String)]) -> Vec<(String, String)> {
    inputs
        .iter()
        .map(|(k, v)| {
            (
                format!("INPUT_{}", k.replace(' ', "_").to_uppercase()),
                v.clone(),
            )
        })
        .collect()
}

impl JobState<'_> {
    /// `uses: docker://IMAGE` with `with: entrypoint` / `args`.
    pub(super) async fn run_docker_image(
        &mut self,
        frame: &Frame,
        def: &StepDef,
        key: &StepKey,
        image: &str,
        env: &[(String, String)],
        timeout: Option<Duration>,
    ) -> Result<ProcessOutcome, StepError> {
        let with = frame
            .scope
            .string_map(&def.with, &def.with_inserts)
            .map_err(StepError::evaluate("with"))?;
        let input = |name: &str| {
            with.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let args = match input("args") {
            Some(text) => split_words(&text).map_err(|e| ActionStepError::DockerArgs {
                uses: format!("docker://{image}"),
                message: e.to_string(),
            })?,
            None => Vec::new(),
        };
        let run = DockerRun {
            image: image.to_string(),
            entrypoint: input("entrypoint").filter(|e| !e.is_empty()),
            args,
            env: input_variables(&with),
        };
        self.run_container(
            frame,
            def,
            key,
            &format!("docker://{image}"),
            run,
            env,
            timeout,
        )
        .await
    }

    /// An action with `runs.using: docker`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_docker_action(
        &mut self,
        frame: &Frame,
        def: &StepDef,
        key: &StepKey,
        dir: &Path,
        uses: &str,
        runs: DockerRuns<'_>,
        inputs: &[(String, String)],
        env: &[(String, String)],
        timeout: Option<Duration>,
    ) -> Result<ProcessOutcome, StepError> {
        let Some(run) = self
            .docker_run(frame, key, dir, uses, &runs, inputs, timeout)
            .await?
        else {
            return Ok(ProcessOutcome {
                outcome: Some(Outcome::Cancelled),
                ..ProcessOutcome::default()
            });
        };
        let job_level = frame.action_path.is_none();
        match runs.pre_entrypoint {
            Some(_) if runs.local => {
                // As on GitHub, with its warning: a local action's files exist only once
                // the job's steps have run (a checkout), so its `pre` never runs.
                self.annotate(
                    Some(key),
                    AnnotationLevel::Warning,
                    &format!("`pre` execution is not supported for local action from '{uses}'"),
                );
            }
            // Ran when the job started (`run_pres`).
            Some(_) if job_level => {}
            Some(pre) => {
                // Inside a composite action: right before the main entrypoint.
                let mut scope = frame.scope.clone();
                scope.status = frame.status(self.cancelled());
                if scope
                    .condition(Some(runs.pre_if.unwrap_or("always()")))
                    .map_err(StepError::evaluate("pre-if"))?
                {
                    let pre_run = run.pre(pre);
                    let outcome = self
                        .run_container(frame, def, key, uses, pre_run, env, timeout)
                        .await?;
                    if outcome.outcome == Some(Outcome::Failure) {
                        return Ok(outcome);
                    }
                }
            }
            None => {}
        }
        let outcome = self
            .run_container(frame, def, key, uses, run.clone(), env, timeout)
            .await?;
        // `post-entrypoint` when the job ends, under `post-if`, as actions/runner runs a
        // container action's post stage.
        if let Some(post) = runs.post_entrypoint {
            let mut post_env = run.env.clone();
            post_env.extend(env.iter().cloned());
            self.register_post(PostStep {
                name: format!("Post {}", key.name),
                condition: runs.post_if.unwrap_or("always()").to_string(),
                program: post.to_string(),
                args: Vec::new(),
                env: post_env,
                cwd: self.working_directory(frame, def)?,
                action_id: key.id.clone(),
                image: Some(run.image.clone()),
            });
        }
        Ok(outcome)
    }

    /// A repository Docker action's `pre-entrypoint` at job start (see
    /// [`JobState::run_pres`]): in the action's image (built now when it is a
    /// `Dockerfile`), with its inputs and `runs.env`, without its arguments.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_docker_pre(
        &mut self,
        frame: &Frame,
        def: &StepDef,
        key: &StepKey,
        dir: &Path,
        uses: &str,
        manifest: &ActionManifest,
        with: &[(String, String)],
        env: &[(String, String)],
    ) -> Result<ProcessOutcome, StepError> {
        let Some(runs) = DockerRuns::of(&manifest.runs, false) else {
            return Ok(ProcessOutcome::default());
        };
        let Some(pre) = runs.pre_entrypoint else {
            return Ok(ProcessOutcome::default());
        };
        let inputs = self.action_inputs(frame, manifest, with, key)?;
        let Some(run) = self
            .docker_run(frame, key, dir, uses, &runs, &inputs, None)
            .await?
        else {
            return Ok(ProcessOutcome {
                outcome: Some(Outcome::Cancelled),
                ..ProcessOutcome::default()
            });
        };
        self.run_container(frame, def, key, uses, run.pre(pre), env, None)
            .await
    }

    /// What the action's main entrypoint runs: its image (built first from a
    /// `Dockerfile`; `None` when the job was cancelled meanwhile), `runs.args` and
    /// `runs.env` evaluated with the `inputs` context, and the `INPUT_*` variables.
    #[allow(clippy::too_many_arguments)]
    async fn docker_run(
        &mut self,
        frame: &Frame,
        key: &StepKey,
        dir: &Path,
        uses: &str,
        runs: &DockerRuns<'_>,
        inputs: &[(String, String)],
        timeout: Option<Duration>,
    ) -> Result<Option<DockerRun>, StepError> {
        if self.pod.is_none() && self.engine.pods.is_none() {
            // Refused before an image is built for it.
            return Err(ActionStepError::DockerNeedsPod {
                job: self.key.id.clone(),
                step: key.name.clone(),
                uses: uses.to_string(),
                remedy: self.engine.cluster_remedy.clone(),
            }
            .into());
        }
        let image = match runs.image.strip_prefix("docker://") {
            Some(image) => image.to_string(),
            None => match self
                .action_image(frame, key, uses, dir, runs.image, timeout)
                .await?
            {
                Some(image) => image,
                None => return Ok(None),
            },
        };
        let mut scope = frame.scope.clone();
        scope.set(
            "inputs",
            string_object(inputs.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        );
        let mut args = Vec::with_capacity(runs.args.len());
        for arg in runs.args {
            args.push(
                scope
                    .interpolate(arg)
                    .map_err(StepError::evaluate("runs.args"))?,
            );
        }
        let mut env = Vec::new();
        for (k, v) in runs.env {
            let value = scope
                .interpolate(v)
                .map_err(StepError::evaluate("runs.env"))?;
            env.push((k.clone(), value));
        }
        env.extend(input_variables(inputs));
        Ok(Some(DockerRun {
            image,
            entrypoint: runs.entrypoint.map(str::to_string),
            args,
            env,
        }))
    }

    /// Runs `run` in the job's pod: its environment under the step's (`env`), the step's
    /// timeout, the usual output handling.
    #[allow(clippy::too_many_arguments)]
    async fn run_container(
        &mut self,
        frame: &Frame,
        def: &StepDef,
        key: &StepKey,
        uses: &str,
        run: DockerRun,
        env: &[(String, String)],
        timeout: Option<Duration>,
    ) -> Result<ProcessOutcome, StepError> {
        // The step's own `env` wins over `runs.env`, as in actions/runner.
        let mut all_env = run.env.clone();
        all_env.extend(env.iter().cloned());
        let process = StepProcess {
            program: run.entrypoint.clone().unwrap_or_default(),
            args: run.args.clone(),
            env: all_env,
            cwd: self.working_directory(frame, def)?,
            timeout,
        };
        let extra = vec![(
            "GITHUB_ACTION_REPOSITORY".to_string(),
            uses.split('@').next().unwrap_or(uses).to_string(),
        )];
        self.run_container_process(frame, key, process, &extra, &run.image, uses)
            .await
    }
}

/// A Docker step's container from the step process in the pod's terms: the process's
/// program (if any) as the entrypoint, its environment with actions/runner's `/github/...`
/// paths over the job's, and the image's own `PATH`.
pub(super) fn container_step(
    process: &crate::pod::PodProcess,
    image: &str,
    key: &StepKey,
) -> crate::pod::container_step::ContainerStep {
    let mut env: Vec<(String, String)> = Vec::new();
    for (k, v) in process
        .env
        .iter()
        .cloned()
        .chain(crate::pod::container_step::container_paths_env())
    {
        if k != "PATH" {
            super::eval::upsert(&mut env, k, v);
        }
    }
    crate::pod::container_step::ContainerStep {
        name: format!("step-{}", key.index),
        image: image.to_string(),
        entrypoint: Some(process.program.clone()).filter(|p| !p.is_empty()),
        args: process.args.clone(),
        env,
        workspace: process.workspace.clone(),
        timeout: process.timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_become_github_style_variables() {
        let vars = input_variables(&[("who to greet".into(), "Mona".into())]);
        assert_eq!(
            vars,
            [("INPUT_WHO_TO_GREET".to_string(), "Mona".to_string())]
        );
    }
}
