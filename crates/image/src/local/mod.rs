//! Builds on this host with buildah, podman or docker: every variant of a request built in
//! parallel, each tag pushed when the request says so, the digest read back.
//!
//! Each command runs through [`hr_process::host::run_process`]: its own process group,
//! output streamed line by line into the [`BuildLog`] tagged with the variant, and the
//! GitHub runner's stop sequence (SIGINT, SIGTERM, SIGKILL to the group) on cancel or when
//! [`BuildJob::timeout`] runs out. The builder sees this process's environment, so
//! `STORAGE_DRIVER`, `BUILDAH_ISOLATION`, `CONTAINERS_STORAGE_CONF`, `DOCKER_HOST` … apply
//! as the user set them; nothing (no storage driver, no isolation) is hard-coded.
//!
//! When one variant fails the others still finish (their images are independent); the
//! build then reports the first failure in request order.

pub mod command;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actions::image_build::{Variant, VariantRequest};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::command::{
    CommandLine, build_command, digest_in_push_output, digest_in_repo_digests, inspect_command,
    is_digest, is_insecure, pulls_from_insecure, push_command,
};
use super::{BuildError, BuildJob, BuildLog, BuildOutcome, BuildProgress, BuiltImage};
use hr_process::host::{OutputStream, ProcessExit, ProcessSpec, StopPolicy, run_process};

/// How many of the builder's last output lines a failure message quotes.
const TAIL_LINES: usize = 20;

/// Which local program builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalTool {
    Buildah,
    Podman,
    Docker,
}

impl LocalTool {
    /// In the order `--builder auto` tries them.
    pub const ALL: [LocalTool; 3] = [LocalTool::Buildah, LocalTool::Podman, LocalTool::Docker];

    /// The name as `--builder` spells it, which is also the program's usual name.
    pub fn as_str(self) -> &'static str {
        match self {
            LocalTool::Buildah => "buildah",
            LocalTool::Podman => "podman",
            LocalTool::Docker => "docker",
        }
    }
}

impl std::fmt::Display for LocalTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A local builder: the tool and the program that runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalBuilder {
    pub tool: LocalTool,
    /// The program to start (usually found on `PATH`).
    pub program: PathBuf,
    /// Variables set for the builder on top of this process's environment (e.g. a private
    /// `CONTAINERS_STORAGE_CONF`); empty by default.
    pub env: Vec<(String, String)>,
}

/// The commands of one variant, in the order they run (for `--dry-run`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantCommands {
    pub variant: Variant,
    pub build: CommandLine,
    /// One per tag when the request pushes; empty otherwise.
    pub pushes: Vec<CommandLine>,
}

/// A finished command: how it ended, its last lines, and its stdout when captured.
struct Finished {
    exit: ProcessExit,
    tail: VecDeque<String>,
    stdout: Vec<String>,
}

impl LocalBuilder {
    pub fn new(tool: LocalTool, program: impl Into<PathBuf>) -> LocalBuilder {
        LocalBuilder {
            tool,
            program: program.into(),
            env: Vec::new(),
        }
    }

    /// Every command [`LocalBuilder::build`] would run for `job` (pushes write their digest
    /// to `<digest-dir>/<variant>-<n>.digest`, a temporary folder at run time).
    pub fn commands(&self, job: &BuildJob) -> Vec<VariantCommands> {
        job.request
            .variants
            .iter()
            .map(|variant| VariantCommands {
                variant: variant.variant,
                build: build_command(
                    self.tool,
                    &self.program,
                    job,
                    variant,
                    pull_insecure(job, variant),
                ),
                pushes: if job.request.push {
                    push_commands(self, job, variant, Path::new("<digest-dir>"))
                } else {
                    Vec::new()
                },
            })
            .collect()
    }

