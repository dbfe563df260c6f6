//! The GitHub Actions workflow language, pure: no IO, no processes, no async runtime.
//!
//! - [`yaml`]: YAML text to a tree whose every node knows its `line:col`.
//! - [`model`]: that tree to typed workflows, with every problem as a [`Diagnostic`].
//! - [`expression`]: the `${{ }}` language with GitHub's exact semantics.
//! - [`matrix`]: `strategy.matrix` expansion with GitHub's include/exclude rules.
//! - [`graph`]: the `needs` graph in stages.
//! - [`plan`]: which jobs run for an event, in which stage, with which matrix legs.

pub mod diagnostic;
pub mod expression;
pub mod graph;
pub mod matrix;
pub mod model;
pub mod plan;
pub mod yaml;

pub use diagnostic::{Diagnostic, Diagnostics, Location};
