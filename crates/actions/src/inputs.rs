//! Reading the `with:` of an action the runner serves itself, as the actions toolkit reads
//! inputs (`core.getInput`: the value trimmed, unset inputs arriving empty;
//! `core.getBooleanInput`: the YAML 1.2 core schema's booleans). Shared by the built-in
//! builds ([`crate::image_build`]) and the engine's `hybrid-runner/deploy` step.

/// The value of `name`, trimmed; `None` when absent or empty (GitHub passes unset inputs as
/// empty strings).
pub fn get<'a>(inputs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    inputs
        .iter()
        .rev()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// What `core.getBooleanInput` accepts: `true`/`True`/`TRUE`/`false`/`False`/`FALSE`;
/// `None` for anything else.
pub fn boolean_value(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// The first input with a value that is not one of `known` (compared trimmed and
/// case-insensitively), if any.
pub fn unknown_input<'a>(inputs: &'a [(String, String)], known: &[&str]) -> Option<&'a str> {
    inputs
        .iter()
        .find(|(name, value)| {
            !value.trim().is_empty() && !known.contains(&name.trim().to_ascii_lowercase().as_str())
        })
        .map(|(name, _)| name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_read_as_the_toolkit_reads_them() {
        let inputs = vec![
            ("Image".to_string(), " reg/app ".to_string()),
            ("push".to_string(), String::new()),
            ("colour".to_string(), "red".to_string()),
        ];
        assert_eq!(get(&inputs, "image"), Some("reg/app"));
        assert_eq!(get(&inputs, "push"), None);
        assert_eq!(unknown_input(&inputs, &["image", "push"]), Some("colour"));
        assert_eq!(unknown_input(&inputs, &["image", "colour"]), None);
        assert_eq!(boolean_value("TRUE"), Some(true));
        assert_eq!(boolean_value("False"), Some(false));
        assert_eq!(boolean_value("yes"), None);
    }
}
