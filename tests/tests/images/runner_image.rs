#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The runner's own image: the root `Dockerfile` built and pushed by `hybrid-runner build`
//! with a real buildah (private vfs storage, chroot isolation) to a real registry on
//! loopback, then checked against what `generate-manifests` runs.
//!
//! Docker Hub is out of reach here, so the test brings its own base image: a minimal Debian
//! bookworm made by `debootstrap --variant=minbase` from Debian's mirror
//! (`HYBRID_RUNNER_DEBIAN_MIRROR`, default `http://deb.debian.org/debian`), pushed to the
//! loopback registry and passed as `RUNTIME_IMAGE`. Cargo does not run in the image: the
//! build takes the Dockerfile's documented `BINARY_FROM=prebuilt` with this crate's already
//! built `hybrid-runner-cli` (the same `cli::main` as the real binary) at the context root,
//! and the same Debian image as `RUST_IMAGE`, whose build stage then only copies it. The
//! runtime stage's `apt-get install` really runs against the mirror (chroot isolation shares
//! the host's network). Needs root (debootstrap, buildah mount), buildah, debootstrap,
//! docker-registry, git and the network to the Debian mirror. Takes 1.5 minutes on an idle
//! 2-core machine, about 3 while other builds share it (debootstrap is the slowest part).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use harness::buildah::PrivateStorage;
use harness::registry::{Registry, on_path, require_program};
use serde_json::Value as Json;

/// The base image as the test's registry holds it.
const RUNTIME_REPO: &str = "mirror/debian";
/// The repository the runner image is pushed to.
const IMAGE_REPO: &str = "hybrid-runner";

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

fn run(what: &str, command: &mut Command) -> Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn buildah(storage: &PrivateStorage) -> Command {
    let mut command = Command::new("buildah");
    command.envs(storage.env());
    command
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Everything this test needs, or `None` after a notice (a panic under CI).
fn ready() -> Option<Registry> {
    if !is_root() {
        assert!(
            !harness::under_ci(),
            "the runner image test needs root (debootstrap, buildah mount)"
        );
        eprintln!("notice: not root; skipping the runner image build (debootstrap needs root)");
        return None;
    }
    for (program, why) in [
        ("buildah", "the runner image is built with buildah"),
        ("debootstrap", "the test makes its own Debian base image"),
        ("git", "the build context is the workspace's tracked files"),
    ] {
        if !require_program(program, why) {
            return None;
        }
    }
    Registry::start()
}

/// A minimal Debian bookworm, as `debian:bookworm-slim` would be, at
/// `<registry>/mirror/debian:bookworm-slim`: debootstrapped into a buildah working
/// container of its own storage, committed and pushed. That storage goes afterwards, so the
/// build below pulls the image from the registry.
fn push_debian_base(registry: &Registry) -> String {
    let storage = PrivateStorage::new();
    let reference = format!("{}/{RUNTIME_REPO}:bookworm-slim", registry.host);
    let container = stdout(&run(
        "buildah from scratch",
        buildah(&storage).args(["from", "scratch"]),
    ));
    let rootfs = PathBuf::from(stdout(&run(
        "buildah mount",
        buildah(&storage).args(["mount", &container]),
    )));
    let mirror = std::env::var("HYBRID_RUNNER_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".to_string());
    run(
        "debootstrap",
        Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&rootfs)
            .arg(&mirror),
    );
    // As in the slim image: no package archives, no package lists.
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        for entry in std::fs::read_dir(rootfs.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
    run(
        "buildah config",
        buildah(&storage).args([
            "config",
            "--env",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--cmd",
            "bash",
            &container,
        ]),
    );
    run(
        "buildah commit",
        buildah(&storage).args(["commit", "--rm", "-q", &container, &reference]),
    );
    run(
        "buildah push",
        buildah(&storage).args(["push", "--tls-verify=false", &reference]),
    );
    reference
}

/// The workspace's tracked files (what a checkout holds) copied to `to`, plus the
/// prebuilt binary at its root as the Dockerfile's `prebuilt` stage wants it.
fn build_context(to: &Path) {
    let root = harness::workspace_root();
    let listed = run(
        "git ls-files",
        Command::new("git")
            .args(["ls-files", "-z"])
            .current_dir(&root),
    );
    for name in listed.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).unwrap();
        let from = root.join(name);
        let Ok(meta) = std::fs::symlink_metadata(&from) else {
            continue; // deleted in the working tree
        };
        let dest = to.join(name);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from).unwrap(), &dest).unwrap();
        } else if meta.is_file() {
            std::fs::copy(&from, &dest).unwrap();
        }
    }
    assert!(to.join("Dockerfile").is_file() && to.join(".dockerignore").is_file());
    // A debug build; stripped it is less than half the size, which the push feels.
    let binary = harness::cli::bin();
    let dest = to.join("hybrid-runner");
    if on_path("strip") {
        run(
            "strip",
            Command::new("strip").arg("-o").arg(&dest).arg(&binary),
        );
    } else {
        std::fs::copy(&binary, &dest).unwrap();
    }
}

