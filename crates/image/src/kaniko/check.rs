//! `hybrid-runner check`, the built-in "test-hybrid-builds": is everything a Kaniko build
//! needs in place? The cluster answers, the runner may do every API call a build makes
//! (SelfSubjectAccessReview; with the context modes configured, also the PVC, the loader
//! pod and `pods/attach`), a namespace and a ConfigMap make the round trip, a pod starts in
//! that namespace and answers one exec round trip, the registry answers on `/v2/` from this
//! host and from inside the pod, and an executor image is configured.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::ByteString;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

use super::builder::KanikoBuilder;
use super::permissions::needed_permissions;
use hr_cluster::MANAGED_BY;
use hr_cluster::names::{label_value, namespace_name};
use hr_cluster::namespaces::{EXPIRES_AT_ANNOTATION, RUNNER_ID_LABEL, delete_namespace};
use hr_cluster::permissions::{DEPLOY_PERMISSIONS, Permission, with_job_pods};
use hr_cluster::time::rfc3339;
use hr_cluster::{describe, retry};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Ok,
    Fail,
    /// Not run (a check it depends on failed, or nothing to check).
    Skip,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Fail => "fail",
            CheckStatus::Skip => "skip",
        }
    }
}

/// One line of `hybrid-runner check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub status: CheckStatus,
    /// What was found (for `ok`) or why it failed, with the remedy.
    pub detail: String,
}

/// What to check beyond the cluster.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// The registry host (`host[:port]`) to probe, if any.
    pub registry: Option<String>,
    /// Probe it over plain HTTP.
    pub insecure_registry: bool,
    /// Also what the job pods of `kubernetes` labels need (`pods/exec`, creating pods).
    pub job_pods: bool,
    /// Starts a pod in the check's namespace, execs into it and probes the registry from
    /// there (the engine's job pods: `hr_engine::pod::CheckPod`); `None` skips that.
    pub pod_probe: Option<std::sync::Arc<dyn PodProbe>>,
    /// Namespaces the runner deploys to (`check --deploy-namespaces`): each is asked for
    /// [`DEPLOY_PERMISSIONS`], which the Roles of `generate-manifests --deploy-namespaces`
    /// grant.
    pub deploy_namespaces: Vec<String>,
}

/// What [`PodProbe::probe`] found: each part `Ok(what was seen)` or `Err(why it failed)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProbeReport {
    /// The pod started and one exec round trip carried a nonce there and back.
    pub round_trip: Result<String, String>,
    /// `GET <registry>/v2/` from inside the pod; `None` when it was not tried (no
    /// registry, or the round trip failed).
    pub registry: Option<Result<String, String>>,
}

/// The pod part of `check`, run in the check's throwaway namespace (which exists while it
/// runs and is deleted afterwards).
pub trait PodProbe: std::fmt::Debug + Send + Sync {
    /// Starts a pod in `namespace`, does one exec round trip into it and, when
    /// `registry_url` is given (`http(s)://host/v2/`), fetches it from the pod (200 or 401
    /// means a registry answers); deletes the pod.
    fn probe<'a>(
        &'a self,
        client: &'a kube::Client,
        namespace: &'a str,
        registry_url: Option<&'a str>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = PodProbeReport> + Send + 'a>>;
}

/// The name of the pod round trip check.
pub const POD_ROUND_TRIP: &str = "pod round trip";

