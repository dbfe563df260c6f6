//! The loader's only door into the expression language: which contexts each key
//! allows (GitHub's schema table, hand-coded) and the checks run on `${{ }}` text.
//!
//! Only the `crate::expression` contract is used: `Allowed { named_values, functions, status_function_args }`,
//! `template::parse_template(s, &allowed) -> Result<Template, ExprError>` with
//! `Template::is_literal`, and `template::parse_condition(s, &allowed)` with
//! `Condition::expression_text`.

use crate::expression::template::{Part, parse_condition, parse_template};
use crate::expression::value::Value;
use crate::expression::{Allowed, ExprError};

use super::dialect::Dialect;
use super::expression_help::{NOT_SO_LONG, expression_help};

/// A problem in `${{ }}` text: GitHub's message and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub help: String,
}

impl Problem {
    pub fn new(message: impl Into<String>, help: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            help: help.into(),
        }
    }

    /// An expression written where only literal text is read.
    pub fn not_allowed_here() -> Self {
        Problem::new(
            "A template expression is not allowed in this context",
            "This value is read before any expression can be evaluated: write it as literal text, without '${{ }}'.",
        )
    }

    fn from_expression(e: &ExprError, allowed: &Allowed) -> Self {
        Problem::new(report(e), expression_help(e, allowed))
    }

    /// Says so when the name refused is another platform's: `gitea` and `forge` are the
    /// github context on Gitea and Forgejo, and `secrets` is allowed in their `if:`s.
    fn in_dialect(mut self, dialect: Dialect) -> Self {
        let owner = |name: &str| match name {
            "gitea" => Some("Gitea's name for the github context"),
            "forge" | "forgejo" => Some("Forgejo's name for the github context"),
            _ => None,
        };
        let refused = self
            .message
            .strip_prefix("Unrecognized named-value: '")
            .and_then(|rest| rest.split_once('\''))
            .map(|(name, _)| name.to_string());
        if let Some(name) = refused
            && let Some(what) = owner(&name)
        {
            self.help = format!(
                "'{name}' is {what}; {}. Write 'github' instead, which every platform reads.",
                dialect.read_as()
            );
        }
        self
    }
}

/// A set of contexts and extra functions, named after the schema definitions that use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// No expressions at all (`name`, `on`, job ids, `uses`, `shell`, ...).
    None,
    /// `run-name`, workflow `concurrency`, `workflow_call` input defaults.
    Workflow,
    /// Workflow `env`.
    WorkflowEnv,
    /// `workflow_call.outputs.*.value`.
    CallOutput,
    /// Job `if`.
    JobIf,
    /// `strategy`.
    Strategy,
    /// Job `name`, `runs-on`, `container`, `services`, `environment`, `concurrency`,
    /// `timeout-minutes`, `continue-on-error`, reusable `with`.
    JobStrategy,
    /// Reusable workflow `secrets`.
    JobSecrets,
    /// Job `env`.
    JobEnv,
    /// Job `defaults.run`.
    JobDefaults,
    /// Job `outputs`, container `env`.
    Runner,
    /// `environment.url`.
    RunnerNoSecrets,
    /// Container `credentials`.
    Credentials,
    /// Step `if`.
    StepIf,
    /// Step `run`, `name`, `env`, `with`, `working-directory`, `timeout-minutes`, ...
    Step,
}

const STATUS: &[&str] = &["always", "failure", "cancelled", "success"];
const STEP_FUNCTIONS: &[&str] = &["always", "failure", "cancelled", "success", "hashFiles"];
const HASH_FILES: &[&str] = &["hashFiles"];

