//! The manifests of one dual build, built from the templates and adjusted in typed form:
//! namespace, optional LimitRange and ResourceQuota, registry secret, the context
//! (ConfigMap, PVC plus loader pod, or nothing for stdin) and one Kaniko Job per variant.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, EnvVar, LimitRange, LimitRangeItem, LimitRangeSpec, Namespace,
    PersistentVolumeClaim, Pod, PodSpec, ResourceQuota, ResourceQuotaSpec, Secret,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::config::{ContextMode, KanikoConfig, LargeContextMode};
use super::spec::PackedFile;
use super::templates::Template;
use super::{BuildSpec, ManifestError, Variant};
use hr_cluster::{NamespaceOwner, TaskIds, task_namespace};

/// The key of the context tarball in the ConfigMap and its file name in the volume.
pub const CONTEXT_KEY: &str = "context.tar.gz";
/// The most data a ConfigMap may hold: the API server refuses one whose `data` and
/// `binaryData` values add up to more than 1 MiB, decoded (`ValidateConfigMap` against
/// `MaxSecretSize` in Kubernetes' `pkg/apis/core/validation`); the base64 of the JSON sent
/// does not count.
pub const CONFIGMAP_BUDGET_BYTES: usize = 1 << 20;

use hr_cluster::MANAGED_BY;

/// How the context reaches Kaniko, with the objects that carry it.
#[derive(Debug, Clone)]
pub enum ContextObjects {
    /// `binaryData.context.tar.gz`, mounted read-only.
    ConfigMap(Box<ConfigMap>),
    /// A volume the loader pod fills from its stdin; the Jobs mount it read-only.
    Pvc {
        pvc: Box<PersistentVolumeClaim>,
        loader: Box<Pod>,
    },
    /// Kaniko reads `tar://stdin`; the runner attaches and writes the tarball.
    Stdin,
}

/// Every object of one dual build, in the order they are created.
#[derive(Debug, Clone)]
pub struct BuildManifests {
    pub namespace: Namespace,
    pub limit_range: Option<LimitRange>,
    pub quota: Option<ResourceQuota>,
    pub registry_secret: Option<Secret>,
    pub context: ContextObjects,
    pub jobs: Vec<(Variant, Job)>,
}

/// Renders the manifests of `spec` for `task` under `config`. `context_targz` is the packed
/// context and `context_sha256` its hex digest.
pub fn build_manifests(
    spec: &BuildSpec,
    config: &KanikoConfig,
    task: &TaskIds,
    context_targz: &[u8],
    context_sha256: &str,
) -> Result<BuildManifests, ManifestError> {
    render(
        spec,
        config,
        task,
        Content::Bytes(context_targz),
        context_sha256,
    )
}

/// [`build_manifests`] for a context packed into a file: the file is read (into the
/// ConfigMap) only when the context mode may put it in a ConfigMap and its size fits
/// [`CONFIGMAP_BUDGET_BYTES`]; otherwise only its size counts.
pub fn build_manifests_packed(
    spec: &BuildSpec,
    config: &KanikoConfig,
    task: &TaskIds,
    packed: &PackedFile,
) -> Result<BuildManifests, ManifestError> {
    render(spec, config, task, Content::File(packed), &packed.sha256)
}

/// Where the packed context's bytes are.
#[derive(Clone, Copy)]
enum Content<'a> {
    Bytes(&'a [u8]),
    File(&'a PackedFile),
}

impl Content<'_> {
    fn size(self) -> u64 {
        match self {
            Content::Bytes(bytes) => bytes.len() as u64,
            Content::File(packed) => packed.size,
        }
    }

    /// The bytes, read from the file if need be: for a context within the ConfigMap budget.
    fn bytes(self, context_dir: &Path) -> Result<Vec<u8>, ManifestError> {
        match self {
            Content::Bytes(bytes) => Ok(bytes.to_vec()),
            Content::File(packed) => packed.read_all().map_err(|e| ManifestError::ContextRead {
                dir: context_dir.to_path_buf(),
                path: packed.path().to_path_buf(),
                message: e.to_string(),
            }),
        }
    }
}

