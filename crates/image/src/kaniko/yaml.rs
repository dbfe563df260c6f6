//! The manifests of a build as multi-document YAML, in creation order, exactly as the
//! objects would be sent.

use serde::Serialize;

use super::{BuildManifests, ContextObjects, ManifestError};

/// Every object of `m` as one YAML document each, `---`-separated, in creation order:
/// Namespace, LimitRange, ResourceQuota, Secret, ConfigMap or PVC and loader Pod, Jobs.
pub fn to_yaml_documents(m: &BuildManifests) -> Result<String, ManifestError> {
    let mut docs: Vec<String> = Vec::new();
    docs.push(document(
        "Namespace",
        &m.namespace.metadata.name,
        &m.namespace,
    )?);
    if let Some(lr) = &m.limit_range {
        docs.push(document("LimitRange", &lr.metadata.name, lr)?);
    }
    if let Some(q) = &m.quota {
        docs.push(document("ResourceQuota", &q.metadata.name, q)?);
    }
    if let Some(s) = &m.registry_secret {
        docs.push(document("Secret", &s.metadata.name, s)?);
    }
    match &m.context {
        ContextObjects::ConfigMap(cm) => docs.push(document("ConfigMap", &cm.metadata.name, cm)?),
        ContextObjects::Pvc { pvc, loader } => {
            docs.push(document("PersistentVolumeClaim", &pvc.metadata.name, pvc)?);
            docs.push(document("Pod", &loader.metadata.name, loader)?);
        }
        ContextObjects::Stdin => {}
    }
    for (_, job) in &m.jobs {
        docs.push(document("Job", &job.metadata.name, job)?);
    }
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&doc);
        if !doc.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

fn document<T: Serialize>(
    kind: &'static str,
    name: &Option<String>,
    value: &T,
) -> Result<String, ManifestError> {
    // Plain or quoted scalars only: no folded blocks, so long arguments and base64 data
    // read back exactly as written.
    let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
    serde_saphyr::to_string_with_options(value, options).map_err(|e| ManifestError::Serialize {
        kind,
        name: name.clone().unwrap_or_default(),
        format: "YAML",
        message: e.to_string(),
    })
}
