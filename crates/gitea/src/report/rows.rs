//! The engine's events as Gitea's task log sees them: each event becomes zero or more log
//! rows (numbered from 0 across the whole task), and the step bookkeeping the server needs
//! to cut that log into steps (`log_index`, `log_length`, start and stop times, result).
//!
//! Rows: log lines as they are (already masked by the engine; `U+FFFD`, what a lossy
//! decoding leaves of invalid UTF-8, becomes `?` as act_runner writes it; embedded line
//! breaks split a line into rows), `::group::title` / `::endgroup::` for groups (Gitea's
//! web UI folds them), annotations in the workflow-command syntax they were written in
//! (`::error file=a.sh,line=3::message`), a skipped job's reason as a runner row. Summaries
//! are not rows.
//!
//! Steps: by their position in the job's `steps:` (`StepKey.main`), the id Gitea gave each
//! step row when it assigned the task (`models/actions/task.go`). The steps inside a
//! composite action are part of the step using it: their rows count in its range and their
//! starts and ends change nothing. An action's `pre` and `post` steps are part of no step:
//! their rows fall before the first step ("Set up job") or after the last ("Complete job"),
//! as act_runner reports them (its rows of the Pre and Post stages belong to no step). A
//! step's rows run from its first row to its last one; rows of no step printed while a
//! step runs count in that step, so the steps tile the log the way Gitea's UI adds them up.
//! When the number of steps is known ([`TaskLog::step_count`]), states of positions past it
//! are not sent.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::proto::runner::v1::{LogRow, Result as TaskResult, StepState};
use crate::proto::well_known::Timestamp;
use hr_engine::events::{AnnotationEvent, Event, Outcome};

/// One row of the task log, stamped when the reporter received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Row {
    pub time: SystemTime,
    pub content: String,
}

impl Row {
    pub(crate) fn to_proto(&self) -> LogRow {
        LogRow {
            time: Some(timestamp(self.time)),
            content: self.content.clone(),
        }
    }
}

/// A `google.protobuf.Timestamp` of `t` (the epoch for times before it).
pub(crate) fn timestamp(t: SystemTime) -> Timestamp {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
    }
}

/// The protocol's result for an engine outcome.
pub(crate) fn task_result(outcome: Outcome) -> TaskResult {
    match outcome {
        Outcome::Success => TaskResult::Success,
        Outcome::Failure => TaskResult::Failure,
        Outcome::Cancelled => TaskResult::Cancelled,
        Outcome::Skipped => TaskResult::Skipped,
    }
}

/// What the reporter knows of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StepRecord {
    pub started_at: Option<SystemTime>,
    pub stopped_at: Option<SystemTime>,
    /// The protocol's `Result` as its number; `None` while the step has none.
    pub result: Option<i32>,
    /// The global index of its first row, once it has one (or once it ended without any).
    pub log_index: Option<i64>,
    /// One past the global index of its last row.
    pub log_end: i64,
}

/// The rows an event became, and what else it changed.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    pub rows: Vec<Row>,
    /// A step started or ended: the log is flushed and the state sent at once.
    pub boundary: bool,
    /// The job's outputs, from `JobFinished`.
    pub job_outputs: Option<Vec<(String, String)>>,
}

/// The task log's row count and its steps; saved in the spool as part of the task state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TaskLog {
    /// Rows so far (the next row's index).
    pub rows: i64,
    pub steps: BTreeMap<usize, StepRecord>,
    /// The step that started and has not ended.
    pub running: Option<usize>,
    /// How many main steps the job has, when known.
    pub step_count: Option<usize>,
}

