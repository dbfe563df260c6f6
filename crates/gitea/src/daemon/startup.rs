//! What the daemon does before its first poll: take the runner file's lock and read the
//! registration, settle the labels (`--labels` / `runner.labels` replace the file's, and
//! the file is rewritten to match), `Declare` to the server (retrying while it is
//! unreachable), and clear what a killed daemon left behind: the processes of its tasks
//! and (when a cluster answers) this runner's expired Kaniko build namespaces.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::diagnostics::chain;
use crate::proto::runner::v1::DeclareRequest;
use crate::registration::{Registration, RegistrationError, RegistrationLock};
use crate::{Code, Declared, RpcError, RunnerClient, client};
use hr_cluster::leases::LeaseReaper;
use hr_cluster::reap_expired;
use hr_engine::labels::{self, Label, LabelError};
use hr_image::kaniko::{KanikoBuilder, KanikoConfig};
use hr_process::orphans;

/// The capabilities this runner declares: it reports a final state for cancelled tasks
/// (the server may wait for it, `Cancelling`).
pub const CAPABILITIES: [&str; 1] = ["cancelling"];

/// How long the start-up reaper may spend on the cluster.
const REAP_BUDGET: Duration = Duration::from_secs(30);
/// How often the daemon reaps again after start-up: a build namespace left behind while
/// the daemon runs (a crashed build, a cluster that refused the deletion) is deleted
/// within this much of its expiry, with no restart needed, and a build whose runner is
/// gone within this much of its lease lapsing (two list calls a minute).
pub const REAP_INTERVAL: Duration = Duration::from_secs(60);

/// The registration in use, with its lock held for the daemon's life.
#[derive(Debug)]
pub struct Identity {
    pub registration: Registration,
    /// Parsed, in the order given.
    pub labels: Vec<Label>,
    pub runner_file: PathBuf,
    _lock: RegistrationLock,
}

/// Why the daemon cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Registration(#[from] RegistrationError),
    #[error("the labels of {path} cannot be used; register again or set runner.labels")]
    FileLabels {
        path: PathBuf,
        #[source]
        source: LabelError,
    },
    #[error(transparent)]
    Labels(LabelError),
    #[error(
        "{instance} does not implement Declare: Gitea before 1.21 is not supported; please upgrade to 1.21 or later"
    )]
    ServerTooOld { instance: String },
    #[error("{instance} refused Declare; check the runner's registration and the server's logs")]
    DeclareRefused {
        instance: String,
        #[source]
        source: RpcError,
    },
    #[error("{instance} refused this runner's credentials")]
    Unauthenticated {
        instance: String,
        #[source]
        source: RpcError,
    },
    #[error("stopped before the server could be reached")]
    Stopped,
}

impl StartError {
    /// Usage and configuration errors (exit 2): no registration, unusable labels.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            StartError::Registration(
                RegistrationError::Read { .. } | RegistrationError::Parse { .. }
            ) | StartError::FileLabels { .. }
                | StartError::Labels(_)
        )
    }
}

/// Takes `runner_file`'s lock, reads it, and settles the labels: `labels` (the flag or
/// `runner.labels`), when not empty, replace the file's and are written back to it.
pub fn load_identity(runner_file: &Path, labels: &[String]) -> Result<Identity, StartError> {
    let lock = RegistrationLock::acquire(runner_file)?;
    let mut registration = Registration::load(runner_file)?;
    let parsed = if labels.is_empty() {
        Label::parse_all(&registration.labels).map_err(|source| StartError::FileLabels {
            path: runner_file.to_path_buf(),
            source,
        })?
    } else {
        let parsed = Label::parse_all(labels).map_err(StartError::Labels)?;
        let specs: Vec<String> = parsed.iter().map(Label::to_spec).collect();
        if specs != registration.labels {
            tracing::info!(labels = ?specs, file = %runner_file.display(), "labels replaced; the runner file is updated");
            registration.labels = specs;
            registration.save(runner_file)?;
        }
        parsed
    };
    if parsed.is_empty() {
        tracing::warn!(
            "the runner has no labels: the server offers it no jobs; set runner.labels or pass --labels"
        );
    }
    Ok(Identity {
        registration,
        labels: parsed,
        runner_file: runner_file.to_path_buf(),
        _lock: lock,
    })
}

