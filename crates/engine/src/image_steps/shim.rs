//! The `docker` / `nerdctl` shim of one job: a folder put on every step's `PATH` with two
//! small executables that hand their command line to the running `hybrid-runner`
//! (`hybrid-runner __docker-shim docker ARGS`; written once per run, shared by its jobs), and
//! the job's own Unix socket they hand it to (named by the step's environment). The
//! shim process builds nothing: the engine parses the command (`parse_docker_cli`), runs
//! builds on the run's builder, streams the lines back and sends the exit code. Cancel and
//! cleanup stay here: a build stops when the job is stopped hard or when the shim process
//! goes away (Ctrl-C, a step timeout), and the job waits for its builds before it ends.
//!
//! Served: `build` (and `buildx build`), `push`, `tag`, `login` (accepted; the runner pushes
//! with its own credentials), `version`. Everything else exits 1 with what to use instead.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actions::image_build::{DockerCommand, parse_docker_cli};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Mutex;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::images::{PushPlan, ShimImages};
use super::protocol::{
    SHIM_PROGRAMS, SOCKET_VARIABLE, ShimReply, ShimRequest, decode, encode, shim_script,
};
use super::{BuildFailure, BuildService, DEFAULT_BUILD_TIMEOUT, log_line};
use hr_image::registry::ImageRef;
use hr_image::{BuildJob, BuildLog, BuildOutcome};

/// The longest Unix socket path Linux takes (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// What a job's shim connections share.
#[derive(Debug)]
struct ShimContext {
    builds: Arc<BuildService>,
    /// The job's commit, for builds whose step has no `GITHUB_SHA`.
    sha: String,
    /// The job (or matrix leg) id; each build gets its own task ids from it.
    job: String,
    images: Mutex<ShimImages>,
    /// Cancelled when the job ends (or is stopped hard): every build stops and cleans up.
    stop: CancellationToken,
}

/// A running shim: its folder (for `PATH`) and socket (for [`SOCKET_VARIABLE`]).
#[derive(Debug)]
pub struct DockerShim {
    pub dir: PathBuf,
    pub socket: PathBuf,
    stop: CancellationToken,
    server: JoinHandle<()>,
    context: Arc<ShimContext>,
}

/// Why the `docker` shim of a job could not be set up (the job's `docker` is then the
/// host's, with a warning).
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("cannot find the hybrid-runner binary: {0}")]
    CurrentExe(#[source] std::io::Error),
    #[error("cannot create {}: {source}", dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    WriteExecutable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the socket path {} is longer than {} bytes; set TMPDIR to a shorter folder",
        socket.display(),
        MAX_SOCKET_PATH
    )]
    SocketPath { socket: PathBuf },
    #[error("cannot listen on {}: {source}", socket.display())]
    Listen {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes the executables (`docker`, `nerdctl`) into `dir`. They hold nothing job-specific
/// (the socket comes from the step's environment), so one folder serves every job of a run.
/// `runner` is the `hybrid-runner` binary they call.
pub fn write_executables(dir: &Path, runner: &Path) -> Result<(), ShimError> {
    std::fs::create_dir_all(dir).map_err(|source| ShimError::CreateDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    for program in SHIM_PROGRAMS {
        let path = dir.join(program);
        std::fs::write(&path, shim_script(runner, program))
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)))
            .map_err(|source| ShimError::WriteExecutable {
                path: path.clone(),
                source,
            })?;
    }
    Ok(())
}

impl DockerShim {
    /// Binds `socket` and starts serving; `dir` holds the executables
    /// ([`write_executables`]).
    pub fn start(
        dir: &Path,
        socket: PathBuf,
        builds: Arc<BuildService>,
        sha: String,
        job: String,
        parent: &CancellationToken,
    ) -> Result<DockerShim, ShimError> {
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(ShimError::SocketPath { socket });
        }
        let listener = match UnixListener::bind(&socket) {
            Ok(listener) => listener,
            Err(source) => return Err(ShimError::Listen { socket, source }),
        };
        let stop = parent.child_token();
        let context = Arc::new(ShimContext {
            builds,
            sha,
            job,
            images: Mutex::new(ShimImages::default()),
            stop: stop.clone(),
        });
        let server = tokio::spawn(serve(listener, context.clone()));
        Ok(DockerShim {
            context,
            dir: dir.to_path_buf(),
            socket,
            stop,
            server,
        })
    }

    /// The variable steps need to reach the shim.
    pub fn env(&self) -> (String, String) {
        (
            SOCKET_VARIABLE.to_string(),
            self.socket.display().to_string(),
        )
    }

    /// A build of a built-in action step, so `docker tag` / `docker push` in later run
    /// steps know its images.
    pub async fn record_build(&self, job: &BuildJob, outcome: &BuildOutcome) {
        self.context.images.lock().await.record_build(job, outcome);
    }

    /// Stops accepting, cancels builds still running and waits until they cleaned up.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.server.await;
    }
}

