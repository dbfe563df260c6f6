//! A task's spool folder, `<spool_dir>/task-<id>/`: every row appended to `rows.jsonl`
//! (one JSON object per line: seconds, nanoseconds, content) before it is sent, fsynced
//! before each UpdateLog call that carries new rows; and `state.json`, the task state
//! (acknowledged row count, steps, outputs, results), replaced atomically (temporary file,
//! fsync, rename) whenever it changes. A daemon killed mid-task leaves the folder behind
//! for [`super::recover`]; a task whose final report went through has its folder removed.
//!
//! The rows file is read back a bounded piece at a time ([`Spool::read_rows`], from where
//! the last read ended when it can), never whole: the reporter keeps only a window of the
//! rows the server has not acknowledged in memory and the rest here.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::error::ReportError;
use super::rows::{Row, TaskLog};

const ROWS_FILE: &str = "rows.jsonl";
const STATE_FILE: &str = "state.json";
const STATE_TEMP: &str = "state.json.tmp";
const LOCK_FILE: &str = "lock";
const FOLDER_PREFIX: &str = "task-";

/// Everything but the rows that a restarted daemon needs to finish the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SavedState {
    pub task_id: i64,
    /// The server acknowledged rows `0..acked`.
    pub acked: i64,
    pub started_at: SystemTime,
    pub log: TaskLog,
    /// Outputs the server has not acknowledged yet.
    pub outputs: BTreeMap<String, String>,
    pub sent_outputs: BTreeSet<String>,
    /// The job's result (the protocol's number) once `finish` knows it.
    pub result: Option<i32>,
    /// A final result the server answered (it ended the task), if any.
    pub server_result: Option<i32>,
}

/// One row as a line of `rows.jsonl`.
#[derive(Serialize, Deserialize)]
struct SpooledRow {
    s: u64,
    n: u32,
    c: String,
}

/// An open spool folder, locked (`flock` on its `lock` file) while open, so
/// [`super::recover`] never takes the folder of a task that is still being reported (the
/// kernel drops the lock when the daemon dies).
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    rows: File,
    unsynced: bool,
    /// An append failed: later rows are not appended, so every row in the file is at its
    /// index (a torn line would shift them).
    broken: bool,
    /// Where the last [`Spool::read_rows`] stopped: the next row's index and byte offset.
    cursor: (i64, u64),
    _lock: nix::fcntl::Flock<File>,
}

/// What [`Spool::open`] found.
#[derive(Debug)]
pub(crate) enum Opened {
    /// The folder, its state (`None` when it has none) and how many rows it holds.
    Free(Box<Spool>, Option<SavedState>, i64),
    /// A live reporter holds the folder.
    Busy,
}

/// Takes the folder's lock; `None` when someone else holds it.
fn lock(dir: &Path) -> Result<Option<nix::fcntl::Flock<File>>, std::io::Error> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(std::io::Error::from(errno)),
    }
}

impl Spool {
    /// The folder of task `task_id`.
    pub(crate) fn folder(spool_dir: &Path, task_id: i64) -> PathBuf {
        spool_dir.join(format!("{FOLDER_PREFIX}{task_id}"))
    }

