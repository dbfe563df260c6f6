//! A job that calls a reusable workflow: the called workflow is loaded (from the
//! repository or the action cache), checked against the call, and its jobs run with
//! `inputs` from `with:` (plus defaults), the passed secrets, and a `caller/` prefix; the
//! call's outputs are the called workflow's `on.workflow_call.outputs`.

use std::sync::Arc;
use std::time::Instant;

use actions::WorkflowRef;
use tokio_util::sync::CancellationToken;
use workflows::expression::{ExprError, Object};
use workflows::model::Workflow;
use workflows::plan;

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
    for (name, node) in &job.with {
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
            let v = out_scope
                .value(&output.value.value)
                .map_err(|source| CallError::Output {
                    name: output.name.value.clone(),
                    source,
                })?;
            outputs.push((output.name.value.clone(), display(&v)));
        }
    }
    Ok((result, outputs))
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
