//! The step outputs of a finished build, per [`OutputsStyle`].
//!
//! - `docker/build-push-action`: `digest` (the manifest digest), `imageid` (the image config
//!   digest, read back from the registry when the image was pushed; empty when it was not),
//!   and `metadata`, a JSON object like buildx's metadata file: `containerimage.digest`,
//!   `image.name` (the tags, comma separated), and when the manifest was read back
//!   `containerimage.config.digest` and `containerimage.descriptor`.
//! - `hybrid-runner/build`: per variant `<variant>-digest`, `<variant>-image`
//!   (`registry/name@digest`; empty when the digest is unknown, i.e. `push: false` on a builder
//!   that cannot tell) and `<variant>-tags` (the full references, **comma separated**, so the
//!   value stays one line for `${{ }}`, shell loops and the `tags:` input of
//!   `docker/build-push-action`); then `digest`, `image` and `tags` of the first variant.
//! - The `docker` shim sets no outputs.

use actions::image_build::OutputsStyle;
use serde_json::json;

use hr_image::BuildOutcome;
use hr_image::registry::Manifest;

/// `registry/name:tag` -> `registry/name` (a port in the registry part is kept).
pub fn repository_of(reference: &str) -> &str {
    let reference = reference.split('@').next().unwrap_or(reference);
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(colon) => &reference[..last_slash + colon],
        None => reference,
    }
}

/// The outputs of `outcome`; `manifest` is the first image's manifest as the registry
/// holds it, when it was read back.
pub fn step_outputs(
    style: OutputsStyle,
    outcome: &BuildOutcome,
    manifest: Option<&Manifest>,
) -> Vec<(String, String)> {
    match style {
        OutputsStyle::BuildPush => build_push(outcome, manifest),
        OutputsStyle::Dual => dual(outcome),
        OutputsStyle::Shim => Vec::new(),
    }
}

fn build_push(outcome: &BuildOutcome, manifest: Option<&Manifest>) -> Vec<(String, String)> {
    let Some(image) = outcome.images.first() else {
        return Vec::new();
    };
    let config = manifest.and_then(Manifest::config_digest);
    let mut metadata = serde_json::Map::new();
    if let (Some(m), Some(config)) = (manifest, &config) {
        metadata.insert("containerimage.config.digest".into(), json!(config));
        metadata.insert(
            "containerimage.descriptor".into(),
            json!({"mediaType": m.media_type, "digest": m.digest, "size": m.bytes.len()}),
        );
    }
    if !image.digest.is_empty() {
        metadata.insert("containerimage.digest".into(), json!(image.digest));
    }
    metadata.insert("image.name".into(), json!(image.tags.join(",")));
    vec![
        ("imageid".into(), config.unwrap_or_default()),
        ("digest".into(), image.digest.clone()),
        (
            "metadata".into(),
            serde_json::Value::Object(metadata).to_string(),
        ),
    ]
}

