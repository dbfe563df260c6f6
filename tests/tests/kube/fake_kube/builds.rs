//! Real Kaniko manifests through kube-rs: ConfigMap, PVC (loader pod over attach) and stdin
//! contexts build with buildah and push to a real registry; failures end Jobs as 1.31+ does.

use super::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_jobs_build_push_stream_logs_and_report_the_digest() {
    let Some(registry) = tools() else { return };
    let fake = FakeKube::start(FakeKubeOptions::default());
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let (root, targz, sha) = context(
        dir.path(),
        "FROM scratch\nARG VERSION\nCOPY hello.txt /hello.txt\n",
    );
    let m = manifests(&registry.host, &root, &targz, &sha, "task-ok");
    let ns = create_all(&client, &m).await;

    // Follow the first build's log while it runs.
    let pod = job_pod(&client, &ns, "kaniko-docker").await;
    let pod_name = pod.metadata.name.clone().unwrap();
    assert!(
        pod_name.starts_with("kaniko-docker-") && pod_name.len() == "kaniko-docker-".len() + 5,
        "{pod_name}"
    );
    let labels = pod.metadata.labels.clone().unwrap();
    assert_eq!(labels["job-name"], "kaniko-docker");
    assert_eq!(labels["batch.kubernetes.io/job-name"], "kaniko-docker");
    assert!(labels.contains_key("controller-uid"));
    assert_eq!(labels["hybrid-runner/variant"], "docker");
    let owner = &pod.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Job", "kaniko-docker")
    );
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    wait_pod(&client, &ns, &pod_name, |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Pending")
    })
    .await;
    let lp = LogParams {
        follow: true,
        container: Some("kaniko".into()),
        ..LogParams::default()
    };
    let mut lines = pods.log_stream(&pod_name, &lp).await.unwrap().lines();
    let mut log = Vec::new();
    while let Some(line) = lines.try_next().await.unwrap() {
        log.push(line);
    }
    let log = log.join("\n");
    assert!(log.contains("Pushing image to"), "{log}");
    assert!(
        log.contains("Writing manifest") || log.contains("COMMIT"),
        "{log}"
    );

    for (variant, job) in &m.jobs {
        let name = job.metadata.name.clone().unwrap();
        let done = wait_job(&client, &ns, &name, Duration::from_secs(120)).await;
        let conds = condition_types(&done);
        assert_eq!(
            conds,
            vec![
                (
                    "SuccessCriteriaMet".to_string(),
                    Some("CompletionsReached".to_string())
                ),
                (
                    "Complete".to_string(),
                    Some("CompletionsReached".to_string())
                ),
            ],
            "{variant}"
        );
        let status = done.status.clone().unwrap();
        assert_eq!(status.succeeded, Some(1));
        assert!(status.start_time.is_some() && status.completion_time.is_some());
        let pod = job_pod(&client, &ns, &name).await;
        let t = terminated(&pod).unwrap();
        assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
        assert_eq!(
            pod.status.as_ref().unwrap().phase.as_deref(),
            Some("Succeeded")
        );
        let digest = t.message.clone().unwrap();
        assert!(digest.starts_with("sha256:"), "{digest}");
        let args = job
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .args
            .clone()
            .unwrap();
        for dest in args.iter().filter_map(|a| a.strip_prefix("--destination=")) {
            let tag = dest.rsplit_once(':').unwrap().1;
            assert_eq!(
                blocking(|| registry.digest("app", tag)).as_deref(),
                Some(digest.as_str()),
                "{dest}"
            );
        }
    }
    let tags = blocking(|| registry.tags("app"));
    assert!(
        tags.contains(&"docker-latest".to_string()) && tags.contains(&"k8s-latest".to_string()),
        "{tags:?}"
    );
    let sent = fake.sent_manifests();
    assert_eq!(sent.len(), 1 + 1 + 1 + m.jobs.len(), "{sent:#?}");
    validate_manifests(&sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_dockerfile_fails_the_job_with_failure_target() {
    let Some(registry) = tools() else { return };
    let fake = FakeKube::start(FakeKubeOptions::default());
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let (root, targz, sha) = context(dir.path(), "FROM scratch\nCOPY missing.txt /\n");
    let m = manifests(&registry.host, &root, &targz, &sha, "task-fail");
    let ns = create_all(&client, &m).await;
    let job = wait_job(&client, &ns, "kaniko-docker", Duration::from_secs(120)).await;
    assert_eq!(
        condition_types(&job),
        vec![
            (
                "FailureTarget".to_string(),
                Some("BackoffLimitExceeded".to_string())
            ),
            (
                "Failed".to_string(),
                Some("BackoffLimitExceeded".to_string())
            ),
        ]
    );
    let status = job.status.unwrap();
    assert_eq!((status.failed, status.succeeded), (Some(1), None));
    assert!(status.completion_time.is_none());
    let pod = job_pod(&client, &ns, "kaniko-docker").await;
    let t = terminated(&pod).unwrap();
    assert_ne!(t.exit_code, 0);
    assert_eq!(t.reason.as_deref(), Some("Error"));
    assert!(t.message.is_none());
    let log = fake
        .pod_log(&ns, pod.metadata.name.as_deref().unwrap(), "kaniko")
        .unwrap();
    assert!(log.contains("missing.txt"), "{log}");
    assert!(!blocking(|| registry.tags("app")).contains(&"docker-latest".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pvc_mode_loader_pod_gets_the_context_over_attach_and_the_jobs_build_from_it() {
    let Some(registry) = tools() else { return };
    let fake = FakeKube::start(FakeKubeOptions::default());
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let (root, targz, sha) = context(dir.path(), "FROM scratch\nCOPY hello.txt /hello.txt\n");
    let m = manifests_in(
        &registry.host,
        &root,
        &targz,
        &sha,
        "task-pvc",
        ContextMode::Pvc,
    );
    let ns = m.namespace.metadata.name.clone().unwrap();
    let pp = PostParams::default();
    Api::<Namespace>::all(client.clone())
        .create(&pp, &m.namespace)
        .await
        .unwrap();
    let ContextObjects::Pvc { pvc, loader } = &m.context else {
        panic!("expected a PVC context");
    };
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns)
        .create(&pp, pvc)
        .await
        .unwrap();
    if let Some(secret) = &m.registry_secret {
        Api::namespaced(client.clone(), &ns)
            .create(&pp, secret)
            .await
            .unwrap();
    }
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    pods.create(&pp, loader).await.unwrap();
    let loader_name = loader.metadata.name.clone().unwrap();
    wait_pod(&client, &ns, &loader_name, |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    })
    .await;
    let (status, output) = attach_and_send(&client, &ns, &loader_name, &targz).await;
    assert_eq!(
        status,
        "Success",
        "{:?}",
        fake.pod_log(&ns, &loader_name, "loader")
    );
    assert!(
        output.contains(": OK"),
        "sha256sum -c output over attach: {output}"
    );
    let done = wait_pod(&client, &ns, &loader_name, |p| terminated(p).is_some()).await;
    assert_eq!(done.status.unwrap().phase.as_deref(), Some("Succeeded"));
    assert_eq!(
        fake.volume_file(&ns, "build-context", "context.tar.gz")
            .as_deref(),
        Some(targz.as_slice())
    );
    let log = fake.pod_log(&ns, &loader_name, "loader").unwrap();
    assert!(log.contains(": OK"), "sha256sum -c output: {log}");

    let jobs = Api::<Job>::namespaced(client.clone(), &ns);
    for (_, job) in &m.jobs {
        jobs.create(&pp, job).await.unwrap();
    }
    for (_, job) in &m.jobs {
        let name = job.metadata.name.clone().unwrap();
        let done = wait_job(&client, &ns, &name, Duration::from_secs(120)).await;
        assert_eq!(condition_types(&done)[1].0, "Complete", "{:?}", done.status);
    }
    let tags = blocking(|| registry.tags("app"));
    assert!(
        tags.contains(&"docker-latest".to_string()) && tags.contains(&"k8s-latest".to_string()),
        "{tags:?}"
    );
    validate_manifests(&fake.sent_manifests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_upload_fails_the_loaders_checksum() {
    let fake = FakeKube::start(FakeKubeOptions::default());
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let (root, targz, sha) = context(dir.path(), "FROM scratch\nCOPY hello.txt /\n");
    let m = manifests_in(
        "127.0.0.1:1",
        &root,
        &targz,
        &sha,
        "task-corrupt",
        ContextMode::Pvc,
    );
    let ns = m.namespace.metadata.name.clone().unwrap();
    let pp = PostParams::default();
    Api::<Namespace>::all(client.clone())
        .create(&pp, &m.namespace)
        .await
        .unwrap();
    let ContextObjects::Pvc { pvc, loader } = &m.context else {
        panic!()
    };
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns)
        .create(&pp, pvc)
        .await
        .unwrap();
    Api::<Pod>::namespaced(client.clone(), &ns)
        .create(&pp, loader)
        .await
        .unwrap();
    wait_pod(&client, &ns, "context-loader", |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    })
    .await;
    let (status, output) =
        attach_and_send(&client, &ns, "context-loader", b"not the context").await;
    assert_eq!(status, "Failure");
    assert!(output.contains("FAILED"), "{output}");
    let done = wait_pod(&client, &ns, "context-loader", |p| terminated(p).is_some()).await;
    assert_ne!(terminated(&done).unwrap().exit_code, 0);
    assert!(
        fake.volume_file(&ns, "build-context", "context.tar.gz")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_mode_kaniko_reads_the_context_from_attach() {
    let Some(registry) = tools() else { return };
    let fake = FakeKube::start(FakeKubeOptions::default());
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let (root, targz, sha) = context(dir.path(), "FROM scratch\nCOPY hello.txt /hello.txt\n");
    let m = manifests_in(
        &registry.host,
        &root,
        &targz,
        &sha,
        "task-stdin",
        ContextMode::Stdin,
    );
    let ns = m.namespace.metadata.name.clone().unwrap();
    let pp = PostParams::default();
    Api::<Namespace>::all(client.clone())
        .create(&pp, &m.namespace)
        .await
        .unwrap();
    if let Some(secret) = &m.registry_secret {
        Api::namespaced(client.clone(), &ns)
            .create(&pp, secret)
            .await
            .unwrap();
    }
    let (_, job) = &m.jobs[0];
    Api::<Job>::namespaced(client.clone(), &ns)
        .create(&pp, job)
        .await
        .unwrap();
    let name = job.metadata.name.clone().unwrap();
    let pod = job_pod(&client, &ns, &name).await.metadata.name.unwrap();
    wait_pod(&client, &ns, &pod, |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    })
    .await;
    let (status, output) = attach_and_send(&client, &ns, &pod, &targz).await;
    assert_eq!(status, "Success");
    assert!(output.contains("Pushing image to"), "{output}");
    let done = wait_job(&client, &ns, &name, Duration::from_secs(120)).await;
    assert_eq!(condition_types(&done)[1].0, "Complete");
    let digest = terminated(&job_pod(&client, &ns, &name).await)
        .unwrap()
        .message
        .unwrap();
    assert_eq!(
        blocking(|| registry.digest("app", "docker-latest")),
        Some(digest)
    );
}
