//! The optional ValidatingAdmissionPolicy and its binding (`--admission-policy`): the API
//! server refuses the runner's creates, updates and deletes outside build namespaces, its
//! `pods/exec` and `pods/attach` (CONNECT requests) outside them, and namespaces it creates
//! without Pod Security `baseline` or `restricted`: the confinement RBAC cannot express. The policy applies to the runner's ServiceAccount
//! only, through a match condition on the request's user name.

use std::path::Path;

use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};

use super::templates::DeployTemplate;
use super::{DeployError, DeploySettings};

/// The user name the API server gives the runner's ServiceAccount.
pub fn service_account_user(settings: &DeploySettings) -> String {
    format!(
        "system:serviceaccount:{}:{}",
        settings.namespace, settings.name
    )
}

/// The policy and its binding, named like the ClusterRole.
pub(super) fn admission_policy(
    settings: &DeploySettings,
    dir: Option<&Path>,
    values: &[(&str, &str)],
) -> Result<(ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding), DeployError> {
    let name = settings.cluster_role();
    let values: Vec<(&str, &str)> = values
        .iter()
        .copied()
        .chain([("policy", name.as_str())])
        .collect();
    let mut policy: ValidatingAdmissionPolicy =
        DeployTemplate::AdmissionPolicy.render(dir, "ValidatingAdmissionPolicy", &values)?;
    policy.metadata.name = Some(name.clone());
    let spec = policy.spec.get_or_insert_with(Default::default);
    let conditions = spec.match_conditions.get_or_insert_with(Vec::new);
    conditions.retain(|c| c.name != "runner-service-account");
    // Both names are DNS labels (checked by `validate`), so the literal needs no escaping.
    conditions.push(MatchCondition {
        name: "runner-service-account".to_string(),
        expression: format!(
            "request.userInfo.username == '{}'",
            service_account_user(settings)
        ),
    });
    if spec.validations.as_ref().is_none_or(Vec::is_empty) {
        return Err(DeployError::TemplateShape {
            template: DeployTemplate::AdmissionPolicy.file_name(),
            message: "has no validations, so it would allow everything".to_string(),
        });
    }
    let mut binding: ValidatingAdmissionPolicyBinding = DeployTemplate::AdmissionPolicyBinding
        .render(dir, "ValidatingAdmissionPolicyBinding", &values)?;
    binding.metadata.name = Some(name.clone());
    let spec = &mut binding.spec;
    spec.policy_name = name;
    spec.validation_actions = vec!["Deny".to_string()];
    Ok((policy, binding))
}
