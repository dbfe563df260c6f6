//! act's flags of `exec` that act users carry over unchanged: `-a/--actor`,
//! `--remote-name`, `--defaultbranch`, `ACT=true`, the event choice (`--detect-event`, the
//! positional event, the only event), `-g/--graph`, `-q/--quiet`, `-v/--verbose`, and
//! the `.actrc` files.

use super::*;

/// What a step sees of who and where the run is.
const WHO: &str = r#"on: [push, workflow_dispatch]
jobs:
  who:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo "actor=${{ github.actor }} env=$GITHUB_ACTOR triggering=${{ github.triggering_actor }}"
          echo "repo=${{ github.repository }} owner=${{ github.repository_owner }} server=${{ github.server_url }}"
          echo "default-branch=${{ github.event.repository.default_branch }} act=$ACT"
"#;

/// act's defaults (actor `nektos/act`, remote `origin`, default branch `master`,
/// `ACT=true`), each flag over them, and a payload's own default branch kept.
#[test]
fn actor_remote_name_default_branch_and_act_env_as_act_sets_them() {
    let repo = Repo::with(WHO);
    git(
        repo.path(),
        &[
            "remote",
            "add",
            "origin",
            "https://github.com/one/first.git",
        ],
    );
    git(
        repo.path(),
        &[
            "remote",
            "add",
            "upstream",
            "git@forge.example:two/second.git",
        ],
    );
    let run = repo.json(&[]);
    run.assert_code(0);
    assert_eq!(
        run.output("who"),
        lines(&[
            "actor=nektos/act env=nektos/act triggering=nektos/act",
            "repo=one/first owner=one server=https://github.com",
            "default-branch=master act=true",
        ]),
        "{}",
        run.all()
    );
    let run = repo.json(&[
        "-a",
        "ada",
        "--remote-name",
        "upstream",
        "--defaultbranch",
        "trunk",
    ]);
    run.assert_code(0);
    assert_eq!(
        run.output("who"),
        lines(&[
            "actor=ada env=ada triggering=ada",
            "repo=two/second owner=two server=https://forge.example",
            "default-branch=trunk act=true",
        ]),
        "{}",
        run.all()
    );
    // A payload that names its default branch keeps it; `--actor` long form.
    repo.write(
        "event.json",
        r#"{"repository": {"default_branch": "develop", "name": "second"}}"#,
    );
    let run = repo.json(&[
        "--actor",
        "grace",
        "-e",
        "event.json",
        "--defaultbranch",
        "trunk",
    ]);
    run.assert_code(0);
    assert_eq!(
        run.output("who")[2],
        "default-branch=develop act=true",
        "{}",
        run.all()
    );
    assert!(
        run.output("who")[0].starts_with("actor=grace "),
        "{}",
        run.all()
    );
}

/// Each workflow says which event ran it.
fn event_repo(workflows: &[(&str, &str)]) -> Repo {
    let repo = Repo::new();
    for (file, on) in workflows {
        repo.write(
            &format!(".github/workflows/{file}"),
            &format!(
                "on: {on}\njobs:\n  {job}:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo \"event=${{{{ github.event_name }}}}\"\n",
                job = file.trim_end_matches(".yml")
            ),
        );
    }
    repo
}

/// Without `-E`: the workflows' only event, else `push`, else with `--detect-event` the
/// first event by name (act's order); `exec EVENT` as act takes it.
#[test]
fn the_event_is_chosen_as_act_chooses_it() {
    let repo = event_repo(&[
        ("both.yml", "[push, pull_request]"),
        ("manual.yml", "workflow_dispatch"),
    ]);
    let run = repo.json(&[]);
    run.assert_code(0);
    assert_eq!(run.jobs(), lines(&["both=success"]), "{}", run.all());
    assert_eq!(run.output("both"), lines(&["event=push"]));
    let run = repo.json(&["--detect-event"]);
    run.assert_code(0);
    assert_eq!(
        run.output("both"),
        lines(&["event=pull_request"]),
        "{}",
        run.all()
    );
    let run = repo.json(&["workflow_dispatch"]);
    run.assert_code(0);
    assert_eq!(run.jobs(), lines(&["manual=success"]), "{}", run.all());
    // -v says why.
    let run = repo.exec(&["-v", "--detect-event", "-l"]);
    run.assert_code(0);
    assert!(
        run.stderr.contains(
            "event `pull_request`: --detect-event: the first of the workflows' events by name"
        ),
        "{}",
        run.all()
    );
    // A positional event and -E together are refused.
    repo.exec(&["-E", "push", "pull_request"]).assert_code(2);
    // Workflows with one event between them: that event, no flag needed.
    let repo = event_repo(&[("manual.yml", "workflow_dispatch")]);
    let run = repo.json(&[]);
    run.assert_code(0);
    assert_eq!(
        run.output("manual"),
        lines(&["event=workflow_dispatch"]),
        "{}",
        run.all()
    );
}

