//! `uses: hybrid-runner/deploy@v1`, served by the runner and never fetched: sets an image
//! on Kubernetes workloads by digest, as `hybrid-runner deploy` does (`hr_rollout`).
//!
//! 1. The inputs are read ([`inputs`]); a bad one fails the step before anything is asked.
//! 2. The cluster is the one the run's builds and job pods use (`exec --kubeconfig` /
//!    `--kube-context`, the daemon's `kubernetes.kubeconfig` / `context`; else
//!    `KUBECONFIG`, `~/.kube/config`, the in-cluster service account), connected once per
//!    run; workloads that name no namespace are in the step's `namespace`, else in the
//!    connection's. Without a cluster the step fails saying how to configure one.
//! 3. The preflight resolves the image in its registry (the runner's Docker credentials and
//!    insecure registries) and reads every workload; anything missing fails the step and
//!    nothing changes.
//! 4. Every workload rolls out at once, each watched as `kubectl rollout status` watches it,
//!    its progress lines streamed into the step log; a new pod that cannot start fails its
//!    rollout at once, and a failed rollout gets its previous pod template back (unless
//!    `rollback: false`). Each failure becomes an error annotation with the pod's reason
//!    and the container's last log lines.
//!
//! Outputs: `digest` (`sha256:…`), `image` (what was set: `name:tag@sha256:…`, or the
//! `name@sha256:…` given) and `result` (`rolled-out`, `unchanged` or `failed`). A dry run
//! (`exec -n`) starts nothing, as for the built-in builds.

pub mod inputs;
pub mod report;

use std::sync::Arc;
use std::time::Duration;

use actions::deploy_action::DEPLOY_ACTION;
use hr_cluster::ClusterError;
use hr_image::registry::{DockerCredentials, RegistryClient, RegistryError};
pub use hr_rollout::DeployCluster;
use hr_rollout::{Planned, RolloutOptions, RolloutReport};
use tokio_util::sync::CancellationToken;

use crate::commands::AnnotationLevel;
use crate::events::{LogKind, Outcome, StepKey};
use crate::image_steps::BuildSettings;
use crate::job::{Frame, JobState};
use crate::step::{ProcessOutcome, StepError};
use crate::step_def::StepDef;
pub use inputs::{DeployInputError, DeployRequest, from_deploy_inputs};

/// Connects to the cluster of `settings`, as the builder and the job pods do. No request
/// is sent.
pub async fn connect(settings: &BuildSettings) -> Result<DeployCluster, ClusterError> {
    DeployCluster::connect(
        settings.kubeconfig.as_deref(),
        settings.kube_context.as_deref(),
    )
    .await
}

