//! A GitHub job's events, shipped as actions/runner ships them: step states to the results
//! service (`WorkflowStepsUpdate`), each step's log and the job's log as append blobs
//! written while they grow (one block per [`FLUSH_EVERY`], sealed when the step ends), the
//! lines of running steps to the live console feed when the job offers one, and
//! what `completejob` needs at the end: the conclusion, the job outputs, every step's
//! result and the annotations.
//!
//! Steps are the job's own steps (by position, with the message's step ids as external ids;
//! the steps inside a composite action log into the step that uses it), actions' pre and
//! post steps (new ids), and two of the runner's own, "Set up job" (the runner lines before
//! the first step) and "Complete job" (those after the last), as GitHub shows them. Log
//! lines carry actions/runner's timestamp prefix; groups and annotations become
//! `##[group]`, `##[endgroup]`, `##[error]`... lines.
//!
//! A results service that fails is retried ([`ATTEMPTS`] times); a log that still cannot
//! be written is left out with a warning, and the job log (written at the end, retried
//! the same way) keeps every line.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use hr_engine::events::{AnnotationEvent, Event, EventReceiver, LogKind, Outcome, StepKey};

use crate::job::JobMessage;
use crate::live_console::LiveConsole;
use crate::results::{LiveLog, ResultsClient, StepConclusion, StepState, StepUpdate, timestamp};
use crate::run_service::{
    Annotation, AnnotationLevel, CompleteJob, Conclusion, StepResult, StepStatus,
};

/// How often pending log lines and step states go out.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// How often a results call is tried before its log is left out.
pub const ATTEMPTS: u32 = 3;

/// Azure's append blocks are at most 4 MiB: pending log text goes out before that.
const MAX_BLOCK: usize = 4 << 20;

/// One step as GitHub shows it.
#[derive(Debug)]
struct StepRecord {
    external_id: String,
    number: u32,
    name: String,
    state: StepState,
    started_at: Option<String>,
    completed_at: Option<String>,
    conclusion: StepConclusion,
    log: Option<LiveLog>,
    /// Lines not yet appended to the blob.
    pending: Vec<u8>,
    lines: u64,
    /// The blob could not be opened or written: lines stay in the job log only.
    log_lost: bool,
    /// Lines not yet sent to the live console.
    feed: Vec<String>,
}

/// What the events of one job add up to.
#[derive(Debug, Default)]
pub struct JobReport {
    pub result: Option<Outcome>,
    pub outputs: Vec<(String, String)>,
    pub step_results: Vec<StepResult>,
    pub annotations: Vec<Annotation>,
}

impl JobReport {
    /// The `completejob` request of this report.
    pub fn complete_job(&self, job: &JobMessage, billing_owner_id: Option<String>) -> CompleteJob {
        CompleteJob {
            plan_id: job.plan_id.clone(),
            job_id: job.job_id.clone(),
            conclusion: conclusion(self.result.unwrap_or(Outcome::Failure)),
            outputs: self
                .outputs
                .iter()
                .map(|(k, v)| (k.clone(), (v.clone(), false)))
                .collect(),
            step_results: self.step_results.clone(),
            annotations: self.annotations.clone(),
            billing_owner_id,
        }
    }
}

/// A job result as `completejob` spells it.
pub fn conclusion(outcome: Outcome) -> Conclusion {
    match outcome {
        Outcome::Success => Conclusion::Succeeded,
        Outcome::Failure => Conclusion::Failed,
        Outcome::Cancelled => Conclusion::Canceled,
        Outcome::Skipped => Conclusion::Skipped,
    }
}

fn step_conclusion(outcome: Outcome) -> StepConclusion {
    match outcome {
        Outcome::Success => StepConclusion::Success,
        Outcome::Failure => StepConclusion::Failure,
        Outcome::Cancelled => StepConclusion::Cancelled,
        Outcome::Skipped => StepConclusion::Skipped,
    }
}

