//! TLS set-up shared by every HTTP client of the process: ring is the one rustls crypto
//! provider of the whole tree (never aws-lc-rs), installed once before any client is built.

/// Installs ring as the process's rustls crypto provider; harmless when one already is.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
