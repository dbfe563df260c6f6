#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Tests of the fake Gitea itself, through raw Connect calls over reqwest (proto and JSON
//! bodies): the rules the Gitea daemon's tests rely on must hold before they can judge the
//! daemon.

mod connect;
mod faults;
mod load;
mod logs;
mod tasks;