    /// Builds every variant in parallel, then pushes each variant's tags (when the request
    /// pushes) and reports one [`BuiltImage`] per variant in request order.
    pub async fn build(
        &self,
        job: &BuildJob,
        log: &BuildLog,
        cancel: &CancellationToken,
    ) -> Result<BuildOutcome, BuildError> {
        let deadline = Instant::now() + job.timeout;
        let scratch = tempfile::Builder::new()
            .prefix("hybrid-runner-build-")
            .tempdir()
            .map_err(|e| BuildError::Unavailable {
                builder: self.tool.as_str(),
                message: format!(
                    "cannot create a temporary folder for the push digests: {e}; check TMPDIR"
                ),
            })?;
        let shared = Arc::new((self.clone(), job.clone()));
        let mut tasks = JoinSet::new();
        for (index, variant) in job.request.variants.iter().enumerate() {
            let shared = Arc::clone(&shared);
            let variant = variant.clone();
            let log = log.clone();
            let cancel = cancel.clone();
            let digest_dir = scratch.path().to_path_buf();
            tasks.spawn(async move {
                let (builder, job) = &*shared;
                let run = VariantRun {
                    builder,
                    job,
                    variant: &variant,
                    deadline,
                    digest_dir: &digest_dir,
                    log: &log,
                    cancel: &cancel,
                };
                (index, run.run().await)
            });
        }
        let mut results: Vec<Option<Result<BuiltImage, BuildError>>> =
            job.request.variants.iter().map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((index, result)) => {
                    if let Some(slot) = results.get_mut(index) {
                        *slot = Some(result);
                    }
                }
                Err(e) => {
                    // A panicking variant task: blame the first variant without a result.
                    if let Some((slot, variant)) = results
                        .iter_mut()
                        .zip(&job.request.variants)
                        .find(|(slot, _)| slot.is_none())
                    {
                        *slot = Some(Err(BuildError::Failed {
                            variant: variant.variant,
                            message: format!("the build task stopped unexpectedly: {e}"),
                        }));
                    }
                }
            }
        }
        collect_outcome(results)
    }
}

