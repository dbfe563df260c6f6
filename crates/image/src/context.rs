//! The image build context: walk the context folder, apply `.dockerignore`, and write a
//! deterministic tar.gz while hashing it.
//!
//! What goes in (Docker's classic builder rules, moby `pkg/archive` + cli `build`):
//! - every file, directory and symlink under the root that `.dockerignore` keeps; an excluded
//!   directory is not walked unless a `!` pattern could re-include something inside it (then
//!   only the re-included entries go in, not the directory entry itself);
//! - `.dockerignore` and the Dockerfiles in [`ContextOptions::always_include`] are always sent
//!   even when ignored (the CLI appends `!.dockerignore` and `!<dockerfile>`, as
//!   `TrimBuildFilesFromExcludes` does);
//! - symlinks are stored as symlinks with their target text as is, never followed: nothing
//!   outside the root is ever read. Absolute or escaping targets are kept like Docker keeps
//!   them; the builder resolves them inside the image's root filesystem;
//! - sockets, FIFOs and devices are skipped; hard links are stored as separate files.
//!
//! Determinism: entries sorted by path bytes, parents before children; ustar/PAX headers with
//! a fixed mtime, uid/gid 0, no user or group names, mode 0755 for directories and
//! executable files, 0644 for other files, 0777 for symlinks; gzip as one member with fixed
//! 128 KiB deflate chunks compressed in parallel (see [`gzip`]), so the bytes are the same
//! whatever the thread count, file times, owners or walk order.

mod gzip;
mod tar;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::dockerignore::DockerIgnore;

pub use tar::FIXED_MTIME;

/// What to pack and how.
#[derive(Debug, Clone)]
pub struct ContextOptions {
    /// The context folder
    pub root: PathBuf,
    /// Paths relative to the root (or absolute, under it) that are always included: the
    /// Dockerfiles. `.dockerignore` is always included too.
    pub always_include: Vec<PathBuf>,
    /// gzip level 0–9 (1 is pigz -1's speed)
    pub level: u32,
    /// Compression threads (at least 1)
    pub threads: usize,
}

impl ContextOptions {
    /// Level 1, one thread per available core, no extra includes.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            always_include: Vec::new(),
            level: 1,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File { executable: bool },
    Dir,
    Symlink { target: String },
}

/// One entry of the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    /// Relative to the root, `/`-separated, no trailing `/`
    pub path: String,
    /// Bytes of content (0 for directories and symlinks)
    pub size: u64,
    pub kind: EntryKind,
}

/// The result of [`pack`].
#[derive(Debug, Clone)]
pub struct PackedContext {
    pub entries: Vec<ContextEntry>,
    /// Number of regular files
    pub files: usize,
    /// Total bytes of the regular files
    pub total_size: u64,
    /// Lowercase hex sha256 of the .tar.gz bytes
    pub sha256: String,
    /// Length of the .tar.gz
    pub compressed_size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{}: not a directory; pass the build context folder", .0.display())]
    Root(PathBuf),
    #[error(".dockerignore line {line}: {message}")]
    Dockerignore { line: usize, message: String },
    #[error("reading {}: {source}; check the permissions or add it to .dockerignore", .path.display())]
    Walk {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: the name is not valid UTF-8; rename it or add it to .dockerignore", .0.display())]
    Name(PathBuf),
    #[error("{path}: the file changed size while being packed; pack again once it is stable")]
    Changed { path: String },
    #[error("compressing the context: {0}")]
    Compress(String),
    #[error("writing the context archive: {0}; check free space and the output path")]
    Write(#[source] io::Error),
}

/// Lists what goes into the context, sorted by path bytes; reads no file contents.
pub fn list(options: &ContextOptions) -> Result<Vec<ContextEntry>, ContextError> {
    let root = &options.root;
    if !root.is_dir() {
        return Err(ContextError::Root(root.clone()));
    }
    let ignore = load_ignore(options)?;
    let mut entries = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .into_iter()
        .filter_entry(|entry| {
            let Ok(relative) = entry.path().strip_prefix(root) else {
                return false;
            };
            let is_dir = entry.file_type().is_dir();
            if !ignore.is_excluded(relative, is_dir) {
                return true;
            }
            // An excluded directory is walked only if a `!` pattern could keep something in it.
            is_dir && ignore.may_reinclude_below(&relative.to_string_lossy())
        });
    for entry in walker {
        let entry = entry.map_err(|e| {
            let path = e
                .path()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| root.clone());
            ContextError::Walk {
                path,
                source: e.into(),
            }
        })?;
        let relative = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let file_type = entry.file_type();
        // `filter_entry` already dropped excluded files; an excluded directory gets here only
        // when it is walked for re-included children, and is not itself sent.
        if file_type.is_dir() && ignore.is_excluded(relative, true) {
            continue;
        }
        let path = relative
            .to_str()
            .ok_or_else(|| ContextError::Name(entry.path().to_path_buf()))?
            .replace(std::path::MAIN_SEPARATOR, "/");
        let walk_error = |source| ContextError::Walk {
            path: entry.path().to_path_buf(),
            source,
        };
        let (kind, size) = if file_type.is_dir() {
            (EntryKind::Dir, 0)
        } else if file_type.is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(walk_error)?;
            let target = target
                .to_str()
                .ok_or_else(|| ContextError::Name(entry.path().to_path_buf()))?
                .to_string();
            (EntryKind::Symlink { target }, 0)
        } else if file_type.is_file() {
            let metadata = entry.metadata().map_err(|e| walk_error(e.into()))?;
            let executable = is_executable(&metadata);
            (EntryKind::File { executable }, metadata.len())
        } else {
            continue; // sockets, FIFOs, devices
        };
        entries.push(ContextEntry { path, size, kind });
    }
    entries.sort_unstable_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(entries)
}

