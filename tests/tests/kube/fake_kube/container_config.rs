//! The container manager's configuration paths: env from missing Secrets or keys,
//! private images and their pull Secrets, the API server's validation texts, images off
//! the registry on the host's folders, and regular init containers.

use harness::images::{busybox_image, echo_image};
use k8s_openapi::api::core::v1::Secret;

use super::helpers::*;

use super::container_rig::*;

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