impl Scope {
    /// The contexts and functions of this scope as `dialect` has them: Gitea and Forgejo add
    /// their own names for the `github` context (and see [`forge_extras`]).
    fn allowed_in<'n>(
        self,
        dialect: Dialect,
        names: &'n mut Vec<&'static str>,
    ) -> Option<Allowed<'n>> {
        let base = self.allowed()?;
        let extras = forge_extras(self, dialect);
        if extras.is_empty() {
            // GitHub's lists as they are: no copy for every expression of a GitHub file.
            return Some(base);
        }
        names.clear();
        names.extend_from_slice(base.named_values);
        names.extend(extras);
        Some(Allowed {
            named_values: names,
            ..base
        })
    }

    fn allowed(self) -> Option<Allowed<'static>> {
        let (named_values, functions): (&'static [&'static str], &'static [&'static str]) =
            match self {
                Scope::None => return None,
                Scope::Workflow => (&["github", "inputs", "vars"], &[]),
                Scope::WorkflowEnv => (&["github", "inputs", "vars", "secrets"], &[]),
                Scope::CallOutput => (&["github", "inputs", "vars", "jobs"], &[]),
                Scope::JobIf => (&["github", "inputs", "vars", "needs"], STATUS),
                Scope::Strategy => (&["github", "inputs", "vars", "needs"], &[]),
                Scope::JobStrategy => (
                    &["github", "inputs", "vars", "needs", "strategy", "matrix"],
                    &[],
                ),
                Scope::JobSecrets => (
                    &[
                        "github", "inputs", "vars", "needs", "secrets", "strategy", "matrix",
                    ],
                    &[],
                ),
                Scope::JobEnv => (
                    &[
                        "github", "inputs", "vars", "needs", "strategy", "matrix", "secrets",
                    ],
                    &[],
                ),
                Scope::JobDefaults => (
                    &[
                        "github", "inputs", "vars", "strategy", "matrix", "needs", "env",
                    ],
                    &[],
                ),
                Scope::Runner => (
                    &[
                        "github", "inputs", "vars", "needs", "strategy", "matrix", "secrets",
                        "steps", "job", "runner", "env",
                    ],
                    &[],
                ),
                Scope::RunnerNoSecrets => (
                    &[
                        "github", "inputs", "vars", "needs", "strategy", "matrix", "steps", "job",
                        "runner", "env",
                    ],
                    &[],
                ),
                Scope::Credentials => (&["github", "inputs", "vars", "secrets", "env"], &[]),
                Scope::StepIf => (
                    &[
                        "github", "inputs", "vars", "needs", "strategy", "matrix", "steps", "job",
                        "runner", "env",
                    ],
                    STEP_FUNCTIONS,
                ),
                Scope::Step => (
                    &[
                        "github", "inputs", "vars", "needs", "strategy", "matrix", "secrets",
                        "steps", "job", "runner", "env",
                    ],
                    HASH_FILES,
                ),
            };
        Some(Allowed {
            named_values,
            functions,
            // Only a job-level `if:` lets `success`/`failure` name jobs.
            status_function_args: self == Scope::JobIf,
        })
    }
}

/// What a string holds, once its `${{ }}` parts have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// No expression at all.
    Literal,
    /// Exactly one `${{ }}` and nothing around it.
    SingleExpression,
    /// Literal text mixed with expressions.
    Template,
    /// One `${{ }}` holding only a string literal, where no expression is read: GitHub's
    /// reader folds it into that string (`shell: ${{ 'sh {0}' }}` is `sh {0}`).
    Escaped(String),
}

/// Checks the `${{ }}` parts of `text` for a key of `scope`. `Err` is the message to
/// report at the string's location.
pub fn check_string(text: &str, scope: Scope, dialect: Dialect) -> Result<Checked, Problem> {
    if !text.contains("${{") {
        return Ok(Checked::Literal);
    }
    let mut names = Vec::new();
    let Some(allowed) = scope.allowed_in(dialect, &mut names) else {
        return escaped_literal(text)
            .map(Checked::Escaped)
            .ok_or_else(Problem::not_allowed_here);
    };
    if text.chars().count() > MAX_EXPRESSION_LENGTH {
        return Err(Problem::new(
            format!("Exceeded max expression length {MAX_EXPRESSION_LENGTH}"),
            NOT_SO_LONG,
        ));
    }
    if contains_insert(text) {
        return Err(Problem::new(
            INSERT_EMBEDDED,
            "Write '${{ insert }}' alone as a mapping key, with the mapping to merge as its value.",
        ));
    }
    let template = parse_template(text, &allowed)
        .map_err(|e| Problem::from_expression(&e, &allowed).in_dialect(dialect))?;
    if template.is_literal() {
        Ok(Checked::Literal)
    } else if is_single_expression(text) {
        Ok(Checked::SingleExpression)
    } else {
        Ok(Checked::Template)
    }
}

