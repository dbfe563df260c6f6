//! The preflight: before any workload is touched, every image to be set is resolved in its
//! registry to a digest (a manifest `HEAD` with the runner's registry credentials) and
//! every workload is read and its container found. Anything missing fails the whole
//! deploy, listing every missing image with the build that should have produced it.

use futures::future::join_all;
use hr_image::registry::{ImageRef, Presence, RegistryClient, RegistryError};
use tokio::sync::Semaphore;

use crate::error::{ImageProblem, MissingImage, PreflightError, WorkloadProblem};
use crate::workload::{Workload, WorkloadRef};

/// How many registry or API requests the preflight sends at once.
const CONCURRENCY: usize = 8;

/// One image to roll out to one workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub workload: WorkloadRef,
    /// The image by tag (`registry/name:k8s-<sha>`), or already by digest.
    pub image: String,
    /// Which build produces the image, for the message when it is missing
    /// (`built by service api (hybrid-runner build --only api)`).
    pub producer: String,
}

/// A target ready to roll out.
#[derive(Debug, Clone)]
pub struct Planned {
    pub target: Target,
    pub workload: Workload,
    /// `sha256:…`.
    pub digest: String,
    /// The reference set on the workload: `name:tag@sha256:…`.
    pub image: String,
}

/// One image's lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageCheck {
    pub image: String,
    /// The digest, or why there is none.
    pub result: Result<String, ImageProblem>,
}

/// What the preflight found.
#[derive(Debug, Clone, Default)]
pub struct Preflight {
    /// Each distinct image, in the order first named.
    pub images: Vec<(ImageCheck, String)>,
    pub workload_problems: Vec<WorkloadProblem>,
    /// Every target, when nothing is missing.
    pub planned: Vec<Planned>,
}

impl Preflight {
    /// One line per image: `ok` with its digest, or what is missing and who builds it
    /// (`missing  reg/api:k8s-1: no such tag in the registry; built by service api (…)`).
    pub fn image_lines(&self) -> Vec<String> {
        let width = self
            .images
            .iter()
            .map(|(c, _)| c.image.len())
            .max()
            .unwrap_or(0);
        self.images
            .iter()
            .map(|(check, producer)| match &check.result {
                Ok(digest) => format!("ok       {:width$}  {digest}", check.image),
                Err(problem) => format!("{:8} {problem}; {producer}", problem.status()),
            })
            .collect()
    }

    /// The error that stops the deploy, if anything is missing.
    pub fn error(&self) -> Option<PreflightError> {
        let images: Vec<MissingImage> = self
            .images
            .iter()
            .filter_map(|(check, producer)| {
                check.result.as_ref().err().map(|problem| MissingImage {
                    problem: problem.clone(),
                    producer: producer.clone(),
                })
            })
            .collect();
        if images.is_empty() && self.workload_problems.is_empty() {
            return None;
        }
        Some(PreflightError::Missing {
            images,
            workloads: self.workload_problems.clone(),
            total: self.images.len(),
        })
    }
}

/// `image` pinned to `digest`: `name:tag@digest` (an image already by digest is kept).
pub fn pinned(image: &str, digest: &str) -> String {
    if image.contains('@') {
        image.to_string()
    } else {
        format!("{image}@{digest}")
    }
}

/// Resolves each image to its digest, [`CONCURRENCY`] at a time; results in input order.
///
/// The futures are made into a `Vec` first and joined: a lazy stream of `map`ped async
/// blocks over borrowed data is a future the compiler cannot prove `Send` inside a spawned
/// job (rust-lang/rust#102211).
pub async fn resolve_images(registry: &RegistryClient, images: &[String]) -> Vec<ImageCheck> {
    let slots = Semaphore::new(CONCURRENCY);
    let mut each = Vec::with_capacity(images.len());
    for image in images {
        let slots = &slots;
        each.push(async move {
            let _slot = slots.acquire().await;
            ImageCheck {
                image: image.clone(),
                result: resolve_one(registry, image).await,
            }
        });
    }
    join_all(each).await
}

async fn resolve_one(registry: &RegistryClient, image: &str) -> Result<String, ImageProblem> {
    let reference = ImageRef::parse(image).map_err(|e| ImageProblem::Reference {
        image: image.to_string(),
        message: e.to_string(),
    })?;
    match registry.resolve(&reference).await {
        Ok(Presence::Present { digest }) => Ok(digest),
        Ok(Presence::Missing { absence, tags }) => Err(ImageProblem::Missing {
            image: image.to_string(),
            absence,
            tags,
        }),
        Err(e @ RegistryError::Auth { .. }) => Err(ImageProblem::Denied {
            image: image.to_string(),
            message: e.to_string(),
        }),
        Err(e) => Err(ImageProblem::Unreachable {
            image: image.to_string(),
            message: e.to_string(),
        }),
    }
}

/// Resolves every image and reads every workload; changes nothing.
pub async fn preflight(
    client: &kube::Client,
    registry: &RegistryClient,
    targets: &[Target],
) -> Preflight {
    let mut distinct: Vec<(String, String)> = Vec::new();
    for target in targets {
        if !distinct.iter().any(|(image, _)| image == &target.image) {
            distinct.push((target.image.clone(), target.producer.clone()));
        }
    }
    let names: Vec<String> = distinct.iter().map(|(i, _)| i.clone()).collect();
    let slots = Semaphore::new(CONCURRENCY);
    let mut reads = Vec::with_capacity(targets.len());
    for target in targets {
        let slots = &slots;
        reads.push(async move {
            let _slot = slots.acquire().await;
            Workload::read(client, &target.workload).await
        });
    }
    let (checks, workloads) = tokio::join!(resolve_images(registry, &names), join_all(reads));
    let mut workload_problems = Vec::new();
    let mut planned = Vec::new();
    for (target, workload) in targets.iter().zip(workloads) {
        let digest = checks
            .iter()
            .find(|c| c.image == target.image)
            .and_then(|c| c.result.as_ref().ok());
        match (workload, digest) {
            (Ok(workload), Some(digest)) => planned.push(Planned {
                target: target.clone(),
                image: pinned(&target.image, digest),
                digest: digest.clone(),
                workload,
            }),
            (Err(problem), _) => {
                if !workload_problems.contains(&problem) {
                    workload_problems.push(problem);
                }
            }
            (Ok(_), None) => {}
        }
    }
    let images = checks
        .into_iter()
        .zip(distinct)
        .map(|(check, (_, producer))| (check, producer))
        .collect();
    let mut preflight = Preflight {
        images,
        workload_problems,
        planned,
    };
    if preflight.error().is_some() {
        preflight.planned.clear();
    }
    preflight
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_pinned_by_digest_keeping_their_tag() {
        assert_eq!(
            pinned("reg:5000/shop/api:k8s-1a2b", "sha256:ab"),
            "reg:5000/shop/api:k8s-1a2b@sha256:ab"
        );
        assert_eq!(
            pinned("reg/api@sha256:cd", "sha256:cd"),
            "reg/api@sha256:cd"
        );
    }
}
