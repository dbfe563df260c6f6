//! The job engine: Gitea tasks run on the host backend and in job pods against the fake
//! Kubernetes API. One test binary; each file is its own module.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up its data should fail loudly

mod gitea_task;
mod host_backend;
mod pod_steps;
