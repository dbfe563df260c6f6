//! Opt-in build avoidance (`skip-unchanged: true` on `hybrid-runner/build@v1`,
//! `hybrid-runner build --skip-unchanged`): when the registry already holds an image built
//! from the same inputs, the requested tags are put on it instead of building it again.
//!
//! **The build key** of a variant is the sha256 of, in this order (each field named and
//! length-prefixed, so no two inputs encode alike; see [`build_key`]): a format version, the
//! variant name, the sha256 of the deterministic context tar.gz (after `.dockerignore`, see
//! [`super::context`]; packed at gzip level 0, stored blocks, so hashing costs no
//! compression), the variant's Dockerfile bytes, the build args *in the order the
//! builder applies them* (a later duplicate overrides an earlier one, so order matters),
//! the target, and the request's labels in order. Not in the key: the commit sha (the point
//! is to reuse across commits; a reused image keeps the `org.opencontainers.image.revision`
//! label of the commit that built it), the tags, `cache` (a cached and an uncached build of
//! the same inputs are the same image), and the builder (buildah, podman, docker and Kaniko
//! build the same filesystem from the same inputs).
//!
//! **Where the key is recorded**: as the image label [`BUILD_KEY_LABEL`] (the full hex key,
//! passed to the builder as a label, so the image config carries it) and as a marker tag
//! `build-<first 20 hex of the key>` ([`BuildKey::marker_tag`]) in the repository of the
//! variant's first tag, pushed with the image.
//!
//! **Lookup**: GET of the marker tag's manifest, then of its config blob, whose label must
//! equal the full key (a prefix collision or a hand-pushed tag is a miss). A **hit** puts the
//! marker's manifest bytes under every requested tag (same digest; blobs are mounted or
//! copied when a tag is in another repository) and reports the variant as reused: no build
//! runs. A **miss** builds the variant with the label and the marker tag added; the marker is
//! not listed in the reported tags. A registry that cannot be read, or a retag that fails,
//! falls back to building (and says so in the log): avoidance never makes a build fail.
//!
//! Avoidance needs a registry, so it applies only when the request pushes. It runs before
//! the builder and only through [`ImageBuilder::build`], so it works the same for every
//! builder. Each missing variant is built by its own builder call (the label differs per
//! variant); the calls run in parallel, each with the job id suffixed by its variant when there
//! are several (for Kaniko: one namespace per variant, so the context is uploaded once per
//! variant on a miss).

use std::collections::HashSet;
use std::sync::Arc;

use actions::image_build::{Variant, VariantRequest};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::context::{ContextOptions, pack};
use super::registry::{ImageRef, Manifest, RegistryClient, RegistryError};
use super::{
    BuildError, BuildJob, BuildLog, BuildOutcome, BuildProgress, BuiltImage, ImageBuilder,
};

/// The image label that carries the full build key (64 hex).
pub const BUILD_KEY_LABEL: &str = "org.hybrid-runner.build-key";

/// The marker tag's prefix; the rest is the first [`MARKER_HEX`] hex digits of the key.
pub const MARKER_TAG_PREFIX: &str = "build-";

/// How many hex digits of the key the marker tag holds (80 bits).
pub const MARKER_HEX: usize = 20;

/// The first field of every key; bump it when the key's inputs change meaning.
const KEY_FORMAT: &str = "hybrid-runner build key v1";

/// The sha256 that identifies a variant's inputs, lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BuildKey(String);

impl BuildKey {
    pub fn hex(&self) -> &str {
        &self.0
    }

    /// `build-<first 20 hex>`, the tag that records the key in the image's repository.
    pub fn marker_tag(&self) -> String {
        let short = self.0.get(..MARKER_HEX).unwrap_or(&self.0);
        format!("{MARKER_TAG_PREFIX}{short}")
    }
}

impl std::fmt::Display for BuildKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a variant's build key is computed from.
#[derive(Debug, Clone, Copy)]
pub struct KeyInputs<'a> {
    pub variant: Variant,
    /// Lowercase hex sha256 of the context tar.gz.
    pub context_sha256: &'a str,
    pub dockerfile: &'a [u8],
    /// In the order the builder applies them.
    pub build_args: &'a [(String, String)],
    pub target: Option<&'a str>,
    /// The request's labels, in order ([`BUILD_KEY_LABEL`] itself is skipped).
    pub labels: &'a [(String, String)],
}

