//! Load-time checks of `needs`: unknown jobs, cycles, and at least one job that can
//! start. The order and wording of the reports follow GitHub's parser.

use crate::diagnostic::Location;

use super::reader::Reader;
use super::types::{Job, Located};

pub(crate) fn check_needs(r: &mut Reader, jobs: &[Job], jobs_location: Location) {
    if jobs.is_empty() {
        return;
    }
    let mut satisfied: Vec<&str> = Vec::new();
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
    for (id, needs) in &unsatisfied {
        for need in needs {
            let message = if jobs.iter().any(|j| j.id.value == need.value) {
                format!(
                    "Job '{id}' depends on job '{}' which creates a cycle in the dependency graph.",
                    need.value
                )
            } else {
                format!("Job '{id}' depends on unknown job '{}'.", need.value)
            };
            r.error(need.location, message);
        }
    }
}
