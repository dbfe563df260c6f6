#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Opt-in build avoidance end to end (`hybrid-runner build --skip-unchanged`, and
//! `skip-unchanged: true` on `hybrid-runner/build@v1` through `hybrid-runner exec`): a real
//! buildah (private vfs storage, chroot isolation) pushing to a real registry on loopback.
//! A second build of unchanged inputs must not run buildah and must put the new tags on the
//! first build's images; any changed input must rebuild.

use std::path::Path;
use std::process::{Command, Output};

use harness::buildah::PrivateStorage;
use harness::registry::{Registry, require_program};
use serde_json::Value as Json;

const DOCKER: &str = "FROM scratch\nCOPY hello.txt /docker.txt\n";
const K8S: &str = "FROM scratch\nCOPY hello.txt /k8s.txt\n";
const KEY_LABEL: &str = "org.hybrid-runner.build-key";

fn ready() -> Option<Registry> {
    if !require_program("buildah", "build avoidance is tested with buildah") {
        return None;
    }
    Registry::start()
}

/// A service folder with `hello.txt`, `Dockerfile` and `Dockerfile.k8s`.
fn service(dir: &Path) {
    std::fs::write(dir.join("hello.txt"), "hello\n").unwrap();
    std::fs::write(dir.join("Dockerfile"), DOCKER).unwrap();
    std::fs::write(dir.join("Dockerfile.k8s"), K8S).unwrap();
}

/// The runner binary with the private storage, an empty Docker config and no cluster.
fn runner(cwd: &Path, storage: &PrivateStorage) -> Command {
    let docker_config = storage.path().join("docker");
    std::fs::create_dir_all(&docker_config).unwrap();
    std::fs::write(docker_config.join("config.json"), "{\"auths\":{}}\n").unwrap();
    let mut command = harness::cli::command();
    command
        .current_dir(cwd)
        .envs(storage.env())
        .env("HOME", storage.path())
        .env("DOCKER_CONFIG", &docker_config)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_SHA")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_WORKSPACE")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST");
    command
}

/// `hybrid-runner build --image IMAGE --sha SHA --builder buildah --json --skip-unchanged`.
fn build(
    dir: &Path,
    storage: &PrivateStorage,
    registry: &Registry,
    sha: &str,
    extra: &[&str],
) -> (Json, String) {
    let image = format!("{}/avoid/app", registry.host);
    let out: Output = runner(dir, storage)
        .arg("build")
        .args(["--image", &image, "--sha", sha, "--builder", "buildah"])
        .args(["--insecure-registry", &registry.host, "--json"])
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert!(out.status.success(), "{stderr}");
    (report, stderr)
}

