//! The `needs` graph: stages of jobs that can run together, cycles, unknown needs.
//!
//! Jobs are given in workflow order as `(id, needs)`. Job ids compare ignoring case, as
//! GitHub compares them (`needs: Build` names job `build`). Every function keeps
//! workflow order in what it returns, so results are deterministic.
//!
//! - [`stages`]: the jobs in levels (act's planner): stage 0 has no needs, stage n needs
//!   only jobs of earlier stages.
//! - [`with_dependencies`]: the jobs a selection needs transitively (`exec -j job`).
//! - [`check_needs`]: the load-time problems exactly as GitHub's parser reports them,
//!   one per offending `needs` item; [`find_cycle_edges`] is the cycle part of it.

/// Owned `(job, needs)` pairs in workflow order; [`Edges::view`] gives the borrowed form
/// the functions of this module take.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edges(pub Vec<(String, Vec<String>)>);

impl Edges {
    pub fn view(&self) -> Vec<(&str, &[String])> {
        self.0
            .iter()
            .map(|(job, needs)| (job.as_str(), needs.as_slice()))
            .collect()
    }
}

use std::collections::HashSet;
use std::fmt;

use crate::expression::value::fold_key;

/// Why the jobs cannot be put in stages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The first `needs` item, in workflow order, that names no job.
    #[error("Job '{job}' depends on unknown job '{need}'.")]
    UnknownNeed { job: String, need: String },
    /// The jobs that can never start, in workflow order: they are on a cycle of `needs`
    /// or need a job that is.
    #[error("Jobs {} can never start: their `needs` form a cycle. Remove one of the needs on the cycle", quoted(.jobs))]
    Cycle { jobs: Vec<String> },
}

fn quoted(jobs: &[String]) -> String {
    let items: Vec<String> = jobs.iter().map(|j| format!("'{j}'")).collect();
    items.join(", ")
}

/// One problem with the `needs` of a workflow, as GitHub's parser reports it.
/// `Display` is GitHub's exact message; the indexes locate the offending item (the job's
/// position in the workflow and the item's position in its `needs` list) so a loader
/// can attach `line:col`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeedsProblem {
    /// No job is free of `needs` (or there are no jobs); GitHub then reports nothing
    /// else about `needs`. A loader locates it at the `jobs` mapping.
    NoStartNode,
    UnknownNeed {
        job_index: usize,
        need_index: usize,
        job: String,
        need: String,
    },
    /// The need names an existing job that never completes: it is on a cycle, or needs
    /// (transitively) a job on a cycle or an unknown job.
    Cycle {
        job_index: usize,
        need_index: usize,
        job: String,
        need: String,
    },
}

impl fmt::Display for NeedsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NeedsProblem::NoStartNode => {
                f.write_str("The workflow must contain at least one job with no dependencies.")
            }
            NeedsProblem::UnknownNeed { job, need, .. } => {
                write!(f, "Job '{job}' depends on unknown job '{need}'.")
            }
            NeedsProblem::Cycle { job, need, .. } => write!(
                f,
                "Job '{job}' depends on job '{need}' which creates a cycle in the dependency graph."
            ),
        }
    }
}

/// The jobs in stages: stage 0 holds the jobs without needs, stage n the jobs whose needs
/// are all in earlier stages; each stage keeps workflow order. No jobs give no stages.
pub fn stages<'a>(jobs: &[(&'a str, &[String])]) -> Result<Vec<Vec<&'a str>>, GraphError> {
    let known: HashSet<String> = jobs.iter().map(|(id, _)| fold_key(id)).collect();
    for (id, needs) in jobs {
        if let Some(need) = needs.iter().find(|n| !known.contains(&fold_key(n))) {
            return Err(GraphError::UnknownNeed {
                job: id.to_string(),
                need: need.clone(),
            });
        }
    }
    let levels = levels(jobs);
    let stuck: Vec<String> = jobs
        .iter()
        .zip(&levels)
        .filter(|(_, level)| level.is_none())
        .map(|((id, _), _)| id.to_string())
        .collect();
    if !stuck.is_empty() {
        return Err(GraphError::Cycle { jobs: stuck });
    }
    let count = levels.iter().flatten().max().map_or(0, |max| max + 1);
    let mut result = vec![Vec::new(); count];
    for ((id, _), level) in jobs.iter().zip(&levels) {
        if let Some(level) = level {
            result[*level].push(*id);
        }
    }
    Ok(result)
}

