//! Runs one step process on this host, the way GitHub's runner does.
//!
//! The process gets its own process group, stdin from `/dev/null`, exactly the environment
//! it is given, and every output line is handed on as soon as it is read (stdout and stderr
//! interleaved in arrival order; see the `lines` module for how bytes become lines).
//!
//! Stopping (cancel or timeout) follows GitHub's runner: SIGINT to the process group, after
//! [`StopPolicy::interrupt_grace`] SIGTERM, after [`StopPolicy::terminate_grace`] more SIGKILL.
//! Each phase ends early once the main process has exited *and* nothing is left in its
//! group, so a child that ignores SIGINT is escalated along with the rest. During the
//! SIGINT grace, a member that can only have missed the signal (its action is the default,
//! nothing is pending, yet it runs: it was between `fork` and `exec` when the group was
//! signalled) gets SIGINT again, so a cooperative step still stops at once.
//!
//! Back-pressure: with an [`OutputSink`] that names an [`crate::budget::OutputBudget`], the
//! pipes are only read while the budget has room, so a consumer that lags (a slow terminal,
//! a slow server) stalls the process's writes instead of letting its output pile up in
//! memory. Waiting for room does not count against the drain time after exit.
//!
//! Background processes: when the main process exits on its own, its group is left alone
//! (like on GitHub, `server &` keeps running into later steps; the backend's teardown ends
//! it). Such a process may still hold stdout/stderr open, so the step does not wait for
//! end-of-file: after the main process exits, output already in flight is delivered for at
//! most [`DRAIN_AFTER_EXIT`] (200 ms; returning at once when both pipes close, which is
//! the usual case), then the pipes are closed. Later output of a background process is
//! lost, as on GitHub, and its writes fail with EPIPE.

use std::io;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::budget::{OutputBudget, OutputSink, room_in};
use super::group;
use super::lines::LineSplitter;

/// How long output is still collected after the main process exited (see module docs).
pub const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);

/// How often an emptying process group is checked while stopping.
const GROUP_POLL: Duration = Duration::from_millis(50);

/// After SIGKILL, how long to wait for the rest of the group to disappear.
const KILL_SETTLE: Duration = Duration::from_secs(1);

/// One process to run.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub program: String,
    pub args: Vec<String>,
    /// The complete environment: the child sees exactly these variables (env_clear first).
    /// A name given more than once gets its last value, so a caller can append overrides.
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// Step or job timeout; on expiry the process is stopped like a cancel and `timed_out` is set.
    pub timeout: Option<Duration>,
}

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// The grace periods of the stop sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopPolicy {
    /// Between SIGINT and SIGTERM (GitHub: 7.5 s).
    pub interrupt_grace: Duration,
    /// Between SIGTERM and SIGKILL (GitHub: 2.5 s).
    pub terminate_grace: Duration,
}

impl Default for StopPolicy {
    fn default() -> Self {
        Self {
            interrupt_grace: Duration::from_millis(7500),
            terminate_grace: Duration::from_millis(2500),
        }
    }
}

/// How the process ended.
#[derive(Debug, Clone)]
pub struct ProcessExit {
    /// The exit code, when the process exited normally.
    pub code: Option<i32>,
    /// The signal that ended the process, when one did.
    pub signal: Option<i32>,
    /// The timeout expired and the process was stopped.
    pub timed_out: bool,
    /// The cancel token fired and the process was stopped.
    pub cancelled: bool,
    /// From start to the main process's exit.
    pub duration: Duration,
}

impl ProcessExit {
    /// Exit code 0, not stopped.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out && !self.cancelled
    }
}

/// What went wrong running a process.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot start `{program}`: {source}; install it or pick another shell")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    /// The kernel refused the environment and arguments as too large (E2BIG).
    #[error(
        "cannot start `{program}`: its environment and arguments are too large for the kernel ({total} bytes; the largest is {largest} with {largest_bytes} bytes, where one may hold at most {} bytes); write large values to a file (e.g. under $RUNNER_TEMP) and pass its path through `GITHUB_ENV` instead",
        MAX_ARG_STRLEN - 1
    )]
    TooLarge {
        program: String,
        largest: String,
        largest_bytes: usize,
        total: usize,
    },
    #[error(
        "the working directory `{}` is not usable; create it or set `working-directory:`",
        cwd.display()
    )]
    Cwd {
        cwd: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("waiting for `{program}` failed")]
    Wait {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot signal the process group of `{program}`")]
    Signal {
        program: String,
        #[source]
        source: Errno,
    },
}

