#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The fake Kubernetes API server and its kubelet, driven with kube-rs: real Kaniko
//! manifests build and push to a real registry, failures and deadlines end Jobs the way
//! Kubernetes 1.31+ ends them, errors carry real Status bodies, watches stream events,
//! namespaces terminate, and every injected fault shows.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use futures_util::{AsyncBufReadExt, StreamExt, TryStreamExt};
use harness::fake_kube::{DenyRule, FakeKube, FakeKubeOptions, Faults, validate_manifests};
use harness::registry::{Registry, require_program};
use hybrid_runner::build::context::{ContextOptions, pack};
use hybrid_runner::build::kaniko::{
    BuildManifests, BuildSpec, ContextMode, ContextObjects, KanikoConfig, TagTemplates, TaskIds,
    Variant, VariantSpec, build_manifests, dual_tags,
};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, PersistentVolumeClaim, Pod};
use kube::api::{
    Api, AttachParams, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams,
};
use kube::runtime::watcher;
use serde_json::{Value, json};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A context folder with both Dockerfiles (`FROM scratch` + `COPY`), packed as the runner
/// packs it.
fn context(dir: &Path, dockerfile: &str) -> (PathBuf, Vec<u8>, String) {
    let root = dir.join("ctx");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("hello.txt"), "hello from the fake kubelet\n").unwrap();
    std::fs::write(root.join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(
        root.join("Dockerfile.k8s"),
        "FROM scratch\nCOPY hello.txt /k8s.txt\n",
    )
    .unwrap();
    let mut bytes = Vec::new();
    let packed = pack(&ContextOptions::new(&root), &mut bytes).unwrap();
    (root, bytes, packed.sha256)
}

fn manifests(host: &str, root: &Path, targz: &[u8], sha256: &str, task: &str) -> BuildManifests {
    manifests_in(host, root, targz, sha256, task, ContextMode::ConfigMap)
}

fn manifests_in(
    host: &str,
    root: &Path,
    targz: &[u8],
    sha256: &str,
    task: &str,
    mode: ContextMode,
) -> BuildManifests {
    let image = format!("{host}/app");
    let variants = dual_tags(&image, SHA, &Variant::ALL, &TagTemplates::default())
        .into_iter()
        .map(|(variant, tags)| VariantSpec {
            variant,
            dockerfile: variant.default_dockerfile().to_string(),
            tags,
        })
        .collect();
    let spec = BuildSpec {
        image,
        sha: SHA.to_string(),
        context_dir: root.to_path_buf(),
        variants,
        build_args: vec![("VERSION".into(), "1.2".into())],
        target: None,
        labels: vec![("org.opencontainers.image.revision".into(), SHA.into())],
        timeout: Duration::from_secs(600),
    };
    let config = KanikoConfig {
        insecure_registries: vec![host.to_string()],
        registry_secret: Some(br#"{"auths":{}}"#.to_vec()),
        context_mode: mode,
        ..KanikoConfig::default()
    };
    let ids = TaskIds {
        task: task.to_string(),
        job: "build".to_string(),
        started_at: UNIX_EPOCH + Duration::from_secs(1_798_761_600),
    };
    build_manifests(&spec, &config, &ids, targz, sha256).unwrap()
}

/// Creates every object of a build, in order, through kube-rs.
async fn create_all(client: &kube::Client, m: &BuildManifests) -> String {
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
    match &m.context {
        ContextObjects::ConfigMap(cm) => {
            Api::<ConfigMap>::namespaced(client.clone(), &ns)
                .create(&pp, cm)
                .await
                .unwrap();
        }
        other => panic!("expected a ConfigMap context, got {other:?}"),
    }
    let jobs = Api::<Job>::namespaced(client.clone(), &ns);
    for (_, job) in &m.jobs {
        jobs.create(&pp, job).await.unwrap();
    }
    ns
}

fn condition_types(job: &Job) -> Vec<(String, Option<String>)> {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.type_, c.reason))
        .collect()
}

