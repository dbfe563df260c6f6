//! Planning: which jobs of which workflows run for an event, in `needs` stages, with
//! their matrix legs expanded; and the status a job-level `if:` sees from its `needs`.
//!
//! Matrices are evaluated here with the contexts known before any job runs (`github`,
//! `inputs`, `vars`). A matrix that reads `needs` outputs, or fails on an input that has
//! no value yet ([`Unknowns`]), can only be expanded when its job starts, so its legs are
//! [`Legs::Deferred`]. Job names are evaluated as GitHub shows them ([`job_name`]).

use crate::Diagnostics;
use crate::expression::template::parse_template;
use crate::expression::{Allowed, EvalContext, ExprError, JobStatus, Object, Value};
use crate::graph::{self, GraphError};
use crate::matrix::MatrixError;
use crate::model::{Job, Workflow};
use crate::yaml::{Node, NodeValue};

mod call;
mod call_limits;
pub mod job_name;
mod legs;
mod unknown;

pub use call::{CalledWorkflow, CalledWorkflows, MAX_CALL_DEPTH, NoCalledWorkflows, PassedSecrets};
pub use call_limits::{
    CallLimit, MAX_CALLED_WORKFLOWS, MAX_JOBS_WITH_CALLS, MAX_NESTED_CALLS, check_call_limits,
};
pub use unknown::{UnknownRead, Unknowns};

/// The contexts `strategy` may read, as GitHub's table allows, with Gitea's and Forgejo's
/// names for `github`.
const STRATEGY_CONTEXTS: [&str; 7] = [
    "github", "needs", "vars", "inputs", "gitea", "forge", "forgejo",
];

/// Every workflow that runs, each in stages.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub workflows: Vec<WorkflowPlan>,
}

impl Plan {
    /// How many job runs the plan holds (each matrix leg counts once).
    pub fn job_count(&self) -> usize {
        self.workflows
            .iter()
            .flat_map(|w| w.stages.iter().flatten())
            .map(PlannedJob::run_count)
            .sum()
    }
}

/// One workflow's jobs in `needs` stages: every job of stage `n` needs only jobs of
/// earlier stages; each stage keeps the workflow's job order.
#[derive(Debug, Clone)]
pub struct WorkflowPlan {
    pub file: String,
    /// `name:`, or the file name when the workflow has none.
    pub name: String,
    pub events: Vec<String>,
    pub stages: Vec<Vec<PlannedJob>>,
}

#[derive(Debug, Clone)]
pub struct PlannedJob {
    pub id: String,
    /// The job's display name: for one run, `name:` evaluated as GitHub shows it (as
    /// written where it reads what the plan does not know); for a matrix, the name its
    /// legs are built on (`name:` without expressions, else the id). Each leg has its own.
    pub name: String,
    pub needs: Vec<String>,
    /// `runs-on` labels as written; empty for reusable workflow calls.
    pub runs_on: Vec<String>,
    /// The workflow a reusable-workflow job calls (`uses:`).
    pub calls: Option<String>,
    /// The called workflow's own plan, when it could be loaded (local calls; remote
    /// ones once fetched), with `inputs` from this job's `with:`.
    pub called: Option<Box<CalledWorkflow>>,
    pub legs: Legs,
}

impl PlannedJob {
    pub fn run_count(&self) -> usize {
        match &self.legs {
            Legs::Matrix(legs) => legs.len().max(1),
            Legs::Single | Legs::Deferred { .. } => 1,
        }
    }
}

/// One matrix leg of a job.
#[derive(Debug, Clone)]
pub struct PlannedLeg {
    /// GitHub's display name: `build (ubuntu-latest, 18)`, or the job's `name:` evaluated
    /// with this leg's `matrix` (`Test ubuntu-latest`).
    pub name: String,
    pub matrix: Object,
    /// `runs-on` with this leg's `matrix` values filled in (as written where an
    /// expression reads something unknown before the job runs).
    pub runs_on: Vec<String>,
}

/// How many times a job runs.
#[derive(Debug, Clone)]
pub enum Legs {
    /// No matrix (or a matrix that excluded every combination): one run.
    Single,
    /// One run per leg, each with GitHub's display name.
    Matrix(Vec<PlannedLeg>),
    /// The matrix reads values that exist only at run time; `reason` says which.
    Deferred { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("unable to build dependency graph for {workflow} ({file})")]
    Graph {
        workflow: String,
        file: String,
        #[source]
        source: GraphError,
    },
    #[error("{file}: error when evaluating 'strategy' for job '{job}'")]
    MatrixExpression {
        file: String,
        job: String,
        #[source]
        source: ExprError,
    },
    #[error("{file}: job '{job}' cannot call '{reference}'")]
    Call {
        file: String,
        job: String,
        reference: String,
        #[source]
        source: Diagnostics,
    },
    #[error(
        "{file}: job '{job}' calls workflows nested more than {MAX_CALL_DEPTH} levels deep; a workflow may be calling itself"
    )]
    CallDepth { file: String, job: String },
    /// The call tree breaks one of GitHub's limits on reusable workflows (found before
    /// any call is planned).
    #[error("{0}")]
    CallLimit(crate::Diagnostic),
    #[error("{file}: error when evaluating 'strategy' for job '{job}'")]
    Matrix {
        file: String,
        job: String,
        #[source]
        source: MatrixError,
    },
}