async fn serve(listener: UnixListener, context: Arc<ShimContext>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = context.stop.cancelled() => break,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    connections.spawn(connection(context.clone(), stream));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    while connections.join_next().await.is_some() {}
}

/// One shim invocation: read the request, serve it while watching for the shim to go
/// away, forward every reply line.
async fn connection(context: Arc<ShimContext>, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    let request = match reader.read_line(&mut line).await {
        Ok(n) if n > 0 => decode::<ShimRequest>(&line),
        _ => return,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ShimReply>();
    let cancel = context.stop.child_token();
    let work = async {
        match request {
            Ok(request) => {
                let code = context.run(&request, &tx, &cancel).await;
                let _ = tx.send(ShimReply::Exit(code));
            }
            Err(message) => {
                let _ = tx.send(ShimReply::Stderr(message.to_string()));
                let _ = tx.send(ShimReply::Exit(2));
            }
        }
        drop(tx);
    };
    let forward = async {
        while let Some(reply) = rx.recv().await {
            if write.write_all(&encode(&reply)).await.is_err() {
                cancel.cancel();
            }
        }
        let _ = write.shutdown().await;
    };
    let watch = async {
        // The shim sends nothing after its request: end of stream means it is gone.
        let mut byte = [0u8; 1];
        let _ = reader.read(&mut byte).await;
        cancel.cancel();
        std::future::pending::<()>().await;
    };
    tokio::pin!(work);
    let work_or_gone = async {
        let finished = tokio::select! {
            () = &mut work => true,
            () = watch => false,
        };
        if !finished {
            // The shim went away: the build still gets to clean up.
            work.await;
        }
    };
    tokio::join!(work_or_gone, forward);
}

impl ShimContext {
    /// Serves one command; returns its exit code.
    async fn run(
        &self,
        request: &ShimRequest,
        out: &UnboundedSender<ShimReply>,
        cancel: &CancellationToken,
    ) -> i32 {
        let say = |line: String| {
            let _ = out.send(ShimReply::Stdout(line));
        };
        let complain = |line: String| {
            let _ = out.send(ShimReply::Stderr(line));
        };
        let command = match parse_docker_cli(&request.args) {
            Ok(command) => command,
            Err(e) => {
                complain(format!("{}: {e}", request.program));
                return 1;
            }
        };
        match command {
            DockerCommand::Version => {
                say(format!(
                    "Client: {} (hybrid-runner {} docker shim)",
                    request.program,
                    env!("CARGO_PKG_VERSION")
                ));
                say(format!(
                    "Server: hybrid-runner image builds (builder: {})",
                    self.builds.settings.builder.as_str()
                ));
                0
            }
            DockerCommand::Login { registry } => {
                complain(format!(
                    "{} login {registry}: accepted, but the credentials given here are not stored or used: the runner pushes with its own (its Docker config, ~/.docker/config.json or DOCKER_CONFIG, or the cluster's registry secret)",
                    request.program
                ));
                say("Login Succeeded".to_string());
                0
            }
            DockerCommand::Unsupported { message } => {
                complain(message);
                1
            }
            DockerCommand::Build(build) => {
                let job = BuildJob {
                    request: build,
                    workspace: request.cwd.clone(),
                    sha: request
                        .variable("GITHUB_SHA")
                        .unwrap_or(&self.sha)
                        .to_string(),
                    task: self.builds.task_ids(&self.job),
                    timeout: DEFAULT_BUILD_TIMEOUT,
                    insecure_registries: self.builds.settings.insecure_registries.clone(),
                };
                match self.build(&job, out, cancel).await {
                    Ok(outcome) => {
                        for image in &outcome.images {
                            if !image.digest.is_empty() {
                                say(image.digest.clone());
                            }
                        }
                        self.images.lock().await.record_build(&job, &outcome);
                        0
                    }
                    Err(code) => code,
                }
            }
            DockerCommand::Tag { source, target } => self.tag(&source, &target, out).await,
            DockerCommand::Push { image } => self.push(&image, out, cancel).await,
        }
    }

    /// A build with its lines streamed to the shim's stderr; `Err(exit code)` on failure.
    async fn build(
        &self,
        job: &BuildJob,
        out: &UnboundedSender<ShimReply>,
        cancel: &CancellationToken,
    ) -> Result<BuildOutcome, i32> {
        let lines = out.clone();
        let log = BuildLog::new(move |line| {
            let _ = lines.send(ShimReply::Stderr(log_line(&line)));
        });
        match self.builds.build(job, &log, cancel).await {
            Ok(outcome) => Ok(outcome),
            Err(BuildFailure::Cancelled) => {
                let _ = out.send(ShimReply::Stderr("the build was cancelled".into()));
                Err(130)
            }
            Err(BuildFailure::Failed(message)) => {
                let _ = out.send(ShimReply::Stderr(format!("error: {message}")));
                Err(1)
            }
        }
    }

    async fn tag(&self, source: &str, target: &str, out: &UnboundedSender<ShimReply>) -> i32 {
        if self.images.lock().await.tag(source, target) {
            return 0;
        }
        // Not built in this job: an image already in its registry can still be tagged.
        let found = match (self.builds.registry().await, ImageRef::parse(source)) {
            (Ok(client), Ok(reference)) => client.digest(&reference).await.map_err(Arc::new),
            (Err(e), _) => Err(e),
            (_, Err(e)) => Err(Arc::new(e)),
        };
        let why = match found {
            Ok(Some(digest)) => {
                self.images
                    .lock()
                    .await
                    .tag_from_registry(source, &digest, target);
                return 0;
            }
            Ok(None) => {
                "it was not built in this job and its registry does not have it".to_string()
            }
            Err(e) => {
                format!("it was not built in this job and its registry could not be asked: {e}")
            }
        };
        let _ = out.send(ShimReply::Stderr(format!(
            "Error response from daemon: No such image: {source} ({why}; images are not stored on this runner: build it in this job with `docker build -t {source} .`, or push it to its registry first)"
        )));
        1
    }

    async fn push(
        &self,
        image: &str,
        out: &UnboundedSender<ShimReply>,
        cancel: &CancellationToken,
    ) -> i32 {
        let plan = self.images.lock().await.plan_push(image);
        let say = |line: String| {
            let _ = out.send(ShimReply::Stdout(line));
        };
        match plan {
            PushPlan::AlreadyPushed { digest } => {
                say(format!(
                    "{image}: already pushed in this job: digest: {digest}"
                ));
                0
            }
            PushPlan::Copy { from, digest } => {
                let (source, target) = match (ImageRef::parse(&from), ImageRef::parse(image)) {
                    (Ok(source), Ok(target)) => (source, target),
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = out.send(ShimReply::Stderr(format!("error: {e}")));
                        return 1;
                    }
                };
                let how = if source.same_repository(&target) {
                    "tagged in the registry".to_string()
                } else {
                    format!("copied from {from}")
                };
                let copied = match self.builds.registry().await {
                    Ok(client) => client
                        .copy_image(&source.with_reference(&digest), &target)
                        .await
                        .map_err(Arc::new),
                    Err(e) => Err(e),
                };
                match copied {
                    Ok(digest) => {
                        self.images.lock().await.record_push(image, &digest);
                        say(format!("{image}: {how}: digest: {digest}"));
                        0
                    }
                    Err(e) => {
                        let _ = out.send(ShimReply::Stderr(format!("error: {e}")));
                        1
                    }
                }
            }
            PushPlan::Rebuild(mut job) => {
                // A build of its own: the first build's namespace may still be terminating.
                job.task = self.builds.task_ids(&self.job);
                let _ = out.send(ShimReply::Stderr(format!(
                    "{image} was built without --push: building it again with a push to {image} (layers come from the builder's cache)"
                )));
                match self.build(&job, out, cancel).await {
                    Ok(outcome) => {
                        let digest = outcome
                            .images
                            .first()
                            .map(|i| i.digest.clone())
                            .unwrap_or_default();
                        self.images.lock().await.record_push(image, &digest);
                        say(format!("{image}: digest: {digest}"));
                        0
                    }
                    Err(code) => code,
                }
            }
            PushPlan::Unknown => {
                let _ = out.send(ShimReply::Stderr(format!(
                    "An image does not exist locally with the tag: {image} (this runner keeps no local images: build it in this job with `docker build -t {image} .` or `--push`, or use `hybrid-runner/build`)"
                )));
                1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_errors_keep_their_wording() {
        let e = ShimError::SocketPath {
            socket: PathBuf::from("/tmp/x/docker.sock"),
        };
        assert_eq!(
            e.to_string(),
            "the socket path /tmp/x/docker.sock is longer than 107 bytes; set TMPDIR to a shorter folder"
        );
    }
}
