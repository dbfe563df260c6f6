//! Which jobs of a workflow run may start: a job starts once every job it `needs` is done
//! (ids compared ignoring ASCII case). Each job keeps a count of the needs still open, and
//! each finished job lowers the counts of the jobs that need it, so a run of n jobs costs
//! O(n + needs) instead of a scan over every job after each one finishes.

use std::collections::{HashMap, HashSet};

use workflows::model::Job;

/// The start order of a run's jobs, by their index in the workflow.
#[derive(Debug)]
pub(super) struct ReadyJobs {
    /// Per job, how many of its needs are not done yet; `None` when it is not selected
    /// or has been handed out.
    open_needs: Vec<Option<usize>>,
    /// The jobs that need a job, by its folded id (one entry per `needs` item).
    dependents: HashMap<String, Vec<usize>>,
    /// Folded ids already done, so finishing twice counts once.
    done: HashSet<String>,
}

fn fold(id: &str) -> String {
    id.to_ascii_lowercase()
}

impl ReadyJobs {
    /// `selected`: the ids of the jobs to run (the others never start); `done`: jobs that
    /// count as finished from the start (results handed over by a server).
    pub(super) fn new<'a>(
        jobs: &[Job],
        selected: &[String],
        done: impl IntoIterator<Item = &'a String>,
    ) -> Self {
        let selected: HashSet<String> = selected.iter().map(|id| fold(id)).collect();
        let done: HashSet<String> = done.into_iter().map(|id| fold(id)).collect();
        let mut dependents: HashMap<String, Vec<usize>> = HashMap::new();
        let open_needs = jobs
            .iter()
            .enumerate()
            .map(|(index, job)| {
                if !selected.contains(&fold(&job.id.value)) {
                    return None;
                }
                let mut open = 0;
                for need in &job.needs {
                    let need = fold(&need.value);
                    if !done.contains(&need) {
                        open += 1;
                        dependents.entry(need).or_default().push(index);
                    }
                }
                Some(open)
            })
            .collect();
        ReadyJobs {
            open_needs,
            dependents,
            done,
        }
    }

    /// The jobs that may start now, in workflow order; each is handed out once.
    pub(super) fn take_ready(&mut self) -> Vec<usize> {
        let mut ready = Vec::new();
        for (index, open) in self.open_needs.iter_mut().enumerate() {
            if *open == Some(0) {
                *open = None;
                ready.push(index);
            }
        }
        ready
    }

    /// Marks `id` done; the jobs that may start because of it, in workflow order.
    pub(super) fn finished(&mut self, id: &str) -> Vec<usize> {
        let id = fold(id);
        if !self.done.insert(id.clone()) {
            return Vec::new();
        }
        let mut ready = Vec::new();
        for index in self.dependents.remove(&id).unwrap_or_default() {
            if let Some(open) = self.open_needs.get_mut(index).and_then(Option::as_mut) {
                *open -= 1;
                if *open == 0 {
                    self.open_needs[index] = None;
                    ready.push(index);
                }
            }
        }
        ready.sort_unstable();
        ready.dedup();
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(text: &str) -> Vec<Job> {
        match workflows::model::load_with_outside_jobs(
            text,
            "w.yml",
            &["given".to_string()],
            workflows::model::Dialect::Github,
        ) {
            Ok(w) => w.jobs,
            Err(d) => panic!("{d}"),
        }
    }

    #[test]
    fn jobs_start_in_workflow_order_once_their_needs_are_done() {
        let jobs = jobs(
            "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [run: x]\n  b:\n    needs: [a, c]\n    runs-on: x\n    steps: [run: x]\n  c:\n    runs-on: x\n    steps: [run: x]\n  d:\n    needs: a\n    runs-on: x\n    steps: [run: x]\n  e:\n    needs: given\n    runs-on: x\n    steps: [run: x]\n",
        );
        let all: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        // Ids compare ignoring ASCII case.
        let mut ready = ReadyJobs::new(&jobs, &all, &["GIVEN".to_string()]);
        assert_eq!(ready.take_ready(), [0, 2, 4]);
        assert_eq!(ready.take_ready(), Vec::<usize>::new());
        assert_eq!(ready.finished("c"), Vec::<usize>::new());
        assert_eq!(ready.finished("A"), [1, 3]);
        assert_eq!(ready.finished("a"), Vec::<usize>::new());
        // Not selected: never starts.
        let mut ready = ReadyJobs::new(&jobs, &all[..2], &[]);
        assert_eq!(ready.take_ready(), [0]);
        assert_eq!(ready.finished("a"), Vec::<usize>::new());
    }
}
