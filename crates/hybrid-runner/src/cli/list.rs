//! `hybrid-runner list [-W PATH] [-E EVENT] [--json]`: the jobs the workflows would run,
//! in `needs` stages, with matrix legs expanded.
//!
//! Workflows that fail to load or plan are reported on stderr, one line per problem
//! (`path:line:col: message`), and left out; the others are still listed, and the exit
//! code is 1. A job whose matrix needs values that exist only at run time (`needs`
//! outputs, inputs nobody gave) is listed once, its matrix "computed at run time".

use std::path::PathBuf;
use std::process::ExitCode;

use workflows::diagnostic::one_line;
use workflows::expression::{Object, Value};
use workflows::model::Workflow;
use workflows::plan::{self, CalledWorkflows, Legs, PlanError, PlannedJob, WorkflowPlan};
use workflows::{Diagnostic, Diagnostics};

use super::{UsageError, default_workflow_paths, workflow_files};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A workflow file or folder [default: .github/workflows, then .gitea/workflows]
    #[arg(short = 'W', long = "workflows", value_name = "PATH")]
    pub workflows: Option<PathBuf>,
    /// Only workflows triggered by this event [default: every workflow]
    #[arg(short = 'E', long = "event", value_name = "EVENT")]
    pub event: Option<String>,
    /// Print the plan as one JSON document
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (plans, failed) = plans(&args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan_json(&plans))?);
    } else {
        print_table(&plans);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The plans of the workflows `args` selects, and whether any failed to load or plan
/// (reported on stderr and left out). Shared with `exec -g`.
pub(super) fn plans(args: &Args) -> anyhow::Result<(Vec<WorkflowPlan>, bool)> {
    let paths = match &args.workflows {
        Some(p) => vec![p.clone()],
        None => default_workflow_paths().into_iter().take(1).collect(),
    };
    if paths.is_empty() {
        return Err(UsageError(
            "no workflows found: neither .github/workflows nor .gitea/workflows exists here; pass -W PATH".into(),
        )
        .into());
    }
    let files = workflow_files::expand(&paths)?;
    let contexts = planning_contexts(args.event.as_deref());
    let mut plans = Vec::new();
    let mut failed = false;
    for file in &files {
        let name = workflow_files::display_path(file);
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{name}: cannot read file: {e}");
                failed = true;
                continue;
            }
        };
        let workflow = match workflows::model::load(&text, &name) {
            Ok(w) => w,
            Err(diagnostics) => {
                eprintln!("{diagnostics}");
                failed = true;
                continue;
            }
        };
        if args
            .event
            .as_deref()
            .is_some_and(|e| !workflow.triggered_by(e))
        {
            continue;
        }
        match plan::plan_workflow_calling(&workflow, &contexts, &LocalWorkflows) {
            Ok(p) => plans.push(p),
            Err(e) => {
                for line in plan_problems(&e) {
                    eprintln!("{line}");
                }
                failed = true;
            }
        }
    }
    Ok((plans, failed))
}

