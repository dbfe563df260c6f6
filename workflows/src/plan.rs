//! Planning: which jobs of which workflows run for an event, in `needs` stages, with
//! their matrix legs expanded; and the status a job-level `if:` sees from its `needs`.
//!
//! Matrices are evaluated here with the contexts known before any job runs (`github`,
//! `inputs`, `vars`). A matrix that reads `needs` outputs can only be expanded when its
//! job starts, so its legs are [`Legs::Deferred`].

use crate::expression::template::parse_template;
use crate::expression::{Allowed, EvalContext, ExprError, JobStatus, Object, Value};
use crate::graph::{self, GraphError};
use crate::matrix::{self, MatrixError, NamedLeg};
use crate::model::{Job, Workflow};
use crate::yaml::{Node, NodeValue};

/// The contexts `strategy` may read, as GitHub's table allows.
const STRATEGY_CONTEXTS: [&str; 4] = ["github", "needs", "vars", "inputs"];

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
    /// The job's `name:` (its id when absent), as written: expressions unevaluated.
    pub name: String,
    pub needs: Vec<String>,
    /// `runs-on` labels as written; empty for reusable workflow calls.
    pub runs_on: Vec<String>,
    /// The workflow a reusable-workflow job calls (`uses:`).
    pub calls: Option<String>,
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

/// How many times a job runs.
#[derive(Debug, Clone)]
pub enum Legs {
    /// No matrix (or a matrix that excluded every combination): one run.
    Single,
    /// One run per leg, each with GitHub's display name.
    Matrix(Vec<NamedLeg>),
    /// The matrix reads values that exist only at run time.
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

/// One workflow in stages.
pub fn plan_workflow(workflow: &Workflow, contexts: &Object) -> Result<WorkflowPlan, PlanError> {
    let name = workflow
        .name
        .as_ref()
        .map(|n| n.value.clone())
        .unwrap_or_else(|| file_name(&workflow.file).to_string());
    let needs: Vec<Vec<String>> = workflow
        .jobs
        .iter()
        .map(|j| j.needs.iter().map(|n| n.value.clone()).collect())
        .collect();
    let edges: Vec<(&str, &[String])> = workflow
        .jobs
        .iter()
        .zip(&needs)
        .map(|(j, n)| (j.id.value.as_str(), n.as_slice()))
        .collect();
    let stage_ids = graph::stages(&edges).map_err(|source| PlanError::Graph {
        workflow: name.clone(),
        file: file_name(&workflow.file).to_string(),
        source,
    })?;
    let mut stages = Vec::with_capacity(stage_ids.len());
    for ids in stage_ids {
        let mut stage = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(job) = workflow.jobs.iter().find(|j| j.id.value == id) else {
                continue;
            };
            stage.push(plan_job(workflow, job, contexts)?);
        }
        stages.push(stage);
    }
    Ok(WorkflowPlan {
        file: workflow.file.clone(),
        name,
        events: workflow.on.events.iter().map(|e| e.name.value.clone()).collect(),
        stages,
    })
}

