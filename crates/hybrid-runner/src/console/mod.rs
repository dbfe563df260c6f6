//! What `hybrid-runner exec` prints: the engine's [`Event`]s (already masked) turned
//! into human terminal output ([`HumanRenderer`]) or into JSON lines ([`JsonRenderer`]).
//!
//! Human output, one job at a time (no prefix, a header line per job):
//!
//! ```text
//! Job build (ubuntu, 18)
//! ▶ Run echo hi
//!   hi
//! ✔ Run echo hi (0.01s)
//! ✔ Job build (ubuntu, 18) succeeded (0.02s)
//! ```
//!
//! With jobs in parallel every line starts with `[job name]` instead. Groups open a
//! `▼ title` header and indent their lines one level more; annotations become
//! `error: a.rs:3: message`. Inside GitHub/Gitea Actions each step is folded into a real
//! `::group::job / step` section and annotations are re-emitted as workflow commands.
//! [`HumanRenderer::finish`] prints the table of jobs and their step summaries.

mod describe;
mod json;
mod text;
mod wrapup;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use hr_engine::events::{AnnotationEvent, Event, JobKey, LogKind, Outcome, StepKey};
use workflows::diagnostic::one_line;

use describe::{
    annotation_style, annotation_text, first_line, icon, job_label, outcome_style, step_detail,
    step_label, workflow_command,
};
pub use json::JsonRenderer;
pub use text::human_duration;
use text::{Style, clean_line, defuse_command, escape_data, paint};

/// How [`HumanRenderer`] presents a run.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Paint with ANSI colours (see [`color_wanted`]).
    pub color: bool,
    /// Show `LogKind::Debug` lines (ACTIONS_STEP_DEBUG).
    pub debug: bool,
    /// Prefix every line with the job (and leg): the engine sets it when jobs run in parallel.
    pub prefix_jobs: bool,
    /// Running inside GitHub/Gitea Actions: emit real `::group::`/`::endgroup::` and
    /// `::error ...::` commands so the outer log folds and annotates.
    pub nested_in_actions: bool,
}

/// Whether stdout is a terminal and `NO_COLOR` is unset (or empty, as no-color.org says).
pub fn color_wanted() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Where a job's output stands.
#[derive(Debug, Default)]
struct JobState {
    /// Index into the prefix palette.
    color: usize,
    /// Inside a `::group::` of the current step.
    in_group: bool,
}

/// A finished (or never finished) job for the final table.
#[derive(Debug)]
struct JobRow {
    label: String,
    /// `None`: started but no `JobFinished` arrived.
    result: Option<Outcome>,
    duration: Option<Duration>,
}

/// Human output: one line per step start and finish, indented log lines, folded groups,
/// highlighted annotations, and at the end a table of jobs and their step summaries.
#[derive(Debug)]
pub struct HumanRenderer {
    options: RenderOptions,
    jobs: HashMap<JobKey, JobState>,
    /// Jobs started and not finished, in start order.
    running: Vec<JobKey>,
    /// Table rows, in the order jobs finished (or were skipped).
    rows: Vec<JobRow>,
    /// Step summaries per job, in the order they arrived.
    summaries: Vec<(JobKey, String)>,
    /// Every annotation, for the recap after the table.
    annotations: Vec<(String, AnnotationEvent)>,
    /// The job whose step is folded in an outer `::group::` (nested in Actions).
    fold: Option<JobKey>,
    printed_any: bool,
}

impl HumanRenderer {
    pub fn new(options: RenderOptions) -> Self {
        HumanRenderer {
            options,
            jobs: HashMap::new(),
            running: Vec::new(),
            rows: Vec::new(),
            summaries: Vec::new(),
            annotations: Vec::new(),
            fold: None,
            printed_any: false,
        }
    }

