//! The `GITHUB_*` command files of a job's steps ([`StepFiles`]): where they are, created
//! private to the runner's user, and the variables that point steps at them.

use std::path::{Path, PathBuf};

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
