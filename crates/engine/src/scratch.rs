//! The runner's scratch folders: private to its user (step scripts hold expanded secrets,
//! the `GITHUB_*` command files what steps write to them), deleted when the run ends, and
//! deleted by the next start when a run could not delete its own (killed, crashed, power
//! lost).
//!
//! Each folder is `hybrid-runner-*` in the system's temp folder (`TMPDIR`), mode 0700, and
//! holds a lock file its run keeps locked (`flock`) while it lives. The kernel drops the
//! lock when the process ends however it ends, so a folder whose lock can be taken belongs
//! to no live run: [`remove_abandoned`] deletes those. A pid would not do, as pids are
//! reused.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// What every scratch folder's name starts with.
pub const PREFIX: &str = "hybrid-runner-";

/// The lock file inside a live scratch folder.
const LOCK: &str = ".hybrid-runner.lock";

/// A private scratch folder, locked while the value lives and deleted with it.
#[derive(Debug)]
pub struct ScratchFolder {
    // Declared first, so dropped (deleted) while the lock is still held.
    dir: tempfile::TempDir,
    _lock: File,
}

impl ScratchFolder {
    /// Creates `hybrid-runner-<name>-*` in the temp folder, mode 0700, and locks it.
    pub fn create(name: &str) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{name}-"))
            .permissions(private_folder())
            .tempdir()?;
        // Locked under another name first, then renamed: a cleanup that runs meanwhile
        // never finds an unlocked lock file in a live folder.
        let pending = dir.path().join(".hybrid-runner.lock-new");
        let lock = File::create(&pending)?;
        lock.lock()?;
        std::fs::rename(&pending, dir.path().join(LOCK))?;
        Ok(Self { dir, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The mode of the runner's scratch folders: only this user reads or enters them.
pub fn private_folder() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o700)
}

/// Deletes the scratch folders in the temp folder that this user's runs left behind (their
/// lock is free: the run that made them is gone). Returns the folders deleted; a folder that
/// cannot be deleted is left for the next start.
pub fn remove_abandoned() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return Vec::new();
    };
    let me = nix::unistd::geteuid().as_raw();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        use std::os::unix::fs::MetadataExt;
        // `symlink_metadata`: a link named like ours is never followed.
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != me {
            continue;
        }
        let Ok(lock) = File::open(entry.path().join(LOCK)) else {
            continue; // not one of ours, or still being made
        };
        if lock.try_lock().is_ok() && crate::placement::remove_tree(&entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_folder_is_kept_and_an_abandoned_one_removed() {
        // The temp folder is the process's; other tests may make folders in it meanwhile,
        // so only this test's own folders are looked at.
        let live = ScratchFolder::create("scratch-test-live").unwrap();
        let abandoned = ScratchFolder::create("scratch-test-abandoned").unwrap();
        let abandoned_path = abandoned.path().to_path_buf();
        std::fs::write(abandoned_path.join("step.sh"), "echo secret").unwrap();
        // What a killed run leaves: the folder stays, the lock goes with the process.
        let ScratchFolder { dir, _lock } = abandoned;
        let kept = dir.keep();
        drop(_lock);
        assert_eq!(kept, abandoned_path);
        let removed = remove_abandoned();
        assert!(removed.contains(&abandoned_path), "{removed:?}");
        assert!(!abandoned_path.exists());
        assert!(live.path().is_dir(), "a live run's folder must stay");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(live.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
