//! Running a workflow's jobs: `needs` order, job `if:` over the results of needed jobs,
//! skip propagation, matrix legs in parallel under `max-parallel` and `fail-fast`, the
//! run-wide `--concurrency` limit, `runs-on` platforms, and reusable-workflow calls
//! (inputs, secrets, `secrets: inherit`, outputs).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use workflows::expression::{Object, Value};
use workflows::model::{CallSecrets, Job, Workflow};
use workflows::plan::{self, JobResult, UnknownRead, job_name};

use super::cache_mode::CacheAccess;
use super::call::CallError;
use super::contexts::github_context;
use super::engine::Engine;
use super::eval::{Scope, string_object};
use super::events::{AnnotationEvent, Event, JobKey, LogKind, Outcome};
use super::job::{JobOutcome, JobRun, or_text};
use super::ready_jobs::ReadyJobs;
use super::strategy;

/// What every job of one workflow run shares: the workflow-level contexts of a call.
#[derive(Debug, Clone)]
pub struct WorkflowScope {
    pub inputs: Object,
    pub secrets: Object,
    pub vars: Object,
    /// `caller/` for the jobs of a called workflow.
    pub prefix: String,
    /// Which jobs to run (with their dependencies); empty = all.
    pub only: Vec<String>,
    pub depth: usize,
    /// Jobs that ran elsewhere, with their results and outputs (a Gitea task's `needs`):
    /// the workflow's jobs may need them as if they were its own finished jobs.
    pub given_needs: Vec<(String, JobOutcome)>,
    /// The most cache access the caller allows (a called workflow's jobs get no more).
    pub cache: CacheAccess,
}

/// Shared by all jobs of the whole run.
#[derive(Debug, Clone)]
pub struct RunLimits {
    pub concurrency: Arc<Semaphore>,
    /// The most jobs of one workflow whose contexts are built at once (the permits of
    /// `concurrency`): a ready job waits in the queue, not holding its contexts, until
    /// another job of its workflow ends, so 10,000 ready jobs cost the memory of a few.
    pub jobs_at_once: usize,
    pub platforms: Arc<Vec<(String, String)>>,
    /// Only `platforms` are known (act's behaviour): any other label is skipped.
    pub strict_platforms: bool,
    pub matrix_filter: Arc<Vec<(String, String)>>,
    pub cancel: CancellationToken,
    /// The run is one job a server handed over (an assignment, e.g. a Gitea task): the
    /// server matched `runs-on` to this runner (no platform check here) and fixed the
    /// matrix leg and its display name (the job's name is used as is).
    pub assigned: bool,
}

/// The outcome of every job of a workflow run, by job id.
pub type Outcomes = HashMap<String, JobOutcome>;

/// Runs every (selected) job of `workflow`; returns each job's outcome by id. Boxed:
/// a reusable-workflow job runs a workflow again, so the future is recursive.
pub fn run_workflow(
    engine: Arc<Engine>,
    workflow: Arc<Workflow>,
    scope: WorkflowScope,
    limits: RunLimits,
) -> Pin<Box<dyn Future<Output = Outcomes> + Send>> {
    Box::pin(run_workflow_jobs(engine, workflow, scope, limits))
}

