//! `uses: hybrid-runner/deploy@v1` end to end: the real `hybrid-runner exec` against the
//! fake API server's Deployment controller, whose pods look their images up in a real
//! registry on loopback (present: Running; absent: ImagePullBackOff; labelled with the
//! fake's crash label: CrashLoopBackOff, the label's text as the log). The cluster grants
//! only the rules of the Role `generate-manifests --deploy-namespaces` renders, so these
//! runs also show that Role is enough. Skipped with a notice when docker-registry is
//! missing outside CI.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use harness::exec_run::ExecRun;
use harness::fake_kube::{CRASH_LABEL, DenyRule, FakeKube, FakeKubeOptions};
use harness::images::OciImage;
use harness::registry::Registry;
use hybrid_runner::deploy::{DeploySettings, deploy_manifests};

struct Site {
    registry: Registry,
    kube: FakeKube,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

/// A config-only image; `labels` make each one a different digest.
fn image(labels: Value) -> OciImage {
    OciImage {
        config: json!({"architecture": "amd64", "os": "linux",
                       "config": {"Labels": labels},
                       "rootfs": {"type": "layers", "diff_ids": []}}),
        layers: Vec::new(),
    }
}

impl Site {
    /// A registry, the fake cluster with namespace `shop` and Deployment `shop/api` rolled
    /// out on `shop/api:old`; then the cluster grants only the deploy Role's rules.
    fn start() -> Option<Site> {
        let registry = Registry::start()?;
        let kube = FakeKube::start(FakeKubeOptions {
            crash_loop_back_off: Duration::from_millis(300),
            ..FakeKubeOptions::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = kube.write_kubeconfig(dir.path());
        let site = Site {
            registry,
            kube,
            dir,
            kubeconfig,
        };
        let old = image(json!({"version": "old"})).push(&site.registry, "shop/api", "old");
        site.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
        site.create(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"replicas": 2, "progressDeadlineSeconds": 60,
                     "selector": {"matchLabels": {"app": "api"}},
                     "template": {"metadata": {"labels": {"app": "api"}},
                                  "spec": {"containers": [{"name": "api", "image": old}]}}}}));
        site.wait_rolled_out();
        let mut settings = DeploySettings::new("https://gitea.example.com", "hybrid-runner:test");
        settings.deploy_namespaces = vec!["shop".to_string()];
        let manifests = deploy_manifests(&settings).unwrap();
        let mut rules = Vec::new();
        for rule in manifests.deploy_roles[0].0.rules.clone().unwrap() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    rules.push(DenyRule::new(verb, resource));
                }
            }
        }
        site.kube.update_faults(|f| f.allow_only = Some(rules));
        Some(site)
    }

    fn create(&self, object: Value) {
        let runtime = harness::kaniko::runtime();
        runtime.block_on(async {
            let client = self.kube.client();
            let object: kube::api::DynamicObject = serde_json::from_value(object).unwrap();
            let params = kube::api::PostParams::default();
            if object.types.as_ref().unwrap().kind == "Namespace" {
                let resource =
                    kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&());
                let api: kube::Api<kube::api::DynamicObject> =
                    kube::Api::all_with(client, &resource);
                api.create(&params, &object).await.unwrap();
            } else {
                let resource =
                    kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&());
                let api: kube::Api<kube::api::DynamicObject> =
                    kube::Api::namespaced_with(client, "shop", &resource);
                api.create(&params, &object).await.unwrap();
            }
        });
    }

    fn deployment(&self) -> Value {
        self.kube.object("Deployment", "shop", "api").unwrap()
    }

    fn template_image(&self) -> String {
        self.deployment()["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Waits until `shop/api` has rolled out its current generation (kubectl's rule).
    fn wait_rolled_out(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let d = self.deployment();
            let status = &d["status"];
            let wanted = d["spec"]["replicas"].as_i64().unwrap_or(1);
            let at = |field: &str| status[field].as_i64().unwrap_or(0);
            if at("observedGeneration") >= d["metadata"]["generation"].as_i64().unwrap_or(1)
                && at("updatedReplicas") >= wanted
                && at("availableReplicas") >= wanted
                && at("replicas") == wanted
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "shop/api did not roll out: {status}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A git repository whose one workflow has `steps`.
    fn project(&self, name: &str, steps: &str) -> PathBuf {
        let dir = self.dir.path().join(name);
        let workflow =
            format!("on: push\njobs:\n  ship:\n    runs-on: ubuntu-latest\n    steps:\n{steps}");
        harness::git::repo(&dir, &[(".github/workflows/ci.yml", &workflow)]);
        std::fs::create_dir_all(dir.join(".docker")).unwrap();
        std::fs::write(dir.join(".docker/config.json"), "{\"auths\":{}}\n").unwrap();
        dir
    }

    /// `hybrid-runner exec --json` in `dir`, on the fake cluster only.
    fn exec(&self, dir: &Path) -> ExecRun {
        let mut command = harness::cli::command();
        command
            .arg("exec")
            .arg("--json")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--insecure-registry", &self.registry.host])
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env("XDG_CACHE_HOME", dir.join(".no-cache"))
            .env("DOCKER_CONFIG", dir.join(".docker"))
            .env("HOME", dir.join(".docker"));
        for var in [
            "GITHUB_ACTIONS",
            "GITHUB_WORKSPACE",
            "ACTIONS_STEP_DEBUG",
            "KUBECONFIG",
            "KUBERNETES_SERVICE_HOST",
        ] {
            command.env_remove(var);
        }
        ExecRun::from_output(command.output().unwrap())
    }
}

#[test]
fn the_step_sets_the_image_by_digest_and_reports_its_outputs() {
    let Some(site) = Site::start() else { return };
    let host = site.registry.host.clone();
    image(json!({"version": "2"})).push(&site.registry, "shop/api", "v2");
    let digest = site.registry.digest("shop/api", "v2").unwrap();
    let steps = format!(
        r#"      - id: deploy
        uses: hybrid-runner/deploy@v1
        with:
          image: {host}/shop/api:v2
          workloads: api
          namespace: shop
          timeout: 60
      - id: show
        run: echo "set ${{{{ steps.deploy.outputs.image }}}} (${{{{ steps.deploy.outputs.result }}}})"
"#
    );
    let dir = site.project("rolled-out", &steps);
    let run = site.exec(&dir);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let pinned = format!("{host}/shop/api:v2@{digest}");
    assert_eq!(site.template_image(), pinned);
    assert_eq!(run.output("deploy", "digest"), digest);
    assert_eq!(run.output("deploy", "image"), pinned);
    assert_eq!(run.output("deploy", "result"), "rolled-out");
    assert!(
        run.logged(&format!("set {pinned} (rolled-out)")),
        "{}",
        run.all()
    );
    assert!(
        run.logged(&format!("ok       {host}/shop/api:v2  {digest}")),
        "{}",
        run.all()
    );
    assert!(
        run.logged("Deployment shop/api: rolled-out in"),
        "{}",
        run.all()
    );
    assert!(
        run.logged("deployment \"api\" successfully rolled out"),
        "{}",
        run.all()
    );
    // The progress lines of the watch, prefixed with the workload.
    assert!(
        run.logged_lines()
            .iter()
            .any(|l| l.starts_with("[Deployment shop/api] Waiting for")),
        "{}",
        run.all()
    );
    site.wait_rolled_out();

    // The same image again changes nothing.
    let run = site.exec(&dir);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(run.output("deploy", "result"), "unchanged");
    assert_eq!(site.template_image(), pinned);
}

#[test]
fn a_missing_tag_changes_nothing_and_a_crashing_image_is_rolled_back_with_its_log() {
    let Some(site) = Site::start() else { return };
    let host = site.registry.host.clone();
    let old = site.template_image();
    image(json!({CRASH_LABEL: "panic: DATABASE_URL is not set"})).push(
        &site.registry,
        "shop/api",
        "crash",
    );
    let crash_digest = site.registry.digest("shop/api", "crash").unwrap();
    let steps = format!(
        r#"      - id: missing
        continue-on-error: true
        uses: hybrid-runner/deploy@v1
        with:
          image: {host}/shop/api:nope
          workloads: deployment/shop/api:api
      - id: crash
        continue-on-error: true
        uses: hybrid-runner/deploy@v1
        with:
          image: {host}/shop/api:crash
          workloads: deploy/shop/api
          timeout: 2m
"#
    );
    let dir = site.project("failures", &steps);
    let run = site.exec(&dir);
    assert_eq!(run.code, Some(0), "continue-on-error: {}", run.all());
    assert_eq!(
        run.steps(),
        ["missing:failure", "crash:failure"],
        "{}",
        run.all()
    );

    // The preflight: nothing changed, the registry's answer and what to check.
    assert_eq!(run.output("missing", "result"), "failed");
    assert!(
        run.logged(&format!(
            "missing  {host}/shop/api:nope: no such tag in the registry (the repository has tags"
        )),
        "{}",
        run.all()
    );
    assert!(
        run.logged("1 of 1 image is missing or unreachable; nothing was changed"),
        "{}",
        run.all()
    );

    // The crash: the pod's reason and log in the error, the old template back.
    assert_eq!(run.output("crash", "result"), "failed");
    assert_eq!(
        run.output("crash", "image"),
        format!("{host}/shop/api:crash@{crash_digest}")
    );
    let error = run
        .events()
        .into_iter()
        .filter(|e| e["event"] == "annotation" && e["annotation"]["level"] == "error")
        .filter_map(|e| e["annotation"]["message"].as_str().map(str::to_string))
        .find(|m| m.contains("CrashLoopBackOff"))
        .unwrap_or_else(|| panic!("no CrashLoopBackOff error:\n{}", run.all()));
    assert!(
        error.starts_with("Deployment shop/api, container api: pod api-"),
        "{error}"
    );
    assert!(error.contains(&format!("rolled back to {old}")), "{error}");
    assert!(
        error.contains("last log lines of the container:\n| panic: DATABASE_URL is not set"),
        "{error}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while site.template_image() != old {
        assert!(
            Instant::now() < deadline,
            "not rolled back: {}",
            site.template_image()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    site.wait_rolled_out();
}

#[test]
fn without_a_cluster_the_step_says_how_to_configure_one() {
    let dir = tempfile::tempdir().unwrap();
    let steps = "      - uses: hybrid-runner/deploy@v1\n        with:\n          image: registry.example.com/shop/api:v2\n          workloads: api\n";
    let workflow =
        format!("on: push\njobs:\n  ship:\n    runs-on: ubuntu-latest\n    steps:\n{steps}");
    harness::git::repo(dir.path(), &[(".github/workflows/ci.yml", &workflow)]);
    let out = harness::cli::command()
        .args(["exec", "--json"])
        .current_dir(dir.path())
        .env("KUBECONFIG", dir.path().join("no-such-kubeconfig"))
        .env("HOME", dir.path())
        .env("XDG_CACHE_HOME", dir.path().join(".no-cache"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let run = ExecRun::from_output(out);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.logged("hybrid-runner/deploy needs a Kubernetes cluster to deploy to"),
        "{}",
        run.all()
    );
    assert!(run.logged("--kubeconfig FILE"), "{}", run.all());
    // The inputs are read first: a bad one is named before the cluster is looked for.
    let steps = "      - uses: hybrid-runner/deploy@v1\n        with:\n          image: registry.example.com/shop/api:v2\n          workloads: job/migrate\n";
    let workflow =
        format!("on: push\njobs:\n  ship:\n    runs-on: ubuntu-latest\n    steps:\n{steps}");
    std::fs::write(dir.path().join(".github/workflows/ci.yml"), workflow).unwrap();
    let out = harness::cli::command()
        .args(["exec", "--json"])
        .current_dir(dir.path())
        .env("KUBECONFIG", dir.path().join("no-such-kubeconfig"))
        .env("HOME", dir.path())
        .env("XDG_CACHE_HOME", dir.path().join(".no-cache"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let run = ExecRun::from_output(out);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.logged("hybrid-runner/deploy: input `workloads` has an invalid value `job/migrate`"),
        "{}",
        run.all()
    );
}
