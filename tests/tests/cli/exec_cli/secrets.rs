//! Secrets never printed: `-s`, `--secret-file`, `::add-mask::`, `env:`, base64; and the other value flags.

use super::*;

const SECRETS: &str = r#"on: push
jobs:
  leak:
    runs-on: ubuntu-latest
    outputs:
      direct: ${{ secrets.TOKEN }}
      plain: ${{ steps.out.outputs.plain }}
      through-step: ${{ steps.out.outputs.token }}
    env:
      VIA_ENV: ${{ secrets.TOKEN }}
    steps:
      - name: Print ${{ secrets.TOKEN }}
        run: |
          echo "expr=${{ secrets.TOKEN }}"
          echo "env=$VIA_ENV"
          echo "b64=$(printf %s "$VIA_ENV" | base64)"
          echo "b64-inside=$(printf 'prefix-%s-suffix' "$VIA_ENV" | base64 -w0)"
          echo "multi=${{ secrets.MULTI }}"
          echo "::add-mask::runtime-mask-value"
          echo "masked=runtime-mask-value"
          echo "::warning::warn runtime-mask-value ${{ secrets.TOKEN }}"
      - run: echo "stderr=$VIA_ENV" >&2
      - id: out
        env:
          STEP_TOKEN: ${{ secrets.TOKEN }}
        run: |
          echo "step-env=$STEP_TOKEN"
          echo "token=$STEP_TOKEN" >> "$GITHUB_OUTPUT"
          echo "plain=visible" >> "$GITHUB_OUTPUT"
  use:
    needs: leak
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo "direct=[${{ needs.leak.outputs.direct }}]"
          echo "plain=[${{ needs.leak.outputs.plain }}]"
          echo "through-step=[${{ needs.leak.outputs.through-step }}]"
"#;

const TOKEN: &str = "s3cr3t-T0ken-value";
const SECRET_LINES: [&str; 2] = ["first-line-of-the-key", "second-line-of-the-key"];

