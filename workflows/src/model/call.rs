//! A reusable-workflow call checked against the called workflow's `on.workflow_call`
//! definitions: unknown and missing inputs and secrets, and input types.

use crate::diagnostic::{Diagnostic, Location};
use crate::yaml::{Node, NodeValue};

use super::expressions::{Checked, Scope, check_string};
use super::types::{CallSecrets, InputType, Job, Workflow};

/// Problems of calling `callee` from `job` (a job with `uses:`), reported in the
/// caller's `file`. Empty when the call is fine or `job` calls nothing.
pub fn check_call(job: &Job, callee: &Workflow, file: &str) -> Vec<Diagnostic> {
    let Some(uses) = &job.uses else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let mut report = |location: Location, message: String| {
        problems.push(Diagnostic::new(file, Some(location), message));
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
        );
        return problems;
    };
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
            );
        }
    }
    problems
}

/// Whether a `with:` value suits the input's type (an expression suits any type).
fn fits(input_type: InputType, value: &Node) -> bool {
    if let NodeValue::String(s) = &value.value
        && check_string(s, Scope::JobStrategy) == Ok(Checked::SingleExpression)
    {
        return true;
    }
    match input_type {
        InputType::Boolean => matches!(value.value, NodeValue::Bool(_)),
        InputType::Number => matches!(value.value, NodeValue::Number(_)),
        _ => true,
    }
}