    /// Prints what `event` shows (some events, like summaries, only show in [`Self::finish`]).
    pub fn handle(&mut self, event: &Event, out: &mut dyn Write) -> std::io::Result<()> {
        match event {
            Event::JobStarted { job } => self.job_started(job, out)?,
            Event::JobSkipped { job, reason } => self.job_skipped(job, reason, out)?,
            Event::StepStarted { job, step } => self.step_started(job, step, out)?,
            Event::Log {
                job,
                step,
                kind,
                line,
            } => self.log(job, step.is_some(), *kind, line, out)?,
            Event::GroupStarted { job, title, .. } => self.group_started(job, title, out)?,
            Event::GroupEnded { job, .. } => self.state(job).in_group = false,
            Event::Annotation {
                job,
                step,
                annotation,
            } => self.annotation(job, step.is_some(), annotation, out)?,
            Event::StepFinished {
                job,
                step,
                outcome,
                conclusion,
                duration,
                ..
            } => self.step_finished(job, step, (*outcome, *conclusion), *duration, out)?,
            Event::JobFinished {
                job,
                result,
                duration,
                ..
            } => self.job_finished(job, *result, *duration, out)?,
            Event::Summary { job, markdown, .. } => {
                match self.summaries.iter_mut().find(|(key, _)| key == job) {
                    Some((_, text)) => {
                        if !text.is_empty() && !text.ends_with('\n') {
                            text.push('\n');
                        }
                        text.push_str(markdown);
                    }
                    None => self.summaries.push((job.clone(), markdown.clone())),
                }
            }
        }
        out.flush()
    }

    fn job_started(&mut self, job: &JobKey, out: &mut dyn Write) -> std::io::Result<()> {
        self.close_fold(out)?;
        self.state(job);
        if !self.running.contains(job) {
            self.running.push(job.clone());
        }
        if self.options.prefix_jobs {
            return self.line(job, 0, "Job started", Style::Bold, out);
        }
        if self.printed_any {
            writeln!(out)?;
        }
        self.line(job, 0, &format!("Job {}", job_label(job)), Style::Bold, out)
    }

    fn job_skipped(
        &mut self,
        job: &JobKey,
        reason: &str,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        self.close_fold(out)?;
        if !self.options.prefix_jobs && self.printed_any {
            writeln!(out)?;
        }
        let reason = first_line(reason);
        let text = match reason.is_empty() {
            true => format!(
                "{} Job{} skipped",
                icon(Outcome::Skipped),
                self.own_name(job)
            ),
            false => format!(
                "{} Job{} skipped: {reason}",
                icon(Outcome::Skipped),
                self.own_name(job)
            ),
        };
        self.line(job, 0, &text, Style::Dim, out)?;
        self.rows.push(JobRow {
            label: job_label(job),
            result: Some(Outcome::Skipped),
            duration: None,
        });
        Ok(())
    }

    fn step_started(
        &mut self,
        job: &JobKey,
        step: &StepKey,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        self.close_fold(out)?;
        self.state(job).in_group = false;
        if self.folds_steps() {
            let title = format!("{} / {}", job_label(job), step_label(step));
            writeln!(out, "::group::{}", escape_data(&title))?;
            self.fold = Some(job.clone());
            self.printed_any = true;
            return Ok(());
        }
        let text = format!("▶ {}", step_label(step));
        self.line(job, 0, &text, Style::Bold, out)
    }

    fn step_finished(
        &mut self,
        job: &JobKey,
        step: &StepKey,
        (outcome, conclusion): (Outcome, Outcome),
        duration: Duration,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        self.state(job).in_group = false;
        self.close_fold(out)?;
        let style = match (outcome, conclusion) {
            (Outcome::Failure, Outcome::Success) => Style::Yellow,
            (_, conclusion) => outcome_style(conclusion),
        };
        let detail = step_detail(outcome, conclusion, duration);
        let text = format!("{} {} ({detail})", icon(outcome), step_label(step));
        self.line(job, 0, &text, style, out)
    }

    fn job_finished(
        &mut self,
        job: &JobKey,
        result: Outcome,
        duration: Duration,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        self.close_fold(out)?;
        let verb = match result {
            Outcome::Success => "succeeded",
            Outcome::Failure => "failed",
            Outcome::Cancelled => "was cancelled",
            Outcome::Skipped => "was skipped",
        };
        let took = human_duration(duration);
        let text = format!("{} Job{} {verb} ({took})", icon(result), self.own_name(job));
        self.line(job, 0, &text, outcome_style(result), out)?;
        self.running.retain(|running| running != job);
        self.rows.push(JobRow {
            label: job_label(job),
            result: Some(result),
            duration: Some(duration),
        });
        Ok(())
    }