/// Walks, filters, and writes the deterministic tar.gz to `out` while hashing it. The same
/// folder always gives the same bytes.
pub fn pack(options: &ContextOptions, out: &mut dyn Write) -> Result<PackedContext, ContextError> {
    let entries = list(options)?;
    let threads = options.threads.max(1);
    let (job_tx, job_rx) = sync_channel::<gzip::Chunk>(threads * 2);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, done_rx) = sync_channel::<(u64, Result<Vec<u8>, String>)>(threads * 2);
    let level = options.level;
    let root = options.root.as_path();
    let entries_ref = &entries;

    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let outcome = std::thread::scope(|scope| {
        let producer = scope.spawn(move || produce(root, entries_ref, job_tx));
        for _ in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            scope.spawn(move || compress_jobs(&job_rx, &done_tx, level));
        }
        drop(done_tx);
        drop(job_rx);
        let written_result = write_in_order(done_rx, out, &mut hasher, &mut written);
        let produced = producer
            .join()
            .map_err(|_| ContextError::Compress("the packing thread panicked".into()))?;
        let (crc, len) = produced?;
        written_result?;
        Ok::<_, ContextError>((crc, len))
    });
    let (crc, len) = outcome?;
    let trailer = gzip::trailer(crc, len);
    out.write_all(&trailer).map_err(ContextError::Write)?;
    out.flush().map_err(ContextError::Write)?;
    hasher.update(trailer);
    written += trailer.len() as u64;

    let files = entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::File { .. }))
        .count();
    let total_size = entries.iter().map(|e| e.size).sum();
    Ok(PackedContext {
        files,
        total_size,
        sha256: hex(&hasher.finalize()),
        compressed_size: written,
        entries,
    })
}

/// Writes the gzip header then each compressed chunk in index order.
fn write_in_order(
    done_rx: Receiver<(u64, Result<Vec<u8>, String>)>,
    out: &mut dyn Write,
    hasher: &mut Sha256,
    written: &mut u64,
) -> Result<(), ContextError> {
    let mut emit = |bytes: &[u8]| -> Result<(), ContextError> {
        hasher.update(bytes);
        *written += bytes.len() as u64;
        out.write_all(bytes).map_err(ContextError::Write)
    };
    emit(&gzip::HEADER)?;
    let mut next = 0u64;
    let mut waiting = BTreeMap::new();
    // Returning early drops `done_rx`, which stops the workers and then the producer.
    for (index, result) in done_rx {
        waiting.insert(index, result.map_err(ContextError::Compress)?);
        while let Some(bytes) = waiting.remove(&next) {
            emit(&bytes)?;
            next += 1;
        }
    }
    Ok(())
}

fn compress_jobs(
    jobs: &Mutex<Receiver<gzip::Chunk>>,
    done: &SyncSender<(u64, Result<Vec<u8>, String>)>,
    level: u32,
) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let result = gzip::compress(&job, level);
        if done.send((job.index, result)).is_err() {
            return;
        }
    }
}