/// `-g` draws the stages as act does and runs nothing; `-g --json` is the plan.
#[test]
fn graph_draws_stages_and_runs_nothing() {
    let repo = Repo::with(
        "name: CI
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: touch built.txt
  lint:
    name: Lint it
    runs-on: ubuntu-latest
    steps:
      - run: 'true'
  deploy:
    needs: [build, lint]
    runs-on: ubuntu-latest
    steps:
      - run: 'true'
",
    );
    let run = repo.exec(&["-g"]);
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "CI (.github/workflows/ci.yml)
 ╭───────╮ ╭─────────╮
 │ build │ │ Lint it │
 ╰───────╯ ╰─────────╯
          ⬇
      ╭────────╮
      │ deploy │
      ╰────────╯
",
        "{}",
        run.all()
    );
    assert!(!repo.path().join("built.txt").exists());
    let run = repo.exec(&["--graph", "--json"]);
    run.assert_code(0);
    let plan: Value = serde_json::from_str(&run.stdout).unwrap();
    let stage = |n: usize| -> Vec<String> {
        plan["workflows"][0]["stages"][n]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(stage(0), lines(&["build", "lint"]));
    assert_eq!(stage(1), lines(&["deploy"]));
    assert!(!repo.path().join("built.txt").exists());
}

const TALK: &str = r#"on: push
jobs:
  talk:
    runs-on: ubuntu-latest
    steps:
      - name: Talk
        run: |
          echo "said-on-stdout"
          echo "said-on-stderr" >&2
          echo "::debug::a-debug-line"
          echo "runner-debug=${RUNNER_DEBUG:-unset}"
"#;

/// `-q` leaves out what steps print (not the steps); `-v` shows `::debug::` lines without
/// turning on step debugging; both together show everything, as act logs it at debug level.
#[test]
fn quiet_leaves_out_step_output_and_verbose_shows_debug_lines() {
    let repo = Repo::with(TALK);
    let plain = repo.exec(&[]);
    plain.assert_code(0);
    assert!(plain.stdout.contains("said-on-stdout"), "{}", plain.all());
    assert!(!plain.stdout.contains("a-debug-line"), "{}", plain.all());
    let quiet = repo.exec(&["-q"]);
    quiet.assert_code(0);
    for gone in ["said-on-stdout", "said-on-stderr", "runner-debug"] {
        assert!(!quiet.stdout.contains(gone), "{gone}: {}", quiet.all());
    }
    assert!(quiet.stdout.contains("Talk"), "{}", quiet.all());
    let json = repo.json(&["--quiet"]);
    json.assert_code(0);
    assert!(json.output("talk").is_empty(), "{}", json.all());
    assert_eq!(json.steps("talk"), lines(&["__run:success/success"]));
    let verbose = repo.exec(&["-v"]);
    verbose.assert_code(0);
    assert!(
        verbose.stdout.contains("debug: a-debug-line"),
        "{}",
        verbose.all()
    );
    assert!(
        verbose.stdout.contains("runner-debug=unset"),
        "{}",
        verbose.all()
    );
    let both = repo.exec(&["-q", "--verbose"]);
    both.assert_code(0);
    assert!(both.stdout.contains("said-on-stdout"), "{}", both.all());
}

