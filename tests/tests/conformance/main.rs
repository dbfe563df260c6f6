//! Conformance suites over ../shared/conformance (expressions, the workflow reader, the
//! planner), the act corpus, and matrix and needs semantics. One test binary; each file is
//! its own module.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up its data should fail loudly

mod act_corpus;
mod conformance_expressions;
mod conformance_planner;
mod conformance_reader;
mod differential;
mod matrix_and_needs;