/// Why a running process is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    Cancelled,
    TimedOut,
}

/// Runs one process in its own process group and streams its output to `on_line`.
///
/// Returns once the main process has exited (see the module docs for background
/// processes); a cancel or timeout stops it with the SIGINT/SIGTERM/SIGKILL sequence.
/// Dropping the future instead of cancelling sends SIGKILL to the main process only (its
/// group is left to the backend's teardown), so prefer the token.
pub async fn run_process(
    spec: &ProcessSpec,
    stop: StopPolicy,
    on_line: &mut (dyn FnMut(OutputStream, &str) + Send),
    cancel: &CancellationToken,
) -> Result<ProcessExit, HostError> {
    run_process_over(spec, &[], stop, &mut { on_line }, cancel).await
}

/// [`run_process`] with the environment in two layers: `base`, then `spec.env` over it
/// (a name in both gets its `spec.env` value), and the lines going to an [`OutputSink`]
/// (which may hold the pipes back, see the module docs). A caller whose processes share
/// most of their environment keeps `base` once instead of copying it for every process.
pub async fn run_process_over(
    spec: &ProcessSpec,
    base: &[(String, String)],
    stop: StopPolicy,
    on_line: &mut dyn OutputSink,
    cancel: &CancellationToken,
) -> Result<ProcessExit, HostError> {
    check_cwd(spec)?;
    children_start_with_default_sigint();
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .env_clear()
        .envs(base.iter().chain(&spec.env).map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let start = Instant::now();
    let mut child = command.spawn().map_err(|source| {
        if source.kind() == io::ErrorKind::ArgumentListTooLong {
            too_large(spec)
        } else {
            HostError::Spawn {
                program: spec.program.clone(),
                source,
            }
        }
    })?;
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);

    let mut run = Running {
        program: &spec.program,
        out: Pipe::new(child.stdout.take(), OutputStream::Stdout),
        err: Pipe::new(child.stderr.take(), OutputStream::Stderr),
        child,
        pgid,
        on_line,
        status: None,
        exited_at: None,
    };
    let result = run
        .drive(spec.timeout.map(|t| start + t), stop, cancel)
        .await;
    let reason = result?;
    let status = run.status.ok_or_else(|| HostError::Wait {
        program: spec.program.clone(),
        source: io::Error::other("the process has not exited"),
    })?;
    let exited_at = run.exited_at.unwrap_or_else(Instant::now);
    Ok(ProcessExit {
        code: status.code(),
        signal: std::os::unix::process::ExitStatusExt::signal(&status),
        timed_out: reason == Some(StopReason::TimedOut),
        cancelled: reason == Some(StopReason::Cancelled),
        duration: exited_at.duration_since(start),
    })
}

/// Makes every process started from here on begin with SIGINT at its default action, as the
/// stop sequence needs: a runner started with SIGINT ignored (`runner &` from a script,
/// where the shell ignores SIGINT for background jobs) would otherwise hand the ignore down,
/// and no step would ever stop at SIGINT (a shell cannot even trap a signal ignored at its
/// start). An ignore survives `exec`; a handler does not. So the runner keeps a handler
/// installed: tokio installs its process-wide one at the first registration and keeps it
/// for the life of the process, whether anyone listens or not.
fn children_start_with_default_sigint() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // Fails only outside a tokio runtime with signal support, which a running step
        // implies; the steps then inherit the runner's SIGINT action as before.
        let _ = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    });
}

/// The kernel's limit on one argument or `NAME=value` string (`MAX_ARG_STRLEN`, 32 pages).
const MAX_ARG_STRLEN: usize = 32 * 4096;

/// Why `exec` said E2BIG: the largest variable (or argument), and the total.
fn too_large(spec: &ProcessSpec) -> HostError {
    let env = spec
        .env
        .iter()
        .map(|(k, v)| (format!("environment variable `{k}`"), k.len() + v.len() + 2));
    let args = spec
        .args
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("argument {}", i + 1), a.len() + 1));
    let all: Vec<(String, usize)> = env.chain(args).collect();
    let total = all.iter().map(|(_, n)| n).sum();
    let (largest, largest_bytes) = all.into_iter().max_by_key(|(_, n)| *n).unwrap_or_default();
    HostError::TooLarge {
        program: spec.program.clone(),
        largest,
        largest_bytes,
        total,
    }
}

