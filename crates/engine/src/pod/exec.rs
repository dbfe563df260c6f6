//! One step process in the job pod over `pods/exec`: one exec a step, which also brings
//! back the `GITHUB_*` files the step wrote.
//!
//! The exec's command line holds nothing of the step (it reaches the API server's audit
//! log): `sh`, which reads its input from stdin, or for a long input `sh -c '...; p=$(head
//! -c <length>) && eval "$p"'`. The input ends in-band (its closing brace, or the length),
//! never by closing stdin, which only `v5.channel.k8s.io` can do without closing the whole
//! exec (see [`step_exec`]). The input is a shell script ([`step_input`]) that writes the
//! step's script, empties the `GITHUB_*` files, exports the environment (secrets
//! included, which is why it travels this way; it never lands in a file in the pod, so a
//! later step cannot read this one's secrets), goes to the working directory and starts
//! the step in a session of its own, writing its pid to `_step/pid`. The exec's first
//! stdout line, the [`GREETING`], comes before the input is read in full (and is dropped):
//! it keeps Nagle's algorithm from holding the input's second frame for 40 ms. Output
//! lines stream back as they come; the exit code comes from the exec's status. Stopping
//! follows the host policy: `kill -INT`, then `-TERM`, then `-KILL` to the step's process
//! group, each from its own exec, until the status arrives.

//! Once the step has ended and its output is copied, the exec's shell writes a boundary
//! line with a nonce made for this step, then the non-empty `GITHUB_*` files, to its
//! stdout; the stdout reader ([`StepStdout`]) hands the lines before the boundary to the
//! log (a last line without newline included) and returns what follows as
//! [`StepFilesBack`]. An exec that ends without the boundary (its shell killed, the
//! stream lost) leaves the files empty, and the engine says so in a runner line.
//!
//! Few processes a step (each costs milliseconds, on a busy node more): besides the
//! step's own, two `cat`s, `setsid` and a `sleep` that bounds the copying after the step
//! (`rm` and `mkfifo` only when the last step's FIFOs cannot serve); no `tar`, no script
//! file of the runner's own.

use std::time::Duration;

use kube::api::AttachParams;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::step_stdout::{
    BOUNDARY_PREFIX, GREETING, STEP_FILES, StepFilesBack, StepStdout, files_listing,
};
use super::{JobPod, POD_NAME, POD_TEMP, PodError, STEPS_CONTAINER};
use hr_cluster::{describe, retry};
use hr_process::budget::{OutputBudget, OutputSink, room_in};
use hr_process::host::{DRAIN_AFTER_EXIT, OutputStream, ProcessExit, StopPolicy};

/// How long a stop signal's exec may take before the next phase goes on regardless.
const SIGNAL_EXEC_LIMIT: Duration = Duration::from_secs(10);

/// One step process for the pod, its paths already in the pod's terms.
#[derive(Debug, Clone)]
pub struct PodProcess {
    pub program: String,
    pub args: Vec<String>,
    /// The complete environment (a later entry wins over an earlier one of the same name).
    pub env: Vec<(String, String)>,
    pub cwd: String,
    /// The workspace, created if missing.
    pub workspace: String,
    /// Files to place under the pod's temp folder first (relative path, bytes): the script.
    pub files: Vec<(String, Vec<u8>)>,
    pub timeout: Option<Duration>,
}

/// How a step ended in the pod: its process's exit and the files it wrote.
#[derive(Debug)]
pub struct PodStepEnd {
    pub exit: ProcessExit,
    pub files: StepFilesBack,
}

/// `'text'` for sh, safe for any bytes but NUL.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// `_step/env.sh`: the environment as `export` lines (the last value of a name wins;
/// names sh cannot export are left out, as a container runtime would refuse them).
fn env_script(env: &[(String, String)]) -> String {
    let mut last: Vec<(&str, &str)> = Vec::new();
    for (k, v) in env {
        match last.iter_mut().find(|(name, _)| *name == k) {
            Some(entry) => entry.1 = v,
            None => last.push((k, v)),
        }
    }
    let mut out = String::new();
    for (k, v) in last {
        if is_name(k) && !v.contains('\0') {
            out.push_str(&format!("export {k}={}\n", quote(v)));
        }
    }
    out
}

