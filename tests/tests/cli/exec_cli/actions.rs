//! Actions: composite (nested), JavaScript with pre/main/post, remote via the cache and `--offline`, Docker refusal, checkout.

use super::*;

#[test]
fn local_composite_actions_nest_with_inputs_outputs_and_action_path() {
    let repo = Repo::with(
        "on: push
jobs:
  c:
    runs-on: ubuntu-latest
    steps:
      - id: outer
        uses: ./.github/actions/outer
        with:
          who: world
      - run: echo \"result=${{ steps.outer.outputs.message }}\"
",
    );
    repo.write(
        ".github/actions/outer/action.yml",
        "name: outer
inputs:
  who:
    description: who to greet
    required: true
  greeting:
    description: how
    default: hello
outputs:
  message:
    description: the inner action's answer
    value: ${{ steps.inner.outputs.text }}
runs:
  using: composite
  steps:
    - run: echo \"outer path=${GITHUB_ACTION_PATH#$GITHUB_WORKSPACE/} ctx=${{ github.action_path == format('{0}/./.github/actions/outer', github.workspace) }}\"
      shell: bash
    - id: inner
      uses: ./.github/actions/inner
      with:
        text: ${{ inputs.greeting }} ${{ inputs.who }}
    - run: echo \"inner said ${{ steps.inner.outputs.text }}\"
      shell: bash
",
    );
    repo.write(
        ".github/actions/inner/action.yml",
        "name: inner
inputs:
  text:
    description: text
outputs:
  text:
    description: upper-cased
    value: ${{ steps.up.outputs.v }}
runs:
  using: composite
  steps:
    - id: up
      run: echo \"v=$(echo '${{ inputs.text }}' | tr a-z A-Z)\" >> \"$GITHUB_OUTPUT\"
      shell: bash
    - run: cat \"${{ github.action_path }}/data.txt\"
      shell: bash
",
    );
    repo.write(".github/actions/inner/data.txt", "inner data\n");
    let run = repo.json(&[]);
    run.assert_code(0);
    assert_eq!(
        run.output("c"),
        lines(&[
            // Joined as written, like GitHub's runner does (`.../repo/./.github/...`).
            "outer path=./.github/actions/outer ctx=true",
            "inner data",
            "inner said HELLO WORLD",
            "result=HELLO WORLD",
        ]),
        "{}",
        run.all()
    );
}

const NODE_ACTION: &str = "name: node action
inputs:
  name:
    description: who
    required: true
outputs:
  greeting:
    description: hi
runs:
  using: node20
  pre: pre.js
  main: main.js
  post: post.js
";
const PRE_JS: &str = "const fs = require('fs');
console.log('pre name=' + process.env.INPUT_NAME);
fs.appendFileSync(process.env.GITHUB_STATE, 'from_pre=p\\n');
";
const MAIN_JS: &str = "const fs = require('fs');
const name = process.env.INPUT_NAME;
console.log('main name=' + name + ' pre-state=' + (process.env.STATE_from_pre || ''));
fs.appendFileSync(process.env.GITHUB_OUTPUT, 'greeting=hi ' + name + '\\n');
fs.appendFileSync(process.env.GITHUB_STATE, 'x=saved-' + name + '\\n');
";
const POST_JS: &str =
    "console.log('post STATE_x=' + process.env.STATE_x + ' name=' + process.env.INPUT_NAME);
";

fn write_node_action(dir: &Path) {
    for (name, text) in [
        ("action.yml", NODE_ACTION),
        ("pre.js", PRE_JS),
        ("main.js", MAIN_JS),
        ("post.js", POST_JS),
    ] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }
}

const NODE_WORKFLOW: &str = "on: push
jobs:
  n:
    runs-on: ubuntu-latest
    steps:
      - run: echo first
      - id: node
        uses: USES
        with:
          name: octo
      - run: echo \"output=${{ steps.node.outputs.greeting }}\"
";

