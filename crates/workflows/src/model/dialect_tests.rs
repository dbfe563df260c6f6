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
    let p = problems(JOB, Dialect::Forgejo);
    assert!(p[0].contains("unexpected yaml node in `on`: 0"), "{p:?}");
    let p = problems(JOB, Dialect::Gitea);
    assert!(p[0].contains("Gitea never runs it"), "{p:?}");
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

#[test]
fn forge_keys_are_read_by_their_platform_and_named_when_github_refuses_them() {
    let service = "on: push\njobs:\n  a:\n    runs-on: x\n    services:\n      db:\n        image: postgres\n        cmd: [postgres, -c, fsync=off]\n    steps:\n      - run: echo\n";
    let w = load_as(service, "w.yml", Dialect::Forgejo).unwrap();
    let cmd: Vec<&str> = w.jobs[0].services[0]
        .1
        .cmd
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(cmd, ["postgres", "-c", "fsync=off"]);
    assert!(load_as(service, "w.yml", Dialect::Gitea).is_ok());
    let p = problems(service, Dialect::Github);
    assert!(p[0].contains("8:9: Unexpected value 'cmd'"), "{p:?}");
    assert!(p[0].contains("Gitea and Forgejo syntax"), "{p:?}");

    let email = format!("on: push\nenable-email-notifications: true\n{JOB}");
    let w = load_as(&email, "w.yml", Dialect::Forgejo).unwrap();
    assert_eq!(w.email_notifications, Some(true));
    assert!(load_as(&email, "w.yml", Dialect::Gitea).is_ok());
    let p = problems(&email, Dialect::Github);
    assert!(p[0].contains("is Forgejo syntax"), "{p:?}");

    // `secrets` in a step's `if:` on both forges, in a job's `if:` on Forgejo only.
    let step_if = format!("on: push\n{JOB}        if: secrets.TOKEN != ''\n");
    assert!(problems(&step_if, Dialect::Gitea).is_empty());
    assert!(problems(&step_if, Dialect::Forgejo).is_empty());
    assert!(!problems(&step_if, Dialect::Github).is_empty());
    let job_if = "on: push\njobs:\n  a:\n    if: secrets.TOKEN != ''\n    runs-on: x\n    steps:\n      - run: echo\n";
    assert!(problems(job_if, Dialect::Forgejo).is_empty());
    assert!(!problems(job_if, Dialect::Gitea).is_empty());
}

#[test]
fn cache_mode_and_self_repository_references() {
    let text = "on: push\ncache-mode: read\njobs:\n  a:\n    cache-mode: write-only\n    runs-on: x\n    steps:\n      - uses: $/.github/actions/build\n  b:\n    uses: $/.github/workflows/called.yml\n";
    let w = load_as(text, "w.yml", Dialect::Github).unwrap();
    assert_eq!(
        w.cache_mode.as_ref().map(|m| m.value),
        Some(CacheMode::Read)
    );
    assert_eq!(
        w.jobs[0].cache_mode.as_ref().map(|m| m.value),
        Some(CacheMode::WriteOnly)
    );
    let p = github("on: push\ncache-mode: writ");
    assert!(p[0].contains("2:13: Unexpected value 'writ'"), "{p:?}");
    assert!(p[0].contains("Did you mean 'write'?"), "{p:?}");
    let p = problems(
        "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: $/\n",
        Dialect::Github,
    );
    assert!(p[0].contains("Expected format"), "{p:?}");
}

#[test]
fn schedules_and_merge_keys_by_platform() {
    let schedule =
        |cron: &str, extra: &str| format!("on:\n  schedule:\n    - cron: '{cron}'\n{extra}{JOB}");
    assert!(problems(&schedule("@daily", ""), Dialect::Gitea).is_empty());
    assert!(problems(&schedule("TZ=Asia/Tokyo @every 2h", ""), Dialect::Forgejo).is_empty());
    let p = problems(&schedule("0 0 * * * *", ""), Dialect::Forgejo);
    assert!(p[0].contains("expected exactly 5 fields, found 6"), "{p:?}");
    let zone = schedule("0 3 * * *", "      timezone: Europe/Berlin\n");
    assert!(problems(&zone, Dialect::Github).is_empty());
    assert!(problems(&zone, Dialect::Gitea).is_empty());
    let p = problems(&zone, Dialect::Forgejo);
    assert!(
        p[0].contains("key \"schedule\"[0] had unexpected key \"timezone\"; \"cron\" was expected"),
        "{p:?}"
    );
    assert!(p[0].contains("'timezone:' is GitHub syntax"), "{p:?}");

    // YAML merge keys: GitHub's reader has no such thing, Go's YAML merges.
    let merge = "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - &s\n        run: echo one\n      - <<: *s\n        name: two\n";
    let p = problems(merge, Dialect::Github);
    assert!(p[0].contains("Unexpected value '<<'"), "{p:?}");
    let w = load_as(merge, "w.yml", Dialect::Forgejo).unwrap();
    assert_eq!(
        w.jobs[0].steps[1].run.as_ref().map(|r| r.value.as_str()),
        Some("echo one")
    );
}

