//! The events GitHub's workflow schema knows, with the filters and activity types each
//! takes. Made from the strict schema (`on-mapping-strict`) of `@actions/workflow-parser`
//! 0.3.61 (`dist/workflow-v1.0.min.json`); `repository_dispatch` as one string is accepted
//! as the runner's schema accepts it (the npm schema's `repository-dispatch-string` is
//! `branch_protection_rule` by mistake).

/// What an event's value may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Config {
    /// Nothing: `create:` with no value.
    Bare,
    /// A mapping of these filter keys (`types` aside).
    Filters(&'static [&'static str]),
    /// `schedule`, `workflow_call`, `workflow_dispatch`: read by their own code.
    Special,
}

/// The activity types an event takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Types {
    /// No `types:` key.
    None,
    /// Any non-empty strings (`repository_dispatch`).
    Any,
    /// Exactly these.
    Of(&'static [&'static str]),
}

/// One event of the schema.
#[derive(Debug)]
pub(crate) struct GithubEvent {
    pub name: &'static str,
    pub config: Config,
    pub types: Types,
}

/// The event named `name`, if GitHub knows it.
pub(crate) fn github_event(name: &str) -> Option<&'static GithubEvent> {
    EVENTS.iter().find(|e| e.name == name)
}

/// Every event name, for suggestions.
pub(crate) fn github_event_names() -> Vec<&'static str> {
    EVENTS.iter().map(|e| e.name).collect()
}

