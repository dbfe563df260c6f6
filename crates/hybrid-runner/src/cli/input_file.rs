//! The files the command line reads whole: `--secret-file`, `--env-file`, `-e` (the event
//! payload) and `--contexts`. Each must be a regular file of at most [`MAX_INPUT_FILE`]
//! bytes: a FIFO, a device or a runaway file is refused before it is read, with the flag
//! and the path named (never the content: a secrets file's lines are secrets).

use std::io::Read;
use std::path::{Path, PathBuf};

use super::UsageError;

/// The largest file a flag reads (16 MiB; a GitHub event payload is at most 25 MB, in
/// practice far under a megabyte).
pub const MAX_INPUT_FILE: u64 = 16 * 1024 * 1024;

/// Why a flag's file was refused.
#[derive(Debug, thiserror::Error)]
pub enum InputFileError {
    #[error("cannot read {flag} file {}: {source}; check the path", path.display())]
    Open {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{flag} file {} is not a regular file; pass a file, not a pipe, device or folder", path.display())]
    NotRegular { flag: &'static str, path: PathBuf },
    #[error("{flag} file {} is larger than {} MiB; pass a smaller file", path.display(), MAX_INPUT_FILE >> 20)]
    TooLarge { flag: &'static str, path: PathBuf },
    #[error("{flag} file {} is not UTF-8 text; save it as UTF-8", path.display())]
    NotText { flag: &'static str, path: PathBuf },
}

impl From<InputFileError> for UsageError {
    fn from(e: InputFileError) -> Self {
        UsageError(e.to_string())
    }
}

/// Refuses a file that is not regular or too large, without reading it.
pub fn check(flag: &'static str, path: &Path) -> Result<std::fs::File, InputFileError> {
    let open = |source| InputFileError::Open {
        flag,
        path: path.to_path_buf(),
        source,
    };
    // Opening a FIFO for reading would wait for a writer: look first.
    let meta = std::fs::metadata(path).map_err(open)?;
    if !meta.is_file() {
        return Err(InputFileError::NotRegular {
            flag,
            path: path.to_path_buf(),
        });
    }
    if meta.len() > MAX_INPUT_FILE {
        return Err(InputFileError::TooLarge {
            flag,
            path: path.to_path_buf(),
        });
    }
    std::fs::File::open(path).map_err(open)
}

/// The file's text, read only when [`check`] accepts it, and never more than
/// [`MAX_INPUT_FILE`] bytes of it (a file growing meanwhile is refused).
pub fn read(flag: &'static str, path: &Path) -> Result<String, InputFileError> {
    let file = check(flag, path)?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| InputFileError::Open {
            flag,
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > MAX_INPUT_FILE {
        return Err(InputFileError::TooLarge {
            flag,
            path: path.to_path_buf(),
        });
    }
    String::from_utf8(bytes).map_err(|_| InputFileError::NotText {
        flag,
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_folders_and_large_files_and_reads_the_rest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = read("--env-file", dir.path()).expect_err("a folder");
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let big = dir.path().join("big");
        let file = std::fs::File::create(&big).expect("create");
        file.set_len(MAX_INPUT_FILE + 1).expect("grow");
        let err = read("--secret-file", &big).expect_err("too large");
        assert!(err.to_string().contains("larger than 16 MiB"), "{err}");
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "A=1\n").expect("write");
        assert_eq!(read("--env-file", &ok).expect("read"), "A=1\n");
    }
}
