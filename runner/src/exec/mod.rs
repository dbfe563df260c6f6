//! The job engine: runs planned jobs step by step and reports typed events.

pub mod events;
pub mod render;
