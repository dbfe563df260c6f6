//! Runs one step process on this host, the way GitHub's runner does.
//!
//! The process gets its own process group, stdin from `/dev/null`, exactly the environment
//! it is given, and every output line is handed on as soon as it is read (stdout and stderr
//! interleaved in arrival order; see the `lines` module for how bytes become lines).
//!
//! Stopping (cancel or timeout) follows GitHub's runner: SIGINT to the process group, after
//! [`StopPolicy::interrupt_grace`] SIGTERM, after [`StopPolicy::terminate_grace`] more SIGKILL.
//! Each phase ends early once the main process has exited *and* nothing is left in its
//! group, so a child that ignores SIGINT is escalated along with the rest.
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
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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

type Line = (OutputStream, String);

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
    check_cwd(spec)?;
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let start = Instant::now();
    let mut child = command.spawn().map_err(|source| HostError::Spawn {
        program: spec.program.clone(),
        source,
    })?;
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);

    let (tx, rx) = mpsc::channel::<Line>(1024);
    let mut readers = Vec::with_capacity(2);
    if let Some(out) = child.stdout.take() {
        readers.push(tokio::spawn(read_lines(
            out,
            OutputStream::Stdout,
            tx.clone(),
        )));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(tokio::spawn(read_lines(
            err,
            OutputStream::Stderr,
            tx.clone(),
        )));
    }
    drop(tx);

    let mut run = Running {
        program: &spec.program,
        child,
        pgid,
        lines: rx,
        on_line,
        status: None,
        exited_at: None,
    };
    let result = run
        .drive(spec.timeout.map(|t| start + t), stop, cancel)
        .await;
    for reader in &readers {
        reader.abort();
    }
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

/// Reads one pipe to its end, sending each line as soon as it is complete.
async fn read_lines(
    mut pipe: impl AsyncReadExt + Unpin,
    stream: OutputStream,
    tx: mpsc::Sender<Line>,
) {
    let mut splitter = LineSplitter::default();
    let mut buf = vec![0u8; 16 * 1024];
    let mut batch = Vec::new();
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        splitter.push(&buf[..n], &mut |line| batch.push(line));
        for line in batch.drain(..) {
            if tx.send((stream, line)).await.is_err() {
                return;
            }
        }
    }
    splitter.finish(&mut |line| batch.push(line));
    for line in batch {
        if tx.send((stream, line)).await.is_err() {
            return;
        }
    }
}

/// The state of one running process while it is driven to its end.
struct Running<'a> {
    program: &'a str,
    child: Child,
    pgid: Option<Pid>,
    lines: mpsc::Receiver<Line>,
    on_line: &'a mut (dyn FnMut(OutputStream, &str) + Send),
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
        let mut lines_open = true;
        loop {
            tokio::select! {
                line = self.lines.recv(), if lines_open => match line {
                    Some((stream, text)) => (self.on_line)(stream, &text),
                    None => lines_open = false,
                },
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
            self.wait_gone(Instant::now() + grace).await?;
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

    /// Whether a live process is left in the group (see the `group` module).
    fn group_alive(&self) -> bool {
        self.pgid.is_some_and(group::alive)
    }

    /// Delivers output until the main process has exited and the group is empty, or until
    /// `until`.
    async fn wait_gone(&mut self, until: Instant) -> Result<(), HostError> {
        let mut lines_open = true;
        let mut poll = tokio::time::interval(GROUP_POLL);
        loop {
            if self.status.is_some() && !self.group_alive() {
                return Ok(());
            }
            tokio::select! {
                line = self.lines.recv(), if lines_open => match line {
                    Some((stream, text)) => (self.on_line)(stream, &text),
                    None => lines_open = false,
                },
                status = self.child.wait(), if self.status.is_none() => {
                    let status = status.map_err(|e| self.wait_error(e))?;
                    self.record(status);
                }
                _ = poll.tick() => {}
                () = tokio::time::sleep_until(until) => return Ok(()),
            }
        }
    }

    /// Delivers output until both pipes close or `until`, whichever comes first.
    async fn drain(&mut self, until: Instant) {
        let deadline = tokio::time::sleep_until(until);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                line = self.lines.recv() => match line {
                    Some((stream, text)) => (self.on_line)(stream, &text),
                    None => return,
                },
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
