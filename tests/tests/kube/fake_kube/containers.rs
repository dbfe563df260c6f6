//! The fake kubelet's container manager, driven with kube-rs as a CI job's pod uses it:
//! native sidecars started in order behind their startup probes, one network namespace per
//! pod (services on `localhost` and on `hostAliases` names), images pulled from a real
//! loopback registry (private ones only with their pull Secret), env from Secrets, crash
//! loops, per-container logs, exec into any running container, and the API server's
//! validation texts.

use harness::images::{busybox_image, echo_image, http_image};

use super::helpers::*;

use super::container_rig::*;

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
