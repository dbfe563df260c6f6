//! Step processes on this host: [`host::run_process`] starts one process in its own process
//! group, streams its output as lines ([`lines::LineSplitter`]), and stops it on cancel or
//! timeout the way GitHub's runner does (SIGINT, then SIGTERM, then SIGKILL, to the whole
//! group, per [`host::StopPolicy`]). [`orphans`] finds and stops what a job's steps left
//! running (by `RUNNER_TRACKING_ID`), [`budget`] holds a process's pipes back while the
//! consumer of its lines lags, and [`shell::resolve_shell`] turns a step's `shell:`
//! into the command GitHub's runner would start. [`stop_signals`] are the signals that
//! stop this program's own runs.
//!
//! This crate owns no notion of jobs, workflows or Kubernetes: the engine decides what to
//! run, a pod step host runs the same contract over `pods/exec`.

pub mod budget;
mod group;
pub mod host;
pub mod lines;
pub mod orphans;
pub mod shell;
pub mod stop_signals;
