//! Load-time checks of `needs`: unknown jobs, cycles, and at least one job that can
//! start. The order and wording of the reports follow GitHub's parser.

use crate::diagnostic::Location;

use super::reader::Reader;
use super::suggest::{did_you_mean, quoted_list};
use super::types::{Job, Located};

/// `outside`: jobs that ran elsewhere (a Gitea task's needs): they satisfy `needs:` too.
pub(crate) fn check_needs(
    r: &mut Reader,
    jobs: &[Job],
    outside: &[String],
    jobs_location: Location,
) {
    if jobs.is_empty() {
        return;
    }
    let mut satisfied: Vec<&str> = outside.iter().map(String::as_str).collect();
    let mut unsatisfied: Vec<(&str, Vec<&Located<String>>)> = Vec::new();
    for job in jobs {
        if job.needs.is_empty() {
            satisfied.push(&job.id.value);
        } else {
            unsatisfied.push((&job.id.value, job.needs.iter().collect()));
        }
    }
    if satisfied.is_empty() {
        r.error(
            jobs_location,
            "The workflow must contain at least one job with no dependencies.",
            "Remove 'needs:' from the job that should run first.",
        );
        return;
    }
    while let Some(current) = (!satisfied.is_empty()).then(|| satisfied.remove(0)) {
        let mut i = unsatisfied.len();
        while i > 0 {
            i -= 1;
            unsatisfied[i].1.retain(|need| need.value != current);
            if unsatisfied[i].1.is_empty() {
                let (id, _) = unsatisfied.remove(i);
                satisfied.push(id);
            }
        }
    }
    let ids: Vec<&str> = jobs.iter().map(|j| j.id.value.as_str()).collect();
    for (id, needs) in &unsatisfied {
        for need in needs {
            if ids.contains(&need.value.as_str()) {
                r.error(
                    need.location,
                    format!(
                        "Job '{id}' depends on job '{}' which creates a cycle in the dependency graph.",
                        need.value
                    ),
                    format!(
                        "Jobs cannot wait for each other in a loop: remove '{}' from the 'needs' of '{id}', or the 'needs' edge that leads back to '{id}'.",
                        need.value
                    ),
                );
            } else {
                let help = match did_you_mean(&need.value, &ids, "job ids") {
                    h if h.starts_with("Did you mean") => {
                        format!("{h} The jobs are: {}.", quoted_list(&ids))
                    }
                    _ => format!(
                        "'needs' takes the ids of jobs in this workflow: {}.",
                        quoted_list(&ids)
                    ),
                };
                r.error(
                    need.location,
                    format!("Job '{id}' depends on unknown job '{}'.", need.value),
                    help,
                );
            }
        }
    }
}

/// Gitea and Forgejo drop a `needs:` naming a job the workflow does not have, and the job
/// runs as if it were not there (their servers' `job_emitter` resolves needs by the jobs
/// that exist).
pub(crate) fn drop_unknown_needs(jobs: &mut [Job], outside: &[String]) {
    let ids: Vec<String> = jobs.iter().map(|j| j.id.value.clone()).collect();
    for job in jobs.iter_mut() {
        job.needs
            .retain(|n| ids.contains(&n.value) || outside.contains(&n.value));
    }
}
