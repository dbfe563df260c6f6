//! The cluster deploys talk to: a client, and the namespace of the connection (the kube
//! context's, or the in-cluster service account's), where workloads that name no
//! namespace are looked for.

use std::path::Path;

use hr_cluster::ClusterError;

/// A connection to the cluster workloads are deployed in.
pub struct DeployCluster {
    pub client: kube::Client,
    /// The kube context's namespace, or the in-cluster service account's.
    pub namespace: String,
}

impl std::fmt::Debug for DeployCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployCluster")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl DeployCluster {
    /// Connects as every command does (`hr_cluster::load_config`: the kubeconfig file when
    /// given, else `KUBECONFIG`, `~/.kube/config`, the in-cluster service account). No
    /// request is sent.
    pub async fn connect(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
    ) -> Result<DeployCluster, ClusterError> {
        let config = hr_cluster::load_config(kubeconfig, context).await?;
        let namespace = config.default_namespace.clone();
        let client = hr_cluster::new_client(&config)?;
        Ok(DeployCluster { client, namespace })
    }
}
