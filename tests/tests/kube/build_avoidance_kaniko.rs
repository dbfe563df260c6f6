//! Build avoidance with the Kaniko builder: `build_avoiding` around `ImageBuilder::Kaniko`
//! against the loopback fake Kubernetes API server (whose kubelet builds with buildah and
//! pushes to a real registry). The first build creates one namespace per missing variant
//! and records the keys; the second, for a new commit, creates no Job at all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use harness::fake_kube::FakeKubeOptions;
use hr_image::ImageBuilder;
use hr_image::avoidance::build_avoiding;
use hr_image::kaniko::{KanikoBuilder, Variant};
use hr_image::registry::{DockerCredentials, RegistryClient};
use tokio_util::sync::CancellationToken;

use harness::kaniko::*;

#[test]
fn kaniko_builds_record_the_key_and_a_new_commit_reuses_without_a_job() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let ctx = rig.context(
        "avoid",
        &[
            ("Dockerfile", DOCKERFILE),
            ("Dockerfile.k8s", DOCKERFILE_K8S),
            ("hello.txt", "hello from the avoided build\n"),
        ],
    );
    let image = rig.image("avoid");
    let mut first = rig.job(&ctx, &image, &Variant::ALL);
    first.request.skip_unchanged = true;
    let mut second = first.clone();
    for variant in &mut second.request.variants {
        for tag in &mut variant.tags {
            *tag = tag.replace(SHA, "feedface");
        }
    }
    let registry = RegistryClient::new(
        std::slice::from_ref(&rig.registry.host),
        DockerCredentials::default(),
    )
    .unwrap();
    let (log, lines) = recording_log();
    let (one, two) = runtime().block_on(async {
        let builder = KanikoBuilder::connect(Some(&rig.kubeconfig), None, rig.config())
            .await
            .unwrap();
        let builder = ImageBuilder::Kaniko(builder);
        let cancel = CancellationToken::new();
        let one = build_avoiding(&builder, &first, &log, &cancel, &registry).await;
        let jobs_after_first = job_creations(&rig);
        let two = build_avoiding(&builder, &second, &log, &cancel, &registry).await;
        assert_eq!(
            job_creations(&rig),
            jobs_after_first,
            "the second build created a Job"
        );
        (one.unwrap(), two.unwrap())
    });
    assert!(one.reused.is_empty(), "{one:?}");
    assert_eq!(one.outcome.images.len(), 2);
    assert_eq!(two.reused, Variant::ALL.to_vec());
    let mut tags = rig.registry.tags("avoid");
    tags.sort();
    assert_eq!(
        tags.iter().filter(|t| t.starts_with("build-")).count(),
        2,
        "{tags:?}"
    );
    for (built, reused) in one.outcome.images.iter().zip(&two.outcome.images) {
        assert_eq!(built.digest, reused.digest, "{:?}", built.variant);
        assert!(built.tags.iter().all(|t| !t.contains(":build-")));
        for tag in &reused.tags {
            let tag = tag.rsplit(':').next().unwrap();
            assert!(tag.contains("feedface") || tag.ends_with("latest"), "{tag}");
            assert_eq!(
                rig.registry.digest("avoid", tag).as_deref(),
                Some(reused.digest.as_str())
            );
        }
    }
    let lines = lines.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.line.starts_with("reused ")),
        "{lines:?}"
    );
    rig.assert_no_namespace_left();
}

/// How many Jobs the runner asked the fake to create so far.
fn job_creations(rig: &Rig) -> usize {
    rig.fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/jobs"))
        .count()
}
