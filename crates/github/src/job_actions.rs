//! A job's remote actions, put into the action cache before its first step as
//! actions/runner does in "Set up job" (`ActionManager.cs` `PrepareActionsAsync`): the
//! launch service resolves every `owner/repo@ref` of the job's steps to a commit and a
//! tarball URL, the tarballs are downloaded and unpacked into the cache, and the steps of
//! composite actions among them are resolved the same way, up to
//! [`MAX_COMPOSITE_DEPTH`] levels. The job then runs with the cache offline: nothing is
//! fetched while a step runs. `actions/checkout` and the image-build actions are served by
//! the runner itself and never downloaded.

use std::collections::BTreeSet;
use std::path::Path;

use actions::{ActionCache, ActionRef, Runs};

use crate::job::{JobMessage, StepAction};
use crate::launch::{ActionToResolve, LaunchError, download_archive, resolve_actions};

/// How deep composite actions may nest (actions/runner's `Constants.CompositeActionsMaxDepth`).
pub const MAX_COMPOSITE_DEPTH: usize = 9;

/// Why the job's actions could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum ActionsError {
    #[error("{0}")]
    Launch(#[from] LaunchError),
    #[error("storing {action} in the action cache failed: {source}")]
    Store {
        action: String,
        #[source]
        source: actions::ActionError,
    },
    #[error(
        "composite actions nest deeper than {MAX_COMPOSITE_DEPTH} levels (at {action}); GitHub refuses such a job too: flatten the actions"
    )]
    TooDeep { action: String },
    #[error("the download folder {path} cannot be used: {source}")]
    Scratch {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A remote `uses:` (no host, not served by the runner) as the launch service takes it.
fn to_resolve(uses: &ActionRef) -> Option<ActionToResolve> {
    let ActionRef::Remote {
        owner,
        repo,
        path,
        git_ref,
        host: None,
    } = uses
    else {
        return None;
    };
    if actions::builtin(uses).is_some() {
        return None;
    }
    let text = format!("{owner}/{repo}@{git_ref}");
    if actions::deploy_action::is_served_by_runner(&text) {
        return None;
    }
    Some(ActionToResolve {
        action: format!("{owner}/{repo}"),
        version: git_ref.clone(),
        path: path.clone().unwrap_or_default(),
    })
}

/// The remote actions the job's own steps use.
pub fn job_actions(job: &JobMessage) -> Vec<ActionToResolve> {
    let mut out: Vec<ActionToResolve> = Vec::new();
    for step in &job.steps {
        let StepAction::Repository {
            name,
            git_ref,
            path,
        } = &step.action
        else {
            continue;
        };
        if name.is_empty() || name.eq_ignore_ascii_case("self") {
            continue;
        }
        let uses = if path.is_empty() {
            format!("{name}@{git_ref}")
        } else {
            format!("{name}/{}@{git_ref}", path.trim_matches('/'))
        };
        if let Some(action) = ActionRef::parse(&uses).ok().as_ref().and_then(to_resolve)
            && !out.iter().any(|a| a.key() == action.key())
        {
            out.push(action);
        }
    }
    out
}

/// Resolves, downloads and stores the job's actions and those of its composite actions;
/// returns each `owner/repo@ref` stored, in order. `scratch`: where archives are
/// downloaded (deleted after).
pub async fn prepare(
    http: &reqwest::Client,
    job: &JobMessage,
    launch_endpoint: &str,
    cache: &ActionCache,
    scratch: &Path,
) -> Result<Vec<String>, ActionsError> {
    let mut wanted = job_actions(job);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut stored = Vec::new();
    let mut depth = 0;
    while !wanted.is_empty() {
        if depth > MAX_COMPOSITE_DEPTH {
            return Err(ActionsError::TooDeep {
                action: wanted[0].key(),
            });
        }
        seen.extend(wanted.iter().map(ActionToResolve::key));
        let downloads = resolve_actions(
            http,
            launch_endpoint,
            &job.connection.access_token,
            &job.plan_id,
            &job.job_id,
            &wanted,
        )
        .await?;
        let mut next = Vec::new();
        for action in &wanted {
            let key = action.key();
            let Some(download) = downloads.get(&key) else {
                return Err(LaunchError::Unresolvable(format!(
                    "the launch service did not resolve {key}"
                ))
                .into());
            };
            let archive = scratch.join(format!("action-{}.tar.gz", stored.len()));
            download_archive(http, download, &archive).await?;
            let (owner, repo) = action
                .action
                .split_once('/')
                .unwrap_or((&action.action, ""));
            let (cache, owner, repo) = (cache.clone(), owner.to_string(), repo.to_string());
            let (version, sha) = (action.version.clone(), download.resolved_sha.clone());
            let file = archive.clone();
            let dir = tokio::task::spawn_blocking(move || {
                cache.store_archive(&owner, &repo, &version, &sha, &file)
            })
            .await
            .map_err(|e| ActionsError::Scratch {
                path: archive.display().to_string(),
                source: std::io::Error::other(e),
            })?
            .map_err(|source| ActionsError::Store {
                action: key.clone(),
                source,
            })?;
            let _ = std::fs::remove_file(&archive);
            stored.push(key);
            let action_dir = if action.path.is_empty() {
                dir
            } else {
                dir.join(&action.path)
            };
            // A composite action's own `uses:`, resolved in the next round; a manifest
            // that cannot be read is reported by the engine when the step runs.
            if let Ok(manifest) = actions::load_manifest(&action_dir)
                && let Runs::Composite { steps } = manifest.runs
            {
                for uses in steps.iter().filter_map(|s| s.uses.as_deref()) {
                    if let Some(inner) = ActionRef::parse(uses).ok().as_ref().and_then(to_resolve)
                        && !seen.contains(&inner.key())
                        && !next
                            .iter()
                            .any(|n: &ActionToResolve| n.key() == inner.key())
                    {
                        next.push(inner);
                    }
                }
            }
        }
        wanted = next;
        depth += 1;
    }
    Ok(stored)
}