/// Declares version, label names and [`CAPABILITIES`]; transient failures are retried
/// (paced by `retry_pause`, doubling up to `retry_max`) until `stop` fires.
pub async fn declare(
    client: &RunnerClient,
    instance: &str,
    labels: &[Label],
    retry_pause: Duration,
    retry_max: Duration,
    stop: &CancellationToken,
) -> Result<Declared, StartError> {
    let request = DeclareRequest {
        version: client::VERSION.to_string(),
        labels: labels::names(labels),
        capabilities: CAPABILITIES.iter().map(|c| c.to_string()).collect(),
    };
    let mut failures = 0;
    loop {
        let answer = tokio::select! {
            answer = client.declare(&request) => answer,
            _ = stop.cancelled() => return Err(StartError::Stopped),
        };
        let error = match answer {
            Ok(declared) => return Ok(declared),
            Err(e) => e,
        };
        let instance = instance.to_string();
        if error.is_unauthenticated() {
            return Err(StartError::Unauthenticated {
                instance,
                source: error,
            });
        }
        if error.code() == Some(Code::Unimplemented) {
            return Err(StartError::ServerTooOld { instance });
        }
        if !error.is_transient() {
            return Err(StartError::DeclareRefused {
                instance,
                source: error,
            });
        }
        failures += 1;
        if failures == 1 || failures % 10 == 0 {
            tracing::warn!(error = %chain(&error), failures, "cannot declare the runner; retrying");
        }
        let pause = super::backoff::pause(retry_pause, retry_max, failures);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.cancelled() => return Err(StartError::Stopped),
        }
    }
}

/// The file beside the runner file that holds the running daemon's process id, so the next
/// daemon can stop the processes a killed one left behind.
pub fn pid_file(runner_file: &Path) -> PathBuf {
    let mut name = runner_file.as_os_str().to_owned();
    name.push(".pid");
    PathBuf::from(name)
}

/// Stops the processes the tasks of a previous daemon on this runner file left running
/// (found by their `RUNNER_TRACKING_ID` prefix), unless that daemon's process id now
/// belongs to another live process; then records this daemon's id. Returns how many
/// processes were stopped.
pub async fn stop_previous_processes(runner_file: &Path) -> usize {
    let path = pid_file(runner_file);
    let own = std::process::id();
    let previous = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok());
    let mut stopped = 0;
    if let Some(pid) = previous {
        let alive_elsewhere = pid != own && Path::new(&format!("/proc/{pid}")).exists();
        if alive_elsewhere {
            tracing::debug!(
                pid,
                "the previous daemon's process id is in use; its processes are left alone"
            );
        } else {
            stopped =
                orphans::stop_tracked_prefix(&orphans::daemon_prefix(pid), Duration::from_secs(5))
                    .await;
            if stopped > 0 {
                tracing::warn!(
                    stopped,
                    previous_pid = pid,
                    "stopped processes that the tasks of a stopped daemon left running"
                );
            }
        }
    }
    if let Err(e) = std::fs::write(&path, format!("{own}\n")) {
        tracing::warn!(error = %e, file = %path.display(), "cannot record the daemon's process id");
    }
    stopped
}