/// The commit the image is tagged with: the workspace's HEAD.
fn head_sha() -> String {
    stdout(&run(
        "git rev-parse HEAD",
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(harness::workspace_root()),
    ))
}

fn get_json(client: &reqwest::blocking::Client, url: &str) -> Json {
    let response = client
        .get(url)
        .header("Accept", MANIFEST_ACCEPT)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(response.status().is_success(), "GET {url}: {response:?}");
    response.json().unwrap()
}

/// The image config (`config` of the config blob) of `repo:tag`, read over HTTP.
fn image_config(registry: &Registry, repo: &str, tag: &str) -> Json {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let base = format!("http://{}/v2/{repo}", registry.host);
    let manifest = get_json(&client, &format!("{base}/manifests/{tag}"));
    let digest = manifest["config"]["digest"].as_str().unwrap();
    get_json(&client, &format!("{base}/blobs/{digest}"))["config"].clone()
}

/// The StatefulSet's pod spec `generate-manifests` prints for `image`.
fn manifests_pod_spec(image: &str) -> Json {
    let out = run(
        "generate-manifests",
        harness::cli::command().args([
            "generate-manifests",
            "--instance",
            "https://gitea.example.com",
            "--image",
            image,
            "--json",
        ]),
    );
    let list: Json = serde_json::from_slice(&out.stdout).unwrap();
    let set = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "StatefulSet")
        .expect("a StatefulSet among the manifests")
        .clone();
    set["spec"]["template"]["spec"].clone()
}

