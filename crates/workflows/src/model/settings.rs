//! Settings shared by the workflow and its jobs: `defaults.run`, `concurrency`,
//! `permissions` and `cache-mode`, and Forgejo's `enable-email-notifications`.

use crate::yaml::{Node, NodeValue};

use super::dialect::Dialect;
use super::expressions::Scope;
use super::reader::{Reader, WANT_MAPPING};
use super::suggest::did_you_mean;
use super::types::{CacheMode, Concurrency, Defaults, Located, PermissionLevel, Permissions};

pub(crate) fn read_defaults(r: &mut Reader, node: &Node, scope: Scope) -> Option<Defaults> {
    let mut defaults = Defaults::default();
    for (_, _, run) in r.mapping(node, Some(&["run"]))? {
        for (key, _, value) in r
            .mapping(run, Some(&["shell", "working-directory"]))
            .unwrap_or_default()
        {
            let v = r.non_empty_string(value, scope);
            match key {
                "shell" => defaults.shell = v,
                _ => defaults.working_directory = v,
            }
        }
    }
    Some(defaults)
}

pub(crate) fn read_concurrency(r: &mut Reader, node: &Node, scope: Scope) -> Option<Concurrency> {
    if node.as_mapping().is_none() {
        let group = r.string(node, scope)?;
        return Some(Concurrency {
            group,
            cancel_in_progress: None,
        });
    }
    let mut group = None;
    let mut cancel_in_progress = None;
    for (key, _, value) in r.mapping(node, Some(&["group", "cancel-in-progress", "queue"]))? {
        match key {
            "group" => group = r.non_empty_string(value, scope),
            "cancel-in-progress" => cancel_in_progress = r.boolean(value, scope),
            _ => match value.as_str() {
                Some("single" | "max") => {}
                _ => r.unexpected(value, "'queue' takes 'single' or 'max'."),
            },
        }
    }
    match group {
        Some(group) => Some(Concurrency {
            group,
            cancel_in_progress,
        }),
        None => {
            r.missing(node.location, "group");
            None
        }
    }
}

pub(crate) fn read_permissions(r: &mut Reader, node: &Node) -> Option<Located<Permissions>> {
    const SCOPES: &[&str] = &[
        "actions",
        "artifact-metadata",
        "attestations",
        "checks",
        "code-quality",
        "contents",
        "copilot-requests",
        "deployments",
        "discussions",
        "drives",
        "id-token",
        "issues",
        "models",
        "packages",
        "pages",
        "pull-requests",
        "repository-projects",
        "security-events",
        "statuses",
        "vulnerability-alerts",
    ];
    let permissions = match &node.value {
        NodeValue::String(s) if s == "read-all" => Permissions::ReadAll,
        NodeValue::String(s) if s == "write-all" => Permissions::WriteAll,
        NodeValue::Mapping(_) => {
            let mut scopes = Vec::new();
            for (key, _, value) in r.mapping(node, Some(SCOPES))? {
                let level = match (key, value.as_str()) {
                    (_, Some("none")) => PermissionLevel::None,
                    ("copilot-requests" | "id-token", Some("write"))
                    | (
                        "actions"
                        | "artifact-metadata"
                        | "attestations"
                        | "checks"
                        | "code-quality"
                        | "contents"
                        | "deployments"
                        | "discussions"
                        | "drives"
                        | "issues"
                        | "packages"
                        | "pages"
                        | "pull-requests"
                        | "repository-projects"
                        | "security-events"
                        | "statuses",
                        Some("write"),
                    ) => PermissionLevel::Write,
                    ("copilot-requests" | "id-token", Some("read")) => {
                        r.unexpected(value, format!("'{key}' takes 'write' or 'none'."));
                        continue;
                    }
                    (_, Some("read")) => PermissionLevel::Read,
                    _ => {
                        r.unexpected(value, format!("'{key}' takes 'read', 'write' or 'none'."));
                        continue;
                    }
                };
                scopes.push((key.to_string(), level));
            }
            Permissions::Scopes(scopes)
        }
        _ => {
            r.unexpected(
                node,
                format!("'permissions' takes 'read-all', 'write-all', or a mapping of scopes to 'read', 'write' or 'none'. {WANT_MAPPING}"),
            );
            return None;
        }
    };
    Some(Located::new(permissions, node.location))
}

/// `cache-mode:` at the workflow or a job: one of GitHub's four modes, written literally.
pub(crate) fn read_cache_mode(r: &mut Reader, node: &Node) -> Option<Located<CacheMode>> {
    let text = r.non_empty_string(node, Scope::None)?;
    match CacheMode::parse(&text.value) {
        Some(mode) => Some(Located::new(mode, text.location)),
        None => {
            let modes: Vec<&str> = CacheMode::ALL.iter().map(|m| m.as_str()).collect();
            r.unexpected(node, did_you_mean(&text.value, &modes, "cache modes"));
            None
        }
    }
}

/// Forgejo's `enable-email-notifications:` (a boolean, its schema's
/// `workflow-enable-email-notifications`). Gitea reads workflows without it and ignores the
/// key; GitHub's schema has no such key.
pub(crate) fn read_email_notifications(r: &mut Reader, key: &Node, node: &Node) -> Option<bool> {
    match r.dialect {
        Dialect::Forgejo => r.plain_bool(node),
        Dialect::Gitea => None,
        Dialect::Github => {
            r.error(
                key.location,
                "Unexpected value 'enable-email-notifications'",
                format!(
                    "'enable-email-notifications' is Forgejo syntax; {}. Remove it, or move the file to .forgejo/workflows.",
                    r.dialect.read_as()
                ),
            );
            None
        }
    }
}
