//! The fake Kubernetes API server and Kaniko builds through it (`harness::kaniko`'s rig):
//! the builder, cluster checks, large contexts, `exec --builder kaniko` and build
//! avoidance. One test binary; each file is its own module.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up its data should fail loudly

mod build_avoidance_kaniko;
mod build_leases;
mod check_images;
mod check_pod;
mod deploy_rollouts;
mod exec_kaniko;
mod fake_kube;
mod kaniko_builds;
mod kaniko_cluster;
mod kaniko_large_contexts;
