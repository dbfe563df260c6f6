//! Image builds: the build context (what is sent to the builder, after `.dockerignore`,
//! as a deterministic tar.gz with its sha256).

pub mod context;
pub mod dockerignore;