impl TaskLog {
    /// Turns one event into rows and step changes, stamped `now`.
    pub(crate) fn apply(&mut self, event: Event, now: SystemTime) -> Applied {
        let mut applied = Applied::default();
        match event {
            Event::JobStarted { .. } | Event::Summary { .. } => {}
            Event::JobSkipped { reason, .. } => {
                let text = format!("The job was skipped: {reason}");
                self.push_text(None, &text, now, &mut applied.rows);
            }
            Event::StepStarted { step, .. } => {
                if let Some(position) = job_step(&step) {
                    let record = self.record(position);
                    record.started_at.get_or_insert(now);
                    self.running = Some(position);
                    applied.boundary = true;
                }
            }
            Event::Log { step, line, .. } => {
                self.push_text(step.and_then(|s| s.main), &line, now, &mut applied.rows);
            }
            Event::GroupStarted { step, title, .. } => {
                let text = format!("::group::{title}");
                self.push_text(step.main, &text, now, &mut applied.rows);
            }
            Event::GroupEnded { step, .. } => {
                self.push_text(step.main, "::endgroup::", now, &mut applied.rows);
            }
            Event::Annotation {
                step, annotation, ..
            } => {
                let text = render_annotation(&annotation);
                self.push_text(step.and_then(|s| s.main), &text, now, &mut applied.rows);
            }
            Event::StepFinished {
                step, conclusion, ..
            } => {
                if let Some(position) = job_step(&step) {
                    self.end_step(position, task_result(conclusion), now);
                    applied.boundary = true;
                }
            }
            Event::JobFinished { outputs, .. } => applied.job_outputs = Some(outputs),
        }
        applied
    }

    /// A row of the runner itself (no step), e.g. "Cancelled by the server".
    pub(crate) fn runner_row(&mut self, text: &str, now: SystemTime) -> Vec<Row> {
        let mut rows = Vec::new();
        self.push_text(None, text, now, &mut rows);
        rows
    }

    /// Appends a row the reporter adds on its own (the empty sentinel of the final call).
    pub(crate) fn sentinel_row(&mut self, now: SystemTime) -> Row {
        self.rows += 1;
        Row {
            time: now,
            content: String::new(),
        }
    }

    /// Ends every step without a result as the job ends with `job`: Cancelled, started or
    /// not, when the job failed or was cancelled (as act_runner reports them); otherwise a
    /// started step is Cancelled and one that never started Skipped.
    /// Steps never heard of are added when the step count is known.
    pub(crate) fn finalize(&mut self, job: TaskResult, now: SystemTime) {
        if let Some(count) = self.step_count {
            for index in 0..count {
                self.record(index);
            }
        }
        let rows = self.rows;
        for record in self.steps.values_mut().filter(|r| r.result.is_none()) {
            // act_runner (internal/pkg/report/reporter.go, `Fire` on the job result):
            // every unfinished step of a failed or cancelled job is Cancelled, started or
            // not. A step of a successful job is only unheard of when it never ran, and
            // those of a skipped job are Skipped.
            let result = match job {
                TaskResult::Failure | TaskResult::Cancelled => TaskResult::Cancelled,
                _ if record.started_at.is_some() => TaskResult::Cancelled,
                _ => TaskResult::Skipped,
            };
            record.result = Some(result as i32);
            if record.started_at.is_some() {
                record.stopped_at = Some(now);
            }
            if record.log_index.is_none() {
                record.log_index = Some(rows);
                record.log_end = rows;
            }
        }
        self.running = None;
    }

    /// The step states to send: every step heard of (only main steps when their number is
    /// known), in index order.
    pub(crate) fn step_states(&self) -> Vec<StepState> {
        self.steps
            .iter()
            .filter(|(index, _)| self.step_count.is_none_or(|count| **index < count))
            .map(|(index, record)| {
                let log_index = record.log_index.unwrap_or(self.rows);
                StepState {
                    id: i64::try_from(*index).unwrap_or(i64::MAX),
                    result: record.result.unwrap_or(TaskResult::Unspecified as i32),
                    started_at: record.started_at.map(timestamp),
                    stopped_at: record.stopped_at.map(timestamp),
                    log_index,
                    log_length: (record.log_end - log_index).max(0),
                }
            })
            .collect()
    }

    fn record(&mut self, index: usize) -> &mut StepRecord {
        self.steps.entry(index).or_insert(StepRecord {
            started_at: None,
            stopped_at: None,
            result: None,
            log_index: None,
            log_end: 0,
        })
    }