/// Why a deploy step could not start its rollouts.
#[derive(Debug, thiserror::Error)]
pub enum DeployStepError {
    /// `with:` cannot be read; the message names the input.
    #[error(transparent)]
    Inputs(#[from] DeployInputError),
    #[error("{DEPLOY_ACTION} needs a Kubernetes cluster to deploy to: {source}; {remedy}")]
    NoCluster {
        #[source]
        source: Arc<ClusterError>,
        /// How to give the runner a cluster (`exec --kubeconfig`, the daemon's section).
        remedy: String,
    },
    #[error("{DEPLOY_ACTION}: cannot look the image up: {source}")]
    Registry {
        #[source]
        source: Arc<RegistryError>,
    },
}

impl JobState<'_> {
    /// Runs a `hybrid-runner/deploy` step (see the module docs).
    pub(crate) async fn run_builtin_deploy(
        &mut self,
        frame: &Frame,
        def: &StepDef,
        key: &StepKey,
        uses: &str,
        timeout: Option<Duration>,
    ) -> Result<ProcessOutcome, StepError> {
        let with = frame
            .scope
            .string_map(&def.with, &def.with_inserts)
            .map_err(StepError::evaluate("with"))?;
        let request = from_deploy_inputs(&with).map_err(DeployStepError::from)?;
        let cluster = self
            .engine
            .builds
            .deploy_cluster()
            .await
            .map_err(|source| DeployStepError::NoCluster {
                source,
                remedy: self.engine.cluster_remedy.clone(),
            })?;
        let registry = self.deploy_registry(&request).await?;
        let targets = request.targets(&cluster.namespace);
        let names: Vec<String> = targets.iter().map(|t| t.workload.to_string()).collect();
        self.note(
            Some(key),
            LogKind::Runner,
            &format!(
                "{uses}: served by the runner: {} to {}",
                request.image,
                names.join(", ")
            ),
        );
        let token = self.process_token(frame);
        let found = tokio::select! {
            found = hr_rollout::preflight(&cluster.client, &registry, &targets) => found,
            () = token.cancelled() => return Ok(cancelled(self, key)),
        };
        self.note(Some(key), LogKind::Stdout, "==> preflight");
        for line in report::preflight_lines(&found) {
            self.note(Some(key), LogKind::Stdout, &line);
        }
        if let Some(error) = found.error() {
            self.annotate(
                Some(key),
                AnnotationLevel::Error,
                &report::preflight_failure(&error),
            );
            return Ok(ProcessOutcome {
                outcome: Some(Outcome::Failure),
                outputs: vec![("result".to_string(), "failed".to_string())],
                state: Vec::new(),
            });
        }
        let options = RolloutOptions {
            // Each rollout also ends within the step's `timeout-minutes`.
            timeout: timeout.map_or(request.timeout, |t| t.min(request.timeout)),
            rollback: request.rollback,
            ..RolloutOptions::default()
        };
        let reports = self
            .roll_out_logged(key, &cluster.client, &found.planned, &options, &token)
            .await;
        for report in &reports {
            self.note(Some(key), LogKind::Stdout, &report::result_line(report));
            if let Some(text) = report::rollout_failure(report) {
                self.annotate(Some(key), AnnotationLevel::Error, &text);
            }
        }
        let result = report::overall_result(&reports);
        let (digest, image) = found
            .planned
            .first()
            .map(|p| (p.digest.clone(), p.image.clone()))
            .unwrap_or_default();
        let outcome = if token.is_cancelled() {
            Outcome::Cancelled
        } else if result == "failed" {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        Ok(ProcessOutcome {
            outcome: Some(outcome),
            outputs: vec![
                ("digest".to_string(), digest),
                ("image".to_string(), image),
                ("result".to_string(), result.to_string()),
            ],
            state: Vec::new(),
        })
    }

    /// The run's registry client, or one that also reaches the step's
    /// `insecure-registries` over plain HTTP.
    async fn deploy_registry(
        &self,
        request: &DeployRequest,
    ) -> Result<Arc<RegistryClient>, DeployStepError> {
        let builds = &self.engine.builds;
        let extra = &request.insecure_registries;
        if extra
            .iter()
            .all(|r| builds.settings.insecure_registries.contains(r))
        {
            return builds
                .registry()
                .await
                .map_err(|source| DeployStepError::Registry { source });
        }
        let mut insecure = builds.settings.insecure_registries.clone();
        insecure.extend(extra.iter().cloned());
        DockerCredentials::from_environment()
            .and_then(|c| RegistryClient::new(&insecure, c))
            .map(Arc::new)
            .map_err(|e| DeployStepError::Registry {
                source: Arc::new(e),
            })
    }

    /// Rolls every planned workload out at once, their progress lines becoming the step's
    /// output; reports in plan order.
    async fn roll_out_logged(
        &self,
        key: &StepKey,
        client: &kube::Client,
        planned: &[Planned],
        options: &RolloutOptions,
        token: &CancellationToken,
    ) -> Vec<RolloutReport> {
        for p in planned {
            let w = &p.workload;
            self.note(
                Some(key),
                LogKind::Stdout,
                &format!(
                    "==> {}, container {}: {} (was {})",
                    w.target, w.container, p.image, w.image
                ),
            );
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        // Boxed and collected first: a lazy `map` of async blocks trips the compiler's
        // `Send` check of the job's future (rust-lang/rust#102211).
        let mut each: Vec<RolloutFuture<'_>> = Vec::new();
        for p in planned {
            let tx = tx.clone();
            each.push(Box::pin(async move {
                let prefix = p.workload.target.to_string();
                let progress = move |line: &str| {
                    let _ = tx.send(format!("[{prefix}] {line}"));
                };
                hr_rollout::roll_out(client, &p.workload, &p.image, options, &progress, token).await
            }));
        }
        drop(tx);
        let rollouts = futures_util::future::join_all(each);
        tokio::pin!(rollouts);
        let reports = loop {
            tokio::select! {
                reports = &mut rollouts => break reports,
                Some(line) = rx.recv() => self.note(Some(key), LogKind::Stdout, &line),
            }
        };
        while let Ok(line) = rx.try_recv() {
            self.note(Some(key), LogKind::Stdout, &line);
        }
        reports
    }
}

/// One workload's rollout, as [`JobState::roll_out_logged`] runs them side by side.
type RolloutFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = RolloutReport> + Send + 'a>>;

/// The step was cancelled before anything changed.
fn cancelled(state: &JobState<'_>, key: &StepKey) -> ProcessOutcome {
    state.note(
        Some(key),
        LogKind::Runner,
        "the deploy was cancelled before any workload changed",
    );
    ProcessOutcome {
        outcome: Some(Outcome::Cancelled),
        ..ProcessOutcome::default()
    }
}