#[test]
fn local_node_action_runs_main_and_post_but_not_pre() {
    let repo = Repo::with(&NODE_WORKFLOW.replace("USES", "./.github/actions/node"));
    write_node_action(&repo.path().join(".github/actions/node"));
    let run = repo.json(&[]);
    run.assert_code(0);
    // GitHub runs no `pre` for a local action (its files are not there before the job's
    // steps run) and says so; `post` runs after every main step with the saved state.
    assert_eq!(
        run.output("n"),
        lines(&[
            "first",
            "main name=octo pre-state=",
            "output=hi octo",
            "post STATE_x=saved-octo name=octo",
        ]),
        "{}",
        run.all()
    );
    assert!(
        run.annotations("n").contains(
            &"warning: `pre` execution is not supported for local action from './.github/actions/node'"
                .to_string()
        ),
        "{}",
        run.all()
    );
    let steps = run.steps("n");
    assert_eq!(steps.len(), 4, "{steps:?}");
    assert_eq!(steps[3], "node:success/success");
}

/// A bare repository `owner/repo` under `root`, holding `files` at tag `v1`.
pub(crate) fn bare_action_repo(root: &Path, owner: &str, repo: &str, files: &[(&str, &str)]) {
    let work = tempfile::tempdir().unwrap();
    git(work.path(), &["init", "-q", "-b", "main"]);
    for (path, text) in files {
        let p = work.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    git(work.path(), &["add", "."]);
    git(
        work.path(),
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "-m",
            "action",
        ],
    );
    git(work.path(), &["tag", "v1"]);
    let bare = root.join(owner).join(repo);
    std::fs::create_dir_all(&bare).unwrap();
    git(&bare, &["init", "-q", "--bare"]);
    git(
        work.path(),
        &["push", "-q", bare.to_str().unwrap(), "main", "v1"],
    );
}

#[test]
fn remote_actions_are_fetched_cached_and_used_offline() {
    let remotes = tempfile::tempdir().unwrap();
    let node_dir = tempfile::tempdir().unwrap();
    write_node_action(node_dir.path());
    let read = |n: &str| std::fs::read_to_string(node_dir.path().join(n)).unwrap();
    let (action, pre, main, post) = (
        read("action.yml"),
        read("pre.js"),
        read("main.js"),
        read("post.js"),
    );
    bare_action_repo(
        remotes.path(),
        "acme",
        "greet",
        &[
            (
                "action.yml",
                "name: greet
inputs:
  who:
    description: who
outputs:
  said:
    description: what was said
    value: ${{ steps.say.outputs.said }}
runs:
  using: composite
  steps:
    - id: say
      run: |
        echo \"remote hello ${{ inputs.who }}\"
        echo \"said=hello ${{ inputs.who }}\" >> \"$GITHUB_OUTPUT\"
      shell: bash
",
            ),
            ("node/action.yml", &action),
            ("node/pre.js", &pre),
            ("node/main.js", &main),
            ("node/post.js", &post),
        ],
    );
    let repo = Repo::with(
        "on: push
jobs:
  r:
    runs-on: ubuntu-latest
    steps:
      - run: echo first
      - id: greet
        uses: acme/greet@v1
        with:
          who: remote
      - run: echo \"said=${{ steps.greet.outputs.said }}\"
      - id: node
        uses: acme/greet/node@v1
        with:
          name: far
      - run: echo \"output=${{ steps.node.outputs.greeting }}\"
",
    );
    let cache = tempfile::tempdir().unwrap();
    let url = format!("file://{}", remotes.path().display());
    let cache_dir = cache.path().display().to_string();
    let expected = lines(&[
        // A repository action's `pre` runs when the job starts, before any main step.
        "pre name=far",
        "first",
        "remote hello remote",
        "said=hello remote",
        "main name=far pre-state=p",
        "output=hi far",
        "post STATE_x=saved-far name=far",
    ]);
    let online = repo.json(&["--default-actions-url", &url, "--action-cache", &cache_dir]);
    online.assert_code(0);
    assert_eq!(online.output("r"), expected, "{}", online.all());

    // The cache now serves the same run without the remote.
    let moved = remotes.path().with_extension("gone");
    std::fs::rename(remotes.path(), &moved).unwrap();
    let offline = repo.json(&[
        "--default-actions-url",
        &url,
        "--action-cache",
        &cache_dir,
        "--offline",
    ]);
    std::fs::rename(&moved, remotes.path()).unwrap();
    offline.assert_code(0);
    assert_eq!(offline.output("r"), expected, "{}", offline.all());

    // Offline with an empty cache: the step fails and says how to fill the cache.
    let empty = tempfile::tempdir().unwrap();
    let run = repo.json(&[
        "--default-actions-url",
        &url,
        "--action-cache",
        empty.path().to_str().unwrap(),
        "--offline",
    ]);
    run.assert_code(1);
    assert_eq!(run.job("r").as_deref(), Some("failure"));
    let errors = run.annotations("r").join("\n") + &run.notes("r").join("\n");
    assert!(
        errors.contains("acme/greet@v1 is not in the action cache")
            && errors.contains("without --offline"),
        "{}",
        run.all()
    );
}

