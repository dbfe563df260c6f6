//! A private buildah storage for the build tests: a `storage.conf` pointing graph and run
//! roots into a temporary folder (vfs driver), so tests never touch the host's images and
//! run in parallel without sharing a lock.

use std::path::{Path, PathBuf};

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
}

impl Default for PrivateStorage {
    fn default() -> Self {
        PrivateStorage::new()
    }
}