async fn run_workflow_jobs(
    engine: Arc<Engine>,
    workflow: Arc<Workflow>,
    scope: WorkflowScope,
    limits: RunLimits,
) -> Outcomes {
    let needs = workflow.needs_edges();
    let edges = needs.view();
    let selected: Vec<String> = if scope.only.is_empty() {
        workflow.jobs.iter().map(|j| j.id.value.clone()).collect()
    } else {
        let only: Vec<&str> = scope.only.iter().map(String::as_str).collect();
        workflows::graph::with_dependencies(&edges, &only)
            .into_iter()
            .map(str::to_string)
            .collect()
    };
    let mut done: HashMap<String, JobOutcome> = scope.given_needs.iter().cloned().collect();
    let mut done_ids: HashMap<String, String> = done
        .keys()
        .map(|id| (id.to_ascii_lowercase(), id.clone()))
        .collect();
    let mut queue = ReadyJobs::new(&workflow.jobs, &selected, done.keys());
    let mut ready: std::collections::VecDeque<usize> = queue.take_ready().into();
    let mut running = JoinSet::new();
    loop {
        while running.len() < limits.jobs_at_once.max(1) {
            let Some(index) = ready.pop_front() else {
                break;
            };
            let Some(job) = workflow.jobs.get(index) else {
                continue;
            };
            let needs = needs_context(job, &done, &done_ids);
            let (engine, workflow, scope, limits) = (
                engine.clone(),
                workflow.clone(),
                scope.clone(),
                limits.clone(),
            );
            let id = job.id.value.clone();
            running.spawn(async move {
                let at = JobAt { index, id: &id };
                let outcome = run_job(engine, workflow, at, needs, scope, limits).await;
                (id, outcome)
            });
        }
        match running.join_next().await {
            Some(Ok((id, outcome))) => {
                ready.extend(queue.finished(&id));
                done_ids.insert(id.to_ascii_lowercase(), id.clone());
                done.insert(id, outcome);
            }
            Some(Err(e)) => {
                engine.sink.send(Event::Log {
                    job: JobKey {
                        id: "runner".into(),
                        name: "runner".into(),
                    },
                    step: None,
                    kind: LogKind::Runner,
                    line: format!("error: a job task stopped unexpectedly: {e}"),
                });
                break;
            }
            None => break,
        }
    }
    done.retain(|id, _| !scope.given_needs.iter().any(|(given, _)| given == id));
    done
}

/// `needs.<id>.result` / `.outputs` for the jobs `job` needs; `done_ids` maps each done
/// job's id, lower-cased, to its id.
fn needs_context(
    job: &Job,
    done: &HashMap<String, JobOutcome>,
    done_ids: &HashMap<String, String>,
) -> Vec<(String, JobOutcome)> {
    job.needs
        .iter()
        .filter_map(|n| {
            let id = done_ids.get(&n.value.to_ascii_lowercase())?;
            done.get(id).map(|o| (id.clone(), o.clone()))
        })
        .collect()
}

fn job_result(outcome: Outcome) -> JobResult {
    match outcome {
        Outcome::Success => JobResult::Success,
        Outcome::Failure => JobResult::Failure,
        Outcome::Cancelled => JobResult::Cancelled,
        Outcome::Skipped => JobResult::Skipped,
    }
}

/// `{<id>: {result, outputs}}`: the `needs` context, and the `jobs` context a called
/// workflow's outputs read.
pub(super) fn results_value<'a>(
    jobs: impl IntoIterator<Item = (&'a String, &'a JobOutcome)>,
) -> Value {
    let mut o = Object::new();
    for (id, outcome) in jobs {
        let mut entry = Object::new();
        entry.insert("result", Value::from(outcome.result.as_str()));
        entry.insert(
            "outputs",
            string_object(
                outcome
                    .outputs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            ),
        );
        o.insert(id.clone(), Value::object(entry));
    }
    Value::object(o)
}

fn skipped(engine: &Engine, key: JobKey, reason: String) -> JobOutcome {
    engine.sink.send(Event::JobSkipped { job: key, reason });
    JobOutcome {
        result: Outcome::Skipped,
        outputs: Vec::new(),
        duration: std::time::Duration::ZERO,
    }
}

/// A job of a workflow by its place in `jobs` (found without a search by id, which cost
/// a scan of every job per job and leg) and its id.
#[derive(Debug, Clone, Copy)]
struct JobAt<'a> {
    index: usize,
    id: &'a str,
}

