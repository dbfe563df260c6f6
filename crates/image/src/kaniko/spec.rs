//! From a [`BuildJob`] to what the manifests are rendered from: the [`BuildSpec`] (each
//! Dockerfile relative to the context, tags, build args, target, labels, timeout), the
//! packed context, and the per-build adjustments of the configuration.

use std::path::{Component, Path, PathBuf};

use super::config::KanikoConfig;
use super::{BuildSpec, VariantSpec};
use crate::BuildError;
use crate::BuildJob;
use crate::context::{ContextOptions, pack};

/// The label recording the commit an image was built from.
pub const REVISION_LABEL: &str = "org.opencontainers.image.revision";

/// The packed build context (tar.gz) in a temporary file of its own, which goes when this
/// is dropped (on every path: success, error, cancel). Its size is known before anything
/// decides where the context goes, and only a context that fits a ConfigMap is ever read
/// into memory ([`PackedFile::read_all`]); the others are streamed from the file.
#[derive(Debug)]
pub struct PackedFile {
    file: tempfile::NamedTempFile,
    /// Bytes of the tar.gz.
    pub size: u64,
    /// Lowercase hex sha256 of the tar.gz.
    pub sha256: String,
}

impl PackedFile {
    /// Where the tar.gz is; open it once per reader (each reads from the start).
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The whole tar.gz in memory: for a context small enough for a ConfigMap.
    pub fn read_all(&self) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path())
    }
}

/// The spec of `job`: every Dockerfile must lie inside the context (Kaniko reads it from
/// there), and the commit is recorded as the `org.opencontainers.image.revision` label
/// unless the request sets it.
pub fn build_spec(job: &BuildJob) -> Result<BuildSpec, BuildError> {
    let context_dir = job.context_dir();
    let context_error = |message: String| BuildError::Context {
        dir: context_dir.clone(),
        message,
    };
    let context = std::fs::canonicalize(&context_dir)
        .map_err(|e| context_error(format!("{e}; check the step's `context` input")))?;
    if !context.is_dir() {
        return Err(context_error(
            "not a directory; check the step's `context` input".to_string(),
        ));
    }
    let mut variants = Vec::new();
    for v in &job.request.variants {
        let path = job.dockerfile_path(&v.dockerfile);
        let dockerfile = std::fs::canonicalize(&path).map_err(|e| {
            context_error(format!(
                "the {} Dockerfile {} cannot be read: {e}",
                v.variant,
                path.display()
            ))
        })?;
        let relative = dockerfile.strip_prefix(&context).map_err(|_| {
            context_error(format!(
                "the {} Dockerfile {} is outside the context; Kaniko reads the Dockerfile from the context, so move it inside or widen the context",
                v.variant,
                path.display()
            ))
        })?;
        variants.push(VariantSpec {
            variant: v.variant,
            dockerfile: slash_path(relative),
            tags: v.tags.clone(),
        });
    }
    let mut labels = job.request.labels.clone();
    if !job.sha.is_empty() && !labels.iter().any(|(k, _)| k == REVISION_LABEL) {
        labels.push((REVISION_LABEL.to_string(), job.sha.clone()));
    }
    let image = variants
        .first()
        .and_then(|v| v.tags.first())
        .map(|t| repository(t).to_string())
        .unwrap_or_default();
    Ok(BuildSpec {
        image,
        sha: job.sha.clone(),
        context_dir,
        variants,
        build_args: job.request.build_args.clone(),
        target: job.request.target.clone(),
        labels,
        timeout: job.timeout,
    })
}

/// Packs the context of `spec` (its Dockerfiles always sent) on a blocking thread; see
/// [`pack_context_file`].
pub async fn pack_context(spec: &BuildSpec) -> Result<PackedFile, BuildError> {
    let spec_dir = spec.context_dir.clone();
    let always_include = dockerfiles(spec);
    let packed = tokio::task::spawn_blocking(move || pack_to_file(&spec_dir, always_include)).await;
    match packed {
        Ok(result) => result,
        Err(e) => Err(BuildError::Context {
            dir: spec.context_dir.clone(),
            message: format!("the packing thread failed: {e}"),
        }),
    }
}

/// Packs the context of `spec` (its Dockerfiles always sent) into a new temporary file
/// (in the system's temporary folder, `TMPDIR`), hashing it on the way.
pub fn pack_context_file(spec: &BuildSpec) -> Result<PackedFile, BuildError> {
    pack_to_file(&spec.context_dir, dockerfiles(spec))
}

fn dockerfiles(spec: &BuildSpec) -> Vec<PathBuf> {
    spec.variants
        .iter()
        .map(|v| PathBuf::from(&v.dockerfile))
        .collect()
}

