#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `hybrid-runner build` end to end: the real command line with a real buildah (private
//! vfs storage, chroot isolation) pushing to a real registry on loopback.

use std::path::Path;
use std::process::{Command, Output};

use harness::buildah::PrivateStorage;
use harness::registry::{Registry, require_program};
use serde_json::Value as Json;

/// A git repository at `dir` holding a `hello.txt`, `Dockerfile` and optionally
/// `Dockerfile.k8s`; returns its HEAD sha.
fn repo(dir: &Path, docker: &str, k8s: Option<&str>) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("hello.txt"), "hello\n").unwrap();
    std::fs::write(dir.join("Dockerfile"), docker).unwrap();
    if let Some(k8s) = k8s {
        std::fs::write(dir.join("Dockerfile.k8s"), k8s).unwrap();
    }
    harness::git::init(dir);
    harness::git::commit_files(dir, &[], "service")
}

/// `hybrid-runner build ARGS` in `cwd` with the private storage, no kubeconfig and no
/// GITHUB_SHA in its environment.
fn build(cwd: &Path, storage: &PrivateStorage, args: &[&str]) -> Output {
    harness::cli::command()
        .arg("build")
        .args(args)
        .current_dir(cwd)
        .envs(storage.env())
        .env("HOME", storage.path())
        .env_remove("GITHUB_SHA")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap()
}

