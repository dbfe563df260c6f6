//! The `hybrid-runner` binary's library: the command line, the commands behind it, and
//! the host-side pieces the pure `workflows` crate leaves out (file hashing).

pub mod cli;
pub mod config;
pub mod console;
pub mod daemon;
pub mod deploy;
pub mod report;
pub mod source;
pub mod tls;
