//! A job's matrix legs in the plan: expanded with the planning contexts, each with the
//! display name and `runs-on` GitHub gives it; deferred when the matrix reads `needs` or
//! fails on a value the plan does not have ([`Unknowns`]).

use super::{Legs, PlanError, PlannedLeg, Unavailable, Unknowns, evaluate_node, job_name};
use crate::expression::template::parse_template;
use crate::expression::{Allowed, EvalContext, JobStatus, Object, Value};
use crate::matrix;
use crate::model::{Job, OrExpression, Workflow};
use crate::yaml::Node;

/// The legs of a job with a `strategy.matrix`: expanded, each named as GitHub shows it;
/// deferred when the matrix reads `needs` or fails on a value the plan does not have.
pub(super) fn legs(
    workflow: &Workflow,
    job: &Job,
    node: &Node,
    contexts: &Object,
    unknowns: &Unknowns,
) -> Result<Legs, PlanError> {
    let deferred = || {
        unknowns.read_in(node).map(|read| Legs::Deferred {
            reason: read.to_string(),
        })
    };
    let value = match evaluate_node(node, contexts) {
        Ok(value) => value,
        Err(Unavailable::Deferred(reason)) => return Ok(Legs::Deferred { reason }),
        Err(Unavailable::Failed(source)) => {
            return deferred().ok_or_else(|| PlanError::MatrixExpression {
                file: workflow.file.clone(),
                job: job.id.value.clone(),
                source,
            });
        }
    };
    let named = match matrix::expand_named(&value, job_name::base_name(job)) {
        Ok(named) => named,
        Err(source) => {
            return deferred().ok_or_else(|| PlanError::Matrix {
                file: workflow.file.clone(),
                job: job.id.value.clone(),
                source,
            });
        }
    };
    if named.is_empty() {
        return Ok(Legs::Single);
    }
    let total = named.len();
    let evaluated_names = job_name::name_has_expressions(job);
    Ok(Legs::Matrix(
        named
            .into_iter()
            .enumerate()
            .map(|(index, leg)| {
                let name = if evaluated_names {
                    let mut run = contexts.clone();
                    run.insert("matrix", Value::object(leg.matrix.clone()));
                    run.insert("strategy", strategy_of(job, index, total));
                    job_name::run_name(job, &run, &leg.name)
                        .unwrap_or_else(|_| job.effective_name().to_string())
                } else {
                    leg.name
                };
                PlannedLeg {
                    runs_on: runs_on_for_leg(job, contexts, &leg.matrix),
                    name,
                    matrix: leg.matrix,
                }
            })
            .collect(),
    ))
}

/// The `strategy` context of run `index` of `total`, with `fail-fast` and `max-parallel`
/// as written when they are literals (else GitHub's defaults: true, every leg at once).
pub(super) fn strategy_of(job: &Job, index: usize, total: usize) -> Value {
    let strategy = job.strategy.as_ref();
    let fail_fast = match strategy
        .and_then(|s| s.fail_fast.as_ref())
        .map(|f| &f.value)
    {
        Some(OrExpression::Literal(b)) => *b,
        _ => true,
    };
    let max_parallel = match strategy
        .and_then(|s| s.max_parallel.as_ref())
        .map(|m| &m.value)
    {
        Some(OrExpression::Literal(n)) if *n >= 1.0 => *n as usize,
        _ => total,
    };
    job_name::strategy_context(fail_fast, index, total, max_parallel)
}

/// The job's `runs-on` labels with `matrix` (and the planning contexts) evaluated.
fn runs_on_for_leg(job: &Job, contexts: &Object, leg: &Object) -> Vec<String> {
    let Some(runs_on) = &job.runs_on else {
        return Vec::new();
    };
    let mut with_matrix = contexts.clone();
    with_matrix.insert("matrix", Value::object(leg.clone()));
    let known: Vec<&str> = with_matrix.keys().collect();
    let allowed = Allowed {
        named_values: &known,
        functions: &[],
        status_function_args: false,
    };
    let ctx = EvalContext {
        contexts: &with_matrix,
        status: JobStatus::Success,
        host: None,
    };
    runs_on
        .labels
        .iter()
        .map(|label| {
            parse_template(&label.value, &allowed)
                .and_then(|t| t.evaluate_to_string(&ctx))
                .unwrap_or_else(|_| label.value.clone())
        })
        .collect()
}