    fn end_step(&mut self, index: usize, result: TaskResult, now: SystemTime) {
        let rows = self.rows;
        let record = self.record(index);
        record.stopped_at = Some(now);
        record.result = Some(result as i32);
        if record.log_index.is_none() {
            record.log_index = Some(rows);
            record.log_end = rows;
        }
        if self.running == Some(index) {
            self.running = None;
        }
    }

    /// `text` as rows (one per line), owned by `step` or else by the running step.
    fn push_text(&mut self, step: Option<usize>, text: &str, now: SystemTime, out: &mut Vec<Row>) {
        let owner = step.or(self.running);
        for line in split_rows(text) {
            let index = self.rows;
            self.rows += 1;
            if let Some(owner) = owner {
                let record = self.record(owner);
                record.log_index.get_or_insert(index);
                record.log_end = index + 1;
            }
            out.push(Row {
                time: now,
                content: line,
            });
        }
    }
}

/// The position of a step that is one of the job's own (not inside a composite action,
/// not an action's `pre`/`post`).
fn job_step(step: &hr_engine::events::StepKey) -> Option<usize> {
    step.main.filter(|_| !step.nested)
}

/// One row per line of `text` (one trailing line break ignored; an empty text is one
/// empty row), a trailing `\r` dropped, `U+FFFD` written as `?`.
fn split_rows(text: &str) -> Vec<String> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.split('\n')
        .map(|line| {
            line.strip_suffix('\r')
                .unwrap_or(line)
                .replace('\u{FFFD}', "?")
        })
        .collect()
}

