#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `hybrid-runner exec --builder kaniko` end to end: the real binary runs workflows in a
//! fresh git repository and every image build becomes a Kaniko Job on the loopback fake
//! Kubernetes API server (`harness::fake_kube`, whose kubelet builds with buildah and
//! pushes to a real `docker-registry`). The built-in `hybrid-runner/build`, `docker build`
//! in a `run:` step through the shim, a failing build, matrix legs building at once, and
//! Ctrl-C mid-build. After every run no namespace of the runner is left and every object
//! the runner sent passes `kubernetes-validate --strict`. Skipped with a notice when
//! buildah or docker-registry is missing outside CI.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::exec_run::ExecRun;
use harness::fake_kube::{FakeKubeOptions, validate_manifests};
use harness::git::git;

use harness::kaniko::*;

/// A git repository with `files` committed, inside the rig's folder.
fn project(rig: &Rig, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = rig.dir.path().join(name);
    harness::git::repo(&dir, files);
    // The runner's Docker config: empty, not the host's.
    std::fs::create_dir_all(dir.join(".docker")).unwrap();
    std::fs::write(dir.join(".docker/config.json"), "{\"auths\":{}}\n").unwrap();
    dir
}

/// `hybrid-runner exec --json --builder kaniko` in `dir` against the rig's cluster and
/// registry, with no other Kubernetes configuration around.
fn exec_command(rig: &Rig, dir: &Path, args: &[&str]) -> Command {
    let mut command = harness::cli::command();
    command
        .arg("exec")
        .arg("--json")
        .args(["--builder", "kaniko"])
        .args(["--insecure-registry", &rig.registry.host])
        .arg("--kubeconfig")
        .arg(&rig.kubeconfig)
        .args(["--runner-id", &rig.runner_id])
        .args(args)
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
    command
}

fn exec(rig: &Rig, dir: &Path, args: &[&str]) -> ExecRun {
    ExecRun::from_output(exec_command(rig, dir, args).output().unwrap())
}

fn workflow(steps: &str) -> String {
    format!("on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n{steps}")
}

