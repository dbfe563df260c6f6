//! The real `hybrid-runner daemon` as a child process, for the end-to-end tests against the
//! fake Gitea: a [`RunnerHome`] (a temporary folder holding the `.runner` file written by
//! `hybrid-runner register --no-interactive`, a config file, the job work folders and the
//! spool) and a [`Daemon`] started in it with fast polling, its stderr captured, killed
//! when dropped. Also what the tests read about the process: peak RSS and CPU time from
//! `/proc`, and the processes still carrying a marker in their environment.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::fake_gitea::FakeGitea;

/// A new runner folder: the folder, its `.runner` path, its `config.yaml` (naming that
/// file, then `config_extra`) and its `work/` folder.
fn folder(config_extra: &str) -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary runner folder");
    let runner_file = dir.path().join(".runner");
    let config = dir.path().join("config.yaml");
    let workdir = dir.path().join("work");
    std::fs::create_dir_all(&workdir).expect("the work folder");
    std::fs::write(
        &config,
        format!("runner:\n  file: {}\n{config_extra}", runner_file.display()),
    )
    .expect("the config file");
    (dir, runner_file, config, workdir)
}

/// Runs a `hybrid-runner register` command line; panics with its stderr when it fails.
fn run_register(mut command: Command) {
    let out = command.output().expect("hybrid-runner register runs");
    assert!(
        out.status.success(),
        "register failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A registered runner's folder: `.runner`, `config.yaml`, `work/` (job folders), `cache/`.
#[derive(Debug)]
pub struct RunnerHome {
    pub dir: tempfile::TempDir,
    pub runner_file: PathBuf,
    pub config: PathBuf,
    pub workdir: PathBuf,
    /// The runner's UUID on the fake (a GitHub runner's: its OAuth client id).
    pub uuid: String,
    /// The `hybrid-runner` binary (the tests crate's `hybrid-runner-cli`).
    pub binary: PathBuf,
}

impl RunnerHome {
    /// Registers a runner with `labels` (`ubuntu-latest:host,...`) on `fake` with
    /// `hybrid-runner register --no-interactive` in a fresh folder; `config_extra` is
    /// appended to the config file (YAML, top-level sections other than `runner:`).
    pub fn register(fake: &FakeGitea, labels: &str, config_extra: &str) -> RunnerHome {
        RunnerHome::register_with(fake, labels, config_extra, &[])
    }

    /// [`Self::register`] with more `register` arguments (e.g. `--ephemeral`).
    pub fn register_with(
        fake: &FakeGitea,
        labels: &str,
        config_extra: &str,
        extra_args: &[&str],
    ) -> RunnerHome {
        let (dir, runner_file, config, workdir) = folder(config_extra);
        let binary = crate::cli::bin();
        let mut command = Command::new(&binary);
        command
            .arg("register")
            .args([
                "-c",
                config.to_str().expect("a UTF-8 path"),
                "--no-interactive",
            ])
            .args(["--instance", &fake.url()])
            .args(["--token", FakeGitea::REGISTRATION_TOKEN])
            .args(["--name", "daemon-test"])
            .args(["--labels", labels])
            .args(extra_args)
            .current_dir(dir.path())
            .env_remove("GITEA_RUNNER_REGISTRATION_TOKEN");
        run_register(command);
        let text = std::fs::read_to_string(&runner_file).expect("register wrote .runner");
        let json: serde_json::Value = serde_json::from_str(&text).expect(".runner is JSON");
        let uuid = json["uuid"]
            .as_str()
            .expect(".runner has a uuid")
            .to_string();
        assert!(fake.runner(&uuid).is_some(), "the fake knows runner {uuid}");
        RunnerHome {
            dir,
            runner_file,
            config,
            workdir,
            uuid,
            binary,
        }
    }

    /// Registers a GitHub runner named `name` with `labels` at the fake GitHub's
    /// `octo/hello` with `hybrid-runner register --github`; `uuid` holds its OAuth client
    /// id (what the fake queues its jobs for).
    pub fn register_github(
        fake: &crate::fake_github::FakeGitHub,
        name: &str,
        labels: &str,
        config_extra: &str,
        extra_args: &[&str],
    ) -> RunnerHome {
        let (dir, runner_file, config, workdir) = folder(config_extra);
        let repo = format!("{}/octo/hello", fake.url());
        fake.add_registration_token(&repo, "REGTOKEN");
        let binary = crate::cli::bin();
        let mut command = Command::new(&binary);
        command
            .arg("register")
            .args(["-c", config.to_str().expect("a UTF-8 path")])
            .args(["--no-interactive", "--github", &repo, "--token", "REGTOKEN"])
            .args(["--name", name])
            .args(extra_args)
            .current_dir(dir.path())
            .env_remove("ACTIONS_RUNNER_INPUT_TOKEN");
        if !labels.is_empty() {
            command.args(["--labels", labels]);
        }
        run_register(command);
        let uuid = fake
            .runners()
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.client_id.clone())
            .expect("the fake knows the runner");
        RunnerHome {
            dir,
            runner_file,
            config,
            workdir,
            uuid,
            binary,
        }
    }

    /// A runner folder with no registration (`uuid` empty): for a daemon that registers
    /// nothing itself, a GitHub JIT runner or a pool.
    pub fn unregistered(config_extra: &str) -> RunnerHome {
        let (dir, runner_file, config, workdir) = folder(config_extra);
        RunnerHome {
            dir,
            runner_file,
            config,
            workdir,
            uuid: String::new(),
            binary: crate::cli::bin(),
        }
    }

    /// The default spool folder: `<folder of .runner>/.runner-spool`.
    pub fn spool(&self) -> PathBuf {
        self.dir.path().join(".runner-spool")
    }

    /// `hybrid-runner daemon -c config.yaml` with the tests' environment (see
    /// [`DaemonOptions`]), not started.
    pub fn command(&self, options: &DaemonOptions) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("daemon")
            .args(["-c", self.config.to_str().expect("a UTF-8 path")])
            .args(&options.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Nothing of the developer's own configuration leaks in.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if name.starts_with("HYBRID_RUNNER_") || name.starts_with("GITEA_") {
                command.env_remove(&name);
            }
        }
        for var in [
            "KUBECONFIG",
            "KUBERNETES_SERVICE_HOST",
            "KUBERNETES_SERVICE_PORT",
            "GITHUB_ACTIONS",
            "GITHUB_WORKSPACE",
            "ACTIONS_STEP_DEBUG",
            "RUST_LOG",
            "ACTIONS_RUNNER_INPUT_JITCONFIG",
        ] {
            command.env_remove(var);
        }
        command
            .env("NO_COLOR", "1")
            .env("HOME", self.dir.path())
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env("HYBRID_RUNNER_HOST_WORKDIR_PARENT", &self.workdir)
            .env("HYBRID_RUNNER_RUNNER_FETCH_INTERVAL", "100ms")
            .env("HYBRID_RUNNER_RUNNER_FETCH_INTERVAL_MAX", "200ms")
            .env(
                "HYBRID_RUNNER_RUNNER_CAPACITY",
                options.capacity.to_string(),
            )
            .env("HYBRID_RUNNER_LOG_LEVEL", "debug");
        for (k, v) in &options.env {
            command.env(k, v);
        }
        command
    }

    /// Starts the daemon.
    pub fn start(&self, options: &DaemonOptions) -> Daemon {
        Daemon::spawn(self.command(options))
    }
}