/// `(variant, reused, digest)` per variant of the only service.
fn variants(report: &Json) -> Vec<(String, bool, String)> {
    report["services"][0]["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["variant"].as_str().unwrap().to_string(),
                v["reused"].as_bool().unwrap(),
                v["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Whether buildah built `variant` in this run (its `bud` command line is in the log).
fn built(stderr: &str, variant: &str) -> bool {
    stderr
        .lines()
        .any(|l| l.contains(&format!("/{variant}] $ ")) && l.contains(" bud "))
}

fn markers(registry: &Registry) -> Vec<String> {
    registry
        .tags("avoid/app")
        .into_iter()
        .filter(|t| t.starts_with("build-"))
        .collect()
}

/// The `org.hybrid-runner.build-key` label of the image `tag` points at.
fn key_label(registry: &Registry, tag: &str) -> String {
    let client = reqwest::blocking::Client::new();
    let manifest: Json = client
        .get(format!(
            "http://{}/v2/avoid/app/manifests/{tag}",
            registry.host
        ))
        .header(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    let config = manifest["config"]["digest"].as_str().unwrap();
    let config: Json = client
        .get(format!(
            "http://{}/v2/avoid/app/blobs/{config}",
            registry.host
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    config["config"]["Labels"][KEY_LABEL]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn unchanged_inputs_reuse_both_variants_under_the_new_tags() {
    let Some(registry) = ready() else { return };
    let storage = PrivateStorage::new();
    let dir = tempfile::tempdir().unwrap();
    service(dir.path());

    let (first, log) = build(
        dir.path(),
        &storage,
        &registry,
        "sha1",
        &["--skip-unchanged"],
    );
    let first_tags = first["services"][0]["variants"][1]["tags"].clone();
    let first = variants(&first);
    assert!(first.iter().all(|(_, reused, _)| !reused), "{first:?}");
    assert!(built(&log, "docker") && built(&log, "k8s"), "{log}");
    // The five tags plus one marker per variant, each marker on its variant's image, whose
    // label is the full key the marker abbreviates.
    let markers_now = markers(&registry);
    assert_eq!(markers_now.len(), 2, "{:?}", registry.tags("avoid/app"));
    assert_eq!(registry.tags("avoid/app").len(), 7);
    for marker in &markers_now {
        let digest = registry.digest("avoid/app", marker).unwrap();
        assert!(first.iter().any(|(_, _, d)| *d == digest), "{marker}");
        let label = key_label(&registry, marker);
        assert_eq!(label.len(), 64, "{label}");
        assert_eq!(&label[..20], &marker["build-".len()..]);
    }
    // The markers are not reported as the variants' tags.
    assert_eq!(
        first_tags,
        serde_json::json!([
            format!("{}/avoid/app:k8s-latest", registry.host),
            format!("{}/avoid/app:k8s-sha1", registry.host),
        ])
    );

    let (second, log) = build(
        dir.path(),
        &storage,
        &registry,
        "sha2",
        &["--skip-unchanged"],
    );
    let tags = second["services"][0]["variants"][0]["tags"].clone();
    let second = variants(&second);
    assert!(
        second.iter().all(|(_, reused, _)| *reused),
        "{second:?}\n{log}"
    );
    assert!(
        !built(&log, "docker") && !built(&log, "k8s"),
        "buildah ran:\n{log}"
    );
    assert!(log.contains("reused"), "{log}");
    for ((variant, _, old), (_, _, new)) in first.iter().zip(&second) {
        assert_eq!(old, new, "{variant} keeps its digest");
        let tag = format!("{variant}-sha2");
        assert_eq!(
            registry.digest("avoid/app", &tag).as_deref(),
            Some(new.as_str())
        );
    }
    assert_eq!(
        registry.digest("avoid/app", "latest").as_deref(),
        Some(first[0].2.as_str())
    );
    assert_eq!(
        tags,
        serde_json::json!([
            format!("{}/avoid/app:latest", registry.host),
            format!("{}/avoid/app:docker-latest", registry.host),
            format!("{}/avoid/app:docker-sha2", registry.host),
        ])
    );
    assert_eq!(markers(&registry), markers_now, "no new marker");

    // Without the flag the same inputs are built again.
    let (third, log) = build(dir.path(), &storage, &registry, "sha3", &[]);
    assert!(variants(&third).iter().all(|(_, reused, _)| !reused));
    assert!(built(&log, "docker") && built(&log, "k8s"), "{log}");
}

#[test]
fn a_changed_context_dockerfile_or_build_arg_rebuilds() {
    let Some(registry) = ready() else { return };
    let storage = PrivateStorage::new();
    let dir = tempfile::tempdir().unwrap();
    service(dir.path());
    let skip = ["--skip-unchanged"];
    let reused_of =
        |report: &Json| -> Vec<bool> { variants(report).into_iter().map(|(_, r, _)| r).collect() };

    let (_, _) = build(dir.path(), &storage, &registry, "c1", &skip);

    // A file of the context changes: both variants COPY it, both rebuild.
    std::fs::write(dir.path().join("hello.txt"), "hello again\n").unwrap();
    let (report, log) = build(dir.path(), &storage, &registry, "c2", &skip);
    assert_eq!(reused_of(&report), [false, false], "{log}");
    assert!(built(&log, "docker") && built(&log, "k8s"), "{log}");

    // A file that .dockerignore drops does not count.
    std::fs::write(dir.path().join(".dockerignore"), "notes.txt\n").unwrap();
    let (_, _) = build(dir.path(), &storage, &registry, "c3", &skip);
    std::fs::write(dir.path().join("notes.txt"), "scratch\n").unwrap();
    let (report, log) = build(dir.path(), &storage, &registry, "c4", &skip);
    assert_eq!(reused_of(&report), [true, true], "{log}");

    // The k8s Dockerfile changes. It is a file of the context too (a `COPY .` would see
    // it), so both variants rebuild, and the next build with it reuses both.
    std::fs::write(
        dir.path().join("Dockerfile.k8s"),
        "FROM scratch\nCOPY hello.txt /k8s-v2.txt\n",
    )
    .unwrap();
    let (report, log) = build(dir.path(), &storage, &registry, "c5", &skip);
    assert_eq!(reused_of(&report), [false, false], "{log}");
    assert!(built(&log, "k8s"), "{log}");
    assert_ne!(
        registry.digest("avoid/app", "k8s-c5"),
        registry.digest("avoid/app", "k8s-c4")
    );
    let (report, log) = build(dir.path(), &storage, &registry, "c5b", &skip);
    assert_eq!(reused_of(&report), [true, true], "{log}");

    // A build arg appears: both rebuild; the same arg again: both reused.
    let arg = ["--skip-unchanged", "--build-arg", "MODE=fast"];
    let (report, log) = build(dir.path(), &storage, &registry, "c6", &arg);
    assert_eq!(reused_of(&report), [false, false], "{log}");
    let (report, log) = build(dir.path(), &storage, &registry, "c7", &arg);
    assert_eq!(reused_of(&report), [true, true], "{log}");
    // Its value changes: rebuilt.
    let other = ["--skip-unchanged", "--build-arg", "MODE=slow"];
    let (report, log) = build(dir.path(), &storage, &registry, "c8", &other);
    assert_eq!(reused_of(&report), [false, false], "{log}");
}

#[test]
fn a_marker_whose_image_lacks_the_key_label_is_not_trusted() {
    let Some(registry) = ready() else { return };
    let storage = PrivateStorage::new();
    let dir = tempfile::tempdir().unwrap();
    service(dir.path());
    let (_, _) = build(dir.path(), &storage, &registry, "m1", &["--skip-unchanged"]);
    // Point the docker marker at an image without the label (built without avoidance).
    let docker_marker = markers(&registry)
        .into_iter()
        .find(|m| registry.digest("avoid/app", m) == registry.digest("avoid/app", "docker-m1"))
        .unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY hello.txt /x\n",
    )
    .unwrap();
    let (_, _) = build(dir.path(), &storage, &registry, "m2", &[]);
    let moved = registry.digest("avoid/app", "docker-m2").unwrap();
    let client = reqwest::blocking::Client::new();
    let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
    let manifest = client
        .get(format!(
            "http://{}/v2/avoid/app/manifests/{moved}",
            registry.host
        ))
        .header("Accept", accept)
        .send()
        .unwrap();
    let media = manifest.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    let bytes = manifest.bytes().unwrap();
    let put = client
        .put(format!(
            "http://{}/v2/avoid/app/manifests/{docker_marker}",
            registry.host
        ))
        .header("Content-Type", media)
        .body(bytes)
        .send()
        .unwrap();
    assert!(put.status().is_success(), "{put:?}");
    std::fs::write(dir.path().join("Dockerfile"), DOCKER).unwrap();

    let (report, log) = build(dir.path(), &storage, &registry, "m3", &["--skip-unchanged"]);
    let reused: Vec<bool> = variants(&report).into_iter().map(|(_, r, _)| r).collect();
    assert_eq!(reused, [false, true], "{log}");
    assert!(
        log.contains("has no org.hybrid-runner.build-key label"),
        "{log}"
    );
    // The rebuild points the marker at a labelled image again.
    assert!(!key_label(&registry, &docker_marker).is_empty());
}

#[test]
fn skip_unchanged_without_push_is_a_usage_error() {
    let storage = PrivateStorage::new();
    let dir = tempfile::tempdir().unwrap();
    service(dir.path());
    let out = runner(dir.path(), &storage)
        .args(["build", "--image", "reg.example/app", "--sha", "s"])
        .args(["--skip-unchanged", "--no-push"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-push"));
}

/// The workflow form: `skip-unchanged: true` on `hybrid-runner/build@v1` in `exec`.
#[test]
fn the_workflow_input_reuses_with_the_same_outputs() {
    let Some(registry) = ready() else { return };
    let storage = PrivateStorage::new();
    let dir = tempfile::tempdir().unwrap();
    service(dir.path());
    let host = &registry.host;
    let workflow = format!(
        r#"on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - id: img
        uses: hybrid-runner/build@v1
        with:
          image: {host}/avoid/app
          skip-unchanged: true
"#
    );
    // `.git` changes with every commit and is part of the context unless ignored.
    std::fs::write(dir.path().join(".dockerignore"), ".git\n.no-cache\n").unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    std::fs::write(dir.path().join(".github/workflows/ci.yml"), workflow).unwrap();
    let git = |args: &[&str]| harness::git::git(dir.path(), args);
    if !require_program("git", "exec reads the commit sha from git") {
        return;
    }
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "one"]);
    let exec = || {
        let out = runner(dir.path(), &storage)
            .args(["exec", "--json", "--builder", "buildah"])
            .args(["--insecure-registry", host])
            .env("XDG_CACHE_HOME", dir.path().join(".no-cache"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let events: Vec<Json> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let outputs = events
            .iter()
            .find(|e| e["event"] == "step_finished" && e["step"]["id"] == "img")
            .unwrap()["outputs"]
            .clone();
        let lines: Vec<String> = events
            .iter()
            .filter(|e| e["event"] == "log")
            .filter_map(|e| e["line"].as_str().map(str::to_string))
            .collect();
        (outputs, lines)
    };
    let output = |outputs: &Json, name: &str| -> String {
        outputs
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p[0] == name)
            .map(|p| p[1].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no output {name}: {outputs}"))
    };

    let (first, lines) = exec();
    let sha1 = git(&["rev-parse", "HEAD"]);
    assert!(lines.iter().any(|l| l.contains(" bud ")), "{lines:#?}");
    git(&["commit", "-q", "--allow-empty", "-m", "two"]);
    let sha2 = git(&["rev-parse", "HEAD"]);
    let (second, lines) = exec();
    assert!(
        !lines.iter().any(|l| l.contains(" bud ")),
        "buildah ran: {lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("[docker] reused ")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("[k8s] reused ")),
        "{lines:#?}"
    );
    for variant in ["docker", "k8s"] {
        let digest = output(&second, &format!("{variant}-digest"));
        assert_eq!(digest, output(&first, &format!("{variant}-digest")));
        assert_eq!(
            output(&second, &format!("{variant}-image")),
            format!("{host}/avoid/app@{digest}")
        );
        assert_eq!(
            output(&second, &format!("{variant}-tags")),
            output(&first, &format!("{variant}-tags")).replace(&sha1, &sha2),
            "the same tags, for the new commit, without the marker"
        );
        assert_eq!(
            registry.digest("avoid/app", &format!("{variant}-{sha2}")),
            Some(digest)
        );
    }
}
