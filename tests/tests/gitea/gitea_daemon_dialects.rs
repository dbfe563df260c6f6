//! The real `hybrid-runner daemon` reads each task's workflow by its server's rules: it asks
//! the fake's `GET /api/v1/version` once, and a Forgejo (`11.0.1+gitea-1.22.0`) task may use
//! `forge.*`, `enable-email-notifications` and `secrets` in a job's `if:`, which a Gitea
//! (`1.24.0`) task may not; Gitea's `gitea.*` works on Gitea.

use harness::daemon_checks::{describe_task, wait_finished};
use harness::daemon_process::{DaemonOptions, RunnerHome};
use harness::fake_gitea::{FakeGitea, FakeGiteaOptions, pb};

const FORGEJO: &str = "name: ci\non: push\nenable-email-notifications: true\njobs:\n  test:\n    runs-on: ubuntu-latest\n    if: secrets.NOPE == ''\n    steps:\n      - run: echo \"ref-from-forge=${{ forge.ref }}\"\n";
const GITEA: &str = "name: ci\non: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo \"ref-from-gitea=${{ gitea.ref }}\"\n";

fn run(options: FakeGiteaOptions, payload: &str) -> (pb::Result, String) {
    let fake = FakeGitea::start(options);
    let home = RunnerHome::register(&fake, "ubuntu-latest:host", "");
    let id = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], payload));
    let daemon = home.start(&DaemonOptions::default());
    let task = wait_finished(&fake, &daemon, id);
    let all = describe_task(&task, &daemon);
    (task.result().unwrap_or(pb::Result::Unspecified), all)
}

#[test]
fn a_forgejo_task_is_read_by_forgejos_rules_and_a_gitea_task_by_giteas() {
    let (result, all) = run(FakeGiteaOptions::forgejo(), FORGEJO);
    assert_eq!(result, pb::Result::Success, "{all}");
    assert!(all.contains("ref-from-forge=refs/heads/"), "{all}");

    // The same workflow on Gitea: `forge` is not Gitea's name, and the task fails before
    // its first step, naming the problem and whose syntax it is.
    let (result, all) = run(FakeGiteaOptions::default(), FORGEJO);
    assert_eq!(result, pb::Result::Failure, "{all}");
    assert!(all.contains("Unrecognized named-value: 'forge'"), "{all}");
    assert!(
        all.contains("Forgejo's name for the github context"),
        "{all}"
    );

    let (result, all) = run(FakeGiteaOptions::default(), GITEA);
    assert_eq!(result, pb::Result::Success, "{all}");
    assert!(all.contains("ref-from-gitea=refs/heads/"), "{all}");
}
