//! The `hybrid-runner` binary's library: the command line, the commands behind it, and
//! the terminal and JSON rendering of events ([`console`]), and the in-cluster install ([`deploy`]).

pub mod cli;
pub mod console;
pub mod deploy;