impl JobAt<'_> {
    fn find<'w>(&self, workflow: &'w Workflow) -> Option<&'w Job> {
        match workflow.jobs.get(self.index) {
            Some(job) if job.id.value == self.id => Some(job),
            _ => workflow.job(self.id),
        }
    }
}

/// One job: its `if:`, its matrix legs (or its reusable-workflow call), aggregated.
async fn run_job(
    engine: Arc<Engine>,
    workflow: Arc<Workflow>,
    at: JobAt<'_>,
    needs: Vec<(String, JobOutcome)>,
    scope: WorkflowScope,
    limits: RunLimits,
) -> JobOutcome {
    let started = Instant::now();
    let (job_index, id) = (at.index, at.id);
    let Some(job) = at.find(&workflow) else {
        return skipped(
            &engine,
            key(&scope, id, id),
            "the job is not in the workflow".into(),
        );
    };
    let token = secret_text(&scope.secrets, "GITHUB_TOKEN");
    let mut contexts = Object::new();
    let workflow_name = workflow
        .name
        .as_ref()
        .map(|n| n.value.clone())
        .unwrap_or_else(|| workflow.file.clone());
    contexts.insert(
        "github",
        Value::object(github_context(
            &engine.run,
            &workflow_name,
            &workflow.file,
            id,
            &token,
        )),
    );
    contexts.insert("vars", Value::object(scope.vars.clone()));
    contexts.insert("secrets", Value::object(scope.secrets.clone()));
    contexts.insert("inputs", Value::object(scope.inputs.clone()));
    contexts.insert("needs", results_value(needs.iter().map(|(id, o)| (id, o))));
    let job_key = key(
        &scope,
        id,
        &strategy::job_name_before_legs(job, &contexts, &limits),
    );
    // What a dry run does not have (the outputs of jobs, inputs nobody gave): a matrix or
    // `if:` that fails on one of them is marked, not failed.
    let dry_run = engine
        .dry_run
        .then(|| strategy::dry_run_unknowns(&workflow, &scope, &engine.run.event_name));
    let results: Vec<JobResult> = needs.iter().map(|(_, o)| job_result(o.result)).collect();
    let mut notes = Vec::new();
    let mut if_scope = Scope::new(contexts.clone(), None);
    if_scope.status = plan::job_status(&results, limits.cancel.is_cancelled());
    match if_scope.condition(job.condition.as_ref().map(|c| c.value.as_str())) {
        Ok(true) => {}
        Err(_)
            if let Some(read) = dry_run
                .as_ref()
                .and_then(|u| u.read_in_condition(job.condition_text())) =>
        {
            notes.push(format!("dry run: if: {read}; the job runs as if it held"));
        }
        Ok(false) => {
            let reason =
                if results.iter().any(|r| *r != JobResult::Success) && job.condition.is_none() {
                    "a job it needs did not succeed".to_string()
                } else {
                    format!("if: {} evaluated to false", job.condition_text())
                };
            return skipped(&engine, job_key, reason);
        }
        Err(e) => {
            engine.sink.send(Event::JobStarted {
                job: job_key.clone(),
            });
            return failed(&engine, job_key, format!("if: {e}"), started);
        }
    }
    let legs = match strategy::legs(job, &contexts, &limits) {
        Ok(legs) if legs.is_empty() => {
            return skipped(&engine, job_key, "no matrix leg matches --matrix".into());
        }
        Ok(legs) => legs,
        Err(_)
            if let Some(read) = dry_run
                .as_ref()
                .and_then(|u| strategy::unknown_matrix_read(job, u)) =>
        {
            let key = key(&scope, id, &strategy::not_expanded_name(job));
            return not_expanded(&engine, key, &read, started);
        }
        Err(message) => {
            engine.sink.send(Event::JobStarted {
                job: job_key.clone(),
            });
            return failed(&engine, job_key, message.to_string(), started);
        }
    };
    let strategy = job.strategy.as_ref();
    let scope_for_flags = Scope::new(contexts.clone(), None);
    let fail_fast = strategy
        .and_then(|s| s.fail_fast.as_ref())
        .map_or(Ok(true), |f| scope_for_flags.flag(Some(&or_text(&f.value))))
        .unwrap_or(true);
    let max_parallel = strategy
        .and_then(|s| s.max_parallel.as_ref())
        .and_then(|m| {
            scope_for_flags
                .minutes(Some(&or_text(&m.value)))
                .ok()
                .flatten()
        })
        .map_or(legs.len(), |m| (m as usize).max(1));
    let total = legs.len();
    let leg_limit = Arc::new(Semaphore::new(max_parallel));
    // A job whose `if:` held after the run was cancelled (`always()`, `cancelled()`) is
    // not cancelled itself, as on GitHub: its steps run normally, and only the second
    // Ctrl-C stops them. Any other job stops with the run (or with fail-fast).
    let job_cancel = if limits.cancel.is_cancelled() {
        engine.hard_cancel.child_token()
    } else {
        limits.cancel.child_token()
    };
    // Legs take their `max-parallel` turn in matrix order, as GitHub starts them: each
    // leg queues for a permit only once the one before it has queued (the semaphore
    // then serves them first come, first served).
    let mut previous_queued: Option<tokio::sync::oneshot::Receiver<()>> = None;
    let mut set = JoinSet::new();
    for (index, leg) in legs.into_iter().enumerate() {
        let (queued, next_may_queue) = tokio::sync::oneshot::channel::<()>();
        let my_turn = previous_queued.replace(next_may_queue);
        let mut contexts = contexts.clone();
        contexts.insert(
            "strategy",
            job_name::strategy_context(fail_fast, index, total, max_parallel),
        );
        contexts.insert(
            "matrix",
            leg.matrix.clone().map_or(Value::Null, Value::object),
        );
        let named = strategy::run_name(job, &contexts, &leg, &limits, dry_run.as_ref());
        let leg_key = key(&scope, id, named.as_deref().unwrap_or(&leg.built_name));
        let name_error = named.err();
        let (engine, workflow, scope, limits) = (
            engine.clone(),
            workflow.clone(),
            scope.clone(),
            limits.clone(),
        );
        let (leg_limit, job_cancel) = (leg_limit.clone(), job_cancel.clone());
        let id = id.to_string();
        let (mut notes, dry_run) = (notes.clone(), dry_run.clone());
        set.spawn(async move {
            if let Some(turn) = my_turn {
                let _ = turn.await;
            }
            let permit = leg_limit.acquire_owned();
            tokio::pin!(permit);
            // Poll once so this leg is in the semaphore's queue, then let the next queue.
            let ready = poll_once(&mut permit).await;
            drop(queued);
            let permit = match ready {
                Some(p) => p,
                None => permit.await,
            };
            let Ok(_leg_permit) = permit else {
                return JobOutcome {
                    result: Outcome::Cancelled,
                    outputs: Vec::new(),
                    duration: std::time::Duration::ZERO,
                };
            };
            if job_cancel.is_cancelled() {
                // GitHub cancels queued legs too: they end cancelled, never started.
                let reason = if limits.cancel.is_cancelled() {
                    "the run was cancelled before this leg started"
                } else {
                    "fail-fast cancelled this leg before it started"
                };
                return cancelled_before_start(&engine, leg_key, reason);
            }
            let at = JobAt {
                index: job_index,
                id: &id,
            };
            let Some(job) = at.find(&workflow) else {
                return skipped(&engine, leg_key, "the job is not in the workflow".into());
            };
            // A failed leg cancels its siblings (fail-fast) before it gives up its
            // max-parallel permit, so no queued leg starts in between.
            let fail_fast_on = |outcome: &JobOutcome| {
                if outcome.result == Outcome::Failure && fail_fast && total > 1 {
                    job_cancel.cancel();
                }
            };
            // GitHub fails a run whose `name:` cannot be evaluated.
            if let Some(error) = name_error {
                engine.sink.send(Event::JobStarted {
                    job: leg_key.clone(),
                });
                let outcome = failed(&engine, leg_key, error.to_string(), Instant::now());
                fail_fast_on(&outcome);
                return outcome;
            }
            if job.uses.is_some() {
                let outcome = super::call::run_call(
                    engine,
                    workflow.clone(),
                    &id,
                    leg_key,
                    contexts,
                    scope,
                    limits,
                    job_cancel.clone(),
                )
                .await;
                fail_fast_on(&outcome);
                return outcome;
            }
            let (labels, unknown) = crate::dry_run::runs_on(job, &contexts, dry_run.as_ref());
            // A job without `runs-on` (a Gitea workflow may leave it out: Gitea gives it to
            // any runner) runs on this one.
            if !limits.assigned
                && job.runs_on.is_some()
                && let Err(reason) = platform(&labels, &limits.platforms, limits.strict_platforms)
            {
                match unknown {
                    Some(read) => notes.push(crate::dry_run::runs_on_note(&read)),
                    None => return skipped(&engine, leg_key, reason.to_string()),
                }
            }
            let Ok(_permit) = limits.concurrency.clone().acquire_owned().await else {
                return JobOutcome {
                    result: Outcome::Cancelled,
                    outputs: Vec::new(),
                    duration: std::time::Duration::ZERO,
                };
            };
            let (cache, cache_warning) =
                crate::cache_mode::job_access(&workflow, job, &engine.run.event_name, scope.cache);
            let mut services = engine
                .job_services
                .as_ref()
                .map(|s| s.job_env(&leg_key, cache.token_mode()))
                .unwrap_or_default();
            // A declared `cache-mode:` reaches the steps, as the runner exports
            // `actions_cache_mode`; the job's set-up lines say it, as GitHub's do.
            if cache.declared {
                let mode = cache.mode().as_str();
                services
                    .env
                    .push(("ACTIONS_CACHE_MODE".to_string(), mode.to_string()));
                notes.push(format!("Cache mode: {mode}"));
            }
            notes.extend(cache_warning);
            let secrets = scope
                .secrets
                .values()
                .map(super::eval::display)
                .chain(engine.masks.iter().cloned())
                .chain(services.masks)
                .collect();
            let run = JobRun {
                engine: &engine,
                key: leg_key,
                workflow: &workflow,
                job,
                contexts,
                secrets,
                services_env: services.env,
                notes,
                dry_run,
            };
            let outcome = run.run(job_cancel.clone()).await;
            fail_fast_on(&outcome);
            outcome
        });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = set.join_next().await {
        let outcome = joined.unwrap_or(JobOutcome {
            result: Outcome::Failure,
            outputs: Vec::new(),
            duration: std::time::Duration::ZERO,
        });
        if outcome.result == Outcome::Failure && fail_fast && total > 1 {
            job_cancel.cancel();
        }
        outcomes.push(outcome);
    }
    aggregate(outcomes, started)
}

/// Polls `future` once: its output when ready, else `None` (it stays registered for its
/// wake-up, so a semaphore acquire keeps its place in the queue).
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match Pin::new(&mut *future).poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

/// A matrix job's result over its legs: failure if any failed, else cancelled if any
/// was, else success if any succeeded, else skipped. Outputs: later legs win.
fn aggregate(outcomes: Vec<JobOutcome>, started: Instant) -> JobOutcome {
    let any = |o: Outcome| outcomes.iter().any(|x| x.result == o);
    let result = if any(Outcome::Failure) {
        Outcome::Failure
    } else if any(Outcome::Cancelled) {
        Outcome::Cancelled
    } else if any(Outcome::Success) {
        Outcome::Success
    } else {
        Outcome::Skipped
    };
    let mut outputs: Vec<(String, String)> = Vec::new();
    for o in outcomes {
        for (k, v) in o.outputs {
            super::eval::upsert(&mut outputs, k, v);
        }
    }
    JobOutcome {
        result,
        outputs,
        duration: started.elapsed(),
    }
}

/// A leg stopped while it waited for its turn: reported started and cancelled at once.
fn cancelled_before_start(engine: &Engine, key: JobKey, reason: &str) -> JobOutcome {
    engine.sink.send(Event::JobStarted { job: key.clone() });
    engine.sink.send(Event::Log {
        job: key.clone(),
        step: None,
        kind: LogKind::Runner,
        line: reason.to_string(),
    });
    engine.sink.send(Event::JobFinished {
        job: key,
        result: Outcome::Cancelled,
        duration: std::time::Duration::ZERO,
        outputs: Vec::new(),
    });
    JobOutcome {
        result: Outcome::Cancelled,
        outputs: Vec::new(),
        duration: std::time::Duration::ZERO,
    }
}

/// A dry run's job whose matrix reads a value only a real run has: reported started and
/// succeeded at once, with a notice naming the value, so the jobs that need it still run.
fn not_expanded(engine: &Engine, key: JobKey, read: &UnknownRead, started: Instant) -> JobOutcome {
    engine.sink.send(Event::JobStarted { job: key.clone() });
    engine.sink.send(Event::Annotation {
        job: key.clone(),
        step: None,
        annotation: AnnotationEvent {
            level: "notice",
            message: format!("dry run: matrix not expanded: {read}"),
            title: None,
            file: None,
            line: None,
            col: None,
            from_runner: true,
        },
    });
    let duration = started.elapsed();
    engine.sink.send(Event::JobFinished {
        job: key,
        result: Outcome::Success,
        duration,
        outputs: Vec::new(),
    });
    JobOutcome {
        result: Outcome::Success,
        outputs: Vec::new(),
        duration,
    }
}

fn failed(engine: &Engine, key: JobKey, message: String, started: Instant) -> JobOutcome {
    engine.sink.send(Event::Log {
        job: key.clone(),
        step: None,
        kind: LogKind::Runner,
        line: format!("error: {message}"),
    });
    let duration = started.elapsed();
    engine.sink.send(Event::JobFinished {
        job: key,
        result: Outcome::Failure,
        duration,
        outputs: Vec::new(),
    });
    JobOutcome {
        result: Outcome::Failure,
        outputs: Vec::new(),
        duration,
    }
}

pub fn key(scope: &WorkflowScope, id: &str, name: &str) -> JobKey {
    JobKey {
        id: format!("{}{id}", scope.prefix),
        name: if scope.prefix.is_empty() {
            name.to_string()
        } else {
            format!(
                "{} / {name}",
                scope.prefix.trim_end_matches('/').replace('/', " / ")
            )
        },
    }
}

fn secret_text(secrets: &Object, name: &str) -> String {
    secrets
        .get(name)
        .map(super::eval::display)
        .unwrap_or_default()
}

/// Why a leg does not run on this host (the job is skipped with this notice).
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// `-P label=image`: the label asks for a container.
    #[error(
        "runs-on '{label}' is mapped to {image}, which needs a container backend; `exec` runs jobs on the host (-P {label}=host)"
    )]
    Container { label: String, image: String },
    /// Strict platforms and no `-P` for any of the labels.
    #[error("no platform for runs-on [{}] (-P maps labels to the host)", labels.join(", "))]
    Unmapped { labels: Vec<String> },
    /// A Windows or macOS label.
    #[error(
        "runs-on [{}] needs Windows or macOS; this host runs Linux jobs (map a label with -P LABEL=host to run it here anyway)",
        labels.join(", ")
    )]
    NotLinux { labels: Vec<String> },
    /// Labels this runner does not know as Linux ones.
    #[error(
        "no platform for runs-on [{}]; run it on this host with -P {}=host",
        labels.join(", "),
        labels.first().map_or("LABEL", String::as_str)
    )]
    Unknown { labels: Vec<String> },
}

