//! The `hybrid-runner` binary's library: the command line, the commands behind it, and
//! the host-side pieces the pure `workflows` crate leaves out (file hashing).

pub mod backend;
pub mod cli;
pub mod hash_files;