/// `printf '%b' '...'` arguments that print `bytes` exactly, in any sh (dash, bash,
/// busybox): backslashes doubled, NUL as `\0000`, `'` closed and reopened.
fn printf_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = b"'%b' '".to_vec();
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(br"\\"),
            0 => out.extend_from_slice(br"\0000"),
            b'\'' => out.extend_from_slice(br"'\''"),
            _ => out.push(b),
        }
    }
    out.push(b'\'');
    out
}

/// The launch of the step's process: a shell that writes its pid (the step's session
/// and process group) to `_step/pid` and becomes the step. A step that is itself
/// `sh -c SCRIPT ...` (a `run:` step without `shell:`) is that shell, the pid written
/// first in its script: one shell fewer.
fn launch(process: &PodProcess, temp: &str) -> String {
    let pid = format!("echo $$ >{temp}/_step/pid");
    let quoted = |args: &[String]| args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ");
    match process.args.as_slice() {
        [c, script, rest @ ..] if process.program == "sh" && c == "-c" => {
            format!(
                "sh -c {} {}",
                quote(&format!("{pid}\n{script}")),
                quoted(rest)
            )
        }
        args => format!(
            "sh -c {} step {} {}",
            quote(&format!("{pid}; exec \"$@\"")),
            quote(&process.program),
            quoted(args)
        ),
    }
}

