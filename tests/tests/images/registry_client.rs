#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The runner's registry client against a real registry: a buildah-pushed image read back
//! byte for byte, copied to a new tag, to another repository (blobs mounted) and to another
//! registry (blobs uploaded), each with the same digest (what `docker tag` + `docker push` in
//! a run step does), and a missing tag reported as missing.

use harness::buildah::PrivateStorage;
use harness::registry::{Registry, require_program};
use hr_image::registry::{DockerCredentials, ImageRef, RegistryClient};

/// `image` built and pushed with buildah on a private storage (kept alive with the digest).
fn push_with_buildah(registry: &Registry, image: &str) -> (PrivateStorage, String) {
    let storage = PrivateStorage::new();
    let digest = storage.push_hello(registry, image);
    (storage, digest)
}

#[test]
fn a_manifest_is_copied_to_a_new_tag_with_the_same_digest() {
    let Some(registry) = Registry::start() else {
        return;
    };
    if !require_program("buildah", "the image is built with a real local builder") {
        return;
    }
    let source = format!("{}/team/app:v1", registry.host);
    let (_dir, pushed) = push_with_buildah(&registry, &source);
    let client = RegistryClient::new(
        std::slice::from_ref(&registry.host),
        DockerCredentials::default(),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let from = ImageRef::parse(&source).unwrap();
        let manifest = client.manifest(&from).await.unwrap();
        assert_eq!(manifest.digest, pushed, "the digest of the bytes read back");
        assert!(manifest.config_digest().unwrap().starts_with("sha256:"));
        let to = from.with_reference("v2");
        let copied = client.copy_image(&from, &to).await.unwrap();
        assert_eq!(copied, pushed);
        assert_eq!(client.digest(&to).await.unwrap(), Some(pushed.clone()));
        let missing = from.with_reference("nope");
        assert_eq!(client.digest(&missing).await.unwrap(), None);
    });
    assert_eq!(registry.tags("team/app"), vec!["v1", "v2"]);
    assert_eq!(
        registry.digest("team/app", "v2").as_deref(),
        Some(pushed.as_str())
    );
}

#[test]
fn an_image_is_copied_to_another_repository_and_another_registry_with_its_digest() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let Some(other) = Registry::start() else {
        return;
    };
    if !require_program("buildah", "the image is built with a real local builder") {
        return;
    }
    let source = format!("{}/team/app:v1", registry.host);
    let (_dir, pushed) = push_with_buildah(&registry, &source);
    let client = RegistryClient::new(
        &[registry.host.clone(), other.host.clone()],
        DockerCredentials::default(),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let from = ImageRef::parse(&source).unwrap();
        let blobs = client.manifest(&from).await.unwrap().blobs().unwrap();
        assert_eq!(blobs.len(), 2, "config and one layer: {blobs:?}");
        for target in [
            format!("{}/elsewhere/app:copy", registry.host),
            format!("{}/mirror/app:v1", other.host),
        ] {
            let to = ImageRef::parse(&target).unwrap();
            assert_eq!(client.copy_image(&from, &to).await.unwrap(), pushed);
            // A second copy finds every blob in place and still succeeds.
            assert_eq!(client.copy_image(&from, &to).await.unwrap(), pushed);
        }
    });
    assert_eq!(
        registry.digest("elsewhere/app", "copy").as_deref(),
        Some(pushed.as_str())
    );
    assert_eq!(
        other.digest("mirror/app", "v1").as_deref(),
        Some(pushed.as_str())
    );
    // The copy in the other registry is whole: buildah can pull it back.
    let check = PrivateStorage::new();
    let out = check
        .command()
        .args(["pull", "--tls-verify=false"])
        .arg(format!("{}/mirror/app:v1", other.host))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pull of the copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unreachable_registry_names_the_insecure_flag() {
    let client = RegistryClient::new(&[], DockerCredentials::default()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    let image = ImageRef::parse("127.0.0.1:9/app:v1").unwrap();
    let error = runtime.block_on(client.digest(&image)).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("cannot reach the registry 127.0.0.1:9"),
        "{text}"
    );
    assert!(text.contains("--insecure-registry 127.0.0.1:9"), "{text}");
}
