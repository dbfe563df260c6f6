//! GitHub's runner protocol against the fake GitHub on loopback (`harness::fake_github`).
//! One test binary; each file is its own module.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up its data should fail loudly

mod broker_session;
mod job_lock;
mod job_message;
mod oauth_tokens;
mod register_cli;
mod registration;
mod results_logs;
mod run_service;
