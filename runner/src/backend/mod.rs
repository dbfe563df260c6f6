//! Backends run a job's steps somewhere: on this host, in a container, or in a pod.
//!
//! The contract every backend keeps (architecture.md, "Main traits"):
//!
//! - `prepare(&JobPlan) -> JobEnv` sets the job up (work directory, container, network).
//!   It may fail halfway; whatever it created is recorded in what `teardown` receives.
//! - `run_step(&JobEnv, &StepSpec, LogSink, cancel) -> StepExit` runs one step, streaming its
//!   output lines as they come, and stops it on cancel or timeout the way GitHub's runner
//!   does (SIGINT, then SIGTERM, then SIGKILL, to the whole process group).
//! - `teardown(JobEnv)` releases everything `prepare` and the steps left behind (including
//!   background processes a step started). It is idempotent and safe to call after a
//!   failed `prepare`: it undoes only what exists and never fails because something is
//!   already gone.
//!
//! For now this module holds the host building blocks: [`host::run_process`] runs one
//! process in its own process group, and [`shell::resolve_shell`] turns a step's `shell:`
//! into the command GitHub's runner would start.

mod group;
pub mod host;
mod lines;
pub mod orphans;
pub mod pod;
pub mod shell;
