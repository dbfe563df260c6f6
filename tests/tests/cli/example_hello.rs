//! The README's first command: `cd examples/hello && hybrid-runner exec` runs the whole
//! path (steps, a matrix, a `needs` output, a dual-tagged image build). The example is
//! copied to a temporary folder first, so the run writes nothing into the repository.

use std::path::{Path, PathBuf};
use std::process::Output;

use harness::buildah::PrivateStorage;

/// A copy of `examples/hello` and a folder holding `hybrid-runner` (the tests' binary
/// under the name the workflow calls), plus `extra` programs linked from the host.
struct Example {
    dir: tempfile::TempDir,
    bin: tempfile::TempDir,
}

impl Example {
    fn new(extra: &[&str]) -> Example {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(
            &harness::workspace_root().join("examples/hello"),
            dir.path(),
        );
        let bin = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(harness::cli::bin(), bin.path().join("hybrid-runner")).unwrap();
        for program in extra {
            if let Some(path) = which(program) {
                std::os::unix::fs::symlink(path, bin.path().join(program)).unwrap();
            }
        }
        Example { dir, bin }
    }

    /// `hybrid-runner exec` in the copy with `PATH` = our folder, then `path_tail`.
    fn exec(&self, path_tail: &str, env: &[(String, String)]) -> Output {
        let mut command = harness::cli::command();
        command
            .current_dir(self.dir.path())
            .arg("exec")
            .env("PATH", format!("{}:{path_tail}", self.bin.path().display()));
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().unwrap()
    }
}

/// `program` on this process's `PATH` (the runner's own lookup).
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    hr_process::shell::find_program(program, &path)
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn without_a_builder_the_example_says_so_and_shows_the_build_plan() {
    // A PATH with the shell and coreutils but no buildah, podman or docker.
    let example = Example::new(&["bash", "sh", "date", "cat", "env"]);
    let output = example.exec("/nonexistent", &[]);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    for matrix_leg in ["hello from", "bonjour from"] {
        assert!(all.contains(matrix_leg), "missing {matrix_leg:?}: {all}");
    }
    assert!(
        all.contains("building with the tag hello-"),
        "the needs output did not arrive: {all}"
    );
    assert!(all.contains("no image builder"), "{all}");
    // The plan names both variants' tags.
    for tag in [
        "localhost/hello:docker-latest",
        "localhost/hello:k8s-latest",
    ] {
        assert!(all.contains(tag), "the build plan lacks {tag}: {all}");
    }
    assert!(!all.contains("built localhost/hello"), "{all}");
}

#[test]
fn with_buildah_the_example_builds_both_variants() {
    if which("buildah").is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "buildah is missing under CI (.ci/test installs it)"
        );
        eprintln!("notice: buildah is not installed; skipped");
        return;
    }
    let storage = PrivateStorage::new();
    let example = Example::new(&[]);
    let output = example.exec(&std::env::var("PATH").unwrap(), &storage.env());
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(all.contains("building with the tag hello-"), "{all}");
    // One builder line per variant, then the step listing every tag.
    for variant in [
        "[docker] built localhost/hello:",
        "[k8s] built localhost/hello:",
    ] {
        assert!(all.contains(variant), "{variant:?} missing: {all}");
    }
    let listed = all
        .lines()
        .find(|line| line.contains("built localhost/hello") && !line.contains("] built"))
        .unwrap_or_else(|| panic!("no line listing the tags: {all}"));
    for tag in ["docker-latest", "k8s-latest"] {
        assert!(listed.contains(tag), "{tag} not in {listed}");
    }
}