fn plan_job(workflow: &Workflow, job: &Job, contexts: &Object) -> Result<PlannedJob, PlanError> {
    let name = job.effective_name().to_string();
    let matrix = job.strategy.as_ref().and_then(|s| s.matrix.as_ref());
    let legs = match matrix {
        None => Legs::Single,
        Some(node) => match evaluate_node(node, contexts) {
            Err(Unavailable::Deferred(reason)) => Legs::Deferred { reason },
            Err(Unavailable::Failed(source)) => {
                return Err(PlanError::MatrixExpression {
                    file: workflow.file.clone(),
                    job: job.id.value.clone(),
                    source,
                });
            }
            Ok(value) => {
                let legs = matrix::expand_named(&value, &name).map_err(|source| PlanError::Matrix {
                    file: workflow.file.clone(),
                    job: job.id.value.clone(),
                    source,
                })?;
                if legs.is_empty() { Legs::Single } else { Legs::Matrix(legs) }
            }
        },
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
        legs,
    })
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
        NodeValue::Sequence(items) => Value::array(
            items
                .iter()
                .map(|i| evaluate_node(i, contexts))
                .collect::<Result<_, _>>()?,
        ),
        NodeValue::Mapping(entries) => {
            let mut object = Object::with_capacity(entries.len());
            for (key, value) in entries {
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
mod tests {
    use super::*;
    use crate::expression::template::parse_condition;

    fn load(text: &str) -> Workflow {
        crate::model::load(text, ".github/workflows/t.yml").unwrap()
    }

    const WORKFLOW: &str = "name: demo
on: [push]
jobs:
  deploy:
    needs: [build, lint]
    runs-on: ubuntu-latest
    steps: [{run: echo}]
  lint:
    runs-on: ubuntu-latest
    steps: [{run: echo}]
  build:
    runs-on: [self-hosted, linux]
    strategy:
      matrix:
        os: ${{ fromJSON('[\"a\", \"b\"]') }}
        v: [1, 2]
        exclude: [{os: b, v: 2}]
    steps: [{run: echo}]
  later:
    needs: build
    runs-on: ubuntu-latest
    strategy:
      matrix:
        x: ${{ fromJSON(needs.build.outputs.list) }}
    steps: [{run: echo}]
";

    #[test]
    fn stages_follow_needs_and_legs_expand() {
        let plan = plan(&[load(WORKFLOW)], Some("push")).unwrap();
        let w = &plan.workflows[0];
        assert_eq!(w.name, "demo");
        let ids: Vec<Vec<&str>> = w
            .stages
            .iter()
            .map(|s| s.iter().map(|j| j.id.as_str()).collect())
            .collect();
        assert_eq!(ids, vec![vec!["lint", "build"], vec!["deploy", "later"]]);
        let Legs::Matrix(legs) = &w.stages[0][1].legs else {
            panic!("build has a matrix");
        };
        let names: Vec<&str> = legs.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, vec!["build (a, 1)", "build (a, 2)", "build (b, 1)"]);
        assert_eq!(w.stages[0][1].runs_on, vec!["self-hosted", "linux"]);
        assert!(matches!(w.stages[1][1].legs, Legs::Deferred { .. }));
        assert_eq!(plan.job_count(), 3 + 1 + 1 + 1);
    }

    #[test]
    fn other_events_plan_nothing() {
        let plan = plan(&[load(WORKFLOW)], Some("release")).unwrap();
        assert!(plan.workflows.is_empty());
    }

    #[test]
    fn matrix_errors_name_the_job() {
        let text = "on: push\njobs:\n  a:\n    runs-on: x\n    strategy:\n      matrix:\n        os: ${{ fromJSON('{}') }}\n    steps: [{run: echo}]\n";
        let err = plan(&[load(text)], None).unwrap_err();
        assert!(err.to_string().contains("job 'a'"), "{err}");
    }

    #[test]
    fn job_if_sees_needs_results() {
        let everything = Allowed::everything();
        let default_if = parse_condition("", &everything).unwrap();
        let always = parse_condition("always()", &everything).unwrap();
        let on_failure = parse_condition("${{ failure() }}", &everything).unwrap();
        let contexts = Object::new();
        let eval = |c: &crate::expression::Condition, needs: &[JobResult]| {
            c.evaluate(&EvalContext {
                contexts: &contexts,
                status: job_status(needs, false),
                host: None,
            })
            .unwrap()
        };
        use JobResult::*;
        assert!(eval(&default_if, &[Success, Success]));
        assert!(!eval(&default_if, &[Success, Skipped]));
        assert!(!eval(&default_if, &[Failure]));
        assert!(eval(&always, &[Skipped, Failure]));
        assert!(eval(&on_failure, &[Success, Failure]));
        assert!(!eval(&on_failure, &[Skipped]));
        assert_eq!(job_status(&[Success], true), JobStatus::Cancelled);
    }
}
