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

use super::{JobPod, POD_NAME, POD_TEMP, PodError, STEPS_CONTAINER};
use crate::step_files::{COMMAND_FILE_CAP, SUMMARY_CAP};
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

/// The boundary line between the step's output and its files is this and a nonce.
const BOUNDARY_PREFIX: &str = "hybrid-runner-step-files-";

/// The first line of a step exec's stdout, printed before the input is read in full and
/// dropped by [`StepStdout`]. It makes the API server answer at once, and its answer
/// carries the acknowledgement of the input's first WebSocket frame: kube-rs sends stdin
/// in frames of 4 KiB over a socket without `TCP_NODELAY` (kube-rs/kube#2056), so
/// Nagle's algorithm holds the next frame until that acknowledgement, which a receiver
/// with nothing to say delays by 40 ms (seen on loopback, as against the fake API server).
const GREETING: &str = "hybrid-runner-step-started";

/// A `GITHUB_*` file larger than this comes back as its size alone: the largest of the
/// engine's caps ([`SUMMARY_CAP`], [`COMMAND_FILE_CAP`]), over which it drops a file
/// unread with its usual annotation.
pub const SENT_UP_TO: u64 = {
    let mut max = SUMMARY_CAP.bytes;
    let mut i = 0;
    while i < COMMAND_FILE_CAP.len() {
        if COMMAND_FILE_CAP[i].bytes > max {
            max = COMMAND_FILE_CAP[i].bytes;
        }
        i += 1;
    }
    max
};

/// How many bytes after the boundary are kept at most: every file at [`SENT_UP_TO`],
/// with room for the headers (more is not the listing [`step_input`] writes).
const FILES_LIMIT: usize = STEP_FILES.len() * (SENT_UP_TO as usize + 64) + 64;

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

/// One `GITHUB_*` file a step wrote, as it came back from the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFile {
    /// Its name in `STEP_FILES` (`set_env`, ...).
    pub name: String,
    /// Its size in the pod.
    pub size: u64,
    /// Its bytes; empty for a file over [`SENT_UP_TO`] bytes, which is not sent.
    pub bytes: Vec<u8>,
}

/// The `GITHUB_*` files a step wrote; unwritten (empty) ones are left out.
pub type StepFileContents = Vec<StepFile>;