/// What a step's exec reads from its stdin and runs (see [`step_exec`]), with `temp`
/// the pod's temp folder ([`POD_TEMP`]): one brace group, so a cut-off input is a syntax
/// error that runs nothing. It writes the step's files (the script) and empties the
/// `GITHUB_*` files, exports the environment (secrets included, which is why it travels
/// this way; it is never written to a file in the pod), goes to the working directory
/// and starts the step in a session of its own (with util-linux's `setsid -w`, found
/// once per pod; busybox's `setsid` cannot wait, so there the step shares the exec's
/// process group and a stop signal reaches its main process only), its output through
/// two FIFOs that this shell's own `cat`s copy to the exec's streams. A background
/// process the step leaves (`server &`) holds only a FIFO, never the exec's stdout: a
/// kubelet ends an exec's stream only when every holder of its stdout has closed it
/// (kubernetes/kubernetes#44371), so the step would otherwise last as long as its
/// background process. Once the step's main process has exited, its output is copied
/// for at most 200 ms more, then the `cat`s are stopped (as on the host: later output of
/// a background process is lost). The FIFOs serve the next step too (no `rm`, no
/// `mkfifo`) when both `cat`s ended at their end of file, so nothing held them open
/// (`_step/fifos` then says `clean`); after `cat`s that had to be stopped, or an exec that
/// did not get that far, the next step makes new ones, so no process left behind writes
/// into a later step's log. The variables it sets before the step starts have
/// names no step's environment uses (`_hr_*`): the step's variables are exported in this
/// shell, so assigning one of those names would change the step's value.
///
/// Last, once the `cat`s have ended, it writes the step's `GITHUB_*` files to its stdout
/// after the boundary line (see [`StepStdout`]): `\n<boundary>\n`, then for each
/// non-empty file `name size\n` and its bytes (`name size unsent\n` alone for one over
/// [`SENT_UP_TO`] bytes, which the engine drops unread anyway), then `end\n`. Its early
/// exits (no working directory, ...) do so too.
pub(super) fn step_input(process: &PodProcess, boundary: &str, temp: &str) -> Vec<u8> {
    let mut out = b"{\nexec </dev/null\nset +e\n".to_vec();
    out.extend_from_slice(
        format!(
            "{{ [ -d {temp}/_step ] && [ -d {temp}/_files ]; }} || mkdir -p {temp}/_step {temp}/_files || exit 1\n"
        )
        .as_bytes(),
    );
    for (name, bytes) in &process.files {
        let path = quote(&format!("{temp}/{name}"));
        if let Some((parent, _)) = name.rsplit_once('/') {
            let parent = quote(&format!("{temp}/{parent}"));
            out.extend_from_slice(format!("[ -d {parent} ] || mkdir -p {parent}\n").as_bytes());
        }
        out.extend_from_slice(b"printf ");
        out.extend_from_slice(&printf_bytes(bytes));
        out.extend_from_slice(format!(" >{path}\n").as_bytes());
    }
    for name in STEP_FILES {
        out.extend_from_slice(format!(": >{temp}/_files/{name}\n").as_bytes());
    }
    // The boundary never stands alone on a line of this input: printing it does not
    // print the boundary line.
    let (head, tail) = boundary.split_at(boundary.len().min(BOUNDARY_PREFIX.len()));
    out.extend_from_slice(
        format!(
            ": >{temp}/_step/pid\n\
             _hr_files() {{\n\
             printf '\\n{head}%s\\n' {tail}\n\
             {listing}\
             }}\n",
            listing = files_listing(temp),
        )
        .as_bytes(),
    );
    out.extend_from_slice(env_script(&process.env).as_bytes());
    let launch = launch(process, temp);
    out.extend_from_slice(
        format!(
            "[ -d {workspace} ] || mkdir -p {workspace}\n\
             cd {cwd} || {{ echo \"the working directory {cwd_text} does not exist in the job pod\" >&2; _hr_files; exit 1; }}\n\
             _hr_fifos=\n\
             {{ read _hr_fifos <{temp}/_step/fifos; }} 2>/dev/null\n\
             echo busy >{temp}/_step/fifos\n\
             if [ \"$_hr_fifos\" != clean ] || [ ! -p {temp}/_step/out ] || [ ! -p {temp}/_step/err ]; then\n\
             rm -f {temp}/_step/out {temp}/_step/err\n\
             mkfifo {temp}/_step/out {temp}/_step/err || {{ _hr_files; exit 1; }}\n\
             fi\n\
             cat {temp}/_step/out & _hr_out=$!\n\
             cat {temp}/_step/err >&2 & _hr_err=$!\n\
             if [ ! -e {temp}/_step/setsid-w ] && [ ! -e {temp}/_step/setsid-none ]; then\n\
             if setsid -w true >/dev/null 2>&1; then : >{temp}/_step/setsid-w; else : >{temp}/_step/setsid-none; fi\n\
             fi\n\
             if [ -e {temp}/_step/setsid-w ]; then\n\
             setsid -w {launch} </dev/null >{temp}/_step/out 2>{temp}/_step/err\n\
             else\n\
             {launch} </dev/null >{temp}/_step/out 2>{temp}/_step/err\n\
             fi\n\
             code=$?\n\
             (sleep 0.2; echo held >{temp}/_step/fifos; kill \"$_hr_out\" \"$_hr_err\") </dev/null >/dev/null 2>&1 & k=$!\n\
             wait \"$_hr_out\"; _hr_o=$?\n\
             wait \"$_hr_err\"; _hr_e=$?\n\
             kill \"$k\" 2>/dev/null\n\
             if [ \"$_hr_o$_hr_e\" = 00 ]; then read _hr_fifos <{temp}/_step/fifos; [ \"$_hr_fifos\" = busy ] && echo clean >{temp}/_step/fifos; fi\n\
             _hr_files\n\
             exit $code\n\
             }}\n",
            workspace = quote(&process.workspace),
            cwd = quote(&process.cwd),
            cwd_text = process.cwd.replace(['"', '\\', '$', '`'], "_"),
        )
        .as_bytes(),
    );
    out
}