fn base64(bytes: &[u8]) -> String {
    const DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(DIGITS[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn assert_no_secret(run: &Run) {
    let text = run.all();
    let b64_inside = base64(format!("prefix-{TOKEN}-suffix").as_bytes());
    for secret in [
        TOKEN,
        SECRET_LINES[0],
        SECRET_LINES[1],
        "runtime-mask-value",
        base64(TOKEN.as_bytes()).trim_end_matches('='),
        &b64_inside[12..28],
    ] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
}

#[test]
fn secrets_are_masked_in_human_and_json_output() {
    let repo = Repo::with(SECRETS);
    repo.write(
        "secrets.env",
        &format!("MULTI=\"{}\\n{}\"\n", SECRET_LINES[0], SECRET_LINES[1]),
    );
    let token = format!("TOKEN={TOKEN}");
    let args = ["-s", token.as_str(), "--secret-file", "secrets.env"];
    let mut json_args = vec!["--json"];
    json_args.extend(args);
    let run = repo.exec(&json_args);
    run.assert_code(0);
    assert_no_secret(&run);
    assert_eq!(
        run.output("leak"),
        lines(&[
            "expr=***",
            "env=***",
            "b64=***",
            // The secret's base64 is hidden; the bytes around it may still show.
            &run.output("leak")[3],
            "multi=***",
            "***",
            "masked=***",
            "stderr=***",
            "step-env=***",
        ]),
        "{}",
        run.all()
    );
    assert!(run.output("leak")[3].contains("***"), "{}", run.all());
    assert!(
        run.annotations("leak")
            .contains(&"warning: warn *** ***".to_string()),
        "{}",
        run.all()
    );
    // Step names and outputs are masked too.
    let names: Vec<String> = run
        .events_of("step_started")
        .iter()
        .map(|e| e["step"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names[0], "Print ***");
    let out_step = run
        .events_of("step_finished")
        .into_iter()
        .find(|e| e["step"]["id"] == "out")
        .unwrap();
    assert_eq!(
        out_step["outputs"],
        serde_json::json!([["token", "***"], ["plain", "visible"]])
    );
    // Job outputs holding a secret are dropped with a warning, as on GitHub.
    let leak_finished = run
        .events_of("job_finished")
        .into_iter()
        .find(|e| e["job"]["id"] == "leak")
        .unwrap();
    assert_eq!(
        leak_finished["outputs"],
        serde_json::json!([["plain", "visible"]])
    );
    let notes = run.notes("leak");
    for name in ["direct", "through-step"] {
        assert!(
            notes.contains(&format!(
                "warning: skipping output '{name}': it may contain a secret"
            )),
            "{notes:?}"
        );
    }
    assert_eq!(
        run.output("use"),
        lines(&["direct=[]", "plain=[visible]", "through-step=[]"])
    );

    let human = repo.exec(&args);
    human.assert_code(0);
    assert_no_secret(&human);
    assert!(human.stdout.contains("expr=***"), "{}", human.all());
    assert!(human.stdout.contains("Print ***"), "{}", human.all());
}

#[test]
fn secrets_vars_env_files_and_dispatch_inputs_from_the_command_line() {
    let repo = Repo::with(
        "on:
  workflow_dispatch:
    inputs:
      flag:
        type: boolean
        default: false
      count:
        type: number
      name:
        default: nobody
jobs:
  cli:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo \"secret=${{ secrets.FROM_ENV }} var=${{ vars.COLOUR }} env=$FROM_FILE/${{ env.FROM_FILE }}\"
          echo \"flag=${{ toJSON(inputs.flag) }} count=${{ inputs.count == 3 }} name=${{ inputs.name }}\"
          echo \"event=${{ github.event_name }} payload=${{ github.event.inputs.flag }}\"
",
    );
    repo.write("vars.env", "# settings\nexport FROM_FILE='from file'\n");
    let run = repo.exec_with(
        &[
            "--json",
            "-E",
            "workflow_dispatch",
            "-s",
            "FROM_ENV",
            "--var",
            "COLOUR=blue",
            "--env-file",
            "vars.env",
            "--input",
            "flag=true",
            "--input",
            "count=3",
        ],
        &[("FROM_ENV", "env-secret-value")],
    );
    run.assert_code(0);
    assert_eq!(
        run.output("cli"),
        lines(&[
            "secret=*** var=blue env=from file/from file",
            "flag=true count=true name=nobody",
            "event=workflow_dispatch payload=true",
        ]),
        "{}",
        run.all()
    );
    assert!(!run.stdout.contains("env-secret-value"));
    // A push does not trigger this workflow: nothing runs, and that is not an error.
    // (Without -E its only event, workflow_dispatch, would run, as act picks it.)
    let run = repo.json(&["-E", "push"]);
    run.assert_code(0);
    assert!(run.events().is_empty());
    assert!(run.stderr.contains("-E"), "{}", run.all());
}

/// Step scripts (secrets already expanded) and the `GITHUB_*` command files are private to
/// the runner's user: the run's scratch folder is 0700 and the files 0600.
#[test]
fn step_scripts_and_command_files_are_private() {
    let repo = Repo::with(
        r#"on: push
jobs:
  look:
    runs-on: ubuntu-latest
    steps:
      - run: |
          p="$0"
          while case "$(basename "$p")" in hybrid-runner-*) false;; /) false;; *) true;; esac; do
            p="$(dirname "$p")"
          done
          echo "run-folder=$(stat -c %a "$p")"
          echo "script=$(stat -c %a "$0")"
          echo "env-file=$(stat -c %a "$GITHUB_ENV")"
          echo "files-folder=$(stat -c %a "$(dirname "$GITHUB_ENV")")"
"#,
    );
    let run = repo.exec(&["-s", "TOKEN=s3cret"]);
    let all = run.all();
    assert_eq!(run.code, Some(0), "{all}");
    for line in [
        "run-folder=700",
        "script=600",
        "env-file=600",
        "files-folder=700",
    ] {
        assert!(all.contains(line), "missing {line}: {all}");
    }
}

/// act's `--var-file` and `--input-file` (dotenv files under their flags, which win),
/// `-C DIR` (run as if started there) and `--concurrent-jobs` (`--concurrency`).
#[test]
fn act_var_and_input_files_directory_and_concurrent_jobs() {
    let repo = Repo::with(
        "on:
  workflow_dispatch:
    inputs:
      name:
        default: nobody
      mood:
        default: calm
jobs:
  cli:
    runs-on: ubuntu-latest
    steps:
      - run: echo \"colour=${{ vars.COLOUR }} size=${{ vars.SIZE }} name=${{ inputs.name }} mood=${{ inputs.mood }}\"
",
    );
    repo.write("vars.env", "COLOUR=red\nSIZE=large\n");
    repo.write("inputs.env", "name=from-file\nmood=sunny\n");
    let elsewhere = tempfile::tempdir().unwrap();
    let path = repo.path().to_str().unwrap().to_string();
    let mut command = repo.command(&[
        "--json",
        "-C",
        &path,
        "-E",
        "workflow_dispatch",
        "--var-file",
        "vars.env",
        "--var",
        "COLOUR=blue",
        "--input-file",
        "inputs.env",
        "--input",
        "mood=stormy",
        "--concurrent-jobs",
        "1",
    ]);
    command.current_dir(elsewhere.path());
    let out = command.output().unwrap();
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    run.assert_code(0);
    assert_eq!(
        run.output("cli"),
        lines(&["colour=blue size=large name=from-file mood=stormy"]),
        "{}",
        run.all()
    );
    // A folder that is not there is a usage error naming it.
    let run = repo.exec(&["-C", "/no/such/folder"]);
    run.assert_code(2);
    assert!(run.stderr.contains("-C /no/such/folder"), "{}", run.all());
}