fn check_cwd(spec: &ProcessSpec) -> Result<(), HostError> {
    match std::fs::metadata(&spec.cwd) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(HostError::Cwd {
            cwd: spec.cwd.clone(),
            source: io::Error::other("not a directory"),
        }),
        Err(source) => Err(HostError::Cwd {
            cwd: spec.cwd.clone(),
            source,
        }),
    }
}

/// Bytes read from a pipe at most at once.
const READ_CHUNK: usize = 16 * 1024;

/// One output pipe of the process, read on the engine's own task (no reader task and no
/// channel per step): its reader until end-of-file, the unfinished line, a read buffer.
struct Pipe<R> {
    reader: Option<R>,
    stream: OutputStream,
    splitter: LineSplitter,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> Pipe<R> {
    fn new(reader: Option<R>, stream: OutputStream) -> Self {
        Pipe {
            reader,
            stream,
            splitter: LineSplitter::default(),
            buf: Vec::new(),
        }
    }

    fn is_open(&self) -> bool {
        self.reader.is_some()
    }

    /// Waits for room in the sink's budget, then for the next bytes; 0 means end-of-file
    /// (a read error counts as one). Safe to cancel: bytes are only taken out of the pipe
    /// when the read completes.
    async fn read(&mut self, budget: Option<&OutputBudget>) -> usize {
        let Some(reader) = self.reader.as_mut() else {
            return std::future::pending().await;
        };
        room_in(budget).await;
        if self.buf.capacity() == 0 {
            // Not zeroed: `read_buf` fills spare capacity.
            self.buf.reserve_exact(READ_CHUNK);
        }
        reader.read_buf(&mut self.buf).await.unwrap_or(0)
    }

    /// Hands on the lines completed by the `n` bytes just read (at end-of-file, `n == 0`,
    /// the unterminated last line too, and the pipe is closed).
    fn deliver(&mut self, n: usize, on_line: &mut dyn OutputSink) {
        let stream = self.stream;
        let mut emit = |line: String, continued: bool| on_line.line(stream, &line, continued);
        if n == 0 {
            self.splitter.finish(&mut emit);
            self.reader = None;
        } else {
            self.splitter.push(&self.buf, &mut emit);
        }
        self.buf.clear();
    }
}

/// The state of one running process while it is driven to its end.
struct Running<'a> {
    program: &'a str,
    child: Child,
    pgid: Option<Pid>,
    out: Pipe<ChildStdout>,
    err: Pipe<ChildStderr>,
    on_line: &'a mut dyn OutputSink,
    status: Option<ExitStatus>,
    exited_at: Option<Instant>,
}