/// The stage of each job, `None` for jobs that never become ready. A job is ready in
/// round n when all its needs were ready before round n (by name, ignoring case).
fn levels(jobs: &[(&str, &[String])]) -> Vec<Option<usize>> {
    let folded: Vec<(String, Vec<String>)> = jobs
        .iter()
        .map(|(id, needs)| (fold_key(id), needs.iter().map(|n| fold_key(n)).collect()))
        .collect();
    let mut levels = vec![None; jobs.len()];
    let mut ready: HashSet<&str> = HashSet::new();
    for round in 0.. {
        let now: Vec<usize> = folded
            .iter()
            .enumerate()
            .filter(|(i, (_, needs))| {
                levels[*i].is_none() && needs.iter().all(|n| ready.contains(n.as_str()))
            })
            .map(|(i, _)| i)
            .collect();
        if now.is_empty() {
            break;
        }
        for i in now {
            levels[i] = Some(round);
            ready.insert(folded[i].0.as_str());
        }
    }
    levels
}

/// The selected jobs and every job they need, transitively, in workflow order. Selected
/// ids and needs that name no job are ignored ([`stages`] reports unknown needs).
pub fn with_dependencies<'a>(jobs: &[(&'a str, &[String])], selected: &[&str]) -> Vec<&'a str> {
    let mut wanted: HashSet<String> = HashSet::new();
    let mut pending: Vec<String> = selected.iter().map(|s| fold_key(s)).collect();
    while let Some(id) = pending.pop() {
        if !wanted.insert(id.clone()) {
            continue;
        }
        for (_, needs) in jobs.iter().filter(|(job, _)| fold_key(job) == id) {
            pending.extend(needs.iter().map(|n| fold_key(n)));
        }
    }
    jobs.iter()
        .map(|(id, _)| *id)
        .filter(|id| wanted.contains(&fold_key(id)))
        .collect()
}

/// GitHub's load-time check of `needs`, with its exact reports in its order: when no job
/// is free of needs, only [`NeedsProblem::NoStartNode`]; otherwise, for each job that can
/// never start (workflow order) and each of its needs that never completes (`needs`
/// order), an unknown-job or a cycle problem. An empty list means the graph is sound.
/// No jobs at all (`jobs: {}`) is reported as having no start node, as GitHub does.
pub fn check_needs(jobs: &[(&str, &[String])]) -> Vec<NeedsProblem> {
    if jobs.iter().all(|(_, needs)| !needs.is_empty()) {
        return vec![NeedsProblem::NoStartNode];
    }
    unmet_needs(jobs)
}

/// Each `(job, need)` edge that GitHub reports as creating a cycle: a need on an existing
/// job that never completes, in workflow order then `needs` order. Unlike
/// [`check_needs`], this also lists the edges when no job is free of needs.
pub fn find_cycle_edges(jobs: &[(&str, &[String])]) -> Vec<(String, String)> {
    unmet_needs(jobs)
        .into_iter()
        .filter_map(|problem| match problem {
            NeedsProblem::Cycle { job, need, .. } => Some((job, need)),
            _ => None,
        })
        .collect()
}

