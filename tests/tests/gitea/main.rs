//! Everything Gitea: the fake Gitea itself, the Connect client, registration, the poller,
//! the task reporter and the daemon (end to end, faults, builds, load). One test binary;
//! each file is its own module.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up its data should fail loudly

mod fake_gitea;
mod gitea_client;
mod gitea_daemon;
mod gitea_daemon_build;
mod gitea_daemon_containers;
mod gitea_daemon_dialects;
mod gitea_daemon_faults;
mod gitea_daemon_load;
mod gitea_daemon_memory;
mod gitea_daemon_migration;
mod gitea_daemon_services;
mod gitea_daemon_smoke;
mod gitea_poller;
mod gitea_register;
mod gitea_reporter;
