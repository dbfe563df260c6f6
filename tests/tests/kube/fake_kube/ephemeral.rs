//! Ephemeral containers in the fake, driven with kube-rs as the engine's container steps
//! drive them (`Api::patch_ephemeral_containers` with a strategic merge patch, the status
//! polled, the log followed): one runs once in the running job pod, in its network and on
//! its volumes, with env from a Secret, and is never restarted; a missing image waits with
//! `ErrImagePull`; the API server holds them to its rules with its texts.

use harness::images::{busybox_image, echo_image};

use super::container_rig::{
    api_error, create, create_secret, events, exec, job_pod_manifest, phase, probe, quick_fake,
    registry_with, status_json, wait_until,
};
use super::helpers::*;

/// The status of ephemeral container `name` as JSON (`Null` while it has none).
fn ephemeral(p: &Pod, name: &str) -> Value {
    status_json(p)["ephemeralContainerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Adds `container` to the pod's ephemeral containers the way the engine does.
async fn add(pods: &Api<Pod>, pod: &str, container: Value) -> Result<Pod, kube::Error> {
    let patch = json!({"spec": {"ephemeralContainers": [container]}});
    pods.patch_ephemeral_containers(pod, &PatchParams::default(), &Patch::Strategic(patch))
        .await
}

/// Follows the log of `container` to its end on a task of its own; the text.
fn follow(pods: &Api<Pod>, pod: &str, container: &str) -> tokio::task::JoinHandle<String> {
    let (pods, pod, container) = (pods.clone(), pod.to_string(), container.to_string());
    tokio::spawn(async move {
        let params = LogParams {
            container: Some(container),
            follow: true,
            ..LogParams::default()
        };
        let stream = pods.log_stream(&pod, &params).await.unwrap();
        let mut text = String::new();
        let mut reader = stream;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = futures_util::AsyncReadExt::read(&mut reader, &mut buf)
                .await
                .unwrap_or(0);
            if n == 0 {
                return text;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
}

/// A running job pod (busybox `steps`, a TCP echo sidecar on 6379, emptyDirs `workspace`
/// and `temp`) in namespace `ns`; its registry, busybox image and the fake.
async fn running_job_pod(ns: &str) -> Option<(Registry, String, FakeKube, kube::Client)> {
    let (registry, (busybox, echo)) = registry_with(false, |r| {
        Some((busybox_image(r)?, echo_image(r, 6379, 0)?))
    })
    .await?;
    let fake = quick_fake();
    let client = fake.client();
    create_namespace(&client, ns).await;
    create_secret(
        &client,
        ns,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "job-env"}, "type": "Opaque",
               "stringData": {"steps.X": "x"}}),
    )
    .await;
    let sidecar = json!({"name": "svc-redis", "image": echo, "restartPolicy": "Always",
        "startupProbe": probe(json!({"tcpSocket": {"port": 6379}}))});
    create(&client, ns, job_pod_manifest(&busybox, vec![sidecar]))
        .await
        .unwrap();
    wait_until(
        &client,
        ns,
        "job",
        Duration::from_secs(60),
        |_| {},
        |p| phase(p) == "Running",
    )
    .await;
    Some((registry, busybox, fake, client))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephemeral_container_runs_once_on_the_pods_volumes_and_network_with_env_from_a_secret() {
    let ns = "hr-ephemeral";
    let Some((_registry, busybox, fake, client)) = running_job_pod(ns).await else {
        return;
    };
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    // Its env as the engine passes it: a Secret of its own, one key per variable.
    create_secret(
        &client,
        ns,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "step-1-env"}, "type": "Opaque",
               "stringData": {"0": "from the secret", "1": "/__w/app/out.txt"}}),
    )
    .await;
    // It waits for `/__t/go` (written from `steps`), so an exec finds it running.
    let script = "echo \"hello $GREETING\"; pwd; \
        while [ ! -e /__t/go ]; do sleep 0.1; done; \
        echo written > \"$OUT\"; mkdir -p /__t/_files; echo result=ok >> /__t/_files/set_output; \
        echo ping | nc -w 2 localhost 6379; echo bye; exit 3";
    let step = json!({
        "name": "step-1",
        "image": busybox,
        "command": ["sh", "-c", script],
        "workingDir": "/__w/app",
        "env": [
            {"name": "GREETING", "valueFrom": {"secretKeyRef": {"name": "step-1-env", "key": "0"}}},
            {"name": "OUT", "valueFrom": {"secretKeyRef": {"name": "step-1-env", "key": "1"}}},
        ],
        "volumeMounts": [
            {"name": "workspace", "mountPath": "/__w"},
            {"name": "temp", "mountPath": "/__t"},
            {"name": "temp", "mountPath": "/github/runner_temp"},
        ],
    });
    let pod = add(&pods, "job", step.clone()).await.unwrap();
    let added = &serde_json::to_value(&pod.spec).unwrap()["ephemeralContainers"][0];
    assert_eq!(added["name"], "step-1");
    // The container defaults, as on any container.
    assert_eq!(added["imagePullPolicy"], "IfNotPresent");
    assert_eq!(added["terminationMessagePolicy"], "File");
    // The subresource's GET is the pod.
    let got = pods.get_ephemeral_containers("job").await.unwrap();
    assert_eq!(
        got.spec.unwrap().ephemeral_containers.unwrap()[0].name,
        "step-1"
    );

    // Waiting (the kubelet's default reason in a pod with init containers), then running.
    let mut states = Vec::new();
    let running = wait_until(
        &client,
        ns,
        "job",
        Duration::from_secs(30),
        |p| {
            let s = ephemeral(p, "step-1")["state"].clone();
            let key = s
                .as_object()
                .and_then(|m| m.keys().next().cloned())
                .unwrap_or_default();
            if states.last() != Some(&key) {
                states.push(key);
            }
        },
        |p| ephemeral(p, "step-1")["state"]["running"].is_object(),
    )
    .await;
    assert_eq!(
        states.first().map(String::as_str),
        Some("waiting"),
        "{states:?}"
    );
    let status = ephemeral(&running, "step-1");
    assert_eq!(status["ready"], false, "{status}");
    assert!(status.get("started").is_none(), "{status}");
    assert!(
        status["imageID"].as_str().unwrap().contains("@sha256:"),
        "{status}"
    );
    assert_eq!(phase(&running), "Running");
    let log = follow(&pods, "job", "step-1");

    // Exec into the running ephemeral container: its env, root and working folder.
    let (status, out) = exec(
        &client,
        ns,
        "job",
        "step-1",
        &["sh", "-c", "echo \"$GREETING\"; pwd; hostname; ls /github"],
    )
    .await;
    assert_eq!(status, "Success", "{out}");
    assert_eq!(out, "from the secret\n/__w/app\njob\nrunner_temp\n");
    let (status, _) = exec(&client, ns, "job", "steps", &["touch", "/__t/go"]).await;
    assert_eq!(status, "Success");

    // The log, followed until the container ends; then its exit code.
    let text = tokio::time::timeout(Duration::from_secs(30), log)
        .await
        .expect("the followed log ended with the container")
        .unwrap();
    assert_eq!(text, "hello from the secret\n/__w/app\nping\nbye\n");
    let done = wait_until(
        &client,
        ns,
        "job",
        Duration::from_secs(10),
        |_| {},
        |p| ephemeral(p, "step-1")["state"]["terminated"].is_object(),
    )
    .await;
    let terminated = &ephemeral(&done, "step-1")["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 3, "{terminated}");
    assert_eq!(terminated["reason"], "Error", "{terminated}");
    // What it wrote is on the pod's volumes, seen from `steps`.
    let (status, out) = exec(
        &client,
        ns,
        "job",
        "steps",
        &["sh", "-c", "cat /__w/app/out.txt /__t/_files/set_output"],
    )
    .await;
    assert_eq!(
        (status.as_str(), out.as_str()),
        ("Success", "written\nresult=ok\n")
    );
    // Never restarted; the pod goes on.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = pods.get("job").await.unwrap();
    let status = ephemeral(&later, "step-1");
    assert_eq!(status["restartCount"], 0, "{status}");
    assert_eq!(status["state"]["terminated"]["exitCode"], 3, "{status}");
    assert_eq!(phase(&later), "Running");
    // The whole log stays readable.
    let params = LogParams {
        container: Some("step-1".into()),
        ..LogParams::default()
    };
    assert_eq!(
        pods.logs("job", &params).await.unwrap(),
        "hello from the secret\n/__w/app\nping\nbye\n"
    );
    let events = events(&client, ns).await;
    assert!(
        events.iter().any(|(r, m, f)| r == "Started"
            && m == "Started container step-1"
            && f == "spec.ephemeralContainers{step-1}"),
        "{events:?}"
    );

    // A second one that runs until the pod goes: deleting the pod ends it (and its log).
    let sleeper = json!({"name": "step-2", "image": busybox,
        "command": ["sh", "-c", "echo up; exec sleep 3600"]});
    add(&pods, "job", sleeper).await.unwrap();
    wait_until(
        &client,
        ns,
        "job",
        Duration::from_secs(30),
        |_| {},
        |p| ephemeral(p, "step-2")["state"]["running"].is_object(),
    )
    .await;
    let log = follow(&pods, "job", "step-2");
    // Both stay listed; the first one unchanged.
    let spec = serde_json::to_value(pods.get("job").await.unwrap().spec).unwrap();
    let names: Vec<&str> = spec["ephemeralContainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["step-1", "step-2"]);
    pods.delete("job", &DeleteParams::default()).await.unwrap();
    let text = tokio::time::timeout(Duration::from_secs(30), log)
        .await
        .expect("the log of step-2 ended with the pod")
        .unwrap();
    assert_eq!(text, "up\n");
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
async fn a_missing_image_leaves_the_ephemeral_container_waiting_with_err_image_pull() {
    let ns = "hr-ephemeral-pull";
    let Some((registry, _busybox, _fake, client)) = running_job_pod(ns).await else {
        return;
    };
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let image = format!("{}/nope:1", registry.host);
    add(
        &pods,
        "job",
        json!({"name": "step-1", "image": image, "command": ["true"]}),
    )
    .await
    .unwrap();
    let waiting = |p: &Pod| ephemeral(p, "step-1")["state"]["waiting"].clone();
    let p = wait_until(
        &client,
        ns,
        "job",
        Duration::from_secs(30),
        |_| {},
        |p| waiting(p)["reason"] == "ErrImagePull",
    )
    .await;
    let message = waiting(&p)["message"].as_str().unwrap().to_string();
    assert_eq!(
        message,
        format!(
            "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": {image}: not found"
        )
    );
    wait_until(
        &client,
        ns,
        "job",
        Duration::from_secs(30),
        |_| {},
        |p| waiting(p)["reason"] == "ImagePullBackOff",
    )
    .await;
    // Its log cannot be had yet; the pod runs on.
    let err = pods
        .logs(
            "job",
            &LogParams {
                container: Some("step-1".into()),
                ..LogParams::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        api_error(err)
            .0
            .starts_with("container \"step-1\" in pod \"job\" is waiting to start: "),
    );
    assert_eq!(phase(&pods.get("job").await.unwrap()), "Running");
    let events = events(&client, ns).await;
    assert!(
        events.iter().any(|(r, m, f)| r == "Failed"
            && m == "Error: ErrImagePull"
            && f == "spec.ephemeralContainers{step-1}"),
        "{events:?}"
    );
}

/// What the engine's container step once sent (crates/engine/src/pod/container_step.rs,
/// `ephemeral_container`): the workspace and the `/github` folders as `subPath` mounts.
fn engine_container_step(image: &str) -> Value {
    json!({
        "name": "step-3", "image": image, "workingDir": "/github/workspace",
        "env": [{"name": "INPUT_X", "valueFrom": {"secretKeyRef": {"name": "step-3-env", "key": "0"}}}],
        "volumeMounts": [
            {"name": "workspace", "mountPath": "/__w"},
            {"name": "temp", "mountPath": "/__t"},
            {"name": "temp", "mountPath": "/github/runner_temp"},
            {"name": "workspace", "mountPath": "/github/workspace", "subPath": "app"},
            {"name": "temp", "mountPath": "/github/home", "subPath": "_github_home"},
            {"name": "temp", "mountPath": "/github/workflow", "subPath": "_github_workflow"},
            {"name": "temp", "mountPath": "/github/file_commands", "subPath": "_files"},
        ],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_holds_ephemeral_containers_to_its_rules_with_its_texts() {
    // Nothing needs to run: the pod is never scheduled.
    let fake = FakeKube::start(FakeKubeOptions {
        faults: Faults {
            unschedulable: true,
            ..Faults::default()
        },
        ..FakeKubeOptions::default()
    });
    let client = fake.client();
    let ns = "hr-ephemeral-rules";
    create_namespace(&client, ns).await;
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "job"}, "spec": {
        "containers": [{"name": "steps", "image": "busybox:1", "command": ["sleep", "3600"],
            "volumeMounts": [{"name": "workspace", "mountPath": "/__w"}]}],
        "volumes": [{"name": "workspace", "emptyDir": {}}, {"name": "temp", "emptyDir": {}}]}});
    // Only the subresource sets them: not on create...
    let mut with = pod.clone();
    with["spec"]["ephemeralContainers"] = json!([{"name": "dbg", "image": "busybox:1"}]);
    let err = create(&client, ns, with).await.unwrap_err();
    assert_eq!(
        api_error(err),
        (
            "Pod \"job\" is invalid: spec.ephemeralContainers: Forbidden: cannot be set on create"
                .to_string(),
            "Invalid".to_string(),
            422
        )
    );
    create(&client, ns, pod).await.unwrap();

    let rejected = |c: Value| {
        let pods = pods.clone();
        async move { api_error(add(&pods, "job", c).await.unwrap_err()) }
    };
    let cases = [
        (
            json!({"name": "dbg", "image": "busybox:1", "ports": [{"containerPort": 80}]}),
            "Pod \"job\" is invalid: spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
        ),
        (
            json!({"name": "dbg", "image": "busybox:1", "resources": {"limits": {"cpu": "1"}},
                   "startupProbe": {"exec": {"command": ["true"]}}, "lifecycle": {"preStop": {"exec": {"command": ["true"]}}}}),
            "Pod \"job\" is invalid: [spec.ephemeralContainers[0].resources: Forbidden: cannot be set for an Ephemeral Container, spec.ephemeralContainers[0].startupProbe: Forbidden: cannot be set for an Ephemeral Container, spec.ephemeralContainers[0].lifecycle: Forbidden: cannot be set for an Ephemeral Container]",
        ),
        (
            json!({"name": "dbg", "image": "busybox:1", "volumeMounts": [{"name": "nope", "mountPath": "/x"}]}),
            "Pod \"job\" is invalid: spec.ephemeralContainers[0].volumeMounts[0].name: Not found: \"nope\"",
        ),
        (
            json!({"name": "steps", "image": "busybox:1"}),
            "Pod \"job\" is invalid: spec.ephemeralContainers[0].name: Duplicate value: \"steps\"",
        ),
        (
            json!({"name": "dbg", "image": "busybox:1", "targetContainerName": "nope"}),
            "Pod \"job\" is invalid: spec.ephemeralContainers[0].targetContainerName: Not found: \"nope\"",
        ),
        // The engine's container step: subPath mounts are not allowed in an ephemeral
        // container at all.
        (
            engine_container_step("busybox:1"),
            "Pod \"job\" is invalid: [spec.ephemeralContainers[0].volumeMounts[3].subPath: Forbidden: cannot be set for an Ephemeral Container, spec.ephemeralContainers[0].volumeMounts[4].subPath: Forbidden: cannot be set for an Ephemeral Container, spec.ephemeralContainers[0].volumeMounts[5].subPath: Forbidden: cannot be set for an Ephemeral Container, spec.ephemeralContainers[0].volumeMounts[6].subPath: Forbidden: cannot be set for an Ephemeral Container]",
        ),
    ];
    for (container, expected) in cases {
        let (message, reason, code) = rejected(container).await;
        assert_eq!(
            (message.as_str(), reason.as_str(), code),
            (expected, "Invalid", 422)
        );
    }
    // Nothing of those was stored.
    let stored = serde_json::to_value(pods.get("job").await.unwrap().spec).unwrap();
    assert!(stored.get("ephemeralContainers").is_none(), "{stored}");

    let dbg = json!({"name": "dbg", "image": "busybox:1", "command": ["sh"]});
    add(&pods, "job", dbg.clone()).await.unwrap();
    // The same again is no change; a changed one is refused.
    add(&pods, "job", dbg.clone()).await.unwrap();
    let (message, _, code) =
        rejected(json!({"name": "dbg", "image": "busybox:1", "command": ["sh", "-x"]})).await;
    assert_eq!(code, 422);
    assert!(
        message.starts_with(
            "Pod \"job\" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers \"dbg\" may not be changed\n"
        ),
        "{message}"
    );
    // A merge patch replaces the list: dropping dbg is refused.
    let err = pods
        .patch_ephemeral_containers(
            "job",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"ephemeralContainers": [{"name": "two", "image": "busybox:1"}]}}),
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(
        api_error(err).0,
        "Pod \"job\" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers \"dbg\" may not be removed\n"
    );
    // A JSON patch that appends is fine; whatever else the body changes is dropped.
    let ops = serde_json::from_value(json!([
        {"op": "add", "path": "/spec/ephemeralContainers/-", "value": {"name": "two", "image": "busybox:1"}},
        {"op": "replace", "path": "/spec/containers/0/image", "value": "busybox:2"},
    ]))
    .unwrap();
    let pod = pods
        .patch_ephemeral_containers("job", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .unwrap();
    let spec = serde_json::to_value(pod.spec).unwrap();
    assert_eq!(spec["containers"][0]["image"], "busybox:1");
    assert_eq!(spec["ephemeralContainers"][1]["name"], "two");
    // PUT of the subresource: the pod with its list, read again after a conflict (the
    // kubelet writes the pod's status meanwhile), as client-go's RetryOnConflict does.
    let mut attempt = 0;
    let (whole, replaced) = loop {
        attempt += 1;
        let mut whole = pods.get_ephemeral_containers("job").await.unwrap();
        let mut list = whole
            .spec
            .as_ref()
            .unwrap()
            .ephemeral_containers
            .clone()
            .unwrap();
        list.push(serde_json::from_value(json!({"name": "three", "image": "busybox:1"})).unwrap());
        whole.spec.as_mut().unwrap().ephemeral_containers = Some(list);
        match pods
            .replace_ephemeral_containers("job", &PostParams::default(), &whole)
            .await
        {
            Ok(replaced) => break (whole, replaced),
            Err(kube::Error::Api(status)) if status.code == 409 && attempt < 5 => continue,
            Err(e) => panic!("replace the ephemeral containers: {e}"),
        }
    };
    assert_eq!(
        replaced.spec.unwrap().ephemeral_containers.unwrap().len(),
        3
    );
    // With an old resourceVersion: a conflict.
    let err = pods
        .replace_ephemeral_containers("job", &PostParams::default(), &whole)
        .await
        .unwrap_err();
    assert_eq!(api_error(err).2, 409);

    // A plain pod update may not touch them.
    let err = pods
        .patch(
            "job",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"ephemeralContainers": [{"name": "four", "image": "busybox:1"}]}}),
            ),
        )
        .await
        .unwrap_err();
    let (message, reason, code) = api_error(err);
    assert_eq!((reason.as_str(), code), ("Invalid", 422));
    assert!(
        message.starts_with("Pod \"job\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"),
        "{message}"
    );
    // An image change through a plain update is allowed.
    pods.patch(
        "job",
        &PatchParams::default(),
        &Patch::Strategic(
            json!({"spec": {"containers": [{"name": "steps", "image": "busybox:2"}]}}),
        ),
    )
    .await
    .unwrap();

    // RBAC: patch on pods/ephemeralcontainers.
    fake.update_faults(|f| {
        f.deny
            .push(DenyRule::new("patch", "pods/ephemeralcontainers"))
    });
    let err = add(&pods, "job", json!({"name": "five", "image": "busybox:1"}))
        .await
        .unwrap_err();
    let (message, reason, code) = api_error(err);
    assert_eq!((reason.as_str(), code), ("Forbidden", 403));
    assert!(
        message.contains("cannot patch resource \"pods/ephemeralcontainers\" in API group \"\""),
        "{message}"
    );
    validate_manifests(&fake.sent_manifests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_ends_stops_its_ephemeral_containers_and_starts_no_new_one() {
    let Some((_registry, busybox)) = registry_with(false, busybox_image).await else {
        return;
    };
    let fake = quick_fake();
    let client = fake.client();
    let ns = "hr-ephemeral-end";
    create_namespace(&client, ns).await;
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "job"}, "spec": {
        "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "steps", "image": busybox,
            "command": ["sh", "-c", "while [ ! -e /__t/stop ]; do sleep 0.1; done"],
            "volumeMounts": [{"name": "temp", "mountPath": "/__t"}]}],
        "volumes": [{"name": "temp", "emptyDir": {}}]}});
    create(&client, ns, pod).await.unwrap();
    wait_until(
        &client,
        ns,
        "job",
        Duration::from_secs(30),
        |_| {},
        |p| phase(p) == "Running",
    )
    .await;
    add(
        &pods,
        "job",
        json!({"name": "dbg", "image": busybox, "command": ["sleep", "3600"],
               "volumeMounts": [{"name": "temp", "mountPath": "/__t"}]}),
    )
    .await
    .unwrap();
    let p = wait_until(
        &client,
        ns,
        "job",
        Duration::from_secs(30),
        |_| {},
        |p| ephemeral(p, "dbg")["state"]["running"].is_object(),
    )
    .await;
    assert_eq!(phase(&p), "Running");
    // The ephemeral container does not keep the pod going: when `steps` ends, the kubelet
    // stops it (sleep ignores SIGTERM as PID 1: killed after the grace period).
    let (status, _) = exec(&client, ns, "job", "dbg", &["touch", "/__t/stop"]).await;
    assert_eq!(status, "Success");
    let done = wait_until(
        &client,
        ns,
        "job",
        Duration::from_secs(30),
        |_| {},
        |p| phase(p) == "Succeeded" && ephemeral(p, "dbg")["state"]["terminated"].is_object(),
    )
    .await;
    assert_eq!(
        ephemeral(&done, "dbg")["state"]["terminated"]["exitCode"],
        137
    );
    // The API server takes a new one; the kubelet, done with the pod, never starts it.
    add(
        &pods,
        "job",
        json!({"name": "late", "image": busybox, "command": ["true"]}),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = pods.get("job").await.unwrap();
    assert_eq!(ephemeral(&later, "late"), Value::Null);
    assert_eq!(phase(&later), "Succeeded");
}