/// The build key of `inputs` (see the module documentation for what goes in).
pub fn build_key(inputs: &KeyInputs<'_>) -> BuildKey {
    let mut hasher = Sha256::new();
    let mut field = |name: &str, bytes: &[u8]| {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field("format", KEY_FORMAT.as_bytes());
    field("variant", inputs.variant.as_str().as_bytes());
    field("context", inputs.context_sha256.as_bytes());
    field("dockerfile", inputs.dockerfile);
    field(
        "build-args",
        &(inputs.build_args.len() as u64).to_le_bytes(),
    );
    for (key, value) in inputs.build_args {
        field("arg-key", key.as_bytes());
        field("arg-value", value.as_bytes());
    }
    match inputs.target {
        Some(target) => field("target", target.as_bytes()),
        None => field("no-target", b""),
    }
    let labels: Vec<&(String, String)> = inputs
        .labels
        .iter()
        .filter(|(key, _)| key != BUILD_KEY_LABEL)
        .collect();
    field("labels", &(labels.len() as u64).to_le_bytes());
    for (key, value) in labels {
        field("label-key", key.as_bytes());
        field("label-value", value.as_bytes());
    }
    let digest = hasher.finalize();
    BuildKey(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// What [`build_avoiding`] did: the outcome as [`ImageBuilder::build`] reports it, and which
/// variants were reused instead of built.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AvoidedBuild {
    pub outcome: BuildOutcome,
    pub reused: Vec<Variant>,
}

/// Runs `job` on `builder`, reusing the images the registry already holds for variants
/// whose build key is unchanged when `job.request.skip_unchanged` is set (and the request
/// pushes); otherwise exactly [`ImageBuilder::build`].
pub async fn build_avoiding(
    builder: &ImageBuilder,
    job: &BuildJob,
    log: &BuildLog,
    cancel: &CancellationToken,
    registry: &RegistryClient,
) -> Result<AvoidedBuild, BuildError> {
    if !job.request.skip_unchanged {
        return plain(builder, job, log, cancel).await;
    }
    if !job.request.push {
        log.line(
            None,
            "skip-unchanged: the build does not push, so there is no registry to find an earlier image in; building",
        );
        return plain(builder, job, log, cancel).await;
    }
    let keys = tokio::select! {
        keys = variant_keys(job) => keys?,
        () = cancel.cancelled() => return Err(BuildError::Cancelled),
    };
    let mut reused: Vec<BuiltImage> = Vec::new();
    let mut missing: Vec<(VariantRequest, BuildKey)> = Vec::new();
    for (variant, key) in job.request.variants.iter().zip(keys) {
        let attempt = tokio::select! {
            attempt = reuse(registry, variant, &key, log) => attempt,
            () = cancel.cancelled() => return Err(BuildError::Cancelled),
        };
        match attempt {
            Some(image) => reused.push(image),
            None => missing.push((variant.clone(), key)),
        }
    }
    let built = build_missing(builder, job, log, cancel, missing).await?;
    let reused_variants: Vec<Variant> = reused.iter().map(|i| i.variant).collect();
    let mut images: Vec<BuiltImage> = Vec::new();
    for variant in &job.request.variants {
        let found = reused
            .iter()
            .chain(&built)
            .find(|i| i.variant == variant.variant);
        if let Some(image) = found {
            images.push(image.clone());
        }
    }
    Ok(AvoidedBuild {
        outcome: BuildOutcome { images },
        reused: reused_variants,
    })
}

async fn plain(
    builder: &ImageBuilder,
    job: &BuildJob,
    log: &BuildLog,
    cancel: &CancellationToken,
) -> Result<AvoidedBuild, BuildError> {
    Ok(AvoidedBuild {
        outcome: builder.build(job, log, cancel).await?,
        reused: Vec::new(),
    })
}

/// One key per variant of `job`, in request order: the context is packed once (to no
/// file, only hashed, gzip level 0) with the variants' Dockerfiles always included, as the
/// builders send it.
async fn variant_keys(job: &BuildJob) -> Result<Vec<BuildKey>, BuildError> {
    let job = job.clone();
    let context_dir = job.context_dir();
    let joined = tokio::task::spawn_blocking(move || {
        let mut options = ContextOptions::new(job.context_dir());
        // Stored deflate blocks: the same deterministic archive, none of the compression
        // cost (the digest only has to change when the context does).
        options.level = 0;
        options.always_include = job
            .request
            .variants
            .iter()
            .map(|v| job.dockerfile_path(&v.dockerfile))
            .collect();
        let packed = pack(&options, &mut std::io::sink()).map_err(|e| BuildError::Context {
            dir: job.context_dir(),
            message: e.to_string(),
        })?;
        let mut keys = Vec::new();
        for variant in &job.request.variants {
            let path = job.dockerfile_path(&variant.dockerfile);
            let dockerfile = std::fs::read(&path).map_err(|e| BuildError::Context {
                dir: job.context_dir(),
                message: format!(
                    "cannot read the Dockerfile {} for the build key: {e}; check the `dockerfile` input",
                    path.display()
                ),
            })?;
            keys.push(build_key(&KeyInputs {
                variant: variant.variant,
                context_sha256: &packed.sha256,
                dockerfile: &dockerfile,
                build_args: &job.request.build_args,
                target: job.request.target.as_deref(),
                labels: &job.request.labels,
            }));
        }
        Ok(keys)
    })
    .await;
    joined.map_err(|e| BuildError::Context {
        dir: context_dir,
        message: format!("the packing task stopped unexpectedly: {e}"),
    })?
}

/// Where the variant's marker tag lives: the repository of its first tag.
fn marker_ref(variant: &VariantRequest, key: &BuildKey) -> Option<ImageRef> {
    let first = ImageRef::parse(variant.tags.first()?).ok()?;
    Some(first.with_reference(&key.marker_tag()))
}

/// What the registry holds under a marker tag.
enum Lookup {
    Hit(Manifest),
    Miss,
    /// The tag exists but its image does not carry the key (why, for the log).
    Mismatch(String),
}

async fn lookup(
    registry: &RegistryClient,
    marker: &ImageRef,
    key: &BuildKey,
) -> Result<Lookup, RegistryError> {
    let manifest = match registry.manifest(marker).await {
        Ok(manifest) => manifest,
        Err(RegistryError::ManifestGet { status, .. })
            if status == reqwest::StatusCode::NOT_FOUND =>
        {
            return Ok(Lookup::Miss);
        }
        Err(e) => return Err(e),
    };
    let Some(config) = manifest.config_digest() else {
        return Ok(Lookup::Mismatch(
            "it is a multi-platform index, whose label is not checked".to_string(),
        ));
    };
    let bytes = registry.blob(marker, &config).await?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    match json["config"]["Labels"][BUILD_KEY_LABEL].as_str() {
        Some(label) if label == key.hex() => Ok(Lookup::Hit(manifest)),
        Some(label) => Ok(Lookup::Mismatch(format!(
            "its {BUILD_KEY_LABEL} label is {label}"
        ))),
        None => Ok(Lookup::Mismatch(format!(
            "its image has no {BUILD_KEY_LABEL} label"
        ))),
    }
}

/// The variant's tags put on the image the marker names, or `None` (said in the log) when
/// it has to be built.
async fn reuse(
    registry: &RegistryClient,
    variant: &VariantRequest,
    key: &BuildKey,
    log: &BuildLog,
) -> Option<BuiltImage> {
    let name = variant.variant;
    let Some(marker) = marker_ref(variant, key) else {
        log.line(
            Some(name),
            "skip-unchanged: the variant has no valid tag to look up its build key; building",
        );
        return None;
    };
    let manifest = match lookup(registry, &marker, key).await {
        Ok(Lookup::Hit(manifest)) => manifest,
        Ok(Lookup::Miss) => {
            log.line(
                Some(name),
                format!(
                    "skip-unchanged: no image with build key {key} ({marker} not found); building"
                ),
            );
            return None;
        }
        Ok(Lookup::Mismatch(why)) => {
            log.line(
                Some(name),
                format!("skip-unchanged: {marker} exists but {why}, not {key}; building"),
            );
            return None;
        }
        Err(e) => {
            log.line(
                Some(name),
                format!("skip-unchanged: cannot look up {marker}: {e}; building"),
            );
            return None;
        }
    };
    log.progress(BuildProgress::Started(name));
    for tag in &variant.tags {
        let result = match ImageRef::parse(tag) {
            Ok(to) if to.same_repository(&marker) => registry.put_manifest(&to, &manifest).await,
            Ok(to) => registry.copy_image(&marker, &to).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            log.line(
                Some(name),
                format!(
                    "skip-unchanged: tagging {tag} from {marker} failed: {e}; building instead"
                ),
            );
            return None;
        }
    }
    log.line(
        Some(name),
        format!(
            "reused {}@{} (build key {key} unchanged): not rebuilt; tagged {}",
            marker,
            manifest.digest,
            variant.tags.join(", ")
        ),
    );
    let image = BuiltImage {
        variant: name,
        digest: manifest.digest,
        tags: variant.tags.clone(),
    };
    log.progress(BuildProgress::Reused(image.clone()));
    Some(image)
}

/// Builds each missing variant with its key label and marker tag, in parallel; the marker
/// is dropped from the reported tags.
async fn build_missing(
    builder: &ImageBuilder,
    job: &BuildJob,
    log: &BuildLog,
    cancel: &CancellationToken,
    missing: Vec<(VariantRequest, BuildKey)>,
) -> Result<Vec<BuiltImage>, BuildError> {
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let builder = Arc::new(builder.clone());
    let separate = missing.len() > 1;
    let mut tasks = JoinSet::new();
    for (index, (variant, key)) in missing.into_iter().enumerate() {
        let mut variant_job = job.clone();
        if separate {
            // Parallel builder calls of one job must not share what the job's ids name (the
            // Kaniko builder's namespace).
            variant_job.task.job = format!("{}-{}", job.task.job, variant.variant);
        }
        let requested = variant.tags.clone();
        let mut tagged = variant.clone();
        if let Some(marker) = marker_ref(&variant, &key) {
            let marker = marker.to_string();
            if !tagged.tags.contains(&marker) {
                log.line(
                    Some(variant.variant),
                    format!("skip-unchanged: recording build key {key} as {marker}"),
                );
                tagged.tags.push(marker);
            }
        }
        variant_job.request.variants = vec![tagged];
        variant_job
            .request
            .labels
            .retain(|(k, _)| k != BUILD_KEY_LABEL);
        variant_job
            .request
            .labels
            .push((BUILD_KEY_LABEL.to_string(), key.hex().to_string()));
        let (builder, log, cancel) = (Arc::clone(&builder), log.clone(), cancel.clone());
        tasks.spawn(async move {
            let result = builder.build(&variant_job, &log, &cancel).await;
            (index, requested, result)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(done) => results.push(done),
            Err(e) => {
                return Err(BuildError::Unavailable {
                    builder: builder.name(),
                    message: format!("a build task stopped unexpectedly: {e}"),
                });
            }
        }
    }
    results.sort_by_key(|(index, _, _)| *index);
    let mut images = Vec::new();
    let mut first_error: Option<BuildError> = None;
    for (_, requested, result) in results {
        match result {
            Ok(outcome) => {
                let wanted: HashSet<&String> = requested.iter().collect();
                images.extend(outcome.images.into_iter().map(|mut image| {
                    image.tags.retain(|t| wanted.contains(t));
                    image
                }));
            }
            Err(error) => {
                let rank = |e: &BuildError| match e {
                    BuildError::Cancelled => 0,
                    BuildError::TimedOut(_) => 1,
                    _ => 2,
                };
                if first_error.as_ref().is_none_or(|c| rank(&error) < rank(c)) {
                    first_error = Some(error);
                }
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(images),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn key_with(change: impl FnOnce(&mut Owned)) -> BuildKey {
        let mut owned = Owned {
            variant: Variant::Docker,
            context: "ab".repeat(32),
            dockerfile: b"FROM scratch\nCOPY a /a\n".to_vec(),
            args: pairs(&[("A", "1"), ("B", "2")]),
            target: None,
            labels: pairs(&[("team", "x")]),
        };
        change(&mut owned);
        build_key(&KeyInputs {
            variant: owned.variant,
            context_sha256: &owned.context,
            dockerfile: &owned.dockerfile,
            build_args: &owned.args,
            target: owned.target.as_deref(),
            labels: &owned.labels,
        })
    }

    struct Owned {
        variant: Variant,
        context: String,
        dockerfile: Vec<u8>,
        args: Vec<(String, String)>,
        target: Option<String>,
        labels: Vec<(String, String)>,
    }

    #[test]
    fn the_key_is_stable_for_the_same_inputs_and_well_formed() {
        let a = key_with(|_| {});
        assert_eq!(a, key_with(|_| {}));
        assert_eq!(a.hex().len(), 64);
        assert!(a.hex().chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a.marker_tag(), format!("build-{}", &a.hex()[..20]));
        // The key label itself never feeds the key (a rebuilt image's labels hold it).
        let labelled = key_with(|o| o.labels.push((BUILD_KEY_LABEL.into(), a.hex().into())));
        assert_eq!(a, labelled);
    }

    #[test]
    fn the_key_changes_with_each_input() {
        let base = key_with(|_| {});
        let changed = [
            key_with(|o| o.variant = Variant::K8s),
            key_with(|o| o.context = "cd".repeat(32)),
            key_with(|o| o.dockerfile.push(b'\n')),
            key_with(|o| o.args[1].1 = "3".into()),
            key_with(|o| o.args.reverse()),
            key_with(|o| o.args.push(("C".into(), String::new()))),
            key_with(|o| o.target = Some("final".into())),
            key_with(|o| o.target = Some(String::new())),
            key_with(|o| o.labels.clear()),
            key_with(|o| o.labels[0].1 = "y".into()),
        ];
        let mut seen = HashSet::new();
        seen.insert(base.clone());
        for key in changed {
            assert_ne!(key, base);
            assert!(seen.insert(key), "two different inputs gave the same key");
        }
    }

    #[test]
    fn fields_do_not_run_into_each_other() {
        // `A=1B` + `=2` must not equal `A=1` + `B=2`.
        let one = key_with(|o| o.args = pairs(&[("A", "1B"), ("", "2")]));
        let two = key_with(|o| o.args = pairs(&[("A", "1"), ("B", "2")]));
        assert_ne!(one, two);
    }
}
