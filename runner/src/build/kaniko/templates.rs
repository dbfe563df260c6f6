//! The YAML templates of the build manifests: built in with `include_str!`, optionally
//! replaced by the user's copies, with `{{name}}` placeholders substituted by quoted YAML
//! strings and the result parsed into a typed object.
//!
//! A placeholder stands for a whole value (`name: {{namespace}}`, `[{{mode}}]`); the value
//! is written as a double-quoted scalar, so no value can change the document's structure.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::ManifestError;

/// One template file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    Namespace,
    ResourceQuota,
    LimitRange,
    RegistrySecret,
    ContextConfigMap,
    ContextPvc,
    ContextLoader,
    KanikoJob,
}

impl Template {
    pub const ALL: [Template; 8] = [
        Template::Namespace,
        Template::ResourceQuota,
        Template::LimitRange,
        Template::RegistrySecret,
        Template::ContextConfigMap,
        Template::ContextPvc,
        Template::ContextLoader,
        Template::KanikoJob,
    ];

    /// The file name, in `templates/build/` and in a user's `template_dir`.
    pub fn file_name(self) -> &'static str {
        match self {
            Template::Namespace => "namespace.yaml",
            Template::ResourceQuota => "resource-quota.yaml",
            Template::LimitRange => "limit-range.yaml",
            Template::RegistrySecret => "registry-secret.yaml",
            Template::ContextConfigMap => "context-configmap.yaml",
            Template::ContextPvc => "context-pvc.yaml",
            Template::ContextLoader => "context-loader.yaml",
            Template::KanikoJob => "kaniko-job.yaml",
        }
    }

    /// The built-in text.
    pub fn builtin(self) -> &'static str {
        match self {
            Template::Namespace => include_str!("../../../../templates/build/namespace.yaml"),
            Template::ResourceQuota => {
                include_str!("../../../../templates/build/resource-quota.yaml")
            }
            Template::LimitRange => include_str!("../../../../templates/build/limit-range.yaml"),
            Template::RegistrySecret => {
                include_str!("../../../../templates/build/registry-secret.yaml")
            }
            Template::ContextConfigMap => {
                include_str!("../../../../templates/build/context-configmap.yaml")
            }
            Template::ContextPvc => include_str!("../../../../templates/build/context-pvc.yaml"),
            Template::ContextLoader => {
                include_str!("../../../../templates/build/context-loader.yaml")
            }
            Template::KanikoJob => include_str!("../../../../templates/build/kaniko-job.yaml"),
        }
    }

    /// The text to render: the user's copy in `dir` when there is one, else the built-in one.
    fn text(self, dir: Option<&Path>) -> Result<String, ManifestError> {
        template_text(dir, self.file_name(), self.builtin())
            .map_err(|(path, source)| ManifestError::TemplateRead { path, source })
    }

    /// Substitutes `values` and parses the result as `T` (`kind` names `T` in errors).
    pub(crate) fn render<T: DeserializeOwned>(
        self,
        dir: Option<&Path>,
        kind: &'static str,
        values: &[(&str, &str)],
    ) -> Result<T, ManifestError> {
        let text = substitute(self.file_name(), &self.text(dir)?, values)?;
        serde_saphyr::from_str(&text).map_err(|e| ManifestError::TemplateParse {
            template: self.file_name(),
            kind,
            message: e.to_string(),
        })
    }
}

/// Replaces every `{{name}}` in `text` with the quoted value of `name`.
pub(crate) fn substitute(
    template: &'static str,
    text: &str,
    values: &[(&str, &str)],
) -> Result<String, ManifestError> {
    let fail = |message: String| ManifestError::TemplateSubstitute { template, message };
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
pub(crate) fn template_text(
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
        let ns: Namespace = Template::Namespace
            .render(Some(dir.path()), "Namespace", &[("namespace", "ns-1")])
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
        let err = Template::Namespace
            .render::<Namespace>(Some(dir.path()), "Namespace", &[])
            .unwrap_err();
        assert!(err.to_string().contains("namespace.yaml"), "{err}");
    }
}
