//! The HTTP server: one listener for the cache's two protocols and the signed blob URLs,
//! started by `exec` for a run and by the daemon for its life.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post, put};

use crate::artifact_store::ArtifactStore;
use crate::cache_store::CacheStore;
use crate::token::{Claims, TokenKey};

/// How the services are set up.
#[derive(Debug, Clone)]
pub struct ServicesConfig {
    /// Where caches (and the token key) are kept.
    pub dir: PathBuf,
    /// The cache's size limit in bytes (least recently used entries go past it).
    pub cache_limit: u64,
    /// Where artifacts are kept (`exec --artifact-server-path`); none are without it.
    pub artifact_dir: Option<PathBuf>,
    /// Where to listen (`0.0.0.0:0`, `127.0.0.1:0`, …).
    pub listen: SocketAddr,
    /// The host steps reach the server at (`http://HOST:PORT/` is advertised), when not
    /// the listening address (e.g. the runner's IP for job pods).
    pub advertise_host: Option<String>,
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct Services {
    pub cache: Arc<CacheStore>,
    pub artifacts: Option<Arc<ArtifactStore>>,
    pub key: TokenKey,
    /// `http://HOST:PORT` as steps reach it.
    pub base_url: String,
    pub cache_limit: u64,
}

/// Why the services did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "cannot open the folder {dir}: {source}; check that it is writable, or give another (--cache-server-path, --artifact-server-path, cache.dir)"
    )]
    Folder {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot listen on {addr}: {source}; choose another address or port (--cache-server-addr/--cache-server-port, cache.host/cache.port)"
    )]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The running services; dropping it stops them.
#[derive(Debug)]
pub struct JobServices {
    services: Services,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl JobServices {
    /// Opens the store and starts listening.
    pub async fn start(config: ServicesConfig) -> Result<JobServices, StartError> {
        let folder = |source| StartError::Folder {
            dir: config.dir.clone(),
            source,
        };
        let cache_dir = config.dir.join("cache");
        let cache = CacheStore::open(&cache_dir, config.cache_limit).map_err(folder)?;
        let key = TokenKey::load_or_create(&config.dir.join("token.key")).map_err(folder)?;
        let artifacts = match &config.artifact_dir {
            Some(dir) => Some(Arc::new(ArtifactStore::open(dir).map_err(|source| {
                StartError::Folder {
                    dir: dir.clone(),
                    source,
                }
            })?)),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        let host = match &config.advertise_host {
            Some(h) => h.clone(),
            None if addr.ip().is_unspecified() => "127.0.0.1".to_string(),
            None => addr.ip().to_string(),
        };
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host
        };
        let services = Services {
            cache: Arc::new(cache),
            artifacts,
            key,
            base_url: format!("http://{host}:{}", addr.port()),
            cache_limit: config.cache_limit,
        };
        let app = router(services.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!("the job services stopped: {e}");
            }
        });
        Ok(JobServices {
            services,
            stop: Some(stop),
        })
    }

    /// `http://HOST:PORT/`, as steps reach it.
    pub fn url(&self) -> String {
        format!("{}/", self.services.base_url)
    }

    /// A token for a job of `repo`'s run `run`.
    /// `cache_mode` is the job's declared `cache-mode:`, which the token carries and the
    /// cache endpoints enforce.
    pub fn token(&self, repo: &str, run: &str, job: &str, cache_mode: Option<&str>) -> String {
        self.services.key.sign(
            &Claims::new(repo, run, job, Duration::from_secs(24 * 3600))
                .with_cache_mode(cache_mode),
        )
    }

    /// The environment a job's steps get to reach the cache: `ACTIONS_CACHE_URL` (v1,
    /// with the job's token in its path, for clients that send someone else's bearer
    /// token, as on Gitea), and with `results` also `ACTIONS_RESULTS_URL` and
    /// `ACTIONS_CACHE_SERVICE_V2` (v2) and the token as `ACTIONS_RUNTIME_TOKEN`.
    pub fn job_env(&self, token: &str, results: bool) -> Vec<(String, String)> {
        let mut env = vec![(
            "ACTIONS_CACHE_URL".to_string(),
            format!(
                "{}/{}/{token}/",
                self.services.base_url,
                crate::cache_v1::PREFIX
            ),
        )];
        if results {
            env.push(("ACTIONS_RESULTS_URL".into(), self.url()));
            env.push(("ACTIONS_CACHE_SERVICE_V2".into(), "true".into()));
            env.push(("ACTIONS_RUNTIME_TOKEN".into(), token.to_string()));
        }
        env
    }
}

impl Drop for JobServices {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn router(services: Services) -> Router {
    Router::new()
        .route(
            &format!(
                "/{}/{{token}}/_apis/artifactcache/cache",
                crate::cache_v1::PREFIX
            ),
            get(crate::cache_v1::lookup),
        )
        .route(
            &format!(
                "/{}/{{token}}/_apis/artifactcache/caches",
                crate::cache_v1::PREFIX
            ),
            post(crate::cache_v1::reserve),
        )
        .route(
            &format!(
                "/{}/{{token}}/_apis/artifactcache/caches/{{id}}",
                crate::cache_v1::PREFIX
            ),
            post(crate::cache_v1::commit).patch(crate::cache_v1::upload),
        )
        .route(
            "/twirp/github.actions.results.api.v1.CacheService/{method}",
            post(crate::cache_v2::call),
        )
        .route(
            "/twirp/github.actions.results.api.v1.ArtifactService/{method}",
            post(crate::artifacts::call),
        )
        .route(
            &format!("/{}/{{container}}/{{id}}", crate::blob::ACCOUNT),
            put(crate::blob::put).get(crate::blob::get),
        )
        .with_state(services)
}

/// How a daemon's jobs reach a cache: its own server, an external one (act_runner's
/// `cache.external_server`), or none.
#[derive(Debug, Clone, Default)]
pub enum CacheAccess {
    #[default]
    None,
    Own(Arc<JobServices>),
    /// The external server's URL (given to jobs as `ACTIONS_CACHE_URL`, with a `/`).
    External(String),
}

impl CacheAccess {
    /// The variables of a job of `repo`'s run `run` (the v1 protocol: a Gitea or Forgejo
    /// job's results URL is its server's), and the value to mask. `cache_mode` is the job's
    /// declared `cache-mode:` (enforced by this runner's own server only).
    pub fn job_env(
        &self,
        repo: &str,
        run: &str,
        job: &str,
        cache_mode: Option<&str>,
    ) -> (Vec<(String, String)>, Option<String>) {
        match self {
            CacheAccess::None => (Vec::new(), None),
            CacheAccess::External(url) => (
                vec![(
                    "ACTIONS_CACHE_URL".to_string(),
                    format!("{}/", url.trim_end_matches('/')),
                )],
                None,
            ),
            CacheAccess::Own(services) => {
                let token = services.token(repo, run, job, cache_mode);
                (services.job_env(&token, false), Some(token))
            }
        }
    }
}
