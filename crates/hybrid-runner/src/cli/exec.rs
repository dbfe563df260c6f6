//! `hybrid-runner exec`: run workflows locally on the host, as GitHub would, with the
//! flags act and act_runner users already type. Exit 0 when every job succeeded, 1 when
//! one failed, 2 on usage or workflow errors, 130 on Ctrl-C.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::kube_args::{KubeArgs, RunnerArgs};
use super::{UsageError, default_workflow_paths, dotenv, input_file, workflow_files};
use crate::console::{HumanRenderer, JsonRenderer, RenderOptions, color_wanted};
use hr_engine::events::{Event, EventSink, LogKind};
use hr_engine::image_steps::BuildSettings;
use hr_engine::pod::PodSettings;
use hr_engine::{ExecError, ExecOptions};
use hr_image::BuilderChoice;
use hr_process::host::StopPolicy;
use hr_process::stop_signals::StopSignals;

#[derive(Debug, clap::Args)]
// A flag given twice (in `.actrc` and on the command line) takes the later value, as in act.
#[command(args_override_self = true)]
pub struct Args {
    /// Workflow file or folder [default: .github/workflows, then .gitea/workflows]
    #[arg(short = 'W', long = "workflows", value_name = "PATH")]
    pub workflows: Option<PathBuf>,
    /// Run only this job (and the jobs it needs); repeatable
    #[arg(short = 'j', long = "job", value_name = "JOB")]
    pub jobs: Vec<String>,
    /// The event that triggers the run [default: the workflows' only event, else push]
    #[arg(short = 'E', long = "event", value_name = "EVENT")]
    pub event: Option<String>,
    /// The event payload (JSON), as `github.event`
    #[arg(short = 'e', long = "eventpath", value_name = "FILE")]
    pub event_path: Option<PathBuf>,
    /// A workflow input (`workflow_dispatch` / `workflow_call`); repeatable
    #[arg(long = "input", value_name = "NAME=VALUE")]
    pub inputs: Vec<String>,
    /// Inputs from a dotenv file (act's flag); `--input` wins over it
    #[arg(long = "input-file", value_name = "FILE")]
    pub input_file: Option<PathBuf>,
    /// A secret (`NAME=VALUE`, or `NAME` to read it from the environment); repeatable
    #[arg(short = 's', long = "secret", value_name = "NAME[=VALUE]")]
    pub secrets: Vec<String>,
    /// Secrets from a dotenv file
    #[arg(long = "secret-file", value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// A configuration variable (`vars` context); repeatable
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Variables from a dotenv file (act's flag); `--var` wins over it
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_file: Option<PathBuf>,
    /// An environment variable for every step (`env` context); repeatable
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Environment variables from a dotenv file
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Run only the matrix legs with this value (`KEY:VALUE`); repeatable
    #[arg(long = "matrix", value_name = "KEY:VALUE")]
    pub matrix: Vec<String>,
    /// List the jobs that would run, then stop
    #[arg(short = 'l', long = "list")]
    pub list: bool,
    /// Plan and evaluate every step without running any process
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// Map a `runs-on` label to a platform (`LABEL=host`); repeatable
    #[arg(short = 'P', long = "platform", value_name = "LABEL=host")]
    pub platforms: Vec<String>,
    /// How many jobs (matrix legs) run at once [default: the number of cores]
    #[arg(
        long = "concurrency",
        visible_alias = "concurrent-jobs",
        value_name = "N"
    )]
    pub concurrency: Option<usize>,
    /// Run as if started in DIR (act's `-C`)
    #[arg(short = 'C', long = "directory", value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// Print one JSON event per line instead of human output
    #[arg(long)]
    pub json: bool,
    /// Where remote actions and workflows are cached [default: ~/.cache/hybrid-runner/actions]
    #[arg(long = "action-cache", value_name = "DIR")]
    pub action_cache: Option<PathBuf>,
    /// Use only cached actions; never fetch
    #[arg(long)]
    pub offline: bool,
    /// Where `owner/repo@ref` actions are fetched from (GitHub, a Gitea instance, a mirror)
    #[arg(
        long = "default-actions-url",
        value_name = "URL",
        default_value = "https://github.com"
    )]
    pub default_actions_url: String,
    /// Which builder runs image builds (`docker/build-push-action`, `hybrid-runner/build`,
    /// `docker build` in run steps); made at the first build
    #[arg(long = "builder", value_name = "BUILDER", default_value = "auto")]
    pub builder: BuilderChoice,
    /// A registry reached over plain HTTP (`HOST:PORT`); repeatable
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registries: Vec<String>,
    /// A registry reached over HTTPS without verifying its certificate, e.g. self-signed
    /// (`HOST:PORT`; Kaniko builds only); repeatable
    #[arg(long = "skip-tls-verify-registry", value_name = "HOST:PORT")]
    pub skip_tls_verify_registries: Vec<String>,
    /// Where Docker actions built from a Dockerfile are pushed (`REGISTRY/NAME`); built
    /// once per action and its inputs, reused after
    #[arg(long = "action-image-repo", value_name = "REPO")]
    pub action_image_repo: Option<String>,
    /// Leave the host's `docker`/`nerdctl` on the steps' PATH instead of the runner's shim
    #[arg(long = "no-docker-shim")]
    pub no_docker_shim: bool,
    /// Where jobs with `container:` or `services:` run: `kubernetes` runs each in a pod of
    /// its own namespace, `none` refuses them [default: kubernetes with --kubeconfig, else
    /// none]
    #[arg(long = "container-backend", value_name = "BACKEND")]
    pub container_backend: Option<ContainerBackend>,
    /// The image of a job pod that names none (a job with `services:` but no `container:`,
    /// the step pod of a host job's Docker steps); it needs `sh` and `tar`
    #[arg(long = "job-image", value_name = "IMAGE", default_value = hr_engine::pod::DEFAULT_JOB_IMAGE)]
    pub job_image: String,
    /// The image of the sidecar that forwards `ports: ['HOST:PORT']` from HOST to PORT in
    /// a job pod (busybox's `nc` with -ll and -e)
    #[arg(long = "forwarder-image", value_name = "IMAGE", default_value = hr_engine::pod::DEFAULT_FORWARDER_IMAGE)]
    pub forwarder_image: String,
    /// act's flags: actor, repository, event choice, graph, output, .gitignore
    #[command(flatten)]
    pub act: super::act_args::ActArgs,
    /// The cache server `actions/cache` saves to and restores from
    #[command(flatten)]
    pub cache_server: super::cache_server::CacheServerArgs,
    /// The cluster of the kaniko builder and of container jobs
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Whose build namespaces the kaniko builder makes
    #[command(flatten)]
    pub runner: RunnerArgs,
}