fn render(
    spec: &BuildSpec,
    config: &KanikoConfig,
    task: &TaskIds,
    content: Content<'_>,
    context_sha256: &str,
) -> Result<BuildManifests, ManifestError> {
    if spec.variants.is_empty() {
        return Err(ManifestError::NoVariants(spec.context_dir.clone()));
    }
    if let Some(v) = spec.variants.iter().find(|v| v.tags.is_empty()) {
        return Err(ManifestError::NoTags(v.variant));
    }
    let dir = config.template_dir.as_deref();
    let (ns, namespace) = task_namespace(
        dir,
        NamespaceOwner {
            prefix: &config.namespace_prefix,
            runner_id: &config.runner_id,
            task: &task.task,
            job: &task.job,
        },
        task.started_at + config.expiry,
    )?;

    let ns_only = [("namespace", ns.as_str())];
    let limit_range = match &config.limit_range {
        None => None,
        Some(limits) => {
            let mut lr: LimitRange = Template::LimitRange.render(dir, "LimitRange", &ns_only)?;
            place(&mut lr.metadata, &ns);
            lr.spec = Some(LimitRangeSpec {
                limits: vec![LimitRangeItem {
                    type_: "Container".to_string(),
                    default: quantities(&limits.default_limit),
                    default_request: quantities(&limits.default_request),
                    max: quantities(&limits.max),
                    ..Default::default()
                }],
            });
            Some(lr)
        }
    };
    let quota = match &config.quota {
        None => None,
        Some(hard) => {
            let mut q: ResourceQuota =
                Template::ResourceQuota.render(dir, "ResourceQuota", &ns_only)?;
            place(&mut q.metadata, &ns);
            q.spec = Some(ResourceQuotaSpec {
                hard: quantities(hard),
                ..Default::default()
            });
            Some(q)
        }
    };
    let registry_secret = match &config.registry_secret {
        None => None,
        Some(json) => {
            let mut s: Secret = Template::RegistrySecret.render(dir, "Secret", &ns_only)?;
            place(&mut s.metadata, &ns);
            s.type_ = Some("kubernetes.io/dockerconfigjson".to_string());
            s.data = Some(BTreeMap::from([(
                ".dockerconfigjson".to_string(),
                ByteString(json.clone()),
            )]));
            Some(s)
        }
    };

    let context = context_objects(spec, config, &ns, content, context_sha256)?;
    let jobs = spec
        .variants
        .iter()
        .map(|v| {
            let job = super::job::kaniko_job(
                spec,
                v,
                config,
                &ns,
                &context,
                registry_secret.as_ref(),
                context_sha256,
            )?;
            Ok((v.variant, job))
        })
        .collect::<Result<Vec<_>, ManifestError>>()?;

    Ok(BuildManifests {
        namespace,
        limit_range,
        quota,
        registry_secret,
        context,
        jobs,
    })
}

/// The data of `cm` as the API server counts it against [`CONFIGMAP_BUDGET_BYTES`]: the
/// bytes of every `data` and `binaryData` value, decoded.
pub fn configmap_data_size(cm: &ConfigMap) -> usize {
    let data: usize = cm.data.iter().flatten().map(|(_, v)| v.len()).sum();
    let binary: usize = cm
        .binary_data
        .iter()
        .flatten()
        .map(|(_, v)| v.0.len())
        .sum();
    data + binary
}

fn context_objects(
    spec: &BuildSpec,
    config: &KanikoConfig,
    ns: &str,
    content: Content<'_>,
    sha256: &str,
) -> Result<ContextObjects, ManifestError> {
    let dir = config.template_dir.as_deref();
    let values = [("namespace", ns), ("context_sha256", sha256)];
    let size = content.size();
    // Sized before it is built: a context past the budget is never read or copied into a
    // ConfigMap.
    let configmap = || -> Result<Result<ConfigMap, usize>, ManifestError> {
        if size > CONFIGMAP_BUDGET_BYTES as u64 {
            return Ok(Err(usize::try_from(size).unwrap_or(usize::MAX)));
        }
        let mut cm: ConfigMap = Template::ContextConfigMap.render(dir, "ConfigMap", &values)?;
        place(&mut cm.metadata, ns);
        cm.binary_data = Some(BTreeMap::from([(
            CONTEXT_KEY.to_string(),
            ByteString(content.bytes(&spec.context_dir)?),
        )]));
        let data = configmap_data_size(&cm);
        Ok(if data <= CONFIGMAP_BUDGET_BYTES {
            Ok(cm)
        } else {
            Err(data)
        })
    };
    let too_large = |detail: String| {
        ManifestError::ContextTooLarge(format!(
            "the build context of {} is {} packed; {detail}; shrink it with a .dockerignore or choose another context mode",
            spec.context_dir.display(),
            human(size),
        ))
    };
    let configmap_limit = |data: usize| {
        format!(
            "as a ConfigMap it holds {} ({data} bytes of data), over the API server's limit of {} ({CONFIGMAP_BUDGET_BYTES} bytes)",
            human(data as u64),
            human(CONFIGMAP_BUDGET_BYTES as u64)
        )
    };
    let pvc_limit = || {
        format!(
            "context_mode pvc holds at most {} ({} bytes, the PVC size)",
            human(config.pvc.size_bytes),
            config.pvc.size_bytes
        )
    };
    let stdin_limit = || {
        format!(
            "context_mode stdin sends at most {} ({} bytes, stdin_max_bytes)",
            human(config.stdin_max_bytes),
            config.stdin_max_bytes
        )
    };
    let large = |mode: LargeContextMode| -> Result<ContextObjects, ManifestError> {
        match mode {
            LargeContextMode::Pvc if size <= config.pvc.size_bytes => {
                pvc_objects(config, ns, sha256, spec.timeout)
            }
            LargeContextMode::Pvc => Err(too_large(pvc_limit())),
            LargeContextMode::Stdin if size <= config.stdin_max_bytes => Ok(ContextObjects::Stdin),
            LargeContextMode::Stdin => Err(too_large(stdin_limit())),
        }
    };
    match config.context_mode {
        ContextMode::ConfigMap => match configmap()? {
            Ok(cm) => Ok(ContextObjects::ConfigMap(Box::new(cm))),
            Err(data) => Err(too_large(format!(
                "context_mode configmap: {}",
                configmap_limit(data)
            ))),
        },
        ContextMode::Pvc => large(LargeContextMode::Pvc),
        ContextMode::Stdin => large(LargeContextMode::Stdin),
        ContextMode::Auto => {
            let data = match configmap()? {
                Ok(cm) => return Ok(ContextObjects::ConfigMap(Box::new(cm))),
                Err(data) => data,
            };
            large(config.large_context).map_err(|_| {
                let fallback = match config.large_context {
                    LargeContextMode::Pvc => pvc_limit(),
                    LargeContextMode::Stdin => stdin_limit(),
                };
                too_large(format!(
                    "context_mode auto: {}, and {fallback}",
                    configmap_limit(data)
                ))
            })
        }
    }
}