/// The images in request order, or the error that matters most: a cancel, then a
/// timeout, then the first failure.
fn collect_outcome(
    results: Vec<Option<Result<BuiltImage, BuildError>>>,
) -> Result<BuildOutcome, BuildError> {
    let mut images = Vec::new();
    let mut first_error = None;
    for result in results.into_iter().flatten() {
        match result {
            Ok(image) => images.push(image),
            Err(error) => {
                let rank = |e: &BuildError| match e {
                    BuildError::Cancelled => 0,
                    BuildError::TimedOut(_) => 1,
                    _ => 2,
                };
                let replace = first_error
                    .as_ref()
                    .is_none_or(|current| rank(&error) < rank(current));
                if replace {
                    first_error = Some(error);
                }
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(BuildOutcome { images }),
    }
}

fn push_commands(
    builder: &LocalBuilder,
    job: &BuildJob,
    variant: &VariantRequest,
    digest_dir: &Path,
) -> Vec<CommandLine> {
    variant
        .tags
        .iter()
        .enumerate()
        .map(|(n, tag)| {
            let file = digest_dir.join(format!("{}-{n}.digest", variant.variant));
            push_command(
                builder.tool,
                &builder.program,
                tag,
                &file,
                is_insecure(tag, &job.insecure_registries),
            )
        })
        .collect()
}

/// One variant's build, push and digest.
struct VariantRun<'a> {
    builder: &'a LocalBuilder,
    job: &'a BuildJob,
    variant: &'a VariantRequest,
    deadline: Instant,
    digest_dir: &'a Path,
    log: &'a BuildLog,
    cancel: &'a CancellationToken,
}

impl VariantRun<'_> {
    async fn run(&self) -> Result<BuiltImage, BuildError> {
        let variant = self.variant.variant;
        self.log.progress(BuildProgress::Started(variant));
        let result = self.build_and_push().await;
        match &result {
            Ok(image) => self.log.progress(BuildProgress::Built(image.clone())),
            Err(BuildError::Failed { variant, message }) => {
                self.log.progress(BuildProgress::Failed {
                    variant: *variant,
                    message: message.clone(),
                });
            }
            Err(other) => self.log.progress(BuildProgress::Failed {
                variant,
                message: other.to_string(),
            }),
        }
        result
    }

    async fn build_and_push(&self) -> Result<BuiltImage, BuildError> {
        let tool = self.builder.tool;
        let insecure_pull = pull_insecure(self.job, self.variant);
        if insecure_pull && tool != LocalTool::Docker {
            self.line(format!(
                "note: a base image of {} is on an insecure registry; {tool} pulls without TLS verification",
                self.variant.dockerfile
            ));
        }
        let build = build_command(
            tool,
            &self.builder.program,
            self.job,
            self.variant,
            insecure_pull,
        );
        let finished = self.run_command(&build, true).await?;
        if !finished.exit.success() {
            return Err(self.failed("build", &finished));
        }
        let digest = if self.job.request.push {
            self.push_all().await?
        } else {
            self.local_digest().await?
        };
        Ok(BuiltImage {
            variant: self.variant.variant,
            digest,
            tags: self.variant.tags.clone(),
        })
    }

    /// Pushes every tag; the digest is the first push's (a later push that reports a
    /// different one is noted in the log).
    async fn push_all(&self) -> Result<String, BuildError> {
        let tool = self.builder.tool;
        let pushes = push_commands(self.builder, self.job, self.variant, self.digest_dir);
        let mut digest: Option<String> = None;
        for (push, tag) in pushes.iter().zip(&self.variant.tags) {
            if tool == LocalTool::Docker && is_insecure(tag, &self.job.insecure_registries) {
                self.line(format!(
                    "note: docker pushes to {tag} over plain HTTP only when the Docker daemon lists its registry in insecure-registries"
                ));
            }
            let finished = self.run_command(push, true).await?;
            if !finished.exit.success() {
                return Err(self.failed(&format!("push of {tag}"), &finished));
            }
            let pushed = match tool {
                LocalTool::Buildah | LocalTool::Podman => read_digest_file(push),
                LocalTool::Docker => match digest_in_push_output(&finished.stdout) {
                    Some(d) => Some(d),
                    None => self.docker_repo_digest(tag).await?,
                },
            };
            let Some(pushed) = pushed else {
                return Err(BuildError::Failed {
                    variant: self.variant.variant,
                    message: format!(
                        "{tool} pushed {tag} but did not report its digest; check the registry and the {tool} version"
                    ),
                });
            };
            match &digest {
                None => digest = Some(pushed),
                Some(first) if *first != pushed => self.line(format!(
                    "note: {tag} was pushed as {pushed}, not {first} like the first tag; the registry re-encoded the image"
                )),
                Some(_) => {}
            }
        }
        Ok(digest.unwrap_or_default())
    }

    async fn docker_repo_digest(&self, tag: &str) -> Result<Option<String>, BuildError> {
        let inspect = inspect_command(LocalTool::Docker, &self.builder.program, tag);
        let finished = self.run_command(&inspect, false).await?;
        Ok(finished
            .exit
            .success()
            .then(|| digest_in_repo_digests(&finished.stdout.join("\n"), tag))
            .flatten())
    }

    /// The digest of the image that was built but not pushed: the local manifest digest
    /// for buildah and podman; docker keeps none (empty, and said so).
    async fn local_digest(&self) -> Result<String, BuildError> {
        let tool = self.builder.tool;
        let Some(first) = self.variant.tags.first() else {
            return Ok(String::new());
        };
        if tool == LocalTool::Docker {
            self.line(
                "note: the image was not pushed, and docker knows no manifest digest for a local image; the digest stays empty",
            );
            return Ok(String::new());
        }
        let inspect = inspect_command(tool, &self.builder.program, first);
        let finished = self.run_command(&inspect, false).await?;
        let digest = finished
            .stdout
            .iter()
            .map(|l| l.trim())
            .find(|l| is_digest(l))
            .map(str::to_string);
        match digest {
            Some(d) if finished.exit.success() => Ok(d),
            _ => {
                self.line(format!(
                    "note: {tool} did not report a local digest for {first}; the digest stays empty"
                ));
                Ok(String::new())
            }
        }
    }

    /// Runs one command to its end; `show` streams its output into the log (else stdout
    /// is only captured).
    async fn run_command(&self, command: &CommandLine, show: bool) -> Result<Finished, BuildError> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(BuildError::TimedOut(self.job.timeout));
        }
        if show {
            self.line(format!("$ {command}"));
        }
        let spec = ProcessSpec {
            program: command.program.to_string_lossy().into_owned(),
            args: command.args.clone(),
            env: self.environment(),
            cwd: self.job.workspace.clone(),
            timeout: Some(remaining),
        };
        let mut tail = VecDeque::with_capacity(TAIL_LINES);
        let mut stdout = Vec::new();
        let variant = self.variant.variant;
        let log = self.log;
        let mut on_line = |stream: OutputStream, line: &str| {
            if show {
                log.line(Some(variant), line);
            }
            if stream == OutputStream::Stdout {
                stdout.push(line.to_string());
            }
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.to_string());
        };
        let exit = run_process(&spec, StopPolicy::default(), &mut on_line, self.cancel)
            .await
            .map_err(|e| BuildError::Unavailable {
                builder: self.builder.tool.as_str(),
                message: format!(
                    "cannot run {}: {e}; install {} or pick another --builder",
                    command.program.display(),
                    self.builder.tool
                ),
            })?;
        if exit.cancelled {
            return Err(BuildError::Cancelled);
        }
        if exit.timed_out {
            return Err(BuildError::TimedOut(self.job.timeout));
        }
        Ok(Finished { exit, tail, stdout })
    }

    /// This process's environment with the builder's own variables on top.
    fn environment(&self) -> Vec<(String, String)> {
        let extra = &self.builder.env;
        let mut env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .collect();
        env.extend(extra.iter().cloned());
        env
    }

    fn failed(&self, what: &str, finished: &Finished) -> BuildError {
        let status = match (finished.exit.code, finished.exit.signal) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            _ => "an unknown status".to_string(),
        };
        let tail: Vec<&str> = finished.tail.iter().map(String::as_str).collect();
        BuildError::Failed {
            variant: self.variant.variant,
            message: format!(
                "{} {what} of {} ended with {status}; its last lines:\n{}",
                self.builder.tool,
                self.variant.dockerfile,
                tail.join("\n")
            ),
        }
    }

    fn line(&self, text: impl Into<String>) {
        self.log.line(Some(self.variant.variant), text);
    }
}

