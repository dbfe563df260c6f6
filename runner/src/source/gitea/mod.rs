//! Gitea and Forgejo as a job source: the `runner.v1` protocol types ([`proto`]), the Connect
//! client that speaks it, and the runner's identity on disk.

pub mod proto;
