//! The `hybrid-runner` binary's library: command-line interface and the commands behind it.

pub mod cli;
