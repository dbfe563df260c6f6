#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The registry fixture itself: a real buildah build pushed to it shows up with the digest
//! buildah reported.

use harness::buildah::PrivateStorage;
use harness::registry::{Registry, require_program};

#[test]
fn buildah_push_lands_in_the_registry_with_its_digest() {
    let Some(registry) = Registry::start() else {
        return;
    };
    if !require_program("buildah", "the build tests use a real local builder") {
        return;
    }
    let storage = PrivateStorage::new();
    let image = format!("{}/fixture/app:one", registry.host);
    let pushed = storage.push_hello(&registry, &image);
    assert_eq!(registry.tags("fixture/app"), vec!["one".to_string()]);
    assert_eq!(
        registry.digest("fixture/app", "one").as_deref(),
        Some(pushed.trim())
    );
    assert_eq!(registry.digest("fixture/app", "missing"), None);
}
