//! The host backend with real processes: exit codes, environment, output streaming,
//! GitHub's stop sequence on cancel and timeout, background processes, and `shell:`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::daemon_process::gone;
use hr_process::host::{
    HostError, OutputStream, ProcessExit, ProcessSpec, StopPolicy, run_process,
};
use hr_process::shell::{ShellError, find_program, resolve_shell};
use tokio_util::sync::CancellationToken;

/// Short graces so stop tests finish quickly.
const SHORT: StopPolicy = StopPolicy {
    interrupt_grace: Duration::from_millis(400),
    terminate_grace: Duration::from_millis(400),
};

fn host_path() -> String {
    std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_owned())
}

fn bash() -> String {
    find_program("bash", &host_path())
        .expect("bash on PATH")
        .to_string_lossy()
        .into_owned()
}

fn spec(program: &str, args: &[&str], cwd: &Path) -> ProcessSpec {
    ProcessSpec {
        program: program.to_owned(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env: vec![("PATH".to_owned(), host_path())],
        cwd: cwd.to_path_buf(),
        timeout: None,
    }
}

fn bash_c(script: &str, cwd: &Path) -> ProcessSpec {
    spec(&bash(), &["-c", script], cwd)
}

type Lines = Vec<(OutputStream, String)>;

async fn run_with(
    spec: &ProcessSpec,
    stop: StopPolicy,
    cancel: &CancellationToken,
) -> (ProcessExit, Lines) {
    let mut lines = Vec::new();
    let exit = run_process(
        spec,
        stop,
        &mut |s, l| lines.push((s, l.to_owned())),
        cancel,
    )
    .await
    .unwrap();
    (exit, lines)
}

/// Runs `spec` and cancels it once it printed `ready` (so its traps are in place).
async fn run_cancelled_when_ready(
    spec: &ProcessSpec,
    stop: StopPolicy,
) -> (ProcessExit, Lines, Duration) {
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let mut lines = Vec::new();
    let mut ready_at = None;
    let exit = run_process(
        spec,
        stop,
        &mut |s, l| {
            if l == "ready" {
                ready_at = Some(Instant::now());
                trigger.cancel();
            }
            lines.push((s, l.to_owned()));
        },
        &cancel,
    )
    .await
    .unwrap();
    let stopping = ready_at.expect("the script printed ready").elapsed();
    (exit, lines, stopping)
}

async fn run(spec: &ProcessSpec) -> (ProcessExit, Lines) {
    run_with(spec, SHORT, &CancellationToken::new()).await
}

fn texts(lines: &Lines, stream: OutputStream) -> Vec<&str> {
    lines
        .iter()
        .filter(|(s, _)| *s == stream)
        .map(|(_, l)| l.as_str())
        .collect()
}

fn kill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[tokio::test]
async fn exit_codes_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _) = run(&bash_c("exit 0", dir.path())).await;
    assert!(ok.success());
    assert_eq!((ok.code, ok.signal), (Some(0), None));
    let (failed, _) = run(&bash_c("exit 3", dir.path())).await;
    assert_eq!(failed.code, Some(3));
    assert!(!failed.success() && !failed.cancelled && !failed.timed_out);
    let (killed, _) = run(&bash_c("kill -KILL $$", dir.path())).await;
    assert_eq!((killed.code, killed.signal), (None, Some(9)));
}

#[tokio::test]
async fn environment_is_exactly_the_given_one() {
    let dir = tempfile::tempdir().unwrap();
    // The test process has HOME, CARGO_* and more; none of them may reach the child.
    assert!(std::env::vars().count() > 2);
    let env = find_program("env", &host_path()).unwrap();
    let mut s = spec(env.to_str().unwrap(), &[], dir.path());
    s.env = vec![
        ("FOO".to_owned(), "bar baz".to_owned()),
        ("EMPTY".to_owned(), String::new()),
    ];
    let (exit, lines) = run(&s).await;
    assert!(exit.success());
    let mut seen = texts(&lines, OutputStream::Stdout);
    seen.sort_unstable();
    assert_eq!(seen, ["EMPTY=", "FOO=bar baz"]);
}

#[tokio::test]
async fn runs_in_the_given_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (exit, lines) = run(&bash_c("pwd -P", dir.path())).await;
    assert!(exit.success());
    let expected = dir.path().canonicalize().unwrap();
    assert_eq!(
        texts(&lines, OutputStream::Stdout),
        [expected.to_str().unwrap()]
    );
}