/// `--container-backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ContainerBackend {
    /// Refuse container jobs.
    None,
    /// Run container jobs in pods (the cluster of --kubeconfig, else the default one).
    Kubernetes,
}

fn pairs(
    values: &[String],
    separator: char,
    flag: &str,
) -> Result<Vec<(String, String)>, UsageError> {
    values
        .iter()
        .map(|v| {
            v.split_once(separator)
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| UsageError(format!("{flag} takes NAME{separator}VALUE, got `{v}`")))
        })
        .collect()
}

/// The workflow files `-W` names, else those of the first default folder there is.
fn workflow_files(args: &Args) -> Result<Vec<PathBuf>, UsageError> {
    let paths = match &args.workflows {
        Some(p) => vec![p.clone()],
        None => default_workflow_paths().into_iter().take(1).collect(),
    };
    if paths.is_empty() {
        return Err(UsageError(
            "no workflows found: neither .github/workflows nor .gitea/workflows exists here; pass -W PATH".into(),
        ));
    }
    workflow_files::expand(&paths)
}

fn options(
    args: &Args,
    workflow_files: Vec<PathBuf>,
    event: String,
) -> Result<ExecOptions, UsageError> {
    let workdir = std::env::current_dir()
        .map_err(|e| UsageError(format!("cannot read the current folder: {e}")))?;
    if let Some(file) = &args.event_path {
        input_file::check("-e", file)?;
    }
    let mut secrets = Vec::new();
    if let Some(file) = &args.secret_file {
        secrets.extend(dotenv::read("--secret-file", file)?);
    }
    for s in &args.secrets {
        match s.split_once('=') {
            Some((k, v)) => secrets.push((k.to_string(), v.to_string())),
            None => {
                let v = std::env::var(s).map_err(|_| {
                    UsageError(format!(
                        "-s {s}: no value given and no environment variable {s} is set"
                    ))
                })?;
                secrets.push((s.clone(), v));
            }
        }
    }
    let mut env = Vec::new();
    if let Some(file) = &args.env_file {
        env.extend(dotenv::read("--env-file", file)?);
    }
    env.extend(pairs(&args.env, '=', "--env")?);
    let cache = match &args.action_cache {
        Some(d) => d.clone(),
        None => cache_home().join("hybrid-runner/actions"),
    };
    Ok(ExecOptions {
        workflow_files,
        workdir,
        event,
        event_path: args.event_path.clone(),
        jobs: args.jobs.clone(),
        inputs: with_file(
            &args.input_file,
            "--input-file",
            pairs(&args.inputs, '=', "--input")?,
        )?,
        secrets,
        vars: with_file(
            &args.var_file,
            "--var-file",
            pairs(&args.vars, '=', "--var")?,
        )?,
        env,
        matrix: pairs(&args.matrix, ':', "--matrix")?,
        platforms: pairs(&args.platforms, '=', "-P")?,
        strict_platforms: false,
        concurrency: args
            .concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        action_cache: cache,
        offline: args.offline,
        default_actions_url: args.default_actions_url.clone(),
        github: args.act.github_overrides(),
        remote_name: args.act.remote_name.clone(),
        default_branch: args.act.default_branch.clone(),
        stop: StopPolicy::default(),
        dry_run: args.dry_run,
        debug_lines: args.act.verbose,
        builds: BuildSettings {
            builder: args.builder,
            kubeconfig: args.kube.kubeconfig.clone(),
            kube_context: args.kube.kube_context.clone(),
            runner_id: args.runner.runner_id.clone(),
            namespace_prefix: args.runner.namespace_prefix.clone(),
            insecure_registries: args.insecure_registries.clone(),
            skip_tls_verify_registries: args.skip_tls_verify_registries.clone(),
            docker_shim: !args.no_docker_shim,
            action_image_repo: args.action_image_repo.clone(),
        },
        pods: match args.container_backend {
            Some(ContainerBackend::Kubernetes) => true,
            Some(ContainerBackend::None) => false,
            None => args.kube.kubeconfig.is_some(),
        }
        .then(|| PodSettings {
            image: args.job_image.clone(),
            forwarder_image: args.forwarder_image.clone(),
            use_gitignore: args.act.use_gitignore,
            ..PodSettings::default()
        }),
        job_services: None,
    })
}

