//! `hybrid-runner deploy` and `build --deploy` end to end: the real command line, real
//! buildah builds pushed to a real registry on loopback, and the fake API server's
//! Deployment/StatefulSet controllers, whose pods look their images up in that registry
//! (present: Running; absent: ImagePullBackOff; labelled `org.hybrid-runner.fake-kube.crash`:
//! CrashLoopBackOff with the label's text as the log).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::check_images::tiny_image;
use harness::buildah::PrivateStorage;
use harness::fake_kube::{CRASH_LABEL, FakeKube, FakeKubeOptions};
use harness::registry::{Registry, require_program};

struct Site {
    registry: Registry,
    kube: FakeKube,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Site {
    fn start() -> Option<Site> {
        let registry = Registry::start()?;
        let kube = FakeKube::start(FakeKubeOptions {
            crash_loop_back_off: Duration::from_millis(300),
            ..FakeKubeOptions::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = kube.write_kubeconfig(dir.path());
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        std::fs::write(dir.path().join("docker/config.json"), r#"{"auths": {}}"#).unwrap();
        Some(Site {
            registry,
            kube,
            dir,
            kubeconfig,
        })
    }

    fn host(&self) -> &str {
        &self.registry.host
    }

    /// Runs `hybrid-runner ARGS` in the site's folder with its kubeconfig.
    fn run(&self, args: &[&str], extra_env: &[(String, String)]) -> Output {
        harness::cli::command()
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .current_dir(self.dir.path())
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .env_remove("GITHUB_SHA")
            .env_remove("KUBECONFIG")
            .envs(extra_env.iter().cloned())
            .output()
            .unwrap()
    }

    fn apply(&self, object: Value) {
        let kind = object["kind"].as_str().unwrap().to_string();
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let runtime = harness::kaniko::runtime();
        runtime.block_on(async {
            let client = self.kube.client();
            let resource = match kind.as_str() {
                "Namespace" => {
                    kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&())
                }
                "StatefulSet" => {
                    kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::StatefulSet>(&())
                }
                _ => kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
            };
            let object: kube::api::DynamicObject = serde_json::from_value(object).unwrap();
            if kind == "Namespace" {
                let api: kube::Api<kube::api::DynamicObject> =
                    kube::Api::all_with(client, &resource);
                api.create(&Default::default(), &object).await.unwrap();
            } else {
                let api: kube::Api<kube::api::DynamicObject> =
                    kube::Api::namespaced_with(client, &ns, &resource);
                api.create(&Default::default(), &object).await.unwrap();
            }
        });
    }

    fn object(&self, kind: &str, ns: &str, name: &str) -> Value {
        self.kube
            .object(kind, ns, name)
            .unwrap_or_else(|| panic!("no {kind} {ns}/{name}"))
    }

    fn image_of(&self, kind: &str, ns: &str, name: &str) -> String {
        self.object(kind, ns, name)["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Waits until `kind ns/name` has rolled out its current generation (kubectl's rule).
    fn wait_rolled_out(&self, kind: &str, ns: &str, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let object = self.object(kind, ns, name);
            let status = &object["status"];
            let wanted = object["spec"]["replicas"].as_i64().unwrap_or(1);
            let observed = status["observedGeneration"].as_i64().unwrap_or(0);
            let done = observed >= object["metadata"]["generation"].as_i64().unwrap_or(1)
                && status["updatedReplicas"].as_i64().unwrap_or(0) >= wanted
                && status["readyReplicas"].as_i64().unwrap_or(0) >= wanted
                && status["replicas"].as_i64().unwrap_or(0) == wanted;
            if done {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{kind} {ns}/{name} did not roll out (spec.replicas {wanted}, generation {})\n\
                 status: {status}\n{}",
                object["metadata"]["generation"],
                self.dump(ns)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What a stuck rollout is made of: the namespace's pods (phase, conditions, container
    /// statuses), ControllerRevisions, ReplicaSets and events.
    fn dump(&self, ns: &str) -> String {
        let mut out = String::new();
        let meta = |o: &Value| {
            format!(
                "{} (rv {}, created {}, deleting {}, labels {}, owner {})",
                o["metadata"]["name"],
                o["metadata"]["resourceVersion"],
                o["metadata"]["creationTimestamp"],
                o["metadata"]["deletionTimestamp"],
                o["metadata"]["labels"],
                o["metadata"]["ownerReferences"][0]["name"]
            )
        };
        let pods = self.kube.objects("Pod", Some(ns));
        out.push_str(&format!("pods ({}):\n", pods.len()));
        for p in &pods {
            let s = &p["status"];
            out.push_str(&format!(
                "  pod {}\n    phase {}\n    conditions {}\n    initContainerStatuses {}\n    containerStatuses {}\n",
                meta(p),
                s["phase"],
                s["conditions"],
                s["initContainerStatuses"],
                s["containerStatuses"]
            ));
        }
        for r in self.kube.objects("ControllerRevision", Some(ns)) {
            out.push_str(&format!(
                "  controllerrevision {} revision {}\n",
                meta(&r),
                r["revision"]
            ));
        }
        for r in self.kube.objects("ReplicaSet", Some(ns)) {
            out.push_str(&format!(
                "  replicaset {} replicas {} status {}\n",
                meta(&r),
                r["spec"]["replicas"],
                r["status"]
            ));
        }
        for e in self.kube.objects("Event", Some(ns)) {
            out.push_str(&format!(
                "  event {} {} {} x{}: {}\n",
                e["involvedObject"]["name"],
                e["involvedObject"]["fieldPath"],
                e["reason"],
                e["count"],
                e["message"]
            ));
        }
        out
    }
}

fn deployment(ns: &str, name: &str, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 1, "progressDeadlineSeconds": 30,
                 "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": name, "image": image}]}}}})
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A git repository with two services (`api`, `web`), each with a Dockerfile and a
/// Dockerfile.k8s, and a services file deploying them to namespace `shop`.
fn services_repo(dir: &Path) -> String {
    for service in ["api", "web"] {
        let ctx = dir.join("services").join(service);
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("hello.txt"), format!("{service}\n")).unwrap();
        std::fs::write(
            ctx.join("Dockerfile"),
            "FROM scratch\nCOPY hello.txt /d.txt\n",
        )
        .unwrap();
        std::fs::write(
            ctx.join("Dockerfile.k8s"),
            "FROM scratch\nCOPY hello.txt /k.txt\n",
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("services.yaml"),
        "- name: api\n  context: services/api\n  namespace: shop\n- name: web\n  context: services/web\n  namespace: shop\n  deploy:\n    - {kind: Deployment, name: web, container: web}\n",
    )
    .unwrap();
    harness::git::init(dir);
    harness::git::commit_files(dir, &[], "services")
}

fn seed_shop(site: &Site) {
    site.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
    for service in ["api", "web"] {
        let old = tiny_image(json!({})).push(&site.registry, &format!("shop/{service}"), "old");
        site.apply(deployment("shop", service, &old));
        site.wait_rolled_out("Deployment", "shop", service);
    }
}

#[test]
fn build_deploy_sets_both_services_by_digest_and_a_missing_image_changes_nothing() {
    if !require_program("buildah", "deploy builds its images with buildah")
        || !require_program("git", "the tag sha comes from a git repository")
    {
        return;
    }
    let Some(site) = Site::start() else { return };
    seed_shop(&site);
    let sha = services_repo(site.dir.path());
    let storage = PrivateStorage::new();
    let host = site.host().to_string();
    let mut env = storage.env();
    env.push(("HOME".into(), storage.path().display().to_string()));

    let out = site.run(
        &[
            "build",
            "--all",
            "--builder",
            "buildah",
            "--registry",
            &host,
            "--insecure-registry",
            &host,
            "--skip-unchanged",
            "--deploy",
            "--deploy-timeout",
            "60",
            "--json",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("build --json");
    let deployed = report["deploy"]["workloads"].as_array().unwrap();
    assert_eq!(deployed.len(), 2, "{report}");
    for service in ["api", "web"] {
        let digest = site
            .registry
            .digest(&format!("shop/{service}"), &format!("k8s-{sha}"))
            .expect("the k8s image was pushed");
        let expected = format!("{host}/shop/{service}:k8s-{sha}@{digest}");
        assert_eq!(site.image_of("Deployment", "shop", service), expected);
        let row = deployed.iter().find(|w| w["service"] == service).unwrap();
        assert_eq!(row["result"], "rolled-out", "{row}");
        assert_eq!(row["image"], expected.as_str());
        assert_eq!(
            row["previous_image"],
            format!("{host}/shop/{service}:old").as_str()
        );
        site.wait_rolled_out("Deployment", "shop", service);
    }

    // web's image for another commit was never built: nothing changes, and it is named.
    site.kube.clear_requests();
    let generations: Vec<Value> = ["api", "web"]
        .iter()
        .map(|s| site.object("Deployment", "shop", s)["metadata"]["generation"].clone())
        .collect();
    tiny_image(json!({})).push(&site.registry, "shop/api", "k8s-next");
    let out = site.run(
        &[
            "deploy",
            "--all",
            "--tag",
            "next",
            "--registry",
            &host,
            "--insecure-registry",
            &host,
        ],
        &[],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!(
            "missing  {host}/shop/web:k8s-next: no such tag in the registry (the repository has tags "
        )) && all.contains("built by service web (hybrid-runner build --only web)"),
        "{all}"
    );
    assert!(all.contains("nothing was changed"), "{all}");
    let patches: Vec<_> = site
        .kube
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert!(patches.is_empty(), "the preflight wrote: {patches:?}");
    for (service, generation) in ["api", "web"].iter().zip(generations) {
        assert_eq!(
            site.object("Deployment", "shop", service)["metadata"]["generation"],
            generation
        );
    }

    // Rebuild what changed, deploy it: only web's context changed, so api's image is
    // reused (retagged) and its Deployment is not restarted.
    let api_before = site.object("Deployment", "shop", "api");
    let sha2 = harness::git::commit_files(
        site.dir.path(),
        &[("services/web/hello.txt", "web v2\n")],
        "web v2",
    );
    let out = site.run(
        &[
            "build",
            "--all",
            "--builder",
            "buildah",
            "--registry",
            &host,
            "--insecure-registry",
            &host,
            "--skip-unchanged",
            "--deploy",
            "--json",
        ],
        &env,
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("build --json");
    let deployed = report["deploy"]["workloads"].as_array().unwrap();
    assert_eq!(deployed.len(), 1, "only web: {report}");
    assert_eq!(deployed[0]["service"], "web");
    assert!(
        all.contains("note: api: not restarted, its k8s image was reused"),
        "{all}"
    );
    let api_after = site.object("Deployment", "shop", "api");
    assert_eq!(
        api_after["metadata"]["generation"],
        api_before["metadata"]["generation"]
    );
    assert_eq!(
        api_after["spec"]["template"],
        api_before["spec"]["template"]
    );
    let web_digest = site
        .registry
        .digest("shop/web", &format!("k8s-{sha2}"))
        .expect("web's new k8s image");
    assert_eq!(
        site.image_of("Deployment", "shop", "web"),
        format!("{host}/shop/web:k8s-{sha2}@{web_digest}")
    );
}

#[test]
fn a_crashing_image_is_rolled_back_with_its_log_and_a_dry_run_changes_nothing() {
    let Some(site) = Site::start() else { return };
    seed_shop(&site);
    let host = site.host().to_string();
    tiny_image(json!({CRASH_LABEL: "connecting to db:5432\nfatal: connection refused"})).push(
        &site.registry,
        "shop/api",
        "k8s-crash",
    );
    std::fs::write(
        site.dir.path().join("services.yaml"),
        "- name: api\n  namespace: shop\n",
    )
    .unwrap();
    std::fs::write(site.dir.path().join("Dockerfile.k8s"), "FROM scratch\n").unwrap();
    let old = site.image_of("Deployment", "shop", "api");

    let generation = site.object("Deployment", "shop", "api")["metadata"]["generation"].clone();
    // A workload that does not exist stops the deploy before anything changes.
    std::fs::write(
        site.dir.path().join("ghost.yaml"),
        "- name: api\n  namespace: shop\n  deploy:\n    - {name: api}\n    - {kind: DaemonSet, name: agent}\n",
    )
    .unwrap();
    let out = site.run(
        &[
            "deploy",
            "--all",
            "--services",
            "ghost.yaml",
            "--tag",
            "crash",
            "--registry",
            &host,
            "--insecure-registry",
            &host,
        ],
        &[],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("missing  DaemonSet shop/agent does not exist"),
        "{all}"
    );
    assert!(
        all.contains("error: 1 workload is missing or unusable; nothing was changed"),
        "{all}"
    );
    assert_eq!(
        site.object("Deployment", "shop", "api")["metadata"]["generation"],
        generation
    );

    // A dry run prints the patch the API server accepted and changes nothing.
    let out = site.run(
        &[
            "deploy",
            "--only",
            "api",
            "--tag",
            "crash",
            "--registry",
            &host,
            "--insecure-registry",
            &host,
            "--dry-run",
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let patch = &doc["patches"][0];
    assert_eq!(patch["accepted"], true, "{doc}");
    assert_eq!(
        patch["path"],
        "/apis/apps/v1/namespaces/shop/deployments/api"
    );
    let digest = site.registry.digest("shop/api", "k8s-crash").unwrap();
    let pinned = format!("{host}/shop/api:k8s-crash@{digest}");
    assert_eq!(
        patch["patch"]["spec"]["template"]["spec"]["containers"][0],
        json!({"name": "api", "image": pinned})
    );
    assert!(
        site.kube
            .requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.query_value("dryRun") == Some("All"))
    );
    assert_eq!(
        site.object("Deployment", "shop", "api")["metadata"]["generation"],
        generation
    );

    let out = site.run(
        &[
            "deploy",
            "--only",
            "api",
            "--tag",
            "crash",
            "--registry",
            &host,
            "--insecure-registry",
            &host,
            "--timeout",
            "60",
            "--json",
        ],
        &[],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &doc["workloads"][0];
    assert_eq!(row["result"], "failed", "{doc}");
    assert_eq!(row["reason"], "CrashLoopBackOff", "{doc}");
    assert_eq!(row["rollback"], "restored", "{doc}");
    let logs: Vec<&str> = row["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        logs.contains(&"fatal: connection refused"),
        "the crashed container's log: {doc}"
    );
    assert!(all.contains("| fatal: connection refused"), "{all}");
    assert_eq!(site.image_of("Deployment", "shop", "api"), old);
    site.wait_rolled_out("Deployment", "shop", "api");

    // --no-rollback leaves the failed template in place.
    let out = site.run(
        &[
            "deploy",
            "--only",
            "api",
            "--tag",
            "crash",
            "--registry",
            &host,
            "--insecure-registry",
            &host,
            "--no-rollback",
        ],
        &[],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("not rolled back (--no-rollback)"), "{all}");
    assert_eq!(site.image_of("Deployment", "shop", "api"), pinned);
}

#[test]
fn a_stateful_set_named_in_the_services_file_rolls_out_and_check_images_sees_the_namespace() {
    let Some(site) = Site::start() else { return };
    let host = site.host().to_string();
    site.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "data"}}));
    let old = tiny_image(json!({})).push(&site.registry, "data/db", "old");
    site.apply(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "data"},
        "spec": {"replicas": 2, "serviceName": "db",
                 "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [
                                  {"name": "exporter", "image": old},
                                  {"name": "main", "image": old}]}}}}));
    site.wait_rolled_out("StatefulSet", "data", "db");
    tiny_image(json!({"v": "2"})).push(&site.registry, "data/db", "k8s-v2");
    std::fs::write(
        site.dir.path().join("services.yaml"),
        "- name: db\n  image: IMAGE\n  deploy:\n    - {kind: StatefulSet, namespace: data, container: main}\n"
            .replace("IMAGE", &format!("{host}/data/db")),
    )
    .unwrap();
    std::fs::write(site.dir.path().join("Dockerfile.k8s"), "FROM scratch\n").unwrap();
    let out = site.run(
        &[
            "deploy",
            "--all",
            "--tag",
            "v2",
            "--insecure-registry",
            &host,
            "--timeout",
            "60",
        ],
        &[],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let digest = site.registry.digest("data/db", "k8s-v2").unwrap();
    let sts = site.object("StatefulSet", "data", "db");
    let containers = &sts["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers[0]["image"],
        old.as_str(),
        "the other container is untouched"
    );
    assert_eq!(
        containers[1]["image"],
        format!("{host}/data/db:k8s-v2@{digest}").as_str()
    );
    assert!(all.contains("StatefulSet data/db"), "{all}");
    assert!(all.contains("rolled-out"), "{all}");

    // An OnDelete StatefulSet would take the image only when its pods are deleted: refused
    // before anything changes, as kubectl's status viewer refuses to watch it.
    site.apply(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "legacy", "namespace": "data"},
        "spec": {"replicas": 1, "serviceName": "legacy",
                 "updateStrategy": {"type": "OnDelete"},
                 "selector": {"matchLabels": {"app": "legacy"}},
                 "template": {"metadata": {"labels": {"app": "legacy"}},
                              "spec": {"containers": [{"name": "main", "image": old}]}}}}));
    std::fs::write(
        site.dir.path().join("legacy.yaml"),
        format!("- name: db\n  image: {host}/data/db\n  deploy:\n    - {{kind: sts, name: legacy, namespace: data}}\n"),
    )
    .unwrap();
    let out = site.run(
        &[
            "deploy",
            "--all",
            "--services",
            "legacy.yaml",
            "--tag",
            "v2",
            "--insecure-registry",
            &host,
        ],
        &[],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("StatefulSet data/legacy updates its pods only when they are deleted"),
        "{all}"
    );
    assert_eq!(site.image_of("StatefulSet", "data", "legacy"), old);

    // A Deployment in the namespace whose image was never pushed: check --images names it
    // and the pod that cannot pull it.
    site.apply(deployment(
        "data",
        "cache",
        &format!("{host}/data/cache:1.0.0"),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = loop {
        let out = site.run(
            &[
                "check",
                "--images",
                "-n",
                "data",
                "--insecure-registry",
                &host,
            ],
            &[],
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if stdout.contains("ImagePullBackOff") || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = |needle: &str| {
        stdout
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle}: {all}"))
            .to_string()
    };
    assert!(line("data/cache:1.0.0").starts_with("missing "), "{all}");
    assert!(line("data/db:k8s-v2@").starts_with("present "), "{all}");
    assert!(line("data/db:old").contains("StatefulSet data/db (container exporter)"));
    let pulling = line("pulling ");
    assert!(
        pulling.contains("container cache") && pulling.contains("ImagePullBackOff"),
        "{pulling}"
    );
}

/// The outage of the issue from the cluster's side: the runner can read the image (its
/// Docker config has the registry's credentials, so the preflight passes) but the pods
/// cannot pull it (the Deployment has no pull Secret): the rollout fails at once on the new
/// pod's pull error, not at the progress deadline, and is rolled back.
#[test]
fn a_pull_the_cluster_cannot_make_fails_at_once_and_is_rolled_back() {
    let Some(site) = Site::start() else { return };
    let Some(private) = Registry::start_with_auth("ci", "pull-pass") else {
        return;
    };
    site.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
    let old = tiny_image(json!({})).push(&site.registry, "shop/api", "old");
    let mut slow = deployment("shop", "api", &old);
    slow["spec"]["progressDeadlineSeconds"] = json!(600);
    site.apply(slow);
    site.wait_rolled_out("Deployment", "shop", "api");
    let private_host = private.host.clone();
    tiny_image(json!({})).push(&private, "shop/api", "k8s-v2");
    let auth = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "ci:pull-pass");
    std::fs::write(
        site.dir.path().join("docker/config.json"),
        json!({"auths": {private_host.clone(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    std::fs::write(
        site.dir.path().join("services.yaml"),
        format!("- name: api\n  namespace: shop\n  image: {private_host}/shop/api\n"),
    )
    .unwrap();
    std::fs::write(site.dir.path().join("Dockerfile.k8s"), "FROM scratch\n").unwrap();

    let out = site.run(
        &[
            "deploy",
            "--all",
            "--tag",
            "v2",
            "--insecure-registry",
            &private_host,
            "--timeout",
            "120",
            "--json",
        ],
        &[],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["images"][0]["status"], "present",
        "the runner can read it: {doc}"
    );
    let row = &doc["workloads"][0];
    // The pod's pull error, not the 120 s timeout (whose reason would be `timeout`).
    let reason = row["reason"].as_str().unwrap();
    assert!(
        matches!(reason, "ErrImagePull" | "ImagePullBackOff"),
        "{doc}"
    );
    assert!(
        row["message"].as_str().unwrap().contains(&private_host),
        "the kubelet's message names the image: {doc}"
    );
    assert_eq!(row["rollback"], "restored", "{doc}");
    assert_eq!(site.image_of("Deployment", "shop", "api"), old);
    site.wait_rolled_out("Deployment", "shop", "api");
    assert!(!all.contains("pull-pass"), "no credential in the output");
}
