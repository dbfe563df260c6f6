#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Image builds inside `hybrid-runner exec`, end to end: the real binary runs workflows in a
//! fresh git repository with `--builder buildah` (vfs storage in a private folder, chroot
//! isolation) against a real `docker-registry` on loopback. The three build forms: the
//! runner's own `hybrid-runner/build`, `docker/build-push-action`, and `docker` in `run:`
//! steps through the shim, and the two together (the shim tags what the action pushed).
//! Skipped with a notice when buildah or docker-registry is missing
//! outside CI.

use std::path::Path;
use std::process::Command;

use harness::exec_run::ExecRun;
use harness::registry::{Registry, require_program};
use serde_json::Value;

/// The `hybrid-runner` command line (the tests crate's copy of it, the same `cli::main`,
/// built by Cargo before the tests run).
fn runner_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_hybrid-runner-cli"))
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A git repository with a workflow and build contexts, and a private buildah storage.
struct Project {
    dir: tempfile::TempDir,
    storage: tempfile::TempDir,
}

impl Project {
    fn new(files: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(dir.path(), &["config", "user.name", "tester"]);
        git(dir.path(), &["config", "user.email", "tester@example.com"]);
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        git(dir.path(), &["add", "-A"]);
        git(dir.path(), &["commit", "-q", "-m", "init"]);
        let storage = tempfile::tempdir().unwrap();
        std::fs::write(
            storage.path().join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/run\"\n",
                storage.path().display()
            ),
        )
        .unwrap();
        // The runner's (and buildah's) Docker config: empty, not the host's.
        std::fs::create_dir_all(storage.path().join("docker")).unwrap();
        std::fs::write(
            storage.path().join("docker/config.json"),
            "{\"auths\":{}}\n",
        )
        .unwrap();
        Project { dir, storage }
    }

    fn sha(&self) -> String {
        git(self.dir.path(), &["rev-parse", "HEAD"])
    }

    /// `exec --json --builder buildah --insecure-registry HOST ARGS`.
    fn exec(&self, registry: Option<&Registry>, args: &[&str]) -> ExecRun {
        self.exec_as("buildah", registry, args)
    }

    /// `exec --json --builder BUILDER …`, with no Kubernetes configuration around.
    fn exec_as(&self, builder: &str, registry: Option<&Registry>, args: &[&str]) -> ExecRun {
        let mut command = Command::new(runner_binary());
        command
            .arg("exec")
            .arg("--json")
            .args(["--builder", builder])
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("XDG_CACHE_HOME", self.dir.path().join(".no-cache"))
            .env("STORAGE_DRIVER", "vfs")
            .env("BUILDAH_ISOLATION", "chroot")
            .env(
                "CONTAINERS_STORAGE_CONF",
                self.storage.path().join("storage.conf"),
            )
            .env("DOCKER_CONFIG", self.storage.path().join("docker"));
        if let Some(registry) = registry {
            command.args(["--insecure-registry", &registry.host]);
        }
        for var in [
            "GITHUB_ACTIONS",
            "GITHUB_WORKSPACE",
            "ACTIONS_STEP_DEBUG",
            "KUBECONFIG",
            "KUBERNETES_SERVICE_HOST",
        ] {
            command.env_remove(var);
        }
        command.env("HOME", self.storage.path());
        ExecRun::from_output(command.output().expect("the binary runs"))
    }
}

/// The registry and buildah, or `None` (after a notice) outside CI when one is missing.
fn tools() -> Option<Registry> {
    if !require_program("buildah", "exec builds use a real local builder") {
        return None;
    }
    Registry::start()
}

const DOCKERFILE: &str = "FROM scratch\nCOPY hello.txt /hello.txt\n";
const K8S_DOCKERFILE: &str = "FROM scratch\nCOPY k8s.txt /k8s.txt\n";

fn workflow(steps: &str) -> String {
    format!("on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n{steps}")
}

#[path = "exec_builds/actions.rs"]
mod actions;
#[path = "exec_builds/safety.rs"]
mod safety;
#[path = "exec_builds/shim.rs"]
mod shim;
