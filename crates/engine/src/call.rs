//! A job that calls a reusable workflow: the called workflow is loaded (from the
//! repository or the action cache), checked against the call, and its jobs run with
//! `inputs` from `with:` (plus defaults), the passed secrets, and a `caller/` prefix; the
//! call's outputs are the called workflow's `on.workflow_call.outputs`.

use std::sync::Arc;
use std::time::Instant;

use std::path::Path;

use actions::{ActionCache, WorkflowRef};
use tokio_util::sync::CancellationToken;
use workflows::Diagnostics;
use workflows::expression::{ExprError, Object};
use workflows::model::Workflow;
use workflows::plan::{self, CalledWorkflows};

use super::engine::Engine;
use super::eval::{Scope, display};
use super::events::{Event, JobKey, LogKind, Outcome};
use super::job::JobOutcome;
use super::schedule::{RunLimits, WorkflowScope, passed_secrets, run_workflow};

/// GitHub's limit on nested reusable workflows (a caller and nine levels).
const MAX_CALL_DEPTH: usize = 10;

/// Why a reusable workflow call failed before or after its jobs ran (the calling job then
/// fails with this message).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("job '{id}' is not in {file}")]
    NoSuchJob { id: String, file: String },
    #[error(
        "{uses}: reusable workflows nest more than {} levels deep",
        MAX_CALL_DEPTH
    )]
    TooDeep { uses: String },
    /// `uses:` is not a workflow reference, or the workflow could not be located/fetched.
    #[error(transparent)]
    Locate(#[from] actions::ActionError),
    #[error("fetching {uses} stopped: {source}")]
    FetchStopped {
        uses: String,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("cannot read the called workflow {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The called workflow does not load.
    #[error(transparent)]
    Load(#[from] workflows::Diagnostics),
    /// The called workflow's own calls break one of GitHub's limits on reusable workflows.
    #[error("{0}")]
    Limit(workflows::Diagnostic),
    /// The call does not fit the called workflow (inputs, secrets ...).
    #[error("{}", joined(.0))]
    Mismatch(Vec<workflows::Diagnostic>),
    #[error("default of input '{name}': {source}")]
    InputDefault {
        name: String,
        #[source]
        source: ExprError,
    },
    #[error("with.{name}: {source}")]
    With {
        name: String,
        #[source]
        source: ExprError,
    },
    #[error("secrets.{name}: {source}")]
    Secret {
        name: String,
        #[source]
        source: ExprError,
    },
    #[error("output '{name}': {source}")]
    Output {
        name: String,
        #[source]
        source: ExprError,
    },
}

fn joined(problems: &[workflows::Diagnostic]) -> String {
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    text.join("; ")
}

#[allow(clippy::too_many_arguments)]
pub async fn run_call(
    engine: Arc<Engine>,
    caller: Arc<Workflow>,
    id: &str,
    key: JobKey,
    contexts: Object,
    scope: WorkflowScope,
    limits: RunLimits,
    cancel: CancellationToken,
) -> JobOutcome {
    let started = Instant::now();
    engine.sink.send(Event::JobStarted { job: key.clone() });
    let result = call(
        &engine, &caller, id, &key, contexts, &scope, &limits, cancel,
    )
    .await;
    let (result, outputs) = match result {
        Ok(r) => r,
        Err(message) => {
            engine.sink.send(Event::Log {
                job: key.clone(),
                step: None,
                kind: LogKind::Runner,
                line: format!("error: {message}"),
            });
            (Outcome::Failure, Vec::new())
        }
    };
    let duration = started.elapsed();
    engine.sink.send(Event::JobFinished {
        job: key,
        result,
        duration,
        outputs: outputs.clone(),
    });
    JobOutcome {
        result,
        outputs,
        duration,
    }
}

#[allow(clippy::too_many_arguments)]
async fn call(
    engine: &Arc<Engine>,
    caller: &Workflow,
    id: &str,
    key: &JobKey,
    contexts: Object,
    scope: &WorkflowScope,
    limits: &RunLimits,
    cancel: CancellationToken,
) -> Result<(Outcome, Vec<(String, String)>), CallError> {
    let Some(job) = caller.job(id) else {
        return Err(CallError::NoSuchJob {
            id: id.to_string(),
            file: caller.file.clone(),
        });
    };
    let uses = job
        .uses
        .as_ref()
        .map(|u| u.value.clone())
        .unwrap_or_default();
    if scope.depth + 1 >= MAX_CALL_DEPTH {
        return Err(CallError::TooDeep { uses });
    }
    let callee = load(engine, &uses).await?;
    if scope.depth == 0 {
        // The calls below this one, checked before any of them runs (a run's own local
        // calls were checked when it was loaded; this also covers remote workflows and
        // jobs a server hands over).
        check_called_tree(engine, &uses, &callee).await?;
    }
    let problems = workflows::model::check_call(job, &callee, &caller.file);
    if !problems.is_empty() {
        return Err(CallError::Mismatch(problems));
    }
    let eval = Scope::new(contexts.clone(), Some(engine.hasher()));
    let mut inputs = Object::new();
    if let Some(call) = callee.event("workflow_call").and_then(|e| e.call.as_ref()) {
        for input in &call.inputs {
            if let Some(default) = &input.default {
                let v = plan::node_value(default, &contexts).map_err(|source| {
                    CallError::InputDefault {
                        name: input.name.value.clone(),
                        source,
                    }
                })?;
                inputs.insert(input.name.value.clone(), v);
            }
        }
    }
    // A dry run has no job outputs (nor inputs nobody gave): an input given from one is
    // not given at all, so the called workflow's dry run marks what reads it.
    let dry_run = engine
        .dry_run
        .then(|| super::strategy::dry_run_unknowns(caller, scope, &engine.run.event_name));
    for (name, node) in &job.with {
        if dry_run.as_ref().is_some_and(|u| u.read_in(node).is_some()) {
            inputs.remove(&name.value);
            continue;
        }
        let v = plan::node_value(node, &contexts).map_err(|source| CallError::With {
            name: name.value.clone(),
            source,
        })?;
        inputs.insert(name.value.clone(), v);
    }
    let secrets = passed_secrets(job, &eval, &scope.secrets)?;
    let nested = WorkflowScope {
        inputs,
        secrets,
        vars: scope.vars.clone(),
        prefix: format!("{}/", key.id),
        only: Vec::new(),
        depth: scope.depth + 1,
        given_needs: Vec::new(),
        cache: crate::cache_mode::job_access(caller, job, &engine.run.event_name, scope.cache).0,
    };
    let limits = RunLimits {
        cancel,
        ..limits.clone()
    };
    let outcomes = run_workflow(engine.clone(), Arc::new(callee.clone()), nested, limits).await;
    let result = if outcomes.values().any(|o| o.result == Outcome::Failure) {
        Outcome::Failure
    } else if outcomes.values().any(|o| o.result == Outcome::Cancelled) {
        Outcome::Cancelled
    } else {
        Outcome::Success
    };
    let mut out_scope = Scope::new(contexts, None);
    out_scope.set("jobs", super::schedule::results_value(&outcomes));
    let mut outputs = Vec::new();
    if let Some(call) = callee.event("workflow_call").and_then(|e| e.call.as_ref()) {
        for output in &call.outputs {
            let name = &output.name.value;
            let v = match out_scope.value(&output.value.value) {
                Ok(v) => v,
                // A dry run's called jobs give no outputs: one that fails on them is left out.
                Err(e) if let Some(read) = dry_run.as_ref().and_then(|u| u.read_in_error(&e)) => {
                    engine.sink.send(Event::Log {
                        job: key.clone(),
                        step: None,
                        kind: LogKind::Runner,
                        line: format!("dry run: output '{name}': {read}"),
                    });
                    continue;
                }
                Err(source) => {
                    let name = name.clone();
                    return Err(CallError::Output { name, source });
                }
            };
            outputs.push((name.clone(), display(&v)));
        }
    }
    Ok((result, outputs))
}

/// Checks the calls of `callee`, called from a run's workflow, against GitHub's limits;
/// remote workflows are fetched through the cache as the calls would fetch them.
async fn check_called_tree(
    engine: &Arc<Engine>,
    uses: &str,
    callee: &Workflow,
) -> Result<(), CallError> {
    let (cache, workspace) = (engine.cache.clone(), engine.run.workspace.clone());
    let callee = callee.clone();
    tokio::task::spawn_blocking(move || {
        let files = CalledFiles {
            workspace: &workspace,
            cache: Some(&cache),
        };
        plan::check_call_limits(&callee, &files, 1)
    })
    .await
    .map_err(|source| CallError::FetchStopped {
        uses: uses.to_string(),
        source,
    })?
    .map_err(CallError::Limit)
}

/// Called workflows as `exec` finds them: `./path` in the workspace, and with a cache
/// `owner/repo/path@ref` through it (fetched when not cached yet). A workflow that cannot
/// be had is left out, to be reported by the call itself.
#[derive(Debug)]
pub struct CalledFiles<'a> {
    pub workspace: &'a Path,
    pub cache: Option<&'a ActionCache>,
}

impl CalledWorkflows for CalledFiles<'_> {
    fn load(&self, reference: &str) -> Option<Result<Workflow, Diagnostics>> {
        let parsed = WorkflowRef::parse(reference).ok()?;
        let (path, name) = match &parsed {
            WorkflowRef::Local { path } => (
                self.workspace.join(path),
                path.trim_start_matches("./").to_string(),
            ),
            WorkflowRef::Remote { .. } => (
                self.cache?.locate_workflow(&parsed, self.workspace).ok()?,
                reference.to_string(),
            ),
        };
        let text = std::fs::read_to_string(path).ok()?;
        Some(workflows::model::load(&text, &name))
    }
}

/// The called workflow: `./path` from the workspace, `owner/repo/path@ref` from the cache.
async fn load(engine: &Arc<Engine>, uses: &str) -> Result<Workflow, CallError> {
    let reference = WorkflowRef::parse(uses)?;
    let name = match &reference {
        WorkflowRef::Local { path } => path.trim_start_matches("./").to_string(),
        WorkflowRef::Remote { .. } => uses.to_string(),
    };
    let (cache, workspace) = (engine.cache.clone(), engine.run.workspace.clone());
    let path = tokio::task::spawn_blocking(move || cache.locate_workflow(&reference, &workspace))
        .await
        .map_err(|source| CallError::FetchStopped {
            uses: uses.to_string(),
            source,
        })??;
    let text = std::fs::read_to_string(&path).map_err(|source| CallError::Read {
        path: path.clone(),
        source,
    })?;
    Ok(workflows::model::load(&text, &name)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_errors_keep_their_wording() {
        let e = CallError::TooDeep {
            uses: "./.github/workflows/a.yml".into(),
        };
        assert_eq!(
            e.to_string(),
            "./.github/workflows/a.yml: reusable workflows nest more than 10 levels deep"
        );
        let e = CallError::NoSuchJob {
            id: "build".into(),
            file: "ci.yml".into(),
        };
        assert_eq!(e.to_string(), "job 'build' is not in ci.yml");
    }
}