fn finished(job: &Job) -> bool {
    condition_types(job)
        .iter()
        .any(|(t, _)| t == "Complete" || t == "Failed")
}

async fn wait_job(client: &kube::Client, ns: &str, name: &str, limit: Duration) -> Job {
    let jobs = Api::<Job>::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let job = jobs.get(name).await.unwrap();
        if finished(&job) {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {name} did not finish in {limit:?}: {:?}",
            job.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn job_pod(client: &kube::Client, ns: &str, job: &str) -> Pod {
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    for _ in 0..200 {
        let list = pods
            .list(&ListParams::default().labels(&format!("job-name={job}")))
            .await
            .unwrap();
        if let Some(p) = list.items.into_iter().next() {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no pod for job {job}");
}

async fn wait_pod(client: &kube::Client, ns: &str, name: &str, ok: impl Fn(&Pod) -> bool) -> Pod {
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    for _ in 0..400 {
        let p = pods.get(name).await.unwrap();
        if ok(&p) {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "pod {name} never reached the expected state: {:?}",
        pods.get(name).await.unwrap().status
    );
}

fn terminated(p: &Pod) -> Option<k8s_openapi::api::core::v1::ContainerStateTerminated> {
    p.status.as_ref()?.container_statuses.as_ref()?[0]
        .state
        .as_ref()?
        .terminated
        .clone()
}

fn waiting_reason(p: &Pod) -> Option<String> {
    p.status.as_ref()?.container_statuses.as_ref()?[0]
        .state
        .as_ref()?
        .waiting
        .as_ref()?
        .reason
        .clone()
}

fn tools() -> Option<Registry> {
    if !require_program("buildah", "the fake kubelet builds with buildah") {
        return None;
    }
    tokio::task::block_in_place(Registry::start)
}

/// The registry's blocking client, from inside the test's runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

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
async fn errors_carry_real_status_bodies() {
    let fake = FakeKube::start(FakeKubeOptions::default());
    let client = fake.client();
    let namespaces = Api::<Namespace>::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "dup"}})).unwrap();
    let created = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    let err = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));
            assert_eq!(s.message, "namespaces \"dup\" already exists");
        }
        other => panic!("{other:?}"),
    }
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "dup");
    match cms.get("nope").await.unwrap_err() {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
            assert_eq!(s.message, "configmaps \"nope\" not found");
        }
        other => panic!("{other:?}"),
    }
    // Creating in a namespace that does not exist.
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "a"}})).unwrap();
    match Api::<ConfigMap>::namespaced(client.clone(), "absent")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap_err()
    {
        kube::Error::Api(s) => assert_eq!(
            (s.code, s.message.as_str()),
            (404, "namespaces \"absent\" not found")
        ),
        other => panic!("{other:?}"),
    }
    // The raw body is a Status object.
    let raw: Value = reqwest::get(format!(
        "{}/api/v1/namespaces/dup/configmaps/nope",
        fake.url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(raw["kind"], "Status");
    assert_eq!(raw["status"], "Failure");
    assert_eq!(raw["details"]["kind"], "configmaps");
    // Merge patch, list by label, replace conflict.
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "a", "labels": {"app": "x"}}, "data": {"k": "v"}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let patched = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k2": "v2"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap().len(), 2);
    let listed = cms
        .list(&ListParams::default().labels("app=x"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(
        cms.list(&ListParams::default().labels("app=y"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        cms.list(&ListParams::default().fields("metadata.name=a"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let mut stale = listed.items[0].clone();
    stale.metadata.resource_version = Some("1".into());
    match cms
        .replace("a", &PostParams::default(), &stale)
        .await
        .unwrap_err()
    {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict")),
        other => panic!("{other:?}"),
    }
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.path == "/api/v1/namespaces/dup/configmaps/a")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_watcher_sees_adds_modifications_and_deletes() {
    let fake = FakeKube::start(FakeKubeOptions::default());
    let client = fake.client();
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let stream = watcher(cms.clone(), watcher::Config::default().labels("app=w"));
    let mut stream = std::pin::pin!(stream);
    let writer = tokio::spawn({
        let cms = cms.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            cms.create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "w", "labels": {"app": "w"}}}))
                    .unwrap(),
            )
            .await
            .unwrap();
            cms.create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "other"}})).unwrap(),
            )
            .await
            .unwrap();
            cms.patch(
                "w",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"a": "1"}})),
            )
            .await
            .unwrap();
            cms.delete("w", &DeleteParams::default()).await.unwrap();
        }
    });
    let mut seen = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
    {
        let label = match event.unwrap() {
            watcher::Event::Init => "init".to_string(),
            watcher::Event::InitApply(o) => format!("init-apply {}", o.metadata.name.unwrap()),
            watcher::Event::InitDone => "init-done".to_string(),
            watcher::Event::Apply(o) => format!(
                "apply {} {}",
                o.metadata.name.unwrap(),
                o.data.map_or(0, |d| d.len())
            ),
            watcher::Event::Delete(o) => format!("delete {}", o.metadata.name.unwrap()),
        };
        let end = label.starts_with("delete");
        seen.push(label);
        if end {
            break;
        }
    }
    writer.await.unwrap();
    assert_eq!(
        seen,
        vec!["init", "init-done", "apply w 0", "apply w 1", "delete w"]
    );
    let list = fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/configmaps") && r.method == "GET")
        .unwrap();
    assert_eq!(list.query_value("limit"), Some("500"));
    let watch = fake
        .requests()
        .into_iter()
        .find(|r| r.query_value("watch").is_some())
        .unwrap();
    assert_eq!(watch.query_value("allowWatchBookmarks"), Some("true"));
    assert!(watch.query_value("resourceVersion").is_some());
}

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