/// How a test runs the daemon.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// `runner.capacity` (`HYBRID_RUNNER_RUNNER_CAPACITY`).
    pub capacity: usize,
    /// More `daemon` arguments (`--once`, ...).
    pub args: Vec<String>,
    /// More environment, after the defaults.
    pub env: Vec<(String, String)>,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            capacity: 1,
            args: Vec::new(),
            env: Vec::new(),
        }
    }
}

impl DaemonOptions {
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n;
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.push((name.to_string(), value.into()));
        self
    }
}

/// A running daemon. Dropping it kills it (SIGKILL) and reaps it.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    output: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Daemon {
    /// Starts `command` (a `hybrid-runner daemon` command line), its output collected.
    pub fn spawn(mut command: Command) -> Daemon {
        let mut child = command.spawn().expect("hybrid-runner daemon starts");
        let output = Arc::new(Mutex::new(String::new()));
        let echo = std::env::var_os("HR_TEST_ECHO_DAEMON").is_some();
        let mut readers = Vec::new();
        let streams: Vec<Box<dyn std::io::Read + Send>> = vec![
            Box::new(child.stdout.take().expect("piped stdout")),
            Box::new(child.stderr.take().expect("piped stderr")),
        ];
        for stream in streams {
            let sink = Arc::clone(&output);
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if echo {
                        eprintln!("daemon| {line}");
                    }
                    let mut text = lock(&sink);
                    text.push_str(&line);
                    text.push('\n');
                }
            }));
        }
        Daemon {
            child,
            output,
            readers,
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the daemon printed so far (stdout and stderr, interleaved by line).
    pub fn output(&self) -> String {
        lock(&self.output).clone()
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: Signal) {
        if self.status.is_none() {
            let pid = i32::try_from(self.child.id()).expect("a pid fits in i32");
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    /// SIGKILL, then reaps it.
    pub fn kill(&mut self) -> ExitStatus {
        self.signal(Signal::SIGKILL);
        self.wait_exit(Duration::from_secs(30))
            .expect("a SIGKILLed daemon exits")
    }

    /// Waits up to `timeout` for the daemon to exit; its status, or `None` if it still
    /// runs. Once exited, its output has been read to the end.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.status {
            return Some(status);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait on the daemon") {
                self.status = Some(status);
                for reader in self.readers.drain(..) {
                    let _ = reader.join();
                }
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        self.status.is_none() && self.child.try_wait().ok().flatten().is_none()
    }

    /// The daemon's own figures from `/proc` while it runs (`None` once it exited).
    pub fn usage(&self) -> Option<ProcessUsage> {
        if self.status.is_some() {
            return None;
        }
        ProcessUsage::of(self.child.id())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Memory and CPU of one process, from `/proc/<pid>/status` and `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessUsage {
    /// `VmHWM`: peak resident set, KiB.
    pub peak_rss_kib: u64,
    /// `VmRSS`: resident set now, KiB.
    pub rss_kib: u64,
    /// utime + stime of the process itself.
    pub cpu: Duration,
    /// cutime + cstime: its waited-for children (the steps' shells).
    pub children_cpu: Duration,
}

impl ProcessUsage {
    pub fn of(pid: u32) -> Option<ProcessUsage> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces) start at field 3.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime is field 14 of the whole line, i.e. index 11 after the command name.
        let per_tick = Duration::from_millis(10); // USER_HZ is 100 on Linux
        Some(ProcessUsage {
            peak_rss_kib: kib("VmHWM:"),
            rss_kib: kib("VmRSS:"),
            cpu: per_tick * u32::try_from(ticks(11) + ticks(12)).unwrap_or(u32::MAX),
            children_cpu: per_tick * u32::try_from(ticks(13) + ticks(14)).unwrap_or(u32::MAX),
        })
    }
}

/// Runs `command` to its end, stdout and stderr piped, and samples its peak resident set
/// (`VmHWM`, which only grows) every `every` until it is gone: its output and that peak in
/// KiB.
pub fn output_with_peak_rss(mut command: Command, every: Duration) -> (std::process::Output, u64) {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let pid = child.id();
    // The pipes are read on a thread while this one watches the peak.
    let waiting = std::thread::spawn(move || child.wait_with_output());
    let mut peak_kib = 0;
    while !waiting.is_finished() {
        if let Some(usage) = ProcessUsage::of(pid) {
            peak_kib = peak_kib.max(usage.peak_rss_kib);
        }
        std::thread::sleep(every);
    }
    let output = waiting
        .join()
        .expect("the waiting thread")
        .unwrap_or_else(|e| panic!("waiting for the process: {e}"));
    (output, peak_kib)
}

/// The pids of this user's processes whose environment holds `marker` (e.g.
/// `HR_TEST_MARKER=cancel-1234`): what is left of a job's step processes.
pub fn processes_with_env(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == marker.as_bytes()))
        })
        .filter(|&pid| !gone(pid as i32))
        .collect()
}

/// Whether process `pid` is gone, or only a zombie nobody reaped (PID 1 in a sandbox may
/// not reap): gone for every purpose of a test.
pub fn gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// Waits up to `timeout` until no process carries `marker`; the pids left otherwise.
pub fn wait_processes_gone(marker: &str, timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = processes_with_env(marker);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
