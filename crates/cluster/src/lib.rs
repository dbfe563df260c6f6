//! The cluster layer every Kubernetes user of the runner shares: finding the cluster and
//! making a client ([`connect`]), retrying transient API errors, the namespaces of tasks
//! (named and labelled per runner, with an expiry, deleted on every path by a
//! [`namespaces::NamespaceGuard`] and reaped once expired or once the process that
//! created them stopped renewing their [`leases`]), the YAML templates objects are
//! rendered from, the table of API permissions the runner uses, and run ids.
//!
//! It knows nothing of Kaniko, job pods or workflows: image builds (`hr_image`) and job
//! pods (`hr_engine`) build on it.

pub mod connect;
pub mod leases;
pub mod names;
pub mod namespaces;
pub mod permissions;
pub mod run_ids;
pub mod templates;
pub mod time;

pub use connect::{
    ClusterError, describe, install_crypto_provider, is_transient, load_config, new_client, retry,
    status_code,
};
pub use namespaces::{
    EXPIRES_AT_ANNOTATION, MANAGED_BY, NamespaceGuard, NamespaceOwner, RUNNER_ID_LABEL, ReapScope,
    TaskIds, delete_namespace, expires_at, is_runner_namespace, reap, reap_expired,
    reapable_namespaces, runner_namespaces, runner_selector, select_reapable, task_namespace,
};
