//! A job's runs: its matrix legs (filtered by `--matrix`), the name GitHub shows for each
//! ([`workflows::plan::job_name`]), and what a dry run does with values only a real run
//! has: a matrix or a job `if:` that fails on `needs` outputs or on inputs nobody gave is
//! marked "computed at run time" instead of failing the job.

use workflows::expression::{ExprError, Object, Value};
use workflows::matrix;
use workflows::model::{Job, Workflow};
use workflows::plan::{self, UnknownRead, Unknowns, job_name};

use super::schedule::{RunLimits, WorkflowScope};

/// Why a job's `strategy` gives no legs to run, or a run has no name (GitHub's wording).
#[derive(Debug, thiserror::Error)]
pub enum StrategyError {
    /// The matrix's expressions could not be evaluated.
    #[error("Error when evaluating 'strategy' for job '{job}'. {source}")]
    Evaluate {
        job: String,
        #[source]
        source: ExprError,
    },
    /// The evaluated matrix is not one that expands into legs.
    #[error("Error when evaluating 'strategy' for job '{job}'. {source}")]
    Expand {
        job: String,
        #[source]
        source: matrix::MatrixError,
    },
    /// The job's `name:` could not be evaluated for a run.
    #[error("Error when evaluating 'name' for job '{job}'. {source}")]
    Name {
        job: String,
        #[source]
        source: ExprError,
    },
}

/// One run of a job before its contexts are complete: the name GitHub builds from the
/// job's base name and the leg's values, and the leg's `matrix` (none without a matrix).
#[derive(Debug, Clone)]
pub struct Leg {
    pub built_name: String,
    pub matrix: Option<Object>,
}

/// The legs to run, or one leg without a matrix. A server's job (`limits.assigned`) is
/// one leg the server already named: the job's name is kept as it is.
pub fn legs(job: &Job, contexts: &Object, limits: &RunLimits) -> Result<Vec<Leg>, StrategyError> {
    let base = match limits.assigned {
        true => job.effective_name(),
        false => job_name::base_name(job),
    };
    let Some(node) = job.strategy.as_ref().and_then(|s| s.matrix.as_ref()) else {
        return Ok(vec![Leg {
            built_name: base.to_string(),
            matrix: None,
        }]);
    };
    let value = plan::node_value(node, contexts).map_err(|source| StrategyError::Evaluate {
        job: job.id.value.clone(),
        source,
    })?;
    let named = matrix::expand_named(&value, base).map_err(|source| StrategyError::Expand {
        job: job.id.value.clone(),
        source,
    })?;
    if named.is_empty() {
        return Ok(vec![Leg {
            built_name: base.to_string(),
            matrix: None,
        }]);
    }
    Ok(named
        .into_iter()
        .filter(|leg| !matrix::filter(vec![leg.matrix.clone()], &limits.matrix_filter).is_empty())
        .map(|leg| Leg {
            built_name: match limits.assigned {
                true => base.to_string(),
                false => leg.name,
            },
            matrix: Some(leg.matrix),
        })
        .collect())
}

/// The display name of one run: `name:` evaluated with the run's contexts (`matrix`,
/// `strategy` included) when it holds expressions, else the built name. A server's job
/// keeps the name it came with. In a dry run, a name that fails on a value only a real
/// run has is shown as written.
pub fn run_name(
    job: &Job,
    contexts: &Object,
    leg: &Leg,
    limits: &RunLimits,
    dry_run: Option<&Unknowns>,
) -> Result<String, StrategyError> {
    if limits.assigned {
        return Ok(leg.built_name.clone());
    }
    job_name::run_name(job, contexts, &leg.built_name).or_else(|source| {
        let written = job.name.as_ref().map(|n| n.value.as_str()).unwrap_or("");
        match dry_run.and_then(|u| u.read_in_text(written)) {
            Some(_) => Ok(job.effective_name().to_string()),
            None => Err(StrategyError::Name {
                job: job.id.value.clone(),
                source,
            }),
        }
    })
}

/// The name of a job's events before it has legs (its `if:` skipped or failed it): a job
/// without a matrix is named as its one run would be; a matrix job by its `name:` as
/// written (GitHub shows a skipped matrix job unexpanded).
pub fn job_name_before_legs(job: &Job, contexts: &Object, limits: &RunLimits) -> String {
    let has_matrix = job.strategy.as_ref().is_some_and(|s| s.matrix.is_some());
    if limits.assigned || has_matrix {
        return job.effective_name().to_string();
    }
    let mut single = contexts.clone();
    single.insert("matrix", Value::Null);
    single.insert("strategy", job_name::strategy_context(true, 0, 1, 1));
    let leg = Leg {
        built_name: job_name::base_name(job).to_string(),
        matrix: None,
    };
    run_name(job, &single, &leg, limits, None).unwrap_or_else(|_| job.effective_name().to_string())
}

/// What a dry run of `workflow` does not know: every job's outputs (no step runs), and
/// the inputs it declares that have no value when it was called or dispatched (for other
/// events `inputs` is empty on GitHub too, a known value).
pub fn dry_run_unknowns(workflow: &Workflow, scope: &WorkflowScope, event: &str) -> Unknowns {
    let takes_inputs = scope.depth > 0 || matches!(event, "workflow_call" | "workflow_dispatch");
    Unknowns {
        job_outputs: true,
        inputs: match takes_inputs {
            true => Unknowns::missing_inputs(workflow, &scope.inputs),
            false => Vec::new(),
        },
        ..Unknowns::default()
    }
}

/// The value only a real run has that the job's matrix reads, when a dry run could not
/// expand it because of one.
pub fn unknown_matrix_read(job: &Job, unknowns: &Unknowns) -> Option<UnknownRead> {
    let node = job.strategy.as_ref()?.matrix.as_ref()?;
    unknowns.read_in(node)
}