/// Plans `workflows` for `event` (every workflow when `None`) with no contexts known.
pub fn plan(workflows: &[Workflow], event: Option<&str>) -> Result<Plan, PlanError> {
    plan_with(workflows, event, &Object::new())
}

/// Plans with the contexts known before any job runs (`github`, `inputs`, `vars`), which
/// matrix expressions may read.
pub fn plan_with(
    workflows: &[Workflow],
    event: Option<&str>,
    contexts: &Object,
) -> Result<Plan, PlanError> {
    let mut plan = Plan::default();
    for workflow in workflows {
        if event.is_some_and(|e| !workflow.triggered_by(e)) {
            continue;
        }
        plan.workflows.push(plan_workflow(workflow, contexts)?);
    }
    Ok(plan)
}

/// One workflow in stages; reusable-workflow jobs are planned without their jobs.
pub fn plan_workflow(workflow: &Workflow, contexts: &Object) -> Result<WorkflowPlan, PlanError> {
    plan_workflow_calling(workflow, contexts, &NoCalledWorkflows)
}

/// One workflow in stages, with the jobs of every workflow it calls that `calls` can load;
/// the call tree is first checked against GitHub's limits ([`check_call_limits`]).
pub fn plan_workflow_calling(
    workflow: &Workflow,
    contexts: &Object,
    calls: &dyn CalledWorkflows,
) -> Result<WorkflowPlan, PlanError> {
    check_call_limits(workflow, calls, 0).map_err(PlanError::CallLimit)?;
    Planner { calls, depth: 0 }.workflow(workflow, contexts)
}

/// Planning state: where called workflows come from, and how deep the calls are.
struct Planner<'a> {
    calls: &'a dyn CalledWorkflows,
    depth: usize,
}

impl Planner<'_> {
    fn workflow(&self, workflow: &Workflow, contexts: &Object) -> Result<WorkflowPlan, PlanError> {
        let name = workflow
            .name
            .as_ref()
            .map(|n| n.value.clone())
            .unwrap_or_else(|| file_name(&workflow.file).to_string());
        let needs = workflow.needs_edges();
        let edges = needs.view();
        let stage_ids = graph::stages(&edges).map_err(|source| PlanError::Graph {
            workflow: name.clone(),
            file: file_name(&workflow.file).to_string(),
            source,
        })?;
        // The first job of an id wins, as a search from the start would find it.
        let by_id: std::collections::HashMap<&str, &Job> = workflow
            .jobs
            .iter()
            .rev()
            .map(|j| (j.id.value.as_str(), j))
            .collect();
        let inputs = contexts
            .get("inputs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let unknowns = Unknowns {
            job_outputs: true,
            inputs: Unknowns::missing_inputs(workflow, &inputs),
            ..Unknowns::default()
        };
        let mut stages = Vec::with_capacity(stage_ids.len());
        for ids in stage_ids {
            let mut stage = Vec::with_capacity(ids.len());
            for id in ids {
                let Some(&job) = by_id.get(id) else {
                    continue;
                };
                stage.push(self.job(workflow, job, contexts, &unknowns)?);
            }
            stages.push(stage);
        }
        Ok(WorkflowPlan {
            file: workflow.file.clone(),
            name,
            events: workflow
                .on
                .events
                .iter()
                .map(|e| e.name.value.clone())
                .collect(),
            stages,
        })
    }

    fn job(
        &self,
        workflow: &Workflow,
        job: &Job,
        contexts: &Object,
        unknowns: &Unknowns,
    ) -> Result<PlannedJob, PlanError> {
        let matrix = job.strategy.as_ref().and_then(|s| s.matrix.as_ref());
        let legs = match matrix {
            None => Legs::Single,
            Some(node) => legs::legs(workflow, job, node, contexts, unknowns)?,
        };
        let base = job_name::base_name(job);
        let name = match &legs {
            Legs::Single => {
                let mut single = contexts.clone();
                single.insert("matrix", Value::Null);
                single.insert("strategy", legs::strategy_of(job, 0, 1));
                job_name::run_name(job, &single, base)
                    .unwrap_or_else(|_| job.effective_name().to_string())
            }
            Legs::Matrix(_) | Legs::Deferred { .. } => base.to_string(),
        };
        Ok(PlannedJob {
            id: job.id.value.clone(),
            name,
            needs: job.needs.iter().map(|n| n.value.clone()).collect(),
            runs_on: job
                .runs_on
                .as_ref()
                .map(|r| r.labels.iter().map(|l| l.value.clone()).collect())
                .unwrap_or_default(),
            calls: job.uses.as_ref().map(|u| u.value.clone()),
            called: self.call(workflow, job, contexts)?,
            legs,
        })
    }
}

