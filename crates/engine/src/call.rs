//! A job that calls a reusable workflow: the called workflow is loaded (from the
//! repository or the action cache), checked against the call, and its jobs run with
//! `inputs` from `with:` (plus defaults), the passed secrets, and a `caller/` prefix; the
//! call's outputs are the called workflow's `on.workflow_call.outputs`.

use std::sync::Arc;
use std::time::Instant;

use actions::WorkflowRef;
use tokio_util::sync::CancellationToken;
use workflows::expression::Object;
use workflows::model::Workflow;
use workflows::plan;

use super::engine::Engine;
use super::eval::{Scope, display};
use super::events::{Event, JobKey, LogKind, Outcome};
use super::job::JobOutcome;
use super::schedule::{RunLimits, WorkflowScope, passed_secrets, run_workflow};

/// GitHub's limit on nested reusable workflows (a caller and nine levels).
const MAX_CALL_DEPTH: usize = 10;

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
) -> Result<(Outcome, Vec<(String, String)>), String> {
    let Some(job) = caller.job(id) else {
        return Err(format!("job '{id}' is not in {}", caller.file));
    };
    let uses = job
        .uses
        .as_ref()
        .map(|u| u.value.clone())
        .unwrap_or_default();
    if scope.depth + 1 >= MAX_CALL_DEPTH {
        return Err(format!(
            "{uses}: reusable workflows nest more than {MAX_CALL_DEPTH} levels deep"
        ));
    }
    let callee = load(engine, &uses).await?;
    let problems = workflows::model::check_call(job, &callee, &caller.file);
    if !problems.is_empty() {
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(text.join("; "));
    }
    let eval = Scope::new(contexts.clone(), Some(engine.hasher()));
    let mut inputs = Object::new();
    if let Some(call) = callee.event("workflow_call").and_then(|e| e.call.as_ref()) {
        for input in &call.inputs {
            if let Some(default) = &input.default {
                let v = plan::node_value(default, &contexts)
                    .map_err(|e| format!("default of input '{}': {e}", input.name.value))?;
                inputs.insert(input.name.value.clone(), v);
            }
        }
    }
    for (name, node) in &job.with {
        let v =
            plan::node_value(node, &contexts).map_err(|e| format!("with.{}: {e}", name.value))?;
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
                .map_err(|e| format!("output '{}': {e}", output.name.value))?;
            outputs.push((output.name.value.clone(), display(&v)));
        }
    }
    Ok((result, outputs))
}

/// The called workflow: `./path` from the workspace, `owner/repo/path@ref` from the cache.
async fn load(engine: &Arc<Engine>, uses: &str) -> Result<Workflow, String> {
    let reference = WorkflowRef::parse(uses).map_err(|e| e.to_string())?;
    let name = match &reference {
        WorkflowRef::Local { path } => path.trim_start_matches("./").to_string(),
        WorkflowRef::Remote { .. } => uses.to_string(),
    };
    let (cache, workspace) = (engine.cache.clone(), engine.run.workspace.clone());
    let path = tokio::task::spawn_blocking(move || cache.locate_workflow(&reference, &workspace))
        .await
        .map_err(|e| format!("fetching {uses} stopped: {e}"))?
        .map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read the called workflow {}: {e}", path.display()))?;
    workflows::model::load(&text, &name).map_err(|d| d.to_string())
}
