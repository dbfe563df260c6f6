//! A pool of ephemeral GitHub runners (`daemon --github URL --pat-file FILE`): `capacity`
//! slots, each asking GitHub's REST API for a JIT runner ([`RunnerAdmin::generate_jitconfig`]),
//! listening as it until its one job is done ([`crate::daemon::run`]), deleting it and
//! starting over, as ARC's scale sets keep idle runners. A stop (the first SIGTERM) takes
//! no more jobs: idle runners stop listening, running jobs finish (the second signal
//! cancels them), and every runner the pool registered is deleted before it returns.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::daemon::{DaemonExit, DaemonOptions, GitHubRunner};
use crate::jit::JitConfig;
use crate::runner_admin::{AdminError, RunnerAdmin, jit_labels};

/// How the pool runs.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// How many runners at once.
    pub capacity: usize,
    /// The labels GitHub matches jobs by (names; `self-hosted`, `Linux` and the
    /// architecture are added).
    pub labels: Vec<String>,
    /// The runner group (`None`: the default group).
    pub runner_group: Option<String>,
    /// Runner names are `<prefix>-<slot>-<random>`.
    pub name_prefix: String,
    /// How each runner listens and runs its job (`once` and `in_flight` are set by the
    /// pool: one job each, nothing written).
    pub runner: DaemonOptions,
    /// The wait after a failed REST call before the slot tries again (doubling to a
    /// minute).
    pub retry: Duration,
}

/// Why the pool cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("{0}")]
    Admin(#[from] AdminError),
}

/// The runners the pool registered and has not deleted yet.
type Registered = Arc<Mutex<BTreeSet<(u64, String)>>>;

fn lock(registered: &Registered) -> std::sync::MutexGuard<'_, BTreeSet<(u64, String)>> {
    registered.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the pool until `stop`; then deletes every runner it registered. Fails only when
/// the runner group cannot be found (a REST error at start-up).
pub async fn run(
    http: reqwest::Client,
    admin: RunnerAdmin,
    options: PoolOptions,
    stop: CancellationToken,
    hard: CancellationToken,
) -> Result<(), PoolError> {
    let group = admin
        .runner_group_id(options.runner_group.as_deref())
        .await?;
    let admin = Arc::new(admin);
    let registered: Registered = Arc::default();
    let labels = jit_labels(&options.labels);
    tracing::info!(capacity = options.capacity, group, labels = ?labels, "runner pool started");
    let mut slots = tokio::task::JoinSet::new();
    for slot in 0..options.capacity.max(1) {
        let slot = Slot {
            index: slot,
            http: http.clone(),
            admin: admin.clone(),
            options: options.clone(),
            group,
            labels: labels.clone(),
            registered: registered.clone(),
        };
        let (stop, hard) = (stop.clone(), hard.clone());
        slots.spawn(async move { slot.run(stop, hard).await });
    }
    while slots.join_next().await.is_some() {}
    // Whatever is left (a slot that failed between registering and deleting).
    let left: Vec<(u64, String)> = lock(&registered).iter().cloned().collect();
    for (id, name) in left {
        delete(&admin, id, &name).await;
    }
    tracing::info!("runner pool stopped; its runners are deleted");
    Ok(())
}

/// One slot of the pool: one runner at a time.
struct Slot {
    index: usize,
    http: reqwest::Client,
    admin: Arc<RunnerAdmin>,
    options: PoolOptions,
    group: u64,
    labels: Vec<String>,
    registered: Registered,
}

impl Slot {
    async fn run(self, stop: CancellationToken, hard: CancellationToken) {
        let mut wait = self.options.retry;
        while !stop.is_cancelled() {
            let name = format!(
                "{}-{}-{}",
                self.options.name_prefix,
                self.index,
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            );
            let jit = match self
                .admin
                .generate_jitconfig(&name, self.group, &self.labels, "_work")
                .await
            {
                Ok(jit) => jit,
                Err(e) => {
                    tracing::warn!(slot = self.index, error = %e, retry_in = ?wait, "cannot make a JIT runner");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(60));
                    continue;
                }
            };
            wait = self.options.retry;
            lock(&self.registered).insert((jit.runner_id, jit.name.clone()));
            match JitConfig::decode(&jit.encoded_jit_config) {
                Ok(config) => {
                    let runner = GitHubRunner {
                        settings: config.settings,
                        credentials: config.credentials,
                        key: config.key,
                    };
                    let mut options = DaemonOptions {
                        once: true,
                        in_flight: None,
                        ..self.options.runner.clone()
                    };
                    options.job.runner_name = jit.name.clone();
                    tracing::info!(slot = self.index, runner = %jit.name, id = jit.runner_id, "runner listening");
                    match crate::daemon::run(
                        self.http.clone(),
                        runner,
                        options,
                        stop.clone(),
                        hard.clone(),
                    )
                    .await
                    {
                        Ok(DaemonExit::Once | DaemonExit::Stopped) => {}
                        Err(e) => {
                            tracing::warn!(slot = self.index, runner = %jit.name, error = %e, "the runner stopped listening");
                            tokio::select! {
                                () = stop.cancelled() => {}
                                () = tokio::time::sleep(wait) => {}
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(slot = self.index, error = %e, "GitHub's JIT config cannot be read");
                }
            }
            delete(&self.admin, jit.runner_id, &jit.name).await;
            lock(&self.registered).remove(&(jit.runner_id, jit.name));
        }
    }
}

/// Deletes a runner of the pool (GitHub deletes an ephemeral runner after its job
/// itself: then it is already gone).
async fn delete(admin: &RunnerAdmin, id: u64, name: &str) {
    match admin.delete_runner(id).await {
        Ok(true) => tracing::info!(runner = %name, id, "runner deleted"),
        Ok(false) => tracing::debug!(runner = %name, id, "runner already gone"),
        Err(e) => tracing::warn!(runner = %name, id, error = %e, "cannot delete the runner"),
    }
}