/// The string of `${{ 'text' }}` (one expression that is a string literal, with nothing
/// around it), as `getExpressionString` of GitHub's template reader folds it.
fn escaped_literal(text: &str) -> Option<String> {
    if !is_single_expression(text) {
        return None;
    }
    let nothing = Allowed {
        named_values: &[],
        functions: &[],
        status_function_args: false,
    };
    let template = parse_template(text, &nothing).ok()?;
    match template.parts.as_slice() {
        [Part::Expression(e)] => match e.literal()? {
            Value::String(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Whether `text` is one `${{ }}` and nothing else (surrounding blanks aside).
fn is_single_expression(text: &str) -> bool {
    let trimmed = text.trim();
    trimmed
        .strip_prefix("${{")
        .and_then(|inner| closing_braces(inner).map(|end| end + 2 == inner.len()))
        .unwrap_or(false)
}

/// The byte offset of the `}}` that closes an expression, skipping single-quoted
/// strings (where `''` is an escaped quote).
fn closing_braces(inner: &str) -> Option<usize> {
    let bytes = inner.as_bytes();
    let mut in_string = false;
    for i in 0..bytes.len() {
        match bytes[i] {
            b'\'' => in_string = !in_string,
            b'}' if !in_string && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
    }
    None
}

/// GitHub's limit on the length of a string holding expressions.
const MAX_EXPRESSION_LENGTH: usize = 21_000;

const INSERT_EMBEDDED: &str = "The directive 'insert' is not allowed in this context. Directives are not supported for expressions that are embedded within a string. Directives are only supported when the entire value is an expression.";

/// Whether a mapping key is the `${{ insert }}` directive.
pub fn is_insert_directive(text: &str) -> bool {
    text.trim()
        .strip_prefix("${{")
        .and_then(|t| t.strip_suffix("}}"))
        .is_some_and(|inner| inner.trim() == "insert")
}

/// Whether a string value embeds `${{ insert }}` (only allowed as a whole key).
fn contains_insert(text: &str) -> bool {
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        let after = &rest[start + 3..];
        match after.find("}}") {
            Some(end) if after[..end].trim() == "insert" => return true,
            Some(end) => rest = &after[end + 2..],
            None => return false,
        }
    }
    false
}

/// Checks an `if:` condition and returns its normalised text (`success() && (...)`
/// unless it already calls a status function).
pub fn check_condition(text: &str, scope: Scope, dialect: Dialect) -> Result<String, Problem> {
    let mut names = Vec::new();
    let allowed = scope
        .allowed_in(dialect, &mut names)
        .ok_or_else(Problem::not_allowed_here)?;
    parse_condition(text, &allowed)
        .map(|c| c.expression_text())
        .map_err(|e| Problem::from_expression(&e, &allowed).in_dialect(dialect))
}

/// The condition as GitHub's parser normalises it (`success() && (...)` unless a status
/// function is called), or the text itself when it does not parse.
/// The file was checked when it was loaded, so any dialect's names are accepted here.
pub fn normalized_condition(text: &str, scope: Scope) -> String {
    Dialect::ALL
        .into_iter()
        .find_map(|d| check_condition(text, scope, d).ok())
        .unwrap_or_else(|| text.to_string())
}

/// The names Gitea and Forgejo accept in `scope` beyond GitHub's:
/// - wherever `github` is allowed, Gitea also reads `gitea`, Forgejo `forge` and `forgejo`
///   (the same object; forgejo-runner's `act/schema/workflow_schema.json` lists `forge` and
///   `forgejo` in every context list, act_runner's interpreter knows `gitea`);
/// - `secrets` in a step's `if:` (both: the runner evaluates it with the secrets), and in a
///   job's `if:` on Forgejo (its schema's `job-if`; Gitea's job validator leaves it out);
/// - `env` in a job's `if:` on Forgejo (its `job-if`).
fn forge_extras(scope: Scope, dialect: Dialect) -> Vec<&'static str> {
    let mut extra: Vec<&'static str> = match (scope, dialect) {
        (_, Dialect::Github) | (Scope::None, _) => return Vec::new(),
        (_, Dialect::Gitea) => vec!["gitea"],
        (_, Dialect::Forgejo) => vec!["forge", "forgejo"],
    };
    match (scope, dialect) {
        (Scope::StepIf, _) => extra.push("secrets"),
        (Scope::JobIf, Dialect::Forgejo) => extra.extend(["secrets", "env"]),
        _ => {}
    }
    extra
}

/// GitHub prints template-level errors (unclosed, empty) without the expression suffix.
fn report(e: &ExprError) -> String {
    if e.message == "An expression was expected"
        || e.message.starts_with("The expression is not closed")
    {
        e.message.clone()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn literal_single_and_template_strings() {
        assert_eq!(
            check_string("plain", Scope::None, Dialect::Github),
            Ok(Checked::Literal)
        );
        assert_eq!(
            check_string("${{ matrix.os }}", Scope::JobStrategy, Dialect::Github),
            Ok(Checked::SingleExpression)
        );
        assert_eq!(
            check_string("echo ${{ github.sha }}", Scope::Step, Dialect::Github),
            Ok(Checked::Template)
        );
    }

    #[test]
    fn rejects_contexts_not_allowed_here() {
        let e =
            check_string("${{ secrets.foo }}", Scope::JobStrategy, Dialect::Github).unwrap_err();
        assert!(
            e.help.contains("'secrets' context is not available"),
            "{}",
            e.help
        );
        assert_eq!(
            e.message,
            "Unrecognized named-value: 'secrets'. Located at position 1 within expression: secrets.foo"
        );
        assert_eq!(
            check_string("x ${{ 1 }}", Scope::None, Dialect::Github)
                .unwrap_err()
                .message,
            "A template expression is not allowed in this context"
        );
    }

    #[test]
    fn unclosed_and_empty_expressions() {
        assert!(
            check_string("${{ github.sha", Scope::Step, Dialect::Github)
                .unwrap_err()
                .message
                .ends_with("the closing }} sequence was not found.")
        );
        assert_eq!(
            check_string("${{ }}", Scope::Step, Dialect::Github)
                .unwrap_err()
                .message,
            "An expression was expected"
        );
    }

    #[test]
    fn conditions_get_success_unless_they_call_a_status_function() {
        assert_eq!(
            check_condition("github.ref == 'x'", Scope::JobIf, Dialect::Github).unwrap(),
            "success() && (github.ref == 'x')"
        );
        assert_eq!(
            check_condition("${{ always() }}", Scope::JobIf, Dialect::Github).unwrap(),
            "always()"
        );
        assert!(check_condition("hashFiles('x')", Scope::JobIf, Dialect::Github).is_err());
        assert_eq!(
            check_condition(
                "success('build', 'test') || failure('lint')",
                Scope::JobIf,
                Dialect::Github
            )
            .unwrap(),
            "success('build', 'test') || failure('lint')"
        );
        assert_eq!(
            check_condition("always('build')", Scope::JobIf, Dialect::Github)
                .unwrap_err()
                .message,
            "Too many parameters supplied: 'always'. Located at position 1 within expression: always('build')"
        );
        assert_eq!(
            check_condition("success('build')", Scope::StepIf, Dialect::Github)
                .unwrap_err()
                .message,
            "Too many parameters supplied: 'success'. Located at position 1 within expression: success('build')"
        );
        assert_eq!(
            check_condition("a' || ${{ true && true }}", Scope::JobIf, Dialect::Github).unwrap(),
            "success() && (format('a'' || {0}', true && true))"
        );
    }
}
