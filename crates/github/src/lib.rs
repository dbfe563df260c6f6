//! GitHub's self-hosted runner protocol, the V2 flow (runner-admin, broker, run service,
//! results service), as actions/runner speaks it. This crate owns the runner's identity:
//! its files (`.runner`, `.credentials`, `.credentials_rsaparams`) in the forms the service
//! and actions/runner write them, JIT configs, the RSA key, the OAuth client
//! assertion and the access tokens it buys. It knows nothing of how jobs run.

pub mod assertion;
pub mod files;
pub mod jit;
pub mod key;
pub mod oauth;
pub mod registration;

pub use assertion::{SigningAlgorithm, client_assertion};
pub use files::{FileError, OAuthCredentials, RunnerSettings};
pub use jit::JitConfig;
pub use key::RunnerKey;
pub use oauth::{TokenError, TokenSource};
pub use registration::{GitHubUrl, RegisterError, Registered, RunnerRequest, register};

/// One key for every test of the crate: a 2048-bit key takes a while to make.
#[cfg(test)]
pub(crate) fn test_key() -> RunnerKey {
    static KEY: std::sync::OnceLock<RunnerKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| RunnerKey::generate().expect("a key"))
        .clone()
}
