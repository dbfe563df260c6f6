//! The `docker` / `nerdctl` shim put on a `run:` step's `PATH`: its argv (after the program
//! name) -> what the runner does.
//!
//! `build` (also `buildx build`, `builder build`, `image build`) becomes a [`BuildRequest`];
//! `push`, `tag`, `login` and `version` are served; every other subcommand is refused with a
//! message saying what to use instead. A `-f Dockerfile.k8s`-style file (name ending in
//! `.k8s`) marks the build as [`Variant::K8s`].

use std::path::PathBuf;

use super::error::BuildInputError;
use super::inputs::{cache_entry_honoured, host_platform, in_context, key_value, with_default_tag};
use super::request::{BuildRequest, OutputsStyle, Variant, VariantRequest};

/// What a `docker …` command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerCommand {
    Build(BuildRequest),
    /// Push a reference (`:latest` added when untagged) built earlier in the job.
    Push {
        image: String,
    },
    /// Add `target` to the image known as `source` (both fully tagged).
    Tag {
        source: String,
        target: String,
    },
    /// Log in to `registry` (`docker.io` when not given); credentials stay with the runner.
    Login {
        registry: String,
    },
    Version,
    /// A subcommand the runner does not serve; `message` says what to use instead.
    Unsupported {
        message: String,
    },
}

fn cli_error(
    args: &[String],
    problem: impl Into<String>,
    remedy: impl Into<String>,
) -> BuildInputError {
    BuildInputError::DockerCli {
        command: format!("docker {}", args.join(" ")),
        problem: problem.into(),
        remedy: remedy.into(),
    }
}

/// Global options that take a value (skipped before the subcommand).
const GLOBAL_WITH_VALUE: &[&str] = &[
    "--config",
    "-H",
    "--host",
    "-c",
    "--context",
    "-l",
    "--log-level",
    "--namespace",
    "-n",
    "--address",
    "-a",
];
/// Global options without a value.
const GLOBAL_FLAGS: &[&str] = &["-D", "--debug", "--tls", "--tlsverify", "--debug-full"];

/// Parse the shim's argv (without `docker`/`nerdctl` itself).
pub fn parse_docker_cli(args: &[String]) -> Result<DockerCommand, BuildInputError> {
    let mut rest = args;
    while let Some(first) = rest.first() {
        let name = first.split('=').next().unwrap_or(first);
        if GLOBAL_FLAGS.contains(&first.as_str()) {
            rest = &rest[1..];
        } else if GLOBAL_WITH_VALUE.contains(&name) {
            rest = if first.contains('=') {
                &rest[1..]
            } else {
                rest.get(2..).unwrap_or(&[])
            };
        } else {
            break;
        }
    }
    let Some((sub, tail)) = rest.split_first() else {
        return Err(cli_error(
            args,
            "no subcommand",
            "use `docker build`, `docker push`, `docker tag` or `docker login`",
        ));
    };
    match sub.as_str() {
        "--version" | "-v" | "version" => Ok(DockerCommand::Version),
        "build" => build(args, tail),
        "buildx" | "builder" | "image" => match tail.split_first() {
            Some((s, t)) if s == "build" => build(args, t),
            Some((s, t)) if sub == "image" && s == "push" => push(args, t),
            Some((s, t)) if sub == "image" && s == "tag" => tag(args, t),
            Some((s, _)) => Ok(unsupported(&format!("{sub} {s}"))),
            None => Ok(unsupported(sub)),
        },
        "push" => push(args, tail),
        "tag" => tag(args, tail),
        "login" => login(args, tail),
        other => Ok(unsupported(other)),
    }
}

