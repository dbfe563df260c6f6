//! The deploy manifests, their RBAC against the fake cluster, the deploy commands and
//! `render`. One test binary; each file is its own module (`deploy_common` shared).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up its data should fail loudly

mod deploy_cli;
mod deploy_common;
mod deploy_manifests;
mod deploy_rbac;
mod deploy_roles;
mod render_manifests;
