//! One step process in the job pod over `pods/exec`.
//!
//! The exec's command line holds nothing of the step but the length of its input (it
//! reaches the API server's audit log): `sh -c 'mkdir -p /__t && head -c <length> | tar -x
//! -C /__t -f - && exec sh /__t/_step/run.sh </dev/null'`. The input ends in-band (the
//! length), never by closing stdin, which only `v5.channel.k8s.io` can do without closing
//! the whole exec (see [`step_command`]). Its stdin carries a tar with the step's script
//! and the files the step shares with the runner, `_step/env.sh` (the environment,
//! shell-quoted `export` lines: secrets included, which is why it travels this way) and
//! `_step/run.sh` (goes to the working directory and starts the step in a session of its
//! own, writing its pid to `_step/pid`; it removes `env.sh` once read, so a later step
//! cannot read this one's secrets), and empty `GITHUB_*` files. Output lines stream back as
//! they come; the exit code comes from the exec's status. Stopping follows the host policy:
//! `kill -INT`, then `-TERM`, then `-KILL` to the step's process group, each from its own
//! exec, until the status arrives. [`JobPod::read_step_files`] brings the `GITHUB_*` files
//! back after the step.

use std::time::Duration;

use kube::api::AttachParams;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::tar::{Entry, pack};
use super::{JobPod, POD_NAME, POD_TEMP, PodError, STEPS_CONTAINER};
use hr_cluster::{describe, retry};
use hr_process::budget::{OutputBudget, OutputSink, room_in};
use hr_process::host::{DRAIN_AFTER_EXIT, OutputStream, ProcessExit, StopPolicy};
use hr_process::lines::LineSplitter;

/// The `GITHUB_*` files, by their name in `_files/` (the same names on the host).
pub const STEP_FILES: [&str; 5] = [
    "set_env",
    "set_output",
    "add_path",
    "save_state",
    "step_summary",
];

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

/// The `GITHUB_*` files a step wrote (name in [`STEP_FILES`], content); unwritten ones
/// are left out.
pub type StepFileContents = Vec<(String, Vec<u8>)>;

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

/// `_step/run.sh`: into the working directory, then the step in its own session (with
/// util-linux's `setsid -w`; busybox's `setsid` cannot wait, so there the step shares
/// run.sh's process group and a stop signal reaches its main process only), its
/// output through two FIFOs that this script's own `cat`s copy to the exec's streams.
/// A background process the step leaves (`server &`) holds only a FIFO, never the exec's
/// stdout: a kubelet ends an exec's stream only when every holder of its stdout has
/// closed it (kubernetes/kubernetes#44371), so the step would otherwise last as long as
/// its background process. Once the step's main process has exited, its output is
/// copied for at most 200 ms more, then the `cat`s are stopped (as on the host: later
/// output of a background process is lost). The variables it sets before the step starts
/// have names no step's environment uses (`_hr_*`): `env.sh` exports the step's variables
/// in this script's shell, so assigning one of those names would change the step's value.
fn run_script(process: &PodProcess) -> String {
    let argv: Vec<String> = std::iter::once(&process.program)
        .chain(&process.args)
        .map(|a| quote(a))
        .collect();
    let argv = argv.join(" ");
    format!(
        "set +e\n\
         rm -f {temp}/_step/pid\n\
         . {temp}/_step/env.sh || exit 1\n\
         rm -f {temp}/_step/env.sh\n\
         mkdir -p {workspace}\n\
         cd {cwd} || {{ echo \"the working directory {cwd_text} does not exist in the job pod\" >&2; exit 1; }}\n\
         rm -f {temp}/_step/out {temp}/_step/err\n\
         mkfifo {temp}/_step/out {temp}/_step/err || exit 1\n\
         cat {temp}/_step/out & _hr_out=$!\n\
         cat {temp}/_step/err >&2 & _hr_err=$!\n\
         if setsid -w true >/dev/null 2>&1; then\n\
         setsid -w sh -c 'echo $$ > {temp}/_step/pid; exec \"$@\"' step {argv} </dev/null >{temp}/_step/out 2>{temp}/_step/err\n\
         else\n\
         sh -c 'echo $$ > {temp}/_step/pid; exec \"$@\"' step {argv} </dev/null >{temp}/_step/out 2>{temp}/_step/err\n\
         fi\n\
         code=$?\n\
         (sleep 0.2; kill \"$_hr_out\" \"$_hr_err\") </dev/null >/dev/null 2>&1 & k=$!\n\
         wait \"$_hr_out\" \"$_hr_err\"\n\
         kill \"$k\" 2>/dev/null\n\
         exit $code\n",
        temp = POD_TEMP,
        workspace = quote(&process.workspace),
        cwd = quote(&process.cwd),
        cwd_text = process.cwd.replace(['"', '\\', '$', '`'], "_"),
    )
}