/// Runs every check, in order; checks that need the cluster are skipped when it does not
/// answer.
pub async fn run_checks(builder: &KanikoBuilder, options: &CheckOptions) -> Vec<Check> {
    let mut checks = Vec::new();
    let reachable = match builder.server_version().await {
        Ok(version) => {
            checks.push(ok(
                "cluster reachable",
                format!("{version} at {}", builder.cluster_url()),
            ));
            true
        }
        Err(e) => {
            checks.push(fail("cluster reachable", e.to_string()));
            false
        }
    };
    let mut needed = needed_permissions(&builder.config);
    if options.job_pods {
        needed = with_job_pods(needed);
    }
    for permission in needed {
        let Permission {
            group,
            resource,
            subresource: sub,
            verbs,
        } = permission;
        let name = format!("permission {}: {}", permission.path(), verbs.join(", "));
        if !reachable {
            checks.push(skip(&name, "the cluster is unreachable"));
            continue;
        }
        checks.push(
            match denied_verbs(builder, None, group, resource, sub, verbs).await {
                Ok(denied) if denied.is_empty() => ok(&name, "allowed".to_string()),
                Ok(denied) => fail(
                    &name,
                    format!(
                        "denied: {}; grant them in the runner's ClusterRole (`hybrid-runner generate-manifests` renders one with every permission a build needs)",
                        denied.join("; ")
                    ),
                ),
                Err(e) => fail(&name, e),
            },
        );
    }
    checks.extend(deploy_permission_checks(builder, options, reachable).await);
    let url = registry_url(options);
    let from_pod_name = match &url {
        Some(url) => format!("registry reachable from a pod ({url})"),
        None => "registry reachable from a pod".to_string(),
    };
    let from_pod = if reachable {
        // Only jobs on `kubernetes` labels exec into pods: without --job-pods a runner that
        // may not (a Kaniko-only ClusterRole) skips the pod checks instead of failing them.
        let pod_skip = if options.job_pods {
            None
        } else {
            match denied_verbs(builder, None, "", "pods", "exec", &["create"]).await {
                Ok(denied) if denied.is_empty() => None,
                _ => Some(
                    "the runner may not exec into pods (pods/exec), which only jobs on `kubernetes` labels need; pass --job-pods to require it"
                        .to_string(),
                ),
            }
        };
        let (round_trips, from_pod) = round_trips(builder, options, url.as_deref(), pod_skip).await;
        checks.extend(round_trips);
        from_pod
    } else {
        for name in [
            "namespace round trip",
            "configmap round trip",
            POD_ROUND_TRIP,
        ] {
            checks.push(skip(name, "the cluster is unreachable"));
        }
        Err("the cluster is unreachable".to_string())
    };
    checks.push(registry_check(options).await);
    checks.push(match (&url, from_pod) {
        (None, _) => skip(&from_pod_name, NO_REGISTRY),
        (Some(_), Ok(Ok(detail))) => ok(&from_pod_name, detail),
        (Some(_), Ok(Err(reason))) => fail(&from_pod_name, reason),
        (Some(_), Err(why)) => skip(&from_pod_name, &why),
    });
    checks.push(executor_check(&builder.config.executor_image));
    checks
}

const NO_REGISTRY: &str = "no registry given; pass --image NAME or --registry HOST";

/// `http(s)://HOST/v2/` of the registry to probe, if one was given.
fn registry_url(options: &CheckOptions) -> Option<String> {
    let host = options.registry.as_deref()?;
    let host = if host == "docker.io" {
        "registry-1.docker.io"
    } else {
        host
    };
    let scheme = if options.insecure_registry {
        "http"
    } else {
        "https"
    };
    Some(format!("{scheme}://{host}/v2/"))
}

/// [`DEPLOY_PERMISSIONS`] in each of `options.deploy_namespaces`.
async fn deploy_permission_checks(
    builder: &KanikoBuilder,
    options: &CheckOptions,
    reachable: bool,
) -> Vec<Check> {
    let mut checks = Vec::new();
    for ns in &options.deploy_namespaces {
        for permission in DEPLOY_PERMISSIONS {
            let name = format!(
                "permission {} in {ns}: {}",
                permission.path(),
                permission.verbs.join(", ")
            );
            if !reachable {
                checks.push(skip(&name, "the cluster is unreachable"));
                continue;
            }
            let Permission {
                group,
                resource,
                subresource,
                verbs,
            } = permission;
            checks.push(
                match denied_verbs(builder, Some(ns), group, resource, subresource, verbs).await {
                    Ok(denied) if denied.is_empty() => ok(&name, "allowed".to_string()),
                    Ok(denied) => fail(
                        &name,
                        format!(
                            "denied: {}; grant them in {ns} with the Role of `hybrid-runner generate-manifests --deploy-namespaces {ns}`",
                            denied.join("; ")
                        ),
                    ),
                    Err(e) => fail(&name, e),
                },
            );
        }
    }
    checks
}