fn json(out: &Output) -> Json {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ready() -> Option<Registry> {
    if !require_program("buildah", "hybrid-runner build is tested with buildah")
        || !require_program("git", "the tag sha comes from a git repository")
    {
        return None;
    }
    Registry::start()
}

const DOCKER: &str = "FROM scratch\nCOPY hello.txt /docker.txt\n";
const K8S: &str = "FROM scratch\nCOPY hello.txt /k8s.txt\n";

#[test]
fn dual_build_pushes_exactly_five_tags_with_the_json_digests() {
    let Some(registry) = ready() else { return };
    dual_build_with(&registry, "buildah");
}

/// podman is optional here (CI installs only buildah): the same checks when it is present.
#[test]
fn podman_builds_the_same_five_tags_when_installed() {
    if !harness::registry::on_path("podman") {
        eprintln!("notice: podman not found; skipping the podman build test");
        return;
    }
    let Some(registry) = ready() else { return };
    dual_build_with(&registry, "podman");
}

fn dual_build_with(registry: &Registry, builder: &str) {
    let storage = PrivateStorage::new();
    let dir = tempfile::tempdir().unwrap();
    let sha = repo(dir.path(), DOCKER, Some(K8S));
    let image = format!("{}/e2e/app", registry.host);
    let out = build(
        dir.path(),
        &storage,
        &[
            "--image",
            &image,
            "--builder",
            builder,
            "--insecure-registry",
            &registry.host,
            "--build-arg",
            "TOKEN=s3cr3t-build-arg",
            "--json",
        ],
    );
    let report = json(&out);
    assert!(out.status.success(), "{}", text(&out).1);
    let (stdout, stderr) = text(&out);
    assert!(
        !stdout.contains("s3cr3t") && !stderr.contains("s3cr3t"),
        "a build-arg value reached the output:\n{stderr}"
    );
    assert!(stderr.contains("--build-arg 'TOKEN=***'"), "{stderr}");

    let expected = harness::registry::five_dual_tags(&sha);
    assert_eq!(registry.tags("e2e/app"), expected);

    assert_eq!(report["builder"], builder);
    assert_eq!(report["result"], "success");
    let service = &report["services"][0];
    assert_eq!(service["sha"], sha.as_str());
    let variants = service["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2);
    let digest_of = |tag: &str| registry.digest("e2e/app", tag).unwrap();
    let docker = variants[0]["digest"].as_str().unwrap();
    let k8s = variants[1]["digest"].as_str().unwrap();
    assert_eq!(variants[0]["variant"], "docker");
    assert_eq!(variants[1]["variant"], "k8s");
    assert_ne!(docker, k8s);
    for tag in ["latest", "docker-latest", &format!("docker-{sha}")] {
        assert_eq!(digest_of(tag), docker, "{tag}");
    }
    for tag in ["k8s-latest", &format!("k8s-{sha}")] {
        assert_eq!(digest_of(tag), k8s, "{tag}");
    }
    assert_eq!(variants[1]["tags"].as_array().unwrap().len(), 2);
    assert!(variants[0]["duration_seconds"].as_f64().unwrap() > 0.0);

    let metrics = &report["metrics"];
    let totals = &metrics["hybrid_runner_builds_total"];
    assert_eq!(totals[0]["labels"]["result"], "success");
    assert_eq!(totals[0]["value"], 2);
    let histograms = metrics["hybrid_runner_build_duration_seconds"]
        .as_array()
        .unwrap();
    assert_eq!(histograms.len(), 2, "one series per variant");
    assert_eq!(histograms[0]["count"], 1);
    // The build log went to stderr, prefixed by service/variant.
    let name = dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        text(&out).1.contains(&format!("[{name}/k8s] COMMIT")),
        "{}",
        text(&out).1
    );
}

#[test]
fn a_failing_dockerfile_exits_1_and_names_the_variant() {
    let Some(registry) = ready() else { return };
    let storage = PrivateStorage::new();
    let dir = tempfile::tempdir().unwrap();
    repo(
        dir.path(),
        DOCKER,
        Some("FROM scratch\nCOPY not-there.txt /x\n"),
    );
    let image = format!("{}/e2e/broken", registry.host);
    let out = build(
        dir.path(),
        &storage,
        &[
            "--image",
            &image,
            "--builder",
            "buildah",
            "--insecure-registry",
            &registry.host,
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let name = dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        stderr.contains(&format!(
            "error: {name}/k8s failure: buildah build of Dockerfile.k8s"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("not-there.txt"), "{stderr}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with(&name) && l.contains(" k8s "))
        .unwrap_or_else(|| panic!("no k8s row in {stdout}"));
    assert!(row.contains("failure"), "{row}");
    assert!(
        stdout.contains(&format!("==> {name}/k8s: failed after")),
        "{stdout}"
    );
}

#[test]
fn services_file_builds_only_the_chosen_services_in_parallel() {
    let Some(registry) = ready() else { return };
    let storage = PrivateStorage::new();
    let root = tempfile::tempdir().unwrap();
    let sha = repo(root.path(), DOCKER, None);
    for (name, k8s) in [("a", true), ("b", false), ("c", false)] {
        let dir = root.path().join("svc").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f.txt"), name).unwrap();
        std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY f.txt /f\n").unwrap();
        if k8s {
            std::fs::write(dir.join("Dockerfile.k8s"), "FROM scratch\nCOPY f.txt /k\n").unwrap();
        }
    }
    let custom = format!("{}/custom/c-image", registry.host);
    std::fs::write(
        root.path().join("services.yaml"),
        format!(
            "- name: a\n  context: svc/a\n  namespace: shop\n\
             - name: b\n  context: svc/b\n  namespace: shop\n\
             - name: c\n  context: svc/c\n  dockerfile: Dockerfile\n  namespace: shop\n  image: {custom}\n"
        ),
    )
    .unwrap();
    let out = build(
        root.path(),
        &storage,
        &[
            "--all",
            "-p",
            "2",
            "--only",
            "a,c",
            "--registry",
            &registry.host,
            "--insecure-registry",
            &registry.host,
            "--builder",
            "buildah",
            "--short-sha",
            "7",
            "--json",
        ],
    );
    let report = json(&out);
    assert!(out.status.success(), "{}", text(&out).1);
    let names: Vec<&str> = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "c"]);
    // -p 2: both services start before either finishes.
    let log = text(&out).1;
    let c_started = log.find("==> c: building").unwrap();
    let first_built = log.find(": built in").unwrap();
    assert!(c_started < first_built, "not in parallel:\n{log}");
    let short = &sha[..7];
    let mut a_tags = vec![
        "latest".to_string(),
        "docker-latest".to_string(),
        format!("docker-{short}"),
        "k8s-latest".to_string(),
        format!("k8s-{short}"),
    ];
    a_tags.sort();
    assert_eq!(registry.tags("shop/a"), a_tags);
    assert!(registry.tags("shop/b").is_empty(), "b was not chosen");
    assert_eq!(registry.tags("custom/c-image").len(), 3);
    assert_eq!(
        report["services"][1]["variants"][0]["digest"].as_str(),
        registry.digest("custom/c-image", "latest").as_deref()
    );

    let out = build(
        root.path(),
        &storage,
        &["--only", "a,zzz", "--registry", "r"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("--only zzz: no such service"),
        "{}",
        text(&out).1
    );
}

#[test]
fn dry_run_prints_the_commands_or_manifests_and_pushes_nothing() {
    let Some(registry) = ready() else { return };
    let storage = PrivateStorage::new();
    let dir = tempfile::tempdir().unwrap();
    repo(dir.path(), DOCKER, Some(K8S));
    let image = format!("{}/e2e/dry", registry.host);
    let out = build(
        dir.path(),
        &storage,
        &[
            "--image",
            &image,
            "--builder",
            "buildah",
            "--dry-run",
            "--insecure-registry",
            &registry.host,
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.matches("buildah bud -f").count(), 2, "{stdout}");
    assert_eq!(
        stdout.matches("buildah push --tls-verify=false").count(),
        5,
        "{stdout}"
    );
    assert!(registry.tags("e2e/dry").is_empty());

    let out = harness::cli::command()
        .args([
            "build",
            "--image",
            &image,
            "--dry-run",
            "--json",
            "--builder",
            "buildah",
        ])
        .current_dir(dir.path())
        .envs(storage.env())
        .env("GITHUB_SHA", "feedc0de")
        .output()
        .unwrap();
    let report = json(&out);
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["builder"], "buildah");
    let docker = report["services"][0]["variants"][0]["commands"]
        .as_array()
        .unwrap();
    assert_eq!(docker.len(), 4, "one build and three pushes: {docker:?}");
    assert!(
        docker[0]
            .as_str()
            .unwrap()
            .contains(&format!("-t {image}:docker-feedc0de")),
        "GITHUB_SHA names the tags: {docker:?}"
    );

    let out = build(
        dir.path(),
        &storage,
        &[
            "--image",
            &image,
            "--builder",
            "kaniko",
            "--dry-run",
            "--build-arg",
            "TOKEN=hunter2",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    // Build args often carry tokens: shown as `***`, as the local builders' dry runs do.
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(stdout.contains("--build-arg=TOKEN=***"), "{stdout}");
    assert_eq!(stdout.matches("kind: Job").count(), 2, "{stdout}");
    assert!(stdout.contains("kind: Namespace"), "{stdout}");
    assert!(
        stdout.contains(&format!("--destination={image}:k8s-latest")),
        "{stdout}"
    );
    assert!(registry.tags("e2e/dry").is_empty());
}

#[test]
fn auto_picks_buildah_on_this_machine() {
    let Some(registry) = ready() else { return };
    let storage = PrivateStorage::new();
    let dir = tempfile::tempdir().unwrap();
    let sha = repo(dir.path(), DOCKER, None);
    let image = format!("{}/e2e/auto", registry.host);
    let out = build(
        dir.path(),
        &storage,
        &[
            "--image",
            &image,
            "--insecure-registry",
            &registry.host,
            "--tag",
            "v1.2",
            "--short-sha",
            "12",
            "--json",
        ],
    );
    let report = json(&out);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(report["builder"], "buildah");
    let mut expected = vec![
        "latest".to_string(),
        "docker-latest".to_string(),
        format!("docker-{}", &sha[..12]),
        "v1.2".to_string(),
    ];
    expected.sort();
    assert_eq!(registry.tags("e2e/auto"), expected);
}

#[test]
fn usage_errors_exit_2() {
    let storage = PrivateStorage::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), DOCKER).unwrap();
    let out = build(
        dir.path(),
        &storage,
        &["--image", "r/x", "--builder", "nope"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("unknown builder 'nope'"),
        "{}",
        text(&out).1
    );

    let empty = tempfile::tempdir().unwrap();
    let out = build(empty.path(), &storage, &["--image", "r/x", "--sha", "abc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("has no Dockerfile"),
        "{}",
        text(&out).1
    );

    let out = build(dir.path(), &storage, &["--sha", "abc"]);
    assert_eq!(out.status.code(), Some(2), "--image or --all is required");

    let out = build(dir.path(), &storage, &["sub", "--all"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("--services FILE"), "{}", text(&out).1);

    let out = build(
        dir.path(),
        &storage,
        &["--image", "r/X:tag", "--sha", "abc"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("image"), "{}", text(&out).1);
}

#[test]
fn ctrl_c_cancels_the_builds_and_leaves_no_builder_behind() {
    if !require_program("buildah", "hybrid-runner build is tested with buildah")
        || !require_program("git", "the tag sha comes from a git repository")
    {
        return;
    }
    // A registry that accepts connections and never answers: pulling the base image hangs.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_host = silent.local_addr().unwrap().to_string();
    let storage = PrivateStorage::new();
    let dir = tempfile::tempdir().unwrap();
    repo(
        dir.path(),
        &format!("FROM {silent_host}/never/answers:1\n"),
        None,
    );
    let mut child = harness::cli::command()
        .args([
            "build",
            "--image",
            "127.0.0.1:1/e2e/hung",
            "--builder",
            "buildah",
            "--json",
        ])
        .current_dir(dir.path())
        .envs(storage.env())
        .env_remove("GITHUB_SHA")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2000));
    let started = std::time::Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = loop {
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().unwrap();
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("hybrid-runner build did not stop within 20 s of SIGINT");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let report = json(&out);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    assert_eq!(report["services"][0]["variants"][0]["result"], "cancelled");
    assert_eq!(
        report["metrics"]["hybrid_runner_builds_total"][0]["labels"]["result"],
        "cancelled"
    );
    let needle = storage.conf().display().to_string();
    let left = std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("environ"))
            .is_ok_and(|env| String::from_utf8_lossy(&env).contains(&needle))
    });
    assert!(!left, "a buildah process outlived the cancel");
}

#[test]
fn no_usable_builder_exits_1_listing_what_was_tried() {
    let storage = PrivateStorage::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), DOCKER).unwrap();
    let out = harness::cli::command()
        .args(["build", "--image", "r/x", "--sha", "abc", "--json"])
        .current_dir(dir.path())
        .env("PATH", dir.path().join("empty-bin"))
        .env("HOME", storage.path())
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    let error = report["error"].as_str().unwrap();
    for tried in [
        "kaniko: no kubeconfig",
        "buildah: `buildah` is not on PATH",
        "podman: ",
        "docker: ",
    ] {
        assert!(error.contains(tried), "{tried} missing: {error}");
    }
    assert!(
        text(&out).1.starts_with("error: auto: no usable builder"),
        "{}",
        text(&out).1
    );
}
