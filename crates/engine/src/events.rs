//! What the job engine reports while it runs: typed events on a channel, consumed by a
//! renderer (human terminal output or `--json` lines) or by the daemon's reporter. Log
//! lines are masked before they become events; nothing downstream sees a secret.

use std::time::Duration;

use serde::Serialize;

/// Which job run an event belongs to: the job id, and the matrix leg's display name
/// when the job has a matrix (`build (ubuntu-latest, 18)`), or the job's name otherwise.
/// Jobs of a called workflow carry the caller's id as a prefix (`call/build`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct JobKey {
    pub id: String,
    pub name: String,
}

/// One step of a job run. `index` counts from 0 in the job's step list (`pre` and
/// `post` steps of actions get their own indexes after the main steps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepKey {
    pub index: usize,
    pub id: String,
    pub name: String,
}

/// A step's or job's result, as GitHub spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    Cancelled,
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Cancelled => "cancelled",
            Outcome::Skipped => "skipped",
        }
    }
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogKind {
    Stdout,
    Stderr,
    /// A message of the runner itself about this step (e.g. "skipped: if evaluated to false").
    Runner,
    /// `::debug::` output (shown with `ACTIONS_STEP_DEBUG=true`).
    Debug,
}

/// An `::error` / `::warning` / `::notice` annotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnnotationEvent {
    pub level: &'static str,
    pub message: String,
    pub title: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub col: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    JobStarted {
        job: JobKey,
    },
    JobSkipped {
        job: JobKey,
        reason: String,
    },
    StepStarted {
        job: JobKey,
        step: StepKey,
    },
    Log {
        job: JobKey,
        step: Option<StepKey>,
        kind: LogKind,
        line: String,
    },
    GroupStarted {
        job: JobKey,
        step: StepKey,
        title: String,
    },
    GroupEnded {
        job: JobKey,
        step: StepKey,
    },
    Annotation {
        job: JobKey,
        step: Option<StepKey>,
        annotation: AnnotationEvent,
    },
    StepFinished {
        job: JobKey,
        step: StepKey,
        outcome: Outcome,
        conclusion: Outcome,
        #[serde(serialize_with = "seconds")]
        duration: Duration,
        outputs: Vec<(String, String)>,
    },
    JobFinished {
        job: JobKey,
        result: Outcome,
        #[serde(serialize_with = "seconds")]
        duration: Duration,
        outputs: Vec<(String, String)>,
    },
    /// The markdown a job's steps wrote to `GITHUB_STEP_SUMMARY`.
    Summary {
        job: JobKey,
        markdown: String,
    },
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// Where events go. Sending never blocks; a closed receiver drops events (the run
/// itself does not depend on anyone listening).
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: tokio::sync::mpsc::UnboundedSender<Event>,
}

impl EventSink {
    pub fn channel() -> (EventSink, tokio::sync::mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (EventSink { tx }, rx)
    }

    pub fn send(&self, event: Event) {
        let _ = self.tx.send(event);
    }
}
