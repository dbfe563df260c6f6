//! Everything behind `uses:`: `action.yml` metadata, composite / node / docker action
//! loading, the remote action cache, and the built-in actions the runner serves itself
//! (image builds, checkout).
//!
//! Nothing lives here yet: the job engine that needs it is tracked by the `exec` issue.