/// The names of the namespaces the runner created, labelled with the rig's runner id.
fn created_namespaces(rig: &Rig) -> BTreeSet<String> {
    rig.fake
        .sent_manifests()
        .iter()
        .filter(|m| m["kind"] == "Namespace")
        .filter(|m| m["metadata"]["labels"]["hybrid-runner/runner-id"] == rig.runner_id.as_str())
        .map(|m| m["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// What every test ends with: nothing of the runner left in the cluster, every object it
/// sent valid.
fn assert_clean(rig: &Rig) {
    rig.assert_no_namespace_left();
    let others: Vec<_> = rig
        .fake
        .namespaces()
        .into_iter()
        .filter(|(name, _)| !matches!(name.as_str(), "default" | "kube-system" | "kube-public"))
        .collect();
    assert!(others.is_empty(), "namespaces left: {others:?}");
    validate_manifests(&rig.fake.sent_manifests());
}

#[test]
fn build_action_pushes_five_tags_whose_digests_are_the_step_outputs() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let host = &rig.registry.host;
    let steps = format!(
        r#"      - id: img
        uses: hybrid-runner/build@v1
        with:
          image: {host}/app
      - id: show
        run: echo "image=${{{{ steps.img.outputs.k8s-image }}}}"
"#
    );
    let dir = project(
        &rig,
        "dual",
        &[
            (".github/workflows/ci.yml", &workflow(&steps)),
            ("Dockerfile", DOCKERFILE),
            ("Dockerfile.k8s", DOCKERFILE_K8S),
            ("hello.txt", "hello from exec\n"),
        ],
    );
    let run = exec(&rig, &dir, &[]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let sha = git(&dir, &["rev-parse", "HEAD"]);
    let mut tags = rig.registry.tags("app");
    tags.sort();
    assert_eq!(
        tags,
        harness::registry::five_dual_tags(&sha),
        "{}",
        run.all()
    );
    let docker = run.output("img", "docker-digest");
    let k8s = run.output("img", "k8s-digest");
    assert!(docker.starts_with("sha256:"), "{docker}");
    assert_ne!(docker, k8s, "two Dockerfiles, two images");
    for tag in ["latest", "docker-latest", &format!("docker-{sha}")] {
        assert_eq!(
            rig.registry.digest("app", tag),
            Some(docker.clone()),
            "{tag}"
        );
    }
    for tag in ["k8s-latest", &format!("k8s-{sha}")] {
        assert_eq!(rig.registry.digest("app", tag), Some(k8s.clone()), "{tag}");
    }
    assert!(
        run.printed(&format!("image={host}/app@{k8s}")),
        "{}",
        run.all()
    );
    // The build ran as Kaniko Jobs in one namespace of this runner, named for this run.
    let namespaces = created_namespaces(&rig);
    assert_eq!(namespaces.len(), 1, "{namespaces:?}");
    let jobs = rig
        .fake
        .sent_manifests()
        .iter()
        .filter(|m| m["kind"] == "Job")
        .count();
    assert_eq!(jobs, 2, "one Kaniko Job per variant");
    assert_clean(&rig);
}

#[test]
fn docker_build_and_push_in_a_run_step_build_on_the_cluster() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let host = &rig.registry.host;
    let steps = format!(
        "      - id: shim\n        run: docker build -t {host}/shim:v1 . && docker push {host}/shim:v1\n"
    );
    let dir = project(
        &rig,
        "shim",
        &[
            (".github/workflows/ci.yml", &workflow(&steps)),
            ("Dockerfile", DOCKERFILE),
            ("hello.txt", "hello from the shim\n"),
        ],
    );
    let run = exec(&rig, &dir, &[]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(run.steps(), ["shim:success"], "{}", run.all());
    assert_eq!(rig.registry.tags("shim"), ["v1"], "{}", run.all());
    assert!(rig.registry.digest("shim", "v1").is_some());
    // `docker build` without `--push`, then `docker push`: built again with a push, in a
    // namespace of its own rather than waiting for the first one's to go.
    assert_eq!(
        created_namespaces(&rig).len(),
        2,
        "built through the cluster"
    );
    assert!(!run.printed("waiting for the namespace"), "{}", run.all());
    assert_clean(&rig);
}

#[test]
fn a_failing_build_fails_its_step_and_failure_steps_run() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let host = &rig.registry.host;
    let steps = format!(
        r#"      - id: img
        uses: hybrid-runner/build@v1
        with:
          image: {host}/broken
          variants: docker
      - id: after
        run: echo never
      - id: on-failure
        if: failure()
        run: echo "failure step ran"
"#
    );
    let dir = project(
        &rig,
        "broken",
        &[
            (".github/workflows/ci.yml", &workflow(&steps)),
            (
                "Dockerfile",
                "FROM scratch\nCOPY missing.txt /missing.txt\n",
            ),
            ("hello.txt", "hello\n"),
        ],
    );
    let run = exec(&rig, &dir, &[]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let steps = run.steps();
    assert!(steps.contains(&"img:failure".to_string()), "{steps:?}");
    assert!(
        steps.contains(&"on-failure:success".to_string()),
        "{steps:?}"
    );
    assert!(!steps.contains(&"after:success".to_string()), "{steps:?}");
    assert!(run.printed("failure step ran"), "{}", run.all());
    assert!(rig.registry.tags("broken").is_empty());
    assert_eq!(created_namespaces(&rig).len(), 1);
    assert_clean(&rig);
}

#[test]
fn matrix_legs_building_at_once_get_namespaces_of_their_own() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let host = &rig.registry.host;
    let text = format!(
        r#"on: push
jobs:
  build:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        app: [one, two]
    steps:
      - id: img
        uses: hybrid-runner/build@v1
        with:
          image: {host}/${{{{ matrix.app }}}}
          variants: docker
      - id: again
        run: docker build -t {host}/${{{{ matrix.app }}}}:again . && docker push {host}/${{{{ matrix.app }}}}:again
"#
    );
    let dir = project(
        &rig,
        "matrix",
        &[
            (".github/workflows/ci.yml", &text),
            ("Dockerfile", DOCKERFILE),
            ("hello.txt", "hello from a leg\n"),
        ],
    );
    let run = exec(&rig, &dir, &["--concurrency", "2"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let sha = git(&dir, &["rev-parse", "HEAD"]);
    for app in ["one", "two"] {
        let mut tags = rig.registry.tags(app);
        tags.sort();
        let mut expected = vec![
            "again".to_string(),
            "docker-latest".to_string(),
            format!("docker-{sha}"),
            "latest".to_string(),
        ];
        expected.sort();
        assert_eq!(tags, expected, "{app}\n{}", run.all());
    }
    // Two legs, three builds each (the action; `docker build`; `docker push` of an
    // unpushed build builds again with a push): six namespaces, none shared (a shared one
    // would have been refused while in use, or waited for while terminating).
    let namespaces = created_namespaces(&rig);
    assert_eq!(namespaces.len(), 6, "{namespaces:?}");
    assert!(!run.printed("waiting for the namespace"), "{}", run.all());

    // A second exec run of the same workflow names its namespaces anew.
    let again = exec(&rig, &dir, &["--concurrency", "2"]);
    assert_eq!(again.code, Some(0), "{}", again.all());
    assert_eq!(created_namespaces(&rig).len(), 12);
    assert_clean(&rig);
}

#[test]
fn ctrl_c_mid_build_exits_130_and_deletes_the_namespace() {
    // The pod never schedules: the build is still running when Ctrl-C comes.
    let Some(rig) = stuck_rig() else {
        return;
    };
    let host = &rig.registry.host;
    let steps = format!(
        r#"      - id: img
        uses: hybrid-runner/build@v1
        with:
          image: {host}/stuck
"#
    );
    let dir = project(
        &rig,
        "stuck",
        &[
            (".github/workflows/ci.yml", &workflow(&steps)),
            ("Dockerfile", DOCKERFILE),
            ("hello.txt", "hello\n"),
        ],
    );
    let mut child = exec_command(&rig, &dir, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while rig.fake.sent_manifests().iter().all(|m| m["kind"] != "Job") {
        assert!(
            child.try_wait().unwrap().is_none(),
            "exec ended before its build started: {}",
            ExecRun::from_output(child.wait_with_output().unwrap()).all()
        );
        assert!(Instant::now() < deadline, "no Kaniko Job was created");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(active_namespaces(&rig).len(), 1);
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let run = ExecRun::from_output(child.wait_with_output().unwrap());
    assert_eq!(run.code, Some(130), "{}", run.all());
    assert!(
        run.steps().iter().any(|s| s.starts_with("img:")),
        "{}",
        run.all()
    );
    assert!(rig.registry.tags("stuck").is_empty());
    assert_clean(&rig);
}

/// `hybrid-runner build --builder kaniko PATH --image IMAGE` with the default runner id.
fn build_command(rig: &Rig, context: &Path, image: &str) -> Command {
    let mut command = harness::cli::command();
    command
        .arg("build")
        .arg(context)
        .args(["--image", image, "--builder", "kaniko", "--sha", SHA])
        .args(["--insecure-registry", &rig.registry.host])
        .arg("--kubeconfig")
        .arg(&rig.kubeconfig)
        .env_remove("KUBECONFIG");
    command
}

/// A cluster command (`status`, `cleanup`) with the default runner id.
fn cluster_command(rig: &Rig, args: &[&str]) -> ExecRun {
    ExecRun::from_output(
        harness::cli::command()
            .args(args)
            .arg("--kubeconfig")
            .arg(&rig.kubeconfig)
            .env_remove("KUBECONFIG")
            .output()
            .unwrap(),
    )
}

/// The namespaces `build` created (runner id `local`, the default of every command).
fn local_namespaces(rig: &Rig) -> BTreeSet<String> {
    rig.fake
        .sent_manifests()
        .iter()
        .filter(|m| m["kind"] == "Namespace")
        .filter(|m| m["metadata"]["labels"]["hybrid-runner/runner-id"] == "local")
        .map(|m| m["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn consecutive_builds_of_one_service_do_not_wait_for_each_other() {
    let mut options = FakeKubeOptions::default();
    // Long enough that a second build in the first one's namespace would have to wait.
    options.faults.namespace_deletion_delay = Some(Duration::from_secs(3));
    let Some(rig) = rig(options) else {
        return;
    };
    let ctx = rig.context(
        "twice",
        &[("Dockerfile", DOCKERFILE), ("hello.txt", "built twice\n")],
    );
    let image = rig.image("twice");
    for round in 0..2 {
        let started = Instant::now();
        let run = ExecRun::from_output(build_command(&rig, &ctx, &image).output().unwrap());
        assert_eq!(run.code, Some(0), "round {round}: {}", run.all());
        assert!(
            !run.printed("waiting for the namespace"),
            "round {round}: {}",
            run.all()
        );
        assert!(started.elapsed() < Duration::from_secs(60));
    }
    let namespaces = local_namespaces(&rig);
    assert_eq!(namespaces.len(), 2, "one namespace per run: {namespaces:?}");
    assert!(rig.registry.tags("twice").contains(&"latest".to_string()));
    rig.assert_no_namespace_left();
    validate_manifests(&rig.fake.sent_manifests());
}

#[test]
fn status_and_cleanup_see_the_namespace_of_a_running_build() {
    let Some(rig) = stuck_rig() else {
        return;
    };
    let ctx = rig.context(
        "seen",
        &[("Dockerfile", DOCKERFILE), ("hello.txt", "hello\n")],
    );
    let mut child = build_command(&rig, &ctx, &rig.image("seen"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while rig.fake.sent_manifests().iter().all(|m| m["kind"] != "Job") {
        assert!(child.try_wait().unwrap().is_none(), "build ended early");
        assert!(Instant::now() < deadline, "no Kaniko Job was created");
        std::thread::sleep(Duration::from_millis(100));
    }
    let namespace = local_namespaces(&rig).into_iter().next().unwrap();
    let status = cluster_command(&rig, &["status"]);
    assert_eq!(status.code, Some(0), "{}", status.all());
    assert!(status.printed(&namespace), "{}", status.all());
    let cleanup = cluster_command(&rig, &["cleanup", "--all"]);
    assert_eq!(cleanup.code, Some(0), "{}", cleanup.all());
    assert!(
        cleanup.printed(&format!("deleted namespace {namespace}")),
        "{}",
        cleanup.all()
    );
    let build = ExecRun::from_output(child.wait_with_output().unwrap());
    assert_eq!(build.code, Some(1), "{}", build.all());
    rig.assert_no_namespace_left();
    validate_manifests(&rig.fake.sent_manifests());
}
