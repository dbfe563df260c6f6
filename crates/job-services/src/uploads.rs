//! Uploads in progress, for the cache's and the artifacts' stores alike: each has a part
//! file that chunks are written into at their offsets (`<dir>/<id>.part`), the blocks of a
//! block-blob upload kept aside until their list commits them (`<dir>/<id>.blocks/`), and
//! the byte ranges written so far, so a commit can tell a whole upload from one with holes.
//! The folder is emptied when the area opens: uploads do not survive a restart.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::cache_store::StoreError;

/// One upload: what its store knows of it, and the ranges written.
#[derive(Debug, Clone)]
struct Pending<M> {
    meta: M,
    written: BTreeMap<u64, u64>,
}

/// The uploads of one store, each with its store's `M` (key, run, owner, …).
#[derive(Debug)]
pub struct UploadArea<M> {
    dir: PathBuf,
    pending: Mutex<HashMap<u64, Pending<M>>>,
}

/// Whether the merged ranges `written` cover exactly `0..size`.
pub fn covers(written: &BTreeMap<u64, u64>, size: u64) -> bool {
    match written.iter().collect::<Vec<_>>().as_slice() {
        [] => size == 0,
        [(0, end)] => **end == size,
        _ => false,
    }
}

impl<M: Clone> UploadArea<M> {
    /// The area in `dir`, emptied.
    pub fn open(dir: &Path) -> std::io::Result<UploadArea<M>> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)?;
        Ok(UploadArea {
            dir: dir.to_path_buf(),
            pending: Mutex::new(HashMap::new()),
        })
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Pending<M>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts upload `id` (an empty part file).
    pub fn begin(&self, id: u64, meta: M) -> std::io::Result<()> {
        std::fs::File::create(self.part_path(id))?;
        self.pending().insert(
            id,
            Pending {
                meta,
                written: BTreeMap::new(),
            },
        );
        Ok(())
    }

    /// Whether upload `id` is in progress.
    pub fn has(&self, id: u64) -> bool {
        self.pending().contains_key(&id)
    }

    /// The store's record of upload `id`.
    pub fn meta(&self, id: u64) -> Option<M> {
        self.pending().get(&id).map(|p| p.meta.clone())
    }

    /// The newest upload whose record `matches`.
    pub fn find(&self, matches: impl Fn(&M) -> bool) -> Option<u64> {
        self.pending()
            .iter()
            .filter(|(_, p)| matches(&p.meta))
            .map(|(id, _)| *id)
            .max()
    }

    /// Where upload `id`'s bytes go.
    pub fn part_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.part"))
    }

    fn blocks_dir(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.blocks"))
    }

    /// Where block `block` of upload `id` waits for the block list (made when missing; the
    /// block id hex-encoded, so no id names a path).
    pub fn block_path(&self, id: u64, block: &str) -> std::io::Result<PathBuf> {
        let dir = self.blocks_dir(id);
        std::fs::create_dir_all(&dir)?;
        let name: String = block.bytes().map(|b| format!("{b:02x}")).collect();
        Ok(dir.join(name))
    }

    /// Records that bytes `start..end` of upload `id` were written to its part file.
    pub fn wrote(&self, id: u64, start: u64, end: u64) -> Result<(), StoreError> {
        let mut pending = self.pending();
        let upload = pending.get_mut(&id).ok_or(StoreError::NoUpload { id })?;
        let (mut start, mut end) = (start, end);
        let overlapping: Vec<u64> = upload
            .written
            .range(..=end)
            .filter(|(s, e)| **e >= start && **s <= end)
            .map(|(s, _)| *s)
            .collect();
        for s in overlapping {
            if let Some(e) = upload.written.remove(&s) {
                start = start.min(s);
                end = end.max(e);
            }
        }
        upload.written.insert(start, end);
        Ok(())
    }

    /// Upload `id`'s part file from its blocks in the block list's `order`; its length.
    pub fn commit_blocks(&self, id: u64, order: &[String]) -> Result<u64, StoreError> {
        if !self.has(id) {
            return Err(StoreError::NoUpload { id });
        }
        let mut out = std::fs::File::create(self.part_path(id))?;
        let mut total = 0u64;
        for block in order {
            let mut input = std::fs::File::open(self.block_path(id, block)?).map_err(|_| {
                StoreError::Corrupt(format!("block {block} of the list was never uploaded"))
            })?;
            total += std::io::copy(&mut input, &mut out)?;
        }
        out.sync_all()?;
        let _ = std::fs::remove_dir_all(self.blocks_dir(id));
        self.pending()
            .get_mut(&id)
            .ok_or(StoreError::NoUpload { id })?
            .written = BTreeMap::from([(0, total)]);
        Ok(total)
    }

    /// Ends upload `id` for its commit: its record and whether its ranges cover `size`.
    pub fn take(&self, id: u64, size: u64) -> Result<(M, bool), StoreError> {
        let upload = self
            .pending()
            .remove(&id)
            .ok_or(StoreError::NoUpload { id })?;
        Ok((upload.meta, covers(&upload.written, size)))
    }

    /// Removes what upload `id` left on disk (after a refused commit).
    pub fn discard(&self, id: u64) {
        let _ = std::fs::remove_file(self.part_path(id));
        let _ = std::fs::remove_dir_all(self.blocks_dir(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_blocks_follow_their_list() {
        let dir = tempfile::tempdir().unwrap();
        let area: UploadArea<&str> = UploadArea::open(dir.path()).unwrap();
        area.begin(1, "k").unwrap();
        area.wrote(1, 4, 8).unwrap();
        area.wrote(1, 0, 4).unwrap();
        assert_eq!(area.take(1, 8).unwrap(), ("k", true));
        area.begin(2, "b").unwrap();
        for (id, text) in [("B", "world"), ("A", "hello ")] {
            std::fs::write(area.block_path(2, id).unwrap(), text).unwrap();
        }
        assert_eq!(
            area.commit_blocks(2, &["A".into(), "B".into()]).unwrap(),
            11
        );
        assert_eq!(
            std::fs::read_to_string(area.part_path(2)).unwrap(),
            "hello world"
        );
        assert!(matches!(
            area.commit_blocks(2, &["C".into()]),
            Err(StoreError::Corrupt(_))
        ));
        assert!(!covers(&BTreeMap::from([(0, 4), (6, 10)]), 10));
        assert!(covers(&BTreeMap::new(), 0));
    }
}
