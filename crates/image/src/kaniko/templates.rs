//! The YAML templates of the build manifests, built in with `include_str!` and rendered by
//! `hr_cluster::templates` (the user's copies in `template_dir` replace them).

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

    /// The file name, in `templates/kaniko/` and in a user's `template_dir`.
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
            Template::Namespace => hr_cluster::namespaces::NAMESPACE_TEMPLATE,
            Template::ResourceQuota => {
                include_str!("../../templates/kaniko/resource-quota.yaml")
            }
            Template::LimitRange => include_str!("../../templates/kaniko/limit-range.yaml"),
            Template::RegistrySecret => {
                include_str!("../../templates/kaniko/registry-secret.yaml")
            }
            Template::ContextConfigMap => {
                include_str!("../../templates/kaniko/context-configmap.yaml")
            }
            Template::ContextPvc => include_str!("../../templates/kaniko/context-pvc.yaml"),
            Template::ContextLoader => {
                include_str!("../../templates/kaniko/context-loader.yaml")
            }
            Template::KanikoJob => include_str!("../../templates/kaniko/kaniko-job.yaml"),
        }
    }

    pub(crate) fn render<T: DeserializeOwned>(
        self,
        dir: Option<&Path>,
        kind: &'static str,
        values: &[(&str, &str)],
    ) -> Result<T, ManifestError> {
        Ok(hr_cluster::templates::render(
            self.file_name(),
            self.builtin(),
            dir,
            kind,
            values,
        )?)
    }
}