/// How a step's `GITHUB_*` files came back with its exec.
#[derive(Debug)]
pub enum StepFilesBack {
    /// After the boundary line, the listing of the files.
    Files(StepFileContents),
    /// The exec's output ended without the boundary line: its shell did not get to
    /// write the files (killed with the step, the stream lost).
    Missing,
    /// After the boundary line came something else than the listing (a step that
    /// printed the boundary line itself, see `StepStdout` in this module).
    Malformed(StepFilesFormatError),
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
fn step_input(process: &PodProcess, boundary: &str, temp: &str) -> Vec<u8> {
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

/// The exec's stdout, split at the boundary line: before it the step's output lines,
/// after it the `GITHUB_*` files ([`step_input`]). The boundary is a line of its own
/// that starts with a newline, `\n<boundary>\n`, so whatever the step's output ended
/// with, the boundary text starts a line: after a last line without newline, that
/// newline ends the line (which reaches the log, as at the end of a stream); after a
/// newline, it is an empty line that is not the step's. So an empty line is held back
/// until the next bytes show it is not followed by the boundary (an empty line the step
/// printed last waits for its next output, at most until the step's end), and the start
/// of a line that matches the boundary's beginning is held until it stops matching.
///
/// The boundary holds a nonce made for each step and never stands alone on a line of
/// the step's input, so a step does not print it by chance. A step that finds it (in the
/// memory of its parent shell) and prints the boundary line ends its own log there: what
/// follows is read as its files, which must be the listing (else the step fails with
/// [`StepFilesFormatError`]) and are kept up to [`FILES_LIMIT`] bytes. That gains the
/// step nothing it could not do by writing its `GITHUB_*` files, and each step has its
/// own exec and nonce: no other step's output is touched.
#[derive(Debug, Default)]
struct StepStdout {
    /// The boundary line's text; `None` for a stream without one (stderr).
    boundary: Option<Vec<u8>>,
    /// While the stream may still start with the [`GREETING`] line: how much of it came.
    greeting: Option<usize>,
    lines: LineSplitter,
    /// The bytes handed to `lines` end at a line start (or none were handed).
    at_line_start: bool,
    /// An empty line held back: it may be the boundary's leading newline.
    held_newline: bool,
    /// The start of the current line while it matches the boundary's beginning.
    held: Vec<u8>,
    /// After the boundary: what came since (at most [`FILES_LIMIT`] bytes).
    files: Option<Vec<u8>>,
    /// More than [`FILES_LIMIT`] bytes came after the boundary.
    overflow: bool,
}

impl StepStdout {
    fn new(boundary: Option<&str>) -> Self {
        StepStdout {
            boundary: boundary.map(|b| b.as_bytes().to_vec()),
            greeting: boundary.map(|_| 0),
            at_line_start: true,
            ..Default::default()
        }
    }

    /// Whether the boundary has come (the rest is files, not lines).
    fn in_files(&self) -> bool {
        self.files.is_some()
    }

    /// Hands the lines `chunk` completes to `emit`, keeping what may be the boundary.
    fn push(&mut self, mut chunk: &[u8], emit: &mut impl FnMut(String, bool)) {
        if let Some(matched) = self.greeting {
            let line = [GREETING.as_bytes(), b"\n"].concat();
            let want = &line[matched..];
            let same = chunk.iter().zip(want).take_while(|(a, b)| a == b).count();
            if same == chunk.len() && same < want.len() {
                self.greeting = Some(matched + same);
                return;
            }
            self.greeting = None;
            if same == want.len() {
                chunk = &chunk[same..];
            } else {
                // Not the greeting after all: what matched is output.
                self.push(&line[..matched], emit);
            }
        }
        let Some(boundary) = &self.boundary else {
            self.lines.push(chunk, emit);
            return;
        };
        while !chunk.is_empty() {
            if let Some(files) = &mut self.files {
                let room = FILES_LIMIT - files.len();
                self.overflow |= chunk.len() > room;
                files.extend_from_slice(&chunk[..chunk.len().min(room)]);
                return;
            }
            if !self.at_line_start {
                let Some(eol) = chunk.iter().position(|&b| b == b'\n') else {
                    self.lines.push(chunk, emit);
                    return;
                };
                // A newline that ends a line with text: a line either way, even when it
                // is the boundary's leading one (the step's last line without newline).
                self.lines.push(&chunk[..=eol], emit);
                chunk = &chunk[eol + 1..];
                self.at_line_start = true;
                continue;
            }
            let want = &boundary[self.held.len()..];
            let same = chunk.iter().zip(want).take_while(|(a, b)| a == b).count();
            if same == want.len() {
                match chunk.get(same) {
                    Some(b'\n') => {
                        // The boundary: a held empty line was its leading newline.
                        self.held_newline = false;
                        self.held.clear();
                        self.lines.finish(emit);
                        self.files = Some(Vec::new());
                        chunk = &chunk[same + 1..];
                        continue;
                    }
                    None => {
                        self.held.extend_from_slice(chunk);
                        return;
                    }
                    Some(_) => {}
                }
            } else if same == chunk.len() {
                self.held.extend_from_slice(chunk);
                return;
            }
            // Not the boundary: what was held is the step's.
            if self.held_newline {
                self.lines.push(b"\n", emit);
                self.held_newline = false;
            }
            if self.held.is_empty() && same == 0 && chunk[0] == b'\n' {
                self.held_newline = true;
                chunk = &chunk[1..];
                continue;
            }
            let held = std::mem::take(&mut self.held);
            self.lines.push(&held, emit);
            self.at_line_start = false;
        }
    }

    /// The stream ended: what is held is the step's last output.
    fn finish(&mut self, emit: &mut impl FnMut(String, bool)) {
        if let Some(matched) = self.greeting.take() {
            self.push(&GREETING.as_bytes()[..matched], emit);
        }
        if self.held_newline {
            self.lines.push(b"\n", emit);
            self.held_newline = false;
        }
        let held = std::mem::take(&mut self.held);
        self.lines.push(&held, emit);
        self.lines.finish(emit);
    }

    /// The files that came after the boundary.
    fn files(&mut self) -> StepFilesBack {
        match self.files.take() {
            None => StepFilesBack::Missing,
            Some(_) if self.overflow => {
                StepFilesBack::Malformed(StepFilesFormatError::TooLong { limit: FILES_LIMIT })
            }
            Some(bytes) => match parse_files(&bytes) {
                Ok(files) => StepFilesBack::Files(files),
                Err(e) => StepFilesBack::Malformed(e),
            },
        }
    }
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

/// Why the listing of the step's files that came back from the pod cannot be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StepFilesFormatError {
    #[error("a file header without its line end")]
    NoLineEnd,
    #[error("a bad file header {header:?}")]
    Header { header: String },
    #[error("a bad file size in {header:?}")]
    Size { header: String },
    #[error("the file {name} cut short")]
    Truncated { name: String },
    #[error("no end line")]
    NoEnd,
    #[error("more than {limit} bytes")]
    TooLong { limit: usize },
}

/// Shell commands that print the non-empty `GITHUB_*` files as [`parse_files`] reads
/// them (after a step in the step's own exec; after a container step in an exec of its
/// own).
pub(super) fn files_listing(temp: &str) -> String {
    format!(
        "for f in {names}; do\n\
         if [ -s {temp}/_files/$f ]; then\n\
         n=$(($(wc -c <{temp}/_files/$f)))\n\
         if [ \"$n\" -gt {sent_up_to} ]; then printf '%s %s unsent\\n' $f $n; \
         else printf '%s %s\\n' $f $n; head -c $n {temp}/_files/$f; fi\n\
         fi\n\
         done\n\
         echo end\n",
        names = STEP_FILES.join(" "),
        sent_up_to = SENT_UP_TO,
    )
}

/// The listing [`step_input`] writes: `name size\n` + `size` bytes, or `name size
/// unsent\n` alone, repeated, then `end\n`.
pub(super) fn parse_files(mut bytes: &[u8]) -> Result<StepFileContents, StepFilesFormatError> {
    let mut files = Vec::new();
    loop {
        if bytes == b"end\n" {
            return Ok(files);
        }
        if bytes.is_empty() {
            return Err(StepFilesFormatError::NoEnd);
        }
        let Some(eol) = bytes.iter().position(|&b| b == b'\n') else {
            return Err(StepFilesFormatError::NoLineEnd);
        };
        let header = String::from_utf8_lossy(&bytes[..eol]).into_owned();
        let fields: Vec<&str> = header.split(' ').collect();
        let (name, size, sent) = match fields[..] {
            [name, size] => (name, size, true),
            [name, size, "unsent"] => (name, size, false),
            _ => return Err(StepFilesFormatError::Header { header }),
        };
        let Ok(size) = size.parse::<u64>() else {
            return Err(StepFilesFormatError::Size { header });
        };
        let rest = &bytes[eol + 1..];
        let len = if sent {
            usize::try_from(size).unwrap_or(usize::MAX)
        } else {
            0
        };
        if !STEP_FILES.contains(&name) || (!sent && size <= SENT_UP_TO) {
            return Err(StepFilesFormatError::Header { header });
        }
        if rest.len() < len {
            return Err(StepFilesFormatError::Truncated {
                name: name.to_string(),
            });
        }
        files.push(StepFile {
            name: name.to_string(),
            size,
            bytes: rest[..len].to_vec(),
        });
        bytes = &rest[len..];
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn files_parse_back() {
        let files = parse_files(b"set_env 4\nA=1\nstep_summary 2000000 unsent\nend\n").unwrap();
        assert_eq!(
            files,
            vec![
                StepFile {
                    name: "set_env".into(),
                    size: 4,
                    bytes: b"A=1\n".to_vec()
                },
                StepFile {
                    name: "step_summary".into(),
                    size: 2_000_000,
                    bytes: Vec::new()
                },
            ]
        );
        assert_eq!(parse_files(b"end\n"), Ok(Vec::new()));
        use StepFilesFormatError as E;
        let truncated = E::Truncated {
            name: "set_env".into(),
        };
        assert_eq!(parse_files(b"set_env 9\nA=1\nend\n"), Err(truncated));
        for bad in [
            &b"other 0\nend\n"[..],
            b"set_env 4 unsent\nend\n",
            b"set_env\n",
        ] {
            assert!(matches!(parse_files(bad), Err(E::Header { .. })), "{bad:?}");
        }
        assert!(matches!(parse_files(b"set_env x\n"), Err(E::Size { .. })));
        assert_eq!(parse_files(b""), Err(E::NoEnd));
        assert_eq!(parse_files(b"set_env 0\n"), Err(E::NoEnd));
        assert_eq!(parse_files(b"set_env 0"), Err(E::NoLineEnd));
        assert!(parse_files(b"end\nmore").is_err());
    }

    const BOUNDARY: &str = "hybrid-runner-step-files-0123456789abcdef0123456789abcdef";

    /// What the exec's shell writes after the step's output.
    fn marker(files: &str) -> String {
        format!("\n{BOUNDARY}\n{files}end\n")
    }

    /// The lines and files of `stream` read in `chunks` pieces.
    fn read_in(chunks: &[&[u8]]) -> (Vec<String>, StepFilesBack) {
        let mut stdout = StepStdout::new(Some(BOUNDARY));
        let mut lines = Vec::new();
        for chunk in chunks {
            stdout.push(chunk, &mut |l, _| lines.push(l));
        }
        stdout.finish(&mut |l, _| lines.push(l));
        (lines, stdout.files())
    }

    /// The lines and files of `stream`, checked to be the same however it is cut.
    fn read(stream: &[u8]) -> (Vec<String>, StepFilesBack) {
        let whole = read_in(&[stream]);
        let shown = |r: &(Vec<String>, StepFilesBack)| format!("{r:?}");
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(shown(&read_in(&[a, b])), shown(&whole), "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(shown(&read_in(&bytes)), shown(&whole), "byte by byte");
        whole
    }

    fn no_files(back: &StepFilesBack) -> bool {
        matches!(back, StepFilesBack::Files(f) if f.is_empty())
    }

    #[test]
    fn a_last_line_without_newline_reaches_the_log_before_the_boundary() {
        let (lines, files) = read(format!("one\ntwo{}", marker("")).as_bytes());
        assert_eq!(lines, ["one", "two"]);
        assert!(no_files(&files), "{files:?}");
        let (lines, files) = read(format!("one\ntwo\n{}", marker("")).as_bytes());
        assert_eq!(lines, ["one", "two"]);
        assert!(no_files(&files), "{files:?}");
        // A carriage return ends such a line as it ends any line.
        let (lines, _) = read(format!("one\r{}", marker("")).as_bytes());
        assert_eq!(lines, ["one"]);
    }

    #[test]
    fn empty_lines_and_empty_output_are_kept_exactly() {
        let (lines, files) = read(marker("").as_bytes());
        assert!(lines.is_empty(), "{lines:?}");
        assert!(no_files(&files), "{files:?}");
        let (lines, _) = read(format!("\n{}", marker("")).as_bytes());
        assert_eq!(lines, [""]);
        let (lines, _) = read(format!("one\n\n\n{}", marker("")).as_bytes());
        assert_eq!(lines, ["one", "", ""]);
        let (lines, _) = read(format!("\r\n{}", marker("")).as_bytes());
        assert_eq!(lines, [""]);
    }

    #[test]
    fn only_an_empty_line_waits_for_the_next_bytes() {
        let mut stdout = StepStdout::new(Some(BOUNDARY));
        let mut lines = Vec::new();
        stdout.push(b"one\n", &mut |l, _| lines.push(l));
        assert_eq!(lines, ["one"], "a line goes on at once");
        stdout.push(b"\n", &mut |l, _| lines.push(l));
        assert_eq!(
            lines,
            ["one"],
            "an empty line may be the boundary's newline"
        );
        stdout.push(b"h", &mut |l, _| lines.push(l));
        assert_eq!(lines, ["one"], "and the next line may be the boundary");
        stdout.push(b"i\n", &mut |l, _| lines.push(l));
        assert_eq!(lines, ["one", "", "hi"]);
    }

    #[test]
    fn the_files_after_the_boundary_come_back() {
        let stream = format!(
            "log\n{}",
            marker("set_env 8\nA=1\nB=2\nstep_summary 2000000 unsent\n")
        );
        let (lines, files) = read(stream.as_bytes());
        assert_eq!(lines, ["log"]);
        let StepFilesBack::Files(files) = files else {
            panic!("{files:?}");
        };
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].bytes, b"A=1\nB=2\n");
        assert_eq!((files[1].size, files[1].bytes.len()), (2_000_000, 0));
    }

    #[test]
    fn the_greeting_is_dropped_and_only_the_greeting() {
        let greeting = format!("{GREETING}\n");
        let (lines, files) = read(format!("{greeting}one\n{}", marker("")).as_bytes());
        assert_eq!(lines, ["one"]);
        assert!(no_files(&files), "{files:?}");
        // Only at the stream's start, only whole.
        let (lines, _) = read(format!("{greeting}{greeting}{}", marker("")).as_bytes());
        assert_eq!(lines, [GREETING]);
        let (lines, _) = read(format!("{GREETING} and more\n{}", marker("")).as_bytes());
        assert_eq!(lines, [format!("{GREETING} and more")]);
        let (lines, files) = read(&greeting.as_bytes()[..10]);
        assert_eq!(lines, [&GREETING[..10]]);
        assert!(matches!(files, StepFilesBack::Missing));
        // stderr has none.
        let mut stderr = StepStdout::new(None);
        let mut lines = Vec::new();
        stderr.push(greeting.as_bytes(), &mut |l, _| lines.push(l));
        stderr.finish(&mut |l, _| lines.push(l));
        assert_eq!(lines, [GREETING]);
    }

    #[test]
    fn text_like_the_boundary_is_the_steps_output() {
        // Another nonce, the boundary within a line or with more after it on its line,
        // and the start of it at the stream's end.
        let other = format!("{BOUNDARY_PREFIX}ffffffffffffffffffffffffffffffff");
        let printed =
            format!("{other}\nx{BOUNDARY}\n{BOUNDARY} more\n{BOUNDARY}\r\n{BOUNDARY_PREFIX}");
        let (lines, files) = read(format!("{printed}{}", marker("")).as_bytes());
        assert_eq!(
            lines,
            [
                other,
                format!("x{BOUNDARY}"),
                format!("{BOUNDARY} more"),
                BOUNDARY.to_string(),
                BOUNDARY_PREFIX.to_string()
            ]
        );
        assert!(no_files(&files), "{files:?}");
    }

    #[test]
    fn a_step_that_prints_the_boundary_line_ends_its_own_log_there() {
        // The step found the nonce and printed the boundary line: its later lines are
        // read as files, which are not the listing.
        let stream = format!("a\n{BOUNDARY}\nb\n{}", marker(""));
        let (lines, files) = read(stream.as_bytes());
        assert_eq!(lines, ["a"]);
        assert!(
            matches!(
                files,
                StepFilesBack::Malformed(StepFilesFormatError::Header { .. })
            ),
            "{files:?}"
        );
        // However much it prints after it, only FILES_LIMIT bytes are kept.
        let mut stdout = StepStdout::new(Some(BOUNDARY));
        let mut lines = Vec::new();
        stdout.push(format!("{BOUNDARY}\n").as_bytes(), &mut |l, _| {
            lines.push(l)
        });
        let chunk = vec![b'x'; 1024 * 1024];
        for _ in 0..=FILES_LIMIT / chunk.len() {
            stdout.push(&chunk, &mut |l, _| lines.push(l));
        }
        stdout.finish(&mut |l, _| lines.push(l));
        assert!(lines.is_empty());
        assert!(
            stdout
                .files
                .as_ref()
                .is_some_and(|f| f.len() == FILES_LIMIT)
        );
        assert!(matches!(
            stdout.files(),
            StepFilesBack::Malformed(StepFilesFormatError::TooLong { .. })
        ));
    }

    #[test]
    fn without_the_boundary_every_line_stays_and_the_files_are_missing() {
        for (stream, expected) in [
            ("one\ntwo", &["one", "two"][..]),
            ("one\n\n", &["one", ""]),
            ("one\n\nhybrid-runner-st", &["one", "", "hybrid-runner-st"]),
            ("", &[]),
        ] {
            let (lines, files) = read(stream.as_bytes());
            assert_eq!(lines, expected, "{stream:?}");
            assert!(matches!(files, StepFilesBack::Missing), "{files:?}");
        }
    }

    #[test]
    fn a_stream_without_a_boundary_is_lines_only() {
        let mut stderr = StepStdout::new(None);
        let mut lines = Vec::new();
        stderr.push(format!("a\n\n{BOUNDARY}\nb").as_bytes(), &mut |l, _| {
            lines.push(l)
        });
        stderr.finish(&mut |l, _| lines.push(l));
        assert_eq!(lines, ["a", "", BOUNDARY, "b"]);
        assert!(matches!(stderr.files(), StepFilesBack::Missing));
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
