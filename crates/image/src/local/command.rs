//! The command lines a local builder runs, built without running anything: one build per
//! variant, one push per tag, one inspect for the digest of an image that was not pushed.
//! `hybrid-runner build --dry-run` prints exactly these.

use std::fmt;
use std::path::{Path, PathBuf};

use actions::image_build::VariantRequest;

use super::LocalTool;
use crate::BuildJob;

/// The OCI label that records the commit an image was built from.
pub const REVISION_LABEL: &str = "org.opencontainers.image.revision";

/// One program with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl fmt::Display for CommandLine {
    /// The command as a POSIX shell would take it (arguments quoted where needed), with
    /// every `--build-arg` value shown as `***`: build args often carry tokens, and this
    /// text goes to logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shell_quote(&self.program.to_string_lossy()))?;
        let mut after_build_arg = false;
        for arg in &self.args {
            let shown = match arg.split_once('=') {
                Some((key, _)) if after_build_arg => format!("{key}={REDACTED}"),
                _ => arg.clone(),
            };
            write!(f, " {}", shell_quote(&shown))?;
            after_build_arg = arg == "--build-arg";
        }
        Ok(())
    }
}

/// What a hidden value is shown as.
const REDACTED: &str = "***";

/// `word` quoted for a POSIX shell when it holds anything but plain characters.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | '@' | ',' | '+')
        });
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The build of one variant: `buildah bud` / `podman build` / `docker build` with the
/// Dockerfile, build args, target, labels (plus the revision label), `--no-cache` when the
/// request does not cache, every tag, and the context folder last. `pull_insecure`
/// (a base image lives on an insecure registry, see [`pulls_from_insecure`]) adds
/// `--tls-verify=false` for buildah and podman; docker's daemon decides on its own.
pub fn build_command(
    tool: LocalTool,
    program: &Path,
    job: &BuildJob,
    variant: &VariantRequest,
    pull_insecure: bool,
) -> CommandLine {
    let request = &job.request;
    let mut args: Vec<String> = match tool {
        LocalTool::Buildah => vec!["bud".into()],
        LocalTool::Podman | LocalTool::Docker => vec!["build".into()],
    };
    if pull_insecure && tool != LocalTool::Docker {
        args.push("--tls-verify=false".into());
    }
    args.push("-f".into());
    args.push(path_arg(&job.dockerfile_path(&variant.dockerfile)));
    for (key, value) in &request.build_args {
        args.push("--build-arg".into());
        args.push(format!("{key}={value}"));
    }
    if let Some(target) = &request.target {
        args.push("--target".into());
        args.push(target.clone());
    }
    let mut labels = request.labels.clone();
    if !job.sha.is_empty() && !labels.iter().any(|(k, _)| k == REVISION_LABEL) {
        labels.push((REVISION_LABEL.to_string(), job.sha.clone()));
    }
    for (key, value) in &labels {
        args.push("--label".into());
        args.push(format!("{key}={value}"));
    }
    if !request.cache {
        args.push("--no-cache".into());
    }
    for tag in &variant.tags {
        args.push("-t".into());
        args.push(tag.clone());
    }
    args.push(path_arg(&job.context_dir()));
    CommandLine {
        program: program.to_path_buf(),
        args,
    }
}

/// The push of one tag. buildah and podman write the pushed manifest's digest to
/// `digest_file` and skip TLS verification for an insecure registry; docker takes neither
/// (its daemon decides; it reports the digest in its output).
pub fn push_command(
    tool: LocalTool,
    program: &Path,
    reference: &str,
    digest_file: &Path,
    insecure: bool,
) -> CommandLine {
    let mut args = vec!["push".to_string()];
    if tool != LocalTool::Docker {
        if insecure {
            args.push("--tls-verify=false".into());
        }
        args.push("--digestfile".into());
        args.push(path_arg(digest_file));
    }
    args.push(reference.to_string());
    CommandLine {
        program: program.to_path_buf(),
        args,
    }
}

/// How to read a digest after a build: for an unpushed image the local manifest digest
/// (buildah, podman; docker has none), after a docker push its repo digests.
pub fn inspect_command(tool: LocalTool, program: &Path, reference: &str) -> CommandLine {
    let args: Vec<&str> = match tool {
        LocalTool::Buildah => vec![
            "inspect",
            "--type",
            "image",
            "--format",
            "{{.FromImageDigest}}",
        ],
        LocalTool::Podman => vec!["image", "inspect", "--format", "{{.Digest}}"],
        LocalTool::Docker => vec!["image", "inspect", "--format", "{{json .RepoDigests}}"],
    };
    let mut args: Vec<String> = args.into_iter().map(str::to_string).collect();
    args.push(reference.to_string());
    CommandLine {
        program: program.to_path_buf(),
        args,
    }
}

