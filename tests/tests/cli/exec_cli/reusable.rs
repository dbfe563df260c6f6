//! Reusable workflows: inputs, `secrets: inherit`, outputs.

use super::*;

#[test]
fn local_reusable_workflow_with_inputs_inherited_secrets_and_outputs() {
    let repo = Repo::with(
        "on: push
jobs:
  call:
    uses: ./.github/workflows/called.yml
    with:
      name: caller
    secrets: inherit
  bare:
    uses: ./.github/workflows/called.yml
    with:
      name: bare
      count: 5
  after:
    needs: [call, bare]
    runs-on: ubuntu-latest
    steps:
      - run: echo \"got=${{ needs.call.outputs.greeting }} bare=${{ needs.bare.outputs.greeting }} result=${{ needs.call.result }}\"
",
    );
    repo.write(
        ".github/workflows/called.yml",
        "on:
  workflow_call:
    inputs:
      name:
        type: string
        required: true
      count:
        type: number
        default: 2
    secrets:
      TOKEN:
        required: false
    outputs:
      greeting:
        value: ${{ jobs.inner.outputs.greeting }}
jobs:
  inner:
    runs-on: ubuntu-latest
    outputs:
      greeting: ${{ steps.g.outputs.greeting }}
    steps:
      - id: g
        env:
          TOKEN: ${{ secrets.TOKEN }}
        run: |
          echo \"name=${{ inputs.name }} count=${{ inputs.count }} token=$TOKEN len=${#TOKEN}\"
          echo \"greeting=hello ${{ inputs.name }}\" >> \"$GITHUB_OUTPUT\"
",
    );
    let run = repo.json(&["-s", "TOKEN=abcdefgh"]);
    run.assert_code(0);
    assert_eq!(
        run.output("call/inner"),
        lines(&["name=caller count=2 token=*** len=8"]),
        "{}",
        run.all()
    );
    assert_eq!(
        run.output("bare/inner"),
        lines(&["name=bare count=5 token= len=0"])
    );
    assert_eq!(
        run.output("after"),
        lines(&["got=hello caller bare=hello bare result=success"])
    );
    let finished: Vec<String> = run
        .events_of("job_finished")
        .iter()
        .map(|e| e["job"]["id"].as_str().unwrap().to_string())
        .collect();
    for id in ["call/inner", "call", "bare/inner", "bare", "after"] {
        assert!(finished.contains(&id.to_string()), "{id}: {finished:?}");
    }
}

#[test]
fn remote_reusable_workflow_is_fetched_then_runs_offline_from_the_cache() {
    let remotes = tempfile::tempdir().unwrap();
    super::actions::bare_action_repo(
        remotes.path(),
        "acme",
        "pipelines",
        &[(
            ".github/workflows/build.yml",
            "on:
  workflow_call:
    inputs:
      target:
        type: string
        required: true
    outputs:
      built:
        value: ${{ jobs.compile.outputs.artifact }}
jobs:
  compile:
    runs-on: ubuntu-latest
    outputs:
      artifact: ${{ steps.c.outputs.artifact }}
    steps:
      - id: c
        run: |
          echo \"compiling ${{ inputs.target }}\"
          echo \"artifact=app-${{ inputs.target }}.tar\" >> \"$GITHUB_OUTPUT\"
",
        )],
    );
    let repo = Repo::with(
        "on: push
jobs:
  call:
    uses: acme/pipelines/.github/workflows/build.yml@v1
    with:
      target: arm64
  after:
    needs: call
    runs-on: ubuntu-latest
    steps:
      - run: echo \"got ${{ needs.call.outputs.built }}\"
",
    );
    let cache = tempfile::tempdir().unwrap();
    let url = format!("file://{}", remotes.path().display());
    let cache_dir = cache.path().display().to_string();
    let args = [
        "--default-actions-url",
        url.as_str(),
        "--action-cache",
        cache_dir.as_str(),
    ];
    let run = repo.exec(&args);
    run.assert_code(0);
    assert!(run.stdout.contains("compiling arm64"), "{}", run.all());
    assert!(run.stdout.contains("got app-arm64.tar"), "{}", run.all());
    // The remote is gone: the cached commit still serves the call offline.
    std::fs::remove_dir_all(remotes.path().join("acme")).unwrap();
    let mut offline = args.to_vec();
    offline.push("--offline");
    let run = repo.exec(&offline);
    run.assert_code(0);
    assert!(run.stdout.contains("got app-arm64.tar"), "{}", run.all());
}

/// GitHub's self-repository references (`$/`, changelog 2026-07-30): a step's action and a
/// job's called workflow from the repository being run, with no checkout.
#[test]
fn self_repository_references_run_from_the_repository() {
    let repo = Repo::with(
        "on: push\njobs:\n  steps:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: $/.github/actions/hello\n        with:\n          who: self\n  call:\n    uses: $/.github/workflows/called.yml\n",
    );
    repo.write(
        ".github/actions/hello/action.yml",
        "name: hello\ninputs:\n  who:\n    required: true\nruns:\n  using: composite\n  steps:\n    - run: echo \"hello from ${{ inputs.who }}\"\n      shell: bash\n",
    );
    repo.write(
        ".github/workflows/called.yml",
        "on: workflow_call\njobs:\n  inner:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo called-by-self-reference\n",
    );
    let run = repo.exec(&[]);
    run.assert_code(0);
    let out = run.all();
    assert!(out.contains("hello from self"), "{out}");
    assert!(out.contains("called-by-self-reference"), "{out}");
}