/// The input a shell reads from the exec's stdin itself; a longer one goes through
/// `head -c`: bash (`/bin/sh` of Fedora or UBI images) reads a script from a pipe a byte
/// at a time, dash and busybox in blocks.
const DIRECT_INPUT_UP_TO: usize = 16 * 1024;

/// The command and stdin of a step's exec, `input` being [`step_input`]'s: the command
/// holds nothing of the step. The input ends in-band, so the exec works on every
/// protocol an API server speaks: only `v5.channel.k8s.io` (Kubernetes 1.30+) can
/// half-close stdin; on `v4.channel.k8s.io` a client ends stdin only by closing the whole
/// WebSocket, which loses the step's output and exit status (kube-rs's
/// `remote_command.rs`). The input is one brace group: `sh` reads it from stdin up to its
/// closing brace, runs it, and the group's first command turns the shell's stdin to
/// `/dev/null`. An input over [`DIRECT_INPUT_UP_TO`] bytes is read by `head -c <length>`
/// (the command then holds its length) and run with `eval`. Either way the
/// [`GREETING`] comes first.
fn step_exec(input: Vec<u8>) -> (Vec<String>, Vec<u8>) {
    step_exec_up_to(input, DIRECT_INPUT_UP_TO)
}

/// [`step_exec`] with `direct_up_to` for [`DIRECT_INPUT_UP_TO`].
fn step_exec_up_to(input: Vec<u8>, direct_up_to: usize) -> (Vec<String>, Vec<u8>) {
    let greet = format!("printf '{GREETING}\\n'");
    if input.len() <= direct_up_to {
        let mut stdin = format!("{greet}\n").into_bytes();
        stdin.extend_from_slice(&input);
        return (vec!["sh".into()], stdin);
    }
    let command = vec![
        "sh".into(),
        "-c".into(),
        format!("{greet}; p=$(head -c {}) && eval \"$p\"", input.len()),
    ];
    (command, input)
}

fn exec_error(phase: &'static str) -> impl Fn(String) -> PodError {
    move |message| PodError::Exec { phase, message }
}

/// The exit code a finished exec's `Status` carries (`None`: no code in it).
pub(super) fn exit_code(
    status: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Status,
) -> Option<i32> {
    if status.status.as_deref() == Some("Success") {
        return Some(0);
    }
    status
        .details
        .as_ref()?
        .causes
        .as_ref()?
        .iter()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))?
        .message
        .as_deref()?
        .trim()
        .parse()
        .ok()
}

