//! STAND-IN until the host backend lands (helper branch `host`).
pub mod host;
pub mod shell;
