//! How things are named and worded on screen: job and step labels, result icons and
//! styles, annotation lines, and annotations as workflow commands for an outer runner.

use hr_engine::events::{AnnotationEvent, JobKey, Outcome, StepKey};

use super::text::{Style, escape_data, escape_property, human_duration};

/// The job as people know it: its display name (the matrix leg's, for a matrix job),
/// after the calling job for jobs of a called workflow (`call / Build`).
pub(super) fn job_label(job: &JobKey) -> String {
    let name = match job.name.trim() {
        "" => job.id.as_str(),
        name => name,
    };
    match job.id.rsplit_once('/') {
        Some((caller, _)) if !name.contains('/') => {
            format!("{} / {name}", caller.replace('/', " / "))
        }
        _ => name.to_owned(),
    }
}

/// The step's name (the engine names `run` steps `Run <first line>`), else its id or number.
pub(super) fn step_label(step: &StepKey) -> String {
    match (first_line(&step.name), step.id.trim()) {
        ("", "") => format!("Step {}", step.index + 1),
        ("", id) => id.to_owned(),
        (name, _) => name.to_owned(),
    }
}

pub(super) fn first_line(text: &str) -> &str {
    text.trim().lines().next().unwrap_or("").trim()
}

pub(super) fn icon(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "✔",
        Outcome::Failure => "✘",
        Outcome::Skipped => "⊘",
        Outcome::Cancelled => "■",
    }
}

pub(super) fn outcome_style(outcome: Outcome) -> Style {
    match outcome {
        Outcome::Success => Style::Green,
        Outcome::Failure => Style::Red,
        Outcome::Cancelled => Style::Yellow,
        Outcome::Skipped => Style::Dim,
    }
}

/// What follows a finished step's name in parentheses.
pub(super) fn step_detail(
    outcome: Outcome,
    conclusion: Outcome,
    duration: std::time::Duration,
) -> String {
    let took = human_duration(duration);
    match (outcome, conclusion) {
        (Outcome::Skipped, _) => "skipped".to_owned(),
        (Outcome::Failure, Outcome::Success) => format!("{took}, failed, continue-on-error"),
        (outcome, conclusion) if outcome != conclusion => format!(
            "{took}, outcome {}, conclusion {}",
            outcome.as_str(),
            conclusion.as_str()
        ),
        (Outcome::Failure, _) => format!("{took}, failed"),
        (Outcome::Cancelled, _) => format!("{took}, cancelled"),
        (Outcome::Success, _) => took,
    }
}

pub(super) fn annotation_style(level: &str) -> Style {
    match level {
        "error" => Style::Red,
        "warning" => Style::Yellow,
        _ => Style::Cyan,
    }
}

/// `error: a.rs:3:5: Title: message`, the message's further lines after it.
pub(super) fn annotation_text(annotation: &AnnotationEvent) -> Vec<String> {
    let mut head = vec![annotation.level.to_owned()];
    if let Some(file) = &annotation.file {
        let mut location = file.clone();
        if let Some(line) = annotation.line {
            location.push_str(&format!(":{line}"));
            if let Some(col) = annotation.col {
                location.push_str(&format!(":{col}"));
            }
        }
        head.push(location);
    }
    if let Some(title) = annotation
        .title
        .as_deref()
        .map(first_line)
        .filter(|t| !t.is_empty())
    {
        head.push(title.to_owned());
    }
    let mut message = annotation.message.lines().map(str::trim_end);
    head.push(message.next().unwrap_or("").to_owned());
    let mut lines = vec![head.join(": ")];
    lines.extend(message.map(str::to_owned));
    lines
}

/// The annotation as a workflow command for the outer runner, titled with the job it
/// came from: `::error file=a.rs,line=3,title=build::message`.
pub(super) fn workflow_command(job_label: &str, annotation: &AnnotationEvent) -> String {
    let mut properties = Vec::new();
    if let Some(file) = &annotation.file {
        properties.push(format!("file={}", escape_property(file)));
    }
    if let Some(line) = annotation.line {
        properties.push(format!("line={line}"));
    }
    if let Some(col) = annotation.col {
        properties.push(format!("col={col}"));
    }
    let title = match annotation.title.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(title) => format!("{job_label}: {title}"),
        None => job_label.to_owned(),
    };
    properties.push(format!("title={}", escape_property(&title)));
    format!(
        "::{} {}::{}",
        annotation.level,
        properties.join(","),
        escape_data(annotation.message.trim_end())
    )
}
