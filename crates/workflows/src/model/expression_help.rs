//! Remedies for expression problems: which contexts and functions the key allows, the
//! closest spelling of a mistyped name, and how each function is called.

use crate::expression::{ALL_CONTEXTS, Allowed, ExprError, Function};

use super::suggest::{closest, quoted_list};

/// The help for a problem found by parsing `${{ }}` text where `allowed` applies.
pub(crate) fn expression_help(e: &ExprError, allowed: &Allowed) -> String {
    let message = e.message.as_str();
    if let Some(name) = quoted_name(message, "Unrecognized named-value: ") {
        return named_value_help(name, allowed);
    }
    if let Some(name) = quoted_name(message, "Unrecognized function: ") {
        return function_help(name, allowed);
    }
    if let Some(name) = quoted_name(message, "Too few parameters supplied: ")
        .or_else(|| quoted_name(message, "Too many parameters supplied: "))
        .or_else(|| {
            quoted_name(
                message,
                "Even number of parameters supplied, requires an odd number of parameters: ",
            )
        })
    {
        return arity_help(name, allowed);
    }
    if message.starts_with("Unexpected end of expression") {
        return "The expression ends too early: close every '(' and '[', finish the last operator, and end strings with a single quote.".into();
    }
    if message.starts_with("Unexpected symbol") {
        return "Check the syntax at this symbol: strings use single quotes ('text'), operators are ==, !=, <, <=, >, >=, &&, || and !, properties are read as a.b or a['b'].".into();
    }
    if message.starts_with("Exceeded max expression depth") {
        return "Split the expression: nest fewer parentheses, calls and operators.".into();
    }
    if message.starts_with("Exceeded max expression length") {
        return NOT_SO_LONG.into();
    }
    if message == "An expression was expected" {
        return "Write an expression between '${{' and '}}', or remove the empty '${{ }}'.".into();
    }
    if message.starts_with("The expression is not closed") {
        return "Close the expression with '}}' (a '}}' inside a quoted string does not count)."
            .into();
    }
    "Fix the expression's syntax; see https://docs.github.com/actions/learn-github-actions/expressions.".into()
}

pub(crate) const NOT_SO_LONG: &str =
    "Shorten the value, for example by moving long text into a script file.";

/// `x` in `{prefix}'x'...`.
fn quoted_name<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('\'')?;
    rest.split('\'').next()
}

fn named_value_help(name: &str, allowed: &Allowed) -> String {
    let here = quoted_list(allowed.named_values);
    if let Some(context) = ALL_CONTEXTS.iter().find(|c| c.eq_ignore_ascii_case(name)) {
        return format!(
            "The '{context}' context is not available at this key; contexts available here: {here}."
        );
    }
    match closest(name, allowed.named_values.iter().copied()) {
        Some(c) => format!("Did you mean '{c}'? Contexts available here: {here}."),
        None => format!("Contexts available here: {here}. Quote literal text as 'text'."),
    }
}

/// Every function callable under `allowed`, in documentation spelling.
fn functions_here(allowed: &Allowed) -> Vec<&'static str> {
    [
        "contains",
        "startsWith",
        "endsWith",
        "format",
        "join",
        "toJSON",
        "fromJSON",
        "case",
        "hashFiles",
        "success",
        "always",
        "failure",
        "cancelled",
    ]
    .into_iter()
    .filter(|f| {
        Function::lookup(f).is_some_and(|function| function.is_core()) || allowed.allows_function(f)
    })
    .collect()
}

fn function_help(name: &str, allowed: &Allowed) -> String {
    let here = functions_here(allowed);
    let list = quoted_list(&here);
    if let Some(function) = Function::lookup(name) {
        let where_allowed = if function == Function::HashFiles {
            "in step keys"
        } else {
            "in `if:` conditions"
        };
        return format!(
            "'{}' can only be used {where_allowed}; functions available here: {list}.",
            function.name()
        );
    }
    match closest(name, here.iter().copied()) {
        Some(c) => format!("Did you mean '{c}'? Functions available here: {list}."),
        None => format!("Functions available here: {list}."),
    }
}

fn arity_help(name: &str, allowed: &Allowed) -> String {
    let Some(function) = Function::lookup(name) else {
        return "Check the function's arguments.".into();
    };
    let signature = match function {
        Function::Contains => "contains(search, item)",
        Function::StartsWith => "startsWith(searchString, searchValue)",
        Function::EndsWith => "endsWith(searchString, searchValue)",
        Function::Format => "format(string, replaceValue0, replaceValue1, ...)",
        Function::Join => "join(array, optionalSeparator)",
        Function::ToJson => "toJSON(value)",
        Function::FromJson => "fromJSON(value)",
        Function::Case => "case(condition1, value1, ..., default) with an odd number of arguments",
        Function::HashFiles => "hashFiles(path, ...)",
        Function::Success | Function::Failure if allowed.status_function_args => {
            if function == Function::Success {
                "success() or success('job-id', ...)"
            } else {
                "failure() or failure('job-id', ...)"
            }
        }
        Function::Success => {
            "success() with no arguments (job ids are only accepted in a job's `if:`)"
        }
        Function::Failure => {
            "failure() with no arguments (job ids are only accepted in a job's `if:`)"
        }
        Function::Always => "always() with no arguments",
        Function::Cancelled => "cancelled() with no arguments",
    };
    format!("Call it as {signature}.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expression::ErrorKind;

    fn error(message: &str) -> ExprError {
        ExprError {
            kind: ErrorKind::Parsing,
            message: message.into(),
            position: Some(1),
            expression: "x".into(),
        }
    }

    const STEP: Allowed<'static> = Allowed {
        named_values: &["github", "secrets", "env"],
        functions: &["hashFiles"],
        status_function_args: false,
    };

    #[test]
    fn named_values_get_the_closest_context_and_the_list() {
        let help = expression_help(&error("Unrecognized named-value: 'secret'"), &STEP);
        assert_eq!(
            help,
            "Did you mean 'secrets'? Contexts available here: 'github', 'secrets', 'env'."
        );
        let help = expression_help(&error("Unrecognized named-value: 'matrix'"), &STEP);
        assert!(help.starts_with("The 'matrix' context is not available at this key"));
    }

    #[test]
    fn functions_get_the_closest_function_or_where_they_belong() {
        let help = expression_help(&error("Unrecognized function: 'contain'"), &STEP);
        assert!(help.starts_with("Did you mean 'contains'?"), "{help}");
        let help = expression_help(&error("Unrecognized function: 'always'"), &STEP);
        assert!(
            help.starts_with("'always' can only be used in `if:` conditions"),
            "{help}"
        );
        let help = expression_help(&error("Too many parameters supplied: 'toJSON'"), &STEP);
        assert_eq!(help, "Call it as toJSON(value).");
    }
}