#[test]
fn a_step_continue_on_error_expression_is_github_only() {
    let text =
        format!("on: push\n{JOB}        continue-on-error: ${{{{ matrix.experimental }}}}\n");
    assert!(problems(&text, Dialect::Github).is_empty());
    let p = problems(&text, Dialect::Gitea);
    assert!(p[0].contains("must be true or false here"), "{p:?}");
    let plain = format!("on: push\n{JOB}        continue-on-error: true\n");
    assert!(problems(&plain, Dialect::Forgejo).is_empty());
}

#[test]
fn what_gitea_and_forgejo_runners_take_that_github_refuses() {
    // A call job with `runs-on` (the runner that runs the call), by a full URL.
    let call = "on: push\njobs:\n  call:\n    runs-on: docker\n    uses: https://codeberg.org/o/r/.forgejo/workflows/x.yml@main\n";
    assert!(
        problems(call, Dialect::Forgejo).is_empty(),
        "{:?}",
        problems(call, Dialect::Forgejo)
    );
    assert!(problems(call, Dialect::Gitea).is_empty());
    assert!(!problems(call, Dialect::Github).is_empty());
    // A runner job with only runs-on and steps is still a runner job.
    assert!(problems(&format!("on: push\n{JOB}"), Dialect::Gitea).is_empty());
    // A job container without an image takes the label's image.
    let no_image = "on: push\njobs:\n  a:\n    runs-on: x\n    container:\n      volumes: [/srv/cache:/cache]\n    steps:\n      - run: echo\n";
    assert!(problems(no_image, Dialect::Gitea).is_empty());
    let p = problems(no_image, Dialect::Github);
    assert!(p[0].contains("Container image cannot be empty"), "{p:?}");
    // Duplicate step ids: the later step's results win.
    let twice = "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - id: up\n        run: echo 1\n      - id: up\n        run: echo 2\n";
    assert!(problems(twice, Dialect::Forgejo).is_empty());
    assert!(!problems(twice, Dialect::Github).is_empty());
    // A need of a job that does not exist is dropped.
    let needs = "on: push\njobs:\n  r:\n    runs-on: x\n    steps:\n      - run: echo\n  a:\n    needs: missing\n    runs-on: x\n    steps:\n      - run: echo\n  b:\n    needs: a\n    runs-on: x\n    steps:\n      - run: echo\n";
    let w = load_as(needs, "w.yml", Dialect::Gitea).unwrap();
    assert!(w.jobs[1].needs.is_empty());
    let p = problems(needs, Dialect::Github);
    assert!(p[0].contains("depends on unknown job 'missing'"), "{p:?}");
}

#[test]
fn forgejo_refuses_declared_secrets_of_a_called_workflow() {
    let text =
        format!("on:\n  workflow_call:\n    secrets:\n      TOKEN:\n        required: true\n{JOB}");
    assert!(problems(&text, Dialect::Github).is_empty());
    assert!(problems(&text, Dialect::Gitea).is_empty());
    let p = problems(&text, Dialect::Forgejo);
    assert!(p[0].contains("but key \"secrets\" was found"), "{p:?}");
}

#[test]
fn gitea_takes_ssh_actions_and_jobs_without_runs_on() {
    let text =
        "on: push\njobs:\n  a:\n    steps:\n      - uses: ssh://git@gitea.example:2222/o/act@v1\n";
    assert!(
        problems(text, Dialect::Gitea).is_empty(),
        "{:?}",
        problems(text, Dialect::Gitea)
    );
    let p = problems(text, Dialect::Forgejo);
    assert!(
        p.iter()
            .any(|p| p.contains("Required property is missing: runs-on")),
        "{p:?}"
    );
    assert!(p.iter().any(|p| p.contains("Expected format")), "{p:?}");
    assert_eq!(problems(text, Dialect::Github).len(), 2);
}

#[test]
fn forgejo_evaluates_expressions_in_a_steps_uses() {
    let text = "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: ${{ vars.ACTIONS }}/checkout@v4\n";
    assert!(
        problems(text, Dialect::Forgejo).is_empty(),
        "{:?}",
        problems(text, Dialect::Forgejo)
    );
    let p = problems(text, Dialect::Github);
    assert!(
        p[0].contains("A template expression is not allowed"),
        "{p:?}"
    );
    assert!(!problems(text, Dialect::Gitea).is_empty());
}
