//! What the `docker` shim of one job knows about images: which references its builds (and
//! the job's built-in build steps) produced (and whether they were pushed, with which digest), and which names `docker tag`
//! gave them. There is no local image store (Kaniko keeps nothing), so `docker push` is
//! planned from this record:
//!
//! - a reference a build (or an earlier push) already put in the registry: nothing to do;
//! - a tag of an image that is in a registry: copy it to the reference (the manifest alone
//!   within a repository, blobs too into another repository or registry; same digest);
//! - an image that was built without `--push`: run its build again with `--push` to the
//!   reference (the builder's layer cache makes it cheap);
//! - anything else was never built in this job: refused, with what to do.

use std::collections::HashMap;
use std::sync::Arc;

use hr_image::registry::ImageRef;
use hr_image::{BuildJob, BuildOutcome};

/// `reference` spelled the one way Docker means it (`app` = `docker.io/library/app:latest`).
pub fn normalise(reference: &str) -> String {
    ImageRef::parse(reference).map_or_else(|_| reference.to_string(), |r| r.to_string())
}

#[derive(Debug, Clone, Default)]
struct KnownImage {
    /// The build that produced the image, to run again with a push.
    build: Option<Arc<BuildJob>>,
    /// The digest this very reference has in its registry.
    pushed: Option<String>,
    /// A reference holding the same image in a registry, and its digest.
    source: Option<(String, String)>,
}

/// How to carry out `docker push REF`.
#[derive(Debug, Clone)]
pub enum PushPlan {
    /// The registry already has it.
    AlreadyPushed { digest: String },
    /// Copy the image `from` (in a registry, with `digest`) to the reference.
    Copy { from: String, digest: String },
    /// Build again, pushing to the reference only.
    Rebuild(Box<BuildJob>),
    /// Never built or tagged in this job.
    Unknown,
}

/// The images one job's shim built and tagged.
#[derive(Debug, Default)]
pub struct ShimImages {
    known: HashMap<String, KnownImage>,
}

impl ShimImages {
    /// After a build: every tag of every image is known, pushed when the build pushed
    /// (with the digest the builder reported).
    pub fn record_build(&mut self, job: &BuildJob, outcome: &BuildOutcome) {
        let build = Arc::new(job.clone());
        for (index, variant) in job.request.variants.iter().enumerate() {
            let digest = outcome
                .images
                .iter()
                .find(|i| i.variant == variant.variant)
                .or(outcome.images.get(index))
                .map(|i| i.digest.clone())
                .filter(|d| !d.is_empty());
            let mut single = (*build).clone();
            single.request.variants = vec![variant.clone()];
            let single = Arc::new(single);
            for tag in &variant.tags {
                let pushed = if job.request.push {
                    digest.clone()
                } else {
                    None
                };
                self.known.insert(
                    normalise(tag),
                    KnownImage {
                        build: Some(single.clone()),
                        pushed: pushed.clone(),
                        source: None,
                    },
                );
            }
        }
    }

    /// Whether `reference` was built or tagged in this job.
    pub fn knows(&self, reference: &str) -> bool {
        self.known.contains_key(&normalise(reference))
    }

    /// `docker tag SOURCE TARGET` for a source this job knows; `false` when it does not.
    pub fn tag(&mut self, source: &str, target: &str) -> bool {
        let Some(known) = self.known.get(&normalise(source)).cloned() else {
            return false;
        };
        let source_in_registry = known
            .pushed
            .clone()
            .map(|digest| (normalise(source), digest))
            .or(known.source.clone());
        self.known.insert(
            normalise(target),
            KnownImage {
                build: known.build,
                pushed: None,
                source: source_in_registry,
            },
        );
        true
    }

    /// `docker tag SOURCE TARGET` for a source found in its registry with `digest`.
    pub fn tag_from_registry(&mut self, source: &str, digest: &str, target: &str) {
        self.known.insert(
            normalise(target),
            KnownImage {
                build: None,
                pushed: None,
                source: Some((normalise(source), digest.to_string())),
            },
        );
    }

    pub fn plan_push(&self, reference: &str) -> PushPlan {
        let key = normalise(reference);
        let Some(known) = self.known.get(&key) else {
            return PushPlan::Unknown;
        };
        if let Some(digest) = &known.pushed {
            return PushPlan::AlreadyPushed {
                digest: digest.clone(),
            };
        }
        if let Some((from, digest)) = &known.source {
            return PushPlan::Copy {
                from: from.clone(),
                digest: digest.clone(),
            };
        }
        match &known.build {
            Some(build) => {
                let mut job = (**build).clone();
                job.request.push = true;
                for variant in &mut job.request.variants {
                    variant.tags = vec![reference.to_string()];
                }
                PushPlan::Rebuild(Box::new(job))
            }
            None => PushPlan::Unknown,
        }
    }

