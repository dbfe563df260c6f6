//! The Role and RoleBinding of each `--deploy-namespaces` namespace: what a deploy
//! (`uses: hybrid-runner/deploy@v1`, `hybrid-runner deploy`) needs there and nothing more,
//! granted to the runner's ServiceAccount. The rules come from
//! `hr_cluster::permissions::DEPLOY_PERMISSIONS`, the same table `hr_rollout`'s calls are
//! checked against.

use k8s_openapi::api::rbac::v1::{Role, RoleBinding};

use super::templates::DeployTemplate;
use super::{DeployError, DeploySettings, policy_rule};
use hr_cluster::permissions::DEPLOY_PERMISSIONS;

/// Renders the Role and its binding for every deploy namespace, in the order given.
pub(super) fn deploy_roles(
    settings: &DeploySettings,
    values: &[(&str, &str)],
) -> Result<Vec<(Role, RoleBinding)>, DeployError> {
    let dir = settings.template_dir.as_deref();
    let name = settings.deploy_role();
    let mut roles = Vec::new();
    for namespace in &settings.deploy_namespaces {
        let values: Vec<(&str, &str)> = values
            .iter()
            .copied()
            .chain([
                ("deploy_role", name.as_str()),
                ("deploy_namespace", namespace.as_str()),
            ])
            .collect();
        let mut role: Role = DeployTemplate::DeployRole.render(dir, "Role", &values)?;
        role.metadata.name = Some(name.clone());
        role.metadata.namespace = Some(namespace.clone());
        role.rules
            .get_or_insert_with(Vec::new)
            .extend(DEPLOY_PERMISSIONS.iter().map(policy_rule));

        let mut binding: RoleBinding =
            DeployTemplate::DeployRoleBinding.render(dir, "RoleBinding", &values)?;
        binding.metadata.name = Some(name.clone());
        binding.metadata.namespace = Some(namespace.clone());
        binding.role_ref.kind = "Role".to_string();
        binding.role_ref.api_group = Some("rbac.authorization.k8s.io".to_string());
        binding.role_ref.name = name.clone();
        roles.push((role, binding));
    }
    Ok(roles)
}