/// The name a dry run gives a job whose matrix it could not expand.
pub fn not_expanded_name(job: &Job) -> String {
    format!("{} (matrix computed at run time)", job_name::base_name(job))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn limits(assigned: bool, filter: &[(&str, &str)]) -> RunLimits {
        RunLimits {
            concurrency: Arc::new(tokio::sync::Semaphore::new(1)),
            jobs_at_once: 1,
            platforms: Arc::new(Vec::new()),
            strict_platforms: false,
            matrix_filter: Arc::new(
                filter
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            cancel: tokio_util::sync::CancellationToken::new(),
            assigned,
        }
    }

    fn workflow(text: &str) -> Workflow {
        workflows::model::load(text, "w.yml").unwrap()
    }

    const NAMED: &str = "on: push
jobs:
  test:
    name: Test ${{ matrix.os }} (${{ strategy.job-index }})
    runs-on: x
    strategy:
      matrix:
        os: [a, b]
    steps: [{run: echo}]
  plain:
    runs-on: x
    strategy:
      matrix:
        os: [a, b]
    steps: [{run: echo}]
  single:
    name: Deploy ${{ inputs.env }}
    runs-on: x
    steps: [{run: echo}]
";

    fn run_contexts(leg: &Leg, index: usize) -> Object {
        let mut contexts = Object::new();
        contexts.insert(
            "matrix",
            leg.matrix.clone().map_or(Value::Null, Value::object),
        );
        contexts.insert("strategy", job_name::strategy_context(true, index, 2, 2));
        let mut inputs = Object::new();
        inputs.insert("env", Value::from("prod"));
        contexts.insert("inputs", Value::object(inputs));
        contexts
    }

    fn names(job: &Job, limits: &RunLimits) -> Vec<String> {
        legs(job, &Object::new(), limits)
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, leg)| run_name(job, &run_contexts(leg, i), leg, limits, None).unwrap())
            .collect()
    }

    #[test]
    fn runs_are_named_as_github_shows_them() {
        let w = workflow(NAMED);
        let free = limits(false, &[]);
        assert_eq!(names(&w.jobs[0], &free), ["Test a (0)", "Test b (1)"]);
        assert_eq!(names(&w.jobs[1], &free), ["plain (a)", "plain (b)"]);
        assert_eq!(names(&w.jobs[2], &free), ["Deploy prod"]);
        assert_eq!(
            names(&w.jobs[1], &limits(false, &[("os", "b")])),
            ["plain (b)"]
        );
        // A server's job keeps its name.
        assert_eq!(
            names(&w.jobs[0], &limits(true, &[])),
            ["Test ${{ matrix.os }} (${{ strategy.job-index }})"; 2]
        );
        // Before legs: a matrix job as written, a single job evaluated.
        let mut inputs = Object::new();
        inputs.insert("env", Value::from("prod"));
        let mut contexts = Object::new();
        contexts.insert("inputs", Value::object(inputs));
        assert_eq!(
            job_name_before_legs(&w.jobs[0], &contexts, &free),
            "Test ${{ matrix.os }} (${{ strategy.job-index }})"
        );
        assert_eq!(
            job_name_before_legs(&w.jobs[2], &contexts, &free),
            "Deploy prod"
        );
    }

    #[test]
    fn a_name_that_fails_fails_the_run_except_on_unknowns_in_a_dry_run() {
        let w = workflow(
            "on: push\njobs:\n  j:\n    name: ${{ fromJSON(needs.a.outputs.n) }}\n    needs: a\n    runs-on: x\n    steps: [{run: echo}]\n  a:\n    runs-on: x\n    steps: [{run: echo}]\n",
        );
        let job = &w.jobs[0];
        let leg = Leg {
            built_name: "j".into(),
            matrix: None,
        };
        let mut contexts = Object::new();
        contexts.insert("needs", Value::object(Object::new()));
        let free = limits(false, &[]);
        let err = run_name(job, &contexts, &leg, &free, None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Error when evaluating 'name' for job 'j'. Error parsing fromJson"),
            "{err}"
        );
        let unknowns = Unknowns {
            job_outputs: true,
            ..Unknowns::default()
        };
        assert_eq!(
            run_name(job, &contexts, &leg, &free, Some(&unknowns)).unwrap(),
            "${{ fromJSON(needs.a.outputs.n) }}"
        );
    }

    #[test]
    fn a_dry_run_knows_inputs_only_of_calls_and_dispatches() {
        let w = workflow(
            "on:\n  push:\n  workflow_dispatch:\n    inputs:\n      list: {type: string}\njobs:\n  j:\n    runs-on: x\n    strategy:\n      matrix:\n        v: ${{ fromJSON(inputs.list) }}\n    steps: [{run: echo}]\n",
        );
        let scope = WorkflowScope {
            inputs: Object::new(),
            secrets: Object::new(),
            vars: Object::new(),
            prefix: String::new(),
            only: Vec::new(),
            depth: 0,
            given_needs: Vec::new(),
            cache: crate::cache_mode::CacheAccess::UNLIMITED,
        };
        let dispatch = dry_run_unknowns(&w, &scope, "workflow_dispatch");
        assert_eq!(dispatch.inputs, ["list"]);
        assert_eq!(
            unknown_matrix_read(&w.jobs[0], &dispatch).unwrap().value,
            "inputs.list"
        );
        assert!(unknown_matrix_read(&w.jobs[0], &dry_run_unknowns(&w, &scope, "push")).is_none());
        assert_eq!(
            not_expanded_name(&w.jobs[0]),
            "j (matrix computed at run time)"
        );
    }
}
