//! Gitea and Forgejo as a job source: the `runner.v1` protocol types ([`proto`]), the Connect
//! client that speaks it ([`client`]) and its errors ([`error`]), the runner's identity on
//! disk ([`registration`]), the label syntax ([`labels`]) and one task through the job
//! engine ([`task`]).

pub mod client;
pub mod error;
pub mod labels;
pub mod proto;
pub mod registration;
pub mod task;

pub use client::{ClientOptions, Credentials, Declared, RunnerClient};
pub use error::{Code, RpcError};
