//! The connection to the cluster: how it is found (a kubeconfig file, `KUBECONFIG` or
//! `~/.kube/config`, else the in-cluster service account), the client made from it, and
//! how API calls are retried on transient server errors.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Why talking to the cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot load the kubeconfig {path}; check the file, or pass another with --kubeconfig")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "no usable Kubernetes configuration; tried {tried}; pass --kubeconfig FILE, set KUBECONFIG, or run the runner inside the cluster"
    )]
    NoConfig { tried: String },
    #[error("cannot create a Kubernetes client for {url}")]
    Client {
        url: String,
        #[source]
        source: kube::Error,
    },
    /// A call to the API server failed (after retries where retrying made sense); the
    /// message carries the server's answer, so the kube error is not chained again.
    #[error("{action}: {}", describe(cause))]
    Api { action: String, cause: kube::Error },
}

/// Ring is the one rustls crypto provider of the tree; harmless when already installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client for `kube_config` (installs the crypto provider first).
pub fn new_client(kube_config: &Config) -> Result<Client, ClusterError> {
    install_crypto_provider();
    Client::try_from(kube_config.clone()).map_err(|source| ClusterError::Client {
        url: kube_config.cluster_url.to_string(),
        source,
    })
}

/// Finds the cluster: the kubeconfig file `kubeconfig` when given, else `KUBECONFIG` /
/// `~/.kube/config`, else the in-cluster service account (not when a `context` is
/// named: only kubeconfig files have contexts). No request is sent.
pub async fn load_config(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<Config, ClusterError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    if let Some(path) = kubeconfig {
        let file = Kubeconfig::read_from(path).map_err(|source| ClusterError::Kubeconfig {
            path: path.to_path_buf(),
            source,
        })?;
        return Config::from_custom_kubeconfig(file, &options)
            .await
            .map_err(|source| ClusterError::Kubeconfig {
                path: path.to_path_buf(),
                source,
            });
    }
    let file_desc = match std::env::var_os("KUBECONFIG") {
        Some(value) if !value.is_empty() => format!("KUBECONFIG={}", value.to_string_lossy()),
        _ => "~/.kube/config".to_string(),
    };
    let file_err = match Config::from_kubeconfig(&options).await {
        Ok(config) => return Ok(config),
        Err(e) => e,
    };
    if let Some(context) = context {
        return Err(ClusterError::NoConfig {
            tried: format!("context {context} in {file_desc} ({file_err})"),
        });
    }
    match Config::incluster() {
        Ok(config) => Ok(config),
        Err(in_cluster) => Err(ClusterError::NoConfig {
            tried: format!(
                "{file_desc} ({file_err}), and the in-cluster service account ({in_cluster})"
            ),
        }),
    }
}

/// How many times a call is tried in all, and the first pause between tries (doubled each
/// time, at most [`MAX_PAUSE`]).
const ATTEMPTS: u32 = 6;
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// The HTTP status of an API error, if the server answered.
pub fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Whether retrying `e` may help: a 5xx or 429 from the server, the quota admission race
/// right after a ResourceQuota is created, or a connection that failed before an answer.
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => {
            status.code >= 500
                || status.code == 429
                || (status.code == 403 && status.message.contains("status unknown for quota"))
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Runs `op` until it succeeds, fails for good, or [`ATTEMPTS`] tries were made.
pub async fn retry<T, F, Fut>(mut op: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut pause = FIRST_PAUSE;
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                tracing::debug!(attempt, error = %e, "retrying a Kubernetes API call");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A kube error in a sentence: the server's own message and code when it answered.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            let reason = if status.reason.is_empty() {
                String::new()
            } else {
                format!(", {}", status.reason)
            };
            format!("{} (HTTP {}{reason})", status.message, status.code)
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: message.to_string(),
            reason: "InternalError".to_string(),
            ..Default::default()
        }))
    }

    #[test]
    fn transient_errors() {
        assert!(is_transient(&api_error(500, "boom")));
        assert!(is_transient(&api_error(503, "")));
        assert!(is_transient(&api_error(429, "")));
        assert!(is_transient(&api_error(
            403,
            "forbidden: status unknown for quota: build-quota"
        )));
        assert!(!is_transient(&api_error(403, "forbidden")));
        assert!(!is_transient(&api_error(409, "exists")));
        assert!(!is_transient(&api_error(404, "")));
        assert_eq!(
            describe(&api_error(500, "boom")),
            "boom (HTTP 500, InternalError)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_then_gives_up() {
        let calls = AtomicU32::new(0);
        let result: Result<u32, _> = retry(|| async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < 2 {
                Err(api_error(500, "boom"))
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(result.unwrap(), 2);

        calls.store(0, Ordering::SeqCst);
        let result: Result<u32, _> = retry(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(api_error(500, "boom"))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), ATTEMPTS);

        calls.store(0, Ordering::SeqCst);
        let result: Result<u32, _> = retry(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(api_error(409, "exists"))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
