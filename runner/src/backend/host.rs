//! STAND-IN (helper branch `host`).
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: std::path::PathBuf,
    pub timeout: Option<Duration>,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}
#[derive(Debug, Clone)]
pub struct ProcessExit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub cancelled: bool,
    pub duration: Duration,
}
impl ProcessExit {
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out && !self.cancelled
    }
}
#[derive(Debug, Clone, Copy)]
pub struct StopPolicy {
    pub interrupt_grace: Duration,
    pub terminate_grace: Duration,
}
impl Default for StopPolicy {
    fn default() -> Self {
        StopPolicy {
            interrupt_grace: Duration::from_millis(7500),
            terminate_grace: Duration::from_millis(2500),
        }
    }
}
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot start `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
pub async fn run_process(
    spec: &ProcessSpec,
    _stop: StopPolicy,
    on_line: &mut (dyn FnMut(OutputStream, &str) + Send),
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<ProcessExit, HostError> {
    let start = Instant::now();
    let mut child = tokio::process::Command::new(&spec.program)
        .args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().cloned())
        .current_dir(&spec.cwd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| HostError::Spawn {
            program: spec.program.clone(),
            source,
        })?;
    let mut out = BufReader::new(
        child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?,
    )
    .lines();
    let mut err = BufReader::new(
        child
            .stderr
            .take()
            .ok_or_else(|| std::io::Error::other("no stderr"))?,
    )
    .lines();
    let (mut o_done, mut e_done) = (false, false);
    let deadline = spec.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut timed_out = false;
    let mut cancelled = false;
    while !(o_done && e_done) {
        tokio::select! {
            l = out.next_line(), if !o_done => match l? { Some(l) => on_line(OutputStream::Stdout, &l), None => o_done = true },
            l = err.next_line(), if !e_done => match l? { Some(l) => on_line(OutputStream::Stderr, &l), None => e_done = true },
            _ = cancel.cancelled(), if !cancelled => { cancelled = true; let _ = child.start_kill(); }
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } }, if !timed_out => { timed_out = true; let _ = child.start_kill(); }
        }
    }
    let status = child.wait().await?;
    use std::os::unix::process::ExitStatusExt;
    Ok(ProcessExit {
        code: status.code(),
        signal: status.signal(),
        timed_out,
        cancelled,
        duration: start.elapsed(),
    })
}