    fn log(
        &mut self,
        job: &JobKey,
        in_step: bool,
        kind: LogKind,
        raw: &str,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        if kind == LogKind::Debug && !self.options.debug {
            return Ok(());
        }
        self.leave_foreign_fold(job, out)?;
        let indent = self.indent(job, in_step);
        let style = match kind {
            LogKind::Stdout | LogKind::Stderr => Style::Plain,
            LogKind::Runner => Style::Dim,
            LogKind::Debug => Style::Magenta,
        };
        // The runner's own messages are one line each (an error quoting a multi-line
        // `if:` included); a step's output keeps its lines.
        let raw = match kind {
            LogKind::Runner => one_line(raw),
            _ => std::borrow::Cow::Borrowed(raw),
        };
        for piece in raw.split('\n') {
            let mut text = clean_line(piece, self.options.color);
            if kind == LogKind::Debug {
                text = format!("debug: {text}");
            }
            if self.options.nested_in_actions {
                text = defuse_command(text);
            }
            self.line(job, indent, &text, style, out)?;
        }
        Ok(())
    }

    fn group_started(
        &mut self,
        job: &JobKey,
        title: &str,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        self.leave_foreign_fold(job, out)?;
        self.state(job).in_group = false;
        let text = format!("▼ {}", first_line(title));
        self.line(job, 2, &text, Style::Bold, out)?;
        self.state(job).in_group = true;
        Ok(())
    }

    fn annotation(
        &mut self,
        job: &JobKey,
        in_step: bool,
        annotation: &AnnotationEvent,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        self.leave_foreign_fold(job, out)?;
        let mut annotation = annotation.clone();
        if annotation.from_runner {
            // One problem, one line; a step's `::error::` keeps the lines it wrote.
            annotation.message = one_line(&annotation.message).into_owned();
        }
        let annotation = &annotation;
        self.annotations.push((job_label(job), annotation.clone()));
        if self.options.nested_in_actions {
            self.printed_any = true;
            return writeln!(out, "{}", workflow_command(&job_label(job), annotation));
        }
        let indent = self.indent(job, in_step);
        let style = annotation_style(annotation.level);
        let mut lines = annotation_text(annotation).into_iter();
        if let Some(head) = lines.next() {
            self.line(job, indent, &head, style, out)?;
        }
        for rest in lines {
            self.line(job, indent + 2, &rest, style, out)?;
        }
        Ok(())
    }

    /// Writes one line: the job prefix when jobs run in parallel, `indent` spaces, and
    /// `text` (painted), never with trailing whitespace.
    fn line(
        &mut self,
        job: &JobKey,
        indent: usize,
        text: &str,
        style: Style,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        self.printed_any = true;
        let text = text.trim_end();
        let mut line = String::new();
        if self.options.prefix_jobs {
            let palette = text::JOB_PALETTE[self.state(job).color % text::JOB_PALETTE.len()];
            line.push_str(&paint(
                self.options.color,
                palette,
                &format!("[{}]", job_label(job)),
            ));
            if !text.is_empty() {
                line.push(' ');
            }
        }
        if !text.is_empty() {
            line.push_str(&" ".repeat(indent));
            line.push_str(&paint(self.options.color, style, text));
        }
        writeln!(out, "{line}")
    }

    fn state(&mut self, job: &JobKey) -> &mut JobState {
        let next_color = self.jobs.len();
        self.jobs.entry(job.clone()).or_insert_with(|| JobState {
            color: next_color,
            in_group: false,
        })
    }

    fn indent(&mut self, job: &JobKey, in_step: bool) -> usize {
        match in_step && self.state(job).in_group {
            true => 4,
            false => 2,
        }
    }

    /// ` <job>` where a line carries no prefix naming the job, nothing where it does.
    fn own_name(&self, job: &JobKey) -> String {
        match self.options.prefix_jobs {
            true => String::new(),
            false => format!(" {}", job_label(job)),
        }
    }

    /// Steps fold into outer groups only when one job runs at a time: the outer log
    /// cannot fold interleaved lines of parallel jobs.
    fn folds_steps(&self) -> bool {
        self.options.nested_in_actions && !self.options.prefix_jobs
    }

    fn close_fold(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.fold.take().is_some() {
            writeln!(out, "::endgroup::")?;
        }
        Ok(())
    }

    /// Another job's output while a step is folded ends the fold rather than hiding
    /// that output in the wrong section.
    fn leave_foreign_fold(&mut self, job: &JobKey, out: &mut dyn Write) -> std::io::Result<()> {
        match &self.fold {
            Some(folded) if folded != job => self.close_fold(out),
            _ => Ok(()),
        }
    }
}