fn pack_to_file(dir: &Path, always_include: Vec<PathBuf>) -> Result<PackedFile, BuildError> {
    let context_error = |message: String| BuildError::Context {
        dir: dir.to_path_buf(),
        message,
    };
    let mut options = ContextOptions::new(dir);
    options.always_include = always_include;
    let mut file = tempfile::Builder::new()
        .prefix("hr-context-")
        .suffix(".tar.gz")
        .tempfile()
        .map_err(|e| {
            context_error(format!(
                "cannot create a temporary file for the packed context in {}: {e}; check TMPDIR and its free space",
                std::env::temp_dir().display()
            ))
        })?;
    let packed = {
        let mut out = std::io::BufWriter::with_capacity(256 << 10, file.as_file_mut());
        pack(&options, &mut out).map_err(|e| context_error(e.to_string()))?
    };
    Ok(PackedFile {
        file,
        size: packed.compressed_size,
        sha256: packed.sha256,
    })
}

/// The configuration of one build: the layer cache only when both the configuration and
/// the request want it, and not for a build that pushes nothing unless a cache repository
/// is configured (see [`cache_dropped`]); the job's insecure registries added to the
/// configured ones.
pub fn config_for(config: &KanikoConfig, job: &BuildJob) -> KanikoConfig {
    let dropped = cache_dropped(config, job).is_some();
    let mut config = config.clone();
    config.cache = config.cache && job.request.cache && !dropped;
    for registry in &job.insecure_registries {
        if !config.insecure_registries.contains(registry) {
            config.insecure_registries.push(registry.clone());
        }
    }
    config
}

/// Why the layer cache is off for `job` although the configuration and the request want
/// it, as a line for the build log; `None` when it is not. Kaniko refuses `--cache=true`
/// with `--no-push` and no `--cache-repo` before it reads the context ("cache flags
/// invalid: if using cache with --no-push, specify cache repo with --cache-repo",
/// `cmd/executor/cmd/root.go`): without a push there is no destination to put the cache
/// beside, so such a build runs without the cache.
pub fn cache_dropped(config: &KanikoConfig, job: &BuildJob) -> Option<String> {
    (config.cache && job.request.cache && !job.request.push && config.cache_repo.is_none()).then(
        || {
            "note: the layer cache is off for this build: it pushes nothing and no cache \
             repository is configured, and Kaniko refuses --cache with --no-push unless \
             --cache-repo names one"
                .to_string()
        },
    )
}

/// `registry/name` of a `registry/name:tag` or `registry/name@digest` reference.
pub fn repository(reference: &str) -> &str {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].rfind(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    }
}

