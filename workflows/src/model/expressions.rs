//! The loader's only door into the expression language: which contexts each key
//! allows (GitHub's schema table, hand-coded) and the checks run on `${{ }}` text.
//!
//! Only the `crate::expression` contract is used: `Allowed { named_values, functions }`,
//! `template::parse_template(s, &allowed) -> Result<Template, ExprError>` with
//! `Template::is_literal`, and `template::parse_condition(s, &allowed)` with
//! `Condition::expression_text`. Until that module lands, the private `standin` below
//! implements the same signatures; to switch, replace the `use standin::...` line with
//! `use crate::expression::{Allowed, template::{parse_condition, parse_template}};`
//! and delete `mod standin` (its tests at the bottom of this file keep passing).

use standin::{Allowed, parse_condition, parse_template};

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
pub fn check_string(text: &str, scope: Scope) -> Result<Checked, String> {
    if !text.contains("${{") {
        return Ok(Checked::Literal);
    }
    let Some(allowed) = scope.allowed() else {
        return Err("A template expression is not allowed in this context".into());
    };
    if text.chars().count() > MAX_EXPRESSION_LENGTH {
        return Err(format!(
            "Exceeded max expression length {MAX_EXPRESSION_LENGTH}"
        ));
    }
    if contains_insert(text) {
        return Err(INSERT_EMBEDDED.into());
    }
    let template = parse_template(text, &allowed).map_err(|e| report(&e))?;
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
pub fn check_condition(text: &str, scope: Scope) -> Result<String, String> {
    let allowed = scope
        .allowed()
        .ok_or_else(|| "A template expression is not allowed in this context".to_string())?;
    parse_condition(text, &allowed)
        .map(|c| c.expression_text())
        .map_err(|e| report(&e))
}

/// The condition as GitHub's parser normalises it (`success() && (...)` unless a status
/// function is called), or the text itself when it does not parse.
pub fn normalized_condition(text: &str, scope: Scope) -> String {
    check_condition(text, scope).unwrap_or_else(|_| text.to_string())
}

/// GitHub prints template-level errors (unclosed, empty) without the expression suffix.
fn report(e: &crate::expression::ExprError) -> String {
    if e.message == "An expression was expected"
        || e.message.starts_with("The expression is not closed")
    {
        e.message.clone()
    } else {
        e.to_string()
    }
}

/// A minimal stand-in for `crate::expression`'s parser: finds `${{ }}` spans, checks
/// that they close and are not empty, and checks named values and function names
/// against what the key allows. The real parser replaces it at merge.
mod standin {
    use super::{closing_braces, is_single_expression};
    use crate::expression::{ErrorKind, ExprError};

    #[derive(Debug, Clone, Copy)]
    pub struct Allowed<'a> {
        pub named_values: &'a [&'a str],
        pub functions: &'a [&'a str],
    }

    const CORE_FUNCTIONS: &[&str] = &[
        "contains",
        "startsWith",
        "endsWith",
        "format",
        "join",
        "toJSON",
        "fromJSON",
    ];
    const KEYWORDS: &[&str] = &["true", "false", "null", "NaN", "Infinity"];
    const STATUS_FUNCTIONS: &[&str] = &["success", "always", "failure", "cancelled"];

    const NOT_CLOSED: &str = "The expression is not closed. An unescaped ${{ sequence was found, but the closing }} sequence was not found.";

    #[derive(Debug)]
    pub struct Template {
        expressions: Vec<String>,
    }

    impl Template {
        pub fn is_literal(&self) -> bool {
            self.expressions.is_empty()
        }
    }

    #[derive(Debug)]
    pub struct Condition {
        text: String,
    }

    impl Condition {
        pub fn expression_text(&self) -> String {
            self.text.clone()
        }
    }

    fn error(kind: ErrorKind, message: String, position: Option<usize>, expr: &str) -> ExprError {
        ExprError {
            kind,
            message,
            position,
            expression: expr.to_string(),
        }
    }

    pub fn parse_template(s: &str, allowed: &Allowed) -> Result<Template, ExprError> {
        let mut rest = s;
        let mut expressions = Vec::new();
        while let Some(start) = rest.find("${{") {
            let inner = &rest[start + 3..];
            let end = closing_braces(inner)
                .ok_or_else(|| error(ErrorKind::Parsing, NOT_CLOSED.into(), None, s.trim()))?;
            let expr = inner[..end].trim();
            if expr.is_empty() {
                return Err(error(
                    ErrorKind::Parsing,
                    "An expression was expected".into(),
                    None,
                    "",
                ));
            }
            check_names(expr, allowed)?;
            expressions.push(expr.to_string());
            rest = &inner[end + 2..];
        }
        Ok(Template { expressions })
    }

    pub fn parse_condition(s: &str, allowed: &Allowed) -> Result<Condition, ExprError> {
        let trimmed = s.trim();
        let expr = if is_single_expression(trimmed) {
            parse_template(trimmed, allowed)?;
            trimmed[3..trimmed.len() - 2].trim().to_string()
        } else if trimmed.contains("${{") {
            parse_template(trimmed, allowed)?;
            to_format_expression(trimmed)
        } else {
            if trimmed.is_empty() {
                return Ok(Condition {
                    text: "success()".into(),
                });
            }
            check_names(trimmed, allowed)?;
            trimmed.to_string()
        };
        let calls_status = identifiers(&expr).iter().any(|(name, _, call)| {
            *call
                && STATUS_FUNCTIONS
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(name))
        });
        let text = if calls_status {
            expr
        } else {
            format!("success() && ({expr})")
        };
        Ok(Condition { text })
    }

    /// `a ${{ x }} b` as `format('a {0} b', x)`, GitHub's normal form of a template.
    fn to_format_expression(text: &str) -> String {
        let mut pattern = String::new();
        let mut args = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            let inner = &rest[start + 3..];
            let Some(end) = closing_braces(inner) else {
                break;
            };
            push_literal(&mut pattern, &rest[..start]);
            pattern.push_str(&format!("{{{}}}", args.len()));
            args.push(inner[..end].trim().to_string());
            rest = &inner[end + 2..];
        }
        push_literal(&mut pattern, rest);
        let mut out = format!("format('{pattern}'");
        for arg in args {
            out.push_str(", ");
            out.push_str(&arg);
        }
        out.push(')');
        out
    }

    fn push_literal(pattern: &mut String, literal: &str) {
        for c in literal.chars() {
            match c {
                '\'' => pattern.push_str("''"),
                '{' => pattern.push_str("{{"),
                '}' => pattern.push_str("}}"),
                c => pattern.push(c),
            }
        }
    }

    /// Identifiers outside strings and not after `.`: (name, 1-based column, is a call).
    fn identifiers(expr: &str) -> Vec<(String, usize, bool)> {
        let chars: Vec<char> = expr.chars().collect();
        let mut found = Vec::new();
        let mut i = 0;
        let mut in_string = false;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                in_string = !in_string;
                i += 1;
                continue;
            }
            if in_string {
                i += 1;
                continue;
            }
            let after_dot = i > 0 && chars[i - 1] == '.';
            let starts_number = i > 0 && (chars[i - 1].is_ascii_digit());
            if (c.is_alphabetic() || c == '_') && !starts_number {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '-')
                {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                let call = chars.get(j) == Some(&'(');
                if !after_dot {
                    found.push((name, start + 1, call));
                }
                continue;
            }
            if c.is_ascii_digit() {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                continue;
            }
            i += 1;
        }
        found
    }

    fn check_names(expr: &str, allowed: &Allowed) -> Result<(), ExprError> {
        for (name, column, call) in identifiers(expr) {
            if call {
                let known = CORE_FUNCTIONS
                    .iter()
                    .chain(allowed.functions)
                    .any(|f| f.eq_ignore_ascii_case(&name));
                if !known {
                    return Err(error(
                        ErrorKind::Parsing,
                        format!("Unrecognized function: '{name}'"),
                        Some(column),
                        expr,
                    ));
                }
            } else if !KEYWORDS.contains(&name.as_str())
                && !allowed
                    .named_values
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(&name))
            {
                return Err(error(
                    ErrorKind::Parsing,
                    format!("Unrecognized named-value: '{name}'"),
                    Some(column),
                    expr,
                ));
            }
        }
        Ok(())
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
        assert_eq!(
            e,
            "Unrecognized named-value: 'secrets'. Located at position 1 within expression: secrets.foo"
        );
        assert_eq!(
            check_string("x ${{ 1 }}", Scope::None).unwrap_err(),
            "A template expression is not allowed in this context"
        );
    }

    #[test]
    fn unclosed_and_empty_expressions() {
        assert!(
            check_string("${{ github.sha", Scope::Step)
                .unwrap_err()
                .starts_with("The expression is not closed.")
        );
        assert_eq!(
            check_string("${{ }}", Scope::Step).unwrap_err(),
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
            check_condition("a' || ${{ true && true }}", Scope::JobIf).unwrap(),
            "success() && (format('a'' || {0}', true && true))"
        );
    }
}