/// The command of a step's exec: it holds nothing of the step but the length of the
/// archive on its stdin. `head -c` ends the input in-band, so the exec works on every
/// protocol an API server speaks: only `v5.channel.k8s.io` (Kubernetes 1.30+) can
/// half-close stdin; on `v4.channel.k8s.io` a client ends stdin only by closing the whole
/// WebSocket, which loses the step's output and exit status (kube-rs's
/// `remote_command.rs`). `tar` never sees the exec's stdin, which stays open: GNU tar
/// reads a pipe to its end even after the archive's end.
fn step_command(archive_len: usize) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!(
            "mkdir -p {POD_TEMP} && head -c {archive_len} | tar -x -C {POD_TEMP} -f - && \
             exec sh {POD_TEMP}/_step/run.sh </dev/null"
        ),
    ]
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
    splitter: LineSplitter,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> Stream<R> {
    fn new(reader: Option<R>, kind: OutputStream) -> Self {
        Stream {
            reader,
            kind,
            splitter: LineSplitter::default(),
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Waits for room in the sink's budget, then for the next bytes.
    async fn read(&mut self, budget: Option<&OutputBudget>) -> usize {
        let Some(reader) = self.reader.as_mut() else {
            return std::future::pending().await;
        };
        room_in(budget).await;
        self.buf.clear();
        reader.read_buf(&mut self.buf).await.unwrap_or(0)
    }

    fn deliver(&mut self, n: usize, on_line: &mut dyn OutputSink) {
        let kind = self.kind;
        let mut emit = |line: String, continued: bool| on_line.line(kind, &line, continued);
        if n == 0 {
            self.splitter.finish(&mut emit);
            self.reader = None;
        } else {
            self.splitter.push(&self.buf, &mut emit);
        }
    }
}

impl JobPod {
    /// Runs one step process in the pod (see the module docs), streaming its lines to
    /// `on_line`; a cancel or timeout stops it with the host's signal sequence.
    pub async fn run_process(
        &self,
        process: &PodProcess,
        stop: StopPolicy,
        on_line: &mut dyn OutputSink,
        cancel: &CancellationToken,
    ) -> Result<ProcessExit, PodError> {
        let env = env_script(&process.env);
        let run = run_script(process);
        let mut entries: Vec<Entry<'_>> = vec![
            ("_step", None),
            ("_step/env.sh", Some(env.as_bytes())),
            ("_step/run.sh", Some(run.as_bytes())),
            ("_files", None),
        ];
        let names: Vec<String> = STEP_FILES.iter().map(|f| format!("_files/{f}")).collect();
        for name in &names {
            entries.push((name, Some(b"")));
        }
        for (name, bytes) in &process.files {
            entries.push((name, Some(bytes)));
        }
        let archive = pack(&entries).map_err(|e| exec_error("packing the step")(e.to_string()))?;
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
        let command = step_command(archive.len());
        let mut attached = retry(|| pods.exec(POD_NAME, command.clone(), &params))
            .await
            .map_err(|e| exec_error("starting the step")(describe(&e)))?;
        let status = attached.take_status().ok_or_else(|| {
            exec_error("starting the step")("the exec has no status channel".into())
        })?;
        let mut stdin = attached
            .stdin()
            .ok_or_else(|| exec_error("starting the step")("the exec has no stdin".into()))?;
        let mut out = Stream::new(attached.stdout(), OutputStream::Stdout);
        let mut err = Stream::new(attached.stderr(), OutputStream::Stderr);
        // The command knows the archive's length; stdin is never shut down and is kept
        // until the status has come: ending it closes the whole socket on
        // `v4.channel.k8s.io` (and with kube-rs's duplex pipes a drop ends it too).
        stdin
            .write_all(&archive)
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
        let drain_until = Instant::now() + DRAIN_AFTER_EXIT;
        while out.reader.is_some() || err.reader.is_some() {
            tokio::select! {
                n = out.read(on_line.budget()), if out.reader.is_some() => out.deliver(n, on_line),
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
        Ok(ProcessExit {
            code,
            signal: None,
            timed_out,
            cancelled,
            duration: exited,
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

    /// The `GITHUB_*` files the last step wrote (only those not empty).
    pub async fn read_step_files(&self) -> Result<StepFileContents, PodError> {
        let script = format!(
            "cd {POD_TEMP}/_files 2>/dev/null || exit 0; for f in {}; do if [ -s \"$f\" ]; then printf '%s %s\\n' \"$f\" \"$(wc -c < \"$f\" | tr -d ' ')\"; cat \"$f\"; fi; done",
            STEP_FILES.join(" ")
        );
        let bytes = self
            .exec_output(
                vec!["sh".into(), "-c".into(), script],
                "reading the step's GITHUB_* files",
            )
            .await?;
        parse_files(&bytes)
            .map_err(|e| exec_error("reading the step's GITHUB_* files")(e.to_string()))
    }
}

/// Why the listing of the step's files that came back from the pod cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StepFilesFormatError {
    #[error("a file header without its line end")]
    NoLineEnd,
    #[error("a bad file header {header:?}")]
    Header { header: String },
    #[error("a bad file size in {header:?}")]
    Size { header: String },
    #[error("a truncated or unknown file {name:?}")]
    Truncated { name: String },
}

/// `name size\n` + `size` bytes, repeated.
fn parse_files(mut bytes: &[u8]) -> Result<StepFileContents, StepFilesFormatError> {
    let mut files = Vec::new();
    while !bytes.is_empty() {
        let Some(eol) = bytes.iter().position(|&b| b == b'\n') else {
            return Err(StepFilesFormatError::NoLineEnd);
        };
        let header = String::from_utf8_lossy(&bytes[..eol]).into_owned();
        let Some((name, size)) = header.split_once(' ') else {
            return Err(StepFilesFormatError::Header { header });
        };
        let Ok(size) = size.trim().parse::<usize>() else {
            return Err(StepFilesFormatError::Size { header });
        };
        let rest = &bytes[eol + 1..];
        if rest.len() < size || !STEP_FILES.contains(&name) {
            return Err(StepFilesFormatError::Truncated {
                name: name.to_string(),
            });
        }
        files.push((name.to_string(), rest[..size].to_vec()));
        bytes = &rest[size..];
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // Nothing of a step (env, script, paths) is in the URL, only its input's length,
        // which ends the input in-band (no stdin close: v4 servers have none).
        assert_eq!(
            step_command(10240),
            vec![
                "sh",
                "-c",
                "mkdir -p /__t && head -c 10240 | tar -x -C /__t -f - && \
                 exec sh /__t/_step/run.sh </dev/null"
            ]
        );
    }

    #[test]
    fn files_parse_back() {
        let files = parse_files(b"set_env 4\nA=1\nset_output 0\n").unwrap();
        assert_eq!(
            files,
            vec![
                ("set_env".to_string(), b"A=1\n".to_vec()),
                ("set_output".to_string(), Vec::new())
            ]
        );
        assert!(parse_files(b"set_env 9\nA=1\n").is_err());
        assert!(parse_files(b"other 0\n").is_err());
    }
}
