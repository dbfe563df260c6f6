//! `uses:` steps: built-in actions the runner serves itself (checkout; the image builds in
//! [`crate::image_steps::builtin`]; `hybrid-runner/deploy` in [`crate::deploy_step`], on
//! the runner even in a pod job), local and remote composite
//! actions (nested, with `inputs` and `outputs`), node actions (`node20`/`node24` through
//! the host's `node`, with `pre` and `post`), and Docker actions (`docker_action`,
//! in the job's pod).

use std::path::{Path, PathBuf};
use std::time::Duration;

use actions::{ActionManifest, ActionRef, Builtin, Runs};
use workflows::expression::{ExprError, Object, Value};

use super::commands::AnnotationLevel;
use super::docker_action::DockerRuns;
use super::eval::{string_object, upsert};
use super::events::{LogKind, Outcome, StepKey};
use super::job::{Frame, JobState, PostStep, env_value};
use super::step::{ProcessOutcome, StepError, StepProcess};
use super::step_def::StepDef;

/// How deep composite actions may nest before the run is stopped (GitHub allows 9).
const MAX_COMPOSITE_DEPTH: usize = 9;

/// Why a `uses:` step cannot run its action (the action's own failures, as opposed to the
/// step's, which are [`StepError`]s).
#[derive(Debug, thiserror::Error)]
pub enum ActionStepError {
    /// The reference, the action's fetch or its `action.yml`.
    #[error(transparent)]
    Action(#[from] actions::ActionError),
    #[error(
        "job '{job}' step '{step}' uses {uses}, a Docker action: Docker actions run as containers in a pod, and this runner has no Kubernetes cluster; {remedy}, or replace the step with a `run:` step or a JavaScript/composite action"
    )]
    DockerNeedsPod {
        job: String,
        step: String,
        uses: String,
        /// How to give the runner a cluster (`exec --kubeconfig`, the daemon's section).
        remedy: String,
    },
    #[error(
        "{uses} is a Docker action built from {dockerfile}, and this runner has no repository to push its image to: give `exec` --action-image-repo REGISTRY/NAME, or the daemon's config kubernetes.cache_repo"
    )]
    DockerfileAction { uses: String, dockerfile: String },
    #[error("{uses}: the `args` input cannot be split into arguments: {message}")]
    DockerArgs { uses: String, message: String },
    /// The action cache's worker thread ended before the action was there.
    #[error("fetching {uses} stopped: {source}")]
    FetchStopped {
        uses: String,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("{uses}: a Docker image needs a container backend")]
    DockerReference { uses: String },
    #[error("{uses} is a JavaScript action ({using}) and needs `node` on PATH; install Node.js")]
    NoNode { uses: String, using: String },
    #[error("{uses}: unsupported `using: {using}`; {} run on the host's node", actions::NODE_VERSIONS.join(", "))]
    UnsupportedNode { uses: String, using: String },
    #[error("default of input '{name}': {source}")]
    InputDefault {
        name: String,
        #[source]
        source: ExprError,
    },
    #[error(
        "{uses}: composite actions nest more than {} levels deep; an action may be calling itself",
        MAX_COMPOSITE_DEPTH
    )]
    TooDeep { uses: String },
    #[error("{uses}: output '{name}': {source}")]
    Output {
        uses: String,
        name: String,
        #[source]
        source: ExprError,
    },
}

