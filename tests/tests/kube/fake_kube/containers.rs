//! The fake kubelet's container manager, driven with kube-rs as a CI job's pod uses it:
//! native sidecars started in order behind their startup probes, one network namespace per
//! pod (services on `localhost` and on `hostAliases` names), images pulled from a real
//! loopback registry (private ones only with their pull Secret), env from Secrets, crash
//! loops, per-container logs, exec into any running container, and the API server's
//! validation texts.

use harness::fake_kube::sandbox_available;
use harness::images::{busybox_image, echo_image, http_image};
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
fn container(p: &Pod, name: &str) -> Value {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecars_start_in_order_behind_their_probes_and_share_the_pods_network() {
    let Some((_registry, (busybox, redis, postgres, web))) = registry_with(false, |r| {
        Some((
            busybox_image(r)?,
            echo_image(r, 6379, 0)?,
            echo_image(r, 5432, 3)?,
            http_image(r, 8080, 0)?,
        ))
    })
    .await
    else {
        return;
    };
    let fake = quick_fake();
    let client = fake.client();
    let ns = "hr-sidecars";
    create_namespace(&client, ns).await;
    create_secret(
        &client,
        ns,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "job-env"}, "type": "Opaque",
               "stringData": {"steps.X": "from-the-secret", "svc-redis.A": "redis-env"}}),
    )
    .await;
    let sidecars = vec![
        json!({"name": "svc-redis", "image": redis, "restartPolicy": "Always",
               "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "job-env", "key": "svc-redis.A"}}}],
               "ports": [{"containerPort": 6379}],
               "startupProbe": probe(json!({"exec": {"command": ["sh", "-c", "echo ping | nc -w 1 localhost 6379"]}}))}),
        // Listens only after 3 s: everything after it waits for its probe.
        json!({"name": "svc-postgres", "image": postgres, "restartPolicy": "Always",
               "ports": [{"name": "pg", "containerPort": 5432}],
               "startupProbe": probe(json!({"tcpSocket": {"port": "pg"}}))}),
        json!({"name": "svc-web", "image": web, "restartPolicy": "Always",
               "startupProbe": probe(json!({"httpGet": {"path": "/index.html", "port": 8080}}))}),
    ];
    create(&client, ns, job_pod_manifest(&busybox, sidecars))
        .await
        .unwrap();

    let mut saw_pending_uninitialized = false;
    let mut order_broken = Vec::new();
    let pod = wait_until(
        &client,
        ns,
        "job",
        Duration::from_secs(60),
        |p| {
            if phase(p) == "Pending" && condition(p, "Initialized")["status"] == "False" {
                saw_pending_uninitialized = true;
            }
            // Nothing after svc-postgres runs before its probe passed.
            let postgres_started = container(p, "svc-postgres")["started"] == true;
            for later in ["svc-web", "steps"] {
                if container(p, later)["state"].get("running").is_some() && !postgres_started {
                    order_broken.push(later.to_string());
                }
            }
        },
        |p| phase(p) == "Running",
    )
    .await;
    assert!(
        saw_pending_uninitialized,
        "the pod was never Pending with Initialized=False"
    );
    assert!(
        order_broken.is_empty(),
        "started before svc-postgres was: {order_broken:?}"
    );
    for name in ["svc-redis", "svc-postgres", "svc-web"] {
        let c = container(&pod, name);
        assert_eq!(c["started"], true, "{name}: {c}");
        assert_eq!(c["restartCount"], 0, "{name}: {c}");
        assert!(c["imageID"].as_str().unwrap().contains("@sha256:"), "{c}");
    }
    assert_eq!(condition(&pod, "Initialized")["status"], "True");
    assert!(container(&pod, "steps")["state"]["running"].is_object());

    // One network namespace: the services by localhost and by their host alias names.
    let (status, out) = exec(
        &client,
        ns,
        "job",
        "steps",
        &["sh", "-c", "echo one | nc -w 2 localhost 6379; echo two | nc -w 2 postgres 5432; wget -q -O- http://web:8080/; echo \"X=$X\"; pwd; hostname"],
    )
    .await;
    assert_eq!(status, "Success", "{out}");
    assert_eq!(out, "one\ntwo\nok\nX=from-the-secret\n/__w\njob\n");
    // The kubelet-managed hosts file.
    let (_, hosts) = exec(&client, ns, "job", "steps", &["cat", "/etc/hosts"]).await;
    assert!(
        hosts.starts_with("# Kubernetes-managed hosts file.\n"),
        "{hosts}"
    );
    assert!(
        hosts.ends_with("# Entries added by HostAliases.\n127.0.0.1\tpostgres\tredis\tweb\n"),
        "{hosts}"
    );
    // Exec into a running sidecar, with its own env and root.
    let (status, out) = exec(
        &client,
        ns,
        "job",
        "svc-redis",
        &["sh", "-c", "echo $A; ls /__w 2>&1 | head -c 0; echo ok"],
    )
    .await;
    assert_eq!(
        (status.as_str(), out.as_str()),
        ("Success", "redis-env\nok\n")
    );

    // Per-container logs; a container name is needed in a pod of several.
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let log = pods
        .logs(
            "job",
            &LogParams {
                container: Some("svc-postgres".into()),
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(log, "listening on 5432\n");
    // Without a container name, the pod's only (non-init) container.
    let steps_log = pods.logs("job", &LogParams::default()).await.unwrap();
    assert_eq!(steps_log, "");
    let err = pods
        .logs(
            "job",
            &LogParams {
                container: Some("nope".into()),
                ..LogParams::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err).0, "container nope is not valid for pod job");
    let events = events(&client, ns).await;
    assert!(
        events.iter().any(|(r, m, f)| r == "Started"
            && m == "Started container svc-redis"
            && f == "spec.initContainers{svc-redis}"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|(r, m, _)| r == "Pulled"
            && m.starts_with(&format!("Successfully pulled image \"{busybox}\" in "))),
        "{events:?}"
    );

    pods.delete("job", &DeleteParams::default()).await.unwrap();
    for _ in 0..200 {
        if pods.get_opt("job").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        pods.get_opt("job").await.unwrap().is_none(),
        "the pod stayed"
    );
    validate_manifests(&fake.sent_manifests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_that_never_gets_healthy_crash_loops_and_the_pod_never_runs() {
    let Some((_registry, (busybox, echo))) = registry_with(false, |r| {
        Some((busybox_image(r)?, echo_image(r, 7000, 0)?))
    })
    .await
    else {
        return;
    };
    let fake = quick_fake();
    let client = fake.client();
    let ns = "hr-unhealthy";
    create_namespace(&client, ns).await;
    create_secret(
        &client,
        ns,
        json!({"metadata": {"name": "job-env"}, "stringData": {"steps.X": "x"}}),
    )
    .await;
    // It listens on 7000, its probe knocks on 7001.
    let sidecar = json!({"name": "svc-bad", "image": echo, "restartPolicy": "Always",
        "startupProbe": {"tcpSocket": {"port": 7001}, "periodSeconds": 1, "failureThreshold": 2}});
    create(&client, ns, job_pod_manifest(&busybox, vec![sidecar]))
        .await
        .unwrap();
    let mut ran = false;
    let pod = wait_until(
        &client,
        ns,
        "job",
        Duration::from_secs(60),
        |p| ran |= phase(p) != "Pending",
        |p| {
            let c = container(p, "svc-bad");
            c["restartCount"].as_u64().unwrap_or_default() >= 1
                && c["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        },
    )
    .await;
    let c = container(&pod, "svc-bad");
    let uid = pod.metadata.uid.clone().unwrap();
    assert_eq!(
        c["state"]["waiting"]["message"],
        format!("back-off 1s restarting failed container=svc-bad pod=job_{ns}({uid})")
    );
    // The back-off doubles; the pod never leaves Pending.
    wait_until(
        &client,
        ns,
        "job",
        Duration::from_secs(30),
        |p| ran |= phase(p) != "Pending",
        |p| {
            container(p, "svc-bad")["restartCount"]
                .as_u64()
                .unwrap_or_default()
                >= 2
        },
    )
    .await;
    assert!(!ran, "the pod left Pending");
    // nc has no SIGTERM handler as PID 1: killed after the grace period.
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 137, "{c}");
    assert_eq!(c["started"], false);
    assert_eq!(
        container(&pod, "steps")["state"]["waiting"]["reason"],
        "PodInitializing"
    );
    let init = condition(&pod, "Initialized");
    assert_eq!(init["status"], "False");
    assert_eq!(
        init["message"],
        "containers with incomplete status: [svc-bad]"
    );

    let events = events(&client, ns).await;
    let field = "spec.initContainers{svc-bad}";
    assert!(
        events.iter().any(|(r, m, f)| r == "Unhealthy"
            && m == "Startup probe failed: dial tcp 10.244.0.10:7001: connect: connection refused"
            && f == field),
        "{events:?}"
    );
    assert!(
        events.iter().any(|(r, m, _)| r == "Killing"
            && m == "Container svc-bad failed startup probe, will be restarted"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|(r, m, _)| r == "BackOff"
            && m.starts_with("Back-off restarting failed container svc-bad in pod job_")),
        "{events:?}"
    );
    // The last instance's log, with previous=true and (while it waits) without.
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let params = |previous| LogParams {
        container: Some("svc-bad".into()),
        previous,
        ..LogParams::default()
    };
    assert_eq!(
        pods.logs("job", &params(true)).await.unwrap(),
        "listening on 7000\n"
    );
    let err = pods
        .logs(
            "job",
            &LogParams {
                container: Some("steps".into()),
                previous: true,
                ..LogParams::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("previous terminated container \"steps\" in pod \"job\" not found"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_from_a_missing_secret_or_key_is_a_create_container_config_error() {
    let Some((_registry, busybox)) = registry_with(false, busybox_image).await else {
        return;
    };
    let fake = quick_fake();
    let client = fake.client();
    let ns = "hr-env";
    create_namespace(&client, ns).await;
    let pod = json!({"metadata": {"name": "job"}, "spec": {"restartPolicy": "Never", "containers": [{
    "name": "steps", "image": busybox, "command": ["sh", "-c", "sleep 3600"],
    "env": [
        {"name": "X", "valueFrom": {"secretKeyRef": {"name": "job-env", "key": "steps.X"}}},
        {"name": "GONE", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": true}}},
        {"name": "Y", "value": "$(X)-y"},
    ]}]}});
    create(&client, ns, pod).await.unwrap();
    let waiting = |p: &Pod| container(p, "steps")["state"]["waiting"].clone();
    let p = wait_until(
        &client,
        ns,
        "job",
        Duration::from_secs(20),
        |_| {},
        |p| waiting(p)["reason"] == "CreateContainerConfigError",
    )
    .await;
    assert_eq!(waiting(&p)["message"], "secret \"job-env\" not found");
    assert!(
        events(&client, ns)
            .await
            .iter()
            .any(|(r, m, _)| r == "Failed" && m == "Error: secret \"job-env\" not found")
    );
    create_secret(
        &client,
        ns,
        json!({"metadata": {"name": "job-env"}, "stringData": {"other": "v"}}),
    )
    .await;
    let p = wait_until(
        &client,
        ns,
        "job",
        Duration::from_secs(20),
        |_| {},
        |p| waiting(p)["message"] == format!("couldn't find key steps.X in Secret {ns}/job-env"),
    )
    .await;
    assert_eq!(phase(&p), "Pending");
    let secrets = Api::<Secret>::namespaced(client.clone(), ns);
    secrets
        .delete("job-env", &DeleteParams::default())
        .await
        .unwrap();
    create_secret(
        &client,
        ns,
        json!({"metadata": {"name": "job-env"}, "data": {"steps.X": "c2VjcmV0"}}),
    )
    .await;
    wait_until(
        &client,
        ns,
        "job",
        Duration::from_secs(20),
        |_| {},
        |p| phase(p) == "Running",
    )
    .await;
    let (status, out) = exec(
        &client,
        ns,
        "job",
        "",
        &["sh", "-c", "echo $X $Y ${GONE-unset}"],
    )
    .await;
    assert_eq!(
        (status.as_str(), out.as_str()),
        ("Success", "secret secret-y unset\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_image_pulls_only_with_its_pull_secret() {
    let Some((registry, busybox)) = registry_with(true, busybox_image).await else {
        return;
    };
    let fake = quick_fake();
    let client = fake.client();
    let ns = "hr-private";
    create_namespace(&client, ns).await;
    let pod = |name: &str, secrets: Value| {
        json!({"metadata": {"name": name}, "spec": {"restartPolicy": "Never", "imagePullSecrets": secrets,
            "containers": [{"name": "steps", "image": busybox, "command": ["sh", "-c", "sleep 3600"]}]}})
    };
    create(&client, ns, pod("anonymous", json!([])))
        .await
        .unwrap();
    let waiting = |p: &Pod| container(p, "steps")["state"]["waiting"].clone();
    let p = wait_until(
        &client,
        ns,
        "anonymous",
        Duration::from_secs(20),
        |_| {},
        |p| waiting(p)["reason"] == "ErrImagePull",
    )
    .await;
    let message = waiting(&p)["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with(&format!(
            "rpc error: code = Unknown desc = failed to pull and unpack image \"{busybox}\": "
        )),
        "{message}"
    );
    assert!(message.ends_with(": 401 Unauthorized"), "{message}");
    wait_until(
        &client,
        ns,
        "anonymous",
        Duration::from_secs(20),
        |_| {},
        |p| waiting(p)["reason"] == "ImagePullBackOff",
    )
    .await;
    assert_eq!(waiting(&p)["reason"], "ErrImagePull");
    let events = events(&client, ns).await;
    assert!(
        events.iter().any(|(r, m, _)| r == "Failed"
            && m.starts_with(&format!("Failed to pull image \"{busybox}\": rpc error"))),
        "{events:?}"
    );

    let auth = base64_encode(b"ci:s3cret");
    let config = json!({"auths": {registry.host.clone(): {"auth": auth}}}).to_string();
    create_secret(
        &client,
        ns,
        json!({"metadata": {"name": "job-registry"}, "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": config}}),
    )
    .await;
    create(
        &client,
        ns,
        pod("private", json!([{"name": "job-registry"}])),
    )
    .await
    .unwrap();
    wait_until(
        &client,
        ns,
        "private",
        Duration::from_secs(30),
        |_| {},
        |p| phase(p) == "Running",
    )
    .await;
    let (status, out) = exec(
        &client,
        ns,
        "private",
        "steps",
        &["sh", "-c", "echo pulled"],
    )
    .await;
    assert_eq!((status.as_str(), out.as_str()), ("Success", "pulled\n"));
    validate_manifests(&fake.sent_manifests());
}

fn base64_encode(bytes: &[u8]) -> String {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_rejects_invalid_sidecars_aliases_and_secrets_with_its_texts() {
    let fake = FakeKube::start(FakeKubeOptions::default());
    let client = fake.client();
    let ns = "hr-invalid";
    create_namespace(&client, ns).await;
    let steps = json!({"name": "steps", "image": "busybox:1"});
    let cases = [
        (
            json!({"initContainers": [{"name": "steps", "image": "x", "restartPolicy": "Always"}], "containers": [steps]}),
            "Pod \"p\" is invalid: spec.initContainers[0].name: Duplicate value: \"steps\"",
        ),
        (
            json!({"initContainers": [{"name": "svc", "image": "x", "restartPolicy": "OnFailure"}], "containers": [steps]}),
            "Pod \"p\" is invalid: spec.initContainers[0].restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
        ),
        (
            json!({"initContainers": [{"name": "init", "image": "x", "startupProbe": {"exec": {"command": ["true"]}}}], "containers": [steps]}),
            "Pod \"p\" is invalid: spec.initContainers[0].startupProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
        ),
        (
            json!({"initContainers": [{"name": "svc", "image": "x", "restartPolicy": "Always", "startupProbe": {"periodSeconds": 1}}], "containers": [steps]}),
            "Pod \"p\" is invalid: spec.initContainers[0].startupProbe: Required value: must specify a handler type",
        ),
        (
            json!({"containers": [{"name": "Svc_1", "image": "x"}]}),
            "Pod \"p\" is invalid: spec.containers[0].name: Invalid value: \"Svc_1\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
        (
            json!({"hostAliases": [{"ip": "127.0.0.1", "hostnames": ["my_db"]}, {"ip": "localhost", "hostnames": ["db"]}], "containers": [steps]}),
            "Pod \"p\" is invalid: [spec.hostAliases[0].hostnames[0]: Invalid value: \"my_db\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*'), spec.hostAliases[1].ip: Invalid value: \"localhost\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)]",
        ),
    ];
    for (spec, expected) in cases {
        let err = create(
            &client,
            ns,
            json!({"metadata": {"name": "p"}, "spec": spec}),
        )
        .await
        .unwrap_err();
        let (message, reason, code) = api_error(err);
        assert_eq!(
            (message.as_str(), reason.as_str(), code),
            (expected, "Invalid", 422)
        );
    }
    let secrets = Api::<Secret>::namespaced(client.clone(), ns);
    let secret = |body: Value| serde_json::from_value::<Secret>(body).unwrap();
    let err = secrets
        .create(
            &PostParams::default(),
            &secret(json!({"metadata": {"name": "s"}, "stringData": {"svc redis.A": "x"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(
        api_error(err).0,
        "Secret \"s\" is invalid: data[svc redis.A]: Invalid value: \"svc redis.A\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
    );
    let err = secrets
        .create(&PostParams::default(), &secret(json!({"metadata": {"name": "r"}, "type": "kubernetes.io/dockerconfigjson", "stringData": {"config.json": "{}"}})))
        .await
        .unwrap_err();
    assert_eq!(
        api_error(err).0,
        "Secret \"r\" is invalid: data[.dockerconfigjson]: Required value"
    );
    let err = secrets
        .create(&PostParams::default(), &secret(json!({"metadata": {"name": "r"}, "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "not json"}})))
        .await
        .unwrap_err();
    assert_eq!(
        api_error(err).0,
        "Secret \"r\" is invalid: data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": invalid character 'o' in literal null (expecting 'u')"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_of_an_image_off_the_registry_runs_on_the_hosts_folders_in_the_pods_network() {
    let Some((_registry, echo)) = registry_with(false, |r| echo_image(r, 6379, 0)).await else {
        return;
    };
    let fake = quick_fake();
    let client = fake.client();
    let ns = "hr-host-root";
    create_namespace(&client, ns).await;
    create_secret(
        &client,
        ns,
        json!({"metadata": {"name": "job-env"}, "stringData": {"steps.X": "host"}}),
    )
    .await;
    // `node:20` is on no loopback registry: its root is the host's folders, as before.
    let sidecar = json!({"name": "svc-redis", "image": echo, "restartPolicy": "Always"});
    create(&client, ns, job_pod_manifest("node:20", vec![sidecar]))
        .await
        .unwrap();
    wait_until(
        &client,
        ns,
        "job",
        Duration::from_secs(30),
        |_| {},
        |p| phase(p) == "Running",
    )
    .await;
    let (status, out) = exec(
        &client,
        ns,
        "job",
        "steps",
        &[
            "bash",
            "-c",
            "exec 3<>/dev/tcp/redis/6379; echo hi >&3; head -n1 <&3; echo \"$X\"; pwd; getent hosts postgres",
        ],
    )
    .await;
    assert_eq!(status, "Success", "{out}");
    assert_eq!(out, "hi\nhost\n/__w\n127.0.0.1       postgres redis web\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regular_init_container_runs_to_completion_before_the_next_and_a_failing_one_fails_the_pod()
 {
    let Some((_registry, busybox)) = registry_with(false, busybox_image).await else {
        return;
    };
    let fake = quick_fake();
    let client = fake.client();
    let ns = "hr-init";
    create_namespace(&client, ns).await;
    let pod = |name: &str, init_script: &str| {
        json!({"metadata": {"name": name}, "spec": {"restartPolicy": "Never",
            "initContainers": [{"name": "prepare", "image": busybox, "command": ["sh", "-c", init_script],
                "volumeMounts": [{"name": "w", "mountPath": "/__w"}]}],
            "containers": [{"name": "steps", "image": busybox, "command": ["sh", "-c", "cat /__w/marker; sleep 3600"],
                "volumeMounts": [{"name": "w", "mountPath": "/__w"}]}],
            "volumes": [{"name": "w", "emptyDir": {}}]}})
    };
    create(
        &client,
        ns,
        pod("ok", "sleep 1; echo prepared > /__w/marker"),
    )
    .await
    .unwrap();
    let p = wait_until(
        &client,
        ns,
        "ok",
        Duration::from_secs(30),
        |p| {
            // While the init container runs, the pod is Pending and steps waits.
            if container(p, "prepare")["state"]["running"].is_object() {
                assert_eq!(phase(p), "Pending");
                assert_eq!(
                    container(p, "steps")["state"]["waiting"]["reason"],
                    "PodInitializing"
                );
            }
        },
        |p| phase(p) == "Running",
    )
    .await;
    let done = &container(&p, "prepare")["state"]["terminated"];
    assert_eq!(
        (done["exitCode"].clone(), done["reason"].clone()),
        (json!(0), json!("Completed"))
    );
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let mut log = String::new();
    for _ in 0..100 {
        log = pods.logs("ok", &LogParams::default()).await.unwrap();
        if !log.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(log, "prepared\n");

    create(&client, ns, pod("bad", "echo broken; exit 3"))
        .await
        .unwrap();
    let p = wait_until(
        &client,
        ns,
        "bad",
        Duration::from_secs(30),
        |_| {},
        |p| phase(p) == "Failed",
    )
    .await;
    assert_eq!(
        container(&p, "prepare")["state"]["terminated"]["exitCode"],
        3
    );
    assert_eq!(
        container(&p, "steps")["state"]["waiting"]["reason"],
        "PodInitializing"
    );
    let log = pods
        .logs(
            "bad",
            &LogParams {
                container: Some("prepare".into()),
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(log, "broken\n");
}