fn unsupported(sub: &str) -> DockerCommand {
    let advice = match sub {
        "run" | "exec" | "start" | "create" => {
            "run the command directly in a `run:` step, or use a container job on a runner with a container backend"
        }
        "compose" | "stack" => {
            "start services with a job's `services:` on a runner with a container backend, or run the programs directly in `run:` steps"
        }
        "pull" | "save" | "load" | "import" | "export" => {
            "images are built and pushed by the runner, not stored locally; reference the pushed image by tag or digest where you need it"
        }
        "buildx create" | "buildx use" | "buildx inspect" | "buildx bake" => {
            "the runner provides the builder itself; drop `docker/setup-buildx-action` and builder setup, and call `docker build` directly"
        }
        "logout" => "credentials are managed by the runner; remove the `docker logout` step",
        _ => {
            "only `docker build` (also `buildx build`), `docker push`, `docker tag`, `docker login` and `docker version` are available; use `docker/build-push-action` or `hybrid-runner/build` for image builds"
        }
    };
    DockerCommand::Unsupported {
        message: format!("docker {sub} is not available on this runner: {advice}"),
    }
}

/// Split `--flag=value` / `-fvalue`; return (flag, inline value).
fn split_flag(arg: &str) -> (&str, Option<&str>) {
    if let Some(long) = arg.strip_prefix("--") {
        match long.split_once('=') {
            Some((name, value)) => (&arg[..name.len() + 2], Some(value)),
            None => (arg, None),
        }
    } else if arg.len() > 2 && arg.starts_with('-') && arg.is_char_boundary(2) {
        (&arg[..2], Some(arg[2..].trim_start_matches('=')))
    } else {
        (arg, None)
    }
}

const BUILD_IGNORED_FLAGS: &[&str] = &[
    "--pull",
    "-q",
    "--quiet",
    "--rm",
    "--force-rm",
    "--load",
    "--no-cache-filter",
];
const BUILD_IGNORED_WITH_VALUE: &[&str] = &[
    "--progress",
    "--builder",
    "--provenance",
    "--sbom",
    "--iidfile",
    "--metadata-file",
];

fn build(args: &[String], tail: &[String]) -> Result<DockerCommand, BuildInputError> {
    let mut tags = Vec::new();
    let mut file = None;
    let mut build_args = Vec::new();
    let mut labels = Vec::new();
    let mut target = None;
    let mut push = false;
    let mut cache = true;
    let mut positionals = Vec::new();
    let mut i = 0;
    while i < tail.len() {
        let arg = tail[i].as_str();
        i += 1;
        if arg == "--" {
            positionals.extend(tail[i..].iter().cloned());
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            positionals.push(arg.to_string());
            continue;
        }
        let (flag, inline) = split_flag(arg);
        if BUILD_IGNORED_FLAGS.contains(&arg)
            || BUILD_IGNORED_FLAGS.contains(&flag) && inline.is_none()
        {
            continue;
        }
        match flag {
            "--push" => {
                push = true;
                continue;
            }
            "--no-cache" => {
                cache = false;
                continue;
            }
            _ => {}
        }
        let value = match inline {
            Some(v) => v.to_string(),
            None => {
                let Some(v) = tail.get(i) else {
                    return Err(cli_error(
                        args,
                        format!("`{flag}` needs a value"),
                        format!("write `{flag} <value>`"),
                    ));
                };
                i += 1;
                v.clone()
            }
        };
        match flag {
            "-t" | "--tag" => tags.push(with_default_tag(&value)),
            "-f" | "--file" => file = Some(value),
            "--target" => target = Some(value),
            "--build-arg" => build_args.push(key_value(&value).ok_or_else(|| {
                cli_error(args, format!("`--build-arg {value}` has no value"), format!("the shim cannot read the environment: write `--build-arg {value}=\"${value}\"`"))
            })?),
            "--label" => labels.push(key_value(&value).unwrap_or((value, String::new()))),
            "--platform" => {
                if value.split(',').any(|p| p.trim() != host_platform()) {
                    return Err(cli_error(args, format!("platform `{value}` is not supported"), format!("this runner builds for {} only; drop `--platform`", host_platform())));
                }
            }
            "--cache-from" | "--cache-to" => {
                if !cache_entry_honoured(&value) {
                    return Err(cli_error(args, format!("cache `{value}` cannot be honoured"), format!("drop `{flag}`: the runner keeps its own layer cache (`--no-cache` turns it off)")));
                }
            }
            "-o" | "--output" => return Err(cli_error(args, "`--output` is not supported", "the runner pushes to a registry only: use `--push` with `-t registry/name:tag`")),
            "--secret" | "--ssh" => return Err(cli_error(args, format!("`{flag}` is not supported"), "build secrets are not forwarded; pass the value with `--build-arg` or prepare files in the context before the build")),
            f if BUILD_IGNORED_WITH_VALUE.contains(&f) => {}
            f => return Err(cli_error(args, format!("option `{f}` is not supported by the build shim"), "use -t, -f, --build-arg, --target, --label, --push, --no-cache, or `hybrid-runner/build` for more control")),
        }
    }
    let context = match positionals.as_slice() {
        [one] if one == "-" => {
            return Err(cli_error(
                args,
                "a build context from stdin is not supported",
                "write the Dockerfile into the workspace and pass its directory, e.g. `docker build -f path/Dockerfile .`",
            ));
        }
        [one] => one.clone(),
        [] => {
            return Err(cli_error(
                args,
                "no build context given",
                "add the context directory, e.g. `docker build -t name:tag .`",
            ));
        }
        _ => {
            return Err(cli_error(
                args,
                format!("several contexts given ({})", positionals.join(" ")),
                "pass exactly one context directory, options before or after it",
            ));
        }
    };
    if context.contains("://") || context.starts_with("git@") {
        return Err(cli_error(
            args,
            "remote build contexts are not supported",
            "check the repository out in a step and pass its directory",
        ));
    }
    if file.as_deref() == Some("-") {
        return Err(cli_error(
            args,
            "a Dockerfile from stdin is not supported",
            "write the Dockerfile into the workspace and pass it with `-f path/Dockerfile`",
        ));
    }
    let dockerfile = file.unwrap_or_else(|| in_context(&context, "Dockerfile"));
    let variant = if dockerfile.ends_with(".k8s") {
        Variant::K8s
    } else {
        Variant::Docker
    };
    Ok(DockerCommand::Build(BuildRequest {
        context: PathBuf::from(context),
        variants: vec![VariantRequest {
            variant,
            dockerfile,
            tags,
        }],
        build_args,
        target,
        labels,
        push,
        cache,
        skip_unchanged: false,
        outputs_for: OutputsStyle::Shim,
    }))
}