#[test]
fn hybrid_runner_builds_and_pushes_its_own_image_with_buildah() {
    let Some(registry) = ready() else { return };
    let started = Instant::now();
    let runtime_image = push_debian_base(&registry);
    let base_pushed = started.elapsed();

    let context = tempfile::tempdir().unwrap();
    build_context(context.path());
    let sha = head_sha();
    let image = format!("{}/{IMAGE_REPO}", registry.host);
    // `--insecure-registry` covers the push; the base pull goes through `FROM
    // ${RUNTIME_IMAGE}`, an image named by an ARG, which the runner does not resolve when
    // it decides on `--tls-verify=false` for the build, so buildah learns from a
    // registries.conf that the loopback registry speaks plain HTTP.
    let conf_dir = tempfile::tempdir().unwrap();
    let registries_conf = conf_dir.path().join("registries.conf");
    std::fs::write(
        &registries_conf,
        format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
            registry.host
        ),
    )
    .unwrap();
    let storage = PrivateStorage::new();
    let build_started = Instant::now();
    let out = harness::cli::command()
        .arg("build")
        .arg(context.path())
        .args(["--image", &image, "--builder", "buildah"])
        .args(["--insecure-registry", &registry.host, "--sha", &sha])
        .arg("--build-arg")
        .arg(format!("RUNTIME_IMAGE={runtime_image}"))
        .arg("--build-arg")
        .arg(format!("RUST_IMAGE={runtime_image}"))
        .args(["--build-arg", "BINARY_FROM=prebuilt", "--json"])
        .envs(storage.env())
        .env("CONTAINERS_REGISTRIES_CONF", &registries_conf)
        .env("HOME", storage.path())
        .env_remove("GITHUB_SHA")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let built = build_started.elapsed();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "hybrid-runner build failed:\n{log}");
    let report: Json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("build --json printed no JSON ({e}):\n{log}"));
    assert_eq!(report["result"], "success", "{report}");
    assert_eq!(report["builder"], "buildah");
    // Apt ran against the mirror in the runtime stage; cargo did not run.
    assert!(log.contains("Setting up nodejs"), "{log}");
    assert!(
        !log.contains("Compiling "),
        "cargo ran in the build stage:\n{log}"
    );

    // No Dockerfile.k8s: the docker variant only, with its three tags.
    let variants = report["services"][0]["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 1, "{report}");
    assert_eq!(variants[0]["variant"], "docker");
    let digest = variants[0]["digest"].as_str().unwrap();
    let mut expected = vec![
        "latest".to_string(),
        "docker-latest".to_string(),
        format!("docker-{sha}"),
    ];
    expected.sort();
    assert_eq!(registry.tags(IMAGE_REPO), expected);
    for tag in &expected {
        assert_eq!(
            registry.digest(IMAGE_REPO, tag).as_deref(),
            Some(digest),
            "{tag}"
        );
    }

    // The pushed config fits the pod generate-manifests renders: the pod sets only `args`
    // (so the entrypoint is the runner behind tini), runs as the image's user, and mounts
    // /data and /work, which that user owns in the image.
    let config = image_config(&registry, IMAGE_REPO, &format!("docker-{sha}"));
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/bin/tini", "--", "/usr/local/bin/hybrid-runner"]),
        "{config}"
    );
    assert_eq!(
        config["Cmd"],
        serde_json::json!([
            "daemon",
            "--config",
            "/etc/hybrid-runner/config/config.yaml"
        ])
    );
    assert_eq!(config["WorkingDir"], "/work");
    assert!(
        config["Env"]
            .as_array()
            .unwrap()
            .contains(&Json::from("HOME=/work")),
        "{config}"
    );
    assert_eq!(
        config["Labels"]["org.opencontainers.image.revision"],
        sha.as_str()
    );
    let reference = format!("{image}:docker-{sha}");
    let pod = manifests_pod_spec(&reference);
    let uid = pod["securityContext"]["runAsUser"].as_i64().unwrap();
    let gid = pod["securityContext"]["runAsGroup"].as_i64().unwrap();
    assert_eq!(config["User"], format!("{uid}:{gid}"), "{config}");
    let mut containers = pod["initContainers"].as_array().unwrap().clone();
    containers.extend(pod["containers"].as_array().unwrap().iter().cloned());
    let mut mounts = Vec::new();
    for c in &containers {
        assert_eq!(c["image"], reference.as_str());
        assert!(
            c["command"].is_null(),
            "a container overrides the image entrypoint: {c}"
        );
        assert!(c["args"][0].is_string(), "{c}");
        for m in c["volumeMounts"].as_array().unwrap() {
            mounts.push(m["mountPath"].as_str().unwrap().to_string());
        }
    }
    assert!(
        mounts.contains(&"/data".to_string()) && mounts.contains(&"/work".to_string()),
        "{mounts:?}"
    );

    // The build's storage goes now (vfs keeps a full copy per layer: deleting takes a while).
    let cleanup_started = Instant::now();
    drop(storage);
    let mut cleanup = cleanup_started.elapsed();

    // The image from the registry (a fresh storage pulls it) runs the runner through tini,
    // as that user, with the tools host steps and JavaScript actions use.
    let run_started = Instant::now();
    let run_storage = PrivateStorage::new();
    let container = stdout(&run(
        "buildah from",
        buildah(&run_storage).args(["from", "--tls-verify=false", "-q", &reference]),
    ));
    let in_image = |args: &[&str]| {
        stdout(&run(
            &format!("buildah run {args:?}"),
            buildah(&run_storage)
                .args(["run", &container, "--"])
                .args(args),
        ))
    };
    let version = in_image(&[
        "/usr/bin/tini",
        "--",
        "/usr/local/bin/hybrid-runner",
        "--version",
    ]);
    assert_eq!(
        version,
        format!("hybrid-runner {}", env!("CARGO_PKG_VERSION"))
    );
    let facts = in_image(&[
        "bash",
        "-c",
        "id -u; id -g; stat -c '%u %n' /data /work; node --version; git --version; \
         test -r /etc/ssl/certs/ca-certificates.crt && echo ca-certificates",
    ]);
    let facts: Vec<&str> = facts.lines().collect();
    assert_eq!(facts[0], uid.to_string(), "{facts:?}");
    assert_eq!(facts[1], gid.to_string(), "{facts:?}");
    assert_eq!(facts[2], format!("{uid} /data"), "{facts:?}");
    assert_eq!(facts[3], format!("{uid} /work"), "{facts:?}");
    assert!(facts[4].starts_with('v'), "node: {facts:?}");
    assert!(facts[5].starts_with("git version"), "{facts:?}");
    assert_eq!(facts[6], "ca-certificates", "{facts:?}");
    run("buildah rm", buildah(&run_storage).args(["rm", &container]));
    let ran = run_started.elapsed();
    let cleanup_started = Instant::now();
    drop(run_storage);
    cleanup += cleanup_started.elapsed();

    println!(
        "runner image: base image debootstrapped and pushed in {base_pushed:.1?}, built and pushed \
         in {built:.1?}, pulled and run in {ran:.1?}, storages deleted in {cleanup:.1?}, \
         {:.1?} in all",
        started.elapsed()
    );
}

