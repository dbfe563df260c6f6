//! The manifests that install the daemon in a cluster (`hybrid-runner generate-manifests`):
//! its Namespace, ServiceAccount, ClusterRole and ClusterRoleBinding (rules from the same
//! permission table `hybrid-runner check` verifies), with `--deploy-namespaces` a Role and
//! RoleBinding per namespace the runner deploys to ([`deploy_roles`]), the ConfigMap with
//! its `config.yaml`, a
//! headless Service for metrics, and a StatefulSet (default: `.runner` and the log spool on
//! a PVC) or a Deployment, and optionally a ValidatingAdmissionPolicy that confines the
//! runner to its build namespaces. Rendered from `templates/deploy/` into typed `k8s-openapi`
//! objects and adjusted in typed form, never string-patched after rendering.

mod admission;
mod daemon_config;
mod deploy_roles;
mod templates;
mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use hr_cluster::names::{is_dns1123_label, is_dns1123_subdomain};
use hr_cluster::permissions::{Permission, with_job_pods};
use hr_engine::labels::Label;
use hr_gitea::config::Config;
use hr_image::kaniko::needed_permissions;

pub use admission::service_account_user;
pub use daemon_config::{
    CONFIG_DIR, CONFIG_FILE, DATA_DIR, METRICS_PORT, REGISTRY_DIR, REGISTRY_FILE, RUNNER_FILE,
    TOKEN_DIR, TOKEN_FILE, WORKDIR_PARENT, config_text, daemon_config, kaniko_shape,
};
pub use templates::DeployTemplate;
pub use workload::{
    CONFIG_SHA256_ANNOTATION, DAEMON_CONTAINER, DATA_VOLUME, REGISTER_CONTAINER, register_args,
};

/// What the pod's grace period adds to `runner.shutdown_timeout`: time for the final log
/// and state reports of cancelled tasks and for deleting their build namespaces.
pub const GRACE_MARGIN: Duration = Duration::from_secs(120);
/// The key of `config.yaml` in the ConfigMap.
pub const CONFIG_KEY: &str = "config.yaml";
/// The key of the registration token in its Secret.
pub const TOKEN_KEY: &str = "token";

/// The workload that runs the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkloadKind {
    /// Each replica keeps `.runner` and its log spool on its own PVC.
    #[default]
    StatefulSet,
    /// Stateless: each new pod registers a new runner.
    Deployment,
}

/// Everything `generate-manifests` takes.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploySettings {
    /// The namespace the runner lives in.
    pub namespace: String,
    /// The workload, ServiceAccount and Service name; the runners are named after the pods.
    pub name: String,
    /// The Gitea or Forgejo URL.
    pub instance: String,
    /// The hybrid-runner image.
    pub image: String,
    /// Labels registered, in act_runner's syntax.
    pub labels: Vec<String>,
    pub capacity: usize,
    pub replicas: i32,
    /// The Secret (in `namespace`, key `token`) holding the registration token.
    pub registration_token_secret: String,
    /// A `kubernetes.io/dockerconfigjson` Secret (in `namespace`) with registry credentials.
    pub registry_secret: Option<String>,
    pub shutdown_timeout: Duration,
    pub kind: WorkloadKind,
    /// The size of each StatefulSet replica's data volume.
    pub storage: String,
    pub storage_class: Option<String>,
    /// A folder with the user's copies of the templates.
    pub template_dir: Option<PathBuf>,
    /// Add the ValidatingAdmissionPolicy that confines the runner to build namespaces.
    pub admission_policy: bool,
    /// The namespaces `hybrid-runner/deploy` steps deploy to: each gets a Role and
    /// RoleBinding with what a deploy needs there (`--deploy-namespaces`).
    pub deploy_namespaces: Vec<String>,
}

impl DeploySettings {
    /// The defaults for a runner of `instance` from `image`.
    pub fn new(instance: &str, image: &str) -> DeploySettings {
        DeploySettings {
            namespace: "hybrid-runner".to_string(),
            name: "hybrid-runner".to_string(),
            instance: instance.to_string(),
            image: image.to_string(),
            labels: hr_engine::labels::DEFAULT_LABELS
                .iter()
                .map(|l| l.to_string())
                .collect(),
            capacity: 1,
            replicas: 1,
            registration_token_secret: "hybrid-runner-registration".to_string(),
            registry_secret: None,
            // act_runner's chart waits 3 h for running jobs.
            shutdown_timeout: Duration::from_secs(3 * 3600),
            kind: WorkloadKind::StatefulSet,
            storage: "1Gi".to_string(),
            storage_class: None,
            template_dir: None,
            admission_policy: false,
            deploy_namespaces: Vec::new(),
        }
    }

