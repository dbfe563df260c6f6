//! The one error type of this crate: every variant names the phase that failed and says
//! what to do about it.

use std::path::PathBuf;

use workflows::Diagnostics;

/// What went wrong behind a `uses:`.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The `uses:` text is not a reference this runner understands.
    #[error("invalid `uses: {uses}`: {why}")]
    InvalidReference { uses: String, why: String },
    /// `action.yml` was read but is not a valid action; each diagnostic carries
    /// `file:line:col` and its own remedy.
    #[error("{0}")]
    Manifest(Diagnostics),
    /// Neither `action.yml` nor `action.yaml` exists in the action's directory.
    #[error(
        "no action.yml or action.yaml in {}: an action needs its metadata file at the root of the referenced directory; check the path after the repository in `uses:`",
        dir.display()
    )]
    ManifestNotFound { dir: PathBuf },
    /// A symbolic link carries a local action, its `action.yml` or a reusable workflow
    /// out of the repository (or out of a fetched action's checkout); nothing is read
    /// through it.
    #[error(
        "{} leads out of {} through a symbolic link; an action or reusable workflow must live inside its repository: replace the link with the files themselves",
        path.display(),
        root.display()
    )]
    LinkLeaves { path: PathBuf, root: PathBuf },
    /// `git` reported an error while resolving or downloading a remote action.
    #[error(
        "fetching {url} at `{git_ref}` failed: {stderr}\nCheck that the repository and the ref exist and are reachable from this machine (base URL, network, credentials); a runner that already fetched it once can run with --offline"
    )]
    Fetch {
        url: String,
        git_ref: String,
        stderr: String,
    },
    /// Offline, and the action cache holds nothing for this ref.
    #[error(
        "{owner}/{repo}@{git_ref} is not in the action cache and --offline forbids fetching it: run once without --offline to fill the cache"
    )]
    NotCached {
        owner: String,
        repo: String,
        git_ref: String,
    },
    /// An action archive (a tarball the job's service handed out) could not be unpacked.
    #[error(
        "unpacking the archive of {action} ({}) failed: {stderr}\nThe download may be cut short or not a tar.gz; the job fetches it again on its next run"
    , archive.display())]
    Unpack {
        action: String,
        archive: PathBuf,
        stderr: String,
    },
    /// The `git` program could not be started.
    #[error("could not run `git` ({source}): install git and make sure it is on PATH")]
    GitMissing {
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing a file of the action cache or an action directory failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `reading`, `creating the cache directory`.
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ActionError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        ActionError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`ActionError`].
pub type Result<T, E = ActionError> = std::result::Result<T, E>;
