//! `exec`'s cache server (act's flags): the runner's job services
//! ([`job_services::JobServices`]) for one run, their variables given to every job with a
//! token of its own.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use hr_engine::engine::{JobServicesEnv, JobServicesVars};
use hr_engine::events::JobKey;
use job_services::{JobServices, ServicesConfig};

use super::UsageError;

/// The cache server flags of `exec`, as act spells them.
#[derive(Debug, Clone, clap::Args)]
pub struct CacheServerArgs {
    /// Where the cache server keeps its entries [default: ~/.cache/hybrid-runner/cache]
    #[arg(long = "cache-server-path", value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// The address the cache server listens on and steps reach it at (a job pod needs one
    /// the cluster reaches, e.g. this machine's IP)
    #[arg(
        long = "cache-server-addr",
        value_name = "ADDR",
        default_value = "127.0.0.1"
    )]
    pub addr: IpAddr,
    /// The cache server's port [default: a free one]
    #[arg(long = "cache-server-port", value_name = "PORT", default_value_t = 0)]
    pub port: u16,
    /// Past this size the least recently used entries go (`10GiB`, `500MiB`, bytes;
    /// GitHub's limit per repository is 10 GB)
    #[arg(long = "cache-server-max-size", value_name = "SIZE", value_parser = job_services::parse_size, default_value = "10GiB")]
    pub max_size: u64,
    /// Start no cache server (`actions/cache` then saves and restores nothing, and no
    /// artifacts are kept)
    #[arg(long = "no-cache-server")]
    pub disabled: bool,
    /// Keep the artifacts of `upload-artifact@v4` here (`DIR/<run>/<name>/<name>.zip`), so
    /// the jobs of a run pass them to each other
    #[arg(long = "artifact-server-path", value_name = "DIR")]
    pub artifact_path: Option<PathBuf>,
}

impl CacheServerArgs {
    /// The services' settings, `None` with `--no-cache-server`.
    pub fn config(&self, default_dir: PathBuf) -> Option<ServicesConfig> {
        (!self.disabled).then(|| ServicesConfig {
            dir: self.path.clone().unwrap_or(default_dir),
            cache_limit: self.max_size,
            listen: SocketAddr::new(self.addr, self.port),
            artifact_dir: self.artifact_path.clone(),
            advertise_host: None,
        })
    }
}

/// The running services of one `exec` run and whose caches they keep.
#[derive(Debug)]
pub struct ExecServices {
    services: JobServices,
    /// The cache's scope: the repository.
    repo: String,
    run: String,
}

impl ExecServices {
    /// Starts the services for the run of the repository in `workdir`.
    pub async fn start(
        config: ServicesConfig,
        workdir: &std::path::Path,
    ) -> Result<ExecServices, UsageError> {
        let services = JobServices::start(config)
            .await
            .map_err(|e| UsageError(e.to_string()))?;
        // Caches are kept per repository: here the checkout's folder.
        let repo = std::fs::canonicalize(workdir)
            .unwrap_or_else(|_| workdir.to_path_buf())
            .display()
            .to_string();
        let run = format!("{}-{}", std::process::id(), job_services::token::now_secs());
        Ok(ExecServices {
            services,
            repo,
            run,
        })
    }
}

impl JobServicesEnv for ExecServices {
    fn job_env(&self, job: &JobKey, cache_mode: Option<&str>) -> JobServicesVars {
        // `Actions.Results:<run>:<job>` is split at spaces and colons: the job's id and a
        // hash of its display name (matrix legs share the id).
        let leg: String = {
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(job.name.as_bytes());
            digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
        };
        let token = self.services.token(
            &self.repo,
            &self.run,
            &format!("{}-{leg}", job.id),
            cache_mode,
        );
        JobServicesVars {
            env: self.services.job_env(&token, true),
            masks: vec![token],
        }
    }
}
