#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The registry fixture itself: a real buildah build pushed to it shows up with the digest
//! buildah reported.

use std::process::Command;

use harness::registry::{Registry, require_program};

#[test]
fn buildah_push_lands_in_the_registry_with_its_digest() {
    let Some(registry) = Registry::start() else {
        return;
    };
    if !require_program("buildah", "the build tests use a real local builder") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("hello.txt"), "hello\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY hello.txt /hello.txt\n",
    )
    .unwrap();
    let storage = dir.path().join("storage");
    let image = format!("{}/fixture/app:one", registry.host);
    let buildah = |args: &[&str]| {
        let out = Command::new("buildah")
            .arg("--storage-driver")
            .arg("vfs")
            .arg("--root")
            .arg(storage.join("root"))
            .arg("--runroot")
            .arg(storage.join("run"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "buildah {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    buildah(&[
        "bud",
        "--isolation",
        "chroot",
        "-t",
        &image,
        ctx.to_str().unwrap(),
    ]);
    let digest_file = dir.path().join("digest");
    buildah(&[
        "push",
        "--tls-verify=false",
        "--digestfile",
        digest_file.to_str().unwrap(),
        &image,
    ]);
    let pushed = std::fs::read_to_string(&digest_file).unwrap();
    assert_eq!(registry.tags("fixture/app"), vec!["one".to_string()]);
    assert_eq!(
        registry.digest("fixture/app", "one").as_deref(),
        Some(pushed.trim())
    );
    assert_eq!(registry.digest("fixture/app", "missing"), None);
}
