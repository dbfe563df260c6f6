//! What the end-to-end tests of the daemon read on the fake Gitea's side: single-job task
//! payloads as Gitea sends them, waits for a task to finish or a row to be stored (panicking
//! with the daemon's output), the rows a test looks for, and the consistency of the step
//! states the daemon reported with the stored log.

use std::time::Duration;

use crate::daemon_process::Daemon;
use crate::fake_gitea::{FakeGitea, Method, TaskView};

/// How long a test waits for a task or a row: generous, the test machine is small and
/// shared.
pub const WAIT: Duration = Duration::from_secs(180);

/// A single-job payload as Gitea sends it: `job` is the YAML under the job id `test`
/// (indented by 4), without `runs-on` (it is `ubuntu-latest`).
pub fn job_payload(job: &str) -> String {
    format!("name: ci\non: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n{job}")
}

/// Waits for task `id` to be final with its log closed; panics with the daemon's output.
pub fn wait_finished(fake: &FakeGitea, daemon: &Daemon, id: i64) -> TaskView {
    fake.wait_task_finished(id, WAIT).unwrap_or_else(|| {
        panic!(
            "task {id} did not finish: {:#?}\n--- daemon output\n{}",
            fake.task(id).map(|t| (t.status, t.log_lines(), t.steps)),
            daemon.output()
        )
    })
}

/// Waits until the fake stored a row equal to `row` for task `id`.
pub fn wait_row(fake: &FakeGitea, daemon: &Daemon, id: i64, row: &str) {
    fake.wait_for(WAIT, |f| {
        f.task(id)
            .filter(|t| t.log.iter().any(|l| l.content == row))
    })
    .unwrap_or_else(|| {
        panic!(
            "row {row:?} never stored: {:?}\n--- daemon output\n{}",
            fake.task(id).map(|t| t.log_lines()),
            daemon.output()
        )
    });
}

/// Waits until the daemon polled once successfully (it is past its start-up).
pub fn wait_polling(fake: &FakeGitea, daemon: &Daemon) {
    fake.wait_for(WAIT, |f| {
        f.requests_of(Method::FetchTask)
            .iter()
            .any(|r| r.status == 200)
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the daemon never polled:\n{}", daemon.output()));
}

/// A task, its stored log and the daemon's output, for assertion messages.
pub fn describe_task(task: &TaskView, daemon: &Daemon) -> String {
    format!(
        "status {:?}, reported {:?}, steps {:#?}\n--- stored log\n{}\n--- daemon output\n{}",
        task.status,
        task.reported_result,
        task.steps,
        task.log_lines().join("\n"),
        daemon.output()
    )
}

/// How many stored rows of `task` are exactly `row`.
pub fn row_count(task: &TaskView, row: &str) -> usize {
    task.log.iter().filter(|l| l.content == row).count()
}

/// `{prefix}1` .. `{prefix}{n}`.
pub fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i}")).collect()
}

/// The stored rows of task `task` that `keep` selects, in stored order.
pub fn rows_where(task: &TaskView, keep: impl Fn(&str) -> bool) -> Vec<String> {
    task.log
        .iter()
        .map(|l| l.content.clone())
        .filter(|c| keep(c))
        .collect()
}

/// Checks what every finished task's step states must satisfy: each reported step has a
/// result, start and stop times in order, and a `log_index` / `log_length` range inside the
/// stored log; the ranges of the steps follow each other without overlapping. Returns the
/// problems found (empty when consistent).
pub fn step_state_problems(task: &TaskView) -> Vec<String> {
    let mut problems = Vec::new();
    let stored = task.log.len() as i64;
    let mut end_of_previous = 0i64;
    for (id, step) in &task.steps {
        if step.log_index < 0 || step.log_length < 0 {
            problems.push(format!("step {id}: negative log range {step:?}"));
        }
        if step.log_index + step.log_length > stored {
            problems.push(format!(
                "step {id}: log range {}+{} past the {stored} stored rows",
                step.log_index, step.log_length
            ));
        }
        if step.log_length > 0 && step.log_index < end_of_previous {
            problems.push(format!(
                "step {id}: log range starts at {} inside the previous step's (ends at {end_of_previous})",
                step.log_index
            ));
        }
        if step.log_length > 0 {
            end_of_previous = step.log_index + step.log_length;
        }
        if let (Some(start), Some(stop)) = (step.started_at, step.stopped_at)
            && stop < start
        {
            problems.push(format!("step {id}: stopped before it started"));
        }
    }
    problems
}