#[test]
fn docker_actions_fail_clearly_and_checkout_is_a_no_op() {
    let repo = Repo::with(
        "on: push
jobs:
  d:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: In a container
        id: docker
        uses: docker://alpine:3.20
      - if: always()
        run: echo after
",
    );
    let run = repo.json(&[
        "--action-cache",
        repo.path().join(".cache").to_str().unwrap(),
    ]);
    run.assert_code(1);
    assert_eq!(
        run.steps("d"),
        lines(&[
            "__actions_checkout:success/success",
            "docker:failure/failure",
            "__run:success/success",
        ])
    );
    let errors = run.annotations("d");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("job 'd'")
            && errors[0].contains("step 'In a container'")
            && errors[0].contains("Docker actions run as containers in a pod, and this runner has no Kubernetes cluster")
            && errors[0].contains("`hybrid-runner exec` with --kubeconfig FILE"),
        "{errors:?}"
    );
    // Nothing was fetched for checkout.
    assert!(!repo.path().join(".cache").exists());
}

#[test]
fn symbolic_links_cannot_carry_a_local_action_or_a_called_workflow_out_of_the_repository() {
    let outside = tempfile::tempdir().unwrap();
    let credential = "https://user:ghp_outside_secret@example.com";
    std::fs::write(
        outside.path().join("credentials"),
        format!("{credential}\n"),
    )
    .unwrap();
    std::fs::create_dir(outside.path().join("action")).unwrap();
    std::fs::write(
        outside.path().join("action/action.yml"),
        format!("name: {credential}\nruns: [\n"),
    )
    .unwrap();
    let repo = Repo::with(
        "on: push
jobs:
  file:
    runs-on: ubuntu-latest
    steps:
      - uses: ./.github/actions/file
  folder:
    runs-on: ubuntu-latest
    steps:
      - uses: ./.github/actions/folder
  call:
    uses: ./.github/workflows/called.yml
",
    );
    std::fs::create_dir_all(repo.path().join(".github/actions/file")).unwrap();
    let link =
        |target: &Path, at: &str| std::os::unix::fs::symlink(target, repo.path().join(at)).unwrap();
    link(
        &outside.path().join("credentials"),
        ".github/actions/file/action.yml",
    );
    link(&outside.path().join("action"), ".github/actions/folder");
    link(
        &outside.path().join("credentials"),
        ".github/workflows/called.yml",
    );
    // Only ci.yml is run: the scan of the workflow folder refuses the link by itself.
    let run = repo.json(&["-W", ".github/workflows/ci.yml"]);
    assert!(!run.all().contains("ghp_outside_secret"), "{}", run.all());
    run.assert_code(1);
    for job in ["file", "folder", "call"] {
        assert_eq!(
            run.job(job).as_deref(),
            Some("failure"),
            "{job}: {}",
            run.all()
        );
    }
    for leak in [
        ".github/actions/file/action.yml leads out of",
        ".github/actions/folder leads out of",
        ".github/workflows/called.yml leads out of",
    ] {
        assert!(run.all().contains(leak), "{leak}: {}", run.all());
    }
}