/// The pairs of dotenv `file` (when given) under `given`, which win over them.
fn with_file(
    file: &Option<PathBuf>,
    flag: &'static str,
    given: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, UsageError> {
    let mut all = match file {
        Some(f) => dotenv::read(flag, f)?,
        None => Vec::new(),
    };
    for (k, v) in given {
        all.retain(|(key, _)| *key != k);
        all.push((k, v));
    }
    Ok(all)
}

/// `$XDG_CACHE_HOME`, else `~/.cache`, else the temporary folder.
pub(super) fn cache_home() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &args.directory {
        // Before anything reads a path (no thread runs yet).
        std::env::set_current_dir(dir)
            .map_err(|e| UsageError(format!("-C {}: cannot change into it: {e}", dir.display())))?;
    }
    let files = workflow_files(&args)?;
    // Without -E the event comes from the workflows: they are loaded for it once, and the
    // run takes them from there.
    let mut loaded = None;
    let (event, choice) = args.act.event(args.event.as_deref(), || {
        let workdir = std::env::current_dir().unwrap_or_default();
        let files = hr_engine::read_workflows(&workdir, &files);
        let on = super::act_args::workflow_events(&files);
        loaded = Some(files);
        on
    });
    if args.act.verbose {
        for note in super::actrc::notes() {
            eprintln!("{note}");
        }
        eprintln!("event `{event}`: {choice}");
    }
    if args.list || args.act.graph {
        let list = super::list::Args {
            workflows: args.workflows.clone(),
            event: Some(event),
            json: args.json,
        };
        return if args.list {
            super::list::run(list)
        } else {
            super::graph::run(list)
        };
    }
    let output = Output {
        json: args.json,
        quiet: args.act.quiet,
        verbose: args.act.verbose,
    };
    let options = options(&args, files, event)?;
    let services = if options.dry_run {
        None
    } else {
        args.cache_server
            .config(cache_home().join("hybrid-runner/cache"))
    };
    let loaded = match loaded {
        Some(files) => files,
        None => hr_engine::read_workflows(&options.workdir, &options.workflow_files),
    };
    let workflows = match hr_engine::select_workflows(&options, loaded) {
        Ok(w) => w,
        Err(ExecError::Workflow(d)) => {
            for problem in d.iter() {
                eprintln!("{problem}");
            }
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(UsageError(e.to_string()).into()),
    };
    if workflows.is_empty() {
        eprintln!(
            "no workflow is triggered by `{}`; pick another event with -E",
            options.event
        );
        return Ok(ExitCode::SUCCESS);
    }
    // One thread is enough: steps are processes, the engine only waits on them and moves
    // their lines; it saves the cross-thread wake-ups a step's lines would cost.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(options, services, workflows, output))
}

/// What the run prints: `--json`, `-q`, `-v`.
#[derive(Debug, Clone, Copy)]
struct Output {
    json: bool,
    quiet: bool,
    verbose: bool,
}

impl Output {
    /// Whether `event` is printed: with `-q`, what steps print is left out unless `-v`
    /// is given too (act logs it at debug level then).
    fn shows(&self, event: &Event) -> bool {
        let step_output = matches!(
            event,
            Event::Log {
                kind: LogKind::Stdout | LogKind::Stderr | LogKind::Debug,
                ..
            }
        );
        !(step_output && self.quiet && !self.verbose)
    }
}

async fn run_async(
    mut options: ExecOptions,
    services: Option<job_services::ServicesConfig>,
    workflows: Vec<workflows::model::Workflow>,
    output: Output,
) -> anyhow::Result<ExitCode> {
    if let Some(config) = services {
        let started = super::cache_server::ExecServices::start(config, &options.workdir).await?;
        options.job_services = Some(Arc::new(started));
    }
    let cancel = CancellationToken::new();
    let hard_cancel = CancellationToken::new();
    let (sink, mut events) = EventSink::channel();
    let parallel = options.concurrency > 1;
    let debug = options.step_debug() || output.verbose;
    let json = output.json;
    let printer = tokio::task::spawn_blocking(move || {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let mut human = HumanRenderer::new(RenderOptions {
            color: color_wanted(),
            debug,
            prefix_jobs: parallel,
            nested_in_actions: std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true"),
        });
        let mut machine = JsonRenderer;
        while let Some(event) = events.blocking_recv() {
            if !output.shows(&event) {
                continue;
            }
            let written = if json {
                machine.handle(&event, &mut out)
            } else {
                human.handle(&event, &mut out)
            };
            if written.is_err() {
                break;
            }
            if matches!(event, Event::JobFinished { .. }) {
                let _ = out.flush();
            }
        }
        if !json {
            let _ = human.finish(&mut out);
        }
        let _ = out.flush();
    });
    let stopped_by = Arc::new(std::sync::OnceLock::new());
    let signals = {
        let (cancel, hard_cancel, stopped_by) =
            (cancel.clone(), hard_cancel.clone(), stopped_by.clone());
        let mut stops = StopSignals::new(StopSignals::RUN)?;
        tokio::spawn(async move {
            let first = stops.next().await;
            let _ = stopped_by.set(first);
            eprintln!(
                "\ncancelling ({}): steps get SIGINT; `always()` and post steps still run (a second signal stops them)",
                first.name()
            );
            cancel.cancel();
            stops.next().await;
            hard_cancel.cancel();
        })
    };
    let report = hr_engine::run(options, workflows, sink, cancel, hard_cancel).await;
    signals.abort();
    let _ = printer.await;
    let report = report.map_err(|e| UsageError(e.to_string()))?;
    Ok(if let Some(signal) = stopped_by.get() {
        ExitCode::from(signal.exit_code())
    } else if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
