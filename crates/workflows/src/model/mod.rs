//! The typed workflow model and its loader: every key of the workflow syntax, every problem a diagnostic.
//!
//! [`load`] reads YAML text into a [`Workflow`], or returns every problem found (in
//! document order, GitHub's wording, `file:line:col`). Expressions are kept as source
//! text but checked at load time against the contexts each key allows.

mod call;
mod container;
mod dialect;
mod event_checks;
mod expression_help;
mod expressions;
mod github_events;
mod job;
mod needs;
mod reader;
mod settings;
mod step;
mod strategy;
mod suggest;
mod triggers;
mod types;

pub use call::check_call;
pub use dialect::Dialect;
pub use types::{
    CacheMode, CallOutput, CallSecret, CallSecrets, Concurrency, Container, Credentials, Cron,
    Defaults, Environment, Event, Input, InputType, Job, Located, OrExpression, PermissionLevel,
    Permissions, RunsOn, Step, Strategy, StringMap, Triggers, Workflow, WorkflowCall,
};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::yaml::{self, Node};

use expressions::Scope;
use reader::Reader;

const ROOT_KEYS: &[&str] = &[
    "on",
    "name",
    "description",
    "run-name",
    "defaults",
    "env",
    "permissions",
    "concurrency",
    "jobs",
    "cache-mode",
    "enable-email-notifications",
];

/// Loads one workflow file. `file` is the name used in diagnostics; its folder picks the
/// dialect ([`Dialect::of_path`]).
pub fn load(text: &str, file: &str) -> Result<Workflow, Diagnostics> {
    load_as(text, file, Dialect::of_path(file))
}

/// Loads one workflow file by the rules of `dialect`.
pub fn load_as(text: &str, file: &str, dialect: Dialect) -> Result<Workflow, Diagnostics> {
    load_with_outside_jobs(text, file, &[], dialect)
}

/// [`load`] for a workflow whose jobs may `needs:` jobs that ran elsewhere: a Gitea task's
/// payload holds one job, and the results of the jobs it needs come with the task.
/// `outside` names those jobs; the `needs` checks count them as present and finished.
pub fn load_with_outside_jobs(
    text: &str,
    file: &str,
    outside: &[String],
    dialect: Dialect,
) -> Result<Workflow, Diagnostics> {
    // GitHub's reader takes `<<` as an ordinary key (refused by the loader); Go's YAML, which
    // Gitea and Forgejo read with, merges it.
    let merge = if dialect.is_forge() {
        yaml::MergeKeys::Merge
    } else {
        yaml::MergeKeys::AsOrdinary
    };
    let root = yaml::parse_with(text, file, merge).map_err(|d| Diagnostics(vec![d]))?;
    if root.is_null() {
        return Err(Diagnostics(vec![
            Diagnostic::new(
                file,
                None,
                "The workflow file is empty. Add `on:` and `jobs:` to it.",
            )
            .with_help(
                "For example: 'on: push' and a job with 'runs-on: ubuntu-latest' and 'steps:'.",
            ),
        ]));
    }
    let mut r = Reader::new(file, dialect);
    let workflow = read_workflow(&mut r, &root, outside);
    match workflow {
        Some(w) if r.diagnostics.is_empty() => Ok(w),
        _ => {
            // Document order; whole-file problems first. The sort is stable, so
            // problems at one place keep the order they were found in.
            r.diagnostics.sort_by_key(|d| d.location);
            Err(Diagnostics(r.diagnostics))
        }
    }
}