/// A Job whose build fails fast by fault, so the scheduling and pull faults can be seen
/// without buildah.
async fn quick_job(client: &kube::Client, ns: &str, name: &str, deadline: Option<i64>) {
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "activeDeadlineSeconds": deadline, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "kaniko", "image": "ghcr.io/osscontainertools/kaniko:v1.28.3",
                "args": ["--context=tar:///context/context.tar.gz", "--destination=127.0.0.1:1/x:y"]}]}}}
    }))
    .unwrap();
    Api::<Job>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &job)
        .await
        .unwrap();
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
}

/// Attaches to `pod`'s stdin, writes `bytes`, closes stdin, and returns the exit Status and
/// what the container printed after the attach.
async fn attach_and_send(
    client: &kube::Client,
    ns: &str,
    pod: &str,
    bytes: &[u8],
) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let ap = AttachParams::default()
        .stdin(true)
        .stdout(true)
        .stderr(false);
    let mut attached = pods.attach(pod, &ap).await.unwrap();
    let mut stdin = attached.stdin().unwrap();
    let mut stdout = attached.stdout().unwrap();
    let output = tokio::spawn(async move {
        let mut text = String::new();
        stdout.read_to_string(&mut text).await.unwrap();
        text
    });
    let status = attached.take_status().unwrap();
    for chunk in bytes.chunks(4096) {
        stdin.write_all(chunk).await.unwrap();
    }
    stdin.shutdown().await.unwrap();
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(60), status)
        .await
        .unwrap();
    let status = status.expect("an exit Status on the error channel");
    let output = tokio::time::timeout(Duration::from_secs(10), output)
        .await
        .unwrap()
        .unwrap();
    (status.status.unwrap_or_default(), output)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_from_the_kubeconfig_waits_on_job_and_namespace_conditions() {
    use kube::runtime::wait::{await_condition, conditions};
    let faults = Faults {
        build_failure: Some("no builder in this test".into()),
        ..Faults::default()
    };
    let fake = FakeKube::start(FakeKubeOptions {
        faults,
        ..FakeKubeOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let path = fake.write_kubeconfig(dir.path());
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    assert_eq!(config.cluster_url.to_string(), format!("{}/", fake.url()));
    let client = kube::Client::try_from(config).unwrap();
    let info = client.apiserver_version().await.unwrap();
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "31"));

    quick_job(&client, "cond", "j", None).await;
    let jobs = Api::<Job>::namespaced(client.clone(), "cond");
    let failed = |obj: Option<&Job>| {
        obj.and_then(|j| j.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Failed" && c.status == "True"))
    };
    let job = tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(jobs.clone(), "j", failed),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert_eq!(job.status.unwrap().failed, Some(1));
    assert!(
        fake.requests().iter().any(
            |r| r.query_value("fieldSelector") == Some("metadata.name=j")
                && r.query_value("watch").is_some()
        ),
        "await_condition watches one object by field selector"
    );

    let namespaces = Api::<Namespace>::all(client.clone());
    let uid = namespaces.get("cond").await.unwrap().metadata.uid.unwrap();
    namespaces
        .delete("cond", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(namespaces, "cond", conditions::is_deleted(&uid)),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(fake.objects("Job", Some("cond")).is_empty());
    assert!(fake.objects("Pod", Some("cond")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_list_watcher_gets_initial_events_and_pod_phases() {
    let faults = Faults {
        build_failure: Some("no builder in this test".into()),
        ..Faults::default()
    };
    let fake = FakeKube::start(FakeKubeOptions {
        faults,
        ..FakeKubeOptions::default()
    });
    let client = fake.client();
    quick_job(&client, "phases", "j", None).await;
    let pods = Api::<Pod>::namespaced(client.clone(), "phases");
    let stream = watcher(pods, watcher::Config::default().streaming_lists());
    let mut stream = std::pin::pin!(stream);
    let mut phases = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
    {
        let pod = match event.unwrap() {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => p,
            _ => continue,
        };
        let phase = pod.status.and_then(|s| s.phase).unwrap_or_default();
        if phases.last() != Some(&phase) {
            phases.push(phase.clone());
        }
        if phase == "Failed" {
            break;
        }
    }
    assert!(
        phases.ends_with(&["Running".to_string(), "Failed".to_string()]),
        "{phases:?}"
    );
    let watch = fake
        .requests()
        .into_iter()
        .find(|r| r.query_value("sendInitialEvents") == Some("true"))
        .expect("a streaming-list watch");
    assert_eq!(
        watch.query_value("resourceVersionMatch"),
        Some("NotOlderThan")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_watch_makes_the_watcher_list_again() {
    let faults = Faults {
        expired_watches: 1,
        ..Faults::default()
    };
    let fake = FakeKube::start(FakeKubeOptions {
        faults,
        ..FakeKubeOptions::default()
    });
    let client = fake.client();
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let stream = watcher(cms.clone(), watcher::Config::default());
    let mut stream = std::pin::pin!(stream);
    let mut seen = Vec::new();
    let mut created = false;
    while let Some(event) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
    {
        match event {
            Err(e) => seen.push(format!("error {e}")),
            Ok(watcher::Event::Init) => seen.push("init".into()),
            Ok(watcher::Event::InitDone) => {
                seen.push("init-done".into());
                if seen.iter().any(|s| s.starts_with("error")) && !created {
                    created = true;
                    let cm: ConfigMap =
                        serde_json::from_value(json!({"metadata": {"name": "after"}})).unwrap();
                    cms.create(&PostParams::default(), &cm).await.unwrap();
                }
            }
            Ok(watcher::Event::Apply(o)) => {
                seen.push(format!("apply {}", o.metadata.name.unwrap()));
                break;
            }
            Ok(_) => {}
        }
    }
    assert_eq!(seen[..2], ["init", "init-done"]);
    assert!(
        seen[2].contains("410") || seen[2].contains("too old"),
        "{seen:?}"
    );
    assert_eq!(seen[3..], ["init", "init-done", "apply after"]);
    let lists = fake
        .requests()
        .iter()
        .filter(|r| {
            r.method == "GET" && r.path.ends_with("/configmaps") && r.query_value("watch").is_none()
        })
        .count();
    assert_eq!(lists, 2, "the watcher listed again after the 410");
}