/// `::level file=F,line=L,col=C,title=T::message`, escaped as workflow commands are.
fn render_annotation(a: &AnnotationEvent) -> String {
    let mut properties = Vec::new();
    if let Some(file) = &a.file {
        properties.push(format!("file={}", escape_property(file)));
    }
    if let Some(line) = a.line {
        properties.push(format!("line={line}"));
    }
    if let Some(col) = a.col {
        properties.push(format!("col={col}"));
    }
    if let Some(title) = &a.title {
        properties.push(format!("title={}", escape_property(title)));
    }
    let head = if properties.is_empty() {
        a.level.to_string()
    } else {
        format!("{} {}", a.level, properties.join(","))
    };
    format!("::{head}::{}", escape_data(&a.message))
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use hr_engine::events::{JobKey, LogKind, StepKey};

    fn job() -> JobKey {
        JobKey {
            id: "build".into(),
            name: "build".into(),
        }
    }

    fn step(index: usize) -> StepKey {
        StepKey {
            index,
            id: format!("s{index}"),
            name: format!("step {index}"),
            main: Some(index),
            nested: false,
        }
    }

    fn line_of(step_index: Option<usize>, line: &str) -> Event {
        Event::Log {
            job: job(),
            step: step_index.map(step),
            kind: LogKind::Stdout,
            line: line.into(),
        }
    }

    fn finished(index: usize, conclusion: Outcome) -> Event {
        Event::StepFinished {
            job: job(),
            step: step(index),
            outcome: conclusion,
            conclusion,
            duration: Duration::ZERO,
            outputs: Vec::new(),
        }
    }

    fn contents(log: &mut TaskLog, events: Vec<Event>) -> Vec<String> {
        let now = SystemTime::now();
        events
            .into_iter()
            .flat_map(|e| log.apply(e, now).rows)
            .map(|r| r.content)
            .collect()
    }

    #[test]
    fn steps_tile_the_log_between_set_up_and_complete_rows() {
        let mut task = TaskLog::default();
        let rows = contents(
            &mut task,
            vec![
                line_of(None, "set up 1"),
                line_of(None, "set up 2"),
                Event::StepStarted {
                    job: job(),
                    step: step(0),
                },
                line_of(Some(0), "a"),
                line_of(None, "runner note during step 0"),
                line_of(Some(0), "b"),
                finished(0, Outcome::Success),
                // Step 1 is skipped: no start, no rows.
                finished(1, Outcome::Skipped),
                Event::StepStarted {
                    job: job(),
                    step: step(2),
                },
                finished(2, Outcome::Failure),
                line_of(None, "complete"),
            ],
        );
        assert_eq!(rows.len(), 6);
        let states = task.step_states();
        let spans: Vec<(i64, i64, i32)> = states
            .iter()
            .map(|s| (s.log_index, s.log_length, s.result))
            .collect();
        assert_eq!(
            spans,
            [
                (2, 3, TaskResult::Success as i32),
                (5, 0, TaskResult::Skipped as i32),
                (5, 0, TaskResult::Failure as i32),
            ]
        );
        assert!(states[0].started_at.is_some() && states[0].stopped_at.is_some());
        assert!(
            states[1].started_at.is_none(),
            "a skipped step never started"
        );
    }

    #[test]
    fn groups_annotations_and_odd_text_become_readable_rows() {
        let mut task = TaskLog::default();
        let annotation =
            |file: Option<&str>, line, title: Option<&str>, message: &str| Event::Annotation {
                job: job(),
                step: Some(step(0)),
                annotation: AnnotationEvent {
                    level: "error",
                    message: message.into(),
                    title: title.map(String::from),
                    file: file.map(String::from),
                    line,
                    col: None,
                    from_runner: false,
                },
            };
        let rows = contents(
            &mut task,
            vec![
                Event::GroupStarted {
                    job: job(),
                    step: step(0),
                    title: "Install".into(),
                },
                line_of(Some(0), "bad \u{FFFD} byte\r"),
                line_of(Some(0), "two\nlines\n"),
                line_of(Some(0), ""),
                Event::GroupEnded {
                    job: job(),
                    step: step(0),
                },
                annotation(Some("a.sh"), Some(3), None, "message"),
                annotation(None, None, Some("t: x, y"), "50% done\nnext"),
                Event::Summary {
                    job: job(),
                    markdown: "# not a row".into(),
                    steps: vec![(0, "# not a row".into())],
                },
            ],
        );
        assert_eq!(
            rows,
            [
                "::group::Install",
                "bad ? byte",
                "two",
                "lines",
                "",
                "::endgroup::",
                "::error file=a.sh,line=3::message",
                "::error title=t%3A x%2C y::50%25 done%0Anext",
            ]
        );
        assert_eq!(task.rows, 8);
        assert_eq!(task.step_states()[0].log_length, 8);
    }

    #[test]
    fn finalize_ends_unfinished_steps_as_act_runner_does() {
        let mut task = TaskLog {
            step_count: Some(4),
            ..TaskLog::default()
        };
        contents(
            &mut task,
            vec![
                finished(0, Outcome::Success),
                Event::StepStarted {
                    job: job(),
                    step: step(1),
                },
                line_of(Some(1), "interrupted"),
                // A post step (index past the main steps) is not sent.
                finished(7, Outcome::Success),
            ],
        );
        let mut cancelled = task.clone();
        cancelled.finalize(TaskResult::Cancelled, SystemTime::now());
        let results = |l: &TaskLog| -> Vec<(i64, i32)> {
            l.step_states().iter().map(|s| (s.id, s.result)).collect()
        };
        let c = TaskResult::Cancelled as i32;
        let s = TaskResult::Skipped as i32;
        let ok = TaskResult::Success as i32;
        assert_eq!(results(&cancelled), [(0, ok), (1, c), (2, c), (3, c)]);
        let mut failed = task.clone();
        failed.finalize(TaskResult::Failure, SystemTime::now());
        assert_eq!(results(&failed), [(0, ok), (1, c), (2, c), (3, c)]);
        let mut succeeded = task.clone();
        succeeded.finalize(TaskResult::Success, SystemTime::now());
        assert_eq!(results(&succeeded), [(0, ok), (1, c), (2, s), (3, s)]);
        let states = failed.step_states();
        assert_eq!((states[1].log_index, states[1].log_length), (0, 1));
        assert_eq!((states[3].log_index, states[3].log_length), (1, 0));
        assert!(states[1].stopped_at.is_some() && states[2].stopped_at.is_none());
    }

    #[test]
    fn a_job_skipped_by_its_condition_says_why() {
        let mut task = TaskLog::default();
        let rows = contents(
            &mut task,
            vec![Event::JobSkipped {
                job: job(),
                reason: "if evaluated to false".into(),
            }],
        );
        assert_eq!(rows, ["The job was skipped: if evaluated to false"]);
    }
}