/// Whether a leg runs on this host: `-P label=host` (or act's `-self-hosted`) maps a
/// label to the host; by default `ubuntu-*`, `self-hosted`, `linux` and `x64` run on
/// the host; `windows-*` and `macos-*` (and unmapped labels) are skipped with a notice.
pub fn platform(
    labels: &[String],
    platforms: &[(String, String)],
    strict: bool,
) -> Result<(), PlatformError> {
    for label in labels {
        if let Some((_, target)) = platforms
            .iter()
            .find(|(l, _)| l.eq_ignore_ascii_case(label))
        {
            return match target.as_str() {
                "host" | "-self-hosted" => Ok(()),
                image => Err(PlatformError::Container {
                    label: label.clone(),
                    image: image.to_string(),
                }),
            };
        }
    }
    if strict {
        return Err(PlatformError::Unmapped {
            labels: labels.to_vec(),
        });
    }
    let lower: Vec<String> = labels.iter().map(|l| l.to_ascii_lowercase()).collect();
    if lower
        .iter()
        .any(|l| l.starts_with("windows") || l.starts_with("macos"))
    {
        return Err(PlatformError::NotLinux {
            labels: labels.to_vec(),
        });
    }
    let host = |l: &String| {
        l.starts_with("ubuntu") || matches!(l.as_str(), "self-hosted" | "linux" | "x64" | "debian")
    };
    if lower.iter().any(host) {
        return Ok(());
    }
    Err(PlatformError::Unknown {
        labels: labels.to_vec(),
    })
}

