#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `uses:` parsing for steps and jobs.

use actions::{ActionError, ActionRef, Builtin, WorkflowRef, builtin};

fn remote(owner: &str, repo: &str, path: Option<&str>, git_ref: &str) -> ActionRef {
    ActionRef::Remote {
        owner: owner.into(),
        repo: repo.into(),
        path: path.map(Into::into),
        git_ref: git_ref.into(),
        host: None,
    }
}

#[test]
fn absolute_urls_name_the_host_to_fetch_from() {
    assert_eq!(
        ActionRef::parse("https://code.forgejo.org/actions/setup-node/sub@v4").unwrap(),
        ActionRef::Remote {
            owner: "actions".into(),
            repo: "setup-node".into(),
            path: Some("sub".into()),
            git_ref: "v4".into(),
            host: Some("https://code.forgejo.org".into()),
        }
    );
    let plain_http = ActionRef::parse("http://gitea.local:3000/o/r@main").unwrap();
    assert!(
        matches!(&plain_http, ActionRef::Remote { host: Some(h), .. } if h == "http://gitea.local:3000")
    );
    assert_eq!(plain_http.to_string(), "http://gitea.local:3000/o/r@main");
    assert_eq!(
        builtin(&ActionRef::parse("https://gitea.com/actions/checkout@v4").unwrap()),
        Some(Builtin::Checkout)
    );
    for bad in [
        "https://gitea.com",
        "https://bad host/o/r@v1",
        "https://h/o@v1",
    ] {
        assert!(ActionRef::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn remote_forms() {
    assert_eq!(
        ActionRef::parse("actions/checkout@v4").unwrap(),
        remote("actions", "checkout", None, "v4")
    );
    let sha = "8f4b7f84864484a7bf31766abe9204da3cbe65b3";
    assert_eq!(
        ActionRef::parse(&format!("owner/repo/sub/dir@{sha}")).unwrap(),
        remote("owner", "repo", Some("sub/dir"), sha)
    );
    assert_eq!(
        ActionRef::parse("  o/r@releases/v1 ").unwrap(),
        remote("o", "r", None, "releases/v1")
    );
}

#[test]
fn local_and_docker_forms() {
    assert_eq!(
        ActionRef::parse("./local").unwrap(),
        ActionRef::Local {
            path: "./local".into()
        }
    );
    // The repository root itself is an action (common in an action's own CI).
    assert_eq!(
        ActionRef::parse("./").unwrap(),
        ActionRef::Local { path: "./".into() }
    );
    assert_eq!(
        ActionRef::parse("./.github/actions/x/../y").unwrap(),
        ActionRef::Local {
            path: "./.github/actions/x/../y".into()
        }
    );
    assert_eq!(
        ActionRef::parse("docker://alpine:3").unwrap(),
        ActionRef::Docker {
            image: "alpine:3".into()
        }
    );
}

#[test]
fn display_round_trips() {
    for uses in [
        "actions/checkout@v4",
        "owner/repo/sub/dir@main",
        "./local/dir",
        "docker://ghcr.io/o/i:1",
    ] {
        assert_eq!(ActionRef::parse(uses).unwrap().to_string(), uses);
    }
    for uses in [
        "./.github/workflows/a.yml",
        "o/r/.github/workflows/b.yaml@v1",
    ] {
        assert_eq!(WorkflowRef::parse(uses).unwrap().to_string(), uses);
    }
}

fn why(uses: &str) -> String {
    match ActionRef::parse(uses) {
        Err(ActionError::InvalidReference { uses: u, why }) => {
            assert_eq!(u, uses);
            why
        }
        other => panic!("{uses:?} parsed as {other:?}"),
    }
}

#[test]
fn invalid_action_refs() {
    assert!(why("owner/repo").contains("needs a version"));
    assert!(why("").contains("empty"));
    assert!(why("   ").contains("empty"));
    assert!(why("owner@v1").contains("owner and the repository"));
    assert!(why("/repo@v1").contains("owner and the repository"));
    assert!(why("owner/repo@").contains("after `@`"));
    assert!(why("owner/repo@v1@v2").contains("more than one"));
    assert!(why("owner/repo//x@v1").contains("empty or `..`"));
    assert!(why("owner/repo/../x@v1").contains("empty or `..`"));
    assert!(why("../outside").contains("needs a version"));
    assert!(why("./../outside").contains("inside the repository"));
    assert!(why("docker://").contains("image name"));
    let message = ActionRef::parse("owner/repo").unwrap_err().to_string();
    assert!(
        message.starts_with("invalid `uses: owner/repo`: "),
        "{message}"
    );
}

#[test]
fn workflow_refs() {
    assert_eq!(
        WorkflowRef::parse("./.github/workflows/x.yml").unwrap(),
        WorkflowRef::Local {
            path: "./.github/workflows/x.yml".into()
        }
    );
    assert_eq!(
        WorkflowRef::parse("owner/repo/.github/workflows/x.yml@v2").unwrap(),
        WorkflowRef::Remote {
            owner: "owner".into(),
            repo: "repo".into(),
            path: ".github/workflows/x.yml".into(),
            git_ref: "v2".into(),
            host: None,
        }
    );
    // Gitea's and Forgejo's absolute form and folders.
    let absolute = "https://codeberg.org/o/actions/.gitea/workflows/release.yaml@main";
    assert_eq!(
        WorkflowRef::parse(absolute).unwrap(),
        WorkflowRef::Remote {
            owner: "o".into(),
            repo: "actions".into(),
            path: ".gitea/workflows/release.yaml".into(),
            git_ref: "main".into(),
            host: Some("https://codeberg.org".into()),
        }
    );
    assert_eq!(WorkflowRef::parse(absolute).unwrap().to_string(), absolute);
    for (uses, expected) in [
        ("owner/repo/.github/workflows/x.yml", "needs a version"),
        ("owner/repo@v1", "`.github/workflows/`"),
        ("./ci/x.yml", "`.github/workflows/`"),
        ("./.github/workflows/sub/x.yml", "no subdirectories"),
        ("./.github/workflows/x.txt", "`.yml`"),
        ("./.github/workflows/x.yml@v1", "no `@ref`"),
        ("", "empty"),
    ] {
        let err = WorkflowRef::parse(uses).unwrap_err().to_string();
        assert!(err.contains(expected), "{uses}: {err}");
    }
}

#[test]
fn checkout_is_builtin() {
    let checkout = ActionRef::parse("actions/checkout@v4").unwrap();
    assert_eq!(builtin(&checkout), Some(Builtin::Checkout));
    let sha_pinned =
        ActionRef::parse("Actions/Checkout@11bd71901bbe5b1630ceea73d27597364c9af683").unwrap();
    assert_eq!(builtin(&sha_pinned), Some(Builtin::Checkout));
    for other in [
        "actions/setup-node@v4",
        "actions/checkout/sub@v4",
        "./checkout",
        "docker://checkout",
    ] {
        assert_eq!(builtin(&ActionRef::parse(other).unwrap()), None, "{other}");
    }
}

#[test]
fn self_repository_references() {
    // GitHub's `$/path` (changelog 2026-07-30): leading slashes after `$/` are dropped, as
    // actions/runner's TryParseSelfRepository drops them.
    assert_eq!(
        ActionRef::parse("$/.github/actions/build").unwrap(),
        ActionRef::SelfRepository {
            path: ".github/actions/build".into()
        }
    );
    assert_eq!(
        ActionRef::parse("$//x").unwrap().to_string(),
        "$/x".to_string()
    );
    for bad in ["$/", "$/x@v1", "$/../outside"] {
        assert!(ActionRef::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        WorkflowRef::parse("$/.github/workflows/called.yml").unwrap(),
        WorkflowRef::Local {
            path: "./.github/workflows/called.yml".into()
        }
    );
}

#[test]
fn ssh_action_urls_as_act_runner_takes_them() {
    match ActionRef::parse("ssh://git@gitea.example:2222/o/act/sub@v1").unwrap() {
        ActionRef::Remote {
            owner,
            repo,
            path,
            git_ref,
            host,
        } => {
            assert_eq!(
                (owner.as_str(), repo.as_str(), git_ref.as_str()),
                ("o", "act", "v1")
            );
            assert_eq!(path.as_deref(), Some("sub"));
            assert_eq!(host.as_deref(), Some("ssh://git@gitea.example:2222"));
        }
        other => panic!("{other:?}"),
    }
    // `@` in the host only after ssh://.
    assert!(ActionRef::parse("https://user@host/o/r@v1").is_err());
}