/// The registry host of an image reference (`host[:port]/path:tag`), when the reference
/// names one (a first component with `.` or `:`, or `localhost`).
pub fn registry_host(reference: &str) -> Option<&str> {
    let (first, _) = reference.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
}

/// Whether `reference` lives on one of the `insecure` registries (`host:port`, or a bare
/// host meaning any port).
pub fn is_insecure(reference: &str, insecure: &[String]) -> bool {
    let Some(host) = registry_host(reference) else {
        return false;
    };
    let bare = host.rsplit_once(':').map_or(host, |(h, _)| h);
    insecure
        .iter()
        .map(|entry| entry.trim().trim_end_matches('/'))
        .any(|entry| entry == host || (!entry.contains(':') && entry == bare))
}

/// The images a Dockerfile's `FROM` lines pull (`scratch`, earlier stages and images
/// named through `ARG`s left out).
pub fn base_images(dockerfile: &str) -> Vec<String> {
    let mut stages: Vec<String> = Vec::new();
    let mut images = Vec::new();
    for line in dockerfile.lines() {
        let mut words = line.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            continue;
        }
        let mut words = words.skip_while(|w| w.starts_with("--"));
        let Some(image) = words.next() else { continue };
        let pulled = !image.eq_ignore_ascii_case("scratch")
            && !image.contains('$')
            && !stages.iter().any(|s| s.eq_ignore_ascii_case(image));
        if pulled {
            images.push(image.to_string());
        }
        if words.next().is_some_and(|w| w.eq_ignore_ascii_case("AS"))
            && let Some(stage) = words.next()
        {
            stages.push(stage.to_string());
        }
    }
    images
}

/// Whether a Dockerfile pulls a base image from one of the `insecure` registries.
pub fn pulls_from_insecure(dockerfile: &str, insecure: &[String]) -> bool {
    base_images(dockerfile)
        .iter()
        .any(|image| is_insecure(image, insecure))
}

/// The digest `docker push` printed (`<tag>: digest: sha256:<hex> size: <n>`).
pub fn digest_in_push_output(lines: &[String]) -> Option<String> {
    lines.iter().rev().find_map(|line| {
        let (_, rest) = line.split_once("digest: ")?;
        let digest = rest.split_whitespace().next()?;
        is_digest(digest).then(|| digest.to_string())
    })
}

/// The digest of `reference`'s repository among `docker image inspect`'s RepoDigests
/// (`["repo@sha256:…", …]`).
pub fn digest_in_repo_digests(json: &str, reference: &str) -> Option<String> {
    let digests: Vec<String> = serde_json::from_str(json.trim()).ok()?;
    let repo = repository(reference);
    digests.iter().find_map(|entry| {
        let (name, digest) = entry.split_once('@')?;
        (name == repo && is_digest(digest)).then(|| digest.to_string())
    })
}

/// `host/path:tag` → `host/path` (a port colon is not a tag).
fn repository(reference: &str) -> &str {
    let reference = reference.split_once('@').map_or(reference, |(r, _)| r);
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => reference,
    }
}