/// act's `.actrc` files: the XDG one, the home folder's, the repository's, then the
/// command line, each later one winning for a single value and adding up for repeatable
/// flags; `$VARS` expanded; act-only flags and `-P LABEL=IMAGE` left out with a warning.
#[test]
fn actrc_files_are_read_in_acts_order_under_the_command_line() {
    let repo = Repo::with(
        r#"on: push
jobs:
  conf:
    runs-on: ubuntu-latest
    steps:
      - run: echo "actor=${{ github.actor }} xdg=$FROM_XDG home=$FROM_HOME colour=${{ vars.COLOUR }}"
"#,
    );
    let home = tempfile::tempdir().unwrap();
    let xdg = home.path().join("config");
    std::fs::create_dir_all(xdg.join("act")).unwrap();
    std::fs::write(
        xdg.join("act/actrc"),
        "--actor from-xdg\n--env FROM_XDG=x\n--container-architecture linux/amd64\n",
    )
    .unwrap();
    std::fs::write(
        home.path().join(".actrc"),
        "# act's survey writes these\n-P ubuntu-latest=catthehacker/ubuntu:act-latest\n\
         --actor=from-home\n--env FROM_HOME=${HOME_VALUE}\n",
    )
    .unwrap();
    repo.write(".actrc", "-a from-repo\n--var COLOUR=red\n");
    let env = [
        ("HOME", home.path().to_str().unwrap()),
        ("XDG_CONFIG_HOME", xdg.to_str().unwrap()),
        ("HOME_VALUE", "h"),
    ];
    let run = repo.exec_with(&["--json", "-v"], &env);
    run.assert_code(0);
    assert_eq!(
        run.output("conf"),
        lines(&["actor=from-repo xdg=x home=h colour=red"]),
        "{}",
        run.all()
    );
    assert!(
        run.stderr
            .contains("actrc: `--container-architecture` is not a flag of `hybrid-runner exec`"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains(
            "`-P ubuntu-latest=catthehacker/ubuntu:act-latest` names a container image; `exec` runs `ubuntu-latest` jobs on this host"
        ),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains(&format!(
            "flags from {}: --actor=from-home --env FROM_HOME=h",
            home.path().join(".actrc").display()
        )),
        "{}",
        run.all()
    );
    // The command line wins.
    let run = repo.exec_with(
        &["--json", "--actor", "from-cli", "--var", "COLOUR=blue"],
        &env,
    );
    run.assert_code(0);
    assert_eq!(
        run.output("conf"),
        lines(&["actor=from-cli xdg=x home=h colour=blue"]),
        "{}",
        run.all()
    );
}

/// `--use-gitignore` (act's default): a job pod's copy of the repository leaves out what
/// git ignores, tracked files always go; `--use-gitignore=false` copies everything.
#[test]
fn use_gitignore_leaves_ignored_files_out_of_a_job_pods_copy() {
    if !harness::fake_kube::sandbox_available() {
        return;
    }
    let fake = harness::fake_kube::FakeKube::start(harness::fake_kube::FakeKubeOptions::default());
    let repo = Repo::with(
        r#"on: push
jobs:
  in-pod:
    runs-on: ubuntu-latest
    container:
      image: alpine:3
    steps:
      - run: echo "notes=$(cat notes.txt) tracked=$(cat tracked.log) log=$(cat build.log 2>/dev/null || echo none) target=$(ls target 2>/dev/null || echo none)"
"#,
    );
    repo.write(".gitignore", "*.log\ntarget/\n");
    repo.write("notes.txt", "kept");
    repo.write("tracked.log", "forced");
    repo.write("build.log", "ignored");
    repo.write("target/out", "x");
    git(repo.path(), &["add", "-f", "tracked.log"]);
    let kubeconfig = fake.write_kubeconfig(repo.path());
    let kubeconfig = kubeconfig.to_str().unwrap();
    let run = repo.json(&["--kubeconfig", kubeconfig]);
    run.assert_code(0);
    assert_eq!(
        run.output("in-pod"),
        lines(&["notes=kept tracked=forced log=none target=none"]),
        "{}",
        run.all()
    );
    assert!(
        run.notes("in-pod")
            .iter()
            .any(|n| n.ends_with("bytes, 2 paths git ignores left out)")),
        "{}",
        run.all()
    );
    let run = repo.json(&["--kubeconfig", kubeconfig, "--use-gitignore=false"]);
    run.assert_code(0);
    assert_eq!(
        run.output("in-pod"),
        lines(&["notes=kept tracked=forced log=ignored target=out"]),
        "{}",
        run.all()
    );
    // The repository is as it was.
    assert_eq!(
        std::fs::read_to_string(repo.path().join("build.log")).unwrap(),
        "ignored"
    );
}

/// A container job's image build runs on the runner from the pod's workspace, copied over
/// the repository: what only the repository has (what git ignores, never copied into the
/// pod) stays, the repository is not emptied first.
#[test]
fn a_container_jobs_build_leaves_ignored_files_in_the_repository() {
    if !harness::fake_kube::sandbox_available() {
        return;
    }
    let fake = harness::fake_kube::FakeKube::start(harness::fake_kube::FakeKubeOptions::default());
    let repo = Repo::with(
        r#"on: push
jobs:
  in-pod:
    runs-on: ubuntu-latest
    container:
      image: alpine:3
    steps:
      - run: |
          printf 'FROM scratch\nCOPY hello.txt /hello.txt\n' > Dockerfile
          echo "made in the pod" > hello.txt
      - uses: hybrid-runner/build@v1
        with:
          image: 127.0.0.1:9/unreachable
          variants: docker
"#,
    );
    repo.write(".gitignore", "*.log\n");
    repo.write("build.log", "only here");
    let kubeconfig = fake.write_kubeconfig(repo.path());
    let run = repo.json(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--builder",
        "kaniko",
    ]);
    assert!(
        run.notes("in-pod")
            .iter()
            .any(|n| n.starts_with("Copied the job pod's workspace /__w/")),
        "{}",
        run.all()
    );
    assert_eq!(
        std::fs::read_to_string(repo.path().join("build.log")).unwrap(),
        "only here",
        "{}",
        run.all()
    );
    assert_eq!(
        std::fs::read_to_string(repo.path().join("hello.txt")).unwrap(),
        "made in the pod\n"
    );
}