    /// The ClusterRole's (and its binding's) name: cluster-wide, so it carries the namespace.
    pub fn cluster_role(&self) -> String {
        format!("{}-{}", self.namespace, self.name)
    }

    /// The name of the Role (and its binding) in each deploy namespace: it carries the
    /// runner's namespace and name, as several runners may deploy to one namespace.
    pub fn deploy_role(&self) -> String {
        format!("{}-deploy", self.cluster_role())
    }

    /// The ConfigMap holding `config.yaml`.
    pub fn config_map(&self) -> String {
        format!("{}-config", self.name)
    }

    /// Checks every value before anything is rendered.
    pub fn validate(&self) -> Result<(), DeployError> {
        let invalid =
            |what: &'static str, message: String| Err(DeployError::Invalid { what, message });
        if !is_dns1123_label(&self.namespace) {
            return invalid(
                "--namespace",
                format!(
                    "{:?} is not a namespace name: 1 to 63 lowercase letters, digits or '-', starting and ending with a letter or digit",
                    self.namespace
                ),
            );
        }
        // StatefulSet pods carry `<name>-<hash>` in a 63-character label.
        if !is_dns1123_label(&self.name) || self.name.len() > 52 {
            return invalid(
                "--name",
                format!(
                    "{:?} must be 1 to 52 lowercase letters, digits or '-', starting and ending with a letter or digit",
                    self.name
                ),
            );
        }
        let url = self.instance.trim();
        if !(url.starts_with("http://") || url.starts_with("https://"))
            || url.len() <= "https://".len()
            || url.contains(char::is_whitespace)
        {
            return invalid(
                "--instance",
                format!(
                    "{:?} is not an http:// or https:// URL of a Gitea or Forgejo instance",
                    self.instance
                ),
            );
        }
        if self.image.trim().is_empty() || self.image.contains(char::is_whitespace) {
            return invalid(
                "--image",
                format!("{:?} is not an image reference", self.image),
            );
        }
        if self.labels.is_empty() {
            return invalid("--labels", "give at least one label".to_string());
        }
        if let Err(e) = Label::parse_all(&self.labels) {
            return invalid("--labels", e.to_string());
        }
        if self.capacity == 0 {
            return invalid("--capacity", "must be 1 or more".to_string());
        }
        if self.replicas < 1 {
            return invalid("--replicas", "must be 1 or more".to_string());
        }
        for (what, secret) in [
            (
                "--registration-token-secret",
                Some(&self.registration_token_secret),
            ),
            ("--registry-secret", self.registry_secret.as_ref()),
        ] {
            if let Some(secret) = secret
                && !is_dns1123_subdomain(secret)
            {
                return invalid(
                    what,
                    format!(
                        "{secret:?} is not a Secret name (lowercase letters, digits, '-' and '.')"
                    ),
                );
            }
        }
        if !is_quantity(&self.storage) {
            return invalid(
                "--storage",
                format!("{:?} is not a storage size like 1Gi or 500Mi", self.storage),
            );
        }
        if grace_period_seconds(self.shutdown_timeout).is_none() {
            return invalid("--shutdown-timeout", "is too long".to_string());
        }
        for (i, ns) in self.deploy_namespaces.iter().enumerate() {
            if !is_dns1123_label(ns) {
                return invalid(
                    "--deploy-namespaces",
                    format!(
                        "{ns:?} is not a namespace name: 1 to 63 lowercase letters, digits or '-', starting and ending with a letter or digit"
                    ),
                );
            }
            if self.deploy_namespaces[..i].contains(ns) {
                return invalid(
                    "--deploy-namespaces",
                    format!("{ns:?} is named twice; name each namespace once"),
                );
            }
        }
        Ok(())
    }
}

/// The pod's `terminationGracePeriodSeconds` for `shutdown_timeout`.
pub fn grace_period_seconds(shutdown_timeout: Duration) -> Option<i64> {
    i64::try_from((shutdown_timeout + GRACE_MARGIN).as_secs())
        .ok()
        .filter(|s| *s <= i64::from(i32::MAX))
}

/// The runner's workload.
#[derive(Debug, Clone)]
pub enum Workload {
    StatefulSet(Box<StatefulSet>),
    Deployment(Box<Deployment>),
}

/// Every object of the install, in the order they are applied.
#[derive(Debug, Clone)]
pub struct DeployManifests {
    pub namespace: Namespace,
    pub service_account: ServiceAccount,
    pub cluster_role: ClusterRole,
    pub cluster_role_binding: ClusterRoleBinding,
    /// With `--deploy-namespaces`: each namespace's Role and its binding, in order.
    pub deploy_roles: Vec<(Role, RoleBinding)>,
    pub config_map: ConfigMap,
    pub service: Service,
    pub workload: Workload,
    /// With `--admission-policy`: the policy confining the runner and its binding.
    pub admission_policy: Option<(ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding)>,
    /// The configuration in the ConfigMap, typed.
    pub config: Config,
}