enum Unavailable {
    /// The value reads a context that is not known yet (e.g. `needs`).
    Deferred(String),
    Failed(ExprError),
}

/// The YAML node as expression data, with every `${{ }}` string evaluated.
fn evaluate_node(node: &Node, contexts: &Object) -> Result<Value, Unavailable> {
    Ok(match &node.value {
        NodeValue::String(s) if s.contains("${{") => evaluate_string(s, contexts)?,
        NodeValue::Sequence(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                let value = evaluate_node(item, contexts)?;
                // A whole-expression item that gives a sequence is spliced in, as act and
                // GitHub's template reader do.
                match (&value, is_whole_expression(item)) {
                    (Value::Array(spliced), true) => values.extend(spliced.iter().cloned()),
                    _ => values.push(value),
                }
            }
            Value::array(values)
        }
        NodeValue::Mapping(entries) => {
            let mut object = Object::with_capacity(entries.len());
            for (key, value) in entries {
                if key.as_str().is_some_and(is_insert_directive) {
                    // `${{ insert }}: <mapping>` merges that mapping into this one.
                    if let Value::Object(inserted) = evaluate_node(value, contexts)? {
                        for (k, v) in inserted.iter() {
                            object.insert(k.to_string(), v.clone());
                        }
                    }
                    continue;
                }
                let key = match evaluate_node(key, contexts)? {
                    Value::String(s) => s,
                    other => crate::expression::to_display_string(&other),
                };
                object.insert(key, evaluate_node(value, contexts)?);
            }
            Value::object(object)
        }
        _ => node.to_value(),
    })
}

/// `${{ insert }}`, with any spacing.
fn is_insert_directive(key: &str) -> bool {
    key.trim()
        .strip_prefix("${{")
        .and_then(|k| k.strip_suffix("}}"))
        .is_some_and(|k| k.trim() == "insert")
}

/// A string that is one `${{ }}` and nothing else.
fn is_whole_expression(node: &Node) -> bool {
    node.as_str().is_some_and(|s| {
        let s = s.trim();
        s.starts_with("${{") && s.ends_with("}}") && s.matches("${{").count() == 1
    })
}

fn evaluate_string(s: &str, contexts: &Object) -> Result<Value, Unavailable> {
    let known: Vec<&str> = contexts.keys().collect();
    let allowed = Allowed {
        named_values: &known,
        functions: &[],
        status_function_args: false,
    };
    let template = match parse_template(s, &allowed) {
        Ok(t) => t,
        Err(e) => {
            let strategy = Allowed {
                named_values: &STRATEGY_CONTEXTS,
                functions: &[],
                status_function_args: false,
            };
            return Err(match parse_template(s, &strategy) {
                Ok(_) => Unavailable::Deferred(format!("`{s}` is known only when the job starts")),
                Err(_) => Unavailable::Failed(e),
            });
        }
    };
    let ctx = EvalContext {
        contexts,
        status: JobStatus::Success,
        host: None,
    };
    template.evaluate(&ctx).map_err(Unavailable::Failed)
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The result of a finished job, as `needs.<id>.result` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobResult {
    Success,
    Failure,
    Cancelled,
    Skipped,
}

impl JobResult {
    pub fn as_str(self) -> &'static str {
        match self {
            JobResult::Success => "success",
            JobResult::Failure => "failure",
            JobResult::Cancelled => "cancelled",
            JobResult::Skipped => "skipped",
        }
    }
}

/// The status a job-level `if:` sees, from the results of the jobs it needs (GitHub's
/// rules): a cancelled run is `Cancelled`; any failed or cancelled dependency makes it
/// `Failure`; otherwise any skipped dependency makes `success()` false too; otherwise
/// `Success`. The default `if:` (`success()`) therefore skips a job after a failed or
/// skipped dependency, while `always()` and `failure()` can still run it.
pub fn job_status(needs: &[JobResult], run_cancelled: bool) -> JobStatus {
    if run_cancelled {
        JobStatus::Cancelled
    } else if needs
        .iter()
        .any(|r| matches!(r, JobResult::Failure | JobResult::Cancelled))
    {
        JobStatus::Failure
    } else if needs.contains(&JobResult::Skipped) {
        JobStatus::DependencySkipped
    } else {
        JobStatus::Success
    }
}

#[cfg(test)]
mod tests;

/// A YAML value (a matrix, a `with:` input, an input default) as expression data, with
/// every `${{ }}` string evaluated against `contexts`. At run time every context a key
/// may read is present, so a value that reads an absent one is an error here.
pub fn node_value(node: &Node, contexts: &Object) -> Result<Value, ExprError> {
    evaluate_node(node, contexts).map_err(|e| match e {
        Unavailable::Failed(e) => e,
        Unavailable::Deferred(reason) => ExprError {
            kind: crate::expression::ErrorKind::Parsing,
            message: reason,
            position: None,
            expression: String::new(),
        },
    })
}