fn read_workflow(r: &mut Reader, root: &Node, outside: &[String]) -> Option<Workflow> {
    let entries = r.mapping(root, Some(ROOT_KEYS))?;
    let mut workflow = Workflow {
        file: r.file.clone(),
        name: None,
        description: None,
        run_name: None,
        on: Triggers::default(),
        permissions: None,
        env: None,
        defaults: None,
        concurrency: None,
        cache_mode: None,
        email_notifications: None,
        dialect: r.dialect,
        jobs: Vec::new(),
    };
    let mut jobs_node = None;
    let mut has_on = false;
    for (key, key_node, value) in entries {
        match key {
            "on" => {
                has_on = true;
                workflow.on = triggers::read_triggers(r, value);
            }
            "name" => workflow.name = r.string(value, Scope::None),
            "description" => workflow.description = r.string(value, Scope::None),
            "run-name" => workflow.run_name = r.string(value, Scope::Workflow),
            "defaults" => workflow.defaults = settings::read_defaults(r, value, Scope::None),
            "env" => workflow.env = r.string_map(value, Scope::WorkflowEnv),
            "permissions" => workflow.permissions = settings::read_permissions(r, value),
            "concurrency" => {
                workflow.concurrency = settings::read_concurrency(r, value, Scope::Workflow);
            }
            "cache-mode" => workflow.cache_mode = settings::read_cache_mode(r, value),
            "enable-email-notifications" => {
                workflow.email_notifications =
                    settings::read_email_notifications(r, key_node, value);
            }
            _ => {
                jobs_node = Some(value);
                workflow.jobs = job::read_jobs(r, value);
            }
        }
    }
    match r.dialect {
        _ if has_on => {}
        Dialect::Github => r.missing(root.location, "on"),
        // Forgejo makes a failed run of it (forgejo-runner's `act/jobparser/model.go`).
        Dialect::Forgejo => r.error(
            root.location,
            "unexpected yaml node in `on`: 0",
            "Add 'on:' with the events that start the workflow, like 'on: push'.",
        ),
        // Gitea skips the file ("ignore invalid workflow"): it never runs.
        Dialect::Gitea => r.error(
            root.location,
            "The workflow has no 'on:', so Gitea never runs it",
            "Add 'on:' with the events that start the workflow, like 'on: push'.",
        ),
    }
    match jobs_node {
        None => r.missing(root.location, "jobs"),
        Some(node) => {
            if node.as_mapping().is_some_and(|m| m.is_empty()) {
                r.error(
                    node.location,
                    "The workflow must contain at least one job with no dependencies.",
                    "Add a job under 'jobs:', for example 'build:' with 'runs-on:' and 'steps:'.",
                );
            }
            if r.dialect.is_forge() {
                needs::drop_unknown_needs(&mut workflow.jobs, outside);
            }
            needs::check_needs(r, &workflow.jobs, outside, node.location);
        }
    }
    Some(workflow)
}

impl Workflow {
    /// Whether an event of this name starts the workflow (filters are not applied).
    pub fn triggered_by(&self, event: &str) -> bool {
        self.on.events.iter().any(|e| e.name.value == event)
    }

    /// The job with this id.
    /// Each job's id and the ids it `needs`, in workflow order (the `needs` graph).
    pub fn needs_edges(&self) -> crate::graph::Edges {
        crate::graph::Edges(
            self.jobs
                .iter()
                .map(|j| {
                    (
                        j.id.value.clone(),
                        j.needs.iter().map(|n| n.value.clone()).collect(),
                    )
                })
                .collect(),
        )
    }

    pub fn job(&self, id: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.id.value == id)
    }

    /// The event named `event`, with its filters.
    pub fn event(&self, event: &str) -> Option<&Event> {
        self.on.events.iter().find(|e| e.name.value == event)
    }
}

impl Job {
    /// The job's `if:` as GitHub normalises it: `success()` when absent, and
    /// `success() && (<if>)` unless the condition calls a status function.
    pub fn condition_expression(&self) -> String {
        expressions::normalized_condition(self.condition_text(), Scope::JobIf)
    }
}

impl Step {
    /// The step's `if:` as GitHub normalises it (see [`Job::condition_expression`]).
    pub fn condition_expression(&self) -> String {
        expressions::normalized_condition(self.condition_text(), Scope::StepIf)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod help_tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod dialect_tests;
