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
