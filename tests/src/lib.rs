//! Shared pieces of the integration tests: where the conformance data lives, and
//! the pass/fail tally every suite prints.
