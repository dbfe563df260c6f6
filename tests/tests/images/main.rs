//! Local image builds with buildah against a real registry on loopback: the builder, the
//! `build` command, build avoidance, builds inside `exec`, the registry client and fixture.
//! One test binary; each file is its own module.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up its data should fail loudly

mod build_avoidance;
mod exec_builds;
mod local_builder;
mod local_builds;
mod registry_client;
mod registry_fixture;
mod runner_image;