/// Every need of a never-starting job that never completes, classified as unknown or
/// cycle.
fn unmet_needs(jobs: &[(&str, &[String])]) -> Vec<NeedsProblem> {
    let levels = levels(jobs);
    let known: HashSet<String> = jobs.iter().map(|(id, _)| fold_key(id)).collect();
    let completed: HashSet<String> = jobs
        .iter()
        .zip(&levels)
        .filter(|(_, level)| level.is_some())
        .map(|((id, _), _)| fold_key(id))
        .collect();
    let mut problems = Vec::new();
    for (job_index, ((id, needs), level)) in jobs.iter().zip(&levels).enumerate() {
        if level.is_some() {
            continue;
        }
        for (need_index, need) in needs.iter().enumerate() {
            let folded = fold_key(need);
            if completed.contains(&folded) {
                continue;
            }
            let (job, need) = (id.to_string(), need.clone());
            problems.push(if known.contains(&folded) {
                NeedsProblem::Cycle {
                    job_index,
                    need_index,
                    job,
                    need,
                }
            } else {
                NeedsProblem::UnknownNeed {
                    job_index,
                    need_index,
                    job,
                    need,
                }
            });
        }
    }
    problems
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Owned `(id, needs)` rows, typed in by hand from the workflows named in each test.
    fn owned(rows: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        rows.iter()
            .map(|(id, needs)| {
                (
                    id.to_string(),
                    needs.iter().map(|n| n.to_string()).collect(),
                )
            })
            .collect()
    }

    fn view(rows: &[(String, Vec<String>)]) -> Vec<(&str, &[String])> {
        rows.iter()
            .map(|(id, needs)| (id.as_str(), needs.as_slice()))
            .collect()
    }

    fn messages(rows: &[(String, Vec<String>)]) -> Vec<String> {
        check_needs(&view(rows))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// act `basic/push.yml` (planner case TestGraphEvent): `[check], [build], [test]`.
    #[test]
    fn act_basic_workflow_has_three_stages() {
        let rows = owned(&[("check", &[]), ("build", &["check"]), ("test", &["build"])]);
        assert_eq!(
            stages(&view(&rows)).unwrap(),
            vec![vec!["check"], vec!["build"], vec!["test"]]
        );
        assert!(check_needs(&view(&rows)).is_empty());
    }

    /// act `parallel/push.yml`: two jobs after `build` share a stage in workflow order.
    #[test]
    fn independent_jobs_share_a_stage_in_workflow_order() {
        let rows = owned(&[("build", &[]), ("test1", &["build"]), ("test2", &["build"])]);
        assert_eq!(
            stages(&view(&rows)).unwrap(),
            vec![vec!["build"], vec!["test1", "test2"]]
        );
    }

    /// act `issue-1595/no-first.yml` (TestGraphMissingFirst): `second` needs unknown `first`.
    #[test]
    fn act_unknown_first_job_is_an_error() {
        let rows = owned(&[("second", &["first"])]);
        assert_eq!(
            stages(&view(&rows)).unwrap_err(),
            GraphError::UnknownNeed {
                job: "second".into(),
                need: "first".into()
            }
        );
        // GitHub: the only job has needs, so there is no start node.
        assert_eq!(
            messages(&rows),
            ["The workflow must contain at least one job with no dependencies."]
        );
    }

    /// act `issue-1595/missing.yml` (TestGraphWithMissing): the whole workflow is
    /// rejected although `standalone` is valid.
    #[test]
    fn act_one_missing_need_rejects_the_workflow() {
        let rows = owned(&[("second", &["first"]), ("standalone", &[])]);
        assert_eq!(
            stages(&view(&rows)).unwrap_err().to_string(),
            "Job 'second' depends on unknown job 'first'."
        );
        assert_eq!(
            messages(&rows),
            ["Job 'second' depends on unknown job 'first'."]
        );
    }

    /// act `issue-1595/no-event.yml` (TestGraphWithSomeMissing's valid remainder): one stage.
    #[test]
    fn single_job_is_one_stage() {
        let rows = owned(&[("stuck", &[])]);
        assert_eq!(stages(&view(&rows)).unwrap(), vec![vec!["stuck"]]);
        assert!(stages(&[]).unwrap().is_empty());
        // languageservices `errors-jobs-at-least-one.yml`: `jobs: {}`.
        assert_eq!(check_needs(&[]), [NeedsProblem::NoStartNode]);
    }

    #[test]
    fn stage_is_one_more_than_the_deepest_need() {
        let rows = owned(&[
            ("a", &[]),
            ("d", &["c", "a"]),
            ("b", &[]),
            ("c", &["b"]),
            ("e", &["a"]),
        ]);
        assert_eq!(
            stages(&view(&rows)).unwrap(),
            vec![vec!["a", "b"], vec!["c", "e"], vec!["d"]]
        );
    }

    #[test]
    fn needs_ignore_case_and_keep_spelling() {
        let rows = owned(&[
            ("Build", &[]),
            ("test", &["BUILD"]),
            ("deploy", &["Test", "build"]),
        ]);
        assert_eq!(
            stages(&view(&rows)).unwrap(),
            vec![vec!["Build"], vec!["test"], vec!["deploy"]]
        );
        assert!(check_needs(&view(&rows)).is_empty());
    }

    /// languageservices `errors-job-needs-cycle.yml`.
    #[test]
    fn github_cycle_report() {
        let rows = owned(&[
            ("one", &[]),
            ("two", &["one", "three"]),
            ("three", &["two"]),
        ]);
        assert_eq!(
            messages(&rows),
            [
                "Job 'two' depends on job 'three' which creates a cycle in the dependency graph.",
                "Job 'three' depends on job 'two' which creates a cycle in the dependency graph.",
            ]
        );
        assert_eq!(
            check_needs(&view(&rows))[0],
            NeedsProblem::Cycle {
                job_index: 1,
                need_index: 1,
                job: "two".into(),
                need: "three".into()
            }
        );
        assert_eq!(
            find_cycle_edges(&view(&rows)),
            [
                ("two".to_string(), "three".to_string()),
                ("three".to_string(), "two".to_string())
            ]
        );
        assert_eq!(
            stages(&view(&rows)).unwrap_err(),
            GraphError::Cycle {
                jobs: vec!["two".into(), "three".into()]
            }
        );
    }

    /// languageservices `errors-job-needs-no-start-node.yml`: only the start-node error.
    #[test]
    fn github_no_start_node_report() {
        let rows = owned(&[("one", &["two"]), ("two", &["one"])]);
        assert_eq!(check_needs(&view(&rows)), [NeedsProblem::NoStartNode]);
        // The edges are still there for a caller that asks for them.
        assert_eq!(find_cycle_edges(&view(&rows)).len(), 2);
        assert!(
            matches!(stages(&view(&rows)), Err(GraphError::Cycle { jobs }) if jobs == ["one", "two"])
        );
    }

    /// languageservices `errors-job-needs-unknown-job.yml`.
    #[test]
    fn github_unknown_job_report() {
        let rows = owned(&[
            ("one", &["two"]),
            ("three", &["four", "five"]),
            ("six", &[]),
        ]);
        assert_eq!(
            messages(&rows),
            [
                "Job 'one' depends on unknown job 'two'.",
                "Job 'three' depends on unknown job 'four'.",
                "Job 'three' depends on unknown job 'five'.",
            ]
        );
        assert_eq!(
            check_needs(&view(&rows))[2],
            NeedsProblem::UnknownNeed {
                job_index: 1,
                need_index: 1,
                job: "three".into(),
                need: "five".into()
            }
        );
        assert!(find_cycle_edges(&view(&rows)).is_empty());
    }

    /// GitHub reports a job downstream of a broken job as a cycle too, and a self-need.
    #[test]
    fn downstream_and_self_needs_are_reported_as_cycles() {
        let rows = owned(&[
            ("a", &[]),
            ("b", &["missing", "a"]),
            ("c", &["b"]),
            ("d", &["d"]),
        ]);
        assert_eq!(
            messages(&rows),
            [
                "Job 'b' depends on unknown job 'missing'.",
                "Job 'c' depends on job 'b' which creates a cycle in the dependency graph.",
                "Job 'd' depends on job 'd' which creates a cycle in the dependency graph.",
            ]
        );
    }

    #[test]
    fn cycle_error_lists_every_stuck_job() {
        let rows = owned(&[
            ("a", &[]),
            ("b", &["c"]),
            ("c", &["b"]),
            ("d", &["c"]),
            ("e", &["a"]),
        ]);
        let err = stages(&view(&rows)).unwrap_err();
        assert_eq!(
            err,
            GraphError::Cycle {
                jobs: vec!["b".into(), "c".into(), "d".into()]
            }
        );
        assert!(
            err.to_string()
                .starts_with("Jobs 'b', 'c', 'd' can never start")
        );
    }

    #[test]
    fn with_dependencies_closes_over_needs_in_workflow_order() {
        let rows = owned(&[
            ("lint", &[]),
            ("build", &[]),
            ("test", &["build"]),
            ("package", &["test", "lint"]),
            ("docs", &[]),
            ("deploy", &["package"]),
        ]);
        let jobs = view(&rows);
        assert_eq!(
            with_dependencies(&jobs, &["PACKAGE"]),
            ["lint", "build", "test", "package"]
        );
        assert_eq!(
            with_dependencies(&jobs, &["docs", "test"]),
            ["build", "test", "docs"]
        );
        assert!(with_dependencies(&jobs, &["nope"]).is_empty());
        assert!(with_dependencies(&jobs, &[]).is_empty());
    }

    #[test]
    fn with_dependencies_survives_cycles_and_unknown_needs() {
        let rows = owned(&[("a", &["b"]), ("b", &["a", "ghost"]), ("c", &[])]);
        assert_eq!(with_dependencies(&view(&rows), &["a"]), ["a", "b"]);
    }
}