/// Streams the tar into fixed-size chunks for the workers; returns the CRC-32 and length.
fn produce(
    root: &Path,
    entries: &[ContextEntry],
    jobs: SyncSender<gzip::Chunk>,
) -> Result<(u32, u64), ContextError> {
    let mut stream = ChunkStream::new(jobs);
    let mut buffer = vec![0u8; 256 * 1024];
    for entry in entries {
        let kind = match &entry.kind {
            EntryKind::Dir => tar::HeaderKind::Dir,
            EntryKind::Symlink { target } => tar::HeaderKind::Symlink { target },
            EntryKind::File { executable } => tar::HeaderKind::File {
                size: entry.size,
                executable: *executable,
            },
        };
        stream.push(&tar::header(&entry.path, kind))?;
        if matches!(entry.kind, EntryKind::File { .. }) {
            copy_file(root, entry, &mut stream, &mut buffer)?;
        }
    }
    stream.push(&tar::trailer())?;
    stream.finish()
}

fn copy_file(
    root: &Path,
    entry: &ContextEntry,
    stream: &mut ChunkStream,
    buffer: &mut [u8],
) -> Result<(), ContextError> {
    let full = root.join(&entry.path);
    let walk_error = |source| ContextError::Walk {
        path: full.clone(),
        source,
    };
    let mut file = File::open(&full).map_err(walk_error)?.take(entry.size);
    let mut copied = 0u64;
    loop {
        let n = match file.read(buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(walk_error(e)),
        };
        stream.push(&buffer[..n])?;
        copied += n as u64;
    }
    if copied != entry.size {
        return Err(ContextError::Changed {
            path: entry.path.clone(),
        });
    }
    stream.push(&[0u8; 512][..tar::padding(entry.size)])
}

/// Cuts the tar byte stream into [`gzip::CHUNK_SIZE`]-sized jobs, keeping the CRC and length.
struct ChunkStream {
    jobs: SyncSender<gzip::Chunk>,
    current: Vec<u8>,
    previous_tail: Vec<u8>,
    index: u64,
    crc: crc32fast::Hasher,
    len: u64,
}

impl ChunkStream {
    fn new(jobs: SyncSender<gzip::Chunk>) -> Self {
        Self {
            jobs,
            current: Vec::with_capacity(gzip::CHUNK_SIZE),
            previous_tail: Vec::new(),
            index: 0,
            crc: crc32fast::Hasher::new(),
            len: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) -> Result<(), ContextError> {
        self.crc.update(bytes);
        self.len += bytes.len() as u64;
        while !bytes.is_empty() {
            let room = gzip::CHUNK_SIZE - self.current.len();
            let take = room.min(bytes.len());
            self.current.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.current.len() == gzip::CHUNK_SIZE {
                self.send(false)?;
            }
        }
        Ok(())
    }

    /// Sends the current chunk; only the one from [`Self::finish`] (possibly empty) is `last`.
    fn send(&mut self, last: bool) -> Result<(), ContextError> {
        let data = std::mem::replace(&mut self.current, Vec::with_capacity(gzip::CHUNK_SIZE));
        let dictionary = std::mem::take(&mut self.previous_tail);
        self.previous_tail = data[data.len().saturating_sub(gzip::DICTIONARY)..].to_vec();
        let job = gzip::Chunk {
            index: self.index,
            data,
            dictionary,
            last,
        };
        self.index += 1;
        self.jobs
            .send(job)
            .map_err(|_| ContextError::Compress("the compression threads stopped".into()))
    }

    fn finish(mut self) -> Result<(u32, u64), ContextError> {
        self.send(true)?;
        Ok((self.crc.finalize(), self.len))
    }
}

#[cfg(unix)]
fn is_executable(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}

fn load_ignore(options: &ContextOptions) -> Result<DockerIgnore, ContextError> {
    let path = options.root.join(".dockerignore");
    let mut ignore = match std::fs::read(&path) {
        Ok(bytes) => DockerIgnore::parse(&String::from_utf8_lossy(&bytes))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => DockerIgnore::default(),
        Err(source) => return Err(ContextError::Walk { path, source }),
    };
    ignore.keep(".dockerignore");
    for extra in &options.always_include {
        let relative = extra.strip_prefix(&options.root).unwrap_or(extra);
        if relative.is_absolute() {
            continue; // outside the context: the caller sends it another way
        }
        ignore.keep(&relative.to_string_lossy());
    }
    Ok(ignore)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
