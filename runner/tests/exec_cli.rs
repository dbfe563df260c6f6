//! `hybrid-runner exec` as users call it, checked against GitHub's runner: exit codes,
//! Ctrl-C, secret masking, step and job semantics, actions, reusable workflows, and the
//! `-n`/`-l`/`--json` modes. Each test writes a workflow into a fresh git repository
//! and runs the real binary there.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up its repository should fail loudly

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A throwaway git repository to run workflows in.
struct Repo {
    dir: tempfile::TempDir,
}

/// What one `exec` run printed and how it ended.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(dir.path(), &["config", "user.name", "tester"]);
        git(dir.path(), &["config", "user.email", "tester@example.com"]);
        Repo { dir }
    }

    /// A repository holding `workflow` as `.github/workflows/ci.yml`.
    fn with(workflow: &str) -> Repo {
        let repo = Repo::new();
        repo.write(".github/workflows/ci.yml", workflow);
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// `hybrid-runner exec ARGS` with a clean environment (no debug, no nesting in Actions).
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hybrid-runner"));
        c.arg("exec")
            .args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .env("XDG_CACHE_HOME", self.path().join(".no-cache"));
        for var in [
            "GITHUB_ACTIONS",
            "GITHUB_WORKSPACE",
            "ACTIONS_STEP_DEBUG",
            "RUNNER_DEBUG",
            "ACTIONS_ALLOW_UNSECURE_COMMANDS",
        ] {
            c.env_remove(var);
        }
        c
    }

    fn exec(&self, args: &[&str]) -> Run {
        self.exec_with(args, &[])
    }

    fn exec_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().expect("the binary runs");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `exec --json ARGS`.
    fn json(&self, args: &[&str]) -> Run {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.exec(&all)
    }
}

impl Run {
    fn all(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }

    fn assert_code(&self, code: i32) {
        assert_eq!(self.code, Some(code), "{}", self.all());
    }