const EVENTS: &[GithubEvent] = &[
    GithubEvent {
        name: "branch_protection_rule",
        config: Config::Filters(&[]),
        types: Types::Of(&["created", "edited", "deleted"]),
    },
    GithubEvent {
        name: "check_run",
        config: Config::Filters(&[]),
        types: Types::Of(&["completed", "created", "rerequested", "requested_action"]),
    },
    GithubEvent {
        name: "check_suite",
        config: Config::Filters(&[]),
        types: Types::Of(&["completed"]),
    },
    GithubEvent {
        name: "create",
        config: Config::Bare,
        types: Types::None,
    },
    GithubEvent {
        name: "delete",
        config: Config::Bare,
        types: Types::None,
    },
    GithubEvent {
        name: "deployment",
        config: Config::Bare,
        types: Types::None,
    },
    GithubEvent {
        name: "deployment_status",
        config: Config::Bare,
        types: Types::None,
    },
    GithubEvent {
        name: "discussion",
        config: Config::Filters(&[]),
        types: Types::Of(&[
            "created",
            "edited",
            "deleted",
            "transferred",
            "pinned",
            "unpinned",
            "labeled",
            "unlabeled",
            "locked",
            "unlocked",
            "category_changed",
            "answered",
            "unanswered",
        ]),
    },
    GithubEvent {
        name: "discussion_comment",
        config: Config::Filters(&[]),
        types: Types::Of(&["created", "edited", "deleted"]),
    },
    GithubEvent {
        name: "fork",
        config: Config::Bare,
        types: Types::None,
    },
    GithubEvent {
        name: "gollum",
        config: Config::Bare,
        types: Types::None,
    },
    GithubEvent {
        name: "image_version",
        config: Config::Filters(&["names", "versions"]),
        types: Types::Of(&["created", "ready", "deleted"]),
    },
    GithubEvent {
        name: "issue_comment",
        config: Config::Filters(&[]),
        types: Types::Of(&["created", "edited", "deleted"]),
    },
    GithubEvent {
        name: "issues",
        config: Config::Filters(&[]),
        types: Types::Of(&[
            "opened",
            "edited",
            "deleted",
            "transferred",
            "pinned",
            "unpinned",
            "closed",
            "reopened",
            "assigned",
            "unassigned",
            "labeled",
            "unlabeled",
            "locked",
            "unlocked",
            "milestoned",
            "demilestoned",
            "field_added",
            "field_removed",
            "typed",
            "untyped",
        ]),
    },
    GithubEvent {
        name: "label",
        config: Config::Filters(&[]),
        types: Types::Of(&["created", "edited", "deleted"]),
    },
    GithubEvent {
        name: "merge_group",
        config: Config::Filters(&["branches", "branches-ignore"]),
        types: Types::Of(&["checks_requested"]),
    },
    GithubEvent {
        name: "milestone",
        config: Config::Filters(&[]),
        types: Types::Of(&["created", "closed", "opened", "edited", "deleted"]),
    },
    GithubEvent {
        name: "page_build",
        config: Config::Bare,
        types: Types::None,
    },
    GithubEvent {
        name: "project",
        config: Config::Filters(&[]),
        types: Types::Of(&["created", "closed", "reopened", "edited", "deleted"]),
    },
    GithubEvent {
        name: "project_card",
        config: Config::Filters(&[]),
        types: Types::Of(&["created", "moved", "converted", "edited", "deleted"]),
    },
    GithubEvent {
        name: "project_column",
        config: Config::Filters(&[]),
        types: Types::Of(&["created", "updated", "moved", "deleted"]),
    },
    GithubEvent {
        name: "public",
        config: Config::Bare,
        types: Types::None,
    },
    GithubEvent {
        name: "pull_request",
        config: Config::Filters(&["branches", "branches-ignore", "paths", "paths-ignore"]),
        types: Types::Of(&[
            "assigned",
            "unassigned",
            "labeled",
            "unlabeled",
            "opened",
            "edited",
            "closed",
            "reopened",
            "synchronize",
            "converted_to_draft",
            "locked",
            "unlocked",
            "enqueued",
            "dequeued",
            "milestoned",
            "demilestoned",
            "ready_for_review",
            "review_requested",
            "review_request_removed",
            "auto_merge_enabled",
            "auto_merge_disabled",
            "stacked",
        ]),
    },
    GithubEvent {
        name: "pull_request_comment",
        config: Config::Filters(&[]),
        types: Types::Of(&["created", "edited", "deleted"]),
    },
    GithubEvent {
        name: "pull_request_review",
        config: Config::Filters(&[]),
        types: Types::Of(&["submitted", "edited", "dismissed"]),
    },
    GithubEvent {
        name: "pull_request_review_comment",
        config: Config::Filters(&[]),
        types: Types::Of(&["created", "edited", "deleted"]),
    },
    GithubEvent {
        name: "pull_request_target",
        config: Config::Filters(&["branches", "branches-ignore", "paths", "paths-ignore"]),
        types: Types::Of(&[
            "assigned",
            "unassigned",
            "labeled",
            "unlabeled",
            "opened",
            "edited",
            "closed",
            "reopened",
            "synchronize",
            "converted_to_draft",
            "locked",
            "unlocked",
            "enqueued",
            "dequeued",
            "milestoned",
            "demilestoned",
            "ready_for_review",
            "review_requested",
            "review_request_removed",
            "auto_merge_enabled",
            "auto_merge_disabled",
            "stacked",
        ]),
    },
    GithubEvent {
        name: "push",
        config: Config::Filters(&[
            "branches",
            "branches-ignore",
            "tags",
            "tags-ignore",
            "paths",
            "paths-ignore",
        ]),
        types: Types::None,
    },
    GithubEvent {
        name: "registry_package",
        config: Config::Filters(&[]),
        types: Types::Of(&["published", "updated"]),
    },
    GithubEvent {
        name: "release",
        config: Config::Filters(&[]),
        types: Types::Of(&[
            "published",
            "unpublished",
            "created",
            "edited",
            "deleted",
            "prereleased",
            "released",
        ]),
    },
    GithubEvent {
        name: "repository_dispatch",
        config: Config::Filters(&[]),
        types: Types::Any,
    },
    GithubEvent {
        name: "schedule",
        config: Config::Special,
        types: Types::None,
    },
    GithubEvent {
        name: "status",
        config: Config::Bare,
        types: Types::None,
    },
    GithubEvent {
        name: "watch",
        config: Config::Filters(&[]),
        types: Types::Of(&["started"]),
    },
    GithubEvent {
        name: "workflow_call",
        config: Config::Special,
        types: Types::None,
    },
    GithubEvent {
        name: "workflow_dispatch",
        config: Config::Special,
        types: Types::None,
    },
    GithubEvent {
        name: "workflow_run",
        config: Config::Filters(&["workflows", "branches", "branches-ignore"]),
        types: Types::Of(&["requested", "completed", "in_progress"]),
    },
];
