//! Every family of loader problem carries a remedy: the closest key, context, function
//! or job id where one is close, otherwise what belongs there.

use super::*;

/// `(github_form, help)` of every problem in `text`.
fn problems(text: &str) -> Vec<(String, String)> {
    match load(text, "w.yml") {
        Ok(_) => panic!("expected diagnostics"),
        Err(d) => d
            .iter()
            .map(|d| (d.github_form(), d.help.clone().unwrap_or_default()))
            .collect(),
    }
}

/// The help of the only problem whose GitHub form ends with `message`.
fn help_for(text: &str, message: &str) -> String {
    let all = problems(text);
    let found: Vec<&(String, String)> = all.iter().filter(|(m, _)| m.ends_with(message)).collect();
    assert_eq!(found.len(), 1, "{message} in {all:?}");
    found[0].1.clone()
}

const JOB: &str = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n";

#[test]
fn every_problem_has_a_help() {
    let bad = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    stesp: []\n    timeout-minutes: abc\n    needs: biuld\n    steps:\n      - id: x\n        run: echo ${{ secret.a }}\n      - id: x\n        run: echo ${{ contain('a', 'b') }}\n  1bad:\n    runs-on: x\n    uses: o/r/.github/workflows/w.yml@v1\n    steps: []\n";
    let all = problems(bad);
    assert!(all.len() >= 7, "{all:?}");
    for (message, help) in &all {
        assert!(!help.is_empty(), "no help for {message}");
    }
}

#[test]
fn unknown_keys_suggest_the_closest_key_or_list_the_allowed_ones() {
    let text = format!("{JOB}    stesp: []\n");
    assert_eq!(
        help_for(&text, "Unexpected value 'stesp'"),
        "Did you mean 'steps'?"
    );
    let help = help_for(
        "on: push\njobs:\n  build:\n    runs-on: x\n    strategy:\n      zzzzzzzz: 1\n",
        "Unexpected value 'zzzzzzzz'",
    );
    assert_eq!(
        help,
        "Keys allowed here: 'fail-fast', 'max-parallel', 'matrix'."
    );
    let help = help_for(
        "on: push\nnmae: x\njobs:\n  b:\n    runs-on: x\n",
        "Unexpected value 'nmae'",
    );
    assert_eq!(help, "Did you mean 'name'?");
}

#[test]
fn wrong_values_say_what_is_expected() {
    let text = format!("{JOB}    timeout-minutes: abc\n");
    let help = help_for(&text, "Unexpected value 'abc'");
    assert!(help.contains("a number"), "{help}");
    let text = format!("{JOB}    continue-on-error: maybe\n");
    let help = help_for(&text, "Unexpected value 'maybe'");
    assert!(help.contains("true, false"), "{help}");
    let help = help_for(
        "on:\n  workflow_dispatch:\n    inputs:\n      a:\n        type: strnig\njobs:\n  b:\n    runs-on: x\n",
        "Unexpected value 'strnig'",
    );
    assert_eq!(help, "Did you mean 'string'?");
}

#[test]
fn unknown_named_values_and_functions_get_close_matches() {
    let text = format!("{JOB}    steps:\n      - run: echo ${{{{ secret.token }}}}\n");
    let help = help_for(&text, "within expression: secret.token");
    assert!(help.starts_with("Did you mean 'secrets'?"), "{help}");
    assert!(help.contains("'github'"), "{help}");
    let text = format!("{JOB}    steps:\n      - run: echo ${{{{ contain('a', 'b') }}}}\n");
    let help = help_for(&text, "within expression: contain('a', 'b')");
    assert!(help.starts_with("Did you mean 'contains'?"), "{help}");
    let text = format!("{JOB}    env:\n      A: ${{{{ steps.x.outputs.y }}}}\n");
    let help = help_for(&text, "within expression: steps.x.outputs.y");
    assert!(
        help.starts_with("The 'steps' context is not available"),
        "{help}"
    );
}

