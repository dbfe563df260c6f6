//! Which image goes to which workload: the services of the services file, each with its
//! `deploy:` workloads (default: a Deployment named like the service, in its namespace),
//! and the tag of the variant being deployed (`k8s-<sha>` or `docker-<sha>`, or `--tag`).

use std::path::Path;

use actions::image_build::{TagTemplates, Variant, dual_tags};

use crate::cli::UsageError;
use crate::cli::build::services::{
    ServiceEntry, has_k8s_dockerfile, service_context, service_image,
};
use hr_rollout::{Target, WorkloadKind, WorkloadRef};

/// What every service of one deploy shares.
#[derive(Debug, Clone)]
pub struct TagChoice {
    /// `--variant`; `None`: k8s, or docker for a service without a k8s Dockerfile.
    pub variant: Option<Variant>,
    /// `--tag T`: `T` for docker, `k8s-T` for k8s; else the commit's `<variant>-<sha>`.
    pub tag: Option<String>,
    /// `--sha`, else `GITHUB_SHA`; `None`: each service context's git HEAD.
    pub sha: Option<String>,
    pub short_sha: Option<usize>,
}

/// One service's targets.
#[derive(Debug, Clone)]
pub struct ServiceTargets {
    pub service: String,
    /// A note for the log when the variant fell back to docker.
    pub note: Option<String>,
    pub targets: Vec<Target>,
}

/// The image reference a service deploys.
pub fn service_tag(
    image: &str,
    variant: Variant,
    choice: &TagChoice,
    sha: &str,
) -> Result<String, UsageError> {
    if let Some(tag) = &choice.tag {
        let tag = match variant {
            Variant::Docker => tag.clone(),
            Variant::K8s => format!("k8s-{tag}"),
        };
        return Ok(format!("{image}:{tag}"));
    }
    let templates = TagTemplates {
        docker: vec!["docker-{sha}".to_string()],
        k8s: vec!["k8s-{sha}".to_string()],
        sha_length: choice.short_sha,
    };
    dual_tags(image, sha, variant, &templates)
        .into_iter()
        .next()
        .ok_or_else(|| UsageError(format!("no tag for {image}")))
}

/// The targets of one service; `default_namespace` is the kube context's namespace.
pub fn service_targets(
    base: &Path,
    entry: &ServiceEntry,
    registry: Option<&str>,
    choice: &TagChoice,
    default_namespace: &str,
) -> Result<ServiceTargets, UsageError> {
    let service = &entry.name;
    let image = service_image(entry, registry)?;
    let k8s = has_k8s_dockerfile(base, entry);
    let (variant, note) = match choice.variant {
        Some(variant) => (variant, None),
        None if k8s => (Variant::K8s, None),
        None => (
            Variant::Docker,
            Some(format!(
                "{service}: no {}.k8s in its context, so it has no k8s image; deploying the docker variant",
                entry.dockerfile.as_deref().unwrap_or("Dockerfile")
            )),
        ),
    };
    let sha = match (&choice.tag, &choice.sha) {
        (Some(_), _) => String::new(),
        (None, Some(sha)) => sha.clone(),
        (None, None) => crate::cli::render::head_sha(&service_context(base, entry))
            .map_err(|e| UsageError(format!("service `{service}`: {e}")))?,
    };
    let tagged = service_tag(&image, variant, choice, &sha)?;
    Ok(ServiceTargets {
        service: service.clone(),
        note,
        targets: entry_targets(entry, &tagged, default_namespace)?,
    })
}

/// The targets of `entry`'s `deploy:` list (or its default Deployment), each to be set to
/// `image`.
pub fn entry_targets(
    entry: &ServiceEntry,
    image: &str,
    default_namespace: &str,
) -> Result<Vec<Target>, UsageError> {
    let service = &entry.name;
    let producer = format!("built by service {service} (hybrid-runner build --only {service})");
    let namespace = entry
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| default_namespace.to_string());
    let defaults = [crate::cli::build::services::DeployEntry {
        kind: None,
        name: None,
        namespace: None,
        container: None,
    }];
    let entries = match &entry.deploy {
        Some(list) if list.is_empty() => {
            return Err(UsageError(format!(
                "service `{service}`: `deploy: []` names no workload; leave it out for the default Deployment `{service}`"
            )));
        }
        Some(list) => list.as_slice(),
        None => &defaults[..],
    };
    let mut targets = Vec::new();
    for workload in entries {
        let kind = match workload.kind.as_deref() {
            None => WorkloadKind::Deployment,
            Some(text) => WorkloadKind::parse(text).ok_or_else(|| {
                UsageError(format!(
                    "service `{service}`: deploy kind `{text}` is not Deployment, StatefulSet or DaemonSet"
                ))
            })?,
        };
        targets.push(Target {
            workload: WorkloadRef {
                kind,
                namespace: workload
                    .namespace
                    .clone()
                    .unwrap_or_else(|| namespace.clone()),
                name: workload.name.clone().unwrap_or_else(|| service.clone()),
                container: workload.container.clone(),
            },
            image: image.to_string(),
            producer: producer.clone(),
        });
    }
    Ok(targets)
}

