//! What the container manager's tests share: a quick fake, a registry with images,
//! creating pods and Secrets, waiting on them, exec, events and pod manifests.

use harness::fake_kube::sandbox_available;
use k8s_openapi::api::core::v1::Secret;
use tokio::io::AsyncReadExt;

use super::helpers::*;

/// A fake whose crash-loop back-off starts at 1 s instead of the kubelet's 10 s.
pub(super) fn quick_fake() -> FakeKube {
    FakeKube::start(FakeKubeOptions {
        crash_loop_back_off: Duration::from_secs(1),
        ..FakeKubeOptions::default()
    })
}

/// A registry (with Basic auth when `auth`) and the images the closure pushes to it; `None`
/// when the sandbox, the registry or the image tools are missing outside CI.
pub(super) async fn registry_with<T: Send + 'static>(
    auth: bool,
    push: impl FnOnce(&Registry) -> Option<T> + Send + 'static,
) -> Option<(Registry, T)> {
    if !sandbox_available() {
        return None;
    }
    tokio::task::spawn_blocking(move || {
        let registry = if auth {
            Registry::start_with_auth("ci", "s3cret")?
        } else {
            Registry::start()?
        };
        let images = push(&registry)?;
        Some((registry, images))
    })
    .await
    .unwrap()
}

pub(super) async fn create(
    client: &kube::Client,
    ns: &str,
    pod: Value,
) -> Result<Pod, kube::Error> {
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(pod).unwrap(),
        )
        .await
}

pub(super) async fn create_secret(client: &kube::Client, ns: &str, secret: Value) {
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(secret).unwrap(),
        )
        .await
        .unwrap();
}

/// Polls the pod every 50 ms until `ok`, failing after `limit`; `each` sees every poll.
pub(super) async fn wait_until(
    client: &kube::Client,
    ns: &str,
    name: &str,
    limit: Duration,
    mut each: impl FnMut(&Pod),
    ok: impl Fn(&Pod) -> bool,
) -> Pod {
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let p = pods.get(name).await.unwrap();
        each(&p);
        if ok(&p) {
            return p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pod {name} never reached the expected state: {}",
            serde_json::to_string_pretty(&p.status).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(super) fn status_json(p: &Pod) -> Value {
    serde_json::to_value(p.status.clone().unwrap_or_default()).unwrap()
}

/// The status of container `name` (init or not) as JSON.
pub(super) fn container(p: &Pod, name: &str) -> Value {
    let s = status_json(p);
    ["initContainerStatuses", "containerStatuses"]
        .iter()
        .flat_map(|f| s[*f].as_array().cloned().unwrap_or_default())
        .find(|c| c["name"] == name)
        .unwrap_or(Value::Null)
}

pub(super) fn phase(p: &Pod) -> String {
    status_json(p)["phase"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub(super) fn condition(p: &Pod, kind: &str) -> Value {
    status_json(p)["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Runs `command` in `container` of the pod; (exit status, stdout). A failure shows its
/// stderr in the status.
pub(super) async fn exec(
    client: &kube::Client,
    ns: &str,
    pod: &str,
    container: &str,
    command: &[&str],
) -> (String, String) {
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let ap = AttachParams::default()
        .container(container)
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let mut attached = pods.exec(pod, command.to_vec(), &ap).await.unwrap();
    let mut stdout = attached.stdout().unwrap();
    let mut stderr = attached.stderr().unwrap();
    let status = attached.take_status().unwrap();
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut out = String::new();
    stdout.read_to_string(&mut out).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), status)
        .await
        .expect("the exec ended");
    let errors = errors.await.unwrap();
    let status = status.and_then(|s| s.status).unwrap_or_default();
    if status == "Success" {
        (status, out)
    } else {
        (format!("{status}: {errors}"), out)
    }
}

pub(super) async fn events(client: &kube::Client, ns: &str) -> Vec<(String, String, String)> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| {
            (
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default(),
                e.involved_object.field_path.unwrap_or_default(),
            )
        })
        .collect()
}

pub(super) fn job_pod_manifest(steps_image: &str, sidecars: Vec<Value>) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "job"},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "terminationGracePeriodSeconds": 1,
            "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["postgres", "redis", "web"]}],
            "initContainers": sidecars,
            "containers": [{
                "name": "steps",
                "image": steps_image,
                "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done"],
                "workingDir": "/__w",
                "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "job-env", "key": "steps.X"}}}],
                "volumeMounts": [{"name": "workspace", "mountPath": "/__w"}, {"name": "temp", "mountPath": "/__t"}],
            }],
            "volumes": [{"name": "workspace", "emptyDir": {}}, {"name": "temp", "emptyDir": {}}],
        }
    })
}

pub(super) fn probe(handler: Value) -> Value {
    let mut p = json!({"periodSeconds": 1, "timeoutSeconds": 5, "failureThreshold": 10, "initialDelaySeconds": 0});
    for (k, v) in handler.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

pub(super) fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The API server's answer to an invalid object: (message, reason, code).
pub(super) fn api_error(e: kube::Error) -> (String, String, u16) {
    match e {
        kube::Error::Api(s) => (s.message.clone(), s.reason.clone(), s.code),
        other => panic!("not an API error: {other}"),
    }
}