impl Running<'_> {
    /// Runs until the main process exits, stopping it on cancel or timeout; returns why it
    /// was stopped, if it was.
    async fn drive(
        &mut self,
        deadline: Option<Instant>,
        stop: StopPolicy,
        cancel: &CancellationToken,
    ) -> Result<Option<StopReason>, HostError> {
        let reason = self.until_exit_or_stop(deadline, cancel).await?;
        if let Some(reason) = reason {
            self.stop(stop).await?;
            if self.status.is_none() {
                // Unreachable in practice: SIGKILL cannot be ignored.
                let status = self.child.wait().await.map_err(|e| self.wait_error(e))?;
                self.record(status);
            }
            self.drain(Instant::now() + DRAIN_AFTER_EXIT).await;
            return Ok(Some(reason));
        }
        let until = self.exited_at.unwrap_or_else(Instant::now) + DRAIN_AFTER_EXIT;
        self.drain(until).await;
        Ok(None)
    }

    async fn until_exit_or_stop(
        &mut self,
        deadline: Option<Instant>,
        cancel: &CancellationToken,
    ) -> Result<Option<StopReason>, HostError> {
        let timeout = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(timeout);
        loop {
            tokio::select! {
                n = self.out.read(self.on_line.budget()), if self.out.is_open() => self.out.deliver(n, self.on_line),
                n = self.err.read(self.on_line.budget()), if self.err.is_open() => self.err.deliver(n, self.on_line),
                status = self.child.wait() => {
                    let status = status.map_err(|e| self.wait_error(e))?;
                    self.record(status);
                    return Ok(None);
                }
                () = cancel.cancelled() => return Ok(Some(StopReason::Cancelled)),
                () = &mut timeout => return Ok(Some(StopReason::TimedOut)),
            }
        }
    }

    /// The stop sequence: each signal goes to the whole group, and the next one follows
    /// after its grace unless the main process and its group are gone by then.
    async fn stop(&mut self, policy: StopPolicy) -> Result<(), HostError> {
        let phases = [
            (Signal::SIGINT, policy.interrupt_grace),
            (Signal::SIGTERM, policy.terminate_grace),
            (Signal::SIGKILL, KILL_SETTLE),
        ];
        for (signal, grace) in phases {
            if self.status.is_some() && !self.group_alive() {
                return Ok(());
            }
            self.signal_group(signal)?;
            let resend = (signal == Signal::SIGINT).then_some(signal);
            self.wait_gone(Instant::now() + grace, resend).await?;
        }
        Ok(())
    }

    fn signal_group(&self, signal: Signal) -> Result<(), HostError> {
        let Some(pgid) = self.pgid else {
            return Ok(());
        };
        group::signal(pgid, signal).map_err(|source| HostError::Signal {
            program: self.program.to_owned(),
            source,
        })
    }

    fn resend(&self, signal: Option<Signal>) -> Result<(), HostError> {
        let (Some(signal), Some(pgid)) = (signal, self.pgid) else {
            return Ok(());
        };
        for pid in group::members_that_missed(pgid, signal) {
            group::signal_one(pid, signal).map_err(|source| HostError::Signal {
                program: self.program.to_owned(),
                source,
            })?;
        }
        Ok(())
    }

    /// Whether a live process is left in the group (see the `group` module).
    fn group_alive(&self) -> bool {
        self.pgid.is_some_and(group::alive)
    }

    /// Delivers output until the main process has exited and the group is empty, or until
    /// `until`. With `resend`, each poll gives that signal again to the members that can
    /// only have missed it (see [`group::members_that_missed`]): a SIGINT that lands while
    /// a shell forks is otherwise lost, and the step would run on until SIGTERM.
    async fn wait_gone(&mut self, until: Instant, resend: Option<Signal>) -> Result<(), HostError> {
        let mut poll = tokio::time::interval(GROUP_POLL);
        loop {
            if self.status.is_some() && !self.group_alive() {
                return Ok(());
            }
            tokio::select! {
                n = self.out.read(self.on_line.budget()), if self.out.is_open() => self.out.deliver(n, self.on_line),
                n = self.err.read(self.on_line.budget()), if self.err.is_open() => self.err.deliver(n, self.on_line),
                status = self.child.wait(), if self.status.is_none() => {
                    let status = status.map_err(|e| self.wait_error(e))?;
                    self.record(status);
                }
                _ = poll.tick() => self.resend(resend)?,
                () = tokio::time::sleep_until(until) => return Ok(()),
            }
        }
    }

    /// Delivers output until both pipes close or `until`, whichever comes first; time spent
    /// waiting for room in the sink's budget moves `until` on (the output is there, only
    /// its consumer is slow).
    async fn drain(&mut self, until: Instant) {
        let deadline = tokio::time::sleep_until(until);
        tokio::pin!(deadline);
        while self.out.is_open() || self.err.is_open() {
            let waiting = Instant::now();
            room_in(self.on_line.budget()).await;
            let waited = waiting.elapsed();
            if !waited.is_zero() {
                let until = deadline.deadline() + waited;
                deadline.as_mut().reset(until);
            }
            tokio::select! {
                n = self.out.read(self.on_line.budget()), if self.out.is_open() => self.out.deliver(n, self.on_line),
                n = self.err.read(self.on_line.budget()), if self.err.is_open() => self.err.deliver(n, self.on_line),
                () = &mut deadline => return,
            }
        }
    }

    fn record(&mut self, status: ExitStatus) {
        self.status = Some(status);
        self.exited_at = Some(Instant::now());
    }

    fn wait_error(&self, source: io::Error) -> HostError {
        HostError::Wait {
            program: self.program.to_owned(),
            source,
        }
    }
}