/// Why a job cannot run on the host: `container:` and `services:` need a container backend.
/// Secrets passed to a called workflow: all of the caller's (`inherit`) or the mapped ones.
pub fn passed_secrets(job: &Job, scope: &Scope, caller: &Object) -> Result<Object, CallError> {
    match &job.secrets {
        Some(CallSecrets::Inherit) => Ok(caller.clone()),
        Some(CallSecrets::Map(map)) => {
            let mut out = Object::new();
            for (k, v) in &map.entries {
                let value = scope
                    .interpolate(&v.value)
                    .map_err(|source| CallError::Secret {
                        name: k.value.clone(),
                        source,
                    })?;
                out.insert(k.value.clone(), Value::from(value));
            }
            Ok(out)
        }
        None => Ok(Object::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn platform_refusals_keep_their_wording() {
        let mapped = vec![("gpu".to_string(), "node:20".to_string())];
        assert_eq!(
            platform(&labels(&["gpu"]), &mapped, false)
                .unwrap_err()
                .to_string(),
            "runs-on 'gpu' is mapped to node:20, which needs a container backend; `exec` runs jobs on the host (-P gpu=host)"
        );
        assert_eq!(
            platform(&labels(&["a", "b"]), &[], true)
                .unwrap_err()
                .to_string(),
            "no platform for runs-on [a, b] (-P maps labels to the host)"
        );
        assert_eq!(
            platform(&labels(&["windows-latest"]), &[], false)
                .unwrap_err()
                .to_string(),
            "runs-on [windows-latest] needs Windows or macOS; this host runs Linux jobs (map a label with -P LABEL=host to run it here anyway)"
        );
        assert_eq!(
            platform(&labels(&["gpu", "big"]), &[], false)
                .unwrap_err()
                .to_string(),
            "no platform for runs-on [gpu, big]; run it on this host with -P gpu=host"
        );
        assert_eq!(
            platform(&[], &[], false).unwrap_err().to_string(),
            "no platform for runs-on []; run it on this host with -P LABEL=host"
        );
        assert!(platform(&labels(&["ubuntu-latest"]), &[], false).is_ok());
    }
}
