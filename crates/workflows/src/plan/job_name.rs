//! The names GitHub shows for a job's runs.
//!
//! GitHub builds each matrix leg's name from the job's *base name* (its `name:` when that
//! is plain text, else its id) and the leg's values: `build (ubuntu, 18)` (see
//! [`crate::matrix::display_name`]). Then, when `name:` holds expressions, it evaluates
//! `name:` for the run, with `matrix` and `strategy` of the leg (GitHub's
//! `string-strategy-context`: `github`, `inputs`, `vars`, `needs`, `strategy`, `matrix`),
//! and shows that instead, values not appended: `name: Test ${{ matrix.os }}` gives
//! `Test ubuntu`. An expression that gives an empty string leaves the built name.
//! A job without a matrix runs once with `matrix` null.

use crate::expression::template::parse_template;
use crate::expression::{Allowed, EvalContext, ExprError, JobStatus, Object, Value};
use crate::model::Job;

/// The contexts a job's `name:` may read.
const NAME_CONTEXTS: [&str; 6] = ["github", "inputs", "vars", "needs", "strategy", "matrix"];

/// The name a job's matrix legs are built on: its `name:` without expressions, else its id.
pub fn base_name(job: &Job) -> &str {
    match &job.name {
        Some(name) if !name.value.contains("${{") && !name.value.is_empty() => &name.value,
        _ => &job.id.value,
    }
}

/// Whether the job's `name:` holds expressions, evaluated for each run.
pub fn name_has_expressions(job: &Job) -> bool {
    job.name.as_ref().is_some_and(|n| n.value.contains("${{"))
}

/// The display name of one run of `job`: `built` (its base name with the leg's values,
/// see [`crate::matrix::expand_named`]) unless `name:` holds expressions, which are then
/// evaluated against `contexts` (what the run knows: `github`, `inputs`, `vars`, `needs`,
/// and the leg's `matrix` and `strategy`); an empty result leaves `built`. An error names
/// what failed (a context missing from `contexts` cannot be read).
pub fn run_name(job: &Job, contexts: &Object, built: &str) -> Result<String, ExprError> {
    let Some(name) = job.name.as_ref().filter(|_| name_has_expressions(job)) else {
        return Ok(built.to_string());
    };
    let known: Vec<&str> = NAME_CONTEXTS
        .iter()
        .copied()
        .filter(|c| contexts.contains_key(c))
        .collect();
    let allowed = Allowed {
        named_values: &known,
        functions: &[],
        status_function_args: false,
    };
    let ctx = EvalContext {
        contexts,
        status: JobStatus::Success,
        host: None,
    };
    let text = parse_template(&name.value, &allowed)?.evaluate_to_string(&ctx)?;
    Ok(if text.is_empty() {
        built.to_string()
    } else {
        text
    })
}

/// The `strategy` context of one run: `fail-fast`, `job-index`, `job-total`,
/// `max-parallel`.
pub fn strategy_context(fail_fast: bool, index: usize, total: usize, max_parallel: usize) -> Value {
    let mut strategy = Object::with_capacity(4);
    strategy.insert("fail-fast", Value::Bool(fail_fast));
    strategy.insert("job-index", Value::Number(index as f64));
    strategy.insert("job-total", Value::Number(total as f64));
    strategy.insert("max-parallel", Value::Number(max_parallel as f64));
    Value::object(strategy)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn job(name: Option<&str>) -> Job {
        let name = name.map_or(String::new(), |n| format!("    name: \"{n}\"\n"));
        let text = format!(
            "on: push\njobs:\n  build:\n{name}    runs-on: x\n    steps: [{{run: echo}}]\n"
        );
        crate::model::load(&text, "w.yml").unwrap().jobs.remove(0)
    }

    fn leg(os: &str) -> Object {
        let mut matrix = Object::new();
        matrix.insert("os", Value::from(os));
        let mut contexts = Object::new();
        contexts.insert("matrix", Value::object(matrix));
        contexts.insert("strategy", strategy_context(true, 1, 2, 2));
        contexts
    }

    #[test]
    fn plain_names_and_ids_carry_the_matrix_values() {
        assert_eq!(base_name(&job(None)), "build");
        assert_eq!(base_name(&job(Some("Build"))), "Build");
        assert_eq!(base_name(&job(Some("Build ${{ matrix.os }}"))), "build");
        let built = "Build (ubuntu)";
        assert_eq!(
            run_name(&job(Some("Build")), &leg("ubuntu"), built).unwrap(),
            built
        );
    }

    #[test]
    fn names_with_expressions_are_evaluated_for_each_run() {
        let j = job(Some("Test ${{ matrix.os }} #${{ strategy.job-index }}"));
        assert_eq!(
            run_name(&j, &leg("ubuntu"), "build (ubuntu)").unwrap(),
            "Test ubuntu #1"
        );
        // Empty: the built name stays.
        let j = job(Some("${{ matrix.missing }}"));
        assert_eq!(
            run_name(&j, &leg("ubuntu"), "build (ubuntu)").unwrap(),
            "build (ubuntu)"
        );
        // A context the caller does not have is an error (the caller keeps the name as
        // written, or fails the job).
        let j = job(Some("Deploy ${{ needs.a.outputs.env }}"));
        let err = run_name(&j, &leg("ubuntu"), "build").unwrap_err();
        assert!(err.to_string().contains("needs"), "{err}");
    }
}
