//! The `GITHUB_*` command files of a job's steps ([`StepFiles`]): where they are, created
//! private to the runner's user, and the variables that point steps at them.

use std::path::{Path, PathBuf};

use crate::commands::AnnotationLevel;

/// How much a step may write to one of the files before it is dropped unread.
#[derive(Debug)]
pub struct FileCap {
    pub bytes: u64,
    pub level: AnnotationLevel,
    /// The variable naming the file.
    pub file: &'static str,
}

/// `GITHUB_STEP_SUMMARY`: 1 MiB a step, as GitHub (its wording, an error annotation; the
/// step does not fail).
pub const SUMMARY_CAP: FileCap = FileCap {
    bytes: 1024 * 1024,
    level: AnnotationLevel::Error,
    file: "GITHUB_STEP_SUMMARY",
};

/// `GITHUB_ENV`, `GITHUB_OUTPUT`, `GITHUB_STATE`, `GITHUB_PATH`: 1 MiB a step each (GitHub
/// keeps a job's outputs to 1 MB), dropped unread with a warning.
pub const COMMAND_FILE_CAP: [FileCap; 4] = [
    command_file_cap("GITHUB_ENV"),
    command_file_cap("GITHUB_OUTPUT"),
    command_file_cap("GITHUB_STATE"),
    command_file_cap("GITHUB_PATH"),
];

const fn command_file_cap(file: &'static str) -> FileCap {
    FileCap {
        bytes: 1024 * 1024,
        level: AnnotationLevel::Warning,
        file,
    }
}

impl FileCap {
    /// The annotation for a file of `len` bytes over the cap.
    pub fn message(&self, len: u64) -> String {
        if self.file == "GITHUB_STEP_SUMMARY" {
            return format!(
                "$GITHUB_STEP_SUMMARY upload aborted, supports content up to a size of {}k, got {}k. For more information see: https://docs.github.com/actions/using-workflows/workflow-commands-for-github-actions#adding-a-markdown-summary",
                self.bytes / 1024,
                len / 1024
            );
        }
        format!(
            "${} dropped unread: it supports content up to a size of {}k, got {}k; write large values to a file in the workspace instead",
            self.file,
            self.bytes / 1024,
            len / 1024
        )
    }
}

/// The files behind `GITHUB_ENV`, `GITHUB_OUTPUT`, `GITHUB_PATH`, `GITHUB_STATE` and
/// `GITHUB_STEP_SUMMARY`: one set per job, emptied before every step (truncating is far
/// cheaper than creating five new files a step, and every step still starts empty).
#[derive(Debug)]
pub struct StepFiles {
    pub env: PathBuf,
    pub output: PathBuf,
    pub path: PathBuf,
    pub state: PathBuf,
    pub summary: PathBuf,
}

impl StepFiles {
    pub(crate) fn new(dir: &Path) -> StepFiles {
        let folder = dir.join("_files");
        StepFiles {
            env: folder.join("set_env"),
            output: folder.join("set_output"),
            path: folder.join("add_path"),
            state: folder.join("save_state"),
            summary: folder.join("step_summary"),
        }
    }

    /// Creates the files when their folder is missing: before the job's first step, or
    /// after a step removed it. After each step `read_files` empties what was written.
    pub(crate) fn ensure(&self) -> std::io::Result<()> {
        let Some(folder) = self.env.parent() else {
            return Ok(());
        };
        if !folder.is_dir() {
            use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(folder)?;
            for f in [
                &self.env,
                &self.output,
                &self.path,
                &self.state,
                &self.summary,
            ] {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(f)?;
            }
        }
        Ok(())
    }

    pub(crate) fn vars(&self) -> [(String, String); 5] {
        let s = |p: &PathBuf| p.display().to_string();
        [
            ("GITHUB_ENV".into(), s(&self.env)),
            ("GITHUB_OUTPUT".into(), s(&self.output)),
            ("GITHUB_PATH".into(), s(&self.path)),
            ("GITHUB_STATE".into(), s(&self.state)),
            ("GITHUB_STEP_SUMMARY".into(), s(&self.summary)),
        ]
    }
}