fn positionals<'a>(tail: &'a [String], ignored: &[&str]) -> Vec<&'a str> {
    tail.iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-') && !ignored.contains(a))
        .collect()
}

fn push(args: &[String], tail: &[String]) -> Result<DockerCommand, BuildInputError> {
    if tail.iter().any(|a| a == "-a" || a == "--all-tags") {
        return Err(cli_error(
            args,
            "`--all-tags` is not supported",
            "push each tag with its own `docker push name:tag`",
        ));
    }
    match positionals(tail, &[]).as_slice() {
        [image] => Ok(DockerCommand::Push {
            image: with_default_tag(image),
        }),
        _ => Err(cli_error(
            args,
            "expected exactly one image",
            "write `docker push registry/name:tag`",
        )),
    }
}

fn tag(args: &[String], tail: &[String]) -> Result<DockerCommand, BuildInputError> {
    match positionals(tail, &[]).as_slice() {
        [source, target] => Ok(DockerCommand::Tag {
            source: with_default_tag(source),
            target: with_default_tag(target),
        }),
        _ => Err(cli_error(
            args,
            "expected a source and a target image",
            "write `docker tag name:tag registry/name:tag`",
        )),
    }
}

fn login(args: &[String], tail: &[String]) -> Result<DockerCommand, BuildInputError> {
    let mut registry = None;
    let mut i = 0;
    while i < tail.len() {
        let arg = tail[i].as_str();
        i += 1;
        match arg {
            "-u" | "--username" | "-p" | "--password" => i += 1,
            "--password-stdin" => {}
            a if a.starts_with('-') => {}
            a => {
                if registry.replace(a.to_string()).is_some() {
                    return Err(cli_error(
                        args,
                        "expected at most one registry",
                        "write `docker login registry.example.com`",
                    ));
                }
            }
        }
    }
    Ok(DockerCommand::Login {
        registry: registry.unwrap_or_else(|| "docker.io".to_string()),
    })
}
