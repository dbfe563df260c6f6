//! The cache's entries on disk, shared by both protocols ([`crate::cache_v1`],
//! [`crate::cache_v2`]).
//!
//! Layout under the cache folder:
//! - `entries/<id>.data`, the archive a client saved, and `entries/<id>.json`, its
//!   metadata (scope, key, version, size, SHA-256, creation and last use). The data is
//!   moved into place first and the metadata written last (to a temporary file, then
//!   renamed), so an entry is there whole or not at all, also after a crash.
//! - `uploads/<id>.part`, an upload in progress (chunks written at their offsets), and
//!   `uploads/<id>.blocks/`, the blocks of a block-blob upload before their list commits
//!   them. Uploads do not survive a restart: they are removed when the store opens.
//!
//! Matching is GitHub's ("Cache key matching", docs.github.com/en/actions/reference/
//! workflows-and-actions/dependency-caching): the primary key exactly, then as a prefix,
//! then each restore key in turn as a prefix, the newest entry winning each search;
//! always with the same `version` and within the repository. Saving a key that exists is refused; of two saves of one key in flight,
//! the first to commit wins and the other is refused at its commit. Past the size limit,
//! the least recently used entries go.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::uploads::UploadArea;

/// A saved cache entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: u64,
    /// The repository it belongs to.
    pub scope: String,
    pub key: String,
    pub version: String,
    pub size: u64,
    /// Hex SHA-256 of the data, checked when it is read back.
    pub sha256: String,
    /// Milliseconds since the epoch.
    pub created: u64,
    pub used: u64,
}

/// What the store knows of an upload in progress.
#[derive(Debug, Clone)]
pub struct CacheUpload {
    scope: String,
    key: String,
    version: String,
    /// Who saves it (`<run>:<job>`): the v2 protocol finalizes by key, and two jobs may
    /// save one key at once.
    owner: String,
}

/// Why a storage operation failed (the cache's and the artifacts'); the HTTP layers map
/// each to a status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Cache already exists: an entry with key {key} and this version was saved before")]
    Exists { key: String },
    #[error(
        "cache upload {id} is not known to this server (it was committed, refused, or the server restarted)"
    )]
    NoUpload { id: u64 },
    #[error("the upload is not whole: {0}; the entry was not saved")]
    Corrupt(String),
    #[error("the entry is larger than the cache's size limit ({limit} bytes)")]
    TooLarge { limit: u64 },
    #[error("cache storage: {0}")]
    Io(#[from] std::io::Error),
}

/// The cache's entries and uploads.
#[derive(Debug)]
pub struct CacheStore {
    dir: PathBuf,
    limit: u64,
    state: Mutex<State>,
    uploads: UploadArea<CacheUpload>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<u64, Entry>,
    next_id: u64,
}