#[test]
fn duplicate_and_invalid_ids_say_how_to_rename() {
    let text =
        format!("{JOB}    steps:\n      - id: x\n        run: a\n      - id: X\n        run: b\n");
    let help = help_for(
        &text,
        "may not be used more than once within the same scope.",
    );
    assert!(
        help.starts_with("Rename one of the steps with id 'X'"),
        "{help}"
    );
    let help = help_for(
        "on: push\njobs:\n  1build:\n    runs-on: x\n",
        "The identifier '1build' is invalid. IDs may only contain alphanumeric characters, '_', and '-'. IDs must start with a letter or '_' and and must be less than 100 characters.",
    );
    assert!(help.contains("start with a letter or '_'"), "{help}");
}

#[test]
fn needs_problems_name_the_jobs() {
    let text =
        "on: push\njobs:\n  build:\n    runs-on: x\n  test:\n    needs: biuld\n    runs-on: x\n";
    let help = help_for(text, "Job 'test' depends on unknown job 'biuld'.");
    assert_eq!(help, "Did you mean 'build'? The jobs are: 'build', 'test'.");
    let text =
        "on: push\njobs:\n  build:\n    runs-on: x\n  test:\n    needs: qqqqqq\n    runs-on: x\n";
    let help = help_for(text, "Job 'test' depends on unknown job 'qqqqqq'.");
    assert_eq!(
        help,
        "'needs' takes the ids of jobs in this workflow: 'build', 'test'."
    );
    let text = "on: push\njobs:\n  a:\n    runs-on: x\n  b:\n    needs: c\n    runs-on: x\n  c:\n    needs: b\n    runs-on: x\n";
    let all = problems(text);
    assert!(!all.is_empty());
    for (message, help) in all {
        assert!(message.contains("creates a cycle"), "{message}");
        assert!(help.contains("remove"), "{help}");
    }
}

#[test]
fn runs_on_with_uses_says_to_pick_one() {
    let text = "on: push\njobs:\n  a:\n    runs-on: x\n    uses: o/r/.github/workflows/w.yml@v1\n";
    let help = help_for(text, "Unexpected value 'uses'");
    assert!(help.starts_with("A job either runs steps"), "{help}");
    let text = format!("{JOB}    steps:\n      - run: a\n        uses: actions/checkout@v4\n");
    let help = help_for(&text, "Unexpected value 'uses'");
    assert!(help.starts_with("A step either runs a script"), "{help}");
}

#[test]
fn missing_keys_and_yaml_errors_say_what_to_add_or_check() {
    let help = help_for(
        "on: push\njobs:\n  a:\n    steps: []\n",
        "Required property is missing: runs-on",
    );
    assert_eq!(help, "Add 'runs-on:' to this mapping.");
    let all = problems("on: push\njobs:\n  a: [\n");
    assert_eq!(all.len(), 1);
    assert!(all[0].0.contains("YAML syntax error"), "{all:?}");
    assert!(!all[0].1.is_empty());
}

#[test]
fn reusable_workflow_calls_name_what_the_callee_defines() {
    let callee = load(
        "on:\n  workflow_call:\n    inputs:\n      version:\n        type: string\n        required: true\n    secrets:\n      token:\n        required: true\njobs:\n  a:\n    runs-on: x\n",
        "callee.yml",
    )
    .unwrap();
    let caller = load(
        "on: push\njobs:\n  call:\n    uses: ./.github/workflows/callee.yml\n    with:\n      verison: 1\n    secrets:\n      tokn: x\n",
        "w.yml",
    )
    .unwrap();
    let problems = check_call(&caller.jobs[0], &callee, "w.yml");
    let helps: Vec<(String, String)> = problems
        .iter()
        .map(|d| (d.message.clone(), d.help.clone().unwrap_or_default()))
        .collect();
    let help_of = |start: &str| {
        helps
            .iter()
            .find(|(m, _)| m.starts_with(start))
            .map(|(_, h)| h.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        help_of("Invalid input, verison"),
        "Did you mean 'version'? The called workflow defines 'version'."
    );
    assert_eq!(
        help_of("Invalid secret, tokn"),
        "Did you mean 'token'? The called workflow defines 'token'."
    );
    assert_eq!(
        help_of("Input version is required"),
        "Add 'version:' under this job's 'with:'."
    );
    assert!(help_of("Secret token is required").contains("secrets: inherit"));
}