/// The verbs of `verbs` the runner may not use on the resource (in `namespace`, else in
/// every namespace), each with the reason.
async fn denied_verbs(
    builder: &KanikoBuilder,
    namespace: Option<&str>,
    group: &str,
    resource: &str,
    sub: &str,
    verbs: &[&str],
) -> Result<Vec<String>, String> {
    let api: Api<SelfSubjectAccessReview> = Api::all(builder.client.clone());
    let mut denied = Vec::new();
    for verb in verbs {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(group.to_string()),
                    resource: Some(resource.to_string()),
                    subresource: (!sub.is_empty()).then(|| sub.to_string()),
                    verb: Some(verb.to_string()),
                    namespace: namespace.map(str::to_string),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let post = PostParams::default();
        let answer = retry(|| api.create(&post, &review))
            .await
            .map_err(|e| format!("cannot ask the API server: {}", describe(&e)))?;
        let status = answer.status.unwrap_or_default();
        if !status.allowed {
            let reason = status.reason.unwrap_or_default();
            denied.push(if reason.is_empty() {
                verb.to_string()
            } else {
                format!("{verb} ({reason})")
            });
        }
    }
    Ok(denied)
}

/// What the registry probe from a pod found: `Ok(the probe's result)`, or `Err(why it was
/// not run)`.
type FromPod = Result<Result<String, String>, String>;

/// Creates a namespace like a build's, a ConfigMap with binary data in it, reads the
/// ConfigMap back, starts a pod there (the pod probe: an exec round trip and the registry
/// from inside the pod), and deletes them all. Returns the checks and the registry probe's
/// outcome (its check goes after the one from this host).
async fn round_trips(
    builder: &KanikoBuilder,
    options: &CheckOptions,
    registry_url: Option<&str>,
    pod_skip: Option<String>,
) -> (Vec<Check>, FromPod) {
    let config = &builder.config;
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = namespace_name(
        &config.namespace_prefix,
        &config.runner_id,
        "check",
        &stamp.to_string(),
    );
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
                (RUNNER_ID_LABEL.to_string(), label_value(&config.runner_id)),
            ])),
            annotations: Some(BTreeMap::from([(
                EXPIRES_AT_ANNOTATION.to_string(),
                // Reaped soon if the deletion below is lost.
                rfc3339(SystemTime::now() + Duration::from_secs(600)),
            )])),
            ..Default::default()
        },
        ..Default::default()
    };
    let namespaces: Api<Namespace> = Api::all(builder.client.clone());
    let started = Instant::now();
    let post = PostParams::default();
    if let Err(e) = retry(|| namespaces.create(&post, &namespace)).await {
        return (
            vec![
                fail(
                    "namespace round trip",
                    format!(
                        "cannot create namespace {name}: {}; the runner needs to create namespaces",
                        describe(&e)
                    ),
                ),
                skip("configmap round trip", "no namespace to create it in"),
                skip(POD_ROUND_TRIP, "no namespace to create it in"),
            ],
            Err("no namespace to start a pod in".to_string()),
        );
    }
    let configmap = configmap_round_trip(builder, &name).await;
    let (pod, from_pod) = match (&options.pod_probe, pod_skip) {
        (_, Some(why)) => (skip(POD_ROUND_TRIP, &why), Err(why)),
        (Some(probe), None) => {
            let report = probe.probe(&builder.client, &name, registry_url).await;
            let from_pod = match (&report.round_trip, report.registry) {
                (_, Some(result)) => Ok(result),
                (Err(_), None) => Err("the pod round trip failed".to_string()),
                (Ok(_), None) => Err(NO_REGISTRY.to_string()),
            };
            let pod = match report.round_trip {
                Ok(detail) => ok(POD_ROUND_TRIP, detail),
                Err(reason) => fail(POD_ROUND_TRIP, reason),
            };
            (pod, from_pod)
        }
        (None, None) => {
            let why = "no pod probe in this build of the check";
            (skip(POD_ROUND_TRIP, why), Err(why.to_string()))
        }
    };
    let namespace = match delete_namespace(&builder.client, &name).await {
        Ok(_) => ok(
            "namespace round trip",
            format!(
                "created and deleted {name} in {} ms",
                started.elapsed().as_millis()
            ),
        ),
        Err(e) => fail("namespace round trip", e.to_string()),
    };
    (vec![namespace, configmap, pod], from_pod)
}