impl JobState<'_> {
    pub(super) async fn run_uses(
        &mut self,
        frame: &Frame,
        def: &StepDef,
        key: &StepKey,
        env: &[(String, String)],
        timeout: Option<Duration>,
    ) -> Result<ProcessOutcome, StepError> {
        let uses = frame
            .scope
            .interpolate(def.uses.as_deref().unwrap_or_default())
            .map_err(StepError::evaluate("uses"))?;
        if actions::deploy_action::is_builtin_deploy_action(&uses) {
            return self
                .run_builtin_deploy(frame, def, key, &uses, timeout)
                .await;
        }
        if self.served_on_runner_for_pod(&uses) {
            return self.run_uses_in_pod(frame, def, key, &uses, timeout).await;
        }
        if let Some(kind) = actions::image_build::is_builtin_build_action(&uses) {
            return self
                .run_builtin_build(frame, def, key, kind, &uses, timeout)
                .await;
        }
        let action = ActionRef::parse(&uses).map_err(ActionStepError::from)?;
        if let Some(Builtin::Checkout) = actions::builtin(&action) {
            if self.engine.checkout == super::engine::CheckoutMode::Fetch {
                return self.run_checkout(frame, def, key).await;
            }
            self.note(
                Some(key),
                LogKind::Runner,
                &format!(
                    "{uses}: served by the runner: the workspace {} already is the repository",
                    self.engine.run.workspace.display()
                ),
            );
            return Ok(ProcessOutcome::default());
        }
        if let ActionRef::Docker { image } = &action {
            return self
                .run_docker_image(frame, def, key, image, env, timeout)
                .await;
        }
        let dir = self.action_dir(&action, &uses).await?;
        let manifest = actions::load_manifest(&dir).map_err(ActionStepError::from)?;
        if matches!(action, ActionRef::Remote { .. }) {
            self.open_ghes_gate(&dir, &manifest, key);
        }
        self.action_in_pod(&dir, key).await?;
        let with = frame
            .scope
            .string_map(&def.with, &def.with_inserts)
            .map_err(StepError::evaluate("with"))?;
        let inputs = self.action_inputs(frame, &manifest, &with, key)?;
        match &manifest.runs {
            Runs::Composite { steps } => Ok(self
                .run_composite(frame, &manifest, steps, &dir, &uses, inputs, env, key)
                .await?),
            Runs::Node {
                using,
                main,
                pre,
                pre_if,
                post,
                post_if,
            } => {
                let node = NodeAction {
                    using,
                    main,
                    pre: pre.as_deref(),
                    pre_if: pre_if.as_deref(),
                    post: post.as_deref(),
                    post_if: post_if.as_deref(),
                    local: matches!(action, ActionRef::Local { .. }),
                };
                self.run_node(frame, def, key, &dir, &uses, node, inputs, env, timeout)
                    .await
            }
            Runs::Docker { .. } => {
                let local = matches!(action, ActionRef::Local { .. });
                let Some(runs) = DockerRuns::of(&manifest.runs, local) else {
                    return Ok(ProcessOutcome::default());
                };
                self.run_docker_action(frame, def, key, &dir, &uses, runs, &inputs, env, timeout)
                    .await
            }
        }
    }

    /// Where an action's files are: the workspace for `./path`, the action cache (fetched
    /// unless `--offline`) for `owner/repo[/path]@ref`.
    async fn action_dir(&self, action: &ActionRef, uses: &str) -> Result<PathBuf, ActionStepError> {
        let (cache, workspace) = (self.engine.cache.clone(), self.engine.run.workspace.clone());
        let action = action.clone();
        tokio::task::spawn_blocking(move || cache.locate_action(&action, &workspace))
            .await
            .map_err(|source| ActionStepError::FetchStopped {
                uses: uses.to_string(),
                source,
            })??
            .ok_or_else(|| ActionStepError::DockerReference {
                uses: uses.to_string(),
            })
    }

    /// The `pre` steps of the job's repository JavaScript actions (`runs.pre`) and Docker
    /// actions (`runs.pre-entrypoint`, in the action's image, built first when it is a
    /// `Dockerfile`), run as GitHub runs them:
    /// when the job starts, before any main step, in step order, each under its `pre-if`
    /// (default `always()`; the step's own `if:` is not consulted), with the inputs and
    /// `env` the step has at that point. The state a `pre` saves reaches its main step as
    /// `STATE_*`. A failed `pre` fails the job (later steps see `failure()`). An action that
    /// cannot be fetched or read is left to its main step to report. Local actions get no
    /// `pre` (see [`Self::run_node`]).
    pub async fn run_pres(&mut self, mut frame: Frame, steps: &[StepDef]) -> Frame {
        if self.engine.dry_run {
            return frame;
        }
        for def in steps {
            let Some(uses) = def.uses.as_deref() else {
                continue;
            };
            let Ok(uses) = frame.scope.interpolate(uses) else {
                continue;
            };
            if actions::deploy_action::is_served_by_runner(&uses) {
                continue;
            }
            let Ok(action) = ActionRef::parse(&uses) else {
                continue;
            };
            if !matches!(action, ActionRef::Remote { .. }) || actions::builtin(&action).is_some() {
                continue;
            }
            let Ok(dir) = self.action_dir(&action, &uses).await else {
                continue;
            };
            let Ok(manifest) = actions::load_manifest(&dir) else {
                continue;
            };
            let pre_if = match &manifest.runs {
                Runs::Node {
                    using,
                    pre: Some(_),
                    pre_if,
                    ..
                } if actions::NODE_VERSIONS.contains(&using.as_str()) => pre_if,
                Runs::Docker {
                    pre_entrypoint: Some(_),
                    pre_if,
                    ..
                } => pre_if,
                _ => continue,
            };
            let mut env = frame.env.clone();
            for (k, v) in &self.env_file {
                upsert(&mut env, k.clone(), v.clone());
            }
            frame.scope.set("env", env_value(&env));
            let prepared =
                frame
                    .scope
                    .string_map(&def.env, &def.env_inserts)
                    .and_then(|step_env| {
                        for (k, v) in step_env {
                            upsert(&mut env, k, v);
                        }
                        frame.scope.set("env", env_value(&env));
                        frame.scope.string_map(&def.with, &def.with_inserts)
                    });
            let Ok(with) = prepared else {
                continue;
            };
            frame.scope.status = frame.status(self.cancelled());
            match frame
                .scope
                .condition(Some(pre_if.as_deref().unwrap_or("always()")))
            {
                Ok(true) => {}
                Ok(false) | Err(_) => continue,
            }
            let name = frame
                .scope
                .interpolate(&def.display_name())
                .unwrap_or_else(|_| def.display_name());
            let key = self.outside_step_key(def, format!("Pre {name}"));
            self.open_ghes_gate(&dir, &manifest, &key);
            let started = std::time::Instant::now();
            self.engine.sink.send(super::events::Event::StepStarted {
                job: self.key.clone(),
                step: key.clone(),
            });
            let outcome = match &manifest.runs {
                Runs::Docker { .. } => {
                    self.run_docker_pre(&frame, def, &key, &dir, &uses, &manifest, &with, &env)
                        .await
                }
                Runs::Node { pre: Some(pre), .. } => match self.action_in_pod(&dir, &key).await {
                    Ok(()) => {
                        self.run_pre(&frame, def, &key, &dir, &uses, &manifest, pre, &with, &env)
                            .await
                    }
                    Err(e) => Err(e.into()),
                },
                _ => continue,
            };
            let outcome = outcome.map(|p| {
                let saved = p
                    .state
                    .iter()
                    .map(|(k, v)| (format!("STATE_{k}"), v.clone()))
                    .collect();
                self.pre_states.push((def.id.clone(), saved));
                p.outcome.unwrap_or(Outcome::Success)
            });
            self.finish_side_step(&mut frame, &key, started, outcome);
        }
        frame
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_pre(
        &mut self,
        frame: &Frame,
        def: &StepDef,
        key: &StepKey,
        dir: &Path,
        uses: &str,
        manifest: &ActionManifest,
        pre: &str,
        with: &[(String, String)],
        env: &[(String, String)],
    ) -> Result<ProcessOutcome, StepError> {
        let inputs = self.action_inputs(frame, manifest, with, key)?;
        let using = match &manifest.runs {
            Runs::Node { using, .. } => using.as_str(),
            _ => "node",
        };
        let program = self.node_program(uses, using)?;
        let process = StepProcess {
            program,
            args: vec![dir.join(pre).display().to_string()],
            env: env.to_vec(),
            cwd: self.working_directory(frame, def)?,
            timeout: None,
        };
        let extra = node_extra(&inputs, dir, uses);
        self.run_process_step(frame, key, process, &extra).await
    }

    /// For a Gitea or Forgejo job, opens the toolkit's GHES gate in a repository JavaScript
    /// action's scripts ([`super::toolkit_gate`]), before they are copied anywhere.
    fn open_ghes_gate(&self, dir: &Path, manifest: &ActionManifest, key: &StepKey) {
        if !self.engine.open_ghes_gate {
            return;
        }
        let Runs::Node {
            main, pre, post, ..
        } = &manifest.runs
        else {
            return;
        };
        let scripts: Vec<&str> = [pre.as_deref(), Some(main.as_str()), post.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        for problem in super::toolkit_gate::open_in(dir, &scripts) {
            self.note(Some(key), LogKind::Runner, &format!("warning: {problem}"));
        }
    }

    /// The host's `node` (the image's in a job pod), or why a JavaScript action cannot run.
    fn node_program(&self, uses: &str, using: &str) -> Result<String, ActionStepError> {
        if self.pod.is_some() {
            return Ok("node".to_string());
        }
        hr_process::shell::find_program("node", &self.path_env())
            .map(|p| p.display().to_string())
            .ok_or_else(|| ActionStepError::NoNode {
                uses: uses.to_string(),
                using: using.to_string(),
            })
    }

    /// Inputs in the manifest's order: `with:` values, else defaults (which may read the
    /// caller's contexts, e.g. `${{ github.token }}`); required inputs without a value warn,
    /// as GitHub does. `with:` keys the action does not declare are passed on too.
    pub(super) fn action_inputs(
        &self,
        frame: &Frame,
        manifest: &ActionManifest,
        with: &[(String, String)],
        key: &StepKey,
    ) -> Result<Vec<(String, String)>, ActionStepError> {
        let mut inputs = Vec::new();
        for input in &manifest.inputs {
            let given = with
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&input.name))
                .map(|(_, v)| v.clone());
            let value = match (given, &input.default) {
                (Some(v), _) => v,
                (None, Some(d)) => {
                    frame
                        .scope
                        .interpolate(d)
                        .map_err(|source| ActionStepError::InputDefault {
                            name: input.name.clone(),
                            source,
                        })?
                }
                (None, None) => {
                    if input.required {
                        self.note(
                            Some(key),
                            LogKind::Runner,
                            &format!("warning: input required and not supplied: {}", input.name),
                        );
                    }
                    String::new()
                }
            };
            inputs.push((input.name.clone(), value));
        }
        for (k, v) in with {
            if !inputs.iter().any(|(n, _)| n.eq_ignore_ascii_case(k)) {
                inputs.push((k.clone(), v.clone()));
            }
        }
        Ok(inputs)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_composite(
        &mut self,
        frame: &Frame,
        manifest: &ActionManifest,
        steps: &[actions::CompositeStep],
        dir: &Path,
        uses: &str,
        inputs: Vec<(String, String)>,
        env: &[(String, String)],
        key: &StepKey,
    ) -> Result<ProcessOutcome, ActionStepError> {
        let depth = frame
            .scope
            .get("__composite_depth")
            .map_or(0.0, workflows::expression::to_number) as usize;
        if depth >= MAX_COMPOSITE_DEPTH {
            return Err(ActionStepError::TooDeep {
                uses: uses.to_string(),
            });
        }
        let mut scope = frame.scope.clone();
        scope.set(
            "inputs",
            string_object(inputs.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        );
        scope.set("steps", Value::object(Object::new()));
        scope.set("env", env_value(env));
        scope.set("__composite_depth", Value::Number((depth + 1) as f64));
        if let Some(Value::Object(github)) = scope.get("github").cloned() {
            let mut github = (*github).clone();
            github.insert("action_path", Value::from(dir.display().to_string()));
            github.insert(
                "action_repository",
                Value::from(uses.split('@').next().unwrap_or(uses)),
            );
            github.insert("action", Value::from(key.id.as_str()));
            scope.set("github", Value::object(github));
        }
        let inner = Frame {
            scope,
            env: env.to_vec(),
            default_shell: None,
            default_working_directory: None,
            action_path: Some(dir.to_path_buf()),
            failed: false,
        };
        let defs: Vec<StepDef> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| StepDef::from_composite(s, i))
            .collect();
        self.composite_depth += 1;
        let inner = Box::pin(self.run_steps(inner, &defs)).await;
        self.composite_depth -= 1;
        let mut outputs = Vec::new();
        for output in &manifest.outputs {
            let value = match &output.value {
                Some(v) => {
                    inner
                        .scope
                        .interpolate(v)
                        .map_err(|source| ActionStepError::Output {
                            uses: uses.to_string(),
                            name: output.name.clone(),
                            source,
                        })?
                }
                None => String::new(),
            };
            outputs.push((output.name.clone(), value));
        }
        Ok(ProcessOutcome {
            outcome: Some(if inner.failed {
                Outcome::Failure
            } else {
                Outcome::Success
            }),
            outputs,
            state: Vec::new(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_node(
        &mut self,
        frame: &Frame,
        def: &StepDef,
        key: &StepKey,
        dir: &Path,
        uses: &str,
        node: NodeAction<'_>,
        inputs: Vec<(String, String)>,
        env: &[(String, String)],
        timeout: Option<Duration>,
    ) -> Result<ProcessOutcome, StepError> {
        if !actions::NODE_VERSIONS.contains(&node.using) {
            return Err(ActionStepError::UnsupportedNode {
                uses: uses.to_string(),
                using: node.using.to_string(),
            }
            .into());
        }
        let program = self.node_program(uses, node.using)?;
        let extra = node_extra(&inputs, dir, uses);
        let cwd = self.working_directory(frame, def)?;
        let mut state_env = Vec::new();
        let job_level = frame.action_path.is_none();
        if node.pre.is_some() && node.local {
            // As on GitHub, with its warning: a local action's files only exist once the
            // job's steps have run (a checkout), so its `pre` never runs.
            self.annotate(
                Some(key),
                AnnotationLevel::Warning,
                &format!("`pre` execution is not supported for local action from '{uses}'"),
            );
        } else if node.pre.is_some() && job_level {
            // Ran when the job started (`run_pres`); hand its saved state on.
            if let Some(at) = self.pre_states.iter().position(|(id, _)| *id == def.id) {
                state_env = self.pre_states.remove(at).1;
            }
        } else if let Some(pre) = node.pre {
            // Inside a composite action: run just before the main script.
            let mut scope = frame.scope.clone();
            scope.status = frame.status(self.cancelled());
            if scope
                .condition(Some(node.pre_if.unwrap_or("always()")))
                .map_err(StepError::evaluate("pre-if"))?
            {
                let process = StepProcess {
                    program: program.clone(),
                    args: vec![dir.join(pre).display().to_string()],
                    env: env.to_vec(),
                    cwd: cwd.clone(),
                    timeout,
                };
                let pre_outcome = self.run_process_step(frame, key, process, &extra).await?;
                state_env.extend(
                    pre_outcome
                        .state
                        .iter()
                        .map(|(k, v)| (format!("STATE_{k}"), v.clone())),
                );
                if pre_outcome.outcome == Some(Outcome::Failure) {
                    return Ok(pre_outcome);
                }
            }
        }
        let mut main_extra = extra.clone();
        main_extra.extend(state_env.iter().cloned());
        let process = StepProcess {
            program: program.clone(),
            args: vec![dir.join(node.main).display().to_string()],
            env: env.to_vec(),
            cwd: cwd.clone(),
            timeout,
        };
        let outcome = self
            .run_process_step(frame, key, process, &main_extra)
            .await?;
        if let Some(post) = node.post {
            let mut post_env = env.to_vec();
            for (k, v) in extra.iter().chain(state_env.iter()) {
                upsert(&mut post_env, k.clone(), v.clone());
            }
            for (k, v) in &outcome.state {
                upsert(&mut post_env, format!("STATE_{k}"), v.clone());
            }
            self.register_post(PostStep {
                name: format!("Post {}", key.name),
                condition: node.post_if.unwrap_or("always()").to_string(),
                program,
                args: vec![dir.join(post).display().to_string()],
                env: post_env,
                cwd,
                action_id: key.id.clone(),
                image: None,
            });
        }
        Ok(outcome)
    }
}

/// The `runs:` of a node action.
#[derive(Debug)]
pub struct NodeAction<'a> {
    pub using: &'a str,
    pub main: &'a str,
    pub pre: Option<&'a str>,
    pub pre_if: Option<&'a str>,
    pub post: Option<&'a str>,
    pub post_if: Option<&'a str>,
    /// A `./path` action: GitHub runs no `pre` for it.
    pub local: bool,
}

/// The environment a JavaScript action's scripts get on top of the step's: `INPUT_*`,
/// `GITHUB_ACTION_PATH`, `GITHUB_ACTION_REPOSITORY`.
fn node_extra(inputs: &[(String, String)], dir: &Path, uses: &str) -> Vec<(String, String)> {
    let mut extra = super::docker_action::input_variables(inputs);
    extra.push(("GITHUB_ACTION_PATH".into(), dir.display().to_string()));
    extra.push((
        "GITHUB_ACTION_REPOSITORY".into(),
        uses.split('@').next().unwrap_or(uses).to_string(),
    ));
    extra
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_errors_keep_their_wording() {
        let e = ActionStepError::UnsupportedNode {
            uses: "o/a@v1".into(),
            using: "node12".into(),
        };
        assert_eq!(
            e.to_string(),
            format!(
                "o/a@v1: unsupported `using: node12`; {} run on the host's node",
                actions::NODE_VERSIONS.join(", ")
            )
        );
        let e = ActionStepError::TooDeep {
            uses: "./me".into(),
        };
        assert_eq!(
            e.to_string(),
            "./me: composite actions nest more than 9 levels deep; an action may be calling itself"
        );
        let e = ActionStepError::DockerNeedsPod {
            job: "j".into(),
            step: "s".into(),
            uses: "docker://alpine:3".into(),
            remedy: "give exec --kubeconfig FILE".into(),
        };
        assert_eq!(
            e.to_string(),
            "job 'j' step 's' uses docker://alpine:3, a Docker action: Docker actions run as containers in a pod, and this runner has no Kubernetes cluster; give exec --kubeconfig FILE, or replace the step with a `run:` step or a JavaScript/composite action"
        );
    }
}