#[tokio::test]
async fn missing_directory_and_program_are_reported_with_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let gone = bash_c("true", &dir.path().join("missing"));
    let err = run_process(&gone, SHORT, &mut |_, _| {}, &cancel)
        .await
        .unwrap_err();
    assert!(matches!(err, HostError::Cwd { .. }), "{err:?}");
    let missing = spec("/nonexistent/bash", &[], dir.path());
    let err = run_process(&missing, SHORT, &mut |_, _| {}, &cancel)
        .await
        .unwrap_err();
    assert!(matches!(err, HostError::Spawn { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("cannot start `/nonexistent/bash`: "),
        "{text}"
    );
    assert!(text.ends_with("install it or pick another shell"), "{text}");
}

#[tokio::test]
async fn interleaved_stdout_and_stderr_arrive_in_order_per_stream() {
    let dir = tempfile::tempdir().unwrap();
    let script = "for i in $(seq 1 300); do echo out$i; echo err$i >&2; done";
    let (exit, lines) = run(&bash_c(script, dir.path())).await;
    assert!(exit.success());
    let want_out: Vec<String> = (1..=300).map(|i| format!("out{i}")).collect();
    let want_err: Vec<String> = (1..=300).map(|i| format!("err{i}")).collect();
    assert_eq!(texts(&lines, OutputStream::Stdout), want_out);
    assert_eq!(texts(&lines, OutputStream::Stderr), want_err);
}

#[tokio::test]
async fn lines_arrive_while_the_process_runs() {
    let dir = tempfile::tempdir().unwrap();
    let s = bash_c("echo first; sleep 1; echo second", dir.path());
    let start = Instant::now();
    let mut first_at = None;
    let exit = run_process(
        &s,
        SHORT,
        &mut |_, l| {
            if l == "first" {
                first_at = Some(start.elapsed());
            }
        },
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(exit.success());
    let first_at = first_at.expect("first line delivered");
    assert!(first_at < Duration::from_millis(800), "{first_at:?}");
}

#[tokio::test]
async fn large_output_and_long_lines_are_delivered_whole() {
    let dir = tempfile::tempdir().unwrap();
    // 100k short lines on stdout, and one 150 KB line on stderr (split at 64 KiB).
    let script = "seq 1 100000; head -c 150000 /dev/zero | tr '\\0' x >&2";
    let (exit, lines) = run(&bash_c(script, dir.path())).await;
    assert!(exit.success());
    let out = texts(&lines, OutputStream::Stdout);
    assert_eq!(out.len(), 100_000);
    assert_eq!((out[0], out[99_999]), ("1", "100000"));
    let err: Vec<usize> = texts(&lines, OutputStream::Stderr)
        .iter()
        .map(|l| l.len())
        .collect();
    assert_eq!(err, [65_536, 65_536, 150_000 - 2 * 65_536]);
}

#[tokio::test]
async fn final_line_without_newline_and_crlf() {
    let dir = tempfile::tempdir().unwrap();
    let (exit, lines) = run(&bash_c(r"printf 'a\r\nb\n\nlast'", dir.path())).await;
    assert!(exit.success());
    assert_eq!(texts(&lines, OutputStream::Stdout), ["a", "b", "", "last"]);
}

#[tokio::test]
async fn cancel_escalates_to_term_when_int_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let script = "trap '' INT; echo ready; sleep 30";
    let (exit, _, took) = run_cancelled_when_ready(&bash_c(script, dir.path()), SHORT).await;
    assert!(exit.cancelled && !exit.timed_out && !exit.success());
    assert_eq!(exit.signal, Some(15), "{exit:?}");
    assert!(took >= SHORT.interrupt_grace, "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn cancel_escalates_to_kill_when_int_and_term_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let script = "trap '' INT TERM; echo ready; sleep 30";
    let (exit, _, took) = run_cancelled_when_ready(&bash_c(script, dir.path()), SHORT).await;
    assert!(exit.cancelled);
    assert_eq!(exit.signal, Some(9), "{exit:?}");
    assert!(
        took >= SHORT.interrupt_grace + SHORT.terminate_grace,
        "{took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn cooperative_process_stops_at_sigint_without_waiting_for_graces() {
    let dir = tempfile::tempdir().unwrap();
    let slow = StopPolicy {
        interrupt_grace: Duration::from_secs(20),
        terminate_grace: Duration::from_secs(20),
    };
    let script = "trap 'echo got INT; exit 130' INT; echo ready; sleep 30";
    let (exit, lines, took) = run_cancelled_when_ready(&bash_c(script, dir.path()), slow).await;
    assert!(exit.cancelled);
    assert_eq!(exit.code, Some(130), "{exit:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(texts(&lines, OutputStream::Stdout), ["ready", "got INT"]);
}

#[tokio::test]
async fn timeout_stops_the_process_and_sets_timed_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = bash_c("echo started; sleep 30", dir.path());
    s.timeout = Some(Duration::from_millis(300));
    let start = Instant::now();
    let (exit, lines) = run(&s).await;
    assert!(
        exit.timed_out && !exit.cancelled && !exit.success(),
        "{exit:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(exit.duration >= Duration::from_millis(300), "{exit:?}");
    assert_eq!(texts(&lines, OutputStream::Stdout), ["started"]);
}

/// Steps start with SIGINT at its default action even when the runner was started with it
/// ignored (`runner &` in a script): the cooperative-stop test, run again in a copy of this
/// test binary whose SIGINT is ignored from the start, still stops at SIGINT.
#[test]
fn steps_take_sigint_even_when_the_runner_was_started_ignoring_it() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(bash())
        .args(["-c", "trap '' INT; exec \"$0\" \"$@\""])
        .arg(&exe)
        .args([
            "--exact",
            "host_backend::cooperative_process_stops_at_sigint_without_waiting_for_graces",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}

#[tokio::test]
async fn a_process_that_missed_the_sigint_gets_it_again_within_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let slow = StopPolicy {
        interrupt_grace: Duration::from_secs(20),
        terminate_grace: Duration::from_secs(20),
    };
    // The SIGINT lands while the process ignores it, the way a shell's forked copy takes
    // it between fork and exec; then the process runs on with the default action, as the
    // exec'd program does. Only a second SIGINT stops it before the 20 s grace is over.
    let script = r#"perl -e '$SIG{INT} = "IGNORE"; $| = 1; print "ready\n"; select(undef, undef, undef, 0.5); $SIG{INT} = "DEFAULT"; print "default again\n"; sleep 30; print "survived\n"'"#;
    let (exit, lines, took) = run_cancelled_when_ready(
        &spec(&bash(), &["-c", &format!("exec {script}")], dir.path()),
        slow,
    )
    .await;
    assert!(exit.cancelled);
    assert_eq!(exit.signal, Some(2), "{exit:?} {lines:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // Under heavy load the first SIGINT may come only after the default is back; the
    // process then ends at it directly, which is no failure either.
    let out = texts(&lines, OutputStream::Stdout);
    assert_eq!(out.first().copied(), Some("ready"), "{out:?}");
    assert!(!out.contains(&"survived"), "{out:?}");
}

#[tokio::test]
async fn child_ignoring_sigint_is_killed_with_the_group() {
    let dir = tempfile::tempdir().unwrap();
    // The child ignores SIGINT (and says so once its trap is set); the main shell dies at
    // SIGINT, the child must still go.
    let script = r#"sh -c 'trap "" INT; echo pid $$; echo ready; sleep 30; echo survived' & wait"#;
    let (exit, lines, took) = run_cancelled_when_ready(&bash_c(script, dir.path()), SHORT).await;
    assert!(exit.cancelled);
    assert_eq!(
        exit.signal,
        Some(2),
        "the main shell ends at SIGINT: {exit:?}"
    );
    let out = texts(&lines, OutputStream::Stdout);
    let child: i32 = out
        .iter()
        .find_map(|l| l.strip_prefix("pid ")?.parse().ok())
        .unwrap();
    let gone = gone(child);
    if !gone {
        kill(child);
    }
    assert!(gone, "the child {child} outlived the stop sequence");
    assert!(!out.contains(&"survived"));
    assert!(
        took >= SHORT.interrupt_grace,
        "SIGTERM comes after the grace: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn background_grandchild_holding_stdout_does_not_hang_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let script = "sleep 30 & echo $!; seq 1 2000; echo done";
    let start = Instant::now();
    let (exit, lines) = run(&bash_c(script, dir.path())).await;
    let took = start.elapsed();
    let out = texts(&lines, OutputStream::Stdout);
    let sleeper: i32 = out[0].parse().unwrap();
    // Left running, as on GitHub (teardown ends it); the test cleans up.
    let alive = !gone(sleeper);
    kill(sleeper);
    assert!(exit.success());
    let want: Vec<String> = (1..=2000).map(|i| i.to_string()).collect();
    assert_eq!(
        out[1..2001],
        want,
        "output written before exit is all delivered"
    );
    assert_eq!(out[2001], "done");
    assert!(
        alive,
        "a background process of a successful step is left alone"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
}

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

async fn run_script(shell: Option<&str>, body: &str) -> (ProcessExit, Lines) {
    let dir = tempfile::tempdir().unwrap();
    let shell = resolve_shell(shell, &host_path()).unwrap();
    let script = write_script(dir.path(), &format!("script{}", shell.extension), body);
    let (program, args) = shell.command_for(&script);
    let mut s = spec(&program, &[], dir.path());
    s.args = args;
    // pyenv's shims need HOME; pass it on explicitly, as a job would.
    if let Ok(home) = std::env::var("HOME") {
        s.env.push(("HOME".to_owned(), home));
    }
    run(&s).await
}

#[tokio::test]
async fn explicit_bash_has_pipefail_default_does_not() {
    let (explicit, _) = run_script(Some("bash"), "false | true\necho after\n").await;
    assert!(!explicit.success());
    assert_eq!(explicit.code, Some(1));
    let (default, lines) = run_script(None, "false | true\necho after\n").await;
    assert!(default.success(), "{default:?}");
    assert_eq!(texts(&lines, OutputStream::Stdout), ["after"]);
    // -e in both: a failing command stops the script.
    let (errexit, lines) = run_script(None, "false\necho after\n").await;
    assert_eq!(errexit.code, Some(1));
    assert!(lines.is_empty());
}

#[tokio::test]
async fn python_shell_runs_a_py_script() {
    if find_program("python", &host_path()).is_none() {
        eprintln!("skipped: no python on PATH");
        return;
    }
    let (exit, lines) = run_script(
        Some("python"),
        "import sys\nprint('ext', sys.argv[0].rsplit('.', 1)[-1])\n",
    )
    .await;
    assert!(exit.success(), "{exit:?} {lines:?}");
    assert_eq!(texts(&lines, OutputStream::Stdout), ["ext py"]);
}

#[tokio::test]
async fn custom_perl_shell_runs_the_script() {
    if find_program("perl", &host_path()).is_none() {
        eprintln!("skipped: no perl on PATH");
        return;
    }
    let (exit, lines) = run_script(
        Some("perl {0}"),
        "print \"sum \", 2 + 3, \"\\n\"; exit 4;\n",
    )
    .await;
    assert_eq!(exit.code, Some(4));
    assert_eq!(texts(&lines, OutputStream::Stdout), ["sum 5"]);
}

#[test]
fn missing_shell_is_not_found_with_remedy() {
    let empty = tempfile::tempdir().unwrap();
    let path = empty.path().to_string_lossy().into_owned();
    let err = resolve_shell(Some("pwsh"), &path).unwrap_err();
    assert!(matches!(&err, ShellError::NotFound { shell, .. } if shell == "pwsh"));
    assert!(
        err.to_string().contains("install it or set `shell:`"),
        "{err}"
    );
    // Without bash and sh, the default shell cannot be found either.
    assert!(matches!(
        resolve_shell(None, &path),
        Err(ShellError::NotFound { .. })
    ));
}

#[tokio::test]
async fn spawn_overhead_compared_with_std() {
    const RUNS: u32 = 50;
    let dir = tempfile::tempdir().unwrap();
    let truth = find_program("true", &host_path()).unwrap();
    let s = spec(truth.to_str().unwrap(), &[], dir.path());
    let cancel = CancellationToken::new();
    let start = Instant::now();
    for _ in 0..RUNS {
        let exit = run_process(&s, SHORT, &mut |_, _| {}, &cancel)
            .await
            .unwrap();
        assert!(exit.success());
    }
    let ours = start.elapsed() / RUNS;
    let start = Instant::now();
    for _ in 0..RUNS {
        let status = std::process::Command::new(&truth)
            .env_clear()
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
    let plain = start.elapsed() / RUNS;
    println!(
        "spawn overhead over {RUNS} runs: run_process {ours:?}/run, std::process::Command {plain:?}/run"
    );
}
