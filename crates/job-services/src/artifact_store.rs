//! Artifacts on disk (`exec --artifact-server-path DIR`), shared by the jobs of a run:
//! `DIR/<run>/<name>/<name>.zip` (or `DIR/<run>/<name>/<name>` for an upload that is no
//! zip), with their records in `DIR/.records/<id>.json`, written last so that an artifact
//! is there whole or not at all. Uploads in progress are under `DIR/.uploads` and do not
//! survive a restart.
//!
//! An artifact belongs to its run: any job of the run lists, downloads and deletes it by
//! name or id, as GitHub and Gitea resolve them; a name is taken once per run.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::cache_store::{StoreError, hash_file};
use crate::uploads::UploadArea;

/// A finished artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub id: u64,
    pub run: String,
    /// The job that uploaded it.
    pub job: String,
    pub name: String,
    pub size: u64,
    /// `sha256:<hex>` of the stored bytes.
    pub digest: String,
    /// Milliseconds since the epoch.
    pub created: u64,
    pub mime: String,
}

/// What the store knows of an upload in progress.
#[derive(Debug, Clone)]
pub struct ArtifactUpload {
    run: String,
    job: String,
    name: String,
    mime: String,
}

/// The artifacts of every run this server kept.
#[derive(Debug)]
pub struct ArtifactStore {
    dir: PathBuf,
    state: Mutex<State>,
    uploads: UploadArea<ArtifactUpload>,
}

#[derive(Debug, Default)]
struct State {
    artifacts: HashMap<u64, Artifact>,
    next_id: u64,
}

/// Whether `name` may name an artifact (and so a folder): no path, no control character,
/// none of the characters GitHub's client refuses.
pub fn valid_name(name: &str) -> Result<(), String> {
    let bad = [
        '"', ':', '<', '>', '|', '*', '?', '\\', '/', '\r', '\n', '\0',
    ];
    if name.trim().is_empty() || name.starts_with('.') {
        return Err(format!(
            "the artifact name `{name}` is empty or starts with a dot"
        ));
    }
    if let Some(c) = name.chars().find(|c| bad.contains(c) || c.is_control()) {
        return Err(format!(
            "the artifact name `{name}` holds {c:?}, which artifact names may not (\" : < > | * ? \\ / and line breaks)"
        ));
    }
    Ok(())
}

