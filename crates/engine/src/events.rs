//! What the job engine reports while it runs: typed events on a channel, consumed by a
//! renderer (human terminal output or `--json` lines) or by the daemon's reporter. Log
//! lines are masked before they become events; nothing downstream sees a secret.

use std::sync::Arc;
use std::time::Duration;

use hr_process::budget::OutputBudget;
use tokio::sync::mpsc::error::TryRecvError;

use serde::Serialize;

/// Which job run an event belongs to: the job id, and the matrix leg's display name
/// when the job has a matrix (`build (ubuntu-latest, 18)`), or the job's name otherwise.
/// Jobs of a called workflow carry the caller's id as a prefix (`call/build`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct JobKey {
    pub id: String,
    pub name: String,
}

/// One step of a job run. `index` counts every step the job ran from 0, in the order they
/// started: the job's own steps, the steps inside composite actions, and actions' `pre`
/// and `post` steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StepKey {
    pub index: usize,
    pub id: String,
    pub name: String,
    /// The position in the job's `steps:` of the step this one is part of: its own for
    /// one of the job's steps, the step using the composite action for a step inside it;
    /// `None` for an action's `pre`/`post` step (the job's set-up and completion). A
    /// server that knows the job's steps by position (Gitea) reports by this.
    #[serde(skip)]
    pub main: Option<usize>,
    /// A step inside a composite action (its `main` is the step using the action).
    #[serde(skip)]
    pub nested: bool,
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
    /// The runner's own report of a problem (not a step's `::error::` command): one
    /// problem, which a terminal shows on one line. Not in `--json`.
    #[serde(skip)]
    pub from_runner: bool,
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
    /// The markdown a job's steps wrote to `GITHUB_STEP_SUMMARY`: all of it, and each
    /// main step's (by its position among the job's `steps:`, the index Gitea's summary
    /// API takes), masked.
    Summary {
        job: JobKey,
        markdown: String,
        /// Not in `--json` (its job-level `markdown` is).
        #[serde(skip)]
        steps: Vec<(usize, String)>,
    },
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// What the events handed on and not yet received may weigh (bytes, see
/// [`Event::weight`]) before a step's output pipes stop being read.
pub const EVENT_BUDGET: usize = 4 << 20;

/// What an event weighs in [`EVENT_BUDGET`] besides its text: the event itself and its
/// job and step keys.
const EVENT_OVERHEAD: usize = 256;

impl Event {
    /// About the bytes the event holds: its texts and [`EVENT_OVERHEAD`].
    pub fn weight(&self) -> usize {
        let pairs = |v: &[(String, String)]| v.iter().map(|(k, v)| k.len() + v.len()).sum();
        EVENT_OVERHEAD
            + match self {
                Event::Log { line, .. } => line.len(),
                Event::JobSkipped { reason, .. } => reason.len(),
                Event::GroupStarted { title, .. } => title.len(),
                Event::Annotation { annotation, .. } => {
                    annotation.message.len()
                        + annotation.title.as_ref().map_or(0, String::len)
                        + annotation.file.as_ref().map_or(0, String::len)
                }
                Event::StepFinished { outputs, .. } | Event::JobFinished { outputs, .. } => {
                    pairs(outputs)
                }
                Event::Summary { markdown, .. } => markdown.len(),
                Event::JobStarted { .. } | Event::StepStarted { .. } | Event::GroupEnded { .. } => {
                    0
                }
            }
    }
}

/// Where events go. Sending never blocks and never drops an event while the receiver is
/// open (a closed receiver drops events: the run itself does not depend on anyone
/// listening). What is sent and not yet received is counted in a budget of
/// [`EVENT_BUDGET`]; a step's output pipes are only read while it has room, so a receiver
/// that lags holds the step's writes back instead of letting its lines pile up here.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: tokio::sync::mpsc::UnboundedSender<Event>,
    budget: Arc<OutputBudget>,
}

impl EventSink {
    pub fn channel() -> (EventSink, EventReceiver) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let budget = Arc::new(OutputBudget::new(EVENT_BUDGET));
        (
            EventSink {
                tx,
                budget: budget.clone(),
            },
            EventReceiver { rx, budget },
        )
    }

    pub fn send(&self, event: Event) {
        let weight = event.weight();
        self.budget.take(weight);
        if self.tx.send(event).is_err() {
            self.budget.give_back(weight);
        }
    }

    /// The budget the events in flight count against.
    pub fn budget(&self) -> &OutputBudget {
        &self.budget
    }
}

/// The receiving end of an [`EventSink`]: every event taken gives its weight back to the
/// budget.
#[derive(Debug)]
pub struct EventReceiver {
    rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
    budget: Arc<OutputBudget>,
}

impl EventReceiver {
    /// The next event; `None` once every sink is dropped and nothing is left.
    pub async fn recv(&mut self) -> Option<Event> {
        let event = self.rx.recv().await?;
        Some(self.taken(event))
    }

    /// [`EventReceiver::recv`] for a thread outside the runtime.
    pub fn blocking_recv(&mut self) -> Option<Event> {
        let event = self.rx.blocking_recv()?;
        Some(self.taken(event))
    }

    pub fn try_recv(&mut self) -> Result<Event, TryRecvError> {
        let event = self.rx.try_recv()?;
        Ok(self.taken(event))
    }

    /// Refuses further events; those already sent can still be received.
    pub fn close(&mut self) {
        self.rx.close();
    }

    /// How many events wait.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    fn taken(&self, event: Event) -> Event {
        self.budget.give_back(event.weight());
        event
    }
}
