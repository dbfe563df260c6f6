//! [`KanikoBuilder`]: a kube client plus the Kaniko configuration. How the cluster is
//! found and how calls are retried is `hr_cluster::connect`.

use std::path::Path;
use std::sync::Arc;

use kube::{Client, Config};

use hr_cluster::{ClusterError, load_config, new_client};

use super::config::KanikoConfig;

/// Runs builds as Kaniko Jobs on the cluster a kube client points at.
#[derive(Clone)]
pub struct KanikoBuilder {
    pub(super) client: Client,
    /// Kept to open a fresh client where the original one cannot be used (cleanup while
    /// the runtime that owns its connections is going away).
    pub(super) kube_config: Arc<Config>,
    pub(super) config: Arc<KanikoConfig>,
}

impl std::fmt::Debug for KanikoBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KanikoBuilder")
            .field("cluster", &self.kube_config.cluster_url.to_string())
            .field("runner_id", &self.config.runner_id)
            .finish_non_exhaustive()
    }
}

impl KanikoBuilder {
    /// Finds the cluster: the kubeconfig file `kubeconfig` when given, else `KUBECONFIG` /
    /// `~/.kube/config`, else the in-cluster service account (not when a `context` is
    /// named: only kubeconfig files have contexts). No request is sent; see
    /// [`KanikoBuilder::server_version`] to find out whether the cluster answers.
    pub async fn connect(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
        config: KanikoConfig,
    ) -> Result<KanikoBuilder, ClusterError> {
        let kube_config = load_config(kubeconfig, context).await?;
        KanikoBuilder::new(kube_config, config)
    }

    /// A builder over an already loaded client configuration.
    pub fn new(kube_config: Config, config: KanikoConfig) -> Result<KanikoBuilder, ClusterError> {
        let client = new_client(&kube_config)?;
        Ok(KanikoBuilder {
            client,
            kube_config: Arc::new(kube_config),
            config: Arc::new(config),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The client configuration (to open a fresh client, e.g. for a [`super::NamespaceGuard`]).
    pub fn kube_config(&self) -> &Config {
        &self.kube_config
    }

    pub fn config(&self) -> &KanikoConfig {
        &self.config
    }

    /// The API server's URL, for messages.
    pub fn cluster_url(&self) -> String {
        self.kube_config.cluster_url.to_string()
    }

    /// Asks the API server for its version (`/version`): whether the cluster answers.
    pub async fn server_version(&self) -> Result<String, ClusterError> {
        let info = self
            .client
            .apiserver_version()
            .await
            .map_err(|source| ClusterError::Api {
                action: format!("cannot reach the API server at {}", self.cluster_url()),
                cause: source,
            })?;
        Ok(info.git_version)
    }
}