/// Why the install manifests could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{what}: {message}")]
    Invalid { what: &'static str, message: String },
    #[error(
        "cannot read the template {path}: {source}; fix --template-dir or remove the file to use the built-in template"
    )]
    TemplateRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    TemplateSubstitute(String),
    #[error(
        "template {template} is not a valid {kind} after substitution: {message}; fix the template or remove it from --template-dir to use the built-in one"
    )]
    TemplateParse {
        template: &'static str,
        kind: &'static str,
        message: String,
    },
    #[error(
        "template {template}: {message}; fix the template or remove it from --template-dir to use the built-in one"
    )]
    TemplateShape {
        template: &'static str,
        message: String,
    },
    #[error("cannot serialize the {kind} {name}: {message}")]
    Serialize {
        kind: &'static str,
        name: String,
        message: String,
    },
}

/// Renders every object of the install under `settings` (validated first).
pub fn deploy_manifests(settings: &DeploySettings) -> Result<DeployManifests, DeployError> {
    settings.validate()?;
    let dir = settings.template_dir.as_deref();
    let ns = settings.namespace.as_str();
    let name = settings.name.as_str();
    let cluster_role_name = settings.cluster_role();
    let config_map_name = settings.config_map();
    let values = [
        ("namespace", ns),
        ("name", name),
        ("service_account", name),
        ("cluster_role", cluster_role_name.as_str()),
        ("config_map", config_map_name.as_str()),
    ];

    let mut namespace: Namespace = DeployTemplate::Namespace.render(dir, "Namespace", &values)?;
    namespace.metadata.name = Some(ns.to_string());

    let mut service_account: ServiceAccount =
        DeployTemplate::ServiceAccount.render(dir, "ServiceAccount", &values)?;
    place(&mut service_account.metadata, name, ns);

    let config = daemon_config(settings);
    let mut cluster_role: ClusterRole =
        DeployTemplate::ClusterRole.render(dir, "ClusterRole", &values)?;
    cluster_role.metadata.name = Some(cluster_role_name.clone());
    let rules = cluster_role.rules.get_or_insert_with(Vec::new);
    let mut permissions = needed_permissions(&kaniko_shape(&config.kubernetes));
    if runs_job_pods(&settings.labels) {
        permissions = with_job_pods(permissions);
    }
    rules.extend(permissions.iter().map(policy_rule));

    let mut binding: ClusterRoleBinding =
        DeployTemplate::ClusterRoleBinding.render(dir, "ClusterRoleBinding", &values)?;
    binding.metadata.name = Some(cluster_role_name.clone());
    binding.role_ref.kind = "ClusterRole".to_string();
    binding.role_ref.api_group = Some("rbac.authorization.k8s.io".to_string());
    binding.role_ref.name = cluster_role_name.clone();
    let deploy_roles = deploy_roles::deploy_roles(settings, &values)?;

    let text = config_text(&config);
    let config_values: Vec<(&str, &str)> = values
        .iter()
        .copied()
        .chain([("config_yaml", text.as_str())])
        .collect();
    let mut config_map: ConfigMap =
        DeployTemplate::ConfigMap.render(dir, "ConfigMap", &config_values)?;
    place(&mut config_map.metadata, &config_map_name, ns);
    config_map
        .data
        .get_or_insert_with(BTreeMap::new)
        .insert(CONFIG_KEY.to_string(), text.clone());

    let service = workload::service(settings, dir, &values)?;
    let workload = workload::workload(settings, dir, &values, &text)?;
    let admission_policy = settings
        .admission_policy
        .then(|| admission::admission_policy(settings, dir, &values))
        .transpose()?;
    Ok(DeployManifests {
        namespace,
        service_account,
        cluster_role,
        cluster_role_binding: binding,
        deploy_roles,
        config_map,
        service,
        workload,
        admission_policy,
        config,
    })
}

impl DeployManifests {
    /// Every object as one YAML document each, `---`-separated, in apply order.
    pub fn to_yaml(&self) -> Result<String, DeployError> {
        let mut out = String::new();
        for (kind, name, value) in self.objects()? {
            // Block scalars keep config.yaml readable in the ConfigMap; a test reads the
            // documents back and compares them with the objects.
            let options = serde_saphyr::ser_options! { prefer_block_scalars: true };
            let doc = serde_saphyr::to_string_with_options(&value, options).map_err(|e| {
                DeployError::Serialize {
                    kind,
                    name,
                    message: e.to_string(),
                }
            })?;
            out.push_str("---\n");
            out.push_str(&doc);
            if !doc.ends_with('\n') {
                out.push('\n');
            }
        }
        Ok(out)
    }

