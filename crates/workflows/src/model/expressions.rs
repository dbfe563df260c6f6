//! The loader's only door into the expression language: which contexts each key
//! allows (GitHub's schema table, hand-coded) and the checks run on `${{ }}` text.
//!
//! Only the `crate::expression` contract is used: `Allowed { named_values, functions, status_function_args }`,
//! `template::parse_template(s, &allowed) -> Result<Template, ExprError>` with
//! `Template::is_literal`, and `template::parse_condition(s, &allowed)` with
//! `Condition::expression_text`.

use crate::expression::template::{parse_condition, parse_template};
use crate::expression::{Allowed, ExprError};

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
}

/// Checks the `${{ }}` parts of `text` for a key of `scope`. `Err` is the message to
/// report at the string's location.
pub fn check_string(text: &str, scope: Scope) -> Result<Checked, Problem> {
    if !text.contains("${{") {
        return Ok(Checked::Literal);
    }
    let Some(allowed) = scope.allowed() else {
        return Err(Problem::not_allowed_here());
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
    let template =
        parse_template(text, &allowed).map_err(|e| Problem::from_expression(&e, &allowed))?;
    if template.is_literal() {
        Ok(Checked::Literal)
    } else if is_single_expression(text) {
        Ok(Checked::SingleExpression)
    } else {
        Ok(Checked::Template)
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
pub fn check_condition(text: &str, scope: Scope) -> Result<String, Problem> {
    let allowed = scope.allowed().ok_or_else(Problem::not_allowed_here)?;
    parse_condition(text, &allowed)
        .map(|c| c.expression_text())
        .map_err(|e| Problem::from_expression(&e, &allowed))
}

/// The condition as GitHub's parser normalises it (`success() && (...)` unless a status
/// function is called), or the text itself when it does not parse.
pub fn normalized_condition(text: &str, scope: Scope) -> String {
    check_condition(text, scope).unwrap_or_else(|_| text.to_string())
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
        assert_eq!(check_string("plain", Scope::None), Ok(Checked::Literal));
        assert_eq!(
            check_string("${{ matrix.os }}", Scope::JobStrategy),
            Ok(Checked::SingleExpression)
        );
        assert_eq!(
            check_string("echo ${{ github.sha }}", Scope::Step),
            Ok(Checked::Template)
        );
    }

    #[test]
    fn rejects_contexts_not_allowed_here() {
        let e = check_string("${{ secrets.foo }}", Scope::JobStrategy).unwrap_err();
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
            check_string("x ${{ 1 }}", Scope::None).unwrap_err().message,
            "A template expression is not allowed in this context"
        );
    }

    #[test]
    fn unclosed_and_empty_expressions() {
        assert!(
            check_string("${{ github.sha", Scope::Step)
                .unwrap_err()
                .message
                .ends_with("the closing }} sequence was not found.")
        );
        assert_eq!(
            check_string("${{ }}", Scope::Step).unwrap_err().message,
            "An expression was expected"
        );
    }

    #[test]
    fn conditions_get_success_unless_they_call_a_status_function() {
        assert_eq!(
            check_condition("github.ref == 'x'", Scope::JobIf).unwrap(),
            "success() && (github.ref == 'x')"
        );
        assert_eq!(
            check_condition("${{ always() }}", Scope::JobIf).unwrap(),
            "always()"
        );
        assert!(check_condition("hashFiles('x')", Scope::JobIf).is_err());
        assert_eq!(
            check_condition("success('build', 'test') || failure('lint')", Scope::JobIf).unwrap(),
            "success('build', 'test') || failure('lint')"
        );
        assert_eq!(
            check_condition("always('build')", Scope::JobIf)
                .unwrap_err()
                .message,
            "Too many parameters supplied: 'always'. Located at position 1 within expression: always('build')"
        );
        assert_eq!(
            check_condition("success('build')", Scope::StepIf)
                .unwrap_err()
                .message,
            "Too many parameters supplied: 'success'. Located at position 1 within expression: success('build')"
        );
        assert_eq!(
            check_condition("a' || ${{ true && true }}", Scope::JobIf).unwrap(),
            "success() && (format('a'' || {0}', true && true))"
        );
    }
}