/// Refuses two services (or two entries) that set an image on the same container.
pub fn check_distinct(services: &[ServiceTargets]) -> Result<(), UsageError> {
    let mut seen: Vec<(&WorkloadRef, &str)> = Vec::new();
    for s in services {
        for t in &s.targets {
            if let Some((_, other)) = seen.iter().find(|(w, _)| {
                w.kind == t.workload.kind
                    && w.namespace == t.workload.namespace
                    && w.name == t.workload.name
                    && w.container == t.workload.container
            }) {
                return Err(UsageError(format!(
                    "{} is deployed by both `{other}` and `{}`; give each its own workload or container",
                    t.workload, s.service
                )));
            }
            seen.push((&t.workload, &s.service));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice() -> TagChoice {
        TagChoice {
            variant: None,
            tag: None,
            sha: Some("0123456789abcdef".into()),
            short_sha: Some(7),
        }
    }

    fn entry(text: &str) -> ServiceEntry {
        serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn tags_follow_the_build_of_the_variant() {
        let c = choice();
        assert_eq!(
            service_tag("reg/api", Variant::K8s, &c, "0123456789").unwrap(),
            "reg/api:k8s-0123456"
        );
        assert_eq!(
            service_tag("reg/api", Variant::Docker, &c, "0123456789").unwrap(),
            "reg/api:docker-0123456"
        );
        let tagged = TagChoice {
            tag: Some("v1".into()),
            ..c
        };
        assert_eq!(
            service_tag("reg/api", Variant::K8s, &tagged, "").unwrap(),
            "reg/api:k8s-v1"
        );
        assert_eq!(
            service_tag("reg/api", Variant::Docker, &tagged, "").unwrap(),
            "reg/api:v1"
        );
    }

    #[test]
    fn services_default_to_a_deployment_named_like_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let plain = entry("name: api\nnamespace: shop\n");
        let targets =
            service_targets(dir.path(), &plain, Some("reg:5000"), &choice(), "default").unwrap();
        assert!(targets.note.is_some());
        assert_eq!(targets.targets[0].image, "reg:5000/shop/api:docker-0123456");
        assert_eq!(
            targets.targets[0].workload.to_string(),
            "Deployment shop/api"
        );
        std::fs::write(dir.path().join("Dockerfile.k8s"), "FROM scratch\n").unwrap();
        let listed = entry(
            "name: db\nimage: reg/db\ndeploy:\n  - kind: StatefulSet\n    container: main\n  - {kind: ds, name: agent, namespace: infra}\n",
        );
        let targets = service_targets(dir.path(), &listed, None, &choice(), "ctx").unwrap();
        assert!(targets.note.is_none());
        let names: Vec<String> = targets
            .targets
            .iter()
            .map(|t| t.workload.to_string())
            .collect();
        assert_eq!(names, ["StatefulSet ctx/db", "DaemonSet infra/agent"]);
        assert_eq!(
            targets.targets[0].workload.container.as_deref(),
            Some("main")
        );
        assert_eq!(targets.targets[1].image, "reg/db:k8s-0123456");
        let bad = entry("name: x\nimage: r/x\ndeploy:\n  - kind: Job\n");
        let error = service_targets(dir.path(), &bad, None, &choice(), "d").unwrap_err();
        assert!(
            error.0.contains("not Deployment, StatefulSet or DaemonSet"),
            "{error}"
        );
        let twice = service_targets(dir.path(), &plain, Some("reg"), &choice(), "d").unwrap();
        let error = check_distinct(&[twice.clone(), twice]).unwrap_err();
        assert!(error.0.contains("deployed by both"), "{error}");
    }
}