/// `sha256:` followed by 64 hex digits.
pub fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A path as an argument, `.` components dropped (`/ws/.` is `/ws`).
fn path_arg(path: &Path) -> String {
    let clean: PathBuf = path.components().collect();
    clean.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use actions::image_build::{BuildRequest, OutputsStyle, Variant};

    use super::*;
    use hr_cluster::TaskIds;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn job(cache: bool) -> BuildJob {
        BuildJob {
            request: BuildRequest {
                context: PathBuf::from("svc"),
                variants: vec![VariantRequest {
                    variant: Variant::K8s,
                    dockerfile: "svc/Dockerfile.k8s".into(),
                    tags: vec![
                        "reg:5000/app:k8s-latest".into(),
                        "reg:5000/app:k8s-abc".into(),
                    ],
                }],
                build_args: vec![("A".into(), "1 2".into())],
                target: Some("final".into()),
                labels: vec![("team".into(), "x".into())],
                push: true,
                cache,
                skip_unchanged: false,
                outputs_for: OutputsStyle::Dual,
            },
            workspace: PathBuf::from("/ws"),
            sha: "abc".into(),
            task: TaskIds {
                task: "t".into(),
                job: "j".into(),
                started_at: SystemTime::UNIX_EPOCH,
            },
            timeout: Duration::from_secs(60),
            insecure_registries: vec!["reg:5000".into()],
        }
    }

    #[test]
    fn buildah_build_has_every_flag_and_the_context_last() {
        let job = job(false);
        let cmd = build_command(
            LocalTool::Buildah,
            Path::new("buildah"),
            &job,
            &job.request.variants[0],
            false,
        );
        assert_eq!(
            cmd.to_string(),
            "buildah bud -f /ws/svc/Dockerfile.k8s --build-arg 'A=***' --target final \
             --label team=x --label org.opencontainers.image.revision=abc --no-cache \
             -t reg:5000/app:k8s-latest -t reg:5000/app:k8s-abc /ws/svc"
        );
    }

    #[test]
    fn podman_and_docker_use_build_and_keep_the_cache() {
        let job = job(true);
        for (tool, program) in [(LocalTool::Podman, "podman"), (LocalTool::Docker, "docker")] {
            let cmd = build_command(
                tool,
                Path::new(program),
                &job,
                &job.request.variants[0],
                true,
            );
            let insecure = cmd.args.contains(&"--tls-verify=false".to_string());
            assert_eq!(insecure, tool == LocalTool::Podman, "{cmd}");
            assert_eq!(cmd.args[0], "build");
            assert!(!cmd.args.contains(&"--no-cache".to_string()));
            assert_eq!(cmd.args.last().map(String::as_str), Some("/ws/svc"));
        }
    }

    #[test]
    fn push_flags_per_tool() {
        let file = Path::new("/tmp/d");
        assert_eq!(
            push_command(
                LocalTool::Buildah,
                Path::new("buildah"),
                "reg:5000/a:1",
                file,
                true
            )
            .to_string(),
            "buildah push --tls-verify=false --digestfile /tmp/d reg:5000/a:1"
        );
        assert_eq!(
            push_command(
                LocalTool::Podman,
                Path::new("podman"),
                "reg/a:1",
                file,
                false
            )
            .to_string(),
            "podman push --digestfile /tmp/d reg/a:1"
        );
        assert_eq!(
            push_command(
                LocalTool::Docker,
                Path::new("docker"),
                "reg:5000/a:1",
                file,
                true
            )
            .to_string(),
            "docker push reg:5000/a:1"
        );
    }

    #[test]
    fn insecure_registries_match_host_and_port() {
        let insecure = vec!["127.0.0.1:5000".to_string(), "plain.local".to_string()];
        assert!(is_insecure("127.0.0.1:5000/app:1", &insecure));
        assert!(!is_insecure("127.0.0.1:5001/app:1", &insecure));
        assert!(is_insecure("plain.local:8080/app:1", &insecure));
        assert!(!is_insecure("app:1", &insecure));
        assert!(!is_insecure("library/app:1", &insecure));
        assert_eq!(registry_host("localhost/app"), Some("localhost"));
    }

    #[test]
    fn docker_digests_from_push_output_and_repo_digests() {
        let lines = vec![
            "The push refers to repository [reg:5000/app]".to_string(),
            format!("latest: digest: {DIGEST} size: 528"),
        ];
        assert_eq!(digest_in_push_output(&lines).as_deref(), Some(DIGEST));
        assert_eq!(digest_in_push_output(&lines[..1]), None);
        let json = format!(r#"["other/app@{DIGEST}","reg:5000/app@{DIGEST}"]"#);
        assert_eq!(
            digest_in_repo_digests(&json, "reg:5000/app:latest").as_deref(),
            Some(DIGEST)
        );
        assert_eq!(digest_in_repo_digests(&json, "reg:5000/nope:latest"), None);
        assert_eq!(digest_in_repo_digests("[]", "reg:5000/app:latest"), None);
    }

    #[test]
    fn base_images_skip_scratch_stages_and_args() {
        let dockerfile = "# syntax=docker/dockerfile:1\n\
            FROM --platform=linux/amd64 reg:5000/base:1 AS build\n\
            from build as test\n\
            FROM scratch\n\
            ARG BASE=x\n\
            FROM ${BASE}\n\
            FROM library/alpine\n";
        assert_eq!(
            base_images(dockerfile),
            ["reg:5000/base:1", "library/alpine"]
        );
        assert!(pulls_from_insecure(dockerfile, &["reg:5000".to_string()]));
        assert!(!pulls_from_insecure(
            dockerfile,
            &["other:5000".to_string()]
        ));
        assert!(!pulls_from_insecure(
            "FROM scratch\n",
            &["reg:5000".to_string()]
        ));
    }

    #[test]
    fn quoting_for_display() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("{{.Digest}}"), "'{{.Digest}}'");
    }
}