/// Deletes this runner's expired build namespaces when a cluster is configured and
/// answers, and the build namespaces of any runner whose build lease has
/// stood still too long (see [`hr_cluster::leases`]); never fails (a missing or silent
/// cluster is logged at debug / warn).
pub async fn reap_build_namespaces(
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    config: KanikoConfig,
    leases: &mut LeaseReaper,
) {
    let reaped = tokio::time::timeout(REAP_BUDGET, async {
        let builder =
            KanikoBuilder::connect(kubeconfig.as_deref(), context.as_deref(), config).await?;
        // Each pass is tried whatever the other's outcome.
        let expired = reap_expired(
            builder.client(),
            &builder.config().runner_id,
            SystemTime::now(),
        )
        .await;
        let lapsed = leases.reap(builder.client()).await;
        Ok::<_, hr_cluster::ClusterError>((expired, lapsed))
    })
    .await;
    let (expired, lapsed) = match reaped {
        Ok(Ok(passes)) => passes,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "no cluster configured; nothing to reap");
            return;
        }
        Err(_) => {
            tracing::warn!(
                "the cluster did not answer within {REAP_BUDGET:?}; build namespaces left behind are reaped later or by `hybrid-runner cleanup`"
            );
            return;
        }
    };
    match expired {
        Ok(names) if names.is_empty() => tracing::debug!("no expired build namespaces to reap"),
        Ok(names) => {
            tracing::info!(namespaces = ?names, "deleted expired build namespaces of this runner")
        }
        Err(e) => tracing::warn!(error = %e, "cannot reap expired build namespaces"),
    }
    match lapsed {
        Ok(gone) => {
            for gone in gone {
                tracing::warn!(
                    namespace = %gone.namespace,
                    runner_id = %gone.runner_id,
                    holder = %gone.holder,
                    still_for_s = gone.still_for.as_secs(),
                    "deleted a build namespace whose runner is gone (its build lease was no longer renewed)"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot reap the builds of runners that are gone"),
    }
}

/// [`reap_build_namespaces`] at once, then every `interval` until `stop` is cancelled,
/// judging build leases across the passes.
pub async fn reap_build_namespaces_periodically(
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    config: KanikoConfig,
    interval: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut leases = LeaseReaper::new();
    loop {
        tokio::select! {
            () = reap_build_namespaces(kubeconfig.clone(), context.clone(), config.clone(), &mut leases) => {}
            () = stop.cancelled() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registration::WARNING;

    fn registration(labels: &[&str]) -> Registration {
        Registration {
            warning: WARNING.into(),
            id: 1,
            uuid: "u".into(),
            name: "hr".into(),
            token: "t".into(),
            address: "http://127.0.0.1:1".into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            ephemeral: false,
            other: Default::default(),
        }
    }

    #[test]
    fn labels_given_replace_the_files_and_are_saved() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".runner");
        registration(&["ubuntu-latest:host"]).save(&file).unwrap();
        let same = load_identity(&file, &[]).unwrap();
        assert_eq!(labels::names(&same.labels), ["ubuntu-latest"]);
        // The lock is held: a second daemon on the file fails clearly.
        let second = load_identity(&file, &[]).unwrap_err();
        assert!(
            second.to_string().contains("another runner process"),
            "{second}"
        );
        assert!(!second.is_usage());
        drop(same);
        let replaced = load_identity(&file, &["a:host".into(), "k:kubernetes".into()]).unwrap();
        assert_eq!(labels::names(&replaced.labels), ["a", "k"]);
        drop(replaced);
        assert_eq!(
            Registration::load(&file).unwrap().labels,
            ["a:host", "k:kubernetes"]
        );
    }

    #[test]
    fn a_missing_file_or_bad_labels_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = load_identity(&dir.path().join(".runner"), &[]).unwrap_err();
        assert!(missing.is_usage());
        assert!(
            missing.to_string().contains("hybrid-runner register"),
            "{missing}"
        );
        let file = dir.path().join("r");
        registration(&["x:host"]).save(&file).unwrap();
        let bad = load_identity(&file, &["x:kubernetes:img".into()]).unwrap_err();
        assert!(bad.is_usage(), "{bad}");
    }

    #[tokio::test]
    async fn left_over_processes_of_a_previous_daemon_are_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".runner");
        // A "previous daemon" whose id is no live process (pids stay below 2^22).
        let dead_pid = 4_194_303 + 7;
        let tracking = format!("{}task", orphans::daemon_prefix(dead_pid));
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30"])
            .env(orphans::TRACKING_VARIABLE, &tracking)
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        std::fs::write(pid_file(&file), format!("{dead_pid}\n")).unwrap();
        let stopped = stop_previous_processes(&file).await;
        let _ = child.wait();
        assert!(stopped >= 2, "{stopped}");
        assert!(orphans::tracked_processes(&tracking).is_empty());
        assert_eq!(
            std::fs::read_to_string(pid_file(&file)).unwrap().trim(),
            std::process::id().to_string()
        );
    }
}
