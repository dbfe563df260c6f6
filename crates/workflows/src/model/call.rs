//! A reusable-workflow call checked against the called workflow's `on.workflow_call`
//! definitions: unknown and missing inputs and secrets, and input types.

use crate::diagnostic::{Diagnostic, Location};
use crate::yaml::{Node, NodeValue};

use super::dialect::Dialect;
use super::expressions::{Checked, Scope, check_string};
use super::suggest::{closest, quoted_list};
use super::types::{CallSecrets, InputType, Job, Workflow};

/// `Did you mean 'x'?` or the list of names the called workflow defines.
fn defined_help(name: &str, defined: &[&str], what: &str) -> String {
    if defined.is_empty() {
        return format!(
            "The called workflow defines no {what}: remove this one, or define it under 'on.workflow_call.{what}' there."
        );
    }
    let list = quoted_list(defined);
    match closest(name, defined.iter().copied()) {
        Some(c) => format!("Did you mean '{c}'? The called workflow defines {list}."),
        None => format!(
            "The called workflow defines {list}; remove this one or define it under 'on.workflow_call.{what}' there."
        ),
    }
}

/// Problems of calling `callee` from `job` (a job with `uses:`), reported in the
/// caller's `file`. Empty when the call is fine or `job` calls nothing.
pub fn check_call(job: &Job, callee: &Workflow, file: &str) -> Vec<Diagnostic> {
    let Some(uses) = &job.uses else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let mut report = |location: Location, message: String, help: String| {
        problems.push(Diagnostic::new(file, Some(location), message).with_help(help));
    };
    let Some(call) = callee
        .event("workflow_call")
        .map(|e| e.call.clone().unwrap_or_default())
    else {
        report(
            uses.location,
            format!(
                "The workflow '{}' cannot be called: it has no `on.workflow_call` trigger. Add one to it.",
                uses.value
            ),
            "Add 'workflow_call:' under 'on:' in the called workflow, or call a different one."
                .into(),
        );
        return problems;
    };
    let input_names: Vec<&str> = call.inputs.iter().map(|i| i.name.value.as_str()).collect();
    let secret_names: Vec<&str> = call.secrets.iter().map(|s| s.name.value.as_str()).collect();
    for (name, value) in &job.with {
        let Some(input) = call
            .inputs
            .iter()
            .find(|i| i.name.value.eq_ignore_ascii_case(&name.value))
        else {
            report(
                value.location,
                format!(
                    "Invalid input, {} is not defined in the referenced workflow.",
                    name.value
                ),
                defined_help(&name.value, &input_names, "inputs"),
            );
            continue;
        };
        if !fits(input.input_type, value) {
            report(
                value.location,
                format!(
                    "Unexpected value '{}'",
                    value.scalar_text().unwrap_or_default()
                ),
                format!(
                    "Input '{}' is a {}: pass {} or one '${{{{ }}}}' expression.",
                    input.name.value,
                    if input.input_type == InputType::Boolean {
                        "boolean"
                    } else {
                        "number"
                    },
                    if input.input_type == InputType::Boolean {
                        "true or false"
                    } else {
                        "a number"
                    },
                ),
            );
        }
    }
    for input in call
        .inputs
        .iter()
        .filter(|i| i.required && i.default.is_none())
    {
        let given = job
            .with
            .iter()
            .any(|(name, _)| name.value.eq_ignore_ascii_case(&input.name.value));
        if !given {
            report(
                uses.location,
                format!(
                    "Input {} is required, but not provided while calling.",
                    input.name.value
                ),
                format!("Add '{}:' under this job's 'with:'.", input.name.value),
            );
        }
    }
    let passed = match &job.secrets {
        Some(CallSecrets::Inherit) => return problems,
        Some(CallSecrets::Map(map)) => map.entries.as_slice(),
        None => &[],
    };
    for (name, value) in passed {
        let defined = call
            .secrets
            .iter()
            .any(|s| s.name.value.eq_ignore_ascii_case(&name.value));
        if !defined {
            report(
                value.location,
                format!(
                    "Invalid secret, {} is not defined in the referenced workflow.",
                    name.value
                ),
                defined_help(&name.value, &secret_names, "secrets"),
            );
        }
    }
    for secret in call.secrets.iter().filter(|s| s.required) {
        let given = passed
            .iter()
            .any(|(name, _)| name.value.eq_ignore_ascii_case(&secret.name.value));
        if !given {
            report(
                uses.location,
                format!(
                    "Secret {} is required, but not provided while calling.",
                    secret.name.value
                ),
                format!(
                    "Add '{}:' under this job's 'secrets:', or write 'secrets: inherit'.",
                    secret.name.value
                ),
            );
        }
    }
    problems
}

/// Whether a `with:` value suits the input's type (an expression suits any type).
fn fits(input_type: InputType, value: &Node) -> bool {
    if let NodeValue::String(s) = &value.value
        && Dialect::ALL
            .into_iter()
            .any(|d| check_string(s, Scope::JobStrategy, d) == Ok(Checked::SingleExpression))
    {
        return true;
    }
    match input_type {
        InputType::Boolean => matches!(value.value, NodeValue::Bool(_)),
        InputType::Number => matches!(value.value, NodeValue::Number(_)),
        _ => true,
    }
}