fn pvc_objects(
    config: &KanikoConfig,
    ns: &str,
    sha256: &str,
    timeout: Duration,
) -> Result<ContextObjects, ManifestError> {
    let dir = config.template_dir.as_deref();
    let storage = quantity_of_bytes(config.pvc.size_bytes);
    let mut pvc: PersistentVolumeClaim = Template::ContextPvc.render(
        dir,
        "PersistentVolumeClaim",
        &[
            ("namespace", ns),
            ("context_sha256", sha256),
            ("access_mode", &config.pvc.access_mode),
            ("storage", &storage),
        ],
    )?;
    place(&mut pvc.metadata, ns);
    if let Some(class) = &config.pvc.storage_class {
        pvc.spec
            .get_or_insert_with(Default::default)
            .storage_class_name = Some(class.clone());
    }
    let mut loader: Pod = Template::ContextLoader.render(
        dir,
        "Pod",
        &[
            ("namespace", ns),
            ("context_sha256", sha256),
            ("loader_image", &config.pvc.loader_image),
        ],
    )?;
    place(&mut loader.metadata, ns);
    let pod_spec = loader.spec.get_or_insert_with(Default::default);
    harden(pod_spec);
    // A loader left behind by a crashed runner waits on its stdin forever; the kubelet
    // ends it once the build's timeout has passed (the namespace goes with the reaper).
    pod_spec.active_deadline_seconds = Some(timeout.as_secs().clamp(1, i64::MAX as u64) as i64);
    let spec = pod_spec;
    // The runner writes the tarball over attach, once.
    for container in &mut spec.containers {
        container.stdin = Some(true);
        container.stdin_once = Some(true);
        container.tty = Some(false);
        let env = container.env.get_or_insert_with(Vec::new);
        env.retain(|e| e.name != "CONTEXT_SHA256");
        env.push(EnvVar {
            name: "CONTEXT_SHA256".to_string(),
            value: Some(sha256.to_string()),
            ..Default::default()
        });
    }
    Ok(ContextObjects::Pvc {
        pvc: Box::new(pvc),
        loader: Box::new(loader),
    })
}

/// Puts an object into namespace `ns` and marks it as the runner's.
pub(super) fn place(meta: &mut ObjectMeta, ns: &str) {
    meta.namespace = Some(ns.to_string());
    set_labels(meta, &[MANAGED_BY]);
}

pub(super) fn set_labels(meta: &mut ObjectMeta, labels: &[(&str, &str)]) {
    let map = meta.labels.get_or_insert_with(BTreeMap::new);
    for (key, value) in labels {
        map.insert(key.to_string(), value.to_string());
    }
}

/// What every build pod gets whatever its template says: no retries in place, no API token.
pub(super) fn harden(pod: &mut PodSpec) {
    pod.restart_policy = Some("Never".to_string());
    pod.automount_service_account_token = Some(false);
}

pub(super) fn quantities(map: &BTreeMap<String, String>) -> Option<BTreeMap<String, Quantity>> {
    (!map.is_empty()).then(|| {
        map.iter()
            .map(|(k, v)| (k.clone(), Quantity(v.clone())))
            .collect()
    })
}

/// A byte count as a quantity, in the largest binary unit that divides it.
fn quantity_of_bytes(bytes: u64) -> String {
    for (unit, shift) in [("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)] {
        if bytes != 0 && bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// `1.5 MiB`-style sizes for messages.
fn human(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    for unit in ["KiB", "MiB", "GiB"] {
        if value < 1024.0 {
            return format!("{value:.1} {unit}");
        }
        value /= 1024.0;
    }
    format!("{value:.1} TiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_quantities() {
        assert_eq!(quantity_of_bytes(1 << 30), "1Gi");
        assert_eq!(quantity_of_bytes(3 << 20), "3Mi");
        assert_eq!(quantity_of_bytes(1000), "1000");
        assert_eq!(human(900 << 10), "900.0 KiB");
        assert_eq!(human(2 << 20), "2.0 MiB");
        assert_eq!(human(12), "12 B");
    }
}
