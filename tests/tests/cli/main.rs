//! `hybrid-runner` as users call it, end to end through the tests crate's
//! `hybrid-runner-cli` (`harness::cli`): the command line, `exec`, `context` and
//! `register`. One test binary; each file is its own module.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up its data should fail loudly

mod build_context;
mod cli;
mod deploy_step;
mod example_hello;
mod exec_cli;
mod plans;
mod register_cli;
mod workflow_limits;
