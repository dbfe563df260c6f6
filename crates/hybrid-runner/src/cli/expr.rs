//! `hybrid-runner expr [--contexts FILE.json] 'EXPR'`: evaluate one expression.
//!
//! The result prints as JSON on stdout (`-0` as `0`; NaN and infinities as the strings
//! `"NaN"`, `"Infinity"`, `"-Infinity"`), exit 0. A lexing, parsing or evaluation error
//! prints `error: <kind>: <message>` on stderr, exit 1.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use workflows::expression::{self, Allowed, EvalContext, JobStatus, Object, Value};

use super::UsageError;
use hr_engine::hash_files::WorkspaceHasher;

/// The contexts an expression may name when no `--contexts` file is given.
const STANDARD_CONTEXTS: [&str; 12] = [
    "github", "env", "vars", "job", "jobs", "steps", "runner", "secrets", "strategy", "matrix",
    "needs", "inputs",
];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The expression, without `${{ }}`
    #[arg(allow_hyphen_values = true)]
    pub expression: String,
    /// A JSON object mapping context names to values, e.g. {"github": {"ref": "refs/heads/main"}}.
    /// Its keys are the only names the expression may use. Without it the twelve standard
    /// contexts are known and empty.
    #[arg(long, value_name = "FILE.json")]
    pub contexts: Option<PathBuf>,
    /// The job status that success(), failure() and cancelled() see
    #[arg(long, value_enum, default_value_t = Status::Success)]
    pub status: Status,
    /// The folder hashFiles() reads [default: $GITHUB_WORKSPACE, else the current folder]
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Status {
    Success,
    Failure,
    Cancelled,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let contexts = match &args.contexts {
        Some(path) => load_contexts(path)?,
        None => STANDARD_CONTEXTS
            .iter()
            .map(|name| (name.to_string(), Value::object(Object::new())))
            .collect(),
    };
    let names: Vec<&str> = contexts.keys().collect();
    let all_functions = Allowed::everything();
    let allowed = Allowed {
        named_values: &names,
        functions: all_functions.functions,
        status_function_args: all_functions.status_function_args,
    };
    let workspace = match args.workspace {
        Some(dir) => dir,
        None => std::env::var_os("GITHUB_WORKSPACE")
            .map(PathBuf::from)
            .map_or_else(std::env::current_dir, Ok)
            .context("cannot determine the current folder for hashFiles")?,
    };
    let hasher = WorkspaceHasher::new(workspace);
    let status = match args.status {
        Status::Success => JobStatus::Success,
        Status::Failure => JobStatus::Failure,
        Status::Cancelled => JobStatus::Cancelled,
    };
    let outcome = expression::parse(&args.expression, &allowed).and_then(|expr| {
        expr.evaluate(&EvalContext {
            contexts: &contexts,
            status,
            host: Some(&hasher),
        })
    });
    match outcome {
        Ok(value) => {
            println!("{}", value.to_json());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {}: {e}", e.kind);
            Ok(ExitCode::FAILURE)
        }
    }
}

fn load_contexts(path: &std::path::Path) -> anyhow::Result<Object> {
    let text = super::input_file::read("--contexts", path).map_err(UsageError::from)?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        UsageError(format!(
            "--contexts file {} is not valid JSON: {e}",
            path.display()
        ))
    })?;
    match Value::from_json(&json) {
        Value::Object(object) => Ok((*object).clone()),
        other => Err(UsageError(format!(
            "--contexts file {} must hold a JSON object mapping context names to values, not {}",
            path.display(),
            other.kind()
        ))
        .into()),
    }
}