/// Whether the variant's Dockerfile pulls a base image from an insecure registry (an
/// unreadable Dockerfile says no; the build itself then reports it).
fn pull_insecure(job: &BuildJob, variant: &VariantRequest) -> bool {
    !job.insecure_registries.is_empty()
        && std::fs::read_to_string(job.dockerfile_path(&variant.dockerfile))
            .is_ok_and(|text| pulls_from_insecure(&text, &job.insecure_registries))
}

/// The digest a buildah/podman push wrote to its `--digestfile`.
fn read_digest_file(push: &CommandLine) -> Option<String> {
    let at = push.args.iter().position(|a| a == "--digestfile")?;
    let path = push.args.get(at + 1)?;
    let text = std::fs::read_to_string(path).ok()?;
    let digest = text.trim();
    is_digest(digest).then(|| digest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(variant: Variant) -> BuiltImage {
        BuiltImage {
            variant,
            digest: String::new(),
            tags: Vec::new(),
        }
    }

    #[test]
    fn outcome_keeps_order_and_ranks_errors() {
        let ok = collect_outcome(vec![
            Some(Ok(image(Variant::Docker))),
            Some(Ok(image(Variant::K8s))),
        ])
        .unwrap();
        assert_eq!(ok.images[1].variant, Variant::K8s);

        let failed = || BuildError::Failed {
            variant: Variant::Docker,
            message: "x".into(),
        };
        let err = collect_outcome(vec![Some(Err(failed())), Some(Err(BuildError::Cancelled))]);
        assert!(matches!(err, Err(BuildError::Cancelled)));
        let err = collect_outcome(vec![Some(Ok(image(Variant::Docker))), Some(Err(failed()))]);
        assert!(matches!(err, Err(BuildError::Failed { .. })));
    }
}
