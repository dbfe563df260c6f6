//! Gitea and Forgejo as a job source: the `runner.v1` protocol types ([`proto`]), the Connect
//! client that speaks it ([`client`]) and its errors ([`error`]), the runner's identity on
//! disk ([`registration`]) and one task through the job engine ([`task`], placed by
//! [`hr_engine::labels`]); the reporter that ships a task's log rows and step states
//! ([`report`]), the daemon's poll loop ([`daemon`]) and its configuration file, act_runner's
//! `config.yaml` ([`config`]).
//!
//! It owns no Kubernetes templates and no terminal output: job pods and image builds are the
//! engine's, the command line is the binary's.

pub mod client;
pub mod config;
pub mod daemon;
pub mod error;
pub mod proto;
pub mod registration;
pub mod report;
pub mod summary;
pub mod task;

pub use client::{ClientOptions, Credentials, Declared, RunnerClient, new_request_key};
pub use error::{Code, RpcError};
