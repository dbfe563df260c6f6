//! The rig of the pod step tests: the fake API server, the runner's task settings for
//! it, a task, and the assertions every test shares.

use std::time::Duration;

use harness::fake_kube::{FakeKube, FakeKubeOptions};
use hr_engine::events::{Event, EventSink};
use hr_engine::job::JobOutcome;
use hr_engine::labels::Label;
use hr_gitea::proto::runner::v1::Task;
use hr_gitea::proto::well_known::Struct;
use hr_gitea::task::{TaskSettings, run_task};
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "pod-secret-4f3e2d1c";
pub const TOKEN: &str = "task-token-a1b2c3d4";

pub use harness::fake_kube::sandbox_available;

pub struct Rig {
    pub fake: FakeKube,
    pub dir: tempfile::TempDir,
}

impl Rig {
    pub fn new(options: FakeKubeOptions) -> Rig {
        Rig {
            fake: FakeKube::start(options),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// [`Self::settings`] for an instance at `server` (see [`app_server`]): the checkout
    /// clones from the instance as the runner reaches it.
    pub fn settings_served_by(&self, server: &std::path::Path) -> TaskSettings {
        TaskSettings {
            instance: format!("file://{}/", server.display()),
            ..self.settings()
        }
    }

    pub fn settings(&self) -> TaskSettings {
        let builds = hr_engine::image_steps::BuildSettings {
            docker_shim: false,
            kubeconfig: Some(self.fake.write_kubeconfig(self.dir.path())),
            runner_id: "pod-runner".into(),
            namespace_prefix: "hr".into(),
            ..Default::default()
        };
        TaskSettings {
            instance: "https://gitea.example/".into(),
            runner_name: "pod-runner".into(),
            labels: Label::parse_list("linux:host,k8s:kubernetes,k8s-alpine:kubernetes://alpine:3")
                .unwrap(),
            capabilities: None,
            workdir_parent: self.dir.path().join("work"),
            action_cache: self.dir.path().join("actions"),
            envs: vec![("FROM_RUNNER_ENVS".into(), "configured".into())],
            builds,
            timeout: Duration::from_secs(600),
            pods: Default::default(),
            github_mirror: None,
            kubernetes_configured: true,
            cache: Default::default(),
            dialect: workflows::model::Dialect::Gitea,
        }
    }

    /// Every namespace this runner made is deleted (a deletion a guard started from its
    /// `Drop` may take a moment) and then gone.
    pub async fn assert_namespaces_deleted(&self) {
        let deleted = |ns: &str| {
            self.fake
                .requests()
                .iter()
                .any(|r| r.method == "DELETE" && r.path == format!("/api/v1/namespaces/{ns}"))
        };
        let created: Vec<String> = self
            .fake
            .sent_manifests()
            .iter()
            .filter(|m| m["kind"] == "Namespace")
            .map(|m| m["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert!(!created.is_empty(), "no job namespace was created");
        for ns in &created {
            for _ in 0..100 {
                if deleted(ns) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(deleted(ns), "namespace {ns} was not deleted");
        }
        let client = self.fake.client();
        let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
        for _ in 0..100 {
            let left: Vec<String> = api
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .filter_map(|n| n.metadata.name)
                .filter(|n| created.contains(n))
                .collect();
            if left.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the job namespaces {created:?} are still there");
    }

    /// No request carried a secret or the task token in its path or query.
    pub fn assert_no_secret_in_urls(&self) {
        for r in self.fake.requests() {
            let url = format!("{} {:?}", r.path, r.query);
            for secret in [SECRET, TOKEN] {
                assert!(!url.contains(secret), "a secret in {} {url}", r.method);
            }
        }
    }
}

pub fn task(id: i64, payload: &str) -> Task {
    let context: Struct = serde_json::from_value(serde_json::json!({
        "event": {}, "event_name": "push", "job": "build", "ref": "refs/heads/main",
        "repository": "org/app", "repository_owner": "org", "run_id": "9", "run_number": "1",
        "server_url": "https://gitea.example/", "sha": "0123456789abcdef0123456789abcdef01234567",
        "workflow": "ci.yml", "token": TOKEN,
    }))
    .unwrap();
    Task {
        id,
        workflow_payload: Some(payload.as_bytes().to_vec()),
        context: Some(context),
        secrets: [
            ("MY_SECRET".to_string(), SECRET.to_string()),
            ("GITHUB_TOKEN".to_string(), TOKEN.to_string()),
        ]
        .into(),
        ..Default::default()
    }
}

pub fn lines(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Log { line, .. } => Some(line.clone()),
            Event::Annotation { annotation, .. } => Some(annotation.message.clone()),
            _ => None,
        })
        .collect()
}

pub fn has(events: &[Event], wanted: &str) -> bool {
    lines(events).iter().any(|l| l == wanted)
}

pub async fn execute(task: Task, settings: &TaskSettings) -> (JobOutcome, Vec<Event>) {
    let (sink, mut rx) = EventSink::channel();
    let run = run_task(
        task,
        settings,
        sink,
        CancellationToken::new(),
        CancellationToken::new(),
    )
    .await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (run, events)
}

pub use harness::git::git;

/// The ClusterRole `generate-manifests` renders for `labels`, as the fake's allow-list.
pub fn granted_by_cluster_role(labels: &[&str]) -> Vec<harness::fake_kube::DenyRule> {
    let mut settings = hybrid_runner::deploy::DeploySettings::new(
        "https://gitea.example.com",
        "registry.example.com/hybrid-runner:0.1.0",
    );
    settings.labels = labels.iter().map(|l| l.to_string()).collect();
    let m = hybrid_runner::deploy::deploy_manifests(&settings).unwrap();
    let mut rules = Vec::new();
    for rule in m.cluster_role.rules.unwrap() {
        for resource in rule.resources.iter().flatten() {
            for verb in &rule.verbs {
                rules.push(harness::fake_kube::DenyRule::new(verb, resource));
            }
        }
    }
    rules
}

/// The task's repository as the instance serves it: `<dir>/server/org/app.git`, a bare
/// clone of a repository holding `files` on `main`. Returns the server folder (for
/// [`Rig::settings_served_by`]) and the commit.
pub fn app_server(dir: &std::path::Path, files: &[(&str, &str)]) -> (std::path::PathBuf, String) {
    let src = dir.join("src").join("app");
    let sha = harness::git::repo(&src, files);
    let server = dir.join("server");
    std::fs::create_dir_all(server.join("org")).unwrap();
    let source = src.display().to_string();
    git(&server, &["clone", "-q", "--bare", &source, "org/app.git"]);
    (server, sha)
}

/// Sets `key` of `task`'s context to `value`.
pub fn set_context(task: &mut Task, key: &str, value: &str) {
    let mut context: serde_json::Value =
        serde_json::to_value(task.context.take().unwrap()).unwrap();
    context[key] = serde_json::Value::String(value.to_string());
    task.context = Some(serde_json::from_value(context).unwrap());
}

/// A git repository at `<root>/<path>` holding `files`, tagged `v1`; returns its HEAD.
pub fn repository(root: &std::path::Path, path: &str, files: &[(&str, &str)]) -> String {
    let dir = root.join(path);
    let head = harness::git::repo(&dir, files);
    git(&dir, &["tag", "v1"]);
    head
}

/// A loopback registry (requiring `user:password` when `auth` is given) and what `push`
/// puts into it, made off the async runtime; `None` (after a notice) where the sandbox,
/// the registry or the image tools are missing outside CI.
pub async fn registry_with<T: Send + 'static>(
    auth: Option<(&'static str, &'static str)>,
    push: impl FnOnce(&harness::registry::Registry) -> Option<T> + Send + 'static,
) -> Option<(harness::registry::Registry, T)> {
    if !sandbox_available() {
        return None;
    }
    tokio::task::spawn_blocking(move || {
        let registry = match auth {
            Some((user, password)) => harness::registry::Registry::start_with_auth(user, password)?,
            None => harness::registry::Registry::start()?,
        };
        let pushed = push(&registry)?;
        Some((registry, pushed))
    })
    .await
    .unwrap()
}

/// Runs `task` like [`execute`], calling `on_event` with each event as it comes (with
/// the token that cancels the task).
pub async fn execute_watching(
    task: Task,
    settings: &TaskSettings,
    mut on_event: impl FnMut(&Event, &CancellationToken),
) -> (JobOutcome, Vec<Event>) {
    let (sink, mut rx) = EventSink::channel();
    let cancel = CancellationToken::new();
    let job = run_task(
        task,
        settings,
        sink,
        cancel.clone(),
        CancellationToken::new(),
    );
    tokio::pin!(job);
    let mut events = Vec::new();
    let run = loop {
        tokio::select! {
            run = &mut job => break run,
            Some(event) = rx.recv() => {
                on_event(&event, &cancel);
                events.push(event);
            }
        }
    };
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (run, events)
}