    /// Creates the folder of a new task (emptying a stale one of the same id).
    pub(crate) fn create(spool_dir: &Path, task_id: i64) -> Result<Spool, ReportError> {
        let dir = Spool::folder(spool_dir, task_id);
        let create = |source| ReportError::SpoolCreate {
            path: dir.clone(),
            source,
        };
        if dir.exists() {
            tracing::warn!(task = task_id, folder = %dir.display(), "replacing a stale spool folder");
            std::fs::remove_dir_all(&dir).map_err(create)?;
        }
        std::fs::create_dir_all(&dir).map_err(create)?;
        let lock = lock(&dir).map_err(create)?.ok_or_else(|| {
            create(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "another reporter holds this task's spool folder",
            ))
        })?;
        let path = dir.join(ROWS_FILE);
        let rows = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| ReportError::SpoolCreate { path, source })?;
        Ok(Spool {
            dir,
            rows,
            unsynced: false,
            broken: false,
            cursor: (0, 0),
            _lock: lock,
        })
    }

    /// Opens a folder a stopped daemon left: its state (`None` when it has none) and how
    /// many rows it holds (counted a line at a time). A torn or unreadable line (the daemon
    /// died mid-write) is cut off with everything after it. A folder a live reporter holds
    /// is [`Opened::Busy`].
    pub(crate) fn open(dir: &Path) -> Result<Opened, ReportError> {
        let lock = match lock(dir) {
            Ok(Some(lock)) => lock,
            Ok(None) => return Ok(Opened::Busy),
            Err(source) => {
                return Err(ReportError::SpoolRead {
                    path: dir.join(LOCK_FILE),
                    source,
                });
            }
        };
        let state_path = dir.join(STATE_FILE);
        let state =
            match std::fs::read(&state_path) {
                Ok(bytes) => Some(serde_json::from_slice::<SavedState>(&bytes).map_err(
                    |source| ReportError::SpoolCorrupt {
                        path: state_path.clone(),
                        source,
                    },
                )?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(source) => {
                    return Err(ReportError::SpoolRead {
                        path: state_path,
                        source,
                    });
                }
            };
        let path = dir.join(ROWS_FILE);
        let read_error = |source| ReportError::SpoolRead {
            path: path.clone(),
            source,
        };
        let opened = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path);
        let rows_file = opened.map_err(read_error)?;
        let (count, good, size) = count_rows(&rows_file).map_err(read_error)?;
        if good < size {
            tracing::warn!(file = %path.display(), kept = count, "cutting a torn end off the spooled rows");
            rows_file
                .set_len(good)
                .map_err(|source| ReportError::SpoolWrite {
                    path: path.clone(),
                    source,
                })?;
        }
        let spool = Spool {
            dir: dir.to_path_buf(),
            rows: rows_file,
            unsynced: false,
            broken: false,
            cursor: (0, 0),
            _lock: lock,
        };
        Ok(Opened::Free(Box::new(spool), state, count))
    }

    /// The task folders under `spool_dir`, by task id (none when it does not exist).
    pub(crate) fn task_folders(spool_dir: &Path) -> Result<Vec<(i64, PathBuf)>, ReportError> {
        let entries = match std::fs::read_dir(spool_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ReportError::SpoolRead {
                    path: spool_dir.to_path_buf(),
                    source,
                });
            }
        };
        let mut folders: Vec<(i64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let id = name.strip_prefix(FOLDER_PREFIX)?.parse().ok()?;
                Some((id, e.path()))
            })
            .collect();
        folders.sort();
        Ok(folders)
    }

    #[cfg(test)]
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends rows (one write; synced later by [`Spool::sync`]). After a failed append
    /// every later one fails too, so the rows in the file keep their indexes.
    pub(crate) fn append(&mut self, rows: &[Row]) -> Result<(), ReportError> {
        if rows.is_empty() {
            return Ok(());
        }
        if self.broken {
            let source = std::io::Error::other("an earlier write to this file failed");
            return Err(self.write_error(ROWS_FILE, source));
        }
        let mut buffer = Vec::with_capacity(rows.iter().map(|r| r.content.len() + 40).sum());
        for row in rows {
            let since = row
                .time
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            let line = SpooledRow {
                s: since.as_secs(),
                n: since.subsec_nanos(),
                c: row.content.clone(),
            };
            // Serializing a struct of numbers and a string cannot fail.
            if serde_json::to_writer(&mut buffer, &line).is_ok() {
                buffer.push(b'\n');
            }
        }
        if let Err(source) = self.rows.write_all(&buffer) {
            self.broken = true;
            return Err(self.write_error(ROWS_FILE, source));
        }
        self.unsynced = true;
        Ok(())
    }

    /// An append failed: rows from then on are not in the file.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    /// Flushes appended rows to the disk (before they are sent).
    pub(crate) fn sync(&mut self) -> Result<(), ReportError> {
        if self.unsynced {
            self.rows
                .sync_data()
                .map_err(|source| self.write_error(ROWS_FILE, source))?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Replaces the saved state atomically.
    pub(crate) fn save(&self, state: &SavedState) -> Result<(), ReportError> {
        let temp = self.dir.join(STATE_TEMP);
        let bytes = serde_json::to_vec(state).map_err(|source| ReportError::SpoolCorrupt {
            path: temp.clone(),
            source,
        })?;
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&temp)?;
            file.write_all(&bytes)?;
            file.sync_data()?;
            std::fs::rename(&temp, self.dir.join(STATE_FILE))
        };
        write().map_err(|source| self.write_error(STATE_FILE, source))
    }

    /// Up to `max_rows` rows from row `from` on, stopping after the row that reaches
    /// `max_bytes` of content (at least one row when the file has it); fewer at the end of
    /// the file. Starts where the last read stopped when `from` is not before it, else at
    /// the start of the file (after the server lost rows it had acknowledged).
    pub(crate) fn read_rows(
        &mut self,
        from: i64,
        max_rows: usize,
        max_bytes: usize,
    ) -> Result<Vec<Row>, ReportError> {
        let path = self.dir.join(ROWS_FILE);
        let read_error = |source| ReportError::SpoolRead {
            path: path.clone(),
            source,
        };
        let (mut index, mut offset) = if from >= self.cursor.0 {
            self.cursor
        } else {
            (0, 0)
        };
        let mut reader = BufReader::new(File::open(&path).map_err(read_error)?);
        reader.seek(SeekFrom::Start(offset)).map_err(read_error)?;
        let mut rows = Vec::new();
        let mut bytes = 0;
        let mut line = Vec::new();
        while rows.len() < max_rows && bytes < max_bytes.max(1) {
            line.clear();
            let read = reader.read_until(b'\n', &mut line).map_err(read_error)?;
            let Some(body) = line.strip_suffix(b"\n") else {
                break;
            };
            if index >= from {
                let row = parse_row(body).map_err(|source| ReportError::SpoolCorrupt {
                    path: path.clone(),
                    source,
                })?;
                bytes += row.content.len().max(1);
                rows.push(row);
            }
            index += 1;
            offset += read as u64;
        }
        self.cursor = (index, offset);
        Ok(rows)
    }

    /// Removes the folder (the task's final report went through).
    pub(crate) fn remove(self) -> Result<(), ReportError> {
        drop(self.rows);
        // Removed while still locked, so no one opens it half gone.
        std::fs::remove_dir_all(&self.dir).map_err(|source| ReportError::SpoolWrite {
            path: self.dir.clone(),
            source,
        })
    }

    fn write_error(&self, file: &str, source: std::io::Error) -> ReportError {
        ReportError::SpoolWrite {
            path: self.dir.join(file),
            source,
        }
    }
}

