//! What the workload tests share: a fake with short back-offs, a real registry with the
//! test images (present, a second version, one labelled to crash, one absent), workload
//! manifests, polling waits, kubectl's reading of a Deployment's rollout, and a JSON patch
//! sent through kube-rs's client.

use harness::fake_kube::CRASH_LABEL;
use harness::images::busybox;
use k8s_openapi::api::apps::v1::Deployment;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::helpers::*;

/// The log an image labelled with `CRASH_LABEL` writes before it exits 1.
pub(super) const CRASH_LOG: &str =
    "starting app 1.0\nloading /etc/app.conf\nfatal: open /etc/app.conf: no such file or directory";

/// The images of the workload tests, as references on the test's registry.
pub(super) struct Images {
    pub app: String,
    /// `app:2`: another config (another `Cmd`), so another digest.
    pub app2: String,
    pub crash: String,
    /// A repository the registry does not have.
    pub missing: String,
    /// The digest of `app:1`.
    pub digest: String,
}

/// A registry with the test images; `None` (after a notice) when the registry or the
/// image tools are missing outside CI.
pub(super) async fn registry_images() -> Option<(Registry, Images)> {
    tokio::task::spawn_blocking(|| {
        let registry = Registry::start()?;
        let base = busybox()?;
        let app = base.push(&registry, "app", "1");
        let app2 = base
            .with_cmd(&["sh", "-c", "echo v2; sleep 3600"])
            .push(&registry, "app", "2");
        let crash = base
            .with_label(CRASH_LABEL, CRASH_LOG)
            .push(&registry, "crash", "1");
        let digest = registry.digest("app", "1")?;
        let missing = format!("{}/missing:1", registry.host);
        Some((
            registry,
            Images {
                app,
                app2,
                crash,
                missing,
                digest,
            },
        ))
    })
    .await
    .unwrap()
}

/// A fake whose crash-loop and image-pull back-offs start at 1 s.
pub(super) fn workload_fake() -> FakeKube {
    FakeKube::start(FakeKubeOptions {
        crash_loop_back_off: Duration::from_secs(1),
        image_pull_back_off: Duration::from_secs(1),
        ..FakeKubeOptions::default()
    })
}

/// A pod template for `app=<name>` with one container `app` (a port and an env var, to
/// see strategic merge patches keep them).
pub(super) fn template(name: &str, image: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": image,
            "ports": [{"containerPort": 8080}], "env": [{"name": "MODE", "value": "prod"}]}]}
    })
}

/// A Deployment of one replica with `progressDeadlineSeconds: deadline`.
pub(super) fn deployment(name: &str, image: &str, deadline: i64) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "annotations": {"team": "platform"}},
        "spec": {"selector": {"matchLabels": {"app": name}}, "progressDeadlineSeconds": deadline,
            "template": template(name, image)}
    }))
    .unwrap()
}

/// Polls the object every 50 ms until `ok`, failing after `limit` with its last state.
pub(super) async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    limit: Duration,
    ok: impl Fn(&K) -> bool,
) -> K
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let o = api.get(name).await.unwrap();
        if ok(&o) {
            return o;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never reached the expected state: {}",
            serde_json::to_string_pretty(&o).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the pods `selector` selects until `ok` holds for them.
pub(super) async fn wait_pods(
    client: &kube::Client,
    ns: &str,
    selector: &str,
    limit: Duration,
    ok: impl Fn(&[Pod]) -> bool,
) -> Vec<Pod> {
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let list = pods
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap()
            .items;
        if ok(&list) {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pods of {selector} never reached the expected state: {}",
            serde_json::to_string_pretty(
                &list
                    .iter()
                    .map(|p| (&p.metadata.name, &p.status))
                    .collect::<Vec<_>>()
            )
            .unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(super) fn json_of<T: Serialize>(o: &T) -> Value {
    serde_json::to_value(o).unwrap()
}

/// The status of container `app` of a pod, as JSON.
pub(super) fn app_status(p: &Pod) -> Value {
    json_of(&p.status)["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "app")
        .cloned()
        .unwrap_or(Value::Null)
}

pub(super) fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A condition of the Deployment as (status, reason, message).
pub(super) fn deployment_condition(d: &Deployment, kind: &str) -> Option<(String, String, String)> {
    json_of(&d.status)["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .map(|c| {
            let text = |f: &str| c[f].as_str().unwrap_or_default().to_string();
            (text("status"), text("reason"), text("message"))
        })
}

/// kubectl's `DeploymentStatusViewer.Status` (pkg/polymorphichelpers/rollout_status.go):
/// its message and whether the rollout is done; `Err` past the progress deadline.
pub(super) fn kubectl_rollout_status(d: &Deployment) -> Result<(String, bool), String> {
    let name = d.metadata.name.clone().unwrap_or_default();
    let status = d.status.clone().unwrap_or_default();
    if d.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return Ok((
            "Waiting for deployment spec update to be observed...".into(),
            false,
        ));
    }
    if deployment_condition(d, "Progressing").is_some_and(|c| c.1 == "ProgressDeadlineExceeded") {
        return Err(format!(
            "deployment \"{name}\" exceeded its progress deadline"
        ));
    }
    let (updated, replicas, available) = (
        status.updated_replicas.unwrap_or(0),
        status.replicas.unwrap_or(0),
        status.available_replicas.unwrap_or(0),
    );
    let wanted = json_of(&d.spec)["replicas"].as_i64().unwrap_or(1) as i32;
    if updated < wanted {
        return Ok((
            format!(
                "Waiting for deployment \"{name}\" rollout to finish: {updated} out of {wanted} new replicas have been updated..."
            ),
            false,
        ));
    }
    if replicas > updated {
        return Ok((
            format!(
                "Waiting for deployment \"{name}\" rollout to finish: {} old replicas are pending termination...",
                replicas - updated
            ),
            false,
        ));
    }
    if available < updated {
        return Ok((
            format!(
                "Waiting for deployment \"{name}\" rollout to finish: {available} of {updated} updated replicas are available..."
            ),
            false,
        ));
    }
    Ok((
        format!("deployment \"{name}\" successfully rolled out"),
        true,
    ))
}

pub(super) fn rolled_out(d: &Deployment) -> bool {
    kubectl_rollout_status(d).is_ok_and(|(_, done)| done)
}

/// Sends `ops` as an `application/json-patch+json` PATCH of `name` through kube-rs's
/// client (the request `Api::patch` builds, with kube's own JSON patch type).
pub(super) async fn json_patch<K>(
    client: &kube::Client,
    ns: &str,
    name: &str,
    ops: Value,
) -> Result<K, kube::Error>
where
    K: kube::Resource<DynamicType = ()> + DeserializeOwned,
{
    let request = kube::core::Request::new(K::url_path(&(), Some(ns)));
    let mut req = request
        .patch(name, &PatchParams::default(), &Patch::Merge(&ops))
        .unwrap();
    req.headers_mut().insert(
        "content-type",
        "application/json-patch+json".parse().unwrap(),
    );
    client.request::<K>(req).await
}

/// The API server's answer to a refused request: (message, reason, code).
pub(super) fn refusal(e: kube::Error) -> (String, String, u16) {
    match e {
        kube::Error::Api(s) => (s.message.clone(), s.reason.clone(), s.code),
        other => panic!("not an API error: {other}"),
    }
}
