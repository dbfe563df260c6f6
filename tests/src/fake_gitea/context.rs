//! Tasks shaped as Gitea hands them out: the `github`/`gitea` context keys of
//! `GenerateGiteaContext` (docs/internals/gitea-protocol.md) and the `GITHUB_TOKEN` / `GITEA_TOKEN` secrets
//! every task carries, for a push to `main` of `owner/repo` on this fake instance.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::views::TaskSpec;

/// The repository the contexts name.
pub const REPOSITORY: &str = "owner/repo";
/// The commit the contexts name.
pub const SHA: &str = "4c7a1e0d9f6b2a3c5e8d7f1a2b3c4d5e6f7a8b9c";

/// The id of the single job in a payload, if it can be read.
fn job_id(payload: &str) -> Option<String> {
    let doc: Value = serde_saphyr::from_str(payload).ok()?;
    doc.get("jobs")?.as_object()?.keys().next().cloned()
}

/// A task for `runs-on: labels` running `payload`, with Gitea's context for a push of
/// [`SHA`] to `refs/heads/main` of [`REPOSITORY`] on the instance at `url`, run `run_id`,
/// and the task token `token` in the context and as `GITHUB_TOKEN` / `GITEA_TOKEN`.
pub(crate) fn gitea_task(
    url: &str,
    labels: &[&str],
    payload: &str,
    run_id: i64,
    token: &str,
) -> TaskSpec {
    let app_url = format!("{}/", url.trim_end_matches('/'));
    let (owner, name) = REPOSITORY.split_once('/').unwrap_or((REPOSITORY, ""));
    let repository_url = format!("{app_url}{REPOSITORY}");
    let event = json!({
        "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000000",
        "after": SHA,
        "repository": {
            "name": name,
            "full_name": REPOSITORY,
            "owner": {"login": owner, "username": owner},
            "html_url": repository_url,
            "default_branch": "main",
        },
        "pusher": {"login": "gitea-admin", "username": "gitea-admin"},
        "sender": {"login": "gitea-admin", "username": "gitea-admin"},
        "head_commit": {"id": SHA, "message": "test commit\n"},
    });
    let context = json!({
        "action": "", "action_path": "", "action_ref": "", "action_repository": "",
        "action_status": "",
        "actor": "gitea-admin",
        "api_url": format!("{app_url}api/v1"),
        "base_ref": "", "head_ref": "", "env": "",
        "event": event,
        "event_name": "push",
        "event_path": "", "graphql_url": "",
        "job": job_id(payload).unwrap_or_default(),
        "ref": "refs/heads/main",
        "ref_name": "main",
        "ref_protected": false,
        "ref_type": "branch",
        "path": "",
        "repository": REPOSITORY,
        "repository_owner": owner,
        "repositoryUrl": repository_url,
        "retention_days": "",
        "run_id": run_id.to_string(),
        "run_number": run_id.to_string(),
        "run_attempt": "1",
        "secret_source": "Actions",
        "server_url": app_url.trim_end_matches('/'),
        "sha": SHA,
        "triggering_actor": "gitea-admin",
        "workflow": "ci.yml",
        "workspace": "",
        "gitea_default_actions_url": "https://github.com",
        "token": token,
        "gitea_runtime_token": format!("runtime.{token}"),
    });
    TaskSpec {
        labels_required: labels.iter().map(|l| l.to_string()).collect(),
        workflow_payload: payload.to_string(),
        context,
        secrets: BTreeMap::from([
            ("GITHUB_TOKEN".to_string(), token.to_string()),
            ("GITEA_TOKEN".to_string(), token.to_string()),
        ]),
        vars: BTreeMap::new(),
        needs: BTreeMap::new(),
    }
}
