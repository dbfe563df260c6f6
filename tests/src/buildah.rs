//! A private buildah storage for the build tests: a `storage.conf` pointing graph and run
//! roots into a temporary folder (vfs driver), so tests never touch the host's images and
//! run in parallel without sharing a lock. Also `buildah` itself run on that storage, the
//! runner's local builder set up to use it, and a tiny image built and pushed with it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hr_image::ImageBuilder;
use hr_image::local::{LocalBuilder, LocalTool};

use crate::registry::Registry;

/// A temporary containers-storage; its files go when the value drops.
#[derive(Debug)]
pub struct PrivateStorage {
    dir: tempfile::TempDir,
}

impl PrivateStorage {
    pub fn new() -> PrivateStorage {
        let dir = tempfile::tempdir().expect("a folder for the buildah storage");
        let conf = format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            dir.path().join("root").display(),
            dir.path().join("run").display()
        );
        std::fs::write(dir.path().join("storage.conf"), conf).expect("write storage.conf");
        PrivateStorage { dir }
    }

    /// `CONTAINERS_STORAGE_CONF`, `STORAGE_DRIVER=vfs`, `BUILDAH_ISOLATION=chroot`: what
    /// buildah needs on this machine (root, no overlay, no runc namespaces).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "CONTAINERS_STORAGE_CONF".to_string(),
                self.conf().display().to_string(),
            ),
            ("STORAGE_DRIVER".to_string(), "vfs".to_string()),
            ("BUILDAH_ISOLATION".to_string(), "chroot".to_string()),
        ]
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("storage.conf")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `buildah --storage-driver vfs --root … --runroot …` on this storage, with [`Self::env`].
    pub fn command(&self) -> Command {
        let mut command = Command::new("buildah");
        command
            .arg("--storage-driver")
            .arg("vfs")
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .envs(self.env());
        command
    }

    /// Runs `buildah ARGS` on this storage; fails the test (showing `context` too) when it
    /// fails.
    pub fn run(&self, args: &[&str], context: &str) -> Output {
        let out = self.command().args(args).output().expect("buildah runs");
        assert!(
            out.status.success(),
            "buildah {args:?} failed:\n{}\n{context}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The runner's local builder (`LocalTool::Buildah`) working on this storage.
    pub fn builder(&self) -> ImageBuilder {
        let mut builder = LocalBuilder::new(LocalTool::Buildah, "buildah");
        builder.env = self.env();
        ImageBuilder::Local(builder)
    }

    /// Builds `FROM scratch` + a `hello.txt` as `image` (chroot isolation) and pushes it to
    /// `registry` over plain HTTP; the digest buildah reported.
    pub fn push_hello(&self, registry: &Registry, image: &str) -> String {
        let ctx = self.dir.path().join("hello-ctx");
        std::fs::create_dir_all(&ctx).expect("the build context folder");
        std::fs::write(ctx.join("hello.txt"), "hello\n").expect("write hello.txt");
        std::fs::write(
            ctx.join("Dockerfile"),
            "FROM scratch\nCOPY hello.txt /hello.txt\n",
        )
        .expect("write the Dockerfile");
        let ctx = ctx.to_str().expect("a UTF-8 path");
        let log = || registry.log();
        self.run(&["bud", "--isolation", "chroot", "-t", image, ctx], &log());
        let digest_file = self.dir.path().join("digest");
        let digest_path = digest_file.to_str().expect("a UTF-8 path");
        let push = [
            "push",
            "--tls-verify=false",
            "--digestfile",
            digest_path,
            image,
        ];
        self.run(&push, &log());
        std::fs::read_to_string(&digest_file)
            .expect("buildah wrote the digest file")
            .trim()
            .to_string()
    }
}

impl Default for PrivateStorage {
    fn default() -> Self {
        PrivateStorage::new()
    }
}