    /// `reference` is in its registry with `digest`.
    pub fn record_push(&mut self, reference: &str, digest: &str) {
        let entry = self.known.entry(normalise(reference)).or_default();
        entry.pushed = Some(digest.to_string()).filter(|d| !d.is_empty());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::PathBuf;
    use std::time::{Duration, SystemTime};

    use actions::image_build::{BuildRequest, OutputsStyle, Variant, VariantRequest};

    use super::*;
    use hr_cluster::TaskIds;
    use hr_image::BuiltImage;

    fn job(tags: &[&str], push: bool) -> BuildJob {
        BuildJob {
            request: BuildRequest {
                context: PathBuf::from("."),
                variants: vec![VariantRequest {
                    variant: Variant::Docker,
                    dockerfile: "Dockerfile".into(),
                    tags: tags.iter().map(|t| t.to_string()).collect(),
                }],
                build_args: Vec::new(),
                target: None,
                labels: Vec::new(),
                push,
                cache: true,
                skip_unchanged: false,
                outputs_for: OutputsStyle::Shim,
            },
            workspace: PathBuf::from("/w"),
            sha: "abc".into(),
            task: TaskIds {
                task: "1".into(),
                job: "build".into(),
                started_at: SystemTime::UNIX_EPOCH,
            },
            timeout: Duration::from_secs(60),
            insecure_registries: Vec::new(),
        }
    }

    fn outcome(digest: &str, tags: &[&str]) -> BuildOutcome {
        BuildOutcome {
            images: vec![BuiltImage {
                variant: Variant::Docker,
                digest: digest.into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
            }],
        }
    }

    #[test]
    fn a_pushed_build_needs_no_second_push_and_tags_copy_in_the_repository() {
        let mut images = ShimImages::default();
        let tags = ["r:5000/app:v1", "r:5000/app:latest"];
        images.record_build(&job(&tags, true), &outcome("sha256:aa", &tags));
        assert!(matches!(
            images.plan_push("r:5000/app:v1"),
            PushPlan::AlreadyPushed { digest } if digest == "sha256:aa"
        ));
        assert!(images.tag("r:5000/app:v1", "r:5000/app:v2"));
        match images.plan_push("r:5000/app:v2") {
            PushPlan::Copy { from, digest } => {
                assert_eq!(from, "r:5000/app:v1");
                assert_eq!(digest, "sha256:aa");
            }
            other => panic!("{other:?}"),
        }
        images.record_push("r:5000/app:v2", "sha256:aa");
        assert!(matches!(
            images.plan_push("r:5000/app:v2"),
            PushPlan::AlreadyPushed { .. }
        ));
        // A tag of a tag still copies from the image in the registry.
        assert!(images.tag("r:5000/app:v2", "r:5000/app:v3"));
        assert!(matches!(
            images.plan_push("r:5000/app:v3"),
            PushPlan::Copy { digest, .. } if digest == "sha256:aa"
        ));
    }

    #[test]
    fn an_unpushed_build_is_built_again_with_a_push_to_the_reference() {
        let mut images = ShimImages::default();
        images.record_build(&job(&["app:dev"], false), &outcome("", &["app:dev"]));
        assert!(images.knows("docker.io/library/app:dev"));
        assert!(images.tag("app:dev", "r:5000/team/app:1.0"));
        match images.plan_push("r:5000/team/app:1.0") {
            PushPlan::Rebuild(job) => {
                assert!(job.request.push);
                assert_eq!(job.request.variants[0].tags, vec!["r:5000/team/app:1.0"]);
            }
            other => panic!("{other:?}"),
        }
        match images.plan_push("app:dev") {
            PushPlan::Rebuild(job) => assert_eq!(job.request.variants[0].tags, vec!["app:dev"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_repositories_are_copied_and_strangers_are_unknown() {
        let mut images = ShimImages::default();
        images.record_build(&job(&["r:5000/a:v1"], true), &outcome("sha256:aa", &[]));
        assert!(images.tag("r:5000/a:v1", "other.io/b:v1"));
        assert!(matches!(
            images.plan_push("other.io/b:v1"),
            PushPlan::Copy { from, digest } if from == "r:5000/a:v1" && digest == "sha256:aa"
        ));
        assert!(matches!(images.plan_push("r:5000/c:v1"), PushPlan::Unknown));
        assert!(!images.tag("r:5000/c:v1", "r:5000/c:v2"));
        images.tag_from_registry("r:5000/c:v1", "sha256:cc", "r:5000/c:v2");
        assert!(matches!(
            images.plan_push("r:5000/c:v2"),
            PushPlan::Copy { digest, .. } if digest == "sha256:cc"
        ));
        images.tag_from_registry("r:5000/c:v1", "sha256:cc", "r:5000/d:v2");
        assert!(matches!(
            images.plan_push("r:5000/d:v2"),
            PushPlan::Copy { digest, .. } if digest == "sha256:cc"
        ));
    }
}