fn dual(outcome: &BuildOutcome) -> Vec<(String, String)> {
    let mut outputs = Vec::new();
    let mut first = None;
    for image in &outcome.images {
        let name = image.tags.first().map_or("", |t| repository_of(t));
        let reference = if image.digest.is_empty() || name.is_empty() {
            String::new()
        } else {
            format!("{name}@{}", image.digest)
        };
        let tags = image.tags.join(",");
        let variant = image.variant.as_str();
        outputs.push((format!("{variant}-digest"), image.digest.clone()));
        outputs.push((format!("{variant}-image"), reference.clone()));
        outputs.push((format!("{variant}-tags"), tags.clone()));
        first.get_or_insert((image.digest.clone(), reference, tags));
    }
    if let Some((digest, image, tags)) = first {
        outputs.push(("digest".into(), digest));
        outputs.push(("image".into(), image));
        outputs.push(("tags".into(), tags));
    }
    outputs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use actions::image_build::Variant;

    use super::*;
    use hr_image::BuiltImage;
    use hr_image::registry::sha256_digest;

    fn get<'a>(outputs: &'a [(String, String)], key: &str) -> &'a str {
        outputs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no output {key} in {outputs:?}"))
    }

    #[test]
    fn repository_strips_the_tag_but_not_the_port() {
        assert_eq!(
            repository_of("127.0.0.1:5000/team/app:docker-abc"),
            "127.0.0.1:5000/team/app"
        );
        assert_eq!(repository_of("127.0.0.1:5000/app"), "127.0.0.1:5000/app");
        assert_eq!(repository_of("app:v1"), "app");
        assert_eq!(repository_of("r.io/app@sha256:00"), "r.io/app");
    }

    #[test]
    fn dual_outputs_name_each_variant_and_the_first() {
        let outcome = BuildOutcome {
            images: vec![
                BuiltImage {
                    variant: Variant::Docker,
                    digest: "sha256:d0".into(),
                    tags: vec!["r:5000/app:latest".into(), "r:5000/app:docker-abc".into()],
                },
                BuiltImage {
                    variant: Variant::K8s,
                    digest: "sha256:k8".into(),
                    tags: vec!["r:5000/app:k8s-latest".into()],
                },
            ],
        };
        let out = step_outputs(OutputsStyle::Dual, &outcome, None);
        assert_eq!(get(&out, "docker-digest"), "sha256:d0");
        assert_eq!(get(&out, "docker-image"), "r:5000/app@sha256:d0");
        assert_eq!(
            get(&out, "docker-tags"),
            "r:5000/app:latest,r:5000/app:docker-abc"
        );
        assert_eq!(get(&out, "k8s-digest"), "sha256:k8");
        assert_eq!(get(&out, "k8s-image"), "r:5000/app@sha256:k8");
        assert_eq!(get(&out, "k8s-tags"), "r:5000/app:k8s-latest");
        assert_eq!(get(&out, "digest"), "sha256:d0");
        assert_eq!(get(&out, "image"), "r:5000/app@sha256:d0");
        assert_eq!(out.len(), 9);
    }

    #[test]
    fn an_unknown_digest_leaves_the_image_reference_empty() {
        let outcome = BuildOutcome {
            images: vec![BuiltImage {
                variant: Variant::K8s,
                digest: String::new(),
                tags: vec!["r/app:k8s-latest".into()],
            }],
        };
        let out = step_outputs(OutputsStyle::Dual, &outcome, None);
        assert_eq!(get(&out, "k8s-image"), "");
        assert_eq!(get(&out, "image"), "");
        assert_eq!(get(&out, "tags"), "r/app:k8s-latest");
    }

    #[test]
    fn build_push_outputs_follow_buildx_metadata() {
        let bytes = br#"{"schemaVersion":2,"config":{"digest":"sha256:cf"}}"#.to_vec();
        let manifest = Manifest {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: sha256_digest(&bytes),
            bytes,
        };
        let outcome = BuildOutcome {
            images: vec![BuiltImage {
                variant: Variant::Docker,
                digest: manifest.digest.clone(),
                tags: vec!["r/app:v1".into(), "r/app:latest".into()],
            }],
        };
        let out = step_outputs(OutputsStyle::BuildPush, &outcome, Some(&manifest));
        assert_eq!(get(&out, "digest"), manifest.digest);
        assert_eq!(get(&out, "imageid"), "sha256:cf");
        let metadata: serde_json::Value = serde_json::from_str(get(&out, "metadata")).unwrap();
        assert_eq!(metadata["containerimage.digest"], manifest.digest.as_str());
        assert_eq!(metadata["containerimage.config.digest"], "sha256:cf");
        assert_eq!(metadata["image.name"], "r/app:v1,r/app:latest");
        assert_eq!(
            metadata["containerimage.descriptor"]["size"],
            manifest.bytes.len()
        );
        let unpushed = step_outputs(OutputsStyle::BuildPush, &outcome, None);
        assert_eq!(get(&unpushed, "imageid"), "");
        assert!(!get(&unpushed, "metadata").contains("config"));
        assert!(step_outputs(OutputsStyle::Shim, &outcome, None).is_empty());
    }
}