/// One output stream of the exec, read on the caller's task.
struct Stream<R> {
    reader: Option<R>,
    kind: OutputStream,
    splitter: StepStdout,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> Stream<R> {
    fn new(reader: Option<R>, kind: OutputStream, boundary: Option<&str>) -> Self {
        Stream {
            reader,
            kind,
            splitter: StepStdout::new(boundary),
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Waits for room in the sink's budget (unless the rest is files), then for the
    /// next bytes.
    async fn read(&mut self, budget: Option<&OutputBudget>) -> usize {
        let Some(reader) = self.reader.as_mut() else {
            return std::future::pending().await;
        };
        if !self.splitter.in_files() {
            room_in(budget).await;
        }
        self.buf.clear();
        reader.read_buf(&mut self.buf).await.unwrap_or(0)
    }

    fn deliver(&mut self, n: usize, on_line: &mut dyn OutputSink) {
        let kind = self.kind;
        let mut emit = |line: String, continued: bool| on_line.line(kind, &line, continued);
        if n == 0 {
            if self.reader.take().is_some() {
                self.splitter.finish(&mut emit);
            }
        } else {
            self.splitter.push(&self.buf[..n], &mut emit);
        }
    }
}

impl JobPod {
    /// Runs one step process in the pod (see the module docs), streaming its lines to
    /// `on_line`; a cancel or timeout stops it with the host's signal sequence. The
    /// `GITHUB_*` files the step wrote come back with it.
    pub async fn run_process(
        &self,
        process: &PodProcess,
        stop: StopPolicy,
        on_line: &mut dyn OutputSink,
        cancel: &CancellationToken,
    ) -> Result<PodStepEnd, PodError> {
        let boundary = format!("{BOUNDARY_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let (command, input) = step_exec(step_input(process, &boundary, POD_TEMP));
        let params = AttachParams::default()
            .container(STEPS_CONTAINER)
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .max_stdin_buf_size(64 * 1024)
            .max_stdout_buf_size(64 * 1024)
            .max_stderr_buf_size(64 * 1024);
        let start = Instant::now();
        // An error here came before the upgrade, so before the command started: a
        // transient one is retried like any API call.
        let pods = self.pods();
        let mut attached = retry(|| pods.exec(POD_NAME, command.clone(), &params))
            .await
            .map_err(|e| exec_error("starting the step")(describe(&e)))?;
        let status = attached.take_status().ok_or_else(|| {
            exec_error("starting the step")("the exec has no status channel".into())
        })?;
        let mut stdin = attached
            .stdin()
            .ok_or_else(|| exec_error("starting the step")("the exec has no stdin".into()))?;
        let mut out = Stream::new(attached.stdout(), OutputStream::Stdout, Some(&boundary));
        let mut err = Stream::new(attached.stderr(), OutputStream::Stderr, None);
        // The command knows the input's length; stdin is never shut down and is kept
        // until the status has come: ending it closes the whole socket on
        // `v4.channel.k8s.io` (and with kube-rs's duplex pipes a drop ends it too).
        stdin
            .write_all(&input)
            .await
            .map_err(|e| exec_error("sending the step")(e.to_string()))?;

        tokio::pin!(status);
        let deadline = process.timeout.map(|t| start + t);
        let timeout = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(timeout);
        let mut stopping: Option<(bool, usize, Instant)> = None;
        let phases = [
            ("INT", stop.interrupt_grace),
            ("TERM", stop.terminate_grace),
            ("KILL", Duration::from_secs(1)),
        ];
        let final_status = loop {
            let next_phase = async {
                match stopping {
                    Some((_, _, at)) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                n = out.read(on_line.budget()), if out.reader.is_some() => out.deliver(n, on_line),
                n = err.read(on_line.budget()), if err.reader.is_some() => err.deliver(n, on_line),
                s = &mut status => break s,
                () = cancel.cancelled(), if stopping.is_none() => {
                    stopping = Some((true, 0, Instant::now()));
                }
                () = &mut timeout, if stopping.is_none() => {
                    stopping = Some((false, 0, Instant::now()));
                }
                () = next_phase => {
                    if let Some((cancelled, phase, _)) = stopping {
                        match phases.get(phase) {
                            Some((signal, grace)) => {
                                self.signal_step(signal).await;
                                stopping = Some((cancelled, phase + 1, Instant::now() + *grace));
                            }
                            // Signalled to the end and no status: the stream is gone.
                            None => break None,
                        }
                    }
                }
            }
        };
        let exited = start.elapsed();
        // What the streams still hold; the files may be longer than the pipes' buffers,
        // so while they come the limit moves on.
        let mut drain_until = Instant::now() + DRAIN_AFTER_EXIT;
        while out.reader.is_some() || err.reader.is_some() {
            tokio::select! {
                n = out.read(on_line.budget()), if out.reader.is_some() => {
                    out.deliver(n, on_line);
                    if out.splitter.in_files() {
                        drain_until = Instant::now() + DRAIN_AFTER_EXIT;
                    }
                }
                n = err.read(on_line.budget()), if err.reader.is_some() => err.deliver(n, on_line),
                () = tokio::time::sleep_until(drain_until) => break,
            }
        }
        out.deliver(0, on_line);
        err.deliver(0, on_line);
        attached.abort();
        drop(stdin);
        let (cancelled, timed_out) = match stopping {
            Some((true, _, _)) => (true, false),
            Some((false, _, _)) => (false, true),
            None => (false, false),
        };
        let code = match &final_status {
            Some(s) => exit_code(s),
            None if stopping.is_some() => None,
            None => {
                return Err(exec_error("running the step")(
                    "the exec ended without an exit status (the connection to the API server was lost)"
                        .into(),
                ));
            }
        };
        Ok(PodStepEnd {
            exit: ProcessExit {
                code,
                signal: None,
                timed_out,
                cancelled,
                duration: exited,
            },
            files: out.splitter.files(),
        })
    }

    /// Sends `signal` to the running step's process group (its pid from `_step/pid`;
    /// `kill -SIG -PGID`, as dash, bash and busybox all take it, not `-- -PGID`).
    /// Best effort: a failure shows up as the step not stopping, and the next phase follows.
    async fn signal_step(&self, signal: &str) {
        let script = format!(
            "p=$(cat {POD_TEMP}/_step/pid 2>/dev/null) || exit 0; kill -{signal} -$p 2>/dev/null || kill -{signal} $p 2>/dev/null; exit 0"
        );
        let command = vec!["sh".to_string(), "-c".to_string(), script];
        let _ = tokio::time::timeout(
            SIGNAL_EXEC_LIMIT,
            self.exec_output(command, "stopping the step"),
        )
        .await;
    }

    /// Runs `command` in the pod without stdin and returns its stdout once it has ended.
    pub(super) async fn exec_output(
        &self,
        command: Vec<String>,
        phase: &'static str,
    ) -> Result<Vec<u8>, PodError> {
        let params = AttachParams::default()
            .container(STEPS_CONTAINER)
            .stdout(true)
            .stderr(false)
            .max_stdout_buf_size(64 * 1024);
        let pods = self.pods();
        let mut attached = retry(|| pods.exec(POD_NAME, command.clone(), &params))
            .await
            .map_err(|e| exec_error(phase)(describe(&e)))?;
        let status = attached.take_status();
        let mut bytes = Vec::new();
        if let Some(mut stdout) = attached.stdout() {
            stdout
                .read_to_end(&mut bytes)
                .await
                .map_err(|e| exec_error(phase)(e.to_string()))?;
        }
        let code = match status {
            Some(status) => status.await.as_ref().and_then(exit_code),
            None => None,
        };
        let _ = attached.join().await;
        if code != Some(0) {
            return Err(exec_error(phase)(format!(
                "the command ended with {}",
                code.map_or_else(|| "no exit code".to_string(), |c| format!("exit code {c}"))
            )));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::step_stdout::SENT_UP_TO;
    use super::super::step_stdout::tests::{BOUNDARY, no_files, read_in};
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn env_script_quotes_values_and_keeps_the_last() {
        let env = vec![
            ("A".to_string(), "it's $HOME `x`".to_string()),
            ("B-bad".to_string(), "x".to_string()),
            ("A".to_string(), "second 'one'".to_string()),
        ];
        let script = env_script(&env);
        assert_eq!(script, "export A='second '\\''one'\\'''\n");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{script}printf %s \"$A\""))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "second 'one'");
    }

    #[test]
    fn the_exec_command_holds_nothing_of_the_step() {
        // Nothing of a step (env, script, paths) is in the URL, at most its input's length
        // (the input ends in-band: no stdin close, v4 servers have none).
        let (command, stdin) = step_exec(b"{\n}\n".to_vec());
        assert_eq!(command, vec!["sh"]);
        assert_eq!(stdin, b"printf 'hybrid-runner-step-started\\n'\n{\n}\n");
        let long = vec![b'\n'; DIRECT_INPUT_UP_TO + 1];
        let (command, stdin) = step_exec(long.clone());
        assert_eq!(
            command,
            vec![
                "sh",
                "-c",
                "printf 'hybrid-runner-step-started\\n'; p=$(head -c 16385) && eval \"$p\""
            ]
        );
        assert_eq!(stdin, long);
    }

    fn have(tool: &str) -> bool {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Runs the step's exec command on this host with `input` on its stdin, through
    /// `head -c` when `head` is set (whatever the input's length). Stdin stays open, as
    /// the runner keeps the exec's, unless `close` (a connection lost).
    fn run_input_with(input: &[u8], head: bool, close: bool) -> std::process::Output {
        use std::io::Write;
        let up_to = if head { 0 } else { DIRECT_INPUT_UP_TO };
        let (command, input) = step_exec_up_to(input.to_vec(), up_to);
        let mut child = std::process::Command::new(&command[0])
            .args(&command[1..])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&input).unwrap();
        if close {
            drop(stdin);
            return child.wait_with_output().unwrap();
        }
        let out = child.wait_with_output().unwrap();
        drop(stdin);
        out
    }

    fn run_input(input: &[u8]) -> std::process::Output {
        run_input_with(input, false, false)
    }

    #[test]
    fn printf_bytes_prints_any_bytes() {
        let bytes: Vec<u8> = (0..=255u8).chain(*b"\\c%s%%'\\0000-n").collect();
        for shell in ["sh", "dash", "bash", "busybox sh"] {
            if !have(shell.split(' ').next().unwrap()) {
                continue;
            }
            let mut script = b"printf ".to_vec();
            script.extend_from_slice(&printf_bytes(&bytes));
            let mut command = shell.split(' ');
            let out = std::process::Command::new(command.next().unwrap())
                .args(command)
                .arg("-c")
                .arg(std::ffi::OsStr::from_bytes(&script))
                .output()
                .unwrap();
            assert_eq!(out.stdout, bytes, "{shell}");
        }
    }

    /// The step's input itself, on this host, in a temporary folder as the temp folder.
    #[test]
    fn the_input_runs_the_step_then_lists_its_files() {
        if !["mkfifo", "head", "wc"].iter().all(|t| have(t)) {
            eprintln!("skipped: no mkfifo, head or wc");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let temp = dir.path().join("t");
        let temp_text = temp.display().to_string();
        let step = "cat \"$1\"; echo \"s=$s\"; echo err >&2; echo A=1 >> \"$GITHUB_ENV\"; \
                    printf x >> \"$GITHUB_STEP_SUMMARY\"; printf 'out\\nlast'; exit 4";
        let script: Vec<u8> = b"binary \0 \\c 'quoted' %s\n".to_vec();
        let process = PodProcess {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                step.into(),
                "sh".into(),
                format!("{temp_text}/sub/script.sh"),
            ],
            env: vec![
                ("GITHUB_ENV".into(), format!("{temp_text}/_files/set_env")),
                (
                    "GITHUB_STEP_SUMMARY".into(),
                    format!("{temp_text}/_files/step_summary"),
                ),
                ("s".into(), "mine".into()),
            ],
            cwd: dir.path().display().to_string(),
            workspace: dir.path().join("w").display().to_string(),
            files: vec![("sub/script.sh".into(), script.clone())],
            timeout: None,
        };
        let input = step_input(&process, BOUNDARY, &temp_text);
        assert!(
            !input
                .split(|&b| b == b'\n')
                .any(|l| l == BOUNDARY.as_bytes()),
            "the boundary stands alone in the input"
        );
        for head in [false, true] {
            let out = run_input_with(&input, head, false);
            assert_eq!(out.status.code(), Some(4));
            assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
            let mut lines = Vec::new();
            let mut stdout = StepStdout::new(Some(BOUNDARY));
            stdout.push(&out.stdout, &mut |l, _| lines.push(l));
            stdout.finish(&mut |l, _| lines.push(l));
            assert_eq!(
                lines,
                ["binary \0 \\c 'quoted' %s", "s=mine", "out", "last"]
            );
            let StepFilesBack::Files(files) = stdout.files() else {
                panic!("{:?}", String::from_utf8_lossy(&out.stdout));
            };
            let got: Vec<(&str, &[u8])> = files
                .iter()
                .map(|f| (f.name.as_str(), f.bytes.as_slice()))
                .collect();
            assert_eq!(got, [("set_env", &b"A=1\n"[..]), ("step_summary", b"x")]);
            assert!(dir.path().join("w").is_dir(), "the workspace is made");
            let pid = std::fs::read_to_string(temp.join("_step/pid")).unwrap();
            assert!(pid.trim().parse::<u32>().is_ok(), "{pid:?}");
        }

        // The next step starts with empty files; one over SENT_UP_TO comes back as its
        // size alone; a missing working directory still ends with the listing.
        let gone = PodProcess {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                format!(
                    "head -c {} /dev/zero >{temp_text}/_files/set_output",
                    SENT_UP_TO + 1
                ),
            ],
            ..process.clone()
        };
        let out = run_input(&step_input(&gone, BOUNDARY, &temp_text));
        let (lines, files) = read_in(&[&out.stdout]);
        assert!(lines.is_empty(), "{lines:?}");
        let StepFilesBack::Files(files) = files else {
            panic!("{files:?}");
        };
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(files[0].name, "set_output");
        assert_eq!((files[0].size, files[0].bytes.len()), (SENT_UP_TO + 1, 0));
        let gone = PodProcess {
            cwd: dir.path().join("missing").display().to_string(),
            ..process
        };
        let out = run_input(&step_input(&gone, BOUNDARY, &temp_text));
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
        let (lines, files) = read_in(&[&out.stdout]);
        assert!(lines.is_empty(), "{lines:?}");
        assert!(no_files(&files), "{files:?}");

        // A cut-off input runs nothing (the connection lost: stdin ends).
        for head in [false, true] {
            let cut = &input[..input.len() - 3];
            let out = run_input_with(cut, head, true);
            let (lines, files) = read_in(&[&out.stdout]);
            assert!(lines.is_empty(), "{lines:?}");
            assert!(matches!(files, StepFilesBack::Missing), "{files:?}");
            assert_ne!(out.status.code(), Some(0));
        }
    }

    /// The FIFOs serve the next step when nothing held them; after a background process
    /// held one, the next step has new ones and never sees that process's output.
    #[test]
    fn fifos_are_kept_only_when_nothing_held_them() {
        if !["mkfifo", "head", "wc", "sleep"].iter().all(|t| have(t)) {
            eprintln!("skipped: no mkfifo, head, wc or sleep");
            return;
        }
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let temp = dir.path().join("t");
        let temp_text = temp.display().to_string();
        let step = |script: &str| PodProcess {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            env: Vec::new(),
            cwd: dir.path().display().to_string(),
            workspace: dir.path().display().to_string(),
            files: Vec::new(),
            timeout: None,
        };
        let run = |script: &str| {
            let out = run_input(&step_input(&step(script), BOUNDARY, &temp_text));
            let (lines, _) = read_in(&[&out.stdout]);
            let fifo = std::fs::metadata(temp.join("_step/out")).unwrap().ino();
            let state = std::fs::read_to_string(temp.join("_step/fifos")).unwrap();
            (lines, fifo, state.trim().to_string())
        };
        let (lines, first, state) = run("echo one");
        assert_eq!((lines, state.as_str()), (vec!["one".to_string()], "clean"));
        let (_, second, _) = run("echo two");
        assert_eq!(second, first, "a clean FIFO serves the next step");
        let started = std::time::Instant::now();
        let (lines, third, state) = run("(sleep 2; echo too-late) & echo three");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!((lines, state.as_str()), (vec!["three".to_string()], "held"));
        assert_eq!(third, first);
        let (lines, fourth, state) = run("sleep 2; echo four");
        assert_eq!((lines, state.as_str()), (vec!["four".to_string()], "clean"));
        assert_ne!(fourth, first, "a FIFO something held is made anew");
    }
}