/// A run id as a folder name: it comes from the runner's own token, but is checked anyway.
fn valid_run(run: &str) -> bool {
    !run.is_empty()
        && run
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl ArtifactStore {
    /// Opens the store in `dir`: reads the records whose data is whole, drops unfinished
    /// uploads.
    pub fn open(dir: &Path) -> std::io::Result<ArtifactStore> {
        let records = dir.join(".records");
        std::fs::create_dir_all(&records)?;
        let uploads = UploadArea::open(&dir.join(".uploads"))?;
        let mut state = State::default();
        for item in std::fs::read_dir(&records)? {
            let path = item?.path();
            let record = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Artifact>(&b).ok())
                .filter(|a| std::fs::metadata(data_file(dir, a)).is_ok_and(|m| m.len() == a.size));
            match record {
                Some(a) => {
                    state.next_id = state.next_id.max(a.id + 1);
                    state.artifacts.insert(a.id, a);
                }
                None => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        state.next_id = state.next_id.max(1);
        Ok(ArtifactStore {
            dir: dir.to_path_buf(),
            state: Mutex::new(state),
            uploads,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where upload `id`'s bytes go.
    pub fn part_path(&self, id: u64) -> PathBuf {
        self.uploads.part_path(id)
    }

    /// The uploads in progress (what a signed upload URL writes into).
    pub fn uploads(&self) -> &UploadArea<ArtifactUpload> {
        &self.uploads
    }

    /// Starts uploading artifact `name` of `run` from `job`: refused when the run has an
    /// artifact of that name.
    pub fn create(&self, run: &str, job: &str, name: &str, mime: &str) -> Result<u64, StoreError> {
        valid_name(name).map_err(StoreError::Corrupt)?;
        if !valid_run(run) {
            return Err(StoreError::Corrupt(format!("`{run}` is not a run id")));
        }
        let mut state = self.state();
        if state
            .artifacts
            .values()
            .any(|a| a.run == run && a.name == name)
        {
            return Err(StoreError::Exists {
                key: name.to_string(),
            });
        }
        let id = state.next_id;
        state.next_id += 1;
        self.uploads.begin(
            id,
            ArtifactUpload {
                run: run.to_string(),
                job: job.to_string(),
                name: name.to_string(),
                mime: mime.to_string(),
            },
        )?;
        Ok(id)
    }

    /// Records bytes `start..end` of upload `id`.
    pub fn wrote(&self, id: u64, start: u64, end: u64) -> Result<(), StoreError> {
        self.uploads.wrote(id, start, end)
    }

    /// `job`'s upload of `name` in `run`, if one is in progress.
    pub fn upload_of(&self, run: &str, job: &str, name: &str) -> Option<u64> {
        self.uploads
            .find(|u| u.run == run && u.job == job && u.name == name)
    }

    /// Ends upload `id`: refused (and dropped) when its bytes are not `size` long or do
    /// not hash to `hash` (`sha256:<hex>`, when given).
    pub fn finalize(&self, id: u64, size: u64, hash: Option<&str>) -> Result<Artifact, StoreError> {
        let (upload, whole) = self.uploads.take(id, size)?;
        let part = self.part_path(id);
        let result = self.finish(id, &upload, &part, size, hash, whole);
        if result.is_err() {
            self.uploads.discard(id);
        }
        result
    }

    fn finish(
        &self,
        id: u64,
        upload: &ArtifactUpload,
        part: &Path,
        size: u64,
        hash: Option<&str>,
        whole: bool,
    ) -> Result<Artifact, StoreError> {
        let on_disk = std::fs::metadata(part)?.len();
        if !whole || on_disk != size {
            return Err(StoreError::Corrupt(format!(
                "FinalizeArtifact says {size} bytes, {on_disk} were uploaded"
            )));
        }
        let digest = format!("sha256:{}", hash_file(part)?);
        if let Some(hash) = hash.filter(|h| h.starts_with("sha256:"))
            && !hash.eq_ignore_ascii_case(&digest)
        {
            return Err(StoreError::Corrupt(format!(
                "the upload hashes to {digest}, FinalizeArtifact says {hash}"
            )));
        }
        let artifact = Artifact {
            id,
            run: upload.run.clone(),
            job: upload.job.clone(),
            name: upload.name.clone(),
            size,
            digest,
            created: crate::token::now_secs() * 1000,
            mime: upload.mime.clone(),
        };
        let mut state = self.state();
        if state
            .artifacts
            .values()
            .any(|a| a.run == artifact.run && a.name == artifact.name)
        {
            return Err(StoreError::Exists { key: artifact.name });
        }
        let file = data_file(&self.dir, &artifact);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::rename(part, &file)?;
        let record = self.dir.join(".records").join(format!("{id}.json"));
        let temp = record.with_extension("json.tmp");
        let mut out = std::fs::File::create(&temp)?;
        out.write_all(&serde_json::to_vec(&artifact).map_err(std::io::Error::other)?)?;
        out.sync_all()?;
        std::fs::rename(&temp, &record)?;
        state.artifacts.insert(id, artifact.clone());
        Ok(artifact)
    }

    /// The artifacts of `run`, by name and id when given, oldest first.
    pub fn list(&self, run: &str, name: Option<&str>, id: Option<u64>) -> Vec<Artifact> {
        let mut found: Vec<Artifact> = self
            .state()
            .artifacts
            .values()
            .filter(|a| a.run == run)
            .filter(|a| name.is_none_or(|n| a.name == n))
            .filter(|a| id.is_none_or(|i| a.id == i))
            .cloned()
            .collect();
        found.sort_by_key(|a| a.id);
        found
    }

    /// Artifact `id` (a signed URL names it).
    pub fn get(&self, id: u64) -> Option<Artifact> {
        self.state().artifacts.get(&id).cloned()
    }

    /// The file of artifact `a`.
    pub fn data_of(&self, a: &Artifact) -> PathBuf {
        data_file(&self.dir, a)
    }

    /// Deletes artifact `name` of `run`; its id.
    pub fn delete(&self, run: &str, name: &str) -> Option<u64> {
        let mut state = self.state();
        let id = state
            .artifacts
            .values()
            .find(|a| a.run == run && a.name == name)
            .map(|a| a.id)?;
        let artifact = state.artifacts.remove(&id)?;
        let _ = std::fs::remove_file(self.dir.join(".records").join(format!("{id}.json")));
        let file = data_file(&self.dir, &artifact);
        let _ = std::fs::remove_file(&file);
        if let Some(parent) = file.parent() {
            let _ = std::fs::remove_dir(parent);
        }
        Some(id)
    }
}

/// `DIR/<run>/<name>/<name>.zip`, or without `.zip` for an upload that is no zip.
fn data_file(dir: &Path, a: &Artifact) -> PathBuf {
    let file = if a.mime.is_empty() || a.mime.contains("zip") {
        format!("{}.zip", a.name)
    } else {
        a.name.clone()
    };
    dir.join(&a.run).join(&a.name).join(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(store: &ArtifactStore, run: &str, job: &str, name: &str, data: &[u8]) -> u64 {
        let id = store.create(run, job, name, "application/zip").unwrap();
        std::fs::write(store.part_path(id), data).unwrap();
        store.wrote(id, 0, data.len() as u64).unwrap();
        id
    }

    #[test]
    fn artifacts_belong_to_their_run_and_land_under_it_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let id = upload(&store, "r1", "build", "dist", b"zipbytes");
        let digest = format!(
            "sha256:{}",
            crate::cache_store::hex(&{
                use sha2::Digest as _;
                sha2::Sha256::digest(b"zipbytes")
            })
        );
        let a = store.finalize(id, 8, Some(&digest)).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("r1/dist/dist.zip")).unwrap(),
            b"zipbytes"
        );
        // Another job of the run sees it; another run does not.
        assert_eq!(
            store.list("r1", Some("dist"), None),
            std::slice::from_ref(&a)
        );
        assert!(store.list("r2", None, None).is_empty());
        assert!(matches!(
            store.create("r1", "test", "dist", "application/zip"),
            Err(StoreError::Exists { .. })
        ));
        // A wrong size or hash is refused and dropped.
        let bad = upload(&store, "r1", "build", "other", b"abc");
        assert!(matches!(
            store.finalize(bad, 4, None),
            Err(StoreError::Corrupt(_))
        ));
        let bad = upload(&store, "r1", "build", "other", b"abc");
        assert!(matches!(
            store.finalize(bad, 3, Some("sha256:00")),
            Err(StoreError::Corrupt(_))
        ));
        // Names that would leave the folder are refused.
        for name in ["../x", "a/b", ".hidden", "", "a\\b"] {
            assert!(store.create("r1", "j", name, "").is_err(), "{name}");
        }
        drop(store);
        let store = ArtifactStore::open(dir.path()).unwrap();
        assert_eq!(store.list("r1", None, Some(a.id)), [a]);
        assert_eq!(store.delete("r1", "dist"), Some(id));
        assert!(!dir.path().join("r1/dist").exists());
    }
}
