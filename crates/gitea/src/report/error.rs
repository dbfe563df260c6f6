//! What can go wrong while shipping a task's log and state: the spool on disk, the
//! shipping task itself, and the final calls once their retries are used up.

use std::path::PathBuf;

use crate::RpcError;

/// A reporter failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "the task spool folder {path} could not be created; check that runner.spool_dir is writable"
    )]
    SpoolCreate {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the spool file {path} failed; check the free space of runner.spool_dir")]
    SpoolWrite {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the spool file {path} failed; check its permissions")]
    SpoolRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the spool file {path} is not a task state this runner wrote; remove its folder to give the task up"
    )]
    SpoolCorrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "the reporter of task {task_id} stopped unexpectedly; its spool folder is kept for the next daemon start"
    )]
    Stopped { task_id: i64 },
    #[error(
        "task {task_id}: the final log was not acknowledged after {attempts} attempts; the spool keeps it and the next daemon start sends it"
    )]
    FinalLog {
        task_id: i64,
        attempts: u32,
        #[source]
        source: RpcError,
    },
    #[error(
        "task {task_id}: the final result was not acknowledged after {attempts} attempts; the spool keeps it and the next daemon start sends it"
    )]
    FinalState {
        task_id: i64,
        attempts: u32,
        #[source]
        source: RpcError,
    },
}