/// A plan error as text lines, one per problem: the error and its causes on one line
/// (`file: error when evaluating 'strategy' for job 'x': <why>`), a refused call once per
/// problem of the call.
fn plan_problems(error: &PlanError) -> Vec<String> {
    if let PlanError::Call { source, .. } = error {
        return source.iter().map(|d| format!("{error}: {d}")).collect();
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    vec![one_line(&text).into_owned()]
}

/// Called workflows of this repository (`uses: ./.github/workflows/x.yml`), read
/// relative to the current folder (the repository root). Remote calls are not fetched
/// by `list`: such jobs are listed without their jobs.
struct LocalWorkflows;

impl CalledWorkflows for LocalWorkflows {
    fn load(&self, reference: &str) -> Option<Result<Workflow, Diagnostics>> {
        let path = reference.strip_prefix("./")?;
        let name = path.to_string();
        Some(match std::fs::read_to_string(path) {
            Ok(text) => workflows::model::load(&text, &name),
            Err(e) => Err(Diagnostics(vec![Diagnostic::new(
                name,
                None,
                format!("cannot read the called workflow: {e}"),
            )])),
        })
    }
}

/// What is known before any job runs: the event name; `vars` and `inputs` empty.
fn planning_contexts(event: Option<&str>) -> Object {
    let mut github = Object::new();
    github.insert("event_name", Value::from(event.unwrap_or("push")));
    let mut contexts = Object::new();
    contexts.insert("github", Value::object(github));
    contexts.insert("vars", Value::object(Object::new()));
    contexts.insert("inputs", Value::object(Object::new()));
    contexts
}

/// One printed row per job run.
struct Row {
    stage: String,
    id: String,
    name: String,
    runs_on: String,
    workflow: String,
    file: String,
}

fn rows(plans: &[WorkflowPlan]) -> Vec<Row> {
    let mut rows = Vec::new();
    for wf in plans {
        for (n, stage) in wf.stages.iter().enumerate() {
            for job in stage {
                for (name, runs_on) in runs(job, "") {
                    rows.push(Row {
                        stage: n.to_string(),
                        id: job.id.clone(),
                        name,
                        runs_on,
                        workflow: wf.name.clone(),
                        file: wf.file.clone(),
                    });
                }
            }
        }
    }
    rows
}

/// (display name, runs-on) of each run of the job; the runs of a called workflow's
/// jobs are named `caller / callee`, as GitHub shows them.
fn runs(job: &PlannedJob, prefix: &str) -> Vec<(String, String)> {
    if let Some(called) = &job.called {
        let prefix = format!("{prefix}{} / ", job.name);
        return called
            .plan
            .stages
            .iter()
            .flatten()
            .flat_map(|j| runs(j, &prefix))
            .collect();
    }
    let runs_on = |labels: &[String]| match &job.calls {
        Some(target) => format!("uses {target}"),
        None => labels.join(", "),
    };
    match &job.legs {
        Legs::Single => vec![(format!("{prefix}{}", job.name), runs_on(&job.runs_on))],
        Legs::Matrix(legs) => legs
            .iter()
            .map(|l| (format!("{prefix}{}", l.name), runs_on(&l.runs_on)))
            .collect(),
        Legs::Deferred { .. } => vec![(
            format!("{prefix}{} (matrix computed at run time)", job.name),
            runs_on(&job.runs_on),
        )],
    }
}

fn print_table(plans: &[WorkflowPlan]) {
    let rows = rows(plans);
    if rows.is_empty() {
        eprintln!("no jobs to run");
        return;
    }
    let header = ["Stage", "Job ID", "Job name", "Runs on", "Workflow", "File"];
    let cells = |r: &Row| -> [String; 6] {
        [
            r.stage.clone(),
            r.id.clone(),
            r.name.clone(),
            r.runs_on.clone(),
            r.workflow.clone(),
            r.file.clone(),
        ]
    };
    let table: Vec<[String; 6]> = std::iter::once(header.map(String::from))
        .chain(rows.iter().map(cells))
        .collect();
    for line in super::table::aligned_lines(&table) {
        println!("{line}");
    }
}

fn plan_json(plans: &[WorkflowPlan]) -> serde_json::Value {
    let workflows: Vec<serde_json::Value> = plans.iter().map(workflow_json).collect();
    serde_json::json!({ "workflows": workflows })
}

fn workflow_json(wf: &WorkflowPlan) -> serde_json::Value {
    let stages: Vec<serde_json::Value> = wf
        .stages
        .iter()
        .map(|stage| serde_json::Value::Array(stage.iter().flat_map(job_runs_json).collect()))
        .collect();
    serde_json::json!({
        "file": wf.file,
        "name": wf.name,
        "events": wf.events,
        "stages": stages,
    })
}

fn job_runs_json(job: &PlannedJob) -> Vec<serde_json::Value> {
    let base = |name: &str, runs_on: &[String], matrix: serde_json::Value| {
        serde_json::json!({
            "id": job.id,
            "name": name,
            "needs": job.needs,
            "runs_on": runs_on,
            "uses": job.calls,
            "called": job.called.as_deref().map(|c| workflow_json(&c.plan)),
            "matrix": matrix,
        })
    };
    match &job.legs {
        Legs::Single => vec![base(&job.name, &job.runs_on, serde_json::Value::Null)],
        Legs::Matrix(legs) => legs
            .iter()
            .map(|l| {
                base(
                    &l.name,
                    &l.runs_on,
                    Value::object(l.matrix.clone()).to_json(),
                )
            })
            .collect(),
        Legs::Deferred { reason } => {
            let mut run = base(&job.name, &job.runs_on, serde_json::Value::Null);
            run["matrix_deferred"] = serde_json::Value::String(reason.clone());
            vec![run]
        }
    }
}