fn millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl CacheStore {
    /// Opens the store in `dir` (made when missing) with a size limit of `limit` bytes:
    /// reads the entries whose data is whole, drops the rest and every unfinished upload.
    pub fn open(dir: &Path, limit: u64) -> std::io::Result<CacheStore> {
        let entries_dir = dir.join("entries");
        std::fs::create_dir_all(&entries_dir)?;
        let uploads = UploadArea::open(&dir.join("uploads"))?;
        let mut state = State::default();
        for item in std::fs::read_dir(&entries_dir)? {
            let path = item?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let keep = match name.strip_suffix(".json") {
                Some(_) => std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Entry>(&b).ok())
                    .filter(|e| {
                        std::fs::metadata(entries_dir.join(format!("{}.data", e.id)))
                            .is_ok_and(|m| m.len() == e.size)
                    })
                    .map(|e| {
                        state.next_id = state.next_id.max(e.id + 1);
                        state.entries.insert(e.id, e);
                    })
                    .is_some(),
                None => name
                    .strip_suffix(".data")
                    .and_then(|id| id.parse::<u64>().ok())
                    .is_some_and(|id| entries_dir.join(format!("{id}.json")).is_file()),
            };
            if !keep {
                let _ = std::fs::remove_file(&path);
            }
        }
        state.next_id = state.next_id.max(1);
        Ok(CacheStore {
            dir: dir.to_path_buf(),
            limit,
            state: Mutex::new(state),
            uploads,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn data_path(&self, id: u64) -> PathBuf {
        self.dir.join("entries").join(format!("{id}.data"))
    }

    fn meta_path(&self, id: u64) -> PathBuf {
        self.dir.join("entries").join(format!("{id}.json"))
    }

    /// Where upload `id`'s bytes go.
    pub fn part_path(&self, id: u64) -> PathBuf {
        self.uploads.part_path(id)
    }

    /// The uploads in progress (what a signed upload URL writes into).
    pub fn uploads(&self) -> &UploadArea<CacheUpload> {
        &self.uploads
    }

    /// The entry `keys` find (see the module's matching rules), its last use now.
    pub fn lookup(&self, scope: &str, keys: &[String], version: &str) -> Option<Entry> {
        let mut state = self.state();
        let candidates: Vec<&Entry> = state
            .entries
            .values()
            .filter(|e| e.scope == scope && e.version == version)
            .collect();
        let newest = |pred: &dyn Fn(&Entry) -> bool| {
            candidates
                .iter()
                .filter(|e| pred(e))
                .max_by_key(|e| (e.created, e.id))
                .map(|e| e.id)
        };
        let prefix = |key: &String| newest(&|e: &Entry| e.key.starts_with(key.as_str()));
        let found = match keys.split_first() {
            Some((primary, restore)) => newest(&|e: &Entry| e.key == *primary)
                .or_else(|| prefix(primary))
                .or_else(|| restore.iter().find_map(prefix)),
            None => None,
        }?;
        let entry = state.entries.get_mut(&found)?;
        entry.used = millis();
        let entry = entry.clone();
        drop(state);
        // The last use is only a hint for eviction: a failed write keeps the old one.
        let _ = self.write_meta(&entry);
        Some(entry)
    }

    /// The data file of entry `id` (for reading).
    pub fn data_of(&self, id: u64) -> PathBuf {
        self.data_path(id)
    }

    /// Starts saving `key` for `owner` (`<run>:<job>`): refused when a committed entry has
    /// it already.
    pub fn reserve(
        &self,
        scope: &str,
        key: &str,
        version: &str,
        owner: &str,
    ) -> Result<u64, StoreError> {
        let mut state = self.state();
        if state
            .entries
            .values()
            .any(|e| e.scope == scope && e.key == key && e.version == version)
        {
            return Err(StoreError::Exists {
                key: key.to_string(),
            });
        }
        let id = state.next_id;
        state.next_id += 1;
        self.uploads.begin(
            id,
            CacheUpload {
                scope: scope.to_string(),
                key: key.to_string(),
                version: version.to_string(),
                owner: owner.to_string(),
            },
        )?;
        Ok(id)
    }

    /// `owner`'s upload of `key`/`version` in `scope` in progress, if any (the v2
    /// protocol names an upload by its key).
    pub fn upload_of(&self, scope: &str, key: &str, version: &str, owner: &str) -> Option<u64> {
        self.uploads
            .find(|u| u.scope == scope && u.key == key && u.version == version && u.owner == owner)
    }

    /// Entry `id`, whatever its scope (a signed URL names it).
    pub fn entry_any(&self, id: u64) -> Option<Entry> {
        self.state().entries.get(&id).cloned()
    }

    /// Whether upload `id` exists and belongs to `scope`.
    pub fn has_upload(&self, scope: &str, id: u64) -> bool {
        self.uploads.meta(id).is_some_and(|u| u.scope == scope)
    }

    /// Records that bytes `start..end` of upload `id` were written to its part file.
    pub fn wrote(&self, id: u64, start: u64, end: u64) -> Result<(), StoreError> {
        if end > self.limit {
            return Err(StoreError::TooLarge { limit: self.limit });
        }
        self.uploads.wrote(id, start, end)
    }

    /// Ends upload `id` as an entry of `size` bytes: refused (and dropped) when the bytes
    /// written do not cover `0..size` exactly, when another save of its key committed
    /// first, or when it is larger than the limit. Evicts the least recently used
    /// entries past the limit.
    pub fn commit(&self, id: u64, size: u64) -> Result<Entry, StoreError> {
        let (upload, whole) = self.uploads.take(id, size)?;
        let part = self.part_path(id);
        let result = self.commit_upload(id, &upload, &part, size, whole);
        if result.is_err() {
            self.uploads.discard(id);
        }
        result
    }

    fn commit_upload(
        &self,
        id: u64,
        upload: &CacheUpload,
        part: &Path,
        size: u64,
        whole: bool,
    ) -> Result<Entry, StoreError> {
        if size > self.limit {
            return Err(StoreError::TooLarge { limit: self.limit });
        }
        if !whole {
            return Err(StoreError::Corrupt(format!(
                "the committed size is {size} bytes, and the chunks received do not cover them"
            )));
        }
        let on_disk = std::fs::metadata(part)?.len();
        if on_disk != size {
            return Err(StoreError::Corrupt(format!(
                "the committed size is {size} bytes, {on_disk} were written"
            )));
        }
        let sha256 = hash_file(part)?;
        let now = millis();
        let entry = Entry {
            id,
            scope: upload.scope.clone(),
            key: upload.key.clone(),
            version: upload.version.clone(),
            size,
            sha256,
            created: now,
            used: now,
        };
        {
            let mut state = self.state();
            if state
                .entries
                .values()
                .any(|e| e.scope == entry.scope && e.key == entry.key && e.version == entry.version)
            {
                return Err(StoreError::Exists { key: entry.key });
            }
            std::fs::rename(part, self.data_path(id))?;
            if let Err(e) = self.write_meta(&entry) {
                let _ = std::fs::remove_file(self.data_path(id));
                return Err(e.into());
            }
            state.entries.insert(id, entry.clone());
        }
        self.evict();
        Ok(entry)
    }

    /// Drops the least recently used entries until the total is within the limit.
    fn evict(&self) {
        let mut state = self.state();
        let mut total: u64 = state.entries.values().map(|e| e.size).sum();
        if total <= self.limit {
            return;
        }
        let mut by_use: Vec<(u64, u64, u64)> = state
            .entries
            .values()
            .map(|e| (e.used, e.id, e.size))
            .collect();
        by_use.sort();
        for (_, id, size) in by_use {
            if total <= self.limit {
                break;
            }
            state.entries.remove(&id);
            let _ = std::fs::remove_file(self.meta_path(id));
            let _ = std::fs::remove_file(self.data_path(id));
            total -= size;
            tracing::info!(id, size, "cache entry evicted (least recently used)");
        }
    }

    /// Removes entry `id` (its data failed the integrity check).
    pub fn remove(&self, id: u64) {
        self.state().entries.remove(&id);
        let _ = std::fs::remove_file(self.meta_path(id));
        let _ = std::fs::remove_file(self.data_path(id));
    }

    fn write_meta(&self, entry: &Entry) -> std::io::Result<()> {
        let path = self.meta_path(entry.id);
        let temp = path.with_extension("json.tmp");
        let mut out = std::fs::File::create(&temp)?;
        out.write_all(&serde_json::to_vec(entry).map_err(std::io::Error::other)?)?;
        out.sync_all()?;
        std::fs::rename(&temp, &path)
    }

    /// Every entry (for tests and listings).
    pub fn entries(&self) -> Vec<Entry> {
        let mut all: Vec<Entry> = self.state().entries.values().cloned().collect();
        all.sort_by_key(|e| e.id);
        all
    }
}

/// Hex SHA-256 of a file's contents.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(store: &CacheStore, scope: &str, key: &str, data: &[u8]) -> Entry {
        let id = store.reserve(scope, key, "v1", "1:j").unwrap();
        std::fs::write(store.part_path(id), data).unwrap();
        store.wrote(id, 0, data.len() as u64).unwrap();
        store.commit(id, data.len() as u64).unwrap()
    }

    #[test]
    fn keys_match_as_github_matches_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = CacheStore::open(dir.path(), 1 << 20).unwrap();
        save(&store, "acme/app", "npm-linux-aaa", b"old");
        std::thread::sleep(std::time::Duration::from_millis(5));
        save(&store, "acme/app", "npm-linux-bbb", b"new");
        save(&store, "other/app", "npm-linux-ccc", b"theirs");
        let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let hit = |k: &[&str]| store.lookup("acme/app", &keys(k), "v1").map(|e| e.key);
        // The primary key exactly (the older entry), else as a prefix (the newest).
        assert_eq!(hit(&["npm-linux-aaa"]).as_deref(), Some("npm-linux-aaa"));
        assert_eq!(hit(&["npm-linux-"]).as_deref(), Some("npm-linux-bbb"));
        // Restore keys in turn, each as a prefix, the newest first.
        assert_eq!(
            hit(&["npm-linux-zzz", "npm-linux-"]).as_deref(),
            Some("npm-linux-bbb")
        );
        assert_eq!(
            hit(&["x", "npm-linux-aaa", "npm-"]).as_deref(),
            Some("npm-linux-aaa")
        );
        assert_eq!(hit(&["x", "y", "npm-"]).as_deref(), Some("npm-linux-bbb"));
        // Another version or repository sees nothing.
        assert_eq!(
            store.lookup("acme/app", &keys(&["npm-linux-aaa"]), "v2"),
            None
        );
        assert_eq!(hit(&["x", "npm-linux-c"]), None);
    }

    #[test]
    fn the_first_commit_wins_and_a_partial_upload_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = CacheStore::open(dir.path(), 1 << 20).unwrap();
        let a = store.reserve("r", "k", "v1", "1:j").unwrap();
        let b = store.reserve("r", "k", "v1", "1:j").unwrap();
        for id in [a, b] {
            std::fs::write(store.part_path(id), b"data").unwrap();
            store.wrote(id, 0, 4).unwrap();
        }
        store.commit(b, 4).unwrap();
        assert!(matches!(store.commit(a, 4), Err(StoreError::Exists { .. })));
        assert!(matches!(
            store.reserve("r", "k", "v1", "1:j"),
            Err(StoreError::Exists { .. })
        ));
        // Chunks with a hole, or a size that is not what was written.
        let c = store.reserve("r", "k2", "v1", "1:j").unwrap();
        std::fs::write(store.part_path(c), b"0123456789").unwrap();
        store.wrote(c, 0, 4).unwrap();
        store.wrote(c, 6, 10).unwrap();
        assert!(matches!(store.commit(c, 10), Err(StoreError::Corrupt(_))));
        assert!(!store.part_path(c).exists(), "a refused upload is dropped");
        let d = store.reserve("r", "k3", "v1", "1:j").unwrap();
        std::fs::write(store.part_path(d), b"0123").unwrap();
        store.wrote(d, 0, 2).unwrap();
        store.wrote(d, 2, 4).unwrap();
        assert!(matches!(store.commit(d, 5), Err(StoreError::Corrupt(_))));
        assert_eq!(store.entries().len(), 1);
    }

    #[test]
    fn entries_survive_a_restart_and_the_least_recently_used_go_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = CacheStore::open(dir.path(), 10).unwrap();
        save(&store, "r", "a", b"aaaa");
        std::thread::sleep(std::time::Duration::from_millis(5));
        save(&store, "r", "b", b"bbbb");
        std::thread::sleep(std::time::Duration::from_millis(5));
        // Using `a` makes `b` the least recently used.
        assert!(store.lookup("r", &["a".into()], "v1").is_some());
        std::thread::sleep(std::time::Duration::from_millis(5));
        let unfinished = store.reserve("r", "u", "v1", "1:j").unwrap();
        save(&store, "r", "c", b"cccc");
        let keys: Vec<String> = store.entries().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["a", "c"]);
        drop(store);
        let store = CacheStore::open(dir.path(), 10).unwrap();
        let keys: Vec<String> = store.entries().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["a", "c"]);
        assert!(!store.has_upload("r", unfinished), "uploads do not survive");
        let a = store.lookup("r", &["a".into()], "v1").unwrap();
        assert_eq!(std::fs::read(store.data_of(a.id)).unwrap(), b"aaaa");
        assert_eq!(a.sha256, hash_file(&store.data_of(a.id)).unwrap());
        // A new id after the restart does not reuse an old one.
        let next = store.reserve("r", "d", "v1", "1:j").unwrap();
        assert!(next > a.id && next > unfinished);
    }
}