/// The registry host of an image reference (`docker.io` when it names none), as Docker
/// decides it: the first component when it has a `.` or `:` or is `localhost`.
pub fn registry_host(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

fn slash_path(path: &Path) -> String {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kaniko::Variant;
    use actions::image_build::{BuildRequest, OutputsStyle, VariantRequest};
    use hr_cluster::TaskIds;
    use std::time::{Duration, SystemTime};

    fn job(workspace: &Path, context: &str, dockerfiles: &[(Variant, &str)]) -> BuildJob {
        BuildJob {
            request: BuildRequest {
                context: PathBuf::from(context),
                variants: dockerfiles
                    .iter()
                    .map(|(variant, dockerfile)| VariantRequest {
                        variant: *variant,
                        dockerfile: dockerfile.to_string(),
                        tags: vec![format!("127.0.0.1:5000/app:{variant}-latest")],
                    })
                    .collect(),
                build_args: vec![("A".into(), "1".into())],
                target: Some("final".into()),
                labels: vec![("x".into(), "y".into())],
                push: true,
                cache: false,
                skip_unchanged: false,
                outputs_for: OutputsStyle::Dual,
            },
            workspace: workspace.to_path_buf(),
            sha: "abc123".into(),
            task: TaskIds {
                task: "t".into(),
                job: "j".into(),
                started_at: SystemTime::now(),
            },
            timeout: Duration::from_secs(60),
            insecure_registries: vec!["127.0.0.1:5000".into()],
        }
    }

    #[test]
    fn dockerfiles_become_relative_to_the_context() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("svc");
        std::fs::create_dir_all(ctx.join("docker")).unwrap();
        std::fs::write(ctx.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(ctx.join("docker/Dockerfile.k8s"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join("Dockerfile.outside"), "FROM scratch\n").unwrap();
        let j = job(
            dir.path(),
            "svc",
            &[
                (Variant::Docker, "svc/Dockerfile"),
                (Variant::K8s, "./svc/docker/../docker/Dockerfile.k8s"),
            ],
        );
        let spec = build_spec(&j).unwrap();
        let files: Vec<&str> = spec
            .variants
            .iter()
            .map(|v| v.dockerfile.as_str())
            .collect();
        assert_eq!(files, ["Dockerfile", "docker/Dockerfile.k8s"]);
        assert_eq!(spec.image, "127.0.0.1:5000/app");
        assert_eq!(spec.target.as_deref(), Some("final"));
        assert_eq!(
            spec.labels,
            vec![
                ("x".to_string(), "y".to_string()),
                (REVISION_LABEL.to_string(), "abc123".to_string())
            ]
        );

        let outside = job(
            dir.path(),
            "svc",
            &[(Variant::Docker, "Dockerfile.outside")],
        );
        let err = build_spec(&outside).unwrap_err().to_string();
        assert!(err.contains("outside the context"), "{err}");
        let missing = job(dir.path(), "svc", &[(Variant::Docker, "svc/Nope")]);
        let err = build_spec(&missing).unwrap_err().to_string();
        assert!(err.contains("cannot be read"), "{err}");
        let no_context = job(dir.path(), "absent", &[(Variant::Docker, "svc/Dockerfile")]);
        assert!(matches!(
            build_spec(&no_context),
            Err(BuildError::Context { .. })
        ));
    }

    #[test]
    fn the_context_is_packed_into_a_temporary_file_that_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join("a.txt"), "a\n").unwrap();
        let j = job(dir.path(), ".", &[(Variant::Docker, "Dockerfile")]);
        let spec = build_spec(&j).unwrap();
        let packed = pack_context_file(&spec).unwrap();
        let path = packed.path().to_path_buf();
        let bytes = packed.read_all().unwrap();
        assert_eq!(bytes.len() as u64, packed.size);
        // The same bytes as packing into memory.
        let mut options = ContextOptions::new(dir.path());
        options.always_include = vec![PathBuf::from("Dockerfile")];
        let mut in_memory = Vec::new();
        let sha256 = pack(&options, &mut in_memory).unwrap().sha256;
        assert_eq!(bytes, in_memory);
        assert_eq!(packed.sha256, sha256);
        drop(packed);
        assert!(!path.exists(), "{} was left behind", path.display());

        let missing = BuildSpec {
            context_dir: dir.path().join("absent"),
            ..spec
        };
        assert!(matches!(
            pack_context_file(&missing),
            Err(BuildError::Context { .. })
        ));
    }

    #[test]
    fn per_build_config() {
        let dir = tempfile::tempdir().unwrap();
        let j = job(dir.path(), ".", &[]);
        let base = KanikoConfig {
            cache: true,
            insecure_registries: vec!["127.0.0.1:5000".into(), "other:1".into()],
            ..Default::default()
        };
        let config = config_for(&base, &j);
        assert!(!config.cache, "the request said no cache");
        assert_eq!(config.insecure_registries, ["127.0.0.1:5000", "other:1"]);
    }

    #[test]
    fn a_build_that_pushes_nothing_keeps_the_cache_only_with_a_cache_repo() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = job(dir.path(), ".", &[]);
        j.request.cache = true;
        let base = KanikoConfig {
            cache: true,
            ..Default::default()
        };
        // Pushing: the cache is inferred from the destination.
        assert!(config_for(&base, &j).cache);
        assert_eq!(cache_dropped(&base, &j), None);
        // Not pushing, no cache repo: Kaniko would refuse --cache=true --no-push.
        j.request.push = false;
        assert!(!config_for(&base, &j).cache);
        let note = cache_dropped(&base, &j).unwrap();
        assert!(note.contains("cache is off"), "{note}");
        // Not pushing, with a cache repo: kept.
        let with_repo = KanikoConfig {
            cache_repo: Some("reg:5000/cache".into()),
            ..base.clone()
        };
        assert!(config_for(&with_repo, &j).cache);
        assert_eq!(cache_dropped(&with_repo, &j), None);
        // The cache off anyway: nothing to say.
        j.request.cache = false;
        assert_eq!(cache_dropped(&base, &j), None);
    }

    #[test]
    fn references() {
        assert_eq!(
            repository("127.0.0.1:5000/app:docker-latest"),
            "127.0.0.1:5000/app"
        );
        assert_eq!(repository("127.0.0.1:5000/app"), "127.0.0.1:5000/app");
        assert_eq!(repository("app@sha256:abc"), "app");
        assert_eq!(registry_host("127.0.0.1:5000/app:1"), "127.0.0.1:5000");
        assert_eq!(registry_host("ghcr.io/o/r:1"), "ghcr.io");
        assert_eq!(registry_host("localhost/app"), "localhost");
        assert_eq!(registry_host("library/app:1"), "docker.io");
        assert_eq!(registry_host("app"), "docker.io");
    }
}
