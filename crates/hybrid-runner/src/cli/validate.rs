//! `hybrid-runner validate [PATH...]`: load every workflow and report each problem.

use std::path::PathBuf;
use std::process::ExitCode;

use workflows::Diagnostic;
use workflows::model::Dialect;

use super::{UsageError, default_workflow_paths, workflow_files};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workflow files or folders [default: .forgejo/workflows, .github/workflows and
    /// .gitea/workflows]
    pub paths: Vec<PathBuf>,
    /// Read every file by this platform's rules (`github`, `gitea` or `forgejo`) instead
    /// of by its folder (`.gitea/workflows` is Gitea, `.forgejo/workflows` Forgejo, any
    /// other GitHub).
    #[arg(long, value_name = "PLATFORM")]
    pub dialect: Option<Dialect>,
    /// How to print problems: `text` (path:line:col: message), `github`
    /// (`::error file=…,line=…,col=…::` annotations) or `json` (one object per line).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Github,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let paths = if args.paths.is_empty() {
        let found = default_workflow_paths();
        if found.is_empty() {
            return Err(UsageError(
                "no workflows found: none of .forgejo/workflows, .github/workflows and .gitea/workflows exists here; pass a path".into(),
            )
            .into());
        }
        found
    } else {
        args.paths
    };
    let files = workflow_files::expand(&paths)?;
    if files.is_empty() {
        return Err(UsageError(format!(
            "no *.yml or *.yaml workflow files in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    }
    let mut problems = 0usize;
    let mut bad_files = 0usize;
    for file in &files {
        let name = workflow_files::display_path(file);
        let diagnostics = match std::fs::read_to_string(file) {
            Ok(text) => match workflows::model::load_as(
                &text,
                &name,
                args.dialect.unwrap_or_else(|| Dialect::of_path(file)),
            ) {
                Ok(_) => Vec::new(),
                Err(d) => d.0,
            },
            Err(e) => vec![Diagnostic::new(
                &name,
                None,
                format!("cannot read file: {e}"),
            )],
        };
        if !diagnostics.is_empty() {
            bad_files += 1;
        }
        for d in &diagnostics {
            problems += 1;
            println!("{}", render(d, args.format));
        }
    }
    if args.format != Format::Json {
        eprintln!(
            "{} workflow file{} checked, {problems} problem{} in {bad_files} file{}",
            files.len(),
            plural(files.len()),
            plural(problems),
            plural(bad_files)
        );
    }
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn render(d: &Diagnostic, format: Format) -> String {
    match format {
        Format::Text => d.to_string(),
        Format::Github => {
            let message = escape_annotation(&d.message_with_help());
            match d.location {
                Some(l) => format!(
                    "::error file={},line={},col={}::{message}",
                    d.file, l.line, l.column
                ),
                None => format!("::error file={}::{message}", d.file),
            }
        }
        Format::Json => serde_json::json!({
            "file": d.file,
            "line": d.location.map(|l| l.line),
            "col": d.location.map(|l| l.column),
            "message": d.message,
            "help": d.help,
        })
        .to_string(),
    }
}

/// Workflow-command escaping for an annotation's message.
fn escape_annotation(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}
