//! Image builds.

pub mod kaniko;
