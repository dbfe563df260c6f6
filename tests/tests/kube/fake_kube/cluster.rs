//! The simulated cluster and its faults: scheduling, image pulls, forced build failures,
//! deadlines, namespace termination, quotas and limit ranges, RBAC, API errors, deletion
//! propagation.

use super::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_deletion_terminates_then_removes_everything() {
    let faults = Faults {
        namespace_deletion_delay: Some(Duration::from_millis(600)),
        ..Faults::default()
    };
    let fake = FakeKube::start(FakeKubeOptions {
        faults,
        ..FakeKubeOptions::default()
    });
    let client = fake.client();
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "gone"}})).unwrap(),
        )
        .await
        .unwrap();
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "gone");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "a"}})).unwrap(),
    )
    .await
    .unwrap();
    let answer = namespaces
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap();
    let ns = answer.left().expect("the namespace, as it terminates");
    assert!(ns.metadata.deletion_timestamp.is_some());
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    assert!(
        fake.namespaces()
            .contains(&("gone".to_string(), "Terminating".to_string()))
    );
    match cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "b"}})).unwrap(),
        )
        .await
        .unwrap_err()
    {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
            assert!(
                s.message.contains("because it is being terminated"),
                "{}",
                s.message
            );
        }
        other => panic!("{other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!fake.namespaces().iter().any(|(n, _)| n == "gone"));
    assert!(fake.objects("ConfigMap", Some("gone")).is_empty());
    assert!(namespaces.get_opt("gone").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_then_image_pull_failure_then_forced_build_failure() {
    let faults = Faults {
        unschedulable: true,
        image_pull_failure: true,
        build_failure: Some("injected".into()),
        ..Faults::default()
    };
    let fake = FakeKube::start(FakeKubeOptions {
        faults,
        ..FakeKubeOptions::default()
    });
    let client = fake.client();
    quick_job(&client, "faults", "j", None).await;
    let pod = job_pod(&client, "faults", "j").await;
    let name = pod.metadata.name.unwrap();
    let p = wait_pod(&client, "faults", &name, |p| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter().any(|c| {
                    c.type_ == "PodScheduled"
                        && c.status == "False"
                        && c.reason.as_deref() == Some("Unschedulable")
                })
            })
    })
    .await;
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    let events = Api::<Event>::namespaced(client.clone(), "faults")
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .unwrap();
    let scheduling = events
        .items
        .iter()
        .find(|e| e.reason.as_deref() == Some("FailedScheduling"))
        .expect("a FailedScheduling event");
    assert_eq!(scheduling.type_.as_deref(), Some("Warning"));
    assert!(
        scheduling
            .message
            .as_deref()
            .unwrap()
            .starts_with("0/1 nodes are available")
    );
    fake.update_faults(|f| f.unschedulable = false);
    wait_pod(&client, "faults", &name, |p| {
        waiting_reason(p).as_deref() == Some("ErrImagePull")
    })
    .await;
    wait_pod(&client, "faults", &name, |p| {
        waiting_reason(p).as_deref() == Some("ImagePullBackOff")
    })
    .await;
    let pods = Api::<Pod>::namespaced(client.clone(), "faults");
    match pods.logs(&name, &LogParams::default()).await.unwrap_err() {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 400);
            assert!(
                s.message
                    .contains("is waiting to start: trying and failing to pull image"),
                "{}",
                s.message
            );
        }
        other => panic!("{other:?}"),
    }
    fake.update_faults(|f| f.image_pull_failure = false);
    let job = wait_job(&client, "faults", "j", Duration::from_secs(10)).await;
    let reasons: Vec<String> = Api::<Event>::namespaced(client.clone(), "faults")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    for r in [
        "SuccessfulCreate",
        "FailedScheduling",
        "Scheduled",
        "Pulling",
        "Failed",
        "BackOff",
        "Started",
        "BackoffLimitExceeded",
    ] {
        assert!(
            reasons.iter().any(|x| x == r),
            "no {r} event in {reasons:?}"
        );
    }
    assert_eq!(
        condition_types(&job)[1],
        (
            "Failed".to_string(),
            Some("BackoffLimitExceeded".to_string())
        )
    );
    assert!(
        fake.pod_log("faults", &name, "kaniko")
            .unwrap()
            .contains("injected")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_deadline_kills_the_pod_and_fails_the_job() {
    let faults = Faults {
        unschedulable: true,
        ..Faults::default()
    };
    let fake = FakeKube::start(FakeKubeOptions {
        faults,
        ..FakeKubeOptions::default()
    });
    let client = fake.client();
    quick_job(&client, "late", "j", Some(1)).await;
    let job = wait_job(&client, "late", "j", Duration::from_secs(10)).await;
    assert_eq!(
        condition_types(&job),
        vec![
            (
                "FailureTarget".to_string(),
                Some("DeadlineExceeded".to_string())
            ),
            ("Failed".to_string(), Some("DeadlineExceeded".to_string())),
        ]
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        fake.objects("pods", Some("late")).is_empty(),
        "the deadline deletes the pod"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_rbac_denials_and_job_deletion_propagate() {
    let fake = FakeKube::start(FakeKubeOptions::default());
    let client = fake.client();
    fake.fail_next("GET", "/namespaces/default", 1);
    let namespaces = Api::<Namespace>::all(client.clone());
    match namespaces.get("default").await.unwrap_err() {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (500, "InternalError")),
        other => panic!("{other:?}"),
    }
    assert!(
        namespaces.get("default").await.is_ok(),
        "only the next request fails"
    );

    fake.update_faults(|f| f.deny.push(DenyRule::new("create", "jobs")));
    let ssar = |verb: &str, resource: &str| SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                resource: Some(resource.into()),
                group: Some("batch".into()),
                namespace: Some("default".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let reviews = Api::<SelfSubjectAccessReview>::all(client.clone());
    let denied = reviews
        .create(&PostParams::default(), &ssar("create", "jobs"))
        .await
        .unwrap();
    assert!(!denied.status.unwrap().allowed);
    let allowed = reviews
        .create(&PostParams::default(), &ssar("delete", "jobs"))
        .await
        .unwrap();
    assert!(allowed.status.unwrap().allowed);
    let job: Job = serde_json::from_value(json!({"metadata": {"name": "j"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}})).unwrap();
    let jobs = Api::<Job>::namespaced(client.clone(), "default");
    match jobs.create(&PostParams::default(), &job).await.unwrap_err() {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden")),
        other => panic!("{other:?}"),
    }
    fake.update_faults(|f| f.deny.clear());
    fake.update_faults(|f| f.unschedulable = true);
    jobs.create(&PostParams::default(), &job).await.unwrap();
    job_pod(&client, "default", "j").await;
    jobs.delete("j", &DeleteParams::background()).await.unwrap();
    for _ in 0..100 {
        if fake.objects("Pod", Some("default")).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        fake.objects("Pod", Some("default")).is_empty(),
        "background deletion removes the pods"
    );
    assert!(fake.objects("Job", Some("default")).is_empty());
    // Foreground: the Job shows deletionTimestamp and the foregroundDeletion finalizer
    // until its pods are gone; no propagation policy orphans them (the batch/v1 default).
    jobs.create(&PostParams::default(), &job).await.unwrap();
    job_pod(&client, "default", "j").await;
    let answer = jobs.delete("j", &DeleteParams::foreground()).await.unwrap();
    let marked = answer
        .left()
        .expect("the Job, marked for foreground deletion");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(
        marked.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_string()])
    );
    for _ in 0..100 {
        if fake.objects("Job", Some("default")).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(fake.objects("Job", Some("default")).is_empty());
    assert!(fake.objects("Pod", Some("default")).is_empty());
    jobs.create(&PostParams::default(), &job).await.unwrap();
    let orphan = job_pod(&client, "default", "j")
        .await
        .metadata
        .name
        .unwrap();
    jobs.delete("j", &DeleteParams::default()).await.unwrap();
    let kept = fake
        .object("Pod", "default", &orphan)
        .expect("the orphaned pod stays");
    assert!(kept["metadata"].get("ownerReferences").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_and_limit_ranges_admit_pods_like_the_api_server() {
    let fake = fake_without_builder();
    let client = fake.client();
    // A quota that tracks limits.memory, and no default: the pod is refused.
    create_namespace(&client, "quota").await;
    let quotas = Api::<ResourceQuota>::namespaced(client.clone(), "quota");
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "q"}, "spec": {"hard": {"pods": "1", "limits.memory": "6Gi"}}
    }))
    .unwrap();
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    create_quick_job(&client, "quota", "first").await;
    let failed_create = wait_event(&client, "quota", "FailedCreate").await;
    assert!(
        failed_create.contains("failed quota: q: must specify limits.memory"),
        "{failed_create}"
    );
    // A LimitRange default lets it in; the next Job waits for the pod slot.
    let lr: LimitRange = serde_json::from_value(json!({
        "metadata": {"name": "defaults"},
        "spec": {"limits": [{"type": "Container", "default": {"memory": "4Gi"}}]}
    }))
    .unwrap();
    Api::<LimitRange>::namespaced(client.clone(), "quota")
        .create(&PostParams::default(), &lr)
        .await
        .unwrap();
    let first = job_pod(&client, "quota", "first").await;
    let limits = first.spec.unwrap().containers[0].resources.clone().unwrap();
    assert_eq!(limits.limits.unwrap()["memory"].0, "4Gi");
    assert_eq!(limits.requests.unwrap()["memory"].0, "4Gi");
    wait_job(&client, "quota", "first", Duration::from_secs(10)).await;
    create_quick_job(&client, "quota", "second").await;
    wait_job(&client, "quota", "second", Duration::from_secs(10)).await;
    let used = quotas.get("q").await.unwrap().status.unwrap().used.unwrap();
    assert_eq!(used["pods"].0, "1");
    // Two pods at once exceed `pods: 1`.
    let p: Pod = serde_json::from_value(json!({"metadata": {"name": "p1"}, "spec": {"containers": [{"name": "c", "image": "x", "command": ["sh", "-c", "sleep 5"], "resources": {"limits": {"memory": "1Gi"}}}]}})).unwrap();
    let pods = Api::<Pod>::namespaced(client.clone(), "quota");
    pods.create(&PostParams::default(), &p).await.unwrap();
    let mut p2 = p.clone();
    p2.metadata.name = Some("p2".into());
    match pods.create(&PostParams::default(), &p2).await.unwrap_err() {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
            assert_eq!(
                s.message,
                "pods \"p2\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Pod Security `baseline`/`restricted` from the namespace label, a LimitRange's `max`
/// defaulted into `default` (SetDefaults_LimitRangeItem) but a `Pod` item or a
/// `maxLimitRequestRatio` requiring limits, with the API server's texts; the Job
/// controller records the refusal as `FailedCreate` on the Job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_security_and_limit_ranges_refuse_pods_with_the_api_servers_texts() {
    let fake = fake_without_builder();
    let client = fake.client();
    let refusal = |pods: Api<Pod>, spec: serde_json::Value| async move {
        let p: Pod =
            serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap();
        match pods.create(&PostParams::default(), &p).await {
            Err(kube::Error::Api(s)) => {
                assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
                Some(s.message)
            }
            Ok(_) => None,
            Err(other) => panic!("{other:?}"),
        }
    };
    let root =
        json!({"containers": [{"name": "kaniko", "image": "x", "command": ["sh", "-c", "true"]}]});
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "strict", "labels": {
                "pod-security.kubernetes.io/enforce": "restricted"}}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let strict = Api::<Pod>::namespaced(client.clone(), "strict");
    assert_eq!(
        refusal(strict.clone(), root.clone()).await.as_deref(),
        Some(
            "pods \"p\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"kaniko\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"kaniko\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"kaniko\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"kaniko\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        )
    );
    let compliant = json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": "x", "command": ["sh", "-c", "true"],
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]});
    assert_eq!(refusal(strict.clone(), compliant).await, None);
    // The Job controller's pod is refused too, recorded on the Job.
    create_quick_job(&client, "strict", "job").await;
    let failed_create = wait_event(&client, "strict", "FailedCreate").await;
    assert!(
        failed_create.starts_with("Error creating: pods \"job-")
            && failed_create
                .contains("\" is forbidden: violates PodSecurity \"restricted:latest\": "),
        "{failed_create}"
    );

    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "base", "labels": {
                "pod-security.kubernetes.io/enforce": "baseline"}}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let base = Api::<Pod>::namespaced(client.clone(), "base");
    assert_eq!(
        refusal(base.clone(), root.clone()).await,
        None,
        "root is baseline"
    );
    let privileged = json!({"hostNetwork": true, "containers": [{"name": "c", "image": "x",
        "securityContext": {"privileged": true}}]});
    assert_eq!(
        refusal(base, privileged).await.as_deref(),
        Some(
            "pods \"p\" is forbidden: violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true), privileged (container \"c\" must not set securityContext.privileged=true)"
        )
    );

    // A Container `max` becomes the default limit; a ratio or a Pod `max` needs limits.
    create_namespace(&client, "limits").await;
    let lr: LimitRange = serde_json::from_value(json!({
        "metadata": {"name": "lr"},
        "spec": {"limits": [{"type": "Container", "max": {"memory": "2Gi"}}]}
    }))
    .unwrap();
    let ranges = Api::<LimitRange>::namespaced(client.clone(), "limits");
    let stored = ranges.create(&PostParams::default(), &lr).await.unwrap();
    let item = &stored.spec.unwrap().limits[0];
    assert_eq!(item.default.as_ref().unwrap()["memory"].0, "2Gi");
    assert_eq!(item.default_request.as_ref().unwrap()["memory"].0, "2Gi");
    let limits = Api::<Pod>::namespaced(client.clone(), "limits");
    assert_eq!(refusal(limits.clone(), root.clone()).await, None);
    limits.delete("p", &Default::default()).await.unwrap();
    let ratio: LimitRange = serde_json::from_value(json!({
        "metadata": {"name": "ratio"},
        "spec": {"limits": [{"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}]}
    }))
    .unwrap();
    ranges.create(&PostParams::default(), &ratio).await.unwrap();
    let requests_cpu = json!({"containers": [{"name": "c", "image": "x", "command": ["sh", "-c", "true"],
        "resources": {"requests": {"cpu": "500m"}}}]});
    assert_eq!(
        refusal(limits.clone(), requests_cpu).await.as_deref(),
        Some(
            "pods \"p\" is forbidden: cpu max limit to request ratio per Container is 2, but no limit is specified or limit is 0"
        )
    );
    let both = json!({"containers": [{"name": "c", "image": "x", "command": ["sh", "-c", "true"],
        "resources": {"limits": {"memory": "4Gi"}}}]});
    assert_eq!(
        refusal(limits, both).await.as_deref(),
        Some(
            "pods \"p\" is forbidden: [maximum memory usage per Container is 2Gi, but limit is 4Gi, cpu max limit to request ratio per Container is 2, but no request is specified or request is 0]"
        )
    );

    // Claims count against `persistentvolumeclaims` and `requests.storage`.
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "storage"},
        "spec": {"hard": {"persistentvolumeclaims": "1", "requests.storage": "1Gi"}}
    }))
    .unwrap();
    Api::<ResourceQuota>::namespaced(client.clone(), "limits")
        .create(&PostParams::default(), &quota)
        .await
        .unwrap();
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), "limits");
    let claim = |name: &str, size: &str| -> PersistentVolumeClaim {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}))
        .unwrap()
    };
    match claims
        .create(&PostParams::default(), &claim("big", "2Gi"))
        .await
    {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
            assert_eq!(
                s.message,
                "persistentvolumeclaims \"big\" is forbidden: exceeded quota: storage, requested: requests.storage=2Gi, used: requests.storage=0, limited: requests.storage=1Gi"
            );
        }
        other => panic!("{other:?}"),
    }
    claims
        .create(&PostParams::default(), &claim("small", "512Mi"))
        .await
        .unwrap();
    match claims
        .create(&PostParams::default(), &claim("second", "1Mi"))
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!(
            s.message,
            "persistentvolumeclaims \"second\" is forbidden: exceeded quota: storage, requested: persistentvolumeclaims=1, used: persistentvolumeclaims=1, limited: persistentvolumeclaims=1"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_kills_a_running_container_with_137() {
    let fake = FakeKube::start(FakeKubeOptions::default());
    let client = fake.client();
    create_namespace(&client, "slow").await;
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "sleeper"},
        "spec": {"backoffLimit": 0, "activeDeadlineSeconds": 1, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "echo started; sleep 37.25; echo never"]}]}}}
    }))
    .unwrap();
    let pods = Api::<Pod>::namespaced(client.clone(), "slow");
    let stream = watcher(pods, watcher::Config::default());
    let mut stream = std::pin::pin!(stream);
    Api::<Job>::namespaced(client.clone(), "slow")
        .create(&PostParams::default(), &job)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut last = None;
    while let Some(event) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
    {
        match event.unwrap() {
            watcher::Event::Apply(p) => last = Some(p),
            watcher::Event::Delete(p) => {
                last = Some(p);
                break;
            }
            _ => {}
        }
    }
    let pod = last.unwrap();
    let t = terminated(&pod).expect("the killed container's state");
    assert_eq!((t.exit_code, t.reason.as_deref()), (137, Some("Error")));
    assert!(pod.metadata.deletion_timestamp.is_some());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the 37 s sleep was killed, not awaited"
    );
    let log = fake.pod_log("slow", pod.metadata.name.as_deref().unwrap(), "main");
    assert!(log.is_none(), "a removed pod's log goes with it");
    let job = wait_job(&client, "slow", "sleeper", Duration::from_secs(5)).await;
    assert_eq!(
        condition_types(&job)[0].1.as_deref(),
        Some("DeadlineExceeded")
    );
    // The whole process group went, not just the shell. A killed process can linger in
    // /proc for a moment on a loaded machine until it is reaped, so look for a while; the
    // sleep itself would last 37 s.
    let sleeping = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .any(|c| c == b"sleep\x0037.25\x00")
    };
    let until = std::time::Instant::now() + Duration::from_secs(15);
    while sleeping() && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!sleeping(), "the container's sleep outlived the kill");
}