/// One line of `rows.jsonl`, without its newline.
fn parse_row(body: &[u8]) -> Result<Row, serde_json::Error> {
    let row = serde_json::from_slice::<SpooledRow>(body)?;
    Ok(Row {
        time: SystemTime::UNIX_EPOCH + Duration::new(row.s, row.n.min(999_999_999)),
        content: row.c,
    })
}

/// The well-formed rows of a `rows.jsonl` read a line at a time: how many, the length of
/// the part holding them, and the file's length.
fn count_rows(file: &File) -> std::io::Result<(i64, u64, u64)> {
    let mut reader = BufReader::new(file);
    let (mut count, mut good, mut size) = (0, 0, 0);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok((count, good, size));
        }
        size += read as u64;
        let whole = line
            .strip_suffix(b"\n")
            .is_some_and(|body| parse_row(body).is_ok());
        if whole && good + read as u64 == size {
            count += 1;
            good = size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(content: &str) -> Row {
        Row {
            time: SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5),
            content: content.into(),
        }
    }

    fn state(task_id: i64, acked: i64) -> SavedState {
        SavedState {
            task_id,
            acked,
            started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            log: TaskLog::default(),
            outputs: BTreeMap::from([("k".to_string(), "v".to_string())]),
            sent_outputs: BTreeSet::new(),
            result: None,
            server_result: None,
        }
    }

    #[test]
    fn rows_and_state_survive_a_reopen_and_a_torn_line_is_cut() {
        let root = tempfile::tempdir().unwrap();
        let mut spool = Spool::create(root.path(), 42).unwrap();
        spool
            .append(&[row("one"), row("two\nwith \"quotes\""), row("")])
            .unwrap();
        spool.sync().unwrap();
        spool.save(&state(42, 1)).unwrap();
        assert!(matches!(Spool::open(spool.dir()).unwrap(), Opened::Busy));
        assert_eq!(
            spool.read_rows(1, 9, 1 << 20).unwrap(),
            [row("two\nwith \"quotes\""), row("")]
        );
        let dir = spool.dir().to_path_buf();
        drop(spool);
        // A daemon killed mid-write leaves half a line.
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.join(ROWS_FILE))
            .unwrap();
        file.write_all(b"{\"s\":1,\"n\":0,\"c\":\"tor").unwrap();
        drop(file);

        assert_eq!(
            Spool::task_folders(root.path()).unwrap(),
            [(42, dir.clone())]
        );
        let Opened::Free(mut spool, saved, count) = Spool::open(&dir).unwrap() else {
            panic!("free")
        };
        assert!(
            matches!(Spool::open(&dir).unwrap(), Opened::Busy),
            "locked while open"
        );
        assert_eq!(saved, Some(state(42, 1)));
        assert_eq!(count, 3);
        assert_eq!(
            spool.read_rows(0, 9, 1 << 20).unwrap(),
            [row("one"), row("two\nwith \"quotes\""), row("")]
        );
        spool.append(&[row("after")]).unwrap();
        let rows = spool.read_rows(0, 9, 1 << 20).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[3], row("after"));
        spool.remove().unwrap();
        assert!(!dir.exists());
        assert!(Spool::task_folders(root.path()).unwrap().is_empty());
    }

    #[test]
    fn a_missing_spool_dir_has_no_tasks_and_other_folders_are_ignored() {
        let root = tempfile::tempdir().unwrap();
        assert!(
            Spool::task_folders(&root.path().join("absent"))
                .unwrap()
                .is_empty()
        );
        std::fs::create_dir(root.path().join("task-x")).unwrap();
        std::fs::create_dir(root.path().join("other")).unwrap();
        std::fs::create_dir(root.path().join("task-7")).unwrap();
        let folders = Spool::task_folders(root.path()).unwrap();
        assert_eq!(folders.iter().map(|f| f.0).collect::<Vec<_>>(), [7]);
        let Opened::Free(_, saved, count) = Spool::open(&folders[0].1).unwrap() else {
            panic!("free")
        };
        assert!(saved.is_none() && count == 0);
    }

    #[test]
    fn rows_are_read_back_in_bounded_pieces_from_where_the_last_read_stopped() {
        let root = tempfile::tempdir().unwrap();
        let mut spool = Spool::create(root.path(), 7).unwrap();
        let rows: Vec<Row> = (0..10).map(|i| row(&format!("row {i}"))).collect();
        spool.append(&rows).unwrap();
        let contents = |rows: Vec<Row>| rows.into_iter().map(|r| r.content).collect::<Vec<_>>();
        assert_eq!(
            contents(spool.read_rows(2, 3, 1 << 20).unwrap()),
            ["row 2", "row 3", "row 4"]
        );
        assert_eq!(spool.cursor.0, 5);
        // Each row has 5 bytes: the piece stops after the row that reaches 12.
        assert_eq!(
            contents(spool.read_rows(5, 100, 12).unwrap()),
            ["row 5", "row 6", "row 7"]
        );
        assert_eq!(contents(spool.read_rows(9, 100, 0).unwrap()), ["row 9"]);
        assert!(spool.read_rows(10, 100, 1 << 20).unwrap().is_empty());
        // Behind the cursor: read from the start again.
        assert_eq!(contents(spool.read_rows(1, 1, 1 << 20).unwrap()), ["row 1"]);
        // A line the file should not hold is an error, not a silent end.
        spool.append(&[row("ok")]).unwrap();
        spool.rows.write_all(b"not json\n").unwrap();
        assert_eq!(contents(spool.read_rows(10, 1, 1 << 20).unwrap()), ["ok"]);
        assert!(matches!(
            spool.read_rows(11, 1, 1 << 20),
            Err(ReportError::SpoolCorrupt { .. })
        ));
    }

    #[test]
    fn after_a_failed_append_no_later_row_is_appended() {
        let root = tempfile::tempdir().unwrap();
        let mut spool = Spool::create(root.path(), 8).unwrap();
        spool.append(&[row("kept")]).unwrap();
        // A full disk: the append fails, and so does every later one, also once the disk
        // has room again.
        let rows_file = std::mem::replace(
            &mut spool.rows,
            OpenOptions::new().write(true).open("/dev/full").unwrap(),
        );
        assert!(matches!(
            spool.append(&[row("lost")]),
            Err(ReportError::SpoolWrite { .. })
        ));
        spool.rows = rows_file;
        assert!(matches!(
            spool.append(&[row("late")]),
            Err(ReportError::SpoolWrite { .. })
        ));
        assert_eq!(spool.read_rows(0, 9, 1 << 20).unwrap(), [row("kept")]);
    }
}
