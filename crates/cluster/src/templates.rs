//! YAML templates of Kubernetes objects: built into the crate that owns them with
//! `include_str!`, optionally replaced by the user's copies (same file names in a
//! `template_dir`), with `{{name}}` placeholders substituted by quoted YAML strings and the
//! result parsed into a typed object.
//!
//! A placeholder stands for a whole value (`name: {{namespace}}`, `[{{mode}}]`); the value
//! is written as a double-quoted scalar, so no value can change the document's structure.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Why a template could not be turned into an object.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "cannot read the template {path}: {source}; fix template_dir or remove the file to use the built-in template"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("template {template}: {message}")]
    Substitute {
        template: &'static str,
        message: String,
    },
    #[error(
        "template {template} is not a valid {kind} after substitution: {message}; fix the template or remove it from template_dir to use the built-in one"
    )]
    Parse {
        template: &'static str,
        kind: &'static str,
        message: String,
    },
}

/// Renders the template `file_name` (the user's copy in `dir`, else `builtin`) with
/// `values` into a `kind` object.
pub fn render<T: DeserializeOwned>(
    file_name: &'static str,
    builtin: &str,
    dir: Option<&Path>,
    kind: &'static str,
    values: &[(&str, &str)],
) -> Result<T, TemplateError> {
    let text = template_text(dir, file_name, builtin)
        .map_err(|(path, source)| TemplateError::Read { path, source })?;
    let text = substitute(file_name, &text, values)?;
    serde_saphyr::from_str(&text).map_err(|e| TemplateError::Parse {
        template: file_name,
        kind,
        message: e.to_string(),
    })
}

/// Replaces every `{{name}}` in `text` with the quoted value of `name`.
pub fn substitute(
    template: &'static str,
    text: &str,
    values: &[(&str, &str)],
) -> Result<String, TemplateError> {
    let fail = |message: String| TemplateError::Substitute { template, message };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let before = &rest[..start];
        out.push_str(before);
        let after_open = &rest[start + 2..];
        let Some(end) = after_open.find("}}") else {
            return Err(fail("a `{{` is never closed by `}}`".to_string()));
        };
        let name = after_open[..end].trim();
        let tail = &after_open[end + 2..];
        if !matches!(before.chars().last(), Some(' ' | '[' | '\t'))
            || !matches!(
                tail.chars().next(),
                None | Some('\n' | '\r' | ' ' | ',' | ']')
            )
        {
            return Err(fail(format!(
                "placeholder {{{{{name}}}}} must stand for a whole value, unquoted (as in `key: {{{{{name}}}}}`)"
            )));
        }
        let Some((_, value)) = values.iter().find(|(key, _)| *key == name) else {
            let known: Vec<&str> = values.iter().map(|(key, _)| *key).collect();
            return Err(fail(format!(
                "unknown placeholder {{{{{name}}}}}; this template may use {}",
                known.join(", ")
            )));
        };
        out.push_str(&quote(value));
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// `value` as a double-quoted YAML scalar (JSON string syntax is a subset of it).
fn quote(value: &str) -> String {
    serde_json::Value::String(value.to_string()).to_string()
}

/// The text of the template `file_name`: the user's copy in `dir` when there is one, else
/// `builtin`. A copy that exists but cannot be read is an error (its path and why), never a
/// silent fall-back to the built-in text.
pub fn template_text(
    dir: Option<&Path>,
    file_name: &str,
    builtin: &str,
) -> Result<String, (std::path::PathBuf, std::io::Error)> {
    if let Some(dir) = dir {
        let path = dir.join(file_name);
        match std::fs::read_to_string(&path) {
            Ok(text) => return Ok(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err((path, source)),
        }
    }
    Ok(builtin.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Namespace;

    #[test]
    fn values_are_quoted_and_cannot_inject_structure() {
        let text = "a: {{x}}\nb: [{{y}}]\n";
        let out = substitute(
            "t",
            text,
            &[("x", "v\"\n  evil: true"), ("y", "ReadWriteOnce")],
        )
        .unwrap();
        assert_eq!(out, "a: \"v\\\"\\n  evil: true\"\nb: [\"ReadWriteOnce\"]\n");
    }

    #[test]
    fn unknown_embedded_and_unclosed_placeholders_fail() {
        let err = substitute("t", "a: {{nope}}", &[("x", "1")]).unwrap_err();
        assert!(
            err.to_string().contains("unknown placeholder {{nope}}"),
            "{err}"
        );
        let err = substitute("t", "a: pre-{{x}}", &[("x", "1")]).unwrap_err();
        assert!(err.to_string().contains("whole value"), "{err}");
        let err = substitute("t", "a: \"{{x}}\"", &[("x", "1")]).unwrap_err();
        assert!(err.to_string().contains("whole value"), "{err}");
        let err = substitute("t", "a: {{x", &[("x", "1")]).unwrap_err();
        assert!(err.to_string().contains("never closed"), "{err}");
    }

    #[test]
    fn user_copies_override_builtin_templates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("namespace.yaml"),
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{namespace}}\n  labels:\n    custom: \"yes\"\n",
        )
        .unwrap();
        let ns: Namespace = render(
            "namespace.yaml",
            crate::namespaces::NAMESPACE_TEMPLATE,
            Some(dir.path()),
            "Namespace",
            &[("namespace", "ns-1")],
        )
        .unwrap();
        assert_eq!(ns.metadata.name.as_deref(), Some("ns-1"));
        assert_eq!(
            ns.metadata
                .labels
                .unwrap()
                .get("custom")
                .map(String::as_str),
            Some("yes")
        );
        // A template of the wrong kind is refused with the template's name.
        std::fs::write(
            dir.path().join("namespace.yaml"),
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n",
        )
        .unwrap();
        let err = render::<Namespace>(
            "namespace.yaml",
            crate::namespaces::NAMESPACE_TEMPLATE,
            Some(dir.path()),
            "Namespace",
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("namespace.yaml"), "{err}");
    }
}