async fn configmap_round_trip(builder: &KanikoBuilder, ns: &str) -> Check {
    const NAME: &str = "configmap round trip";
    let data: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(31) % 251) as u8)
        .collect();
    let configmap = ConfigMap {
        metadata: ObjectMeta {
            name: Some("hybrid-runner-check".to_string()),
            ..Default::default()
        },
        binary_data: Some(BTreeMap::from([(
            "probe.bin".to_string(),
            ByteString(data.clone()),
        )])),
        ..Default::default()
    };
    let api: Api<ConfigMap> = Api::namespaced(builder.client.clone(), ns);
    let started = Instant::now();
    let post = PostParams::default();
    if let Err(e) = retry(|| api.create(&post, &configmap)).await {
        return fail(NAME, format!("cannot create a ConfigMap: {}", describe(&e)));
    }
    let read = match retry(|| api.get("hybrid-runner-check")).await {
        Ok(cm) => cm,
        Err(e) => {
            return fail(
                NAME,
                format!("cannot read the ConfigMap back: {}", describe(&e)),
            );
        }
    };
    let same = read
        .binary_data
        .as_ref()
        .and_then(|d| d.get("probe.bin"))
        .is_some_and(|b| b.0 == data);
    if !same {
        return fail(
            NAME,
            "the ConfigMap came back with different binaryData".to_string(),
        );
    }
    let delete = kube::api::DeleteParams::default();
    if let Err(e) = retry(|| api.delete("hybrid-runner-check", &delete)).await {
        return fail(
            NAME,
            format!("cannot delete the ConfigMap: {}", describe(&e)),
        );
    }
    ok(
        NAME,
        format!(
            "64 KiB of binaryData written, read back and deleted in {} ms",
            started.elapsed().as_millis()
        ),
    )
}

/// `GET /v2/` on the registry: 200 or 401 both mean a registry answers.
async fn registry_check(options: &CheckOptions) -> Check {
    let Some(url) = registry_url(options) else {
        return skip("registry reachable", NO_REGISTRY);
    };
    let name = format!("registry reachable ({url})");
    hr_cluster::install_crypto_provider();
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => return fail(&name, format!("cannot create an HTTP client: {e}")),
    };
    match client.get(&url).send().await {
        Ok(resp) if matches!(resp.status().as_u16(), 200 | 401) => {
            ok(&name, format!("HTTP {}", resp.status().as_u16()))
        }
        Ok(resp) => fail(
            &name,
            format!(
                "HTTP {}; that is not a registry's /v2/ answer (expected 200 or 401)",
                resp.status().as_u16()
            ),
        ),
        Err(e) => {
            let hint = if options.insecure_registry {
                ""
            } else {
                "; for a plain-HTTP registry pass --insecure-registry"
            };
            fail(&name, format!("{}{hint}", error_chain(&e)))
        }
    }
}

fn executor_check(image: &str) -> Check {
    const NAME: &str = "executor image configured";
    if image.trim().is_empty() || image.contains(char::is_whitespace) {
        return fail(
            NAME,
            format!("{image:?} is not an image reference; set executor_image"),
        );
    }
    let pinned = if image.contains("@sha256:") {
        "pinned by digest"
    } else {
        "not pinned by digest; add @sha256:... for reproducible pulls"
    };
    ok(NAME, format!("{image} ({pinned})"))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

fn ok(name: &str, detail: String) -> Check {
    Check {
        name: name.to_string(),
        status: CheckStatus::Ok,
        detail,
    }
}

fn fail(name: &str, detail: String) -> Check {
    Check {
        name: name.to_string(),
        status: CheckStatus::Fail,
        detail,
    }
}

fn skip(name: &str, detail: &str) -> Check {
    Check {
        name: name.to_string(),
        status: CheckStatus::Skip,
        detail: detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executor_image_check() {
        assert_eq!(executor_check("").status, CheckStatus::Fail);
        assert_eq!(executor_check("a b").status, CheckStatus::Fail);
        let c = executor_check("ghcr.io/osscontainertools/kaniko:v1.28.3");
        assert_eq!(c.status, CheckStatus::Ok);
        assert!(c.detail.contains("not pinned"), "{}", c.detail);
        let c = executor_check(&format!("k@sha256:{}", "a".repeat(64)));
        assert!(c.detail.contains("(pinned by digest)"), "{}", c.detail);
    }
}
