//! The YAML templates of the in-cluster install (`templates/deploy/`): built in with
//! `include_str!`, optionally replaced by the user's copies, placeholders substituted as
//! quoted YAML strings (the same rules as the build templates) and parsed into typed
//! `k8s-openapi` objects.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::DeployError;

/// One template file of `templates/deploy/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployTemplate {
    Namespace,
    ServiceAccount,
    ClusterRole,
    ClusterRoleBinding,
    ConfigMap,
    Service,
    Pod,
    StatefulSet,
    Deployment,
    AdmissionPolicy,
    AdmissionPolicyBinding,
    /// The Role of one `--deploy-namespaces` namespace.
    DeployRole,
    DeployRoleBinding,
}

impl DeployTemplate {
    pub const ALL: [DeployTemplate; 13] = [
        DeployTemplate::Namespace,
        DeployTemplate::ServiceAccount,
        DeployTemplate::ClusterRole,
        DeployTemplate::ClusterRoleBinding,
        DeployTemplate::ConfigMap,
        DeployTemplate::Service,
        DeployTemplate::Pod,
        DeployTemplate::StatefulSet,
        DeployTemplate::Deployment,
        DeployTemplate::AdmissionPolicy,
        DeployTemplate::AdmissionPolicyBinding,
        DeployTemplate::DeployRole,
        DeployTemplate::DeployRoleBinding,
    ];

    /// The file name, in `templates/deploy/` and in a user's `--template-dir`.
    pub fn file_name(self) -> &'static str {
        match self {
            DeployTemplate::Namespace => "namespace.yaml",
            DeployTemplate::ServiceAccount => "service-account.yaml",
            DeployTemplate::ClusterRole => "cluster-role.yaml",
            DeployTemplate::ClusterRoleBinding => "cluster-role-binding.yaml",
            DeployTemplate::ConfigMap => "config-map.yaml",
            DeployTemplate::Service => "service.yaml",
            DeployTemplate::Pod => "pod.yaml",
            DeployTemplate::StatefulSet => "statefulset.yaml",
            DeployTemplate::Deployment => "deployment.yaml",
            DeployTemplate::AdmissionPolicy => "admission-policy.yaml",
            DeployTemplate::AdmissionPolicyBinding => "admission-policy-binding.yaml",
            DeployTemplate::DeployRole => "deploy-role.yaml",
            DeployTemplate::DeployRoleBinding => "deploy-role-binding.yaml",
        }
    }

    /// The built-in text.
    pub fn builtin(self) -> &'static str {
        match self {
            DeployTemplate::Namespace => {
                include_str!("../../templates/deploy/namespace.yaml")
            }
            DeployTemplate::ServiceAccount => {
                include_str!("../../templates/deploy/service-account.yaml")
            }
            DeployTemplate::ClusterRole => {
                include_str!("../../templates/deploy/cluster-role.yaml")
            }
            DeployTemplate::ClusterRoleBinding => {
                include_str!("../../templates/deploy/cluster-role-binding.yaml")
            }
            DeployTemplate::ConfigMap => {
                include_str!("../../templates/deploy/config-map.yaml")
            }
            DeployTemplate::Service => include_str!("../../templates/deploy/service.yaml"),
            DeployTemplate::Pod => include_str!("../../templates/deploy/pod.yaml"),
            DeployTemplate::StatefulSet => {
                include_str!("../../templates/deploy/statefulset.yaml")
            }
            DeployTemplate::Deployment => {
                include_str!("../../templates/deploy/deployment.yaml")
            }
            DeployTemplate::AdmissionPolicy => {
                include_str!("../../templates/deploy/admission-policy.yaml")
            }
            DeployTemplate::AdmissionPolicyBinding => {
                include_str!("../../templates/deploy/admission-policy-binding.yaml")
            }
            DeployTemplate::DeployRole => {
                include_str!("../../templates/deploy/deploy-role.yaml")
            }
            DeployTemplate::DeployRoleBinding => {
                include_str!("../../templates/deploy/deploy-role-binding.yaml")
            }
        }
    }

    /// The user's copy in `dir` when there is one, else the built-in text.
    fn text(self, dir: Option<&Path>) -> Result<String, DeployError> {
        hr_cluster::templates::template_text(dir, self.file_name(), self.builtin())
            .map_err(|(path, source)| DeployError::TemplateRead { path, source })
    }

    /// Substitutes `values` and parses the result as `T` (`kind` names `T` in errors).
    pub(super) fn render<T: DeserializeOwned>(
        self,
        dir: Option<&Path>,
        kind: &'static str,
        values: &[(&str, &str)],
    ) -> Result<T, DeployError> {
        let text = hr_cluster::templates::substitute(self.file_name(), &self.text(dir)?, values)
            .map_err(|e| DeployError::TemplateSubstitute(e.to_string()))?;
        serde_saphyr::from_str(&text).map_err(|e| DeployError::TemplateParse {
            template: self.file_name(),
            kind,
            message: e.to_string(),
        })
    }
}
