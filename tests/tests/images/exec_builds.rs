#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Image builds inside `hybrid-runner exec`, end to end: the real binary runs workflows in a
//! fresh git repository with `--builder buildah` (vfs storage in a private folder, chroot
//! isolation) against a real `docker-registry` on loopback. The three build forms: the
//! runner's own `hybrid-runner/build`, `docker/build-push-action`, and `docker` in `run:`
//! steps through the shim, and the two together (the shim tags what the action pushed).
//! Skipped with a notice when buildah or docker-registry is missing
//! outside CI.

use std::process::Command;

use harness::buildah::PrivateStorage;
use harness::exec_run::ExecRun;
use harness::git::git;
use harness::registry::{Registry, require_program};
use serde_json::Value;

/// A git repository with a workflow and build contexts, and a private buildah storage.
struct Project {
    dir: tempfile::TempDir,
    storage: PrivateStorage,
}

impl Project {
    fn new(files: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        harness::git::repo(dir.path(), files);
        let storage = PrivateStorage::new();
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
        let mut command = harness::cli::command();
        command
            .arg("exec")
            .arg("--json")
            .args(["--builder", builder])
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("XDG_CACHE_HOME", self.dir.path().join(".no-cache"))
            .envs(self.storage.env())
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

mod actions;
mod safety;
mod shim;