    /// Every object in a `v1` `List`, as `kubectl apply -f -` also takes it.
    pub fn to_json_list(&self) -> Result<serde_json::Value, DeployError> {
        let items: Vec<serde_json::Value> = self
            .objects()?
            .into_iter()
            .map(|(_, _, value)| value)
            .collect();
        Ok(serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}))
    }

    /// `(kind, name, JSON value)` of every object, in apply order.
    fn objects(&self) -> Result<Vec<(&'static str, String, serde_json::Value)>, DeployError> {
        fn entry<T: Serialize>(
            kind: &'static str,
            meta: &ObjectMeta,
            value: &T,
        ) -> Result<(&'static str, String, serde_json::Value), DeployError> {
            let name = meta.name.clone().unwrap_or_default();
            let json = serde_json::to_value(value).map_err(|e| DeployError::Serialize {
                kind,
                name: name.clone(),
                message: e.to_string(),
            })?;
            Ok((kind, name, json))
        }
        let mut objects = vec![
            entry("Namespace", &self.namespace.metadata, &self.namespace)?,
            entry(
                "ServiceAccount",
                &self.service_account.metadata,
                &self.service_account,
            )?,
            entry(
                "ClusterRole",
                &self.cluster_role.metadata,
                &self.cluster_role,
            )?,
            entry(
                "ClusterRoleBinding",
                &self.cluster_role_binding.metadata,
                &self.cluster_role_binding,
            )?,
        ];
        for (role, binding) in &self.deploy_roles {
            objects.push(entry("Role", &role.metadata, role)?);
            objects.push(entry("RoleBinding", &binding.metadata, binding)?);
        }
        objects.extend([
            entry("ConfigMap", &self.config_map.metadata, &self.config_map)?,
            entry("Service", &self.service.metadata, &self.service)?,
        ]);
        if let Some((policy, binding)) = &self.admission_policy {
            objects.push(entry(
                "ValidatingAdmissionPolicy",
                &policy.metadata,
                policy,
            )?);
            objects.push(entry(
                "ValidatingAdmissionPolicyBinding",
                &binding.metadata,
                binding,
            )?);
        }
        objects.push(match &self.workload {
            Workload::StatefulSet(s) => entry("StatefulSet", &s.metadata, s)?,
            Workload::Deployment(d) => entry("Deployment", &d.metadata, d)?,
        });
        Ok(objects)
    }
}

/// The RBAC rule granting `p`.
/// Whether `labels` hold a `kubernetes` label (its jobs' steps run in pods: the runner
/// then needs `kaniko::job_pod_permissions` too).
pub fn runs_job_pods(labels: &[String]) -> bool {
    Label::parse_all(labels).is_ok_and(|labels| {
        labels
            .iter()
            .any(|l| matches!(l.kind, hr_engine::labels::LabelKind::Kubernetes { .. }))
    })
}

pub fn policy_rule(p: &Permission) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![p.group.to_string()]),
        resources: Some(vec![p.rbac_resource()]),
        verbs: p.verbs.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    }
}

/// Names `meta` and puts it into namespace `ns`.
fn place(meta: &mut ObjectMeta, name: &str, ns: &str) {
    meta.name = Some(name.to_string());
    meta.namespace = Some(ns.to_string());
}

/// A Kubernetes quantity as sizes are written: digits, an optional fraction, an optional
/// binary or decimal suffix.
fn is_quantity(s: &str) -> bool {
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    !number.is_empty()
        && number.parse::<f64>().is_ok_and(|n| n > 0.0)
        && ["", "Ki", "Mi", "Gi", "Ti", "Pi", "k", "M", "G", "T", "P"].contains(&suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_and_names() {
        for ok in ["1Gi", "500Mi", "1.5G", "1000"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "Gi", "1GB", "0", "-1Gi", "1 Gi"] {
            assert!(!is_quantity(bad), "{bad}");
        }
        assert!(is_dns1123_subdomain("registry.creds"));
        assert!(!is_dns1123_subdomain("Registry"));
        assert!(!is_dns1123_subdomain("a..b"));
    }

    #[test]
    fn grace_period_covers_the_shutdown_timeout() {
        assert_eq!(
            grace_period_seconds(Duration::from_secs(10800)),
            Some(10800 + 120)
        );
        assert_eq!(
            grace_period_seconds(Duration::from_secs(u64::MAX / 2)),
            None
        );
    }
}