/// The root `.dockerignore`, read by the runner's own reader (`hybrid-runner context
/// --list`): version control, CI files and build output stay out, every workspace crate
/// (the build stage compiles the workspace) and the templates stay in.
#[test]
fn the_dockerignore_keeps_git_and_build_output_out_of_the_image_context() {
    let root = harness::workspace_root();
    let list = |dir: &Path| -> Vec<String> {
        let out = run(
            "hybrid-runner context --list",
            harness::cli::command().args(["context", "--list"]).arg(dir),
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };

    // A folder with the repository's Dockerfile and .dockerignore and the files a
    // developer's checkout has that must stay out.
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ".git/HEAD",
        ".github/workflows/ci.yml",
        ".ci/test",
        "target/debug/hybrid-runner",
        "crates/hybrid-runner/target/x",
        "fuzz/corpus/a",
        "fuzz/artifacts/b",
        "runner/src/lib.rs.bk",
        "Cargo.toml",
        "Cargo.lock",
        "crates/hybrid-runner/src/main.rs",
        "fuzz/fuzz_targets/f.rs",
        "templates/deploy/pod.yaml",
        "hybrid-runner",
    ];
    for name in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, name).unwrap();
    }
    for name in ["Dockerfile", ".dockerignore"] {
        std::fs::copy(root.join(name), dir.path().join(name)).unwrap();
    }
    let listed = list(dir.path());
    let kept: Vec<&str> = files
        .iter()
        .copied()
        .filter(|f| listed.iter().any(|l| l == f))
        .collect();
    assert_eq!(
        kept,
        [
            "Cargo.toml",
            "Cargo.lock",
            "crates/hybrid-runner/src/main.rs",
            "fuzz/fuzz_targets/f.rs",
            "templates/deploy/pod.yaml",
            "hybrid-runner",
        ],
        "{listed:?}"
    );
    assert!(listed.iter().any(|l| l == "Dockerfile"));

    // The workspace itself: every member's manifest is in, nothing under .git.
    let listed = list(&root);
    let metadata = run(
        "cargo metadata",
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()))
            .args([
                "metadata",
                "--no-deps",
                "--format-version",
                "1",
                "--offline",
            ])
            .current_dir(&root),
    );
    let metadata: Json = serde_json::from_slice(&metadata.stdout).unwrap();
    for package in metadata["packages"].as_array().unwrap() {
        let manifest = Path::new(package["manifest_path"].as_str().unwrap());
        let relative = manifest.strip_prefix(&root).unwrap().to_string_lossy();
        assert!(listed.iter().any(|l| *l == relative), "{relative} left out");
    }
    for name in ["Cargo.lock", "Dockerfile", ".dockerignore"] {
        assert!(listed.iter().any(|l| l == name), "{name} left out");
    }
    assert!(
        !listed
            .iter()
            .any(|l| l == ".git" || l.starts_with(".git/") || l.starts_with("target/")),
        "{listed:?}"
    );
}
