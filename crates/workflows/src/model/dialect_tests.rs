//! The loader by dialect: GitHub's strict `on:` checks, what GitHub's reader folds or
//! allows that we used to refuse, and the names Gitea and Forgejo add.

use super::*;

const JOB: &str = "jobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo\n";

fn problems(text: &str, dialect: Dialect) -> Vec<String> {
    match load_as(text, "w.yml", dialect) {
        Ok(_) => Vec::new(),
        Err(d) => d.0.iter().map(|d| d.to_string()).collect(),
    }
}

fn github(on: &str) -> Vec<String> {
    problems(&format!("{on}\n{JOB}"), Dialect::Github)
}

#[test]
fn github_checks_event_names_filters_types_and_crons() {
    let p = github("on: [push, pull_request_sync]");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains("w.yml:1:12: Unexpected value 'pull_request_sync'"),
        "{p:?}"
    );
    assert!(p[0].contains("is a Gitea and Forgejo event"), "{p:?}");
    let p = github("on:\n  push:\n    branch: main");
    assert!(p[0].contains("3:5: Unexpected value 'branch'"), "{p:?}");
    assert!(p[0].contains("Did you mean 'branches'?"), "{p:?}");
    let p = github("on:\n  issues:\n    types: [opened, merged]");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("3:21: Unexpected value 'merged'"), "{p:?}");
    let p = github("on:\n  create:\n    branches: [x]");
    assert!(p[0].contains("A mapping was not expected"), "{p:?}");
    let p = github("on:\n  schedule:\n    - cron: '@daily'");
    assert!(p[0].contains("Invalid cron expression"), "{p:?}");
    assert!(
        p[0].contains("'@daily' is Gitea and Forgejo syntax"),
        "{p:?}"
    );
    assert!(github("on:\n  schedule:\n    - cron: '30 5 * * mon-fri'").is_empty());
    // repository_dispatch takes any types; workflow_dispatch keys GitHub's suite ignores.
    assert!(github("on:\n  repository_dispatch:\n    types: [deploy]").is_empty());
    assert!(github("on:\n  workflow_dispatch:\n    unknown: 1\n    inputs:\n      a:").is_empty());
}

#[test]
fn github_requires_on_and_the_forges_read_events_as_act_does() {
    let p = problems(JOB, Dialect::Github);
    assert!(p[0].contains("Required property is missing: on"), "{p:?}");
    for dialect in [Dialect::Gitea, Dialect::Forgejo] {
        let text = format!("on:\n  pull_request_sync:\n  push:\n    branch: x\n{JOB}");
        assert_eq!(problems(&text, dialect), Vec::<String>::new(), "{dialect}");
    }
}

#[test]
fn literal_expressions_expression_keys_and_whole_credentials_are_read_as_github_reads_them() {
    let text = "on: push\ndefaults:\n  run:\n    shell: ${{ 'sh {0}' }}\nenv:\n  ${{ github.event_name }}-x: ''\njobs:\n  a:\n    runs-on: x\n    container:\n      image: alpine\n      credentials: ${{ fromJSON(secrets.CREDS) }}\n    steps:\n      - run: echo\n";
    let w = load_as(text, "w.yml", Dialect::Github).unwrap();
    let shell = w.defaults.as_ref().and_then(|d| d.shell.as_ref()).unwrap();
    assert_eq!(shell.value, "sh {0}");
    let env = w.env.as_ref().unwrap();
    assert_eq!(env.entries[0].0.value, "${{ github.event_name }}-x");
    let credentials = w.jobs[0].container.as_ref().unwrap().credentials.as_ref();
    assert_eq!(
        credentials
            .and_then(|c| c.whole.as_ref())
            .map(|w| w.value.as_str()),
        Some("${{ fromJSON(secrets.CREDS) }}")
    );
    // A literal that is not a string is still an expression where none is allowed.
    let p = github("on: push\ndefaults:\n  run:\n    shell: ${{ 1 }}");
    assert!(
        p[0].contains("A template expression is not allowed"),
        "{p:?}"
    );
}

#[test]
fn each_forge_has_its_name_for_the_github_context() {
    let text =
        |ctx: &str| format!("on: push\n{JOB}        env:\n          R: ${{{{ {ctx}.ref }}}}\n");
    assert!(problems(&text("gitea"), Dialect::Gitea).is_empty());
    assert!(problems(&text("forge"), Dialect::Forgejo).is_empty());
    let p = problems(&text("gitea"), Dialect::Github);
    assert!(p[0].contains("Unrecognized named-value: 'gitea'"), "{p:?}");
    assert!(!problems(&text("forge"), Dialect::Gitea).is_empty());
    // The folder picks the dialect.
    assert!(load(&text("gitea"), ".gitea/workflows/ci.yml").is_ok());
    assert!(load(&text("gitea"), ".github/workflows/ci.yml").is_err());
}
