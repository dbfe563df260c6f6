//! Helpers shared by the fake's tests: contexts, manifests, waits and attach.

pub(crate) use std::path::{Path, PathBuf};
pub(crate) use std::time::{Duration, UNIX_EPOCH};

pub(crate) use futures_util::{AsyncBufReadExt, StreamExt, TryStreamExt};
pub(crate) use harness::fake_kube::{
    DenyRule, FakeKube, FakeKubeOptions, Faults, validate_manifests,
};
pub(crate) use harness::registry::{Registry, require_program};
pub(crate) use hr_cluster::TaskIds;
pub(crate) use hr_image::context::{ContextOptions, pack};
pub(crate) use hr_image::kaniko::{
    BuildManifests, BuildSpec, ContextMode, ContextObjects, KanikoConfig, TagTemplates, Variant,
    VariantSpec, build_manifests, dual_tags,
};
pub(crate) use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
pub(crate) use k8s_openapi::api::batch::v1::Job;
pub(crate) use k8s_openapi::api::core::v1::{
    ConfigMap, Event, LimitRange, Namespace, PersistentVolumeClaim, Pod, ResourceQuota,
};
pub(crate) use kube::api::{
    Api, AttachParams, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams,
};
pub(crate) use kube::runtime::watcher;
pub(crate) use serde_json::{Value, json};

pub(crate) const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A fake whose builds fail at once (`build_failure`), for tests of the API and the
/// controllers that build nothing.
pub(crate) fn fake_without_builder() -> FakeKube {
    FakeKube::start(FakeKubeOptions {
        faults: Faults {
            build_failure: Some("no builder in this test".into()),
            ..Faults::default()
        },
        ..FakeKubeOptions::default()
    })
}

/// A context folder with both Dockerfiles (`FROM scratch` + `COPY`), packed as the runner
/// packs it.
pub(crate) fn context(dir: &Path, dockerfile: &str) -> (PathBuf, Vec<u8>, String) {
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

pub(crate) fn manifests(
    host: &str,
    root: &Path,
    targz: &[u8],
    sha256: &str,
    task: &str,
) -> BuildManifests {
    manifests_in(host, root, targz, sha256, task, ContextMode::ConfigMap)
}

pub(crate) fn manifests_in(
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
pub(crate) async fn create_all(client: &kube::Client, m: &BuildManifests) -> String {
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

pub(crate) fn condition_types(job: &Job) -> Vec<(String, Option<String>)> {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.type_, c.reason))
        .collect()
}

pub(crate) fn finished(job: &Job) -> bool {
    condition_types(job)
        .iter()
        .any(|(t, _)| t == "Complete" || t == "Failed")
}

pub(crate) async fn wait_job(client: &kube::Client, ns: &str, name: &str, limit: Duration) -> Job {
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

pub(crate) async fn job_pod(client: &kube::Client, ns: &str, job: &str) -> Pod {
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

pub(crate) async fn wait_pod(
    client: &kube::Client,
    ns: &str,
    name: &str,
    ok: impl Fn(&Pod) -> bool,
) -> Pod {
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

pub(crate) fn terminated(p: &Pod) -> Option<k8s_openapi::api::core::v1::ContainerStateTerminated> {
    p.status.as_ref()?.container_statuses.as_ref()?[0]
        .state
        .as_ref()?
        .terminated
        .clone()
}

pub(crate) fn waiting_reason(p: &Pod) -> Option<String> {
    p.status.as_ref()?.container_statuses.as_ref()?[0]
        .state
        .as_ref()?
        .waiting
        .as_ref()?
        .reason
        .clone()
}

pub(crate) fn tools() -> Option<Registry> {
    if !require_program("buildah", "the fake kubelet builds with buildah") {
        return None;
    }
    tokio::task::block_in_place(Registry::start)
}

/// The registry's blocking client, from inside the test's runtime.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A Job whose build fails fast by fault, so the scheduling and pull faults can be seen
/// without buildah.
pub(crate) async fn quick_job(client: &kube::Client, ns: &str, name: &str, deadline: Option<i64>) {
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

/// Attaches to `pod`'s stdin, writes `bytes`, closes stdin, and returns the exit Status and
/// what the container printed after the attach.
pub(crate) async fn attach_and_send(
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

pub(crate) async fn create_namespace(client: &kube::Client, ns: &str) {
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
}

pub(crate) async fn create_quick_job(client: &kube::Client, ns: &str, name: &str) {
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "kaniko", "image": "kaniko",
                "args": ["--context=tar:///context/context.tar.gz", "--destination=127.0.0.1:1/x:y"]}]}}}
    }))
    .unwrap();
    Api::<Job>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &job)
        .await
        .unwrap();
}

pub(crate) async fn wait_event(client: &kube::Client, ns: &str, reason: &str) -> String {
    let events = Api::<Event>::namespaced(client.clone(), ns);
    for _ in 0..200 {
        let list = events.list(&ListParams::default()).await.unwrap();
        if let Some(e) = list
            .items
            .iter()
            .find(|e| e.reason.as_deref() == Some(reason))
        {
            return e.message.clone().unwrap_or_default();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no {reason} event in {ns}");
}
