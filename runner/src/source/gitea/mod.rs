//! Gitea and Forgejo as a job source: the `runner.v1` protocol types ([`proto`]), the Connect
//! client that speaks it ([`client`]) and its errors ([`error`]), the runner's identity on
//! disk ([`registration`]) and the label syntax ([`labels`]).

pub mod client;
pub mod error;
pub mod labels;
pub mod proto;
pub mod registration;

pub use client::{ClientOptions, Credentials, Declared, RunnerClient};
pub use error::{Code, RpcError};