    /// Every `--json` line, parsed (each line must be JSON).
    fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    fn events_of(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == kind)
            .collect()
    }

    /// The result of job `id` (`job_finished`'s result, or "skipped").
    fn job(&self, id: &str) -> Option<String> {
        self.events().iter().find_map(|e| {
            (e["job"]["id"] == id).then_some(())?;
            match e["event"].as_str()? {
                "job_finished" => Some(e["result"].as_str()?.to_string()),
                "job_skipped" => Some("skipped".to_string()),
                _ => None,
            }
        })
    }

    /// Every job result, as `id=result`, sorted.
    fn jobs(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .events()
            .iter()
            .filter_map(|e| match e["event"].as_str()? {
                "job_finished" => Some(format!(
                    "{}={}",
                    e["job"]["name"].as_str()?,
                    e["result"].as_str()?
                )),
                "job_skipped" => Some(format!("{}=skipped", e["job"]["name"].as_str()?)),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    /// stdout/stderr lines the steps of job `id` printed, in order.
    fn output(&self, id: &str) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| {
                e["event"] == "log"
                    && e["job"]["id"] == id
                    && (e["kind"] == "stdout" || e["kind"] == "stderr")
            })
            .map(|e| e["line"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Each step of job `id` that finished: `id:outcome/conclusion`.
    fn steps(&self, id: &str) -> Vec<String> {
        self.events_of("step_finished")
            .iter()
            .filter(|e| e["job"]["id"] == id)
            .map(|e| {
                format!(
                    "{}:{}/{}",
                    e["step"]["id"].as_str().unwrap_or_default(),
                    e["outcome"].as_str().unwrap_or_default(),
                    e["conclusion"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }

    /// Annotation messages (`level: message`) of job `id`.
    fn annotations(&self, id: &str) -> Vec<String> {
        self.events_of("annotation")
            .iter()
            .filter(|e| e["job"]["id"] == id)
            .map(|e| {
                format!(
                    "{}: {}",
                    e["annotation"]["level"].as_str().unwrap_or_default(),
                    e["annotation"]["message"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }

    /// Runner notes (`kind: runner`) of job `id`, with or without a step.
    fn notes(&self, id: &str) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| e["event"] == "log" && e["job"]["id"] == id && e["kind"] == "runner")
            .map(|e| e["line"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------
// 1. Exit codes and job selection

const PASS_FAIL: &str = "on: push
jobs:
  good:
    runs-on: ubuntu-latest
    steps:
      - run: echo good
  bad:
    runs-on: ubuntu-latest
    steps:
      - run: exit 4
";

#[test]
fn exit_zero_when_every_job_succeeds() {
    let repo = Repo::with(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo one\n  b:\n    needs: a\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo two\n",
    );
    let run = repo.json(&[]);
    run.assert_code(0);
    assert_eq!(run.jobs(), lines(&["a=success", "b=success"]));
    assert_eq!(run.output("a"), lines(&["one"]));
    // Human output too: a table at the end.
    let human = repo.exec(&[]);
    human.assert_code(0);
    assert!(human.stdout.contains("two"), "{}", human.all());
}

#[test]
fn exit_one_when_a_job_fails() {
    let repo = Repo::with(PASS_FAIL);
    let run = repo.json(&[]);
    run.assert_code(1);
    assert_eq!(run.jobs(), lines(&["bad=failure", "good=success"]));
    assert_eq!(
        run.annotations("bad"),
        lines(&["error: Process completed with exit code 4."])
    );
}

#[test]
fn exit_two_for_an_invalid_workflow_with_its_position() {
    let repo = Repo::with(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n        shel: bash\n",
    );
    let run = repo.exec(&["-W", ".github/workflows/ci.yml"]);
    run.assert_code(2);
    assert_eq!(run.stdout, "", "{}", run.all());
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(".github/workflows/ci.yml:7:9: "),
        "expected path:line:col, got {}",
        run.all()
    );
    assert!(first.contains("shel"), "{first}");
    // The same from the default folder.
    let run = repo.exec(&[]);
    run.assert_code(2);
    assert!(
        run.stderr.starts_with(".github/workflows/ci.yml:7:9: "),
        "{}",
        run.all()
    );
}

#[test]
fn exit_two_for_bad_flags() {
    let repo = Repo::with(PASS_FAIL);
    for args in [
        &["--no-such-flag"][..],
        &["--env", "NOEQUALS"],
        &["--matrix", "novalue"],
        &["--concurrency", "many"],
        &["-s", "HYBRID_RUNNER_TEST_UNSET_SECRET"],
        &["-W", "missing.yml"],
    ] {
        let run = repo.exec(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.all());
        assert!(!run.stderr.is_empty(), "{args:?}: no message");
        assert!(
            !run.stdout.contains("good"),
            "{args:?} ran jobs: {}",
            run.all()
        );
    }
}

#[test]
fn job_flag_runs_the_job_and_what_it_needs_only() {
    let repo = Repo::with(
        "on: push
jobs:
  base:
    runs-on: ubuntu-latest
    steps:
      - run: echo base
  mid:
    needs: base
    runs-on: ubuntu-latest
    steps:
      - run: echo mid
  top:
    needs: mid
    runs-on: ubuntu-latest
    steps:
      - run: echo top
  other:
    runs-on: ubuntu-latest
    steps:
      - run: echo other
",
    );
    let run = repo.json(&["-j", "mid"]);
    run.assert_code(0);
    assert_eq!(run.jobs(), lines(&["base=success", "mid=success"]));
    let run = repo.json(&["-j", "nope"]);
    run.assert_code(2);
    assert!(run.stderr.contains("nope"), "{}", run.all());
    assert!(run.events().is_empty(), "{}", run.all());
}

// ---------------------------------------------------------------------------------------
// 2. Ctrl-C

/// Runs `exec --json ARGS` and sends it SIGINT each time the number of output lines
/// ending in `ready` reaches the next of `ready_counts`; returns the run and how long it
/// took to stop after the first signal.
fn interrupt_when_ready(repo: &Repo, args: &[&str], ready_counts: &[usize]) -> (Run, Duration) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let mut child = repo
        .command(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut interrupted = None;
    for &count in ready_counts {
        while seen.iter().filter(|l| l.ends_with("ready\"}")).count() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => {
                    let _ = child.kill();
                    panic!("no {count} ready lines: {seen:#?}");
                }
            }
        }
        interrupted.get_or_insert_with(Instant::now);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
    }
    let interrupted = interrupted.unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if interrupted.elapsed() > Duration::from_secs(6) {
            let _ = child.kill();
            let _ = child.wait();
            seen.extend(rx.try_iter());
            let mut stderr = String::new();
            let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr);
            panic!("exec did not stop within 6 s of SIGINT: {seen:#?}\nstderr: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stopped = interrupted.elapsed();
    reader.join().unwrap();
    seen.extend(rx.try_iter());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let run = Run {
        code: status.code(),
        stdout: seen.join("\n") + "\n",
        stderr,
    };
    (run, stopped)
}

#[test]
fn ctrl_c_interrupts_the_step_runs_always_and_cancelled_steps_and_exits_130() {
    let repo = Repo::with(
        "on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    steps:
      - run: |
          trap 'echo \"got INT\"; sleep 0.5; exit 1' INT
          echo ready
          # Short sleeps: a SIGINT landing while bash forks one is not lost for long.
          for i in $(seq 300); do sleep 0.1; done
          echo not-interrupted
      - run: echo should-not-run
      - if: always()
        run: echo always ran
      - if: cancelled()
        run: echo cancelled ran
      - if: failure()
        run: echo failure ran
",
    );
    let (run, stopped) = interrupt_when_ready(&repo, &[], &[1]);
    run.assert_code(130);
    assert!(stopped < Duration::from_secs(4), "took {stopped:?}");
    assert_eq!(
        run.output("slow"),
        lines(&["ready", "got INT", "always ran", "cancelled ran"]),
        "{}",
        run.all()
    );
    assert_eq!(
        run.steps("slow"),
        lines(&[
            "__run:cancelled/cancelled",
            "__run_2:skipped/skipped",
            "__run_3:success/success",
            "__run_4:success/success",
            "__run_5:skipped/skipped",
        ])
    );
    assert_eq!(run.job("slow").as_deref(), Some("cancelled"));
    assert!(run.stderr.contains("cancelling"), "{}", run.all());
}

#[test]
fn ctrl_c_skips_waiting_jobs_but_runs_always_and_cancelled_jobs() {
    let repo = Repo::with(
        "on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    steps:
      - run: echo ready; for i in $(seq 300); do sleep 0.1; done
  default-if:
    needs: slow
    runs-on: ubuntu-latest
    steps:
      - run: echo default-ran
  always:
    needs: slow
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo \"always-ran slow=${{ needs.slow.result }}\"
      - run: echo \"second step too, status=${{ job.status }}\"
  on-cancel:
    needs: slow
    if: cancelled()
    runs-on: ubuntu-latest
    steps:
      - run: echo cancelled-ran
  queued:
    runs-on: ubuntu-latest
    strategy:
      max-parallel: 1
      matrix:
        n: [1, 2]
    steps:
      - run: echo \"leg ${{ matrix.n }} ready\"; for i in $(seq 300); do sleep 0.1; done
",
    );
    let (run, stopped) = interrupt_when_ready(&repo, &["--concurrency", "4"], &[2]);
    run.assert_code(130);
    assert!(stopped < Duration::from_secs(4), "took {stopped:?}");
    assert_eq!(
        run.jobs(),
        lines(&[
            "always=success",
            "default-if=skipped",
            "on-cancel=success",
            "queued (1)=cancelled",
            // Queued legs are cancelled too, as on GitHub.
            "queued (2)=cancelled",
            "slow=cancelled",
        ]),
        "{}",
        run.all()
    );
    assert_eq!(
        run.output("always"),
        lines(&[
            "always-ran slow=cancelled",
            "second step too, status=success"
        ])
    );
    assert_eq!(run.output("on-cancel"), lines(&["cancelled-ran"]));
    assert_eq!(run.output("queued"), lines(&["leg 1 ready"]));
    assert!(
        run.notes("queued")
            .contains(&"the run was cancelled before this leg started".to_string()),
        "{}",
        run.all()
    );
}

#[test]
fn a_second_ctrl_c_stops_the_always_steps_too() {
    let repo = Repo::with(
        "on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    steps:
      - run: echo ready; for i in $(seq 300); do sleep 0.1; done
      - if: always()
        run: echo cleanup ready; for i in $(seq 300); do sleep 0.1; done; echo cleanup-finished
      - if: always()
        run: echo not-reached
",
    );
    let (run, stopped) = interrupt_when_ready(&repo, &[], &[1, 2]);
    run.assert_code(130);
    assert!(stopped < Duration::from_secs(4), "took {stopped:?}");
    assert_eq!(run.output("slow"), lines(&["ready", "cleanup ready"]));
    assert_eq!(run.job("slow").as_deref(), Some("cancelled"));
    let steps = run.steps("slow");
    assert_eq!(
        steps,
        lines(&[
            "__run:cancelled/cancelled",
            "__run_2:cancelled/cancelled",
            "__run_3:skipped/skipped"
        ])
    );
}

// ---------------------------------------------------------------------------------------
// 3. Secrets

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

// ---------------------------------------------------------------------------------------
// 4. Step semantics

#[test]
fn status_functions_outcome_and_conclusion_with_continue_on_error() {
    let repo = Repo::with(
        "on: push
jobs:
  s:
    runs-on: ubuntu-latest
    steps:
      - id: soft
        continue-on-error: true
        run: exit 3
      - run: echo \"soft=${{ steps.soft.outcome }}/${{ steps.soft.conclusion }} status=${{ job.status }}\"
      - if: failure()
        run: echo failure-after-soft
      - id: hard
        run: exit 5
      - run: echo not-run
      - if: failure()
        run: echo \"failure ran hard=${{ steps.hard.outcome }}/${{ steps.hard.conclusion }}\"
      - if: success()
        run: echo success-not-run
      - if: always()
        run: echo \"always status=${{ job.status }}\"
      - if: cancelled()
        run: echo cancelled-not-run
",
    );
    let run = repo.json(&[]);
    run.assert_code(1);
    assert_eq!(
        run.output("s"),
        lines(&[
            "soft=failure/success status=success",
            "failure ran hard=failure/failure",
            "always status=failure",
        ]),
        "{}",
        run.all()
    );
    assert_eq!(
        run.steps("s"),
        lines(&[
            "soft:failure/success",
            "__run:success/success",
            "__run_2:skipped/skipped",
            "hard:failure/failure",
            "__run_3:skipped/skipped",
            "__run_4:success/success",
            "__run_5:skipped/skipped",
            "__run_6:success/success",
            "__run_7:skipped/skipped",
        ])
    );
    assert_eq!(run.job("s").as_deref(), Some("failure"));
}

#[test]
fn env_precedence_workflow_job_github_env_step() {
    // act's set-env-step-env-override: a step's `env:` wins over GITHUB_ENV, which wins
    // over the job's `env:`.
    let repo = Repo::with(
        "on: push
env:
  A: workflow
  B: workflow
  C: workflow
  D: workflow
jobs:
  e:
    runs-on: ubuntu-latest
    env:
      B: job
      C: job
      D: job
    steps:
      - run: |
          echo \"C=from-file\" >> \"$GITHUB_ENV\"
          echo \"E=from-file\" >> \"$GITHUB_ENV\"
          echo \"before A=$A B=$B C=$C D=$D E=$E\"
      - env:
          D: step
          E: step
        run: echo \"A=$A B=$B C=$C D=$D E=$E\"
      - run: echo \"after C=$C D=$D E=$E ctx=${{ env.C }}/${{ env.E }}\"
      - env:
          C: step
        run: echo \"override C=$C\"
",
    );
    let run = repo.json(&["--env", "A=cli", "--env", "Z=cli"]);
    run.assert_code(0);
    assert_eq!(
        run.output("e"),
        lines(&[
            "before A=workflow B=job C=job D=job E=",
            "A=workflow B=job C=from-file D=step E=step",
            "after C=from-file D=job E=from-file ctx=from-file/from-file",
            "override C=step",
        ]),
        "{}",
        run.all()
    );
}

#[test]
fn working_directory_defaults_and_step_override() {
    let repo = Repo::with(
        "on: push
defaults:
  run:
    working-directory: wf
jobs:
  wd:
    runs-on: ubuntu-latest
    defaults:
      run:
        working-directory: sub
    steps:
      - run: echo \"default=${PWD#$GITHUB_WORKSPACE}\"
      - working-directory: sub/inner
        run: echo \"step=${PWD#$GITHUB_WORKSPACE}\"
      - working-directory: missing
        run: echo never
  wf:
    runs-on: ubuntu-latest
    steps:
      - run: echo \"workflow=${PWD#$GITHUB_WORKSPACE}\"
",
    );
    repo.write("sub/inner/.keep", "");
    repo.write("wf/.keep", "");
    let run = repo.json(&[]);
    run.assert_code(1);
    assert_eq!(
        run.output("wd"),
        lines(&["default=/sub", "step=/sub/inner"]),
        "{}",
        run.all()
    );
    assert_eq!(run.output("wf"), lines(&["workflow=/wf"]));
    let errors = run.annotations("wd");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("error: the working directory ") && errors[0].contains("missing"),
        "{errors:?}"
    );
}

#[test]
fn shells_bash_sh_python_and_custom() {
    let repo = Repo::with(
        "on: push
jobs:
  sh:
    runs-on: ubuntu-latest
    steps:
      - name: default bash without pipefail
        run: |
          false | true
          echo \"default ${0##*.}\"
      - name: bash with pipefail
        id: pipefail
        continue-on-error: true
        shell: bash
        run: |
          false | true
          echo not-reached
      - name: sh
        shell: sh
        run: |
          echo \"sh ${0##*.}\"
      - name: sh -e
        id: sherr
        continue-on-error: true
        shell: sh
        run: |
          false
          echo not-reached
      - name: python
        shell: python
        run: |
          import os, sys
          print('python', sys.version_info[0], os.path.splitext(sys.argv[0])[1])
      - name: perl
        shell: perl {0}
        run: |
          print \"perl $^O\\n\";
      - name: custom bash
        shell: bash -c \"echo custom; source {0}\"
        run: echo sourced
",
    );
    let run = repo.json(&[]);
    run.assert_code(0);
    assert_eq!(
        run.output("sh"),
        lines(&[
            "default sh",
            "sh sh",
            "python 3 .py",
            "perl linux",
            "custom",
            "sourced"
        ]),
        "{}",
        run.all()
    );
    let steps = run.steps("sh");
    assert!(
        steps.contains(&"pipefail:failure/success".to_string()),
        "{steps:?}"
    );
    assert!(
        steps.contains(&"sherr:failure/success".to_string()),
        "{steps:?}"
    );
}

#[test]
fn github_path_output_heredoc_and_step_summary() {
    let repo = Repo::with(
        "on: push
jobs:
  files:
    runs-on: ubuntu-latest
    steps:
      - run: |
          mkdir -p \"$RUNNER_TEMP/bin\"
          printf '#!/bin/sh\\necho tool ran\\n' > \"$RUNNER_TEMP/bin/mytool\"
          chmod +x \"$RUNNER_TEMP/bin/mytool\"
          echo \"$RUNNER_TEMP/bin\" >> \"$GITHUB_PATH\"
      - run: |
          mytool
          case \"$PATH\" in \"$RUNNER_TEMP/bin:\"*) echo first-on-path;; esac
      - id: multi
        run: |
          {
            echo 'text<<EOF_MARK'
            echo 'line one'
            echo 'line two'
            echo 'EOF_MARK'
            echo 'single=value'
          } >> \"$GITHUB_OUTPUT\"
      - env:
          TEXT: ${{ steps.multi.outputs.text }}
        run: |
          printf '[%s]\\n' \"$TEXT\"
          echo \"single=${{ steps.multi.outputs.single }}\"
      - run: |
          echo '### Results' >> \"$GITHUB_STEP_SUMMARY\"
          echo '- all good' >> \"$GITHUB_STEP_SUMMARY\"
      - run: echo '- still good' >> \"$GITHUB_STEP_SUMMARY\"
",
    );
    let run = repo.json(&[]);
    run.assert_code(0);
    assert_eq!(
        run.output("files"),
        lines(&[
            "tool ran",
            "first-on-path",
            "[line one",
            "line two]",
            "single=value"
        ]),
        "{}",
        run.all()
    );
    let summary = run.events_of("summary");
    assert_eq!(summary.len(), 1, "{}", run.all());
    assert_eq!(
        summary[0]["markdown"],
        "### Results\n- all good\n- still good\n"
    );
    // Human output shows the summary after the table of jobs, at the very end.
    let human = repo.exec(&[]);
    human.assert_code(0);
    let table = human.stdout.find("Job    Result").expect("a table");
    let shown = human
        .stdout
        .find("Step summary: files\n### Results\n")
        .expect("the summary");
    assert!(table < shown, "{}", human.all());
    assert!(
        human.stdout.trim_end().ends_with("- still good"),
        "{}",
        human.all()
    );
}

const COMMANDS: &str = "on: push
jobs:
  cmd:
    runs-on: ubuntu-latest
    steps:
      - id: group
        run: |
          echo '::group::My group'
          echo inside
          echo '::endgroup::'
          echo outside
          echo '::error file=a.txt,line=3::msg'
          echo '::debug::a debug line'
      - id: old
        run: echo '::set-output name=legacy::value'
      - run: echo \"legacy=${{ steps.old.outputs.legacy }}\"
      - id: setenv
        continue-on-error: true
        run: |
          echo '::set-env name=REFUSED::yes'
          echo after-set-env
      - run: echo \"refused=[$REFUSED]\"
      - id: allowed
        env:
          ACTIONS_ALLOW_UNSECURE_COMMANDS: 'true'
        run: echo '::set-env name=ALLOWED::yes'
      - run: echo \"allowed=[$ALLOWED]\"
";

#[test]
fn workflow_commands_group_error_set_output_and_set_env() {
    let repo = Repo::with(COMMANDS);
    let run = repo.json(&[]);
    run.assert_code(0);
    assert_eq!(
        run.output("cmd"),
        lines(&[
            "inside",
            "outside",
            "legacy=value",
            "after-set-env",
            "refused=[]",
            "allowed=[yes]"
        ]),
        "{}",
        run.all()
    );
    let groups = run.events_of("group_started");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["title"], "My group");
    let error = run
        .events_of("annotation")
        .into_iter()
        .find(|e| e["annotation"]["message"] == "msg")
        .unwrap();
    assert_eq!(error["annotation"]["level"], "error");
    assert_eq!(error["annotation"]["file"], "a.txt");
    assert_eq!(error["annotation"]["line"], 3);
    let annotations = run.annotations("cmd");
    assert!(
        annotations.contains(
            &"warning: The `set-output` command is deprecated and will be disabled soon. Please upgrade to using Environment Files. For more information see: https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/"
                .to_string()
        ),
        "{annotations:?}"
    );
    // GitHub fails the step whose `::set-env` it refuses, after the script ran.
    assert!(
        annotations.contains(
            &"error: Unable to process command '::set-env name=REFUSED::yes' successfully."
                .to_string()
        ),
        "{annotations:?}"
    );
    assert!(
        annotations
            .iter()
            .any(|a| a.starts_with("error: The `set-env` command is disabled.")),
        "{annotations:?}"
    );
    let steps = run.steps("cmd");
    assert!(
        steps.contains(&"setenv:failure/success".to_string()),
        "{steps:?}"
    );
    assert!(
        steps.contains(&"allowed:success/success".to_string()),
        "{steps:?}"
    );

    // The opt-in also works from the runner's own environment, as on GitHub.
    let opted_in = repo.exec_with(&["--json"], &[("ACTIONS_ALLOW_UNSECURE_COMMANDS", "True")]);
    opted_in.assert_code(0);
    assert!(
        opted_in
            .output("cmd")
            .contains(&"refused=[yes]".to_string()),
        "{}",
        opted_in.all()
    );
    assert!(
        opted_in
            .steps("cmd")
            .contains(&"setenv:success/success".to_string())
    );

    // Human output: the group folds under a header, the annotation names file and line.
    let human = repo.exec(&[]);
    human.assert_code(0);
    assert!(human.stdout.contains("▼ My group"), "{}", human.all());
    assert!(
        human.stdout.contains("error: a.txt:3: msg"),
        "{}",
        human.all()
    );
    assert!(!human.stdout.contains("a debug line"), "{}", human.all());
}

#[test]
fn debug_lines_show_only_with_actions_step_debug() {
    let repo = Repo::with(
        "on: push\njobs:\n  d:\n    runs-on: ubuntu-latest\n    steps:\n      - name: debug\n        run: |\n          echo '::debug::a debug line'\n          echo \"runner.debug=[${{ runner.debug }}] RUNNER_DEBUG=[$RUNNER_DEBUG]\"\n",
    );
    let off = repo.exec(&[]);
    off.assert_code(0);
    assert!(!off.stdout.contains("a debug line"), "{}", off.all());
    let off = repo.json(&[]);
    assert!(!off.stdout.contains("a debug line"), "{}", off.all());
    assert!(
        off.stdout.contains("runner.debug=[] RUNNER_DEBUG=[]"),
        "{}",
        off.all()
    );
    for (args, env) in [
        (&[][..], &[("ACTIONS_STEP_DEBUG", "true")][..]),
        (&["--var", "ACTIONS_STEP_DEBUG=true"][..], &[][..]),
        (&["-s", "ACTIONS_STEP_DEBUG=true"][..], &[][..]),
        (&["--env", "ACTIONS_STEP_DEBUG=true"][..], &[][..]),
    ] {
        let on = repo.exec_with(args, env);
        on.assert_code(0);
        assert!(
            on.stdout.contains("  debug: a debug line"),
            "{args:?} {env:?}: {}",
            on.all()
        );
        assert!(
            on.stdout.contains("runner.debug=[1] RUNNER_DEBUG=[1]"),
            "{args:?} {env:?}: {}",
            on.all()
        );
    }
}

#[test]
fn step_and_job_timeouts_stop_sleeping_steps() {
    let repo = Repo::with(
        "on: push
jobs:
  step:
    runs-on: ubuntu-latest
    steps:
      - id: slow
        timeout-minutes: 0.02
        run: sleep 30
      - if: failure()
        run: echo after-step-timeout
  job:
    runs-on: ubuntu-latest
    timeout-minutes: 0.02
    steps:
      - run: sleep 30
      - run: echo not-run
      - if: always()
        run: echo after-job-timeout
",
    );
    let started = Instant::now();
    let run = repo.json(&[]);
    let took = started.elapsed();
    run.assert_code(1);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(run.steps("step")[0], "slow:failure/failure");
    assert_eq!(
        run.annotations("step"),
        lines(&["error: The action 'Run sleep 30' has timed out after 0.02 minutes."]),
        "{}",
        run.all()
    );
    assert_eq!(run.output("step"), lines(&["after-step-timeout"]));
    assert_eq!(run.job("step").as_deref(), Some("failure"));
    assert_eq!(run.output("job"), lines(&["after-job-timeout"]));
    assert_eq!(run.job("job").as_deref(), Some("failure"));
    assert!(
        run.notes("job")
            .iter()
            .any(|n| n.contains("exceeded the maximum execution time")),
        "{}",
        run.all()
    );
}

// ---------------------------------------------------------------------------------------
// 5. Jobs

#[test]
fn needs_outputs_results_and_job_conditions() {
    let repo = Repo::with(
        "on: push
jobs:
  produce:
    runs-on: ubuntu-latest
    outputs:
      v: ${{ steps.s.outputs.v }}
    steps:
      - id: s
        run: echo 'v=42' >> \"$GITHUB_OUTPUT\"
  broken:
    runs-on: ubuntu-latest
    steps:
      - run: exit 1
  consume:
    needs: produce
    runs-on: ubuntu-latest
    steps:
      - run: echo \"v=${{ needs.produce.outputs.v }} result=${{ needs.produce.result }}\"
  after-default:
    needs: [produce, broken]
    runs-on: ubuntu-latest
    steps:
      - run: echo never
  after-always:
    needs: [produce, broken]
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo \"broken=${{ needs.broken.result }} produce=${{ needs.produce.result }} v=${{ needs.produce.outputs.v }}\"
  on-failure:
    needs: broken
    if: failure()
    runs-on: ubuntu-latest
    steps:
      - run: echo failure-seen
  chain-always:
    needs: after-default
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo \"upstream=${{ needs.after-default.result }}\"
  chain-default:
    needs: after-default
    runs-on: ubuntu-latest
    steps:
      - run: echo never
",
    );
    let run = repo.json(&[]);
    run.assert_code(1);
    assert_eq!(
        run.jobs(),
        lines(&[
            "after-always=success",
            "after-default=skipped",
            "broken=failure",
            "chain-always=success",
            "chain-default=skipped",
            "consume=success",
            "on-failure=success",
            "produce=success",
        ])
    );
    assert_eq!(run.output("consume"), lines(&["v=42 result=success"]));
    assert_eq!(
        run.output("after-always"),
        lines(&["broken=failure produce=success v=42"])
    );
    assert_eq!(run.output("on-failure"), lines(&["failure-seen"]));
    assert_eq!(run.output("chain-always"), lines(&["upstream=skipped"]));
    let finished = run
        .events_of("job_finished")
        .into_iter()
        .find(|e| e["job"]["id"] == "produce")
        .unwrap();
    assert_eq!(finished["outputs"], serde_json::json!([["v", "42"]]));
}

const FAIL_FAST: &str = "on: push
jobs:
  m:
    runs-on: ubuntu-latest
    strategy:
      FAIL_FAST
      max-parallel: 2
      matrix:
        leg: [fast, slow, late]
    steps:
      - run: |
          if [ \"${{ matrix.leg }}\" = fast ]; then sleep 0.5; exit 1; fi
          echo ${{ matrix.leg }}-started
          for i in $(seq TENTHS); do sleep 0.1; done
          echo ${{ matrix.leg }}-finished
";

#[test]
fn matrix_fail_fast_cancels_running_and_queued_legs() {
    let repo = Repo::with(
        &FAIL_FAST
            .replace("FAIL_FAST", "fail-fast: true")
            .replace("TENTHS", "200"),
    );
    let started = Instant::now();
    let run = repo.json(&["--concurrency", "4"]);
    let took = started.elapsed();
    run.assert_code(1);
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert_eq!(
        run.jobs(),
        lines(&[
            "m (fast)=failure",
            "m (late)=cancelled",
            "m (slow)=cancelled"
        ])
    );
    assert_eq!(run.output("m"), lines(&["slow-started"]));
}

#[test]
fn matrix_without_fail_fast_lets_legs_finish() {
    let repo = Repo::with(
        &FAIL_FAST
            .replace("FAIL_FAST", "fail-fast: false")
            .replace("TENTHS", "5"),
    );
    let run = repo.json(&["--concurrency", "4"]);
    run.assert_code(1);
    assert_eq!(
        run.jobs(),
        lines(&["m (fast)=failure", "m (late)=success", "m (slow)=success"])
    );
    let mut out = run.output("m");
    out.sort();
    assert_eq!(
        out,
        lines(&[
            "late-finished",
            "late-started",
            "slow-finished",
            "slow-started"
        ])
    );
}

#[test]
fn matrix_max_parallel_runs_legs_one_at_a_time_and_matrix_filter_picks_legs() {
    let repo = Repo::with(
        "on: push
jobs:
  m:
    runs-on: ubuntu-latest
    strategy:
      max-parallel: 1
      matrix:
        n: [1, 2, 3]
    steps:
      - run: |
          echo \"start ${{ matrix.n }} $(date +%s%N)\"
          sleep 0.3
          echo \"end ${{ matrix.n }} $(date +%s%N)\"
",
    );
    let run = repo.json(&["--concurrency", "4"]);
    run.assert_code(0);
    let mut spans: Vec<(u128, u128)> = Vec::new();
    let out = run.output("m");
    assert_eq!(out.len(), 6, "{out:?}");
    for pair in out.chunks(2) {
        let start: Vec<&str> = pair[0].split(' ').collect();
        let end: Vec<&str> = pair[1].split(' ').collect();
        assert_eq!(
            (start[0], end[0]),
            ("start", "end"),
            "legs interleaved: {out:?}"
        );
        assert_eq!(start[1], end[1], "legs interleaved: {out:?}");
        spans.push((start[2].parse().unwrap(), end[2].parse().unwrap()));
    }
    let order: Vec<&str> = out.iter().map(|l| &l[..l.rfind(' ').unwrap()]).collect();
    assert_eq!(
        order,
        ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"],
        "legs start in matrix order"
    );
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "legs overlapped: {out:?}");
    }
    // --matrix keeps only the matching legs.
    let run = repo.json(&["--matrix", "n:2"]);
    run.assert_code(0);
    assert_eq!(run.jobs(), lines(&["m (2)=success"]));
}

#[test]
fn other_platforms_are_skipped_unless_mapped_to_the_host() {
    let repo = Repo::with(
        "on: push
jobs:
  win:
    runs-on: windows-latest
    steps:
      - run: echo on-windows-label
  linux:
    runs-on: ubuntu-latest
    steps:
      - run: echo on-linux
",
    );
    let run = repo.json(&[]);
    run.assert_code(0);
    assert_eq!(run.jobs(), lines(&["linux=success", "win=skipped"]));
    let skipped = run.events_of("job_skipped");
    let reason = skipped[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("windows-latest") && reason.contains("-P"),
        "{reason}"
    );
    let human = repo.exec(&[]);
    human.assert_code(0);
    assert!(
        human.stdout.contains("skipped: runs-on [windows-latest]"),
        "{}",
        human.all()
    );
    let run = repo.json(&["-P", "windows-latest=host"]);
    run.assert_code(0);
    assert_eq!(run.jobs(), lines(&["linux=success", "win=success"]));
    assert_eq!(run.output("win"), lines(&["on-windows-label"]));
}

// ---------------------------------------------------------------------------------------
// 6. Actions

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
fn bare_action_repo(root: &Path, owner: &str, repo: &str, files: &[(&str, &str)]) {
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
            && errors[0].contains("container backend"),
        "{errors:?}"
    );
    // Nothing was fetched for checkout.
    assert!(!repo.path().join(".cache").exists());
}

// ---------------------------------------------------------------------------------------
// 7. Reusable workflows

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

// ---------------------------------------------------------------------------------------
// 8. Dry run, list, JSON

const MODES: &str = "on: push
jobs:
  make:
    runs-on: ubuntu-latest
    steps:
      - run: touch created.txt
  check:
    needs: make
    runs-on: ubuntu-latest
    steps:
      - run: test -f created.txt
";

#[test]
fn dry_run_starts_no_process() {
    let repo = Repo::with(MODES);
    let run = repo.json(&["-n"]);
    run.assert_code(0);
    assert!(!repo.path().join("created.txt").exists());
    assert_eq!(run.jobs(), lines(&["check=success", "make=success"]));
    assert_eq!(run.steps("make"), lines(&["__run:success/success"]));
    assert!(run.output("make").is_empty());
    assert_eq!(run.notes("make"), lines(&["dry run: not started"]));
    let human = repo.exec(&["--dry-run"]);
    human.assert_code(0);
    assert!(!repo.path().join("created.txt").exists());
    // For real, the file appears.
    let real = repo.json(&[]);
    real.assert_code(0);
    assert!(repo.path().join("created.txt").exists());
}

#[test]
fn list_shows_jobs_without_running_them() {
    let repo = Repo::with(MODES);
    let run = repo.exec(&["-l"]);
    run.assert_code(0);
    let rows: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][..3], ["Stage", "Job", "ID"], "{}", run.all());
    assert_eq!(rows[1][..2], ["0", "make"], "{}", run.all());
    assert_eq!(rows[2][..2], ["1", "check"], "{}", run.all());
    assert_eq!(rows.len(), 3, "{}", run.all());
    assert!(!repo.path().join("created.txt").exists());
}

#[test]
fn json_lines_parse_and_tell_the_whole_story() {
    let repo = Repo::with(MODES);
    let run = repo.json(&[]);
    run.assert_code(0);
    let kinds: Vec<String> = run
        .events()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        lines(&[
            "job_started",
            "step_started",
            "step_finished",
            "job_finished",
            "job_started",
            "step_started",
            "step_finished",
            "job_finished",
        ])
    );
    let finished = run.events_of("step_finished");
    assert_eq!(finished[0]["job"]["id"], "make");
    assert_eq!(finished[0]["step"]["name"], "Run touch created.txt");
    assert_eq!(finished[0]["step"]["index"], 0);
    assert!(finished[0]["duration"].is_number());
    assert_eq!(finished[1]["job"]["id"], "check");
    // Nothing but JSON on stdout.
    assert!(run.stdout.lines().all(|l| l.starts_with('{')));
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
    let run = repo.json(&[]);
    run.assert_code(0);
    assert!(run.events().is_empty());
    assert!(run.stderr.contains("-E"), "{}", run.all());
}
