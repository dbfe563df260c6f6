//! Reusable-workflow calls: a job with `uses:` is planned with the called workflow's
//! jobs, the call checked against its `workflow_call` inputs and secrets, and the
//! callee's `inputs` context built from the caller's `with:` and the input defaults.

use super::{PlanError, Planner, Unavailable, WorkflowPlan, evaluate_node};
use crate::Diagnostics;
use crate::expression::{Object, Value};
use crate::model::{self, CallSecrets, Job, Workflow};

/// How deep calls may nest (a caller and nine levels of called workflows), as GitHub
/// allows since it raised the limit from four levels.
pub const MAX_CALL_DEPTH: usize = 10;

/// Where called workflows come from: the runner loads `./.github/workflows/x.yml` from
/// the repository and remote `owner/repo/...@ref` from its cache (this crate does no IO).
pub trait CalledWorkflows {
    /// The workflow `reference` (as written after `uses:`) names; `None` when it cannot
    /// be had here (a remote workflow while offline), so the job is planned without it.
    fn load(&self, reference: &str) -> Option<Result<Workflow, Diagnostics>>;
}

/// A reusable-workflow call, resolved.
#[derive(Debug, Clone)]
pub struct CalledWorkflow {
    /// The called workflow's jobs, planned with `inputs` from the caller's `with:`.
    pub plan: WorkflowPlan,
    /// Which of the caller's secrets the called workflow receives.
    pub secrets: PassedSecrets,
    /// `on.workflow_call.outputs`: each output's name and the expression that gives its
    /// value from the called jobs' outputs once they finish.
    pub outputs: Vec<(String, String)>,
}

/// The secrets a reusable-workflow call passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassedSecrets {
    /// `secrets: inherit`: every secret of the caller, under its own name.
    Inherit,
    /// `secrets: {name: value}`: these names, each with its value expression.
    Named(Vec<(String, String)>),
}

/// Resolves no calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCalledWorkflows;

impl CalledWorkflows for NoCalledWorkflows {
    fn load(&self, _reference: &str) -> Option<Result<Workflow, Diagnostics>> {
        None
    }
}

impl Planner<'_> {
    pub(super) fn call(
        &self,
        workflow: &Workflow,
        job: &Job,
        contexts: &Object,
    ) -> Result<Option<Box<CalledWorkflow>>, PlanError> {
        let Some(uses) = &job.uses else {
            return Ok(None);
        };
        let Some(loaded) = self.calls.load(&uses.value) else {
            return Ok(None);
        };
        let call_error = |source: Diagnostics| PlanError::Call {
            file: workflow.file.clone(),
            job: job.id.value.clone(),
            reference: uses.value.clone(),
            source,
        };
        if self.depth + 1 >= MAX_CALL_DEPTH {
            return Err(PlanError::CallDepth {
                file: workflow.file.clone(),
                job: job.id.value.clone(),
            });
        }
        let callee = loaded.map_err(call_error)?;
        let problems = model::check_call(job, &callee, &workflow.file);
        if !problems.is_empty() {
            return Err(call_error(Diagnostics(problems)));
        }
        let mut callee_contexts = contexts.clone();
        callee_contexts.insert("inputs", call_inputs(job, &callee, contexts));
        let nested = Planner {
            calls: self.calls,
            depth: self.depth + 1,
        };
        let plan = nested.workflow(&callee, &callee_contexts)?;
        let secrets = match &job.secrets {
            Some(CallSecrets::Inherit) => PassedSecrets::Inherit,
            Some(CallSecrets::Map(map)) => PassedSecrets::Named(
                map.entries
                    .iter()
                    .map(|(k, v)| (k.value.clone(), v.value.clone()))
                    .collect(),
            ),
            None => PassedSecrets::Named(Vec::new()),
        };
        let outputs = callee
            .event("workflow_call")
            .and_then(|e| e.call.as_ref())
            .map(|c| {
                c.outputs
                    .iter()
                    .map(|o| (o.name.value.clone(), o.value.value.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(Box::new(CalledWorkflow {
            plan,
            secrets,
            outputs,
        })))
    }
}

/// The callee's `inputs`: each declared input's default, overridden by the caller's
/// `with:` value; values that read run-time contexts are left out of the plan.
fn call_inputs(job: &Job, callee: &Workflow, contexts: &Object) -> Value {
    let mut inputs = Object::new();
    let declared = callee
        .event("workflow_call")
        .and_then(|e| e.call.as_ref())
        .map(|c| c.inputs.as_slice())
        .unwrap_or_default();
    for input in declared {
        let default = input.default.as_ref().map(|d| evaluate_node(d, contexts));
        if let Some(Ok(value)) = default {
            inputs.insert(input.name.value.clone(), value);
        }
    }
    for (name, node) in &job.with {
        match evaluate_node(node, contexts) {
            Ok(value) => inputs.insert(name.value.clone(), value),
            Err(Unavailable::Deferred(_) | Unavailable::Failed(_)) => {}
        }
    }
    Value::object(inputs)
}