/// Ships one job's events until the job's last sink is dropped.
#[derive(Debug)]
pub struct Reporter<'a> {
    job: &'a JobMessage,
    results: Option<ResultsClient>,
    steps: Vec<StepRecord>,
    /// The record of each of the job's steps (by position) and pre/post step (by index).
    main_steps: BTreeMap<usize, usize>,
    side_steps: BTreeMap<usize, usize>,
    /// The step a `step: None` line goes to: "Set up job", then "Complete job".
    runner_step: usize,
    job_log: Vec<u8>,
    job_lines: u64,
    report: JobReport,
    dirty: bool,
    /// The live console feed, while it works.
    console: Option<LiveConsole>,
}

impl<'a> Reporter<'a> {
    /// A reporter shipping to `results` (when the job has a results service) and the live
    /// console feed `console` (when offered and connected).
    pub fn new(
        job: &'a JobMessage,
        results: Option<ResultsClient>,
        console: Option<LiveConsole>,
    ) -> Reporter<'a> {
        let mut reporter = Reporter {
            job,
            results,
            steps: Vec::new(),
            main_steps: BTreeMap::new(),
            side_steps: BTreeMap::new(),
            runner_step: 0,
            job_log: Vec::new(),
            job_lines: 0,
            report: JobReport::default(),
            dirty: false,
            console,
        };
        reporter.runner_step = reporter.add_step(uuid::Uuid::new_v4().to_string(), "Set up job");
        reporter
    }

    /// Consumes `events` until they end, shipping as it goes; the report for
    /// `completejob`.
    pub async fn run(mut self, mut events: EventReceiver) -> JobReport {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.open_log(0).await;
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.event(event).await,
                    None => break,
                },
                _ = tick.tick() => self.flush().await,
            }
        }
        self.finish().await
    }

    fn add_step(&mut self, external_id: String, name: &str) -> usize {
        self.steps.push(StepRecord {
            external_id,
            number: self.steps.len() as u32 + 1,
            name: name.to_string(),
            state: StepState::InProgress,
            started_at: Some(timestamp(SystemTime::now())),
            completed_at: None,
            conclusion: StepConclusion::Unknown,
            log: None,
            pending: Vec::new(),
            lines: 0,
            log_lost: false,
            feed: Vec::new(),
        });
        self.dirty = true;
        self.steps.len() - 1
    }

    /// The record a step's events go to, made when the step first shows up.
    fn record_of(&mut self, step: &StepKey) -> (usize, bool) {
        if let Some(main) = step.main {
            if let Some(&i) = self.main_steps.get(&main) {
                return (i, false);
            }
            let id = self
                .job
                .steps
                .get(main)
                .map(|s| s.id.clone())
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let i = self.add_step(id, &step.name);
            self.main_steps.insert(main, i);
            return (i, true);
        }
        if let Some(&i) = self.side_steps.get(&step.index) {
            return (i, false);
        }
        let i = self.add_step(uuid::Uuid::new_v4().to_string(), &step.name);
        self.side_steps.insert(step.index, i);
        (i, true)
    }

    async fn event(&mut self, event: Event) {
        match event {
            Event::StepStarted { step, .. } => {
                if self.runner_step == 0 && self.steps[0].state == StepState::InProgress {
                    self.end_step(0, Outcome::Success).await;
                }
                let (i, new) = self.record_of(&step);
                if new {
                    self.open_log(i).await;
                }
            }
            Event::Log {
                step, kind, line, ..
            } => {
                let text = match kind {
                    LogKind::Debug => format!("##[debug]{line}"),
                    _ => line,
                };
                let i = match &step {
                    Some(step) => self.record_of(step).0,
                    None => self.runner_step,
                };
                self.line(i, &text);
            }
            Event::GroupStarted { step, title, .. } => {
                let i = self.record_of(&step).0;
                self.line(i, &format!("##[group]{title}"));
            }
            Event::GroupEnded { step, .. } => {
                let i = self.record_of(&step).0;
                self.line(i, "##[endgroup]");
            }
            Event::Annotation {
                step, annotation, ..
            } => {
                let i = match &step {
                    Some(step) => self.record_of(step).0,
                    None => self.runner_step,
                };
                self.line(
                    i,
                    &format!("##[{}]{}", annotation.level, annotation.message),
                );
                let number = self.steps[i].number;
                self.report
                    .annotations
                    .push(to_annotation(annotation, number));
            }
            Event::StepFinished {
                step, conclusion, ..
            } => {
                let (i, _) = self.record_of(&step);
                // A step inside a composite action ends with its parent, not before.
                if !step.nested {
                    self.end_step(i, conclusion).await;
                }
            }
            Event::JobFinished {
                result, outputs, ..
            } => {
                self.report.result = Some(result);
                self.report.outputs = outputs;
                let id = uuid::Uuid::new_v4().to_string();
                self.runner_step = self.add_step(id, "Complete job");
                self.open_log(self.runner_step).await;
            }
            Event::JobSkipped { reason, .. } => {
                self.report.result = Some(Outcome::Skipped);
                let i = self.runner_step;
                self.line(i, &reason);
            }
            Event::JobStarted { .. } | Event::Summary { .. } => {}
        }
    }

    fn line(&mut self, i: usize, text: &str) {
        let stamped = format!("{} {text}\n", timestamp(SystemTime::now()));
        self.job_log.extend_from_slice(stamped.as_bytes());
        self.job_lines += 1;
        let record = &mut self.steps[i];
        record.lines += 1;
        if !record.log_lost {
            record.pending.extend_from_slice(stamped.as_bytes());
        }
        if self.console.is_some() {
            record.feed.push(text.to_string());
        }
    }

    async fn open_log(&mut self, i: usize) {
        let Some(results) = &self.results else { return };
        let id = self.steps[i].external_id.clone();
        let mut last = None;
        for _ in 0..ATTEMPTS {
            match results.open_step_log(&id).await {
                Ok(log) => {
                    self.steps[i].log = Some(log);
                    return;
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            tracing::warn!(step = %self.steps[i].name, error = %e, "the step's log cannot be opened; its lines stay in the job log");
        }
        self.steps[i].log_lost = true;
    }

    async fn end_step(&mut self, i: usize, outcome: Outcome) {
        {
            let record = &mut self.steps[i];
            if record.state == StepState::Completed {
                return;
            }
            record.state = StepState::Completed;
            record.conclusion = step_conclusion(outcome);
            record.completed_at = Some(timestamp(SystemTime::now()));
        }
        self.dirty = true;
        self.seal(i).await;
        self.send_steps().await;
    }

    /// Sends a step's lines not yet on the live console; a feed that fails is given up.
    async fn feed(&mut self, i: usize) {
        let Some(console) = self.console.as_mut() else {
            return;
        };
        let record = &mut self.steps[i];
        if record.feed.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut record.feed);
        let start = record.lines + 1 - lines.len() as u64;
        if let Err(e) = console.send(&record.external_id, &lines, start).await {
            tracing::warn!(error = %e, "the live console feed failed; the log still goes to the results service");
            self.console = None;
        }
    }

    /// Appends what is pending of open steps and sends changed step states.
    async fn flush(&mut self) {
        for i in 0..self.steps.len() {
            self.feed(i).await;
        }
        for i in 0..self.steps.len() {
            let record = &mut self.steps[i];
            if record.pending.is_empty() || record.state == StepState::Completed {
                continue;
            }
            let Some(log) = record.log.clone() else {
                continue;
            };
            while !record.pending.is_empty() {
                let cut = record.pending.len().min(MAX_BLOCK);
                let block: Vec<u8> = record.pending.drain(..cut).collect();
                if !try_n(|| log.append(&block)).await {
                    tracing::warn!(step = %record.name, "the step's log cannot be written; its lines stay in the job log");
                    record.log_lost = true;
                    record.pending.clear();
                }
            }
        }
        if self.dirty {
            self.send_steps().await;
        }
    }

    /// Seals a finished step's log with what is left of it.
    async fn seal(&mut self, i: usize) {
        self.feed(i).await;
        let record = &mut self.steps[i];
        let Some(log) = record.log.take() else { return };
        if record.log_lost {
            return;
        }
        let rest = std::mem::take(&mut record.pending);
        let (head, last) = rest.split_at(rest.len().saturating_sub(MAX_BLOCK));
        let lines = record.lines;
        let mut ok = true;
        for block in head.chunks(MAX_BLOCK) {
            ok = ok && try_n(|| log.append(block)).await;
        }
        ok = ok && try_n(|| log.finish(last, lines)).await;
        if !ok {
            tracing::warn!(step = %record.name, "the step's log cannot be sealed; its lines stay in the job log");
            record.log_lost = true;
        }
    }

    async fn send_steps(&mut self) {
        let Some(results) = self.results.clone() else {
            self.dirty = false;
            return;
        };
        let updates: Vec<StepUpdate> = self
            .steps
            .iter()
            .map(|s| StepUpdate {
                external_id: s.external_id.clone(),
                number: s.number,
                name: s.name.clone(),
                state: s.state,
                started_at: s.started_at.clone(),
                completed_at: s.completed_at.clone(),
                conclusion: s.conclusion,
            })
            .collect();
        if try_n(|| results.update_steps(&updates)).await {
            self.dirty = false;
        } else {
            tracing::warn!("the results service refused the step states; sent again later");
        }
    }

    async fn finish(mut self) -> JobReport {
        let result = self.report.result.unwrap_or(Outcome::Failure);
        let last = self.runner_step;
        self.end_step(last, Outcome::Success).await;
        // Steps the engine never finished (a job stopped hard) end with the job.
        for i in 0..self.steps.len() {
            if self.steps[i].state != StepState::Completed {
                self.end_step(i, result).await;
            }
        }
        if let Some(console) = self.console.take() {
            console.close().await;
        }
        if let Some(results) = self.results.clone() {
            let (log, lines) = (std::mem::take(&mut self.job_log), self.job_lines);
            if !try_n(|| results.upload_job_log(&log, lines, MAX_BLOCK)).await {
                tracing::warn!("the job's log could not be uploaded to the results service");
            }
        }
        self.report.step_results = self
            .steps
            .iter()
            .map(|s| StepResult {
                external_id: s.external_id.clone(),
                number: s.number,
                name: s.name.clone(),
                status: StepStatus::Completed,
                conclusion: Some(match s.conclusion {
                    StepConclusion::Success => Conclusion::Succeeded,
                    StepConclusion::Cancelled => Conclusion::Canceled,
                    StepConclusion::Skipped => Conclusion::Skipped,
                    StepConclusion::Failure | StepConclusion::Unknown => Conclusion::Failed,
                }),
                started_at: s.started_at.clone(),
                completed_at: s.completed_at.clone(),
                completed_log_url: None,
                completed_log_lines: Some(s.lines),
            })
            .collect();
        self.report
    }
}

/// Tries a results call up to [`ATTEMPTS`] times, a second apart.
async fn try_n<F, Fut>(mut call: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::results::ResultsError>>,
{
    for attempt in 1..=ATTEMPTS {
        match call().await {
            Ok(()) => return true,
            Err(e) if attempt < ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "a results call failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => tracing::warn!(error = %e, "a results call failed {ATTEMPTS} times"),
        }
    }
    false
}

fn to_annotation(a: AnnotationEvent, step_number: u32) -> Annotation {
    let level = match a.level {
        "error" => AnnotationLevel::Failure,
        "warning" => AnnotationLevel::Warning,
        _ => AnnotationLevel::Notice,
    };
    Annotation {
        level,
        message: a.message,
        title: a.title,
        path: a.file,
        start_line: a.line.map(u64::from),
        end_line: a.line.map(u64::from),
        start_column: a.col.map(u64::from),
        end_column: a.col.map(u64::from),
        step_number: Some(step_number),
    }
}
